//! A small text classifier over a knowledge base's phrasings, trained when it loads.
//!
//! The lexical search ranks an FAQ entry by its single closest phrasing (BM25) and by how
//! much of the question its words cover. When editors give an entry many phrasings, that
//! throws information away: which words are typical of the entry as a whole, and which
//! words tell two similar entries apart. This model learns exactly that from the
//! knowledge base itself (no outside data or model files, any language):
//!
//! - **Classes**: the documents of one language: each FAQ entry (its `question` and
//!   `also` phrasings) and each article (its title, tags, summary and the sentences of
//!   its body). Articles take part so that the model does not pull every question
//!   towards FAQ entries, and with their body sentences so that it knows their words.
//! - **Features**: TF-IDF (sublinear term frequency; the word and character blocks each
//!   L2-normalised, then the whole) over the analyzed word terms and their bigrams (the
//!   language's search analyzer), the words as written and their bigrams (stop words
//!   kept: "why was" and "how do" tell a complaint from a how-to), plus character n-grams
//!   within words (2–4 characters, with word-boundary markers; single characters too for
//!   scripts written without spaces, such as Chinese). Character n-grams cover typos,
//!   inflection (Polish, Russian) and languages without a word splitter.
//! - **Model**: multinomial logistic regression trained by plain SGD with L2
//!   regularisation (`C` = 30), 20 passes in a fixed seeded order: deterministic.
//!   While features × classes stays under [`DENSE_BUDGET`] (16 MB of weights) every class
//!   weighs every feature; beyond that a class keeps weights only for the features of its
//!   own phrasings (memory grows with the text, not with classes × vocabulary). Training
//!   work is bounded (about a second per language; languages train in parallel): fewer
//!   passes when a pass is expensive, down to two, and below that the features shared by
//!   the most classes are dropped.
//!
//! [`PhraseModels::predict`] gives a probability per document; `search.rs` adds
//! [`RANK_WEIGHT`] × probability to the lexical ranking score and
//! [`CONFIDENCE_WEIGHT`] × the probability above chance to the lexical confidence.

use std::collections::HashMap;

use super::analysis::search_group;
use super::content::{Article, FaqEntry};
use super::index::{article_key, faq_key};
use super::render::markdown_to_plain;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream,
};

/// Character n-gram lengths within a word (with boundary markers).
const CHAR_NGRAMS: std::ops::RangeInclusive<usize> = 2..=4;
/// Weight of the word block relative to the character block (each is L2-normalised first).
const WORD_BLOCK_WEIGHT: f32 = 1.0;
/// Inverse regularisation strength, as in the usual `C` of logistic regression.
const C: f32 = 30.0;
/// Passes over the phrasings.
const EPOCHS: usize = 20;
/// Fewest passes, however large the knowledge base.
const MIN_EPOCHS: usize = 2;
/// Passes are limited to about this many weight updates in all (about a second).
const WORK_BUDGET: usize = 1_000_000_000;
/// A sparse weight update costs about this many dense (vectorised) ones.
const SPARSE_UPDATE_COST: usize = 4;
/// Initial SGD step.
const LEARNING_RATE: f32 = 0.5;
/// Up to this many weights (features × classes), every class weighs every feature.
pub const DENSE_BUDGET: usize = 4_000_000;
const SEED: u64 = 0x5eed_f00d;

/// A sparse vector: (feature id, value), ids ascending.
type Sparse = Vec<(u32, f32)>;

/// The distinct features of a text with their counts. A feature's text starts with `w`
/// (word block) or `c` (character block).
type RawFeatures = Vec<(String, u32)>;

/// Turns text into TF-IDF feature vectors.
#[derive(Debug)]
struct Featurizer {
    ids: HashMap<String, u32>,
    /// Per feature id: inverse document frequency; whether it is a word feature.
    idf: Vec<(f32, bool)>,
}

/// The features of a text: analyzed words and their bigrams, words as written (with stop
/// words) and their bigrams, character n-grams of written words.
fn raw_features(text: &str, analyzer: &mut TextAnalyzer, raw: &mut TextAnalyzer) -> RawFeatures {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut previous: Option<String> = None;
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let term = &stream.token().text;
        if let Some(p) = previous.take() {
            *counts.entry(format!("w{p} {term}")).or_default() += 1;
        }
        *counts.entry(format!("w{term}")).or_default() += 1;
        previous = Some(term.clone());
    }
    // Both Chinese scripts give the same character features.
    let text = super::chinese::to_simplified(text);
    let mut stream = raw.token_stream(&text);
    let mut gram = String::new();
    let mut previous: Option<String> = None;
    while stream.advance() {
        let written = &stream.token().text;
        // Words as written; a run of Chinese characters is no word (the analyzer splits it).
        if written.chars().any(written_without_spaces) {
            previous = None;
        } else {
            if let Some(p) = previous.take() {
                *counts.entry(format!("w={p} {written}")).or_default() += 1;
            }
            *counts.entry(format!("w={written}")).or_default() += 1;
            previous = Some(written.clone());
        }
        let word: Vec<char> =
            std::iter::once(' ').chain(stream.token().text.chars()).chain(std::iter::once(' ')).collect();
        for n in CHAR_NGRAMS {
            for chars in word.windows(n) {
                gram.clear();
                gram.push('c');
                gram.extend(chars);
                match counts.get_mut(&gram) {
                    Some(count) => *count += 1,
                    None => {
                        counts.insert(gram.clone(), 1);
                    }
                }
            }
        }
        for &c in word.iter().filter(|&&c| written_without_spaces(c)) {
            *counts.entry(format!("c{c}")).or_default() += 1;
        }
    }
    let mut out: RawFeatures = counts.into_iter().collect();
    out.sort_unstable();
    out
}

/// Han ideographs and kana: scripts where a single character is often a word.
fn written_without_spaces(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff | 0x20000..=0x3134f)
}

fn raw_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(100))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// A text's features by id, with their counts.
type Counts = Vec<(u32, u32)>;

impl Featurizer {
    /// Learns the vocabulary and IDF of `texts`, and returns each text's features by id.
    /// Texts are taken one at a time and kept only as ids: a large knowledge base's
    /// feature strings (mostly character n-grams) never all sit in memory at once.
    fn fit(texts: impl Iterator<Item = RawFeatures>) -> (Self, Vec<Counts>) {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut df: Vec<(u32, bool)> = Vec::new();
        let mut counted = Vec::new();
        for features in texts {
            let mut counts = Vec::with_capacity(features.len());
            for (f, count) in features {
                let id = match ids.get(&f) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                        df.push((0, f.starts_with('w')));
                        ids.insert(f, id);
                        id
                    }
                };
                df[id as usize].0 += 1;
                counts.push((id, count));
            }
            counted.push(counts);
        }
        let n = counted.len() as f32;
        let idf = df.into_iter().map(|(d, word)| (((1.0 + n) / (1.0 + d as f32)).ln() + 1.0, word)).collect();
        (Self { ids, idf }, counted)
    }

    /// TF-IDF vector of extracted features; unknown features are ignored.
    fn vector(&self, features: &RawFeatures) -> Sparse {
        let known: Counts = features.iter().filter_map(|(f, count)| Some((*self.ids.get(f)?, *count))).collect();
        self.vector_of(&known)
    }

    /// TF-IDF vector of features by id.
    fn vector_of(&self, features: &[(u32, u32)]) -> Sparse {
        let mut words: Sparse = Vec::new();
        let mut chars: Sparse = Vec::new();
        for &(id, count) in features {
            let (idf, word) = self.idf[id as usize];
            let value = (1.0 + (count as f32).ln()) * idf;
            if word { words.push((id, value)) } else { chars.push((id, value)) }
        }
        normalize(&mut words);
        normalize(&mut chars);
        let mut v: Sparse = words.into_iter().map(|(i, x)| (i, x * WORD_BLOCK_WEIGHT)).chain(chars).collect();
        normalize(&mut v);
        v.sort_by_key(|(i, _)| *i);
        v
    }

    fn featurize(&self, text: &str, analyzer: &mut TextAnalyzer) -> Sparse {
        let features = raw_features(text, analyzer, &mut raw_analyzer());
        self.vector(&features)
    }
}

fn normalize(v: &mut Sparse) {
    let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, x)| *x /= norm);
    }
}

/// A multinomial logistic regression over classes (documents), trained on their phrasings.
#[derive(Debug)]
pub struct PhraseModel {
    featurizer: Featurizer,
    weights: Weights,
    classes: usize,
}

/// Limits on model size and training work.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Most weights (features × classes) for dense weights.
    dense: usize,
    /// Most weight updates in all passes (sparse ones count [`SPARSE_UPDATE_COST`] each).
    work: usize,
}

/// Weights of (feature, class) pairs.
#[derive(Debug)]
enum Weights {
    /// Every class weighs every feature: features × classes, row-major.
    Dense(Vec<f32>),
    /// Per feature id, the classes that have a weight for it (those whose phrasings use it).
    Sparse(Vec<Vec<(u32, f32)>>),
}

impl PhraseModel {
    /// Trains on `classes[i]` = the phrasings of class `i`. `analyzer` is the language's
    /// search analyzer (stemming, stop words), used for word features.
    ///
    /// Returns `None` when there is nothing to tell apart (fewer than two classes with text).
    #[must_use]
    pub fn train(classes: &[Vec<&str>], analyzer: &mut TextAnalyzer) -> Option<Self> {
        Self::train_with(classes, analyzer, Budget { dense: DENSE_BUDGET, work: WORK_BUDGET })
    }

    /// [`PhraseModel::train`] with the budgets as parameters (tests).
    fn train_with(classes: &[Vec<&str>], analyzer: &mut TextAnalyzer, budget: Budget) -> Option<Self> {
        let mut raw = raw_analyzer();
        let mut labels: Vec<u32> = Vec::new();
        for (class, phrasings) in classes.iter().enumerate() {
            let class = u32::try_from(class).ok()?;
            labels.extend(std::iter::repeat_n(class, phrasings.len()));
        }
        let texts = classes.iter().flatten().map(|p| raw_features(p, analyzer, &mut raw));
        let (featurizer, counted) = Featurizer::fit(texts);
        let examples: Vec<(u32, Sparse)> = labels
            .into_iter()
            .zip(&counted)
            .map(|(class, features)| (class, featurizer.vector_of(features)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        drop(counted);
        let k = classes.len();
        let mut seen_classes: Vec<u32> = examples.iter().map(|(c, _)| *c).collect();
        seen_classes.sort_unstable();
        seen_classes.dedup();
        if seen_classes.len() < 2 {
            return None;
        }
        let features = featurizer.idf.len();
        let weights = if features.saturating_mul(k) <= budget.dense {
            // Small enough for every class to weigh every feature: a feature can then also
            // count against an entry, which matters most when entries have few phrasings.
            Weights::Dense(vec![0.0; features * k])
        } else {
            let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); features];
            let mut occurrences = vec![0usize; features];
            for (class, v) in &examples {
                for (f, _) in v {
                    postings[*f as usize].push((*class, 0.0));
                    occurrences[*f as usize] += 1;
                }
            }
            postings.iter_mut().for_each(|p| p.dedup_by_key(|(c, _)| *c));
            // Bounded training: drop the features shared by the most classes (the least
            // telling and the most expensive) until the fewest passes fit the budget.
            let cost = |f: usize, p: &[Vec<(u32, f32)>]| SPARSE_UPDATE_COST * occurrences[f] * p[f].len();
            let mut pass: usize = (0..features).map(|f| cost(f, &postings)).sum();
            let mut by_spread: Vec<usize> = (0..features).collect();
            by_spread.sort_by_key(|&f| (std::cmp::Reverse(postings[f].len()), f));
            for f in by_spread {
                if pass.saturating_mul(MIN_EPOCHS) <= budget.work {
                    break;
                }
                pass -= cost(f, &postings);
                postings[f] = Vec::new();
            }
            Weights::Sparse(postings)
        };
        let mut model = Self { featurizer, weights, classes: k };
        model.fit(&examples, budget.work);
        Some(model)
    }

    /// SGD on the cross-entropy loss with L2 regularisation (weight decay via a global
    /// scale, so a step costs only the example's own features).
    fn fit(&mut self, examples: &[(u32, Sparse)], work_budget: usize) {
        let n = examples.len().max(1) as f32;
        let lambda = 1.0 / (C * n);
        let eta0 = LEARNING_RATE;
        // Bounded training time: fewer passes when one pass is expensive.
        let pass: usize = match &self.weights {
            Weights::Dense(_) => examples.iter().map(|(_, x)| x.len() * self.classes).sum(),
            Weights::Sparse(postings) => {
                SPARSE_UPDATE_COST
                    * examples
                        .iter()
                        .map(|(_, x)| x.iter().map(|(f, _)| postings[*f as usize].len()).sum::<usize>())
                        .sum::<usize>()
            }
        };
        let epochs = (work_budget / pass.max(1)).clamp(MIN_EPOCHS, EPOCHS);
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = SplitMix(SEED);
        let mut scores = Scores::new(self.classes);
        let mut scale = 1.0f32;
        let mut t = 0.0f32;
        for _ in 0..epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let (class, x) = &examples[i];
                let eta = eta0 / (1.0 + eta0 * lambda * t);
                t += 1.0;
                self.score(x, scale, &mut scores);
                scores.softmax(Some(*class));
                scale *= 1.0 - eta * lambda;
                let k = self.classes;
                match &mut self.weights {
                    Weights::Dense(w) => {
                        scores.value[*class as usize] -= 1.0; // now the gradient per class
                        for (f, value) in x {
                            let step = eta * value / scale;
                            let row = &mut w[*f as usize * k..(*f as usize + 1) * k];
                            for (w, g) in row.iter_mut().zip(&scores.value) {
                                *w -= step * g;
                            }
                        }
                    }
                    Weights::Sparse(postings) => {
                        for (f, value) in x {
                            for (c, w) in &mut postings[*f as usize] {
                                let target = if c == class { 1.0 } else { 0.0 };
                                *w -= eta * (scores.value[*c as usize] - target) * value / scale;
                            }
                        }
                    }
                }
                if scale < 1e-6 {
                    self.rescale(scale);
                    scale = 1.0;
                }
            }
        }
        self.rescale(scale);
    }

    fn rescale(&mut self, scale: f32) {
        match &mut self.weights {
            Weights::Dense(w) => w.iter_mut().for_each(|w| *w *= scale),
            Weights::Sparse(postings) => {
                postings.iter_mut().flatten().for_each(|(_, w)| *w *= scale);
            }
        }
    }

    /// Raw scores of the classes that share a feature with `x` (the others score 0).
    fn score(&self, x: &Sparse, scale: f32, scores: &mut Scores) {
        scores.clear();
        match &self.weights {
            Weights::Dense(w) => {
                scores.touch_all();
                let k = self.classes;
                for (f, value) in x {
                    let row = &w[*f as usize * k..(*f as usize + 1) * k];
                    let v = value * scale;
                    for (s, w) in scores.value.iter_mut().zip(row) {
                        *s += w * v;
                    }
                }
            }
            Weights::Sparse(postings) => {
                for (f, value) in x {
                    for (c, w) in &postings[*f as usize] {
                        scores.add(*c, w * value * scale);
                    }
                }
            }
        }
    }

    /// Number of classes.
    #[must_use]
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Probability of each class for `question` (sums to 1; uniform when the question
    /// shares no feature with any phrasing).
    #[must_use]
    pub fn predict(&self, question: &str, analyzer: &mut TextAnalyzer) -> Vec<f32> {
        let x = self.featurizer.featurize(question, analyzer);
        let mut scores = Scores::new(self.classes);
        self.score(&x, 1.0, &mut scores);
        scores.softmax(None);
        let rest = scores.rest;
        let mut out = vec![rest; self.classes];
        for &c in &scores.active {
            out[c as usize] = scores.value[c as usize];
        }
        out
    }
}

/// Class scores where only the classes touched (`active`) differ from 0: softmax over
/// all classes costs only the active ones.
struct Scores {
    value: Vec<f32>,
    active: Vec<u32>,
    touched: Vec<bool>,
    /// After [`Scores::softmax`]: the probability of each untouched class.
    rest: f32,
}

impl Scores {
    fn new(classes: usize) -> Self {
        Self { value: vec![0.0; classes], active: Vec::new(), touched: vec![false; classes], rest: 0.0 }
    }

    fn clear(&mut self) {
        for &c in &self.active {
            self.value[c as usize] = 0.0;
            self.touched[c as usize] = false;
        }
        self.active.clear();
    }

    fn touch_all(&mut self) {
        self.touched.fill(true);
        self.active.extend(0..u32::try_from(self.value.len()).unwrap_or(u32::MAX));
    }

    fn add(&mut self, class: u32, x: f32) {
        let c = class as usize;
        if !self.touched[c] {
            self.touched[c] = true;
            self.active.push(class);
        }
        self.value[c] += x;
    }

    /// Turns the scores into probabilities; `include` is made active first (the true
    /// class during training, so its probability is explicit).
    fn softmax(&mut self, include: Option<u32>) {
        if let Some(c) = include {
            self.add(c, 0.0);
        }
        let untouched = (self.value.len() - self.active.len()) as f32;
        let max = self.active.iter().map(|&c| self.value[c as usize]).fold(0.0f32, f32::max);
        let mut sum = untouched * (-max).exp();
        for &c in &self.active {
            let e = (self.value[c as usize] - max).exp();
            self.value[c as usize] = e;
            sum += e;
        }
        for &c in &self.active {
            self.value[c as usize] /= sum;
        }
        self.rest = (-max).exp() / sum;
    }
}

/// SplitMix64: a tiny seeded generator, identical on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// A document's key and its training texts.
type Document<'a> = (String, Vec<&'a str>);

/// One [`PhraseModel`] per language, over that language's FAQ entries and articles (by
/// document key, as in `index.rs`).
#[derive(Debug, Default)]
pub struct PhraseModels {
    by_lang: HashMap<String, (PhraseModel, Vec<String>)>,
}

impl PhraseModels {
    /// Trains a model per language that has at least two documents. `analyzer_for` gives
    /// the search analyzer of a language.
    pub fn train(faqs: &[FaqEntry], articles: &[Article], mut analyzer_for: impl FnMut(&str) -> TextAnalyzer) -> Self {
        let mut grouped: std::collections::BTreeMap<&str, Vec<Document<'_>>> = std::collections::BTreeMap::new();
        for f in faqs {
            let phrasings = std::iter::once(f.question.as_str()).chain(f.also.iter().map(String::as_str)).collect();
            grouped.entry(search_group(&f.lang)).or_default().push((faq_key(&f.lang, &f.id), phrasings));
        }
        let bodies: Vec<Vec<String>> = articles.iter().map(|a| sentences(&markdown_to_plain(&a.body))).collect();
        for (a, body) in articles.iter().zip(&bodies) {
            let texts = std::iter::once(a.title.as_str())
                .chain(a.tags.iter().map(String::as_str))
                .chain(a.summary.as_deref())
                .chain(body.iter().map(String::as_str))
                .collect();
            grouped.entry(search_group(&a.lang)).or_default().push((article_key(&a.lang, &a.slug), texts));
        }
        // Languages are independent: each trains on its own thread (a reload or start of a
        // multilingual knowledge base takes the time of its largest language, not the sum).
        let jobs: Vec<(&str, Vec<Document<'_>>, TextAnalyzer)> =
            grouped.into_iter().map(|(lang, entries)| (lang, entries, analyzer_for(lang))).collect();
        let by_lang = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(lang, entries, mut analyzer)| {
                    scope.spawn(move || {
                        let classes: Vec<Vec<&str>> = entries.iter().map(|(_, p)| p.clone()).collect();
                        let model = PhraseModel::train(&classes, &mut analyzer)?;
                        Some((lang.to_owned(), (model, entries.into_iter().map(|(k, _)| k).collect())))
                    })
                })
                .collect();
            // A panicking trainer (a bug) loses that language's model, not the knowledge base.
            handles.into_iter().filter_map(|h| h.join().ok().flatten()).collect()
        });
        Self { by_lang }
    }

    /// How far `probability` is above chance in `lang` (0 at or below 1 / documents, 1 at
    /// certainty): what the model knows beyond "one of these". With three FAQ entries a
    /// question unlike all of them still gets a third each, which must not read as
    /// confidence.
    #[must_use]
    pub fn beyond_chance(&self, lang: &str, probability: f32) -> f32 {
        let Some((model, _)) = self.by_lang.get(search_group(lang)) else { return 0.0 };
        let chance = 1.0 / model.classes().max(1) as f32;
        ((probability - chance) / (1.0 - chance)).max(0.0)
    }

    /// Probability per document key for a question in `lang`, best first (ties by key),
    /// at most `limit`; empty when the language has no model.
    #[must_use]
    pub fn predict(&self, question: &str, lang: &str, analyzer: &mut TextAnalyzer, limit: usize) -> Vec<(&str, f32)> {
        let Some((model, keys)) = self.by_lang.get(search_group(lang)) else { return Vec::new() };
        let mut ranked: Vec<(&str, f32)> =
            model.predict(question, analyzer).into_iter().enumerate().map(|(i, p)| (keys[i].as_str(), p)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        ranked.truncate(limit);
        ranked
    }
}

/// How much the model's probability adds to a document's ranking score (which is mostly
/// its 0..1 lexical confidence, see `search.rs`). The probability is not normalised: a
/// model that is unsure (few phrasings, a question unlike any of them) spreads its
/// probability thinly and so barely moves the lexical ranking.
pub const RANK_WEIGHT: f32 = 2.0;

/// How much the model's probability (above chance, [`PhraseModels::beyond_chance`]) adds
/// to a document's confidence: a question worded unlike the document (few shared words,
/// low coverage) that the model still places there with certainty is answered rather
/// than sent to the fallback. Chosen with the threshold on the calibration sets
/// (`docs/benchmark.md`).
pub const CONFIDENCE_WEIGHT: f32 = 0.3;

/// The sentences of plain text (lines, and text ended by `.`, `?` or `!` before a space,
/// or by a Chinese full stop), without the fragments too short to say anything.
fn sentences(text: &str) -> Vec<String> {
    const MIN_CHARS: usize = 8;
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let ends = match c {
            '\n' => true,
            '。' | '？' | '！' => {
                current.push(c);
                true
            }
            '.' | '?' | '!' => {
                current.push(c);
                chars.peek().is_none_or(|next| next.is_whitespace())
            }
            _ => {
                current.push(c);
                false
            }
        };
        if ends || chars.peek().is_none() {
            let sentence = current.trim().trim_start_matches('•').trim();
            if sentence.chars().count() >= MIN_CHARS {
                out.push(sentence.to_owned());
            }
            current.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::analysis::AnalyzerKind;

    const BANKING: [&[&str]; 3] = [
        &["where is my card", "my new card has not arrived", "when will the card be delivered", "card still not here"],
        &["my card payment was declined", "why was my card declined in the shop", "the card was refused at checkout"],
        &["how do I top up my account", "add money to my balance", "top up with a bank transfer"],
    ];

    fn classes(set: &[&[&'static str]]) -> Vec<Vec<&'static str>> {
        set.iter().map(|c| c.to_vec()).collect()
    }

    fn best(p: &[f32]) -> usize {
        p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(usize::MAX, |(i, _)| i)
    }

    fn assert_distribution(p: &[f32]) {
        let sum: f32 = p.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
        assert!(p.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn learns_which_words_tell_entries_apart() {
        let mut en = AnalyzerKind::English.build(Default::default());
        let model = PhraseModel::train(&classes(&BANKING), &mut en).expect("trains");
        assert_eq!(model.classes(), 3);
        for (question, class) in [
            ("the card hasn't arrived yet", 0),
            ("payment declined", 1),
            ("topping up my acount", 2), // inflection and a typo: character n-grams
        ] {
            let p = model.predict(question, &mut en);
            assert_distribution(&p);
            assert_eq!(best(&p), class, "{question}: {p:?}");
        }
    }

    #[test]
    fn sparse_weights_agree_with_dense_ones() {
        let mut en = AnalyzerKind::English.build(Default::default());
        let budget = |dense| Budget { dense, work: WORK_BUDGET };
        let dense = PhraseModel::train_with(&classes(&BANKING), &mut en, budget(usize::MAX)).expect("trains");
        let sparse = PhraseModel::train_with(&classes(&BANKING), &mut en, budget(0)).expect("trains");
        assert!(matches!(dense.weights, Weights::Dense(_)));
        assert!(matches!(sparse.weights, Weights::Sparse(_)));
        for question in ["card not delivered", "why declined", "add money"] {
            let (d, s) = (dense.predict(question, &mut en), sparse.predict(question, &mut en));
            assert_distribution(&s);
            assert_eq!(best(&d), best(&s), "{question}: {d:?} vs {s:?}");
        }
    }

    #[test]
    fn a_small_work_budget_drops_the_most_shared_features() {
        let mut en = AnalyzerKind::English.build(Default::default());
        let budget = Budget { dense: 0, work: 2_000 };
        let model = PhraseModel::train_with(&classes(&BANKING), &mut en, budget).expect("trains");
        let Weights::Sparse(postings) = &model.weights else { panic!("sparse weights expected") };
        let kept: usize = postings.iter().map(Vec::len).sum();
        assert!(kept > 0, "some features survive");
        let card = model.featurizer.ids["wcard"] as usize;
        assert!(postings[card].is_empty(), "\"card\" is in two of three classes: among the first dropped");
        let p = model.predict("top up my account", &mut en);
        assert_distribution(&p);
        assert_eq!(best(&p), 2);
    }

    #[test]
    fn training_is_deterministic() {
        let mut en = AnalyzerKind::English.build(Default::default());
        let a = PhraseModel::train(&classes(&BANKING), &mut en).expect("trains");
        let b = PhraseModel::train(&classes(&BANKING), &mut en).expect("trains");
        assert_eq!(a.predict("my card was refused", &mut en), b.predict("my card was refused", &mut en));
    }

    #[test]
    fn works_without_a_stemmer_in_chinese_and_polish() {
        let mut generic = AnalyzerKind::Generic.build(Default::default());
        let zh: [&[&str]; 2] = [&["花呗怎么还款", "花呗如何还钱"], &["借呗额度怎么提升", "怎样提高借呗额度"]];
        let model = PhraseModel::train(&classes(&zh), &mut generic).expect("trains");
        assert_eq!(best(&model.predict("花呗还款方式", &mut generic)), 0);
        assert_eq!(best(&model.predict("借呗额度能提高吗", &mut generic)), 1);
        let pl: [&[&str]; 2] =
            [&["jak zwrócić zamówienie", "zwrot towaru"], &["gdzie jest moja przesyłka", "status przesyłki"]];
        let model = PhraseModel::train(&classes(&pl), &mut generic).expect("trains");
        assert_eq!(best(&model.predict("chcę zrobić zwrot zamówienia", &mut generic)), 0);
        assert_eq!(best(&model.predict("nie dostałem przesylki", &mut generic)), 1, "inflected, no diacritics");
    }

    #[test]
    fn article_bodies_are_split_into_sentences() {
        let text = "Refunds take 3.5 days. Why? Cards are slower!\n• Klarna refunds go to Klarna\n退款需要五个工作日。请耐心等待。";
        assert_eq!(
            sentences(text),
            ["Refunds take 3.5 days.", "Cards are slower!", "Klarna refunds go to Klarna", "退款需要五个工作日。"],
            "short fragments (\"Why?\", \"请耐心等待。\") are dropped; a decimal point ends nothing"
        );
    }

    #[test]
    fn an_articles_body_teaches_the_model_its_words() {
        let article = |slug: &str, title: &str, body: &str| Article {
            slug: slug.to_owned(),
            lang: "en".to_owned(),
            title: title.to_owned(),
            tags: Vec::new(),
            summary: None,
            body: body.to_owned(),
            body_line: 1,
            unknown_keys: Vec::new(),
            path: format!("{slug}.md").into(),
        };
        // "accounts" sorts first, so a model that learned nothing (a tie) fails both checks.
        let articles = [
            article("accounts", "Your account", "Change your password in the settings page any time."),
            article(
                "returns",
                "Sending something back",
                "Most items can go back within 30 days. Print the prepaid label.",
            ),
            article(
                "delivery",
                "Getting your order",
                "Couriers deliver between 8am and 6pm. A signature may be needed.",
            ),
        ];
        let models = PhraseModels::train(&[], &articles, |lang| AnalyzerKind::for_lang(lang).build(Default::default()));
        let mut en = AnalyzerKind::English.build(Default::default());
        assert_eq!(models.predict("where is the prepaid label", "en", &mut en, 1)[0].0, "article:en:returns");
        assert_eq!(models.predict("does the courier need a signature", "en", &mut en, 1)[0].0, "article:en:delivery");
    }

    #[test]
    fn chance_level_probability_is_no_evidence() {
        let faq = |id: &str, question: &str| FaqEntry {
            id: id.to_owned(),
            lang: "en".to_owned(),
            question: question.to_owned(),
            also: Vec::new(),
            answer: "An answer.".to_owned(),
            path: "faq.toml".into(),
        };
        let faqs = [faq("a", "where is my card"), faq("b", "how do I top up"), faq("c", "close my account")];
        let models = PhraseModels::train(&faqs, &[], |lang| AnalyzerKind::for_lang(lang).build(Default::default()));
        assert!(models.beyond_chance("en", 1.0 / 3.0).abs() < 1e-6);
        assert!(models.beyond_chance("en", 0.2).abs() < 1e-6);
        assert!((models.beyond_chance("en", 1.0) - 1.0).abs() < 1e-6);
        assert!((models.beyond_chance("en", 2.0 / 3.0) - 0.5).abs() < 1e-6);
        assert!(models.beyond_chance("de", 0.9).abs() < 1e-6, "no model, no evidence");
    }

    #[test]
    fn unknown_questions_get_a_uniform_distribution() {
        let mut en = AnalyzerKind::English.build(Default::default());
        let model = PhraseModel::train(&classes(&BANKING), &mut en).expect("trains");
        let p = model.predict("zzzz qqqq", &mut en);
        assert_distribution(&p);
        assert!(p.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-6), "{p:?}");
    }

    #[test]
    fn needs_two_classes_with_text() {
        let mut en = AnalyzerKind::English.build(Default::default());
        assert!(PhraseModel::train(&[vec!["where is my card"]], &mut en).is_none());
        assert!(PhraseModel::train(&[vec!["where is my card"], vec![]], &mut en).is_none());
    }

    #[test]
    fn models_are_per_language_and_keyed_by_document() {
        let faq = |lang: &str, id: &str, question: &str, also: &[&str]| FaqEntry {
            id: id.to_owned(),
            lang: lang.to_owned(),
            question: question.to_owned(),
            also: also.iter().map(|s| (*s).to_owned()).collect(),
            answer: "An answer.".to_owned(),
            path: "faq.toml".into(),
        };
        let faqs = [
            faq("en", "card-arrival", "where is my card", &["card not arrived"]),
            faq("en", "top-up", "how do I top up", &["add money"]),
            faq("pl", "zwrot", "jak zwrócić zamówienie", &["zwrot towaru"]),
            faq("pl", "przesylka", "gdzie jest moja przesyłka", &[]),
        ];
        let models = PhraseModels::train(&faqs, &[], |lang| AnalyzerKind::for_lang(lang).build(Default::default()));
        let mut en = AnalyzerKind::English.build(Default::default());
        let top = models.predict("my card has not arrived", "en", &mut en, 1);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, "faq:en:card-arrival");
        let mut generic = AnalyzerKind::Generic.build(Default::default());
        assert_eq!(models.predict("zwrot zamówienia", "pl", &mut generic, 5)[0].0, "faq:pl:zwrot");
        assert!(models.predict("wo ist meine karte", "de", &mut generic, 5).is_empty());
    }
}
