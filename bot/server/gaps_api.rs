//! `GET /api/kb/gaps`: unanswered questions, grouped and counted (editor role).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, require};
use crate::auth::Role;
use crate::kb::analysis::search_group;
use crate::kb::gaps;

/// Questions looked at per request; enough for weeks of a busy shop's fallbacks.
const MAX_QUESTIONS: u32 = 20_000;

/// Query parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GapQuery {
    /// Only questions of the last N days (default 30).
    days: Option<u32>,
    /// Only this language (`pl`, `zh-Hant`; Chinese scripts count together).
    lang: Option<String>,
    /// At most this many groups (default 50).
    limit: Option<usize>,
}

/// The handler.
pub(super) async fn gaps(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<GapQuery>,
) -> Result<Response, ApiError> {
    require(&state.config.tokens, &headers, Role::Editor)?;
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let since = Utc::now() - Duration::days(i64::from(days));
    let mut list =
        state.store.gaps(since, MAX_QUESTIONS).await.map_err(|e| ApiError::internal("cannot read gaps", &e))?;
    if let Some(lang) = &query.lang {
        list.retain(|g| search_group(&g.lang) == search_group(lang));
    }
    let total = list.len();
    let kb = state.kb.load_full();
    let mut groups = tokio::task::spawn_blocking(move || {
        gaps::group(&list, |text, lang| {
            kb.as_ref().map_or_else(
                || text.to_lowercase().split_whitespace().map(str::to_owned).collect(),
                |kb| kb.terms(text, lang),
            )
        })
    })
    .await
    .map_err(|e| ApiError::internal("grouping failed", &e))?;
    groups.truncate(query.limit.unwrap_or(50).clamp(1, 1000));
    Ok(Json(json!({ "days": days, "questions": total, "groups": groups })).into_response())
}
