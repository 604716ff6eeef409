//! The desk: one serial task that owns the queues, the agents' presence and the offers.
//!
//! Everything that decides who gets a chat happens here, one command at a time, so a
//! chat is assigned exactly once however many agents claim it at the same instant. The
//! desk never writes a conversation: it asks the conversation's actor ([`Hub::act`],
//! [`Hub::place`]) from a spawned task, and learns the outcome from the committed
//! ownership change the actor reports ([`HandoffDesk::owner_changed`]). Neither side ever
//! waits for the other, so they cannot deadlock.
//!
//! Wait estimate (told to the visitor, documented in `docs/protocol.md`): with `free`
//! open slots among the team's online agents (capacity minus chats held and offered),
//! `slots` their total capacity and `handle` the mean of the team's last 20 handling
//! times (assignment to hand-back or close; `default_handle_minutes` before any), a chat
//! at position `p` waits about `ceil(max(p - free, 0) × handle / slots)` minutes, at
//! least 1.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

mod state;

use super::accounts::{Accounts, Agent, Team};
use super::hours::Schedule;
use crate::clock::SharedClock;
use crate::config::{HandoffConfig, RouteRule};
use crate::conversations::{ActError, HandoffDesk, Hub, Live, OwnerChange};
use crate::engine::{AgentAction, AgentRef, DeskNews, Owner, Refusal};
use crate::ids::ConversationId;
use crate::lang::primary_subtag;
use crate::store::{Store, StoredOfflineRequest};

/// Handling times kept per team for the wait estimate.
const HANDLE_SAMPLES: usize = 20;
/// Open offline requests shown to agents.
const OFFLINE_SHOWN: u32 = 200;
/// How often teams and agents are re-read from the accounts (edits through the API).
const DIRECTORY_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// An agent's availability for new chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new chats.
    Online,
    /// Keeps their chats, gets no new offers.
    Away,
}

/// Why the desk refused an agent's request. Chats outside the agent's teams and chats
/// that do not exist give the same [`DeskError::NotFound`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// No such chat in this agent's queues or hands.
    #[error("no such chat among yours or your teams' queues")]
    NotFound,
    /// Someone else took it first (or is taking it right now).
    #[error("another agent already took this chat")]
    Taken,
    /// The offer expired or was withdrawn.
    #[error("the offer is no longer open")]
    OfferGone,
    /// The transfer target does not exist.
    #[error("no such agent or team")]
    UnknownTarget,
    /// The target agent is not connected.
    #[error("that agent is not online")]
    TargetOffline,
    /// Transfer to oneself.
    #[error("the chat is already yours")]
    SameAgent,
    /// The offline request was handled already or does not exist.
    #[error("no such open offline request")]
    NoSuchRequest,
    /// The conversation is busy for a moment (an order lookup); retry.
    #[error("the chat is busy for a moment; retry")]
    Busy,
    /// The conversation could not carry the action out (store failure).
    #[error("the chat could not be updated: {0}")]
    Unavailable(String),
}

/// A waiting chat as an agent sees it in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueItem {
    /// The conversation.
    pub conversation: ConversationId,
    /// Team whose queue it is in.
    pub team: String,
    /// 1 = next in that team's queue.
    pub position: usize,
    /// Conversation language.
    pub lang: String,
    /// Why it went to people.
    pub reason: String,
    /// When it joined the queue (waiting time ticks from here).
    #[serde(serialize_with = "ser_at")]
    pub queued_at: DateTime<Utc>,
    /// The agent it is offered to right now, if any.
    pub offered_to: Option<String>,
}

/// A colleague, for transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterEntry {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Their teams.
    pub teams: Vec<String>,
    /// Connected and online.
    pub online: bool,
    /// Chats they hold.
    pub chats: usize,
}

/// A team, for transfers and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamEntry {
    /// Team id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Open by its business hours now.
    pub open: bool,
}

/// The queue as one agent may see it: their teams' waiting chats, open offline requests
/// (first), colleagues and teams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueView {
    /// Requests to be contacted later, oldest first.
    pub offline_requests: Vec<StoredOfflineRequest>,
    /// Waiting chats, oldest first.
    pub items: Vec<QueueItem>,
    /// Every agent (transfer targets).
    pub agents: Vec<RosterEntry>,
    /// Every team.
    pub teams: Vec<TeamEntry>,
}

/// What the desk tells an agent's connections.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The queue changed (the whole view; it replaces the previous one).
    Queue(Arc<QueueView>),
    /// A chat is offered to this agent until `expires_at`.
    Offer {
        /// The chat.
        conversation: ConversationId,
        /// Its team.
        team: String,
        /// When the offer moves on.
        expires_at: DateTime<Utc>,
    },
    /// An offer is no longer open (`expired`, `declined`, `taken`, `left`, `away`).
    OfferWithdrawn {
        /// The chat.
        conversation: ConversationId,
        /// Why.
        why: &'static str,
    },
    /// The agent now holds this chat.
    Assigned {
        /// The chat.
        conversation: ConversationId,
    },
    /// The agent no longer holds it (`closed`, `handed_back`, `transferred`, `requeued`).
    Released {
        /// The chat.
        conversation: ConversationId,
        /// Why.
        why: &'static str,
    },
    /// The agent's presence changed (another tab switched it).
    Presence(Presence),
}

/// What a new connection learns at once.
#[derive(Debug)]
pub struct Connected {
    /// Identifies this connection to [`Desk::disconnect`].
    pub conn: u64,
    /// Desk events for this connection.
    pub events: mpsc::UnboundedReceiver<AgentEvent>,
    /// The agent's presence now.
    pub presence: Presence,
    /// Chats they hold.
    pub chats: Vec<ConversationId>,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// A colleague (must be connected).
    Agent(String),
    /// A team's queue.
    Team(String),
}

type Reply<T> = oneshot::Sender<Result<T, DeskError>>;

enum Command {
    Owner(OwnerChange),
    OfflineFiled,
    OfflineLoaded(Vec<StoredOfflineRequest>),
    Directory {
        teams: Vec<Team>,
        agents: Vec<Agent>,
    },
    Connect {
        agent: Agent,
        reply: oneshot::Sender<Connected>,
    },
    Disconnect {
        agent: String,
        conn: u64,
    },
    Presence {
        agent: String,
        presence: Presence,
    },
    Accept {
        agent: String,
        conversation: ConversationId,
        reply: Reply<()>,
    },
    Decline {
        agent: String,
        conversation: ConversationId,
    },
    Claim {
        agent: String,
        conversation: ConversationId,
        reply: Reply<()>,
    },
    AssignDone {
        conversation: ConversationId,
        agent: String,
        result: Result<(), DeskError>,
        reply: Option<Reply<()>>,
    },
    Transfer {
        agent: String,
        conversation: ConversationId,
        target: TransferTarget,
        note: Option<String>,
        reply: Reply<()>,
    },
    CloseOffline {
        agent: String,
        id: i64,
        reply: Reply<()>,
    },
    OfferExpired {
        conversation: ConversationId,
        offer: u64,
    },
    GraceExpired {
        agent: String,
        epoch: u64,
    },
    Holder {
        conversation: ConversationId,
        reply: oneshot::Sender<Option<String>>,
    },
    Position {
        conversation: ConversationId,
        reply: oneshot::Sender<Option<(usize, u32)>>,
    },
    CanSee {
        agent: String,
        conversation: ConversationId,
        reply: oneshot::Sender<bool>,
    },
}

/// Handle to the desk task; cheap to clone. The conversation hub reports ownership
/// changes to it; agent sockets ask it for chats.
#[derive(Clone)]
pub struct Desk {
    tx: mpsc::UnboundedSender<Command>,
}

impl HandoffDesk for Desk {
    fn owner_changed(&self, change: OwnerChange) {
        let _ = self.tx.send(Command::Owner(change));
    }

    fn offline_request_filed(&self, _conversation: ConversationId, _team: &str) {
        let _ = self.tx.send(Command::OfflineFiled);
    }
}

fn gone() -> DeskError {
    DeskError::Unavailable("the desk is shutting down".to_owned())
}

impl Desk {
    /// Starts the desk over `hub` (and connects it as the hub's desk): rebuilds queues and
    /// holdings from the stored ownership columns, then serves until shutdown.
    ///
    /// # Errors
    /// When the stored ownership or the accounts cannot be read.
    pub async fn start(
        hub: Hub,
        accounts: Accounts,
        config: HandoffConfig,
        clock: SharedClock,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Self, crate::store::StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let desk = Self { tx: tx.clone() };
        let store = Arc::clone(hub.store());
        let mut state = state::DeskState::new(hub.clone(), store, config, clock, tx);
        let (teams, agents) = read_directory(&accounts).await;
        state.set_directory(teams, agents);
        state.rebuild().await?;
        hub.set_desk(Arc::new(desk.clone()));
        tokio::spawn(state.run(rx, accounts, shutdown));
        Ok(desk)
    }

    /// Re-reads teams and agents (after an edit through the API); commands sent after
    /// this returns see them.
    pub async fn refresh(&self, accounts: &Accounts) {
        let (teams, agents) = read_directory(accounts).await;
        let _ = self.tx.send(Command::Directory { teams, agents });
    }

    /// Registers a connection of `agent`; events for it arrive on [`Connected::events`].
    ///
    /// # Errors
    /// When the desk is gone (shutdown).
    pub async fn connect(&self, agent: Agent) -> Result<Connected, DeskError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Connect { agent, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// The connection closed.
    pub fn disconnect(&self, agent: &str, conn: u64) {
        let _ = self.tx.send(Command::Disconnect { agent: agent.to_owned(), conn });
    }

    /// Online or away (for every connection of the agent).
    pub fn set_presence(&self, agent: &str, presence: Presence) {
        let _ = self.tx.send(Command::Presence { agent: agent.to_owned(), presence });
    }

    /// Accepts an offer made to `agent`.
    ///
    /// # Errors
    /// [`DeskError::OfferGone`] when the offer expired or went elsewhere.
    pub async fn accept(&self, agent: &str, conversation: ConversationId) -> Result<(), DeskError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Accept { agent: agent.to_owned(), conversation, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Declines an offer; it moves to the next agent.
    pub fn decline(&self, agent: &str, conversation: ConversationId) {
        let _ = self.tx.send(Command::Decline { agent: agent.to_owned(), conversation });
    }

    /// Takes a waiting chat from one of the agent's teams' queues.
    ///
    /// # Errors
    /// [`DeskError::Taken`] when someone else was first; [`DeskError::NotFound`] when it
    /// is not in the agent's queues.
    pub async fn claim(&self, agent: &str, conversation: ConversationId) -> Result<(), DeskError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Claim { agent: agent.to_owned(), conversation, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Transfers a chat the agent holds, with an optional private note for the next person.
    ///
    /// # Errors
    /// When the chat is not theirs, or the target is unknown or offline.
    pub async fn transfer(
        &self,
        agent: &str,
        conversation: ConversationId,
        target: TransferTarget,
        note: Option<String>,
    ) -> Result<(), DeskError> {
        let (reply, rx) = oneshot::channel();
        let command = Command::Transfer { agent: agent.to_owned(), conversation, target, note, reply };
        self.tx.send(command).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Marks an offline request handled.
    ///
    /// # Errors
    /// [`DeskError::NoSuchRequest`] when it is not open or not in the agent's teams.
    pub async fn close_offline_request(&self, agent: &str, id: i64) -> Result<(), DeskError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::CloseOffline { agent: agent.to_owned(), id, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Who holds the chat now, if anyone.
    pub async fn holder(&self, conversation: ConversationId) -> Option<String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Holder { conversation, reply }).ok()?;
        rx.await.ok().flatten()
    }

    /// The chat's place in its queue and the estimated wait (minutes), if it waits.
    pub async fn position(&self, conversation: ConversationId) -> Option<(usize, u32)> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Position { conversation, reply }).ok()?;
        rx.await.ok().flatten()
    }

    /// True when the agent holds the chat or it waits in one of their teams' queues
    /// (what they may read the packet and transcript of).
    pub async fn can_see(&self, agent: &str, conversation: ConversationId) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::CanSee { agent: agent.to_owned(), conversation, reply }).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

fn ser_at<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::store::format_at(*at))
}

async fn read_directory(accounts: &Accounts) -> (Vec<Team>, Vec<Agent>) {
    let teams = accounts.list_teams().await.unwrap_or_else(|e| {
        warn!(error = %e, "cannot read teams");
        Vec::new()
    });
    let agents = accounts.list_agents().await.unwrap_or_else(|e| {
        warn!(error = %e, "cannot read agents");
        Vec::new()
    });
    (teams, agents)
}
