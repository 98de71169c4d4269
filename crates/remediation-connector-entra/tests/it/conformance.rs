//! The Entra ID connector passes the semantic and the HTTP protocol conformance suites.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_entra::EntraConnector;
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, HttpSubject, Subject};
use remediation_testkit::fakes::entra;
use remediation_testkit::fakes::{Faults, RequestLog};

use crate::{Fixture, account, app_role, directory_role, membership, target};

const NOBODY: &str = "00000000-dead-4000-8000-000000000000";

struct Entra(Fixture);

#[async_trait]
impl Subject for Entra {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(self.0.connector())
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", self.0.connector())
    }

    fn secrets(&self) -> Vec<String> {
        vec![entra::CLIENT_SECRET.to_owned(), entra::READER_SECRET.to_owned()]
    }

    async fn cases(&self) -> Vec<Case> {
        let f = &self.0;
        vec![
            Case::new("suspend account", ActionKind::Suspend, account(&f.fresh_user())),
            Case::new("revoke sessions", ActionKind::RevokeSessions, account(&f.fresh_user())),
            Case::new("revoke group membership", ActionKind::Revoke, membership(&f.fresh_user(), entra::ENGINEERING)),
            Case::new("revoke directory role", ActionKind::Revoke, directory_role(&f.fresh_user())),
            Case::new("revoke app role", ActionKind::Revoke, app_role(&f.fresh_user())),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        match grant_type {
            "group_membership" => membership(NOBODY, entra::ENGINEERING),
            "directory_role" => directory_role(NOBODY),
            "app_role_assignment" => app_role(NOBODY),
            other => target(other, NOBODY, None, None),
        }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let reader: Arc<dyn Connector> = Arc::new(self.0.connector_for(&self.0.reader_config()));
        Some((reader, Case::new("suspend without permission", ActionKind::Suspend, account(&self.0.fresh_user()))))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        // The configuration protects the break-glass object id; Graph also answers for the UPN.
        let protected = account(entra::BREAK_GLASS);
        vec![
            AliasCase::new("UPN", ActionKind::Suspend, protected.clone(), account("breakglass@contoso.example")),
            AliasCase::new(
                "UPN in another case",
                ActionKind::RevokeSessions,
                protected,
                account("BreakGlass@Contoso.Example"),
            ),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        Some(self.0.fake.log().count())
    }
}

#[async_trait]
impl HttpSubject for Entra {
    fn faults(&self) -> &Faults {
        self.0.fake.faults()
    }

    fn log(&self) -> &RequestLog {
        self.0.fake.log()
    }

    fn refreshes_tokens(&self) -> bool {
        true
    }

    async fn idempotent_case(&self) -> Case {
        Case::new("suspend account", ActionKind::Suspend, account(&self.0.fresh_user()))
    }

    async fn non_idempotent_case(&self) -> Option<Case> {
        // Every write `execute` sends is safe to repeat: PATCH accountEnabled, DELETEs, and
        // revokeSignInSessions (a second revocation only moves the timestamp again).
        None
    }

    async fn paged_case(&self) -> Case {
        // 250 members, pages of at most 100: the new user is on page three.
        let user = self.0.fresh_user();
        let group = "b1900000-0000-4000-8000-0000000000b1";
        {
            let mut t = self.0.fake.tenant();
            let mut members: Vec<String> = (0..249).map(|i| format!("m{i:04}-filler")).collect();
            members.push(user.clone());
            t.groups.insert(group.into(), entra::Group { display_name: "Big".into(), group_types: vec![], members });
        }
        Case::new("group member on page three", ActionKind::Revoke, membership(&user, group))
    }
}

#[tokio::test]
async fn entra_passes_the_semantic_suite() {
    let subject = Entra(Fixture::start().await);
    conformance::semantic(&subject).await;
    assert_eq!(
        subject.0.fake.faults().violations(),
        Vec::<String>::new(),
        "requests Graph's description does not allow"
    );
}

#[tokio::test]
async fn entra_passes_the_http_protocol_suite() {
    conformance::http_protocol(&Entra(Fixture::start().await)).await;
}

#[tokio::test]
async fn entra_with_a_certificate_passes_the_semantic_suite() {
    struct Cert(Entra);
    #[async_trait]
    impl Subject for Cert {
        fn connector(&self) -> Arc<dyn Connector> {
            let f = &self.0.0;
            Arc::new(f.connector_for(&f.certificate_config()))
        }
        fn debug_repr(&self) -> String {
            let f = &self.0.0;
            format!("{:?}", f.connector_for(&f.certificate_config()))
        }
        fn secrets(&self) -> Vec<String> {
            // The key's base64 body, a line of it at least, must never show.
            entra::CERT_PRIVATE_KEY.lines().skip(1).take(3).map(str::to_owned).collect()
        }
        async fn cases(&self) -> Vec<Case> {
            self.0.cases().await
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
            self.0.requests_served()
        }
    }
    let _unused: Option<EntraConnector> = None;
    let subject = Cert(Entra(Fixture::start().await));
    conformance::semantic(&subject).await;
    assert_eq!(
        subject.0.0.fake.faults().violations(),
        Vec::<String>::new(),
        "requests Graph's description does not allow"
    );
}
