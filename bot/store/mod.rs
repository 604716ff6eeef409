//! Persistence of conversations and messages behind the [`Store`] trait.
//!
//! The store holds no business rules: it assigns message seqs atomically, enforces the
//! one-message-per-`client_id` rule with a unique index, and returns what was asked.
//! SQLite is the embedded default; a PostgreSQL backend implements the same trait.

mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::{ConversationId, Seq};
use crate::protocol::{ChatMessage, MessageExtras, Sender};

pub use sqlite::SqliteStore;

/// Storage failures, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A visitor message with this `client_id` is already stored in the conversation.
    #[error("client_id already stored in this conversation")]
    DuplicateClientId,
    /// The conversation does not exist.
    #[error("conversation {0} not found")]
    NotFound(ConversationId),
    /// Opening or migrating the database failed.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// Database file.
        path: String,
        /// Underlying error.
        source: sqlx::Error,
    },
    /// Schema migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error during {op}: {source}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// Underlying error.
        source: sqlx::Error,
    },
    /// A stored row could not be decoded.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRecord {
    /// Conversation id.
    pub id: ConversationId,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Locale from the widget's first hello.
    pub locale: Option<String>,
    /// Page the conversation started on.
    pub page_url: Option<String>,
    /// Detected conversation language.
    pub lang: Option<String>,
    /// Serialized engine state, if any was saved.
    pub state_json: Option<String>,
    /// Highest seq stored.
    pub last_seq: Seq,
}

/// A message to append; the store assigns its seq.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Author.
    pub from: Sender,
    /// Plain text.
    pub text: String,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Visitor's idempotency key.
    pub client_id: Option<String>,
    /// The message this answers.
    pub reply_to: Option<Seq>,
    /// Source, quick replies, articles.
    pub extras: MessageExtras,
}

/// What a new conversation starts with.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// Fresh id.
    pub id: ConversationId,
    /// SHA-256 of the visitor token.
    pub token_hash: String,
    /// Start time.
    pub at: DateTime<Utc>,
    /// Widget locale.
    pub locale: Option<String>,
    /// Widget page.
    pub page_url: Option<String>,
}

/// A question that fell back, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// Conversation it was asked in.
    pub conversation: ConversationId,
    /// The visitor message.
    pub seq: Seq,
    /// When.
    pub at: DateTime<Utc>,
    /// Conversation language at the time.
    pub lang: String,
    /// The question.
    pub question: String,
    /// Best candidate below the answer threshold: (document id, its language, confidence).
    pub near_miss: Option<(String, String, f32)>,
}

/// Durable conversation storage; every backend gives the same guarantees.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a conversation.
    async fn create_conversation(&self, new: NewConversation) -> Result<ConversationRecord, StoreError>;
    /// Finds the conversation a token hash belongs to.
    async fn conversation_by_token_hash(&self, token_hash: &str) -> Result<Option<ConversationRecord>, StoreError>;
    /// Loads a conversation by id.
    async fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>, StoreError>;
    /// Appends a message with the next seq, atomically; a repeated visitor `client_id` fails
    /// with [`StoreError::DuplicateClientId`] and stores nothing.
    async fn append_message(&self, id: ConversationId, msg: NewMessage) -> Result<ChatMessage, StoreError>;
    /// Messages with seq greater than `after`, in order, at most `limit`.
    async fn messages_after(&self, id: ConversationId, after: Seq, limit: u32) -> Result<Vec<ChatMessage>, StoreError>;
    /// The stored visitor message with this `client_id`, and whether anything answers it
    /// yet (so a retry after a failed reply can be answered instead of ignored).
    async fn visitor_message(
        &self,
        id: ConversationId,
        client_id: &str,
    ) -> Result<Option<(ChatMessage, bool)>, StoreError>;
    /// Saves the engine state and detected language.
    async fn save_state(&self, id: ConversationId, lang: Option<&str>, state_json: &str) -> Result<(), StoreError>;
    /// Records an unanswered question (once per visitor message).
    async fn record_gap(&self, gap: Gap) -> Result<(), StoreError>;
    /// Unanswered questions since `since`, newest first, at most `limit`.
    async fn gaps(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<Gap>, StoreError>;
    /// Remembers that a conversation proved it owns an order (for proactive notices).
    async fn link_order(&self, order_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Every order–conversation link, with when it was made.
    async fn order_links(&self) -> Result<Vec<(String, ConversationId, DateTime<Utc>)>, StoreError>;
    /// Conversations linked to an order, oldest link first.
    async fn conversations_for_order(&self, order_id: &str) -> Result<Vec<ConversationId>, StoreError>;
    /// Claims delivery of an order event into a conversation: true unless it was already
    /// delivered there.
    async fn claim_notice(&self, event_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Marks a claimed notice delivered.
    async fn notice_delivered(&self, event_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Keeps a satisfaction rating (1–5).
    async fn record_csat(&self, id: ConversationId, score: u8, at: DateTime<Utc>) -> Result<(), StoreError>;
}
