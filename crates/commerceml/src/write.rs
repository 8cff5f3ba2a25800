//! Streaming writer for schema 2.05, 2.08, 2.10 and 3.1, windows-1251 or UTF-8 with BOM.
//!
//! The writer emits the declaration and the root start tag on creation, then one root child per
//! call, flushing through the output encoding in 64 KiB chunks: memory stays proportional to the
//! largest single document, never to the file.
//!
//! By default the structure is what 1C-Bitrix writes for the chosen schema version
//! (PROTOCOL.md §8.1, §8.6), since that is what 1C accepts:
//!
//! | | ≤ 2.05 | > 2.05 | ≥ 3 |
//! |---|---|---|---|
//! | line unit | `БазоваяЕдиница` with attributes | `Единица{…}` + `Коэффициент` | same |
//! | document `НомерВерсии`, `Номер1С` | not written | written | written |
//! | contact `Тип` | `ТелефонРабочий`, `Почта` | `Телефон рабочий`, `Электронная почта` | same |
//! | orders | directly under the root | directly | each in a `Контейнер` |
//!
//! Elements are written in Bitrix's order (PROTOCOL.md §8.2–§8.4; `НомерВерсии` and `Номер1С`
//! right after `Сумма` as §8.1 and Bitrix's exporter have them; fields Bitrix never writes —
//! `Дата1С` after `Дата`, `ПометкаУдаления` and `Основание` after `Номер1С`, `СрокПлатежа` after
//! `Время` — where 1C or the XSD put them); requisites are always wrapped
//! in `ЗначенияРеквизитов`; elements the model does not know are written back as they were read.
//! With `WriteOptions::xsd_strict` the writer follows the published 2.10 XSD instead (see the
//! `strict` submodule and `docs/commerceml-xsd-vs-bitrix.md`).
//!
//! Text and attribute values are escaped once (`&`, `<`, `>`, and `"`, tab, line feed in
//! attributes; carriage returns as `&#13;`). In windows-1251, characters the code page lacks
//! (`₽`, emoji) are written as numeric character references (`&#8381;`). Decimals are written in
//! plain notation with `.` and the scale they have in the model (`231.7400` stays `231.7400`).

mod sink;
mod strict;

use std::io::Write;

use rust_decimal::Decimal;

use self::sink::Sink;
use crate::error::Result;
use crate::model::{
    names_match, Address, BankAccount, Container, Counterparty, Discount, Document, Element, Item,
    Line, Requisite, Root, Tax, Unit,
};
use crate::tags as t;
use crate::value::SchemaVersion;

/// The encoding of written documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputEncoding {
    /// windows-1251, no BOM, as Bitrix writes; characters it lacks become `&#N;`.
    #[default]
    Windows1251,
    /// UTF-8 with a BOM.
    Utf8,
}

impl OutputEncoding {
    /// The name written in the XML declaration (and fit for a `charset=` parameter).
    pub fn label(self) -> &'static str {
        match self {
            Self::Windows1251 => "windows-1251",
            Self::Utf8 => "UTF-8",
        }
    }
}

/// Options of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The schema version whose structure is written.
    pub schema: SchemaVersion,
    /// The output encoding.
    pub encoding: OutputEncoding,
    /// Write what the published XSD requires instead of what Bitrix writes.
    pub xsd_strict: bool,
    /// `ДатаФормирования`; `None` writes no such attribute.
    pub generated_at: Option<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            schema: SchemaVersion::v2_05(),
            encoding: OutputEncoding::Windows1251,
            xsd_strict: false,
            generated_at: None,
        }
    }
}

impl WriteOptions {
    /// Options for `schema` in `encoding`, Bitrix structure, no `ДатаФормирования`.
    pub fn new(schema: SchemaVersion, encoding: OutputEncoding) -> Self {
        Self {
            schema,
            encoding,
            ..Self::default()
        }
    }

    /// Sets `ДатаФормирования`.
    #[must_use]
    pub fn generated_at(mut self, at: impl Into<String>) -> Self {
        self.generated_at = Some(at.into());
        self
    }

    /// Switches to the published 2.10 XSD's structure.
    #[must_use]
    pub fn xsd_strict(mut self, strict: bool) -> Self {
        self.xsd_strict = strict;
        self
    }
}

/// Which structure the chosen schema version calls for.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// `БазоваяЕдиница` with attributes (≤ 2.05) instead of `Единица` + `Коэффициент`.
    old_units: bool,
    /// `НомерВерсии` / `Номер1С` in documents (> 2.05).
    versions: bool,
    /// `ТелефонРабочий` / `Почта` contact types (≤ 2.05).
    old_contacts: bool,
    /// Every order in a `Контейнер` (≥ 3).
    containers: bool,
    /// The published XSD's structure.
    strict: bool,
}

impl Layout {
    fn new(options: &WriteOptions) -> Self {
        if options.xsd_strict {
            return Self {
                old_units: true,
                versions: false,
                old_contacts: false,
                containers: false,
                strict: true,
            };
        }
        let old = options.schema.value() <= Decimal::new(205, 2);
        Self {
            old_units: old,
            versions: !old,
            old_contacts: old,
            containers: options.schema.value() >= Decimal::from(3),
            strict: false,
        }
    }
}

/// Spaces for indentation; deeper levels reuse the full width.
const INDENT: &str = "                                                                ";

/// A streaming CommerceML writer over any [`Write`].
pub struct Writer<W: Write> {
    sink: Sink<W>,
    layout: Layout,
    depth: usize,
    /// A root-level `Контрагенты` wrapper is open.
    counterparties_open: bool,
    options: WriteOptions,
    /// Writes root items only (see [`Writer::fragment`]).
    fragment: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the declaration and the root start tag with Bitrix's format attributes.
    pub fn new(out: W, options: WriteOptions) -> Result<Self> {
        Self::with_root(out, options, &Root::default())
    }

    /// Like [`Writer::new`], carrying over the attributes of a root that was read: its `Ид`,
    /// its `xmlns:*` declarations, its `ДатаФормирования` when the options set none, and its
    /// namespace when it belongs to the written major version (`…commerceml_3` only for ≥ 3).
    /// `ВерсияСхемы` is always the options' version; the format attributes are always Bitrix's,
    /// since those are the formats the writer uses.
    pub fn with_root(out: W, options: WriteOptions, root: &Root) -> Result<Self> {
        let layout = Layout::new(&options);
        let mut sink = Sink::new(out, options.encoding);
        if options.encoding == OutputEncoding::Utf8 {
            sink.raw(b"\xEF\xBB\xBF");
        }
        sink.push("<?xml version=\"1.0\" encoding=\"");
        sink.push(options.encoding.label());
        sink.push("\"?>\n<");
        sink.push(t::ROOT);
        let generated_at = options
            .generated_at
            .clone()
            .or_else(|| root.generated_at.clone());
        let mut writer = Self {
            sink,
            layout,
            depth: 1,
            counterparties_open: false,
            options,
            fragment: false,
        };
        if layout.strict {
            let schema = writer.options.schema.clone();
            writer.strict_root_attributes(&schema, generated_at.as_deref())?;
        } else {
            if let Some(ns) = root.namespace.as_deref() {
                if ns.ends_with("_3") == layout.containers {
                    writer.attr("xmlns", ns)?;
                }
            }
            let schema = writer.options.schema.clone();
            writer.attr(t::ATTR_SCHEMA_VERSION, schema.as_str())?;
            if let Some(at) = generated_at.as_deref() {
                writer.attr(t::ATTR_GENERATED_AT, at)?;
            }
            writer.attr(t::ATTR_DATE_FORMAT, t::FORMAT_DATE)?;
            writer.attr(t::ATTR_TIME_FORMAT, t::FORMAT_TIME)?;
            writer.attr(t::ATTR_DATE_TIME_SEPARATOR, "T")?;
            writer.attr(t::ATTR_SUM_FORMAT, t::FORMAT_SUM)?;
            writer.attr(t::ATTR_QUANTITY_FORMAT, t::FORMAT_QUANTITY)?;
            const OWN: [&str; 8] = [
                "xmlns",
                t::ATTR_SCHEMA_VERSION,
                t::ATTR_GENERATED_AT,
                t::ATTR_DATE_FORMAT,
                t::ATTR_TIME_FORMAT,
                t::ATTR_DATE_TIME_SEPARATOR,
                t::ATTR_SUM_FORMAT,
                t::ATTR_QUANTITY_FORMAT,
            ];
            for (name, value) in &root.attributes {
                if !OWN.contains(&name.as_str()) {
                    writer.sink.check_name(name)?;
                    writer.attr(name, value)?;
                }
            }
        }
        writer.sink.push(">");
        Ok(writer)
    }

    /// A writer of root items only, for a part of a file that is assembled elsewhere: it writes
    /// neither the declaration nor the root, and [`Writer::finish`] closes nothing. The output of
    /// fragments, put in order between what a [`Writer::new`] with the same options writes
    /// before its first item and what its `finish` writes, is byte for byte what that one writer
    /// writes for the same items (so documents can be encoded on several threads).
    pub fn fragment(out: W, options: WriteOptions) -> Self {
        Self {
            sink: Sink::new(out, options.encoding),
            layout: Layout::new(&options),
            depth: 1,
            counterparties_open: false,
            options,
            fragment: true,
        }
    }

    /// Writes everything buffered so far to the underlying writer and flushes it.
    pub fn flush(&mut self) -> Result<()> {
        self.sink.flush()
    }

    /// The underlying writer. Bytes written to it directly land after what was flushed and
    /// before anything still buffered: call [`Writer::flush`] first.
    pub fn get_mut(&mut self) -> &mut W {
        self.sink.get_mut()
    }

    /// The options this writer was created with.
    pub fn options(&self) -> &WriteOptions {
        &self.options
    }

    /// Writes one item in the structure of the chosen schema version: a document (wrapped in a
    /// `Контейнер` for ≥ 3), a container (flattened to its documents below 3), a root-level
    /// counterparty (consecutive ones share one `Контрагенты`), or a generic element.
    pub fn write_item(&mut self, item: &Item) -> Result<()> {
        match item {
            Item::Document(d) => self.write_document(d),
            Item::Container(c) => self.write_container(c),
            Item::Counterparty(c) => self.write_counterparty(c),
            Item::Other(e) => {
                if self.layout.strict {
                    return Err(crate::Error::Xsd(format!(
                        "the strict writer writes order documents only, not {}",
                        e.name
                    )));
                }
                self.close_counterparties();
                self.element(e)?;
                self.sink.maybe_flush()
            }
        }
    }

    /// Writes one document; for ≥ 3 it gets a `Контейнер` of its own.
    pub fn write_document(&mut self, document: &Document) -> Result<()> {
        self.write_order(std::slice::from_ref(document))
    }

    /// Writes an order with its payment and shipment documents: for ≥ 3 all in one
    /// `Контейнер`, below 3 one after another under the root.
    pub fn write_order(&mut self, documents: &[Document]) -> Result<()> {
        self.close_counterparties();
        if self.layout.containers {
            self.open(t::CONTAINER);
        }
        for d in documents {
            self.any_document(d, t::DOCUMENT)?;
            self.sink.maybe_flush()?;
        }
        if self.layout.containers {
            self.close(t::CONTAINER);
        }
        self.sink.maybe_flush()
    }

    /// Writes a container: as is for ≥ 3, below 3 only its documents (its `Ид` and unknown
    /// children have no place there and are dropped).
    pub fn write_container(&mut self, container: &Container) -> Result<()> {
        self.close_counterparties();
        if !self.layout.containers {
            for d in &container.documents {
                self.any_document(d, t::DOCUMENT)?;
                self.sink.maybe_flush()?;
            }
            return Ok(());
        }
        self.open(t::CONTAINER);
        self.opt(t::ID, container.id.as_deref())?;
        for d in &container.documents {
            self.any_document(d, t::DOCUMENT)?;
            self.sink.maybe_flush()?;
        }
        self.extras(&container.extra)?;
        self.close(t::CONTAINER);
        self.sink.maybe_flush()
    }

    /// Writes a root-level counterparty inside a `Контрагенты` wrapper, which stays open for
    /// following counterparties.
    pub fn write_counterparty(&mut self, counterparty: &Counterparty) -> Result<()> {
        if self.layout.strict {
            return Err(crate::Error::Xsd(format!(
                "the XSD has no root-level {} (counterparty {:?})",
                t::COUNTERPARTIES,
                counterparty.id.as_deref().unwrap_or("?")
            )));
        }
        if !self.counterparties_open {
            self.open(t::COUNTERPARTIES);
            self.counterparties_open = true;
        }
        self.counterparty(counterparty)?;
        self.sink.maybe_flush()
    }

    /// Closes the root (a fragment: only an open `Контрагенты`) and returns the sink, flushed.
    pub fn finish(mut self) -> Result<W> {
        self.close_counterparties();
        if self.fragment {
            return self.sink.finish();
        }
        self.sink.push("\n</");
        self.sink.push(t::ROOT);
        self.sink.push(">\n");
        self.sink.finish()
    }

    // ---- structure (Bitrix layout) ----

    fn any_document(&mut self, d: &Document, tag: &str) -> Result<()> {
        if self.layout.strict {
            self.strict_document(d, tag)
        } else {
            self.document(d, tag)
        }
    }

    fn document(&mut self, d: &Document, tag: &str) -> Result<()> {
        self.open(tag);
        self.opt(t::ID, d.id.as_deref())?;
        self.opt(t::NUMBER, d.number.as_deref())?;
        self.opt(t::DATE, d.date.as_deref())?;
        self.opt(t::DATE_1C, d.date_1c.as_deref())?;
        self.opt(t::OPERATION, d.operation.as_deref())?;
        self.opt(t::ROLE, d.role.as_deref())?;
        self.opt(t::CURRENCY, d.currency.as_deref())?;
        self.decimal(t::RATE, d.rate);
        self.decimal(t::SUM, d.sum);
        if self.layout.versions {
            self.opt(t::VERSION, d.version.as_deref())?;
            self.opt(t::NUMBER_1C, d.number_1c.as_deref())?;
        }
        self.boolean(t::DELETION_MARK, d.deletion_mark);
        self.opt(t::BASIS, d.basis.as_deref())?;
        if !d.counterparties.is_empty() {
            self.open(t::COUNTERPARTIES);
            for c in &d.counterparties {
                self.counterparty(c)?;
            }
            self.close(t::COUNTERPARTIES);
        }
        self.opt(t::TIME, d.time.as_deref())?;
        self.opt(t::PAYMENT_DUE, d.payment_due.as_deref())?;
        self.opt(t::COMMENT, d.comment.as_deref())?;
        self.taxes(&d.taxes)?;
        self.discounts(&d.discounts)?;
        if !d.warehouses.is_empty() {
            self.open(t::WAREHOUSES);
            for w in &d.warehouses {
                self.open(t::WAREHOUSE);
                self.opt(t::ID, w.id.as_deref())?;
                self.opt(t::NAME, w.name.as_deref())?;
                self.extras(&w.extra)?;
                self.close(t::WAREHOUSE);
            }
            self.close(t::WAREHOUSES);
        }
        if !d.lines.is_empty() {
            self.open(t::LINES);
            for line in &d.lines {
                self.line(line)?;
                self.sink.maybe_flush()?;
            }
            self.close(t::LINES);
        }
        self.requisites(&d.requisites)?;
        if !d.subordinates.is_empty() {
            self.open(t::SUBORDINATES);
            for s in &d.subordinates {
                self.document(s, t::SUBORDINATE)?;
            }
            self.close(t::SUBORDINATES);
        }
        self.extras(&d.extra)?;
        self.close(tag);
        Ok(())
    }

    fn counterparty(&mut self, c: &Counterparty) -> Result<()> {
        self.open(t::COUNTERPARTY);
        self.opt(t::ID, c.id.as_deref())?;
        self.opt(t::VERSION, c.version.as_deref())?;
        self.boolean(t::DELETION_MARK, c.deletion_mark);
        self.opt(t::NAME, c.name.as_deref())?;
        if c.official_name.is_some() {
            // Legal entity first, as Bitrix orders it.
            self.opt(t::OFFICIAL_NAME, c.official_name.as_deref())?;
            self.address(t::LEGAL_ADDRESS, c.legal_address.as_ref())?;
            self.opt(t::INN, c.inn.as_deref())?;
            self.opt(t::KPP, c.kpp.as_deref())?;
            self.opt(t::OKPO, c.okpo.as_deref())?;
            self.bank_accounts(&c.bank_accounts)?;
            self.person_fields(c)?;
            self.address(t::REGISTRATION_ADDRESS, c.registration_address.as_ref())?;
        } else {
            self.person_fields(c)?;
            self.opt(t::INN, c.inn.as_deref())?;
            self.opt(t::KPP, c.kpp.as_deref())?;
            self.opt(t::OKPO, c.okpo.as_deref())?;
            self.address(t::REGISTRATION_ADDRESS, c.registration_address.as_ref())?;
            self.address(t::LEGAL_ADDRESS, c.legal_address.as_ref())?;
            self.bank_accounts(&c.bank_accounts)?;
        }
        self.address(t::ADDRESS, c.address.as_ref())?;
        if !c.contacts.is_empty() {
            self.open(t::CONTACTS);
            for contact in &c.contacts {
                self.open(t::CONTACT);
                let kind = self.contact_kind(&contact.kind);
                self.leaf(t::KIND, kind)?;
                self.leaf(t::VALUE, &contact.value)?;
                self.opt(t::COMMENT, contact.comment.as_deref())?;
                self.close(t::CONTACT);
            }
            self.close(t::CONTACTS);
        }
        if !c.representatives.is_empty() {
            self.open(t::REPRESENTATIVES);
            for r in &c.representatives {
                self.open(t::REPRESENTATIVE);
                if r.nested {
                    self.open(t::COUNTERPARTY);
                }
                self.opt(t::RELATION, r.relation.as_deref())?;
                self.opt(t::ID, r.id.as_deref())?;
                self.opt(t::NAME, r.name.as_deref())?;
                if r.nested {
                    self.close(t::COUNTERPARTY);
                }
                self.close(t::REPRESENTATIVE);
            }
            self.close(t::REPRESENTATIVES);
        }
        self.opt(t::ROLE, c.role.as_deref())?;
        self.extras(&c.extra)?;
        self.close(t::COUNTERPARTY);
        Ok(())
    }

    fn person_fields(&mut self, c: &Counterparty) -> Result<()> {
        self.opt(t::FULL_NAME, c.full_name.as_deref())?;
        self.opt(t::LAST_NAME, c.last_name.as_deref())?;
        self.opt(t::FIRST_NAME, c.first_name.as_deref())?;
        self.opt(t::MIDDLE_NAME, c.middle_name.as_deref())?;
        self.opt(t::BIRTH_DATE, c.birth_date.as_deref())?;
        self.opt(t::GENDER, c.gender.as_deref())
    }

    fn address(&mut self, tag: &str, a: Option<&Address>) -> Result<()> {
        let Some(a) = a else { return Ok(()) };
        self.open(tag);
        self.opt(t::PRESENTATION, a.presentation.as_deref())?;
        for f in &a.fields {
            self.open(t::ADDRESS_FIELD);
            self.leaf(t::KIND, &f.kind)?;
            self.leaf(t::VALUE, &f.value)?;
            self.close(t::ADDRESS_FIELD);
        }
        self.extras(&a.extra)?;
        self.close(tag);
        Ok(())
    }

    fn bank_accounts(&mut self, accounts: &[BankAccount]) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        self.open(t::BANK_ACCOUNTS);
        for acc in accounts {
            self.open(t::BANK_ACCOUNT);
            self.opt(t::ACCOUNT_NUMBER, acc.number.as_deref())?;
            if let Some(bank) = &acc.bank {
                self.open(t::BANK);
                self.opt(
                    t::CORRESPONDENT_ACCOUNT,
                    bank.correspondent_account.as_deref(),
                )?;
                self.opt(t::NAME, bank.name.as_deref())?;
                self.address(t::ADDRESS, bank.address.as_ref())?;
                self.opt(t::BIC, bank.bic.as_deref())?;
                self.extras(&bank.extra)?;
                self.close(t::BANK);
            }
            self.extras(&acc.extra)?;
            self.close(t::BANK_ACCOUNT);
        }
        self.close(t::BANK_ACCOUNTS);
        Ok(())
    }

    fn line(&mut self, l: &Line) -> Result<()> {
        self.open(t::LINE);
        self.opt(t::ID, l.id.as_deref())?;
        self.opt(t::CATALOG_ID, l.catalog_id.as_deref())?;
        self.opt(t::SKU, l.sku.as_deref())?;
        self.opt(t::NAME, l.name.as_deref())?;
        if self.layout.old_units {
            if let Some(u) = UnitRef::merge(l.base_unit.as_ref(), l.unit.as_ref()) {
                self.base_unit(&u)?;
            }
            if let Some(k) = l.coefficient.filter(|k| *k != Decimal::ONE) {
                self.decimal(t::COEFFICIENT, Some(k));
            }
        } else {
            let unit = UnitRef::merge(l.unit.as_ref(), l.base_unit.as_ref());
            if let Some(u) = &unit {
                self.open(t::UNIT);
                self.opt(t::ID, u.id)?;
                self.opt(t::UNIT_CODE, u.code)?;
                self.opt(t::UNIT_FULL_NAME, u.full_name)?;
                self.opt(t::UNIT_SHORT_NAME, u.short_name)?;
                self.opt(t::UNIT_INTERNATIONAL, u.international)?;
                self.close(t::UNIT);
            }
            let coefficient = l.coefficient.or(unit.map(|_| Decimal::ONE));
            self.decimal(t::COEFFICIENT, coefficient);
        }
        self.discounts(&l.discounts)?;
        self.decimal(t::PRICE_PER_UNIT, l.price_per_unit);
        self.decimal(t::PRICE, l.price);
        self.decimal(t::QUANTITY, l.quantity);
        self.decimal(t::SUM, l.sum);
        self.requisites(&l.requisites)?;
        if !l.tax_rates.is_empty() {
            self.open(t::TAX_RATES);
            for r in &l.tax_rates {
                self.open(t::TAX_RATE);
                self.opt(t::NAME, r.name.as_deref())?;
                self.opt(t::RATE_VALUE, r.rate.as_deref())?;
                self.close(t::TAX_RATE);
            }
            self.close(t::TAX_RATES);
        }
        self.taxes(&l.taxes)?;
        self.extras(&l.extra)?;
        self.close(t::LINE);
        Ok(())
    }

    /// `<БазоваяЕдиница Код=".." НаименованиеПолное=".." МеждународноеСокращение="..">шт</…>`.
    fn base_unit(&mut self, u: &UnitRef<'_>) -> Result<()> {
        self.indent();
        self.sink.push("<");
        self.sink.push(t::BASE_UNIT);
        if let Some(code) = u.code {
            self.attr(t::UNIT_CODE, code)?;
        }
        if let Some(full) = u.full_name {
            self.attr(t::UNIT_FULL_NAME, full)?;
        }
        if let Some(intl) = u.international {
            self.attr(t::UNIT_INTERNATIONAL, intl)?;
        }
        match u.short_name.filter(|s| !s.is_empty()) {
            Some(short) => {
                self.sink.push(">");
                self.sink.text(short)?;
                self.sink.push("</");
                self.sink.push(t::BASE_UNIT);
                self.sink.push(">");
            }
            None => self.sink.push("/>"),
        }
        Ok(())
    }

    fn taxes(&mut self, taxes: &[Tax]) -> Result<()> {
        if taxes.is_empty() {
            return Ok(());
        }
        self.open(t::TAXES);
        for tax in taxes {
            self.open(t::TAX);
            self.opt(t::NAME, tax.name.as_deref())?;
            self.boolean(t::INCLUDED, tax.included);
            self.decimal(t::SUM, tax.sum);
            self.opt(t::RATE_VALUE, tax.rate.as_deref())?;
            self.close(t::TAX);
        }
        self.close(t::TAXES);
        Ok(())
    }

    fn discounts(&mut self, discounts: &[Discount]) -> Result<()> {
        if discounts.is_empty() {
            return Ok(());
        }
        self.open(t::DISCOUNTS);
        for d in discounts {
            self.open(t::DISCOUNT);
            self.opt(t::NAME, d.name.as_deref())?;
            self.decimal(t::SUM, d.sum);
            self.decimal(t::PERCENT, d.percent);
            self.boolean(t::INCLUDED, d.included);
            self.opt(t::COMMENT, d.comment.as_deref())?;
            self.close(t::DISCOUNT);
        }
        self.close(t::DISCOUNTS);
        Ok(())
    }

    fn requisites(&mut self, requisites: &[Requisite]) -> Result<()> {
        if requisites.is_empty() {
            return Ok(());
        }
        self.open(t::REQUISITES);
        for r in requisites {
            self.open(t::REQUISITE);
            self.leaf(t::NAME, &r.name)?;
            match (&r.value, self.layout.strict) {
                (Some(v), _) => self.leaf(t::VALUE, v)?,
                // The XSD requires at least one `Значение`.
                (None, true) => self.leaf(t::VALUE, "")?,
                (None, false) => {}
            }
            self.close(t::REQUISITE);
        }
        self.close(t::REQUISITES);
        Ok(())
    }

    fn extras(&mut self, extra: &[Element]) -> Result<()> {
        if self.layout.strict {
            return Ok(());
        }
        for e in extra {
            self.element(e)?;
        }
        Ok(())
    }

    /// A generic element, written back as it was read.
    fn element(&mut self, e: &Element) -> Result<()> {
        self.sink.check_name(&e.name)?;
        self.indent();
        self.sink.push("<");
        self.sink.push(&e.name);
        for (name, value) in &e.attributes {
            self.sink.check_name(name)?;
            self.attr(name, value)?;
        }
        let text = e.text.as_deref().filter(|s| !s.is_empty());
        if text.is_none() && e.children.is_empty() {
            self.sink.push("/>");
            return Ok(());
        }
        self.sink.push(">");
        if let Some(text) = text {
            self.sink.text(text)?;
        }
        if !e.children.is_empty() {
            self.depth += 1;
            for child in &e.children {
                self.element(child)?;
            }
            self.depth -= 1;
            self.indent();
        }
        self.sink.push("</");
        self.sink.push(&e.name);
        self.sink.push(">");
        Ok(())
    }

    /// The contact type name for the written version.
    fn contact_kind<'a>(&self, kind: &'a str) -> &'a str {
        let old = self.layout.old_contacts;
        if names_match(kind, t::CONTACT_PHONE) {
            if old {
                t::CONTACT_PHONE_OLD
            } else {
                t::CONTACT_PHONE
            }
        } else if names_match(kind, t::CONTACT_EMAIL) || names_match(kind, t::CONTACT_EMAIL_OLD) {
            if old {
                t::CONTACT_EMAIL_OLD
            } else {
                t::CONTACT_EMAIL
            }
        } else {
            kind
        }
    }

    fn close_counterparties(&mut self) {
        if self.counterparties_open {
            self.close(t::COUNTERPARTIES);
            self.counterparties_open = false;
        }
    }

    // ---- primitives ----

    #[inline]
    fn indent(&mut self) {
        self.sink.push("\n");
        let width = (self.depth * 2).min(INDENT.len());
        self.sink.push(&INDENT[..width]);
    }

    #[inline]
    fn open(&mut self, name: &str) {
        self.indent();
        self.sink.push("<");
        self.sink.push(name);
        self.sink.push(">");
        self.depth += 1;
    }

    #[inline]
    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.sink.push("</");
        self.sink.push(name);
        self.sink.push(">");
    }

    /// ` name="value"` after an open start tag.
    #[inline]
    fn attr(&mut self, name: &str, value: &str) -> Result<()> {
        self.sink.push(" ");
        self.sink.push(name);
        self.sink.push("=\"");
        self.sink.attr_value(value)?;
        self.sink.push("\"");
        Ok(())
    }

    /// `<name>value</name>`, or `<name/>` when the value is empty.
    #[inline]
    fn leaf(&mut self, name: &str, value: &str) -> Result<()> {
        self.indent();
        self.sink.push("<");
        self.sink.push(name);
        if value.is_empty() {
            self.sink.push("/>");
            return Ok(());
        }
        self.sink.push(">");
        self.sink.text(value)?;
        self.sink.push("</");
        self.sink.push(name);
        self.sink.push(">");
        Ok(())
    }

    #[inline]
    fn opt(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.leaf(name, v),
            None => Ok(()),
        }
    }

    #[inline]
    fn decimal(&mut self, name: &str, value: Option<Decimal>) {
        let Some(v) = value else { return };
        self.indent();
        self.sink.push("<");
        self.sink.push(name);
        self.sink.push(">");
        self.sink.push_decimal(v);
        self.sink.push("</");
        self.sink.push(name);
        self.sink.push(">");
    }

    #[inline]
    fn boolean(&mut self, name: &str, value: Option<bool>) {
        let Some(v) = value else { return };
        self.indent();
        self.sink.push("<");
        self.sink.push(name);
        self.sink.push(if v { ">true</" } else { ">false</" });
        self.sink.push(name);
        self.sink.push(">");
    }
}

/// A unit of measure merged from the two forms a line may carry (`БазоваяЕдиница` and
/// `Единица`): each field from the preferred form, else from the other.
#[derive(Debug, Clone, Copy)]
struct UnitRef<'a> {
    id: Option<&'a str>,
    code: Option<&'a str>,
    full_name: Option<&'a str>,
    international: Option<&'a str>,
    short_name: Option<&'a str>,
}

impl<'a> UnitRef<'a> {
    fn merge(preferred: Option<&'a Unit>, other: Option<&'a Unit>) -> Option<Self> {
        if preferred.is_none() && other.is_none() {
            return None;
        }
        let pick = |f: fn(&'a Unit) -> Option<&'a str>| {
            preferred
                .and_then(f)
                .filter(|s| !s.is_empty())
                .or_else(|| other.and_then(f).filter(|s| !s.is_empty()))
        };
        Some(Self {
            id: pick(|u| u.id.as_deref()),
            code: pick(|u| u.code.as_deref()),
            full_name: pick(|u| u.full_name.as_deref()),
            international: pick(|u| u.international.as_deref()),
            short_name: pick(|u| u.short_name.as_deref()),
        })
    }
}
