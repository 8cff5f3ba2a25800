//! Matching many 1C documents to orders at once ([`crate::Store::find_orders_for_documents`]).
//!
//! The rules are those of [`crate::Store::find_order_for_document`] — by store number, then by
//! our id when the document's id is numeric, then by 1C's number, then by 1C's id — applied as
//! four set lookups for a whole batch instead of up to four queries per document. Backends run
//! the lookups ([`Column::PASSES`], in that order) and feed the rows to a [`Resolver`], which
//! knows which documents are still unmatched.

use std::collections::HashMap;

use exchange::domain::OrderFacts;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::Result;

/// The columns of [`OrderFacts`] in the `orders` table (the same on both backends).
pub(crate) const FACT_COLUMNS: &str = "id, number, status, status_1c, paid, shipped, \
     cancelled, deleted, number_1c, date_1c, id_1c, payment_number_1c, payment_date_1c, \
     shipment_number_1c, shipment_date_1c";

/// [`OrderFacts`] from a row of [`FACT_COLUMNS`], on either backend.
pub(crate) fn facts_from_row<R>(row: &R) -> Result<OrderFacts>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(OrderFacts {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        status: row.try_get("status")?,
        status_1c: row.try_get("status_1c")?,
        paid: row.try_get("paid")?,
        shipped: row.try_get("shipped")?,
        cancelled: row.try_get("cancelled")?,
        deleted: row.try_get("deleted")?,
        number_1c: row.try_get("number_1c")?,
        date_1c: row.try_get("date_1c")?,
        id_1c: row.try_get("id_1c")?,
        payment_number_1c: row.try_get("payment_number_1c")?,
        payment_date_1c: row.try_get("payment_date_1c")?,
        shipment_number_1c: row.try_get("shipment_number_1c")?,
        shipment_date_1c: row.try_get("shipment_date_1c")?,
    })
}

/// A column an order is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// The store's order number, matched with the document's number.
    Number,
    /// Our id (the exported `Ид`), matched with a numeric document id.
    Id,
    /// 1C's number, matched with the document's number.
    Number1c,
    /// 1C's id, matched with the document's id.
    Id1c,
}

impl Column {
    /// The lookups in the order the rules try them.
    pub(crate) const PASSES: [Self; 4] = [Self::Number, Self::Id, Self::Number1c, Self::Id1c];

    /// The column's name in the `orders` table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Id => "id",
            Self::Number1c => "number_1c",
            Self::Id1c => "id_1c",
        }
    }

    /// The value of this column in a stored order.
    fn of(self, order: &OrderFacts) -> Option<String> {
        match self {
            Self::Number => Some(order.number.clone()),
            Self::Id => Some(order.id.to_string()),
            Self::Number1c => order.number_1c.clone(),
            Self::Id1c => order.id_1c.clone(),
        }
    }
}

/// The documents of one batch and the orders found for them so far.
pub(crate) struct Resolver {
    keys: Vec<(Option<String>, Option<String>)>,
    /// Distinct orders found, each once.
    orders: Vec<OrderFacts>,
    by_id: HashMap<i64, usize>,
    /// Per key: the index of its order in `orders`.
    found: Vec<Option<usize>>,
}

impl Resolver {
    /// A resolver for `(number, id)` keys; blank values count as absent.
    pub(crate) fn new(keys: &[(Option<&str>, Option<&str>)]) -> Self {
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let keys: Vec<_> = keys.iter().map(|(n, i)| (clean(*n), clean(*i))).collect();
        let found = vec![None; keys.len()];
        Self {
            keys,
            orders: Vec::new(),
            by_id: HashMap::new(),
            found,
        }
    }

    /// What an unmatched key looks for in `column`, if anything.
    fn wants(column: Column, key: &(Option<String>, Option<String>)) -> Option<String> {
        match column {
            Column::Number | Column::Number1c => key.0.clone(),
            Column::Id => key
                .1
                .as_deref()
                .and_then(|i| i.parse::<i64>().ok())
                .map(|i| i.to_string()),
            Column::Id1c => key.1.clone(),
        }
    }

    /// The distinct values still to look up by `column` (empty: skip the lookup).
    pub(crate) fn wanted(&self, column: Column) -> Vec<String> {
        let mut values: Vec<String> = self
            .keys
            .iter()
            .zip(&self.found)
            .filter(|(_, f)| f.is_none())
            .filter_map(|(k, _)| Self::wants(column, k))
            .collect();
        values.sort_unstable();
        values.dedup();
        values
    }

    /// Takes the orders a lookup by `column` returned, ordered by id: when several share a
    /// value (1C's numbers need not be unique), the first wins, as in the one-document lookup.
    pub(crate) fn accept(&mut self, column: Column, orders: Vec<OrderFacts>) {
        let mut by_value: HashMap<String, usize> = HashMap::new();
        for order in orders {
            let Some(value) = column.of(&order) else {
                continue;
            };
            if by_value.contains_key(&value) {
                continue;
            }
            let index = match self.by_id.get(&order.id) {
                Some(&i) => i,
                None => {
                    self.orders.push(order);
                    let i = self.orders.len() - 1;
                    self.by_id.insert(self.orders[i].id, i);
                    i
                }
            };
            by_value.insert(value, index);
        }
        for (key, found) in self.keys.iter().zip(self.found.iter_mut()) {
            if found.is_some() {
                continue;
            }
            if let Some(value) = Self::wants(column, key) {
                *found = by_value.get(&value).copied();
            }
        }
    }

    /// One answer per key, in the order of the keys.
    pub(crate) fn finish(self) -> Vec<Option<OrderFacts>> {
        self.found
            .into_iter()
            .map(|f| f.map(|i| self.orders[i].clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange::domain::{Order, OrderInput};

    fn order(id: i64, number: &str, number_1c: Option<&str>, id_1c: Option<&str>) -> OrderFacts {
        let input: OrderInput = serde_json::from_value(serde_json::json!({
            "number": number, "items": [], "customer": {"type": "person", "name": "X"}
        }))
        .unwrap();
        let at = chrono::DateTime::UNIX_EPOCH;
        let mut o = Order::new(id, input, at);
        o.number_1c = number_1c.map(str::to_owned);
        o.id_1c = id_1c.map(str::to_owned);
        o.facts()
    }

    #[test]
    fn passes_follow_the_single_document_rules() {
        let keys = [
            (Some("S-1"), None),             // by number
            (Some("unknown"), Some("0002")), // by our numeric id
            (Some("УТ-3"), None),            // by 1C's number
            (None, Some("guid-4")),          // by 1C's id
            (Some("  "), Some("nothing")),   // no match
            (Some("S-1"), Some("guid-4")),   // number wins over 1C's id
        ];
        let mut r = Resolver::new(&keys);
        assert_eq!(r.wanted(Column::Number), ["S-1", "unknown", "УТ-3"]);
        r.accept(Column::Number, vec![order(1, "S-1", None, None)]);
        assert_eq!(r.wanted(Column::Id), ["2"]);
        r.accept(Column::Id, vec![order(2, "S-2", None, None)]);
        assert_eq!(r.wanted(Column::Number1c), ["УТ-3"]);
        r.accept(
            Column::Number1c,
            vec![
                order(3, "S-3", Some("УТ-3"), None),
                order(7, "S-7", Some("УТ-3"), None),
            ],
        );
        assert_eq!(r.wanted(Column::Id1c), ["guid-4", "nothing"]);
        r.accept(Column::Id1c, vec![order(4, "S-4", None, Some("guid-4"))]);
        let ids: Vec<Option<i64>> = r
            .finish()
            .iter()
            .map(|o| o.as_ref().map(|o| o.id))
            .collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3), Some(4), None, Some(1)]);
    }
}
