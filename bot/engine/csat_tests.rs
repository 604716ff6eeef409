//! Transcripts of ratings and "did this help?": when the bot asks, one rating per
//! conversation, and what a "no" offers.

use super::handoff_tests::{ann, key, said};
use super::tests::{Chat, hit};
use super::*;

fn asks_rating(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::Say(r) if r.extras.rating && r.extras.quick_replies.len() == 5))
}

fn rate(chat: &mut Chat, score: u8, comment: Option<&str>) -> Vec<Effect> {
    chat.step(Event::Rate { score, comment: comment.map(str::to_owned) })
}

/// Ann holds the chat, answers, and closes it.
fn closed_by_ann() -> (Chat, Vec<Effect>) {
    let mut chat = Chat::held_by_ann();
    chat.act(AgentAction::Message { agent: ann().id, text: "Sorted: refund sent.".into() });
    let out = chat.act(AgentAction::Close { agent: ann().id });
    (chat, out)
}

fn minutes(chat: &mut Chat, n: i64) {
    chat.now += chrono::Duration::minutes(n);
}

#[test]
fn an_agent_closing_asks_once_and_the_rating_names_who_resolved_it() {
    let (mut chat, out) = closed_by_ann();
    assert!(asks_rating(&out), "{out:?}");
    assert_eq!(key(&lines_text(&out)[1]), "csat_question_agent");
    assert_eq!(chat.state.resolver.as_ref().map(|r| (r.agent.id.as_str(), r.team.as_str())), Some(("a-ann", "sales")));

    let out = rate(&mut chat, 4, Some("quick and kind"));
    assert_eq!(out[0], Effect::RecordCsat { score: 4, replaces: false, comment: Some("quick and kind".into()) });
    assert_eq!(said(&out), [(Sender::Bot, "csat_thanks".to_owned())]);

    // A changed mind within the window replaces it; after it, refused.
    minutes(&mut chat, 3);
    let out = rate(&mut chat, 2, None);
    assert!(matches!(out[0], Effect::RecordCsat { score: 2, replaces: true, .. }), "{out:?}");
    minutes(&mut chat, RATING_CHANGE_MINUTES + 1);
    assert_eq!(rate(&mut chat, 5, None), [Effect::Refused(Refusal::AlreadyRated)]);
}

fn lines_text(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Say(r) => Some(r.text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rating_nobody_asked_for_is_refused() {
    let mut chat = Chat::keyed();
    chat.text(2, "hello");
    assert_eq!(rate(&mut chat, 5, None), [Effect::Refused(Refusal::RatingNotRequested)]);
}

#[test]
fn not_twice_within_the_configured_days() {
    let (mut chat, out) = closed_by_ann();
    assert!(asks_rating(&out));
    // The visitor comes back the next day, gets a person again, who closes again.
    chat.now += chrono::Duration::days(1);
    chat.text(20, "talk to a person");
    chat.queued_news("sales", 1);
    chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() });
    chat.act(AgentAction::Message { agent: ann().id, text: "Hello again".into() });
    let out = chat.act(AgentAction::Close { agent: ann().id });
    assert!(!asks_rating(&out), "asked twice within 30 days: {out:?}");
    assert!(chat.state.offered.is_empty(), "no dead rating buttons are remembered");

    // Without a limit it asks again.
    chat.policy.csat.min_days_between = 0;
    chat.text(30, "talk to a person");
    chat.queued_news("sales", 1);
    chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() });
    let out = chat.act(AgentAction::Close { agent: ann().id });
    assert!(asks_rating(&out));
}

#[test]
fn the_same_person_asked_in_another_conversation_is_not_asked_again() {
    let mut chat = Chat::held_by_ann();
    chat.state.visitor_asked_at = Some(chat.now - chrono::Duration::days(10));
    let out = chat.act(AgentAction::Close { agent: ann().id });
    assert!(!asks_rating(&out));

    let mut chat = Chat::held_by_ann();
    chat.state.visitor_asked_at = Some(chat.now - chrono::Duration::days(31));
    let out = chat.act(AgentAction::Close { agent: ann().id });
    assert!(asks_rating(&out), "31 days later is fine");
}

#[test]
fn a_greeting_only_chat_is_not_asked_but_the_api_may_ask() {
    let mut chat = Chat::keyed();
    chat.text(2, "hello");
    chat.step(Event::HandoffRequested { reason: "shop asked".into() });
    chat.queued_news("sales", 1);
    chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() });
    let out = chat.act(AgentAction::Close { agent: ann().id });
    assert!(!asks_rating(&out), "nobody said anything real: {out:?}");

    let out = chat.step(Event::CsatRequested);
    assert!(asks_rating(&out), "an explicit request asks: {out:?}");
    rate(&mut chat, 5, None);
    minutes(&mut chat, RATING_CHANGE_MINUTES + 1);
    assert_eq!(chat.step(Event::CsatRequested), [Effect::Refused(Refusal::AlreadyRated)]);
}

#[test]
fn closing_can_be_configured_not_to_ask() {
    let mut chat = Chat::held_by_ann();
    chat.policy.csat.after_agent_close = false;
    let out = chat.act(AgentAction::Close { agent: ann().id });
    assert!(!asks_rating(&out));
}

fn answered(chat: &mut Chat) {
    chat.text(2, "how long does a refund take");
    chat.step(Event::SearchResults {
        reply_to: Seq(2),
        query: "how long does a refund take".into(),
        lang: "en".into(),
        hits: vec![hit(DocKind::Faq, "refund-time", 0.9)],
    });
}

fn vote(seq: i64, helpful: bool) -> Event {
    Event::AnswerFeedback(AnswerFeedback {
        seq: Seq(seq),
        doc: "faq:refund-time".into(),
        doc_lang: "en".into(),
        score: 0.9,
        helpful,
        question: Some((Seq(2), "how long does a refund take".into())),
    })
}

#[test]
fn a_helpful_answer_is_kept_and_asks_for_a_rating_once() {
    let mut chat = Chat::keyed();
    answered(&mut chat);
    assert_eq!(chat.state.topic.as_deref(), Some("faq:refund-time"));
    let out = chat.step(vote(3, true));
    assert_eq!(
        out[0],
        Effect::RecordFeedback { seq: Seq(3), doc: "faq:refund-time".into(), lang: "en".into(), helpful: true }
    );
    assert!(asks_rating(&out));
    assert_eq!(chat.step(vote(3, false)), [Effect::Refused(Refusal::AlreadyVoted)]);
}

#[test]
fn an_unhelpful_answer_offers_other_articles_and_a_person_and_feeds_the_gaps() {
    let mut chat = Chat::keyed();
    answered(&mut chat);
    let out = chat.step(vote(3, false));
    assert!(!asks_rating(&out));
    assert!(matches!(&out[0], Effect::RecordFeedback { helpful: false, .. }));
    assert!(
        matches!(&out[1], Effect::RecordGap { seq: Seq(2), near_miss: Some(n), .. } if n.id == "refund-time"),
        "{out:?}"
    );
    assert!(matches!(&out[2], Effect::Search { reply_to: Seq(2), lang, .. } if lang == "en"), "{out:?}");
    assert_eq!(chat.state.unhelpful, ["faq:refund-time"]);

    let out = chat.step(Event::SearchResults {
        reply_to: Seq(2),
        query: "how long does a refund take".into(),
        lang: "en".into(),
        hits: vec![
            hit(DocKind::Faq, "refund-time", 0.9),
            hit(DocKind::Article, "refunds", 0.5),
            hit(DocKind::Article, "returns", 0.3),
        ],
    });
    let [Effect::Say(offer)] = &out[..] else { panic!("one offer: {out:?}") };
    assert_eq!(key(&offer.text), "unhelpful_related");
    let ids: Vec<&str> = offer.extras.articles.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["refunds", "returns"]);
    assert_eq!(offer.extras.quick_replies[0].value, HANDOFF_VALUE);
    assert!(chat.state.pending_unhelpful.is_none());
}

#[test]
fn an_unhelpful_answer_with_nothing_else_offers_a_person() {
    let mut chat = Chat::keyed();
    answered(&mut chat);
    chat.step(vote(3, false));
    let out = chat.step(Event::SearchResults {
        reply_to: Seq(2),
        query: "q".into(),
        lang: "en".into(),
        hits: vec![hit(DocKind::Faq, "refund-time", 0.9)],
    });
    assert_eq!(said(&out), [(Sender::Bot, "unhelpful_person".to_owned())]);
}

#[test]
fn a_quiet_chat_the_bot_answered_is_asked_once_but_not_one_a_person_holds() {
    let mut chat = Chat::keyed();
    answered(&mut chat);
    let out = chat.step(Event::Inactive);
    assert!(asks_rating(&out), "{out:?}");
    assert!(chat.step(Event::Inactive).is_empty(), "the question is already open");

    let mut held = Chat::held_by_ann();
    held.act(AgentAction::Message { agent: ann().id, text: "Hi".into() });
    assert!(held.step(Event::Inactive).is_empty(), "agents close their own chats");

    let mut off = Chat::keyed();
    off.policy.csat.after_inactivity_minutes = 0;
    answered(&mut off);
    assert!(off.step(Event::Inactive).is_empty());
}
