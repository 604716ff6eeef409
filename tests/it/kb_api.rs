//! The editors' API: token roles, changes that reach a connected visitor's next answer,
//! validation errors naming the field, file problems with file and line, and gaps.

use serde_json::{Value, json};

use crate::harness::{EDITOR_TOKEN, ORDERS_TOKEN, TestServer, copy_dir, repo_path, test_config};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &TestServer) -> Self {
        Self { http: reqwest::Client::new(), base: server.url("") }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, body) =
            crate::harness::api_call(&self.http, format!("{}{path}", self.base), method, token, body).await;
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(EDITOR_TOKEN), None).await
    }
}

async fn server_with_own_kb() -> (TestServer, tempfile::TempDir) {
    let temp = tempfile::tempdir().expect("temp");
    let kb_dir = temp.path().join("kb");
    copy_dir(&repo_path("knowledge-base"), &kb_dir);
    let mut config = test_config(&temp.path().join("data"));
    config.kb_dir = kb_dir;
    (TestServer::start_with(config).await, temp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_need_the_editor_role() {
    let server = TestServer::start().await;
    let api = Api::new(&server);
    let get = reqwest::Method::GET;
    assert_eq!(api.send(get.clone(), "/api/kb/status", None, None).await.0, 401);
    let (status, body) = api.send(get.clone(), "/api/kb/status", Some("not-a-token"), None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
    let (status, body) = api.send(get.clone(), "/api/kb/articles", Some(ORDERS_TOKEN), None).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{body}");
    let delete = reqwest::Method::DELETE;
    let (status, _) = api.send(delete, "/api/kb/faq/en/return-window", Some(ORDERS_TOKEN), None).await;
    assert_eq!(status, 403, "a forbidden write changes nothing");
    let (status, body) = api.get("/api/kb/faq/en/return-window").await;
    assert_eq!((status, body["id"].as_str()), (200, Some("return-window")));
    let (status, body) = api.get("/api/kb/status").await;
    assert_eq!(status, 200);
    assert!(body["documents"].as_u64().unwrap_or(0) > 100, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_faq_created_through_the_api_answers_the_connected_visitor_and_can_be_removed() {
    let (server, _temp) = server_with_own_kb().await;
    let api = Api::new(&server);
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    let question = "can I bring my dog to the warehouse open day?";
    let (_, before) = visitor.ask(question).await;
    assert!(before["source"].is_null(), "not answerable yet: {before}");

    let entry = json!({
        "lang": "en", "id": "dogs-at-open-day", "topic": "events",
        "question": "Can I bring my dog to the warehouse open day?",
        "also": ["are dogs allowed at the open day"],
        "answer": "Yes — well-behaved dogs on a lead are welcome at our warehouse open day."
    });
    let post = reqwest::Method::POST;
    let (status, body) = api.send(post.clone(), "/api/kb/faq", Some(EDITOR_TOKEN), Some(entry.clone())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["file"], "faq/en/events.toml", "{body}");
    assert_eq!(body["live"], true, "{body}");
    let (status, _) = api.send(post, "/api/kb/faq", Some(EDITOR_TOKEN), Some(entry)).await;
    assert_eq!(status, 409, "creating it twice is a conflict");

    let (_, after) = visitor.ask(question).await;
    assert_eq!(after["source"]["id"], "dogs-at-open-day", "same socket, new answer: {after}");

    let put = reqwest::Method::PUT;
    let change = json!({"question": "Are dogs welcome at the open day?", "answer": "Dogs are welcome on a lead."});
    let (status, body) =
        api.send(put.clone(), "/api/kb/faq/en/dogs-at-open-day", Some(EDITOR_TOKEN), Some(change)).await;
    assert_eq!((status, body["created"].as_bool()), (200, Some(false)), "{body}");
    let (_, after) = visitor.ask("are dogs welcome at the open day").await;
    assert_eq!(after["text"], "Dogs are welcome on a lead.");

    let (status, _) =
        api.send(reqwest::Method::DELETE, "/api/kb/faq/en/dogs-at-open-day", Some(EDITOR_TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(api.get("/api/kb/faq/en/dogs-at-open-day").await.0, 404);
    let (_, gone) = visitor.ask("are dogs welcome at the open day").await;
    assert_ne!(gone["source"]["id"], "dogs-at-open-day", "{gone}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_are_written_as_files_and_bad_fields_are_named() {
    let (server, temp) = server_with_own_kb().await;
    let api = Api::new(&server);
    let put = reqwest::Method::PUT;
    let article = json!({
        "title": "Dostawa do paczkomatu",
        "tags": ["paczkomat", "inpost"],
        "summary": "Nie wysyłamy do paczkomatów InPost: paczki dostarcza kurier pod wskazany adres.",
        "body": "Paczki dostarcza kurier.\n\n## Paczkomaty\nNie obsługujemy paczkomatów."
    });
    let (status, body) =
        api.send(put.clone(), "/api/kb/articles/pl/paczkomaty", Some(EDITOR_TOKEN), Some(article.clone())).await;
    assert_eq!((status, body["file"].as_str()), (201, Some("articles/pl/paczkomaty.md")), "{body}");
    assert!(temp.path().join("kb/articles/pl/paczkomaty.md").is_file());
    let page = reqwest::get(server.url("/kb/pl/paczkomaty")).await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("Dostawa do paczkomatu"));

    let bad = json!({"title": "", "tags": ["ok", 5], "body": "x"});
    let (status, body) = api.send(put.clone(), "/api/kb/articles/pl/paczkomaty", Some(EDITOR_TOKEN), Some(bad)).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("validation_failed")), "{body}");
    assert_eq!(body["fields"][0]["field"], "tags[1]", "{body}");
    let empty_title = json!({"title": " ", "body": "x"});
    let (status, body) =
        api.send(put.clone(), "/api/kb/articles/pl/Bad_Slug", Some(EDITOR_TOKEN), Some(empty_title)).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> =
        body["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["id", "title"], "{body}");
    let (status, body) = api.send(put, "/api/kb/faq/en/return-window", Some(EDITOR_TOKEN), Some(json!("{"))).await;
    assert_eq!(status, 422, "a JSON string is not an entry: {body}");
    let raw = reqwest::Client::new()
        .put(server.url("/api/kb/faq/en/return-window"))
        .bearer_auth(EDITOR_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 400);
    assert_eq!(api.get("/api/kb/faq/en/return-window").await.1["question"], "How long do I have to return something?");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_reported_with_file_and_line() {
    let (server, temp) = server_with_own_kb().await;
    let api = Api::new(&server);
    std::fs::write(temp.path().join("kb/faq/broken.toml"), "[[entry]]\nid = \"x\"\nlang = \"en\"\nquestion = oops\n")
        .expect("write broken");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let (_, body) = api.get("/api/kb/status").await;
        if body["stale"] == true {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "the broken file was never reported: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let error = &body["errors"][0];
    assert_eq!(error["file"], "faq/broken.toml", "{body}");
    assert_eq!(error["line"], 4, "{body}");
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    let (_, reply) = visitor.ask("how long do I have to return something?").await;
    assert_eq!(reply["source"]["id"], "return-window", "answers go on: {reply}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_questions_are_grouped_for_editors() {
    let server = TestServer::start_bot_only().await;
    let api = Api::new(&server);
    let mut visitor = server.client().await;
    visitor.start_conversation().await;
    for question in ["do you sell garden gnomes?", "Garden gnomes for sale?", "are you hiring", "selling garden gnome"]
    {
        let (_, reply) = visitor.ask(question).await;
        assert!(reply["source"].is_null(), "{question} must fall back: {reply}");
    }
    let (status, body) = api.get("/api/kb/gaps").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["questions"], 4);
    let groups = body["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{body}");
    assert_eq!(groups[0]["count"], 3);
    assert_eq!(groups[0]["languages"], json!(["en"]));
    assert_eq!(groups[1]["examples"], json!(["are you hiring"]));
    let (_, pl_only) = api.get("/api/kb/gaps?lang=pl").await;
    assert_eq!(pl_only["questions"], 0);
    server.stop().await;
}
