//! Unpacking zip uploads into the session's upload area (PROTOCOL.md §5.3).
//!
//! Entry names are decoded from CP866 (1C's archiver) unless the entry's UTF-8 flag (bit 11) is
//! set, then sanitised like any upload name. Entry count and unpacked size are limited, and the
//! size is enforced on the bytes actually inflated, not on what the archive claims. Unpacking is
//! idempotent: an entry already present with its full size is skipped.

use std::io::{Cursor, Read};

use exchange::protocol::sanitize_filename;
use tokio::runtime::Handle;

use crate::http::exchange::Failure;
use crate::startup::App;

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const CHUNK: usize = 1 << 20;

/// Why unpacking failed.
#[derive(Debug)]
pub enum UnzipError {
    /// The archive is not complete yet (no central directory).
    Incomplete,
    /// The archive is broken or breaks a limit.
    Invalid(String),
    /// The database failed.
    Store(store::Error),
}

impl UnzipError {
    /// The protocol answer.
    pub fn into_failure(self) -> Failure {
        match self {
            Self::Incomplete => Failure::protocol("Archive is incomplete."),
            Self::Invalid(m) => Failure::protocol(m),
            Self::Store(e) => e.into(),
        }
    }
}

impl From<store::Error> for UnzipError {
    fn from(e: store::Error) -> Self {
        Self::Store(e)
    }
}

/// Whether the session's upload `name` is a zip archive (by its first bytes).
pub fn is_zip(app: &App, rt: &Handle, session_id: i64, name: &str) -> Result<bool, Failure> {
    let head = rt.block_on(app.store.read_upload_range(session_id, name, 0, 4))?;
    Ok(head == ZIP_MAGIC)
}

/// Decodes an entry name: UTF-8 when flagged, else CP866.
pub fn decode_entry_name(raw: &[u8], utf8_flag: bool) -> String {
    if utf8_flag {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        encoding_rs::IBM866.decode(raw).0.into_owned()
    }
}

/// Unpacks the session's archive `name`; returns the (sanitised) names of its files.
pub fn unpack(
    app: &App,
    rt: &Handle,
    session_id: i64,
    name: &str,
) -> Result<Vec<String>, UnzipError> {
    let limits = &app.config.limits;
    let bytes = rt.block_on(app.store.read_upload(session_id, name))?;
    let mut archive = match zip::ZipArchive::new(Cursor::new(&bytes[..])) {
        Ok(a) => a,
        Err(zip::result::ZipError::InvalidArchive(_)) if !has_end_record(&bytes) => {
            return Err(UnzipError::Incomplete)
        }
        Err(e) => return Err(UnzipError::Invalid(format!("Cannot unpack {name}: {e}."))),
    };
    if archive.len() > limits.max_zip_entries as usize {
        return Err(UnzipError::Invalid(format!(
            "Archive {name} has {} entries; the limit is {}.",
            archive.len(),
            limits.max_zip_entries
        )));
    }
    let existing = rt.block_on(app.store.list_uploads(session_id))?;
    let mut total: u64 = 0;
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| UnzipError::Invalid(format!("Cannot unpack {name}: {e}.")))?;
        if entry.is_dir() {
            continue;
        }
        let flags_at = usize::try_from(entry.central_header_start()).unwrap_or(usize::MAX);
        let utf8 = bytes
            .get(flags_at + 8..flags_at + 10)
            .is_some_and(|f| u16::from_le_bytes([f[0], f[1]]) & 0x0800 != 0);
        let raw_name = decode_entry_name(entry.name_raw(), utf8);
        let entry_name = sanitize_filename(&raw_name)
            .map_err(|e| UnzipError::Invalid(format!("Archive {name}: {e}.")))?;
        total = total.saturating_add(entry.size());
        if total > limits.max_unzipped_bytes {
            return Err(UnzipError::Invalid(format!(
                "Archive {name} unpacks to more than {} bytes.",
                limits.max_unzipped_bytes
            )));
        }
        if let Some((_, size)) = existing.iter().find(|(n, _)| *n == entry_name) {
            if *size == entry.size() {
                names.push(entry_name);
                continue;
            }
            return Err(UnzipError::Invalid(format!(
                "Archive {name}: {entry_name} already exists with another content."
            )));
        }
        // Never trust the declared size: read at most one byte more than it claims.
        let declared = entry.size();
        let mut limited = (&mut entry).take(declared + 1);
        let mut written: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_full(&mut limited, &mut buf)
                .map_err(|e| UnzipError::Invalid(format!("Cannot unpack {name}: {e}.")))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > declared {
                return Err(UnzipError::Invalid(format!(
                    "Archive {name}: {entry_name} is larger than declared."
                )));
            }
            rt.block_on(app.store.append_upload(session_id, &entry_name, &buf[..n]))?;
        }
        names.push(entry_name);
    }
    Ok(names)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Whether the bytes contain an end-of-central-directory record.
fn has_end_record(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(66_000)..];
    tail.windows(4).any(|w| w == b"PK\x05\x06")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_cp866_unless_flagged() {
        let (cp866, _, _) = encoding_rs::IBM866.encode("заказы.xml");
        assert_eq!(decode_entry_name(&cp866, false), "заказы.xml");
        assert_eq!(
            decode_entry_name("заказы.xml".as_bytes(), true),
            "заказы.xml"
        );
    }
}
