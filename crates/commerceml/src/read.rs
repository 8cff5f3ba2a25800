//! Streaming reader: one document (or container, or root-level counterparty) at a time.
//!
//! ```no_run
//! # fn main() -> commerceml::Result<()> {
//! let file = std::fs::File::open("orders.xml")?;
//! let mut reader = commerceml::Reader::new(file)?;
//! println!("schema {:?}, {}", reader.root().schema_version, reader.encoding());
//! while let Some(item) = reader.next_item()? {
//!     if let commerceml::Item::Document(doc) = item {
//!         println!("order {:?}: {:?}", doc.number, doc.sum);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! How it works: the encoding is found from the byte order mark, else the XML declaration, else
//! by trying UTF-8 on the first 64 KiB and falling back to windows-1251. UTF-8 and single-byte
//! code pages are tokenized as raw bytes (markup is ASCII in both), element names are matched
//! as bytes against the names of [`crate::tags`] encoded once per reader, and only values are
//! decoded. UTF-16 input is transcoded to UTF-8 on the fly. Memory is bounded by [`Limits`],
//! independent of the input size.
//!
//! Error positions: byte offsets count from the start of the input (for UTF-16 input, from the
//! start of its UTF-8 transcoding); lines are 1-based; columns are 1-based and count bytes.

mod lexer;
mod source;

use std::borrow::Cow;
use std::io::Read;

use encoding_rs::{Encoding, UTF_8};

use self::lexer::{same_bytes, word4, word8, Attr, Event, Lexer, Mark};
use self::source::Source;
use crate::error::{Error, Position, Result};
use crate::model::{
    Address, AddressField, Bank, BankAccount, Contact, Container, Counterparty, Discount, Document,
    Element, Item, Line, Representative, Requisite, Root, Tax, TaxRate, Unit, Warehouse,
};
use crate::tags as t;
use crate::value::{parse_bool, parse_decimal, parse_plain_decimal, SchemaVersion};

/// Limits against hostile input. Every field has a default suited to real exchange files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum element nesting depth. Default 64.
    pub max_depth: usize,
    /// Maximum length of an element or attribute name, in bytes. Default 256.
    pub max_name_len: usize,
    /// Maximum length of one text value, in bytes. Default 1 MiB.
    pub max_text_len: usize,
    /// Maximum length of one attribute value, in bytes. Default 64 KiB.
    pub max_attribute_len: usize,
    /// Maximum number of attributes on one element. Default 64.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_name_len: 256,
            max_text_len: 1 << 20,
            max_attribute_len: 64 << 10,
            max_attributes: 64,
        }
    }
}

impl Limits {
    /// Sets the maximum nesting depth.
    pub fn with_max_depth(mut self, n: usize) -> Self {
        self.max_depth = n;
        self
    }

    /// Sets the maximum name length.
    pub fn with_max_name_len(mut self, n: usize) -> Self {
        self.max_name_len = n;
        self
    }

    /// Sets the maximum text length.
    pub fn with_max_text_len(mut self, n: usize) -> Self {
        self.max_text_len = n;
        self
    }

    /// Sets the maximum attribute value length.
    pub fn with_max_attribute_len(mut self, n: usize) -> Self {
        self.max_attribute_len = n;
        self
    }

    /// Sets the maximum number of attributes per element.
    pub fn with_max_attributes(mut self, n: usize) -> Self {
        self.max_attributes = n;
        self
    }
}

/// Options of the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Limits against hostile input.
    pub limits: Limits,
}

impl ReadOptions {
    /// Options with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self { limits }
    }
}

/// The reader keeps its vector for collecting lines up to this capacity (so its memory
/// does not grow with the largest document read).
const MAX_REUSED_LINES: usize = 64;

/// How deep `ПодчиненныйДокумент` may nest before the rest is kept as generic elements.
const MAX_SUBORDINATE_NESTING: usize = 8;

macro_rules! tag_table {
    ($($variant:ident = $name:ident),* $(,)?) => {
        /// Element and attribute names the reader understands.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Tag {
            $($variant,)*
            /// Anything else.
            Other,
        }

        const TAG_NAMES: &[(Tag, &str)] = &[$((Tag::$variant, t::$name),)*];
    };
}

tag_table! {
    Root = ROOT,
    Container = CONTAINER,
    Document = DOCUMENT,
    Counterparties = COUNTERPARTIES,
    Counterparty = COUNTERPARTY,
    Id = ID,
    Number = NUMBER,
    Number1C = NUMBER_1C,
    Date = DATE,
    Time = TIME,
    Date1C = DATE_1C,
    Operation = OPERATION,
    Role = ROLE,
    Currency = CURRENCY,
    Rate = RATE,
    Sum = SUM,
    Version = VERSION,
    DeletionMark = DELETION_MARK,
    Basis = BASIS,
    PaymentDue = PAYMENT_DUE,
    Comment = COMMENT,
    Taxes = TAXES,
    Tax = TAX,
    Discounts = DISCOUNTS,
    Discount = DISCOUNT,
    Warehouses = WAREHOUSES,
    Warehouse = WAREHOUSE,
    Lines = LINES,
    Line = LINE,
    Requisites = REQUISITES,
    Requisite = REQUISITE,
    Subordinates = SUBORDINATES,
    Subordinate = SUBORDINATE,
    Name = NAME,
    FullName = FULL_NAME,
    OfficialName = OFFICIAL_NAME,
    LastName = LAST_NAME,
    FirstName = FIRST_NAME,
    MiddleName = MIDDLE_NAME,
    BirthDate = BIRTH_DATE,
    Gender = GENDER,
    Inn = INN,
    Kpp = KPP,
    Okpo = OKPO,
    RegistrationAddress = REGISTRATION_ADDRESS,
    LegalAddress = LEGAL_ADDRESS,
    Address = ADDRESS,
    Presentation = PRESENTATION,
    AddressField = ADDRESS_FIELD,
    Kind = KIND,
    Value = VALUE,
    Contacts = CONTACTS,
    Contact = CONTACT,
    Representatives = REPRESENTATIVES,
    Representative = REPRESENTATIVE,
    Relation = RELATION,
    BankAccounts = BANK_ACCOUNTS,
    BankAccount = BANK_ACCOUNT,
    AccountNumber = ACCOUNT_NUMBER,
    Bank = BANK,
    Bic = BIC,
    CorrespondentAccount = CORRESPONDENT_ACCOUNT,
    CatalogId = CATALOG_ID,
    Sku = SKU,
    BaseUnit = BASE_UNIT,
    Unit = UNIT,
    UnitCode = UNIT_CODE,
    UnitFullName = UNIT_FULL_NAME,
    UnitShortName = UNIT_SHORT_NAME,
    UnitInternational = UNIT_INTERNATIONAL,
    Coefficient = COEFFICIENT,
    PricePerUnit = PRICE_PER_UNIT,
    Price = PRICE,
    Quantity = QUANTITY,
    TaxRates = TAX_RATES,
    TaxRate = TAX_RATE,
    RateValue = RATE_VALUE,
    Included = INCLUDED,
    Percent = PERCENT,
}

impl Tag {
    fn as_str(self) -> &'static str {
        TAG_NAMES
            .iter()
            .find(|(tag, _)| *tag == self)
            .map_or("?", |(_, name)| name)
    }
}

/// The tag names encoded in the encoding of the bytes being lexed, in a small open-addressing
/// table keyed by a cheap hash of the length and the first and last eight bytes (names are
/// short, and a lookup happens for every start tag). Those words and the length decide
/// equality for names up to 16 bytes; longer ones are compared in full.
struct TagTable {
    keys: Vec<TagKey>,
    /// Index into `keys` + 1; 0 is an empty slot.
    slots: [u8; TAG_SLOTS],
}

struct TagKey {
    words: (u64, u64),
    bytes: Box<[u8]>,
    tag: Tag,
}

const TAG_SLOTS: usize = 512;

/// The first and last eight bytes of `name` (overlapping); shorter names as two overlapping
/// four-byte halves, or their bytes below four. Together with the length they determine a
/// name of up to 16 bytes.
#[inline]
fn name_words(name: &[u8]) -> (u64, u64) {
    let n = name.len();
    if n >= 8 {
        (word8(name, 0), word8(name, n - 8))
    } else if n >= 4 {
        let v = u64::from(word4(name, 0)) | (u64::from(word4(name, n - 4)) << 32);
        (v, v)
    } else {
        let v = name
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        (v, v)
    }
}

#[inline]
fn tag_hash(n: usize, (head, tail): (u64, u64)) -> usize {
    let h = (head ^ tail.rotate_left(29) ^ (n as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top bits of the product depend on every bit of the input.
    (h >> (64 - TAG_SLOTS.trailing_zeros())) as usize
}

impl TagTable {
    fn new(encoding: &'static Encoding) -> Self {
        let mut table = Self {
            keys: Vec::with_capacity(TAG_NAMES.len()),
            slots: [0; TAG_SLOTS],
        };
        for &(tag, name) in TAG_NAMES {
            let (bytes, _, unmappable) = encoding.encode(name);
            if unmappable || table.get(&bytes) != Tag::Other {
                continue;
            }
            let words = name_words(&bytes);
            let mut i = tag_hash(bytes.len(), words);
            table.keys.push(TagKey {
                words,
                bytes: bytes.into_owned().into_boxed_slice(),
                tag,
            });
            while table.slots[i] != 0 {
                i = (i + 1) & (TAG_SLOTS - 1);
            }
            // At most TAG_NAMES.len() (< 255) entries, so the index fits.
            table.slots[i] = u8::try_from(table.keys.len()).unwrap_or(0);
        }
        table
    }

    #[inline]
    fn get(&self, name: &[u8]) -> Tag {
        let n = name.len();
        let words = name_words(name);
        let mut i = tag_hash(n, words);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return Tag::Other;
            }
            if let Some(key) = self.keys.get(usize::from(slot) - 1) {
                if key.words == words
                    && key.bytes.len() == n
                    && (n <= 16 || same_bytes(&key.bytes, name))
                {
                    return key.tag;
                }
            }
            i = (i + 1) & (TAG_SLOTS - 1);
        }
    }
}

/// A streaming CommerceML reader over any [`Read`].
///
/// Yields the children of the root one at a time ([`Reader::next_item`] or the [`Iterator`]
/// implementation): each `Документ`, each `Контейнер`, each `Контрагент` of a root-level
/// `Контрагенты`, and any other root child as a generic [`Element`]. After an error the reader
/// yields nothing more.
pub struct Reader<R> {
    lx: Lexer<Source<R>>,
    root: Root,
    tags: TagTable,
    /// The encoding of the lexed bytes (UTF-8 for transcoded UTF-16 input).
    codec: &'static Encoding,
    /// How values are decoded from the lexed bytes.
    values: Values,
    /// Reused for values parsed rather than kept (decimals, booleans).
    scratch: String,
    /// Reused for the lines of a document (empty between documents).
    lines: Vec<Line>,
    /// Recently decoded non-ASCII values.
    cache: ValueCache,
    /// The encoding of the input.
    encoding: &'static Encoding,
    declared: Option<String>,
    has_bom: bool,
    /// Decimal separator from the root's `ФорматСуммы` (`ЧРД=`), when it is not `.` or `,`.
    decimal_separator: Option<char>,
    in_counterparties: bool,
    finished: bool,
    /// Where the last item's start tag began.
    item_mark: Mark,
}

impl<R: Read> Reader<R> {
    /// Opens a document with default options: detects the encoding, reads up to and including
    /// the root start tag.
    pub fn new(input: R) -> Result<Self> {
        Self::with_options(input, ReadOptions::default())
    }

    /// Opens a document with the given options.
    pub fn with_options(input: R, options: ReadOptions) -> Result<Self> {
        let (source, detected) = source::open(input)?;
        let transcoded = matches!(source, Source::Utf16(_));
        let codec = if transcoded { UTF_8 } else { detected.encoding };
        let start = if transcoded {
            0
        } else {
            detected.bom_len as u64
        };
        let lx = Lexer::new(
            source,
            options.limits,
            start,
            codec,
            detected.encoding.name(),
        );
        let mut reader = Self {
            lx,
            root: Root::default(),
            tags: TagTable::new(codec),
            codec,
            values: Values::new(codec),
            scratch: String::new(),
            lines: Vec::new(),
            cache: ValueCache::default(),
            encoding: detected.encoding,
            declared: detected.declared,
            has_bom: detected.bom_len > 0,
            decimal_separator: None,
            in_counterparties: false,
            finished: false,
            item_mark: Mark::default(),
        };
        reader.read_root()?;
        Ok(reader)
    }

    /// The root element's attributes.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The encoding of the input (`"UTF-8"`, `"windows-1251"`, `"UTF-16LE"`, …).
    pub fn encoding(&self) -> &'static str {
        self.encoding.name()
    }

    /// The `encoding` of the XML declaration, as written.
    pub fn declared_encoding(&self) -> Option<&str> {
        self.declared.as_deref()
    }

    /// Whether the input starts with a byte order mark.
    pub fn has_bom(&self) -> bool {
        self.has_bom
    }

    /// How many bytes have been taken from the input so far (for progress reports).
    pub fn bytes_read(&self) -> u64 {
        self.lx.input().bytes_read()
    }

    /// Where the start tag of the item last returned by [`Reader::next_item`] begins (the
    /// path is that of its parent).
    pub fn item_position(&self) -> Position {
        self.lx.position_from(self.item_mark, None)
    }

    /// The next child of the root, or `None` after the root's end tag.
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        if self.finished {
            return Ok(None);
        }
        let result = self.read_item();
        match &result {
            Ok(None) | Err(_) => self.finished = true,
            Ok(Some(_)) => {}
        }
        result
    }

    fn read_item(&mut self) -> Result<Option<Item>> {
        loop {
            match self.lx.next()? {
                Event::Start => {
                    let tag = self.tags.get(self.lx.name());
                    self.item_mark = self.lx.mark();
                    if self.in_counterparties {
                        if tag == Tag::Counterparty {
                            return Ok(Some(Item::Counterparty(Box::new(self.counterparty()?))));
                        }
                        return Ok(Some(Item::Other(self.element()?)));
                    }
                    return Ok(Some(match tag {
                        Tag::Document => Item::Document(Box::new(self.document(0)?)),
                        Tag::Container => Item::Container(self.container()?),
                        Tag::Counterparties => {
                            self.in_counterparties = true;
                            continue;
                        }
                        _ => Item::Other(self.element()?),
                    }));
                }
                Event::End => {
                    if self.in_counterparties {
                        self.in_counterparties = false;
                        continue;
                    }
                    // The root is closed; only comments and whitespace may follow.
                    loop {
                        match self.lx.next()? {
                            Event::Eof => return Ok(None),
                            _ => continue,
                        }
                    }
                }
                Event::Text => self.check_ignored_text()?,
                Event::Eof => return Err(self.eof()),
            }
        }
    }

    fn eof(&self) -> Error {
        Error::UnexpectedEof {
            position: self.lx.position_at(self.lx.offset_of(0)),
        }
    }

    fn read_root(&mut self) -> Result<()> {
        match self.lx.next()? {
            Event::Start => {}
            _ => {
                return Err(Error::NotCommerceMl {
                    position: self.lx.position_at(self.lx.offset_of(0)),
                    message: "no root element".into(),
                })
            }
        }
        if self.tags.get(self.lx.name()) != Tag::Root {
            let name = self.decode_lossy(self.lx.name());
            return Err(Error::NotCommerceMl {
                position: self.lx.position_at(self.lx.mark_offset()),
                message: format!("the root element is <{name}>, expected <{}>", t::ROOT),
            });
        }
        let qname = self.lx.qname().to_vec();
        let prefix = match memchr::memchr(b':', &qname) {
            Some(k) => qname[..k].to_vec(),
            None => Vec::new(),
        };
        let mut root = Root::default();
        let attrs: Vec<Attr> = self.lx.attrs().to_vec();
        for a in &attrs {
            let name = self
                .decode_lossy(self.lx.bytes(a.qname.clone()))
                .into_owned();
            let value = self.attr_value(a)?;
            let qn = self.lx.bytes(a.qname.clone());
            let ns_prefix = if qn == b"xmlns" {
                Some(&b""[..])
            } else {
                qn.strip_prefix(b"xmlns:")
            };
            if ns_prefix == Some(&prefix[..]) && root.namespace.is_none() {
                root.namespace = Some(value);
                if prefix.is_empty() {
                    continue;
                }
                root.attributes
                    .push((name, root.namespace.clone().unwrap_or_default()));
                continue;
            }
            let local = self.decode_lossy(self.lx.bytes(a.local..a.qname.end));
            if local == t::ATTR_SCHEMA_VERSION && root.schema_version.is_none() {
                if let Some(v) = SchemaVersion::parse(&value) {
                    root.schema_version = Some(v);
                    continue;
                }
            } else if local == t::ATTR_GENERATED_AT && root.generated_at.is_none() {
                root.generated_at = Some(value);
                continue;
            } else if local == t::ATTR_SUM_FORMAT {
                self.decimal_separator = decimal_separator(&value);
            }
            root.attributes.push((name, value));
        }
        self.root = root;
        Ok(())
    }

    // ----- values -----

    fn decode_lossy<'a>(&self, raw: &'a [u8]) -> Cow<'a, str> {
        self.codec.decode_without_bom_handling(raw).0
    }

    /// Decodes raw bytes starting at absolute offset `at`.
    fn decode<'a>(&self, raw: &'a [u8], at: u64) -> Result<Cow<'a, str>> {
        if self.codec == UTF_8 {
            return std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|e| Error::Encoding {
                    position: self.lx.position_at(at + e.valid_up_to() as u64),
                    encoding: self.encoding.name(),
                });
        }
        match self
            .codec
            .decode_without_bom_handling_and_without_replacement(raw)
        {
            Some(s) => Ok(s),
            None => {
                let bad = raw
                    .iter()
                    .position(|b| {
                        self.codec
                            .decode_without_bom_handling_and_without_replacement(
                                std::slice::from_ref(b),
                            )
                            .is_none()
                    })
                    .unwrap_or(0);
                Err(Error::Encoding {
                    position: self.lx.position_at(at + bad as u64),
                    encoding: self.encoding.name(),
                })
            }
        }
    }

    /// The decoded, unescaped value of an attribute of the current start tag.
    fn attr_value(&self, a: &Attr) -> Result<String> {
        self.attr_value_with(a, None)
    }

    /// [`Reader::attr_value`], with the value cache.
    fn attr_value_with(&self, a: &Attr, cache: Option<&mut ValueCache>) -> Result<String> {
        let at = self.lx.offset_of(a.value.start);
        let raw = self.lx.bytes(a.value.clone());
        let mut out = String::new();
        let class = value_class(raw);
        if class & (CLASS_CR | CLASS_TAB_LF) != 0 {
            // Attribute-value normalization (rare): whitespace characters become spaces.
            let s = self.decode(raw, at)?;
            let s = s.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ");
            self.unescape_into(&s, at, &mut out)?;
        } else {
            let (refs, ascii) = (class & CLASS_AMP != 0, class & CLASS_HIGH == 0);
            self.push_value(raw, ascii, at, at, refs, &mut out, cache)?;
        }
        Ok(out)
    }

    /// Decodes the current text token and appends it to `out`, trimming leading whitespace
    /// while `out` is empty.
    #[inline]
    fn append_text(&mut self, out: &mut String) -> Result<()> {
        let mut cache = std::mem::take(&mut self.cache);
        let result = self.append_text_with(out, &mut cache);
        self.cache = cache;
        result
    }

    fn append_text_with(&self, out: &mut String, cache: &mut ValueCache) -> Result<()> {
        let (raw, cdata) = self.lx.text();
        let text_at = self.lx.text_offset();
        let was_empty = out.is_empty();
        let mut at = text_at;
        let mut raw = raw;
        if was_empty && raw.first().is_some_and(|&b| is_xml_ws(b)) {
            // Leading whitespace bytes are ASCII in every encoding read here, so they can be
            // dropped before decoding; whitespace produced by a reference is trimmed below.
            let lead = raw.iter().take_while(|&&b| is_xml_ws(b)).count();
            raw = &raw[lead..];
            at += lead as u64;
            if raw.is_empty() {
                return Ok(());
            }
        }
        let class = value_class(raw);
        if !cdata && class & CLASS_CR != 0 {
            // Line-end normalization (rare in values): CR LF and lone CR become LF before
            // references are replaced.
            let s = self.decode(raw, at)?;
            let s = s.replace("\r\n", "\n").replace('\r', "\n");
            self.unescape_into(&s, text_at, out)?;
        } else {
            let refs = !cdata && class & CLASS_AMP != 0;
            let ascii = class & CLASS_HIGH == 0;
            // CDATA keeps references as written, so it must not share cached values with text.
            let cache = if cdata { None } else { Some(cache) };
            self.push_value(raw, ascii, at, text_at, refs, out, cache)?;
        }
        if was_empty && out.as_bytes().first().is_some_and(|&b| is_xml_ws(b)) {
            let lead = out.len() - out.trim_start_matches(is_xml_ws_char).len();
            out.drain(..lead);
        }
        Ok(())
    }

    /// Appends the raw value `raw` (starting at absolute offset `at`) to `out`, decoded and,
    /// when `refs` (`raw` holds a `&` to replace), with references replaced (errors in
    /// references are reported at `entity_at`). The decoded length is computed first so that
    /// `out` grows at most once; pure ASCII (most numbers, dates, ids) is copied without
    /// decoding; other whole short values go through `cache`.
    #[allow(clippy::too_many_arguments)]
    fn push_value(
        &self,
        raw: &[u8],
        is_ascii: bool,
        at: u64,
        entity_at: u64,
        refs: bool,
        out: &mut String,
        cache: Option<&mut ValueCache>,
    ) -> Result<()> {
        if is_ascii {
            return match std::str::from_utf8(raw) {
                Ok(s) => self.push_str_value(s, entity_at, refs, out),
                // Unreachable: ASCII is UTF-8.
                Err(_) => Ok(()),
            };
        }
        let Some(cache) = cache.filter(|_| out.is_empty() && raw.len() <= VALUE_CACHE_MAX_LEN)
        else {
            return self.push_decoded(raw, at, entity_at, refs, out);
        };
        let set = match cache.get(raw) {
            Ok(value) => {
                reserve_for(out, value.len());
                out.push_str(value);
                return Ok(());
            }
            Err(set) => set,
        };
        self.push_decoded(raw, at, entity_at, refs, out)?;
        cache.insert(set, raw, out);
        Ok(())
    }

    /// [`Reader::push_value`] without the cache, for a value with non-ASCII bytes.
    fn push_decoded(
        &self,
        raw: &[u8],
        at: u64,
        entity_at: u64,
        refs: bool,
        out: &mut String,
    ) -> Result<()> {
        match &self.values {
            Values::SingleByte(table) => {
                self.push_single_byte(table, raw, ascii_len(raw), at, entity_at, refs, out)
            }
            Values::Utf8 => {
                let s = std::str::from_utf8(raw).map_err(|e| Error::Encoding {
                    position: self.lx.position_at(at + e.valid_up_to() as u64),
                    encoding: self.encoding.name(),
                })?;
                self.push_str_value(s, entity_at, refs, out)
            }
        }
    }

    /// [`Reader::push_value`] for a single-byte code page and a value with non-ASCII bytes
    /// from `ascii` on.
    #[allow(clippy::too_many_arguments)]
    fn push_single_byte(
        &self,
        table: &SingleByteTable,
        raw: &[u8],
        ascii: usize,
        at: u64,
        entity_at: u64,
        refs: bool,
        out: &mut String,
    ) -> Result<()> {
        let (head, tail) = raw.split_at(ascii);
        // One pass to find bytes the code page does not define (reported before anything
        // else, as a whole-value decode would) and the decoded length.
        let mut len = raw.len();
        for (i, &b) in tail.iter().enumerate() {
            if b >= 0x80 {
                let k = usize::from(b & 0x7f);
                if table.chars[k].is_none() {
                    return Err(Error::Encoding {
                        position: self.lx.position_at(at + (ascii + i) as u64),
                        encoding: self.encoding.name(),
                    });
                }
                len += usize::from(table.extra[k]);
            }
        }
        reserve_for(out, len);
        if !refs {
            push_ascii(out, head);
            table.push(tail, out);
            return Ok(());
        }
        let mut rest = raw;
        while let Some(amp) = memchr::memchr(b'&', rest) {
            table.push(&rest[..amp], out);
            rest = &rest[amp + 1..];
            // A single-byte code page decodes one byte to one character, so the first 12
            // bytes are the first 12 characters.
            let Some(semi) = rest.iter().take(12).position(|&b| b == b';') else {
                return Err(self.bad_entity(entity_at, "'&' not starting an entity reference"));
            };
            let name = &rest[..semi];
            let c = match std::str::from_utf8(name) {
                Ok(n) if n.is_ascii() => self.entity(n, entity_at)?,
                _ => {
                    let mut n = String::new();
                    table.push(name, &mut n);
                    self.entity(&n, entity_at)?
                }
            };
            out.push(c);
            rest = &rest[semi + 1..];
        }
        table.push(rest, out);
        Ok(())
    }

    /// Appends an already decoded value, replacing references when `refs`.
    fn push_str_value(&self, s: &str, entity_at: u64, refs: bool, out: &mut String) -> Result<()> {
        reserve_for(out, s.len());
        if refs {
            return self.unescape_into(s, entity_at, out);
        }
        out.push_str(s);
        Ok(())
    }

    /// Appends `s` to `out` with the five predefined entities and character references
    /// replaced, once.
    fn unescape_into(&self, s: &str, at: u64, out: &mut String) -> Result<()> {
        let mut rest = s;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            rest = &rest[amp + 1..];
            let semi = rest
                .char_indices()
                .take(12)
                .find(|&(_, c)| c == ';')
                .map(|(i, _)| i);
            let Some(semi) = semi else {
                return Err(self.bad_entity(at, "'&' not starting an entity reference"));
            };
            out.push(self.entity(&rest[..semi], at)?);
            rest = &rest[semi + 1..];
        }
        out.push_str(rest);
        Ok(())
    }

    /// The character of the reference `&name;`.
    fn entity(&self, name: &str, at: u64) -> Result<char> {
        Ok(match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) =
                    name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(self.bad_entity(at, &format!("undefined entity &{name};")));
                };
                match code.and_then(char::from_u32).filter(|&c| is_xml_char(c)) {
                    Some(c) => c,
                    None => {
                        return Err(
                            self.bad_entity(at, &format!("invalid character reference &{name};"))
                        )
                    }
                }
            }
        })
    }

    fn bad_entity(&self, at: u64, message: &str) -> Error {
        Error::Syntax {
            position: self.lx.position_at(at),
            message: message.to_owned(),
        }
    }

    // ----- structure -----

    /// The tag of the next child start of the current element, or `None` at its end.
    #[inline]
    fn next_child(&mut self) -> Result<Option<Tag>> {
        loop {
            match self.lx.next()? {
                Event::Start => return Ok(Some(self.tags.get(self.lx.name()))),
                Event::End => return Ok(None),
                Event::Text => self.check_ignored_text()?,
                Event::Eof => return Err(self.eof()),
            }
        }
    }

    /// Text the model has no place for (between child elements) is not kept, but it must
    /// still be valid in the encoding and hold only defined entities.
    fn check_ignored_text(&mut self) -> Result<()> {
        let (raw, _) = self.lx.text();
        if raw.iter().all(|&b| is_xml_ws(b)) {
            return Ok(());
        }
        let mut sink = String::new();
        self.append_text(&mut sink)
    }

    /// Skips the rest of the current element.
    fn skip(&mut self) -> Result<()> {
        let mut depth = 1usize;
        loop {
            match self.lx.next()? {
                Event::Start => depth += 1,
                Event::End => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Event::Text => self.check_ignored_text()?,
                Event::Eof => return Err(self.eof()),
            }
        }
    }

    /// The trimmed text of the current element; child elements are skipped.
    fn string(&mut self) -> Result<String> {
        if self.lx.text_then_end() {
            if let Some(s) = self.one_run_plain()? {
                self.lx.take_pending_end();
                return Ok(s);
            }
            let mut out = String::new();
            self.append_text(&mut out)?;
            self.lx.take_pending_end();
            trim_end(&mut out);
            return Ok(out);
        }
        let mut out = String::new();
        self.text_rest(&mut out)?;
        Ok(out)
    }

    /// The common case of [`Reader::string`] after [`Lexer::text_then_end`]: a text run
    /// without references, CR, tab, LF or leading and trailing spaces, which is the value as
    /// it is, decoded (through the value cache when it is not ASCII). `None` for any other
    /// run: [`Reader::append_text`] then does the general work, with the same result.
    #[inline]
    fn one_run_plain(&mut self) -> Result<Option<String>> {
        let (raw, _) = self.lx.text();
        let (Some(&first), Some(&last)) = (raw.first(), raw.last()) else {
            return Ok(Some(String::new()));
        };
        let (high, special) = plain_class(raw);
        if special || first == b' ' || last == b' ' {
            return Ok(None);
        }
        if !high {
            // ASCII: valid UTF-8 as it is.
            return Ok(std::str::from_utf8(raw).ok().map(str::to_owned));
        }
        if raw.len() > VALUE_CACHE_MAX_LEN {
            return Ok(None);
        }
        let set = match self.cache.get(raw) {
            Ok(value) => return Ok(Some(value.clone())),
            Err(set) => set,
        };
        let at = self.lx.text_offset();
        let mut out = String::new();
        self.push_decoded(raw, at, at, false, &mut out)?;
        self.cache.insert(set, self.lx.text().0, &out);
        Ok(Some(out))
    }

    /// Appends the trimmed text of the current element to the empty `out`; child elements
    /// are skipped.
    fn text_into(&mut self, out: &mut String) -> Result<()> {
        if self.lx.text_then_end() {
            // The queued `End` is the next event: take it here instead of in `text_rest`.
            self.append_text(out)?;
            self.lx.take_pending_end();
            trim_end(out);
            return Ok(());
        }
        self.text_rest(out)
    }

    /// The rest of [`Reader::text_into`] after its fast path.
    fn text_rest(&mut self, out: &mut String) -> Result<()> {
        loop {
            match self.lx.next()? {
                Event::Text => self.append_text(out)?,
                Event::End => break,
                Event::Start => self.skip()?,
                Event::Eof => return Err(self.eof()),
            }
        }
        trim_end(out);
        Ok(())
    }

    /// The trimmed text of the current element in the reader's scratch string, for values
    /// that are parsed rather than kept. Put it back with `self.scratch = s` when done.
    fn scratch_text(&mut self) -> Result<String> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        self.text_into(&mut s)?;
        Ok(s)
    }

    /// Reads a string into `slot`; a repeated element goes to `extra` instead.
    fn put(&mut self, tag: Tag, slot: &mut Option<String>, extra: &mut Vec<Element>) -> Result<()> {
        let s = self.string()?;
        if slot.is_none() {
            *slot = Some(s);
        } else {
            extra.push(Element {
                name: tag.as_str().to_owned(),
                text: Some(s).filter(|s| !s.is_empty()),
                ..Element::default()
            });
        }
        Ok(())
    }

    fn decimal(&mut self, tag: Tag) -> Result<Option<rust_decimal::Decimal>> {
        let mark = self.lx.mark_offset();
        // `<Сумма>123.45</Сумма>`: parsed straight from the lexer's buffer. The plain form
        // holds no reference, whitespace or separator other than '.', so decoding, trimming
        // and `parse_decimal` would give the same.
        let one_run = self.lx.text_then_end();
        if one_run {
            if let Some(d) = parse_plain_decimal(self.lx.text().0) {
                self.lx.take_pending_end();
                return Ok(Some(d));
            }
        }
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        if one_run {
            self.append_text(&mut s)?;
            self.lx.take_pending_end();
            trim_end(&mut s);
        } else {
            self.text_rest(&mut s)?;
        }
        let parsed = match self.decimal_separator {
            Some(sep) if s.contains(sep) => parse_decimal(&s.replace(sep, ".")),
            _ => parse_decimal(&s),
        };
        self.scratch = s;
        parsed.map_err(|m| self.value_error(mark, tag, &m))
    }

    fn boolean(&mut self, tag: Tag) -> Result<Option<bool>> {
        let mark = self.lx.mark_offset();
        let s = self.scratch_text()?;
        let parsed = parse_bool(&s);
        self.scratch = s;
        parsed.map_err(|m| self.value_error(mark, tag, &m))
    }

    fn value_error(&self, offset: u64, tag: Tag, message: &str) -> Error {
        Error::Value {
            position: self
                .lx
                .position_from(self.lx.mark_of(offset), Some(tag.as_str())),
            message: format!("{}: {message}", tag.as_str()),
        }
    }

    /// The current element (just started) as a generic tree.
    fn element(&mut self) -> Result<Element> {
        let mut stack = vec![self.start_element()?];
        loop {
            match self.lx.next()? {
                Event::Start => {
                    let e = self.start_element()?;
                    stack.push(e);
                }
                Event::Text => {
                    if let Some(top) = stack.last_mut() {
                        let mut text = top.text.take().unwrap_or_default();
                        self.append_text(&mut text)?;
                        top.text = Some(text);
                    }
                }
                Event::End => {
                    let Some(mut e) = stack.pop() else {
                        return Err(self.eof());
                    };
                    if let Some(text) = &mut e.text {
                        let len = text.trim_end_matches(is_xml_ws_char).len();
                        text.truncate(len);
                    }
                    if e.text.as_deref() == Some("") {
                        e.text = None;
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(e),
                        None => return Ok(e),
                    }
                }
                Event::Eof => return Err(self.eof()),
            }
        }
    }

    fn start_element(&self) -> Result<Element> {
        let name = self
            .decode(self.lx.name(), self.lx.mark_offset())?
            .into_owned();
        let mut attributes = Vec::with_capacity(self.lx.attrs().len());
        for a in self.lx.attrs() {
            let at = self.lx.offset_of(a.local);
            let n = self.decode(self.lx.bytes(a.local..a.qname.end), at)?;
            attributes.push((n.into_owned(), self.attr_value(a)?));
        }
        Ok(Element {
            name,
            attributes,
            text: None,
            children: Vec::new(),
        })
    }

    fn container(&mut self) -> Result<Container> {
        let mut c = Container::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Id => self.put(tag, &mut c.id, &mut c.extra)?,
                Tag::Document => c.documents.push(self.document(0)?),
                _ => c.extra.push(self.element()?),
            }
        }
        Ok(c)
    }

    fn document(&mut self, nesting: usize) -> Result<Document> {
        let mut d = Document::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Id => self.put(tag, &mut d.id, &mut d.extra)?,
                Tag::Number => self.put(tag, &mut d.number, &mut d.extra)?,
                Tag::Number1C => self.put(tag, &mut d.number_1c, &mut d.extra)?,
                Tag::Date => self.put(tag, &mut d.date, &mut d.extra)?,
                Tag::Time => self.put(tag, &mut d.time, &mut d.extra)?,
                Tag::Date1C => self.put(tag, &mut d.date_1c, &mut d.extra)?,
                Tag::Operation => self.put(tag, &mut d.operation, &mut d.extra)?,
                Tag::Role => self.put(tag, &mut d.role, &mut d.extra)?,
                Tag::Currency => self.put(tag, &mut d.currency, &mut d.extra)?,
                Tag::Version => self.put(tag, &mut d.version, &mut d.extra)?,
                Tag::Basis => self.put(tag, &mut d.basis, &mut d.extra)?,
                Tag::PaymentDue => self.put(tag, &mut d.payment_due, &mut d.extra)?,
                Tag::Comment => self.put(tag, &mut d.comment, &mut d.extra)?,
                Tag::Rate => d.rate = self.decimal(tag)?,
                Tag::Sum => d.sum = self.decimal(tag)?,
                Tag::DeletionMark => d.deletion_mark = self.boolean(tag)?,
                Tag::Counterparties => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Counterparty => {
                                let c = self.counterparty()?;
                                // Usually the only one: no room for four (2.6 KB).
                                if d.counterparties.capacity() == 0 {
                                    d.counterparties.reserve_exact(1);
                                }
                                d.counterparties.push(c);
                            }
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Taxes => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Tax => d.taxes.push(self.tax()?),
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Discounts => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Discount => d.discounts.push(self.discount()?),
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Warehouses => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Warehouse => d.warehouses.push(self.warehouse()?),
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Lines => {
                    // Lines are large (over 500 bytes): collected in a reused vector, then
                    // moved into one allocation of the right size instead of growing one.
                    let mut lines = std::mem::take(&mut self.lines);
                    lines.clear();
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Line => lines.push(self.line()?),
                            _ => self.skip()?,
                        }
                    }
                    if d.lines.is_empty() {
                        d.lines.reserve_exact(lines.len());
                    }
                    d.lines.append(&mut lines);
                    if lines.capacity() <= MAX_REUSED_LINES {
                        self.lines = lines;
                    }
                }
                Tag::Requisites => self.requisites(&mut d.requisites)?,
                Tag::Requisite => d.requisites.push(self.requisite()?),
                Tag::Subordinates if nesting < MAX_SUBORDINATE_NESTING => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Subordinate => d.subordinates.push(self.document(nesting + 1)?),
                            _ => self.skip()?,
                        }
                    }
                }
                _ => d.extra.push(self.element()?),
            }
        }
        Ok(d)
    }

    fn requisites(&mut self, out: &mut Vec<Requisite>) -> Result<()> {
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Requisite => out.push(self.requisite()?),
                _ => self.skip()?,
            }
        }
        Ok(())
    }

    fn requisite(&mut self) -> Result<Requisite> {
        let mut name = None;
        let mut value = None;
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Name if name.is_none() => name = Some(self.string()?),
                Tag::Value if value.is_none() => value = Some(self.string()?),
                _ => self.skip()?,
            }
        }
        Ok(Requisite {
            name: name.unwrap_or_default(),
            value,
        })
    }

    fn counterparty(&mut self) -> Result<Counterparty> {
        let mut c = Counterparty::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Id => self.put(tag, &mut c.id, &mut c.extra)?,
                Tag::Version => self.put(tag, &mut c.version, &mut c.extra)?,
                Tag::DeletionMark => c.deletion_mark = self.boolean(tag)?,
                Tag::Name => self.put(tag, &mut c.name, &mut c.extra)?,
                Tag::FullName => self.put(tag, &mut c.full_name, &mut c.extra)?,
                Tag::OfficialName => self.put(tag, &mut c.official_name, &mut c.extra)?,
                Tag::LastName => self.put(tag, &mut c.last_name, &mut c.extra)?,
                Tag::FirstName => self.put(tag, &mut c.first_name, &mut c.extra)?,
                Tag::MiddleName => self.put(tag, &mut c.middle_name, &mut c.extra)?,
                Tag::BirthDate => self.put(tag, &mut c.birth_date, &mut c.extra)?,
                Tag::Gender => self.put(tag, &mut c.gender, &mut c.extra)?,
                Tag::Role => self.put(tag, &mut c.role, &mut c.extra)?,
                Tag::Inn => self.put(tag, &mut c.inn, &mut c.extra)?,
                Tag::Kpp => self.put(tag, &mut c.kpp, &mut c.extra)?,
                Tag::Okpo => self.put(tag, &mut c.okpo, &mut c.extra)?,
                Tag::RegistrationAddress if c.registration_address.is_none() => {
                    c.registration_address = Some(self.address()?);
                }
                Tag::LegalAddress if c.legal_address.is_none() => {
                    c.legal_address = Some(self.address()?);
                }
                Tag::Address if c.address.is_none() => c.address = Some(self.address()?),
                Tag::Contacts => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Contact => c.contacts.push(self.contact()?),
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Representatives => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Representative => {
                                c.representatives.push(self.representative()?);
                            }
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::BankAccounts => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::BankAccount => c.bank_accounts.push(self.bank_account()?),
                            _ => self.skip()?,
                        }
                    }
                }
                _ => c.extra.push(self.element()?),
            }
        }
        Ok(c)
    }

    fn address(&mut self) -> Result<Address> {
        let mut a = Address::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Presentation => self.put(tag, &mut a.presentation, &mut a.extra)?,
                Tag::AddressField => {
                    let mut f = AddressField::default();
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Kind => f.kind = self.string()?,
                            Tag::Value => f.value = self.string()?,
                            _ => self.skip()?,
                        }
                    }
                    a.fields.push(f);
                }
                _ => a.extra.push(self.element()?),
            }
        }
        Ok(a)
    }

    fn contact(&mut self) -> Result<Contact> {
        let mut c = Contact::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Kind => c.kind = self.string()?,
                Tag::Value => c.value = self.string()?,
                Tag::Comment => c.comment = Some(self.string()?),
                _ => self.skip()?,
            }
        }
        Ok(c)
    }

    fn representative(&mut self) -> Result<Representative> {
        let mut r = Representative::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Counterparty => {
                    r.nested = true;
                    while let Some(tag) = self.next_child()? {
                        self.representative_field(tag, &mut r)?;
                    }
                }
                _ => self.representative_field(tag, &mut r)?,
            }
        }
        Ok(r)
    }

    fn representative_field(&mut self, tag: Tag, r: &mut Representative) -> Result<()> {
        match tag {
            Tag::Relation => r.relation = Some(self.string()?),
            Tag::Id => r.id = Some(self.string()?),
            Tag::Name => r.name = Some(self.string()?),
            _ => self.skip()?,
        }
        Ok(())
    }

    fn bank_account(&mut self) -> Result<BankAccount> {
        let mut b = BankAccount::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::AccountNumber => self.put(tag, &mut b.number, &mut b.extra)?,
                Tag::Bank if b.bank.is_none() => {
                    let mut bank = Bank::default();
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Name => self.put(tag, &mut bank.name, &mut bank.extra)?,
                            Tag::Bic => self.put(tag, &mut bank.bic, &mut bank.extra)?,
                            Tag::CorrespondentAccount => {
                                self.put(tag, &mut bank.correspondent_account, &mut bank.extra)?;
                            }
                            Tag::Address if bank.address.is_none() => {
                                bank.address = Some(self.address()?);
                            }
                            _ => bank.extra.push(self.element()?),
                        }
                    }
                    b.bank = Some(bank);
                }
                _ => b.extra.push(self.element()?),
            }
        }
        Ok(b)
    }

    fn tax(&mut self) -> Result<Tax> {
        let mut x = Tax::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Name => x.name = Some(self.string()?),
                Tag::Included => x.included = self.boolean(tag)?,
                Tag::Sum => x.sum = self.decimal(tag)?,
                Tag::RateValue => x.rate = Some(self.string()?),
                _ => self.skip()?,
            }
        }
        Ok(x)
    }

    fn discount(&mut self) -> Result<Discount> {
        let mut x = Discount::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Name => x.name = Some(self.string()?),
                Tag::Sum => x.sum = self.decimal(tag)?,
                Tag::Percent => x.percent = self.decimal(tag)?,
                Tag::Included => x.included = self.boolean(tag)?,
                Tag::Comment => x.comment = Some(self.string()?),
                _ => self.skip()?,
            }
        }
        Ok(x)
    }

    fn warehouse(&mut self) -> Result<Warehouse> {
        let mut w = Warehouse::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Id => self.put(tag, &mut w.id, &mut w.extra)?,
                Tag::Name => self.put(tag, &mut w.name, &mut w.extra)?,
                _ => w.extra.push(self.element()?),
            }
        }
        Ok(w)
    }

    fn line(&mut self) -> Result<Line> {
        let mut l = Line::default();
        while let Some(tag) = self.next_child()? {
            match tag {
                Tag::Id => self.put(tag, &mut l.id, &mut l.extra)?,
                Tag::CatalogId => self.put(tag, &mut l.catalog_id, &mut l.extra)?,
                Tag::Sku => self.put(tag, &mut l.sku, &mut l.extra)?,
                Tag::Name => self.put(tag, &mut l.name, &mut l.extra)?,
                Tag::BaseUnit if l.base_unit.is_none() => l.base_unit = Some(self.unit()?),
                Tag::Unit if l.unit.is_none() => l.unit = Some(self.unit()?),
                Tag::Coefficient => l.coefficient = self.decimal(tag)?,
                Tag::PricePerUnit => l.price_per_unit = self.decimal(tag)?,
                Tag::Price => l.price = self.decimal(tag)?,
                Tag::Quantity => l.quantity = self.decimal(tag)?,
                Tag::Sum => l.sum = self.decimal(tag)?,
                Tag::Discounts => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Discount => l.discounts.push(self.discount()?),
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::TaxRates => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::TaxRate => {
                                let mut r = TaxRate::default();
                                while let Some(tag) = self.next_child()? {
                                    match tag {
                                        Tag::Name => r.name = Some(self.string()?),
                                        Tag::RateValue => r.rate = Some(self.string()?),
                                        _ => self.skip()?,
                                    }
                                }
                                l.tax_rates.push(r);
                            }
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Taxes => {
                    while let Some(tag) = self.next_child()? {
                        match tag {
                            Tag::Tax => l.taxes.push(self.tax()?),
                            _ => self.skip()?,
                        }
                    }
                }
                Tag::Requisites => self.requisites(&mut l.requisites)?,
                Tag::Requisite => l.requisites.push(self.requisite()?),
                _ => l.extra.push(self.element()?),
            }
        }
        Ok(l)
    }

    /// The attribute form of a unit (`БазоваяЕдиница Код=… НаименованиеПолное=…`).
    fn unit_attributes(&self, u: &mut Unit, cache: &mut ValueCache) -> Result<()> {
        for a in self.lx.attrs() {
            let tag = self.tags.get(self.lx.bytes(a.local..a.qname.end));
            let slot = match tag {
                Tag::UnitCode => &mut u.code,
                Tag::UnitFullName => &mut u.full_name,
                Tag::UnitInternational => &mut u.international,
                _ => continue,
            };
            let value = self.attr_value_with(a, Some(&mut *cache))?;
            let edges = (value.bytes().next(), value.bytes().next_back());
            *slot = Some(match edges {
                (Some(first), Some(last)) if is_xml_ws(first) || is_xml_ws(last) => {
                    value.trim_matches(is_xml_ws_char).to_owned()
                }
                _ => value,
            });
        }
        Ok(())
    }

    /// A unit in either form: attributes (`БазоваяЕдиница Код=…`), children
    /// (`Единица/Код`), or plain text (the short name).
    fn unit(&mut self) -> Result<Unit> {
        let mut u = Unit::default();
        let mut cache = std::mem::take(&mut self.cache);
        let attributes = self.unit_attributes(&mut u, &mut cache);
        self.cache = cache;
        attributes?;
        let mut text = String::new();
        let mut has_children = false;
        // `<БазоваяЕдиница …>шт</БазоваяЕдиница>`: the end tag is taken here.
        if self.lx.text_then_end() {
            self.append_text(&mut text)?;
            self.lx.take_pending_end();
        } else {
            loop {
                match self.lx.next()? {
                    Event::Text => self.append_text(&mut text)?,
                    Event::End => break,
                    Event::Start => {
                        has_children = true;
                        let tag = self.tags.get(self.lx.name());
                        let slot = match tag {
                            Tag::Id => &mut u.id,
                            Tag::UnitCode => &mut u.code,
                            Tag::UnitFullName => &mut u.full_name,
                            Tag::UnitShortName => &mut u.short_name,
                            Tag::UnitInternational => &mut u.international,
                            _ => {
                                self.skip()?;
                                continue;
                            }
                        };
                        let s = self.string()?;
                        if slot.is_none() {
                            *slot = Some(s);
                        }
                    }
                    Event::Eof => return Err(self.eof()),
                }
            }
        }
        let len = text.trim_end_matches(is_xml_ws_char).len();
        text.truncate(len);
        if (!has_children || !text.is_empty()) && u.short_name.is_none() {
            u.short_name = Some(text);
        }
        Ok(u)
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

/// Reads a whole document: the root and every item. Convenient for small inputs; use
/// [`Reader`] to stream large ones.
pub fn read_all<R: Read>(input: R) -> Result<(Root, Vec<Item>)> {
    let mut reader = Reader::new(input)?;
    let mut items = Vec::new();
    while let Some(item) = reader.next_item()? {
        items.push(item);
    }
    Ok((reader.root, items))
}

/// The `ЧРД=` separator of a 1C number format, when it is neither `.` nor `,` (which the value
/// parser already accepts).
fn decimal_separator(format: &str) -> Option<char> {
    let key = t::FORMAT_DECIMAL_SEPARATOR_KEY;
    let at = format.find(key)?;
    let c = format[at + key.len()..].chars().next()?;
    (c != '.' && c != ',' && c != ';' && !c.is_whitespace() && !c.is_ascii_digit()).then_some(c)
}

/// Drops trailing XML whitespace. (XML whitespace is ASCII, and no byte of a multi-byte UTF-8
/// character is ASCII.)
#[inline]
fn trim_end(out: &mut String) {
    let len = out
        .as_bytes()
        .iter()
        .rposition(|&b| !is_xml_ws(b))
        .map_or(0, |k| k + 1);
    out.truncate(len);
}

fn is_xml_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_xml_ws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}'
}

/// How text values are decoded from the lexed bytes.
enum Values {
    /// The lexed bytes are UTF-8 (UTF-8 input, or UTF-16 transcoded on the fly).
    Utf8,
    /// A single-byte, ASCII-compatible code page (windows-1251, …).
    SingleByte(Box<SingleByteTable>),
}

impl Values {
    fn new(codec: &'static Encoding) -> Self {
        if codec == UTF_8 {
            Self::Utf8
        } else {
            Self::SingleByte(Box::new(SingleByteTable::new(codec)))
        }
    }
}

/// The upper half of a single-byte code page, taken from `encoding_rs` once per reader.
struct SingleByteTable {
    /// The character of byte `0x80 + i`; `None` where the code page defines none.
    chars: [Option<char>; 128],
    /// UTF-8 length of that character minus one.
    extra: [u8; 128],
}

impl SingleByteTable {
    fn new(encoding: &'static Encoding) -> Self {
        let mut chars = [None; 128];
        let mut extra = [0; 128];
        for (i, (c, e)) in chars.iter_mut().zip(&mut extra).enumerate() {
            let byte = [0x80 | (i as u8)];
            let Some(s) = encoding.decode_without_bom_handling_and_without_replacement(&byte)
            else {
                continue;
            };
            let mut it = s.chars();
            if let (Some(ch), None) = (it.next(), it.next()) {
                *c = Some(ch);
                *e = (ch.len_utf8() - 1) as u8;
            }
        }
        Self { chars, extra }
    }

    /// Appends `raw` decoded; every byte has been checked to be defined.
    fn push(&self, raw: &[u8], out: &mut String) {
        for &b in raw {
            if b < 0x80 {
                out.push(char::from(b));
            } else {
                let c = self.chars[usize::from(b & 0x7f)];
                out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
        }
    }
}

/// [`value_class`] bit: a `&`.
const CLASS_AMP: u8 = 1;
/// [`value_class`] bit: a CR.
const CLASS_CR: u8 = 2;
/// [`value_class`] bit: a byte from 0x80.
const CLASS_HIGH: u8 = 4;
/// [`value_class`] bit: a tab or LF.
const CLASS_TAB_LF: u8 = 8;
/// [`value_class`] bit: a byte below 0x20 (tab, LF and CR among them).
const CLASS_CONTROL: u8 = 16;

static VALUE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0x80;
    while i < 256 {
        t[i] = CLASS_HIGH;
        i += 1;
    }
    let mut c = 0;
    while c < 0x20 {
        t[c] = CLASS_CONTROL;
        c += 1;
    }
    t[b'&' as usize] = CLASS_AMP;
    t[b'\r' as usize] = CLASS_CR | CLASS_CONTROL;
    t[b'\t' as usize] = CLASS_TAB_LF | CLASS_CONTROL;
    t[b'\n' as usize] = CLASS_TAB_LF | CLASS_CONTROL;
    t
};

/// What a raw value holds, as `CLASS_*` bits, in one pass (values are short, and calls into
/// `memchr` cost more than scanning them; a word-at-a-time version measured no faster).
fn value_class(raw: &[u8]) -> u8 {
    raw.iter()
        .fold(0, |acc, &b| acc | VALUE_CLASS[usize::from(b)])
}

/// Whether `raw` has bytes from 0x80, and whether it has `&` or a control character (tab,
/// LF and CR among them), eight bytes at a time (the last word overlapping the one before;
/// shorter values byte by byte).
#[inline]
fn plain_class(raw: &[u8]) -> (bool, bool) {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = raw.len();
    if n < 8 {
        let class = value_class(raw);
        return (
            class & CLASS_HIGH != 0,
            class & (CLASS_AMP | CLASS_CONTROL) != 0,
        );
    }
    let (mut high, mut special) = (0u64, 0u64);
    let mut check = |w: u64| {
        high |= w;
        // Bytes below 0x20 (exact for ASCII bytes; a borrow can only flag a byte above a
        // flagged one).
        special |= w.wrapping_sub(LOW * 0x20) & !w;
        let amp = w ^ (LOW * u64::from(b'&'));
        special |= amp.wrapping_sub(LOW) & !amp;
    };
    let mut i = 0;
    while i + 8 < n {
        check(word8(raw, i));
        i += 8;
    }
    check(word8(raw, n - 8));
    (high & HIGH != 0, special & HIGH != 0)
}

/// Length of the ASCII prefix of `bytes`, eight bytes at a time.
fn ascii_len(bytes: &[u8]) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut blocks = bytes.chunks_exact(8);
    let mut n = 0;
    for block in &mut blocks {
        // A failed conversion (impossible for 8-byte chunks) counts as non-ASCII.
        let w = u64::from_le_bytes(block.try_into().unwrap_or([0x80; 8])) & HIGH;
        if w != 0 {
            return n + (w.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + blocks
        .remainder()
        .iter()
        .take_while(|b| b.is_ascii())
        .count()
}

/// Appends ASCII bytes.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    if let Ok(s) = std::str::from_utf8(ascii) {
        out.push_str(s);
    }
}

/// Makes room for `n` more bytes: exactly when `out` is empty (a value is usually one text
/// run, so its string is allocated once at its final size), amortized otherwise.
fn reserve_for(out: &mut String, n: usize) {
    if out.capacity() == 0 {
        // A new string: allocated directly (cheaper than growing an empty one).
        *out = String::with_capacity(n);
    } else if out.is_empty() {
        out.reserve_exact(n);
    } else {
        out.reserve(n);
    }
}

/// Values up to this many bytes go through the [`ValueCache`].
const VALUE_CACHE_MAX_LEN: usize = 64;

/// Slots of the [`ValueCache`]: sets of two.
const VALUE_CACHE_SLOTS: usize = 2 * VALUE_CACHE_SETS;

/// Sets of the [`ValueCache`] (a power of two).
const VALUE_CACHE_SETS: usize = 512;

/// The last decoded values per hash: order files repeat the same short non-ASCII values in
/// every order (requisite names, units, roles, operations, statuses), and a lookup is much
/// cheaper than decoding (windows-1251) or validating (UTF-8) them again. Two-way set
/// associative (two values of the same hash both stay), a fixed number of slots of at most
/// [`VALUE_CACHE_MAX_LEN`] bytes each, so its memory does not depend on the input.
#[derive(Default)]
struct ValueCache {
    /// Raw bytes and the value they gave (decoded, references replaced); the two slots of a
    /// set are `2k` (the newer) and `2k + 1`.
    slots: Vec<(Vec<u8>, String)>,
}

impl ValueCache {
    /// The value cached for `raw`, or the first slot of its set to [`ValueCache::insert`]
    /// it into.
    #[inline]
    fn get(&mut self, raw: &[u8]) -> std::result::Result<&String, usize> {
        let set = self.set(raw);
        let (newer, older) = match self.slots.get(set..set + 2) {
            Some([a, b]) => (a, b),
            _ => return Err(set),
        };
        if same_bytes(&newer.0, raw) {
            Ok(&newer.1)
        } else if same_bytes(&older.0, raw) {
            Ok(&older.1)
        } else {
            Err(set)
        }
    }

    /// Caches `value` for `raw` in the set from [`ValueCache::get`], as its newer entry; the
    /// newer one before becomes the older one, the older one is dropped.
    fn insert(&mut self, set: usize, raw: &[u8], value: &str) {
        if let Some([newer, older]) = self.slots.get_mut(set..set + 2) {
            std::mem::swap(newer, older);
            newer.0.clear();
            newer.0.extend_from_slice(raw);
            newer.1.clear();
            newer.1.push_str(value);
        }
    }

    /// The first slot of the set of `raw` (the slots are made on first use).
    #[inline]
    fn set(&mut self, raw: &[u8]) -> usize {
        const K: u64 = 0x517C_C1B7_2722_0A95;
        if self.slots.is_empty() {
            self.slots.resize_with(VALUE_CACHE_SLOTS, Default::default);
        }
        let n = raw.len();
        let mut h = n as u64;
        if n >= 8 {
            // Whole words, the last one overlapping the one before.
            let mut i = 0;
            while i + 8 < n {
                h = (h.rotate_left(5) ^ word8(raw, i)).wrapping_mul(K);
                i += 8;
            }
            h = (h.rotate_left(5) ^ word8(raw, n - 8)).wrapping_mul(K);
        } else {
            let last = raw
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            h = (h.rotate_left(5) ^ last).wrapping_mul(K);
        }
        // The top bits of the product depend on every bit of the input.
        (h >> (64 - VALUE_CACHE_SETS.trailing_zeros())) as usize * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `plain_class` agrees with a byte-by-byte reference: every length up to 24, every
    /// position of one telling byte, on ASCII and on non-ASCII backgrounds.
    #[test]
    fn plain_class_finds_what_a_byte_loop_finds() {
        let reference = |raw: &[u8]| {
            (
                raw.iter().any(|&b| b >= 0x80),
                raw.iter().any(|&b| b == b'&' || b < 0x20),
            )
        };
        let telling = [
            0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, b'&', b' ', b'%', b'\'', 0x27, 0x7f, 0x80, 0xa6,
            0xc0, 0xff,
        ];
        for background in [b'a', b' ', b'0', 0xe0, 0x21] {
            for n in 0..=24 {
                let plain = vec![background; n];
                assert_eq!(plain_class(&plain), reference(&plain), "{plain:?}");
                for at in 0..n {
                    for &b in &telling {
                        let mut raw = plain.clone();
                        raw[at] = b;
                        assert_eq!(plain_class(&raw), reference(&raw), "{raw:?}");
                        if at + 1 < n {
                            raw[at + 1] = 0x20;
                            assert_eq!(plain_class(&raw), reference(&raw), "{raw:?}");
                        }
                    }
                }
            }
        }
    }
}
