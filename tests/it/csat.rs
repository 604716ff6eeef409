//! Ratings and "did this help?" through the real server on a driven clock: the rating an
//! agent's close asks for (with who resolved it, a changed mind, a refusal after the
//! window, another conversation's rating refused), votes on answers (a "no" offers other
//! articles and a person and feeds the gaps), the API asking for a rating, and the same
//! person not asked twice within 30 days across conversations.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use supportbot::clock::ManualClock;

use crate::desk_client::{AgentClient, add_agent};
use crate::harness::{Client, EDITOR_TOKEN, MANAGER_TOKEN, TestServer, api_call, database, test_config};

async fn started(clock: &ManualClock) -> TestServer {
    let temp = tempfile::tempdir().expect("temp");
    let mut server = TestServer::start_with_clock(test_config(temp.path()), Arc::new(clock.clone())).await;
    server.keep(temp);
    server
}

fn clock_at(time: &str) -> ManualClock {
    ManualClock::new(time.parse::<DateTime<Utc>>().expect("time"))
}

fn minutes(clock: &ManualClock, n: i64) {
    clock.advance(chrono::Duration::minutes(n));
}

/// The next error frame.
async fn error(client: &mut Client) -> Value {
    client.recv_until(|f| f["type"] == "error").await.0
}

async fn rate(client: &mut Client, id: &str, score: u8, comment: Option<&str>) {
    let mut frame = json!({"type": "rate", "client_id": id, "score": score});
    if let Some(comment) = comment {
        frame["comment"] = json!(comment);
    }
    client.send_json(frame).await;
}

/// A chat handed to Ann, who answers and closes it; the frames the visitor got after the close.
async fn closed_by_ann(server: &TestServer, ann: &mut AgentClient, visitor: &mut Client) -> Vec<Value> {
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    handed_to_ann_and_closed(server, ann, visitor, &id).await
}

async fn handed_to_ann_and_closed(
    _server: &TestServer,
    ann: &mut AgentClient,
    visitor: &mut Client,
    id: &str,
) -> Vec<Value> {
    visitor.send_text("talk to a person").await;
    ann.take_offer(id).await;
    assert_eq!(ann.write(id, "Sorted: the refund is on its way.", false).await["type"], "ack");
    visitor.recv_until(|f| f["from"] == "agent").await;
    assert_eq!(ann.request(json!({"type": "close", "conversation": id})).await["type"], "ok");
    let (closed, _) = visitor.recv_until(|f| f["from"] == "system").await;
    let mut after = vec![closed];
    while let Some(frame) = visitor.recv_within(Duration::from_millis(500)).await {
        after.push(frame);
    }
    after
}

fn rating_ask(frames: &[Value]) -> Option<&Value> {
    frames.iter().find(|f| f["type"] == "message" && f["rating"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_asks_once_and_the_rating_names_who_resolved_it() {
    let clock = clock_at("2026-11-02T09:00:00Z");
    let server = started(&clock).await;
    let (ann_id, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 2).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    let mut visitor = server.client().await;
    let after = closed_by_ann(&server, &mut ann, &mut visitor).await;
    let ask = rating_ask(&after).unwrap_or_else(|| panic!("a rating is asked after the close: {after:?}"));
    assert_eq!(ask["from"], "bot");
    assert_eq!(ask["quick_replies"].as_array().map(Vec::len), Some(5), "other clients get buttons: {ask}");
    let conversation = visitor_conversation(&server).await;

    rate(&mut visitor, "r1", 4, Some("  quick and kind  ")).await;
    let (thanks, _) = visitor.recv_until(|f| f["from"] == "bot").await;
    assert_eq!(thanks["text"], "Thank you for your feedback!");
    let db = database(&server.data_dir).await;
    let row = sqlx::query("SELECT score, comment, resolved_by, agent, team, lang, channel FROM csat")
        .fetch_one(&db)
        .await
        .expect("one rating");
    assert_eq!(row.get::<i64, _>("score"), 4);
    assert_eq!(row.get::<Option<String>, _>("comment").as_deref(), Some("quick and kind"));
    assert_eq!(row.get::<String, _>("resolved_by"), "agent");
    assert_eq!(row.get::<Option<String>, _>("agent"), Some(ann_id.clone()));
    assert_eq!(row.get::<Option<String>, _>("team").as_deref(), Some("support"));
    assert_eq!(row.get::<Option<String>, _>("lang").as_deref(), Some("en"));
    assert_eq!(row.get::<String, _>("channel"), "widget");

    // A changed mind within five minutes replaces it; later, refused with a clear error.
    minutes(&clock, 2);
    rate(&mut visitor, "r2", 2, None).await;
    visitor.recv_until(|f| f["from"] == "bot").await;
    let scores: Vec<i64> = sqlx::query_scalar("SELECT score FROM csat").fetch_all(&db).await.expect("scores");
    assert_eq!(scores, [2], "one rating per conversation");
    minutes(&clock, 6);
    rate(&mut visitor, "r3", 5, None).await;
    let refused = error(&mut visitor).await;
    assert_eq!((refused["code"].as_str(), refused["client_id"].as_str()), (Some("already_rated"), Some("r3")));

    // Rating someone else's conversation, or one nobody asked to rate, is refused.
    visitor
        .send_json(json!({"type": "rate", "client_id": "r4", "score": 1,
            "conversation_id": "6f1c1d52-9d0e-4d3a-9d53-2a1f0f7e8b11"}))
        .await;
    assert_eq!(error(&mut visitor).await["code"], "not_your_conversation");
    let mut stranger = server.client().await;
    stranger.start_conversation().await;
    stranger.say("hello").await;
    rate(&mut stranger, "s1", 1, None).await;
    assert_eq!(error(&mut stranger).await["code"], "rating_not_requested");
    assert_eq!(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM csat").fetch_one(&db).await.expect("n"), 1);

    // The figures and the export name Ann.
    let http = reqwest::Client::new();
    let report = metrics_on_the_day(&server).await;
    assert_eq!(report["csat"]["human"], json!({"ratings": 1, "avg": 2.0, "satisfied": 0.0}), "{report}");
    assert_eq!(report["csat"]["per_agent"][0]["agent"], ann_id.as_str());
    let csv = http
        .get(server.url("/api/export/ratings.csv?from=2026-11-01&to=2026-11-03"))
        .bearer_auth(MANAGER_TOKEN)
        .send()
        .await
        .expect("export");
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/csv")));
    let text = csv.text().await.expect("csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 1, "{text}");
    let headers = reader.headers().expect("headers").clone();
    let cell = |name: &str| rows[0].get(headers.iter().position(|h| h == name).expect(name)).unwrap_or_default();
    assert_eq!((cell("conversation_id"), cell("score"), cell("resolved_by")), (conversation.as_str(), "2", "agent"));
    assert_eq!((cell("agent"), cell("team")), (ann_id.as_str(), "support"));
    // The export takes the report's filters: Ann held the rated chat; nobody wrote Polish.
    let export = |query: &str| {
        let url = server.url(&format!("/api/export/ratings.csv?from=2026-11-01&to=2026-11-03&{query}"));
        let http = http.clone();
        async move { http.get(url).bearer_auth(MANAGER_TOKEN).send().await.expect("export").text().await.expect("csv") }
    };
    assert_eq!(export(&format!("agent={ann_id}")).await.lines().count(), 2, "header and Ann's rating");
    assert_eq!(export("team=support&lang=en-GB").await.lines().count(), 2);
    assert_eq!(export("lang=pl").await.lines().count(), 1, "only the header");
    let url = server.url("/api/export/conversations.csv?colour=red");
    let (status, _, bad) = api_call(&http, url, Method::GET, Some(MANAGER_TOKEN), None).await;
    assert_eq!((status, bad["fields"][0]["field"].as_str()), (422, Some("colour")));
    // The editors' token may not export.
    let (status, _, _) =
        api_call(&http, server.url("/api/export/ratings.csv"), Method::GET, Some(EDITOR_TOKEN), None).await;
    assert_eq!(status, 403);
}

async fn metrics_on_the_day(server: &TestServer) -> Value {
    let url = server.url("/api/metrics?from=2026-11-02&to=2026-11-03");
    api_call(&reqwest::Client::new(), url, Method::GET, Some(MANAGER_TOKEN), None).await.2
}

async fn visitor_conversation(server: &TestServer) -> String {
    let db = database(&server.data_dir).await;
    sqlx::query_scalar("SELECT id FROM conversations ORDER BY created_at LIMIT 1").fetch_one(&db).await.expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_this_help_is_one_vote_per_answer_and_a_no_offers_more() {
    let clock = clock_at("2026-11-02T09:00:00Z");
    let server = started(&clock).await;
    let mut visitor = server.client().await;
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    let (echo, answer) = visitor.ask("how long does delivery take").await;
    assert!(answer["source"].is_object(), "{answer}");
    let seq = answer["seq"].as_i64().expect("seq");
    let doc = format!(
        "{}:{}",
        answer["source"]["kind"].as_str().unwrap_or(""),
        answer["source"]["id"].as_str().unwrap_or("")
    );

    visitor.send_json(json!({"type": "feedback", "client_id": "f1", "seq": seq, "helpful": false})).await;
    let (offer, _) = visitor.recv_until(|f| f["from"] == "bot").await;
    assert_eq!(offer["quick_replies"][0]["value"], "handoff", "a person is offered: {offer}");
    assert!(offer["rating"].is_null(), "no rating after a no: {offer}");
    if let Some(articles) = offer["articles"].as_array() {
        let shown = answer["source"]["id"].as_str().unwrap_or("");
        assert!(articles.iter().all(|a| a["id"] != shown), "not the article that did not help: {offer}");
    }
    visitor.send_json(json!({"type": "feedback", "client_id": "f2", "seq": seq, "helpful": true})).await;
    assert_eq!(error(&mut visitor).await["code"], "already_voted");
    visitor.send_json(json!({"type": "feedback", "client_id": "f3", "seq": echo["seq"], "helpful": true})).await;
    assert_eq!(error(&mut visitor).await["code"], "not_an_answer");
    visitor.send_json(json!({"type": "feedback", "client_id": "f4", "seq": 9999, "helpful": true})).await;
    assert_eq!(error(&mut visitor).await["code"], "not_an_answer");

    let db = database(&server.data_dir).await;
    let votes: Vec<(i64, String, bool)> =
        sqlx::query_as("SELECT seq, doc, helpful FROM answer_feedback").fetch_all(&db).await.expect("votes");
    assert_eq!(votes, [(seq, doc.clone(), false)]);
    let http = reqwest::Client::new();
    let export = server.url(&format!("/api/privacy/conversations?conversation={id}"));
    let (_, _, export) = api_call(&http, export, Method::GET, Some(MANAGER_TOKEN), None).await;
    assert_eq!(
        export["conversations"][0]["answer_votes"],
        json!([[seq, false]]),
        "a person's votes are theirs: {export}"
    );
    let (_, _, gaps) = api_call(&http, server.url("/api/kb/gaps"), Method::GET, Some(EDITOR_TOKEN), None).await;
    assert!(gaps.to_string().contains("how long does delivery take"), "the question feeds the gaps: {gaps}");

    // Another visitor: yes → asked for a rating.
    let mut happy = server.client().await;
    happy.start_conversation().await;
    let (_, answer) = happy.ask("how long does delivery take").await;
    happy.send_json(json!({"type": "feedback", "client_id": "h1", "seq": answer["seq"], "helpful": true})).await;
    let (ask, _) = happy.recv_until(|f| f["type"] == "message" && f["rating"] == true).await;
    assert_eq!(ask["from"], "bot");
    rate(&mut happy, "h2", 5, None).await;
    happy.recv_until(|f| f["from"] == "bot").await;
    let resolved: String = sqlx::query_scalar("SELECT resolved_by FROM csat").fetch_one(&db).await.expect("rating");
    assert_eq!(resolved, "bot");

    let report = metrics_on_the_day(&server).await;
    let figures = report["articles"].as_array().and_then(|a| a.iter().find(|x| x["doc"] == doc.as_str())).cloned();
    let figures = figures.unwrap_or_else(|| panic!("{doc} in {report}"));
    assert_eq!(
        (figures["shown"].clone(), figures["helpful"].clone(), figures["unhelpful"].clone()),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!(figures["helpful_votes_share"], 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_can_ask_for_a_rating_even_after_small_talk() {
    let clock = clock_at("2026-11-02T09:00:00Z");
    let server = started(&clock).await;
    let mut visitor = server.client().await;
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    visitor.say("hello").await;
    let http = reqwest::Client::new();
    let url = server.url(&format!("/api/conversations/{id}/csat"));
    let (status, _, body) = api_call(&http, url.clone(), Method::POST, Some(MANAGER_TOKEN), None).await;
    assert_eq!(status, 202, "{body}");
    let (ask, _) = visitor.recv_until(|f| f["type"] == "message" && f["rating"] == true).await;
    assert_eq!(ask["text"], "How did I do? Please rate this chat.");
    rate(&mut visitor, "a1", 3, Some("ok")).await;
    visitor.recv_until(|f| f["from"] == "bot").await;
    minutes(&clock, 10);
    let (status, _, body) = api_call(&http, url, Method::POST, Some(MANAGER_TOKEN), None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_rated")));
    let unknown = server.url("/api/conversations/6f1c1d52-9d0e-4d3a-9d53-2a1f0f7e8b11/csat");
    let (status, _, _) = api_call(&http, unknown, Method::POST, Some(MANAGER_TOKEN), None).await;
    assert_eq!(status, 404);
    let (status, _, _) =
        api_call(&http, server.url(&format!("/api/conversations/{id}/csat")), Method::POST, None, None).await;
    assert_eq!(status, 401);
}

/// Proves order FH-100239 with its e-mail (which tells who the visitor is), then a person.
async fn ravi_with_a_person(server: &TestServer, ann: &mut AgentClient) -> Vec<Value> {
    let mut visitor = server.client().await;
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    visitor.say("where is my order FH-100239?").await;
    visitor.say("ravi.patel@example.com").await;
    handed_to_ann_and_closed(server, ann, &mut visitor, &id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_person_is_not_asked_twice_within_30_days() {
    let clock = clock_at("2026-11-02T09:00:00Z");
    let server = started(&clock).await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;

    let first = ravi_with_a_person(&server, &mut ann).await;
    assert!(rating_ask(&first).is_some(), "asked the first time: {first:?}");
    clock.advance(chrono::Duration::days(1));
    let second = ravi_with_a_person(&server, &mut ann).await;
    assert!(rating_ask(&second).is_none(), "not again the next day: {second:?}");
    clock.advance(chrono::Duration::days(30));
    let third = ravi_with_a_person(&server, &mut ann).await;
    assert!(rating_ask(&third).is_some(), "asked again a month later: {third:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_chat_ends_with_a_rating_request() {
    let clock = clock_at("2026-11-02T09:00:00Z");
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.answers.csat.after_inactivity_minutes = 30;
    config.inactivity_sweep = Duration::from_millis(200);
    let mut server = TestServer::start_with_clock(config, Arc::new(clock.clone())).await;
    server.keep(temp);

    let mut answered = server.client().await;
    answered.start_conversation().await;
    answered.ask("how long does delivery take").await;
    let mut chatty = server.client().await;
    chatty.start_conversation().await;
    chatty.say("hello").await;
    let mut in_a_flow = server.client().await;
    in_a_flow.start_conversation().await;
    in_a_flow.say("where is my order?").await;

    // 20 minutes: not yet.
    minutes(&clock, 20);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(answered.recv_within(Duration::from_millis(100)).await.is_none());
    // 31 minutes: the answered chat is asked, once; small talk and an open flow are not.
    minutes(&clock, 11);
    let (ask, _) = answered.recv_until(|f| f["type"] == "message").await;
    assert_eq!((ask["from"].as_str(), ask["rating"].as_bool()), (Some("bot"), Some(true)), "{ask}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(answered.recv_within(Duration::from_millis(100)).await.is_none(), "asked once");
    assert!(chatty.recv_within(Duration::from_millis(100)).await.is_none(), "small talk only: not asked");
    assert!(in_a_flow.recv_within(Duration::from_millis(100)).await.is_none(), "a flow is still open");
    rate(&mut answered, "q1", 5, None).await;
    answered.recv_until(|f| f["from"] == "bot").await;
    let db = database(&server.data_dir).await;
    let asked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conversation_events WHERE kind = 'csat_asked'")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(asked, 1);
}
