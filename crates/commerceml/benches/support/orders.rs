//! Generates large order files for the benchmarks: Bitrix-style 2.05 orders (the shape of
//! `bitrix-query-response-full.xml`) with varying ids, numbers, names and amounts.
//! Shared by `benches/read.rs` and `examples/read_rss.rs` (via `#[path]`); kept in a
//! subfolder so cargo does not take it for a bench target.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{self, Write};

use commerceml::tags as t;

/// Output encoding of a generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    Utf8,
    Windows1251,
}

impl Enc {
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Windows1251 => "windows-1251",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Self::Utf8),
            "windows-1251" | "cp1251" => Some(Self::Windows1251),
            _ => None,
        }
    }

    fn encode(self, s: &str) -> Vec<u8> {
        match self {
            Self::Utf8 => s.as_bytes().to_vec(),
            Self::Windows1251 => encoding_rs::WINDOWS_1251.encode(s).0.into_owned(),
        }
    }
}

fn el(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>{value}</{name}>");
}

fn requisite(out: &mut String, name: &str, value: &str) {
    let _ = write!(
        out,
        "<{r}><{n}>{name}</{n}><{v}>{value}</{v}></{r}>",
        r = t::REQUISITE,
        n = t::NAME,
        v = t::VALUE
    );
}

/// One order document with `lines` lines, as text.
pub fn document(i: u64, lines: u64) -> String {
    let mut d = String::with_capacity(4096);
    let _ = writeln!(d, "\t<{}>", t::DOCUMENT);
    el(&mut d, t::ID, &i.to_string());
    el(&mut d, t::NUMBER, &format!("A-{i}"));
    el(&mut d, t::DATE, "2021-02-11");
    el(&mut d, t::OPERATION, t::OP_ORDER);
    el(&mut d, t::ROLE, t::ROLE_SELLER);
    el(&mut d, t::CURRENCY, "RUB");
    el(&mut d, t::RATE, "1");
    let price = |k: u64| 100 + (i * 7 + k * 13) % 900;
    let total: u64 = (0..lines).map(|k| price(k) * (1 + k % 3)).sum();
    el(&mut d, t::SUM, &format!("{total}.0000"));
    d.push('\n');
    let _ = write!(d, "<{}><{}>", t::COUNTERPARTIES, t::COUNTERPARTY);
    el(&mut d, t::ID, &format!("{i}#buyer#Иванов Иван"));
    el(&mut d, t::NAME, "Иванов Иван Иванович");
    el(&mut d, t::ROLE, t::ROLE_BUYER);
    el(&mut d, t::FULL_NAME, "Иванов Иван Иванович");
    let _ = write!(
        d,
        "<{a}><{p}>101000, Москва, ул. Ленина, д. {i}</{p}><{f}><{k}>{city}</{k}><{v}>Москва</{v}></{f}></{a}>",
        a = t::ADDRESS,
        p = t::PRESENTATION,
        f = t::ADDRESS_FIELD,
        k = t::KIND,
        v = t::VALUE,
        city = t::ADDR_CITY
    );
    let _ = write!(
        d,
        "<{cs}><{c}><{k}>{email}</{k}><{v}>buyer{i}@example.com</{v}></{c}></{cs}>",
        cs = t::CONTACTS,
        c = t::CONTACT,
        k = t::KIND,
        v = t::VALUE,
        email = t::CONTACT_EMAIL
    );
    let _ = writeln!(d, "</{}></{}>", t::COUNTERPARTY, t::COUNTERPARTIES);
    el(&mut d, t::TIME, "17:03:19");
    el(&mut d, t::COMMENT, "Позвонить перед доставкой");
    let _ = writeln!(d, "\n<{}>", t::LINES);
    for k in 0..lines {
        let p = price(k);
        let q = 1 + k % 3;
        let _ = write!(d, "\t<{}>", t::LINE);
        el(
            &mut d,
            t::ID,
            &format!("{:08x}-55bc-11d9-848a-00112f43529a#{k}", i),
        );
        el(
            &mut d,
            t::NAME,
            &format!("Телевизор &quot;JVC&quot; модель {k}"),
        );
        let _ = write!(
            d,
            "<{b} {c}=\"796\" {f}=\"{full}\" {x}=\"PCE\">{short}</{b}>",
            b = t::BASE_UNIT,
            c = t::UNIT_CODE,
            f = t::UNIT_FULL_NAME,
            x = t::UNIT_INTERNATIONAL,
            full = t::UNIT_PIECE_FULL,
            short = t::UNIT_PIECE_SHORT
        );
        el(&mut d, t::PRICE_PER_UNIT, &format!("{p}.0000"));
        el(&mut d, t::QUANTITY, &format!("{q}.0000"));
        el(&mut d, t::SUM, &format!("{}.0000", p * q));
        let _ = write!(d, "<{}>", t::REQUISITES);
        requisite(&mut d, t::REQ_ITEM_KIND, t::ITEM_GOODS);
        requisite(&mut d, t::REQ_ITEM_TYPE, t::ITEM_GOODS);
        requisite(&mut d, t::REQ_BASKET_POSITION, &(i * 10 + k).to_string());
        let _ = writeln!(d, "</{}></{}>", t::REQUISITES, t::LINE);
    }
    let _ = writeln!(d, "</{}>", t::LINES);
    let _ = write!(d, "<{}>", t::REQUISITES);
    requisite(&mut d, t::REQ_DELIVERY_METHOD, "Самовывоз");
    requisite(&mut d, t::REQ_PAYMENT_METHOD, "Наличный расчет");
    requisite(&mut d, t::REQ_ORDER_PAID, "false");
    requisite(&mut d, t::REQ_CANCELLED, "false");
    requisite(&mut d, t::REQ_STATUS, "[N] Принят, ожидается оплата");
    requisite(&mut d, t::REQ_STATUS_ID, "N");
    requisite(&mut d, t::REQ_STATUS_CHANGED_AT, "11.02.2021 18:45:21");
    let _ = writeln!(d, "</{}>", t::REQUISITES);
    let _ = writeln!(d, "\t</{}>", t::DOCUMENT);
    d
}

fn head(enc: Enc) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\n<{} {}=\"2.05\" {}=\"2021-02-12T17:03:19\" {}=\"{}\">\n",
        enc.name(),
        t::ROOT,
        t::ATTR_SCHEMA_VERSION,
        t::ATTR_GENERATED_AT,
        t::ATTR_SUM_FORMAT,
        t::FORMAT_SUM
    )
}

/// Writes a file of at least `target` bytes; returns (bytes, documents).
pub fn write_orders(mut out: impl Write, target: u64, enc: Enc) -> io::Result<(u64, u64)> {
    let mut written = 0u64;
    let h = enc.encode(&head(enc));
    out.write_all(&h)?;
    written += h.len() as u64;
    let mut i = 0u64;
    while written < target {
        let d = enc.encode(&document(i, 3 + i % 5));
        out.write_all(&d)?;
        written += d.len() as u64;
        i += 1;
    }
    let tail = enc.encode(&format!("</{}>\n", t::ROOT));
    out.write_all(&tail)?;
    written += tail.len() as u64;
    Ok((written, i))
}

/// A file of at least `target` bytes in memory; returns (bytes, documents).
pub fn orders(target: u64, enc: Enc) -> (Vec<u8>, u64) {
    let mut buf = Vec::with_capacity(target as usize + (1 << 16));
    let (_, docs) = write_orders(&mut buf, target, enc).expect("write to memory");
    (buf, docs)
}
