//! The one error type of the store.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The write clashes with what is stored (e.g. a duplicate key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller asked for something that cannot be (bad URL, bad argument).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Stored data could not be read back (e.g. a malformed JSON column).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Other(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
