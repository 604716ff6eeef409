//! Agents and teams, their passwords and login sessions: who may take a handed-off chat.
//!
//! [`Accounts`] is the one service over the `agents`, `teams`, `team_members` and
//! `agent_sessions` tables (migration 0007). Every way in — the admin API, the config
//! file, the CLI — goes through it, so the same validation applies everywhere. Passwords
//! are argon2id PHC strings, hashed and verified on the blocking pool; a session token is
//! 256 random bits of which only the SHA-256 is stored; time comes from the injected
//! clock, so expiry and the login rate limit are tested by moving a `ManualClock`.

mod bootstrap;
pub mod password;
mod rows;
mod sessions;
mod teams;
mod throttle;
pub mod validate;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::clock::SharedClock;
use crate::handoff::hours::BusinessHours;
pub use bootstrap::{AgentConfig, DEMO_EMAIL, DEMO_TEAM, DemoAgent, SyncReport, TeamConfig, check_config};
pub use sessions::Session;
pub use teams::validate_team;
pub use throttle::LoginLimits;

/// Identifies an agent (a UUID, assigned when the agent is created; the e-mail can change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub uuid::Uuid);

impl AgentId {
    /// A fresh id.
    #[must_use]
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Parses an id from a path or a column; `None` if it is not a UUID.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw.trim()).ok().map(Self)
    }
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifies a team: `[a-z0-9_-]{1,40}`, chosen by whoever creates it (`billing`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TeamId(String);

impl TeamId {
    /// Checks the shape of a team id.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] on `id`.
    pub fn parse(raw: &str) -> Result<Self, AccountError> {
        validate::slug("id", raw.trim()).map(Self)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TeamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an agent account may do besides answering chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    /// Takes chats.
    Agent,
    /// Supervises teams and queues (for the console; the admin API uses manager tokens).
    Manager,
    /// Edits the knowledge base from the console.
    Editor,
}

impl AgentRole {
    /// Name in configuration, the API and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Manager => "manager",
            Self::Editor => "editor",
        }
    }
}

impl std::str::FromStr for AgentRole {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "agent" => Ok(Self::Agent),
            "manager" => Ok(Self::Manager),
            "editor" => Ok(Self::Editor),
            other => Err(validate::invalid("roles", format!("{other:?} is not agent, manager or editor"))),
        }
    }
}

/// An agent as the API and the rest of the server see them (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// Stable id.
    pub id: AgentId,
    /// Login e-mail, lowercase.
    pub email: String,
    /// Display name shown to visitors ("Maria").
    pub name: String,
    /// Concurrent chats they can hold.
    pub capacity: u32,
    /// What they may do.
    pub roles: Vec<AgentRole>,
    /// Teams they belong to, sorted.
    pub teams: Vec<TeamId>,
    /// Picture shown next to their messages.
    pub avatar_url: Option<String>,
    /// A disabled agent cannot log in and their sessions stop working.
    pub disabled: bool,
}

/// A team: whose queue a chat goes to, by skills and languages, open in its hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    /// Stable id (`billing`).
    pub id: TeamId,
    /// Name shown to agents and visitors ("Billing").
    pub name: String,
    /// Topics it handles (`orders`, `billing`).
    pub skills: Vec<String>,
    /// Conversation languages it answers in (`en`, `pl`, `zh-Hans`).
    pub languages: Vec<String>,
    /// When it is open; `None` = always.
    pub hours: Option<BusinessHours>,
}

/// An agent as given to create or replace one (API body, CLI, config). `PUT` replaces
/// every field; the password is required to create and kept when absent on a replace.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDraft {
    /// Login e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Plain password (at least 10 characters); hashed at once, never stored or returned.
    #[serde(default)]
    pub password: Option<String>,
    /// Concurrent chats (default 3).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Roles (default `["agent"]`).
    #[serde(default)]
    pub roles: Vec<AgentRole>,
    /// Team ids; each must exist.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Avatar URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Disabled account.
    #[serde(default)]
    pub disabled: bool,
}

impl std::fmt::Debug for AgentDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentDraft")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("capacity", &self.capacity)
            .field("roles", &self.roles)
            .field("teams", &self.teams)
            .finish_non_exhaustive()
    }
}

/// A team as given to create (with `id`) or replace (`id` optional, must match) one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamDraft {
    /// Team id (`[a-z0-9_-]{1,40}`).
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Language tags.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Business hours; absent = always open.
    #[serde(default)]
    pub hours: Option<BusinessHours>,
}

/// Settings of logins and sessions (`[agent_sessions]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountSettings {
    /// How long a session lasts from login.
    pub session_hours: u32,
    /// Failed-login limits.
    pub login: LoginLimits,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self { session_hours: 12, login: LoginLimits::default() }
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field has the wrong shape.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as named in the request (`email`, `teams[1]`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Wrong e-mail or password (deliberately the same error for both).
    #[error("wrong e-mail or password")]
    BadCredentials,
    /// Too many failed logins for this account or from this address.
    #[error("too many failed logins; try again in {} s", retry_after.as_secs())]
    RateLimited {
        /// When the next attempt may be made.
        retry_after: std::time::Duration,
    },
    /// The account is disabled (said only to someone who knew the password).
    #[error("this agent account is disabled")]
    Disabled,
    /// The session token is not one we issued.
    #[error("unknown session")]
    UnknownSession,
    /// The session is past its expiry.
    #[error("the session has expired; log in again")]
    ExpiredSession,
    /// The session was ended by logout (or a password change).
    #[error("the session was ended; log in again")]
    RevokedSession,
    /// No such agent.
    #[error("no agent {0}")]
    AgentNotFound(String),
    /// No such team.
    #[error("no team {0:?}")]
    TeamNotFound(String),
    /// Another agent has this e-mail.
    #[error("an agent with e-mail {0} already exists")]
    EmailTaken(String),
    /// The team id is taken.
    #[error("team {0:?} already exists")]
    TeamExists(String),
    /// A deletion that would strand chats.
    #[error("{0}")]
    InUse(String),
    /// argon2 failed, or its blocking task did.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A stored row we cannot read.
    #[error("corrupt account data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("account database: {0}")]
    Store(#[from] sqlx::Error),
}

/// An agent draft that passed validation.
struct ValidAgent {
    email: String,
    name: String,
    capacity: u32,
    roles: Vec<AgentRole>,
    teams: Vec<TeamId>,
    avatar_url: Option<String>,
    disabled: bool,
}

fn validate_agent(draft: &AgentDraft) -> Result<ValidAgent, AccountError> {
    let mut roles = Vec::new();
    for role in &draft.roles {
        if !roles.contains(role) {
            roles.push(*role);
        }
    }
    if roles.is_empty() {
        roles.push(AgentRole::Agent);
    }
    let mut teams: Vec<TeamId> = Vec::with_capacity(draft.teams.len());
    for (i, team) in draft.teams.iter().enumerate() {
        let team = validate::slug(&format!("teams[{i}]"), team.trim()).map(TeamId)?;
        if !teams.contains(&team) {
            teams.push(team);
        }
    }
    if let Some(password) = &draft.password {
        validate::password(password)?;
    }
    Ok(ValidAgent {
        email: validate::email(&draft.email)?,
        name: validate::name("name", &draft.name)?,
        capacity: validate::capacity(draft.capacity.unwrap_or(3))?,
        roles,
        teams,
        avatar_url: validate::avatar_url(draft.avatar_url.as_deref())?,
        disabled: draft.disabled,
    })
}

/// The accounts service: cheap to clone (one `Arc`), shared by the API, the agent socket
/// and start-up.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    clock: SharedClock,
    settings: AccountSettings,
    throttle: throttle::Throttle,
}

impl Accounts {
    /// The service over the conversation database (`SqliteStore::pool()`).
    #[must_use]
    pub fn new(pool: SqlitePool, clock: SharedClock, settings: AccountSettings) -> Self {
        let throttle = throttle::Throttle::new(settings.login);
        Self { inner: Arc::new(Inner { pool, clock, settings, throttle }) }
    }

    /// The settings it runs with.
    #[must_use]
    pub fn settings(&self) -> &AccountSettings {
        &self.inner.settings
    }

    fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Hashes a password on the blocking pool.
    async fn hash(&self, password: String) -> Result<String, AccountError> {
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| AccountError::Hashing(e.to_string()))?
    }

    /// Every agent, by e-mail.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_agents(&self) -> Result<Vec<Agent>, AccountError> {
        rows::agents(self.pool()).await
    }

    /// One agent.
    ///
    /// # Errors
    /// [`AccountError::AgentNotFound`], database errors.
    pub async fn agent(&self, id: &AgentId) -> Result<Agent, AccountError> {
        let mut conn = self.pool().acquire().await?;
        rows::agent(&mut conn, id).await?.ok_or_else(|| AccountError::AgentNotFound(id.to_string()))
    }

    /// The agent with this e-mail (any case).
    ///
    /// # Errors
    /// [`AccountError::AgentNotFound`], database errors.
    pub async fn agent_by_email(&self, email: &str) -> Result<Agent, AccountError> {
        let email = email.trim().to_lowercase();
        let mut conn = self.pool().acquire().await?;
        let id = rows::agent_id_by_email(&mut conn, &email).await?.ok_or(AccountError::AgentNotFound(email))?;
        rows::agent(&mut conn, &id).await?.ok_or_else(|| AccountError::AgentNotFound(id.to_string()))
    }

    /// Creates an agent; the draft must carry a password.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] (a team that does not exist is `teams[i]`),
    /// [`AccountError::EmailTaken`], hashing and database errors.
    pub async fn create_agent(&self, draft: AgentDraft) -> Result<Agent, AccountError> {
        let valid = validate_agent(&draft)?;
        let plain = draft.password.ok_or_else(|| validate::invalid("password", "is required for a new agent"))?;
        let hash = self.hash(plain).await?;
        self.insert_agent(&valid, &hash).await
    }

    async fn insert_agent(&self, valid: &ValidAgent, hash: &str) -> Result<Agent, AccountError> {
        let id = AgentId::new_random();
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let inserted = sqlx::query(
            "INSERT INTO agents (id, email, display_name, password_hash, capacity, roles, avatar_url, created_at, disabled) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&valid.email)
        .bind(&valid.name)
        .bind(hash)
        .bind(i64::from(valid.capacity))
        .bind(rows::roles_column(&valid.roles))
        .bind(&valid.avatar_url)
        .bind(rows::millis(self.inner.clock.now()))
        .bind(i64::from(valid.disabled))
        .execute(&mut *tx)
        .await
        .map_err(AccountError::from);
        match inserted {
            Err(e) if rows::is_unique_violation(&e) => return Err(AccountError::EmailTaken(valid.email.clone())),
            other => other?,
        };
        rows::set_teams(&mut tx, &id, &valid.teams).await?;
        let agent = rows::agent(&mut tx, &id).await?.ok_or_else(|| AccountError::AgentNotFound(id.to_string()))?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Replaces an agent's fields (and teams); a password in the draft replaces the old
    /// one. A new password or disabling the account ends the agent's sessions.
    ///
    /// # Errors
    /// As [`Accounts::create_agent`], and [`AccountError::AgentNotFound`].
    pub async fn update_agent(&self, id: &AgentId, draft: AgentDraft) -> Result<Agent, AccountError> {
        let valid = validate_agent(&draft)?;
        let hash = match draft.password {
            Some(plain) => Some(self.hash(plain).await?),
            None => None,
        };
        let now = self.inner.clock.now();
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let updated = sqlx::query(
            "UPDATE agents SET email = ?, display_name = ?, capacity = ?, roles = ?, avatar_url = ?, disabled = ?, \
             password_hash = COALESCE(?, password_hash) WHERE id = ?",
        )
        .bind(&valid.email)
        .bind(&valid.name)
        .bind(i64::from(valid.capacity))
        .bind(rows::roles_column(&valid.roles))
        .bind(&valid.avatar_url)
        .bind(i64::from(valid.disabled))
        .bind(&hash)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(AccountError::from);
        let updated = match updated {
            Err(e) if rows::is_unique_violation(&e) => return Err(AccountError::EmailTaken(valid.email)),
            other => other?,
        };
        if updated.rows_affected() == 0 {
            return Err(AccountError::AgentNotFound(id.to_string()));
        }
        rows::set_teams(&mut tx, id, &valid.teams).await?;
        if hash.is_some() || valid.disabled {
            rows::revoke_sessions(&mut tx, id, now).await?;
        }
        let agent = rows::agent(&mut tx, id).await?.ok_or_else(|| AccountError::AgentNotFound(id.to_string()))?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Sets a new password and ends the agent's sessions.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] for a short password, [`AccountError::AgentNotFound`].
    pub async fn set_password(&self, id: &AgentId, password: &str) -> Result<(), AccountError> {
        validate::password(password)?;
        let hash = self.hash(password.to_owned()).await?;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let done = sqlx::query("UPDATE agents SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(AccountError::AgentNotFound(id.to_string()));
        }
        rows::revoke_sessions(&mut tx, id, self.inner.clock.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an agent with their sessions and memberships. An agent who holds chats is
    /// refused (disable them instead, and let the chats go back to the queue).
    ///
    /// # Errors
    /// [`AccountError::AgentNotFound`], [`AccountError::InUse`], database errors.
    pub async fn delete_agent(&self, id: &AgentId) -> Result<(), AccountError> {
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let holding: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE owner_kind = 'agent' AND owner_agent = ?")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        if holding > 0 {
            return Err(AccountError::InUse(format!(
                "agent {id} holds {holding} chat(s); disable the account instead"
            )));
        }
        let done = sqlx::query("DELETE FROM agents WHERE id = ?").bind(id.to_string()).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(AccountError::AgentNotFound(id.to_string()));
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
