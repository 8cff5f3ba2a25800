//! Writer throughput per CPU second and peak memory, for a generated order file of a given size.
//!
//! ```text
//! cargo run --release -p commerceml --example write_throughput -- 100 windows-1251
//! cargo run --release -p commerceml --example write_throughput -- 10 utf-8 /tmp/orders-10.xml
//! ```
//!
//! Writes Bitrix-shaped orders (schema 2.08) until about `MB` megabytes are out, into `io::sink`
//! or the given file, then prints the bytes, wall and CPU time, throughput, and the peak
//! resident set size (`VmHWM`). The machine may be shared, so MB per CPU second is the figure
//! that does not depend on other load; the peak RSS shows that memory does not grow with the
//! output.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Instant;

use commerceml::{OutputEncoding, SchemaVersion, WriteOptions, Writer};

#[path = "../benches/support/documents.rs"]
mod documents;

/// Counts bytes on their way to the inner sink.
struct Counter<W> {
    inner: W,
    bytes: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l[name.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// CPU time (user + system) of this process in seconds, at the usual 100 ticks per second.
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

fn run<W: Write>(
    out: W,
    docs: &[commerceml::Document],
    target: u64,
    encoding: OutputEncoding,
) -> io::Result<u64> {
    let schema = SchemaVersion::parse("2.08").ok_or_else(|| io::Error::other("version"))?;
    let options = WriteOptions::new(schema, encoding).generated_at("2021-02-12T17:03:19");
    let bytes = Rc::new(Cell::new(0));
    let counter = Counter {
        inner: out,
        bytes: Rc::clone(&bytes),
    };
    let mut w = Writer::new(counter, options).map_err(io::Error::other)?;
    let mut n = 0usize;
    while bytes.get() < target {
        w.write_document(&docs[n % docs.len()])
            .map_err(io::Error::other)?;
        n += 1;
    }
    w.finish().map_err(io::Error::other)?;
    Ok(bytes.get())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mb: u64 = args.first().map_or(Ok(100), |s| s.parse())?;
    let encoding = match args.get(1).map_or("windows-1251", String::as_str) {
        "utf-8" | "utf8" => OutputEncoding::Utf8,
        "windows-1251" | "cp1251" => OutputEncoding::Windows1251,
        other => return Err(format!("unknown encoding {other:?}").into()),
    };
    let target = mb << 20;
    // A fixed set of distinct orders, written over and over: generation stays out of the timing.
    let docs: Vec<_> = (0..1000).map(documents::order).collect();
    let rss_before = status_field("VmRSS:");
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let bytes = match args.get(2) {
        Some(path) => run(
            io::BufWriter::new(File::create(path)?),
            &docs,
            target,
            encoding,
        )?,
        None => run(io::sink(), &docs, target, encoding)?,
    };
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mib = bytes as f64 / (1u64 << 20) as f64;
    println!(
        "{} {:.1} MiB: wall {:.2} s ({:.0} MiB/s), cpu {:.2} s ({:.0} MiB/s per CPU second), \
         RSS before {rss_before}, peak RSS {}",
        encoding.label(),
        mib,
        wall,
        mib / wall,
        cpu,
        mib / cpu,
        status_field("VmHWM:"),
    );
    Ok(())
}
