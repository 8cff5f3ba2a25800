//! Checking and decoding the site's replies the way a strict 1C would
//! (PROTOCOL.md §1.1, §3.1, §4.2, §4.3, §6.3).

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1251};

use crate::error::{Error, Result};

/// One HTTP reply as received.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// The first line of a text reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `failure`.
    Failure,
    /// `progress`.
    Progress,
    /// `success`.
    Success,
}

/// A text reply: its status line and the lines after it (empty lines dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextReply {
    /// The first line.
    pub status: Status,
    /// The remaining non-empty lines, trimmed.
    pub lines: Vec<String>,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Rejects a non-200 status and an empty body.
pub fn check_http(mode: &str, reply: &Reply) -> Result<()> {
    if reply.status != 200 {
        return Err(Error::violation(
            mode,
            format!("HTTP status {} (1C expects 200)", reply.status),
        ));
    }
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::violation(mode, "empty body"));
    }
    Ok(())
}

/// The encoding named by the `charset` parameter of a `Content-Type`, if any.
pub fn header_charset(mode: &str, content_type: Option<&str>) -> Result<Option<&'static Encoding>> {
    let Some(ct) = content_type else {
        return Ok(None);
    };
    let Some(label) = ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"'))
    }) else {
        return Ok(None);
    };
    Encoding::for_label(label.as_bytes())
        .map(Some)
        .ok_or_else(|| Error::violation(mode, format!("unknown charset {label:?} in Content-Type")))
}

/// Decodes a plain-text reply: a leading UTF-8 BOM is tolerated (§6.3 rule 3) but must not
/// contradict the header; bytes must be valid in the header's charset.
pub fn decode_text(mode: &str, reply: &Reply) -> Result<String> {
    let declared = header_charset(mode, reply.content_type.as_deref())?;
    let (bytes, bom) = match reply.body.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, true),
        None => (reply.body.as_slice(), false),
    };
    if bom {
        if let Some(enc) = declared.filter(|e| *e != UTF_8) {
            return Err(Error::violation(
                mode,
                format!(
                    "UTF-8 BOM in a reply whose Content-Type says {}",
                    enc.name()
                ),
            ));
        }
    }
    let encoding = match (declared, bom) {
        (Some(e), _) => e,
        (None, true) => UTF_8,
        // No charset at all: ASCII or UTF-8 is what every site sends; fall back like Bitrix.
        (None, false) => {
            if std::str::from_utf8(bytes).is_ok() {
                UTF_8
            } else {
                WINDOWS_1251
            }
        }
    };
    decode_strict(mode, encoding, bytes)
}

/// Parses a reply whose first line must be `success`, `progress` or `failure`.
pub fn parse_text(mode: &str, reply: &Reply) -> Result<TextReply> {
    check_http(mode, reply)?;
    let text = decode_text(mode, reply)?;
    text_reply(mode, &text)
}

/// Splits decoded text into a [`TextReply`].
pub fn text_reply(mode: &str, text: &str) -> Result<TextReply> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().trim();
    let status = match first {
        "success" => Status::Success,
        "progress" => Status::Progress,
        "failure" => Status::Failure,
        other => {
            return Err(Error::violation(
                mode,
                format!("first line {other:?} is not success/progress/failure"),
            ))
        }
    };
    let lines = lines
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(TextReply { status, lines })
}

/// Decodes an XML reply after checking that the BOM, the XML declaration and the
/// `Content-Type` charset agree with each other and with the bytes (§6.3 rule 1).
/// With `require_utf8_bom`, UTF-8 without a BOM is refused as one 1C build did (§4.3).
pub fn decode_xml(mode: &str, reply: &Reply, require_utf8_bom: bool) -> Result<String> {
    let header = header_charset(mode, reply.content_type.as_deref())?;
    let (bom, rest) = match Encoding::for_bom(&reply.body) {
        Some((enc, len)) => (Some(enc), &reply.body[len..]),
        None => (None, reply.body.as_slice()),
    };
    let declaration = declared_encoding(mode, bom, rest)?;
    let family = |e: &'static Encoding| {
        if e == UTF_16LE || e == UTF_16BE {
            "UTF-16"
        } else {
            e.name()
        }
    };
    if let (Some(h), Some(d)) = (header, declaration) {
        if family(h) != family(d) {
            return Err(Error::violation(
                mode,
                format!(
                    "Content-Type charset {} disagrees with the XML declaration {}",
                    h.name(),
                    d.name()
                ),
            ));
        }
    }
    if let Some(b) = bom {
        for named in [header, declaration].into_iter().flatten() {
            if family(named) != family(b) {
                return Err(Error::violation(
                    mode,
                    format!("{} BOM but the reply says {}", b.name(), named.name()),
                ));
            }
        }
    }
    let encoding = bom.or(declaration).or(header).unwrap_or(UTF_8);
    if encoding == UTF_8 && bom.is_none() && require_utf8_bom {
        return Err(Error::violation(mode, "UTF-8 XML without a BOM"));
    }
    if encoding == WINDOWS_1251 && looks_like_utf8(rest) {
        return Err(Error::violation(
            mode,
            "the reply says windows-1251 but the bytes are UTF-8",
        ));
    }
    decode_strict(mode, encoding, rest)
}

/// The encoding in the XML declaration, if the document has one with an `encoding` attribute.
fn declared_encoding(
    mode: &str,
    bom: Option<&'static Encoding>,
    bytes: &[u8],
) -> Result<Option<&'static Encoding>> {
    // The declaration is ASCII; for UTF-16 look at the decoded head.
    let head: String = match bom {
        Some(e) if e == UTF_16LE || e == UTF_16BE => {
            let take = bytes.len().min(400);
            e.decode_without_bom_handling(&bytes[..take]).0.into_owned()
        }
        _ => String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
    };
    let head = head.trim_start();
    if !head.starts_with("<?xml") {
        return Ok(None);
    }
    let Some(end) = head.find("?>") else {
        return Err(Error::violation(mode, "unterminated XML declaration"));
    };
    let decl = &head[..end];
    let Some(pos) = decl.find("encoding") else {
        return Ok(None);
    };
    let after = decl[pos + "encoding".len()..].trim_start();
    let Some(after) = after.strip_prefix('=') else {
        return Err(Error::violation(mode, "malformed XML declaration"));
    };
    let after = after.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
    let Some(quote) = quote else {
        return Err(Error::violation(mode, "malformed XML declaration"));
    };
    let value = after[1..].split(quote).next().unwrap_or_default();
    Encoding::for_label(value.as_bytes())
        .map(Some)
        .ok_or_else(|| Error::violation(mode, format!("unknown XML encoding {value:?}")))
}

/// Whether bytes contain multi-byte UTF-8 sequences and are valid UTF-8 throughout: real
/// windows-1251 Cyrillic text practically never is.
fn looks_like_utf8(bytes: &[u8]) -> bool {
    !bytes.is_ascii() && std::str::from_utf8(bytes).is_ok()
}

fn decode_strict(mode: &str, encoding: &'static Encoding, bytes: &[u8]) -> Result<String> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| {
            Error::violation(mode, format!("the bytes are not valid {}", encoding.name()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(ct: Option<&str>, body: &[u8]) -> Reply {
        Reply {
            status: 200,
            content_type: ct.map(str::to_owned),
            body: body.to_vec(),
        }
    }

    #[test]
    fn text_reply_statuses_and_lines() {
        let r = parse_text("import", &reply(None, b"success\nmsg one\n\nmsg two\n")).unwrap();
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.lines, vec!["msg one", "msg two"]);
        let r = parse_text("import", &reply(None, b"\xEF\xBB\xBFprogress\n")).unwrap();
        assert_eq!(r.status, Status::Progress);
        let e = parse_text("success", &reply(None, b"error\n")).unwrap_err();
        assert!(e.is_violation(), "{e}");
        let e = parse_text("init", &reply(None, b"  \n")).unwrap_err();
        assert!(e.to_string().contains("empty body"), "{e}");
    }

    #[test]
    fn text_reply_in_windows_1251() {
        let (bytes, _, _) = WINDOWS_1251.encode("failure\nОшибка авторизации.");
        let r = parse_text(
            "checkauth",
            &reply(Some("text/html; charset=windows-1251"), &bytes),
        )
        .unwrap();
        assert_eq!(r.status, Status::Failure);
        assert_eq!(r.lines, vec!["Ошибка авторизации."]);
    }

    #[test]
    fn bom_against_windows_1251_header_is_a_violation() {
        let e = parse_text(
            "checkauth",
            &reply(
                Some("text/html; charset=windows-1251"),
                b"\xEF\xBB\xBFsuccess\n",
            ),
        )
        .unwrap_err();
        assert!(e.is_violation());
    }

    #[test]
    fn xml_charset_agreement() {
        let xml = "<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>Заказ</a>";
        let (cp, _, _) = WINDOWS_1251.encode(xml);
        let ok = decode_xml(
            "query",
            &reply(Some("application/xml; charset=windows-1251"), &cp),
            false,
        )
        .unwrap();
        assert!(ok.contains("Заказ"));
        // Header says UTF-8, declaration says windows-1251.
        let e = decode_xml(
            "query",
            &reply(Some("application/xml; charset=utf-8"), &cp),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("disagrees"), "{e}");
        // Declaration and header say windows-1251, bytes are UTF-8.
        let e = decode_xml(
            "query",
            &reply(
                Some("application/xml; charset=windows-1251"),
                xml.as_bytes(),
            ),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bytes are UTF-8"), "{e}");
        // Declaration says UTF-8, bytes are windows-1251.
        let xml8 = xml.replace("windows-1251", "UTF-8");
        let (cp8, _, _) = WINDOWS_1251.encode(&xml8);
        let e = decode_xml("query", &reply(Some("text/xml"), &cp8), false).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
        // BOM contradicting the declaration.
        let mut bom = UTF8_BOM.to_vec();
        bom.extend_from_slice(xml.as_bytes());
        let e = decode_xml("query", &reply(None, &bom), false).unwrap_err();
        assert!(e.to_string().contains("BOM"), "{e}");
        // UTF-8 with BOM, header UTF-8: fine; without BOM only when not required.
        let mut good = UTF8_BOM.to_vec();
        good.extend_from_slice(xml8.as_bytes());
        decode_xml(
            "query",
            &reply(Some("text/xml; charset=UTF-8"), &good),
            true,
        )
        .unwrap();
        decode_xml(
            "query",
            &reply(Some("text/xml; charset=UTF-8"), xml8.as_bytes()),
            false,
        )
        .unwrap();
        let e = decode_xml(
            "query",
            &reply(Some("text/xml; charset=UTF-8"), xml8.as_bytes()),
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("without a BOM"), "{e}");
    }
}
