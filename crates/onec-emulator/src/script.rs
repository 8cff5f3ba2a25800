//! What "1C" does to the orders before sending them back: a small TOML or JSON script.
//!
//! The default script (`default_script.toml`, embedded) moves each order one step along the
//! default UT 11 statuses and marks every second order paid. A user script overrides any key.

use serde::Deserialize;

use crate::db::OrderState;
use crate::error::{Error, Result};

/// The embedded default script, with comments: a template for user scripts.
pub const DEFAULT_SCRIPT: &str = include_str!("default_script.toml");

/// How a status is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusAs {
    /// Both the code and the name.
    Both,
    /// The code only (`Статуса заказа ИД`).
    Code,
    /// The name only (`Статус заказа`).
    Name,
}

/// Which orders are sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every order in the 1C database.
    All,
    /// The orders received in the current session.
    Received,
}

/// A status as 1C's exchange settings map it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusEntry {
    /// Site status code.
    pub code: String,
    /// Name.
    pub name: String,
}

/// A flag, or a document with a number and date.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Toggle {
    /// `true` (with generated number and date) or `false`.
    Flag(bool),
    /// Explicit number and/or date.
    Document {
        /// Document number.
        number: Option<String>,
        /// Document date.
        date: Option<String>,
    },
}

/// An action for one order, every n-th order, or all orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Matches the order with this site number.
    pub number: Option<String>,
    /// Matches every n-th order of the scope (1-based position).
    pub every: Option<u32>,
    /// Status by name.
    pub status: Option<String>,
    /// Status by code.
    pub status_code: Option<String>,
    /// Overrides the script's `step` for the matched orders.
    pub step: Option<bool>,
    /// Paid.
    pub paid: Option<Toggle>,
    /// Shipped.
    pub shipped: Option<Toggle>,
    /// Cancelled.
    pub cancelled: Option<bool>,
    /// Deletion mark.
    pub deletion_mark: Option<bool>,
}

/// The whole script.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    /// How statuses are written.
    pub status_as: StatusAs,
    /// Which orders are sent back.
    pub scope: Scope,
    /// Move each order one step along `flow`.
    pub step: bool,
    /// Status codes in order.
    pub flow: Vec<String>,
    /// The status `cancelled` sets.
    pub cancel_status: Option<String>,
    /// Every n-th order is paid (0: none).
    pub paid_every: u32,
    /// 1C order number prefix.
    pub number_prefix: String,
    /// Payment document number prefix.
    pub payment_prefix: String,
    /// Shipment document number prefix.
    pub shipment_prefix: String,
    /// Comment template (`{number}`).
    pub comment: String,
    /// The status table.
    pub statuses: Vec<StatusEntry>,
    /// Per-order rules.
    pub orders: Vec<Rule>,
}

impl Default for Script {
    fn default() -> Self {
        // Invariant: the embedded default parses (tested below); a field-less fallback avoids
        // recursing through `#[serde(default)]`.
        toml::from_str::<ScriptFile>(DEFAULT_SCRIPT)
            .map(ScriptFile::into_script)
            .unwrap_or_else(|_| Script::empty())
    }
}

/// The on-disk form without container-level defaults, used for the embedded default only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    status_as: StatusAs,
    scope: Scope,
    step: bool,
    flow: Vec<String>,
    cancel_status: Option<String>,
    paid_every: u32,
    number_prefix: String,
    payment_prefix: String,
    shipment_prefix: String,
    comment: String,
    statuses: Vec<StatusEntry>,
    orders: Vec<Rule>,
}

impl ScriptFile {
    fn into_script(self) -> Script {
        Script {
            status_as: self.status_as,
            scope: self.scope,
            step: self.step,
            flow: self.flow,
            cancel_status: self.cancel_status,
            paid_every: self.paid_every,
            number_prefix: self.number_prefix,
            payment_prefix: self.payment_prefix,
            shipment_prefix: self.shipment_prefix,
            comment: self.comment,
            statuses: self.statuses,
            orders: self.orders,
        }
    }
}

/// Where an order stands when the script is applied.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// 1-based position in the scope.
    pub index: usize,
    /// The site's number.
    pub number: &'a str,
    /// Arrival sequence in the 1C database (source of document numbers).
    pub seq: i64,
    /// Now, as 1C writes date-times (`yyyy-mm-ddTHH:MM:SS`).
    pub now: &'a str,
}

impl Script {
    fn empty() -> Self {
        Self {
            status_as: StatusAs::Both,
            scope: Scope::Received,
            step: false,
            flow: Vec::new(),
            cancel_status: None,
            paid_every: 0,
            number_prefix: "EM".into(),
            payment_prefix: "PA".into(),
            shipment_prefix: "SH".into(),
            comment: String::new(),
            statuses: Vec::new(),
            orders: Vec::new(),
        }
    }

    /// Parses a script; a `.json` path is JSON, anything else TOML.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read script {}: {e}", path.display())))?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// Parses a TOML script.
    pub fn from_toml(text: &str) -> Result<Self> {
        let s: Self = toml::from_str(text).map_err(|e| Error::Config(format!("script: {e}")))?;
        s.validate()
    }

    /// Parses a JSON script.
    pub fn from_json(text: &str) -> Result<Self> {
        let s: Self =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("script: {e}")))?;
        s.validate()
    }

    fn validate(self) -> Result<Self> {
        for r in &self.orders {
            if r.every == Some(0) {
                return Err(Error::Config("script: `every` must be at least 1".into()));
            }
        }
        Ok(self)
    }

    /// The 1C document number for an arrival sequence (`EM-000001`).
    pub fn number_1c(&self, seq: i64) -> String {
        format!("{}-{seq:06}", self.number_prefix)
    }

    /// The status name mapped to a code.
    pub fn name_of(&self, code: &str) -> Option<&str> {
        self.statuses
            .iter()
            .find(|s| s.code == code)
            .map(|s| s.name.as_str())
    }

    /// The status code mapped to a name.
    pub fn code_of(&self, name: &str) -> Option<&str> {
        self.statuses
            .iter()
            .find(|s| s.name.trim().to_lowercase() == name.trim().to_lowercase())
            .map(|s| s.code.as_str())
    }

    fn rule_matches(rule: &Rule, p: Position<'_>) -> bool {
        match (&rule.number, rule.every) {
            (Some(n), _) => n.trim() == p.number.trim(),
            (None, Some(every)) => every > 0 && p.index % every as usize == 0,
            (None, None) => true,
        }
    }

    /// The state 1C gives the order.
    pub fn apply(&self, current: &OrderState, p: Position<'_>) -> OrderState {
        let mut s = current.clone();
        let rules: Vec<&Rule> = self
            .orders
            .iter()
            .filter(|r| Self::rule_matches(r, p))
            .collect();
        let step = rules.iter().rev().find_map(|r| r.step).unwrap_or(self.step);
        if step && !s.cancelled {
            if let Some(next) = self.next_status(s.status_code.as_deref()) {
                s.status_name = self.name_of(&next).map(str::to_owned);
                s.status_code = Some(next);
            }
        }
        if self.paid_every > 0 && p.index % self.paid_every as usize == 0 && !s.paid {
            self.set_paid(&mut s, &Toggle::Flag(true), p);
        }
        for r in rules {
            if let Some(name) = &r.status {
                s.status_code = self.code_of(name).map(str::to_owned);
                s.status_name = Some(name.clone());
            }
            if let Some(code) = &r.status_code {
                if r.status.is_none() {
                    s.status_name = self.name_of(code).map(str::to_owned);
                }
                s.status_code = Some(code.clone());
            }
            if let Some(t) = &r.paid {
                self.set_paid(&mut s, t, p);
            }
            if let Some(t) = &r.shipped {
                self.set_shipped(&mut s, t, p);
            }
            if let Some(c) = r.cancelled {
                s.cancelled = c;
                if c && r.status.is_none() && r.status_code.is_none() {
                    if let Some(code) = &self.cancel_status {
                        s.status_name = self.name_of(code).map(str::to_owned);
                        s.status_code = Some(code.clone());
                    }
                }
            }
            if let Some(d) = r.deletion_mark {
                s.deletion_mark = d;
            }
        }
        s
    }

    fn next_status(&self, current: Option<&str>) -> Option<String> {
        let idx = match current {
            None => 0,
            Some(c) => self.flow.iter().position(|f| f == c)?,
        };
        self.flow.get(idx + 1).cloned()
    }

    fn set_paid(&self, s: &mut OrderState, t: &Toggle, p: Position<'_>) {
        match t {
            Toggle::Flag(false) => {
                s.paid = false;
                s.payment_number = None;
                s.payment_date = None;
            }
            Toggle::Flag(true) => {
                if !s.paid {
                    s.paid = true;
                    s.payment_number = Some(format!("{}-{:06}", self.payment_prefix, p.seq));
                    s.payment_date = Some(p.now.to_owned());
                }
            }
            Toggle::Document { number, date } => {
                s.paid = true;
                s.payment_number = Some(
                    number
                        .clone()
                        .unwrap_or_else(|| format!("{}-{:06}", self.payment_prefix, p.seq)),
                );
                s.payment_date = Some(date.clone().unwrap_or_else(|| p.now.to_owned()));
            }
        }
    }

    fn set_shipped(&self, s: &mut OrderState, t: &Toggle, p: Position<'_>) {
        match t {
            Toggle::Flag(false) => {
                s.shipped = false;
                s.shipment_number = None;
                s.shipment_date = None;
            }
            Toggle::Flag(true) => {
                if !s.shipped {
                    s.shipped = true;
                    s.shipment_number = Some(format!("{}-{:06}", self.shipment_prefix, p.seq));
                    s.shipment_date = Some(p.now.to_owned());
                }
            }
            Toggle::Document { number, date } => {
                s.shipped = true;
                s.shipment_number = Some(
                    number
                        .clone()
                        .unwrap_or_else(|| format!("{}-{:06}", self.shipment_prefix, p.seq)),
                );
                s.shipment_date = Some(date.clone().unwrap_or_else(|| p.now.to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(index: usize, number: &str) -> Position<'_> {
        Position {
            index,
            number,
            seq: i64::try_from(index).unwrap(),
            now: "2024-05-06T07:08:09",
        }
    }

    #[test]
    fn embedded_default_parses() {
        toml::from_str::<ScriptFile>(DEFAULT_SCRIPT).unwrap();
        let s = Script::default();
        assert!(s.step);
        assert_eq!(s.flow, ["N", "P", "D", "F", "FF"]);
        assert_eq!(s.paid_every, 2);
        assert_eq!(s.code_of("Отменен клиентом"), Some("C"));
    }

    #[test]
    fn default_steps_and_pays_every_second() {
        let s = Script::default();
        let new = OrderState {
            status_code: Some("N".into()),
            ..OrderState::default()
        };
        let a = s.apply(&new, pos(1, "1"));
        assert_eq!(a.status_code.as_deref(), Some("P"));
        assert_eq!(a.status_name.as_deref(), Some("В работе"));
        assert!(!a.paid);
        let b = s.apply(&new, pos(2, "2"));
        assert!(b.paid);
        assert_eq!(b.payment_number.as_deref(), Some("PA-000002"));
        assert_eq!(b.payment_date.as_deref(), Some("2024-05-06T07:08:09"));
        let last = OrderState {
            status_code: Some("FF".into()),
            ..OrderState::default()
        };
        assert_eq!(
            s.apply(&last, pos(1, "3")).status_code.as_deref(),
            Some("FF")
        );
        let fresh = s.apply(&OrderState::default(), pos(1, "4"));
        assert_eq!(fresh.status_code.as_deref(), Some("P"));
    }

    #[test]
    fn user_rules_override() {
        let s = Script::from_toml(
            r#"
            step = false
            paid_every = 0
            status_as = "name"
            [[orders]]
            number = "7"
            status = "Готов к отгрузке"
            shipped = { number = "S-1", date = "2024-01-01T00:00:00" }
            [[orders]]
            number = "8"
            cancelled = true
            deletion_mark = true
            [[orders]]
            number = "9"
            status = "No such status"
            "#,
        )
        .unwrap();
        assert_eq!(s.status_as, StatusAs::Name);
        assert_eq!(s.statuses.len(), 6, "defaults kept for keys not given");
        let base = OrderState::default();
        let a = s.apply(&base, pos(1, "7"));
        assert_eq!(a.status_code.as_deref(), Some("D"));
        assert!(a.shipped);
        assert_eq!(a.shipment_number.as_deref(), Some("S-1"));
        let b = s.apply(&base, pos(2, "8"));
        assert!(b.cancelled && b.deletion_mark);
        assert_eq!(b.status_code.as_deref(), Some("C"));
        let c = s.apply(&base, pos(3, "9"));
        assert_eq!(c.status_code, None);
        assert_eq!(c.status_name.as_deref(), Some("No such status"));
        let d = s.apply(&base, pos(4, "10"));
        assert_eq!(d, base);
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + readme[start..].find("```").unwrap();
        let s = Script::from_toml(&readme[start..end]).unwrap();
        assert_eq!(s.orders.len(), 2);
        let a = s.apply(&OrderState::default(), pos(1, "1001"));
        assert_eq!(a.status_code.as_deref(), Some("D"));
        assert!(a.paid && a.shipped);
        let b = s.apply(&OrderState::default(), pos(5, "x"));
        assert!(b.cancelled);
        assert_eq!(b.status_code.as_deref(), Some("C"));
    }

    #[test]
    fn json_scripts_and_errors() {
        let s =
            Script::from_json(r#"{"paid_every": 3, "orders": [{"every": 2, "shipped": true}]}"#)
                .unwrap();
        let st = s.apply(&OrderState::default(), pos(6, "x"));
        assert!(st.paid && st.shipped);
        assert!(Script::from_json(r#"{"unknown_key": 1}"#).is_err());
        assert!(Script::from_toml("[[orders]]\nevery = 0").is_err());
    }
}
