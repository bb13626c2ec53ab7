//! Failure counters for login and signup throttling.
//!
//! Fixed windows: the first failure opens a window of `window`; once `limit` failures are
//! counted in it, the key is refused until the window ends (that remainder is `Retry-After`).
//! An attacker who stops is forgotten one window later, and the owner of an account is never
//! locked out for longer than that: see `auth::login` for how the keys combine.
//!
//! The table is in memory, behind a std `Mutex` held only for a hash-map operation (never across
//! an `.await`). It is bounded: at `MAX_KEYS` expired entries are swept, and if every entry is
//! still live the new key is not tracked (logged), so a flood of distinct keys cannot grow memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Failed logins from one client network (IPv6 counted per /64).
    LoginIp(IpAddr),
    /// Failed logins to one account from one client network.
    LoginAccountIp(String, IpAddr),
    /// Failed logins to one account from anywhere.
    LoginAccount(String),
    /// Accounts created from one client network.
    SignupIp(IpAddr),
    /// Messages posted over HTTP by one user.
    HttpPost(app::domain::UserId),
    /// Rooms created by one user.
    RoomCreate(app::domain::UserId),
}

impl Key {
    pub fn login_ip(ip: IpAddr) -> Self {
        Key::LoginIp(network_of(ip))
    }
    pub fn login_account_ip(username: &str, ip: IpAddr) -> Self {
        Key::LoginAccountIp(username.to_owned(), network_of(ip))
    }
    pub fn login_account(username: &str) -> Self {
        Key::LoginAccount(username.to_owned())
    }
    pub fn signup_ip(ip: IpAddr) -> Self {
        Key::SignupIp(network_of(ip))
    }
}

/// One IPv6 host usually owns a whole /64; counting per address would let it rotate freely.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    ends: Instant,
}

#[derive(Default)]
pub struct Throttle {
    windows: Mutex<HashMap<Key, Window>>,
}

impl Throttle {
    /// `Some(remaining)` when `key` has used up `limit` in its current window.
    pub fn blocked(&self, key: &Key, limit: u32) -> Option<Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.get(key)?;
        (w.ends > now && w.count >= limit).then(|| w.ends - now)
    }

    /// Counts one event for `key`, opening a window of `window` if none is open.
    pub fn record(&self, key: Key, window: Duration) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_KEYS && !windows.contains_key(&key) {
            windows.retain(|_, w| w.ends > now);
            if windows.len() >= MAX_KEYS {
                tracing::warn!("throttle table full; not tracking a new key");
                return;
            }
        }
        let w = windows.entry(key).or_insert(Window {
            count: 0,
            ends: now + window,
        });
        if w.ends <= now {
            *w = Window {
                count: 0,
                ends: now + window,
            };
        }
        w.count = w.count.saturating_add(1);
    }

    /// A plain rate limit: refuses with the time left when `key` used up `limit` in its
    /// window, else counts this event.
    pub fn hit(&self, key: Key, limit: u32, window: Duration) -> Result<(), Duration> {
        if let Some(retry_after) = self.blocked(&key, limit) {
            return Err(retry_after);
        }
        self.record(key, window);
        Ok(())
    }

    pub fn clear(&self, key: &Key) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_key_is_blocked_once_it_reaches_the_limit_within_the_window() {
        let t = Throttle::default();
        let k = Key::login_account("alice");
        for _ in 0..2 {
            assert!(t.blocked(&k, 3).is_none());
            t.record(k.clone(), MINUTE);
        }
        assert!(t.blocked(&k, 3).is_none());
        t.record(k.clone(), MINUTE);
        let left = t.blocked(&k, 3).unwrap();
        assert!(left <= MINUTE && left > Duration::ZERO);
        t.clear(&k);
        assert!(t.blocked(&k, 3).is_none());
    }

    #[test]
    fn a_window_that_ended_starts_over() {
        let t = Throttle::default();
        let k = Key::signup_ip("10.0.0.1".parse().unwrap());
        t.record(k.clone(), Duration::ZERO);
        t.record(k.clone(), Duration::ZERO);
        assert!(t.blocked(&k, 1).is_none());
    }

    #[test]
    fn ipv6_addresses_count_per_slash_64() {
        let a = Key::login_ip("2001:db8:1:2::1".parse().unwrap());
        let b = Key::login_ip("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = Key::login_ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
