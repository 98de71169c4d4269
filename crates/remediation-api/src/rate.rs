//! Per-principal request rate limiting on the injectable clock: at most `requests` calls in
//! any window of `window_secs`, counted as an exact sliding log per principal. Refusals are
//! cheap to cause (a gate, a role, a conflict), so a principal in a retry loop is slowed down
//! here before it reaches the engine and the audit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use remediation_limiter::Window;
use time::{Duration, OffsetDateTime};

/// How many calls each principal may make in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed inside any window.
    pub requests: u32,
    /// Window length.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` calls per `window_secs` seconds (each at least 1).
    pub fn per_secs(requests: u32, window_secs: u64) -> Self {
        let secs = i64::try_from(window_secs).unwrap_or(i64::MAX).max(1);
        Self { requests: requests.max(1), window: Duration::seconds(secs) }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { requests: 600, window: Duration::minutes(1) }
    }
}

/// The calls of every principal inside the current window.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    calls: Mutex<HashMap<String, VecDeque<OffsetDateTime>>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, calls: Mutex::new(HashMap::new()) }
    }

    /// Admits one call of `principal` at `now`, or says how many whole seconds to wait
    /// (at least 1) until the oldest call in the window leaves it.
    pub(crate) fn admit(&self, principal: &str, now: OffsetDateTime) -> Result<(), u64> {
        let window = Window::new(self.limit.requests, self.limit.window);
        let mut calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let log = calls.entry(principal.to_owned()).or_default();
        let start = window.start(now);
        while log.front().is_some_and(|t| *t <= start) {
            log.pop_front();
        }
        if window.admits(u32::try_from(log.len()).unwrap_or(u32::MAX)) {
            log.push_back(now);
            return Ok(());
        }
        let oldest = log.front().copied().unwrap_or(now);
        let wait = (oldest + self.limit.window - now).as_seconds_f64().ceil();
        // A float of at least 1 and at most the window, so the cast cannot truncate badly.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Err((wait as u64).max(1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]
mod tests {
    use super::*;

    #[test]
    fn each_principal_gets_its_own_sliding_window() {
        let limiter = RateLimiter::new(RateLimit { requests: 3, window: Duration::seconds(10) });
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000);
        for i in 0..3 {
            assert_eq!(limiter.admit("alice", t0 + Duration::seconds(i)), Ok(()));
        }
        // The fourth call inside the window waits until the first leaves it (t0 + 10 s).
        assert_eq!(limiter.admit("alice", t0 + Duration::milliseconds(3500)), Err(7));
        // Another principal is not slowed down by alice.
        assert_eq!(limiter.admit("bob", t0 + Duration::seconds(3)), Ok(()));
        // Refused calls are not counted: once the first call leaves the window, one more fits.
        assert_eq!(limiter.admit("alice", t0 + Duration::seconds(10)), Ok(()));
        assert_eq!(limiter.admit("alice", t0 + Duration::seconds(10)), Err(1));
    }
}
