//! The `xsd_strict` writer against the published CommerceML 2.10 schema: every full order
//! fixture is read, written in strict mode (schema 2.10, both encodings) and validated with
//! `xmllint --schema`. xmllint (Debian `libxml2-utils`) is required: without it these tests fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use commerceml::read::read_all;
use commerceml::{Error, Item, OutputEncoding, SchemaVersion, WriteOptions, Writer};

const FIXTURES: &str = "../../../shared/fixtures";

/// Fixtures whose documents are complete orders (header, counterparty, sum, lines).
const FULL_ORDER_FIXTURES: [&str; 6] = [
    "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
    "carono__yii2-1c-exchange/from.xml",
    "carono__yii2-1c-exchange/to.xml",
    "alex8bits__php-commerceml/orders.xml",
    "arsengoian__commerce-ml/to.xml",
    "irpsv__commerceml/bitrix-module-6-documents-2.xml",
];

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(rel)
}

fn xsd() -> PathBuf {
    fixture("dobromyslov__commerceml-parser/commerceml-2.10.xsd")
}

fn strict(encoding: OutputEncoding) -> WriteOptions {
    WriteOptions::new(SchemaVersion::parse("2.10").unwrap(), encoding).xsd_strict(true)
}

fn write_strict(rel: &str, encoding: OutputEncoding) -> Result<Vec<u8>, Error> {
    let (root, items) = read_all(std::fs::File::open(fixture(rel)).unwrap()).unwrap();
    let mut w = Writer::with_root(Vec::new(), strict(encoding), &root)?;
    for item in &items {
        w.write_item(item)?;
    }
    w.finish()
}

/// Runs `xmllint --noout --schema` and returns its verdict with its messages.
fn xmllint(file: &Path) -> (bool, String) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd())
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint is required for this test (apt-get install libxml2-utils): {e}")
        });
    let messages = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), messages)
}

#[test]
fn strict_output_of_every_full_order_fixture_validates_against_the_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for rel in FULL_ORDER_FIXTURES {
        for encoding in [OutputEncoding::Utf8, OutputEncoding::Windows1251] {
            let bytes = write_strict(rel, encoding).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let path = dir.path().join(format!(
                "{}-{}.xml",
                rel.replace('/', "_"),
                encoding.label()
            ));
            std::fs::write(&path, &bytes).unwrap();
            let (ok, messages) = xmllint(&path);
            if !ok {
                failures.push(format!("{rel} ({}):\n{messages}", encoding.label()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn default_bitrix_output_does_not_validate_which_is_why_strict_exists() {
    // The Bitrix layout for 2.10 (Единица with children, format attributes on the root, no
    // namespace) is rejected by the XSD: the check above is not vacuous.
    let (root, items) =
        read_all(std::fs::File::open(fixture(FULL_ORDER_FIXTURES[0])).unwrap()).unwrap();
    let opts = WriteOptions::new(SchemaVersion::parse("2.10").unwrap(), OutputEncoding::Utf8);
    let mut w = Writer::with_root(Vec::new(), opts, &root).unwrap();
    for item in &items {
        w.write_item(item).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bitrix.xml");
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    let (ok, _) = xmllint(&path);
    assert!(!ok);
}

#[test]
fn strict_mode_refuses_documents_missing_what_the_xsd_requires() {
    // Documents 2 and 3 of 1C's published sample are status-only: no Сумма, no Контрагенты.
    let err = write_strict(
        "irpsv__commerceml/off-doc-1c-orders.xml",
        OutputEncoding::Utf8,
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Xsd(_)), "{message}");
    assert!(message.contains("\"92\""), "{message}");
}

#[test]
fn strict_mode_moves_header_fields_the_xsd_lacks_into_requisites() {
    let bytes = write_strict(
        "irpsv__commerceml/bitrix-module-6-documents-2.xml",
        OutputEncoding::Utf8,
    )
    .unwrap();
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(!text.contains("<Контейнер>"));
    assert!(!text.contains("<НомерВерсии>"));
    assert!(!text.contains("<Цена>"));
    assert!(!text.contains("<Единица>"));
    assert!(text.contains("<Наименование>НомерВерсии</Наименование>"));
    assert!(text.contains("<Наименование>Номер1С</Наименование>"));
    assert!(text.contains("<Значение>L319</Значение>"));
    assert!(text.contains("<ЦенаЗаЕдиницу>1320</ЦенаЗаЕдиницу>"));
    assert!(text
        .contains("<БазоваяЕдиница Код=\"796\" НаименованиеПолное=\"штука\">шт</БазоваяЕдиница>"));
    assert!(text.contains("xmlns=\"urn:1C.ru:commerceml_2\""));
    assert!(!text.contains("ФорматДаты"));
    // Four orders, each a root-level document.
    assert_eq!(text.matches("<Документ>").count(), 4);
}

#[test]
fn strict_mode_refuses_root_level_counterparties() {
    let (root, items) = read_all(
        std::fs::File::open(fixture("ArgentCrusade__commerceml/contractors-example.xml")).unwrap(),
    )
    .unwrap();
    let mut w = Writer::with_root(Vec::new(), strict(OutputEncoding::Utf8), &root).unwrap();
    let first = items
        .iter()
        .find(|i| matches!(i, Item::Counterparty(_)))
        .expect("the contractors file has counterparties");
    assert!(matches!(w.write_item(first), Err(Error::Xsd(_))));
    // Nor does it write other root children as they are.
    let other = Item::Other(commerceml::Element {
        name: "Каталог".into(),
        ..commerceml::Element::default()
    });
    assert!(matches!(w.write_item(&other), Err(Error::Xsd(_))));
}
