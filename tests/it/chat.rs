//! Answers through the real socket: knowledge-base answers, honest fallback, small talk, pages.

use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_answered_with_its_source() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    let (_, reply) = client.ask("how long will my parcel take to arrive?").await;
    assert_eq!(reply["from"], "bot");
    let source = &reply["source"];
    assert_eq!(source["id"], ANSWER_DELIVERY_TIME, "{reply}");
    assert_eq!(source["lang"], "en");
    assert!(source["score"].as_f64().is_some_and(|s| s > 0.0 && s <= 1.0), "{source}");
    assert!(reply["quick_replies"].is_null(), "a confident answer offers no handoff: {reply}");
    // The source link works.
    let url = server.url(source["url"].as_str().expect("url").split('#').next().unwrap_or_default());
    let page = reqwest::get(&url).await.expect("kb page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    assert!(html.contains(source["title"].as_str().expect("title").split('?').next().unwrap_or_default()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_answer_links_to_the_rendered_article() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    let (_, reply) = client.ask(ARTICLE_QUESTION).await;
    assert_eq!(reply["source"]["kind"], "article", "{reply}");
    assert_eq!(reply["source"]["id"], ARTICLE_ANSWER, "{reply}");
    let url = reply["source"]["url"].as_str().expect("url");
    assert_eq!(url, format!("/kb/en/{ARTICLE_ANSWER}"));
    let page = reqwest::get(server.url(url)).await.expect("article page");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().is_ok_and(|c| c.starts_with("text/html")));
    let missing = reqwest::get(server.url("/kb/en/no-such-article")).await.expect("404 page");
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_scope_questions_get_an_honest_fallback() {
    let server = TestServer::start_bot_only().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    for question in ["Can you recommend a good pizza place nearby?", "Who won the football last night?"] {
        let (_, reply) = client.ask(question).await;
        assert!(reply["source"].is_null(), "no pretend answer for {question:?}: {reply}");
        let quick = reply["quick_replies"].as_array().expect("quick replies");
        assert!(quick.iter().any(|q| q["label"] == "Talk to a person" && q["value"] == "handoff"), "{reply}");
        let articles = reply["articles"].as_array().map_or(0, Vec::len);
        assert!(articles <= 3);
    }
    // Clicking "Talk to a person" is echoed and acknowledged.
    client.send_json(serde_json::json!({"type": "choice", "client_id": "h1", "value": "handoff"})).await;
    let echo = client.recv().await;
    assert_eq!((echo["from"].as_str(), echo["text"].as_str()), (Some("visitor"), Some("Talk to a person")));
    let ack = client.recv().await;
    assert_eq!(ack["from"], "system", "{ack}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greetings_and_thanks_are_small_talk() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.start_conversation().await;
    for text in ["Hello!", "thanks a lot", "bye"] {
        let (_, reply) = client.ask(text).await;
        assert!(reply["source"].is_null() && reply["quick_replies"].is_null(), "{text}: {reply}");
        assert!(!reply["text"].as_str().unwrap_or_default().contains("couldn't find"), "{text}: {reply}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_demo_page_and_widget_are_served() {
    let server = TestServer::start().await;
    assert_eq!(reqwest::get(server.url("/healthz")).await.expect("healthz").status(), 200);
    let demo = reqwest::get(server.url("/")).await.expect("demo").text().await.expect("body");
    assert!(demo.contains("widget.js"), "demo page embeds the widget");
    let widget = reqwest::get(server.url("/widget.js")).await.expect("widget");
    assert_eq!(widget.status(), 200);
    assert!(widget.headers()["content-type"].to_str().is_ok_and(|c| c.contains("javascript")));
    let faq = reqwest::get(server.url("/kb/en/faq")).await.expect("faq page");
    assert_eq!(faq.status(), 200);
    server.stop().await;
}

/// Sample-KB ids the socket tests expect (the retrieval test covers many more questions).
const ANSWER_DELIVERY_TIME: &str = "how-long-does-delivery-take";
const ARTICLE_QUESTION: &str = "how should I clean and season my cast iron skillet";
const ARTICLE_ANSWER: &str = "caring-for-cast-iron";
