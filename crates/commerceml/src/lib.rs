//! CommerceML 2.x / 3.x order documents, as 1C:Enterprise and 1C-Bitrix exchange them.
//!
//! * [`model`] — typed documents, counterparties, lines; unknown elements are kept.
//! * [`read`] — a streaming reader yielding one document (or container) at a time from any
//!   [`std::io::Read`], in any encoding 1C or Bitrix uses, with limits against hostile input.
//! * [`write`](mod@write) — a streaming writer for schema 2.05, 2.08, 2.10 and 3.1, windows-1251 or UTF-8.
//! * [`value`] — numbers, dates, booleans and schema versions in every form seen in the wild.
//! * [`tags`] — every Russian element name, once.
//!
//! No async, no database, no HTTP: bytes in, typed values out, and back.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod model;
pub mod read;
pub mod tags;
pub mod value;
pub mod write;

pub use error::{Error, Position, Result};
pub use model::*;
pub use read::{Limits, ReadOptions, Reader};
pub use value::SchemaVersion;
pub use write::{OutputEncoding, WriteOptions, Writer};
