//! Read-only checks against a real tenant, when one is configured:
//! `REMEDIATION_TEST_ENTRA_TENANT`, `REMEDIATION_TEST_ENTRA_CLIENT_ID` and
//! `REMEDIATION_TEST_ENTRA_CLIENT_SECRET` (an app registration's secret; only a token request
//! and read requests are sent).

use remediation_connector_entra::{Credential, DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, EntraConfig, EntraConnector};
use remediation_connector_http::SecretSource;
use remediation_core::Connector;

#[tokio::test]
async fn a_real_tenant_answers_health_and_permission_checks() {
    let (Ok(tenant), Ok(client)) =
        (std::env::var("REMEDIATION_TEST_ENTRA_TENANT"), std::env::var("REMEDIATION_TEST_ENTRA_CLIENT_ID"))
    else {
        eprintln!(
            "skipping: no real Entra tenant; set REMEDIATION_TEST_ENTRA_TENANT, REMEDIATION_TEST_ENTRA_CLIENT_ID \
             and REMEDIATION_TEST_ENTRA_CLIENT_SECRET"
        );
        return;
    };
    let config = EntraConfig {
        allow_insecure_http: false,
        id: "entra-live".into(),
        tenant_id: tenant,
        client_id: client,
        credential: Credential::ClientSecret {
            secret: SecretSource::Env("REMEDIATION_TEST_ENTRA_CLIENT_SECRET".into()),
        },
        login_url: DEFAULT_LOGIN_URL.into(),
        graph_url: DEFAULT_GRAPH_URL.into(),
        scope: None,
        protected: vec![],
    };
    let c = EntraConnector::new(&config).expect("connector");
    let health = c.health().await.expect("health");
    assert!(health.healthy, "{}", health.detail);
    let permissions = c.check_permissions().await.expect("permissions");
    eprintln!("missing permissions: {:?}", permissions.missing);
}
