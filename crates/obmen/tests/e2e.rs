//! End to end: `obmen serve` (in-process, loopback port) against the 1C emulator speaking the
//! real protocol over HTTP. Every scenario asserts what both sides hold: the emulator's "1C
//! database" and the store API.
//!
//! Each scenario runs on both backends (see [`on_both_backends`]): `sqlite::NAME` on a real
//! SQLite file, `postgres::NAME` on a fresh PostgreSQL database of its own when
//! `OBMEN_TEST_POSTGRES_URL` is set (without it, a notice and an early return).

mod common;

use commerceml::tags;
use common::{order_json, Backend, TestApp, PASSWORD, USER};
use exchange::settings::Encoding;
use onec_emulator::client::{UploadEncoding, ZipMode};
use onec_emulator::{run_session, ClientOptions, Database, Script, Summary};
use serde_json::Value;

/// Generates, for each scenario `NAME(backend)`, the tests `sqlite::NAME` (a SQLite file) and
/// `postgres::NAME` (a fresh PostgreSQL database when `OBMEN_TEST_POSTGRES_URL` is set; without
/// it the test prints a notice and returns).
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident;)*) => {
        mod sqlite {
            use crate::common::Backend;
            $(
                $(#[$attr])*
                async fn $name() {
                    super::$name(Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            use crate::common::Backend;
            $(
                $(#[$attr])*
                async fn $name() {
                    let test = concat!("e2e postgres::", stringify!($name));
                    let Some(backend) = Backend::postgres(test) else {
                        return;
                    };
                    super::$name(backend).await;
                }
            )*
        }
    };
}

on_both_backends! {
    #[tokio::test]
    orders_out_and_statuses_back_by_name_and_by_code;
    #[tokio::test]
    unknown_status_is_journaled_replied_and_other_facts_apply;
    #[tokio::test]
    interrupted_session_offers_the_same_orders_until_success;
    #[tokio::test]
    a_replayed_file_changes_nothing_and_adds_no_history;
    #[tokio::test]
    uploads_in_small_chunks_plain_and_zipped;
    #[tokio::test]
    zip_when_offered_and_plain_when_not;
    #[tokio::test]
    windows_1251_answers_and_uploads;
    #[tokio::test]
    utf8_answers_and_uploads;
    #[tokio::test]
    mixed_answer_and_upload_encodings;
    #[tokio::test]
    schema_2_08;
    #[tokio::test]
    schema_3_1_with_containers;
    #[tokio::test]
    legacy_protocol_without_version;
    #[tokio::test]
    schema_3_1_answer_holds_one_container_per_order;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_emulate_1c_command_negotiates_3_1_and_stops_after_query;
}

/// Emulator options pointed at the test server.
fn options(t: &TestApp) -> ClientOptions {
    ClientOptions::new(t.url("/bitrix/admin/1c_exchange.php"), USER, PASSWORD)
}

/// The emulator's 1C database, a SQLite file next to the server's.
async fn onec_db(t: &TestApp) -> Database {
    let path = t.dir.path().join("onec.db");
    Database::open(&path.display().to_string()).await.unwrap()
}

/// One emulator session that must succeed.
async fn session(t: &TestApp, db: &Database, edit: impl FnOnce(&mut ClientOptions)) -> Summary {
    let mut o = options(t);
    edit(&mut o);
    run_session(o, db.clone()).await.unwrap()
}

fn script(toml: &str) -> Script {
    Script::from_toml(toml).unwrap()
}

async fn post_all(t: &TestApp, numbers: &[&str]) {
    for n in numbers {
        assert_eq!(t.post_order(&order_json(n, "N")).await.status(), 201, "{n}");
    }
}

/// The requests of the newest exchange session in the journal.
async fn last_session_requests(t: &TestApp) -> Vec<Value> {
    let s = t.sessions().await;
    s["sessions"][0]["requests"].as_array().unwrap().clone()
}

fn history_1c(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["source"] == "1c")
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn orders_out_and_statuses_back_by_name_and_by_code(backend: Backend) {
    let t = TestApp::on(&backend).await;
    post_all(&t, &["E-1", "E-2", "E-3"]).await;
    // Not due: D is not an exported status.
    assert_eq!(t.post_order(&order_json("E-9", "D")).await.status(), 201);
    let db = onec_db(&t).await;

    // Session 1: statuses go back by name only (UNF style); E-3 is also shipped.
    let s = session(&t, &db, |o| {
        o.script = script(
            r#"
            status_as = "name"
            [[orders]]
            number = "E-3"
            shipped = { number = "ОТГ-3", date = "2024-03-05T10:00:00" }
            "#,
        );
    })
    .await;
    assert_eq!(
        (s.received, s.created, s.updated, s.duplicates),
        (3, 3, 0, 0)
    );
    assert_eq!(s.sent, 3);
    assert!(s.messages.is_empty(), "{:?}", s.messages);

    // The 1C side: three documents, each one step along the flow; every second one paid.
    let docs = db.orders().await.unwrap();
    let numbers: Vec<&str> = docs.iter().map(|d| d.number.as_str()).collect();
    assert_eq!(numbers, ["E-1", "E-2", "E-3"]);
    for d in &docs {
        assert_eq!(d.state.status_code.as_deref(), Some("P"), "{}", d.number);
        assert_eq!(d.received.lines.len(), 3, "two items and the delivery line");
        assert_eq!(d.received.buyer_name.as_deref(), Some("Петров Иван"));
    }
    assert!(!docs[0].state.paid && docs[1].state.paid && !docs[2].state.paid);
    assert!(docs[2].state.shipped);

    // The store side: the mapped name became the code, 1C's facts are kept.
    for (i, n) in ["E-1", "E-2", "E-3"].iter().enumerate() {
        let o = t.order(n).await;
        assert_eq!(o["status"], "P", "{n}");
        assert_eq!(o["status_1c"], "В работе", "{n}");
        assert_eq!(
            o["number_1c"],
            format!("EM-{:06}", i + 1),
            "{n}: 1C number, unpadded"
        );
        assert_eq!(o["paid"], i == 1, "{n}");
        assert_eq!(o["shipped"], i == 2, "{n}");
        assert_eq!(history_1c(&o), ["P"], "{n}");
        assert_eq!(o["history"][0]["status"], "N");
        assert_eq!(o["history"][0]["source"], "store");
    }
    assert_eq!(t.order("E-2").await["payment_number_1c"], "PA-000002");
    assert_eq!(t.order("E-3").await["shipment_number_1c"], "ОТГ-3");
    let e9 = t.order("E-9").await;
    assert_eq!(e9["status"], "D");
    assert!(
        db.order("E-9").await.unwrap().is_none(),
        "D is never exported"
    );

    // Session 2: nothing is due (1C's own changes are not echoed back); 1C's changes to E-1
    // and E-2 go back by code only.
    let s = session(&t, &db, |o| {
        o.script = script(
            r#"
            status_as = "code"
            scope = "all"
            step = false
            paid_every = 0
            [[orders]]
            number = "E-1"
            status_code = "D"
            [[orders]]
            number = "E-2"
            status_code = "F"
            "#,
        );
    })
    .await;
    assert_eq!((s.received, s.created, s.updated), (0, 0, 0));
    assert_eq!(s.sent, 2, "only the two changed documents");
    assert_eq!(db.order_count().await.unwrap(), 3);
    let e1 = t.order("E-1").await;
    assert_eq!(e1["status"], "D");
    assert_eq!(history_1c(&e1), ["P", "D"]);
    let e2 = t.order("E-2").await;
    assert_eq!(e2["status"], "F");
    assert_eq!(
        e2["status_1c"], "Передан курьеру",
        "the name of the mapped code"
    );
    assert_eq!(
        history_1c(&t.order("E-3").await),
        ["P"],
        "E-3 not sent again"
    );

    // Session 3: the store changes E-3; only E-3 goes out, as an update, not a new document.
    let mut body = order_json("E-3", "P");
    body["comment"] = Value::from("Позвонить за час");
    assert_eq!(t.post_order(&body).await.status(), 200);
    let s = session(&t, &db, |_| {}).await;
    assert_eq!((s.received, s.created, s.updated), (1, 0, 1));
    assert_eq!(db.order_count().await.unwrap(), 3);
    assert_eq!(db.order("E-3").await.unwrap().unwrap().times_received, 2);
    assert_eq!(t.order("E-3").await["status"], "D", "P stepped to D");
    t.stop().await;
}

async fn unknown_status_is_journaled_replied_and_other_facts_apply(backend: Backend) {
    let t = TestApp::on(&backend).await;
    post_all(&t, &["U-1", "U-2", "U-3"]).await;
    let db = onec_db(&t).await;
    let s = session(&t, &db, |o| {
        o.script = script(
            r#"
            paid_every = 0
            [[orders]]
            number = "U-2"
            status = "Отгружен"
            paid = { number = "ПЛ-77", date = "2024-03-06T09:00:00" }
            shipped = true
            "#,
        );
    })
    .await;
    assert_eq!(s.sent, 3);
    let expected = "Unknown status \"Отгружен\" for order U-2";
    assert_eq!(s.messages, [expected], "the reply line after success");

    let u2 = t.order("U-2").await;
    assert_eq!(u2["status"], "N", "the unmapped status is not applied");
    assert!(history_1c(&u2).is_empty());
    assert_eq!(u2["paid"], true);
    assert_eq!(u2["payment_number_1c"], "ПЛ-77");
    assert_eq!(u2["shipped"], true);
    assert_eq!(u2["number_1c"], "EM-000002");
    for n in ["U-1", "U-3"] {
        assert_eq!(
            t.order(n).await["status"],
            "P",
            "{n}: other documents applied"
        );
    }
    let requests = last_session_requests(&t).await;
    let import = requests.iter().find(|r| r["mode"] == "import").unwrap();
    assert_eq!(import["messages"], serde_json::json!([expected]));
    assert_eq!(import["documents"], 3);

    // The emulator's own fault: a status code and name nobody mapped on the first document.
    post_all(&t, &["U-4"]).await;
    let s = session(&t, &db, |o| o.faults.unmapped_status = true).await;
    assert_eq!(s.sent, 1);
    assert_eq!(s.messages.len(), 1, "{:?}", s.messages);
    assert!(
        s.messages[0].starts_with("Unknown status") && s.messages[0].ends_with("for order U-4"),
        "{:?}",
        s.messages
    );
    let u4 = t.order("U-4").await;
    assert_eq!(u4["status"], "N");
    assert_eq!(u4["number_1c"], "EM-000004", "1C's number is still applied");
    t.stop().await;
}

async fn interrupted_session_offers_the_same_orders_until_success(backend: Backend) {
    let t = TestApp::on(&backend).await;
    post_all(&t, &["I-1", "I-2", "I-3"]).await;
    let db = onec_db(&t).await;

    let s = session(&t, &db, |o| o.faults.no_success = true).await;
    assert_eq!((s.received, s.created, s.updated, s.sent), (3, 3, 0, 0));
    let first: Vec<(String, Option<String>)> = db
        .orders()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.number, d.site_id))
        .collect();
    assert!(first.iter().all(|(_, id)| id.is_some()));
    for n in ["I-1", "I-2", "I-3"] {
        let o = t.order(n).await;
        assert_eq!(o["status"], "N", "nothing came back yet");
        assert_eq!(o["history"].as_array().unwrap().len(), 1);
    }
    let modes: Vec<String> = last_session_requests(&t)
        .await
        .iter()
        .map(|r| r["mode"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(modes, ["checkauth", "init", "query"]);

    // The next run gets the same orders with the same Ид, updates (never duplicates) them.
    let s = session(&t, &db, |_| {}).await;
    assert_eq!(
        (s.received, s.created, s.updated, s.duplicates),
        (3, 0, 3, 0)
    );
    assert_eq!(s.sent, 3);
    let second: Vec<(String, Option<String>)> = db
        .orders()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.number, d.site_id))
        .collect();
    assert_eq!(first, second, "same numbers, same Ид");
    for n in ["I-1", "I-2", "I-3"] {
        assert_eq!(t.order(n).await["status"], "P");
    }

    // Confirmed: nothing more.
    let s = session(&t, &db, |_| {}).await;
    assert_eq!((s.received, s.created, s.updated, s.sent), (0, 0, 0, 0));
    assert_eq!(db.order_count().await.unwrap(), 3);
    t.stop().await;
}

async fn a_replayed_file_changes_nothing_and_adds_no_history(backend: Backend) {
    let t = TestApp::on(&backend).await;
    post_all(&t, &["R-1", "R-2"]).await;
    let db = onec_db(&t).await;
    // The emulator uploads its file, then starts a new run and uploads the same file again.
    let s = session(&t, &db, |o| o.faults.replay_file = true).await;
    assert_eq!(s.sent, 2);
    assert!(s.messages.is_empty(), "{:?}", s.messages);
    let before = [t.order("R-1").await, t.order("R-2").await];
    for o in &before {
        assert_eq!(o["status"], "P");
        assert_eq!(history_1c(o), ["P"], "one 1C entry despite two imports");
    }
    let imports: usize = t.sessions().await["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["requests"].as_array().unwrap().iter())
        .filter(|r| r["mode"] == "import")
        .count();
    assert_eq!(imports, 2, "the file really was imported twice");

    // Replay once more by hand, byte for byte, in a fresh 1C session.
    let files = db.files().await.unwrap();
    assert_eq!(files.len(), 1);
    let (_, name, bytes) = &files[0];
    let mut onec = t.onec();
    onec.start().await;
    assert_eq!(onec.file(name, bytes).await.text(), "success\n");
    let inner = import_name(bytes);
    assert_eq!(onec.import(&inner).await.text(), "success\n");
    let after = [t.order("R-1").await, t.order("R-2").await];
    assert_eq!(
        before, after,
        "state and history exactly as after the first import"
    );
    t.stop().await;
}

/// The XML name inside a zip upload (what 1C passes to `import`), or the name itself.
fn import_name(bytes: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let name = archive.by_index(0).unwrap().name().to_owned();
    name
}

async fn uploads_in_small_chunks_plain_and_zipped(backend: Backend) {
    let t = TestApp::on_with(&backend, |c| c.exchange.file_limit = 512).await;
    let numbers: Vec<String> = (1..=6).map(|i| format!("C-{i}")).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    post_all(&t, &refs).await;
    let db = onec_db(&t).await;

    let s = session(&t, &db, |o| o.zip = ZipMode::Off).await;
    assert_eq!(s.sent, 6);
    let requests = last_session_requests(&t).await;
    let files: Vec<&Value> = requests.iter().filter(|r| r["mode"] == "file").collect();
    assert!(files.len() >= 3, "{} chunks", files.len());
    let name = files[0]["filename"].as_str().unwrap();
    assert!(name.ends_with(".xml"), "{name}");
    assert!(
        files.iter().all(|f| f["filename"] == name),
        "one file, appended"
    );
    let total: u64 = files.iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    let (_, _, sent) = db.files().await.unwrap().pop().unwrap();
    assert_eq!(total, sent.len() as u64, "every byte arrived once");
    assert!(files.iter().all(|f| f["bytes"].as_u64().unwrap() <= 512));
    for n in &refs {
        assert_eq!(t.order(n).await["status"], "P", "{n}");
    }

    // Next step along the flow, zipped this time, still in chunks of 512 bytes.
    let s = session(&t, &db, |o| {
        o.script = script("scope = \"all\"\npaid_every = 0");
    })
    .await;
    assert_eq!(s.sent, 6);
    let requests = last_session_requests(&t).await;
    let files: Vec<&Value> = requests.iter().filter(|r| r["mode"] == "file").collect();
    let name = files[0]["filename"].as_str().unwrap();
    assert!(name.ends_with(".zip"), "{name}");
    let (_, _, sent) = db.files().await.unwrap().pop().unwrap();
    assert_eq!(files.len(), sent.len().div_ceil(512));
    for n in &refs {
        let o = t.order(n).await;
        assert_eq!(o["status"], "D", "{n}");
        assert_eq!(history_1c(&o), ["P", "D"], "{n}");
    }
    t.stop().await;
}

async fn zip_when_offered_and_plain_when_not(backend: Backend) {
    let t = TestApp::on_with(&backend, |c| c.exchange.zip = false).await;
    post_all(&t, &["Z-1"]).await;
    let db = onec_db(&t).await;
    session(&t, &db, |_| {}).await;
    let requests = last_session_requests(&t).await;
    let file = requests.iter().find(|r| r["mode"] == "file").unwrap();
    assert!(file["filename"].as_str().unwrap().ends_with(".xml"));
    assert_eq!(t.order("Z-1").await["status"], "P");
    t.stop().await;

    let t = TestApp::on(&backend).await;
    post_all(&t, &["Z-2"]).await;
    let db = onec_db(&t).await;
    session(&t, &db, |_| {}).await;
    let requests = last_session_requests(&t).await;
    let file = requests.iter().find(|r| r["mode"] == "file").unwrap();
    assert!(file["filename"].as_str().unwrap().ends_with(".zip"));
    let import = requests.iter().find(|r| r["mode"] == "import").unwrap();
    assert_eq!(import["documents"], 1);
    assert_eq!(t.order("Z-2").await["status"], "P");
    t.stop().await;
}

/// One full round for an answer encoding and an upload encoding.
async fn encoding_round(backend: &Backend, answer: Encoding, upload: UploadEncoding) {
    let t = TestApp::on_with(backend, |c| c.exchange.encoding = answer).await;
    let mut body = order_json("K-1", "N");
    body["customer"]["last_name"] = Value::from("Щукина");
    body["customer"]["first_name"] = Value::from("Ёлка");
    body["items"][0]["name"] = Value::from("Чайник «Витязь» № 5 — ёмкость 1,7 л");
    assert_eq!(t.post_order(&body).await.status(), 201);
    let db = onec_db(&t).await;
    let s = session(&t, &db, |o| {
        o.encoding = upload;
        o.zip = ZipMode::Off;
        o.script = script(
            r#"
            comment = "Заказ с сайта {number}: ёлочные игрушки"
            [[orders]]
            number = "K-1"
            paid = { number = "ПЛ-Ё1" }
            "#,
        );
    })
    .await;
    assert_eq!(s.created, 1);
    let doc = db.order("K-1").await.unwrap().unwrap();
    assert_eq!(doc.received.buyer_name.as_deref(), Some("Щукина Ёлка"));
    assert_eq!(
        doc.received.lines[0].name,
        "Чайник «Витязь» № 5 — ёмкость 1,7 л"
    );
    let o = t.order("K-1").await;
    assert_eq!(o["status"], "P");
    assert_eq!(o["status_1c"], "В работе");
    assert_eq!(o["payment_number_1c"], "ПЛ-Ё1");
}

async fn windows_1251_answers_and_uploads(backend: Backend) {
    encoding_round(&backend, Encoding::Windows1251, UploadEncoding::Windows1251).await;
}

async fn utf8_answers_and_uploads(backend: Backend) {
    encoding_round(&backend, Encoding::Utf8, UploadEncoding::Utf8).await;
}

async fn mixed_answer_and_upload_encodings(backend: Backend) {
    encoding_round(&backend, Encoding::Utf8, UploadEncoding::Windows1251).await;
    encoding_round(&backend, Encoding::Windows1251, UploadEncoding::Utf8).await;
}

/// One full round with the schema version the emulator asks for.
async fn schema_round(backend: &Backend, version: Option<&str>) {
    let t = TestApp::on(backend).await;
    post_all(&t, &["V-1", "V-2"]).await;
    let db = onec_db(&t).await;
    let s = session(&t, &db, |o| o.version = version.map(str::to_owned)).await;
    assert_eq!((s.received, s.created, s.sent), (2, 2, 2), "{version:?}");
    for n in ["V-1", "V-2"] {
        let doc = db.order(n).await.unwrap().unwrap();
        assert_eq!(doc.received.lines.len(), 3, "{version:?}");
        assert_eq!(doc.received.status_code.as_deref(), Some("N"));
        assert_eq!(t.order(n).await["status"], "P", "{version:?} {n}");
    }
    let sessions = t.sessions().await;
    let journal = &sessions["sessions"][0];
    assert_eq!(journal["version"], version.map_or(Value::Null, Value::from));
    let modes: Vec<&str> = journal["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    if version.is_some() {
        assert_eq!(modes.last(), Some(&"import"), "{modes:?}");
    } else {
        assert!(
            !modes.contains(&"import"),
            "legacy imports at file: {modes:?}"
        );
    }
    // Confirmed: the next run gets an empty answer.
    let s = session(&t, &db, |o| o.version = version.map(str::to_owned)).await;
    assert_eq!(s.received, 0);
    t.stop().await;
}

async fn schema_2_08(backend: Backend) {
    schema_round(&backend, Some("2.08")).await;
}

async fn schema_3_1_with_containers(backend: Backend) {
    schema_round(&backend, Some("3.1")).await;
}

async fn legacy_protocol_without_version(backend: Backend) {
    schema_round(&backend, None).await;
}

async fn schema_3_1_answer_holds_one_container_per_order(backend: Backend) {
    // What the emulator parsed above is really the 3.x shape: the same query, by hand.
    let t = TestApp::on(&backend).await;
    post_all(&t, &["W-1", "W-2"]).await;
    let mut onec = t.onec();
    onec.checkauth().await;
    onec.init(Some("3.1")).await;
    let q = onec.query().await;
    let text = q.text();
    let container = format!("<{}>", tags::CONTAINER);
    assert_eq!(text.matches(&container).count(), 2, "{text}");
    assert!(text.contains(&format!("{}=\"3.1\"", tags::ATTR_SCHEMA_VERSION)));
    t.stop().await;
}

/// `obmen emulate-1c` as a process, with `--json`.
async fn emulate_1c_cli(t: &TestApp, extra: &[&str]) -> Value {
    let state = t.dir.path().join("cli-1c.db").display().to_string();
    let url = t.url("/bitrix/admin/1c_exchange.php");
    let mut args: Vec<String> = [
        "emulate-1c",
        "--url",
        &url,
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--state",
        &state,
        "--json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_obmen"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

async fn the_emulate_1c_command_negotiates_3_1_and_stops_after_query(backend: Backend) {
    let t = TestApp::on(&backend).await;
    post_all(&t, &["P-1", "P-2"]).await;
    let s = emulate_1c_cli(&t, &["--version", "3.1", "--no-success"]).await;
    assert_eq!(s["received"], 2);
    assert_eq!(s["created"], 2);
    assert_eq!(s["sent"], 0);
    assert_eq!(t.sessions().await["sessions"][0]["version"], "3.1");
    assert_eq!(t.order("P-1").await["status"], "N");

    let s = emulate_1c_cli(&t, &["--version", "3.1", "--encoding", "windows-1251"]).await;
    assert_eq!(
        (s["received"].as_u64(), s["created"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(s["updated"], 2);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(s["sent"], 2);
    assert_eq!(s["messages"], serde_json::json!([]));
    for n in ["P-1", "P-2"] {
        assert_eq!(t.order(n).await["status"], "P", "{n}");
    }
    let s = emulate_1c_cli(&t, &["--version", "3.1"]).await;
    assert_eq!(s["received"], 0);
    t.stop().await;
}
