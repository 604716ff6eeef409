//! Criterion benchmarks of the knowledge base on the sample content: answering a question
//! in each language (`kb.search`, the bot's own call) and building the whole knowledge
//! base (index, statistics and phrase models), the work of a start or a hot reload.
//!
//! Each search is paired with analyzing the same question (`kb.terms`), measured in the
//! same run, so the ratio search / analysis says how the search path itself changed
//! whatever the machine. Run with `cargo bench --bench kb`.

// criterion_group! generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use supportbot::kb::{KbContent, KnowledgeBase};

const QUESTIONS: [(&str, &str); 5] = [
    ("en", "my parcel was meant to arrive yesterday and tracking hasn't moved, what now?"),
    ("ru", "посылка должна была прийти вчера, а отслеживание не обновляется, что делать?"),
    ("pl", "paczka miała przyjść wczoraj, a śledzenie stoi w miejscu, co teraz?"),
    ("zh-Hans", "包裹昨天就该到了，物流一直没更新，怎么办？"),
    ("zh-Hant", "包裹昨天就該到了，物流一直沒更新，怎麼辦？"),
];

fn sample_content() -> KbContent {
    KbContent::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge-base")).expect("sample KB loads")
}

fn search(c: &mut Criterion) {
    let kb = KnowledgeBase::in_ram(sample_content()).expect("index builds");
    let mut group = c.benchmark_group("question");
    for (lang, question) in QUESTIONS {
        group.bench_function(format!("search/{lang}"), |b| {
            b.iter(|| kb.search(black_box(question), lang, 5).expect("search"));
        });
        group.bench_function(format!("analyze/{lang}"), |b| b.iter(|| kb.terms(black_box(question), lang)));
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let content = sample_content();
    let mut group = c.benchmark_group("knowledge_base");
    group.sample_size(10).measurement_time(Duration::from_secs(40));
    group.bench_function("build/sample", |b| {
        b.iter(|| KnowledgeBase::in_ram(black_box(content.clone())).expect("index builds"));
    });
    group.finish();
}

criterion_group!(benches, search, build);
criterion_main!(benches);
