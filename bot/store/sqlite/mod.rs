//! SQLite backend: one file in the data dir, WAL mode, full fsync on commit.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{
    ConversationExport, ConversationRecord, Gap, NewConversation, NewMessage, StepRecords, Store, StoreError,
    VisitorSelector,
};
use crate::ids::{ConversationId, Seq};
use crate::protocol::{ChatMessage, MessageExtras, Sender};

/// The embedded store used by default.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn query_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Starts a transaction that takes the write lock up front (`BEGIN IMMEDIATE`).
///
/// A deferred transaction that reads first and writes later cannot wait for a
/// concurrent writer: SQLite answers the upgrade with "database is locked" at
/// once. Taking the lock at `BEGIN` lets the busy timeout queue writers instead.
///
/// # Errors
/// When the lock is not granted within the busy timeout.
pub async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Formats a timestamp the way the wire protocol shows it.
#[must_use]
pub fn format_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies pending migrations.
    ///
    /// # Errors
    /// When the file cannot be opened or a migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open { path: display.clone(), source })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path: display, source })?;
        sqlx::migrate!("bot/store/migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for tables kept outside the [`Store`] trait (orders) that share
    /// the database file and its migrations.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn conversation_from_row(row: &SqliteRow) -> Result<ConversationRecord, StoreError> {
    let id: String = row.get("id");
    let id = Uuid::parse_str(&id)
        .map_err(|e| StoreError::Corrupt { table: "conversations", reason: format!("id {id:?}: {e}") })?;
    Ok(ConversationRecord {
        id: ConversationId(id),
        created_at: from_millis(row.get("created_at")),
        locale: row.get("locale"),
        page_url: row.get("page_url"),
        lang: row.get("lang"),
        state_json: row.get("state_json"),
        last_seq: Seq(row.get("last_seq")),
    })
}

fn message_from_row(row: &SqliteRow) -> Result<ChatMessage, StoreError> {
    let sender: String = row.get("sender");
    let from = Sender::parse(&sender)
        .ok_or_else(|| StoreError::Corrupt { table: "messages", reason: format!("sender {sender:?}") })?;
    let extras_json: Option<String> = row.get("extras_json");
    let extras = match extras_json {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt { table: "messages", reason: format!("extras_json: {e}") })?,
        None => MessageExtras::default(),
    };
    Ok(ChatMessage {
        seq: Seq(row.get("seq")),
        from,
        text: row.get("text"),
        at: format_at(from_millis(row.get("at"))),
        client_id: row.get("client_id"),
        reply_to: row.get::<Option<i64>, _>("reply_to").map(Seq),
        extras,
    })
}

/// Records an unanswered question inside `tx` (deduplicated and capped per conversation).
async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: ConversationId,
    event: &crate::metrics::NewEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO conversation_events (conversation_id, kind, at, agent, team, detail, value) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.0.to_string())
    .bind(event.kind.as_str())
    .bind(to_millis(event.at))
    .bind(&event.agent)
    .bind(&event.team)
    .bind(&event.detail)
    .bind(event.value)
    .execute(&mut **tx)
    .await
    .map_err(query_err("record event"))?;
    Ok(())
}

async fn insert_gap(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, gap: Gap) -> Result<(), StoreError> {
    let (near_id, near_lang, near_score) = match gap.near_miss {
        Some((id, lang, score)) => (Some(id), Some(lang), Some(f64::from(score))),
        None => (None, None, None),
    };
    let conversation = gap.conversation.0.to_string();
    sqlx::query(
        "INSERT OR IGNORE INTO kb_gaps (conversation_id, seq, at, lang, question, near_miss_id, near_miss_lang, \
         near_miss_score) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 \
         WHERE (SELECT COUNT(*) FROM kb_gaps WHERE conversation_id = ?1) < ?9 \
         AND NOT EXISTS (SELECT 1 FROM kb_gaps WHERE conversation_id = ?1 AND question = ?5)",
    )
    .bind(&conversation)
    .bind(gap.seq.0)
    .bind(gap.at.timestamp_millis())
    .bind(&gap.lang)
    .bind(&gap.question)
    .bind(near_id)
    .bind(near_lang)
    .bind(near_score)
    .bind(super::MAX_GAPS_PER_CONVERSATION)
    .execute(&mut **tx)
    .await
    .map_err(query_err("record gap"))?;
    Ok(())
}

/// Appends a message with the conversation's next seq inside `tx`.
async fn insert_message(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: ConversationId,
    msg: NewMessage,
) -> Result<ChatMessage, StoreError> {
    let seq: Option<i64> = sqlx::query_scalar(
        "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq",
    )
    .bind(to_millis(msg.at))
    .bind(id.0.to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(query_err("assign seq"))?;
    let seq = seq.ok_or(StoreError::NotFound(id))?;
    let extras_json =
        if msg.extras.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&msg.extras).map_err(|e| StoreError::Corrupt {
                table: "messages",
                reason: format!("extras not serializable: {e}"),
            })?)
        };
    let inserted = sqlx::query(
        "INSERT INTO messages (conversation_id, seq, sender, text, at, client_id, reply_to, extras_json, private) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.0.to_string())
    .bind(seq)
    .bind(msg.from.as_str())
    .bind(&msg.text)
    .bind(to_millis(msg.at))
    .bind(&msg.client_id)
    .bind(msg.reply_to.map(|s| s.0))
    .bind(&extras_json)
    .bind(msg.extras.private)
    .execute(&mut **tx)
    .await;
    if let Err(e) = inserted {
        let duplicate = e.as_database_error().is_some_and(|d| d.is_unique_violation());
        return Err(if duplicate { StoreError::DuplicateClientId } else { query_err("insert message")(e) });
    }
    Ok(ChatMessage {
        seq: Seq(seq),
        from: msg.from,
        text: msg.text,
        at: format_at(from_millis(to_millis(msg.at))),
        client_id: msg.client_id,
        reply_to: msg.reply_to,
        extras: msg.extras,
    })
}

const CONVERSATION_COLUMNS: &str = "id, created_at, locale, page_url, lang, state_json, last_seq";

mod handoff;
mod privacy;

#[async_trait]
impl Store for SqliteStore {
    async fn set_visitor(
        &self,
        id: ConversationId,
        visitor_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        privacy::set_visitor(&self.pool, id, visitor_id, email).await
    }

    async fn delete_idle_conversations(
        &self,
        before: DateTime<Utc>,
        keep: &[ConversationId],
        batch: u32,
    ) -> Result<Vec<ConversationId>, StoreError> {
        privacy::delete_idle(&self.pool, before, keep, batch).await
    }

    async fn find_conversations(&self, who: &VisitorSelector) -> Result<Vec<ConversationId>, StoreError> {
        privacy::find(&self.pool, who).await
    }

    async fn export_conversation(&self, id: ConversationId) -> Result<Option<ConversationExport>, StoreError> {
        privacy::export(&self.pool, id).await
    }

    async fn delete_conversations(&self, ids: &[ConversationId]) -> Result<u64, StoreError> {
        privacy::delete(&self.pool, ids).await
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<ConversationRecord, StoreError> {
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(query_err("begin create"))?;
        sqlx::query(
            "INSERT INTO conversations (id, token_hash, created_at, updated_at, locale, page_url, state_json) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.id.0.to_string())
        .bind(&new.token_hash)
        .bind(to_millis(new.at))
        .bind(to_millis(new.at))
        .bind(&new.locale)
        .bind(&new.page_url)
        .bind(&new.state_json)
        .execute(&mut *tx)
        .await
        .map_err(query_err("create conversation"))?;
        let opened = crate::metrics::NewEvent::new(crate::metrics::EventKind::Opened, new.at);
        insert_event(&mut tx, new.id, &opened).await?;
        let mut last_seq = Seq(0);
        for message in new.opening {
            last_seq = insert_message(&mut tx, new.id, message).await?.seq;
        }
        tx.commit().await.map_err(query_err("commit create"))?;
        Ok(ConversationRecord {
            id: new.id,
            created_at: from_millis(to_millis(new.at)),
            locale: new.locale,
            page_url: new.page_url,
            lang: None,
            state_json: new.state_json,
            last_seq,
        })
    }

    async fn conversation_by_token_hash(&self, token_hash: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE token_hash = ?");
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("find conversation by token"))?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>, StoreError> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id.0.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("load conversation"))?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn append_message(&self, id: ConversationId, msg: NewMessage) -> Result<ChatMessage, StoreError> {
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(query_err("begin append"))?;
        // Dropping the transaction on an error rolls back the seq increment.
        let stored = insert_message(&mut tx, id, msg).await?;
        tx.commit().await.map_err(query_err("commit append"))?;
        Ok(stored)
    }

    async fn messages_after(
        &self,
        id: ConversationId,
        after: Seq,
        limit: u32,
        with_private: bool,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, sender, text, at, client_id, reply_to, extras_json FROM messages \
             WHERE conversation_id = ? AND seq > ? AND (private = 0 OR ?) ORDER BY seq LIMIT ?",
        )
        .bind(id.0.to_string())
        .bind(after.0)
        .bind(with_private)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read messages"))?;
        rows.iter().map(message_from_row).collect()
    }

    async fn visitor_message(
        &self,
        id: ConversationId,
        client_id: &str,
    ) -> Result<Option<(ChatMessage, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT m.seq, m.sender, m.text, m.at, m.client_id, m.reply_to, m.extras_json, \
             EXISTS (SELECT 1 FROM messages r WHERE r.conversation_id = m.conversation_id AND r.reply_to = m.seq) \
             AS answered FROM messages m WHERE m.conversation_id = ? AND m.client_id = ?",
        )
        .bind(id.0.to_string())
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("find visitor message"))?;
        row.map(|r| Ok((message_from_row(&r)?, r.get::<bool, _>("answered")))).transpose()
    }

    async fn commit_step(&self, id: ConversationId, step: StepRecords) -> Result<Vec<ChatMessage>, StoreError> {
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(query_err("begin step"))?;
        let mut stored = Vec::with_capacity(step.messages.len());
        for message in step.messages {
            stored.push(insert_message(&mut tx, id, message).await?);
        }
        for gap in step.gaps {
            insert_gap(&mut tx, gap).await?;
        }
        for event in &step.events {
            insert_event(&mut tx, id, event).await?;
        }
        for request in step.offline_requests {
            sqlx::query(
                "INSERT INTO offline_requests (conversation_id, team, reason, channel, contact, details, seq, at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id.0.to_string())
            .bind(&request.team)
            .bind(&request.reason)
            .bind(&request.channel)
            .bind(&request.contact)
            .bind(&request.details)
            .bind(request.seq.0)
            .bind(request.at.timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(query_err("file offline request"))?;
        }
        if let Some(owner) = step.owner {
            let at = owner.at.timestamp_millis();
            // A chat keeps its place when it comes back to a queue (transfer, an agent who
            // dropped): queued_at is set only when it joins from the bot.
            sqlx::query(
                "UPDATE conversations SET owner_kind = ?1, owner_agent = ?2, owner_team = ?3, \
                 handoff_reason = COALESCE(?4, handoff_reason), \
                 queued_at = CASE WHEN ?1 = 'queued' THEN COALESCE(CASE WHEN owner_kind IN ('queued', 'agent') \
                     THEN queued_at END, ?5) WHEN ?1 = 'agent' THEN queued_at ELSE NULL END, \
                 assigned_at = CASE WHEN ?1 = 'agent' THEN ?5 WHEN ?1 = 'closed' THEN assigned_at ELSE NULL END, \
                 closed_at = CASE WHEN ?1 = 'closed' THEN ?5 ELSE NULL END \
                 WHERE id = ?6",
            )
            .bind(owner.kind)
            .bind(&owner.agent)
            .bind(&owner.team)
            .bind(&owner.reason)
            .bind(at)
            .bind(id.0.to_string())
            .execute(&mut *tx)
            .await
            .map_err(query_err("save owner"))?;
        }
        for rating in step.ratings {
            if rating.replaces {
                sqlx::query("DELETE FROM csat WHERE conversation_id = ?")
                    .bind(id.0.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("replace csat"))?;
            }
            let (agent, team) = rating.agent.unzip();
            sqlx::query(
                "INSERT INTO csat (conversation_id, score, at, comment, resolved_by, agent, team, lang, topic, channel) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id.0.to_string())
            .bind(i64::from(rating.score))
            .bind(rating.at.timestamp_millis())
            .bind(&rating.comment)
            .bind(if agent.is_some() { "agent" } else { "bot" })
            .bind(agent)
            .bind(team.filter(|t| !t.is_empty()))
            .bind(&rating.lang)
            .bind(&rating.topic)
            .bind(rating.channel)
            .execute(&mut *tx)
            .await
            .map_err(query_err("record csat"))?;
        }
        for vote in step.feedback {
            sqlx::query(
                "INSERT INTO answer_feedback (conversation_id, seq, doc, lang, helpful, at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (conversation_id, seq) DO UPDATE SET helpful = excluded.helpful, at = excluded.at",
            )
            .bind(id.0.to_string())
            .bind(vote.seq.0)
            .bind(&vote.doc)
            .bind(&vote.lang)
            .bind(vote.helpful)
            .bind(vote.at.timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(query_err("record answer feedback"))?;
        }
        let updated = sqlx::query("UPDATE conversations SET state_json = ?, lang = ? WHERE id = ?")
            .bind(&step.state_json)
            .bind(&step.lang)
            .bind(id.0.to_string())
            .execute(&mut *tx)
            .await
            .map_err(query_err("save state"))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(id));
        }
        tx.commit().await.map_err(query_err("commit step"))?;
        Ok(stored)
    }

    async fn link_order(&self, order_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO order_links (order_id, conversation_id, at) VALUES (?, ?, ?)")
            .bind(order_id)
            .bind(id.0.to_string())
            .bind(at.timestamp_millis())
            .execute(&self.pool)
            .await
            .map_err(query_err("link order"))?;
        Ok(())
    }

    async fn order_links(&self) -> Result<Vec<(String, ConversationId, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query("SELECT order_id, conversation_id, at FROM order_links ORDER BY at")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("order links"))?;
        rows.iter()
            .map(|r| {
                let id: String = r.get("conversation_id");
                let conversation = Uuid::parse_str(&id)
                    .map(ConversationId)
                    .map_err(|e| StoreError::Corrupt { table: "order_links", reason: format!("id {id:?}: {e}") })?;
                Ok((r.get("order_id"), conversation, DateTime::from_timestamp_millis(r.get("at")).unwrap_or_default()))
            })
            .collect()
    }

    async fn conversations_for_order(&self, order_id: &str) -> Result<Vec<ConversationId>, StoreError> {
        let rows = sqlx::query("SELECT conversation_id FROM order_links WHERE order_id = ? ORDER BY at")
            .bind(order_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("conversations for order"))?;
        rows.iter()
            .map(|r| {
                let id: String = r.get("conversation_id");
                Uuid::parse_str(&id)
                    .map(ConversationId)
                    .map_err(|e| StoreError::Corrupt { table: "order_links", reason: format!("id {id:?}: {e}") })
            })
            .collect()
    }

    async fn owned_conversations(&self) -> Result<Vec<super::OwnedConversation>, StoreError> {
        handoff::owned(&self.pool).await
    }

    async fn queued_at(&self, id: ConversationId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<Option<i64>> = sqlx::query_scalar("SELECT queued_at FROM conversations WHERE id = ?")
            .bind(id.0.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read queued_at"))?;
        Ok(at.flatten().map(from_millis))
    }

    async fn open_offline_requests(&self, limit: u32) -> Result<Vec<super::StoredOfflineRequest>, StoreError> {
        handoff::open_offline(&self.pool, limit).await
    }

    async fn close_offline_request(&self, id: i64, agent: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        handoff::close_offline(&self.pool, id, agent, at).await
    }

    async fn quiet_conversations(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ConversationId, DateTime<Utc>)>, StoreError> {
        handoff::quiet_conversations(&self.pool, since, before, limit).await
    }

    async fn visitor_last_csat_ask(&self, id: ConversationId) -> Result<Option<DateTime<Utc>>, StoreError> {
        handoff::visitor_last_csat_ask(&self.pool, id).await
    }

    async fn earlier_conversations(
        &self,
        id: ConversationId,
        limit: u32,
    ) -> Result<Vec<super::EarlierConversation>, StoreError> {
        handoff::earlier(&self.pool, id, limit).await
    }

    async fn claim_notice(&self, event_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        sqlx::query("INSERT OR IGNORE INTO order_notices (event_id, conversation_id, claimed_at) VALUES (?, ?, ?)")
            .bind(event_id)
            .bind(id.0.to_string())
            .bind(at.timestamp_millis())
            .execute(&self.pool)
            .await
            .map_err(query_err("claim notice"))?;
        let delivered: Option<i64> =
            sqlx::query_scalar("SELECT delivered_at FROM order_notices WHERE event_id = ? AND conversation_id = ?")
                .bind(event_id)
                .bind(id.0.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(query_err("claim notice"))?;
        Ok(delivered.is_none())
    }

    async fn notice_delivered(&self, event_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE order_notices SET delivered_at = ? WHERE event_id = ? AND conversation_id = ?")
            .bind(at.timestamp_millis())
            .bind(event_id)
            .bind(id.0.to_string())
            .execute(&self.pool)
            .await
            .map_err(query_err("notice delivered"))?;
        Ok(())
    }

    async fn gaps(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<Gap>, StoreError> {
        let rows = sqlx::query(
            "SELECT conversation_id, seq, at, lang, question, near_miss_id, near_miss_lang, near_miss_score \
             FROM kb_gaps WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(since.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list gaps"))?;
        rows.iter()
            .map(|r| {
                let id: String = r.get("conversation_id");
                let conversation = Uuid::parse_str(&id)
                    .map(ConversationId)
                    .map_err(|e| StoreError::Corrupt { table: "kb_gaps", reason: format!("id {id:?}: {e}") })?;
                let near_id: Option<String> = r.get("near_miss_id");
                let near_lang: Option<String> = r.get("near_miss_lang");
                let near_score: Option<f64> = r.get("near_miss_score");
                Ok(Gap {
                    conversation,
                    seq: Seq(r.get("seq")),
                    at: DateTime::from_timestamp_millis(r.get("at")).unwrap_or_default(),
                    lang: r.get("lang"),
                    question: r.get("question"),
                    near_miss: near_id.map(|id| (id, near_lang.unwrap_or_default(), near_score.unwrap_or(0.0) as f32)),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str, client_id: Option<&str>) -> NewMessage {
        NewMessage {
            from: Sender::Visitor,
            text: text.into(),
            at: Utc::now(),
            client_id: client_id.map(Into::into),
            reply_to: None,
            extras: MessageExtras::default(),
        }
    }

    #[tokio::test]
    async fn seqs_are_dense_and_client_ids_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db")).await.expect("open");
        let id = ConversationId::new_random();
        let new = NewConversation {
            id,
            token_hash: "h".into(),
            at: Utc::now(),
            locale: None,
            page_url: None,
            opening: Vec::new(),
            state_json: None,
        };
        store.create_conversation(new).await.expect("create");
        assert_eq!(store.append_message(id, msg("a", Some("c1"))).await.expect("a").seq, Seq(1));
        assert!(matches!(
            store.append_message(id, msg("a again", Some("c1"))).await,
            Err(StoreError::DuplicateClientId)
        ));
        assert_eq!(store.append_message(id, msg("b", None)).await.expect("b").seq, Seq(2));
        let after = store.messages_after(id, Seq(1), 100, false).await.expect("read");
        assert_eq!(after.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["b"]);
        let found = store.conversation_by_token_hash("h").await.expect("find").expect("exists");
        assert_eq!(found.last_seq, Seq(2));
        let (question, answered) = store.visitor_message(id, "c1").await.expect("query").expect("stored");
        assert_eq!((question.seq, answered), (Seq(1), false), "nothing answers seq 1 yet");
        let reply = NewMessage { reply_to: Some(Seq(1)), client_id: None, ..msg("answer", None) };
        store.append_message(id, reply).await.expect("reply");
        let (_, answered) = store.visitor_message(id, "c1").await.expect("query").expect("stored");
        assert!(answered);
        assert!(store.visitor_message(id, "nope").await.expect("query").is_none());
    }
}
