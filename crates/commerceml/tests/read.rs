//! The reader against the real fixtures: every order-carrying fixture is compared field by
//! field with the values an independent XML parser extracted (`fixtures/expected/*.json`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use commerceml::read::read_all;
use commerceml::tags as t;
use commerceml::{Counterparty, Discount, Document, Item, Line, Reader, Requisite, Root};
use rust_decimal::Decimal;
use serde_json::Value;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    assert!(
        dir.join("README.md").is_file(),
        "fixtures not found at {}",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Everything the reader found, with the container index of each document.
struct Read {
    root: Root,
    encoding: &'static str,
    declared: Option<String>,
    has_bom: bool,
    containers: usize,
    documents: Vec<(Option<usize>, Document)>,
    counterparties: Vec<Counterparty>,
    others: usize,
}

fn read(bytes: &[u8]) -> Read {
    let mut reader = Reader::new(bytes).expect("open");
    let mut out = Read {
        root: reader.root().clone(),
        encoding: reader.encoding(),
        declared: reader.declared_encoding().map(str::to_owned),
        has_bom: reader.has_bom(),
        containers: 0,
        documents: Vec::new(),
        counterparties: Vec::new(),
        others: 0,
    };
    while let Some(item) = reader.next_item().expect("item") {
        match item {
            Item::Document(d) => out.documents.push((None, *d)),
            Item::Container(c) => {
                for d in c.documents {
                    out.documents.push((Some(out.containers), d));
                }
                out.containers += 1;
            }
            Item::Counterparty(c) => out.counterparties.push(*c),
            Item::Other(_) => out.others += 1,
        }
    }
    assert_eq!(
        reader.bytes_read(),
        bytes.len() as u64,
        "whole input consumed"
    );
    out
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match &v[key] {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => panic!("{key}: not a string: {other}"),
    }
}

fn dec(v: &Value, key: &str) -> Option<Decimal> {
    s(v, key).map(|x| Decimal::from_str(x).unwrap_or_else(|_| panic!("{key}: {x}")))
}

fn boolean(v: &Value, key: &str) -> Option<bool> {
    s(v, key).map(|x| commerceml::value::parse_bool(x).unwrap().unwrap())
}

fn requisites_eq(ctx: &str, expected: &Value, got: &[Requisite]) {
    let map = expected.as_object().expect("requisites object");
    assert_eq!(map.len(), got.len(), "{ctx}: requisite count");
    for r in got {
        let want = map
            .get(&r.name)
            .unwrap_or_else(|| panic!("{ctx}: unexpected requisite {:?}", r.name));
        assert_eq!(
            want.as_str(),
            r.value.as_deref(),
            "{ctx}: requisite {:?}",
            r.name
        );
    }
}

fn discounts_eq(ctx: &str, expected: &Value, got: &[Discount]) {
    let list = expected.as_array().expect("discounts array");
    assert_eq!(list.len(), got.len(), "{ctx}: discount count");
    for (e, d) in list.iter().zip(got) {
        assert_eq!(s(e, t::NAME), d.name.as_deref(), "{ctx}");
        assert_eq!(dec(e, t::SUM), d.sum, "{ctx}");
        assert_eq!(boolean(e, t::INCLUDED), d.included, "{ctx}");
    }
}

fn counterparty_eq(ctx: &str, e: &Value, c: &Counterparty) {
    assert_eq!(s(e, t::ID), c.id.as_deref(), "{ctx}: id");
    assert_eq!(s(e, t::NAME), c.name.as_deref(), "{ctx}: name");
    assert_eq!(s(e, t::ROLE), c.role.as_deref(), "{ctx}: role");
    assert_eq!(s(e, t::INN), c.inn.as_deref(), "{ctx}: inn");
    assert_eq!(s(e, t::KPP), c.kpp.as_deref(), "{ctx}: kpp");
    assert_eq!(
        s(e, t::FULL_NAME),
        c.full_name.as_deref(),
        "{ctx}: full name"
    );
    assert_eq!(
        s(e, t::OFFICIAL_NAME),
        c.official_name.as_deref(),
        "{ctx}: official name"
    );
    let contacts = e["contacts"].as_array().expect("contacts");
    assert_eq!(contacts.len(), c.contacts.len(), "{ctx}: contacts");
    for (ec, gc) in contacts.iter().zip(&c.contacts) {
        assert_eq!(
            s(ec, t::KIND),
            Some(gc.kind.as_str()),
            "{ctx}: contact kind"
        );
        assert_eq!(
            s(ec, t::VALUE),
            Some(gc.value.as_str()),
            "{ctx}: contact value"
        );
    }
}

fn line_eq(ctx: &str, e: &Value, l: &Line) {
    assert_eq!(s(e, t::ID), l.id.as_deref(), "{ctx}: id");
    assert_eq!(s(e, t::NAME), l.name.as_deref(), "{ctx}: name");
    assert_eq!(s(e, t::SKU), l.sku.as_deref(), "{ctx}: sku");
    assert_eq!(dec(e, "price"), l.unit_price(), "{ctx}: price");
    assert_eq!(dec(e, t::QUANTITY), l.quantity, "{ctx}: quantity");
    assert_eq!(dec(e, t::SUM), l.sum, "{ctx}: sum");
    assert_eq!(s(e, "unit_code"), l.unit_code(), "{ctx}: unit code");
    discounts_eq(ctx, &e["discounts"], &l.discounts);
    requisites_eq(ctx, &e["requisites"], &l.requisites);
}

fn document_eq(ctx: &str, e: &Value, container: Option<usize>, d: &Document) {
    assert_eq!(
        e["container_index"].as_u64().map(|i| i as usize),
        container,
        "{ctx}: container index"
    );
    let strings: [(&str, &Option<String>); 11] = [
        (t::ID, &d.id),
        (t::NUMBER, &d.number),
        (t::NUMBER_1C, &d.number_1c),
        (t::DATE, &d.date),
        (t::TIME, &d.time),
        (t::DATE_1C, &d.date_1c),
        (t::OPERATION, &d.operation),
        (t::ROLE, &d.role),
        (t::CURRENCY, &d.currency),
        (t::VERSION, &d.version),
        (t::COMMENT, &d.comment),
    ];
    for (key, got) in strings {
        assert_eq!(s(e, key), got.as_deref(), "{ctx}: {key}");
    }
    assert_eq!(dec(e, t::RATE), d.rate, "{ctx}: rate");
    assert_eq!(dec(e, t::SUM), d.sum, "{ctx}: sum");
    assert_eq!(
        boolean(e, t::DELETION_MARK),
        d.deletion_mark,
        "{ctx}: deletion mark"
    );
    let cps = e["counterparties"].as_array().expect("counterparties");
    assert_eq!(cps.len(), d.counterparties.len(), "{ctx}: counterparties");
    for (i, (ec, gc)) in cps.iter().zip(&d.counterparties).enumerate() {
        counterparty_eq(&format!("{ctx} counterparty {i}"), ec, gc);
    }
    let lines = e["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), d.lines.len(), "{ctx}: lines");
    for (i, (el, gl)) in lines.iter().zip(&d.lines).enumerate() {
        line_eq(&format!("{ctx} line {i}"), el, gl);
    }
    requisites_eq(ctx, &e["requisites"], &d.requisites);
    assert_eq!(dec(e, "lines_total"), d.lines_total(), "{ctx}: lines total");
    assert_eq!(
        e["sum_matches"].as_bool(),
        d.sum_matches(),
        "{ctx}: sum matches"
    );
}

fn check_expected(json_name: &str) {
    let path = fixtures().join("expected").join(json_name);
    let text = std::fs::read_to_string(&path).expect("expected json");
    let e: Value = serde_json::from_str(&text).expect("json");
    let name = e["fixture"].as_str().expect("fixture name");
    let got = read(&fixture(name));
    let root = &e["root"];
    assert_eq!(
        s(root, t::ATTR_SCHEMA_VERSION),
        got.root
            .schema_version
            .as_ref()
            .map(commerceml::SchemaVersion::as_str),
        "{name}: schema version"
    );
    assert_eq!(
        s(root, t::ATTR_GENERATED_AT),
        got.root.generated_at.as_deref(),
        "{name}: generated at"
    );
    assert_eq!(
        s(root, "namespace"),
        got.root.namespace.as_deref(),
        "{name}"
    );
    assert_eq!(
        s(root, "declared_encoding"),
        got.declared.as_deref(),
        "{name}"
    );
    assert_eq!(root["has_bom"].as_bool(), Some(got.has_bom), "{name}");
    assert_eq!(
        root["container_count"].as_u64(),
        Some(got.containers as u64),
        "{name}"
    );
    assert_eq!(
        root["document_count"].as_u64(),
        Some(got.documents.len() as u64),
        "{name}"
    );
    let docs = e["documents"].as_array().expect("documents");
    assert_eq!(docs.len(), got.documents.len(), "{name}: documents");
    for (i, (ed, (container, gd))) in docs.iter().zip(&got.documents).enumerate() {
        document_eq(&format!("{name} document {i}"), ed, *container, gd);
    }
    assert!(
        got.counterparties.is_empty(),
        "{name}: no root counterparties"
    );
    assert_eq!(got.others, 0, "{name}: nothing else at the root");
    let encoding = got.encoding;
    let declared = got.declared.unwrap_or_default().to_ascii_lowercase();
    assert_eq!(encoding.to_ascii_lowercase(), declared, "{name}: encoding");
}

#[test]
fn bitrix_query_response_full() {
    check_expected("dobromyslov__commerceml-parser__bitrix-query-response-full.json");
}

#[test]
fn bitrix_query_response_empty() {
    check_expected("dobromyslov__commerceml-parser__bitrix-query-response-empty.json");
}

#[test]
fn carono_from() {
    check_expected("carono__yii2-1c-exchange__from.json");
}

#[test]
fn carono_to() {
    check_expected("carono__yii2-1c-exchange__to.json");
}

#[test]
fn alex8bits_orders_utf8() {
    check_expected("alex8bits__php-commerceml__orders.json");
}

#[test]
fn arsengoian_to_ragged_whitespace() {
    check_expected("arsengoian__commerce-ml__to.json");
}

#[test]
fn irpsv_official_1c_sample() {
    check_expected("irpsv__commerceml__off-doc-1c-orders.json");
}

#[test]
fn irpsv_bitrix_module_containers() {
    check_expected("irpsv__commerceml__bitrix-module-6-documents-2.json");
}

#[test]
fn every_expected_json_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("expected"))
        .expect("expected dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "{names:?}");
    let source = include_str!("read.rs");
    for n in names {
        assert!(source.contains(&format!("check_expected(\"{n}\")")), "{n}");
    }
}

#[test]
fn utf8_and_windows_1251_twins_read_to_equal_values() {
    let cp = read(&fixture("carono__yii2-1c-exchange/to.xml"));
    let utf = read(&fixture("alex8bits__php-commerceml/orders.xml"));
    assert_eq!(cp.encoding, "windows-1251");
    assert_eq!(utf.encoding, "UTF-8");
    assert_eq!(cp.root, utf.root);
    assert_eq!(cp.documents, utf.documents);
    assert_eq!(cp.documents.len(), 1);
}

#[test]
fn bitrix_query_response_has_two_orders_with_status_and_delivery() {
    let got = read(&fixture(
        "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
    ));
    let numbers: Vec<_> = got
        .documents
        .iter()
        .map(|(_, d)| d.number.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(numbers.len(), 2);
    for (_, d) in &got.documents {
        assert!(d.requisite(t::REQ_STATUS_ID).is_some());
        assert!(d.requisite(t::REQ_DELIVERY_METHOD).is_some());
        assert_eq!(d.sum_matches(), Some(true));
        // Bitrix 2.05 lines carry the unit as БазоваяЕдиница attributes plus its text.
        for l in &d.lines {
            let u = l.base_unit.as_ref().expect("base unit");
            assert!(u.code.is_some() && u.full_name.is_some() && u.short_name.is_some());
        }
    }
    let root = &got.root;
    assert!(root.attributes.iter().any(|(k, _)| k == t::ATTR_SUM_FORMAT));
}

#[test]
fn bitrix_module_3_1_file_gives_four_containers_and_units_from_children() {
    let got = read(&fixture(
        "irpsv__commerceml/bitrix-module-6-documents-2.xml",
    ));
    assert_eq!(got.containers, 4);
    assert_eq!(got.encoding, "UTF-8");
    assert!(got.has_bom);
    assert_eq!(got.root.namespace.as_deref(), Some(t::NAMESPACE_3));
    let (_, d) = &got.documents[0];
    let unit = d.lines[0].unit.as_ref().expect("unit");
    // Padded in the file, trimmed here.
    assert_eq!(unit.id.as_deref(), Some(t::UNIT_PIECE_CODE));
    assert_eq!(unit.short_name.as_deref(), Some(t::UNIT_PIECE_SHORT));
    // 1C pads the full name with blanks to 100 characters; trimmed here.
    assert_eq!(
        unit.full_name.as_deref(),
        Some(t::UNIT_PIECE_FULL.to_lowercase().as_str())
    );
    assert!(d.lines[0].coefficient.is_some());
    assert_eq!(d.deletion_mark, Some(false));
    // Representatives without the inner Контрагент.
    let reps: Vec<_> = got
        .documents
        .iter()
        .flat_map(|(_, d)| &d.counterparties)
        .flat_map(|c| &c.representatives)
        .collect();
    assert!(!reps.is_empty());
    assert!(reps.iter().all(|r| !r.nested && r.relation.is_some()));
    assert!(reps.iter().any(|r| r.name.as_deref() == Some("<>")));
}

#[test]
fn representatives_nested_in_bitrix_files() {
    let got = read(&fixture("carono__yii2-1c-exchange/from.xml"));
    let reps = &got.documents[0].1.counterparties[0].representatives;
    assert!(!reps.is_empty());
    assert!(reps.iter().all(|r| r.nested && r.name.is_some()));
    let addr = got.documents[0].1.counterparties[0]
        .registration_address
        .as_ref()
        .expect("registration address");
    assert!(!addr.fields.is_empty());
}

#[test]
fn catalog_and_counterparty_fixtures_read() {
    for name in [
        "ArgentCrusade__commerceml/prices-example.xml",
        "stee1cat__1c-exchange/import___29d3f7f0-36dd-4eea-a06c-4c325bed4285.xml",
        "bigperson__exchange1c/import.xml",
        "bigperson__exchange1c/offers.xml",
        "irpsv__commerceml/umi-cms-import.xml",
    ] {
        let got = read(&fixture(name));
        assert!(
            got.others > 0,
            "{name}: catalog content as generic elements"
        );
        assert!(got.documents.is_empty(), "{name}");
        assert!(got.root.schema_version.is_some(), "{name}");
    }
    let got = read(&fixture(
        "ArgentCrusade__commerceml/contractors-example.xml",
    ));
    assert!(!got.counterparties.is_empty());
    assert_eq!(got.root.namespace.as_deref(), Some(t::NAMESPACE_2));
    for c in &got.counterparties {
        assert!(c.id.is_some() && c.name.is_some());
    }
}

#[test]
fn read_all_and_iterator_agree() {
    let bytes = fixture("irpsv__commerceml/off-doc-1c-orders.xml");
    let (root, items) = read_all(&bytes[..]).expect("read_all");
    let reader = Reader::new(&bytes[..]).expect("open");
    assert_eq!(&root, reader.root());
    let via_iter: Vec<Item> = reader.collect::<Result<_, _>>().expect("iterate");
    assert_eq!(items, via_iter);
    assert_eq!(items.len(), 3);
}

#[test]
fn double_escaped_entities_are_decoded_once() {
    let got = read(&fixture("carono__yii2-1c-exchange/from.xml"));
    let names: Vec<_> = got.documents[0]
        .1
        .lines
        .iter()
        .filter_map(|l| l.name.as_deref())
        .collect();
    assert!(names.iter().any(|n| n.contains("&quot;")), "{names:?}");
}

/// Hands out the input a few bytes at a time, so every token crosses read boundaries.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.step).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn small_reads_give_the_same_items_as_one_slice() {
    for name in [
        "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
        "irpsv__commerceml/bitrix-module-6-documents-2.xml",
        "carono__yii2-1c-exchange/from.xml",
        "ArgentCrusade__commerceml/contractors-example.xml",
    ] {
        let bytes = fixture(name);
        let (root, items) = read_all(&bytes[..]).expect("slice");
        for step in [1, 2, 3, 7, 61, 509, 4096] {
            let (r, i) = read_all(Trickle { data: &bytes, step })
                .unwrap_or_else(|e| panic!("{name} step {step}: {e}"));
            assert_eq!(r, root, "{name} step {step}");
            assert_eq!(i, items, "{name} step {step}");
        }
    }
}

#[path = "../benches/support/orders.rs"]
mod gen;

/// Generated order files of a few hundred KB in both encodings, read in chunks of odd sizes so
/// that tokens start before and end after the reader's buffer boundaries, give the same items
/// as one slice.
#[test]
fn chunked_reads_of_a_large_file_give_the_same_items_as_one_slice() {
    for enc in [gen::Enc::Utf8, gen::Enc::Windows1251] {
        let (bytes, docs) = gen::orders(300 << 10, enc);
        let (root, items) = read_all(&bytes[..]).expect("slice");
        assert_eq!(items.len() as u64, docs);
        for step in [61, 1000, 4093, 65_521] {
            let (r, i) = read_all(Trickle { data: &bytes, step })
                .unwrap_or_else(|e| panic!("{} step {step}: {e}", enc.name()));
            assert_eq!(r, root, "{} step {step}", enc.name());
            assert_eq!(i, items, "{} step {step}", enc.name());
        }
    }
}

/// The same bytes as CDATA and as text give different values (references are kept in CDATA,
/// replaced in text), in either order and in both encodings: repeated values must not leak
/// from one form into the other.
#[test]
fn cdata_and_text_with_the_same_bytes_keep_their_own_values() {
    let text = "Привет &amp; пока";
    let cdata = format!("<![CDATA[{text}]]>");
    for (first, second) in [(cdata.as_str(), text), (text, cdata.as_str())] {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"ENC\"?><{root}><{d}><{c}>{first}</{c}></{d}><{d}><{c}>{second}</{c}></{d}></{root}>",
            root = t::ROOT,
            d = t::DOCUMENT,
            c = t::COMMENT,
        );
        for enc in [encoding_rs::UTF_8, encoding_rs::WINDOWS_1251] {
            let bytes = enc.encode(&xml.replace("ENC", enc.name())).0.into_owned();
            let (_, items) = read_all(&bytes[..]).expect("read");
            let comments: Vec<_> = items
                .iter()
                .map(|i| match i {
                    Item::Document(d) => d.comment.clone(),
                    _ => None,
                })
                .collect();
            let want = |s: &str| {
                Some(if s.starts_with("<![CDATA[") {
                    text.to_owned()
                } else {
                    "Привет & пока".to_owned()
                })
            };
            assert_eq!(comments, vec![want(first), want(second)], "{}", enc.name());
        }
    }
}

/// Reads everything with `options`: the root and items, or the first error as text (message
/// with position and path).
fn read_outcome(input: impl std::io::Read, options: commerceml::read::ReadOptions) -> String {
    let mut reader = match Reader::with_options(input, options) {
        Ok(r) => r,
        Err(e) => return format!("error: {e} {e:?}"),
    };
    let mut items = Vec::new();
    loop {
        match reader.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return format!("{:?} {items:?}", reader.root()),
            Err(e) => return format!("error: {e} {e:?}"),
        }
    }
}

/// Start tags with attributes, valid and not, inside a document (units with attributes, an
/// unknown element kept as a tree) and on the root: the one-pass path over a tag already in
/// the buffer gives what the general path gives (reading one byte at a time never has a whole
/// tag in the buffer, so it always takes the general path) — same values, same errors.
#[test]
fn start_tags_with_attributes_read_the_same_whole_and_byte_by_byte() {
    use commerceml::read::{Limits, ReadOptions};
    use std::io::Read;
    let tags = [
        r#"x="1""#,
        r#"x = '1'  y="2"/"#,
        r#"x="1" "#,
        "\n\tx=\"1\"\n\ty='2'\n",
        r#"x="1"/ "#,
        r#"x="1" / "#,
        r#"x="1"y="2""#,
        r#"x="1" x="2""#,
        r#"x"#,
        r#"x=1"#,
        r#"x="1" y"#,
        r#"x="1" ="2""#,
        r#"1x="1""#,
        r#"-x="1""#,
        r#":x="1""#,
        r#"p:x="1" q:y="2""#,
        r#"x="<""#,
        r#"x="a>b" y='"'"#,
        r#"x="unterminated"#,
        r#"x"="1""#,
        r#"x/="1""#,
        r#"x>="1""#,
        r#"Ид="₽" Код="796""#,
        r#"Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE""#,
        r#"Код=" 796 " НаименованиеПолное="Шт&amp;ука""#,
        r#"Код="7&bogus;""#,
        r#"a="1" b="2" c="3""#,
        r#"a="12345" b="1""#,
    ];
    let limits = [
        Limits::default(),
        Limits::default().with_max_attributes(2),
        Limits::default().with_max_attribute_len(4),
    ];
    for attrs in tags {
        for close in [">шт</БазоваяЕдиница>", "/>"] {
            let unit = format!("<{} {attrs}{close}", t::BASE_UNIT);
            let other = format!(
                "<Прочее {attrs}{}",
                close.replace("БазоваяЕдиница", "Прочее")
            );
            let doc = format!(
                "<{root} {ver}=\"2.05\"><{d}><{lines}><{line}>{unit}</{line}></{lines}>{other}</{d}></{root}>",
                root = t::ROOT,
                ver = t::ATTR_SCHEMA_VERSION,
                d = t::DOCUMENT,
                lines = t::LINES,
                line = t::LINE,
            );
            let on_root = format!("<{} {attrs}><{d}/></{}>", t::ROOT, t::ROOT, d = t::DOCUMENT);
            for xml in [doc, on_root] {
                for enc in [encoding_rs::UTF_8, encoding_rs::WINDOWS_1251] {
                    // The reader looks at the first 64 KiB to detect the encoding: a comment
                    // moves the tags past that.
                    let decl = format!(
                        "<?xml version=\"1.0\" encoding=\"{}\"?><!--{}-->",
                        enc.name(),
                        " ".repeat(70 << 10)
                    );
                    let bytes = enc.encode(&format!("{decl}{xml}")).0.into_owned();
                    for l in &limits {
                        let whole = read_outcome(&bytes[..], ReadOptions::with_limits(l.clone()));
                        // `decl` is ASCII: as long encoded as it is here.
                        let (head, tail) = bytes.split_at(decl.len());
                        let trickle = read_outcome(
                            head.chain(Trickle {
                                data: tail,
                                step: 1,
                            }),
                            ReadOptions::with_limits(l.clone()),
                        );
                        assert_eq!(whole, trickle, "{xml} in {} with {l:?}", enc.name());
                    }
                }
            }
        }
    }
}

/// Names of open elements whose start tags have left the reader's buffer still give the
/// element path and end-tag checks, in both encodings.
#[test]
fn open_elements_far_behind_keep_their_names() {
    let filler = format!("<!--{}-->", "x".repeat(300 << 10));
    let xml = format!(
        "<{root} {ver}=\"2.05\"><{d}><{lines}><{line}>{filler}<{id}>1</{id}>{filler}</{lines}></{d}></{root}>",
        root = t::ROOT,
        ver = t::ATTR_SCHEMA_VERSION,
        d = t::DOCUMENT,
        lines = t::LINES,
        line = t::LINE,
        id = t::ID,
    );
    for enc in [encoding_rs::UTF_8, encoding_rs::WINDOWS_1251] {
        let decl = format!("<?xml version=\"1.0\" encoding=\"{}\"?>", enc.name());
        let bytes = enc.encode(&format!("{decl}{xml}")).0.into_owned();
        for step in [bytes.len(), 4093] {
            let err = read_all(Trickle { data: &bytes, step }).expect_err("mismatched end tag");
            let text = err.to_string();
            assert!(
                text.contains(&format!(
                    "/{}/{}/{}/{}",
                    t::ROOT,
                    t::DOCUMENT,
                    t::LINES,
                    t::LINE
                )),
                "{} step {step}: {text}",
                enc.name()
            );
            assert!(
                text.contains(&format!(
                    "</{}> does not match the open element <{}>",
                    t::LINES,
                    t::LINE
                )),
                "{} step {step}: {text}",
                enc.name()
            );
        }
    }
}
