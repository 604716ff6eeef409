-- Orders pushed to us by the shop (embedded source) and order events (always ours).
-- Days are 'YYYY-MM-DD' text; timestamps are Unix milliseconds (UTC).
CREATE TABLE orders (
    id                 TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,   -- order number; visitors type it in any case
    status             TEXT NOT NULL,
    email              TEXT NOT NULL,
    postcode           TEXT NOT NULL,
    customer_name      TEXT,
    carrier            TEXT,
    tracking_number    TEXT,
    tracking_url       TEXT,
    placed_at          TEXT NOT NULL,
    expected_delivery  TEXT,
    delivered_at       TEXT,
    delay_reason       TEXT,
    items_json         TEXT NOT NULL DEFAULT '[]',
    updated_at         INTEGER NOT NULL
);

-- No foreign key to orders: with the shop's API as source the order is not in our table,
-- but its events still are.
CREATE TABLE order_events (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,   -- dispatch cursor: only grows
    event_id               TEXT NOT NULL UNIQUE,                -- sender's idempotency key
    order_id               TEXT NOT NULL COLLATE NOCASE,
    kind                   TEXT NOT NULL,                       -- the order's new status
    reason                 TEXT,
    new_expected_delivery  TEXT,
    note                   TEXT,
    at                     INTEGER NOT NULL,
    payload_json           TEXT NOT NULL,                       -- the event as sent
    processed_at           INTEGER                              -- set once by the dispatcher
);
CREATE INDEX order_events_order ON order_events (order_id, id);
CREATE INDEX order_events_pending ON order_events (id) WHERE processed_at IS NULL;
