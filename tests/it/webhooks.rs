//! Webhooks through the real server and a real receiver on loopback: every event type is
//! signed (HMAC-SHA256 over timestamp and body), a failed delivery is retried with
//! back-off on the server's clock, and across a restart each event reaches the receiver
//! exactly once — including one that was still failing when the server stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use supportbot::clock::ManualClock;
use supportbot::webhooks::{WebhookConfig, verify};

use crate::desk_client::{AgentClient, add_agent};
use crate::harness::{MANAGER_TOKEN, TestServer, api_call, count_rows, database, test_config};

const SECRET: &str = "a-webhook-secret-of-some-length";

#[derive(Default)]
struct Received {
    /// Every request: (idempotency key, event type, status answered).
    attempts: Vec<(String, String, u16)>,
    /// Accepted bodies by idempotency key.
    accepted: HashMap<String, Value>,
    /// Refuse every delivery while true; otherwise refuse only each key's first.
    down: bool,
    bad_signatures: usize,
}

async fn receiver(clock: ManualClock) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let state = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = Arc::clone(&state);
            let clock = clock.clone();
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let key = header("idempotency-key");
                let mut r = state.lock().expect("lock");
                if !verify(SECRET, &header("supportbot-signature"), &body, supportbot::clock::Clock::now(&clock)) {
                    r.bad_signatures += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                let first = !r.attempts.iter().any(|(k, _, _)| *k == key);
                let status = if r.down || first { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
                r.attempts.push((key.clone(), header("supportbot-event"), status.as_u16()));
                if status == StatusCode::OK {
                    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    assert!(r.accepted.insert(key, parsed).is_none(), "a delivery accepted twice");
                }
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (format!("http://{addr}/hook"), received)
}

/// Waits (advancing the server's clock past each back-off) until `done` holds.
async fn until_received(clock: &ManualClock, received: &Arc<Mutex<Received>>, done: impl Fn(&Received) -> bool) {
    for _ in 0..150 {
        if done(&received.lock().expect("lock")) {
            return;
        }
        clock.advance(chrono::Duration::seconds(5));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = received.lock().expect("lock");
    panic!("deliveries not as expected: attempts {:?}, accepted {:?}", r.attempts, r.accepted.keys());
}

fn of_type<'a>(r: &'a Received, event_type: &str) -> Vec<&'a Value> {
    r.accepted.values().filter(|b| b["type"] == event_type).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_events_are_retried_and_delivered_exactly_once_across_a_restart() {
    let clock = ManualClock::new(chrono::Utc::now());
    let (url, received) = receiver(clock.clone()).await;
    let temp = tempfile::tempdir().expect("temp");
    let config = || {
        let mut c = test_config(temp.path());
        c.webhooks = vec![WebhookConfig { url: url.clone(), secret: SECRET.into(), events: Vec::new() }];
        c
    };
    let server = TestServer::start_with_clock(config(), Arc::new(clock.clone())).await;
    let (ann_id, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 2).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;

    // A rating (the tracking flow ends with one), a handoff, and a close by the agent.
    let mut rater = server.client().await;
    rater.start_conversation().await;
    rater.say("where is my order FH-100239?").await;
    rater.say("le1 7rh").await;
    rater.choose("flow:wait").await;
    rater.choose("csat:4").await;
    let mut visitor = server.client().await;
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    visitor.send_text("talk to a person").await;
    ann.take_offer(&id).await;
    assert_eq!(ann.request(json!({"type": "close", "conversation": id})).await["type"], "ok");

    until_received(&clock, &received, |r| r.accepted.len() == 3).await;
    {
        let r = received.lock().expect("lock");
        assert_eq!(r.bad_signatures, 0);
        let rated = of_type(&r, "csat.submitted");
        assert_eq!(rated.len(), 1);
        assert_eq!(rated[0]["data"]["score"], 4);
        let handoff = of_type(&r, "handoff.requested");
        assert_eq!(
            (handoff[0]["data"]["conversation"].as_str(), handoff[0]["data"]["lang"].as_str()),
            (Some(id.as_str()), Some("en"))
        );
        assert_eq!(handoff[0]["data"]["reason"], "visitor asked for a person");
        let closed = of_type(&r, "conversation.closed");
        assert_eq!(
            (closed[0]["data"]["closed_by"].as_str(), closed[0]["data"]["team"].as_str()),
            (Some(ann_id.as_str()), Some("support"))
        );
        for (key, body) in &r.accepted {
            assert_eq!(body["id"].as_str(), Some(key.as_str()), "the idempotency key is the event id");
            let tries: Vec<u16> = r.attempts.iter().filter(|(k, _, _)| k == key).map(|(_, _, s)| *s).collect();
            assert_eq!(tries, [500, 200], "{key}: refused once, retried once");
        }
        assert!(
            r.attempts.iter().all(|(k, t, _)| r.accepted[k]["type"] == t.as_str()),
            "the event header names the type"
        );
    }

    // The receiver goes down; another handoff waits in the outbox; the server stops.
    received.lock().expect("lock").down = true;
    let mut second = server.client().await;
    let second_id = second.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    second.send_text("talk to a person").await;
    ann.recv_about("offer", &second_id).await;
    until_received(&clock, &received, |r| r.attempts.len() >= 7).await;
    ann.close().await;
    drop((rater, visitor, second));
    server.stop().await;

    // Back up, receiver too: the waiting delivery arrives once; nothing earlier comes again.
    received.lock().expect("lock").down = false;
    let server = TestServer::start_with_clock(config(), Arc::new(clock.clone())).await;
    until_received(&clock, &received, |r| r.accepted.len() == 4).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    clock.advance(chrono::Duration::minutes(30));
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    {
        let r = received.lock().expect("lock");
        assert_eq!(r.accepted.len(), 4, "{:?}", r.accepted.keys());
        let second_handoff = of_type(&r, "handoff.requested");
        assert!(second_handoff.iter().any(|b| b["data"]["conversation"] == second_id.as_str()));
        let ok = r.attempts.iter().filter(|(_, _, s)| *s == 200).count();
        assert_eq!(ok, 4, "each event accepted exactly once: {:?}", r.attempts);
    }

    // A deleted conversation takes its deliveries (whose bodies quote it) with it.
    let db = database(temp.path()).await;
    let outbox = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_outbox WHERE conversation_id = ?")
                .bind(id)
                .fetch_one(&db)
                .await
                .expect("count")
        }
    };
    assert_eq!(outbox(second_id.clone()).await, 1);
    let url = server.url(&format!("/api/privacy/conversations?conversation={second_id}"));
    let (status, _, _) =
        api_call(&reqwest::Client::new(), url, reqwest::Method::DELETE, Some(MANAGER_TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(outbox(second_id).await, 0);
    // Finished deliveries are kept 30 days, then pruned.
    assert_eq!(count_rows(&db, "webhook_outbox").await, 3);
    clock.advance(chrono::Duration::days(31));
    for _ in 0..40 {
        if count_rows(&db, "webhook_outbox").await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count_rows(&db, "webhook_outbox").await, 0, "pruned after 30 days");
    server.stop().await;
}
