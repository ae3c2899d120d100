//! Request rate limits and password brute-force protection, held in memory on each node.
//!
//! Rate limits are token buckets keyed by client address or by client id: `rate` requests
//! per second on average with bursts of `burst`. Password lockout counts failed logins per
//! user; after `max_failures` within the window, the user is locked out for a while, and every
//! attempt in that time (right password or not) gets the same answer as a wrong password, so
//! the lockout reveals nothing to the attacker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token-bucket settings; `rate` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: f64,
}

impl RateLimit {
    pub const OFF: RateLimit = RateLimit {
        rate: 0.0,
        burst: 0.0,
    };
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The most keys tracked; past this, idle buckets are dropped (a full bucket is the same as
/// no bucket, so forgetting them changes nothing).
const MAX_KEYS: usize = 100_000;

pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.limit.rate > 0.0
    }

    /// Takes one token for `key`; when none is left, says how long until one is.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let RateLimit { rate, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                let refilled =
                    b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate;
                refilled < burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// Password lockout settings; `max_failures` 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub max_failures: u32,
    pub window: Duration,
    pub lock_for: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            max_failures: 5,
            window: Duration::from_secs(300),
            lock_for: Duration::from_secs(60),
        }
    }
}

struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

pub struct LoginGuard {
    settings: Lockout,
    users: Mutex<HashMap<String, Failures>>,
}

impl LoginGuard {
    pub fn new(settings: Lockout) -> LoginGuard {
        LoginGuard {
            settings,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` (realm and username) is locked out now.
    pub fn locked(&self, key: &str, now: Instant) -> bool {
        if self.settings.max_failures == 0 {
            return false;
        }
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .get(key)
            .and_then(|f| f.locked_until)
            .is_some_and(|until| now < until)
    }

    pub fn failed(&self, key: &str, now: Instant) {
        if self.settings.max_failures == 0 {
            return;
        }
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.len() >= MAX_KEYS && !users.contains_key(key) {
            let window = self.settings.window;
            users.retain(|_, f| {
                now.saturating_duration_since(f.first) < window
                    || f.locked_until.is_some_and(|u| now < u)
            });
        }
        let entry = users.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
        });
        if now.saturating_duration_since(entry.first) >= self.settings.window {
            entry.count = 0;
            entry.first = now;
        }
        entry.count += 1;
        if entry.count >= self.settings.max_failures {
            entry.locked_until = Some(now + self.settings.lock_for);
            entry.count = 0;
            entry.first = now;
        }
    }

    pub fn succeeded(&self, key: &str) {
        if self.settings.max_failures == 0 {
            return;
        }
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill() {
        let limiter = RateLimiter::new(RateLimit {
            rate: 2.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("ip", t0).is_ok());
        }
        let wait = limiter.check("ip", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(limiter.check("other", t0).is_ok());
        assert!(limiter.check("ip", t0 + Duration::from_millis(500)).is_ok());
        assert!(RateLimiter::new(RateLimit::OFF).check("ip", t0).is_ok());
    }

    #[test]
    fn lockout_after_failures() {
        let guard = LoginGuard::new(Lockout {
            max_failures: 3,
            window: Duration::from_secs(60),
            lock_for: Duration::from_secs(30),
        });
        let t0 = Instant::now();
        guard.failed("demo/alice", t0);
        guard.failed("demo/alice", t0);
        assert!(!guard.locked("demo/alice", t0));
        guard.failed("demo/alice", t0);
        assert!(guard.locked("demo/alice", t0 + Duration::from_secs(29)));
        assert!(!guard.locked("demo/alice", t0 + Duration::from_secs(31)));
        assert!(!guard.locked("demo/bob", t0));
        // Failures far apart never lock.
        guard.failed("demo/carol", t0);
        guard.failed("demo/carol", t0 + Duration::from_secs(61));
        guard.failed("demo/carol", t0 + Duration::from_secs(62));
        assert!(!guard.locked("demo/carol", t0 + Duration::from_secs(62)));
    }
}
