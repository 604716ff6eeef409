//! Small-talk intents: greetings, thanks and goodbyes recognised by whole-message regexes.

use std::collections::BTreeMap;
use std::path::Path;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::{Catalog, FlowError, line_of, read_or_default, toml_error};

const BUILTIN: &str = include_str!("../../flows/smalltalk.toml");
const FILE: &str = "smalltalk.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    intent: Vec<RawIntent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    id: String,
    reply: String,
    patterns: BTreeMap<String, Vec<String>>,
}

/// One small-talk intent.
#[derive(Debug, Clone)]
pub struct SmalltalkIntent {
    /// Intent name (`greeting`, `thanks`, …).
    pub id: String,
    /// Catalog phrase to reply with.
    pub reply: String,
    patterns: BTreeMap<String, Vec<Regex>>,
}

/// All small-talk intents, tried in file order.
#[derive(Debug, Clone, Default)]
pub struct SmalltalkRules {
    intents: Vec<SmalltalkIntent>,
}

impl SmalltalkRules {
    /// Loads `smalltalk.toml`, compiling every pattern.
    ///
    /// # Errors
    /// Parse errors and invalid regexes, with line numbers.
    pub fn load(dir: &Path) -> Result<Self, Vec<FlowError>> {
        let (path, text) = read_or_default(dir, FILE, BUILTIN).map_err(|e| vec![e])?;
        let raw: RawFile = toml::from_str(&text).map_err(|e| vec![toml_error(&path, &text, &e)])?;
        let mut errors = Vec::new();
        let mut intents = Vec::new();
        for intent in raw.intent {
            let mut patterns = BTreeMap::new();
            for (lang, sources) in intent.patterns {
                let mut compiled = Vec::new();
                for source in sources {
                    match RegexBuilder::new(&source).case_insensitive(true).size_limit(1 << 20).build() {
                        Ok(re) => compiled.push(re),
                        Err(e) => errors.push(FlowError {
                            path: path.clone(),
                            line: text.find(&source).map(|b| line_of(&text, b)),
                            message: format!("intent {:?}, {lang}: invalid pattern: {e}", intent.id),
                        }),
                    }
                }
                patterns.insert(lang, compiled);
            }
            intents.push(SmalltalkIntent { id: intent.id, reply: intent.reply, patterns });
        }
        for (id, why) in super::REQUIRED_INTENTS {
            if !intents.iter().any(|i| i.id == *id) {
                errors.push(FlowError {
                    path: path.clone(),
                    line: Some(line_of(&text, text.len())),
                    message: format!("required intent {id:?} is missing ({why})"),
                });
            }
        }
        if errors.is_empty() { Ok(Self { intents }) } else { Err(errors) }
    }

    /// Every intent's reply must exist in the catalog.
    #[must_use]
    pub fn check_replies(&self, catalog: &Catalog) -> Vec<FlowError> {
        self.intents
            .iter()
            .filter(|i| !catalog.has(&i.reply))
            .map(|i| FlowError {
                path: FILE.into(),
                line: None,
                message: format!(
                    "intent {:?} replies with {:?}, which messages/en.toml does not define",
                    i.id, i.reply
                ),
            })
            .collect()
    }

    /// The intent a whole message expresses, trying `lang` first and then every language
    /// (a visitor who writes "thanks" on a Polish page still gets a reply).
    #[must_use]
    pub fn classify(&self, text: &str, lang: &str) -> Option<&SmalltalkIntent> {
        let text = text.trim();
        if text.chars().count() > 80 {
            return None;
        }
        let matches_in = |intent: &SmalltalkIntent, l: &str| {
            intent.patterns.get(l).is_some_and(|res| res.iter().any(|re| re.is_match(text)))
        };
        self.intents
            .iter()
            .find(|i| matches_in(i, lang))
            .or_else(|| self.intents.iter().find(|i| i.patterns.keys().any(|l| matches_in(i, l))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_message_small_talk_only() {
        let rules = SmalltalkRules::load(Path::new("/nonexistent")).expect("builtin");
        let id = |t: &str| rules.classify(t, "en").map(|i| i.id.as_str());
        assert_eq!(id("Hello!"), Some("greeting"));
        assert_eq!(id("good morning"), Some("greeting"));
        assert_eq!(id("Thanks a lot!"), Some("thanks"));
        assert_eq!(id("ok thank you"), Some("thanks"));
        assert_eq!(id("bye"), Some("goodbye"));
        assert_eq!(id("hi, where is my parcel?"), None);
        assert_eq!(id("thanks, but how do I return it?"), None);
    }
}
