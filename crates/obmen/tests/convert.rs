//! `obmen convert` run as a process on the shared fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use commerceml::read::read_all;
use commerceml::{Item, Reader};

const FIXTURES: &str = "../../../shared/fixtures";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(rel)
}

fn obmen(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obmen"))
        .args(args)
        .output()
        .unwrap()
}

fn convert(file: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["convert".as_ref(), file.as_os_str()];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    obmen(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The declaration's encoding, whether a BOM is present, and the items.
fn inspect(bytes: &[u8]) -> (String, bool, Vec<Item>) {
    let reader = Reader::new(bytes).unwrap();
    let declared = reader.declared_encoding().unwrap().to_owned();
    let bom = reader.has_bom();
    let items: Vec<Item> = reader.map(Result::unwrap).collect();
    (declared, bom, items)
}

fn documents(items: &[Item]) -> Vec<&commerceml::Document> {
    items
        .iter()
        .flat_map(|i| match i {
            Item::Document(d) => vec![d.as_ref()],
            Item::Container(c) => c.documents.iter().collect(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn bitrix_2_05_to_2_08_utf8_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.xml");
    let src = fixture("dobromyslov__commerceml-parser/bitrix-query-response-full.xml");
    let out = convert(
        &src,
        &[
            "--schema",
            "2.08",
            "--encoding",
            "utf-8",
            "-o",
            out_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let bytes = std::fs::read(&out_path).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let text = std::str::from_utf8(&bytes[3..]).expect("the bytes are UTF-8 as declared");
    assert!(text.contains("ВерсияСхемы=\"2.08\""));
    assert!(text.contains("<Коэффициент>1</Коэффициент>"));
    assert!(!text.contains("БазоваяЕдиница"));
    let (declared, bom, items) = inspect(&bytes);
    assert_eq!(declared, "UTF-8");
    assert!(bom);
    let docs = documents(&items);
    let numbers: Vec<_> = docs.iter().map(|d| d.number.as_deref().unwrap()).collect();
    assert_eq!(numbers, ["132", "133"]);
    // The same values as the source, read directly.
    let (_, original) = read_all(std::fs::File::open(&src).unwrap()).unwrap();
    let sums: Vec<_> = documents(&original).iter().map(|d| d.sum).collect();
    assert_eq!(docs.iter().map(|d| d.sum).collect::<Vec<_>>(), sums);
    assert!(stderr(&out).contains("2 document(s)"));
    assert!(!dir.path().join("out.xml.partial").exists());
}

#[test]
fn version_3_1_to_2_08_windows_1251_on_stdout_has_four_documents_and_no_container() {
    let src = fixture("irpsv__commerceml/bitrix-module-6-documents-2.xml");
    let out = convert(&src, &["--schema", "2.08", "--encoding", "windows-1251"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = &out.stdout;
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    // Not UTF-8: the Cyrillic is in single bytes.
    assert!(std::str::from_utf8(bytes).is_err());
    let (declared, bom, items) = inspect(bytes);
    assert_eq!(declared, "windows-1251");
    assert!(!bom);
    assert_eq!(items.len(), 4);
    assert!(items.iter().all(|i| matches!(i, Item::Document(_))));
    let docs = documents(&items);
    assert_eq!(docs[0].number.as_deref(), Some("319"));
    assert_eq!(docs[0].number_1c.as_deref(), Some("L319"));
    // The 3.x namespace does not carry over to 2.08.
    let (root, _) = read_all(bytes.as_slice()).unwrap();
    assert_eq!(root.namespace, None);
    assert_eq!(root.schema_version.unwrap().as_str(), "2.08");
}

#[test]
fn version_2_05_to_3_1_wraps_each_order_in_a_container() {
    let src = fixture("dobromyslov__commerceml-parser/bitrix-query-response-full.xml");
    let out = convert(&src, &["--schema", "3.1", "--encoding", "utf-8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, _, items) = inspect(&out.stdout);
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|i| matches!(i, Item::Container(c) if c.documents.len() == 1)));
}

#[test]
fn empty_answer_converts_to_an_empty_answer() {
    let src = fixture("dobromyslov__commerceml-parser/bitrix-query-response-empty.xml");
    let out = convert(&src, &["--schema", "2.05"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // windows-1251 is the default encoding.
    assert!(out
        .stdout
        .starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    let (root, items) = read_all(out.stdout.as_slice()).unwrap();
    assert!(items.is_empty());
    assert_eq!(root.generated_at.as_deref(), Some("2021-02-12T17:04:36"));
}

#[test]
fn xsd_strict_output_validates_with_xmllint() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("strict.xml");
    let src = fixture("carono__yii2-1c-exchange/from.xml");
    let out = convert(
        &src,
        &[
            "--schema",
            "2.10",
            "--encoding",
            "windows-1251",
            "--xsd-strict",
            "-o",
            out_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(fixture(
            "dobromyslov__commerceml-parser/commerceml-2.10.xsd",
        ))
        .arg(&out_path)
        .output()
        .expect("xmllint is required (apt-get install libxml2-utils)");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
}

#[test]
fn xsd_strict_needs_schema_2_10() {
    let src = fixture("carono__yii2-1c-exchange/from.xml");
    let out = convert(&src, &["--schema", "2.08", "--xsd-strict"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--schema 2.10"), "{}", stderr(&out));
}

#[test]
fn a_failing_conversion_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    // A truncated copy of a real file.
    let full = std::fs::read(fixture("carono__yii2-1c-exchange/to.xml")).unwrap();
    let broken = dir.path().join("broken.xml");
    std::fs::write(&broken, &full[..full.len() / 2]).unwrap();
    let out_path = dir.path().join("out.xml");
    let out = convert(
        &broken,
        &["--schema", "2.08", "-o", out_path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    // FILE:LINE:COL: message
    let prefix = format!("{}:", broken.display());
    let located = message
        .lines()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("{message}"));
    let rest = &located[located.find(&prefix).unwrap() + prefix.len()..];
    let mut parts = rest.splitn(3, ':');
    assert!(parts.next().unwrap().parse::<u64>().is_ok(), "{located}");
    assert!(parts.next().unwrap().parse::<u64>().is_ok(), "{located}");
    assert!(!out_path.exists());
    assert!(!dir.path().join("out.xml.partial").exists());
}

#[test]
fn bad_arguments_are_refused() {
    let src = fixture("carono__yii2-1c-exchange/to.xml");
    let out = convert(&src, &["--schema", "2.08", "--encoding", "koi8-r"]);
    assert_eq!(out.status.code(), Some(2));
    let out = convert(&src, &["--schema", "two"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a schema version"));
    let missing = fixture("no/such/file.xml");
    let out = convert(&missing, &["--schema", "2.08"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot open"), "{}", stderr(&out));
}

#[test]
fn a_large_file_streams_through_without_a_progress_bar_in_a_pipe() {
    use commerceml::{OutputEncoding, SchemaVersion, WriteOptions, Writer};
    // About 10 MB of orders: above the size that gets a progress bar on a terminal.
    let (_, items) = read_all(
        std::fs::File::open(fixture(
            "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
        ))
        .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.xml");
    let options = WriteOptions::new(SchemaVersion::v2_05(), OutputEncoding::Windows1251)
        .generated_at("2021-02-12T17:03:19");
    let file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    let mut w = Writer::new(file, options).unwrap();
    let mut written = 0;
    while std::fs::metadata(&big).unwrap().len() < 10 << 20 {
        for item in &items {
            w.write_item(item).unwrap();
            written += 1;
        }
    }
    w.finish().unwrap();
    let out_path = dir.path().join("out.xml");
    let out = convert(
        &big,
        &[
            "--schema",
            "3.1",
            "--encoding",
            "utf-8",
            "-o",
            out_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Only the summary line: no progress bar when standard error is not a terminal.
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(!message.contains('\r'));
    assert!(
        message.contains(&format!("{written} document(s)")),
        "{message}"
    );
    let reader = Reader::new(std::fs::File::open(&out_path).unwrap()).unwrap();
    let mut containers = 0;
    for item in reader {
        assert!(matches!(item.unwrap(), Item::Container(_)));
        containers += 1;
    }
    assert_eq!(containers, written);
}
