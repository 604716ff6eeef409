//! `/api/orders/…`: the shop's back office pushes orders and order events. Every route needs
//! a token with the orders role.
//!
//! With the shop's API as the order source, orders are read from there and cannot be
//! written here (409), but events are still recorded: they are ours, for telling visitors.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, Caller, JsonBody, OrderSystem};
use crate::orders::events::EventInput;
use crate::orders::{Order, OrderInput, OrderSourceError};

/// Largest order accepted (an order with many items).
const ORDER_BODY_BYTES: usize = 64 * 1024;
/// Largest order event accepted.
const EVENT_BODY_BYTES: usize = 16 * 1024;

/// The order routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/orders/{id}", get(get_order).put(put_order))
        .route("/api/orders/{id}/events", post(post_event))
}

/// The order from the configured source; 404, or 503/502 when the shop's API fails.
async fn lookup(state: &AppState, id: &str) -> Result<Order, ApiError> {
    match state.orders.source.get(id).await {
        Ok(Some(order)) => Ok(order),
        Ok(None) => Err(ApiError::not_found(format!("no order {id}"))),
        Err(e @ OrderSourceError::Unavailable(_)) => {
            tracing::warn!(order_id = id, error = %e, "order lookup failed");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "order_source_unavailable", e.to_string()))
        }
        Err(e @ OrderSourceError::Invalid(_)) => {
            tracing::error!(order_id = id, error = %e, "order source answered with unusable data");
            Err(ApiError::new(StatusCode::BAD_GATEWAY, "order_source_invalid", e.to_string()))
        }
    }
}

async fn get_order(
    _caller: Caller<OrderSystem>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(lookup(&state, &id).await?).into_response())
}

async fn put_order(
    caller: Caller<OrderSystem>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<OrderInput, ORDER_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    if !state.orders.pushed_here {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "orders_external",
            "orders come from the shop's API (orders.source = \"http\"); change them there",
        ));
    }
    let order = input.into_order(&id, Utc::now()).map_err(ApiError::invalid)?;
    let created =
        state.orders.embedded.upsert(&order).await.map_err(|e| ApiError::internal("cannot store the order", &e))?;
    tracing::info!(client = who, order_id = %order.id, status = %order.status, created, "order stored");
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(order)).into_response())
}

async fn post_event(
    caller: Caller<OrderSystem>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<EventInput, EVENT_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    let mut event = input.into_event(&id, Utc::now()).map_err(ApiError::invalid)?;
    let order = lookup(&state, &id).await?;
    event.order_id.clone_from(&order.id);
    let recorded = state
        .orders
        .embedded
        .record_event(event)
        .await
        .map_err(|e| ApiError::internal("cannot store the event", &e))?;
    if !recorded.new && !recorded.event.order_id.eq_ignore_ascii_case(&order.id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "event_id_reused",
            format!("event_id {:?} is already recorded for order {}", recorded.event.event_id, recorded.event.order_id),
        ));
    }
    tracing::info!(
        client = who,
        order_id = %order.id,
        kind = %recorded.event.kind,
        event_id = %recorded.event.event_id,
        new = recorded.new,
        "order event"
    );
    if recorded.new {
        state.notices_wake.notify_one();
    }
    let code = if recorded.new { StatusCode::CREATED } else { StatusCode::OK };
    let body = json!({ "event": recorded.event, "new": recorded.new, "applied": recorded.applied });
    Ok((code, Json(body)).into_response())
}
