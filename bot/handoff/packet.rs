//! The handoff packet: what an agent needs to take a chat over without asking the visitor
//! again. One JSON object (documented in `docs/protocol.md`), sent with every offer and
//! assignment and available on demand.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::{ConversationState, Owner};
use crate::ids::ConversationId;
use crate::orders::{OrderSource, OrderStatus};
use crate::protocol::{ChatMessage, Sender};
use crate::store::{EarlierConversation, Store, StoreError, format_at};

/// Earlier conversations of the same person listed in a packet.
const EARLIER_LIMIT: u32 = 10;

/// Everything known about a handed-off chat.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffPacket {
    /// The conversation.
    pub conversation: ConversationId,
    /// Why it went to people.
    pub reason: String,
    /// Conversation language (BCP 47).
    pub lang: String,
    /// Queue or holder's team.
    pub team: String,
    /// `bot`, `queued`, `agent` or `closed`.
    pub owner: &'static str,
    /// Agent holding it now.
    pub held_by: Option<String>,
    /// Page the widget was opened on.
    pub page_url: Option<String>,
    /// When the conversation started.
    pub started_at: String,
    /// When it joined the queue.
    pub queued_at: Option<String>,
    /// Seconds since it joined the queue (how long the visitor has waited).
    pub waited_seconds: Option<i64>,
    /// Who the visitor is, as far as we know.
    pub identity: Identity,
    /// Contact details collected.
    pub contact: Contact,
    /// The scripted flow running when the visitor asked for a person.
    pub flow: Option<FlowContext>,
    /// Orders the visitor proved are theirs, with their status now.
    pub orders: Vec<OrderContext>,
    /// Knowledge-base answers shown, and whether the visitor said they did not help.
    pub answers: Vec<AnswerShown>,
    /// Questions the bot could not answer.
    pub unanswered: Vec<String>,
    /// Other conversations of the same person (same verified id, e-mail or order).
    pub earlier_conversations: Vec<EarlierConversation>,
    /// Every message, private notes included.
    pub transcript: Vec<ChatMessage>,
}

/// Identity as the shop told us.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// The shop's visitor id, when the shop signed it (verified).
    pub visitor_id: Option<String>,
    /// True when `visitor_id` came from a signed identity.
    pub verified: bool,
    /// The customer's name on an order they proved is theirs.
    pub name: Option<String>,
}

/// Contact details.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// E-mail (proved on an order, given by the shop, or typed in the offline form).
    pub email: Option<String>,
    /// Phone typed in the offline form.
    pub phone: Option<String>,
}

/// A flow with its slots (order number, its status and delay as the bot told them).
#[derive(Debug, Clone, Serialize)]
pub struct FlowContext {
    /// Flow id.
    pub id: String,
    /// Step it was at.
    pub step: String,
    /// Slot values.
    pub slots: BTreeMap<String, String>,
}

/// An order and its status now.
#[derive(Debug, Clone, Serialize)]
pub struct OrderContext {
    /// Order number.
    pub id: String,
    /// Status now (`None` when the order source could not be asked).
    pub status: Option<OrderStatus>,
    /// Expected delivery day.
    pub expected_delivery: Option<String>,
    /// Why it is late.
    pub delay_reason: Option<String>,
    /// Carrier.
    pub carrier: Option<String>,
    /// Where to follow the parcel.
    pub tracking_url: Option<String>,
}

/// One knowledge-base answer the bot gave.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerShown {
    /// The message it was in.
    pub seq: crate::ids::Seq,
    /// `faq` or `article`.
    pub kind: String,
    /// Document id.
    pub id: String,
    /// Title or FAQ question.
    pub title: String,
    /// Where to read it.
    pub url: String,
    /// `false` when the visitor said it did not help; `None` when they did not say.
    pub helpful: Option<bool>,
}

/// Builds the packet from the stored conversation.
///
/// # Errors
/// When the store cannot be read; `Ok(None)` when the conversation does not exist.
pub async fn build(
    store: &Arc<dyn Store>,
    orders: Option<&Arc<dyn OrderSource>>,
    id: ConversationId,
    now: DateTime<Utc>,
) -> Result<Option<HandoffPacket>, StoreError> {
    let Some(record) = store.conversation(id).await? else { return Ok(None) };
    let Some(export) = store.export_conversation(id).await? else { return Ok(None) };
    let state: ConversationState = match record.state_json.as_deref() {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt { table: "conversations", reason: format!("state_json: {e}") })?,
        None => ConversationState::new(record.locale.as_deref()),
    };
    let queued_at = store.queued_at(id).await?;
    let (reason, team, held_by) = match &state.owner {
        Owner::Queued { reason, team } => (reason.clone(), team.clone(), None),
        Owner::Agent { agent, team, reason } => (reason.clone(), team.clone(), Some(agent.id.clone())),
        Owner::Bot | Owner::Closed => (String::new(), String::new(), None),
    };
    let answers = export
        .messages
        .iter()
        .filter(|m| m.from == Sender::Bot)
        .filter_map(|m| {
            let source = m.extras.source.as_ref()?;
            let key = format!("{}:{}", source.kind, source.id);
            Some(AnswerShown {
                seq: m.seq,
                kind: source.kind.clone(),
                id: source.id.clone(),
                title: source.title.clone(),
                url: source.url.clone(),
                helpful: state.unhelpful.contains(&key).then_some(false),
            })
        })
        .collect();
    let mut order_context = Vec::new();
    let mut customer_name = None;
    let mut order_email = None;
    for order_id in &export.orders {
        let order = match orders {
            Some(source) => source.get(order_id).await.ok().flatten(),
            None => None,
        };
        if customer_name.is_none() {
            customer_name = order.as_ref().and_then(|o| o.customer_name.clone());
        }
        if order_email.is_none() {
            order_email = order.as_ref().map(|o| o.email.clone()).filter(|e| !e.is_empty());
        }
        order_context.push(OrderContext {
            id: order_id.clone(),
            status: order.as_ref().map(|o| o.status),
            expected_delivery: order.as_ref().and_then(|o| o.expected_delivery).map(|d| d.to_string()),
            delay_reason: order.as_ref().and_then(|o| o.delay_reason.clone()),
            carrier: order.as_ref().and_then(|o| o.carrier.clone()),
            tracking_url: order.as_ref().and_then(|o| o.tracking_url.clone()),
        });
    }
    let form_contact = |channel: &str| {
        state.offline.as_ref().filter(|f| f.channel.as_deref() == Some(channel)).and_then(|f| f.contact.clone())
    };
    let flow = state.flow.as_ref().or(state.flow_at_handoff.as_ref()).map(|f| FlowContext {
        id: f.flow.clone(),
        step: f.step.clone(),
        slots: f.slots.clone(),
    });
    Ok(Some(HandoffPacket {
        conversation: id,
        reason,
        lang: state.lang.clone(),
        team,
        owner: state.owner.kind(),
        held_by,
        page_url: export.page_url.clone(),
        started_at: export.created_at.clone(),
        queued_at: queued_at.map(format_at),
        waited_seconds: queued_at.map(|t| (now - t).num_seconds().max(0)),
        identity: Identity {
            verified: export.visitor_id.is_some(),
            visitor_id: export.visitor_id.clone(),
            name: customer_name,
        },
        contact: Contact {
            email: export.contact_email.clone().or_else(|| form_contact("email")).or(order_email),
            phone: form_contact("phone"),
        },
        flow,
        orders: order_context,
        answers,
        unanswered: export.unanswered.iter().map(|(_, q)| q.clone()).collect(),
        earlier_conversations: store.earlier_conversations(id, EARLIER_LIMIT).await?,
        transcript: export.messages,
    }))
}
