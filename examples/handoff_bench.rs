//! Load generator for the human side: N agents and M visitors over real WebSockets on
//! loopback. Measures, in one run:
//!
//! - the baseline: a visitor's question to the bot's answer (search included);
//! - handoff → offer: the visitor asks for a person until an agent's socket has the offer;
//! - visitor → agent and agent → visitor message latency while an agent holds the chat.
//!
//! Prints p50/p99 of each and their ratio to the baseline's p50.
//!
//! ```text
//! cargo run --release --example handoff_bench -- 20 200
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const MANAGER_TOKEN: &str = "bench-manager-token-0123456789";
const PINGS: usize = 5;

type Marks = Arc<Mutex<HashMap<String, Instant>>>;
type Samples = Arc<Mutex<HashMap<&'static str, Vec<Duration>>>>;

fn mark(marks: &Marks, key: String) {
    marks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, Instant::now());
}

fn since(marks: &Marks, key: &str) -> Option<Duration> {
    marks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).map(Instant::elapsed)
}

fn sample(samples: &Samples, what: &'static str, d: Duration) {
    samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(what).or_default().push(d);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn api(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    response.json().await.expect("json")
}

async fn agent(addr: SocketAddr, token: String, marks: Marks, samples: Samples) {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws/agent")).await.expect("agent connects");
    ws.send(Message::text(json!({"type": "auth", "token": token}).to_string())).await.expect("auth");
    let mut answered = std::collections::HashSet::new();
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        let conversation = frame["conversation"].as_str().unwrap_or_default().to_owned();
        match frame["type"].as_str() {
            Some("offer") => {
                if let Some(d) = since(&marks, &format!("ask:{conversation}")) {
                    sample(&samples, "handoff -> offer", d);
                }
                let accept = json!({"type": "accept", "conversation": conversation});
                ws.send(Message::text(accept.to_string())).await.expect("accept");
            }
            // A ping stored before the chat was assigned arrives in the packet's transcript.
            Some("assigned") => {
                let transcript = frame["packet"]["transcript"].as_array().cloned().unwrap_or_default();
                for message in transcript.iter().filter(|m| m["from"] == "visitor") {
                    pong(&mut ws, &conversation, message, &mut answered, &marks, &samples).await;
                }
            }
            Some("message") if frame["message"]["from"] == "visitor" => {
                pong(&mut ws, &conversation, &frame["message"], &mut answered, &marks, &samples).await;
            }
            _ => {}
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Answers a visitor's `ping-<i>` with `pong-<i>` (once).
async fn pong(
    ws: &mut Socket,
    conversation: &str,
    message: &Value,
    answered: &mut std::collections::HashSet<(String, String)>,
    marks: &Marks,
    samples: &Samples,
) {
    let Some(i) = message["text"].as_str().and_then(|t| t.strip_prefix("ping-")) else { return };
    if !answered.insert((conversation.to_owned(), i.to_owned())) {
        return;
    }
    if let Some(d) = since(marks, &format!("ping:{conversation}:{i}")) {
        sample(samples, "visitor -> agent", d);
    }
    mark(marks, format!("pong:{conversation}:{i}"));
    let reply = json!({"type": "message", "conversation": conversation, "client_id": format!("pong-{i}"), "text": format!("pong-{i}")});
    ws.send(Message::text(reply.to_string())).await.expect("reply");
}

async fn recv(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).unwrap_or(Value::Null),
            Ok(Some(Ok(_))) => {}
            other => panic!("visitor socket: {other:?}"),
        }
    }
}

async fn visitor(addr: SocketAddr, local: String, marks: Marks, samples: Samples) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(local.parse().expect("ip"), 0)).expect("bind");
    let stream = socket.connect(addr).await.expect("tcp");
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("visitor connects");
    ws.send(Message::text(r#"{"type":"hello","locale":"en-GB"}"#)).await.expect("hello");
    let welcome = recv(&mut ws).await;
    let conversation = welcome["conversation_id"].as_str().unwrap_or_default().to_owned();
    let _greeting = recv(&mut ws).await;
    // Baseline: the bot answers a question.
    let started = Instant::now();
    ws.send(Message::text(r#"{"type":"message","client_id":"q","text":"how long does delivery take"}"#))
        .await
        .expect("q");
    loop {
        let frame = recv(&mut ws).await;
        if frame["from"] == "bot" {
            sample(&samples, "bot answer (baseline)", started.elapsed());
            break;
        }
    }
    // Ask for a person; wait until an agent joined.
    mark(&marks, format!("ask:{conversation}"));
    ws.send(Message::text(r#"{"type":"message","client_id":"h","text":"talk to a person"}"#)).await.expect("h");
    loop {
        let frame = recv(&mut ws).await;
        if frame["from"] == "system" && frame["text"].as_str().is_some_and(|t| t.contains("joined")) {
            break;
        }
    }
    for i in 0..PINGS {
        mark(&marks, format!("ping:{conversation}:{i}"));
        let ping = json!({"type": "message", "client_id": format!("ping{i}"), "text": format!("ping-{i}")});
        ws.send(Message::text(ping.to_string())).await.expect("ping");
        loop {
            let frame = recv(&mut ws).await;
            if frame["from"] == "agent" && frame["text"] == format!("pong-{i}") {
                if let Some(d) = since(&marks, &format!("pong:{conversation}:{i}")) {
                    sample(&samples, "agent -> visitor", d);
                }
                break;
            }
        }
    }
    let _ = ws.close(None).await;
}

#[tokio::main]
async fn main() {
    let agents: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let visitors: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let root = env!("CARGO_MANIFEST_DIR");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = supportbot::config::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data.path().to_owned(),
        kb_dir: format!("{root}/knowledge-base").into(),
        flows_dir: format!("{root}/flows").into(),
        ..supportbot::config::Config::default()
    };
    config.tokens.push(supportbot::auth::ApiToken {
        name: "bench".into(),
        sha256: supportbot::auth::hash_token(MANAGER_TOKEN),
        roles: vec![supportbot::auth::Role::Manager],
    });
    let server = supportbot::server::start(config).await.expect("server starts");
    let addr = server.addr;
    let http = reqwest::Client::new();
    while !reqwest::get(format!("http://{addr}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let capacity = visitors.div_ceil(agents) + 1;
    let marks: Marks = Arc::default();
    let samples: Samples = Arc::default();
    for n in 0..agents {
        let email = format!("bench{n}@shop.test");
        let password = "bench password 123";
        let body = json!({"email": email, "name": format!("Agent {n}"), "password": password, "teams": ["support"], "capacity": capacity});
        api(&http, format!("http://{addr}/api/agents"), Some(MANAGER_TOKEN), body).await;
        let session =
            api(&http, format!("http://{addr}/api/agent/login"), None, json!({"email": email, "password": password}))
                .await;
        let token = session["token"].as_str().expect("token").to_owned();
        tokio::spawn(agent(addr, token, Arc::clone(&marks), Arc::clone(&samples)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..visitors {
        let local = format!("127.0.{}.{}", 2 + n / 250, 1 + n % 250);
        tasks.push(tokio::spawn(visitor(addr, local, Arc::clone(&marks), Arc::clone(&samples))));
    }
    for task in tasks {
        task.await.expect("visitor");
    }
    let wall = started.elapsed();
    let samples = samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let baseline = {
        let mut b = samples.get("bot answer (baseline)").cloned().unwrap_or_default();
        b.sort();
        percentile(&b, 0.5)
    };
    println!("{agents} agents, {visitors} visitors, {PINGS} messages each way per chat, {wall:.1?} wall");
    println!("{:<24} {:>7} {:>10} {:>10} {:>14}", "measure", "n", "p50", "p99", "p50/baseline");
    for what in ["bot answer (baseline)", "handoff -> offer", "visitor -> agent", "agent -> visitor"] {
        let mut v = samples.get(what).cloned().unwrap_or_default();
        v.sort();
        let p50 = percentile(&v, 0.5);
        let ratio = p50.as_secs_f64() / baseline.as_secs_f64().max(1e-9);
        println!("{what:<24} {:>7} {:>10.2?} {:>10.2?} {:>13.2}x", v.len(), p50, percentile(&v, 0.99), ratio);
    }
    server.shutdown.cancel();
}
