//! Integration tests: each starts the real server on a loopback port with a temp data dir
//! and talks to it the way the widget does, over real WebSockets and HTTP.

mod abuse;
mod agents;
mod bad_input;
mod body_flood;
mod chat;
mod csat;
mod daily_updates;
mod desk_client;
mod edge;
mod flows_check;
mod handoff;
mod harness;
mod kb_api;
mod kb_check;
mod kb_reload;
mod languages;
mod metrics;
mod notices;
mod orders;
mod privacy;
mod resume;
mod retrieval;
mod tracking;
mod webhooks;
