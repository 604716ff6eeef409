//! Retrieval quality on the sample knowledge base: customer-style questions must be
//! answered from the right document, and out-of-scope questions must fall back.

use supportbot::checks::answers::{load_cases, run_cases};
use supportbot::engine::AnswerPolicy;
use supportbot::flows::BotScript;
use supportbot::kb::{KbContent, KnowledgeBase};

use crate::harness::repo_path;

/// Per language: (answered from a right document, out-of-scope fell back), floors a little
/// under what was measured on the sample set (docs/search.md); a drop below is a regression.
const FLOORS: [(&str, f64, f64); 5] =
    [("en", 0.48, 0.66), ("ru", 0.76, 0.85), ("pl", 0.58, 0.75), ("zh-Hans", 0.66, 0.90), ("zh-Hant", 0.70, 0.65)];

#[test]
fn sample_questions_are_answered_from_the_right_document_in_every_language() {
    let content = KbContent::load(&repo_path("knowledge-base")).expect("sample KB loads");
    assert!(content.errors.is_empty(), "sample KB has errors: {:?}", content.errors);
    let temp = tempfile::tempdir().expect("temp dir");
    let (kb, _) = KnowledgeBase::open(content, &temp.path().join("index"), Default::default()).expect("index builds");
    let script = BotScript::load(&repo_path("flows")).expect("flows load");
    let all = load_cases(&repo_path("knowledge-base/tests")).expect("answer tests load");
    let mut below = Vec::new();
    for (lang, min_answered, min_fallback) in FLOORS {
        let cases: Vec<_> = all.iter().filter(|c| c.lang == lang).cloned().collect();
        let answerable = cases.iter().filter(|c| !c.expects_none()).count();
        let out_of_scope = cases.len() - answerable;
        assert!(answerable >= 50 && out_of_scope >= 15, "{lang}: too few cases ({answerable} + {out_of_scope})");
        let report = run_cases(&kb, &script, &AnswerPolicy::default(), &cases).expect("search works");
        for failure in report.failures() {
            eprintln!(
                "MISS [{lang}] {:?} expected {:?} answered {:?} best {:?}",
                failure.case.ask, failure.case.expect, failure.answered, failure.best
            );
        }
        let (answered, fell_back) = (report.answer_accuracy(), report.fallback_accuracy());
        eprintln!("{lang}: answered right {answered:.3} of {answerable}, fell back {fell_back:.3} of {out_of_scope}");
        if answered < min_answered || fell_back < min_fallback {
            below.push(format!("{lang}: {answered:.3}/{fell_back:.3} < {min_answered}/{min_fallback}"));
        }
    }
    assert!(below.is_empty(), "below the floors: {below:?}");
}
