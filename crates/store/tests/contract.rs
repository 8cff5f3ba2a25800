//! The store contract on SQLite: the shared suite on a real file in a temporary directory, plus
//! what only a file can show (persistence across re-open, two handles on one file, open errors).

#[macro_use]
mod suite;

use std::sync::Arc;

use store::{NewSession, SqliteStore, Store, Update};
use suite::{all_due, at, order};
use tempfile::TempDir;

/// A fresh SQLite file; the directory lives as long as the guard.
async fn fresh_sqlite() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("obmen.db");
    let store = store::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open SQLite store");
    (store, dir)
}

contract_tests!(fresh_sqlite);

mod pg;

/// The same suite on PostgreSQL, each test in a fresh schema, when `OBMEN_TEST_POSTGRES_URL`
/// is set (fails when it is set and the database is unreachable; a notice when it is unset).
mod postgres {
    use super::{pg, suite};
    contract_tests!(pg::fresh);
}

fn statuses() -> Vec<String> {
    vec!["N".to_owned(), "P".to_owned()]
}

#[tokio::test]
async fn state_survives_reopen_of_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("obmen.db").display());
    let (order_id, session) = {
        let store = SqliteStore::open(&url).await.unwrap();
        let id = store
            .upsert_order(&order("R-1"), at(0))
            .await
            .unwrap()
            .order()
            .id;
        let session = store
            .create_session(
                &NewSession {
                    user: "1c".to_owned(),
                    cookie: "cookie-r".to_owned(),
                    sessid: "sessid-r".to_owned(),
                },
                at(1),
            )
            .await
            .unwrap();
        store
            .record_offered(session.id, &[(id, 1)], at(2))
            .await
            .unwrap();
        store
            .append_upload(session.id, "orders.xml", b"<a/>")
            .await
            .unwrap();
        store.set_setting("k", "v").await.unwrap();
        store.close().await;
        (id, session)
    };
    // As after `kill -9` between query and success: the same order is offered again.
    let store = SqliteStore::open(&url).await.unwrap();
    assert_eq!(
        store.session_by_cookie("cookie-r").await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(all_due(&store, &statuses(), 10).await, vec![(order_id, 1)]);
    assert_eq!(
        store.read_upload(session.id, "orders.xml").await.unwrap(),
        b"<a/>"
    );
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
    // The ledger row written before the restart is confirmed by the success after it.
    assert_eq!(store.confirm_session(session.id, at(3)).await.unwrap(), 1);
    assert!(all_due(&store, &statuses(), 10).await.is_empty());
}

#[tokio::test]
async fn file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let store = SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.set_setting("x", "1").await.unwrap();
    assert!(path.exists());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(
            &sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn open_rejects_unsupported_urls() {
    for url in ["mysql://localhost/obmen", "file:///tmp/obmen.db", ""] {
        match store::open(url).await {
            Err(store::Error::Invalid(message)) => {
                assert!(!message.is_empty(), "{url}");
            }
            Err(other) => panic!("{url}: expected Invalid, got {other}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/obmen.db");
    assert!(store::open(missing.to_str().unwrap()).await.is_err());
}

#[tokio::test]
async fn in_memory_database_works() {
    let store = store::open("sqlite::memory:").await.unwrap();
    let id = store
        .upsert_order(&order("M-1"), at(0))
        .await
        .unwrap()
        .order()
        .id;
    assert_eq!(
        store.order_by_number("M-1").await.unwrap().map(|o| o.id),
        Some(id)
    );
}

/// Two handles on one file (two obmen processes): writes interleave without `database is
/// locked` errors and the result is consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("shared.db").display().to_string();
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    let n = 60;
    let writer = |store: Arc<dyn Store>, prefix: &'static str| {
        tokio::spawn(async move {
            for i in 0..n {
                let id = store
                    .upsert_order(&order(&format!("{prefix}{i}")), at(0))
                    .await
                    .unwrap()
                    .order()
                    .id;
                let u = Update {
                    status: Some("P".to_owned()),
                    ..Update::default()
                };
                assert!(store.apply_update(id, &u, at(1)).await.unwrap());
            }
        })
    };
    let ta = writer(Arc::clone(&a), "X");
    let tb = writer(Arc::clone(&b), "Y");
    ta.await.unwrap();
    tb.await.unwrap();
    let orders = a.list_orders(&Default::default()).await.unwrap();
    assert_eq!(orders.len(), 2 * n);
    assert!(orders
        .iter()
        .all(|o| o.input.status_code() == "P" && o.history.len() == 2));
    // Both handles see the same state.
    assert_eq!(b.list_orders(&Default::default()).await.unwrap(), orders);
}

/// Webhook events outlive the process: recorded, not acknowledged, the file re-opened (as after
/// `kill -9`), they are still due; two handles on the file never claim the same one.
#[tokio::test]
async fn webhook_events_survive_reopen_and_two_handles_claim_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("obmen.db").display());
    let lease = std::time::Duration::from_secs(60);
    {
        let store = SqliteStore::open(&url).await.unwrap();
        store
            .enable_webhook_events(Arc::new(tokio::sync::Notify::new()))
            .unwrap();
        let inputs: Vec<_> = (0..50).map(|i| order(&format!("WR-{i}"))).collect();
        let updates: Vec<(i64, Update)> = store
            .upsert_orders(&inputs, at(0))
            .await
            .unwrap()
            .iter()
            .map(|o| {
                let u = Update {
                    status: Some("F".to_owned()),
                    status_1c: Some("Передан курьеру".to_owned()),
                    ..Update::default()
                };
                (o.order().id, u)
            })
            .collect();
        store.apply_updates(&updates, at(1)).await.unwrap();
        // Claimed by a worker that then dies: the lease runs out.
        assert_eq!(
            store
                .claim_webhook_events(at(1), 5, lease)
                .await
                .unwrap()
                .len(),
            5
        );
        store.close().await;
    }
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    assert_eq!(a.webhook_next_due().await.unwrap(), Some(at(1)));
    let mut tasks = Vec::new();
    for s in [a, b] {
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_webhook_events(at(5), 3, lease).await.unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|e| e.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all.len(), 50, "every event claimed after the restart");
    all.dedup();
    assert_eq!(all.len(), 50, "no event claimed twice");
}

/// A database made by an earlier obmen (schema up to migration 0004, order bodies inline in
/// `orders`) opens with its orders intact: migration 0005 moves the bodies to `order_bodies`,
/// and the orders read, update and export as before.
#[tokio::test]
async fn an_older_database_keeps_its_orders_through_the_body_migration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = dir.path().join("migrations-0004");
    std::fs::create_dir(&old).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < "0005" {
            std::fs::copy(entry.path(), old.join(&name)).unwrap();
        }
    }
    let path = dir.path().join("obmen.db");
    let url = format!("sqlite:{}?mode=rwc", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let input = order("OLD-1");
    let body = serde_json::to_string(&input).unwrap();
    sqlx::query(
        "INSERT INTO orders (number, body, submitted_status, status, paid, version, \
         confirmed_version, last_change_source, created_at, updated_at) \
         VALUES ('OLD-1', ?, 'N', 'N', 0, 1, 0, 'store', '2024-03-01T10:00:00Z', '2024-03-01T10:00:00Z')",
    )
    .bind(&body)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = store::open(path.to_str().unwrap()).await.unwrap();
    let found = store.order_by_number("OLD-1").await.unwrap().unwrap();
    assert_eq!(found.input.items, input.items);
    assert_eq!(found.input.customer, input.customer);
    let due = all_due(store.as_ref(), &["N".to_owned()], 10).await;
    assert_eq!(due, [(found.id, 1)]);
    // The order still takes a store update and a 1C status.
    let mut changed = input.clone();
    changed.comment = Some("changed after the migration".to_owned());
    store.upsert_order(&changed, at(5)).await.unwrap();
    let u = Update {
        status: Some("P".to_owned()),
        ..Update::default()
    };
    assert!(store.apply_update(found.id, &u, at(6)).await.unwrap());
    let after = store.order_by_number("OLD-1").await.unwrap().unwrap();
    assert_eq!(
        after.input.comment.as_deref(),
        Some("changed after the migration")
    );
    assert_eq!(after.input.status_code(), "P");
}

/// A caller that gives up mid-write (a 1C request dropped when 1C disconnects, a timeout) must
/// not leave the one writer connection inside a transaction: every later write would fail.
/// Writes are abandoned at every stage (after 0 to 100 turns of the scheduler); then writes
/// still work and every abandoned write either happened whole or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_abandoned_mid_way_leave_the_writer_usable() {
    let (store, _dir) = fresh_sqlite().await;
    for i in 0..4000u64 {
        let key = format!("k{i}");
        let write = store.set_setting_if_absent(&key, "v");
        let give_up = async {
            for _ in 0..i % 100 {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            _ = write => {}
            () = give_up => {}
        }
    }
    store.set_setting("after", "ok").await.unwrap();
    assert_eq!(
        store.get_setting("after").await.unwrap().as_deref(),
        Some("ok")
    );
    store.upsert_order(&order("AFTER-1"), at(0)).await.unwrap();
    for i in 0..4000u64 {
        let value = store.get_setting(&format!("k{i}")).await.unwrap();
        assert!(value.is_none() || value.as_deref() == Some("v"));
    }
}
