//! `supportbot kb check`: validates a knowledge-base directory (`kb::check`) and runs its
//! answer tests through the engine's answer decision (`checks::answers`).

use std::path::Path;

use crate::engine::AnswerPolicy;
use crate::kb::KnowledgeBase;
use crate::kb::check::check_content;
use crate::kb::content::KbContent;

/// Outcome of the whole `kb check` command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckOutcome {
    /// Number of errors found.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// Answer-test accuracy, when there were tests.
    pub accuracy: Option<f64>,
    /// True when the check passes (no errors, accuracy at or above the floor).
    pub passed: bool,
}

/// Why `kb check` could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The directory could not be read.
    #[error("cannot read knowledge base {path}: {source}")]
    Read {
        /// The directory.
        path: std::path::PathBuf,
        /// IO error.
        source: std::io::Error,
    },
    /// Flows (for the answer decision) are invalid.
    #[error("invalid flows: {0}")]
    Flows(String),
    /// An answer-test file is invalid.
    #[error(transparent)]
    Cases(#[from] super::answers::CaseFileError),
    /// The index could not be built.
    #[error(transparent)]
    Index(#[from] crate::kb::KbError),
    /// Writing the report failed.
    #[error("cannot write report: {0}")]
    Output(#[from] std::io::Error),
}

/// Validates `kb_dir`, runs its answer tests, and writes a report for editors.
///
/// # Errors
/// When the check cannot run (unreadable directory, invalid test files, broken flows).
pub fn run_check(
    kb_dir: &Path,
    flows_dir: &Path,
    policy: &AnswerPolicy,
    min_accuracy: Option<f64>,
    out: &mut dyn std::io::Write,
) -> Result<CheckOutcome, CheckError> {
    let content = KbContent::load(kb_dir).map_err(|source| CheckError::Read { path: kb_dir.to_owned(), source })?;
    let report = check_content(&content);
    writeln!(
        out,
        "{}: {} articles, {} FAQ entries, languages: {}",
        kb_dir.display(),
        content.articles.len(),
        content.faqs.len(),
        content.languages().join(", ")
    )?;
    for e in &report.errors {
        writeln!(out, "error: {e}")?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let script = crate::flows::BotScript::load(flows_dir)
        .map_err(|errors| CheckError::Flows(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    let cases = super::answers::load_cases(&kb_dir.join("tests"))?;
    let mut accuracy = None;
    if !cases.is_empty() {
        let kb = KnowledgeBase::in_ram(content)?;
        let result = super::answers::run_cases(&kb, &script, policy, &cases)?;
        for f in result.failures() {
            let expected = if f.case.expects_none() { "no answer".to_owned() } else { f.case.expect.join(" or ") };
            let got = f.answered.as_deref().unwrap_or("no answer (fallback)");
            writeln!(out, "FAIL [{}] {:?}: expected {expected}, answered {got}", f.case.lang, f.case.ask)?;
        }
        let mut langs: Vec<&str> = cases.iter().map(|c| c.lang.as_str()).collect();
        langs.sort_unstable();
        langs.dedup();
        for lang in langs {
            let (acc, n) = result.accuracy_for(lang);
            writeln!(out, "answer tests [{lang}]: {acc:.3} of {n} cases")?;
        }
        writeln!(
            out,
            "answer tests: accuracy {:.3} ({} cases; answerable {:.3}, out-of-scope fallback {:.3})",
            result.accuracy(),
            cases.len(),
            result.answer_accuracy(),
            result.fallback_accuracy()
        )?;
        accuracy = Some(result.accuracy());
    } else {
        writeln!(out, "no answer tests in {}", kb_dir.join("tests").display())?;
    }
    let below_floor = matches!((accuracy, min_accuracy), (Some(a), Some(min)) if a < min);
    if below_floor {
        writeln!(out, "accuracy is below the required {:.3}", min_accuracy.unwrap_or_default())?;
    }
    let passed = report.errors.is_empty() && !below_floor;
    writeln!(
        out,
        "{}: {} errors, {} warnings",
        if passed { "ok" } else { "FAILED" },
        report.errors.len(),
        report.warnings.len()
    )?;
    Ok(CheckOutcome { errors: report.errors.len(), warnings: report.warnings.len(), accuracy, passed })
}
