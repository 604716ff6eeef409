//! Proactive delay notices through real sockets: an online customer hears at once, an
//! offline one finds the notice on the next visit, exactly once, also after a restart;
//! nobody online means the shop's webhook is called.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Client, ORDERS_TOKEN, TestServer, test_config};

async fn post_event(server: &TestServer, order: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(server.url(&format!("/api/orders/{order}/events")))
        .bearer_auth(ORDERS_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("post event")
        .status()
        .as_u16()
}

/// A visitor who tracks an order (proving it is theirs), which links the chat to it.
async fn tracked(server: &TestServer, order: &str, proof: &str) -> (Client, String) {
    let mut visitor = server.client().await;
    let welcome = visitor.start_conversation().await;
    visitor.say(&format!("where is my order {order}?")).await;
    let replies = visitor.say(proof).await;
    assert!(replies.iter().any(|r| r["text"].as_str().is_some_and(|t| t.contains(order))), "{replies:?}");
    // Leave the tracking flow's question, if any, unanswered: the notice must still arrive.
    (visitor, welcome["token"].as_str().expect("token").to_owned())
}

fn is_notice(frame: &Value, order: &str) -> bool {
    frame["type"] == "message"
        && frame["from"] == "bot"
        && frame["reply_to"].is_null()
        && frame["text"].as_str().is_some_and(|t| t.contains(order) && t.contains("running late"))
}

async fn drain(client: &mut Client, quiet: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Some(frame) = client.recv_within(quiet).await {
        frames.push(frame);
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_customer_hears_about_a_delay_within_a_second_and_only_once() {
    let server = TestServer::start().await;
    let (mut visitor, _) = tracked(&server, "FH-100234", "priya.shah@example.co.uk").await;
    let event = json!({"event_id": "ev-online-1", "kind": "delayed", "reason": "A storm closed the ferry crossing",
        "new_expected_delivery": "2026-12-01"});
    let sent = tokio::time::Instant::now();
    assert_eq!(post_event(&server, "FH-100234", event.clone()).await, 201);
    let notice = visitor.recv_within(Duration::from_secs(1)).await.expect("a notice within a second");
    assert!(sent.elapsed() < Duration::from_secs(1), "took {:?}", sent.elapsed());
    assert!(is_notice(&notice, "FH-100234"), "{notice}");
    let text = notice["text"].as_str().unwrap_or_default();
    assert!(text.contains("A storm closed the ferry crossing.") && text.contains("Tuesday 1 December 2026"), "{text}");
    let options = visitor.recv().await;
    let values: Vec<&str> =
        options["quick_replies"].as_array().expect("options").iter().filter_map(|q| q["value"].as_str()).collect();
    assert_eq!(values, ["flow:wait", "flow:cancel", "flow:person"]);

    // The same event again (the shop retries): recorded once, told once.
    assert_eq!(post_event(&server, "FH-100234", event).await, 200);
    let extra = drain(&mut visitor, Duration::from_millis(1500)).await;
    assert!(extra.is_empty(), "no second notice: {extra:?}");

    // The choices work like any flow: asking to cancel reaches people.
    let replies = visitor.choose("flow:cancel").await;
    assert!(replies.iter().any(|r| r["from"] == "system"), "{replies:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_customer_gets_the_notice_on_the_next_visit_once_even_after_a_restart() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let (visitor, token) = tracked(&server, "FH-100233", "M20 2RN").await;
    visitor.close().await;
    let event = json!({"event_id": "ev-offline-1", "kind": "delayed", "reason": "Our warehouse lost power",
        "new_expected_delivery": "2026-11-30"});
    assert_eq!(post_event(&server, "FH-100233", event).await, 201);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut back = server.client().await;
    back.hello(Some(&token), Some(0)).await;
    let transcript = drain(&mut back, Duration::from_millis(800)).await;
    let notices = transcript.iter().filter(|f| is_notice(f, "FH-100233")).count();
    assert_eq!(notices, 1, "exactly one notice waiting: {transcript:#?}");
    assert!(
        transcript.last().is_some_and(|f| f["quick_replies"].as_array().is_some_and(|q| q.len() == 3)),
        "the notice and its options are the newest messages, shown first on return: {transcript:#?}"
    );
    back.close().await;
    let temp = server.stop().await;

    let server = TestServer::start_with(test_config(&data_dir)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // the dispatcher has looked at pending events
    let mut again = server.client().await;
    again.hello(Some(&token), Some(0)).await;
    let transcript = drain(&mut again, Duration::from_millis(800)).await;
    let notices = transcript.iter().filter(|f| is_notice(f, "FH-100233")).count();
    assert_eq!(notices, 1, "never again after a restart: {transcript:#?}");
    server.stop().await;
    drop(temp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_online_calls_the_shops_webhook() {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.notice_webhook =
        Some(supportbot::notices::WebhookConfig { url: format!("http://{hook}/hook"), auth_header: None });
    let server = TestServer::start_with(config).await;
    let event = json!({"event_id": "ev-hook-1", "kind": "delayed", "reason": "Held at customs",
        "new_expected_delivery": "2026-12-03"});
    assert_eq!(post_event(&server, "FH-100239", event).await, 201);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(body) = received.lock().expect("lock").first().cloned() {
            assert_eq!(body["type"], "order.delayed");
            assert_eq!(body["order_id"], "FH-100239");
            assert_eq!(body["email"], "ravi.patel@example.com");
            assert_eq!(body["reason"], "Held at customs");
            assert_eq!(body["new_expected_delivery"], "2026-12-03");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the webhook was never called");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

const SHOP_SECRET: &str = "shop-and-supportbot-share-this-secret-0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_the_shop_identified_hears_without_tracking_first() {
    use supportbot::identity::{Identity, sign};
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.identity_secret = Some(SHOP_SECRET.into());
    let server = TestServer::start_with(config).await;
    let exp = chrono::Utc::now().timestamp() + 3600;

    // A forged identity (wrong key) is refused with a clear error and links nothing.
    let mut forger = server.client().await;
    let forged = sign(
        b"not-the-shops-secret-0123456789abcdef",
        &Identity { orders: vec!["FH-100245".into()], exp, user: None, email: None },
    );
    forger.send_json(json!({"type": "hello", "locale": "en-GB", "identity": forged})).await;
    let error = forger.recv().await;
    assert_eq!(error["code"], "invalid_identity", "{error}");
    assert_eq!(forger.recv().await["type"], "welcome", "the chat still opens");

    let mut customer = server.client().await;
    let identity =
        sign(SHOP_SECRET.as_bytes(), &Identity { orders: vec!["FH-100245".into()], exp, user: None, email: None });
    customer.send_json(json!({"type": "hello", "locale": "en-GB", "identity": identity})).await;
    assert_eq!(customer.recv().await["type"], "welcome");
    let greeting = customer.recv().await;
    assert_eq!(greeting["from"], "bot");
    let event = json!({"event_id": "ev-identified-1", "kind": "delayed", "reason": "The supplier is late"});
    assert_eq!(post_event(&server, "FH-100245", event).await, 201);
    let notice = customer.recv_within(Duration::from_secs(1)).await.expect("notice within a second");
    assert!(is_notice(&notice, "FH-100245"), "{notice}");
    let stray = drain(&mut forger, Duration::from_millis(500)).await;
    assert!(!stray.iter().any(|f| is_notice(f, "FH-100245")), "the forger hears nothing: {stray:?}");
    server.stop().await;
    drop(temp);
}
