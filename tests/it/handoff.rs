//! Human handoff through the real server: visitors on `/ws`, agents on `/ws/agent`, teams
//! and agents made through the managers' API. Triggers and the packet, the bot's silence,
//! routing, offers timing out on a driven clock, concurrent claims, queue positions,
//! leaving the queue, the grace period, transfers, private notes, isolation, the offline
//! form outside business hours, and a restart.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use supportbot::clock::ManualClock;

use crate::desk_client::{AgentClient, add_agent, add_team};
use crate::harness::{Client, MANAGER_TOKEN, TestServer, api_call, database, test_config};

/// The visitor's conversation id.
fn conversation(welcome: &Value) -> String {
    welcome["conversation_id"].as_str().expect("conversation id").to_owned()
}

/// A visitor asks for a person; returns once the queue line (with its position) arrives.
async fn ask_for_person(visitor: &mut Client, text: &str) -> Value {
    visitor.send_text(text).await;
    let (queued, _) =
        visitor.recv_until(|f| f["type"] == "message" && f["from"] == "system" && f["quick_replies"].is_array()).await;
    queued
}

/// A new visitor who asked for a person and waits in the queue: (client, conversation id).
async fn waiting_visitor(server: &TestServer) -> (Client, String) {
    let mut visitor = server.client().await;
    let id = conversation(&visitor.start_conversation().await);
    ask_for_person(&mut visitor, "talk to a person").await;
    (visitor, id)
}

fn is_system_line(frame: &Value) -> bool {
    frame["type"] == "message" && frame["from"] == "system"
}

async fn start_with_clock() -> (TestServer, ManualClock) {
    let temp = tempfile::tempdir().expect("temp");
    let clock = ManualClock::new(chrono::Utc::now());
    let mut server = TestServer::start_with_clock(test_config(temp.path()), Arc::new(clock.clone())).await;
    server.keep(temp);
    (server, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trigger_hands_off_with_the_full_packet() {
    let server = TestServer::start().await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 20).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;

    // Typed, in English and in Russian; the quick reply; two fallbacks in a row; the API.
    let mut visitors = Vec::new();
    for (locale, text) in [("en-GB", "I want to talk to a person"), ("ru-RU", "оператор")] {
        let mut v = server.client().await;
        let id = conversation(&v.start_conversation_in(locale).await);
        v.ask("how long does delivery take").await;
        ask_for_person(&mut v, text).await;
        visitors.push((id, "visitor asked for a person", v));
    }
    let mut v = server.client().await;
    let id = conversation(&v.start_conversation().await);
    v.send_json(json!({"type": "choice", "client_id": "c1", "value": "handoff"})).await;
    v.recv_until(|f| f["type"] == "message" && f["quick_replies"].is_array() && f["from"] == "system").await;
    visitors.push((id, "visitor asked for a person", v));
    let mut v = server.client().await;
    let id = conversation(&v.start_conversation().await);
    v.ask("zxqv wibble frobnicate quantum").await;
    v.send_text("plorb snarfle gizmo vortex").await;
    v.recv_until(|f| is_system_line(f) && f["quick_replies"].is_array()).await;
    visitors.push((id, "the bot could not answer several questions in a row", v));
    let mut v = server.client().await;
    let id = conversation(&v.start_conversation().await);
    v.ask("do you ship to Norway").await;
    let http = reqwest::Client::new();
    let url = server.url(&format!("/api/conversations/{id}/handoff"));
    let (status, _, _) =
        api_call(&http, url.clone(), Method::POST, Some(MANAGER_TOKEN), Some(json!({"reason": "VIP customer"}))).await;
    assert_eq!(status, 202);
    let (status, _, _) = api_call(&http, url, Method::POST, None, Some(json!({"reason": "x"}))).await;
    assert_eq!(status, 401, "the API needs the manager token");
    visitors.push((id, "VIP customer", v));

    for (id, reason, _) in &visitors {
        let offer = ann.recv_about("offer", id).await;
        let packet = &offer["packet"];
        assert_eq!(packet["reason"], *reason, "{packet}");
        assert_eq!(packet["owner"], "queued");
        assert_eq!(packet["team"], "support");
        assert_eq!(packet["page_url"], "http://shop.test/");
        assert!(packet["waited_seconds"].as_i64().is_some_and(|s| s >= 0));
        assert!(packet["transcript"].as_array().is_some_and(|t| t.iter().any(|m| m["from"] == "visitor")), "{packet}");
        assert!(
            packet["queued_at"].is_string()
                && packet["identity"].is_object()
                && packet["earlier_conversations"].is_array()
        );
        assert!(offer["expires_at"].is_string());
    }
    // On demand too; it says which answers were shown.
    ann.send(json!({"type": "packet", "conversation": visitors[1].0})).await;
    let frame = ann.recv_type("packet").await;
    assert_eq!(frame["packet"]["lang"], "ru");
    assert!(frame["packet"]["answers"].as_array().is_some_and(|a| !a.is_empty()), "answers shown: {frame}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_is_silent_while_an_agent_holds_the_chat_and_they_talk_with_typing_both_ways() {
    let server = TestServer::start().await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    let (mut visitor, id) = waiting_visitor(&server).await;
    ann.take_offer(&id).await;
    let assigned = ann.recv_about("assigned", &id).await;
    assert_eq!(assigned["packet"]["owner"], "agent");
    let (joined, _) = visitor.recv_until(is_system_line).await;
    assert!(joined["text"].as_str().is_some_and(|t| t.contains("Ann")), "{joined}");

    // A question the bot could answer: only the agent hears it.
    visitor.send_text("how long does delivery take").await;
    let (echo, _) = visitor.recv_until(|f| f["from"] == "visitor").await;
    let relayed = ann.recv_about("message", &id).await;
    assert_eq!(relayed["message"]["seq"], echo["seq"]);
    visitor.expect_silence(Duration::from_millis(1500)).await;

    // Typing both ways.
    visitor.send_json(json!({"type": "typing"})).await;
    let typing = ann.recv_about("typing", &id).await;
    assert_eq!(typing["from"], "visitor");
    ann.send(json!({"type": "typing", "conversation": id})).await;
    let (typing, _) = visitor.recv_until(|f| f["type"] == "typing").await;
    assert_eq!(typing["name"], "Ann");

    // The agent answers; the visitor sees who; a retried client_id is stored once.
    assert_eq!(ann.write(&id, "It takes 2-3 working days.", false).await["type"], "ack");
    let (reply, _) = visitor.recv_until(|f| f["type"] == "message" && f["from"] == "agent").await;
    assert_eq!(reply["author"]["name"], "Ann");
    ann.send(json!({"type": "message", "conversation": id, "client_id": "same", "text": "Once"})).await;
    ann.recv_where(|f| f["type"] == "ack" && f["client_id"] == "same").await;
    ann.send(json!({"type": "message", "conversation": id, "client_id": "same", "text": "Once"})).await;
    ann.recv_where(|f| f["type"] == "ack" && f["client_id"] == "same").await;
    let db = database(&server.data_dir).await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE client_id LIKE '%:same'")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(stored, 1);

    // Closing: the visitor is told (and asked for a rating), and writing again brings the bot back.
    assert_eq!(ann.request(json!({"type": "close", "conversation": id})).await["type"], "ok");
    assert_eq!(ann.recv_about("released", &id).await["why"], "closed");
    visitor.recv_until(is_system_line).await;
    let (ask, _) = visitor.recv_until(|f| f["type"] == "message").await;
    assert_eq!((ask["from"].as_str(), ask["rating"].as_bool()), (Some("bot"), Some(true)), "{ask}");
    let (_, answer) = visitor.ask("how long does delivery take").await;
    assert_eq!(answer["from"], "bot", "the bot answers again after close: {answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_follows_language_team_and_capacity() {
    let server = TestServer::start().await;
    add_team(&server, "polish", &["pl"], None).await;
    let (ann_id, ann_token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 1).await;
    let (bob_id, bob_token) = add_agent(&server, "bob@shop.test", "Bob", &["support"], 2).await;
    let (_, ola_token) = add_agent(&server, "ola@shop.test", "Ola", &["polish"], 2).await;
    let mut ann = AgentClient::connect(server.addr, &ann_token).await;
    let mut bob = AgentClient::connect(server.addr, &bob_token).await;
    let mut ola = AgentClient::connect(server.addr, &ola_token).await;

    // Polish goes to the team that speaks it.
    let mut pole = server.client().await;
    let pole_id = conversation(&pole.start_conversation_in("pl-PL").await);
    ask_for_person(&mut pole, "chcę rozmawiać z konsultantem").await;
    let offer = ola.recv_about("offer", &pole_id).await;
    assert_eq!(offer["team"], "polish");

    // English: the first goes to whoever has fewest chats (both 0: longest idle, never assigned);
    // once it is taken, the next goes to the other; Ann (capacity 1) then gets no more.
    let (_first, first_id) = waiting_visitor(&server).await;
    let (taker, mut other, other_id) = tokio::select! {
        offer = ann.recv_about("offer", &first_id) => { assert!(offer.is_object()); (ann, bob, bob_id.clone()) }
        offer = bob.recv_about("offer", &first_id) => { assert!(offer.is_object()); (bob, ann, ann_id.clone()) }
    };
    let mut taker = taker;
    assert_eq!(taker.request(json!({"type": "accept", "conversation": first_id})).await["type"], "ok");
    let (_second, second_id) = waiting_visitor(&server).await;
    let offer = other.recv_about("offer", &second_id).await;
    assert_eq!(offer["team"], "support", "the agent with fewer chats gets it ({other_id})");
    assert_eq!(other.request(json!({"type": "accept", "conversation": second_id})).await["type"], "ok");
    // Now Ann holds 1 of 1; Bob 1 of 2: the third goes to Bob whoever took what.
    let (_third, third_id) = waiting_visitor(&server).await;
    let bob_conn = if other_id == bob_id { &mut other } else { &mut taker };
    let offer = bob_conn.recv_about("offer", &third_id).await;
    assert_eq!(offer["conversation"], third_id.as_str());
    assert_eq!(bob_conn.id(), bob_id);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_not_accepted_in_time_moves_to_the_next_agent() {
    let (server, clock) = start_with_clock().await;
    let (_, ann_token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let (_, bob_token) = add_agent(&server, "bob@shop.test", "Bob", &["support"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &ann_token).await;
    let mut bob = AgentClient::connect(server.addr, &bob_token).await;
    let (_visitor, id) = waiting_visitor(&server).await;
    let (mut first, mut second) = tokio::select! {
        _ = ann.recv_about("offer", &id) => (ann, bob),
        _ = bob.recv_about("offer", &id) => (bob, ann),
    };
    // 29 s: still the first agent's.
    clock.advance(chrono::Duration::seconds(29));
    assert!(second.recv_within(Duration::from_millis(500)).await.is_none_or(|f| f["type"] != "offer"));
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(first.recv_about("offer_withdrawn", &id).await["why"], "expired");
    second.recv_about("offer", &id).await;
    // The first cannot accept any more; the second can.
    assert_eq!(first.request(json!({"type": "accept", "conversation": id})).await["code"], "offer_gone");
    assert_eq!(second.request(json!({"type": "accept", "conversation": id})).await["type"], "ok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_claiming_the_same_hundred_chats_get_each_once() {
    let server = TestServer::start().await;
    let mut agents = Vec::new();
    for n in 0..20 {
        let (_, token) =
            add_agent(&server, &format!("agent{n}@shop.test"), &format!("Agent {n}"), &["support"], 1).await;
        agents.push(AgentClient::connect(server.addr, &token).await);
    }
    let mut ids = Vec::new();
    let mut visitors = Vec::new();
    for n in 0..100 {
        // From many addresses, as a hundred real visitors would come.
        let mut v = Client::connect_from(server.addr, &format!("127.0.1.{}", n + 1)).await.expect("connect");
        ids.push(conversation(&v.start_conversation().await));
        v.send_text("talk to a person").await;
        visitors.push(v);
    }
    for v in &mut visitors {
        v.recv_until(|f| is_system_line(f) && f["quick_replies"].is_array()).await;
    }
    // Every agent claims every chat, all at once.
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for mut agent in agents {
        let ids = Arc::clone(&ids);
        tasks.push(tokio::spawn(async move {
            for id in ids.iter() {
                agent.send(json!({"type": "claim", "conversation": id, "ref": id})).await;
            }
            let mut won = Vec::new();
            for _ in 0..ids.len() {
                let answer = agent.recv_where(|f| f["type"] == "ok" || f["type"] == "error").await;
                match answer["type"].as_str() {
                    Some("ok") => won.push(answer["ref"].as_str().unwrap_or_default().to_owned()),
                    _ => assert_eq!(answer["code"], "taken", "{answer}"),
                }
            }
            (agent, won)
        }));
    }
    let mut winners = std::collections::BTreeMap::new();
    for task in tasks {
        let (agent, won) = task.await.expect("agent task");
        for id in won {
            assert!(winners.insert(id, agent.id()).is_none(), "a chat was assigned twice");
        }
    }
    assert_eq!(winners.len(), 100, "every chat assigned exactly once");
    let db = database(&server.data_dir).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, owner_agent FROM conversations WHERE owner_kind = 'agent'")
            .fetch_all(&db)
            .await
            .expect("rows");
    assert_eq!(rows.len(), 100);
    for (id, agent) in rows {
        assert_eq!(winners.get(&id), Some(&agent), "the store agrees with the winner of {id}");
    }
    // Each visitor heard exactly one "joined".
    for v in &mut visitors {
        let (joined, _) =
            v.recv_until(|f| is_system_line(f) && f["text"].as_str().is_some_and(|t| t.contains("Agent"))).await;
        assert!(joined.is_object());
        while let Some(frame) = v.recv_within(Duration::from_millis(50)).await {
            assert!(
                !is_system_line(&frame) || !frame["text"].as_str().is_some_and(|t| t.contains("Agent")),
                "joined twice: {frame}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_waiting_visitors_see_honest_positions_that_update_and_can_leave() {
    let server = TestServer::start().await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 1).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    // Ann is busy with one chat.
    let (_busy, busy_id) = waiting_visitor(&server).await;
    ann.take_offer(&busy_id).await;

    let mut waiting = Vec::new();
    for n in 1..=3u64 {
        let mut v = server.client().await;
        let id = conversation(&v.start_conversation().await);
        let line = ask_for_person(&mut v, "talk to a person").await;
        let text = line["text"].as_str().unwrap_or_default().to_owned();
        assert!(text.contains(&n.to_string()), "position {n} told: {text}");
        waiting.push((id, v));
    }
    // The estimate grows with the position (one slot, 6 minutes per chat by default).
    let queue = ann.recv_where(|f| f["type"] == "queue" && f["items"].as_array().is_some_and(|i| i.len() == 3)).await;
    let positions: Vec<u64> =
        queue["items"].as_array().expect("items").iter().map(|i| i["position"].as_u64().unwrap_or(0)).collect();
    assert_eq!(positions, [1, 2, 3]);
    assert!(queue["items"][0]["queued_at"].is_string() && queue["items"][0]["lang"] == "en");

    // The first leaves the queue: the bot is back for them, the others move up.
    let (first_id, mut first) = waiting.remove(0);
    let replies = first.choose("leave_queue").await;
    assert!(replies.iter().any(is_system_line), "{replies:?}");
    let (_, answer) = first.ask("how long does delivery take").await;
    assert_eq!(answer["from"], "bot");
    let mut etas = Vec::new();
    for (n, (_, v)) in waiting.iter_mut().enumerate() {
        let (update, _) = v.recv_until(|f| f["type"] == "queue").await;
        assert_eq!(update["position"], json!(n + 1), "{update}");
        etas.push(update["eta_minutes"].as_u64().unwrap_or(0));
    }
    assert!(etas[0] >= 1 && etas[1] > etas[0], "estimates grow with the position: {etas:?}");
    let queue = ann.recv_where(|f| f["type"] == "queue" && f["items"].as_array().is_some_and(|i| i.len() == 2)).await;
    assert!(!queue.to_string().contains(&first_id));
    // Ann closes her chat: the next in line is offered to her.
    assert_eq!(ann.request(json!({"type": "close", "conversation": busy_id})).await["type"], "ok");
    ann.recv_about("offer", &waiting[0].0).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_drops_keeps_chats_through_the_grace_period_then_they_return_to_the_queue() {
    let (server, clock) = start_with_clock().await;
    let (_, ann_token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let (_, bob_token) = add_agent(&server, "bob@shop.test", "Bob", &["support"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &ann_token).await;
    let (mut visitor, id) = waiting_visitor(&server).await;
    ann.take_offer(&id).await;
    let assigned = ann.recv_about("assigned", &id).await;
    let last_seq =
        assigned["packet"]["transcript"].as_array().and_then(|t| t.last()).map(|m| m["seq"].clone()).expect("seq");

    // Ann's network drops; the visitor writes meanwhile; she is back within the grace period
    // and gets exactly what she missed.
    ann.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    visitor.send_text("hello? are you there").await;
    clock.advance(chrono::Duration::seconds(60));
    let mut ann = AgentClient::connect_resume(server.addr, &ann_token, json!({ id.clone(): last_seq })).await;
    assert_eq!(ann.ready["chats"], json!([id]));
    let missed = ann.recv_about("message", &id).await;
    assert_eq!(missed["message"]["text"], "hello? are you there");
    clock.advance(chrono::Duration::seconds(120));
    assert!(
        ann.recv_within(Duration::from_millis(500)).await.is_none_or(|f| f["type"] != "released"),
        "reconnecting cancels the grace period"
    );

    // Gone for good: after the grace period the chat goes back to the queue, the visitor is told,
    // and Bob is offered it.
    ann.close().await;
    let mut bob = AgentClient::connect(server.addr, &bob_token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(chrono::Duration::seconds(119));
    assert!(bob.recv_within(Duration::from_millis(500)).await.is_none_or(|f| f["type"] != "offer"));
    clock.advance(chrono::Duration::seconds(2));
    let (requeued, _) =
        visitor.recv_until(|f| is_system_line(f) && f["text"].as_str().is_some_and(|t| t.contains("Ann"))).await;
    assert!(requeued.is_object());
    bob.recv_about("offer", &id).await;
    let db = database(&server.data_dir).await;
    let (kind,): (String,) = sqlx::query_as("SELECT owner_kind FROM conversations WHERE id = ?")
        .bind(&id)
        .fetch_one(&db)
        .await
        .expect("row");
    assert_eq!(kind, "queued");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_and_hand_back_with_private_notes_that_never_reach_the_visitor() {
    let server = TestServer::start().await;
    add_team(&server, "billing", &[], None).await;
    let (_, ann_token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let (bob_id, bob_token) = add_agent(&server, "bob@shop.test", "Bob", &["support"], 3).await;
    let (_, cid_token) = add_agent(&server, "cid@shop.test", "Cid", &["billing"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &ann_token).await;
    let mut visitor = server.client().await;
    let welcome = visitor.start_conversation().await;
    let id = conversation(&welcome);
    ask_for_person(&mut visitor, "talk to a person").await;
    ann.recv_about("offer", &id).await;
    assert_eq!(ann.request(json!({"type": "accept", "conversation": id})).await["type"], "ok");
    let mut bob = AgentClient::connect(server.addr, &bob_token).await;
    let mut cid = AgentClient::connect(server.addr, &cid_token).await;

    // A private note: the agents see it, live; the visitor never does.
    let note = json!({"type": "note", "conversation": id, "client_id": "n1", "text": "Customer sounds upset about order 1001"});
    ann.send(note).await;
    let note = ann.recv_where(|f| f["type"] == "message" && f["message"]["private"] == true).await;
    assert_eq!(ann.recv().await["type"], "ack", "stored, relayed, then acknowledged");
    assert_eq!(note["message"]["author"]["name"], "Ann");
    // Transfer to Bob with a note.
    let answer = ann
        .request(json!({"type": "transfer", "conversation": id, "to_agent": bob_id, "note": "Bob knows billing"}))
        .await;
    assert_eq!(answer["type"], "ok", "{answer}");
    assert_eq!(ann.recv_about("released", &id).await["why"], "transferred");
    let assigned = bob.recv_about("assigned", &id).await;
    let transcript = assigned["packet"]["transcript"].as_array().expect("transcript").clone();
    assert!(transcript.iter().any(|m| m["text"] == "Bob knows billing" && m["private"] == true));
    let (line, before) =
        visitor.recv_until(|f| is_system_line(f) && f["text"].as_str().is_some_and(|t| t.contains("Bob"))).await;
    let live = serde_json::to_string(&before).expect("json");
    assert!(!live.contains("upset") && !live.contains("Bob knows billing"), "no note reaches the visitor live: {live}");
    assert!(line["text"].as_str().is_some_and(|t| t.contains("Ann")), "names both: {line}");
    // The old holder cannot write any more (same error as a chat that does not exist).
    let refused = ann.write(&id, "still me", false).await;
    let nonexistent = ann.write(&uuid::Uuid::new_v4().to_string(), "still me", false).await;
    assert_eq!(
        (refused["code"].clone(), refused["message"].clone()),
        (nonexistent["code"].clone(), nonexistent["message"].clone())
    );
    assert_eq!(refused["code"], "not_found");

    // Bob sends it to Billing's queue; Cid is offered it, accepts, and hands it back to the bot.
    assert_eq!(bob.request(json!({"type": "transfer", "conversation": id, "to_team": "billing"})).await["type"], "ok");
    let offer = cid.recv_about("offer", &id).await;
    assert_eq!(offer["team"], "billing");
    assert_eq!(cid.request(json!({"type": "accept", "conversation": id})).await["type"], "ok");
    assert_eq!(cid.request(json!({"type": "hand_back", "conversation": id})).await["type"], "ok");
    visitor
        .recv_until(|f| {
            is_system_line(f) && f["text"].as_str().is_some_and(|t| t.contains("Cid") && !t.contains("joined"))
        })
        .await;
    let (_, answer) = visitor.ask("how long does delivery take").await;
    assert_eq!(answer["from"], "bot", "the bot answers after hand-back: {answer}");

    // Nothing private reached the visitor live, and a replay from the start has none either.
    let mut again = server.client().await;
    again.send_json(json!({"type": "hello", "token": welcome["token"], "last_seq": 0})).await;
    let mut replayed = Vec::new();
    while let Some(frame) = again.recv_within(Duration::from_millis(800)).await {
        replayed.push(frame);
    }
    let text = serde_json::to_string(&replayed).expect("json");
    assert!(text.contains("how long does delivery take"), "the replay is complete");
    assert!(
        !text.contains("upset") && !text.contains("Bob knows billing") && !text.contains("\"private\":true"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_see_only_their_teams_and_tokens_do_not_cross() {
    let (server, clock) = start_with_clock().await;
    add_team(&server, "billing", &[], None).await;
    let (_, ann_token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let (_, cid_token) = add_agent(&server, "cid@shop.test", "Cid", &["billing"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &ann_token).await;
    let mut cid = AgentClient::connect(server.addr, &cid_token).await;
    let mut visitor = server.client().await;
    let welcome = visitor.start_conversation().await;
    let id = conversation(&welcome);
    ask_for_person(&mut visitor, "talk to a person").await;
    ann.recv_about("offer", &id).await;

    // Billing's agent cannot see, claim, read or write support's chat: every answer is the
    // same as for a chat that does not exist.
    let ghost = uuid::Uuid::new_v4().to_string();
    for frame in
        [json!({"type": "claim"}), json!({"type": "packet"}), json!({"type": "history"}), json!({"type": "close"})]
    {
        let mut real = frame.clone();
        real["conversation"] = json!(id);
        let mut fake = frame.clone();
        fake["conversation"] = json!(ghost);
        let a = cid.request(real).await;
        let b = cid.request(fake).await;
        assert_eq!((a["code"].clone(), a["message"].clone()), (b["code"].clone(), b["message"].clone()), "{frame}");
        assert_eq!(a["code"], "not_found");
    }
    let mut cid_tab = AgentClient::connect(server.addr, &cid_token).await;
    let queue = cid_tab.recv_type("queue").await;
    assert!(queue["items"].as_array().is_some_and(Vec::is_empty), "billing's queue view has no support chat: {queue}");
    assert_eq!(cid.write(&id, "hi", false).await["code"], "not_found");

    // A visitor token cannot open the agent socket; a made-up one neither; both close 4401.
    for token in [welcome["token"].as_str().expect("token"), "made-up"] {
        let mut socket = AgentClient::open(server.addr).await;
        socket.send(json!({"type": "auth", "token": token})).await;
        let (frames, code) = socket.until_close().await;
        assert_eq!(frames.first().map(|f| f["code"].clone()), Some(json!("unauthorized")));
        assert_eq!(code, Some(4401));
    }
    // Anything before auth is refused; a bad frame gets a specific code.
    let mut socket = AgentClient::open(server.addr).await;
    socket.send(json!({"type": "claim", "conversation": id})).await;
    assert_eq!(socket.recv().await["code"], "auth_required");
    socket.send_raw("{not json").await;
    assert_eq!(socket.recv().await["code"], "bad_json");
    socket.send(json!({"type": "dance"})).await;
    assert_eq!(socket.recv().await["code"], "unknown_type");
    socket.send(json!({"type": "auth", "token": ann_token, "extra": 1})).await;
    assert_eq!(socket.recv().await["code"], "invalid_frame");
    // An agent token never opens a visitor conversation.
    let mut stranger = server.client().await;
    let opened = stranger.hello(Some(&ann_token), Some(0)).await;
    assert_eq!(opened["resumed"], false);
    assert_ne!(opened["conversation_id"], welcome["conversation_id"]);
    // An expired session is refused (sessions last 12 hours by default).
    clock.advance(chrono::Duration::hours(13));
    let mut late = AgentClient::open(server.addr).await;
    late.send(json!({"type": "auth", "token": ann_token})).await;
    let (frames, code) = late.until_close().await;
    assert_eq!((frames.first().map(|f| f["code"].clone()), code), (Some(json!("unauthorized")), Some(4401)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_business_hours_the_visitor_files_an_offline_request_agents_see_first() {
    let server = TestServer::start().await;
    // Closed all day today (a holiday) and tomorrow open from 09:00 in Warsaw.
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Warsaw).date_naive();
    let hours = json!({"time_zone": "Europe/Warsaw", "days": {"mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-17:00",
        "thu": "09:00-17:00", "fri": "09:00-17:00", "sat": "09:00-17:00", "sun": "09:00-17:00"}, "holidays": [today.to_string()]});
    let http = reqwest::Client::new();
    let team = json!({"name": "Support", "hours": hours});
    let (status, _, body) =
        api_call(&http, server.url("/api/teams/support"), Method::PUT, Some(MANAGER_TOKEN), Some(team)).await;
    assert_eq!(status, 200, "{body}");
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;

    let mut visitor = server.client().await;
    let id = conversation(&visitor.start_conversation().await);
    visitor.send_text("talk to a person").await;
    let (ask, skipped) = visitor
        .recv_until(|f| f["quick_replies"].as_array().is_some_and(|q| q.iter().any(|r| r["value"] == "contact_email")))
        .await;
    let back =
        skipped.iter().chain([&ask]).map(|f| f["text"].as_str().unwrap_or_default()).collect::<Vec<_>>().join(" ");
    assert!(back.contains("09:00") && back.contains("Europe/Warsaw"), "says when they are back: {back}");
    assert!(
        ann.recv_within(Duration::from_millis(500)).await.is_none_or(|f| f["type"] != "offer"),
        "nobody is offered it"
    );
    let replies = visitor.choose("contact_email").await;
    assert!(!replies.is_empty());
    let replies = visitor.say("not-an-email").await;
    assert!(replies.iter().any(|f| f["from"] == "bot"), "asked again: {replies:?}");
    visitor.say("jane@example.com").await;
    let replies = visitor.say("My parcel FH-1001 arrived broken, I want a replacement").await;
    assert!(replies.iter().any(|f| f["text"].as_str().is_some_and(|t| t.contains("jane@example.com"))), "{replies:?}");
    let db = database(&server.data_dir).await;
    let (channel, contact, details, team): (String, String, String, String) =
        sqlx::query_as("SELECT channel, contact, details, team FROM offline_requests WHERE conversation_id = ?")
            .bind(&id)
            .fetch_one(&db)
            .await
            .expect("filed");
    assert_eq!((channel.as_str(), contact.as_str(), team.as_str()), ("email", "jane@example.com", "support"));
    assert!(details.contains("arrived broken"));

    // Agents see it first, and can mark it handled (once).
    let queue = ann
        .recv_where(|f| f["type"] == "queue" && f["offline_requests"].as_array().is_some_and(|r| !r.is_empty()))
        .await;
    let request = &queue["offline_requests"][0];
    assert_eq!(request["contact"], "jane@example.com");
    assert_eq!(ann.request(json!({"type": "offline_done", "id": request["id"]})).await["type"], "ok");
    assert_eq!(ann.request(json!({"type": "offline_done", "id": request["id"]})).await["code"], "no_such_request");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_queue_the_assignments_and_every_message() {
    let temp = tempfile::tempdir().expect("temp");
    let server = TestServer::start_with(test_config(temp.path())).await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 1).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    let mut held = server.client().await;
    let held_welcome = held.start_conversation().await;
    let held_id = conversation(&held_welcome);
    ask_for_person(&mut held, "talk to a person").await;
    ann.recv_about("offer", &held_id).await;
    assert_eq!(ann.request(json!({"type": "accept", "conversation": held_id})).await["type"], "ok");
    assert_eq!(ann.write(&held_id, "Hi, I'm Ann", false).await["type"], "ack");
    let (waiting, waiting_id) = waiting_visitor(&server).await;
    let before = ann
        .recv_where(|f| {
            f["type"] == "queue"
                && f["items"].as_array().is_some_and(|i| i.len() == 1 && i[0]["conversation"] == waiting_id.as_str())
        })
        .await;
    ann.close().await;
    held.close().await;
    waiting.close().await;
    server.stop().await;

    let server = TestServer::start_with(test_config(temp.path())).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    assert_eq!(ann.ready["chats"], json!([held_id]), "the assignment survived");
    let assigned = ann.recv_about("assigned", &held_id).await;
    let texts: Vec<&str> =
        assigned["packet"]["transcript"].as_array().expect("t").iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"Hi, I'm Ann") && texts.contains(&"talk to a person"), "{texts:?}");
    let queue = ann.recv_where(|f| f["type"] == "queue" && f["items"].as_array().is_some_and(|i| !i.is_empty())).await;
    assert_eq!(queue["items"][0]["conversation"], waiting_id.as_str(), "the queue survived");
    assert_eq!(queue["items"][0]["queued_at"], before["items"][0]["queued_at"]);
    // The held visitor comes back and writes; Ann hears it.
    let mut held = server.client().await;
    held.hello(held_welcome["token"].as_str(), None).await;
    held.send_text("thanks Ann").await;
    assert_eq!(ann.recv_about("message", &held_id).await["message"]["text"], "thanks Ann");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_handoff_step_carries_the_order_and_its_status_in_the_packet() {
    let server = TestServer::start().await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let mut ann = AgentClient::connect(server.addr, &token).await;
    let mut visitor = server.client().await;
    let id = conversation(&visitor.start_conversation().await);
    visitor.say("Hi, where is my order FH-100239? It should be here by now").await;
    visitor.say("le1 7rh").await;
    visitor.send_json(json!({"type": "choice", "client_id": "p", "value": "flow:person"})).await;
    let offer = ann.recv_about("offer", &id).await;
    let packet = &offer["packet"];
    assert!(!packet["reason"].as_str().unwrap_or_default().is_empty(), "the flow's reason: {packet}");
    assert_eq!(packet["flow"]["id"], "order_tracking", "{packet}");
    assert_eq!(packet["flow"]["slots"]["order_id"], "FH-100239", "{}", packet["flow"]);
    assert_eq!(packet["orders"][0]["id"], "FH-100239");
    assert_eq!(packet["orders"][0]["status"], "delayed");
    assert!(packet["orders"][0]["delay_reason"].as_str().is_some_and(|r| r.contains("Heavy snow")));
    assert_eq!(packet["identity"]["name"], "Ravi Patel");
    assert_eq!(packet["contact"]["email"], "ravi.patel@example.com");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_share_canned_responses_per_language() {
    let server = TestServer::start().await;
    let (_, token) = add_agent(&server, "ann@shop.test", "Ann", &["support"], 3).await;
    let http = reqwest::Client::new();
    let url = server.url("/api/canned");
    let body =
        json!({"shortcut": "/Delay", "lang": "en", "text": "Hi {visitor.name}, order {order.id} is on its way."});
    let (status, _, created) = api_call(&http, url.clone(), Method::POST, Some(&token), Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["shortcut"], "delay", "stored without the slash, lower case");
    let (status, _, dup) = api_call(&http, url.clone(), Method::POST, Some(&token), Some(body)).await;
    assert_eq!((status, &dup["error"]), (409, &json!("duplicate")));
    let polish = json!({"shortcut": "delay", "lang": "pl", "text": "Zamówienie {order.id} jest w drodze."});
    assert_eq!(api_call(&http, url.clone(), Method::POST, Some(&token), Some(polish)).await.0, 201);
    let bad = json!({"shortcut": "a b", "lang": "en", "text": "x"});
    let (status, _, error) = api_call(&http, url.clone(), Method::POST, Some(&token), Some(bad)).await;
    assert_eq!((status, &error["error"]), (422, &json!("validation_failed")));
    let (status, _, list) = api_call(&http, url.clone(), Method::GET, Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let one = format!("{url}/{}", created["id"]);
    let edit = json!({"shortcut": "delay", "lang": "en", "text": "Order {order.id}: on its way."});
    assert_eq!(api_call(&http, one.clone(), Method::PUT, Some(&token), Some(edit)).await.0, 200);
    assert_eq!(api_call(&http, one.clone(), Method::DELETE, Some(&token), None).await.0, 204);
    assert_eq!(api_call(&http, one, Method::DELETE, Some(&token), None).await.0, 404);
    // Agents only: no token, or a manager API token, is refused.
    assert_eq!(api_call(&http, url.clone(), Method::GET, None, None).await.0, 401);
    assert_eq!(api_call(&http, url, Method::GET, Some(MANAGER_TOKEN), None).await.0, 401);
    server.stop().await;
}
