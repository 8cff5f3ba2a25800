//! The `xsd_strict` layout: what the published CommerceML 2.10 XSD requires, element by element,
//! in the XSD's sequence order. Every deviation from the Bitrix layout is listed in
//! `docs/commerceml-xsd-vs-bitrix.md`; in short:
//!
//! * root: default namespace `urn:1C.ru:commerceml_2`, only `ВерсияСхемы` and a zero-padded
//!   `ДатаФормирования` (required);
//! * documents: never in a `Контейнер`; `НомерВерсии`, `Номер1С`, `Дата1С`, `ПометкаУдаления`,
//!   `Основание` (not in the XSD's `Документ`) move into `ЗначенияРеквизитов` under their element
//!   names; dates and times in `xsd:date` / `xsd:time` form; `Эквайринговая операция` becomes
//!   `Выплата безналичных денег`;
//! * lines: `БазоваяЕдиница` (required) instead of `Единица`, `ЦенаЗаЕдиницу` instead of `Цена`,
//!   requisites before `ИдКаталога` and the amounts;
//! * counterparties: legal-entity or physical-person group, not both; `ОКПО` instead of
//!   `КодПоОКПО`; values that break the XSD's lengths or enumerations are left out (empty `ИНН`);
//!   `НомерВерсии`/`ПометкаУдаления` of a counterparty have no place and are dropped;
//! * elements the model does not know are not written.
//!
//! What cannot be written validly without inventing data (a document without `Сумма`,
//! `Валюта`, counterparties, …) is an [`Error::Xsd`].

use std::io::Write;

use rust_decimal::Decimal;

use super::{UnitRef, Writer};
use crate::error::{Error, Result};
use crate::model::{names_match, Address, BankAccount, Counterparty, Document, Line, Requisite};
use crate::tags as t;
use crate::value::{parse_date, parse_datetime, parse_time, SchemaVersion};

impl<W: Write> Writer<W> {
    pub(super) fn strict_root_attributes(
        &mut self,
        schema: &SchemaVersion,
        generated_at: Option<&str>,
    ) -> Result<()> {
        self.attr("xmlns", t::NAMESPACE_2)?;
        if schema.as_str().chars().count() > 5 {
            return Err(Error::Xsd(format!(
                "{} {:?} is longer than 5 characters",
                t::ATTR_SCHEMA_VERSION,
                schema.as_str()
            )));
        }
        self.attr(t::ATTR_SCHEMA_VERSION, schema.as_str())?;
        let raw = generated_at.ok_or_else(|| {
            Error::Xsd(format!(
                "the root needs {} (xsd:dateTime)",
                t::ATTR_GENERATED_AT
            ))
        })?;
        let at = parse_datetime(raw).ok_or_else(|| {
            Error::Xsd(format!(
                "{} {raw:?} is not a date-time",
                t::ATTR_GENERATED_AT
            ))
        })?;
        self.sink.push(" ");
        self.sink.push(t::ATTR_GENERATED_AT);
        self.sink.push("=\"");
        self.sink.push_display(at.format("%Y-%m-%dT%H:%M:%S"));
        self.sink.push("\"");
        Ok(())
    }

    /// A `Документ` (or `ПодчиненныйДокумент`, whose header fields after `ХозОперация` are
    /// optional) in the XSD's sequence.
    pub(super) fn strict_document(&mut self, d: &Document, tag: &str) -> Result<()> {
        let full = tag == t::DOCUMENT;
        let label = d.number.as_deref().or(d.id.as_deref()).unwrap_or("?");
        let missing = |what: &str| {
            Error::Xsd(format!(
                "document {label:?} has no {what}, which the XSD requires"
            ))
        };
        self.open(tag);
        self.leaf(t::ID, d.id.as_deref().ok_or_else(|| missing(t::ID))?)?;
        self.leaf(
            t::NUMBER,
            d.number.as_deref().ok_or_else(|| missing(t::NUMBER))?,
        )?;
        let date = d.date.as_deref().ok_or_else(|| missing(t::DATE))?;
        self.date(t::DATE, date)?;
        let operation = d
            .operation
            .as_deref()
            .ok_or_else(|| missing(t::OPERATION))?;
        self.leaf(t::OPERATION, xsd_operation(operation)?)?;
        match d.role.as_deref() {
            Some(role) => self.leaf(t::ROLE, enumerated(role, &t::XSD_ROLES, t::ROLE)?)?,
            None if full => return Err(missing(t::ROLE)),
            None => {}
        }
        match d.currency.as_deref() {
            Some(c) if c.chars().count() == 3 => self.leaf(t::CURRENCY, c)?,
            Some(c) => {
                return Err(Error::Xsd(format!(
                    "document {label:?}: {} {c:?} is not 3 characters long",
                    t::CURRENCY
                )))
            }
            None if full => return Err(missing(t::CURRENCY)),
            None => {}
        }
        match d.rate {
            Some(rate) => self.decimal(t::RATE, Some(rate)),
            None if full => return Err(missing(t::RATE)),
            None => {}
        }
        match d.sum {
            Some(sum) => self.money(t::SUM, sum)?,
            None if full => return Err(missing(t::SUM)),
            None => {}
        }
        if d.counterparties.is_empty() && full {
            return Err(missing(t::COUNTERPARTIES));
        }
        if !d.counterparties.is_empty() {
            self.open(t::COUNTERPARTIES);
            for c in &d.counterparties {
                self.strict_counterparty(c)?;
            }
            self.close(t::COUNTERPARTIES);
        }
        if let Some(time) = d.time.as_deref() {
            let parsed = parse_time(time).ok_or_else(|| {
                Error::Xsd(format!(
                    "document {label:?}: {} {time:?} is not a time",
                    t::TIME
                ))
            })?;
            self.indent();
            self.sink.push("<");
            self.sink.push(t::TIME);
            self.sink.push(">");
            self.sink.push_display(parsed.format("%H:%M:%S"));
            self.sink.push("</");
            self.sink.push(t::TIME);
            self.sink.push(">");
        }
        if let Some(due) = d.payment_due.as_deref() {
            // 1C's empty date (`0001-01-01`) means "none".
            if parse_date(due).is_some() {
                self.date(t::PAYMENT_DUE, due)?;
            }
        }
        self.opt(t::COMMENT, d.comment.as_deref())?;
        if !d.taxes.is_empty() {
            self.open(t::TAXES);
            for tax in &d.taxes {
                self.open(t::TAX);
                self.leaf(t::NAME, tax.name.as_deref().unwrap_or(""))?;
                self.boolean(t::INCLUDED, tax.included);
                let sum = tax.sum.ok_or_else(|| missing("Налог/Сумма"))?;
                self.money(t::SUM, sum)?;
                self.opt(t::RATE_VALUE, tax.rate.as_deref())?;
                self.close(t::TAX);
            }
            self.close(t::TAXES);
        }
        self.strict_discounts(&d.discounts, label)?;
        if !d.warehouses.is_empty() {
            self.open(t::WAREHOUSES);
            for w in &d.warehouses {
                self.open(t::WAREHOUSE);
                self.leaf(t::ID, w.id.as_deref().ok_or_else(|| missing("Склад/Ид"))?)?;
                self.opt(t::NAME, w.name.as_deref())?;
                self.close(t::WAREHOUSE);
            }
            self.close(t::WAREHOUSES);
        }
        if !d.lines.is_empty() {
            self.open(t::LINES);
            for line in &d.lines {
                self.strict_line(line, label)?;
                self.sink.maybe_flush()?;
            }
            self.close(t::LINES);
        }
        // Header fields the XSD's `Документ` lacks travel as requisites named after them.
        let mut moved: Vec<Requisite> = Vec::new();
        let mut keep = |name: &str, value: Option<&str>| {
            if let Some(v) = value {
                moved.push(Requisite {
                    name: name.to_owned(),
                    value: Some(v.to_owned()),
                });
            }
        };
        keep(t::VERSION, d.version.as_deref());
        keep(t::NUMBER_1C, d.number_1c.as_deref());
        keep(t::DATE_1C, d.date_1c.as_deref());
        keep(
            t::DELETION_MARK,
            d.deletion_mark.map(|b| if b { "true" } else { "false" }),
        );
        keep(t::BASIS, d.basis.as_deref());
        if !d.requisites.is_empty() || !moved.is_empty() {
            self.open(t::REQUISITES);
            for r in moved.iter().chain(&d.requisites) {
                self.open(t::REQUISITE);
                self.leaf(t::NAME, &r.name)?;
                self.leaf(t::VALUE, r.value.as_deref().unwrap_or(""))?;
                self.close(t::REQUISITE);
            }
            self.close(t::REQUISITES);
        }
        if !d.subordinates.is_empty() {
            self.open(t::SUBORDINATES);
            for s in &d.subordinates {
                self.strict_document(s, t::SUBORDINATE)?;
            }
            self.close(t::SUBORDINATES);
        }
        self.close(tag);
        Ok(())
    }

    /// A `Контрагент` of a document: `Ид`, `Наименование`, the legal-entity or the
    /// physical-person group, `Адрес`, `Контакты`, `Представители`, then `Роль` and (for a
    /// person) one `РасчетныйСчет`.
    pub(super) fn strict_counterparty(&mut self, c: &Counterparty) -> Result<()> {
        self.open(t::COUNTERPARTY);
        self.opt(t::ID, c.id.as_deref())?;
        self.opt(t::NAME, c.name.as_deref())?;
        let legal = c.official_name.is_some();
        if let Some(official) = c.official_name.as_deref() {
            self.leaf(t::OFFICIAL_NAME, official)?;
            self.strict_address(t::LEGAL_ADDRESS, c.legal_address.as_ref())?;
            self.strict_tax_ids(c)?;
            self.opt(t::XSD_OKPO, c.okpo.as_deref().filter(|s| !s.is_empty()))?;
            let valid: Vec<&BankAccount> = c
                .bank_accounts
                .iter()
                .filter(|a| bank_account_ok(a))
                .collect();
            if !valid.is_empty() {
                self.open(t::BANK_ACCOUNTS);
                for acc in valid {
                    self.strict_bank_account(t::BANK_ACCOUNT, acc)?;
                }
                self.close(t::BANK_ACCOUNTS);
            }
        } else {
            let full_name = c.full_name.as_deref().or(c.name.as_deref()).unwrap_or("");
            self.leaf(t::FULL_NAME, full_name)?;
            self.opt(t::LAST_NAME, c.last_name.as_deref())?;
            self.opt(t::FIRST_NAME, c.first_name.as_deref())?;
            self.opt(t::MIDDLE_NAME, c.middle_name.as_deref())?;
            if let Some(birth) = c.birth_date.as_deref().filter(|b| parse_date(b).is_some()) {
                self.date(t::BIRTH_DATE, birth)?;
            }
            if let Some(gender) = c.gender.as_deref() {
                if let Some(g) = t::XSD_GENDERS.iter().find(|g| names_match(g, gender)) {
                    self.leaf(t::GENDER, g)?;
                }
            }
            self.strict_tax_ids(c)?;
            self.strict_address(t::REGISTRATION_ADDRESS, c.registration_address.as_ref())?;
        }
        self.strict_address(t::ADDRESS, c.address.as_ref())?;
        if !c.contacts.is_empty() {
            self.open(t::CONTACTS);
            for contact in &c.contacts {
                let (kind, known) = xsd_contact_kind(&contact.kind);
                self.open(t::CONTACT);
                self.leaf(t::KIND, kind)?;
                self.leaf(t::VALUE, &contact.value)?;
                // An unknown type is kept as the comment of a `Прочее` contact.
                let comment = contact
                    .comment
                    .as_deref()
                    .or((!known).then_some(contact.kind.as_str()));
                self.opt(t::COMMENT, comment)?;
                self.close(t::CONTACT);
            }
            self.close(t::CONTACTS);
        }
        if !c.representatives.is_empty() {
            self.open(t::REPRESENTATIVES);
            for r in &c.representatives {
                self.open(t::REPRESENTATIVE);
                self.opt(t::ID, r.id.as_deref())?;
                self.opt(t::NAME, r.name.as_deref())?;
                self.leaf(t::FULL_NAME, r.name.as_deref().unwrap_or(""))?;
                let relation = r.relation.as_deref().unwrap_or(t::RELATION_CONTACT_PERSON);
                self.leaf(t::RELATION, relation)?;
                self.close(t::REPRESENTATIVE);
            }
            self.close(t::REPRESENTATIVES);
        }
        let role = match c.role.as_deref() {
            Some(role) => enumerated(role, &t::XSD_ROLES, t::ROLE)?,
            None => t::ROLE_BUYER,
        };
        self.leaf(t::ROLE, role)?;
        if !legal {
            if let Some(acc) = c.bank_accounts.iter().find(|a| bank_account_ok(a)) {
                self.strict_bank_account(t::XSD_BANK_ACCOUNT, acc)?;
            }
        }
        self.close(t::COUNTERPARTY);
        Ok(())
    }

    /// `ИНН` (10–12 characters) and `КПП` (9), left out when they do not fit.
    fn strict_tax_ids(&mut self, c: &Counterparty) -> Result<()> {
        let len = |s: &&str| s.chars().count();
        self.opt(
            t::INN,
            c.inn.as_deref().filter(|s| (10..=12).contains(&len(s))),
        )?;
        self.opt(t::KPP, c.kpp.as_deref().filter(|s| len(s) == 9))
    }

    fn strict_address(&mut self, tag: &str, a: Option<&Address>) -> Result<()> {
        let Some(a) = a else { return Ok(()) };
        self.open(tag);
        self.leaf(t::PRESENTATION, a.presentation.as_deref().unwrap_or(""))?;
        let fields = a
            .fields
            .iter()
            .filter_map(|f| {
                let kind = t::XSD_ADDRESS_KINDS
                    .iter()
                    .find(|k| names_match(k, &f.kind))?;
                Some((*kind, f.value.as_str()))
            })
            .take(10);
        for (kind, value) in fields {
            self.open(t::ADDRESS_FIELD);
            self.leaf(t::KIND, kind)?;
            self.leaf(t::VALUE, value)?;
            self.close(t::ADDRESS_FIELD);
        }
        self.close(tag);
        Ok(())
    }

    fn strict_bank_account(&mut self, tag: &str, acc: &BankAccount) -> Result<()> {
        // `bank_account_ok` checked the number, the bank and its БИК.
        let (Some(number), Some(bank)) = (acc.number.as_deref(), acc.bank.as_ref()) else {
            return Ok(());
        };
        self.open(tag);
        self.leaf(t::ACCOUNT_NUMBER, number)?;
        self.open(t::BANK);
        self.opt(
            t::CORRESPONDENT_ACCOUNT,
            bank.correspondent_account
                .as_deref()
                .filter(|s| account_number_ok(s)),
        )?;
        self.opt(t::NAME, bank.name.as_deref())?;
        self.strict_address(t::ADDRESS, bank.address.as_ref())?;
        self.opt(t::BIC, bank.bic.as_deref())?;
        self.close(t::BANK);
        self.close(tag);
        Ok(())
    }

    /// A document line: the XSD's `Товар` base sequence, then the document extension.
    fn strict_line(&mut self, l: &Line, label: &str) -> Result<()> {
        self.open(t::LINE);
        self.opt(t::ID, l.id.as_deref())?;
        self.opt(t::SKU, l.sku.as_deref())?;
        self.leaf(t::NAME, l.name.as_deref().unwrap_or(""))?;
        // `БазоваяЕдиница` is required; with no unit at all it is written empty.
        let unit = UnitRef::merge(l.base_unit.as_ref(), l.unit.as_ref()).unwrap_or(UnitRef {
            id: None,
            code: None,
            full_name: None,
            international: None,
            short_name: None,
        });
        let unit = UnitRef {
            code: unit.code.filter(|c| (3..=4).contains(&c.chars().count())),
            international: unit.international.filter(|s| s.chars().count() <= 3),
            ..unit
        };
        self.base_unit(&unit)?;
        let rates: Vec<_> = l.tax_rates.iter().filter(|r| r.rate.is_some()).collect();
        if !rates.is_empty() {
            self.open(t::TAX_RATES);
            for r in rates {
                self.open(t::TAX_RATE);
                self.leaf(t::NAME, r.name.as_deref().unwrap_or(""))?;
                self.leaf(t::RATE_VALUE, r.rate.as_deref().unwrap_or(""))?;
                self.close(t::TAX_RATE);
            }
            self.close(t::TAX_RATES);
        }
        self.requisites(&l.requisites)?;
        self.opt(t::CATALOG_ID, l.catalog_id.as_deref())?;
        if let Some(price) = l.price_per_unit.or(l.price) {
            self.money(t::PRICE_PER_UNIT, price)?;
        }
        self.decimal(t::QUANTITY, l.quantity);
        if let Some(sum) = l.sum {
            self.money(t::SUM, sum)?;
        }
        self.decimal(t::COEFFICIENT, l.coefficient);
        if !l.taxes.is_empty() {
            self.open(t::TAXES);
            for tax in &l.taxes {
                self.open(t::TAX);
                self.leaf(t::NAME, tax.name.as_deref().unwrap_or(""))?;
                self.boolean(t::INCLUDED, tax.included);
                let sum = tax.sum.ok_or_else(|| {
                    Error::Xsd(format!(
                        "document {label:?}: a line tax has no {}, which the XSD requires",
                        t::SUM
                    ))
                })?;
                self.money(t::SUM, sum)?;
                self.opt(t::RATE_VALUE, tax.rate.as_deref())?;
                self.close(t::TAX);
            }
            self.close(t::TAXES);
        }
        self.strict_discounts(&l.discounts, label)?;
        self.close(t::LINE);
        Ok(())
    }

    fn strict_discounts(
        &mut self,
        discounts: &[crate::model::Discount],
        label: &str,
    ) -> Result<()> {
        if discounts.is_empty() {
            return Ok(());
        }
        self.open(t::DISCOUNTS);
        for d in discounts {
            self.open(t::DISCOUNT);
            self.leaf(t::NAME, d.name.as_deref().unwrap_or(""))?;
            let sum = d.sum.ok_or_else(|| {
                Error::Xsd(format!(
                    "document {label:?}: a discount has no {}, which the XSD requires",
                    t::SUM
                ))
            })?;
            self.money(t::SUM, sum)?;
            self.decimal(t::PERCENT, d.percent);
            self.boolean(t::INCLUDED, d.included);
            self.opt(t::COMMENT, d.comment.as_deref())?;
            self.close(t::DISCOUNT);
        }
        self.close(t::DISCOUNTS);
        Ok(())
    }

    /// An `xsd:date` element from any date form the model holds.
    fn date(&mut self, name: &str, raw: &str) -> Result<()> {
        let date =
            parse_date(raw).ok_or_else(|| Error::Xsd(format!("{name} {raw:?} is not a date")))?;
        self.indent();
        self.sink.push("<");
        self.sink.push(name);
        self.sink.push(">");
        self.sink.push_display(date.format("%Y-%m-%d"));
        self.sink.push("</");
        self.sink.push(name);
        self.sink.push(">");
        Ok(())
    }

    /// A `СуммаТип` amount: at most 2 fraction digits once trailing zeros are ignored (the
    /// value is written as it is; `231.7400` is a valid 2-digit decimal).
    fn money(&mut self, name: &str, value: Decimal) -> Result<()> {
        if value.normalize().scale() > 2 {
            return Err(Error::Xsd(format!(
                "{name} {value} has more than the 2 fraction digits the XSD allows"
            )));
        }
        self.decimal(name, Some(value));
        Ok(())
    }
}

/// The XSD's `ХозОперация` value for `raw`; card acquiring (a Bitrix value the XSD lacks) is a
/// cashless payment there.
fn xsd_operation(raw: &str) -> Result<&'static str> {
    if names_match(raw, t::OP_CARD_PAYMENT) {
        return Ok(t::OP_TRANSFER_PAYMENT);
    }
    enumerated(raw, &t::XSD_OPERATIONS, t::OPERATION)
}

fn enumerated(raw: &str, allowed: &[&'static str], what: &str) -> Result<&'static str> {
    allowed
        .iter()
        .find(|a| names_match(a, raw))
        .copied()
        .ok_or_else(|| Error::Xsd(format!("{what} {raw:?} is not one of the XSD's values")))
}

/// The XSD's contact type for `raw`, and whether it was recognised (else `Прочее`).
fn xsd_contact_kind(raw: &str) -> (&'static str, bool) {
    if names_match(raw, t::CONTACT_EMAIL) || names_match(raw, t::CONTACT_EMAIL_OLD) {
        return (t::CONTACT_EMAIL_OLD, true);
    }
    match t::XSD_CONTACT_KINDS.iter().find(|k| names_match(k, raw)) {
        Some(k) => (k, true),
        None => (t::XSD_CONTACT_OTHER, false),
    }
}

/// `СчетНомерТип`: 20 characters, `[0-9]{5}[0-9ABCEHKMPTX][0-9]{14}`.
fn account_number_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 5 && b"ABCEHKMPTX".contains(c)))
}

/// Whether a bank account can be written validly: number, bank and a 9-character БИК.
fn bank_account_ok(acc: &BankAccount) -> bool {
    acc.number.as_deref().is_some_and(account_number_ok)
        && acc
            .bank
            .as_ref()
            .and_then(|b| b.bic.as_deref())
            .is_some_and(|bic| bic.chars().count() == 9)
}
