//! `GET /api/metrics`: CX figures for a range (managers and editors; definitions in
//! `docs/metrics.md`), CSV exports of conversations and ratings (managers), and `GET /metrics`: operational metrics in the Prometheus text
//! format, for allow-listed addresses or a manager token.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::AppState;
use super::api::{ApiError, Caller, Manager, Reader};
use super::client_addr::ClientAddr;
use crate::kb::editor::FieldError;
use crate::metrics::export::{self, ExportFilter};
use crate::metrics::report::{self, Interval, MetricsFilter};

/// Longest range one request may cover.
const MAX_RANGE_DAYS: i64 = 400;
/// Most series buckets one request may ask for.
const MAX_BUCKETS: i64 = 2000;
const PARAMS: [&str; 6] = ["from", "to", "team", "agent", "lang", "interval"];

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/metrics", get(metrics))
        .route("/metrics", get(prometheus))
        .route("/api/export/conversations.csv", get(export_conversations))
        .route("/api/export/ratings.csv", get(export_ratings))
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError { field: name.to_owned(), message: message.to_owned() }
}

/// An RFC 3339 time or a date (its midnight UTC).
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim()).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok().map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
    })
}

fn filter(params: &HashMap<String, String>, now: DateTime<Utc>) -> Result<MetricsFilter, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = params
        .keys()
        .filter(|k| !PARAMS.contains(&k.as_str()))
        .map(|k| field(k, "unknown parameter (from, to, team, agent, lang, interval)"))
        .collect();
    let time = |name: &str, default: DateTime<Utc>, errors: &mut Vec<FieldError>| match params.get(name) {
        None => default,
        Some(raw) => parse_time(raw).unwrap_or_else(|| {
            errors.push(field(name, "an RFC 3339 time (2026-12-01T00:00:00Z) or a date (2026-12-01)"));
            default
        }),
    };
    let to = time("to", now, &mut errors);
    let from = time("from", to - Duration::days(7), &mut errors);
    let interval = match params.get("interval").map(String::as_str) {
        None => Interval::Day,
        Some(raw) => Interval::parse(raw).unwrap_or_else(|| {
            errors.push(field("interval", "hour, day or week"));
            Interval::Day
        }),
    };
    if from >= to {
        errors.push(field("from", "must be before to"));
    } else if to - from > Duration::days(MAX_RANGE_DAYS) {
        errors.push(field("from", "the range may cover at most 400 days"));
    } else if interval == Interval::Hour && to - from > Duration::hours(MAX_BUCKETS) {
        errors.push(field("interval", "hourly series cover at most 2000 hours; use day"));
    }
    let text = |name: &str| params.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if errors.is_empty() {
        Ok(MetricsFilter { from, to, team: text("team"), agent: text("agent"), lang: text("lang"), interval })
    } else {
        Err(errors)
    }
}

async fn metrics(
    _caller: Caller<Reader>,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = filter(&params, state.hub.now()).map_err(ApiError::invalid)?;
    let facts = report::load(&state.pool, filter.from, filter.to)
        .await
        .map_err(|e| ApiError::internal("cannot read the event log", &e))?;
    let mut report = report::compute(&facts, &filter);
    if let Some(kb) = state.kb.load_full() {
        for row in &mut report.articles {
            row.title = kb.title_of(&row.doc);
        }
    }
    // Names for people, so readers who may not list agents (editors) see them too.
    if let Ok(agents) = state.accounts.list_agents().await {
        for row in &mut report.csat.per_agent {
            row.name = agents.iter().find(|a| a.id.to_string() == row.agent).map(|a| a.name.clone());
        }
    }
    Ok(Json(report).into_response())
}

/// The range (default: the last 30 days) and filters of an export.
fn export_range(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, ExportFilter), Vec<FieldError>> {
    let known = ["from", "to", "team", "agent", "lang"];
    let mut errors: Vec<FieldError> = params
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| field(k, "unknown parameter (from, to, team, agent, lang)"))
        .collect();
    let mut time = |name: &str, default: DateTime<Utc>| match params.get(name) {
        None => default,
        Some(raw) => parse_time(raw).unwrap_or_else(|| {
            errors.push(field(name, "an RFC 3339 time (2026-12-01T00:00:00Z) or a date (2026-12-01)"));
            default
        }),
    };
    let to = time("to", now);
    let from = time("from", to - Duration::days(30));
    if from >= to {
        errors.push(field("from", "must be before to"));
    } else if to - from > Duration::days(MAX_RANGE_DAYS) {
        errors.push(field("from", "the range may cover at most 400 days"));
    }
    let text = |name: &str| params.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let filter = ExportFilter { team: text("team"), agent: text("agent"), lang: text("lang") };
    if errors.is_empty() { Ok((from, to, filter)) } else { Err(errors) }
}

fn csv_download(name: &str, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/export/conversations.csv?from=&to=&team=&agent=&lang=`: conversations opened
/// in the range.
async fn export_conversations(
    _caller: Caller<Manager>,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (from, to, filter) = export_range(&params, state.hub.now()).map_err(ApiError::invalid)?;
    let body = export::conversations(&state.pool, from, to, &filter)
        .await
        .map_err(|e| ApiError::internal("cannot export conversations", &e))?;
    Ok(csv_download("conversations.csv", body))
}

/// `GET /api/export/ratings.csv?from=&to=&team=&agent=&lang=`: ratings given in the range.
async fn export_ratings(
    _caller: Caller<Manager>,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (from, to, filter) = export_range(&params, state.hub.now()).map_err(ApiError::invalid)?;
    let body = export::ratings(&state.pool, from, to, &filter)
        .await
        .map_err(|e| ApiError::internal("cannot export ratings", &e))?;
    Ok(csv_download("ratings.csv", body))
}

async fn prometheus(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    caller: Result<Caller<Manager>, ApiError>,
) -> Result<Response, ApiError> {
    if !state.config.metrics.allow_from.iter().any(|net| net.contains(&client)) {
        caller?;
    }
    let lengths: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.id, (SELECT COUNT(*) FROM conversations c WHERE c.owner_kind = 'queued' AND c.owner_team = t.id) \
         FROM teams t ORDER BY t.id",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|e| ApiError::internal("cannot read the queues", &e))?;
    let telemetry = state.hub.telemetry();
    let lengths: Vec<(String, u64)> =
        lengths.into_iter().map(|(team, n)| (team, u64::try_from(n).unwrap_or_default())).collect();
    telemetry.queue_lengths(&lengths);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], telemetry.render()).into_response())
}
