//! Streaming reader: one document (or container, or root-level counterparty) at a time.
//!
//! (Skeleton; the implementation lands with issue 2.)

use std::io::Read;

use crate::error::Result;
use crate::model::{Item, Root};

/// Limits against hostile input. Every field has a default suited to real exchange files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum element nesting depth. Default 64.
    pub max_depth: usize,
    /// Maximum length of an element or attribute name, in bytes. Default 256.
    pub max_name_len: usize,
    /// Maximum length of one text value, in bytes. Default 1 MiB.
    pub max_text_len: usize,
    /// Maximum length of one attribute value, in bytes. Default 64 KiB.
    pub max_attribute_len: usize,
    /// Maximum number of attributes on one element. Default 64.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_name_len: 256,
            max_text_len: 1 << 20,
            max_attribute_len: 64 << 10,
            max_attributes: 64,
        }
    }
}

/// Options of the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Limits against hostile input.
    pub limits: Limits,
}

/// A streaming CommerceML reader over any [`Read`].
pub struct Reader<R> {
    _input: R,
    root: Root,
}

impl<R: Read> Reader<R> {
    /// Opens a document with default options: detects the encoding, reads up to and including
    /// the root start tag.
    pub fn new(input: R) -> Result<Self> {
        Self::with_options(input, ReadOptions::default())
    }

    /// Opens a document with the given options.
    pub fn with_options(input: R, _options: ReadOptions) -> Result<Self> {
        Ok(Self {
            _input: input,
            root: Root::default(),
        })
    }

    /// The root element's attributes.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The next child of the root, or `None` after the root's end tag.
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        Ok(None)
    }
}
