//! Snapshot, plan, execute, verify and rollback for every capability, and idempotency.

use std::sync::Arc;

use remediation_connector_sandbox::{SandboxConnector, WriteOp, write_sample};
use remediation_core::{
    Action, ActionKind, Capability, Connector, ConnectorError, ConnectorErrorKind, KindName, ManualClock, Outcome,
    OutcomeStatus, PlannedChange, Reversibility, Snapshot, Verification,
};
use serde_json::{Value, json};

use crate::{AT, Fixture, account, action, app, block_on, enforce, membership, notification, reduce, repo, resource};

/// What a rollback is expected to do.
#[derive(Debug)]
enum Undo {
    /// Restores the before-state exactly.
    Exact,
    /// Restores this state instead of the before-state.
    Lossy(Value),
    /// Refused as `Unsupported`; the after-state stays.
    Refused,
}

/// Everything the connector said during one cycle.
struct Trace {
    before: Snapshot,
    planned: PlannedChange,
    executed: Outcome,
    verified: Verification,
    rolled_back: Result<Outcome, ConnectorError>,
    last: Snapshot,
}

async fn cycle(sandbox: &SandboxConnector, action: &Action) -> Trace {
    let before = sandbox.snapshot(&action.target).await.unwrap();
    let planned = sandbox.plan(action, &before).await.unwrap();
    let executed = sandbox.execute(action, &before).await.unwrap();
    let verified = sandbox.verify(action, &planned).await.unwrap();
    let rolled_back = sandbox.rollback(action, &before, &verified.observed).await;
    let last = sandbox.snapshot(&action.target).await.unwrap();
    Trace { before, planned, executed, verified, rolled_back, last }
}

#[track_caller]
fn check(kind: ActionKind, target: remediation_core::Target, expected_after: Value, undo: Undo) {
    let fx = Fixture::sample();
    let act = action(kind, target, "key-1");
    let caps = fx.sandbox.capabilities();
    let cap = remediation_core::find_capability(&caps, act.kind.name(), &act.target).unwrap();
    let t = block_on(cycle(&fx.sandbox, &act));

    assert_ne!(t.before.state, expected_after, "the action must change something");
    assert_eq!(t.planned.expected_after.state, expected_after, "plan: {}", t.planned.description);
    assert!(t.planned.description.ends_with('.'), "{}", t.planned.description);
    assert_eq!(t.executed, Outcome { status: OutcomeStatus::Applied, request_ids: vec!["sandbox-1".into()] });
    assert_eq!(t.verified.observed, t.planned.expected_after);
    assert!(t.verified.matches);

    let writes = fx.directory().writes;
    assert_eq!(writes[0].op, WriteOp::Execute);
    assert_eq!(writes[0].idempotency_key, "key-1");
    assert_eq!(writes[0].kind, act.kind.name());
    assert_eq!(writes[0].target, act.target);
    match undo {
        Undo::Exact => {
            assert_eq!(cap.reversibility, Reversibility::Reversible);
            assert_eq!(t.rolled_back.unwrap().request_ids, ["sandbox-2"]);
            assert_eq!(t.last, t.before);
            assert_eq!(writes.iter().map(|w| w.op).collect::<Vec<_>>(), [WriteOp::Execute, WriteOp::Rollback]);
        }
        Undo::Lossy(restored) => {
            assert_eq!(cap.reversibility, Reversibility::Lossy);
            assert_eq!(t.rolled_back.unwrap().status, OutcomeStatus::Applied);
            assert_eq!(t.last.state, restored);
            assert_eq!(writes.len(), 2);
        }
        Undo::Refused => {
            assert_eq!(cap.reversibility, Reversibility::Irreversible);
            let err = t.rolled_back.unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::Unsupported, "{err}");
            assert!(err.message.contains("cannot be undone"), "{err}");
            assert_eq!(t.last, t.verified.observed);
            assert_eq!(writes.len(), 1);
        }
    }
}

#[test]
fn every_capability_round_trips() {
    check(
        ActionKind::Revoke,
        membership("alice", "admins"),
        json!({"user": "alice", "group": "admins", "member": false}),
        Undo::Exact,
    );
    check(
        ActionKind::Revoke,
        repo("alice", "repo-payments"),
        json!({"identity": "alice", "resource": "repo-payments", "level": null}),
        Undo::Exact,
    );
    // The only grant on the repository: it must stay addressable for verify and rollback.
    check(
        ActionKind::Revoke,
        repo("carol", "repo-website"),
        json!({"identity": "carol", "resource": "repo-website", "level": null}),
        Undo::Exact,
    );
    check(
        reduce("pull"),
        repo("alice", "repo-payments"),
        json!({"identity": "alice", "resource": "repo-payments", "level": "pull"}),
        Undo::Exact,
    );
    check(
        reduce("push"),
        repo("carol", "repo-website"),
        json!({"identity": "carol", "resource": "repo-website", "level": "push"}),
        Undo::Exact,
    );
    check(
        ActionKind::Revoke,
        app("alice", "crm"),
        json!({"identity": "alice", "resource": "crm", "assigned": false, "level": null, "profile": null}),
        Undo::Lossy(json!({"identity": "alice", "resource": "crm", "assigned": true, "level": "user", "profile": {}})),
    );
    check(
        ActionKind::Suspend,
        account("alice"),
        json!({"user": "alice", "status": "suspended", "sessions": ["s-alice-1", "s-alice-2"],
               "password_must_change": false}),
        Undo::Exact,
    );
    check(
        ActionKind::RevokeSessions,
        account("alice"),
        json!({"user": "alice", "status": "active", "sessions": [], "password_must_change": false}),
        Undo::Refused,
    );
    check(
        ActionKind::ForcePasswordReset,
        account("bob"),
        json!({"user": "bob", "status": "active", "sessions": ["s-bob-1"], "password_must_change": true}),
        Undo::Refused,
    );
    check(
        ActionKind::Notify,
        notification("carol"),
        json!({"user": "carol", "status": "active", "sessions": [], "password_must_change": false,
               "notifications": 1}),
        Undo::Refused,
    );
    // `default`: the directory's compliant value, which the plan names.
    check(
        enforce("default_encryption", "default"),
        resource("reports"),
        json!({"resource": "reports", "settings": {"default_encryption": "kms:alias/reports", "public_access_block": "off"}}),
        Undo::Exact,
    );
    // A setting the resource did not have: the rollback unsets it again.
    check(
        enforce("versioning", "enabled"),
        resource("reports"),
        json!({"resource": "reports", "settings": {"default_encryption": "none", "public_access_block": "off",
               "versioning": "enabled"}}),
        Undo::Exact,
    );
}

#[test]
fn an_enforce_plan_names_the_value_and_a_missing_default_is_refused() {
    let fx = Fixture::sample();
    let act = action(enforce("public_access_block", "default"), resource("reports"), "key-e");
    let (planned, missing, unknown) = block_on(async {
        let before = fx.sandbox.snapshot(&act.target).await.unwrap();
        let planned = fx.sandbox.plan(&act, &before).await.unwrap();
        let no_default = action(enforce("versioning", "default"), resource("reports"), "key-f");
        let missing = fx.sandbox.plan(&no_default, &before).await.unwrap_err();
        let unknown = fx.sandbox.snapshot(&resource("no-such-bucket")).await.unwrap_err();
        (planned, missing, unknown)
    });
    assert_eq!(
        planned.description,
        "Set `public_access_block` of reports from `off` to `all`; a rollback sets `off` again."
    );
    assert!(missing.message.contains("setting_defaults"), "{}", missing.message);
    assert_eq!(unknown.kind, ConnectorErrorKind::NotFound);
}

#[test]
fn capabilities_are_exactly_the_documented_table() {
    let fx = Fixture::sample();
    let caps: Vec<_> = fx
        .sandbox
        .capabilities()
        .into_iter()
        .map(|Capability { kind, grant_type, reversibility, observable }| (kind, grant_type, reversibility, observable))
        .collect();
    use KindName::*;
    use Reversibility::*;
    let expected = [
        (Revoke, "group_membership", Reversible, true),
        (Revoke, "repo_permission", Reversible, true),
        (Reduce, "repo_permission", Reversible, true),
        (Revoke, "app_assignment", Lossy, true),
        (Suspend, "account", Reversible, true),
        (RevokeSessions, "account", Irreversible, true),
        (ForcePasswordReset, "account", Irreversible, true),
        (Notify, "notification", Irreversible, false),
        (Enforce, "resource_setting", Reversible, true),
    ]
    .map(|(k, g, r, o)| (k, g.to_owned(), r, o));
    assert_eq!(caps, expected);
    assert_eq!(fx.sandbox.id(), "sandbox");
}

#[test]
fn app_rollback_says_the_profile_is_lost_and_is_exact_without_one() {
    let fx = Fixture::sample();
    let alice = action(ActionKind::Revoke, app("alice", "crm"), "k");
    let before = block_on(fx.sandbox.snapshot(&alice.target)).unwrap();
    let planned = block_on(fx.sandbox.plan(&alice, &before)).unwrap();
    assert!(planned.description.contains("empty profile"), "{}", planned.description);
    assert!(planned.description.contains(r#"{"region":"EMEA","title":"Sales"}"#), "{}", planned.description);

    // bob's assignment has no profile, so nothing is lost.
    let t = block_on(cycle(&fx.sandbox, &action(ActionKind::Revoke, app("bob", "crm"), "k2")));
    assert_eq!(t.before.state["profile"], json!({}));
    assert_eq!(t.last, t.before);
}

#[test]
fn executing_twice_with_one_key_writes_once() {
    #[track_caller]
    fn check(kind: ActionKind, target: remediation_core::Target) {
        let fx = Fixture::sample();
        let act = action(kind, target, "same-key");
        let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
        let first = block_on(fx.sandbox.execute(&act, &before)).unwrap();
        let second = block_on(fx.sandbox.execute(&act, &before)).unwrap();
        assert_eq!(first.status, OutcomeStatus::Applied);
        assert_eq!(second, Outcome { status: OutcomeStatus::AlreadyInState, request_ids: vec!["sandbox-1".into()] });
        let dir = fx.directory();
        assert_eq!(dir.writes.len(), 1);
        assert!(dir.notifications.len() <= 1);
    }
    check(ActionKind::Revoke, membership("alice", "admins"));
    check(reduce("triage"), repo("alice", "repo-payments"));
    check(ActionKind::Suspend, account("alice"));
    // Notify is never "already in state", so only the key stops a second notification.
    check(ActionKind::Notify, notification("alice"));
}

#[test]
fn rolling_back_twice_with_one_key_writes_once() {
    let fx = Fixture::sample();
    let act = action(ActionKind::Revoke, membership("alice", "admins"), "k");
    let t = block_on(cycle(&fx.sandbox, &act));
    assert_eq!(t.last, t.before);
    let again = block_on(fx.sandbox.rollback(&act, &t.before, &t.verified.observed)).unwrap();
    assert_eq!(again, Outcome { status: OutcomeStatus::AlreadyInState, request_ids: vec!["sandbox-2".into()] });
    assert_eq!(fx.directory().writes.len(), 2);
}

#[test]
fn a_target_already_in_state_is_a_no_op_plan_and_no_write() {
    #[track_caller]
    fn check(kind: ActionKind, target: remediation_core::Target, description: &str) {
        let fx = Fixture::sample();
        let act = action(kind, target, "k");
        let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
        let planned = block_on(fx.sandbox.plan(&act, &before)).unwrap();
        assert_eq!(planned.expected_after, before);
        assert!(planned.description.contains(description), "{}", planned.description);
        let outcome = block_on(fx.sandbox.execute(&act, &before)).unwrap();
        assert_eq!(outcome, Outcome { status: OutcomeStatus::AlreadyInState, request_ids: vec![] });
        assert!(fx.directory().writes.is_empty());
    }
    check(ActionKind::Revoke, membership("carol", "admins"), "carol is not a member of group admins");
    check(ActionKind::Revoke, repo("carol", "repo-payments"), "no permission");
    check(ActionKind::Revoke, app("carol", "crm"), "not assigned");
    check(ActionKind::RevokeSessions, account("carol"), "no open sessions");
}

#[test]
fn execution_after_someone_else_applied_the_change_is_already_in_state() {
    let fx = Fixture::sample();
    let first = action(ActionKind::Suspend, account("alice"), "k1");
    let before = block_on(fx.sandbox.snapshot(&first.target)).unwrap();
    block_on(fx.sandbox.execute(&first, &before)).unwrap();
    let second = action(ActionKind::Suspend, account("alice"), "k2");
    let outcome = block_on(fx.sandbox.execute(&second, &before)).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::AlreadyInState);
    assert_eq!(fx.directory().writes.len(), 1);
}

#[test]
fn notify_appends_the_reason_and_key() {
    let fx = Fixture::sample();
    let act = action(ActionKind::Notify, notification("alice"), "n-1");
    block_on(fx.sandbox.execute(&act, &Snapshot::new(json!({})))).unwrap();
    let n = &fx.directory().notifications;
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].to.as_str(), n[0].message.as_str(), n[0].idempotency_key.as_str()),
        ("alice", "test reason", "n-1")
    );
}

#[test]
fn write_log_uses_the_injected_clock() {
    let fx = Fixture::sample();
    let at = AT + time::Duration::hours(3);
    let sandbox = fx.sandbox.clone().with_clock(Arc::new(ManualClock::new(at)));
    let act = action(ActionKind::Revoke, membership("bob", "engineering"), "k");
    block_on(sandbox.execute(&act, &Snapshot::new(json!({})))).unwrap();
    assert_eq!(fx.directory().writes[0].at, at);
    let text = std::fs::read_to_string(&fx.path).unwrap();
    assert!(text.contains(r#""at": "2025-01-01T03:00:00Z""#), "{text}");
}

#[test]
fn protected_users_and_groups_mark_their_targets() {
    let fx = Fixture::with_text(
        r#"{
          "users": {"alice": {}, "breakglass": {"protected": true}},
          "groups": {"admins": {"members": ["alice", "breakglass"]}, "root": {"members": ["alice"], "protected": true}},
          "grants": [{"identity": "breakglass", "resource": "r", "grant_type": "repo_permission", "level": "admin"}]
        }"#,
    );
    #[track_caller]
    fn check(fx: &Fixture, target: remediation_core::Target, protected: bool) {
        let snapshot = block_on(fx.sandbox.snapshot(&target)).unwrap();
        assert_eq!(snapshot.protected, protected, "{target}");
    }
    check(&fx, account("breakglass"), true);
    check(&fx, membership("breakglass", "admins"), true);
    check(&fx, repo("breakglass", "r"), true);
    check(&fx, membership("alice", "root"), true);
    check(&fx, membership("alice", "admins"), false);
    check(&fx, account("alice"), false);

    let sample = Fixture::sample();
    check(&sample, account("breakglass"), true);
    check(&sample, membership("breakglass", "admins"), true);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let names: Vec<String> = (0..16).map(|i| format!("u{i}")).collect();
    let users: serde_json::Map<String, Value> = names.iter().map(|n| (n.clone(), json!({}))).collect();
    let fx = Fixture::with_text(&json!({"users": users, "groups": {"g": {"members": names}}}).to_string());
    std::thread::scope(|scope| {
        for name in &names {
            let sandbox = SandboxConnector::new("sandbox", fx.path.clone());
            scope.spawn(move || {
                let act = action(ActionKind::Revoke, membership(name, "g"), name);
                let outcome = block_on(sandbox.execute(&act, &Snapshot::new(json!({})))).unwrap();
                assert_eq!(outcome.status, OutcomeStatus::Applied);
            });
        }
    });
    let dir = fx.directory();
    assert_eq!(dir.writes.len(), names.len());
    assert!(dir.groups["g"].members.is_empty(), "{:?}", dir.groups["g"]);
}

#[test]
fn health_reports_the_path_and_counts() {
    let fx = Fixture::sample();
    let health = block_on(fx.sandbox.health()).unwrap();
    assert!(health.healthy);
    assert!(health.detail.contains(&fx.path.display().to_string()), "{}", health.detail);
    assert!(health.detail.contains("4 users, 2 groups, 5 grants, 0 writes"), "{}", health.detail);
}

#[test]
fn write_sample_replaces_the_file() {
    let fx = Fixture::with_text("not json");
    write_sample(&fx.path).unwrap();
    assert!(block_on(fx.sandbox.health()).unwrap().healthy);
}

#[test]
fn a_suspension_reaches_every_group_and_grant_of_the_account() {
    let fx = Fixture::sample();
    let reach = |kind: ActionKind, target| {
        let act = action(kind, target, "key-reach");
        block_on(async {
            let before = fx.sandbox.snapshot(&act.target).await.unwrap();
            fx.sandbox.reach(&act, &before).await.unwrap()
        })
    };
    // alice: admins and engineering, repo-payments and crm.
    assert_eq!(reach(ActionKind::Suspend, account("alice")), Some(4));
    // carol: engineering and repo-website.
    assert_eq!(reach(ActionKind::Suspend, account("carol")), Some(2));
    // A revoke touches the one grant it names.
    assert_eq!(reach(ActionKind::Revoke, membership("alice", "admins")), None);
    assert_eq!(reach(ActionKind::RevokeSessions, account("alice")), None);
    // An enforce reaches what depends on the resource: the site `reports` serves.
    assert_eq!(reach(enforce("default_encryption", "default"), resource("reports")), Some(1));
}
