//! The contract of [`store::Store`], written against the trait only, so every backend runs the
//! same suite (SQLite in `contract.rs`; PostgreSQL joins when issue 6 lands).
//!
//! Every function takes a fresh, empty store (`$fresh().await` in [`contract_tests!`] returns the
//! store and a guard that keeps its database alive, e.g. a temporary directory).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use exchange::domain::{Customer, Item, Order, OrderInput, Payment, Source, StatusChange};
use rust_decimal::Decimal;
use store::{
    Error, ImportProgress, JournalEntry, NewSession, OrderFilter, Store, Update, UpsertOutcome,
    WebhookEvent,
};
use tokio::sync::Notify;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A tag unique within this process (and, with the pid, across runs on a shared database).
pub fn tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fixed instant plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
        .single()
        .expect("valid date")
        + Duration::minutes(minutes)
}

/// A small order.
pub fn order(number: &str) -> OrderInput {
    OrderInput {
        number: number.to_owned(),
        created_at: None,
        status: None,
        currency: Some("RUB".to_owned()),
        customer: Customer {
            name: Some("Иван Петров".to_owned()),
            email: Some("ivan@example.com".to_owned()),
            ..Customer::default()
        },
        delivery: None,
        payment: Some(Payment {
            method: Some("card".to_owned()),
            paid: false,
        }),
        items: vec![Item {
            sku: Some("SKU-1".to_owned()),
            id_1c: None,
            name: "Чайник".to_owned(),
            quantity: Decimal::from(2),
            unit: None,
            price: Decimal::new(149_990, 2),
            discount: None,
            vat_rate: Some(Decimal::from(20)),
        }],
        discounts: Vec::new(),
        comment: None,
        properties: Default::default(),
    }
}

fn statuses() -> Vec<String> {
    vec!["N".to_owned(), "P".to_owned()]
}

/// Every order due at these statuses, following the pages.
pub async fn all_due(store: &dyn Store, statuses: &[String], page: u32) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let orders = store
            .orders_due(statuses, after, page)
            .await
            .expect("orders_due");
        assert!(orders.len() <= page as usize, "page larger than the limit");
        let Some(last) = orders.last() else { break };
        after = last.id;
        out.extend(orders.iter().map(|o| (o.id, o.version)));
    }
    out
}

async fn is_due(store: &dyn Store, id: i64) -> bool {
    all_due(store, &statuses(), 100)
        .await
        .iter()
        .any(|(due, _)| *due == id)
}

fn status_update(status: &str, name: &str) -> Update {
    Update {
        status: Some(status.to_owned()),
        status_1c: Some(name.to_owned()),
        ..Update::default()
    }
}

async fn session(store: &dyn Store, minutes: i64) -> i64 {
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

/// The whole life of an order through the trait.
pub async fn order_story(store: Arc<dyn Store>) {
    let store = &*store;
    let number = format!("A-{}", tag());
    let input = order(&number);

    // Created: version 1, from the store, status N with one history entry.
    let created = store.upsert_order(&input, at(0)).await.expect("create");
    let UpsertOutcome::Created(first) = created else {
        panic!("expected Created, got {created:?}")
    };
    assert_eq!(first.version, 1);
    assert_eq!(first.input.status_code(), "N");
    assert_eq!(first.input.created_at, Some(at(0)));
    assert_eq!(first.last_change_source, Source::Store);
    assert_eq!(
        first.history,
        vec![StatusChange {
            status: "N".to_owned(),
            source: Source::Store,
            at: at(0)
        }]
    );
    let id = first.id;
    assert_eq!(
        store.order_by_number(&number).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.order_by_id(id).await.unwrap(), Some(first.clone()));

    // The same body again: nothing written.
    let again = store.upsert_order(&input, at(1)).await.expect("replay");
    assert_eq!(again, UpsertOutcome::Unchanged(first.clone()));
    assert_eq!(store.order_by_id(id).await.unwrap(), Some(first.clone()));

    // A different body: version 2, same id, same status, no new history entry.
    let mut changed = input.clone();
    changed.comment = Some("call before delivery".to_owned());
    let updated = store.upsert_order(&changed, at(2)).await.expect("update");
    let UpsertOutcome::Updated(second) = updated else {
        panic!("expected Updated, got {updated:?}")
    };
    assert_eq!(second.id, id);
    assert_eq!(second.version, 2);
    assert_eq!(second.updated_at, at(2));
    assert_eq!(
        second.input.created_at,
        Some(at(0)),
        "creation time is kept"
    );
    assert_eq!(
        second.input.comment.as_deref(),
        Some("call before delivery")
    );
    assert_eq!(second.history.len(), 1);
    assert_eq!(store.order_by_id(id).await.unwrap(), Some(second.clone()));

    // Due at version 2; offered but unconfirmed it stays due (query is repeatable).
    assert_eq!(all_due(store, &statuses(), 10).await, vec![(id, 2)]);
    let s1 = session(store, 3).await;
    store.record_offered(s1, &[(id, 2)], at(3)).await.unwrap();
    store.record_offered(s1, &[(id, 2)], at(3)).await.unwrap();
    assert_eq!(all_due(store, &statuses(), 10).await, vec![(id, 2)]);

    // Confirmed at success: no longer due; a second success confirms nothing more.
    assert_eq!(store.confirm_session(s1, at(4)).await.unwrap(), 1);
    assert!(all_due(store, &statuses(), 10).await.is_empty());
    assert_eq!(store.confirm_session(s1, at(5)).await.unwrap(), 0);

    // The store changes the status: due again at version 3, history records it.
    let mut accepted = changed.clone();
    accepted.status = Some("P".to_owned());
    let third = store
        .upsert_order(&accepted, at(6))
        .await
        .unwrap()
        .into_order();
    assert_eq!(third.version, 3);
    assert_eq!(third.input.status_code(), "P");
    assert_eq!(
        third.history.last(),
        Some(&StatusChange {
            status: "P".to_owned(),
            source: Source::Store,
            at: at(6)
        })
    );
    assert_eq!(all_due(store, &statuses(), 10).await, vec![(id, 3)]);

    // 1C changes it: not sent back (echo suppression), version unchanged.
    let update = Update {
        paid: Some(true),
        number_1c: Some("УТ-000017".to_owned()),
        ..status_update("P", "В работе")
    };
    assert!(store.apply_update(id, &update, at(7)).await.unwrap());
    assert!(all_due(store, &statuses(), 10).await.is_empty());
    let fourth = store.order_by_id(id).await.unwrap().unwrap();
    assert_eq!(fourth.version, 3);
    assert_eq!(fourth.last_change_source, Source::OneC);
    assert!(fourth.paid);
    assert_eq!(fourth.number_1c.as_deref(), Some("УТ-000017"));
    assert_eq!(fourth.status_1c.as_deref(), Some("В работе"));
    assert_eq!(fourth.updated_at, at(7));
    assert_eq!(
        fourth.history.len(),
        2,
        "status did not change: no history entry"
    );

    // 1C moves the status on: one history entry with source 1c.
    let ready = status_update("D", "Готов к отгрузке");
    assert!(store.apply_update(id, &ready, at(8)).await.unwrap());
    let fifth = store.order_by_id(id).await.unwrap().unwrap();
    assert_eq!(fifth.input.status_code(), "D");
    assert_eq!(
        fifth.history.last(),
        Some(&StatusChange {
            status: "D".to_owned(),
            source: Source::OneC,
            at: at(8)
        })
    );

    // The same update again: nothing changes, no second history entry, updated_at kept.
    assert!(!store.apply_update(id, &ready, at(9)).await.unwrap());
    let facts = Update {
        status: None,
        status_1c: None,
        ..update.clone()
    };
    assert!(!store.apply_update(id, &facts, at(9)).await.unwrap());
    assert_eq!(store.order_by_id(id).await.unwrap(), Some(fifth.clone()));

    // The store replays its last body: unchanged, 1C's status stays.
    let replay = store.upsert_order(&accepted, at(10)).await.unwrap();
    assert_eq!(replay, UpsertOutcome::Unchanged(fifth.clone()));

    // The store edits the order without touching its status: 1C's status and paid flag stay,
    // the order is due again (status D is not exported by default, so ask for D).
    let mut edited = accepted.clone();
    edited.comment = Some("leave at the door".to_owned());
    let sixth = store
        .upsert_order(&edited, at(11))
        .await
        .unwrap()
        .into_order();
    assert_eq!(sixth.version, 4);
    assert_eq!(sixth.input.status_code(), "D");
    assert!(sixth.paid, "paid set by 1C stays");
    assert_eq!(sixth.last_change_source, Source::Store);
    assert_eq!(sixth.history.len(), 3);
    assert!(all_due(store, &statuses(), 10).await.is_empty());
    assert_eq!(all_due(store, &["D".to_owned()], 10).await, vec![(id, 4)]);
}

/// A `query` without `success` is repeatable; what is confirmed is the version that went out.
pub async fn ledger_moves_only_at_success(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let a = store
        .upsert_order(&order(&format!("L1-{t}")), at(0))
        .await
        .unwrap()
        .into_order();
    let b = store
        .upsert_order(&order(&format!("L2-{t}")), at(0))
        .await
        .unwrap()
        .into_order();
    let both = vec![(a.id, 1), (b.id, 1)];

    // Session 1 queries and never says success; session 2 gets the same orders.
    let s1 = session(store, 1).await;
    let first = all_due(store, &statuses(), 10).await;
    assert_eq!(first, both);
    store.record_offered(s1, &first, at(1)).await.unwrap();
    let s2 = session(store, 2).await;
    let second = all_due(store, &statuses(), 10).await;
    assert_eq!(second, both, "same orders, same versions");
    store.record_offered(s2, &second, at(2)).await.unwrap();

    // The store changes order b between query and success: version 2 is still due after it.
    let mut b2 = order(&format!("L2-{t}"));
    b2.comment = Some("changed".to_owned());
    store.upsert_order(&b2, at(3)).await.unwrap();
    assert_eq!(store.confirm_session(s2, at(4)).await.unwrap(), 2);
    assert_eq!(all_due(store, &statuses(), 10).await, vec![(b.id, 2)]);

    // The late success of session 1 confirms nothing: session 2 already confirmed those
    // versions, and each version is confirmed once in the ledger.
    assert_eq!(store.confirm_session(s1, at(5)).await.unwrap(), 0);
    assert_eq!(all_due(store, &statuses(), 10).await, vec![(b.id, 2)]);

    // Version 2 of b goes out in session 4 and is confirmed there.
    let s4 = session(store, 7).await;
    store.record_offered(s4, &[(b.id, 2)], at(7)).await.unwrap();
    assert_eq!(store.confirm_session(s4, at(8)).await.unwrap(), 1);
    assert!(all_due(store, &statuses(), 10).await.is_empty());

    // Confirming a session that offered nothing confirms nothing.
    let s3 = session(store, 9).await;
    assert_eq!(store.confirm_session(s3, at(9)).await.unwrap(), 0);
    assert!(all_due(store, &statuses(), 10).await.is_empty());
}

/// `orders_due` pages by id, filters by status, and skips orders last changed by 1C.
pub async fn due_orders_page_by_id(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let mut inputs = Vec::new();
    for i in 0..25 {
        let mut o = order(&format!("P{i:02}-{t}"));
        o.status = Some(
            match i % 5 {
                0 => "P",
                1 => "F",
                _ => "N",
            }
            .to_owned(),
        );
        inputs.push(o);
    }
    let outcomes = store.upsert_orders(&inputs, at(0)).await.unwrap();
    assert_eq!(outcomes.len(), 25);
    assert!(outcomes.iter().all(UpsertOutcome::is_created));
    let ids: Vec<i64> = outcomes.iter().map(|o| o.order().id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow");

    // 1C touched order 2: not due any more.
    assert!(store
        .apply_update(
            ids[2],
            &Update {
                shipped: Some(true),
                ..Update::default()
            },
            at(1)
        )
        .await
        .unwrap());

    let expected: Vec<(i64, i64)> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 1 && *i != 2)
        .map(|(_, id)| (*id, 1))
        .collect();
    for page in [1, 7, 10, 100] {
        assert_eq!(
            all_due(store, &statuses(), page).await,
            expected,
            "page {page}"
        );
    }
    assert_eq!(
        all_due(store, &["F".to_owned()], 3).await.len(),
        5,
        "status filter"
    );
    assert!(store.orders_due(&[], 0, 10).await.unwrap().is_empty());
    assert!(store
        .orders_due(&statuses(), 0, 0)
        .await
        .unwrap()
        .is_empty());

    // Orders come with their history.
    let page = store.orders_due(&statuses(), 0, 3).await.unwrap();
    assert!(page.iter().all(|o| o.history.len() == 1));

    // Batch upsert of the same bodies changes nothing.
    let replay = store.upsert_orders(&inputs, at(2)).await.unwrap();
    assert!(replay
        .iter()
        .all(|o| matches!(o, UpsertOutcome::Unchanged(_))));
}

/// `list_orders` filters by status and change time, pages by id.
pub async fn list_orders_filters(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut o = order(&format!("F{i}-{t}"));
        o.status = Some(if i % 2 == 0 { "N" } else { "P" }.to_owned());
        ids.push(store.upsert_order(&o, at(i)).await.unwrap().order().id);
    }
    let all = store.list_orders(&OrderFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|o| o.id).collect::<Vec<_>>(), ids);
    let p = store
        .list_orders(&OrderFilter {
            status: Some("P".to_owned()),
            ..OrderFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[1], ids[3], ids[5]]
    );
    let recent = store
        .list_orders(&OrderFilter {
            changed_since: Some(at(4)),
            ..OrderFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        recent.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[4], ids[5]]
    );
    let page = store
        .list_orders(&OrderFilter {
            after_id: Some(ids[1]),
            limit: Some(2),
            ..OrderFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[2], ids[3]]
    );
    assert!(page.iter().all(|o| o.history.len() == 1));
}

/// The store sets the status only when it submits a different one than before.
pub async fn store_status_and_paid_rules(store: Arc<dyn Store>) {
    let store = &*store;
    let number = format!("S-{}", tag());
    let input = order(&number);
    let id = store.upsert_order(&input, at(0)).await.unwrap().order().id;
    assert!(!store.order_by_id(id).await.unwrap().unwrap().paid);

    // 1C accepts the order.
    store
        .apply_update(id, &status_update("P", "В работе"), at(1))
        .await
        .unwrap();

    // The store marks it paid (status field still N as before): paid set, status P kept.
    let mut paid = input.clone();
    paid.payment = Some(Payment {
        method: Some("card".to_owned()),
        paid: true,
    });
    let o = store.upsert_order(&paid, at(2)).await.unwrap().into_order();
    assert!(o.paid);
    assert_eq!(o.input.status_code(), "P");
    assert_eq!(o.history.len(), 2);

    // The store cancels it (a new status): applied, with a store history entry.
    let mut cancelled = paid.clone();
    cancelled.status = Some("C".to_owned());
    let o = store
        .upsert_order(&cancelled, at(3))
        .await
        .unwrap()
        .into_order();
    assert_eq!(o.input.status_code(), "C");
    assert_eq!(
        o.history
            .iter()
            .map(|h| (h.status.as_str(), h.source))
            .collect::<Vec<_>>(),
        vec![
            ("N", Source::Store),
            ("P", Source::OneC),
            ("C", Source::Store)
        ]
    );
    assert_eq!(store.order_by_id(id).await.unwrap(), Some(o));

    // An empty number is refused.
    assert!(matches!(
        store.upsert_order(&order("  "), at(4)).await,
        Err(Error::Invalid(_))
    ));
}

/// Orders `D1-{t}` and `D2-{t}`, as stored.
async fn two_orders(store: &dyn Store, t: &str) -> (Order, Order) {
    let a = store.upsert_order(&order(&format!("D1-{t}")), at(0)).await;
    let b = store.upsert_order(&order(&format!("D2-{t}")), at(0)).await;
    (a.unwrap().into_order(), b.unwrap().into_order())
}

/// Finding the order a 1C document refers to.
pub async fn find_order_for_document(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let (a, b) = two_orders(store, &t).await;
    let guid = format!("6f1c2a9e-{t}");
    let number_1c = format!("УТ-{t}");
    store
        .apply_update(
            b.id,
            &Update {
                number_1c: Some(number_1c.clone()),
                id_1c: Some(guid.clone()),
                ..Update::default()
            },
            at(1),
        )
        .await
        .unwrap();
    let found = |o: Option<exchange::domain::Order>| o.map(|o| o.id);
    assert_eq!(
        found(
            store
                .find_order_for_document(Some(&a.input.number), None)
                .await
                .unwrap()
        ),
        Some(a.id)
    );
    // The number wins over the id.
    assert_eq!(
        found(
            store
                .find_order_for_document(Some(&a.input.number), Some(&b.id.to_string()))
                .await
                .unwrap()
        ),
        Some(a.id)
    );
    assert_eq!(
        found(
            store
                .find_order_for_document(Some("no such number"), Some(&b.id.to_string()))
                .await
                .unwrap()
        ),
        Some(b.id)
    );
    assert_eq!(
        found(
            store
                .find_order_for_document(Some(&number_1c), None)
                .await
                .unwrap()
        ),
        Some(b.id)
    );
    assert_eq!(
        found(
            store
                .find_order_for_document(None, Some(&guid))
                .await
                .unwrap()
        ),
        Some(b.id)
    );
    assert_eq!(
        found(
            store
                .find_order_for_document(Some("nope"), Some("also-nope"))
                .await
                .unwrap()
        ),
        None
    );
    assert_eq!(
        found(store.find_order_for_document(None, None).await.unwrap()),
        None
    );
    assert_eq!(
        found(
            store
                .find_order_for_document(Some(" "), Some(""))
                .await
                .unwrap()
        ),
        None
    );
}

/// The batch lookup answers every key as the one-document lookup does, in key order, also for
/// repeated keys and for 1C numbers shared by several orders.
pub async fn find_orders_for_documents(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let mut orders = Vec::new();
    for i in 0..4 {
        let o = store
            .upsert_order(&order(&format!("F{i}-{t}")), at(0))
            .await
            .unwrap()
            .into_order();
        orders.push(o);
    }
    let number_1c = format!("УТ-F-{t}");
    let guid = format!("guid-F-{t}");
    // Two orders share 1C's number: the lower id wins, as in the one-document lookup.
    for o in [&orders[2], &orders[1]] {
        let u = Update {
            number_1c: Some(number_1c.clone()),
            status: Some("P".to_owned()),
            ..Update::default()
        };
        store.apply_update(o.id, &u, at(1)).await.unwrap();
    }
    let u = Update {
        id_1c: Some(guid.clone()),
        ..Update::default()
    };
    store.apply_update(orders[3].id, &u, at(1)).await.unwrap();
    let own_id = orders[0].id.to_string();
    let padded_id = format!("00{}", orders[3].id);
    let n1 = orders[1].input.number.clone();
    let keys: Vec<(Option<&str>, Option<&str>)> = vec![
        (Some(&orders[0].input.number), None),
        (Some("no such number"), Some(&own_id)),
        (Some(&number_1c), None),
        (None, Some(&guid)),
        (Some("nope"), Some("also-nope")),
        (None, None),
        (Some(" "), Some("")),
        (Some(&n1), Some(&guid)),
        (Some(&orders[0].input.number), None),
        (Some("x"), Some(&padded_id)),
    ];
    let batch = store.find_orders_for_documents(&keys).await.unwrap();
    assert_eq!(batch.len(), keys.len());
    for ((number, id), got) in keys.iter().zip(&batch) {
        let one = store.find_order_for_document(*number, *id).await.unwrap();
        assert_eq!(got, &one.map(|o| o.facts()), "key {number:?} {id:?}");
    }
    let ids: Vec<Option<i64>> = batch.iter().map(|o| o.as_ref().map(|o| o.id)).collect();
    assert_eq!(
        ids,
        [
            Some(orders[0].id),
            Some(orders[0].id),
            Some(orders[1].id),
            Some(orders[3].id),
            None,
            None,
            None,
            Some(orders[1].id),
            Some(orders[0].id),
            Some(orders[3].id),
        ]
    );
    // The facts are current: order 1 was set to P by 1C, with 1C's number.
    let f = batch[2].as_ref().unwrap();
    assert_eq!(f.status, "P");
    assert_eq!(f.number_1c.as_deref(), Some(number_1c.as_str()));
    assert_eq!(f.number, n1);
    assert!(store
        .find_orders_for_documents(&[])
        .await
        .unwrap()
        .is_empty());
}

/// A batch of documents matched and applied in one call: a second document for the same order
/// is planned against the facts the first left, unknown orders are answered `None`, and the
/// same batch again changes nothing and adds no history.
pub async fn apply_documents(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let (a, b) = two_orders(store, &t).await;
    let number_1c = format!("УТ-D-{t}");
    let keys: Vec<(Option<&str>, Option<&str>)> = vec![
        (Some(&a.input.number), None),
        (Some("no such order"), None),
        (Some(&a.input.number), None),
        (Some(&b.input.number), None),
    ];
    // First document for A: status and 1C's number; second document for A: paid.
    let plan_for = |i: usize, f: &exchange::domain::OrderFacts| {
        let mut u = Update::default();
        if i == 0 {
            u.status = (f.status != "D").then(|| "D".to_owned());
            u.number_1c =
                (f.number_1c.as_deref() != Some(number_1c.as_str())).then(|| number_1c.clone());
        }
        if i == 2 {
            u.paid = (!f.paid).then_some(true);
        }
        u
    };
    let mut seen = Vec::new();
    let mut plan = |i: usize, f: &exchange::domain::OrderFacts| {
        seen.push((i, f.clone()));
        plan_for(i, f)
    };
    let answers = store
        .apply_documents(&keys, &mut plan, at(5))
        .await
        .unwrap();
    assert_eq!(answers, [Some(true), None, Some(true), Some(false)]);
    // The second document for A saw what the first one did.
    let (i, second) = seen.iter().find(|(i, _)| *i == 2).unwrap();
    assert_eq!(*i, 2);
    assert_eq!(second.status, "D");
    assert_eq!(second.number_1c.as_deref(), Some(number_1c.as_str()));
    let stored = store.order_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(stored.input.status_code(), "D");
    assert!(stored.paid);
    assert_eq!(stored.last_change_source, Source::OneC);
    let history = stored.history.len();
    assert_eq!(stored.history.last().map(|h| h.source), Some(Source::OneC));
    let untouched = store.order_by_id(b.id).await.unwrap().unwrap();
    assert_eq!(untouched.last_change_source, Source::Store);

    // The same batch again: nothing changes, no history.
    let mut plan = |i: usize, f: &exchange::domain::OrderFacts| plan_for(i, f);
    let answers = store
        .apply_documents(&keys, &mut plan, at(6))
        .await
        .unwrap();
    assert_eq!(answers, [Some(false), None, Some(false), Some(false)]);
    let again = store.order_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(again.history.len(), history);
    assert_eq!(again.updated_at, stored.updated_at);
}

/// Updates in a batch: one transaction, replay-safe, unknown ids refused.
pub async fn apply_updates_in_batch(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let inputs: Vec<OrderInput> = (0..50).map(|i| order(&format!("B{i}-{t}"))).collect();
    let ids: Vec<i64> = store
        .upsert_orders(&inputs, at(0))
        .await
        .unwrap()
        .iter()
        .map(|o| o.order().id)
        .collect();
    let updates: Vec<(i64, Update)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let u = if i % 2 == 0 {
                status_update("F", "Передан курьеру")
            } else {
                Update {
                    shipped: Some(true),
                    shipment_number_1c: Some(format!("ОТ-{i}")),
                    shipment_date_1c: Some("2026-03-01".to_owned()),
                    ..Update::default()
                }
            };
            (*id, u)
        })
        .collect();
    let changed = store.apply_updates(&updates, at(1)).await.unwrap();
    assert_eq!(changed, vec![true; 50]);
    let again = store.apply_updates(&updates, at(2)).await.unwrap();
    assert_eq!(again, vec![false; 50], "replay changes nothing");
    let orders = store.list_orders(&OrderFilter::default()).await.unwrap();
    let mine: Vec<_> = orders.iter().filter(|o| ids.contains(&o.id)).collect();
    assert_eq!(mine.len(), 50);
    for (i, o) in mine.iter().enumerate() {
        assert_eq!(o.updated_at, at(1));
        if i % 2 == 0 {
            assert_eq!(o.input.status_code(), "F");
            assert_eq!(o.history.len(), 2);
        } else {
            assert!(o.shipped);
            assert_eq!(o.shipment_number_1c, Some(format!("ОТ-{i}")));
            assert_eq!(o.history.len(), 1);
        }
    }

    // An empty update changes nothing; an unknown order is NotFound and the batch is not applied.
    assert!(!store
        .apply_update(ids[0], &Update::default(), at(3))
        .await
        .unwrap());
    assert!(matches!(
        store
            .apply_update(i64::MAX, &Update::default(), at(3))
            .await,
        Err(Error::NotFound)
    ));
    let bad = vec![
        (ids[1], status_update("FF", "Выполнен")),
        (i64::MAX, status_update("FF", "Выполнен")),
    ];
    assert!(matches!(
        store.apply_updates(&bad, at(4)).await,
        Err(Error::NotFound)
    ));
    let o = store.order_by_id(ids[1]).await.unwrap().unwrap();
    assert_eq!(o.input.status_code(), "N", "failed batch rolled back");
}

/// Sessions: created at checkauth, found by cookie, updated, purged.
pub async fn sessions(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let new = NewSession {
        user: "exchange".to_owned(),
        cookie: format!("c-{t}"),
        sessid: format!("s-{t}"),
    };
    let created = store.create_session(&new, at(0)).await.unwrap();
    assert_eq!(created.user, "exchange");
    assert_eq!(created.created_at, at(0));
    assert_eq!(created.last_seen_at, at(0));
    assert!(!created.zip && !created.legacy && !created.sessid_seen);
    assert_eq!(
        store.session_by_cookie(&new.cookie).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store.session_by_id(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.session_by_cookie("unknown").await.unwrap(), None);
    assert!(matches!(
        store.create_session(&new, at(1)).await,
        Err(Error::Conflict(_))
    ));

    let mut changed = created.clone();
    changed.version = Some("2.09".to_owned());
    changed.zip = true;
    changed.legacy = true;
    changed.sessid_seen = true;
    changed.last_seen_at = at(5);
    changed
        .attributes
        .insert("import_file".to_owned(), "orders.xml".to_owned());
    store.update_session(&changed).await.unwrap();
    assert_eq!(
        store.session_by_cookie(&new.cookie).await.unwrap(),
        Some(changed.clone())
    );

    let mut ghost = changed.clone();
    ghost.id = i64::MAX;
    assert!(matches!(
        store.update_session(&ghost).await,
        Err(Error::NotFound)
    ));

    // Purge: the old session goes with its uploads; a recent one stays.
    let recent = store
        .create_session(
            &NewSession {
                user: "exchange".to_owned(),
                cookie: format!("c2-{t}"),
                sessid: format!("s2-{t}"),
            },
            at(100),
        )
        .await
        .unwrap();
    store
        .append_upload(changed.id, "a.xml", b"old")
        .await
        .unwrap();
    store
        .append_upload(recent.id, "a.xml", b"new")
        .await
        .unwrap();
    assert_eq!(store.purge_sessions(at(50)).await.unwrap(), 1);
    assert_eq!(store.session_by_id(changed.id).await.unwrap(), None);
    assert_eq!(store.upload_size(changed.id, "a.xml").await.unwrap(), 0);
    assert_eq!(
        store.session_by_id(recent.id).await.unwrap(),
        Some(recent.clone())
    );
    assert_eq!(store.read_upload(recent.id, "a.xml").await.unwrap(), b"new");
}

/// Uploads append in order, read back whole or by range; import progress is kept per file.
pub async fn uploads_and_progress(store: Arc<dyn Store>) {
    let store = &*store;
    let s = session(store, 0).await;
    let other = session(store, 0).await;
    assert_eq!(store.upload_size(s, "orders.xml").await.unwrap(), 0);
    assert!(store.read_upload(s, "orders.xml").await.unwrap().is_empty());

    let chunks: [&[u8]; 3] = [b"<?xml version=\"1.0\"?>", b"<root>", b"</root>\n"];
    let mut whole = Vec::new();
    for chunk in chunks {
        whole.extend_from_slice(chunk);
        let size = store.append_upload(s, "orders.xml", chunk).await.unwrap();
        assert_eq!(size, whole.len() as u64);
    }
    assert_eq!(
        store.append_upload(s, "orders.xml", b"").await.unwrap(),
        whole.len() as u64
    );
    store
        .append_upload(s, "other.zip", &[0, 1, 2, 255])
        .await
        .unwrap();
    store
        .append_upload(other, "orders.xml", b"elsewhere")
        .await
        .unwrap();

    assert_eq!(store.read_upload(s, "orders.xml").await.unwrap(), whole);
    assert_eq!(
        store.upload_size(s, "orders.xml").await.unwrap(),
        whole.len() as u64
    );
    assert_eq!(
        store.list_uploads(s).await.unwrap(),
        vec![
            ("orders.xml".to_owned(), whole.len() as u64),
            ("other.zip".to_owned(), 4)
        ]
    );
    // Every range, across chunk boundaries and past the end.
    for offset in 0..=whole.len() + 2 {
        for len in [0, 1, 5, 6, 7, 30, 1000] {
            let got = store
                .read_upload_range(s, "orders.xml", offset as u64, len as u64)
                .await
                .unwrap();
            let from = offset.min(whole.len());
            let to = (offset + len).min(whole.len());
            assert_eq!(got, whole[from..to], "offset {offset} len {len}");
        }
    }

    assert_eq!(store.import_progress(s, "orders.xml").await.unwrap(), None);
    let mut progress = ImportProgress {
        position: 500,
        documents: 500,
        done: false,
        messages: vec!["Unknown status \"Х\" for order 17".to_owned()],
    };
    store
        .set_import_progress(s, "orders.xml", &progress, at(1))
        .await
        .unwrap();
    assert_eq!(
        store.import_progress(s, "orders.xml").await.unwrap(),
        Some(progress.clone())
    );
    progress.position = 900;
    progress.documents = 900;
    progress.done = true;
    store
        .set_import_progress(s, "orders.xml", &progress, at(2))
        .await
        .unwrap();
    assert_eq!(
        store.import_progress(s, "orders.xml").await.unwrap(),
        Some(progress)
    );
    assert_eq!(
        store.import_progress(other, "orders.xml").await.unwrap(),
        None
    );

    // init clears the session's files and progress, not other sessions'.
    store.clear_uploads(s).await.unwrap();
    assert!(store.list_uploads(s).await.unwrap().is_empty());
    assert_eq!(store.import_progress(s, "orders.xml").await.unwrap(), None);
    assert_eq!(
        store.read_upload(other, "orders.xml").await.unwrap(),
        b"elsewhere"
    );
    // A new file starts from zero.
    assert_eq!(
        store.append_upload(s, "orders.xml", b"xyz").await.unwrap(),
        3
    );
    assert_eq!(store.read_upload(s, "orders.xml").await.unwrap(), b"xyz");
}

fn entry(session_id: Option<i64>, mode: &str, minutes: i64) -> JournalEntry {
    JournalEntry {
        session_id,
        exchange_type: Some("sale".to_owned()),
        mode: mode.to_owned(),
        filename: None,
        bytes: 0,
        documents: 0,
        messages: Vec::new(),
        error: None,
        duration_ms: Some(3),
        at: at(minutes),
    }
}

/// The journal: every request recorded, sessions newest first with their requests in order.
pub async fn journal_report(store: Arc<dyn Store>) {
    let store = &*store;
    let older = session(store, 0).await;
    let newer = session(store, 10).await;
    store
        .journal(&entry(Some(older), "checkauth", 0))
        .await
        .unwrap();
    store.journal(&entry(Some(older), "init", 1)).await.unwrap();
    let import = JournalEntry {
        filename: Some("orders.xml".to_owned()),
        bytes: 1234,
        documents: 3,
        messages: vec![
            "Unknown status \"Собран\" for order 17".to_owned(),
            "Order 99 not found".to_owned(),
        ],
        ..entry(Some(older), "import", 2)
    };
    store.journal(&import).await.unwrap();
    store
        .journal(&entry(Some(newer), "checkauth", 10))
        .await
        .unwrap();
    let failed = JournalEntry {
        error: Some("wrong sessid".to_owned()),
        ..entry(Some(newer), "query", 11)
    };
    store.journal(&failed).await.unwrap();
    // A request outside any session (bad credentials) is journaled too.
    store
        .journal(&JournalEntry {
            error: Some("authentication failed".to_owned()),
            ..entry(None, "checkauth", 12)
        })
        .await
        .unwrap();

    let report = store.sessions_report(10).await.unwrap();
    let ids: Vec<i64> = report.iter().map(|r| r.session.id).collect();
    let pos_newer = ids.iter().position(|i| *i == newer).expect("newer listed");
    let pos_older = ids.iter().position(|i| *i == older).expect("older listed");
    assert!(pos_newer < pos_older, "newest first: {ids:?}");
    let older_report = &report[pos_older];
    assert_eq!(
        older_report
            .requests
            .iter()
            .map(|r| r.entry.mode.as_str())
            .collect::<Vec<_>>(),
        vec!["checkauth", "init", "import"]
    );
    assert_eq!(older_report.requests[2].entry, import);
    assert_eq!(report[pos_newer].requests[1].entry, failed);
    let limited = store.sessions_report(1).await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].session.id, newer);
}

/// Settings are a key/value table; `set_setting_if_absent` keeps the first value.
pub async fn settings(store: Arc<dyn Store>) {
    let store = &*store;
    let key = format!("exchange.password_hash.{}", tag());
    assert_eq!(store.get_setting(&key).await.unwrap(), None);
    assert_eq!(
        store.set_setting_if_absent(&key, "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.set_setting_if_absent(&key, "second").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.get_setting(&key).await.unwrap().as_deref(),
        Some("first")
    );
    store.set_setting(&key, "third").await.unwrap();
    assert_eq!(
        store.get_setting(&key).await.unwrap().as_deref(),
        Some("third")
    );
}

/// Store writes racing with two exchange sessions leave a consistent state.
pub async fn concurrent_sessions_and_store_writes(store: Arc<dyn Store>) {
    let t = tag();
    let n = 40;
    let inputs: Vec<OrderInput> = (0..n).map(|i| order(&format!("C{i}-{t}"))).collect();
    let ids: Vec<i64> = store
        .upsert_orders(&inputs, at(0))
        .await
        .unwrap()
        .iter()
        .map(|o| o.order().id)
        .collect();

    // Two 1C sessions query, record and confirm while the store edits every order and 1C
    // statuses arrive for them.
    let mut tasks = Vec::new();
    for k in 0..2 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let s = session(&*store, k).await;
            let due = all_due(&*store, &statuses(), 7).await;
            store.record_offered(s, &due, at(1)).await.unwrap();
            store.confirm_session(s, at(2)).await.unwrap();
        }));
    }
    {
        let store = Arc::clone(&store);
        let inputs = inputs.clone();
        tasks.push(tokio::spawn(async move {
            for input in &inputs {
                let mut changed = input.clone();
                changed.comment = Some("edited".to_owned());
                store.upsert_order(&changed, at(1)).await.unwrap();
            }
        }));
    }
    {
        let store = Arc::clone(&store);
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for id in ids.iter().step_by(2) {
                let u = status_update("P", "В работе");
                store.apply_update(*id, &u, at(3)).await.unwrap();
                // A replay racing with everything else is still a no-op.
                assert!(!store.apply_update(*id, &u, at(3)).await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.expect("task panicked");
    }

    // Every order: version 2 (one store edit), one history entry per status, and due exactly
    // when its last change came from the store and version 2 was not confirmed.
    let due: Vec<(i64, i64)> = all_due(&*store, &statuses(), 1000).await;
    for (i, id) in ids.iter().enumerate() {
        let o = store.order_by_id(*id).await.unwrap().unwrap();
        assert_eq!(o.version, 2, "order {i}");
        assert_eq!(o.input.comment.as_deref(), Some("edited"));
        let expected_history = if i % 2 == 0 { 2 } else { 1 };
        assert_eq!(o.history.len(), expected_history, "order {i}");
        let is_due = due.iter().any(|(d, _)| d == id);
        if o.last_change_source == Source::OneC {
            assert!(!is_due, "order {i} changed by 1C last must not be due");
        }
        if i % 2 == 1 {
            // Only the store touched it after creation: due unless version 2 went out and was
            // confirmed by one of the sessions.
            assert_eq!(o.last_change_source, Source::Store);
        }
    }
    // Whatever is due now, a new session takes it and confirms it; then nothing is due.
    let s = session(&*store, 10).await;
    store.record_offered(s, &due, at(10)).await.unwrap();
    store.confirm_session(s, at(11)).await.unwrap();
    assert!(all_due(&*store, &statuses(), 1000).await.is_empty());
    assert!(!is_due(&*store, ids[1]).await);
}

// ----- webhook events -----

/// Every webhook event of the store, by id.
pub async fn webhook_events(store: &dyn Store) -> Vec<WebhookEvent> {
    store
        .webhook_events(0, 10_000)
        .await
        .expect("webhook_events")
}

/// Webhook events: one per status change applied from 1C, recorded with the change, only when
/// enabled; none for other changes, replays, store-side changes or a failed batch.
pub async fn webhook_events_follow_status_changes_from_1c(store: Arc<dyn Store>) {
    let store = &*store;
    let t = tag();
    let a_number = format!("W-{t}-a");
    let b_number = format!("W-{t}-b");
    let a = store
        .upsert_order(&order(&a_number), at(0))
        .await
        .unwrap()
        .order()
        .id;
    let b = store
        .upsert_order(&order(&b_number), at(0))
        .await
        .unwrap()
        .order()
        .id;

    // Off: status changes record nothing.
    assert!(store
        .apply_update(a, &status_update("P", "В работе"), at(1))
        .await
        .unwrap());
    assert!(webhook_events(store).await.is_empty());

    let wake = Arc::new(Notify::new());
    store.enable_webhook_events(Arc::clone(&wake)).unwrap();
    assert!(store
        .apply_update(a, &status_update("D", "Готов к отгрузке"), at(2))
        .await
        .unwrap());
    tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
        .await
        .expect("the commit wakes the worker");
    let events = webhook_events(store).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e.order_id, e.number.as_str(), e.status.as_str()),
        (a, a_number.as_str(), "D")
    );
    assert_eq!(e.status_1c.as_deref(), Some("Готов к отгрузке"));
    assert_eq!((e.at, e.next_attempt_at), (at(2), at(2)));
    assert_eq!(
        (e.attempts, e.leased_until, e.delivered_at),
        (0, None, None)
    );
    assert_eq!(store.webhook_next_due().await.unwrap(), Some(at(2)));

    // A replay changes nothing and records nothing; neither does a change without a status.
    assert!(!store
        .apply_update(a, &status_update("D", "Готов к отгрузке"), at(3))
        .await
        .unwrap());
    let paid = Update {
        paid: Some(true),
        ..Update::default()
    };
    assert!(store.apply_update(a, &paid, at(3)).await.unwrap());
    assert_eq!(webhook_events(store).await.len(), 1);

    // A status change from the store is not reported back to it.
    let mut input = order(&b_number);
    input.status = Some("P".to_owned());
    store.upsert_order(&input, at(3)).await.unwrap();
    assert_eq!(webhook_events(store).await.len(), 1);

    // A batch: one event per status change, in the order applied (an order may change twice).
    let number_only = Update {
        number_1c: Some(format!("УТ-{t}")),
        ..Update::default()
    };
    let batch = vec![
        (b, status_update("F", "Передан курьеру")),
        (a, status_update("FF", "Выполнен")),
        (b, number_only),
        (a, status_update("C", "Отменен клиентом")),
    ];
    assert_eq!(
        store.apply_updates(&batch, at(4)).await.unwrap(),
        vec![true; 4]
    );
    let events = webhook_events(store).await;
    let got: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.number.clone(),
                e.status.clone(),
                e.status_1c.clone(),
                e.at,
            )
        })
        .collect();
    let name = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        vec![
            (
                a_number.clone(),
                "D".into(),
                name("Готов к отгрузке"),
                at(2)
            ),
            (b_number.clone(), "F".into(), name("Передан курьеру"), at(4)),
            (a_number.clone(), "FF".into(), name("Выполнен"), at(4)),
            (
                a_number.clone(),
                "C".into(),
                name("Отменен клиентом"),
                at(4)
            ),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    // Replayed final states are a no-op.
    let replay = vec![
        (b, status_update("F", "Передан курьеру")),
        (a, status_update("C", "Отменен клиентом")),
    ];
    assert_eq!(
        store.apply_updates(&replay, at(5)).await.unwrap(),
        vec![false; 2]
    );
    // A batch that fails (unknown order) records nothing.
    let bad = vec![
        (b, status_update("FF", "Выполнен")),
        (i64::MAX, status_update("FF", "Выполнен")),
    ];
    assert!(matches!(
        store.apply_updates(&bad, at(6)).await,
        Err(Error::NotFound)
    ));
    assert_eq!(webhook_events(store).await.len(), 4);
    // Paging.
    let first = events[0].id;
    assert_eq!(store.webhook_events(first, 2).await.unwrap(), events[1..3]);
}

/// Claims lease events, oldest first; a failed attempt is retried at the time given; an
/// acknowledged event is never claimed again; an expired lease makes an event claimable.
pub async fn webhook_claims_leases_and_retries(store: Arc<dyn Store>) {
    let store = &*store;
    let lease = std::time::Duration::from_secs(5 * 60);
    store
        .enable_webhook_events(Arc::new(Notify::new()))
        .unwrap();
    let t = tag();
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = store
            .upsert_order(&order(&format!("WC-{t}-{i}")), at(0))
            .await
            .unwrap()
            .order()
            .id;
        store
            .apply_update(id, &status_update("P", "В работе"), at(i))
            .await
            .unwrap();
        ids.push(id);
    }
    let events = webhook_events(store).await;
    assert_eq!(events.len(), 3);
    let [e0, e1, e2] = [events[0].id, events[1].id, events[2].id];

    // Not due before it was recorded; zero asked, zero given.
    assert!(store
        .claim_webhook_events(at(-1), 10, lease)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_webhook_events(at(3), 0, lease)
        .await
        .unwrap()
        .is_empty());
    // Oldest first, up to the limit, each leased with an attempt counted.
    let got = store.claim_webhook_events(at(3), 2, lease).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e0, e1]);
    for e in &got {
        assert_eq!(e.attempts, 1);
        assert_eq!(e.leased_until, Some(at(8)));
        assert_eq!(e.last_attempt_at, Some(at(3)));
    }
    let got = store.claim_webhook_events(at(3), 10, lease).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e2]);
    assert!(store
        .claim_webhook_events(at(3), 10, lease)
        .await
        .unwrap()
        .is_empty());

    // e0 failed: retried at 6; e1 acknowledged (twice: the second changes nothing).
    store
        .mark_webhook_retry(e0, at(6), "HTTP 503 Service Unavailable")
        .await
        .unwrap();
    assert!(store.mark_webhook_delivered(e1, at(4)).await.unwrap());
    assert!(!store.mark_webhook_delivered(e1, at(5)).await.unwrap());
    // A late failure report of a delivered event leaves it delivered.
    store.mark_webhook_retry(e1, at(9), "late").await.unwrap();
    assert!(matches!(
        store.mark_webhook_delivered(i64::MAX, at(4)).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.mark_webhook_retry(i64::MAX, at(4), "x").await,
        Err(Error::NotFound)
    ));
    let events = webhook_events(store).await;
    assert_eq!(events[0].next_attempt_at, at(6));
    assert_eq!(events[0].leased_until, None);
    assert_eq!(
        events[0].last_error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
    assert_eq!(events[1].delivered_at, Some(at(4)));
    assert_eq!(events[1].last_error, None);
    assert!(events[1].is_delivered() && !events[0].is_delivered());
    // e0 due at 6, e2 leased until 8.
    assert_eq!(store.webhook_next_due().await.unwrap(), Some(at(6)));
    assert!(store
        .claim_webhook_events(at(5), 10, lease)
        .await
        .unwrap()
        .is_empty());
    let got = store.claim_webhook_events(at(6), 10, lease).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e0]);
    assert_eq!(got[0].attempts, 2);
    // e2's worker died: after its lease, another claim gets it.
    let got = store.claim_webhook_events(at(8), 10, lease).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e2]);
    assert_eq!(got[0].attempts, 2);
    for id in [e0, e2] {
        assert!(store.mark_webhook_delivered(id, at(9)).await.unwrap());
    }
    assert_eq!(store.webhook_next_due().await.unwrap(), None);
    assert!(store
        .claim_webhook_events(at(100), 10, lease)
        .await
        .unwrap()
        .is_empty());
    assert!(webhook_events(store)
        .await
        .iter()
        .all(WebhookEvent::is_delivered));
}

/// Concurrent claimers on one store never get the same event.
pub async fn webhook_concurrent_claims_are_disjoint(store: Arc<dyn Store>) {
    store
        .enable_webhook_events(Arc::new(Notify::new()))
        .unwrap();
    let t = tag();
    let n = 120;
    let inputs: Vec<OrderInput> = (0..n).map(|i| order(&format!("WD-{t}-{i}"))).collect();
    let ids: Vec<i64> = store
        .upsert_orders(&inputs, at(0))
        .await
        .unwrap()
        .iter()
        .map(|o| o.order().id)
        .collect();
    let batch: Vec<(i64, Update)> = ids
        .iter()
        .map(|id| (*id, status_update("P", "В работе")))
        .collect();
    store.apply_updates(&batch, at(1)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_webhook_events(at(2), 7, std::time::Duration::from_secs(300))
                    .await
                    .expect("claim");
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|e| e.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("claimer"));
    }
    all.sort_unstable();
    let claimed = all.len();
    all.dedup();
    assert_eq!(claimed, n, "every event claimed");
    assert_eq!(all.len(), n, "no event claimed twice");
}

/// Defines one `#[tokio::test]` per suite function, each on a fresh store from `$fresh`.
/// `$fresh` returns `(store, guard)`, or an `Option` of it where `None` means the backend is not
/// configured (the test returns after the notice `$fresh` printed).
#[macro_export]
macro_rules! contract_tests {
    ($fresh:path) => {
        #[tokio::test]
        async fn order_story() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::order_story(store).await;
        }
        #[tokio::test]
        async fn ledger_moves_only_at_success() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::ledger_moves_only_at_success(store).await;
        }
        #[tokio::test]
        async fn due_orders_page_by_id() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::due_orders_page_by_id(store).await;
        }
        #[tokio::test]
        async fn list_orders_filters() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::list_orders_filters(store).await;
        }
        #[tokio::test]
        async fn store_status_and_paid_rules() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::store_status_and_paid_rules(store).await;
        }
        #[tokio::test]
        async fn find_order_for_document() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::find_order_for_document(store).await;
        }
        #[tokio::test]
        async fn apply_updates_in_batch() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::apply_updates_in_batch(store).await;
        }
        #[tokio::test]
        async fn apply_documents() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::apply_documents(store).await;
        }
        #[tokio::test]
        async fn find_orders_for_documents() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::find_orders_for_documents(store).await;
        }
        #[tokio::test]
        async fn sessions() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::sessions(store).await;
        }
        #[tokio::test]
        async fn uploads_and_progress() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::uploads_and_progress(store).await;
        }
        #[tokio::test]
        async fn journal_report() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::journal_report(store).await;
        }
        #[tokio::test]
        async fn settings() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::settings(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_sessions_and_store_writes() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::concurrent_sessions_and_store_writes(store).await;
        }
        #[tokio::test]
        async fn webhook_events_follow_status_changes_from_1c() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::webhook_events_follow_status_changes_from_1c(store).await;
        }
        #[tokio::test]
        async fn webhook_claims_leases_and_retries() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::webhook_claims_leases_and_retries(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn webhook_concurrent_claims_are_disjoint() {
            let Some((store, _guard)) = $fresh().await.into() else {
                return;
            };
            suite::webhook_concurrent_claims_are_disjoint(store).await;
        }
    };
}
