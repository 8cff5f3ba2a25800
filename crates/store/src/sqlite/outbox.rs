//! The push outbox on SQLite (migration 0003). One writer serialises every claim
//! (`BEGIN IMMEDIATE`), so a lease taken with `UPDATE … RETURNING` is exclusive; a lease that
//! expires (its worker crashed) makes the entry claimable again.

use chrono::{DateTime, Utc};
use exchange::domain::Order;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;

use super::{parse_ts, ts, SqliteStore};
use crate::outbox::{
    idempotency_key, lease_end, InsertEntries, OutboxEntry, OutboxFilter, OutboxState,
};
use crate::{Error, Result, PUSH_LEDGER_SESSION};

#[async_trait::async_trait]
impl InsertEntries for SqliteConnection {
    async fn insert_entries(
        &mut self,
        orders: &[&Order],
        now: DateTime<Utc>,
        leased_until: Option<DateTime<Utc>>,
    ) -> Result<Vec<(i64, i64)>> {
        let now_text = ts(now);
        let until_text = leased_until.map(ts);
        let (attempts, attempted) = match leased_until {
            Some(_) => (1, Some(now_text.as_str())),
            None => (0, None),
        };
        let mut inserted = Vec::with_capacity(orders.len());
        for chunk in orders.chunks(ENQUEUE_CHUNK) {
            let values = vec!["(?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)"; chunk.len()].join(",");
            let sql = format!(
                "INSERT INTO outbox (order_id, order_number, version, idempotency_key, state, \
                     attempts, next_attempt_at, created_at, leased_until, last_attempt_at) \
                     VALUES {values} ON CONFLICT (order_id, version) DO NOTHING \
                     RETURNING id, order_id"
            );
            let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
            for order in chunk {
                q = q
                    .bind(order.id)
                    .bind(&order.input.number)
                    .bind(order.version)
                    .bind(idempotency_key(&order.input.number, order.version))
                    .bind(attempts)
                    .bind(&now_text)
                    .bind(&now_text)
                    .bind(until_text.as_deref())
                    .bind(attempted);
            }
            inserted.extend(q.fetch_all(&mut *self).await?);
        }
        Ok(inserted)
    }
}

/// Rows per multi-row INSERT of `insert_entries` (9 parameters a row).
const ENQUEUE_CHUNK: usize = 500;

/// Acknowledgements per statement of `outbox_mark_delivered_many` (at most 5 parameters a row).
const ACK_CHUNK: usize = 500;

const COLUMNS: &str = "id, order_id, order_number, version, idempotency_key, state, attempts, \
     next_attempt_at, leased_until, last_error, created_at, last_attempt_at, delivered_at";

fn opt_ts(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(column)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

fn entry_from_row(row: &SqliteRow) -> Result<OutboxEntry> {
    let state: String = row.try_get("state")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        order_number: row.try_get("order_number")?,
        version: row.try_get("version")?,
        idempotency_key: row.try_get("idempotency_key")?,
        state: state
            .parse()
            .map_err(|_| Error::Corrupt(format!("bad outbox state {state:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: parse_ts(&row.try_get::<String, _>("next_attempt_at")?)?,
        leased_until: opt_ts(row, "leased_until")?,
        last_error: row.try_get("last_error")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        last_attempt_at: opt_ts(row, "last_attempt_at")?,
        delivered_at: opt_ts(row, "delivered_at")?,
    })
}

async fn state_of(conn: &mut SqliteConnection, id: i64) -> Result<OutboxState> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM outbox WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let state = state.ok_or(Error::NotFound)?;
    state
        .parse()
        .map_err(|_| Error::Corrupt(format!("bad outbox state {state:?}")))
}

impl SqliteStore {
    pub(super) async fn outbox_claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now_text = ts(now);
        let until = ts(lease_end(now, lease)?);
        let mut tx = self.begin_write().await?;
        // Versions the exchange confirmed, or that a newer version replaced, are not sent.
        sqlx::query(
            "UPDATE outbox SET state = 'obsolete', leased_until = NULL, last_error = \
             CASE WHEN (SELECT confirmed_version FROM orders WHERE id = outbox.order_id) \
                       >= outbox.version \
                  THEN 'confirmed by the scheduled exchange' \
                  ELSE 'superseded by a newer version of the order' END \
             WHERE state = 'pending' AND next_attempt_at <= ? \
             AND (leased_until IS NULL OR leased_until <= ?) \
             AND EXISTS (SELECT 1 FROM orders AS o WHERE o.id = outbox.order_id \
                         AND (o.confirmed_version >= outbox.version OR o.version > outbox.version))",
        )
        .bind(&now_text)
        .bind(&now_text)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE outbox SET leased_until = ?, attempts = attempts + 1, last_attempt_at = ? \
             WHERE id IN (SELECT id FROM outbox INDEXED BY outbox_pending_idx \
                          WHERE state = 'pending' AND next_attempt_at <= ? \
                          AND (leased_until IS NULL OR leased_until <= ?) \
                          ORDER BY next_attempt_at, id LIMIT ?) \
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&until)
            .bind(&now_text)
            .bind(&now_text)
            .bind(&now_text)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut entries = rows
            .iter()
            .map(entry_from_row)
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    pub(super) async fn outbox_mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        if self.outbox_mark_delivered_many(&[(id, now)]).await?[0] {
            return Ok(true);
        }
        // Delivered already (an acknowledgement seen twice), or no such entry.
        let mut conn = self.reader.acquire().await?;
        state_of(&mut conn, id).await?;
        Ok(false)
    }

    /// Marks the acknowledged entries delivered and confirms their versions in the ledger, all
    /// in one write transaction (a few statements for the whole batch).
    pub(super) async fn outbox_mark_delivered_many(
        &self,
        acks: &[(i64, DateTime<Utc>)],
    ) -> Result<Vec<bool>> {
        let mut changed = vec![false; acks.len()];
        if acks.is_empty() {
            return Ok(changed);
        }
        let mut tx = self.begin_write().await?;
        for (chunk_no, chunk) in acks.chunks(ACK_CHUNK).enumerate() {
            let values = vec!["(?, ?)"; chunk.len()].join(",");
            // The entries, then the ledger (once per version: a session that confirmed it
            // first keeps it), then the orders' confirmed versions.
            // Each statement scans its VALUES list and finds the rows by primary key.
            let sql = format!(
                "WITH acks (id, at) AS (VALUES {values}) \
                 UPDATE outbox SET state = 'delivered', delivered_at = acks.at, \
                 leased_until = NULL, last_error = NULL FROM acks \
                 WHERE outbox.id = acks.id AND outbox.state <> 'delivered' \
                 RETURNING outbox.id, outbox.order_id, outbox.version, outbox.delivered_at"
            );
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
            for (id, at) in chunk {
                q = q.bind(id).bind(ts(*at));
            }
            let rows = q.fetch_all(&mut *tx).await?;
            if rows.is_empty() {
                continue;
            }
            let values = vec!["(?, ?, ?, ?, ?)"; rows.len()].join(",");
            let sql = format!(
                "INSERT OR IGNORE INTO delivery_ledger \
                 (session_id, order_id, version, offered_at, confirmed_at) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            for (_, order_id, version, at) in &rows {
                q = q
                    .bind(PUSH_LEDGER_SESSION)
                    .bind(order_id)
                    .bind(version)
                    .bind(at)
                    .bind(at);
            }
            q.execute(&mut *tx).await?;
            let values = vec!["(?, ?)"; rows.len()].join(",");
            let sql = format!(
                "WITH acked (order_id, version) AS (VALUES {values}), \
                 top AS (SELECT order_id, MAX(version) AS version FROM acked GROUP BY order_id) \
                 UPDATE orders SET confirmed_version = top.version FROM top \
                 WHERE orders.id = top.order_id AND orders.confirmed_version < top.version"
            );
            let mut q = sqlx::query(&sql);
            for (_, order_id, version, _) in &rows {
                q = q.bind(order_id).bind(version);
            }
            q.execute(&mut *tx).await?;
            let base = chunk_no * ACK_CHUNK;
            for (id, ..) in &rows {
                if let Some(i) = chunk.iter().position(|(a, _)| a == id) {
                    changed[base + i] = true;
                }
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Sets the outcome of a failed attempt of a pending entry.
    pub(super) async fn outbox_mark_failed(
        &self,
        id: i64,
        next_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = match next_at {
            Some(at) => sqlx::query(
                "UPDATE outbox SET next_attempt_at = ?, leased_until = NULL, last_error = ? \
                 WHERE id = ? AND state = 'pending'",
            )
            .bind(ts(at)),
            None => sqlx::query(
                "UPDATE outbox SET state = 'dead', leased_until = NULL, last_error = ? \
                 WHERE id = ? AND state = 'pending'",
            ),
        }
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Not pending any more (delivered by a slower twin, obsolete): leave it; but an
            // unknown id is an error.
            state_of(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxEntry>> {
        let mut sql = format!("SELECT {COLUMNS} FROM outbox WHERE id > ?");
        if filter.state.is_some() {
            sql.push_str(" AND state = ?");
        }
        sql.push_str(" ORDER BY id");
        if filter.limit.is_some() {
            sql.push_str(" LIMIT ?");
        }
        let mut q = sqlx::query(&sql).bind(filter.after_id.unwrap_or(i64::MIN));
        if let Some(state) = filter.state {
            q = q.bind(state.as_str());
        }
        if let Some(limit) = filter.limit {
            q = q.bind(i64::from(limit));
        }
        let rows = q.fetch_all(&self.reader).await?;
        rows.iter().map(entry_from_row).collect()
    }

    pub(super) async fn outbox_requeue(&self, id: i64, now: DateTime<Utc>) -> Result<OutboxEntry> {
        let mut tx = self.begin_write().await?;
        match state_of(&mut tx, id).await? {
            OutboxState::Pending | OutboxState::Dead => {}
            state @ (OutboxState::Delivered | OutboxState::Obsolete) => {
                return Err(Error::Conflict(format!(
                    "outbox entry {id} is {state}; only dead or pending entries are re-queued"
                )));
            }
        }
        let sql = format!(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, \
             leased_until = NULL WHERE id = ? RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(ts(now))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox.wake();
        entry_from_row(&row)
    }

    pub(super) async fn outbox_next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        let at: Option<String> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN leased_until > next_attempt_at THEN leased_until \
             ELSE next_attempt_at END) FROM outbox WHERE state = 'pending'",
        )
        .fetch_one(&self.reader)
        .await?;
        at.as_deref().map(parse_ts).transpose()
    }
}
