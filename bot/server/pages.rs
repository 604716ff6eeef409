//! Plain HTTP pages: health, demo page, widget files, knowledge-base articles.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
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

fn asset(path: &str) -> Response {
    let Some(file) = WidgetAssets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let content_type = match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// `/`: a shop page with the widget on it.
pub async fn demo_page() -> Response {
    asset("demo.html")
}

/// `/widget.js`: the embeddable widget.
pub async fn widget_script() -> Response {
    asset("supportbot.js")
}

/// `/widget/<file>`: any other widget asset.
pub async fn widget_file(Path(file): Path<String>) -> Response {
    if file.split('/').any(|part| part == ".." || part.is_empty()) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    asset(&file)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html("<!doctype html><title>Not found</title><p>No such help article.</p>")).into_response()
}

/// `/kb/<lang>/`: list of articles.
pub async fn kb_index(State(state): State<AppState>, Path(lang): Path<String>) -> Response {
    let Some(kb) = state.kb.load_full() else { return not_found() };
    let articles = kb.articles(&lang);
    if articles.is_empty() && kb.faqs(&lang).is_empty() {
        return not_found();
    }
    Html(render::index_page(&lang, &articles)).into_response()
}

/// `/kb/<lang>/<slug>`: one article, or the FAQ page for slug `faq`.
pub async fn kb_article(State(state): State<AppState>, Path((lang, slug)): Path<(String, String)>) -> Response {
    let Some(kb) = state.kb.load_full() else { return not_found() };
    if slug == crate::kb::content::RESERVED_SLUG {
        let faqs = kb.faqs(&lang);
        if faqs.is_empty() {
            return not_found();
        }
        return Html(render::faq_page(&lang, &faqs)).into_response();
    }
    match kb.article(&lang, &slug) {
        Some(article) => Html(render::article_page(article)).into_response(),
        None => not_found(),
    }
}
