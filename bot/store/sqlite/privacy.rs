//! Retention and privacy requests: finding one person's conversations, exporting and
//! deleting them, and deleting conversations nobody has touched for a long time.
//! Deleting a conversation row cascades (foreign keys) to its messages, unanswered
//! questions, ratings, order links and notices.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{format_at, from_millis, message_from_row, query_err};
use crate::ids::{ConversationId, Seq};
use crate::store::{ConversationExport, StoreError, VisitorSelector};

fn parse_id(raw: &str, table: &'static str) -> Result<ConversationId, StoreError> {
    Uuid::parse_str(raw)
        .map(ConversationId)
        .map_err(|e| StoreError::Corrupt { table, reason: format!("id {raw:?}: {e}") })
}

pub(super) async fn set_visitor(
    pool: &SqlitePool,
    id: ConversationId,
    visitor_id: Option<&str>,
    email: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE conversations SET visitor_id = COALESCE(?, visitor_id), contact_email = COALESCE(?, contact_email) \
         WHERE id = ?",
    )
    .bind(visitor_id)
    .bind(email)
    .bind(id.0.to_string())
    .execute(pool)
    .await
    .map_err(query_err("set visitor"))?;
    Ok(())
}

pub(super) async fn delete_idle(
    pool: &SqlitePool,
    before: DateTime<Utc>,
    keep: &[ConversationId],
    batch: u32,
) -> Result<Vec<ConversationId>, StoreError> {
    // Look a little further than the batch so conversations being kept do not stall it.
    let look = i64::from(batch) + i64::try_from(keep.len()).unwrap_or(i64::MAX / 2);
    let rows = sqlx::query("SELECT id FROM conversations WHERE updated_at < ? ORDER BY updated_at LIMIT ?")
        .bind(before.timestamp_millis())
        .bind(look)
        .fetch_all(pool)
        .await
        .map_err(query_err("find idle conversations"))?;
    let mut ids = Vec::new();
    for row in &rows {
        let id = parse_id(row.get("id"), "conversations")?;
        if !keep.contains(&id) {
            ids.push(id);
        }
    }
    ids.truncate(usize::try_from(batch).unwrap_or(usize::MAX));
    // Re-check the age inside the delete: a conversation written to meanwhile stays.
    let mut tx = crate::store::begin_write(pool).await.map_err(query_err("begin retention"))?;
    let mut deleted = Vec::with_capacity(ids.len());
    for id in ids {
        let gone = sqlx::query("DELETE FROM conversations WHERE id = ? AND updated_at < ?")
            .bind(id.0.to_string())
            .bind(before.timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(query_err("delete idle conversation"))?
            .rows_affected();
        if gone > 0 {
            deleted.push(id);
        }
    }
    tx.commit().await.map_err(query_err("commit retention"))?;
    Ok(deleted)
}

pub(super) async fn find(pool: &SqlitePool, who: &VisitorSelector) -> Result<Vec<ConversationId>, StoreError> {
    let rows = match who {
        VisitorSelector::Conversation(id) => {
            sqlx::query("SELECT id FROM conversations WHERE id = ?").bind(id.0.to_string()).fetch_all(pool).await
        }
        VisitorSelector::VisitorId(visitor) => {
            sqlx::query("SELECT id FROM conversations WHERE visitor_id = ? ORDER BY created_at")
                .bind(visitor)
                .fetch_all(pool)
                .await
        }
        VisitorSelector::Email(email) => {
            sqlx::query(
                "SELECT id FROM conversations WHERE contact_email = ?1 \
                 UNION SELECT l.conversation_id FROM order_links l JOIN orders o ON o.id = l.order_id \
                   WHERE o.email = ?1 COLLATE NOCASE \
                 UNION SELECT DISTINCT conversation_id FROM messages WHERE instr(lower(text), lower(?1)) > 0",
            )
            .bind(email.trim())
            .fetch_all(pool)
            .await
        }
    }
    .map_err(query_err("find a visitor's conversations"))?;
    rows.iter().map(|r| parse_id(r.get(0), "conversations")).collect()
}

pub(super) async fn export(pool: &SqlitePool, id: ConversationId) -> Result<Option<ConversationExport>, StoreError> {
    let key = id.0.to_string();
    let Some(row) = sqlx::query(
        "SELECT created_at, updated_at, locale, page_url, lang, visitor_id, contact_email FROM conversations WHERE id = ?",
    )
    .bind(&key)
    .fetch_optional(pool)
    .await
    .map_err(query_err("export conversation"))?
    else {
        return Ok(None);
    };
    let messages = sqlx::query(
        "SELECT seq, sender, text, at, client_id, reply_to, extras_json FROM messages WHERE conversation_id = ? ORDER BY seq",
    )
    .bind(&key)
    .fetch_all(pool)
    .await
    .map_err(query_err("export messages"))?
    .iter()
    .map(message_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    let unanswered = sqlx::query("SELECT seq, question FROM kb_gaps WHERE conversation_id = ? ORDER BY seq")
        .bind(&key)
        .fetch_all(pool)
        .await
        .map_err(query_err("export gaps"))?
        .iter()
        .map(|r| (Seq(r.get("seq")), r.get("question")))
        .collect();
    let ratings = sqlx::query("SELECT score, at, comment FROM csat WHERE conversation_id = ? ORDER BY at")
        .bind(&key)
        .fetch_all(pool)
        .await
        .map_err(query_err("export ratings"))?
        .iter()
        .map(|r| {
            let score = u8::try_from(r.get::<i64, _>("score")).unwrap_or(0);
            (score, format_at(from_millis(r.get("at"))), r.get("comment"))
        })
        .collect();
    let answer_votes = sqlx::query("SELECT seq, helpful FROM answer_feedback WHERE conversation_id = ? ORDER BY seq")
        .bind(&key)
        .fetch_all(pool)
        .await
        .map_err(query_err("export answer votes"))?
        .iter()
        .map(|r| (Seq(r.get("seq")), r.get("helpful")))
        .collect();
    let orders = sqlx::query("SELECT order_id FROM order_links WHERE conversation_id = ? ORDER BY at")
        .bind(&key)
        .fetch_all(pool)
        .await
        .map_err(query_err("export order links"))?
        .iter()
        .map(|r| r.get("order_id"))
        .collect();
    Ok(Some(ConversationExport {
        id,
        created_at: format_at(from_millis(row.get("created_at"))),
        updated_at: format_at(from_millis(row.get("updated_at"))),
        locale: row.get("locale"),
        page_url: row.get("page_url"),
        lang: row.get("lang"),
        visitor_id: row.get("visitor_id"),
        contact_email: row.get("contact_email"),
        messages,
        unanswered,
        ratings,
        answer_votes,
        orders,
    }))
}

pub(super) async fn delete(pool: &SqlitePool, ids: &[ConversationId]) -> Result<u64, StoreError> {
    let mut tx = crate::store::begin_write(pool).await.map_err(query_err("begin delete"))?;
    let mut deleted = 0;
    for id in ids {
        deleted += sqlx::query("DELETE FROM conversations WHERE id = ?")
            .bind(id.0.to_string())
            .execute(&mut *tx)
            .await
            .map_err(query_err("delete conversation"))?
            .rows_affected();
    }
    tx.commit().await.map_err(query_err("commit delete"))?;
    Ok(deleted)
}
