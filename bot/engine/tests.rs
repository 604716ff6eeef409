//! Engine transcripts: whole conversations without sockets, store or index.

use super::flow::MAX_FAILED_PROOFS;
use super::*;

pub(super) fn hit(kind: DocKind, id: &str, confidence: f32) -> KbHit {
    KbHit {
        kind,
        id: id.into(),
        lang: "en".into(),
        title: format!("Title of {id}"),
        url: format!("/kb/en/{id}"),
        answer: format!("Answer from {id}."),
        confidence,
        bm25: 1.0,
    }
}

/// One conversation driven through [`step`] at a fixed time (shared by the transcript
/// test modules).
pub(super) struct Chat {
    pub(super) state: ConversationState,
    pub(super) script: BotScript,
    pub(super) policy: AnswerPolicy,
    pub(super) now: DateTime<Utc>,
}

impl Chat {
    fn new() -> Self {
        Self::with_script(BotScript::builtin().expect("builtin script"))
    }

    /// A new English conversation on `script`.
    pub(super) fn with_script(script: BotScript) -> Self {
        let now =
            DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default();
        Self { state: ConversationState::new(Some("en-GB")), script, policy: AnswerPolicy::default(), now }
    }

    pub(super) fn step(&mut self, event: Event) -> Vec<Effect> {
        step(&mut self.state, event, &self.script, &self.policy, self.now)
    }
}

fn said(effects: &[Effect]) -> Vec<(Sender, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Say(r) => Some((r.from, r.text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn greeting_is_small_talk_question_is_searched() {
    let mut chat = Chat::new();
    let out = chat.step(Event::VisitorText { seq: Seq(2), text: "Hi there!".into() });
    assert_eq!(said(&out), [(Sender::Bot, "Hello! How can I help you today?".to_owned())]);
    let out = chat.step(Event::VisitorText { seq: Seq(4), text: "hi, how much is delivery".into() });
    assert_eq!(
        out,
        [Effect::Search {
            query: "hi, how much is delivery".into(),
            lang: "en".into(),
            asked_in: None,
            reply_to: Seq(4)
        }]
    );
}

#[test]
fn confident_hit_is_the_answer_with_its_source() {
    let mut chat = Chat::new();
    let out = chat.step(Event::SearchResults {
        query: "q".into(),
        lang: "en".into(),
        reply_to: Seq(3),
        hits: vec![hit(DocKind::Faq, "free-delivery", 0.9), hit(DocKind::Article, "returns", 0.4)],
    });
    let [Effect::Say(reply)] = out.as_slice() else { panic!("one reply expected: {out:?}") };
    assert_eq!(reply.text, "Answer from free-delivery.");
    assert_eq!(reply.reply_to, Some(Seq(3)));
    let source = reply.extras.source.as_ref().expect("source");
    assert_eq!((source.kind.as_str(), source.id.as_str()), ("faq", "free-delivery"));
    assert!(reply.extras.quick_replies.is_empty());
}

#[test]
fn unsure_answer_is_honest_and_offers_a_person() {
    let mut chat = Chat::new();
    let out = chat.step(Event::SearchResults {
        query: "q".into(),
        lang: "en".into(),
        reply_to: Seq(3),
        hits: vec![
            hit(DocKind::Article, "a", 0.40),
            hit(DocKind::Faq, "f", 0.35),
            hit(DocKind::Article, "b", 0.3),
            hit(DocKind::Article, "c", 0.1),
        ],
    });
    let [Effect::Say(reply), Effect::RecordGap { near_miss, .. }] = out.as_slice() else {
        panic!("a reply and a recorded gap expected: {out:?}")
    };
    assert_eq!(near_miss.as_ref().map(|n| n.id.as_str()), Some("a"), "the best candidate is the near miss");
    assert!(reply.extras.source.is_none());
    let ids: Vec<_> = reply.extras.articles.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "only articles above the related threshold");
    assert_eq!(reply.extras.quick_replies[0].value, HANDOFF_VALUE);

    assert_eq!(chat.state.owner, Owner::Bot, "one fallback does not hand the chat over");
    assert_eq!(chat.state.fallbacks_in_row, 1);

    // A second fallback in a row (policy `handoff_after_fallbacks`, 2 by default): still
    // honest, and the chat goes to a person.
    assert_eq!(chat.policy.handoff_after_fallbacks, 2);
    let out = chat.step(Event::SearchResults { query: "q".into(), lang: "en".into(), reply_to: Seq(5), hits: vec![] });
    let [
        Effect::Say(reply),
        Effect::RecordGap { near_miss: None, .. },
        Effect::Say(handoff),
        Effect::RequestHandoff { reason },
    ] = out.as_slice()
    else {
        panic!("a fallback, a recorded gap and a handoff expected: {out:?}")
    };
    assert_eq!(reply.from, Sender::Bot);
    assert!(reply.extras.source.is_none());
    assert!(reply.extras.articles.is_empty());
    assert_eq!(reply.extras.quick_replies[0].value, HANDOFF_VALUE);
    assert_eq!((handoff.from, handoff.reply_to), (Sender::System, Some(Seq(5))));
    assert_eq!(reason, reasons::REPEATED_FALLBACK);
    assert_eq!(chat.state.owner, Owner::Queued { reason: reasons::REPEATED_FALLBACK.into(), team: String::new() });
    assert_eq!(chat.state.fallbacks_in_row, 0, "the count starts again");
}

#[test]
fn talk_to_a_person_requests_handoff_once() {
    let mut chat = Chat::new();
    chat.step(Event::SearchResults { query: "q".into(), lang: "en".into(), reply_to: Seq(3), hits: vec![] });
    assert_eq!(chat.state.choice_label("handoff", &chat.script).as_deref(), Some("Talk to a person"));
    let out = chat.step(Event::VisitorChoice { seq: Seq(5), value: "handoff".into() });
    assert!(matches!(out.as_slice(), [Effect::Say(r), Effect::RequestHandoff { .. }] if r.from == Sender::System));
    let out = chat.step(Event::VisitorChoice { seq: Seq(7), value: "handoff".into() });
    assert!(matches!(out.as_slice(), [Effect::Say(_)]), "no second handoff: {out:?}");
}

#[test]
fn state_survives_serialization() {
    let mut chat = Chat::new();
    chat.step(Event::SearchResults { query: "q".into(), lang: "en".into(), reply_to: Seq(3), hits: vec![] });
    let json = serde_json::to_string(&chat.state).expect("serialize");
    let back: ConversationState = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, chat.state);
}

fn hit_in(lang: &str, id: &str, confidence: f32) -> KbHit {
    KbHit { lang: lang.into(), url: format!("/kb/{lang}/{id}"), ..hit(DocKind::Article, id, confidence) }
}

#[test]
fn the_conversation_follows_the_language_the_visitor_writes() {
    let mut chat = Chat::new();
    let out = chat
        .step(Event::VisitorText {
            seq: Seq(2), text: "Сколько стоит доставка? Хочу заказать чайник.".into()
        });
    assert!(matches!(&out[..], [Effect::Search { lang, .. }] if lang == "ru"), "{out:?}");
    assert_eq!(chat.state.lang, "ru");
    // A short message says nothing: the conversation stays Russian.
    chat.step(Event::VisitorText { seq: Seq(4), text: "ok".into() });
    assert_eq!(chat.state.lang, "ru");
}

#[test]
fn nothing_confident_in_the_visitors_language_tries_english_and_says_so() {
    let mut chat = Chat::new();
    chat.state.lang = "pl".into();
    let out = chat.step(Event::SearchResults {
        query: "Klarna raty".into(),
        lang: "pl".into(),
        reply_to: Seq(3),
        hits: vec![hit_in("pl", "platnosci", 0.3)],
    });
    assert_eq!(
        out,
        [Effect::Search {
            query: "Klarna raty".into(),
            lang: "en".into(),
            asked_in: Some("pl".into()),
            reply_to: Seq(3)
        }]
    );
    let out = chat.step(Event::SearchResults {
        query: "Klarna raty".into(),
        lang: "en".into(),
        reply_to: Seq(3),
        hits: vec![hit_in("en", "paying-with-klarna", 0.8)],
    });
    let [Effect::Say(reply)] = &out[..] else { panic!("one answer: {out:?}") };
    assert_eq!(
        reply.extras.source.as_ref().map(|s| (s.id.as_str(), s.lang.as_str())),
        Some(("paying-with-klarna", "en"))
    );
    assert!(reply.text.ends_with("Answer from paying-with-klarna."), "{}", reply.text);
    assert!(reply.text.len() > "Answer from paying-with-klarna.".len(), "a note says the answer is in English");
}

#[test]
fn no_answer_in_either_language_falls_back_once_with_related_articles_from_both() {
    let mut chat = Chat::new();
    chat.state.lang = "zh-Hant".into();
    let out = chat.step(Event::SearchResults {
        query: "q".into(),
        lang: "zh-Hant".into(),
        reply_to: Seq(3),
        hits: vec![hit_in("zh-Hant", "returns-policy", 0.3)],
    });
    assert!(matches!(&out[..], [Effect::Search { lang, .. }] if lang == "en"));
    let out = chat.step(Event::SearchResults {
        query: "q".into(),
        lang: "en".into(),
        reply_to: Seq(3),
        hits: vec![hit_in("en", "exchanges", 0.25)],
    });
    let [Effect::Say(reply), Effect::RecordGap { lang, near_miss, .. }] = &out[..] else {
        panic!("one fallback: {out:?}")
    };
    assert_eq!(lang, "zh-Hant");
    assert_eq!(near_miss.as_ref().map(|n| n.id.as_str()), Some("returns-policy"), "best of both searches");
    assert!(reply.extras.source.is_none());
    let related: Vec<&str> = reply.extras.articles.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(related, ["returns-policy", "exchanges"]);
    assert_eq!(reply.extras.quick_replies[0].value, HANDOFF_VALUE);
}

#[test]
fn english_visitors_are_not_searched_twice() {
    let mut chat = Chat::new();
    let out = chat.step(Event::SearchResults { query: "q".into(), lang: "en".into(), reply_to: Seq(3), hits: vec![] });
    assert!(matches!(&out[..], [Effect::Say(_), Effect::RecordGap { .. }]), "{out:?}");
}

// ---- order tracking flow (flows/order-tracking.toml, embedded copy)

fn texts(effects: &[Effect]) -> Vec<String> {
    said(effects).into_iter().map(|(_, t)| t).collect()
}

fn delayed_order() -> LookupOutcome {
    let fields = [
        ("id", "FH-100234"),
        ("status", "delayed"),
        ("carrier", "DPD"),
        ("tracking_url", "https://track.example/1"),
        ("expected_delivery", "2026-12-02"),
        ("delivered_at", ""),
        ("delay_reason", "A storm closed the ferry crossing."),
    ];
    LookupOutcome::Found(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

#[test]
fn an_order_number_in_the_first_message_is_not_asked_for_again() {
    let mut chat = Chat::new();
    let out = chat.step(Event::VisitorText { seq: Seq(2), text: "where is my order FH-100234?".into() });
    let [Effect::Say(reply)] = &out[..] else { panic!("{out:?}") };
    assert!(reply.text.contains("e-mail address or the postcode"), "asks for proof only: {}", reply.text);
    let out = chat.step(Event::VisitorText { seq: Seq(4), text: "jane@example.com".into() });
    assert_eq!(
        out,
        [Effect::LookupOrder { order_id: "FH-100234".into(), proof: "jane@example.com".into(), reply_to: Seq(4) }]
    );
    let out = chat.step(Event::LookupResult { reply_to: Seq(4), outcome: delayed_order() });
    let said = texts(&out);
    assert!(said[0].contains("delayed") && said[0].contains("A storm closed the ferry crossing."), "{said:?}");
    assert!(said[0].contains("Wednesday 2 December 2026"), "date in the visitor's format: {said:?}");
    let Some(Effect::Say(options)) = out.last() else { panic!("{out:?}") };
    let values: Vec<&str> = options.extras.quick_replies.iter().map(|q| q.value.as_str()).collect();
    assert_eq!(values, ["flow:wait", "flow:cancel", "flow:person"]);
    let out = chat.step(Event::VisitorChoice { seq: Seq(6), value: "flow:cancel".into() });
    assert!(
        out.iter().any(|e| matches!(e, Effect::RequestHandoff { reason } if reason.contains("FH-100234"))),
        "{out:?}"
    );
    assert!(chat.state.flow.is_none());
}

#[test]
fn tracking_in_several_turns_with_a_retry() {
    let mut chat = Chat::new();
    let out = chat.step(Event::VisitorText { seq: Seq(2), text: "I want to track my order".into() });
    assert!(texts(&out)[0].contains("order number"), "{out:?}");
    let out = chat.step(Event::VisitorText { seq: Seq(4), text: "12".into() });
    assert!(texts(&out)[0].contains("doesn't look like an order number"), "{out:?}");
    let out = chat.step(Event::VisitorText { seq: Seq(6), text: "fh 100234".into() });
    assert!(texts(&out)[0].contains("postcode"), "{out:?}");
    let out = chat.step(Event::VisitorText { seq: Seq(8), text: "nn1 2ab".into() });
    assert!(
        matches!(&out[..], [Effect::LookupOrder { order_id, proof, .. }] if order_id == "FH-100234" && proof == "nn1 2ab")
    );
}

#[test]
fn a_wrong_proof_gives_nothing_away_and_repeated_ones_lock() {
    let mut chat = Chat::new();
    chat.step(Event::VisitorText { seq: Seq(2), text: "where is my order FH-100234".into() });
    for attempt in 0..MAX_FAILED_PROOFS {
        let seq = Seq(4 + 10 * i64::from(attempt));
        let out = chat.step(Event::VisitorText { seq, text: "wrong@example.com".into() });
        assert!(matches!(&out[..], [Effect::LookupOrder { .. }]), "attempt {attempt}: {out:?}");
        let out = chat.step(Event::LookupResult { reply_to: seq, outcome: LookupOutcome::NotFound });
        let all = texts(&out).join(" ");
        assert!(!all.contains("delayed") && !all.contains("DPD"), "nothing about the order: {all}");
        if attempt + 1 < MAX_FAILED_PROOFS {
            assert!(all.contains("couldn't find an order FH-100234"), "{all}");
            let out = chat.step(Event::VisitorChoice { seq: Seq(seq.0 + 2), value: "flow:retry".into() });
            assert!(texts(&out)[0].contains("order number"), "{out:?}");
            chat.step(Event::VisitorText { seq: Seq(seq.0 + 4), text: "FH-100234".into() });
        } else {
            assert!(all.contains("For your security"), "locked after {MAX_FAILED_PROOFS} wrong proofs: {all}");
            assert!(out.iter().any(|e| matches!(e, Effect::RequestHandoff { .. })));
        }
    }
    // A new attempt in the same conversation does not even look the order up.
    let out = chat.step(Event::VisitorText { seq: Seq(90), text: "track order FH-100234".into() });
    let out2 = chat.step(Event::VisitorText { seq: Seq(92), text: "right@example.com".into() });
    assert!(!out.iter().chain(&out2).any(|e| matches!(e, Effect::LookupOrder { .. })), "{out:?} {out2:?}");
}

#[test]
fn the_visitor_can_leave_a_flow_and_come_back() {
    let mut chat = Chat::new();
    chat.step(Event::VisitorText { seq: Seq(2), text: "where is my parcel?".into() });
    // A question mid-flow: searched; a confident answer offers to go back.
    let out = chat.step(Event::VisitorText { seq: Seq(4), text: "how long do refunds take?".into() });
    assert!(matches!(&out[..], [Effect::Search { .. }]), "{out:?}");
    let out = chat.step(Event::SearchResults {
        query: "how long do refunds take?".into(),
        lang: "en".into(),
        reply_to: Seq(4),
        hits: vec![hit(DocKind::Faq, "refund-timescales", 0.9)],
    });
    let [Effect::Say(reply)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(reply.extras.source.as_ref().map(|s| s.id.as_str()), Some("refund-timescales"));
    assert_eq!(reply.extras.quick_replies.last().map(|q| q.value.as_str()), Some(flow::RESUME_VALUE));
    let out = chat.step(Event::VisitorChoice { seq: Seq(6), value: flow::RESUME_VALUE.into() });
    assert!(texts(&out)[0].contains("order number"), "the flow asks again: {out:?}");
    // "cancel" leaves it.
    let out = chat.step(Event::VisitorText { seq: Seq(8), text: "cancel".into() });
    assert!(texts(&out)[0].contains("stopped"), "{out:?}");
    assert!(chat.state.flow.is_none());
    // Asking for a person leaves it too.
    chat.step(Event::VisitorText { seq: Seq(10), text: "where is my parcel?".into() });
    let out = chat.step(Event::VisitorText { seq: Seq(12), text: "talk to a person".into() });
    assert!(out.iter().any(|e| matches!(e, Effect::RequestHandoff { .. })), "{out:?}");
    assert!(chat.state.flow.is_none());
}

#[test]
fn an_idle_flow_times_out_and_the_message_is_a_normal_question() {
    let mut chat = Chat::new();
    chat.step(Event::VisitorText { seq: Seq(2), text: "where is my parcel?".into() });
    chat.now += chrono::Duration::hours(2);
    let out = chat.step(Event::VisitorText { seq: Seq(4), text: "100234".into() });
    assert!(matches!(&out[..], [Effect::Search { .. }]), "no longer in the flow: {out:?}");
    assert!(chat.state.flow.is_none());
}

#[test]
fn an_unavailable_order_system_is_said_honestly_and_offers_a_person() {
    let mut chat = Chat::new();
    chat.step(Event::VisitorText { seq: Seq(2), text: "where is my order FH-100234".into() });
    chat.step(Event::VisitorText { seq: Seq(4), text: "NN1 2AB".into() });
    let out = chat.step(Event::LookupResult { reply_to: Seq(4), outcome: LookupOutcome::Unavailable });
    assert!(texts(&out)[0].contains("isn't answering"), "{out:?}");
    assert!(out.iter().any(|e| matches!(e, Effect::RequestHandoff { .. })));
}

#[test]
fn a_finished_flow_asks_for_a_rating_and_keeps_it() {
    let mut chat = Chat::new();
    chat.step(Event::VisitorText { seq: Seq(2), text: "where is my order FH-100234".into() });
    chat.step(Event::VisitorText { seq: Seq(4), text: "NN1 2AB".into() });
    chat.step(Event::LookupResult { reply_to: Seq(4), outcome: delayed_order() });
    let out = chat.step(Event::VisitorChoice { seq: Seq(6), value: "flow:wait".into() });
    let Some(Effect::Say(rating)) = out.last() else { panic!("{out:?}") };
    assert_eq!(rating.extras.quick_replies.len(), 5);
    let out = chat.step(Event::VisitorChoice { seq: Seq(8), value: "csat:4".into() });
    assert!(matches!(out.first(), Some(Effect::RecordCsat { score: 4, replaces: false, .. })), "{out:?}");
}

#[test]
fn one_rating_per_conversation_a_changed_mind_replaces_it_for_five_minutes() {
    let mut chat = Chat::new();
    chat.step(Event::VisitorText { seq: Seq(2), text: "where is my order FH-100234".into() });
    chat.step(Event::VisitorText { seq: Seq(4), text: "NN1 2AB".into() });
    chat.step(Event::LookupResult { reply_to: Seq(4), outcome: delayed_order() });
    chat.step(Event::VisitorChoice { seq: Seq(6), value: "flow:wait".into() });
    let out = chat.step(Event::VisitorChoice { seq: Seq(8), value: "csat:4".into() });
    assert!(matches!(out.first(), Some(Effect::RecordCsat { score: 4, replaces: false, .. })), "{out:?}");
    chat.now += chrono::Duration::minutes(4);
    let out = chat.step(Event::VisitorChoice { seq: Seq(10), value: "csat:2".into() });
    assert!(matches!(out.first(), Some(Effect::RecordCsat { score: 2, replaces: true, .. })), "{out:?}");
    chat.now += chrono::Duration::minutes(2);
    let out = chat.step(Event::VisitorChoice { seq: Seq(12), value: "csat:5".into() });
    assert!(!out.iter().any(|e| matches!(e, Effect::RecordCsat { .. })), "refused after the window: {out:?}");
    assert!(texts(&out)[0].contains("already rated"), "{out:?}");
}
