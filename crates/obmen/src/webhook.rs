//! The webhook to the store: one signed POST per status change coming from 1C, retried with
//! backoff until the store answers 2xx.
//!
//! The queue is durable: the store records an event in the same transaction as each status
//! change applied from 1C (`store::Store::enable_webhook_events`), so an event that is not yet
//! acknowledged survives a stop, a crash or `kill -9` and is sent after the next start. A
//! worker claims due events with a lease (`store::Store::claim_webhook_events`; on PostgreSQL
//! with `SKIP LOCKED`, so several instances on one database never post the same event at
//! once), posts them and records the outcome: 2xx marks the event delivered, anything else
//! schedules the next attempt after an exponential backoff with jitter
//! (`exchange::retry::RetryPolicy`, capped at `webhook.max_delay_ms`). There is no dead
//! letter. Delivery is at least once: a worker killed after the store answered but before the
//! acknowledgement was recorded sends the event again when its lease ends; the `X-Obmen-Event`
//! header (the event id) lets the store drop the repeat.
//!
//! The body is JSON `{"event":"status_changed","number","status","status_1c","source":"1c","at"}`;
//! the header `X-Obmen-Signature: sha256=<hex HMAC-SHA256 of the body>` is present when a
//! secret is configured. The worker is woken by the store after a commit that recorded events
//! and by a timer for retries (and for events recorded by other instances).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use exchange::clock::Clock;
use exchange::retry::{Failure, Next, RetryPolicy};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use serde::Serialize;
use sha2::Sha256;
use store::{Store, WebhookEvent};
use tokio::sync::Notify;

use crate::config::{self, Secret};
use crate::push::Rng;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Obmen-Signature";
/// The event id header: the same on every attempt of an event.
pub const EVENT_HEADER: &str = "X-Obmen-Event";

/// Longest sleep of the worker between looks at the queue (events recorded by another
/// instance on the same database are seen within this time).
const POLL: Duration = Duration::from_secs(1);
/// Events claimed, and posted concurrently, at once.
const BATCH: u32 = 16;

/// A status change to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChanged {
    /// Always `status_changed`.
    pub event: &'static str,
    /// The store's order number.
    pub number: String,
    /// The new site status code.
    pub status: String,
    /// The 1C status name, if 1C sent one.
    pub status_1c: Option<String>,
    /// Always `1c`.
    pub source: &'static str,
    /// When obmen applied it.
    pub at: DateTime<Utc>,
}

impl StatusChanged {
    /// A change of `number` to `status` applied at `at`.
    pub fn new(number: &str, status: &str, status_1c: Option<String>, at: DateTime<Utc>) -> Self {
        Self {
            event: "status_changed",
            number: number.to_owned(),
            status: status.to_owned(),
            status_1c,
            source: "1c",
            at,
        }
    }
}

impl From<&WebhookEvent> for StatusChanged {
    fn from(e: &WebhookEvent) -> Self {
        Self::new(&e.number, &e.status, e.status_1c.clone(), e.at)
    }
}

/// HMAC-SHA256 of `body` under `secret`, as `sha256=<hex>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()))
}

/// What one delivery attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The store acknowledged it.
    Sent,
    /// It failed and will be retried later.
    Retried,
}

struct Inner {
    url: String,
    secret: Option<Secret>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    timeout: Duration,
    policy: RetryPolicy,
    rng: Mutex<Rng>,
    wake: Arc<Notify>,
}

/// The webhook worker; cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A worker posting to `config.url` (which must be set). Turns the store's webhook events
    /// on, so from now on status changes applied through `store` are recorded.
    pub fn new(
        config: &config::Webhook,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Rng,
    ) -> anyhow::Result<Self> {
        let url = config
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .context("webhook.url is not set")?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("cannot build the webhook HTTP client")?;
        let wake = Arc::new(Notify::new());
        store
            .enable_webhook_events(Arc::clone(&wake))
            .context("the database cannot keep webhook events")?;
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                secret: config.secret.clone(),
                store,
                clock,
                client,
                timeout,
                // Retried until acknowledged: every failure is worth another attempt.
                policy: RetryPolicy {
                    max_attempts: u32::MAX,
                    base_delay_ms: config.base_delay_ms,
                    max_delay_ms: config.max_delay_ms,
                },
                rng: Mutex::new(rng),
                wake,
            }),
        })
    }

    /// How long a claim lasts: a POST cannot take longer than the timeout, plus a margin.
    fn lease(&self) -> Duration {
        self.inner.timeout + Duration::from_secs(2)
    }

    /// Wakes the worker (the store does it after each commit that recorded events).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Claims the events due now (up to a batch) and posts them concurrently; the outcomes, in
    /// event order (empty when nothing was due).
    pub async fn run_batch(&self) -> anyhow::Result<Vec<Outcome>> {
        let claimed = self
            .inner
            .store
            .claim_webhook_events(self.inner.clock.now(), BATCH, self.lease())
            .await?;
        let results = futures_util::future::join_all(claimed.iter().map(|e| self.deliver(e))).await;
        results.into_iter().collect()
    }

    /// Delivers until `shutdown` completes: posts what is due, otherwise sleeps until the next
    /// event is due, the store reports a new one or [`POLL`] passes. A batch in flight when
    /// `shutdown` completes is finished first (each POST is bounded by the timeout).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.step().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "webhook: cannot read the queue");
                    POLL
                }
            };
            // `biased`: a requested stop wins over more work.
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One turn of [`Webhook::run`]: posts a batch when an event is due; how long to sleep.
    /// Looks before it claims, so an idle worker only reads (a claim is a write transaction).
    async fn step(&self) -> anyhow::Result<Duration> {
        let Some(at) = self.inner.store.webhook_next_due().await? else {
            return Ok(POLL);
        };
        let until = (at - self.inner.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if !until.is_zero() {
            return Ok(until.min(POLL));
        }
        if self.run_batch().await?.is_empty() {
            // Another instance claimed it first; look again shortly (its lease end is due next).
            return Ok(Duration::from_millis(50));
        }
        Ok(Duration::ZERO)
    }

    /// One attempt for a claimed event; records the outcome in the store.
    pub async fn deliver(&self, event: &WebhookEvent) -> anyhow::Result<Outcome> {
        let inner = &self.inner;
        let body = serde_json::to_vec(&StatusChanged::from(event))?;
        let mut request = inner
            .client
            .post(&inner.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.id.to_string());
        if let Some(secret) = &inner.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret.expose(), &body));
        }
        let error = match request.body(body).send().await {
            Ok(resp) if resp.status().is_success() => {
                inner
                    .store
                    .mark_webhook_delivered(event.id, inner.clock.now())
                    .await?;
                tracing::debug!(order = %event.number, status = %event.status, "webhook delivered");
                return Ok(Outcome::Sent);
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.trim().chars().take(300).collect();
                format!("HTTP {status}: {text}")
            }
            Err(e) => format!("{e}"),
        };
        let random = {
            let mut rng = inner
                .rng
                .lock()
                .map_err(|_| anyhow::anyhow!("the webhook RNG is poisoned"))?;
            // 53 random bits make a uniform value in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            r
        };
        let delay = match inner
            .policy
            .next(event.attempts, Failure::Transient, random)
        {
            Next::RetryAfter(delay) => delay,
            // Unreachable with `max_attempts = u32::MAX` short of four billion attempts; keep
            // retrying at the longest delay all the same.
            Next::GiveUp => Duration::from_millis(inner.policy.max_delay_ms),
        };
        let at =
            inner.clock.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        tracing::warn!(
            order = %event.number, attempt = event.attempts, %error,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "webhook not acknowledged, will retry"
        );
        inner.store.mark_webhook_retry(event.id, at, &error).await?;
        Ok(Outcome::Retried)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
