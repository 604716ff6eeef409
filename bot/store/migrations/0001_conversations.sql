-- Conversations and their messages. Timestamps are Unix milliseconds (UTC).
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY NOT NULL,          -- UUID
    token_hash  TEXT NOT NULL UNIQUE,               -- SHA-256 of the visitor token (hex)
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    locale      TEXT,
    page_url    TEXT,
    lang        TEXT,
    state_json  TEXT,                               -- engine state, opaque to the store
    last_seq    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    sender          TEXT NOT NULL CHECK (sender IN ('visitor', 'bot', 'agent', 'system')),
    text            TEXT NOT NULL,
    at              INTEGER NOT NULL,
    client_id       TEXT,
    reply_to        INTEGER,
    extras_json     TEXT,                           -- source, quick replies, articles
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

-- A retried visitor message (same client_id) is stored once.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX conversations_updated ON conversations (updated_at);
