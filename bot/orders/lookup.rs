//! Order lookups for the tracking flow: the order source, the ownership proof, and limits
//! on wrong proofs so order numbers cannot be probed.
//!
//! Wrong proofs are counted per order (many chats guessing one order's postcode), per
//! proof value (one known e-mail or postcode tried against many order numbers) and per
//! client address (one client trying anything), each over a sliding hour. Past a limit
//! the lookup answers `Locked`, and the flow offers a person who can verify the visitor,
//! so a real customer locked out by strangers is never left with nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Order, OrderSource, normalize_postcode};
use crate::conversations::OrderLookup;
use crate::engine::LookupOutcome;

/// Wrong proofs for one order, across all conversations, before it is locked.
pub const MAX_WRONG_PROOFS_PER_ORDER: usize = 5;
/// Wrong attempts with one proof value (an e-mail or postcode) across orders.
pub const MAX_WRONG_PROOFS_PER_PROOF: usize = 5;
/// Wrong attempts from one client address, whatever the order and proof.
pub const MAX_WRONG_PROOFS_PER_ADDRESS: usize = 10;
/// How long wrong proofs count.
pub const WRONG_PROOF_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Keys tracked per kind before quiet ones are swept (bounded memory under a flood).
const SWEEP_AT: usize = 10_000;

/// Recent wrong attempts per key, over a sliding window.
#[derive(Default)]
struct WrongAttempts {
    by_key: HashMap<String, VecDeque<Instant>>,
}

impl WrongAttempts {
    fn count(&mut self, key: &str, now: Instant) -> usize {
        let Some(times) = self.by_key.get_mut(key) else { return 0 };
        while times.front().is_some_and(|t| now.duration_since(*t) > WRONG_PROOF_WINDOW) {
            times.pop_front();
        }
        times.len()
    }

    fn add(&mut self, key: String, now: Instant) {
        if self.by_key.len() >= SWEEP_AT {
            self.by_key.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) <= WRONG_PROOF_WINDOW));
        }
        self.by_key.entry(key).or_default().push_back(now);
    }
}

#[derive(Default)]
struct Attempts {
    per_order: WrongAttempts,
    per_proof: WrongAttempts,
    per_address: WrongAttempts,
}

/// [`OrderLookup`] over an [`OrderSource`].
pub struct ProofCheckedLookup {
    source: Arc<dyn OrderSource>,
    attempts: Mutex<Attempts>,
}

/// The key of a proof value: e-mails ignore case, postcodes spaces and case.
fn proof_key(proof: &str) -> String {
    let proof = proof.trim();
    if proof.contains('@') { proof.to_lowercase() } else { normalize_postcode(proof) }
}

fn address_key(ip: IpAddr) -> String {
    crate::ids::AddressKey::of(ip).to_string()
}

impl ProofCheckedLookup {
    /// Looks orders up in `source`.
    #[must_use]
    pub fn new(source: Arc<dyn OrderSource>) -> Self {
        Self { source, attempts: Mutex::new(Attempts::default()) }
    }

    /// True when the order, the proof or the client has had too many wrong proofs lately.
    fn locked(&self, order_id: &str, proof: &str, client: Option<IpAddr>, now: Instant) -> bool {
        let mut a = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        a.per_order.count(&normalize_postcode(order_id), now) >= MAX_WRONG_PROOFS_PER_ORDER
            || a.per_proof.count(&proof_key(proof), now) >= MAX_WRONG_PROOFS_PER_PROOF
            || client.is_some_and(|ip| a.per_address.count(&address_key(ip), now) >= MAX_WRONG_PROOFS_PER_ADDRESS)
    }

    fn wrong_proof(&self, order_id: &str, proof: &str, client: Option<IpAddr>, now: Instant) {
        let mut a = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        a.per_order.add(normalize_postcode(order_id), now);
        a.per_proof.add(proof_key(proof), now);
        if let Some(ip) = client {
            a.per_address.add(address_key(ip), now);
        }
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
    async fn lookup(&self, order_id: &str, proof: &str, client: Option<IpAddr>) -> LookupOutcome {
        let now = Instant::now();
        if self.locked(order_id, proof, client, now) {
            return LookupOutcome::Locked;
        }
        match self.source.get(order_id).await {
            Ok(Some(order)) if order.matches_proof(proof) => LookupOutcome::Found(order_slots(&order)),
            Ok(_) => {
                // Unknown orders count too: probing needs many order numbers.
                self.wrong_proof(order_id, proof, client, now);
                LookupOutcome::NotFound
            }
            Err(e) => {
                tracing::warn!(error = %e, "order lookup failed");
                LookupOutcome::Unavailable
            }
        }
    }
}
