//! Live conversations: one task (an actor with a mailbox) owns each conversation.
//!
//! The actor is the only writer of its conversation: it stores the visitor's message,
//! steps the engine, carries out the effects (store, then publish; search) and saves the
//! engine state. Sockets subscribe to its broadcast of stored messages. Actors start on
//! demand and retire when nobody has been subscribed for a while.
//!
//! A new conversation is [`pending`] (in memory only) until the visitor first writes or
//! the shop identifies them; then the actor stores it together with its greeting.

pub mod inactivity;
pub mod pending;

use std::collections::BTreeMap;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::DateTime;
use chrono::Utc;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{Instrument, error, info, info_span, warn};

use crate::clock::SharedClock;
use crate::engine::AnswerPolicy;
use crate::engine::driver::{PendingLookup, Ports, Step, drive};
use crate::engine::{
    self, AgentAction, AnswerFeedback, ConversationState, DeskNews, Effect, Event, LookupOutcome, Owner, Refusal, Reply,
};
use crate::flows::BotScript;
use crate::ids::{ConversationId, Seq};
use crate::kb::{KbHit, SharedKb};
use crate::protocol::{ChatMessage, ErrorCode, Hello, MessageExtras, ProtocolError, Sender};
use crate::store::{
    AnswerVote, ConversationRecord, Gap, NewConversation, NewMessage, OfflineRequest, OwnerRecord, Rating, StepRecords,
    Store, StoreError,
};
use crate::token::VisitorToken;
use pending::{PendingConversation, PendingTable};

const MAILBOX: usize = 32;
const LIVE_BUFFER: usize = 64;
const IDLE_RETIRE: Duration = Duration::from_secs(120);
/// A conversation nobody wrote in needs its actor only while a socket is attached.
const PENDING_IDLE_RETIRE: Duration = Duration::from_secs(15);

/// What a visitor sent, already decoded and validated by the socket.
#[derive(Debug, Clone)]
pub enum VisitorInput {
    /// Typed text.
    Text(String),
    /// A quick-reply value.
    Choice(String),
}

/// What the socket hears once a visitor message is stored: a receiver for the answer's
/// outcome, or why it was not stored.
type Stored = Result<oneshot::Receiver<Result<(), ProtocolError>>, ProtocolError>;

enum Command {
    Visitor {
        client_id: String,
        input: VisitorInput,
        /// Where it came from, for per-address limits on order lookups.
        client: Option<IpAddr>,
        stored: oneshot::Sender<Stored>,
    },
    /// An order lookup a step started has finished.
    LookupDone { lookup: PendingLookup, outcome: LookupOutcome },
    /// A person acts on the chat; `client_id` deduplicates retried messages and notes.
    Agent { action: AgentAction, client_id: Option<String>, done: oneshot::Sender<Result<(), ActError>> },
    /// The desk placed the chat (queue position, or nobody available).
    Placed(DeskNews),
    /// Someone outside asked for a person (API).
    Handoff { reason: String, done: oneshot::Sender<Result<(), StoreError>> },
    /// Store a pending conversation now (the shop identified the visitor).
    Persist { done: oneshot::Sender<Result<(), StoreError>> },
    /// The conversation was deleted: stop, so attached sockets see the end.
    Forget,
    /// Start a flow the visitor did not ask for (a proactive notice); `done` says whether
    /// its messages were stored.
    Notice { flow: String, order: BTreeMap<String, String>, done: oneshot::Sender<bool> },
    /// The visitor rated the conversation or voted on an answer.
    Rating { input: RatingInput, done: oneshot::Sender<Result<(), ProtocolError>> },
    /// Someone outside asked for a rating (API).
    RequestCsat { done: oneshot::Sender<Result<(), ActError>> },
    /// The chat has been quiet for the configured time.
    Inactive,
}

/// What a visitor says about the conversation, beside messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatingInput {
    /// 1–5 and an optional comment.
    Rate {
        /// 1 (poor) to 5 (great).
        score: u8,
        /// What they added.
        comment: Option<String>,
    },
    /// "Did this help?" on the answer with this seq.
    Feedback {
        /// The answer message.
        seq: Seq,
        /// Yes or no.
        helpful: bool,
    },
}

#[derive(Clone)]
struct ActorHandle {
    mailbox: mpsc::Sender<Command>,
    live: broadcast::Sender<Live>,
}

/// What subscribers of a conversation hear: stored messages, and moments that are not
/// stored (queue position, typing).
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    /// A stored message (private notes included: visitor sockets drop them).
    Message(Arc<ChatMessage>),
    /// The visitor's place in the queue changed.
    Queue {
        /// 1 = next.
        position: usize,
        /// Estimated wait, whole minutes.
        eta_minutes: u32,
    },
    /// Someone is typing.
    Typing {
        /// Visitor or agent.
        from: Sender,
        /// The agent's display name.
        name: Option<String>,
    },
}

/// Where ownership changes go: the desk that queues and routes chats. The conversation
/// never waits for it (the desk answers through [`Hub::place`]), so the two can never
/// wait on each other.
pub trait HandoffDesk: Send + Sync {
    /// The chat's owner changed (committed already).
    fn owner_changed(&self, change: OwnerChange);
    /// A request to be contacted later was filed.
    fn offline_request_filed(&self, conversation: ConversationId, team: &str);
}

/// One committed ownership change.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerChange {
    /// The conversation.
    pub conversation: ConversationId,
    /// Before the step.
    pub before: Owner,
    /// After the step.
    pub after: Owner,
    /// Conversation language.
    pub lang: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a person's action on a chat did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The engine refused it (not held, not queued…).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The conversation could not be stored or loaded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The conversation is waiting for an order lookup; try again in a moment.
    #[error("the conversation is busy; retry")]
    Busy,
}

/// Resolves when the answer to a stored visitor message is stored (or could not be).
pub type Answering = oneshot::Receiver<Result<(), ProtocolError>>;

/// A socket's link to a conversation: send commands, receive stored messages live.
pub struct Attachment {
    /// The conversation.
    pub id: ConversationId,
    mailbox: mpsc::Sender<Command>,
    /// Every message stored from now on, in seq order.
    pub live: broadcast::Receiver<Live>,
}

impl Attachment {
    /// Hands a visitor message to the conversation and waits until it is stored (its echo
    /// is on [`Attachment::live`] by then). The answer comes later; the returned receiver
    /// says whether it could be stored.
    ///
    /// # Errors
    /// `unknown_choice` for a choice never offered, `internal` when the conversation failed.
    pub async fn send(
        &self,
        client_id: String,
        input: VisitorInput,
        client: Option<IpAddr>,
    ) -> Result<Answering, ProtocolError> {
        let (stored, result) = oneshot::channel();
        let internal = || ProtocolError::new(ErrorCode::Internal, "The conversation is unavailable; please retry.");
        self.mailbox.send(Command::Visitor { client_id, input, client, stored }).await.map_err(|_| internal())?;
        result.await.map_err(|_| internal())?
    }

    /// Hands a rating or an answer vote to the conversation and waits until it is stored.
    ///
    /// # Errors
    /// `already_rated`, `rating_not_requested`, `already_voted`, `not_an_answer`, or
    /// `internal` when the conversation failed.
    pub async fn rate(&self, input: RatingInput) -> Result<(), ProtocolError> {
        let (done, result) = oneshot::channel();
        let internal = || ProtocolError::new(ErrorCode::Internal, "The conversation is unavailable; please retry.");
        self.mailbox.send(Command::Rating { input, done }).await.map_err(|_| internal())?;
        result.await.map_err(|_| internal())?
    }

    /// Makes sure the conversation is stored (it may still be pending).
    ///
    /// # Errors
    /// When the store fails or the conversation is gone.
    pub async fn persist(&self) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        let gone = || StoreError::NotFound(self.id);
        self.mailbox.send(Command::Persist { done }).await.map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }
}

/// Looks an order up for a flow and checks the visitor's proof of ownership (the e-mail
/// address or postcode on the order). Implemented over the configured order source.
#[async_trait::async_trait]
pub trait OrderLookup: Send + Sync {
    /// Never tells an unknown order from a wrong proof. `client` is the visitor's address,
    /// for limits on wrong proofs per address.
    async fn lookup(&self, order_id: &str, proof: &str, client: Option<IpAddr>) -> LookupOutcome;
}

struct Shared {
    store: Arc<dyn Store>,
    kb: SharedKb,
    script: Arc<BotScript>,
    policy: AnswerPolicy,
    orders: Option<Arc<dyn OrderLookup>>,
    clock: SharedClock,
    desk: std::sync::OnceLock<Arc<dyn HandoffDesk>>,
    telemetry: crate::telemetry::Telemetry,
    actors: Mutex<HashMap<ConversationId, ActorHandle>>,
    pending: Mutex<PendingTable>,
}

/// The result of [`Hub::open`].
pub struct Opened {
    /// The token the client must keep.
    pub token: VisitorToken,
    /// The conversation.
    pub record: ConversationRecord,
    /// True when the hello's token was accepted.
    pub resumed: bool,
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
    /// The server's operational metrics (shared with the sockets and `/metrics`).
    #[must_use]
    pub fn telemetry(&self) -> &crate::telemetry::Telemetry {
        &self.shared.telemetry
    }

    /// A hub over a store, a knowledge base and the bot's script; at most
    /// `pending_capacity` conversations nobody wrote in are held in memory.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        kb: SharedKb,
        script: Arc<BotScript>,
        policy: AnswerPolicy,
        orders: Option<Arc<dyn OrderLookup>>,
        pending_capacity: usize,
        clock: SharedClock,
    ) -> Self {
        let pending = Mutex::new(PendingTable::new(pending_capacity));
        let actors = Mutex::new(HashMap::new());
        let desk = std::sync::OnceLock::new();
        let telemetry = crate::telemetry::Telemetry::new();
        Self { shared: Arc::new(Shared { store, kb, script, policy, orders, clock, desk, telemetry, actors, pending }) }
    }

    /// The time on the hub's clock.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Connects the desk that ownership changes go to (once, at start).
    pub fn set_desk(&self, desk: Arc<dyn HandoffDesk>) {
        let _ = self.shared.desk.set(desk);
    }

    /// Carries out a person's action on a chat (the engine checks it is allowed).
    ///
    /// # Errors
    /// [`ActError::Refused`] when the chat's owner does not allow it.
    pub async fn act(
        &self,
        id: ConversationId,
        action: AgentAction,
        client_id: Option<String>,
    ) -> Result<(), ActError> {
        if !self.exists(id).await? {
            return Err(ActError::Refused(Refusal::NotHeld));
        }
        let attachment = self.attach(id);
        let (done, result) = oneshot::channel();
        let gone = || ActError::Store(StoreError::NotFound(id));
        attachment.mailbox.send(Command::Agent { action, client_id, done }).await.map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    /// Asks for a person on behalf of someone outside the conversation (the API).
    ///
    /// # Errors
    /// When the conversation does not exist or cannot be stored.
    pub async fn request_handoff(&self, id: ConversationId, reason: String) -> Result<(), StoreError> {
        if !self.exists(id).await? {
            return Err(StoreError::NotFound(id));
        }
        let attachment = self.attach(id);
        let (done, result) = oneshot::channel();
        let gone = || StoreError::NotFound(id);
        attachment.mailbox.send(Command::Handoff { reason, done }).await.map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    /// Asks the visitor for a rating now, on behalf of the shop (the API).
    ///
    /// # Errors
    /// [`ActError::Refused`] with [`Refusal::AlreadyRated`] when it was rated; a store
    /// error when the conversation does not exist.
    pub async fn request_csat(&self, id: ConversationId) -> Result<(), ActError> {
        if !self.exists(id).await? {
            return Err(ActError::Store(StoreError::NotFound(id)));
        }
        let attachment = self.attach(id);
        let (done, result) = oneshot::channel();
        let gone = || ActError::Store(StoreError::NotFound(id));
        attachment.mailbox.send(Command::RequestCsat { done }).await.map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    /// Tells a quiet conversation that it has been quiet (see [`inactivity`]).
    pub async fn inactive(&self, id: ConversationId) {
        let attachment = self.attach(id);
        let _ = attachment.mailbox.send(Command::Inactive).await;
    }

    /// Tells the conversation where the desk placed it; never waits for the actor's step.
    pub async fn place(&self, id: ConversationId, news: DeskNews) {
        let attachment = self.attach(id);
        let _ = attachment.mailbox.send(Command::Placed(news)).await;
    }

    /// Sends a moment that is not stored (queue position, typing) to the conversation's
    /// subscribers, if any are attached.
    pub fn signal(&self, id: ConversationId, live: Live) {
        let actors = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = actors.get(&id) {
            let _ = handle.live.send(live);
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, PendingTable> {
        self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Conversations held in memory because nobody has written in them yet.
    #[must_use]
    pub fn pending_conversations(&self) -> usize {
        self.pending().len()
    }

    /// The store, for reading transcripts.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The conversation a hello's token belongs to (stored, or pending), if any. A token
    /// that is malformed or unknown gives `None`, never someone else's conversation.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn resume(&self, raw_token: &str) -> Result<Option<Opened>, StoreError> {
        let Some(token) = VisitorToken::parse(raw_token) else { return Ok(None) };
        let hash = token.hash();
        if let Some(record) = self.shared.store.conversation_by_token_hash(&hash).await? {
            return Ok(Some(Opened { token, record, resumed: true }));
        }
        let pending = self.pending().by_token(&hash, Instant::now());
        Ok(pending.map(|p| Opened { token, record: p.record(), resumed: true }))
    }

    /// Opens a new conversation for a hello: greeted, held in memory until the visitor
    /// writes (see [`pending`]).
    #[must_use]
    pub fn create(&self, hello: &Hello) -> Opened {
        let token = VisitorToken::generate();
        let now = self.shared.clock.now();
        let locale = hello.locale.as_deref().map(|l| truncate(l, 35));
        let mut state = ConversationState::new(locale.as_deref());
        let shared = &self.shared;
        let opening = engine::step(&mut state, Event::Started, &shared.script, &shared.policy, now)
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::Say(reply) => Some(new_message(reply, now)),
                _ => None,
            })
            .collect();
        let new = NewConversation {
            id: ConversationId::new_random(),
            token_hash: token.hash(),
            at: now,
            locale,
            page_url: hello.page_url.as_deref().map(|u| truncate(u, 2048)),
            opening,
            state_json: None,
        };
        let pending = PendingConversation { new, state, born: Instant::now() };
        let record = pending.record();
        self.pending().insert(pending, Instant::now());
        Opened { token, record, resumed: false }
    }

    /// Messages of a conversation after `after`, whether it is stored or still pending.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn messages_after(
        &self,
        id: ConversationId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let pending = self.pending().get(id);
        match pending {
            Some(p) => Ok(p.messages_after(after)),
            None => self.shared.store.messages_after(id, after, limit, false).await,
        }
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
        let attachment = self.attach(id);
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

    /// Subscribes to a conversation, starting its actor if needed.
    #[must_use]
    pub fn attach(&self, id: ConversationId) -> Attachment {
        let mut actors = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = actors.get(&id).filter(|h| !h.mailbox.is_closed()) {
            return Attachment { id, mailbox: handle.mailbox.clone(), live: handle.live.subscribe() };
        }
        let (mailbox, inbox) = mpsc::channel(MAILBOX);
        let (live, receiver) = broadcast::channel(LIVE_BUFFER);
        actors.insert(id, ActorHandle { mailbox: mailbox.clone(), live: live.clone() });
        let actor = Actor {
            id,
            hub: self.clone(),
            live,
            mailbox: mailbox.downgrade(),
            state: None,
            pending: None,
            client: None,
            lookups_in_flight: 0,
            deferred: VecDeque::new(),
        };
        tokio::spawn(actor.run(inbox).instrument(info_span!("conversation", %id)));
        Attachment { id, mailbox, live: receiver }
    }

    /// Conversations with a socket attached right now.
    #[must_use]
    pub fn online_ids(&self) -> Vec<ConversationId> {
        let actors = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner);
        actors.iter().filter(|(_, h)| h.live.receiver_count() > 0).map(|(id, _)| *id).collect()
    }

    /// True when the conversation exists, stored or pending.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn exists(&self, id: ConversationId) -> Result<bool, StoreError> {
        if self.pending().get(id).is_some() {
            return Ok(true);
        }
        Ok(self.shared.store.conversation(id).await?.is_some())
    }

    /// Stops a deleted conversation's actor (its sockets are told it ended) and forgets it
    /// if it was pending.
    pub async fn forget(&self, id: ConversationId) {
        self.pending().remove(id);
        let handle = self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
        if let Some(handle) = handle {
            let _ = handle.mailbox.send(Command::Forget).await;
        }
    }

    fn retire_now(&self, id: ConversationId) {
        self.shared.actors.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Removes an idle actor if nobody subscribed meanwhile; true when it may stop.
    fn retire(&self, id: ConversationId, live: &broadcast::Sender<Live>) -> bool {
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
    live: broadcast::Sender<Live>,
    /// Sends to the actor's own mailbox (order lookups report back through it) without
    /// keeping the actor alive.
    mailbox: mpsc::WeakSender<Command>,
    state: Option<ConversationState>,
    /// Set while the conversation exists only in memory.
    pending: Option<Arc<PendingConversation>>,
    /// Address of the visitor's latest message.
    client: Option<IpAddr>,
    /// Order lookups started and not answered yet.
    lookups_in_flight: usize,
    /// Events that arrived while a lookup was in flight: the engine takes one step at a
    /// time, in the order things happened.
    deferred: VecDeque<(Event, Done)>,
}

/// Who waits for a step to be carried out.
enum Done {
    /// A visitor's message being answered.
    Visitor(oneshot::Sender<Result<(), ProtocolError>>),
    /// A notice being delivered: true when stored.
    Notice(oneshot::Sender<bool>),
    /// Someone who only needs to know it was stored.
    Stored(oneshot::Sender<Result<(), StoreError>>),
    /// Nobody.
    Nobody,
}

impl Done {
    /// Reports a step's outcome: the number of messages it stored, or why it failed.
    fn finish(self, result: Result<usize, StoreError>) {
        match self {
            Self::Visitor(tx) => {
                let _ = tx.send(result.map(drop).map_err(|e| {
                    error!(error = %e, "store failure while answering");
                    ProtocolError::new(ErrorCode::Internal, "The reply could not be saved; please send again.")
                }));
            }
            Self::Notice(tx) => {
                // A notice whose flow said nothing (it could not start) was not delivered.
                let delivered = match result {
                    Ok(0) => {
                        warn!("the notice's flow said nothing; not delivered");
                        false
                    }
                    Ok(_) => true,
                    Err(e) => {
                        error!(error = %e, "cannot store notice");
                        false
                    }
                };
                let _ = tx.send(delivered);
            }
            Self::Stored(tx) => {
                let _ = tx.send(result.map(drop));
            }
            Self::Nobody => {
                if let Err(e) = result {
                    error!(error = %e, "store failure while stepping the conversation");
                }
            }
        }
    }
}

impl Actor {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        if let Err(e) = self.load().await {
            error!(error = %e, "cannot load conversation");
        }
        loop {
            let idle = if self.pending.is_some() { PENDING_IDLE_RETIRE } else { IDLE_RETIRE };
            match tokio::time::timeout(idle, inbox.recv()).await {
                Ok(Some(Command::Visitor { client_id, input, client, stored })) => {
                    self.client = client;
                    self.on_visitor(client_id, input, stored).await;
                }
                Ok(Some(Command::LookupDone { lookup, outcome })) => self.on_lookup_done(lookup, outcome).await,
                Ok(Some(Command::Agent { action, client_id, done })) => {
                    let result = self.on_agent(action, client_id).await;
                    let _ = done.send(result);
                }
                Ok(Some(Command::Placed(news))) => self.step_or_defer(Event::Placed(news), Done::Nobody).await,
                Ok(Some(Command::Handoff { reason, done })) => match self.ensure_stored().await {
                    Ok(()) => self.step_or_defer(Event::HandoffRequested { reason }, Done::Stored(done)).await,
                    Err(e) => {
                        let _ = done.send(Err(e));
                    }
                },
                Ok(Some(Command::Rating { input, done })) => {
                    let result = self.on_rating(input).await;
                    let _ = done.send(result);
                }
                Ok(Some(Command::RequestCsat { done })) => {
                    let result = match self.ensure_stored().await {
                        Ok(()) if self.lookups_in_flight > 0 => Err(ActError::Busy),
                        Ok(()) => self.step_with(Event::CsatRequested, None).await.map(drop),
                        Err(e) => Err(e.into()),
                    };
                    let _ = done.send(result);
                }
                Ok(Some(Command::Inactive)) => {
                    // A lookup in flight means the chat is not quiet after all.
                    if self.lookups_in_flight == 0 {
                        let result = self.step(Event::Inactive).await;
                        Done::Nobody.finish(result);
                    }
                }
                Ok(Some(Command::Persist { done })) => {
                    let result = self.ensure_stored().await;
                    let _ = done.send(result);
                }
                Ok(Some(Command::Forget)) => {
                    self.hub.retire_now(self.id);
                    break;
                }
                Ok(Some(Command::Notice { flow, order, done })) => {
                    if let Err(e) = self.ensure_stored().await {
                        error!(error = %e, "cannot load conversation for a notice");
                        let _ = done.send(false);
                        continue;
                    }
                    self.step_or_defer(Event::Notice { flow, order }, Done::Notice(done)).await;
                }
                Ok(None) => break,
                Err(_idle) => {
                    let busy = self.lookups_in_flight > 0;
                    if !busy && inbox.is_empty() && self.hub.retire(self.id, &self.live) {
                        break;
                    }
                }
            }
        }
    }

    async fn load(&mut self) -> Result<(), StoreError> {
        let Some(record) = self.hub.shared.store.conversation(self.id).await? else {
            let pending = self.hub.pending().get(self.id).ok_or(StoreError::NotFound(self.id))?;
            self.state = Some(pending.state.clone());
            self.pending = Some(pending);
            return Ok(());
        };
        let mut state: ConversationState = match record.state_json.as_deref() {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| StoreError::Corrupt { table: "conversations", reason: format!("state_json: {e}") })?,
            None => ConversationState::new(record.locale.as_deref()),
        };
        // Not twice in N days to the same person, across their conversations.
        state.visitor_asked_at = self.hub.shared.store.visitor_last_csat_ask(self.id).await?;
        self.state = Some(state);
        Ok(())
    }

    /// Stores a pending conversation with its greeting (once); a no-op when stored.
    async fn ensure_stored(&mut self) -> Result<(), StoreError> {
        if self.state.is_none() {
            self.load().await?;
        }
        let Some(pending) = self.pending.as_ref() else { return Ok(()) };
        let new =
            pending.to_new().map_err(|e| StoreError::Corrupt { table: "conversations", reason: e.to_string() })?;
        self.hub.shared.store.create_conversation(new).await?;
        self.hub.pending().remove(self.id);
        self.pending = None;
        Ok(())
    }

    /// Stores the visitor's message and tells the socket (so the echo goes out at once),
    /// then answers it.
    async fn on_visitor(&mut self, client_id: String, input: VisitorInput, stored: oneshot::Sender<Stored>) {
        let (event, answered) = match self.store_visitor(client_id, input).await {
            Ok(Some(event)) => {
                let (answered, answer) = oneshot::channel();
                let _ = stored.send(Ok(answer));
                (event, answered)
            }
            Ok(None) => {
                // A retry of a message that is stored and answered: nothing to do.
                let (answered, answer) = oneshot::channel();
                let _ = answered.send(Ok(()));
                let _ = stored.send(Ok(answer));
                return;
            }
            Err(e) => {
                let _ = stored.send(Err(e));
                return;
            }
        };
        self.step_or_defer(event, Done::Visitor(answered)).await;
    }

    /// The event for a stored visitor message, or `None` when it was a retry that is
    /// already answered.
    async fn store_visitor(&mut self, client_id: String, input: VisitorInput) -> Result<Option<Event>, ProtocolError> {
        let internal = |e: StoreError| {
            error!(error = %e, "store failure");
            ProtocolError::new(ErrorCode::Internal, "Your message could not be saved; please retry.")
        };
        self.ensure_stored().await.map_err(internal)?;
        let script = Arc::clone(&self.hub.shared.script);
        let state = self.state.as_ref().ok_or_else(|| internal(StoreError::NotFound(self.id)))?;
        let text = match &input {
            VisitorInput::Text(text) => text.clone(),
            VisitorInput::Choice(value) => state.choice_label(value, &script).ok_or_else(|| {
                ProtocolError::new(ErrorCode::UnknownChoice, format!("\"{value}\" is not an offered quick reply."))
            })?,
        };
        let message = NewMessage {
            from: Sender::Visitor,
            text: text.clone(),
            at: self.hub.shared.clock.now(),
            client_id: Some(client_id.clone()),
            reply_to: None,
            extras: MessageExtras::default(),
        };
        let seq = match self.hub.shared.store.append_message(self.id, message).await {
            Ok(stored) => {
                self.hub.shared.telemetry.message(Sender::Visitor.as_str());
                let seq = stored.seq;
                self.publish(stored);
                seq
            }
            Err(StoreError::DuplicateClientId) => {
                // A retry. Stored once; answered once — unless the answer failed last time.
                match self.hub.shared.store.visitor_message(self.id, &client_id).await.map_err(internal)? {
                    Some((earlier, false)) => earlier.seq,
                    _ => return Ok(None),
                }
            }
            Err(e) => return Err(internal(e)),
        };
        Ok(Some(match input {
            VisitorInput::Text(_) => Event::VisitorText { seq, text },
            VisitorInput::Choice(value) => Event::VisitorChoice { seq, value },
        }))
    }

    /// Looks up again when the same person was last asked for a rating elsewhere (their
    /// e-mail or identity may have become known during the conversation).
    async fn refresh_visitor_asked(&mut self) {
        match self.hub.shared.store.visitor_last_csat_ask(self.id).await {
            Ok(at) => {
                if let Some(state) = self.state.as_mut() {
                    state.visitor_asked_at = at;
                }
            }
            Err(e) => warn!(error = %e, "cannot read when the visitor was last asked for a rating"),
        }
    }

    /// A rating or an answer vote: one engine step, refused with a specific error code.
    async fn on_rating(&mut self, input: RatingInput) -> Result<(), ProtocolError> {
        let internal = |e: &dyn std::fmt::Display| {
            error!(error = %e, "cannot store a rating");
            ProtocolError::new(ErrorCode::Internal, "Your rating could not be saved; please retry.")
        };
        self.ensure_stored().await.map_err(|e| internal(&e))?;
        if self.lookups_in_flight > 0 {
            return Err(ProtocolError::new(ErrorCode::Internal, "The conversation is busy for a moment; retry."));
        }
        if matches!(input, RatingInput::Feedback { helpful: true, .. }) {
            self.refresh_visitor_asked().await;
        }
        let event = match input {
            RatingInput::Rate { score, comment } => Event::Rate { score, comment },
            RatingInput::Feedback { seq, helpful } => {
                Event::AnswerFeedback(self.answer_feedback(seq, helpful).await.map_err(|e| match e {
                    Some(e) => internal(&e),
                    None => ProtocolError::new(
                        ErrorCode::NotAnAnswer,
                        format!("Message {seq} is not a knowledge-base answer in this conversation."),
                    ),
                })?)
            }
        };
        match self.step_with(event, None).await {
            Ok(_) => Ok(()),
            Err(ActError::Refused(r)) => Err(refusal_error(r)),
            Err(e) => Err(internal(&e)),
        }
    }

    /// What a vote on message `seq` is about: its document and the question it answered.
    /// `Err(None)` when `seq` is not a knowledge-base answer here.
    async fn answer_feedback(&self, seq: Seq, helpful: bool) -> Result<AnswerFeedback, Option<StoreError>> {
        let store = &self.hub.shared.store;
        let at = |seq: Seq| async move {
            let found = store.messages_after(self.id, Seq(seq.0 - 1), 1, false).await?;
            Ok::<_, StoreError>(found.into_iter().next().filter(|m| m.seq == seq))
        };
        let answer = at(seq).await.map_err(Some)?.filter(|m| m.from == Sender::Bot).ok_or(None)?;
        let source = answer.extras.source.ok_or(None)?;
        let question = match answer.reply_to {
            Some(q) => at(q).await.map_err(Some)?.filter(|m| m.from == Sender::Visitor).map(|m| (m.seq, m.text)),
            None => None,
        };
        Ok(AnswerFeedback {
            seq,
            doc: format!("{}:{}", source.kind, source.id),
            doc_lang: source.lang,
            score: source.score,
            helpful,
            question,
        })
    }

    async fn on_lookup_done(&mut self, lookup: PendingLookup, outcome: LookupOutcome) {
        self.lookups_in_flight = self.lookups_in_flight.saturating_sub(1);
        let shared = Arc::clone(&self.hub.shared);
        if let LookupOutcome::Found(fields) = &outcome {
            let now = shared.clock.now();
            // Proven owner: later news about this order comes to this chat.
            let order = fields.get("id").cloned().unwrap_or_else(|| lookup.order_id.clone());
            if let Err(e) = shared.store.link_order(&order, self.id, now).await {
                warn!(error = %e, "cannot link order to conversation");
            }
            // A proven e-mail is whose conversation this is (privacy requests).
            let email = lookup.proof.trim();
            if email.contains('@') {
                if let Err(e) = shared.store.set_visitor(self.id, None, Some(email)).await {
                    warn!(error = %e, "cannot record the visitor's e-mail");
                }
                self.refresh_visitor_asked().await;
            }
        }
        let event = Event::LookupResult { reply_to: lookup.reply_to, outcome };
        let result = self.step(event).await;
        Done::Nobody.finish(result);
        // What waited for the lookup goes next, in order, until another lookup starts.
        while self.lookups_in_flight == 0 {
            let Some((event, done)) = self.deferred.pop_front() else { break };
            let result = self.step(event).await;
            done.finish(result);
        }
    }

    /// A person's action: one engine step like any other, refused without a trace when
    /// the owner does not allow it; a retried message (same `client_id`) is a no-op.
    async fn on_agent(&mut self, action: AgentAction, client_id: Option<String>) -> Result<(), ActError> {
        self.ensure_stored().await?;
        if matches!(action, AgentAction::Close { .. }) {
            // Closing may ask for a rating: who the visitor is may have become known since.
            self.refresh_visitor_asked().await;
        }
        if self.lookups_in_flight > 0 {
            // Rare: a lookup is running. Its result comes first; the agent retries.
            return Err(ActError::Busy);
        }
        match self.step_with(Event::Agent(action), client_id).await {
            Ok(_) => Ok(()),
            Err(ActError::Store(StoreError::DuplicateClientId)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn step_or_defer(&mut self, event: Event, done: Done) {
        if self.lookups_in_flight > 0 {
            self.deferred.push_back((event, done));
            return;
        }
        let result = self.step(event).await;
        done.finish(result);
    }

    /// One engine step, off the actor's thread (searches are blocking work); its messages,
    /// records and new state are stored in one transaction, then published; order lookups
    /// it started run as tasks that report back through the mailbox.
    async fn step(&mut self, event: Event) -> Result<usize, StoreError> {
        self.step_with(event, None).await.map_err(|e| match e {
            ActError::Store(e) => e,
            ActError::Refused(r) => StoreError::Corrupt { table: "conversations", reason: format!("refused: {r}") },
            ActError::Busy => StoreError::Corrupt { table: "conversations", reason: "busy".to_owned() },
        })
    }

    /// [`Actor::step`], with the `client_id` a person's message or note is stored under.
    async fn step_with(&mut self, event: Event, client_id: Option<String>) -> Result<usize, ActError> {
        let shared = Arc::clone(&self.hub.shared);
        let Some(state) = self.state.clone() else { return Err(ActError::Store(StoreError::NotFound(self.id))) };
        let now = shared.clock.now();
        let started = std::time::Instant::now();
        let from_visitor = matches!(event, Event::VisitorText { .. } | Event::VisitorChoice { .. });
        let (kb, script, policy) = (Arc::clone(&shared.kb), Arc::clone(&shared.script), shared.policy);
        let telemetry = shared.telemetry.clone();
        let step = tokio::task::spawn_blocking(move || {
            let Ok(step) =
                drive(&state, event, &script, &policy, now, &mut LivePorts { kb: &kb, telemetry: &telemetry });
            step
        })
        .await
        .map_err(|e| StoreError::Corrupt { table: "conversations", reason: format!("engine step panicked: {e}") })?;
        if let Some(refusal) = step.refused {
            return Err(ActError::Refused(refusal));
        }
        let before = self.state.as_ref().map(|s| s.owner.clone()).unwrap_or_default();
        let mut records = self.records(&step, now, client_id)?;
        if before != step.state.owner {
            records.owner = Some(owner_record(&step.state.owner, now));
        }
        let handoffs = records.events.iter().filter(|e| e.kind == crate::metrics::EventKind::HandoffRequested).count();
        let stored = shared.store.commit_step(self.id, records).await?;
        let said = stored.len();
        let telemetry = &shared.telemetry;
        if from_visitor && stored.iter().any(|m| m.from == Sender::Bot) {
            telemetry.answered(started.elapsed());
        }
        for message in stored {
            telemetry.message(message.from.as_str());
            self.publish(message);
        }
        for _ in 0..handoffs {
            telemetry.handoff();
        }
        for lookup in step.lookups.iter().cloned() {
            self.start_lookup(lookup);
        }
        let after = step.state.owner.clone();
        let lang = step.state.lang.clone();
        self.state = Some(step.state);
        if let Some(desk) = shared.desk.get() {
            for effect in &step.records {
                if let Effect::FileOfflineRequest { team, .. } = effect {
                    desk.offline_request_filed(self.id, team);
                }
            }
            if before != after {
                info!(from = before.kind(), to = after.kind(), "owner changed");
                desk.owner_changed(OwnerChange { conversation: self.id, before, after, lang, at: now });
            }
        }
        Ok(said)
    }

    fn records(&self, step: &Step, now: DateTime<Utc>, client_id: Option<String>) -> Result<StepRecords, StoreError> {
        let mut client_id = client_id;
        let mut records = StepRecords {
            messages: Vec::new(),
            gaps: Vec::new(),
            ratings: Vec::new(),
            feedback: Vec::new(),
            owner: None,
            offline_requests: Vec::new(),
            events: crate::metrics::events::derive(self.state.as_ref(), &step.state, &step.records, now),
            lang: step.state.lang.clone(),
            state_json: serde_json::to_string(&step.state)
                .map_err(|e| StoreError::Corrupt { table: "conversations", reason: format!("state: {e}") })?,
        };
        for effect in &step.records {
            match effect {
                Effect::Say(reply) => {
                    let mut message = new_message(reply.clone(), now);
                    if reply.from == Sender::Agent {
                        message.client_id = client_id.take();
                    }
                    records.messages.push(message);
                }
                Effect::Note { author, text } => records.messages.push(NewMessage {
                    from: Sender::Agent,
                    text: text.clone(),
                    at: now,
                    client_id: client_id.take(),
                    reply_to: None,
                    extras: MessageExtras {
                        author: Some(author.clone().into()),
                        private: true,
                        ..MessageExtras::default()
                    },
                }),
                Effect::FileOfflineRequest { team, reason, channel, contact, details, seq } => {
                    records.offline_requests.push(OfflineRequest {
                        team: team.clone(),
                        reason: reason.clone(),
                        channel: channel.clone(),
                        contact: contact.clone(),
                        details: details.clone(),
                        seq: *seq,
                        at: now,
                    });
                }
                Effect::RecordGap { seq, question, lang, near_miss } => records.gaps.push(Gap {
                    conversation: self.id,
                    seq: *seq,
                    at: now,
                    lang: lang.clone(),
                    question: question.clone(),
                    near_miss: near_miss.as_ref().map(|n| (n.id.clone(), n.lang.clone(), n.confidence)),
                }),
                Effect::RecordCsat { score, replaces, comment } => records.ratings.push(Rating {
                    score: *score,
                    comment: comment.clone(),
                    agent: resolver(&step.state),
                    lang: step.state.lang.clone(),
                    topic: step.state.topic.clone(),
                    channel: "widget",
                    at: now,
                    replaces: *replaces,
                }),
                Effect::RecordFeedback { seq, doc, lang, helpful } => records.feedback.push(AnswerVote {
                    seq: *seq,
                    doc: doc.clone(),
                    lang: lang.clone(),
                    helpful: *helpful,
                    at: now,
                }),
                Effect::RequestHandoff { .. }
                | Effect::LeftQueue
                | Effect::Refused(_)
                | Effect::Search { .. }
                | Effect::LookupOrder { .. } => {}
            }
        }
        Ok(records)
    }

    /// Runs an order lookup (HTTP with retries, or our table) as its own task; the result
    /// comes back as [`Command::LookupDone`].
    fn start_lookup(&mut self, lookup: PendingLookup) {
        let Some(mailbox) = self.mailbox.upgrade() else { return };
        self.lookups_in_flight += 1;
        let orders = self.hub.shared.orders.clone();
        let client = self.client;
        tokio::spawn(
            async move {
                let outcome = match orders {
                    Some(orders) => orders.lookup(&lookup.order_id, &lookup.proof, client).await,
                    None => LookupOutcome::Unavailable,
                };
                let _ = mailbox.send(Command::LookupDone { lookup, outcome }).await;
            }
            .in_current_span(),
        );
    }

    fn publish(&self, message: ChatMessage) {
        // No subscribers is fine: the message is stored and will be replayed.
        let _ = self.live.send(Live::Message(Arc::new(message)));
    }
}

/// The conversation's searches go to the live knowledge base; its order lookups are
/// started as tasks by the actor (see [`Actor::start_lookup`]).
struct LivePorts<'a> {
    kb: &'a SharedKb,
    telemetry: &'a crate::telemetry::Telemetry,
}

impl Ports for LivePorts<'_> {
    type Error = std::convert::Infallible;

    fn search(&mut self, query: &str, lang: &str, asked_in: Option<&str>) -> Result<Vec<KbHit>, Self::Error> {
        let started = std::time::Instant::now();
        let hits = search(self.kb, query, lang, asked_in);
        self.telemetry.searched(started.elapsed());
        Ok(hits)
    }

    fn lookup_order(&mut self, _: &str, _: &str) -> Option<LookupOutcome> {
        None
    }
}

/// Who a rating is about: the agent holding the chat, or the one who closed it; `None`
/// for the bot.
fn resolver(state: &ConversationState) -> Option<(String, String)> {
    match (&state.owner, &state.resolver) {
        (Owner::Agent { agent, team, .. }, _) => Some((agent.id.clone(), team.clone())),
        (_, Some(r)) => Some((r.agent.id.clone(), r.team.clone())),
        _ => None,
    }
}

/// The error a visitor gets for a refused rating or vote.
fn refusal_error(refusal: Refusal) -> ProtocolError {
    let code = match refusal {
        Refusal::AlreadyRated => ErrorCode::AlreadyRated,
        Refusal::AlreadyVoted => ErrorCode::AlreadyVoted,
        Refusal::RatingNotRequested | Refusal::NotHeld | Refusal::NotQueued | Refusal::SameAgent => {
            ErrorCode::RatingNotRequested
        }
    };
    let message = match refusal {
        Refusal::AlreadyRated => format!(
            "This conversation has already been rated; a rating can be changed for {} minutes.",
            crate::engine::RATING_CHANGE_MINUTES
        ),
        other => format!("{}.", capitalize(&other.to_string())),
    };
    ProtocolError::new(code, message)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The ownership columns for `owner` (mirrored from the state so the queue can be rebuilt
/// after a restart without reading every state blob).
fn owner_record(owner: &Owner, at: DateTime<Utc>) -> OwnerRecord {
    let (agent, team, reason) = match owner {
        Owner::Queued { reason, team } => (None, Some(team.clone()), Some(reason.clone())),
        Owner::Agent { agent, team, reason } => (Some(agent.id.clone()), Some(team.clone()), Some(reason.clone())),
        Owner::Bot | Owner::Closed => (None, None, None),
    };
    OwnerRecord { kind: owner.kind(), agent, team, reason, at }
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

fn search(kb: &SharedKb, query: &str, lang: &str, asked_in: Option<&str>) -> Vec<KbHit> {
    let Some(kb) = kb.load_full() else {
        warn!("knowledge base not loaded yet");
        return Vec::new();
    };
    let query = asked_in.map_or_else(|| query.to_owned(), |visitor| kb.without_function_words(query, visitor));
    kb.search(&query, lang, engine::SEARCH_LIMIT).unwrap_or_else(|e| {
        error!(error = %e, "search failed");
        Vec::new()
    })
}
