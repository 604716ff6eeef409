//! Durability: resume after a disconnect, idempotent retries, restarts, isolation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Client, TestServer, test_config};

fn seqs(frames: &[Value]) -> Vec<i64> {
    frames.iter().filter_map(|f| f["seq"].as_i64()).collect()
}

/// Reads message frames until `quiet` passes without one.
async fn drain(client: &mut Client, quiet: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(quiet, client.recv_frame()).await {
            Ok(Some(frame)) => out.push(frame),
            Ok(None) | Err(_) => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_messages() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let first_welcome = client.start_conversation().await;
    let token = first_welcome["token"].as_str().expect("token").to_owned();
    let (_, first_reply) = client.ask("How long does delivery take?").await;
    let seen = first_reply["seq"].as_i64().expect("seq");
    // Send a question and vanish before the answer arrives.
    client.send_json(json!({"type": "message", "client_id": "gone-1", "text": "How do I return an item?"})).await;
    client.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut back = server.client().await;
    let welcome = back.hello(Some(&token), Some(seen)).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["conversation_id"], first_welcome["conversation_id"]);
    let missed = drain(&mut back, Duration::from_millis(700)).await;
    assert_eq!(seqs(&missed), [seen + 1, seen + 2], "exactly the missed messages, in order: {missed:?}");
    assert_eq!(missed[0]["client_id"], "gone-1");
    assert_eq!(missed[1]["reply_to"], seen + 1);

    // Full replay from zero rebuilds the whole transcript.
    let mut again = server.client().await;
    again.hello(Some(&token), Some(0)).await;
    let all = drain(&mut again, Duration::from_millis(700)).await;
    assert_eq!(seqs(&all), (1..=seen + 2).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_client_id_is_stored_and_answered_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let welcome = client.start_conversation().await;
    let token = welcome["token"].as_str().expect("token").to_owned();
    client.ask_with_id("dup-1", "Can I pay with PayPal?").await;
    // Same client_id again on the same connection, then after a reconnect.
    client.send_json(json!({"type": "message", "client_id": "dup-1", "text": "Can I pay with PayPal?"})).await;
    client.expect_silence(Duration::from_millis(500)).await;
    client.close().await;
    let mut back = server.client().await;
    back.hello(Some(&token), Some(3)).await;
    back.send_json(json!({"type": "message", "client_id": "dup-1", "text": "Can I pay with PayPal?"})).await;
    back.expect_silence(Duration::from_millis(500)).await;

    let mut reader = server.client().await;
    reader.hello(Some(&token), Some(0)).await;
    let all = drain(&mut reader, Duration::from_millis(700)).await;
    let with_id = all.iter().filter(|f| f["client_id"] == "dup-1").count();
    assert_eq!(with_id, 1, "stored once: {all:?}");
    assert_eq!(all.len(), 3, "greeting, question, one answer: {all:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_conversation() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let mut transcripts = Vec::new();
    for question in ["How long does delivery take?", "Can I return a sale item?", "hello"] {
        let mut client = server.client().await;
        let welcome = client.start_conversation().await;
        client.ask(question).await;
        transcripts.push((welcome["token"].as_str().expect("token").to_owned(), welcome["conversation_id"].clone()));
        client.close().await;
    }
    let mut before = Vec::new();
    for (token, _) in &transcripts {
        let mut c = server.client().await;
        c.hello(Some(token), Some(0)).await;
        before.push(drain(&mut c, Duration::from_millis(500)).await);
    }
    let temp = server.stop().await;

    let server = TestServer::start_with(test_config(&data_dir)).await;
    for ((token, conversation_id), old) in transcripts.iter().zip(&before) {
        let mut c = server.client().await;
        let welcome = c.hello(Some(token), Some(0)).await;
        assert_eq!(welcome["resumed"], true);
        assert_eq!(&welcome["conversation_id"], conversation_id);
        let after = drain(&mut c, Duration::from_millis(500)).await;
        assert_eq!(&after, old, "identical transcript after restart");
        // The conversation continues with the next seq.
        let (echo, _) = c.ask("thanks").await;
        assert_eq!(echo["seq"].as_i64(), old.last().and_then(|m| m["seq"].as_i64()).map(|s| s + 1));
    }
    server.stop().await;
    drop(temp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_visitors_never_see_each_others_messages() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let mut bob = server.client().await;
    let wa = alice.start_conversation().await;
    let wb = bob.start_conversation().await;
    assert_ne!(wa["conversation_id"], wb["conversation_id"]);
    assert_ne!(wa["token"], wb["token"]);
    let (ea, ra) = alice.ask("alice-secret: how do I reset my password").await;
    let (eb, rb) = bob.ask("bob-secret: do you ship to Norway").await;
    assert!(ea["text"].as_str().is_some_and(|t| t.contains("alice-secret")));
    assert!(eb["text"].as_str().is_some_and(|t| t.contains("bob-secret")));
    assert_eq!(ra["reply_to"], ea["seq"]);
    assert_eq!(rb["reply_to"], eb["seq"]);
    alice.expect_silence(Duration::from_millis(300)).await;
    bob.expect_silence(Duration::from_millis(300)).await;
    // A replay of one conversation holds nothing of the other.
    let mut replay = server.client().await;
    replay.hello(wa["token"].as_str(), Some(0)).await;
    let all = drain(&mut replay, Duration::from_millis(500)).await;
    assert!(all.iter().all(|m| !m["text"].as_str().unwrap_or_default().contains("bob-secret")), "{all:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_chats_with_going_away() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    let temp = server.stop().await;
    let (_, code) = client.recv_until_close().await;
    assert_eq!(code, Some(1001), "clients are told the server is going away, so they reconnect");
    drop(temp);
}
