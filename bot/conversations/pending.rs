//! Conversations nobody has written in yet: held in memory only, so a visitor who opens
//! the widget and leaves (or a client that floods `hello`) costs no disk. The first thing
//! the visitor writes stores the conversation with its greeting, atomically.
//!
//! The table is bounded: past its capacity the oldest entry is forgotten, and entries
//! older than [`PENDING_TTL`] expire. A forgotten conversation's token is unknown to the
//! next `hello`, which then starts a fresh one (a greeting is all that is lost).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::ConversationState;
use crate::ids::{ConversationId, Seq};
use crate::protocol::ChatMessage;
use crate::store::{ConversationRecord, NewConversation, format_at};

/// How long a conversation nobody wrote in stays resumable.
pub const PENDING_TTL: Duration = Duration::from_secs(60 * 60);

/// A conversation that exists only in memory so far.
#[derive(Debug, Clone)]
pub struct PendingConversation {
    /// What the store will get: id, token hash, locale, page, and the greeting as
    /// `opening` (seq 1, 2 …); its `state_json` is filled in from `state` when stored.
    pub new: NewConversation,
    /// Engine state after the greeting.
    pub state: ConversationState,
    /// When it was opened, on the monotonic clock (for expiry).
    pub born: Instant,
}

impl PendingConversation {
    /// How it looks to the socket: a conversation whose messages are the greeting.
    #[must_use]
    pub fn record(&self) -> ConversationRecord {
        ConversationRecord {
            id: self.new.id,
            created_at: self.new.at,
            locale: self.new.locale.clone(),
            page_url: self.new.page_url.clone(),
            lang: Some(self.state.lang.clone()),
            state_json: None,
            last_seq: Seq(i64::try_from(self.new.opening.len()).unwrap_or(0)),
        }
    }

    /// The greeting as sent, after `after`.
    #[must_use]
    pub fn messages_after(&self, after: Seq) -> Vec<ChatMessage> {
        self.new
            .opening
            .iter()
            .zip(1..)
            .filter(|(_, seq)| *seq > after.0)
            .map(|(m, seq)| ChatMessage {
                seq: Seq(seq),
                from: m.from,
                text: m.text.clone(),
                at: format_at(m.at),
                client_id: None,
                reply_to: m.reply_to,
                extras: m.extras.clone(),
            })
            .collect()
    }

    /// What the store needs to keep it.
    ///
    /// # Errors
    /// When the engine state cannot be serialized.
    pub fn to_new(&self) -> Result<NewConversation, serde_json::Error> {
        Ok(NewConversation { state_json: Some(serde_json::to_string(&self.state)?), ..self.new.clone() })
    }
}

/// The bounded table of pending conversations, by id and by token.
#[derive(Debug)]
pub struct PendingTable {
    capacity: usize,
    by_id: HashMap<ConversationId, Arc<PendingConversation>>,
    by_token: HashMap<String, ConversationId>,
    /// Ids in the order they were opened; may hold ids already removed.
    order: VecDeque<ConversationId>,
}

impl PendingTable {
    /// An empty table holding at most `capacity` conversations.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { capacity, by_id: HashMap::new(), by_token: HashMap::new(), order: VecDeque::new() }
    }

    /// Adds a conversation, first dropping expired ones and, at capacity, the oldest.
    pub fn insert(&mut self, pending: PendingConversation, now: Instant) {
        while let Some(oldest) = self.order.front().copied() {
            let expired = self.by_id.get(&oldest).is_none_or(|p| now.duration_since(p.born) > PENDING_TTL);
            if !(expired || self.by_id.len() >= self.capacity) {
                break;
            }
            self.order.pop_front();
            self.remove(oldest);
        }
        let id = pending.new.id;
        self.order.push_back(id);
        self.by_token.insert(pending.new.token_hash.clone(), id);
        self.by_id.insert(id, Arc::new(pending));
    }

    /// The pending conversation with this id.
    #[must_use]
    pub fn get(&self, id: ConversationId) -> Option<Arc<PendingConversation>> {
        self.by_id.get(&id).cloned()
    }

    /// The pending conversation a token belongs to, unless it expired.
    #[must_use]
    pub fn by_token(&self, token_hash: &str, now: Instant) -> Option<Arc<PendingConversation>> {
        let id = self.by_token.get(token_hash)?;
        self.by_id.get(id).filter(|p| now.duration_since(p.born) <= PENDING_TTL).cloned()
    }

    /// Forgets a conversation (it was stored, or expired).
    pub fn remove(&mut self, id: ConversationId) {
        if let Some(p) = self.by_id.remove(&id) {
            self.by_token.remove(&p.new.token_hash);
        }
        if self.order.len() > 2 * self.capacity.max(16) {
            let by_id = &self.by_id;
            self.order.retain(|id| by_id.contains_key(id));
        }
    }

    /// How many are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when none are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn pending(n: u8, born: Instant) -> PendingConversation {
        let new = NewConversation {
            id: ConversationId::new_random(),
            token_hash: format!("token-{n}"),
            at: Utc::now(),
            locale: None,
            page_url: None,
            opening: Vec::new(),
            state_json: None,
        };
        PendingConversation { new, state: ConversationState::new(None), born }
    }

    #[test]
    fn bounded_oldest_first_and_expiring() {
        let start = Instant::now();
        let mut table = PendingTable::new(3);
        let first = pending(1, start);
        let first_id = first.new.id;
        table.insert(first, start);
        for n in 2..=4 {
            table.insert(pending(n, start), start);
        }
        assert_eq!(table.len(), 3);
        assert!(table.get(first_id).is_none(), "the oldest is forgotten at capacity");
        assert!(table.by_token("token-1", start).is_none());
        assert!(table.by_token("token-4", start).is_some());
        let later = start + PENDING_TTL + Duration::from_secs(1);
        assert!(table.by_token("token-4", later).is_none(), "expired tokens do not resume");
        table.insert(pending(5, later), later);
        assert_eq!(table.len(), 1, "expired entries are dropped on insert");
    }
}
