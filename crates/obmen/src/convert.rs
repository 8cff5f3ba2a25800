//! `obmen convert FILE --schema V --encoding E [-o OUT] [--xsd-strict]`: rewrites a CommerceML
//! file in another schema version and/or encoding, streaming one document at a time from the
//! reader into the writer.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use commerceml::{Item, OutputEncoding, Reader, SchemaVersion, WriteOptions, Writer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Inputs at least this large get a progress bar (on a terminal only).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// The output encoding, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    /// UTF-8 with a byte order mark.
    #[value(name = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// windows-1251 without BOM, as 1C-Bitrix writes (the default).
    #[value(name = "windows-1251", alias = "cp1251", alias = "1251")]
    Windows1251,
}

impl From<EncodingArg> for OutputEncoding {
    fn from(e: EncodingArg) -> Self {
        match e {
            EncodingArg::Utf8 => Self::Utf8,
            EncodingArg::Windows1251 => Self::Windows1251,
        }
    }
}

/// Arguments of `obmen convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CommerceML file to read.
    pub file: PathBuf,
    /// Schema version to write: 2.05, 2.08, 2.10, 3.1 (any `ВерсияСхемы`; the structure
    /// changes at > 2.05 and at ≥ 3).
    #[arg(long, value_parser = parse_schema)]
    pub schema: SchemaVersion,
    /// Output encoding.
    #[arg(long, value_enum, default_value = "windows-1251")]
    pub encoding: EncodingArg,
    /// Output file (default: standard output). Written next to its final name first and renamed
    /// when complete, so a failed conversion leaves no partial file.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Write the structure of the published 2.10 XSD instead of what Bitrix writes
    /// (requires `--schema 2.10`).
    #[arg(long)]
    pub xsd_strict: bool,
}

fn parse_schema(s: &str) -> Result<SchemaVersion, String> {
    SchemaVersion::parse(s).ok_or_else(|| format!("not a schema version: {s:?} (e.g. 2.08)"))
}

/// What a conversion wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Documents written (those inside containers included).
    pub documents: usize,
    /// Containers read from the input.
    pub containers: usize,
    /// Root-level counterparties.
    pub counterparties: usize,
    /// Other root children.
    pub other: usize,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.xsd_strict && args.schema != SchemaVersion::parse("2.10").expect("literal version") {
        bail!(
            "--xsd-strict writes the published 2.10 schema; use it with --schema 2.10 (got {})",
            args.schema
        );
    }
    let options =
        WriteOptions::new(args.schema.clone(), args.encoding.into()).xsd_strict(args.xsd_strict);
    let summary = match &args.output {
        None => {
            let stdout = io::stdout();
            convert_file(&args.file, stdout.lock(), options)?.0
        }
        Some(out) => convert_to_path(&args.file, out, options)?,
    };
    eprintln!(
        "{}: {} document(s), {} container(s) read, {} counterparty(ies), {} other; written as {} {}{}",
        args.file.display(),
        summary.documents,
        summary.containers,
        summary.counterparties,
        summary.other,
        args.schema,
        OutputEncoding::from(args.encoding).label(),
        if args.xsd_strict { " (XSD-strict)" } else { "" },
    );
    Ok(ExitCode::SUCCESS)
}

/// Converts `input` into the file `out`, atomically: a sibling temporary file is renamed over
/// `out` only when the conversion succeeded.
pub fn convert_to_path(input: &Path, out: &Path, options: WriteOptions) -> anyhow::Result<Summary> {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let result = convert_file(input, file, options).and_then(|(summary, file)| {
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        Ok(summary)
    });
    match result {
        Ok(summary) => {
            std::fs::rename(&partial, out).with_context(|| {
                format!("cannot rename {} to {}", partial.display(), out.display())
            })?;
            Ok(summary)
        }
        Err(e) => {
            // Best effort: the error that matters is the conversion's.
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Converts the file `input` into `out`, showing a progress bar for large inputs when standard
/// error is a terminal. Errors in the input are reported as `FILE:LINE:COL: message`.
pub fn convert_file<W: Write>(
    input: &Path,
    out: W,
    options: WriteOptions,
) -> anyhow::Result<(Summary, W)> {
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = if len >= PROGRESS_MIN_BYTES && io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let located = |e: commerceml::Error| located_error(input, e);
    let mut reader = Reader::new(BufReader::with_capacity(256 << 10, file)).map_err(located)?;
    let mut writer = Writer::with_root(out, options, reader.root())
        .with_context(|| format!("{}: cannot start the output", input.display()))?;
    let mut summary = Summary::default();
    while let Some(item) = reader.next_item().map_err(located)? {
        match &item {
            Item::Document(_) => summary.documents += 1,
            Item::Container(c) => {
                summary.containers += 1;
                summary.documents += c.documents.len();
            }
            Item::Counterparty(_) => summary.counterparties += 1,
            Item::Other(_) => summary.other += 1,
        }
        writer.write_item(&item).with_context(|| {
            format!(
                "{}: cannot write item {}",
                input.display(),
                item_label(&item)
            )
        })?;
        if let Some(bar) = &progress {
            bar.set_position(reader.bytes_read());
        }
    }
    let out = writer
        .finish()
        .with_context(|| format!("{}: cannot finish the output", input.display()))?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok((summary, out))
}

fn located_error(file: &Path, e: commerceml::Error) -> anyhow::Error {
    match e.position() {
        Some(p) => anyhow::anyhow!("{}:{}:{}: {e}", file.display(), p.line, p.column),
        None => anyhow::anyhow!("{}: {e}", file.display()),
    }
}

fn item_label(item: &Item) -> String {
    let doc = |d: &commerceml::Document| {
        format!(
            "document {:?}",
            d.number.as_deref().or(d.id.as_deref()).unwrap_or("?")
        )
    };
    match item {
        Item::Document(d) => doc(d),
        Item::Container(c) => c
            .documents
            .first()
            .map(doc)
            .map_or_else(|| "container".to_owned(), |d| format!("container of {d}")),
        Item::Counterparty(c) => format!("counterparty {:?}", c.id.as_deref().unwrap_or("?")),
        Item::Other(e) => format!("element {}", e.name),
    }
}
