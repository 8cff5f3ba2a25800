//! A minimal site written only from PROTOCOL.md §1–§5, answering like the fixtures' 1C-Bitrix
//! site: checkauth lines, init with zip/file_limit, the real Bitrix `query` answer in
//! windows-1251, success, appending file chunks, import answering `progress` once and then
//! `success` with message lines. It knows nothing about the emulator's code.
// Shared by several test binaries; each uses part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;

pub const FULL_QUERY: &[u8] = include_bytes!("../data/bitrix-query-response-full.xml");
pub const USER: &str = "exchange";
pub const PASSWORD: &str = "s3cret";
const SESSION_ID: &str = "abc123session";
const SESSID: &str = "0123456789abcdef0123456789abcdef";

/// A deliberate protocol violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 with an empty body.
    EmptyBody,
    /// HTTP 500 with a normal-looking body.
    Status500,
    /// `Content-Type` charset UTF-8 on windows-1251 bytes.
    CharsetMismatch,
    /// First line `error` (Bitrix's cookie mismatch answer).
    BadFirstLine,
    /// An XML answer cut in the middle.
    BrokenXml,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub params: HashMap<String, String>,
    pub cookie: Option<String>,
    pub basic: Option<String>,
}

impl Request {
    pub fn mode(&self) -> &str {
        self.params.get("mode").map_or("", String::as_str)
    }
}

#[derive(Debug, Default)]
pub struct SiteState {
    pub zip: bool,
    pub file_limit: usize,
    pub query_body: Vec<u8>,
    pub fault: Option<(&'static str, Fault)>,
    /// Ignore the session cookie and challenge every request without Basic credentials with
    /// 401 (as django-cml does).
    pub challenge_without_basic: bool,
    pub requests: Vec<Request>,
    /// The upload directory: wiped at init, chunks appended.
    pub dir: HashMap<String, Vec<u8>>,
    /// Chunk sizes per file name, in order.
    pub chunks: HashMap<String, Vec<usize>>,
    /// What was imported: (requested file name, the XML bytes).
    pub imported: Vec<(String, Vec<u8>)>,
    /// `version` of the current run (None: legacy protocol).
    pub version: Option<String>,
    import_calls: HashMap<String, u32>,
}

pub struct Site {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<SiteState>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Site {
    pub async fn start(zip: bool, file_limit: usize) -> Site {
        Self::start_with(zip, file_limit, FULL_QUERY.to_vec(), None).await
    }

    pub async fn start_with(
        zip: bool,
        file_limit: usize,
        query_body: Vec<u8>,
        fault: Option<(&'static str, Fault)>,
    ) -> Site {
        let state = Arc::new(Mutex::new(SiteState {
            zip,
            file_limit,
            query_body,
            fault,
            ..SiteState::default()
        }));
        let app = Router::new()
            .route(
                "/bitrix/admin/1c_exchange.php",
                axum::routing::any(exchange),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Site {
            addr,
            state,
            _task: task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/bitrix/admin/1c_exchange.php", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn modes(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r.mode().to_owned())
            .collect()
    }
}

fn cp1251(text: &str) -> Vec<u8> {
    encoding_rs::WINDOWS_1251.encode(text).0.into_owned()
}

fn text(body: &str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=windows-1251"),
            (header::PRAGMA, "no-cache"),
        ],
        cp1251(body),
    )
        .into_response()
}

fn parse_query(raw: Option<String>) -> HashMap<String, String> {
    let raw = raw.unwrap_or_default();
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.replace("%2F", "/"))
        })
        .collect()
}

async fn exchange(
    State(state): State<Arc<Mutex<SiteState>>>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_query(raw);
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut st = state.lock().unwrap();
    st.requests.push(Request {
        method: method.to_string(),
        params: params.clone(),
        cookie: cookie.clone(),
        basic: basic.clone(),
    });
    let mode = params.get("mode").cloned().unwrap_or_default();
    if let Some((fault_mode, fault)) = st.fault {
        if fault_mode == mode {
            return faulty(fault, &st.query_body);
        }
    }
    if params.get("type").map(String::as_str) != Some("sale") {
        return text("failure\nUnknown command type.");
    }
    let good_basic = basic.as_deref() == Some(&format!("{USER}:{PASSWORD}"));
    if mode == "checkauth" {
        if !good_basic {
            return text("failure\nОшибка авторизации. Неверное имя пользователя или пароль.");
        }
        return text(&format!(
            "success\nPHPSESSID\n{SESSION_ID}\nsessid={SESSID}\n"
        ));
    }
    if st.challenge_without_basic && !good_basic {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"exchange\"")],
            "",
        )
            .into_response();
    }
    let good_cookie = cookie.as_deref() == Some(&format!("PHPSESSID={SESSION_ID}"));
    if !good_cookie && !good_basic {
        return text("failure\nОшибка авторизации. Неверное имя пользователя или пароль.");
    }
    if let Some(s) = params.get("sessid") {
        if s != SESSID {
            return text("failure\nОшибка проверки источника запроса. Обновите модуль обмена.");
        }
    }
    match mode.as_str() {
        "init" => {
            st.dir.clear();
            st.chunks.clear();
            st.import_calls.clear();
            st.version = params.get("version").filter(|v| !v.is_empty()).cloned();
            let zip = if st.zip { "yes" } else { "no" };
            let mut out = format!("zip={zip}\nfile_limit={}\n", st.file_limit);
            if st.version.is_some() {
                out.push_str(&format!("sessid={SESSID}\nversion=2.09"));
            }
            text(&out)
        }
        "query" => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    "application/xml; charset=windows-1251",
                ),
                (header::PRAGMA, "no-cache"),
            ],
            st.query_body.clone(),
        )
            .into_response(),
        "success" => text("success\n"),
        "file" => {
            if method != Method::POST {
                return text("failure\nОшибка чтения HTTP данных.");
            }
            let Some(name) = params.get("filename").cloned() else {
                return text("failure\nОшибка записи в файл .");
            };
            st.dir
                .entry(name.clone())
                .or_default()
                .extend_from_slice(&body);
            st.chunks.entry(name.clone()).or_default().push(body.len());
            if st.version.is_some() {
                return text("success\n");
            }
            // Legacy protocol: unpack and import inside this request.
            let Some(xml) = unpack(&st.dir, &name) else {
                return text("failure\nОшибка распаковки архива.");
            };
            let messages = import_messages(&xml);
            st.imported.push((name, xml));
            text(&format!("success\n{messages}\n"))
        }
        "import" => {
            let Some(name) = params.get("filename").cloned() else {
                return text("failure\nФайл для импорта пуст.");
            };
            let calls = st.import_calls.entry(name.clone()).or_default();
            *calls += 1;
            if *calls == 1 {
                return text("progress\nИдет распаковка архива.\n");
            }
            let Some(xml) = unpack(&st.dir, &name) else {
                return text("failure\nФайл для импорта пуст.");
            };
            let messages = import_messages(&xml);
            st.imported.push((name, xml));
            text(&format!("success\n{messages}\n"))
        }
        _ => text("failure\nНеизвестная команда."),
    }
}

/// The XML named `name`: the uploaded file itself, or an entry of an uploaded zip.
fn unpack(dir: &HashMap<String, Vec<u8>>, name: &str) -> Option<Vec<u8>> {
    if let Some(bytes) = dir.get(name) {
        if !bytes.starts_with(b"PK") {
            return Some(bytes.clone());
        }
        // A zip uploaded under its own name (legacy): its first entry.
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).ok()?;
        let mut entry = archive.by_index(0).ok()?;
        let mut out = Vec::new();
        entry.read_to_end(&mut out).ok()?;
        return Some(out);
    }
    for bytes in dir.values().filter(|b| b.starts_with(b"PK")) {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).ok()?;
        let mut out = Vec::new();
        let found = match archive.by_name(name) {
            Ok(mut entry) => entry.read_to_end(&mut out).is_ok(),
            Err(_) => false,
        };
        if found {
            return Some(out);
        }
    }
    None
}

/// One message line per order document found (Bitrix reports per-document problems this way).
fn import_messages(xml: &[u8]) -> String {
    let text = String::from_utf8_lossy(xml);
    let count = text
        .matches(&format!("<{}>", commerceml::tags::DOCUMENT))
        .count();
    format!("Обработано документов: {count}")
}

fn faulty(fault: Fault, query_body: &[u8]) -> Response {
    match fault {
        Fault::EmptyBody => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "").into_response()
        }
        Fault::Status500 => (StatusCode::INTERNAL_SERVER_ERROR, "success\n").into_response(),
        Fault::CharsetMismatch => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            query_body.to_vec(),
        )
            .into_response(),
        Fault::BadFirstLine => text("error\n"),
        Fault::BrokenXml => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/xml; charset=windows-1251",
            )],
            query_body[..query_body.len() / 2].to_vec(),
        )
            .into_response(),
    }
}
