//! Visitors in other languages, through real sockets: the answer comes from their
//! language's articles (Chinese across scripts), and the bot speaks their language.

use supportbot::kb::chinese::to_script;

use crate::harness::{TestServer, copy_dir, repo_path, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simplified_chinese_question_finds_the_traditional_article_and_reads_simplified() {
    let server = TestServer::start().await;
    let mut visitor = server.client().await;
    visitor.start_conversation_in("zh-CN").await;
    let (_, reply) = visitor.ask("退货要自己付运费吗？").await;
    assert_eq!(reply["source"]["lang"], "zh-Hant", "the Chinese KB is written in Traditional: {reply}");
    let text = reply["text"].as_str().expect("text");
    assert_eq!(text, to_script(text, "zh-Hans"), "shown in the visitor's script: {text}");
    assert_ne!(text, to_script(text, "zh-Hant"), "and it really was converted: {text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_follows_the_language_the_visitor_writes_in() {
    let server = TestServer::start().await;
    let mut visitor = server.client().await;
    visitor.start_conversation_in("en-GB").await;
    let (_, reply) = visitor.ask("Сколько дней у меня есть, чтобы вернуть товар?").await;
    assert_eq!(reply["source"]["lang"], "ru", "{reply}");
    let (_, reply) = visitor.ask("Спасибо!").await;
    let text = reply["text"].as_str().expect("text");
    assert!(text.chars().any(|c| matches!(c, 'а'..='я')), "small talk in Russian: {text}");
    let (_, reply) = visitor.ask("ile kosztuje dostawa do Polski?").await;
    assert_eq!(reply["source"]["lang"], "pl", "{reply}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_in_the_visitors_language_falls_back_to_english_and_says_so() {
    let temp = tempfile::tempdir().expect("temp");
    let kb_dir = temp.path().join("kb");
    copy_dir(&repo_path("knowledge-base"), &kb_dir);
    std::fs::write(
        kb_dir.join("faq/gnomeworks.toml"),
        "[[entry]]\nid = \"gnomeworks-3000\"\nlang = \"en\"\nquestion = \"Do you sell the Gnomeworks 3000 garden gnome?\"\nanswer = \"Yes, the Gnomeworks 3000 is back in stock.\"\n",
    )
    .expect("write English-only entry");
    let mut config = test_config(&temp.path().join("data"));
    config.kb_dir = kb_dir;
    let server = TestServer::start_with(config).await;
    let mut visitor = server.client().await;
    visitor.start_conversation_in("pl-PL").await;
    let (_, reply) = visitor.ask("Czy macie Gnomeworks 3000?").await;
    assert_eq!(reply["source"]["id"], "gnomeworks-3000", "{reply}");
    assert_eq!(reply["source"]["lang"], "en");
    let text = reply["text"].as_str().expect("text");
    assert!(text.ends_with("Yes, the Gnomeworks 3000 is back in stock."), "{text}");
    assert!(text.len() > "Yes, the Gnomeworks 3000 is back in stock.".len() + 20, "a note in Polish first: {text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_keeps_its_language_across_a_restart() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let mut visitor = server.client().await;
    let welcome = visitor.start_conversation_in("en-GB").await;
    assert_eq!(welcome["lang"], "en");
    let token = welcome["token"].as_str().expect("token").to_owned();
    let (_, reply) = visitor.ask("Сколько дней у меня есть, чтобы вернуть товар?").await;
    assert_eq!(reply["source"]["lang"], "ru", "{reply}");
    let last_seq = reply["seq"].as_i64();
    visitor.close().await;
    let _temp = server.stop().await;

    // Same data directory, a new process: the browser still says en-GB, the stored
    // conversation says Russian, and the stored language wins.
    let server = TestServer::start_with(test_config(&data_dir)).await;
    let mut visitor = server.client().await;
    let welcome = visitor.hello_in(Some(&token), last_seq, "en-GB").await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["lang"], "ru", "the language was stored with the conversation: {welcome}");
    let (_, reply) = visitor.ask("ok").await;
    let text = reply["text"].as_str().expect("text");
    assert!(text.chars().any(|c| matches!(c, 'а'..='я' | 'А'..='Я')), "a short reply keeps Russian: {text}");
    server.stop().await;
}
