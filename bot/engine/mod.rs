//! The conversation engine: a pure state machine, events in, effects out.
//!
//! It decides what the bot says and nothing else: no IO, no clock, no randomness. The
//! conversation task feeds it events (a visitor message that has been stored, search
//! results it asked for) and carries out the effects it returns (store and send a
//! message, run a search, hand the chat to people). Its state is plain data, saved after
//! every step so a restart continues the same conversation.

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::config::AnswerPolicy;
use crate::flows::BotScript;
use crate::ids::Seq;
use crate::kb::analysis::search_group;
use crate::kb::{DocKind, KbHit};
use crate::lang;
use crate::protocol::{ArticleLink, MessageExtras, QuickReply, Sender, Source};

/// Quick-reply value that asks for a human.
pub const HANDOFF_VALUE: &str = "handoff";
const RELATED_ARTICLES: usize = 3;

/// Everything the engine remembers about one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Language the bot answers in.
    pub lang: String,
    /// Quick replies of the bot's latest message, valid as `choice` values.
    #[serde(default)]
    pub offered: Vec<QuickReply>,
    /// The visitor asked for a person.
    #[serde(default)]
    pub handoff_requested: bool,
    /// Knowledge-base documents already shown, so agents know what was tried.
    #[serde(default)]
    pub shown: Vec<String>,
    /// Related articles found in the visitor's language while an English search runs.
    #[serde(default)]
    pub pending_related: Vec<ArticleLink>,
    /// Best candidate of the visitor-language search while an English search runs.
    #[serde(default)]
    pub pending_near_miss: Option<NearMiss>,
}

/// The best document that was not good enough to answer with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearMiss {
    /// FAQ id or article slug.
    pub id: String,
    /// Its language.
    pub lang: String,
    /// Its confidence.
    pub confidence: f32,
}

impl ConversationState {
    /// State of a new conversation; `locale` is the widget's hint.
    #[must_use]
    pub fn new(locale: Option<&str>) -> Self {
        let lang = locale.and_then(lang::canonical).unwrap_or_else(|| lang::DEFAULT_LANG.to_owned());
        Self {
            lang,
            offered: Vec::new(),
            handoff_requested: false,
            shown: Vec::new(),
            pending_related: Vec::new(),
            pending_near_miss: None,
        }
    }

    /// The label of a quick reply the bot offered, for echoing a `choice` as text.
    #[must_use]
    pub fn choice_label(&self, value: &str, script: &BotScript) -> Option<String> {
        self.offered
            .iter()
            .find(|q| q.value == value)
            .map(|q| q.label.clone())
            .or_else(|| (value == HANDOFF_VALUE).then(|| script.catalog.text(&self.lang, "talk_to_person", &[])))
    }
}

/// Something that happened to the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The conversation was just created.
    Started,
    /// A visitor message was stored with this seq.
    VisitorText {
        /// Its seq.
        seq: Seq,
        /// What they wrote.
        text: String,
    },
    /// The visitor clicked a quick reply (already stored as a visitor message).
    VisitorChoice {
        /// Seq of the echoed message.
        seq: Seq,
        /// The quick reply's value.
        value: String,
    },
    /// Results of an [`Effect::Search`].
    SearchResults {
        /// The visitor message searched for.
        reply_to: Seq,
        /// The question searched.
        query: String,
        /// The language searched.
        lang: String,
        /// Best first.
        hits: Vec<KbHit>,
    },
}

/// A message the engine wants stored and sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Bot or system.
    pub from: Sender,
    /// Plain text.
    pub text: String,
    /// The visitor message answered.
    pub reply_to: Option<Seq>,
    /// Source, quick replies, articles.
    pub extras: MessageExtras,
}

/// What the conversation task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Store the message, then send it to every subscriber.
    Say(Reply),
    /// Search the knowledge base and feed back [`Event::SearchResults`].
    Search {
        /// The question.
        query: String,
        /// Language to search.
        lang: String,
        /// The visitor's language when it differs from `lang` (the English fallback): its
        /// function words mean nothing to the other language's index.
        asked_in: Option<String>,
        /// The visitor message it answers.
        reply_to: Seq,
    },
    /// Remember a question the knowledge base could not answer, for editors.
    RecordGap {
        /// The visitor message.
        seq: Seq,
        /// The question.
        question: String,
        /// Conversation language.
        lang: String,
        /// The best candidate that was not good enough.
        near_miss: Option<NearMiss>,
    },
    /// Put the conversation in front of people.
    RequestHandoff {
        /// Why.
        reason: String,
    },
}

/// Runs one step. `script` and `policy` are the current content and thresholds.
pub fn step(state: &mut ConversationState, event: Event, script: &BotScript, policy: &AnswerPolicy) -> Vec<Effect> {
    match event {
        Event::Started => vec![say(state, Sender::Bot, script.catalog.text(&state.lang, "welcome", &[]), None)],
        Event::VisitorText { seq, text } => {
            state.lang = lang::resolve(&text, &state.lang);
            if let Some(intent) = script.smalltalk.classify(&text, &state.lang) {
                let reply = script.catalog.text(&state.lang, &intent.reply, &[]);
                return vec![say(state, Sender::Bot, reply, Some(seq))];
            }
            vec![Effect::Search { query: text, lang: state.lang.clone(), asked_in: None, reply_to: seq }]
        }
        Event::VisitorChoice { seq, value } => {
            if value == HANDOFF_VALUE {
                return request_handoff(state, script, seq, "visitor asked for a person");
            }
            // A choice the engine offered but has no rule for is treated as typed text.
            let text = state.choice_label(&value, script).unwrap_or(value);
            vec![Effect::Search { query: text, lang: state.lang.clone(), asked_in: None, reply_to: seq }]
        }
        Event::SearchResults { reply_to, query, lang, hits } => {
            answer(state, script, policy, Searched { reply_to, query, lang, hits })
        }
    }
}

fn say(state: &mut ConversationState, from: Sender, text: String, reply_to: Option<Seq>) -> Effect {
    say_with(state, from, text, reply_to, MessageExtras::default())
}

fn say_with(
    state: &mut ConversationState,
    from: Sender,
    text: String,
    reply_to: Option<Seq>,
    extras: MessageExtras,
) -> Effect {
    state.offered.clone_from(&extras.quick_replies);
    Effect::Say(Reply { from, text, reply_to, extras })
}

fn talk_to_person(state: &ConversationState, script: &BotScript) -> QuickReply {
    QuickReply { label: script.catalog.text(&state.lang, "talk_to_person", &[]), value: HANDOFF_VALUE.to_owned() }
}

fn request_handoff(state: &mut ConversationState, script: &BotScript, seq: Seq, reason: &str) -> Vec<Effect> {
    if state.handoff_requested {
        let text = script.catalog.text(&state.lang, "handoff_already", &[]);
        return vec![say(state, Sender::System, text, Some(seq))];
    }
    state.handoff_requested = true;
    let text = script.catalog.text(&state.lang, "handoff_requested", &[]);
    vec![say(state, Sender::System, text, Some(seq)), Effect::RequestHandoff { reason: reason.to_owned() }]
}

/// One finished search, as the engine asked for it.
struct Searched {
    reply_to: Seq,
    query: String,
    lang: String,
    hits: Vec<KbHit>,
}

/// Answers from the visitor's language if confident; otherwise tries the English
/// knowledge base once (saying the answer is in English); otherwise falls back honestly.
fn answer(state: &mut ConversationState, script: &BotScript, policy: &AnswerPolicy, searched: Searched) -> Vec<Effect> {
    let Searched { reply_to, query, lang: searched_lang, hits } = searched;
    let in_english_fallback = search_group(&searched_lang) != search_group(&state.lang);
    if let Some(best) = hits.first().filter(|h| h.confidence >= policy.min_confidence) {
        let source = Source {
            kind: best.kind.as_str().to_owned(),
            id: best.id.clone(),
            lang: best.lang.clone(),
            title: best.title.clone(),
            url: best.url.clone(),
            score: (best.confidence * 1000.0).round() / 1000.0,
        };
        state.shown.push(format!("{}:{}", best.kind.as_str(), best.id));
        state.pending_related.clear();
        state.pending_near_miss = None;
        let text = if in_english_fallback {
            format!("{}\n\n{}", script.catalog.text(&state.lang, "english_fallback", &[]), best.answer)
        } else {
            best.answer.clone()
        };
        let extras = MessageExtras { source: Some(source), ..MessageExtras::default() };
        return vec![say_with(state, Sender::Bot, text, Some(reply_to), extras)];
    }
    let mut related: Vec<ArticleLink> = std::mem::take(&mut state.pending_related);
    for h in hits.iter().filter(|h| h.kind == DocKind::Article && h.confidence >= policy.related_min_confidence) {
        if related.len() < RELATED_ARTICLES && !related.iter().any(|r| r.id == h.id) {
            related.push(ArticleLink {
                id: h.id.clone(),
                lang: h.lang.clone(),
                title: h.title.clone(),
                url: h.url.clone(),
            });
        }
    }
    let near_miss = [
        state.pending_near_miss.take(),
        hits.first().map(|h| NearMiss { id: h.id.clone(), lang: h.lang.clone(), confidence: h.confidence }),
    ]
    .into_iter()
    .flatten()
    .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
    if !in_english_fallback && search_group(&state.lang) != search_group(lang::DEFAULT_LANG) {
        state.pending_related = related;
        state.pending_near_miss = near_miss;
        let asked_in = Some(state.lang.clone());
        return vec![Effect::Search { query, lang: lang::DEFAULT_LANG.to_owned(), asked_in, reply_to }];
    }
    let key = if related.is_empty() { "fallback" } else { "fallback_with_articles" };
    let extras = MessageExtras { source: None, quick_replies: vec![talk_to_person(state, script)], articles: related };
    let text = script.catalog.text(&state.lang, key, &[]);
    let lang = state.lang.clone();
    vec![
        say_with(state, Sender::Bot, text, Some(reply_to), extras),
        Effect::RecordGap { seq: reply_to, question: query, lang, near_miss },
    ]
}
