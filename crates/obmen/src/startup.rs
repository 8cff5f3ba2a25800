//! Start-up: open the store, settle the exchange password, build the router, serve until shut
//! down. `obmen serve` and the tests go through [`run`] / [`serve`], so tests can bind port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use exchange::clock::{Clock, SystemClock};
use store::Store;
use tokio::net::TcpListener;

use crate::auth::{self, Credentials, PasswordHash};
use crate::config::Config;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::webhook::Webhook;

/// Setting key of the generated exchange password hash.
pub const PASSWORD_SETTING: &str = "exchange_password_hash";

/// Everything a request handler needs.
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// The exchange login.
    pub credentials: Credentials,
    /// Webhook worker, when `webhook.url` is set.
    pub webhook: Option<Webhook>,
    /// Real-time push worker, when `push.url` is set.
    pub push: Option<Arc<crate::push::Pusher>>,
    /// The export and import hooks, compiled.
    pub hooks: Hooks,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What [`prepare`] produced.
#[derive(Debug)]
pub struct Prepared {
    /// The application state.
    pub app: Arc<App>,
    /// The exchange password generated on this start, to be shown once.
    pub generated_password: Option<String>,
}

/// Compiles the hooks, opens (creates, migrates) the store and settles the exchange
/// credentials: the configured password, else the stored hash, else a newly generated password
/// stored hashed.
pub async fn prepare(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Prepared> {
    let problems = config.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid configuration: {}", problems.join("; "));
    }
    let hooks = Hooks::load(&config.hooks)?;
    let store = store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {:?}", config.database_url))?;
    let mut generated_password = None;
    let hash = match &config.exchange_password {
        Some(p) => PasswordHash::new(p.expose()),
        None => match store.get_setting(PASSWORD_SETTING).await? {
            Some(stored) => PasswordHash::parse(&stored)
                .with_context(|| format!("the stored setting {PASSWORD_SETTING} is corrupt"))?,
            None => {
                let password = auth::generate_password(20);
                let hash = PasswordHash::new(&password);
                let kept = store
                    .set_setting_if_absent(PASSWORD_SETTING, &hash.to_stored())
                    .await?;
                if kept == hash.to_stored() {
                    generated_password = Some(password);
                    hash
                } else {
                    // Another instance generated one first; use that.
                    PasswordHash::parse(&kept).with_context(|| {
                        format!("the stored setting {PASSWORD_SETTING} is corrupt")
                    })?
                }
            }
        },
    };
    let webhook = if config.webhook.url.is_some() {
        let rng: crate::push::Rng =
            Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_entropy());
        Some(Webhook::new(
            &config.webhook,
            Arc::clone(&store),
            Arc::clone(&clock),
            rng,
        )?)
    } else {
        None
    };
    let push = if config.push.enabled() {
        let rng: crate::push::Rng =
            Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_entropy());
        Some(Arc::new(
            crate::push::Pusher::new(&config, Arc::clone(&store), Arc::clone(&clock), rng)?
                .with_export_hook(hooks.export.clone()),
        ))
    } else {
        None
    };
    let app = App {
        push,
        credentials: Credentials {
            user: config.exchange_user.clone(),
            hash,
        },
        config,
        store,
        clock,
        metrics: Metrics::default(),
        webhook,
        hooks,
    };
    Ok(Prepared {
        app: Arc::new(app),
        generated_password,
    })
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = crate::http::router(Arc::clone(&app));
    // The webhook worker stops after the server: it finishes the POSTs in flight.
    let (stop_webhook, stopped) = tokio::sync::watch::channel(false);
    let worker = app.webhook.clone().map(|w| {
        let mut stopped = stopped.clone();
        tokio::spawn(w.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let pusher = app
        .push
        .clone()
        .map(|p| tokio::spawn(p.run(std::future::pending::<()>())));
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("HTTP server failed");
    let _ = stop_webhook.send(true);
    if let Some(mut w) = worker {
        let limit = Duration::from_millis(app.config.webhook.timeout_ms) + Duration::from_secs(1);
        if tokio::time::timeout(limit, &mut w).await.is_err() {
            tracing::warn!("the webhook worker did not stop in time; its leased events are retried after the next start");
            w.abort();
        }
    }
    if let Some(p) = pusher {
        p.abort();
    }
    result
}

/// Prepares and serves: what `obmen serve` does after binding.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let prepared = prepare(config, Arc::new(SystemClock)).await?;
    if let Some(p) = &prepared.generated_password {
        announce_password(&prepared.app.config.exchange_user, p);
    }
    serve(listener, prepared.app, shutdown).await
}

fn announce_password(user: &str, password: &str) {
    println!(
        "Generated the exchange password (shown once, stored hashed):\n  login:    {user}\n  password: {password}\n\
         Enter them in 1C's exchange node, or set OBMEN_EXCHANGE_PASSWORD to choose your own."
    );
}

/// Arguments of `obmen serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (default: ./obmen.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `obmen serve`: logs, configuration, listener, graceful shutdown on SIGTERM/SIGINT.
pub fn serve_command(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let (config, file) = Config::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            database = %config.database_url,
            config = %file.as_ref().map_or_else(|| "defaults".to_owned(), |p| p.display().to_string()),
            "obmen serving: exchange at /bitrix/admin/1c_exchange.php, store API at /api/v1"
        );
        run(listener, config, shutdown_signal()).await
    })?;
    tracing::info!("obmen stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, finishing requests");
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `OBMEN_LOG_FORMAT=json` for JSON lines.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("OBMEN_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
