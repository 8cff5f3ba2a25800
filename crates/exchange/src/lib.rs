//! The exchange between a store and 1C as pure functions and state types.
//!
//! * [`domain`] — orders as the store sends them and as obmen keeps them.
//! * [`clock`] — the one clock seam.
//! * [`export`] — an order as the document 1C receives; [`import`] — what 1C's documents mean.
//! * [`hook`] — sandboxed Rhai export/import hooks.
//! * [`protocol`] — modes, replies and file names of 1C's exchange.
//! * [`retry`] — the push retry policy (backoff with jitter, transient vs permanent).
//! * [`settings`] — what is exported and how; [`status`] — the status mapping.
//!
//! No I/O here: the binary carries out what these functions decide.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod domain;
pub mod export;
pub mod hook;
pub mod import;
pub mod protocol;
pub mod retry;
pub mod settings;
pub mod status;
