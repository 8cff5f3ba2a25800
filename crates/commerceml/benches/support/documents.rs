//! Generated Bitrix-shaped orders for the writer bench and the `write_throughput` example.

use commerceml::tags as t;
use commerceml::{Address, AddressField, Contact, Counterparty, Document, Line, Requisite, Unit};
use rust_decimal::Decimal;

fn requisite(name: &str, value: String) -> Requisite {
    Requisite {
        name: name.to_owned(),
        value: Some(value),
    }
}

/// A Bitrix-shaped order; `n` makes ids, names and amounts differ between orders.
pub fn order(n: u64) -> Document {
    let lines = (0..10)
        .map(|i| {
            let price = Decimal::new((n as i64 * 7 + i * 13) % 100_000 + 100, 2);
            Line {
                id: Some(format!("910e89e5-205e-4d95-872a-{n:06}{i:06}")),
                catalog_id: Some("42475bb5-958f-40dc-a99f-9ad996a27af1".to_owned()),
                name: Some(format!(
                    "Средство для мытья посуды «Апельсин» {n}-{i}, 800 мл & запасной блок"
                )),
                base_unit: Some(Unit {
                    code: Some(t::UNIT_PIECE_CODE.to_owned()),
                    full_name: Some(t::UNIT_PIECE_FULL.to_owned()),
                    international: Some(t::UNIT_PIECE_INTERNATIONAL.to_owned()),
                    short_name: Some(t::UNIT_PIECE_SHORT.to_owned()),
                    ..Unit::default()
                }),
                price_per_unit: Some(price),
                quantity: Some(Decimal::new(10_000, 4)),
                sum: Some(price),
                requisites: vec![
                    requisite(t::REQ_ITEM_KIND, t::ITEM_GOODS.to_owned()),
                    requisite(t::REQ_ITEM_TYPE, t::ITEM_GOODS.to_owned()),
                    requisite(t::REQ_BASKET_POSITION, format!("{}", n * 10 + i as u64)),
                ],
                ..Line::default()
            }
        })
        .collect::<Vec<_>>();
    let sum = lines.iter().filter_map(|l| l.sum).sum();
    Document {
        id: Some(n.to_string()),
        number: Some(n.to_string()),
        date: Some("2021-02-11".to_owned()),
        time: Some("18:45:21".to_owned()),
        operation: Some(t::OP_ORDER.to_owned()),
        role: Some(t::ROLE_SELLER.to_owned()),
        currency: Some("руб".to_owned()),
        rate: Some(Decimal::ONE),
        sum: Some(sum),
        version: Some(n.to_string()),
        comment: Some(format!("Позвонить за час до доставки, заказ №{n}")),
        counterparties: vec![Counterparty {
            id: Some(format!("{n}#buyer#Иванов Иван")),
            name: Some("Иванов Иван Иванович".to_owned()),
            full_name: Some("Иванов Иван Иванович".to_owned()),
            registration_address: Some(Address {
                presentation: Some("101000, Москва, ул. Ленина, д. 1, кв. 2".to_owned()),
                fields: vec![
                    AddressField {
                        kind: t::ADDR_POSTCODE.to_owned(),
                        value: "101000".to_owned(),
                    },
                    AddressField {
                        kind: t::ADDR_CITY.to_owned(),
                        value: "Москва".to_owned(),
                    },
                ],
                extra: vec![],
            }),
            contacts: vec![Contact {
                kind: t::CONTACT_EMAIL.to_owned(),
                value: format!("buyer{n}@example.com"),
                comment: None,
            }],
            role: Some(t::ROLE_BUYER.to_owned()),
            ..Counterparty::default()
        }],
        lines,
        requisites: vec![
            requisite(t::REQ_DELIVERY_METHOD, "Самовывоз".to_owned()),
            requisite(t::REQ_ORDER_PAID, "false".to_owned()),
            requisite(t::REQ_CANCELLED, "false".to_owned()),
            requisite(t::REQ_STATUS, "[N] Принят, ожидается оплата".to_owned()),
            requisite(t::REQ_STATUS_ID, "N".to_owned()),
            requisite(t::REQ_SITE, "[s1] Сайт по умолчанию".to_owned()),
        ],
        ..Document::default()
    }
}
