//! The store API over real HTTP on loopback against a real SQLite file.

mod common;

use std::sync::Arc;

use common::{order_json, status_doc, status_file, TestApp, TOKEN};
use obmen::config::Secret;
use tokio::sync::Mutex;

#[tokio::test]
async fn post_creates_replays_and_updates() {
    let t = TestApp::spawn().await;
    let body = order_json("1001", "N");
    let r = t.post_order(&body).await;
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["number"], "1001");
    assert_eq!(created["status"], "N");
    assert_eq!(created["items"][1]["price"], "99.9");
    let id = created["id"].clone();

    let r = t.post_order(&body).await;
    assert_eq!(r.status(), 200);
    let same: serde_json::Value = r.json().await.unwrap();
    assert_eq!(same, created, "a replayed POST changes nothing");

    let mut changed = body.clone();
    changed["status"] = "P".into();
    let r = t.post_order(&changed).await;
    assert_eq!(r.status(), 200);
    let updated: serde_json::Value = r.json().await.unwrap();
    assert_eq!(updated["id"], id);
    assert_eq!(updated["status"], "P");
    assert_eq!(updated["history"].as_array().unwrap().len(), 2);
    assert_eq!(updated["history"][1]["source"], "store");

    let o = t.order("1001").await;
    for key in [
        "status_1c",
        "paid",
        "shipped",
        "cancelled",
        "number_1c",
        "history",
    ] {
        assert!(o.get(key).is_some(), "{key} missing in {o}");
    }
}

#[tokio::test]
async fn put_updates_existing_orders_only() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("P-1", "N")).await;
    let mut body = order_json("P-1", "N");
    body.as_object_mut().unwrap().remove("number");
    body["comment"] = "new comment".into();
    let put = |number: &str, body: &serde_json::Value| {
        t.http
            .put(t.url(&format!("/api/v1/orders/{number}")))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
    };
    let r = put("P-1", &body).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(t.order("P-1").await["comment"], "new comment");
    let r = put("P-404", &body).await.unwrap();
    assert_eq!(r.status(), 404);
    body["number"] = "OTHER".into();
    let r = put("P-1", &body).await.unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["field"], "number");
}

#[tokio::test]
async fn errors_are_problem_json_naming_the_field() {
    let t = TestApp::spawn().await;
    let mut body = order_json("X-1", "N");
    body["items"][1]["quantity"] = "abc".into();
    let r = t.post_order(&body).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["field"], "items[1].quantity");
    assert_eq!(p["status"], 400);

    let mut body = order_json("X-1", "ZZ");
    let r = t.post_order(&body).await;
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["field"], "status");

    body["status"] = "N".into();
    body["items"][0]["quantity"] = 0.into();
    let p: serde_json::Value = t.post_order(&body).await.json().await.unwrap();
    assert_eq!(p["field"], "items[0].quantity");

    let r = t
        .http
        .post(t.url("/api/v1/orders"))
        .json(&order_json("X-2", "N"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = t
        .http
        .get(t.url("/api/v1/orders/X-1"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = t
        .http
        .get(t.url("/api/v1/orders?changed_since=yesterday"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["field"], "changed_since");
}

#[tokio::test]
async fn list_filters_by_status_and_change_time() {
    let t = TestApp::spawn().await;
    t.post_order(&order_json("F-1", "N")).await;
    t.post_order(&order_json("F-2", "P")).await;
    t.post_order(&order_json("F-3", "P")).await;
    let list = |q: &'static str| {
        let t = &t;
        async move {
            let v: serde_json::Value = t
                .http
                .get(t.url(&format!("/api/v1/orders{q}")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["number"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await, ["F-1", "F-2", "F-3"]);
    assert_eq!(list("?status=P").await, ["F-2", "F-3"]);
    assert!(list("?changed_since=2999-01-01T00:00:00Z").await.is_empty());
    assert_eq!(
        list("?changed_since=2000-01-01T00:00:00Z&status=N").await,
        ["F-1"]
    );
}

#[tokio::test]
async fn openapi_health_and_metrics_are_served() {
    let t = TestApp::spawn().await;
    let doc: serde_json::Value = t
        .http
        .get(t.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/orders/{number}"]["get"].is_object());
    let r = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m = t.http.get(t.url("/metrics")).send().await.unwrap();
    assert!(m.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(m
        .text()
        .await
        .unwrap()
        .contains("# TYPE obmen_sessions_total counter"));
}

/// (signature header, body) of one webhook delivery.
type Delivery = (String, Vec<u8>);

#[tokio::test]
async fn webhook_reports_status_changes_from_1c_signed() {
    use axum::routing::post;
    let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let sink = Arc::clone(&received);
    let hook = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = Arc::clone(&sink);
                async move {
                    let sig = headers["x-obmen-signature"].to_str().unwrap().to_owned();
                    let mut v = sink.lock().await;
                    v.push((sig, body.to_vec()));
                    // The first delivery is refused: it must be retried.
                    if v.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let t = TestApp::spawn_with(|c| {
        c.webhook.url = Some(format!("http://{hook_addr}/hook"));
        c.webhook.secret = Some(Secret::new("hook-secret"));
    })
    .await;
    t.post_order(&order_json("H-1", "N")).await;
    let mut onec = t.onec();
    onec.start().await;
    let file = status_file(
        &[status_doc("H-1", &[("Статус заказа", "Выполнен")])],
        "UTF-8",
    );
    onec.file("orders.xml", &file).await;
    assert_eq!(onec.import("orders.xml").await.text(), "success\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if received.lock().await.len() >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "webhook not retried");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = received.lock().await;
    let (sig, body) = &got[1];
    assert_eq!(got[0].1, *body, "the retry sends the same event");
    assert_eq!(*sig, obmen::webhook::signature("hook-secret", body));
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["number"], "H-1");
    assert_eq!(event["status"], "FF");
    assert_eq!(event["status_1c"], "Выполнен");
    assert_eq!(event["source"], "1c");
}
