//! Anonymous request bodies cost nothing: the token is checked before a byte of the body
//! is read. Run against the real binary in its own process so its memory can be measured.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{EDITOR_TOKEN, repo_path};

struct ChildServer {
    child: Child,
    base: String,
    _temp: tempfile::TempDir,
}

impl ChildServer {
    async fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp");
        let config = temp.path().join("config.toml");
        let hash = supportbot::auth::hash_token(EDITOR_TOKEN);
        std::fs::write(&config, format!("[[tokens]]\nname = \"editors\"\nsha256 = \"{hash}\"\nroles = [\"editor\"]\n"))
            .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_supportbot"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(temp.path().join("data"))
            .arg("--config")
            .arg(&config)
            .current_dir(repo_path(""))
            .env("SUPPORTBOT_LOG", "info")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("listening within a minute");
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = Self { child, base, _temp: temp };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/healthz", server.base)).await.map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(tokio::time::Instant::now() < deadline, "never healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    fn rss_mb(&self) -> f64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kb / 1024.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_body_flood_keeps_memory_bounded() {
    let server = ChildServer::start().await;
    let http = reqwest::Client::new();
    let body = vec![b'x'; 1_900_000];
    let before = server.rss_mb();
    let mut accepted = 0;
    for wave in 0..10 {
        let mut requests = Vec::new();
        for _ in 0..30 {
            let request = http
                .post(format!("{}/api/kb/articles", server.base))
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            requests.push(tokio::spawn(request));
        }
        for request in requests {
            // Refused before the body is read: a 401 (or a 429 once the address opens
            // connections too fast), or the connection closed mid-upload.
            if let Ok(Ok(response)) = request.await {
                let status = response.status().as_u16();
                assert!(status == 401 || status == 429, "wave {wave}: {status}");
                accepted += 1;
            }
        }
    }
    let after = server.rss_mb();
    println!(
        "RSS before {before:.0} MB, after 300 anonymous 1.9 MB bodies {after:.0} MB ({accepted} answered 401/429)"
    );
    assert!(after - before < 60.0, "memory grew from {before:.0} MB to {after:.0} MB");

    // A valid token does not buy an oversized body either: refused from its length.
    tokio::time::sleep(Duration::from_secs(2)).await; // the address may open connections again
    let response = http
        .post(format!("{}/api/kb/articles", server.base))
        .bearer_auth(EDITOR_TOKEN)
        .header("content-type", "application/json")
        .body(vec![b'x'; 300_000])
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 413);
    let error: serde_json::Value = response.json().await.expect("JSON error");
    assert_eq!(error["error"], "body_too_large");
}
