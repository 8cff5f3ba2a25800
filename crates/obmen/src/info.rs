//! `mode=info`: the lookup lists 1C uses to build its mapping tables (PROTOCOL.md §4.7) —
//! statuses from the status mapping, payment systems and delivery services from the config.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use commerceml::tags as t;
use exchange::settings::Encoding;

use crate::config::PaymentKind;
use crate::startup::App;

// `ТипОплаты` values as the Bitrix module writes them (wire values, not element names).
const PAYMENT_TYPE_CASH: &str = "Наличная оплата";
const PAYMENT_TYPE_CASHLESS: &str = "Безналичная оплата";
const PAYMENT_TYPE_ACQUIRING: &str = "Эквайринговая оплата";

/// The `<Справочник>` document as text (the declaration names `encoding`).
pub fn document(app: &App, encoding: Encoding) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\n",
        encoding.charset()
    );
    let open = |s: &mut String, tag: &str| {
        s.push('<');
        s.push_str(tag);
        s.push('>');
    };
    let close = |s: &mut String, tag: &str| {
        s.push_str("</");
        s.push_str(tag);
        s.push('>');
    };
    let field = |s: &mut String, tag: &str, value: &str| {
        open(s, tag);
        s.push_str(&escape(value));
        close(s, tag);
    };
    open(&mut s, t::INFO_ROOT);
    s.push('\n');
    // `Cтатусы` starts with a Latin C, as in Bitrix; the tag constant keeps it byte-exact.
    open(&mut s, t::INFO_STATUSES);
    s.push('\n');
    let mapping = &app.config.exchange.statuses;
    for e in &mapping.entries {
        open(&mut s, t::INFO_ITEM);
        field(&mut s, t::ID, &e.code);
        field(&mut s, t::INFO_NAME, mapping.display_name(&e.code));
        close(&mut s, t::INFO_ITEM);
        s.push('\n');
    }
    close(&mut s, t::INFO_STATUSES);
    s.push('\n');
    open(&mut s, t::INFO_PAYMENT_SYSTEMS);
    s.push('\n');
    for p in &app.config.info.payment_systems {
        open(&mut s, t::INFO_ITEM);
        field(&mut s, t::ID, &p.id);
        field(&mut s, t::INFO_NAME, &p.name);
        let kind = match p.kind {
            PaymentKind::Cash => PAYMENT_TYPE_CASH,
            PaymentKind::Cashless => PAYMENT_TYPE_CASHLESS,
            PaymentKind::Acquiring => PAYMENT_TYPE_ACQUIRING,
        };
        field(&mut s, t::INFO_PAYMENT_TYPE, kind);
        close(&mut s, t::INFO_ITEM);
        s.push('\n');
    }
    close(&mut s, t::INFO_PAYMENT_SYSTEMS);
    s.push('\n');
    open(&mut s, t::INFO_DELIVERY_SERVICES);
    s.push('\n');
    for d in &app.config.info.delivery_services {
        open(&mut s, t::INFO_ITEM);
        field(&mut s, t::ID, &d.id);
        field(&mut s, t::INFO_NAME, &d.name);
        close(&mut s, t::INFO_ITEM);
        s.push('\n');
    }
    close(&mut s, t::INFO_DELIVERY_SERVICES);
    s.push('\n');
    close(&mut s, t::INFO_ROOT);
    s.push('\n');
    s
}

fn escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `info` response in the configured encoding.
pub fn response(app: &App) -> Response {
    let encoding = app.config.exchange.encoding;
    let text = document(app, encoding);
    let bytes = match encoding {
        // Characters windows-1251 lacks become numeric references, valid in XML text.
        Encoding::Windows1251 => encoding_rs::WINDOWS_1251.encode(&text).0.into_owned(),
        Encoding::Utf8 => {
            let mut b = b"\xEF\xBB\xBF".to_vec();
            b.extend_from_slice(text.as_bytes());
            b
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::OK;
    if let Ok(v) =
        HeaderValue::from_str(&format!("application/xml; charset={}", encoding.charset()))
    {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
