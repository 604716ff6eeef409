//! One `Config` for the whole server: command line and `SUPPORTBOT_*` environment variables
//! override an optional TOML file, which overrides defaults that run out of the box.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::auth::ApiToken;
use crate::engine::AnswerPolicy;

mod accounts;
mod handoff;
mod limits;
mod orders;

pub use handoff::{HandoffConfig, RouteRule};
pub use limits::{EdgeLimits, RetentionPolicy, SocketLimits};
use limits::{FileLimits, FileRetention};
use orders::{FileNotices, FileOrders, resolve_orders, resolve_webhook};

/// Settings shared by `serve` and the content checks, as given on the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SUPPORTBOT_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Where the database and the search index live [default: ./data].
    #[arg(long, env = "SUPPORTBOT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Knowledge-base content directory [default: ./knowledge-base].
    #[arg(long, env = "SUPPORTBOT_KB_DIR", global = true)]
    pub kb_dir: Option<PathBuf>,
    /// Flow, intent and message-catalog directory [default: ./flows].
    #[arg(long, env = "SUPPORTBOT_FLOWS_DIR", global = true)]
    pub flows_dir: Option<PathBuf>,
    /// Optional TOML configuration file.
    #[arg(long, env = "SUPPORTBOT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "SUPPORTBOT_LOG_JSON", global = true)]
    pub log_json: bool,
    /// Header sent to the shop's order API ("Authorization: Bearer …"); overrides
    /// `orders.auth_header` so the secret can stay out of the config file.
    #[arg(long, env = "SUPPORTBOT_ORDERS_AUTH_HEADER", hide_env_values = true, global = true)]
    pub orders_auth_header: Option<String>,
}

/// The TOML file's shape; unknown keys are an error so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    kb_dir: Option<PathBuf>,
    flows_dir: Option<PathBuf>,
    log_json: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    answers: FileAnswers,
    #[serde(default)]
    tokens: Vec<ApiToken>,
    #[serde(default)]
    orders: FileOrders,
    #[serde(default)]
    notices: FileNotices,
    #[serde(default)]
    identity: FileIdentity,
    #[serde(default)]
    retention: FileRetention,
    #[serde(default)]
    handoff: handoff::FileHandoff,
    #[serde(default)]
    teams: Vec<crate::handoff::accounts::TeamConfig>,
    #[serde(default)]
    agents: Vec<crate::handoff::accounts::AgentConfig>,
    #[serde(default)]
    agent_sessions: accounts::FileAgentSessions,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    csat: FileCsat,
    #[serde(default)]
    webhooks: Vec<crate::webhooks::WebhookConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCsat {
    after_agent_close: Option<bool>,
    after_helpful_answer: Option<bool>,
    after_inactivity_minutes: Option<u32>,
    min_days_between: Option<u32>,
    sweep_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    allow_from: Option<Vec<ipnet::IpNet>>,
}

/// Who may scrape `GET /metrics` without a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsAccess {
    /// Addresses (after trusted proxies) that need no token; others need a manager token.
    pub allow_from: Vec<ipnet::IpNet>,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        let loopback = ["127.0.0.0/8", "::1/128"];
        Self { allow_from: loopback.iter().filter_map(|n| n.parse().ok()).collect() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIdentity {
    secret: Option<String>,
    max_lifetime_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAnswers {
    min_confidence: Option<f32>,
    related_min_confidence: Option<f32>,
}

/// Where order lookups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSourceConfig {
    /// Our own table, filled through `PUT /api/orders/{id}` or `supportbot orders import`.
    Embedded,
    /// The shop's order API.
    Http(crate::orders::http::HttpOrdersConfig),
}

/// The `[orders]` section, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersConfig {
    /// Where lookups go.
    pub source: OrderSourceConfig,
    /// CSV loaded into the embedded table when it is empty at start (the demo's sample
    /// orders by default); `None` loads nothing.
    pub seed_file: Option<PathBuf>,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self { source: OrderSourceConfig::Embedded, seed_file: Some(PathBuf::from("orders/sample-orders.csv")) }
    }
}

/// Fully resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database and index directory.
    pub data_dir: PathBuf,
    /// Knowledge-base content directory.
    pub kb_dir: PathBuf,
    /// Flows directory.
    pub flows_dir: PathBuf,
    /// JSON logs.
    pub log_json: bool,
    /// Origins allowed to open the visitor socket; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Socket limits.
    pub limits: SocketLimits,
    /// Connection, request and conversation limits per client address.
    pub edge: EdgeLimits,
    /// How long conversations are kept.
    pub retention: RetentionPolicy,
    /// Who may read `/metrics` without a token.
    pub metrics: MetricsAccess,
    /// Receivers of `conversation.closed`, `handoff.requested`, `csat.submitted`.
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
    /// Answer thresholds, and when to ask for ratings.
    pub answers: AnswerPolicy,
    /// How often quiet chats are looked for (`[csat] sweep_secs`).
    pub inactivity_sweep: std::time::Duration,
    /// API tokens (hashed) for editors, the shop's systems, agents and managers.
    pub tokens: Vec<ApiToken>,
    /// Order lookups.
    pub orders: OrdersConfig,
    /// Called for delay notices no one saw in a chat, so the shop can e-mail the customer.
    pub notice_webhook: Option<crate::notices::WebhookConfig>,
    /// Key the shop signs visitor identities with (`identity`); none = identities refused.
    pub identity_secret: Option<String>,
    /// Longest an identity may be valid from now (its `exp` further out is refused), so a
    /// leaked one does not work for years.
    pub identity_max_lifetime_secs: i64,
    /// Daily progress updates for orders on their way (off by default).
    pub daily_updates: Option<crate::notices::DailyUpdates>,
    /// How chats reach people.
    pub handoff: HandoffConfig,
    /// Teams from `[[teams]]`, upserted into the database at start.
    pub teams: Vec<crate::handoff::accounts::TeamConfig>,
    /// Agents from `[[agents]]` (password hashes), upserted by e-mail at start.
    pub agents: Vec<crate::handoff::accounts::AgentConfig>,
    /// Agent session length and login limits (`[agent_sessions]`).
    pub accounts: crate::handoff::accounts::AccountSettings,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error with line and column.
        source: toml::de::Error,
    },
    /// A value is out of its allowed range.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// Setting name.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            kb_dir: PathBuf::from("knowledge-base"),
            flows_dir: PathBuf::from("flows"),
            log_json: false,
            allowed_origins: Vec::new(),
            limits: SocketLimits::default(),
            edge: EdgeLimits::default(),
            retention: RetentionPolicy::default(),
            metrics: MetricsAccess::default(),
            webhooks: Vec::new(),
            answers: AnswerPolicy::default(),
            inactivity_sweep: std::time::Duration::from_secs(60),
            tokens: Vec::new(),
            orders: OrdersConfig::default(),
            notice_webhook: None,
            daily_updates: None,
            identity_secret: None,
            identity_max_lifetime_secs: 24 * 60 * 60,
            handoff: HandoffConfig::default(),
            teams: Vec::new(),
            agents: Vec::new(),
            accounts: crate::handoff::accounts::AccountSettings::default(),
        }
    }
}

impl Config {
    /// Resolves command line, environment, file and defaults, in that order of precedence.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a value is out of range.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let d = Self::default();
        let (socket_limits, edge) = limits::resolve_limits(file.limits)?;
        let handoff = handoff::resolve_handoff(file.handoff)?;
        let config = Self {
            listen: args.listen.or(file.listen).unwrap_or(d.listen),
            data_dir: args.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir),
            kb_dir: args.kb_dir.clone().or(file.kb_dir).unwrap_or(d.kb_dir),
            flows_dir: args.flows_dir.clone().or(file.flows_dir).unwrap_or(d.flows_dir),
            log_json: args.log_json || file.log_json.unwrap_or(d.log_json),
            allowed_origins: file.allowed_origins.unwrap_or(d.allowed_origins),
            limits: socket_limits,
            edge,
            retention: limits::resolve_retention(&file.retention)?,
            metrics: MetricsAccess { allow_from: file.metrics.allow_from.unwrap_or(d.metrics.allow_from) },
            webhooks: resolve_webhooks(file.webhooks)?,
            answers: AnswerPolicy {
                min_confidence: file.answers.min_confidence.unwrap_or(d.answers.min_confidence),
                related_min_confidence: file.answers.related_min_confidence.unwrap_or(d.answers.related_min_confidence),
                handoff_after_fallbacks: handoff.after_fallbacks,
                csat: crate::engine::CsatPolicy {
                    after_agent_close: file.csat.after_agent_close.unwrap_or(d.answers.csat.after_agent_close),
                    after_helpful_answer: file.csat.after_helpful_answer.unwrap_or(d.answers.csat.after_helpful_answer),
                    after_inactivity_minutes: match file.csat.after_inactivity_minutes {
                        Some(m) if m > 7 * 24 * 60 => {
                            return Err(invalid("csat.after_inactivity_minutes", "must be 0 to 10080 (a week)"));
                        }
                        m => m.unwrap_or(d.answers.csat.after_inactivity_minutes),
                    },
                    min_days_between: match file.csat.min_days_between {
                        Some(days) if days > 3650 => return Err(invalid("csat.min_days_between", "must be 0 to 3650")),
                        days => days.unwrap_or(d.answers.csat.min_days_between),
                    },
                },
            },
            inactivity_sweep: match file.csat.sweep_secs {
                Some(secs) if !(1..=3600).contains(&secs) => {
                    return Err(invalid("csat.sweep_secs", "must be 1 to 3600"));
                }
                secs => secs.map_or(d.inactivity_sweep, std::time::Duration::from_secs),
            },
            handoff,
            tokens: file.tokens,
            orders: resolve_orders(file.orders, args.orders_auth_header.as_deref())?,
            daily_updates: match (file.notices.daily_updates, file.notices.daily_update_hour_utc) {
                (Some(true), hour) if hour.unwrap_or(9) < 24 => {
                    Some(crate::notices::DailyUpdates { hour_utc: hour.unwrap_or(9) })
                }
                (Some(true), _) => return Err(invalid("notices.daily_update_hour_utc", "must be 0 to 23")),
                _ => None,
            },
            notice_webhook: resolve_webhook(file.notices)?,
            identity_secret: match file.identity.secret {
                Some(secret) if secret.len() < 32 => {
                    return Err(invalid("identity.secret", "must be at least 32 characters (use a random string)"));
                }
                secret => secret,
            },
            identity_max_lifetime_secs: match file.identity.max_lifetime_secs {
                None => d.identity_max_lifetime_secs,
                Some(s) if (60..=366 * 24 * 60 * 60).contains(&s) => s,
                Some(_) => return Err(invalid("identity.max_lifetime_secs", "must be between 60 and 31622400")),
            },
            accounts: accounts::resolve_sessions(&file.agent_sessions)?,
            teams: file.teams,
            agents: file.agents,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.answers;
        if !(0.0..=1.0).contains(&a.min_confidence) || !(0.0..=a.min_confidence).contains(&a.related_min_confidence) {
            return Err(invalid("answers", "need 0 ≤ related_min_confidence ≤ min_confidence ≤ 1"));
        }
        accounts::check_accounts(&self.agents, &self.teams)?;
        if let Some(t) = self.tokens.iter().find(|t| !crate::auth::is_sha256_hex(&t.sha256)) {
            return Err(ConfigError::Invalid {
                key: "tokens.sha256",
                reason: format!(
                    "token {:?}: expected 64 lowercase hex characters (the SHA-256 of the token; `supportbot token new` prints one)",
                    t.name
                ),
            });
        }
        Ok(())
    }
}

pub(super) fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.to_owned() }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
}

fn resolve_webhooks(
    hooks: Vec<crate::webhooks::WebhookConfig>,
) -> Result<Vec<crate::webhooks::WebhookConfig>, ConfigError> {
    for (i, hook) in hooks.iter().enumerate() {
        let url = reqwest::Url::parse(&hook.url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        if url.is_none() {
            return Err(invalid("webhooks.url", &format!("webhook {}: must be an http(s) URL", i + 1)));
        }
        if hook.secret.len() < 16 {
            return Err(invalid("webhooks.secret", &format!("webhook {}: at least 16 characters", i + 1)));
        }
        if let Some(bad) = hook.events.iter().find(|e| !crate::webhooks::EVENT_TYPES.contains(&e.as_str())) {
            return Err(invalid(
                "webhooks.events",
                &format!(
                    "webhook {}: unknown event \"{bad}\" (conversation.closed, handoff.requested, csat.submitted)",
                    i + 1
                ),
            ));
        }
    }
    Ok(hooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let err = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisen = 3\n").expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/x\"\n[limits]\nmax_text_bytes = 2000\n")
            .expect("write");
        let args = ServeArgs { config: Some(path), data_dir: Some("/cli".into()), ..ServeArgs::default() };
        let c = Config::resolve(&args).expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("/cli"));
        assert_eq!(c.limits.max_text_bytes, 2000);
        assert_eq!(c.kb_dir, PathBuf::from("knowledge-base"));
    }

    #[test]
    fn webhooks_and_the_metrics_allow_list_are_checked() {
        let hook = |fields: &str| {
            let file: FileConfig = toml::from_str(&format!("[[webhooks]]\n{fields}\n")).expect("toml");
            resolve_webhooks(file.webhooks).map_err(|e| e.to_string())
        };
        let secret = "secret = \"0123456789abcdef\"";
        assert!(hook(&format!("url = \"https://shop.example/h\"\n{secret}")).is_ok());
        assert!(hook(&format!("url = \"ftp://shop.example/h\"\n{secret}")).is_err_and(|e| e.contains("webhooks.url")));
        assert!(hook("url = \"https://shop.example/h\"\nsecret = \"short\"").is_err_and(|e| e.contains("16")));
        let typo = format!("url = \"https://a.example/\"\n{secret}\nevents = [\"conversation.close\"]");
        assert!(hook(&typo).is_err_and(|e| e.contains("conversation.close")));
        let file: FileConfig = toml::from_str("[metrics]\nallow_from = [\"10.0.0.0/8\"]\n").expect("toml");
        assert_eq!(file.metrics.allow_from.map(|n| n.len()), Some(1));
        assert!(toml::from_str::<FileConfig>("[metrics]\nallow_from = [\"10.0.0.0/33\"]\n").is_err());
    }
}
