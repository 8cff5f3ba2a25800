//! Encoding detection and the byte source under the lexer.
//!
//! UTF-8 and single-byte code pages (windows-1251, …) are lexed as they are, so offsets refer
//! to the input; UTF-16 is transcoded to UTF-8 on the fly (offsets then refer to the UTF-8
//! stream).

use std::borrow::Cow;
use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1251};

use super::lexer::InvalidInput;
use crate::error::{Error, Position, Result};

/// How many bytes are looked at to detect the encoding.
const PEEK: usize = 64 * 1024;

/// What was found out about the encoding of the input.
#[derive(Debug, Clone)]
pub(crate) struct Detected {
    /// The encoding the bytes are in.
    pub encoding: &'static Encoding,
    /// The `encoding` of the XML declaration, as written.
    pub declared: Option<String>,
    /// Length of the byte order mark, 0 without one.
    pub bom_len: usize,
}

/// The input with the peeked prefix put back, counting the bytes taken from the caller.
pub(crate) struct Counted<R> {
    prefix: Vec<u8>,
    prefix_pos: usize,
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.prefix_pos < self.prefix.len() {
            let n = out.len().min(self.prefix.len() - self.prefix_pos);
            out[..n].copy_from_slice(&self.prefix[self.prefix_pos..self.prefix_pos + n]);
            self.prefix_pos += n;
            if self.prefix_pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.prefix_pos = 0;
            }
            return Ok(n);
        }
        let n = self.inner.read(out)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// The bytes the lexer reads: the input as is, or UTF-16 transcoded to UTF-8.
pub(crate) enum Source<R> {
    Plain(Counted<R>),
    Utf16(Box<Utf16<R>>),
}

pub(crate) struct Utf16<R> {
    inner: Counted<R>,
    decoder: Decoder,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// The decoder has been told the input ended; it must not be called again.
    finished: bool,
    /// Transcoded bytes peeked for the declaration, handed out first.
    pending: Vec<u8>,
    pending_pos: usize,
}

impl<R> Source<R> {
    /// Bytes taken from the caller's reader so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        match self {
            Self::Plain(c) => c.count,
            Self::Utf16(u) => u.inner.count,
        }
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(c) => c.read(out),
            Self::Utf16(u) => u.read(out),
        }
    }
}

impl<R: Read> Read for Utf16<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // A UTF-16 code unit may become up to 3 bytes; keep room for one surrogate pair.
        if self.pending_pos < self.pending.len() {
            let n = out.len().min(self.pending.len() - self.pending_pos);
            out[..n].copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
            self.pending_pos += n;
            return Ok(n);
        }
        if self.finished {
            return Ok(0);
        }
        if out.len() < 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer too small",
            ));
        }
        loop {
            if self.pos == self.end && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                self.pos = 0;
                self.end = n;
                self.eof = n == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.buf[self.pos..self.end],
                out,
                self.eof,
            );
            self.pos += read;
            match result {
                DecoderResult::Malformed(_, _) => {
                    self.finished = true;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, InvalidInput));
                }
                DecoderResult::InputEmpty => {
                    if self.eof {
                        self.finished = true;
                        return Ok(written);
                    }
                    if written > 0 {
                        return Ok(written);
                    }
                }
                DecoderResult::OutputFull => return Ok(written),
            }
        }
    }
}

/// Peeks at the start of `input`, finds its encoding and returns the source for the lexer.
pub(crate) fn open<R: Read>(mut input: R) -> Result<(Source<R>, Detected)> {
    let mut prefix = Vec::with_capacity(4096);
    let mut count = 0u64;
    // Read until PEEK bytes or the end, without ever reading more than PEEK.
    let mut chunk = [0u8; 8192];
    while prefix.len() < PEEK {
        let want = (PEEK - prefix.len()).min(chunk.len());
        match input.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => {
                prefix.extend_from_slice(&chunk[..n]);
                count += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    let (bom_encoding, bom_len) = match Encoding::for_bom(&prefix) {
        Some((e, n)) => (Some(e), n),
        None => (None, 0),
    };
    let byte_pattern = match prefix.get(..4) {
        Some([0x3C, 0, 0x3F, 0]) => Some(UTF_16LE),
        Some([0, 0x3C, 0, 0x3F]) => Some(UTF_16BE),
        _ => None,
    };
    let utf16 = match bom_encoding.or(byte_pattern) {
        Some(e) if e == UTF_16LE || e == UTF_16BE => Some(e),
        _ => None,
    };
    if let Some(enc) = utf16 {
        let decoder = enc.new_decoder_with_bom_removal();
        let counted = Counted {
            prefix,
            prefix_pos: 0,
            inner: input,
            count,
        };
        let mut utf16 = Utf16 {
            inner: counted,
            decoder,
            buf: vec![0; 16 * 1024],
            pos: 0,
            end: 0,
            eof: false,
            finished: false,
            pending: Vec::new(),
            pending_pos: 0,
        };
        // The declaration is read from the transcoded start.
        let mut head = vec![0u8; 1024];
        let mut filled = 0;
        while filled < head.len() {
            let n = utf16.read(&mut head[filled..]).map_err(|e| {
                if matches!(e.get_ref(), Some(inner) if inner.is::<InvalidInput>()) {
                    Error::Encoding {
                        position: Position::default(),
                        encoding: enc.name(),
                    }
                } else {
                    Error::Io(e)
                }
            })?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        head.truncate(filled);
        let declared = declared_encoding(&head);
        utf16.pending = head;
        return Ok((
            Source::Utf16(Box::new(utf16)),
            Detected {
                encoding: enc,
                declared,
                bom_len,
            },
        ));
    }
    let declared = declared_encoding(&prefix[bom_len..]);
    let encoding = if bom_encoding == Some(UTF_8) {
        UTF_8
    } else if let Some(label) = &declared {
        resolve_label(label)?
    } else if looks_like_utf8(&prefix[bom_len..], prefix.len() < PEEK) {
        UTF_8
    } else {
        WINDOWS_1251
    };
    let mut counted = Counted {
        prefix,
        prefix_pos: bom_len,
        inner: input,
        count,
    };
    if counted.prefix_pos == counted.prefix.len() {
        counted.prefix = Vec::new();
        counted.prefix_pos = 0;
    }
    Ok((
        Source::Plain(counted),
        Detected {
            encoding,
            declared,
            bom_len,
        },
    ))
}

/// The encoding named by a label, if the reader supports it.
fn resolve_label(label: &str) -> Result<&'static Encoding> {
    let l = label.trim();
    let enc = match l.to_ascii_lowercase().as_str() {
        "1251" | "win1251" | "win-1251" | "cp-1251" | "windows1251" => Some(WINDOWS_1251),
        _ => Encoding::for_label(l.as_bytes()),
    };
    match enc {
        Some(e) if e == UTF_8 => Ok(UTF_8),
        Some(e) if e.is_single_byte() && e.is_ascii_compatible() => Ok(e),
        _ => Err(Error::UnsupportedEncoding(l.to_owned())),
    }
}

/// Whether `bytes` are valid UTF-8, allowing a sequence cut at the end when `complete` is
/// false.
fn looks_like_utf8(bytes: &[u8], complete: bool) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    }
}

/// The `encoding` pseudo-attribute of an XML declaration at the start of `head`.
fn declared_encoding(head: &[u8]) -> Option<String> {
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = memchr::memmem::find(&head[..head.len().min(1024)], b"?>")?;
    let decl = &head[5..end];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let mut rest = &decl[at + 8..];
    rest = trim_start(rest);
    rest = rest.strip_prefix(b"=")?;
    rest = trim_start(rest);
    let q = *rest.first()?;
    if q != b'"' && q != b'\'' {
        return None;
    }
    let close = memchr::memchr(q, &rest[1..])?;
    let value: Cow<'_, str> = String::from_utf8_lossy(&rest[1..1 + close]);
    Some(value.into_owned())
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    s
}
