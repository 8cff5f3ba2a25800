//! Storage for obmen: one trait, [`Store`], and its SQLite implementation (the embedded default).
//!
//! Protocol and HTTP code hold an `Arc<dyn Store>` from [`open`] and never name a backend. The
//! store never reads the clock: every method that records a time takes `now`.
//!
//! What is kept:
//! * orders (the store's JSON body plus indexed columns and 1C's facts) and their status history;
//! * the delivery ledger: which version of an order went out in which session, confirmed when
//!   (DESIGN.md invariant 1: delivery moves only at `success`);
//! * exchange sessions, upload chunks and import progress, so any instance can serve the next
//!   request of a 1C session;
//! * the journal of every exchange request;
//! * settings (key/value), e.g. the generated exchange password hash;
//! * the push outbox and the webhook events (durable queues, see the `outbox` and `webhook`
//!   modules).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use exchange::domain::{Order, OrderFacts, OrderInput};

mod error;
mod group;
mod lookup;
mod outbox;
mod postgres;
mod sqlite;
mod switch;
mod types;
mod webhook;

pub use error::{Error, Result};
/// What a 1C document changes in an order (only fields that differ are set).
pub use exchange::import::Update;
pub use group::{GroupCommit, Waiting};
pub use outbox::{
    idempotency_key, Handoff, Leased, OutboxEntry, OutboxFilter, OutboxState, PUSH_LEDGER_SESSION,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use types::{
    ImportProgress, JournalEntry, JournalRecord, NewSession, OrderFilter, Session, SessionReport,
    UpsertOutcome,
};
pub use webhook::WebhookEvent;

/// Opens the store named by `url` and brings its schema up to date.
///
/// * `sqlite:PATH`, `sqlite://PATH` or a plain path: a SQLite file, created if missing, in WAL
///   mode, migrations applied. `sqlite::memory:` gives a private in-memory database (tests).
/// * `postgres://…` / `postgresql://…`: a PostgreSQL database ([`PgStore`]), migrations applied;
///   several obmen instances may share it.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PgStore::open(url).await?));
    }
    if url.is_empty() {
        return Err(Error::Invalid("empty database URL".to_owned()));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "sqlite" {
            return Err(Error::Invalid(format!(
                "unsupported database URL scheme {scheme:?}: use sqlite: or a file path"
            )));
        }
    }
    Ok(Arc::new(SqliteStore::open(url).await?))
}

/// Everything obmen keeps. Dyn-compatible: the binary holds an `Arc<dyn Store>`.
///
/// Write methods are atomic: each runs in one transaction. Methods that take `now` record that
/// time; none reads the clock.
#[async_trait]
pub trait Store: Send + Sync {
    // ----- orders -----

    /// Creates or updates the order with `input.number`.
    ///
    /// * unknown number → [`UpsertOutcome::Created`] (version 1, source store, a history entry
    ///   for the initial status);
    /// * same number and the same body as last submitted → [`UpsertOutcome::Unchanged`], nothing
    ///   written (a replayed POST is a no-op);
    /// * a different body → [`UpsertOutcome::Updated`]: version + 1, last change source = store;
    ///   when the submitted status differs from the one submitted before, the status is set to it
    ///   and a history entry (source store) is added.
    async fn upsert_order(&self, input: &OrderInput, now: DateTime<Utc>) -> Result<UpsertOutcome>;

    /// [`Store::upsert_order`] for many orders in one transaction (bulk loads). Outcomes are in
    /// input order. An input repeating a number earlier in the batch is applied after it.
    async fn upsert_orders(
        &self,
        inputs: &[OrderInput],
        now: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>>;

    /// The order with this store number, with its history.
    async fn order_by_number(&self, number: &str) -> Result<Option<Order>>;

    /// The order with this internal id (the exported `Ид`), with its history.
    async fn order_by_id(&self, id: i64) -> Result<Option<Order>>;

    /// The current version of the order with this internal id, without reading the order
    /// (the push worker's check that an entry is not superseded).
    async fn order_version(&self, id: i64) -> Result<Option<i64>> {
        Ok(self.order_by_id(id).await?.map(|o| o.version))
    }

    /// Orders matching `filter`, ordered by id, with their history.
    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>>;

    /// The order a 1C document refers to: by store number, then by our id when `id` is numeric,
    /// then by 1C's number, then by 1C's id.
    async fn find_order_for_document(
        &self,
        number: Option<&str>,
        id: Option<&str>,
    ) -> Result<Option<Order>>;

    /// The facts an import compares with ([`OrderFacts`]) of the orders a batch of 1C
    /// documents refers to: one answer per `(number, id)` key, in the order of the keys, by the
    /// rules of [`Store::find_order_for_document`]. Backends answer with a few set lookups per
    /// batch rather than queries per document (a 1C file carries up to hundreds of thousands of
    /// documents), and read neither bodies nor history.
    async fn find_orders_for_documents(
        &self,
        keys: &[(Option<&str>, Option<&str>)],
    ) -> Result<Vec<Option<OrderFacts>>> {
        let mut found = Vec::with_capacity(keys.len());
        for (number, id) in keys {
            let order = self.find_order_for_document(*number, *id).await?;
            found.push(order.map(|o| o.facts()));
        }
        Ok(found)
    }

    /// Matches a batch of 1C documents to their orders, by the rules of
    /// [`Store::find_orders_for_documents`], and applies what `plan` makes of each, as
    /// [`Store::apply_updates`] does. `plan(i, facts)` gets the index of a matched key and its
    /// order's facts as they stand after the batch's earlier documents (one order may have
    /// several documents in a batch) and returns the update for it. One answer per key: `None`
    /// when no order matched, else whether the order changed.
    ///
    /// This default looks the orders up and then applies the updates in one
    /// [`Store::apply_updates`] (which checks every field against the stored order again);
    /// a backend may instead read each order's facts once, in the transaction that writes them.
    async fn apply_documents(
        &self,
        keys: &[(Option<&str>, Option<&str>)],
        plan: &mut (dyn for<'f> FnMut(usize, &'f OrderFacts) -> Update + Send),
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<bool>>> {
        let found = self.find_orders_for_documents(keys).await?;
        let mut answers = vec![None; keys.len()];
        let mut current: std::collections::HashMap<i64, OrderFacts> =
            std::collections::HashMap::new();
        let mut positions = Vec::new();
        let mut updates = Vec::new();
        for (i, facts) in found.into_iter().enumerate() {
            let Some(facts) = facts else { continue };
            let facts = current.entry(facts.id).or_insert(facts);
            let update = plan(i, facts);
            answers[i] = Some(false);
            if !update.is_empty() {
                update.apply_to(facts);
                positions.push(i);
                updates.push((facts.id, update));
            }
        }
        if !updates.is_empty() {
            let changed = self.apply_updates(&updates, now).await?;
            for (i, changed) in positions.into_iter().zip(changed) {
                answers[i] = Some(changed);
            }
        }
        Ok(answers)
    }

    /// Applies what a 1C document reported, in one transaction. Only fields that differ from the
    /// stored order change (checked again here, so applying the same update twice is a no-op);
    /// a changed status adds a history entry with source `1c`. When anything changed, the last
    /// change source becomes `1c` (the order is not sent back) and `updated_at` = `now`; the
    /// export version is not bumped. Returns whether anything changed.
    /// [`Error::NotFound`] when there is no such order.
    async fn apply_update(
        &self,
        order_id: i64,
        update: &Update,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// [`Store::apply_update`] for many orders in one transaction; one flag per update, in order.
    /// An unknown order id fails the whole batch with [`Error::NotFound`].
    async fn apply_updates(
        &self,
        updates: &[(i64, Update)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>>;

    // ----- export and delivery ledger -----

    /// One page of the orders due for export, ordered by id, ids greater than `after_id`:
    /// status in `statuses`, last change from the store, and the current version not confirmed
    /// delivered. Pass the last id of a page as `after_id` of the next. Orders come with their
    /// history.
    async fn orders_due(
        &self,
        statuses: &[String],
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Order>>;

    /// Records that these `(order_id, version)` pairs went out in this session (unconfirmed).
    /// Idempotent per session/order/version.
    async fn record_offered(
        &self,
        session_id: i64,
        offered: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Confirms every version offered in this session (1C said `success`); the orders are no
    /// longer due at those versions. Each `(order, version)` is confirmed once in the ledger:
    /// rows another session already confirmed stay unconfirmed here. Returns how many ledger
    /// rows were confirmed now (0 when called again).
    async fn confirm_session(&self, session_id: i64, now: DateTime<Utc>) -> Result<u64>;

    // ----- exchange sessions -----

    /// Starts an exchange session (at `checkauth`). [`Error::Conflict`] when the cookie is taken.
    async fn create_session(&self, new: &NewSession, now: DateTime<Utc>) -> Result<Session>;

    /// The session with this cookie value, expired or not (the caller decides on expiry).
    async fn session_by_cookie(&self, cookie: &str) -> Result<Option<Session>>;

    /// The session with this id.
    async fn session_by_id(&self, id: i64) -> Result<Option<Session>>;

    /// Saves the mutable fields of a session (`version`, `zip`, `legacy`, `sessid_seen`,
    /// `attributes`, `last_seen_at`). [`Error::NotFound`] when it does not exist.
    async fn update_session(&self, session: &Session) -> Result<()>;

    /// Deletes sessions last seen before `cutoff`, with their uploads and import progress (the
    /// journal and the ledger stay). Returns how many sessions were deleted.
    async fn purge_sessions(&self, cutoff: DateTime<Utc>) -> Result<u64>;

    // ----- uploads and import progress -----

    /// Appends a chunk to the session's file `filename` (never overwrites). Returns the file's
    /// size after the append.
    async fn append_upload(&self, session_id: i64, filename: &str, bytes: &[u8]) -> Result<u64>;

    /// The size of the session's file, 0 when there is none.
    async fn upload_size(&self, session_id: i64, filename: &str) -> Result<u64>;

    /// Up to `max_len` bytes of the session's file from `offset` (fewer at the end, none past
    /// it). Lets a reader stream a large upload in bounded memory.
    async fn read_upload_range(
        &self,
        session_id: i64,
        filename: &str,
        offset: u64,
        max_len: u64,
    ) -> Result<Vec<u8>>;

    /// The whole file (small files only; use [`Store::read_upload_range`] for large ones).
    async fn read_upload(&self, session_id: i64, filename: &str) -> Result<Vec<u8>>;

    /// The session's uploaded files with their sizes, by name.
    async fn list_uploads(&self, session_id: i64) -> Result<Vec<(String, u64)>>;

    /// Deletes the session's uploads and import progress (at `init`).
    async fn clear_uploads(&self, session_id: i64) -> Result<()>;

    /// Saves how far the import of a file got.
    async fn set_import_progress(
        &self,
        session_id: i64,
        filename: &str,
        progress: &ImportProgress,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// How far the import of a file got, if it started.
    async fn import_progress(
        &self,
        session_id: i64,
        filename: &str,
    ) -> Result<Option<ImportProgress>>;

    // ----- journal -----

    /// Records one exchange request.
    async fn journal(&self, entry: &JournalEntry) -> Result<()>;

    /// The latest sessions, newest first, each with its requests (oldest first).
    async fn sessions_report(&self, limit: u32) -> Result<Vec<SessionReport>>;

    // ----- settings -----

    /// A setting's value.
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;

    /// Sets a setting.
    async fn set_setting(&self, key: &str, value: &str) -> Result<()>;

    /// Sets a setting only if it is not set yet; returns the value now stored (the existing one
    /// when another instance won the race), e.g. for the generated password hash.
    async fn set_setting_if_absent(&self, key: &str, value: &str) -> Result<String>;

    // ----- push outbox (see the `outbox` module docs) -----
    // Backends without an outbox keep the default bodies, which refuse.

    /// Turns the outbox on for this handle: from now on [`Store::upsert_order`] and
    /// [`Store::upsert_orders`] enqueue every created or changed order version in the same
    /// transaction, and `wake` is notified after each commit that enqueued.
    fn enable_outbox(&self, wake: Arc<tokio::sync::Notify>) -> Result<()> {
        let _ = wake;
        Err(outbox_unsupported())
    }

    /// Hands entries that [`Store::upsert_order`] enqueues to this process's worker through
    /// `handoff` (see [`Handoff`]) instead of leaving them for [`Store::claim_due`]. A backend
    /// that does not hand off keeps this default, which does nothing: its entries are claimed.
    fn enable_outbox_handoff(&self, handoff: Handoff) -> Result<()> {
        let _ = handoff;
        Ok(())
    }

    /// Leases up to `limit` pending entries due at `now` (not leased, or their lease expired)
    /// until `now + lease`, counting an attempt on each, oldest first. Entries whose version
    /// the exchange already confirmed, or whose order has a newer version, become
    /// [`OutboxState::Obsolete`] instead of being returned.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>> {
        let _ = (now, limit, lease);
        Err(outbox_unsupported())
    }

    /// 1C acknowledged the entry: it becomes delivered and, in the same transaction, its order
    /// version is confirmed in the delivery ledger (session [`PUSH_LEDGER_SESSION`]) unless an
    /// exchange session confirmed it already, so `query` no longer offers it. Returns whether
    /// the entry changed (false when it was delivered already). [`Error::NotFound`] for an
    /// unknown id.
    async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let _ = (id, now);
        Err(outbox_unsupported())
    }

    /// [`Store::mark_delivered`] for many entries in one transaction, each with the time its
    /// acknowledgement arrived: the push worker's group commit. Returns, in the order of
    /// `acks`, whether each entry changed; an unknown id gives `false` (no error, so one bad
    /// id does not fail the others).
    async fn mark_delivered_many(&self, acks: &[(i64, DateTime<Utc>)]) -> Result<Vec<bool>> {
        let _ = acks;
        Err(outbox_unsupported())
    }

    /// The attempt failed and will be retried: the lease ends, the next attempt is not before
    /// `next_at`. Only a pending entry changes.
    async fn mark_retry(&self, id: i64, next_at: DateTime<Utc>, error: &str) -> Result<()> {
        let _ = (id, next_at, error);
        Err(outbox_unsupported())
    }

    /// The entry is given up on (dead letter); the order stays due for the scheduled exchange.
    /// Only a pending entry changes.
    async fn mark_dead(&self, id: i64, error: &str) -> Result<()> {
        let _ = (id, error);
        Err(outbox_unsupported())
    }

    /// Entries matching `filter`, by id.
    async fn list_outbox(&self, filter: &OutboxFilter) -> Result<Vec<OutboxEntry>> {
        let _ = filter;
        Err(outbox_unsupported())
    }

    /// Puts a dead (or pending) entry back to pending, due at `now`, with its attempts reset.
    /// [`Error::NotFound`] for an unknown id, [`Error::Conflict`] for a delivered or obsolete
    /// entry.
    async fn requeue(&self, id: i64, now: DateTime<Utc>) -> Result<OutboxEntry> {
        let _ = (id, now);
        Err(outbox_unsupported())
    }

    /// When the earliest pending entry becomes claimable (its next attempt or the end of its
    /// lease, whichever is later); `None` when nothing is pending.
    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Err(outbox_unsupported())
    }

    // ----- webhook events (see the `webhook` module docs) -----
    // Backends without webhook events keep the default bodies, which refuse.

    /// Turns webhook events on for this handle: from now on [`Store::apply_update`] and
    /// [`Store::apply_updates`] record a [`WebhookEvent`] for every status change they apply
    /// (each history entry with source `1c`), in the same transaction, and `wake` is notified
    /// after each commit that changed something.
    fn enable_webhook_events(&self, wake: Arc<tokio::sync::Notify>) -> Result<()> {
        let _ = wake;
        Err(webhook_unsupported())
    }

    /// Leases up to `limit` undelivered events due at `now` (not leased, or their lease
    /// expired) until `now + lease`, counting an attempt on each, oldest first. An event leased
    /// by one caller is not returned to another until the lease ends (on PostgreSQL, claims of
    /// several instances skip each other's rows instead of waiting).
    async fn claim_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<WebhookEvent>> {
        let _ = (now, limit, lease);
        Err(webhook_unsupported())
    }

    /// The store acknowledged the event: it becomes delivered and is never claimed again.
    /// Returns whether it changed (false when it was delivered already). [`Error::NotFound`]
    /// for an unknown id.
    async fn mark_webhook_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let _ = (id, now);
        Err(webhook_unsupported())
    }

    /// The attempt failed and will be retried: the lease ends, the next attempt is not before
    /// `next_at`, `error` is kept. Only an undelivered event changes. [`Error::NotFound`] for
    /// an unknown id.
    async fn mark_webhook_retry(&self, id: i64, next_at: DateTime<Utc>, error: &str) -> Result<()> {
        let _ = (id, next_at, error);
        Err(webhook_unsupported())
    }

    /// Up to `limit` events (delivered or not) with ids greater than `after_id`, by id.
    async fn webhook_events(&self, after_id: i64, limit: u32) -> Result<Vec<WebhookEvent>> {
        let _ = (after_id, limit);
        Err(webhook_unsupported())
    }

    /// When the earliest undelivered event becomes claimable (its next attempt or the end of
    /// its lease, whichever is later); `None` when everything is delivered.
    async fn webhook_next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Err(webhook_unsupported())
    }
}

fn webhook_unsupported() -> Error {
    Error::Invalid("this database backend keeps no webhook events".to_owned())
}

fn outbox_unsupported() -> Error {
    Error::Invalid("this database backend has no push outbox yet".to_owned())
}
