//! One visitor WebSocket: decode frames, forward them to the conversation, relay stored
//! messages back. A bad frame gets an `error` frame and the connection stays usable.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::telemetry::Peer;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::FuturesUnordered;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tracing::{Instrument, debug, error, info_span};

use super::AppState;
use super::client_addr::ClientAddr;
use crate::conversations::{Attachment, Live, Opened, RatingInput, VisitorInput};
use crate::ids::AddressKey;
use crate::ids::{ConversationId, Seq};
use crate::protocol::{ClientFrame, ErrorCode, Hello, Limits, ProtocolError, Sender, ServerFrame, has_visible_text};
use crate::store::StoreError;

/// Socket read buffer: small, because an idle visitor should cost little memory.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes a slow client may leave unread before the connection is dropped.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;
const REPLAY_PAGE: u32 = 200;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// Our own close code: no `hello` in time (4000–4999 are for applications; 408 as in HTTP).
const CLOSE_HELLO_TIMEOUT: u16 = 4408;
/// How often an idle socket is pinged; a peer silent for [`DEAD_AFTER`] is gone (a
/// half-open TCP connection otherwise lingers for hours).
const PING_EVERY: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(75);

/// `GET /ws`: checks the origin, then upgrades with tight buffer and size limits.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ClientAddr(client): ClientAddr,
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
        .on_upgrade(move |socket| {
            let counted = state.hub.telemetry().connection(Peer::Visitor);
            async move {
                let _counted = counted;
                session(socket, state, client).await;
            }
            .instrument(info_span!("visitor", %peer))
        })
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
    /// The visitor's address (behind trusted proxies, the forwarded one).
    client: IpAddr,
    /// When the client last sent anything (pongs included).
    last_heard: Instant,
    /// Messages stored and not answered yet, by `client_id`: the socket keeps relaying
    /// (and watching for shutdown) while the conversation works on them.
    answering: FuturesUnordered<PendingAnswer>,
}

type PendingAnswer = futures_util::future::BoxFuture<'static, (String, Result<(), ProtocolError>)>;

/// Why the session loop stops.
enum Stop {
    ClientGone,
    Shutdown,
    /// We closed the socket; unread input may still be queued.
    ClosedByUs,
}

/// How long to keep reading after closing for an oversized frame. Dropping a TCP socket
/// with unread input makes the kernel send RST, which can destroy our error and close
/// frames before the client reads them.
const LINGER_AFTER_CLOSE: std::time::Duration = std::time::Duration::from_secs(1);

async fn session(socket: WebSocket, state: AppState, client: IpAddr) {
    let (tx, mut rx) = socket.split();
    let limiter = RateLimiter::new(state.config.limits.frames_per_10s);
    let shutdown = state.shutdown.clone();
    let hello_deadline = tokio::time::Instant::now() + state.config.edge.hello_timeout;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut conn = Connection {
        state,
        tx,
        attached: None,
        sent_max: Seq(0),
        limiter,
        client,
        last_heard: Instant::now(),
        answering: FuturesUnordered::new(),
    };
    let stop = loop {
        let greeted = conn.attached.is_some();
        tokio::select! {
            () = shutdown.cancelled() => break Stop::Shutdown,
            () = tokio::time::sleep_until(hello_deadline), if !greeted => {
                let secs = conn.state.config.edge.hello_timeout.as_secs();
                let e = ProtocolError::new(ErrorCode::HelloTimeout, format!("No \"hello\" within {secs} s; closing."));
                let _ = conn.send_error(e).await;
                let _ = conn.close(CLOSE_HELLO_TIMEOUT, "hello timeout").await;
                break Stop::ClosedByUs;
            }
            _ = ping.tick() => {
                if conn.last_heard.elapsed() > DEAD_AFTER {
                    debug!("peer silent too long; dropping the connection");
                    break Stop::ClientGone;
                }
                if conn.tx.send(Message::Ping(axum::body::Bytes::new())).await.is_err() {
                    break Stop::ClientGone;
                }
            }
            frame = rx.next() => match conn.on_frame(frame).await {
                Ok(()) => {}
                Err(Gone::ClosedByUs) => break Stop::ClosedByUs,
                Err(Gone::Client) => break Stop::ClientGone,
            },
            Some((client_id, answered)) = conn.answering.next(), if !conn.answering.is_empty() => {
                if conn.on_answered(client_id, answered).await.is_err() {
                    break Stop::ClientGone;
                }
            }
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
        Stop::ClosedByUs => {
            // The stream may not be readable past a bad frame, so just hold the socket
            // open until the client has had time to read our frames (or closes itself).
            let _ = tokio::time::timeout(LINGER_AFTER_CLOSE, async { while rx.next().await.is_some() {} }).await;
            tokio::time::sleep(LINGER_AFTER_CLOSE / 4).await;
        }
        Stop::ClientGone => {}
    }
    drop(rx);
}

async fn next_live(attached: Option<&mut Attachment>) -> Result<Live, RecvError> {
    match attached {
        Some(a) => a.live.recv().await,
        None => std::future::pending().await,
    }
}

/// The session must end.
enum Gone {
    /// The client has gone or the socket failed.
    Client,
    /// We closed the socket (an oversized or invalid frame, a limit).
    ClosedByUs,
}

impl Connection {
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Gone> {
        self.tx.send(Message::Text(Utf8Bytes::from(frame.to_json()))).await.map_err(|_| Gone::Client)
    }

    async fn send_error(&mut self, e: ProtocolError) -> Result<(), Gone> {
        debug!(code = e.code.as_str(), "rejected frame");
        self.state.hub.telemetry().error(e.code.as_str());
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
                let (code, close, message) = match read_error(e) {
                    ReadError::TooLarge => {
                        let hard = self.limits().max_frame_bytes * 4;
                        let msg = format!("Frame exceeds the hard limit of {hard} bytes; closing.");
                        (ErrorCode::FrameTooLarge, CLOSE_TOO_BIG, msg)
                    }
                    ReadError::InvalidUtf8 => {
                        let msg = "A text frame was not valid UTF-8; closing.".to_owned();
                        (ErrorCode::InvalidUtf8, CLOSE_INVALID_PAYLOAD, msg)
                    }
                    ReadError::Other => return Err(Gone::Client),
                };
                let _ = self.send_error(ProtocolError::new(code, message)).await;
                let _ = self.close(close, code.as_str()).await;
                return Err(Gone::ClosedByUs);
            }
        };
        self.last_heard = Instant::now();
        let allowed = match message {
            // The library answers pings itself; a flood of them only spends the budget.
            Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(Gone::Client),
            _ => self.limiter.allow(),
        };
        if !allowed {
            if matches!(message, Message::Ping(_)) {
                return Ok(());
            }
            let e = ProtocolError::new(ErrorCode::RateLimited, "Too many messages; slow down and retry.");
            return self.send_error(e).await;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let e = ProtocolError::new(
                    ErrorCode::BinaryNotSupported,
                    "Binary frames are not supported; send JSON text.",
                );
                return self.send_error(e).await;
            }
            Message::Close(_) | Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        match ClientFrame::decode(text.as_str(), self.limits()) {
            Ok(frame) => self.on_client_frame(frame).await,
            Err(e) => self.send_error(e).await,
        }
    }

    async fn on_client_frame(&mut self, frame: ClientFrame) -> Result<(), Gone> {
        let (client_id, input) = match frame {
            ClientFrame::Hello(hello) => return self.on_hello(hello).await,
            ClientFrame::Typing => {
                if let Some(attached) = &self.attached {
                    self.state.hub.signal(attached.id, Live::Typing { from: Sender::Visitor, name: None });
                }
                return Ok(());
            }
            ClientFrame::Message(m) => (m.client_id, VisitorInput::Text(m.text)),
            ClientFrame::Choice(c) => (c.client_id, VisitorInput::Choice(c.value)),
            ClientFrame::Rate(r) => {
                let comment = r.comment.map(|c| c.trim().to_owned()).filter(|c| has_visible_text(c));
                let input = RatingInput::Rate { score: r.score, comment };
                return self.on_rating(r.client_id, r.conversation_id, input).await;
            }
            ClientFrame::Feedback(f) => {
                let input = RatingInput::Feedback { seq: Seq(f.seq), helpful: f.helpful };
                return self.on_rating(f.client_id, None, input).await;
            }
        };
        let Some(attached) = &self.attached else {
            let e = ProtocolError::new(ErrorCode::HelloRequired, "Send \"hello\" before anything else.");
            return self.send_error(e.for_client_id(Some(client_id))).await;
        };
        let result = attached.send(client_id.clone(), input, Some(self.client)).await;
        // Relay what the conversation stored before reporting, so errors come after echoes.
        self.drain_live().await?;
        match result {
            Ok(answering) => {
                self.answering.push(Box::pin(async move {
                    let answered = answering.await.unwrap_or_else(|_| {
                        Err(ProtocolError::new(ErrorCode::Internal, "The conversation stopped; please send again."))
                    });
                    (client_id, answered)
                }));
                Ok(())
            }
            Err(e) => self.send_error(e.for_client_id(Some(client_id))).await,
        }
    }

    /// A rating or an answer vote, for this socket's own conversation only.
    async fn on_rating(
        &mut self,
        client_id: String,
        conversation: Option<String>,
        input: RatingInput,
    ) -> Result<(), Gone> {
        let Some(attached) = &self.attached else {
            let e = ProtocolError::new(ErrorCode::HelloRequired, "Send \"hello\" before anything else.");
            return self.send_error(e.for_client_id(Some(client_id))).await;
        };
        if conversation.is_some_and(|c| c.trim() != attached.id.to_string()) {
            let e = ProtocolError::new(
                ErrorCode::NotYourConversation,
                "You can only rate the conversation of this connection.",
            );
            return self.send_error(e.for_client_id(Some(client_id))).await;
        }
        let result = attached.rate(input).await;
        self.drain_live().await?;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.send_error(e.for_client_id(Some(client_id))).await,
        }
    }

    /// The answer to a message is stored (and published), or could not be: relays it, then
    /// reports a failure so the widget can send again.
    async fn on_answered(&mut self, client_id: String, answered: Result<(), ProtocolError>) -> Result<(), Gone> {
        self.drain_live().await?;
        match answered {
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
        let resumed = match hello.token.as_deref() {
            Some(raw) => match self.state.hub.resume(raw).await {
                Ok(found) => found,
                Err(e) => return self.store_failed(&e).await,
            },
            None => None,
        };
        let opened = match resumed {
            Some(opened) => opened,
            None => {
                if self.state.conversation_limiter.check_key(&AddressKey::of(self.client)).is_err() {
                    let e = ProtocolError::new(
                        ErrorCode::TooManyConversations,
                        "Too many new conversations from your address; try again later.",
                    );
                    let _ = self.send_error(e).await;
                    let _ = self.close(CLOSE_TRY_AGAIN_LATER, "too many conversations").await;
                    return Err(Gone::ClosedByUs);
                }
                if hello.token.is_some() {
                    let e = ProtocolError::new(
                        ErrorCode::InvalidToken,
                        "Unknown or malformed token; starting a new conversation.",
                    );
                    self.send_error(e).await?;
                }
                self.state.hub.create(&hello)
            }
        };
        let Opened { token, record, resumed } = opened;
        let attachment = self.state.hub.attach(record.id);
        if let Some(identity) = hello.identity.as_deref() {
            self.link_identity(identity, &attachment).await?;
        }
        self.attached = Some(attachment);
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
        self.replay(record.id).await?;
        // A visitor waiting in a queue learns where they stand at once (not only when it
        // next changes).
        if let Some((position, eta_minutes)) = self.state.desk.position(record.id).await {
            self.send(&ServerFrame::Queue { position, eta_minutes }).await?;
        }
        Ok(())
    }

    /// Records who the shop says this visitor is and links the orders it vouches for to
    /// the conversation (for delay notices); the conversation is stored from then on.
    async fn link_identity(&mut self, identity: &str, attachment: &Attachment) -> Result<(), Gone> {
        let Some(secret) = self.state.config.identity_secret.clone() else {
            let e = ProtocolError::new(ErrorCode::InvalidIdentity, "This server does not accept identities; ignored.");
            return self.send_error(e).await;
        };
        let id = attachment.id;
        let now = chrono::Utc::now().timestamp();
        let max_lifetime = self.state.config.identity_max_lifetime_secs;
        match crate::identity::verify(secret.as_bytes(), identity, now, max_lifetime) {
            Ok(verified) => {
                if let Err(e) = attachment.persist().await {
                    error!(error = %e, "cannot store an identified conversation");
                    return Ok(());
                }
                let user = verified.user.as_deref();
                let email = verified.email.as_deref();
                if user.is_some() || email.is_some() {
                    if let Err(e) = self.state.store.set_visitor(id, user, email).await {
                        error!(error = %e, "cannot record the identified visitor");
                    }
                }
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
            let page = match self.state.hub.messages_after(id, self.sent_max, REPLAY_PAGE).await {
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

    async fn on_live(&mut self, live: Result<Live, RecvError>) -> Result<(), Gone> {
        match live {
            // Private notes are for agents only.
            Ok(Live::Message(message)) if message.seq > self.sent_max && !message.extras.private => {
                self.sent_max = message.seq;
                self.send(&ServerFrame::Message((*message).clone())).await
            }
            Ok(Live::Queue { position, eta_minutes }) => self.send(&ServerFrame::Queue { position, eta_minutes }).await,
            Ok(Live::Typing { from: Sender::Agent, name }) => self.send(&ServerFrame::Typing { name }).await,
            Ok(Live::Message(_) | Live::Typing { .. }) => Ok(()),
            Err(RecvError::Lagged(_)) => match self.attached.as_ref().map(|a| a.id) {
                Some(id) => self.replay(id).await,
                None => Ok(()),
            },
            // The actor stopped: it retired (re-attach through the hub) or the conversation
            // was deleted (close, so the widget starts afresh).
            Err(RecvError::Closed) => {
                let Some(id) = self.attached.as_ref().map(|a| a.id) else { return Ok(()) };
                match self.state.hub.exists(id).await {
                    Ok(false) => {
                        let _ = self.close(CLOSE_GOING_AWAY, "conversation ended").await;
                        Err(Gone::Client)
                    }
                    _ => {
                        self.attached = Some(self.state.hub.attach(id));
                        Ok(())
                    }
                }
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

/// What went wrong reading a frame, as far as the client should hear about it.
pub(super) enum ReadError {
    TooLarge,
    InvalidUtf8,
    Other,
}

pub(super) fn read_error(e: axum::Error) -> ReadError {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => ReadError::TooLarge,
        Some(tungstenite::Error::Utf8(_)) => ReadError::InvalidUtf8,
        _ => ReadError::Other,
    }
}
