//! Orders: the back-office API (auth, validation, events) on the embedded source, the shop's
//! API as the source (against a small real HTTP server on loopback), and the CSV import.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use supportbot::auth::{ApiToken, Role, hash_token};
use supportbot::config::{Config, OrderSourceConfig};
use supportbot::orders::{HttpOrders, HttpOrdersConfig, OrderSource, OrderSourceError, OrderStatus, UrlTemplate};

use crate::harness::{TestServer, repo_path, test_config};

const ORDERS_TOKEN: &str = "orders-secret-token";
const EDITOR_TOKEN: &str = "editor-secret-token";

fn with_tokens(mut config: Config) -> Config {
    config.tokens = vec![
        ApiToken { name: "shop".into(), sha256: hash_token(ORDERS_TOKEN), roles: vec![Role::Orders] },
        ApiToken { name: "editors".into(), sha256: hash_token(EDITOR_TOKEN), roles: vec![Role::Editor] },
    ];
    config
}

async fn start(config: Config) -> TestServer {
    TestServer::start_with(with_tokens(config)).await
}

struct Api<'s> {
    server: &'s TestServer,
    http: reqwest::Client,
}

impl<'s> Api<'s> {
    fn new(server: &'s TestServer) -> Self {
        Self { server, http: reqwest::Client::new() }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, body) = crate::harness::api_call(&self.http, self.server.url(path), method, token, body).await;
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(ORDERS_TOKEN), None).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(ORDERS_TOKEN), Some(body)).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(ORDERS_TOKEN), Some(body)).await
    }
}

fn new_order() -> Value {
    json!({
        "status": "processing",
        "email": "Kate.Doyle@example.co.uk",
        "postcode": "YO1 7HH",
        "customer_name": "Kate Doyle",
        "placed_at": "2026-11-22",
        "expected_delivery": "2026-11-26",
        "items": [{"name": "Enamel pie dish", "quantity": 2}]
    })
}

fn field_names(body: &Value) -> Vec<String> {
    body["fields"]
        .as_array()
        .map_or_else(Vec::new, |f| f.iter().filter_map(|x| x["field"].as_str().map(String::from)).collect())
}

#[tokio::test]
async fn orders_are_pushed_read_and_guarded() {
    let temp = tempfile::tempdir().expect("temp");
    let server = start(test_config(temp.path())).await;
    let api = Api::new(&server);

    let (status, body) = api.send(reqwest::Method::GET, "/api/orders/FH-100234", None, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
    let (status, _) = api.send(reqwest::Method::GET, "/api/orders/FH-100234", Some("wrong"), None).await;
    assert_eq!(status, 401);
    let (status, body) = api.send(reqwest::Method::GET, "/api/orders/FH-100234", Some(EDITOR_TOKEN), None).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, _) =
        api.send(reqwest::Method::PUT, "/api/orders/FH-900001", Some(EDITOR_TOKEN), Some(new_order())).await;
    assert_eq!(status, 403);

    // The sample orders were loaded into the empty table on the first start.
    let (status, sample) = api.get("/api/orders/fh-100234").await;
    assert_eq!(status, 200, "{sample}");
    assert_eq!((sample["id"].as_str(), sample["status"].as_str()), (Some("FH-100234"), Some("shipped")));
    assert!(sample["tracking_url"].as_str().is_some_and(|u| u.starts_with("https://track.dpd.co.uk/")));

    let (status, created) = api.put("/api/orders/FH-900001", new_order()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["email"], "Kate.Doyle@example.co.uk");
    assert_eq!(created["items"][0]["quantity"], 2);
    let mut shipped = new_order();
    shipped["status"] = json!("shipped");
    shipped["id"] = json!("FH-900001");
    shipped["tracking_url"] = json!("https://track.dpd.co.uk/parcels/1");
    let (status, replaced) = api.put("/api/orders/FH-900001", shipped).await;
    assert_eq!((status, replaced["status"].as_str()), (200, Some("shipped")));
    let (status, read) = api.get("/api/orders/FH-900001").await;
    assert_eq!((status, &read), (200, &replaced));

    let mut bad = new_order();
    bad["email"] = json!("kate at example");
    bad["items"] = json!([{"name": "Mug", "quantity": 0}]);
    bad["tracking_url"] = json!("javascript:alert(1)");
    let (status, body) = api.put("/api/orders/FH-900002", bad).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("validation_failed")), "{body}");
    assert_eq!(field_names(&body), ["email", "tracking_url", "items[0].quantity"]);
    let mut other_id = new_order();
    other_id["id"] = json!("FH-1");
    let (status, body) = api.put("/api/orders/FH-900002", other_id).await;
    assert_eq!((status, field_names(&body)), (422, vec!["id".to_owned()]));
    let mut wrong_status = new_order();
    wrong_status["status"] = json!("lost");
    let (status, body) = api.put("/api/orders/FH-900002", wrong_status).await;
    assert_eq!((status, field_names(&body)), (422, vec!["status".to_owned()]));
    let (status, body) = api.put("/api/orders/FH%20900002", new_order()).await;
    assert_eq!((status, field_names(&body)), (422, vec!["id".to_owned()]));
    let (status, _) = api.get("/api/orders/FH-900002").await;
    assert_eq!(status, 404, "nothing invalid was stored");
    server.stop().await;
}

#[tokio::test]
async fn order_events_are_recorded_once_and_change_the_order() {
    let temp = tempfile::tempdir().expect("temp");
    let server = start(test_config(temp.path())).await;
    let api = Api::new(&server);
    let (status, _) = api.put("/api/orders/FH-900010", new_order()).await;
    assert_eq!(status, 201);

    let delay = json!({"event_id": "wms-77", "kind": "delayed", "reason": "Snow at the depot",
                       "new_expected_delivery": "2026-11-30", "note": "carrier ticket 4411"});
    let (status, first) = api.post("/api/orders/FH-900010/events", delay.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["new"].as_bool(), first["applied"].as_bool()), (Some(true), Some(true)));
    assert_eq!(first["event"]["note"], "carrier ticket 4411");
    let (status, again) = api.post("/api/orders/FH-900010/events", delay).await;
    assert_eq!((status, again["new"].as_bool()), (200, Some(false)), "a retry is a no-op");
    // The same event comes back (the notice dispatcher may have processed it meanwhile).
    let without_processing = |event: &serde_json::Value| {
        let mut event = event.clone();
        event.as_object_mut().map(|o| o.remove("processed_at"));
        event
    };
    assert_eq!(
        without_processing(&again["event"]),
        without_processing(&first["event"]),
        "the original event comes back"
    );
    let (_, order) = api.get("/api/orders/FH-900010").await;
    assert_eq!(
        (order["status"].as_str(), order["delay_reason"].as_str(), order["expected_delivery"].as_str()),
        (Some("delayed"), Some("Snow at the depot"), Some("2026-11-30"))
    );

    let (status, delivered) = api.post("/api/orders/fh-900010/events", json!({"status": "delivered"})).await;
    assert_eq!(status, 201, "`status` works as the key too: {delivered}");
    assert_eq!(delivered["event"]["order_id"], "FH-900010", "stored under the order's own number");
    let (_, order) = api.get("/api/orders/FH-900010").await;
    assert_eq!((order["status"].as_str(), &order["delay_reason"]), (Some("delivered"), &Value::Null));

    let (status, body) =
        api.post("/api/orders/FH-100234/events", json!({"event_id": "wms-77", "kind": "shipped"})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("event_id_reused")));
    let (status, _) = api.post("/api/orders/FH-404/events", json!({"kind": "shipped"})).await;
    assert_eq!(status, 404);
    let (status, body) = api.post("/api/orders/FH-900010/events", json!({"kind": "teleported"})).await;
    assert_eq!((status, field_names(&body)), (422, vec!["kind".to_owned()]));
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/orders/FH-900010/events",
            Some(EDITOR_TOKEN),
            Some(json!({"kind": "shipped"})),
        )
        .await;
    assert_eq!(status, 403);
    server.stop().await;
}

/// A stand-in for the shop's order API.
#[derive(Clone, Copy)]
enum Shop {
    Healthy,
    Failing(usize),
    Slow(Duration),
    Refusing,
    Garbage,
}

struct MockShop {
    behaviour: Shop,
    hits: AtomicUsize,
    auth: std::sync::Mutex<Option<String>>,
}

fn shop_order(id: &str) -> Value {
    json!({
        "id": id, "status": "out_for_delivery", "email": "sam@example.com", "postcode": "BN1 1AA",
        "placed_at": "2026-11-20T09:30:00Z", "expected_delivery": "2026-11-23",
        "items": [{"name": "Wool throw", "quantity": 1}], "warehouse": "Leeds-2"
    })
}

async fn shop_handler(State(shop): State<Arc<MockShop>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let hit = shop.hits.fetch_add(1, Ordering::SeqCst);
    *shop.auth.lock().expect("lock") = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    if !id.starts_with("FH-") {
        return StatusCode::NOT_FOUND.into_response();
    }
    match shop.behaviour {
        Shop::Healthy => axum::Json(shop_order(&id)).into_response(),
        Shop::Failing(n) if hit < n => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Shop::Failing(_) => axum::Json(shop_order(&id)).into_response(),
        Shop::Slow(pause) => {
            tokio::time::sleep(pause).await;
            axum::Json(shop_order(&id)).into_response()
        }
        Shop::Refusing => StatusCode::UNAUTHORIZED.into_response(),
        Shop::Garbage => "<html>maintenance</html>".into_response(),
    }
}

async fn mock_shop(behaviour: Shop) -> (SocketAddr, Arc<MockShop>) {
    let shop = Arc::new(MockShop { behaviour, hits: AtomicUsize::new(0), auth: std::sync::Mutex::new(None) });
    let app =
        axum::Router::new().route("/api/orders/{id}", axum::routing::get(shop_handler)).with_state(Arc::clone(&shop));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, shop)
}

fn http_config(addr: SocketAddr, timeout_ms: u64) -> HttpOrdersConfig {
    let url = UrlTemplate::parse(&format!("http://{addr}/api/orders/{{id}}")).expect("template");
    let mut config = HttpOrdersConfig::new(url);
    config.timeout = Duration::from_millis(timeout_ms);
    config.auth_header =
        Some(supportbot::orders::http::parse_header_line("Authorization: Bearer shop-key").expect("header"));
    config
}

#[tokio::test]
async fn the_shops_api_as_source_retries_then_gives_up_in_time() {
    // (a) healthy: the order, with the auth header sent and unknown fields ignored.
    let (addr, shop) = mock_shop(Shop::Healthy).await;
    let source = HttpOrders::new(http_config(addr, 1000)).expect("client");
    let order = source.get("FH-100500").await.expect("answer").expect("found");
    assert_eq!((order.id.as_str(), order.status), ("FH-100500", OrderStatus::OutForDelivery));
    assert!(order.matches_proof("bn11aa"));
    assert_eq!(shop.auth.lock().expect("lock").as_deref(), Some("Bearer shop-key"));

    // (b) unknown order: 404 is an answer, not a failure.
    assert_eq!(source.get("XX-1").await, Ok(None));
    assert_eq!(shop.hits.load(Ordering::SeqCst), 2, "no retry after a 404");
    assert_eq!(source.get("  ").await, Ok(None), "no number, no request");
    assert_eq!(shop.hits.load(Ordering::SeqCst), 2);

    // (c) 500 twice, then 200: the retries succeed.
    let (addr, shop) = mock_shop(Shop::Failing(2)).await;
    let source = HttpOrders::new(http_config(addr, 1000)).expect("client");
    assert!(source.get("FH-100501").await.expect("third attempt works").is_some());
    assert_eq!(shop.hits.load(Ordering::SeqCst), 3);

    // A refused request (401) or a body that is not an order is the integration's fault:
    // Invalid, at once.
    let (addr, shop) = mock_shop(Shop::Refusing).await;
    let source = HttpOrders::new(http_config(addr, 1000)).expect("client");
    assert!(matches!(source.get("FH-1").await, Err(OrderSourceError::Invalid(m)) if m.contains("401")));
    assert_eq!(shop.hits.load(Ordering::SeqCst), 1);
    let (addr, _) = mock_shop(Shop::Garbage).await;
    let source = HttpOrders::new(http_config(addr, 1000)).expect("client");
    assert!(matches!(source.get("FH-1").await, Err(OrderSourceError::Invalid(_))));

    // (d) slower than the timeout: every attempt is cut off, then Unavailable.
    let (addr, shop) = mock_shop(Shop::Slow(Duration::from_secs(5))).await;
    let config = http_config(addr, 300);
    let bound = config.worst_case();
    let source = HttpOrders::new(config).expect("client");
    let started = Instant::now();
    let outcome = source.get("FH-100502").await;
    let took = started.elapsed();
    assert!(matches!(outcome, Err(OrderSourceError::Unavailable(_))), "{outcome:?}");
    assert_eq!(shop.hits.load(Ordering::SeqCst), 3, "1 attempt + 2 retries");
    assert!(took >= Duration::from_millis(3 * 300), "each attempt waited its timeout: {took:?}");
    assert!(took <= bound + Duration::from_millis(400), "gave up in {took:?}, bound {bound:?}");

    // (e) nothing listening: connection refused, retried, then Unavailable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let config = http_config(closed, 300);
    let bound = config.worst_case();
    let source = HttpOrders::new(config).expect("client");
    let started = Instant::now();
    let outcome = source.get("FH-100503").await;
    let took = started.elapsed();
    assert!(matches!(&outcome, Err(OrderSourceError::Unavailable(m)) if m.contains("3 time")), "{outcome:?}");
    assert!(took >= Duration::from_millis(300), "backed off between attempts (≥ half of 200 + 400 ms): {took:?}");
    assert!(took <= bound + Duration::from_millis(400), "gave up in {took:?}, bound {bound:?}");
}

#[tokio::test]
async fn with_the_shops_api_as_source_orders_are_read_there_and_events_kept_here() {
    let (addr, _shop) = mock_shop(Shop::Healthy).await;
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.orders.source = OrderSourceConfig::Http(http_config(addr, 1000));
    let server = start(config).await;
    let api = Api::new(&server);

    let (status, order) = api.get("/api/orders/FH-100500").await;
    assert_eq!((status, order["status"].as_str()), (200, Some("out_for_delivery")), "{order}");
    let (status, _) = api.get("/api/orders/FH-100234").await;
    assert_eq!(status, 200, "served by the shop, not the (unloaded) samples");
    let (status, body) = api.put("/api/orders/FH-100500", new_order()).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("orders_external")));

    let (status, body) =
        api.post("/api/orders/FH-100500/events", json!({"event_id": "e-1", "kind": "delivered"})).await;
    assert_eq!((status, body["applied"].as_bool()), (201, Some(false)), "stored, no row to change: {body}");
    let (status, _) = api.post("/api/orders/FH-100500/events", json!({"event_id": "e-1", "kind": "delivered"})).await;
    assert_eq!(status, 200);
    let (status, _) = api.post("/api/orders/ZZ-1/events", json!({"kind": "delivered"})).await;
    assert_eq!(status, 404, "the shop does not know it");
    server.stop().await;

    // The shop's API down: lookups say so (503) instead of "no such order".
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    let mut http = http_config(closed, 200);
    http.retries = 1;
    config.orders.source = OrderSourceConfig::Http(http);
    let server = start(config).await;
    let (status, body) = Api::new(&server).get("/api/orders/FH-100500").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("order_source_unavailable")), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn csv_import_reports_bad_rows_and_imports_the_rest() {
    let temp = tempfile::tempdir().expect("temp");
    let csv = temp.path().join("export.csv");
    std::fs::write(
        &csv,
        "id,status,email,postcode,placed_at,items\n\
         FH-700001,shipped,a@example.com,SW1A 1AA,2026-11-20,2x Mug; 1x Apron\n\
         FH-700002,shipped,b@example.com,SW1A 1AA,20/11/2026,1x Mug\n\
         FH-700003,placed,c@example.com,M1 1AE,2026-11-21,\n\
         FH-700004,sent,nobody,M1 1AE,2026-11-21,\n",
    )
    .expect("write csv");
    let data_dir = temp.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_supportbot"))
        .args(["orders", "import"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("SUPPORTBOT_CONFIG")
        .output()
        .expect("run supportbot");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("line 3 (FH-700002): placed_at: \"20/11/2026\" is not a date"), "{stdout}");
    assert!(stdout.contains("line 5 (FH-700004): status: \"sent\"") && stdout.contains("email:"), "{stdout}");
    assert!(stdout.contains("imported 2 order(s): 2 new, 0 updated; 2 row(s) failed"), "{stdout}");

    // The imported orders are what the server serves (and no samples are added to them).
    let server = start(test_config(&data_dir)).await;
    let api = Api::new(&server);
    let (status, order) = api.get("/api/orders/FH-700001").await;
    assert_eq!((status, order["items"][1]["name"].as_str()), (200, Some("Apron")));
    assert_eq!(api.get("/api/orders/FH-700002").await.0, 404);
    assert_eq!(api.get("/api/orders/FH-100234").await.0, 404, "samples load only into an empty table");
    server.stop().await;

    // A clean file exits 0.
    std::fs::write(&csv, "id,status,email,postcode,placed_at\nFH-700002,placed,b@example.com,SW1A 1AA,2026-11-20\n")
        .expect("write csv");
    let output = Command::new(env!("CARGO_BIN_EXE_supportbot"))
        .args(["orders", "import"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("run supportbot");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn the_sample_orders_file_is_valid_and_covers_every_status() {
    let file = std::fs::read(repo_path("orders/sample-orders.csv")).expect("sample file");
    let parsed = supportbot::orders::import::parse_csv(file.as_slice(), chrono::Utc::now()).expect("header");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert!(parsed.orders.len() >= 12);
    for status in OrderStatus::ALL {
        assert!(parsed.orders.iter().any(|(_, o)| o.status == status), "no sample order is {status}");
    }
    let delayed = parsed.orders.iter().find(|(_, o)| o.status == OrderStatus::Delayed).expect("delayed");
    assert!(delayed.1.delay_reason.is_some() && delayed.1.expected_delivery.is_some());
}
