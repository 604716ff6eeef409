//! Canned responses: texts agents insert with `/shortcut`, per language, with placeholders
//! (`{visitor.name}`, `{order.id}` …) the console fills from the handoff packet. Stored on
//! the server so every agent and every tab shares them.

use serde::{Deserialize, Serialize};
use sqlx::{Row, SqlitePool};

use crate::clock::SharedClock;

/// Longest text kept.
pub const MAX_TEXT: usize = 2000;
/// Most responses kept (one list, loaded whole by the console).
pub const MAX_RESPONSES: i64 = 500;

/// One canned response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannedResponse {
    /// Row id.
    pub id: i64,
    /// What follows `/` (`delay`).
    pub shortcut: String,
    /// Language tag it is written in (`en`, `pl`, `zh-Hant`).
    pub lang: String,
    /// The text, placeholders included.
    pub text: String,
}

/// A response as given to create or replace one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedDraft {
    /// What follows `/`.
    pub shortcut: String,
    /// Language tag.
    pub lang: String,
    /// The text.
    pub text: String,
}

/// Why a canned response was refused.
#[derive(Debug, thiserror::Error)]
pub enum CannedError {
    /// A field has the wrong shape.
    #[error("{field}: {message}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// The shortcut exists in that language.
    #[error("a response with this shortcut and language exists")]
    Duplicate,
    /// No such response.
    #[error("no such canned response")]
    NotFound,
    /// The list is full.
    #[error("at most 500 canned responses")]
    Full,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The canned responses, over the server's database.
#[derive(Clone)]
pub struct CannedResponses {
    pool: SqlitePool,
    clock: SharedClock,
}

fn validate(draft: CannedDraft) -> Result<CannedDraft, CannedError> {
    let shortcut = draft.shortcut.trim().trim_start_matches('/').to_lowercase();
    let ok_shortcut = !shortcut.is_empty()
        && shortcut.len() <= 32
        && shortcut.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok_shortcut {
        return Err(CannedError::Invalid { field: "shortcut", message: "1 to 32 of a-z, 0-9, - and _" });
    }
    let Some(lang) = crate::lang::canonical(draft.lang.trim()) else {
        return Err(CannedError::Invalid { field: "lang", message: "not a supported language tag" });
    };
    let text = draft.text.trim().to_owned();
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(CannedError::Invalid { field: "text", message: "1 to 2000 bytes" });
    }
    Ok(CannedDraft { shortcut, lang, text })
}

fn unique_violation(e: sqlx::Error) -> CannedError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => CannedError::Duplicate,
        _ => CannedError::Db(e),
    }
}

impl CannedResponses {
    /// Over the server's database.
    #[must_use]
    pub fn new(pool: SqlitePool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    /// Every response, by shortcut then language.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn list(&self) -> Result<Vec<CannedResponse>, CannedError> {
        let rows = sqlx::query("SELECT id, shortcut, lang, text FROM canned_responses ORDER BY shortcut, lang")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| CannedResponse {
                id: r.get("id"),
                shortcut: r.get("shortcut"),
                lang: r.get("lang"),
                text: r.get("text"),
            })
            .collect())
    }

    /// Adds one.
    ///
    /// # Errors
    /// Invalid fields, a duplicate shortcut in the language, a full list.
    pub async fn create(&self, draft: CannedDraft, agent: &str) -> Result<CannedResponse, CannedError> {
        let draft = validate(draft)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM canned_responses").fetch_one(&self.pool).await?;
        if count >= MAX_RESPONSES {
            return Err(CannedError::Full);
        }
        let id = sqlx::query(
            "INSERT INTO canned_responses (shortcut, lang, text, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&draft.shortcut)
        .bind(&draft.lang)
        .bind(&draft.text)
        .bind(agent)
        .bind(self.clock.now().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(unique_violation)?
        .last_insert_rowid();
        Ok(CannedResponse { id, shortcut: draft.shortcut, lang: draft.lang, text: draft.text })
    }

    /// Replaces one.
    ///
    /// # Errors
    /// Invalid fields, a duplicate, or no such response.
    pub async fn update(&self, id: i64, draft: CannedDraft, agent: &str) -> Result<CannedResponse, CannedError> {
        let draft = validate(draft)?;
        let done = sqlx::query(
            "UPDATE canned_responses SET shortcut = ?, lang = ?, text = ?, updated_by = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&draft.shortcut)
        .bind(&draft.lang)
        .bind(&draft.text)
        .bind(agent)
        .bind(self.clock.now().timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(unique_violation)?;
        if done.rows_affected() == 0 {
            return Err(CannedError::NotFound);
        }
        Ok(CannedResponse { id, shortcut: draft.shortcut, lang: draft.lang, text: draft.text })
    }

    /// Removes one.
    ///
    /// # Errors
    /// No such response, or the database failed.
    pub async fn delete(&self, id: i64) -> Result<(), CannedError> {
        let done = sqlx::query("DELETE FROM canned_responses WHERE id = ?").bind(id).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(CannedError::NotFound);
        }
        Ok(())
    }
}
