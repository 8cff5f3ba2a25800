//! Read throughput into the typed model over a generated ~100 MB order file, in UTF-8 and in
//! windows-1251. `cargo bench -p commerceml --bench read`; set `OBMEN_BENCH_MB` for another
//! size.

use std::hint::black_box;
use std::time::Duration;

use commerceml::{Item, Reader};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/orders.rs"]
mod gen;

fn read_documents(bytes: &[u8]) -> u64 {
    let mut reader = Reader::new(bytes).expect("open");
    let mut n = 0;
    while let Some(item) = reader.next_item().expect("item") {
        if let Item::Document(d) = item {
            n += d.lines.len() as u64;
            black_box(&d);
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mb: u64 = std::env::var("OBMEN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut group = c.benchmark_group("commerceml_read");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for enc in [gen::Enc::Utf8, gen::Enc::Windows1251] {
        let (bytes, docs) = gen::orders(mb << 20, enc);
        assert!(read_documents(&bytes) > docs, "every document read");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{}_{}MB", enc.name(), mb), |b| {
            b.iter(|| read_documents(black_box(&bytes)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
