//! The typed model of CommerceML order documents.
//!
//! One struct per CommerceML element that carries meaning for order exchange. Scalars are kept
//! as trimmed strings unless they are money or quantities ([`Decimal`]) or flags (`bool`); dates
//! and times stay as written and are interpreted by the helpers in [`crate::value`], so a read →
//! write → read cycle gives equal values. Child elements the model does not know are kept in
//! `extra` as generic [`Element`] trees and written back unchanged.

use rust_decimal::Decimal;

use crate::value::SchemaVersion;

/// The root element (`<КоммерческаяИнформация>`) without its children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Root {
    /// `ВерсияСхемы` as written (e.g. `"2.05"`, `"3.1"`).
    pub schema_version: Option<SchemaVersion>,
    /// `ДатаФормирования` as written.
    pub generated_at: Option<String>,
    /// Namespace URI of the root element (`urn:1C.ru:commerceml_3`), if any.
    pub namespace: Option<String>,
    /// Every other attribute of the root (format attributes, `Ид`, `xmlns:*`), in order.
    pub attributes: Vec<(String, String)>,
}

/// What the streaming reader yields: one child of the root at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A document directly under the root (`<Документ>`).
    Document(Box<Document>),
    /// A 3.x container (`<Контейнер>`) holding one order and its payments and shipments.
    Container(Container),
    /// A root-level counterparty (`<Контрагенты>/<Контрагент>`).
    Counterparty(Box<Counterparty>),
    /// Any other root child (catalog, offers, …), kept as a generic tree.
    Other(Element),
}

/// A 3.x package container (`<Контейнер>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Container {
    /// `Ид` of the container, when present.
    pub id: Option<String>,
    /// The documents of the container, in order.
    pub documents: Vec<Document>,
    /// Children the model does not know.
    pub extra: Vec<Element>,
}

/// A business document (`<Документ>`): an order, a payment or a shipment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// `Ид`.
    pub id: Option<String>,
    /// `Номер`: the site's number.
    pub number: Option<String>,
    /// `Номер1С`: 1C's own number (padding trimmed).
    pub number_1c: Option<String>,
    /// `Дата` as written.
    pub date: Option<String>,
    /// `Время` as written.
    pub time: Option<String>,
    /// `Дата1С` as written.
    pub date_1c: Option<String>,
    /// `ХозОперация` (see [`Operation`]).
    pub operation: Option<String>,
    /// `Роль`.
    pub role: Option<String>,
    /// `Валюта`.
    pub currency: Option<String>,
    /// `Курс`.
    pub rate: Option<Decimal>,
    /// `Сумма`.
    pub sum: Option<Decimal>,
    /// `НомерВерсии`: opaque, compare for equality only.
    pub version: Option<String>,
    /// `ПометкаУдаления` as a direct child.
    pub deletion_mark: Option<bool>,
    /// `Основание`: the order a payment or shipment belongs to.
    pub basis: Option<String>,
    /// `СрокПлатежа` as written.
    pub payment_due: Option<String>,
    /// `Комментарий`.
    pub comment: Option<String>,
    /// `Контрагенты/Контрагент`.
    pub counterparties: Vec<Counterparty>,
    /// `Налоги/Налог`.
    pub taxes: Vec<Tax>,
    /// `Скидки/Скидка`.
    pub discounts: Vec<Discount>,
    /// `Склады/Склад`.
    pub warehouses: Vec<Warehouse>,
    /// `Товары/Товар`.
    pub lines: Vec<Line>,
    /// `ЗначенияРеквизитов/ЗначениеРеквизита`, and bare `ЗначениеРеквизита` children.
    pub requisites: Vec<Requisite>,
    /// `ПодчиненныеДокументы/ПодчиненныйДокумент` (2.10 nested payments and shipments).
    pub subordinates: Vec<Document>,
    /// Children the model does not know.
    pub extra: Vec<Element>,
}

/// The business operation of a document (`ХозОперация`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `Заказ товара`.
    Order,
    /// `Выплата наличных денег`.
    CashPayment,
    /// `Выплата безналичных денег`.
    TransferPayment,
    /// `Эквайринговая операция`.
    CardPayment,
    /// `Отпуск товара`.
    Shipment,
    /// Any other value.
    Other,
}

/// A buyer, seller or other party (`<Контрагент>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counterparty {
    /// `Ид`.
    pub id: Option<String>,
    /// `НомерВерсии`.
    pub version: Option<String>,
    /// `ПометкаУдаления`.
    pub deletion_mark: Option<bool>,
    /// `Наименование`.
    pub name: Option<String>,
    /// `ПолноеНаименование` (persons).
    pub full_name: Option<String>,
    /// `ОфициальноеНаименование` (companies).
    pub official_name: Option<String>,
    /// `Фамилия`.
    pub last_name: Option<String>,
    /// `Имя`.
    pub first_name: Option<String>,
    /// `Отчество`.
    pub middle_name: Option<String>,
    /// `ДатаРождения` as written.
    pub birth_date: Option<String>,
    /// `Пол`.
    pub gender: Option<String>,
    /// `Роль`.
    pub role: Option<String>,
    /// `ИНН`.
    pub inn: Option<String>,
    /// `КПП`.
    pub kpp: Option<String>,
    /// `КодПоОКПО`.
    pub okpo: Option<String>,
    /// `АдресРегистрации`.
    pub registration_address: Option<Address>,
    /// `ЮридическийАдрес`.
    pub legal_address: Option<Address>,
    /// `Адрес` (actual / delivery address).
    pub address: Option<Address>,
    /// `Контакты/Контакт`.
    pub contacts: Vec<Contact>,
    /// `Представители/Представитель`.
    pub representatives: Vec<Representative>,
    /// `РасчетныеСчета/РасчетныйСчет`.
    pub bank_accounts: Vec<BankAccount>,
    /// Children the model does not know.
    pub extra: Vec<Element>,
}

/// An address block (`АдресРегистрации`, `ЮридическийАдрес`, `Адрес`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// `Представление`: the address as one string.
    pub presentation: Option<String>,
    /// `АдресноеПоле` items.
    pub fields: Vec<AddressField>,
    /// Children the model does not know.
    pub extra: Vec<Element>,
}

/// One structured address part (`<АдресноеПоле>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressField {
    /// `Тип` (`Почтовый индекс`, `Город`, `Улица`, …).
    pub kind: String,
    /// `Значение`.
    pub value: String,
}

/// A contact (`<Контакт>`): phone, e-mail, …
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// `Тип` (`Телефон рабочий`, `Электронная почта`, `ТелефонРабочий`, `Почта`).
    pub kind: String,
    /// `Значение`.
    pub value: String,
    /// `Комментарий`.
    pub comment: Option<String>,
}

/// A representative (`<Представитель>`), with or without the inner `Контрагент`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Representative {
    /// `Отношение` (`Контактное лицо`).
    pub relation: Option<String>,
    /// `Ид`.
    pub id: Option<String>,
    /// `Наименование`.
    pub name: Option<String>,
    /// Whether the fields were nested in an inner `Контрагент` (Bitrix) or not (1C UT).
    pub nested: bool,
}

/// A bank account (`<РасчетныйСчет>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BankAccount {
    /// `НомерСчета`.
    pub number: Option<String>,
    /// `Банк`.
    pub bank: Option<Bank>,
    /// Children the model does not know (`БанкКорреспондент`, …).
    pub extra: Vec<Element>,
}

/// A bank (`<Банк>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bank {
    /// `Наименование`.
    pub name: Option<String>,
    /// `БИК`.
    pub bic: Option<String>,
    /// `СчетКорреспондентский`.
    pub correspondent_account: Option<String>,
    /// `Адрес`.
    pub address: Option<Address>,
    /// Children the model does not know.
    pub extra: Vec<Element>,
}

/// A tax (`<Налог>`), order- or line-level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tax {
    /// `Наименование` (`НДС`).
    pub name: Option<String>,
    /// `УчтеноВСумме`: the tax is included in the amounts.
    pub included: Option<bool>,
    /// `Сумма`.
    pub sum: Option<Decimal>,
    /// `Ставка` as written (`18`, `20`, `Без налога`).
    pub rate: Option<String>,
}

/// A tax rate of a line (`<СтавкаНалога>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaxRate {
    /// `Наименование`.
    pub name: Option<String>,
    /// `Ставка` as written.
    pub rate: Option<String>,
}

/// A discount (`<Скидка>`), order- or line-level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Discount {
    /// `Наименование`.
    pub name: Option<String>,
    /// `Сумма`.
    pub sum: Option<Decimal>,
    /// `Процент`.
    pub percent: Option<Decimal>,
    /// `УчтеноВСумме`: already subtracted from the amounts.
    pub included: Option<bool>,
    /// `Комментарий`.
    pub comment: Option<String>,
}

/// A warehouse or pick-up point (`<Склад>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Warehouse {
    /// `Ид`.
    pub id: Option<String>,
    /// `Наименование`.
    pub name: Option<String>,
    /// Children the model does not know (`Адрес`, `Контакты`, …).
    pub extra: Vec<Element>,
}

/// A document line (`<Товар>`): goods, a service, delivery or a discount line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    /// `Ид` (product GUID, `guid#guid` for an offer, `ORDER_DELIVERY`).
    pub id: Option<String>,
    /// `ИдКаталога`.
    pub catalog_id: Option<String>,
    /// `Артикул`.
    pub sku: Option<String>,
    /// `Наименование`.
    pub name: Option<String>,
    /// `БазоваяЕдиница` (schema ≤ 2.05 form; 1C UNF also sends it next to `Единица`).
    pub base_unit: Option<Unit>,
    /// `Единица` (schema ≥ 2.08 form, or a plain short name).
    pub unit: Option<Unit>,
    /// `Коэффициент`.
    pub coefficient: Option<Decimal>,
    /// `ЦенаЗаЕдиницу`.
    pub price_per_unit: Option<Decimal>,
    /// `Цена` (1C UT writes this instead of `ЦенаЗаЕдиницу`).
    pub price: Option<Decimal>,
    /// `Количество`.
    pub quantity: Option<Decimal>,
    /// `Сумма`.
    pub sum: Option<Decimal>,
    /// `Скидки/Скидка`.
    pub discounts: Vec<Discount>,
    /// `СтавкиНалогов/СтавкаНалога`.
    pub tax_rates: Vec<TaxRate>,
    /// `Налоги/Налог`.
    pub taxes: Vec<Tax>,
    /// `ЗначенияРеквизитов` of the line.
    pub requisites: Vec<Requisite>,
    /// Children the model does not know.
    pub extra: Vec<Element>,
}

/// A unit of measure, in either form: `<БазоваяЕдиница Код=".." …>шт</БазоваяЕдиница>` or
/// `<Единица><Код>796</Код>…</Единица>` (or `<Единица>шт</Единица>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unit {
    /// `Ид` child (1C UT; may be padded in the file, trimmed here).
    pub id: Option<String>,
    /// `Код` attribute or child (OKEI code, `796`).
    pub code: Option<String>,
    /// `НаименованиеПолное` attribute or child.
    pub full_name: Option<String>,
    /// `МеждународноеСокращение` attribute or child.
    pub international: Option<String>,
    /// Short name: the text of `БазоваяЕдиница` / a childless `Единица`, or
    /// `НаименованиеКраткое`.
    pub short_name: Option<String>,
}

/// A named value (`<ЗначениеРеквизита>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requisite {
    /// `Наименование`.
    pub name: String,
    /// `Значение`; `None` when the element is missing.
    pub value: Option<String>,
}

/// A generic element tree, for everything the model does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Attributes (local names), in order.
    pub attributes: Vec<(String, String)>,
    /// Trimmed text content, when the element has any.
    pub text: Option<String>,
    /// Child elements, in order.
    pub children: Vec<Element>,
}

impl Document {
    /// The kind of business operation, from `ХозОперация`.
    pub fn operation_kind(&self) -> Operation {
        Operation::parse(self.operation.as_deref().unwrap_or(crate::tags::OP_ORDER))
    }

    /// The value of the first requisite whose name equals `name`, ignoring case and spaces.
    pub fn requisite(&self, name: &str) -> Option<&str> {
        find_requisite(&self.requisites, name)
    }

    /// Sets a requisite: replaces the value of an existing one (matched as in
    /// [`Document::requisite`]) or appends a new one.
    pub fn set_requisite(&mut self, name: &str, value: impl Into<String>) {
        let value = Some(value.into());
        match self
            .requisites
            .iter_mut()
            .find(|r| names_match(&r.name, name))
        {
            Some(r) => r.value = value,
            None => self.requisites.push(Requisite {
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// The buyer: the counterparty with role `Покупатель`, else the first one.
    pub fn buyer(&self) -> Option<&Counterparty> {
        self.counterparties
            .iter()
            .find(|c| c.role.as_deref() == Some(crate::tags::ROLE_BUYER))
            .or_else(|| self.counterparties.first())
    }

    /// Σ of the lines' `Сумма`, or `None` when there are no lines or a line has no sum.
    pub fn lines_total(&self) -> Option<Decimal> {
        if self.lines.is_empty() {
            return None;
        }
        self.lines.iter().map(|l| l.sum).sum()
    }

    /// Whether the lines add up to the document's `Сумма`; `None` when either is missing.
    pub fn sum_matches(&self) -> Option<bool> {
        Some(self.lines_total()? == self.sum?)
    }
}

impl Operation {
    /// Classifies a `ХозОперация` value (trimmed, case-insensitive).
    pub fn parse(value: &str) -> Self {
        use crate::tags as t;
        let v = value.trim();
        let eq = |s: &str| names_match(v, s);
        if eq(t::OP_ORDER) {
            Self::Order
        } else if eq(t::OP_CASH_PAYMENT) {
            Self::CashPayment
        } else if eq(t::OP_TRANSFER_PAYMENT) {
            Self::TransferPayment
        } else if eq(t::OP_CARD_PAYMENT) {
            Self::CardPayment
        } else if eq(t::OP_SHIPMENT) {
            Self::Shipment
        } else {
            Self::Other
        }
    }

    /// Whether this is one of the payment operations.
    pub fn is_payment(self) -> bool {
        matches!(
            self,
            Self::CashPayment | Self::TransferPayment | Self::CardPayment
        )
    }
}

impl Line {
    /// The unit code: `БазоваяЕдиница` `Код`, else `Единица/Код`, else the text of a childless
    /// `Единица`.
    pub fn unit_code(&self) -> Option<&str> {
        self.base_unit
            .as_ref()
            .and_then(|u| u.code.as_deref())
            .or_else(|| {
                let u = self.unit.as_ref()?;
                u.code.as_deref().or(u.short_name.as_deref())
            })
    }

    /// The unit price: `ЦенаЗаЕдиницу`, else `Цена`.
    pub fn unit_price(&self) -> Option<Decimal> {
        self.price_per_unit.or(self.price)
    }

    /// The value of the first line requisite named `name` (case- and space-insensitive).
    pub fn requisite(&self, name: &str) -> Option<&str> {
        find_requisite(&self.requisites, name)
    }

    /// Whether the line is a service (`ТипНоменклатуры` = `Услуга`); anything else is goods.
    pub fn is_service(&self) -> bool {
        self.requisite(crate::tags::REQ_ITEM_TYPE)
            .is_some_and(|v| names_match(v, crate::tags::ITEM_SERVICE))
    }
}

/// Compares two names ignoring case and all whitespace, as 1C and Bitrix spell requisite names
/// differently per direction (`Причина к Возврату` / `Причина к возврату`).
pub fn names_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let mut x = a.chars().filter(|c| !c.is_whitespace()).flat_map(lower);
    let mut y = b.chars().filter(|c| !c.is_whitespace()).flat_map(lower);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

/// `char::to_lowercase`, with the letters requisite names are made of (ASCII and the Russian
/// alphabet) mapped directly instead of through the Unicode tables: names are compared for
/// every requisite looked up, on every document read or written.
fn lower(c: char) -> Lower {
    match c {
        'A'..='Z' => Lower::One(Some(c.to_ascii_lowercase())),
        // А..Я → а..я, Ё → ё.
        '\u{0410}'..='\u{042F}' => Lower::One(char::from_u32(u32::from(c) + 0x20)),
        '\u{0401}' => Lower::One(Some('\u{0451}')),
        c if c.is_ascii() || ('\u{0430}'..='\u{044F}').contains(&c) || c == '\u{0451}' => {
            Lower::One(Some(c))
        }
        c => Lower::Other(c.to_lowercase()),
    }
}

/// The lowercase form of one character (see [`lower`]).
enum Lower {
    One(Option<char>),
    Other(std::char::ToLowercase),
}

impl Iterator for Lower {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            Self::One(c) => c.take(),
            Self::Other(l) => l.next(),
        }
    }
}

fn find_requisite<'a>(requisites: &'a [Requisite], name: &str) -> Option<&'a str> {
    requisites
        .iter()
        .find(|r| names_match(&r.name, name))
        .and_then(|r| r.value.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_ignores_case_and_spaces() {
        assert!(names_match("Причина к Возврату", "причина к возврату"));
        assert!(names_match("ПризнакВозврата", "Признак возврата"));
        assert!(!names_match("Статус заказа", "Статуса заказа ИД"));
        assert!(names_match("ЁЛКА Tree", "ёлка\ttree"));
    }

    #[test]
    fn lower_agrees_with_the_standard_library() {
        for c in (0..0x2000u32).filter_map(char::from_u32) {
            assert!(lower(c).eq(c.to_lowercase()), "{c:?}");
        }
    }

    #[test]
    fn lines_total_needs_every_sum() {
        let mut d = Document::default();
        assert_eq!(d.lines_total(), None);
        d.lines.push(Line {
            sum: Some(Decimal::new(1050, 2)),
            ..Line::default()
        });
        d.lines.push(Line {
            sum: Some(Decimal::new(5, 1)),
            ..Line::default()
        });
        assert_eq!(d.lines_total(), Some(Decimal::new(11, 0)));
        d.sum = Some(Decimal::new(1100, 2));
        assert_eq!(d.sum_matches(), Some(true));
        d.lines.push(Line::default());
        assert_eq!(d.lines_total(), None);
        assert_eq!(d.sum_matches(), None);
    }
}
