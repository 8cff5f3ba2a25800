//! Property: in every discount mode and schema version, the lines of an exported order add up
//! to the document `Сумма` exactly, and no kopeck of the order discount is lost.

use chrono::{TimeZone, Utc};
use commerceml::SchemaVersion;
use exchange::domain::{Customer, Delivery, Item, Order, OrderDiscount, OrderInput, Source};
use exchange::export::{order_document, DISCOUNT_LINE_ID};
use exchange::settings::{DiscountMode, ExchangeSettings};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn cents(max: i64) -> impl Strategy<Value = Decimal> {
    (0..=max).prop_map(|c| Decimal::new(c, 2))
}

prop_compose! {
    fn item()(price in cents(1_000_000), qty in 1i64..5000, qty_scale in 0u32..=3,
              discount_pct in 0i64..=100, vat in prop::sample::select(vec![0i64, 10, 18, 20]))
              -> Item {
        let quantity = Decimal::new(qty, qty_scale);
        let gross = price * quantity;
        let discount = (gross * Decimal::new(discount_pct, 2)).round_dp(2);
        Item {
            sku: Some("S".into()),
            id_1c: None,
            name: "P".into(),
            quantity,
            unit: None,
            price,
            discount: (discount > Decimal::ZERO).then_some(discount),
            vat_rate: (vat > 0).then(|| Decimal::from(vat)),
        }
    }
}

prop_compose! {
    fn order()(items in prop::collection::vec(item(), 0..8),
               delivery in prop::option::of(cents(100_000)),
               discounts in prop::collection::vec(cents(50_000), 0..3)) -> Order {
        Order {
            id: 1,
            input: OrderInput {
                number: "1".into(),
                created_at: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
                status: None,
                currency: None,
                customer: Customer::default(),
                delivery: delivery.map(|p| Delivery { method: None, price: Some(p), address: None }),
                payment: None,
                items,
                discounts: discounts
                    .into_iter()
                    .map(|amount| OrderDiscount { name: None, amount })
                    .collect(),
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lines_always_add_up(order in order(),
                           mode in prop::sample::select(vec![DiscountMode::Line, DiscountMode::Distribute]),
                           version in prop::sample::select(vec!["2.05", "2.08", "2.10", "3.1"])) {
        let settings = ExchangeSettings { discount_mode: mode, ..ExchangeSettings::default() };
        let doc = order_document(&order, &SchemaVersion::parse(version).unwrap(), &settings);
        let lines: Decimal = doc.lines.iter().map(|l| l.sum.unwrap()).sum();
        prop_assert_eq!(Some(lines), doc.sum);
        // Every amount is whole kopecks.
        for l in &doc.lines {
            let s = l.sum.unwrap();
            prop_assert_eq!(s, s.round_dp(2));
        }
        // The order discount is all there: as its own line or inside the goods lines.
        let discount: Decimal = order.input.discounts.iter().map(|d| d.amount).sum();
        let goods_before: Decimal = order.input.items.iter()
            .map(|i| exchange::export::money(i.price * i.quantity - i.discount.unwrap_or_default()))
            .sum();
        let goods_after: Decimal = doc.lines.iter()
            .filter(|l| !l.is_service())
            .map(|l| l.sum.unwrap())
            .sum();
        let discount_line: Decimal = doc.lines.iter()
            .filter(|l| l.id.as_deref() == Some(DISCOUNT_LINE_ID))
            .map(|l| l.sum.unwrap())
            .sum();
        prop_assert_eq!(goods_before - goods_after - discount_line, exchange::export::money(discount));
    }
}
