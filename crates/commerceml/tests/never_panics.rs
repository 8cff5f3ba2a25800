//! Property: no input makes the reader panic — arbitrary bytes, XML-like token soup, and
//! mutated real fixtures, with default and with tiny limits. Errors are fine; every error
//! that comes from the input carries a position.

use std::path::Path;

use commerceml::read::{Limits, ReadOptions};
use commerceml::tags as t;
use commerceml::{Error, Reader};
use proptest::prelude::*;

fn run(bytes: &[u8], options: ReadOptions) {
    let result = Reader::with_options(bytes, options).and_then(|mut r| {
        let mut n = 0usize;
        while r.next_item()?.is_some() {
            n += 1;
        }
        assert!(r.next_item().expect("fused").is_none());
        assert!(r.bytes_read() <= bytes.len() as u64);
        Ok(n)
    });
    if let Err(e) = result {
        let _ = e.to_string();
        match e {
            Error::Io(_) | Error::UnsupportedEncoding(_) => {}
            other => assert!(other.position().is_some(), "{other}"),
        }
    }
}

fn tiny() -> ReadOptions {
    ReadOptions::with_limits(
        Limits::default()
            .with_max_depth(4)
            .with_max_name_len(8)
            .with_max_text_len(16)
            .with_max_attribute_len(8)
            .with_max_attributes(2),
    )
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    [
        "carono__yii2-1c-exchange/from.xml",
        "alex8bits__php-commerceml/orders.xml",
        "irpsv__commerceml/bitrix-module-6-documents-2.xml",
        "dobromyslov__commerceml-parser/bitrix-query-response-full.xml",
        "ArgentCrusade__commerceml/contractors-example.xml",
    ]
    .iter()
    .map(|n| std::fs::read(dir.join(n)).expect("fixture"))
    .collect()
}

fn token() -> impl Strategy<Value = String> {
    let names = vec![
        t::ROOT,
        t::DOCUMENT,
        t::CONTAINER,
        t::COUNTERPARTIES,
        t::COUNTERPARTY,
        t::LINES,
        t::LINE,
        t::SUM,
        t::UNIT,
        t::BASE_UNIT,
        t::REQUISITE,
        t::SUBORDINATES,
        t::SUBORDINATE,
        t::ID,
        t::DELETION_MARK,
        "a",
        "x:y",
    ];
    prop_oneof![
        prop::sample::select(names.clone()).prop_map(|n| format!("<{n}>")),
        prop::sample::select(names.clone()).prop_map(|n| format!("</{n}>")),
        prop::sample::select(names).prop_map(|n| format!("<{n} a=\"1\"/>")),
        prop::sample::select(vec![
            "<",
            ">",
            "/>",
            "</",
            "&amp;",
            "&#",
            "&#x20BD;",
            "&",
            ";",
            "\"",
            "'",
            "=",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<?",
            "?>",
            "<!DOCTYPE",
            " ",
            "\n",
            "\r\n",
            "12.5",
            "true",
            "\u{feff}",
            "\u{20bd}",
            "\u{0416}",
            "\0",
        ])
        .prop_map(str::to_owned),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        run(&bytes, ReadOptions::default());
        run(&bytes, tiny());
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix(bytes in prop::collection::vec(any::<u8>(), 0..1024), bom in 0..4usize) {
        let mut input = match bom {
            0 => vec![0xEF, 0xBB, 0xBF],
            1 => vec![0xFF, 0xFE],
            2 => vec![0xFE, 0xFF],
            _ => Vec::new(),
        };
        input.extend_from_slice(format!("<{}>", t::ROOT).as_bytes());
        input.extend_from_slice(&bytes);
        run(&input, ReadOptions::default());
    }

    #[test]
    fn token_soup(tokens in prop::collection::vec(token(), 0..64)) {
        let text = tokens.concat();
        run(text.as_bytes(), ReadOptions::default());
        run(text.as_bytes(), tiny());
        let cp = encoding_rs::WINDOWS_1251.encode(&text).0;
        run(&cp, ReadOptions::default());
    }

    #[test]
    fn mutated_fixtures(
        which in 0..5usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4u8, any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = fixtures()[which].clone();
        for (at, op, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => { bytes.remove(i); }
                _ => {
                    // Duplicate a short run (often a whole tag).
                    let end = (i + usize::from(byte % 32)).min(bytes.len());
                    let run: Vec<u8> = bytes[i..end].to_vec();
                    bytes.splice(i..i, run);
                }
            }
        }
        if truncate && !bytes.is_empty() {
            bytes.truncate(cut.index(bytes.len()));
        }
        run(&bytes, ReadOptions::default());
        run(&bytes, tiny());
    }
}
