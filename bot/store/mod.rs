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

pub use sqlite::{SqliteStore, begin_write, format_at};

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
    /// Messages shown before the conversation was stored (the greeting); they get seq 1, 2 …
    pub opening: Vec<NewMessage>,
    /// Engine state after the opening messages.
    pub state_json: Option<String>,
}

/// Whose data a privacy request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitorSelector {
    /// One conversation.
    Conversation(ConversationId),
    /// The shop's id of a customer, from verified identities.
    VisitorId(String),
    /// An e-mail address: conversations where it was proven, of orders placed with it, or
    /// that mention it.
    Email(String),
}

/// Everything stored about one conversation, for a privacy export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationExport {
    /// Conversation id.
    pub id: ConversationId,
    /// Started (RFC 3339).
    pub created_at: String,
    /// Last activity (RFC 3339).
    pub updated_at: String,
    /// Widget locale.
    pub locale: Option<String>,
    /// Page it started on.
    pub page_url: Option<String>,
    /// Conversation language.
    pub lang: Option<String>,
    /// The shop's customer id, if verified.
    pub visitor_id: Option<String>,
    /// E-mail address the visitor proved.
    pub contact_email: Option<String>,
    /// The transcript.
    pub messages: Vec<ChatMessage>,
    /// Questions recorded as unanswered: (seq, text).
    pub unanswered: Vec<(Seq, String)>,
    /// Satisfaction ratings: (score, when, the visitor's comment).
    pub ratings: Vec<(u8, String, Option<String>)>,
    /// "Did this help?" votes: (answer seq, yes or no).
    pub answer_votes: Vec<(Seq, bool)>,
    /// Orders linked to the conversation.
    pub orders: Vec<String>,
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

/// What one engine step stores, all at once (see [`Store::commit_step`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecords {
    /// Messages, in order.
    pub messages: Vec<NewMessage>,
    /// Questions that fell back.
    pub gaps: Vec<Gap>,
    /// Satisfaction ratings given in the step.
    pub ratings: Vec<Rating>,
    /// "Did this help?" votes on answers.
    pub feedback: Vec<AnswerVote>,
    /// The conversation language after the step.
    pub lang: String,
    /// The engine state after the step, serialized.
    pub state_json: String,
    /// The new owner, when the step changed it.
    pub owner: Option<OwnerRecord>,
    /// Requests to be contacted later.
    pub offline_requests: Vec<OfflineRequest>,
    /// What happened, for metrics (stored in the same transaction as the messages).
    pub events: Vec<crate::metrics::NewEvent>,
}

/// A satisfaction rating with what it rates: who resolved the chat, in which language,
/// about what, through which channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    /// 1 (poor) to 5 (great).
    pub score: u8,
    /// What the visitor added, if anything.
    pub comment: Option<String>,
    /// The agent who resolved the chat (and their team); `None`: the bot.
    pub agent: Option<(String, String)>,
    /// Conversation language.
    pub lang: String,
    /// `flow:<id>`, `faq:<id>` or `article:<slug>`: what the chat was about, when known.
    pub topic: Option<String>,
    /// Where it was given (`widget`).
    pub channel: &'static str,
    /// When.
    pub at: DateTime<Utc>,
    /// It replaces the conversation's earlier rating (a changed mind within the window).
    pub replaces: bool,
}

/// A visitor's "did this help?" on one answer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerVote {
    /// The bot message voted on.
    pub seq: Seq,
    /// `faq:<id>` or `article:<slug>`.
    pub doc: String,
    /// The document's language.
    pub lang: String,
    /// Yes or no.
    pub helpful: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// A conversation's owner as stored in its indexed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    /// `bot`, `queued`, `agent`, `closed`.
    pub kind: &'static str,
    /// Agent id while `agent`.
    pub agent: Option<String>,
    /// Team of the queue or of the agent.
    pub team: Option<String>,
    /// Why the chat went to people.
    pub reason: Option<String>,
    /// When it changed.
    pub at: DateTime<Utc>,
}

/// A request to be contacted later, filed when nobody could take the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineRequest {
    /// Team it goes to.
    pub team: String,
    /// Why the visitor wanted a person.
    pub reason: String,
    /// `email` or `phone`.
    pub channel: String,
    /// Address or number.
    pub contact: String,
    /// What the visitor wrote.
    pub details: String,
    /// The visitor message with the details.
    pub seq: Seq,
    /// When.
    pub at: DateTime<Utc>,
}

/// A chat people own (queued or held), as stored: what the desk rebuilds its queue
/// and its agents' chats from after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedConversation {
    /// The conversation.
    pub id: ConversationId,
    /// The agent holding it; `None` while it waits in a queue.
    pub held_by: Option<String>,
    /// The team whose queue it is in (or the holder took it for); empty if never placed.
    pub team: String,
    /// Why it went to people.
    pub reason: String,
    /// Conversation language.
    pub lang: String,
    /// When it first joined a queue: its place in line.
    pub queued_at: Option<DateTime<Utc>>,
    /// When the holder took it.
    pub assigned_at: Option<DateTime<Utc>>,
}

/// A request to be contacted later, filed when nobody could take a chat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredOfflineRequest {
    /// Row id (agents mark it handled by this id).
    pub id: i64,
    /// The conversation it came from.
    pub conversation: ConversationId,
    /// Team it was meant for.
    pub team: String,
    /// Why the visitor wanted a person.
    pub reason: String,
    /// `email` or `phone`.
    pub channel: String,
    /// The address or number.
    pub contact: String,
    /// What the visitor needs, in their words.
    pub details: String,
    /// Conversation language.
    pub lang: String,
    /// When it was filed.
    #[serde(serialize_with = "serialize_at")]
    pub at: DateTime<Utc>,
}

/// Another conversation of the same person, for the agent's context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EarlierConversation {
    /// Its id.
    pub id: ConversationId,
    /// When it started.
    #[serde(serialize_with = "serialize_at")]
    pub created_at: DateTime<Utc>,
    /// Its language.
    pub lang: Option<String>,
    /// What the visitor asked first.
    pub first_question: Option<String>,
}

fn serialize_at<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_at(*at))
}

/// Unanswered questions kept per conversation: one visitor cannot flood the editors' list.
pub const MAX_GAPS_PER_CONVERSATION: i64 = 20;

/// Durable conversation storage; every backend gives the same guarantees.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a conversation with its opening messages and state, atomically.
    async fn create_conversation(&self, new: NewConversation) -> Result<ConversationRecord, StoreError>;
    /// Records who the visitor is (the shop's customer id, an e-mail they proved); `None`
    /// leaves a value as it was.
    async fn set_visitor(
        &self,
        id: ConversationId,
        visitor_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Deletes at most `batch` conversations with no activity since `before` (except those
    /// in `keep`), with everything attached to them; returns the ones deleted.
    async fn delete_idle_conversations(
        &self,
        before: DateTime<Utc>,
        keep: &[ConversationId],
        batch: u32,
    ) -> Result<Vec<ConversationId>, StoreError>;
    /// The conversations a privacy request is about.
    async fn find_conversations(&self, who: &VisitorSelector) -> Result<Vec<ConversationId>, StoreError>;
    /// Everything stored about a conversation.
    async fn export_conversation(&self, id: ConversationId) -> Result<Option<ConversationExport>, StoreError>;
    /// Deletes conversations with everything attached; returns how many existed.
    async fn delete_conversations(&self, ids: &[ConversationId]) -> Result<u64, StoreError>;
    /// Finds the conversation a token hash belongs to.
    async fn conversation_by_token_hash(&self, token_hash: &str) -> Result<Option<ConversationRecord>, StoreError>;
    /// Loads a conversation by id.
    async fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>, StoreError>;
    /// Appends a message with the next seq, atomically; a repeated visitor `client_id` fails
    /// with [`StoreError::DuplicateClientId`] and stores nothing.
    async fn append_message(&self, id: ConversationId, msg: NewMessage) -> Result<ChatMessage, StoreError>;
    /// Messages with seq greater than `after`, in order, at most `limit`; private notes
    /// only when `with_private` (agents), never for a visitor.
    async fn messages_after(
        &self,
        id: ConversationId,
        after: Seq,
        limit: u32,
        with_private: bool,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// The stored visitor message with this `client_id`, and whether anything answers it
    /// yet (so a retry after a failed reply can be answered instead of ignored).
    async fn visitor_message(
        &self,
        id: ConversationId,
        client_id: &str,
    ) -> Result<Option<(ChatMessage, bool)>, StoreError>;
    /// Stores everything one engine step decided in one transaction: its messages (each
    /// with the next seq), unanswered questions (once per question text, at most
    /// [`MAX_GAPS_PER_CONVERSATION`] per conversation), a rating, and the new state. Either
    /// all of it is stored or none; returns the stored messages.
    async fn commit_step(&self, id: ConversationId, step: StepRecords) -> Result<Vec<ChatMessage>, StoreError>;
    /// Unanswered questions since `since`, newest first, at most `limit`.
    async fn gaps(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<Gap>, StoreError>;
    /// Remembers that a conversation proved it owns an order (for proactive notices).
    async fn link_order(&self, order_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Every order–conversation link, with when it was made.
    async fn order_links(&self) -> Result<Vec<(String, ConversationId, DateTime<Utc>)>, StoreError>;
    /// Conversations linked to an order, oldest link first.
    async fn conversations_for_order(&self, order_id: &str) -> Result<Vec<ConversationId>, StoreError>;
    /// Every chat people own (queued or held), oldest in line first.
    async fn owned_conversations(&self) -> Result<Vec<OwnedConversation>, StoreError>;
    /// When the chat joined a queue (while queued or held), for its packet.
    async fn queued_at(&self, id: ConversationId) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Requests to be contacted later nobody has handled yet, oldest first.
    async fn open_offline_requests(&self, limit: u32) -> Result<Vec<StoredOfflineRequest>, StoreError>;
    /// Marks a request handled; false when it was handled already or does not exist.
    async fn close_offline_request(&self, id: i64, agent: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Conversations the bot holds whose last message is between `since` and `before`, in
    /// which the visitor wrote and nobody was asked for a rating yet: candidates for a
    /// rating request after inactivity. With the time of their last message.
    async fn quiet_conversations(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ConversationId, DateTime<Utc>)>, StoreError>;
    /// When the same person (verified visitor id or e-mail) was last asked for a rating
    /// in another conversation.
    async fn visitor_last_csat_ask(&self, id: ConversationId) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Other conversations of the same person (same verified id, e-mail or order), newest first.
    async fn earlier_conversations(
        &self,
        id: ConversationId,
        limit: u32,
    ) -> Result<Vec<EarlierConversation>, StoreError>;
    /// Claims delivery of an order event into a conversation: true unless it was already
    /// delivered there.
    async fn claim_notice(&self, event_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Marks a claimed notice delivered.
    async fn notice_delivered(&self, event_id: &str, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError>;
}
