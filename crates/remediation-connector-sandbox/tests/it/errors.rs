//! Refusals and failures: unsupported actions, unknown targets, bad reductions, bad files and
//! missing write access.

use std::fs;

use remediation_connector_sandbox::{SandboxConnector, SandboxError};
use remediation_core::{ActionKind, Connector, ConnectorError, ConnectorErrorKind, Snapshot, Target};
use serde_json::json;

use crate::{Fixture, account, action, app, block_on, membership, reduce, repo, target};

/// Runs plan, execute and rollback of `kind` on `target` and returns their errors. None of
/// them may write.
#[track_caller]
fn refusals(fx: &Fixture, kind: ActionKind, target: Target) -> [ConnectorError; 3] {
    let act = action(kind, target, "k");
    let any = Snapshot::new(json!({}));
    let errors = [
        block_on(fx.sandbox.plan(&act, &any)).unwrap_err(),
        block_on(fx.sandbox.execute(&act, &any)).unwrap_err(),
        block_on(fx.sandbox.rollback(&act, &any, &any)).unwrap_err(),
    ];
    assert!(fx.directory().writes.is_empty());
    errors
}

#[test]
fn unsupported_kind_and_grant_type_pairs_are_refused_before_anything_else() {
    #[track_caller]
    fn check(kind: ActionKind, target: Target) {
        let fx = Fixture::sample();
        for err in refusals(&fx, kind, target) {
            assert_eq!(err.kind, ConnectorErrorKind::Unsupported, "{err}");
            assert!(err.message.contains("supported: revoke/group_membership"), "{err}");
        }
    }
    check(ActionKind::Suspend, membership("alice", "admins"));
    check(reduce("user"), app("alice", "crm"));
    check(ActionKind::Revoke, account("alice"));
    check(ActionKind::Notify, repo("alice", "repo-payments"));
    check(ActionKind::RevokeSessions, membership("alice", "admins"));
    check(ActionKind::Revoke, target("team_membership", "alice", Some("core")));
}

#[test]
fn snapshot_of_an_unknown_grant_type_is_unsupported() {
    let fx = Fixture::sample();
    let err = block_on(fx.sandbox.snapshot(&target("team_membership", "alice", Some("core")))).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Unsupported, "{err}");
    assert!(err.message.contains("grant types: group_membership, repo_permission, app_assignment, account"), "{err}");
}

#[test]
fn unknown_users_groups_and_resources_are_not_found() {
    #[track_caller]
    fn check(target: Target, message: &str) {
        let fx = Fixture::sample();
        let err = block_on(fx.sandbox.snapshot(&target)).unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::NotFound, "{err}");
        let expected = format!("{message} in sandbox directory {}", fx.path.display());
        assert_eq!(err.message, expected);
        // Execute reads the same state, so it fails the same way and writes nothing.
        let act = action(ActionKind::Revoke, target, "k");
        if fx.sandbox.capabilities().iter().any(|c| c.grant_type == act.target.grant_type && c.kind == act.kind.name())
        {
            let err = block_on(fx.sandbox.execute(&act, &Snapshot::new(json!({})))).unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::NotFound, "{err}");
            assert!(fx.directory().writes.is_empty());
        }
    }
    check(account("mallory"), "no user `mallory`");
    check(membership("mallory", "admins"), "no user `mallory`");
    check(membership("alice", "wheel"), "no group `wheel`");
    check(repo("alice", "repo-nope"), "no repository `repo-nope`");
    check(repo("mallory", "repo-payments"), "no user `mallory`");
    check(app("alice", "payroll"), "no application `payroll`");
    // An application name is not a repository name.
    check(repo("alice", "crm"), "no repository `crm`");
}

#[test]
fn a_target_without_its_resource_is_refused() {
    let fx = Fixture::sample();
    let err = block_on(fx.sandbox.snapshot(&target("group_membership", "alice", None))).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{err}");
    assert!(err.message.contains("names the group in `resource`"), "{err}");
}

#[test]
fn plan_refuses_a_snapshot_of_another_target() {
    let fx = Fixture::sample();
    let bob = block_on(fx.sandbox.snapshot(&account("bob"))).unwrap();
    let err = block_on(fx.sandbox.plan(&action(ActionKind::Suspend, account("alice"), "k"), &bob)).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
    assert!(err.message.contains("another target"), "{err}");
}

#[test]
fn reductions_must_lower_the_level() {
    #[track_caller]
    fn check(to: &str, target: Target, message: &str) {
        let fx = Fixture::sample();
        let act = action(reduce(to), target, "k");
        let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
        let plan = block_on(fx.sandbox.plan(&act, &before)).unwrap_err();
        let execute = block_on(fx.sandbox.execute(&act, &before)).unwrap_err();
        for err in [plan, execute] {
            assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
            assert!(err.message.contains(message), "{err}");
        }
        assert!(fx.directory().writes.is_empty());
        assert_eq!(block_on(fx.sandbox.snapshot(&act.target)).unwrap(), before);
    }
    // bob has `push` on repo-payments.
    check("admin", repo("bob", "repo-payments"), "not a reduction: bob has `push` on repository repo-payments");
    check("maintain", repo("bob", "repo-payments"), "not a reduction");
    check("pull", repo("carol", "repo-payments"), "nothing to reduce");
    check("read", repo("bob", "repo-payments"), "unknown repository permission level `read`");
}

#[test]
fn reducing_to_the_current_level_is_refused_when_planned() {
    let fx = Fixture::sample();
    let act = action(reduce("push"), repo("bob", "repo-payments"), "k");
    let before = block_on(fx.sandbox.snapshot(&act.target)).unwrap();
    let err = block_on(fx.sandbox.plan(&act, &before)).unwrap_err();
    assert!(err.message.contains("not a reduction"), "{err}");
}

#[test]
fn a_malformed_file_is_reported_with_its_path_line_and_column() {
    #[track_caller]
    fn check(text: &str, line: usize, column: usize, cause: &str) {
        let fx = Fixture::with_text(text);
        let path = fx.path.display().to_string();

        match SandboxConnector::open("sandbox", fx.path.clone()).unwrap_err() {
            SandboxError::Parse { line: l, column: c, .. } => assert_eq!((l, c), (line, column)),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let err = block_on(fx.sandbox.snapshot(&account("alice"))).unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
        let position = format!("sandbox directory {path} is not valid at line {line}, column {column}: {cause}");
        assert!(err.message.starts_with(&position), "{err}");
        assert!(err.message.contains("fix the file at that position"), "{err}");

        let health = block_on(fx.sandbox.health()).unwrap();
        assert!(!health.healthy);
        assert!(health.detail.contains(&position), "{}", health.detail);
    }
    check("{\n  \"users\": {\n    \"alice\": {,\n  }\n}", 3, 15, "key must be a string");
    check("{\n  \"users\": {\n    \"alice\": {\"stauts\": \"active\"}\n  }\n}", 3, 22, "unknown field `stauts`");
    check("{\n  \"users\": {\"alice\": {\"status\": \"gone\"}}\n}", 2, 38, "unknown variant `gone`");
}

#[test]
fn a_missing_file_says_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    assert!(matches!(SandboxConnector::open("s", path.clone()), Err(SandboxError::Read { .. })));
    let sandbox = SandboxConnector::new("s", path.clone());
    let err = block_on(sandbox.snapshot(&account("alice"))).unwrap_err();
    assert!(err.message.starts_with(&format!("cannot read sandbox directory {}", path.display())), "{err}");
    assert!(err.message.contains("remediate init"), "{err}");
    assert!(!block_on(sandbox.health()).unwrap().healthy);
    let missing = block_on(sandbox.check_permissions()).unwrap().missing;
    assert_eq!(missing, ["read access to the directory file", "write access to the directory file"]);
}

#[test]
fn a_read_only_file_lacks_write_access_and_is_not_written() {
    let fx = Fixture::sample();
    assert!(block_on(fx.sandbox.check_permissions()).unwrap().all_granted());

    let mut permissions = fs::metadata(&fx.path).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(&fx.path, permissions).unwrap();

    let perms = block_on(fx.sandbox.check_permissions()).unwrap();
    assert_eq!(perms.missing, ["write access to the directory file"]);
    assert_eq!(perms.granted, ["read access to the directory file"]);
    let act = action(ActionKind::Suspend, account("alice"), "k");
    let err = block_on(fx.sandbox.execute(&act, &Snapshot::new(json!({})))).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Forbidden, "{err}");
    assert!(err.message.contains("is read-only; make the file writable"), "{err}");
    assert_eq!(block_on(fx.sandbox.snapshot(&act.target)).unwrap().state["status"], "active");
}
