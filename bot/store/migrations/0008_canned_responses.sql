-- Canned responses agents insert with `/shortcut`, one text per shortcut and language.
CREATE TABLE canned_responses (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    shortcut   TEXT NOT NULL,
    lang       TEXT NOT NULL,
    text       TEXT NOT NULL,
    updated_by TEXT,                  -- agent id of the last editor
    updated_at INTEGER NOT NULL,
    UNIQUE (shortcut, lang)
);
