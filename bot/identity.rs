//! Customers the shop has identified: the shop's page puts a signed statement ("this
//! visitor owns orders FH-…") on the widget, so delay notices reach them in chat without
//! tracking the order first.
//!
//! Format: `base64url(json) "." base64url(HMAC-SHA256(secret, base64url(json)))`, with
//! `json = {"orders": ["FH-100234"], "exp": <unix seconds>, "user": "c-1842", "email": "…"}`
//! (`user` and `email` optional: who the customer is, for privacy requests). The secret is shared between
//! the shop's server and supportbot (`[identity] secret`); a browser cannot forge it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What the shop vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Orders this visitor owns.
    #[serde(default)]
    pub orders: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The shop's id of the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The customer's e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Why an identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not `payload.signature`, or not base64url.
    #[error("malformed identity (expected payload.signature in base64url)")]
    Malformed,
    /// The signature does not match: not signed with our secret, or altered.
    #[error("identity signature does not match")]
    BadSignature,
    /// The payload is not the expected JSON.
    #[error("identity payload is not valid: {0}")]
    BadPayload(String),
    /// Past its `exp`.
    #[error("identity has expired")]
    Expired,
    /// Its `exp` is further out than identities may live.
    #[error("identity expires too late (at most {max_secs} s from now)")]
    TooLong {
        /// The longest lifetime accepted.
        max_secs: i64,
    },
}

/// Most orders one identity may name.
const MAX_ORDERS: usize = 50;

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Signs an identity (what the shop's server does; here for tests and tools).
#[must_use]
pub fn sign(secret: &[u8], identity: &Identity) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(identity).unwrap_or_default());
    let mut m = mac(secret);
    m.update(payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
}

/// Checks a signed identity at `now` (Unix seconds).
///
/// # Errors
/// [`IdentityError`] says what is wrong.
/// `max_lifetime` caps how far in the future `exp` may be, so a leaked identity cannot
/// work for years.
pub fn verify(secret: &[u8], token: &str, now: i64, max_lifetime: i64) -> Result<Identity, IdentityError> {
    let (payload, signature) = token.trim().split_once('.').ok_or(IdentityError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| IdentityError::Malformed)?;
    let mut m = mac(secret);
    m.update(payload.as_bytes());
    m.verify_slice(&signature).map_err(|_| IdentityError::BadSignature)?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| IdentityError::Malformed)?;
    let identity: Identity = serde_json::from_slice(&json).map_err(|e| IdentityError::BadPayload(e.to_string()))?;
    if identity.orders.len() > MAX_ORDERS {
        return Err(IdentityError::BadPayload(format!("more than {MAX_ORDERS} orders")));
    }
    if identity.exp < now {
        return Err(IdentityError::Expired);
    }
    if identity.exp > now.saturating_add(max_lifetime) {
        return Err(IdentityError::TooLong { max_secs: max_lifetime });
    }
    let too_long = |v: &Option<String>| v.as_ref().is_some_and(|s| s.is_empty() || s.len() > 200);
    if too_long(&identity.user) || too_long(&identity.email) {
        return Err(IdentityError::BadPayload("user and email must be 1-200 bytes".into()));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn only_our_unexpired_signature_is_accepted() {
        let identity = Identity { orders: vec!["FH-100234".into()], exp: 2_000, user: Some("c-1".into()), email: None };
        let token = sign(b"shop-secret-0123456789abcdef0123", &identity);
        assert_eq!(verify(b"shop-secret-0123456789abcdef0123", &token, 1_000, DAY), Ok(identity.clone()));
        assert_eq!(verify(b"another-secret", &token, 1_000, DAY), Err(IdentityError::BadSignature));
        assert_eq!(verify(b"shop-secret-0123456789abcdef0123", &token, 3_000, DAY), Err(IdentityError::Expired));
        assert_eq!(
            verify(b"shop-secret-0123456789abcdef0123", &token, 1_000, 500),
            Err(IdentityError::TooLong { max_secs: 500 }),
            "an identity valid for longer than allowed is refused"
        );
        let (payload, sig) = token.split_once('.').expect("dot");
        let forged = URL_SAFE_NO_PAD.encode(br#"{"orders":["FH-999999"],"exp":2000}"#);
        assert_eq!(
            verify(b"shop-secret-0123456789abcdef0123", &format!("{forged}.{sig}"), 1_000, DAY),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(verify(b"k", payload, 1_000, DAY), Err(IdentityError::Malformed));
    }
}
