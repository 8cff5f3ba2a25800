//! The emulator playing 1C against an independent Bitrix-like site (tests/bitrix_site).

mod bitrix_site;

use std::io::Read as _;
use std::sync::Arc;

use bitrix_site::{Fault, Site, FULL_QUERY, PASSWORD, USER};
use chrono::TimeZone as _;
use commerceml::tags as t;
use exchange::clock::ManualClock;
use onec_emulator::client::{ClientOptions, UploadEncoding, ZipMode};
use onec_emulator::{run_parallel, run_session, Database, Error, Script, Summary};

async fn database() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1c.db");
    let db = Database::open(path.to_str().unwrap()).await.unwrap();
    (dir, db)
}

fn options(site: &Site) -> ClientOptions {
    let mut o = ClientOptions::new(site.url(), USER, PASSWORD);
    o.clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
    ));
    o
}

fn el(name: &str, value: &str) -> String {
    format!("<{name}>{value}</{name}>")
}

fn requisite(name: &str, value: &str) -> String {
    format!(
        "<{r}><{n}>{name}</{n}><{v}>{value}</{v}></{r}>",
        r = t::REQUISITE,
        n = t::NAME,
        v = t::VALUE
    )
}

/// Drops the indentation between tags.
fn squash(xml: &str) -> String {
    xml.lines().map(str::trim_start).collect()
}

fn imported_text(site: &Site) -> Vec<String> {
    site.state
        .lock()
        .unwrap()
        .imported
        .iter()
        .map(|(_, b)| {
            let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
            squash(std::str::from_utf8(b).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn full_session_against_a_bitrix_like_site() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    let summary = run_session(options(&site), db.clone()).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            received: 2,
            created: 2,
            updated: 0,
            duplicates: 0,
            sent: 2,
            messages: vec![
                "Идет распаковка архива.".to_owned(),
                "Обработано документов: 2".to_owned()
            ],
        }
    );
    let json = serde_json::to_value(&summary).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "created",
            "duplicates",
            "messages",
            "received",
            "sent",
            "updated"
        ]
    );

    // The conversation, as the site saw it.
    assert_eq!(
        site.modes(),
        [
            "checkauth",
            "init",
            "query",
            "success",
            "file",
            "import",
            "import"
        ]
    );
    let reqs = site.requests();
    assert_eq!(reqs[0].basic.as_deref(), Some("exchange:s3cret"));
    assert_eq!(reqs[0].params.get("sessid"), None);
    for r in &reqs[1..] {
        assert_eq!(
            r.cookie.as_deref(),
            Some("PHPSESSID=abc123session"),
            "{r:?}"
        );
        assert_eq!(
            r.params.get("sessid").map(String::as_str),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(r.basic, None, "cookie auth only after checkauth");
    }
    assert_eq!(
        reqs[1].params.get("version").map(String::as_str),
        Some("2.08")
    );
    assert_eq!(reqs[4].method, "POST");
    let file = reqs[4].params.get("filename").unwrap();
    assert!(file.starts_with("v8_") && file.ends_with(".zip"), "{file}");
    let import = reqs[5].params.get("filename").unwrap();
    assert!(import.starts_with("documents___") && import.ends_with(".xml"));

    // The 1C database.
    let orders = db.orders().await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].number, "132");
    assert_eq!(orders[0].state.status_code.as_deref(), Some("P"));
    assert!(!orders[0].state.paid);
    assert_eq!(orders[1].number, "133");
    assert!(orders[1].state.paid, "every second order is paid");
    assert_eq!(orders[1].state.payment_number.as_deref(), Some("PA-000002"));
    assert_eq!(
        orders[1].state.payment_date.as_deref(),
        Some("2024-05-06T07:08:09")
    );
    assert_eq!(orders[0].received.lines.len(), 1);
    assert!(orders[1].received.lines.len() > 1);

    // What the site imported looks like 1C output.
    let raw = site.state.lock().unwrap().imported[0].1.clone();
    assert!(raw.starts_with(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let xml = &imported_text(&site)[0];
    assert!(xml.contains("xmlns=\"urn:1C.ru:commerceml_210\""));
    assert!(xml.contains(&format!("{}=\"2.08\"", t::ATTR_SCHEMA_VERSION)));
    assert!(xml.contains(&el(t::NUMBER_1C, "EM-000001  ")));
    assert!(xml.contains(&el(t::NUMBER, "133")));
    assert!(xml.contains(&el(t::DATE_1C, "2024-05-06")));
    assert!(xml.contains(&el(t::ID, "796 ")));
    assert!(xml.contains(&el(t::PRICE, "1788.96")));
    assert!(!xml.contains(t::PRICE_PER_UNIT));
    assert!(xml.contains(&requisite(t::REQ_POSTED, "true")));
    assert!(xml.contains(&requisite(t::REQ_STATUS_ID, "P")));
    assert!(xml.contains(&requisite(t::REQ_PAYMENT_NUMBER_1C, "PA-000002")));
    assert!(xml.contains(&requisite(t::REQ_PAYMENT_DATE_1C, "2024-05-06T07:08:09")));
    assert_eq!(xml.matches(&format!("<{}>", t::CONTAINER)).count(), 0);
}

#[tokio::test]
async fn a_second_identical_session_updates_instead_of_creating() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    run_session(options(&site), db.clone()).await.unwrap();
    let second = run_session(options(&site), db.clone()).await.unwrap();
    assert_eq!((second.received, second.created, second.updated), (2, 0, 2));
    assert_eq!(second.duplicates, 0);
    assert_eq!(db.order_count().await.unwrap(), 2);
    let orders = db.orders().await.unwrap();
    assert!(orders.iter().all(|o| o.times_received == 2));
    // One more step along the flow: P → D.
    assert!(orders
        .iter()
        .all(|o| o.state.status_code.as_deref() == Some("D")));
    assert_eq!(second.sent, 2);
    let log = db.sent_log().await.unwrap();
    assert_eq!(log.len(), 4);
}

#[tokio::test]
async fn duplicates_in_one_answer_are_counted_and_stored_once() {
    // Repeat the first order document inside the answer.
    let open = encoding_rs::WINDOWS_1251
        .encode(&format!("<{}>", t::DOCUMENT))
        .0
        .into_owned();
    let close = encoding_rs::WINDOWS_1251
        .encode(&format!("</{}>", t::DOCUMENT))
        .0
        .into_owned();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(FULL_QUERY, &open).unwrap();
    let end = find(FULL_QUERY, &close).unwrap() + close.len();
    let mut body = FULL_QUERY[..end].to_vec();
    body.extend_from_slice(&FULL_QUERY[start..end]);
    body.extend_from_slice(&FULL_QUERY[end..]);

    let site = Site::start_with(false, 0, body, None).await;
    let (_dir, db) = database().await;
    let s = run_session(options(&site), db.clone()).await.unwrap();
    assert_eq!(
        (s.received, s.created, s.updated, s.duplicates),
        (3, 2, 0, 1)
    );
    assert_eq!(db.order_count().await.unwrap(), 2);
    assert_eq!(db.order("132").await.unwrap().unwrap().times_received, 1);
}

#[tokio::test]
async fn chunked_zipped_upload_is_reassembled_exactly() {
    let site = Site::start(true, 700).await;
    let (_dir, db) = database().await;
    let s = run_session(options(&site), db.clone()).await.unwrap();
    assert_eq!(s.sent, 2);
    let files = db.files().await.unwrap();
    assert_eq!(files.len(), 1);
    let (_, name, sent_bytes) = &files[0];
    assert!(name.ends_with(".zip"));
    let st = site.state.lock().unwrap();
    let chunks = &st.chunks[name];
    assert!(
        chunks.len() > 1,
        "a {}-byte zip in 700-byte chunks",
        sent_bytes.len()
    );
    assert!(chunks.iter().all(|c| *c <= 700));
    assert!(chunks[..chunks.len() - 1].iter().all(|c| *c == 700));
    assert_eq!(&st.dir[name], sent_bytes, "the site got the exact bytes");
    // The archive holds one entry, the XML named in `import`.
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(sent_bytes.clone())).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_index(0).unwrap();
    let entry_name = entry.name().to_owned();
    let mut xml = Vec::new();
    entry.read_to_end(&mut xml).unwrap();
    let import_names: Vec<_> = st
        .requests
        .iter()
        .filter(|r| r.mode() == "import")
        .map(|r| r.params["filename"].clone())
        .collect();
    assert_eq!(import_names, [entry_name.clone(), entry_name]);
    assert_eq!(st.imported.len(), 1);
    assert_eq!(st.imported[0].1, xml);
}

#[tokio::test]
async fn chunked_plain_upload_with_zip_off() {
    let site = Site::start(true, 1000).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.zip = ZipMode::Off;
    run_session(o, db.clone()).await.unwrap();
    let files = db.files().await.unwrap();
    let (_, name, bytes) = &files[0];
    assert!(name.ends_with(".xml"));
    let st = site.state.lock().unwrap();
    assert!(st.chunks[name].len() >= 3, "{:?}", st.chunks[name]);
    assert_eq!(&st.dir[name], bytes);
    assert_eq!(&st.imported[0].1, bytes);
}

#[tokio::test]
async fn legacy_protocol_imports_at_file_without_import_calls() {
    let site = Site::start(false, 0).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.version = None;
    let s = run_session(o, db).await.unwrap();
    assert_eq!(
        site.modes(),
        ["checkauth", "init", "query", "success", "file"]
    );
    assert_eq!(site.requests()[1].params.get("version"), None);
    assert_eq!(s.messages, ["Обработано документов: 2"]);
    assert_eq!(s.sent, 2);
    let xml = &imported_text(&site)[0];
    assert!(xml.contains("urn:1C.ru:commerceml_210"));
}

#[tokio::test]
async fn schema_3_1_writes_containers_and_windows_1251_when_asked() {
    let site = Site::start(false, 0).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.version = Some("3.1".into());
    o.encoding = UploadEncoding::Windows1251;
    run_session(o, db).await.unwrap();
    let raw = site.state.lock().unwrap().imported[0].1.clone();
    assert!(raw.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    let xml = squash(&encoding_rs::WINDOWS_1251.decode(&raw).0);
    assert!(xml.contains("xmlns=\"urn:1C.ru:commerceml_3\""));
    assert!(xml.contains(&format!("{}=\"3.1\"", t::ATTR_SCHEMA_VERSION)));
    assert_eq!(xml.matches(&format!("<{}>", t::CONTAINER)).count(), 2);
    assert!(xml.contains(&el(t::OPERATION, t::OP_ORDER)));
}

#[tokio::test]
async fn no_success_stops_after_query() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.faults.no_success = true;
    let s = run_session(o, db.clone()).await.unwrap();
    assert_eq!(site.modes(), ["checkauth", "init", "query"]);
    assert_eq!((s.received, s.created, s.sent), (2, 2, 0));
    assert_eq!(db.order_count().await.unwrap(), 2);
    assert!(db.sent_log().await.unwrap().is_empty());
}

#[tokio::test]
async fn protocol_violations_are_errors() {
    let cases = [
        ("checkauth", Fault::EmptyBody, "empty body"),
        ("init", Fault::Status500, "HTTP status 500"),
        ("query", Fault::CharsetMismatch, "disagrees"),
        ("query", Fault::BrokenXml, "XML does not parse"),
        ("query", Fault::EmptyBody, "empty body"),
        (
            "success",
            Fault::BadFirstLine,
            "not success/progress/failure",
        ),
        ("import", Fault::EmptyBody, "empty body"),
    ];
    for (mode, fault, expected) in cases {
        let site = Site::start_with(true, 204_800, FULL_QUERY.to_vec(), Some((mode, fault))).await;
        let (_dir, db) = database().await;
        let err = run_session(options(&site), db).await.unwrap_err();
        assert!(err.is_violation(), "{mode} {fault:?}: {err}");
        let text = err.to_string();
        assert!(text.contains(expected), "{mode} {fault:?}: {text}");
        assert!(text.contains(&format!("mode={mode}")), "{text}");
    }
}

#[tokio::test]
async fn wrong_password_is_a_failure_not_a_violation() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.password = "wrong".into();
    match run_session(o, db).await.unwrap_err() {
        Error::Failure { mode, message } => {
            assert_eq!(mode, "checkauth");
            assert!(message.starts_with("Ошибка авторизации"), "{message}");
        }
        other => panic!("expected a failure, got {other}"),
    }
    assert_eq!(site.modes(), ["checkauth"]);
}

#[tokio::test]
async fn replayed_file_is_sent_again_in_a_new_run() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.faults.replay_file = true;
    let s = run_session(o, db).await.unwrap();
    assert_eq!(s.sent, 2);
    assert_eq!(
        site.modes(),
        [
            "checkauth",
            "init",
            "query",
            "success",
            "file",
            "import",
            "import",
            "checkauth",
            "init",
            "file",
            "import",
            "import"
        ]
    );
    let st = site.state.lock().unwrap();
    assert_eq!(st.imported.len(), 2);
    assert_eq!(st.imported[0], st.imported[1]);
}

#[tokio::test]
async fn cut_upload_drops_the_connection_mid_chunk() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.faults.cut_upload = true;
    let s = run_session(o, db.clone()).await.unwrap();
    assert_eq!(s.sent, 0);
    // Let the site notice the broken body.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    {
        let st = site.state.lock().unwrap();
        assert!(st.imported.is_empty());
        assert!(
            st.dir.is_empty(),
            "no partial chunk stored: {:?}",
            st.chunks
        );
    }
    assert!(db.sent_log().await.unwrap().is_empty());
    // The next run sends everything again, even though the site has nothing new: 1C keeps
    // its changes registered until an upload succeeds.
    let empty = format!(
        "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<{r} {v}=\"2.05\"></{r}>",
        r = t::ROOT,
        v = t::ATTR_SCHEMA_VERSION
    );
    site.state.lock().unwrap().query_body = encoding_rs::WINDOWS_1251.encode(&empty).0.into_owned();
    let again = run_session(options(&site), db.clone()).await.unwrap();
    assert_eq!((again.received, again.updated, again.sent), (0, 0, 2));
    assert_eq!(site.state.lock().unwrap().imported.len(), 1);
    // Once sent, nothing is pending any more.
    let third = run_session(options(&site), db.clone()).await.unwrap();
    assert_eq!(third.sent, 0);
    assert!(db.pending_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn unmapped_status_and_scripted_actions_go_back() {
    let site = Site::start(false, 0).await;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.faults.unmapped_status = true;
    o.script = Script::from_toml(
        r#"
        status_as = "code"
        [[orders]]
        number = "133"
        cancelled = true
        shipped = { number = "SH-1", date = "2024-05-06T10:00:00" }
        "#,
    )
    .unwrap();
    run_session(o, db.clone()).await.unwrap();
    let xml = &imported_text(&site)[0];
    assert!(xml.contains(&requisite(t::REQ_STATUS_ID, "ZZ")));
    assert!(!xml.contains(&format!("<{n}>{}</{n}>", t::REQ_STATUS, n = t::NAME)));
    assert!(xml.contains(&requisite(t::REQ_CANCELLED, "true")));
    assert!(xml.contains(&requisite(t::REQ_SHIPPED, "true")));
    assert!(xml.contains(&requisite(t::REQ_SHIPMENT_NUMBER_1C, "SH-1")));
    let o133 = db.order("133").await.unwrap().unwrap();
    assert!(o133.state.cancelled && o133.state.shipped);
    assert_eq!(o133.state.status_code.as_deref(), Some("C"));
}

#[tokio::test]
async fn two_sessions_at_once_share_the_1c_database() {
    let site = Site::start(true, 204_800).await;
    let (_dir, db) = database().await;
    // Without the upload: the site wipes its upload area at every init, so two uploads at once
    // would race on the site's side, not on ours.
    let mut o = options(&site);
    o.faults.no_success = true;
    let results = run_parallel(&o, &db, 2).await;
    let summaries: Vec<Summary> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(summaries.iter().map(|s| s.created).sum::<u64>(), 2);
    assert_eq!(summaries.iter().map(|s| s.updated).sum::<u64>(), 2);
    assert_eq!(db.order_count().await.unwrap(), 2);
    assert_eq!(site.modes().iter().filter(|m| *m == "checkauth").count(), 2);
}

#[tokio::test]
async fn a_basic_challenge_is_answered_with_credentials() {
    let site = Site::start(false, 0).await;
    site.state.lock().unwrap().challenge_without_basic = true;
    let (_dir, db) = database().await;
    let s = run_session(options(&site), db).await.unwrap();
    assert_eq!(s.sent, 2);
    let reqs = site.requests();
    let init: Vec<_> = reqs.iter().filter(|r| r.mode() == "init").collect();
    assert_eq!(init.len(), 2, "challenged, then repeated with credentials");
    assert_eq!(init[0].basic, None);
    assert_eq!(init[1].basic.as_deref(), Some("exchange:s3cret"));
    let files: Vec<_> = reqs.iter().filter(|r| r.mode() == "file").collect();
    assert_eq!(files.len(), 2);
    assert_eq!(site.state.lock().unwrap().imported.len(), 1);
}

#[tokio::test]
async fn basic_always_sends_credentials_on_every_request() {
    let site = Site::start(false, 0).await;
    site.state.lock().unwrap().challenge_without_basic = true;
    let (_dir, db) = database().await;
    let mut o = options(&site);
    o.basic_always = true;
    run_session(o, db).await.unwrap();
    let reqs = site.requests();
    assert_eq!(
        site.modes(),
        [
            "checkauth",
            "init",
            "query",
            "success",
            "file",
            "import",
            "import"
        ]
    );
    assert!(reqs
        .iter()
        .all(|r| r.basic.as_deref() == Some("exchange:s3cret")));
}
