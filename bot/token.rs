//! Visitor conversation tokens: 256 random bits handed to the widget, only a hash is stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length of an encoded token: 32 bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// A secret that grants access to exactly one conversation.
#[derive(Clone, PartialEq, Eq)]
pub struct VisitorToken(String);

impl std::fmt::Debug for VisitorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorToken(***)")
    }
}

impl VisitorToken {
    /// Draws a new token from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a token sent by a client only if it has the exact shape we issue.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == 32).then(|| Self(raw.to_owned()))
    }

    /// The text sent to the widget.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps: a leaked database never yields usable tokens.
    #[must_use]
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = VisitorToken::generate();
        let b = VisitorToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), TOKEN_LEN);
        assert_eq!(VisitorToken::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        assert!(VisitorToken::parse("").is_none());
        assert!(VisitorToken::parse("short").is_none());
        assert!(VisitorToken::parse(&"!".repeat(TOKEN_LEN)).is_none());
    }
}
