//! supportbot: a support chatbot with knowledge-base answers and human handoff.
//!
//! Crate map (see `ARCHITECTURE.md` for the invariants):
//!
//! - [`protocol`]: the visitor WebSocket wire format and its error codes.
//! - [`engine`]: the pure conversation state machine (events in, effects out).
//! - [`kb`]: knowledge-base content, tantivy index, search and confidence, article pages.
//! - [`flows`]: small-talk intents and the bot's message catalogs (data in `flows/`).
//! - [`conversations`]: one actor task per live conversation, running the engine.
//! - [`store`]: durable conversations and messages (SQLite through sqlx).
//! - [`orders`]: order lookups (the shop's API or our own table), order events, CSV import.
//! - [`retention`]: deleting conversations past the retention period.
//! - [`server`]: the connection edge (limits), axum routes, the visitor socket, static files.
//! - [`config`], [`ids`], [`token`]: configuration, typed ids, visitor tokens.

pub mod auth;
pub mod checks;
pub mod clock;
pub mod config;
pub mod conversations;
pub mod engine;
pub mod flows;
pub mod handoff;
pub mod identity;
pub mod ids;
pub mod kb;
pub mod lang;
pub mod metrics;
pub mod notices;
pub mod orders;
pub mod protocol;
pub mod retention;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod webhooks;
