//! Field checks shared by `PUT /api/orders`, the CSV import and the shop API's answers, so
//! an order that reaches the bot has the same guarantees whichever way it came.

use chrono::{DateTime, NaiveDate, SubsecRound as _, Utc};
use serde::{Deserialize, Deserializer};

use super::{Order, OrderInput, OrderItem};
use crate::kb::editor::FieldError;

/// Longest order number we accept.
const MAX_ID: usize = 64;

/// Checks an order number: 1–64 ASCII letters, digits, `-`, `_` or `.`, so it is safe in a
/// URL path, a CSV cell and a chat message as it is.
///
/// # Errors
/// What is wrong, for people.
pub fn validate_order_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID {
        return Err(format!("must be at most {MAX_ID} characters"));
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("may only contain letters, digits, '-', '_' and '.' (found {bad:?})"));
    }
    Ok(())
}

/// Whether a tracking link is safe to show as a link: an absolute `http(s)` URL with a host
/// (never `javascript:` or a relative path).
#[must_use]
pub fn valid_tracking_url(url: &str) -> bool {
    url.len() <= 2048
        && reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A day as `YYYY-MM-DD`, or the date part of an RFC 3339 timestamp (in its own offset).
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.date_naive()))
}

const DATE_EXPECTED: &str = "a date like 2026-03-14 (or an RFC 3339 timestamp)";

pub(super) fn lenient_date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(d)?;
    parse_date(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid date {text:?}: expected {DATE_EXPECTED}")))
}

pub(super) fn lenient_date_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => parse_date(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid date {text:?}: expected {DATE_EXPECTED}"))),
    }
}

struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError { field: field.into(), message: message.into() });
    }

    /// Trimmed required text of at most `max` characters.
    fn required(&mut self, field: &str, text: &str, max: usize) -> String {
        let text = text.trim();
        if text.is_empty() {
            self.fail(field, "must not be empty");
        } else {
            self.max_len(field, text, max);
        }
        text.to_owned()
    }

    /// Trimmed optional text; empty becomes `None`.
    fn optional(&mut self, field: &str, text: Option<String>, max: usize) -> Option<String> {
        let text = text.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
        self.max_len(field, text, max);
        Some(text.to_owned())
    }

    fn max_len(&mut self, field: &str, text: &str, max: usize) {
        if text.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
        }
        if text.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters (line breaks, tabs)");
        }
    }
}

pub(super) fn order(input: OrderInput, id: &str, now: DateTime<Utc>) -> Result<Order, Vec<FieldError>> {
    let mut c = Checker { errors: Vec::new() };
    if let Err(message) = validate_order_id(id) {
        c.fail("id", message);
    }
    if let Some(given) = input.id.as_deref().map(str::trim) {
        if given != id {
            c.fail("id", format!("{given:?} does not match the order number {id:?} it is stored under"));
        }
    }
    let email = c.required("email", &input.email, 254);
    if !email.is_empty() && !looks_like_email(&email) {
        c.fail("email", "must be an email address like name@example.com");
    }
    let postcode = c.required("postcode", &input.postcode, 16);
    if postcode.chars().any(|ch| !(ch.is_alphanumeric() || ch == ' ' || ch == '-')) {
        c.fail("postcode", "may only contain letters, digits, spaces and '-'");
    }
    let customer_name = c.optional("customer_name", input.customer_name, 200);
    let carrier = c.optional("carrier", input.carrier, 100);
    let tracking_number = c.optional("tracking_number", input.tracking_number, 100);
    let tracking_url = c.optional("tracking_url", input.tracking_url, 2048);
    if tracking_url.as_deref().is_some_and(|u| !valid_tracking_url(u)) {
        c.fail("tracking_url", "must be an absolute http:// or https:// link");
    }
    let delay_reason = c.optional("delay_reason", input.delay_reason, 500);
    for (field, day) in [("expected_delivery", input.expected_delivery), ("delivered_at", input.delivered_at)] {
        if day.is_some_and(|d| d < input.placed_at) {
            c.fail(field, format!("must not be before placed_at ({})", input.placed_at));
        }
    }
    if input.items.len() > 500 {
        c.fail("items", "at most 500 items");
    }
    let mut items = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.into_iter().enumerate() {
        let name = c.required(&format!("items[{i}].name"), &item.name, 200);
        if !(1..=100_000).contains(&item.quantity) {
            c.fail(format!("items[{i}].quantity"), "must be between 1 and 100000");
        }
        items.push(OrderItem { name, quantity: item.quantity });
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(Order {
        id: id.to_owned(),
        status: input.status,
        email,
        postcode,
        customer_name,
        carrier,
        tracking_number,
        tracking_url,
        placed_at: input.placed_at,
        expected_delivery: input.expected_delivery,
        delivered_at: input.delivered_at,
        delay_reason,
        items,
        // Stored to the millisecond: what a PUT answers equals what a GET reads back.
        updated_at: input.updated_at.unwrap_or(now).trunc_subsecs(3),
    })
}

fn looks_like_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(char::is_whitespace)
    })
}
