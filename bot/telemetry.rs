//! Operational metrics in the Prometheus text format (`GET /metrics`). Each server owns its
//! own recorder (no process-global state), so two servers in one process — as in the tests
//! — never mix their numbers. Rates (messages per second) are left to Prometheus: it
//! derives them from the counters.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Latency buckets in seconds (answers and searches take milliseconds, lookups seconds).
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const METADATA: Metadata<'static> = Metadata::new("supportbot", Level::INFO, Some(module_path!()));

/// The server's metrics: cheap to clone, shared by the sockets, the conversations and the
/// API.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    visitor_connections: Gauge,
    agent_connections: Gauge,
    answer_seconds: Histogram,
    search_seconds: Histogram,
    handoffs: Counter,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Which socket a connection gauge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A visitor's widget on `/ws`.
    Visitor,
    /// An agent's console on `/ws/agent`.
    Agent,
}

/// Holds one connection in its gauge until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl Telemetry {
    /// A fresh registry with every metric described (so they show before the first event).
    #[must_use]
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder.set_buckets(&BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| match name {
            n if n.ends_with("_total") => recorder.describe_counter(n.into(), unit, help.into()),
            n if n.ends_with("_seconds") => recorder.describe_histogram(n.into(), unit, help.into()),
            n => recorder.describe_gauge(n.into(), unit, help.into()),
        };
        describe("supportbot_visitor_connections", None, "Open visitor sockets (/ws).");
        describe("supportbot_agent_connections", None, "Open agent sockets (/ws/agent).");
        describe("supportbot_queue_length", None, "Chats waiting for a person, per team.");
        describe("supportbot_messages_total", None, "Messages stored, by sender (rate() gives messages per second).");
        describe(
            "supportbot_answer_seconds",
            Some(Unit::Seconds),
            "A visitor message received → the bot's reply stored.",
        );
        describe("supportbot_search_seconds", Some(Unit::Seconds), "One knowledge-base search.");
        describe("supportbot_handoffs_total", None, "Chats handed to people.");
        describe("supportbot_errors_total", None, "Errors answered to clients, by kind.");
        describe("supportbot_agent_errors_total", None, "Errors answered on agent sockets, by code.");
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &METADATA);
        let histogram = |name: &'static str| recorder.register_histogram(&Key::from_static_name(name), &METADATA);
        let inner = Inner {
            visitor_connections: gauge("supportbot_visitor_connections"),
            agent_connections: gauge("supportbot_agent_connections"),
            answer_seconds: histogram("supportbot_answer_seconds"),
            search_seconds: histogram("supportbot_search_seconds"),
            handoffs: recorder.register_counter(&Key::from_static_name("supportbot_handoffs_total"), &METADATA),
            recorder,
            handle,
        };
        Self { inner: Arc::new(inner) }
    }

    /// Counts a connection until the guard is dropped.
    #[must_use]
    pub fn connection(&self, peer: Peer) -> ConnectionGuard {
        let gauge = match peer {
            Peer::Visitor => self.inner.visitor_connections.clone(),
            Peer::Agent => self.inner.agent_connections.clone(),
        };
        gauge.increment(1.0);
        ConnectionGuard(gauge)
    }

    /// A message was stored.
    pub fn message(&self, sender: &'static str) {
        let key = Key::from_parts("supportbot_messages_total", vec![Label::new("from", sender)]);
        self.inner.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Time from a visitor message to the bot's stored reply.
    pub fn answered(&self, took: Duration) {
        self.inner.answer_seconds.record(took.as_secs_f64());
    }

    /// Time one search took.
    pub fn searched(&self, took: Duration) {
        self.inner.search_seconds.record(took.as_secs_f64());
    }

    /// A chat went to people.
    pub fn handoff(&self) {
        self.inner.handoffs.increment(1);
    }

    /// An error answered to a client (`kind` is a fixed code such as `bad_json`).
    pub fn error(&self, kind: &'static str) {
        let key = Key::from_parts("supportbot_errors_total", vec![Label::new("kind", kind)]);
        self.inner.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// An error answered on an agent socket (`code` as in the agent protocol).
    pub fn agent_error(&self, code: &'static str) {
        let key = Key::from_parts("supportbot_agent_errors_total", vec![Label::new("code", code)]);
        self.inner.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Sets the queue length of each team (teams with nobody waiting get 0).
    pub fn queue_lengths(&self, lengths: &[(String, u64)]) {
        for (team, n) in lengths {
            let key = Key::from_parts("supportbot_queue_length", vec![Label::new("team", team.clone())]);
            #[allow(clippy::cast_precision_loss)]
            self.inner.recorder.register_gauge(&key, &METADATA).set(*n as f64);
        }
    }

    /// Everything in the Prometheus text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }
}
