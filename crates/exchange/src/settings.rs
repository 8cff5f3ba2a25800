//! Exchange settings: what is exported, how, and the status mapping. Part of obmen's config file
//! (section `[exchange]`); every field has a default.

use commerceml::OutputEncoding;
use serde::{Deserialize, Serialize};

use crate::status::StatusMapping;

/// The encoding of `query` answers, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Encoding {
    /// windows-1251, as Bitrix.
    #[default]
    #[serde(rename = "windows-1251")]
    Windows1251,
    /// UTF-8 with BOM.
    #[serde(rename = "utf-8")]
    Utf8,
}

impl Encoding {
    /// The writer's encoding.
    pub fn output(self) -> OutputEncoding {
        match self {
            Self::Windows1251 => OutputEncoding::Windows1251,
            Self::Utf8 => OutputEncoding::Utf8,
        }
    }

    /// The charset name for headers and declarations.
    pub fn charset(self) -> &'static str {
        match self {
            Self::Windows1251 => "windows-1251",
            Self::Utf8 => "utf-8",
        }
    }
}

/// How order-level discounts reach 1C (PROTOCOL.md §8.9; docs/totals.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountMode {
    /// The order discount is its own line (`ORDER_DISCOUNT`, negative amount); line prices
    /// include only their own discounts. What integrators recommend: 1C keeps the lines as sent.
    #[default]
    Line,
    /// The order discount is spread over the goods lines in proportion to their sums, to the
    /// kopeck (largest remainder); line prices include it.
    Distribute,
}

/// Settings of the sale exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeSettings {
    /// Whether `query` exports orders at all.
    pub export_enabled: bool,
    /// Site status codes whose orders are exported.
    pub export_statuses: Vec<String>,
    /// Encoding of `query` answers.
    pub encoding: Encoding,
    /// `file_limit` announced at `init`, in bytes.
    pub file_limit: u64,
    /// Whether `init` offers `zip=yes`.
    pub zip: bool,
    /// The `Сайт` requisite: `[id] name`.
    pub site: String,
    /// Text written into `Валюта` instead of the order currency (Bitrix `1C_REPLACE_CURRENCY`).
    pub currency: Option<String>,
    /// The status mapping.
    pub statuses: StatusMapping,
    /// Site codes that count as final (`Финальный статус` = true).
    pub final_statuses: Vec<String>,
    /// Offset of the store's local time from UTC, in minutes: dates and times go to 1C in
    /// local time. Default +180 (Moscow).
    pub utc_offset_minutes: i32,
    /// How order-level discounts are exported.
    pub discount_mode: DiscountMode,
    /// Store property key → 1C requisite name (`utm_source` → `UTM источник`); mapped
    /// properties are exported as order requisites.
    pub properties: std::collections::BTreeMap<String, String>,
    /// Also export properties that have no mapping, under their own keys.
    pub export_unmapped_properties: bool,
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        Self {
            export_enabled: true,
            export_statuses: vec!["N".to_owned(), "P".to_owned()],
            encoding: Encoding::Windows1251,
            file_limit: 204_800,
            zip: true,
            site: "[s1] obmen".to_owned(),
            currency: None,
            statuses: StatusMapping::default(),
            final_statuses: vec!["FF".to_owned()],
            utc_offset_minutes: 180,
            discount_mode: DiscountMode::Line,
            properties: std::collections::BTreeMap::new(),
            export_unmapped_properties: false,
        }
    }
}

impl ExchangeSettings {
    /// Checks the settings; the message names every problem.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Err(e) = self.statuses.validate() {
            problems.push(e);
        }
        for code in &self.export_statuses {
            if self.statuses.by_code(code).is_none() {
                problems.push(format!(
                    "export status {code:?} is not in the status mapping"
                ));
            }
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            problems.push("utc_offset_minutes must be within ±840".to_owned());
        }
        if self.file_limit == 0 {
            problems.push("file_limit must be positive".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
