//! Who may open a connection: caps on open connections per client address and in all,
//! and a rate of new connections per address. Counting is exact (a guard per connection
//! releases its place when the socket closes, also after a WebSocket upgrade).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub use crate::ids::AddressKey;

/// The caps, resolved from configuration and the open-file limit.
#[derive(Debug, Clone)]
pub struct AdmissionLimits {
    /// Open connections per address; 0 = no cap.
    pub per_address: u32,
    /// New connections per second per address; 0 = no limit.
    pub per_second: u32,
    /// Open connections in all before new ones get only `/healthz`.
    pub total: u32,
    /// Connections above `total` kept for `/healthz` and operators; past it, refused.
    pub reserve: u32,
    /// Addresses exempt from the per-address caps (trusted reverse proxies).
    pub exempt: Vec<IpAddr>,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds as many connections as it may.
    AddressFull,
    /// The address opens connections too fast.
    AddressTooFast,
    /// The server holds as many connections as it can.
    ServerFull,
}

/// What a new connection may do.
#[derive(Debug)]
pub enum Verdict {
    /// Everything.
    Serve(ConnectionGuard),
    /// Only `/healthz`, without keep-alive: the server is at its connection cap.
    HealthOnly(ConnectionGuard),
    /// Nothing; close it.
    Refuse(Refusal),
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_address: HashMap<AddressKey, u32>,
}

/// The connection table, shared by the accept loop and every connection's guard.
#[derive(Clone)]
pub struct Admission {
    limits: Arc<AdmissionLimits>,
    counts: Arc<Mutex<Counts>>,
    rate: Option<Arc<DefaultKeyedRateLimiter<AddressKey>>>,
}

impl Admission {
    /// A table enforcing `limits`.
    #[must_use]
    pub fn new(limits: AdmissionLimits) -> Self {
        let rate = NonZeroU32::new(limits.per_second).map(|per_second| {
            let burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
            Arc::new(RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)))
        });
        Self { limits: Arc::new(limits), counts: Arc::new(Mutex::new(Counts::default())), rate }
    }

    /// The caps in force.
    #[must_use]
    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    /// Decides about a connection from `ip` and, unless refused, counts it until the
    /// returned guard is dropped.
    #[must_use]
    pub fn admit(&self, ip: IpAddr) -> Verdict {
        let exempt = self.limits.exempt.contains(&ip);
        let key = AddressKey::of(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.limits.total.saturating_add(self.limits.reserve) {
            return Verdict::Refuse(Refusal::ServerFull);
        }
        if !exempt {
            let held = counts.per_address.get(&key).copied().unwrap_or(0);
            if self.limits.per_address > 0 && held >= self.limits.per_address {
                return Verdict::Refuse(Refusal::AddressFull);
            }
            if self.rate.as_ref().is_some_and(|rate| rate.check_key(&key).is_err()) {
                return Verdict::Refuse(Refusal::AddressTooFast);
            }
        }
        let health_only = counts.total >= self.limits.total;
        counts.total += 1;
        let counted = (!exempt).then(|| {
            *counts.per_address.entry(key).or_insert(0) += 1;
            key
        });
        let guard = ConnectionGuard { counts: Arc::clone(&self.counts), key: counted };
        if health_only { Verdict::HealthOnly(guard) } else { Verdict::Serve(guard) }
    }

    /// Open connections: in all, and from `ip`'s address.
    #[must_use]
    pub fn open_connections(&self, ip: IpAddr) -> (u32, u32) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (counts.total, counts.per_address.get(&AddressKey::of(ip)).copied().unwrap_or(0))
    }

    /// Forgets rate-limit state of addresses that have been quiet (bounded memory).
    pub fn forget_quiet_addresses(&self) {
        if let Some(rate) = &self.rate {
            rate.retain_recent();
            rate.shrink_to_fit();
        }
    }
}

/// Holds one connection's place in the table; released on drop.
#[derive(Debug)]
pub struct ConnectionGuard {
    counts: Arc<Mutex<Counts>>,
    key: Option<AddressKey>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(key) = self.key {
            if let Some(n) = counts.per_address.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_address.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, total: u32) -> AdmissionLimits {
        AdmissionLimits { per_address, per_second: 0, total, reserve: 2, exempt: vec!["10.0.0.9".parse().expect("ip")] }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn per_address_cap_releases_on_drop() {
        let table = Admission::new(limits(2, 100));
        let a = table.admit(ip("10.0.0.1"));
        let b = table.admit(ip("10.0.0.1"));
        assert!(matches!(table.admit(ip("10.0.0.1")), Verdict::Refuse(Refusal::AddressFull)));
        assert!(matches!(table.admit(ip("10.0.0.2")), Verdict::Serve(_)), "another address is served");
        drop(a);
        assert!(matches!(table.admit(ip("10.0.0.1")), Verdict::Serve(_)), "a closed connection frees its place");
        drop(b);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let table = Admission::new(limits(1, 100));
        let _a = table.admit(ip("2001:db8:1:2::1"));
        assert!(matches!(table.admit(ip("2001:db8:1:2:ffff::9")), Verdict::Refuse(Refusal::AddressFull)));
        assert!(matches!(table.admit(ip("2001:db8:1:3::1")), Verdict::Serve(_)));
        let _b = table.admit(ip("192.0.2.7"));
        assert!(matches!(table.admit(ip("::ffff:192.0.2.7")), Verdict::Refuse(Refusal::AddressFull)));
    }

    #[test]
    fn at_the_total_cap_only_health_then_refused() {
        let table = Admission::new(limits(0, 3));
        let held: Vec<_> = (0..3).map(|i| table.admit(ip(&format!("10.1.0.{i}")))).collect();
        assert!(held.iter().all(|v| matches!(v, Verdict::Serve(_))));
        let h1 = table.admit(ip("10.2.0.1"));
        let h2 = table.admit(ip("10.2.0.2"));
        assert!(matches!((&h1, &h2), (Verdict::HealthOnly(_), Verdict::HealthOnly(_))));
        assert!(matches!(table.admit(ip("10.2.0.3")), Verdict::Refuse(Refusal::ServerFull)));
        drop(held);
        assert!(matches!(table.admit(ip("10.2.0.3")), Verdict::Serve(_)));
    }

    #[test]
    fn exempt_proxies_and_rate() {
        let mut l = limits(1, 100);
        l.per_second = 2;
        let table = Admission::new(l);
        let proxied: Vec<_> = (0..10).map(|_| table.admit(ip("10.0.0.9"))).collect();
        assert!(proxied.iter().all(|v| matches!(v, Verdict::Serve(_))), "a trusted proxy is not capped");
        let mut refused = 0;
        for _ in 0..10 {
            match table.admit(ip("10.3.0.1")) {
                Verdict::Refuse(Refusal::AddressTooFast) => refused += 1,
                Verdict::Serve(g) => drop(g),
                other => panic!("unexpected {other:?}"),
            }
        }
        // A burst of twice the rate passes, the rest of the burst is refused.
        assert!((5..=6).contains(&refused), "refused {refused} of 10");
        assert_eq!(table.open_connections(ip("10.3.0.1")), (10, 0));
    }
}
