//! Test harness: a real server on 127.0.0.1:0 over a real SQLite file (or a fresh PostgreSQL
//! database, see [`Backend`]), and a 1C-like client.
#![allow(dead_code)]

pub mod pg;

use std::net::SocketAddr;
use std::sync::Arc;

use exchange::clock::SystemClock;
use obmen::config::{Config, Secret};
use obmen::startup::{self, App};
use tokio::sync::oneshot;

pub const USER: &str = "1c";
pub const PASSWORD: &str = "s3cret-пароль";
pub const TOKEN: &str = "test-api-token";

/// The database a test server runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file, `obmen.db` in the server's directory.
    Sqlite,
    /// A fresh database of its own on the PostgreSQL server of this admin URL.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `OBMEN_TEST_POSTGRES_URL` is set; otherwise `None`, after a notice that
    /// `test` did not run on PostgreSQL.
    pub fn postgres(test: &str) -> Option<Self> {
        pg::admin_url(test).map(Self::Postgres)
    }
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub app: Arc<App>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The PostgreSQL database (dropped after the server), when it runs on one.
    database: Option<pg::TestDatabase>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir, edit).await
    }

    /// A server on `backend` (a fresh database for PostgreSQL).
    pub async fn on(backend: &Backend) -> Self {
        Self::on_with(backend, |_| {}).await
    }

    /// A server on `backend` with an edited configuration.
    pub async fn on_with(backend: &Backend, edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(admin_url) => Some(pg::TestDatabase::create(admin_url).await),
        };
        Self::spawn_at(dir, database, edit).await
    }

    /// A server on an existing directory (its `obmen.db`), e.g. to restart.
    pub async fn spawn_in(dir: tempfile::TempDir, edit: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_at(dir, None, edit).await
    }

    /// A server in `dir`, on `database` when given, else on `obmen.db` in `dir`.
    async fn spawn_at(
        dir: tempfile::TempDir,
        database: Option<pg::TestDatabase>,
        edit: impl FnOnce(&mut Config),
    ) -> Self {
        let database_url = match &database {
            Some(db) => db.url().to_owned(),
            None => dir.path().join("obmen.db").display().to_string(),
        };
        let mut config = Config {
            database_url,
            exchange_user: USER.to_owned(),
            exchange_password: Some(Secret::new(PASSWORD)),
            api_token: Some(Secret::new(TOKEN)),
            ..Config::default()
        };
        edit(&mut config);
        let prepared = startup::prepare(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Arc::clone(&prepared.app);
        let task = tokio::spawn(startup::serve(listener, prepared.app, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            dir,
            app,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A 1C client for this server.
    pub fn onec(&self) -> OneC {
        OneC {
            http: self.http.clone(),
            base: self.url("/bitrix/admin/1c_exchange.php"),
            cookie: None,
            sessid: None,
            send_sessid: true,
        }
    }

    /// Stops the server gracefully and returns its directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn post_order(&self, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/orders"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn order(&self, number: &str) -> serde_json::Value {
        let r = self
            .http
            .get(self.url(&format!("/api/v1/orders/{number}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET order {number}");
        r.json().await.unwrap()
    }

    pub async fn sessions(&self) -> serde_json::Value {
        let r = self
            .http
            .get(self.url("/api/v1/exchange/sessions"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// A plain order body.
pub fn order_json(number: &str, status: &str) -> serde_json::Value {
    serde_json::json!({
        "number": number,
        "created_at": "2024-03-01T10:00:00Z",
        "status": status,
        "currency": "RUB",
        "customer": {"type": "person", "first_name": "Иван", "last_name": "Петров",
                     "email": "ivan@example.com", "phone": "+7 900 000-00-00"},
        "delivery": {"method": "Курьер", "price": "300", "address": "Москва, ул. Ленина, 1"},
        "payment": {"method": "Наличные", "paid": false},
        "items": [
            {"sku": "A-1", "name": "Чайник", "quantity": 2, "unit": "шт", "price": "1500.50"},
            {"sku": "B-2", "name": "Кружка", "quantity": "3", "price": 99.9}
        ],
        "comment": "Позвонить заранее"
    })
}

/// What an exchange request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub set_cookie: Option<String>,
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body decoded as the charset of its Content-Type.
    pub fn text(&self) -> String {
        let enc = if self.content_type.contains("windows-1251") {
            encoding_rs::WINDOWS_1251
        } else {
            encoding_rs::UTF_8
        };
        enc.decode(&self.bytes).0.into_owned()
    }

    pub fn lines(&self) -> Vec<String> {
        self.text().split('\n').map(str::to_owned).collect()
    }
}

/// 1C's side of the exchange.
pub struct OneC {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<(String, String)>,
    pub sessid: Option<String>,
    pub send_sessid: bool,
}

impl OneC {
    pub async fn request(
        &self,
        method: reqwest::Method,
        query: &str,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut url = format!("{}?type=sale&{query}", self.base);
        if self.send_sessid {
            if let Some(s) = &self.sessid {
                url.push_str(&format!("&sessid={s}"));
            }
        }
        let mut req = self
            .http
            .request(method, url)
            .basic_auth(USER, Some(PASSWORD));
        if let Some((n, v)) = &self.cookie {
            req = req.header("Cookie", format!("{n}={v}"));
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.bytes().await.unwrap().to_vec();
        assert!(!bytes.is_empty(), "empty body for {query}");
        Answer {
            status,
            content_type,
            set_cookie,
            bytes,
        }
    }

    pub async fn get(&self, query: &str) -> Answer {
        self.request(reqwest::Method::GET, query, None).await
    }

    /// checkauth: keeps the cookie and sessid.
    pub async fn checkauth(&mut self) -> Answer {
        let a = self.get("mode=checkauth").await;
        let lines = a.lines();
        assert_eq!(lines[0], "success", "{:?}", a.text());
        self.cookie = Some((lines[1].clone(), lines[2].clone()));
        self.sessid = Some(lines[3].strip_prefix("sessid=").unwrap().to_owned());
        a
    }

    pub async fn init(&self, version: Option<&str>) -> Answer {
        match version {
            Some(v) => self.get(&format!("mode=init&version={v}")).await,
            None => self.get("mode=init").await,
        }
    }

    pub async fn query(&self) -> Answer {
        self.get("mode=query").await
    }

    pub async fn success(&self) -> Answer {
        self.get("mode=success").await
    }

    pub async fn file(&self, name: &str, bytes: &[u8]) -> Answer {
        self.request(
            reqwest::Method::POST,
            &format!("mode=file&filename={name}"),
            Some(bytes.to_vec()),
        )
        .await
    }

    pub async fn import(&self, name: &str) -> Answer {
        self.get(&format!("mode=import&filename={name}")).await
    }

    /// checkauth + init with version 2.08.
    pub async fn start(&mut self) {
        self.checkauth().await;
        let a = self.init(Some("2.08")).await;
        assert!(a.text().starts_with("zip=yes\n"), "{}", a.text());
    }
}

/// The (Ид, Номер) pairs of the orders in a query answer, in order.
pub fn offered(xml: &Answer) -> Vec<(String, String)> {
    let mut reader = commerceml::Reader::new(&xml.bytes[..]).unwrap();
    let mut out = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        let docs = match item {
            commerceml::Item::Document(d) => vec![*d],
            commerceml::Item::Container(c) => c.documents,
            _ => vec![],
        };
        for d in docs {
            out.push((d.id.unwrap_or_default(), d.number.unwrap_or_default()));
        }
    }
    out
}

/// A 1C status document for one order (UTF-8 unless re-encoded by the caller).
pub fn status_doc(number: &str, requisites: &[(&str, &str)]) -> String {
    let mut reqs = String::new();
    for (name, value) in requisites {
        reqs.push_str(&format!(
            "<ЗначениеРеквизита><Наименование>{name}</Наименование><Значение>{value}</Значение></ЗначениеРеквизита>"
        ));
    }
    format!(
        "<Документ><Ид>{number}</Ид><Номер>{number}</Номер><Дата>2024-03-02</Дата>\
         <ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль><Валюта>руб</Валюта>\
         <Курс>1</Курс><Сумма>3299.70</Сумма><Время>12:00:00</Время>\
         <ЗначенияРеквизитов>{reqs}</ЗначенияРеквизитов></Документ>"
    )
}

/// A whole 1C file around documents.
pub fn status_file(docs: &[String], encoding: &str) -> Vec<u8> {
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n<КоммерческаяИнформация \
         xmlns=\"urn:1C.ru:commerceml_210\" ВерсияСхемы=\"2.08\" ДатаФормирования=\"2024-03-02T12:00:00\">\n{}\n</КоммерческаяИнформация>\n",
        docs.join("\n")
    );
    match encoding {
        "windows-1251" => encoding_rs::WINDOWS_1251.encode(&text).0.into_owned(),
        _ => text.into_bytes(),
    }
}
