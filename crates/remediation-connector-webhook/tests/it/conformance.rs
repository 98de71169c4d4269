//! Both conformance parts: the semantic suite and the HTTP protocol suite.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_webhook::WebhookConnector;
use remediation_core::{ActionKind, Connector, SystemClock, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, HttpSubject, Subject};
use remediation_testkit::fakes::webhook::WebhookFake;
use remediation_testkit::fakes::{Faults, RequestLog};

use crate::{READ_ONLY_SECRET, SECRET, connector, fake, fresh_identity, target};

struct Receiver {
    fake: WebhookFake,
    connector: Arc<WebhookConnector>,
}

impl Receiver {
    async fn new() -> Self {
        let fake = fake().await;
        let (connector, _) = connector(&fake, SECRET, Arc::new(SystemClock));
        Self { fake, connector }
    }

    fn case(&self, name: &str, kind: ActionKind, grant_type: &str, resource: Option<&str>) -> Case {
        Case::new(name, kind, target(grant_type, &fresh_identity(&self.fake), resource))
    }
}

#[async_trait]
impl Subject for Receiver {
    fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", self.connector)
    }

    fn secrets(&self) -> Vec<String> {
        vec![SECRET.to_owned(), READ_ONLY_SECRET.to_owned()]
    }

    async fn cases(&self) -> Vec<Case> {
        vec![
            self.case("revoke app role", ActionKind::Revoke, "app_role", Some("crm")),
            self.case("reduce app role", ActionKind::Reduce { to: "read".into() }, "app_role", Some("crm")),
            self.case("revoke license (lossy)", ActionKind::Revoke, "license", Some("office")),
            self.case("suspend account", ActionKind::Suspend, "account", None),
            self.case("revoke sessions", ActionKind::RevokeSessions, "account", None),
            self.case("force password reset", ActionKind::ForcePasswordReset, "account", None),
            self.case("notify", ActionKind::Notify, "notification", None),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        target(grant_type, "nobody-by-this-name", None)
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let (read_only, _) = connector(&self.fake, READ_ONLY_SECRET, Arc::new(SystemClock));
        Some((read_only, self.case("revoke with a read-only key", ActionKind::Revoke, "app_role", Some("crm"))))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        // The service protects `root` and answers for `administrator` as the same identity.
        self.fake.protect("root");
        self.fake.add_alias("administrator", "root");
        vec![AliasCase::new(
            "a name the service resolves",
            ActionKind::Suspend,
            target("account", "root", None),
            target("account", "administrator", None),
        )]
    }

    fn requests_served(&self) -> Option<u64> {
        Some(self.fake.log().count())
    }
}

#[async_trait]
impl HttpSubject for Receiver {
    fn faults(&self) -> &Faults {
        self.fake.faults()
    }

    fn log(&self) -> &RequestLog {
        self.fake.log()
    }

    fn refreshes_tokens(&self) -> bool {
        // An HMAC secret has nothing to refresh: a 401 is final.
        false
    }

    async fn idempotent_case(&self) -> Case {
        self.case("revoke app role", ActionKind::Revoke, "app_role", Some("crm"))
    }

    async fn non_idempotent_case(&self) -> Option<Case> {
        // Every write carries an idempotency key the receiver honours.
        None
    }

    async fn paged_case(&self) -> Case {
        self.case("revoke app role", ActionKind::Revoke, "app_role", Some("crm"))
    }

    fn paginates(&self) -> bool {
        // The receiver answers for one target at a time.
        false
    }
}

#[tokio::test]
async fn webhook_passes_the_semantic_suite() {
    conformance::semantic(&Receiver::new().await).await;
}

#[tokio::test]
async fn webhook_passes_the_http_protocol_suite() {
    conformance::http_protocol(&Receiver::new().await).await;
}
