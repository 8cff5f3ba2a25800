//! What a 1C document means for an order (PROTOCOL.md §8.7, §8.8, §10.3).
//!
//! [`interpret`] reads the facts a document carries; [`plan`] compares them with the order as
//! stored and returns only what differs, so applying the same file twice changes nothing.

use commerceml::tags as t;
use commerceml::value::{is_empty_value, parse_bool};
use commerceml::{Document, Operation};

use crate::domain::OrderFacts;
use crate::status::{StatusMapping, StatusResolution};

/// The facts one incoming document states about an order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Incoming {
    /// The site order number the document refers to: `Номер` of an order document, `Основание`
    /// of a payment or shipment document.
    pub number: Option<String>,
    /// `Ид` of an order document (our id echoed back, or 1C's GUID).
    pub id: Option<String>,
    /// Whether the document is a payment or shipment document rather than the order itself.
    pub subordinate: bool,
    /// 1C's document number (`Номер1С` or the `Номер по 1С` trait).
    pub number_1c: Option<String>,
    /// 1C's document date.
    pub date_1c: Option<String>,
    /// The status the document asks for.
    pub status: StatusResolution,
    /// The 1C status name as sent, if any.
    pub status_name: Option<String>,
    /// Paid according to 1C.
    pub paid: Option<bool>,
    /// 1C payment document number.
    pub payment_number: Option<String>,
    /// 1C payment date as written.
    pub payment_date: Option<String>,
    /// Shipped according to 1C.
    pub shipped: Option<bool>,
    /// 1C shipment document number.
    pub shipment_number: Option<String>,
    /// 1C shipment date as written.
    pub shipment_date: Option<String>,
    /// Cancelled (`Отменен`); `Some(false)` un-cancels.
    pub cancelled: Option<bool>,
    /// Deletion mark (`ПометкаУдаления`, child or trait).
    pub deleted: Option<bool>,
    /// Problems reading the document's values (a malformed boolean, …).
    pub warnings: Vec<String>,
}

/// The changes to make to one order. Only fields that differ from the stored order are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// New site status code.
    pub status: Option<String>,
    /// New 1C status name.
    pub status_1c: Option<String>,
    /// New paid flag.
    pub paid: Option<bool>,
    /// New shipped flag.
    pub shipped: Option<bool>,
    /// New cancelled flag.
    pub cancelled: Option<bool>,
    /// New deletion mark.
    pub deleted: Option<bool>,
    /// New 1C number.
    pub number_1c: Option<String>,
    /// New 1C date.
    pub date_1c: Option<String>,
    /// New 1C document id.
    pub id_1c: Option<String>,
    /// New 1C payment number.
    pub payment_number_1c: Option<String>,
    /// New 1C payment date.
    pub payment_date_1c: Option<String>,
    /// New 1C shipment number.
    pub shipment_number_1c: Option<String>,
    /// New 1C shipment date.
    pub shipment_date_1c: Option<String>,
    /// Messages for the journal and for 1C (unknown status, …). Not a change.
    pub messages: Vec<String>,
}

impl Update {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.status_1c.is_none()
            && self.paid.is_none()
            && self.shipped.is_none()
            && self.cancelled.is_none()
            && self.deleted.is_none()
            && self.number_1c.is_none()
            && self.date_1c.is_none()
            && self.id_1c.is_none()
            && self.payment_number_1c.is_none()
            && self.payment_date_1c.is_none()
            && self.shipment_number_1c.is_none()
            && self.shipment_date_1c.is_none()
    }
}

impl Update {
    /// Sets the fields of `facts` this update sets, as a store applies it.
    pub fn apply_to(&self, facts: &mut OrderFacts) {
        let texts = [
            (&mut facts.status_1c, &self.status_1c),
            (&mut facts.number_1c, &self.number_1c),
            (&mut facts.date_1c, &self.date_1c),
            (&mut facts.id_1c, &self.id_1c),
            (&mut facts.payment_number_1c, &self.payment_number_1c),
            (&mut facts.payment_date_1c, &self.payment_date_1c),
            (&mut facts.shipment_number_1c, &self.shipment_number_1c),
            (&mut facts.shipment_date_1c, &self.shipment_date_1c),
        ];
        for (slot, new) in texts {
            if let Some(new) = new {
                *slot = Some(new.clone());
            }
        }
        let flags = [
            (&mut facts.paid, self.paid),
            (&mut facts.shipped, self.shipped),
            (&mut facts.cancelled, self.cancelled),
            (&mut facts.deleted, self.deleted),
        ];
        for (slot, new) in flags {
            if let Some(new) = new {
                *slot = new;
            }
        }
        if let Some(status) = &self.status {
            facts.status.clone_from(status);
        }
    }
}

/// The journal message for a status nobody mapped.
pub fn unknown_status_message(value: &str, number: &str) -> String {
    format!("Unknown status \"{value}\" for order {number}")
}

/// The journal message for a document whose order obmen does not know.
pub fn unknown_order_message(number: &str) -> String {
    format!("Order {number} not found")
}

/// Reads what a 1C document says.
pub fn interpret(doc: &Document, mapping: &StatusMapping) -> Incoming {
    let kind = doc.operation_kind();
    let subordinate = kind.is_payment() || kind == Operation::Shipment;
    let mut inc = Incoming {
        subordinate,
        ..Incoming::default()
    };
    let text = |name: &str| {
        doc.requisite(name)
            .map(str::trim)
            .filter(|v| !is_empty_value(v))
            .map(str::to_owned)
    };
    let flag = |name: &str, warnings: &mut Vec<String>| match doc.requisite(name) {
        Some(v) => parse_bool(v).unwrap_or_else(|e| {
            warnings.push(format!("{name}: {e}"));
            None
        }),
        None => None,
    };
    let mut warnings = Vec::new();

    inc.number = if subordinate {
        clean(doc.basis.as_deref())
    } else {
        clean(doc.number.as_deref()).or_else(|| clean(doc.id.as_deref()))
    };
    if !subordinate {
        inc.id = clean(doc.id.as_deref());
        inc.number_1c = clean(doc.number_1c.as_deref()).or_else(|| text(t::REQ_NUMBER_1C));
        inc.date_1c = clean(doc.date_1c.as_deref())
            .filter(|d| !is_empty_value(d))
            .or_else(|| text(t::REQ_DATE_1C));
        inc.status_name = text(t::REQ_STATUS);
        inc.status = mapping.resolve(
            doc.requisite(t::REQ_STATUS_ID),
            doc.requisite(t::REQ_STATUS),
        );
        if inc.status_name.is_none() {
            // Only the code came: 1C's name for it is the mapped one (keeps `status_1c` current).
            if let StatusResolution::Mapped(code) = &inc.status {
                inc.status_name = mapping.by_code(code).map(|e| e.name_1c.clone());
            }
        }
        inc.cancelled = flag(t::REQ_CANCELLED, &mut warnings);
    } else {
        inc.status = StatusResolution::Absent;
    }

    inc.deleted = doc
        .deletion_mark
        .or_else(|| flag(t::REQ_DELETION_MARK, &mut warnings));

    // Payment: on an order document `Оплачен` or a non-empty `Дата оплаты по 1С`; a payment
    // document is itself the payment, paid unless cancelled or `Оплачен` = false.
    inc.payment_number = text(t::REQ_PAYMENT_NUMBER_1C);
    inc.payment_date = text(t::REQ_PAYMENT_DATE_1C);
    let paid_flag = flag(t::REQ_PAID, &mut warnings);
    inc.paid = if kind.is_payment() {
        let cancelled = flag(t::REQ_CANCELLED, &mut warnings) == Some(true);
        let deleted = inc.deleted == Some(true);
        if cancelled || deleted {
            Some(false)
        } else {
            inc.payment_number = inc.payment_number.or_else(|| clean(doc.number.as_deref()));
            inc.payment_date = inc.payment_date.or_else(|| clean(doc.date.as_deref()));
            Some(paid_flag.unwrap_or(true))
        }
    } else if paid_flag == Some(true) || inc.payment_date.is_some() {
        Some(true)
    } else {
        paid_flag
    };

    inc.shipment_number = text(t::REQ_SHIPMENT_NUMBER_1C);
    inc.shipment_date = text(t::REQ_SHIPMENT_DATE_1C);
    let shipped_flag = flag(t::REQ_SHIPPED, &mut warnings);
    inc.shipped = if kind == Operation::Shipment {
        let cancelled = flag(t::REQ_CANCELLED, &mut warnings) == Some(true);
        if cancelled || inc.deleted == Some(true) {
            Some(false)
        } else {
            inc.shipment_number = inc.shipment_number.or_else(|| clean(doc.number.as_deref()));
            inc.shipment_date = inc.shipment_date.or_else(|| clean(doc.date.as_deref()));
            Some(shipped_flag.unwrap_or(true))
        }
    } else if shipped_flag == Some(true) || inc.shipment_date.is_some() {
        Some(true)
    } else {
        shipped_flag
    };
    if subordinate {
        // A deletion mark on a payment or shipment document is about that document.
        inc.deleted = None;
    }
    inc.warnings = warnings;
    inc
}

/// Compares the facts with the stored order and returns only the changes.
pub fn plan(order: &OrderFacts, inc: &Incoming) -> Update {
    let mut u = Update::default();
    let number = order.number.as_str();
    match &inc.status {
        StatusResolution::Absent => {}
        StatusResolution::Mapped(code) => {
            if *code != order.status {
                u.status = Some(code.clone());
            }
        }
        StatusResolution::Unknown(value) => {
            u.messages.push(unknown_status_message(value, number));
        }
    }
    if matches!(inc.status, StatusResolution::Mapped(_)) {
        u.status_1c = changed(&order.status_1c, &inc.status_name);
    }
    u.paid = inc.paid.filter(|p| *p != order.paid);
    u.shipped = inc.shipped.filter(|s| *s != order.shipped);
    u.cancelled = inc.cancelled.filter(|c| *c != order.cancelled);
    u.deleted = inc.deleted.filter(|d| *d != order.deleted);
    u.number_1c = changed(&order.number_1c, &inc.number_1c);
    u.date_1c = changed(&order.date_1c, &inc.date_1c);
    let foreign_id = inc
        .id
        .clone()
        .filter(|id| *id != order.id.to_string() && *id != order.number);
    u.id_1c = changed(&order.id_1c, &foreign_id);
    u.payment_number_1c = changed(&order.payment_number_1c, &inc.payment_number);
    u.payment_date_1c = changed(&order.payment_date_1c, &inc.payment_date);
    u.shipment_number_1c = changed(&order.shipment_number_1c, &inc.shipment_number);
    u.shipment_date_1c = changed(&order.shipment_date_1c, &inc.shipment_date);
    u.messages
        .extend(inc.warnings.iter().map(|w| format!("Order {number}: {w}")));
    u
}

fn clean(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `Some(new)` when `new` is present and differs from `old`.
fn changed(old: &Option<String>, new: &Option<String>) -> Option<String> {
    match new {
        Some(n) if old.as_deref() != Some(n.as_str()) => Some(n.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use commerceml::Requisite;

    use super::*;
    use crate::domain::{Customer, Order, OrderInput, Source};

    fn order() -> Order {
        Order {
            id: 7,
            input: OrderInput {
                number: "A-7".into(),
                created_at: None,
                status: Some("N".into()),
                currency: None,
                customer: Customer::default(),
                delivery: None,
                payment: None,
                items: vec![],
                discounts: vec![],
                comment: None,
                properties: Default::default(),
            },
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
            updated_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            history: vec![],
        }
    }

    fn doc(reqs: &[(&str, &str)]) -> Document {
        Document {
            id: Some("7".into()),
            number: Some("A-7".into()),
            number_1c: Some("L319".into()),
            date_1c: Some("2017-08-01".into()),
            operation: Some(t::OP_ORDER.into()),
            requisites: reqs
                .iter()
                .map(|(n, v)| Requisite {
                    name: (*n).into(),
                    value: Some((*v).into()),
                })
                .collect(),
            ..Document::default()
        }
    }

    #[test]
    fn an_applied_update_plans_nothing_more() {
        let mapping = StatusMapping::default();
        let mut doc = Document {
            number: Some("A-7".into()),
            ..Document::default()
        };
        for (name, value) in [
            (t::REQ_STATUS, "Готов к отгрузке"),
            (t::REQ_NUMBER_1C, "УТ-1"),
            (t::REQ_PAYMENT_NUMBER_1C, "ОП-1"),
            (t::REQ_CANCELLED, "true"),
        ] {
            doc.requisites.push(Requisite {
                name: name.into(),
                value: Some(value.into()),
            });
        }
        let inc = interpret(&doc, &mapping);
        let mut facts = order().facts();
        let update = plan(&facts, &inc);
        assert!(update.status.is_some() && update.cancelled == Some(true));
        update.apply_to(&mut facts);
        assert_eq!(facts.status, "D");
        assert_eq!(facts.number_1c.as_deref(), Some("УТ-1"));
        assert!(plan(&facts, &inc).is_empty());
    }

    #[test]
    fn mapped_status_paid_and_shipped() {
        let m = StatusMapping::default();
        let d = doc(&[
            (t::REQ_STATUS, "Передан курьеру"),
            (t::REQ_PAYMENT_DATE_1C, "2015-06-29T15:39:10"),
            (t::REQ_PAYMENT_NUMBER_1C, "ТДЦУ-000001"),
            (t::REQ_SHIPMENT_DATE_1C, "T"),
            (t::REQ_CANCELLED, "false"),
        ]);
        let inc = interpret(&d, &m);
        assert_eq!(inc.number.as_deref(), Some("A-7"));
        let u = plan(&order().facts(), &inc);
        assert_eq!(u.status.as_deref(), Some("F"));
        assert_eq!(u.status_1c.as_deref(), Some("Передан курьеру"));
        assert_eq!(u.paid, Some(true));
        assert_eq!(u.shipped, None, "`T` is an empty date");
        assert_eq!(u.cancelled, None, "already not cancelled");
        assert_eq!(u.number_1c.as_deref(), Some("L319"));
        assert_eq!(u.payment_number_1c.as_deref(), Some("ТДЦУ-000001"));
        assert!(u.messages.is_empty());
    }

    #[test]
    fn a_code_alone_reports_the_mapped_1c_name() {
        let m = StatusMapping::default();
        let mut o = order();
        o.status_1c = Some("В работе".into());
        let u = plan(&o.facts(), &interpret(&doc(&[(t::REQ_STATUS_ID, "F")]), &m));
        assert_eq!(u.status.as_deref(), Some("F"));
        assert_eq!(u.status_1c.as_deref(), Some("Передан курьеру"));
    }

    #[test]
    fn unknown_status_changes_nothing_but_other_facts_apply() {
        let m = StatusMapping::default();
        let d = doc(&[(t::REQ_STATUS, "Открыт"), (t::REQ_SHIPPED, "true")]);
        let u = plan(&order().facts(), &interpret(&d, &m));
        assert_eq!(u.status, None);
        assert_eq!(u.status_1c, None);
        assert_eq!(u.shipped, Some(true));
        assert_eq!(u.messages, vec![r#"Unknown status "Открыт" for order A-7"#]);
    }

    #[test]
    fn code_wins_over_name_and_replay_is_empty() {
        let m = StatusMapping::default();
        let d = doc(&[(t::REQ_STATUS_ID, "D"), (t::REQ_STATUS, "whatever")]);
        let inc = interpret(&d, &m);
        let mut o = order();
        let u = plan(&o.facts(), &inc);
        assert_eq!(u.status.as_deref(), Some("D"));
        // Apply and plan again: nothing left to do.
        o.input.status = Some("D".into());
        o.status_1c = u.status_1c.clone();
        o.number_1c = u.number_1c.clone();
        o.date_1c = u.date_1c.clone();
        let again = plan(&o.facts(), &inc);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn payment_document_refers_to_its_order() {
        let m = StatusMapping::default();
        let d = Document {
            number: Some("PAY-1".into()),
            date: Some("2026-01-02".into()),
            basis: Some("A-7".into()),
            operation: Some(t::OP_TRANSFER_PAYMENT.into()),
            ..Document::default()
        };
        let inc = interpret(&d, &m);
        assert!(inc.subordinate);
        assert_eq!(inc.number.as_deref(), Some("A-7"));
        let u = plan(&order().facts(), &inc);
        assert_eq!(u.paid, Some(true));
        assert_eq!(u.payment_number_1c.as_deref(), Some("PAY-1"));
        assert_eq!(u.number_1c, None);
    }

    #[test]
    fn deletion_mark_and_malformed_flag() {
        let m = StatusMapping::default();
        let mut d = doc(&[(t::REQ_CANCELLED, "perhaps")]);
        d.deletion_mark = Some(true);
        let u = plan(&order().facts(), &interpret(&d, &m));
        assert_eq!(u.deleted, Some(true));
        assert_eq!(u.cancelled, None);
        assert_eq!(u.messages.len(), 1);
        assert!(u.messages[0].contains("perhaps"), "{:?}", u.messages);
    }
}
