//! `obmen validate` as a user runs it: the built binary on real fixtures, on an unbalanced
//! document and on broken files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use commerceml::tags as t;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    assert!(dir.join("README.md").is_file(), "{}", dir.display());
    dir
}

fn validate(files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obmen"))
        .arg("validate")
        .args(files)
        .output()
        .expect("run obmen")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn order_fixtures_validate_with_their_summary() {
    let cases = [
        (
            "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
            "schema 2.05, encoding windows-1251, namespace (none), 2 documents, 0 containers",
        ),
        (
            "dobromyslov__commerceml-parser/bitrix-query-response-empty.xml",
            "schema 2.05, encoding windows-1251, namespace (none), 0 documents, 0 containers",
        ),
        (
            "carono__yii2-1c-exchange/from.xml",
            "schema 2.03, encoding windows-1251, namespace (none), 1 documents, 0 containers",
        ),
        (
            "carono__yii2-1c-exchange/to.xml",
            "schema 2.03, encoding windows-1251, namespace (none), 1 documents, 0 containers",
        ),
        (
            "alex8bits__php-commerceml/orders.xml",
            "schema 2.03, encoding UTF-8, namespace (none), 1 documents, 0 containers",
        ),
        (
            "arsengoian__commerce-ml/to.xml",
            "schema 2.03, encoding windows-1251, namespace (none), 1 documents, 0 containers",
        ),
        (
            "irpsv__commerceml/off-doc-1c-orders.xml",
            "schema 2.03, encoding UTF-8, namespace (none), 3 documents, 0 containers",
        ),
        (
            "irpsv__commerceml/bitrix-module-6-documents-2.xml",
            "schema 3.1, encoding UTF-8, namespace urn:1C.ru:commerceml_3, 4 documents, 4 containers",
        ),
    ];
    let paths: Vec<PathBuf> = cases.iter().map(|(f, _)| fixtures().join(f)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = validate(&refs);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains("warning"), "{stdout}");
    for ((_, summary), path) in cases.iter().zip(&paths) {
        let line = format!("{}: {summary}", path.display());
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in\n{stdout}"
        );
    }
}

#[test]
fn catalog_and_counterparty_files_validate() {
    let files = [
        "ArgentCrusade__commerceml/contractors-example.xml",
        "bigperson__exchange1c/import.xml",
        "stee1cat__1c-exchange/import___29d3f7f0-36dd-4eea-a06c-4c325bed4285.xml",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| fixtures().join(f)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = validate(&refs);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("namespace urn:1C.ru:commerceml_210"),
        "{stdout}"
    );
    assert!(stdout.contains("counterparties"), "{stdout}");
    assert!(stdout.contains("other elements"), "{stdout}");
}

fn order(number: &str, sum: &str, line_sums: &[&str]) -> String {
    let lines: String = line_sums
        .iter()
        .map(|s| {
            format!(
                "<{l}><{id}>x</{id}><{su}>{s}</{su}></{l}>",
                l = t::LINE,
                id = t::ID,
                su = t::SUM
            )
        })
        .collect();
    format!(
        "  <{d}>\n    <{n}>{number}</{n}>\n    <{su}>{sum}</{su}>\n    <{ls}>{lines}</{ls}>\n  </{d}>\n",
        d = t::DOCUMENT,
        n = t::NUMBER,
        su = t::SUM,
        ls = t::LINES
    )
}

#[test]
fn unbalanced_document_gives_a_warning_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unbalanced.xml");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{r} {v}=\"2.08\">\n{}{}</{r}>\n",
        order("A-1", "300.00", &["100", "200.00"]),
        order("A-2", "300", &["100", "150", "-10"]),
        r = t::ROOT,
        v = t::ATTR_SCHEMA_VERSION
    );
    std::fs::write(&path, xml).expect("write");
    let out = validate(&[&path]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "warnings do not fail: {stdout}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(": warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stdout}");
    let expected_prefix = format!(
        "{}:8:3: warning: document {} A-2",
        path.display(),
        t::NUMBER
    );
    assert!(warnings[0].starts_with(&expected_prefix), "{stdout}");
    assert!(
        warnings[0].contains("240") && warnings[0].contains("300"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 documents, 0 containers, 1 warnings"),
        "{stdout}"
    );
}

#[test]
fn broken_file_exits_1_with_file_line_col() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.xml");
    std::fs::write(
        &broken,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{r}>\n  <{d}>\n  </{n}>\n</{r}>\n",
            r = t::ROOT,
            d = t::DOCUMENT,
            n = t::NUMBER
        ),
    )
    .expect("write");
    let good = fixtures().join("carono__yii2-1c-exchange/to.xml");
    let out = validate(&[&good, &broken]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let prefix = format!("{}:4:3: ", broken.display());
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
    // The good file is still reported.
    assert!(
        text(&out.stdout).contains("1 documents"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn truncated_and_missing_files_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes =
        std::fs::read(fixtures().join("alex8bits__php-commerceml/orders.xml")).expect("fixture");
    let cut = dir.path().join("cut.xml");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = validate(&[&cut]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:", cut.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unexpected end of input"), "{stderr}");
    let parts: Vec<&str> = stderr.trim_end().splitn(4, ':').collect();
    assert!(
        parts[1].parse::<u64>().is_ok() && parts[2].parse::<u64>().is_ok(),
        "{stderr}"
    );

    let missing = dir.path().join("missing.xml");
    let out = validate(&[&missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with(&format!("{}:1:1: ", missing.display())));
}
