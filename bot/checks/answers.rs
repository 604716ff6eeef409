//! The knowledge base's own answer tests (`knowledge-base/tests/*.toml`): questions with
//! the document that must answer them, or `none` when the bot must admit it does not know.
//!
//! Used by the retrieval-quality test, by content checks and by benchmarks, so all of them
//! measure the same thing: what the bot would actually answer.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::AnswerPolicy;
use crate::engine::driver::{Ports, drive};
use crate::engine::{ConversationState, Event, LookupOutcome, SEARCH_LIMIT};
use crate::flows::BotScript;
use crate::ids::Seq;
use crate::kb::{KbError, KbHit, KnowledgeBase};

/// The `expect` value meaning "must fall back".
pub const EXPECT_NONE: &str = "none";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expect {
    One(String),
    Any(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    ask: String,
    lang: String,
    expect: Expect,
}

/// One question and what must answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerCase {
    /// The question, as a customer would write it.
    pub ask: String,
    /// Conversation language.
    pub lang: String,
    /// Acceptable FAQ ids / article slugs; empty means the bot must fall back.
    pub expect: Vec<String>,
    /// File it came from.
    pub file: PathBuf,
}

impl AnswerCase {
    /// True when the bot must not answer.
    #[must_use]
    pub fn expects_none(&self) -> bool {
        self.expect.is_empty()
    }
}

/// A test file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CaseFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Reads every `*.toml` under `dir`, sorted by name.
///
/// # Errors
/// The first unreadable or invalid file.
pub fn load_cases(dir: &Path) -> Result<Vec<AnswerCase>, CaseFileError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CaseFileError { path: dir.to_owned(), message: e.to_string() }),
    };
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).map_err(|e| CaseFileError { path: path.clone(), message: e.to_string() })?;
        let file: CaseFile =
            toml::from_str(&text).map_err(|e| CaseFileError { path: path.clone(), message: e.to_string() })?;
        for raw in file.case {
            let expect = match raw.expect {
                Expect::One(id) if id == EXPECT_NONE => Vec::new(),
                Expect::One(id) => vec![id],
                Expect::Any(ids) => ids,
            };
            cases.push(AnswerCase { ask: raw.ask, lang: raw.lang, expect, file: path.clone() });
        }
    }
    Ok(cases)
}

/// What the bot did with one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutcome {
    /// The case.
    pub case: AnswerCase,
    /// The id it answered from, or `None` for the fallback.
    pub answered: Option<String>,
    /// Best candidate and its confidence, answered or not (for calibration).
    pub best: Option<(String, f32)>,
    /// Whether the outcome is what the case expects.
    pub passed: bool,
}

/// Results of a run.
#[derive(Debug, Clone, Default)]
pub struct AnswerReport {
    /// Every case in order.
    pub outcomes: Vec<CaseOutcome>,
}

impl AnswerReport {
    fn share(outcomes: &[&CaseOutcome]) -> f64 {
        if outcomes.is_empty() {
            return 1.0;
        }
        outcomes.iter().filter(|o| o.passed).count() as f64 / outcomes.len() as f64
    }

    /// Share of answerable questions answered from an expected document (top-1 accuracy).
    #[must_use]
    pub fn answer_accuracy(&self) -> f64 {
        Self::share(&self.outcomes.iter().filter(|o| !o.case.expects_none()).collect::<Vec<_>>())
    }

    /// Share of out-of-scope questions that got the honest fallback.
    #[must_use]
    pub fn fallback_accuracy(&self) -> f64 {
        Self::share(&self.outcomes.iter().filter(|o| o.case.expects_none()).collect::<Vec<_>>())
    }

    /// Share of all cases passed.
    #[must_use]
    pub fn accuracy(&self) -> f64 {
        Self::share(&self.outcomes.iter().collect::<Vec<_>>())
    }

    /// Failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.outcomes.iter().filter(|o| !o.passed)
    }

    /// Accuracy over the cases of one language.
    #[must_use]
    pub fn accuracy_for(&self, lang: &str) -> (f64, usize) {
        let cases: Vec<&CaseOutcome> = self.outcomes.iter().filter(|o| o.case.lang == lang).collect();
        (Self::share(&cases), cases.len())
    }
}

/// Asks every case through the real search path and the engine's answer decision.
///
/// # Errors
/// When the index cannot be searched.
pub fn run_cases(
    kb: &KnowledgeBase,
    script: &BotScript,
    policy: &AnswerPolicy,
    cases: &[AnswerCase],
) -> Result<AnswerReport, KbError> {
    let mut report = AnswerReport::default();
    // The knowledge base is what is measured: scripted flows ("where is my order") aside.
    let kb_only = script.without_flows();
    for case in cases {
        let (answered, best) = ask(kb, &kb_only, policy, &case.ask, &case.lang)?;
        let passed = match &answered {
            None => case.expects_none(),
            Some(id) => case.expect.contains(id),
        };
        report.outcomes.push(CaseOutcome { case: case.clone(), answered, best, passed });
    }
    Ok(report)
}

/// What the bot answered (document id, if any) and the first search's best candidate.
pub type Asked = (Option<String>, Option<(String, f32)>);

/// Asks one question the way a visitor with this locale would, following the engine's
/// searches (including the English fallback); returns the answering document id and the
/// best candidate of the first search.
///
/// # Errors
/// When the index cannot be searched.
pub fn ask(
    kb: &KnowledgeBase,
    script: &BotScript,
    policy: &AnswerPolicy,
    question: &str,
    locale: &str,
) -> Result<Asked, KbError> {
    let state = ConversationState::new(Some(locale));
    let first = Event::VisitorText { seq: Seq(1), text: question.to_owned() };
    let mut ports = SearchPorts { kb, first_best: None };
    let step = drive(&state, first, script, policy, chrono::Utc::now(), &mut ports)?;
    let answered = step.replies().find_map(|r| r.extras.source.as_ref().map(|s| s.id.clone()));
    Ok((answered, ports.first_best.flatten()))
}

/// Searches the real index and remembers the first search's best candidate; orders are
/// not part of an answer test.
struct SearchPorts<'a> {
    kb: &'a KnowledgeBase,
    first_best: Option<Option<(String, f32)>>,
}

impl Ports for SearchPorts<'_> {
    type Error = KbError;

    fn search(&mut self, query: &str, lang: &str, asked_in: Option<&str>) -> Result<Vec<KbHit>, KbError> {
        let searched =
            asked_in.map_or_else(|| query.to_owned(), |visitor| self.kb.without_function_words(query, visitor));
        let hits = self.kb.search(&searched, lang, SEARCH_LIMIT)?;
        if self.first_best.is_none() {
            self.first_best = Some(hits.first().map(|h| (h.id.clone(), h.confidence)));
        }
        Ok(hits)
    }

    fn lookup_order(&mut self, _: &str, _: &str) -> Option<LookupOutcome> {
        Some(LookupOutcome::Unavailable)
    }
}
