//! Changing knowledge-base files on behalf of the admin API.
//!
//! Files stay the source of truth (editors also use git), so every change is a file
//! write: an article is its own Markdown file; an FAQ entry is edited inside its TOML
//! file with `toml_edit`, keeping comments and the other entries as they were. Writes are
//! atomic (temporary dot-file in the same directory, fsync, rename), so the file watcher
//! and a crash never see half a file. Input is validated field by field first.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::content::{KbContent, RESERVED_SLUG, is_valid_id, is_valid_lang};

/// Editable fields of an article.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    /// Page heading.
    pub title: String,
    /// Search keywords.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The chat answer.
    #[serde(default)]
    pub summary: Option<String>,
    /// Markdown body.
    pub body: String,
}

/// Editable fields of an FAQ entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FaqInput {
    /// The canonical question.
    pub question: String,
    /// Other phrasings.
    #[serde(default)]
    pub also: Vec<String>,
    /// Markdown answer.
    pub answer: String,
    /// For a new entry: the topic file (`faq/<lang>/<topic>.toml`); default `general`.
    #[serde(default)]
    pub topic: Option<String>,
}

/// One invalid field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Field name as in the request (`title`, `tags[2]`, `id`).
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The request's fields are invalid; nothing was written.
    #[error("invalid fields: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No such article or entry.
    #[error("not found")]
    NotFound,
    /// The id is taken by another document in the same language.
    #[error("{0}")]
    Conflict(String),
    /// The existing file cannot be edited safely (it is broken on disk).
    #[error("{path}: {message}")]
    BrokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

/// What a successful write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// The file changed, relative to the knowledge-base directory.
    pub path: String,
    /// True when the document did not exist before.
    pub created: bool,
}

const MAX_TITLE: usize = 200;
const MAX_TAG: usize = 60;
const MAX_TAGS: usize = 30;
const MAX_SUMMARY: usize = 1_000;
const MAX_TEXT: usize = 100_000;
const MAX_PHRASING: usize = 500;
const MAX_PHRASINGS: usize = 200;

fn field(errors: &mut Vec<FieldError>, name: impl Into<String>, message: &str) {
    errors.push(FieldError { field: name.into(), message: message.to_owned() });
}

fn check_text(errors: &mut Vec<FieldError>, name: &str, text: &str, max: usize, required: bool) {
    if required && text.trim().is_empty() {
        field(errors, name, "must not be empty");
    } else if text.chars().count() > max {
        field(errors, name, &format!("must be at most {max} characters"));
    }
    if text.contains('\0') {
        field(errors, name, "must not contain NUL characters");
    }
}

fn check_ids(errors: &mut Vec<FieldError>, lang: &str, id: &str) {
    if !is_valid_lang(lang) {
        field(errors, "lang", "must be a language code such as en, pl or zh-Hant");
    }
    if !is_valid_id(id) {
        field(errors, "id", "must be lowercase letters, digits and single dashes, e.g. click-and-collect");
    } else if id == RESERVED_SLUG {
        field(errors, "id", "\"faq\" is reserved for the FAQ listing page");
    }
}

/// Validates an article change; an empty list means it may be written.
#[must_use]
pub fn validate_article(lang: &str, slug: &str, input: &ArticleInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_ids(&mut errors, lang, slug);
    check_text(&mut errors, "title", &input.title, MAX_TITLE, true);
    if input.title.contains('\n') {
        field(&mut errors, "title", "must be one line");
    }
    if input.tags.len() > MAX_TAGS {
        field(&mut errors, "tags", &format!("at most {MAX_TAGS} tags"));
    }
    for (i, tag) in input.tags.iter().enumerate() {
        check_text(&mut errors, &format!("tags[{i}]"), tag, MAX_TAG, true);
    }
    if let Some(summary) = &input.summary {
        check_text(&mut errors, "summary", summary, MAX_SUMMARY, true);
    }
    check_text(&mut errors, "body", &input.body, MAX_TEXT, true);
    errors
}

/// Validates an FAQ change; an empty list means it may be written.
#[must_use]
pub fn validate_faq(lang: &str, id: &str, input: &FaqInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_ids(&mut errors, lang, id);
    check_text(&mut errors, "question", &input.question, MAX_PHRASING, true);
    if input.also.len() > MAX_PHRASINGS {
        field(&mut errors, "also", &format!("at most {MAX_PHRASINGS} phrasings"));
    }
    for (i, phrasing) in input.also.iter().enumerate() {
        check_text(&mut errors, &format!("also[{i}]"), phrasing, MAX_PHRASING, true);
    }
    check_text(&mut errors, "answer", &input.answer, MAX_TEXT, true);
    if let Some(topic) = &input.topic {
        if !is_valid_id(topic) {
            field(&mut errors, "topic", "must be lowercase letters, digits and single dashes, e.g. shipping");
        }
    }
    errors
}

fn relative(kb_dir: &Path, path: &Path) -> String {
    path.strip_prefix(kb_dir).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// Writes `text` to `path` atomically, creating parent directories.
///
/// # Errors
/// When the directory or file cannot be written.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), EditError> {
    use std::io::Write as _;
    let io = |source| EditError::Io { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    // Dot-prefixed, so the loader and watcher ignore it until the rename.
    let mut temp = tempfile::Builder::new().prefix(".edit-").suffix(".tmp").tempfile_in(dir).map_err(io)?;
    temp.write_all(text.as_bytes()).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A YAML double-quoted scalar: JSON string syntax is valid YAML.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The Markdown file for an article.
#[must_use]
pub fn article_file(input: &ArticleInput) -> String {
    let mut out = String::from("---\n");
    out.push_str(&format!("title: {}\n", yaml_string(input.title.trim())));
    if !input.tags.is_empty() {
        let tags: Vec<String> = input.tags.iter().map(|t| yaml_string(t.trim())).collect();
        out.push_str(&format!("tags: [{}]\n", tags.join(", ")));
    }
    if let Some(summary) = &input.summary {
        out.push_str(&format!("summary: {}\n", yaml_string(summary.trim())));
    }
    out.push_str("---\n");
    out.push_str(input.body.trim_end());
    out.push('\n');
    out
}

/// Creates or replaces an article.
///
/// # Errors
/// Invalid fields, an id taken by an FAQ entry, or IO.
pub fn put_article(
    kb_dir: &Path,
    content: &KbContent,
    lang: &str,
    slug: &str,
    input: &ArticleInput,
) -> Result<Written, EditError> {
    let errors = validate_article(lang, slug, input);
    if !errors.is_empty() {
        return Err(EditError::Invalid(errors));
    }
    if content.faqs.iter().any(|f| f.lang == lang && f.id == slug) {
        return Err(EditError::Conflict(format!("an FAQ entry in {lang} already has the id {slug:?}")));
    }
    let existing = content.articles.iter().find(|a| a.lang == lang && a.slug == slug);
    let path =
        existing.map_or_else(|| kb_dir.join("articles").join(lang).join(format!("{slug}.md")), |a| a.path.clone());
    write_atomically(&path, &article_file(input))?;
    Ok(Written { path: relative(kb_dir, &path), created: existing.is_none() })
}

/// Deletes an article's file.
///
/// # Errors
/// Not found, or IO.
pub fn delete_article(kb_dir: &Path, content: &KbContent, lang: &str, slug: &str) -> Result<Written, EditError> {
    let article = content.articles.iter().find(|a| a.lang == lang && a.slug == slug).ok_or(EditError::NotFound)?;
    std::fs::remove_file(&article.path).map_err(|source| EditError::Io { path: article.path.clone(), source })?;
    Ok(Written { path: relative(kb_dir, &article.path), created: false })
}

fn read_document(path: &Path) -> Result<DocumentMut, EditError> {
    let text = std::fs::read_to_string(path).map_err(|source| EditError::Io { path: path.to_owned(), source })?;
    text.parse::<DocumentMut>().map_err(|e| EditError::BrokenFile { path: path.to_owned(), message: e.to_string() })
}

fn entry_index(doc: &DocumentMut, lang: &str, id: &str) -> Option<usize> {
    let entries = doc.get("entry")?.as_array_of_tables()?;
    entries.iter().position(|t| {
        t.get("id").and_then(Item::as_str) == Some(id) && t.get("lang").and_then(Item::as_str) == Some(lang)
    })
}

fn fill_entry(table: &mut Table, lang: &str, id: &str, input: &FaqInput) {
    table["id"] = value(id);
    table["lang"] = value(lang);
    table["question"] = value(input.question.trim());
    if input.also.is_empty() {
        table.remove("also");
    } else {
        let also: Array = input.also.iter().map(|a| a.trim()).collect();
        table["also"] = value(also);
    }
    table["answer"] = value(format!("{}\n", input.answer.trim()));
}

/// Creates or replaces an FAQ entry inside its file (new entries go to
/// `faq/<lang>/<topic>.toml`).
///
/// # Errors
/// Invalid fields, an id taken by an article, a broken target file, or IO.
pub fn put_faq(
    kb_dir: &Path,
    content: &KbContent,
    lang: &str,
    id: &str,
    input: &FaqInput,
) -> Result<Written, EditError> {
    let errors = validate_faq(lang, id, input);
    if !errors.is_empty() {
        return Err(EditError::Invalid(errors));
    }
    if content.articles.iter().any(|a| a.lang == lang && a.slug == id) {
        return Err(EditError::Conflict(format!("an article in {lang} already has the id {id:?}")));
    }
    if let Some(existing) = content.faqs.iter().find(|f| f.lang == lang && f.id == id) {
        let mut doc = read_document(&existing.path)?;
        let index = entry_index(&doc, lang, id).ok_or_else(|| EditError::BrokenFile {
            path: existing.path.clone(),
            message: "the entry changed on disk; reload and retry".into(),
        })?;
        if let Some(table) = doc.get_mut("entry").and_then(Item::as_array_of_tables_mut).and_then(|a| a.get_mut(index))
        {
            fill_entry(table, lang, id, input);
        }
        write_atomically(&existing.path, &doc.to_string())?;
        return Ok(Written { path: relative(kb_dir, &existing.path), created: false });
    }
    let topic = input.topic.as_deref().unwrap_or("general");
    let path = kb_dir.join("faq").join(lang).join(format!("{topic}.toml"));
    let mut doc = if path.exists() { read_document(&path)? } else { DocumentMut::new() };
    let mut table = Table::new();
    fill_entry(&mut table, lang, id, input);
    match doc.get_mut("entry").and_then(Item::as_array_of_tables_mut) {
        Some(entries) => entries.push(table),
        None => {
            let mut entries = toml_edit::ArrayOfTables::new();
            entries.push(table);
            doc.insert("entry", Item::ArrayOfTables(entries));
        }
    }
    write_atomically(&path, &doc.to_string())?;
    Ok(Written { path: relative(kb_dir, &path), created: true })
}

/// Removes an FAQ entry from its file (and the file, when it was the last entry).
///
/// # Errors
/// Not found, a broken file, or IO.
pub fn delete_faq(kb_dir: &Path, content: &KbContent, lang: &str, id: &str) -> Result<Written, EditError> {
    let existing = content.faqs.iter().find(|f| f.lang == lang && f.id == id).ok_or(EditError::NotFound)?;
    let mut doc = read_document(&existing.path)?;
    let index = entry_index(&doc, lang, id).ok_or(EditError::NotFound)?;
    let left = match doc.get_mut("entry").and_then(Item::as_array_of_tables_mut) {
        Some(entries) => {
            entries.remove(index);
            entries.len()
        }
        None => 0,
    };
    if left == 0 {
        std::fs::remove_file(&existing.path).map_err(|source| EditError::Io { path: existing.path.clone(), source })?;
    } else {
        write_atomically(&existing.path, &doc.to_string())?;
    }
    Ok(Written { path: relative(kb_dir, &existing.path), created: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faq(question: &str) -> FaqInput {
        FaqInput { question: question.into(), also: vec!["other way".into()], answer: "Yes.".into(), topic: None }
    }

    #[test]
    fn articles_round_trip_through_the_loader_with_awkward_text() {
        let dir = tempfile::tempdir().expect("temp");
        let input = ArticleInput {
            title: "Returns: \"what\" & how # really".into(),
            tags: vec!["returns".into(), "[odd]".into()],
            summary: Some("Summary: with colon".into()),
            body: "Body text.\n\n## Section\n".into(),
        };
        let written = put_article(dir.path(), &KbContent::default(), "en", "returns-how", &input).expect("write");
        assert_eq!(written, Written { path: "articles/en/returns-how.md".into(), created: true });
        let content = KbContent::load(dir.path()).expect("load");
        assert!(content.errors.is_empty(), "{:?}", content.errors);
        let article = &content.articles[0];
        assert_eq!((article.title.as_str(), article.tags.clone()), (input.title.as_str(), input.tags.clone()));
        assert_eq!(article.summary, input.summary);
    }

    #[test]
    fn faq_edits_keep_comments_and_other_entries() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("faq/shipping.toml");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &path,
            "# Shipping questions.\n\n[[entry]]\nid = \"a\"\nlang = \"en\"\nquestion = \"A?\"\nanswer = \"A.\"\n\n[[entry]]\nid = \"b\"\nlang = \"en\"\nquestion = \"B?\"\nanswer = \"B.\"\n",
        )
        .expect("write");
        let content = KbContent::load(dir.path()).expect("load");
        put_faq(dir.path(), &content, "en", "a", &faq("A changed?")).expect("update");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# Shipping questions."), "{text}");
        let content = KbContent::load(dir.path()).expect("reload");
        assert!(content.errors.is_empty(), "{:?}", content.errors);
        let questions: Vec<&str> = content.faqs.iter().map(|f| f.question.as_str()).collect();
        assert_eq!(questions, ["A changed?", "B?"]);

        let written = put_faq(dir.path(), &content, "pl", "c", &faq("C?")).expect("create");
        assert_eq!(written, Written { path: "faq/pl/general.toml".into(), created: true });
        let content = KbContent::load(dir.path()).expect("reload");
        delete_faq(dir.path(), &content, "en", "a").expect("delete");
        delete_faq(dir.path(), &KbContent::load(dir.path()).expect("reload"), "en", "b").expect("delete last");
        assert!(!path.exists(), "a file without entries is removed");
        let content = KbContent::load(dir.path()).expect("reload");
        assert_eq!(content.faqs.len(), 1);
    }

    #[test]
    fn validation_names_every_bad_field() {
        let input =
            ArticleInput { title: String::new(), tags: vec!["ok".into(), " ".into()], summary: None, body: "x".into() };
        let fields: Vec<String> = validate_article("EN", "Bad Id", &input).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["lang", "id", "title", "tags[1]"]);
        let fields: Vec<String> = validate_faq("en", "faq", &faq("")).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["id", "question"]);
    }
}
