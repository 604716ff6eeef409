//! `/api/privacy/…` and `/api/retention/…`: what a shop owes its customers (a copy of their
//! data, and its deletion) and the retention sweep on demand. Manager role only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, ApiQuery, Caller, Manager};
use crate::ids::ConversationId;
use crate::retention::Retention;
use crate::store::VisitorSelector;

/// The privacy and retention routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/privacy/conversations", get(export).delete(delete))
        .route("/api/retention/run", post(run_retention))
}

/// Whose data: exactly one of the three.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Selector {
    conversation: Option<String>,
    visitor_id: Option<String>,
    email: Option<String>,
}

impl Selector {
    fn resolve(self) -> Result<VisitorSelector, ApiError> {
        let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message);
        match (self.conversation, self.visitor_id, self.email) {
            (Some(id), None, None) => uuid::Uuid::parse_str(id.trim())
                .map(|u| VisitorSelector::Conversation(ConversationId(u)))
                .map_err(|_| bad("conversation: not a conversation id")),
            (None, Some(v), None) if !v.trim().is_empty() => Ok(VisitorSelector::VisitorId(v.trim().to_owned())),
            (None, None, Some(e)) if e.contains('@') && e.len() <= 254 => {
                Ok(VisitorSelector::Email(e.trim().to_owned()))
            }
            (None, None, Some(_)) => Err(bad("email: not an e-mail address")),
            _ => Err(bad("give exactly one of conversation, visitor_id or email")),
        }
    }
}

/// The conversations a request is about.
async fn find(state: &AppState, selector: Selector) -> Result<Vec<ConversationId>, ApiError> {
    let selector = selector.resolve()?;
    state.store.find_conversations(&selector).await.map_err(|e| ApiError::internal("cannot find the conversations", &e))
}

async fn export(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    ApiQuery(selector): ApiQuery<Selector>,
) -> Result<Response, ApiError> {
    let ids = find(&state, selector).await?;
    let mut conversations = Vec::with_capacity(ids.len());
    for id in ids {
        match state.store.export_conversation(id).await {
            Ok(Some(export)) => conversations.push(export),
            Ok(None) => {} // deleted meanwhile
            Err(e) => return Err(ApiError::internal("cannot export a conversation", &e)),
        }
    }
    tracing::info!(manager = caller.name, conversations = conversations.len(), "privacy export");
    Ok(Json(json!({ "count": conversations.len(), "conversations": conversations })).into_response())
}

async fn delete(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    ApiQuery(selector): ApiQuery<Selector>,
) -> Result<Response, ApiError> {
    let ids = find(&state, selector).await?;
    let deleted = state.store.delete_conversations(&ids).await.map_err(|e| ApiError::internal("cannot delete", &e))?;
    for id in &ids {
        state.hub.forget(*id).await;
    }
    tracing::info!(manager = caller.name, deleted, "privacy deletion");
    Ok(Json(json!({ "deleted": deleted, "conversations": ids })).into_response())
}

async fn run_retention(caller: Caller<Manager>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let retention = Retention {
        store: std::sync::Arc::clone(&state.store),
        hub: state.hub.clone(),
        policy: state.config.retention,
    };
    let deleted =
        retention.sweep(chrono::Utc::now()).await.map_err(|e| ApiError::internal("retention sweep failed", &e))?;
    tracing::info!(manager = caller.name, deleted, "retention sweep on demand");
    Ok(Json(json!({ "deleted": deleted, "conversation_days": state.config.retention.conversation_days }))
        .into_response())
}
