//! Scalar values as 1C and Bitrix write them: decimals, booleans, dates, times, empty forms,
//! and the schema version (PROTOCOL.md §7.2, §8.10).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

/// A `ВерсияСхемы` value: kept as written, compared as a decimal (`"2.10"` > `"2.09"`,
/// `"2.1"` == `"2.10"`, `"2,08"` == `"2.08"`).
#[derive(Debug, Clone, Eq)]
pub struct SchemaVersion {
    raw: String,
    value: Decimal,
}

impl SchemaVersion {
    /// Schema 2.05, Bitrix's default when 1C negotiated no version.
    pub fn v2_05() -> Self {
        Self::parse("2.05").expect("literal version")
    }

    /// Parses a version as written; `None` when it is not a decimal number.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let value = parse_decimal(raw).ok().flatten()?;
        Some(Self {
            raw: raw.to_owned(),
            value,
        })
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The version as a decimal.
    pub fn value(&self) -> Decimal {
        self.value
    }

    /// Whether this version is at least `other` (a decimal literal such as `"2.10"`).
    pub fn at_least(&self, other: &str) -> bool {
        parse_decimal(other)
            .ok()
            .flatten()
            .is_some_and(|o| self.value >= o)
    }
}

impl PartialEq for SchemaVersion {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialOrd for SchemaVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SchemaVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for SchemaVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("not a schema version: {s:?}"))
    }
}

/// Parses a decimal as 1C and Bitrix write it: spaces and no-break spaces are ignored, `,` is
/// accepted as the decimal point. An empty value gives `Ok(None)`; anything else that is not a
/// number is an error carrying the value.
pub fn parse_decimal(raw: &str) -> Result<Option<Decimal>, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(d) = parse_plain_decimal(trimmed.as_bytes()) {
        return Ok(Some(d));
    }
    let simple = trimmed
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    let parsed = if simple {
        Decimal::from_str(trimmed)
    } else {
        let cleaned: String = trimmed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\u{202f}')
            .map(|c| if c == ',' { '.' } else { c })
            .collect();
        Decimal::from_str(&cleaned).or_else(|_| Decimal::from_scientific(&cleaned))
    };
    parsed
        .map(Some)
        .map_err(|_| format!("not a number: {trimmed:?}"))
}

/// The common form `[-]digits[.digits]` with at most 18 digits, which fits an `i64`
/// mantissa: the same value and scale as `Decimal::from_str`, without its generality. `None`
/// for anything else (and for a negative zero, whose sign `from_str` keeps).
pub(crate) fn parse_plain_decimal(s: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(k) => (&digits[..k], &digits[k + 1..]),
        None => (digits, &[][..]),
    };
    // A '.' needs digits on both sides; at most 18 digits fit an i64 without overflow.
    let dot = int.len() < digits.len();
    if int.is_empty() || (dot && frac.is_empty()) || int.len() + frac.len() > 18 {
        return None;
    }
    let mut mantissa: i64 = 0;
    for part in [int, frac] {
        for &b in part {
            // A second '.' is not a digit either.
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            mantissa = mantissa * 10 + i64::from(d);
        }
    }
    if negative && mantissa == 0 {
        return None;
    }
    // Without a '.', `frac` is empty: scale 0.
    let scale = u32::try_from(frac.len()).ok()?;
    Some(Decimal::new(
        if negative { -mantissa } else { mantissa },
        scale,
    ))
}

/// Parses a boolean: `true`/`false`, `Да`/`Нет`, `1`/`0`, case-insensitive. Empty gives `None`.
pub fn parse_bool(raw: &str) -> Result<Option<bool>, String> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let lower = v.to_lowercase();
    match lower.as_str() {
        "true" | "да" | "1" | "y" | "yes" => Ok(Some(true)),
        "false" | "нет" | "0" | "n" | "no" => Ok(Some(false)),
        _ => Err(format!("not a boolean: {v:?}")),
    }
}

/// Whether a value is one of 1C's empty forms: ``, `T`, `0001-01-01`, `0001-01-01T00:00:00`,
/// `00000000-0000-0000-0000-000000000000`.
pub fn is_empty_value(raw: &str) -> bool {
    let v = raw.trim();
    v.is_empty()
        || v == "T"
        || v.starts_with("0001-01-01")
        || v == "01.01.0001"
        || v.starts_with("01.01.0001 ")
        || v == "00000000-0000-0000-0000-000000000000"
}

/// Parses a date: `yyyy-mm-dd`, `dd.mm.yyyy`, or the date part of any date-time form below.
/// Empty forms give `None`.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    if is_empty_value(raw) {
        return None;
    }
    let v = raw.trim();
    let date_part = v.split(['T', ' ']).next().unwrap_or(v);
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(date_part, "%d.%m.%Y"))
        .ok()
}

/// Parses a time: `HH:MM:SS` or `H:MM:SS`, optionally with fractions. Empty gives `None`.
pub fn parse_time(raw: &str) -> Option<NaiveTime> {
    let v = raw.trim();
    if v.is_empty() {
        return None;
    }
    NaiveTime::parse_from_str(v, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(v, "%H:%M"))
        .ok()
}

/// Parses a date-time in every form of PROTOCOL.md §8.10: `yyyy-mm-ddTHH:MM:SS` (hour may have
/// one digit), `yyyy-mm-dd HH:MM:SS`, `dd.mm.yyyy HH:MM:SS`, or a bare date (midnight). Empty
/// forms give `None`.
pub fn parse_datetime(raw: &str) -> Option<NaiveDateTime> {
    if is_empty_value(raw) {
        return None;
    }
    let v = raw.trim();
    let date = parse_date(v)?;
    let rest = v
        .split_once(['T', ' '])
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    if rest.is_empty() {
        return date.and_hms_opt(0, 0, 0);
    }
    // Tolerate a zone suffix (`Z`, `+03:00`) by ignoring it: 1C writes local time.
    let time_part = rest
        .trim_end_matches('Z')
        .split(['+'])
        .next()
        .unwrap_or(rest);
    Some(date.and_time(parse_time(time_part)?))
}

/// Formats a decimal in plain notation with `.`, as the writer emits amounts.
pub fn format_decimal(value: Decimal) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_in_every_form() {
        assert_eq!(parse_decimal("231.7400").unwrap(), Some(d("231.74")));
        assert_eq!(parse_decimal(" 1 320,50 ").unwrap(), Some(d("1320.5")));
        assert_eq!(parse_decimal("1\u{a0}000").unwrap(), Some(d("1000")));
        assert_eq!(parse_decimal("").unwrap(), None);
        assert_eq!(parse_decimal("-0.5").unwrap(), Some(d("-0.5")));
        assert!(parse_decimal("abc").is_err());
    }

    #[test]
    fn plain_decimals_parse_as_from_str_does() {
        for s in [
            "0",
            "1",
            "-1",
            "231.7400",
            "0.0001",
            "007.50",
            "-12.5",
            "999999999999999999",
            "-999999999999999999",
            "1.00000000000000000",
            "0.00000000000000001",
            "10",
            "1234567.89",
            "12345678901234567.8",
            "-1.23456789012345678",
        ] {
            let fast = parse_plain_decimal(s.as_bytes()).unwrap_or_else(|| panic!("{s}"));
            let std = Decimal::from_str(s).unwrap();
            assert_eq!(fast, std, "{s}");
            assert_eq!(fast.scale(), std.scale(), "{s}");
            assert_eq!(fast.to_string(), std.to_string(), "{s}");
        }
        for s in [
            "",
            "-",
            ".",
            "1.",
            ".5",
            "-.5",
            "1.2.3",
            "--1",
            "1-2",
            "-0",
            "-0.00",
            "+1",
            "1e5",
            "9999999999999999999",
            "-9999999999999999999",
            "1234567890123456789",
            "1 000",
        ] {
            assert!(parse_plain_decimal(s.as_bytes()).is_none(), "{s}");
        }
    }

    #[test]
    fn schema_versions_compare_as_decimals() {
        let v = |s| SchemaVersion::parse(s).unwrap();
        assert!(v("2.10") > v("2.09"));
        assert_eq!(v("2.1"), v("2.10"));
        assert_eq!(v("2,08"), v("2.08"));
        assert!(v("3.1").at_least("3"));
        assert!(!v("2.05").at_least("2.10"));
        assert!(SchemaVersion::parse("x").is_none());
    }

    #[test]
    fn dates_and_empty_forms() {
        let dt = |y, m, dd, h, mi, s| {
            NaiveDate::from_ymd_opt(y, m, dd)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap()
        };
        assert_eq!(
            parse_datetime("2023-03-09T9:05:03"),
            Some(dt(2023, 3, 9, 9, 5, 3))
        );
        assert_eq!(
            parse_datetime("11.02.2021 18:45:21"),
            Some(dt(2021, 2, 11, 18, 45, 21))
        );
        assert_eq!(
            parse_datetime("2007-10-05 13:00:12"),
            Some(dt(2007, 10, 5, 13, 0, 12))
        );
        assert_eq!(parse_datetime("2015-08-12"), Some(dt(2015, 8, 12, 0, 0, 0)));
        for empty in ["T", "0001-01-01", "0001-01-01T00:00:00", "", "  "] {
            assert_eq!(parse_datetime(empty), None, "{empty:?}");
            assert!(is_empty_value(empty));
        }
        assert_eq!(parse_time("00:00:00"), NaiveTime::from_hms_opt(0, 0, 0));
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true").unwrap(), Some(true));
        assert_eq!(parse_bool(" Да ").unwrap(), Some(true));
        assert_eq!(parse_bool("false").unwrap(), Some(false));
        assert_eq!(parse_bool("").unwrap(), None);
        assert!(parse_bool("maybe").is_err());
    }
}
