//! The webhook to the store: one signed POST per status change coming from 1C, retried with
//! backoff until the store answers 2xx.
//!
//! The body is JSON `{"event":"status_changed","number","status","status_1c","source":"1c","at"}`;
//! the header `X-Obmen-Signature: sha256=<hex HMAC-SHA256 of the body>` is present when a
//! secret is configured. The queue lives in memory: events not yet acknowledged when the
//! process stops are lost (the order's state and history in the API stay authoritative).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use exchange::clock::Clock;
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use sha2::Sha256;
use store::Store;
use tokio::sync::mpsc;

use crate::config::Secret;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Obmen-Signature";

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

struct Inner {
    url: String,
    secret: Option<Secret>,
    tx: mpsc::UnboundedSender<StatusChanged>,
    rx: tokio::sync::Mutex<Option<mpsc::UnboundedReceiver<StatusChanged>>>,
}

/// The webhook sender; cheap to clone.
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

/// HMAC-SHA256 of `body` under `secret`, as `sha256=<hex>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()))
}

impl Webhook {
    /// A sender posting to `url`.
    pub fn new(
        url: String,
        secret: Option<Secret>,
        _store: Arc<dyn Store>,
        _clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(Inner {
                url,
                secret,
                tx,
                rx: tokio::sync::Mutex::new(Some(rx)),
            }),
        }
    }

    /// Queues an event.
    pub fn notify(&self, event: StatusChanged) {
        let _ = self.inner.tx.send(event);
    }

    /// Delivers queued events until the sender is dropped; each is retried with exponential
    /// backoff (1 s … 5 min) until the store answers 2xx.
    pub async fn run(self) {
        let Some(mut rx) = self.inner.rx.lock().await.take() else {
            return;
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        while let Some(event) = rx.recv().await {
            let body = match serde_json::to_vec(&event) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "webhook event not serialisable");
                    continue;
                }
            };
            let mut delay = Duration::from_secs(1);
            loop {
                let mut req = client
                    .post(&self.inner.url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(secret) = &self.inner.secret {
                    req = req.header(SIGNATURE_HEADER, signature(secret.expose(), &body));
                }
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => break,
                    Ok(resp) => tracing::warn!(
                        status = %resp.status(), order = %event.number,
                        "webhook not acknowledged; retrying in {delay:?}"
                    ),
                    Err(e) => tracing::warn!(
                        error = %e, order = %event.number,
                        "webhook failed; retrying in {delay:?}"
                    ),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(300));
            }
        }
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
