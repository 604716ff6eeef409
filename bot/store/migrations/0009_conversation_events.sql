-- The append-only conversation event log (see docs/metrics.md): written in the same
-- transaction as the step that caused it, so every metric can be recomputed for any range.
CREATE TABLE conversation_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    at               INTEGER NOT NULL,
    agent            TEXT,
    team             TEXT,
    detail           TEXT,
    value            INTEGER
);
CREATE INDEX conversation_events_conversation ON conversation_events (conversation_id, id);
CREATE INDEX conversation_events_at ON conversation_events (at);
-- Conversations are reported in the period they were opened.
CREATE INDEX IF NOT EXISTS conversations_created_at ON conversations (created_at);
