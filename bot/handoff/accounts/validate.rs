//! The shapes an agent's and a team's fields must have. Pure functions, used by the
//! service, the config loader and the CLI alike, so every way in checks the same rules.

use super::AccountError;

/// Longest e-mail address (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;
/// Display names and team names.
const MAX_NAME: usize = 80;
/// Shortest password we accept.
pub const MIN_PASSWORD: usize = 10;
/// Longest password we hash (a body limit keeps requests small anyway).
const MAX_PASSWORD: usize = 256;
/// Longest avatar URL.
const MAX_URL: usize = 500;
/// Most skills or languages on one team.
const MAX_TAGS: usize = 32;

pub(super) fn invalid(field: &str, message: impl Into<String>) -> AccountError {
    AccountError::Invalid { field: field.to_owned(), message: message.into() }
}

/// A trimmed, lowercased e-mail address with a plausible shape: one `@`, a local part of
/// at most 64 characters, a domain of dot-separated labels. Delivery is not our business.
///
/// # Errors
/// [`AccountError::Invalid`] on `email`.
pub fn email(raw: &str) -> Result<String, AccountError> {
    let email = raw.trim().to_lowercase();
    let bad = |why: &str| invalid("email", format!("{why} (like name@example.com)"));
    if email.is_empty() || email.len() > MAX_EMAIL {
        return Err(bad("must be 1 to 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else { return Err(bad("needs an @")) };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad("is not an e-mail address"));
    }
    let local_ok = local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok { Ok(email) } else { Err(bad("is not an e-mail address")) }
}

/// A display name or team name: trimmed, 1 to 80 characters, no control characters.
///
/// # Errors
/// [`AccountError::Invalid`] on `field`.
pub fn name(field: &str, raw: &str) -> Result<String, AccountError> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME {
        return Err(invalid(field, format!("must be 1 to {MAX_NAME} characters, not {count}")));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Concurrent chats an agent can hold: 1 to 100.
///
/// # Errors
/// [`AccountError::Invalid`] on `capacity`.
pub fn capacity(value: u32) -> Result<u32, AccountError> {
    if (1..=100).contains(&value) { Ok(value) } else { Err(invalid("capacity", "must be between 1 and 100")) }
}

/// An id-like token: `[a-z0-9_-]{1,40}` (team ids and skills).
///
/// # Errors
/// [`AccountError::Invalid`] on `field`.
pub fn slug(field: &str, raw: &str) -> Result<String, AccountError> {
    let ok = (1..=40).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(raw.to_owned()) } else { Err(invalid(field, format!("{raw:?} must be 1 to 40 of a-z, 0-9, _ and -"))) }
}

/// Skills: slugs, deduplicated, in the order given.
///
/// # Errors
/// [`AccountError::Invalid`] on `skills[i]`.
pub fn skills(raw: &[String]) -> Result<Vec<String>, AccountError> {
    if raw.len() > MAX_TAGS {
        return Err(invalid("skills", format!("at most {MAX_TAGS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, skill) in raw.iter().enumerate() {
        let skill = slug(&format!("skills[{i}]"), skill.trim())?;
        if !out.contains(&skill) {
            out.push(skill);
        }
    }
    Ok(out)
}

/// Languages: well-formed tags (`en`, `pl-PL`, `zh-Hant`), stored as the conversation
/// languages routing compares them with (`en`, `pl`, `zh-Hant`; see [`crate::lang::canonical`]).
///
/// # Errors
/// [`AccountError::Invalid`] on `languages[i]`.
pub fn languages(raw: &[String]) -> Result<Vec<String>, AccountError> {
    if raw.len() > MAX_TAGS {
        return Err(invalid("languages", format!("at most {MAX_TAGS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, tag) in raw.iter().enumerate() {
        let tag = tag.trim();
        let well_formed = tag.len() <= 35
            && tag
                .split(['-', '_'])
                .skip(1)
                .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        let canonical = crate::lang::canonical(tag).filter(|_| well_formed).ok_or_else(|| {
            invalid(&format!("languages[{i}]"), format!("{tag:?} is not a language tag (like en, pl-PL, zh-Hant)"))
        })?;
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

/// A password we will hash: 10 to 256 characters.
///
/// # Errors
/// [`AccountError::Invalid`] on `password`.
pub fn password(raw: &str) -> Result<(), AccountError> {
    let count = raw.chars().count();
    if count < MIN_PASSWORD {
        return Err(invalid("password", format!("must be at least {MIN_PASSWORD} characters")));
    }
    if count > MAX_PASSWORD {
        return Err(invalid("password", format!("must be at most {MAX_PASSWORD} characters")));
    }
    Ok(())
}

/// An avatar URL: `https://` or `http://`, no spaces, at most 500 characters; empty = none.
///
/// # Errors
/// [`AccountError::Invalid`] on `avatar_url`.
pub fn avatar_url(raw: Option<&str>) -> Result<Option<String>, AccountError> {
    let Some(url) = raw.map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > MAX_URL || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("avatar_url", "must be an http(s) URL of at most 500 characters"));
    }
    Ok(Some(url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: AccountError) -> String {
        match e {
            AccountError::Invalid { field, .. } => field,
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email("  Maria@Shop.Example ").ok().as_deref(), Some("maria@shop.example"));
        assert!(email("maria.k+desk@mail.shop.example").is_ok());
        for bad in [
            "",
            "maria",
            "@shop.example",
            "maria@",
            "maria@shop",
            "ma ria@shop.example",
            "a@@b.c",
            "a@b..c",
            ".a@b.c",
            "a@-b.c",
        ] {
            assert_eq!(email(bad).map_err(field), Err("email".to_owned()), "{bad:?}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn names_capacity_and_slugs_have_bounds() {
        assert_eq!(name("name", "  Maria K. ").ok().as_deref(), Some("Maria K."));
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"é".repeat(80)).is_ok(), "80 characters, not bytes");
        assert!(name("name", &"é".repeat(81)).is_err());
        assert!(name("name", "a\u{7}b").is_err());
        assert!(capacity(0).is_err() && capacity(101).is_err());
        assert_eq!(capacity(100).ok(), Some(100));
        assert!(slug("id", "billing_eu-2").is_ok());
        for bad in ["", "Billing", "bill ing", "bill.ing", &"a".repeat(41)] {
            assert!(slug("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn languages_become_conversation_languages() {
        let tags = ["en-GB", "pl", "zh-TW", "EN"].map(String::from);
        assert_eq!(languages(&tags).ok(), Some(vec!["en".to_owned(), "pl".to_owned(), "zh-Hant".to_owned()]));
        assert_eq!(languages(&["english".to_owned()]).map_err(field), Err("languages[0]".to_owned()));
        assert_eq!(languages(&["en".to_owned(), "pl-P L".to_owned()]).map_err(field), Err("languages[1]".to_owned()));
    }

    #[test]
    fn passwords_and_urls() {
        assert!(password("123456789").is_err());
        assert!(password("ąęółśżźćń1").is_ok(), "counted in characters");
        assert!(password(&"x".repeat(257)).is_err());
        assert_eq!(avatar_url(Some("")).ok(), Some(None));
        assert!(avatar_url(Some("https://cdn.example/m.png")).is_ok());
        assert!(avatar_url(Some("javascript:alert(1)")).is_err());
    }
}
