use chrono::{NaiveDate, TimeZone as _, Utc};

use super::http::{order_from_json, parse_header_line};
use super::import::{parse_csv, parse_items};
use super::*;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn sample() -> Order {
    Order {
        id: "FH-100234".into(),
        status: OrderStatus::Shipped,
        email: "Priya.Shah@Example.co.uk".into(),
        postcode: "sw1a 1aa".into(),
        customer_name: Some("Priya Shah".into()),
        carrier: Some("DPD".into()),
        tracking_number: None,
        tracking_url: None,
        placed_at: day(2026, 3, 2),
        expected_delivery: Some(day(2026, 3, 5)),
        delivered_at: None,
        delay_reason: None,
        items: vec![OrderItem { name: "Apron".into(), quantity: 1 }],
        updated_at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().expect("time"),
    }
}

#[test]
fn proof_is_the_email_or_the_postcode_loosely_written() {
    let order = sample();
    for proof in ["priya.shah@example.co.uk", "  PRIYA.SHAH@EXAMPLE.CO.UK ", "SW1A 1AA", "sw1a1aa", " Sw1A  1aA\t"] {
        assert!(order.matches_proof(proof), "{proof:?} should match");
    }
    for proof in ["", "   ", "priya.shah@example.com", "SW1A 1AB", "SW1A", "FH-100234", "Priya Shah"] {
        assert!(!order.matches_proof(proof), "{proof:?} must not match");
    }
    let blank = Order { postcode: String::new(), email: String::new(), ..sample() };
    assert!(!blank.matches_proof(""), "an empty proof never matches, even an empty field");
}

#[test]
fn statuses_use_snake_case_names_everywhere() {
    for status in OrderStatus::ALL {
        let json = serde_json::to_string(&status).expect("serialize");
        assert_eq!(json, format!("\"{}\"", status.as_str()));
        assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(OrderStatus::parse(" Out_For_Delivery "), Some(OrderStatus::OutForDelivery));
    assert_eq!(OrderStatus::parse("shiped"), None);
}

#[test]
fn url_templates_need_an_id_and_encode_it() {
    let t = UrlTemplate::parse("https://shop.example/api/orders/{id}?expand=items").expect("valid");
    assert_eq!(t.url_for("FH-100234"), "https://shop.example/api/orders/FH-100234?expand=items");
    assert_eq!(t.url_for("a/b c?d#e"), "https://shop.example/api/orders/a%2Fb%20c%3Fd%23e?expand=items");
    assert_eq!(t.url_for("zażółć"), "https://shop.example/api/orders/za%C5%BC%C3%B3%C5%82%C4%87?expand=items");
    assert!(UrlTemplate::parse("https://shop.example/api/orders/").expect_err("no id").contains("{id}"));
    assert!(UrlTemplate::parse("ftp://shop.example/{id}").is_err());
    assert!(UrlTemplate::parse("/api/orders/{id}").is_err(), "relative");
}

#[test]
fn auth_header_lines_are_split_and_kept_secret() {
    let (name, value) = parse_header_line("Authorization: Bearer xyz").expect("valid");
    assert_eq!((name.as_str(), value.to_str().ok()), ("authorization", Some("Bearer xyz")));
    assert!(value.is_sensitive());
    assert!(parse_header_line("Bearer xyz").is_err());
    assert!(parse_header_line("Bad Name: x").is_err());
    let config = HttpOrdersConfig {
        auth_header: Some((name, value)),
        ..HttpOrdersConfig::new(UrlTemplate::parse("https://s.example/{id}").expect("valid"))
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("xyz") && shown.contains("redacted"), "{shown}");
}

#[test]
fn worst_case_adds_every_timeout_and_backoff() {
    let config = HttpOrdersConfig::new(UrlTemplate::parse("https://s.example/{id}").expect("valid"));
    // 3 attempts of 3 s, back-offs of at most 200 + 400 ms.
    assert_eq!(config.worst_case(), std::time::Duration::from_millis(9_600));
}

#[test]
fn items_are_read_from_one_cell() {
    let items = parse_items("2x Cast iron skillet; 1 x Apron;Linen tea towel ; 3 × Mug").expect("valid");
    let got: Vec<_> = items.iter().map(|i| (i.quantity, i.name.as_str())).collect();
    assert_eq!(got, [(2, "Cast iron skillet"), (1, "Apron"), (1, "Linen tea towel"), (3, "Mug")]);
    assert_eq!(parse_items("").expect("empty"), []);
    assert_eq!(parse_items("2xl shirt").expect("valid")[0].name, "2xl shirt");
    assert!(parse_items("0x Apron").expect_err("zero").contains("quantity"));
    assert!(parse_items("2x ").is_err());
    assert!(parse_items("99999999999x Mug").is_err());
}

const HEADER: &str = "id,status,email,postcode,customer_name,carrier,tracking_number,tracking_url,placed_at,\
                      expected_delivery,delivered_at,delay_reason,items\n";

#[test]
fn csv_rows_are_checked_one_by_one_with_line_numbers() {
    let csv = format!(
        "{HEADER}\
         FH-1,shipped,a@example.com,SW1A 1AA,Ann,DPD,123,https://track.example/123,2026-03-02,2026-03-05,,,2x Mug\n\
         FH-2,shiped,b@example.com,M1 1AE,,,,,2026-03-02,,,,\n\
         FH-3,placed,not-an-email,M1 1AE,,,,,2026-13-02,,,,\n\
         FH-4,placed,c@example.com,M1 1AE,,,,javascript:alert(1),2026-03-02,2026-03-01,,,0x Mug\n\
         \"FH-5\",delayed,\"d@example.com\",\"EH1 1YZ\",\"Dee, Jr\",,,,2026-03-02,2026-03-09,,\"Storm, roads closed\",1x Apron\n\
         FH-1,placed,a@example.com,SW1A 1AA,,,,,2026-03-02,,,,\n\
         FH 6,placed,e@example.com,LS1 1UR,,,,,2026-03-02,,,,\n\
         FH-7,placed,e@example.com\n"
    );
    let parsed = parse_csv(csv.as_bytes(), Utc::now()).expect("header is fine");
    let ids: Vec<_> = parsed.orders.iter().map(|(line, o)| (*line, o.id.as_str())).collect();
    assert_eq!(ids, [(2, "FH-1"), (6, "FH-5")]);
    let delayed = &parsed.orders[1].1;
    assert_eq!(delayed.customer_name.as_deref(), Some("Dee, Jr"));
    assert_eq!(delayed.delay_reason.as_deref(), Some("Storm, roads closed"));
    let errors: Vec<_> = parsed.errors.iter().map(ToString::to_string).collect();
    let expect = [
        (3, "status: \"shiped\" is not one of placed, processing"),
        (4, "placed_at: \"2026-13-02\" is not a date"),
        (5, "items: \"0x Mug\""),
        (7, "order FH-1 is already on line 2"),
        (8, "id: may only contain"),
        (9, "has 3 cells, the header has 13"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for ((line, needle), (error, text)) in expect.iter().zip(parsed.errors.iter().zip(&errors)) {
        assert_eq!(error.line, *line, "{text}");
        assert!(text.contains(needle), "line {line}: {text:?} should contain {needle:?}");
    }
    assert!(errors[1].contains("email: must be an email address"), "every problem of a row: {}", errors[1]);
}

#[test]
fn all_field_problems_of_a_row_are_reported_together() {
    let csv = format!("{HEADER}FH-4,placed,c@,M1 1AE,,,,javascript:alert(1),2026-03-02,2026-03-01,,,1x Mug\n");
    let parsed = parse_csv(csv.as_bytes(), Utc::now()).expect("header");
    let text = parsed.errors[0].to_string();
    for needle in ["line 2 (FH-4)", "email:", "tracking_url:", "expected_delivery: must not be before placed_at"] {
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
}

#[test]
fn csv_headers_must_be_known_and_complete() {
    let err = parse_csv("id,status,email,postcode\n".as_bytes(), Utc::now()).expect_err("missing placed_at");
    assert!(err.to_string().contains("placed_at"), "{err}");
    let err = parse_csv("id,status,email,postcode,placed_at,colour\n".as_bytes(), Utc::now()).expect_err("unknown");
    assert!(err.to_string().contains("\"colour\""), "{err}");
    let parsed = parse_csv(
        "\u{feff}ID,Status,Email,Postcode,Placed_At\nFH-9,placed,x@example.com,B1 1AA,2026-04-01\n".as_bytes(),
        Utc::now(),
    )
    .expect("BOM and case tolerated");
    assert_eq!(parsed.orders.len(), 1);
    assert!(parsed.orders[0].1.items.is_empty());
}

#[test]
fn shop_api_json_maps_to_an_order() {
    let body = r#"{"id":"fh-100234","status":"in_transit","email":"a@example.com","postcode":"SW1A 1AA",
        "placed_at":"2026-03-02T10:15:00+00:00","expected_delivery":"2026-03-05","items":[{"name":"Mug","quantity":2}],
        "loyalty_points": 40}"#;
    let order = order_from_json(body.as_bytes(), "FH-100234").expect("valid");
    assert_eq!(order.id, "fh-100234", "the shop's spelling wins");
    assert_eq!(order.status, OrderStatus::InTransit);
    assert_eq!(order.placed_at, day(2026, 3, 2));
    let wrong = order_from_json(body.replace("fh-100234", "FH-999").as_bytes(), "FH-100234");
    assert!(matches!(wrong, Err(OrderSourceError::Invalid(m)) if m.contains("FH-999")));
    let bad = order_from_json(
        br#"{"status":"lost","email":"a@example.com","postcode":"X","placed_at":"2026-03-02"}"#,
        "FH-1",
    );
    assert!(matches!(bad, Err(OrderSourceError::Invalid(m)) if m.contains("status")), "names the field");
    assert!(matches!(order_from_json(b"[]", "FH-1"), Err(OrderSourceError::Invalid(_))));
    assert!(matches!(order_from_json(b"<html>", "FH-1"), Err(OrderSourceError::Invalid(_))));
}

#[test]
fn api_bodies_are_validated_field_by_field() {
    let input: OrderInput = serde_json::from_str(
        r#"{"id":"FH-2","status":"placed","email":"x","postcode":"SW1A 1AA!","placed_at":"2026-03-02",
            "items":[{"name":" ","quantity":0}],"tracking_url":"javascript:alert(1)","customer_name":"  "}"#,
    )
    .expect("shape is fine");
    let fields: Vec<_> =
        input.into_order("FH-1", Utc::now()).expect_err("invalid").into_iter().map(|f| f.field).collect();
    assert_eq!(fields, ["id", "email", "postcode", "tracking_url", "items[0].name", "items[0].quantity"]);
}

async fn temp_orders() -> (tempfile::TempDir, crate::store::SqliteStore, EmbeddedOrders) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::store::SqliteStore::open(&dir.path().join("t.db")).await.expect("open");
    let orders = EmbeddedOrders::new(store.pool().clone());
    (dir, store, orders)
}

fn event(event_id: Option<&str>, order_id: &str, kind: OrderStatus) -> NewOrderEvent {
    NewOrderEvent {
        event_id: event_id.map(Into::into),
        order_id: order_id.into(),
        kind,
        reason: None,
        new_expected_delivery: None,
        note: None,
        at: Utc.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).single().expect("time"),
        payload: serde_json::json!({}),
    }
}

#[tokio::test]
async fn embedded_orders_round_trip_and_ignore_case() {
    let (_dir, _store, orders) = temp_orders().await;
    assert_eq!(orders.get("FH-100234").await, Ok(None));
    assert!(orders.upsert(&sample()).await.expect("insert"), "new");
    assert_eq!(orders.get(" fh-100234 ").await, Ok(Some(sample())));
    let changed = Order { status: OrderStatus::Delivered, delivered_at: Some(day(2026, 3, 4)), ..sample() };
    assert!(!orders.upsert(&changed).await.expect("update"), "replaced");
    assert_eq!(orders.get("FH-100234").await, Ok(Some(changed)));
    assert_eq!(orders.count().await.expect("count"), 1);
}

#[tokio::test]
async fn events_are_recorded_once_applied_and_dispatched_in_order() {
    let (_dir, _store, orders) = temp_orders().await;
    orders.upsert(&sample()).await.expect("insert");
    let delay = NewOrderEvent {
        reason: Some("Storm in the Midlands".into()),
        new_expected_delivery: Some(day(2026, 3, 9)),
        ..event(Some("shop-1"), "fh-100234", OrderStatus::Delayed)
    };
    let first = orders.record_event(delay.clone()).await.expect("record");
    assert!(first.new && first.applied);
    let order = orders.get("FH-100234").await.expect("get").expect("exists");
    assert_eq!(order.status, OrderStatus::Delayed);
    assert_eq!(order.delay_reason.as_deref(), Some("Storm in the Midlands"));
    assert_eq!(order.expected_delivery, Some(day(2026, 3, 9)));

    let again = orders.record_event(NewOrderEvent { reason: Some("different".into()), ..delay }).await.expect("repeat");
    assert!(!again.new && !again.applied);
    assert_eq!(again.event, first.event, "the original comes back");

    let delivered = orders.record_event(event(None, "FH-100234", OrderStatus::Delivered)).await.expect("record");
    assert!(delivered.new && delivered.event.event_id.starts_with("gen-"));
    let order = orders.get("FH-100234").await.expect("get").expect("exists");
    assert_eq!(
        (order.status, order.delay_reason, order.delivered_at),
        (OrderStatus::Delivered, None, Some(day(2026, 3, 4)))
    );

    let unknown = orders.record_event(event(Some("x-9"), "FH-404", OrderStatus::Shipped)).await.expect("record");
    assert!(unknown.new && !unknown.applied, "stored without an order row");

    let all = orders.events_after(OrderEventId(0), 100).await.expect("list");
    assert_eq!(all.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>()[0], "shop-1");
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(orders.events_after(all[0].id, 1).await.expect("page")[0].id, all[1].id);

    let now = Utc::now();
    assert!(orders.mark_event_processed(all[0].id, now).await.expect("mark"));
    assert!(!orders.mark_event_processed(all[0].id, now).await.expect("mark"), "only once");
    assert!(!orders.mark_event_processed(OrderEventId(999), now).await.expect("mark"));
    let pending = orders.unprocessed_events(10).await.expect("pending");
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [all[1].id, all[2].id]);
    assert_eq!(orders.events_of("fh-100234").await.expect("of").len(), 2);
}
