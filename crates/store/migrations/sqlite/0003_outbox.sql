-- The push outbox: one entry per order version to push to 1C's HTTP service, written in the
-- same transaction as the order. Times are RFC 3339 UTC text with a fixed width (sortable).
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- The store's number (never changes), kept here for the payload and the listing.
    order_number     TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    -- Order number + version: the same for every attempt of this version.
    idempotency_key  TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'dead', 'obsolete')),
    -- Attempts started (counted at claim, so a crash mid-push counts).
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT    NOT NULL,
    -- Claimed by a worker until then; an expired lease may be claimed again.
    leased_until     TEXT,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    last_attempt_at  TEXT,
    delivered_at     TEXT,
    UNIQUE (order_id, version)
);

-- The claim scan: pending entries by due time.
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_state_idx ON outbox (state, id);
