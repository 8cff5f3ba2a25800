//! The acceptance scenario of the 1C emulator against `obmen serve`: 1,000 orders, a sequence of
//! sessions in which every second one stops after `query`. 1C must end with exactly 1,000
//! documents, each created once, and the store API must show every status 1C sent back.

mod common;

use std::collections::BTreeMap;

use common::{order_json, TestApp, PASSWORD, USER};
use exchange::domain::OrderInput;
use onec_emulator::db::OrderState;
use onec_emulator::{run_session, ClientOptions, Database, Summary};
use serde_json::Value;

const ORDERS: usize = 1_000;
const ROUNDS: usize = 4;
/// Orders of the previous round the store changes again in each round.
const RECHANGED: usize = 50;

fn number(i: usize) -> String {
    format!("ACC-{i:05}")
}

fn input(i: usize, comment: &str) -> OrderInput {
    let mut body = order_json(&number(i), "N");
    body["comment"] = Value::from(comment);
    serde_json::from_value(body).unwrap()
}

async fn session(t: &TestApp, db: &Database, no_success: bool) -> Summary {
    let mut o = ClientOptions::new(t.url("/bitrix/admin/1c_exchange.php"), USER, PASSWORD);
    o.faults.no_success = no_success;
    run_session(o, db.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_orders_every_second_session_interrupted() {
    let t = TestApp::spawn().await;
    let db = Database::open(&t.dir.path().join("onec.db").display().to_string())
        .await
        .unwrap();
    let per_round = ORDERS / ROUNDS;
    let mut summaries: Vec<(bool, Summary)> = Vec::new();
    for round in 0..ROUNDS {
        // The store: a batch of new orders, and a change to some orders of the previous round.
        let mut batch: Vec<OrderInput> = (round * per_round..(round + 1) * per_round)
            .map(|i| input(i, "Позвонить заранее"))
            .collect();
        if round > 0 {
            let prev = (round - 1) * per_round;
            batch.extend((prev..prev + RECHANGED).map(|i| input(i, "Изменён магазином")));
        }
        let now = t.app.clock.now();
        t.app.store.upsert_orders(&batch, now).await.unwrap();
        let due = batch.len() as u64;

        // Every second session stops after `query`; the next one gets the same orders.
        let interrupted = session(&t, &db, true).await;
        assert_eq!(interrupted.received, due, "round {round}");
        assert_eq!(interrupted.sent, 0);
        let full = session(&t, &db, false).await;
        assert_eq!(full.received, due, "round {round}: the same orders again");
        assert_eq!(
            full.created, 0,
            "round {round}: created at the first sight only"
        );
        assert_eq!(full.updated, due);
        assert_eq!(full.sent, due);
        assert!(full.messages.is_empty(), "{:?}", full.messages);
        summaries.push((true, interrupted));
        summaries.push((false, full));
    }
    // Everything confirmed: an interrupted and a full session more get nothing.
    for no_success in [true, false] {
        let s = session(&t, &db, no_success).await;
        assert_eq!((s.received, s.created, s.sent), (0, 0, 0));
        summaries.push((no_success, s));
    }

    // The 1C side: exactly 1,000 documents, each created once, no duplicates.
    assert_eq!(db.order_count().await.unwrap(), ORDERS as i64);
    let created: u64 = summaries.iter().map(|(_, s)| s.created).sum();
    let duplicates: u64 = summaries.iter().map(|(_, s)| s.duplicates).sum();
    assert_eq!(created, ORDERS as u64);
    assert_eq!(duplicates, 0);
    let docs = db.orders().await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for d in &docs {
        assert!(seen.insert(d.number.clone()), "{} twice", d.number);
        let i: usize = d.number[4..].parse().unwrap();
        let rechanged = i / per_round < ROUNDS - 1 && i % per_round < RECHANGED;
        // Received in an interrupted and a full session, twice more when the store changed it.
        let expected = if rechanged { 4 } else { 2 };
        assert_eq!(d.times_received, expected, "{}", d.number);
    }
    let expected: Vec<String> = (0..ORDERS).map(number).collect();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), expected);

    // What 1C sent back, per order, in order.
    let mut sent: BTreeMap<String, Vec<OrderState>> = BTreeMap::new();
    for r in db.sent_log().await.unwrap() {
        sent.entry(r.number).or_default().push(r.state);
    }
    assert_eq!(sent.len(), ORDERS, "every order was answered");
    let total_sent: u64 = summaries.iter().map(|(_, s)| s.sent).sum();
    assert_eq!(
        total_sent as usize,
        sent.values().map(Vec::len).sum::<usize>()
    );

    // The store side, through the API: every status 1C sent is in the history, the last one
    // is current, and the payment went through.
    let r = t
        .http
        .get(t.url("/api/v1/orders?limit=10000"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let orders = list["orders"].as_array().unwrap();
    assert_eq!(orders.len(), ORDERS);
    let mut statuses_seen = std::collections::BTreeSet::new();
    for o in orders {
        let n = o["number"].as_str().unwrap();
        let states = &sent[n];
        let last = states.last().unwrap();
        let code = last.status_code.as_deref().unwrap();
        statuses_seen.insert(code.to_owned());
        assert_eq!(o["status"], code, "{n}");
        assert_eq!(o["status_1c"], last.status_name.as_deref().unwrap(), "{n}");
        assert_eq!(o["paid"], states.iter().any(|s| s.paid), "{n}");
        let history: Vec<&str> = o["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["source"] == "1c")
            .map(|h| h["status"].as_str().unwrap())
            .collect();
        let sent_codes: Vec<&str> = states
            .iter()
            .map(|s| s.status_code.as_deref().unwrap())
            .collect();
        assert_eq!(
            history, sent_codes,
            "{n}: one history entry per status sent"
        );
        assert!(o["number_1c"].as_str().unwrap().starts_with("EM-"), "{n}");
    }
    assert_eq!(
        statuses_seen.into_iter().collect::<Vec<_>>(),
        ["D", "P"],
        "first steps and second steps both arrived"
    );
    t.stop().await;
}
