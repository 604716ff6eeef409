//! What every JSON API route shares: bearer-token auth, strict JSON bodies, and errors
//! as JSON with a stable code (and the field at fault, for validation).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{self, ApiToken, AuthError, Role};
use crate::kb::editor::FieldError;

/// Largest accepted JSON body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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

/// Checks the request's bearer token for `role`: 401 without a valid token, 403 with a
/// valid token that lacks the role.
///
/// # Errors
/// The 401/403 response.
pub fn require(tokens: &[ApiToken], headers: &HeaderMap, role: Role) -> Result<String, ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth::authorize(tokens, header, role) {
        Ok(token) => Ok(token.name.clone()),
        Err(e @ (AuthError::Missing | AuthError::Unknown)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("{e}: send Authorization: Bearer <token>"),
        )),
        Err(e @ AuthError::Forbidden { .. }) => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())),
    }
}

/// Parses a JSON body strictly; a wrong or missing field is a 422 naming the field, a body
/// that is not JSON a 400.
///
/// # Errors
/// The 400/413/422 response.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is over 1 MiB"));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the body is not valid JSON: {inner}"));
        }
        let path = e.path().to_string();
        let message = inner.to_string();
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

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        headers
    }

    #[test]
    fn body_errors_name_the_field() {
        let err = parse_json::<Body>(&json_headers(), br#"{"tags": []}"#).expect_err("missing");
        assert_eq!((err.error, err.fields[0].field.as_str()), ("validation_failed", "title"));
        let err = parse_json::<Body>(&json_headers(), br#"{"title": "x", "tags": [1]}"#).expect_err("wrong type");
        assert_eq!(err.fields[0].field, "tags[0]");
        let err = parse_json::<Body>(&json_headers(), br#"{"title": "x", "tags": [], "tilte": 1}"#).expect_err("typo");
        assert_eq!(err.fields[0].field, "tilte");
        let err = parse_json::<Body>(&json_headers(), b"{not json").expect_err("syntax");
        assert_eq!(err.error, "bad_json");
        let err = parse_json::<Body>(&HeaderMap::new(), b"{}").expect_err("no content type");
        assert_eq!(err.error, "unsupported_media_type");
    }
}
