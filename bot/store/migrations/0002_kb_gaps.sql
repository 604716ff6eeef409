-- Questions the bot could not answer, for editors to see what to write next.
CREATE TABLE kb_gaps (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,               -- the visitor message
    at               INTEGER NOT NULL,               -- Unix milliseconds (UTC)
    lang             TEXT NOT NULL,                  -- conversation language when asked
    question         TEXT NOT NULL,
    near_miss_id     TEXT,                           -- best candidate below the threshold
    near_miss_lang   TEXT,
    near_miss_score  REAL,
    UNIQUE (conversation_id, seq)
);
CREATE INDEX kb_gaps_at ON kb_gaps (at);
