//! The exchange-relevant store operations on SQLite and on PostgreSQL, side by side: load N
//! orders in batches, load them again (a replay: nothing changes), page through the due orders
//! (`query`), record and confirm them (`success`), apply N status updates in batches (`import`).
//!
//! ```sh
//! OBMEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p store --example store_backends -- 10000
//! ```
//!
//! SQLite runs on a fresh file in a temporary directory; PostgreSQL in a fresh schema of the
//! database named by `OBMEN_TEST_POSTGRES_URL` (dropped afterwards). Without the variable only
//! SQLite runs.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use exchange::domain::{Customer, Delivery, Item, OrderInput, Payment};
use rust_decimal::Decimal;
use sqlx::{Connection, Executor, PgConnection};
use store::{NewSession, Store, Update};

const BATCH: usize = 1000;
const PAGE: u32 = 500;

type Fail = Box<dyn std::error::Error>;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(seconds)
}

fn order(i: usize) -> OrderInput {
    OrderInput {
        number: format!("B-{i:07}"),
        created_at: Some(at(0)),
        status: None,
        currency: Some("RUB".to_owned()),
        customer: Customer {
            name: Some(format!("Buyer {i}")),
            email: Some(format!("buyer{i}@example.com")),
            phone: Some("+7 900 000-00-00".to_owned()),
            address: Some("Moscow, Tverskaya 1".to_owned()),
            ..Customer::default()
        },
        delivery: Some(Delivery {
            method: Some("Courier".to_owned()),
            price: Some(Decimal::new(30_000, 2)),
            address: Some("Moscow, Tverskaya 1".to_owned()),
        }),
        payment: Some(Payment {
            method: Some("card".to_owned()),
            paid: false,
        }),
        items: (0..3)
            .map(|k| Item {
                sku: Some(format!("SKU-{k}")),
                id_1c: None,
                name: format!("Item {k}"),
                quantity: Decimal::from(k + 1),
                unit: None,
                price: Decimal::new(149_990, 2),
                discount: None,
                vat_rate: Some(Decimal::from(20)),
            })
            .collect(),
        discounts: Vec::new(),
        comment: None,
        properties: Default::default(),
    }
}

/// Step name and time.
type Timings = Vec<(&'static str, Duration)>;

async fn run(store: Arc<dyn Store>, n: usize) -> Result<Timings, Fail> {
    let inputs: Vec<OrderInput> = (0..n).map(order).collect();
    let statuses = vec!["N".to_owned(), "P".to_owned()];
    let mut out = Vec::new();

    let t = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for chunk in inputs.chunks(BATCH) {
        for o in store.upsert_orders(chunk, at(1)).await? {
            ids.push(o.order().id);
        }
    }
    out.push(("upsert_orders (new, batches of 1,000)", t.elapsed()));

    let t = Instant::now();
    for chunk in inputs.chunks(BATCH) {
        store.upsert_orders(chunk, at(2)).await?;
    }
    out.push(("upsert_orders (replay, unchanged)", t.elapsed()));

    let session = store
        .create_session(
            &NewSession {
                user: "1c".to_owned(),
                cookie: "bench-cookie".to_owned(),
                sessid: "bench-sessid".to_owned(),
            },
            at(3),
        )
        .await?;
    let t = Instant::now();
    let mut after = 0;
    let mut offered = Vec::with_capacity(n);
    loop {
        let page = store.orders_due(&statuses, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        offered.extend(page.iter().map(|o| (o.id, o.version)));
    }
    out.push(("orders_due, pages of 500 (query)", t.elapsed()));
    if offered.len() != n {
        return Err(format!("{} orders due, expected {n}", offered.len()).into());
    }

    let t = Instant::now();
    for chunk in offered.chunks(PAGE as usize) {
        store.record_offered(session.id, chunk, at(4)).await?;
    }
    let confirmed = store.confirm_session(session.id, at(5)).await?;
    out.push(("record_offered + confirm_session (success)", t.elapsed()));
    if confirmed != n as u64 {
        return Err(format!("{confirmed} confirmed, expected {n}").into());
    }

    let updates: Vec<(i64, Update)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                *id,
                Update {
                    status: Some("P".to_owned()),
                    status_1c: Some("В работе".to_owned()),
                    paid: Some(i % 2 == 0),
                    number_1c: Some(format!("1C-{i}")),
                    ..Update::default()
                },
            )
        })
        .collect();
    let t = Instant::now();
    let mut changed = 0;
    for chunk in updates.chunks(BATCH) {
        changed += store
            .apply_updates(chunk, at(6))
            .await?
            .iter()
            .filter(|c| **c)
            .count();
    }
    out.push(("apply_updates (batches of 1,000, import)", t.elapsed()));
    if changed != n {
        return Err(format!("{changed} updates applied, expected {n}").into());
    }
    Ok(out)
}

fn random_schema() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("obmen_bench_{:016x}", h.finish())
}

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("N: {e}"))?,
        None => 10_000,
    };
    let dir = tempfile::tempdir()?;
    let sqlite = store::open(&dir.path().join("bench.db").display().to_string()).await?;
    let sqlite_times = run(sqlite, n).await?;

    let pg_times = match std::env::var("OBMEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let schema = random_schema();
            let mut admin = PgConnection::connect(&url).await?;
            admin
                .execute(format!("CREATE SCHEMA {schema}").as_str())
                .await?;
            let sep = if url.contains('?') { '&' } else { '?' };
            let result = async {
                let pg = store::open(&format!("{url}{sep}options[search_path]={schema}")).await?;
                run(pg, n).await
            }
            .await;
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await?;
            Some(result?)
        }
        _ => {
            eprintln!("OBMEN_TEST_POSTGRES_URL is not set: SQLite only");
            None
        }
    };

    println!("N = {n}");
    println!("| step | SQLite | PostgreSQL |");
    println!("|---|---:|---:|");
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    for (i, (step, d)) in sqlite_times.iter().enumerate() {
        let pg = pg_times
            .as_ref()
            .and_then(|p| p.get(i))
            .map_or_else(|| "-".to_owned(), |(_, d)| ms(*d));
        println!("| {step} | {} | {pg} |", ms(*d));
    }
    Ok(())
}
