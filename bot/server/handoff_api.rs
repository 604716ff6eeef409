//! `/api/conversations/{id}/handoff`, `…/packet` and `…/csat`: the shop (or a manager)
//! hands a chat to people, reads what an agent would get, or asks the visitor for a
//! rating. Manager role.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, Caller, JsonBody, Manager};
use crate::conversations::ActError;
use crate::engine::Refusal;
use crate::handoff::packet;
use crate::ids::ConversationId;
use crate::kb::editor::FieldError;
use crate::store::StoreError;

const HANDOFF_MAX: usize = 4 * 1024;
/// Longest reason kept.
const MAX_REASON: usize = 500;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/conversations/{id}/handoff", post(handoff))
        .route("/api/conversations/{id}/packet", get(read_packet))
        .route("/api/conversations/{id}/csat", post(request_csat))
}

/// Why the chat goes to people.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffBody {
    reason: String,
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(ConversationId)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such conversation"))
}

async fn handoff(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<HandoffBody, HANDOFF_MAX>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        let field = FieldError { field: "reason".to_owned(), message: "1 to 500 bytes".to_owned() };
        return Err(ApiError::invalid(vec![field]));
    }
    match state.hub.request_handoff(id, reason.to_owned()).await {
        Ok(()) => {
            tracing::info!(conversation = %id, by = %caller.name, "handoff requested through the API");
            Ok((StatusCode::ACCEPTED, Json(json!({ "conversation": id, "requested": true }))).into_response())
        }
        Err(StoreError::NotFound(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such conversation")),
        Err(e) => Err(ApiError::internal("cannot request a handoff", &e)),
    }
}

async fn read_packet(
    _caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    match packet::build(&state.store, Some(&state.orders.source), id, state.hub.now()).await {
        Ok(Some(packet)) => Ok(Json(packet).into_response()),
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such conversation")),
        Err(e) => Err(ApiError::internal("cannot build the packet", &e)),
    }
}

/// Asks the visitor for a rating now (their widget shows the rating control); refused
/// with 409 when the conversation was already rated.
async fn request_csat(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    match state.hub.request_csat(id).await {
        Ok(()) => {
            tracing::info!(conversation = %id, by = %caller.name, "rating requested through the API");
            Ok((StatusCode::ACCEPTED, Json(json!({ "conversation": id, "requested": true }))).into_response())
        }
        Err(ActError::Refused(Refusal::AlreadyRated)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "already_rated", "this conversation has already been rated"))
        }
        Err(ActError::Store(StoreError::NotFound(_)) | ActError::Refused(_)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such conversation"))
        }
        Err(ActError::Busy) => Err(ApiError::new(StatusCode::CONFLICT, "busy", "the conversation is busy; retry")),
        Err(ActError::Store(e)) => Err(ApiError::internal("cannot request a rating", &e)),
    }
}
