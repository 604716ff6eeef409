//! Bounded storage: the retention sweep deletes what it should and nothing else; a
//! manager exports and deletes one person's data (by conversation, verified identity or
//! e-mail), and nobody else may; the editors' gap list stays fast and paged however many
//! questions went unanswered.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{EDITOR_TOKEN, MANAGER_TOKEN, TestServer, count_rows, database, test_config};

async fn call(server: &TestServer, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_idle_conversations_and_nothing_else() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.retention.conversation_days = 30;
    let data_dir = config.data_dir.clone();
    let server = TestServer::start_with(config).await;
    let db = database(&data_dir).await;
    let mut ids = Vec::new();
    for question in ["where is my order FH-100239", "do you sell rocket fuel?", "How long does delivery take?"] {
        let mut visitor = server.client().await;
        let welcome = visitor.start_conversation().await;
        visitor.say(question).await;
        if question.contains("FH-") {
            visitor.say("LE1 7RH").await;
        }
        visitor.close().await;
        ids.push(welcome["conversation_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(count_rows(&db, "order_links").await, 1);
    assert_eq!(count_rows(&db, "kb_gaps").await, 1);
    // Two conversations were last active 31 and 45 days ago; one 29 days ago.
    let now = chrono::Utc::now().timestamp_millis();
    for (id, days) in ids.iter().zip([31, 45, 29]) {
        sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ?")
            .bind(now - days * DAY_MS)
            .bind(id)
            .execute(&db)
            .await
            .expect("age it");
    }
    let post = reqwest::Method::POST;
    assert_eq!(call(&server, post.clone(), "/api/retention/run", None).await.0, 401);
    assert_eq!(call(&server, post.clone(), "/api/retention/run", Some(EDITOR_TOKEN)).await.0, 403);
    // Visitors have left (a sweep never deletes under a visitor who is online).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = call(&server, post, "/api/retention/run", Some(MANAGER_TOKEN)).await;
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(2)), "{body}");
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM conversations").fetch_all(&db).await.expect("ids");
    assert_eq!(left, [ids[2].clone()], "only the recent one is kept");
    assert_eq!(count_rows(&db, "order_links").await, 0, "links go with their conversation");
    assert_eq!(count_rows(&db, "kb_gaps").await, 0, "unanswered questions too");
    let orphans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE conversation_id != ?")
        .bind(&ids[2])
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(orphans, 0, "and messages");
    assert_eq!(count_rows(&db, "orders").await, 15, "the shop's orders are not conversation data");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_exports_and_deletes_one_persons_data() {
    use supportbot::identity::{Identity, sign};
    let secret = "shop-and-supportbot-share-this-secret-0123";
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.identity_secret = Some(secret.into());
    let data_dir = config.data_dir.clone();
    let server = TestServer::start_with(config).await;
    let db = database(&data_dir).await;

    // Priya proves her order with her e-mail; a shop customer is identified; a stranger chats.
    let mut priya = server.client().await;
    let priya_id = priya.start_conversation().await["conversation_id"].clone();
    priya.say("where is my order FH-100234").await;
    priya.say("priya.shah@example.co.uk").await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let identity = Identity { orders: vec![], exp, user: Some("cust-42".into()), email: None };
    let mut known = server.client().await;
    known.send_json(json!({"type": "hello", "locale": "en-GB", "identity": sign(secret.as_bytes(), &identity)})).await;
    let known_id = known.recv().await["conversation_id"].clone();
    known.recv().await;
    known.ask("How long does delivery take?").await;
    let mut stranger = server.client().await;
    let stranger_id = stranger.start_conversation().await["conversation_id"].clone();
    stranger.ask("Do you deliver abroad?").await;

    let get = reqwest::Method::GET;
    let path = "/api/privacy/conversations?email=Priya.Shah@example.co.uk";
    assert_eq!(call(&server, get.clone(), path, None).await.0, 401);
    assert_eq!(call(&server, get.clone(), path, Some(EDITOR_TOKEN)).await.0, 403);
    let (status, export) = call(&server, get.clone(), path, Some(MANAGER_TOKEN)).await;
    assert_eq!((status, export["count"].as_u64()), (200, Some(1)), "{export}");
    let conversation = &export["conversations"][0];
    assert_eq!(conversation["id"], priya_id);
    assert_eq!(conversation["contact_email"], "priya.shah@example.co.uk");
    assert_eq!(conversation["orders"], json!(["FH-100234"]));
    let texts: Vec<&str> =
        conversation["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"priya.shah@example.co.uk"), "the whole transcript: {texts:?}");

    let (_, by_user) =
        call(&server, get.clone(), "/api/privacy/conversations?visitor_id=cust-42", Some(MANAGER_TOKEN)).await;
    assert_eq!(by_user["conversations"][0]["id"], known_id, "{by_user}");
    let by_id = format!("/api/privacy/conversations?conversation={}", stranger_id.as_str().expect("id"));
    let (_, single) = call(&server, get.clone(), &by_id, Some(MANAGER_TOKEN)).await;
    assert_eq!(single["count"], 1);
    let (status, body) =
        call(&server, get.clone(), "/api/privacy/conversations?email=x@y.z&visitor_id=a", Some(MANAGER_TOKEN)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_query")), "{body}");

    let delete = reqwest::Method::DELETE;
    assert_eq!(call(&server, delete.clone(), path, Some(EDITOR_TOKEN)).await.0, 403);
    let (status, body) = call(&server, delete.clone(), path, Some(MANAGER_TOKEN)).await;
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(1)), "{body}");
    let (_, after) = call(&server, get, path, Some(MANAGER_TOKEN)).await;
    assert_eq!(after["count"], 0);
    let gone: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = ?")
        .bind(priya_id.as_str())
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(gone, 0);
    assert_eq!(count_rows(&db, "conversations").await, 2, "the others are untouched");
    // Priya's open chat learns it ended.
    let (_, code) = priya.recv_until_close().await;
    assert_eq!(code, Some(1001));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_unanswered_questions_are_listed_in_pages() {
    let temp = tempfile::tempdir().expect("temp");
    let config = test_config(temp.path());
    let data_dir = config.data_dir.clone();
    let server = TestServer::start_with(config).await;
    let mut visitor = server.client().await;
    let id = visitor.start_conversation().await["conversation_id"].as_str().expect("id").to_owned();
    visitor.ask("How long does delivery take?").await;
    let db = database(&data_dir).await;
    // 4,000 distinct questions, as many visitors over weeks would leave.
    let now = chrono::Utc::now().timestamp_millis();
    let mut tx = db.begin().await.expect("tx");
    for n in 0..4000i64 {
        // Made-up product names, so the questions do not group together.
        let han =
            |k: i64| char::from_u32(0x4E00 + u32::try_from((n * 31 + k * 7919) % 20_000).expect("small")).expect("han");
        let (lang, question) = match n % 4 {
            0 => ("en", format!("do you stock zq{n}x or vb{n}k")),
            1 => ("ru", format!("есть ли у вас жк{n}ф и мл{n}р")),
            2 => ("pl", format!("czy macie zx{n}w albo qb{n}y")),
            _ => ("zh-Hant", format!("請問有{}{}{}{}嗎", han(1), han(2), han(3), han(4))),
        };
        sqlx::query("INSERT INTO kb_gaps (conversation_id, seq, at, lang, question) VALUES (?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(100 + n)
            .bind(now - n * 1000)
            .bind(lang)
            .bind(question)
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    let http = reqwest::Client::new();
    let response = http.get(server.url("/api/kb/gaps?limit=100")).bearer_auth(EDITOR_TOKEN).send().await.expect("gaps");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("body");
    assert!(bytes.len() < 200_000, "a page, not everything: {} bytes", bytes.len());
    let page: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(page["questions"], 4000);
    assert_eq!(page["groups"].as_array().map(Vec::len), Some(100));
    let next = page["next_offset"].as_u64().expect("more pages");
    let second: Value = http
        .get(server.url(&format!("/api/kb/gaps?limit=100&offset={next}")))
        .bearer_auth(EDITOR_TOKEN)
        .send()
        .await
        .expect("gaps")
        .json()
        .await
        .expect("json");
    assert_eq!(second["offset"].as_u64(), Some(next));
    assert_ne!(second["groups"][0], page["groups"][0]);
    server.stop().await;
}
