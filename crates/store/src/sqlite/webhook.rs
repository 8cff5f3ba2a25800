//! Webhook events on SQLite (migration 0004). One writer serialises every claim
//! (`BEGIN IMMEDIATE`), so a lease taken with `UPDATE … RETURNING` is exclusive, also between
//! processes on the same file; a lease that expires makes the event claimable again.

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;

use super::{parse_ts, ts, SqliteStore};
use crate::webhook::{lease_end, WebhookEvent};
use crate::{Error, Result};

/// Rows per multi-row INSERT of [`record`] (6 parameters a row).
const RECORD_CHUNK: usize = 500;

/// Records one event per status change `(order id, new status, 1C's name)` in the open
/// transaction, in the given order.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    changes: &[(i64, String, Option<String>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let now_text = ts(now);
    for chunk in changes.chunks(RECORD_CHUNK) {
        let values = vec!["(?, (SELECT number FROM orders WHERE id = ?), ?, ?, ?, ?)"; chunk.len()]
            .join(",");
        let sql = format!(
            "INSERT INTO webhook_events (order_id, number, status, status_1c, at, \
             next_attempt_at) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for (id, status, status_1c) in chunk {
            q = q
                .bind(*id)
                .bind(*id)
                .bind(status)
                .bind(status_1c)
                .bind(&now_text)
                .bind(&now_text);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

const COLUMNS: &str = "id, order_id, number, status, status_1c, at, attempts, next_attempt_at, \
     leased_until, last_error, last_attempt_at, delivered_at";

fn opt_ts(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(column)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

fn event_from_row(row: &SqliteRow) -> Result<WebhookEvent> {
    let attempts: i64 = row.try_get("attempts")?;
    Ok(WebhookEvent {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        number: row.try_get("number")?,
        status: row.try_get("status")?,
        status_1c: row.try_get("status_1c")?,
        at: parse_ts(&row.try_get::<String, _>("at")?)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: parse_ts(&row.try_get::<String, _>("next_attempt_at")?)?,
        leased_until: opt_ts(row, "leased_until")?,
        last_error: row.try_get("last_error")?,
        last_attempt_at: opt_ts(row, "last_attempt_at")?,
        delivered_at: opt_ts(row, "delivered_at")?,
    })
}

/// Whether the event is delivered; [`Error::NotFound`] when there is none.
async fn delivered(conn: &mut SqliteConnection, id: i64) -> Result<bool> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT delivered_at FROM webhook_events WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.ok_or(Error::NotFound)?.is_some())
}

impl SqliteStore {
    pub(super) async fn webhook_claim(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<WebhookEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now_text = ts(now);
        let until = ts(lease_end(now, lease)?);
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE webhook_events SET leased_until = ?, attempts = attempts + 1, \
             last_attempt_at = ? \
             WHERE id IN (SELECT id FROM webhook_events INDEXED BY webhook_events_pending_idx \
                          WHERE delivered_at IS NULL AND next_attempt_at <= ? \
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
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    pub(super) async fn webhook_mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_events SET delivered_at = ?, leased_until = NULL, last_error = NULL \
             WHERE id = ? AND delivered_at IS NULL",
        )
        .bind(ts(now))
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
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_events SET next_attempt_at = ?, leased_until = NULL, last_error = ? \
             WHERE id = ? AND delivered_at IS NULL",
        )
        .bind(ts(next_at))
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
        let sql = format!("SELECT {COLUMNS} FROM webhook_events WHERE id > ? ORDER BY id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub(super) async fn webhook_next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        let at: Option<String> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN leased_until > next_attempt_at THEN leased_until \
             ELSE next_attempt_at END) FROM webhook_events WHERE delivered_at IS NULL",
        )
        .fetch_one(&self.reader)
        .await?;
        at.as_deref().map(parse_ts).transpose()
    }
}
