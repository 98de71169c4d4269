//! Injected faults: each fires once, does what it says, and resets its flag in the file.

use remediation_connector_sandbox::{Fault, Faults};
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, OutcomeStatus};
use serde_json::json;

use crate::{Fixture, account, action, block_on, membership, notification, repo};

#[test]
fn inject_sets_the_flags_in_the_file() {
    let fx = Fixture::sample();
    fx.sandbox.inject(Fault::FailAfterWrite).unwrap();
    fx.sandbox.inject(Fault::FailRollback).unwrap();
    let expected = Faults { fail_after_write: true, drift_before_execute: false, fail_rollback: true };
    assert_eq!(fx.directory().faults, expected);
    fx.sandbox.inject(Fault::DriftBeforeExecute).unwrap();
    assert!(fx.directory().faults.drift_before_execute);
    let text = std::fs::read_to_string(&fx.path).unwrap();
    assert!(text.contains(r#""fail_after_write": true"#), "{text}");
}

#[test]
fn fail_after_write_applies_once_then_errors_and_resets() {
    let fx = Fixture::sample();
    fx.sandbox.inject(Fault::FailAfterWrite).unwrap();
    let act = action(ActionKind::Revoke, membership("alice", "admins"), "k");
    let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    let planned = block_on(fx.sandbox.plan(&act, &before)).unwrap();

    let err = block_on(fx.sandbox.execute(&act, &before)).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Transient, "{err}");
    assert_eq!(err.message, "injected fault: failed after write");
    assert_eq!(err.request_id.as_deref(), Some("sandbox-1"));

    let dir = fx.directory();
    assert_eq!(dir.writes.len(), 1);
    assert!(!dir.groups["admins"].members.contains(&"alice".to_owned()));
    assert_eq!(dir.faults, Faults::default());
    assert!(block_on(fx.sandbox.verify(&act, &planned)).unwrap().matches);

    // The engine's retry after the failure: the key says it is done.
    let retry = block_on(fx.sandbox.execute(&act, &before)).unwrap();
    assert_eq!(retry.status, OutcomeStatus::AlreadyInState);
    assert_eq!(fx.directory().writes.len(), 1);
}

#[test]
fn fault_flags_set_in_the_file_work_too() {
    let fx = Fixture::with_text(
        r#"{"users": {"alice": {}}, "groups": {"g": {"members": ["alice"]}}, "faults": {"fail_after_write": true}}"#,
    );
    let act = action(ActionKind::Revoke, membership("alice", "g"), "k");
    let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    assert!(block_on(fx.sandbox.execute(&act, &before)).is_err());
    assert!(!fx.directory().faults.fail_after_write);
}

#[test]
fn drift_before_execute_changes_the_target_and_verification_sees_it() {
    let fx = Fixture::sample();
    fx.sandbox.inject(Fault::DriftBeforeExecute).unwrap();
    let act = action(ActionKind::Suspend, account("alice"), "k");
    let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    let planned = block_on(fx.sandbox.plan(&act, &before)).unwrap();

    let outcome = block_on(fx.sandbox.execute(&act, &before)).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let verification = block_on(fx.sandbox.verify(&act, &planned)).unwrap();
    assert!(!verification.matches);
    assert_eq!(verification.observed.state["status"], "suspended");
    assert_eq!(verification.observed.state["sessions"], json!(["s-alice-1", "s-alice-2", "drift-session"]));
    assert_eq!(fx.directory().faults, Faults::default());
    assert_eq!(fx.directory().writes.len(), 1, "drift is not the connector's write");
}

#[test]
fn drift_before_execute_survives_every_account_action() {
    #[track_caller]
    fn check(kind: ActionKind) {
        let fx = Fixture::sample();
        fx.sandbox.inject(Fault::DriftBeforeExecute).unwrap();
        let target = if kind == ActionKind::Notify { notification("alice") } else { account("alice") };
        let act = action(kind, target, "k");
        let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
        let planned = block_on(fx.sandbox.plan(&act, &before)).unwrap();
        block_on(fx.sandbox.execute(&act, &before)).unwrap();
        let verification = block_on(fx.sandbox.verify(&act, &planned)).unwrap();
        assert!(!verification.matches, "{}", verification.observed.state);
    }
    check(ActionKind::Suspend);
    check(ActionKind::RevokeSessions);
    check(ActionKind::ForcePasswordReset);
    check(ActionKind::Notify);
}

#[test]
fn drift_before_execute_on_a_group_or_resource_adds_drift_user() {
    let fx = Fixture::sample();
    fx.sandbox.inject(Fault::DriftBeforeExecute).unwrap();
    let act = action(ActionKind::Revoke, membership("alice", "admins"), "k");
    let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    block_on(fx.sandbox.execute(&act, &before)).unwrap();
    assert_eq!(fx.directory().groups["admins"].members, ["bob", "breakglass", "drift-user"]);

    fx.sandbox.inject(Fault::DriftBeforeExecute).unwrap();
    let act = action(ActionKind::Revoke, repo("alice", "repo-payments"), "k2");
    block_on(fx.sandbox.execute(&act, &before)).unwrap();
    let dir = fx.directory();
    let drift: Vec<_> = dir.grants.iter().filter(|g| g.identity == "drift-user").map(|g| g.resource.as_str()).collect();
    assert_eq!(drift, ["repo-payments"]);
    assert_eq!(dir.faults, Faults::default());
}

#[test]
fn fail_rollback_fails_once_without_changing_anything() {
    let fx = Fixture::sample();
    let act = action(ActionKind::Suspend, account("alice"), "k");
    let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    block_on(fx.sandbox.execute(&act, &before)).unwrap();
    let after = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    fx.sandbox.inject(Fault::FailRollback).unwrap();

    let err = block_on(fx.sandbox.rollback(&act, &before, &after)).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
    assert_eq!(err.message, "injected fault: rollback failed");
    assert_eq!(block_on(fx.sandbox.snapshot(&act.target)).unwrap(), after);
    let dir = fx.directory();
    assert_eq!(dir.writes.len(), 1);
    assert_eq!(dir.faults, Faults::default());

    let outcome = block_on(fx.sandbox.rollback(&act, &before, &after)).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(block_on(fx.sandbox.snapshot(&act.target)).unwrap(), before);
}
