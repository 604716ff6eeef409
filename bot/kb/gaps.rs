//! Grouping unanswered questions so editors see what to write next.
//!
//! Questions are compared by their analyzed terms (stemmed, stop words removed, the same
//! analysis search uses), so "where's my refund" and "refund not received yet" land in one
//! group. Grouping is greedy single-pass: a question joins the first group whose terms it
//! overlaps enough, else starts a new one. That is simple and deterministic, and with an
//! inverted index from terms to groups it stays fast for tens of thousands of questions.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::analysis::search_group;
use crate::store::Gap;

/// Overlap (Dice coefficient of term sets) at which two questions are "the same thing".
const SAME_TOPIC: f32 = 0.5;
/// Distinct example questions listed per group.
const EXAMPLES: usize = 5;

/// Similar unanswered questions, counted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GapGroup {
    /// How many times this was asked.
    pub count: usize,
    /// Languages it was asked in.
    pub languages: Vec<String>,
    /// Distinct questions, most recent first.
    pub examples: Vec<String>,
    /// Terms the group's questions share (what the topic is about).
    pub terms: Vec<String>,
    /// The document that came closest most often, with its best confidence.
    pub near_miss: Option<GroupNearMiss>,
    /// First and last time it was asked.
    pub first_seen: DateTime<Utc>,
    /// Last time it was asked.
    pub last_seen: DateTime<Utc>,
}

/// The document that most often came closest to answering a group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupNearMiss {
    /// FAQ id or article slug.
    pub id: String,
    /// Its language.
    pub lang: String,
    /// Highest confidence it reached.
    pub best_confidence: f32,
    /// How many questions of the group it came closest for.
    pub times: usize,
}

struct Building {
    terms: HashSet<String>,
    members: Vec<usize>,
}

fn dice(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let shared = a.intersection(b).count() as f32;
    2.0 * shared / (a.len() + b.len()) as f32
}

/// Groups gaps (newest first, as the store returns them) by similarity; biggest first.
/// `terms` analyzes a question in its language.
///
/// Each question is compared only with the groups that share a term with it (an inverted
/// index from term to group), so the cost grows with the number of questions, not with
/// questions times groups.
pub fn group(gaps: &[Gap], mut terms: impl FnMut(&str, &str) -> Vec<String>) -> Vec<GapGroup> {
    let mut building: Vec<Building> = Vec::new();
    // (language group, term) -> groups that had the term when it was added. Entries go
    // stale as a group's terms shrink; candidates are re-scored, so that is harmless.
    let mut by_term: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, gap) in gaps.iter().enumerate() {
        let lang_group = search_group(&gap.lang).to_owned();
        let words: HashSet<String> = terms(&gap.question, &gap.lang).into_iter().collect();
        // A question of only function words is keyed by the empty term.
        let keys: Vec<String> = if words.is_empty() { vec![String::new()] } else { words.iter().cloned().collect() };
        let mut candidates: Vec<usize> =
            keys.iter().filter_map(|k| by_term.get(&(lang_group.clone(), k.clone()))).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let home = candidates
            .into_iter()
            .map(|g| (dice(&building[g].terms, &words), g))
            .filter(|(score, _)| *score >= SAME_TOPIC)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, g)| g);
        match home {
            Some(g) => {
                let b = &mut building[g];
                // Keep the terms most members share: the intersection, unless that empties it.
                let shared: HashSet<String> = b.terms.intersection(&words).cloned().collect();
                if !shared.is_empty() {
                    b.terms = shared;
                }
                b.members.push(i);
            }
            None => {
                for k in keys {
                    by_term.entry((lang_group.clone(), k)).or_default().push(building.len());
                }
                building.push(Building { terms: words, members: vec![i] });
            }
        }
    }
    let mut groups: Vec<GapGroup> = building.into_iter().map(|b| finish(gaps, b)).collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_seen.cmp(&a.last_seen)));
    groups
}

fn finish(gaps: &[Gap], b: Building) -> GapGroup {
    let members: Vec<&Gap> = b.members.iter().map(|&i| &gaps[i]).collect();
    let mut examples: Vec<String> = Vec::new();
    for g in &members {
        let q = g.question.trim().to_owned();
        if examples.len() < EXAMPLES && !examples.iter().any(|e| e.eq_ignore_ascii_case(&q)) {
            examples.push(q);
        }
    }
    let mut languages: Vec<String> = members.iter().map(|g| g.lang.clone()).collect();
    languages.sort();
    languages.dedup();
    let mut near: BTreeMap<(String, String), (usize, f32)> = BTreeMap::new();
    for (id, lang, score) in members.iter().filter_map(|g| g.near_miss.as_ref()) {
        let slot = near.entry((id.clone(), lang.clone())).or_insert((0, 0.0));
        slot.0 += 1;
        slot.1 = slot.1.max(*score);
    }
    let near_miss = near
        .into_iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(a.1.1.total_cmp(&b.1.1)))
        .map(|((id, lang), (times, best))| GroupNearMiss { id, lang, best_confidence: best, times });
    let mut terms: Vec<String> = b.terms.into_iter().collect();
    terms.sort();
    GapGroup {
        count: members.len(),
        languages,
        examples,
        terms,
        near_miss,
        first_seen: members.iter().map(|g| g.at).min().unwrap_or_default(),
        last_seen: members.iter().map(|g| g.at).max().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, Seq};
    use crate::kb::analysis::{AnalysisOptions, AnalyzerKind, terms};

    fn gap(question: &str, lang: &str, near: Option<(&str, f32)>) -> Gap {
        Gap {
            conversation: ConversationId::new_random(),
            seq: Seq(1),
            at: Utc::now(),
            lang: lang.into(),
            question: question.into(),
            near_miss: near.map(|(id, s)| (id.to_owned(), lang.to_owned(), s)),
        }
    }

    #[test]
    fn similar_questions_are_counted_together_per_language() {
        let gaps = vec![
            gap("do you sell garden gnomes?", "en", Some(("outdoor-furniture-care", 0.3))),
            gap("Garden gnomes for sale?", "en", Some(("outdoor-furniture-care", 0.35))),
            gap("are you hiring", "en", None),
            gap("selling garden gnome", "en", None),
            gap("ogrodowe krasnale", "pl", None),
        ];
        let groups =
            group(&gaps, |text, lang| terms(&mut AnalyzerKind::for_lang(lang).build(AnalysisOptions::default()), text));
        assert_eq!(groups.len(), 3, "{groups:#?}");
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].languages, ["en"]);
        let near = groups[0].near_miss.as_ref().expect("near miss");
        assert_eq!((near.id.as_str(), near.times), ("outdoor-furniture-care", 2));
        assert!((near.best_confidence - 0.35).abs() < 1e-6);
        assert!(groups[0].terms.contains(&"garden".to_owned()), "{:?}", groups[0].terms);
    }
}
