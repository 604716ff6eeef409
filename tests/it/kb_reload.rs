//! Editors change files while visitors chat: the next answer changes without a reconnect,
//! and a broken file never takes answers down.

use std::time::Duration;

use crate::harness::{Client, TestServer, copy_dir, repo_path, test_config};

/// Asks until the answer's source id is `want` (None = fallback), or fails after a deadline.
async fn ask_until(client: &mut Client, question: &str, want: Option<&str>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, reply) = client.ask(question).await;
        if reply["source"]["id"].as_str() == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "answer never became {want:?}; last: {reply}");
        // Slower than the socket's rate limit (30 frames per 10 s).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

const NEW_FAQ: &str = r#"
[[entry]]
id = "bring-your-dog"
lang = "en"
question = "Can I bring my dog to the warehouse open day?"
also = ["are dogs allowed at the open day"]
answer = "Yes, well-behaved dogs on a lead are welcome at our warehouse open day."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_changes_the_next_answer_and_a_broken_file_changes_nothing() {
    let temp = tempfile::tempdir().expect("temp");
    let kb_dir = temp.path().join("kb");
    copy_dir(&repo_path("knowledge-base"), &kb_dir);
    let mut config = test_config(&temp.path().join("data"));
    config.kb_dir.clone_from(&kb_dir);
    crate::harness::bot_only(&mut config);
    let server = TestServer::start_with(config).await;
    let mut client = server.client().await;
    client.start_conversation().await;
    let question = "are dogs allowed at the warehouse open day?";
    ask_until(&mut client, question, None).await;

    // An editor adds an FAQ entry: the same connection gets the new answer.
    std::fs::write(kb_dir.join("faq/open-day.toml"), NEW_FAQ).expect("write faq");
    ask_until(&mut client, question, Some("bring-your-dog")).await;

    // A broken file (invalid TOML) plus an edit elsewhere: nothing changes, answers go on.
    std::fs::write(kb_dir.join("faq/broken.toml"), "[[entry]\nid = ").expect("write broken");
    std::fs::write(kb_dir.join("faq/open-day.toml"), NEW_FAQ.replace("bring-your-dog", "dogs-renamed"))
        .expect("edit faq");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, reply) = client.ask(question).await;
    assert_eq!(reply["source"]["id"], "bring-your-dog", "the last good index keeps serving: {reply}");
    let (_, reply) = client.ask("how long does delivery take?").await;
    assert_eq!(reply["source"]["id"], "how-long-does-delivery-take");

    // Fixing the file lets the pending edit through.
    std::fs::remove_file(kb_dir.join("faq/broken.toml")).expect("remove broken");
    ask_until(&mut client, question, Some("dogs-renamed")).await;
    server.stop().await;
}
