//! 1C as seen from outside: the exchange client and the HTTP-service stand-in.
//!
//! * [`client`] plays 1C's side of one "Обмен с сайтом" run against any site URL, keeping its
//!   own SQLite "1C database" ([`db`]) and sending back what a [`script`] says.
//! * [`service`] stands in for a 1C HTTP service that receives orders pushed in real time.
//! * [`cli`] is the `emulate-1c` command line over both.
//!
//! Nothing here knows the site implementation: the emulator only speaks the protocol.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod db;
pub mod error;
pub mod script;
pub mod service;
pub mod wire;
pub mod xml;

pub use client::{run_parallel, run_session, ClientOptions, Faults, Session, Summary};
pub use db::Database;
pub use error::{Error, Result};
pub use script::Script;
