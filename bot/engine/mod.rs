//! The conversation engine: a pure state machine, events in, effects out.
//!
//! It decides what the bot says and nothing else: no IO, no clock, no randomness. The
//! conversation task feeds it events (a visitor message that has been stored, search
//! results it asked for) and carries out the effects it returns (store and send a
//! message, run a search, hand the chat to people). Its state is plain data, saved after
//! every step so a restart continues the same conversation.

mod csat;
#[cfg(test)]
mod csat_tests;
pub mod driver;
pub mod flow;
pub mod handoff;
#[cfg(test)]
mod handoff_tests;
mod policy;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use flow::{FlowState, LookupOutcome};
pub use handoff::{AgentAction, AgentRef, DeskNews, OfflineForm, Owner, Refusal};

use crate::flows::{BotScript, CANCEL_INTENT, HANDOFF_INTENT};
use crate::ids::Seq;
use crate::kb::analysis::search_group;
use crate::kb::{DocKind, KbHit};
use crate::lang;
use crate::protocol::{ArticleLink, MessageExtras, QuickReply, Sender, Source};
pub use policy::{AnswerPolicy, CsatPolicy};

/// Quick-reply value that asks for a human.
pub const HANDOFF_VALUE: &str = "handoff";
/// Quick-reply (or thumbs-down) value: the answer just given did not help.
pub const NOT_HELPFUL_VALUE: &str = "not_helpful";

/// Handoff reasons the engine gives (flows give their own, written in the flow file).
pub mod reasons {
    /// The visitor asked for a person.
    pub const VISITOR_ASKED: &str = "visitor asked for a person";
    /// The bot fell back several times in a row.
    pub const REPEATED_FALLBACK: &str = "the bot could not answer several questions in a row";
    /// The visitor said an answer did not help.
    pub const NOT_HELPFUL: &str = "an answer did not help";
}
const RELATED_ARTICLES: usize = 3;
/// Candidates a search returns to the engine.
pub const SEARCH_LIMIT: usize = 8;

/// Everything the engine remembers about one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Language the bot answers in.
    pub lang: String,
    /// Quick replies of the bot's latest message, valid as `choice` values.
    #[serde(default)]
    pub offered: Vec<Offer>,
    /// Who answers: the bot, the queue, an agent; closed.
    #[serde(default)]
    pub owner: Owner,
    /// Honest fallbacks since the last answer (enough of them offer a person).
    #[serde(default)]
    pub fallbacks_in_row: u32,
    /// Contact details being collected because nobody could take the chat.
    #[serde(default)]
    pub offline: Option<OfflineForm>,
    /// Knowledge-base documents already shown, so agents know what was tried.
    #[serde(default)]
    pub shown: Vec<String>,
    /// Related articles found in the visitor's language while an English search runs.
    #[serde(default)]
    pub pending_related: Vec<RelatedArticle>,
    /// Best candidate of the visitor-language search while an English search runs.
    #[serde(default)]
    pub pending_near_miss: Option<NearMiss>,
    /// The scripted flow in progress.
    #[serde(default)]
    pub flow: Option<FlowState>,
    /// Wrong order-ownership proofs given in this conversation.
    #[serde(default)]
    pub failed_proofs: u32,
    /// A satisfaction rating was asked for and not given yet.
    #[serde(default)]
    pub csat_pending: bool,
    /// When the visitor first rated this conversation (one rating per conversation; it
    /// may be changed for [`RATING_CHANGE_MINUTES`]).
    #[serde(default)]
    pub rated_at: Option<DateTime<Utc>>,
    /// Documents (`kind:id`, as in `shown`) the visitor said did not help.
    #[serde(default)]
    pub unhelpful: Vec<String>,
    /// The flow that was running when the visitor asked for a person (its slots tell the
    /// agent the order and its status).
    #[serde(default)]
    pub flow_at_handoff: Option<FlowState>,
    /// When a rating was last asked for in this conversation.
    #[serde(default)]
    pub csat_asked_at: Option<DateTime<Utc>>,
    /// When the same visitor (same verified identity or e-mail) was last asked in another
    /// conversation: a fact of the store, filled in by the conversation layer when it
    /// loads the state and when the visitor's identity may have changed; never saved.
    #[serde(skip)]
    pub visitor_asked_at: Option<DateTime<Utc>>,
    /// The visitor asked something real (a search, a flow, a person), not only small talk:
    /// a greeting-only chat is never asked for a rating.
    #[serde(default)]
    pub substantive: bool,
    /// The agent who closed the chat, and their team: who a rating after it is about.
    #[serde(default)]
    pub resolver: Option<Resolver>,
    /// What the chat is about, latest first wins: `flow:<id>`, `faq:<id>`, `article:<slug>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Answer messages the visitor already said were helpful or not (one vote each).
    #[serde(default)]
    pub voted: Vec<Seq>,
    /// A document the visitor just said did not help: the search under way offers others.
    #[serde(default)]
    pub pending_unhelpful: Option<String>,
}

/// The person who resolved a chat, as ratings record them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolver {
    /// The agent.
    pub agent: AgentRef,
    /// The team they held it for.
    pub team: String,
}

/// A quick reply the bot offered, as the engine remembers it (the wire's `QuickReply` may
/// change shape; stored states must keep loading).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Text on the button.
    pub label: String,
    /// Value sent back when clicked.
    pub value: String,
}

impl From<&QuickReply> for Offer {
    fn from(q: &QuickReply) -> Self {
        Self { label: q.label.clone(), value: q.value.clone() }
    }
}

/// An article kept to offer as related, as the engine remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedArticle {
    /// Article slug.
    pub id: String,
    /// Article language.
    pub lang: String,
    /// Article title.
    pub title: String,
    /// Server-relative URL.
    pub url: String,
}

impl From<RelatedArticle> for ArticleLink {
    fn from(a: RelatedArticle) -> Self {
        Self { id: a.id, lang: a.lang, title: a.title, url: a.url }
    }
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
            owner: Owner::Bot,
            fallbacks_in_row: 0,
            offline: None,
            shown: Vec::new(),
            pending_related: Vec::new(),
            pending_near_miss: None,
            flow: None,
            failed_proofs: 0,
            csat_pending: false,
            rated_at: None,
            unhelpful: Vec::new(),
            flow_at_handoff: None,
            csat_asked_at: None,
            visitor_asked_at: None,
            substantive: false,
            resolver: None,
            topic: None,
            voted: Vec::new(),
            pending_unhelpful: None,
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
    /// Something happened that the visitor should hear about (a delayed order): run this
    /// flow with the order's fields as `order.*` slots, not as a reply to anything.
    Notice {
        /// Flow to run.
        flow: String,
        /// The order's fields, as an order lookup gives them.
        order: BTreeMap<String, String>,
    },
    /// Result of an [`Effect::LookupOrder`].
    LookupResult {
        /// The visitor message the flow is answering.
        reply_to: Seq,
        /// What was found.
        outcome: LookupOutcome,
    },
    /// Someone outside the conversation (an agent, a manager, the shop's API) put it in
    /// front of people.
    HandoffRequested {
        /// Why.
        reason: String,
    },
    /// Where the desk placed a chat that asked for a person.
    Placed(DeskNews),
    /// A person acted on the chat.
    Agent(AgentAction),
    /// The visitor rated the conversation (the widget's rating control).
    Rate {
        /// 1 (poor) to 5 (great).
        score: u8,
        /// What they added, already trimmed and bounded.
        comment: Option<String>,
    },
    /// The visitor said whether an answer helped.
    AnswerFeedback(AnswerFeedback),
    /// Someone outside the conversation (the shop's API) asks for a rating now.
    CsatRequested,
    /// The chat has been quiet for the configured minutes: it is over.
    Inactive,
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

/// "Did this help?" on one answer, with what the conversation layer looked up about it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerFeedback {
    /// The bot message voted on.
    pub seq: Seq,
    /// Its document, `kind:id`.
    pub doc: String,
    /// The document's language.
    pub doc_lang: String,
    /// The answer's confidence.
    pub score: f32,
    /// Yes or no.
    pub helpful: bool,
    /// The visitor question it answered (seq and text), when known.
    pub question: Option<(Seq, String)>,
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
    /// Look an order up and check the ownership proof; feed back [`Event::LookupResult`].
    LookupOrder {
        /// Order number as given.
        order_id: String,
        /// E-mail address or postcode given as proof.
        proof: String,
        /// The visitor message the flow is answering.
        reply_to: Seq,
    },
    /// Keep a satisfaction rating.
    RecordCsat {
        /// 1 (poor) to 5 (great).
        score: u8,
        /// It replaces the conversation's earlier rating (a changed mind within the window).
        replaces: bool,
        /// What the visitor added.
        comment: Option<String>,
    },
    /// Keep a "did this help?" vote on an answer.
    RecordFeedback {
        /// The answer message.
        seq: Seq,
        /// Its document, `kind:id`.
        doc: String,
        /// The document's language.
        lang: String,
        /// Yes or no.
        helpful: bool,
    },
    /// Put the conversation in front of people: the desk places it and answers with
    /// [`Event::Placed`].
    RequestHandoff {
        /// Why.
        reason: String,
    },
    /// Store a private note for agents (never shown to the visitor).
    Note {
        /// Author.
        author: AgentRef,
        /// Text.
        text: String,
    },
    /// The visitor left the queue: the desk forgets the chat.
    LeftQueue,
    /// File a request for a person to contact the visitor later.
    FileOfflineRequest {
        /// Team it goes to.
        team: String,
        /// Why the visitor wanted a person.
        reason: String,
        /// `email` or `phone`.
        channel: String,
        /// The address or number (validated).
        contact: String,
        /// What the visitor wrote about their question.
        details: String,
        /// The visitor message with the details.
        seq: Seq,
    },
    /// A person's action was refused; nothing of the step is to be kept.
    Refused(Refusal),
}

/// Runs one step. `script` and `policy` are the current content and thresholds; `now` is
/// the clock (flows time out).
pub fn step(
    state: &mut ConversationState,
    event: Event,
    script: &BotScript,
    policy: &AnswerPolicy,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    let explicit_csat = matches!(event, Event::CsatRequested);
    let closing = matches!(event, Event::Agent(AgentAction::Close { .. }));
    let visitors_doing = matches!(
        event,
        Event::VisitorText { .. }
            | Event::VisitorChoice { .. }
            | Event::SearchResults { .. }
            | Event::LookupResult { .. }
    );
    let mut effects = step_inner(state, event, script, policy, now);
    if closing && policy.csat.after_agent_close && !effects.iter().any(|e| matches!(e, Effect::Refused(_))) {
        effects.push(csat::ask(state, script, None, "csat_question_agent"));
    }
    csat::note_progress(state, &effects, visitors_doing);
    csat::gate(state, &mut effects, &policy.csat, now, explicit_csat);
    effects
}

fn step_inner(
    state: &mut ConversationState,
    event: Event,
    script: &BotScript,
    policy: &AnswerPolicy,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    match event {
        Event::Started => vec![say(state, Sender::Bot, script.catalog.text(&state.lang, "welcome", &[]), None)],
        Event::VisitorText { seq, text } => visitor_text(state, script, seq, text, now),
        Event::VisitorChoice { seq, value } => visitor_choice(state, script, seq, value, now),
        Event::LookupResult { reply_to, outcome } => flow::lookup_result(state, script, outcome, reply_to),
        Event::HandoffRequested { reason } => handoff::request(state, script, None, &reason),
        Event::Placed(news) => handoff::placed(state, script, news),
        Event::Agent(action) => handoff::act(state, script, action).unwrap_or_else(|r| vec![Effect::Refused(r)]),
        Event::Rate { score, comment } => csat::rate(state, script, score, comment, now),
        Event::AnswerFeedback(feedback) => csat::feedback(state, script, policy, feedback),
        Event::CsatRequested => csat::requested(state, script),
        Event::Inactive => csat::inactive(state, script, policy),
        Event::Notice { flow: flow_id, order } => {
            let slots = flow::order_slots(&order, &state.lang, script);
            let under_people = state.owner.is_people().then(|| state.clone());
            let mut effects = flow::start(state, script, &flow_id, slots, Seq(0), now);
            for effect in &mut effects {
                if let Effect::Say(reply) = effect {
                    reply.reply_to = None; // news, not an answer
                }
            }
            if let Some(before) = under_people {
                // A person answers now: tell the news and ask nothing. The flow's buttons
                // would be dead (choices wait for the person) and it must not run on.
                *state = before;
                effects.retain(
                    |e| matches!(e, Effect::Say(r) if r.from == Sender::Bot && r.extras.quick_replies.is_empty()),
                );
            }
            effects
        }
        Event::SearchResults { reply_to, query, lang, hits } => {
            if let Some(doc) = state.pending_unhelpful.take() {
                return csat::offer_after_unhelpful(state, script, policy, &doc, &hits);
            }
            if state.flow.as_ref().is_some_and(|f| f.searching) {
                return answer_during_flow(state, script, policy, reply_to, &hits);
            }
            answer(state, script, policy, Searched { reply_to, query, lang, hits })
        }
    }
}

fn visitor_text(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Seq,
    text: String,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    state.lang = lang::resolve(&text, &state.lang);
    let intent = script.smalltalk.classify(&text, &state.lang).map(|i| (i.id.clone(), i.reply.clone()));
    let intent_id = intent.as_ref().map(|(id, _)| id.as_str());
    if intent_id == Some(HANDOFF_INTENT) {
        return handoff::request(state, script, Some(seq), reasons::VISITOR_ASKED);
    }
    if state.owner.is_people() {
        // A person answers; the message waits for them.
        return Vec::new();
    }
    if state.owner == Owner::Closed {
        state.owner = Owner::Bot;
        state.resolver = None;
    }
    if state.offline.is_some() {
        if intent_id == Some(CANCEL_INTENT) {
            state.offline = None;
            let text = script.catalog.text(&state.lang, "offline_cancelled", &[]);
            return vec![say(state, Sender::Bot, text, Some(seq))];
        }
        if let Some(effects) = handoff::offline_input(state, script, seq, &text, None) {
            return effects;
        }
    }
    if flow::active(state, script, now) {
        if intent_id == Some(CANCEL_INTENT) {
            return flow::cancel(state, script, seq);
        }
        if let Some(effects) = flow::input(state, script, flow::FlowInput::Text(&text), seq, now) {
            return effects;
        }
        // Not an answer to the flow. A real question may be one the knowledge base
        // answers; anything shorter is just a wrong answer.
        if !looks_like_a_question(&text) {
            return flow::retry(state, script, seq);
        }
        if let Some(f) = state.flow.as_mut() {
            f.searching = true;
        }
        return vec![Effect::Search { query: text, lang: state.lang.clone(), asked_in: None, reply_to: seq }];
    }
    if state.csat_pending {
        if let Some(score) = text.trim().parse::<u8>().ok().filter(|n| (1..=5).contains(n)) {
            return record_csat(state, script, seq, score, None, now);
        }
    }
    if let Some(found) = script.flows.match_intent(&text, &state.lang) {
        let slots = found.slots.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        return flow::start(state, script, &found.flow, slots, seq, now);
    }
    if let Some((id, reply)) = intent.filter(|(id, _)| id != CANCEL_INTENT) {
        let _ = id;
        let reply = script.catalog.text(&state.lang, &reply, &[]);
        return vec![say(state, Sender::Bot, reply, Some(seq))];
    }
    vec![Effect::Search { query: text, lang: state.lang.clone(), asked_in: None, reply_to: seq }]
}

fn visitor_choice(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Seq,
    value: String,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    if value == HANDOFF_VALUE {
        return handoff::request(state, script, Some(seq), reasons::VISITOR_ASKED);
    }
    if state.owner.is_people() {
        return handoff::queue_choice(state, script, seq, &value).unwrap_or_default();
    }
    if state.owner == Owner::Closed {
        state.owner = Owner::Bot;
        state.resolver = None;
    }
    if value == NOT_HELPFUL_VALUE {
        if let Some(doc) = state.shown.last().cloned() {
            state.unhelpful.push(doc);
        }
        return handoff::request(state, script, Some(seq), reasons::NOT_HELPFUL);
    }
    if state.offline.is_some() {
        let label = state.choice_label(&value, script).unwrap_or_default();
        if let Some(effects) = handoff::offline_input(state, script, seq, &label, Some(&value)) {
            return effects;
        }
    }
    if let Some(score) = value.strip_prefix(flow::CSAT_PREFIX).and_then(|n| n.parse::<u8>().ok()) {
        if (1..=5).contains(&score) {
            return record_csat(state, script, seq, score, None, now);
        }
    }
    if value == flow::RESUME_VALUE && flow::active(state, script, now) {
        return flow::resume(state, script, seq);
    }
    if let Some(option) = value.strip_prefix(flow::CHOICE_PREFIX) {
        if flow::active(state, script, now) {
            if let Some(effects) = flow::input(state, script, flow::FlowInput::Choice(option), seq, now) {
                return effects;
            }
        }
    }
    // A choice the engine offered but has no rule for is treated as typed text.
    let text = state.choice_label(&value, script).unwrap_or(value);
    vec![Effect::Search { query: text, lang: state.lang.clone(), asked_in: None, reply_to: seq }]
}

/// Three words or more (four characters of Chinese): worth a knowledge-base search.
fn looks_like_a_question(text: &str) -> bool {
    let han = text.chars().filter(|c| crate::kb::chinese::is_han(*c)).count();
    han >= 4 || text.split_whitespace().filter(|w| w.chars().any(char::is_alphabetic)).count() >= 3
}

/// Minutes after the first rating in which a new one replaces it; later ones are refused.
pub const RATING_CHANGE_MINUTES: i64 = 5;

/// One rating per conversation: the first is kept, a changed mind within
/// [`RATING_CHANGE_MINUTES`] replaces it, anything later is refused with a clear line.
fn record_csat(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Seq,
    score: u8,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    match csat::admit(state, now) {
        Ok(replaces) => {
            let thanks = script.catalog.text(&state.lang, "csat_thanks", &[]);
            vec![Effect::RecordCsat { score, replaces, comment }, say(state, Sender::Bot, thanks, Some(seq))]
        }
        Err(_) => {
            let already = script.catalog.text(&state.lang, "csat_already", &[]);
            vec![say(state, Sender::Bot, already, Some(seq))]
        }
    }
}

/// A visitor in a flow wrote something that is not an answer to it: a confident
/// knowledge-base answer is given with an offer to go back to the flow; otherwise the
/// flow asks again.
fn answer_during_flow(
    state: &mut ConversationState,
    script: &BotScript,
    policy: &AnswerPolicy,
    reply_to: Seq,
    hits: &[KbHit],
) -> Vec<Effect> {
    if let Some(f) = state.flow.as_mut() {
        f.searching = false;
    }
    if !hits.first().is_some_and(|h| h.confidence >= policy.min_confidence) {
        return flow::retry(state, script, reply_to);
    }
    let lang = state.lang.clone();
    let searched = Searched { reply_to, query: String::new(), lang, hits: hits.to_vec() };
    let mut effects = answer(state, script, policy, searched);
    if let (Some(Effect::Say(reply)), Some(resume)) = (effects.first_mut(), flow::resume_offer(state, script)) {
        reply.extras.quick_replies.push(resume);
        state.offered = reply.extras.quick_replies.iter().map(Offer::from).collect();
    }
    effects
}

fn say(state: &mut ConversationState, from: Sender, text: String, reply_to: Option<Seq>) -> Effect {
    say_with(state, from, text, reply_to, MessageExtras::default())
}

pub(crate) fn say_with(
    state: &mut ConversationState,
    from: Sender,
    text: String,
    reply_to: Option<Seq>,
    extras: MessageExtras,
) -> Effect {
    state.offered = extras.quick_replies.iter().map(Offer::from).collect();
    Effect::Say(Reply { from, text, reply_to, extras })
}

pub(crate) fn talk_to_person(state: &ConversationState, script: &BotScript) -> QuickReply {
    QuickReply { label: script.catalog.text(&state.lang, "talk_to_person", &[]), value: HANDOFF_VALUE.to_owned() }
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
        state.fallbacks_in_row = 0;
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
    let mut related: Vec<RelatedArticle> = std::mem::take(&mut state.pending_related);
    for h in hits.iter().filter(|h| h.kind == DocKind::Article && h.confidence >= policy.related_min_confidence) {
        if related.len() < RELATED_ARTICLES && !related.iter().any(|r| r.id == h.id) {
            related.push(RelatedArticle {
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
    let articles = related.into_iter().map(ArticleLink::from).collect();
    let extras =
        MessageExtras { quick_replies: vec![talk_to_person(state, script)], articles, ..MessageExtras::default() };
    let text = script.catalog.text(&state.lang, key, &[]);
    let lang = state.lang.clone();
    let mut effects = vec![
        say_with(state, Sender::Bot, text, Some(reply_to), extras),
        Effect::RecordGap { seq: reply_to, question: query, lang, near_miss },
    ];
    state.fallbacks_in_row += 1;
    let limit = policy.handoff_after_fallbacks;
    if limit > 0 && state.fallbacks_in_row >= limit {
        effects.extend(handoff::request(state, script, Some(reply_to), reasons::REPEATED_FALLBACK));
    }
    effects
}
