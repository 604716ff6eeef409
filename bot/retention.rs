//! The retention policy: conversations nobody has written in for `retention.conversation_days`
//! are deleted with everything attached to them (messages, unanswered questions, ratings,
//! order links and notices). A background task sweeps every hour; managers can run a
//! sweep at once through the API.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::RetentionPolicy;
use crate::conversations::Hub;
use crate::store::{Store, StoreError};

/// Conversations deleted per transaction, so a large sweep never holds the database long.
const BATCH: u32 = 500;
/// Time between sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);
/// The first sweep waits a little, so a start is not slowed by it.
const FIRST_SWEEP_AFTER: Duration = Duration::from_secs(60);

/// Applies the retention policy.
#[derive(Clone)]
pub struct Retention {
    /// Where conversations are.
    pub store: Arc<dyn Store>,
    /// Conversations with a visitor online are never deleted under them.
    pub hub: Hub,
    /// How long to keep conversations.
    pub policy: RetentionPolicy,
}

impl Retention {
    /// Deletes what the policy says is too old at `now`; returns how many conversations.
    ///
    /// # Errors
    /// When the store fails (what was deleted before stays deleted).
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        if self.policy.conversation_days == 0 {
            return Ok(0);
        }
        let before = now - chrono::Duration::days(i64::from(self.policy.conversation_days));
        let mut deleted = 0;
        loop {
            let online = self.hub.online_ids();
            let ids = self.store.delete_idle_conversations(before, &online, BATCH).await?;
            for id in &ids {
                self.hub.forget(*id).await;
            }
            deleted += ids.len() as u64;
            if ids.len() < BATCH as usize {
                break;
            }
        }
        if deleted > 0 {
            info!(deleted, days = self.policy.conversation_days, "retention: deleted idle conversations");
        }
        Ok(deleted)
    }

    /// Sweeps every hour until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.policy.conversation_days == 0 {
            info!("retention: conversations are kept forever (retention.conversation_days = 0)");
            return;
        }
        let mut next = tokio::time::Instant::now() + FIRST_SWEEP_AFTER;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next) => {}
            }
            if let Err(e) = self.sweep(Utc::now()).await {
                error!(error = %e, "retention sweep failed");
            }
            next = tokio::time::Instant::now() + SWEEP_EVERY;
        }
    }
}
