//! The webhook to the store over real HTTP on loopback: a receiver that refuses some requests,
//! a real SQLite file, the durable queue across a restart of the server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::{order_json, pg, status_doc, status_file, Backend, OneC, TestApp};
use obmen::config::{Config, Secret};
use obmen::webhook::signature;
use tokio::sync::Mutex;

const SECRET: &str = "hook-secret";

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Request {
    event_id: String,
    signature: String,
    body: Vec<u8>,
    acknowledged: bool,
}

/// A webhook receiver on loopback: refuses the first `fail_first` requests with 503, and
/// every request while it is down.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
    up: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        use axum::routing::post;
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let up = Arc::new(AtomicBool::new(true));
        let count = Arc::new(AtomicUsize::new(0));
        let (sink, gate) = (Arc::clone(&seen), Arc::clone(&up));
        let router = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (sink, gate, count) =
                    (Arc::clone(&sink), Arc::clone(&gate), Arc::clone(&count));
                async move {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let acknowledged = gate.load(Ordering::SeqCst) && n >= fail_first;
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    sink.lock().await.push(Request {
                        event_id: header("x-obmen-event"),
                        signature: header("x-obmen-signature"),
                        body: body.to_vec(),
                        acknowledged,
                    });
                    if acknowledged {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, seen, up }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    async fn requests(&self) -> Vec<Request> {
        self.seen.lock().await.clone()
    }

    /// Waits until `n` distinct events were acknowledged, then a little longer for repeats.
    async fn wait_acknowledged(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let acked = self
                .requests()
                .await
                .iter()
                .filter(|r| r.acknowledged)
                .map(|r| r.event_id.clone())
                .collect::<BTreeSet<_>>()
                .len();
            if acked >= n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {acked} of {n} events acknowledged: {:#?}",
                self.requests().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A repeat, if there were one, would come within a few retry delays.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.requests().await
    }
}

/// The webhook settings of the tests: fast retries.
fn with_webhook(receiver: &Receiver) -> impl FnOnce(&mut Config) {
    let url = receiver.url();
    move |c: &mut Config| {
        c.webhook.url = Some(url);
        c.webhook.secret = Some(Secret::new(SECRET));
        c.webhook.base_delay_ms = 20;
        c.webhook.max_delay_ms = 100;
        c.webhook.timeout_ms = 2000;
    }
}

/// Applies one 1C file with these `(number, 1C status)` changes through the exchange.
async fn import_statuses(t: &TestApp, changes: &[(&str, &str)]) {
    import_statuses_as(t.onec(), changes).await;
}

/// [`import_statuses`] through this 1C client.
async fn import_statuses_as(mut onec: OneC, changes: &[(&str, &str)]) {
    let docs: Vec<String> = changes
        .iter()
        .map(|(number, status)| status_doc(number, &[("Статус заказа", status)]))
        .collect();
    onec.start().await;
    onec.file("orders.xml", &status_file(&docs, "UTF-8")).await;
    assert_eq!(onec.import("orders.xml").await.text(), "success\n");
}

/// Checks that every acknowledged event was acknowledged once, with a valid signature, and
/// returns `(number, status)` of each, by event id.
fn acknowledged_once(requests: &[Request]) -> BTreeMap<i64, (String, String)> {
    let mut events = BTreeMap::new();
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for r in requests {
        assert_eq!(
            r.signature,
            signature(SECRET, &r.body),
            "signature of {r:?}"
        );
        // Every attempt of an event carries the same body.
        let first = bodies.entry(r.event_id.clone()).or_insert(r.body.clone());
        assert_eq!(*first, r.body, "attempts of event {} differ", r.event_id);
        if !r.acknowledged {
            continue;
        }
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"], "status_changed");
        assert_eq!(body["source"], "1c");
        let id: i64 = r.event_id.parse().expect("numeric event id");
        let entry = (
            body["number"].as_str().unwrap().to_owned(),
            body["status"].as_str().unwrap().to_owned(),
        );
        assert!(
            events.insert(id, entry).is_none(),
            "event {id} acknowledged twice"
        );
    }
    // Nothing is sent after its acknowledgement.
    for id in events.keys() {
        let last = requests
            .iter()
            .rposition(|r| r.event_id == id.to_string())
            .unwrap();
        assert!(requests[last].acknowledged, "event {id} sent after its ack");
    }
    events
}

fn pairs(events: &BTreeMap<i64, (String, String)>) -> Vec<(String, String)> {
    events.values().cloned().collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_change_is_delivered_once_signed_despite_failures() {
    delivered_once_despite_failures(&Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_change_is_delivered_once_signed_despite_failures_on_postgres() {
    let test = "every_status_change_is_delivered_once_signed_despite_failures_on_postgres";
    if let Some(backend) = Backend::postgres(test) {
        delivered_once_despite_failures(&backend).await;
    }
}

async fn delivered_once_despite_failures(backend: &Backend) {
    let receiver = Receiver::start(5).await;
    let t = TestApp::on_with(backend, with_webhook(&receiver)).await;
    for number in ["W-1", "W-2", "W-3"] {
        assert_eq!(t.post_order(&order_json(number, "N")).await.status(), 201);
    }
    import_statuses(
        &t,
        &[
            ("W-1", "В работе"),
            ("W-2", "Выполнен"),
            ("W-3", "Передан курьеру"),
        ],
    )
    .await;
    // The same file again changes nothing and reports nothing; a new status of W-1 does.
    import_statuses(
        &t,
        &[
            ("W-1", "В работе"),
            ("W-2", "Выполнен"),
            ("W-3", "Передан курьеру"),
        ],
    )
    .await;
    import_statuses(&t, &[("W-1", "Отменен клиентом")]).await;

    let requests = receiver.wait_acknowledged(4).await;
    assert!(
        requests.iter().filter(|r| !r.acknowledged).count() >= 5,
        "the first requests were refused and retried"
    );
    let events = acknowledged_once(&requests);
    assert_eq!(
        pairs(&events),
        owned(&[("W-1", "P"), ("W-2", "FF"), ("W-3", "F"), ("W-1", "C")])
    );
    let stored = t.app.store.webhook_events(0, 100).await.unwrap();
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(store::WebhookEvent::is_delivered));
    assert!(stored
        .iter()
        .any(|e| e.attempts > 1 && e.last_error.is_none()));
    assert_eq!(t.app.store.webhook_next_due().await.unwrap(), None);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_while_the_receiver_is_down_survive_a_restart() {
    let receiver = Receiver::start(0).await;
    receiver.set_up(false);
    let t = TestApp::spawn_with(with_webhook(&receiver)).await;
    for number in ["D-1", "D-2"] {
        t.post_order(&order_json(number, "N")).await;
    }
    import_statuses(&t, &[("D-1", "Выполнен"), ("D-2", "Отменен клиентом")]).await;
    // Both are tried and refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver
        .requests()
        .await
        .iter()
        .map(|r| r.event_id.clone())
        .collect::<BTreeSet<_>>()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "events not attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = t.stop().await;
    let tried = receiver.requests().await.len();

    // Stopped: the events wait in the database file.
    let store = store::open(dir.path().join("obmen.db").to_str().unwrap())
        .await
        .unwrap();
    let pending = store.webhook_events(0, 100).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|e| !e.is_delivered() && e.attempts >= 1));
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.requests().await.len(),
        tried,
        "a stopped server sends nothing"
    );

    // The receiver is back, the server starts again on the same file: each event arrives once.
    receiver.set_up(true);
    let t = TestApp::spawn_in(dir, with_webhook(&receiver)).await;
    let requests = receiver.wait_acknowledged(2).await;
    let events = acknowledged_once(&requests);
    assert_eq!(pairs(&events), owned(&[("D-1", "FF"), ("D-2", "C")]));
    let stored = t.app.store.webhook_events(0, 100).await.unwrap();
    assert!(stored.iter().all(store::WebhookEvent::is_delivered));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_post_in_flight_and_keeps_the_event() {
    use axum::routing::post;
    // A receiver that never answers.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<()>();
    let router = axum::Router::new().route(
        "/hook",
        post(move || {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(());
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let t = TestApp::spawn_with(|c| {
        c.webhook.url = Some(format!("http://{addr}/hook"));
        c.webhook.timeout_ms = 500;
    })
    .await;
    t.post_order(&order_json("S-1", "N")).await;
    import_statuses(&t, &[("S-1", "Выполнен")]).await;
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the event is posted");
    let started = Instant::now();
    let dir = t.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        started.elapsed()
    );
    // The attempt timed out and was recorded; the event waits for the next start.
    let store = store::open(dir.path().join("obmen.db").to_str().unwrap())
        .await
        .unwrap();
    let events = store.webhook_events(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(!events[0].is_delivered());
    assert_eq!(events[0].attempts, 1);
    assert_eq!(events[0].leased_until, None, "{events:?}");
    assert!(events[0].last_error.is_some());
}

/// `obmen serve` (the built binary) on a free port over the SQLite file in `dir`.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Process {
    async fn start(dir: &std::path::Path, receiver: &Receiver) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_obmen"))
            .arg("serve")
            .current_dir(dir)
            .env("OBMEN_LISTEN", format!("127.0.0.1:{port}"))
            .env("OBMEN_DATABASE_URL", dir.join("obmen.db"))
            .env("OBMEN_API_TOKEN", common::TOKEN)
            .env("OBMEN_EXCHANGE_USER", common::USER)
            .env("OBMEN_EXCHANGE_PASSWORD", common::PASSWORD)
            .env("OBMEN_WEBHOOK__URL", receiver.url())
            .env("OBMEN_WEBHOOK__SECRET", SECRET)
            .env("OBMEN_WEBHOOK__BASE_DELAY_MS", "20")
            .env("OBMEN_WEBHOOK__MAX_DELAY_MS", "100")
            // A lease left by the killed process ends soon.
            .env("OBMEN_WEBHOOK__TIMEOUT_MS", "1000")
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "obmen serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, base }
    }

    fn onec(&self) -> OneC {
        OneC {
            http: reqwest::Client::new(),
            base: format!("{}/bitrix/admin/1c_exchange.php", self.base),
            cookie: None,
            sessid: None,
            send_sessid: true,
        }
    }

    /// `kill -9`.
    fn kill(self) {
        drop(self);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL on Unix: no graceful shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_kill_9_of_obmen_serve() {
    let receiver = Receiver::start(0).await;
    receiver.set_up(false);
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path(), &receiver).await;
    let http = reqwest::Client::new();
    for number in ["K-1", "K-2", "K-3"] {
        let r = http
            .post(format!("{}/api/v1/orders", server.base))
            .bearer_auth(common::TOKEN)
            .json(&order_json(number, "N"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    import_statuses_as(
        server.onec(),
        &[
            ("K-1", "Выполнен"),
            ("K-2", "В работе"),
            ("K-3", "Отменен клиентом"),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests().await.len() < 3 {
        assert!(Instant::now() < deadline, "events not attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();

    receiver.set_up(true);
    let server = Process::start(dir.path(), &receiver).await;
    let requests = receiver.wait_acknowledged(3).await;
    let events = acknowledged_once(&requests);
    assert_eq!(
        pairs(&events),
        owned(&[("K-1", "FF"), ("K-2", "P"), ("K-3", "C")])
    );
    server.kill();
}

// ----- PostgreSQL: two instances on one database -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_database_deliver_each_event_once() {
    let test = "two_instances_on_one_postgres_database_deliver_each_event_once";
    let Some(admin_url) = pg::admin_url(test) else {
        return;
    };
    let database = pg::TestDatabase::create(&admin_url).await;
    let receiver = Receiver::start(10).await;
    let config = |receiver: &Receiver, url: String| {
        let webhook = with_webhook(receiver);
        move |c: &mut Config| {
            webhook(c);
            c.database_url = url;
        }
    };
    let a = TestApp::spawn_with(config(&receiver, database.url().to_owned())).await;
    let b = TestApp::spawn_with(config(&receiver, database.url().to_owned())).await;
    let numbers: Vec<String> = (0..20).map(|i| format!("PG-{i:02}")).collect();
    for number in &numbers {
        assert_eq!(a.post_order(&order_json(number, "N")).await.status(), 201);
    }
    // Half the statuses arrive at one instance, half at the other.
    let changes: Vec<(&str, &str)> = numbers.iter().map(|n| (n.as_str(), "Выполнен")).collect();
    import_statuses(&a, &changes[..10]).await;
    import_statuses(&b, &changes[10..]).await;

    let requests = receiver.wait_acknowledged(20).await;
    let events = acknowledged_once(&requests);
    let mut got = pairs(&events);
    got.sort();
    let expected: Vec<(String, String)> = numbers
        .iter()
        .map(|n| (n.clone(), "FF".to_owned()))
        .collect();
    assert_eq!(got, expected);
    let stored = b.app.store.webhook_events(0, 100).await.unwrap();
    assert_eq!(stored.len(), 20);
    assert!(stored.iter().all(store::WebhookEvent::is_delivered));
    a.stop().await;
    b.stop().await;
}
