//! `/api/kb/…`: the content editors' API. Every route needs a token with the editor role.
//!
//! Reads come from the files on disk (not the served index), so an editor sees what they
//! wrote even while a broken file keeps an older version serving. Writes go through
//! [`crate::kb::editor`] one at a time, then the knowledge base is reloaded before the
//! response, so the answer to the next question already reflects the change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::api::{ApiError, ApiQuery, Caller, Editor, JsonBody};
use crate::kb::editor::{self, ArticleInput, EditError, FaqInput, Written};
use crate::kb::{ContentError, KbContent};

/// Largest article body accepted: articles are a few hundred words, so this is generous.
const ARTICLE_BODY_BYTES: usize = 256 * 1024;
/// Largest FAQ entry body accepted.
const FAQ_BODY_BYTES: usize = 64 * 1024;

/// The editor routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/kb/status", get(status))
        .route("/api/kb/articles", get(list_articles).post(create_article))
        .route("/api/kb/articles/{lang}/{slug}", get(get_article).put(put_article).delete(delete_article))
        .route("/api/kb/faq", get(list_faq).post(create_faq))
        .route("/api/kb/faq/{lang}/{id}", get(get_faq).put(put_faq).delete(delete_faq))
        .route("/api/kb/gaps", get(super::gaps_api::gaps))
}

#[derive(Deserialize)]
pub(super) struct LangFilter {
    lang: Option<String>,
}

#[derive(Serialize)]
struct FileProblem {
    file: String,
    line: Option<usize>,
    message: String,
}

fn problems(state: &AppState, errors: &[ContentError]) -> Vec<FileProblem> {
    errors
        .iter()
        .map(|e| FileProblem {
            file: e.path.strip_prefix(&state.config.kb_dir).unwrap_or(&e.path).to_string_lossy().into_owned(),
            line: e.line,
            message: e.message.clone(),
        })
        .collect()
}

fn load_files(state: &AppState) -> Result<KbContent, ApiError> {
    KbContent::load(&state.config.kb_dir)
        .map_err(|e| ApiError::internal("cannot read the knowledge-base directory", &e))
}

async fn status(_caller: Caller<Editor>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let status = state.kb_service.status();
    let served = state.kb.load_full();
    Ok(Json(json!({
        "serving": status.serving,
        "generation": status.generation,
        "stale": status.stale,
        "documents": served.as_ref().map_or(0, |kb| kb.len()),
        "languages": served.as_ref().map(|kb| kb.content().languages()).unwrap_or_default(),
        "errors": problems(&state, &status.errors),
    }))
    .into_response())
}

fn article_json(a: &crate::kb::Article, state: &AppState) -> serde_json::Value {
    json!({
        "lang": a.lang, "slug": a.slug, "title": a.title, "tags": a.tags, "summary": a.summary, "body": a.body,
        "file": a.path.strip_prefix(&state.config.kb_dir).unwrap_or(&a.path).to_string_lossy(),
        "url": format!("/kb/{}/{}", a.lang, a.slug),
    })
}

fn faq_json(f: &crate::kb::FaqEntry, state: &AppState) -> serde_json::Value {
    json!({
        "lang": f.lang, "id": f.id, "question": f.question, "also": f.also, "answer": f.answer,
        "file": f.path.strip_prefix(&state.config.kb_dir).unwrap_or(&f.path).to_string_lossy(),
    })
}

async fn list_articles(
    _caller: Caller<Editor>,
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<LangFilter>,
) -> Result<Response, ApiError> {
    let content = load_files(&state)?;
    let list: Vec<_> = content
        .articles
        .iter()
        .filter(|a| filter.lang.as_ref().is_none_or(|l| *l == a.lang))
        .map(|a| json!({"lang": a.lang, "slug": a.slug, "title": a.title, "tags": a.tags, "summary": a.summary}))
        .collect();
    Ok(Json(json!({ "articles": list })).into_response())
}

async fn get_article(
    _caller: Caller<Editor>,
    State(state): State<AppState>,
    Path((lang, slug)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let content = load_files(&state)?;
    let article = content
        .articles
        .iter()
        .find(|a| a.lang == lang && a.slug == slug)
        .ok_or_else(|| ApiError::not_found(format!("no article {lang}/{slug}")))?;
    Ok(Json(article_json(article, &state)).into_response())
}

async fn list_faq(
    _caller: Caller<Editor>,
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<LangFilter>,
) -> Result<Response, ApiError> {
    let content = load_files(&state)?;
    let list: Vec<_> = content
        .faqs
        .iter()
        .filter(|f| filter.lang.as_ref().is_none_or(|l| *l == f.lang))
        .map(|f| faq_json(f, &state))
        .collect();
    Ok(Json(json!({ "faq": list })).into_response())
}

async fn get_faq(
    _caller: Caller<Editor>,
    State(state): State<AppState>,
    Path((lang, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let content = load_files(&state)?;
    let entry = content
        .faqs
        .iter()
        .find(|f| f.lang == lang && f.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no FAQ entry {lang}/{id}")))?;
    Ok(Json(faq_json(entry, &state)).into_response())
}

/// Runs one file change under the editors' lock, then reloads the knowledge base.
async fn edit(
    state: &AppState,
    who: &str,
    change: impl FnOnce(&std::path::Path, &KbContent) -> Result<Written, EditError> + Send + 'static,
) -> Result<Response, ApiError> {
    let _one_at_a_time = state.kb_edits.lock().await;
    let service = state.kb_service.clone();
    let kb_dir = state.config.kb_dir.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let content = KbContent::load(&kb_dir).map_err(|source| EditError::Io { path: kb_dir.clone(), source })?;
        let written = change(&kb_dir, &content)?;
        Ok::<_, EditError>((written, service.reload()))
    })
    .await
    .map_err(|e| ApiError::internal("edit task failed", &e))?;
    let (written, reloaded) = outcome.map_err(|e| match e {
        EditError::Invalid(fields) => ApiError::invalid(fields),
        EditError::NotFound => ApiError::not_found("no such document"),
        EditError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
        EditError::BrokenFile { .. } => ApiError::new(StatusCode::CONFLICT, "broken_file", e.to_string()),
        EditError::Io { .. } => ApiError::internal("cannot write the knowledge-base file", &e),
    })?;
    if let Err(e) = reloaded {
        tracing::error!(error = %e, "reload after edit failed");
    }
    tracing::info!(editor = who, file = %written.path, created = written.created, "knowledge base edited");
    let status = state.kb_service.status();
    let code = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    let body = json!({
        "file": written.path,
        "created": written.created,
        "generation": status.generation,
        "live": !status.stale,
        "errors": problems(state, &status.errors),
    });
    Ok((code, Json(body)).into_response())
}

/// A new article: where it goes, then its fields (serde cannot flatten with
/// `deny_unknown_fields`, so the fields are repeated).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewArticle {
    lang: String,
    slug: String,
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    body: String,
}

/// A new FAQ entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFaq {
    lang: String,
    id: String,
    question: String,
    #[serde(default)]
    also: Vec<String>,
    answer: String,
    #[serde(default)]
    topic: Option<String>,
}

async fn create_article(
    caller: Caller<Editor>,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewArticle, ARTICLE_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    edit(&state, &who, move |dir, content| {
        if content.articles.iter().any(|a| a.lang == new.lang && a.slug == new.slug) {
            return Err(EditError::Conflict(format!(
                "article {}/{} already exists; use PUT to change it",
                new.lang, new.slug
            )));
        }
        let fields = ArticleInput { title: new.title, tags: new.tags, summary: new.summary, body: new.body };
        editor::put_article(dir, content, &new.lang, &new.slug, &fields)
    })
    .await
}

async fn put_article(
    caller: Caller<Editor>,
    State(state): State<AppState>,
    Path((lang, slug)): Path<(String, String)>,
    JsonBody(input): JsonBody<ArticleInput, ARTICLE_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    edit(&state, &who, move |dir, content| editor::put_article(dir, content, &lang, &slug, &input)).await
}

async fn delete_article(
    caller: Caller<Editor>,
    State(state): State<AppState>,
    Path((lang, slug)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    edit(&state, &who, move |dir, content| editor::delete_article(dir, content, &lang, &slug)).await
}

async fn create_faq(
    caller: Caller<Editor>,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewFaq, FAQ_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    edit(&state, &who, move |dir, content| {
        if content.faqs.iter().any(|f| f.lang == new.lang && f.id == new.id) {
            return Err(EditError::Conflict(format!(
                "FAQ entry {}/{} already exists; use PUT to change it",
                new.lang, new.id
            )));
        }
        let fields = FaqInput { question: new.question, also: new.also, answer: new.answer, topic: new.topic };
        editor::put_faq(dir, content, &new.lang, &new.id, &fields)
    })
    .await
}

async fn put_faq(
    caller: Caller<Editor>,
    State(state): State<AppState>,
    Path((lang, id)): Path<(String, String)>,
    JsonBody(input): JsonBody<FaqInput, FAQ_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    edit(&state, &who, move |dir, content| editor::put_faq(dir, content, &lang, &id, &input)).await
}

async fn delete_faq(
    caller: Caller<Editor>,
    State(state): State<AppState>,
    Path((lang, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let who = caller.name;
    edit(&state, &who, move |dir, content| editor::delete_faq(dir, content, &lang, &id)).await
}
