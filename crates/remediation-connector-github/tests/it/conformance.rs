//! The GitHub connector passes the semantic and the HTTP protocol conformance suites against
//! the fake provider.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, HttpSubject, Subject};
use remediation_testkit::fakes::github::{ADMIN_TOKEN, READ_ONLY_TOKEN};
use remediation_testkit::fakes::{Faults, RequestLog};

use crate::{Fixture, reduce, target};

#[async_trait]
impl Subject for Fixture {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(Fixture::connector(self))
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", Fixture::connector(self))
    }

    fn secrets(&self) -> Vec<String> {
        vec![ADMIN_TOKEN.to_owned(), READ_ONLY_TOKEN.to_owned()]
    }

    async fn cases(&self) -> Vec<Case> {
        let (a, b, c, d, e) = (
            self.fresh("collab"),
            self.fresh("reducee"),
            self.fresh("member"),
            self.fresh("owner"),
            self.fresh("teamie"),
        );
        let g = self.fresh("outsider");
        {
            let mut s = self.fake.state();
            s.add_collaborator("acme/payments", &a, "push");
            s.add_collaborator("acme/payments", &b, "maintain");
            s.add_org_member("acme", &c, "member");
            s.add_org_member("acme", &d, "admin");
            s.add_team_member("acme", "platform", &e, "maintainer");
            s.add_collaborator("acme/payments", &g, "push");
            s.add_collaborator("acme/billing", &g, "pull");
        }
        vec![
            Case::new(
                "revoke repository collaborator",
                ActionKind::Revoke,
                target("repo_collaborator", &a, "acme/payments"),
            ),
            Case::new(
                "reduce repository collaborator",
                reduce("pull"),
                target("repo_collaborator", &b, "acme/payments"),
            ),
            Case::new("revoke organisation member", ActionKind::Revoke, target("org_member", &c, "acme")),
            Case::new("reduce organisation role", reduce("member"), target("org_role", &d, "acme")),
            Case::new("revoke team member", ActionKind::Revoke, target("team_member", &e, "acme/platform")),
            Case::new("revoke outside collaborator", ActionKind::Revoke, target("outside_collaborator", &g, "acme")),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        let resource = match grant_type {
            "repo_collaborator" => "acme/payments",
            "team_member" => "acme/platform",
            _ => "acme",
        };
        target(grant_type, "nobody-by-this-login", resource)
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let login = self.fresh("ro");
        self.fake.state().add_collaborator("acme/payments", &login, "push");
        let case = Case::new(
            "revoke with a read-only token",
            ActionKind::Revoke,
            target("repo_collaborator", &login, "acme/payments"),
        );
        Some((Arc::new(self.connector_with(READ_ONLY_TOKEN)), case))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        self.fake.state().add_org_member("acme", "breakglass-bot", "admin");
        vec![AliasCase::new(
            "login in another case",
            ActionKind::Revoke,
            target("org_member", "breakglass-bot", "acme"),
            target("org_member", "BREAKGLASS-BOT", "acme"),
        )]
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
        false
    }

    async fn idempotent_case(&self) -> Case {
        let login = self.fresh("http");
        self.fake.state().add_collaborator("acme/payments", &login, "admin");
        Case::new("reduce collaborator", reduce("triage"), target("repo_collaborator", &login, "acme/payments"))
    }

    async fn non_idempotent_case(&self) -> Option<Case> {
        // Every write is a PUT or a DELETE.
        None
    }

    async fn paged_case(&self) -> Case {
        // Four collaborators sort before the target: with two a page it is on page three.
        let login = format!("zz-{}", self.fresh("paged"));
        {
            let mut s = self.fake.state();
            for i in 0..4 {
                s.add_collaborator("acme/big", &format!("aa-{i}"), "pull");
            }
            s.add_collaborator("acme/big", &login, "push");
        }
        Case::new(
            "reduce a collaborator on page three",
            reduce("pull"),
            target("repo_collaborator", &login, "acme/big"),
        )
    }
}

#[tokio::test]
async fn github_passes_the_semantic_suite() {
    let f = Fixture::start(100, |_| {}).await;
    conformance::semantic(&f).await;
    assert_eq!(f.fake.faults().violations(), Vec::<String>::new(), "requests the API description does not allow");
}

#[tokio::test]
async fn github_passes_the_http_protocol_suite() {
    let f = Fixture::start(2, |_| {}).await;
    conformance::http_protocol(&f).await;
}
