//! The writer on its own: bytes, declaration, escaping, references and the structure per schema
//! version, checked on the output text.

use std::io::{self, Write};
use std::str::FromStr;

use commerceml::tags as t;
use commerceml::{
    Address, AddressField, Contact, Container, Counterparty, Document, Element, Error, Item, Line,
    OutputEncoding, Requisite, Root, SchemaVersion, Unit, WriteOptions, Writer,
};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn v(s: &str) -> SchemaVersion {
    SchemaVersion::parse(s).unwrap()
}

fn options(schema: &str, encoding: OutputEncoding) -> WriteOptions {
    WriteOptions::new(v(schema), encoding).generated_at("2021-02-12T17:04:36")
}

/// An order as Bitrix builds it: one line, a buyer with contacts, order requisites.
fn order(id: &str) -> Document {
    Document {
        id: Some(id.into()),
        number: Some(id.into()),
        number_1c: Some("ТДЦУ-000001".into()),
        date: Some("2021-02-11".into()),
        time: Some("18:45:21".into()),
        operation: Some(t::OP_ORDER.into()),
        role: Some(t::ROLE_SELLER.into()),
        currency: Some("руб".into()),
        rate: Some(dec("1")),
        sum: Some(dec("231.7400")),
        version: Some("7".into()),
        comment: Some(String::new()),
        counterparties: vec![Counterparty {
            id: Some("38#catalog_exchange#".into()),
            name: Some("Иванов Иван".into()),
            full_name: Some("Иванов Иван".into()),
            registration_address: Some(Address {
                presentation: Some("Москва, Ленина 1".into()),
                fields: vec![AddressField {
                    kind: t::ADDR_CITY.into(),
                    value: "Москва".into(),
                }],
                extra: vec![],
            }),
            contacts: vec![
                Contact {
                    kind: t::CONTACT_PHONE.into(),
                    value: "+7 900 000-00-00".into(),
                    comment: None,
                },
                Contact {
                    kind: t::CONTACT_EMAIL_OLD.into(),
                    value: "buyer@example.com".into(),
                    comment: None,
                },
            ],
            role: Some(t::ROLE_BUYER.into()),
            ..Counterparty::default()
        }],
        lines: vec![Line {
            id: Some("910e89e5-205e-4d95-872a-0a0255c42f02".into()),
            catalog_id: Some("42475bb5-958f-40dc-a99f-9ad996a27af1".into()),
            name: Some("Зубная щётка".into()),
            base_unit: Some(Unit {
                code: Some(t::UNIT_PIECE_CODE.into()),
                full_name: Some(t::UNIT_PIECE_FULL.into()),
                international: Some(t::UNIT_PIECE_INTERNATIONAL.into()),
                short_name: Some(t::UNIT_PIECE_SHORT.into()),
                ..Unit::default()
            }),
            price_per_unit: Some(dec("231.7400")),
            quantity: Some(dec("1.0000")),
            sum: Some(dec("231.74")),
            requisites: vec![Requisite {
                name: t::REQ_ITEM_TYPE.into(),
                value: Some(t::ITEM_GOODS.into()),
            }],
            ..Line::default()
        }],
        requisites: vec![
            Requisite {
                name: t::REQ_STATUS.into(),
                value: Some("[N] Принят, ожидается оплата".into()),
            },
            Requisite {
                name: t::REQ_STATUS_ID.into(),
                value: Some("N".into()),
            },
        ],
        ..Document::default()
    }
}

fn payment(order_id: &str) -> Document {
    Document {
        id: Some(format!("{order_id}-p")),
        number: Some(format!("{order_id}-p")),
        date: Some("2021-02-11".into()),
        operation: Some(t::OP_CASH_PAYMENT.into()),
        role: Some(t::ROLE_SELLER.into()),
        currency: Some("руб".into()),
        rate: Some(dec("1")),
        sum: Some(dec("231.74")),
        basis: Some(order_id.into()),
        ..Document::default()
    }
}

fn write_items(options: WriteOptions, items: &[Item]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), options).unwrap();
    for item in items {
        w.write_item(item).unwrap();
    }
    w.finish().unwrap()
}

fn doc(d: Document) -> Item {
    Item::Document(Box::new(d))
}

/// Decodes output according to its own declaration, checking that a BOM appears only with
/// UTF-8 and that the bytes are valid in the declared encoding.
fn decode(bytes: &[u8]) -> String {
    let (bom, rest) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let head = std::str::from_utf8(&rest[..rest.iter().position(|&b| b == b'>').unwrap() + 1])
        .unwrap()
        .to_owned();
    if head.contains("encoding=\"UTF-8\"") {
        assert!(bom, "UTF-8 output must start with a BOM");
        std::str::from_utf8(rest).expect("valid UTF-8").to_owned()
    } else {
        assert!(head.contains("encoding=\"windows-1251\""), "{head}");
        assert!(!bom, "windows-1251 output must not have a BOM");
        let (text, had_errors) = encoding_rs::WINDOWS_1251.decode_without_bom_handling(rest);
        assert!(!had_errors);
        text.into_owned()
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in output"))
}

#[test]
fn windows_1251_output_declares_it_and_has_no_bom() {
    let bytes = write_items(
        options("2.05", OutputEncoding::Windows1251),
        &[doc(order("132"))],
    );
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n"));
    // The root name in windows-1251 bytes, not UTF-8.
    let (root_1251, _, _) = encoding_rs::WINDOWS_1251.encode(t::ROOT);
    assert!(bytes
        .windows(root_1251.len())
        .any(|w| w == root_1251.as_ref()));
    assert!(!bytes
        .windows(t::ROOT.len())
        .any(|w| w == t::ROOT.as_bytes()));
    let text = decode(&bytes);
    assert!(text.contains("<Наименование>Зубная щётка</Наименование>"));
}

#[test]
fn utf8_output_has_a_bom_and_declares_utf8() {
    let bytes = write_items(options("2.08", OutputEncoding::Utf8), &[doc(order("132"))]);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let text = decode(&bytes);
    assert!(text.contains("<Наименование>Зубная щётка</Наименование>"));
}

#[test]
fn characters_windows_1251_lacks_become_references() {
    let mut d = order("1");
    d.comment = Some("Итого 100 ₽ 😀".into());
    d.lines[0].base_unit.as_mut().unwrap().full_name = Some("Рубль ₽".into());
    let root = Root {
        attributes: vec![("Ид".into(), "₽1".into())],
        ..Root::default()
    };
    let write = |encoding| {
        let mut w = Writer::with_root(Vec::new(), options("2.05", encoding), &root).unwrap();
        w.write_document(&d).unwrap();
        decode(&w.finish().unwrap())
    };
    let text = write(OutputEncoding::Windows1251);
    assert!(text.contains("<Комментарий>Итого 100 &#8381; &#128512;</Комментарий>"));
    assert!(text.contains("НаименованиеПолное=\"Рубль &#8381;\""));
    assert!(text.contains("Ид=\"&#8381;1\""));
    let utf8 = write(OutputEncoding::Utf8);
    assert!(utf8.contains("<Комментарий>Итого 100 ₽ 😀</Комментарий>"));
    assert!(utf8.contains("НаименованиеПолное=\"Рубль ₽\""));
}

#[test]
fn markup_is_escaped_once() {
    let mut d = order("1");
    // What a reader gives for Bitrix's double-escaped `&amp;quot;`: a literal `&quot;`.
    d.lines[0].name = Some("Телевизор &quot;JVC&quot; <32\"> & Co".into());
    d.lines[0].base_unit.as_mut().unwrap().full_name = Some("a\"b<c>&d\te\nf".into());
    d.comment = Some("line1\r\nline2".into());
    let text = decode(&write_items(
        options("2.05", OutputEncoding::Windows1251),
        &[doc(d)],
    ));
    assert!(text.contains(
        "<Наименование>Телевизор &amp;quot;JVC&amp;quot; &lt;32\"&gt; &amp; Co</Наименование>"
    ));
    assert!(text.contains("НаименованиеПолное=\"a&quot;b&lt;c&gt;&amp;d&#9;e&#10;f\""));
    assert!(text.contains("<Комментарий>line1&#13;\nline2</Комментарий>"));
}

#[test]
fn control_characters_and_unencodable_names_are_refused() {
    let mut d = order("1");
    d.comment = Some("bell \u{7}".into());
    let mut w = Writer::new(Vec::new(), options("2.05", OutputEncoding::Utf8)).unwrap();
    assert!(matches!(w.write_document(&d), Err(Error::Unencodable(_))));

    let e = Element {
        name: "Знак₽".into(),
        ..Element::default()
    };
    let mut w = Writer::new(Vec::new(), options("2.05", OutputEncoding::Windows1251)).unwrap();
    assert!(matches!(
        w.write_item(&Item::Other(e.clone())),
        Err(Error::Unencodable(_))
    ));
    // The same name is fine in UTF-8.
    let mut w = Writer::new(Vec::new(), options("2.05", OutputEncoding::Utf8)).unwrap();
    w.write_item(&Item::Other(e)).unwrap();
    assert!(decode(&w.finish().unwrap()).contains("<Знак₽/>"));
}

#[test]
fn empty_answer_has_the_shape_of_bitrix_query_response_empty() {
    let ours = Writer::new(Vec::new(), options("2.05", OutputEncoding::Windows1251))
        .unwrap()
        .finish()
        .unwrap();
    let fixture = std::fs::read(
        "../../../shared/fixtures/dobromyslov__commerceml-parser/bitrix-query-response-empty.xml",
    )
    .unwrap();
    // Same declaration line, byte for byte.
    let first_line = |b: &[u8]| b[..b.iter().position(|&c| c == b'\n').unwrap()].to_vec();
    assert_eq!(first_line(&ours), first_line(&fixture));
    let (root_ours, children_ours) = root_and_children(&decode(&ours));
    let (root_fixture, children_fixture) = root_and_children(&decode(&fixture));
    assert_eq!(children_ours, 0);
    assert_eq!(children_fixture, 0);
    assert_eq!(root_ours, root_fixture);
}

/// The root's attributes (in order) and the number of its child elements, via quick-xml.
fn root_and_children(text: &str) -> (Vec<(String, String)>, usize) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut attributes = Vec::new();
    let mut depth = 0;
    let mut children = 0;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if depth == 0 => {
                assert_eq!(std::str::from_utf8(e.name().as_ref()).unwrap(), t::ROOT);
                for a in e.attributes() {
                    let a = a.unwrap();
                    let key = std::str::from_utf8(a.key.as_ref()).unwrap().to_owned();
                    // The date of generation naturally differs.
                    let value = if key == t::ATTR_GENERATED_AT {
                        String::new()
                    } else {
                        a.unescape_value().unwrap().into_owned()
                    };
                    attributes.push((key, value));
                }
                depth = 1;
            }
            Event::Start(_) => {
                if depth == 1 {
                    children += 1;
                }
                depth += 1;
            }
            Event::Empty(_) if depth == 1 => children += 1,
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    (attributes, children)
}

#[test]
fn schema_2_05_uses_base_unit_attributes_and_old_contact_names() {
    let text = decode(&write_items(
        options("2.05", OutputEncoding::Windows1251),
        &[doc(order("132"))],
    ));
    assert!(text.contains(
        "<БазоваяЕдиница Код=\"796\" НаименованиеПолное=\"Штука\" МеждународноеСокращение=\"PCE\">шт</БазоваяЕдиница>"
    ));
    assert!(!text.contains("<Единица>"));
    assert!(!text.contains("<Коэффициент>"));
    assert!(!text.contains("<НомерВерсии>"));
    assert!(!text.contains("<Номер1С>"));
    assert!(text.contains("<Тип>ТелефонРабочий</Тип>"));
    assert!(text.contains("<Тип>Почта</Тип>"));
    assert!(!text.contains("Контейнер"));
    assert!(text.contains("ВерсияСхемы=\"2.05\""));
}

#[test]
fn schema_2_08_uses_unit_element_coefficient_versions_and_new_contact_names() {
    for schema in ["2.08", "2.10"] {
        let text = decode(&write_items(
            options(schema, OutputEncoding::Utf8),
            &[doc(order("132"))],
        ));
        assert!(
            text.contains(
                "<Единица>\n          <Код>796</Код>\n          <НаименованиеПолное>Штука</НаименованиеПолное>"
            ),
            "{text}"
        );
        assert!(text.contains("<Коэффициент>1</Коэффициент>"));
        assert!(!text.contains("БазоваяЕдиница"));
        assert!(text.contains("<НомерВерсии>7</НомерВерсии>"));
        assert!(text.contains("<Номер1С>ТДЦУ-000001</Номер1С>"));
        // After Сумма, as Bitrix writes them.
        assert!(position(&text, "<Сумма>231.7400") < position(&text, "<НомерВерсии>"));
        assert!(text.contains("<Тип>Телефон рабочий</Тип>"));
        assert!(text.contains("<Тип>Электронная почта</Тип>"));
        assert!(!text.contains("Контейнер"));
    }
}

#[test]
fn short_unit_forms_are_converted_both_ways() {
    // 1C UNF: an empty БазоваяЕдиница with attributes next to a plain-text Единица.
    let mut d = order("1");
    d.lines[0].base_unit = Some(Unit {
        code: Some("796".into()),
        short_name: Some(String::new()),
        ..Unit::default()
    });
    d.lines[0].unit = Some(Unit {
        short_name: Some("шт".into()),
        ..Unit::default()
    });
    d.lines[0].coefficient = Some(dec("10"));
    let old = decode(&write_items(
        options("2.05", OutputEncoding::Utf8),
        &[doc(d.clone())],
    ));
    assert!(old.contains("<БазоваяЕдиница Код=\"796\">шт</БазоваяЕдиница>"));
    assert!(old.contains("<Коэффициент>10</Коэффициент>"));
    let new = decode(&write_items(
        options("2.08", OutputEncoding::Utf8),
        &[doc(d)],
    ));
    assert_eq!(count(&new, "<Единица>"), 1);
    assert!(new.contains("<Код>796</Код>"));
    assert!(new.contains("<НаименованиеКраткое>шт</НаименованиеКраткое>"));
    assert!(new.contains("<Коэффициент>10</Коэффициент>"));
}

#[test]
fn schema_3_1_puts_every_order_in_a_container() {
    let o = order("1");
    let p = payment("1");
    let mut w = Writer::new(Vec::new(), options("3.1", OutputEncoding::Utf8)).unwrap();
    w.write_order(&[o.clone(), p.clone()]).unwrap();
    w.write_item(&doc(order("2"))).unwrap();
    let text = decode(&w.finish().unwrap());
    assert_eq!(count(&text, "<Контейнер>"), 2);
    assert_eq!(count(&text, "<Документ>"), 3);
    // The payment is in the first container, with its order.
    let first = &text[position(&text, "<Контейнер>")..position(&text, "</Контейнер>")];
    assert!(first.contains("<ХозОперация>Выплата наличных денег</ХозОперация>"));
    assert!(first.contains("<Основание>1</Основание>"));
    assert!(text.contains("ВерсияСхемы=\"3.1\""));

    // Below 3 the same calls write bare documents, and a container is flattened.
    let mut w = Writer::new(Vec::new(), options("2.10", OutputEncoding::Utf8)).unwrap();
    w.write_order(&[o.clone(), p.clone()]).unwrap();
    w.write_item(&Item::Container(Container {
        id: Some("c1".into()),
        documents: vec![order("2"), payment("2")],
        extra: vec![],
    }))
    .unwrap();
    let text = decode(&w.finish().unwrap());
    assert_eq!(count(&text, "Контейнер"), 0);
    assert_eq!(count(&text, "<Документ>"), 4);
    assert!(!text.contains("c1"));
}

#[test]
fn document_elements_follow_bitrix_order() {
    let text = decode(&write_items(
        options("2.08", OutputEncoding::Utf8),
        &[doc(order("132"))],
    ));
    let doc_start = position(&text, "<Документ>");
    let body = &text[doc_start..];
    let order = [
        "<Ид>132",
        "<Номер>132",
        "<Дата>",
        "<ХозОперация>",
        "<Роль>Продавец",
        "<Валюта>",
        "<Курс>",
        "<Сумма>231.7400",
        "<НомерВерсии>",
        "<Номер1С>",
        "<Контрагенты>",
        "<Время>",
        "<Комментарий/>",
        "<Товары>",
        "</Товары>\n    <ЗначенияРеквизитов>",
    ];
    let positions: Vec<usize> = order.iter().map(|n| position(body, n)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Line: Ид, ИдКаталога, Наименование, unit, ЦенаЗаЕдиницу, Количество, Сумма, requisites.
    let line = &body[position(body, "<Товар>")..];
    let order = [
        "<Ид>910e",
        "<ИдКаталога>",
        "<Наименование>",
        "<Единица>",
        "<Коэффициент>",
        "<ЦенаЗаЕдиницу>",
        "<Количество>",
        "<Сумма>",
        "<ЗначенияРеквизитов>",
    ];
    let positions: Vec<usize> = order.iter().map(|n| position(line, n)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // The buyer's Роль is its last child.
    let buyer = &body[position(body, "<Контрагент>")..position(body, "</Контрагент>")];
    assert!(buyer.trim_end().ends_with("<Роль>Покупатель</Роль>"));
}

#[test]
fn decimals_keep_plain_notation_and_scale() {
    let mut d = order("1");
    d.sum = Some(dec("14380.5800"));
    d.lines[0].quantity = Some(Decimal::from_scientific("1e-7").unwrap());
    d.lines[0].sum = Some(Decimal::from_scientific("1.5e6").unwrap());
    d.rate = Some(dec("-0.50"));
    let text = decode(&write_items(
        options("2.05", OutputEncoding::Utf8),
        &[doc(d)],
    ));
    assert!(text.contains("<Сумма>14380.5800</Сумма>"));
    assert!(text.contains("<Количество>0.0000001</Количество>"));
    assert!(text.contains("<Сумма>1500000</Сумма>"));
    assert!(text.contains("<Курс>-0.50</Курс>"));
}

#[test]
fn requisites_are_always_wrapped_and_unknown_elements_written_back() {
    let mut d = order("1");
    d.extra.push(Element {
        name: "ИнформацияОЧеках".into(),
        attributes: vec![("Тип".into(), "a&b".into())],
        text: None,
        children: vec![Element {
            name: "ИнформацияОЧеке".into(),
            attributes: vec![],
            text: Some("x < y".into()),
            children: vec![],
        }],
    });
    d.requisites.push(Requisite {
        name: "Без значения".into(),
        value: None,
    });
    let text = decode(&write_items(
        options("2.05", OutputEncoding::Utf8),
        &[doc(d)],
    ));
    assert_eq!(count(&text, "<ЗначенияРеквизитов>"), 2); // order + line
    assert!(text.contains(
        "<ИнформацияОЧеках Тип=\"a&amp;b\">\n      <ИнформацияОЧеке>x &lt; y</ИнформацияОЧеке>\n    </ИнформацияОЧеках>"
    ), "{text}");
    assert!(text.contains(
        "<ЗначениеРеквизита>\n        <Наименование>Без значения</Наименование>\n      </ЗначениеРеквизита>"
    ));
}

#[test]
fn root_level_counterparties_share_one_wrapper() {
    let c = Counterparty {
        id: Some("c1".into()),
        official_name: Some("ООО Ромашка".into()),
        inn: Some(String::new()),
        ..Counterparty::default()
    };
    let text = decode(&write_items(
        options("2.10", OutputEncoding::Utf8),
        &[
            Item::Counterparty(Box::new(c.clone())),
            Item::Counterparty(Box::new(c)),
            doc(order("1")),
        ],
    ));
    assert_eq!(count(&text, "<Контрагенты>"), 2); // root wrapper + the order's
    let root_wrapper = &text[position(&text, "<Контрагенты>")..position(&text, "<Документ>")];
    assert_eq!(count(root_wrapper, "<Контрагент>"), 2);
    assert!(root_wrapper.contains("</Контрагенты>"));
    assert!(root_wrapper.contains("<ИНН/>"));
}

#[test]
fn root_attributes_are_carried_over() {
    let root = Root {
        schema_version: Some(v("3.1")),
        generated_at: Some("2017-08-24T13:51:03".into()),
        namespace: Some(t::NAMESPACE_3.into()),
        attributes: vec![
            ("xmlns:xs".into(), "http://www.w3.org/2001/XMLSchema".into()),
            ("Ид".into(), "1".into()),
            (t::ATTR_SCHEMA_VERSION.into(), "3.1".into()),
        ],
    };
    let opts = WriteOptions::new(v("3.1"), OutputEncoding::Utf8);
    let text = decode(
        &Writer::with_root(Vec::new(), opts, &root)
            .unwrap()
            .finish()
            .unwrap(),
    );
    assert!(text.contains("xmlns=\"urn:1C.ru:commerceml_3\""));
    assert!(text.contains("ДатаФормирования=\"2017-08-24T13:51:03\""));
    assert!(text.contains("xmlns:xs=\"http://www.w3.org/2001/XMLSchema\""));
    assert!(text.contains("Ид=\"1\""));
    assert_eq!(count(&text, "ВерсияСхемы="), 1);
    // Converted to 2.08, the 3.x namespace no longer applies.
    let opts = WriteOptions::new(v("2.08"), OutputEncoding::Utf8);
    let text = decode(
        &Writer::with_root(Vec::new(), opts, &root)
            .unwrap()
            .finish()
            .unwrap(),
    );
    assert!(!text.contains("commerceml_3"));
    assert!(text.contains("ВерсияСхемы=\"2.08\""));
}

/// A sink that records the size of every write.
struct Recorder {
    writes: Vec<usize>,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.push(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_streams_in_bounded_chunks() {
    for encoding in [OutputEncoding::Windows1251, OutputEncoding::Utf8] {
        let mut w = Writer::new(Recorder { writes: vec![] }, options("2.08", encoding)).unwrap();
        let d = order("1");
        for _ in 0..2000 {
            w.write_document(&d).unwrap();
        }
        let rec = w.finish().unwrap();
        let total: usize = rec.writes.iter().sum();
        assert!(total > 2_000_000, "{total}");
        assert!(rec.writes.len() > 20, "{}", rec.writes.len());
        // Nothing close to the whole document is ever held back.
        assert!(
            rec.writes.iter().all(|&n| n < 200 * 1024),
            "{:?}",
            rec.writes
        );
    }
}

#[test]
fn io_errors_are_reported() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let w = Writer::new(Broken, options("2.05", OutputEncoding::Windows1251)).unwrap();
    assert!(matches!(w.finish(), Err(Error::Io(_))));
}

#[test]
fn fragments_joined_in_order_are_the_whole_file() {
    for (schema, encoding) in [
        ("2.05", OutputEncoding::Windows1251),
        ("2.08", OutputEncoding::Windows1251),
        ("3.1", OutputEncoding::Utf8),
    ] {
        let docs = [order("1"), order("2"), payment("2"), order("3")];
        let items: Vec<Item> = docs.iter().cloned().map(doc).collect();
        let whole = write_items(options(schema, encoding), &items);

        let mut writer = Writer::new(Vec::new(), options(schema, encoding)).unwrap();
        writer.flush().unwrap();
        for part in docs.chunks(2) {
            let mut fragment = Writer::fragment(Vec::new(), options(schema, encoding));
            for d in part {
                fragment.write_document(d).unwrap();
            }
            let bytes = fragment.finish().unwrap();
            writer.get_mut().extend_from_slice(&bytes);
        }
        let joined = writer.finish().unwrap();
        assert_eq!(decode(&joined), decode(&whole), "{schema}");
        assert_eq!(joined, whole, "{schema}");
    }
}
