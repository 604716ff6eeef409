//! Chats that went quiet: every sweep, conversations the bot answered whose last message
//! is older than `[csat] after_inactivity_minutes` (and at most a day older than that) get
//! an [`Event::Inactive`](crate::engine::Event::Inactive) step, which asks for a rating
//! when the policy allows it. Each conversation is stepped once per quiet spell.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::Hub;
use crate::ids::ConversationId;

/// Conversations stepped per sweep.
const BATCH: u32 = 200;
/// How far back a quiet conversation is still worth a rating request.
const LOOK_BACK: chrono::Duration = chrono::Duration::days(1);

/// Sweeps for quiet chats every `every` until `shutdown`; `minutes` = 0 turns it off.
pub async fn run(hub: Hub, minutes: u32, every: Duration, shutdown: CancellationToken) {
    if minutes == 0 {
        return;
    }
    let quiet = chrono::Duration::minutes(i64::from(minutes));
    // The last message time each conversation was stepped for: a gated-out one (small
    // talk only, asked recently) is not stepped again until it has news.
    let mut stepped: HashMap<ConversationId, DateTime<Utc>> = HashMap::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = hub.now();
        let before = now - quiet;
        let found = match hub.store().quiet_conversations(before - LOOK_BACK, before, BATCH).await {
            Ok(found) => found,
            Err(e) => {
                error!(error = %e, "cannot look for quiet conversations");
                continue;
            }
        };
        stepped.retain(|_, last| *last >= before - LOOK_BACK);
        for (id, last) in found {
            if stepped.get(&id) == Some(&last) {
                continue;
            }
            debug!(conversation = %id, "quiet conversation");
            stepped.insert(id, last);
            hub.inactive(id).await;
        }
    }
}
