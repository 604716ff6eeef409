//! Live conversations: one task (an actor with a mailbox) owns each conversation.
//!
//! The actor is the only writer of its conversation: it stores the visitor's message,
//! steps the engine, carries out the effects (store, then publish; search) and saves the
//! engine state. Sockets subscribe to its broadcast of stored messages. Actors start on
//! demand and retire when nobody has been subscribed for a while.

use std::collections::BTreeMap;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::AnswerPolicy;
use crate::engine::{self, ConversationState, Effect, Event, LookupOutcome, Reply};
use crate::flows::BotScript;
use crate::ids::{ConversationId, Seq};
use crate::kb::SharedKb;
use crate::protocol::{ChatMessage, ErrorCode, Hello, MessageExtras, ProtocolError, Sender};
use crate::store::{ConversationRecord, Gap, NewConversation, NewMessage, Store, StoreError};
use crate::token::VisitorToken;

const MAILBOX: usize = 32;
const LIVE_BUFFER: usize = 64;
const IDLE_RETIRE: Duration = Duration::from_secs(120);
const SEARCH_LIMIT: usize = 8;

/// What a visitor sent, already decoded and validated by the socket.
#[derive(Debug, Clone)]
pub enum VisitorInput {
    /// Typed text.
    Text(String),
    /// A quick-reply value.
    Choice(String),
}

enum Command {
    Visitor {
        client_id: String,
        input: VisitorInput,
        done: oneshot::Sender<Result<(), ProtocolError>>,
    },
    /// Start a flow the visitor did not ask for (a proactive notice); `done` says whether
    /// its messages were stored.
    Notice {
        flow: String,
        order: BTreeMap<String, String>,
        done: oneshot::Sender<bool>,
    },
}

#[derive(Clone)]
struct ActorHandle {
    mailbox: mpsc::Sender<Command>,
    live: broadcast::Sender<Arc<ChatMessage>>,
}

/// A socket's link to a conversation: send commands, receive stored messages live.
pub struct Attachment {
    /// The conversation.
    pub id: ConversationId,
    mailbox: mpsc::Sender<Command>,
    /// Every message stored from now on, in seq order.
    pub live: broadcast::Receiver<Arc<ChatMessage>>,
}

impl Attachment {
    /// Hands a visitor message to the conversation and waits until it is stored and answered.
    ///
    /// # Errors
    /// `unknown_choice` for a choice never offered, `internal` when the conversation failed.
    pub async fn send(&self, client_id: String, input: VisitorInput) -> Result<(), ProtocolError> {
        let (done, result) = oneshot::channel();
        let internal = || ProtocolError::new(ErrorCode::Internal, "The conversation is unavailable; please retry.");
        self.mailbox.send(Command::Visitor { client_id, input, done }).await.map_err(|_| internal())?;
        result.await.map_err(|_| internal())?
    }
}

/// Looks an order up for a flow and checks the visitor's proof of ownership (the e-mail
/// address or postcode on the order). Implemented over the configured order source.
#[async_trait::async_trait]
pub trait OrderLookup: Send + Sync {
    /// Never tells an unknown order from a wrong proof.
    async fn lookup(&self, order_id: &str, proof: &str) -> LookupOutcome;
}

struct Shared {
    store: Arc<dyn Store>,
    kb: SharedKb,
    script: Arc<BotScript>,
    policy: AnswerPolicy,
    orders: Option<Arc<dyn OrderLookup>>,
    actors: Mutex<HashMap<ConversationId, ActorHandle>>,
}

/// The result of [`Hub::open`].
pub struct Opened {
    /// The token the client must keep.
    pub token: VisitorToken,
    /// The conversation.
    pub record: ConversationRecord,
    /// True when the hello's token was accepted.
    pub resumed: bool,
    /// True when the hello carried a token that was malformed or unknown.
    pub token_rejected: bool,
}

fn truncate(s: &str, max_bytes: usize) -> String {
    let mut end = s.len().min(max_bytes);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Registry of live conversation actors; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl Hub {
    /// A hub over a store, a knowledge base and the bot's script.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        kb: SharedKb,
        script: Arc<BotScript>,
        policy: AnswerPolicy,
        orders: Option<Arc<dyn OrderLookup>>,
    ) -> Self {
        Self { shared: Arc::new(Shared { store, kb, script, policy, orders, actors: Mutex::new(HashMap::new()) }) }
    }

    /// The store, for reading transcripts.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Opens the conversation a hello asks for: the one its token belongs to, or a fresh
    /// one when there is no token or it is malformed or unknown (never someone else's).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn open(&self, hello: &Hello) -> Result<Opened, StoreError> {
        if let Some(raw) = hello.token.as_deref() {
            if let Some(token) = VisitorToken::parse(raw) {
                if let Some(record) = self.shared.store.conversation_by_token_hash(&token.hash()).await? {
                    return Ok(Opened { token, record, resumed: true, token_rejected: false });
                }
            }
        }
        let token = VisitorToken::generate();
        let new = NewConversation {
            id: ConversationId::new_random(),
            token_hash: token.hash(),
            at: Utc::now(),
            locale: hello.locale.as_deref().map(|l| truncate(l, 35)),
            page_url: hello.page_url.as_deref().map(|u| truncate(u, 2048)),
        };
        let record = self.shared.store.create_conversation(new).await?;
        Ok(Opened { token, record, resumed: false, token_rejected: hello.token.is_some() })
    }

    /// The conversation's language and the widget labels for it.
    #[must_use]
    pub fn ui_for(&self, record: &ConversationRecord) -> (String, std::collections::BTreeMap<String, String>) {
        let lang = record.lang.clone().unwrap_or_else(|| ConversationState::new(record.locale.as_deref()).lang);
        let ui = self.shared.script.catalog.ui_strings(&lang);
        (lang, ui)
    }

    /// Runs a notice flow in a conversation, whether or not the visitor is online: the
    /// messages are stored (and pushed to open sockets), so a visitor who is away sees them
    /// when they come back. True when they were stored.
    pub async fn deliver_notice(&self, id: ConversationId, flow: &str, order: BTreeMap<String, String>) -> bool {
        let attachment = self.attach(id, false);
        let (done, result) = oneshot::channel();
        let command = Command::Notice { flow: flow.to_owned(), order, done };
        if attachment.mailbox.send(command).await.is_err() {
            return false;
        }
        result.await.unwrap_or(false)
    }

    /// True when a socket is attached to the conversation right now.
    #[must_use]
    pub fn is_online(&self, id: ConversationId) -> bool {
        let actors = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner);
        actors.get(&id).is_some_and(|h| h.live.receiver_count() > 0)
    }

    /// Number of conversations with a running actor.
    #[must_use]
    pub fn live_conversations(&self) -> usize {
        self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Subscribes to a conversation, starting its actor if needed. `just_created` makes a new
    /// actor greet the visitor first.
    #[must_use]
    pub fn attach(&self, id: ConversationId, just_created: bool) -> Attachment {
        let mut actors = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = actors.get(&id).filter(|h| !h.mailbox.is_closed()) {
            return Attachment { id, mailbox: handle.mailbox.clone(), live: handle.live.subscribe() };
        }
        let (mailbox, inbox) = mpsc::channel(MAILBOX);
        let (live, receiver) = broadcast::channel(LIVE_BUFFER);
        actors.insert(id, ActorHandle { mailbox: mailbox.clone(), live: live.clone() });
        let actor = Actor { id, hub: self.clone(), live, state: None };
        tokio::spawn(actor.run(inbox, just_created).instrument(info_span!("conversation", %id)));
        Attachment { id, mailbox, live: receiver }
    }

    /// Removes an idle actor if nobody subscribed meanwhile; true when it may stop.
    fn retire(&self, id: ConversationId, live: &broadcast::Sender<Arc<ChatMessage>>) -> bool {
        let mut actors = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner);
        if live.receiver_count() > 0 {
            return false;
        }
        actors.remove(&id);
        true
    }
}

struct Actor {
    id: ConversationId,
    hub: Hub,
    live: broadcast::Sender<Arc<ChatMessage>>,
    state: Option<ConversationState>,
}

impl Actor {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>, just_created: bool) {
        if let Err(e) = self.load(just_created).await {
            error!(error = %e, "cannot load conversation");
        }
        loop {
            match tokio::time::timeout(IDLE_RETIRE, inbox.recv()).await {
                Ok(Some(Command::Visitor { client_id, input, done })) => {
                    let result = self.on_visitor(client_id, input).await;
                    let _ = done.send(result);
                }
                Ok(Some(Command::Notice { flow, order, done })) => {
                    let stored = self.on_notice(flow, order).await;
                    let _ = done.send(stored);
                }
                Ok(None) => break,
                Err(_idle) => {
                    if inbox.is_empty() && self.hub.retire(self.id, &self.live) {
                        break;
                    }
                }
            }
        }
    }

    async fn load(&mut self, just_created: bool) -> Result<(), StoreError> {
        let record = self.hub.shared.store.conversation(self.id).await?.ok_or(StoreError::NotFound(self.id))?;
        let state = record
            .state_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).map_err(|e| warn!(error = %e, "unreadable engine state")).ok())
            .unwrap_or_else(|| ConversationState::new(record.locale.as_deref()));
        self.state = Some(state);
        if just_created && record.last_seq == Seq(0) {
            self.run_engine(Event::Started, Utc::now()).await?;
        }
        Ok(())
    }

    async fn on_notice(&mut self, flow: String, order: BTreeMap<String, String>) -> bool {
        if self.state.is_none() {
            if let Err(e) = self.load(false).await {
                error!(error = %e, "cannot load conversation for a notice");
                return false;
            }
        }
        match self.run_engine(Event::Notice { flow, order }, Utc::now()).await {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, "cannot store notice");
                false
            }
        }
    }

    async fn on_visitor(&mut self, client_id: String, input: VisitorInput) -> Result<(), ProtocolError> {
        let internal = |e: StoreError| {
            error!(error = %e, "store failure");
            ProtocolError::new(ErrorCode::Internal, "Your message could not be saved; please retry.")
        };
        if self.state.is_none() {
            self.load(false).await.map_err(internal)?;
        }
        let script = Arc::clone(&self.hub.shared.script);
        let state = self.state.as_ref().ok_or_else(|| internal(StoreError::NotFound(self.id)))?;
        let text = match &input {
            VisitorInput::Text(text) => text.clone(),
            VisitorInput::Choice(value) => state.choice_label(value, &script).ok_or_else(|| {
                ProtocolError::new(ErrorCode::UnknownChoice, format!("\"{value}\" is not an offered quick reply."))
            })?,
        };
        let now = Utc::now();
        let message = NewMessage {
            from: Sender::Visitor,
            text: text.clone(),
            at: now,
            client_id: Some(client_id),
            reply_to: None,
            extras: MessageExtras::default(),
        };
        let client_id = message.client_id.clone().unwrap_or_default();
        let seq = match self.hub.shared.store.append_message(self.id, message).await {
            Ok(stored) => {
                let seq = stored.seq;
                self.publish(stored);
                seq
            }
            Err(StoreError::DuplicateClientId) => {
                // A retry. Stored once; answered once — unless the answer failed last time.
                match self.hub.shared.store.visitor_message(self.id, &client_id).await.map_err(internal)? {
                    Some((earlier, false)) => earlier.seq,
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(internal(e)),
        };
        let event = match input {
            VisitorInput::Text(_) => Event::VisitorText { seq, text },
            VisitorInput::Choice(value) => Event::VisitorChoice { seq, value },
        };
        self.run_engine(event, now).await.map_err(internal)
    }

    /// Steps the engine and carries out effects until none are left, then saves the state.
    async fn run_engine(&mut self, first: Event, now: DateTime<Utc>) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.hub.shared);
        let Some(state) = self.state.as_mut() else { return Err(StoreError::NotFound(self.id)) };
        let mut pending: VecDeque<Effect> = engine::step(state, first, &shared.script, &shared.policy, now).into();
        while let Some(effect) = pending.pop_front() {
            match effect {
                Effect::Say(reply) => {
                    let stored = shared.store.append_message(self.id, new_message(reply, now)).await?;
                    let _ = self.live.send(Arc::new(stored));
                }
                Effect::Search { query, lang, asked_in, reply_to } => {
                    let hits = search(&shared.kb, &query, &lang, asked_in.as_deref());
                    let event = Event::SearchResults { reply_to, query, lang, hits };
                    pending.extend(engine::step(state, event, &shared.script, &shared.policy, now));
                }
                Effect::RecordGap { seq, question, lang, near_miss } => {
                    let gap = Gap {
                        conversation: self.id,
                        seq,
                        at: now,
                        lang,
                        question,
                        near_miss: near_miss.map(|n| (n.id, n.lang, n.confidence)),
                    };
                    // Losing a gap record must not cost the visitor their answer.
                    if let Err(e) = shared.store.record_gap(gap).await {
                        warn!(error = %e, "cannot record unanswered question");
                    }
                }
                Effect::LookupOrder { order_id, proof, reply_to } => {
                    let outcome = match &shared.orders {
                        Some(orders) => orders.lookup(&order_id, &proof).await,
                        None => LookupOutcome::Unavailable,
                    };
                    if let LookupOutcome::Found(fields) = &outcome {
                        // Proven owner: later news about this order comes to this chat.
                        let order = fields.get("id").cloned().unwrap_or(order_id);
                        if let Err(e) = shared.store.link_order(&order, self.id, now).await {
                            warn!(error = %e, "cannot link order to conversation");
                        }
                    }
                    let event = Event::LookupResult { reply_to, outcome };
                    pending.extend(engine::step(state, event, &shared.script, &shared.policy, now));
                }
                Effect::RecordCsat { score } => {
                    if let Err(e) = shared.store.record_csat(self.id, score, now).await {
                        warn!(error = %e, "cannot record satisfaction rating");
                    }
                }
                Effect::RequestHandoff { reason } => info!(%reason, "handoff requested"),
            }
        }
        let json = serde_json::to_string(&state).unwrap_or_default();
        shared.store.save_state(self.id, Some(&state.lang), &json).await
    }

    fn publish(&self, message: ChatMessage) {
        // No subscribers is fine: the message is stored and will be replayed.
        let _ = self.live.send(Arc::new(message));
    }
}

fn new_message(reply: Reply, at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        from: reply.from,
        text: reply.text,
        at,
        client_id: None,
        reply_to: reply.reply_to,
        extras: reply.extras,
    }
}

fn search(kb: &SharedKb, query: &str, lang: &str, asked_in: Option<&str>) -> Vec<crate::kb::KbHit> {
    let Some(kb) = kb.load_full() else {
        warn!("knowledge base not loaded yet");
        return Vec::new();
    };
    let query = asked_in.map_or_else(|| query.to_owned(), |visitor| kb.without_function_words(query, visitor));
    kb.search(&query, lang, SEARCH_LIMIT).unwrap_or_else(|e| {
        error!(error = %e, "search failed");
        Vec::new()
    })
}
