//! `/api/canned`: the canned responses agents share (any logged-in agent reads and edits).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};

use super::AppState;
use super::agents_api::AgentSession;
use super::api::{ApiError, JsonBody};
use crate::handoff::canned::{CannedDraft, CannedError};
use crate::kb::editor::FieldError;

const CANNED_MAX: usize = 8 * 1024;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/canned", get(list).post(create)).route("/api/canned/{id}", put(update).delete(remove))
}

fn api_error(e: CannedError) -> ApiError {
    match e {
        CannedError::Invalid { field, message } => {
            ApiError::invalid(vec![FieldError { field: field.to_owned(), message: message.to_owned() }])
        }
        CannedError::Duplicate => ApiError::new(StatusCode::CONFLICT, "duplicate", e.to_string()),
        CannedError::NotFound => ApiError::not_found(e.to_string()),
        CannedError::Full => ApiError::new(StatusCode::CONFLICT, "full", e.to_string()),
        CannedError::Db(e) => ApiError::internal("canned responses", &e),
    }
}

fn response_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("no such canned response"))
}

async fn list(_: AgentSession, State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.canned.list().await.map_err(api_error)?).into_response())
}

async fn create(
    session: AgentSession,
    State(state): State<AppState>,
    JsonBody(draft): JsonBody<CannedDraft, CANNED_MAX>,
) -> Result<Response, ApiError> {
    let created = state.canned.create(draft, &session.agent.id.to_string()).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn update(
    session: AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(draft): JsonBody<CannedDraft, CANNED_MAX>,
) -> Result<Response, ApiError> {
    let id = response_id(&id)?;
    let updated = state.canned.update(id, draft, &session.agent.id.to_string()).await.map_err(api_error)?;
    Ok(Json(updated).into_response())
}

async fn remove(
    _: AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.canned.delete(response_id(&id)?).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}
