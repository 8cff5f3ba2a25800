//! Applying 1C files (`mode=file` in the legacy protocol, `mode=import` in the new one).
//!
//! The upload is streamed out of the database through the CommerceML reader on a parser thread,
//! which runs the import hook and `exchange::import::interpret` on each document and hands them
//! on in batches; the calling thread has the store match each batch to its orders and apply
//! the planned changes (`Store::apply_documents`: one transaction a batch, each order's facts
//! read once), while the parser reads on. Large files
//! are applied in time slices: the number of root items done is kept in the database, and
//! `import` answers `progress` until the file is through.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use commerceml::{Document, Item};
use exchange::domain::OrderFacts;
use exchange::import::{interpret, plan, unknown_order_message, Incoming};
use store::{ImportProgress, Session, Store};
use tokio::runtime::Handle;

use crate::http::exchange::Failure;
use crate::metrics::ErrorKind;
use crate::startup::App;
use crate::unzip;

/// Updates applied per transaction.
const BATCH: usize = 500;
/// Bytes read from the database per step while streaming an upload.
const READ_CHUNK: u64 = 256 << 10;

/// What an import request achieved.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether the file is through (`success`) or not yet (`progress`).
    pub finished: bool,
    /// Documents applied in this request.
    pub documents: u64,
    /// Lines for the reply.
    pub reply: Vec<String>,
    /// Messages that arose in this request (journal).
    pub messages: Vec<String>,
}

/// Legacy protocol: apply the file right after its upload. An XML that is still incomplete
/// (more chunks to come) is left for the next chunk.
pub async fn import_now(app: Arc<App>, session: Session, name: String) -> Result<Outcome, Failure> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || import_now_blocking(&app, &rt, &session, &name))
        .await
        .map_err(|e| Failure::internal("import task failed", &e))?
}

fn import_now_blocking(
    app: &App,
    rt: &Handle,
    session: &Session,
    name: &str,
) -> Result<Outcome, Failure> {
    let now = app.clock.now();
    if unzip::is_zip(app, rt, session.id, name)? {
        let entries = match unzip::unpack(app, rt, session.id, name) {
            Ok(e) => e,
            // An archive whose end has not arrived yet has no central directory.
            Err(unzip::UnzipError::Incomplete) => return Ok(Outcome::default()),
            Err(unzip::UnzipError::Invalid(m)) => return Err(Failure::protocol(m)),
            Err(unzip::UnzipError::Store(e)) => return Err(e.into()),
        };
        let mut total = Outcome {
            finished: true,
            ..Outcome::default()
        };
        for entry in entries.iter().filter(|e| is_xml(e)) {
            let o = import_whole(app, rt, session, entry, now)?.ok_or_else(|| truncated(entry))?;
            total.documents += o.documents;
            total.messages.extend(o.messages);
        }
        total.reply.clone_from(&total.messages);
        return Ok(total);
    }
    if !is_xml(name) {
        return Ok(Outcome {
            finished: true,
            ..Outcome::default()
        });
    }
    Ok(import_whole(app, rt, session, name, now)?.unwrap_or_default())
}

fn truncated(name: &str) -> Failure {
    Failure::protocol(format!("Cannot read {name}: unexpected end of file."))
}

fn import_whole(
    app: &App,
    rt: &Handle,
    session: &Session,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, Failure> {
    let input = UploadReader::new(app.store.as_ref(), rt, session.id, name);
    let slice = match run_slice(app, rt, input, 0, Limit::default(), now) {
        Ok(s) => s,
        // More chunks are still to come.
        Err(SliceError::Read(commerceml::Error::UnexpectedEof { .. })) => return Ok(None),
        Err(e) => return Err(e.into_failure(name)),
    };
    let progress = ImportProgress {
        position: slice.position,
        documents: slice.documents,
        done: true,
        messages: slice.messages.clone(),
    };
    rt.block_on(
        app.store
            .set_import_progress(session.id, name, &progress, now),
    )?;
    Ok(Some(Outcome {
        finished: true,
        documents: slice.documents,
        reply: slice.messages.clone(),
        messages: slice.messages,
    }))
}

/// New protocol: one `mode=import` request — apply the next time slice of the file.
pub async fn import_step(
    app: Arc<App>,
    session: Session,
    name: String,
) -> Result<Outcome, Failure> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || import_step_blocking(&app, &rt, &session, &name))
        .await
        .map_err(|e| Failure::internal("import task failed", &e))?
}

fn import_step_blocking(
    app: &App,
    rt: &Handle,
    session: &Session,
    name: &str,
) -> Result<Outcome, Failure> {
    let now = app.clock.now();
    let store = app.store.as_ref();
    let mut uploads = rt.block_on(store.list_uploads(session.id))?;
    if !uploads.iter().any(|(n, _)| n == name) {
        // 1C uploads an archive and then asks to import a file inside it (PROTOCOL.md §5.3).
        for (zip, _) in uploads.iter().filter(|(n, _)| n != name) {
            if unzip::is_zip(app, rt, session.id, zip)? {
                unzip::unpack(app, rt, session.id, zip).map_err(unzip::UnzipError::into_failure)?;
            }
        }
        uploads = rt.block_on(store.list_uploads(session.id))?;
    }
    let size = uploads
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, s)| *s);
    if size == 0 {
        return Err(Failure::protocol(format!(
            "File for import is empty: {name}."
        )));
    }
    if unzip::is_zip(app, rt, session.id, name)? {
        // Asked to import the archive itself: unpack and apply every XML inside.
        let entries =
            unzip::unpack(app, rt, session.id, name).map_err(unzip::UnzipError::into_failure)?;
        let mut total = Outcome {
            finished: true,
            ..Outcome::default()
        };
        for entry in entries.iter().filter(|e| is_xml(e)) {
            let o = import_whole(app, rt, session, entry, now)?.ok_or_else(|| truncated(entry))?;
            total.documents += o.documents;
            total.messages.extend(o.messages);
        }
        total.reply.clone_from(&total.messages);
        return Ok(total);
    }
    let mut progress = rt
        .block_on(store.import_progress(session.id, name))?
        .unwrap_or_default();
    if progress.done {
        // 1C repeated `import` for a finished file: the same answer, nothing applied again.
        return Ok(Outcome {
            finished: true,
            documents: 0,
            reply: progress.messages,
            messages: Vec::new(),
        });
    }
    let pacing = &app.config.pacing;
    let limit = Limit {
        deadline: Some(Instant::now() + Duration::from_secs(pacing.import_slice_seconds)),
        items: (pacing.import_slice_items > 0).then_some(pacing.import_slice_items),
    };
    let input = UploadReader::new(store, rt, session.id, name);
    let slice = run_slice(app, rt, input, progress.position, limit, now)
        .map_err(|e| e.into_failure(name))?;
    progress.position = slice.position;
    progress.documents += slice.documents;
    progress.done = slice.finished;
    progress.messages.extend(slice.messages.iter().cloned());
    rt.block_on(store.set_import_progress(session.id, name, &progress, now))?;
    let reply = if slice.finished {
        progress.messages
    } else {
        vec![format!(
            "Applied {} documents of {name}; continuing.",
            progress.documents
        )]
    };
    Ok(Outcome {
        finished: slice.finished,
        documents: slice.documents,
        reply,
        messages: slice.messages,
    })
}

fn is_xml(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".xml")
}

/// What one slice did.
#[derive(Debug, Default)]
pub struct Slice {
    /// Root items consumed from the start of the file.
    pub position: u64,
    /// Documents applied.
    pub documents: u64,
    /// Messages.
    pub messages: Vec<String>,
    /// Whether the end of the file was reached.
    pub finished: bool,
}

/// Why a slice stopped early.
#[derive(Debug)]
pub enum SliceError {
    /// The file cannot be read as CommerceML.
    Read(commerceml::Error),
    /// The database failed.
    Store(store::Error),
}

impl SliceError {
    fn into_failure(self, name: &str) -> Failure {
        match self {
            Self::Read(e) => Failure::protocol(format!("Cannot read {name}: {e}")),
            Self::Store(e) => e.into(),
        }
    }
}

impl From<store::Error> for SliceError {
    fn from(e: store::Error) -> Self {
        Self::Store(e)
    }
}

impl From<commerceml::Error> for SliceError {
    fn from(e: commerceml::Error) -> Self {
        Self::Read(e)
    }
}

/// When a slice stops before the end of the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limit {
    /// Stop after the item during which this instant passed.
    pub deadline: Option<Instant>,
    /// Stop after this many items.
    pub items: Option<u64>,
}

/// Applies root items of `input` after the first `skip` ones, until the end or the limit.
pub fn run_slice(
    app: &App,
    rt: &Handle,
    input: impl Read + Send,
    skip: u64,
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<Slice, SliceError> {
    let mut applier = Applier {
        app,
        rt,
        now,
        messages: Vec::new(),
    };
    // Reading the file and applying it overlap: a scoped thread parses and interprets the
    // documents and hands them over in batches; this thread matches and applies each batch.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Queued>>(1);
    let mut slice = std::thread::scope(|scope| {
        let parser = scope.spawn(move || parse(app, input, skip, limit, &tx));
        for batch in rx {
            // On an error `rx` is dropped, so the parser stops at its next batch.
            applier.resolve(batch)?;
        }
        parser
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map_err(SliceError::Read)
    })?;
    app.metrics.documents_imported(slice.documents);
    for _ in &applier.messages {
        app.metrics.error(ErrorKind::Document);
    }
    slice.messages = applier.messages;
    Ok(slice)
}

/// Reads the root items after the first `skip` ones until the end or the limit, runs the import
/// hook on each document and interprets it, and sends them in batches of [`BATCH`]. The slice
/// it returns has no messages yet: they arise when the batches are applied.
fn parse(
    app: &App,
    input: impl Read,
    skip: u64,
    limit: Limit,
    tx: &std::sync::mpsc::SyncSender<Vec<Queued>>,
) -> Result<Slice, commerceml::Error> {
    let mut reader = commerceml::Reader::new(io::BufReader::with_capacity(64 << 10, input))?;
    let mut parsed = Slice {
        finished: true,
        ..Slice::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    let send = |batch: &mut Vec<Queued>| -> bool {
        let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        full.is_empty() || tx.send(full).is_ok()
    };
    while let Some(item) = reader.next_item()? {
        parsed.position += 1;
        if parsed.position <= skip {
            continue;
        }
        match &item {
            Item::Document(doc) => batch.push(queue(app, doc, &mut parsed.documents)),
            Item::Container(c) => {
                for doc in &c.documents {
                    batch.push(queue(app, doc, &mut parsed.documents));
                }
            }
            Item::Counterparty(_) | Item::Other(_) => {}
        }
        if batch.len() >= BATCH && !send(&mut batch) {
            // The applier stopped on an error; it reports it.
            return Ok(parsed);
        }
        let done_here = parsed.position - skip;
        if limit.deadline.is_some_and(|d| Instant::now() >= d)
            || limit.items.is_some_and(|n| done_here >= n)
        {
            // Stopping right after the last item would answer `progress` for nothing left;
            // peeking is not possible with the streaming reader, so 1C simply asks once more.
            parsed.finished = false;
            break;
        }
    }
    send(&mut batch);
    Ok(parsed)
}

/// One document made ready for the batch lookup: the import hook first (a document it fails on
/// is reported, not applied), then `interpret`.
fn queue(app: &App, doc: &Document, documents: &mut u64) -> Queued {
    let hooked = match app.hooks.import(doc) {
        Ok(d) => d,
        Err(message) => return Queued::Message(message),
    };
    *documents += 1;
    let inc = interpret(&hooked, &app.config.exchange.statuses);
    if inc.number.is_none() && inc.id.is_none() {
        return Queued::Message("A document without a number or id was skipped".to_owned());
    }
    Queued::Document(inc)
}

struct Applier<'a> {
    app: &'a App,
    rt: &'a Handle,
    now: DateTime<Utc>,
    messages: Vec<String>,
}

/// A document waiting for the batch lookup, or a message about one that needs none.
// Nearly every entry is a document: boxing it would cost an allocation per document.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Document(Incoming),
    Message(String),
}

impl Applier<'_> {
    /// Matches a batch of documents to their orders and applies the plan of each against its
    /// order, in one store call (`Store::apply_documents`). Messages keep the documents' order.
    fn resolve(&mut self, queued: Vec<Queued>) -> Result<(), SliceError> {
        let documents: Vec<&Incoming> = queued
            .iter()
            .filter_map(|q| match q {
                Queued::Document(inc) => Some(inc),
                Queued::Message(_) => None,
            })
            .collect();
        let keys: Vec<(Option<&str>, Option<&str>)> = documents
            .iter()
            .map(|inc| (inc.number.as_deref(), inc.id.as_deref()))
            .collect();
        // Per document: the plan's messages, and whether it asked for a status change.
        let mut planned: Vec<(Vec<String>, bool)> = vec![(Vec::new(), false); documents.len()];
        let mut plan_one = |i: usize, order: &OrderFacts| {
            let mut update = plan(order, documents[i]);
            planned[i] = (
                std::mem::take(&mut update.messages),
                update.status.is_some(),
            );
            update
        };
        let answers = self.rt.block_on(self.app.store.apply_documents(
            &keys,
            &mut plan_one,
            self.now,
        ))?;
        let mut status_changes = 0u64;
        let mut answers = answers.into_iter().zip(planned);
        for q in queued {
            let inc = match q {
                Queued::Document(inc) => inc,
                Queued::Message(m) => {
                    self.messages.push(m);
                    continue;
                }
            };
            match answers.next() {
                Some((Some(changed), (mut messages, status))) => {
                    self.messages.append(&mut messages);
                    status_changes += u64::from(changed && status);
                }
                _ => {
                    let shown = inc.number.or(inc.id).unwrap_or_default();
                    self.messages.push(unknown_order_message(&shown));
                }
            }
        }
        // The webhook events were recorded by the store with the changes (durable queue).
        self.app.metrics.status_changes(status_changes);
        Ok(())
    }
}

/// Streams an upload out of the database in bounded chunks.
pub struct UploadReader<'a> {
    store: &'a dyn Store,
    rt: &'a Handle,
    session_id: i64,
    name: &'a str,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> UploadReader<'a> {
    /// A reader of the session's file `name`.
    pub fn new(store: &'a dyn Store, rt: &'a Handle, session_id: i64, name: &'a str) -> Self {
        Self {
            store,
            rt,
            session_id,
            name,
            offset: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for UploadReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            self.buf = self
                .rt
                .block_on(self.store.read_upload_range(
                    self.session_id,
                    self.name,
                    self.offset,
                    READ_CHUNK,
                ))
                .map_err(io::Error::other)?;
            self.pos = 0;
            self.offset += self.buf.len() as u64;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// PROTOCOL.md §4.5, defensively: sale files of a new-protocol session that were stored but never
/// (fully) imported — 1C skipped `import` — are applied when the next run starts (`checkauth` or
/// `init`). Files that are still incomplete are dropped with the upload area.
pub async fn import_leftovers(app: Arc<App>, session: Session) -> Result<Outcome, Failure> {
    if session.version.is_none() {
        // Legacy runs import at `file` time.
        return Ok(Outcome::default());
    }
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || leftovers_blocking(&app, &rt, &session))
        .await
        .map_err(|e| Failure::internal("import task failed", &e))?
}

fn leftovers_blocking(app: &App, rt: &Handle, session: &Session) -> Result<Outcome, Failure> {
    let now = app.clock.now();
    let store = app.store.as_ref();
    let mut total = Outcome {
        finished: true,
        ..Outcome::default()
    };
    let uploads = rt.block_on(store.list_uploads(session.id))?;
    if uploads.is_empty() {
        return Ok(total);
    }
    for (name, _) in &uploads {
        if unzip::is_zip(app, rt, session.id, name)? {
            if let Err(e) = unzip::unpack(app, rt, session.id, name) {
                tracing::warn!(session = session.id, file = %name, error = ?e, "left-over archive not unpacked");
            }
        }
    }
    for (name, _) in rt.block_on(store.list_uploads(session.id))? {
        if !is_xml(&name) {
            continue;
        }
        let progress = rt.block_on(store.import_progress(session.id, &name))?;
        let skip = match &progress {
            Some(p) if p.done => continue,
            Some(p) => p.position,
            None => 0,
        };
        let input = UploadReader::new(store, rt, session.id, &name);
        let slice = match run_slice(app, rt, input, skip, Limit::default(), now) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(session = session.id, file = %name, error = ?e, "left-over file not imported");
                continue;
            }
        };
        let mut p = progress.unwrap_or_default();
        p.position = slice.position;
        p.documents += slice.documents;
        p.done = true;
        p.messages.extend(slice.messages.iter().cloned());
        rt.block_on(store.set_import_progress(session.id, &name, &p, now))?;
        tracing::info!(session = session.id, file = %name, documents = slice.documents, "imported a file 1C never asked to import");
        total.documents += slice.documents;
        total.messages.extend(slice.messages);
    }
    Ok(total)
}
