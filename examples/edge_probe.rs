//! The outside probe's attacks, as a repeatable measurement: starts a server binary on a
//! fresh data dir with a 1,024 open-file limit (as the probe's machine had) and reports
//!
//! 1. idle sockets that never say hello: how many one address can hold, whether a new
//!    visitor and `/healthz` are served meanwhile, and how many are still open later;
//! 2. 300 anonymous POSTs of 1.9 MB: the server's memory before and after;
//! 3. a hello flood from one address: conversations opened and database growth.
//!
//! Run it against this build and an older one to compare:
//!
//! ```text
//! cargo build --release && cargo run --release --example edge_probe -- [path/to/supportbot]
//! ```

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

async fn connect_from(addr: SocketAddr, local: &str) -> Option<Ws> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(local.parse().ok()?, 0)).ok()?;
    let stream = tokio::time::timeout(Duration::from_secs(3), socket.connect(addr)).await.ok()?.ok()?;
    let url = format!("ws://{addr}/ws");
    let (ws, _) = tokio::time::timeout(Duration::from_secs(3), client_async(url, MaybeTlsStream::Plain(stream)))
        .await
        .ok()?
        .ok()?;
    Some(ws)
}

/// Says hello and waits for the welcome; false when refused or closed.
async fn hello(ws: &mut Ws) -> bool {
    if ws.send(Message::text(r#"{"type":"hello","locale":"en-GB"}"#)).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(5), ws.next()).await,
        Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"welcome\"")
    )
}

async fn healthz_ms(addr: SocketAddr) -> Option<u128> {
    let started = Instant::now();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
    let ok = client.get(format!("http://{addr}/healthz")).send().await.ok()?.status().is_success();
    ok.then(|| started.elapsed().as_millis())
}

/// Sockets that have not been closed by the server (a read would not return end of stream).
async fn still_open(sockets: &mut [Ws]) -> usize {
    let mut open = 0;
    for ws in sockets.iter_mut() {
        loop {
            match tokio::time::timeout(Duration::from_millis(5), ws.next()).await {
                Err(_) => {
                    open += 1;
                    break;
                }
                Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(_) => break,
            }
        }
    }
    open
}

#[tokio::main]
async fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let binary = std::env::args().nth(1).unwrap_or_else(|| format!("{root}/target/release/supportbot"));
    let data = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(18124, |a| a.port());
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 1024 && exec "$@""#)
        .arg("sh")
        .arg(&binary)
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(data.path())
        .current_dir(root)
        .env("SUPPORTBOT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let server = Server(child);
    let pid = server.0.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    while healthz_ms(addr).await.is_none() {
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("binary: {binary}");

    // 1. Idle sockets from one address.
    let mut idle = Vec::new();
    let started = Instant::now();
    for _ in 0..1100 {
        match connect_from(addr, "127.0.0.1").await {
            Some(ws) => idle.push(ws),
            None => {
                if started.elapsed() > Duration::from_secs(60) {
                    break;
                }
            }
        }
    }
    let held = idle.len();
    let health = healthz_ms(addr).await;
    let mut visitor_ok = false;
    if let Some(mut ws) = connect_from(addr, "127.0.0.2").await {
        visitor_ok = hello(&mut ws).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let open_later = still_open(&mut idle).await;
    println!("idle sockets (no hello) one address could open: {held} of 1100");
    println!("  /healthz meanwhile: {}", health.map_or("timed out".to_owned(), |ms| format!("{ms} ms")));
    println!("  a new visitor from another address served: {visitor_ok}");
    println!("  still open 15 s later: {open_later}");
    drop(idle);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. Anonymous body flood.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let before = rss_mib(pid);
    let body = vec![b'x'; 1_900_000];
    for _ in 0..10 {
        let mut wave = Vec::new();
        for _ in 0..30 {
            let request = http
                .post(format!("http://{addr}/api/kb/articles"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            wave.push(tokio::spawn(request));
        }
        for request in wave {
            let _ = request.await;
        }
    }
    let after = rss_mib(pid);
    println!(
        "RSS before 300 anonymous 1.9 MB POSTs: {before:.0} MiB, after: {after:.0} MiB (ratio {:.2})",
        after / before
    );

    // 3. Hello flood from one address.
    let db = data.path().join("supportbot.db");
    let size = |p: &std::path::Path| {
        ["", "-wal"]
            .iter()
            .map(|s| std::fs::metadata(format!("{}{s}", p.display())).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let db_before = size(&db);
    let started = Instant::now();
    let (mut opened, mut refused) = (0, 0);
    for _ in 0..2000 {
        match connect_from(addr, "127.0.0.3").await {
            Some(mut ws) => {
                if hello(&mut ws).await {
                    opened += 1;
                } else {
                    refused += 1;
                }
                let _ = ws.close(None).await;
            }
            None => refused += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "hello flood: 2000 hellos in {secs:.1} s: {opened} conversations opened, {refused} refused; database +{:.1} MB",
        (size(&db).saturating_sub(db_before)) as f64 / 1e6
    );
    drop(server);
}
