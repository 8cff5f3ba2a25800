//! 1C's side of one "Обмен с сайтом" run against any site URL (PROTOCOL.md §3–§5):
//! checkauth → init → query → success, then the upload of 1C's changes (file chunks, import).

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use exchange::clock::{Clock, SystemClock};
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, USER_AGENT, WWW_AUTHENTICATE,
};
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use crate::db::{Database, OrderRecord, OrderState};
use crate::error::{Error, Result};
use crate::script::{Position, Scope, Script, StatusAs};
use crate::wire::{self, Reply, Status};
use crate::xml::{self, OutgoingDocument, UploadSchema};

/// Whether to zip uploads when the site offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZipMode {
    /// Zip when `init` said `zip=yes`.
    #[default]
    Auto,
    /// Never zip.
    Off,
}

/// The encoding of uploaded files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadEncoding {
    /// UTF-8 with a BOM, as 1C writes.
    #[default]
    Utf8,
    /// windows-1251 without a BOM.
    Windows1251,
}

/// Faults to inject, so tests can prove the site's guarantees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Stop after `query`: no `success`, no upload.
    pub no_success: bool,
    /// After the upload, start a new run (checkauth, init) and upload the same file again.
    pub replay_file: bool,
    /// Send the first chunk with a `Content-Length` larger than the bytes sent, then drop the
    /// connection; the session ends there (plain `http://` only).
    pub cut_upload: bool,
    /// Give the first document sent a status no mapping knows (code `ZZ`).
    pub unmapped_status: bool,
}

/// Everything one session needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The exchange URL (`https://shop/bitrix/admin/1c_exchange.php`).
    pub url: String,
    /// More exchange URLs of the same site (other instances on one database). Empty by
    /// default: every request goes to `url`. Otherwise consecutive requests go round-robin
    /// over `url`, then these in order, so one session's requests alternate between instances.
    pub alternate: Vec<String>,
    /// Login.
    pub user: String,
    /// Password.
    pub password: String,
    /// The `version` sent at init; `None` for the legacy protocol (no version).
    pub version: Option<String>,
    /// Zip uploads when offered.
    pub zip: ZipMode,
    /// Encoding of uploaded files.
    pub encoding: UploadEncoding,
    /// What goes back.
    pub script: Script,
    /// Faults to inject.
    pub faults: Faults,
    /// Send Basic credentials on every request, not only at `checkauth`.
    pub basic_always: bool,
    /// Refuse UTF-8 XML without a BOM, as one 1C build did (§4.3).
    pub require_utf8_bom: bool,
    /// Timeout of each request.
    pub timeout: Duration,
    /// Upper bound on `import` calls answered `progress`.
    pub max_import_steps: u32,
    /// Source of 1C's dates.
    pub clock: Arc<dyn Clock>,
}

impl ClientOptions {
    /// Options with defaults: version 2.08, zip when offered, UTF-8, the default script.
    pub fn new(
        url: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            alternate: Vec::new(),
            user: user.into(),
            password: password.into(),
            version: Some("2.08".into()),
            zip: ZipMode::Auto,
            encoding: UploadEncoding::Utf8,
            script: Script::default(),
            faults: Faults::default(),
            basic_always: false,
            require_utf8_bom: false,
            timeout: Duration::from_secs(120),
            max_import_steps: 10_000,
            clock: Arc::new(SystemClock),
        }
    }
}

/// What one session did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Order documents in the `query` answer (duplicates included).
    pub received: u64,
    /// Documents created in the 1C database.
    pub created: u64,
    /// Documents updated.
    pub updated: u64,
    /// Extra copies of an order within the same answer.
    pub duplicates: u64,
    /// Documents sent back to the site.
    pub sent: u64,
    /// Message lines from the site's `file`/`import` answers.
    pub messages: Vec<String>,
}

impl Summary {
    /// A short human-readable report.
    pub fn render(&self) -> String {
        let mut s = format!(
            "received {} orders: {} created, {} updated, {} duplicates; sent {} documents",
            self.received, self.created, self.updated, self.duplicates, self.sent
        );
        for m in &self.messages {
            s.push_str("\nsite: ");
            s.push_str(m);
        }
        s
    }
}

/// One exchange run.
#[derive(Debug)]
pub struct Session {
    options: ClientOptions,
    db: Database,
    http: reqwest::Client,
    cookie: Option<String>,
    sessid: Option<String>,
    zip_offered: bool,
    file_limit: usize,
    file_counter: u32,
    /// How many requests went out (picks the next URL round-robin).
    requests: AtomicUsize,
}

/// Runs one session.
pub async fn run_session(options: ClientOptions, db: Database) -> Result<Summary> {
    Session::new(options, db)?.run().await
}

/// Runs `n` sessions at the same time against the same site and 1C database.
pub async fn run_parallel(
    options: &ClientOptions,
    db: &Database,
    n: usize,
) -> Vec<Result<Summary>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (o, d) = (options.clone(), db.clone());
        set.spawn(async move { (i, run_session(o, d).await) });
    }
    let mut out: Vec<(usize, Result<Summary>)> = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => out.push(r),
            Err(e) => out.push((usize::MAX, Err(Error::Config(format!("session task: {e}"))))),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

impl Session {
    /// Prepares a session; nothing is sent yet.
    pub fn new(options: ClientOptions, db: Database) -> Result<Self> {
        for url in std::iter::once(&options.url).chain(&options.alternate) {
            reqwest::Url::parse(url).map_err(|e| Error::Config(format!("bad URL {url:?}: {e}")))?;
        }
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            options,
            db,
            http,
            cookie: None,
            sessid: None,
            zip_offered: false,
            file_limit: 0,
            file_counter: 0,
            requests: AtomicUsize::new(0),
        })
    }

    fn now(&self) -> chrono::NaiveDateTime {
        self.options.clock.now().naive_utc()
    }

    /// Runs the whole session.
    pub async fn run(mut self) -> Result<Summary> {
        let started = self.now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let session = self.db.start_session(&started, &self.options.url).await?;
        let mut summary = Summary::default();
        let result = self.run_inner(session, &mut summary).await;
        let outcome = match &result {
            Ok(o) => (*o).to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let counts = (
            summary.received,
            summary.created,
            summary.updated,
            summary.duplicates,
            summary.sent,
        );
        let confirmed = matches!(result, Ok("ok" | "cut"));
        let recorded = self
            .db
            .finish_session(session, counts, confirmed, &outcome)
            .await;
        // The session's own error matters more than a failure to record it.
        result?;
        recorded?;
        Ok(summary)
    }

    async fn run_inner(&mut self, session: i64, summary: &mut Summary) -> Result<&'static str> {
        self.checkauth().await?;
        self.init().await?;
        let answer = self.query().await?;
        let now = self.now();
        let (counts, _numbers) = self
            .db
            .store_answer(
                session,
                &answer.orders,
                &now.format("%Y-%m-%d").to_string(),
                &now.format("%H:%M:%S").to_string(),
            )
            .await?;
        summary.received = answer.orders.len() as u64;
        summary.created = counts.created;
        summary.updated = counts.updated;
        summary.duplicates = counts.duplicates;
        if self.options.faults.no_success {
            return Ok("no-success");
        }
        self.success().await?;
        self.upload(session, summary).await
    }

    /// The base URL of the next request: `url`, or round-robin over `url` and `alternate`.
    fn next_base(&self) -> &str {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) % (1 + self.options.alternate.len());
        match n.checked_sub(1) {
            Some(i) => &self.options.alternate[i],
            None => &self.options.url,
        }
    }

    fn url(&self, mode: &str, extra: &[(&str, &str)]) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(self.next_base())
            .map_err(|e| Error::Config(format!("bad URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("type", "sale").append_pair("mode", mode);
            for (k, v) in extra {
                q.append_pair(k, v);
            }
            if mode != "checkauth" {
                if let Some(s) = &self.sessid {
                    q.append_pair("sessid", s);
                }
            }
        }
        Ok(url)
    }

    fn headers(&self, mode: &str) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("1C+Enterprise/8.3"));
        if mode == "checkauth" || self.options.basic_always || self.cookie.is_none() {
            h.insert(AUTHORIZATION, self.basic()?);
        }
        if let Some(c) = &self.cookie {
            let v = HeaderValue::from_str(c)
                .map_err(|_| Error::violation("checkauth", "cookie is not a valid header value"))?;
            h.insert(COOKIE, v);
        }
        Ok(h)
    }

    fn basic(&self) -> Result<HeaderValue> {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.options.user, self.options.password));
        HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| Error::Config("credentials do not fit in a header".into()))
    }

    async fn send(
        &self,
        mode: &str,
        extra: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let headers = self.headers(mode)?;
        let sent_basic = headers.contains_key(AUTHORIZATION);
        let reply = self.send_once(mode, extra, body.clone(), headers).await?;
        // Like 1C's HTTP connection with credentials: a Basic challenge to a request that
        // carried none is answered once with the credentials.
        if reply.reply.status == 401 && reply.basic_challenge && !sent_basic {
            let mut headers = self.headers(mode)?;
            headers.insert(AUTHORIZATION, self.basic()?);
            return Ok(self.send_once(mode, extra, body, headers).await?.reply);
        }
        Ok(reply.reply)
    }

    async fn send_once(
        &self,
        mode: &str,
        extra: &[(&str, &str)],
        body: Option<Vec<u8>>,
        headers: HeaderMap,
    ) -> Result<Received> {
        let url = self.url(mode, extra)?;
        let req = match body {
            Some(b) => self
                .http
                .post(url)
                .headers(headers)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(b),
            None => self.http.get(url).headers(headers),
        };
        let http_err = |source| Error::Http {
            mode: mode.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(http_err)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let basic_challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("basic"));
        let body = resp.bytes().await.map_err(http_err)?.to_vec();
        tracing::debug!(mode, status, len = body.len(), "reply");
        Ok(Received {
            reply: Reply {
                status,
                content_type,
                body,
            },
            basic_challenge,
        })
    }

    async fn checkauth(&mut self) -> Result<()> {
        let mode = "checkauth";
        let reply = self.send(mode, &[], None).await?;
        let text = wire::parse_text(mode, &reply)?;
        if text.status != Status::Success {
            return Err(failure_or_violation(mode, text.status, &text.lines));
        }
        let is_param = |l: &str| l.starts_with("sessid=") || l.starts_with("timestamp=");
        match (text.lines.first(), text.lines.get(1)) {
            (Some(name), Some(value)) if !is_param(name) && !is_param(value) => {
                self.cookie = Some(format!("{name}={value}"));
            }
            _ => self.cookie = None,
        }
        self.sessid = text
            .lines
            .iter()
            .find_map(|l| l.strip_prefix("sessid="))
            .map(str::to_owned)
            .filter(|s| !s.is_empty());
        Ok(())
    }

    async fn init(&mut self) -> Result<()> {
        let mode = "init";
        let version = self.options.version.clone();
        let extra: Vec<(&str, &str)> = version.iter().map(|v| ("version", v.as_str())).collect();
        let reply = self.send(mode, &extra, None).await?;
        wire::check_http(mode, &reply)?;
        let text = wire::decode_text(mode, &reply)?;
        let first = text.lines().next().unwrap_or_default().trim();
        if first == "failure" || first == "success" || first == "progress" {
            let parsed = wire::text_reply(mode, &text)?;
            return Err(failure_or_violation(mode, parsed.status, &parsed.lines));
        }
        let mut zip = None;
        let mut limit = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k.trim() {
                "zip" => zip = Some(v.trim() == "yes"),
                "file_limit" => {
                    let n = v.trim().parse::<u64>().map_err(|_| {
                        Error::violation(mode, format!("file_limit {v:?} is not a number"))
                    })?;
                    limit = Some(usize::try_from(n).unwrap_or(usize::MAX));
                }
                "sessid" if !v.trim().is_empty() => self.sessid = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        if zip.is_none() && limit.is_none() {
            return Err(Error::violation(
                mode,
                format!("answer has neither zip= nor file_limit=: {first:?}"),
            ));
        }
        self.zip_offered = zip.unwrap_or(false);
        self.file_limit = limit.unwrap_or(0);
        Ok(())
    }

    async fn query(&mut self) -> Result<xml::QueryAnswer> {
        let mode = "query";
        let reply = self.send(mode, &[], None).await?;
        wire::check_http(mode, &reply)?;
        if !looks_like_xml(&reply.body) {
            let text = wire::decode_text(mode, &reply)?;
            let parsed = wire::text_reply(mode, &text)?;
            if parsed.status == Status::Failure {
                return Err(failure_or_violation(mode, parsed.status, &parsed.lines));
            }
            return Err(Error::violation(
                mode,
                "expected an XML document, got a text reply",
            ));
        }
        let text = wire::decode_xml(mode, &reply, self.options.require_utf8_bom)?;
        let root = xml::parse_tree(mode, &text)?;
        xml::read_query_answer(mode, &root)
    }

    async fn success(&mut self) -> Result<()> {
        let mode = "success";
        let reply = self.send(mode, &[], None).await?;
        let text = wire::parse_text(mode, &reply)?;
        if text.status != Status::Success {
            return Err(failure_or_violation(mode, text.status, &text.lines));
        }
        Ok(())
    }

    async fn upload(&mut self, session: i64, summary: &mut Summary) -> Result<&'static str> {
        let script = self.options.script.clone();
        // `received` is the orders of this answer plus any whose earlier upload never succeeded
        // (1C keeps its change registration until an exchange run succeeds).
        let records: Vec<OrderRecord> = match script.scope {
            Scope::All => self.db.orders().await?,
            Scope::Received => self.db.pending_orders().await?,
        };
        let now = self.now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut changes: Vec<(String, OrderState)> = Vec::new();
        let mut unchanged: Vec<String> = Vec::new();
        let mut docs = Vec::new();
        for (i, rec) in records.iter().enumerate() {
            let pos = Position {
                index: i + 1,
                number: &rec.number,
                seq: rec.seq,
                now: &now,
            };
            let mut next = script.apply(&rec.state, pos);
            if next == rec.state && rec.created_session != session {
                unchanged.push(rec.number.clone());
                continue;
            }
            if self.options.faults.unmapped_status && docs.is_empty() {
                next.status_code = Some("ZZ".into());
                next.status_name = Some("ZZ unmapped".into());
            }
            docs.push(self.document(rec, &next, &script));
            changes.push((rec.number.clone(), next));
        }
        self.db.clear_pending(&unchanged).await?;
        if docs.is_empty() {
            return Ok("ok");
        }
        let schema = UploadSchema::for_version(self.options.version.as_deref());
        let text = xml::write_upload(&schema, &now, &docs);
        let bytes = encode_upload(&text, self.options.encoding);
        self.file_counter += 1;
        let xml_name = format!("documents___{}.xml", uuid::Uuid::new_v4());
        let zipped = self.zip_offered && self.options.zip == ZipMode::Auto;
        let (file_name, payload) = if zipped {
            let archive = zip_one(&xml_name, &bytes)?;
            let name = format!(
                "v8_{:04X}_{:x}.zip",
                (uuid::Uuid::new_v4().as_u128() & 0xFFFF) as u16,
                self.file_counter
            );
            (name, archive)
        } else {
            (xml_name.clone(), bytes)
        };
        self.db.record_file(session, &file_name, &payload).await?;
        if self.options.faults.cut_upload {
            self.cut_upload(&file_name, &payload).await?;
            return Ok("cut");
        }
        self.send_file(&file_name, &xml_name, &payload, &mut summary.messages)
            .await?;
        self.db.record_sent(session, &file_name, &changes).await?;
        summary.sent = docs.len() as u64;
        if self.options.faults.replay_file {
            self.checkauth().await?;
            self.init().await?;
            self.send_file(&file_name, &xml_name, &payload, &mut summary.messages)
                .await?;
        }
        Ok("ok")
    }

    fn document(&self, rec: &OrderRecord, s: &OrderState, script: &Script) -> OutgoingDocument {
        let r = &rec.received;
        let (status_code, status_name) = match script.status_as {
            StatusAs::Both => (s.status_code.clone(), s.status_name.clone()),
            StatusAs::Code => (s.status_code.clone(), None),
            StatusAs::Name => (None, s.status_name.clone()),
        };
        let sum = r
            .sum
            .or_else(|| r.lines.iter().map(|l| Some(l.sum)).sum())
            .unwrap_or(Decimal::ZERO);
        let version_bytes = {
            let mut b = [0u8; 8];
            let v = u32::try_from(rec.version + 1).unwrap_or(u32::MAX);
            b[..4].copy_from_slice(&v.to_be_bytes());
            b
        };
        OutgoingDocument {
            site_id: rec.site_id.clone(),
            number: rec.number.clone(),
            number_1c: script.number_1c(rec.seq),
            date: r.date.clone().unwrap_or_else(|| rec.date_1c.clone()),
            date_1c: rec.date_1c.clone(),
            time_1c: rec.time_1c.clone(),
            version: base64::engine::general_purpose::STANDARD.encode(version_bytes),
            currency: r.currency.clone().unwrap_or_else(|| "RUB".into()),
            sum,
            buyer_id: r.buyer_id.clone().unwrap_or_default(),
            buyer_name: r.buyer_name.clone().unwrap_or_default(),
            comment: script.comment.replace("{number}", &rec.number),
            posted: true,
            cancelled: s.cancelled,
            deletion_mark: s.deletion_mark,
            shipped: s.shipped,
            status_code,
            status_name,
            payment: s
                .payment_number
                .clone()
                .filter(|_| s.paid)
                .map(|n| (n, s.payment_date.clone().unwrap_or_default())),
            shipment: s
                .shipment_number
                .clone()
                .filter(|_| s.shipped)
                .map(|n| (n, s.shipment_date.clone().unwrap_or_default())),
            lines: r.lines.clone(),
        }
    }

    /// POSTs the payload in `file_limit` chunks, then calls `import` until the answer is not
    /// `progress` (new protocol) — or takes the `file` answers as the import result (legacy).
    async fn send_file(
        &self,
        file_name: &str,
        import_name: &str,
        payload: &[u8],
        messages: &mut Vec<String>,
    ) -> Result<()> {
        let chunk = if self.file_limit == 0 {
            payload.len().max(1)
        } else {
            self.file_limit
        };
        for part in payload.chunks(chunk) {
            let mode = "file";
            let reply = self
                .send(mode, &[("filename", file_name)], Some(part.to_vec()))
                .await?;
            let text = wire::parse_text(mode, &reply)?;
            if text.status != Status::Success {
                return Err(failure_or_violation(mode, text.status, &text.lines));
            }
            messages.extend(text.lines);
        }
        if self.options.version.is_none() {
            return Ok(());
        }
        for _ in 0..self.options.max_import_steps {
            let mode = "import";
            let reply = self.send(mode, &[("filename", import_name)], None).await?;
            let text = wire::parse_text(mode, &reply)?;
            match text.status {
                Status::Progress => messages.extend(text.lines),
                Status::Success => {
                    messages.extend(text.lines);
                    return Ok(());
                }
                Status::Failure => {
                    return Err(failure_or_violation(mode, text.status, &text.lines))
                }
            }
        }
        Err(Error::violation(
            "import",
            format!(
                "still progress after {} import calls",
                self.options.max_import_steps
            ),
        ))
    }

    /// Sends the head of the first chunk with the full `Content-Length`, then drops the socket.
    async fn cut_upload(&self, file_name: &str, payload: &[u8]) -> Result<()> {
        let url = self.url("file", &[("filename", file_name)])?;
        if url.scheme() != "http" {
            return Err(Error::Config("cut_upload needs a plain http:// URL".into()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Error::Config("URL without a host".into()))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let chunk_len = if self.file_limit == 0 {
            payload.len()
        } else {
            payload.len().min(self.file_limit)
        };
        let half = &payload[..chunk_len / 2];
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: 1C+Enterprise/8.3\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {chunk_len}\r\n"
        );
        for (name, value) in self.headers("file")?.iter() {
            if name == AUTHORIZATION || name == COOKIE {
                if let Ok(v) = value.to_str() {
                    head.push_str(&format!("{name}: {v}\r\n"));
                }
            }
        }
        head.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(half).await?;
        stream.flush().await?;
        // Give the server a moment to start reading the body before the connection drops.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(stream);
        Ok(())
    }
}

/// A reply and whether it challenged for Basic credentials.
struct Received {
    reply: Reply,
    basic_challenge: bool,
}

fn failure_or_violation(mode: &str, status: Status, lines: &[String]) -> Error {
    match status {
        Status::Failure => Error::Failure {
            mode: mode.to_owned(),
            message: lines.join("; "),
        },
        other => Error::violation(mode, format!("unexpected {other:?} answer")),
    }
}

fn looks_like_xml(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF") {
        return true;
    }
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

fn encode_upload(text: &str, encoding: UploadEncoding) -> Vec<u8> {
    match encoding {
        UploadEncoding::Utf8 => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            out.extend_from_slice(text.as_bytes());
            out
        }
        UploadEncoding::Windows1251 => {
            let text = text.replacen("encoding=\"UTF-8\"", "encoding=\"windows-1251\"", 1);
            encoding_rs::WINDOWS_1251.encode(&text).0.into_owned()
        }
    }
}

fn zip_one(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let zip_err = |e: zip::result::ZipError| Error::Io(std::io::Error::other(e));
    w.start_file(name, opts).map_err(zip_err)?;
    w.write_all(bytes)?;
    Ok(w.finish().map_err(zip_err)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_detection() {
        assert!(looks_like_xml(b"\xEF\xBB\xBF<?xml"));
        assert!(looks_like_xml(b"\n <a/>"));
        assert!(!looks_like_xml(b"failure\n"));
    }

    #[tokio::test]
    async fn requests_go_round_robin_over_the_alternate_urls() {
        let db = Database::open(":memory:").await.unwrap();
        let mut options = ClientOptions::new("http://a/x", "1c", "pw");
        let one = Session::new(options.clone(), db.clone()).unwrap();
        let bases: Vec<&str> = (0..3).map(|_| one.next_base()).collect();
        assert_eq!(
            bases, ["http://a/x"; 3],
            "by default every request goes to url"
        );

        options.alternate = vec!["http://b/x".to_owned(), "http://c/x".to_owned()];
        let three = Session::new(options.clone(), db.clone()).unwrap();
        let hosts: Vec<String> = (0..7)
            .map(|_| {
                three
                    .url("query", &[])
                    .unwrap()
                    .host_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(hosts, ["a", "b", "c", "a", "b", "c", "a"]);

        options.alternate = vec!["not a url".to_owned()];
        assert!(matches!(Session::new(options, db), Err(Error::Config(_))));
    }

    #[test]
    fn windows_1251_upload_declares_it() {
        let bytes = encode_upload(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>Я</a>",
            UploadEncoding::Windows1251,
        );
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
        assert!(bytes.contains(&0xDF)); // 'Я' in windows-1251
        let utf8 = encode_upload("<a/>", UploadEncoding::Utf8);
        assert!(utf8.starts_with(b"\xEF\xBB\xBF<a/>"));
    }
}
