//! The SQLite implementation of [`Store`]: one file, WAL, one writer connection and a few
//! readers; write transactions start with `BEGIN IMMEDIATE` so two writers (two processes on the
//! same file included) queue on `busy_timeout` instead of failing mid-transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use exchange::domain::{Order, OrderFacts, OrderInput, Source, StatusChange};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::Row;

use crate::lookup::{facts_from_row, Column, Resolver, FACT_COLUMNS};
use crate::outbox::HandoffSlot;
use crate::switch::Switch;
use crate::{
    Error, Handoff, ImportProgress, JournalEntry, JournalRecord, NewSession, OrderFilter,
    OutboxEntry, OutboxFilter, Result, Session, SessionReport, Store, Update, UpsertOutcome,
    WebhookEvent,
};

mod group;
mod outbox;
mod webhook;

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Reader connections (WAL lets them run beside the writer).
const READERS: u32 = 4;
/// Bound parameters per `IN (…)` list.
const IN_CHUNK: usize = 500;
/// Orders whose `confirmed_version` one transaction of `confirm_session` raises.
const CONFIRM_STEP: i64 = 5000;

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Push outbox switch (off until [`Store::enable_outbox`]).
    outbox: Switch,
    /// Webhook events switch (off until [`Store::enable_webhook_events`]).
    webhook: Switch,
    /// Hand-off of new outbox entries to this process's push worker (none until
    /// [`Store::enable_outbox_handoff`]).
    handoff: HandoffSlot,
    /// Single-order writes waiting for the group commit.
    writes: crate::group::Writes,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite:PATH`, `sqlite://PATH`,
    /// `sqlite::memory:` or a plain path) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("temp_store", "memory")
            // 4 MiB page cache per connection keeps the server within its memory budget.
            .pragma("cache_size", "-4000");
        // One long-lived writer connection (an in-memory database lives only as long as it).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // An in-memory database exists only on its one connection.
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options)
                .await?
        };
        Ok(Self {
            writer,
            reader,
            outbox: Switch::default(),
            webhook: Switch::default(),
            handoff: HandoffSlot::default(),
            writes: crate::group::writes(),
        })
    }

    /// Raises `orders.confirmed_version` to the versions this session's ledger confirmed,
    /// [`CONFIRM_STEP`] orders per transaction.
    async fn sync_confirmed_versions(&self, session_id: i64) -> Result<()> {
        let mut after = 0i64;
        loop {
            let upto: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(order_id) FROM (SELECT DISTINCT order_id FROM delivery_ledger \
                 WHERE session_id = ? AND order_id > ? ORDER BY order_id LIMIT ?)",
            )
            .bind(session_id)
            .bind(after)
            .bind(CONFIRM_STEP)
            .fetch_one(&self.reader)
            .await?;
            let Some(upto) = upto else { return Ok(()) };
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE orders SET confirmed_version = d.version \
                 FROM (SELECT order_id, MAX(version) AS version FROM delivery_ledger \
                       WHERE session_id = ? AND order_id > ? AND order_id <= ? \
                       GROUP BY order_id) AS d \
                 WHERE orders.id = d.order_id AND orders.confirmed_version < d.version",
            )
            .bind(session_id)
            .bind(after)
            .bind(upto)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            after = upto;
        }
    }

    /// Closes the connections (waits for them to be returned).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Starts a write transaction. The start runs in a task of its own: sqlx's `begin_with`
    /// is not cancel-safe (dropped after its `BEGIN` ran, it returns the connection to the pool
    /// inside a transaction nobody ends, and every later write fails), and a caller's future
    /// may be dropped at any await (1C disconnects, a timeout). If the caller is gone, the task
    /// drops the finished transaction, which rolls it back.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        let writer = self.writer.clone();
        tokio::spawn(async move { writer.begin_with("BEGIN IMMEDIATE").await })
            .await
            .map_err(|e| Error::Invalid(format!("the transaction start failed: {e}")))?
            .map_err(Error::from)
    }

    /// The push worker's hand-off, if it has one.
    fn handoff(&self) -> Option<Handoff> {
        self.handoff.get()
    }
}

// ----- value conversions -----

/// Fixed-width RFC 3339 UTC, so text order is time order.
fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("bad time {text:?}: {e}")))
}

fn parse_source(text: &str) -> Result<Source> {
    match text {
        "store" => Ok(Source::Store),
        "1c" => Ok(Source::OneC),
        other => Err(Error::Corrupt(format!("bad change source {other:?}"))),
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Invalid(format!("{what} too large: {n}")))
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

// ----- orders -----

/// The tables [`ORDER_COLUMNS`] come from: the order row and its body.
const ORDER_FROM: &str = "orders JOIN order_bodies ON order_bodies.order_id = orders.id";

const ORDER_COLUMNS: &str = "id, body, status, status_1c, paid, shipped, cancelled, deleted, \
     number_1c, date_1c, id_1c, payment_number_1c, payment_date_1c, shipment_number_1c, \
     shipment_date_1c, version, last_change_source, created_at, updated_at, submitted_status";

/// An order row without its history, plus what only the store needs.
struct OrderRow {
    order: Order,
    submitted_status: String,
    submitted_body: String,
}

fn order_from_row(row: &SqliteRow) -> Result<OrderRow> {
    let body: String = row.try_get("body")?;
    let mut input: OrderInput = from_json(&body, "order body")?;
    let status: String = row.try_get("status")?;
    let created_at = parse_ts(&row.try_get::<String, _>("created_at")?)?;
    input.status = Some(status);
    input.created_at = Some(created_at);
    let order = Order {
        id: row.try_get("id")?,
        input,
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
        version: row.try_get("version")?,
        last_change_source: parse_source(&row.try_get::<String, _>("last_change_source")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
        history: Vec::new(),
    };
    Ok(OrderRow {
        order,
        submitted_status: row.try_get("submitted_status")?,
        submitted_body: body,
    })
}

async fn fetch_order_row(
    conn: &mut SqliteConnection,
    clause: &str,
    bind: &str,
) -> Result<Option<OrderRow>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE {clause}");
    let row = sqlx::query(&sql)
        .bind(bind)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

async fn fetch_order_by_id(conn: &mut SqliteConnection, id: i64) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE id = ?");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut order = order_from_row(&row)?.order;
    order.history = history_of(conn, id).await?;
    Ok(Some(order))
}

async fn history_of(conn: &mut SqliteConnection, order_id: i64) -> Result<Vec<StatusChange>> {
    let rows = sqlx::query(
        "SELECT status, source, at FROM order_status_history WHERE order_id = ? ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(change_from_row).collect()
}

fn change_from_row(row: &SqliteRow) -> Result<StatusChange> {
    Ok(StatusChange {
        status: row.try_get("status")?,
        source: parse_source(&row.try_get::<String, _>("source")?)?,
        at: parse_ts(&row.try_get::<String, _>("at")?)?,
    })
}

/// Fills in the history of `orders` with one query per [`IN_CHUNK`] orders.
async fn attach_history(conn: &mut SqliteConnection, orders: &mut [Order]) -> Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let mut index: HashMap<i64, usize> = HashMap::with_capacity(orders.len());
    for (i, o) in orders.iter().enumerate() {
        index.insert(o.id, i);
    }
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT order_id, status, source, at FROM order_status_history \
             WHERE order_id IN ({}) ORDER BY order_id, id",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let order_id: i64 = row.try_get("order_id")?;
            if let Some(&i) = index.get(&order_id) {
                orders[i].history.push(change_from_row(&row)?);
            }
        }
    }
    Ok(())
}

async fn add_history(
    conn: &mut SqliteConnection,
    order_id: i64,
    status: &str,
    source: Source,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_status_history (order_id, status, source, at) VALUES (?, ?, ?, ?)",
    )
    .bind(order_id)
    .bind(status)
    .bind(source.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn input_paid(input: &OrderInput) -> bool {
    input.payment.as_ref().is_some_and(|p| p.paid)
}

async fn upsert_in(
    conn: &mut SqliteConnection,
    input: &OrderInput,
    now: DateTime<Utc>,
) -> Result<UpsertOutcome> {
    if input.number.trim().is_empty() {
        return Err(Error::Invalid("order number is empty".to_owned()));
    }
    let body = json(input)?;
    let now_text = ts(now);
    let status = input.status_code().to_owned();
    let existing = fetch_order_row(conn, "number = ?", &input.number).await?;
    let Some(existing) = existing else {
        let created_at = input.created_at.unwrap_or(now);
        let paid = input_paid(input);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (number, submitted_status, status, paid, version, \
             confirmed_version, last_change_source, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 1, 0, 'store', ?, ?) RETURNING id",
        )
        .bind(&input.number)
        .bind(&status)
        .bind(&status)
        .bind(paid)
        .bind(ts(created_at))
        .bind(&now_text)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query("INSERT INTO order_bodies (order_id, body) VALUES (?, ?)")
            .bind(id)
            .bind(&body)
            .execute(&mut *conn)
            .await?;
        add_history(conn, id, &status, Source::Store, &now_text).await?;
        return Ok(UpsertOutcome::Created(created_order(
            id, input, status, created_at, paid, now,
        )));
    };
    let OrderRow {
        mut order,
        submitted_status,
        submitted_body,
    } = existing;
    order.history = history_of(conn, order.id).await?;
    if submitted_body == body {
        return Ok(UpsertOutcome::Unchanged(order));
    }
    let previous: Option<OrderInput> = serde_json::from_str(&submitted_body).ok();
    // The store changes the status (and the paid flag) only when it submits a different one
    // than before; otherwise what 1C set stays.
    let status_changes = status != submitted_status && order.input.status_code() != status;
    let new_status = if status != submitted_status {
        status.clone()
    } else {
        order.input.status_code().to_owned()
    };
    let paid = if previous.as_ref().map(input_paid) != Some(input_paid(input)) {
        input_paid(input)
    } else {
        order.paid
    };
    let created_at = input.created_at.or(order.input.created_at).unwrap_or(now);
    sqlx::query(
        "UPDATE orders SET submitted_status = ?, status = ?, paid = ?, \
         version = version + 1, last_change_source = 'store', created_at = ?, updated_at = ? \
         WHERE id = ?",
    )
    .bind(&status)
    .bind(&new_status)
    .bind(paid)
    .bind(ts(created_at))
    .bind(&now_text)
    .bind(order.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE order_bodies SET body = ? WHERE order_id = ?")
        .bind(&body)
        .bind(order.id)
        .execute(&mut *conn)
        .await?;
    if status_changes {
        add_history(conn, order.id, &new_status, Source::Store, &now_text).await?;
        order.history.push(StatusChange {
            status: new_status.clone(),
            source: Source::Store,
            at: now,
        });
    }
    let mut stored = input.clone();
    stored.status = Some(new_status);
    stored.created_at = Some(created_at);
    order.input = stored;
    order.paid = paid;
    order.version += 1;
    order.last_change_source = Source::Store;
    order.updated_at = now;
    Ok(UpsertOutcome::Updated(order))
}

/// The order [`upsert_in`] / [`upsert_batch`] just inserted.
fn created_order(
    id: i64,
    input: &OrderInput,
    status: String,
    created_at: DateTime<Utc>,
    paid: bool,
    now: DateTime<Utc>,
) -> Order {
    let mut stored = input.clone();
    stored.status = Some(status.clone());
    stored.created_at = Some(created_at);
    Order {
        id,
        input: stored,
        status_1c: None,
        paid,
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
        updated_at: now,
        history: vec![StatusChange {
            status,
            source: Source::Store,
            at: now,
        }],
    }
}

/// Rows per multi-row INSERT in [`upsert_batch`] (7 parameters a row).
const INSERT_CHUNK: usize = 500;

/// [`upsert_in`] for many orders with a few statements per [`INSERT_CHUNK`] new orders: existing
/// orders are looked up in bulk, unchanged ones skipped, changed ones updated one by one, new
/// ones inserted with multi-row statements.
async fn upsert_batch(
    conn: &mut SqliteConnection,
    inputs: &[OrderInput],
    now: DateTime<Utc>,
) -> Result<Vec<UpsertOutcome>> {
    let mut seen = HashSet::with_capacity(inputs.len());
    if !inputs.iter().all(|i| seen.insert(i.number.as_str())) {
        // A number repeats: one by one, so a later input sees the earlier one.
        let mut outcomes = Vec::with_capacity(inputs.len());
        for input in inputs {
            outcomes.push(upsert_in(conn, input, now).await?);
        }
        return Ok(outcomes);
    }
    if inputs.iter().any(|i| i.number.trim().is_empty()) {
        return Err(Error::Invalid("order number is empty".to_owned()));
    }
    let mut existing: HashMap<String, OrderRow> = HashMap::new();
    for chunk in inputs.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE number IN ({})",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for input in chunk {
            q = q.bind(&input.number);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let row = order_from_row(&row)?;
            existing.insert(row.order.input.number.clone(), row);
        }
    }

    let mut outcomes: Vec<Option<UpsertOutcome>> = vec![None; inputs.len()];
    let mut unchanged: Vec<(usize, Order)> = Vec::new();
    let mut new: Vec<(usize, String)> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let body = json(input)?;
        match existing.remove(&input.number) {
            Some(row) if row.submitted_body == body => unchanged.push((i, row.order)),
            Some(_) => outcomes[i] = Some(upsert_in(conn, input, now).await?),
            None => new.push((i, body)),
        }
    }
    let (positions, mut orders): (Vec<usize>, Vec<Order>) = unchanged.into_iter().unzip();
    attach_history(conn, &mut orders).await?;
    for (i, order) in positions.into_iter().zip(orders) {
        outcomes[i] = Some(UpsertOutcome::Unchanged(order));
    }

    let now_text = ts(now);
    for chunk in new.chunks(INSERT_CHUNK) {
        let values = vec!["(?, ?, ?, ?, 1, 0, 'store', ?, ?)"; chunk.len()].join(",");
        let sql = format!(
            "INSERT INTO orders (number, submitted_status, status, paid, version, \
             confirmed_version, last_change_source, created_at, updated_at) VALUES {values} \
             RETURNING id, number"
        );
        let mut q = sqlx::query(&sql);
        for (i, _) in chunk {
            let input = &inputs[*i];
            let status = input.status_code();
            q = q
                .bind(&input.number)
                .bind(status)
                .bind(status)
                .bind(input_paid(input))
                .bind(ts(input.created_at.unwrap_or(now)))
                .bind(&now_text);
        }
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(chunk.len());
        for row in q.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get("number")?, row.try_get("id")?);
        }
        let values = vec!["(?, ?)"; chunk.len()].join(",");
        let sql = format!("INSERT INTO order_bodies (order_id, body) VALUES {values}");
        let mut q = sqlx::query(&sql);
        for (i, body) in chunk {
            let number = &inputs[*i].number;
            let id = *ids
                .get(number)
                .ok_or_else(|| Error::Corrupt(format!("order {number} not returned by INSERT")))?;
            q = q.bind(id).bind(body);
        }
        q.execute(&mut *conn).await?;
        let values = vec!["(?, ?, 'store', ?)"; chunk.len()].join(",");
        let sql = format!(
            "INSERT INTO order_status_history (order_id, status, source, at) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for (i, _) in chunk {
            let input = &inputs[*i];
            let id = *ids.get(&input.number).ok_or_else(|| {
                Error::Corrupt(format!("order {} not returned by INSERT", input.number))
            })?;
            q = q.bind(id).bind(input.status_code()).bind(&now_text);
            outcomes[*i] = Some(UpsertOutcome::Created(created_order(
                id,
                input,
                input.status_code().to_owned(),
                input.created_at.unwrap_or(now),
                input_paid(input),
                now,
            )));
        }
        q.execute(&mut *conn).await?;
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| Error::Corrupt("an order of the batch was skipped".to_owned())))
        .collect()
}

/// What 1C can change in an order, as stored.
#[derive(Clone, PartialEq, Eq)]
struct Facts {
    status: String,
    /// `TEXT_COLUMNS`, in order.
    texts: [Option<String>; 8],
    /// `FLAG_COLUMNS`, in order.
    flags: [bool; 4],
}

const TEXT_COLUMNS: [&str; 8] = [
    "status_1c",
    "number_1c",
    "date_1c",
    "id_1c",
    "payment_number_1c",
    "payment_date_1c",
    "shipment_number_1c",
    "shipment_date_1c",
];
const FLAG_COLUMNS: [&str; 4] = ["paid", "shipped", "cancelled", "deleted"];

impl Facts {
    fn from_row(row: &SqliteRow) -> Result<Self> {
        let mut texts: [Option<String>; 8] = Default::default();
        for (slot, column) in texts.iter_mut().zip(TEXT_COLUMNS) {
            *slot = row.try_get(column)?;
        }
        let mut flags = [false; 4];
        for (slot, column) in flags.iter_mut().zip(FLAG_COLUMNS) {
            *slot = row.try_get(column)?;
        }
        Ok(Self {
            status: row.try_get("status")?,
            texts,
            flags,
        })
    }

    /// Applies the fields of `u` that differ; returns whether the status changed.
    fn apply(&mut self, u: &Update) -> bool {
        let texts = [
            &u.status_1c,
            &u.number_1c,
            &u.date_1c,
            &u.id_1c,
            &u.payment_number_1c,
            &u.payment_date_1c,
            &u.shipment_number_1c,
            &u.shipment_date_1c,
        ];
        for (slot, new) in self.texts.iter_mut().zip(texts) {
            if let Some(new) = new {
                if slot.as_deref() != Some(new.as_str()) {
                    *slot = Some(new.clone());
                }
            }
        }
        let flags = [u.paid, u.shipped, u.cancelled, u.deleted];
        for (slot, new) in self.flags.iter_mut().zip(flags) {
            if let Some(new) = new {
                *slot = new;
            }
        }
        match &u.status {
            Some(status) if *status != self.status => {
                self.status = status.clone();
                true
            }
            _ => false,
        }
    }
}

/// Rows per multi-row statement in [`write_facts`] (14 parameters a row).
const UPDATE_CHUNK: usize = 500;

impl Facts {
    fn of(order: &OrderFacts) -> Self {
        Self {
            status: order.status.clone(),
            texts: [
                order.status_1c.clone(),
                order.number_1c.clone(),
                order.date_1c.clone(),
                order.id_1c.clone(),
                order.payment_number_1c.clone(),
                order.payment_date_1c.clone(),
                order.shipment_number_1c.clone(),
                order.shipment_date_1c.clone(),
            ],
            flags: [order.paid, order.shipped, order.cancelled, order.deleted],
        }
    }
}

/// A status change to record: order id, new status, 1C's status name.
type HistoryEntry = (i64, String, Option<String>);

/// Applies updates to orders in the open write transaction: reads the orders' current facts,
/// applies the differing fields in order (an order may appear more than once), then writes the
/// changed orders and their history ([`write_facts`]). Returns one "changed" flag per update.
/// [`Error::NotFound`] for an unknown order. With `events`, each status change also records a
/// webhook event.
async fn apply_batch(
    conn: &mut SqliteConnection,
    updates: &[(i64, Update)],
    now: DateTime<Utc>,
    events: bool,
) -> Result<Vec<bool>> {
    // Current facts of every order named in the batch.
    let mut ids: Vec<i64> = updates.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut facts: HashMap<i64, Facts> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT id, status, {}, {} FROM orders WHERE id IN ({})",
            TEXT_COLUMNS.join(", "),
            FLAG_COLUMNS.join(", "),
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            facts.insert(row.try_get("id")?, Facts::from_row(&row)?);
        }
    }
    if facts.len() != ids.len() {
        return Err(Error::NotFound);
    }
    let original = facts.clone();

    // Apply in order; collect the history entries.
    let mut changed = Vec::with_capacity(updates.len());
    let mut history: Vec<HistoryEntry> = Vec::new();
    for (id, update) in updates {
        let Some(current) = facts.get_mut(id) else {
            return Err(Error::NotFound);
        };
        let before = current.clone();
        let status_changed = current.apply(update);
        changed.push(*current != before);
        if status_changed {
            // `texts[0]` is `status_1c` (see `TEXT_COLUMNS`).
            history.push((*id, current.status.clone(), current.texts[0].clone()));
        }
    }

    // Write the orders whose facts differ from what was stored.
    let dirty: Vec<(i64, &Facts)> = ids
        .iter()
        .filter_map(|id| {
            let f = facts.get(id)?;
            (original.get(id) != Some(f)).then_some((*id, f))
        })
        .collect();
    write_facts(conn, &dirty, &history, now, events).await?;
    Ok(changed)
}

/// Writes the facts of changed orders (last change from 1C, `updated_at` = `now`) and their
/// status history with a few multi-row statements per [`UPDATE_CHUNK`] orders; with `events`,
/// a webhook event per status change.
async fn write_facts(
    conn: &mut SqliteConnection,
    dirty: &[(i64, &Facts)],
    history: &[HistoryEntry],
    now: DateTime<Utc>,
    events: bool,
) -> Result<()> {
    let now_text = ts(now);
    let mut assignments = String::from("status = v.column2");
    for (i, column) in TEXT_COLUMNS.iter().chain(FLAG_COLUMNS.iter()).enumerate() {
        assignments.push_str(&format!(", {column} = v.column{}", i + 3));
    }
    for chunk in dirty.chunks(UPDATE_CHUNK) {
        let row = format!(
            "({})",
            placeholders(2 + TEXT_COLUMNS.len() + FLAG_COLUMNS.len())
        );
        let values = vec![row; chunk.len()].join(",");
        let sql = format!(
            "UPDATE orders SET {assignments}, last_change_source = '1c', updated_at = ? \
             FROM (VALUES {values}) AS v WHERE orders.id = v.column1"
        );
        // The `updated_at` placeholder comes first in the text; bind in text order.
        let mut q = sqlx::query(&sql).bind(&now_text);
        for (id, f) in chunk {
            q = q.bind(*id).bind(&f.status);
            for text in &f.texts {
                q = q.bind(text);
            }
            for flag in f.flags {
                q = q.bind(flag);
            }
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in history.chunks(UPDATE_CHUNK) {
        let values = vec!["(?, ?, '1c', ?)"; chunk.len()].join(",");
        let sql = format!(
            "INSERT INTO order_status_history (order_id, status, source, at) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for (id, status, _) in chunk {
            q = q.bind(*id).bind(status).bind(&now_text);
        }
        q.execute(&mut *conn).await?;
    }
    if events {
        webhook::record(conn, history, now).await?;
    }
    Ok(())
}

/// [`Store::find_orders_for_documents`] on a given connection.
async fn find_facts(
    conn: &mut SqliteConnection,
    keys: &[(Option<&str>, Option<&str>)],
) -> Result<Vec<Option<OrderFacts>>> {
    let mut resolver = Resolver::new(keys);
    for column in Column::PASSES {
        let wanted = resolver.wanted(column);
        let mut orders = Vec::new();
        for chunk in wanted.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT {FACT_COLUMNS} FROM orders WHERE {} IN ({}) ORDER BY id",
                column.name(),
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for value in chunk {
                q = match column {
                    // `wanted` holds only numeric ids for this column.
                    Column::Id => q.bind(value.parse::<i64>().unwrap_or_default()),
                    _ => q.bind(value.as_str()),
                };
            }
            for row in q.fetch_all(&mut *conn).await? {
                orders.push(facts_from_row(&row)?);
            }
        }
        resolver.accept(column, orders);
    }
    Ok(resolver.finish())
}

/// [`Store::apply_documents`] in the open write transaction: each order's facts are read once,
/// by the lookup, and the plans are made against them as the batch changes them.
async fn apply_documents_in(
    conn: &mut SqliteConnection,
    keys: &[(Option<&str>, Option<&str>)],
    plan: &mut (dyn for<'f> FnMut(usize, &'f OrderFacts) -> Update + Send),
    now: DateTime<Utc>,
    events: bool,
) -> Result<Vec<Option<bool>>> {
    let found = find_facts(conn, keys).await?;
    let mut answers = vec![None; keys.len()];
    // Per order: its facts as stored and as the batch leaves them, in order of first mention.
    let mut orders: Vec<(Facts, OrderFacts)> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::with_capacity(keys.len());
    let mut history: Vec<HistoryEntry> = Vec::new();
    for (i, facts) in found.into_iter().enumerate() {
        let Some(facts) = facts else { continue };
        let at = *index.entry(facts.id).or_insert_with(|| {
            orders.push((Facts::of(&facts), facts));
            orders.len() - 1
        });
        let current = &mut orders[at].1;
        let update = plan(i, current);
        if update.is_empty() {
            answers[i] = Some(false);
            continue;
        }
        let before = current.clone();
        update.apply_to(current);
        answers[i] = Some(*current != before);
        if current.status != before.status {
            history.push((
                current.id,
                current.status.clone(),
                current.status_1c.clone(),
            ));
        }
    }
    let changed: Vec<(i64, Facts)> = orders
        .iter()
        .filter_map(|(stored, current)| {
            let now = Facts::of(current);
            (now != *stored).then_some((current.id, now))
        })
        .collect();
    let dirty: Vec<(i64, &Facts)> = changed.iter().map(|(id, f)| (*id, f)).collect();
    write_facts(conn, &dirty, &history, now, events).await?;
    Ok(answers)
}

fn session_from_row(row: &SqliteRow) -> Result<Session> {
    Ok(Session {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        cookie: row.try_get("cookie")?,
        sessid: row.try_get("sessid")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        last_seen_at: parse_ts(&row.try_get::<String, _>("last_seen_at")?)?,
        version: row.try_get("version")?,
        zip: row.try_get("zip")?,
        legacy: row.try_get("legacy")?,
        sessid_seen: row.try_get("sessid_seen")?,
        attributes: from_json::<BTreeMap<String, String>>(
            &row.try_get::<String, _>("attributes")?,
            "session attributes",
        )?,
    })
}

const SESSION_COLUMNS: &str = "id, user_name, cookie, sessid, created_at, last_seen_at, version, \
     zip, legacy, sessid_seen, attributes";

fn journal_from_row(row: &SqliteRow) -> Result<JournalRecord> {
    Ok(JournalRecord {
        id: row.try_get("id")?,
        entry: JournalEntry {
            session_id: row.try_get("session_id")?,
            exchange_type: row.try_get("exchange_type")?,
            mode: row.try_get("mode")?,
            filename: row.try_get("filename")?,
            bytes: to_u64(row.try_get("bytes")?),
            documents: to_u64(row.try_get("documents")?),
            messages: from_json(&row.try_get::<String, _>("messages")?, "journal messages")?,
            error: row.try_get("error")?,
            duration_ms: row.try_get::<Option<i64>, _>("duration_ms")?.map(to_u64),
            at: parse_ts(&row.try_get::<String, _>("at")?)?,
        },
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_order(&self, input: &OrderInput, now: DateTime<Utc>) -> Result<UpsertOutcome> {
        crate::group::upsert_grouped(self, input, now).await
    }

    async fn upsert_orders(
        &self,
        inputs: &[OrderInput],
        now: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let mut tx = self.begin_write().await?;
        let outcomes = upsert_batch(&mut tx, inputs, now).await?;
        // Bulk loads are not handed off: the worker claims them at its own pace.
        crate::outbox::enqueue_and_commit(tx, &self.outbox, None, &outcomes, now).await?;
        Ok(outcomes)
    }

    async fn order_version(&self, id: i64) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT version FROM orders WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn order_by_number(&self, number: &str) -> Result<Option<Order>> {
        let mut conn = self.reader.acquire().await?;
        let Some(row) = fetch_order_row(&mut conn, "number = ?", number).await? else {
            return Ok(None);
        };
        let mut order = row.order;
        order.history = history_of(&mut conn, order.id).await?;
        Ok(Some(order))
    }

    async fn order_by_id(&self, id: i64) -> Result<Option<Order>> {
        let mut conn = self.reader.acquire().await?;
        fetch_order_by_id(&mut conn, id).await
    }

    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>> {
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE id > ?");
        if filter.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        if filter.changed_since.is_some() {
            sql.push_str(" AND updated_at >= ?");
        }
        sql.push_str(" ORDER BY id");
        if filter.limit.is_some() {
            sql.push_str(" LIMIT ?");
        }
        let mut q = sqlx::query(&sql).bind(filter.after_id.unwrap_or(i64::MIN));
        if let Some(status) = &filter.status {
            q = q.bind(status.clone());
        }
        if let Some(since) = filter.changed_since {
            q = q.bind(ts(since));
        }
        if let Some(limit) = filter.limit {
            q = q.bind(i64::from(limit));
        }
        let mut conn = self.reader.acquire().await?;
        let rows = q.fetch_all(&mut *conn).await?;
        let mut orders = rows
            .iter()
            .map(|r| order_from_row(r).map(|o| o.order))
            .collect::<Result<Vec<_>>>()?;
        attach_history(&mut conn, &mut orders).await?;
        Ok(orders)
    }

    async fn find_order_for_document(
        &self,
        number: Option<&str>,
        id: Option<&str>,
    ) -> Result<Option<Order>> {
        let number = number.map(str::trim).filter(|s| !s.is_empty());
        let id = id.map(str::trim).filter(|s| !s.is_empty());
        let mut conn = self.reader.acquire().await?;
        let mut found = None;
        if let Some(number) = number {
            found = fetch_order_row(&mut conn, "number = ?", number).await?;
        }
        if found.is_none() {
            if let Some(own) = id.and_then(|i| i.parse::<i64>().ok()) {
                found = fetch_order_row(&mut conn, "id = ?", &own.to_string()).await?;
            }
        }
        if found.is_none() {
            if let Some(number) = number {
                found =
                    fetch_order_row(&mut conn, "number_1c = ? ORDER BY id LIMIT 1", number).await?;
            }
        }
        if found.is_none() {
            if let Some(id) = id {
                found = fetch_order_row(&mut conn, "id_1c = ? ORDER BY id LIMIT 1", id).await?;
            }
        }
        let Some(row) = found else { return Ok(None) };
        let mut order = row.order;
        order.history = history_of(&mut conn, order.id).await?;
        Ok(Some(order))
    }

    async fn find_orders_for_documents(
        &self,
        keys: &[(Option<&str>, Option<&str>)],
    ) -> Result<Vec<Option<OrderFacts>>> {
        let mut conn = self.reader.acquire().await?;
        find_facts(&mut conn, keys).await
    }

    async fn apply_documents(
        &self,
        keys: &[(Option<&str>, Option<&str>)],
        plan: &mut (dyn for<'f> FnMut(usize, &'f OrderFacts) -> Update + Send),
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<bool>>> {
        let mut tx = self.begin_write().await?;
        let answers = apply_documents_in(&mut tx, keys, plan, now, self.webhook.is_on()).await?;
        if answers.contains(&Some(true)) {
            tx.commit().await?;
            self.webhook.wake();
        } else {
            tx.rollback().await?;
        }
        Ok(answers)
    }

    async fn apply_update(
        &self,
        order_id: i64,
        update: &Update,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let changed = apply_batch(
            &mut tx,
            &[(order_id, update.clone())],
            now,
            self.webhook.is_on(),
        )
        .await?
        .contains(&true);
        if changed {
            tx.commit().await?;
            self.webhook.wake();
        } else {
            tx.rollback().await?;
        }
        Ok(changed)
    }

    async fn apply_updates(
        &self,
        updates: &[(i64, Update)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let changed = apply_batch(&mut tx, updates, now, self.webhook.is_on()).await?;
        if changed.contains(&true) {
            tx.commit().await?;
            self.webhook.wake();
        } else {
            tx.rollback().await?;
        }
        Ok(changed)
    }

    async fn orders_due(
        &self,
        statuses: &[String],
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Order>> {
        if statuses.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders INDEXED BY orders_due_idx \
             JOIN order_bodies ON order_bodies.order_id = orders.id \
             WHERE last_change_source = 'store' AND confirmed_version < version \
             AND id > ? AND status IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM delivery_ledger AS c WHERE c.order_id = orders.id \
                             AND c.version = orders.version AND c.confirmed_at IS NOT NULL) \
             ORDER BY id LIMIT ?",
            placeholders(statuses.len())
        );
        let mut q = sqlx::query(&sql).bind(after_id);
        for s in statuses {
            q = q.bind(s.clone());
        }
        q = q.bind(i64::from(limit));
        let mut conn = self.reader.acquire().await?;
        let rows = q.fetch_all(&mut *conn).await?;
        let mut orders = rows
            .iter()
            .map(|r| order_from_row(r).map(|o| o.order))
            .collect::<Result<Vec<_>>>()?;
        attach_history(&mut conn, &mut orders).await?;
        Ok(orders)
    }

    async fn record_offered(
        &self,
        session_id: i64,
        offered: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if offered.is_empty() {
            return Ok(());
        }
        let now_text = ts(now);
        let mut tx = self.begin_write().await?;
        for chunk in offered.chunks(IN_CHUNK / 4) {
            let mut sql = String::from(
                "INSERT OR IGNORE INTO delivery_ledger (session_id, order_id, version, offered_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str("(?, ?, ?, ?)");
            }
            let mut q = sqlx::query(&sql);
            for (order_id, version) in chunk {
                q = q
                    .bind(session_id)
                    .bind(*order_id)
                    .bind(*version)
                    .bind(&now_text);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn confirm_session(&self, session_id: i64, now: DateTime<Utc>) -> Result<u64> {
        // The confirmation itself: the session's ledger rows (small), in one transaction.
        let mut tx = self.begin_write().await?;
        let confirmed = sqlx::query(
            "UPDATE delivery_ledger SET confirmed_at = ? \
             WHERE session_id = ? AND confirmed_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM delivery_ledger AS c WHERE c.order_id = delivery_ledger.order_id \
              AND c.version = delivery_ledger.version AND c.confirmed_at IS NOT NULL)",
        )
        .bind(ts(now))
        .bind(session_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        // Then the orders' `confirmed_version`, which only speeds up `orders_due` (that query
        // checks the ledger itself), in steps: SQLite keeps a transaction's dirty pages in
        // memory until it commits, and one UPDATE of 100,000 order rows held ~140 MiB. Run on
        // every call, so a `success` repeated after a crash between the steps completes them.
        self.sync_confirmed_versions(session_id).await?;
        Ok(confirmed)
    }

    async fn create_session(&self, new: &NewSession, now: DateTime<Utc>) -> Result<Session> {
        let now_text = ts(now);
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO exchange_sessions (user_name, cookie, sessid, created_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.user)
        .bind(&new.cookie)
        .bind(&new.sessid)
        .bind(&now_text)
        .bind(&now_text)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict("a session with this cookie exists".to_owned())
            } else {
                Error::Other(e)
            }
        })?;
        tx.commit().await?;
        Ok(Session {
            id,
            user: new.user.clone(),
            cookie: new.cookie.clone(),
            sessid: new.sessid.clone(),
            created_at: now,
            last_seen_at: now,
            version: None,
            zip: false,
            legacy: false,
            sessid_seen: false,
            attributes: BTreeMap::new(),
        })
    }

    async fn session_by_cookie(&self, cookie: &str) -> Result<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM exchange_sessions WHERE cookie = ?");
        let row = sqlx::query(&sql)
            .bind(cookie)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_by_id(&self, id: i64) -> Result<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM exchange_sessions WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn update_session(&self, session: &Session) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE exchange_sessions SET last_seen_at = ?, version = ?, zip = ?, legacy = ?, \
             sessid_seen = ?, attributes = ? WHERE id = ?",
        )
        .bind(ts(session.last_seen_at))
        .bind(&session.version)
        .bind(session.zip)
        .bind(session.legacy)
        .bind(session.sessid_seen)
        .bind(json(&session.attributes)?)
        .bind(session.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn purge_sessions(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let cutoff = ts(cutoff);
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM upload_chunks WHERE session_id IN \
             (SELECT id FROM exchange_sessions WHERE last_seen_at < ?)",
            "DELETE FROM import_progress WHERE session_id IN \
             (SELECT id FROM exchange_sessions WHERE last_seen_at < ?)",
        ] {
            sqlx::query(sql).bind(&cutoff).execute(&mut *tx).await?;
        }
        let n = sqlx::query("DELETE FROM exchange_sessions WHERE last_seen_at < ?")
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn append_upload(&self, session_id: i64, filename: &str, bytes: &[u8]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let last: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT seq, offset, length(data) FROM upload_chunks \
             WHERE session_id = ? AND filename = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_optional(&mut *tx)
        .await?;
        let (seq, offset) = match last {
            Some((seq, offset, len)) => (seq + 1, offset + len),
            None => (0, 0),
        };
        let len = to_i64(bytes.len() as u64, "chunk")?;
        if !bytes.is_empty() {
            sqlx::query(
                "INSERT INTO upload_chunks (session_id, filename, seq, offset, data) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(session_id)
            .bind(filename)
            .bind(seq)
            .bind(offset)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(to_u64(offset + len))
    }

    async fn upload_size(&self, session_id: i64, filename: &str) -> Result<u64> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT offset + length(data) FROM upload_chunks \
             WHERE session_id = ? AND filename = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_optional(&self.reader)
        .await?;
        Ok(size.map_or(0, to_u64))
    }

    async fn read_upload_range(
        &self,
        session_id: i64,
        filename: &str,
        offset: u64,
        max_len: u64,
    ) -> Result<Vec<u8>> {
        if max_len == 0 {
            return Ok(Vec::new());
        }
        let start = to_i64(offset, "offset")?;
        let end = start.saturating_add(to_i64(max_len, "length")?);
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT offset, data FROM upload_chunks \
             WHERE session_id = ? AND filename = ? AND offset < ? AND offset + length(data) > ? \
             ORDER BY offset",
        )
        .bind(session_id)
        .bind(filename)
        .bind(end)
        .bind(start)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::new();
        for (chunk_offset, data) in rows {
            let from = usize::try_from(start.saturating_sub(chunk_offset)).unwrap_or(0);
            let to = usize::try_from((end - chunk_offset).min(data.len() as i64)).unwrap_or(0);
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(out)
    }

    async fn read_upload(&self, session_id: i64, filename: &str) -> Result<Vec<u8>> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT data FROM upload_chunks WHERE session_id = ? AND filename = ? ORDER BY seq",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().flat_map(|(d,)| d).collect())
    }

    async fn list_uploads(&self, session_id: i64) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT filename, SUM(length(data)) FROM upload_chunks WHERE session_id = ? \
             GROUP BY filename ORDER BY filename",
        )
        .bind(session_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(|(f, n)| (f, to_u64(n))).collect())
    }

    async fn clear_uploads(&self, session_id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM upload_chunks WHERE session_id = ?")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM import_progress WHERE session_id = ?")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_import_progress(
        &self,
        session_id: i64,
        filename: &str,
        progress: &ImportProgress,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO import_progress \
             (session_id, filename, position, documents, done, messages, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (session_id, filename) DO UPDATE SET position = excluded.position, \
             documents = excluded.documents, done = excluded.done, messages = excluded.messages, \
             updated_at = excluded.updated_at",
        )
        .bind(session_id)
        .bind(filename)
        .bind(to_i64(progress.position, "position")?)
        .bind(to_i64(progress.documents, "documents")?)
        .bind(progress.done)
        .bind(json(&progress.messages)?)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn import_progress(
        &self,
        session_id: i64,
        filename: &str,
    ) -> Result<Option<ImportProgress>> {
        let row = sqlx::query(
            "SELECT position, documents, done, messages FROM import_progress \
             WHERE session_id = ? AND filename = ?",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(ImportProgress {
                position: to_u64(r.try_get("position")?),
                documents: to_u64(r.try_get("documents")?),
                done: r.try_get("done")?,
                messages: from_json(&r.try_get::<String, _>("messages")?, "import messages")?,
            })
        })
        .transpose()
    }

    async fn journal(&self, entry: &JournalEntry) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO exchange_journal (session_id, exchange_type, mode, filename, bytes, \
             documents, messages, error, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.session_id)
        .bind(&entry.exchange_type)
        .bind(&entry.mode)
        .bind(&entry.filename)
        .bind(to_i64(entry.bytes, "bytes")?)
        .bind(to_i64(entry.documents, "documents")?)
        .bind(json(&entry.messages)?)
        .bind(&entry.error)
        .bind(
            entry
                .duration_ms
                .map(|d| to_i64(d, "duration"))
                .transpose()?,
        )
        .bind(ts(entry.at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sessions_report(&self, limit: u32) -> Result<Vec<SessionReport>> {
        let mut conn = self.reader.acquire().await?;
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM exchange_sessions ORDER BY created_at DESC, id DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        let mut reports = Vec::with_capacity(rows.len());
        for row in &rows {
            let session = session_from_row(row)?;
            let requests = sqlx::query(
                "SELECT id, session_id, exchange_type, mode, filename, bytes, documents, messages, \
                 error, duration_ms, at FROM exchange_journal WHERE session_id = ? ORDER BY id",
            )
            .bind(session.id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(journal_from_row)
            .collect::<Result<Vec<_>>>()?;
            reports.push(SessionReport { session, requests });
        }
        Ok(reports)
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    fn enable_outbox(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> Result<()> {
        self.outbox.enable("outbox", wake)
    }

    fn enable_outbox_handoff(&self, handoff: Handoff) -> Result<()> {
        self.handoff.set(handoff)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>> {
        self.outbox_claim_due(now, limit, lease).await
    }

    async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.outbox_mark_delivered(id, now).await
    }

    async fn mark_delivered_many(&self, acks: &[(i64, DateTime<Utc>)]) -> Result<Vec<bool>> {
        self.outbox_mark_delivered_many(acks).await
    }

    async fn mark_retry(&self, id: i64, next_at: DateTime<Utc>, error: &str) -> Result<()> {
        self.outbox_mark_failed(id, Some(next_at), error).await
    }

    async fn mark_dead(&self, id: i64, error: &str) -> Result<()> {
        self.outbox_mark_failed(id, None, error).await
    }

    async fn list_outbox(&self, filter: &OutboxFilter) -> Result<Vec<OutboxEntry>> {
        self.outbox_list(filter).await
    }

    async fn requeue(&self, id: i64, now: DateTime<Utc>) -> Result<OutboxEntry> {
        self.outbox_requeue(id, now).await
    }

    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>> {
        self.outbox_next_due_at().await
    }

    fn enable_webhook_events(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> Result<()> {
        self.webhook.enable("webhook", wake)
    }

    async fn claim_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<WebhookEvent>> {
        self.webhook_claim(now, limit, lease).await
    }

    async fn mark_webhook_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.webhook_mark_delivered(id, now).await
    }

    async fn mark_webhook_retry(&self, id: i64, next_at: DateTime<Utc>, error: &str) -> Result<()> {
        self.webhook_mark_retry(id, next_at, error).await
    }

    async fn webhook_events(&self, after_id: i64, limit: u32) -> Result<Vec<WebhookEvent>> {
        self.webhook_list(after_id, limit).await
    }

    async fn webhook_next_due(&self) -> Result<Option<DateTime<Utc>>> {
        self.webhook_next_due_at().await
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }
}
