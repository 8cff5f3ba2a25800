//! `obmen validate FILE...`: reads each file with the streaming reader and reports its schema
//! version, encoding, namespace and number of documents and containers, with a warning for
//! every document whose lines do not add up to its `Сумма`. Exit status 0 when every file
//! reads; otherwise each failure is printed as `FILE:LINE:COL: message` and the status is 1.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use commerceml::tags as t;
use commerceml::{Document, Error, Item, Position, Reader};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Files at least this large get a progress bar (on a terminal only).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// Arguments of `obmen validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CommerceML files to read.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// What one file holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `ВерсияСхемы` as written.
    pub schema_version: Option<String>,
    /// The encoding the file was read in.
    pub encoding: String,
    /// The encoding named in the XML declaration.
    pub declared_encoding: Option<String>,
    /// Namespace URI of the root element.
    pub namespace: Option<String>,
    /// Documents directly under the root.
    pub documents: usize,
    /// Documents inside containers.
    pub container_documents: usize,
    /// `Контейнер` elements.
    pub containers: usize,
    /// Root-level counterparties.
    pub counterparties: usize,
    /// Other root children (catalogs, offers, …).
    pub other: usize,
    /// One line per document whose lines do not add up to its sum, `LINE:COL: text`.
    pub warnings: Vec<String>,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for path in &args.files {
        match validate_file(path) {
            Ok(summary) => {
                writeln!(out, "{}", report(path, &summary))?;
                for w in &summary.warnings {
                    writeln!(out, "{}:{w}", path.display())?;
                }
            }
            Err(e) => {
                failed = true;
                out.flush()?;
                eprintln!("{}", error_line(path, &e));
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The one-line report of a file that reads.
pub fn report(path: &Path, s: &Summary) -> String {
    let mut line = format!(
        "{}: schema {}, encoding {}",
        path.display(),
        s.schema_version.as_deref().unwrap_or("(none)"),
        s.encoding
    );
    if let Some(declared) = &s.declared_encoding {
        if !declared.eq_ignore_ascii_case(&s.encoding) {
            let _ = write!(line, " (declared {declared})");
        }
    }
    let _ = write!(
        line,
        ", namespace {}, {} documents, {} containers",
        s.namespace.as_deref().unwrap_or("(none)"),
        s.documents + s.container_documents,
        s.containers
    );
    if s.counterparties > 0 {
        let _ = write!(line, ", {} counterparties", s.counterparties);
    }
    if s.other > 0 {
        let _ = write!(line, ", {} other elements", s.other);
    }
    if !s.warnings.is_empty() {
        let _ = write!(line, ", {} warnings", s.warnings.len());
    }
    line
}

/// `FILE:LINE:COL: message` for an error.
pub fn error_line(path: &Path, e: &Error) -> String {
    let full = e.to_string();
    match e.position() {
        Some(p) => {
            let prefix = format!("{p}: ");
            let message = full.strip_prefix(&prefix).unwrap_or(&full);
            let mut where_ = format!("byte {}", p.offset);
            if !p.path.is_empty() {
                let _ = write!(where_, ", at {}", p.path);
            }
            format!(
                "{}:{}:{}: {message} ({where_})",
                path.display(),
                p.line,
                p.column
            )
        }
        // Errors without a place in the text (I/O, unsupported declared encoding) point at
        // the start of the file.
        None => format!("{}:1:1: {full}", path.display()),
    }
}

/// Reads one file to the end, with a progress bar for large files on a terminal.
pub fn validate_file(path: &Path) -> Result<Summary, Error> {
    let file = File::open(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if len >= PROGRESS_MIN_BYTES && io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(path.display().to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let result = validate_reader(file, |done| bar.set_position(done));
    bar.finish_and_clear();
    result
}

/// Reads a document from any reader; `progress` gets the bytes read after each item.
pub fn validate_reader<R: io::Read>(
    input: R,
    mut progress: impl FnMut(u64),
) -> Result<Summary, Error> {
    let mut reader = Reader::new(input)?;
    let root = reader.root().clone();
    let mut s = Summary {
        schema_version: root.schema_version.map(|v| v.as_str().to_owned()),
        encoding: reader.encoding().to_owned(),
        declared_encoding: reader.declared_encoding().map(str::to_owned),
        namespace: root.namespace,
        ..Summary::default()
    };
    while let Some(item) = reader.next_item()? {
        let at = reader.item_position();
        match item {
            Item::Document(d) => {
                s.documents += 1;
                check_sums(&d, &at, &mut s.warnings);
            }
            Item::Container(c) => {
                s.containers += 1;
                s.container_documents += c.documents.len();
                for d in &c.documents {
                    check_sums(d, &at, &mut s.warnings);
                }
            }
            Item::Counterparty(_) => s.counterparties += 1,
            Item::Other(_) => s.other += 1,
        }
        progress(reader.bytes_read());
    }
    Ok(s)
}

/// A warning when the lines (goods, services, delivery, discount lines alike) do not add up
/// to the document's sum; subordinate documents are checked too.
fn check_sums(d: &Document, at: &Position, warnings: &mut Vec<String>) {
    if d.sum_matches() == Some(false) {
        let which = match (&d.number, &d.id) {
            (Some(n), _) => format!("{} {n}", t::NUMBER),
            (None, Some(id)) => format!("{} {id}", t::ID),
            (None, None) => "without number".to_owned(),
        };
        warnings.push(format!(
            "{}:{}: warning: document {which}: lines add up to {} but {} is {}",
            at.line,
            at.column,
            d.lines_total().unwrap_or_default(),
            t::SUM,
            d.sum.unwrap_or_default()
        ));
    }
    for sub in &d.subordinates {
        check_sums(sub, at, warnings);
    }
}
