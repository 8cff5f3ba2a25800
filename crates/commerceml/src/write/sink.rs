//! The byte end of the writer: markup is assembled as UTF-8 in a reusable buffer, then flushed
//! through the output encoding to the sink in large chunks.
//!
//! For windows-1251 the encoder turns every character the code page lacks into a decimal numeric
//! character reference (`&#8381;`), which is valid XML in text and attribute values alike. Names
//! (element and attribute names) cannot carry references, so [`Sink::check_name`] refuses names
//! with such characters before they reach the buffer.

use std::io::Write;

use encoding_rs::WINDOWS_1251;
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

/// Whether any of the eight bytes in `x` may need escaping: a control character, `&`, `<`, `>`,
/// or (in attribute values) `"`. Exact for "none": a `false` means all eight are plain.
#[inline]
fn needs_attention(x: u64, attr: bool) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI != 0;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI != 0;
    below_space
        || has_zero(x ^ (LO * u64::from(b'&')))
        || has_zero(x ^ (LO * u64::from(b'<')))
        || has_zero(x ^ (LO * u64::from(b'>')))
        || (attr && has_zero(x ^ (LO * u64::from(b'"'))))
}

/// A buffered, encoding sink: everything is encoded as it is appended, into one byte buffer
/// that is written to the sink in large chunks.
pub(super) struct Sink<W: Write> {
    out: W,
    encoding: OutputEncoding,
    /// Bytes in the output encoding, not yet written.
    buf: Vec<u8>,
    /// windows-1251 only: the encoder and the encoded forms of element names.
    cp1251: Option<(Cp1251, NameCache)>,
}

impl<W: Write> Sink<W> {
    pub(super) fn new(out: W, encoding: OutputEncoding) -> Self {
        let cp1251 = match encoding {
            OutputEncoding::Windows1251 => Some((Cp1251::new(), NameCache::new())),
            OutputEncoding::Utf8 => None,
        };
        Self {
            out,
            encoding,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            cp1251,
        }
    }

    /// Appends raw bytes that need no encoding (the BOM).
    pub(super) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends markup that is known to be well-formed and encodable: punctuation, indentation
    /// and names (whose encoded forms are cached).
    #[inline]
    pub(super) fn push(&mut self, s: &str) {
        match &mut self.cp1251 {
            Some((encoder, names)) if !s.is_ascii() => names.push(s, encoder, &mut self.buf),
            _ => self.buf.extend_from_slice(s.as_bytes()),
        }
    }

    /// Appends UTF-8 text that needs no escaping, encoding it.
    #[inline]
    fn push_run(&mut self, s: &str) {
        match &self.cp1251 {
            Some((encoder, _)) if !s.is_ascii() => encoder.encode(s, &mut self.buf),
            _ => self.buf.extend_from_slice(s.as_bytes()),
        }
    }

    /// Appends a decimal in plain notation.
    #[inline]
    pub(super) fn push_decimal(&mut self, value: Decimal) {
        // Writing into a Vec cannot fail; the text of a decimal is ASCII.
        let _ = write!(self.buf, "{value}");
    }

    /// Appends a formatted value whose text is ASCII and needs no escaping (dates, times).
    pub(super) fn push_display(&mut self, value: impl std::fmt::Display) {
        // Writing into a Vec cannot fail.
        let _ = write!(self.buf, "{value}");
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
        let n = bytes.len();
        let mut start = 0;
        let mut i = 0;
        while i < n {
            // Skip eight plain bytes at a time.
            if i + 8 <= n {
                let mut chunk = [0u8; 8];
                chunk.copy_from_slice(&bytes[i..i + 8]);
                if !needs_attention(u64::from_le_bytes(chunk), attr) {
                    i += 8;
                    continue;
                }
            }
            let b = bytes[i];
            let replacement = match CLASSES[b as usize] {
                Class::Plain => None,
                Class::AttrOnly if !attr => None,
                Class::Forbidden => {
                    return Err(Error::Unencodable(format!(
                        "control character U+{b:04X} (XML 1.0 does not allow it) in {s:?}"
                    )))
                }
                Class::Markup | Class::AttrOnly => Some(match b {
                    b'&' => "&amp;",
                    b'<' => "&lt;",
                    b'>' => "&gt;",
                    b'"' => "&quot;",
                    b'\t' => "&#9;",
                    b'\n' => "&#10;",
                    _ => "&#13;",
                }),
            };
            if let Some(replacement) = replacement {
                // Every replaced byte is ASCII, so the slice boundaries are char boundaries.
                self.push_run(&s[start..i]);
                self.buf.extend_from_slice(replacement.as_bytes());
                start = i + 1;
            }
            i += 1;
        }
        self.push_run(&s[start..]);
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

    /// Writes the buffer out when it is large enough.
    #[inline]
    pub(super) fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buffer()?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes everything buffered and flushes the sink.
    pub(super) fn flush(&mut self) -> Result<()> {
        self.flush_buffer()?;
        self.out.flush()?;
        Ok(())
    }

    /// The sink itself.
    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes everything buffered, flushes and returns the sink.
    pub(super) fn finish(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Number of slots of the name cache (a power of two).
const NAME_SLOTS: usize = 512;

/// The windows-1251 forms of element and attribute names, so that the tags of every element are
/// not re-encoded each time. Direct-mapped by the name's address; a hit is confirmed by
/// comparing the bytes, so any string (not only constants) is safe to pass.
struct NameCache {
    slots: Vec<Slot>,
    /// Source bytes followed by their encoded form, for every cached name.
    arena: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    address: usize,
    /// Offset of the source bytes in the arena; the encoded bytes follow them.
    start: usize,
    len: usize,
    encoded_len: usize,
}

impl NameCache {
    /// The arena is reset when it grows past this (many distinct unknown element names).
    const MAX_ARENA: usize = 1 << 20;

    fn new() -> Self {
        Self {
            slots: vec![Slot::default(); NAME_SLOTS],
            arena: Vec::with_capacity(16 * 1024),
        }
    }

    fn push(&mut self, name: &str, encoder: &Cp1251, out: &mut Vec<u8>) {
        let address = name.as_ptr() as usize;
        let index = ((address >> 3) ^ (address >> 12) ^ name.len()) & (NAME_SLOTS - 1);
        let slot = self.slots[index];
        if slot.address == address
            && slot.len == name.len()
            && &self.arena[slot.start..slot.start + slot.len] == name.as_bytes()
        {
            let encoded = slot.start + slot.len;
            out.extend_from_slice(&self.arena[encoded..encoded + slot.encoded_len]);
            return;
        }
        if self.arena.len() > Self::MAX_ARENA {
            self.arena.clear();
            self.slots.fill(Slot::default());
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(name.as_bytes());
        let encoded = self.arena.len();
        encoder.encode(name, &mut self.arena);
        self.slots[index] = Slot {
            address,
            start,
            len: name.len(),
            encoded_len: self.arena.len() - encoded,
        };
        out.extend_from_slice(&self.arena[encoded..]);
    }
}

/// A windows-1251 encoder for UTF-8 text that writes characters the code page lacks as decimal
/// numeric character references. Specialised for what CommerceML text is made of: ASCII markup
/// and Cyrillic letters, which map arithmetically; the few other characters of the code page go
/// through a sorted table.
struct Cp1251 {
    /// `(char, byte)` for every byte 0x80..=0xFF that decodes to a character, sorted by char.
    table: Vec<(char, u8)>,
}

impl Cp1251 {
    fn new() -> Self {
        let mut table: Vec<(char, u8)> = (0x80u8..=0xFF)
            .filter_map(|b| {
                let bytes = [b];
                let (text, _, had_errors) = WINDOWS_1251.decode(&bytes);
                let c = text.chars().next()?;
                (!had_errors).then_some((c, b))
            })
            .collect();
        table.sort_unstable();
        Self { table }
    }

    /// Appends the windows-1251 form of `text` to `out`.
    fn encode(&self, text: &str, out: &mut Vec<u8>) {
        let bytes = text.as_bytes();
        let n = bytes.len();
        let start = out.len();
        // Every mapped character takes at most as many bytes as in UTF-8; references may take
        // more and grow the buffer on demand below.
        out.resize(start + n, 0);
        let mut j = start;
        let mut i = 0;
        while i < n {
            let b0 = bytes[i];
            if b0 < 0x80 {
                // An ASCII run, eight bytes at a time where possible.
                while i + 8 <= n {
                    let mut chunk = [0u8; 8];
                    chunk.copy_from_slice(&bytes[i..i + 8]);
                    if u64::from_ne_bytes(chunk) & 0x8080_8080_8080_8080 != 0 {
                        break;
                    }
                    out[j..j + 8].copy_from_slice(&chunk);
                    i += 8;
                    j += 8;
                }
                while i < n && bytes[i] < 0x80 {
                    out[j] = bytes[i];
                    i += 1;
                    j += 1;
                }
                continue;
            }
            // A run of two-byte sequences D0 xx / D1 xx for А..я (U+0410..=U+044F), which are
            // 0xC0..=0xFF in windows-1251.
            let mut cyrillic = false;
            while i + 1 < n {
                let (lead, trail) = (bytes[i], bytes[i + 1]);
                let code = match lead {
                    0xD0 if trail >= 0x90 => trail + 0x30,
                    0xD1 if trail < 0x90 => trail + 0x70,
                    _ => break,
                };
                out[j] = code;
                i += 2;
                j += 1;
                cyrillic = true;
            }
            if cyrillic {
                continue;
            }
            // Any other character: decode it from the (valid UTF-8) text.
            let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
            i += c.len_utf8();
            match self.table.binary_search_by_key(&c, |&(k, _)| k) {
                Ok(pos) => {
                    out[j] = self.table[pos].1;
                    j += 1;
                }
                Err(_) => {
                    // `&#1114111;` is the longest reference: 10 bytes.
                    let mut reference = [0u8; 12];
                    let len = {
                        let mut cursor = std::io::Cursor::new(&mut reference[..]);
                        let _ = std::io::Write::write_fmt(
                            &mut cursor,
                            format_args!("&#{};", u32::from(c)),
                        );
                        cursor.position() as usize
                    };
                    let needed = j + len + (n - i);
                    if needed > out.len() {
                        out.resize(needed, 0);
                    }
                    out[j..j + len].copy_from_slice(&reference[..len]);
                    j += len;
                }
            }
        }
        out.truncate(j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_byte_screen_never_misses_a_special_byte() {
        let specials = [b'&', b'<', b'>', b'"', b'\t', b'\n', b'\r', 0, 0x1F];
        let fillers = [b'a', b' ', 0x7F, 0x80, 0xD0, 0xFF, b'=', b'?', b'!', b'#'];
        for &special in &specials {
            for &filler in &fillers {
                for pos in 0..8 {
                    let mut chunk = [filler; 8];
                    chunk[pos] = special;
                    let x = u64::from_le_bytes(chunk);
                    let attr_only = special == b'"';
                    assert!(needs_attention(x, true), "{chunk:?}");
                    if !attr_only {
                        assert!(needs_attention(x, false), "{chunk:?}");
                    }
                }
            }
            let plain = u64::from_le_bytes([b'a'; 8]);
            assert!(!needs_attention(plain, true));
        }
        // Every byte value alone among plain letters.
        for b in 0..=255u8 {
            let mut chunk = [b'x'; 8];
            chunk[3] = b;
            let x = u64::from_le_bytes(chunk);
            let class = CLASSES[b as usize];
            if class != Class::Plain {
                assert!(needs_attention(x, true), "{b:#x}");
            }
            if matches!(class, Class::Markup | Class::Forbidden) || b == b'\t' || b == b'\n' {
                assert!(needs_attention(x, false), "{b:#x}");
            }
        }
    }

    #[test]
    fn cp1251_encoder_agrees_with_encoding_rs() {
        let enc = Cp1251::new();
        // Every character of the code page, plus ASCII, plus characters it lacks.
        let mut sample: String = (0x80u8..=0xFF)
            .filter_map(|b| WINDOWS_1251.decode(&[b]).0.chars().next())
            .collect();
        sample.push_str("abc <&> Ёё №₽😀 ЀѐѿĀ");
        let mut ours = Vec::new();
        enc.encode(&sample, &mut ours);
        let (theirs, _, _) = WINDOWS_1251.encode(&sample);
        assert_eq!(ours, theirs.as_ref());
        assert!(ours.ends_with(b"&#8381;&#128512; &#1024;&#1104;&#1151;&#256;"));
    }
}
