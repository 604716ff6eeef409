//! The handoff's accounts in the config file: `[[teams]]`, `[[agents]]` (password hashes
//! only) and `[agent_sessions]`. Entries are checked here, so a bad file fails at start
//! naming the entry; the server upserts them into the database (`Accounts::sync_config`).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::handoff::accounts::{AccountSettings, AgentConfig, LoginLimits, TeamConfig, check_config};

/// `[agent_sessions]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAgentSessions {
    session_hours: Option<u32>,
    login_failures_per_account: Option<u32>,
    login_failures_per_address: Option<u32>,
    login_window_minutes: Option<u32>,
}

/// Resolves `[agent_sessions]` with its defaults (12 h sessions; 5 failures per account
/// and 20 per address in 15 minutes).
pub(super) fn resolve_sessions(file: &FileAgentSessions) -> Result<AccountSettings, ConfigError> {
    let d = AccountSettings::default();
    let session_hours = file.session_hours.unwrap_or(d.session_hours);
    if !(1..=24 * 90).contains(&session_hours) {
        return Err(invalid("agent_sessions.session_hours", "must be between 1 and 2160 (90 days)"));
    }
    let positive = |value: Option<u32>, default: u32, key: &'static str| match value {
        None => Ok(default),
        Some(0) => Err(invalid(key, "must be at least 1")),
        Some(n) => Ok(n),
    };
    let window_minutes = positive(
        file.login_window_minutes,
        u32::try_from(d.login.window.as_secs() / 60).unwrap_or(15),
        "agent_sessions.login_window_minutes",
    )?;
    Ok(AccountSettings {
        session_hours,
        login: LoginLimits {
            per_account: positive(
                file.login_failures_per_account,
                d.login.per_account,
                "agent_sessions.login_failures_per_account",
            )?,
            per_address: positive(
                file.login_failures_per_address,
                d.login.per_address,
                "agent_sessions.login_failures_per_address",
            )?,
            window: Duration::from_secs(u64::from(window_minutes) * 60),
        },
    })
}

/// Checks `[[agents]]` and `[[teams]]` (shapes, argon2id hashes, duplicates).
pub(super) fn check_accounts(agents: &[AgentConfig], teams: &[TeamConfig]) -> Result<(), ConfigError> {
    check_config(agents, teams).map_err(|(key, reason)| ConfigError::Invalid { key, reason })
}

#[cfg(test)]
mod tests {
    use super::super::FileConfig;
    use super::*;

    #[test]
    fn teams_agents_and_sessions_are_read_and_checked() {
        let text = r#"
[agent_sessions]
session_hours = 8
login_failures_per_account = 4

[[teams]]
id = "billing"
name = "Billing"
skills = ["billing"]
languages = ["en", "pl"]
[teams.hours]
time_zone = "Europe/Warsaw"
days = { mon = "09:00-17:00", tue = "09:00-17:00" }
holidays = ["2026-12-24"]

[[agents]]
email = "maria@shop.example"
name = "Maria"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$uaOQ0BSkzgQYs7S7GBgJVQ$ZLxfR91fDnDWFO0vOBPhmV+Rw1/Rv9VJs2ZSL9Ly+mU"
teams = ["billing"]
capacity = 4
roles = ["agent", "manager"]
"#;
        let file: FileConfig = toml::from_str(text).expect("parses");
        assert_eq!(file.teams[0].hours.as_ref().map(|h| h.time_zone.as_str()), Some("Europe/Warsaw"));
        check_accounts(&file.agents, &file.teams).expect("valid");
        let settings = resolve_sessions(&file.agent_sessions).expect("valid");
        assert_eq!((settings.session_hours, settings.login.per_account, settings.login.per_address), (8, 4, 20));

        let typo = text.replace("capacity = 4", "capacty = 4");
        assert!(toml::from_str::<FileConfig>(&typo).expect_err("unknown key").to_string().contains("capacty"));
        let plain = text.replace("password_hash = \"$argon2id", "password_hash = \"x$argon2id");
        let file: FileConfig = toml::from_str(&plain).expect("parses");
        assert!(matches!(
            check_accounts(&file.agents, &file.teams),
            Err(ConfigError::Invalid { key: "agents.password_hash", .. })
        ));
        let file: FileConfig = toml::from_str("[agent_sessions]\nsession_hours = 0\n").expect("parses");
        assert!(resolve_sessions(&file.agent_sessions).is_err());
    }
}
