//! One visitor WebSocket: decode frames, forward them to the conversation, relay stored
//! messages back. A bad frame gets an `error` frame and the connection stays usable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tracing::{Instrument, debug, error, info_span};

use super::AppState;
use crate::conversations::{Attachment, Opened, VisitorInput};
use crate::ids::{ConversationId, Seq};
use crate::protocol::{ChatMessage, ClientFrame, ErrorCode, Hello, Limits, ProtocolError, ServerFrame};
use crate::store::StoreError;

/// Socket read buffer: small, because an idle visitor should cost little memory.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes a slow client may leave unread before the connection is dropped.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;
const REPLAY_PAGE: u32 = 200;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_GOING_AWAY: u16 = 1001;

/// `GET /ws`: checks the origin, then upgrades with tight buffer and size limits.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state.config.allowed_origins, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    if state.kb.load().is_none() {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting up, retry shortly\n").into_response();
    }
    let hard_limit = state.config.limits.max_frame_bytes * 4;
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| session(socket, state).instrument(info_span!("visitor", %peer)))
}

fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    // Non-browser clients send no Origin; browsers always do, so this still guards pages.
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    origin.to_str().is_ok_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o.trim_end_matches('/'))))
}

type Tx = SplitSink<WebSocket, Message>;

/// Token bucket: `capacity` frames, refilled over ten seconds.
struct RateLimiter {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(per_10s: u32) -> Self {
        let capacity = f64::from(per_10s);
        Self { capacity, tokens: capacity, last: Instant::now() }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.capacity / 10.0;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Connection {
    state: AppState,
    tx: Tx,
    attached: Option<Attachment>,
    /// Highest seq this client has (sent by us, or claimed in its hello).
    sent_max: Seq,
    limiter: RateLimiter,
}

/// Why the session loop stops.
enum Stop {
    ClientGone,
    Shutdown,
    /// We closed after an oversized frame; unread input is still queued.
    ClosedTooLarge,
}

/// How long to keep reading after closing for an oversized frame. Dropping a TCP socket
/// with unread input makes the kernel send RST, which can destroy our error and close
/// frames before the client reads them.
const LINGER_AFTER_CLOSE: std::time::Duration = std::time::Duration::from_secs(1);

async fn session(socket: WebSocket, state: AppState) {
    let (tx, mut rx) = socket.split();
    let limiter = RateLimiter::new(state.config.limits.frames_per_10s);
    let shutdown = state.shutdown.clone();
    let mut conn = Connection { state, tx, attached: None, sent_max: Seq(0), limiter };
    let stop = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Stop::Shutdown,
            frame = rx.next() => match conn.on_frame(frame).await {
                Ok(()) => {}
                Err(Gone::TooLarge) => break Stop::ClosedTooLarge,
                Err(Gone::Client) => break Stop::ClientGone,
            },
            live = next_live(conn.attached.as_mut()) => {
                if conn.on_live(live).await.is_err() {
                    break Stop::ClientGone;
                }
            }
        }
    };
    match stop {
        Stop::Shutdown => {
            let _ = conn.close(CLOSE_GOING_AWAY, "server shutting down").await;
        }
        Stop::ClosedTooLarge => {
            // The stream cannot be read past the oversized frame, so just hold the socket
            // open until the client has had time to read our frames (or closes itself).
            let _ = tokio::time::timeout(LINGER_AFTER_CLOSE, async { while rx.next().await.is_some() {} }).await;
            tokio::time::sleep(LINGER_AFTER_CLOSE / 4).await;
        }
        Stop::ClientGone => {}
    }
    drop(rx);
}

async fn next_live(attached: Option<&mut Attachment>) -> Result<Arc<ChatMessage>, RecvError> {
    match attached {
        Some(a) => a.live.recv().await,
        None => std::future::pending().await,
    }
}

/// The session must end.
enum Gone {
    /// The client has gone or the socket failed.
    Client,
    /// We closed the socket because of an oversized frame.
    TooLarge,
}

impl Connection {
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Gone> {
        self.tx.send(Message::Text(Utf8Bytes::from(frame.to_json()))).await.map_err(|_| Gone::Client)
    }

    async fn send_error(&mut self, e: ProtocolError) -> Result<(), Gone> {
        debug!(code = e.code.as_str(), "rejected frame");
        self.send(&ServerFrame::from(e)).await
    }

    async fn close(&mut self, code: u16, reason: &str) -> Result<(), Gone> {
        let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
        self.tx.send(Message::Close(Some(frame))).await.map_err(|_| Gone::Client)
    }

    fn limits(&self) -> Limits {
        let l = self.state.config.limits;
        Limits { max_frame_bytes: l.max_frame_bytes, max_text_bytes: l.max_text_bytes }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<(), Gone> {
        let message = match frame {
            None => return Err(Gone::Client),
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                if is_capacity_error(e) {
                    let hard = self.limits().max_frame_bytes * 4;
                    let msg = format!("Frame exceeds the hard limit of {hard} bytes; closing.");
                    let _ = self.send_error(ProtocolError::new(ErrorCode::FrameTooLarge, msg)).await;
                    let _ = self.close(CLOSE_TOO_BIG, "frame too large").await;
                    return Err(Gone::TooLarge);
                }
                return Err(Gone::Client);
            }
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let e = ProtocolError::new(
                    ErrorCode::BinaryNotSupported,
                    "Binary frames are not supported; send JSON text.",
                );
                return self.send_error(e).await;
            }
            Message::Close(_) => return Err(Gone::Client),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        if !self.limiter.allow() {
            let e = ProtocolError::new(ErrorCode::RateLimited, "Too many messages; slow down and retry.");
            return self.send_error(e).await;
        }
        match ClientFrame::decode(text.as_str(), self.limits()) {
            Ok(frame) => self.on_client_frame(frame).await,
            Err(e) => self.send_error(e).await,
        }
    }

    async fn on_client_frame(&mut self, frame: ClientFrame) -> Result<(), Gone> {
        let (client_id, input) = match frame {
            ClientFrame::Hello(hello) => return self.on_hello(hello).await,
            ClientFrame::Typing => return Ok(()),
            ClientFrame::Message(m) => (m.client_id, VisitorInput::Text(m.text)),
            ClientFrame::Choice(c) => (c.client_id, VisitorInput::Choice(c.value)),
        };
        let Some(attached) = &self.attached else {
            let e = ProtocolError::new(ErrorCode::HelloRequired, "Send \"hello\" before anything else.");
            return self.send_error(e.for_client_id(Some(client_id))).await;
        };
        let result = attached.send(client_id.clone(), input).await;
        // Relay what the conversation stored before reporting, so errors come after echoes.
        self.drain_live().await?;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.send_error(e.for_client_id(Some(client_id))).await,
        }
    }

    async fn on_hello(&mut self, hello: Hello) -> Result<(), Gone> {
        if self.attached.is_some() {
            return self
                .send_error(ProtocolError::new(ErrorCode::AlreadyGreeted, "This connection already said hello."))
                .await;
        }
        let Opened { token, record, resumed, token_rejected } = match self.state.hub.open(&hello).await {
            Ok(opened) => opened,
            Err(e) => return self.store_failed(&e).await,
        };
        if token_rejected {
            let e =
                ProtocolError::new(ErrorCode::InvalidToken, "Unknown or malformed token; starting a new conversation.");
            self.send_error(e).await?;
        }
        if let Some(identity) = hello.identity.as_deref() {
            self.link_identity(identity, record.id).await?;
        }
        self.attached = Some(self.state.hub.attach(record.id, !resumed));
        self.sent_max = if resumed { Seq(hello.last_seq.unwrap_or(0)).min(record.last_seq) } else { Seq(0) };
        let (lang, ui) = self.state.hub.ui_for(&record);
        let welcome = ServerFrame::Welcome {
            token: token.as_str().to_owned(),
            conversation_id: record.id,
            resumed,
            last_seq: record.last_seq,
            lang,
            ui,
        };
        self.send(&welcome).await?;
        self.replay(record.id).await
    }

    /// Links the orders the shop vouches for to this conversation (for delay notices).
    async fn link_identity(&mut self, identity: &str, id: ConversationId) -> Result<(), Gone> {
        let Some(secret) = self.state.config.identity_secret.clone() else {
            let e = ProtocolError::new(ErrorCode::InvalidIdentity, "This server does not accept identities; ignored.");
            return self.send_error(e).await;
        };
        match crate::identity::verify(secret.as_bytes(), identity, chrono::Utc::now().timestamp()) {
            Ok(verified) => {
                for order in &verified.orders {
                    if let Err(e) = self.state.store.link_order(order, id, chrono::Utc::now()).await {
                        error!(error = %e, "cannot link an identified order");
                    }
                }
                Ok(())
            }
            Err(e) => self.send_error(ProtocolError::new(ErrorCode::InvalidIdentity, format!("{e}; ignored."))).await,
        }
    }

    async fn store_failed(&mut self, e: &StoreError) -> Result<(), Gone> {
        error!(error = %e, "store failure during hello");
        self.send_error(ProtocolError::new(ErrorCode::Internal, "Could not open the conversation; please retry.")).await
    }

    /// Sends every stored message after `sent_max`, in order.
    async fn replay(&mut self, id: ConversationId) -> Result<(), Gone> {
        loop {
            let page = match self.state.hub.store().messages_after(id, self.sent_max, REPLAY_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    error!(error = %e, "replay failed");
                    let e =
                        ProtocolError::new(ErrorCode::Internal, "Could not load earlier messages; reconnect to retry.");
                    return self.send_error(e).await;
                }
            };
            let done = page.len() < REPLAY_PAGE as usize;
            for message in page {
                self.sent_max = message.seq;
                self.send(&ServerFrame::Message(message)).await?;
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn on_live(&mut self, live: Result<Arc<ChatMessage>, RecvError>) -> Result<(), Gone> {
        match live {
            Ok(message) if message.seq > self.sent_max => {
                self.sent_max = message.seq;
                self.send(&ServerFrame::Message((*message).clone())).await
            }
            Ok(_) => Ok(()),
            Err(RecvError::Lagged(_)) => match self.attached.as_ref().map(|a| a.id) {
                Some(id) => self.replay(id).await,
                None => Ok(()),
            },
            // The actor stopped; the next message re-attaches through the hub.
            Err(RecvError::Closed) => {
                let id = self.attached.as_ref().map(|a| a.id);
                self.attached = id.map(|id| self.state.hub.attach(id, false));
                Ok(())
            }
        }
    }

    /// Relays messages already published, without waiting for new ones.
    async fn drain_live(&mut self) -> Result<(), Gone> {
        loop {
            let next = match self.attached.as_mut() {
                Some(a) => a.live.try_recv(),
                None => return Ok(()),
            };
            match next {
                Ok(message) => self.on_live(Ok(message)).await?,
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    self.on_live(Err(RecvError::Lagged(n))).await?;
                }
                Err(_) => return Ok(()),
            }
        }
    }
}

fn is_capacity_error(e: axum::Error) -> bool {
    let inner = e.into_inner();
    matches!(inner.downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Capacity(_)))
}
