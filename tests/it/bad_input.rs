//! Every kind of bad input gets its specific error code and the connection stays usable.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Client, TestServer};

/// After an error, the same connection still answers a question.
async fn still_usable(client: &mut Client) {
    let (_, reply) = client.ask("How long does delivery take?").await;
    assert_eq!(reply["from"], "bot");
}

async fn expect_error(client: &mut Client, code: &str) -> serde_json::Value {
    let frame = client.recv().await;
    assert_eq!(frame["type"], "error", "error frame expected: {frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()), "errors explain themselves: {frame}");
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_before_hello_and_second_hello() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.send_json(json!({"type": "message", "client_id": "x1", "text": "hi"})).await;
    let err = expect_error(&mut client, "hello_required").await;
    assert_eq!(err["client_id"], "x1");
    client.start_conversation().await;
    client.send_json(json!({"type": "hello"})).await;
    expect_error(&mut client, "already_greeted").await;
    still_usable(&mut client).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_each_get_their_code() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let welcome = client.start_conversation().await;
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_json"),
        ("[1, 2, 3]".into(), "bad_json"),
        ("\"hello\"".into(), "bad_json"),
        (json!({"text": "no type"}).to_string(), "missing_type"),
        (json!({"type": 7}).to_string(), "missing_type"),
        (json!({"type": "dance"}).to_string(), "unknown_type"),
        (json!({"type": "message", "text": "no client id"}).to_string(), "invalid_message"),
        (json!({"type": "message", "client_id": "c", "text": 42}).to_string(), "invalid_message"),
        (json!({"type": "message", "client_id": "", "text": "x"}).to_string(), "invalid_message"),
        (json!({"type": "message", "client_id": "c", "text": "   \n "}).to_string(), "empty_text"),
        (json!({"type": "message", "client_id": "c", "text": "x".repeat(5000)}).to_string(), "text_too_long"),
        (json!({"type": "choice", "client_id": "c", "value": "launch-rockets"}).to_string(), "unknown_choice"),
    ];
    for (frame, code) in cases {
        client.send_raw(&frame).await;
        expect_error(&mut client, code).await;
    }
    client.send_binary(vec![0, 159, 146, 150]).await;
    expect_error(&mut client, "binary_not_supported").await;
    still_usable(&mut client).await;
    // Nothing invalid was stored: the transcript is greeting, question, answer.
    client.close().await;
    let mut again = server.client().await;
    again.hello(welcome["token"].as_str(), Some(0)).await;
    let senders: Vec<String> =
        [again.recv().await, again.recv().await, again.recv().await].iter().map(|m| m["from"].to_string()).collect();
    assert_eq!(senders, ["\"bot\"", "\"visitor\"", "\"bot\""]);
    again.expect_silence(std::time::Duration::from_millis(400)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    // Over the frame limit (16 KiB) but under the hard transport limit: error, stays open.
    let big = json!({"type": "message", "client_id": "big", "text": "y".repeat(20_000)}).to_string();
    client.send_raw(&big).await;
    expect_error(&mut client, "frame_too_large").await;
    still_usable(&mut client).await;
    // Over the hard limit: error if the transport allows, then close code 1009.
    client.send_raw(&"z".repeat(200_000)).await;
    let (frames, close_code) = client.recv_until_close().await;
    assert_eq!(close_code, Some(1009), "closed as 'message too big'");
    assert!(frames.iter().all(|f| f["code"] == "frame_too_large"), "{frames:?}");
    // The server is fine: a new connection works.
    let mut fresh = server.client().await;
    fresh.start_conversation().await;
    still_usable(&mut fresh).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_get_a_fresh_conversation() {
    let server = TestServer::start().await;
    let mut owner = server.client().await;
    let welcome = owner.start_conversation().await;
    owner.ask("How long does delivery take?").await;
    for bogus in ["not-a-token", &"A".repeat(43), welcome["conversation_id"].as_str().unwrap_or_default()] {
        let mut stranger = server.client().await;
        stranger.send_json(json!({"type": "hello", "token": bogus, "last_seq": 0})).await;
        expect_error(&mut stranger, "invalid_token").await;
        let fresh = stranger.recv().await;
        assert_eq!(fresh["type"], "welcome");
        assert_eq!(fresh["resumed"], false);
        assert_ne!(fresh["conversation_id"], welcome["conversation_id"], "never someone else's conversation");
        assert_ne!(fresh["token"], welcome["token"]);
        let greeting = stranger.recv().await;
        assert_eq!(greeting["seq"], 1, "a fresh conversation starts at seq 1: {greeting}");
        stranger.expect_silence(Duration::from_millis(300)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_rate_limited() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    for _ in 0..40 {
        client.send_json(json!({"type": "typing"})).await;
    }
    let err = expect_error(&mut client, "rate_limited").await;
    assert!(err["message"].as_str().is_some_and(|m| m.contains("slow down")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_not_on_the_origin_allow_list_cannot_open_the_socket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let temp = tempfile::tempdir().expect("temp");
    let mut config = crate::harness::test_config(temp.path());
    config.allowed_origins = vec!["https://shop.example".into()];
    let server = TestServer::start_with(config).await;
    let connect = |origin: &'static str| {
        let mut request = format!("ws://{}/ws", server.addr).into_client_request().expect("request");
        request.headers_mut().insert("Origin", origin.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    let refused = connect("https://evil.example").await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );
    assert!(connect("https://shop.example").await.is_ok(), "an allowed origin connects");
    server.stop().await;
}
