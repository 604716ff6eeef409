//! Starting servers and talking to them like a widget does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use supportbot::config::Config;
use supportbot::server::RunningServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long a test waits for any expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(15);

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A running server with its own data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    running: RunningServer,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// Secret of the test editor token.
pub const EDITOR_TOKEN: &str = "test-editor-token-0123456789";
/// Secret of a valid token without the editor role.
pub const ORDERS_TOKEN: &str = "test-orders-token-0123456789";
/// Secret of the test manager token (privacy requests, retention).
pub const MANAGER_TOKEN: &str = "test-manager-token-0123456789";

pub fn test_config(data_dir: &Path) -> Config {
    use supportbot::auth::{ApiToken, Role, hash_token};
    let mut answers = supportbot::engine::AnswerPolicy::default();
    // Tests that jump a driven clock must not see quiet-chat rating requests at random;
    // `csat::a_quiet_chat_ends_with_a_rating_request` turns them on.
    answers.csat.after_inactivity_minutes = 0;
    Config {
        answers,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_owned(),
        kb_dir: std::env::var("TEST_KB_DIR").map_or_else(|_| repo_path("knowledge-base"), PathBuf::from),
        flows_dir: repo_path("flows"),
        tokens: vec![
            ApiToken { name: "editors".into(), sha256: hash_token(EDITOR_TOKEN), roles: vec![Role::Editor] },
            ApiToken { name: "shop".into(), sha256: hash_token(ORDERS_TOKEN), roles: vec![Role::Orders] },
            ApiToken { name: "managers".into(), sha256: hash_token(MANAGER_TOKEN), roles: vec![Role::Manager] },
        ],
        ..Config::default()
    }
}

/// Fallbacks in a row never hand the chat to a person on their own.
pub fn bot_only(config: &mut Config) {
    config.answers.handoff_after_fallbacks = 0;
}

/// Copies a directory tree (e.g. the sample knowledge base, for tests that edit it).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

impl TestServer {
    /// The sample knowledge base and flows, a fresh data dir.
    pub async fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let config = test_config(temp.path());
        let mut server = Self::start_with(config).await;
        server._temp = Some(temp);
        server
    }

    /// Like [`TestServer::start`], but fallbacks never hand the chat to a person on their
    /// own (for tests about answers and gaps, which ask many unanswerable questions).
    pub async fn start_bot_only() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(temp.path());
        bot_only(&mut config);
        let mut server = Self::start_with(config).await;
        server._temp = Some(temp);
        server
    }

    /// Any configuration; waits until the knowledge base is loaded.
    pub async fn start_with(config: Config) -> Self {
        Self::start_with_clock(config, std::sync::Arc::new(supportbot::clock::SystemClock)).await
    }

    /// Any configuration and a clock the test drives (`ManualClock`).
    pub async fn start_with_clock(config: Config, clock: supportbot::clock::SharedClock) -> Self {
        let data_dir = config.data_dir.clone();
        let running = supportbot::server::start_with_clock(config, clock).await.expect("server starts");
        let addr = running.addr;
        let server = Self { addr, running, data_dir, _temp: None };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let url = format!("http://{}/healthz", self.addr);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = reqwest::get(&url).await {
                if resp.status().is_success() {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "server never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Keeps a temporary directory (config, data) alive as long as the server.
    pub fn keep(&mut self, temp: tempfile::TempDir) {
        self._temp = Some(temp);
    }

    /// Stops the server and waits until it has released its files; keeps the data dir.
    pub async fn stop(self) -> Option<tempfile::TempDir> {
        self.running.shutdown.cancel();
        tokio::time::timeout(WAIT, self.running.task).await.expect("server stops in time").expect("server task");
        self._temp
    }

    /// The demo agent this start created (no agents existed), with its password.
    pub fn demo_agent(&self) -> Option<&supportbot::handoff::accounts::DemoAgent> {
        self.running.demo_agent.as_ref()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// A WebSocket client speaking protocol v1.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_client_id: u32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = connect_async(format!("ws://{addr}/ws")).await.expect("websocket connects");
        Self { ws, next_client_id: 0 }
    }

    /// Connects from another loopback address (127.0.0.2 …), as a different visitor.
    pub async fn connect_from(addr: SocketAddr, local: &str) -> Result<Self, String> {
        let stream = tcp_from(addr, local).await.map_err(|e| e.to_string())?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), MaybeTlsStream::Plain(stream))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { ws, next_client_id: 0 })
    }

    /// Sends a raw WebSocket frame (e.g. a text frame that is not UTF-8).
    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("send frame");
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_raw(&value.to_string()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send frame");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send frame");
    }

    /// Next JSON frame; panics after [`WAIT`] or if the socket closes.
    pub async fn recv(&mut self) -> Value {
        match self.recv_frame().await {
            Some(value) => value,
            None => panic!("socket closed while waiting for a frame"),
        }
    }

    /// Next JSON frame, or `None` when the server closed the socket.
    pub async fn recv_frame(&mut self) -> Option<Value> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next()).await.expect("frame within timeout");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).expect("server sends JSON"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next JSON frame if one arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).ok(),
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    }

    /// Sends a message; returns every bot reply until the bot is quiet (the echo skipped).
    pub async fn say(&mut self, text: &str) -> Vec<Value> {
        let client_id = self.new_client_id();
        self.send_json(json!({"type": "message", "client_id": client_id, "text": text})).await;
        self.collect_replies().await
    }

    /// Clicks a quick reply; returns every bot reply until the bot is quiet.
    pub async fn choose(&mut self, value: &str) -> Vec<Value> {
        let client_id = self.new_client_id();
        self.send_json(json!({"type": "choice", "client_id": client_id, "value": value})).await;
        self.collect_replies().await
    }

    async fn collect_replies(&mut self) -> Vec<Value> {
        let mut replies = Vec::new();
        let first = self.recv().await;
        assert_eq!(first["from"], "visitor", "echo first: {first}");
        replies.push(self.recv().await);
        while let Some(frame) = self.recv_within(Duration::from_millis(600)).await {
            replies.push(frame);
        }
        replies
    }

    /// Frames until the server closes the socket, and the close code it gave (if any).
    pub async fn recv_until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next()).await.expect("close within timeout");
            match next {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(text.as_str()).expect("JSON")),
                Some(Ok(Message::Close(frame))) => return (frames, frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return (frames, None),
            }
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("unexpected frame: {text}");
        }
    }

    /// Sends hello and returns the welcome (skipping an `invalid_token` error if any).
    pub async fn hello(&mut self, token: Option<&str>, last_seq: Option<i64>) -> Value {
        self.hello_in(token, last_seq, "en-GB").await
    }

    /// `hello` from a browser with this locale.
    pub async fn hello_in(&mut self, token: Option<&str>, last_seq: Option<i64>, locale: &str) -> Value {
        self.send_json(json!({"type": "hello", "token": token, "last_seq": last_seq, "locale": locale, "page_url": "http://shop.test/"}))
            .await;
        loop {
            let frame = self.recv().await;
            if frame["type"] == "welcome" {
                return frame;
            }
            assert_eq!(frame["code"], "invalid_token", "unexpected frame before welcome: {frame}");
        }
    }

    /// Starts a new conversation and consumes the bot's greeting; returns the welcome.
    pub async fn start_conversation(&mut self) -> Value {
        self.start_conversation_in("en-GB").await
    }

    /// Starts a new conversation from a browser with this locale.
    pub async fn start_conversation_in(&mut self, locale: &str) -> Value {
        let welcome = self.hello_in(None, None, locale).await;
        let greeting = self.recv().await;
        assert_eq!(greeting["from"], "bot", "a new conversation starts with a greeting: {greeting}");
        welcome
    }

    pub fn new_client_id(&mut self) -> String {
        self.next_client_id += 1;
        format!("t-{}-{}", self.next_client_id, rand_suffix())
    }

    /// Sends a message and returns (echo, reply).
    pub async fn ask(&mut self, text: &str) -> (Value, Value) {
        let client_id = self.new_client_id();
        self.ask_with_id(&client_id, text).await
    }

    pub async fn ask_with_id(&mut self, client_id: &str, text: &str) -> (Value, Value) {
        self.send_json(json!({"type": "message", "client_id": client_id, "text": text})).await;
        let echo = self.recv().await;
        assert_eq!(echo["type"], "message", "echo expected: {echo}");
        assert_eq!(echo["from"], "visitor");
        assert_eq!(echo["client_id"], client_id);
        let reply = self.recv().await;
        assert_eq!(reply["type"], "message", "reply expected: {reply}");
        assert_eq!(reply["reply_to"], echo["seq"], "reply answers the echo: {reply}");
        (echo, reply)
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A TCP connection to `addr` from the loopback address `local`.
/// One JSON API call as a client makes it: optional bearer token and JSON body. Returns
/// the status, the headers and the body (JSON, or the raw text as a string when not JSON).
pub async fn api_call(
    http: &reqwest::Client,
    url: String,
    method: reqwest::Method,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub async fn tcp_from(addr: SocketAddr, local: &str) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local.parse().map_err(std::io::Error::other)?, 0))?;
    socket.connect(addr).await
}

/// The server's database, for asserting what is (and is not) stored.
pub async fn database(data_dir: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data_dir.join("supportbot.db"))
        .busy_timeout(Duration::from_secs(5));
    sqlx::SqlitePool::connect_with(options).await.expect("open the database")
}

/// Rows in a table.
pub async fn count_rows(db: &sqlx::SqlitePool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(db).await.expect("count")
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

impl Client {
    /// Frames until one matches `want` (the others are returned too, in order).
    pub async fn recv_until(&mut self, want: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let frame = self.recv().await;
            if want(&frame) {
                return (frame, skipped);
            }
            skipped.push(frame);
        }
    }

    /// Sends a message without waiting for anything.
    pub async fn send_text(&mut self, text: &str) -> String {
        let client_id = self.new_client_id();
        self.send_json(json!({"type": "message", "client_id": client_id, "text": text})).await;
        client_id
    }
}
