//! Integration tests of the sandbox connector, in one binary: the full snapshot, plan,
//! execute, verify and rollback cycle for every capability, idempotency, errors and faults.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod conformance;
mod errors;
mod faults;
mod lifecycle;
mod lookup;

use std::future::Future;
use std::path::PathBuf;

use remediation_connector_sandbox::{Directory, SandboxConnector, load, write_sample};
use remediation_core::{Action, ActionId, ActionKind, Connector as _, Mode, State, Target};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

/// The fixed time tests build actions at.
const AT: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

/// A sandbox over a file in its own temporary folder.
struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    sandbox: SandboxConnector,
}

impl Fixture {
    /// A sandbox over the sample directory.
    fn sample() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.json");
        write_sample(&path).unwrap();
        let sandbox = SandboxConnector::open("sandbox", path.clone()).unwrap();
        Self { _dir: dir, path, sandbox }
    }

    /// A sandbox over a file with exactly this content (which need not be valid).
    fn with_text(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.json");
        std::fs::write(&path, text).unwrap();
        let sandbox = SandboxConnector::new("sandbox", path.clone());
        Self { _dir: dir, path, sandbox }
    }

    fn directory(&self) -> Directory {
        self.sandbox.directory().unwrap()
    }
}

/// Runs a future to completion on a fresh single-threaded runtime, so that test helpers can
/// stay synchronous and `#[track_caller]`.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

fn target(grant_type: &str, identity: &str, resource: Option<&str>) -> Target {
    Target { identity: identity.into(), resource: resource.map(Into::into), grant: None, grant_type: grant_type.into() }
}

fn membership(user: &str, group: &str) -> Target {
    target("group_membership", user, Some(group))
}

fn repo(identity: &str, repository: &str) -> Target {
    target("repo_permission", identity, Some(repository))
}

fn app(identity: &str, application: &str) -> Target {
    target("app_assignment", identity, Some(application))
}

fn account(user: &str) -> Target {
    target("account", user, None)
}

/// The notifications sent to `user`.
fn notification(user: &str) -> Target {
    target("notification", user, None)
}

/// The settings of the resource `name`.
fn resource(name: &str) -> Target {
    target("resource_setting", name, None)
}

fn enforce(setting: &str, value: &str) -> ActionKind {
    ActionKind::Enforce { setting: setting.into(), value: value.into() }
}

fn reduce(to: &str) -> ActionKind {
    ActionKind::Reduce { to: to.into() }
}

/// An action in `executing`, as the engine hands it to a connector.
fn action(kind: ActionKind, target: Target, idempotency_key: &str) -> Action {
    Action {
        id: ActionId::new_at(AT),
        kind,
        target,
        connector: "sandbox".into(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:test".into(),
        reason: "test reason".into(),
        mode: Mode::Manual,
        idempotency_key: idempotency_key.into(),
        state: State::Executing,
        created_at: AT,
        updated_at: AT,
        handle: None,
        campaign: None,
    }
}

/// In memory, the file gives the first state only: writes stay in the connector (and its
/// clones), another connector over the same file starts again from the file, and a file
/// that appears after a failed first read is read then.
#[test]
fn the_in_memory_sandbox_keeps_its_writes_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.json");
    let memory = SandboxConnector::in_memory("sandbox", path.clone());
    assert!(memory.is_in_memory());
    block_on(async {
        let health = memory.health().await.unwrap();
        assert!(!health.healthy, "no file yet: {}", health.detail);
        write_sample(&path).unwrap();
        let health = memory.health().await.unwrap();
        assert!(health.healthy && health.detail.contains("(in memory)"), "{}", health.detail);
        let permissions = memory.check_permissions().await.unwrap();
        assert!(permissions.all_granted(), "{permissions:?}");

        let target = membership("alice", "engineering");
        let before = memory.snapshot(&target).await.unwrap();
        let a = action(ActionKind::Revoke, target.clone(), "memory-key");
        let planned = memory.plan(&a, &before).await.unwrap();
        memory.execute(&a, &before).await.unwrap();
        assert_eq!(memory.clone().snapshot(&target).await.unwrap(), planned.expected_after);
        assert!(load(&path).unwrap().groups["engineering"].members.contains(&"alice".to_owned()));
        let other = SandboxConnector::in_memory("sandbox", path.clone());
        assert_eq!(other.snapshot(&target).await.unwrap(), before, "another connector starts from the file");

        memory.inject(remediation_connector_sandbox::Fault::FailRollback).unwrap();
        assert!(memory.directory().unwrap().faults.fail_rollback);
        assert!(!load(&path).unwrap().faults.fail_rollback);
    });
}

/// Every capability has its operations in the permission map, and the README lists it.
#[test]
fn the_permission_map_covers_every_capability_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "sandbox",
        "",
        remediation_connector_sandbox::PERMISSION_MAP,
        &remediation_connector_sandbox::capabilities(),
        &[],
    );
}
