//! The visitor WebSocket protocol, version 1 (`docs/protocol.md`): JSON frames in and out.
//!
//! Decoding is strict about what it needs and lenient about extra fields, and every way a
//! frame can be wrong maps to one stable [`ErrorCode`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ConversationId, Seq};

/// Stable error codes sent in `error` frames; the widget and tests match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a JSON object.
    BadJson,
    /// The object has no string `type`.
    MissingType,
    /// A `type` this protocol version does not know.
    UnknownType,
    /// A known type with missing or wrongly typed fields.
    InvalidMessage,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The frame is larger than the configured frame limit.
    FrameTooLarge,
    /// The message text is larger than the configured text limit.
    TextTooLong,
    /// The message text is empty after trimming.
    EmptyText,
    /// Something other than `hello` came first.
    HelloRequired,
    /// A second `hello` on one connection.
    AlreadyGreeted,
    /// The hello token is malformed or unknown; a fresh conversation follows.
    InvalidToken,
    /// The hello's `identity` is not signed by the shop or has expired; ignored.
    InvalidIdentity,
    /// A `choice` whose value the bot never offered.
    UnknownChoice,
    /// Too many frames in a short time.
    RateLimited,
    /// No `hello` arrived in time after connecting; the socket closes (code 4408).
    HelloTimeout,
    /// Too many new conversations from this address; the socket closes (code 1013).
    TooManyConversations,
    /// A text frame that is not valid UTF-8; the socket closes (code 1007).
    InvalidUtf8,
    /// A `rate` after the conversation's rating was given and the time to change it passed.
    AlreadyRated,
    /// A `rate` in a conversation nobody asked to rate.
    RatingNotRequested,
    /// A second `feedback` on the same answer.
    AlreadyVoted,
    /// A `feedback` whose `seq` is not a knowledge-base answer in this conversation.
    NotAnAnswer,
    /// A frame naming another conversation than the socket's own.
    NotYourConversation,
    /// The server failed to store or process; the client may retry with the same `client_id`.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::MissingType => "missing_type",
            Self::UnknownType => "unknown_type",
            Self::InvalidMessage => "invalid_message",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::FrameTooLarge => "frame_too_large",
            Self::TextTooLong => "text_too_long",
            Self::EmptyText => "empty_text",
            Self::HelloRequired => "hello_required",
            Self::AlreadyGreeted => "already_greeted",
            Self::InvalidToken => "invalid_token",
            Self::InvalidIdentity => "invalid_identity",
            Self::UnknownChoice => "unknown_choice",
            Self::RateLimited => "rate_limited",
            Self::HelloTimeout => "hello_timeout",
            Self::TooManyConversations => "too_many_conversations",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::AlreadyRated => "already_rated",
            Self::RatingNotRequested => "rating_not_requested",
            Self::AlreadyVoted => "already_voted",
            Self::NotAnAnswer => "not_an_answer",
            Self::NotYourConversation => "not_your_conversation",
            Self::Internal => "internal",
        }
    }
}

/// A decoding or validation failure, ready to be sent as an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation naming the field or limit at fault.
    pub message: String,
    /// The `client_id` of the frame at fault, when it had one.
    pub client_id: Option<String>,
}

impl ProtocolError {
    /// An error not tied to a specific client message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), client_id: None }
    }

    /// Attaches the offending frame's `client_id`.
    #[must_use]
    pub fn for_client_id(mut self, client_id: Option<String>) -> Self {
        self.client_id = client_id;
        self
    }
}

/// `hello`: opens or resumes a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Hello {
    /// Resume token from an earlier `welcome`.
    #[serde(default)]
    pub token: Option<String>,
    /// Highest seq the client already has.
    #[serde(default)]
    pub last_seq: Option<i64>,
    /// Browser or page locale (BCP 47), a language hint.
    #[serde(default)]
    pub locale: Option<String>,
    /// The page the widget is on.
    #[serde(default)]
    pub page_url: Option<String>,
    /// The shop's signed statement of who this visitor is (see `identity`).
    #[serde(default)]
    pub identity: Option<String>,
}

/// `message`: something the visitor typed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VisitorMessage {
    /// Client-chosen id that makes retries idempotent.
    pub client_id: String,
    /// The text as typed.
    pub text: String,
}

/// `choice`: the visitor clicked a quick reply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Choice {
    /// Client-chosen id that makes retries idempotent.
    pub client_id: String,
    /// The quick reply's `value`.
    pub value: String,
}

/// `rate`: the visitor rates the conversation (1–5, optional comment). One rating per
/// conversation; a changed mind within a few minutes replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rate {
    /// Client-chosen id, echoed in errors.
    pub client_id: String,
    /// 1 (poor) to 5 (great).
    pub score: u8,
    /// What the visitor adds, if anything.
    #[serde(default)]
    pub comment: Option<String>,
    /// The conversation rated; when given it must be the socket's own.
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// `feedback`: "did this help?" on one knowledge-base answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Feedback {
    /// Client-chosen id, echoed in errors.
    pub client_id: String,
    /// The answer message's seq.
    pub seq: i64,
    /// Yes or no.
    pub helpful: bool,
}

/// Every frame a visitor may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`VisitorMessage`].
    Message(VisitorMessage),
    /// See [`Choice`].
    Choice(Choice),
    /// See [`Rate`].
    Rate(Rate),
    /// See [`Feedback`].
    Feedback(Feedback),
    /// The visitor is typing.
    Typing,
}

/// Limits applied while decoding, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted text frame in bytes.
    pub max_frame_bytes: usize,
    /// Largest accepted visitor text in bytes.
    pub max_text_bytes: usize,
}

const MAX_CLIENT_ID_LEN: usize = 64;

impl ClientFrame {
    /// Decodes and validates one text frame.
    ///
    /// # Errors
    /// A [`ProtocolError`] with the specific code for whatever is wrong with the frame.
    pub fn decode(frame: &str, limits: Limits) -> Result<Self, ProtocolError> {
        if frame.len() > limits.max_frame_bytes {
            return Err(ProtocolError::new(
                ErrorCode::FrameTooLarge,
                format!("Frame is {} bytes; the limit is {}.", frame.len(), limits.max_frame_bytes),
            ));
        }
        let value: Value = serde_json::from_str(frame)
            .map_err(|e| ProtocolError::new(ErrorCode::BadJson, format!("Frame is not valid JSON: {e}.")))?;
        let Value::Object(map) = &value else {
            return Err(ProtocolError::new(ErrorCode::BadJson, "Frame must be a JSON object."));
        };
        let client_id = map.get("client_id").and_then(Value::as_str).map(str::to_owned);
        let Some(kind) = map.get("type").and_then(Value::as_str) else {
            return Err(ProtocolError::new(ErrorCode::MissingType, "Frame has no string field \"type\".")
                .for_client_id(client_id));
        };
        let decoded = match kind {
            "hello" => parse_fields(kind, value.clone()).map(Self::Hello),
            "message" => parse_fields(kind, value.clone()).map(Self::Message),
            "choice" => parse_fields(kind, value.clone()).map(Self::Choice),
            "rate" => parse_fields(kind, value.clone()).map(Self::Rate),
            "feedback" => parse_fields(kind, value.clone()).map(Self::Feedback),
            "typing" => Ok(Self::Typing),
            other => Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!("Unknown message type \"{}\".", truncate(other, 40)),
            )),
        };
        decoded.and_then(|frame| frame.validate(limits)).map_err(|e| e.for_client_id(client_id))
    }

    fn validate(self, limits: Limits) -> Result<Self, ProtocolError> {
        match &self {
            Self::Message(m) => {
                validate_client_id(&m.client_id)?;
                if m.text.len() > limits.max_text_bytes {
                    return Err(ProtocolError::new(
                        ErrorCode::TextTooLong,
                        format!("Message text is {} bytes; the limit is {}.", m.text.len(), limits.max_text_bytes),
                    ));
                }
                if !has_visible_text(&m.text) {
                    return Err(ProtocolError::new(
                        ErrorCode::EmptyText,
                        "Message text is empty (only spaces or invisible characters).",
                    ));
                }
            }
            Self::Choice(c) => {
                validate_client_id(&c.client_id)?;
                if c.value.is_empty() || c.value.len() > 200 {
                    return Err(ProtocolError::new(ErrorCode::InvalidMessage, "Field \"value\" must be 1–200 bytes."));
                }
            }
            Self::Rate(r) => {
                validate_client_id(&r.client_id)?;
                if !(1..=5).contains(&r.score) {
                    return Err(ProtocolError::new(ErrorCode::InvalidMessage, "Field \"score\" must be 1 to 5."));
                }
                if r.comment.as_ref().is_some_and(|c| c.len() > limits.max_text_bytes) {
                    return Err(ProtocolError::new(
                        ErrorCode::TextTooLong,
                        format!("The comment is over the limit of {} bytes.", limits.max_text_bytes),
                    ));
                }
            }
            Self::Feedback(f) => {
                validate_client_id(&f.client_id)?;
                if f.seq < 1 {
                    return Err(ProtocolError::new(ErrorCode::InvalidMessage, "Field \"seq\" must be ≥ 1."));
                }
            }
            Self::Hello(h) => {
                if h.last_seq.is_some_and(|s| s < 0) {
                    return Err(ProtocolError::new(ErrorCode::InvalidMessage, "Field \"last_seq\" must be ≥ 0."));
                }
            }
            Self::Typing => {}
        }
        Ok(self)
    }
}

/// True when the text has something a person can see: not only whitespace, control or
/// invisible formatting characters (zero-width spaces and joiners, direction marks,
/// byte-order marks, variation selectors).
#[must_use]
pub fn has_visible_text(text: &str) -> bool {
    text.chars().any(|c| !(c.is_whitespace() || c.is_control() || is_invisible_format(c)))
}

fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

fn validate_client_id(client_id: &str) -> Result<(), ProtocolError> {
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!("Field \"client_id\" must be 1–{MAX_CLIENT_ID_LEN} bytes."),
        ));
    }
    Ok(())
}

fn parse_fields<T: serde::de::DeserializeOwned>(kind: &str, value: Value) -> Result<T, ProtocolError> {
    serde_json::from_value(value)
        .map_err(|e| ProtocolError::new(ErrorCode::InvalidMessage, format!("Invalid \"{kind}\" message: {e}.")))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// The website visitor.
    Visitor,
    /// The bot.
    Bot,
    /// A human agent.
    Agent,
    /// The system (handoff notices and similar).
    System,
}

impl Sender {
    /// Name used in storage and on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Bot => "bot",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "visitor" => Self::Visitor,
            "bot" => Self::Bot,
            "agent" => Self::Agent,
            "system" => Self::System,
            _ => return None,
        })
    }
}

/// Where a knowledge-base answer came from, so the visitor (and tests) can check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `faq` or `article`.
    pub kind: String,
    /// FAQ id or article slug.
    pub id: String,
    /// Language of the answering document.
    pub lang: String,
    /// Article title or FAQ question.
    pub title: String,
    /// Server-relative URL of the full text.
    pub url: String,
    /// Answer confidence in 0..1.
    pub score: f32,
}

/// A button the widget shows under a bot message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    /// Text on the button (and of the echoed visitor message).
    pub label: String,
    /// Machine value sent back in `choice`.
    pub value: String,
}

/// A link to a knowledge-base article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleLink {
    /// Article slug.
    pub id: String,
    /// Article language.
    pub lang: String,
    /// Article title.
    pub title: String,
    /// Server-relative URL.
    pub url: String,
}

/// Optional parts of a message beyond its text, stored alongside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageExtras {
    /// Knowledge-base origin of a bot answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Quick-reply buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
    /// Related articles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub articles: Vec<ArticleLink>,
    /// The person who wrote an agent message (or a private note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    /// A private note for agents: never sent to or replayed for a visitor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// The message asks for a 1–5 rating: the widget shows its rating control (with an
    /// optional comment, sent as a `rate` frame) instead of the quick replies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rating: bool,
}

/// A person writing in a conversation, as visitors see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: String,
}

impl MessageExtras {
    /// True when nothing beyond the text is attached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.quick_replies.is_empty()
            && self.articles.is_empty()
            && self.author.is_none()
            && !self.private
            && !self.rating
    }
}

/// A stored conversation message as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Position in the conversation.
    pub seq: Seq,
    /// Author.
    pub from: Sender,
    /// Plain text.
    pub text: String,
    /// RFC 3339 timestamp with milliseconds, UTC.
    pub at: String,
    /// Echo of the visitor's `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The visitor message this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Seq>,
    /// Source, quick replies, articles.
    #[serde(flatten)]
    pub extras: MessageExtras,
}

/// Every frame the server sends to a visitor.
#[allow(clippy::large_enum_variant, reason = "frames are short-lived; most are messages anyway")]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello`.
    Welcome {
        /// The conversation token to keep.
        token: String,
        /// Public id of the conversation.
        conversation_id: ConversationId,
        /// Whether the hello's token was accepted.
        resumed: bool,
        /// Highest stored seq right now.
        last_seq: Seq,
        /// The conversation's language.
        lang: String,
        /// The widget's labels in that language (`title`, `placeholder`, `send`, …).
        ui: std::collections::BTreeMap<String, String>,
    },
    /// A conversation message.
    Message(ChatMessage),
    /// The visitor's place in the queue for a person changed.
    Queue {
        /// 1 = next.
        position: usize,
        /// Estimated wait in whole minutes, from recent handling times.
        eta_minutes: u32,
    },
    /// The agent is typing.
    Typing {
        /// The agent's display name.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A rejected frame or a failure.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Explanation.
        message: String,
        /// The offending frame's `client_id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl From<ProtocolError> for ServerFrame {
    fn from(e: ProtocolError) -> Self {
        Self::Error { code: e.code, message: e.message, client_id: e.client_id }
    }
}

impl ServerFrame {
    /// Serializes the frame; serialization of these types cannot fail.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"type":"error","code":"internal","message":"encoding failed: {e}"}}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_frame_bytes: 1024, max_text_bytes: 64 };

    fn code(frame: &str) -> ErrorCode {
        ClientFrame::decode(frame, LIMITS).expect_err("should fail").code
    }

    #[test]
    fn decodes_known_frames() {
        let hello = ClientFrame::decode(r#"{"type":"hello","token":"x","last_seq":3,"extra":1}"#, LIMITS);
        assert!(matches!(hello, Ok(ClientFrame::Hello(h)) if h.last_seq == Some(3)));
        let msg = ClientFrame::decode(r#"{"type":"message","client_id":"a","text":"hi"}"#, LIMITS);
        assert!(matches!(msg, Ok(ClientFrame::Message(m)) if m.text == "hi"));
    }

    #[test]
    fn each_bad_frame_has_its_code() {
        assert_eq!(code("{nope"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"text":"x"}"#), ErrorCode::MissingType);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"message","text":"x"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"message","client_id":"a","text":5}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"message","client_id":"a","text":"   "}"#), ErrorCode::EmptyText);
        assert_eq!(
            code(r#"{"type":"message","client_id":"a","text":"\u200b\u200d\ufeff \u2060"}"#),
            ErrorCode::EmptyText
        );
        let long = format!(r#"{{"type":"message","client_id":"a","text":"{}"}}"#, "x".repeat(65));
        assert_eq!(code(&long), ErrorCode::TextTooLong);
        assert_eq!(code(&" ".repeat(2000)), ErrorCode::FrameTooLarge);
        assert_eq!(code(r#"{"type":"rate","client_id":"r","score":6}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"rate","client_id":"r","score":0}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"rate","client_id":"r","score":"5"}"#), ErrorCode::InvalidMessage);
        let long = format!(r#"{{"type":"rate","client_id":"r","score":4,"comment":"{}"}}"#, "x".repeat(65));
        assert_eq!(code(&long), ErrorCode::TextTooLong);
        assert_eq!(code(r#"{"type":"feedback","client_id":"f","seq":0,"helpful":true}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"feedback","client_id":"f","seq":3}"#), ErrorCode::InvalidMessage);
    }

    #[test]
    fn decodes_rating_and_feedback() {
        let rate = ClientFrame::decode(r#"{"type":"rate","client_id":"r","score":4,"comment":"ok"}"#, LIMITS);
        assert!(matches!(rate, Ok(ClientFrame::Rate(r)) if r.score == 4 && r.comment.as_deref() == Some("ok")));
        let fb = ClientFrame::decode(r#"{"type":"feedback","client_id":"f","seq":3,"helpful":false}"#, LIMITS);
        assert!(matches!(fb, Ok(ClientFrame::Feedback(f)) if f.seq == 3 && !f.helpful));
    }

    #[test]
    fn visible_text() {
        assert!(has_visible_text("hi\u{200b}"));
        assert!(has_visible_text("👍"), "emoji are text");
        assert!(has_visible_text("你好"));
        assert!(!has_visible_text("\u{200b}\u{200c}\u{200d}\u{2063}\u{fe0f}\u{feff}\t"));
    }

    #[test]
    fn errors_carry_the_client_id() {
        let err =
            ClientFrame::decode(r#"{"type":"message","client_id":"c7","text":""}"#, LIMITS).expect_err("empty text");
        assert_eq!(err.client_id.as_deref(), Some("c7"));
    }
}
