//! Daily progress updates, driven with a chosen clock through the real dispatcher, store
//! and conversation hub (no sockets needed: the messages are stored where a returning
//! visitor will see them).

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use supportbot::conversations::Hub;
use supportbot::engine::AnswerPolicy;
use supportbot::flows::BotScript;
use supportbot::ids::Seq;
use supportbot::notices::{DailyUpdates, Dispatcher};
use supportbot::orders::EmbeddedOrders;
use supportbot::protocol::Hello;
use supportbot::store::{SqliteStore, Store};

use crate::harness::repo_path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_on_their_way_get_one_update_a_day() {
    let temp = tempfile::tempdir().expect("temp");
    let sqlite = SqliteStore::open(&temp.path().join("db.sqlite")).await.expect("store");
    let orders = EmbeddedOrders::new(sqlite.pool().clone());
    supportbot::orders::import::seed_if_empty(&orders, &repo_path("orders/sample-orders.csv")).await.expect("seed");
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let script = Arc::new(BotScript::load(&repo_path("flows")).expect("flows"));
    let kb = Arc::new(arc_swap::ArcSwapOption::empty());
    let clock: supportbot::clock::SharedClock = Arc::new(supportbot::clock::SystemClock);
    let hub = Hub::new(Arc::clone(&store), kb, script, AnswerPolicy::default(), None, 100, clock);
    let hello = Hello { token: None, last_seq: None, locale: Some("en-GB".into()), page_url: None, identity: None };
    let opened = hub.create(&hello);
    let id = opened.record.id;
    hub.attach(id).persist().await.expect("stored");
    let day1 = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).single().expect("date");
    // Linked yesterday: FH-100234 is shipped; FH-100238 is delivered (no update).
    store.link_order("FH-100234", id, day1 - Duration::days(1)).await.expect("link");
    store.link_order("FH-100238", id, day1 - Duration::days(1)).await.expect("link");
    let dispatcher = Dispatcher {
        events: orders.clone(),
        source: Arc::new(orders),
        hub,
        store: Arc::clone(&store),
        webhook: None,
        wake: Arc::default(),
        daily: Some(DailyUpdates { hour_utc: 9 }),
    };
    let early = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).single().expect("date");
    assert_eq!(dispatcher.send_daily_updates(early).await.expect("run"), 0, "not before the configured hour");
    assert_eq!(dispatcher.send_daily_updates(day1).await.expect("run"), 1, "one order on its way");
    assert_eq!(dispatcher.send_daily_updates(day1 + Duration::hours(3)).await.expect("run"), 0, "once a day");
    assert_eq!(dispatcher.send_daily_updates(day1 + Duration::days(1)).await.expect("run"), 1, "and again tomorrow");
    let messages = store.messages_after(id, Seq(0), 100, false).await.expect("messages");
    let updates: Vec<&str> =
        messages.iter().map(|m| m.text.as_str()).filter(|t| t.contains("Today's update on your order")).collect();
    assert_eq!(updates.len(), 2, "{messages:#?}");
    assert!(updates[0].contains("FH-100234") && updates[0].contains("DPD"), "{}", updates[0]);
}
