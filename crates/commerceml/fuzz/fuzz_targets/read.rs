//! Fuzz target: the streaming reader must never panic, whatever the bytes, with the default
//! limits and with tiny ones. `cargo +nightly fuzz run read` (from crates/commerceml).
#![no_main]

use commerceml::read::{Limits, ReadOptions};
use commerceml::Reader;
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], options: ReadOptions) {
    if let Ok(mut reader) = Reader::with_options(data, options) {
        while let Ok(Some(_)) = reader.next_item() {}
    }
}

fuzz_target!(|data: &[u8]| {
    run(data, ReadOptions::default());
    let tiny = Limits::default()
        .with_max_depth(6)
        .with_max_name_len(12)
        .with_max_text_len(32)
        .with_max_attribute_len(16)
        .with_max_attributes(3);
    run(data, ReadOptions::with_limits(tiny));
});
