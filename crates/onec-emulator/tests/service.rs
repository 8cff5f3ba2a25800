//! The 1C HTTP-service stand-in over real HTTP on loopback.

use std::time::{Duration, Instant};

use onec_emulator::service::{serve, ServiceHandle, ServiceOptions};
use serde_json::{json, Value};

const FULL_QUERY: &[u8] = include_bytes!("data/bitrix-query-response-full.xml");

async fn start(options: ServiceOptions) -> (ServiceHandle, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(listener, options).await.unwrap();
    let base = format!("http://{}", handle.addr());
    (handle, base)
}

async fn push_json(base: &str, number: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .json(&json!({ "number": number, "sum": "10.50" }));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

async fn received(base: &str) -> Value {
    reqwest::get(format!("{base}/received"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn fail_every_n_gives_503_on_the_nth_request() {
    let (handle, base) = start(ServiceOptions {
        fail_every: 3,
        ..ServiceOptions::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 1..=6 {
        statuses.push(
            push_json(&base, &i.to_string(), None)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503]);
    let r = received(&base).await;
    assert_eq!(r["orders"], json!({"1": 1, "2": 1, "4": 1, "5": 1}));
    assert_eq!(r["requests"], 6);
    assert_eq!(r["failed"], 2);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn duplicates_by_number_and_by_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("service.db");
    let (handle, base) = start(ServiceOptions {
        state: state.to_string_lossy().into_owned(),
        ..ServiceOptions::default()
    })
    .await;
    // Same number twice without a key: it arrived twice.
    assert_eq!(push_json(&base, "A-1", None).await.status(), 200);
    let second: Value = push_json(&base, "A-1", None).await.json().await.unwrap();
    assert_eq!(second["arrivals"]["A-1"], 2);
    // Same key twice: counted once.
    assert_eq!(push_json(&base, "B-2", Some("k-1")).await.status(), 200);
    let replay: Value = push_json(&base, "B-2", Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["status"], "duplicate");
    // A new key for the same order is a new arrival.
    assert_eq!(push_json(&base, "B-2", Some("k-2")).await.status(), 200);
    let r = received(&base).await;
    assert_eq!(r["orders"], json!({"A-1": 2, "B-2": 2}));
    assert_eq!(r["replays"], 1);
    handle.shutdown().await.unwrap();

    // The state survives a restart on the same file.
    let (handle, base) = start(ServiceOptions {
        state: state.to_string_lossy().into_owned(),
        ..ServiceOptions::default()
    })
    .await;
    let replay: Value = push_json(&base, "B-2", Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["status"], "duplicate");
    assert_eq!(received(&base).await["orders"], json!({"A-1": 2, "B-2": 2}));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn commerceml_pushes_are_read() {
    let (handle, base) = start(ServiceOptions::default()).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/hs/orders"))
        .header("Content-Type", "application/xml; charset=windows-1251")
        .body(FULL_QUERY.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["numbers"], json!(["132", "133"]));
    assert_eq!(received(&base).await["orders"], json!({"132": 1, "133": 1}));
    // A charset that contradicts the bytes is refused.
    let bad = reqwest::Client::new()
        .post(format!("{base}/hs/orders"))
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(FULL_QUERY.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn reject_and_bad_input_give_400() {
    let (handle, base) = start(ServiceOptions {
        reject: true,
        ..ServiceOptions::default()
    })
    .await;
    assert_eq!(push_json(&base, "1", None).await.status(), 400);
    let r = received(&base).await;
    assert_eq!(r["rejected"], 1);
    assert_eq!(r["orders"], json!({}));
    handle.shutdown().await.unwrap();

    let (handle, base) = start(ServiceOptions::default()).await;
    let client = reqwest::Client::new();
    for body in ["{\"no_number\": 1}", "{broken", "<a><b></a>", "plain text"] {
        let resp = client
            .post(format!("{base}/orders"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    let get = client.get(format!("{base}/orders")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn delay_slows_every_answer() {
    let (handle, base) = start(ServiceOptions {
        delay: Duration::from_millis(300),
        ..ServiceOptions::default()
    })
    .await;
    let t0 = Instant::now();
    assert_eq!(push_json(&base, "1", None).await.status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    handle.shutdown().await.unwrap();
}

/// A client that gives up mid-request (its timeout) must not break the stand-in for later
/// requests: what a dropped request started is finished in a task of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_giving_up_mid_request_leave_it_working() {
    let (handle, base) = start(ServiceOptions::default()).await;
    let mut impatient = Vec::new();
    for i in 0..300u64 {
        let base = base.clone();
        impatient.push(tokio::spawn(async move {
            // Timeouts from 0.1 to 3 ms end requests at every stage of their handling.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_micros(100 + (i * 97) % 2900))
                .build()
                .unwrap();
            let _ = client
                .post(format!("{base}/orders"))
                .header("Idempotency-Key", format!("gone-{i}"))
                .json(&json!({ "number": format!("G-{i}"), "sum": "1.00" }))
                .send()
                .await;
        }));
    }
    for task in impatient {
        task.await.unwrap();
    }
    for i in 0..10 {
        let r = push_json(&base, &format!("after-{i}"), Some(&format!("after-{i}"))).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let r = received(&base).await;
    let orders = r["orders"].as_object().unwrap();
    assert!((0..10).all(|i| orders[&format!("after-{i}")] == 1), "{r}");
    assert!(orders.values().all(|n| n == 1), "{r}");
    handle.shutdown().await.unwrap();
}
