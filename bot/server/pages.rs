//! Plain HTTP pages: health, demo page, widget files, knowledge-base articles.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

use super::AppState;
use crate::kb::render;

/// The `widget/` folder: read from disk in debug builds, embedded in release builds.
#[derive(RustEmbed)]
#[folder = "widget/"]
struct WidgetAssets;

/// 200 once the knowledge base is loaded, 503 before.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.kb.load().as_ref() {
        Some(kb) => (StatusCode::OK, format!("ok: {} documents\n", kb.len())).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "loading knowledge base\n").into_response(),
    }
}

/// Content-Security-Policy of our own pages: our scripts only, no framing by others.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// Content-Security-Policy of knowledge-base pages: no scripts at all; images from anywhere
/// (articles link them); only our own pages may frame them.
const KB_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; \
    frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

fn with_csp(mut response: Response, policy: &'static str) -> Response {
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    response
}

/// 404 for any path no route serves: JSON under `/api/`, text elsewhere.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return super::api::not_found(uri).await.into_response();
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// A widget file, with a content-hash `ETag` so browsers revalidate cheaply (304).
fn asset(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = WidgetAssets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    // Weak: the same file is served gzip-compressed or not.
    let etag = format!("W/\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let content_type = match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let mut response =
        if matches { StatusCode::NOT_MODIFIED.into_response() } else { file.data.into_owned().into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if content_type.starts_with("text/html") {
        return with_csp(response, PAGE_CSP);
    }
    response
}

/// `/`: a shop page with the widget on it.
pub async fn demo_page(headers: HeaderMap) -> Response {
    asset("demo.html", &headers)
}

/// `/agent`: the agent console (its script and styles are `/widget/agent.*`).
pub async fn agent_console(headers: HeaderMap) -> Response {
    asset("agent.html", &headers)
}

/// `/admin`: the CX dashboard for managers and editors.
pub async fn admin_dashboard(headers: HeaderMap) -> Response {
    asset("admin.html", &headers)
}

/// `/widget.js`: the embeddable widget.
pub async fn widget_script(headers: HeaderMap) -> Response {
    asset("supportbot.js", &headers)
}

/// `/widget/<file>`: any other widget asset.
pub async fn widget_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file.split('/').any(|part| part == ".." || part.is_empty()) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    asset(&file, &headers)
}

fn no_article() -> Response {
    let page = Html("<!doctype html><title>Not found</title><p>No such help article.</p>");
    with_csp((StatusCode::NOT_FOUND, page).into_response(), KB_CSP)
}

/// `/kb/<lang>/`: list of articles.
pub async fn kb_index(State(state): State<AppState>, Path(lang): Path<String>) -> Response {
    let Some(kb) = state.kb.load_full() else { return no_article() };
    let articles = kb.articles(&lang);
    if articles.is_empty() && kb.faqs(&lang).is_empty() {
        return no_article();
    }
    with_csp(Html(render::index_page(&lang, &articles)).into_response(), KB_CSP)
}

/// `/kb/<lang>/<slug>`: one article, or the FAQ page for slug `faq`.
pub async fn kb_article(State(state): State<AppState>, Path((lang, slug)): Path<(String, String)>) -> Response {
    let Some(kb) = state.kb.load_full() else { return no_article() };
    if slug == crate::kb::content::RESERVED_SLUG {
        let faqs = kb.faqs(&lang);
        if faqs.is_empty() {
            return no_article();
        }
        return with_csp(Html(render::faq_page(&lang, &faqs)).into_response(), KB_CSP);
    }
    match kb.article(&lang, &slug) {
        Some(article) => with_csp(Html(render::article_page(article)).into_response(), KB_CSP),
        None => no_article(),
    }
}
