//! `mode=query`: the orders due, streamed as CommerceML while they are read page by page.
//!
//! Three stages overlap, each a page ahead of the next: a task on the runtime reads
//! `Store::orders_due` page by page; a blocking thread converts the orders with
//! `exchange::export::order_document` and runs the export hook on each; the writing thread
//! records each page as offered in the session's ledger (in the background; confirmed only at
//! `success`, and complete before the answer ends) and writes it through `commerceml::Writer`
//! into a sink that hands 64 KiB chunks to the response body over a bounded channel. Memory
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
/// Pages of due orders read, and pages of documents built, ahead of the writer (each page of
/// 500 orders is a few MiB).
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
    let mut writer = Writer::new(&mut *sink, options)?;
    let mut count = 0u64;
    if settings.export_enabled {
        // Three stages overlap: a task reads pages of due orders, a thread builds their
        // documents (and runs the export hook), and this thread records each page as offered
        // (in the background) and writes it.
        let built = build_ahead(app, rt, session, &schema);
        let mut recording = Vec::new();
        for page in built {
            let page = page?;
            messages.extend(page.messages);
            if !page.offered.is_empty() {
                let store = Arc::clone(&app.store);
                let session_id = session.id;
                recording.push(rt.spawn(async move {
                    store.record_offered(session_id, &page.offered, now).await
                }));
            }
            for doc in &page.documents {
                writer.write_document(doc)?;
                count += 1;
            }
        }
        // Every order written is in the ledger before the answer ends, so the `success` that
        // follows it confirms all of them.
        for r in recording {
            rt.block_on(r)??;
        }
    }
    writer.finish()?;
    sink.send_rest()?;
    Ok(count)
}

/// One page of due orders, converted.
struct BuiltPage {
    documents: Vec<commerceml::Document>,
    /// `(order id, version)` of the documents, for the ledger.
    offered: Vec<(i64, i64)>,
    /// Journal messages (export hook failures).
    messages: Vec<String>,
}

/// Builds the documents of the due orders on a blocking thread, [`PAGES_AHEAD`] page(s) ahead
/// of the writer. An order whose export hook fails is left out of its page (it stays due) with a
/// message.
fn build_ahead(
    app: &Arc<App>,
    rt: &Handle,
    session: &Session,
    schema: &SchemaVersion,
) -> std::sync::mpsc::Receiver<anyhow::Result<BuiltPage>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(PAGES_AHEAD);
    let app = Arc::clone(app);
    let handle = rt.clone();
    let session_id = session.id;
    let schema = schema.clone();
    rt.spawn_blocking(move || {
        let settings = &app.config.exchange;
        let mut pages = prefetch_due_pages(&app, &handle);
        while let Some(page) = pages.blocking_recv() {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            let mut built = BuiltPage {
                documents: Vec::with_capacity(page.len()),
                offered: Vec::with_capacity(page.len()),
                messages: Vec::new(),
            };
            for order in &page {
                let mut doc = exchange::export::order_document(order, &schema, settings);
                match app.hooks.export(order, &mut doc) {
                    Ok(()) => {
                        built.documents.push(doc);
                        built.offered.push((order.id, order.version));
                    }
                    Err(e) => {
                        let number = &order.input.number;
                        tracing::warn!(order = %number, session = session_id, error = %e, "export hook failed; order not exported");
                        app.metrics.error(ErrorKind::Document);
                        built.messages.push(crate::hooks::export_message(&e, number));
                    }
                }
            }
            if tx.send(Ok(built)).is_err() {
                // The writer stopped (1C went away, or an error).
                return;
            }
        }
    });
    rx
}

/// Pages of the orders due, read ahead on the runtime: at most [`PAGES_AHEAD`] pages wait in
/// memory. The reader stops at the last page, at the first error (sent as the last item), or
/// when the receiver is dropped (1C went away).
fn prefetch_due_pages(app: &App, rt: &Handle) -> mpsc::Receiver<store::Result<Vec<Order>>> {
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let store = Arc::clone(&app.store);
    let statuses = app.config.exchange.export_statuses.clone();
    let page_size = app.config.pacing.query_page_size;
    rt.spawn(async move {
        let mut after = 0i64;
        loop {
            let page = store.orders_due(&statuses, after, page_size).await;
            // Where the next page starts: nowhere after a short page or an error.
            let next = match &page {
                Ok(p) if p.is_empty() => break,
                Ok(p) if p.len() >= page_size as usize => p.last().map(|o| o.id),
                _ => None,
            };
            if tx.send(page).await.is_err() {
                break;
            }
            match next {
                Some(id) => after = id,
                None => break,
            }
        }
    });
    rx
}

/// A `Write` that sends full chunks to the response body; blocks when 1C reads slowly.
struct ChannelSink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChannelSink {
    fn send_rest(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "1C closed the connection"))
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
