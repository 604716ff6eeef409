//! Who answers the visitor: the bot, the queue, an agent, or nobody (closed). An explicit
//! state machine, pure like the rest of the engine.
//!
//! ```text
//! bot ──request──▶ queued ──assign──▶ agent(id) ──close──▶ closed
//!  ▲                 │                  │  │ ▲                │
//!  └──leave queue────┘                  │  └─┘ transfer        │
//!  └──────────────hand back─────────────┘                      │
//!  └──────────────────visitor writes again─────────────────────┘
//! ```
//!
//! While a person owns the chat (queued or agent) the bot says nothing on its own: no
//! small talk, no search, no flow. Every transition is a `system` message in the
//! visitor's language. Where the chat goes (which team, its position, whether anyone is
//! there at all) is decided outside, by the desk, and comes back as [`DeskNews`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ConversationState, Effect, Reply, say, say_with};
use crate::flows::BotScript;
use crate::ids::Seq;
use crate::protocol::{Author, MessageExtras, QuickReply, Sender};

/// Quick-reply value: leave the queue and go back to the bot.
pub const LEAVE_QUEUE_VALUE: &str = "leave_queue";
/// Quick-reply value: leave contact details instead of waiting.
pub const LEAVE_CONTACT_VALUE: &str = "leave_contact";
/// Quick-reply values choosing the preferred contact channel.
pub const CHANNEL_EMAIL_VALUE: &str = "contact_email";
/// See [`CHANNEL_EMAIL_VALUE`].
pub const CHANNEL_PHONE_VALUE: &str = "contact_phone";

/// An agent as the visitor sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    /// Stable agent id.
    pub id: String,
    /// Display name shown to visitors.
    pub name: String,
}

impl From<AgentRef> for Author {
    fn from(a: AgentRef) -> Self {
        Self { id: a.id, name: a.name }
    }
}

/// Who answers the visitor right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    /// The bot.
    #[default]
    Bot,
    /// Waiting for a person.
    Queued {
        /// Why the chat went to people.
        reason: String,
        /// Team whose queue it is in (empty until the desk placed it).
        team: String,
    },
    /// A person holds the chat.
    Agent {
        /// Who.
        agent: AgentRef,
        /// The team they took it for.
        team: String,
        /// Why the chat went to people.
        reason: String,
    },
    /// An agent closed the chat; the visitor writing again gives it back to the bot.
    Closed,
}

impl Owner {
    /// The name stored in the `owner_kind` column.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Queued { .. } => "queued",
            Self::Agent { .. } => "agent",
            Self::Closed => "closed",
        }
    }

    /// True while people, not the bot, answer (queued or held by an agent).
    #[must_use]
    pub fn is_people(&self) -> bool {
        matches!(self, Self::Queued { .. } | Self::Agent { .. })
    }

    /// The agent holding the chat.
    #[must_use]
    pub fn agent(&self) -> Option<&AgentRef> {
        match self {
            Self::Agent { agent, .. } => Some(agent),
            _ => None,
        }
    }
}

/// How the desk placed a chat that asked for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskNews {
    /// In `team`'s queue at `position` (1 = next), with an estimated wait.
    Queued {
        /// Team.
        team: String,
        /// Display name of the team.
        team_name: String,
        /// 1-based.
        position: usize,
        /// Estimated wait in whole minutes (at least 1).
        eta_minutes: u32,
    },
    /// Nobody can take it now (outside hours, or nobody online): collect contact details.
    Offline {
        /// Team it would have gone to.
        team: String,
        /// When someone is expected back, if known.
        back_at: Option<DateTime<Utc>>,
        /// Time zone name to show `back_at` in.
        time_zone: String,
    },
}

/// Something a person (or the desk on their behalf) does to a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// The desk assigned the chat to `agent` (accepted offer or claim).
    Assign {
        /// Who.
        agent: AgentRef,
        /// The team they take it for.
        team: String,
    },
    /// A reply to the visitor.
    Message {
        /// Author.
        agent: String,
        /// Text.
        text: String,
    },
    /// A private note, never shown to the visitor.
    Note {
        /// Author.
        agent: String,
        /// Text.
        text: String,
    },
    /// Hand the chat to another agent directly.
    TransferToAgent {
        /// Current holder.
        agent: String,
        /// New holder.
        to: AgentRef,
        /// Their team.
        team: String,
    },
    /// Put the chat in another team's queue.
    TransferToTeam {
        /// Current holder.
        agent: String,
        /// Target team id.
        team: String,
        /// Target team display name.
        team_name: String,
    },
    /// Give the chat back to the bot.
    HandBack {
        /// Current holder.
        agent: String,
    },
    /// End the chat.
    Close {
        /// Current holder.
        agent: String,
    },
    /// The holder's connection has been gone past the grace period: back to the front of
    /// the queue.
    Requeue {
        /// The holder who left.
        agent: String,
    },
}

/// Why an action was refused. Acting on a chat one does not hold is the same refusal as
/// acting on a chat that does not exist ([`Refusal::NotHeld`]), so nothing leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The chat is not held by this agent (or not at all).
    #[error("no such chat among yours")]
    NotHeld,
    /// The chat is not waiting for a person (someone took it, or the visitor left).
    #[error("the chat is not waiting in a queue")]
    NotQueued,
    /// A transfer to oneself.
    #[error("the chat is already yours")]
    SameAgent,
    /// The conversation was rated and the time to change one's mind has passed.
    #[error("this conversation has already been rated")]
    AlreadyRated,
    /// Nobody asked for a rating in this conversation.
    #[error("no rating was asked for in this conversation")]
    RatingNotRequested,
    /// The visitor already said whether this answer helped.
    #[error("this answer already has your feedback")]
    AlreadyVoted,
}

/// The engine's step on a person's action.
///
/// # Errors
/// When the chat's owner does not allow the action; the state is unchanged then.
pub fn act(state: &mut ConversationState, script: &BotScript, action: AgentAction) -> Result<Vec<Effect>, Refusal> {
    let lang = state.lang.clone();
    let text = |key: &str, args: &[(&str, &str)]| script.catalog.text(&lang, key, args);
    match action {
        AgentAction::Assign { agent, team } => {
            let Owner::Queued { reason, .. } = &state.owner else { return Err(Refusal::NotQueued) };
            let reason = reason.clone();
            let line = text("handoff_agent_joined", &[("agent", &agent.name)]);
            state.owner = Owner::Agent { agent, team, reason };
            // The queue's buttons no longer apply.
            state.offered.clear();
            Ok(vec![system(state, line)])
        }
        AgentAction::Message { agent, text: body } => {
            let holder = held_by(state, &agent)?.clone();
            let extras = MessageExtras { author: Some(holder.into()), ..MessageExtras::default() };
            Ok(vec![say_with(state, Sender::Agent, body, None, extras)])
        }
        AgentAction::Note { agent, text: body } => {
            let holder = held_by(state, &agent)?.clone();
            Ok(vec![Effect::Note { author: holder, text: body }])
        }
        AgentAction::TransferToAgent { agent, to, team } => {
            let from = held_by(state, &agent)?.clone();
            if from.id == to.id {
                return Err(Refusal::SameAgent);
            }
            let reason = reason_of(&state.owner);
            let line = text("handoff_transferred", &[("agent", &from.name), ("target", &to.name)]);
            state.owner = Owner::Agent { agent: to, team, reason };
            Ok(vec![system(state, line)])
        }
        AgentAction::TransferToTeam { agent, team, team_name } => {
            let from = held_by(state, &agent)?.clone();
            let reason = reason_of(&state.owner);
            let line = text("handoff_transferred", &[("agent", &from.name), ("target", &team_name)]);
            state.owner = Owner::Queued { reason: reason.clone(), team };
            Ok(vec![system(state, line), Effect::RequestHandoff { reason }])
        }
        AgentAction::HandBack { agent } => {
            let from = held_by(state, &agent)?.clone();
            state.owner = Owner::Bot;
            state.resolver = None;
            state.fallbacks_in_row = 0;
            Ok(vec![system(state, text("handoff_handed_back", &[("agent", &from.name)]))])
        }
        AgentAction::Close { agent } => {
            let holder = held_by(state, &agent)?.clone();
            let team = match &state.owner {
                Owner::Agent { team, .. } => team.clone(),
                _ => String::new(),
            };
            state.resolver = Some(super::Resolver { agent: holder, team });
            state.owner = Owner::Closed;
            Ok(vec![system(state, text("handoff_closed", &[]))])
        }
        AgentAction::Requeue { agent } => {
            let from = held_by(state, &agent)?.clone();
            let (reason, team) = match &state.owner {
                Owner::Agent { reason, team, .. } => (reason.clone(), team.clone()),
                _ => return Err(Refusal::NotHeld),
            };
            state.owner = Owner::Queued { reason, team };
            Ok(vec![system(state, text("handoff_requeued", &[("agent", &from.name)]))])
        }
    }
}

/// The desk placed the chat: tell the visitor where they stand, or collect their contact
/// details when nobody can take it now.
pub(super) fn placed(state: &mut ConversationState, script: &BotScript, news: DeskNews) -> Vec<Effect> {
    let Owner::Queued { reason, .. } = &state.owner else { return Vec::new() };
    let reason = reason.clone();
    let lang = state.lang.clone();
    match news {
        DeskNews::Queued { team, team_name, position, eta_minutes } => {
            state.owner = Owner::Queued { reason, team };
            let (position, eta) = (position.to_string(), eta_minutes.to_string());
            let line = script.catalog.text(
                &lang,
                "handoff_queued",
                &[("position", &position), ("eta", &eta), ("team", &team_name)],
            );
            let extras = MessageExtras { quick_replies: queue_actions(state, script), ..MessageExtras::default() };
            vec![say_with(state, Sender::System, line, None, extras)]
        }
        DeskNews::Offline { team, back_at, time_zone } => {
            state.owner = Owner::Bot;
            state.offline = Some(OfflineForm { team, reason, channel: None, contact: None });
            let line = match back_at.and_then(|t| local_time(t, &time_zone)) {
                Some(back) => script.catalog.text(&lang, "handoff_offline_back_at", &[("time", &back)]),
                None => script.catalog.text(&lang, "handoff_offline", &[]),
            };
            let ask = script.catalog.text(&lang, "offline_ask_channel", &[]);
            let extras = MessageExtras { quick_replies: channel_choices(state, script), ..MessageExtras::default() };
            vec![system(state, line), say_with(state, Sender::Bot, ask, None, extras)]
        }
    }
}

fn local_time(at: DateTime<Utc>, zone: &str) -> Option<String> {
    let tz: chrono_tz::Tz = zone.parse().ok()?;
    Some(format!("{} ({zone})", at.with_timezone(&tz).format("%Y-%m-%d %H:%M")))
}

/// Contact details being collected because nobody could take the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineForm {
    /// Team the request goes to.
    pub team: String,
    /// Why the visitor wanted a person.
    pub reason: String,
    /// `email` or `phone`, once chosen.
    pub channel: Option<String>,
    /// The address or number, once valid.
    pub contact: Option<String>,
}

/// What the visitor typed or chose while the offline form is open; `None` when it is
/// not an answer to the form (the bot handles it as usual).
pub(super) fn offline_input(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Seq,
    text: &str,
    choice: Option<&str>,
) -> Option<Vec<Effect>> {
    let form = state.offline.clone()?;
    let lang = state.lang.clone();
    let t = |key: &str| script.catalog.text(&lang, key, &[]);
    match (&form.channel, &form.contact) {
        (None, _) => {
            let channel = match choice {
                Some(CHANNEL_EMAIL_VALUE) => "email",
                Some(CHANNEL_PHONE_VALUE) => "phone",
                _ if valid_email(text).is_some() => {
                    return Some(offline_contact(state, script, seq, "email", text));
                }
                _ if valid_phone(text).is_some() => {
                    return Some(offline_contact(state, script, seq, "phone", text));
                }
                _ => {
                    let extras =
                        MessageExtras { quick_replies: channel_choices(state, script), ..MessageExtras::default() };
                    return Some(vec![say_with(state, Sender::Bot, t("offline_ask_channel"), Some(seq), extras)]);
                }
            };
            if let Some(f) = state.offline.as_mut() {
                f.channel = Some(channel.to_owned());
            }
            let key = if channel == "email" { "offline_ask_email" } else { "offline_ask_phone" };
            Some(vec![say(state, Sender::Bot, t(key), Some(seq))])
        }
        (Some(channel), None) => {
            let channel = channel.clone();
            Some(offline_contact(state, script, seq, &channel, text))
        }
        (Some(channel), Some(contact)) => {
            let details = text.trim().to_owned();
            let (channel, contact) = (channel.clone(), contact.clone());
            state.offline = None;
            let key = if channel == "email" { "offline_filed_email" } else { "offline_filed_phone" };
            let thanks = script.catalog.text(&lang, key, &[("contact", &contact)]);
            Some(vec![
                Effect::FileOfflineRequest { team: form.team, reason: form.reason, channel, contact, details, seq },
                say(state, Sender::Bot, thanks, Some(seq)),
            ])
        }
    }
}

fn offline_contact(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Seq,
    channel: &str,
    text: &str,
) -> Vec<Effect> {
    let lang = state.lang.clone();
    let valid = if channel == "email" { valid_email(text) } else { valid_phone(text) };
    let Some(contact) = valid else {
        let key = if channel == "email" { "offline_bad_email" } else { "offline_bad_phone" };
        return vec![say(state, Sender::Bot, script.catalog.text(&lang, key, &[]), Some(seq))];
    };
    if let Some(f) = state.offline.as_mut() {
        f.channel = Some(channel.to_owned());
        f.contact = Some(contact);
    }
    vec![say(state, Sender::Bot, script.catalog.text(&lang, "offline_ask_details", &[]), Some(seq))]
}

/// A plausible e-mail address (one `@`, a dot in the domain, no spaces), trimmed.
#[must_use]
pub fn valid_email(text: &str) -> Option<String> {
    let t = text.trim();
    let (local, domain) = t.split_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !t.chars().any(char::is_whitespace)
        && !domain.contains('@');
    ok.then(|| t.to_owned())
}

/// A plausible phone number: 7 to 15 digits, optionally a leading `+`, with spaces,
/// dashes, dots or brackets between; returned with only `+` and digits.
#[must_use]
pub fn valid_phone(text: &str) -> Option<String> {
    let t = text.trim();
    if !t.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) || t.rfind('+').is_some_and(|i| i > 0) {
        return None;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    (7..=15).contains(&digits.len()).then(|| if t.starts_with('+') { format!("+{digits}") } else { digits })
}

fn queue_actions(state: &ConversationState, script: &BotScript) -> Vec<QuickReply> {
    vec![
        QuickReply { label: script.catalog.text(&state.lang, "queue_leave", &[]), value: LEAVE_QUEUE_VALUE.to_owned() },
        QuickReply {
            label: script.catalog.text(&state.lang, "queue_leave_contact", &[]),
            value: LEAVE_CONTACT_VALUE.to_owned(),
        },
    ]
}

fn channel_choices(state: &ConversationState, script: &BotScript) -> Vec<QuickReply> {
    vec![
        QuickReply {
            label: script.catalog.text(&state.lang, "offline_channel_email", &[]),
            value: CHANNEL_EMAIL_VALUE.to_owned(),
        },
        QuickReply {
            label: script.catalog.text(&state.lang, "offline_channel_phone", &[]),
            value: CHANNEL_PHONE_VALUE.to_owned(),
        },
    ]
}

/// The visitor wants a person: into the queue (the desk places it), or "already there".
pub(super) fn request(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Option<Seq>,
    reason: &str,
) -> Vec<Effect> {
    if state.owner.is_people() {
        let text = script.catalog.text(&state.lang, "handoff_already", &[]);
        // While queued, the queue's actions stay on offer with the line.
        if matches!(state.owner, Owner::Queued { .. }) {
            let extras = MessageExtras { quick_replies: queue_actions(state, script), ..MessageExtras::default() };
            return vec![say_with(state, Sender::System, text, seq, extras)];
        }
        return vec![say(state, Sender::System, text, seq)];
    }
    if let Some(flow) = state.flow.take() {
        state.flow_at_handoff = Some(flow);
    }
    state.offline = None;
    state.fallbacks_in_row = 0;
    state.owner = Owner::Queued { reason: reason.to_owned(), team: String::new() };
    let text = script.catalog.text(&state.lang, "handoff_requested", &[]);
    vec![say(state, Sender::System, text, seq), Effect::RequestHandoff { reason: reason.to_owned() }]
}

/// The visitor, while people own the chat, chose one of the queue's actions; `None` for
/// anything else (their message just waits for the agent).
pub(super) fn queue_choice(
    state: &mut ConversationState,
    script: &BotScript,
    seq: Seq,
    value: &str,
) -> Option<Vec<Effect>> {
    let Owner::Queued { reason, team } = &state.owner else { return None };
    let (reason, team) = (reason.clone(), team.clone());
    let lang = state.lang.clone();
    match value {
        LEAVE_QUEUE_VALUE => {
            state.owner = Owner::Bot;
            let line = script.catalog.text(&lang, "handoff_left_queue", &[]);
            Some(vec![Effect::LeftQueue, say(state, Sender::System, line, Some(seq))])
        }
        LEAVE_CONTACT_VALUE => {
            state.owner = Owner::Bot;
            state.offline = Some(OfflineForm { team, reason, channel: None, contact: None });
            let ask = script.catalog.text(&lang, "offline_ask_channel", &[]);
            let extras = MessageExtras { quick_replies: channel_choices(state, script), ..MessageExtras::default() };
            Some(vec![Effect::LeftQueue, say_with(state, Sender::Bot, ask, Some(seq), extras)])
        }
        _ => None,
    }
}

fn held_by<'a>(state: &'a ConversationState, agent: &str) -> Result<&'a AgentRef, Refusal> {
    match &state.owner {
        Owner::Agent { agent: holder, .. } if holder.id == agent => Ok(holder),
        _ => Err(Refusal::NotHeld),
    }
}

fn reason_of(owner: &Owner) -> String {
    match owner {
        Owner::Queued { reason, .. } | Owner::Agent { reason, .. } => reason.clone(),
        Owner::Bot | Owner::Closed => String::new(),
    }
}

/// A system line; it leaves the buttons the visitor had alone (they still apply).
fn system(_state: &ConversationState, text: String) -> Effect {
    Effect::Say(Reply { from: Sender::System, text, reply_to: None, extras: MessageExtras::default() })
}
