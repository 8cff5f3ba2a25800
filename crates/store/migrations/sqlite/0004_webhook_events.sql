-- Webhook events: one row per status change applied from 1C, written in the same transaction
-- as the change, deleted never; a worker posts them to the store until it acknowledges.
-- Times are RFC 3339 UTC text with a fixed width (sortable).
CREATE TABLE webhook_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- The body of the POST: the store's number, the new status, 1C's name of it, when.
    number           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    status_1c        TEXT,
    at               TEXT    NOT NULL,
    -- Attempts started (counted at claim, so a crash mid-post counts).
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT    NOT NULL,
    -- Claimed by a worker until then; an expired lease may be claimed again.
    leased_until     TEXT,
    last_error       TEXT,
    last_attempt_at  TEXT,
    -- Set when the store acknowledged it; NULL while pending.
    delivered_at     TEXT
);

-- The claim scan: pending events by due time.
CREATE INDEX webhook_events_pending_idx ON webhook_events (next_attempt_at, id)
    WHERE delivered_at IS NULL;
CREATE INDEX webhook_events_order_idx ON webhook_events (order_id);
