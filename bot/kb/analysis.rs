//! Text analysis per language: how article text and visitor questions become index terms.
//!
//! Each language family gets its own tantivy tokenizer (and its own set of index fields),
//! because stemming and stop words only make sense per language. Questions are analysed
//! with the same analyzer as the documents they are matched against.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    Token, TokenFilter, TokenStream, Tokenizer, TokenizerManager,
};

use super::chinese::{self, ChineseTokenizer, Segmentation};

/// A family of languages that share one analyzer and one set of index fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnalyzerKind {
    /// English: stop words and Snowball stemming.
    English,
    /// Russian: stop words, `ё` folded to `е`, Snowball stemming.
    Russian,
    /// Polish: stop words and stemming (see [`PolishStemming`]), then accent folding so
    /// questions typed without Polish letters still match.
    Polish,
    /// Chinese in either script: converted to Simplified, then segmented.
    Chinese,
    /// Any other language: lowercasing and accent folding only.
    Generic,
}

/// How Polish words are reduced to stems; tantivy has no Polish stemmer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PolishStemming {
    /// The Snowball Polish algorithm (Snowball 3), through the `snowstem` crate.
    #[default]
    Snowball,
    /// Keep the first six letters: crude, but Polish inflection is mostly in endings.
    Prefix6,
    /// No stemming: inflected forms only match through typo tolerance.
    None,
}

impl PolishStemming {
    /// Short name, used in index fingerprints and benchmark output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Snowball => "snowball",
            Self::Prefix6 => "prefix6",
            Self::None => "none",
        }
    }
}

/// Choices between analyzers where more than one is reasonable; the defaults are the
/// measured best (`docs/search.md`). Part of the index fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AnalysisOptions {
    /// Polish stemming.
    pub polish: PolishStemming,
    /// Chinese segmentation.
    pub chinese: Segmentation,
}

impl AnalysisOptions {
    /// Stable description for fingerprints.
    #[must_use]
    pub fn key(self) -> String {
        format!("pl={},zh={}", self.polish.name(), self.chinese.name())
    }
}

impl AnalyzerKind {
    /// Every analyzer, in schema order.
    pub const ALL: [Self; 5] = [Self::English, Self::Russian, Self::Polish, Self::Chinese, Self::Generic];

    /// The analyzer for a language code (`en`, `en-GB`, `ru`, `zh-Hant`, …).
    #[must_use]
    pub fn for_lang(lang: &str) -> Self {
        match primary_subtag(lang) {
            "en" => Self::English,
            "ru" => Self::Russian,
            "pl" => Self::Polish,
            "zh" => Self::Chinese,
            _ => Self::Generic,
        }
    }

    /// Short key used in field and tokenizer names.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::Russian => "ru",
            Self::Polish => "pl",
            Self::Chinese => "zh",
            Self::Generic => "xx",
        }
    }

    /// Name under which the tokenizer is registered with tantivy.
    #[must_use]
    pub fn tokenizer_name(self) -> String {
        format!("kb_{}", self.key())
    }

    /// Builds the analyzer for documents and questions.
    #[must_use]
    pub fn build(self, options: AnalysisOptions) -> TextAnalyzer {
        let base =
            TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser);
        match self {
            Self::English => base
                .filter(AsciiFoldingFilter)
                .filter(StopWordFilter::remove(stop_words(include_str!("stopwords/en.txt"))))
                .filter(Stemmer::new(Language::English))
                .build(),
            Self::Russian => base
                .filter(MapFilter(fold_yo))
                .filter(StopWordFilter::remove(stop_words(&fold_yo_all(include_str!("stopwords/ru.txt")))))
                .filter(Stemmer::new(Language::Russian))
                .build(),
            Self::Polish => {
                let stemmer = match options.polish {
                    PolishStemming::Snowball => stem_polish as fn(&mut String),
                    PolishStemming::Prefix6 => keep_prefix6,
                    PolishStemming::None => keep,
                };
                base.filter(StopWordFilter::remove(polish_stop_words()))
                    .filter(MapFilter(stemmer))
                    .filter(AsciiFoldingFilter)
                    .build()
            }
            Self::Chinese => TextAnalyzer::builder(ChineseTokenizer::new(options.chinese, true))
                .filter(StopWordFilter::remove(chinese_stop_words()))
                .build(),
            Self::Generic => base.filter(AsciiFoldingFilter).build(),
        }
    }

    /// Lowercased words without stop-word removal or stemming, for synonym matching,
    /// typo tolerance and the vocabulary.
    #[must_use]
    pub fn raw(self, options: AnalysisOptions) -> TextAnalyzer {
        let base =
            TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser);
        match self {
            Self::Russian => base.filter(MapFilter(fold_yo)).build(),
            Self::Polish => base.build(),
            Self::Chinese => TextAnalyzer::builder(ChineseTokenizer::new(options.chinese, false)).build(),
            Self::English | Self::Generic => base.filter(AsciiFoldingFilter).build(),
        }
    }
}

pub use crate::lang::primary_subtag;

/// The language key documents are grouped and searched under: Chinese in either script is
/// one searchable language; otherwise the primary subtag.
#[must_use]
pub fn search_group(lang: &str) -> &str {
    primary_subtag(lang)
}

fn stop_words(list: &str) -> Vec<String> {
    list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Polish stop words as written and without Polish letters, since visitors type both.
fn polish_stop_words() -> Vec<String> {
    let mut words = stop_words(include_str!("stopwords/pl.txt"));
    let folded: Vec<String> = words.iter().map(|w| fold_polish(w)).collect();
    words.extend(folded);
    words.sort();
    words.dedup();
    words
}

/// Chinese stop words in Simplified script (the script text is converted to).
fn chinese_stop_words() -> Vec<String> {
    let mut words: Vec<String> =
        stop_words(include_str!("stopwords/zh.txt")).iter().map(|w| chinese::to_simplified(w)).collect();
    words.sort();
    words.dedup();
    words
}

fn fold_yo_all(text: &str) -> String {
    text.replace('ё', "е")
}

fn fold_yo(word: &mut String) {
    if word.contains('ё') {
        *word = word.replace('ё', "е");
    }
}

/// Replaces Polish letters with their base Latin letters.
#[must_use]
pub fn fold_polish(word: &str) -> String {
    word.chars()
        .map(|c| match c {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            other => other,
        })
        .collect()
}

fn stem_polish(word: &mut String) {
    let stem = snowstem::Stemmer::create(snowstem::Algorithm::Polish).stem(word).into_owned();
    *word = stem;
}

fn keep_prefix6(word: &mut String) {
    if let Some((i, _)) = word.char_indices().nth(6) {
        word.truncate(i);
    }
}

fn keep(_: &mut String) {}

/// A token filter that rewrites each token's text in place.
#[derive(Clone, Copy)]
struct MapFilter(fn(&mut String));

/// [`MapFilter`] applied to a tokenizer.
#[derive(Clone)]
struct MapTokenizer<T> {
    inner: T,
    map: fn(&mut String),
}

struct MapStream<S> {
    inner: S,
    map: fn(&mut String),
}

impl TokenFilter for MapFilter {
    type Tokenizer<T: Tokenizer> = MapTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MapTokenizer<T> {
        MapTokenizer { inner: tokenizer, map: self.0 }
    }
}

impl<T: Tokenizer> Tokenizer for MapTokenizer<T> {
    type TokenStream<'a> = MapStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MapStream { inner: self.inner.token_stream(text), map: self.map }
    }
}

impl<S: TokenStream> TokenStream for MapStream<S> {
    fn advance(&mut self) -> bool {
        if !self.inner.advance() {
            return false;
        }
        (self.map)(&mut self.inner.token_mut().text);
        true
    }

    fn token(&self) -> &Token {
        self.inner.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.inner.token_mut()
    }
}

/// Registers every analyzer with an index's tokenizer manager.
pub fn register(manager: &TokenizerManager, options: AnalysisOptions) {
    for kind in AnalyzerKind::ALL {
        manager.register(&kind.tokenizer_name(), kind.build(options));
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
        let mut en = AnalyzerKind::English.build(AnalysisOptions::default());
        assert_eq!(terms(&mut en, "Hi! How can I return my shoes, please?"), ["return", "shoe"]);
        assert_eq!(terms(&mut en, "Refunds refunded refunding"), ["refund"]);
    }

    #[test]
    fn language_codes_pick_analyzers() {
        assert_eq!(AnalyzerKind::for_lang("en-GB"), AnalyzerKind::English);
        assert_eq!(AnalyzerKind::for_lang("ru"), AnalyzerKind::Russian);
        assert_eq!(AnalyzerKind::for_lang("pl"), AnalyzerKind::Polish);
        assert_eq!(AnalyzerKind::for_lang("zh-Hant"), AnalyzerKind::Chinese);
        assert_eq!(AnalyzerKind::for_lang("de"), AnalyzerKind::Generic);
    }

    #[test]
    fn polish_inflections_share_a_stem_with_or_without_polish_letters() {
        let mut pl = AnalyzerKind::Polish.build(AnalysisOptions::default());
        let paczka = terms(&mut pl, "paczka");
        assert_eq!(terms(&mut pl, "paczki"), paczka);
        assert_eq!(terms(&mut pl, "paczkę"), terms(&mut pl, "paczke"));
    }

    #[test]
    fn russian_stems_and_folds_yo() {
        let mut ru = AnalyzerKind::Russian.build(AnalysisOptions::default());
        assert_eq!(terms(&mut ru, "посылки"), terms(&mut ru, "посылка"));
        assert_eq!(terms(&mut ru, "пришёл"), terms(&mut ru, "пришел"));
    }
}
