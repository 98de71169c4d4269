//! The conformance suite itself: a faithful connector passes, and each kind of contract breach
//! is caught.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use futures_like::catch;
use remediation_core::{ActionKind, CanonicalTarget, Connector, ConnectorError, ConnectorErrorKind, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, Subject};
use remediation_testkit::{FakeConnector, Method, TargetBuilder};
use serde_json::json;

mod futures_like {
    use std::future::Future;

    /// Runs `f` and returns its panic message, if it panicked.
    pub(crate) fn catch<F: Future<Output = ()>>(f: F) -> Option<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(f)));
        result.err().map(|p| p.downcast_ref::<String>().cloned().unwrap_or_default())
    }
}

const SECRET: &str = "s3cr3t-token-value";

struct Fake {
    connector: Arc<FakeConnector>,
}

fn membership(user: &str) -> Target {
    TargetBuilder::new().identity(user).resource("admins").grant_type("group_membership").build()
}

fn account(user: &str) -> Target {
    TargetBuilder::new().identity(user).no_resource().grant_type("account").build()
}

impl Fake {
    fn new() -> Self {
        let connector = FakeConnector::new("fake")
            .with_target(membership("alice"), json!({"granted": true}))
            .with_target(membership("bob"), json!({"granted": true}))
            .with_target(account("carol"), json!({"active": true}))
            .with_target(account("dave"), json!({"sessions": 2}))
            .with_target(account("erin"), json!({"password_reset_required": false}))
            .with_target(membership("root"), json!({"granted": true}))
            .with_target(membership("Root"), json!({"granted": true}));
        // Two spellings of one protected account, as a provider that resolves aliases reports them.
        for target in [membership("root"), membership("Root")] {
            connector.set_protected(&target, true);
            connector.set_canonical(&target, Some(CanonicalTarget::with_resource("u-0001", "g-admins")));
        }
        Self { connector: Arc::new(connector) }
    }
}

#[async_trait]
impl Subject for Fake {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector) as _
    }
    fn debug_repr(&self) -> String {
        format!("{:?}", self.connector)
    }
    fn secrets(&self) -> Vec<String> {
        vec![SECRET.to_owned()]
    }
    async fn cases(&self) -> Vec<Case> {
        vec![
            Case::new("revoke", ActionKind::Revoke, membership("alice")),
            Case::new("reduce", ActionKind::Reduce { to: "member".into() }, membership("bob")),
            Case::new("suspend", ActionKind::Suspend, account("carol")),
            Case::new("revoke sessions", ActionKind::RevokeSessions, account("dave")),
            Case::new("force reset", ActionKind::ForcePasswordReset, account("erin")),
        ]
    }
    fn missing(&self, grant_type: &str) -> Target {
        TargetBuilder::new().identity("ghost").grant_type(grant_type).build()
    }
    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        None
    }
    async fn protected_aliases(&self) -> Vec<AliasCase> {
        vec![AliasCase::new("protected root", ActionKind::Revoke, membership("root"), membership("Root"))]
    }
    fn requests_served(&self) -> Option<u64> {
        // The fake counts method calls, not requests; the writes it applied stand in for them.
        Some(u64::try_from(self.connector.applied_keys().len()).unwrap())
    }
}

#[test]
fn a_faithful_connector_passes() {
    assert_eq!(catch(async { conformance::semantic(&Fake::new()).await }), None);
}

#[test]
fn writes_that_do_not_land_are_caught() {
    let fake = Fake::new();
    fake.connector.drop_writes(true);
    let msg = catch(async move { conformance::semantic(&fake).await }).unwrap();
    assert!(msg.contains("revoke: state after execute"), "{msg}");
}

#[test]
fn a_leaked_secret_is_caught() {
    let fake = Fake::new();
    fake.connector.fail(
        Method::Snapshot,
        ConnectorError::new(ConnectorErrorKind::Transient, format!("upstream said: bad token {SECRET}")),
    );
    let msg = catch(async move { conformance::semantic(&fake).await }).unwrap();
    assert!(msg.contains("a secret leaked"), "{msg}");
}

#[test]
fn a_capability_without_a_case_is_caught() {
    struct Partial(Fake);
    #[async_trait]
    impl Subject for Partial {
        fn connector(&self) -> Arc<dyn Connector> {
            self.0.connector()
        }
        fn debug_repr(&self) -> String {
            self.0.debug_repr()
        }
        fn secrets(&self) -> Vec<String> {
            Vec::new()
        }
        async fn cases(&self) -> Vec<Case> {
            self.0.cases().await.into_iter().take(1).collect()
        }
        fn missing(&self, grant_type: &str) -> Target {
            self.0.missing(grant_type)
        }
        async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
            None
        }
        async fn protected_aliases(&self) -> Vec<AliasCase> {
            self.0.protected_aliases().await
        }
        fn requests_served(&self) -> Option<u64> {
            None
        }
    }
    let msg = catch(async { conformance::semantic(&Partial(Fake::new())).await }).unwrap();
    assert!(msg.contains("capability (suspend, account) has no case"), "{msg}");
}

#[test]
fn an_alias_that_escapes_protection_is_caught() {
    let fake = Fake::new();
    // The connector compares the caller's spelling: the alias reads as unprotected.
    fake.connector.set_protected(&membership("Root"), false);
    let msg = catch(async move { conformance::semantic(&fake).await }).unwrap();
    assert!(msg.contains("protected root: the alias group_membership:Root@admins does not read as protected"), "{msg}");
    assert!(msg.contains("an action on the alias group_membership:Root@admins of protected"), "{msg}");
}

#[test]
fn an_alias_resolved_to_another_id_is_caught() {
    let fake = Fake::new();
    fake.connector.set_canonical(&membership("Root"), Some(CanonicalTarget::identity("u-0002")));
    let msg = catch(async move { conformance::semantic(&fake).await }).unwrap();
    assert!(msg.contains("protected root: the alias resolves to"), "{msg}");
}
