//! Times the store's bulk paths on a SQLite file: load N orders, page through the due orders,
//! record and confirm delivery, apply N status updates.
//!
//! `cargo run --release -p store --example store_bulk -- [N] [DB_URL]` (N defaults to 100000,
//! the database to a fresh file in a temporary directory).

use std::time::Instant;

use chrono::{TimeZone, Utc};
use exchange::domain::{Customer, Item, OrderInput};
use rust_decimal::Decimal;
use store::{NewSession, Update};

const BATCH: usize = 1000;

fn order(i: usize) -> OrderInput {
    OrderInput {
        number: format!("B-{i:07}"),
        created_at: None,
        status: None,
        currency: Some("RUB".to_owned()),
        customer: Customer {
            name: Some(format!("Покупатель {i}")),
            email: Some(format!("buyer{i}@example.com")),
            phone: Some("+7 900 000-00-00".to_owned()),
            address: Some("Москва, ул. Тверская, д. 1".to_owned()),
            ..Customer::default()
        },
        delivery: None,
        payment: None,
        items: (0..3)
            .map(|k| Item {
                sku: Some(format!("SKU-{k}")),
                id_1c: None,
                name: format!("Товар {k}"),
                quantity: Decimal::from(k + 1),
                unit: None,
                price: Decimal::new(99_990, 2),
                discount: None,
                vat_rate: Some(Decimal::from(20)),
            })
            .collect(),
        discounts: Vec::new(),
        comment: None,
        properties: Default::default(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let url = match args.next() {
        Some(url) => url,
        None => dir.path().join("bulk.db").display().to_string(),
    };
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
        .single()
        .ok_or("bad date")?;
    let store = store::open(&url).await?;

    let t = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(order(i));
        if batch.len() == BATCH || i + 1 == n {
            store.upsert_orders(&batch, now).await?;
            batch.clear();
        }
    }
    println!("upsert_orders   {n} orders: {:?}", t.elapsed());

    let session = store
        .create_session(
            &NewSession {
                user: "1c".to_owned(),
                cookie: "bench".to_owned(),
                sessid: "bench".to_owned(),
            },
            now,
        )
        .await?;
    let statuses = vec!["N".to_owned(), "P".to_owned()];
    let t = Instant::now();
    let mut after = 0;
    let mut total = 0;
    let mut ids = Vec::with_capacity(n);
    loop {
        let page = store.orders_due(&statuses, after, BATCH as u32).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        total += page.len();
        let offered: Vec<(i64, i64)> = page.iter().map(|o| (o.id, o.version)).collect();
        store.record_offered(session.id, &offered, now).await?;
        ids.extend(page.iter().map(|o| o.id));
    }
    println!(
        "orders_due + record_offered {total} orders: {:?}",
        t.elapsed()
    );

    let t = Instant::now();
    let confirmed = store.confirm_session(session.id, now).await?;
    println!("confirm_session {confirmed} rows: {:?}", t.elapsed());

    let t = Instant::now();
    let mut changed = 0;
    for chunk in ids.chunks(BATCH) {
        let updates: Vec<(i64, Update)> = chunk
            .iter()
            .map(|id| {
                (
                    *id,
                    Update {
                        status: Some("P".to_owned()),
                        status_1c: Some("В работе".to_owned()),
                        number_1c: Some(format!("УТ-{id}")),
                        ..Update::default()
                    },
                )
            })
            .collect();
        changed += store
            .apply_updates(&updates, now)
            .await?
            .iter()
            .filter(|c| **c)
            .count();
    }
    println!("apply_updates   {changed} changed: {:?}", t.elapsed());
    Ok(())
}
