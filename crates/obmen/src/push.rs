//! Real-time push: orders written to the outbox (in the same transaction as the order, see
//! `store::Store::enable_outbox`) are POSTed to 1C's HTTP service by a worker.
//!
//! Each attempt sends one order version — a CommerceML document of the one order (UTF-8) or the
//! order as JSON — with `Idempotency-Key: <number>:<version>` and Basic auth. A 2xx marks the
//! entry delivered and confirms that version in the delivery ledger (so `query` does not offer
//! it again). A failure is classified by `exchange::retry::Failure::classify`: transient ones
//! are retried after `RetryPolicy::next` (exponential backoff with jitter from an injected
//! RNG), permanent ones and the last attempt dead-letter the entry, which leaves the order to
//! the scheduled exchange. The CommerceML document goes through the export hook first; a hook
//! that fails is a failed attempt like any other (retried, then dead-lettered), and nothing is
//! sent for it. Claims are leases: a worker killed mid-push loses nothing, its
//! entries become claimable again when the lease ends, and the idempotency key lets 1C
//! recognise the repeat.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use commerceml::{OutputEncoding, SchemaVersion, WriteOptions, Writer};
use exchange::clock::Clock;
use exchange::hook::{Hook, HookError};
use exchange::retry::{Failure, Next, RetryPolicy};
use exchange::settings::ExchangeSettings;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use store::{GroupCommit, Handoff, OutboxEntry, OutboxFilter, OutboxState, Store, Waiting};
use tokio::sync::Notify;

use crate::config::{Config, Secret};
use crate::http::problem::Problem;
use crate::startup::App;

/// Longest sleep of the worker between looks at the outbox (entries enqueued by another
/// process, e.g. `obmen orders import`, or re-queued by `obmen outbox retry`, are seen within
/// this time).
const POLL: Duration = Duration::from_secs(1);

/// What a push carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    /// A CommerceML document holding the one order, UTF-8.
    #[default]
    Commerceml,
    /// The order as JSON (as `GET /api/v1/orders/{number}` shows it).
    Json,
}

/// The `[push]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// URL of 1C's HTTP service; setting it turns push on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Basic-auth login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Basic-auth password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Payload format.
    pub format: PushFormat,
    /// CommerceML schema version of the pushed document.
    pub schema_version: String,
    /// Milliseconds one push may take.
    pub timeout_ms: u64,
    /// Pushes in flight at once.
    pub concurrency: u32,
    /// Retries: attempts, backoff.
    pub retry: RetryPolicy,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            url: None,
            user: None,
            password: None,
            format: PushFormat::Commerceml,
            schema_version: "2.05".to_owned(),
            timeout_ms: 5000,
            concurrency: 32,
            retry: RetryPolicy::default(),
        }
    }
}

impl PushConfig {
    /// Whether push is on.
    pub fn enabled(&self) -> bool {
        self.url.as_deref().is_some_and(|u| !u.trim().is_empty())
    }

    /// Problems of the section, empty when fine.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("push.url {url:?} must be an http(s) URL"));
            }
        }
        if SchemaVersion::parse(&self.schema_version).is_none() {
            problems.push(format!(
                "push.schema_version {:?} is not a CommerceML version like 2.05",
                self.schema_version
            ));
        }
        if self.timeout_ms == 0 {
            problems.push("push.timeout_ms must be positive".to_owned());
        }
        if self.concurrency == 0 {
            problems.push("push.concurrency must be positive".to_owned());
        }
        if let Err(e) = self.retry.validate() {
            problems.push(format!("push.retry: {e}"));
        }
        if self.password.is_some() && self.user.is_none() {
            problems.push("push.password is set without push.user".to_owned());
        }
        problems
    }

    /// How long a claim lasts: a push cannot take longer than the timeout, plus a margin.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.timeout_ms) + Duration::from_secs(2)
    }
}

/// What one delivery attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 1C acknowledged it; the version is confirmed in the ledger.
    Sent,
    /// It failed and will be retried later.
    Retried,
    /// It failed for good: dead-lettered, left to the scheduled exchange.
    GaveUp,
    /// Not sent: the order has a newer version (pushed under its own entry).
    Skipped,
}

/// A source of randomness for the retry jitter (injected so tests are repeatable).
pub type Rng = Box<dyn RngCore + Send>;

/// The push worker.
pub struct Pusher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: PushConfig,
    url: String,
    schema: SchemaVersion,
    settings: ExchangeSettings,
    client: reqwest::Client,
    rng: Mutex<Rng>,
    wake: Arc<Notify>,
    export_hook: Option<Arc<Hook>>,
    acks: Acks,
}

/// Group commit of acknowledgements: a push that 1C acknowledged queues its entry and the time
/// 1C answered; one writer task at a time records everything queued in one transaction
/// (`Store::mark_delivered_many`), so concurrent pushes share write transactions instead of
/// queueing for the database one by one. Each gets whether its entry changed, or the error.
type Acks = GroupCommit<Ack, Result<bool, String>>;

/// An acknowledgement: the entry and when 1C answered.
type Ack = (i64, DateTime<Utc>);

/// Most acknowledgements written in one transaction.
const ACK_BATCH: usize = 256;

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("url", &self.url)
            .field("format", &self.config.format)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A worker for `config.push` (which must be enabled). Turns the store's outbox on, so from
    /// now on orders written through `store` are enqueued.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Rng,
    ) -> anyhow::Result<Self> {
        let push = config.push.clone();
        let url = push
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .context("push.url is not set")?;
        let schema = SchemaVersion::parse(&push.schema_version)
            .with_context(|| format!("push.schema_version {:?}", push.schema_version))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(push.timeout_ms))
            .pool_max_idle_per_host(push.concurrency as usize)
            .tcp_nodelay(true)
            .build()
            .context("cannot build the push HTTP client")?;
        let wake = Arc::new(Notify::new());
        store
            .enable_outbox(Arc::clone(&wake))
            .context("the database cannot keep a push outbox")?;
        Ok(Self {
            store,
            clock,
            url,
            schema,
            settings: config.exchange.clone(),
            config: push,
            client,
            rng: Mutex::new(rng),
            wake,
            export_hook: None,
            acks: GroupCommit::new(ACK_BATCH),
        })
    }

    /// Runs `hook` on every CommerceML document before it is pushed.
    #[must_use]
    pub fn with_export_hook(mut self, hook: Option<Arc<Hook>>) -> Self {
        self.export_hook = hook;
        self
    }

    /// How long a claim lasts: the push itself plus the export hook's time limit.
    fn lease(&self) -> Duration {
        self.config.lease() + self.hook_time()
    }

    /// The export hook's time limit (zero without a hook).
    fn hook_time(&self) -> Duration {
        self.export_hook
            .as_ref()
            .map_or(Duration::ZERO, |h| h.limits().timeout)
    }

    /// Delivers until `shutdown` completes, with up to `concurrency` pushes in flight. Orders
    /// written through this process arrive leased from the store's transaction
    /// ([`store::Handoff`]) and are pushed as soon as a slot is free, without a claim or a read.
    /// Everything else (retries, expired leases, entries of other processes, hand-offs that
    /// found no free slot) is claimed: for the free slots, and otherwise it waits until a push
    /// ends, an order is enqueued (the store wakes it), the next entry is due or [`POLL`]
    /// passes. It claims when the outbox may hold due entries (a wake-up, the timer, or the last
    /// claim filled every free slot) and at least a quarter of the slots are free, so a busy
    /// outbox is claimed in batches instead of one write transaction per finished push. On shutdown the pushes in
    /// flight are finished (each is bounded by the push timeout).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let slots = self.config.concurrency.max(1) as usize;
        let refill = (slots / 4).max(1);
        let mut in_flight = tokio::task::JoinSet::new();
        // Whether the outbox may hold due entries that were not claimed yet.
        let mut maybe_due = true;
        let mut idle_until = tokio::time::Instant::now();
        // Orders written through this process come leased in their own transaction.
        let (handoff, mut leased) = Handoff::new(slots, self.lease());
        if let Err(e) = self.store.enable_outbox_handoff(handoff) {
            tracing::warn!(error = %e, "push: no hand-off from the store; every entry is claimed");
        }
        loop {
            let free = slots - in_flight.len();
            if maybe_due && free >= refill {
                let now = self.clock.now();
                let want = u32::try_from(free).unwrap_or(u32::MAX);
                match self.store.claim_due(now, want, self.lease()).await {
                    Ok(claimed) => {
                        maybe_due = claimed.len() == free;
                        for entry in claimed {
                            let me = Arc::clone(&self);
                            in_flight.spawn(async move {
                                let outcome = me.deliver(&entry).await;
                                (entry, outcome)
                            });
                        }
                        if !maybe_due {
                            idle_until = tokio::time::Instant::now() + self.idle_wait().await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "push: claim failed");
                        maybe_due = false;
                        idle_until = tokio::time::Instant::now() + POLL;
                    }
                }
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    log_delivery(done);
                }
                Some(handed) = leased.recv(), if in_flight.len() < slots => {
                    if self.lease_left(&handed.entry) {
                        let me = Arc::clone(&self);
                        in_flight.spawn(async move {
                            let outcome = me.deliver_handed(&handed.entry, &handed.order).await;
                            (handed.entry, outcome)
                        });
                    }
                }
                () = self.wake.notified() => maybe_due = true,
                () = tokio::time::sleep_until(idle_until), if !maybe_due => maybe_due = true,
            }
        }
        while let Some(done) = in_flight.join_next().await {
            log_delivery(done);
        }
    }

    /// Whether a handed-off entry's lease leaves time for the longest push (the hook's and the
    /// request's time limits). One that waited too long for a free slot is left to the claims,
    /// which take it when its lease ends.
    fn lease_left(&self, entry: &OutboxEntry) -> bool {
        let longest = Duration::from_millis(self.config.timeout_ms) + self.hook_time();
        let longest = chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::MAX);
        let left = entry
            .leased_until
            .is_some_and(|until| until - self.clock.now() > longest);
        if !left {
            tracing::debug!(order = %entry.order_number, "push: hand-off waited too long; left to a claim");
        }
        left
    }

    /// How long to sleep when nothing is due: until the next entry is due, at most [`POLL`].
    async fn idle_wait(&self) -> Duration {
        match self.store.outbox_next_due().await {
            Ok(Some(at)) => (at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(POLL),
            Ok(None) => POLL,
            Err(e) => {
                tracing::error!(error = %e, "push: cannot read the outbox");
                POLL
            }
        }
    }

    /// One attempt for a claimed entry; records the result in the outbox.
    pub async fn deliver(&self, entry: &OutboxEntry) -> anyhow::Result<Outcome> {
        let order = self.store.order_by_id(entry.order_id).await?;
        if let Some(outcome) = self.stale(entry, order.as_ref().map(|o| o.version)).await? {
            return Ok(outcome);
        }
        let order = order.context("the order vanished")?;
        self.push(entry, &order).await
    }

    /// One attempt for an entry handed off with its order: pushed unless a newer version of
    /// the order was written since (by this or another process).
    async fn deliver_handed(
        &self,
        entry: &OutboxEntry,
        order: &exchange::domain::Order,
    ) -> anyhow::Result<Outcome> {
        let current = self.store.order_version(entry.order_id).await?;
        if let Some(outcome) = self.stale(entry, current).await? {
            return Ok(outcome);
        }
        self.push(entry, order).await
    }

    /// Settles an entry whose order is gone or has moved past its version (`current` is the
    /// order's version now), so 1C never receives an older version after a newer one was
    /// written; `None` when the entry is current.
    async fn stale(
        &self,
        entry: &OutboxEntry,
        current: Option<i64>,
    ) -> anyhow::Result<Option<Outcome>> {
        match current {
            None => {
                self.store
                    .mark_dead(entry.id, "the order no longer exists")
                    .await?;
                Ok(Some(Outcome::GaveUp))
            }
            Some(version) if version != entry.version => {
                // A newer version has its own entry; the next claim makes this one obsolete.
                self.store
                    .mark_retry(
                        entry.id,
                        self.clock.now(),
                        &format!("superseded by version {version}"),
                    )
                    .await?;
                Ok(Some(Outcome::Skipped))
            }
            Some(_) => Ok(None),
        }
    }

    /// One attempt to push `order`, the version of the leased `entry`; records the result.
    async fn push(
        &self,
        entry: &OutboxEntry,
        order: &exchange::domain::Order,
    ) -> anyhow::Result<Outcome> {
        let (body, content_type) = match self.payload(order).await {
            Ok(Ok(p)) => p,
            Ok(Err(hook)) => {
                // Scripts may depend on data that changes; the attempt is retried like a
                // network failure, and nothing half-modified is sent.
                return self
                    .failed(entry, Failure::Transient, hook.to_string())
                    .await;
            }
            Err(e) => {
                let error = format!("cannot build the payload: {e:#}");
                tracing::error!(order = %entry.order_number, %error, "push: dead letter");
                self.store.mark_dead(entry.id, &error).await?;
                return Ok(Outcome::GaveUp);
            }
        };
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("Idempotency-Key", &entry.idempotency_key)
            .body(body);
        if let Some(user) = &self.config.user {
            request = request.basic_auth(user, self.config.password.as_ref().map(Secret::expose));
        }
        let (status, error) = match request.send().await {
            Ok(resp) if resp.status().is_success() => {
                let changed = self.acknowledge(entry.id, self.clock.now()).await?;
                tracing::debug!(order = %entry.order_number, version = entry.version, changed, "pushed");
                return Ok(Outcome::Sent);
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.trim().chars().take(300).collect();
                (Some(status.as_u16()), format!("HTTP {status}: {text}"))
            }
            Err(e) => (None, format!("{e}")),
        };
        self.failed(entry, Failure::classify(status), error).await
    }

    /// Records that 1C acknowledged entry `id` at `at` through the group commit; returns
    /// whether the entry changed.
    async fn acknowledge(&self, id: i64, at: DateTime<Utc>) -> anyhow::Result<bool> {
        let store = Arc::clone(&self.store);
        self.acks
            .submit((id, at), move |batch| write_acks(Arc::clone(&store), batch))
            .await
            .ok_or_else(|| anyhow::anyhow!("the acknowledgement writer stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot record the acknowledgement: {e}"))
    }

    /// Records a failed attempt: retried after a backoff, or dead-lettered after the last one.
    async fn failed(
        &self,
        entry: &OutboxEntry,
        failure: Failure,
        error: String,
    ) -> anyhow::Result<Outcome> {
        let random = {
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| anyhow::anyhow!("the push RNG is poisoned"))?;
            // 53 random bits make a uniform value in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            r
        };
        match self.config.retry.next(entry.attempts, failure, random) {
            Next::RetryAfter(delay) => {
                let at = self.clock.now()
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                tracing::warn!(order = %entry.order_number, attempt = entry.attempts, %error, retry_in_ms = delay.as_millis() as u64, "push failed, will retry");
                self.store.mark_retry(entry.id, at, &error).await?;
                Ok(Outcome::Retried)
            }
            Next::GiveUp => {
                tracing::error!(order = %entry.order_number, attempt = entry.attempts, %error, "push failed for good: dead letter, left to the scheduled exchange");
                self.store.mark_dead(entry.id, &error).await?;
                Ok(Outcome::GaveUp)
            }
        }
    }

    /// The body and its content type, or the export hook's error.
    async fn payload(
        &self,
        order: &exchange::domain::Order,
    ) -> anyhow::Result<Result<(Vec<u8>, &'static str), HookError>> {
        match self.config.format {
            PushFormat::Json => {
                let mut order = order.clone();
                let status = order.input.status_code().to_owned();
                order.input.status = Some(status);
                Ok(Ok((serde_json::to_vec(&order)?, "application/json")))
            }
            PushFormat::Commerceml => {
                let mut doc = exchange::export::order_document(order, &self.schema, &self.settings);
                if let Some(hook) = &self.export_hook {
                    // A script may run up to its time limit: keep it off the async workers.
                    let hook = Arc::clone(hook);
                    let order = order.clone();
                    let (result, hooked) = tokio::task::spawn_blocking(move || {
                        let result = hook.on_export(&order, &mut doc);
                        (result, doc)
                    })
                    .await
                    .context("the export hook task failed")?;
                    if let Err(e) = result {
                        return Ok(Err(e));
                    }
                    doc = hooked;
                }
                let options = WriteOptions::new(self.schema.clone(), OutputEncoding::Utf8);
                let mut writer = Writer::new(Vec::with_capacity(4096), options)?;
                writer.write_document(&doc)?;
                Ok(Ok((writer.finish()?, "application/xml; charset=utf-8")))
            }
        }
    }
}

/// Logs a push task that failed outside its own error handling (a database error while
/// recording the outcome; the lease brings the entry back) or panicked.
fn log_delivery(done: Result<(OutboxEntry, anyhow::Result<Outcome>), tokio::task::JoinError>) {
    match done {
        Ok((_, Ok(_))) => {}
        Ok((entry, Err(e))) => tracing::error!(
            order = %entry.order_number,
            error = %format!("{e:#}"),
            "push: cannot record the outcome; the entry is retried when its lease ends"
        ),
        Err(e) => tracing::error!(error = %e, "push: a push task failed"),
    }
}

/// Records one batch of acknowledgements in one transaction and answers each.
async fn write_acks(store: Arc<dyn Store>, batch: Vec<Waiting<Ack, Result<bool, String>>>) {
    let (acks, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    match store.mark_delivered_many(&acks).await {
        Ok(changed) => {
            for (reply, changed) in replies.into_iter().zip(changed) {
                let _ = reply.send(Ok(changed));
            }
        }
        Err(e) => {
            let e = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

// ----- GET /api/v1/outbox -----

/// Query of `GET /api/v1/outbox`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    after_id: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/outbox?state=dead`: the outbox entries, by id.
pub async fn list_handler(
    State(app): State<Arc<App>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text(), None))?;
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<OutboxState>()
                .map_err(|e| Problem::invalid("state", e.to_string()))?,
        ),
        None => None,
    };
    let entries = app
        .store
        .list_outbox(&OutboxFilter {
            state,
            after_id: q.after_id,
            limit: Some(q.limit.unwrap_or(1000).min(10_000)),
        })
        .await?;
    Ok(Json(serde_json::json!({ "entries": entries })).into_response())
}

// ----- obmen outbox … -----

/// `obmen outbox …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the push outbox (newest last).
    List(ListArgs),
    /// Put a dead-lettered entry back in the queue (the running server picks it up).
    Retry(RetryArgs),
}

/// Arguments of `obmen outbox list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only entries in this state: pending, delivered, dead or obsolete.
    #[arg(long)]
    pub state: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Configuration file (default: ./obmen.toml if present); gives the database.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Arguments of `obmen outbox retry`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// The entry id (first column of `obmen outbox list`).
    pub id: i64,
    /// Configuration file (default: ./obmen.toml if present); gives the database.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `obmen outbox …`.
pub fn run(command: &Command, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let config_path = match command {
        Command::List(a) => a.config.as_deref(),
        Command::Retry(a) => a.config.as_deref(),
    };
    let (config, _) = Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let store = store::open(&config.database_url)
            .await
            .with_context(|| format!("cannot open the database {:?}", config.database_url))?;
        let mut out = std::io::stdout().lock();
        match command {
            Command::List(args) => list(store.as_ref(), args, &mut out).await,
            Command::Retry(args) => retry(store.as_ref(), args.id, clock.now(), &mut out).await,
        }
    })
}

/// `obmen outbox list`: writes the entries to `out`.
pub async fn list(
    store: &dyn Store,
    args: &ListArgs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    let state = args
        .state
        .as_deref()
        .map(str::parse::<OutboxState>)
        .transpose()?;
    let entries = store
        .list_outbox(&OutboxFilter {
            state,
            after_id: None,
            limit: Some(args.limit),
        })
        .await?;
    if args.json {
        for e in &entries {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:>8}  {:<24} {:>7}  {:<9} {:>8}  {:<20}  last error",
        "id", "order", "version", "state", "attempts", "next attempt"
    )?;
    for e in &entries {
        writeln!(
            out,
            "{:>8}  {:<24} {:>7}  {:<9} {:>8}  {:<20}  {}",
            e.id,
            e.order_number,
            e.version,
            e.state,
            e.attempts,
            e.next_attempt_at.format("%Y-%m-%d %H:%M:%S"),
            e.last_error.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "{} entries", entries.len())?;
    Ok(ExitCode::SUCCESS)
}

/// `obmen outbox retry ID`.
pub async fn retry(
    store: &dyn Store,
    id: i64,
    now: DateTime<Utc>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    match store.requeue(id, now).await {
        Ok(e) => {
            writeln!(
                out,
                "re-queued outbox entry {} (order {}, version {})",
                e.id, e.order_number, e.version
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(store::Error::NotFound) => anyhow::bail!("no outbox entry {id}"),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange::clock::SystemClock;
    use exchange::domain::OrderInput;
    use onec_emulator::service::{self, ServiceOptions};

    fn order(number: &str, quantity: u32) -> OrderInput {
        serde_json::from_value(serde_json::json!({
            "number": number,
            "customer": {"type": "person", "name": "Ivan"},
            "items": [{"name": "Kettle", "quantity": quantity, "price": "10.00"}],
        }))
        .unwrap()
    }

    /// Two versions of one order handed off before the worker took the first: the older one is
    /// not pushed (1C must never get it after the newer one), the newer one is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handed_off_version_superseded_before_its_push_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let one_c = service::serve(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            ServiceOptions::default(),
        )
        .await
        .unwrap();
        let store = store::open(&dir.path().join("obmen.db").display().to_string())
            .await
            .unwrap();
        let mut config = Config::default();
        config.push.url = Some(format!("http://{}/hs/obmen/orders", one_c.addr()));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rng: Rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1));
        let pusher = Pusher::new(&config, Arc::clone(&store), Arc::clone(&clock), rng).unwrap();
        let (handoff, mut leased) = Handoff::new(4, pusher.lease());
        store.enable_outbox_handoff(handoff).unwrap();

        store
            .upsert_order(&order("S-1", 1), clock.now())
            .await
            .unwrap();
        store
            .upsert_order(&order("S-1", 2), clock.now())
            .await
            .unwrap();
        let first = leased.try_recv().unwrap();
        let second = leased.try_recv().unwrap();
        assert_eq!((first.entry.version, second.entry.version), (1, 2));

        let outcome = pusher
            .deliver_handed(&first.entry, &first.order)
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Skipped);
        let outcome = pusher
            .deliver_handed(&second.entry, &second.order)
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Sent);

        let received: serde_json::Value = reqwest::get(format!("http://{}/received", one_c.addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(received["orders"], serde_json::json!({"S-1": 1}));
        assert_eq!(received["requests"], 1);
        let entries = store.list_outbox(&OutboxFilter::default()).await.unwrap();
        let delivered: Vec<i64> = entries
            .iter()
            .filter(|e| e.state == OutboxState::Delivered)
            .map(|e| e.version)
            .collect();
        assert_eq!(delivered, [2]);
        one_c.shutdown().await.unwrap();
    }

    /// A hand-off that waited for a slot until its lease no longer covers a whole push (5 s
    /// timeout) is left to the claims.
    #[tokio::test]
    async fn a_hand_off_is_pushed_only_while_its_lease_covers_a_push() {
        let store = store::open("sqlite::memory:").await.unwrap();
        let mut config = Config::default();
        config.push.url = Some("http://127.0.0.1:9/hs/obmen/orders".to_owned());
        config.push.timeout_ms = 5000;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rng: Rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1));
        let pusher = Pusher::new(&config, store, Arc::clone(&clock), rng).unwrap();
        let now = clock.now();
        let entry = |seconds: i64| OutboxEntry {
            id: 1,
            order_id: 1,
            order_number: "L-1".to_owned(),
            version: 1,
            idempotency_key: "L-1:1".to_owned(),
            state: OutboxState::Pending,
            attempts: 1,
            next_attempt_at: now,
            leased_until: Some(now + chrono::Duration::seconds(seconds)),
            last_error: None,
            created_at: now,
            last_attempt_at: Some(now),
            delivered_at: None,
        };
        assert!(pusher.lease_left(&entry(7)));
        assert!(!pusher.lease_left(&entry(4)));
        assert!(!pusher.lease_left(&entry(-1)));
    }
}
