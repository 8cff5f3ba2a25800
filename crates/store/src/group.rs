//! Group commit. [`GroupCommit`] queues items from concurrent callers; one task at a time takes
//! what is queued and writes it as one batch, so concurrent writes share a transaction (a few
//! statements, one commit) instead of one transaction each — on SQLite they would queue for the
//! one writer connection, on PostgreSQL each would pay its own commit.
//!
//! The store uses it for single-order writes on both backends ([`upsert_grouped`]): a group is
//! written with the backend's bulk statements ([`GroupWriter::upsert_together`]); if that
//! transaction fails, each order of it is written again in a transaction of its own
//! ([`GroupWriter::upsert_alone`]), so every caller gets the outcome, or the error, of its own
//! order. The push worker uses it for acknowledgements.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use exchange::domain::OrderInput;
use tokio::sync::oneshot;

use crate::{Error, Result, UpsertOutcome};

/// An item waiting in a [`GroupCommit`], with the channel its answer goes to.
pub type Waiting<T, R> = (T, oneshot::Sender<R>);

/// Items of type `T` written in batches of at most `max`, each answered with an `R`.
pub struct GroupCommit<T, R> {
    queue: Arc<Mutex<Queue<T, R>>>,
    max: usize,
}

struct Queue<T, R> {
    queued: Vec<Waiting<T, R>>,
    /// A writer task is running; it takes what is queued before it stops.
    writing: bool,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: Arc::clone(&self.queue),
            max: self.max,
        }
    }
}

impl<T, R> std::fmt::Debug for GroupCommit<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

fn lock<T, R>(queue: &Mutex<Queue<T, R>>) -> MutexGuard<'_, Queue<T, R>> {
    // The queue holds no invariant a panic could break half-way.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Clears the queue if the writer task panics, so later items start a new writer (and the
/// waiting callers see their answer channel closed instead of waiting forever).
struct ResetOnPanic<T, R>(Arc<Mutex<Queue<T, R>>>);

impl<T, R> Drop for ResetOnPanic<T, R> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = lock(&self.0);
            q.writing = false;
            q.queued.clear();
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// An empty queue writing at most `max` items a batch.
    pub fn new(max: usize) -> Self {
        Self {
            queue: Arc::new(Mutex::new(Queue {
                queued: Vec::new(),
                writing: false,
            })),
            max: max.max(1),
        }
    }

    /// Queues `item` and waits for its answer. If no writer task is running, one is started
    /// with `write`, which gets each batch and must answer every item of it. `None` when the
    /// writer dropped the item unanswered (it panicked).
    pub async fn submit<W, F>(&self, item: T, write: W) -> Option<R>
    where
        W: FnMut(Vec<Waiting<T, R>>) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut q = lock(&self.queue);
            q.queued.push((item, reply));
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            // A task of its own: it finishes even if this caller's future is dropped.
            tokio::spawn(self.clone().drain(write));
        }
        answer.await.ok()
    }

    /// Writes queued batches until none is left.
    async fn drain<W, F>(self, mut write: W)
    where
        W: FnMut(Vec<Waiting<T, R>>) -> F,
        F: Future<Output = ()>,
    {
        let _reset = ResetOnPanic(Arc::clone(&self.queue));
        loop {
            let batch = {
                let mut q = lock(&self.queue);
                if q.queued.is_empty() {
                    q.writing = false;
                    return;
                }
                let n = q.queued.len().min(self.max);
                q.queued.drain(..n).collect()
            };
            write(batch).await;
        }
    }
}

/// Most orders written in one shared transaction.
const GROUP_MAX: usize = 128;

/// A queued single-order write: the order and the time it was accepted.
type OrderWrite = (OrderInput, DateTime<Utc>);

/// The queue of single-order writes of a store handle (shared by its clones).
pub(crate) type Writes = GroupCommit<OrderWrite, Result<UpsertOutcome>>;

/// An empty [`Writes`].
pub(crate) fn writes() -> Writes {
    GroupCommit::new(GROUP_MAX)
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
    let w = writer.clone();
    writer
        .writes()
        .submit((input.clone(), now), move |batch| {
            write_orders(w.clone(), batch)
        })
        .await
        .unwrap_or_else(|| Err(Error::Invalid("the order writer stopped".to_owned())))
}

/// Writes one batch of queued orders and answers each.
async fn write_orders<W: GroupWriter>(
    writer: W,
    batch: Vec<Waiting<OrderWrite, Result<UpsertOutcome>>>,
) {
    let (inputs, waiting): (Vec<OrderInput>, Vec<_>) = batch
        .into_iter()
        .map(|((input, now), reply)| (input, (now, reply)))
        .unzip();
    // The earliest acceptance time stands for the group (times then never run ahead of an
    // acceptance).
    let earliest = waiting.iter().map(|(now, _)| *now).min();
    if let (true, Some(now)) = (inputs.len() > 1, earliest) {
        if let Ok(outcomes) = writer.upsert_together(&inputs, now).await {
            for ((_, reply), outcome) in waiting.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            return;
        }
    }
    for (input, (now, reply)) in inputs.iter().zip(waiting) {
        let _ = reply.send(writer.upsert_alone(input, now).await);
    }
}
