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
}
