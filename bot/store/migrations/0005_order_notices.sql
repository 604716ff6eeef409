-- Which conversations belong to which orders (the visitor proved ownership while
-- tracking it), and which order events have been delivered into which conversation.
CREATE TABLE order_links (
    order_id         TEXT NOT NULL COLLATE NOCASE,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    at               INTEGER NOT NULL,
    PRIMARY KEY (order_id, conversation_id)
);

-- A notice is claimed before it is delivered and marked after; a restart re-delivers
-- only claims that were never marked, so each event reaches each conversation once.
CREATE TABLE order_notices (
    event_id         TEXT NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    claimed_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    PRIMARY KEY (event_id, conversation_id)
);
