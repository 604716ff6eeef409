//! Engine transcripts: whole conversations without sockets, store or index.

use super::*;

fn hit(kind: DocKind, id: &str, confidence: f32) -> KbHit {
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

struct Chat {
    state: ConversationState,
    script: BotScript,
    policy: AnswerPolicy,
}

impl Chat {
    fn new() -> Self {
        let script = BotScript::builtin().expect("builtin script");
        Self { state: ConversationState::new(Some("en-GB")), script, policy: AnswerPolicy::default() }
    }

    fn step(&mut self, event: Event) -> Vec<Effect> {
        step(&mut self.state, event, &self.script, &self.policy)
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
    let out = chat.step(Event::VisitorText { seq: Seq(4), text: "hi, where is my parcel".into() });
    assert_eq!(
        out,
        [Effect::Search {
            query: "hi, where is my parcel".into(),
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

    let out = chat.step(Event::SearchResults { query: "q".into(), lang: "en".into(), reply_to: Seq(5), hits: vec![] });
    let [Effect::Say(reply), Effect::RecordGap { near_miss: None, .. }] = out.as_slice() else {
        panic!("one reply expected: {out:?}")
    };
    assert!(reply.text.contains("talk to a person"), "{}", reply.text);
    assert!(reply.extras.articles.is_empty());
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
    let out = chat.step(Event::VisitorText {
        seq: Seq(2), text: "Где моя посылка? Уже неделя прошла.".into()
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
