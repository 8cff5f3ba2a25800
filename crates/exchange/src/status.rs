//! The per-project status mapping: 1C status name ↔ site status code.

use commerceml::names_match;
use serde::{Deserialize, Serialize};

/// One row of the mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEntry {
    /// The status name as 1C shows it (`Отгружен`).
    pub name_1c: String,
    /// The site status code (`D`).
    pub code: String,
    /// The site's own name for the status, shown in exports as `[code] name`.
    #[serde(default)]
    pub site_name: Option<String>,
}

/// The mapping table. The default is the typical 1C:UT 11 mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMapping {
    /// Rows, in the order they were configured.
    pub entries: Vec<StatusEntry>,
}

/// What an incoming document says about the status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StatusResolution {
    /// The document carries no status.
    #[default]
    Absent,
    /// The status maps to this site code.
    Mapped(String),
    /// The status is not in the mapping; the value as 1C sent it.
    Unknown(String),
}

/// Code of the status a store-created order starts in.
pub const NEW: &str = "N";

impl Default for StatusMapping {
    fn default() -> Self {
        let row = |name: &str, code: &str, site: &str| StatusEntry {
            name_1c: name.to_owned(),
            code: code.to_owned(),
            site_name: Some(site.to_owned()),
        };
        Self {
            entries: vec![
                row("Новый", NEW, "Принят, ожидается оплата"),
                row("В работе", "P", "Принят, передан в обработку"),
                row("Готов к отгрузке", "D", "Собирается, готов к отгрузке"),
                row("Передан курьеру", "F", "Передан в доставку"),
                row("Выполнен", "FF", "Доставлен, выполнен"),
                row("Отменен клиентом", "C", "Отменен"),
            ],
        }
    }
}

impl StatusMapping {
    /// Resolves an incoming status: a `code` that is a known site code wins; otherwise `name`
    /// is looked up by 1C name (case- and space-insensitive; `[X] name` accepted, and the code
    /// `X` inside the brackets is tried too).
    pub fn resolve(&self, code: Option<&str>, name: Option<&str>) -> StatusResolution {
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(c) = code {
            if let Some(e) = self.entries.iter().find(|e| e.code == c) {
                return StatusResolution::Mapped(e.code.clone());
            }
        }
        if let Some(n) = name {
            let (bracket_code, bare) = split_bracketed(n);
            if let Some(e) = self
                .entries
                .iter()
                .find(|e| names_match(&e.name_1c, bare) || names_match(&e.name_1c, n))
            {
                return StatusResolution::Mapped(e.code.clone());
            }
            if let Some(bc) = bracket_code {
                if let Some(e) = self.entries.iter().find(|e| e.code == bc) {
                    return StatusResolution::Mapped(e.code.clone());
                }
            }
            // A site name echoed back (`[N] Принят, ожидается оплата`).
            if let Some(e) = self
                .entries
                .iter()
                .find(|e| e.site_name.as_deref().is_some_and(|s| names_match(s, bare)))
            {
                return StatusResolution::Mapped(e.code.clone());
            }
            return StatusResolution::Unknown(n.to_owned());
        }
        match code {
            Some(c) => StatusResolution::Unknown(c.to_owned()),
            None => StatusResolution::Absent,
        }
    }

    /// The row of a site code.
    pub fn by_code(&self, code: &str) -> Option<&StatusEntry> {
        self.entries.iter().find(|e| e.code == code)
    }

    /// The name exported in `Статус заказа` for a code: the site name, else the 1C name, else
    /// the code itself.
    pub fn display_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.by_code(code)
            .map(|e| e.site_name.as_deref().unwrap_or(&e.name_1c))
            .unwrap_or(code)
    }

    /// Checks the table: codes are 1–2 Latin letters, neither codes nor 1C names repeat.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let valid_code =
                (1..=2).contains(&e.code.len()) && e.code.bytes().all(|b| b.is_ascii_alphabetic());
            if !valid_code {
                problems.push(format!(
                    "status code {:?} must be 1-2 Latin letters",
                    e.code
                ));
            }
            if e.name_1c.trim().is_empty() {
                problems.push(format!("status {:?} has an empty 1C name", e.code));
            }
            for other in &self.entries[..i] {
                if other.code == e.code {
                    problems.push(format!("status code {:?} is mapped twice", e.code));
                }
                if names_match(&other.name_1c, &e.name_1c) {
                    problems.push(format!("1C status {:?} is mapped twice", e.name_1c));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Splits `[X] name` into (`Some("X")`, `name`); anything else into (`None`, the input).
fn split_bracketed(value: &str) -> (Option<&str>, &str) {
    if let Some(rest) = value.strip_prefix('[') {
        if let Some((code, name)) = rest.split_once(']') {
            return (Some(code.trim()), name.trim());
        }
    }
    (None, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_code_name_and_bracketed_forms() {
        let m = StatusMapping::default();
        let mapped = |c: &str| StatusResolution::Mapped(c.to_owned());
        assert_eq!(m.resolve(Some("P"), None), mapped("P"));
        assert_eq!(m.resolve(None, Some("  готов к  отгрузке ")), mapped("D"));
        assert_eq!(m.resolve(None, Some("[F] Передан курьеру")), mapped("F"));
        assert_eq!(m.resolve(Some(""), Some("Выполнен")), mapped("FF"));
        assert_eq!(
            m.resolve(None, Some("[N] Принят, ожидается оплата")),
            mapped("N")
        );
        assert_eq!(
            m.resolve(None, Some("Открыт")),
            StatusResolution::Unknown("Открыт".into())
        );
        assert_eq!(
            m.resolve(Some("ZZ"), None),
            StatusResolution::Unknown("ZZ".into())
        );
        assert_eq!(m.resolve(None, None), StatusResolution::Absent);
    }

    #[test]
    fn validation_catches_bad_tables() {
        assert!(StatusMapping::default().validate().is_ok());
        let mut m = StatusMapping::default();
        m.entries[1].code = "N".into();
        m.entries[2].code = "D1".into();
        let err = m.validate().unwrap_err();
        assert!(
            err.contains("mapped twice") && err.contains("Latin"),
            "{err}"
        );
    }
}
