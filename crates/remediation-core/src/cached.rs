//! A connector whose health and permission checks are remembered for a while, so that
//! suggesting and executing many actions does not ask the provider the same two questions
//! every time (and spend its rate limit on them).

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::{
    Action, Capability, Clock, Connector, ConnectorError, Health, Outcome, PermissionNeed, Permissions, PlannedChange,
    Snapshot, Target, Verification,
};

/// How long a connector's health and permission checks are reused when nothing is configured.
pub const DEFAULT_CHECK_TTL: Duration = Duration::seconds(60);

/// Wraps a connector so that [`Connector::health`] and [`Connector::check_permissions`] are
/// answered from a cache for `ttl` after a good answer; every other method goes straight to
/// the inner connector.
///
/// Only good answers are kept: a healthy [`Health`] and [`Permissions`] that lack nothing. A
/// failed check, an unhealthy provider and missing permissions are asked again on the next
/// call, so a provider that recovers (or a grant an operator adds) is seen at once, and a
/// failure never outlives its cause in the cache. A good answer is reused until the clock
/// passes `ttl` after it was obtained; a zero or negative `ttl` disables the cache.
///
/// Operator commands that must see the provider's answer now (`remediate connectors check`)
/// call the inner connector ([`CachedChecks::inner`]).
pub struct CachedChecks {
    inner: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    health: Mutex<Option<(OffsetDateTime, Health)>>,
    permissions: Mutex<Option<(OffsetDateTime, Permissions)>>,
}

impl std::fmt::Debug for CachedChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedChecks").field("connector", &self.inner.id()).field("ttl", &self.ttl).finish()
    }
}

impl CachedChecks {
    /// Caches `inner`'s checks for `ttl`, timed by `clock`.
    pub fn new(inner: Arc<dyn Connector>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { inner, clock, ttl, health: Mutex::new(None), permissions: Mutex::new(None) }
    }

    /// The connector without the cache, for checks that must reach the provider now.
    pub fn inner(&self) -> &Arc<dyn Connector> {
        &self.inner
    }

    /// How long a good answer is reused.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached value in `slot`, if it was obtained less than `ttl` ago.
    fn fresh<T: Clone>(&self, slot: &Mutex<Option<(OffsetDateTime, T)>>) -> Option<T> {
        let now = self.clock.now();
        let guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        // A clock that went backwards (or a skewed one) does not extend the reuse.
        guard.as_ref().filter(|(at, _)| *at <= now && now - *at < self.ttl).map(|(_, v)| v.clone())
    }

    fn keep<T>(&self, slot: &Mutex<Option<(OffsetDateTime, T)>>, value: Option<T>) {
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = value.filter(|_| self.ttl > Duration::ZERO).map(|v| (self.clock.now(), v));
    }
}

#[async_trait]
impl Connector for CachedChecks {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn capabilities(&self) -> Vec<Capability> {
        self.inner.capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        if let Some(health) = self.fresh(&self.health) {
            return Ok(health);
        }
        let result = self.inner.health().await;
        self.keep(&self.health, result.as_ref().ok().filter(|h| h.healthy).cloned());
        result
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        self.inner.permission_map()
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        if let Some(permissions) = self.fresh(&self.permissions) {
            return Ok(permissions);
        }
        let result = self.inner.check_permissions().await;
        self.keep(&self.permissions, result.as_ref().ok().filter(|p| p.can_write()).cloned());
        result
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.inner.snapshot(target).await
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.inner.plan(action, before).await
    }

    async fn execute(&self, action: &Action, before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.inner.execute(action, before).await
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.inner.verify(action, planned).await
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.inner.rollback(action, before, after).await
    }

    fn pending_acceptance_state(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Option<Snapshot> {
        self.inner.pending_acceptance_state(action, before, after)
    }

    async fn reach(&self, action: &Action, before: &Snapshot) -> Result<Option<u32>, ConnectorError> {
        self.inner.reach(action, before).await
    }

    fn follow_up(&self, action: &Action, after: &Snapshot) -> Option<crate::FollowUp> {
        self.inner.follow_up(action, after)
    }

    async fn settle_interrupted(
        &self,
        action: &Action,
        before: &Snapshot,
        live: &Snapshot,
    ) -> Result<Option<crate::Settled>, ConnectorError> {
        self.inner.settle_interrupted(action, before, live).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use time::macros::datetime;

    use super::*;
    use crate::ManualClock;
    use crate::mocks::MockConnector;

    struct Counted {
        cached: CachedChecks,
        clock: Arc<ManualClock>,
        health_calls: Arc<AtomicUsize>,
        permission_calls: Arc<AtomicUsize>,
    }

    /// A connector answering `health` and `permissions` (`None`: an error), counting calls.
    fn counted(health: Option<bool>, missing: Option<Vec<String>>, ttl: Duration) -> Counted {
        let health_calls = Arc::new(AtomicUsize::new(0));
        let permission_calls = Arc::new(AtomicUsize::new(0));
        let mut inner = MockConnector::new();
        inner.expect_id().return_const("okta".to_owned());
        let calls = health_calls.clone();
        inner.expect_health().returning(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            health
                .map(|healthy| Health { healthy, detail: String::new() })
                .ok_or_else(|| ConnectorError::permanent("provider down"))
        });
        let calls = permission_calls.clone();
        inner.expect_check_permissions().returning(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            missing
                .clone()
                .map(|missing| Permissions { missing, ..Permissions::default() })
                .ok_or_else(|| ConnectorError::permanent("down"))
        });
        let clock = Arc::new(ManualClock::new(datetime!(2026-01-01 0:00 UTC)));
        let cached = CachedChecks::new(Arc::new(inner), clock.clone(), ttl);
        Counted { cached, clock, health_calls, permission_calls }
    }

    impl Counted {
        async fn check_both(&self) {
            let _ = self.cached.health().await;
            let _ = self.cached.check_permissions().await;
        }

        fn calls(&self) -> (usize, usize) {
            (self.health_calls.load(Ordering::SeqCst), self.permission_calls.load(Ordering::SeqCst))
        }
    }

    #[tokio::test]
    async fn good_answers_are_reused_until_the_ttl_passes() {
        let c = counted(Some(true), Some(vec![]), Duration::seconds(60));
        for _ in 0..10 {
            c.check_both().await;
        }
        assert_eq!(c.calls(), (1, 1));
        c.clock.advance(Duration::seconds(59));
        c.check_both().await;
        assert_eq!(c.calls(), (1, 1), "still inside the TTL");
        c.clock.advance(Duration::seconds(1));
        c.check_both().await;
        assert_eq!(c.calls(), (2, 2), "the TTL has passed: asked again");
        c.check_both().await;
        assert_eq!(c.calls(), (2, 2), "and the new answer is reused");
        assert!(format!("{:?}", c.cached).contains("okta"));
    }

    #[tokio::test]
    async fn failures_unhealthy_answers_and_missing_permissions_are_not_kept() {
        for (health, missing) in [(None, None), (Some(false), Some(vec!["okta.users.manage".to_owned()]))] {
            let c = counted(health, missing, Duration::seconds(60));
            for _ in 0..3 {
                c.check_both().await;
            }
            assert_eq!(c.calls(), (3, 3), "bad answers are asked again every time");
        }
    }

    #[tokio::test]
    async fn a_zero_ttl_disables_the_cache_and_inner_bypasses_it() {
        let c = counted(Some(true), Some(vec![]), Duration::ZERO);
        c.check_both().await;
        c.check_both().await;
        assert_eq!(c.calls(), (2, 2));
        let c = counted(Some(true), Some(vec![]), Duration::seconds(60));
        c.check_both().await;
        let _ = c.cached.inner().health().await;
        assert_eq!(c.calls(), (2, 1));
        assert_eq!(c.cached.ttl(), Duration::seconds(60));
    }

    #[tokio::test]
    async fn a_clock_set_back_does_not_extend_the_reuse() {
        let c = counted(Some(true), Some(vec![]), Duration::seconds(60));
        c.check_both().await;
        c.clock.advance(Duration::seconds(-3600));
        c.check_both().await;
        assert_eq!(c.calls(), (2, 2));
    }

    /// A wrapper that forgot a method with a default body would silently answer the default:
    /// an invitation rollback would then fail its verification, and the check would judge an
    /// empty permission map. Each such method must reach the wrapped connector.
    #[tokio::test]
    async fn methods_with_default_bodies_reach_the_wrapped_connector() {
        static MAP: &[PermissionNeed] = &[PermissionNeed::check("GET /ping", "none")];
        let pending = Snapshot::new(serde_json::json!({"invitation": "pending"}));
        let mut inner = MockConnector::new();
        let answer = pending.clone();
        inner.expect_pending_acceptance_state().returning(move |_, _, _| Some(answer.clone()));
        inner.expect_permission_map().return_const(MAP);
        inner.expect_reach().returning(|_, _| Ok(Some(7)));
        let follow = crate::FollowUp {
            kind: crate::ActionKind::Revoke,
            target: Target {
                identity: "mona".to_owned(),
                resource: None,
                grant: Some("AKIAOLD".to_owned()),
                grant_type: "access_key".to_owned(),
            },
            reason: "delete the old key".to_owned(),
        };
        let answer = follow.clone();
        inner.expect_follow_up().returning(move |_, _| Some(answer.clone()));
        inner.expect_settle_interrupted().returning(|_, _, _| {
            Ok(Some(crate::Settled { note: "deleted the orphan".to_owned(), request_ids: Vec::new() }))
        });
        let clock = Arc::new(ManualClock::new(datetime!(2026-01-01 0:00 UTC)));
        let cached = CachedChecks::new(Arc::new(inner), clock, Duration::seconds(60));
        let id = crate::ActionId(uuid::Uuid::from_u128(1));
        let action = crate::Action {
            id,
            kind: crate::ActionKind::Revoke,
            target: Target {
                identity: "mona".to_owned(),
                resource: Some("acme/payments".to_owned()),
                grant: None,
                grant_type: "repo_collaborator".to_owned(),
            },
            connector: "github".to_owned(),
            control_id: None,
            finding_id: None,
            canonical: None,
            requested_by: "local:alice".to_owned(),
            reason: "test".to_owned(),
            mode: crate::Mode::Manual,
            idempotency_key: format!("remediation-{id}"),
            state: crate::State::RollingBack,
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
            handle: None,
            campaign: None,
        };
        let before = Snapshot::new(serde_json::json!({}));
        assert_eq!(cached.pending_acceptance_state(&action, &before, &before), Some(pending));
        assert_eq!(cached.permission_map().len(), 1);
        assert_eq!(cached.reach(&action, &before).await.ok().flatten(), Some(7));
        assert_eq!(cached.follow_up(&action, &before), Some(follow));
        let settled = cached.settle_interrupted(&action, &before, &before).await.ok().flatten();
        assert_eq!(settled.map(|s| s.note).as_deref(), Some("deleted the orphan"));
    }
}
