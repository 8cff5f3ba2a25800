-- obmen store schema (SQLite). Times are RFC 3339 UTC text with a fixed width (sortable).

CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    number              TEXT    NOT NULL UNIQUE,
    -- The OrderInput exactly as last submitted by the store (JSON).
    body                TEXT    NOT NULL,
    -- The store's status as last submitted (decides whether a new body changes the status).
    submitted_status    TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    status_1c           TEXT,
    paid                INTEGER NOT NULL DEFAULT 0,
    shipped             INTEGER NOT NULL DEFAULT 0,
    cancelled           INTEGER NOT NULL DEFAULT 0,
    deleted             INTEGER NOT NULL DEFAULT 0,
    number_1c           TEXT,
    date_1c             TEXT,
    id_1c               TEXT,
    payment_number_1c   TEXT,
    payment_date_1c     TEXT,
    shipment_number_1c  TEXT,
    shipment_date_1c    TEXT,
    -- Grows with every store-side change.
    version             INTEGER NOT NULL DEFAULT 1,
    -- The highest version confirmed delivered (0: never), kept in step with delivery_ledger.
    confirmed_version   INTEGER NOT NULL DEFAULT 0,
    last_change_source  TEXT    NOT NULL CHECK (last_change_source IN ('store', '1c')),
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
);

CREATE INDEX orders_status_idx ON orders (status, id);
CREATE INDEX orders_updated_at_idx ON orders (updated_at);
CREATE INDEX orders_number_1c_idx ON orders (number_1c) WHERE number_1c IS NOT NULL;
CREATE INDEX orders_id_1c_idx ON orders (id_1c) WHERE id_1c IS NOT NULL;
-- The orders due for export: changed by the store since their last confirmed delivery.
CREATE INDEX orders_due_idx ON orders (id)
    WHERE last_change_source = 'store' AND confirmed_version < version;

CREATE TABLE order_status_history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id  INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status    TEXT    NOT NULL,
    source    TEXT    NOT NULL CHECK (source IN ('store', '1c')),
    at        TEXT    NOT NULL
);

CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);

CREATE TABLE exchange_sessions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name     TEXT    NOT NULL,
    cookie        TEXT    NOT NULL UNIQUE,
    sessid        TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    last_seen_at  TEXT    NOT NULL,
    version       TEXT,
    zip           INTEGER NOT NULL DEFAULT 0,
    legacy        INTEGER NOT NULL DEFAULT 0,
    sessid_seen   INTEGER NOT NULL DEFAULT 0,
    attributes    TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX exchange_sessions_last_seen_idx ON exchange_sessions (last_seen_at);

-- Which version of an order went out in which session, confirmed when (at `success`).
CREATE TABLE delivery_ledger (
    session_id    INTEGER NOT NULL,
    order_id      INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    offered_at    TEXT    NOT NULL,
    confirmed_at  TEXT,
    PRIMARY KEY (session_id, order_id, version)
);

CREATE INDEX delivery_ledger_order_idx ON delivery_ledger (order_id, version);

-- Every exchange request.
CREATE TABLE exchange_journal (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id     INTEGER,
    exchange_type  TEXT,
    mode           TEXT    NOT NULL,
    filename       TEXT,
    bytes          INTEGER NOT NULL DEFAULT 0,
    documents      INTEGER NOT NULL DEFAULT 0,
    messages       TEXT    NOT NULL DEFAULT '[]',
    error          TEXT,
    duration_ms    INTEGER,
    at             TEXT    NOT NULL
);

CREATE INDEX exchange_journal_session_idx ON exchange_journal (session_id, id);

-- Uploaded files as appended chunks, so any instance can continue a file.
CREATE TABLE upload_chunks (
    session_id  INTEGER NOT NULL,
    filename    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    -- Byte offset of the chunk in the file.
    offset      INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (session_id, filename, seq)
);

CREATE INDEX upload_chunks_offset_idx ON upload_chunks (session_id, filename, offset);

CREATE TABLE import_progress (
    session_id  INTEGER NOT NULL,
    filename    TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    documents   INTEGER NOT NULL,
    done        INTEGER NOT NULL,
    messages    TEXT    NOT NULL DEFAULT '[]',
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (session_id, filename)
);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
