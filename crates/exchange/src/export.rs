//! An order as the CommerceML document 1C receives from `query` (PROTOCOL.md §8.2–§8.5, §8.9).
//!
//! Totals reconcile by construction: every line carries its final `Сумма` (discounts already
//! applied), an order-level discount travels as its own line, and the document `Сумма` is the
//! sum of the lines.

use chrono::{DateTime, FixedOffset, Utc};
use commerceml::tags as t;
use commerceml::{
    Address, Contact, Counterparty, Discount, Document, Line, Requisite, SchemaVersion, Tax,
    TaxRate, Unit,
};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::{CustomerType, Item, Order};
use crate::settings::{DiscountMode, ExchangeSettings};

/// `Ид` of the line that carries an order-level discount.
pub const DISCOUNT_LINE_ID: &str = "ORDER_DISCOUNT";

/// Builds the order document for one order in the given schema version.
pub fn order_document(
    order: &Order,
    schema: &SchemaVersion,
    settings: &ExchangeSettings,
) -> Document {
    let input = &order.input;
    let offset = FixedOffset::east_opt(settings.utc_offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset is valid"));
    let created = input
        .created_at
        .unwrap_or(order.updated_at)
        .with_timezone(&offset);
    let currency = settings
        .currency
        .clone()
        .or_else(|| input.currency.clone())
        .unwrap_or_else(|| "RUB".to_owned());

    let order_discount: Decimal = money(input.discounts.iter().map(|d| d.amount).sum());
    let mut lines: Vec<Line> = input.items.iter().map(goods_line).collect();
    let distribute = settings.discount_mode == DiscountMode::Distribute
        && order_discount > Decimal::ZERO
        && order_discount <= goods_total(&lines);
    if distribute {
        let weights: Vec<Decimal> = lines.iter().map(|l| l.sum.unwrap_or_default()).collect();
        for ((line, share), item) in lines
            .iter_mut()
            .zip(distribute_kopecks(order_discount, &weights))
            .zip(&input.items)
        {
            apply_order_discount_share(line, item, share);
        }
    }
    let mut taxes: Vec<Tax> = Vec::new();
    for line in &lines {
        for tax in &line.taxes {
            add_tax(&mut taxes, tax);
        }
    }
    if let Some(price) = input
        .delivery
        .as_ref()
        .and_then(|d| d.price)
        .filter(|p| *p > Decimal::ZERO)
    {
        lines.push(service_line(
            t::DELIVERY_LINE_ID,
            input
                .delivery
                .as_ref()
                .and_then(|d| d.method.clone())
                .unwrap_or_else(|| t::DELIVERY_LINE_NAME.to_owned()),
            money(price),
        ));
    }
    if order_discount > Decimal::ZERO && !distribute {
        let name = match input.discounts.as_slice() {
            [one] => one.name.clone(),
            _ => None,
        }
        .unwrap_or_else(|| t::DISCOUNT_ON_ORDER.to_owned());
        lines.push(service_line(DISCOUNT_LINE_ID, name, -order_discount));
    }
    let sum: Decimal = lines.iter().filter_map(|l| l.sum).sum();

    let status = input.status_code();
    let mut doc = Document {
        id: Some(order.id.to_string()),
        number: Some(input.number.clone()),
        number_1c: order.number_1c.clone(),
        date: Some(created.format("%Y-%m-%d").to_string()),
        time: Some(created.format("%H:%M:%S").to_string()),
        operation: Some(t::OP_ORDER.to_owned()),
        role: Some(t::ROLE_SELLER.to_owned()),
        currency: Some(currency),
        rate: Some(Decimal::ONE),
        sum: Some(sum),
        version: Some(order.version.to_string()),
        counterparties: vec![buyer(order)],
        taxes,
        lines,
        ..Document::default()
    };

    let modern = schema.at_least("2.10");
    let mut req = |name: &str, value: String| {
        doc.requisites.push(Requisite {
            name: name.to_owned(),
            value: Some(value),
        });
    };
    if let Some(delivery) = &input.delivery {
        if let Some(method) = &delivery.method {
            req(t::REQ_DELIVERY_METHOD, method.clone());
        }
    }
    if let Some(method) = input.payment.as_ref().and_then(|p| p.method.clone()) {
        req(t::REQ_PAYMENT_METHOD, method);
    }
    req(t::REQ_ORDER_PAID, bool_text(order.paid));
    if !modern {
        req(t::REQ_DELIVERY_ALLOWED, bool_text(false));
    }
    req(t::REQ_CANCELLED, bool_text(order.cancelled));
    req(
        t::REQ_FINAL_STATUS,
        bool_text(settings.final_statuses.iter().any(|f| f == status)),
    );
    req(
        t::REQ_STATUS,
        format!("[{status}] {}", settings.statuses.display_name(status)),
    );
    req(t::REQ_STATUS_ID, status.to_owned());
    if let Some(last) = order.history.last() {
        req(
            t::REQ_STATUS_CHANGED_AT,
            trait_datetime(last.at, offset, modern),
        );
    }
    if let Some(comment) = input.comment.as_ref().filter(|c| !c.trim().is_empty()) {
        req(t::REQ_BUYER_COMMENT, comment.clone());
    }
    req(t::REQ_SITE, settings.site.clone());
    for (key, value) in &input.properties {
        match settings.properties.get(key) {
            Some(name) => req(name, value.clone()),
            None if settings.export_unmapped_properties => req(key, value.clone()),
            None => {}
        }
    }
    if let Some(address) = input
        .delivery
        .as_ref()
        .and_then(|d| d.address.clone())
        .or_else(|| input.customer.address.clone())
        .filter(|a| !a.trim().is_empty())
    {
        req(t::REQ_DELIVERY_ADDRESS, address);
    }
    doc
}

/// Formats a trait date-time: `dd.mm.yyyy HH:MM:SS` before 2.10, ISO from 2.10 (§8.1).
fn trait_datetime(at: DateTime<Utc>, offset: FixedOffset, modern: bool) -> String {
    let local = at.with_timezone(&offset);
    if modern {
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        local.format("%d.%m.%Y %H:%M:%S").to_string()
    }
}

fn bool_text(v: bool) -> String {
    if v { "true" } else { "false" }.to_owned()
}

/// Rounds to kopecks, half away from zero.
pub fn money(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn goods_line(item: &Item) -> Line {
    let gross = item.price * item.quantity;
    let discount = item.discount.unwrap_or_default();
    let net = money(gross - discount);
    let unit_price = if item.quantity.is_zero() {
        money(item.price)
    } else {
        money(net / item.quantity)
    };
    let mut line = Line {
        id: item.id_1c.clone().or_else(|| item.sku.clone()),
        sku: item.sku.clone(),
        name: Some(item.name.clone()),
        unit: Some(unit(item.unit.as_deref())),
        coefficient: Some(Decimal::ONE),
        price_per_unit: Some(unit_price),
        quantity: Some(item.quantity),
        sum: Some(net),
        requisites: vec![
            requisite(t::REQ_ITEM_KIND, t::ITEM_GOODS),
            requisite(t::REQ_ITEM_TYPE, t::ITEM_GOODS),
        ],
        ..Line::default()
    };
    if discount > Decimal::ZERO {
        let per_unit = if item.quantity.is_zero() {
            money(discount)
        } else {
            money(discount / item.quantity)
        };
        line.discounts.push(Discount {
            name: Some(t::DISCOUNT_ON_LINE.to_owned()),
            sum: Some(per_unit),
            included: Some(true),
            ..Discount::default()
        });
    }
    if let Some(rate) = item.vat_rate.filter(|r| *r > Decimal::ZERO) {
        line.tax_rates.push(TaxRate {
            name: Some(t::TAX_VAT.to_owned()),
            rate: Some(rate.normalize().to_string()),
        });
        line.taxes.push(Tax {
            name: Some(t::TAX_VAT.to_owned()),
            included: Some(true),
            sum: Some(money(net * rate / (Decimal::ONE_HUNDRED + rate))),
            rate: None,
        });
    }
    line
}

fn goods_total(lines: &[Line]) -> Decimal {
    lines.iter().filter_map(|l| l.sum).sum()
}

/// Splits `amount` (whole kopecks) over `weights` in proportion, by largest remainder: the
/// shares are whole kopecks and add up to `amount` exactly. Zero total weight gives the whole
/// amount to the first share.
pub fn distribute_kopecks(amount: Decimal, weights: &[Decimal]) -> Vec<Decimal> {
    let cents = (money(amount) * Decimal::ONE_HUNDRED).trunc();
    let total: Decimal = weights.iter().copied().filter(|w| *w > Decimal::ZERO).sum();
    let mut shares = vec![Decimal::ZERO; weights.len()];
    if weights.is_empty() {
        return shares;
    }
    if total.is_zero() {
        shares[0] = cents / Decimal::ONE_HUNDRED;
        return shares;
    }
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given = Decimal::ZERO;
    for (i, w) in weights.iter().enumerate() {
        let exact = cents * w.max(&Decimal::ZERO) / total;
        let floor = exact.floor();
        shares[i] = floor;
        given += floor;
        remainders.push((exact - floor, i));
    }
    // Largest remainder first; ties go to the earlier line so the result is deterministic.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left = cents - given;
    for (_, i) in remainders {
        if left <= Decimal::ZERO {
            break;
        }
        shares[i] += Decimal::ONE;
        left -= Decimal::ONE;
    }
    shares.iter().map(|s| s / Decimal::ONE_HUNDRED).collect()
}

/// Takes a share of the order discount into a goods line: the line sum drops by the share, the
/// unit price follows, and the line discount grows accordingly.
fn apply_order_discount_share(line: &mut Line, item: &Item, share: Decimal) {
    if share.is_zero() {
        return;
    }
    let net = line.sum.unwrap_or_default() - share;
    line.sum = Some(net);
    if !item.quantity.is_zero() {
        line.price_per_unit = Some(money(net / item.quantity));
    }
    let total_discount = item.discount.unwrap_or_default() + share;
    let per_unit = if item.quantity.is_zero() {
        total_discount
    } else {
        money(total_discount / item.quantity)
    };
    line.discounts = vec![Discount {
        name: Some(t::DISCOUNT_ON_LINE.to_owned()),
        sum: Some(per_unit),
        included: Some(true),
        ..Discount::default()
    }];
    if let (Some(tax), Some(rate)) = (line.taxes.first_mut(), item.vat_rate) {
        tax.sum = Some(money(net * rate / (Decimal::ONE_HUNDRED + rate)));
    }
}

fn service_line(id: &str, name: String, amount: Decimal) -> Line {
    Line {
        id: Some(id.to_owned()),
        name: Some(name),
        unit: Some(unit(None)),
        coefficient: Some(Decimal::ONE),
        price_per_unit: Some(amount),
        quantity: Some(Decimal::ONE),
        sum: Some(amount),
        requisites: vec![
            requisite(t::REQ_ITEM_KIND, t::ITEM_SERVICE),
            requisite(t::REQ_ITEM_TYPE, t::ITEM_SERVICE),
        ],
        ..Line::default()
    }
}

fn unit(short: Option<&str>) -> Unit {
    match short.map(str::trim).filter(|s| !s.is_empty()) {
        None => piece(),
        Some(s) if commerceml::names_match(s, t::UNIT_PIECE_SHORT) => piece(),
        Some(s) => Unit {
            short_name: Some(s.to_owned()),
            full_name: Some(s.to_owned()),
            ..Unit::default()
        },
    }
}

fn piece() -> Unit {
    Unit {
        code: Some(t::UNIT_PIECE_CODE.to_owned()),
        full_name: Some(t::UNIT_PIECE_FULL.to_owned()),
        international: Some(t::UNIT_PIECE_INTERNATIONAL.to_owned()),
        short_name: Some(t::UNIT_PIECE_SHORT.to_owned()),
        id: None,
    }
}

fn requisite(name: &str, value: &str) -> Requisite {
    Requisite {
        name: name.to_owned(),
        value: Some(value.to_owned()),
    }
}

fn add_tax(taxes: &mut Vec<Tax>, tax: &Tax) {
    match taxes.iter_mut().find(|x| x.name == tax.name) {
        Some(x) => x.sum = Some(x.sum.unwrap_or_default() + tax.sum.unwrap_or_default()),
        None => taxes.push(tax.clone()),
    }
}

/// The buyer as a counterparty. Its `Ид` is derived from the e-mail, else the phone, else the
/// name, so the same buyer keeps the same `Ид` in every order and every export.
fn buyer(order: &Order) -> Counterparty {
    let c = &order.input.customer;
    let person_name = [c.last_name.as_deref(), c.first_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = c
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| Some(person_name.clone()).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| format!("Order {}", order.input.number));
    let key = c
        .email
        .as_deref()
        .map(str::to_lowercase)
        .or_else(|| {
            c.phone
                .as_deref()
                .map(|p| p.chars().filter(char::is_ascii_digit).collect())
        })
        .filter(|k: &String| !k.is_empty())
        .unwrap_or_else(|| name.to_lowercase());
    let address = c
        .address
        .as_ref()
        .filter(|a| !a.trim().is_empty())
        .map(|a| Address {
            presentation: Some(a.clone()),
            ..Address::default()
        });
    let mut contacts = Vec::new();
    if let Some(phone) = c.phone.as_ref().filter(|p| !p.trim().is_empty()) {
        contacts.push(Contact {
            kind: t::CONTACT_PHONE.to_owned(),
            value: phone.clone(),
            comment: None,
        });
    }
    if let Some(email) = c.email.as_ref().filter(|e| !e.trim().is_empty()) {
        contacts.push(Contact {
            kind: t::CONTACT_EMAIL.to_owned(),
            value: email.clone(),
            comment: None,
        });
    }
    let mut cp = Counterparty {
        id: Some(format!("buyer-{:016x}", fnv1a(key.as_bytes()))),
        name: Some(name.clone()),
        role: Some(t::ROLE_BUYER.to_owned()),
        inn: c.inn.clone(),
        kpp: c.kpp.clone(),
        contacts,
        ..Counterparty::default()
    };
    match c.kind {
        CustomerType::Person => {
            cp.full_name = Some(name);
            cp.last_name = c.last_name.clone();
            cp.first_name = c.first_name.clone();
            cp.registration_address = address;
        }
        CustomerType::Company => {
            cp.official_name = Some(name);
            cp.legal_address = address;
        }
    }
    cp
}

/// FNV-1a, 64 bit: a stable, dependency-free hash for derived identifiers.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{Customer, Delivery, OrderDiscount, OrderInput, Payment};

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn item(price: &str, qty: &str, discount: Option<&str>, vat: Option<&str>) -> Item {
        Item {
            sku: Some("SKU".into()),
            id_1c: None,
            name: "Thing".into(),
            quantity: d(qty),
            unit: None,
            price: d(price),
            discount: discount.map(d),
            vat_rate: vat.map(d),
        }
    }

    fn order(input: OrderInput) -> Order {
        Order {
            version: 3,
            ..Order::new(
                42,
                input,
                Utc.with_ymd_and_hms(2026, 11, 29, 9, 5, 3).unwrap(),
            )
        }
    }

    fn input() -> OrderInput {
        OrderInput {
            number: "1001".into(),
            created_at: Some(Utc.with_ymd_and_hms(2026, 11, 29, 9, 5, 3).unwrap()),
            status: None,
            currency: Some("RUB".into()),
            customer: Customer {
                first_name: Some("Ivan".into()),
                last_name: Some("Petrov".into()),
                email: Some("Ivan@example.com".into()),
                phone: Some("+7 900 000-00-00".into()),
                ..Customer::default()
            },
            delivery: Some(Delivery {
                method: Some("Courier".into()),
                price: Some(d("340")),
                address: Some("Moscow, Lenina 1".into()),
            }),
            payment: Some(Payment {
                method: Some("Card".into()),
                paid: false,
            }),
            items: vec![
                item("100.00", "3", Some("10"), Some("20")),
                item("33.33", "1", None, None),
            ],
            discounts: vec![OrderDiscount {
                name: Some("Promo".into()),
                amount: d("50.005"),
            }],
            comment: Some("Call first".into()),
            properties: Default::default(),
        }
    }

    #[test]
    fn lines_add_up_to_the_document_sum() {
        let s = ExchangeSettings::default();
        let doc = order_document(&order(input()), &SchemaVersion::v2_05(), &s);
        let sums: Vec<Decimal> = doc.lines.iter().map(|l| l.sum.unwrap()).collect();
        assert_eq!(sums, vec![d("290"), d("33.33"), d("340"), d("-50.01")]);
        assert_eq!(doc.sum, Some(d("613.32")));
        assert_eq!(doc.sum_matches(), Some(true));
        assert_eq!(doc.lines[0].price_per_unit, Some(d("96.67")));
        assert_eq!(doc.lines[0].discounts[0].sum, Some(d("3.33")));
        assert_eq!(doc.lines[0].taxes[0].sum, Some(d("48.33")));
        assert_eq!(doc.lines[2].id.as_deref(), Some(t::DELIVERY_LINE_ID));
        assert!(doc.lines[2].is_service());
        assert_eq!(doc.lines[3].id.as_deref(), Some(DISCOUNT_LINE_ID));
    }

    #[test]
    fn header_and_requisites_follow_bitrix() {
        let s = ExchangeSettings::default();
        let doc = order_document(&order(input()), &SchemaVersion::v2_05(), &s);
        assert_eq!(doc.id.as_deref(), Some("42"));
        assert_eq!(doc.number.as_deref(), Some("1001"));
        // 09:05:03 UTC is 12:05:03 in Moscow.
        assert_eq!(doc.date.as_deref(), Some("2026-11-29"));
        assert_eq!(doc.time.as_deref(), Some("12:05:03"));
        assert_eq!(
            doc.requisite(t::REQ_STATUS),
            Some("[N] Принят, ожидается оплата")
        );
        assert_eq!(doc.requisite(t::REQ_STATUS_ID), Some("N"));
        assert_eq!(doc.requisite(t::REQ_FINAL_STATUS), Some("false"));
        assert_eq!(doc.requisite(t::REQ_DELIVERY_METHOD), Some("Courier"));
        assert_eq!(doc.requisite(t::REQ_DELIVERY_ALLOWED), Some("false"));
        assert_eq!(doc.requisite(t::REQ_BUYER_COMMENT), Some("Call first"));
        assert_eq!(
            doc.requisite(t::REQ_DELIVERY_ADDRESS),
            Some("Moscow, Lenina 1")
        );
        let modern = order_document(&order(input()), &SchemaVersion::parse("2.10").unwrap(), &s);
        assert_eq!(modern.requisite(t::REQ_DELIVERY_ALLOWED), None);
    }

    #[test]
    fn buyer_id_is_stable_and_case_insensitive() {
        let s = ExchangeSettings::default();
        let a = order_document(&order(input()), &SchemaVersion::v2_05(), &s);
        let mut other = input();
        other.number = "1002".into();
        other.customer.email = Some("ivan@EXAMPLE.com".into());
        let b = order_document(&order(other), &SchemaVersion::v2_05(), &s);
        assert_eq!(a.counterparties[0].id, b.counterparties[0].id);
        assert_eq!(
            a.counterparties[0].full_name.as_deref(),
            Some("Petrov Ivan")
        );
        assert_eq!(a.counterparties[0].contacts.len(), 2);
    }

    #[test]
    fn largest_remainder_leaves_no_residue() {
        let shares = distribute_kopecks(d("100"), &[d("1"), d("1"), d("1")]);
        assert_eq!(shares, vec![d("33.34"), d("33.33"), d("33.33")]);
        let shares = distribute_kopecks(d("0.05"), &[d("10"), d("30"), d("60")]);
        assert_eq!(shares, vec![d("0.01"), d("0.01"), d("0.03")]);
        assert_eq!(distribute_kopecks(d("1"), &[d("0")]), vec![d("1")]);
        assert!(distribute_kopecks(d("1"), &[]).is_empty());
    }

    #[test]
    fn distribute_mode_spreads_the_order_discount_over_goods() {
        let s = ExchangeSettings {
            discount_mode: DiscountMode::Distribute,
            ..ExchangeSettings::default()
        };
        let doc = order_document(&order(input()), &SchemaVersion::v2_05(), &s);
        assert!(doc
            .lines
            .iter()
            .all(|l| l.id.as_deref() != Some(DISCOUNT_LINE_ID)));
        let goods: Decimal = doc.lines[..2].iter().map(|l| l.sum.unwrap()).sum();
        assert_eq!(goods, d("290") + d("33.33") - d("50.01"));
        assert_eq!(doc.sum_matches(), Some(true));
        assert_eq!(doc.sum, Some(d("613.32")));
    }

    #[test]
    fn mapped_properties_become_requisites() {
        let mut s = ExchangeSettings::default();
        s.properties
            .insert("utm_source".into(), "UTM источник".into());
        let mut i = input();
        i.properties.insert("utm_source".into(), "yandex".into());
        i.properties.insert("internal".into(), "x".into());
        let doc = order_document(&order(i.clone()), &SchemaVersion::v2_05(), &s);
        assert_eq!(doc.requisite("UTM источник"), Some("yandex"));
        assert_eq!(doc.requisite("internal"), None);
        s.export_unmapped_properties = true;
        let doc = order_document(&order(i), &SchemaVersion::v2_05(), &s);
        assert_eq!(doc.requisite("internal"), Some("x"));
    }
}
