-- Satisfaction ratings asked for at the end of a flow (1 = poor … 5 = great).
CREATE TABLE csat (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    score            INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    at               INTEGER NOT NULL
);
CREATE INDEX csat_at ON csat (at);
