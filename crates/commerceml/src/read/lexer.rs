//! The tokenizer under the reader: a pull lexer over raw bytes of an ASCII-compatible encoding
//! (UTF-8 or a single-byte code page; UTF-16 is transcoded before it gets here).
//!
//! It owns a sliding buffer that only ever holds the token being read plus one read chunk, so
//! memory is bounded by the [`Limits`], not by the input: a tag is scanned for its closing `>`
//! with quotes taken into account and the scan stops as soon as an attribute value, a name, a
//! text run or the whole tag grows past its limit. It checks well-formedness (matching end
//! tags, one root, attribute syntax), refuses DTDs, enforces the nesting depth and keeps line
//! numbers for error positions. Values are left as raw byte ranges; decoding is the caller's.

use std::io::{self, Read};
use std::ops::Range;

use encoding_rs::Encoding;
use memchr::{memchr, memchr3, memmem, memrchr};

use super::Limits;
use crate::error::{Error, Position};

/// How much is read from the input at a time.
const CHUNK: usize = 64 * 1024;

/// Slack allowed for whitespace around names in tags, beyond the name limit.
const WHITESPACE_SLACK: usize = 4096;

/// One token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A start tag; name and attributes are available until the next call. A self-closing tag
    /// is reported as `Start` followed by `End`.
    Start,
    /// An end tag (already checked against its start tag).
    End,
    /// A run of character data or a CDATA section inside the root element.
    Text,
    /// The end of the input after the root element (or of an input without any element).
    Eof,
}

/// An attribute of the current start tag, as ranges into the buffer.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    /// The qualified name.
    pub qname: Range<usize>,
    /// Where the local name starts (after the prefix and `:`).
    pub local: usize,
    /// The raw value between the quotes.
    pub value: Range<usize>,
}

/// An open element: where its qualified name is, in `buf` (its start tag is still in the
/// buffer; most elements close before the buffer slides) or in `stack`.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: usize,
    end: usize,
    in_buf: bool,
}

/// A place in the input: byte offset, line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pub offset: u64,
    pub line: u64,
    pub column: u64,
}

/// A marker error for invalid bytes found by a transcoding input adapter.
#[derive(Debug)]
pub(crate) struct InvalidInput;

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid byte sequence")
    }
}

impl std::error::Error for InvalidInput {}

pub(crate) struct Lexer<R> {
    input: R,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// End of the filled bytes in `buf`.
    end: usize,
    eof: bool,
    /// Absolute offset of `buf[0]`.
    base: u64,
    /// Absolute offset up to which newlines have been counted.
    counted: u64,
    /// Line number (1-based) at `counted`.
    line: u64,
    /// Absolute offset of the first byte of that line.
    line_start: u64,
    limits: Limits,
    /// The open elements, innermost last.
    open: Vec<Open>,
    /// Qualified names of open elements whose start tags have left the buffer, concatenated
    /// (a prefix of `open`: `fill` moves every name still in the buffer here before it drops
    /// the bytes before `pos`).
    stack: Vec<u8>,
    pending_end: bool,
    root_seen: bool,
    /// Where the last start tag began; its line and column are counted lazily (`mark_line`).
    mark_offset: u64,
    mark_line: Option<Mark>,
    name: Range<usize>,
    attrs: Vec<Attr>,
    text: Range<usize>,
    cdata: bool,
    /// Encoding of the bytes, for element paths in messages.
    encoding: &'static Encoding,
    /// Name of the input encoding, for errors of a transcoding adapter.
    input_encoding: &'static str,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Bytes that cannot occur in a name: markup characters, whitespace and control characters.
static BAD_NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    let bad = b"<>&\"'=/ ";
    let mut k = 0;
    while k < bad.len() {
        t[bad[k] as usize] = true;
        k += 1;
    }
    t
};

/// `NAME_CLASS` bit: the byte ends a name in the fast path of a start tag (whitespace, `>`,
/// `/`, quotes).
const NAME_STOP: u8 = 1;
/// `NAME_CLASS` bit: the byte cannot occur in a name (as [`BAD_NAME_BYTE`]).
const NAME_BAD: u8 = 2;

/// `NAME_CLASS` bit: `=`, which ends an attribute name.
const NAME_EQ: u8 = 4;

/// Per byte: [`NAME_STOP`], [`NAME_BAD`] and [`NAME_EQ`] bits.
static NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        if BAD_NAME_BYTE[i] {
            t[i] |= NAME_BAD;
        }
        i += 1;
    }
    let stop = b" \t\n\r>/\"'";
    let mut k = 0;
    while k < stop.len() {
        t[stop[k] as usize] |= NAME_STOP;
        k += 1;
    }
    t[b'=' as usize] |= NAME_EQ;
    t
};

/// Scans a name in `hay` from `i` up to the first byte with a `stop` bit in [`NAME_CLASS`]
/// (or the end of `hay`). Returns that index, the union of the classes of the name's bytes
/// and the index of its last `:`.
#[inline(always)]
fn scan_name(hay: &[u8], mut i: usize, stop: u8) -> (usize, u8, Option<usize>) {
    let mut colon = None;
    let mut class = 0u8;
    while let Some(&b) = hay.get(i) {
        if b >= 0x80 {
            // Non-ASCII bytes never end a name or make it invalid; skip them eight at a
            // time (Cyrillic names are all such bytes in windows-1251 and UTF-8).
            i += 1;
            while let Some(w) = hay.get(i..i + 8) {
                // A failed conversion (impossible) reads as ASCII: the byte loop decides.
                let ascii =
                    !u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) & 0x8080_8080_8080_8080;
                if ascii != 0 {
                    i += (ascii.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            continue;
        }
        let c = NAME_CLASS[usize::from(b)];
        if c & stop != 0 {
            break;
        }
        if b == b':' {
            colon = Some(i);
        }
        class |= c;
        i += 1;
    }
    (i, class, colon)
}

/// Start of the local name in `name[from..]` (after the last `:`).
fn local_start(name: &[u8], from: usize) -> usize {
    match name.iter().rposition(|&b| b == b':') {
        Some(k) => from + k + 1,
        None => from,
    }
}

impl<R: Read> Lexer<R> {
    pub(crate) fn new(
        input: R,
        limits: Limits,
        start_offset: u64,
        encoding: &'static Encoding,
        input_encoding: &'static str,
    ) -> Self {
        Self {
            input,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            base: start_offset,
            counted: start_offset,
            line: 1,
            line_start: start_offset,
            limits,
            open: Vec::with_capacity(16),
            stack: Vec::with_capacity(256),
            pending_end: false,
            root_seen: false,
            mark_offset: 0,
            mark_line: None,
            name: 0..0,
            attrs: Vec::new(),
            text: 0..0,
            cdata: false,
            encoding,
            input_encoding,
        }
    }

    pub(crate) fn input(&self) -> &R {
        &self.input
    }

    // ----- accessors for the current token -----

    /// Local name of the current start tag.
    pub(crate) fn name(&self) -> &[u8] {
        &self.buf[self.name.clone()]
    }

    /// Qualified name of the innermost open element.
    pub(crate) fn qname(&self) -> &[u8] {
        self.open.last().map_or(&[], |&o| self.open_name(o))
    }

    /// The qualified name of an open element.
    #[inline]
    fn open_name(&self, o: Open) -> &[u8] {
        let names = if o.in_buf { &self.buf } else { &self.stack };
        &names[o.start..o.end]
    }

    /// Absolute offset where the current `Text` token starts.
    pub(crate) fn text_offset(&self) -> u64 {
        self.base + self.text.start as u64
    }

    pub(crate) fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    pub(crate) fn bytes(&self, r: Range<usize>) -> &[u8] {
        &self.buf[r]
    }

    /// The raw text of the current `Text` token and whether it is a CDATA section.
    pub(crate) fn text(&self) -> (&[u8], bool) {
        (&self.buf[self.text.clone()], self.cdata)
    }

    /// Absolute offset of a buffer index of the current token.
    pub(crate) fn offset_of(&self, index: usize) -> u64 {
        self.base + index as u64
    }

    /// Offset where the last start tag began.
    pub(crate) fn mark_offset(&self) -> u64 {
        self.mark_offset
    }

    /// Line and column of the last start tag.
    pub(crate) fn mark(&mut self) -> Mark {
        if let Some(m) = self.mark_line {
            return m;
        }
        self.count_lines_to(self.mark_offset);
        let m = self.mark_at(self.mark_offset);
        self.mark_line = Some(m);
        m
    }

    /// Line and column of an offset saved from [`Lexer::mark_offset`]: exact for the last
    /// start tag and for anything not yet dropped from the buffer, else the line of the
    /// oldest counted point.
    pub(crate) fn mark_of(&self, offset: u64) -> Mark {
        match self.mark_line {
            Some(m) if m.offset == offset => m,
            _ => self.mark_at(offset),
        }
    }

    /// The path of open elements, `/A/B/C`.
    pub(crate) fn path(&self) -> String {
        let mut out = String::new();
        for &o in &self.open {
            out.push('/');
            let (s, _) = self.encoding.decode_without_bom_handling(self.open_name(o));
            out.push_str(&s);
        }
        out
    }

    /// Line and column of an absolute offset at or after the last counted point (any offset
    /// inside the current token qualifies); earlier offsets get the counted point's line.
    pub(crate) fn mark_at(&self, abs: u64) -> Mark {
        let mut line = self.line;
        let mut line_start = self.line_start;
        if abs > self.counted && abs <= self.base + self.end as u64 {
            let from = (self.counted - self.base) as usize;
            let to = (abs - self.base) as usize;
            let s = &self.buf[from..to];
            if let Some(last) = memrchr(b'\n', s) {
                line += count_newlines(s);
                line_start = self.base + (from + last + 1) as u64;
            }
        }
        Mark {
            offset: abs,
            line,
            column: abs.saturating_sub(line_start) + 1,
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn position_at(&self, abs: u64) -> Position {
        let m = self.mark_at(abs);
        Position {
            offset: m.offset,
            line: m.line,
            column: m.column,
            path: self.path(),
        }
    }

    /// A position from a saved mark, with the current path plus `child`.
    pub(crate) fn position_from(&self, m: Mark, child: Option<&str>) -> Position {
        let mut path = self.path();
        if let Some(c) = child {
            path.push('/');
            path.push_str(c);
        }
        Position {
            offset: m.offset,
            line: m.line,
            column: m.column,
            path,
        }
    }

    fn here(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[cold]
    #[inline(never)]
    fn syntax(&self, abs: u64, message: impl Into<String>) -> Error {
        Error::Syntax {
            position: self.position_at(abs),
            message: message.into(),
        }
    }

    #[cold]
    #[inline(never)]
    fn limit(&self, abs: u64, what: &'static str, limit: usize) -> Error {
        Error::Limit {
            position: self.position_at(abs),
            what,
            limit,
        }
    }

    #[cold]
    #[inline(never)]
    fn eof_error(&self) -> Error {
        Error::UnexpectedEof {
            position: self.position_at(self.base + self.end as u64),
        }
    }

    fn count_lines_to(&mut self, abs: u64) {
        if abs <= self.counted {
            return;
        }
        let from = (self.counted - self.base) as usize;
        let to = (abs - self.base) as usize;
        let s = &self.buf[from..to];
        if let Some(last) = memrchr(b'\n', s) {
            self.line += count_newlines(s);
            self.line_start = self.base + (from + last + 1) as u64;
        }
        self.counted = abs;
    }

    /// Reads more input, keeping the unread bytes. `false` at the end of the input.
    #[inline(never)]
    fn fill(&mut self) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            if self.mark_line.is_none() && self.mark_offset >= self.counted {
                self.count_lines_to(self.mark_offset);
                self.mark_line = Some(self.mark_at(self.mark_offset));
            }
            self.count_lines_to(self.here());
            // The names of open elements are before `pos`: keep them.
            for o in self.open.iter_mut().filter(|o| o.in_buf) {
                let start = self.stack.len();
                self.stack.extend_from_slice(&self.buf[o.start..o.end]);
                *o = Open {
                    start,
                    end: self.stack.len(),
                    in_buf: false,
                };
            }
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.buf.len() < self.end + CHUNK {
            self.buf.resize(self.end + CHUNK, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn io_error(&self, e: io::Error) -> Error {
        if matches!(e.get_ref(), Some(inner) if inner.is::<InvalidInput>()) {
            Error::Encoding {
                position: self.position_at(self.base + self.end as u64),
                encoding: self.input_encoding,
            }
        } else {
            Error::Io(e)
        }
    }

    /// Makes at least `n` unread bytes available; `false` if the input ends first.
    fn fill_min(&mut self, n: usize) -> Result<bool, Error> {
        while self.end - self.pos < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next token.
    pub(crate) fn next(&mut self) -> Result<Event, Error> {
        if self.pending_end {
            self.pending_end = false;
            self.pop();
            return Ok(Event::End);
        }
        loop {
            if self.pos == self.end && !self.fill()? {
                if !self.open.is_empty() {
                    return Err(self.eof_error());
                }
                return Ok(Event::Eof);
            }
            if self.buf[self.pos] != b'<' {
                let start = self.here();
                let len = self.scan_text(start)?;
                let r = self.pos..self.pos + len;
                if r.end == self.end && self.eof && !self.open.is_empty() {
                    // The input ends inside an element (maybe inside a character).
                    return Err(self.eof_error());
                }
                self.pos += len;
                if self.open.is_empty() {
                    if !self.buf[r].iter().all(|&b| is_ws(b)) {
                        return Err(self.syntax(start, "text outside the root element"));
                    }
                    continue;
                }
                self.text = r;
                self.cdata = false;
                return Ok(Event::Text);
            }
            if !self.fill_min(2)? {
                return Err(self.eof_error());
            }
            match self.buf[self.pos + 1] {
                b'/' => return self.end_tag(),
                b'?' => {
                    let start = self.here();
                    let n = self.scan_for(
                        b"?>",
                        2,
                        self.limits.max_text_len,
                        "processing instruction length",
                        start,
                    )?;
                    self.pos += n + 2;
                }
                b'!' => {
                    if self.markup_declaration()? {
                        return Ok(Event::Text);
                    }
                }
                _ => return self.start_tag(),
            }
        }
    }

    #[inline]
    fn pop(&mut self) {
        if let Some(o) = self.open.pop() {
            if !o.in_buf {
                self.stack.truncate(o.start);
            }
        }
    }

    /// When the bytes at the read position are a text run (maybe empty) and the end tag of
    /// the innermost open element, all in the buffer, makes that run the current text as a
    /// `Text` event would and queues the `End` as for a self-closing tag: the next call of
    /// [`Lexer::next`] returns it without scanning again. Returns whether it did; if not,
    /// nothing changed. (The common `<name>value</name>` then costs one scan instead of two
    /// events.)
    pub(crate) fn text_then_end(&mut self) -> bool {
        if self.pending_end {
            return false;
        }
        let Some(&top) = self.open.last() else {
            return false;
        };
        let n = top.end - top.start;
        let hay = &self.buf[self.pos..self.end];
        let lt = match find_lt_near(hay) {
            Some(lt) => lt,
            None => match hay.get(32..).and_then(|rest| memchr(b'<', rest)) {
                Some(k) => 32 + k,
                None => return false,
            },
        };
        if lt > self.limits.max_text_len {
            return false;
        }
        let Some(tag) = hay.get(lt + 1..lt + 3 + n) else {
            return false;
        };
        if tag[0] != b'/' || tag[n + 1] != b'>' || !same_bytes(&tag[1..n + 1], self.open_name(top))
        {
            return false;
        }
        self.text = self.pos..self.pos + lt;
        self.cdata = false;
        self.pos += lt + 3 + n;
        self.pending_end = true;
        true
    }

    /// Takes the `End` queued by [`Lexer::text_then_end`] (or by a self-closing tag) as
    /// [`Lexer::next`] would return it next.
    #[inline]
    pub(crate) fn take_pending_end(&mut self) {
        if self.pending_end {
            self.pending_end = false;
            self.pop();
        }
    }

    /// Length of the text run at `pos` (up to the next `<` or the end of the input).
    fn scan_text(&mut self, start: u64) -> Result<usize, Error> {
        if let Some(len) = find_lt_near(&self.buf[self.pos..self.end]) {
            if len > self.limits.max_text_len {
                return Err(self.limit(start, "text length", self.limits.max_text_len));
            }
            return Ok(len);
        }
        let mut i = 0;
        loop {
            if let Some(k) = memchr(b'<', &self.buf[self.pos + i..self.end]) {
                let len = i + k;
                if len > self.limits.max_text_len {
                    return Err(self.limit(start, "text length", self.limits.max_text_len));
                }
                return Ok(len);
            }
            i = self.end - self.pos;
            if i > self.limits.max_text_len {
                return Err(self.limit(start, "text length", self.limits.max_text_len));
            }
            if !self.fill()? {
                return Ok(i);
            }
        }
    }

    /// Index (relative to `pos`) of `needle`, searching from `from`.
    fn scan_for(
        &mut self,
        needle: &[u8],
        from: usize,
        max: usize,
        what: &'static str,
        start: u64,
    ) -> Result<usize, Error> {
        let mut i = from;
        loop {
            if let Some(k) = memmem::find(&self.buf[self.pos + i..self.end], needle) {
                if i + k - from > max {
                    return Err(self.limit(start, what, max));
                }
                return Ok(i + k);
            }
            let avail = self.end - self.pos;
            i = avail.saturating_sub(needle.len() - 1).max(from);
            if avail - from > max {
                return Err(self.limit(start, what, max));
            }
            if !self.fill()? {
                return Err(self.eof_error());
            }
        }
    }

    /// `<!…`: a comment (skipped, `false`), a CDATA section (`true`, text set) or a refused DTD.
    #[cold]
    #[inline(never)]
    fn markup_declaration(&mut self) -> Result<bool, Error> {
        let start = self.here();
        self.fill_min(9)?;
        let head = &self.buf[self.pos..self.end.min(self.pos + 9)];
        if head.starts_with(b"<!--") {
            let n = self.scan_for(b"-->", 4, self.limits.max_text_len, "comment length", start)?;
            self.pos += n + 3;
            return Ok(false);
        }
        if head.starts_with(b"<![CDATA[") {
            let n = self.scan_for(b"]]>", 9, self.limits.max_text_len, "text length", start)?;
            if self.open.is_empty() {
                return Err(self.syntax(start, "CDATA outside the root element"));
            }
            self.text = self.pos + 9..self.pos + n;
            self.cdata = true;
            self.pos += n + 3;
            return Ok(true);
        }
        let upper: Vec<u8> = head.iter().map(u8::to_ascii_uppercase).collect();
        for kw in [
            &b"<!DOCTYPE"[..],
            b"<!ENTITY",
            b"<!ELEMENT",
            b"<!ATTLIST",
            b"<!NOTATION",
        ] {
            let n = kw.len().min(upper.len());
            if upper.len() >= 3 && upper[..n] == kw[..n] {
                return Err(Error::Dtd {
                    position: self.position_at(start),
                });
            }
        }
        if head.len() < 4 {
            return Err(self.eof_error());
        }
        Err(self.syntax(start, "unexpected '<!'"))
    }

    /// Index (relative to `pos`) of the `>` closing the start tag at `pos`, quotes respected.
    #[inline(never)]
    fn scan_tag(&mut self, start: u64) -> Result<usize, Error> {
        let max_attr = self.limits.max_attribute_len;
        let max_run = self.limits.max_name_len + WHITESPACE_SLACK;
        let max_tag = self.limits.max_name_len
            + self.limits.max_attributes * (self.limits.max_name_len + max_attr + 8)
            + WHITESPACE_SLACK;
        let mut i = 1;
        let mut quote: Option<u8> = None;
        let mut run_start = 1; // start of the current quoted value or unquoted run
        loop {
            let hay = &self.buf[self.pos + i..self.end];
            match quote {
                None => {
                    if let Some(k) = memchr3(b'>', b'"', b'\'', hay) {
                        let c = hay[k];
                        i += k;
                        if i - run_start > max_run {
                            return Err(self.limit(
                                start,
                                "element or attribute name length",
                                self.limits.max_name_len,
                            ));
                        }
                        if c == b'>' {
                            return Ok(i);
                        }
                        quote = Some(c);
                        i += 1;
                        run_start = i;
                        continue;
                    }
                    i = self.end - self.pos;
                    if i - run_start > max_run {
                        return Err(self.limit(
                            start,
                            "element or attribute name length",
                            self.limits.max_name_len,
                        ));
                    }
                }
                Some(q) => {
                    if let Some(k) = memchr(q, hay) {
                        i += k;
                        if i - run_start > max_attr {
                            return Err(self.limit(
                                self.base + (self.pos + run_start) as u64,
                                "attribute value length",
                                max_attr,
                            ));
                        }
                        quote = None;
                        i += 1;
                        run_start = i;
                        continue;
                    }
                    i = self.end - self.pos;
                    if i - run_start > max_attr {
                        return Err(self.limit(
                            self.base + (self.pos + run_start) as u64,
                            "attribute value length",
                            max_attr,
                        ));
                    }
                }
            }
            if i > max_tag {
                return Err(self.limit(start, "tag length", max_tag));
            }
            if !self.fill()? {
                return Err(self.eof_error());
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn check_name(&self, r: Range<usize>, at: u64, what: &str) -> Result<(), Error> {
        let name = &self.buf[r];
        if name.is_empty() {
            return Err(self.syntax(at, format!("missing {what} name")));
        }
        if name.len() > self.limits.max_name_len {
            return Err(self.limit(
                at,
                "element or attribute name length",
                self.limits.max_name_len,
            ));
        }
        let first = name[0];
        if first.is_ascii_digit() || first == b'-' || first == b'.' || first == b':' {
            return Err(self.syntax(at, format!("invalid {what} name")));
        }
        if name.iter().any(|&b| BAD_NAME_BYTE[usize::from(b)]) {
            return Err(self.syntax(at, format!("invalid character in {what} name")));
        }
        Ok(())
    }

    fn start_tag(&mut self) -> Result<Event, Error> {
        let start = self.here();
        let mut p = self.pos;
        // Fast path for the common `<name>` and `<name/>`: scan the name up to the first byte
        // that can end it; when that is `>` or `/>` (inside the buffer), the tag is complete
        // and has no attributes, so `scan_tag` would find the same `>`.
        let hay = &self.buf[..self.end];
        let (mut i, class, mut colon) = scan_name(hay, p + 1, NAME_STOP);
        let mut attrs_done = false;
        let fast = match self.buf[i.min(self.end)..self.end] {
            [b'>', ..] => Some((i - p, false)),
            [b'/', b'>', ..] => Some((i + 1 - p, true)),
            [b, ..] if is_ws(b) => {
                let fast = self.attributes_fast(p, i);
                attrs_done = fast.is_some();
                fast
            }
            _ => None,
        };
        let mut bad = class & NAME_BAD != 0;
        let (gt, self_closing, content_end) = match fast {
            Some((gt, self_closing)) => (gt, self_closing, i),
            None => {
                let gt = self.scan_tag(start)?;
                // Reading more input may have moved the buffer.
                p = self.pos;
                let self_closing = gt >= 2 && self.buf[p + gt - 1] == b'/';
                let content_end = if self_closing { p + gt - 1 } else { p + gt };
                i = p + 1;
                colon = None;
                bad = false;
                while i < content_end {
                    let b = self.buf[i];
                    if is_ws(b) {
                        break;
                    }
                    bad |= BAD_NAME_BYTE[usize::from(b)];
                    if b == b':' {
                        colon = Some(i);
                    }
                    i += 1;
                }
                (gt, self_closing, content_end)
            }
        };
        let qname = p + 1..i;
        if bad || i == p + 1 || i - p - 1 > self.limits.max_name_len || colon == Some(p + 1) {
            self.check_name(qname.clone(), start, "element")?;
        }
        let first = self.buf[p + 1];
        if first.is_ascii_digit() || first == b'-' || first == b'.' {
            self.check_name(qname.clone(), start, "element")?;
        }
        if self.open.is_empty() && self.root_seen {
            return Err(self.syntax(start, "content after the root element"));
        }
        if self.open.len() >= self.limits.max_depth {
            return Err(self.limit(start, "nesting depth", self.limits.max_depth));
        }
        let local = colon.map_or(qname.start, |c| c + 1);
        self.name = local..qname.end;
        if attrs_done {
            // `attributes_fast` has read them.
        } else if i < content_end {
            self.parse_attributes(i, content_end, start)?;
        } else {
            self.attrs.clear();
        }
        self.mark_offset = start;
        self.mark_line = None;
        self.open.push(Open {
            start: qname.start,
            end: qname.end,
            in_buf: true,
        });
        self.root_seen = true;
        self.pos += gt + 1;
        self.pending_end = self_closing;
        Ok(Event::Start)
    }

    /// The common start tag with attributes in one pass: the tag at `p`, whose name ends at
    /// the whitespace byte at `i`, is complete in the buffer and valid within the limits.
    /// Fills `attrs` and returns the index of its `>` (relative to `p`) and whether it is
    /// self-closing. `None` for anything else (an error, a tag not yet in the buffer, an
    /// unusual form): `scan_tag` and `parse_attributes` then decide, as they do for every
    /// tag this accepts, with the same result.
    #[inline(never)]
    fn attributes_fast(&mut self, p: usize, mut i: usize) -> Option<(usize, bool)> {
        let buf = &self.buf[..self.end];
        let limits = &self.limits;
        let max_run = limits.max_name_len + WHITESPACE_SLACK;
        // Start of the current stretch outside quotes, as `scan_tag` measures it.
        let mut run_start = p + 1;
        self.attrs.clear();
        loop {
            let ws_start = i;
            while is_ws(*buf.get(i)?) {
                i += 1;
            }
            match buf[i] {
                b'>' if i - run_start <= max_run => return Some((i - p, false)),
                b'/' if buf.get(i + 1) == Some(&b'>') && i + 1 - run_start <= max_run => {
                    return Some((i + 1 - p, true))
                }
                _ => {}
            }
            if i == ws_start {
                return None;
            }
            let ns = i;
            let (end, class, colon) = scan_name(buf, ns, NAME_STOP | NAME_EQ);
            i = end;
            // A stop byte other than `=` and whitespace (`>`, `/`, a quote) is invalid in a
            // name; the general path reports it.
            let first = buf[ns];
            if i == ns
                || !matches!(*buf.get(i)?, b'=' | b' ' | b'\t' | b'\n' | b'\r')
                || class & NAME_BAD != 0
                || i - ns > limits.max_name_len
                || first.is_ascii_digit()
                || matches!(first, b'-' | b'.' | b':')
            {
                return None;
            }
            let qname = ns..i;
            while is_ws(*buf.get(i)?) {
                i += 1;
            }
            if buf[i] != b'=' {
                return None;
            }
            i += 1;
            while is_ws(*buf.get(i)?) {
                i += 1;
            }
            let q = buf[i];
            if !matches!(q, b'"' | b'\'') || i - run_start > max_run {
                return None;
            }
            i += 1;
            // Up to the closing quote; a `<` before it is an error the general path reports.
            let k = buf[i..].iter().position(|&b| b == q || b == b'<')?;
            let value = i..i + k;
            i += k + 1;
            run_start = i;
            if buf[value.end] != q
                || k > limits.max_attribute_len
                || self.attrs.len() >= limits.max_attributes
            {
                return None;
            }
            let name = &buf[qname.clone()];
            if self
                .attrs
                .iter()
                .any(|a| same_bytes(&buf[a.qname.clone()], name))
            {
                return None;
            }
            self.attrs.push(Attr {
                qname,
                local: colon.map_or(ns, |c| c + 1),
                value,
            });
            // Next: `>` or `/>`, or whitespace and another attribute (the top of the loop
            // checks both).
        }
    }

    #[inline(never)]
    fn parse_attributes(&mut self, mut i: usize, end: usize, start: u64) -> Result<(), Error> {
        self.attrs.clear();
        loop {
            let ws_start = i;
            while i < end && is_ws(self.buf[i]) {
                i += 1;
            }
            if i == end {
                return Ok(());
            }
            let at = self.offset_of(i);
            if i == ws_start {
                return Err(self.syntax(at, "missing whitespace before an attribute"));
            }
            let ns = i;
            while i < end && !is_ws(self.buf[i]) && self.buf[i] != b'=' {
                i += 1;
            }
            let qname = ns..i;
            self.check_name(qname.clone(), at, "attribute")?;
            while i < end && is_ws(self.buf[i]) {
                i += 1;
            }
            if i == end || self.buf[i] != b'=' {
                return Err(self.syntax(at, "attribute without a value"));
            }
            i += 1;
            while i < end && is_ws(self.buf[i]) {
                i += 1;
            }
            if i == end || !matches!(self.buf[i], b'"' | b'\'') {
                return Err(self.syntax(at, "attribute value without quotes"));
            }
            let q = self.buf[i];
            i += 1;
            // Attribute values are short: a plain loop costs less than a `memchr` call.
            let Some(k) = self.buf[i..end].iter().position(|&b| b == q) else {
                return Err(self.syntax(at, "unterminated attribute value"));
            };
            let value = i..i + k;
            i += k + 1;
            if value.len() > self.limits.max_attribute_len {
                return Err(self.limit(
                    at,
                    "attribute value length",
                    self.limits.max_attribute_len,
                ));
            }
            if self.buf[value.clone()].contains(&b'<') {
                return Err(self.syntax(at, "'<' in an attribute value"));
            }
            if self.attrs.len() >= self.limits.max_attributes {
                return Err(self.limit(start, "attribute count", self.limits.max_attributes));
            }
            let name = &self.buf[qname.clone()];
            if self
                .attrs
                .iter()
                .any(|a| same_bytes(&self.buf[a.qname.clone()], name))
            {
                return Err(self.syntax(at, "duplicate attribute"));
            }
            let local = local_start(name, ns);
            self.attrs.push(Attr {
                qname,
                local,
                value,
            });
        }
    }

    fn end_tag(&mut self) -> Result<Event, Error> {
        // Fast path: `</name>` with exactly the name of the open element, inside the buffer.
        if let Some(&top) = self.open.last() {
            let n = top.end - top.start;
            let p = self.pos;
            if let Some(tag) = self.buf[..self.end].get(p + 2..p + 3 + n) {
                if tag[n] == b'>' && same_bytes(&tag[..n], self.open_name(top)) {
                    self.pop();
                    self.pos = p + 3 + n;
                    return Ok(Event::End);
                }
            }
        }
        let start = self.here();
        let max = self.limits.max_name_len + WHITESPACE_SLACK;
        let gt = match memchr(b'>', &self.buf[self.pos + 2..self.end]) {
            Some(k) if k <= max => k + 2,
            _ => self.scan_for(b">", 2, max, "element or attribute name length", start)?,
        };
        let p = self.pos;
        let mut e = p + gt;
        while e > p + 2 && is_ws(self.buf[e - 1]) {
            e -= 1;
        }
        let name = &self.buf[p + 2..e];
        let Some(&top) = self.open.last() else {
            return Err(self.syntax(start, "end tag without a start tag"));
        };
        if name != self.open_name(top) {
            let (found, _) = self.encoding.decode_without_bom_handling(name);
            let (open, _) = self
                .encoding
                .decode_without_bom_handling(self.open_name(top));
            return Err(self.syntax(
                start,
                format!("end tag </{found}> does not match the open element <{open}>"),
            ));
        }
        self.pop();
        self.pos += gt + 1;
        Ok(Event::End)
    }
}

fn count_newlines(s: &[u8]) -> u64 {
    // Fixed-size blocks with a byte accumulator vectorize well.
    let blocks = s.chunks_exact(64);
    let rest = blocks.remainder();
    let mut n = 0u64;
    for block in blocks {
        let mut acc = 0u8;
        for &b in block {
            acc += u8::from(b == b'\n');
        }
        n += u64::from(acc);
    }
    n + rest.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Byte equality for short slices (names) without a call into `memcmp`: eight bytes at a
/// time, the last word overlapping the one before.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word8(a, i) != word8(b, i) {
                return false;
            }
            i += 8;
        }
        return word8(a, n - 8) == word8(b, n - 8);
    }
    if n >= 4 {
        return word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4);
    }
    a == b
}

/// The eight bytes of `s` from `i`, little-endian (callers keep them in bounds; 0 past the end).
#[inline]
pub(crate) fn word8(s: &[u8], i: usize) -> u64 {
    s.get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0, u64::from_le_bytes)
}

/// The four bytes of `s` from `i`, little-endian (callers keep them in bounds; 0 past the end).
#[inline]
pub(crate) fn word4(s: &[u8], i: usize) -> u32 {
    s.get(i..i + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_le_bytes)
}

/// Index of the first `<` in the first 32 bytes of `hay`, eight bytes at a time: most text
/// runs are short values or indentation, and a call into `memchr` costs more than that.
/// `None` if there is none there (there may be one further on).
#[inline]
fn find_lt_near(hay: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i < 32 {
        let Some(w) = hay.get(i..i + 8) else {
            return hay[i..].iter().position(|&b| b == b'<').map(|k| i + k);
        };
        // A failed conversion (impossible for 8 bytes) finds nothing here.
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) ^ (LOW * u64::from(b'<'));
        let found = x.wrapping_sub(LOW) & !x & HIGH;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    None
}
