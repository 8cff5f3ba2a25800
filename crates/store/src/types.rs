//! Records the store reads and writes besides the domain types of `exchange::domain`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use exchange::domain::Order;
use serde::{Deserialize, Serialize};

/// What [`crate::Store::upsert_order`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum UpsertOutcome {
    /// A new order.
    Created(Order),
    /// An existing order whose body changed (version bumped).
    Updated(Order),
    /// The same body as last submitted: nothing written.
    Unchanged(Order),
}

impl UpsertOutcome {
    /// The order as stored after the call.
    pub fn order(&self) -> &Order {
        match self {
            Self::Created(o) | Self::Updated(o) | Self::Unchanged(o) => o,
        }
    }

    /// The order as stored after the call.
    pub fn into_order(self) -> Order {
        match self {
            Self::Created(o) | Self::Updated(o) | Self::Unchanged(o) => o,
        }
    }

    /// Whether the order was created.
    pub fn is_created(&self) -> bool {
        matches!(self, Self::Created(_))
    }
}

/// Which orders [`crate::Store::list_orders`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this site status code.
    pub status: Option<String>,
    /// Only orders changed at or after this time.
    pub changed_since: Option<DateTime<Utc>>,
    /// Only ids greater than this (paging).
    pub after_id: Option<i64>,
    /// At most this many (no limit when `None`).
    pub limit: Option<u32>,
}

/// What `checkauth` knows when it starts a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The login that authenticated.
    pub user: String,
    /// The cookie value 1C will send back (store a hash of it if you prefer; the store keeps
    /// and looks up exactly this string).
    pub cookie: String,
    /// The `sessid` token given to 1C.
    pub sessid: String,
}

/// An exchange session of 1C, kept in the database so any instance can continue it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Internal id.
    pub id: i64,
    /// The login that authenticated.
    pub user: String,
    /// The cookie value (as given to [`crate::Store::create_session`]).
    pub cookie: String,
    /// The `sessid` token.
    pub sessid: String,
    /// When `checkauth` created it.
    pub created_at: DateTime<Utc>,
    /// When it was last used (set by the caller through [`crate::Store::update_session`]).
    pub last_seen_at: DateTime<Utc>,
    /// The schema version 1C sent at `init`, if any.
    pub version: Option<String>,
    /// Whether zip was negotiated.
    pub zip: bool,
    /// Whether 1C speaks the legacy protocol (files imported at once, no `import` step).
    pub legacy: bool,
    /// Whether 1C sent the `sessid` back.
    pub sessid_seen: bool,
    /// Free-form state the protocol code wants to keep with the session.
    pub attributes: BTreeMap<String, String>,
}

/// One exchange request, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The session, when the request belonged to one (a failed `checkauth` does not).
    pub session_id: Option<i64>,
    /// The `type` parameter (`sale`, …), if any.
    pub exchange_type: Option<String>,
    /// The `mode` parameter.
    pub mode: String,
    /// The `filename` parameter, if any.
    pub filename: Option<String>,
    /// Bytes received or sent.
    pub bytes: u64,
    /// Documents exported or imported.
    pub documents: u64,
    /// Messages (e.g. `Unknown status "X" for order 17`).
    pub messages: Vec<String>,
    /// The failure reason, when the request failed.
    pub error: Option<String>,
    /// How long the request took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// When the request was received.
    pub at: DateTime<Utc>,
}

/// A journaled request with its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// Internal id (grows with time).
    pub id: i64,
    /// The request.
    #[serde(flatten)]
    pub entry: JournalEntry,
}

/// A session with its requests, for `GET /api/v1/exchange/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReport {
    /// The session.
    pub session: Session,
    /// Its requests, oldest first.
    pub requests: Vec<JournalRecord>,
}

/// How far the import of an uploaded file got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    /// Where to continue: documents already applied (or a byte position; the caller decides).
    pub position: u64,
    /// Documents applied so far.
    pub documents: u64,
    /// Whether the file is fully applied.
    pub done: bool,
    /// Messages collected so far (sent to 1C after `success`).
    pub messages: Vec<String>,
}
