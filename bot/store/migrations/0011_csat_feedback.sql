-- CSAT with its context: who resolved the chat, its language, topic and channel, and an
-- optional comment. Old rows keep NULLs (they were asked at the end of a flow: the bot).
ALTER TABLE csat ADD COLUMN comment TEXT;
ALTER TABLE csat ADD COLUMN resolved_by TEXT NOT NULL DEFAULT 'bot' CHECK (resolved_by IN ('bot', 'agent'));
ALTER TABLE csat ADD COLUMN agent TEXT;
ALTER TABLE csat ADD COLUMN team TEXT;
ALTER TABLE csat ADD COLUMN lang TEXT;
ALTER TABLE csat ADD COLUMN topic TEXT;          -- flow:<id>, faq:<id>, article:<slug>
ALTER TABLE csat ADD COLUMN channel TEXT NOT NULL DEFAULT 'widget';

-- "Did this help?" on knowledge-base answers: one vote per answer message.
CREATE TABLE answer_feedback (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,           -- the bot message voted on
    doc             TEXT NOT NULL,              -- faq:<id> or article:<slug>
    lang            TEXT NOT NULL,              -- the document's language
    helpful         INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    at              INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE INDEX answer_feedback_doc ON answer_feedback (doc, at);
