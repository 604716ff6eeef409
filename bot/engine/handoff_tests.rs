//! Ownership transcripts: who answers the visitor (bot, queue, agent, closed), every
//! transition and every refused one, as whole conversations through [`step`].
//!
//! The phrase catalog is being rewritten, so these tests run on a catalog whose handoff
//! phrases are replaced by their own key plus every placeholder the engine should fill
//! (`[handoff_agent_joined] agent={agent}`): assertions name the phrase said and check
//! the values in it, never the English wording.

use super::handoff::{
    CHANNEL_EMAIL_VALUE, CHANNEL_PHONE_VALUE, LEAVE_CONTACT_VALUE, LEAVE_QUEUE_VALUE, valid_email, valid_phone,
};
use super::tests::Chat;
use super::*;

/// Phrases replaced in the test catalog, with the placeholders the engine fills in.
const KEYED: &[(&str, &str)] = &[
    ("talk_to_person", ""),
    ("fallback", ""),
    ("fallback_with_articles", ""),
    ("handoff_requested", ""),
    ("handoff_already", ""),
    ("handoff_queued", "position={position} eta={eta} team={team}"),
    ("handoff_agent_joined", "agent={agent}"),
    ("handoff_transferred", "agent={agent} target={target}"),
    ("handoff_handed_back", "agent={agent}"),
    ("handoff_closed", ""),
    ("handoff_requeued", "agent={agent}"),
    ("handoff_left_queue", ""),
    ("handoff_offline", ""),
    ("handoff_offline_back_at", "time={time}"),
    ("offline_ask_channel", ""),
    ("offline_channel_email", ""),
    ("offline_channel_phone", ""),
    ("offline_ask_email", ""),
    ("offline_ask_phone", ""),
    ("offline_bad_email", ""),
    ("offline_bad_phone", ""),
    ("offline_ask_details", ""),
    ("offline_filed_email", "contact={contact}"),
    ("offline_filed_phone", "contact={contact}"),
    ("offline_cancelled", ""),
    ("queue_leave", ""),
    ("queue_leave_contact", ""),
    ("smalltalk_greeting", ""),
    ("csat_question", ""),
    ("csat_question_agent", ""),
    ("csat_thanks", ""),
    ("csat_already", ""),
    ("unhelpful_related", ""),
    ("unhelpful_person", ""),
];

/// The built-in script with [`KEYED`] phrases replaced in English (the fallback of every
/// language).
pub(super) fn keyed_script() -> BotScript {
    let mut script = BotScript::builtin().expect("builtin script");
    for (key, args) in KEYED {
        script.catalog.set_phrase("en", key, &format!("[{key}] {args}"));
    }
    script
}

/// The catalog key of a line of the keyed catalog (`[key] …`).
pub(super) fn key(text: &str) -> &str {
    text.strip_prefix('[').and_then(|t| t.split_once(']')).map_or(text, |(k, _)| k)
}

pub(super) fn ann() -> AgentRef {
    AgentRef { id: "a-ann".into(), name: "Ann Smith".into() }
}

fn bob() -> AgentRef {
    AgentRef { id: "a-bob".into(), name: "Bob Jones".into() }
}

impl Chat {
    pub(super) fn keyed() -> Self {
        Self::with_script(keyed_script())
    }

    pub(super) fn text(&mut self, seq: i64, text: &str) -> Vec<Effect> {
        self.step(Event::VisitorText { seq: Seq(seq), text: text.into() })
    }

    fn choose(&mut self, seq: i64, value: &str) -> Vec<Effect> {
        self.step(Event::VisitorChoice { seq: Seq(seq), value: value.into() })
    }

    pub(super) fn act(&mut self, action: AgentAction) -> Vec<Effect> {
        self.step(Event::Agent(action))
    }

    /// An honest fallback to the visitor message `seq` (nothing found).
    fn nothing_found(&mut self, seq: i64) -> Vec<Effect> {
        self.step(Event::SearchResults { reply_to: Seq(seq), query: "q".into(), lang: "en".into(), hits: vec![] })
    }

    pub(super) fn queued_news(&mut self, team: &str, position: usize) -> Vec<Effect> {
        self.step(Event::Placed(DeskNews::Queued {
            team: team.into(),
            team_name: format!("Team {team}"),
            position,
            eta_minutes: 4,
        }))
    }

    /// Bot → queued (the visitor asked) → placed in `sales` → held by Ann.
    pub(super) fn held_by_ann() -> Self {
        let mut chat = Self::keyed();
        chat.text(2, "talk to a person");
        chat.queued_news("sales", 1);
        chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() });
        assert_eq!(chat.state.owner.agent(), Some(&ann()));
        chat
    }
}

/// Every `Say` as (sender, catalog key or raw text).
pub(super) fn said(effects: &[Effect]) -> Vec<(Sender, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Say(r) => Some((r.from, key(&r.text).to_owned())),
            _ => None,
        })
        .collect()
}

fn lines(effects: &[Effect]) -> Vec<&Reply> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Say(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn handoff_reasons(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::RequestHandoff { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

fn quick_values(reply: &Reply) -> Vec<&str> {
    reply.extras.quick_replies.iter().map(|q| q.value.as_str()).collect()
}

fn queued(reason: &str, team: &str) -> Owner {
    Owner::Queued { reason: reason.into(), team: team.into() }
}

/// The visitor's message reached the bot: it searched, answered small talk or ran a flow.
fn bot_answered(effects: &[Effect]) -> bool {
    effects.iter().any(|e| match e {
        Effect::Search { .. } | Effect::LookupOrder { .. } => true,
        Effect::Say(r) => r.from == Sender::Bot,
        _ => false,
    })
}

/// The chat was put in the queue for `reason`: the system says so and asks the desk.
#[track_caller]
fn assert_requested(chat: &Chat, out: &[Effect], reason: &str) {
    assert_eq!(handoff_reasons(out), [reason], "{out:?}");
    assert!(said(out).contains(&(Sender::System, "handoff_requested".into())), "{out:?}");
    assert!(matches!(out.last(), Some(Effect::RequestHandoff { .. })), "the request comes last: {out:?}");
    assert_eq!(chat.state.owner, queued(reason, ""));
    assert!(chat.state.flow.is_none() && chat.state.offline.is_none());
}

// ---- triggers

#[test]
fn typed_requests_for_a_person_queue_the_chat_in_every_language() {
    let phrases = [
        "talk to a person",
        "Can I speak to a human please?",
        "I want a human",
        "I need to talk to someone",
        "оператор",
        "Позовите человека!",
        "хочу поговорить с оператором",
        "нужен оператор",
        "мне нужен живой человек",
        "соедините с оператором, пожалуйста",
        "chcę rozmawiać z konsultantem",
        "Konsultant",
        "人工客服",
        "转人工",
        "我要真人客服",
        "我要人工客服",
        "轉真人",
    ];
    let mut missed = Vec::new();
    for phrase in phrases {
        let mut chat = Chat::keyed();
        let out = chat.text(2, phrase);
        if handoff_reasons(&out) != [reasons::VISITOR_ASKED] {
            missed.push((phrase, out));
            continue;
        }
        assert_eq!(said(&out), [(Sender::System, "handoff_requested".to_owned())], "{phrase}");
        assert_eq!(lines(&out)[0].reply_to, Some(Seq(2)));
        assert_requested(&chat, &out, reasons::VISITOR_ASKED);
    }
    assert!(missed.is_empty(), "not recognised as asking for a person: {missed:#?}");
}

#[test]
fn questions_that_mention_people_are_not_requests() {
    for text in [
        "how many people work at Fernhill?",
        "is a human checking my return?",
        "I want a refund",
        "I need someone to collect my return",
        "оператор доставки какой?",
        "хочу вернуть товар",
        "人工费多少",
    ] {
        let mut chat = Chat::keyed();
        let out = chat.text(2, text);
        assert!(handoff_reasons(&out).is_empty(), "{text}: {out:?}");
        assert_eq!(chat.state.owner, Owner::Bot);
    }
}

#[test]
fn the_quick_reply_asks_for_a_person() {
    let mut chat = Chat::keyed();
    let out = chat.nothing_found(3);
    assert_eq!(quick_values(lines(&out)[0]), [HANDOFF_VALUE], "the fallback offers a person");
    let out = chat.choose(5, HANDOFF_VALUE);
    assert_requested(&chat, &out, reasons::VISITOR_ASKED);
    assert_eq!(lines(&out)[0].reply_to, Some(Seq(5)));
}

#[test]
fn a_flow_handoff_step_queues_the_chat_with_the_flows_reason() {
    let mut chat = Chat::keyed();
    chat.text(2, "where is my order FH-100234");
    let out = chat.text(4, "NN1 2AB");
    assert!(matches!(&out[..], [Effect::LookupOrder { .. }]), "{out:?}");
    let fields = [("id", "FH-100234"), ("status", "delayed"), ("carrier", "DPD"), ("expected_delivery", "2026-12-02")];
    let order = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let out = chat.step(Event::LookupResult { reply_to: Seq(4), outcome: LookupOutcome::Found(order) });
    let Some(Effect::Say(options)) = out.last() else { panic!("{out:?}") };
    assert!(quick_values(options).contains(&"flow:person"), "{out:?}");
    assert!(chat.state.flow.is_some());
    let out = chat.choose(6, "flow:person");
    let reason = "delayed order FH-100234: customer asked for a person";
    assert_requested(&chat, &out, reason);
}

#[test]
fn repeated_fallbacks_hand_over_after_the_policys_count() {
    for limit in [1, 2, 3] {
        let mut chat = Chat::keyed();
        chat.policy.handoff_after_fallbacks = limit;
        for n in 1..limit {
            let out = chat.nothing_found(i64::from(n) * 2);
            assert!(handoff_reasons(&out).is_empty(), "limit {limit}, fallback {n}: {out:?}");
            assert_eq!(chat.state.owner, Owner::Bot);
        }
        let out = chat.nothing_found(99);
        assert_eq!(said(&out)[0], (Sender::Bot, "fallback".to_owned()), "still an honest fallback first");
        assert!(out.iter().any(|e| matches!(e, Effect::RecordGap { .. })));
        assert_requested(&chat, &out, reasons::REPEATED_FALLBACK);
    }
}

#[test]
fn zero_fallbacks_never_hands_over() {
    let mut chat = Chat::keyed();
    chat.policy.handoff_after_fallbacks = 0;
    for n in 0..6 {
        let out = chat.nothing_found(n * 2);
        assert!(handoff_reasons(&out).is_empty(), "{out:?}");
    }
    assert_eq!(chat.state.owner, Owner::Bot);
}

#[test]
fn an_answer_between_fallbacks_starts_the_count_again() {
    let mut chat = Chat::keyed();
    chat.nothing_found(2);
    let hit = KbHit {
        kind: DocKind::Faq,
        id: "free-delivery".into(),
        lang: "en".into(),
        title: "Free delivery".into(),
        url: "/kb/en/free-delivery".into(),
        answer: "Delivery is free over £50.".into(),
        confidence: 0.9,
        bm25: 1.0,
    };
    chat.step(Event::SearchResults { reply_to: Seq(4), query: "q".into(), lang: "en".into(), hits: vec![hit] });
    assert_eq!(chat.state.fallbacks_in_row, 0);
    let out = chat.nothing_found(6);
    assert!(handoff_reasons(&out).is_empty(), "not two in a row: {out:?}");
    let out = chat.nothing_found(8);
    assert_eq!(handoff_reasons(&out), [reasons::REPEATED_FALLBACK]);
}

#[test]
fn not_helpful_asks_for_a_person() {
    let mut chat = Chat::keyed();
    let out = chat.choose(4, NOT_HELPFUL_VALUE);
    assert_requested(&chat, &out, reasons::NOT_HELPFUL);
}

#[test]
fn the_api_can_put_a_chat_in_front_of_people() {
    let mut chat = Chat::keyed();
    let out = chat.step(Event::HandoffRequested { reason: "VIP customer".into() });
    assert_requested(&chat, &out, "VIP customer");
    assert_eq!(lines(&out)[0].reply_to, None, "not an answer to anything");
    // A second request while queued changes nothing.
    let before = chat.state.clone();
    let out = chat.step(Event::HandoffRequested { reason: "again".into() });
    assert_eq!(said(&out), [(Sender::System, "handoff_already".to_owned())]);
    assert!(handoff_reasons(&out).is_empty());
    // Only the queue's actions come (back) on offer with the line; nothing else changes.
    let offered: Vec<&str> = chat.state.offered.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(offered, [LEAVE_QUEUE_VALUE, LEAVE_CONTACT_VALUE]);
    assert_eq!(ConversationState { offered: before.offered.clone(), ..chat.state.clone() }, before);
}

#[test]
fn asking_for_a_person_leaves_a_running_flow_and_an_open_offline_form() {
    let mut chat = Chat::keyed();
    chat.text(2, "I want to track my order");
    assert!(chat.state.flow.is_some());
    let out = chat.text(4, "talk to a person");
    assert_requested(&chat, &out, reasons::VISITOR_ASKED);

    let mut chat = Chat::keyed();
    chat.text(2, "talk to a person");
    chat.step(Event::Placed(DeskNews::Offline { team: "sales".into(), back_at: None, time_zone: "UTC".into() }));
    chat.choose(4, CHANNEL_EMAIL_VALUE);
    assert!(chat.state.offline.is_some());
    let out = chat.text(6, "operator please");
    assert_requested(&chat, &out, reasons::VISITOR_ASKED);
}

// ---- the whole life of a chat

#[test]
fn bot_queue_agent_transfers_hand_back_close_and_back_to_the_bot() {
    let mut chat = Chat::keyed();

    // Bot → queued.
    let out = chat.text(2, "I want a human");
    assert_requested(&chat, &out, reasons::VISITOR_ASKED);

    // Placed in a queue: position and team, with the queue's two actions.
    let out = chat.queued_news("sales", 3);
    let [Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_queued"));
    assert!(line.text.contains("position=3") && line.text.contains("Team sales"), "{}", line.text);
    assert_eq!(quick_values(line), [LEAVE_QUEUE_VALUE, LEAVE_CONTACT_VALUE]);
    assert_eq!(chat.state.owner, queued(reasons::VISITOR_ASKED, "sales"));
    let offered: Vec<&str> = chat.state.offered.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(offered, [LEAVE_QUEUE_VALUE, LEAVE_CONTACT_VALUE]);
    // A later position update replaces the line's numbers.
    let out = chat.queued_news("sales", 1);
    assert!(lines(&out)[0].text.contains("position=1"));

    // Queued → agent.
    let out = chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() });
    let [Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_agent_joined"));
    assert!(line.text.contains("Ann Smith"), "{}", line.text);
    assert_eq!(
        chat.state.owner,
        Owner::Agent { agent: ann(), team: "sales".into(), reason: reasons::VISITOR_ASKED.into() }
    );

    // The agent writes: an agent message with its author.
    let out = chat.act(AgentAction::Message { agent: ann().id, text: "Hi, I'm Ann. How can I help?".into() });
    let [Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(line.from, Sender::Agent);
    assert_eq!(line.text, "Hi, I'm Ann. How can I help?");
    assert_eq!(line.extras.author, Some(crate::protocol::Author { id: "a-ann".into(), name: "Ann Smith".into() }));
    assert!(!line.extras.private);

    // A note is a note, never something said.
    let out = chat.act(AgentAction::Note { agent: ann().id, text: "VIP, be nice".into() });
    assert_eq!(out, [Effect::Note { author: ann(), text: "VIP, be nice".into() }]);

    // Transfer to another agent: the line names both.
    let out = chat.act(AgentAction::TransferToAgent { agent: ann().id, to: bob(), team: "billing".into() });
    let [Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_transferred"));
    assert!(line.text.contains("Ann Smith") && line.text.contains("Bob Jones"), "{}", line.text);
    assert_eq!(
        chat.state.owner,
        Owner::Agent { agent: bob(), team: "billing".into(), reason: reasons::VISITOR_ASKED.into() }
    );
    // Ann no longer holds it.
    let out = chat.act(AgentAction::Message { agent: ann().id, text: "still here".into() });
    assert_eq!(out, [Effect::Refused(Refusal::NotHeld)]);

    // Transfer to a team: back in a queue, the desk is asked again, same reason.
    let out = chat.act(AgentAction::TransferToTeam {
        agent: bob().id,
        team: "returns".into(),
        team_name: "Returns desk".into(),
    });
    let [Effect::Say(line), Effect::RequestHandoff { reason }] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_transferred"));
    assert!(line.text.contains("Bob Jones") && line.text.contains("Returns desk"), "{}", line.text);
    assert_eq!(reason, reasons::VISITOR_ASKED);
    assert_eq!(chat.state.owner, queued(reasons::VISITOR_ASKED, "returns"));
    chat.queued_news("returns", 1);
    chat.act(AgentAction::Assign { agent: ann(), team: "returns".into() });
    assert_eq!(chat.state.owner.agent(), Some(&ann()));

    // Hand back: the bot answers again.
    let out = chat.act(AgentAction::HandBack { agent: ann().id });
    let [Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_handed_back"));
    assert!(line.text.contains("Ann Smith"), "{}", line.text);
    assert_eq!(chat.state.owner, Owner::Bot);
    let out = chat.text(10, "how much is delivery to Spain?");
    assert!(bot_answered(&out));
    assert!(matches!(&out[..], [Effect::Search { reply_to: Seq(10), .. }]), "{out:?}");

    // Back to a person, then closed.
    chat.text(12, "talk to a person");
    chat.queued_news("sales", 1);
    chat.act(AgentAction::Assign { agent: bob(), team: "sales".into() });
    let out = chat.act(AgentAction::Close { agent: bob().id });
    assert_eq!(
        said(&out),
        [(Sender::System, "handoff_closed".to_owned()), (Sender::Bot, "csat_question_agent".to_owned())]
    );
    assert_eq!(chat.state.owner, Owner::Closed);

    // The visitor writes again: the bot answers.
    let out = chat.text(14, "and returns?  how long do they take");
    assert!(matches!(&out[..], [Effect::Search { reply_to: Seq(14), .. }]), "{out:?}");
    assert_eq!(chat.state.owner, Owner::Bot);
}

#[test]
fn a_closed_chat_goes_back_to_the_bot_on_small_talk_and_choices_too() {
    let mut chat = Chat::held_by_ann();
    chat.act(AgentAction::Close { agent: ann().id });
    let out = chat.text(20, "hello");
    assert_eq!(said(&out), [(Sender::Bot, "smalltalk_greeting".to_owned())]);
    assert_eq!(chat.state.owner, Owner::Bot);

    let mut chat = Chat::held_by_ann();
    chat.act(AgentAction::Close { agent: ann().id });
    let out = chat.choose(20, HANDOFF_VALUE);
    assert_requested(&chat, &out, reasons::VISITOR_ASKED);
}

#[test]
fn the_fallback_count_starts_again_after_people_had_the_chat() {
    let mut chat = Chat::keyed();
    chat.nothing_found(2);
    assert_eq!(chat.state.fallbacks_in_row, 1);
    chat.choose(4, HANDOFF_VALUE);
    chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() });
    chat.act(AgentAction::HandBack { agent: ann().id });
    let out = chat.nothing_found(6);
    assert!(handoff_reasons(&out).is_empty(), "one fallback since the hand-back: {out:?}");
}

// ---- people own the chat: the bot is silent

#[test]
fn while_people_own_the_chat_the_bot_says_nothing() {
    let queued_chat = || {
        let mut chat = Chat::keyed();
        chat.text(2, "talk to a person");
        chat.queued_news("sales", 2);
        chat
    };
    for (what, mut chat) in [("queued", queued_chat()), ("held", Chat::held_by_ann())] {
        for text in [
            "how much is delivery to Spain?",
            "hello",
            "thanks",
            "where is my order FH-100234",
            "cancel",
            "jane@example.com",
            "5",
        ] {
            let before = chat.state.clone();
            let out = chat.text(30, text);
            assert!(!bot_answered(&out), "{what}, {text:?}: {out:?}");
            assert!(out.is_empty(), "{what}, {text:?}: {out:?}");
            assert_eq!(chat.state.owner, before.owner);
            assert!(chat.state.flow.is_none());
        }
        // Buttons of the bot mean nothing now.
        for value in [NOT_HELPFUL_VALUE, "flow:person", "csat:5", CHANNEL_EMAIL_VALUE] {
            let before = chat.state.clone();
            let out = chat.choose(32, value);
            assert!(out.is_empty(), "{what}, {value:?}: {out:?}");
            assert_eq!(chat.state, before);
        }
        // Asking again only says the team has it.
        for out in [chat.text(34, "talk to a person"), chat.choose(36, HANDOFF_VALUE)] {
            assert_eq!(said(&out), [(Sender::System, "handoff_already".to_owned())], "{what}");
            assert!(handoff_reasons(&out).is_empty(), "{what}: {out:?}");
        }
        assert!(chat.state.owner.is_people());
    }
}

// ---- the queue's own actions

#[test]
fn leaving_the_queue_gives_the_chat_back_to_the_bot() {
    let mut chat = Chat::keyed();
    chat.text(2, "talk to a person");
    chat.queued_news("sales", 2);
    let out = chat.choose(4, LEAVE_QUEUE_VALUE);
    let [Effect::LeftQueue, Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_left_queue"));
    assert_eq!(chat.state.owner, Owner::Bot);
    assert!(chat.state.offline.is_none());
    let out = chat.text(6, "how much is delivery to Spain?");
    assert!(matches!(&out[..], [Effect::Search { .. }]), "{out:?}");
    // An agent can no longer take it.
    let before = chat.state.clone();
    assert_eq!(
        chat.act(AgentAction::Assign { agent: ann(), team: "sales".into() }),
        [Effect::Refused(Refusal::NotQueued)]
    );
    assert_eq!(chat.state, before);
}

#[test]
fn the_queues_actions_do_nothing_once_an_agent_holds_the_chat() {
    let mut chat = Chat::held_by_ann();
    for value in [LEAVE_QUEUE_VALUE, LEAVE_CONTACT_VALUE] {
        let before = chat.state.clone();
        let out = chat.choose(8, value);
        assert!(out.is_empty(), "{value}: {out:?}");
        assert_eq!(chat.state, before);
    }
}

#[test]
fn leaving_contact_details_instead_of_waiting_starts_the_offline_form() {
    let mut chat = Chat::keyed();
    chat.choose(2, HANDOFF_VALUE);
    chat.queued_news("sales", 5);
    let out = chat.choose(4, LEAVE_CONTACT_VALUE);
    let [Effect::LeftQueue, Effect::Say(ask)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((ask.from, key(&ask.text)), (Sender::Bot, "offline_ask_channel"));
    assert_eq!(quick_values(ask), [CHANNEL_EMAIL_VALUE, CHANNEL_PHONE_VALUE]);
    assert_eq!(chat.state.owner, Owner::Bot);
    assert_eq!(
        chat.state.offline,
        Some(OfflineForm { team: "sales".into(), reason: reasons::VISITOR_ASKED.into(), channel: None, contact: None })
    );
    chat.choose(6, CHANNEL_PHONE_VALUE);
    chat.text(8, "+48 601 234 567");
    let out = chat.text(10, "My parcel never arrived");
    assert!(
        out.contains(&Effect::FileOfflineRequest {
            team: "sales".into(),
            reason: reasons::VISITOR_ASKED.into(),
            channel: "phone".into(),
            contact: "+48601234567".into(),
            details: "My parcel never arrived".into(),
            seq: Seq(10),
        }),
        "{out:?}"
    );
}

#[test]
fn a_disconnected_agent_puts_the_chat_back_in_the_same_queue() {
    let mut chat = Chat::held_by_ann();
    let out = chat.act(AgentAction::Requeue { agent: ann().id });
    let [Effect::Say(line)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_requeued"));
    assert!(line.text.contains("Ann Smith"), "{}", line.text);
    assert_eq!(chat.state.owner, queued(reasons::VISITOR_ASKED, "sales"));
    // Someone else takes it.
    let out = chat.act(AgentAction::Assign { agent: bob(), team: "sales".into() });
    assert!(lines(&out)[0].text.contains("Bob Jones"));
    assert_eq!(chat.state.owner.agent(), Some(&bob()));
}

// ---- nobody available: the offline contact form

fn offline_chat(back_at: Option<&str>, time_zone: &str) -> (Chat, Vec<Effect>) {
    let mut chat = Chat::keyed();
    chat.text(2, "talk to a person");
    let back_at = back_at.map(|t| DateTime::parse_from_rfc3339(t).expect("time").with_timezone(&Utc));
    let out =
        chat.step(Event::Placed(DeskNews::Offline { team: "sales".into(), back_at, time_zone: time_zone.into() }));
    (chat, out)
}

#[test]
fn nobody_available_gives_the_chat_back_and_asks_how_to_reach_the_visitor() {
    let (chat, out) = offline_chat(None, "UTC");
    let [Effect::Say(line), Effect::Say(ask)] = &out[..] else { panic!("{out:?}") };
    assert_eq!((line.from, key(&line.text)), (Sender::System, "handoff_offline"));
    assert_eq!((ask.from, key(&ask.text)), (Sender::Bot, "offline_ask_channel"));
    assert_eq!(quick_values(ask), [CHANNEL_EMAIL_VALUE, CHANNEL_PHONE_VALUE]);
    assert_eq!(chat.state.owner, Owner::Bot);
    assert_eq!(
        chat.state.offline,
        Some(OfflineForm { team: "sales".into(), reason: reasons::VISITOR_ASKED.into(), channel: None, contact: None })
    );

    // When someone is back, in the desk's time zone.
    let (_, out) = offline_chat(Some("2026-11-23T17:00:00Z"), "Europe/Warsaw");
    let line = lines(&out)[0];
    assert_eq!(key(&line.text), "handoff_offline_back_at");
    assert!(line.text.contains("2026-11-23 18:00 (Europe/Warsaw)"), "{}", line.text);
    // An unknown time zone does not make up a time.
    let (_, out) = offline_chat(Some("2026-11-23T17:00:00Z"), "Mars/Olympus");
    assert_eq!(key(&lines(&out)[0].text), "handoff_offline");
}

#[test]
fn the_offline_form_by_email_button() {
    let (mut chat, _) = offline_chat(None, "UTC");
    let out = chat.choose(4, CHANNEL_EMAIL_VALUE);
    assert_eq!(said(&out), [(Sender::Bot, "offline_ask_email".to_owned())]);
    for (seq, bad) in
        [(6, "jane at example.com"), (8, "jane@@example.com"), (10, "+44 20 7946 0000"), (12, "jane@localhost")]
    {
        let before = chat.state.clone();
        let out = chat.text(seq, bad);
        assert_eq!(said(&out), [(Sender::Bot, "offline_bad_email".to_owned())], "{bad}");
        assert_eq!(out.len(), 1, "nothing filed: {out:?}");
        assert_eq!(chat.state.offline, before.offline, "{bad}");
    }
    let out = chat.text(14, "  jane@example.com ");
    assert_eq!(said(&out), [(Sender::Bot, "offline_ask_details".to_owned())]);
    assert_eq!(chat.state.offline.as_ref().and_then(|f| f.contact.as_deref()), Some("jane@example.com"));
    let out = chat.text(16, "  I need to change my delivery address  ");
    let [Effect::FileOfflineRequest { team, reason, channel, contact, details, seq }, Effect::Say(thanks)] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!((team.as_str(), reason.as_str()), ("sales", reasons::VISITOR_ASKED));
    assert_eq!((channel.as_str(), contact.as_str()), ("email", "jane@example.com"));
    assert_eq!((details.as_str(), *seq), ("I need to change my delivery address", Seq(16)));
    assert_eq!((thanks.from, key(&thanks.text)), (Sender::Bot, "offline_filed_email"));
    assert!(thanks.text.contains("jane@example.com"), "{}", thanks.text);
    assert!(chat.state.offline.is_none());
    assert_eq!(chat.state.owner, Owner::Bot);
    // The bot answers as usual afterwards.
    let out = chat.text(18, "how much is delivery to Spain?");
    assert!(matches!(&out[..], [Effect::Search { .. }]), "{out:?}");
}

#[test]
fn the_offline_form_by_phone_button() {
    let (mut chat, _) = offline_chat(None, "UTC");
    let out = chat.choose(4, CHANNEL_PHONE_VALUE);
    assert_eq!(said(&out), [(Sender::Bot, "offline_ask_phone".to_owned())]);
    for (seq, bad) in [(6, "12 34"), (8, "jane@example.com"), (10, "call me maybe"), (12, "1234567890123456")] {
        let out = chat.text(seq, bad);
        assert_eq!(said(&out), [(Sender::Bot, "offline_bad_phone".to_owned())], "{bad}");
        assert_eq!(out.len(), 1, "nothing filed: {out:?}");
        assert_eq!(chat.state.offline.as_ref().and_then(|f| f.contact.clone()), None);
    }
    let out = chat.text(14, "+44 (20) 7946-0000");
    assert_eq!(said(&out), [(Sender::Bot, "offline_ask_details".to_owned())]);
    let out = chat.text(16, "Refund for order FH-100234");
    let Some(Effect::FileOfflineRequest { channel, contact, details, .. }) = out.first() else { panic!("{out:?}") };
    assert_eq!(
        (channel.as_str(), contact.as_str(), details.as_str()),
        ("phone", "+442079460000", "Refund for order FH-100234")
    );
    assert_eq!(key(&lines(&out)[0].text), "offline_filed_phone");
    assert!(lines(&out)[0].text.contains("+442079460000"));
}

#[test]
fn the_offline_form_takes_an_address_or_number_typed_straight_away() {
    for (typed, channel, contact) in
        [("jane@example.com", "email", "jane@example.com"), ("020 7946 0000", "phone", "02079460000")]
    {
        let (mut chat, _) = offline_chat(None, "UTC");
        let out = chat.text(4, typed);
        assert_eq!(said(&out), [(Sender::Bot, "offline_ask_details".to_owned())], "{typed}");
        let out = chat.text(6, "details");
        let Some(Effect::FileOfflineRequest { channel: c, contact: k, .. }) = out.first() else { panic!("{out:?}") };
        assert_eq!((c.as_str(), k.as_str()), (channel, contact));
    }
}

#[test]
fn something_else_while_the_channel_is_asked_asks_again() {
    let (mut chat, _) = offline_chat(None, "UTC");
    let out = chat.text(4, "what are my options?");
    let [Effect::Say(ask)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(key(&ask.text), "offline_ask_channel");
    assert_eq!(quick_values(ask), [CHANNEL_EMAIL_VALUE, CHANNEL_PHONE_VALUE]);
    assert_eq!(chat.state.offline.as_ref().and_then(|f| f.channel.clone()), None);
}

#[test]
fn cancelling_the_offline_form_files_nothing() {
    // At every stage of the form.
    for answered in [&[][..], &["jane@example.com"][..]] {
        let (mut chat, _) = offline_chat(None, "UTC");
        for (i, text) in answered.iter().enumerate() {
            chat.text(4 + 2 * i64::try_from(i).unwrap_or_default(), text);
        }
        let out = chat.text(20, "cancel");
        assert_eq!(said(&out), [(Sender::Bot, "offline_cancelled".to_owned())], "{out:?}");
        assert!(chat.state.offline.is_none());
        let out = chat.text(22, "jane@example.com");
        assert!(!out.iter().any(|e| matches!(e, Effect::FileOfflineRequest { .. })), "{out:?}");
        assert!(matches!(&out[..], [Effect::Search { .. }]), "the bot searches again: {out:?}");
    }
    let (mut chat, _) = offline_chat(None, "UTC");
    chat.choose(4, CHANNEL_PHONE_VALUE);
    let out = chat.text(6, "never mind");
    assert_eq!(said(&out), [(Sender::Bot, "offline_cancelled".to_owned())]);
    assert!(chat.state.offline.is_none());
}

// ---- refused and ignored

/// A chat in each state a person can find it in.
fn chats_by_owner() -> Vec<(&'static str, Chat)> {
    let bot = Chat::keyed();
    let mut queued = Chat::keyed();
    queued.text(2, "talk to a person");
    queued.queued_news("sales", 1);
    let mut closed = Chat::held_by_ann();
    closed.act(AgentAction::Close { agent: ann().id });
    vec![("bot", bot), ("queued", queued), ("closed", closed)]
}

fn holder_actions(agent: &str) -> Vec<AgentAction> {
    let agent = agent.to_owned();
    vec![
        AgentAction::Message { agent: agent.clone(), text: "hello".into() },
        AgentAction::Note { agent: agent.clone(), text: "note".into() },
        AgentAction::Close { agent: agent.clone() },
        AgentAction::HandBack { agent: agent.clone() },
        AgentAction::TransferToAgent {
            agent: agent.clone(),
            to: AgentRef { id: "a-cat".into(), name: "Cat".into() },
            team: "sales".into(),
        },
        AgentAction::TransferToTeam { agent: agent.clone(), team: "returns".into(), team_name: "Returns".into() },
        AgentAction::Requeue { agent },
    ]
}

#[test]
fn a_person_cannot_act_on_a_chat_they_do_not_hold() {
    let mut cases = chats_by_owner();
    cases.push(("held by Ann, Bob acts", Chat::held_by_ann()));
    for (what, mut chat) in cases {
        let agent = if what == "bot" || what == "queued" || what == "closed" { ann().id } else { bob().id };
        for action in holder_actions(&agent) {
            let before = chat.state.clone();
            let out = chat.act(action.clone());
            assert_eq!(out, [Effect::Refused(Refusal::NotHeld)], "{what}: {action:?}");
            assert_eq!(chat.state, before, "{what}: {action:?} changed the state");
        }
    }
}

#[test]
fn only_a_queued_chat_can_be_assigned() {
    let mut cases = chats_by_owner();
    cases.retain(|(what, _)| *what != "queued");
    cases.push(("held", Chat::held_by_ann()));
    for (what, mut chat) in cases {
        let before = chat.state.clone();
        let out = chat.act(AgentAction::Assign { agent: bob(), team: "sales".into() });
        assert_eq!(out, [Effect::Refused(Refusal::NotQueued)], "{what}");
        assert_eq!(chat.state, before, "{what}");
    }
}

#[test]
fn a_chat_cannot_be_transferred_to_its_holder() {
    let mut chat = Chat::held_by_ann();
    let before = chat.state.clone();
    let me = AgentRef { id: ann().id, name: "Ann (other name)".into() };
    let out = chat.act(AgentAction::TransferToAgent { agent: ann().id, to: me, team: "billing".into() });
    assert_eq!(out, [Effect::Refused(Refusal::SameAgent)]);
    assert_eq!(chat.state, before);
}

#[test]
fn desk_news_for_a_chat_that_is_not_queued_changes_nothing() {
    let mut cases = chats_by_owner();
    cases.retain(|(what, _)| *what != "queued");
    cases.push(("held", Chat::held_by_ann()));
    for (what, mut chat) in cases {
        for news in [
            DeskNews::Queued { team: "x".into(), team_name: "X".into(), position: 1, eta_minutes: 1 },
            DeskNews::Offline { team: "x".into(), back_at: None, time_zone: "UTC".into() },
        ] {
            let before = chat.state.clone();
            let out = chat.step(Event::Placed(news.clone()));
            assert!(out.is_empty(), "{what}, {news:?}: {out:?}");
            assert_eq!(chat.state, before, "{what}, {news:?}");
        }
    }
}

#[test]
fn the_driver_keeps_nothing_of_a_refused_action() {
    struct NoPorts;
    impl driver::Ports for NoPorts {
        type Error = ();
        fn search(&mut self, _: &str, _: &str, _: Option<&str>) -> Result<Vec<KbHit>, ()> {
            Err(())
        }
        fn lookup_order(&mut self, _: &str, _: &str) -> Option<LookupOutcome> {
            None
        }
    }
    let chat = Chat::held_by_ann();
    let event = Event::Agent(AgentAction::Close { agent: bob().id });
    let step = driver::drive(&chat.state, event, &chat.script, &chat.policy, chat.now, &mut NoPorts);
    let step = step.expect("no port used");
    assert_eq!(step.refused, Some(Refusal::NotHeld));
    assert!(step.records.is_empty());
    assert_eq!(step.state, chat.state);
}

// ---- contact validation

#[test]
fn email_addresses() {
    assert_eq!(valid_email("jane@example.com").as_deref(), Some("jane@example.com"));
    assert_eq!(valid_email("  jane.doe+tag@mail.example.co.uk \n").as_deref(), Some("jane.doe+tag@mail.example.co.uk"));
    for bad in [
        "",
        "jane",
        "jane@",
        "@example.com",
        "jane@example",
        "jane@.example.com",
        "jane@example.com.",
        "jane doe@example.com",
        "jane@exa mple.com",
        "jane@@example.com",
        "jane@ex@ample.com",
    ] {
        assert_eq!(valid_email(bad), None, "{bad:?}");
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert_eq!(valid_email(&long_local), None);
    assert!(valid_email(&format!("{}@example.com", "a".repeat(64))).is_some());
}

#[test]
fn phone_numbers() {
    assert_eq!(valid_phone("+44 20 7946 0000").as_deref(), Some("+442079460000"));
    assert_eq!(valid_phone(" 020-7946-0000 ").as_deref(), Some("02079460000"));
    assert_eq!(valid_phone("(601) 234.567").as_deref(), Some("601234567"));
    assert_eq!(valid_phone("1234567").as_deref(), Some("1234567"), "7 digits is enough");
    assert_eq!(valid_phone("123456789012345").as_deref(), Some("123456789012345"), "15 digits at most");
    for bad in [
        "",
        "123456",
        "1234567890123456",
        "44+20 7946 0000",
        "++44 20 7946 0000",
        "+44 20 7946 000x",
        "phone: 020 7946 0000",
        "+",
        "jane@example.com",
    ] {
        assert_eq!(valid_phone(bad), None, "{bad:?}");
    }
}

// ---- news while people own the chat

fn delayed_order_fields() -> BTreeMap<String, String> {
    let fields = [
        ("id", "FH-100234"),
        ("status", "delayed"),
        ("carrier", "DPD"),
        ("expected_delivery", "2026-12-02"),
        ("delay_reason", "A storm closed the ferry crossing."),
    ];
    fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn a_delay_notice_to_the_bot_runs_its_flow() {
    let mut chat = Chat::keyed();
    let out = chat.step(Event::Notice { flow: crate::flows::DELAY_FLOW.into(), order: delayed_order_fields() });
    let Some(Effect::Say(question)) = out.last() else { panic!("{out:?}") };
    assert_eq!(quick_values(question), ["flow:wait", "flow:cancel", "flow:person"]);
    assert!(chat.state.flow.is_some());
    let out = chat.choose(4, "flow:person");
    assert_requested(&chat, &out, "delayed order FH-100234 (notice): customer asked for a person");
}

#[test]
fn a_delay_notice_while_people_own_the_chat_tells_the_news_but_asks_nothing() {
    let queued_chat = || {
        let mut chat = Chat::keyed();
        chat.text(2, "talk to a person");
        chat.queued_news("sales", 2);
        chat
    };
    for (what, mut chat) in [("queued", queued_chat()), ("held", Chat::held_by_ann())] {
        let before = chat.state.clone();
        let out = chat.step(Event::Notice { flow: crate::flows::DELAY_FLOW.into(), order: delayed_order_fields() });
        assert!(!lines(&out).is_empty(), "{what}: the news is told: {out:?}");
        for effect in &out {
            let Effect::Say(line) = effect else { panic!("{what}: only news: {out:?}") };
            assert!(line.extras.quick_replies.is_empty(), "{what}: no bot buttons under a person: {line:?}");
            assert_eq!(line.reply_to, None);
        }
        assert_eq!(chat.state, before, "{what}: no flow runs, the offered buttons stay");
    }
}
