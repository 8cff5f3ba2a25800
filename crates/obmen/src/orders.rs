//! `obmen orders import FILE.jsonl`: bulk-load orders (one JSON order per line) straight into the
//! database, in batches of one transaction each, with a progress bar.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use exchange::clock::{Clock, SystemClock};
use exchange::domain::OrderInput;

use crate::config::Config;

const BATCH: usize = 1000;

/// `obmen orders …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load orders from a JSON Lines file (one order per line, the body of POST /api/v1/orders).
    Import(ImportArgs),
}

/// Arguments of `obmen orders import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The JSON Lines file.
    pub file: PathBuf,
    /// Configuration file (default: ./obmen.toml if present); gives the database.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Counts of an import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// New orders.
    pub created: u64,
    /// Changed orders.
    pub updated: u64,
    /// Orders sent again unchanged.
    pub unchanged: u64,
}

/// Runs `obmen orders …`.
pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    let Command::Import(args) = command;
    let (config, _) = Config::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let counts = runtime.block_on(import_file(&config, args, Arc::new(SystemClock)))?;
    println!(
        "{} created, {} updated, {} unchanged",
        counts.created, counts.updated, counts.unchanged
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads the file into the configured database.
pub async fn import_file(
    config: &Config,
    args: &ImportArgs,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Counts> {
    let store = store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {:?}", config.database_url))?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut reader = BufReader::new(file);
    let mut counts = Counts::default();
    let mut batch: Vec<OrderInput> = Vec::with_capacity(BATCH);
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bar.inc(n as u64);
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let input: OrderInput = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            anyhow::anyhow!(
                "{}:{line_no}: field {}: {}",
                args.file.display(),
                e.path(),
                e.inner()
            )
        })?;
        if input.number.trim().is_empty() {
            anyhow::bail!("{}:{line_no}: field number: empty", args.file.display());
        }
        batch.push(input);
        if batch.len() >= BATCH {
            flush(store.as_ref(), &mut batch, &mut counts, clock.as_ref()).await?;
            bar.set_message(format!(
                "{} orders",
                counts.created + counts.updated + counts.unchanged
            ));
        }
    }
    flush(store.as_ref(), &mut batch, &mut counts, clock.as_ref()).await?;
    bar.finish_and_clear();
    Ok(counts)
}

async fn flush(
    store: &dyn store::Store,
    batch: &mut Vec<OrderInput>,
    counts: &mut Counts,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    for outcome in store.upsert_orders(batch, clock.now()).await? {
        match outcome {
            store::UpsertOutcome::Created(_) => counts.created += 1,
            store::UpsertOutcome::Updated(_) => counts.updated += 1,
            store::UpsertOutcome::Unchanged(_) => counts.unchanged += 1,
        }
    }
    batch.clear();
    Ok(())
}
