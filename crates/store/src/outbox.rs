//! The push outbox: one entry per order version to deliver to 1C's HTTP service in real time.
//!
//! When the outbox is on ([`crate::Store::enable_outbox`]), every order created or changed by
//! [`crate::Store::upsert_order`] / [`crate::Store::upsert_orders`] gets an entry in the same
//! transaction. A worker claims due entries with a lease ([`crate::Store::claim_due`]), pushes
//! them and reports the result. A push that 1C acknowledged
//! ([`crate::Store::mark_delivered`]) also confirms that order version in the delivery ledger
//! (under [`PUSH_LEDGER_SESSION`]), so the scheduled exchange does not offer it again; a version
//! that the scheduled exchange confirmed first makes its pending entry [`OutboxState::Obsolete`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use exchange::domain::Order;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// The `session_id` of delivery-ledger rows written by a confirmed push (exchange sessions
/// start at 1).
pub const PUSH_LEDGER_SESSION: i64 = 0;

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Waiting for (another) attempt.
    Pending,
    /// 1C acknowledged it.
    Delivered,
    /// Given up on (permanent failure or attempts exhausted); `obmen outbox retry` re-queues.
    Dead,
    /// No longer worth sending: the scheduled exchange confirmed this version, or the order has
    /// a newer version (with an entry of its own).
    Obsolete,
}

impl OutboxState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Delivered, Self::Dead, Self::Obsolete];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Obsolete => "obsolete",
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s.trim())
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "unknown outbox state {s:?}: expected pending, delivered, dead or obsolete"
                ))
            })
    }
}

/// One order version to push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Internal id (grows with time).
    pub id: i64,
    /// The order's internal id.
    pub order_id: i64,
    /// The order's store number.
    pub order_number: String,
    /// The order version this entry delivers.
    pub version: i64,
    /// Sent as the `Idempotency-Key` header: the same for every attempt of this version.
    pub idempotency_key: String,
    /// Where it stands.
    pub state: OutboxState,
    /// Attempts started so far (a claim counts as one, so a crash mid-push counts too).
    pub attempts: u32,
    /// Not claimed before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Claimed by a worker until this time; after it, another worker may claim the entry.
    pub leased_until: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was enqueued (the order was accepted).
    pub created_at: DateTime<Utc>,
    /// When the last attempt started.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When 1C acknowledged it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The hand-off from the writing transaction to this process's push worker: when it is set
/// ([`crate::Store::enable_outbox_handoff`]) and one of its slots is free, the transaction of
/// [`crate::Store::upsert_order`] enqueues the new entry already leased to this process (one
/// attempt counted) and, after the commit, sends it with the order version it delivers. The
/// worker then needs neither a claim transaction nor a read of the order. A crash loses nothing:
/// the entry is in the outbox, and a claim takes it when the lease ends. With no free slot the
/// entry is enqueued unleased and claimed as usual.
#[derive(Debug, Clone)]
pub struct Handoff {
    sender: mpsc::UnboundedSender<Leased>,
    slots: Arc<Semaphore>,
    lease: Duration,
}

/// An entry leased to this process by the transaction that enqueued it, with its order
/// version. Holds one slot of its [`Handoff`] until dropped.
#[derive(Debug)]
pub struct Leased {
    /// The entry (state pending, one attempt counted, leased until `leased_until`).
    pub entry: OutboxEntry,
    /// The order version it delivers, as written.
    pub order: Order,
    _slot: OwnedSemaphorePermit,
}

impl Handoff {
    /// A hand-off holding at most `slots` entries (sent and not yet dropped by the worker), each
    /// leased for `lease`; and the receiving end for the worker.
    pub fn new(slots: usize, lease: Duration) -> (Self, mpsc::UnboundedReceiver<Leased>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let handoff = Self {
            sender,
            slots: Arc::new(Semaphore::new(slots)),
            lease,
        };
        (handoff, receiver)
    }

    /// A free slot, if any (taken before the transaction enqueues).
    pub(crate) fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// How long a handed-off entry is leased.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// Sends a leased entry to the worker (after the commit). If the worker is gone, the entry
    /// stays in the outbox and is claimed when its lease ends.
    pub(crate) fn send(&self, entry: OutboxEntry, order: Order, slot: OwnedSemaphorePermit) {
        let _ = self.sender.send(Leased {
            entry,
            order,
            _slot: slot,
        });
    }
}

/// A backend's hand-off setting, shared by the clones of its handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandoffSlot(Arc<std::sync::RwLock<Option<Handoff>>>);

impl HandoffSlot {
    /// Sets the hand-off.
    pub(crate) fn set(&self, handoff: Handoff) -> crate::Result<()> {
        let mut slot = self
            .0
            .write()
            .map_err(|_| crate::Error::Invalid("the outbox hand-off is poisoned".to_owned()))?;
        *slot = Some(handoff);
        Ok(())
    }

    /// The hand-off, if one is set.
    pub(crate) fn get(&self) -> Option<Handoff> {
        self.0.read().ok().and_then(|h| h.clone())
    }
}

/// The created and changed orders of `outcomes`, split into those to enqueue unleased and
/// those leased to this process, each with a free slot of `handoff`.
fn split_for_handoff<'a>(
    outcomes: impl IntoIterator<Item = &'a crate::UpsertOutcome>,
    handoff: Option<&Handoff>,
) -> (Vec<&'a Order>, Vec<(&'a Order, OwnedSemaphorePermit)>) {
    let mut plain = Vec::new();
    let mut leased = Vec::new();
    for outcome in outcomes {
        let order = match outcome {
            crate::UpsertOutcome::Created(order) | crate::UpsertOutcome::Updated(order) => order,
            crate::UpsertOutcome::Unchanged(_) => continue,
        };
        match handoff.and_then(Handoff::reserve) {
            Some(slot) => leased.push((order, slot)),
            None => plain.push(order),
        }
    }
    (plain, leased)
}

/// What a backend's enqueue did: whether unleased entries wait for a claim, and the entries
/// leased to this process. After the commit, [`Enqueued::hand_off`] wakes the worker and hands
/// the leased entries over.
#[derive(Debug, Default)]
pub(crate) struct Enqueued {
    pub(crate) wake: bool,
    pub(crate) leased: Vec<(OutboxEntry, Order, OwnedSemaphorePermit)>,
}

impl Enqueued {
    /// Adds the entry `id` just inserted leased for `order` until `until`.
    pub(crate) fn add_leased(
        &mut self,
        id: i64,
        order: &Order,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        slot: OwnedSemaphorePermit,
    ) {
        let entry = OutboxEntry {
            id,
            order_id: order.id,
            order_number: order.input.number.clone(),
            version: order.version,
            idempotency_key: idempotency_key(&order.input.number, order.version),
            state: OutboxState::Pending,
            attempts: 1,
            next_attempt_at: now,
            leased_until: Some(until),
            last_error: None,
            created_at: now,
            last_attempt_at: Some(now),
            delivered_at: None,
        };
        self.leased.push((entry, order.clone(), slot));
    }

    /// After the commit: wakes the worker for unleased entries, hands over the leased ones.
    pub(crate) fn hand_off(self, wake: &crate::switch::Switch, handoff: Option<&Handoff>) {
        if self.wake {
            wake.wake();
        }
        if let Some(handoff) = handoff {
            for (entry, order, slot) in self.leased {
                handoff.send(entry, order, slot);
            }
        }
    }
}

/// A connection that can insert outbox entries (each backend's, inside an open transaction).
#[async_trait::async_trait]
pub(crate) trait InsertEntries: Send {
    /// Inserts an entry for each of `orders`, leased until `leased_until` (one attempt counted)
    /// or unleased, skipping versions that have one; returns `(id, order_id)` of the new rows.
    async fn insert_entries(
        &mut self,
        orders: &[&Order],
        now: DateTime<Utc>,
        leased_until: Option<DateTime<Utc>>,
    ) -> crate::Result<Vec<(i64, i64)>>;
}

/// Enqueues the created and updated orders of `outcomes` in the transaction open on `conn`,
/// when the outbox is on. With a `handoff`, as many as it has free slots are enqueued leased to
/// this process. [`Enqueued::hand_off`] follows the commit.
async fn enqueue<'a>(
    outbox: &crate::switch::Switch,
    handoff: Option<&Handoff>,
    conn: &mut dyn InsertEntries,
    outcomes: impl IntoIterator<Item = &'a crate::UpsertOutcome>,
    now: DateTime<Utc>,
) -> crate::Result<Enqueued> {
    let mut done = Enqueued::default();
    if !outbox.is_on() {
        return Ok(done);
    }
    let (plain, leased) = split_for_handoff(outcomes, handoff);
    if !plain.is_empty() {
        conn.insert_entries(&plain, now, None).await?;
        done.wake = true;
    }
    let Some(handoff) = handoff.filter(|_| !leased.is_empty()) else {
        return Ok(done);
    };
    let until = lease_end(now, handoff.lease())?;
    let orders: Vec<&Order> = leased.iter().map(|(o, _)| *o).collect();
    let ids: std::collections::HashMap<i64, i64> = conn
        .insert_entries(&orders, now, Some(until))
        .await?
        .into_iter()
        .map(|(id, order_id)| (order_id, id))
        .collect();
    for (order, slot) in leased {
        // An entry that existed already (no new row) is left to the claims.
        if let Some(&id) = ids.get(&order.id) {
            done.add_leased(id, order, now, until, slot);
        }
    }
    Ok(done)
}

/// Enqueues the entries of `outcomes` in `tx` ([`enqueue`]), commits, then wakes the worker
/// and hands the leased entries over.
pub(crate) async fn enqueue_and_commit<DB>(
    mut tx: sqlx::Transaction<'static, DB>,
    outbox: &crate::switch::Switch,
    handoff: Option<&Handoff>,
    outcomes: &[crate::UpsertOutcome],
    now: DateTime<Utc>,
) -> crate::Result<()>
where
    DB: sqlx::Database,
    DB::Connection: InsertEntries,
{
    let enqueued = enqueue(outbox, handoff, &mut *tx, outcomes, now).await?;
    tx.commit().await?;
    enqueued.hand_off(outbox, handoff);
    Ok(())
}

/// The end of a lease of `lease` taken at `now`.
pub(crate) fn lease_end(now: DateTime<Utc>, lease: Duration) -> crate::Result<DateTime<Utc>> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| crate::Error::Invalid(format!("lease {lease:?} too long")))
}

/// Which entries [`crate::Store::list_outbox`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFilter {
    /// Only entries in this state.
    pub state: Option<OutboxState>,
    /// Only ids greater than this (paging).
    pub after_id: Option<i64>,
    /// At most this many (no limit when `None`).
    pub limit: Option<u32>,
}

/// The idempotency key of an order version: the number (bytes outside printable ASCII, `%` and
/// `:` percent-encoded, so it is a valid header value) and the version, e.g. `A-17:2`.
pub fn idempotency_key(number: &str, version: i64) -> String {
    let mut key = String::with_capacity(number.len() + 8);
    for b in number.bytes() {
        if b.is_ascii_graphic() && b != b'%' && b != b':' {
            key.push(char::from(b));
        } else {
            key.push_str(&format!("%{b:02X}"));
        }
    }
    key.push(':');
    key.push_str(&version.to_string());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_header_safe_and_distinct() {
        assert_eq!(idempotency_key("A-17", 2), "A-17:2");
        assert_eq!(
            idempotency_key("Заказ 1", 1),
            "%D0%97%D0%B0%D0%BA%D0%B0%D0%B7%201:1"
        );
        assert_ne!(idempotency_key("A:1", 2), idempotency_key("A", 12));
        assert!(idempotency_key("x\u{7f}y%", 3)
            .bytes()
            .all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn states_round_trip() {
        for s in OutboxState::ALL {
            assert_eq!(s.as_str().parse::<OutboxState>().unwrap(), s);
        }
        assert!("lost".parse::<OutboxState>().is_err());
    }
}
