//! The PostgreSQL implementation of [`Store`], for several obmen instances on one database.
//!
//! Everything a 1C session needs between requests (the session, upload chunks, import progress)
//! lives in the database, so consecutive requests may reach different instances. Concurrency:
//!
//! * writes run in `READ COMMITTED` transactions that lock the order rows they change
//!   (`SELECT … FOR UPDATE`, always in id order, so two writers cannot deadlock on orders);
//! * a new order is inserted with `ON CONFLICT (number) DO NOTHING`; when another instance won
//!   the race the row is locked and updated instead;
//! * `confirm_session` locks the offered orders, then confirms only versions no other session
//!   has confirmed; a partial unique index keeps each version confirmed at most once;
//! * appends to one uploaded file are serialised by a transaction-scoped advisory lock.
//! * the push outbox is claimed with `FOR UPDATE SKIP LOCKED` and a lease (see `outbox`), and
//!   so are webhook events (see `webhook`).
//!
//! Bulk methods (`upsert_orders`, `apply_updates`, `orders_due`) use a few statements per batch
//! (array parameters with `UNNEST`), not one round trip per order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use exchange::domain::{Order, OrderFacts, OrderInput, Source, StatusChange};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;

use crate::lookup::{facts_from_row, Column, Resolver, FACT_COLUMNS};
use crate::outbox::HandoffSlot;
use crate::switch::Switch;
use crate::{
    Error, Handoff, ImportProgress, JournalEntry, JournalRecord, NewSession, OrderFilter,
    OutboxEntry, OutboxFilter, Result, Session, SessionReport, Store, Update, UpsertOutcome,
    WebhookEvent,
};

mod outbox;
mod webhook;

/// Connections per instance.
const MAX_CONNECTIONS: u32 = 8;
/// How long a request waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a batch is retried when a concurrent instance inserted the same new order.
const INSERT_RACE_ATTEMPTS: usize = 3;

/// A PostgreSQL database, shared by any number of obmen instances.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
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

impl PgStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`, any libpq-style parameters sqlx
    /// understands, e.g. `?options[search_path]=obmen`) and applies the migrations. Instances
    /// starting at once are safe: the migrator holds an advisory lock.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            outbox: Switch::default(),
            webhook: Switch::default(),
            handoff: HandoffSlot::default(),
            writes: crate::group::writes(),
        })
    }

    /// Closes the connections (waits for them to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

// ----- value conversions -----

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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

// ----- orders -----

const ORDER_COLUMNS: &str = "id, body, status, status_1c, paid, shipped, cancelled, deleted, \
     number_1c, date_1c, id_1c, payment_number_1c, payment_date_1c, shipment_number_1c, \
     shipment_date_1c, version, last_change_source, created_at, updated_at, submitted_status";

/// An order row without its history, plus what only the store needs.
struct OrderRow {
    order: Order,
    submitted_status: String,
    submitted_body: String,
}

fn order_from_row(row: &PgRow) -> Result<OrderRow> {
    let body: String = row.try_get("body")?;
    let mut input: OrderInput = from_json(&body, "order body")?;
    let status: String = row.try_get("status")?;
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
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
        updated_at: row.try_get("updated_at")?,
        history: Vec::new(),
    };
    Ok(OrderRow {
        order,
        submitted_status: row.try_get("submitted_status")?,
        submitted_body: body,
    })
}

fn change_from_row(row: &PgRow) -> Result<StatusChange> {
    Ok(StatusChange {
        status: row.try_get("status")?,
        source: parse_source(&row.try_get::<String, _>("source")?)?,
        at: row.try_get("at")?,
    })
}

/// Fills in the history of `orders` with one query.
async fn attach_history<'a>(
    conn: &mut PgConnection,
    orders: impl IntoIterator<Item = &'a mut Order>,
) -> Result<()> {
    let mut index: HashMap<i64, &mut Order> = HashMap::new();
    for order in orders {
        index.insert(order.id, order);
    }
    if index.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = index.keys().copied().collect();
    let rows = sqlx::query(
        "SELECT order_id, status, source, at FROM order_status_history \
         WHERE order_id = ANY($1) ORDER BY order_id, id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let order_id: i64 = row.try_get("order_id")?;
        if let Some(order) = index.get_mut(&order_id) {
            order.history.push(change_from_row(row)?);
        }
    }
    Ok(())
}

/// The order matching `clause` (with `$1` bound to `bind`), with its history.
async fn fetch_one_order(
    conn: &mut PgConnection,
    clause: &str,
    bind: BindValue<'_>,
) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {clause}");
    let q = sqlx::query(&sql);
    let q = match bind {
        BindValue::Text(t) => q.bind(t),
        BindValue::Int(i) => q.bind(i),
    };
    let Some(row) = q.fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut order = order_from_row(&row)?.order;
    attach_history(conn, std::iter::once(&mut order)).await?;
    Ok(Some(order))
}

enum BindValue<'a> {
    Text(&'a str),
    Int(i64),
}

fn input_paid(input: &OrderInput) -> bool {
    input.payment.as_ref().is_some_and(|p| p.paid)
}

/// One order of a batch, as it will be written.
struct NewRow {
    index: usize,
    number: String,
    body: String,
    status: String,
    paid: bool,
    created_at: DateTime<Utc>,
}

/// Upserts `inputs` (distinct numbers) in the transaction on `conn`; writes the outcomes into
/// `outcomes` at the inputs' positions (`indices`). Returns the positions left to do because a
/// concurrent transaction inserted the same number first.
async fn upsert_distinct(
    conn: &mut PgConnection,
    inputs: &[OrderInput],
    indices: &[usize],
    now: DateTime<Utc>,
    outcomes: &mut [Option<UpsertOutcome>],
) -> Result<Vec<usize>> {
    let numbers: Vec<String> = indices.iter().map(|&i| inputs[i].number.clone()).collect();
    // Lock the existing orders in id order (the lock order every writer uses).
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE number = ANY($1) ORDER BY id FOR UPDATE");
    let rows = sqlx::query(&sql)
        .bind(&numbers)
        .fetch_all(&mut *conn)
        .await?;
    let mut existing: HashMap<String, OrderRow> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let row = order_from_row(row)?;
        existing.insert(row.order.input.number.clone(), row);
    }
    attach_history(&mut *conn, existing.values_mut().map(|r| &mut r.order)).await?;

    let mut new_rows: Vec<NewRow> = Vec::new();
    // Updates of existing orders: id, body, submitted status, status, paid, created_at.
    let mut upd_id = Vec::new();
    let mut upd_body = Vec::new();
    let mut upd_submitted = Vec::new();
    let mut upd_status = Vec::new();
    let mut upd_paid = Vec::new();
    let mut upd_created = Vec::new();
    let mut hist_order = Vec::new();
    let mut hist_status = Vec::new();
    for &i in indices {
        let input = &inputs[i];
        let body = json(input)?;
        let status = input.status_code().to_owned();
        let Some(OrderRow {
            order,
            submitted_status,
            submitted_body,
        }) = existing.remove(&input.number)
        else {
            new_rows.push(NewRow {
                index: i,
                number: input.number.clone(),
                body,
                status,
                paid: input_paid(input),
                created_at: input.created_at.unwrap_or(now),
            });
            continue;
        };
        let mut order = order;
        if submitted_body == body {
            outcomes[i] = Some(UpsertOutcome::Unchanged(order));
            continue;
        }
        let previous: Option<OrderInput> = serde_json::from_str(&submitted_body).ok();
        // The store changes the status (and the paid flag) only when it submits a different
        // one than before; otherwise what 1C set stays.
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
        upd_id.push(order.id);
        upd_body.push(body);
        upd_submitted.push(status);
        upd_status.push(new_status.clone());
        upd_paid.push(paid);
        upd_created.push(created_at);
        if status_changes {
            hist_order.push(order.id);
            hist_status.push(new_status.clone());
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
        outcomes[i] = Some(UpsertOutcome::Updated(order));
    }

    if !upd_id.is_empty() {
        sqlx::query(
            "UPDATE orders AS o SET body = u.body, submitted_status = u.submitted_status, \
             status = u.status, paid = u.paid, version = o.version + 1, \
             last_change_source = 'store', created_at = u.created_at, updated_at = $7 \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[], \
                         $6::timestamptz[]) \
                  AS u(id, body, submitted_status, status, paid, created_at) \
             WHERE o.id = u.id",
        )
        .bind(&upd_id)
        .bind(&upd_body)
        .bind(&upd_submitted)
        .bind(&upd_status)
        .bind(&upd_paid)
        .bind(&upd_created)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }

    let mut raced = Vec::new();
    if !new_rows.is_empty() {
        let numbers: Vec<&str> = new_rows.iter().map(|r| r.number.as_str()).collect();
        let bodies: Vec<&str> = new_rows.iter().map(|r| r.body.as_str()).collect();
        let statuses: Vec<&str> = new_rows.iter().map(|r| r.status.as_str()).collect();
        let paid: Vec<bool> = new_rows.iter().map(|r| r.paid).collect();
        let created: Vec<DateTime<Utc>> = new_rows.iter().map(|r| r.created_at).collect();
        // Ids are assigned in input order (ORDER BY the ordinality).
        let inserted: Vec<(i64, String)> = sqlx::query_as(
            "INSERT INTO orders (number, body, submitted_status, status, paid, version, \
             confirmed_version, last_change_source, created_at, updated_at) \
             SELECT u.number, u.body, u.status, u.status, u.paid, 1, 0, 'store', u.created_at, $6 \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[]) \
                  WITH ORDINALITY AS u(number, body, status, paid, created_at, n) \
             ORDER BY u.n \
             ON CONFLICT (number) DO NOTHING RETURNING id, number",
        )
        .bind(&numbers)
        .bind(&bodies)
        .bind(&statuses)
        .bind(&paid)
        .bind(&created)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        let ids: HashMap<String, i64> = inserted.into_iter().map(|(id, n)| (n, id)).collect();
        for row in new_rows {
            let Some(&id) = ids.get(&row.number) else {
                raced.push(row.index);
                continue;
            };
            hist_order.push(id);
            hist_status.push(row.status.clone());
            let mut stored = inputs[row.index].clone();
            stored.status = Some(row.status.clone());
            stored.created_at = Some(row.created_at);
            outcomes[row.index] = Some(UpsertOutcome::Created(Order {
                id,
                input: stored,
                status_1c: None,
                paid: row.paid,
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
                    status: row.status,
                    source: Source::Store,
                    at: now,
                }],
            }));
        }
    }
    add_history(conn, &hist_order, &hist_status, Source::Store, now).await?;
    Ok(raced)
}

/// Adds history entries (in the given order) for `order_ids[i]` → `statuses[i]`.
async fn add_history(
    conn: &mut PgConnection,
    order_ids: &[i64],
    statuses: &[String],
    source: Source,
    now: DateTime<Utc>,
) -> Result<()> {
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_status_history (order_id, status, source, at) \
         SELECT u.order_id, u.status, $3, $4 \
         FROM UNNEST($1::bigint[], $2::text[]) WITH ORDINALITY AS u(order_id, status, n) \
         ORDER BY u.n",
    )
    .bind(order_ids)
    .bind(statuses)
    .bind(source.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Upserts `inputs` in the transaction on `conn`, with [`Store::upsert_order`] semantics for
/// each, in input order.
async fn upsert_all(
    conn: &mut PgConnection,
    inputs: &[OrderInput],
    now: DateTime<Utc>,
) -> Result<Vec<UpsertOutcome>> {
    if inputs.iter().any(|i| i.number.trim().is_empty()) {
        return Err(Error::Invalid("order number is empty".to_owned()));
    }
    let mut outcomes: Vec<Option<UpsertOutcome>> = vec![None; inputs.len()];
    // Segments of distinct numbers, in order: a number repeated in the batch starts a new
    // segment, so the repetition is applied after (and on top of) the earlier input.
    let mut start = 0;
    while start < inputs.len() {
        let mut seen = HashSet::new();
        let mut end = start;
        while end < inputs.len() && seen.insert(inputs[end].number.as_str()) {
            end += 1;
        }
        let mut pending: Vec<usize> = (start..end).collect();
        let mut attempts = 0;
        while !pending.is_empty() {
            attempts += 1;
            if attempts > INSERT_RACE_ATTEMPTS {
                return Err(Error::Conflict(
                    "orders kept being inserted concurrently; retry".to_owned(),
                ));
            }
            pending = upsert_distinct(&mut *conn, inputs, &pending, now, &mut outcomes).await?;
        }
        start = end;
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| Error::Corrupt("an upsert produced no outcome".to_owned())))
        .collect()
}

/// The fields of an order a 1C document may change.
#[derive(Clone, PartialEq, Eq)]
struct OneCState {
    status: String,
    status_1c: Option<String>,
    paid: bool,
    shipped: bool,
    cancelled: bool,
    deleted: bool,
    number_1c: Option<String>,
    date_1c: Option<String>,
    id_1c: Option<String>,
    payment_number_1c: Option<String>,
    payment_date_1c: Option<String>,
    shipment_number_1c: Option<String>,
    shipment_date_1c: Option<String>,
}

fn set_text(field: &mut Option<String>, new: Option<&String>) {
    if let Some(new) = new {
        if field.as_ref() != Some(new) {
            *field = Some(new.clone());
        }
    }
}

fn set_flag(field: &mut bool, new: Option<bool>) {
    if let Some(new) = new {
        *field = new;
    }
}

impl OneCState {
    fn from_row(row: &PgRow) -> Result<(i64, Self)> {
        Ok((
            row.try_get("id")?,
            Self {
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
            },
        ))
    }

    /// Applies `update`; returns whether anything changed and whether the status did.
    fn apply(&mut self, update: &Update) -> (bool, bool) {
        let before = self.clone();
        if let Some(status) = &update.status {
            if &self.status != status {
                self.status.clone_from(status);
            }
        }
        set_text(&mut self.status_1c, update.status_1c.as_ref());
        set_flag(&mut self.paid, update.paid);
        set_flag(&mut self.shipped, update.shipped);
        set_flag(&mut self.cancelled, update.cancelled);
        set_flag(&mut self.deleted, update.deleted);
        set_text(&mut self.number_1c, update.number_1c.as_ref());
        set_text(&mut self.date_1c, update.date_1c.as_ref());
        set_text(&mut self.id_1c, update.id_1c.as_ref());
        set_text(
            &mut self.payment_number_1c,
            update.payment_number_1c.as_ref(),
        );
        set_text(&mut self.payment_date_1c, update.payment_date_1c.as_ref());
        set_text(
            &mut self.shipment_number_1c,
            update.shipment_number_1c.as_ref(),
        );
        set_text(&mut self.shipment_date_1c, update.shipment_date_1c.as_ref());
        (*self != before, self.status != before.status)
    }
}

/// Applies `updates` in order in the transaction on `conn`; one flag per update. With
/// `events`, each status change also records a webhook event.
async fn apply_all(
    conn: &mut PgConnection,
    updates: &[(i64, &Update)],
    now: DateTime<Utc>,
    events: bool,
) -> Result<Vec<bool>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = updates.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = sqlx::query(
        "SELECT id, status, status_1c, paid, shipped, cancelled, deleted, number_1c, date_1c, \
         id_1c, payment_number_1c, payment_date_1c, shipment_number_1c, shipment_date_1c \
         FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() != ids.len() {
        return Err(Error::NotFound);
    }
    let mut states: HashMap<i64, (OneCState, bool)> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let (id, state) = OneCState::from_row(row)?;
        states.insert(id, (state, false));
    }
    let mut changed = Vec::with_capacity(updates.len());
    let mut hist_order = Vec::new();
    let mut hist_status = Vec::new();
    let mut hist_status_1c = Vec::new();
    for (id, update) in updates {
        let (state, dirty) = states.get_mut(id).ok_or(Error::NotFound)?;
        if update.is_empty() {
            changed.push(false);
            continue;
        }
        let (any, status) = state.apply(update);
        if status {
            hist_order.push(*id);
            hist_status.push(state.status.clone());
            hist_status_1c.push(state.status_1c.clone());
        }
        *dirty |= any;
        changed.push(any);
    }
    let dirty: Vec<(i64, &OneCState)> = ids
        .iter()
        .filter_map(|id| match states.get(id) {
            Some((state, true)) => Some((*id, state)),
            _ => None,
        })
        .collect();
    if !dirty.is_empty() {
        let col = |f: fn(&OneCState) -> Option<String>| -> Vec<Option<String>> {
            dirty.iter().map(|(_, s)| f(s)).collect()
        };
        let flag =
            |f: fn(&OneCState) -> bool| -> Vec<bool> { dirty.iter().map(|(_, s)| f(s)).collect() };
        let dirty_ids: Vec<i64> = dirty.iter().map(|(id, _)| *id).collect();
        let statuses: Vec<String> = dirty.iter().map(|(_, s)| s.status.clone()).collect();
        sqlx::query(
            "UPDATE orders AS o SET status = u.status, status_1c = u.status_1c, paid = u.paid, \
             shipped = u.shipped, cancelled = u.cancelled, deleted = u.deleted, \
             number_1c = u.number_1c, date_1c = u.date_1c, id_1c = u.id_1c, \
             payment_number_1c = u.payment_number_1c, payment_date_1c = u.payment_date_1c, \
             shipment_number_1c = u.shipment_number_1c, shipment_date_1c = u.shipment_date_1c, \
             last_change_source = '1c', updated_at = $15 \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bool[], $5::bool[], \
                         $6::bool[], $7::bool[], $8::text[], $9::text[], $10::text[], \
                         $11::text[], $12::text[], $13::text[], $14::text[]) \
                  AS u(id, status, status_1c, paid, shipped, cancelled, deleted, number_1c, \
                       date_1c, id_1c, payment_number_1c, payment_date_1c, shipment_number_1c, \
                       shipment_date_1c) \
             WHERE o.id = u.id",
        )
        .bind(&dirty_ids)
        .bind(&statuses)
        .bind(col(|s| s.status_1c.clone()))
        .bind(flag(|s| s.paid))
        .bind(flag(|s| s.shipped))
        .bind(flag(|s| s.cancelled))
        .bind(flag(|s| s.deleted))
        .bind(col(|s| s.number_1c.clone()))
        .bind(col(|s| s.date_1c.clone()))
        .bind(col(|s| s.id_1c.clone()))
        .bind(col(|s| s.payment_number_1c.clone()))
        .bind(col(|s| s.payment_date_1c.clone()))
        .bind(col(|s| s.shipment_number_1c.clone()))
        .bind(col(|s| s.shipment_date_1c.clone()))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    add_history(conn, &hist_order, &hist_status, Source::OneC, now).await?;
    if events {
        webhook::record(conn, &hist_order, &hist_status, &hist_status_1c, now).await?;
    }
    Ok(changed)
}

// ----- sessions and journal -----

const SESSION_COLUMNS: &str = "id, user_name, cookie, sessid, created_at, last_seen_at, version, \
     zip, legacy, sessid_seen, attributes";

fn session_from_row(row: &PgRow) -> Result<Session> {
    Ok(Session {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        cookie: row.try_get("cookie")?,
        sessid: row.try_get("sessid")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
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

fn journal_from_row(row: &PgRow) -> Result<JournalRecord> {
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
            at: row.try_get("at")?,
        },
    })
}

#[async_trait]
impl crate::group::GroupWriter for PgStore {
    fn writes(&self) -> &crate::group::Writes {
        &self.writes
    }

    async fn upsert_together(
        &self,
        inputs: &[OrderInput],
        now: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let handoff = self.handoff.get();
        let mut tx = self.begin().await?;
        let outcomes = upsert_all(&mut tx, inputs, now).await?;
        crate::outbox::enqueue_and_commit(tx, &self.outbox, handoff.as_ref(), &outcomes, now)
            .await?;
        Ok(outcomes)
    }

    async fn upsert_alone(&self, input: &OrderInput, now: DateTime<Utc>) -> Result<UpsertOutcome> {
        self.upsert_together(std::slice::from_ref(input), now)
            .await?
            .pop()
            .ok_or_else(|| Error::Corrupt("an upsert produced no outcome".to_owned()))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_order(&self, input: &OrderInput, now: DateTime<Utc>) -> Result<UpsertOutcome> {
        crate::group::upsert_grouped(self, input, now).await
    }

    async fn upsert_orders(
        &self,
        inputs: &[OrderInput],
        now: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let mut tx = self.begin().await?;
        let outcomes = upsert_all(&mut tx, inputs, now).await?;
        // Bulk loads are not handed off: the workers claim them at their own pace.
        crate::outbox::enqueue_and_commit(tx, &self.outbox, None, &outcomes, now).await?;
        Ok(outcomes)
    }

    async fn order_version(&self, id: i64) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT version FROM orders WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn order_by_number(&self, number: &str) -> Result<Option<Order>> {
        let mut conn = self.pool.acquire().await?;
        fetch_one_order(&mut conn, "number = $1", BindValue::Text(number)).await
    }

    async fn order_by_id(&self, id: i64) -> Result<Option<Order>> {
        let mut conn = self.pool.acquire().await?;
        fetch_one_order(&mut conn, "id = $1", BindValue::Int(id)).await
    }

    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>> {
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id > $1");
        let mut n = 1;
        if filter.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if filter.changed_since.is_some() {
            n += 1;
            sql.push_str(&format!(" AND updated_at >= ${n}"));
        }
        sql.push_str(" ORDER BY id");
        if filter.limit.is_some() {
            n += 1;
            sql.push_str(&format!(" LIMIT ${n}"));
        }
        let mut q = sqlx::query(&sql).bind(filter.after_id.unwrap_or(i64::MIN));
        if let Some(status) = &filter.status {
            q = q.bind(status.clone());
        }
        if let Some(since) = filter.changed_since {
            q = q.bind(since);
        }
        if let Some(limit) = filter.limit {
            q = q.bind(i64::from(limit));
        }
        let mut conn = self.pool.acquire().await?;
        let rows = q.fetch_all(&mut *conn).await?;
        let mut orders = rows
            .iter()
            .map(|r| order_from_row(r).map(|o| o.order))
            .collect::<Result<Vec<_>>>()?;
        attach_history(&mut conn, orders.iter_mut()).await?;
        Ok(orders)
    }

    async fn find_order_for_document(
        &self,
        number: Option<&str>,
        id: Option<&str>,
    ) -> Result<Option<Order>> {
        let number = number.map(str::trim).filter(|s| !s.is_empty());
        let id = id.map(str::trim).filter(|s| !s.is_empty());
        let mut conn = self.pool.acquire().await?;
        if let Some(number) = number {
            if let Some(o) =
                fetch_one_order(&mut conn, "number = $1", BindValue::Text(number)).await?
            {
                return Ok(Some(o));
            }
        }
        if let Some(own) = id.and_then(|i| i.parse::<i64>().ok()) {
            if let Some(o) = fetch_one_order(&mut conn, "id = $1", BindValue::Int(own)).await? {
                return Ok(Some(o));
            }
        }
        if let Some(number) = number {
            let clause = "number_1c = $1 ORDER BY id LIMIT 1";
            if let Some(o) = fetch_one_order(&mut conn, clause, BindValue::Text(number)).await? {
                return Ok(Some(o));
            }
        }
        if let Some(id) = id {
            let clause = "id_1c = $1 ORDER BY id LIMIT 1";
            return fetch_one_order(&mut conn, clause, BindValue::Text(id)).await;
        }
        Ok(None)
    }

    async fn find_orders_for_documents(
        &self,
        keys: &[(Option<&str>, Option<&str>)],
    ) -> Result<Vec<Option<OrderFacts>>> {
        let mut resolver = Resolver::new(keys);
        let mut conn = self.pool.acquire().await?;
        for column in Column::PASSES {
            let wanted = resolver.wanted(column);
            if wanted.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT {FACT_COLUMNS} FROM orders WHERE {} = ANY($1) ORDER BY id",
                column.name()
            );
            let q = sqlx::query(&sql);
            let q = match column {
                // `wanted` holds only numeric ids for this column.
                Column::Id => q.bind(
                    wanted
                        .iter()
                        .map(|v| v.parse::<i64>().unwrap_or_default())
                        .collect::<Vec<i64>>(),
                ),
                _ => q.bind(wanted),
            };
            let mut orders = Vec::new();
            for row in q.fetch_all(&mut *conn).await? {
                orders.push(facts_from_row(&row)?);
            }
            resolver.accept(column, orders);
        }
        Ok(resolver.finish())
    }

    async fn apply_update(
        &self,
        order_id: i64,
        update: &Update,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let changed = apply_all(&mut tx, &[(order_id, update)], now, self.webhook.is_on()).await?;
        tx.commit().await?;
        let changed = changed.first().copied().unwrap_or(false);
        if changed {
            self.webhook.wake();
        }
        Ok(changed)
    }

    async fn apply_updates(
        &self,
        updates: &[(i64, Update)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let refs: Vec<(i64, &Update)> = updates.iter().map(|(id, u)| (*id, u)).collect();
        let mut tx = self.begin().await?;
        let changed = apply_all(&mut tx, &refs, now, self.webhook.is_on()).await?;
        tx.commit().await?;
        if changed.contains(&true) {
            self.webhook.wake();
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
            "SELECT {ORDER_COLUMNS} FROM orders \
             WHERE last_change_source = 'store' AND confirmed_version < version \
             AND id > $1 AND status = ANY($2) ORDER BY id LIMIT $3"
        );
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&sql)
            .bind(after_id)
            .bind(statuses)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        let mut orders = rows
            .iter()
            .map(|r| order_from_row(r).map(|o| o.order))
            .collect::<Result<Vec<_>>>()?;
        attach_history(&mut conn, orders.iter_mut()).await?;
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
        let order_ids: Vec<i64> = offered.iter().map(|(o, _)| *o).collect();
        let versions: Vec<i64> = offered.iter().map(|(_, v)| *v).collect();
        sqlx::query(
            "INSERT INTO delivery_ledger (session_id, order_id, version, offered_at) \
             SELECT $1, u.order_id, u.version, $4 \
             FROM UNNEST($2::bigint[], $3::bigint[]) AS u(order_id, version) \
             ON CONFLICT (session_id, order_id, version) DO NOTHING",
        )
        .bind(session_id)
        .bind(&order_ids)
        .bind(&versions)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn confirm_session(&self, session_id: i64, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        // Lock the offered orders in id order: a concurrent `success` of another session that
        // offered the same versions waits here, then sees them confirmed.
        sqlx::query(
            "SELECT id FROM orders WHERE id IN \
             (SELECT order_id FROM delivery_ledger WHERE session_id = $1 AND confirmed_at IS NULL) \
             ORDER BY id FOR UPDATE",
        )
        .bind(session_id)
        .fetch_all(&mut *tx)
        .await?;
        let confirmed = sqlx::query(
            "UPDATE delivery_ledger AS l SET confirmed_at = $2 \
             WHERE l.session_id = $1 AND l.confirmed_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM delivery_ledger AS c WHERE c.order_id = l.order_id \
              AND c.version = l.version AND c.confirmed_at IS NOT NULL)",
        )
        .bind(session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if confirmed > 0 {
            sqlx::query(
                "UPDATE orders SET confirmed_version = d.version \
                 FROM (SELECT order_id, MAX(version) AS version FROM delivery_ledger \
                       WHERE session_id = $1 GROUP BY order_id) AS d \
                 WHERE orders.id = d.order_id AND orders.confirmed_version < d.version",
            )
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(confirmed)
    }

    async fn create_session(&self, new: &NewSession, now: DateTime<Utc>) -> Result<Session> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO exchange_sessions (user_name, cookie, sessid, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(&new.user)
        .bind(&new.cookie)
        .bind(&new.sessid)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict("a session with this cookie exists".to_owned())
            } else {
                Error::Other(e)
            }
        })?;
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
        let sql = format!("SELECT {SESSION_COLUMNS} FROM exchange_sessions WHERE cookie = $1");
        let row = sqlx::query(&sql)
            .bind(cookie)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_by_id(&self, id: i64) -> Result<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM exchange_sessions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn update_session(&self, session: &Session) -> Result<()> {
        let n = sqlx::query(
            "UPDATE exchange_sessions SET last_seen_at = $1, version = $2, zip = $3, \
             legacy = $4, sessid_seen = $5, attributes = $6 WHERE id = $7",
        )
        .bind(session.last_seen_at)
        .bind(&session.version)
        .bind(session.zip)
        .bind(session.legacy)
        .bind(session.sessid_seen)
        .bind(json(&session.attributes)?)
        .bind(session.id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn purge_sessions(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM upload_chunks WHERE session_id IN \
             (SELECT id FROM exchange_sessions WHERE last_seen_at < $1)",
            "DELETE FROM import_progress WHERE session_id IN \
             (SELECT id FROM exchange_sessions WHERE last_seen_at < $1)",
        ] {
            sqlx::query(sql).bind(cutoff).execute(&mut *tx).await?;
        }
        let n = sqlx::query("DELETE FROM exchange_sessions WHERE last_seen_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn append_upload(&self, session_id: i64, filename: &str, bytes: &[u8]) -> Result<u64> {
        let mut tx = self.begin().await?;
        // Two instances appending to the same file take turns.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($2, $1))")
            .bind(session_id)
            .bind(filename)
            .execute(&mut *tx)
            .await?;
        let last: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT seq, byte_offset, length(data)::bigint FROM upload_chunks \
             WHERE session_id = $1 AND filename = $2 ORDER BY seq DESC LIMIT 1",
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
                "INSERT INTO upload_chunks (session_id, filename, seq, byte_offset, data) \
                 VALUES ($1, $2, $3, $4, $5)",
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
            "SELECT byte_offset + length(data)::bigint FROM upload_chunks \
             WHERE session_id = $1 AND filename = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_optional(&self.pool)
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
            "SELECT byte_offset, data FROM upload_chunks \
             WHERE session_id = $1 AND filename = $2 AND byte_offset < $3 \
             AND byte_offset + length(data)::bigint > $4 ORDER BY byte_offset",
        )
        .bind(session_id)
        .bind(filename)
        .bind(end)
        .bind(start)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for (chunk_offset, data) in rows {
            let from = usize::try_from(start.saturating_sub(chunk_offset)).unwrap_or(0);
            let chunk_len = i64::try_from(data.len()).unwrap_or(i64::MAX);
            let to = usize::try_from((end - chunk_offset).min(chunk_len)).unwrap_or(0);
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(out)
    }

    async fn read_upload(&self, session_id: i64, filename: &str) -> Result<Vec<u8>> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT data FROM upload_chunks WHERE session_id = $1 AND filename = $2 ORDER BY seq",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().flat_map(|(d,)| d).collect())
    }

    async fn list_uploads(&self, session_id: i64) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT filename, SUM(length(data))::bigint FROM upload_chunks WHERE session_id = $1 \
             GROUP BY filename ORDER BY filename",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(f, n)| (f, to_u64(n))).collect())
    }

    async fn clear_uploads(&self, session_id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM upload_chunks WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM import_progress WHERE session_id = $1")
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
        sqlx::query(
            "INSERT INTO import_progress \
             (session_id, filename, position, documents, done, messages, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
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
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_progress(
        &self,
        session_id: i64,
        filename: &str,
    ) -> Result<Option<ImportProgress>> {
        let row = sqlx::query(
            "SELECT position, documents, done, messages FROM import_progress \
             WHERE session_id = $1 AND filename = $2",
        )
        .bind(session_id)
        .bind(filename)
        .fetch_optional(&self.pool)
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
        sqlx::query(
            "INSERT INTO exchange_journal (session_id, exchange_type, mode, filename, bytes, \
             documents, messages, error, duration_ms, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .bind(entry.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sessions_report(&self, limit: u32) -> Result<Vec<SessionReport>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM exchange_sessions \
             ORDER BY created_at DESC, id DESC LIMIT $1"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        let sessions = rows
            .iter()
            .map(session_from_row)
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<i64> = sessions.iter().map(|s| s.id).collect();
        let mut requests: HashMap<i64, Vec<JournalRecord>> = HashMap::new();
        if !ids.is_empty() {
            let rows = sqlx::query(
                "SELECT id, session_id, exchange_type, mode, filename, bytes, documents, \
                 messages, error, duration_ms, at FROM exchange_journal \
                 WHERE session_id = ANY($1) ORDER BY session_id, id",
            )
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
            for row in &rows {
                let record = journal_from_row(row)?;
                if let Some(sid) = record.entry.session_id {
                    requests.entry(sid).or_default().push(record);
                }
            }
        }
        Ok(sessions
            .into_iter()
            .map(|session| SessionReport {
                requests: requests.remove(&session.id).unwrap_or_default(),
                session,
            })
            .collect())
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin().await?;
        // Waits for a concurrent insert of the same key, then does nothing.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
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
        lease: std::time::Duration,
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
        lease: std::time::Duration,
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
}
