//! Webhook events: one row per status change applied from 1C, to be POSTed to the store.
//!
//! When events are on ([`crate::Store::enable_webhook_events`]), [`crate::Store::apply_update`]
//! and [`crate::Store::apply_updates`] record an event for every status-history entry with
//! source `1c`, in the same transaction as the change: a change that is committed has its event,
//! and a replayed document (which changes nothing) adds none. A worker claims due events with a
//! lease ([`crate::Store::claim_webhook_events`]), posts them and reports the result; an event
//! is retried until the store acknowledges it (there is no dead letter). A lease that expires
//! (its worker was killed) makes the event claimable again, so delivery is at least once; on
//! PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so two instances never hold the same event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One status change from 1C to report to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Internal id (grows with time).
    pub id: i64,
    /// The order's internal id.
    pub order_id: i64,
    /// The order's store number.
    pub number: String,
    /// The new site status code.
    pub status: String,
    /// 1C's name of the status after the change, if known.
    pub status_1c: Option<String>,
    /// When the change was applied.
    pub at: DateTime<Utc>,
    /// Attempts started so far (a claim counts as one, so a crash mid-post counts too).
    pub attempts: u32,
    /// Not claimed before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Claimed by a worker until this time; after it, another worker may claim the event.
    pub leased_until: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the last attempt started.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the store acknowledged it; `None` while it is pending.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl WebhookEvent {
    /// Whether the store acknowledged it.
    pub fn is_delivered(&self) -> bool {
        self.delivered_at.is_some()
    }
}

/// The end of a lease taken at `now`.
pub(crate) fn lease_end(
    now: DateTime<Utc>,
    lease: std::time::Duration,
) -> crate::Result<DateTime<Utc>> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| crate::Error::Invalid(format!("lease {lease:?} too long")))
}
