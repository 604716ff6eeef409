//! An agent's side of the tests: teams and agents through the managers' API, logins, and
//! a WebSocket client speaking the agent protocol (`/ws/agent`).

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::harness::{MANAGER_TOKEN, TestServer, WAIT, api_call};

/// A team through the managers' API.
pub async fn add_team(server: &TestServer, id: &str, languages: &[&str], hours: Option<Value>) {
    let mut body = json!({"id": id, "name": format!("Team {id}"), "languages": languages});
    if let Some(hours) = hours {
        body["hours"] = hours;
    }
    let (status, _, answer) =
        api_call(&reqwest::Client::new(), server.url("/api/teams"), Method::POST, Some(MANAGER_TOKEN), Some(body))
            .await;
    assert_eq!(status, 201, "team {id}: {answer}");
}

/// An agent in `teams`, logged in: (agent id, session token).
pub async fn add_agent(
    server: &TestServer,
    email: &str,
    name: &str,
    teams: &[&str],
    capacity: u32,
) -> (String, String) {
    let password = "a long enough password";
    let body = json!({"email": email, "name": name, "password": password, "teams": teams, "capacity": capacity});
    let http = reqwest::Client::new();
    let (status, _, agent) =
        api_call(&http, server.url("/api/agents"), Method::POST, Some(MANAGER_TOKEN), Some(body)).await;
    assert_eq!(status, 201, "agent {email}: {agent}");
    (agent["id"].as_str().expect("id").to_owned(), login(server, email, password).await)
}

/// Logs in; the session token.
pub async fn login(server: &TestServer, email: &str, password: &str) -> String {
    let body = json!({"email": email, "password": password});
    let (status, _, session) =
        api_call(&reqwest::Client::new(), server.url("/api/agent/login"), Method::POST, None, Some(body)).await;
    assert_eq!(status, 200, "login {email}: {session}");
    session["token"].as_str().expect("token").to_owned()
}

/// One agent connection.
pub struct AgentClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `ready` frame.
    pub ready: Value,
    next: u32,
}

impl AgentClient {
    /// Connects and authenticates; panics unless `ready` comes back.
    pub async fn connect(addr: SocketAddr, token: &str) -> Self {
        Self::connect_resume(addr, token, json!({})).await
    }

    /// Connects saying which seq it has per chat.
    pub async fn connect_resume(addr: SocketAddr, token: &str, resume: Value) -> Self {
        let mut client = Self::open(addr).await;
        client.send(json!({"type": "auth", "token": token, "resume": resume})).await;
        let ready = client.recv().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        client.ready = ready;
        client
    }

    /// A socket that has not authenticated.
    pub async fn open(addr: SocketAddr) -> Self {
        let (ws, _) = connect_async(format!("ws://{addr}/ws/agent")).await.expect("agent socket connects");
        Self { ws, ready: Value::Null, next: 0 }
    }

    pub fn id(&self) -> String {
        self.ready["agent"]["id"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.expect("send");
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.expect("send");
    }

    /// Next JSON frame (panics after the wait or on close).
    pub async fn recv(&mut self) -> Value {
        self.recv_frame().await.expect("agent socket open")
    }

    /// Next JSON frame, `None` on close.
    pub async fn recv_frame(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("agent frame within timeout") {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(text.as_str()).expect("JSON")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Frames until the socket closes, and the close code.
    pub async fn until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("close within timeout") {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(text.as_str()).expect("JSON")),
                Some(Ok(Message::Close(frame))) => return (frames, frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return (frames, None),
            }
        }
    }

    /// Skips frames until one matches.
    pub async fn recv_where(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.recv().await;
            if want(&frame) {
                return frame;
            }
        }
    }

    /// The next frame of this type (others skipped).
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        self.recv_where(|f| f["type"] == kind).await
    }

    /// The next frame of this type about this conversation.
    pub async fn recv_about(&mut self, kind: &str, conversation: &str) -> Value {
        self.recv_where(|f| f["type"] == kind && f["conversation"] == conversation).await
    }

    /// Any frame within `wait`, if one comes.
    pub async fn recv_within(&mut self, wait: std::time::Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).ok(),
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    }

    /// Sends a request with a fresh `ref`; its `ok` or `error` frame.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next += 1;
        let reference = format!("r{}", self.next);
        frame["ref"] = json!(reference);
        self.send(frame).await;
        self.recv_where(|f| (f["type"] == "ok" || f["type"] == "error") && f["ref"] == reference.as_str()).await
    }

    /// A reply (or, with `note`, a private note); its `ack` or `error` frame.
    pub async fn write(&mut self, conversation: &str, text: &str, note: bool) -> Value {
        self.next += 1;
        let client_id = format!("a{}-{}", self.next, rand::random::<u32>());
        let kind = if note { "note" } else { "message" };
        self.send(json!({"type": kind, "conversation": conversation, "client_id": client_id, "text": text})).await;
        self.recv_where(|f| (f["type"] == "ack" || f["type"] == "error") && f["client_id"] == client_id.as_str()).await
    }

    /// Waits for the offer of `conversation` and accepts it.
    pub async fn take_offer(&mut self, conversation: &str) {
        self.recv_about("offer", conversation).await;
        let answer = self.request(json!({"type": "accept", "conversation": conversation})).await;
        assert_eq!(answer["type"], "ok", "accept {conversation}: {answer}");
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
