//! The SQL behind [`super::Accounts`]: agents, teams, memberships and sessions in the
//! tables of migration 0007. Timestamps are Unix milliseconds; roles are a comma list,
//! skills and languages JSON arrays, business hours a JSON object.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqliteConnection, SqlitePool};

use super::{AccountError, Agent, AgentId, AgentRole, Team, TeamId};
use crate::handoff::hours::BusinessHours;

/// The columns [`agent_from_row`] reads, with the agent's teams as a comma list.
pub(super) const AGENT_COLUMNS: &str = "a.id, a.email, a.display_name, a.capacity, a.roles, a.avatar_url, \
     a.disabled, (SELECT group_concat(m.team_id, ',') FROM team_members m WHERE m.agent_id = a.id) AS teams";

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(super) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(super) fn agent_from_row(row: &SqliteRow) -> Result<Agent, AccountError> {
    let id: String = row.try_get("id")?;
    let id = AgentId::parse(&id).ok_or_else(|| AccountError::Corrupt(format!("agent id {id:?}")))?;
    let roles: String = row.try_get("roles")?;
    let roles = roles.split(',').filter_map(|r| r.trim().parse::<AgentRole>().ok()).collect();
    let teams: Option<String> = row.try_get("teams")?;
    let mut teams: Vec<TeamId> =
        teams.unwrap_or_default().split(',').filter(|t| !t.is_empty()).map(|t| TeamId(t.to_owned())).collect();
    teams.sort();
    let capacity: i64 = row.try_get("capacity")?;
    Ok(Agent {
        id,
        email: row.try_get("email")?,
        name: row.try_get("display_name")?,
        capacity: u32::try_from(capacity).unwrap_or(1),
        roles,
        teams,
        avatar_url: row.try_get("avatar_url")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

fn team_from_row(row: &SqliteRow) -> Result<Team, AccountError> {
    let id: String = row.try_get("id")?;
    let json_list = |column: &str| -> Result<Vec<String>, AccountError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| AccountError::Corrupt(format!("team {id}: {column}: {e}")))
    };
    let hours: Option<String> = row.try_get("hours_json")?;
    let hours = hours
        .map(|h| serde_json::from_str::<BusinessHours>(&h))
        .transpose()
        .map_err(|e| AccountError::Corrupt(format!("team {id}: hours: {e}")))?;
    Ok(Team {
        name: row.try_get("name")?,
        skills: json_list("skills")?,
        languages: json_list("languages")?,
        hours,
        id: TeamId(id),
    })
}

pub(super) fn roles_column(roles: &[AgentRole]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

pub(super) async fn agents(pool: &SqlitePool) -> Result<Vec<Agent>, AccountError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.email");
    sqlx::query(&sql).fetch_all(pool).await?.iter().map(agent_from_row).collect()
}

pub(super) async fn agent(conn: &mut SqliteConnection, id: &AgentId) -> Result<Option<Agent>, AccountError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.id = ?");
    sqlx::query(&sql).bind(id.to_string()).fetch_optional(conn).await?.as_ref().map(agent_from_row).transpose()
}

/// An agent with their password hash, for a login.
pub(super) async fn credentials(pool: &SqlitePool, email: &str) -> Result<Option<(Agent, String)>, AccountError> {
    let sql = format!("SELECT {AGENT_COLUMNS}, a.password_hash FROM agents a WHERE a.email = ?");
    match sqlx::query(&sql).bind(email).fetch_optional(pool).await? {
        Some(row) => Ok(Some((agent_from_row(&row)?, row.try_get("password_hash")?))),
        None => Ok(None),
    }
}

pub(super) async fn agent_id_by_email(
    conn: &mut SqliteConnection,
    email: &str,
) -> Result<Option<AgentId>, AccountError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM agents WHERE email = ?").bind(email).fetch_optional(conn).await?;
    Ok(id.and_then(|id| AgentId::parse(&id)))
}

/// Replaces an agent's memberships; every team must exist.
pub(super) async fn set_teams(
    conn: &mut SqliteConnection,
    agent: &AgentId,
    teams: &[TeamId],
) -> Result<(), AccountError> {
    for (i, team) in teams.iter().enumerate() {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM teams WHERE id = ?")
            .bind(team.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(super::validate::invalid(&format!("teams[{i}]"), format!("no team {:?}", team.as_str())));
        }
    }
    sqlx::query("DELETE FROM team_members WHERE agent_id = ?").bind(agent.to_string()).execute(&mut *conn).await?;
    for team in teams {
        sqlx::query("INSERT OR IGNORE INTO team_members (team_id, agent_id) VALUES (?, ?)")
            .bind(team.as_str())
            .bind(agent.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn teams(pool: &SqlitePool) -> Result<Vec<Team>, AccountError> {
    sqlx::query("SELECT id, name, skills, languages, hours_json FROM teams ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(team_from_row)
        .collect()
}

pub(super) async fn team(conn: &mut SqliteConnection, id: &TeamId) -> Result<Option<Team>, AccountError> {
    sqlx::query("SELECT id, name, skills, languages, hours_json FROM teams WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(team_from_row)
        .transpose()
}

/// Inserts or replaces a team's fields (memberships are kept).
pub(super) async fn upsert_team(conn: &mut SqliteConnection, team: &Team) -> Result<(), AccountError> {
    let hours =
        team.hours.as_ref().map(serde_json::to_string).transpose().map_err(|e| AccountError::Corrupt(e.to_string()))?;
    let list = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned());
    sqlx::query(
        "INSERT INTO teams (id, name, skills, languages, hours_json) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, skills = excluded.skills, \
         languages = excluded.languages, hours_json = excluded.hours_json",
    )
    .bind(team.id.as_str())
    .bind(&team.name)
    .bind(list(&team.skills))
    .bind(list(&team.languages))
    .bind(hours)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every live session of an agent (password changed, account disabled).
pub(super) async fn revoke_sessions(
    conn: &mut SqliteConnection,
    agent: &AgentId,
    now: DateTime<Utc>,
) -> Result<u64, AccountError> {
    let done = sqlx::query("UPDATE agent_sessions SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL")
        .bind(millis(now))
        .bind(agent.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// True for SQLite's unique-constraint error.
pub(super) fn is_unique_violation(error: &AccountError) -> bool {
    matches!(error, AccountError::Store(sqlx::Error::Database(e)) if e.is_unique_violation())
}
