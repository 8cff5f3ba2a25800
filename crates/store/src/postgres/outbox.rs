//! The push outbox on PostgreSQL (migration 0002). Workers of any number of instances claim
//! due entries with `FOR UPDATE SKIP LOCKED` and a lease, so no entry is leased twice at once
//! and a claim never waits for another; a lease that expires (its worker crashed) makes the
//! entry claimable again.

use chrono::{DateTime, Utc};
use exchange::domain::Order;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::PgStore;
use crate::outbox::{
    idempotency_key, lease_end, InsertEntries, OutboxEntry, OutboxFilter, OutboxState,
};
use crate::{Error, Result, PUSH_LEDGER_SESSION};

#[async_trait::async_trait]
impl InsertEntries for PgConnection {
    async fn insert_entries(
        &mut self,
        orders: &[&Order],
        now: DateTime<Utc>,
        leased_until: Option<DateTime<Utc>>,
    ) -> Result<Vec<(i64, i64)>> {
        let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        let numbers: Vec<&str> = orders.iter().map(|o| o.input.number.as_str()).collect();
        let versions: Vec<i64> = orders.iter().map(|o| o.version).collect();
        let keys: Vec<String> = orders
            .iter()
            .map(|o| idempotency_key(&o.input.number, o.version))
            .collect();
        let rows = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO outbox (order_id, order_number, version, idempotency_key, state, \
                 attempts, next_attempt_at, created_at, leased_until, last_attempt_at) \
                 SELECT u.order_id, u.order_number, u.version, u.idempotency_key, 'pending', \
                        CASE WHEN $6::timestamptz IS NULL THEN 0 ELSE 1 END, $5, $5, $6, \
                        CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE $5 END \
                 FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[]) WITH ORDINALITY \
                      AS u(order_id, order_number, version, idempotency_key, n) \
                 ORDER BY u.n \
                 ON CONFLICT (order_id, version) DO NOTHING \
                 RETURNING id, order_id",
        )
        .bind(&ids)
        .bind(&numbers)
        .bind(&versions)
        .bind(&keys)
        .bind(now)
        .bind(leased_until)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows)
    }
}

const COLUMNS: &str = "outbox.id, outbox.order_id, outbox.order_number, outbox.version, \
     outbox.idempotency_key, outbox.state, outbox.attempts, outbox.next_attempt_at, \
     outbox.leased_until, outbox.last_error, outbox.created_at, outbox.last_attempt_at, \
     outbox.delivered_at";

fn entry_from_row(row: &PgRow) -> Result<OutboxEntry> {
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
        next_attempt_at: row.try_get("next_attempt_at")?,
        leased_until: row.try_get("leased_until")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// The state of an entry, locking it; [`Error::NotFound`] when there is none.
async fn lock_state(conn: &mut PgConnection, id: i64) -> Result<OutboxState> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM outbox WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let state = state.ok_or(Error::NotFound)?;
    state
        .parse()
        .map_err(|_| Error::Corrupt(format!("bad outbox state {state:?}")))
}

impl PgStore {
    pub(super) async fn outbox_claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_end(now, lease)?;
        let mut tx = self.begin().await?;
        // Versions the exchange confirmed, or that a newer version replaced, are not sent.
        // Entries another worker holds are skipped, not waited for.
        sqlx::query(
            "WITH stale AS ( \
                 SELECT x.id, o.confirmed_version >= x.version AS confirmed \
                 FROM outbox AS x JOIN orders AS o ON o.id = x.order_id \
                 WHERE x.state = 'pending' AND x.next_attempt_at <= $1 \
                 AND (x.leased_until IS NULL OR x.leased_until <= $1) \
                 AND (o.confirmed_version >= x.version OR o.version > x.version) \
                 FOR UPDATE OF x SKIP LOCKED) \
             UPDATE outbox SET state = 'obsolete', leased_until = NULL, last_error = \
                 CASE WHEN stale.confirmed THEN 'confirmed by the scheduled exchange' \
                      ELSE 'superseded by a newer version of the order' END \
             FROM stale WHERE outbox.id = stale.id",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "WITH due AS ( \
                 SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
                 AND (leased_until IS NULL OR leased_until <= $1) \
                 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET leased_until = $3, attempts = outbox.attempts + 1, \
                 last_attempt_at = $1 \
             FROM due WHERE outbox.id = due.id RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .bind(until)
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
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        known.map(|_| false).ok_or(Error::NotFound)
    }

    /// Marks the acknowledged entries delivered and confirms their versions in the ledger, in
    /// one transaction and four statements whatever the batch size.
    pub(super) async fn outbox_mark_delivered_many(
        &self,
        acks: &[(i64, DateTime<Utc>)],
    ) -> Result<Vec<bool>> {
        let mut changed = vec![false; acks.len()];
        if acks.is_empty() {
            return Ok(changed);
        }
        let ids: Vec<i64> = acks.iter().map(|(id, _)| *id).collect();
        let ats: Vec<DateTime<Utc>> = acks.iter().map(|(_, at)| *at).collect();
        let mut tx = self.begin().await?;
        // The orders first, in id order (the lock order of `confirm_session`), then the entries.
        sqlx::query(
            "SELECT id FROM orders WHERE id IN \
             (SELECT order_id FROM outbox WHERE id = ANY($1)) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "UPDATE outbox SET state = 'delivered', delivered_at = a.at, leased_until = NULL, \
             last_error = NULL FROM UNNEST($1::bigint[], $2::timestamptz[]) AS a (id, at) \
             WHERE outbox.id = a.id AND outbox.state <> 'delivered' \
             RETURNING outbox.id, outbox.order_id, outbox.version",
        )
        .bind(&ids)
        .bind(&ats)
        .fetch_all(&mut *tx)
        .await?;
        if !rows.is_empty() {
            let done: Vec<i64> = rows.iter().map(|r| r.0).collect();
            // Confirmed once in the ledger: a session that confirmed a version first keeps it
            // (the partial unique index turns the insert into a no-op).
            sqlx::query(
                "INSERT INTO delivery_ledger \
                 (session_id, order_id, version, offered_at, confirmed_at) \
                 SELECT $2, x.order_id, x.version, x.delivered_at, x.delivered_at \
                 FROM outbox AS x WHERE x.id = ANY($1) ON CONFLICT DO NOTHING",
            )
            .bind(&done)
            .bind(PUSH_LEDGER_SESSION)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE orders SET confirmed_version = top.version FROM \
                 (SELECT order_id, MAX(version) AS version FROM outbox WHERE id = ANY($1) \
                  GROUP BY order_id) AS top \
                 WHERE orders.id = top.order_id AND orders.confirmed_version < top.version",
            )
            .bind(&done)
            .execute(&mut *tx)
            .await?;
            for (id, ..) in &rows {
                if let Some(i) = ids.iter().position(|a| a == id) {
                    changed[i] = true;
                }
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Sets the outcome of a failed attempt of a pending entry (retry at `next_at`, or dead).
    pub(super) async fn outbox_mark_failed(
        &self,
        id: i64,
        next_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = match next_at {
            Some(at) => sqlx::query(
                "UPDATE outbox SET next_attempt_at = $3, leased_until = NULL, last_error = $1 \
                 WHERE id = $2 AND state = 'pending'",
            )
            .bind(error)
            .bind(id)
            .bind(at),
            None => sqlx::query(
                "UPDATE outbox SET state = 'dead', leased_until = NULL, last_error = $1 \
                 WHERE id = $2 AND state = 'pending'",
            )
            .bind(error)
            .bind(id),
        }
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Not pending any more (delivered by a slower twin, obsolete): leave it; but an
            // unknown id is an error.
            lock_state(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxEntry>> {
        let mut sql = format!("SELECT {COLUMNS} FROM outbox WHERE id > $1");
        let mut n = 1;
        if filter.state.is_some() {
            n += 1;
            sql.push_str(&format!(" AND state = ${n}"));
        }
        sql.push_str(" ORDER BY id");
        if filter.limit.is_some() {
            n += 1;
            sql.push_str(&format!(" LIMIT ${n}"));
        }
        let mut q = sqlx::query(&sql).bind(filter.after_id.unwrap_or(i64::MIN));
        if let Some(state) = filter.state {
            q = q.bind(state.as_str());
        }
        if let Some(limit) = filter.limit {
            q = q.bind(i64::from(limit));
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(entry_from_row).collect()
    }

    pub(super) async fn outbox_requeue(&self, id: i64, now: DateTime<Utc>) -> Result<OutboxEntry> {
        let mut tx = self.begin().await?;
        match lock_state(&mut tx, id).await? {
            OutboxState::Pending | OutboxState::Dead => {}
            state @ (OutboxState::Delivered | OutboxState::Obsolete) => {
                return Err(Error::Conflict(format!(
                    "outbox entry {id} is {state}; only dead or pending entries are re-queued"
                )));
            }
        }
        let sql = format!(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, \
             leased_until = NULL WHERE id = $2 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(now)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox.wake();
        entry_from_row(&row)
    }

    pub(super) async fn outbox_next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(GREATEST(leased_until, next_attempt_at)) FROM outbox \
             WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
