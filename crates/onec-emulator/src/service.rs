//! A stand-in for a 1C HTTP service that receives orders pushed in real time.
//!
//! Any `POST` (whatever the path) carries one order: a CommerceML document, or JSON
//! `{"number": ...}`. Orders are stored by number in SQLite; a repeated `Idempotency-Key` is
//! acknowledged but not counted again. `GET /received` reports every number and how many times
//! it arrived. The answers can be scripted: fail every N-th request with 503, answer after a
//! delay, reject everything with 400.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::wire::{self, Reply};
use crate::xml;

/// How the stand-in answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOptions {
    /// SQLite file of the state, or `:memory:`.
    pub state: String,
    /// Answer every N-th push with 503 (0: never).
    pub fail_every: u64,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer every push with 400.
    pub reject: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            state: ":memory:".into(),
            fail_every: 0,
            delay: Duration::ZERO,
            reject: false,
        }
    }
}

/// A running stand-in.
#[derive(Debug)]
pub struct ServiceHandle {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ServiceHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, finishes in-flight requests and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server ends (it runs until [`ServiceHandle::shutdown`]).
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(Error::Io(std::io::Error::other(e))),
        }
    }
}

struct AppState {
    pool: SqlitePool,
    options: ServiceOptions,
    requests: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    replays: AtomicU64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pushed_orders (
    number   TEXT PRIMARY KEY,
    arrivals INTEGER NOT NULL,
    last_body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    numbers TEXT NOT NULL
);
";

/// Starts the stand-in on `listener`.
pub async fn serve(listener: TcpListener, options: ServiceOptions) -> Result<ServiceHandle> {
    let addr = listener.local_addr()?;
    let pool = open_state(&options.state).await?;
    let state = Arc::new(AppState {
        pool,
        options,
        requests: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        replays: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/received", get(received))
        .fallback(push)
        .with_state(state);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok(ServiceHandle {
        addr,
        shutdown: Some(tx),
        task,
    })
}

async fn open_state(path: &str) -> Result<SqlitePool> {
    let memory = path == ":memory:";
    let url = if memory {
        "sqlite::memory:".to_owned()
    } else {
        format!("sqlite://{path}")
    };
    let mut options = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(30));
    if !memory {
        // WAL with synchronous=NORMAL: a commit survives the process being killed (what the
        // tests do to it), only not a power cut, and costs no fsync per received order.
        options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
    }
    // One connection: every request writes, and writers waiting in the pool's queue are served
    // in turn, where several connections would meet in SQLite's busy handler, which sleeps
    // (up to 100 ms a time) between its tries.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}

async fn received(State(state): State<Arc<AppState>>) -> Response {
    let rows = match sqlx::query("SELECT number, arrivals FROM pushed_orders ORDER BY number")
        .fetch_all(&state.pool)
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let mut orders = BTreeMap::new();
    for r in rows {
        let (Ok(n), Ok(c)) = (r.try_get::<String, _>(0), r.try_get::<i64, _>(1)) else {
            continue;
        };
        orders.insert(n, c);
    }
    Json(json!({
        "orders": orders,
        "requests": state.requests.load(Ordering::SeqCst),
        "failed": state.failed.load(Ordering::SeqCst),
        "rejected": state.rejected.load(Ordering::SeqCst),
        "replays": state.replays.load(Ordering::SeqCst),
    }))
    .into_response()
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": e.to_string() })),
    )
        .into_response()
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response()
}

async fn push(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST an order\n").into_response();
    }
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if !state.options.delay.is_zero() {
        tokio::time::sleep(state.options.delay).await;
    }
    let every = state.options.fail_every;
    if every > 0 && n % every == 0 {
        state.failed.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "scripted failure", "request": n })),
        )
            .into_response();
    }
    if state.options.reject {
        state.rejected.fetch_add(1, Ordering::SeqCst);
        return bad_request("rejected by configuration".into());
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let numbers = match order_numbers(content_type, &body) {
        Ok(n) => n,
        Err(msg) => return bad_request(msg),
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // In a task of its own: 1C finishes what it started even when the pushing client gives up
    // (its timeout) and the request is dropped. Dropped mid-`BEGIN`, the one pooled connection
    // could come back inside a transaction and fail every later request.
    let stored = {
        let (state, numbers) = (Arc::clone(&state), numbers.clone());
        tokio::spawn(async move { store(&state, key.as_deref(), &numbers, &body).await })
    };
    let stored = match stored.await {
        Ok(result) => result,
        Err(e) => return internal(&e),
    };
    match stored {
        Ok(Stored::New(arrivals)) => (
            StatusCode::OK,
            Json(json!({ "status": "accepted", "numbers": numbers, "arrivals": arrivals })),
        )
            .into_response(),
        Ok(Stored::Replay) => {
            state.replays.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::OK,
                Json(json!({ "status": "duplicate", "numbers": numbers })),
            )
                .into_response()
        }
        Err(e) => internal(&e),
    }
}

/// The order numbers a push carries.
fn order_numbers(content_type: Option<String>, body: &[u8]) -> Result<Vec<String>, String> {
    let trimmed = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first = trimmed.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let is_json =
        content_type.as_deref().is_some_and(|c| c.contains("json")) || first == Some(b'{');
    if is_json {
        let v: Value =
            serde_json::from_slice(trimmed).map_err(|e| format!("JSON does not parse: {e}"))?;
        let number = match v.get("number") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("JSON order without a \"number\"".into()),
        };
        return Ok(vec![number]);
    }
    let reply = Reply {
        status: 200,
        content_type,
        body: body.to_vec(),
    };
    let mode = "push";
    let text = wire::decode_xml(mode, &reply, false).map_err(|e| e.to_string())?;
    let root = xml::parse_tree(mode, &text).map_err(|e| e.to_string())?;
    let answer = xml::read_query_answer(mode, &root).map_err(|e| e.to_string())?;
    let mut numbers: Vec<String> = Vec::new();
    for o in answer.orders {
        if !numbers.contains(&o.number) {
            numbers.push(o.number);
        }
    }
    if numbers.is_empty() {
        return Err("the document holds no order".into());
    }
    Ok(numbers)
}

enum Stored {
    New(BTreeMap<String, i64>),
    Replay,
}

async fn store(
    state: &AppState,
    key: Option<&str>,
    numbers: &[String],
    body: &[u8],
) -> Result<Stored> {
    // A sqlx transaction, so a request cancelled mid-way (the pushing client died or timed out)
    // rolls back when dropped instead of leaving its pooled connection inside a transaction.
    let mut conn = state.pool.begin_with("BEGIN IMMEDIATE").await?;
    let result = async {
        if let Some(k) = key {
            let seen = sqlx::query("SELECT 1 FROM idempotency_keys WHERE key = ?")
                .bind(k)
                .fetch_optional(&mut *conn)
                .await?
                .is_some();
            if seen {
                return Ok(Stored::Replay);
            }
            sqlx::query("INSERT INTO idempotency_keys (key, numbers) VALUES (?, ?)")
                .bind(k)
                .bind(numbers.join(","))
                .execute(&mut *conn)
                .await?;
        }
        let text = String::from_utf8_lossy(body);
        let mut arrivals = BTreeMap::new();
        for n in numbers {
            let row = sqlx::query(
                "INSERT INTO pushed_orders (number, arrivals, last_body) VALUES (?, 1, ?)
                 ON CONFLICT(number) DO UPDATE SET arrivals = arrivals + 1,
                 last_body = excluded.last_body RETURNING arrivals",
            )
            .bind(n)
            .bind(text.as_ref())
            .fetch_one(&mut *conn)
            .await?;
            arrivals.insert(n.clone(), row.try_get::<i64, _>(0)?);
        }
        Ok::<_, Error>(Stored::New(arrivals))
    }
    .await;
    if result.is_ok() {
        conn.commit().await?;
    } else {
        conn.rollback().await?;
    }
    result
}
