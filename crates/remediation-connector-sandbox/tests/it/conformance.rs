//! The sandbox passes the semantic connector conformance suite from the testkit.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_sandbox::{SandboxConnector, load, save, write_sample};
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, Subject};
use tempfile::TempDir;

use crate::{account, app, block_on, membership, repo, target};

struct Sandbox {
    _dir: TempDir,
    path: PathBuf,
    /// `Some`: the directory lives in this connector's memory (shared by every call).
    memory: Option<SandboxConnector>,
}

#[async_trait]
impl Subject for Sandbox {
    fn connector(&self) -> Arc<dyn Connector> {
        match &self.memory {
            Some(memory) => Arc::new(memory.clone()),
            None => Arc::new(SandboxConnector::new("sandbox", self.path.clone())),
        }
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", SandboxConnector::new("sandbox", self.path.clone()))
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    async fn cases(&self) -> Vec<Case> {
        vec![
            Case::new("revoke group membership", ActionKind::Revoke, membership("alice", "engineering")),
            Case::new("revoke repository permission", ActionKind::Revoke, repo("bob", "repo-payments")),
            Case::new(
                "reduce repository permission",
                ActionKind::Reduce { to: "pull".into() },
                repo("carol", "repo-website"),
            ),
            Case::new("revoke app assignment", ActionKind::Revoke, app("alice", "crm")),
            Case::new("suspend account", ActionKind::Suspend, account("carol")),
            Case::new("revoke sessions", ActionKind::RevokeSessions, account("alice")),
            Case::new("force password reset", ActionKind::ForcePasswordReset, account("bob")),
            Case::new("notify", ActionKind::Notify, target("notification", "bob", None)),
            Case::new(
                "enforce a resource setting",
                ActionKind::Enforce { setting: "public_access_block".into(), value: "default".into() },
                target("resource_setting", "reports", None),
            ),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        let resource = match grant_type {
            "group_membership" => Some("engineering"),
            "repo_permission" => Some("repo-payments"),
            "app_assignment" => Some("crm"),
            _ => None,
        };
        target(grant_type, "nobody-by-this-name", resource)
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        // The sandbox has no credentials to take away.
        None
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        // The sample's protected break-glass account, also known as `emergency-admin` (in
        // memory, given by the file before the connector read it).
        if self.memory.is_none() {
            add_breakglass_alias(&self.path);
        }
        vec![
            AliasCase::new("an alias", ActionKind::Suspend, account("breakglass"), account("Emergency-Admin")),
            AliasCase::new(
                "an alias in a group",
                ActionKind::Revoke,
                membership("breakglass", "admins"),
                membership("emergency-admin", "admins"),
            ),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        None
    }
}

fn add_breakglass_alias(path: &std::path::Path) {
    let mut dir = load(path).unwrap();
    dir.users.get_mut("breakglass").unwrap().aliases = vec!["emergency-admin".into()];
    save(path, &dir).unwrap();
}

#[test]
fn sandbox_passes_the_semantic_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.json");
    write_sample(&path).unwrap();
    block_on(conformance::semantic(&Sandbox { _dir: dir, path, memory: None }));
}

#[test]
fn the_in_memory_sandbox_passes_the_semantic_suite_and_never_writes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.json");
    write_sample(&path).unwrap();
    add_breakglass_alias(&path);
    let original = std::fs::read(&path).unwrap();
    let memory = Some(SandboxConnector::in_memory("sandbox", path.clone()));
    let subject = Sandbox { _dir: dir, path: path.clone(), memory };
    block_on(conformance::semantic(&subject));
    let memory = subject.memory.as_ref().unwrap();
    assert!(!memory.directory().unwrap().writes.is_empty(), "the suite's writes are in memory");
    assert!(std::fs::read(&path).unwrap() == original, "the file is never written");
}

#[test]
fn an_alias_is_the_account_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.json");
    write_sample(&path).unwrap();
    let mut d = load(&path).unwrap();
    d.users.get_mut("alice").unwrap().aliases = vec!["alice.smith".into()];
    save(&path, &d).unwrap();
    let c = SandboxConnector::new("sandbox", path.clone());
    block_on(async {
        let target = membership("Alice.Smith", "engineering");
        let before = c.snapshot(&target).await.unwrap();
        assert_eq!(before.canonical.as_ref().unwrap().identity, "alice");
        assert_eq!(before.state["member"], true, "the alias is alice, who is a member");
        let a = crate::action(ActionKind::Revoke, target.clone(), "alias-key");
        let planned = c.plan(&a, &before).await.unwrap();
        c.execute(&a, &before).await.unwrap();
        // The write removed alice herself, under her key.
        assert!(!load(&path).unwrap().groups["engineering"].members.contains(&"alice".to_owned()));
        assert_eq!(c.snapshot(&target).await.unwrap(), planned.expected_after);
    });
}
