//! The conversation event log: what happened in a step, derived from the engine's
//! effects and the state before and after it, and stored in the same transaction as the
//! step's messages so every figure can be recomputed for any past range.

use chrono::{DateTime, Utc};

use crate::engine::{ConversationState, Effect, Owner};
use crate::protocol::Sender;

/// What happened. The names are stored as text and documented in `docs/metrics.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A conversation was created.
    Opened,
    /// The bot answered from a knowledge-base document (`detail` = `kind:id`).
    Answered,
    /// The bot found nothing good enough (`detail` = the question).
    Fallback,
    /// The visitor said an answer did not help (`detail` = `kind:id`).
    Unhelpful,
    /// A scripted flow started (`detail` = flow id).
    FlowStarted,
    /// A scripted flow ended, finished or abandoned (`detail` = flow id).
    FlowEnded,
    /// The chat was handed to people (`detail` = reason).
    HandoffRequested,
    /// The chat joined a team's queue (`team`, `detail` = reason).
    Queued,
    /// The visitor left the queue and is back with the bot.
    LeftQueue,
    /// An agent took the chat (`agent`, `team`).
    Assigned,
    /// An agent wrote to the visitor (`agent`, `team`).
    AgentReplied,
    /// An agent passed the chat on (`agent` = from, `detail` = to agent id or `team:<id>`).
    Transferred,
    /// An agent gave the chat back to the bot (`agent`).
    HandedBack,
    /// An agent closed the chat (`agent`, `team`).
    Closed,
    /// The visitor wrote again after a close: the bot has the chat.
    Reopened,
    /// A satisfaction rating was given (`value` = 1–5; `agent`/`team`: who resolved the
    /// chat, none for the bot; `detail`: the visitor's comment).
    Rated,
    /// The visitor was asked for a rating.
    CsatAsked,
    /// The visitor said an answer helped (`detail` = `kind:id`).
    Helpful,
}

impl EventKind {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Answered => "answered",
            Self::Fallback => "fallback",
            Self::Unhelpful => "unhelpful",
            Self::FlowStarted => "flow_started",
            Self::FlowEnded => "flow_ended",
            Self::HandoffRequested => "handoff_requested",
            Self::Queued => "queued",
            Self::LeftQueue => "left_queue",
            Self::Assigned => "assigned",
            Self::AgentReplied => "agent_replied",
            Self::Transferred => "transferred",
            Self::HandedBack => "handed_back",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
            Self::Rated => "rated",
            Self::CsatAsked => "csat_asked",
            Self::Helpful => "helpful",
        }
    }

    /// The kind a stored name stands for.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

const ALL: [EventKind; 18] = [
    EventKind::Opened,
    EventKind::Answered,
    EventKind::Fallback,
    EventKind::Unhelpful,
    EventKind::FlowStarted,
    EventKind::FlowEnded,
    EventKind::HandoffRequested,
    EventKind::Queued,
    EventKind::LeftQueue,
    EventKind::Assigned,
    EventKind::AgentReplied,
    EventKind::Transferred,
    EventKind::HandedBack,
    EventKind::Closed,
    EventKind::Reopened,
    EventKind::Rated,
    EventKind::CsatAsked,
    EventKind::Helpful,
];

/// One event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The agent involved, if any.
    pub agent: Option<String>,
    /// The team involved, if any.
    pub team: Option<String>,
    /// Reason, document, flow, question or target, by kind.
    pub detail: Option<String>,
    /// A number (the rating).
    pub value: Option<i64>,
}

impl NewEvent {
    /// An event with nothing but its kind and time.
    #[must_use]
    pub fn new(kind: EventKind, at: DateTime<Utc>) -> Self {
        Self { kind, at, agent: None, team: None, detail: None, value: None }
    }

    fn agent(mut self, agent: &str) -> Self {
        self.agent = Some(agent.to_owned());
        self
    }

    fn team(mut self, team: &str) -> Self {
        if !team.is_empty() {
            self.team = Some(team.to_owned());
        }
        self
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The events of one engine step: pure, from the state before (none for a new
/// conversation), the state after and the step's effects.
#[must_use]
pub fn derive(
    before: Option<&ConversationState>,
    after: &ConversationState,
    effects: &[Effect],
    at: DateTime<Utc>,
) -> Vec<NewEvent> {
    let mut events = Vec::new();
    let ev = |kind| NewEvent::new(kind, at);
    let (old_flow, old_owner) = (before.and_then(|s| s.flow.as_ref()), before.map(|s| &s.owner));
    let new_flow = after.flow.as_ref();
    if let Some(old) = old_flow {
        if new_flow.is_none_or(|f| f.flow != old.flow) {
            events.push(ev(EventKind::FlowEnded).detail(&old.flow));
        }
    }
    if let Some(new) = new_flow {
        if old_flow.is_none_or(|f| f.flow != new.flow) {
            events.push(ev(EventKind::FlowStarted).detail(&new.flow));
        }
    }
    let mut rated = Vec::new();
    let voted_no = effects.iter().any(|e| matches!(e, Effect::RecordFeedback { helpful: false, .. }));
    for effect in effects {
        match effect {
            Effect::Say(reply) => {
                if let Some(source) = &reply.extras.source {
                    events.push(ev(EventKind::Answered).detail(format!("{}:{}", source.kind, source.id)));
                }
                if reply.extras.rating {
                    events.push(ev(EventKind::CsatAsked));
                }
                if reply.from == Sender::Agent && !reply.extras.private {
                    let (agent, team) = match &after.owner {
                        Owner::Agent { agent, team, .. } => (agent.id.as_str(), team.as_str()),
                        _ => (reply.extras.author.as_ref().map_or("", |a| a.id.as_str()), ""),
                    };
                    events.push(ev(EventKind::AgentReplied).agent(agent).team(team));
                }
            }
            // A "no" on an answer also files the question for editors; it was answered,
            // so it is no fallback.
            Effect::RecordGap { question, .. } if !voted_no => {
                events.push(ev(EventKind::Fallback).detail(question.clone()));
            }
            Effect::RequestHandoff { reason } => events.push(ev(EventKind::HandoffRequested).detail(reason.clone())),
            Effect::RecordFeedback { doc, helpful: true, .. } => {
                events.push(ev(EventKind::Helpful).detail(doc.clone()));
            }
            Effect::RecordCsat { score, comment, .. } => {
                let mut event = NewEvent { value: Some(i64::from(*score)), ..ev(EventKind::Rated) };
                let resolver = match (&after.owner, &after.resolver) {
                    (Owner::Agent { agent, team, .. }, _) => Some((agent.id.as_str(), team.as_str())),
                    (_, Some(r)) => Some((r.agent.id.as_str(), r.team.as_str())),
                    _ => None,
                };
                if let Some((agent, team)) = resolver {
                    event = event.agent(agent).team(team);
                }
                event.detail = comment.clone();
                rated.push(event);
            }
            _ => {}
        }
    }
    let old_unhelpful = before.map_or(0, |s| s.unhelpful.len());
    for doc in after.unhelpful.iter().skip(old_unhelpful) {
        events.push(ev(EventKind::Unhelpful).detail(doc.clone()));
    }
    if let Some(old) = old_owner {
        owner_events(old, &after.owner, at, &mut events);
    }
    events.extend(rated);
    events
}

fn owner_events(old: &Owner, new: &Owner, at: DateTime<Utc>, events: &mut Vec<NewEvent>) {
    let ev = |kind| NewEvent::new(kind, at);
    match (old, new) {
        (Owner::Queued { team: t0, .. }, Owner::Queued { team, reason }) if t0 != team && !team.is_empty() => {
            events.push(ev(EventKind::Queued).team(team).detail(reason.clone()));
        }
        (Owner::Agent { agent, .. }, Owner::Queued { team, reason }) => {
            events.push(ev(EventKind::Transferred).agent(&agent.id).detail(format!("team:{team}")));
            if !team.is_empty() {
                events.push(ev(EventKind::Queued).team(team).detail(reason.clone()));
            }
        }
        (Owner::Bot | Owner::Closed, Owner::Queued { team, reason }) if !team.is_empty() => {
            events.push(ev(EventKind::Queued).team(team).detail(reason.clone()));
        }
        (Owner::Queued { .. }, Owner::Agent { agent, team, .. }) => {
            events.push(ev(EventKind::Assigned).agent(&agent.id).team(team));
        }
        (Owner::Agent { agent: from, .. }, Owner::Agent { agent, team, .. }) if from.id != agent.id => {
            events.push(ev(EventKind::Transferred).agent(&from.id).detail(agent.id.clone()));
            events.push(ev(EventKind::Assigned).agent(&agent.id).team(team));
        }
        (Owner::Queued { .. }, Owner::Bot) => events.push(ev(EventKind::LeftQueue)),
        (Owner::Agent { agent, team, .. }, Owner::Bot) => {
            events.push(ev(EventKind::HandedBack).agent(&agent.id).team(team));
        }
        (Owner::Agent { agent, team, .. }, Owner::Closed) => {
            events.push(ev(EventKind::Closed).agent(&agent.id).team(team));
        }
        (Owner::Closed, Owner::Bot) => events.push(ev(EventKind::Reopened)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AgentRef, FlowState};

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn held_by(id: &str) -> Owner {
        Owner::Agent {
            agent: AgentRef { id: id.into(), name: id.into() },
            team: "support".into(),
            reason: "asked".into(),
        }
    }

    fn state(owner: Owner) -> ConversationState {
        ConversationState { owner, ..ConversationState::new(Some("en")) }
    }

    fn kinds(events: &[NewEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn every_name_parses_back() {
        for kind in ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[test]
    fn ownership_changes_become_events() {
        let queued = |team: &str| Owner::Queued { reason: "asked".into(), team: team.into() };
        let cases: Vec<(Owner, Owner, Vec<&str>)> = vec![
            (Owner::Bot, queued(""), vec![]),
            (queued(""), queued("support"), vec!["queued"]),
            (queued("support"), held_by("ann"), vec!["assigned"]),
            (held_by("ann"), held_by("bob"), vec!["transferred", "assigned"]),
            (held_by("ann"), queued("billing"), vec!["transferred", "queued"]),
            (held_by("ann"), Owner::Closed, vec!["closed"]),
            (held_by("ann"), Owner::Bot, vec!["handed_back"]),
            (queued("support"), Owner::Bot, vec!["left_queue"]),
            (Owner::Closed, Owner::Bot, vec!["reopened"]),
            (held_by("ann"), held_by("ann"), vec![]),
        ];
        for (before, after, want) in cases {
            let events = derive(Some(&state(before.clone())), &state(after.clone()), &[], at());
            assert_eq!(kinds(&events), want, "{before:?} → {after:?}");
        }
        let events = derive(Some(&state(held_by("ann"))), &state(held_by("bob")), &[], at());
        assert_eq!((events[0].agent.as_deref(), events[0].detail.as_deref()), (Some("ann"), Some("bob")));
        assert_eq!((events[1].agent.as_deref(), events[1].team.as_deref()), (Some("bob"), Some("support")));
    }

    #[test]
    fn flows_unhelpful_answers_and_ratings() {
        let flow = |name: &str| FlowState {
            flow: name.into(),
            step: "start".into(),
            slots: std::collections::BTreeMap::new(),
            retries: 0,
            steps_run: 0,
            last_activity: at(),
            awaiting_lookup: false,
            paused: false,
            searching: false,
        };
        let mut before = state(Owner::Bot);
        let mut after = state(Owner::Bot);
        after.flow = Some(flow("order_tracking"));
        after.unhelpful = vec!["faq:returns".into()];
        let events =
            derive(Some(&before), &after, &[Effect::RecordCsat { score: 4, replaces: false, comment: None }], at());
        assert_eq!(kinds(&events), ["flow_started", "unhelpful", "rated"]);
        assert_eq!(events[2].value, Some(4));
        before = after.clone();
        after.flow = None;
        let events = derive(Some(&before), &after, &[], at());
        assert_eq!(kinds(&events), ["flow_ended"], "the unhelpful answer is not counted twice");
    }
}
