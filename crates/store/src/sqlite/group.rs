//! The group commit's writer on SQLite (see `crate::group`): the bulk statements of
//! [`upsert_batch`] for a group, [`upsert_in`] for one order.

use chrono::{DateTime, Utc};
use exchange::domain::OrderInput;

use super::{upsert_batch, upsert_in, SqliteStore};
use crate::group::{GroupWriter, Writes};
use crate::{Result, UpsertOutcome};

#[async_trait::async_trait]
impl GroupWriter for SqliteStore {
    fn writes(&self) -> &Writes {
        &self.writes
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
        crate::outbox::enqueue_and_commit(tx, &self.outbox, handoff.as_ref(), &outcomes, now)
            .await?;
        Ok(outcomes)
    }

    /// Writes one order in a transaction of its own.
    async fn upsert_alone(&self, input: &OrderInput, now: DateTime<Utc>) -> Result<UpsertOutcome> {
        let handoff = self.handoff();
        let mut tx = self.begin_write().await?;
        let outcome = upsert_in(&mut tx, input, now).await?;
        if matches!(outcome, UpsertOutcome::Unchanged(_)) {
            tx.rollback().await?;
        } else {
            crate::outbox::enqueue_and_commit(
                tx,
                &self.outbox,
                handoff.as_ref(),
                std::slice::from_ref(&outcome),
                now,
            )
            .await?;
        }
        Ok(outcome)
    }
}
