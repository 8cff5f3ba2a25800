//! The CommerceML 1C reads and writes, kept independent of the site's own code: a small
//! well-formedness-checking tree parser for `query` answers, and a writer that produces
//! documents the way 1C does (PROTOCOL.md §7.1, §8.2, §8.4, §8.6, §8.8).

use std::fmt::Write as _;

use commerceml::model::names_match;
use commerceml::tags as t;
use commerceml::value::{parse_bool, parse_decimal};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Namespace of 1C's 2.08/2.10 output (`urn:1C.ru:commerceml_210`).
pub const NAMESPACE_210: &str = "urn:1C.ru:commerceml_210";

/// A generic element: local name, trimmed text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (namespace prefix dropped).
    pub name: String,
    /// Attributes by local name.
    pub attributes: Vec<(String, String)>,
    /// Text content, trimmed.
    pub text: String,
    /// Child elements.
    pub children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn text_of(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|c| c.text.clone())
            .filter(|s| !s.is_empty())
    }
}

/// Parses a whole document into a tree; any well-formedness error is a protocol violation.
pub fn parse_tree(mode: &str, text: &str) -> Result<Element> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let bad = |detail: String| Error::violation(mode, format!("XML does not parse: {detail}"));
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| bad(format!("{e} at byte {pos}")))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err(bad(format!("second root element at byte {pos}")));
            }
            Event::Start(e) => {
                stack.push(element_from(mode, &e)?);
            }
            Event::Empty(e) => {
                let el = element_from(mode, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                // Invariant: quick-xml checks end names, so an End always has a matching Start.
                let Some(el) = stack.pop() else {
                    return Err(bad(format!("unexpected end tag at byte {pos}")));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(e) => {
                let s = e
                    .unescape()
                    .map_err(|err| bad(format!("{err} at byte {pos}")))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(bad(format!("text outside the root at byte {pos}"))),
                }
            }
            Event::CData(e) => {
                let raw = e.into_inner();
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&raw));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad("the document ends inside an element".into()));
    }
    let mut root = root.ok_or_else(|| bad("no root element".into()))?;
    trim_tree(&mut root);
    Ok(root)
}

fn element_from(mode: &str, e: &quick_xml::events::BytesStart<'_>) -> Result<Element> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| Error::violation(mode, format!("XML does not parse: {err}")))?;
        let value = a
            .unescape_value()
            .map_err(|err| Error::violation(mode, format!("XML does not parse: {err}")))?;
        attributes.push((
            String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

fn trim_tree(el: &mut Element) {
    let trimmed = el.text.trim();
    if trimmed.len() != el.text.len() {
        el.text = trimmed.to_owned();
    }
    for c in &mut el.children {
        trim_tree(c);
    }
}

/// One order line as 1C keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Product `Ид`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Quantity.
    pub quantity: Decimal,
    /// Unit price.
    pub price: Decimal,
    /// Line total.
    pub sum: Decimal,
    /// Unit code (`796`).
    pub unit_code: String,
    /// Whether the line is a service (delivery).
    pub service: bool,
}

/// One order as received in a `query` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedOrder {
    /// `Ид`.
    pub id: Option<String>,
    /// `Номер` (or `Ид` when the number is missing), trimmed: 1C's key for the site order.
    pub number: String,
    /// `Дата`.
    pub date: Option<String>,
    /// `Время`.
    pub time: Option<String>,
    /// `Валюта`.
    pub currency: Option<String>,
    /// `Сумма`.
    pub sum: Option<Decimal>,
    /// Buyer `Ид`.
    pub buyer_id: Option<String>,
    /// Buyer name.
    pub buyer_name: Option<String>,
    /// Site status code (`Статуса заказа ИД`).
    pub status_code: Option<String>,
    /// Site status as written (`Статус заказа`).
    pub status_name: Option<String>,
    /// `Заказ оплачен`.
    pub paid: bool,
    /// `Отменен`.
    pub cancelled: bool,
    /// Lines.
    pub lines: Vec<OrderLine>,
}

/// What a `query` answer held.
#[derive(Debug, Clone, Default)]
pub struct QueryAnswer {
    /// `ВерсияСхемы` of the root.
    pub schema_version: Option<String>,
    /// The order documents, in document order (duplicates kept).
    pub orders: Vec<ReceivedOrder>,
    /// Documents that are not orders (payments, shipments).
    pub other_documents: usize,
}

/// Extracts the orders from a parsed `query` answer.
pub fn read_query_answer(mode: &str, root: &Element) -> Result<QueryAnswer> {
    if root.name != t::ROOT {
        return Err(Error::violation(
            mode,
            format!("root element is <{}>, not CommerceML", root.name),
        ));
    }
    let mut answer = QueryAnswer {
        schema_version: root
            .attributes
            .iter()
            .find(|(k, _)| k == t::ATTR_SCHEMA_VERSION)
            .map(|(_, v)| v.clone()),
        ..QueryAnswer::default()
    };
    let mut documents: Vec<&Element> = Vec::new();
    for child in &root.children {
        if child.name == t::DOCUMENT {
            documents.push(child);
        } else if child.name == t::CONTAINER {
            documents.extend(child.children_named(t::DOCUMENT));
        }
    }
    for doc in documents {
        let is_order = doc
            .text_of(t::OPERATION)
            .is_none_or(|op| names_match(&op, t::OP_ORDER));
        if !is_order {
            answer.other_documents += 1;
            continue;
        }
        answer.orders.push(read_order(mode, doc)?);
    }
    Ok(answer)
}

fn requisites(el: &Element) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |r: &Element| {
        if let Some(name) = r.text_of(t::NAME) {
            out.push((name, r.text_of(t::VALUE).unwrap_or_default()));
        }
    };
    for group in el.children_named(t::REQUISITES) {
        group.children_named(t::REQUISITE).for_each(&mut push);
    }
    el.children_named(t::REQUISITE).for_each(&mut push);
    out
}

fn requisite<'a>(reqs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    reqs.iter()
        .find(|(n, _)| names_match(n, name))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn decimal(mode: &str, what: &str, raw: Option<String>) -> Result<Option<Decimal>> {
    match raw {
        None => Ok(None),
        Some(r) => parse_decimal(&r).map_err(|e| Error::violation(mode, format!("{what}: {e}"))),
    }
}

fn flag(mode: &str, raw: Option<&str>) -> Result<bool> {
    match raw {
        None => Ok(false),
        Some(r) => parse_bool(r)
            .map(|b| b.unwrap_or(false))
            .map_err(|e| Error::violation(mode, e)),
    }
}

fn read_order(mode: &str, doc: &Element) -> Result<ReceivedOrder> {
    let id = doc.text_of(t::ID);
    let number = doc
        .text_of(t::NUMBER)
        .or_else(|| id.clone())
        .ok_or_else(|| Error::violation(mode, "an order document has neither Номер nor Ид"))?;
    let reqs = requisites(doc);
    let buyer = doc
        .child(t::COUNTERPARTIES)
        .and_then(|c| c.child(t::COUNTERPARTY));
    let mut lines = Vec::new();
    if let Some(goods) = doc.child(t::LINES) {
        for line in goods.children_named(t::LINE) {
            let line_reqs = requisites(line);
            let unit_code = line
                .child(t::BASE_UNIT)
                .and_then(|u| {
                    u.attributes
                        .iter()
                        .find(|(k, _)| k == t::UNIT_CODE)
                        .map(|(_, v)| v.trim().to_owned())
                })
                .or_else(|| line.child(t::UNIT).and_then(|u| u.text_of(t::UNIT_CODE)))
                .unwrap_or_else(|| t::UNIT_PIECE_CODE.to_owned());
            let quantity = decimal(mode, "line quantity", line.text_of(t::QUANTITY))?;
            let price = decimal(
                mode,
                "line price",
                line.text_of(t::PRICE_PER_UNIT)
                    .or_else(|| line.text_of(t::PRICE)),
            )?;
            let sum = decimal(mode, "line sum", line.text_of(t::SUM))?;
            lines.push(OrderLine {
                id: line.text_of(t::ID).unwrap_or_default(),
                name: line.text_of(t::NAME).unwrap_or_default(),
                quantity: quantity.unwrap_or(Decimal::ONE),
                price: price.unwrap_or_default(),
                sum: sum.unwrap_or_default(),
                unit_code,
                service: requisite(&line_reqs, t::REQ_ITEM_TYPE)
                    .is_some_and(|v| names_match(v, t::ITEM_SERVICE)),
            });
        }
    }
    Ok(ReceivedOrder {
        id,
        number,
        date: doc.text_of(t::DATE),
        time: doc.text_of(t::TIME),
        currency: doc.text_of(t::CURRENCY),
        sum: decimal(mode, "order sum", doc.text_of(t::SUM))?,
        buyer_id: buyer.and_then(|b| b.text_of(t::ID)),
        buyer_name: buyer.and_then(|b| {
            b.text_of(t::NAME)
                .or_else(|| b.text_of(t::FULL_NAME))
                .or_else(|| b.text_of(t::OFFICIAL_NAME))
        }),
        status_code: requisite(&reqs, t::REQ_STATUS_ID).map(str::to_owned),
        status_name: requisite(&reqs, t::REQ_STATUS).map(str::to_owned),
        paid: flag(mode, requisite(&reqs, t::REQ_ORDER_PAID))?,
        cancelled: flag(mode, requisite(&reqs, t::REQ_CANCELLED))?,
        lines,
    })
}

/// The CommerceML form 1C writes its upload in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadSchema {
    /// 2.x: documents directly under the root, namespace `urn:1C.ru:commerceml_210`.
    V2(String),
    /// 3.x: one `Контейнер` per order, namespace `urn:1C.ru:commerceml_3`.
    V3(String),
}

impl UploadSchema {
    /// The form for a negotiated version (`None`: legacy protocol, 2.08 files).
    pub fn for_version(version: Option<&str>) -> Self {
        let v = version.unwrap_or("2.08");
        let major3 = commerceml::SchemaVersion::parse(v).is_some_and(|s| s.at_least("3"));
        if major3 {
            Self::V3(v.to_owned())
        } else {
            Self::V2(v.to_owned())
        }
    }
}

/// One order document as 1C sends it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingDocument {
    /// The site's `Ид`, echoed.
    pub site_id: Option<String>,
    /// The site's `Номер`, echoed.
    pub number: String,
    /// 1C's own number (written right-padded with blanks to 11 characters).
    pub number_1c: String,
    /// The site's order date.
    pub date: String,
    /// 1C document date.
    pub date_1c: String,
    /// 1C document time.
    pub time_1c: String,
    /// `НомерВерсии`.
    pub version: String,
    /// Currency.
    pub currency: String,
    /// Total.
    pub sum: Decimal,
    /// Buyer `Ид` and name.
    pub buyer_id: String,
    /// Buyer name.
    pub buyer_name: String,
    /// `Комментарий`.
    pub comment: String,
    /// `Проведен`.
    pub posted: bool,
    /// `Отменен`.
    pub cancelled: bool,
    /// `ПометкаУдаления` (direct child and trait).
    pub deletion_mark: bool,
    /// `Отгружен`.
    pub shipped: bool,
    /// `Статуса заказа ИД`.
    pub status_code: Option<String>,
    /// `Статус заказа`.
    pub status_name: Option<String>,
    /// `Номер оплаты по 1С`, `Дата оплаты по 1С`.
    pub payment: Option<(String, String)>,
    /// `Номер отгрузки по 1С`, `Дата отгрузки по 1С`.
    pub shipment: Option<(String, String)>,
    /// Lines.
    pub lines: Vec<OrderLine>,
}

/// Writes documents as 1C does (UTF-8 text; the caller encodes).
pub fn write_upload(
    schema: &UploadSchema,
    generated_at: &str,
    docs: &[OutgoingDocument],
) -> String {
    let (ns, version, containers) = match schema {
        UploadSchema::V2(v) => (NAMESPACE_210, v.as_str(), false),
        UploadSchema::V3(v) => (t::NAMESPACE_3, v.as_str(), true),
    };
    let mut w = Xml::default();
    w.raw(&format!(
        "<{root} xmlns=\"{ns}\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" {sv}=\"{version}\" \
         {ga}=\"{generated_at}\">\n",
        root = t::ROOT,
        sv = t::ATTR_SCHEMA_VERSION,
        ga = t::ATTR_GENERATED_AT,
        version = escape(version),
        generated_at = escape(generated_at),
    ));
    for doc in docs {
        if containers {
            w.open(t::CONTAINER);
        }
        write_document(&mut w, doc);
        if containers {
            w.close(t::CONTAINER);
        }
    }
    w.raw(&format!("</{}>\n", t::ROOT));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&w.out);
    out
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn write_document(w: &mut Xml, d: &OutgoingDocument) {
    w.open(t::DOCUMENT);
    w.leaf(t::ID, d.site_id.as_deref().unwrap_or(&d.number));
    w.leaf(t::VERSION, &d.version);
    w.leaf(t::DELETION_MARK, bool_str(d.deletion_mark));
    w.leaf(t::NUMBER, &d.number);
    w.leaf(t::NUMBER_1C, &format!("{:<11}", d.number_1c));
    w.leaf(t::DATE, &d.date);
    w.leaf(t::DATE_1C, &d.date_1c);
    w.leaf(t::TIME, &d.time_1c);
    w.leaf(t::OPERATION, t::OP_ORDER);
    w.open(t::COUNTERPARTIES);
    w.open(t::COUNTERPARTY);
    w.leaf(t::ID, &d.buyer_id);
    w.leaf(t::DELETION_MARK, "false");
    w.leaf(t::NAME, &d.buyer_name);
    w.leaf(t::FULL_NAME, &d.buyer_name);
    w.leaf(t::ROLE, t::ROLE_BUYER);
    w.empty(t::INN);
    w.empty(t::KPP);
    w.empty(t::OKPO);
    w.close(t::COUNTERPARTY);
    w.close(t::COUNTERPARTIES);
    w.leaf(t::CURRENCY, &d.currency);
    w.leaf(t::RATE, "1");
    w.leaf(t::SUM, &d.sum.normalize().to_string());
    w.leaf(t::ROLE, t::ROLE_SELLER);
    w.leaf(t::COMMENT, &d.comment);
    w.open(t::REQUISITES);
    w.requisite(t::REQ_POSTED, bool_str(d.posted));
    w.requisite(t::REQ_CANCELLED, bool_str(d.cancelled));
    w.requisite(t::REQ_SHIPPED, bool_str(d.shipped));
    if d.deletion_mark {
        w.requisite(t::REQ_DELETION_MARK, "true");
    }
    if let Some(name) = &d.status_name {
        w.requisite(t::REQ_STATUS, name);
    }
    if let Some(code) = &d.status_code {
        w.requisite(t::REQ_STATUS_ID, code);
    }
    if let Some((number, date)) = &d.payment {
        w.requisite(t::REQ_PAYMENT_NUMBER_1C, number);
        w.requisite(t::REQ_PAYMENT_DATE_1C, date);
    }
    if let Some((number, date)) = &d.shipment {
        w.requisite(t::REQ_SHIPMENT_NUMBER_1C, number);
        w.requisite(t::REQ_SHIPMENT_DATE_1C, date);
    }
    w.close(t::REQUISITES);
    w.open(t::LINES);
    for line in &d.lines {
        w.open(t::LINE);
        w.leaf(t::ID, &line.id);
        w.leaf(t::NAME, &line.name);
        w.open(t::REQUISITES);
        let kind = if line.service {
            t::ITEM_SERVICE
        } else {
            t::ITEM_GOODS
        };
        w.requisite(t::REQ_ITEM_KIND, kind);
        w.requisite(t::REQ_ITEM_TYPE, kind);
        w.close(t::REQUISITES);
        w.open(t::UNIT);
        // 1C pads the unit `Ид` with a blank and the full name to 100 characters (§8.6).
        w.leaf(t::ID, &format!("{} ", line.unit_code));
        w.leaf(t::UNIT_SHORT_NAME, t::UNIT_PIECE_SHORT);
        w.leaf(t::UNIT_CODE, &line.unit_code);
        w.leaf(t::UNIT_FULL_NAME, &format!("{:<100}", t::UNIT_PIECE_FULL));
        w.close(t::UNIT);
        w.leaf(t::COEFFICIENT, "1");
        w.leaf(t::QUANTITY, &line.quantity.normalize().to_string());
        w.leaf(t::PRICE, &line.price.normalize().to_string());
        w.leaf(t::SUM, &line.sum.normalize().to_string());
        w.close(t::LINE);
    }
    w.close(t::LINES);
    w.close(t::DOCUMENT);
}

/// A tiny indenting XML text builder with tabs, as 1C writes.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        for _ in 0..=self.depth {
            self.out.push('\t');
        }
    }
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }
    fn open(&mut self, name: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>");
        self.depth += 1;
    }
    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        let _ = writeln!(self.out, "</{name}>");
    }
    fn leaf(&mut self, name: &str, value: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>{}</{name}>", escape(value));
    }
    fn empty(&mut self, name: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}/>");
    }
    fn requisite(&mut self, name: &str, value: &str) {
        self.open(t::REQUISITE);
        self.leaf(t::NAME, name);
        self.leaf(t::VALUE, value);
        self.close(t::REQUISITE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &[u8] = include_bytes!("../tests/data/bitrix-query-response-full.xml");

    #[test]
    fn reads_the_bitrix_query_fixture() {
        let text = encoding_rs::WINDOWS_1251.decode(FULL).0;
        let root = parse_tree("query", &text).unwrap();
        let answer = read_query_answer("query", &root).unwrap();
        assert_eq!(answer.schema_version.as_deref(), Some("2.05"));
        let numbers: Vec<_> = answer.orders.iter().map(|o| o.number.as_str()).collect();
        assert_eq!(numbers, ["132", "133"]);
        let first = &answer.orders[0];
        assert_eq!(first.status_code.as_deref(), Some("N"));
        assert_eq!(first.sum, Some(Decimal::new(2317400, 4)));
        assert_eq!(first.lines.len(), 1);
        assert_eq!(first.lines[0].unit_code, "796");
        assert!(!first.paid);
    }

    #[test]
    fn malformed_xml_is_a_violation() {
        for bad in ["<a><b></a>", "<a>", "<a/><b/>", "text<a/>", "<a x=1/>", ""] {
            let e = parse_tree("query", bad).unwrap_err();
            assert!(e.is_violation(), "{bad:?}: {e}");
        }
    }

    #[test]
    fn written_upload_reads_back() {
        let doc = OutgoingDocument {
            site_id: Some("7".into()),
            number: "7".into(),
            number_1c: "EM-000001".into(),
            date: "2024-01-02".into(),
            date_1c: "2024-01-03".into(),
            time_1c: "10:00:00".into(),
            version: "AAAAAQ==".into(),
            currency: "RUB".into(),
            sum: Decimal::new(15050, 2),
            buyer_id: "b1".into(),
            buyer_name: "A & B <co>".into(),
            comment: "c".into(),
            posted: true,
            cancelled: false,
            deletion_mark: false,
            shipped: false,
            status_code: Some("P".into()),
            status_name: Some("S".into()),
            payment: Some(("PAY-1".into(), "2024-01-03T10:00:00".into())),
            shipment: None,
            lines: vec![OrderLine {
                id: "g".into(),
                name: "n".into(),
                quantity: Decimal::ONE,
                price: Decimal::new(15050, 2),
                sum: Decimal::new(15050, 2),
                unit_code: "796".into(),
                service: false,
            }],
        };
        for schema in [
            UploadSchema::for_version(Some("2.08")),
            UploadSchema::for_version(Some("3.1")),
        ] {
            let xml = write_upload(&schema, "2024-01-03T10:00:00", std::slice::from_ref(&doc));
            assert!(xml.contains(&format!("<{}>EM-000001  </{}>", t::NUMBER_1C, t::NUMBER_1C)));
            assert!(xml.contains(&format!("<{}>796 </{}>", t::ID, t::ID)));
            let root = parse_tree("t", &xml).unwrap();
            let answer = read_query_answer("t", &root).unwrap();
            assert_eq!(answer.orders.len(), 1);
            let o = &answer.orders[0];
            assert_eq!(o.number, "7");
            assert_eq!(o.buyer_name.as_deref(), Some("A & B <co>"));
            assert_eq!(o.status_code.as_deref(), Some("P"));
            assert_eq!(o.lines[0].price, Decimal::new(15050, 2));
            let ns = match schema {
                UploadSchema::V2(_) => NAMESPACE_210,
                UploadSchema::V3(_) => t::NAMESPACE_3,
            };
            assert!(xml.contains(ns));
        }
    }
}
