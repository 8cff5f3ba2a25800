//! Hostile input: each case gives the expected error variant, quickly, without a panic and
//! without buffering the input.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use commerceml::read::{Limits, ReadOptions};
use commerceml::tags as t;
use commerceml::{Error, Reader};

/// Reads everything; returns the first error (panics if there is none).
fn first_error(input: impl Read, options: ReadOptions) -> Error {
    match Reader::with_options(input, options) {
        Err(e) => e,
        Ok(mut r) => loop {
            match r.next_item() {
                Err(e) => break e,
                Ok(Some(_)) => {}
                Ok(None) => panic!("read without an error"),
            }
        },
    }
}

fn err(bytes: &[u8]) -> Error {
    first_error(bytes, ReadOptions::default())
}

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn root_open() -> String {
    format!("<{} {}=\"2.05\">", t::ROOT, t::ATTR_SCHEMA_VERSION)
}

fn root_close() -> String {
    format!("</{}>", t::ROOT)
}

/// A reader producing `head`, then `fill` repeated `count` times, then `tail`, counting how
/// many bytes were taken — a 100 MB input that never exists in memory.
struct Generated {
    parts: [Vec<u8>; 2],
    fill: u8,
    fill_left: u64,
    stage: usize,
    offset: usize,
    taken: u64,
}

impl Generated {
    fn new(head: &str, fill: u8, count: u64, tail: &str) -> Self {
        Self {
            parts: [head.as_bytes().to_vec(), tail.as_bytes().to_vec()],
            fill,
            fill_left: count,
            stage: 0,
            offset: 0,
            taken: 0,
        }
    }
}

impl Read for &mut Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.stage {
            0 | 2 => {
                let part = &self.parts[self.stage / 2];
                let n = out.len().min(part.len() - self.offset);
                out[..n].copy_from_slice(&part[self.offset..self.offset + n]);
                self.offset += n;
                if self.offset == part.len() {
                    self.stage += 1;
                    self.offset = 0;
                }
                if n == 0 && self.stage == 3 {
                    return Ok(0);
                }
                n
            }
            1 => {
                let n = (out.len() as u64).min(self.fill_left) as usize;
                out[..n].fill(self.fill);
                self.fill_left -= n as u64;
                if self.fill_left == 0 {
                    self.stage = 2;
                }
                n
            }
            _ => 0,
        };
        self.taken += n as u64;
        Ok(n)
    }
}

const QUICK: Duration = Duration::from_secs(5);

#[test]
fn xxe_is_refused() {
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{}&xxe;{}",
        root_open(),
        root_close()
    );
    let e = err(xml.as_bytes());
    assert!(matches!(e, Error::Dtd { .. }), "{e}");
    assert_eq!(e.position().map(|p| p.line), Some(2));
}

#[test]
fn billion_laughs_is_refused() {
    let mut xml = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        xml.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    xml.push_str("]>");
    xml.push_str(&format!("{}&lol9;{}", root_open(), root_close()));
    let start = Instant::now();
    let e = err(xml.as_bytes());
    assert!(matches!(e, Error::Dtd { .. }), "{e}");
    assert!(start.elapsed() < QUICK);
}

#[test]
fn bare_entity_declaration_and_undefined_entities_are_refused() {
    let e = err(format!("<!ENTITY a \"b\">{}{}", root_open(), root_close()).as_bytes());
    assert!(matches!(e, Error::Dtd { .. }), "{e}");
    let e = err(format!(
        "{}<{id}>&xxe;</{id}>{}",
        root_open(),
        root_close(),
        id = t::DOCUMENT
    )
    .as_bytes());
    match e {
        Error::Syntax { message, .. } => assert!(message.contains("xxe"), "{message}"),
        other => panic!("{other}"),
    }
}

#[test]
fn truncated_files_give_unexpected_eof_at_every_cut() {
    for name in [
        "carono__yii2-1c-exchange/from.xml",
        "alex8bits__php-commerceml/orders.xml",
        "irpsv__commerceml/bitrix-module-6-documents-2.xml",
    ] {
        let bytes = fixture(name);
        // Cut anywhere before the end of the root end tag (the last `</…>`).
        let root_end = {
            let lt = bytes.windows(2).rposition(|w| w == b"</").expect("end tag");
            lt + bytes[lt..].iter().position(|&b| b == b'>').expect("'>'") + 1
        };
        let step = (bytes.len() / 2000).max(1);
        for cut in (0..root_end).step_by(step) {
            let e = err(&bytes[..cut]);
            match (&e, cut) {
                (Error::UnexpectedEof { position }, _) => {
                    assert!(position.offset <= cut as u64, "{name} cut {cut}: {e}");
                }
                (Error::NotCommerceMl { .. }, c) if c < 64 => {}
                _ => panic!("{name} cut at {cut}: {e}"),
            }
        }
        // The complete file reads.
        assert!(Reader::new(&bytes[..]).is_ok());
    }
}

#[test]
fn invalid_utf8_is_an_encoding_error_with_position() {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n<{d}>\n<{id}>ab",
        root_open(),
        d = t::DOCUMENT,
        id = t::ID
    )
    .into_bytes();
    xml.extend_from_slice(b"\xff\xfe");
    xml.extend_from_slice(format!("</{}></{}>{}", t::ID, t::DOCUMENT, root_close()).as_bytes());
    match err(&xml) {
        Error::Encoding { position, encoding } => {
            assert_eq!(encoding, "UTF-8");
            assert_eq!(position.line, 4);
            let id_text = xml.iter().position(|&b| b == 0xff).expect("bad byte");
            assert_eq!(position.offset, id_text as u64);
            assert!(position.path.ends_with(t::ID), "{}", position.path);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn invalid_utf8_in_an_unknown_element_name_is_an_encoding_error() {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}<a",
        root_open()
    )
    .into_bytes();
    xml.extend_from_slice(b"\xc3\x28/>");
    xml.extend_from_slice(root_close().as_bytes());
    assert!(matches!(err(&xml), Error::Encoding { .. }));
}

#[test]
fn every_windows_1251_byte_decodes() {
    // WHATWG windows-1251 maps all 128 high bytes, so no byte is invalid in it; the value
    // must come out as encoding_rs decodes it.
    let high: Vec<u8> = (0x80..=0xffu8).collect();
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"windows-1251\"?>{}<{d}><{c}>",
        root_open(),
        d = t::DOCUMENT,
        c = t::COMMENT
    );
    let tail = format!("</{}></{}>{}", t::COMMENT, t::DOCUMENT, root_close());
    let mut xml = encoding_rs::WINDOWS_1251.encode(&head).0.into_owned();
    xml.extend_from_slice(&high);
    xml.extend_from_slice(&encoding_rs::WINDOWS_1251.encode(&tail).0);
    let (_, items) = commerceml::read::read_all(&xml[..]).expect("read");
    let commerceml::Item::Document(d) = &items[0] else {
        panic!("{items:?}")
    };
    let want = encoding_rs::WINDOWS_1251
        .decode_without_bom_handling(&high)
        .0;
    assert_eq!(d.comment.as_deref(), Some(&*want));
}

#[test]
fn deep_nesting_fails_fast_on_the_depth_limit() {
    let mut g = Generated::new(&root_open(), 0, 0, &"<a>".repeat(100_000));
    let start = Instant::now();
    let e = first_error(&mut g, ReadOptions::default());
    match e {
        Error::Limit { what, limit, .. } => {
            assert_eq!(what, "nesting depth");
            assert_eq!(limit, 64);
        }
        other => panic!("{other}"),
    }
    assert!(start.elapsed() < QUICK);
}

#[test]
fn deep_nesting_with_a_raised_limit_does_not_overflow_the_stack() {
    // 100,000 open elements, then the input ends: no recursion may follow the depth.
    let deep = "<a>".repeat(100_000);
    let options = ReadOptions::with_limits(Limits::default().with_max_depth(200_000));
    let e = first_error(format!("{}{deep}", root_open()).as_bytes(), options.clone());
    assert!(matches!(e, Error::UnexpectedEof { .. }), "{e}");
    // Also inside a document, where the unknown child becomes a generic element.
    let e = first_error(
        format!("{}<{}>{deep}", root_open(), t::DOCUMENT).as_bytes(),
        options,
    );
    assert!(matches!(e, Error::UnexpectedEof { .. }), "{e}");
}

#[test]
fn hundred_megabyte_attribute_fails_fast_without_buffering() {
    let head = format!("{}<{} x=\"", root_open(), t::DOCUMENT);
    let mut g = Generated::new(&head, b'x', 100 << 20, "\"/>");
    let start = Instant::now();
    let e = first_error(&mut g, ReadOptions::default());
    match e {
        Error::Limit {
            what,
            limit,
            position,
        } => {
            assert_eq!(what, "attribute value length");
            assert_eq!(limit, 64 << 10);
            assert_eq!(position.offset, head.len() as u64);
        }
        other => panic!("{other}"),
    }
    assert!(start.elapsed() < QUICK);
    assert!(g.taken < 1 << 20, "read {} bytes", g.taken);
}

#[test]
fn hundred_megabyte_attribute_on_the_root_fails_fast() {
    let head = format!("<{} {}=\"", t::ROOT, t::ATTR_SCHEMA_VERSION);
    let mut g = Generated::new(&head, b'1', 100 << 20, "\">");
    let e = first_error(&mut g, ReadOptions::default());
    assert!(
        matches!(
            e,
            Error::Limit {
                what: "attribute value length",
                ..
            }
        ),
        "{e}"
    );
    assert!(g.taken < 1 << 20, "read {} bytes", g.taken);
}

#[test]
fn hundred_megabyte_text_and_name_fail_fast() {
    let head = format!("{}<{}>", root_open(), t::COMMENT);
    let mut g = Generated::new(&head, b'y', 100 << 20, "");
    let e = first_error(&mut g, ReadOptions::default());
    assert!(
        matches!(
            e,
            Error::Limit {
                what: "text length",
                ..
            }
        ),
        "{e}"
    );
    assert!(g.taken < 4 << 20, "read {} bytes", g.taken);

    let mut g = Generated::new(&format!("{}<", root_open()), b'n', 100 << 20, "/>");
    let e = first_error(&mut g, ReadOptions::default());
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    assert!(g.taken < 1 << 20, "read {} bytes", g.taken);

    // A tag that is only whitespace and attributes without quotes.
    let mut g = Generated::new(&format!("{}<a", root_open()), b' ', 100 << 20, "/>");
    let e = first_error(&mut g, ReadOptions::default());
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    assert!(g.taken < 1 << 20, "read {} bytes", g.taken);

    // A comment that never ends.
    let mut g = Generated::new(&format!("{}<!--", root_open()), b'-', 100 << 20, "");
    let e = first_error(&mut g, ReadOptions::default());
    assert!(matches!(e, Error::Limit { .. }), "{e}");
}

#[test]
fn limits_are_configurable() {
    let xml = format!("{}<a b=\"12345\"/>{}", root_open(), root_close());
    let small = ReadOptions::with_limits(Limits::default().with_max_attribute_len(4));
    assert!(matches!(
        first_error(xml.as_bytes(), small),
        Error::Limit {
            what: "attribute value length",
            limit: 4,
            ..
        }
    ));
    let xml = format!(
        "{}<a b=\"1\" c=\"2\" d=\"3\"/>{}",
        root_open(),
        root_close()
    );
    let few = ReadOptions::with_limits(Limits::default().with_max_attributes(2));
    assert!(matches!(
        first_error(xml.as_bytes(), few),
        Error::Limit {
            what: "attribute count",
            limit: 2,
            ..
        }
    ));
    let xml = format!("{}<abcdefgh/>{}", root_open(), root_close());
    let short = ReadOptions::with_limits(Limits::default().with_max_name_len(4));
    // The root name itself is longer than 4 bytes.
    assert!(matches!(
        first_error(xml.as_bytes(), short),
        Error::Limit { .. }
    ));
    let xml = format!("{}<a>{}</a>{}", root_open(), "z".repeat(100), root_close());
    let text = ReadOptions::with_limits(Limits::default().with_max_text_len(10));
    assert!(matches!(
        first_error(xml.as_bytes(), text),
        Error::Limit {
            what: "text length",
            limit: 10,
            ..
        }
    ));
    let xml = format!("{}<a><b><c/></b></a>{}", root_open(), root_close());
    let shallow = ReadOptions::with_limits(Limits::default().with_max_depth(3));
    assert!(matches!(
        first_error(xml.as_bytes(), shallow),
        Error::Limit {
            what: "nesting depth",
            limit: 3,
            ..
        }
    ));
    let ok = ReadOptions::with_limits(Limits::default().with_max_depth(4));
    assert!(Reader::with_options(xml.as_bytes(), ok)
        .expect("open")
        .all(|i| i.is_ok()));
}

#[test]
fn garbage_bytes_give_clear_errors() {
    let cases: [&[u8]; 9] = [
        b"",
        b"\x00\x01\x02\x03garbage",
        b"not xml at all",
        b"<html><body>hello</body></html>",
        b"\xff\xfe\xfd\xfc",
        b"<<<<>>>>",
        b"<?xml version=\"1.0\"?>",
        b"<a></b>",
        b"\xef\xbb\xbf",
    ];
    for bytes in cases {
        let e = err(bytes);
        assert!(
            matches!(
                e,
                Error::Syntax { .. }
                    | Error::NotCommerceMl { .. }
                    | Error::UnexpectedEof { .. }
                    | Error::Encoding { .. }
            ),
            "{bytes:?}: {e}"
        );
        // Every message says where.
        assert!(e.position().is_some(), "{bytes:?}: {e}");
    }
}

#[test]
fn mismatched_end_tag_names_both_tags_and_position() {
    let xml = format!(
        "{}\n<{d}>\n</{id}>{}",
        root_open(),
        root_close(),
        d = t::DOCUMENT,
        id = t::ID
    );
    match err(xml.as_bytes()) {
        Error::Syntax { position, message } => {
            assert_eq!((position.line, position.column), (3, 1));
            assert!(
                message.contains(t::DOCUMENT) && message.contains(t::ID),
                "{message}"
            );
            assert!(position.path.ends_with(t::DOCUMENT), "{}", position.path);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn content_after_the_root_is_refused() {
    let xml = format!("{}{}<a/>", root_open(), root_close());
    assert!(matches!(err(xml.as_bytes()), Error::Syntax { .. }));
    let xml = format!("{}{} trailing", root_open(), root_close());
    assert!(matches!(err(xml.as_bytes()), Error::Syntax { .. }));
    // Whitespace and comments after the root are fine.
    let xml = format!("{}{}\n<!-- end -->\n", root_open(), root_close());
    let r = Reader::new(xml.as_bytes()).expect("open");
    assert_eq!(r.count(), 0);
}

#[test]
fn bad_numbers_and_booleans_are_value_errors_with_the_path() {
    let xml = format!(
        "{}\n<{d}>\n  <{s}>12,3.4x</{s}>\n</{d}>{}",
        root_open(),
        root_close(),
        d = t::DOCUMENT,
        s = t::SUM
    );
    match err(xml.as_bytes()) {
        Error::Value { position, message } => {
            assert_eq!((position.line, position.column), (3, 3));
            assert!(position
                .path
                .ends_with(&format!("{}/{}", t::DOCUMENT, t::SUM)));
            assert!(message.contains("12,3.4x"), "{message}");
        }
        other => panic!("{other}"),
    }
    let xml = format!(
        "{}<{d}><{m}>perhaps</{m}></{d}>{}",
        root_open(),
        root_close(),
        d = t::DOCUMENT,
        m = t::DELETION_MARK
    );
    assert!(matches!(err(xml.as_bytes()), Error::Value { .. }));
}

#[test]
fn invalid_character_references_are_refused() {
    for bad in ["&#0;", "&#xD800;", "&#99999999999;", "& ", "&amp"] {
        let xml = format!("{}<a>{bad}</a>{}", root_open(), root_close());
        assert!(matches!(err(xml.as_bytes()), Error::Syntax { .. }), "{bad}");
    }
}

#[test]
fn wrong_root_is_not_commerceml() {
    match err(b"<?xml version=\"1.0\"?><catalog/>") {
        Error::NotCommerceMl { message, .. } => assert!(message.contains("catalog")),
        other => panic!("{other}"),
    }
}

#[test]
fn unsupported_encodings_are_named() {
    for label in ["UTF-32", "Shift_JIS", "no-such-encoding"] {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"{label}\"?>{}{}",
            root_open(),
            root_close()
        );
        match err(xml.as_bytes()) {
            Error::UnsupportedEncoding(l) => assert_eq!(l, label),
            other => panic!("{label}: {other}"),
        }
    }
}

#[test]
fn invalid_utf16_is_an_encoding_error() {
    let mut bytes = vec![0xff, 0xfe];
    for u in format!("{}<a>", root_open()).encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    bytes.extend_from_slice(&0xDC00u16.to_le_bytes()); // lone low surrogate
    for u in format!("</a>{}", root_close()).encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let e = err(&bytes);
    assert!(
        matches!(
            e,
            Error::Encoding {
                encoding: "UTF-16LE",
                ..
            }
        ),
        "{e}"
    );
}
