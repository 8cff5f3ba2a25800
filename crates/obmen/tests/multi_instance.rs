//! Several obmen instances on one PostgreSQL database (issue 6): two real `obmen serve`
//! processes (the built binary, two loopback ports, the same database, user, password and API
//! token), 1,000 orders created through the store API alternating between them, and 1C
//! sessions whose requests alternate between them too (the emulator's `alternate` URLs), so
//! sessions, upload chunks and import progress must live in the database.
//!
//! * without push: the emulator's 1C database gets exactly 1,000 documents and every status it
//!   sends back is applied once, even when the file is uploaded again;
//! * with push (both instances run outbox workers): every order reaches the 1C HTTP-service
//!   stand-in exactly once and the scheduled exchange afterwards offers none of them.
//!
//! PostgreSQL only: runs when `OBMEN_TEST_POSTGRES_URL` is set (each scenario on a fresh
//! database of its own); without it each test prints a notice and returns.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pg::{self, TestDatabase};
use common::{order_json, PASSWORD, TOKEN, USER};
use onec_emulator::service::{self, ServiceOptions};
use onec_emulator::{run_session, ClientOptions, Database, Summary};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_obmen");
const ORDERS: usize = 1000;
/// Generous: the machine may be busy with other test binaries and builds.
const DEADLINE: Duration = Duration::from_secs(180);
const EXCHANGE_PATH: &str = "/bitrix/admin/1c_exchange.php";

/// One `obmen serve` process; killed when dropped.
struct Instance {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    /// Starts `obmen serve` on a free loopback port, on `database_url`, pushing to `push_url`
    /// when given, and waits until it answers `/healthz`. Tries another port when the one
    /// picked was taken in between.
    async fn start(
        http: &reqwest::Client,
        dir: &Path,
        name: &str,
        database_url: &str,
        push_url: Option<&str>,
    ) -> Self {
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let log = dir.join(format!("{name}-{attempt}.log"));
            let mut cmd = Command::new(BIN);
            cmd.arg("serve")
                .current_dir(dir)
                .env("OBMEN_LISTEN", format!("127.0.0.1:{port}"))
                .env("OBMEN_DATABASE_URL", database_url)
                .env("OBMEN_API_TOKEN", TOKEN)
                .env("OBMEN_EXCHANGE_USER", USER)
                .env("OBMEN_EXCHANGE_PASSWORD", PASSWORD)
                // Uploads arrive in several chunks and are imported in several slices, so
                // both reach both instances.
                .env("OBMEN_EXCHANGE__FILE_LIMIT", "16384")
                .env("OBMEN_PACING__IMPORT_SLICE_ITEMS", "100")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap());
            match push_url {
                Some(url) => cmd
                    .env("OBMEN_PUSH_URL", url)
                    .env("OBMEN_PUSH_FORMAT", "commerceml")
                    // The lease is the timeout plus a margin: long, so a slow machine cannot
                    // make a lease expire while its push is still in flight.
                    .env("OBMEN_PUSH__TIMEOUT_MS", "30000")
                    .env("OBMEN_PUSH__CONCURRENCY", "8"),
                None => cmd.env_remove("OBMEN_PUSH_URL"),
            };
            let mut instance = Self {
                child: cmd.spawn().unwrap(),
                base: format!("http://127.0.0.1:{port}"),
                log,
            };
            if instance.wait_healthy(http).await {
                return instance;
            }
            last_log = instance.logs();
        }
        panic!("instance {name} did not start: {last_log}");
    }

    /// Whether the process answers `/healthz` (false when it exited first).
    async fn wait_healthy(&mut self, http: &reqwest::Client) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await {
                if r.status() == 200 {
                    return true;
                }
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "no answer: {}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exchange_url(&self) -> String {
        format!("{}{EXCHANGE_PATH}", self.base)
    }

    async fn get_json(&self, http: &reqwest::Client, path: &str) -> Value {
        let r = http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}: {}", self.logs());
        r.json().await.unwrap()
    }

    /// Every order, by id.
    async fn orders(&self, http: &reqwest::Client) -> Vec<Value> {
        let v = self.get_json(http, "/api/v1/orders?limit=10000").await;
        v["orders"].as_array().unwrap().clone()
    }

    /// Exchange requests this process answered, by mode (from its own `/metrics`).
    async fn exchange_requests(&self, http: &reqwest::Client) -> BTreeMap<String, u64> {
        let text = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = "obmen_exchange_request_duration_seconds_count{mode=\"";
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|l| l.split_once("\"} "))
            .map(|(mode, n)| (mode.to_owned(), n.trim().parse().unwrap()))
            .collect()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A fresh database on the test server, or `None` (with a notice) without one.
async fn fresh_database(test: &str) -> Option<TestDatabase> {
    let admin = pg::admin_url(test)?;
    Some(TestDatabase::create(&admin).await)
}

/// Creates orders `{prefix}-0000…` through the store API, order `i` on instance `i % 2`,
/// eight requests in flight at a time.
async fn create_orders(http: &reqwest::Client, instances: [&Instance; 2], prefix: &str) {
    let bases = Arc::new([instances[0].base.clone(), instances[1].base.clone()]);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, bases, next, prefix) = (
            http.clone(),
            Arc::clone(&bases),
            Arc::clone(&next),
            prefix.to_owned(),
        );
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ORDERS {
                    return;
                }
                let number = format!("{prefix}-{i:04}");
                let r = http
                    .post(format!("{}/api/v1/orders", bases[i % 2]))
                    .bearer_auth(TOKEN)
                    .json(&order_json(&number, "N"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    201,
                    "POST {number}: {}",
                    r.text().await.unwrap()
                );
            }
        });
    }
    while let Some(joined) = clients.join_next().await {
        joined.unwrap();
    }
}

/// One emulator session whose requests alternate between the two instances.
async fn alternating_session(
    instances: [&Instance; 2],
    db: &Database,
    edit: impl FnOnce(&mut ClientOptions),
) -> Summary {
    let mut options = ClientOptions::new(instances[0].exchange_url(), USER, PASSWORD);
    options.alternate = vec![instances[1].exchange_url()];
    edit(&mut options);
    match run_session(options, db.clone()).await {
        Ok(s) => s,
        Err(e) => panic!(
            "session failed: {e}\nA: {}\nB: {}",
            instances[0].logs(),
            instances[1].logs()
        ),
    }
}

fn history_1c(order: &Value) -> Vec<&str> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["source"] == "1c")
        .map(|h| h["status"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_alternating_1c_session_thousand_orders() {
    let started = Instant::now();
    let Some(database) =
        fresh_database("multi_instance two_instances_one_alternating_1c_session_thousand_orders")
            .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let a = Instance::start(&http, dir.path(), "a", database.url(), None).await;
    let b = Instance::start(&http, dir.path(), "b", database.url(), None).await;
    create_orders(&http, [&a, &b], "M").await;
    assert_eq!(b.orders(&http).await.len(), ORDERS);
    eprintln!("{ORDERS} orders created after {:?}", started.elapsed());

    // One 1C run: every request goes to the other instance than the one before; its upload is
    // sent once more in a new exchange run (1C repeating a file), also alternating.
    let onec = Database::open(&dir.path().join("1c.db").display().to_string())
        .await
        .unwrap();
    let s = alternating_session([&a, &b], &onec, |o| o.faults.replay_file = true).await;
    eprintln!("first session done after {:?}", started.elapsed());
    assert_eq!(
        (s.received, s.created, s.updated, s.duplicates, s.sent),
        (ORDERS as u64, ORDERS as u64, 0, 0, ORDERS as u64)
    );
    assert!(
        !s.messages.iter().any(|m| m.contains("Unknown status")),
        "{:?}",
        s.messages
    );
    assert_eq!(onec.order_count().await.unwrap(), ORDERS as i64);
    let docs: BTreeMap<String, bool> = onec
        .orders()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.number, d.state.paid))
        .collect();
    assert_eq!(docs.len(), ORDERS, "one document per order");

    // Both instances served the session: upload chunks and import slices reached each of them
    // (strict alternation sends checkauth and query to A, init and success to B).
    for (name, instance) in [("A", &a), ("B", &b)] {
        let served = instance.exchange_requests(&http).await;
        for mode in ["file", "import"] {
            assert!(
                served.get(mode).copied().unwrap_or(0) > 0,
                "{name} served no {mode}: {served:?}"
            );
        }
    }

    // Every status 1C sent back is applied once, though the file was imported twice.
    let after = a.orders(&http).await;
    assert_eq!(after.len(), ORDERS);
    for o in &after {
        let number = o["number"].as_str().unwrap();
        assert_eq!(o["status"], "P", "{number}");
        assert_eq!(history_1c(o), ["P"], "{number}: one 1C entry per change");
        assert_eq!(o["paid"], docs[number], "{number}: 1C's payment");
        assert!(o["number_1c"].as_str().is_some(), "{number}");
    }

    // The next session gets nothing and sends nothing; no order changes.
    let s = alternating_session([&b, &a], &onec, |_| {}).await;
    assert_eq!((s.received, s.created, s.updated, s.sent), (0, 0, 0, 0));
    assert_eq!(
        b.orders(&http).await,
        after,
        "a second session changes nothing"
    );
    assert_eq!(onec.order_count().await.unwrap(), ORDERS as i64);
    drop((a, b));
    eprintln!("done after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pushing_instances_deliver_each_order_exactly_once() {
    let started = Instant::now();
    let Some(database) =
        fresh_database("multi_instance two_pushing_instances_deliver_each_order_exactly_once")
            .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stand_in = service::serve(
        listener,
        ServiceOptions {
            state: dir.path().join("standin.db").display().to_string(),
            ..ServiceOptions::default()
        },
    )
    .await
    .unwrap();
    let push_url = format!("http://{}/hs/obmen/orders", stand_in.addr());
    let a = Instance::start(&http, dir.path(), "a", database.url(), Some(&push_url)).await;
    let b = Instance::start(&http, dir.path(), "b", database.url(), Some(&push_url)).await;
    create_orders(&http, [&a, &b], "Q").await;
    eprintln!("{ORDERS} orders created after {:?}", started.elapsed());

    // Every order reaches the stand-in, and both instances record every acknowledgement.
    let deadline = Instant::now() + DEADLINE;
    let received = loop {
        let v: Value = http
            .get(format!("http://{}/received", stand_in.addr()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let delivered = a
            .get_json(&http, "/api/v1/outbox?state=delivered&limit=10000")
            .await;
        let delivered = delivered["entries"].as_array().unwrap().len();
        let arrived = v["orders"].as_object().unwrap().len();
        if arrived >= ORDERS && delivered >= ORDERS {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "{arrived} of {ORDERS} orders arrived, {delivered} recorded delivered\nA: {}\nB: {}",
            a.logs(),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("all pushed after {:?}", started.elapsed());
    let arrivals: BTreeMap<String, i64> =
        serde_json::from_value(received["orders"].clone()).unwrap();
    let expected: Vec<String> = (0..ORDERS).map(|i| format!("Q-{i:04}")).collect();
    assert_eq!(
        arrivals.keys().cloned().collect::<Vec<_>>(),
        expected,
        "every order arrived"
    );
    let twice: Vec<_> = arrivals.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "arrived more than once: {twice:?}");
    // Not pushed twice at all: no request repeated an idempotency key.
    assert_eq!(received["requests"], ORDERS, "{received}");
    assert_eq!(received["replays"], 0, "{received}");
    let outbox = b.get_json(&http, "/api/v1/outbox?limit=10000").await;
    let entries = outbox["entries"].as_array().unwrap();
    assert_eq!(entries.len(), ORDERS, "one outbox entry per order");
    assert!(
        entries.iter().all(|e| e["state"] == "delivered"),
        "every entry delivered"
    );

    // A scheduled exchange afterwards, alternating too, offers none of them.
    let onec = Database::open(&dir.path().join("1c.db").display().to_string())
        .await
        .unwrap();
    let s = alternating_session([&a, &b], &onec, |_| {}).await;
    assert_eq!((s.received, s.created, s.sent), (0, 0, 0));
    assert_eq!(onec.order_count().await.unwrap(), 0);
    drop((a, b));
    stand_in.shutdown().await.unwrap();
    eprintln!("done after {:?}", started.elapsed());
}
