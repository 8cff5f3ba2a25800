//! The push outbox contract, written against the trait (`outbox_*` functions take any store),
//! run here on a real SQLite file. A backend joins by calling the same functions.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use exchange::domain::{Customer, Item, OrderInput};
use rust_decimal::Decimal;
use store::{Error, NewSession, OutboxFilter, OutboxState, Store, PUSH_LEDGER_SESSION};
use tempfile::TempDir;
use tokio::sync::Notify;

const LEASE: Duration = Duration::from_secs(30);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::seconds(seconds)
}

fn order(number: &str) -> OrderInput {
    OrderInput {
        number: number.to_owned(),
        created_at: None,
        status: None,
        currency: Some("RUB".to_owned()),
        customer: Customer {
            name: Some("Ivan Petrov".to_owned()),
            ..Customer::default()
        },
        delivery: None,
        payment: None,
        items: vec![Item {
            sku: Some("SKU-1".to_owned()),
            id_1c: None,
            name: "Kettle".to_owned(),
            quantity: Decimal::from(2),
            unit: None,
            price: Decimal::new(149_990, 2),
            discount: None,
            vat_rate: None,
        }],
        discounts: Vec::new(),
        comment: None,
        properties: Default::default(),
    }
}

fn statuses() -> Vec<String> {
    vec!["N".to_owned(), "P".to_owned()]
}

async fn due(store: &dyn Store) -> Vec<(String, i64)> {
    store
        .orders_due(&statuses(), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.input.number, o.version))
        .collect()
}

async fn list(store: &dyn Store, state: Option<OutboxState>) -> Vec<store::OutboxEntry> {
    store
        .list_outbox(&OutboxFilter {
            state,
            ..OutboxFilter::default()
        })
        .await
        .unwrap()
}

async fn fresh() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("obmen.db");
    let store = store::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open SQLite store");
    (store, dir)
}

async fn enabled() -> (Arc<dyn Store>, Arc<Notify>, TempDir) {
    let (store, dir) = fresh().await;
    let wake = Arc::new(Notify::new());
    store.enable_outbox(Arc::clone(&wake)).unwrap();
    (store, wake, dir)
}

// ----- the contract -----

pub async fn outbox_enqueues_created_and_changed_orders_only_when_enabled(store: &dyn Store) {
    store.upsert_order(&order("before"), at(0)).await.unwrap();
    let wake = Arc::new(Notify::new());
    store.enable_outbox(Arc::clone(&wake)).unwrap();
    assert!(
        list(store, None).await.is_empty(),
        "nothing before enabling"
    );

    store.upsert_order(&order("A-1"), at(1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), wake.notified())
        .await
        .expect("the commit wakes the worker");
    let entries = list(store, None).await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!((e.order_number.as_str(), e.version), ("A-1", 1));
    assert_eq!(e.idempotency_key, "A-1:1");
    assert_eq!(e.state, OutboxState::Pending);
    assert_eq!(e.attempts, 0);
    assert_eq!(e.next_attempt_at, at(1));
    assert_eq!(e.created_at, at(1));

    // A replayed POST writes nothing; a changed body enqueues the new version.
    store.upsert_order(&order("A-1"), at(2)).await.unwrap();
    assert_eq!(list(store, None).await.len(), 1);
    let mut changed = order("A-1");
    changed.comment = Some("call first".to_owned());
    store.upsert_order(&changed, at(3)).await.unwrap();
    let keys: Vec<String> = list(store, None)
        .await
        .into_iter()
        .map(|e| e.idempotency_key)
        .collect();
    assert_eq!(keys, ["A-1:1", "A-1:2"]);

    // A bulk load enqueues its created and changed orders, not the unchanged ones.
    let mut again = changed.clone();
    again.comment = Some("call twice".to_owned());
    store
        .upsert_orders(&[order("B-1"), changed.clone(), again, order("B-2")], at(4))
        .await
        .unwrap();
    let keys: Vec<String> = list(store, None)
        .await
        .into_iter()
        .map(|e| e.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    for k in ["B-1:1", "A-1:3", "B-2:1"] {
        assert!(keys.iter().any(|x| x == k), "{k} missing in {keys:?}");
    }
}

pub async fn outbox_claims_lease_and_expire(store: &dyn Store) {
    for n in ["C-1", "C-2", "C-3"] {
        store.upsert_order(&order(n), at(0)).await.unwrap();
    }
    let first = store.claim_due(at(1), 2, LEASE).await.unwrap();
    let numbers: Vec<&str> = first.iter().map(|e| e.order_number.as_str()).collect();
    assert_eq!(numbers, ["C-1", "C-2"]);
    assert!(first.iter().all(|e| e.attempts == 1));
    assert_eq!(first[0].leased_until, Some(at(31)));
    // Leased entries are not claimed again before the lease ends.
    let second = store.claim_due(at(2), 10, LEASE).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].order_number, "C-3");
    assert!(store.claim_due(at(3), 10, LEASE).await.unwrap().is_empty());
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(at(31)));
    // A crashed worker's claims expire and count as attempts.
    let again = store.claim_due(at(31), 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|e| e.attempts == 2));
    assert!(store.claim_due(at(0), 10, LEASE).await.unwrap().is_empty());
}

pub async fn outbox_delivery_confirms_the_version_in_the_ledger(store: &dyn Store) {
    store.upsert_order(&order("D-1"), at(0)).await.unwrap();
    store.upsert_order(&order("D-2"), at(0)).await.unwrap();
    assert_eq!(due(store).await.len(), 2);
    let claimed = store.claim_due(at(1), 10, LEASE).await.unwrap();
    let d1 = claimed.iter().find(|e| e.order_number == "D-1").unwrap();
    assert!(store.mark_delivered(d1.id, at(2)).await.unwrap());
    // Acknowledged twice: the state is as after the first.
    assert!(!store.mark_delivered(d1.id, at(3)).await.unwrap());
    assert_eq!(due(store).await, [("D-2".to_owned(), 1)]);
    let delivered = list(store, Some(OutboxState::Delivered)).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].delivered_at, Some(at(2)));
    assert_eq!(delivered[0].leased_until, None);
    assert!(matches!(
        store.mark_delivered(9_999, at(2)).await,
        Err(Error::NotFound)
    ));

    // A later change is due again and pushed again under a new key.
    let mut changed = order("D-1");
    changed.status = Some("P".to_owned());
    store.upsert_order(&changed, at(4)).await.unwrap();
    assert!(due(store).await.contains(&("D-1".to_owned(), 2)));
    let next = store.claim_due(at(5), 10, LEASE).await.unwrap();
    assert!(next.iter().any(|e| e.idempotency_key == "D-1:2"));

    // An exchange session that offers version 1 again cannot confirm it a second time.
    let s = store
        .create_session(
            &NewSession {
                user: "1c".into(),
                cookie: "cookie-d".into(),
                sessid: "s".into(),
            },
            at(6),
        )
        .await
        .unwrap();
    store
        .record_offered(s.id, &[(d1.order_id, 1)], at(6))
        .await
        .unwrap();
    assert_eq!(store.confirm_session(s.id, at(7)).await.unwrap(), 0);
    assert!(PUSH_LEDGER_SESSION < s.id);
}

/// The push worker's group commit: many acknowledgements in one call, each with its own time.
pub async fn outbox_batch_delivery_confirms_each_version(store: &dyn Store) {
    for n in ["G-1", "G-2", "G-3"] {
        store.upsert_order(&order(n), at(0)).await.unwrap();
    }
    // G-3 changes before its first version is acknowledged: both versions are in the outbox.
    let mut changed = order("G-3");
    changed.status = Some("P".to_owned());
    store.upsert_order(&changed, at(0)).await.unwrap();
    let claimed = store.claim_due(at(1), 10, LEASE).await.unwrap();
    let id = |key: &str| {
        claimed
            .iter()
            .find(|e| e.idempotency_key == key)
            .unwrap()
            .id
    };
    let (g1, g2, g3) = (id("G-1:1"), id("G-2:1"), id("G-3:2"));
    assert!(store.mark_delivered(g2, at(2)).await.unwrap());

    // New, already delivered, unknown, new: one answer each, in order.
    let changed = store
        .mark_delivered_many(&[(g1, at(3)), (g2, at(4)), (9_999, at(4)), (g3, at(5))])
        .await
        .unwrap();
    assert_eq!(changed, [true, false, false, true]);
    assert!(store.mark_delivered_many(&[]).await.unwrap().is_empty());

    let delivered = list(store, Some(OutboxState::Delivered)).await;
    let when = |entry: i64| {
        delivered
            .iter()
            .find(|e| e.id == entry)
            .unwrap()
            .delivered_at
    };
    assert_eq!(when(g1), Some(at(3)));
    assert_eq!(
        when(g2),
        Some(at(2)),
        "a second acknowledgement changes nothing"
    );
    assert_eq!(when(g3), Some(at(5)));
    // Every acknowledged version is confirmed: nothing is due for the scheduled exchange.
    assert!(due(store).await.is_empty());
    // And a session cannot confirm those versions a second time.
    let s = store
        .create_session(
            &NewSession {
                user: "1c".into(),
                cookie: "cookie-g".into(),
                sessid: "s".into(),
            },
            at(6),
        )
        .await
        .unwrap();
    let g3_order = claimed.iter().find(|e| e.id == g3).unwrap().order_id;
    store
        .record_offered(s.id, &[(g3_order, 2)], at(6))
        .await
        .unwrap();
    assert_eq!(store.confirm_session(s.id, at(7)).await.unwrap(), 0);
}

pub async fn outbox_skips_versions_the_exchange_confirmed(store: &dyn Store) {
    store.upsert_order(&order("E-1"), at(0)).await.unwrap();
    store.upsert_order(&order("E-2"), at(0)).await.unwrap();
    // 1C fetches both with query and says success before the worker claims anything.
    let s = store
        .create_session(
            &NewSession {
                user: "1c".into(),
                cookie: "cookie-e".into(),
                sessid: "s".into(),
            },
            at(1),
        )
        .await
        .unwrap();
    let offered: Vec<(i64, i64)> = store
        .orders_due(&statuses(), 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|o| (o.id, o.version))
        .collect();
    store.record_offered(s.id, &offered, at(1)).await.unwrap();
    assert_eq!(store.confirm_session(s.id, at(2)).await.unwrap(), 2);
    assert!(store.claim_due(at(3), 10, LEASE).await.unwrap().is_empty());
    let obsolete = list(store, Some(OutboxState::Obsolete)).await;
    assert_eq!(obsolete.len(), 2);
    assert!(obsolete[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("scheduled exchange"));
    assert_eq!(store.outbox_next_due().await.unwrap(), None);

    // A version replaced before it went out is not sent; the newest is.
    store.upsert_order(&order("E-3"), at(4)).await.unwrap();
    let mut changed = order("E-3");
    changed.comment = Some("v2".into());
    store.upsert_order(&changed, at(5)).await.unwrap();
    let claimed = store.claim_due(at(6), 10, LEASE).await.unwrap();
    let keys: Vec<&str> = claimed.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["E-3:2"]);
    assert!(matches!(
        store.requeue(obsolete[0].id, at(7)).await,
        Err(Error::Conflict(_))
    ));
}

pub async fn outbox_retries_dead_letters_and_requeues(store: &dyn Store) {
    store.upsert_order(&order("F-1"), at(0)).await.unwrap();
    let e = store.claim_due(at(1), 10, LEASE).await.unwrap().remove(0);
    store.mark_retry(e.id, at(10), "HTTP 503").await.unwrap();
    assert!(store.claim_due(at(9), 10, LEASE).await.unwrap().is_empty());
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(at(10)));
    let e = store.claim_due(at(10), 10, LEASE).await.unwrap().remove(0);
    assert_eq!(e.attempts, 2);
    assert_eq!(e.last_error.as_deref(), Some("HTTP 503"));

    store.mark_dead(e.id, "HTTP 400: bad order").await.unwrap();
    let dead = list(store, Some(OutboxState::Dead)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 400: bad order"));
    assert!(store
        .claim_due(at(100), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox_next_due().await.unwrap(), None);
    // The failed push leaves the order to the scheduled exchange.
    assert_eq!(due(store).await, [("F-1".to_owned(), 1)]);

    let back = store.requeue(e.id, at(200)).await.unwrap();
    assert_eq!(back.state, OutboxState::Pending);
    assert_eq!(back.attempts, 0);
    assert_eq!(back.next_attempt_at, at(200));
    let again = store.claim_due(at(200), 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert!(store.mark_delivered(e.id, at(201)).await.unwrap());
    assert!(due(store).await.is_empty());
    assert!(matches!(
        store.requeue(e.id, at(202)).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.requeue(12_345, at(202)).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.mark_retry(12_345, at(202), "x").await,
        Err(Error::NotFound)
    ));
    // A late failure report of a delivered entry changes nothing.
    store.mark_dead(e.id, "late").await.unwrap();
    assert_eq!(list(store, Some(OutboxState::Delivered)).await.len(), 1);
}

// ----- SQLite -----

#[tokio::test]
async fn sqlite_enqueues_created_and_changed_orders_only_when_enabled() {
    let (store, _dir) = fresh().await;
    outbox_enqueues_created_and_changed_orders_only_when_enabled(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_claims_lease_and_expire() {
    let (store, _wake, _dir) = enabled().await;
    outbox_claims_lease_and_expire(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_delivery_confirms_the_version_in_the_ledger() {
    let (store, _wake, _dir) = enabled().await;
    outbox_delivery_confirms_the_version_in_the_ledger(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_batch_delivery_confirms_each_version() {
    let (store, _wake, _dir) = enabled().await;
    outbox_batch_delivery_confirms_each_version(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_skips_versions_the_exchange_confirmed() {
    let (store, _wake, _dir) = enabled().await;
    outbox_skips_versions_the_exchange_confirmed(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_retries_dead_letters_and_requeues() {
    let (store, _wake, _dir) = enabled().await;
    outbox_retries_dead_letters_and_requeues(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_outbox_survives_reopen_and_concurrent_claims_never_overlap() {
    let (store, _wake, dir) = enabled().await;
    let inputs: Vec<OrderInput> = (0..200).map(|i| order(&format!("G-{i}"))).collect();
    store.upsert_orders(&inputs, at(0)).await.unwrap();
    drop(store);
    // A second process on the same file (two handles) after a restart.
    let path = dir.path().join("obmen.db");
    let a = store::open(path.to_str().unwrap()).await.unwrap();
    let b = store::open(path.to_str().unwrap()).await.unwrap();
    let mut tasks = Vec::new();
    for s in [a, b] {
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_due(at(1), 7, LEASE).await.unwrap();
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
    let before = all.len();
    all.dedup();
    assert_eq!(before, 200, "every entry claimed");
    assert_eq!(all.len(), 200, "no entry claimed twice");
}

#[tokio::test]
async fn sqlite_disabled_outbox_writes_nothing() {
    let (store, _dir) = fresh().await;
    store.upsert_order(&order("H-1"), at(0)).await.unwrap();
    store
        .upsert_orders(&[order("H-2"), order("H-3")], at(0))
        .await
        .unwrap();
    assert!(list(store.as_ref(), None).await.is_empty());
    assert!(store.claim_due(at(1), 10, LEASE).await.unwrap().is_empty());
}

// ----- PostgreSQL (when OBMEN_TEST_POSTGRES_URL is set; see tests/pg) -----

#[allow(dead_code)]
mod pg;

async fn pg_enabled() -> Option<(Arc<dyn Store>, pg::SchemaGuard)> {
    let (store, guard) = pg::fresh().await?;
    store.enable_outbox(Arc::new(Notify::new())).unwrap();
    Some((store, guard))
}

#[tokio::test]
async fn pg_enqueues_created_and_changed_orders_only_when_enabled() {
    let Some((store, _guard)) = pg::fresh().await else {
        return;
    };
    outbox_enqueues_created_and_changed_orders_only_when_enabled(store.as_ref()).await;
}

#[tokio::test]
async fn pg_claims_lease_and_expire() {
    let Some((store, _guard)) = pg_enabled().await else {
        return;
    };
    outbox_claims_lease_and_expire(store.as_ref()).await;
}

#[tokio::test]
async fn pg_delivery_confirms_the_version_in_the_ledger() {
    let Some((store, _guard)) = pg_enabled().await else {
        return;
    };
    outbox_delivery_confirms_the_version_in_the_ledger(store.as_ref()).await;
}

#[tokio::test]
async fn pg_batch_delivery_confirms_each_version() {
    let Some((store, _guard)) = pg_enabled().await else {
        return;
    };
    outbox_batch_delivery_confirms_each_version(store.as_ref()).await;
}

#[tokio::test]
async fn pg_skips_versions_the_exchange_confirmed() {
    let Some((store, _guard)) = pg_enabled().await else {
        return;
    };
    outbox_skips_versions_the_exchange_confirmed(store.as_ref()).await;
}

#[tokio::test]
async fn pg_retries_dead_letters_and_requeues() {
    let Some((store, _guard)) = pg_enabled().await else {
        return;
    };
    outbox_retries_dead_letters_and_requeues(store.as_ref()).await;
}

// ----- the hand-off and the group commit -----

/// With a hand-off, `upsert_order` enqueues the entry leased to this process and sends it with
/// the order version; the claims skip it until the lease ends (a crashed worker loses nothing).
/// With every slot taken, the next entry is enqueued unleased, claimable at once, and the
/// worker is woken.
pub async fn outbox_hands_off_leased_entries_while_slots_are_free(
    store: &dyn Store,
    wake: Arc<Notify>,
) {
    let (handoff, mut leased) = store::Handoff::new(1, LEASE);
    store.enable_outbox_handoff(handoff).unwrap();

    let written = store.upsert_order(&order("H-1"), at(0)).await.unwrap();
    let first = leased.try_recv().expect("the entry is handed off");
    assert_eq!(first.entry.order_number, "H-1");
    assert_eq!(first.entry.version, 1);
    assert_eq!(first.entry.attempts, 1);
    assert_eq!(first.entry.leased_until, Some(at(30)));
    assert_eq!(first.entry.idempotency_key, "H-1:1");
    assert_eq!(first.order.id, written.order().id);
    assert_eq!(first.order.input.number, "H-1");
    let stored = list(store, None).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], first.entry);
    assert!(store.claim_due(at(1), 10, LEASE).await.unwrap().is_empty());

    // The one slot is held by `first`: the next order is left to the claims.
    let woken = wake.notified();
    store.upsert_order(&order("H-2"), at(2)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("the worker is woken for an unleased entry");
    assert!(leased.try_recv().is_err());
    let claimed = store.claim_due(at(3), 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].order_number, "H-2");

    // Dropping the handed-off entry frees its slot; its lease still runs until it ends.
    drop(first);
    store.upsert_order(&order("H-3"), at(4)).await.unwrap();
    assert_eq!(leased.try_recv().unwrap().entry.order_number, "H-3");
    let expired = store.claim_due(at(31), 10, LEASE).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].order_number, "H-1");
    assert_eq!(expired[0].attempts, 2);
    // Bulk loads are never handed off.
    store
        .upsert_orders(&[order("H-4"), order("H-5")], at(5))
        .await
        .unwrap();
    assert!(leased.try_recv().is_err());
}

#[tokio::test]
async fn sqlite_hands_off_leased_entries_while_slots_are_free() {
    let (store, wake, _dir) = enabled().await;
    outbox_hands_off_leased_entries_while_slots_are_free(store.as_ref(), wake).await;
}

#[tokio::test]
async fn pg_hands_off_leased_entries_while_slots_are_free() {
    let Some((store, _guard)) = pg::fresh().await else {
        return;
    };
    let wake = Arc::new(Notify::new());
    store.enable_outbox(Arc::clone(&wake)).unwrap();
    outbox_hands_off_leased_entries_while_slots_are_free(store.as_ref(), wake).await;
}

/// Concurrent single-order writes share transactions (the group commit) and each caller still
/// gets the outcome of its own order: creations, changes of an order written twice in a row,
/// unchanged repeats, and errors, with every version enqueued once.
pub async fn outbox_concurrent_writes_each_get_their_own_outcome(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..200usize {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Orders G-0..G-99, each written with one line, then with two lines.
            let n = i % 100;
            let mut input = order(&format!("G-{n:03}"));
            if i >= 100 {
                input.items.push(input.items[0].clone());
            }
            let outcome = store.upsert_order(&input, at(0)).await.unwrap();
            (n, outcome)
        }));
    }
    let mut created = 0;
    let mut updated = 0;
    for task in tasks {
        let (n, outcome) = task.await.unwrap();
        assert_eq!(outcome.order().input.number, format!("G-{n:03}"));
        match outcome {
            store::UpsertOutcome::Created(o) => {
                created += 1;
                assert_eq!(o.version, 1);
            }
            store::UpsertOutcome::Updated(o) => {
                updated += 1;
                assert_eq!(o.version, 2);
            }
            store::UpsertOutcome::Unchanged(_) => panic!("nothing was written twice"),
        }
    }
    assert_eq!((created, updated), (100, 100));
    for n in 0..100 {
        let o = store
            .order_by_number(&format!("G-{n:03}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.version, 2);
    }
    assert_eq!(list(store.as_ref(), None).await.len(), 200);
    // A repeat of the last body is unchanged; a bad order fails alone, beside it.
    let mut same = order("G-000");
    same.items.push(same.items[0].clone());
    store.upsert_order(&same, at(1)).await.unwrap();
    let blank = order(" ");
    let (repeat, bad) = tokio::join!(
        store.upsert_order(&same, at(1)),
        store.upsert_order(&blank, at(1))
    );
    assert!(matches!(
        repeat.unwrap(),
        store::UpsertOutcome::Unchanged(_)
    ));
    assert!(matches!(bad, Err(Error::Invalid(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writes_each_get_their_own_outcome() {
    let (store, _wake, _dir) = enabled().await;
    outbox_concurrent_writes_each_get_their_own_outcome(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_concurrent_writes_each_get_their_own_outcome() {
    let Some((store, _guard)) = pg_enabled().await else {
        return;
    };
    outbox_concurrent_writes_each_get_their_own_outcome(store).await;
}

pub async fn outbox_order_version_follows_the_writes(store: &dyn Store) {
    assert_eq!(store.order_version(1).await.unwrap(), None);
    let id = store
        .upsert_order(&order("V-1"), at(0))
        .await
        .unwrap()
        .order()
        .id;
    assert_eq!(store.order_version(id).await.unwrap(), Some(1));
    let mut changed = order("V-1");
    changed.items[0].quantity = Decimal::from(3);
    store.upsert_order(&changed, at(1)).await.unwrap();
    assert_eq!(store.order_version(id).await.unwrap(), Some(2));
    assert_eq!(store.order_version(id + 1000).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_order_version_follows_the_writes() {
    let (store, _dir) = fresh().await;
    outbox_order_version_follows_the_writes(store.as_ref()).await;
}

#[tokio::test]
async fn pg_order_version_follows_the_writes() {
    let Some((store, _guard)) = pg::fresh().await else {
        return;
    };
    outbox_order_version_follows_the_writes(store.as_ref()).await;
}
