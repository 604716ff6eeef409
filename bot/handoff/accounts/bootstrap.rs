//! Accounts at start-up: agents and teams from the config file, and a demo agent when
//! there is nobody at all, so a fresh install can try the handoff at once.

use serde::Deserialize;

use super::{AccountError, Accounts, AgentDraft, AgentRole, TeamDraft, password, rows, validate, validate_team};
use crate::handoff::hours::BusinessHours;

/// The demo agent's login.
pub const DEMO_EMAIL: &str = "demo@supportbot.local";
/// The team the demo agent joins (created if missing).
pub const DEMO_TEAM: &str = "support";

/// A `[[teams]]` entry of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Team id (`[a-z0-9_-]{1,40}`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Language tags.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Business hours (`time_zone`, `days`, `holidays`); absent = always open.
    #[serde(default)]
    pub hours: Option<BusinessHours>,
}

impl TeamConfig {
    fn draft(&self) -> TeamDraft {
        TeamDraft {
            id: Some(self.id.clone()),
            name: self.name.clone(),
            skills: self.skills.clone(),
            languages: self.languages.clone(),
            hours: self.hours.clone(),
        }
    }
}

/// An `[[agents]]` entry of the config file: a password *hash* (argon2id PHC string, from
/// `supportbot agents hash-password`), never a plain password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Login e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Concurrent chats (default 3).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Team ids (configured teams or ones already in the database).
    #[serde(default)]
    pub teams: Vec<String>,
    /// Roles (default `["agent"]`).
    #[serde(default)]
    pub roles: Vec<AgentRole>,
    /// Avatar URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password_hash", &"***")
            .field("teams", &self.teams)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    fn draft(&self) -> AgentDraft {
        AgentDraft {
            email: self.email.clone(),
            name: self.name.clone(),
            password: None,
            capacity: self.capacity,
            roles: self.roles.clone(),
            teams: self.teams.clone(),
            avatar_url: self.avatar_url.clone(),
            disabled: false,
        }
    }
}

/// Checks configured teams and agents without a database: shapes, hashes, duplicates.
/// The config loader calls it so a bad file fails at start with the entry named.
///
/// # Errors
/// `(key, reason)` for the first problem.
pub fn check_config(agents: &[AgentConfig], teams: &[TeamConfig]) -> Result<(), (&'static str, String)> {
    let mut ids = Vec::new();
    for team in teams {
        validate_team(&team.id, &team.draft()).map_err(|e| ("teams", format!("team {:?}: {e}", team.id)))?;
        if ids.contains(&team.id) {
            return Err(("teams", format!("team {:?} is configured twice", team.id)));
        }
        ids.push(team.id.clone());
    }
    let mut emails = Vec::new();
    for agent in agents {
        let valid =
            super::validate_agent(&agent.draft()).map_err(|e| ("agents", format!("agent {:?}: {e}", agent.email)))?;
        password::check_phc(&agent.password_hash)
            .map_err(|e| ("agents.password_hash", format!("agent {:?}: {e}", agent.email)))?;
        if emails.contains(&valid.email) {
            return Err(("agents", format!("agent {:?} is configured twice", valid.email)));
        }
        emails.push(valid.email);
    }
    Ok(())
}

/// What [`Accounts::sync_config`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Teams written.
    pub teams: usize,
    /// Agents created.
    pub agents_created: usize,
    /// Agents updated.
    pub agents_updated: usize,
}

/// The demo agent made by [`Accounts::ensure_demo_agent`], with the only copy of its password.
#[derive(Clone)]
pub struct DemoAgent {
    /// [`DEMO_EMAIL`].
    pub email: String,
    /// Random, generated at creation; log it once.
    pub password: String,
}

impl std::fmt::Debug for DemoAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAgent").field("email", &self.email).field("password", &"***").finish()
    }
}

impl Accounts {
    /// Upserts the configured teams (by id) and agents (by e-mail), in one transaction:
    /// the file wins for every field it names; agents created elsewhere are left alone,
    /// and an agent removed from the file stays in the database. An agent whose
    /// configured hash changed loses their sessions.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming the entry, database errors.
    pub async fn sync_config(&self, agents: &[AgentConfig], teams: &[TeamConfig]) -> Result<SyncReport, AccountError> {
        let mut report = SyncReport::default();
        if agents.is_empty() && teams.is_empty() {
            return Ok(report);
        }
        let now = self.inner.clock.now();
        let mut tx = crate::store::begin_write(self.pool()).await?;
        for team in teams {
            let team = validate_team(&team.id, &team.draft())?;
            rows::upsert_team(&mut tx, &team).await?;
            report.teams += 1;
        }
        for entry in agents {
            let valid = super::validate_agent(&entry.draft())?;
            password::check_phc(&entry.password_hash).map_err(|e| validate::invalid("password_hash", e))?;
            let id = match rows::agent_id_by_email(&mut tx, &valid.email).await? {
                Some(id) => {
                    let old: String = sqlx::query_scalar("SELECT password_hash FROM agents WHERE id = ?")
                        .bind(id.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(
                        "UPDATE agents SET display_name = ?, password_hash = ?, capacity = ?, roles = ?, avatar_url = ? \
                         WHERE id = ?",
                    )
                    .bind(&valid.name)
                    .bind(&entry.password_hash)
                    .bind(i64::from(valid.capacity))
                    .bind(rows::roles_column(&valid.roles))
                    .bind(&valid.avatar_url)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                    if old != entry.password_hash {
                        rows::revoke_sessions(&mut tx, &id, now).await?;
                    }
                    report.agents_updated += 1;
                    id
                }
                None => {
                    let id = super::AgentId::new_random();
                    sqlx::query(
                        "INSERT INTO agents (id, email, display_name, password_hash, capacity, roles, avatar_url, created_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(id.to_string())
                    .bind(&valid.email)
                    .bind(&valid.name)
                    .bind(&entry.password_hash)
                    .bind(i64::from(valid.capacity))
                    .bind(rows::roles_column(&valid.roles))
                    .bind(&valid.avatar_url)
                    .bind(rows::millis(now))
                    .execute(&mut *tx)
                    .await?;
                    report.agents_created += 1;
                    id
                }
            };
            rows::set_teams(&mut tx, &id, &valid.teams).await.map_err(|e| match e {
                AccountError::Invalid { message, .. } => {
                    validate::invalid("agents.teams", format!("agent {}: {message}", valid.email))
                }
                other => other,
            })?;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// When there are no agents at all, creates the demo agent ([`DEMO_EMAIL`], "Demo
    /// Agent", team [`DEMO_TEAM`], roles agent, manager and editor) with a random password and returns it, so start-up can
    /// print it once. Call it after [`Accounts::sync_config`]: configured agents count.
    ///
    /// # Errors
    /// Hashing and database errors.
    pub async fn ensure_demo_agent(&self) -> Result<Option<DemoAgent>, AccountError> {
        let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents").fetch_one(self.pool()).await?;
        if agents > 0 {
            return Ok(None);
        }
        sqlx::query("INSERT OR IGNORE INTO teams (id, name) VALUES (?, 'Support')")
            .bind(DEMO_TEAM)
            .execute(self.pool())
            .await?;
        let password = password::generate();
        let draft = AgentDraft {
            email: DEMO_EMAIL.to_owned(),
            name: "Demo Agent".to_owned(),
            password: Some(password.clone()),
            teams: vec![DEMO_TEAM.to_owned()],
            // One account to try everything on a fresh start: chats (/agent), the
            // dashboard and the knowledge base (/admin).
            roles: vec![AgentRole::Agent, AgentRole::Manager, AgentRole::Editor],
            ..AgentDraft::default()
        };
        match self.create_agent(draft).await {
            Ok(_) => Ok(Some(DemoAgent { email: DEMO_EMAIL.to_owned(), password })),
            // Another process made it between the count and the insert.
            Err(AccountError::EmailTaken(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
