//! One `Config` for the whole server: command line and `SUPPORTBOT_*` environment variables
//! override an optional TOML file, which overrides defaults that run out of the box.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::auth::ApiToken;

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
}
