//! Order events: what the shop tells us happened to an order ("delayed by the storm, now
//! due Friday"). They are ours whichever source serves the orders, so the bot can tell a
//! visitor proactively, once, even when orders are read from the shop's API.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::OrderStatus;
use super::validate;
use crate::kb::editor::FieldError;

/// Row id of a stored event. Ids only grow, in commit order (SQLite has one writer), so a
/// dispatcher can keep the last one it handled as its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderEventId(pub i64);

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrderEvent {
    /// The sender's idempotency key; a fresh one is generated when absent (then a retry is
    /// a new event).
    pub event_id: Option<String>,
    /// The order it is about.
    pub order_id: String,
    /// What happened: the order's new status.
    pub kind: OrderStatus,
    /// Why (shown to the customer for delays).
    pub reason: Option<String>,
    /// The new delivery day, if it changed.
    pub new_expected_delivery: Option<NaiveDate>,
    /// Free text for people (agents), not for the customer.
    pub note: Option<String>,
    /// When we received it.
    pub at: DateTime<Utc>,
    /// The event as the sender sent it, kept for audits and later needs.
    pub payload: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderEvent {
    /// Row id; the dispatch cursor.
    pub id: OrderEventId,
    /// Idempotency key (given or generated).
    pub event_id: String,
    /// The order it is about.
    pub order_id: String,
    /// What happened.
    pub kind: OrderStatus,
    /// Why.
    pub reason: Option<String>,
    /// The new delivery day.
    pub new_expected_delivery: Option<NaiveDate>,
    /// Note for people.
    pub note: Option<String>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The event as sent.
    pub payload: serde_json::Value,
    /// When a dispatcher marked it handled; `None` while pending.
    pub processed_at: Option<DateTime<Utc>>,
}

/// What [`super::EmbeddedOrders::record_event`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The stored event (the original one for a repeated `event_id`).
    pub event: OrderEvent,
    /// False when the `event_id` was already stored: nothing changed.
    pub new: bool,
    /// Whether the event changed an order row (false when the order is not in our table,
    /// as with the shop's API as source, or for a repeat).
    pub applied: bool,
}

/// The body of `POST /api/orders/{id}/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// Idempotency key; send one so a retried request is recorded once.
    #[serde(default)]
    pub event_id: Option<String>,
    /// The order's new status (`status` is accepted as the key too).
    #[serde(alias = "status")]
    pub kind: OrderStatus,
    /// Why, in words for the customer.
    #[serde(default)]
    pub reason: Option<String>,
    /// New delivery day.
    #[serde(default, deserialize_with = "validate::lenient_date_opt")]
    pub new_expected_delivery: Option<NaiveDate>,
    /// For people, not shown to the customer.
    #[serde(default)]
    pub note: Option<String>,
}

impl EventInput {
    /// Checks the fields and builds the event for `order_id`, received `at`.
    ///
    /// # Errors
    /// The fields at fault.
    pub fn into_event(self, order_id: &str, at: DateTime<Utc>) -> Result<NewOrderEvent, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: &str| {
            errors.push(FieldError { field: field.to_owned(), message: message.to_owned() });
        };
        let payload = serde_json::to_value(&self).unwrap_or(serde_json::Value::Null);
        let event_id = self.event_id.map(|e| e.trim().to_owned());
        if let Some(e) = &event_id {
            if e.is_empty() || e.len() > 128 || e.chars().any(|c| c.is_control() || c.is_whitespace()) {
                fail("event_id", "must be 1-128 characters without spaces");
            }
        }
        let reason = self.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            fail("reason", "must be at most 500 characters");
        }
        let note = self.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
            fail("note", "must be at most 2000 characters");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewOrderEvent {
            event_id,
            order_id: order_id.to_owned(),
            kind: self.kind,
            reason,
            new_expected_delivery: self.new_expected_delivery,
            note,
            at,
            payload,
        })
    }
}
