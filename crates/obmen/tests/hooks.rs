//! Export and import hooks wired into `obmen serve` (real server on loopback, real SQLite file,
//! real HTTP): mapped properties and hook-added requisites in every schema version, a looping
//! hook stopped and reported without losing the order, import hooks that rewrite or refuse a
//! document, a hook that does not compile stopping start-up, and the worked examples of
//! docs/hooks.md run as written.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commerceml::{tags, Document, Item};
use common::{offered, order_json, status_doc, status_file, Answer, TestApp};
use obmen::config::Config;
use serde_json::Value;

/// Writes a hook script into the test's directory.
fn script(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

/// A server whose hooks are the given scripts (written next to its database).
async fn app_with_hooks(
    dir: tempfile::TempDir,
    export: Option<&str>,
    import: Option<&str>,
    edit: impl FnOnce(&mut Config),
) -> TestApp {
    let export = export.map(|s| script(dir.path(), "export.rhai", s));
    let import = import.map(|s| script(dir.path(), "import.rhai", s));
    TestApp::spawn_in(dir, move |c| {
        c.hooks.export = export;
        c.hooks.import = import;
        edit(c);
    })
    .await
}

/// Every order document of a query answer (2.x documents and 3.x containers alike).
fn documents(answer: &Answer) -> Vec<Document> {
    let mut reader = commerceml::Reader::new(&answer.bytes[..]).unwrap();
    let mut out = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        match item {
            Item::Document(d) => out.push(*d),
            Item::Container(c) => out.extend(c.documents),
            _ => {}
        }
    }
    out
}

fn numbers(answer: &Answer) -> Vec<String> {
    offered(answer).into_iter().map(|(_, n)| n).collect()
}

/// The journal entries of the newest session's requests in `mode`.
async fn journal(t: &TestApp, mode: &str) -> Vec<Value> {
    let s = t.sessions().await;
    s["sessions"][0]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mode"] == mode)
        .cloned()
        .collect()
}

fn order_with_properties(number: &str, properties: Value) -> Value {
    let mut o = order_json(number, "N");
    o["properties"] = properties;
    o
}

#[tokio::test]
async fn mapped_property_and_hook_requisite_in_2_05_2_08_and_3_1() {
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(
        dir,
        Some(r#"doc.set_requisite("Канал продаж", order.properties.utm_source ?? "direct");"#),
        None,
        |c| {
            c.exchange
                .properties
                .insert("utm_source".to_owned(), "UTM источник".to_owned());
        },
    )
    .await;
    let r = t
        .post_order(&order_with_properties(
            "P-1",
            serde_json::json!({"utm_source": "yandex"}),
        ))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(t.post_order(&order_json("P-2", "N")).await.status(), 201);
    for version in [None, Some("2.08"), Some("3.1")] {
        let mut onec = t.onec();
        onec.checkauth().await;
        onec.init(version).await;
        let answer = onec.query().await;
        let text = answer.text();
        let schema = version.unwrap_or("2.05");
        assert!(
            text.contains(&format!("{}=\"{schema}\"", tags::ATTR_SCHEMA_VERSION)),
            "{schema}: {text}"
        );
        let docs = documents(&answer);
        assert_eq!(docs.len(), 2, "{schema}: {text}");
        let p1 = docs.iter().find(|d| d.number.as_deref() == Some("P-1"));
        let p1 = p1.unwrap();
        assert_eq!(p1.requisite("UTM источник"), Some("yandex"), "{schema}");
        assert_eq!(p1.requisite("Канал продаж"), Some("yandex"), "{schema}");
        assert_eq!(p1.sum_matches(), Some(true), "{schema}");
        let p2 = docs.iter().find(|d| d.number.as_deref() == Some("P-2"));
        let p2 = p2.unwrap();
        assert_eq!(p2.requisite("UTM источник"), None, "{schema}");
        assert_eq!(p2.requisite("Канал продаж"), Some("direct"), "{schema}");
        assert!(journal(&t, "query").await[0]["messages"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    t.stop().await;
}

const LOOP_FOR_L2: &str = r#"doc.set_requisite("Проверено", "да");
if order.number == "L-2" { loop { } }
"#;

#[tokio::test]
async fn a_looping_export_hook_is_stopped_and_its_order_stays_due() {
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(dir, Some(LOOP_FOR_L2), None, |c| {
        c.hooks.max_operations = 0;
        c.hooks.timeout_ms = 200;
    })
    .await;
    for n in ["L-1", "L-2", "L-3"] {
        assert_eq!(t.post_order(&order_json(n, "N")).await.status(), 201);
    }
    let mut onec = t.onec();
    onec.start().await;
    let started = Instant::now();
    let answer = onec.query().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the query took {:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, 200);
    assert_eq!(numbers(&answer), ["L-1", "L-3"], "{}", answer.text());
    for d in documents(&answer) {
        assert_eq!(d.requisite("Проверено"), Some("да"));
    }
    let query = journal(&t, "query").await;
    assert_eq!(query[0]["documents"], 2);
    let messages = query[0]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = messages[0].as_str().unwrap();
    assert_eq!(
        m,
        "hook export.rhai line 2: stopped: time limit exceeded \
         (order L-2 not exported; it stays due)"
    );
    // Repeating `query` gives the same answer; `success` confirms only what was sent.
    assert_eq!(numbers(&onec.query().await), ["L-1", "L-3"]);
    assert!(onec.success().await.text().starts_with("success"));

    // With the hook fixed (a restart reads it again) nothing is lost: L-2 is still due.
    let dir = t.stop().await;
    let t = app_with_hooks(
        dir,
        Some(r#"doc.set_requisite("Проверено", "да");"#),
        None,
        |_| {},
    )
    .await;
    let mut onec = t.onec();
    onec.start().await;
    let answer = onec.query().await;
    assert_eq!(numbers(&answer), ["L-2"], "{}", answer.text());
    assert_eq!(documents(&answer)[0].requisite("Проверено"), Some("да"));
    assert!(onec.success().await.text().starts_with("success"));
    assert!(numbers(&onec.query().await).is_empty());
    t.stop().await;
}

#[tokio::test]
async fn the_operation_limit_stops_a_loop_too() {
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(dir, Some(LOOP_FOR_L2), None, |c| {
        c.hooks.max_operations = 10_000;
        c.hooks.timeout_ms = 60_000;
    })
    .await;
    for n in ["L-1", "L-2"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let mut onec = t.onec();
    onec.start().await;
    assert_eq!(numbers(&onec.query().await), ["L-1"]);
    let query = journal(&t, "query").await;
    let m = query[0]["messages"][0].as_str().unwrap().to_owned();
    assert!(
        m.starts_with("hook export.rhai line 2: stopped after 10000 operations"),
        "{m}"
    );
    t.stop().await;
}

const IMPORT_HOOK: &str = r#"if doc.number == "M-2" { throw "refused by the project"; }
if doc.requisite("Статус заказа") == "Отправлен" {
    doc.set_requisite("Статус заказа", "Передан курьеру");
}
"#;

#[tokio::test]
async fn import_hook_rewrites_a_status_and_a_throwing_hook_skips_only_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(dir, None, Some(IMPORT_HOOK), |_| {}).await;
    for n in ["M-1", "M-2", "M-3"] {
        t.post_order(&order_json(n, "N")).await;
    }
    let file = status_file(
        &[
            status_doc("M-1", &[(tags::REQ_STATUS, "Отправлен")]),
            status_doc("M-2", &[(tags::REQ_STATUS, "Отправлен")]),
            status_doc(
                "M-3",
                &[(tags::REQ_STATUS, "В работе"), ("Оплачен", "true")],
            ),
        ],
        "windows-1251",
    );
    let mut onec = t.onec();
    onec.start().await;
    assert_eq!(onec.file("documents.xml", &file).await.text(), "success\n");
    let reply = onec.import("documents.xml").await.lines();
    assert_eq!(reply[0], "success");
    assert_eq!(
        reply[1],
        "hook import.rhai line 1: Runtime error: refused by the project \
         (document M-2 not applied)"
    );
    assert_eq!(reply.len(), 3, "{reply:?}");
    assert_eq!(reply[2], "");

    assert_eq!(
        t.order("M-1").await["status"],
        "F",
        "the hook renamed the status"
    );
    let m2 = t.order("M-2").await;
    assert_eq!(m2["status"], "N", "the refused document is not applied");
    let m3 = t.order("M-3").await;
    assert_eq!(m3["status"], "P");
    assert_eq!(m3["paid"], true);
    let import = journal(&t, "import").await;
    assert_eq!(import[0]["documents"], 2);
    assert_eq!(import[0]["messages"], serde_json::json!([reply[1].clone()]));
    t.stop().await;
}

#[tokio::test]
async fn import_hook_applies_to_legacy_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(dir, None, Some(IMPORT_HOOK), |_| {}).await;
    t.post_order(&order_json("M-1", "N")).await;
    let file = status_file(
        &[status_doc("M-1", &[(tags::REQ_STATUS, "Отправлен")])],
        "UTF-8",
    );
    let mut onec = t.onec();
    onec.checkauth().await;
    onec.init(None).await;
    assert_eq!(onec.file("orders.xml", &file).await.text(), "success\n");
    assert_eq!(t.order("M-1").await["status"], "F");
    t.stop().await;
}

#[tokio::test]
async fn a_hook_that_does_not_compile_stops_start_up_and_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "broken.rhai", "let a = 1;\nlet b = ;\n");
    let config = Config {
        database_url: dir.path().join("obmen.db").display().to_string(),
        hooks: obmen::hooks::HooksConfig {
            export: Some(path.clone()),
            ..Default::default()
        },
        ..Config::default()
    };
    let err = obmen::startup::prepare(config, std::sync::Arc::new(exchange::clock::SystemClock))
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("hook broken.rhai line 2:"), "{err}");

    // `obmen config check` with the script named relative to the config file.
    std::fs::write(
        dir.path().join("obmen.toml"),
        "[hooks]\nimport = \"broken.rhai\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_obmen"))
        .args(["config", "check", "--config"])
        .arg(dir.path().join("obmen.toml"))
        .current_dir(std::env::temp_dir())
        .env_remove("OBMEN_HOOKS_EXPORT")
        .env_remove("OBMEN_HOOKS_IMPORT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hook broken.rhai line 2:"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    std::fs::write(dir.path().join("broken.rhai"), "let b = 2;\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_obmen"))
        .args(["config", "check", "--config"])
        .arg(dir.path().join("obmen.toml"))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The ```rhai blocks of docs/hooks.md, in order.
fn documented_examples() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hooks.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```rhai\n") {
        let body = &rest[start + "```rhai\n".len()..];
        let end = body.find("```").unwrap();
        out.push(body[..end].to_owned());
        rest = &body[end..][3..];
    }
    out
}

#[tokio::test]
async fn the_worked_examples_of_the_docs_work_as_written() {
    let examples = documented_examples();
    assert_eq!(examples.len(), 3, "docs/hooks.md has three worked examples");
    let export = format!("{}\n{}", examples[0], examples[1]);
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(dir, Some(&export), Some(&examples[2]), |_| {}).await;
    let r = t
        .post_order(&order_with_properties(
            "D-1",
            serde_json::json!({"utm_source": "vk", "promo_code": "SPRING", "gift_wrap": "yes"}),
        ))
        .await;
    assert_eq!(r.status(), 201);
    t.post_order(&order_json("D-2", "N")).await;
    let mut onec = t.onec();
    onec.start().await;
    let answer = onec.query().await;
    let docs = documents(&answer);
    assert_eq!(docs.len(), 2, "{}", answer.text());
    let d1 = &docs[0];
    assert_eq!(d1.number.as_deref(), Some("D-1"));
    // Example 1: the sales channel and the promo code.
    assert_eq!(d1.requisite("Канал продаж"), Some("vk"));
    assert_eq!(d1.requisite("Промокод"), Some("SPRING"));
    // Example 2: gift wrapping as a service line, and the total still adds up.
    let wrap = d1
        .lines
        .iter()
        .find(|l| l.id.as_deref() == Some("GIFT_WRAP"))
        .unwrap();
    assert!(wrap.is_service());
    assert_eq!(wrap.sum, Some("150.00".parse().unwrap()));
    assert_eq!(d1.sum_matches(), Some(true));
    let d2 = &docs[1];
    assert_eq!(d2.requisite("Канал продаж"), Some("direct"));
    assert_eq!(d2.requisite("Промокод"), None);
    assert!(d2
        .lines
        .iter()
        .all(|l| l.id.as_deref() != Some("GIFT_WRAP")));
    assert!(journal(&t, "query").await[0]["messages"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(onec.success().await.text().starts_with("success"));

    // Example 3: the import hook maps the base's own status name.
    let file = status_file(
        &[status_doc("D-1", &[(tags::REQ_STATUS, "Отправлен")])],
        "UTF-8",
    );
    onec.file("documents.xml", &file).await;
    assert_eq!(onec.import("documents.xml").await.text(), "success\n");
    assert_eq!(t.order("D-1").await["status"], "F");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_export_hook_fails_the_push_attempt_and_dead_letters_after_the_retries() {
    use onec_emulator::service::{self, ServiceOptions};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let one_c = service::serve(listener, ServiceOptions::default())
        .await
        .unwrap();
    let addr = one_c.addr();
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(dir, Some(LOOP_FOR_L2), None, move |c| {
        c.push.url = Some(format!("http://{addr}/hs/obmen/orders"));
        c.push.retry = exchange::retry::RetryPolicy {
            max_attempts: 3,
            base_delay_ms: 10,
            max_delay_ms: 50,
        };
        c.hooks.max_operations = 0;
        c.hooks.timeout_ms = 100;
    })
    .await;
    for n in ["L-1", "L-2"] {
        assert_eq!(t.post_order(&order_json(n, "N")).await.status(), 201);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let dead = loop {
        let r = t
            .http
            .get(t.url("/api/v1/outbox?state=dead"))
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let entries = v["entries"].as_array().unwrap().clone();
        if !entries.is_empty() {
            break entries;
        }
        assert!(Instant::now() < deadline, "L-2 was never dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["order_number"], "L-2");
    assert_eq!(dead[0]["attempts"], 3, "retried per the policy");
    let error = dead[0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("hook export.rhai line 2: "), "{error}");
    let received: Value = t
        .http
        .get(format!("http://{addr}/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        received["orders"],
        serde_json::json!({"L-1": 1}),
        "{received}"
    );
    assert_eq!(
        received["requests"], 1,
        "nothing was sent for L-2: {received}"
    );

    // Left to the scheduled exchange, where the same hook keeps it out and reports it.
    let mut onec = t.onec();
    onec.start().await;
    assert!(numbers(&onec.query().await).is_empty());
    let query = journal(&t, "query").await;
    let m = query[0]["messages"][0].as_str().unwrap();
    assert!(m.contains("order L-2 not exported"), "{m}");
    one_c.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_documents_carry_what_the_export_hook_changed() {
    use std::sync::{Arc, Mutex};

    // A 1C HTTP service that keeps every body it is sent.
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = Arc::clone(&bodies);
    let service = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = Arc::clone(&kept);
        async move {
            kept.lock().unwrap().push(body.to_vec());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });
    let dir = tempfile::tempdir().unwrap();
    let t = app_with_hooks(
        dir,
        Some(
            r#"doc.set_requisite("Канал продаж", order.properties.utm_source ?? "direct");
doc.add_line(#{ id: "GIFT_WRAP", name: "Подарочная упаковка", quantity: "1", price: "150.00", service: true });"#,
        ),
        None,
        move |c| {
            c.push.url = Some(format!("http://{addr}/hs/obmen/orders"));
            c.push.schema_version = "2.08".to_owned();
        },
    )
    .await;
    let r = t
        .post_order(&order_with_properties(
            "Q-1",
            serde_json::json!({"utm_source": "yandex"}),
        ))
        .await;
    assert_eq!(r.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(b) = bodies.lock().unwrap().first().cloned() {
            break b;
        }
        assert!(Instant::now() < deadline, "nothing was pushed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let pushed = documents(&Answer {
        status: 200,
        content_type: "application/xml; charset=utf-8".to_owned(),
        set_cookie: None,
        bytes: body,
    });
    assert_eq!(pushed.len(), 1);
    let doc = &pushed[0];
    assert_eq!(doc.number.as_deref(), Some("Q-1"));
    assert_eq!(doc.requisite("Канал продаж"), Some("yandex"));
    assert!(doc
        .lines
        .iter()
        .any(|l| l.id.as_deref() == Some("GIFT_WRAP") && l.is_service()));
    assert_eq!(
        doc.sum_matches(),
        Some(true),
        "the sum follows the added line"
    );
    t.stop().await;
    server.abort();
}
