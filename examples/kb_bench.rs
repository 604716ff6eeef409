//! Intent-detection benchmarks through the real search path.
//!
//! Each labelled data set becomes a temporary knowledge base with one FAQ entry per label
//! (its training examples are the entry's phrasings, the label name its answer); every
//! evaluation question goes through `KnowledgeBase::search` and counts as right when the
//! best hit is its label's entry. See `docs/benchmark.md`.
//!
//! ```text
//! cargo run --release --example kb_bench -- [--split dev|test] [--only NAME,...] [--shots N]
//!     [--seed N] [--timings] [--misses N] [--datasets DIR]
//! ```
//!
//! `--split dev` (the default) holds out 10% of each label's training examples (fixed
//! seed) and asks those: tune on this. `--split test` asks the published test split.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use supportbot::engine::AnswerPolicy;
use supportbot::kb::{KbContent, KnowledgeBase};

/// HINT3's out-of-scope label.
const HINT3_OOS: &str = "NO_NODES_DETECTED";
const HINT3_BOTS: [&str; 3] = ["sofmattress", "curekart", "powerplay11"];
const HINT3_PLATFORMS: [&str; 5] = ["bert", "dialogflow", "haptik", "luis", "rasa"];
const DEV_SHARE: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    Dev,
    Test,
}

#[derive(Debug, Clone)]
struct Example {
    text: String,
    label: String,
}

/// One knowledge base and the questions asked of it.
struct Task {
    name: String,
    setting: String,
    lang: &'static str,
    /// Label → phrasings; the first is the entry's `question`.
    phrasings: BTreeMap<String, Vec<String>>,
    queries: Vec<Example>,
    /// Queries with this label must not be answered (HINT3).
    oos_label: Option<&'static str>,
    /// HINT3 published-results file stem (`curekart`, `curekart_subset`), test split of v1 only.
    published: Option<String>,
}

#[derive(Default)]
struct Outcome {
    in_scope: usize,
    top1: usize,
    top5: usize,
    /// In-scope: best hit right and confident enough to be answered.
    answered_right: usize,
    oos: usize,
    /// Out-of-scope questions that got the fallback.
    oos_fallback: usize,
    build: Duration,
    latencies: Vec<Duration>,
    misses: Vec<String>,
}

struct Options {
    split: Split,
    only: Vec<String>,
    shots: usize,
    seed: u64,
    timings: bool,
    misses: usize,
    datasets: PathBuf,
}

fn main() {
    let options = parse_args();
    let tasks = tasks(&options);
    let threshold = AnswerPolicy::default().min_confidence;
    let split = if options.split == Split::Dev { "dev" } else { "test" };
    println!("split: {split}   answer threshold (product default): {threshold:.2}   seed: {}", options.seed);
    let mut header = format!(
        "{:<24} {:<8} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>8}",
        "dataset", "setting", "entries", "phrases", "asked", "top-1", "top-5", "answered", "oos-fb"
    );
    if options.timings {
        header.push_str(&format!(" {:>8} {:>8} {:>8}", "build-s", "mean-ms", "p95-ms"));
    }
    println!("{header}");
    let mut hint3: Vec<(Task, Outcome)> = Vec::new();
    for task in tasks {
        let outcome = run(&task, threshold, options.misses);
        let phrases: usize = task.phrasings.values().map(Vec::len).sum();
        let mut line = format!(
            "{:<24} {:<8} {:>7} {:>7} {:>6} {:>6.3} {:>6.3} {:>8} {:>8}",
            task.name,
            task.setting,
            task.phrasings.len(),
            phrases,
            outcome.in_scope + outcome.oos,
            ratio(outcome.top1, outcome.in_scope),
            ratio(outcome.top5, outcome.in_scope),
            format!("{:.3}", ratio(outcome.answered_right, outcome.in_scope)),
            if outcome.oos > 0 { format!("{:.3}", ratio(outcome.oos_fallback, outcome.oos)) } else { "-".into() },
        );
        if options.timings {
            let (mean, p95) = latency(&outcome.latencies);
            line.push_str(&format!(" {:>8.2} {:>8.2} {:>8.2}", outcome.build.as_secs_f64(), mean, p95));
        }
        println!("{line}");
        for miss in &outcome.misses {
            println!("    {miss}");
        }
        if task.published.is_some() {
            hint3.push((task, outcome));
        }
    }
    if !hint3.is_empty() {
        print_hint3(&options.datasets, &hint3, threshold);
    }
    println!(
        "top-1/top-5: in-scope questions whose label is the best / among the 5 best hits; answered: top-1 right \
         and confidence >= threshold; oos-fb: out-of-scope questions that got the fallback"
    );
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Mean and 95th percentile in milliseconds.
fn latency(samples: &[Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let p95 = ms[((ms.len() as f64 * 0.95).ceil() as usize).clamp(1, ms.len()) - 1];
    (mean, p95)
}

fn parse_args() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let split = match value("--split").as_deref() {
        None | Some("dev") => Split::Dev,
        Some("test") => Split::Test,
        Some(other) => panic!("--split is dev or test, not {other:?}"),
    };
    Options {
        split,
        only: value("--only").map(|v| v.split(',').map(str::to_owned).collect()).unwrap_or_default(),
        shots: value("--shots").map_or(10, |v| v.parse().expect("--shots N")),
        seed: value("--seed").map_or(13, |v| v.parse().expect("--seed N")),
        timings: args.iter().any(|a| a == "--timings"),
        misses: value("--misses").map_or(0, |v| v.parse().expect("--misses N")),
        datasets: value("--datasets").map_or_else(|| PathBuf::from("/work/shared/datasets"), PathBuf::from),
    }
}

fn wanted(options: &Options, name: &str) -> bool {
    options.only.is_empty() || options.only.iter().any(|o| name.starts_with(o.as_str()))
}

fn tasks(options: &Options) -> Vec<Task> {
    let d = &options.datasets;
    let mut out = Vec::new();
    let few = format!("{}-shot", options.shots);
    if wanted(options, "banking77") {
        let train = read_csv(&d.join("banking77/train.csv"), "text", "category");
        let test = read_csv(&d.join("banking77/test.csv"), "text", "category");
        for shots in [None, Some(options.shots)] {
            let setting = if shots.is_some() { few.clone() } else { "full".to_owned() };
            out.push(labelled_task("banking77", &setting, "en", &train, &test, shots, options, None));
        }
    }
    if wanted(options, "bitext") {
        let dir = d.join("bitext-customer-support/intent-detection");
        let train = read_csv(&dir.join("train.csv"), "utterance", "intent");
        let test = read_csv(&dir.join("test.csv"), "utterance", "intent");
        for shots in [None, Some(options.shots)] {
            let setting = if shots.is_some() { few.clone() } else { "full".to_owned() };
            out.push(labelled_task("bitext", &setting, "en", &train, &test, shots, options, None));
        }
    }
    for version in ["v1", "v2"] {
        for bot in HINT3_BOTS {
            let name = format!("hint3-{version}-{bot}");
            if !wanted(options, &name) {
                continue;
            }
            let dir = d.join("hint3").join(version);
            let test = read_csv(&dir.join(format!("test/{bot}_test.csv")), "sentence", "label");
            for variant in ["", "_subset"] {
                let path = dir.join(format!("train/{bot}{variant}_train.csv"));
                if !path.exists() {
                    continue; // v2 has no subset variant
                }
                let train = read_csv(&path, "sentence", "label");
                let setting = if variant.is_empty() { "full" } else { "subset" };
                let published = (version == "v1").then(|| format!("{bot}{variant}"));
                let mut task = labelled_task(&name, setting, "en", &train, &test, None, options, published);
                task.oos_label = Some(HINT3_OOS);
                out.push(task);
            }
        }
    }
    if wanted(options, "atec") {
        out.push(atec_task(&d.join("atec-zh/atec_nlp_sim_train.tsv"), options));
    }
    out
}

/// A knowledge base from a labelled training file and the questions of the chosen split.
#[allow(clippy::too_many_arguments)]
fn labelled_task(
    name: &str,
    setting: &str,
    lang: &'static str,
    train: &[Example],
    test: &[Example],
    shots: Option<usize>,
    options: &Options,
    published: Option<String>,
) -> Task {
    let mut by_label: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in train {
        by_label.entry(e.label.clone()).or_default().push(e.text.clone());
    }
    let mut queries = Vec::new();
    let mut phrasings = BTreeMap::new();
    for (label, texts) in by_label {
        let mut kept = texts.clone();
        if options.split == Split::Dev {
            // Hold out 10% of the label's examples; the rest stay in file order.
            let mut order: Vec<usize> = (0..texts.len()).collect();
            shuffle(&mut order, options.seed ^ hash(&label));
            let held = if texts.len() >= 2 { ((texts.len() as f64 * DEV_SHARE).round() as usize).max(1) } else { 0 };
            let held_out: HashSet<usize> = order[..held].iter().copied().collect();
            queries.extend(held_out.iter().map(|&i| Example { text: texts[i].clone(), label: label.clone() }));
            kept = (0..texts.len()).filter(|i| !held_out.contains(i)).map(|i| texts[i].clone()).collect();
        }
        if let Some(n) = shots {
            let mut order: Vec<usize> = (0..kept.len()).collect();
            shuffle(&mut order, options.seed.wrapping_add(1) ^ hash(&label));
            kept = order.into_iter().take(n).map(|i| kept[i].clone()).collect();
        }
        phrasings.insert(label, kept);
    }
    if options.split == Split::Test {
        queries = test.to_vec();
    } else {
        queries.sort_by(|a, b| a.label.cmp(&b.label).then(a.text.cmp(&b.text)));
    }
    let published = published.filter(|_| options.split == Split::Test);
    Task { name: name.to_owned(), setting: setting.to_owned(), lang, phrasings, queries, oos_label: None, published }
}

/// ATEC (Chinese question pairs) as retrieval: every group of questions linked by
/// "same meaning" pairs is one FAQ entry; one member (fixed seed) is held out as the
/// question, the others are the entry's phrasings. Dev asks a fixed 20% of the groups,
/// test the other 80%; the knowledge base always holds every group. Groups are only as
/// complete as the pair annotation: two groups may mean the same thing without a pair
/// linking them, so top-1 here is a lower bound.
fn atec_task(path: &Path, options: &Options) -> Task {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .has_headers(false)
        .flexible(true)
        .quoting(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let clean = |s: &str| s.replace('\u{feff}', "").trim().to_owned();
    let mut parent: HashMap<String, String> = HashMap::new();
    fn root(parent: &mut HashMap<String, String>, x: &str) -> String {
        let mut x = x.to_owned();
        loop {
            let p = parent.entry(x.clone()).or_insert_with(|| x.clone()).clone();
            if p == x {
                return x;
            }
            x = p;
        }
    }
    let mut members: Vec<String> = Vec::new();
    for record in reader.records() {
        let record = record.expect("ATEC row");
        if record.len() < 4 || clean(&record[3]) != "1" {
            continue;
        }
        let (a, b) = (clean(&record[1]), clean(&record[2]));
        if a.is_empty() || b.is_empty() {
            continue;
        }
        members.push(a.clone());
        members.push(b.clone());
        let (ra, rb) = (root(&mut parent, &a), root(&mut parent, &b));
        if ra != rb {
            parent.insert(ra, rb);
        }
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for m in members {
        if seen.insert(m.clone()) {
            let r = root(&mut parent, &m);
            groups.entry(r).or_default().push(m);
        }
    }
    let mut phrasings = BTreeMap::new();
    let mut queries = Vec::new();
    for (n, (root_text, mut texts)) in groups.into_iter().enumerate() {
        if texts.len() < 2 {
            continue;
        }
        let label = format!("g{n}");
        let mut order: Vec<usize> = (0..texts.len()).collect();
        shuffle(&mut order, options.seed ^ hash(&root_text));
        let query = texts[order[0]].clone();
        texts.retain(|t| *t != query);
        let dev = hash(&format!("{}{root_text}", options.seed)) % 5 == 0;
        if dev == (options.split == Split::Dev) {
            queries.push(Example { text: query, label: label.clone() });
        }
        phrasings.insert(label, texts);
    }
    Task {
        name: "atec-zh".to_owned(),
        setting: "pairs".to_owned(),
        lang: "zh",
        phrasings,
        queries,
        oos_label: None,
        published: None,
    }
}

fn read_csv(path: &Path, text_column: &str, label_column: &str) -> Vec<Example> {
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().expect("header row").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .unwrap_or_else(|| panic!("{}: no column {name}", path.display()))
    };
    let (t, l) = (column(text_column), column(label_column));
    reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter_map(|r| {
            let text = r.get(t)?.trim().to_owned();
            let label = r.get(l)?.trim().to_owned();
            (!text.is_empty() && !label.is_empty()).then_some(Example { text, label })
        })
        .collect()
}

#[derive(Serialize)]
struct FaqFile {
    entry: Vec<FaqOut>,
}

#[derive(Serialize)]
struct FaqOut {
    id: String,
    lang: String,
    question: String,
    also: Vec<String>,
    answer: String,
}

/// Lowercase ASCII letters, digits and single dashes; unique among `used`.
fn label_id(label: &str, used: &mut HashSet<String>) -> String {
    let mut id = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    id.truncate(90);
    while id.ends_with('-') {
        id.pop();
    }
    if id.is_empty() {
        id.push_str("intent");
    }
    let mut unique = id.clone();
    let mut n = 2;
    while !used.insert(unique.clone()) {
        unique = format!("{id}-{n}");
        n += 1;
    }
    unique
}

fn run(task: &Task, threshold: f32, max_misses: usize) -> Outcome {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut used = HashSet::new();
    let mut ids: HashMap<&str, String> = HashMap::new();
    let mut file = FaqFile { entry: Vec::new() };
    for (label, texts) in &task.phrasings {
        let Some((question, also)) = texts.split_first() else { continue };
        let id = label_id(label, &mut used);
        ids.insert(label, id.clone());
        file.entry.push(FaqOut {
            id,
            lang: task.lang.to_owned(),
            question: question.clone(),
            also: also.to_vec(),
            answer: label.clone(),
        });
    }
    std::fs::create_dir_all(dir.path().join("faq")).expect("mkdir");
    let toml = toml::to_string(&file).expect("serialize FAQ");
    std::fs::write(dir.path().join("faq/bench.toml"), toml).expect("write FAQ");
    let content = KbContent::load(dir.path()).expect("load KB");
    for e in &content.errors {
        eprintln!("{}: {e}", task.name);
    }
    let kb = KnowledgeBase::in_ram(content).expect("index builds");
    let mut outcome = Outcome { build: started.elapsed(), ..Outcome::default() };
    for q in &task.queries {
        let t = Instant::now();
        let hits = kb.search(&q.text, task.lang, 5).expect("search");
        outcome.latencies.push(t.elapsed());
        let best = hits.first();
        let confident = best.is_some_and(|h| h.confidence >= threshold);
        if task.oos_label == Some(q.label.as_str()) {
            outcome.oos += 1;
            outcome.oos_fallback += usize::from(!confident);
            continue;
        }
        outcome.in_scope += 1;
        let id = ids.get(q.label.as_str());
        let right = best.is_some_and(|h| Some(&h.id) == id);
        outcome.top1 += usize::from(right);
        outcome.top5 += usize::from(hits.iter().any(|h| Some(&h.id) == id));
        outcome.answered_right += usize::from(right && confident);
        if !right && outcome.misses.len() < max_misses {
            let mut line = format!("MISS [{}] {:?} ->", q.label, q.text);
            for h in hits.iter().take(3) {
                let _ = write!(line, " {} ({:.2})", h.id, h.confidence);
            }
            outcome.misses.push(line);
        }
    }
    outcome
}

/// One row of a HINT3 published-results file.
struct Published {
    threshold: f64,
    accuracy: f64,
    in_scope: f64,
    oos_recall: f64,
}

fn print_hint3(datasets: &Path, results: &[(Task, Outcome)], threshold: f32) {
    println!();
    println!("HINT3 v1 test vs published (in-scope accuracy / OOS recall / overall accuracy).");
    println!(
        "ours: product threshold {threshold:.2}; platforms: the row of their threshold sweep whose OOS recall is \
         closest to ours (same operating point), threshold in brackets"
    );
    let mut header = format!("{:<24} {:<20}", "bot", "ours");
    for p in HINT3_PLATFORMS {
        header.push_str(&format!(" {p:<25}"));
    }
    println!("{header}");
    for (task, o) in results {
        let Some(stem) = &task.published else { continue };
        let oos_recall = ratio(o.oos_fallback, o.oos);
        let overall = ratio(o.answered_right + o.oos_fallback, o.in_scope + o.oos);
        let mut line = format!(
            "{:<24} {:<20}",
            format!("{} {}", task.name.trim_start_matches("hint3-v1-"), task.setting),
            format!("{:.3}/{:.3}/{:.3}", ratio(o.answered_right, o.in_scope), oos_recall, overall)
        );
        for p in HINT3_PLATFORMS {
            let rows = read_published(&datasets.join(format!("hint3/published-results/{p}_{stem}.csv")));
            let cell = rows
                .iter()
                .min_by(|a, b| (a.oos_recall - oos_recall).abs().total_cmp(&(b.oos_recall - oos_recall).abs()))
                .map_or_else(
                    || "-".to_owned(),
                    |r| format!("{:.3}/{:.3}/{:.3} [{:.1}]", r.in_scope, r.oos_recall, r.accuracy, r.threshold),
                );
            line.push_str(&format!(" {cell:<25}"));
        }
        println!("{line}");
    }
    println!(
        "{:<24} {:<20} (ours without a threshold: top-1 in-scope; published at threshold 0.1)",
        "in-scope, no threshold", ""
    );
    for (task, o) in results {
        let Some(stem) = &task.published else { continue };
        let mut line = format!(
            "{:<24} {:<20}",
            format!("{} {}", task.name.trim_start_matches("hint3-v1-"), task.setting),
            format!("{:.3}", ratio(o.top1, o.in_scope))
        );
        for p in HINT3_PLATFORMS {
            let rows = read_published(&datasets.join(format!("hint3/published-results/{p}_{stem}.csv")));
            let cell = rows.first().map_or_else(|| "-".to_owned(), |r| format!("{:.3}", r.in_scope));
            line.push_str(&format!(" {cell:<25}"));
        }
        println!("{line}");
    }
}

fn read_published(path: &Path) -> Vec<Published> {
    let Ok(mut reader) = csv::Reader::from_path(path) else { return Vec::new() };
    let mut rows: Vec<Published> = reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|r| {
            let f = |i: usize| r.get(i).and_then(|v| v.trim().parse::<f64>().ok());
            Some(Published { threshold: f(0)?, accuracy: f(1)?, in_scope: f(3)?, oos_recall: f(4)? })
        })
        .collect();
    rows.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
    rows
}

/// FNV-1a, for per-label seeds that do not depend on label order.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Fisher–Yates with SplitMix64: the same order on every platform and crate version.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
