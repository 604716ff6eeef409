//! Turning a visitor's question into search concepts.
//!
//! A concept is one thing the question talks about, with the alternatives that count as
//! a match: the word itself (stemmed), its synonyms from the built-in and editor lists,
//! and, for a word the knowledge base never uses, close spellings that it does use (typo
//! tolerance). Coverage and the BM25 query are both built from concepts, so "send back a
//! package" matches a document that says "return a parcel".

use std::collections::HashMap;

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream,
};

use super::analysis::{self, AnalyzerKind};

/// Relative weight of a synonym match in BM25 ranking.
pub const SYNONYM_BOOST: f32 = 0.8;
/// Relative weight of a corrected-typo match in BM25 ranking.
pub const TYPO_BOOST: f32 = 0.6;
const MIN_TYPO_CHARS: usize = 5;

/// One way a concept can be present in a document: all of these analyzed terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternative {
    /// Analyzed terms that must all be present.
    pub terms: Vec<String>,
    /// Ranking weight relative to the visitor's own word.
    pub boost: f32,
}

/// Something the question is about; the first alternative is the visitor's own wording.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    /// Non-empty; first is the original.
    pub alternatives: Vec<Alternative>,
}

/// A synonym group, each member as raw (lowercased, folded) word sequences.
#[derive(Debug, Clone)]
pub struct SynonymGroup {
    members: Vec<Vec<String>>,
}

/// Parses synonym lines (`a, b c, d`) into groups; `#` starts a comment.
#[must_use]
pub fn parse_synonyms(text: &str, kind: AnalyzerKind) -> Vec<SynonymGroup> {
    let mut raw = raw_analyzer(kind);
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let members: Vec<Vec<String>> =
                line.split(',').map(|m| raw_words(&mut raw, m)).filter(|m| !m.is_empty()).collect();
            (members.len() >= 2).then_some(SynonymGroup { members })
        })
        .collect()
}

/// Built-in synonyms for a language family.
#[must_use]
pub fn builtin_synonyms(kind: AnalyzerKind) -> &'static str {
    match kind {
        AnalyzerKind::English => include_str!("synonyms/en.txt"),
        _ => "",
    }
}

/// Lowercased, accent-folded words, without stop-word removal or stemming.
#[must_use]
pub fn raw_analyzer(kind: AnalyzerKind) -> TextAnalyzer {
    let base = TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser);
    match kind {
        AnalyzerKind::Russian => base.build(),
        _ => base.filter(AsciiFoldingFilter).build(),
    }
}

/// The words of `text` in order (with repeats).
pub fn raw_words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// What the planner needs to know about a language's documents.
pub struct LangLexicon<'a> {
    /// Synonym groups (built-in and editor-owned).
    pub synonyms: &'a [SynonymGroup],
    /// Every raw word used in documents, with its analyzed term.
    pub vocabulary: &'a HashMap<String, String>,
    /// Document frequency per analyzed term.
    pub doc_freq: &'a HashMap<String, u32>,
}

/// Plans the concepts of a question.
pub fn plan(
    question: &str,
    kind: AnalyzerKind,
    analyzer: &mut TextAnalyzer,
    lexicon: &LangLexicon<'_>,
) -> Vec<Concept> {
    let mut raw = raw_analyzer(kind);
    let words = raw_words(&mut raw, question);
    let mut concepts: Vec<Concept> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some((len, group, member)) = longest_synonym_match(&words[i..], lexicon.synonyms) {
            let mut alternatives = Vec::new();
            for (m, member_words) in group.members.iter().enumerate() {
                let terms = analysis::terms(analyzer, &member_words.join(" "));
                if !terms.is_empty() && !alternatives.iter().any(|a: &Alternative| a.terms == terms) {
                    let boost = if m == member { 1.0 } else { SYNONYM_BOOST };
                    alternatives.push(Alternative { terms, boost });
                }
            }
            // The visitor's own wording first.
            alternatives.sort_by(|a, b| b.boost.total_cmp(&a.boost));
            push_concept(&mut concepts, alternatives);
            i += len;
            continue;
        }
        let word = &words[i];
        i += 1;
        let terms = analysis::terms(analyzer, word);
        let Some(term) = terms.into_iter().next() else { continue }; // a stop word
        let mut alternatives = vec![Alternative { terms: vec![term.clone()], boost: 1.0 }];
        if !lexicon.doc_freq.contains_key(&term) {
            alternatives.extend(typo_corrections(word, lexicon));
        }
        push_concept(&mut concepts, alternatives);
    }
    concepts
}

fn push_concept(concepts: &mut Vec<Concept>, alternatives: Vec<Alternative>) {
    if alternatives.is_empty() || concepts.iter().any(|c| c.alternatives[0] == alternatives[0]) {
        return;
    }
    concepts.push(Concept { alternatives });
}

/// (words consumed, group, index of the matching member) of the longest match at the start.
fn longest_synonym_match<'g>(words: &[String], groups: &'g [SynonymGroup]) -> Option<(usize, &'g SynonymGroup, usize)> {
    let mut best: Option<(usize, &SynonymGroup, usize)> = None;
    for group in groups {
        for (m, member) in group.members.iter().enumerate() {
            let len = member.len();
            if len <= words.len() && words[..len] == member[..] && best.is_none_or(|(l, _, _)| len > l) {
                best = Some((len, group, m));
            }
        }
    }
    best
}

/// Known words within one edit (two for long words) of an unknown word, most common first.
fn typo_corrections(word: &str, lexicon: &LangLexicon<'_>) -> Vec<Alternative> {
    let chars = word.chars().count();
    if chars < MIN_TYPO_CHARS || word.chars().any(|c| c.is_ascii_digit()) {
        return Vec::new();
    }
    let max_distance = if chars >= 8 { 2 } else { 1 };
    let mut candidates: Vec<(usize, u32, &String)> = lexicon
        .vocabulary
        .iter()
        .filter(|(known, _)| known.chars().count().abs_diff(chars) <= max_distance)
        .filter_map(|(known, term)| {
            let d = strsim::damerau_levenshtein(word, known);
            (d <= max_distance).then(|| (d, lexicon.doc_freq.get(term).copied().unwrap_or(0), term))
        })
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    let mut out: Vec<Alternative> = Vec::new();
    for (_, _, term) in candidates {
        if out.len() == 2 {
            break;
        }
        if !out.iter().any(|a| a.terms[0] == *term) {
            out.push(Alternative { terms: vec![term.clone()], boost: TYPO_BOOST });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon_words() -> (HashMap<String, String>, HashMap<String, u32>) {
        let mut analyzer = AnalyzerKind::English.build();
        let mut vocabulary = HashMap::new();
        let mut doc_freq = HashMap::new();
        for word in ["return", "parcel", "address", "change", "delivery"] {
            let term = analysis::terms(&mut analyzer, word).remove(0);
            doc_freq.insert(term.clone(), 3);
            vocabulary.insert(word.to_owned(), term);
        }
        (vocabulary, doc_freq)
    }

    #[test]
    fn synonyms_and_typos_become_alternatives() {
        let (vocabulary, doc_freq) = lexicon_words();
        let synonyms = parse_synonyms("parcel, package\nreturn, send back\n", AnalyzerKind::English);
        let lexicon = LangLexicon { synonyms: &synonyms, vocabulary: &vocabulary, doc_freq: &doc_freq };
        let mut analyzer = AnalyzerKind::English.build();
        let concepts =
            plan("how do I send back a package? chnage adress", AnalyzerKind::English, &mut analyzer, &lexicon);
        let firsts: Vec<Vec<String>> = concepts.iter().map(|c| c.alternatives[0].terms.clone()).collect();
        assert_eq!(firsts, [vec!["send", "back"], vec!["packag"], vec!["chnage"], vec!["adress"]]);
        assert_eq!(concepts[0].alternatives[1].terms, ["return"]);
        assert_eq!(concepts[1].alternatives[1].terms, ["parcel"]);
        assert_eq!(concepts[2].alternatives[1].terms, ["chang"], "transposition corrected");
        assert_eq!(concepts[3].alternatives[1].terms, ["address"], "missing letter corrected");
    }
}
