//! Teams and memberships: what a chat is routed by (skills, languages, hours).

use super::{AccountError, Accounts, Agent, AgentId, Team, TeamDraft, TeamId, rows, validate};

/// Checks a team's fields; `id` comes from the path or the body.
///
/// # Errors
/// [`AccountError::Invalid`] naming the field (`hours` with the reason the schedule is unusable).
pub fn validate_team(id: &str, draft: &TeamDraft) -> Result<Team, AccountError> {
    if let Some(hours) = &draft.hours {
        hours.schedule().map_err(|e| validate::invalid("hours", e.to_string()))?;
    }
    Ok(Team {
        id: TeamId::parse(id)?,
        name: validate::name("name", &draft.name)?,
        skills: validate::skills(&draft.skills)?,
        languages: validate::languages(&draft.languages)?,
        hours: draft.hours.clone(),
    })
}

impl Accounts {
    /// Every team, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_teams(&self) -> Result<Vec<Team>, AccountError> {
        rows::teams(self.pool()).await
    }

    /// One team.
    ///
    /// # Errors
    /// [`AccountError::TeamNotFound`], database errors.
    pub async fn team(&self, id: &TeamId) -> Result<Team, AccountError> {
        let mut conn = self.pool().acquire().await?;
        rows::team(&mut conn, id).await?.ok_or_else(|| AccountError::TeamNotFound(id.to_string()))
    }

    /// The agents of a team.
    ///
    /// # Errors
    /// Database errors.
    pub async fn members(&self, team: &TeamId) -> Result<Vec<Agent>, AccountError> {
        Ok(self.list_agents().await?.into_iter().filter(|a| a.teams.contains(team)).collect())
    }

    /// Creates a team; the draft carries its id.
    ///
    /// # Errors
    /// [`AccountError::Invalid`], [`AccountError::TeamExists`], database errors.
    pub async fn create_team(&self, draft: &TeamDraft) -> Result<Team, AccountError> {
        let id = draft.id.as_deref().ok_or_else(|| validate::invalid("id", "is required for a new team"))?;
        let team = validate_team(id, draft)?;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        if rows::team(&mut tx, &team.id).await?.is_some() {
            return Err(AccountError::TeamExists(team.id.to_string()));
        }
        rows::upsert_team(&mut tx, &team).await?;
        tx.commit().await?;
        Ok(team)
    }

    /// Replaces a team's fields (members stay).
    ///
    /// # Errors
    /// [`AccountError::Invalid`] (also for a body `id` that differs from `id`),
    /// [`AccountError::TeamNotFound`], database errors.
    pub async fn update_team(&self, id: &TeamId, draft: &TeamDraft) -> Result<Team, AccountError> {
        if draft.id.as_deref().is_some_and(|body| body.trim() != id.as_str()) {
            return Err(validate::invalid("id", "differs from the team in the path (ids cannot be changed)"));
        }
        let team = validate_team(id.as_str(), draft)?;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        if rows::team(&mut tx, id).await?.is_none() {
            return Err(AccountError::TeamNotFound(id.to_string()));
        }
        rows::upsert_team(&mut tx, &team).await?;
        tx.commit().await?;
        Ok(team)
    }

    /// Deletes a team and its memberships; a team with chats queued or held is refused.
    ///
    /// # Errors
    /// [`AccountError::TeamNotFound`], [`AccountError::InUse`], database errors.
    pub async fn delete_team(&self, id: &TeamId) -> Result<(), AccountError> {
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM conversations WHERE owner_kind IN ('queued', 'agent') AND owner_team = ?",
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if open > 0 {
            return Err(AccountError::InUse(format!("team {id} has {open} chat(s) queued or held")));
        }
        let done = sqlx::query("DELETE FROM teams WHERE id = ?").bind(id.as_str()).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(AccountError::TeamNotFound(id.to_string()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds an agent to a team (no-op if already a member).
    ///
    /// # Errors
    /// [`AccountError::AgentNotFound`], [`AccountError::TeamNotFound`], database errors.
    pub async fn add_member(&self, team: &TeamId, agent: &AgentId) -> Result<(), AccountError> {
        let mut tx = crate::store::begin_write(self.pool()).await?;
        if rows::team(&mut tx, team).await?.is_none() {
            return Err(AccountError::TeamNotFound(team.to_string()));
        }
        if rows::agent(&mut tx, agent).await?.is_none() {
            return Err(AccountError::AgentNotFound(agent.to_string()));
        }
        sqlx::query("INSERT OR IGNORE INTO team_members (team_id, agent_id) VALUES (?, ?)")
            .bind(team.as_str())
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an agent from a team; true if they were a member.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_member(&self, team: &TeamId, agent: &AgentId) -> Result<bool, AccountError> {
        let done = sqlx::query("DELETE FROM team_members WHERE team_id = ? AND agent_id = ?")
            .bind(team.as_str())
            .bind(agent.to_string())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
