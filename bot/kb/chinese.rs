//! Chinese text for search: one script, then words.
//!
//! Traditional and Simplified Chinese are the same language in two scripts (and with some
//! regional vocabulary), so documents and questions are both converted to Simplified
//! mainland usage with `zhconv` before segmentation: a question in either script then
//! matches an article written in the other. Segmentation is either dictionary-based
//! (`jieba`) or overlapping character bigrams; `docs/search.md` has the measurements that
//! chose the default.

use std::sync::LazyLock;

use jieba_rs::Jieba;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// How Chinese text is cut into index terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Segmentation {
    /// Dictionary words from jieba; documents also index the shorter words inside long
    /// compounds ("search mode") so a question using part of a compound still matches.
    Jieba,
    /// Overlapping character bigrams (a lone character stays a unigram): no dictionary,
    /// robust to unknown words and colloquial spellings. The default: it answered more
    /// calibration questions right than jieba (docs/search.md).
    #[default]
    Bigrams,
}

impl Segmentation {
    /// Short name, used in index fingerprints and benchmark output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Jieba => "jieba",
            Self::Bigrams => "bigrams",
        }
    }
}

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Converts Chinese text in either script to Simplified (mainland usage); other text is
/// returned unchanged.
#[must_use]
pub fn to_simplified(text: &str) -> String {
    if has_han(text) { zhconv::zhconv(text, zhconv::Variant::ZhCN) } else { text.to_owned() }
}

/// Converts Chinese text to the script a visitor reads (`zh-Hant` or `zh-Hans`).
#[must_use]
pub fn to_script(text: &str, lang: &str) -> String {
    if !has_han(text) {
        return text.to_owned();
    }
    match lang {
        "zh-Hant" => zhconv::zhconv(text, zhconv::Variant::ZhHant),
        _ => zhconv::zhconv(text, zhconv::Variant::ZhHans),
    }
}

pub use crate::lang::is_han;

/// True when the text contains any CJK ideograph.
#[must_use]
pub fn has_han(text: &str) -> bool {
    text.chars().any(is_han)
}

/// A tantivy tokenizer for Chinese (and the Latin words and numbers mixed into it).
#[derive(Debug, Clone, Copy)]
pub struct ChineseTokenizer {
    segmentation: Segmentation,
    /// For documents: also emit the words inside long compounds.
    for_index: bool,
}

impl ChineseTokenizer {
    /// A tokenizer for documents (`for_index`) or for visitors' words.
    #[must_use]
    pub fn new(segmentation: Segmentation, for_index: bool) -> Self {
        Self { segmentation, for_index }
    }

    /// The words of `text` (already converted to Simplified), in order.
    fn words(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        match self.segmentation {
            Segmentation::Jieba => {
                let tokens = if self.for_index { JIEBA.cut_for_search(text, true) } else { JIEBA.cut(text, true) };
                for token in tokens {
                    let word = token.word.trim();
                    if word.chars().any(char::is_alphanumeric) {
                        out.push(word.to_lowercase());
                    }
                }
            }
            Segmentation::Bigrams => {
                let chars: Vec<char> = text.chars().collect();
                let mut i = 0;
                while i < chars.len() {
                    let c = chars[i];
                    if is_han(c) {
                        let start = i;
                        while i < chars.len() && is_han(chars[i]) {
                            i += 1;
                        }
                        let run = &chars[start..i];
                        if run.len() == 1 {
                            out.push(run[0].to_string());
                        } else {
                            out.extend(run.windows(2).map(|w| w.iter().collect::<String>()));
                        }
                    } else if c.is_alphanumeric() {
                        let start = i;
                        while i < chars.len() && chars[i].is_alphanumeric() && !is_han(chars[i]) {
                            i += 1;
                        }
                        out.push(chars[start..i].iter().collect::<String>().to_lowercase());
                    } else {
                        i += 1;
                    }
                }
            }
        }
        out
    }
}

/// The token stream of [`ChineseTokenizer`]: words are computed up front.
pub struct ChineseTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for ChineseTokenizer {
    type TokenStream<'a> = ChineseTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let simplified = to_simplified(text);
        let tokens = self
            .words(&simplified)
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token { offset_from: 0, offset_to: 0, position, text, position_length: 1 })
            .collect();
        ChineseTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for ChineseTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(segmentation: Segmentation, for_index: bool, text: &str) -> Vec<String> {
        let mut tokenizer = ChineseTokenizer::new(segmentation, for_index);
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn traditional_and_simplified_give_the_same_words() {
        for seg in [Segmentation::Jieba, Segmentation::Bigrams] {
            assert_eq!(words(seg, false, "我的包裹還沒到，怎麼辦？"), words(seg, false, "我的包裹还没到，怎么办？"));
            assert_eq!(words(seg, true, "退貨運費"), words(seg, true, "退货运费"));
        }
    }

    #[test]
    fn bigrams_overlap_and_latin_words_stay_whole() {
        assert_eq!(words(Segmentation::Bigrams, false, "退货 Klarna 付款"), ["退货", "klarna", "付款"]);
        assert_eq!(words(Segmentation::Bigrams, false, "运费多少"), ["运费", "费多", "多少"]);
    }

    #[test]
    fn jieba_cuts_words_and_skips_punctuation() {
        let cut = words(Segmentation::Jieba, false, "退货要付运费吗？");
        assert!(cut.contains(&"退货".to_owned()), "{cut:?}");
        assert!(cut.contains(&"运费".to_owned()), "{cut:?}");
        assert!(!cut.iter().any(|w| w == "？"), "{cut:?}");
    }

    #[test]
    fn script_conversion_for_readers() {
        assert_eq!(to_script("退貨運費", "zh-Hans"), "退货运费");
        assert_eq!(to_script("退货运费", "zh-Hant"), "退貨運費");
        assert_eq!(to_script("no change", "zh-Hant"), "no change");
    }
}
