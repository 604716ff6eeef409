//! The one place that carries an event through the engine: steps, feeds the answers to
//! its questions (searches, order lookups) back in through [`Ports`], and hands the
//! caller everything the step decided, to commit at once.
//!
//! Production (the conversation actor), `kb check`'s answer tests and `flows check`'s
//! transcripts all go through [`drive`], so what the checks replay is what visitors get.
//! The driver works on a copy of the state: the caller replaces its state with
//! [`Step::state`] only after the step's records are stored, so a failed write leaves
//! memory and disk as they were.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::{AnswerPolicy, ConversationState, Effect, Event, LookupOutcome, step};
use crate::flows::BotScript;
use crate::ids::Seq;
use crate::kb::KbHit;

/// How the engine's questions get answered. Searches are answered at once (the caller
/// chooses where that runs); an order lookup may be answered at once (fixtures) or later
/// (an HTTP call whose result comes back as [`Event::LookupResult`]).
pub trait Ports {
    /// Why a port failed; ends the step.
    type Error;

    /// Searches the knowledge base in `lang`; `asked_in` is the visitor's language when it
    /// differs (the English fallback), whose function words mean nothing to `lang`.
    ///
    /// # Errors
    /// When the index cannot be searched.
    fn search(&mut self, query: &str, lang: &str, asked_in: Option<&str>) -> Result<Vec<KbHit>, Self::Error>;

    /// Looks an order up and checks the proof. `None` means the lookup was started and
    /// its result will arrive later as an event.
    fn lookup_order(&mut self, order_id: &str, proof: &str) -> Option<LookupOutcome>;
}

/// An order lookup the step is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLookup {
    /// Order number as given.
    pub order_id: String,
    /// E-mail address or postcode given as proof.
    pub proof: String,
    /// The visitor message the flow is answering.
    pub reply_to: Seq,
}

/// Everything one step decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The state after the step; keep it once `records` are stored.
    pub state: ConversationState,
    /// What to store and do, in order: messages, notes, gaps, ratings, handoff and queue
    /// changes, offline requests (never `Search`, `LookupOrder` or `Refused`, which the
    /// driver resolved).
    pub records: Vec<Effect>,
    /// Order lookups started through [`Ports::lookup_order`] that answered `None`.
    pub lookups: Vec<PendingLookup>,
    /// A person's action the engine refused; the step is empty then.
    pub refused: Option<super::Refusal>,
}

/// Steps the engine from `event` until nothing is left to feed back.
///
/// # Errors
/// The first port error; nothing of the step should be kept then.
pub fn drive<P: Ports>(
    state: &ConversationState,
    event: Event,
    script: &BotScript,
    policy: &AnswerPolicy,
    now: DateTime<Utc>,
    ports: &mut P,
) -> Result<Step, P::Error> {
    let mut next = state.clone();
    let mut queue: VecDeque<Effect> = step(&mut next, event, script, policy, now).into();
    let mut records = Vec::new();
    let mut lookups = Vec::new();
    while let Some(effect) = queue.pop_front() {
        match effect {
            Effect::Search { query, lang, asked_in, reply_to } => {
                let hits = ports.search(&query, &lang, asked_in.as_deref())?;
                let results = Event::SearchResults { reply_to, query, lang, hits };
                queue.extend(step(&mut next, results, script, policy, now));
            }
            Effect::LookupOrder { order_id, proof, reply_to } => match ports.lookup_order(&order_id, &proof) {
                Some(outcome) => {
                    let result = Event::LookupResult { reply_to, outcome };
                    queue.extend(step(&mut next, result, script, policy, now));
                }
                None => lookups.push(PendingLookup { order_id, proof, reply_to }),
            },
            Effect::Refused(refusal) => {
                // Nothing of a refused action is kept.
                return Ok(Step {
                    state: state.clone(),
                    records: Vec::new(),
                    lookups: Vec::new(),
                    refused: Some(refusal),
                });
            }
            record @ (Effect::Say(_)
            | Effect::RecordGap { .. }
            | Effect::RecordCsat { .. }
            | Effect::RecordFeedback { .. }
            | Effect::RequestHandoff { .. }
            | Effect::Note { .. }
            | Effect::LeftQueue
            | Effect::FileOfflineRequest { .. }) => records.push(record),
        }
    }
    Ok(Step { state: next, records, lookups, refused: None })
}

impl Step {
    /// The messages the step says, in order.
    pub fn replies(&self) -> impl Iterator<Item = &super::Reply> {
        self.records.iter().filter_map(|r| match r {
            Effect::Say(reply) => Some(reply),
            _ => None,
        })
    }

    /// True when the step asks for a person.
    #[must_use]
    pub fn requests_handoff(&self) -> bool {
        self.records.iter().any(|r| matches!(r, Effect::RequestHandoff { .. }))
    }
}
