//! Group commit of single-order writes, for both backends. Each [`Store::upsert_order`] call
//! queues its order; one writer task at a time takes everything queued and writes it in one
//! transaction with the backend's bulk statements ([`GroupWriter::upsert_together`]), so
//! concurrent API writes share a transaction (a few statements, one commit) instead of one
//! transaction each — on SQLite they would queue for the one writer connection, on PostgreSQL
//! each would pay its own commit. If the shared transaction fails, each order of it is written
//! again in a transaction of its own ([`GroupWriter::upsert_alone`]), so every caller gets the
//! outcome, or the error, of its own order.
//!
//! [`Store::upsert_order`]: crate::Store::upsert_order

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use exchange::domain::OrderInput;
use tokio::sync::oneshot;

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
pub(crate) struct WriteQueue {
    queued: Vec<Queued>,
    /// A writer task is running; it takes what is queued before it stops.
    writing: bool,
}

/// The queue shared by the clones of a store handle.
pub(crate) type Writes = Arc<Mutex<WriteQueue>>;

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

/// A backend that writes orders for the group commit.
#[async_trait::async_trait]
pub(crate) trait GroupWriter: Clone + Send + Sync + 'static {
    /// The queue of this handle (shared by its clones).
    fn writes(&self) -> &Writes;

    /// Writes `inputs` in one transaction (an input repeating an earlier number is applied
    /// after it), enqueuing and handing off their outbox entries.
    async fn upsert_together(
        &self,
        inputs: &[OrderInput],
        now: DateTime<Utc>,
    ) -> Result<Vec<UpsertOutcome>>;

    /// Writes one order in a transaction of its own.
    async fn upsert_alone(&self, input: &OrderInput, now: DateTime<Utc>) -> Result<UpsertOutcome>;
}

/// Queues one order write of `writer` for the group commit and waits for its outcome.
pub(crate) async fn upsert_grouped<W: GroupWriter>(
    writer: &W,
    input: &OrderInput,
    now: DateTime<Utc>,
) -> Result<UpsertOutcome> {
    let (reply, outcome) = oneshot::channel();
    let start_writer = {
        let mut q = lock(writer.writes());
        q.queued.push(Queued {
            input: input.clone(),
            now,
            reply,
        });
        !std::mem::replace(&mut q.writing, true)
    };
    if start_writer {
        // A task of its own: it finishes even if this caller's future is dropped.
        tokio::spawn(write_queued(writer.clone()));
    }
    outcome
        .await
        .map_err(|_| Error::Invalid("the order writer stopped".to_owned()))?
}

/// Writes queued orders, [`GROUP_MAX`] per transaction, until none is left.
async fn write_queued<W: GroupWriter>(writer: W) {
    let _reset = ResetOnPanic(Arc::clone(writer.writes()));
    loop {
        let batch: Vec<Queued> = {
            let mut q = lock(writer.writes());
            if q.queued.is_empty() {
                q.writing = false;
                return;
            }
            let n = q.queued.len().min(GROUP_MAX);
            q.queued.drain(..n).collect()
        };
        let (inputs, waiting): (Vec<OrderInput>, Vec<_>) = batch
            .into_iter()
            .map(|w| (w.input, (w.now, w.reply)))
            .unzip();
        // The earliest acceptance time stands for the group (times then never run ahead of an
        // acceptance).
        let earliest = waiting.iter().map(|(now, _)| *now).min();
        if let (true, Some(now)) = (inputs.len() > 1, earliest) {
            if let Ok(outcomes) = writer.upsert_together(&inputs, now).await {
                for ((_, reply), outcome) in waiting.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                continue;
            }
        }
        for (input, (now, reply)) in inputs.iter().zip(waiting) {
            let _ = reply.send(writer.upsert_alone(input, now).await);
        }
    }
}
