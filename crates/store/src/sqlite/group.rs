//! Group commit of single-order writes on SQLite. Each [`Store::upsert_order`] call queues its
//! order; one writer task at a time takes everything queued and writes it in one transaction
//! with the bulk statements of [`upsert_batch`], so concurrent API writes share a transaction
//! (and a few statements) instead of queueing for the one writer connection one by one. If the
//! shared transaction fails, each order of it is written again in a transaction of its own, so
//! every caller gets the outcome, or the error, of its own order.
//!
//! [`Store::upsert_order`]: crate::Store::upsert_order

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use exchange::domain::OrderInput;
use tokio::sync::oneshot;

use super::{upsert_batch, upsert_in, SqliteStore};
use crate::{Error, Result, UpsertOutcome};

/// Most orders written in one shared transaction.
const GROUP_MAX: usize = 128;

/// One queued write: the order, the time it was accepted, and who waits for the outcome.
#[derive(Debug)]
struct Queued {
    input: OrderInput,
    now: DateTime<Utc>,
    reply: oneshot::Sender<Result<UpsertOutcome>>,
}

/// The queue of writes waiting for the group commit.
#[derive(Debug, Default)]
pub(super) struct WriteQueue {
    queued: Vec<Queued>,
    /// A writer task is running; it takes what is queued before it stops.
    writing: bool,
}

/// The queue shared by the clones of a store handle.
pub(super) type Writes = Arc<Mutex<WriteQueue>>;

fn lock(writes: &Writes) -> MutexGuard<'_, WriteQueue> {
    // The queue holds no invariant a panic could break half-way.
    writes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Clears the queue if the writer task panics, so later writes start a new writer (and the
/// waiting callers see their reply channel closed instead of waiting forever).
struct ResetOnPanic(Writes);

impl Drop for ResetOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = lock(&self.0);
            q.writing = false;
            q.queued.clear();
        }
    }
}

impl SqliteStore {
    /// Queues one order write for the group commit and waits for its outcome.
    pub(super) async fn upsert_grouped(
        &self,
        input: &OrderInput,
        now: DateTime<Utc>,
    ) -> Result<UpsertOutcome> {
        let (reply, outcome) = oneshot::channel();
        let start_writer = {
            let mut q = lock(&self.writes);
            q.queued.push(Queued {
                input: input.clone(),
                now,
                reply,
            });
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            // A task of its own: it finishes even if this caller's future is dropped.
            tokio::spawn(self.clone().write_queued());
        }
        outcome
            .await
            .map_err(|_| Error::Invalid("the order writer stopped".to_owned()))?
    }

    /// Writes queued orders, [`GROUP_MAX`] per transaction, until none is left.
    async fn write_queued(self) {
        let _reset = ResetOnPanic(Arc::clone(&self.writes));
        loop {
            let batch: Vec<Queued> = {
                let mut q = lock(&self.writes);
                if q.queued.is_empty() {
                    q.writing = false;
                    return;
                }
                let n = q.queued.len().min(GROUP_MAX);
                q.queued.drain(..n).collect()
            };
            // The earliest acceptance time stands for the group (times then never run ahead
            // of an acceptance).
            let earliest = batch.iter().map(|w| w.now).min();
            if let (true, Some(now)) = (batch.len() > 1, earliest) {
                let inputs: Vec<OrderInput> = batch.iter().map(|w| w.input.clone()).collect();
                if let Ok(outcomes) = self.upsert_together(&inputs, now).await {
                    for (w, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = w.reply.send(Ok(outcome));
                    }
                    continue;
                }
            }
            for w in batch {
                let outcome = self.upsert_alone(&w.input, w.now).await;
                let _ = w.reply.send(outcome);
            }
        }
    }

    /// Writes `inputs` in one transaction.
    async fn upsert_together(
        &self,
        inputs: &[OrderInput],
        now: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>> {
        let handoff = self.handoff();
        let mut tx = self.begin_write().await?;
        let outcomes = upsert_batch(&mut tx, inputs, now).await?;
        let enqueued =
            crate::outbox::enqueue(&self.outbox, handoff.as_ref(), &mut *tx, &outcomes, now)
                .await?;
        tx.commit().await?;
        enqueued.hand_off(&self.outbox, handoff.as_ref());
        Ok(outcomes)
    }

    /// Writes one order in a transaction of its own.
    pub(super) async fn upsert_alone(
        &self,
        input: &OrderInput,
        now: DateTime<Utc>,
    ) -> Result<UpsertOutcome> {
        let handoff = self.handoff();
        let mut tx = self.begin_write().await?;
        let outcome = upsert_in(&mut tx, input, now).await?;
        if matches!(outcome, UpsertOutcome::Unchanged(_)) {
            tx.rollback().await?;
        } else {
            let enqueued =
                crate::outbox::enqueue(&self.outbox, handoff.as_ref(), &mut *tx, [&outcome], now)
                    .await?;
            tx.commit().await?;
            enqueued.hand_off(&self.outbox, handoff.as_ref());
        }
        Ok(outcome)
    }
}
