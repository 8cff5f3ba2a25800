//! What only PostgreSQL promises: several obmen instances on one database. Each test opens two
//! independent stores (two pools, as two processes would) on a fresh schema.
//!
//! Runs when `OBMEN_TEST_POSTGRES_URL` is set (fails when the database is unreachable); without
//! it every test prints a notice and passes.

// Shared helpers: this file uses a part of each.
#[allow(dead_code)]
mod pg;
#[allow(dead_code)]
mod suite;

use std::sync::Arc;

use exchange::domain::Source;
use sqlx::{Connection, PgConnection};
use store::{ImportProgress, NewSession, Store, Update, UpsertOutcome};
use suite::{all_due, at, order, tag};
use tokio::sync::Barrier;

fn statuses() -> Vec<String> {
    vec!["N".to_owned(), "P".to_owned()]
}

/// Two stores (two instances) on one fresh schema, its guard, and a direct connection for
/// looking at the tables.
async fn two_instances() -> Option<(
    Arc<dyn Store>,
    Arc<dyn Store>,
    pg::SchemaGuard,
    PgConnection,
)> {
    let admin = pg::url()?;
    let guard = pg::fresh_schema(&admin).await;
    let url = guard.store_url();
    let a = store::open(&url).await.expect("open instance A");
    let b = store::open(&url).await.expect("open instance B");
    let conn = PgConnection::connect(&url)
        .await
        .expect("direct connection");
    Some((a, b, guard, conn))
}

async fn new_session(store: &dyn Store, minutes: i64) -> i64 {
    let t = tag();
    store
        .create_session(
            &NewSession {
                user: "1c".to_owned(),
                cookie: format!("cookie-{t}"),
                sessid: format!("sessid-{t}"),
            },
            at(minutes),
        )
        .await
        .expect("create_session")
        .id
}

/// One 1C session: `query` (page through what is due, recording each page as offered), wait
/// for the other session to have queried too, then `success`. Returns the session id, what it
/// offered and how many ledger rows its `success` confirmed.
async fn run_session(
    store: Arc<dyn Store>,
    barrier: Arc<Barrier>,
    minutes: i64,
) -> (i64, Vec<(i64, i64)>, u64) {
    let s = new_session(&*store, minutes).await;
    let mut offered = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .orders_due(&statuses(), after, 37)
            .await
            .expect("orders_due");
        let Some(last) = page.last() else { break };
        after = last.id;
        let versions: Vec<(i64, i64)> = page.iter().map(|o| (o.id, o.version)).collect();
        store
            .record_offered(s, &versions, at(minutes))
            .await
            .expect("record_offered");
        offered.extend(versions);
    }
    barrier.wait().await;
    let confirmed = store
        .confirm_session(s, at(minutes + 1))
        .await
        .expect("confirm_session");
    (s, offered, confirmed)
}

/// Ledger rows per (order, version): how many sessions confirmed it.
async fn confirmations(conn: &mut PgConnection) -> Vec<(i64, i64, i64)> {
    sqlx::query_as(
        "SELECT order_id, version, COUNT(confirmed_at) FROM delivery_ledger \
         GROUP BY order_id, version ORDER BY order_id, version",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("ledger")
}

/// Two 1C sessions on two instances query the same orders at once and both say `success` at
/// once: every version is confirmed exactly once, nothing is lost; then the store changes some
/// orders and two sessions race again over the new versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_sessions_confirm_each_version_once() {
    let Some((a, b, _guard, mut conn)) = two_instances().await else {
        return;
    };
    let n = 300;
    let inputs: Vec<_> = (0..n).map(|i| order(&format!("S-{i:04}"))).collect();
    let ids: Vec<i64> = a
        .upsert_orders(&inputs, at(0))
        .await
        .expect("load")
        .iter()
        .map(|o| o.order().id)
        .collect();

    for round in 0..2 {
        let barrier = Arc::new(Barrier::new(2));
        let ta = tokio::spawn(run_session(
            Arc::clone(&a),
            Arc::clone(&barrier),
            10 * round,
        ));
        let tb = tokio::spawn(run_session(Arc::clone(&b), barrier, 10 * round + 5));
        let (sa, offered_a, confirmed_a) = ta.await.expect("session A");
        let (sb, offered_b, confirmed_b) = tb.await.expect("session B");
        assert_ne!(sa, sb);
        let expected = if round == 0 { n } else { n / 3 };
        // Both queried before either confirmed: each was offered everything that was due.
        assert_eq!(offered_a.len(), expected, "round {round}");
        assert_eq!(offered_a, offered_b, "round {round}");
        // Between them the two `success`es confirmed each offered version once.
        assert_eq!(
            confirmed_a + confirmed_b,
            expected as u64,
            "round {round}: {confirmed_a} + {confirmed_b}"
        );
        assert!(all_due(&*a, &statuses(), 100).await.is_empty());
        assert!(all_due(&*b, &statuses(), 100).await.is_empty());

        // The store changes every third order: version 2 (3 in the next round) is due again.
        for (i, input) in inputs.iter().enumerate().step_by(3) {
            let mut changed = input.clone();
            changed.comment = Some(format!("round {round}"));
            let outcome = b.upsert_order(&changed, at(10 * round + 8)).await.unwrap();
            assert!(matches!(outcome, UpsertOutcome::Updated(_)), "order {i}");
        }
    }

    // The ledger: every (order, version) that went out was confirmed exactly once.
    let ledger = confirmations(&mut conn).await;
    assert!(ledger.iter().all(|(_, _, c)| *c == 1), "{ledger:?}");
    let mut expected: Vec<(i64, i64, i64)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        expected.push((*id, 1, 1));
        if i % 3 == 0 {
            expected.push((*id, 2, 1));
        }
    }
    assert_eq!(ledger, expected);
    // Version 3 of every third order (the last store change) is still due: nothing lost.
    let due = all_due(&*a, &statuses(), 1000).await;
    assert_eq!(due.len(), n.div_ceil(3));
    assert!(due.iter().all(|(_, version)| *version == 3));
}

/// Many sessions, store edits and 1C updates at once on two instances: afterwards every order
/// is either confirmed at its current version or still due, and no version is confirmed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_store_writes_and_imports_race_without_loss() {
    let Some((a, b, _guard, mut conn)) = two_instances().await else {
        return;
    };
    let n = 120;
    let inputs: Vec<_> = (0..n).map(|i| order(&format!("R-{i:04}"))).collect();
    let ids: Vec<i64> = a
        .upsert_orders(&inputs, at(0))
        .await
        .unwrap()
        .iter()
        .map(|o| o.order().id)
        .collect();
    let mut tasks = Vec::new();
    for k in 0..6_i64 {
        let store = if k % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            let barrier = Arc::new(Barrier::new(1));
            run_session(store, barrier, k).await;
        }));
    }
    {
        let store = Arc::clone(&b);
        let inputs = inputs.clone();
        tasks.push(tokio::spawn(async move {
            for input in inputs.iter().step_by(2) {
                let mut changed = input.clone();
                changed.comment = Some("edited".to_owned());
                store.upsert_order(&changed, at(1)).await.unwrap();
            }
        }));
    }
    {
        let store = Arc::clone(&a);
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let updates: Vec<(i64, Update)> = ids
                .iter()
                .skip(1)
                .step_by(4)
                .map(|id| {
                    (
                        *id,
                        Update {
                            status: Some("P".to_owned()),
                            status_1c: Some("В работе".to_owned()),
                            ..Update::default()
                        },
                    )
                })
                .collect();
            let changed = store.apply_updates(&updates, at(2)).await.unwrap();
            assert!(changed.iter().all(|c| *c));
            // The same file again: a no-op.
            let again = store.apply_updates(&updates, at(3)).await.unwrap();
            assert!(again.iter().all(|c| !*c));
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let ledger = confirmations(&mut conn).await;
    assert!(ledger.iter().all(|(_, _, c)| *c <= 1), "{ledger:?}");
    let due = all_due(&*a, &statuses(), 1000).await;
    for (i, id) in ids.iter().enumerate() {
        let o = a.order_by_id(*id).await.unwrap().unwrap();
        let expected_version = if i % 2 == 0 { 2 } else { 1 };
        assert_eq!(o.version, expected_version, "order {i}");
        let confirmed_now = ledger
            .iter()
            .any(|(oid, v, c)| oid == id && *v == o.version && *c == 1);
        let is_due = due.iter().any(|(d, _)| d == id);
        match o.last_change_source {
            // Changed by 1C last: never due (no echo).
            Source::OneC => assert!(!is_due, "order {i}"),
            // Changed by the store last: due exactly when its version is not confirmed.
            Source::Store => assert_eq!(is_due, !confirmed_now, "order {i}"),
        }
    }
}

/// A 1C session continues on another instance: the cookie, upload chunks (appended through
/// both instances) and import progress are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_instances() {
    let Some((a, b, _guard, _conn)) = two_instances().await else {
        return;
    };
    let created = a
        .create_session(
            &NewSession {
                user: "1c".to_owned(),
                cookie: "shared-cookie".to_owned(),
                sessid: "shared-sessid".to_owned(),
            },
            at(0),
        )
        .await
        .unwrap();
    let mut seen = b.session_by_cookie("shared-cookie").await.unwrap().unwrap();
    assert_eq!(seen, created);
    seen.version = Some("3.1".to_owned());
    seen.zip = true;
    seen.last_seen_at = at(1);
    b.update_session(&seen).await.unwrap();
    assert_eq!(a.session_by_id(created.id).await.unwrap(), Some(seen));

    // A file in three chunks, alternating instances, two of them at the same time.
    assert_eq!(
        a.append_upload(created.id, "orders.xml", b"<a>")
            .await
            .unwrap(),
        3
    );
    let (x, y) = tokio::join!(
        b.append_upload(created.id, "orders.xml", b"1234"),
        a.append_upload(created.id, "orders.xml", b"5678"),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!((x.min(y), x.max(y)), (7, 11));
    let whole = b.read_upload(created.id, "orders.xml").await.unwrap();
    assert_eq!(whole.len(), 11);
    assert!(
        whole == b"<a>12345678" || whole == b"<a>56781234",
        "{whole:?}"
    );
    assert_eq!(a.upload_size(created.id, "orders.xml").await.unwrap(), 11);

    let progress = ImportProgress {
        position: 5,
        documents: 5,
        done: false,
        messages: vec!["Unknown status \"X\" for order 7".to_owned()],
    };
    a.set_import_progress(created.id, "orders.xml", &progress, at(2))
        .await
        .unwrap();
    assert_eq!(
        b.import_progress(created.id, "orders.xml").await.unwrap(),
        Some(progress)
    );
}

/// Two instances load the same new orders at once (a retried bulk import): each order exists
/// once, version 1, with one history entry; the loser sees `Unchanged`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bulk_loads_of_the_same_orders() {
    let Some((a, b, _guard, _conn)) = two_instances().await else {
        return;
    };
    let inputs: Vec<_> = (0..500).map(|i| order(&format!("D-{i:04}"))).collect();
    let (ra, rb) = tokio::join!(
        a.upsert_orders(&inputs, at(0)),
        b.upsert_orders(&inputs, at(0))
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        assert_eq!(x.order().id, y.order().id, "order {i}");
        assert!(
            x.is_created() != y.is_created(),
            "order {i}: exactly one load created it"
        );
        assert_eq!(x.order().version, 1);
        assert_eq!(y.order().version, 1);
    }
    let all = a.list_orders(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 500);
    assert!(all.iter().all(|o| o.version == 1 && o.history.len() == 1));
}

/// Push workers on two instances claim the outbox at once: every entry is leased to exactly one
/// worker, delivered once, and its version confirmed once in the ledger (so `query` no longer
/// offers it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_workers_on_two_instances_claim_each_entry_once() {
    let Some((a, b, _guard, mut conn)) = two_instances().await else {
        return;
    };
    for s in [&a, &b] {
        s.enable_outbox(Arc::new(tokio::sync::Notify::new()))
            .unwrap();
    }
    let n = 240;
    let inputs: Vec<_> = (0..n).map(|i| order(&format!("P-{i:04}"))).collect();
    a.upsert_orders(&inputs[..n / 2], at(0)).await.unwrap();
    for input in &inputs[n / 2..] {
        b.upsert_order(input, at(0)).await.unwrap();
    }
    let mut workers = Vec::new();
    for k in 0..4 {
        let store = if k % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_due(at(1), 9, std::time::Duration::from_secs(300))
                    .await
                    .expect("claim_due");
                if claimed.is_empty() {
                    break;
                }
                for entry in claimed {
                    assert_eq!(entry.attempts, 1, "{entry:?}");
                    assert!(store.mark_delivered(entry.id, at(2)).await.unwrap());
                    mine.push(entry.id);
                }
            }
            mine
        }));
    }
    let mut claimed: Vec<i64> = Vec::new();
    for w in workers {
        claimed.extend(w.await.expect("worker"));
    }
    claimed.sort_unstable();
    let total = claimed.len();
    claimed.dedup();
    assert_eq!(total, n, "each entry claimed once");
    assert_eq!(claimed.len(), n);
    let delivered = a
        .list_outbox(&store::OutboxFilter {
            state: Some(store::OutboxState::Delivered),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), n);
    // A second acknowledgement changes nothing.
    assert!(!b.mark_delivered(delivered[0].id, at(3)).await.unwrap());
    // Delivered by push = confirmed once in the ledger, so the exchange offers nothing.
    let ledger = confirmations(&mut conn).await;
    assert_eq!(ledger.len(), n);
    assert!(ledger.iter().all(|(_, v, c)| *v == 1 && *c == 1));
    assert!(all_due(&*a, &statuses(), 100).await.is_empty());
    assert_eq!(a.outbox_next_due().await.unwrap(), None);
}

/// A lease that expires (its worker died) makes the entry claimable by another instance; a
/// newer version or a confirmation by the exchange makes an entry obsolete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_leases_expire_and_stale_versions_are_not_pushed() {
    let Some((a, b, _guard, _conn)) = two_instances().await else {
        return;
    };
    a.enable_outbox(Arc::new(tokio::sync::Notify::new()))
        .unwrap();
    let lease = std::time::Duration::from_secs(60);
    let first = a.upsert_order(&order("L-1"), at(0)).await.unwrap();
    let claimed = a.claim_due(at(1), 10, lease).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].order_id, first.order().id);
    // Leased: nobody else gets it until the lease ends.
    assert!(b.claim_due(at(1), 10, lease).await.unwrap().is_empty());
    assert_eq!(a.outbox_next_due().await.unwrap(), Some(at(2)));
    let again = b.claim_due(at(2), 10, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[0].id);
    assert_eq!(again[0].attempts, 2);
    b.mark_retry(again[0].id, at(5), "503 from 1C")
        .await
        .unwrap();
    assert!(a.claim_due(at(4), 10, lease).await.unwrap().is_empty());

    // The store changes the order: version 2 gets its own entry, version 1 becomes obsolete.
    let mut changed = order("L-1");
    changed.comment = Some("v2".to_owned());
    a.upsert_order(&changed, at(6)).await.unwrap();
    // The exchange delivers and confirms version 2 before the push worker runs.
    let s = new_session(&*b, 7).await;
    b.record_offered(s, &[(first.order().id, 2)], at(7))
        .await
        .unwrap();
    assert_eq!(b.confirm_session(s, at(8)).await.unwrap(), 1);
    assert!(a.claim_due(at(9), 10, lease).await.unwrap().is_empty());
    let all = a.list_outbox(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .all(|e| e.state == store::OutboxState::Obsolete && e.last_error.is_some()));
    // Obsolete entries are not re-queued; an unknown id is NotFound.
    assert!(matches!(
        a.requeue(all[0].id, at(10)).await,
        Err(store::Error::Conflict(_))
    ));
    assert!(matches!(
        a.requeue(9_999, at(10)).await,
        Err(store::Error::NotFound)
    ));
}

/// Webhook workers of two instances on one database claim each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_workers_on_two_instances_claim_each_event_once() {
    let Some((a, b, _guard, _conn)) = two_instances().await else {
        return;
    };
    for s in [&a, &b] {
        s.enable_webhook_events(Arc::new(tokio::sync::Notify::new()))
            .unwrap();
    }
    let n = 200;
    let inputs: Vec<_> = (0..n).map(|i| order(&format!("WH-{i:04}"))).collect();
    let ids: Vec<i64> = a
        .upsert_orders(&inputs, at(0))
        .await
        .unwrap()
        .iter()
        .map(|o| o.order().id)
        .collect();
    let update = Update {
        status: Some("P".to_owned()),
        status_1c: Some("В работе".to_owned()),
        ..Update::default()
    };
    // Half the changes arrive at one instance, half at the other.
    let batch: Vec<_> = ids[..n / 2]
        .iter()
        .map(|id| (*id, update.clone()))
        .collect();
    a.apply_updates(&batch, at(1)).await.unwrap();
    for id in &ids[n / 2..] {
        b.apply_update(*id, &update, at(1)).await.unwrap();
    }
    let mut workers = Vec::new();
    for k in 0..4 {
        let store = if k % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_webhook_events(at(2), 9, std::time::Duration::from_secs(300))
                    .await
                    .expect("claim_webhook_events");
                if claimed.is_empty() {
                    break;
                }
                for event in claimed {
                    assert_eq!(event.attempts, 1, "{event:?}");
                    assert!(store.mark_webhook_delivered(event.id, at(3)).await.unwrap());
                    mine.push(event.id);
                }
            }
            mine
        }));
    }
    let mut claimed: Vec<i64> = Vec::new();
    for w in workers {
        claimed.extend(w.await.expect("worker"));
    }
    claimed.sort_unstable();
    let total = claimed.len();
    claimed.dedup();
    assert_eq!(total, n, "each event claimed once");
    assert_eq!(claimed.len(), n);
    let events = b.webhook_events(0, 10_000).await.unwrap();
    assert_eq!(events.len(), n);
    assert!(events.iter().all(|e| e.is_delivered() && e.attempts == 1));
    assert_eq!(a.webhook_next_due().await.unwrap(), None);
}
