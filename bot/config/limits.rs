//! The `[limits]` and `[retention]` sections: what one client may hold or ask for, and how
//! long conversations are kept. Defaults suit a shop on one machine; tests lower them.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    max_text_bytes: Option<usize>,
    max_frame_bytes: Option<usize>,
    frames_per_10s: Option<u32>,
    hello_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    connections_per_address: Option<u32>,
    connections_per_second_per_address: Option<u32>,
    max_connections: Option<u32>,
    conversations_per_hour_per_address: Option<u32>,
    pending_conversations: Option<usize>,
    trusted_proxies: Option<Vec<IpAddr>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRetention {
    conversation_days: Option<u32>,
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

impl Default for SocketLimits {
    fn default() -> Self {
        Self { max_text_bytes: 4096, max_frame_bytes: 16 * 1024, frames_per_10s: 30 }
    }
}

/// What one client address may hold and open, and how long the server waits for a slow
/// client, so idle or dripping connections cannot starve everyone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLimits {
    /// A visitor socket that has not sent `hello` by then is closed (code 4408).
    pub hello_timeout: Duration,
    /// An HTTP request head (and the next one on a kept-alive connection) must arrive
    /// within this, or the connection is closed.
    pub header_timeout: Duration,
    /// A whole HTTP request, body included, must be read and answered within this (408).
    pub request_timeout: Duration,
    /// Open connections one address may hold; 0 turns the cap off.
    pub connections_per_address: u32,
    /// New connections per second one address may open (bursts of twice that); 0 = off.
    pub connections_per_second_per_address: u32,
    /// Open connections in all; `None` derives it from the open-file limit. At the cap,
    /// new connections only get `/healthz` (a reserve above the cap keeps that working).
    pub max_connections: Option<u32>,
    /// New conversations one address may start per hour (bursts of a third of that).
    pub conversations_per_hour_per_address: u32,
    /// Conversations nobody has written in yet, held in memory only; the oldest is
    /// forgotten past this.
    pub pending_conversations: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the real client; connections from
    /// them are not capped per address.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            hello_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            connections_per_address: 256,
            connections_per_second_per_address: 50,
            max_connections: None,
            conversations_per_hour_per_address: 300,
            pending_conversations: 10_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How long conversations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Conversations idle this many days are deleted with everything attached to them;
    /// 0 keeps them forever.
    pub conversation_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self { conversation_days: 180 }
    }
}

fn secs(value: Option<u64>, default: Duration, key: &'static str, max: u64) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(s) if (1..=max).contains(&s) => Ok(Duration::from_secs(s)),
        Some(_) => Err(invalid(key, &format!("must be between 1 and {max} seconds"))),
    }
}

/// Resolves `[limits]` into the socket limits and the edge limits.
pub(super) fn resolve_limits(file: FileLimits) -> Result<(SocketLimits, EdgeLimits), ConfigError> {
    let s = SocketLimits::default();
    let socket = SocketLimits {
        max_text_bytes: file.max_text_bytes.unwrap_or(s.max_text_bytes),
        max_frame_bytes: file.max_frame_bytes.unwrap_or(s.max_frame_bytes),
        frames_per_10s: file.frames_per_10s.unwrap_or(s.frames_per_10s),
    };
    if !(64..=1024 * 1024).contains(&socket.max_text_bytes) {
        return Err(invalid("limits.max_text_bytes", "must be between 64 and 1048576"));
    }
    if socket.max_frame_bytes < socket.max_text_bytes + 256 || socket.max_frame_bytes > 4 * 1024 * 1024 {
        return Err(invalid("limits.max_frame_bytes", "must exceed max_text_bytes by 256 and be at most 4 MiB"));
    }
    if socket.frames_per_10s == 0 {
        return Err(invalid("limits.frames_per_10s", "must be at least 1"));
    }
    let d = EdgeLimits::default();
    let edge = EdgeLimits {
        hello_timeout: secs(file.hello_timeout_secs, d.hello_timeout, "limits.hello_timeout_secs", 600)?,
        header_timeout: secs(file.header_timeout_secs, d.header_timeout, "limits.header_timeout_secs", 600)?,
        request_timeout: secs(file.request_timeout_secs, d.request_timeout, "limits.request_timeout_secs", 3600)?,
        connections_per_address: file.connections_per_address.unwrap_or(d.connections_per_address),
        connections_per_second_per_address: file
            .connections_per_second_per_address
            .unwrap_or(d.connections_per_second_per_address),
        max_connections: file.max_connections,
        conversations_per_hour_per_address: file
            .conversations_per_hour_per_address
            .unwrap_or(d.conversations_per_hour_per_address),
        pending_conversations: file.pending_conversations.unwrap_or(d.pending_conversations),
        trusted_proxies: file.trusted_proxies.unwrap_or_default(),
    };
    if edge.max_connections.is_some_and(|m| m < 16) {
        return Err(invalid("limits.max_connections", "must be at least 16 (leave it out to derive it)"));
    }
    if edge.conversations_per_hour_per_address == 0 {
        return Err(invalid("limits.conversations_per_hour_per_address", "must be at least 1"));
    }
    if edge.pending_conversations < 16 {
        return Err(invalid("limits.pending_conversations", "must be at least 16"));
    }
    Ok((socket, edge))
}

/// Resolves `[retention]`.
pub(super) fn resolve_retention(file: &FileRetention) -> Result<RetentionPolicy, ConfigError> {
    let days = file.conversation_days.unwrap_or(RetentionPolicy::default().conversation_days);
    if days > 36_500 {
        return Err(invalid("retention.conversation_days", "must be at most 36500 (0 keeps conversations forever)"));
    }
    Ok(RetentionPolicy { conversation_days: days })
}

#[cfg(test)]
mod tests {
    use super::super::FileConfig;
    use super::*;

    fn limits(text: &str) -> Result<(SocketLimits, EdgeLimits), String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        resolve_limits(file.limits).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_default_and_override() {
        let (socket, edge) = limits("").expect("defaults");
        assert_eq!((socket, edge), (SocketLimits::default(), EdgeLimits::default()));
        let (_, edge) = limits(
            "[limits]\nhello_timeout_secs = 2\nconnections_per_address = 0\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]\n",
        )
        .expect("valid");
        assert_eq!(edge.hello_timeout, Duration::from_secs(2));
        assert_eq!(edge.connections_per_address, 0);
        assert_eq!(edge.trusted_proxies.len(), 2);
    }

    #[test]
    fn bad_limits_name_the_key() {
        for (text, key) in [
            ("[limits]\nhello_timeout_secs = 0\n", "limits.hello_timeout_secs"),
            ("[limits]\nmax_connections = 3\n", "limits.max_connections"),
            ("[limits]\nconversations_per_hour_per_address = 0\n", "limits.conversations_per_hour_per_address"),
            ("[limits]\nframes_per_10s = 0\n", "limits.frames_per_10s"),
        ] {
            let err = limits(text).expect_err(text);
            assert!(err.contains(key), "{err}");
        }
        assert!(limits("[limits]\ntrusted_proxies = [\"not-an-ip\"]\n").is_err());
    }
}
