//! The one error type of the emulator.

/// What went wrong in an exchange session or in the stand-in service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The site broke the protocol: a reply 1C would not accept.
    #[error("protocol violation at mode={mode}: {detail}")]
    Violation {
        /// The exchange mode of the request (`checkauth`, `query`, …).
        mode: String,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The site answered `failure` (a valid reply that ends the session).
    #[error("the site answered failure at mode={mode}: {message}")]
    Failure {
        /// The exchange mode of the request.
        mode: String,
        /// The text lines after `failure`, joined with `; `.
        message: String,
    },
    /// The request could not be made or its answer not read (connection refused, timeout, …).
    #[error("HTTP error at mode={mode}")]
    Http {
        /// The exchange mode of the request.
        mode: String,
        /// The underlying client error.
        #[source]
        source: reqwest::Error,
    },
    /// The emulator's own database failed.
    #[error("1C database: {0}")]
    Db(#[from] sqlx::Error),
    /// A script or an option is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Any other I/O failure (raw sockets, files, zip).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether this error is a protocol violation by the site.
    pub fn is_violation(&self) -> bool {
        matches!(self, Self::Violation { .. })
    }

    pub(crate) fn violation(mode: &str, detail: impl Into<String>) -> Self {
        Self::Violation {
            mode: mode.to_owned(),
            detail: detail.into(),
        }
    }
}

/// The result type of the emulator.
pub type Result<T, E = Error> = std::result::Result<T, E>;
