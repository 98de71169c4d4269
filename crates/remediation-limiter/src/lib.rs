//! Blast-radius limits: which windows an action counts against, and the exact sliding-window
//! rule every store applies when it reserves a slot.
//!
//! The rule ([`Window::admits`]): an execution at instant `now` is admitted when fewer than
//! `limit` executions were recorded in the half-open interval `(now - window, now]`. Stores
//! count with [`Window::start`] so that every store agrees to the nanosecond.
//!
//! ```
//! use remediation_limiter::{SlidingLog, Window};
//! use time::{Duration, macros::datetime};
//!
//! let w = Window::new(2, Duration::hours(1));
//! let mut log = SlidingLog::default();
//! let t0 = datetime!(2026-01-01 00:00 UTC);
//! assert!(log.try_record(w, t0));
//! assert!(log.try_record(w, t0 + Duration::minutes(1)));
//! assert!(!log.try_record(w, t0 + Duration::minutes(2))); // full
//! assert!(log.try_record(w, t0 + Duration::hours(1))); // the first slot has left the window
//! ```

use std::collections::VecDeque;

use remediation_core::{Action, GLOBAL_LIMIT_KEY, KindName, LimitPolicy, SlotRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// A limit of `limit` executions in any window of length `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Most executions inside any window.
    pub limit: u32,
    /// Window length.
    pub length: Duration,
}

impl Window {
    /// A window of `limit` executions per `length`.
    pub fn new(limit: u32, length: Duration) -> Self {
        Self { limit, length }
    }

    /// The exclusive start of the window that ends (inclusively) at `now`.
    pub fn start(self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.length
    }

    /// Whether one more execution fits, given `used` executions recorded after [`Self::start`].
    pub fn admits(self, used: u32) -> bool {
        used < self.limit
    }

    /// The window described by a slot request.
    pub fn of(slot: &SlotRequest) -> Self {
        Self::new(slot.limit, Duration::seconds(i64::try_from(slot.window_secs).unwrap_or(i64::MAX)))
    }
}

/// An in-memory exact sliding log for one key: the reference implementation of the rule,
/// used by tests and benchmarks and by embedders without a store.
#[derive(Debug, Clone, Default)]
pub struct SlidingLog {
    events: VecDeque<OffsetDateTime>,
}

impl SlidingLog {
    /// Records an execution at `now` if the window admits it. Instants must not go backwards.
    pub fn try_record(&mut self, window: Window, now: OffsetDateTime) -> bool {
        let start = window.start(now);
        while self.events.front().is_some_and(|t| *t <= start) {
            self.events.pop_front();
        }
        let used = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        if window.admits(used) {
            self.events.push_back(now);
            true
        } else {
            false
        }
    }

    /// Executions currently recorded (some may be outside the window until the next call).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// One configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitSetting {
    /// Most executions inside any window.
    pub max: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

/// Blast-radius limits. Defaults: 50 per hour per connector, 5 per day per identity,
/// 10 per hour per resource, 200 per hour globally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Per connector.
    pub per_connector: LimitSetting,
    /// Per identity.
    pub per_identity: LimitSetting,
    /// Per resource (for actions that name one).
    pub per_resource: LimitSetting,
    /// Across everything: the circuit breaker.
    pub global: LimitSetting,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_connector: LimitSetting { max: 50, window_secs: 3600 },
            per_identity: LimitSetting { max: 5, window_secs: 86_400 },
            per_resource: LimitSetting { max: 10, window_secs: 3600 },
            global: LimitSetting { max: 200, window_secs: 3600 },
        }
    }
}

impl LimitPolicy for Limits {
    fn slots_for(&self, action: &Action) -> Vec<SlotRequest> {
        if action.kind.name() == KindName::Notify {
            return Vec::new();
        }
        let slot = |key: String, s: LimitSetting| SlotRequest { key, limit: s.max, window_secs: s.window_secs };
        let mut slots = vec![
            slot(GLOBAL_LIMIT_KEY.to_owned(), self.global),
            slot(format!("connector:{}", action.connector), self.per_connector),
            slot(format!("identity:{}:{}", action.connector, action.limit_identity()), self.per_identity),
        ];
        // Keyed by the provider's canonical id when the action carries one, so renaming the
        // target (an alias, another spelling of a DN) cannot open a fresh window.
        if let Some(resource) = action.limit_resource() {
            slots.push(slot(format!("resource:{}:{resource}", action.connector), self.per_resource));
        }
        slots
    }
}

/// How full one limit window is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// The limit key (`global`, `connector:okta`, `identity:okta:alice`, `resource:okta:admins`).
    pub key: String,
    /// Executions inside the window that ends now.
    pub used: u32,
    /// Most allowed.
    pub limit: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

impl Limits {
    /// The longest window of any limit: slots older than this never count again.
    pub fn longest_window(&self) -> Duration {
        let secs = [self.per_connector, self.per_identity, self.per_resource, self.global]
            .iter()
            .map(|l| l.window_secs)
            .max()
            .unwrap_or(0);
        Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// The setting that governs `key`, by its prefix.
    pub fn setting_for(&self, key: &str) -> LimitSetting {
        match key.split_once(':').map_or(key, |(prefix, _)| prefix) {
            "connector" => self.per_connector,
            "identity" => self.per_identity,
            "resource" => self.per_resource,
            _ => self.global,
        }
    }

    /// Usage per key at `now`, from reserved slots `(key, instant)`, busiest first. Keys with
    /// nothing inside their window are left out.
    pub fn usage(&self, slots: &[(String, OffsetDateTime)], now: OffsetDateTime) -> Vec<Usage> {
        let mut counts: std::collections::BTreeMap<&str, u32> = std::collections::BTreeMap::new();
        for (key, at) in slots {
            let setting = self.setting_for(key);
            let window =
                Window::of(&SlotRequest { key: key.clone(), limit: setting.max, window_secs: setting.window_secs });
            if *at > window.start(now) && *at <= now {
                *counts.entry(key.as_str()).or_default() += 1;
            }
        }
        let mut usage: Vec<Usage> = counts
            .into_iter()
            .map(|(key, used)| {
                let s = self.setting_for(key);
                Usage { key: key.to_owned(), used, limit: s.max, window_secs: s.window_secs }
            })
            .collect();
        usage.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
        usage
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    proptest! {
        /// However the events are spaced, no window of the configured length ever holds more
        /// than `limit` admitted events.
        #[test]
        fn no_window_exceeds_its_limit(limit in 1u32..8, window_s in 1i64..100, gaps in proptest::collection::vec(0i64..30, 1..200)) {
            let w = Window::new(limit, Duration::seconds(window_s));
            let mut log = SlidingLog::default();
            let mut now = datetime!(2026-01-01 00:00 UTC);
            let mut admitted = Vec::new();
            for g in gaps {
                now += Duration::seconds(g);
                if log.try_record(w, now) {
                    admitted.push(now);
                }
            }
            for (i, t) in admitted.iter().enumerate() {
                let inside = admitted[..=i].iter().filter(|u| **u > *t - w.length).count();
                prop_assert!(inside <= limit as usize, "{inside} events in window ending {t}");
            }
        }
    }

    #[test]
    fn default_limits_are_the_documented_ones() {
        let l = Limits::default();
        let got = [l.per_connector, l.per_identity, l.per_resource, l.global].map(|s| (s.max, s.window_secs));
        assert_eq!(got, [(50, 3600), (5, 86_400), (10, 3600), (200, 3600)]);
    }

    #[test]
    fn usage_counts_each_key_inside_its_own_window() {
        let now = datetime!(2026-01-02 00:00 UTC);
        let slots: Vec<(String, OffsetDateTime)> = vec![
            ("global".into(), now - Duration::minutes(30)),
            ("global".into(), now - Duration::minutes(90)), // outside the 1 h global window
            ("identity:sandbox:alice".into(), now - Duration::hours(20)), // inside the 1 day window
            ("connector:sandbox".into(), now - Duration::minutes(30)),
        ];
        let usage = Limits::default().usage(&slots, now);
        let got: Vec<(&str, u32, u32)> = usage.iter().map(|u| (u.key.as_str(), u.used, u.limit)).collect();
        assert_eq!(got, [("connector:sandbox", 1, 50), ("global", 1, 200), ("identity:sandbox:alice", 1, 5)]);
        assert_eq!(Limits::default().longest_window(), Duration::days(1));
    }

    #[test]
    fn notify_takes_no_slot_and_resources_get_their_own() {
        let mut action: Action = serde_json::from_value(serde_json::json!({
            "id": "01900000-0000-7000-8000-000000000000",
            "kind": {"type": "notify"},
            "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
            "connector": "sandbox", "requested_by": "bob", "reason": "r", "mode": "manual",
            "idempotency_key": "k", "state": "approved",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .expect("action");
        assert!(Limits::default().slots_for(&action).is_empty());
        action.kind = remediation_core::ActionKind::Revoke;
        let keys: Vec<String> = Limits::default().slots_for(&action).into_iter().map(|s| s.key).collect();
        assert_eq!(keys, ["global", "connector:sandbox", "identity:sandbox:alice", "resource:sandbox:admins"]);
    }
}
