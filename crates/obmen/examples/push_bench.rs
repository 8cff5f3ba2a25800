//! Push throughput and latency: the release `obmen` binary pushing to the 1C HTTP-service
//! stand-in (`onec_emulator::service`, in this process) on loopback.
//!
//! ```text
//! cargo build --release -p obmen
//! cargo run --release -p obmen --example push_bench -- --orders 5000 --clients 32
//! # on PostgreSQL (an empty database):
//! cargo run --release -p obmen --example push_bench -- --rate 1000 \
//!     --database postgres://postgres@127.0.0.1:5432/obmen_push
//! ```
//!
//! Orders are POSTed to the store API by `--clients` concurrent clients. Throughput is the
//! number of orders divided by the time from the first POST until the stand-in holds every
//! order. Latency per order is `delivered_at - created_at` of its outbox entry: from the moment
//! the API accepted the order (the time the order and its outbox entry were written) until the
//! stand-in's answer was recorded, so it bounds "accept to receipt" from above.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use onec_emulator::service::{self, ServiceOptions};

const TOKEN: &str = "bench-token-0123456789";

struct Args {
    bin: PathBuf,
    orders: usize,
    clients: usize,
    format: String,
    /// Orders per second offered to the API (open loop); 0 = as fast as the clients can.
    rate: f64,
    /// The server's database (default: a fresh SQLite file in a temporary directory).
    database: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        bin: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/release/obmen"
        )),
        orders: 5000,
        clients: 32,
        format: "commerceml".to_owned(),
        rate: 0.0,
        database: None,
    };
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        a.bin = PathBuf::from(dir).join("release/obmen");
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--bin" => a.bin = PathBuf::from(value),
            "--orders" => a.orders = value.parse().expect("--orders N"),
            "--clients" => a.clients = value.parse().expect("--clients N"),
            "--format" => a.format = value,
            "--rate" => a.rate = value.parse().expect("--rate ORDERS_PER_SECOND"),
            "--database" => a.database = Some(value),
            other => {
                panic!("unknown argument {other}; use --bin, --orders, --clients, --format, --rate, --database")
            }
        }
    }
    a
}

fn order(number: &str) -> serde_json::Value {
    serde_json::json!({
        "number": number,
        "status": "N",
        "currency": "RUB",
        "customer": {"type": "person", "first_name": "Ivan", "last_name": "Petrov",
                     "email": "ivan@example.com"},
        "delivery": {"method": "Courier", "price": "300"},
        "payment": {"method": "Card", "paid": false},
        "items": [
            {"sku": "A-1", "name": "Kettle", "quantity": 2, "price": "1500.50"},
            {"sku": "B-2", "name": "Mug", "quantity": "3", "price": "99.90"}
        ],
        "properties": {"utm_source": "bench"}
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    anyhow::ensure!(
        args.bin.exists(),
        "{} not found: cargo build --release -p obmen (or pass --bin)",
        args.bin.display()
    );
    let dir = tempfile::tempdir()?;
    let one_c = service::serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        ServiceOptions {
            state: dir.path().join("standin.db").display().to_string(),
            ..ServiceOptions::default()
        },
    )
    .await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(&args.bin)
        .arg("serve")
        .current_dir(dir.path())
        .env("OBMEN_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "OBMEN_DATABASE_URL",
            args.database
                .clone()
                .unwrap_or_else(|| dir.path().join("obmen.db").display().to_string()),
        )
        .env("OBMEN_API_TOKEN", TOKEN)
        .env("OBMEN_EXCHANGE_PASSWORD", "bench-password")
        .env(
            "OBMEN_PUSH_URL",
            format!("http://{}/hs/obmen/orders", one_c.addr()),
        )
        .env("OBMEN_PUSH_FORMAT", &args.format)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        anyhow::ensure!(Instant::now() < deadline, "obmen did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let result = run(&args, &http, &base, one_c.addr()).await;
    if let (Some(obmen), Some(bench)) = (cpu_seconds(&server.id().to_string()), cpu_seconds("self"))
    {
        println!(
            "  CPU time over the whole run: obmen {obmen:.2} s, this process (clients and the \
             stand-in) {bench:.2} s"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    one_c.shutdown().await?;
    result
}

/// User + system CPU seconds of a process from `/proc/PID/stat` (Linux; `None` elsewhere),
/// assuming the usual 100 clock ticks a second.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn ms(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1000.0
}

async fn received(http: &reqwest::Client, addr: std::net::SocketAddr) -> anyhow::Result<usize> {
    let v: serde_json::Value = http
        .get(format!("http://{addr}/received"))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["orders"].as_object().map_or(0, serde_json::Map::len))
}

/// POSTs `n` orders from `clients` concurrent clients. With a positive `rate`, order `i` is
/// not sent before `i / rate` seconds after the start (an open-loop load of `rate` orders/s as
/// long as the clients keep up); otherwise every client sends its next order at once.
async fn post_all(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    n: usize,
    clients: usize,
    rate: f64,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, next, prefix) = (
            http.clone(),
            base.to_owned(),
            Arc::clone(&next),
            prefix.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                if rate > 0.0 {
                    let due = Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(start + due).await;
                }
                let r = http
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(TOKEN)
                    .json(&order(&format!("{prefix}-{i:06}")))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "POST answered {}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn run(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    one_c: std::net::SocketAddr,
) -> anyhow::Result<()> {
    // Warm-up: connections, caches.
    let warm = 200;
    post_all(http, base, "W", warm, args.clients, args.rate).await?;
    while received(http, one_c).await? < warm {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    post_all(http, base, "B", args.orders, args.clients, args.rate).await?;
    let posted = started.elapsed();
    let total = warm + args.orders;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received(http, one_c).await? < total {
        anyhow::ensure!(Instant::now() < deadline, "not every order arrived");
        // Each look reads the whole list: not more often than every 10 ms, so the polling does not
        // take the CPU the server needs.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();

    // Latency from the outbox: accepted (created_at) -> acknowledged (delivered_at). The
    // stand-in may hold an order a moment before its acknowledgement is committed: read again
    // until every entry is delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut latencies, mut queued, mut pushing) = loop {
        let found = delivered_latencies(http, base, args.orders).await?;
        if found.0.len() == args.orders {
            break found;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {} entries delivered",
            found.0.len(),
            args.orders
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    for v in [&mut latencies, &mut queued, &mut pushing] {
        v.sort_by(f64::total_cmp);
    }
    let pct_of = |v: &[f64], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    let pct = |p: f64| pct_of(&latencies, p);
    let rate = args.orders as f64 / elapsed.as_secs_f64();
    println!(
        "push bench: {} orders ({}), {} clients, offered {}: posted in {:.2} s, all received in {:.2} s \
         = {:.0} orders/s; accept->ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.orders,
        args.format,
        args.clients,
        if args.rate > 0.0 {
            format!("{:.0}/s", args.rate)
        } else {
            "as fast as possible".to_owned()
        },
        posted.as_secs_f64(),
        elapsed.as_secs_f64(),
        rate,
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    println!(
        "  of which in the outbox until claimed: p50 {:.1} ms, p99 {:.1} ms; \
         claimed to acknowledged: p50 {:.1} ms, p99 {:.1} ms",
        pct_of(&queued, 0.5),
        pct_of(&queued, 0.99),
        pct_of(&pushing, 0.5),
        pct_of(&pushing, 0.99)
    );
    Ok(())
}

/// Latencies of the delivered `B-` entries (ms): accept to acknowledgement, accept to the last
/// attempt's start, and that attempt.
async fn delivered_latencies(
    http: &reqwest::Client,
    base: &str,
    orders: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let mut latencies: Vec<f64> = Vec::with_capacity(orders);
    // The two parts of it: waiting in the outbox until claimed, and the last attempt.
    let mut queued: Vec<f64> = Vec::with_capacity(orders);
    let mut pushing: Vec<f64> = Vec::with_capacity(orders);
    let mut after = 0i64;
    loop {
        let page: serde_json::Value = http
            .get(format!(
                "{base}/api/v1/outbox?state=delivered&limit=10000&after_id={after}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        let Some(last) = entries.last() else { break };
        after = last["id"].as_i64().unwrap_or(i64::MAX);
        for e in &entries {
            if !e["order_number"]
                .as_str()
                .is_some_and(|n| n.starts_with("B-"))
            {
                continue;
            }
            let created: DateTime<Utc> = serde_json::from_value(e["created_at"].clone())?;
            let claimed: DateTime<Utc> = serde_json::from_value(e["last_attempt_at"].clone())?;
            let delivered: DateTime<Utc> = serde_json::from_value(e["delivered_at"].clone())?;
            latencies.push(ms(delivered - created));
            queued.push(ms(claimed - created));
            pushing.push(ms(delivered - claimed));
        }
    }
    Ok((latencies, queued, pushing))
}
