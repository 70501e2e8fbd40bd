//! Growing delays after failed sign-ins, counted per client address and per
//! account name (whether or not such an account exists, so that the delays
//! never tell). Three failures are free; the fourth makes the next sign-in
//! wait [`FIRST_DELAY`], and each further one doubles it, up to
//! [`MAX_DELAY`]. A success clears the account's count and the address's.
//!
//! Counts are kept in memory, per necmail process, in a table of at most
//! [`CAPACITY`] names; a name whose delay has long passed is forgotten. When
//! the table is full of current names, a newcomer is made to wait the
//! longest delay: a flood of that many names is an attack.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures that cost nothing.
pub const FREE_FAILURES: u32 = 3;
pub const FIRST_DELAY: Duration = Duration::from_secs(15);
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// How many names the table holds at most.
pub const CAPACITY: usize = 50_000;
/// A name with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    /// The name as typed, trimmed, in lower case, and cut at the longest
    /// address there can be.
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next attempt may be made.
    fn open_at(&self) -> Instant {
        match self.count.checked_sub(FREE_FAILURES + 1) {
            None => self.last,
            Some(doublings) => {
                let delay = FIRST_DELAY.saturating_mul(1u32 << doublings.min(16));
                self.last + delay.min(MAX_DELAY)
            }
        }
    }
}

/// The failures of sign-in, per address and per account name.
pub struct Throttle {
    table: Mutex<HashMap<Key, Failures>>,
    capacity: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            table: Mutex::new(HashMap::new()),
            capacity: CAPACITY,
        }
    }
}

fn account_key(name: &str) -> Key {
    Key::Account(name.trim().to_lowercase().chars().take(254).collect())
}

fn ip_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            Key::Ip(IpAddr::from(octets))
        }
        v4 => Key::Ip(v4),
    }
}

impl Throttle {
    /// How long a sign-in from `ip` as `name` must still wait; `None` when
    /// it may go ahead.
    pub fn wait(&self, ip: IpAddr, name: &str) -> Option<Duration> {
        self.wait_at(ip, name, Instant::now())
    }

    fn wait_at(&self, ip: IpAddr, name: &str, now: Instant) -> Option<Duration> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let full = table.len() >= self.capacity;
        [ip_key(ip), account_key(name)]
            .iter()
            .map(|key| match table.get(key) {
                Some(f) => f.open_at().saturating_duration_since(now),
                None if full => MAX_DELAY,
                None => Duration::ZERO,
            })
            .max()
            .filter(|wait| !wait.is_zero())
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, ip: IpAddr, name: &str) {
        self.failed_at(ip, name, Instant::now());
    }

    fn failed_at(&self, ip: IpAddr, name: &str, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= self.capacity {
            table.retain(|_, f| now.saturating_duration_since(f.open_at()) < FORGET_AFTER);
        }
        for key in [ip_key(ip), account_key(name)] {
            if table.len() >= self.capacity && !table.contains_key(&key) {
                continue;
            }
            let f = table.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// Clears the counts after a sign-in that succeeded.
    pub fn succeeded(&self, ip: IpAddr, name: &str) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.remove(&ip_key(ip));
        table.remove(&account_key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn three_failures_are_free_then_the_delay_doubles_up_to_fifteen_minutes() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..3 {
            t.failed_at(IP, "ann@example.org", start);
            assert_eq!(t.wait_at(IP, "ann@example.org", start), None);
        }
        let mut now = start;
        let mut expected = FIRST_DELAY;
        for _ in 0..10 {
            t.failed_at(IP, "ann@example.org", now);
            assert_eq!(t.wait_at(IP, "ann@example.org", now), Some(expected));
            now += expected;
            assert_eq!(t.wait_at(IP, "ann@example.org", now), None);
            expected = (expected * 2).min(MAX_DELAY);
        }
        assert_eq!(expected, MAX_DELAY);
    }

    #[test]
    fn the_account_is_slowed_from_every_address_and_the_address_for_every_account() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..4 {
            t.failed_at(IP, "Ann@Example.org", now);
        }
        assert!(t.wait_at(OTHER, "ann@example.org", now).is_some());
        assert!(t.wait_at(IP, "bob@example.org", now).is_some());
        assert_eq!(t.wait_at(OTHER, "bob@example.org", now), None);
        t.succeeded(IP, "ann@example.org");
        assert_eq!(t.wait_at(IP, "ann@example.org", now), None);
    }

    #[test]
    fn the_table_never_grows_past_its_capacity() {
        let t = Throttle {
            table: Mutex::default(),
            capacity: 10,
        };
        let now = Instant::now();
        for n in 0..100 {
            t.failed_at(IP, &format!("user{n}@example.org"), now);
        }
        assert!(t.table.lock().unwrap().len() <= 10);
        assert_eq!(
            t.wait_at(OTHER, "newcomer@example.org", now),
            Some(MAX_DELAY),
            "a newcomer to a full table waits"
        );
    }
}
