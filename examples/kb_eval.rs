//! Answer accuracy of a question set against a knowledge base, with a threshold sweep
//! for calibrating `answers.min_confidence`.
//!
//! ```text
//! cargo run --release --example kb_eval -- tests/data/calibration-en.toml [--kb-dir DIR] [--verbose]
//!     [--pl-stem snowball|prefix6|none] [--zh-seg jieba|bigrams]
//! ```

use std::path::{Path, PathBuf};

use supportbot::checks::answers::{AnswerCase, load_cases, run_cases};
use supportbot::engine::AnswerPolicy;
use supportbot::flows::BotScript;
use supportbot::kb::analysis::{AnalysisOptions, PolishStemming};
use supportbot::kb::chinese::Segmentation;
use supportbot::kb::{KbContent, KnowledgeBase};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    let kb_dir = args
        .iter()
        .position(|a| a == "--kb-dir")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| root.join("knowledge-base"), PathBuf::from);
    let files: Vec<&String> = args.iter().filter(|a| a.ends_with(".toml")).collect();
    let mut cases: Vec<AnswerCase> = Vec::new();
    for file in &files {
        let dir = tempfile::tempdir().expect("temp");
        std::fs::copy(file, dir.path().join("cases.toml")).expect("copy case file");
        cases.extend(load_cases(dir.path()).expect("cases load"));
    }
    let content = KbContent::load(&kb_dir).expect("knowledge base loads");
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str);
    let mut options = AnalysisOptions::default();
    options.polish = match flag("--pl-stem") {
        Some("prefix6") => PolishStemming::Prefix6,
        Some("none") => PolishStemming::None,
        _ => options.polish,
    };
    options.chinese = match flag("--zh-seg") {
        Some("bigrams") => Segmentation::Bigrams,
        _ => options.chinese,
    };
    println!("analysis: {}", options.key());
    let kb = KnowledgeBase::in_ram_with(content, options).expect("index builds");
    let script = BotScript::load(&root.join("flows")).expect("flows load");
    let default = AnswerPolicy::default();
    let report = run_cases(&kb, &script, &default, &cases).expect("search");
    if verbose {
        for f in report.failures() {
            println!("MISS {:?} expected {:?} answered {:?} best {:?}", f.case.ask, f.case.expect, f.answered, f.best);
        }
    }
    let answerable = cases.iter().filter(|c| !c.expects_none()).count();
    println!("{} cases ({answerable} answerable, {} out of scope)", cases.len(), cases.len() - answerable);
    // Top-1 ranking quality independent of any threshold.
    let ranked_right = report
        .outcomes
        .iter()
        .filter(|o| !o.case.expects_none() && o.best.as_ref().is_some_and(|(id, _)| o.case.expect.contains(id)))
        .count();
    println!("top-1 ranking accuracy (no threshold): {:.3}", ranked_right as f64 / answerable.max(1) as f64);
    println!("threshold  answered-right  fallback-right  overall");
    for step in 2..=16 {
        let t = step as f32 * 0.05;
        let policy = AnswerPolicy {
            min_confidence: t,
            related_min_confidence: default.related_min_confidence.min(t),
            ..default
        };
        let r = run_cases(&kb, &script, &policy, &cases).expect("search");
        let mark = if (t - default.min_confidence).abs() < 1e-6 { "  <- default" } else { "" };
        println!(
            "  {t:.2}      {:.3}           {:.3}           {:.3}{mark}",
            r.answer_accuracy(),
            r.fallback_accuracy(),
            r.accuracy()
        );
    }
}
