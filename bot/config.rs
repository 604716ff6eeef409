//! One `Config` for the whole server: command line and `SUPPORTBOT_*` environment variables
//! override an optional TOML file, which overrides defaults that run out of the box.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::auth::ApiToken;
use crate::orders::http::{HttpOrdersConfig, UrlTemplate, header_pair, parse_header_line};

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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOrders {
    source: Option<FileOrderSource>,
    url: Option<String>,
    auth_header: Option<String>,
    auth_header_name: Option<String>,
    auth_header_value: Option<String>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    seed_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FileOrderSource {
    Embedded,
    Http,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIdentity {
    secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotices {
    webhook_url: Option<String>,
    webhook_auth_header: Option<String>,
    daily_updates: Option<bool>,
    daily_update_hour_utc: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_text_bytes: Option<usize>,
    max_frame_bytes: Option<usize>,
    frames_per_10s: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAnswers {
    min_confidence: Option<f32>,
    related_min_confidence: Option<f32>,
}

/// Size and rate limits for visitor sockets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SocketLimits {
    /// Largest visitor text in bytes.
    pub max_text_bytes: usize,
    /// Largest accepted frame; frames up to 4× this get an error, larger ones close the socket.
    pub max_frame_bytes: usize,
    /// Frames a connection may send per 10 seconds before getting `rate_limited`.
    pub frames_per_10s: u32,
}

/// Confidence thresholds that decide between answering and the honest fallback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerPolicy {
    /// A hit at or above this confidence is given as the answer.
    pub min_confidence: f32,
    /// Below the answer threshold, hits at or above this are offered as related articles.
    pub related_min_confidence: f32,
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        // Calibrated on knowledge-base/tests (see docs/search.md).
        Self { min_confidence: 0.45, related_min_confidence: 0.2 }
    }
}

/// Where order lookups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSourceConfig {
    /// Our own table, filled through `PUT /api/orders/{id}` or `supportbot orders import`.
    Embedded,
    /// The shop's order API.
    Http(HttpOrdersConfig),
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
    /// Answer thresholds.
    pub answers: AnswerPolicy,
    /// API tokens (hashed) for editors, the shop's systems, agents and managers.
    pub tokens: Vec<ApiToken>,
    /// Order lookups.
    pub orders: OrdersConfig,
    /// Called for delay notices no one saw in a chat, so the shop can e-mail the customer.
    pub notice_webhook: Option<crate::notices::WebhookConfig>,
    /// Key the shop signs visitor identities with (`identity`); none = identities refused.
    pub identity_secret: Option<String>,
    /// Daily progress updates for orders on their way (off by default).
    pub daily_updates: Option<crate::notices::DailyUpdates>,
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
            limits: SocketLimits { max_text_bytes: 4096, max_frame_bytes: 16 * 1024, frames_per_10s: 30 },
            answers: AnswerPolicy::default(),
            tokens: Vec::new(),
            orders: OrdersConfig::default(),
            notice_webhook: None,
            daily_updates: None,
            identity_secret: None,
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
        let config = Self {
            listen: args.listen.or(file.listen).unwrap_or(d.listen),
            data_dir: args.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir),
            kb_dir: args.kb_dir.clone().or(file.kb_dir).unwrap_or(d.kb_dir),
            flows_dir: args.flows_dir.clone().or(file.flows_dir).unwrap_or(d.flows_dir),
            log_json: args.log_json || file.log_json.unwrap_or(d.log_json),
            allowed_origins: file.allowed_origins.unwrap_or(d.allowed_origins),
            limits: SocketLimits {
                max_text_bytes: file.limits.max_text_bytes.unwrap_or(d.limits.max_text_bytes),
                max_frame_bytes: file.limits.max_frame_bytes.unwrap_or(d.limits.max_frame_bytes),
                frames_per_10s: file.limits.frames_per_10s.unwrap_or(d.limits.frames_per_10s),
            },
            answers: AnswerPolicy {
                min_confidence: file.answers.min_confidence.unwrap_or(d.answers.min_confidence),
                related_min_confidence: file.answers.related_min_confidence.unwrap_or(d.answers.related_min_confidence),
            },
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
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if !(64..=1024 * 1024).contains(&l.max_text_bytes) {
            return Err(invalid("limits.max_text_bytes", "must be between 64 and 1048576"));
        }
        if l.max_frame_bytes < l.max_text_bytes + 256 || l.max_frame_bytes > 4 * 1024 * 1024 {
            return Err(invalid("limits.max_frame_bytes", "must exceed max_text_bytes by 256 and be at most 4 MiB"));
        }
        if l.frames_per_10s == 0 {
            return Err(invalid("limits.frames_per_10s", "must be at least 1"));
        }
        let a = &self.answers;
        if !(0.0..=1.0).contains(&a.min_confidence) || !(0.0..=a.min_confidence).contains(&a.related_min_confidence) {
            return Err(invalid("answers", "need 0 ≤ related_min_confidence ≤ min_confidence ≤ 1"));
        }
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

/// Checks the `[orders]` section; settings of the HTTP source are errors under the embedded
/// one, so a forgotten `source = "http"` does not silently serve the wrong orders.
fn resolve_orders(file: FileOrders, auth_override: Option<&str>) -> Result<OrdersConfig, ConfigError> {
    let seed_file = match file.seed_file {
        Some(path) if path.as_os_str().is_empty() => None,
        Some(path) => Some(path),
        None => OrdersConfig::default().seed_file,
    };
    let source = file.source.unwrap_or(FileOrderSource::Embedded);
    if source == FileOrderSource::Embedded {
        let http_only = [
            ("orders.url", file.url.is_some()),
            ("orders.auth_header", file.auth_header.is_some()),
            ("orders.auth_header_name", file.auth_header_name.is_some()),
            ("orders.auth_header_value", file.auth_header_value.is_some()),
            ("orders.timeout_ms", file.timeout_ms.is_some()),
            ("orders.retries", file.retries.is_some()),
        ];
        if let Some((key, _)) = http_only.into_iter().find(|(_, set)| *set) {
            return Err(invalid(key, "is only used with source = \"http\"; set it or remove this key"));
        }
        return Ok(OrdersConfig { source: OrderSourceConfig::Embedded, seed_file });
    }
    let url = file.url.ok_or_else(|| {
        invalid("orders.url", "is required with source = \"http\", e.g. \"https://shop.example/api/orders/{id}\"")
    })?;
    let url = UrlTemplate::parse(&url).map_err(|reason| ConfigError::Invalid { key: "orders.url", reason })?;
    let mut http = HttpOrdersConfig::new(url);
    let header = match (auth_override, file.auth_header, file.auth_header_name, file.auth_header_value) {
        (Some(line), ..) => Some(
            parse_header_line(line)
                .map_err(|reason| ConfigError::Invalid { key: "SUPPORTBOT_ORDERS_AUTH_HEADER", reason })?,
        ),
        (None, Some(_), Some(_), _) | (None, Some(_), _, Some(_)) => {
            return Err(invalid(
                "orders.auth_header",
                "give either auth_header = \"Name: value\" or auth_header_name and auth_header_value, not both",
            ));
        }
        (None, Some(line), None, None) => Some(
            parse_header_line(&line).map_err(|reason| ConfigError::Invalid { key: "orders.auth_header", reason })?,
        ),
        (None, None, Some(name), Some(value)) => Some(
            header_pair(&name, &value)
                .map_err(|reason| ConfigError::Invalid { key: "orders.auth_header_name", reason })?,
        ),
        (None, None, Some(_), None) => return Err(invalid("orders.auth_header_value", "is missing (the name is set)")),
        (None, None, None, Some(_)) => return Err(invalid("orders.auth_header_name", "is missing (the value is set)")),
        (None, None, None, None) => None,
    };
    http.auth_header = header;
    if let Some(ms) = file.timeout_ms {
        if !(1..=60_000).contains(&ms) {
            return Err(invalid("orders.timeout_ms", "must be between 1 and 60000 (milliseconds per attempt)"));
        }
        http.timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(retries) = file.retries {
        if retries > 10 {
            return Err(invalid("orders.retries", "must be at most 10"));
        }
        http.retries = retries;
    }
    Ok(OrdersConfig { source: OrderSourceConfig::Http(http), seed_file })
}

fn resolve_webhook(file: FileNotices) -> Result<Option<crate::notices::WebhookConfig>, ConfigError> {
    let Some(url) = file.webhook_url.filter(|u| !u.trim().is_empty()) else {
        if file.webhook_auth_header.is_some() {
            return Err(invalid("notices.webhook_auth_header", "is set but notices.webhook_url is not"));
        }
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("notices.webhook_url", "must be an http:// or https:// URL"));
    }
    let auth_header = match file.webhook_auth_header {
        Some(line) => {
            let (name, value) = crate::orders::http::parse_header_line(&line)
                .map_err(|reason| ConfigError::Invalid { key: "notices.webhook_auth_header", reason })?;
            Some((name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        }
        None => None,
    };
    Ok(Some(crate::notices::WebhookConfig { url, auth_header }))
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.to_owned() }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
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

    fn orders_from(toml_text: &str) -> Result<OrdersConfig, ConfigError> {
        let file: FileConfig =
            toml::from_str(toml_text).map_err(|source| ConfigError::Parse { path: "t".into(), source })?;
        resolve_orders(file.orders, None)
    }

    fn invalid_key(toml_text: &str) -> String {
        match orders_from(toml_text) {
            Err(ConfigError::Invalid { key, reason }) => format!("{key}: {reason}"),
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn orders_default_to_the_embedded_table_with_the_samples() {
        assert_eq!(orders_from("").expect("valid"), OrdersConfig::default());
        let none = orders_from("[orders]\nseed_file = \"\"\n").expect("valid");
        assert_eq!((none.source, none.seed_file), (OrderSourceConfig::Embedded, None));
    }

    #[test]
    fn the_http_order_source_is_checked() {
        let ok = orders_from(
            "[orders]\nsource = \"http\"\nurl = \"https://shop.example/api/orders/{id}\"\n\
             auth_header = \"Authorization: Bearer xyz\"\ntimeout_ms = 1500\nretries = 0\n",
        )
        .expect("valid");
        let OrderSourceConfig::Http(http) = ok.source else { panic!("http expected") };
        assert_eq!((http.timeout.as_millis(), http.retries), (1500, 0));
        assert_eq!(http.auth_header.as_ref().map(|(n, _)| n.as_str()), Some("authorization"));

        let base = "[orders]\nsource = \"http\"\n";
        assert!(invalid_key(base).starts_with("orders.url: is required"));
        assert!(invalid_key(&format!("{base}url = \"https://shop.example/api/orders\"\n")).contains("{id}"));
        let url = "url = \"https://shop.example/o/{id}\"\n";
        assert!(invalid_key(&format!("{base}{url}timeout_ms = 0\n")).starts_with("orders.timeout_ms"));
        assert!(invalid_key(&format!("{base}{url}retries = 11\n")).starts_with("orders.retries"));
        assert!(invalid_key(&format!("{base}{url}auth_header = \"Bearer xyz\"\n")).starts_with("orders.auth_header"));
        assert!(
            invalid_key(&format!("{base}{url}auth_header_name = \"X-Key\"\n")).starts_with("orders.auth_header_value")
        );
        let pair = orders_from(&format!("{base}{url}auth_header_name = \"X-Key\"\nauth_header_value = \"k1\"\n"));
        assert!(matches!(pair.map(|c| c.source), Ok(OrderSourceConfig::Http(h)) if h.auth_header.is_some()));
        assert!(
            invalid_key(&format!("[orders]\n{url}")).contains("only used with source = \"http\""),
            "a url without source = http is a mistake, not ignored"
        );
        let typo = toml::from_str::<FileConfig>("[orders]\nsorce = \"http\"\n").expect_err("unknown key");
        assert!(typo.to_string().contains("sorce"), "{typo}");
        let bad_source = toml::from_str::<FileConfig>("[orders]\nsource = \"ftp\"\n").expect_err("unknown source");
        assert!(bad_source.to_string().contains("embedded"), "{bad_source}");
    }
}
