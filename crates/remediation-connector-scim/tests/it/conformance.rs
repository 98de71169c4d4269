//! The SCIM connector passes the semantic and the HTTP protocol conformance suites.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, HttpSubject, Subject};
use remediation_testkit::fakes::scim;
use remediation_testkit::fakes::{Faults, RequestLog};

use crate::{Fixture, account, membership};

const NOBODY: &str = "00000000-dead-4000-8000-000000000000";

struct Scim(Fixture);

#[async_trait]
impl Subject for Scim {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(self.0.connector())
    }

    fn debug_repr(&self) -> String {
        format!("{:?} {:?}", self.0.connector(), self.0.config("write"))
    }

    fn secrets(&self) -> Vec<String> {
        vec![scim::WRITE_TOKEN.to_owned(), scim::READ_TOKEN.to_owned()]
    }

    async fn cases(&self) -> Vec<Case> {
        let f = &self.0;
        vec![
            Case::new("deactivate account", ActionKind::Suspend, account(&f.fresh_user())),
            Case::new("remove group member", ActionKind::Revoke, membership(&f.fresh_user(), scim::TOUR_GUIDES)),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        match grant_type {
            "group_membership" => membership(NOBODY, scim::TOUR_GUIDES),
            _ => account(NOBODY),
        }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let reader: Arc<dyn Connector> = Arc::new(self.0.connector_for(&self.0.config("read")));
        Some((
            reader,
            Case::new("deactivate with a read-only token", ActionKind::Suspend, account(&self.0.fresh_user())),
        ))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        // The configuration protects the break-glass resource id; its userName names it too.
        if let Some(g) = self.0.fake.directory().groups.get_mut(scim::TOUR_GUIDES) {
            g.members.push(scim::BREAK_GLASS.to_owned());
        }
        vec![
            AliasCase::new(
                "userName",
                ActionKind::Suspend,
                account(scim::BREAK_GLASS),
                account("breakglass@example.com"),
            ),
            AliasCase::new(
                "userName in another case, in a group",
                ActionKind::Revoke,
                membership(scim::BREAK_GLASS, scim::TOUR_GUIDES),
                membership("BreakGlass@Example.com", scim::TOUR_GUIDES),
            ),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        Some(self.0.fake.log().count())
    }
}

#[async_trait]
impl HttpSubject for Scim {
    fn faults(&self) -> &Faults {
        self.0.fake.faults()
    }

    fn log(&self) -> &RequestLog {
        self.0.fake.log()
    }

    fn refreshes_tokens(&self) -> bool {
        false
    }

    async fn idempotent_case(&self) -> Case {
        Case::new("deactivate account", ActionKind::Suspend, account(&self.0.fresh_user()))
    }

    async fn non_idempotent_case(&self) -> Option<Case> {
        // The connector sends PATCHes only, each safe to repeat (If-Match guards them).
        None
    }

    async fn paged_case(&self) -> Case {
        // The user is in 120 groups, pages hold at most 50: the target group is on page three.
        let user = self.0.fresh_user();
        let mut d = self.0.fake.directory();
        d.groups.get_mut(scim::TOUR_GUIDES).unwrap().members.retain(|m| m != &user);
        for i in 0..120 {
            d.add_group(&format!("g{i:04}-paged"), &format!("Paged {i}"), &[user.as_str()]);
        }
        Case::new("group on page three", ActionKind::Revoke, membership(&user, "g0119-paged"))
    }
}

#[tokio::test]
async fn scim_passes_the_semantic_suite() {
    conformance::semantic(&Scim(Fixture::start().await)).await;
}

#[tokio::test]
async fn scim_passes_the_http_protocol_suite() {
    conformance::http_protocol(&Scim(Fixture::start().await)).await;
}
