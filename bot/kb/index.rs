//! The tantivy index: schema, building it from content, and reusing it across restarts.
//!
//! The index lives in `<data-dir>/index` next to a `FINGERPRINT` file holding the content
//! hash it was built from; a start with unchanged content reuses it, anything else rebuilds.

use std::collections::HashMap;
use std::path::Path;

use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Index, IndexWriter, TantivyDocument};

use super::KbError;
use super::analysis::{self, AnalysisOptions, AnalyzerKind};
use super::content::KbContent;

/// Bumped whenever the schema or analyzers change, so old indexes are rebuilt.
const SCHEMA_VERSION: &str = "kb-schema-4";
const FINGERPRINT_FILE: &str = "FINGERPRINT";

/// Index fields of one analyzer family.
#[derive(Debug, Clone, Copy)]
pub struct LangFields {
    /// Article title.
    pub title: Field,
    /// One FAQ phrasing (question or an `also`).
    pub question: Field,
    /// Article tags.
    pub tags: Field,
    /// Article summary and body, or FAQ answer.
    pub body: Field,
}

/// Handles to every field of the schema.
#[derive(Debug, Clone)]
pub struct Fields {
    /// `faq:<lang>:<id>` or `article:<lang>:<slug>`; several FAQ phrasings share a key.
    pub key: Field,
    /// Document search group ([`analysis::search_group`]), for filtering.
    pub lang: Field,
    /// Text fields per analyzer family.
    pub by_analyzer: HashMap<AnalyzerKind, LangFields>,
}

impl Fields {
    /// Text fields for a language.
    #[must_use]
    pub fn for_lang(&self, lang: &str) -> LangFields {
        self.by_analyzer[&AnalyzerKind::for_lang(lang)]
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let key = builder.add_text_field("key", STRING | STORED);
    let lang = builder.add_text_field("lang", STRING);
    let mut by_analyzer = HashMap::new();
    for kind in AnalyzerKind::ALL {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(&kind.tokenizer_name())
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let k = kind.key();
        let fields = LangFields {
            title: builder.add_text_field(&format!("title_{k}"), options.clone()),
            question: builder.add_text_field(&format!("question_{k}"), options.clone()),
            tags: builder.add_text_field(&format!("tags_{k}"), options.clone()),
            body: builder.add_text_field(&format!("body_{k}"), options),
        };
        by_analyzer.insert(kind, fields);
    }
    (builder.build(), Fields { key, lang, by_analyzer })
}

/// Document key of an article.
#[must_use]
pub fn article_key(lang: &str, slug: &str) -> String {
    format!("article:{lang}:{slug}")
}

/// Document key of a FAQ entry.
#[must_use]
pub fn faq_key(lang: &str, id: &str) -> String {
    format!("faq:{lang}:{id}")
}

/// Opens the on-disk index if it was built from this exact content, else rebuilds it.
///
/// # Errors
/// When the directory cannot be written or tantivy fails.
pub fn open_or_build(
    content: &KbContent,
    dir: &Path,
    options: AnalysisOptions,
) -> Result<(Index, Fields, bool), KbError> {
    let (schema, fields) = schema();
    let wanted = format!("{SCHEMA_VERSION}\n{}\n{}", options.key(), content.fingerprint);
    let stored = std::fs::read_to_string(dir.join(FINGERPRINT_FILE)).ok();
    if stored.as_deref() == Some(wanted.as_str()) {
        if let Ok(index) = Index::open_in_dir(dir) {
            if index.schema() == schema {
                analysis::register(index.tokenizers(), options);
                return Ok((index, fields, false));
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| KbError::io(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| KbError::io(dir, e))?;
    let index = Index::create_in_dir(dir, schema)?;
    analysis::register(index.tokenizers(), options);
    fill(&index, &fields, content)?;
    std::fs::write(dir.join(FINGERPRINT_FILE), wanted).map_err(|e| KbError::io(dir, e))?;
    Ok((index, fields, true))
}

/// Builds an index in memory (tests, `kb check`).
///
/// # Errors
/// When tantivy fails.
pub fn build_in_ram(content: &KbContent, options: AnalysisOptions) -> Result<(Index, Fields), KbError> {
    let (schema, fields) = schema();
    let index = Index::create_in_ram(schema);
    analysis::register(index.tokenizers(), options);
    fill(&index, &fields, content)?;
    Ok((index, fields))
}

fn fill(index: &Index, fields: &Fields, content: &KbContent) -> Result<(), KbError> {
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 30_000_000)?;
    for article in &content.articles {
        let f = fields.for_lang(&article.lang);
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.key, article_key(&article.lang, &article.slug));
        doc.add_text(fields.lang, analysis::search_group(&article.lang));
        doc.add_text(f.title, &article.title);
        for tag in &article.tags {
            doc.add_text(f.tags, tag);
        }
        if let Some(summary) = &article.summary {
            doc.add_text(f.body, summary);
        }
        doc.add_text(f.body, &article.body);
        writer.add_document(doc)?;
    }
    for faq in &content.faqs {
        let f = fields.for_lang(&faq.lang);
        // One document per phrasing: a question matches its closest phrasing, not a
        // concatenation diluted by every other way of asking.
        for phrasing in std::iter::once(&faq.question).chain(&faq.also) {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.key, faq_key(&faq.lang, &faq.id));
            doc.add_text(fields.lang, analysis::search_group(&faq.lang));
            doc.add_text(f.question, phrasing);
            doc.add_text(f.body, &faq.answer);
            writer.add_document(doc)?;
        }
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(())
}
