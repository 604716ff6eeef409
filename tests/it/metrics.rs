//! CX metrics from the event log, through the real server on a driven clock: a chat the
//! bot resolves (and is rated), one handed off and closed by an agent, one abandoned in the
//! queue, one where the visitor never wrote — then the exact figures `GET /api/metrics`
//! computes from them, with filters, ranges and bad parameters.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use supportbot::clock::ManualClock;

use crate::desk_client::{AgentClient, add_agent};
use crate::harness::{MANAGER_TOKEN, TestServer, api_call, test_config};

fn secs(clock: &ManualClock, n: i64) {
    clock.advance(chrono::Duration::seconds(n));
}

async fn metrics(server: &TestServer, query: &str) -> (u16, Value) {
    let (status, _, body) = api_call(
        &reqwest::Client::new(),
        server.url(&format!("/api/metrics?{query}")),
        Method::GET,
        Some(MANAGER_TOKEN),
        None,
    )
    .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_are_exact_for_bot_resolved_handed_off_abandoned_and_silent_chats() {
    let start: DateTime<Utc> = "2026-11-02T09:00:00Z".parse().expect("time");
    let clock = ManualClock::new(start);
    let temp = tempfile::tempdir().expect("temp");
    let mut server = TestServer::start_with_clock(test_config(temp.path()), Arc::new(clock.clone())).await;
    server.keep(temp);
    let (ann_id, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 2).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;

    // A: small talk, 40 s later a knowledge-base answer, then order tracking rated 5. The bot alone.
    let mut a = server.client().await;
    a.start_conversation().await;
    let replies = a.say("hi").await;
    assert!(replies.iter().any(|r| r["from"] == "bot"), "{replies:?}");
    secs(&clock, 40);
    let (_, answer) = a.ask("how long does delivery take").await;
    assert!(answer["source"].is_object(), "a knowledge-base answer: {answer}");
    secs(&clock, 10);
    a.say("where is my order FH-100239?").await;
    a.say("le1 7rh").await;
    a.choose("flow:wait").await;
    a.choose("csat:5").await;
    // A second rating is refused, clearly: the rating buttons are no longer offered.
    a.send_json(json!({"type": "choice", "client_id": "second-rating", "value": "csat:1"})).await;
    let (refused, _) = a.recv_until(|f| f["type"] == "error").await;
    assert_eq!(refused["code"], "unknown_choice", "{refused}");

    // B: asks for a person; Ann accepts after 30 s, replies 15 s later, closes 60 s after that.
    secs(&clock, 60);
    let mut b = server.client().await;
    let b_id = b.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    b.send_text("talk to a person").await;
    ann.recv_about("offer", &b_id).await;
    secs(&clock, 30);
    assert_eq!(ann.request(json!({"type": "accept", "conversation": b_id})).await["type"], "ok");
    secs(&clock, 15);
    assert_eq!(ann.write(&b_id, "Hello, Ann here", false).await["type"], "ack");
    secs(&clock, 60);
    assert_eq!(ann.request(json!({"type": "close", "conversation": b_id})).await["type"], "ok");

    // C: opens the widget and never writes.
    let mut c = server.client().await;
    c.start_conversation().await;

    // D: asks for a person and leaves the queue 20 s later.
    let mut d = server.client().await;
    let d_id = d.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    d.send_text("talk to a person").await;
    ann.recv_about("offer", &d_id).await;
    secs(&clock, 20);
    d.choose("leave_queue").await;
    // Let the last step commit before reading.
    let _ = ann.recv_within(std::time::Duration::from_millis(300)).await;

    let (status, report) = metrics(&server, "from=2026-11-02&to=2026-11-03").await;
    assert_eq!(status, 200, "{report}");
    let t = &report["totals"];
    // C never wrote: a conversation is stored (and counted) from the visitor's first message.
    assert_eq!(t["conversations"], 3, "{t}");
    assert_eq!(t["engaged"], 3, "{t}");
    assert_eq!((t["handoffs"].clone(), t["bot_contained"].clone()), (json!(2), json!(1)));
    assert_eq!(t["containment_rate"], 0.333);
    assert_eq!(t["handoff_rate"], 0.667);
    // A's first reply came at once; B's first non-system reply is Ann's, 45 s after asking; D got none.
    assert_eq!(t["first_response_secs"], json!({"count": 2, "avg": 22.5, "p90": 45.0}));
    assert_eq!(t["first_agent_reply_secs"], json!({"count": 1, "avg": 45.0, "p90": 45.0}));
    assert_eq!(t["queue_wait_secs"], json!({"count": 1, "avg": 30.0, "p90": 30.0}), "D never got an agent");
    // A: the last answer 40 s after the first message; B: closed 105 s after it.
    assert_eq!(t["resolution_secs"], json!({"count": 2, "avg": 72.5, "p90": 105.0}));
    assert_eq!(t["csat"], json!({"ratings": 1, "avg": 5.0, "satisfied": 1.0}));
    assert_eq!(report["csat"]["bot"]["ratings"], 1);
    assert_eq!(report["csat"]["human"]["ratings"], 0);
    assert_eq!(report["handoff_reasons"], json!([{"reason": "visitor asked for a person", "count": 2}]));
    let articles = report["articles"].as_array().expect("articles");
    assert_eq!(articles.len(), 1, "{articles:?}");
    assert_eq!(articles[0]["shown"], 1);
    assert!(articles[0]["doc"].as_str().is_some_and(|d| d.starts_with("faq:") || d.starts_with("article:")));
    // The daily series: one bucket, the same figures.
    assert_eq!(report["series"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["series"][0]["start"], "2026-11-02T00:00:00.000Z");
    assert_eq!(report["series"][0]["conversations"], 3);

    // Filters: Ann held only B; the support team queued B and D; nobody wrote Russian.
    let (_, by_agent) = metrics(&server, &format!("from=2026-11-02&to=2026-11-03&agent={ann_id}")).await;
    assert_eq!(by_agent["totals"]["conversations"], 1, "{by_agent}");
    assert_eq!(by_agent["totals"]["resolution_secs"]["avg"], 105.0);
    let (_, by_team) = metrics(&server, "from=2026-11-02&to=2026-11-03&team=support").await;
    assert_eq!(by_team["totals"]["conversations"], 2);
    let (_, russian) = metrics(&server, "from=2026-11-02&to=2026-11-03&lang=ru").await;
    assert_eq!(russian["totals"]["conversations"], 0);
    assert_eq!(russian["totals"]["containment_rate"], Value::Null);
    // A past range is recomputed from the log: before 09:01 only A had opened.
    let (_, early) = metrics(&server, "from=2026-11-02T08:00:00Z&to=2026-11-02T09:01:00Z&interval=hour").await;
    assert_eq!(early["totals"]["conversations"], 1, "{early}");
    assert_eq!(early["series"].as_array().map(Vec::len), Some(2), "08:00 and 09:00");
    assert_eq!(early["series"][1]["csat"]["avg"], 5.0);

    // Bad parameters are named; no token, no figures.
    let (status, bad) = metrics(&server, "from=yesterday&interval=month&colour=red").await;
    assert_eq!(status, 422, "{bad}");
    let fields: Vec<&str> =
        bad["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    for want in ["from", "interval", "colour"] {
        assert!(fields.contains(&want), "{want} named: {bad}");
    }
    let (status, _) = metrics(&server, "from=2026-11-03&to=2026-11-02").await;
    assert_eq!(status, 422);
    let (status, _, _) = api_call(&reqwest::Client::new(), server.url("/api/metrics"), Method::GET, None, None).await;
    assert_eq!(status, 401);
    drop((a, b, c, d));
    server.stop().await;
}

/// The value of a sample (for a histogram: how many observations), if it is there.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v))).map(|s| {
        match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        }
    })
}

async fn scrape(server: &TestServer, token: Option<&str>) -> (u16, Option<prometheus_parse::Scrape>) {
    let mut request = reqwest::Client::new().get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let parsed = (status == 200).then(|| {
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text parses")
    });
    (status, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_parses_moves_with_traffic_and_needs_an_allowed_address_or_a_token() {
    let defaults = supportbot::config::Config::default().metrics.allow_from;
    assert!(defaults.iter().any(|n| n.contains(&std::net::IpAddr::from([127, 0, 0, 1]))), "loopback by default");
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.metrics.allow_from = Vec::new(); // even loopback needs the token here
    let mut server = TestServer::start_with(config).await;
    server.keep(temp);
    assert_eq!(scrape(&server, None).await.0, 401);
    assert_eq!(scrape(&server, Some("wrong")).await.0, 401);

    let (status, before) = scrape(&server, Some(MANAGER_TOKEN)).await;
    assert_eq!(status, 200);
    let before = before.expect("scrape");
    assert_eq!(sample(&before, "supportbot_visitor_connections", None), Some(0.0));
    assert_eq!(sample(&before, "supportbot_handoffs_total", None), Some(0.0));

    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 2).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    let mut visitor = server.client().await;
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    visitor.ask("how long does delivery take").await;
    visitor.send_raw("{not json").await;
    visitor.recv_until(|f| f["type"] == "error").await;
    visitor.send_text("talk to a person").await;
    ann.recv_about("offer", &id).await;
    ann.send_raw("{not json either").await;
    ann.recv_where(|f| f["type"] == "error").await;

    let after = scrape(&server, Some(MANAGER_TOKEN)).await.1.expect("scrape");
    assert_eq!(sample(&after, "supportbot_visitor_connections", None), Some(1.0));
    assert_eq!(sample(&after, "supportbot_agent_connections", None), Some(1.0));
    assert_eq!(
        sample(&after, "supportbot_queue_length", Some(("team", "support"))),
        Some(1.0),
        "offered, still queued"
    );
    assert_eq!(sample(&after, "supportbot_handoffs_total", None), Some(1.0));
    assert_eq!(sample(&after, "supportbot_messages_total", Some(("from", "visitor"))), Some(2.0));
    assert!(sample(&after, "supportbot_messages_total", Some(("from", "bot"))).is_some_and(|n| n >= 1.0));
    assert!(sample(&after, "supportbot_answer_seconds", None).is_some_and(|n| n >= 1.0), "answer latency observed");
    assert!(sample(&after, "supportbot_search_seconds", None).is_some_and(|n| n >= 1.0), "search latency observed");
    assert_eq!(sample(&after, "supportbot_errors_total", Some(("kind", "bad_json"))), Some(1.0));
    assert_eq!(sample(&after, "supportbot_agent_errors_total", Some(("code", "bad_json"))), Some(1.0), "agent socket");
    assert!(
        sample(&after, "supportbot_errors_total", Some(("kind", "http_4xx"))).is_some_and(|n| n >= 2.0),
        "the refused scrapes"
    );

    // Disconnected sockets leave the gauges.
    drop(visitor);
    ann.close().await;
    let mut left = None;
    for _ in 0..50 {
        let s = scrape(&server, Some(MANAGER_TOKEN)).await.1.expect("scrape");
        if sample(&s, "supportbot_visitor_connections", None) == Some(0.0)
            && sample(&s, "supportbot_agent_connections", None) == Some(0.0)
        {
            left = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(left.is_some(), "connection gauges back to 0");
    server.stop().await;
}
