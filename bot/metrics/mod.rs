//! CX metrics: the conversation event log and the figures computed from it
//! (`GET /api/metrics`, definitions in `docs/metrics.md`).

pub mod events;
pub mod export;
pub mod report;

pub use events::{EventKind, NewEvent};
pub use report::{MetricsFilter, MetricsReport};
