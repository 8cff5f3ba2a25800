//! Storage for obmen: one trait, a SQLite implementation (the embedded default).
#![forbid(unsafe_code)]
