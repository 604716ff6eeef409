//! Satisfaction ratings and "did this help?": when to ask, one rating per conversation,
//! and what a "no" on an answer offers instead.

use chrono::{DateTime, Duration, Utc};

use super::handoff::Refusal;
use super::{
    AnswerFeedback, AnswerPolicy, ConversationState, CsatPolicy, Effect, NearMiss, Offer, Owner, RATING_CHANGE_MINUTES,
    RELATED_ARTICLES, say_with, talk_to_person,
};
use crate::flows::BotScript;
use crate::ids::Seq;
use crate::kb::{DocKind, KbHit};
use crate::protocol::{ArticleLink, MessageExtras, QuickReply, Sender};

/// Asks for a 1–5 rating: the widget shows its rating control (`rating`), other clients
/// get the five quick replies. `question` is the catalog key of the line.
pub(super) fn ask(state: &mut ConversationState, script: &BotScript, reply_to: Option<Seq>, question: &str) -> Effect {
    let quick_replies = (1..=5)
        .map(|n| QuickReply {
            label: script.catalog.text(&state.lang, &format!("csat_{n}"), &[]),
            value: format!("{}{n}", super::flow::CSAT_PREFIX),
        })
        .collect();
    state.csat_pending = true;
    let text = script.catalog.text(&state.lang, question, &[]);
    let extras = MessageExtras { quick_replies, rating: true, ..MessageExtras::default() };
    say_with(state, Sender::Bot, text, reply_to, extras)
}

fn is_rating_ask(effect: &Effect) -> bool {
    matches!(effect, Effect::Say(reply) if reply.extras.rating)
}

/// Remembers what the step says about the chat: that the visitor asked something real
/// (a search, a flow, a person) or an agent answered, and what the chat is about.
/// `visitors_doing`: the step answers the visitor (not an agent, the desk or the API).
pub(super) fn note_progress(state: &mut ConversationState, effects: &[Effect], visitors_doing: bool) {
    let real = effects.iter().any(|e| {
        let visitor_asked = matches!(
            e,
            Effect::Search { .. }
                | Effect::LookupOrder { .. }
                | Effect::RequestHandoff { .. }
                | Effect::FileOfflineRequest { .. }
        );
        (visitors_doing && visitor_asked) || matches!(e, Effect::Say(r) if r.from == Sender::Agent && !r.extras.private)
    });
    if real || (visitors_doing && state.flow.is_some()) {
        state.substantive = true;
    }
    if let Some(flow) = &state.flow {
        state.topic = Some(format!("flow:{}", flow.flow));
    }
    for effect in effects {
        if let Effect::Say(reply) = effect {
            if let Some(source) = &reply.extras.source {
                state.topic = Some(format!("{}:{}", source.kind, source.id));
            }
        }
    }
}

/// Drops a rating ask the policy does not allow: after a greeting-only chat, in a
/// conversation already rated, or when the visitor was asked within the configured days.
/// An explicit request (the API) is only refused when already rated. A kept ask is
/// remembered.
pub(super) fn gate(
    state: &mut ConversationState,
    effects: &mut Vec<Effect>,
    policy: &CsatPolicy,
    now: DateTime<Utc>,
    explicit: bool,
) {
    if !effects.iter().any(is_rating_ask) {
        return;
    }
    let recently = |at: Option<DateTime<Utc>>| {
        policy.min_days_between > 0
            && at.is_some_and(|at| now - at < Duration::days(i64::from(policy.min_days_between)))
    };
    let allowed = state.rated_at.is_none()
        && (explicit || (state.substantive && !recently(state.csat_asked_at) && !recently(state.visitor_asked_at)));
    if allowed {
        state.csat_asked_at = Some(now);
        return;
    }
    effects.retain(|e| !is_rating_ask(e));
    state.csat_pending = false;
    if let Some(Effect::Say(last)) = effects.iter().rev().find(|e| matches!(e, Effect::Say(_))) {
        state.offered = last.extras.quick_replies.iter().map(Offer::from).collect();
    } else {
        state.offered.clear();
    }
}

/// Whether a rating may be stored now: `Ok(true)` when it replaces the first one (a
/// changed mind within [`RATING_CHANGE_MINUTES`]), `Ok(false)` for the first.
///
/// # Errors
/// [`Refusal::AlreadyRated`] after the window.
pub(super) fn admit(state: &mut ConversationState, now: DateTime<Utc>) -> Result<bool, Refusal> {
    match state.rated_at {
        Some(at) if now - at > Duration::minutes(RATING_CHANGE_MINUTES) => Err(Refusal::AlreadyRated),
        Some(_) => {
            state.csat_pending = false;
            Ok(true)
        }
        None => {
            state.csat_pending = false;
            state.rated_at = Some(now);
            Ok(false)
        }
    }
}

/// The widget's rating control was submitted.
pub(super) fn rate(
    state: &mut ConversationState,
    script: &BotScript,
    score: u8,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    if !(1..=5).contains(&score) {
        return vec![Effect::Refused(Refusal::RatingNotRequested)];
    }
    if !state.csat_pending && state.csat_asked_at.is_none() && state.rated_at.is_none() {
        return vec![Effect::Refused(Refusal::RatingNotRequested)];
    }
    match admit(state, now) {
        Ok(replaces) => {
            // The rating buttons of the question are answered.
            let thanks = script.catalog.text(&state.lang, "csat_thanks", &[]);
            vec![
                Effect::RecordCsat { score, replaces, comment },
                say_with(state, Sender::Bot, thanks, None, MessageExtras::default()),
            ]
        }
        Err(refusal) => vec![Effect::Refused(refusal)],
    }
}

/// The shop's API asks for a rating now.
pub(super) fn requested(state: &mut ConversationState, script: &BotScript) -> Vec<Effect> {
    if state.rated_at.is_some() {
        return vec![Effect::Refused(Refusal::AlreadyRated)];
    }
    vec![ask(state, script, None, "csat_question")]
}

/// The chat has been quiet: a chat the bot answered, with nothing left open (no flow, no
/// contact form, no question pending), ends with a rating request. Person-held, queued and
/// closed chats are the agents' to close.
pub(super) fn inactive(state: &mut ConversationState, script: &BotScript, policy: &AnswerPolicy) -> Vec<Effect> {
    let open = state.flow.is_some() || state.offline.is_some() || state.csat_pending;
    if policy.csat.after_inactivity_minutes == 0 || state.owner != Owner::Bot || open {
        return Vec::new();
    }
    vec![ask(state, script, None, "csat_question")]
}

/// "Did this help?" on an answer. Yes: kept, and the visitor may be asked for a rating.
/// No: kept, the question goes to the editors' gaps list, and other articles about it and
/// a person are offered (found by searching the question again).
pub(super) fn feedback(
    state: &mut ConversationState,
    script: &BotScript,
    policy: &AnswerPolicy,
    feedback: AnswerFeedback,
) -> Vec<Effect> {
    let AnswerFeedback { seq, doc, doc_lang, score, helpful, question } = feedback;
    if state.voted.contains(&seq) {
        return vec![Effect::Refused(Refusal::AlreadyVoted)];
    }
    state.voted.push(seq);
    let mut effects = vec![Effect::RecordFeedback { seq, doc: doc.clone(), lang: doc_lang.clone(), helpful }];
    if helpful {
        if policy.csat.after_helpful_answer && !state.owner.is_people() && state.flow.is_none() {
            effects.push(ask(state, script, None, "csat_question"));
        }
        return effects;
    }
    if !state.unhelpful.contains(&doc) {
        state.unhelpful.push(doc.clone());
    }
    if state.owner.is_people() {
        // A person has the chat: they see the vote in the packet; the bot says nothing.
        return effects;
    }
    let id = doc.split_once(':').map_or(doc.as_str(), |(_, id)| id).to_owned();
    if let Some((question_seq, question)) = question {
        effects.push(Effect::RecordGap {
            seq: question_seq,
            question: question.clone(),
            lang: state.lang.clone(),
            near_miss: Some(NearMiss { id, lang: doc_lang.clone(), confidence: score }),
        });
        state.pending_unhelpful = Some(doc);
        effects.push(Effect::Search { query: question, lang: doc_lang, asked_in: None, reply_to: question_seq });
        return effects;
    }
    effects.push(offer_person(state, script));
    effects
}

fn offer_person(state: &mut ConversationState, script: &BotScript) -> Effect {
    let text = script.catalog.text(&state.lang, "unhelpful_person", &[]);
    let extras = MessageExtras { quick_replies: vec![talk_to_person(state, script)], ..MessageExtras::default() };
    say_with(state, Sender::Bot, text, None, extras)
}

/// After a "no": the other articles the question finds (not the one that did not help)
/// and a person.
pub(super) fn offer_after_unhelpful(
    state: &mut ConversationState,
    script: &BotScript,
    policy: &AnswerPolicy,
    unhelpful: &str,
    hits: &[KbHit],
) -> Vec<Effect> {
    let articles: Vec<ArticleLink> = hits
        .iter()
        .filter(|h| h.kind == DocKind::Article && h.confidence >= policy.related_min_confidence)
        .filter(|h| format!("{}:{}", h.kind.as_str(), h.id) != unhelpful)
        .filter(|h| !state.unhelpful.contains(&format!("{}:{}", h.kind.as_str(), h.id)))
        .take(RELATED_ARTICLES)
        .map(|h| ArticleLink { id: h.id.clone(), lang: h.lang.clone(), title: h.title.clone(), url: h.url.clone() })
        .collect();
    if articles.is_empty() {
        return vec![offer_person(state, script)];
    }
    let text = script.catalog.text(&state.lang, "unhelpful_related", &[]);
    let extras =
        MessageExtras { quick_replies: vec![talk_to_person(state, script)], articles, ..MessageExtras::default() };
    vec![say_with(state, Sender::Bot, text, None, extras)]
}
