//! What every JSON API route shares: bearer-token auth, strict JSON bodies, and errors
//! as JSON with a stable code (and the field at fault, for validation).

use std::marker::PhantomData;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::auth::{self, AuthError, Role};
use crate::handoff::accounts::AgentRole;
use crate::kb::editor::FieldError;

/// An API error response: `{"error": code, "message": …, "fields": [...]}`.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable machine-readable code.
    pub error: &'static str,
    /// For people.
    pub message: String,
    /// Invalid fields, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl ApiError {
    /// An error without field details.
    #[must_use]
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self { status, error, message: message.into(), fields: Vec::new() }
    }

    /// 422 with the fields at fault.
    #[must_use]
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, error: "validation_failed", message, fields }
    }

    /// 404.
    #[must_use]
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 500; the details go to the log, not to the client.
    #[must_use]
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{context}; see the server log"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = axum::Json(self).into_response();
        *response.status_mut() = status;
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A role an API route needs, as a type, so the route's signature says who may call it.
pub trait RequiredRole: Send + Sync + 'static {
    /// API-token roles that may call it (the first is named in errors).
    const TOKEN_ROLES: &'static [Role];
    /// Account roles whose logged-in sessions may call it too (people at the consoles).
    const ACCOUNT_ROLES: &'static [AgentRole] = &[];
}

/// Marker: the content editors' role (editor tokens, or editors logged in).
pub struct Editor;
impl RequiredRole for Editor {
    const TOKEN_ROLES: &'static [Role] = &[Role::Editor];
    const ACCOUNT_ROLES: &'static [AgentRole] = &[AgentRole::Editor];
}

/// Marker: the shop's order system.
pub struct OrderSystem;
impl RequiredRole for OrderSystem {
    const TOKEN_ROLES: &'static [Role] = &[Role::Orders];
}

/// Marker: managers (privacy requests, metrics, agents and teams): manager tokens, or
/// managers logged in.
pub struct Manager;
impl RequiredRole for Manager {
    const TOKEN_ROLES: &'static [Role] = &[Role::Manager];
    const ACCOUNT_ROLES: &'static [AgentRole] = &[AgentRole::Manager];
}

/// Marker: whoever reads the CX dashboard: managers and editors (tokens or logged in).
pub struct Reader;
impl RequiredRole for Reader {
    const TOKEN_ROLES: &'static [Role] = &[Role::Manager, Role::Editor];
    const ACCOUNT_ROLES: &'static [AgentRole] = &[AgentRole::Manager, AgentRole::Editor];
}

/// The authenticated caller of a route that needs role `R`. As an extractor it runs
/// before the body is read, so an anonymous request never costs more than its headers:
/// 401 without a valid token, 403 with a valid token that lacks the role. A configured
/// API token is checked first; otherwise the bearer may be a console login session of an
/// account holding one of `R::ACCOUNT_ROLES`.
pub struct Caller<R> {
    /// The token's name (or `account:<id>`), for logs.
    pub name: String,
    role: PhantomData<R>,
}

impl<R: RequiredRole> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        // The first role that lets the token in; otherwise the first role's refusal.
        let tries = R::TOKEN_ROLES.iter().map(|role| auth::authorize(&state.config.tokens, header, *role));
        let result = tries
            .clone()
            .find(Result::is_ok)
            .unwrap_or_else(|| tries.into_iter().next().unwrap_or(Err(AuthError::Missing)));
        match result {
            Ok(token) => Ok(Self { name: token.name.clone(), role: PhantomData }),
            Err(AuthError::Unknown) if !R::ACCOUNT_ROLES.is_empty() => {
                let bearer = header
                    .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                    .map(str::trim)
                    .unwrap_or_default();
                match state.accounts.authenticate(bearer).await {
                    Ok(agent) if agent.roles.iter().any(|r| R::ACCOUNT_ROLES.contains(r)) => {
                        Ok(Self { name: format!("account:{}", agent.id), role: PhantomData })
                    }
                    Ok(agent) => {
                        let roles: Vec<&str> = R::ACCOUNT_ROLES.iter().map(|r| r.as_str()).collect();
                        Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "forbidden",
                            format!("account {} lacks the {} role", agent.email, roles.join(" or ")),
                        ))
                    }
                    Err(e) => Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        format!("{e}: send Authorization: Bearer <token or session>"),
                    )),
                }
            }
            Err(e @ (AuthError::Missing | AuthError::Unknown)) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("{e}: send Authorization: Bearer <token>"),
            )),
            Err(e @ AuthError::Forbidden { .. }) => {
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()))
            }
        }
    }
}

/// A JSON body of at most `MAX` bytes, parsed strictly: one JSON object and nothing
/// after it, unknown fields refused, the field at fault named. The limit is checked
/// against `Content-Length` before anything is read, and again while reading.
pub struct JsonBody<T, const MAX: usize>(pub T);

impl<T: DeserializeOwned, const MAX: usize> FromRequest<AppState> for JsonBody<T, MAX> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        if !is_json(&headers) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ));
        }
        let bytes = read_body(request.into_body(), &headers, MAX).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is over this route's limit of {max} bytes"),
    )
}

/// Reads at most `max` bytes of a body.
async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<Vec<u8>, ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "body_unreadable", format!("the body could not be read: {e}"))
        })?;
        if buffer.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")))
}

/// Query parameters; a malformed query string is a JSON 400 naming what is wrong.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())),
        }
    }
}

/// Parses a JSON body strictly: one object and nothing after it; a wrong or missing field
/// (or another JSON value in place of the object) is a 422 naming the field, a body that
/// is not JSON at all, or has anything after the object, a 400.
///
/// # Errors
/// The 400/422 response.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        let message = "the body must be a JSON object".to_owned();
        return Err(ApiError::invalid(vec![FieldError { field: ".".to_owned(), message }]));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde_path_to_error already ends the path with an unknown field's name, but not
        // with a missing one's.
        let field = match named_field(&message) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) if path != name && !path.ends_with(&format!(".{name}")) => format!("{path}.{name}"),
            _ => path,
        };
        ApiError::invalid(vec![FieldError { field, message }])
    })
}

/// JSON 404 for paths no route serves.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// JSON 405 for a method a route does not take.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Middleware: a request (body included) not answered within the configured time gets a
/// JSON 408, so a client dripping its body cannot hold a handler.
pub async fn request_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = match tokio::time::timeout(state.config.edge.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request was not received and answered in time",
        )
        .into_response(),
    };
    let status = response.status();
    if status.is_server_error() {
        state.hub.telemetry().error("http_5xx");
    } else if status.is_client_error() {
        state.hub.telemetry().error("http_4xx");
    }
    response
}

/// The field named in serde's "missing field `x`" / "unknown field `x`" messages.
fn named_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `").or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        tags: Vec<String>,
    }

    #[test]
    fn body_errors_name_the_field() {
        let err = parse_json::<Body>(br#"{"tags": []}"#).expect_err("missing");
        assert_eq!((err.error, err.fields[0].field.as_str()), ("validation_failed", "title"));
        let err = parse_json::<Body>(br#"{"title": "x", "tags": [1]}"#).expect_err("wrong type");
        assert_eq!(err.fields[0].field, "tags[0]");
        let err = parse_json::<Body>(br#"{"title": "x", "tags": [], "tilte": 1}"#).expect_err("typo");
        assert_eq!(err.fields[0].field, "tilte");
        let err = parse_json::<Body>(b"{not json").expect_err("syntax");
        assert_eq!(err.error, "bad_json");
    }

    #[test]
    fn only_one_object_is_a_body() {
        let ok = parse_json::<Body>(br#"{"title": "x", "tags": []}"#);
        assert!(ok.is_ok());
        let err =
            parse_json::<Body>(br#"{"title": "x", "tags": []} {"title": "y", "tags": []}"#).expect_err("trailing");
        assert_eq!(err.error, "bad_json");
        let err = parse_json::<Body>(br#"{"title": "x", "tags": []}garbage"#).expect_err("trailing");
        assert_eq!(err.error, "bad_json");
        let err = parse_json::<Body>(br#"["x", []]"#).expect_err("array for an object");
        assert_eq!((err.error, err.message.as_str()), ("validation_failed", ".: the body must be a JSON object"));
    }
}
