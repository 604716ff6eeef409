//! Order lookups for the tracking flow: the order source, the ownership proof, and a
//! limit on wrong proofs per order so order numbers cannot be probed from many chats.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Order, OrderSource, normalize_postcode};
use crate::conversations::OrderLookup;
use crate::engine::LookupOutcome;

/// Wrong proofs for one order, across all conversations, before it is locked.
pub const MAX_WRONG_PROOFS_PER_ORDER: usize = 5;
/// How long wrong proofs count.
pub const WRONG_PROOF_WINDOW: Duration = Duration::from_secs(60 * 60);

/// [`OrderLookup`] over an [`OrderSource`].
pub struct ProofCheckedLookup {
    source: Arc<dyn OrderSource>,
    wrong_proofs: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl ProofCheckedLookup {
    /// Looks orders up in `source`.
    #[must_use]
    pub fn new(source: Arc<dyn OrderSource>) -> Self {
        Self { source, wrong_proofs: Mutex::new(HashMap::new()) }
    }

    fn key(order_id: &str) -> String {
        normalize_postcode(order_id)
    }

    /// True when the order has had too many wrong proofs recently.
    fn locked(&self, order_id: &str, now: Instant) -> bool {
        let mut map = self.wrong_proofs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(times) = map.get_mut(&Self::key(order_id)) else { return false };
        while times.front().is_some_and(|t| now.duration_since(*t) > WRONG_PROOF_WINDOW) {
            times.pop_front();
        }
        times.len() >= MAX_WRONG_PROOFS_PER_ORDER
    }

    fn wrong_proof(&self, order_id: &str, now: Instant) {
        let mut map = self.wrong_proofs.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(Self::key(order_id)).or_default().push_back(now);
    }
}

/// The order's fields as flow slots (without the `order.` prefix); absent ones are empty.
#[must_use]
pub fn order_slots(order: &Order) -> BTreeMap<String, String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
    let items = order.items.iter().map(|i| format!("{} × {}", i.quantity, i.name)).collect::<Vec<_>>().join(", ");
    [
        ("id", order.id.clone()),
        ("status", order.status.as_str().to_owned()),
        ("carrier", opt(&order.carrier)),
        ("tracking_number", opt(&order.tracking_number)),
        ("tracking_url", opt(&order.tracking_url)),
        ("expected_delivery", date(order.expected_delivery)),
        ("delivered_at", date(order.delivered_at)),
        ("delay_reason", sentence(&opt(&order.delay_reason))),
        ("items", items),
        ("customer_name", opt(&order.customer_name)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Ends a reason with a full stop so it reads as a sentence inside a message.
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() || text.ends_with(['.', '!', '?', '。', '！', '？']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

#[async_trait]
impl OrderLookup for ProofCheckedLookup {
    async fn lookup(&self, order_id: &str, proof: &str) -> LookupOutcome {
        let now = Instant::now();
        if self.locked(order_id, now) {
            return LookupOutcome::Locked;
        }
        match self.source.get(order_id).await {
            Ok(Some(order)) if order.matches_proof(proof) => LookupOutcome::Found(order_slots(&order)),
            Ok(_) => {
                // Unknown orders count too: probing needs many order numbers.
                self.wrong_proof(order_id, now);
                LookupOutcome::NotFound
            }
            Err(e) => {
                tracing::warn!(error = %e, "order lookup failed");
                LookupOutcome::Unavailable
            }
        }
    }
}
