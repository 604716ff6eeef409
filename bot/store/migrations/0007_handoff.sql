-- Human handoff: who owns each conversation (indexed, so the queue is rebuilt exactly
-- after a restart), private notes, agents, teams, sessions and offline requests.
-- Timestamps are Unix milliseconds (UTC).

-- Ownership, mirrored from the engine state in the same transaction as each step.
ALTER TABLE conversations ADD COLUMN owner_kind TEXT NOT NULL DEFAULT 'bot'
    CHECK (owner_kind IN ('bot', 'queued', 'agent', 'closed'));
ALTER TABLE conversations ADD COLUMN owner_agent TEXT;      -- agent id while 'agent'
ALTER TABLE conversations ADD COLUMN owner_team TEXT;       -- queue or agent's team
ALTER TABLE conversations ADD COLUMN handoff_reason TEXT;
ALTER TABLE conversations ADD COLUMN queued_at INTEGER;     -- order in the queue
ALTER TABLE conversations ADD COLUMN assigned_at INTEGER;   -- when the holder took it
ALTER TABLE conversations ADD COLUMN closed_at INTEGER;     -- when an agent closed it
CREATE INDEX conversations_queue ON conversations (owner_kind, owner_team, queued_at)
    WHERE owner_kind IN ('queued', 'agent');
CREATE INDEX conversations_agent ON conversations (owner_agent) WHERE owner_agent IS NOT NULL;

-- Private notes: stored with their audience, never replayed to a visitor.
ALTER TABLE messages ADD COLUMN private INTEGER NOT NULL DEFAULT 0;

CREATE TABLE agents (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    capacity      INTEGER NOT NULL DEFAULT 3 CHECK (capacity BETWEEN 1 AND 100),
    roles         TEXT NOT NULL DEFAULT 'agent', -- comma-separated: agent, manager, editor
    avatar_url    TEXT,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    skills     TEXT NOT NULL DEFAULT '[]',       -- JSON array of strings
    languages  TEXT NOT NULL DEFAULT '[]',       -- JSON array of language tags
    hours_json TEXT                              -- business hours; NULL = always open
);

CREATE TABLE team_members (
    team_id  TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX team_members_agent ON team_members (agent_id);

CREATE TABLE agent_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,        -- SHA-256 of the session token (hex)
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id);

-- Requests to be contacted later, filed when nobody could take a chat.
CREATE TABLE offline_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    team            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'phone')),
    contact         TEXT NOT NULL,
    details         TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    handled_by      TEXT,
    handled_at      INTEGER
);
CREATE INDEX offline_requests_open ON offline_requests (team, at) WHERE handled_at IS NULL;
CREATE INDEX offline_requests_conversation ON offline_requests (conversation_id);
