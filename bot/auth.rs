//! API tokens for people and systems that change things: content editors, the shop's
//! order system, agents, managers.
//!
//! Tokens are long random strings handed out once (`supportbot token new`); only their
//! SHA-256 is configured, so a leaked config file does not leak working tokens. A random
//! 256-bit token needs no slow password hash: there is nothing to brute-force.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read and change the knowledge base, read its gaps.
    Editor,
    /// Push orders and order events (the shop's back office).
    Orders,
    /// Answer chats handed to people.
    Agent,
    /// Read metrics.
    Manager,
}

impl Role {
    /// Name used in configuration and errors.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Editor => "editor",
            Self::Orders => "orders",
            Self::Agent => "agent",
            Self::Manager => "manager",
        }
    }
}

/// One configured token: a name for logs, the SHA-256 of the secret, and its roles.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who or what holds it ("content-team", "shop-backend").
    pub name: String,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// What it may do.
    pub roles: Vec<Role>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    Missing,
    /// Not a configured token.
    #[error("unknown token")]
    Unknown,
    /// A valid token without the role the request needs.
    #[error("token {name:?} lacks the {role} role")]
    Forbidden {
        /// The token's name.
        name: String,
        /// The role needed.
        role: &'static str,
    },
}

/// Hex SHA-256 of a token, as stored in configuration.
#[must_use]
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The lowercase hex SHA-256 shape configuration must use.
#[must_use]
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh random token (256 bits, URL-safe).
#[must_use]
pub fn new_token() -> String {
    crate::token::VisitorToken::generate().as_str().to_owned()
}

/// Checks an `Authorization` header value against the configured tokens.
///
/// # Errors
/// [`AuthError`] says whether the token is missing, unknown or lacks the role.
pub fn authorize<'t>(tokens: &'t [ApiToken], header: Option<&str>, role: Role) -> Result<&'t ApiToken, AuthError> {
    let secret = header
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    let hashed = hash_token(secret);
    let token = tokens.iter().find(|t| t.sha256.eq_ignore_ascii_case(&hashed)).ok_or(AuthError::Unknown)?;
    if token.roles.contains(&role) {
        Ok(token)
    } else {
        Err(AuthError::Forbidden { name: token.name.clone(), role: role.as_str() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_checked_after_the_token() {
        let tokens = vec![
            ApiToken { name: "editors".into(), sha256: hash_token("e-secret"), roles: vec![Role::Editor] },
            ApiToken { name: "shop".into(), sha256: hash_token("o-secret"), roles: vec![Role::Orders] },
        ];
        assert_eq!(authorize(&tokens, Some("Bearer e-secret"), Role::Editor).map(|t| t.name.as_str()), Ok("editors"));
        assert_eq!(authorize(&tokens, None, Role::Editor), Err(AuthError::Missing));
        assert_eq!(authorize(&tokens, Some("Basic abc"), Role::Editor), Err(AuthError::Missing));
        assert_eq!(authorize(&tokens, Some("Bearer nope"), Role::Editor), Err(AuthError::Unknown));
        assert_eq!(
            authorize(&tokens, Some("Bearer o-secret"), Role::Editor),
            Err(AuthError::Forbidden { name: "shop".into(), role: "editor" })
        );
    }
}
