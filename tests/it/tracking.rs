//! Order tracking through real sockets: the sample orders in the embedded source, and the
//! shop's API (a real HTTP server on loopback) when it is down or slow.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use supportbot::config::OrderSourceConfig;

use crate::harness::{TestServer, test_config};

fn texts(replies: &[Value]) -> String {
    replies.iter().filter_map(|r| r["text"].as_str()).collect::<Vec<_>>().join("\n")
}

fn values(reply: &Value) -> Vec<String> {
    reply["quick_replies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["value"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_an_order_named_in_the_first_message() {
    let server = TestServer::start().await;
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    let replies = visitor.say("Hi, where is my order FH-100239? It should be here by now").await;
    let said = texts(&replies);
    assert!(said.contains("postcode"), "asks only for the proof: {said}");
    assert!(!said.contains("order number?"), "the number is not asked for again: {said}");
    let replies = visitor.say("le1 7rh").await;
    let said = texts(&replies);
    assert!(said.contains("FH-100239 is delayed"), "{said}");
    assert!(said.contains("Heavy snow closed the M6"), "the reason: {said}");
    assert!(said.contains("Friday 27 November 2026"), "the new date in the visitor's format: {said}");
    let options = values(replies.last().expect("options"));
    assert_eq!(options, ["flow:wait", "flow:cancel", "flow:person"]);
    let replies = visitor.choose("flow:wait").await;
    let rating = replies.last().expect("rating");
    assert_eq!(values(rating).len(), 5, "a satisfaction rating is asked for: {rating}");
    let replies = visitor.choose("csat:5").await;
    assert!(!texts(&replies).is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_in_several_turns_in_polish() {
    let server = TestServer::start().await;
    let mut visitor = server.client().await;
    visitor.start_conversation_in("pl-PL").await;
    let replies = visitor.say("gdzie jest moja paczka?").await;
    assert!(texts(&replies).contains("FH"), "asks for the order number: {}", texts(&replies));
    let replies = visitor.say("nie wiem").await;
    assert!(!texts(&replies).is_empty(), "a retry");
    let replies = visitor.say("FH-100234").await;
    assert!(!texts(&replies).is_empty());
    let replies = visitor.say("priya.shah@example.co.uk").await;
    let said = texts(&replies);
    assert!(said.contains("https://track.dpd.co.uk/parcels/15501234567890"), "tracking link: {said}");
    assert!(said.contains("DPD"), "{said}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_proof_gives_nothing_away_and_probing_is_refused() {
    let server = TestServer::start().await;
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    visitor.say("track my order FH-100239").await;
    let wrong = texts(&visitor.say("someone@example.com").await);
    for secret in ["delayed", "Heavy snow", "DPD", "Ravi", "LE1", "griddle"] {
        assert!(!wrong.contains(secret), "{secret:?} leaked: {wrong}");
    }
    // The same answer as for an order that does not exist.
    let mut other = server.client().await;
    other.start_conversation().await;
    other.say("track my order FH-999999").await;
    let unknown = texts(&other.say("someone@example.com").await);
    assert_eq!(wrong.replace("FH-100239", "FH-X"), unknown.replace("FH-999999", "FH-X"), "indistinguishable");

    // Many conversations guessing the same order: it locks, even for the right proof.
    for _ in 0..5 {
        let mut prober = server.client().await;
        prober.start_conversation().await;
        prober.say("track my order FH-100238").await;
        prober.say("guess@example.com").await;
    }
    let mut late = server.client().await;
    late.start_conversation().await;
    late.say("track my order FH-100238").await;
    let said = texts(&late.say("eleanor.walsh@example.co.uk").await);
    assert!(said.contains("For your security"), "locked after repeated wrong proofs: {said}");
    assert!(!said.contains("delivered on"), "{said}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_flow_midway() {
    let server = TestServer::start().await;
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    visitor.say("where is my parcel?").await;
    let replies = visitor.say("how long do I have to return something?").await;
    let answer = &replies[0];
    assert_eq!(answer["source"]["id"], "return-window", "the question is answered: {answer}");
    assert!(values(answer).iter().any(|v| v == "flow-resume"), "and going back is offered: {answer}");
    let replies = visitor.choose("flow-resume").await;
    assert!(texts(&replies).contains("order number"), "{}", texts(&replies));
    let replies = visitor.say("cancel").await;
    assert!(texts(&replies).contains("stopped"), "{}", texts(&replies));
    let replies = visitor.say("100234").await;
    assert!(!texts(&replies).contains("postcode"), "the flow is over: {}", texts(&replies));
    server.stop().await;
}

/// A shop API on loopback that never answers in time, or a port nothing listens on.
async fn slow_shop_api() -> SocketAddr {
    let app = axum::Router::new().route(
        "/orders/{id}",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "{}"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn server_with_shop_api(url: String) -> TestServer {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    let file = format!("[orders]\nsource = \"http\"\nurl = \"{url}\"\ntimeout_ms = 300\nretries = 1\n");
    let path = temp.path().join("config.toml");
    std::fs::write(&path, file).expect("config");
    let from_file = supportbot::config::Config::resolve(&supportbot::config::ServeArgs {
        config: Some(path),
        ..Default::default()
    })
    .expect("config resolves");
    config.orders = from_file.orders;
    assert!(matches!(config.orders.source, OrderSourceConfig::Http(_)));
    let mut server = TestServer::start_with(config).await;
    server.keep(temp);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_api_that_is_slow_or_down_is_admitted_and_a_person_offered() {
    let slow = slow_shop_api().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    for addr in [slow, closed] {
        let server = server_with_shop_api(format!("http://{addr}/orders/{{id}}")).await;
        let mut visitor = server.client().await;
        visitor.start_conversation().await;
        visitor.say("where is my order FH-100234").await;
        let started = tokio::time::Instant::now();
        let replies = visitor.say("priya.shah@example.co.uk").await;
        let said = texts(&replies);
        assert!(said.contains("isn't answering"), "{addr}: honest: {said}");
        assert!(replies.iter().any(|r| r["from"] == "system"), "{addr}: handed to people: {said}");
        assert!(started.elapsed() < Duration::from_secs(5), "gives up in time: {:?}", started.elapsed());
        server.stop().await;
    }
}
