//! The obmen gateway as a library: everything `main` runs, reusable by tests.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod convert;
pub mod demo;
pub mod export;
pub mod hooks;
pub mod http;
pub mod import;
pub mod info;
pub mod metrics;
pub mod orders;
pub mod push;
pub mod startup;
pub mod unzip;
pub mod validate;
pub mod webhook;
