//! The Google connector passes the semantic and the HTTP protocol conformance suites against
//! the fake provider.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, Case, HttpSubject, Subject};
use remediation_testkit::fakes::google::TEST_PRIVATE_KEY;
use remediation_testkit::fakes::{Faults, RequestLog};

use crate::{ADMIN, Fixture, account, membership};

#[async_trait]
impl Subject for Fixture {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(Fixture::connector(self))
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", Fixture::connector(self))
    }

    fn secrets(&self) -> Vec<String> {
        // The whole key, and its first line of base64 in case a fragment leaks.
        let first = TEST_PRIVATE_KEY.lines().nth(1).unwrap_or_default().to_owned();
        vec![TEST_PRIVATE_KEY.to_owned(), first]
    }

    async fn cases(&self) -> Vec<Case> {
        vec![
            Case::new(
                "revoke group membership",
                ActionKind::Revoke,
                membership(&self.fresh_member(), "eng@example.com"),
            ),
            Case::new("suspend account", ActionKind::Suspend, account(&self.fresh_user("suspend"))),
            Case::new("revoke sessions", ActionKind::RevokeSessions, account(&self.fresh_user("signout"))),
            Case::new("force password reset", ActionKind::ForcePasswordReset, account(&self.fresh_user("reset"))),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        match grant_type {
            "group_membership" => membership("nobody@example.com", "no-such-group@example.com"),
            other => Target { grant_type: other.to_owned(), ..account("nobody@example.com") },
        }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        // A read-only administrator may read users but change nothing.
        let case = Case::new("suspend as a read-only admin", ActionKind::Suspend, account(&self.fresh_user("ro")));
        Some((Arc::new(self.connector_as("reader@example.com")), case))
    }

    fn requests_served(&self) -> Option<u64> {
        Some(self.fake.log().count())
    }
}

#[async_trait]
impl HttpSubject for Fixture {
    fn faults(&self) -> &Faults {
        self.fake.faults()
    }

    fn log(&self) -> &RequestLog {
        self.fake.log()
    }

    fn refreshes_tokens(&self) -> bool {
        true
    }

    async fn idempotent_case(&self) -> Case {
        Case::new("suspend", ActionKind::Suspend, account(&self.fresh_user("http")))
    }

    async fn non_idempotent_case(&self) -> Option<Case> {
        // Every write `execute` sends is a DELETE, a PATCH of absolute values or a sign-out:
        // all safe to repeat.
        None
    }

    async fn paged_case(&self) -> Case {
        self.idempotent_case().await
    }

    fn paginates(&self) -> bool {
        // Members and users are read by key (`members.get`, `users.get`), never listed.
        false
    }
}

#[tokio::test]
async fn google_passes_the_semantic_suite() {
    let f = Fixture::start(|_| {}).await;
    conformance::semantic(&f).await;
    // The sign-out ran once: the second execute of the same action was recognised as done.
    let state = f.fake.state();
    let signed_out: Vec<u32> =
        state.users.values().filter(|u| u.primary_email.starts_with("signout-")).map(|u| u.sign_outs).collect();
    assert_eq!(signed_out, [1]);
    assert_eq!(state.user(ADMIN).unwrap().sign_outs, 0);
}

#[tokio::test]
async fn google_passes_the_http_protocol_suite() {
    let f = Fixture::start(|_| {}).await;
    conformance::http_protocol(&f).await;
}
