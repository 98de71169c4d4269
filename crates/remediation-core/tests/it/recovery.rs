//! Crash recovery in-process: an engine whose failpoint hook panics stands in for a process
//! that dies at that point; a second engine over the same store and provider then runs
//! `recover`, and the crash rule decides each action from the provider's live state.

use std::sync::Arc;

use remediation_core::{Engine, EngineParts, ExecuteOutcome, Mode, Recovery, RollbackOutcome, State, failpoints};
use remediation_testkit::{AllowAll, Harness, Method, NoLimits, RequestBuilder, approver, requester};
use serde_json::json;

/// A second engine over the harness's store, connector and clock whose hook panics at `point`.
fn crashing(h: &Harness, point: &'static str) -> Arc<Engine> {
    Arc::new(
        Engine::new(EngineParts {
            store: Arc::clone(&h.store) as _,
            connectors: vec![Arc::clone(&h.connector) as _],
            clock: Arc::clone(&h.clock) as _,
            policy: Arc::new(AllowAll::new(Mode::Manual)),
            limits: Arc::new(NoLimits),
        })
        .with_failpoints(Arc::new(move |name| {
            if name == point {
                panic!("simulated crash at {name}");
            }
        })),
    )
}

struct Case {
    point: &'static str,
    rollback: bool,
    ends: State,
    /// Restores the provider was asked for in all (the execution itself must apply once).
    rollback_calls: usize,
    granted_after: bool,
}

#[track_caller]
fn check(case: Case) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
        let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
        let id = s.action.id;
        h.engine.approve(id, &approver("bob"), None).await.expect("approve");
        let crashing = crashing(&h, case.point);
        let died = if case.rollback {
            let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
            assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
            tokio::spawn(async move { crashing.rollback(id, &approver("bob"), None).await.map(|_| ()) }).await
        } else {
            tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await
        };
        assert!(died.expect_err("the process died").is_panic());
        let left = if case.rollback { State::RollingBack } else { State::Executing };
        assert_eq!(h.store.detail(id).expect("stored").action.state, left);

        let recovered = h.engine.recover().await.expect("recover");
        assert_eq!(recovered.len(), 1, "{recovered:?}");
        let Recovery { from, to, .. } = &recovered[0];
        assert_eq!((*from, *to), (left, case.ends), "{recovered:?}");
        assert_eq!(h.store.detail(id).expect("stored").action.state, case.ends);
        assert_eq!(h.connector.applied_keys().len(), 1, "the change was applied exactly once ({})", case.point);
        assert_eq!(h.connector.calls(Method::Rollback), case.rollback_calls, "restores at {}", case.point);
        assert_eq!(h.connector.state(&s.action.target).map(|s| s.state), Some(json!({"granted": case.granted_after})));
        assert!(h.engine.recover().await.expect("recover again").is_empty(), "recovery is idempotent");
    });
}

#[test]
fn every_failpoint_ends_where_the_crash_rule_says() {
    use failpoints::*;
    check(Case {
        point: AFTER_BEGIN_EXECUTION,
        rollback: false,
        ends: State::Completed,
        rollback_calls: 0,
        granted_after: false,
    });
    check(Case {
        point: AFTER_PROVIDER_WRITE,
        rollback: false,
        ends: State::Completed,
        rollback_calls: 0,
        granted_after: false,
    });
    check(Case {
        point: BEFORE_COMPLETED,
        rollback: false,
        ends: State::Completed,
        rollback_calls: 0,
        granted_after: false,
    });
    check(Case {
        point: AFTER_BEGIN_ROLLBACK,
        rollback: true,
        ends: State::RolledBack,
        rollback_calls: 1,
        granted_after: true,
    });
    check(Case {
        point: AFTER_ROLLBACK_WRITE,
        rollback: true,
        ends: State::RolledBack,
        rollback_calls: 1,
        granted_after: true,
    });
}

#[tokio::test]
async fn a_state_matching_neither_side_needs_attention() {
    let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    let id = s.action.id;
    h.engine.approve(id, &approver("bob"), None).await.expect("approve");
    let crashing = crashing(&h, failpoints::AFTER_PROVIDER_WRITE);
    let died = tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await;
    assert!(died.is_err());
    h.connector.set_state(s.action.target.clone(), json!({"granted": "something else"}));
    let recovered = h.engine.recover().await.expect("recover");
    assert_eq!(recovered[0].to, State::Failed);
    assert!(recovered[0].note.contains("needs attention"), "{}", recovered[0].note);
    // A failed action whose live state differs from the before-state may still be rolled back.
    let out = h.engine.rollback(id, &approver("bob"), None).await.expect("rollback");
    assert!(matches!(out, RollbackOutcome::RolledBack { .. }), "{out:?}");
}

/// A provider that stamps a value no plan can predict on every write, and whose connector
/// verifies by the field that matters (as Entra's session revocation does).
mod stamped {
    use std::sync::Arc;

    use async_trait::async_trait;
    use remediation_core::{
        Action, Capability, Connector, ConnectorError, Health, Outcome, Permissions, PlannedChange, Snapshot, Target,
        Verification,
    };
    use remediation_testkit::FakeConnector;

    pub(super) struct Stamped {
        pub(super) inner: Arc<FakeConnector>,
        pub(super) accept: bool,
    }

    #[async_trait]
    impl Connector for Stamped {
        fn id(&self) -> &str {
            self.inner.id()
        }
        fn capabilities(&self) -> Vec<Capability> {
            self.inner.capabilities()
        }
        async fn health(&self) -> Result<Health, ConnectorError> {
            self.inner.health().await
        }
        fn permission_map(&self) -> &'static [remediation_core::PermissionNeed] {
            self.inner.permission_map()
        }
        async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
            self.inner.check_permissions().await
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
            let observed = self.inner.snapshot(&action.target).await?;
            let matches = self.accept && observed.state["granted"] == planned.expected_after.state["granted"];
            Ok(Verification { observed, matches })
        }
        async fn rollback(
            &self,
            action: &Action,
            before: &Snapshot,
            after: &Snapshot,
        ) -> Result<Outcome, ConnectorError> {
            self.inner.rollback(action, before, after).await
        }
    }
}

#[test]
fn an_interrupted_change_the_connector_verifies_completes_though_the_provider_stamped_it() {
    for (accept, ends) in [(true, State::Completed), (false, State::Failed)] {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
            let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
            let id = s.action.id;
            h.engine.approve(id, &approver("bob"), None).await.expect("approve");
            let crashing = crashing(&h, failpoints::AFTER_PROVIDER_WRITE);
            let died =
                tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await;
            assert!(died.expect_err("the process died").is_panic());
            // The provider stamped the change with a value the plan could not know.
            h.connector.set_state(s.action.target.clone(), json!({"granted": false, "stamp": 1_700_000_000}));

            let engine = Engine::new(EngineParts {
                store: Arc::clone(&h.store) as _,
                connectors: vec![Arc::new(stamped::Stamped { inner: Arc::clone(&h.connector), accept })],
                clock: Arc::clone(&h.clock) as _,
                policy: Arc::new(AllowAll::new(Mode::Manual)),
                limits: Arc::new(NoLimits),
            });
            let recovered = engine.recover().await.expect("recover");
            assert_eq!(recovered.len(), 1, "{recovered:?}");
            assert_eq!(recovered[0].to, ends, "accept={accept}: {recovered:?}");
            assert_eq!(h.connector.applied_keys().len(), 1, "never applied twice");
        });
    }
}
