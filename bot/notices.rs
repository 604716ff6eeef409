//! Proactive notices: when the shop reports that an order is delayed, tell the customer
//! before they ask.
//!
//! Order events are recorded by the API; this dispatcher processes them in order. A delay
//! runs the `delay_notice` flow in every conversation where the customer proved the order
//! is theirs: an open chat gets it at once, a closed one finds it at the top of the next
//! visit (it is stored in the conversation). When nobody is online, a webhook lets the
//! shop e-mail the customer. Each event reaches each conversation once: a notice is
//! claimed before and marked after delivery, and the event is marked processed last, so a
//! restart only re-delivers what never arrived.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike as _, Utc};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::conversations::Hub;
use crate::orders::events::OrderEvent;
use crate::orders::lookup::order_slots;
use crate::orders::{EmbeddedOrders, OrderSource, OrderStatus};
use crate::store::Store;

pub use crate::flows::{DELAY_FLOW, PROGRESS_FLOW};

/// Optional daily progress updates for orders still on their way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyUpdates {
    /// Hour of the day (UTC) from which the day's updates go out.
    pub hour_utc: u32,
}
/// How often pending events are looked at even without a wake-up.
const POLL: Duration = Duration::from_secs(2);

/// Why events could not be processed now (they are retried).
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// Our database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The order source could not give the order's details.
    #[error(transparent)]
    Source(#[from] crate::orders::OrderSourceError),
}

/// Where to tell the shop about notices nobody saw in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `POST`ed a JSON body per notice.
    pub url: String,
    /// Optional `Name: value` header (e.g. a bearer token).
    pub auth_header: Option<(String, String)>,
}

/// Processes order events into notices.
pub struct Dispatcher {
    /// Order events and (embedded) orders.
    pub events: EmbeddedOrders,
    /// Current order details.
    pub source: Arc<dyn OrderSource>,
    /// Conversations.
    pub hub: Hub,
    /// Links between orders and conversations, delivery claims.
    pub store: Arc<dyn Store>,
    /// Called when a delayed customer is not online.
    pub webhook: Option<WebhookConfig>,
    /// Poked when an event is recorded, so online visitors hear at once.
    pub wake: Arc<Notify>,
    /// Daily progress updates, when enabled.
    pub daily: Option<DailyUpdates>,
}

impl Dispatcher {
    /// Runs until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok();
        loop {
            if let Err(e) = self.process_pending(http.as_ref()).await {
                warn!(error = %e, "order events not processed yet");
            }
            if let Err(e) = self.send_daily_updates(Utc::now()).await {
                warn!(error = %e, "daily updates not sent yet");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Processes every unprocessed event, oldest first.
    ///
    /// # Errors
    /// When the store fails; the event stays unprocessed and is retried.
    pub async fn process_pending(&self, http: Option<&reqwest::Client>) -> Result<(), NoticeError> {
        for event in self.events.unprocessed_events(100).await? {
            if event.kind == OrderStatus::Delayed {
                self.notify_delay(&event, http).await?;
            }
            self.events.mark_event_processed(event.id, Utc::now()).await?;
        }
        Ok(())
    }

    async fn notify_delay(&self, event: &OrderEvent, http: Option<&reqwest::Client>) -> Result<(), NoticeError> {
        let Some(order) = self.source.get(&event.order_id).await? else {
            warn!(order = %event.order_id, "delay event for an unknown order");
            return Ok(());
        };
        let mut fields = order_slots(&order);
        // The event is the news; the order source may not have caught up with it yet.
        if let Some(reason) = &event.reason {
            fields.insert("delay_reason".into(), full_stop(reason));
        }
        if let Some(date) = event.new_expected_delivery {
            fields.insert("expected_delivery".into(), date.format("%Y-%m-%d").to_string());
        }
        fields.insert("status".into(), OrderStatus::Delayed.as_str().to_owned());
        let mut seen_online = false;
        for conversation in self.store.conversations_for_order(&order.id).await? {
            if !self.store.claim_notice(&event.event_id, conversation, Utc::now()).await? {
                continue; // delivered before a restart
            }
            seen_online |= self.hub.is_online(conversation);
            if self.hub.deliver_notice(conversation, DELAY_FLOW, fields.clone()).await {
                self.store.notice_delivered(&event.event_id, conversation, Utc::now()).await?;
                info!(order = %order.id, %conversation, "delay notice delivered");
            }
        }
        if !seen_online {
            if let (Some(webhook), Some(http)) = (&self.webhook, http) {
                call_webhook(http, webhook, event, &order).await;
            }
        }
        Ok(())
    }
}

impl Dispatcher {
    /// Sends today's progress update for every order still on its way, once per day per
    /// chat linked to it (not on the day the customer tracked it: they just saw it).
    ///
    /// # Errors
    /// When the store fails; unsent updates go out on a later pass.
    pub async fn send_daily_updates(&self, now: DateTime<Utc>) -> Result<usize, NoticeError> {
        let Some(daily) = self.daily else { return Ok(0) };
        if now.hour() < daily.hour_utc {
            return Ok(0);
        }
        let today = now.date_naive();
        let mut sent = 0;
        for (order_id, conversation, linked_at) in self.store.order_links().await? {
            if linked_at.date_naive() >= today {
                continue;
            }
            let Some(order) = self.source.get(&order_id).await? else { continue };
            let on_its_way = matches!(
                order.status,
                OrderStatus::Shipped
                    | OrderStatus::InTransit
                    | OrderStatus::PartiallyShipped
                    | OrderStatus::OutForDelivery
            );
            if !on_its_way {
                continue;
            }
            let key = format!("daily:{}:{today}", order.id);
            if !self.store.claim_notice(&key, conversation, now).await? {
                continue;
            }
            if self.hub.deliver_notice(conversation, PROGRESS_FLOW, order_slots(&order)).await {
                self.store.notice_delivered(&key, conversation, now).await?;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

fn full_stop(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?', '。', '！', '？']) { text.to_owned() } else { format!("{text}.") }
}

/// Tells the shop, with a few retries; failures are logged, never fatal.
async fn call_webhook(
    http: &reqwest::Client,
    webhook: &WebhookConfig,
    event: &OrderEvent,
    order: &crate::orders::Order,
) {
    let body = json!({
        "type": "order.delayed",
        "event_id": event.event_id,
        "order_id": order.id,
        "email": order.email,
        "customer_name": order.customer_name,
        "reason": event.reason.clone().or_else(|| order.delay_reason.clone()),
        "new_expected_delivery": event.new_expected_delivery.or(order.expected_delivery),
        "seen_in_chat": false,
    });
    for attempt in 0..3u32 {
        let mut request = http.post(&webhook.url).json(&body).header("Idempotency-Key", &event.event_id);
        if let Some((name, value)) = &webhook.auth_header {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => warn!(status = %response.status(), attempt, "notice webhook refused"),
            Err(e) => warn!(error = %e, attempt, "notice webhook failed"),
        }
        tokio::time::sleep(Duration::from_millis(300 * 2u64.pow(attempt))).await;
    }
}
