//! Per-language catalogs of the bot's own phrases (`messages/<lang>.toml`).

use std::collections::BTreeMap;
use std::path::Path;

use super::{FlowError, read_or_default, toml_error};

/// Phrases every catalog must define, so no language ever shows a key instead of text.
pub const REQUIRED_PHRASES: &[&str] = &[
    "welcome",
    "fallback",
    "fallback_with_articles",
    "talk_to_person",
    "handoff_requested",
    "handoff_already",
    "handoff_queued",
    "handoff_agent_joined",
    "handoff_transferred",
    "handoff_handed_back",
    "handoff_closed",
    "handoff_requeued",
    "handoff_left_queue",
    "handoff_offline",
    "handoff_offline_back_at",
    "offline_ask_channel",
    "offline_channel_email",
    "offline_channel_phone",
    "offline_ask_email",
    "offline_ask_phone",
    "offline_bad_email",
    "offline_bad_phone",
    "offline_ask_details",
    "offline_filed_email",
    "offline_filed_phone",
    "offline_cancelled",
    "queue_leave",
    "queue_leave_contact",
];

const BUILTIN: &[(&str, &str)] = &[("en", include_str!("../../flows/messages/en.toml"))];

/// Bot phrases for every language, falling back to English.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_lang: BTreeMap<String, BTreeMap<String, String>>,
}

impl Catalog {
    /// Loads `messages/*.toml` from the flows dir (plus embedded languages not present there).
    ///
    /// # Errors
    /// Unparseable files and missing required phrases.
    pub fn load(dir: &Path) -> Result<Self, Vec<FlowError>> {
        let mut catalog = Self::default();
        let mut errors = Vec::new();
        let mut langs: Vec<String> = BUILTIN.iter().map(|(l, _)| (*l).to_owned()).collect();
        if let Ok(entries) = std::fs::read_dir(dir.join("messages")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "toml") {
                    if let Some(stem) = path.file_stem() {
                        langs.push(stem.to_string_lossy().into_owned());
                    }
                }
            }
        }
        langs.sort();
        langs.dedup();
        for lang in langs {
            let default = BUILTIN.iter().find(|(l, _)| *l == lang).map_or("", |(_, t)| *t);
            let (path, text) = match read_or_default(dir, &format!("messages/{lang}.toml"), default) {
                Ok(found) => found,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match toml::from_str::<BTreeMap<String, String>>(&text) {
                Ok(phrases) => {
                    for key in REQUIRED_PHRASES {
                        if !phrases.contains_key(*key) {
                            errors.push(FlowError {
                                path: path.clone(),
                                line: None,
                                message: format!("missing required phrase {key:?}"),
                            });
                        }
                    }
                    catalog.by_lang.insert(lang, phrases);
                }
                Err(e) => errors.push(toml_error(&path, &text, &e)),
            }
        }
        if errors.is_empty() { Ok(catalog) } else { Err(errors) }
    }

    /// Languages with a catalog.
    #[must_use]
    pub fn languages(&self) -> Vec<String> {
        self.by_lang.keys().cloned().collect()
    }

    /// True when `key` exists in English (the fallback for every language).
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.by_lang.get("en").is_some_and(|p| p.contains_key(key))
    }

    /// True when `lang`'s own catalog has `key` (no fallback).
    #[must_use]
    pub fn has_in(&self, lang: &str, key: &str) -> bool {
        self.by_lang.get(lang).is_some_and(|p| p.contains_key(key))
    }

    /// The widget's labels (`ui_*` phrases, without the prefix) in `lang`, English where a
    /// catalog lacks one.
    #[must_use]
    pub fn ui_strings(&self, lang: &str) -> std::collections::BTreeMap<String, String> {
        let keys =
            self.by_lang.get("en").map(|p| p.keys().filter(|k| k.starts_with("ui_")).cloned().collect::<Vec<_>>());
        keys.unwrap_or_default()
            .into_iter()
            .map(|key| {
                let text = self.text(lang, &key, &[]);
                (key.trim_start_matches("ui_").to_owned(), text)
            })
            .collect()
    }

    /// Replaces one phrase in memory (a script whose wording a test controls).
    pub fn set_phrase(&mut self, lang: &str, key: &str, text: &str) {
        self.by_lang.entry(lang.to_owned()).or_default().insert(key.to_owned(), text.to_owned());
    }

    /// The phrase in `lang` (or its primary subtag, or English), placeholders filled.
    #[must_use]
    pub fn text(&self, lang: &str, key: &str, args: &[(&str, &str)]) -> String {
        let primary = crate::kb::analysis::primary_subtag(lang);
        let template = [lang, primary, "en"]
            .iter()
            .find_map(|l| self.by_lang.get(*l).and_then(|p| p.get(key)))
            .map_or(key, String::as_str);
        let mut text = template.to_owned();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_to_english_and_fills_placeholders() {
        let mut catalog = Catalog::default();
        catalog.by_lang.insert("en".into(), BTreeMap::from([("hi".into(), "Hello {name}".into())]));
        assert_eq!(catalog.text("pl", "hi", &[("name", "Ola")]), "Hello Ola");
        assert_eq!(catalog.text("en", "missing", &[]), "missing");
    }
}
