//! The byte end of the writer: markup is assembled as UTF-8 in a reusable buffer, then flushed
//! through the output encoding to the sink in large chunks.
//!
//! For windows-1251 the encoder turns every character the code page lacks into a decimal numeric
//! character reference (`&#8381;`), which is valid XML in text and attribute values alike. Names
//! (element and attribute names) cannot carry references, so [`Sink::check_name`] refuses names
//! with such characters before they reach the buffer.

use std::fmt::Write as _;
use std::io::Write;

use encoding_rs::{CoderResult, Encoder, WINDOWS_1251};
use rust_decimal::Decimal;

use super::OutputEncoding;
use crate::error::{Error, Result};

/// Flush the text buffer once it holds this many bytes.
const FLUSH_AT: usize = 64 * 1024;

/// What a byte needs when it appears in text or in an attribute value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Copied as is.
    Plain,
    /// Replaced in text and attribute values.
    Markup,
    /// Replaced only in attribute values (`"`, tab, line feed), so that they survive attribute
    /// value normalisation.
    AttrOnly,
    /// A control character XML 1.0 does not allow at all.
    Forbidden,
}

const fn classify() -> [Class; 256] {
    let mut table = [Class::Plain; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = Class::Forbidden;
        b += 1;
    }
    table[b'\t' as usize] = Class::AttrOnly;
    table[b'\n' as usize] = Class::AttrOnly;
    table[b'\r' as usize] = Class::Markup;
    table[b'&' as usize] = Class::Markup;
    table[b'<' as usize] = Class::Markup;
    table[b'>' as usize] = Class::Markup;
    table[b'"' as usize] = Class::AttrOnly;
    table
}

static CLASSES: [Class; 256] = classify();

/// A buffered, encoding sink.
pub(super) struct Sink<W: Write> {
    out: W,
    encoding: OutputEncoding,
    /// Markup not yet flushed, always UTF-8.
    text: String,
    /// Encoded bytes (windows-1251 only).
    bytes: Vec<u8>,
    encoder: Option<Encoder>,
}

impl<W: Write> Sink<W> {
    pub(super) fn new(out: W, encoding: OutputEncoding) -> Self {
        let encoder = match encoding {
            OutputEncoding::Windows1251 => Some(WINDOWS_1251.new_encoder()),
            OutputEncoding::Utf8 => None,
        };
        Self {
            out,
            encoding,
            text: String::with_capacity(FLUSH_AT + 4096),
            bytes: Vec::with_capacity(FLUSH_AT + 4096),
            encoder,
        }
    }

    /// Writes raw bytes that need no encoding (the BOM).
    pub(super) fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.flush_text()?;
        self.out.write_all(bytes)?;
        Ok(())
    }

    /// Appends markup that is known to be well-formed and encodable.
    #[inline]
    pub(super) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Appends a decimal in plain notation.
    #[inline]
    pub(super) fn push_decimal(&mut self, value: Decimal) {
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{value}");
    }

    /// Appends a formatted value whose text needs no escaping (dates, times).
    pub(super) fn push_display(&mut self, value: impl std::fmt::Display) {
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{value}");
    }

    /// Appends `s` escaped for element content.
    #[inline]
    pub(super) fn text(&mut self, s: &str) -> Result<()> {
        self.escaped(s, false)
    }

    /// Appends `s` escaped for a double-quoted attribute value.
    #[inline]
    pub(super) fn attr_value(&mut self, s: &str) -> Result<()> {
        self.escaped(s, true)
    }

    fn escaped(&mut self, s: &str, attr: bool) -> Result<()> {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let class = CLASSES[b as usize];
            let replacement = match class {
                Class::Plain => continue,
                Class::AttrOnly if !attr => continue,
                Class::Forbidden => {
                    return Err(Error::Unencodable(format!(
                        "control character U+{b:04X} (XML 1.0 does not allow it) in {s:?}"
                    )))
                }
                Class::Markup | Class::AttrOnly => match b {
                    b'&' => "&amp;",
                    b'<' => "&lt;",
                    b'>' => "&gt;",
                    b'"' => "&quot;",
                    b'\t' => "&#9;",
                    b'\n' => "&#10;",
                    _ => "&#13;",
                },
            };
            // Every replaced byte is ASCII, so the slice boundaries are char boundaries.
            self.text.push_str(&s[start..i]);
            self.text.push_str(replacement);
            start = i + 1;
        }
        self.text.push_str(&s[start..]);
        Ok(())
    }

    /// Refuses a name (element or attribute) that is empty, carries markup characters, or holds
    /// characters the output encoding lacks (references are not allowed in names).
    pub(super) fn check_name(&self, name: &str) -> Result<()> {
        let bad_char = name.chars().any(|c| {
            c.is_whitespace() || matches!(c, '<' | '>' | '&' | '"' | '\'' | '=' | '/') || c < ' '
        });
        if name.is_empty() || bad_char {
            return Err(Error::Unencodable(format!("not an XML name: {name:?}")));
        }
        if self.encoding == OutputEncoding::Windows1251 && !name.is_ascii() {
            let (_, _, unmappable) = WINDOWS_1251.encode(name);
            if unmappable {
                return Err(Error::Unencodable(format!(
                    "name {name:?} has characters windows-1251 lacks"
                )));
            }
        }
        Ok(())
    }

    /// Flushes the buffer when it is large enough.
    #[inline]
    pub(super) fn maybe_flush(&mut self) -> Result<()> {
        if self.text.len() >= FLUSH_AT {
            self.flush_text()?;
        }
        Ok(())
    }

    /// Encodes and writes everything buffered.
    pub(super) fn flush_text(&mut self) -> Result<()> {
        if self.text.is_empty() {
            return Ok(());
        }
        match self.encoder.as_mut() {
            None => self.out.write_all(self.text.as_bytes())?,
            Some(encoder) => {
                let mut src = self.text.as_str();
                loop {
                    self.bytes.clear();
                    let spare = self.bytes.capacity().max(1024);
                    self.bytes.resize(spare, 0);
                    let (result, read, written, _) =
                        encoder.encode_from_utf8(src, &mut self.bytes, false);
                    self.out.write_all(&self.bytes[..written])?;
                    src = &src[read..];
                    match result {
                        CoderResult::InputEmpty => break,
                        CoderResult::OutputFull => {}
                    }
                }
            }
        }
        self.text.clear();
        Ok(())
    }

    /// Flushes everything and returns the sink.
    pub(super) fn finish(mut self) -> Result<W> {
        self.flush_text()?;
        self.out.flush()?;
        Ok(self.out)
    }
}
