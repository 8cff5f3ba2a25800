//! Streaming writer for schema 2.05, 2.08, 2.10 and 3.1, windows-1251 or UTF-8 with BOM.
//!
//! (Skeleton; the implementation lands with issue 2.)

use std::io::Write;

use crate::error::Result;
use crate::model::Item;
use crate::value::SchemaVersion;

/// The encoding of written documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputEncoding {
    /// windows-1251, no BOM, as Bitrix writes; characters it lacks become `&#N;`.
    #[default]
    Windows1251,
    /// UTF-8 with a BOM.
    Utf8,
}

/// Options of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The schema version whose structure is written.
    pub schema: SchemaVersion,
    /// The output encoding.
    pub encoding: OutputEncoding,
    /// Write what the published XSD requires instead of what Bitrix writes.
    pub xsd_strict: bool,
    /// `ДатаФормирования`; `None` writes no such attribute.
    pub generated_at: Option<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            schema: SchemaVersion::v2_05(),
            encoding: OutputEncoding::Windows1251,
            xsd_strict: false,
            generated_at: None,
        }
    }
}

/// A streaming CommerceML writer over any [`Write`].
pub struct Writer<W: Write> {
    out: W,
    _options: WriteOptions,
}

impl<W: Write> Writer<W> {
    /// Writes the declaration and the root start tag.
    pub fn new(out: W, options: WriteOptions) -> Result<Self> {
        Ok(Self {
            out,
            _options: options,
        })
    }

    /// Writes one item in the structure of the chosen schema version.
    pub fn write_item(&mut self, _item: &Item) -> Result<()> {
        Ok(())
    }

    /// Closes the root and returns the sink.
    pub fn finish(self) -> Result<W> {
        Ok(self.out)
    }
}
