//! The Google connector passes the semantic and the HTTP protocol conformance suites against
//! the fake provider.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_core::{ActionKind, Connector, SystemClock, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, HttpSubject, Subject};
use remediation_testkit::fakes::google::{AdminRole, TEST_PRIVATE_KEY};
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

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        // The configuration protects break-glass@; the API also answers for its alias and id.
        let id = {
            let mut state = self.fake.state();
            let user = state.add_user("break-glass@example.com", AdminRole::None);
            user.aliases = vec!["bg@example.com".to_owned()];
            user.id.clone()
        };
        self.fake.state().add_member("eng@example.com", "break-glass@example.com", "MEMBER", "ALL_MAIL");
        let protected = account("break-glass@example.com");
        vec![
            AliasCase::new("an email alias", ActionKind::Suspend, protected.clone(), account("bg@example.com")),
            AliasCase::new("the numeric id", ActionKind::Suspend, protected, account(&id)),
            AliasCase::new(
                "an email alias in a group",
                ActionKind::Revoke,
                membership("break-glass@example.com", "eng@example.com"),
                membership("BG@example.com", "eng@example.com"),
            ),
        ]
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
    assert_eq!(f.fake.faults().violations(), Vec::<String>::new(), "requests the API description does not allow");
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

#[tokio::test]
async fn every_name_of_a_protected_user_is_protected() {
    let f = Fixture::start(|s| {
        s.add_user("break-glass@example.com", AdminRole::None).aliases = vec!["bg@example.com".to_owned()];
        s.add_member("eng@example.com", "break-glass@example.com", "MEMBER", "ALL_MAIL");
        // Protected by its alias in a second connector's configuration.
        s.add_user("ops-root@example.com", AdminRole::None).aliases = vec!["root@example.com".to_owned()];
        s.add_member("eng@example.com", "ops-root@example.com", "MEMBER", "ALL_MAIL");
    })
    .await;
    let id = f.fake.state().user("break-glass@example.com").unwrap().id.clone();
    let c = Fixture::connector(&f);
    for target in [
        account("bg@example.com"),
        account("BG@Example.com"),
        account(&id),
        membership("bg@example.com", "eng@example.com"),
        membership(&id, "eng@example.com"),
    ] {
        let s = c.snapshot(&target).await.unwrap();
        assert!(s.protected, "{target} is not protected");
    }
    assert_eq!(c.snapshot(&account("bg@example.com")).await.unwrap().canonical.unwrap().identity, id);
    // A protected alias protects the user under its primary email and its id.
    let mut config = f.config(ADMIN);
    config.protected = vec!["root@example.com".to_owned()];
    let auth = remediation_connector_google::GoogleConnector::token_source(&config, Arc::new(SystemClock)).unwrap();
    let client =
        remediation_connector_http::HttpClient::builder(config.api_base.clone()).auth(Arc::new(auth)).build().unwrap();
    let by_alias = remediation_connector_google::GoogleConnector::with_client("google", &config, client).unwrap();
    assert!(by_alias.snapshot(&account("ops-root@example.com")).await.unwrap().protected);
    assert!(by_alias.snapshot(&membership("ops-root@example.com", "eng@example.com")).await.unwrap().protected);
    let m = by_alias.snapshot(&membership("ops-root@example.com", "eng@example.com")).await.unwrap();
    let root_id = f.fake.state().user("ops-root@example.com").unwrap().id.clone();
    assert_eq!(m.canonical.unwrap().identity, root_id, "a membership names the member's user id");
    assert!(!by_alias.snapshot(&account("break-glass@example.com")).await.unwrap().protected);
}
