//! Login attempts per account and per client address in a sliding window, on the
//! injected clock. An attempt counts as a failure from the moment it starts (so a burst
//! of parallel guesses cannot all slip in before the first one fails) and is taken back
//! only when it succeeds; a success never erases earlier failures.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::AddressKey;

/// How many failed logins are allowed in which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per e-mail address (known or not) in the window.
    pub per_account: u32,
    /// Failures per client address (IPv6: per /64) in the window.
    pub per_address: u32,
    /// The sliding window.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { per_account: 5, per_address: 20, window: Duration::from_secs(15 * 60) }
    }
}

/// Keys tracked per table before expired ones are swept; past it after a sweep, new keys
/// are not tracked (the other table still limits them).
const MAX_KEYS: usize = 100_000;

/// Failure times per key, oldest first.
struct Window<K> {
    failures: HashMap<K, VecDeque<DateTime<Utc>>>,
}

impl<K: Hash + Eq + Clone> Window<K> {
    fn new() -> Self {
        Self { failures: HashMap::new() }
    }

    /// How long until `key` may try again, if it is at `limit` failures now.
    fn blocked(&mut self, key: &K, limit: u32, window: chrono::Duration, now: DateTime<Utc>) -> Option<Duration> {
        let times = self.failures.get_mut(key)?;
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(key);
            return None;
        }
        if times.len() < limit as usize {
            return None;
        }
        let oldest = *times.front()?;
        Some((oldest + window - now).to_std().unwrap_or_default().max(Duration::from_secs(1)))
    }

    fn record(&mut self, key: &K, at: DateTime<Utc>, window: chrono::Duration) {
        if !self.failures.contains_key(key) && self.failures.len() >= MAX_KEYS {
            self.failures.retain(|_, times| times.back().is_some_and(|t| *t + window > at));
            if self.failures.len() >= MAX_KEYS {
                return;
            }
        }
        self.failures.entry(key.clone()).or_default().push_back(at);
    }

    fn take_back(&mut self, key: &K, at: DateTime<Utc>) {
        if let Some(times) = self.failures.get_mut(key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                self.failures.remove(key);
            }
        }
    }
}

struct Tables {
    accounts: Window<String>,
    addresses: Window<AddressKey>,
}

/// The login rate limiter.
pub(super) struct Throttle {
    limits: LoginLimits,
    tables: Mutex<Tables>,
}

/// A login attempt let through, counted as a failure until [`Throttle::succeeded`].
#[derive(Debug)]
pub(super) struct Attempt {
    account: String,
    address: AddressKey,
    at: DateTime<Utc>,
}

impl Throttle {
    pub(super) fn new(limits: LoginLimits) -> Self {
        Self { limits, tables: Mutex::new(Tables { accounts: Window::new(), addresses: Window::new() }) }
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.window).unwrap_or(chrono::Duration::MAX)
    }

    /// Lets an attempt for `account` (a normalised e-mail) from `address` through, or says
    /// how long to wait when either is at its limit.
    pub(super) fn begin(&self, account: &str, address: AddressKey, now: DateTime<Utc>) -> Result<Attempt, Duration> {
        let window = self.window();
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let account = account.to_owned();
        let by_account = tables.accounts.blocked(&account, self.limits.per_account, window, now);
        let by_address = tables.addresses.blocked(&address, self.limits.per_address, window, now);
        if let Some(wait) = by_account.max(by_address) {
            return Err(wait);
        }
        tables.accounts.record(&account, now, window);
        tables.addresses.record(&address, now, window);
        Ok(Attempt { account, address, at: now })
    }

    /// The attempt had the right password: it is not a failure.
    pub(super) fn succeeded(&self, attempt: &Attempt) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.accounts.take_back(&attempt.account, attempt.at);
        tables.addresses.take_back(&attempt.address, attempt.at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    fn addr(last: u8) -> AddressKey {
        AddressKey::of(std::net::IpAddr::from([127, 0, 0, last]))
    }

    fn limits() -> LoginLimits {
        LoginLimits { per_account: 3, per_address: 5, window: Duration::from_secs(600) }
    }

    #[test]
    fn an_account_is_refused_after_its_failures_until_the_oldest_leaves_the_window() {
        let clock = ManualClock::new(Utc::now());
        let throttle = Throttle::new(limits());
        for _ in 0..3 {
            throttle.begin("maria@shop.example", addr(1), clock.now()).expect("allowed");
            clock.advance(chrono::Duration::seconds(60));
        }
        // First failure at t=0, now t=180: blocked until t=600.
        let wait = throttle.begin("maria@shop.example", addr(2), clock.now()).expect_err("blocked from anywhere");
        assert_eq!(wait, Duration::from_secs(420));
        assert!(throttle.begin("other@shop.example", addr(2), clock.now()).is_ok(), "other accounts are not");
        clock.advance(chrono::Duration::seconds(420));
        assert!(throttle.begin("maria@shop.example", addr(3), clock.now()).is_ok(), "the oldest failure expired");
        assert!(throttle.begin("maria@shop.example", addr(3), clock.now()).is_err(), "two still in the window");
    }

    #[test]
    fn an_address_is_refused_across_accounts_and_a_success_does_not_reset_it() {
        let clock = ManualClock::new(Utc::now());
        let throttle = Throttle::new(limits());
        for i in 0..4 {
            throttle.begin(&format!("guess{i}@shop.example"), addr(9), clock.now()).expect("allowed");
        }
        let ok = throttle.begin("maria@shop.example", addr(9), clock.now()).expect("fifth allowed");
        throttle.succeeded(&ok);
        // The success is not a failure, but the four failures stay.
        let fifth = throttle.begin("guess5@shop.example", addr(9), clock.now()).expect("four failures so far");
        drop(fifth);
        let wait = throttle.begin("maria@shop.example", addr(9), clock.now()).expect_err("five failures now");
        assert_eq!(wait, Duration::from_secs(600));
        assert!(throttle.begin("maria@shop.example", addr(10), clock.now()).is_ok(), "another address is not");
        clock.advance(chrono::Duration::seconds(600));
        assert!(throttle.begin("maria@shop.example", addr(9), clock.now()).is_ok(), "window passed");
    }
}
