//! The agent socket `GET /ws/agent`: authenticate in the first frame (never a token in a
//! URL), then presence, the queue, offers, claims, replies, notes, typing, transfers,
//! hand-back and close. Every chat the agent holds is followed live; a reconnecting agent
//! says which seq it has per chat and gets exactly what it missed.
//!
//! The protocol (every frame, every error code) is in `docs/protocol.md`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::telemetry::{Peer, Telemetry};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tracing::{Instrument, debug, error, info, info_span};

use super::AppState;
use super::visitor_ws::{ReadError, read_error};
use crate::conversations::{ActError, Attachment, Live};
use crate::engine::{AgentAction, Refusal};
use crate::handoff::accounts::{Agent, AgentRole};
use crate::handoff::desk::{AgentEvent, Connected, DeskError, Presence, TransferTarget};
use crate::handoff::packet;
use crate::ids::{ConversationId, Seq};
use crate::protocol::Sender;

const READ_BUFFER_BYTES: usize = 8 * 1024;
const MAX_WRITE_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Largest frame an agent may send.
const MAX_FRAME_BYTES: usize = 64 * 1024;
const PAGE: u32 = 200;
const PING_EVERY: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(75);
/// Frames per ten seconds an agent may send (typing included).
const FRAMES_PER_10S: f64 = 100.0;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// No `auth` in time.
const CLOSE_AUTH_TIMEOUT: u16 = 4408;
/// The token was refused.
const CLOSE_UNAUTHORIZED: u16 = 4401;
const MAX_CLIENT_ID: usize = 64;

/// `GET /ws/agent`.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let counted = state.hub.telemetry().connection(Peer::Agent);
            async move {
                let _counted = counted;
                session(socket, state).await;
            }
            .instrument(info_span!("agent", %peer))
        })
}

type Tx = SplitSink<WebSocket, Message>;

/// A chat the agent holds, followed live.
struct Feed {
    attachment: Attachment,
    /// Highest seq sent to this connection.
    sent_max: Seq,
}

/// The client's frames. Unknown fields are refused so typos are loud.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Frame {
    Auth {
        token: String,
        /// Highest seq the client has, per held chat.
        #[serde(default)]
        resume: BTreeMap<ConversationId, i64>,
    },
    Presence {
        status: Presence,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Accept {
        conversation: ConversationId,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Decline {
        conversation: ConversationId,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Claim {
        conversation: ConversationId,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Message {
        conversation: ConversationId,
        client_id: String,
        text: String,
    },
    Note {
        conversation: ConversationId,
        client_id: String,
        text: String,
    },
    Typing {
        conversation: ConversationId,
    },
    Transfer {
        conversation: ConversationId,
        #[serde(default)]
        to_agent: Option<String>,
        #[serde(default)]
        to_team: Option<String>,
        #[serde(default)]
        note: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    HandBack {
        conversation: ConversationId,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Close {
        conversation: ConversationId,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Packet {
        conversation: ConversationId,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    History {
        conversation: ConversationId,
        #[serde(default)]
        after: i64,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    OfflineDone {
        id: i64,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
}

const FRAME_TYPES: &[&str] = &[
    "auth",
    "presence",
    "accept",
    "decline",
    "claim",
    "message",
    "note",
    "typing",
    "transfer",
    "hand_back",
    "close",
    "packet",
    "history",
    "offline_done",
];

/// An error frame's code and text; `reference` and `client_id` tie it to the request.
struct Refused {
    code: &'static str,
    message: String,
}

fn refused(code: &'static str, message: impl Into<String>) -> Refused {
    Refused { code, message: message.into() }
}

fn from_desk(e: &DeskError) -> Refused {
    let code = match e {
        DeskError::NotFound => "not_found",
        DeskError::Taken => "taken",
        DeskError::OfferGone => "offer_gone",
        DeskError::UnknownTarget => "unknown_target",
        DeskError::TargetOffline => "target_offline",
        DeskError::SameAgent => "same_agent",
        DeskError::NoSuchRequest => "no_such_request",
        DeskError::Busy => "busy",
        DeskError::Unavailable(_) => "internal",
    };
    refused(code, e.to_string())
}

fn from_act(e: &ActError) -> Refused {
    match e {
        // Not held and nonexistent look the same: nothing about other chats leaks.
        ActError::Refused(Refusal::NotHeld) => refused("not_found", "No such chat among yours."),
        ActError::Refused(Refusal::NotQueued) => refused("taken", "The chat is not waiting in a queue."),
        ActError::Refused(Refusal::SameAgent) => refused("same_agent", "The chat is already yours."),
        // Visitors' own refusals (ratings, feedback) never come from an agent's action.
        ActError::Refused(r @ (Refusal::AlreadyRated | Refusal::RatingNotRequested | Refusal::AlreadyVoted)) => {
            refused("refused", r.to_string())
        }
        ActError::Busy => refused("busy", "The chat is busy for a moment (an order lookup); retry."),
        ActError::Store(e) => {
            error!(error = %e, "store failure on an agent action");
            refused("internal", "The action could not be saved; retry.")
        }
    }
}

enum Gone {
    Client,
    ClosedByUs,
}

struct Session {
    state: AppState,
    tx: Tx,
    agent: Agent,
    agent_id: String,
    conn: u64,
    feeds: HashMap<ConversationId, Feed>,
    tokens: f64,
    refilled: Instant,
    last_heard: Instant,
}

async fn session(socket: WebSocket, state: AppState) {
    let (mut tx, mut rx) = socket.split();
    let shutdown = state.shutdown.clone();
    let deadline = tokio::time::Instant::now() + state.config.edge.hello_timeout;
    // Nothing but `auth` until the agent is known.
    let auth = loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {
                let _ = send_error(&mut tx, state.hub.telemetry(), None, &refused("auth_timeout", "No \"auth\" frame in time; closing.")).await;
                let _ = close(&mut tx, CLOSE_AUTH_TIMEOUT, "auth timeout").await;
                return;
            }
            frame = rx.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                let _ = send_error(
                    &mut tx,
                    state.hub.telemetry(),
                    None,
                    &refused("binary_not_supported", "Send JSON text frames."),
                )
                .await;
                continue;
            }
            Some(Err(e)) => {
                let (code, close_code) = match read_error(e) {
                    ReadError::TooLarge => ("frame_too_large", CLOSE_TOO_BIG),
                    ReadError::InvalidUtf8 => ("invalid_utf8", CLOSE_INVALID_PAYLOAD),
                    ReadError::Other => return,
                };
                let _ = send_error(&mut tx, state.hub.telemetry(), None, &refused(code, "Unreadable frame; closing."))
                    .await;
                let _ = close(&mut tx, close_code, code).await;
                return;
            }
            _ => return,
        };
        match decode(text.as_str()) {
            Ok(Frame::Auth { token, resume }) => break (token, resume),
            Ok(_) => {
                let _ = send_error(
                    &mut tx,
                    state.hub.telemetry(),
                    None,
                    &refused("auth_required", "Send \"auth\" before anything else."),
                )
                .await;
            }
            Err(e) => {
                let _ = send_error(&mut tx, state.hub.telemetry(), None, &e).await;
            }
        }
    };
    let (token, resume) = auth;
    let agent = match state.accounts.authenticate(&token).await {
        Ok(agent) if takes_chats(&agent) => agent,
        Ok(_) => {
            let e = refused("forbidden", "This account has no agent role; it cannot take chats.");
            let _ = send_error(&mut tx, state.hub.telemetry(), None, &e).await;
            let _ = close(&mut tx, CLOSE_UNAUTHORIZED, "forbidden").await;
            return;
        }
        Err(e) => {
            debug!(error = %e, "agent socket refused");
            let _ = send_error(
                &mut tx,
                state.hub.telemetry(),
                None,
                &refused("unauthorized", "Unknown, expired or revoked session; log in again."),
            )
            .await;
            let _ = close(&mut tx, CLOSE_UNAUTHORIZED, "unauthorized").await;
            return;
        }
    };
    let Ok(connected) = state.desk.connect(agent.clone()).await else { return };
    let agent_id = agent.id.to_string();
    info!(agent = %agent_id, "agent connected");
    let Connected { conn, mut events, presence, chats } = connected;
    let mut session = Session {
        state,
        tx,
        agent,
        agent_id,
        conn,
        feeds: HashMap::new(),
        tokens: FRAMES_PER_10S,
        refilled: Instant::now(),
        last_heard: Instant::now(),
    };
    let result = session.run(&mut rx, &mut events, presence, chats, &resume, &token).await;
    session.state.desk.disconnect(&session.agent_id, session.conn);
    info!(agent = %session.agent_id, "agent disconnected");
    if let Err(Gone::ClosedByUs) = result {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Agents and managers take chats; an editor-only account does not.
fn takes_chats(agent: &Agent) -> bool {
    agent.roles.iter().any(|r| matches!(r, AgentRole::Agent | AgentRole::Manager))
}

fn decode(text: &str) -> Result<Frame, Refused> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(refused("frame_too_large", format!("Frames are limited to {MAX_FRAME_BYTES} bytes.")));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| refused("bad_json", format!("Frame is not valid JSON: {e}.")))?;
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err(refused("missing_type", "Frame must be a JSON object with a string \"type\"."));
    };
    let kind: String = kind.chars().take(40).collect();
    if !FRAME_TYPES.contains(&kind.as_str()) {
        return Err(refused("unknown_type", format!("Unknown frame type \"{kind}\".")));
    }
    serde_json::from_value(value).map_err(|e| refused("invalid_frame", format!("Invalid \"{kind}\" frame: {e}.")))
}

async fn send_json(tx: &mut Tx, value: &Value) -> Result<(), Gone> {
    tx.send(Message::Text(Utf8Bytes::from(value.to_string()))).await.map_err(|_| Gone::Client)
}

async fn send_error(tx: &mut Tx, telemetry: &Telemetry, reference: Option<&str>, e: &Refused) -> Result<(), Gone> {
    telemetry.agent_error(e.code);
    let mut frame = json!({ "type": "error", "code": e.code, "message": e.message });
    if let Some(r) = reference {
        frame["ref"] = json!(r);
    }
    send_json(tx, &frame).await
}

async fn close(tx: &mut Tx, code: u16, reason: &str) -> Result<(), Gone> {
    let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
    tx.send(Message::Close(Some(frame))).await.map_err(|_| Gone::Client)
}

/// Waits for the next live moment of any followed chat.
async fn next_live(feeds: &mut HashMap<ConversationId, Feed>) -> (ConversationId, Result<Live, RecvError>) {
    if feeds.is_empty() {
        return std::future::pending().await;
    }
    let waits = feeds.iter_mut().map(|(id, feed)| {
        let id = *id;
        Box::pin(async move { (id, feed.attachment.live.recv().await) })
    });
    futures_util::future::select_all(waits).await.0
}

impl Session {
    async fn run(
        &mut self,
        rx: &mut futures_util::stream::SplitStream<WebSocket>,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<AgentEvent>,
        presence: Presence,
        chats: Vec<ConversationId>,
        resume: &BTreeMap<ConversationId, i64>,
        token: &str,
    ) -> Result<(), Gone> {
        let teams: Vec<&str> = self.agent.teams.iter().map(|t| t.as_str()).collect();
        let ready = json!({
            "type": "ready",
            "agent": {
                "id": self.agent_id,
                "name": self.agent.name,
                "email": self.agent.email,
                "teams": teams,
                "capacity": self.agent.capacity,
                "avatar_url": self.agent.avatar_url,
            },
            "presence": presence,
            "chats": chats,
        });
        send_json(&mut self.tx, &ready).await?;
        for id in chats {
            match resume.get(&id) {
                Some(seq) => self.follow_from(id, Seq(*seq)).await?,
                None => self.follow_with_packet(id, "assigned").await?,
            }
        }
        let shutdown = self.state.shutdown.clone();
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = close(&mut self.tx, CLOSE_GOING_AWAY, "server shutting down").await;
                    return Ok(());
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > DEAD_AFTER {
                        return Err(Gone::Client);
                    }
                    // A logout, an expiry or a disabled account ends the connection too.
                    if !self.state.accounts.authenticate(token).await.is_ok_and(|a| takes_chats(&a)) {
                        let e = refused("unauthorized", "The session ended; log in again.");
                        let _ = send_error(&mut self.tx, self.state.hub.telemetry(), None, &e).await;
                        let _ = close(&mut self.tx, CLOSE_UNAUTHORIZED, "unauthorized").await;
                        return Err(Gone::ClosedByUs);
                    }
                    self.tx.send(Message::Ping(axum::body::Bytes::new())).await.map_err(|_| Gone::Client)?;
                }
                frame = rx.next() => self.on_frame(frame).await?,
                event = events.recv() => match event {
                    Some(event) => self.on_events(event, events).await?,
                    None => return Ok(()),
                },
                (id, live) = next_live(&mut self.feeds) => self.on_live(id, live).await?,
            }
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.refilled).as_secs_f64() * FRAMES_PER_10S / 10.0;
        self.tokens = (self.tokens + refill).min(FRAMES_PER_10S);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<(), Gone> {
        let message = match frame {
            None | Some(Ok(Message::Close(_))) => return Err(Gone::Client),
            Some(Err(_)) => {
                let _ = send_error(
                    &mut self.tx,
                    self.state.hub.telemetry(),
                    None,
                    &refused("frame_too_large", "Frame too large; closing."),
                )
                .await;
                let _ = close(&mut self.tx, CLOSE_TOO_BIG, "frame too large").await;
                return Err(Gone::ClosedByUs);
            }
            Some(Ok(message)) => message,
        };
        self.last_heard = Instant::now();
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return send_error(
                    &mut self.tx,
                    self.state.hub.telemetry(),
                    None,
                    &refused("binary_not_supported", "Send JSON text frames."),
                )
                .await;
            }
            _ => return Ok(()),
        };
        if !self.allow() {
            return send_error(
                &mut self.tx,
                self.state.hub.telemetry(),
                None,
                &refused("rate_limited", "Too many frames; slow down."),
            )
            .await;
        }
        match decode(text.as_str()) {
            Ok(frame) => self.on_client_frame(frame).await,
            Err(e) => send_error(&mut self.tx, self.state.hub.telemetry(), None, &e).await,
        }
    }

    async fn ok(&mut self, reference: Option<&str>) -> Result<(), Gone> {
        let mut frame = json!({ "type": "ok" });
        if let Some(r) = reference {
            frame["ref"] = json!(r);
        }
        send_json(&mut self.tx, &frame).await
    }

    async fn reply(&mut self, reference: Option<String>, result: Result<(), Refused>) -> Result<(), Gone> {
        match result {
            Ok(()) => self.ok(reference.as_deref()).await,
            Err(e) => send_error(&mut self.tx, self.state.hub.telemetry(), reference.as_deref(), &e).await,
        }
    }

    async fn on_client_frame(&mut self, frame: Frame) -> Result<(), Gone> {
        let desk = self.state.desk.clone();
        let hub = self.state.hub.clone();
        let me = self.agent_id.clone();
        match frame {
            Frame::Auth { .. } => {
                send_error(
                    &mut self.tx,
                    self.state.hub.telemetry(),
                    None,
                    &refused("already_authenticated", "This connection is signed in."),
                )
                .await
            }
            Frame::Presence { status, reference } => {
                desk.set_presence(&me, status);
                self.ok(reference.as_deref()).await
            }
            Frame::Accept { conversation, reference } => {
                let result = desk.accept(&me, conversation).await.map_err(|e| from_desk(&e));
                self.reply(reference, result).await
            }
            Frame::Decline { conversation, reference } => {
                desk.decline(&me, conversation);
                self.ok(reference.as_deref()).await
            }
            Frame::Claim { conversation, reference } => {
                let result = desk.claim(&me, conversation).await.map_err(|e| from_desk(&e));
                self.reply(reference, result).await
            }
            Frame::Message { conversation, client_id, text } => self.write(conversation, client_id, text, false).await,
            Frame::Note { conversation, client_id, text } => self.write(conversation, client_id, text, true).await,
            Frame::Typing { conversation } => {
                if self.feeds.contains_key(&conversation) {
                    hub.signal(conversation, Live::Typing { from: Sender::Agent, name: Some(self.agent.name.clone()) });
                    Ok(())
                } else {
                    send_error(
                        &mut self.tx,
                        self.state.hub.telemetry(),
                        None,
                        &refused("not_found", "No such chat among yours."),
                    )
                    .await
                }
            }
            Frame::Transfer { conversation, to_agent, to_team, note, reference } => {
                let target = match (to_agent, to_team) {
                    (Some(agent), None) => TransferTarget::Agent(agent),
                    (None, Some(team)) => TransferTarget::Team(team),
                    _ => {
                        let e =
                            refused("invalid_frame", "A transfer names exactly one of \"to_agent\" or \"to_team\".");
                        return send_error(&mut self.tx, self.state.hub.telemetry(), reference.as_deref(), &e).await;
                    }
                };
                if note.as_ref().is_some_and(|n| n.len() > self.state.config.limits.max_text_bytes) {
                    return send_error(
                        &mut self.tx,
                        self.state.hub.telemetry(),
                        reference.as_deref(),
                        &refused("text_too_long", "The note is too long."),
                    )
                    .await;
                }
                let result = desk.transfer(&me, conversation, target, note).await.map_err(|e| from_desk(&e));
                self.reply(reference, result).await
            }
            Frame::HandBack { conversation, reference } => {
                let result =
                    hub.act(conversation, AgentAction::HandBack { agent: me }, None).await.map_err(|e| from_act(&e));
                self.reply(reference, result).await
            }
            Frame::Close { conversation, reference } => {
                let result =
                    hub.act(conversation, AgentAction::Close { agent: me }, None).await.map_err(|e| from_act(&e));
                self.reply(reference, result).await
            }
            Frame::Packet { conversation, reference } => {
                if !desk.can_see(&me, conversation).await {
                    let e = refused("not_found", "No such chat among yours or your teams' queues.");
                    return send_error(&mut self.tx, self.state.hub.telemetry(), reference.as_deref(), &e).await;
                }
                let packet = self.packet(conversation).await;
                let mut frame = json!({ "type": "packet", "conversation": conversation, "packet": packet });
                if let Some(r) = reference {
                    frame["ref"] = json!(r);
                }
                send_json(&mut self.tx, &frame).await
            }
            Frame::History { conversation, after, reference } => self.history(conversation, after, reference).await,
            Frame::OfflineDone { id, reference } => {
                let result = desk.close_offline_request(&me, id).await.map_err(|e| from_desk(&e));
                self.reply(reference, result).await
            }
        }
    }

    /// A reply or a private note: stored once per `client_id`, acknowledged with it.
    async fn write(
        &mut self,
        conversation: ConversationId,
        client_id: String,
        text: String,
        note: bool,
    ) -> Result<(), Gone> {
        let cid = Some(client_id.as_str());
        let fail = |code, message: &str| (code, message.to_owned());
        let problem = if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
            Some(fail("invalid_frame", "\"client_id\" must be 1 to 64 bytes."))
        } else if text.trim().is_empty() {
            Some(fail("empty_text", "The text is empty."))
        } else if text.len() > self.state.config.limits.max_text_bytes {
            Some(fail("text_too_long", "The text is too long."))
        } else {
            None
        };
        if let Some((code, message)) = problem {
            return self.error_for(cid, &refused(code, message)).await;
        }
        let agent = self.agent_id.clone();
        let action = if note { AgentAction::Note { agent, text } } else { AgentAction::Message { agent, text } };
        // Stored under the agent's id, so it can never collide with the visitor's or a
        // colleague's ids; a retry with the same id is stored once.
        let stored_id = format!("{}:{client_id}", self.agent_id);
        let result = self.state.hub.act(conversation, action, Some(stored_id)).await;
        // Relay what was stored before acknowledging it.
        self.drain(conversation).await?;
        match result {
            Ok(()) => {
                let frame = json!({ "type": "ack", "conversation": conversation, "client_id": client_id });
                send_json(&mut self.tx, &frame).await
            }
            Err(e) => self.error_for(cid, &from_act(&e)).await,
        }
    }

    async fn error_for(&mut self, client_id: Option<&str>, e: &Refused) -> Result<(), Gone> {
        let mut frame = json!({ "type": "error", "code": e.code, "message": e.message });
        if let Some(c) = client_id {
            frame["client_id"] = json!(c);
        }
        send_json(&mut self.tx, &frame).await
    }

    async fn history(&mut self, id: ConversationId, after: i64, reference: Option<String>) -> Result<(), Gone> {
        if !self.state.desk.can_see(&self.agent_id, id).await {
            let e = refused("not_found", "No such chat among yours or your teams' queues.");
            return send_error(&mut self.tx, self.state.hub.telemetry(), reference.as_deref(), &e).await;
        }
        match self.state.store.messages_after(id, Seq(after), PAGE, true).await {
            Ok(messages) => {
                let more = messages.len() == PAGE as usize;
                let mut frame = json!({ "type": "history", "conversation": id, "messages": messages, "more": more });
                if let Some(r) = reference {
                    frame["ref"] = json!(r);
                }
                send_json(&mut self.tx, &frame).await
            }
            Err(e) => {
                error!(error = %e, "history failed");
                send_error(
                    &mut self.tx,
                    self.state.hub.telemetry(),
                    reference.as_deref(),
                    &refused("internal", "Could not read the transcript."),
                )
                .await
            }
        }
    }

    async fn packet(&self, id: ConversationId) -> Value {
        let now = self.state.hub.now();
        match packet::build(&self.state.store, Some(&self.state.orders.source), id, now).await {
            Ok(Some(packet)) => serde_json::to_value(packet).unwrap_or(Value::Null),
            Ok(None) => Value::Null,
            Err(e) => {
                error!(error = %e, "cannot build a handoff packet");
                Value::Null
            }
        }
    }

    /// Handles `first` and whatever else is already waiting; of consecutive queue views
    /// only the newest is sent (each replaces the one before).
    async fn on_events(
        &mut self,
        first: AgentEvent,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<AgentEvent>,
    ) -> Result<(), Gone> {
        let mut pending = Some(first);
        while let Some(event) = pending.take() {
            match (event, events.try_recv()) {
                (AgentEvent::Queue(_), Ok(next @ AgentEvent::Queue(_))) => pending = Some(next),
                (event, Ok(next)) => {
                    self.on_event(event).await?;
                    pending = Some(next);
                }
                (event, Err(_)) => self.on_event(event).await?,
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, event: AgentEvent) -> Result<(), Gone> {
        match event {
            AgentEvent::Queue(view) => {
                let mut frame = serde_json::to_value(&*view).unwrap_or_else(|_| json!({}));
                frame["type"] = json!("queue");
                send_json(&mut self.tx, &frame).await
            }
            AgentEvent::Offer { conversation, team, expires_at } => {
                let mut packet = self.packet(conversation).await;
                // The conversation may not have heard where the desk placed it yet.
                if packet["team"] == "" {
                    packet["team"] = json!(team);
                }
                let frame = json!({
                    "type": "offer",
                    "conversation": conversation,
                    "team": team,
                    "expires_at": crate::store::format_at(expires_at),
                    "packet": packet,
                });
                send_json(&mut self.tx, &frame).await
            }
            AgentEvent::OfferWithdrawn { conversation, why } => {
                send_json(&mut self.tx, &json!({ "type": "offer_withdrawn", "conversation": conversation, "why": why }))
                    .await
            }
            AgentEvent::Assigned { conversation } => {
                if self.feeds.contains_key(&conversation) {
                    return Ok(());
                }
                self.follow_with_packet(conversation, "assigned").await
            }
            AgentEvent::Released { conversation, why } => {
                self.drain(conversation).await?;
                self.feeds.remove(&conversation);
                send_json(&mut self.tx, &json!({ "type": "released", "conversation": conversation, "why": why })).await
            }
            AgentEvent::Presence(presence) => {
                send_json(&mut self.tx, &json!({ "type": "presence", "status": presence })).await
            }
        }
    }

    /// Follows a chat and sends its packet (with the transcript so far); later messages
    /// come live, none twice.
    async fn follow_with_packet(&mut self, id: ConversationId, kind: &str) -> Result<(), Gone> {
        let attachment = self.state.hub.attach(id);
        let packet = self.packet(id).await;
        let last = packet["transcript"].as_array().and_then(|t| t.last()).and_then(|m| m["seq"].as_i64()).unwrap_or(0);
        self.feeds.insert(id, Feed { attachment, sent_max: Seq(last) });
        send_json(&mut self.tx, &json!({ "type": kind, "conversation": id, "packet": packet })).await
    }

    /// Follows a chat the client already has up to `seq`: sends what it missed.
    async fn follow_from(&mut self, id: ConversationId, seq: Seq) -> Result<(), Gone> {
        let attachment = self.state.hub.attach(id);
        self.feeds.insert(id, Feed { attachment, sent_max: seq });
        send_json(&mut self.tx, &json!({ "type": "resumed", "conversation": id, "after": seq })).await?;
        self.replay(id).await
    }

    /// Sends every stored message after what this connection has.
    async fn replay(&mut self, id: ConversationId) -> Result<(), Gone> {
        loop {
            let Some(after) = self.feeds.get(&id).map(|f| f.sent_max) else { return Ok(()) };
            let page = match self.state.store.messages_after(id, after, PAGE, true).await {
                Ok(page) => page,
                Err(e) => {
                    error!(error = %e, "agent replay failed");
                    return send_error(
                        &mut self.tx,
                        self.state.hub.telemetry(),
                        None,
                        &refused("internal", "Could not load messages; reconnect."),
                    )
                    .await;
                }
            };
            let done = page.len() < PAGE as usize;
            for message in page {
                if let Some(feed) = self.feeds.get_mut(&id) {
                    feed.sent_max = message.seq;
                }
                send_json(&mut self.tx, &json!({ "type": "message", "conversation": id, "message": message })).await?;
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn on_live(&mut self, id: ConversationId, live: Result<Live, RecvError>) -> Result<(), Gone> {
        match live {
            Ok(Live::Message(message)) => {
                let Some(feed) = self.feeds.get_mut(&id) else { return Ok(()) };
                if message.seq <= feed.sent_max {
                    return Ok(());
                }
                feed.sent_max = message.seq;
                send_json(&mut self.tx, &json!({ "type": "message", "conversation": id, "message": *message })).await
            }
            Ok(Live::Typing { from: Sender::Visitor, .. }) => {
                send_json(&mut self.tx, &json!({ "type": "typing", "conversation": id, "from": "visitor" })).await
            }
            Ok(Live::Typing { .. } | Live::Queue { .. }) => Ok(()),
            Err(RecvError::Lagged(_)) => self.replay(id).await,
            Err(RecvError::Closed) => {
                // The conversation's actor stopped: deleted (stop following), or retired
                // (follow anew).
                if !self.state.hub.exists(id).await.unwrap_or(false) {
                    self.feeds.remove(&id);
                    return send_json(
                        &mut self.tx,
                        &json!({ "type": "released", "conversation": id, "why": "deleted" }),
                    )
                    .await;
                }
                if let Some(feed) = self.feeds.get_mut(&id) {
                    feed.attachment = self.state.hub.attach(id);
                }
                self.replay(id).await
            }
        }
    }

    /// Relays what a chat has published already, without waiting.
    async fn drain(&mut self, id: ConversationId) -> Result<(), Gone> {
        loop {
            let next = match self.feeds.get_mut(&id) {
                Some(feed) => feed.attachment.live.try_recv(),
                None => return Ok(()),
            };
            match next {
                Ok(live) => self.on_live(id, Ok(live)).await?,
                Err(TryRecvError::Lagged(n)) => self.on_live(id, Err(RecvError::Lagged(n))).await?,
                Err(_) => return Ok(()),
            }
        }
    }
}
