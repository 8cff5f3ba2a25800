//! Encoding detection: BOM, declaration, aliases, no declaration (UTF-8, falling back to
//! windows-1251), UTF-16 in both byte orders.

use std::path::Path;

use commerceml::read::read_all;
use commerceml::tags as t;
use commerceml::{Error, Item, Reader};

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const CP1251: &str = "carono__yii2-1c-exchange/to.xml";
const UTF8: &str = "alex8bits__php-commerceml/orders.xml";

/// The items of the windows-1251 twin, the reference for every variant below.
fn reference() -> Vec<Item> {
    read_all(&fixture(CP1251)[..]).expect("reference").1
}

/// The fixture's text (decoded) with its XML declaration replaced by `decl`.
fn with_declaration(decl: &str) -> String {
    let bytes = fixture(UTF8);
    let text = std::str::from_utf8(&bytes).expect("utf-8 fixture");
    let end = text.find("?>").expect("declaration") + 2;
    format!("{decl}{}", &text[end..])
}

fn items_of(bytes: &[u8]) -> (Vec<Item>, &'static str, Option<String>, bool) {
    let reader = Reader::new(bytes).expect("open");
    let enc = reader.encoding();
    let declared = reader.declared_encoding().map(str::to_owned);
    let bom = reader.has_bom();
    let items = reader.collect::<Result<Vec<_>, _>>().expect("items");
    (items, enc, declared, bom)
}

#[test]
fn utf8_with_bom() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(&fixture(UTF8));
    let (items, enc, _, bom) = items_of(&bytes);
    assert_eq!(enc, "UTF-8");
    assert!(bom);
    assert_eq!(items, reference());
}

#[test]
fn bom_wins_over_a_wrong_declaration() {
    let text = with_declaration("<?xml version=\"1.0\" encoding=\"windows-1251\"?>");
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(text.as_bytes());
    let (items, enc, declared, _) = items_of(&bytes);
    assert_eq!(enc, "UTF-8");
    assert_eq!(declared.as_deref(), Some("windows-1251"));
    assert_eq!(items, reference());
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if big_endian {
            &[0xFE, 0xFF]
        } else {
            &[0xFF, 0xFE]
        });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_both_byte_orders_with_and_without_bom() {
    let text = with_declaration("<?xml version=\"1.0\" encoding=\"UTF-16\"?>");
    for (be, bom, name) in [
        (false, true, "UTF-16LE"),
        (true, true, "UTF-16BE"),
        (false, false, "UTF-16LE"),
        (true, false, "UTF-16BE"),
    ] {
        let (items, enc, declared, has_bom) = items_of(&utf16(&text, be, bom));
        assert_eq!(enc, name);
        assert_eq!(has_bom, bom);
        assert_eq!(declared.as_deref(), Some("UTF-16"));
        assert_eq!(items, reference(), "{name} bom={bom}");
    }
}

#[test]
fn large_utf16_input_is_transcoded_in_a_stream() {
    // Many documents, so the transcoder refills many times and splits surrogate-free
    // Cyrillic text across chunk borders.
    let text = with_declaration("<?xml version=\"1.0\" encoding=\"UTF-16\"?>");
    let open_end = text.find(&format!("<{}>", t::DOCUMENT)).expect("document");
    let close = format!("</{}>", t::ROOT);
    let close_at = text.rfind(&close).expect("root end");
    let doc = &text[open_end..close_at];
    let big = format!("{}{}{}", &text[..open_end], doc.repeat(300), close);
    let bytes = utf16(&big, false, true);
    assert!(bytes.len() > 1 << 20);
    let (items, _, _, _) = items_of(&bytes);
    assert_eq!(items.len(), 300);
    let one = reference();
    assert!(items.iter().all(|i| *i == one[0]));
}

#[test]
fn windows_1251_aliases() {
    let original = fixture(CP1251);
    let text = encoding_rs::WINDOWS_1251
        .decode_without_bom_handling(&original)
        .0
        .into_owned();
    let end = text.find("?>").expect("declaration") + 2;
    for label in ["cp1251", "CP1251", "1251", "Windows-1251", "x-cp1251"] {
        let decl = format!("<?xml version=\"1.0\" encoding=\"{label}\"?>");
        let bytes = encoding_rs::WINDOWS_1251
            .encode(&format!("{decl}{}", &text[end..]))
            .0
            .into_owned();
        let (items, enc, declared, _) = items_of(&bytes);
        assert_eq!(enc, "windows-1251", "{label}");
        assert_eq!(declared.as_deref(), Some(label));
        assert_eq!(items, reference(), "{label}");
    }
}

#[test]
fn no_declaration_utf8_is_assumed() {
    let text = with_declaration("");
    let (items, enc, declared, _) = items_of(text.as_bytes());
    assert_eq!(enc, "UTF-8");
    assert_eq!(declared, None);
    assert_eq!(items, reference());
}

#[test]
fn no_declaration_invalid_utf8_falls_back_to_windows_1251() {
    let text = with_declaration("<?xml version=\"1.0\"?>");
    let bytes = encoding_rs::WINDOWS_1251.encode(&text).0.into_owned();
    let (items, enc, declared, _) = items_of(&bytes);
    assert_eq!(enc, "windows-1251");
    assert_eq!(declared, None);
    assert_eq!(items, reference());
}

#[test]
fn declared_utf8_with_windows_1251_bytes_is_an_encoding_error() {
    let text = with_declaration("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let bytes = encoding_rs::WINDOWS_1251.encode(&text).0.into_owned();
    // The root name itself is not valid UTF-8 here: nothing can be read.
    let e = match Reader::new(&bytes[..]) {
        Err(e) => e,
        Ok(r) => r.into_iter().find_map(Result::err).expect("an error"),
    };
    assert!(
        matches!(e, Error::Encoding { .. } | Error::NotCommerceMl { .. }),
        "{e}"
    );
}

#[test]
fn single_quoted_declaration_and_spaces() {
    let text = with_declaration("<?xml version='1.0' encoding = 'utf-8' ?>");
    let (items, enc, declared, _) = items_of(text.as_bytes());
    assert_eq!(enc, "UTF-8");
    assert_eq!(declared.as_deref(), Some("utf-8"));
    assert_eq!(items, reference());
}

#[test]
fn bytes_read_reports_progress() {
    let bytes = fixture(UTF8);
    let mut reader = Reader::new(&bytes[..]).expect("open");
    // The first 64 KiB (here: all of it) are peeked for the encoding.
    assert_eq!(reader.bytes_read(), bytes.len() as u64);
    while reader.next_item().expect("item").is_some() {}
    assert_eq!(reader.bytes_read(), bytes.len() as u64);
}
