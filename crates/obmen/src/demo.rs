//! `obmen demo`: the whole exchange on one screen, for someone who has never seen 1C.
//!
//! It starts the gateway in-process on a temporary SQLite file and a free loopback port, places
//! a handful of realistic orders through the store API, lets the built-in 1C emulator run two
//! exchange sessions over real HTTP, and prints what each side holds and what the journal says.
//! Everything runs inside this process and under one temporary directory, removed at the end.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use exchange::clock::SystemClock;
use onec_emulator::{ClientOptions, Database, Script, Summary};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{Config, Secret};
use crate::startup;

/// Arguments of `obmen demo` (none: it is one command for a newcomer).
#[derive(Debug, clap::Args)]
pub struct Args {}

const USER: &str = "1c-demo";
const PASSWORD: &str = "demo-password";
const TOKEN: &str = "demo-api-token";
const EXCHANGE_PATH: &str = "/bitrix/admin/1c_exchange.php";

/// What 1C does in the first session: accept every new order ("В работе").
const SCRIPT_ACCEPT: &str = r#"
step = true
paid_every = 0
"#;

/// What 1C does in the second session: work goes on in 1C, and 1C reports it.
const SCRIPT_PROGRESS: &str = r#"
scope = "all"
step = false
paid_every = 0

[[orders]]
number = "1001"
status = "Готов к отгрузке"
paid = { number = "ПКО-0042" }

[[orders]]
number = "1002"
status = "Передан курьеру"
paid = { number = "ПП-1187" }
shipped = { number = "РТУ-0815" }

[[orders]]
number = "1003"
status = "Отгружен"
paid = { number = "ПКО-0043" }

[[orders]]
number = "1004"
status = "В работе"
"#;

/// Runs `obmen demo`.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let dir = tempfile::Builder::new()
        .prefix("obmen-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let result = runtime.block_on(demo(dir.path()));
    drop(runtime);
    let path = dir.path().to_owned();
    dir.close()
        .with_context(|| format!("cannot remove {}", path.display()))?;
    result?;
    println!("Done: the gateway has stopped and its temporary files are removed.");
    Ok(ExitCode::SUCCESS)
}

/// The in-process gateway.
struct Gateway {
    base: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    async fn start(dir: &std::path::Path) -> anyhow::Result<Self> {
        let config = Config {
            listen: "127.0.0.1:0".to_owned(),
            database_url: dir.join("obmen.db").display().to_string(),
            exchange_user: USER.to_owned(),
            exchange_password: Some(Secret::new(PASSWORD)),
            api_token: Some(Secret::new(TOKEN)),
            ..Config::default()
        };
        let prepared = startup::prepare(config, Arc::new(SystemClock)).await?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(startup::serve(listener, prepared.app, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            stop,
            task,
        })
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the gateway task panicked")?
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = resp.status();
        let value: Value = resp
            .json()
            .await
            .with_context(|| format!("reading {path}"))?;
        if !status.is_success() {
            anyhow::bail!("{path} answered {status}: {value}");
        }
        Ok(value)
    }

    async fn order(&self, number: &str) -> anyhow::Result<Value> {
        self.api(reqwest::Method::GET, &format!("/orders/{number}"), None)
            .await
    }

    async fn run_1c(&self, db: &Database, script: &str) -> anyhow::Result<Summary> {
        let mut options =
            ClientOptions::new(format!("{}{EXCHANGE_PATH}", self.base), USER, PASSWORD);
        options.script = Script::from_toml(script)?;
        Ok(onec_emulator::run_session(options, db.clone()).await?)
    }
}

/// The demo orders, as a store would post them.
fn orders() -> Vec<Value> {
    vec![
        json!({
            "number": "1001",
            "created_at": "2024-03-01T09:15:00Z",
            "status": "N",
            "currency": "RUB",
            "customer": {"type": "person", "first_name": "Анна", "last_name": "Смирнова",
                         "email": "anna@example.ru", "phone": "+7 912 345-67-89",
                         "address": "Екатеринбург, ул. Малышева, 51, кв. 12"},
            "delivery": {"method": "Курьер", "price": "350", "address": "Екатеринбург, ул. Малышева, 51, кв. 12"},
            "payment": {"method": "Банковская карта", "paid": false},
            "items": [
                {"sku": "KT-17", "name": "Чайник электрический 1,7 л", "quantity": 1, "unit": "шт",
                 "price": "3490.00", "discount": "349.00", "vat_rate": 20},
                {"sku": "CUP-4", "name": "Кружка керамическая", "quantity": 4, "unit": "шт",
                 "price": "290.00", "vat_rate": 20}
            ],
            "comment": "Позвонить за час до доставки",
            "properties": {"Промокод": "ВЕСНА10", "Источник": "Яндекс.Маркет"}
        }),
        json!({
            "number": "1002",
            "created_at": "2024-03-01T11:40:00Z",
            "status": "N",
            "currency": "RUB",
            "customer": {"type": "company", "name": "ООО \"Ромашка\"", "inn": "7701234567",
                         "kpp": "770101001", "email": "zakupki@romashka.ru", "phone": "+7 495 123-45-67",
                         "address": "Москва, Ленинградский пр-т, 39, стр. 80"},
            "delivery": {"method": "Транспортная компания", "price": "1200", "address": "Москва, Ленинградский пр-т, 39, стр. 80"},
            "payment": {"method": "Счёт для юрлица", "paid": false},
            "items": [
                {"sku": "PAP-A4", "name": "Бумага офисная A4, 500 листов", "quantity": 20, "unit": "пач",
                 "price": "459.90", "vat_rate": 20},
                {"sku": "TON-12", "name": "Картридж для принтера", "quantity": 3, "unit": "шт",
                 "price": "2850.00", "vat_rate": 20}
            ],
            "discounts": [{"name": "Скидка постоянному клиенту", "amount": "500.00"}],
            "properties": {"Договор": "№ 15/2024 от 10.01.2024"}
        }),
        json!({
            "number": "1003",
            "created_at": "2024-03-02T18:05:00Z",
            "status": "N",
            "currency": "RUB",
            "customer": {"type": "person", "first_name": "Пётр", "last_name": "Иванов",
                         "email": "p.ivanov@example.ru", "phone": "+7 903 111-22-33"},
            "delivery": {"method": "Самовывоз", "price": "0"},
            "payment": {"method": "Наличные при получении", "paid": false},
            "items": [
                {"sku": "LMP-9", "name": "Настольная лампа «Ёлочка»", "quantity": 2, "unit": "шт",
                 "price": "1899.00"}
            ],
            "properties": {"Подарочная упаковка": "да"}
        }),
    ]
}

/// The order placed between the two sessions.
fn late_order() -> Value {
    json!({
        "number": "1004",
        "created_at": "2024-03-03T08:30:00Z",
        "status": "N",
        "currency": "RUB",
        "customer": {"type": "person", "first_name": "Ольга", "last_name": "Кузнецова",
                     "email": "olga@example.ru", "phone": "+7 921 555-44-33"},
        "delivery": {"method": "Курьер", "price": "350", "address": "Санкт-Петербург, Невский пр-т, 100"},
        "payment": {"method": "Банковская карта", "paid": true},
        "items": [
            {"sku": "PAN-28", "name": "Сковорода 28 см", "quantity": 1, "unit": "шт", "price": "2590.00"}
        ]
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

fn buyer(order: &Value) -> String {
    let c = &order["customer"];
    if c["type"] == "company" {
        format!("{} (company, ИНН {})", text(&c["name"]), text(&c["inn"]))
    } else {
        format!(
            "{} {} (person)",
            text(&c["first_name"]),
            text(&c["last_name"])
        )
    }
}

fn describe_order(o: &Value) -> String {
    let items = o["items"].as_array().map_or(0, Vec::len);
    let mut extras = Vec::new();
    let d = &o["delivery"];
    if !d.is_null() {
        extras.push(format!(
            "delivery «{}» {}",
            text(&d["method"]),
            text(&d["price"])
        ));
    }
    let line_discounts = o["items"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| !i["discount"].is_null()).count());
    if line_discounts > 0 {
        extras.push(format!("{line_discounts} line discount"));
    }
    if let Some(ds) = o["discounts"].as_array().filter(|a| !a.is_empty()) {
        for d in ds {
            extras.push(format!("order discount {}", text(&d["amount"])));
        }
    }
    if let Some(p) = o["properties"].as_object().filter(|p| !p.is_empty()) {
        let keys: Vec<&str> = p.keys().map(String::as_str).collect();
        extras.push(format!("properties: {}", keys.join(", ")));
    }
    format!(
        "  order {:<5} {}, {items} item(s); {}",
        text(&o["number"]),
        buyer(o),
        extras.join("; ")
    )
}

fn summary_line(s: &Summary) -> String {
    format!(
        "  1C received {} order(s): {} new document(s) created, {} updated, {} duplicate(s); it sent {} document(s) back.",
        s.received, s.created, s.updated, s.duplicates, s.sent
    )
}

async fn demo(dir: &std::path::Path) -> anyhow::Result<()> {
    let gw = Gateway::start(dir).await?;
    let result = scenario(&gw, dir).await;
    let stopped = gw.shutdown().await;
    let report = result?;
    stopped?;
    print!("{report}");
    Ok(())
}

async fn scenario(gw: &Gateway, dir: &std::path::Path) -> anyhow::Result<String> {
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "obmen demo: an online store and 1C exchanging orders through obmen"
    )?;
    writeln!(
        w,
        "===================================================================="
    )?;
    writeln!(
        w,
        "1C:Enterprise is the accounting/ERP system most Russian businesses run. It fetches the"
    )?;
    writeln!(
        w,
        "store's orders and reports back what happened to them (accepted, paid, shipped) through"
    )?;
    writeln!(w, "its built-in \"exchange with a website\" protocol. obmen answers that protocol for the store.")?;
    writeln!(
        w,
        "Here obmen runs on {} over a temporary SQLite file; the \"1C\" below is",
        gw.base
    )?;
    writeln!(
        w,
        "obmen's 1C emulator, which speaks exactly what a real 1C sends, over real HTTP."
    )?;
    writeln!(w)?;

    writeln!(
        w,
        "Step 1. The store places 3 orders (POST /api/v1/orders):"
    )?;
    for o in orders() {
        gw.api(reqwest::Method::POST, "/orders", Some(&o)).await?;
        writeln!(w, "{}", describe_order(&o))?;
    }
    writeln!(w)?;

    let db = Database::open(&dir.join("onec.db").display().to_string()).await?;
    writeln!(
        w,
        "Step 2. 1C's first exchange session: it downloads the new orders, records each one as its"
    )?;
    writeln!(w, "own order document with its own number, puts them \"В работе\" (in progress), and tells obmen.")?;
    let s1 = gw.run_1c(&db, SCRIPT_ACCEPT).await?;
    writeln!(w, "{}", summary_line(&s1))?;
    writeln!(w)?;

    writeln!(
        w,
        "Step 3. The store places one more order (1004) while 1C works on the others:"
    )?;
    let late = late_order();
    gw.api(reqwest::Method::POST, "/orders", Some(&late))
        .await?;
    writeln!(w, "{}", describe_order(&late))?;
    writeln!(w)?;

    writeln!(
        w,
        "Step 4. 1C's second session: only the new order comes down (the others were confirmed)."
    )?;
    writeln!(
        w,
        "1C reports: 1001 ready for shipment and paid; 1002 paid, shipped and with the courier;"
    )?;
    writeln!(
        w,
        "1003 paid and set to \"Отгружен\", a status nobody mapped to a store status."
    )?;
    let s2 = gw.run_1c(&db, SCRIPT_PROGRESS).await?;
    writeln!(w, "{}", summary_line(&s2))?;
    for m in &s2.messages {
        writeln!(w, "  obmen told 1C: {m}")?;
    }
    writeln!(w)?;

    writeln!(w, "What 1C now holds (the emulator's 1C database):")?;
    writeln!(
        w,
        "  {:<10} {:<11} {:<10} {:>10} {:<3} {:<17} {:<5} {:<7}",
        "1C number", "store order", "date", "sum", "cur", "status in 1C", "paid", "shipped"
    )?;
    let prefix = Script::default();
    for d in db.orders().await? {
        let sum = d
            .received
            .sum
            .map_or_else(|| "—".to_owned(), |s| format!("{s:.2}"));
        writeln!(
            w,
            "  {:<10} {:<11} {:<10} {:>10} {:<3} {:<17} {:<5} {:<7}",
            prefix.number_1c(d.seq),
            d.number,
            d.date_1c,
            sum,
            d.received.currency.as_deref().unwrap_or("—"),
            d.state.status_name.as_deref().unwrap_or("—"),
            if d.state.paid { "yes" } else { "no" },
            if d.state.shipped { "yes" } else { "no" },
        )?;
    }
    writeln!(w)?;

    writeln!(
        w,
        "What the store now sees (GET /api/v1/orders/{{number}}):"
    )?;
    writeln!(
        w,
        "  {:<6} {:<7} {:<17} {:<5} {:<7} {:<10} {:<9} {:<9}  status history",
        "order", "status", "1C status", "paid", "shipped", "1C number", "payment", "shipment",
    )?;
    for n in ["1001", "1002", "1003", "1004"] {
        let o = gw.order(n).await?;
        let history: Vec<String> = o["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|e| format!("{} ({})", text(&e["status"]), text(&e["source"])))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            w,
            "  {:<6} {:<7} {:<17} {:<5} {:<7} {:<10} {:<9} {:<9}  {}",
            n,
            text(&o["status"]),
            text(&o["status_1c"]),
            text(&o["paid"]),
            text(&o["shipped"]),
            text(&o["number_1c"]),
            text(&o["payment_number_1c"]),
            text(&o["shipment_number_1c"]),
            history.join(" → ")
        )?;
    }
    writeln!(w, "  Status codes: N new, P in progress, D ready for shipment, F with the courier, FF done, C cancelled.")?;
    writeln!(
        w,
        "  1003 keeps status P: \"Отгружен\" is not in the status mapping, so obmen did not guess;"
    )?;
    writeln!(
        w,
        "  its payment was still recorded. Add it to [[exchange.statuses.entries]] to map it."
    )?;
    writeln!(w)?;

    writeln!(w, "What the journal says (GET /api/v1/exchange/sessions):")?;
    let journal = gw
        .api(reqwest::Method::GET, "/exchange/sessions", None)
        .await?;
    let mut sessions: Vec<Value> = journal["sessions"].as_array().cloned().unwrap_or_default();
    sessions.reverse();
    for (i, s) in sessions.iter().enumerate() {
        writeln!(
            w,
            "  session {} (1C user {}, schema version {}):",
            i + 1,
            text(&s["user"]),
            text(&s["version"])
        )?;
        for r in s["requests"].as_array().into_iter().flatten() {
            let mode = text(&r["mode"]);
            let what = match mode.as_str() {
                "query" => format!("{} order(s) sent to 1C", text(&r["documents"])),
                "success" => "1C confirmed it received them".to_owned(),
                "file" => format!("{} bytes of {}", text(&r["bytes"]), text(&r["filename"])),
                "import" => format!("{} document(s) from 1C applied", text(&r["documents"])),
                "checkauth" => "1C logged in".to_owned(),
                "init" => "settings agreed".to_owned(),
                _ => String::new(),
            };
            writeln!(w, "    {mode:<9} {what}")?;
            for m in r["messages"].as_array().into_iter().flatten() {
                writeln!(w, "              message: {}", text(m))?;
            }
            if !r["error"].is_null() {
                writeln!(w, "              error: {}", text(&r["error"]))?;
            }
        }
    }
    writeln!(w)?;
    Ok(out)
}
