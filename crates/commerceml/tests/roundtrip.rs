//! read → write → read gives equal values: every order fixture in every schema version the
//! writer knows (2.05, 2.08, 2.10, 3.1) and both encodings, and generated documents (proptest).
//!
//! Some values legitimately change with the written version; both sides are compared after
//! [`normalise`], which applies exactly these rules and nothing else:
//!
//! * containers are flattened: below 3.x documents stand alone, from 3.x each order is wrapped,
//!   so the comparison is over the sequence of documents (container `Ид`s are compared
//!   separately when both sides are 3.x);
//! * for 2.05 the document's `НомерВерсии` and `Номер1С` are not written (PROTOCOL.md §8.1);
//! * a line's unit is compared as one merged unit (the `БазоваяЕдиница` and `Единица` forms are
//!   two spellings of it, empty parts ignored); for 2.05 the unit's `Ид` has no place;
//!   `Коэффициент` 1 equals no coefficient (Bitrix writes 1 for > 2.05 and nothing for 2.05);
//! * contact types compare by meaning (`ТелефонРабочий` = `Телефон рабочий`,
//!   `Почта` = `Электронная почта`).

use std::str::FromStr;

use commerceml::read::read_all;
use commerceml::tags as t;
use commerceml::{
    names_match, Address, AddressField, Contact, Counterparty, Document, Item, Line,
    OutputEncoding, Requisite, Root, SchemaVersion, Unit, WriteOptions, Writer,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

const FIXTURES: &str = "../../../shared/fixtures";

/// Every fixture that carries order documents (or root-level counterparties).
const ORDER_FIXTURES: [&str; 9] = [
    "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
    "dobromyslov__commerceml-parser/bitrix-query-response-empty.xml",
    "carono__yii2-1c-exchange/from.xml",
    "carono__yii2-1c-exchange/to.xml",
    "alex8bits__php-commerceml/orders.xml",
    "arsengoian__commerce-ml/to.xml",
    "irpsv__commerceml/off-doc-1c-orders.xml",
    "irpsv__commerceml/bitrix-module-6-documents-2.xml",
    "ArgentCrusade__commerceml/contractors-example.xml",
];

const VERSIONS: [&str; 4] = ["2.05", "2.08", "2.10", "3.1"];
const ENCODINGS: [OutputEncoding; 2] = [OutputEncoding::Windows1251, OutputEncoding::Utf8];

fn version(s: &str) -> SchemaVersion {
    SchemaVersion::parse(s).unwrap()
}

fn read_fixture(rel: &str) -> (Root, Vec<Item>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(rel);
    read_all(std::fs::File::open(&path).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn write(root: &Root, items: &[Item], schema: &str, encoding: OutputEncoding) -> Vec<u8> {
    let mut w = Writer::with_root(
        Vec::new(),
        WriteOptions::new(version(schema), encoding),
        root,
    )
    .unwrap();
    for item in items {
        w.write_item(item).unwrap();
    }
    w.finish().unwrap()
}

/// What is compared: documents (containers flattened), counterparties, other elements.
#[derive(Debug, PartialEq)]
enum Flat {
    Document(Document),
    Counterparty(Counterparty),
    Other(commerceml::Element),
}

fn normalise(items: &[Item], schema: &str) -> Vec<Flat> {
    let old = version(schema) <= version("2.05");
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Document(d) => out.push(Flat::Document(normalise_document(d, old))),
            Item::Container(c) => out.extend(
                c.documents
                    .iter()
                    .map(|d| Flat::Document(normalise_document(d, old))),
            ),
            Item::Counterparty(c) => out.push(Flat::Counterparty(normalise_counterparty(c))),
            Item::Other(e) => out.push(Flat::Other(e.clone())),
        }
    }
    out
}

fn normalise_document(d: &Document, old: bool) -> Document {
    let mut d = d.clone();
    if old {
        d.version = None;
        d.number_1c = None;
    }
    d.counterparties = d
        .counterparties
        .iter()
        .map(normalise_counterparty)
        .collect();
    for line in &mut d.lines {
        normalise_line(line, old);
    }
    d.subordinates = d
        .subordinates
        .iter()
        .map(|s| normalise_document(s, old))
        .collect();
    d
}

fn normalise_counterparty(c: &Counterparty) -> Counterparty {
    let mut c = c.clone();
    for contact in &mut c.contacts {
        if names_match(&contact.kind, t::CONTACT_PHONE) {
            contact.kind = t::CONTACT_PHONE.into();
        } else if names_match(&contact.kind, t::CONTACT_EMAIL_OLD) {
            contact.kind = t::CONTACT_EMAIL.into();
        }
    }
    c
}

fn normalise_line(l: &mut Line, old: bool) {
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let pick = |f: fn(&Unit) -> &Option<String>| {
        let from = |u: &Option<Unit>| u.as_ref().and_then(|u| non_empty(f(u)));
        if old {
            from(&l.base_unit).or_else(|| from(&l.unit))
        } else {
            from(&l.unit).or_else(|| from(&l.base_unit))
        }
    };
    let merged = (l.base_unit.is_some() || l.unit.is_some()).then(|| Unit {
        id: if old { None } else { pick(|u| &u.id) },
        code: pick(|u| &u.code),
        full_name: pick(|u| &u.full_name),
        international: pick(|u| &u.international),
        short_name: pick(|u| &u.short_name),
    });
    l.base_unit = None;
    l.unit = merged;
    l.coefficient = l.coefficient.filter(|k| *k != Decimal::ONE);
}

/// Writes `items` in every version and encoding, reads them back and compares.
fn assert_round_trip(label: &str, root: &Root, items: &[Item]) {
    for schema in VERSIONS {
        for encoding in ENCODINGS {
            let bytes = write(root, items, schema, encoding);
            let (root2, items2) = read_all(bytes.as_slice())
                .unwrap_or_else(|e| panic!("{label} as {schema} {encoding:?}: {e}"));
            assert_eq!(
                root2.schema_version.as_ref().map(SchemaVersion::as_str),
                Some(schema)
            );
            assert_eq!(
                normalise(items, schema),
                normalise(&items2, schema),
                "{label} as {schema} {encoding:?}"
            );
            // A second pass writes the very same bytes: nothing more is lost or changed.
            assert_eq!(
                write(&root2, &items2, schema, encoding),
                bytes,
                "{label} as {schema} {encoding:?}: second pass differs"
            );
        }
    }
}

#[test]
fn every_order_fixture_round_trips_in_every_version_and_encoding() {
    for rel in ORDER_FIXTURES {
        let (root, items) = read_fixture(rel);
        assert_round_trip(rel, &root, &items);
    }
}

#[test]
fn the_fixtures_round_trip_with_content() {
    // Guard against a vacuous comparison: the fixtures do hold what the tests above compare.
    let (_, items) = read_fixture(ORDER_FIXTURES[0]);
    let docs = normalise(&items, "2.05");
    assert_eq!(docs.len(), 2);
    let Flat::Document(first) = &docs[0] else {
        panic!("expected a document")
    };
    assert_eq!(first.number.as_deref(), Some("132"));
    assert_eq!(first.sum, Some(Decimal::from_str("231.74").unwrap()));
    assert_eq!(first.lines.len(), 1);
    let (_, items) = read_fixture("irpsv__commerceml/bitrix-module-6-documents-2.xml");
    assert_eq!(normalise(&items, "3.1").len(), 4);
}

#[test]
fn version_3_containers_survive_and_2_x_flattens_them() {
    let (root, items) = read_fixture("irpsv__commerceml/bitrix-module-6-documents-2.xml");
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, Item::Container(_)))
            .count(),
        4
    );
    let (_, as_31) =
        read_all(write(&root, &items, "3.1", OutputEncoding::Utf8).as_slice()).unwrap();
    assert_eq!(as_31, items);
    let (_, as_208) =
        read_all(write(&root, &items, "2.08", OutputEncoding::Windows1251).as_slice()).unwrap();
    assert_eq!(as_208.len(), 4);
    assert!(as_208.iter().all(|i| matches!(i, Item::Document(_))));
}

#[test]
fn windows_1251_and_utf8_twins_write_the_same_content() {
    // The same logical document, published once in each encoding.
    let (root_a, a) = read_fixture("carono__yii2-1c-exchange/to.xml");
    let (_, b) = read_fixture("alex8bits__php-commerceml/orders.xml");
    assert_eq!(a, b);
    let out_a = write(&root_a, &a, "2.08", OutputEncoding::Utf8);
    let out_b = write(&root_a, &b, "2.08", OutputEncoding::Utf8);
    assert_eq!(out_a, out_b);
}

// ---- generated documents ----

/// Text as the reader returns it: trimmed, no control characters, with markup characters,
/// Cyrillic, and characters windows-1251 lacks.
fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Zа-яА-ЯёЁ0-9 &<>\"'#.,;:/₽😀№-]{0,16}")
        .unwrap()
        .prop_map(|s| s.trim().to_owned())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (-1_000_000_000i64..1_000_000_000, 0u32..5).prop_map(|(n, scale)| Decimal::new(n, scale))
}

fn unit() -> impl Strategy<Value = Unit> {
    (opt_text(), opt_text(), opt_text(), opt_text(), opt_text()).prop_map(
        |(id, code, full_name, international, short_name)| Unit {
            id,
            code,
            full_name,
            international,
            short_name,
        },
    )
}

fn requisites() -> impl Strategy<Value = Vec<Requisite>> {
    proptest::collection::vec(
        (text(), opt_text()).prop_map(|(name, value)| Requisite { name, value }),
        0..3,
    )
}

fn line() -> impl Strategy<Value = Line> {
    (
        (opt_text(), opt_text(), opt_text(), opt_text()),
        (proptest::option::of(unit()), proptest::option::of(unit())),
        proptest::option::of(decimal()),
        (
            proptest::option::of(decimal()),
            proptest::option::of(decimal()),
            proptest::option::of(decimal()),
            proptest::option::of(decimal()),
        ),
        requisites(),
    )
        .prop_map(
            |(
                (id, catalog_id, sku, name),
                (base_unit, unit),
                coefficient,
                (price_per_unit, price, quantity, sum),
                requisites,
            )| Line {
                id,
                catalog_id,
                sku,
                name,
                base_unit,
                unit,
                coefficient,
                price_per_unit,
                price,
                quantity,
                sum,
                requisites,
                ..Line::default()
            },
        )
}

fn counterparty() -> impl Strategy<Value = Counterparty> {
    (
        (opt_text(), opt_text(), opt_text(), opt_text()),
        (opt_text(), opt_text()),
        proptest::option::of((
            opt_text(),
            proptest::collection::vec((text(), text()), 0..3),
        )),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just(t::CONTACT_PHONE.to_owned()),
                    Just(t::CONTACT_EMAIL.to_owned()),
                    Just(t::CONTACT_PHONE_OLD.to_owned()),
                    Just(t::CONTACT_EMAIL_OLD.to_owned()),
                    text(),
                ],
                text(),
                opt_text(),
            ),
            0..3,
        ),
    )
        .prop_map(
            |((id, name, full_name, official_name), (inn, role), address, contacts)| Counterparty {
                id,
                name,
                full_name,
                official_name,
                inn,
                role,
                address: address.map(|(presentation, fields)| Address {
                    presentation,
                    fields: fields
                        .into_iter()
                        .map(|(kind, value)| AddressField { kind, value })
                        .collect(),
                    extra: vec![],
                }),
                contacts: contacts
                    .into_iter()
                    .map(|(kind, value, comment)| Contact {
                        kind,
                        value,
                        comment,
                    })
                    .collect(),
                ..Counterparty::default()
            },
        )
}

fn document() -> impl Strategy<Value = Document> {
    (
        (opt_text(), opt_text(), opt_text(), opt_text(), opt_text()),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        (
            proptest::option::of(decimal()),
            proptest::option::of(decimal()),
            proptest::option::of(any::<bool>()),
        ),
        proptest::collection::vec(counterparty(), 0..3),
        proptest::collection::vec(line(), 0..4),
        requisites(),
    )
        .prop_map(
            |(
                (id, number, number_1c, date, time),
                (operation, currency, version, comment),
                (rate, sum, deletion_mark),
                counterparties,
                lines,
                requisites,
            )| Document {
                id,
                number,
                number_1c,
                date,
                time,
                operation,
                role: Some(t::ROLE_SELLER.to_owned()),
                currency,
                rate,
                sum,
                version,
                deletion_mark,
                comment,
                counterparties,
                lines,
                requisites,
                ..Document::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_documents_round_trip(docs in proptest::collection::vec(document(), 0..4)) {
        let items: Vec<Item> = docs.into_iter().map(|d| Item::Document(Box::new(d))).collect();
        let root = Root::default();
        for schema in VERSIONS {
            for encoding in ENCODINGS {
                let bytes = write(&root, &items, schema, encoding);
                let (_, back) = read_all(bytes.as_slice()).map_err(|e| {
                    TestCaseError::fail(format!("{schema} {encoding:?}: {e}"))
                })?;
                prop_assert_eq!(normalise(&items, schema), normalise(&back, schema));
            }
        }
    }
}
