//! The HTTP edge: routes, the visitor WebSocket, static widget files and KB pages.
//!
//! Holds no business rules: sockets decode frames and forward them to the conversation's
//! actor; pages render what the knowledge base holds.

mod agent_ws;
mod agents_api;
mod api;
mod canned_api;
pub mod client_addr;
pub mod edge;
mod gaps_api;
mod handoff_api;
mod kb_api;
mod metrics_api;
mod orders_api;
mod pages;
mod privacy_api;
mod visitor_ws;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use arc_swap::ArcSwapOption;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::info;

use crate::config::{Config, OrderSourceConfig};
use crate::conversations::Hub;
use crate::flows::{BotScript, FlowError};
use crate::handoff::accounts::{AccountError, Accounts, DemoAgent};
use crate::handoff::desk::Desk;
use crate::kb::SharedKb;
use crate::kb::reload::KbService;
use crate::orders::import::{ImportError, seed_if_empty};
use crate::orders::{EmbeddedOrders, HttpOrders, Orders};
use crate::store::{SqliteStore, Store, StoreError};

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    /// Live conversations.
    pub hub: Hub,
    /// The knowledge base serving answers.
    pub kb: SharedKb,
    /// Loads and watches the knowledge base; knows its problems.
    pub kb_service: KbService,
    /// Resolved configuration.
    pub config: Arc<Config>,
    /// Fires on shutdown so long-lived sockets close cleanly.
    pub shutdown: CancellationToken,
    /// Durable storage (for API reads; conversations write through the hub).
    pub store: Arc<dyn Store>,
    /// Wakes the notice dispatcher when an order event is recorded.
    pub notices_wake: Arc<tokio::sync::Notify>,
    /// Serialises knowledge-base edits from the API.
    pub kb_edits: Arc<tokio::sync::Mutex<()>>,
    /// Order lookups and order events.
    pub orders: Orders,
    /// New conversations per client address.
    pub conversation_limiter: Arc<governor::DefaultKeyedRateLimiter<crate::ids::AddressKey>>,
    /// Agents, teams, logins and sessions (the admin API, `/api/agent/*`, the agent socket).
    pub accounts: Accounts,
    /// Queues, presence and offers: where handed-off chats go.
    pub desk: Desk,
    /// Canned responses agents share.
    pub canned: crate::handoff::canned::CannedResponses,
    /// The database, for reports that read across tables (metrics).
    pub pool: sqlx::SqlitePool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// IO error.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The flows directory is invalid.
    #[error("invalid flows:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Flows(Vec<FlowError>),
    /// The order source could not be set up (the HTTP client, or the sample orders file).
    #[error("orders: {0}")]
    Orders(String),
    /// Configured agents or teams could not be stored, or the demo agent not made.
    #[error("agents and teams: {0}")]
    Accounts(#[from] AccountError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// IO error.
        source: std::io::Error,
    },
}

/// All routes. Pages and widget files are compressed and carry security headers; every
/// route answers within the request deadline; unknown API paths get JSON errors.
pub fn app(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::demo_page))
        .route("/widget.js", get(pages::widget_script))
        .route("/agent", get(pages::agent_console))
        .route("/admin", get(pages::admin_dashboard))
        .route("/widget/{*file}", get(pages::widget_file))
        .route("/kb/{lang}/", get(pages::kb_index))
        .route("/kb/{lang}/{slug}", get(pages::kb_article))
        .layer(CompressionLayer::new());
    Router::new()
        .route("/healthz", get(pages::healthz))
        .route("/ws", get(visitor_ws::upgrade))
        .route("/ws/agent", get(agent_ws::upgrade))
        .merge(pages)
        .merge(kb_api::routes())
        .merge(orders_api::routes())
        .merge(privacy_api::routes())
        .merge(agents_api::routes())
        .merge(handoff_api::routes())
        .merge(metrics_api::routes())
        .merge(canned_api::routes())
        .fallback(pages::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::request_deadline))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .with_state(state)
}

/// The configured order source over our database; with the embedded source, an empty
/// orders table first gets the sample orders (`orders.seed_file`).
async fn open_orders(config: &Config, store: &SqliteStore) -> Result<Orders, StartError> {
    let embedded = EmbeddedOrders::new(store.pool().clone());
    match &config.orders.source {
        OrderSourceConfig::Embedded => {
            if let Some(seed) = &config.orders.seed_file {
                seed_if_empty(&embedded, seed).await.map_err(|e| match e {
                    ImportError::Store(e) => StartError::Store(e),
                    other => StartError::Orders(other.to_string()),
                })?;
            }
            Ok(Orders { source: Arc::new(embedded.clone()), embedded, pushed_here: true })
        }
        OrderSourceConfig::Http(http) => {
            let client = HttpOrders::new(http.clone())
                .map_err(|e| StartError::Orders(format!("cannot set up the HTTP client: {e}")))?;
            info!(url = http.url.as_str(), "orders come from the shop's API");
            Ok(Orders { source: Arc::new(client), embedded, pushed_here: false })
        }
    }
}

/// The accounts service over our database, with the configured teams and agents upserted.
async fn open_accounts(config: &Config, store: &SqliteStore, clock: SharedClock) -> Result<Accounts, StartError> {
    let accounts = Accounts::new(store.pool().clone(), clock, config.accounts);
    let report = accounts.sync_config(&config.agents, &config.teams).await?;
    if report != crate::handoff::accounts::SyncReport::default() {
        info!(
            teams = report.teams,
            agents_created = report.agents_created,
            agents_updated = report.agents_updated,
            "agents and teams from the config file"
        );
    }
    Ok(accounts)
}

/// A started server: where it listens, and how to stop it.
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Cancel to shut down gracefully.
    pub shutdown: CancellationToken,
    /// Resolves when the server has stopped.
    pub task: tokio::task::JoinHandle<()>,
    /// The demo agent made at this start (no agents existed), with its one-time password.
    pub demo_agent: Option<DemoAgent>,
}

/// New conversations per address: `per_hour`, in bursts of a third of that.
fn conversation_limiter(per_hour: u32) -> governor::DefaultKeyedRateLimiter<crate::ids::AddressKey> {
    let per_hour = NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(per_hour.get() / 3).unwrap_or(NonZeroU32::MIN);
    let quota = governor::Quota::with_period(Duration::from_secs(3600) / per_hour.get())
        .unwrap_or_else(|| governor::Quota::per_hour(per_hour))
        .allow_burst(burst);
    governor::RateLimiter::keyed(quota)
}

/// Opens the store, binds the listener, starts loading the knowledge base in the
/// background, and serves until `shutdown` fires.
///
/// # Errors
/// When the data dir, database, flows or listen address are unusable.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    start_with_clock(config, Arc::new(crate::clock::SystemClock)).await
}

/// [`start`] with a clock of the caller's (tests drive time with a `ManualClock`).
///
/// # Errors
/// As [`start`].
pub async fn start_with_clock(config: Config, clock: SharedClock) -> Result<RunningServer, StartError> {
    let open_files = edge::raise_open_file_limit();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let script = BotScript::load(&config.flows_dir).map_err(StartError::Flows)?;
    let store = SqliteStore::open(&config.data_dir.join("supportbot.db")).await?;
    let orders = open_orders(&config, &store).await?;
    let accounts = open_accounts(&config, &store, Arc::clone(&clock)).await?;
    let canned = crate::handoff::canned::CannedResponses::new(store.pool().clone(), Arc::clone(&clock));
    let demo_agent = accounts.ensure_demo_agent().await?;
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let kb: SharedKb = Arc::new(ArcSwapOption::empty());
    let kb_service = KbService::new(Arc::clone(&kb), config.kb_dir.clone(), config.data_dir.join("index"));
    let watcher = kb_service.clone().spawn();
    let shutdown = CancellationToken::new();
    let store_for_close = store.clone();
    let pool = store.pool().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let lookup: Arc<dyn crate::conversations::OrderLookup> =
        Arc::new(crate::orders::lookup::ProofCheckedLookup::new(Arc::clone(&orders.source)));
    let hub = Hub::new(
        Arc::clone(&store),
        Arc::clone(&kb),
        Arc::new(script),
        config.answers,
        Some(lookup),
        config.edge.pending_conversations,
        Arc::clone(&clock),
    );
    let shutdown_desk = shutdown.clone();
    let hub_clock = Arc::clone(&clock);
    let desk = Desk::start(hub.clone(), accounts.clone(), config.handoff.clone(), clock, shutdown_desk).await?;
    let notices_wake = Arc::new(tokio::sync::Notify::new());
    let dispatcher = crate::notices::Dispatcher {
        events: orders.embedded.clone(),
        source: Arc::clone(&orders.source),
        hub: hub.clone(),
        store: Arc::clone(&store),
        webhook: config.notice_webhook.clone(),
        wake: Arc::clone(&notices_wake),
        daily: config.daily_updates,
    };
    tokio::spawn(dispatcher.run(shutdown.clone()));
    let retention =
        crate::retention::Retention { store: Arc::clone(&store), hub: hub.clone(), policy: config.retention };
    tokio::spawn(retention.run(shutdown.clone()));
    tokio::spawn(crate::conversations::inactivity::run(
        hub.clone(),
        config.answers.csat.after_inactivity_minutes,
        config.inactivity_sweep,
        shutdown.clone(),
    ));
    let webhooks = crate::webhooks::Dispatcher {
        pool: pool.clone(),
        hooks: config.webhooks.clone(),
        clock: Arc::clone(&hub_clock),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    tokio::spawn(webhooks.run(shutdown.clone()));
    let conversation_limiter = Arc::new(conversation_limiter(config.edge.conversations_per_hour_per_address));
    let state = AppState {
        notices_wake,
        hub,
        kb: Arc::clone(&kb),
        kb_service,
        config: Arc::new(config),
        shutdown: shutdown.clone(),
        store,
        kb_edits: Arc::new(tokio::sync::Mutex::new(())),
        orders,
        conversation_limiter,
        accounts,
        desk,
        canned,
        pool,
    };
    let edge_limits = state.config.edge.clone();
    let admission = edge::admission::Admission::new(edge::admission_limits(&edge_limits, open_files));
    let caps = admission.limits().clone();
    let router = app(state);
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        edge::serve(listener, router, admission, edge_limits, stop).await;
        store_for_close.close().await;
        drop(watcher);
    });
    info!(
        %addr,
        max_connections = caps.total,
        per_address = caps.per_address,
        "supportbot listening on http://{addr}/"
    );
    if let Some(demo) = &demo_agent {
        info!(
            email = demo.email.as_str(),
            password = demo.password.as_str(),
            "no agents were set up, so a demo agent was created: log in as {} with password {} \
             at /agent (chats) and /admin (dashboard) (shown only now; change it with \
             `supportbot agents password --email {}`)",
            demo.email,
            demo.password,
            demo.email
        );
    }
    Ok(RunningServer { addr, shutdown, task, demo_agent })
}
