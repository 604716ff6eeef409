-- Webhook deliveries (see docs/webhooks.md). The dispatcher copies new events from
-- conversation_events into the outbox and moves its cursor in one transaction, so a
-- restart neither drops nor repeats an event; a delivery is marked done once the
-- receiver answered 2xx.
CREATE TABLE webhook_cursor (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    event_id  INTEGER NOT NULL
);
CREATE TABLE webhook_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    url           TEXT NOT NULL,
    event_id      INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    body          TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    delivered_at  INTEGER,
    failed_at     INTEGER,
    last_error    TEXT,
    UNIQUE (url, event_id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
