//! Criterion benchmark of the CX report (`GET /api/metrics` after its reads): computing
//! every figure and a daily series for 10,000 conversations over 30 days. The baseline,
//! measured in the same run, is cloning the same facts (one pass over the same memory),
//! so the ratio report / clone says how the arithmetic itself changed whatever the
//! machine. Run with `cargo bench --bench metrics`.

// criterion_group! generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use supportbot::metrics::EventKind;
use supportbot::metrics::report::{ConversationFacts, EventFact, Interval, MetricsFilter, compute};

const CONVERSATIONS: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;

fn event(kind: EventKind, at: i64, agent: Option<&str>, detail: Option<String>, value: Option<i64>) -> EventFact {
    EventFact { kind, at, agent: agent.map(str::to_owned), team: Some("support".into()), detail, value }
}

/// A month of chats: most answered by the bot, one in four handed off, closed and rated.
fn facts() -> Vec<ConversationFacts> {
    (0..CONVERSATIONS)
        .map(|i| {
            let opened = i * 30 * DAY_MS / CONVERSATIONS;
            let mut events = vec![
                event(EventKind::Opened, opened, None, None, None),
                event(EventKind::Answered, opened + 1_000, None, Some(format!("faq:q{}", i % 300)), None),
            ];
            if i % 7 == 0 {
                events.push(event(
                    EventKind::Fallback,
                    opened + 2_000,
                    None,
                    Some(format!("question {}", i % 50)),
                    None,
                ));
            }
            if i % 4 == 0 {
                let agent = ["ann", "bob", "eve"][usize::try_from(i % 3).unwrap_or(0)];
                events.extend([
                    event(
                        EventKind::HandoffRequested,
                        opened + 3_000,
                        None,
                        Some("visitor asked for a person".into()),
                        None,
                    ),
                    event(EventKind::Queued, opened + 3_000, None, None, None),
                    event(EventKind::Assigned, opened + 40_000 + i % 90_000, Some(agent), None, None),
                    event(EventKind::AgentReplied, opened + 60_000 + i % 90_000, Some(agent), None, None),
                    event(EventKind::Closed, opened + 400_000, Some(agent), None, None),
                    event(EventKind::Rated, opened + 410_000, None, None, Some(1 + i % 5)),
                ]);
            }
            ConversationFacts {
                opened_at: opened,
                lang: Some(["en", "pl", "ru", "zh-Hans"][usize::try_from(i % 4).unwrap_or(0)].into()),
                first_visitor: Some(opened + 500),
                first_reply: Some(opened + 1_000),
                events,
            }
        })
        .collect()
}

fn report(c: &mut Criterion) {
    let facts = facts();
    let filter = MetricsFilter {
        from: DateTime::from_timestamp_millis(0).unwrap_or_default(),
        to: DateTime::from_timestamp_millis(30 * DAY_MS).unwrap_or_default(),
        team: None,
        agent: None,
        lang: None,
        interval: Interval::Day,
    };
    let mut group = c.benchmark_group("metrics_10k_conversations");
    group.bench_function("report/day_series", |b| b.iter(|| compute(black_box(&facts), &filter)));
    group.bench_function("baseline/clone_facts", |b| b.iter(|| black_box(&facts).clone()));
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
