//! Text analysis per language: how article text and visitor questions become index terms.
//!
//! Each language family gets its own tantivy tokenizer (and its own set of index fields),
//! because stemming and stop words only make sense per language. Questions are analysed
//! with the same analyzer as the documents they are matched against.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    TokenStream, TokenizerManager,
};

/// A family of languages that share one analyzer and one set of index fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnalyzerKind {
    /// English: stop words and Snowball stemming.
    English,
    /// Russian: Snowball stemming.
    Russian,
    /// Any other language: lowercasing and accent folding only.
    Generic,
}

impl AnalyzerKind {
    /// Every analyzer, in schema order.
    pub const ALL: [Self; 3] = [Self::English, Self::Russian, Self::Generic];

    /// The analyzer for a language code (`en`, `en-GB`, `ru`, …).
    #[must_use]
    pub fn for_lang(lang: &str) -> Self {
        match primary_subtag(lang) {
            "en" => Self::English,
            "ru" => Self::Russian,
            _ => Self::Generic,
        }
    }

    /// Short key used in field and tokenizer names.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::Russian => "ru",
            Self::Generic => "xx",
        }
    }

    /// Name under which the tokenizer is registered with tantivy.
    #[must_use]
    pub fn tokenizer_name(self) -> String {
        format!("kb_{}", self.key())
    }

    /// Builds the analyzer.
    #[must_use]
    pub fn build(self) -> TextAnalyzer {
        let base =
            TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser);
        match self {
            Self::English => base
                .filter(AsciiFoldingFilter)
                .filter(StopWordFilter::remove(stop_words(include_str!("stopwords/en.txt"))))
                .filter(Stemmer::new(Language::English))
                .build(),
            Self::Russian => base.filter(Stemmer::new(Language::Russian)).build(),
            Self::Generic => base.filter(AsciiFoldingFilter).build(),
        }
    }
}

/// `zh-Hant` → `zh`, `en_GB` → `en`.
#[must_use]
pub fn primary_subtag(lang: &str) -> &str {
    lang.split(['-', '_']).next().unwrap_or(lang)
}

fn stop_words(list: &str) -> Vec<String> {
    list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Registers every analyzer with an index's tokenizer manager.
pub fn register(manager: &TokenizerManager) {
    for kind in AnalyzerKind::ALL {
        manager.register(&kind.tokenizer_name(), kind.build());
    }
}

/// The distinct terms of `text`, in first-seen order.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let term = &stream.token().text;
        if !out.iter().any(|t| t == term) {
            out.push(term.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_drops_filler_and_stems() {
        let mut en = AnalyzerKind::English.build();
        assert_eq!(terms(&mut en, "Hi! How can I return my shoes, please?"), ["return", "shoe"]);
        assert_eq!(terms(&mut en, "Refunds refunded refunding"), ["refund"]);
    }

    #[test]
    fn language_codes_pick_analyzers() {
        assert_eq!(AnalyzerKind::for_lang("en-GB"), AnalyzerKind::English);
        assert_eq!(AnalyzerKind::for_lang("ru"), AnalyzerKind::Russian);
        assert_eq!(AnalyzerKind::for_lang("pl"), AnalyzerKind::Generic);
    }
}
