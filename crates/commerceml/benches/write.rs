//! Writer throughput: a generated order file of about 100 MB (Bitrix-shaped orders with
//! Cyrillic text, ten lines each, counterparties and requisites) written in each encoding into
//! `io::sink`. The hot path of `mode=query` answers and of `obmen convert`.
//!
//! `cargo bench -p commerceml --bench write`

use std::hint::black_box;
use std::io::{self, Write};

use commerceml::{Document, OutputEncoding, SchemaVersion, WriteOptions, Writer};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/documents.rs"]
mod documents;
use documents::order;

/// Target size of the written file.
const TARGET_BYTES: u64 = 100 << 20;

/// Counts bytes, drops them.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_all<W: Write>(out: W, docs: &[Document], rounds: usize, encoding: OutputEncoding) -> W {
    let options = WriteOptions::new(SchemaVersion::parse("2.08").unwrap(), encoding)
        .generated_at("2021-02-12T17:03:19");
    let mut w = Writer::new(out, options).unwrap();
    for _ in 0..rounds {
        for d in docs {
            w.write_document(d).unwrap();
        }
    }
    w.finish().unwrap()
}

fn bench(c: &mut Criterion) {
    let docs: Vec<Document> = (0..1000).map(order).collect();
    let mut group = c.benchmark_group("commerceml write");
    group.sample_size(10);
    for (label, encoding) in [
        ("windows-1251", OutputEncoding::Windows1251),
        ("utf-8", OutputEncoding::Utf8),
    ] {
        let per_round = write_all(Counter(0), &docs, 1, encoding).0;
        let rounds = TARGET_BYTES.div_ceil(per_round) as usize;
        let total = write_all(Counter(0), &docs, rounds, encoding).0;
        eprintln!("{label}: {rounds} x {} orders = {total} bytes", docs.len());
        group.throughput(Throughput::Bytes(total));
        group.bench_function(label, |b| {
            b.iter(|| black_box(write_all(io::sink(), &docs, rounds, encoding)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
