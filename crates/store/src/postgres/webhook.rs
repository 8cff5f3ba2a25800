//! Webhook events on PostgreSQL (migration 0003). Workers of any number of instances claim due
//! events with `FOR UPDATE SKIP LOCKED` and a lease, so no event is leased twice at once and a
//! claim never waits for another; a lease that expires (its worker was killed) makes the event
//! claimable again.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::PgStore;
use crate::webhook::{lease_end, WebhookEvent};
use crate::{Error, Result};

/// Records one event per status change in the open transaction, in the given order: order ids,
/// new statuses and 1C's names are parallel arrays.
pub(super) async fn record(
    conn: &mut PgConnection,
    order_ids: &[i64],
    statuses: &[String],
    names: &[Option<String>],
    now: DateTime<Utc>,
) -> Result<()> {
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO webhook_events (order_id, number, status, status_1c, at, next_attempt_at) \
         SELECT u.order_id, o.number, u.status, u.status_1c, $4, $4 \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY \
              AS u(order_id, status, status_1c, n) \
         JOIN orders AS o ON o.id = u.order_id \
         ORDER BY u.n",
    )
    .bind(order_ids)
    .bind(statuses)
    .bind(names)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "e.id, e.order_id, e.number, e.status, e.status_1c, e.at, e.attempts, \
     e.next_attempt_at, e.leased_until, e.last_error, e.last_attempt_at, e.delivered_at";

fn event_from_row(row: &PgRow) -> Result<WebhookEvent> {
    let attempts: i64 = row.try_get("attempts")?;
    Ok(WebhookEvent {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        number: row.try_get("number")?,
        status: row.try_get("status")?,
        status_1c: row.try_get("status_1c")?,
        at: row.try_get("at")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: row.try_get("next_attempt_at")?,
        leased_until: row.try_get("leased_until")?,
        last_error: row.try_get("last_error")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// Whether the event is delivered; [`Error::NotFound`] when there is none.
async fn delivered(conn: &mut PgConnection, id: i64) -> Result<bool> {
    let row: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT delivered_at FROM webhook_events WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.ok_or(Error::NotFound)?.is_some())
}

impl PgStore {
    pub(super) async fn webhook_claim(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<WebhookEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_end(now, lease)?;
        // Events another worker is claiming right now are skipped, not waited for; the lease
        // keeps them from being claimed again after that transaction commits.
        let sql = format!(
            "WITH due AS ( \
                 SELECT id FROM webhook_events WHERE delivered_at IS NULL \
                 AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1) \
                 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE webhook_events AS e SET leased_until = $3, attempts = e.attempts + 1, \
                 last_attempt_at = $1 \
             FROM due WHERE e.id = due.id RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .bind(until)
            .fetch_all(&self.pool)
            .await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    pub(super) async fn webhook_mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE webhook_events SET delivered_at = $1, leased_until = NULL, last_error = NULL \
             WHERE id = $2 AND delivered_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Delivered already (an acknowledgement seen twice), or no such event.
            delivered(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub(super) async fn webhook_mark_retry(
        &self,
        id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE webhook_events SET next_attempt_at = $1, leased_until = NULL, \
             last_error = $2 WHERE id = $3 AND delivered_at IS NULL",
        )
        .bind(next_at)
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Delivered meanwhile (by a worker whose lease outlived ours): leave it; but an
            // unknown id is an error.
            delivered(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn webhook_list(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events AS e WHERE e.id > $1 ORDER BY e.id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub(super) async fn webhook_next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(GREATEST(leased_until, next_attempt_at)) FROM webhook_events \
             WHERE delivered_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
