//! `mode=query`: the orders due, streamed as CommerceML while they are read page by page.
//!
//! Three stages overlap, each a page ahead of the next: a task on the runtime reads
//! `Store::orders_due` page by page and deals the pages round-robin to the encoder threads
//! (one or two, see `encoders`);
//! each encoder converts its orders with `exchange::export::order_document`, runs the export
//! hook on each and encodes the documents with a fragment `commerceml::Writer` into the bytes of
//! the page (and frees them on the thread that built them); the writing thread takes the pages
//! back in order, records each as offered in the session's ledger (in the background; confirmed
//! only at `success`, and complete before the answer ends) and hands its bytes, between the
//! declaration and the root's end tag, to the response body over a bounded channel. Memory
//! stays bounded (a few pages) whatever the number of orders, and the first bytes leave before
//! the last order is read. An order whose hook fails is neither written nor recorded: it stays
//! due, and the journal of the request says why.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, Utc};
use commerceml::{SchemaVersion, WriteOptions, Writer};
use exchange::domain::Order;
use exchange::protocol::Mode;
use store::Session;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::http::exchange::{finish, Record};
use crate::metrics::ErrorKind;
use crate::startup::App;

const CHUNK: usize = 64 << 10;
/// Largest piece of an encoded page handed to the response body at once.
const BIG_CHUNK: usize = 256 << 10;
/// Pages of due orders read ahead for each encoder (a page of 250 orders is one to two MiB).
const PAGES_AHEAD: usize = 1;

/// The streaming `query` response. The producer journals the request when it is done.
pub fn query_response(
    app: Arc<App>,
    session: Session,
    mut rec: Record,
    started: Instant,
    now: DateTime<Utc>,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let encoding = app.config.exchange.encoding;
    let rt = Handle::current();
    rec.session_id = Some(session.id);
    rec.bytes = 0;
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            sent: 0,
        };
        let result = write_orders(&app, &rt, &session, &mut sink, now, &mut rec.messages);
        match result {
            Ok(count) => {
                rec.documents = count;
                app.metrics.orders_exported(count);
            }
            Err(e) => {
                tracing::error!(error = %e, session = session.id, "query failed mid-stream");
                app.metrics.error(ErrorKind::Internal);
                rec.error = Some(e.to_string());
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
        rec.bytes = sink.sent;
        rt.block_on(finish(&app, Some(Mode::Query), rec, started, now));
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    if let Ok(v) =
        HeaderValue::from_str(&format!("application/xml; charset={}", encoding.charset()))
    {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The schema version of a session: the `version` 1C sent at `init`, else 2.05 (Bitrix).
pub fn session_schema(session: &Session) -> SchemaVersion {
    session
        .version
        .as_deref()
        .and_then(SchemaVersion::parse)
        .unwrap_or_else(SchemaVersion::v2_05)
}

fn write_orders(
    app: &Arc<App>,
    rt: &Handle,
    session: &Session,
    sink: &mut ChannelSink,
    now: DateTime<Utc>,
    messages: &mut Vec<String>,
) -> anyhow::Result<u64> {
    let settings = &app.config.exchange;
    let schema = session_schema(session);
    let offset = FixedOffset::east_opt(settings.utc_offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    let generated = now
        .with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let options =
        WriteOptions::new(schema.clone(), settings.encoding.output()).generated_at(generated);
    let mut writer = Writer::new(&mut *sink, options.clone())?;
    writer.flush()?;
    let mut count = 0u64;
    if settings.export_enabled {
        // Three stages overlap: a task reads pages of due orders, [`encoders`] threads build
        // and encode their documents, and this thread records each page as offered (in the
        // background) and sends its bytes, in page order.
        let encoded = encode_ahead(app, rt, session, &options);
        let mut recording = Vec::new();
        let mut sent = Ok(());
        let mut seq = 0;
        loop {
            let Ok(page) = encoded[seq % encoded.len()].recv() else {
                // The encoder of the next page has ended: every page is through.
                break;
            };
            if page.as_ref().is_ok_and(|p| p.last) {
                seq += 1;
            }
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    sent = Err(e);
                    break;
                }
            };
            messages.extend(page.messages);
            if !page.offered.is_empty() {
                count += page.offered.len() as u64;
                let store = Arc::clone(&app.store);
                let session_id = session.id;
                recording.push(rt.spawn(async move {
                    store.record_offered(session_id, &page.offered, now).await
                }));
            }
            if let Err(e) = writer.get_mut().send_bytes(page.bytes) {
                sent = Err(e.into());
                break;
            }
        }
        // Every order written is in the ledger before the answer ends, so the `success` that
        // follows it confirms all of them.
        for r in recording {
            rt.block_on(r)??;
        }
        sent?;
    }
    writer.finish()?.send_rest()?;
    Ok(count)
}

/// Part of a page of due orders, converted and encoded.
struct EncodedPage {
    /// Whether this is the last part of its page.
    last: bool,
    /// The documents in the output encoding, as the writer puts them under the root.
    bytes: Vec<u8>,
    /// `(order id, version)` of the documents, for the ledger.
    offered: Vec<(i64, i64)>,
    /// Journal messages (export hook failures).
    messages: Vec<String>,
}

/// Threads that build and encode the documents of the due orders: one less than the cores, one
/// or two. Page `n` goes to encoder `n % encoders()`, so the writer takes them back in order from
/// each encoder's channel in turn. The reader, the writer, SQLite's worker and 1C's own reading
/// need the other core: on 2 cores, one encoder answered a 100,000-order `query` in 1.6 s and two
/// in 2.0–2.1 s (more thread switches for the same work); a third would hold one more page in
/// memory.
fn encoders() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .clamp(1, 2)
}
/// Orders encoded into one [`EncodedPage`] (about 7 KiB each in Bitrix's layout).
const ENCODED_PART: usize = 125;

/// Builds and encodes the documents of the due orders on [`encoders`] blocking threads, each
/// holding at most one encoded page that the writer has not taken yet. An order whose export
/// hook fails is left out of its page (it stays due) with a message. Each thread frees the
/// documents it built, right after encoding them.
fn encode_ahead(
    app: &Arc<App>,
    rt: &Handle,
    session: &Session,
    options: &WriteOptions,
) -> Vec<std::sync::mpsc::Receiver<anyhow::Result<EncodedPage>>> {
    let ways = encoders();
    let pages = prefetch_due_pages(app, rt, ways);
    let mut outputs = Vec::with_capacity(ways);
    for mut input in pages {
        // A rendezvous: an encoded page waits in its encoder until the writer takes it, and the
        // encoder goes on with the next part once it is taken (memory: a page less per encoder).
        let (tx, rx) = std::sync::mpsc::sync_channel(0);
        outputs.push(rx);
        let app = Arc::clone(app);
        let session_id = session.id;
        let options = options.clone();
        rt.spawn_blocking(move || {
            while let Some(page) = input.blocking_recv() {
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                };
                // In parts, so that less waits encoded for the writer.
                let parts = page.chunks(ENCODED_PART).count();
                for (n, part) in page.chunks(ENCODED_PART).enumerate() {
                    let encoded = encode_part(&app, session_id, &options, part, n + 1 == parts);
                    if tx.send(encoded).is_err() {
                        // The writer stopped (1C went away, or an error).
                        return;
                    }
                }
            }
        });
    }
    outputs
}

fn encode_part(
    app: &App,
    session_id: i64,
    options: &WriteOptions,
    page: &[Order],
    last: bool,
) -> anyhow::Result<EncodedPage> {
    let settings = &app.config.exchange;
    let mut writer = Writer::fragment(Vec::with_capacity(page.len() * 8192), options.clone());
    let mut offered = Vec::with_capacity(page.len());
    let mut messages = Vec::new();
    for order in page {
        let mut doc = exchange::export::order_document(order, &options.schema, settings);
        match app.hooks.export(order, &mut doc) {
            Ok(()) => {
                writer.write_document(&doc)?;
                offered.push((order.id, order.version));
            }
            Err(e) => {
                let number = &order.input.number;
                tracing::warn!(order = %number, session = session_id, error = %e, "export hook failed; order not exported");
                app.metrics.error(ErrorKind::Document);
                messages.push(crate::hooks::export_message(&e, number));
            }
        }
    }
    Ok(EncodedPage {
        last,
        bytes: writer.finish()?,
        offered,
        messages,
    })
}

/// Pages of the orders due, read ahead on the runtime and dealt round-robin to `ways`
/// receivers: at most [`PAGES_AHEAD`] pages wait in each. The reader stops at the last page, at
/// the first error (sent as the last item), or when a receiver is dropped (1C went away).
fn prefetch_due_pages(
    app: &App,
    rt: &Handle,
    ways: usize,
) -> Vec<mpsc::Receiver<store::Result<Vec<Order>>>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..ways).map(|_| mpsc::channel(PAGES_AHEAD)).unzip();
    let store = Arc::clone(&app.store);
    let statuses = app.config.exchange.export_statuses.clone();
    let page_size = app.config.pacing.query_page_size;
    rt.spawn(async move {
        let mut after = 0i64;
        for seq in 0.. {
            let page = store.orders_due(&statuses, after, page_size).await;
            // Where the next page starts: nowhere after a short page or an error.
            let next = match &page {
                Ok(p) if p.is_empty() => break,
                Ok(p) if p.len() >= page_size as usize => p.last().map(|o| o.id),
                _ => None,
            };
            if senders[seq % ways].send(page).await.is_err() {
                break;
            }
            match next {
                Some(id) => after = id,
                None => break,
            }
        }
    });
    receivers
}

/// A `Write` that sends full chunks to the response body; blocks when 1C reads slowly.
struct ChannelSink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChannelSink {
    /// Sends what is buffered, then `bytes` in chunks of at most [`BIG_CHUNK`] (slices of one
    /// allocation, not copies).
    fn send_bytes(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        self.send_rest()?;
        let mut bytes = Bytes::from(bytes);
        while !bytes.is_empty() {
            let chunk = bytes.split_to(bytes.len().min(BIG_CHUNK));
            self.send(chunk)?;
        }
        Ok(())
    }

    fn send(&mut self, chunk: Bytes) -> io::Result<()> {
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "1C closed the connection"))
    }

    fn send_rest(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.send(Bytes::from(chunk))
    }
}

impl Write for ChannelSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_rest()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
