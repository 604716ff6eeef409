//! Logging in and out, and recognising a session token on every agent request.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use super::{AccountError, Accounts, Agent, password, rows};
use crate::ids::AddressKey;

/// A login's result: the secret the console sends as `Authorization: Bearer` (and in the
/// agent socket's first frame), who it belongs to, and when it stops working.
#[derive(Clone, Serialize)]
pub struct Session {
    /// 256 random bits, base64url; shown once, only its SHA-256 is stored.
    pub token: String,
    /// The agent logged in.
    pub agent: Agent,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"***")
            .field("agent", &self.agent.id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Encoded length of a session token (32 bytes in unpadded base64url).
const TOKEN_LEN: usize = 43;

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a token, or `None` when it cannot be one of ours (no query needed).
fn token_hash(token: &str) -> Option<String> {
    let token = token.trim();
    let shaped = token.len() == TOKEN_LEN && URL_SAFE_NO_PAD.decode(token).is_ok_and(|b| b.len() == 32);
    shaped.then(|| hex::encode(Sha256::digest(token.as_bytes())))
}

impl Accounts {
    /// Checks an e-mail and password and opens a session.
    ///
    /// Before any work, the attempt must pass the failed-login limits of the account and
    /// of `client`'s address. An unknown e-mail is verified against a dummy hash, so it
    /// answers the same error in the same time as a wrong password.
    ///
    /// # Errors
    /// [`AccountError::RateLimited`] (with the wait), [`AccountError::BadCredentials`],
    /// [`AccountError::Disabled`] (only with the right password), database errors.
    pub async fn login(&self, email: &str, password: &str, client: IpAddr) -> Result<Session, AccountError> {
        let now = self.inner.clock.now();
        let account = email.trim().to_lowercase();
        let attempt = self
            .inner
            .throttle
            .begin(&account, AddressKey::of(client), now)
            .map_err(|retry_after| AccountError::RateLimited { retry_after })?;
        let found = rows::credentials(self.pool(), &account).await?;
        let stored = found.as_ref().map_or_else(|| password::DUMMY_HASH.to_owned(), |(_, hash)| hash.clone());
        let plain = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password::verify(&plain, &stored))
            .await
            .map_err(|e| AccountError::Hashing(e.to_string()))?;
        let agent = match found {
            Some((agent, _)) if matches => agent,
            _ => {
                tracing::info!(client = %AddressKey::of(client), "agent login failed");
                return Err(AccountError::BadCredentials);
            }
        };
        self.inner.throttle.succeeded(&attempt);
        if agent.disabled {
            return Err(AccountError::Disabled);
        }
        let token = new_token();
        let hours = i64::from(self.inner.settings.session_hours);
        let expires_at = now + chrono::Duration::hours(hours);
        let mut tx = crate::store::begin_write(self.pool()).await?;
        // Old sessions of this agent go when they can no longer be used, so the table stays small.
        sqlx::query(
            "DELETE FROM agent_sessions WHERE agent_id = ? AND (expires_at < ? OR revoked_at IS NOT NULL AND revoked_at < ?)",
        )
        .bind(agent.id.to_string())
        .bind(rows::millis(now - chrono::Duration::days(1)))
        .bind(rows::millis(now - chrono::Duration::days(1)))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO agent_sessions (token_hash, agent_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash(&token).unwrap_or_default())
            .bind(agent.id.to_string())
            .bind(rows::millis(now))
            .bind(rows::millis(expires_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(agent = %agent.id, "agent logged in");
        Ok(Session { token, agent, expires_at })
    }

    /// Ends a session; true if it was live. Ending it twice is harmless.
    ///
    /// # Errors
    /// Database errors.
    pub async fn logout(&self, token: &str) -> Result<bool, AccountError> {
        let Some(hash) = token_hash(token) else { return Ok(false) };
        let done = sqlx::query("UPDATE agent_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL")
            .bind(rows::millis(self.inner.clock.now()))
            .bind(hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The agent a session token belongs to, if the session is live: one indexed query,
    /// no hashing beyond SHA-256, so it can run on every request and socket frame.
    ///
    /// # Errors
    /// [`AccountError::UnknownSession`], [`AccountError::ExpiredSession`],
    /// [`AccountError::RevokedSession`], [`AccountError::Disabled`], database errors.
    pub async fn authenticate(&self, token: &str) -> Result<Agent, AccountError> {
        let hash = token_hash(token).ok_or(AccountError::UnknownSession)?;
        let sql = format!(
            "SELECT {}, s.expires_at, s.revoked_at FROM agent_sessions s JOIN agents a ON a.id = s.agent_id \
             WHERE s.token_hash = ?",
            rows::AGENT_COLUMNS
        );
        let row =
            sqlx::query(&sql).bind(hash).fetch_optional(self.pool()).await?.ok_or(AccountError::UnknownSession)?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        if revoked.is_some() {
            return Err(AccountError::RevokedSession);
        }
        let expires_at: i64 = row.try_get("expires_at")?;
        if rows::from_millis(expires_at) <= self.inner.clock.now() {
            return Err(AccountError::ExpiredSession);
        }
        let agent = rows::agent_from_row(&row)?;
        if agent.disabled {
            return Err(AccountError::Disabled);
        }
        Ok(agent)
    }
}
