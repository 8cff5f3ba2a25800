//! Orders as the store sends them (`POST /api/v1/orders`) and as obmen keeps them.
//!
//! Amounts are decimals; JSON accepts them as strings or numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An order as the store submits it. The field names are part of the public store API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderInput {
    /// The store's order number (Bitrix ACCOUNT_NUMBER); exported as `Номер`.
    pub number: String,
    /// When the order was placed; defaults to the time obmen received it.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// The site status code (`N`, `P`, …); defaults to `N`.
    #[serde(default)]
    pub status: Option<String>,
    /// ISO currency code or 1C's short name; defaults to `RUB`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The buyer.
    pub customer: Customer,
    /// Delivery, if any.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// Payment, if known.
    #[serde(default)]
    pub payment: Option<Payment>,
    /// Order lines.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Order-level discounts.
    #[serde(default)]
    pub discounts: Vec<OrderDiscount>,
    /// The buyer's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Free-form properties (UTM tags, promo code, client type, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The kind of buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerType {
    /// A private person.
    #[default]
    Person,
    /// A company or sole trader.
    Company,
}

/// The buyer of an order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Customer {
    /// Person or company.
    #[serde(default, rename = "type")]
    pub kind: CustomerType,
    /// Display name (company name for companies).
    #[serde(default)]
    pub name: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// Taxpayer number.
    #[serde(default)]
    pub inn: Option<String>,
    /// Tax registration reason code (companies).
    #[serde(default)]
    pub kpp: Option<String>,
    /// Registration / legal address as one string.
    #[serde(default)]
    pub address: Option<String>,
}

/// Delivery of an order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Delivery method name.
    #[serde(default)]
    pub method: Option<String>,
    /// Delivery price; exported as an `ORDER_DELIVERY` line when > 0.
    #[serde(default, with = "opt_decimal")]
    pub price: Option<Decimal>,
    /// Delivery address as one string.
    #[serde(default)]
    pub address: Option<String>,
}

/// Payment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Payment {
    /// Payment method name.
    #[serde(default)]
    pub method: Option<String>,
    /// Whether the order is paid.
    #[serde(default)]
    pub paid: bool,
}

/// An order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The store's SKU; exported as `Артикул`.
    #[serde(default)]
    pub sku: Option<String>,
    /// The product's 1C id (`guid` or `guid#guid`); exported as the line `Ид`.
    #[serde(default)]
    pub id_1c: Option<String>,
    /// Product name.
    pub name: String,
    /// Quantity.
    #[serde(with = "decimal")]
    pub quantity: Decimal,
    /// Unit short name (`шт`); defaults to pieces.
    #[serde(default)]
    pub unit: Option<String>,
    /// Unit price before the line discount.
    #[serde(with = "decimal")]
    pub price: Decimal,
    /// Discount on the whole line (not per unit).
    #[serde(default, with = "opt_decimal")]
    pub discount: Option<Decimal>,
    /// VAT rate in percent (`20`), if any.
    #[serde(default, with = "opt_decimal")]
    pub vat_rate: Option<Decimal>,
}

/// An order-level discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDiscount {
    /// Name shown to 1C.
    #[serde(default)]
    pub name: Option<String>,
    /// Amount off the order.
    #[serde(with = "decimal")]
    pub amount: Decimal,
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The store, through the API.
    Store,
    /// 1C, through an exchange file.
    #[serde(rename = "1c")]
    OneC,
}

impl Source {
    /// The stable text form (`store`, `1c`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::OneC => "1c",
        }
    }
}

/// One entry of an order's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The new site status code.
    pub status: String,
    /// Who changed it.
    pub source: Source,
    /// When.
    pub at: DateTime<Utc>,
}

/// An order as obmen keeps it: what the store sent plus what 1C reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Internal id; exported as `Ид`, never changes.
    pub id: i64,
    /// The order as last submitted by the store, with `status` the current status.
    #[serde(flatten)]
    pub input: OrderInput,
    /// The 1C status name last reported, if any.
    pub status_1c: Option<String>,
    /// Paid (by the store or by 1C).
    pub paid: bool,
    /// Shipped according to 1C.
    pub shipped: bool,
    /// Cancelled.
    pub cancelled: bool,
    /// Deletion mark set by 1C.
    pub deleted: bool,
    /// 1C's document number.
    pub number_1c: Option<String>,
    /// 1C's document date.
    pub date_1c: Option<String>,
    /// 1C's document id (GUID) when it differs from ours.
    pub id_1c: Option<String>,
    /// 1C payment document number and date.
    pub payment_number_1c: Option<String>,
    /// 1C payment date as written.
    pub payment_date_1c: Option<String>,
    /// 1C shipment document number.
    pub shipment_number_1c: Option<String>,
    /// 1C shipment date as written.
    pub shipment_date_1c: Option<String>,
    /// Version counter: grows with every store-side change; the ledger records which version
    /// went out.
    pub version: i64,
    /// Where the last change came from (echo suppression).
    pub last_change_source: Source,
    /// When the order last changed.
    pub updated_at: DateTime<Utc>,
    /// Status history, oldest first.
    pub history: Vec<StatusChange>,
}

impl Order {
    /// A store order as first received: version 1, last changed by the store at `at`, nothing
    /// reported by 1C yet.
    pub fn new(id: i64, input: OrderInput, at: DateTime<Utc>) -> Self {
        Self {
            id,
            input,
            status_1c: None,
            paid: false,
            shipped: false,
            cancelled: false,
            deleted: false,
            number_1c: None,
            date_1c: None,
            id_1c: None,
            payment_number_1c: None,
            payment_date_1c: None,
            shipment_number_1c: None,
            shipment_date_1c: None,
            version: 1,
            last_change_source: Source::Store,
            updated_at: at,
            history: Vec::new(),
        }
    }
}

/// What an incoming 1C document is compared with ([`crate::import::plan`]): the order's
/// identity, status and the facts 1C reported — no body, no history, so that a store can read
/// it for a whole file cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFacts {
    /// Internal id (the exported `Ид`).
    pub id: i64,
    /// The store's order number.
    pub number: String,
    /// The current status code.
    pub status: String,
    /// The 1C status name last reported, if any.
    pub status_1c: Option<String>,
    /// Paid.
    pub paid: bool,
    /// Shipped.
    pub shipped: bool,
    /// Cancelled.
    pub cancelled: bool,
    /// Deletion mark.
    pub deleted: bool,
    /// 1C's document number.
    pub number_1c: Option<String>,
    /// 1C's document date.
    pub date_1c: Option<String>,
    /// 1C's document id.
    pub id_1c: Option<String>,
    /// 1C payment document number.
    pub payment_number_1c: Option<String>,
    /// 1C payment date.
    pub payment_date_1c: Option<String>,
    /// 1C shipment document number.
    pub shipment_number_1c: Option<String>,
    /// 1C shipment date.
    pub shipment_date_1c: Option<String>,
}

impl Order {
    /// The facts an import compares with.
    pub fn facts(&self) -> OrderFacts {
        OrderFacts {
            id: self.id,
            number: self.input.number.clone(),
            status: self.input.status_code().to_owned(),
            status_1c: self.status_1c.clone(),
            paid: self.paid,
            shipped: self.shipped,
            cancelled: self.cancelled,
            deleted: self.deleted,
            number_1c: self.number_1c.clone(),
            date_1c: self.date_1c.clone(),
            id_1c: self.id_1c.clone(),
            payment_number_1c: self.payment_number_1c.clone(),
            payment_date_1c: self.payment_date_1c.clone(),
            shipment_number_1c: self.shipment_number_1c.clone(),
            shipment_date_1c: self.shipment_date_1c.clone(),
        }
    }
}

impl OrderInput {
    /// The status, defaulting to `N`.
    pub fn status_code(&self) -> &str {
        self.status.as_deref().unwrap_or("N")
    }
}

/// Serde for [`Decimal`] that accepts a JSON string or number and writes a string.
///
/// Numbers go through their shortest round-trip text form, so `0.1` reads as exactly `0.1`.
pub mod decimal {
    use std::fmt;
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes the decimal as a string.
    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Reads a decimal from a string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }

    pub(super) struct DecimalVisitor;

    impl Visitor<'_> for DecimalVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number or a string holding one")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            match commerceml::value::parse_decimal(v) {
                Ok(Some(d)) => Ok(d),
                Ok(None) => Err(E::custom("empty amount")),
                Err(e) => Err(E::custom(e)),
            }
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            if !v.is_finite() {
                return Err(E::custom("not a finite number"));
            }
            let text = v.to_string();
            Decimal::from_str(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .map_err(|_| E::custom(format!("amount out of range: {text}")))
        }
    }
}

/// Serde for `Option<Decimal>` that accepts strings and numbers and writes strings.
pub mod opt_decimal {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the decimal as a string.
    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Reads a decimal from a string or a number; `null` gives `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::decimal")] Decimal);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_as_strings_or_numbers_are_exact() {
        let item: Item = serde_json::from_str(
            r#"{"name":"x","quantity":3,"price":"0.10","discount":0.1,"vat_rate":20}"#,
        )
        .unwrap();
        assert_eq!(item.price, Decimal::new(10, 2));
        assert_eq!(item.quantity, Decimal::from(3));
        assert_eq!(item.discount, Some(Decimal::new(1, 1)));
        assert_eq!(item.vat_rate, Some(Decimal::from(20)));
        assert!(
            serde_json::from_str::<Item>(r#"{"name":"x","quantity":"abc","price":1}"#).is_err()
        );
    }
}
