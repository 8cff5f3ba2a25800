//! The built binary: `kill -9` between query and success loses nothing, the generated password,
//! and the config subcommands.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_obmen");
const TOKEN: &str = "process-test-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    base: String,
}

fn start(dir: &Path, password: Option<&str>) -> Server {
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(dir)
        .env("OBMEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("OBMEN_DATABASE_URL", dir.join("obmen.db"))
        .env("OBMEN_API_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match password {
        Some(p) => cmd.env("OBMEN_EXCHANGE_PASSWORD", p),
        None => cmd.env_remove("OBMEN_EXCHANGE_PASSWORD"),
    };
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http1::blocking_get(&format!("{base}/healthz")) {
            if r {
                break;
            }
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, base }
}

mod http1 {
    //! A tiny blocking HTTP/1.1 client for these tests (the server is on loopback).
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> std::io::Result<bool> {
        let r = request("GET", url, &[], None)?;
        Ok(r.0 == 200)
    }

    /// Returns (status, body).
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(host)?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut body = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((status, body))
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
            b = &b[eol + 2 + size + 2..];
        }
    }
}

struct OneC {
    base: String,
    password: String,
    cookie: Option<String>,
    sessid: Option<String>,
}

impl OneC {
    fn get(&self, query: &str) -> Vec<u8> {
        use base64::Engine as _;
        let mut url = format!(
            "{}/bitrix/admin/1c_exchange.php?type=sale&{query}",
            self.base
        );
        if let Some(s) = &self.sessid {
            url.push_str(&format!("&sessid={s}"));
        }
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("1c:{}", self.password));
        let mut headers = vec![("Authorization", format!("Basic {auth}"))];
        if let Some(c) = &self.cookie {
            headers.push(("Cookie", c.clone()));
        }
        let (status, body) = http1::request("GET", &url, &headers, None).unwrap();
        assert_eq!(status, 200);
        body
    }

    fn start(base: &str, password: &str) -> Self {
        let mut c = Self {
            base: base.to_owned(),
            password: password.to_owned(),
            cookie: None,
            sessid: None,
        };
        let text = String::from_utf8(c.get("mode=checkauth")).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "success", "{text}");
        c.cookie = Some(format!("{}={}", lines[1], lines[2]));
        c.sessid = Some(lines[3].trim_start_matches("sessid=").to_owned());
        let init = String::from_utf8(c.get("mode=init&version=2.08")).unwrap();
        assert!(init.starts_with("zip=yes\n"));
        c
    }

    fn offered(&self) -> Vec<(String, String)> {
        let xml = self.get("mode=query");
        let mut reader = commerceml::Reader::new(&xml[..]).unwrap();
        let mut out = Vec::new();
        while let Some(item) = reader.next_item().unwrap() {
            if let commerceml::Item::Document(d) = item {
                out.push((d.id.unwrap(), d.number.unwrap()));
            }
        }
        out
    }
}

fn post_order(base: &str, number: &str) {
    let body = serde_json::json!({
        "number": number,
        "customer": {"name": "ООО Ромашка", "type": "company", "inn": "7700000000"},
        "items": [{"name": "Товар", "quantity": 1, "price": "10.00"}]
    });
    let (status, _) = http1::request(
        "POST",
        &format!("{base}/api/v1/orders"),
        &[
            ("Authorization", format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json".to_owned()),
        ],
        Some(body.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(status, 201);
}

#[test]
fn kill_9_between_query_and_success_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), Some("pw"));
    for n in ["K-1", "K-2", "K-3"] {
        post_order(&server.base, n);
    }
    let onec = OneC::start(&server.base, "pw");
    let before = onec.offered();
    assert_eq!(before.len(), 3);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let mut server = start(dir.path(), Some("pw"));
    let onec = OneC::start(&server.base, "pw");
    assert_eq!(onec.offered(), before, "the same orders with the same ids");
    assert_eq!(
        String::from_utf8(onec.get("mode=success")).unwrap(),
        "success\n"
    );
    assert!(onec.offered().is_empty());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn a_generated_password_is_printed_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), None);
    let mut out = BufReader::new(server.child.stdout.take().unwrap());
    let mut password = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(p) = line.trim().strip_prefix("password: ") {
            password = Some(p.to_owned());
            break;
        }
        line.clear();
    }
    let password = password.expect("password printed");
    assert_eq!(password.len(), 20);
    OneC::start(&server.base, &password);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Restarted: nothing printed, the same password still works.
    let mut server = start(dir.path(), None);
    OneC::start(&server.base, &password);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut server.child.stdout.take().unwrap(), &mut rest).unwrap();
    assert!(!rest.contains("password"), "{rest}");
}

#[test]
fn config_example_parses_and_check_reports_problems() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = dir.path().join("example.toml");
    std::fs::write(&example, &out.stdout).unwrap();
    let ok = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[exchange]\nexport_statuses = [\"N\", \"Q\"]\n[[exchange.statuses.entries]]\nname_1c = \"Новый\"\ncode = \"N\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"Q\""), "{err}");
    let out = Command::new(BIN)
        .args(["config", "check"])
        .current_dir(dir.path())
        .env("OBMEN_EXCHANGE__FILE_LIMIT", "zero")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OBMEN_EXCHANGE__FILE_LIMIT"));
}

#[test]
fn orders_import_loads_jsonl_idempotently_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.jsonl");
    let order = |n: &str| {
        serde_json::json!({"number": n, "customer": {"name": "Покупатель"},
                           "items": [{"name": "Товар", "quantity": 1, "price": "10.00"}]})
        .to_string()
    };
    std::fs::write(&file, format!("{}\n\n{}\n", order("J-1"), order("J-2"))).unwrap();
    let run = |path: &Path| {
        Command::new(BIN)
            .args(["orders", "import", "--quiet"])
            .arg(path)
            .current_dir(dir.path())
            .env("OBMEN_DATABASE_URL", dir.path().join("obmen.db"))
            .output()
            .unwrap()
    };
    let out = run(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 created, 0 updated, 0 unchanged\n"
    );
    let out = run(&file);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 created, 0 updated, 2 unchanged\n"
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{}\n{{\"number\": \"J-3\", \"customer\": {{}}, \"items\": [{{\"name\": \"x\", \"quantity\": \"many\", \"price\": 1}}]}}\n", order("J-1")),
    )
    .unwrap();
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2: field items[0].quantity"),
        "{err}"
    );
}
