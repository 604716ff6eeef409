//! Webhooks for the shop's systems: `conversation.closed`, `handoff.requested` and
//! `csat.submitted`, signed with HMAC-SHA256 over a timestamp and the body, retried with
//! exponential back-off, and kept in an outbox table so a restart neither drops nor
//! repeats a delivery. The source is the conversation event log: the dispatcher copies
//! new events into the outbox and moves its cursor in one transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use sqlx::{Row, SqlitePool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::SharedClock;

/// Header with `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "Supportbot-Signature";
/// Header naming the event type.
pub const EVENT_HEADER: &str = "Supportbot-Event";
/// Deliveries tried before one is given up.
pub const MAX_ATTEMPTS: i64 = 12;
/// A receiver should refuse signatures older (or newer) than this.
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// The event types a hook can subscribe to.
pub const EVENT_TYPES: [&str; 3] = ["conversation.closed", "handoff.requested", "csat.submitted"];

/// One configured receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// Shared secret for the signature.
    pub secret: String,
    /// Which event types (default: all).
    #[serde(default)]
    pub events: Vec<String>,
}

impl WebhookConfig {
    fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }
}

/// The event type a log kind is published as, if any.
fn event_type(kind: &str) -> Option<&'static str> {
    match kind {
        "closed" => Some("conversation.closed"),
        "handoff_requested" => Some("handoff.requested"),
        "rated" => Some("csat.submitted"),
        _ => None,
    }
}

fn mac(secret: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

/// The signature header value for `body` sent at `at`.
#[must_use]
pub fn sign(secret: &str, at: DateTime<Utc>, body: &str) -> String {
    let t = at.timestamp();
    let mut m = mac(secret);
    m.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(m.finalize().into_bytes()))
}

/// Checks a signature header the way a receiver should: the HMAC matches (in constant
/// time) and the timestamp is within [`REPLAY_WINDOW_SECS`] of `now`.
#[must_use]
pub fn verify(secret: &str, header: &str, body: &str, now: DateTime<Utc>) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if (now.timestamp() - t).abs() > REPLAY_WINDOW_SECS {
        return false;
    }
    let mut m = mac(secret);
    m.update(format!("{t}.{body}").as_bytes());
    m.verify_slice(&v1).is_ok()
}

/// Back-off before attempt `n + 1` after `n` failures: 2ⁿ seconds, at most an hour.
#[must_use]
pub fn backoff(failures: i64) -> chrono::Duration {
    chrono::Duration::seconds(1_i64 << failures.clamp(0, 12)).min(chrono::Duration::hours(1))
}

/// How long finished deliveries stay in the outbox (for looking into a receiver's
/// trouble) before they are deleted.
pub const KEEP_FINISHED: chrono::Duration = chrono::Duration::days(30);

/// Copies new events into the outbox and delivers what is due.
pub struct Dispatcher {
    /// The database.
    pub pool: SqlitePool,
    /// Receivers.
    pub hooks: Vec<WebhookConfig>,
    /// The clock (timestamps, back-off).
    pub clock: SharedClock,
    /// Rung when events may have been written.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Dispatcher {
    /// Runs until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        if self.hooks.is_empty() {
            return;
        }
        let http = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
            Ok(http) => http,
            Err(e) => {
                warn!(error = %e, "webhooks disabled: no HTTP client");
                return;
            }
        };
        let mut pruned_at: Option<DateTime<Utc>> = None;
        loop {
            let now = self.clock.now();
            if pruned_at.is_none_or(|at| now - at > chrono::Duration::hours(1)) {
                pruned_at = Some(now);
                if let Err(e) = self.prune(now).await {
                    warn!(error = %e, "webhooks: cannot prune finished deliveries");
                }
            }
            if let Err(e) = self.enqueue().await {
                warn!(error = %e, "webhooks: cannot read new events");
            }
            if let Err(e) = self.deliver_due(&http).await {
                warn!(error = %e, "webhooks: cannot read the outbox");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Deletes deliveries finished (delivered or given up) more than [`KEEP_FINISHED`] ago.
    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let before = (now - KEEP_FINISHED).timestamp_millis();
        let done = sqlx::query(
            "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL OR failed_at IS NOT NULL) \
             AND COALESCE(delivered_at, failed_at) < ?",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Moves events after the cursor into the outbox, one row per subscribed hook.
    async fn enqueue(&self) -> Result<(), sqlx::Error> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let cursor: i64 = sqlx::query_scalar("SELECT event_id FROM webhook_cursor WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0);
        let rows = sqlx::query(
            "SELECT e.id, e.conversation_id, e.kind, e.at, e.agent, e.team, e.detail, e.value, c.lang \
             FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id \
             WHERE e.id > ? ORDER BY e.id LIMIT 500",
        )
        .bind(cursor)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last().map(|r| r.get::<i64, _>("id")) else { return Ok(()) };
        let now = self.clock.now().timestamp_millis();
        for row in &rows {
            let Some(kind) = event_type(&row.get::<String, _>("kind")) else { continue };
            let body = event_body(row, kind);
            for hook in self.hooks.iter().filter(|h| h.wants(kind)) {
                sqlx::query(
                    "INSERT OR IGNORE INTO webhook_outbox (url, event_id, event_type, body, next_at, conversation_id) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&hook.url)
                .bind(row.get::<i64, _>("id"))
                .bind(kind)
                .bind(&body)
                .bind(now)
                .bind(row.get::<String, _>("conversation_id"))
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("INSERT INTO webhook_cursor (id, event_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET event_id = excluded.event_id")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn deliver_due(&self, http: &reqwest::Client) -> Result<(), sqlx::Error> {
        let now = self.clock.now();
        let due = sqlx::query(
            "SELECT id, url, event_id, event_type, body, attempts FROM webhook_outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ? ORDER BY id LIMIT 50",
        )
        .bind(now.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        for row in due {
            let (id, url, body): (i64, String, String) = (row.get("id"), row.get("url"), row.get("body"));
            let (event_type, event_id, attempts): (String, i64, i64) =
                (row.get("event_type"), row.get("event_id"), row.get("attempts"));
            let Some(hook) = self.hooks.iter().find(|h| h.url == url) else { continue };
            let sent_at = self.clock.now();
            let outcome = http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, sign(&hook.secret, sent_at, &body))
                .header(EVENT_HEADER, &event_type)
                .header("Idempotency-Key", format!("evt_{event_id}"))
                .body(body)
                .send()
                .await;
            let error = match outcome {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("HTTP {}", response.status())),
                Err(e) => Some(e.to_string()),
            };
            let at = self.clock.now();
            match error {
                None => {
                    sqlx::query("UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?")
                        .bind(at.timestamp_millis())
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                }
                Some(error) if attempts + 1 >= MAX_ATTEMPTS => {
                    warn!(%url, event = %event_type, %error, "webhook given up after {MAX_ATTEMPTS} attempts");
                    sqlx::query(
                        "UPDATE webhook_outbox SET failed_at = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
                    )
                    .bind(at.timestamp_millis())
                    .bind(error)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                }
                Some(error) => {
                    let next = at + backoff(attempts);
                    info!(%url, event = %event_type, %error, attempt = attempts + 1, "webhook failed; will retry");
                    sqlx::query(
                        "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
                    )
                    .bind(next.timestamp_millis())
                    .bind(error)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

fn event_body(row: &sqlx::sqlite::SqliteRow, event_type: &str) -> String {
    let at = DateTime::from_timestamp_millis(row.get::<i64, _>("at")).unwrap_or_default();
    let conversation: String = row.get("conversation_id");
    let (agent, team, detail, value): (Option<String>, Option<String>, Option<String>, Option<i64>) =
        (row.get("agent"), row.get("team"), row.get("detail"), row.get("value"));
    let lang: Option<String> = row.get("lang");
    let data = match event_type {
        "conversation.closed" => {
            json!({ "conversation": conversation, "closed_by": agent, "team": team, "lang": lang })
        }
        "handoff.requested" => json!({ "conversation": conversation, "reason": detail, "lang": lang }),
        _ => json!({
            "conversation": conversation,
            "score": value,
            "comment": detail,
            "resolved_by": if agent.is_some() { "agent" } else { "bot" },
            "agent": agent,
            "team": team,
            "lang": lang,
        }),
    };
    json!({
        "id": format!("evt_{}", row.get::<i64, _>("id")),
        "type": event_type,
        "created_at": crate::store::format_at(at),
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_secret_the_body_and_in_the_window() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let header = sign("s3cret", at, "{\"a\":1}");
        assert!(verify("s3cret", &header, "{\"a\":1}", at + chrono::Duration::seconds(299)));
        assert!(!verify("other", &header, "{\"a\":1}", at), "wrong secret");
        assert!(!verify("s3cret", &header, "{\"a\":2}", at), "changed body");
        assert!(!verify("s3cret", &header, "{\"a\":1}", at + chrono::Duration::seconds(301)), "replayed late");
        assert!(!verify("s3cret", "t=1,v1=zz", "{}", at));
    }

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        let secs: Vec<i64> = (0..14).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(&secs[..5], [1, 2, 4, 8, 16]);
        assert_eq!(secs[13], 3600);
    }
}
