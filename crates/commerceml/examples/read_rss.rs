//! Peak memory of the streaming reader, to show it does not depend on the file size.
//!
//! ```text
//! cargo run --release -p commerceml --example read_rss -- generate /tmp/orders-100.xml 100 windows-1251
//! cargo run --release -p commerceml --example read_rss -- read /tmp/orders-100.xml
//! ```
//!
//! `read` streams the file through the reader into the typed model and prints the bytes, the
//! documents, the throughput and the peak resident set size (`VmHWM` of /proc/self/status).

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use commerceml::{Item, Reader};

#[path = "../benches/support/orders.rs"]
mod gen;

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// CPU time (user + system) of this process in seconds; the machine may be shared, so
/// throughput per CPU second is the figure that does not depend on other load. Assumes the
/// usual 100 clock ticks per second.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", out, mb, enc] => {
            let enc = gen::Enc::parse(enc).ok_or("encoding: utf-8 or windows-1251")?;
            let mb: u64 = mb.parse()?;
            let (bytes, docs) =
                gen::write_orders(BufWriter::new(File::create(out)?), mb << 20, enc)?;
            println!(
                "wrote {out}: {bytes} bytes, {docs} documents, {}",
                enc.name()
            );
        }
        ["read", path] => {
            let start = Instant::now();
            let cpu_start = cpu_seconds();
            let mut reader = Reader::new(File::open(path)?)?;
            let (mut docs, mut lines) = (0u64, 0u64);
            while let Some(item) = reader.next_item()? {
                if let Item::Document(d) = item {
                    docs += 1;
                    lines += d.lines.len() as u64;
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu_start;
            let bytes = reader.bytes_read();
            println!(
                "{path}: {bytes} bytes, {docs} documents, {lines} lines, {}, wall {:.2} s ({:.0} MB/s), cpu {:.2} s ({:.0} MB/s), peak RSS (VmHWM) {}",
                reader.encoding(),
                secs,
                bytes as f64 / secs / 1e6,
                cpu,
                bytes as f64 / cpu / 1e6,
                vm_hwm()
            );
        }
        _ => {
            eprintln!(
                "usage: read_rss generate OUT SIZE_MB utf-8|windows-1251 | read_rss read FILE"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
