//! The default limits driven through a real engine: windows are keyed by the provider's
//! canonical id of the target, so another name for the same account shares its window.

use remediation_core::{CanonicalTarget, ExecuteOutcome, Mode, State};
use remediation_limiter::{LimitSetting, Limits};
use remediation_testkit::{AllowAll, Harness, RequestBuilder, TargetBuilder, approver, requester};
use serde_json::json;

/// One execution per identity per day, everything else wide open.
fn one_per_identity() -> Limits {
    let wide = LimitSetting { max: 1000, window_secs: 3600 };
    Limits {
        per_connector: wide,
        per_identity: LimitSetting { max: 1, window_secs: 86_400 },
        per_resource: wide,
        global: wide,
    }
}

/// Seeds `identity` at the fake provider, resolving to `canonical`, then suggests, approves
/// and executes a revoke on it.
async fn run(h: &Harness, identity: &str, resource: &str, canonical: CanonicalTarget) -> ExecuteOutcome {
    let target = TargetBuilder::new().identity(identity).resource(resource).build();
    h.connector.set_state(target.clone(), json!({"granted": true}));
    h.connector.set_canonical(&target, Some(canonical.clone()));
    let s = h.engine.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("suggest");
    assert_eq!(s.action.canonical.as_ref(), Some(&canonical), "the action records the resolved id");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute")
}

#[tokio::test]
async fn an_alias_of_an_identity_shares_its_window() {
    let h = Harness::new(AllowAll::new(Mode::Manual), one_per_identity());
    let id = || CanonicalTarget::with_resource("00u1breakglass", "00g1admins");
    let out = run(&h, "breakglass@example.com", "admins", id()).await;
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    // The same account under its short login: a fresh spelling must not open a fresh window.
    let out = run(&h, "breakglass", "Admins", id()).await;
    let ExecuteOutcome::Held { action, limit } = out else { panic!("alias got through: {out:?}") };
    assert_eq!((action.state, limit.slot.key.as_str()), (State::Held, "identity:sandbox:00u1breakglass"));
}

#[tokio::test]
async fn a_different_account_keeps_its_own_window() {
    let h = Harness::new(AllowAll::new(Mode::Manual), one_per_identity());
    let out = run(&h, "alice", "admins", CanonicalTarget::with_resource("00u1alice", "00g1admins")).await;
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    let out = run(&h, "bob", "admins", CanonicalTarget::with_resource("00u1bob", "00g1admins")).await;
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
}
