//! Searching the knowledge base and scoring how confident an answer is.
//!
//! Tantivy's BM25 (title, FAQ phrasings and tags weighted above body text) proposes
//! candidates. BM25 scores are not comparable across questions, so confidence is computed
//! separately: the share of the question's informative terms (IDF-weighted) that the
//! candidate covers, counting matches in strong fields fully and body matches partly.
//! A question about something the knowledge base never mentions leaves its rarest terms
//! uncovered and so scores low, whatever BM25 says.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};

use super::KbError;
use super::analysis::{self, AnalysisOptions, AnalyzerKind};
use super::chinese;
use super::content::{Article, FaqEntry, KbContent};
use super::index::{self, Fields};
use super::phrase_model::{self, PhraseModels};
use super::query::{self, Alternative, Concept, LangLexicon, SynonymGroup};
use super::render;

const TITLE_BOOST: f32 = 3.0;
const QUESTION_BOOST: f32 = 3.0;
const TAGS_BOOST: f32 = 2.0;
/// Weight of a question term found only in body text, relative to a strong-field match.
const BODY_MATCH_WEIGHT: f32 = 0.55;
/// How much of the ranking comes from confidence versus normalised BM25. BM25 favours
/// short FAQ phrasings over long articles, so it only breaks near-ties.
const RANK_CONFIDENCE_SHARE: f32 = 0.97;
const CANDIDATES: usize = 150;
/// Documents the phrase model proposes beyond the lexical candidates.
const MODEL_CANDIDATES: usize = 10;
/// Confidence mixes the share of the question covered with how much information was
/// matched in absolute terms (long questions with a few strong matches are answerable).
const COVERAGE_SHARE: f32 = 0.5;
/// IDF mass at which matched information counts as ~63% certain.
const INFORMATION_SCALE: f32 = 6.0;

/// Whether a hit is an FAQ entry or an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// An FAQ entry: its answer is the reply.
    Faq,
    /// An article: its summary is the reply, with a link.
    Article,
}

impl DocKind {
    /// Name used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Faq => "faq",
            Self::Article => "article",
        }
    }
}

/// A ranked search result with everything the bot needs to answer from it.
#[derive(Debug, Clone, PartialEq)]
pub struct KbHit {
    /// FAQ or article.
    pub kind: DocKind,
    /// FAQ id or article slug.
    pub id: String,
    /// Document language.
    pub lang: String,
    /// Article title or FAQ question.
    pub title: String,
    /// Server-relative URL of the full text.
    pub url: String,
    /// Plain-text reply: FAQ answer, or article summary/first paragraph.
    pub answer: String,
    /// 0..1, see the module docs.
    pub confidence: f32,
    /// Raw BM25 score, for diagnostics.
    pub bm25: f32,
}

/// Per-document data kept in memory for answering and confidence scoring.
#[derive(Debug)]
struct DocInfo {
    kind: DocKind,
    id: String,
    lang: String,
    title: String,
    url: String,
    answer: String,
    strong_terms: HashSet<String>,
    body_terms: HashSet<String>,
}

/// Per-language statistics and vocabulary for weighting and query planning.
#[derive(Default)]
struct LangStats {
    docs: u32,
    doc_freq: HashMap<String, u32>,
    /// Raw document word → analyzed term, for typo correction.
    vocabulary: HashMap<String, String>,
    /// The same keyed without accents.
    folded: HashMap<String, String>,
    synonyms: Vec<SynonymGroup>,
}

impl LangStats {
    fn idf(&self, term: &str) -> f32 {
        let n = self.docs as f32;
        let df = self.doc_freq.get(term).copied().unwrap_or(0) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// A concept weighs as much as its most common alternative that the documents use
    /// (a synonym the knowledge base uses makes an unknown word ordinary); a concept the
    /// documents never mention keeps the weight of an unseen word.
    fn concept_weight(&self, concept: &Concept) -> f32 {
        concept
            .alternatives
            .iter()
            .filter(|a| a.terms.iter().all(|t| self.doc_freq.contains_key(t)))
            .map(|a| a.terms.iter().map(|t| self.idf(t)).fold(0.0, f32::max))
            .reduce(f32::min)
            .unwrap_or_else(|| self.idf(""))
    }
}

/// A loaded knowledge base, ready to search; immutable, swapped whole on reload.
pub struct KnowledgeBase {
    content: KbContent,
    docs: HashMap<String, DocInfo>,
    stats: HashMap<String, LangStats>,
    fields: Fields,
    reader: IndexReader,
    index: Index,
    options: AnalysisOptions,
    /// Classifier over each language's phrasings, blended into the ranking (`phrase_model.rs`).
    phrase_models: PhraseModels,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase").field("docs", &self.docs.len()).finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// Loads content and opens (or rebuilds) its on-disk index in `index_dir`.
    /// Returns whether the index was rebuilt.
    ///
    /// # Errors
    /// When the index cannot be built or opened.
    pub fn open(content: KbContent, index_dir: &Path, options: AnalysisOptions) -> Result<(Self, bool), KbError> {
        let (index, fields, rebuilt) = index::open_or_build(&content, index_dir, options)?;
        Ok((Self::assemble(content, index, fields, options)?, rebuilt))
    }

    /// Builds everything in memory, for tests and content checks.
    ///
    /// # Errors
    /// When tantivy fails.
    pub fn in_ram(content: KbContent) -> Result<Self, KbError> {
        Self::in_ram_with(content, AnalysisOptions::default())
    }

    /// [`KnowledgeBase::in_ram`] with non-default analyzers (benchmarks compare them).
    ///
    /// # Errors
    /// When tantivy fails.
    pub fn in_ram_with(content: KbContent, options: AnalysisOptions) -> Result<Self, KbError> {
        let (index, fields) = index::build_in_ram(&content, options)?;
        Self::assemble(content, index, fields, options)
    }

    fn assemble(content: KbContent, index: Index, fields: Fields, options: AnalysisOptions) -> Result<Self, KbError> {
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut analyzers: HashMap<AnalyzerKind, TextAnalyzer> = HashMap::new();
        let mut docs = HashMap::new();
        for a in &content.articles {
            let analyzer = analyzers.entry(AnalyzerKind::for_lang(&a.lang)).or_insert_with_key(|k| k.build(options));
            let strong = format!("{}\n{}", a.title, a.tags.join("\n"));
            let body = format!("{}\n{}", a.summary.as_deref().unwrap_or_default(), a.body);
            docs.insert(index::article_key(&a.lang, &a.slug), article_info(a, analyzer, &strong, &body));
        }
        for f in &content.faqs {
            let analyzer = analyzers.entry(AnalyzerKind::for_lang(&f.lang)).or_insert_with_key(|k| k.build(options));
            docs.insert(index::faq_key(&f.lang, &f.id), faq_info(f, analyzer));
        }
        let mut stats: HashMap<String, LangStats> = HashMap::new();
        for doc in docs.values() {
            let s = stats.entry(analysis::search_group(&doc.lang).to_owned()).or_default();
            s.docs += 1;
            for term in doc.strong_terms.union(&doc.body_terms) {
                *s.doc_freq.entry(term.clone()).or_default() += 1;
            }
        }
        for (group, s) in &mut stats {
            let kind = AnalyzerKind::for_lang(group);
            s.synonyms = query::parse_synonyms(query::builtin_synonyms(kind), kind, options);
            for (lang, text) in &content.synonyms {
                if analysis::search_group(lang) == group {
                    s.synonyms.extend(query::parse_synonyms(text, kind, options));
                }
            }
            let analyzer = analyzers.entry(kind).or_insert_with_key(|k| k.build(options));
            let mut raw = kind.raw(options);
            let in_group = |lang: &str| analysis::search_group(lang) == group;
            let texts = content
                .articles
                .iter()
                .filter(|a| in_group(&a.lang))
                .map(|a| {
                    format!(
                        "{}\n{}\n{}\n{}",
                        a.title,
                        a.tags.join(" "),
                        a.summary.as_deref().unwrap_or_default(),
                        a.body
                    )
                })
                .chain(
                    content
                        .faqs
                        .iter()
                        .filter(|f| in_group(&f.lang))
                        .map(|f| format!("{}\n{}\n{}", f.question, f.also.join("\n"), f.answer)),
                );
            for text in texts {
                for word in query::raw_words(&mut raw, &text) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = s.vocabulary.entry(word) {
                        if let Some(term) = analysis::terms(analyzer, slot.key()).pop() {
                            slot.insert(term);
                        }
                    }
                }
            }
            // Accent-free lookup: the most frequent term wins for words that fold together.
            let mut words: Vec<(&String, &String)> = s.vocabulary.iter().collect();
            words.sort_by_key(|(word, term)| (std::cmp::Reverse(s.doc_freq.get(*term).copied().unwrap_or(0)), *word));
            for (word, term) in words {
                s.folded.entry(query::folded_key(word)).or_insert_with(|| term.clone());
            }
        }
        let phrase_models = PhraseModels::train(&content.faqs, &content.articles, |lang| {
            analyzers.entry(AnalyzerKind::for_lang(lang)).or_insert_with_key(|k| k.build(options)).clone()
        });
        Ok(Self { content, docs, stats, fields, reader, index, options, phrase_models })
    }

    /// The content this was built from.
    #[must_use]
    pub fn content(&self) -> &KbContent {
        &self.content
    }

    /// An article by language and slug.
    #[must_use]
    pub fn article(&self, lang: &str, slug: &str) -> Option<&Article> {
        self.content.articles.iter().find(|a| a.lang == lang && a.slug == slug)
    }

    /// The title of a document named `faq:<id>` or `article:<slug>` (an FAQ's question), in
    /// English when it exists there, else in the first language that has it.
    #[must_use]
    pub fn title_of(&self, doc: &str) -> Option<String> {
        let (kind, id) = doc.split_once(':')?;
        let english = |lang: &str| lang == crate::lang::DEFAULT_LANG;
        match kind {
            "faq" => {
                let all = self.content.faqs.iter().filter(|f| f.id == id);
                let mut found: Vec<&FaqEntry> = all.collect();
                found.sort_by_key(|f| !english(&f.lang));
                found.first().map(|f| f.question.clone())
            }
            "article" => {
                let mut found: Vec<&Article> = self.content.articles.iter().filter(|a| a.slug == id).collect();
                found.sort_by_key(|a| !english(&a.lang));
                found.first().map(|a| a.title.clone())
            }
            _ => None,
        }
    }

    /// FAQ entries of a language, in file order.
    #[must_use]
    pub fn faqs(&self, lang: &str) -> Vec<&FaqEntry> {
        self.content.faqs.iter().filter(|f| f.lang == lang).collect()
    }

    /// Articles of a language, sorted by title.
    #[must_use]
    pub fn articles(&self, lang: &str) -> Vec<&Article> {
        let mut list: Vec<&Article> = self.content.articles.iter().filter(|a| a.lang == lang).collect();
        list.sort_by(|a, b| a.title.cmp(&b.title));
        list
    }

    /// Number of indexed documents (articles plus FAQ entries).
    #[must_use]
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when there is nothing to search.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The analyzed terms of `text` as `lang` is searched (stemmed, without stop words);
    /// used to group similar questions.
    #[must_use]
    pub fn terms(&self, text: &str, lang: &str) -> Vec<String> {
        analysis::terms(&mut self.analyzer(lang), text)
    }

    /// The analyzer `lang` is searched with. Building one can be costly (Chinese carries
    /// a dictionary), so callers analysing many texts keep it.
    #[must_use]
    pub fn analyzer(&self, lang: &str) -> tantivy::tokenizer::TextAnalyzer {
        let kind = AnalyzerKind::for_lang(analysis::search_group(lang));
        self.index.tokenizers().get(&kind.tokenizer_name()).unwrap_or_else(|| kind.build(self.options))
    }

    /// The question without the words `lang`'s analyzer drops (function words, chat
    /// filler), keeping the rest as typed: what is left of a Polish question for an
    /// English search is its names, numbers and loanwords.
    #[must_use]
    pub fn without_function_words(&self, question: &str, lang: &str) -> String {
        let kind = AnalyzerKind::for_lang(analysis::search_group(lang));
        let mut raw = kind.raw(self.options);
        let mut analyzer =
            self.index.tokenizers().get(&kind.tokenizer_name()).unwrap_or_else(|| kind.build(self.options));
        query::raw_words(&mut raw, question)
            .into_iter()
            .filter(|w| !analysis::terms(&mut analyzer, w).is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The best documents of `lang` for a question, best first, at most `limit`.
    ///
    /// # Errors
    /// When the index cannot be searched.
    pub fn search(&self, question: &str, lang: &str, limit: usize) -> Result<Vec<KbHit>, KbError> {
        let group = analysis::search_group(lang);
        let Some(stats) = self.stats.get(group) else {
            return Ok(Vec::new());
        };
        let kind = AnalyzerKind::for_lang(group);
        let mut analyzer =
            self.index.tokenizers().get(&kind.tokenizer_name()).unwrap_or_else(|| kind.build(self.options));
        let lexicon = LangLexicon {
            synonyms: &stats.synonyms,
            vocabulary: &stats.vocabulary,
            folded: &stats.folded,
            doc_freq: &stats.doc_freq,
        };
        let concepts = query::plan(question, &mut kind.raw(self.options), &mut analyzer, &lexicon);
        if concepts.is_empty() {
            return Ok(Vec::new());
        }
        let searcher: Searcher = self.reader.searcher();
        let query = self.build_query(&concepts, group);
        let top = searcher.search(&query, &TopDocs::with_limit(CANDIDATES).order_by_score())?;
        let max_bm25 = top.first().map_or(1.0, |(s, _)| s.max(f32::EPSILON));
        let weights: Vec<(&Concept, f32)> = concepts.iter().map(|c| (c, stats.concept_weight(c))).collect();
        let mut seen = HashSet::new();
        let mut ranked: Vec<(f32, KbHit)> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for (bm25, address) in top {
            let stored: TantivyDocument = searcher.doc(address)?;
            let Some(key) = stored.get_first(self.fields.key).and_then(|v| v.as_str().map(str::to_owned)) else {
                continue;
            };
            if !seen.insert(key.clone()) {
                continue; // another phrasing of an FAQ already ranked higher
            }
            let Some(doc) = self.docs.get(&key) else { continue };
            let confidence = coverage(&weights, doc);
            let rank = RANK_CONFIDENCE_SHARE * confidence + (1.0 - RANK_CONFIDENCE_SHARE) * (bm25 / max_bm25);
            ranked.push((rank, hit(doc, confidence, bm25, lang)));
            keys.push(key);
        }
        // Phrase model (phrase_model.rs): the documents it finds likely join the
        // candidates, and its probability adds to their rank and their confidence.
        let predicted = self.phrase_models.predict(question, lang, &mut analyzer, MODEL_CANDIDATES);
        for (key, _) in &predicted {
            let Some(doc) = self.docs.get(*key) else { continue };
            if seen.insert((*key).to_owned()) {
                let confidence = coverage(&weights, doc);
                ranked.push((RANK_CONFIDENCE_SHARE * confidence, hit(doc, confidence, 0.0, lang)));
                keys.push((*key).to_owned());
            }
        }
        let probability: HashMap<&str, f32> = predicted.into_iter().collect();
        for ((rank, hit), key) in ranked.iter_mut().zip(&keys) {
            let p = probability.get(key.as_str()).copied().unwrap_or(0.0);
            *rank += phrase_model::RANK_WEIGHT * p;
            let evidence = self.phrase_models.beyond_chance(lang, p);
            hit.confidence = (hit.confidence + phrase_model::CONFIDENCE_WEIGHT * evidence).min(1.0);
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(ranked.into_iter().take(limit).map(|(_, h)| h).collect())
    }

    fn build_query(&self, concepts: &[Concept], lang: &str) -> BooleanQuery {
        let f = self.fields.for_lang(lang);
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for concept in concepts {
            for alternative in &concept.alternatives {
                for (field, boost) in
                    [(f.title, TITLE_BOOST), (f.question, QUESTION_BOOST), (f.tags, TAGS_BOOST), (f.body, 1.0)]
                {
                    let mut all: Vec<(Occur, Box<dyn Query>)> = alternative
                        .terms
                        .iter()
                        .map(|t| {
                            let q = TermQuery::new(Term::from_field_text(field, t), IndexRecordOption::WithFreqs);
                            (Occur::Must, Box::new(q) as Box<dyn Query>)
                        })
                        .collect();
                    let q: Box<dyn Query> =
                        if all.len() == 1 { all.remove(0).1 } else { Box::new(BooleanQuery::new(all)) };
                    should.push((Occur::Should, Box::new(BoostQuery::new(q, boost * alternative.boost))));
                }
            }
        }
        let lang_filter = TermQuery::new(Term::from_field_text(self.fields.lang, lang), IndexRecordOption::Basic);
        BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(should)) as Box<dyn Query>),
            (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(lang_filter), 0.0))),
        ])
    }
}

/// IDF-weighted share of the question's concepts that the document covers.
fn coverage(weights: &[(&Concept, f32)], doc: &DocInfo) -> f32 {
    let total: f32 = weights.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let anywhere = |a: &Alternative| a.terms.iter().all(|t| doc.body_terms.contains(t) || doc.strong_terms.contains(t));
    let covered: f32 = weights
        .iter()
        .map(|(concept, w)| {
            if concept.alternatives.iter().any(|a| a.terms.iter().all(|t| doc.strong_terms.contains(t))) {
                *w
            } else if concept.alternatives.iter().any(anywhere) {
                w * BODY_MATCH_WEIGHT
            } else {
                0.0
            }
        })
        .sum();
    let share = (covered / total).clamp(0.0, 1.0);
    COVERAGE_SHARE * share + (1.0 - COVERAGE_SHARE) * (1.0 - (-covered / INFORMATION_SCALE).exp())
}

/// A hit as the visitor reads it: Chinese is shown in the visitor's script.
fn hit(doc: &DocInfo, confidence: f32, bm25: f32, reader_lang: &str) -> KbHit {
    let readable = |text: &str| {
        if doc.lang != reader_lang && analysis::primary_subtag(reader_lang) == "zh" {
            chinese::to_script(text, reader_lang)
        } else {
            text.to_owned()
        }
    };
    KbHit {
        kind: doc.kind,
        id: doc.id.clone(),
        lang: doc.lang.clone(),
        title: readable(&doc.title),
        url: doc.url.clone(),
        answer: readable(&doc.answer),
        confidence,
        bm25,
    }
}

fn term_set(analyzer: &mut TextAnalyzer, text: &str) -> HashSet<String> {
    analysis::terms(analyzer, text).into_iter().collect()
}

fn article_info(a: &Article, analyzer: &mut TextAnalyzer, strong: &str, body: &str) -> DocInfo {
    let answer = a.summary.clone().unwrap_or_else(|| render::first_paragraph(&a.body));
    DocInfo {
        kind: DocKind::Article,
        id: a.slug.clone(),
        lang: a.lang.clone(),
        title: a.title.clone(),
        url: format!("/kb/{}/{}", a.lang, a.slug),
        answer,
        strong_terms: term_set(analyzer, strong),
        body_terms: term_set(analyzer, body),
    }
}

fn faq_info(f: &FaqEntry, analyzer: &mut TextAnalyzer) -> DocInfo {
    let phrasings = std::iter::once(f.question.as_str()).chain(f.also.iter().map(String::as_str)).collect::<Vec<_>>();
    DocInfo {
        kind: DocKind::Faq,
        id: f.id.clone(),
        lang: f.lang.clone(),
        title: f.question.clone(),
        url: format!("/kb/{}/faq#{}", f.lang, f.id),
        answer: render::markdown_to_plain(&f.answer),
        strong_terms: term_set(analyzer, &phrasings.join("\n")),
        body_terms: term_set(analyzer, &f.answer),
    }
}
