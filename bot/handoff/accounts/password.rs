//! Agents' passwords: argon2id PHC strings with a random salt, verified in constant time.
//! These functions are slow on purpose (tens of milliseconds); the service runs them on
//! the blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

use super::AccountError;

/// The hash an unknown e-mail is verified against, so that a login for an address nobody
/// has costs the same time as a wrong password. Made with [`hash`] (the default argon2id
/// parameters, checked by a test) from a password nobody kept.
pub(super) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$uaOQ0BSkzgQYs7S7GBgJVQ$ZLxfR91fDnDWFO0vOBPhmV+Rw1/Rv9VJs2ZSL9Ly+mU";

/// Hashes `password` with argon2id (19 MiB, 2 passes, the OWASP baseline) and a fresh
/// 128-bit salt from the operating system's generator.
///
/// # Errors
/// [`AccountError::Hashing`] if argon2 refuses (it does not for our inputs).
pub fn hash(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hashing(e.to_string()))
}

/// True when `password` matches the PHC string `phc` (with the parameters it names). A
/// malformed stored hash matches nothing.
#[must_use]
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Checks that a configured `password_hash` is an argon2id PHC string we can verify.
///
/// # Errors
/// What is wrong with it, for the config error.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("not a PHC string ({e})"))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!("algorithm {} is not argon2id", parsed.algorithm));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("has no salt or no hash".to_owned());
    }
    argon2::Params::try_from(&parsed).map_err(|e| format!("bad argon2 parameters ({e})"))?;
    Ok(())
}

/// A random password for the demo agent: 128 bits in base64url (22 characters).
#[must_use]
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_is_salted() {
        let a = hash("correct horse battery").expect("hash");
        let b = hash("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("correct horse battery", "not a hash"));
        assert!(check_phc(&a).is_ok());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let real = PasswordHash::new(&hash("x".repeat(12).as_str()).expect("hash")).expect("parse").params.to_string();
        let dummy = PasswordHash::new(DUMMY_HASH).expect("parse").params.to_string();
        assert_eq!(real, dummy, "same argon2 parameters, so the same time");
        assert!(check_phc(DUMMY_HASH).is_ok());
    }

    #[test]
    fn configured_hashes_must_be_argon2id() {
        assert!(check_phc("plain-password").is_err());
        let argon2i =
            "$argon2i$v=19$m=19456,t=2,p=1$uaOQ0BSkzgQYs7S7GBgJVQ$ZLxfR91fDnDWFO0vOBPhmV+Rw1/Rv9VJs2ZSL9Ly+mU";
        assert!(check_phc(argon2i).expect_err("argon2i").contains("argon2id"));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(super::super::validate::password(&a).is_ok());
    }
}
