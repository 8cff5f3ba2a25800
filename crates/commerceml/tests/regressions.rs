//! Inputs that once made the reader misbehave, kept so they never do again.

use commerceml::tags as t;
use commerceml::{Error, Reader};

fn first_error(bytes: &[u8]) -> Error {
    match Reader::new(bytes) {
        Err(e) => e,
        Ok(r) => r.into_iter().find_map(Result::err).expect("an error"),
    }
}

/// Found by the never-panics property: a UTF-16 byte order mark followed by an odd number
/// of bytes made the transcoder call encoding_rs's decoder again after it had reported the
/// end ("Must not use a decoder that has finished").
#[test]
fn utf16_bom_with_an_odd_tail_does_not_panic() {
    for bytes in [
        &b"\xff\xfe\xfd\xfc"[..],
        b"\xff\xfe\x3c",
        b"\xfe\xff\x00",
        b"\xff\xfe\x3c\x00\x61",
    ] {
        let e = first_error(bytes);
        assert!(
            matches!(
                e,
                Error::Encoding { .. }
                    | Error::Syntax { .. }
                    | Error::NotCommerceMl { .. }
                    | Error::UnexpectedEof { .. }
            ),
            "{bytes:?}: {e}"
        );
    }
}

/// A file cut inside a multi-byte character of a value used to report an encoding error;
/// the truth is that the input ended.
#[test]
fn cut_inside_a_character_is_unexpected_eof() {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><{r}><{c}>{v}",
        r = t::ROOT,
        c = t::COMMENT,
        v = t::ROLE_BUYER
    );
    let bytes = xml.as_bytes();
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(first_error(cut), Error::UnexpectedEof { .. }));
}
