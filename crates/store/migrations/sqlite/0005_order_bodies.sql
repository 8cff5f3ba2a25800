-- The store's order body (JSON, about a kilobyte) in a table of its own. SQLite rewrites a whole
-- row on every update: with the body inline, each status from 1C and each delivery confirmation
-- rewrote the body too. Now those updates touch only the narrow `orders` row.
CREATE TABLE order_bodies (
    order_id INTEGER PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    body     TEXT    NOT NULL
);

INSERT INTO order_bodies (order_id, body) SELECT id, body FROM orders;

ALTER TABLE orders DROP COLUMN body;
