//! Queries for the handoff desk: who owns which chat (to rebuild the queue after a
//! restart), requests to be contacted later, and a visitor's earlier conversations.

use sqlx::{Row, SqlitePool};

use super::{from_millis, query_err, to_millis};
use crate::ids::ConversationId;
use crate::store::{EarlierConversation, OwnedConversation, StoreError, StoredOfflineRequest};
use chrono::{DateTime, Utc};

fn parse_id(raw: &str, table: &'static str) -> Result<ConversationId, StoreError> {
    uuid::Uuid::parse_str(raw)
        .map(ConversationId)
        .map_err(|e| StoreError::Corrupt { table, reason: format!("id {raw:?}: {e}") })
}

pub(super) async fn owned(pool: &SqlitePool) -> Result<Vec<OwnedConversation>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, owner_kind, owner_agent, owner_team, handoff_reason, lang, queued_at, assigned_at \
         FROM conversations WHERE owner_kind IN ('queued', 'agent') ORDER BY queued_at, id",
    )
    .fetch_all(pool)
    .await
    .map_err(query_err("list owned conversations"))?;
    rows.iter()
        .map(|r| {
            Ok(OwnedConversation {
                id: parse_id(r.get("id"), "conversations")?,
                held_by: if r.get::<&str, _>("owner_kind") == "agent" { r.get("owner_agent") } else { None },
                team: r.get::<Option<String>, _>("owner_team").unwrap_or_default(),
                reason: r.get::<Option<String>, _>("handoff_reason").unwrap_or_default(),
                lang: r.get::<Option<String>, _>("lang").unwrap_or_else(|| "en".to_owned()),
                queued_at: r.get::<Option<i64>, _>("queued_at").map(from_millis),
                assigned_at: r.get::<Option<i64>, _>("assigned_at").map(from_millis),
            })
        })
        .collect()
}

pub(super) async fn open_offline(pool: &SqlitePool, limit: u32) -> Result<Vec<StoredOfflineRequest>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.conversation_id, o.team, o.reason, o.channel, o.contact, o.details, o.at, c.lang \
         FROM offline_requests o JOIN conversations c ON c.id = o.conversation_id \
         WHERE o.handled_at IS NULL ORDER BY o.at, o.id LIMIT ?",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(query_err("list offline requests"))?;
    rows.iter()
        .map(|r| {
            Ok(StoredOfflineRequest {
                id: r.get("id"),
                conversation: parse_id(r.get("conversation_id"), "offline_requests")?,
                team: r.get("team"),
                reason: r.get("reason"),
                channel: r.get("channel"),
                contact: r.get("contact"),
                details: r.get("details"),
                lang: r.get::<Option<String>, _>("lang").unwrap_or_else(|| "en".to_owned()),
                at: from_millis(r.get("at")),
            })
        })
        .collect()
}

pub(super) async fn close_offline(
    pool: &SqlitePool,
    id: i64,
    agent: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE offline_requests SET handled_by = ?, handled_at = ? WHERE id = ? AND handled_at IS NULL")
            .bind(agent)
            .bind(to_millis(at))
            .bind(id)
            .execute(pool)
            .await
            .map_err(query_err("close offline request"))?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn earlier(
    pool: &SqlitePool,
    id: ConversationId,
    limit: u32,
) -> Result<Vec<EarlierConversation>, StoreError> {
    // The same person: the same verified visitor id, the same e-mail, or an order both
    // conversations proved ownership of.
    let rows = sqlx::query(
        "WITH me AS (SELECT visitor_id, contact_email FROM conversations WHERE id = ?1) \
         SELECT c.id, c.created_at, c.lang, c.owner_kind, \
                (SELECT text FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor' \
                 ORDER BY m.seq LIMIT 1) AS first_question \
         FROM conversations c, me \
         WHERE c.id <> ?1 AND ( \
             (me.visitor_id IS NOT NULL AND c.visitor_id = me.visitor_id) \
          OR (me.contact_email IS NOT NULL AND c.contact_email = me.contact_email) \
          OR c.id IN (SELECT b.conversation_id FROM order_links a JOIN order_links b ON a.order_id = b.order_id \
                      WHERE a.conversation_id = ?1)) \
         ORDER BY c.created_at DESC LIMIT ?2",
    )
    .bind(id.0.to_string())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(query_err("find earlier conversations"))?;
    rows.iter()
        .map(|r| {
            Ok(EarlierConversation {
                id: parse_id(r.get("id"), "conversations")?,
                created_at: from_millis(r.get("created_at")),
                lang: r.get("lang"),
                first_question: r.get("first_question"),
            })
        })
        .collect()
}

/// When the same person (verified visitor id or e-mail) was last asked for a rating in
/// another conversation.
pub(super) async fn visitor_last_csat_ask(
    pool: &SqlitePool,
    id: ConversationId,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    let at: Option<i64> = sqlx::query_scalar(
        "WITH me AS (SELECT visitor_id, contact_email FROM conversations WHERE id = ?1) \
         SELECT MAX(e.at) FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id, me \
         WHERE e.kind = 'csat_asked' AND c.id <> ?1 AND ( \
             (me.visitor_id IS NOT NULL AND c.visitor_id = me.visitor_id) \
          OR (me.contact_email IS NOT NULL AND c.contact_email = me.contact_email))",
    )
    .bind(id.0.to_string())
    .fetch_one(pool)
    .await
    .map_err(query_err("find the visitor's last rating request"))?;
    Ok(at.map(from_millis))
}

/// Bot-held conversations last active in `[since, before)` where the visitor wrote and no
/// rating was asked for or given.
pub(super) async fn quiet_conversations(
    pool: &SqlitePool,
    since: chrono::DateTime<chrono::Utc>,
    before: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> Result<Vec<(ConversationId, chrono::DateTime<chrono::Utc>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.id, c.updated_at FROM conversations c \
         WHERE c.owner_kind = 'bot' AND c.updated_at >= ? AND c.updated_at < ? \
           AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor') \
           AND NOT EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = c.id \
                           AND e.kind IN ('csat_asked', 'rated')) \
         ORDER BY c.updated_at LIMIT ?",
    )
    .bind(since.timestamp_millis())
    .bind(before.timestamp_millis())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(query_err("find quiet conversations"))?;
    rows.iter().map(|r| Ok((parse_id(r.get("id"), "conversations")?, from_millis(r.get("updated_at"))))).collect()
}
