//! The obmen gateway as a library: everything `main` runs, reusable by tests.
#![forbid(unsafe_code)]

pub mod convert;
pub mod validate;
