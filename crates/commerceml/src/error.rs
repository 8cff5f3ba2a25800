//! The one error type of the crate.

use std::fmt;

/// Where in the input an error was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    /// Byte offset in the input as given (before any transcoding).
    pub offset: u64,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in bytes.
    pub column: u64,
    /// Element path, e.g. `/КоммерческаяИнформация/Документ/Товары/Товар/Сумма`.
    pub path: String,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (byte {})", self.line, self.column, self.offset)?;
        if !self.path.is_empty() {
            write!(f, " at {}", self.path)?;
        }
        Ok(())
    }
}

/// What went wrong while reading or writing CommerceML.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not well-formed XML.
    #[error("{position}: malformed XML: {message}")]
    Syntax {
        /// Where.
        position: Position,
        /// What the XML parser said.
        message: String,
    },
    /// The bytes are not valid in the document's encoding.
    #[error("{position}: invalid byte sequence for encoding {encoding}")]
    Encoding {
        /// Where.
        position: Position,
        /// The encoding in force.
        encoding: &'static str,
    },
    /// The document declares an encoding we do not read.
    #[error("unsupported encoding {0:?}")]
    UnsupportedEncoding(String),
    /// DTDs and entity declarations are refused (XXE, billion laughs).
    #[error("{position}: DTD and entity declarations are not allowed")]
    Dtd {
        /// Where.
        position: Position,
    },
    /// A configured limit was exceeded.
    #[error("{position}: {what} exceeds the limit of {limit}")]
    Limit {
        /// Where.
        position: Position,
        /// Which limit (`nesting depth`, `text length`, …).
        what: &'static str,
        /// The limit in force.
        limit: usize,
    },
    /// The root element is not `КоммерческаяИнформация` or is missing.
    #[error("{position}: not a CommerceML document: {message}")]
    NotCommerceMl {
        /// Where.
        position: Position,
        /// Details.
        message: String,
    },
    /// A value has the wrong form (a number that is not a number, …).
    #[error("{position}: {message}")]
    Value {
        /// Where.
        position: Position,
        /// Details, naming the value.
        message: String,
    },
    /// The input ended before the document was complete.
    #[error("{position}: unexpected end of input")]
    UnexpectedEof {
        /// Where.
        position: Position,
    },
    /// A character cannot be written in the chosen encoding outside XML content.
    #[error("cannot write {0:?} in the chosen encoding")]
    Unencodable(String),
    /// A document lacks what the published XSD requires (strict writing only).
    #[error("cannot write the XSD form: {0}")]
    Xsd(String),
}

impl Error {
    /// The position of the error in the input, when it has one.
    pub fn position(&self) -> Option<&Position> {
        match self {
            Self::Syntax { position, .. }
            | Self::Encoding { position, .. }
            | Self::Dtd { position }
            | Self::Limit { position, .. }
            | Self::NotCommerceMl { position, .. }
            | Self::Value { position, .. }
            | Self::UnexpectedEof { position } => Some(position),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
