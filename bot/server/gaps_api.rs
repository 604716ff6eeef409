//! `GET /api/kb/gaps`: unanswered questions, grouped and counted (editor role).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, ApiQuery, Caller, Editor};
use std::collections::HashMap;

use tantivy::tokenizer::TextAnalyzer;

use crate::kb::analysis::{search_group, terms};
use crate::kb::gaps;

/// Questions looked at per request (the newest): enough for weeks of a busy shop's
/// fallbacks, and a bound on the cost of grouping them.
const MAX_QUESTIONS: u32 = 10_000;

/// Query parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GapQuery {
    /// Only questions of the last N days (default 30).
    days: Option<u32>,
    /// Only this language (`pl`, `zh-Hant`; Chinese scripts count together).
    lang: Option<String>,
    /// At most this many groups (default 50, at most 500).
    limit: Option<usize>,
    /// Skip this many groups first (paging; default 0).
    offset: Option<usize>,
}

/// The handler.
pub(super) async fn gaps(
    _caller: Caller<Editor>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<GapQuery>,
) -> Result<Response, ApiError> {
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let since = state.hub.now() - Duration::days(i64::from(days));
    let mut list =
        state.store.gaps(since, MAX_QUESTIONS).await.map_err(|e| ApiError::internal("cannot read gaps", &e))?;
    if let Some(lang) = &query.lang {
        list.retain(|g| search_group(&g.lang) == search_group(lang));
    }
    let total = list.len();
    let kb = state.kb.load_full();
    let groups = tokio::task::spawn_blocking(move || {
        // One analyzer per language for the whole request.
        let mut analyzers: HashMap<String, TextAnalyzer> = HashMap::new();
        gaps::group(&list, |text, lang| match kb.as_ref() {
            Some(kb) => {
                let analyzer = analyzers.entry(search_group(lang).to_owned()).or_insert_with(|| kb.analyzer(lang));
                terms(analyzer, text)
            }
            None => text.to_lowercase().split_whitespace().map(str::to_owned).collect(),
        })
    })
    .await
    .map_err(|e| ApiError::internal("grouping failed", &e))?;
    let total_groups = groups.len();
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let page: Vec<_> = groups.into_iter().skip(offset).take(limit).collect();
    let next_offset = (offset + page.len() < total_groups).then_some(offset + page.len());
    Ok(Json(json!({
        "days": days,
        "questions": total,
        "total_groups": total_groups,
        "offset": offset,
        "next_offset": next_offset,
        "groups": page,
    }))
    .into_response())
}
