//! The emulator's "1C database": one SQLite file holding the order documents 1C created from
//! the site's orders, their 1C-side state, the sessions run and what was sent back.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions so that several sessions (in one process or
//! several) can share one file without lost updates.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, Sqlite, SqlitePool};

use crate::error::{Error, Result};
use crate::xml::ReceivedOrder;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    number          TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    site_id         TEXT,
    date_1c         TEXT NOT NULL,
    time_1c         TEXT NOT NULL,
    version         INTEGER NOT NULL,
    times_received  INTEGER NOT NULL,
    created_session INTEGER NOT NULL,
    received_json   TEXT NOT NULL,
    status_code     TEXT,
    status_name     TEXT,
    paid            INTEGER NOT NULL DEFAULT 0,
    payment_number  TEXT,
    payment_date    TEXT,
    shipped         INTEGER NOT NULL DEFAULT 0,
    shipment_number TEXT,
    shipment_date   TEXT,
    cancelled       INTEGER NOT NULL DEFAULT 0,
    deletion_mark   INTEGER NOT NULL DEFAULT 0,
    pending         INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT NOT NULL,
    url         TEXT NOT NULL,
    received    INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    duplicates  INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    confirmed   INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT
);
CREATE TABLE IF NOT EXISTS files (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL,
    name    TEXT NOT NULL,
    bytes   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session         INTEGER NOT NULL,
    file            TEXT NOT NULL,
    number          TEXT NOT NULL,
    status_code     TEXT,
    status_name     TEXT,
    paid            INTEGER NOT NULL,
    payment_number  TEXT,
    payment_date    TEXT,
    shipped         INTEGER NOT NULL,
    shipment_number TEXT,
    shipment_date   TEXT,
    cancelled       INTEGER NOT NULL,
    deletion_mark   INTEGER NOT NULL
);
";

/// 1C's own view of an order: what it would send back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderState {
    /// Site status code as mapped in 1C (`Статуса заказа ИД`).
    pub status_code: Option<String>,
    /// Status name (`Статус заказа`).
    pub status_name: Option<String>,
    /// Paid in 1C.
    pub paid: bool,
    /// Payment document number.
    pub payment_number: Option<String>,
    /// Payment document date.
    pub payment_date: Option<String>,
    /// Shipped in 1C.
    pub shipped: bool,
    /// Shipment document number.
    pub shipment_number: Option<String>,
    /// Shipment document date.
    pub shipment_date: Option<String>,
    /// Cancelled in 1C.
    pub cancelled: bool,
    /// Marked for deletion in 1C.
    pub deletion_mark: bool,
}

/// One order document in the 1C database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderRecord {
    /// The site's number (the key).
    pub number: String,
    /// Arrival sequence, from 1; 1C's own number is derived from it.
    pub seq: i64,
    /// The site's `Ид`.
    pub site_id: Option<String>,
    /// 1C document date.
    pub date_1c: String,
    /// 1C document time.
    pub time_1c: String,
    /// 1C data version, bumped at every change sent back.
    pub version: i64,
    /// How many times the site sent this order.
    pub times_received: i64,
    /// The session that created the document.
    pub created_session: i64,
    /// The order as last received.
    pub received: ReceivedOrder,
    /// 1C's state of the order.
    pub state: OrderState,
}

/// One exchange session as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionRecord {
    /// Session id.
    pub id: i64,
    /// Start, as 1C's clock showed it.
    pub started_at: String,
    /// The exchange URL.
    pub url: String,
    /// Orders received.
    pub received: i64,
    /// Documents created.
    pub created: i64,
    /// Documents updated.
    pub updated: i64,
    /// Duplicates within the answer.
    pub duplicates: i64,
    /// Documents sent back.
    pub sent: i64,
    /// `ok`, `no-success`, `cut`, or `error: …`.
    pub outcome: Option<String>,
}

/// One row of what was sent back to the site.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SentRecord {
    /// Session id.
    pub session: i64,
    /// Upload file name.
    pub file: String,
    /// The site's order number.
    pub number: String,
    /// The state sent.
    pub state: OrderState,
}

/// Outcome of storing one `query` answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Documents created.
    pub created: u64,
    /// Documents updated.
    pub updated: u64,
    /// Orders that appeared more than once in the same answer (counted per extra copy).
    pub duplicates: u64,
}

/// The 1C database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating if missing) the database at `path`; `:memory:` gives a private in-memory
    /// database.
    pub async fn open(path: &str) -> Result<Self> {
        let memory = path == ":memory:";
        let url = if memory {
            "sqlite::memory:".to_owned()
        } else {
            format!("sqlite://{path}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(30));
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// Orders registered for sending (received since their last successful upload), by
    /// arrival. Like 1C's change registration, the mark stays until an upload succeeds.
    pub async fn pending_orders(&self) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query("SELECT * FROM orders WHERE pending = 1 ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Clears the sending mark of orders that have nothing to send.
    pub async fn clear_pending(&self, numbers: &[String]) -> Result<()> {
        let mut conn = self.begin_immediate().await?;
        let mut result = Ok(());
        for n in numbers {
            if let Err(e) = sqlx::query("UPDATE orders SET pending = 0 WHERE number = ?")
                .bind(n)
                .execute(&mut *conn)
                .await
            {
                result = Err(e.into());
                break;
            }
        }
        Self::finish(&mut conn, result.is_ok()).await?;
        result
    }

    async fn begin_immediate(&self) -> Result<PoolConnection<Sqlite>> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        Ok(conn)
    }

    async fn finish(conn: &mut PoolConnection<Sqlite>, ok: bool) -> Result<()> {
        let sql = if ok { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(sql).execute(&mut **conn).await?;
        Ok(())
    }

    /// Records the start of a session and returns its id.
    pub async fn start_session(&self, started_at: &str, url: &str) -> Result<i64> {
        let row = sqlx::query("INSERT INTO sessions (started_at, url) VALUES (?, ?) RETURNING id")
            .bind(started_at)
            .bind(url)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Records the outcome of a session.
    pub async fn finish_session(
        &self,
        id: i64,
        counts: (u64, u64, u64, u64, u64),
        confirmed: bool,
        outcome: &str,
    ) -> Result<()> {
        let (received, created, updated, duplicates, sent) = counts;
        sqlx::query(
            "UPDATE sessions SET received = ?, created = ?, updated = ?, duplicates = ?, sent = ?,
             confirmed = ?, outcome = ? WHERE id = ?",
        )
        .bind(to_i64(received))
        .bind(to_i64(created))
        .bind(to_i64(updated))
        .bind(to_i64(duplicates))
        .bind(to_i64(sent))
        .bind(confirmed)
        .bind(outcome)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores the orders of one `query` answer: creates a document for a number 1C does not
    /// have, updates it otherwise; a number repeated within the answer counts as a duplicate
    /// and is stored once. Returns the counts and the distinct numbers in answer order.
    pub async fn store_answer(
        &self,
        session: i64,
        orders: &[ReceivedOrder],
        date_1c: &str,
        time_1c: &str,
    ) -> Result<(StoreCounts, Vec<String>)> {
        let mut conn = self.begin_immediate().await?;
        let result = Self::store_answer_in(&mut conn, session, orders, date_1c, time_1c).await;
        Self::finish(&mut conn, result.is_ok()).await?;
        result
    }

    async fn store_answer_in(
        conn: &mut PoolConnection<Sqlite>,
        session: i64,
        orders: &[ReceivedOrder],
        date_1c: &str,
        time_1c: &str,
    ) -> Result<(StoreCounts, Vec<String>)> {
        let mut counts = StoreCounts::default();
        let mut seen: Vec<String> = Vec::new();
        for order in orders {
            if seen.contains(&order.number) {
                counts.duplicates += 1;
                continue;
            }
            seen.push(order.number.clone());
            let json = serde_json::to_string(order)
                .map_err(|e| Error::Config(format!("cannot serialise an order: {e}")))?;
            let exists = sqlx::query("SELECT 1 FROM orders WHERE number = ?")
                .bind(&order.number)
                .fetch_optional(&mut **conn)
                .await?
                .is_some();
            if exists {
                sqlx::query(
                    "UPDATE orders SET received_json = ?, site_id = COALESCE(?, site_id),
                     times_received = times_received + 1, pending = 1 WHERE number = ?",
                )
                .bind(&json)
                .bind(&order.id)
                .bind(&order.number)
                .execute(&mut **conn)
                .await?;
                counts.updated += 1;
            } else {
                sqlx::query(
                    "INSERT INTO orders (number, seq, site_id, date_1c, time_1c, version,
                     times_received, created_session, received_json, status_code, cancelled)
                     VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM orders), ?, ?, ?, 1, 1, ?,
                     ?, ?, ?)",
                )
                .bind(&order.number)
                .bind(&order.id)
                .bind(date_1c)
                .bind(time_1c)
                .bind(session)
                .bind(&json)
                .bind(&order.status_code)
                .bind(order.cancelled)
                .execute(&mut **conn)
                .await?;
                counts.created += 1;
            }
        }
        Ok((counts, seen))
    }

    /// Every order document, by arrival.
    pub async fn orders(&self) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query("SELECT * FROM orders ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// One order document by the site's number.
    pub async fn order(&self, number: &str) -> Result<Option<OrderRecord>> {
        let row = sqlx::query("SELECT * FROM orders WHERE number = ?")
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Number of order documents.
    pub async fn order_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Applies new 1C states (after a successful upload) and logs them as sent.
    pub async fn record_sent(
        &self,
        session: i64,
        file: &str,
        changes: &[(String, OrderState)],
    ) -> Result<()> {
        let mut conn = self.begin_immediate().await?;
        let result = Self::record_sent_in(&mut conn, session, file, changes).await;
        Self::finish(&mut conn, result.is_ok()).await?;
        result
    }

    async fn record_sent_in(
        conn: &mut PoolConnection<Sqlite>,
        session: i64,
        file: &str,
        changes: &[(String, OrderState)],
    ) -> Result<()> {
        for (number, s) in changes {
            sqlx::query(
                "UPDATE orders SET status_code = ?, status_name = ?, paid = ?, payment_number = ?,
                 payment_date = ?, shipped = ?, shipment_number = ?, shipment_date = ?,
                 cancelled = ?, deletion_mark = ?, version = version + 1, pending = 0
                 WHERE number = ?",
            )
            .bind(&s.status_code)
            .bind(&s.status_name)
            .bind(s.paid)
            .bind(&s.payment_number)
            .bind(&s.payment_date)
            .bind(s.shipped)
            .bind(&s.shipment_number)
            .bind(&s.shipment_date)
            .bind(s.cancelled)
            .bind(s.deletion_mark)
            .bind(number)
            .execute(&mut **conn)
            .await?;
            sqlx::query(
                "INSERT INTO sent (session, file, number, status_code, status_name, paid,
                 payment_number, payment_date, shipped, shipment_number, shipment_date, cancelled,
                 deletion_mark) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(session)
            .bind(file)
            .bind(number)
            .bind(&s.status_code)
            .bind(&s.status_name)
            .bind(s.paid)
            .bind(&s.payment_number)
            .bind(&s.payment_date)
            .bind(s.shipped)
            .bind(&s.shipment_number)
            .bind(&s.shipment_date)
            .bind(s.cancelled)
            .bind(s.deletion_mark)
            .execute(&mut **conn)
            .await?;
        }
        Ok(())
    }

    /// Keeps a copy of an upload file exactly as it goes on the wire (zip or XML).
    pub async fn record_file(&self, session: i64, name: &str, bytes: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO files (session, name, bytes) VALUES (?, ?, ?)")
            .bind(session)
            .bind(name)
            .bind(bytes)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every upload file (session, name, bytes), in order.
    pub async fn files(&self) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT session, name, bytes FROM files ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Every session, oldest first.
    pub async fn sessions(&self) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query("SELECT * FROM sessions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionRecord {
                    id: r.try_get("id")?,
                    started_at: r.try_get("started_at")?,
                    url: r.try_get("url")?,
                    received: r.try_get("received")?,
                    created: r.try_get("created")?,
                    updated: r.try_get("updated")?,
                    duplicates: r.try_get("duplicates")?,
                    sent: r.try_get("sent")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    /// Everything sent back, in order.
    pub async fn sent_log(&self) -> Result<Vec<SentRecord>> {
        let rows = sqlx::query("SELECT * FROM sent ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SentRecord {
                    session: r.try_get("session")?,
                    file: r.try_get("file")?,
                    number: r.try_get("number")?,
                    state: state_from_row(r)?,
                })
            })
            .collect()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn state_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<OrderState> {
    Ok(OrderState {
        status_code: r.try_get("status_code")?,
        status_name: r.try_get("status_name")?,
        paid: r.try_get("paid")?,
        payment_number: r.try_get("payment_number")?,
        payment_date: r.try_get("payment_date")?,
        shipped: r.try_get("shipped")?,
        shipment_number: r.try_get("shipment_number")?,
        shipment_date: r.try_get("shipment_date")?,
        cancelled: r.try_get("cancelled")?,
        deletion_mark: r.try_get("deletion_mark")?,
    })
}

fn order_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<OrderRecord> {
    let json: String = r.try_get("received_json")?;
    let received = serde_json::from_str(&json)
        .map_err(|e| Error::Config(format!("corrupt order in the 1C database: {e}")))?;
    Ok(OrderRecord {
        number: r.try_get("number")?,
        seq: r.try_get("seq")?,
        site_id: r.try_get("site_id")?,
        date_1c: r.try_get("date_1c")?,
        time_1c: r.try_get("time_1c")?,
        version: r.try_get("version")?,
        times_received: r.try_get("times_received")?,
        created_session: r.try_get("created_session")?,
        received,
        state: state_from_row(r)?,
    })
}
