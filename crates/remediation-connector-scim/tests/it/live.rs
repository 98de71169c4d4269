//! Read-only checks against a real SCIM service, when one is configured:
//! `REMEDIATION_TEST_SCIM_URL` (the base URL, `.../scim/v2`) and `REMEDIATION_TEST_SCIM_TOKEN`
//! (a bearer token; only `/ServiceProviderConfig` is read).

use remediation_connector_http::SecretSource;
use remediation_connector_scim::{ScimConfig, ScimConnector};
use remediation_core::Connector;

#[tokio::test]
async fn a_real_service_answers_health_and_permission_checks() {
    let Ok(url) = std::env::var("REMEDIATION_TEST_SCIM_URL") else {
        eprintln!("skipping: no real SCIM service; set REMEDIATION_TEST_SCIM_URL and REMEDIATION_TEST_SCIM_TOKEN");
        return;
    };
    let config = ScimConfig {
        allow_insecure_http: false,
        id: "scim-live".into(),
        base_url: url,
        token: SecretSource::Env("REMEDIATION_TEST_SCIM_TOKEN".into()),
        protected: vec![],
        page_size: 100,
    };
    let c = ScimConnector::new(&config).expect("connector");
    let health = c.health().await.expect("health");
    assert!(health.healthy, "{}", health.detail);
    let permissions = c.check_permissions().await.expect("permissions");
    eprintln!("missing: {:?}", permissions.missing);
}
