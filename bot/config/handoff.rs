//! The `[handoff]` section: how chats reach people — which team's queue, how long an
//! offer waits, how long an agent who dropped keeps their chats.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHandoff {
    after_fallbacks: Option<u32>,
    offer_timeout_secs: Option<u64>,
    grace_secs: Option<u64>,
    default_team: Option<String>,
    default_handle_minutes: Option<u32>,
    #[serde(default)]
    routes: Vec<RouteRule>,
}

/// One routing rule: a handoff whose reason contains `reason_contains` (case-insensitive,
/// empty matches all) and whose language is one of `languages` (empty matches all) goes
/// to `team`. Rules are tried in order; the first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Text the reason must contain, e.g. `order`.
    #[serde(default)]
    pub reason_contains: String,
    /// Language tags (`en`, `zh-Hant`); primary subtags match their variants.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Team id.
    pub team: String,
}

/// How handoffs are routed and offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffConfig {
    /// Honest fallbacks in a row that hand the chat to a person (0: never).
    pub after_fallbacks: u32,
    /// How long an offer waits for the agent before it moves to the next one.
    pub offer_timeout: Duration,
    /// How long an agent whose sockets all dropped keeps their chats.
    pub grace: Duration,
    /// Team for handoffs no rule and no team language matches.
    pub default_team: String,
    /// Handling time assumed before any chat was handled (for wait estimates).
    pub default_handle_minutes: u32,
    /// Routing rules, in order.
    pub routes: Vec<RouteRule>,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self {
            after_fallbacks: 2,
            offer_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(120),
            default_team: "support".to_owned(),
            default_handle_minutes: 6,
            routes: Vec::new(),
        }
    }
}

pub(super) fn resolve_handoff(file: FileHandoff) -> Result<HandoffConfig, ConfigError> {
    let d = HandoffConfig::default();
    let offer_timeout = file.offer_timeout_secs.map_or(d.offer_timeout, Duration::from_secs);
    if offer_timeout < Duration::from_secs(5) || offer_timeout > Duration::from_secs(600) {
        return Err(invalid("handoff.offer_timeout_secs", "must be 5 to 600"));
    }
    let grace = file.grace_secs.map_or(d.grace, Duration::from_secs);
    if grace > Duration::from_secs(3600) {
        return Err(invalid("handoff.grace_secs", "must be at most 3600"));
    }
    let default_handle_minutes = file.default_handle_minutes.unwrap_or(d.default_handle_minutes);
    if !(1..=240).contains(&default_handle_minutes) {
        return Err(invalid("handoff.default_handle_minutes", "must be 1 to 240"));
    }
    if file.routes.iter().any(|r| r.team.trim().is_empty()) {
        return Err(invalid("handoff.routes", "every rule needs a team"));
    }
    Ok(HandoffConfig {
        after_fallbacks: file.after_fallbacks.unwrap_or(d.after_fallbacks),
        offer_timeout,
        grace,
        default_team: file.default_team.unwrap_or(d.default_team),
        default_handle_minutes,
        routes: file.routes,
    })
}
