//! The wire protocol of 1C's "Обмен с сайтом" (`type=sale`) as values: modes, replies, file
//! names. See PROTOCOL.md §1–§5.

use std::fmt::Write as _;

/// A `mode` of the sale exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `checkauth`: log in, get the cookie and `sessid`.
    CheckAuth,
    /// `init`: start a run, negotiate zip, file limit and version.
    Init,
    /// `query`: fetch orders.
    Query,
    /// `success`: confirm the last `query`.
    Success,
    /// `file`: upload (a chunk of) a file.
    File,
    /// `import`: apply an uploaded file.
    Import,
    /// `info`: lookup lists for 1C's mapping.
    Info,
}

impl Mode {
    /// Parses the `mode` query parameter (case-insensitive).
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "checkauth" => Self::CheckAuth,
            "init" => Self::Init,
            "query" => Self::Query,
            "success" => Self::Success,
            "file" => Self::File,
            "import" => Self::Import,
            "info" => Self::Info,
            _ => return None,
        })
    }

    /// The mode as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheckAuth => "checkauth",
            Self::Init => "init",
            Self::Query => "query",
            Self::Success => "success",
            Self::File => "file",
            Self::Import => "import",
            Self::Info => "info",
        }
    }
}

/// The status word on the first line of a text reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `success`.
    Success,
    /// `progress`: call again.
    Progress,
    /// `failure`.
    Failure,
}

/// A plain-text reply: the status line and further lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// First line.
    pub status: Status,
    /// Further lines (messages, key=value pairs).
    pub lines: Vec<String>,
}

impl Reply {
    /// `success` followed by `lines`.
    pub fn success(lines: Vec<String>) -> Self {
        Self {
            status: Status::Success,
            lines,
        }
    }

    /// `progress` followed by `lines`.
    pub fn progress(lines: Vec<String>) -> Self {
        Self {
            status: Status::Progress,
            lines,
        }
    }

    /// `failure` with a reason.
    pub fn failure(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Failure,
            lines: vec![reason.into()],
        }
    }

    /// The `checkauth` answer: cookie name, cookie value, `sessid=`.
    pub fn checkauth(cookie_name: &str, cookie_value: &str, sessid: &str) -> Self {
        Self::success(vec![
            cookie_name.to_owned(),
            cookie_value.to_owned(),
            format!("sessid={sessid}"),
        ])
    }

    /// The `init` answer; the `sessid=`/`version=2.09` lines only when 1C sent `version`.
    pub fn init(zip: bool, file_limit: u64, sessid_if_versioned: Option<&str>) -> String {
        let mut s = format!(
            "zip={}\nfile_limit={file_limit}\n",
            if zip { "yes" } else { "no" }
        );
        if let Some(sessid) = sessid_if_versioned {
            // Bitrix always answers 2.09 here, whatever 1C asked for, without a final LF.
            let _ = write!(s, "sessid={sessid}\nversion=2.09");
        }
        s
    }

    /// The body: every line terminated by `\n`. Line breaks inside a line become spaces so
    /// one message stays one line.
    pub fn body(&self) -> String {
        let mut s = String::from(match self.status {
            Status::Success => "success",
            Status::Progress => "progress",
            Status::Failure => "failure",
        });
        s.push('\n');
        for line in &self.lines {
            s.push_str(&line.replace(['\r', '\n'], " "));
            s.push('\n');
        }
        s
    }
}

/// Why an upload file name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe file name {0:?}")]
pub struct UnsafeFilename(pub String);

/// Sanitises an upload `filename`: `\` becomes `/`, a leading `/tmp/` or `upload/1c/webdata`
/// is stripped, slashes are trimmed; empty names, `..`, absolute or drive paths, control
/// characters and names longer than 255 bytes are refused. The result is a relative path with
/// `/` separators that cannot leave the upload area.
pub fn sanitize_filename(raw: &str) -> Result<String, UnsafeFilename> {
    let refuse = || UnsafeFilename(raw.to_owned());
    let mut name = raw.trim().replace('\\', "/");
    for prefix in ["/tmp/", "upload/1c/webdata/", "/upload/1c/webdata/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_owned();
        }
    }
    let name = name.trim_matches('/');
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(refuse());
    }
    if name.contains(':') {
        return Err(refuse());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(refuse()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(refuse());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_have_one_line_per_message_and_final_lf() {
        assert_eq!(Reply::failure("bad\nthing").body(), "failure\nbad thing\n");
        assert_eq!(
            Reply::checkauth("obmen_session", "abc", "0123").body(),
            "success\nobmen_session\nabc\nsessid=0123\n"
        );
        assert_eq!(Reply::success(vec![]).body(), "success\n");
        assert_eq!(
            Reply::init(true, 204800, None),
            "zip=yes\nfile_limit=204800\n"
        );
        assert_eq!(
            Reply::init(false, 10, Some("t")),
            "zip=no\nfile_limit=10\nsessid=t\nversion=2.09"
        );
    }

    #[test]
    fn filenames_cannot_escape() {
        assert_eq!(sanitize_filename("orders.xml").unwrap(), "orders.xml");
        assert_eq!(sanitize_filename("/tmp/a\\b.xml").unwrap(), "a/b.xml");
        assert_eq!(
            sanitize_filename("import_files/ab/abcd.jpg").unwrap(),
            "import_files/ab/abcd.jpg"
        );
        for bad in ["", "../x", "a/../../x", "C:\\x", "a\0b", "/", "./.."] {
            assert!(sanitize_filename(bad).is_err(), "{bad:?}");
        }
        assert_eq!(sanitize_filename("/etc/passwd").unwrap(), "etc/passwd");
    }

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("CheckAuth"), Some(Mode::CheckAuth));
        assert_eq!(Mode::parse("deactivate"), None);
    }
}
