//! Real-time push against the real 1C HTTP-service stand-in (`onec_emulator::service`) on
//! loopback, over a real SQLite file: at-once delivery, retries with exactly-once receipt,
//! dead letters and `obmen outbox retry`, and the hand-over between push and the scheduled
//! exchange (never both). The acceptance test runs the built binary and kills it with SIGKILL
//! mid-way.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{offered, order_json, TestApp, PASSWORD, TOKEN, USER};
use exchange::retry::RetryPolicy;
use obmen::push::PushFormat;
use onec_emulator::service::{self, ServiceHandle, ServiceOptions};

const BIN: &str = env!("CARGO_BIN_EXE_obmen");

async fn stand_in(dir: &Path, name: &str, fail_every: u64, reject: bool) -> ServiceHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    service::serve(
        listener,
        ServiceOptions {
            state: dir.join(name).display().to_string(),
            fail_every,
            reject,
            ..ServiceOptions::default()
        },
    )
    .await
    .unwrap()
}

/// What the stand-in received: arrivals per order number, and its counters.
async fn received(
    http: &reqwest::Client,
    addr: SocketAddr,
) -> (BTreeMap<String, i64>, serde_json::Value) {
    let v: serde_json::Value = http
        .get(format!("http://{addr}/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let orders = serde_json::from_value(v["orders"].clone()).unwrap();
    (orders, v)
}

/// Waits until the stand-in holds `n` orders (or fails after `limit`).
async fn wait_received(
    http: &reqwest::Client,
    addr: SocketAddr,
    n: usize,
    limit: Duration,
) -> BTreeMap<String, i64> {
    let deadline = Instant::now() + limit;
    loop {
        let (orders, raw) = received(http, addr).await;
        if orders.len() >= n {
            return orders;
        }
        assert!(
            Instant::now() < deadline,
            "the stand-in got {} of {n} orders: {raw}",
            orders.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn outbox(app: &TestApp, state: &str) -> Vec<serde_json::Value> {
    let r = app
        .http
        .get(app.url(&format!("/api/v1/outbox?state={state}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["entries"].as_array().unwrap().clone()
}

async fn wait_outbox(app: &TestApp, state: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = outbox(app, state).await;
        if entries.len() >= n {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "{} {state} entries of {n}",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10,
        base_delay_ms: 10,
        max_delay_ms: 100,
    }
}

async fn app_pushing_to(
    dir: Option<tempfile::TempDir>,
    addr: SocketAddr,
    format: PushFormat,
) -> TestApp {
    let edit = move |c: &mut obmen::config::Config| {
        c.push.url = Some(format!("http://{addr}/hs/obmen/orders"));
        c.push.user = Some("obmen".to_owned());
        c.push.password = Some(obmen::config::Secret::new("push-secret"));
        c.push.format = format;
        c.push.timeout_ms = 2000;
        c.push.retry = fast_retries();
    };
    match dir {
        Some(d) => TestApp::spawn_in(d, edit).await,
        None => TestApp::spawn_with(edit).await,
    }
}

/// One 1C session: checkauth, init, query; returns the offered order numbers and says success.
async fn scheduled_exchange(app: &TestApp) -> Vec<String> {
    let mut onec = app.onec();
    onec.start().await;
    let answer = onec.query().await;
    assert_eq!(answer.status, 200);
    let numbers = offered(&answer).into_iter().map(|(_, n)| n).collect();
    let s = onec.success().await;
    assert!(s.text().starts_with("success"), "{}", s.text());
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_created_through_the_api_reach_the_stand_in_at_once() {
    let state = tempfile::tempdir().unwrap();
    for format in [PushFormat::Commerceml, PushFormat::Json] {
        let one_c = stand_in(state.path(), &format!("{format:?}.db"), 0, false).await;
        let app = app_pushing_to(None, one_c.addr(), format).await;
        for i in 0..5 {
            let started = Instant::now();
            let number = format!("{format:?}-{i}");
            let r = app.post_order(&order_json(&number, "N")).await;
            assert_eq!(r.status(), 201);
            // At once: the commit wakes the worker (its idle poll is a second).
            loop {
                let (orders, _) = received(&app.http, one_c.addr()).await;
                if orders.contains_key(&number) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_millis(700),
                    "order {number} not pushed at once"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let (orders, raw) = received(&app.http, one_c.addr()).await;
        assert_eq!(orders.len(), 5, "{raw}");
        assert!(orders.values().all(|&n| n == 1), "{raw}");
        let delivered = wait_outbox(&app, "delivered", 5).await;
        for e in &delivered {
            assert_eq!(e["attempts"], 1, "{e}");
            let key = e["idempotency_key"].as_str().unwrap();
            assert_eq!(key, format!("{}:1", e["order_number"].as_str().unwrap()));
        }
        // A replayed POST pushes nothing new; a change pushes the new version.
        app.post_order(&order_json(&format!("{format:?}-0"), "N"))
            .await;
        let mut changed = order_json(&format!("{format:?}-0"), "N");
        changed["comment"] = serde_json::json!("changed");
        let r = app
            .http
            .put(app.url(&format!("/api/v1/orders/{format:?}-0")))
            .bearer_auth(TOKEN)
            .json(&changed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let delivered = wait_outbox(&app, "delivered", 6).await;
        assert_eq!(delivered.len(), 6);
        let orders =
            wait_received_count(&app.http, one_c.addr(), &format!("{format:?}-0"), 2).await;
        assert_eq!(orders.len(), 5);
        one_c.shutdown().await.unwrap();
        app.stop().await;
    }
}

async fn wait_received_count(
    http: &reqwest::Client,
    addr: SocketAddr,
    number: &str,
    count: i64,
) -> BTreeMap<String, i64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (orders, raw) = received(http, addr).await;
        if orders.get(number).copied() == Some(count) {
            return orders;
        }
        assert!(
            Instant::now() < deadline,
            "{number} never arrived {count} times: {raw}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_stand_in_gets_each_order_exactly_once_through_retries() {
    let state = tempfile::tempdir().unwrap();
    let one_c = stand_in(state.path(), "standin.db", 3, false).await;
    let app = app_pushing_to(None, one_c.addr(), PushFormat::Commerceml).await;
    for i in 0..30 {
        let r = app.post_order(&order_json(&format!("R-{i}"), "N")).await;
        assert_eq!(r.status(), 201);
    }
    let orders = wait_received(&app.http, one_c.addr(), 30, Duration::from_secs(15)).await;
    let delivered = wait_outbox(&app, "delivered", 30).await;
    let (_, raw) = received(&app.http, one_c.addr()).await;
    assert!(orders.values().all(|&n| n == 1), "{raw}");
    assert!(raw["failed"].as_u64().unwrap() >= 10, "{raw}");
    assert!(
        delivered
            .iter()
            .any(|e| e["attempts"].as_u64().unwrap() > 1),
        "some entries needed a retry"
    );
    assert!(outbox(&app, "dead").await.is_empty());
    // Delivered by push: the scheduled exchange has nothing to send.
    assert!(scheduled_exchange(&app).await.is_empty());
    one_c.shutdown().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_push_dead_letters_leaves_the_order_to_query_and_retry_requeues() {
    let state = tempfile::tempdir().unwrap();
    let rejecting = stand_in(state.path(), "rejecting.db", 0, true).await;
    let app = app_pushing_to(None, rejecting.addr(), PushFormat::Json).await;
    for n in ["X-1", "X-2"] {
        assert_eq!(app.post_order(&order_json(n, "N")).await.status(), 201);
    }
    let dead = wait_outbox(&app, "dead", 2).await;
    for e in &dead {
        // A 400 is permanent: no retry.
        assert_eq!(e["attempts"], 1, "{e}");
        assert!(e["last_error"].as_str().unwrap().contains("400"), "{e}");
    }
    let (_, raw) = received(&app.http, rejecting.addr()).await;
    assert_eq!(raw["rejected"], 2, "{raw}");
    rejecting.shutdown().await.unwrap();
    let db = app.app.config.database_url.clone();
    let dir = app.stop().await;

    // The next start pushes to a working service; dead letters stay dead until re-queued.
    let one_c = stand_in(state.path(), "standin.db", 0, false).await;
    let app = app_pushing_to(Some(dir), one_c.addr(), PushFormat::Json).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received(&app.http, one_c.addr()).await.0.is_empty());

    let list = obmen_cli(&db, &["outbox", "list", "--state", "dead"]);
    assert!(list.contains("X-1") && list.contains("X-2"), "{list}");
    assert!(list.contains("HTTP 400"), "{list}");

    let x1 = dead.iter().find(|e| e["order_number"] == "X-1").unwrap();
    let x2 = dead.iter().find(|e| e["order_number"] == "X-2").unwrap();
    // X-1 re-queued: the running server delivers it (within its idle poll, since the CLI is
    // another process).
    let out = obmen_cli(&db, &["outbox", "retry", &x1["id"].to_string()]);
    assert!(out.contains("re-queued"), "{out}");
    wait_received(&app.http, one_c.addr(), 1, Duration::from_secs(5)).await;
    wait_outbox(&app, "delivered", 1).await;
    // The scheduled exchange sends what the push could not, not what it delivered.
    assert_eq!(scheduled_exchange(&app).await, ["X-2"]);
    // Re-queuing X-2 after 1C confirmed it by exchange does not push it (never both).
    let out = obmen_cli(&db, &["outbox", "retry", &x2["id"].to_string()]);
    assert!(out.contains("re-queued"), "{out}");
    wait_outbox(&app, "obsolete", 1).await;
    let (orders, raw) = received(&app.http, one_c.addr()).await;
    assert_eq!(orders.keys().collect::<Vec<_>>(), ["X-1"], "{raw}");
    assert!(outbox(&app, "dead").await.is_empty());
    // Unknown ids and bad states are reported, not panics.
    let bad = Command::new(BIN)
        .args(["outbox", "retry", "999999"])
        .env("OBMEN_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no outbox entry 999999"));
    let r = app
        .http
        .get(app.url("/api/v1/outbox?state=lost"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    one_c.shutdown().await.unwrap();
    app.stop().await;
}

fn obmen_cli(db: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("OBMEN_DATABASE_URL", db)
        .env_remove("OBMEN_PUSH_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "obmen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ----- the acceptance test: 1,000 orders, a failing 1C, kill -9 mid-way -----

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_binary(dir: &Path, port: u16, push_url: &str) -> Server {
    let child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir)
        .env("OBMEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("OBMEN_DATABASE_URL", dir.join("obmen.db"))
        .env("OBMEN_API_TOKEN", TOKEN)
        .env("OBMEN_EXCHANGE_USER", USER)
        .env("OBMEN_EXCHANGE_PASSWORD", PASSWORD)
        .env("OBMEN_PUSH_URL", push_url)
        .env("OBMEN_PUSH_FORMAT", "commerceml")
        .env("OBMEN_PUSH__TIMEOUT_MS", "5000")
        .env("OBMEN_PUSH__CONCURRENCY", "8")
        .env("OBMEN_PUSH__RETRY__BASE_DELAY_MS", "20")
        .env("OBMEN_PUSH__RETRY__MAX_DELAY_MS", "200")
        .env("OBMEN_PUSH__RETRY__MAX_ATTEMPTS", "30")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_orders_with_a_failing_1c_and_kill_9_arrive_exactly_once() {
    const ORDERS: usize = 1000;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let one_c = stand_in(dir.path(), "standin.db", 10, false).await;
    let push_url = format!("http://{}/hs/obmen/orders", one_c.addr());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let server = Arc::new(std::sync::Mutex::new(Some(start_binary(
        dir.path(),
        port,
        &push_url,
    ))));
    wait_healthy(&http, &base).await;

    // Eight clients post the orders; each retries its POST until the server answers (the
    // store API is idempotent: the same body again is a no-op).
    let acked = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, base, acked, next) = (
            http.clone(),
            base.clone(),
            Arc::clone(&acked),
            Arc::clone(&next),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= ORDERS {
                    return;
                }
                let body = order_json(&format!("K-{i:04}"), "N");
                loop {
                    let r = http
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) => panic!("POST answered {}", r.status()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // kill -9 mid-way, while orders are being posted and pushed; then restart.
    while acked.load(Ordering::SeqCst) < ORDERS / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    {
        let mut guard = server.lock().unwrap();
        let mut s = guard.take().unwrap();
        s.child.kill().unwrap(); // SIGKILL
        s.child.wait().unwrap();
        drop(s);
        *guard = Some(start_binary(dir.path(), port, &push_url));
    }
    wait_healthy(&http, &base).await;
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(acked.load(Ordering::SeqCst), ORDERS);

    // A liveness deadline, generous for a loaded machine (speed is the push bench's business).
    let orders = wait_received(&http, one_c.addr(), ORDERS, Duration::from_secs(120)).await;
    let (_, raw) = received(&http, one_c.addr()).await;
    assert_eq!(orders.len(), ORDERS, "{raw}");
    let twice: Vec<_> = orders.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    assert!(
        raw["failed"].as_u64().unwrap() >= 100,
        "the stand-in failed 10%: {raw}"
    );

    // Every acknowledgement is recorded (entries leased by the killed process come back when
    // their lease ends; 1C sees their repeat as a replay of the same Idempotency-Key).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r: serde_json::Value = http
            .get(format!("{base}/api/v1/outbox?state=delivered&limit=10000"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["entries"].as_array().unwrap().len() == ORDERS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all pushes recorded as delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (orders, _) = received(&http, one_c.addr()).await;
    assert!(orders.values().all(|&n| n == 1));

    // A scheduled exchange afterwards offers none of them.
    let onec_app = common::OneC {
        http: http.clone(),
        base: format!("{base}/bitrix/admin/1c_exchange.php"),
        cookie: None,
        sessid: None,
        send_sessid: true,
    };
    let mut onec = onec_app;
    onec.start().await;
    let answer = onec.query().await;
    assert_eq!(answer.status, 200);
    assert!(
        offered(&answer).is_empty(),
        "query offered pushed orders again"
    );
    assert!(onec.success().await.text().starts_with("success"));
    drop(server);
    one_c.shutdown().await.unwrap();
    eprintln!("1,000 orders through kill -9 in {:?}", started.elapsed());
}
