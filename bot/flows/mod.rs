//! Conversation content that is data, not code: small-talk intents and the bot's
//! per-language message catalogs, read from the flows directory.
//!
//! Every file has an embedded default (the copy shipped in the repo), so the binary
//! works from any directory; files in `--flows-dir` take precedence.

mod catalog;
pub mod script;
mod smalltalk;

use std::path::{Path, PathBuf};

pub use catalog::Catalog;
pub use script::FlowSet;
pub use smalltalk::{SmalltalkIntent, SmalltalkRules};

/// Small-talk intent a visitor uses to ask for a person.
pub const HANDOFF_INTENT: &str = "handoff";
/// Small-talk intent that leaves a flow.
pub const CANCEL_INTENT: &str = "cancel";
/// The flow a delay notice runs.
pub const DELAY_FLOW: &str = "delay_notice";
/// The flow of a daily progress update.
pub const PROGRESS_FLOW: &str = "progress_update";

/// Intents the code acts on by id, with what breaks without them; loading fails if one is
/// missing.
pub const REQUIRED_INTENTS: [(&str, &str); 2] =
    [(HANDOFF_INTENT, "visitors could not ask for a person"), (CANCEL_INTENT, "visitors could not leave a flow")];

/// Flows the code starts by id, with what breaks without them.
pub const REQUIRED_FLOWS: [(&str, &str); 2] =
    [(DELAY_FLOW, "delay notices could not be sent"), (PROGRESS_FLOW, "daily progress updates could not be sent")];

/// A flows-directory file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FlowError {
    /// The file at fault.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

pub(crate) fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

pub(crate) fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> FlowError {
    FlowError { path: path.to_owned(), line: e.span().map(|s| line_of(text, s.start)), message: e.message().to_owned() }
}

/// Reads `rel` from the flows dir, or the embedded default when the file does not exist.
pub(crate) fn read_or_default(dir: &Path, rel: &str, default: &'static str) -> Result<(PathBuf, String), FlowError> {
    let path = dir.join(rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok((PathBuf::from(format!("<built-in {rel}>")), default.to_owned()))
        }
        Err(e) => Err(FlowError { path, line: None, message: format!("cannot read: {e}") }),
    }
}

/// Everything the engine needs from the flows directory.
#[derive(Debug, Clone)]
pub struct BotScript {
    /// Small-talk rules.
    pub smalltalk: SmalltalkRules,
    /// Bot phrases per language.
    pub catalog: Catalog,
    /// Scripted flows and the intents that start them.
    pub flows: FlowSet,
    /// Problems that do not stop loading (messages without a translation).
    pub warnings: Vec<FlowError>,
}

impl BotScript {
    /// Loads and validates the flows directory.
    ///
    /// # Errors
    /// Every problem found, each with file and line.
    pub fn load(dir: &Path) -> Result<Self, Vec<FlowError>> {
        let catalog = Catalog::load(dir);
        let smalltalk = SmalltalkRules::load(dir);
        match (catalog, smalltalk) {
            (Ok(catalog), Ok(smalltalk)) => {
                let mut errors = smalltalk.check_replies(&catalog);
                match FlowSet::load(dir, &catalog) {
                    Ok((flows, warnings)) if errors.is_empty() => Ok(Self { smalltalk, catalog, flows, warnings }),
                    Ok(_) => Err(errors),
                    Err(mut flow_errors) => {
                        errors.append(&mut flow_errors);
                        Err(errors)
                    }
                }
            }
            (c, s) => Err(c.err().into_iter().flatten().chain(s.err().into_iter().flatten()).collect()),
        }
    }

    /// The same script without flows: measures what the knowledge base alone answers.
    #[must_use]
    pub fn without_flows(&self) -> Self {
        Self { flows: FlowSet::default(), ..self.clone() }
    }

    /// The built-in defaults only (tests).
    ///
    /// # Errors
    /// Only if the embedded files are broken, which a unit test rules out.
    pub fn builtin() -> Result<Self, Vec<FlowError>> {
        Self::load(Path::new("/nonexistent-flows-dir"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_script_loads() {
        let script = BotScript::builtin().expect("embedded flows are valid");
        assert!(script.catalog.languages().contains(&"en".to_owned()));
    }

    #[test]
    fn repo_flows_dir_loads() {
        BotScript::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).expect("flows/ is valid");
    }

    /// A copy of the repo's flows directory with `edit` applied to one file's text.
    fn flows_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["smalltalk.toml", "order-tracking.toml"] {
            let text = std::fs::read_to_string(repo.join(name)).expect("read");
            let text = if name == file { edit(&text) } else { text };
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        std::fs::create_dir(dir.path().join("messages")).expect("mkdir");
        for entry in std::fs::read_dir(repo.join("messages")).expect("messages").flatten() {
            std::fs::copy(entry.path(), dir.path().join("messages").join(entry.file_name())).expect("copy");
        }
        dir
    }

    #[test]
    fn a_missing_handoff_intent_fails_loading_with_file_and_line() {
        let dir = flows_with("smalltalk.toml", |t| t.replace("id = \"handoff\"", "id = \"handoff_renamed\""));
        let errors = BotScript::load(dir.path()).expect_err("handoff intent is required");
        let e = errors.iter().find(|e| e.message.contains("required intent \"handoff\"")).expect("named");
        assert!(e.path.ends_with("smalltalk.toml"), "{e}");
        assert!(e.line.is_some_and(|l| l > 1), "{e}");
    }

    #[test]
    fn a_missing_notice_flow_fails_loading() {
        let dir = flows_with("order-tracking.toml", |t| t.replace("id = \"delay_notice\"", "id = \"delay_renamed\""));
        let errors = BotScript::load(dir.path()).expect_err("delay_notice flow is required");
        assert!(
            errors.iter().any(|e| e.message.contains("required flow \"delay_notice\"") && e.line.is_some()),
            "{errors:?}"
        );
    }
}
