//! Load generator: how much memory do idle visitor connections cost the server?
//!
//! Starts the release server binary on a fresh data dir, measures its resident memory,
//! opens N WebSocket visitors that each say hello (a real conversation each) and then stay
//! idle, and measures again. Prints the total and per-connection cost.
//!
//! ```text
//! cargo build --release && cargo run --release --example idle_connections -- 1000
//! ```

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_healthy(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(resp) = reqwest::get(format!("http://{addr}/healthz")).await {
            if resp.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not become healthy");
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let root = env!("CARGO_MANIFEST_DIR");
    let binary = format!("{root}/target/release/supportbot");
    let data = tempfile::tempdir().expect("temp dir");
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18123);
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(&binary)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(data.path())
        .args(["--kb-dir", &format!("{root}/knowledge-base"), "--flows-dir", &format!("{root}/flows")])
        .env("SUPPORTBOT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary} (run `cargo build --release` first): {e}"));
    let server = Server(child);
    let pid = server.0.id();
    wait_healthy(&addr).await;

    // Baseline: one connection that has chatted, so lazily-initialised parts are warm.
    let (mut warm, _) = connect_async(format!("ws://{addr}/ws")).await.expect("connect");
    warm.send(Message::text(r#"{"type":"hello"}"#)).await.expect("hello");
    let _ = warm.next().await;
    warm.send(Message::text(r#"{"type":"message","client_id":"w","text":"how long does delivery take"}"#))
        .await
        .expect("message");
    for _ in 0..3 {
        let _ = warm.next().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);

    let started = Instant::now();
    let mut sockets = Vec::with_capacity(count);
    for i in 0..count {
        // Visitors from many loopback addresses, as from many homes: one address may hold
        // only `limits.connections_per_address` sockets.
        let local = std::net::SocketAddr::from(([127, 0, 1 + (i / 200) as u8, 2 + (i % 200) as u8], 0));
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(local).expect("bind");
        let stream = socket.connect(addr.parse().expect("addr")).await.expect("connect");
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
        ws.send(Message::text(r#"{"type":"hello","locale":"en-GB"}"#)).await.expect("hello");
        let _welcome = ws.next().await;
        let _greeting = ws.next().await;
        sockets.push(ws);
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per_conn = (after.saturating_sub(before)) as f64 / count as f64;
    println!("idle visitor connections: {count} (opened in {:.2}s)", connect_time.as_secs_f64());
    println!("server RSS baseline:      {:.1} MiB", before as f64 / 1024.0);
    println!("server RSS with idle:     {:.1} MiB", after as f64 / 1024.0);
    println!(
        "cost per idle connection: {per_conn:.1} KiB (ratio with/without: {:.2})",
        after as f64 / before.max(1) as f64
    );
    drop(sockets);
    drop(server);
}
