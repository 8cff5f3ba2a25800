//! The 1C endpoint, `type=sale`, answering as the 1C-Bitrix sale module does (PROTOCOL.md
//! §1–§5). Every outcome is HTTP 200 with a `success`/`progress`/`failure` body (or the XML of
//! `query`/`info`); never an empty body.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use exchange::protocol::{sanitize_filename, Mode, Reply};
use store::{JournalEntry, NewSession, Session};

use crate::auth::{self, BasicAuth};
use crate::metrics::ErrorKind;
use crate::startup::App;
use crate::{export, import, info};

/// Reply to a request without valid credentials.
pub const AUTH_FAILED: &str = "Authorization failed: wrong login or password.";
/// Reply when `sessid` does not match the session.
pub const SESSID_FAILED: &str =
    "Request source check failed (sessid). Update the exchange module or log in again.";

/// The parameters of an exchange request.
#[derive(Debug, Default, Clone)]
pub struct Params {
    /// `type`.
    pub kind: Option<String>,
    /// `mode`.
    pub mode: Option<String>,
    /// `filename`.
    pub filename: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `sessid`.
    pub sessid: Option<String>,
}

impl Params {
    /// Parses a query string (or a form body). Values are percent-decoded as UTF-8, falling back
    /// to windows-1251 (PROTOCOL.md §6.4). The first occurrence of a key wins.
    pub fn parse(query: &[u8]) -> Self {
        let mut p = Self::default();
        p.merge(query);
        p
    }

    /// Fills keys still missing from another source (a form body).
    pub fn merge(&mut self, query: &[u8]) {
        for pair in query.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = auth::decode_text(&percent_decode(k)).to_ascii_lowercase();
            let value = auth::decode_text(&percent_decode(v));
            let slot = match key.as_str() {
                "type" => &mut self.kind,
                "mode" => &mut self.mode,
                "filename" => &mut self.filename,
                "version" => &mut self.version,
                "sessid" => &mut self.sessid,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
    }
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// What the request did, for the journal and the log line.
#[derive(Debug, Default)]
pub struct Record {
    /// The session.
    pub session_id: Option<i64>,
    /// `type`.
    pub kind: Option<String>,
    /// `mode` as sent.
    pub mode: String,
    /// `filename`.
    pub filename: Option<String>,
    /// Bytes received or sent.
    pub bytes: u64,
    /// Documents exported or imported.
    pub documents: u64,
    /// Document-level messages.
    pub messages: Vec<String>,
    /// Failure reason.
    pub error: Option<String>,
}

/// A protocol failure: answered `failure\n<reason>`.
#[derive(Debug)]
pub struct Failure {
    /// The reason shown to 1C.
    pub reason: String,
    /// The metrics kind.
    pub kind: ErrorKind,
}

impl Failure {
    /// A protocol-level failure.
    pub fn protocol(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            kind: ErrorKind::Protocol,
        }
    }

    /// An internal failure (database, …); the detail is logged, 1C sees a generic reason.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{context}");
        Self {
            reason: format!("Internal error: {context}."),
            kind: ErrorKind::Internal,
        }
    }
}

impl From<store::Error> for Failure {
    fn from(e: store::Error) -> Self {
        Self::internal("database error", &e)
    }
}

/// A finished answer or one that streams (and journals itself when done).
pub enum Handled {
    /// A complete response; journaled by the caller.
    Done(Response),
    /// A streaming response (`query`); its producer journals.
    Streaming(Response),
}

/// The exchange handler for every method on the exchange paths.
pub async fn handle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let now = app.clock.now();
    let mut params = Params::parse(query.as_deref().unwrap_or("").as_bytes());
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && (params.mode.is_none() || params.sessid.is_none()) {
        // Bitrix also takes `mode=query` and `sessid` from a POST form body.
        params.merge(&body);
    }
    let mut rec = Record {
        kind: params.kind.clone(),
        mode: params.mode.clone().unwrap_or_default(),
        filename: params.filename.clone(),
        bytes: body.len() as u64,
        ..Record::default()
    };
    let mode = params.mode.as_deref().and_then(Mode::parse);
    match dispatch(&app, &params, mode, &headers, body, &mut rec, now, started).await {
        Ok(Handled::Streaming(resp)) => resp,
        Ok(Handled::Done(resp)) => {
            finish(&app, mode, rec, started, now).await;
            resp
        }
        Err(f) => {
            app.metrics.error(f.kind);
            let resp = text_reply(&app, &Reply::failure(f.reason.clone()).body());
            rec.error = Some(f.reason);
            finish(&app, mode, rec, started, now).await;
            resp
        }
    }
}

/// Journals a request, counts it and writes its log line.
pub async fn finish(
    app: &App,
    mode: Option<Mode>,
    rec: Record,
    started: Instant,
    at: DateTime<Utc>,
) {
    let elapsed = started.elapsed();
    if let Some(m) = mode {
        app.metrics.request(m, elapsed);
    }
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        session = ?rec.session_id,
        mode = %rec.mode,
        filename = ?rec.filename,
        bytes = rec.bytes,
        documents = rec.documents,
        messages = rec.messages.len(),
        error = ?rec.error,
        duration_ms,
        "exchange request"
    );
    let entry = JournalEntry {
        session_id: rec.session_id,
        exchange_type: rec.kind,
        mode: rec.mode,
        filename: rec.filename,
        bytes: rec.bytes,
        documents: rec.documents,
        messages: rec.messages,
        error: rec.error,
        duration_ms: Some(duration_ms),
        at,
    };
    if let Err(e) = app.store.journal(&entry).await {
        tracing::error!(error = %e, "cannot journal an exchange request");
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    app: &Arc<App>,
    params: &Params,
    mode: Option<Mode>,
    headers: &HeaderMap,
    body: Bytes,
    rec: &mut Record,
    now: DateTime<Utc>,
    started: Instant,
) -> Result<Handled, Failure> {
    match params.kind.as_deref().map(str::trim) {
        Some(k) if k.eq_ignore_ascii_case("sale") => {}
        _ => return Err(Failure::protocol("Unknown command type.")),
    }
    let cookie_session = cookie_session(app, headers, now).await?;
    let basic = auth::parse_basic(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    // A valid session cookie is enough (Bitrix: already logged in); the password hash is only
    // computed when there is none.
    let basic_ok = match &basic {
        BasicAuth::Given { user, password }
            if cookie_session.is_none() || mode == Some(Mode::CheckAuth) =>
        {
            app.credentials.check(user, password)
        }
        _ => false,
    };
    if cookie_session.is_none() && !basic_ok {
        let user = match &basic {
            BasicAuth::Given { user, .. } => Some(user.as_str()),
            _ => None,
        };
        tracing::warn!(
            user = ?user,
            header = match basic { BasicAuth::Absent => "absent", BasicAuth::Malformed => "malformed", BasicAuth::Given { .. } => "given" },
            mode = %rec.mode,
            "exchange authentication failed"
        );
        return Err(Failure {
            reason: AUTH_FAILED.to_owned(),
            kind: ErrorKind::Auth,
        });
    }
    let Some(mode) = mode else {
        return Err(Failure::protocol("Unknown command."));
    };
    if mode == Mode::CheckAuth {
        return checkauth(app, rec, now).await.map(Handled::Done);
    }
    let mut session = match cookie_session {
        Some(s) => s,
        None => current_session(app, now).await?,
    };
    rec.session_id = Some(session.id);
    check_sessid(app, &mut session, params.sessid.as_deref()).await?;
    if (now - session.last_seen_at).num_seconds() >= 60 {
        session.last_seen_at = now;
        app.store.update_session(&session).await?;
    }
    match mode {
        Mode::CheckAuth => unreachable!("handled above"),
        Mode::Init => init(app, &mut session, params, rec)
            .await
            .map(Handled::Done),
        Mode::Query => Ok(Handled::Streaming(export::query_response(
            Arc::clone(app),
            session,
            std::mem::take(rec),
            started,
            now,
        ))),
        Mode::Success => {
            let confirmed = app.store.confirm_session(session.id, now).await?;
            rec.documents = confirmed;
            Ok(Handled::Done(text_reply(
                app,
                &Reply::success(vec![]).body(),
            )))
        }
        Mode::File => file(app, &mut session, params, body, rec)
            .await
            .map(Handled::Done),
        Mode::Import => import_mode(app, &mut session, params, rec)
            .await
            .map(Handled::Done),
        Mode::Info => Ok(Handled::Done(info::response(app))),
    }
}

/// The session named by the cookie, when it exists, belongs to the configured user and has not
/// expired.
async fn cookie_session(
    app: &App,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Option<Session>, Failure> {
    let name = app.config.cookie_name.as_str();
    let mut value = None;
    for h in headers.get_all(header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k.trim() == name {
                    value = Some(v.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let Some(session) = app
        .store
        .session_by_cookie(&auth::token_digest(&value))
        .await?
    else {
        return Ok(None);
    };
    let valid_for = chrono::Duration::hours(i64::from(app.config.session_hours));
    if session.user != app.credentials.user || session.last_seen_at + valid_for < now {
        return Ok(None);
    }
    Ok(Some(session))
}

/// The user's latest session, if any.
async fn previous_session(app: &App) -> Result<Option<Session>, Failure> {
    let key = current_session_key(&app.credentials.user);
    match app
        .store
        .get_setting(&key)
        .await?
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(id) => Ok(app.store.session_by_id(id).await?),
        None => Ok(None),
    }
}

fn current_session_key(user: &str) -> String {
    format!("current_session:{user}")
}

/// For requests authenticated by Basic alone (no cookie): the user's latest session from
/// `checkauth`, else a new one.
async fn current_session(app: &App, now: DateTime<Utc>) -> Result<Session, Failure> {
    let user = &app.credentials.user;
    if let Some(id) = app.store.get_setting(&current_session_key(user)).await? {
        if let Ok(id) = id.parse::<i64>() {
            if let Some(s) = app.store.session_by_id(id).await? {
                let valid_for = chrono::Duration::hours(i64::from(app.config.session_hours));
                if s.last_seen_at + valid_for >= now {
                    return Ok(s);
                }
            }
        }
    }
    let (session, _cookie) = new_session(app, now).await?;
    Ok(session)
}

async fn new_session(app: &App, now: DateTime<Utc>) -> Result<(Session, String), Failure> {
    let cookie = auth::random_token();
    let new = NewSession {
        user: app.credentials.user.clone(),
        cookie: auth::token_digest(&cookie),
        sessid: auth::random_token(),
    };
    let session = app.store.create_session(&new, now).await?;
    app.store
        .set_setting(
            &current_session_key(&app.credentials.user),
            &session.id.to_string(),
        )
        .await?;
    app.metrics.session_opened();
    Ok((session, cookie))
}

/// PROTOCOL.md §3.2: a `sessid` that is present must match; once a user's 1C has sent one, it
/// is required on every later request.
async fn check_sessid(
    app: &App,
    session: &mut Session,
    sessid: Option<&str>,
) -> Result<(), Failure> {
    let key = format!("sessid_required:{}", session.user);
    match sessid.map(str::trim).filter(|s| !s.is_empty()) {
        Some(given) => {
            if !auth::ct_str_eq(given, &session.sessid) {
                return Err(Failure::protocol(SESSID_FAILED));
            }
            if !session.sessid_seen {
                session.sessid_seen = true;
                app.store.update_session(session).await?;
                app.store.set_setting(&key, "1").await?;
            }
            Ok(())
        }
        None => {
            if app.store.get_setting(&key).await?.is_some() {
                Err(Failure::protocol(SESSID_FAILED))
            } else {
                Ok(())
            }
        }
    }
}

async fn checkauth(
    app: &Arc<App>,
    rec: &mut Record,
    now: DateTime<Utc>,
) -> Result<Response, Failure> {
    if let Some(previous) = previous_session(app).await? {
        let leftovers = import::import_leftovers(Arc::clone(app), previous).await?;
        rec.documents += leftovers.documents;
        rec.messages.extend(leftovers.messages);
    }
    let (session, cookie) = new_session(app, now).await?;
    rec.session_id = Some(session.id);
    let name = &app.config.cookie_name;
    let mut resp = text_reply(
        app,
        &Reply::checkauth(name, &cookie, &session.sessid).body(),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{name}={cookie}; Path=/; HttpOnly")) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn init(
    app: &Arc<App>,
    session: &mut Session,
    params: &Params,
    rec: &mut Record,
) -> Result<Response, Failure> {
    let leftovers = import::import_leftovers(Arc::clone(app), session.clone()).await?;
    rec.documents += leftovers.documents;
    rec.messages.extend(leftovers.messages);
    let version = params
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    // Every run starts with an empty upload area (PROTOCOL.md §4.2, §5.1).
    app.store.clear_uploads(session.id).await?;
    session.version.clone_from(&version);
    session.zip = app.config.exchange.zip;
    session.legacy = version.is_none();
    app.store.update_session(session).await?;
    let body = Reply::init(
        app.config.exchange.zip,
        app.config.exchange.file_limit,
        version.as_ref().map(|_| session.sessid.as_str()),
    );
    Ok(text_reply(app, &body))
}

fn upload_name(params: &Params) -> Result<String, Failure> {
    let raw = params
        .filename
        .as_deref()
        .ok_or_else(|| Failure::protocol("Parameter filename is missing."))?;
    sanitize_filename(raw).map_err(|e| Failure::protocol(format!("Bad file name: {e}.")))
}

async fn file(
    app: &Arc<App>,
    session: &mut Session,
    params: &Params,
    body: Bytes,
    rec: &mut Record,
) -> Result<Response, Failure> {
    let name = upload_name(params)?;
    let size = app.store.upload_size(session.id, &name).await?;
    if size + body.len() as u64 > app.config.limits.max_upload_bytes {
        return Err(Failure::protocol(format!(
            "File {name} exceeds the upload limit of {} bytes.",
            app.config.limits.max_upload_bytes
        )));
    }
    app.store.append_upload(session.id, &name, &body).await?;
    if session.version.is_some() {
        // New protocol: 1C calls `import` when the file is complete.
        return Ok(text_reply(app, &Reply::success(vec![]).body()));
    }
    // Legacy protocol: import at once (PROTOCOL.md §4.5).
    let outcome = import::import_now(Arc::clone(app), session.clone(), name).await?;
    rec.documents = outcome.documents;
    rec.messages = outcome.messages;
    Ok(text_reply(app, &Reply::success(outcome.reply).body()))
}

async fn import_mode(
    app: &Arc<App>,
    session: &mut Session,
    params: &Params,
    rec: &mut Record,
) -> Result<Response, Failure> {
    let name = upload_name(params)?;
    let outcome = import::import_step(Arc::clone(app), session.clone(), name).await?;
    rec.documents = outcome.documents;
    rec.messages.clone_from(&outcome.messages);
    let reply = if outcome.finished {
        Reply::success(outcome.reply)
    } else {
        Reply::progress(outcome.reply)
    };
    Ok(text_reply(app, &reply.body()))
}

/// A plain-text reply in the configured encoding (characters the encoding lacks become `?`).
pub fn text_reply(app: &App, body: &str) -> Response {
    let encoding = app.config.exchange.encoding;
    let bytes = encode_text(body, encoding);
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("text/plain; charset={}", encoding.charset())) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Encodes plain text for 1C: windows-1251 with `?` for missing characters, or UTF-8.
pub fn encode_text(text: &str, encoding: exchange::settings::Encoding) -> Vec<u8> {
    match encoding {
        exchange::settings::Encoding::Utf8 => text.as_bytes().to_vec(),
        exchange::settings::Encoding::Windows1251 => {
            let mut out = Vec::with_capacity(text.len());
            let mut buf = [0u8; 4];
            for c in text.chars() {
                let (bytes, _, unmappable) =
                    encoding_rs::WINDOWS_1251.encode(c.encode_utf8(&mut buf));
                if unmappable {
                    out.push(b'?');
                } else {
                    out.extend_from_slice(&bytes);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_utf8_and_cp1251_and_form_bodies() {
        let p = Params::parse(b"type=sale&mode=file&filename=%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7.xml");
        assert_eq!(p.kind.as_deref(), Some("sale"));
        assert_eq!(p.filename.as_deref(), Some("заказ.xml"));
        let p = Params::parse(b"filename=%E7%E0%EA%E0%E7.xml&mode=import&mode=query");
        assert_eq!(p.filename.as_deref(), Some("заказ.xml"));
        assert_eq!(p.mode.as_deref(), Some("import"));
        let mut p = Params::parse(b"type=sale");
        p.merge(b"mode=query&sessid=abc+d%2");
        assert_eq!(p.mode.as_deref(), Some("query"));
        assert_eq!(p.sessid.as_deref(), Some("abc d%2"));
    }

    #[test]
    fn text_is_encoded_with_question_marks_for_missing_characters() {
        let w = exchange::settings::Encoding::Windows1251;
        assert_eq!(
            encode_text("success\nЯ € ₽\n", w),
            b"success\n\xdf \x88 ?\n".to_vec()
        );
    }
}
