//! The flow interpreter: scripted flows (`flows/*.toml`) as pure state transitions.
//!
//! A running flow is data in the conversation state (current step, slots, counters), so a
//! restart continues it. Steps run until the flow needs something from outside: the
//! visitor's answer (`ask`, `choice`) or an order lookup (an effect whose result comes
//! back as an event). The visitor can leave at any time; a flow that runs too many steps
//! or sits idle past its timeout is dropped.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{ConversationState, Effect, say_with, talk_to_person};
use crate::flows::BotScript;
use crate::flows::script::StepKind;
use crate::ids::Seq;
use crate::protocol::{MessageExtras, QuickReply, Sender};

/// Quick-reply value prefix of a flow's `choice` options.
pub const CHOICE_PREFIX: &str = "flow:";
/// Quick-reply value that resumes a paused flow.
pub const RESUME_VALUE: &str = "flow-resume";
/// Quick-reply value prefix of a satisfaction rating (`csat:1` … `csat:5`).
pub const CSAT_PREFIX: &str = "csat:";
/// Wrong ownership proofs a conversation may give before lookups are refused.
pub const MAX_FAILED_PROOFS: u32 = 3;

/// A flow in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowState {
    /// Flow id.
    pub flow: String,
    /// Current step.
    pub step: String,
    /// Slot values.
    pub slots: BTreeMap<String, String>,
    /// Invalid answers to the current `ask`.
    pub retries: u32,
    /// Steps run since the flow started.
    pub steps_run: u32,
    /// Last time the visitor did anything in it.
    pub last_activity: DateTime<Utc>,
    /// Waiting for an order lookup.
    pub awaiting_lookup: bool,
    /// Left for a knowledge-base answer; a quick reply resumes it.
    pub paused: bool,
    /// An unmatched answer is being searched in the knowledge base.
    pub searching: bool,
}

/// What an order lookup found, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupOutcome {
    /// The order exists and the proof matches: its fields as `order.*` slots (ISO dates,
    /// status as its snake_case name).
    Found(BTreeMap<String, String>),
    /// No such order, or the proof does not match (indistinguishable on purpose).
    NotFound,
    /// The order source failed or was too slow.
    Unavailable,
    /// Too many wrong proofs for this order recently.
    Locked,
}

/// How the visitor's input relates to the running flow.
pub(super) enum FlowInput<'a> {
    /// Typed text.
    Text(&'a str),
    /// A clicked flow option (`value` without the prefix).
    Choice(&'a str),
}

/// Fills `{slot}` placeholders; unknown ones are left as they are.
fn fill(template: &str, slots: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (name, value) in slots {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn text(script: &BotScript, lang: &str, key: &str, slots: &BTreeMap<String, String>) -> String {
    fill(&script.catalog.text(lang, key, &[]), slots)
}

/// A date in the visitor's language: the catalog's `date_format` with its month names
/// (`month_1` … `month_12`) and weekday names (`weekday_1` = Monday … `weekday_7`).
#[must_use]
pub fn format_date(iso: &str, lang: &str, script: &BotScript) -> String {
    use chrono::Datelike as _;
    let Ok(date) = NaiveDate::parse_from_str(iso, "%Y-%m-%d") else { return iso.to_owned() };
    let format = script.catalog.text(lang, "date_format", &[]);
    let month = script.catalog.text(lang, &format!("month_{}", date.month()), &[]);
    let weekday = script.catalog.text(lang, &format!("weekday_{}", date.weekday().number_from_monday()), &[]);
    format
        .replace("{weekday}", &weekday)
        .replace("{day}", &date.day().to_string())
        .replace("{month}", &month)
        .replace("{month_number}", &format!("{:02}", date.month()))
        .replace("{year}", &date.year().to_string())
}

/// An order's fields (as the order lookup gives them: ISO dates, status names) as the
/// visitor reads them, named `order.<field>`, plus `order.status_text`.
#[must_use]
pub fn order_slots(fields: &BTreeMap<String, String>, lang: &str, script: &BotScript) -> BTreeMap<String, String> {
    let mut slots = BTreeMap::new();
    for (name, value) in fields {
        let shown = match name.as_str() {
            "expected_delivery" | "delivered_at" => format_date(value, lang, script),
            _ => value.clone(),
        };
        if name == "status" {
            let key = format!("order_status_{value}");
            slots.insert("order.status_text".into(), script.catalog.text(lang, &key, &[]));
        }
        slots.insert(format!("order.{name}"), shown);
    }
    if let Some(id) = fields.get("id") {
        slots.entry("order_id".into()).or_insert_with(|| id.clone());
    }
    slots
}

/// Starts a flow with slots an intent already filled.
pub(super) fn start(
    state: &mut ConversationState,
    script: &BotScript,
    flow_id: &str,
    slots: BTreeMap<String, String>,
    reply_to: Seq,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    let Some(flow) = script.flows.flow(flow_id) else { return Vec::new() };
    state.flow = Some(FlowState {
        flow: flow.id.clone(),
        step: flow.start.clone(),
        slots,
        retries: 0,
        steps_run: 0,
        last_activity: now,
        awaiting_lookup: false,
        paused: false,
        searching: false,
    });
    run(state, script, reply_to)
}

/// True when a flow is running and has not timed out; a timed-out flow is dropped.
pub(super) fn active(state: &mut ConversationState, script: &BotScript, now: DateTime<Utc>) -> bool {
    let Some(flow_state) = &state.flow else { return false };
    let timeout = script.flows.flow(&flow_state.flow).map_or(0, |f| i64::from(f.timeout_minutes));
    if now - flow_state.last_activity > chrono::Duration::minutes(timeout) {
        state.flow = None;
        return false;
    }
    true
}

/// Leaves the running flow at the visitor's request.
pub(super) fn cancel(state: &mut ConversationState, script: &BotScript, reply_to: Seq) -> Vec<Effect> {
    state.flow = None;
    let text = script.catalog.text(&state.lang, "flow_cancelled", &[]);
    vec![say_with(state, Sender::Bot, text, Some(reply_to), MessageExtras::default())]
}

/// Feeds the visitor's input to the step waiting for it. `None` means the input is not an
/// answer to the flow (the caller searches the knowledge base with it).
pub(super) fn input(
    state: &mut ConversationState,
    script: &BotScript,
    input: FlowInput<'_>,
    reply_to: Seq,
    now: DateTime<Utc>,
) -> Option<Vec<Effect>> {
    let flow_state = state.flow.as_mut()?;
    flow_state.last_activity = now;
    if flow_state.awaiting_lookup {
        return Some(Vec::new());
    }
    let flow = script.flows.flow(&flow_state.flow)?;
    let step = flow.step(&flow_state.step)?;
    match (&step.kind, input) {
        (StepKind::Ask { slot, next, .. }, FlowInput::Text(text)) => {
            let value = match flow.pattern(&step.id) {
                Some(re) => re
                    .captures(text)
                    .map(|c| c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str()).trim().to_owned()),
                None => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
            }?;
            flow_state.slots.insert(slot.clone(), value);
            flow_state.step.clone_from(next);
            flow_state.retries = 0;
            flow_state.paused = false;
            Some(run(state, script, reply_to))
        }
        (StepKind::Choice { options, .. }, FlowInput::Choice(value)) => {
            let option = options.iter().find(|o| o.value == value)?;
            flow_state.step.clone_from(&option.next);
            flow_state.paused = false;
            Some(run(state, script, reply_to))
        }
        (StepKind::Choice { options, .. }, FlowInput::Text(text)) => {
            let lang = state.lang.clone();
            let flow_state = state.flow.as_mut()?;
            let typed = text.trim().to_lowercase();
            let option = options.iter().find(|o| {
                script.catalog.text(&lang, &o.label, &[]).to_lowercase() == typed || o.value.to_lowercase() == typed
            })?;
            flow_state.step.clone_from(&option.next);
            flow_state.paused = false;
            Some(run(state, script, reply_to))
        }
        _ => None,
    }
}

/// The input did not answer the flow and the knowledge base had nothing either: ask
/// again, or give up after the step's retries.
pub(super) fn retry(state: &mut ConversationState, script: &BotScript, reply_to: Seq) -> Vec<Effect> {
    let Some(flow_state) = state.flow.as_mut() else { return Vec::new() };
    let Some(flow) = script.flows.flow(&flow_state.flow) else { return Vec::new() };
    let Some(step) = flow.step(&flow_state.step) else { return Vec::new() };
    match &step.kind {
        StepKind::Ask { retry, max_retries, on_fail, .. } => {
            flow_state.retries += 1;
            if flow_state.retries > *max_retries {
                flow_state.step.clone_from(on_fail);
                flow_state.retries = 0;
                return run(state, script, reply_to);
            }
            let message = text(script, &state.lang, retry, &flow_state.slots);
            vec![say_with(state, Sender::Bot, message, Some(reply_to), MessageExtras::default())]
        }
        StepKind::Choice { .. } => {
            // Show the options again.
            run(state, script, reply_to)
        }
        _ => Vec::new(),
    }
}

/// The flow was left for a knowledge-base answer: mark it paused and offer to resume.
pub(super) fn resume_offer(state: &mut ConversationState, script: &BotScript) -> Option<QuickReply> {
    let flow_state = state.flow.as_mut()?;
    flow_state.paused = true;
    Some(QuickReply { label: script.catalog.text(&state.lang, "flow_resume", &[]), value: RESUME_VALUE.to_owned() })
}

/// Resumes a paused flow by repeating its current step.
pub(super) fn resume(state: &mut ConversationState, script: &BotScript, reply_to: Seq) -> Vec<Effect> {
    if let Some(flow_state) = state.flow.as_mut() {
        flow_state.paused = false;
    }
    run(state, script, reply_to)
}

/// The result of an order lookup.
pub(super) fn lookup_result(
    state: &mut ConversationState,
    script: &BotScript,
    outcome: LookupOutcome,
    reply_to: Seq,
) -> Vec<Effect> {
    let lang = state.lang.clone();
    let Some(flow_state) = state.flow.as_mut() else { return Vec::new() };
    if !flow_state.awaiting_lookup {
        return Vec::new();
    }
    flow_state.awaiting_lookup = false;
    let Some(flow) = script.flows.flow(&flow_state.flow) else { return Vec::new() };
    let Some(StepKind::Lookup { found, not_found, unavailable, locked, proof, .. }) =
        flow.step(&flow_state.step).map(|s| &s.kind)
    else {
        return Vec::new();
    };
    let next = match outcome {
        LookupOutcome::Found(fields) => {
            flow_state.slots.extend(order_slots(&fields, &lang, script));
            state.failed_proofs = 0;
            found.clone()
        }
        LookupOutcome::NotFound => {
            state.failed_proofs += 1;
            // A wrong proof is forgotten so the visitor types it again.
            flow_state.slots.remove(proof);
            if state.failed_proofs >= MAX_FAILED_PROOFS { locked.clone() } else { not_found.clone() }
        }
        LookupOutcome::Unavailable => unavailable.clone(),
        LookupOutcome::Locked => locked.clone(),
    };
    if let Some(flow_state) = state.flow.as_mut() {
        flow_state.step = next;
    }
    run(state, script, reply_to)
}

/// Runs steps until the flow waits for the visitor or a lookup, or ends.
pub(super) fn run(state: &mut ConversationState, script: &BotScript, reply_to: Seq) -> Vec<Effect> {
    let mut effects = Vec::new();
    let lang = state.lang.clone();
    loop {
        let Some(flow_state) = state.flow.as_mut() else { return effects };
        let Some(flow) = script.flows.flow(&flow_state.flow) else {
            state.flow = None;
            return effects;
        };
        flow_state.steps_run += 1;
        if flow_state.steps_run > flow.max_steps {
            state.flow = None;
            let text = script.catalog.text(&lang, "flow_stuck", &[]);
            let extras =
                MessageExtras { quick_replies: vec![talk_to_person(state, script)], ..MessageExtras::default() };
            effects.push(say_with(state, Sender::Bot, text, Some(reply_to), extras));
            return effects;
        }
        let Some(step) = flow.step(&flow_state.step).cloned() else {
            state.flow = None;
            return effects;
        };
        match step.kind {
            StepKind::Say { message, next } => {
                let said = text(script, &lang, &message, &flow_state.slots);
                match next {
                    Some(next) => flow_state.step = next,
                    None => state.flow = None,
                }
                effects.push(say_with(state, Sender::Bot, said, Some(reply_to), MessageExtras::default()));
            }
            StepKind::Ask { slot, message, next, always, .. } => {
                if !always && flow_state.slots.contains_key(&slot) {
                    flow_state.step = next;
                    continue;
                }
                let said = text(script, &lang, &message, &flow_state.slots);
                effects.push(say_with(state, Sender::Bot, said, Some(reply_to), MessageExtras::default()));
                return effects;
            }
            StepKind::Choice { message, options } => {
                let said = text(script, &lang, &message, &flow_state.slots);
                let quick_replies = options
                    .iter()
                    .map(|o| QuickReply {
                        label: text(script, &lang, &o.label, &flow_state.slots),
                        value: format!("{CHOICE_PREFIX}{}", o.value),
                    })
                    .collect();
                let extras = MessageExtras { quick_replies, ..MessageExtras::default() };
                effects.push(say_with(state, Sender::Bot, said, Some(reply_to), extras));
                return effects;
            }
            StepKind::Lookup { order, proof, locked, .. } => {
                if state.failed_proofs >= MAX_FAILED_PROOFS {
                    flow_state.step = locked;
                    continue;
                }
                let order_id = flow_state.slots.get(&order).cloned().unwrap_or_default();
                let proof = flow_state.slots.get(&proof).cloned().unwrap_or_default();
                flow_state.awaiting_lookup = true;
                effects.push(Effect::LookupOrder { order_id, proof, reply_to });
                return effects;
            }
            StepKind::Branch { on, cases, default } => {
                let value = flow_state.slots.get(&on).map(String::as_str).unwrap_or_default();
                flow_state.step = cases.get(value).cloned().unwrap_or(default);
            }
            StepKind::Set { slot, value, next } => {
                let filled = fill(&value, &flow_state.slots);
                flow_state.slots.insert(slot, filled);
                flow_state.step = next;
            }
            StepKind::Handoff { reason, message } => {
                let reason = fill(&reason, &flow_state.slots);
                let said = message.map(|m| text(script, &lang, &m, &flow_state.slots));
                // The agent gets the flow's slots (order, status, delay) in the packet.
                state.flow_at_handoff = state.flow.take();
                if let Some(said) = said {
                    effects.push(say_with(state, Sender::Bot, said, Some(reply_to), MessageExtras::default()));
                }
                effects.extend(super::handoff::request(state, script, Some(reply_to), &reason));
                return effects;
            }
            StepKind::End { message, csat } => {
                let said = message.map(|m| text(script, &lang, &m, &flow_state.slots));
                state.flow = None;
                if let Some(said) = said {
                    effects.push(say_with(state, Sender::Bot, said, Some(reply_to), MessageExtras::default()));
                }
                if csat {
                    effects.push(super::csat::ask(state, script, Some(reply_to), "csat_question"));
                }
                return effects;
            }
        }
    }
}
