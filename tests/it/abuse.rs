//! The visitor socket under abuse, each case reproducing an outside probe's attack with a
//! bounded loop: hello floods, conversations that cost disk before anyone writes, order
//! numbers walked with one known e-mail, binary and invalid frames, identities that never
//! expire, invisible messages, and visitors filling the editors' gap list.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::harness::{Client, TestServer, count_rows, database, test_config};

fn texts(replies: &[Value]) -> String {
    replies.iter().filter_map(|r| r["text"].as_str()).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_flood_costs_no_disk_and_is_refused_past_the_limit() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.edge.conversations_per_hour_per_address = 30; // bursts of 10
    let data_dir = config.data_dir.clone();
    let server = TestServer::start_with(config).await;
    let db = database(&data_dir).await;

    let mut welcomed = Vec::new();
    let mut refused = 0;
    for _ in 0..25 {
        let mut flooder = Client::connect_from(server.addr, "127.0.0.7").await.expect("connect");
        flooder.send_json(json!({"type": "hello", "locale": "en-GB"})).await;
        let (frames, code) = match flooder.recv_frame().await {
            Some(frame) if frame["type"] == "welcome" => {
                welcomed.push(frame["token"].as_str().expect("token").to_owned());
                continue;
            }
            Some(frame) => (vec![frame], flooder.recv_until_close().await.1),
            None => (Vec::new(), None),
        };
        assert_eq!(frames.first().map(|f| f["code"].clone()), Some(json!("too_many_conversations")), "{frames:?}");
        assert_eq!(code, Some(1013), "closed as 'try again later'");
        refused += 1;
    }
    assert_eq!((welcomed.len(), refused), (10, 15), "a burst of 10, then refused");
    assert_eq!(count_rows(&db, "conversations").await, 0, "hellos alone store nothing");

    // Other addresses are not affected, and resuming is never limited.
    let mut other = Client::connect_from(server.addr, "127.0.0.8").await.expect("connect");
    other.start_conversation().await;
    let mut back = Client::connect_from(server.addr, "127.0.0.7").await.expect("connect");
    let welcome = back.hello(Some(&welcomed[0]), Some(0)).await;
    assert_eq!(welcome["resumed"], true, "a pending conversation resumes: {welcome}");
    let greeting = back.recv().await;
    assert_eq!((greeting["seq"].as_i64(), greeting["from"].as_str()), (Some(1), Some("bot")), "{greeting}");

    // Writing stores the conversation with its greeting, in order.
    let (echo, reply) = back.ask("How long does delivery take?").await;
    assert_eq!((echo["seq"].as_i64(), reply["seq"].as_i64()), (Some(2), Some(3)));
    assert_eq!(count_rows(&db, "conversations").await, 1);
    assert_eq!(count_rows(&db, "messages").await, 3, "greeting, question, answer");
    back.close().await;
    let mut again = Client::connect_from(server.addr, "127.0.0.7").await.expect("connect");
    again.hello(Some(&welcomed[0]), Some(0)).await;
    let replayed: Vec<i64> =
        [again.recv().await, again.recv().await, again.recv().await].iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(replayed, [1, 2, 3]);
    server.stop().await;
}

/// Asks to track `order` in a fresh conversation and proves it with `proof`.
async fn track(server: &TestServer, order: &str, proof: &str) -> String {
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    visitor.say(&format!("where is my order {order}")).await;
    let said = texts(&visitor.say(proof).await);
    visitor.close().await;
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_numbers_cannot_be_walked_with_one_known_email() {
    let server = TestServer::start().await;
    // Priya owns FH-100234. An attacker who knows her e-mail walks the numbers around it,
    // a fresh conversation for each.
    let email = "priya.shah@example.co.uk";
    for n in 100_300..100_305 {
        let said = track(&server, &format!("FH-{n}"), email).await;
        assert!(!said.contains("For your security"), "not locked yet: {said}");
    }
    let said = track(&server, "FH-100234", email).await;
    assert!(said.contains("For your security"), "the e-mail is locked after 5 misses: {said}");
    assert!(!said.contains("DPD"), "nothing leaks: {said}");
    // The lock hands over to a person instead of leaving the customer with nothing.
    assert!(said.contains("team"), "a person is offered: {said}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_many_proofs_is_locked() {
    let server = TestServer::start().await;
    for n in 0..10 {
        let said = track(&server, &format!("FH-{}", 100_400 + n), &format!("guess{n}@example.com")).await;
        assert!(!said.contains("For your security"), "attempt {n}: {said}");
    }
    let said = track(&server, "FH-100239", "LE1 7RH").await;
    assert!(said.contains("For your security"), "the address is locked after 10 misses: {said}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_count_against_the_rate_limit() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    for _ in 0..200 {
        client.send_binary(vec![1, 2, 3]).await;
    }
    let mut codes = Vec::new();
    while let Some(frame) = client.recv_within(Duration::from_millis(500)).await {
        codes.push(frame["code"].as_str().unwrap_or_default().to_owned());
    }
    let answered = codes.iter().filter(|c| *c == "binary_not_supported").count();
    assert!(answered <= 30, "at most the 30-frame budget is processed: {answered}");
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_closes_with_1007() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    let frame = Frame::message(vec![0x7b, 0xff, 0xfe, 0x7d], OpCode::Data(Data::Text), true);
    client.send_message(Message::Frame(frame)).await;
    let (frames, code) = client.recv_until_close().await;
    assert_eq!(code, Some(1007), "{frames:?}");
    assert_eq!(frames.last().map(|f| f["code"].clone()), Some(json!("invalid_utf8")), "{frames:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_valid_for_years_are_refused() {
    use supportbot::identity::{Identity, sign};
    let secret = "shop-and-supportbot-share-this-secret-0123";
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.identity_secret = Some(secret.into());
    let server = TestServer::start_with(config).await;
    let exp = chrono::Utc::now().timestamp() + 10 * 365 * 24 * 3600;
    let identity = Identity { orders: vec!["FH-100245".into()], exp, user: None, email: None };
    let mut visitor = server.client().await;
    visitor.send_json(json!({"type": "hello", "identity": sign(secret.as_bytes(), &identity)})).await;
    let error = visitor.recv().await;
    assert_eq!(error["code"], "invalid_identity", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("too late")), "{error}");
    assert_eq!(visitor.recv().await["type"], "welcome", "the chat still opens");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_messages_and_gap_floods_are_not_stored() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    crate::harness::bot_only(&mut config);
    let data_dir = config.data_dir.clone();
    let server = TestServer::start_with(config).await;
    let db = database(&data_dir).await;
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    visitor.send_json(json!({"type": "message", "client_id": "zw", "text": "\u{200b}\u{200d}\u{feff}\u{2060}"})).await;
    let error = visitor.recv().await;
    assert_eq!(error["code"], "empty_text", "{error}");
    assert_eq!(count_rows(&db, "conversations").await, 0, "nothing stored for it");

    // One visitor asking unanswerable questions: each distinct one counts once, and at
    // most 20 per conversation reach the editors' list.
    visitor.say("do you sell rocket fuel?").await;
    visitor.say("do you sell rocket fuel?").await;
    assert_eq!(count_rows(&db, "kb_gaps").await, 1, "a repeated question counts once");
    for n in 0..25 {
        visitor.say(&format!("do you sell rocket fuel type {n}?")).await;
        if n % 9 == 8 {
            tokio::time::sleep(Duration::from_secs(3)).await; // stay under the frame rate limit
        }
    }
    assert_eq!(count_rows(&db, "kb_gaps").await, 20, "at most 20 per conversation");
    server.stop().await;
}
