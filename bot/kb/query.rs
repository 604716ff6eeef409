//! Turning a visitor's question into search concepts.
//!
//! A concept is one thing the question talks about, with the alternatives that count as
//! a match: the word itself (stemmed), its synonyms from the built-in and editor lists,
//! and, for a word the knowledge base never uses, close spellings that it does use (typo
//! tolerance). Coverage and the BM25 query are both built from concepts, so "send back a
//! package" matches a document that says "return a parcel".

use std::collections::HashMap;

use tantivy::tokenizer::{TextAnalyzer, TokenStream};

use super::analysis::{self, AnalysisOptions, AnalyzerKind};

/// Relative weight of a synonym match in BM25 ranking.
pub const SYNONYM_BOOST: f32 = 0.8;
/// Relative weight of a word matched after removing accents ("zwrot pieniedzy").
pub const FOLDED_BOOST: f32 = 0.95;
/// Relative weight of the shorter words inside a compound the documents never use whole.
pub const PARTS_BOOST: f32 = 0.8;
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

/// A synonym group: each member as raw (lowercased) words, and as match keys (stems,
/// see [`match_key`]) so an inflected form in a question still triggers the group.
#[derive(Debug, Clone)]
pub struct SynonymGroup {
    members: Vec<Vec<String>>,
    keys: Vec<Vec<String>>,
}

/// What a question word is compared with synonym members by: its stem, or the word
/// itself when it is a stop word (so phrases like "send back" keep their little words).
pub fn match_key(analyzer: &mut TextAnalyzer, word: &str) -> String {
    analysis::terms(analyzer, word).pop().unwrap_or_else(|| word.to_owned())
}

/// Parses synonym lines (`a, b c, d`) into groups; `#` starts a comment.
#[must_use]
pub fn parse_synonyms(text: &str, kind: AnalyzerKind, options: AnalysisOptions) -> Vec<SynonymGroup> {
    let mut raw = kind.raw(options);
    let mut analyzer = kind.build(options);
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let members: Vec<Vec<String>> =
                line.split(',').map(|m| raw_words(&mut raw, m)).filter(|m| !m.is_empty()).collect();
            let keys = members.iter().map(|m| m.iter().map(|w| match_key(&mut analyzer, w)).collect()).collect();
            (members.len() >= 2).then_some(SynonymGroup { members, keys })
        })
        .collect()
}

/// Built-in synonyms for a language family.
#[must_use]
pub fn builtin_synonyms(kind: AnalyzerKind) -> &'static str {
    match kind {
        AnalyzerKind::English => include_str!("synonyms/en.txt"),
        AnalyzerKind::Russian => include_str!("synonyms/ru.txt"),
        AnalyzerKind::Polish => include_str!("synonyms/pl.txt"),
        AnalyzerKind::Chinese => include_str!("synonyms/zh.txt"),
        AnalyzerKind::Generic => "",
    }
}

/// The key under which a raw word is looked up ignoring accents.
#[must_use]
pub fn folded_key(word: &str) -> String {
    analysis::fold_polish(word)
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
    /// The same, keyed by [`folded_key`] (the most frequent term wins).
    pub folded: &'a HashMap<String, String>,
    /// Document frequency per analyzed term.
    pub doc_freq: &'a HashMap<String, u32>,
}

/// Plans the concepts of a question.
pub fn plan(
    question: &str,
    raw: &mut TextAnalyzer,
    analyzer: &mut TextAnalyzer,
    lexicon: &LangLexicon<'_>,
) -> Vec<Concept> {
    let words = raw_words(raw, question);
    let keys: Vec<String> = words.iter().map(|w| match_key(analyzer, w)).collect();
    let mut concepts: Vec<Concept> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some((len, group, member)) = longest_synonym_match(&keys[i..], lexicon.synonyms) {
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
        let mut terms = analysis::terms(analyzer, word);
        // One term per word, except compounds (Chinese) that also yield their parts: the
        // whole word comes last.
        let Some(term) = terms.pop() else { continue }; // a stop word
        let mut alternatives = vec![Alternative { terms: vec![term.clone()], boost: 1.0 }];
        if !lexicon.doc_freq.contains_key(&term) {
            if let Some(known) = lexicon.folded.get(&folded_key(word)).filter(|t| **t != term) {
                alternatives.push(Alternative { terms: vec![known.clone()], boost: FOLDED_BOOST });
            }
            let parts: Vec<String> = terms.into_iter().filter(|t| lexicon.doc_freq.contains_key(t)).collect();
            if !parts.is_empty() {
                alternatives.push(Alternative { terms: parts, boost: PARTS_BOOST });
            }
            if alternatives.len() == 1 {
                alternatives.extend(typo_corrections(word, lexicon));
            }
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

/// (words consumed, group, index of the matching member) of the longest match at the start,
/// comparing match keys.
fn longest_synonym_match<'g>(words: &[String], groups: &'g [SynonymGroup]) -> Option<(usize, &'g SynonymGroup, usize)> {
    let mut best: Option<(usize, &SynonymGroup, usize)> = None;
    for group in groups {
        for (m, member) in group.keys.iter().enumerate() {
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

    struct Lexicon {
        synonyms: Vec<SynonymGroup>,
        vocabulary: HashMap<String, String>,
        folded: HashMap<String, String>,
        doc_freq: HashMap<String, u32>,
    }

    fn lexicon(kind: AnalyzerKind, words: &[&str], synonyms: &str) -> Lexicon {
        let options = AnalysisOptions::default();
        let mut analyzer = kind.build(options);
        let mut lexicon = Lexicon {
            synonyms: parse_synonyms(synonyms, kind, options),
            vocabulary: HashMap::new(),
            folded: HashMap::new(),
            doc_freq: HashMap::new(),
        };
        for word in words {
            let term = analysis::terms(&mut analyzer, word).remove(0);
            lexicon.doc_freq.insert(term.clone(), 3);
            lexicon.folded.insert(folded_key(word), term.clone());
            lexicon.vocabulary.insert((*word).to_owned(), term);
        }
        lexicon
    }

    fn concepts(kind: AnalyzerKind, lexicon: &Lexicon, question: &str) -> Vec<Concept> {
        let options = AnalysisOptions::default();
        let view = LangLexicon {
            synonyms: &lexicon.synonyms,
            vocabulary: &lexicon.vocabulary,
            folded: &lexicon.folded,
            doc_freq: &lexicon.doc_freq,
        };
        plan(question, &mut kind.raw(options), &mut kind.build(options), &view)
    }

    #[test]
    fn synonyms_and_typos_become_alternatives() {
        let kind = AnalyzerKind::English;
        let lexicon = lexicon(
            kind,
            &["return", "parcel", "address", "change", "delivery"],
            "parcel, package\nreturn, send back\n",
        );
        let concepts = concepts(kind, &lexicon, "how do I send back a package? chnage adress");
        let firsts: Vec<Vec<String>> = concepts.iter().map(|c| c.alternatives[0].terms.clone()).collect();
        assert_eq!(firsts, [vec!["send", "back"], vec!["packag"], vec!["chnage"], vec!["adress"]]);
        assert_eq!(concepts[0].alternatives[1].terms, ["return"]);
        assert_eq!(concepts[1].alternatives[1].terms, ["parcel"]);
        assert_eq!(concepts[2].alternatives[1].terms, ["chang"], "transposition corrected");
        assert_eq!(concepts[3].alternatives[1].terms, ["address"], "missing letter corrected");
    }

    #[test]
    fn inflected_forms_trigger_synonyms() {
        let kind = AnalyzerKind::Russian;
        let lexicon = lexicon(kind, &["посылка"], "посылка, бандероль");
        let plain = concepts(kind, &lexicon, "где моя бандероль");
        assert!(plain.iter().any(|c| c.alternatives.len() == 2), "{plain:?}");
        let inflected = concepts(kind, &lexicon, "не вижу бандероли");
        assert!(inflected.iter().any(|c| c.alternatives.len() == 2), "{inflected:?}");
    }

    #[test]
    fn polish_words_typed_without_polish_letters_find_the_written_form() {
        let kind = AnalyzerKind::Polish;
        let lexicon = lexicon(kind, &["pieniędzy", "zwrot"], "");
        let concepts = concepts(kind, &lexicon, "zwrot pieniedzy");
        assert_eq!(concepts.len(), 2);
        let known = &lexicon.vocabulary["pieniędzy"];
        assert!(concepts[1].alternatives.iter().any(|a| a.terms == [known.clone()]), "{concepts:?}");
    }

    #[test]
    fn chinese_synonyms_match_across_scripts() {
        let kind = AnalyzerKind::Chinese;
        let lexicon = lexicon(kind, &["退款"], "退款, 退錢");
        let concepts = concepts(kind, &lexicon, "怎么退钱");
        assert!(
            concepts.iter().any(|c| c.alternatives.iter().any(|a| a.terms == ["退款"])),
            "a Simplified question reaches a Traditional synonym: {concepts:?}"
        );
    }
}
