//! Where the bot learns about a visitor's order: the shop's own API ([`HttpOrders`]) or
//! orders pushed to us and kept in our SQLite ([`EmbeddedOrders`]).
//!
//! This module only fetches and stores. Deciding whether a visitor may see an order (the
//! ownership proof) and what to tell them is the conversation flow's job; [`Order::matches_proof`]
//! is here so every caller checks a proof the same, constant-time way.

pub mod embedded;
pub mod events;
pub mod http;
pub mod import;
pub mod lookup;
mod validate;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConstantTimeEq as _};

pub use embedded::EmbeddedOrders;
pub use events::{NewOrderEvent, OrderEvent, OrderEventId};
pub use http::{HttpOrders, HttpOrdersConfig, UrlTemplate};
pub use validate::{valid_tracking_url, validate_order_id};

use crate::kb::editor::FieldError;

/// Where an order is in its life; the bot words its answer by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Received, not yet worked on.
    Placed,
    /// Being picked.
    Processing,
    /// Packed, waiting for the carrier.
    Packed,
    /// Handed to the carrier.
    Shipped,
    /// Some items handed to the carrier, others still to come.
    PartiallyShipped,
    /// On its way (the carrier has scanned it).
    InTransit,
    /// With the driver today.
    OutForDelivery,
    /// Delivered.
    Delivered,
    /// Late; `delay_reason` and a new `expected_delivery` say why and until when.
    Delayed,
    /// Cancelled before delivery.
    Cancelled,
    /// Sent back by the customer.
    Returned,
}

impl OrderStatus {
    /// Every status, in the order an order usually moves through them.
    pub const ALL: [Self; 11] = [
        Self::Placed,
        Self::Processing,
        Self::Packed,
        Self::Shipped,
        Self::PartiallyShipped,
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::Delayed,
        Self::Cancelled,
        Self::Returned,
    ];

    /// The name used in JSON, CSV and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Processing => "processing",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::PartiallyShipped => "partially_shipped",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Delayed => "delayed",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
        }
    }

    /// Parses the JSON/CSV name (case-insensitive, surrounding spaces ignored).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    /// Product name as the customer saw it.
    pub name: String,
    /// How many.
    pub quantity: u32,
}

/// An order as the bot may talk about it (after the visitor proved it is theirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order number the customer knows (`FH-100234`).
    pub id: String,
    /// Where it is.
    pub status: OrderStatus,
    /// The customer's email; one of the two ownership proofs.
    pub email: String,
    /// The delivery postcode; the other ownership proof.
    pub postcode: String,
    /// For a friendlier answer.
    pub customer_name: Option<String>,
    /// Carrier name (`DPD`, `Royal Mail`).
    pub carrier: Option<String>,
    /// The carrier's tracking number.
    pub tracking_number: Option<String>,
    /// Where the customer can follow the parcel (always `http(s)://`).
    pub tracking_url: Option<String>,
    /// Day the order was placed.
    pub placed_at: NaiveDate,
    /// Day it should arrive (the new day, when delayed).
    pub expected_delivery: Option<NaiveDate>,
    /// Day it arrived.
    pub delivered_at: Option<NaiveDate>,
    /// Why it is late, in words fit for the customer.
    pub delay_reason: Option<String>,
    /// What was ordered.
    pub items: Vec<OrderItem>,
    /// When we last learned something about it.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// Whether `proof` (what the visitor typed) is this order's email (case-insensitive) or
    /// postcode (case and spaces ignored). Both comparisons always run, in constant time, so
    /// the answer's timing does not tell which part of a guess was right.
    #[must_use]
    pub fn matches_proof(&self, proof: &str) -> bool {
        let proof_email = normalize_email(proof);
        let proof_postcode = normalize_postcode(proof);
        let email = normalize_email(&self.email);
        let postcode = normalize_postcode(&self.postcode);
        // An order with an empty email or postcode must not match an empty proof.
        let present = |s: &str| Choice::from(u8::from(!s.is_empty()));
        let email_ok = proof_email.as_bytes().ct_eq(email.as_bytes()) & present(&email);
        let postcode_ok = proof_postcode.as_bytes().ct_eq(postcode.as_bytes()) & present(&postcode);
        bool::from(email_ok | postcode_ok)
    }
}

/// Email as compared for proofs: trimmed, lowercase.
#[must_use]
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Postcode as compared for proofs: uppercase, without any whitespace (`sw1a 1aa` → `SW1A1AA`).
#[must_use]
pub fn normalize_postcode(postcode: &str) -> String {
    postcode.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect()
}

/// Why an order could not be looked up. The two cases need different words for the visitor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderSourceError {
    /// The source did not answer in time, could not be reached, or kept failing (5xx): the
    /// bot says it cannot check orders right now and offers a person.
    #[error("order source unavailable: {0}")]
    Unavailable(String),
    /// The source answered with something that is not a usable order (bad JSON, a refused
    /// request, a wrong id): a configuration or integration bug, not the visitor's fault.
    #[error("order source returned invalid data: {0}")]
    Invalid(String),
}

/// Looks orders up by order number; implemented by the shop's API and by our own table.
#[async_trait]
pub trait OrderSource: Send + Sync {
    /// The order with this number, `None` when the source does not know it.
    ///
    /// # Errors
    /// [`OrderSourceError::Unavailable`] when the source cannot answer now,
    /// [`OrderSourceError::Invalid`] when its answer is unusable.
    async fn get(&self, order_id: &str) -> Result<Option<Order>, OrderSourceError>;
}

/// Everything the server holds about orders, built once at start from [`crate::config::OrdersConfig`].
#[derive(Clone)]
pub struct Orders {
    /// Where lookups go (the shop's API or our table).
    pub source: Arc<dyn OrderSource>,
    /// Our own tables: the orders when they are pushed to us, and order events always.
    pub embedded: EmbeddedOrders,
    /// Whether orders are pushed to us (`PUT /api/orders/{id}`, CSV import) rather than
    /// read from the shop's API.
    pub pushed_here: bool,
}

impl fmt::Debug for Orders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orders").field("pushed_here", &self.pushed_here).finish_non_exhaustive()
    }
}

/// An order as sent to `PUT /api/orders/{id}` or by the shop's API: the [`Order`] shape, with
/// `id` and `updated_at` optional (the URL names the order; we stamp the time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Must equal the order number in the URL when given.
    #[serde(default)]
    pub id: Option<String>,
    /// See [`Order::status`].
    pub status: OrderStatus,
    /// See [`Order::email`].
    pub email: String,
    /// See [`Order::postcode`].
    pub postcode: String,
    /// See [`Order::customer_name`].
    #[serde(default)]
    pub customer_name: Option<String>,
    /// See [`Order::carrier`].
    #[serde(default)]
    pub carrier: Option<String>,
    /// See [`Order::tracking_number`].
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// See [`Order::tracking_url`].
    #[serde(default)]
    pub tracking_url: Option<String>,
    /// See [`Order::placed_at`]; a full RFC 3339 timestamp is accepted and its date kept.
    #[serde(deserialize_with = "validate::lenient_date")]
    pub placed_at: NaiveDate,
    /// See [`Order::expected_delivery`].
    #[serde(default, deserialize_with = "validate::lenient_date_opt")]
    pub expected_delivery: Option<NaiveDate>,
    /// See [`Order::delivered_at`].
    #[serde(default, deserialize_with = "validate::lenient_date_opt")]
    pub delivered_at: Option<NaiveDate>,
    /// See [`Order::delay_reason`].
    #[serde(default)]
    pub delay_reason: Option<String>,
    /// See [`Order::items`].
    #[serde(default)]
    pub items: Vec<OrderItem>,
    /// See [`Order::updated_at`]; now when absent.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The JSON keys of [`OrderInput`], so a shop API's extra fields can be dropped before the
/// strict parse.
pub(crate) const INPUT_FIELDS: [&str; 14] = [
    "id",
    "status",
    "email",
    "postcode",
    "customer_name",
    "carrier",
    "tracking_number",
    "tracking_url",
    "placed_at",
    "expected_delivery",
    "delivered_at",
    "delay_reason",
    "items",
    "updated_at",
];

impl OrderInput {
    /// Checks every field and builds the order `id`; empty optional strings become `None`.
    ///
    /// # Errors
    /// Every field at fault, named as in the JSON body (`items[1].quantity`).
    pub fn into_order(self, id: &str, now: DateTime<Utc>) -> Result<Order, Vec<FieldError>> {
        validate::order(self, id, now)
    }
}

#[cfg(test)]
mod tests;
