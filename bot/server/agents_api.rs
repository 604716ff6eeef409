//! Agents' accounts over HTTP: `/api/agent/login|logout|me` for agents themselves (a
//! session token), `/api/agents` and `/api/teams` for managers (a manager API token).
//! Decodes, calls [`Accounts`](crate::handoff::accounts::Accounts), maps its errors.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, Caller, JsonBody, Manager};
use super::client_addr::ClientAddr;
use crate::handoff::accounts::{AccountError, Agent, AgentDraft, AgentId, TeamDraft, TeamId};
use crate::kb::editor::FieldError;

/// Largest login body: an e-mail and a password.
const LOGIN_MAX: usize = 4 * 1024;
/// Largest agent body.
const AGENT_MAX: usize = 8 * 1024;
/// Largest team body (business hours included).
const TEAM_MAX: usize = 16 * 1024;

/// The account routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/agent/login", post(login))
        .route("/api/agent/logout", post(logout))
        .route("/api/agent/me", get(me))
        .route("/api/agents", get(list_agents).post(create_agent))
        .route("/api/agents/{id}", get(get_agent).put(update_agent).delete(delete_agent))
        .route("/api/teams", get(list_teams).post(create_team))
        .route("/api/teams/{id}", get(get_team).put(update_team).delete(delete_team))
}

/// Maps an account error to the API's JSON error.
fn api_error(error: AccountError) -> ApiError {
    match error {
        AccountError::Invalid { field, message } => ApiError::invalid(vec![FieldError { field, message }]),
        e @ AccountError::BadCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials", e.to_string()),
        e @ AccountError::RateLimited { .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
        }
        e @ AccountError::Disabled => ApiError::new(StatusCode::FORBIDDEN, "account_disabled", e.to_string()),
        e @ (AccountError::UnknownSession | AccountError::ExpiredSession | AccountError::RevokedSession) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
        }
        e @ (AccountError::AgentNotFound(_) | AccountError::TeamNotFound(_)) => ApiError::not_found(e.to_string()),
        e @ AccountError::EmailTaken(_) => ApiError::new(StatusCode::CONFLICT, "email_taken", e.to_string()),
        e @ AccountError::TeamExists(_) => ApiError::new(StatusCode::CONFLICT, "team_exists", e.to_string()),
        e @ AccountError::InUse(_) => ApiError::new(StatusCode::CONFLICT, "in_use", e.to_string()),
        e @ (AccountError::Hashing(_) | AccountError::Corrupt(_) | AccountError::Store(_)) => {
            ApiError::internal("account operation failed", &e)
        }
    }
}

/// The agent behind a session token (`Authorization: Bearer <token from /api/agent/login>`),
/// for agent-only routes. Runs before the body is read; a missing, unknown, expired or
/// revoked token, or a disabled account, is a 401.
pub struct AgentSession {
    /// The agent, as stored now.
    pub agent: Agent,
    token: String,
}

impl FromRequestParts<AppState> for AgentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing bearer token: send Authorization: Bearer <session token>",
                )
            })?;
        match state.accounts.authenticate(token).await {
            Ok(agent) => Ok(Self { agent, token: token.to_owned() }),
            Err(AccountError::Disabled) => {
                Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", AccountError::Disabled.to_string()))
            }
            Err(e) => Err(api_error(e)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<LoginBody, LOGIN_MAX>,
) -> Response {
    match state.accounts.login(&body.email, &body.password, client).await {
        Ok(session) => {
            // The body carries a secret: no cache may keep it.
            let mut response = Json(session).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(AccountError::RateLimited { retry_after }) => {
            let mut response = api_error(AccountError::RateLimited { retry_after }).into_response();
            let seconds = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(e) => api_error(e).into_response(),
    }
}

async fn logout(State(state): State<AppState>, session: AgentSession) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&session.token).await.map_err(api_error)?;
    tracing::info!(agent = %session.agent.id, "agent logged out");
    Ok(StatusCode::NO_CONTENT)
}

async fn me(session: AgentSession) -> Json<Agent> {
    Json(session.agent)
}

fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    AgentId::parse(raw).ok_or_else(|| ApiError::not_found(format!("no agent {raw}")))
}

fn team_id(raw: &str) -> Result<TeamId, ApiError> {
    TeamId::parse(raw).map_err(|_| ApiError::not_found(format!("no team {raw:?}")))
}

async fn list_agents(_: Caller<Manager>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let agents = state.accounts.list_agents().await.map_err(api_error)?;
    Ok(Json(json!({ "agents": agents })).into_response())
}

async fn create_agent(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    JsonBody(draft): JsonBody<AgentDraft, AGENT_MAX>,
) -> Result<Response, ApiError> {
    let agent = state.accounts.create_agent(draft).await.map_err(api_error)?;
    state.desk.refresh(&state.accounts).await;
    tracing::info!(manager = caller.name, agent = %agent.id, "agent created");
    Ok((StatusCode::CREATED, Json(agent)).into_response())
}

async fn get_agent(
    _: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    state.accounts.agent(&agent_id(&id)?).await.map(Json).map_err(api_error)
}

async fn update_agent(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(draft): JsonBody<AgentDraft, AGENT_MAX>,
) -> Result<Json<Agent>, ApiError> {
    let agent = state.accounts.update_agent(&agent_id(&id)?, draft).await.map_err(api_error)?;
    state.desk.refresh(&state.accounts).await;
    tracing::info!(manager = caller.name, agent = %agent.id, "agent updated");
    Ok(Json(agent))
}

async fn delete_agent(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = agent_id(&id)?;
    state.accounts.delete_agent(&id).await.map_err(api_error)?;
    state.desk.refresh(&state.accounts).await;
    tracing::info!(manager = caller.name, agent = %id, "agent deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn list_teams(_: Caller<Manager>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let teams = state.accounts.list_teams().await.map_err(api_error)?;
    Ok(Json(json!({ "teams": teams })).into_response())
}

async fn create_team(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    JsonBody(draft): JsonBody<TeamDraft, TEAM_MAX>,
) -> Result<Response, ApiError> {
    let team = state.accounts.create_team(&draft).await.map_err(api_error)?;
    state.desk.refresh(&state.accounts).await;
    tracing::info!(manager = caller.name, team = %team.id, "team created");
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

async fn get_team(
    _: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let team = state.accounts.team(&team_id(&id)?).await.map_err(api_error)?;
    Ok(Json(team).into_response())
}

async fn update_team(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(draft): JsonBody<TeamDraft, TEAM_MAX>,
) -> Result<Response, ApiError> {
    let team = state.accounts.update_team(&team_id(&id)?, &draft).await.map_err(api_error)?;
    state.desk.refresh(&state.accounts).await;
    tracing::info!(manager = caller.name, team = %team.id, "team updated");
    Ok(Json(team).into_response())
}

async fn delete_team(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = team_id(&id)?;
    state.accounts.delete_team(&id).await.map_err(api_error)?;
    state.desk.refresh(&state.accounts).await;
    tracing::info!(manager = caller.name, team = %id, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}
