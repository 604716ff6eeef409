//! Limits at the edge, each reproducing an outside probe's attack on loopback: idle
//! sockets that never say hello, half-sent and dripping HTTP requests, one address
//! holding too many connections, a server at its connection cap; and what every response
//! carries (JSON errors, security headers, compression, ETags).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Client, EDITOR_TOKEN, TestServer, tcp_from, test_config};

/// Reads until the server closes the connection; what it sent, and how long that took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

async fn healthz_from(server: &TestServer, local: &str) -> u16 {
    let mut stream = tcp_from(server.addr, local).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.expect("write");
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_at_the_hello_deadline_and_capped_per_address() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.edge.hello_timeout = Duration::from_secs(2);
    config.edge.connections_per_address = 20;
    let server = TestServer::start_with(config).await;
    // An attacker's address fills its quota with sockets that never say hello.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(Client::connect_from(server.addr, "127.0.0.3").await.expect("within the cap"));
    }
    let refused = Client::connect_from(server.addr, "127.0.0.3").await;
    assert!(refused.is_err(), "the 21st socket from one address is refused");
    // The refusal says why to a client that reads it.
    let mut raw = tcp_from(server.addr, "127.0.0.3").await.expect("the TCP handshake completes");
    let (response, _) = read_until_closed(&mut raw, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 429") && response.contains("too_many_connections"), "{response}");
    // Everyone else is still served meanwhile.
    let mut visitor = Client::connect_from(server.addr, "127.0.0.4").await.expect("another address");
    visitor.start_conversation().await;
    let (_, reply) = visitor.ask("How long does delivery take?").await;
    assert_eq!(reply["from"], "bot");
    assert_eq!(healthz_from(&server, "127.0.0.5").await, 200);
    // The deadline closes every idle socket with an error and code 4408.
    let started = Instant::now();
    for mut socket in idle {
        let (frames, code) = socket.recv_until_close().await;
        assert_eq!(code, Some(4408), "{frames:?}");
        assert_eq!(frames.last().map(|f| f["code"].clone()), Some(json!("hello_timeout")), "{frames:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "closed by the 2 s deadline");
    // Their places are free again (once the server has finished closing them).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut back = loop {
        match Client::connect_from(server.addr, "127.0.0.3").await {
            Ok(client) => break client,
            Err(e) => assert!(Instant::now() < deadline, "places are released: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    back.start_conversation().await;
    // A greeted visitor is not subject to the hello deadline.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, reply) = visitor.ask("Do you deliver abroad?").await;
    assert_eq!(reply["from"], "bot");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_and_dripping_http_requests_are_cut_off() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.edge.header_timeout = Duration::from_secs(1);
    config.edge.request_timeout = Duration::from_secs(2);
    let server = TestServer::start_with(config).await;
    // A bare TCP connection that never sends a byte.
    let mut bare = TcpStream::connect(server.addr).await.expect("connect");
    // A request head that never ends.
    let mut half = TcpStream::connect(server.addr).await.expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").await.expect("write");
    // A head dripped one byte at a time, slower than the deadline allows in all.
    let mut drip = TcpStream::connect(server.addr).await.expect("connect");
    let dripper = tokio::spawn(async move {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
            if drip.write_all(&[*byte]).await.is_err() {
                return (true, drip);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (false, drip)
    });
    for stream in [&mut bare, &mut half] {
        let (_, took) = read_until_closed(stream, Duration::from_secs(10)).await;
        assert!(took < Duration::from_secs(4), "closed after the 1 s head deadline, took {took:?}");
    }
    let (cut, mut drip) = dripper.await.expect("dripper");
    if !cut {
        let (response, _) = read_until_closed(&mut drip, Duration::from_secs(5)).await;
        assert!(!response.contains("200 OK"), "a 13 s head is not served: {response}");
    }
    // A kept-alive connection that goes quiet after one request is closed too.
    let mut kept = TcpStream::connect(server.addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    let (response, took) = read_until_closed(&mut kept, Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(took < Duration::from_secs(4), "idle keep-alive closed, took {took:?}");
    // A body that stalls gets a JSON 408 at the request deadline.
    let mut slow_body = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /api/kb/faq HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {EDITOR_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"lang\""
    );
    slow_body.write_all(head.as_bytes()).await.expect("write");
    let (response, took) = read_until_closed(&mut slow_body, Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"error\":\"request_timeout\""), "{response}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(healthz_from(&server, "127.0.0.1").await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_health_still_answers() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.edge.max_connections = Some(16);
    config.edge.header_timeout = Duration::from_secs(30);
    let server = TestServer::start_with(config).await;
    let mut held = Vec::new();
    for i in 0..16 {
        held.push(tcp_from(server.addr, &format!("127.0.1.{}", i + 1)).await.expect("connect"));
    }
    // The cap is reached: a new client gets /healthz, and a clear 503 for anything else.
    assert_eq!(healthz_from(&server, "127.0.2.1").await, 200);
    let mut page = tcp_from(server.addr, "127.0.2.2").await.expect("connect");
    page.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    let (response, _) = read_until_closed(&mut page, Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("server_busy"), "{response}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = reqwest::get(server.url("/")).await.expect("page").status();
    assert_eq!(body, 200, "served again once connections close");
    server.stop().await;
}

async fn api(server: &TestServer, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(path)).bearer_auth(EDITOR_TOKEN);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
    let text = response.text().await.expect("body");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{status} {path}: JSON, not {text:?}");
    (status, serde_json::from_str(&text).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_json_and_bodies_strict() {
    let server = TestServer::start().await;
    let post = reqwest::Method::POST;
    let faq = r#"{"lang": "en", "id": "strict-json", "question": "q?", "answer": "a"}"#;
    let trailing = format!("{faq} {faq}");
    let (status, body) = api(&server, post.clone(), "/api/kb/faq", Some(&trailing)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")), "{body}");
    let (status, body) = api(&server, post.clone(), "/api/kb/faq", Some(r#"["en", "strict-json", "q?", "a"]"#)).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("validation_failed")), "{body}");
    let huge = format!(r#"{{"lang": "en", "id": "big", "question": "q?", "answer": "{}"}}"#, "a".repeat(200_000));
    let (status, body) = api(&server, post.clone(), "/api/kb/faq", Some(&huge)).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")), "{body}");
    let (status, body) = api(&server, reqwest::Method::GET, "/api/kb/gaps?days=lots", None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_query")), "{body}");
    let (status, body) = api(&server, reqwest::Method::GET, "/api/kb/nothing-here", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = api(&server, reqwest::Method::PATCH, "/api/kb/faq", None).await;
    assert_eq!((status, body["error"].as_str()), (405, Some("method_not_allowed")), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_the_widget_is_compressed_and_cached() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let page = http.get(server.url("/")).send().await.expect("page");
    let headers = page.headers().clone();
    let csp = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    assert!(headers.get("access-control-allow-origin").is_none(), "no CORS where none is needed");
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script>"), "no inline scripts under our CSP");
    let article = http.get(server.url("/kb/en/returns-policy")).send().await.expect("article");
    let csp = article.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let widget = http.get(server.url("/widget.js")).header("accept-encoding", "gzip").send().await.expect("widget");
    assert_eq!(widget.headers().get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]));
    assert!(widget.headers().get("access-control-allow-origin").is_none());
    let etag = widget.headers().get("etag").expect("an ETag").to_str().expect("ascii").to_owned();
    let again = http.get(server.url("/widget.js")).header("if-none-match", &etag).send().await.expect("revalidate");
    assert_eq!(again.status(), 304);
    server.stop().await;
}
