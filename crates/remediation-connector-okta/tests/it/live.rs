//! Read-only checks against a real Okta org, when one is configured:
//! `REMEDIATION_TEST_OKTA_URL` (`https://example.okta.com`) and
//! `REMEDIATION_TEST_OKTA_TOKEN` (an API token; only read requests are sent).

use remediation_connector_http::SecretSource;
use remediation_connector_okta::{OktaAuth, OktaConfig, OktaConnector, OktaParts};
use remediation_core::Connector;

#[tokio::test]
async fn a_real_org_answers_health_and_permission_checks() {
    let Ok(url) = std::env::var("REMEDIATION_TEST_OKTA_URL") else {
        eprintln!("skipping: no real Okta org; set REMEDIATION_TEST_OKTA_URL and REMEDIATION_TEST_OKTA_TOKEN");
        return;
    };
    let config = OktaConfig {
        allow_insecure_http: false,
        id: "okta-live".to_owned(),
        org_url: url,
        auth: OktaAuth::Ssws { token: SecretSource::Env("REMEDIATION_TEST_OKTA_TOKEN".to_owned()) },
        page_size: 200,
        max_pages: 5,
        request_timeout_secs: 30,
        max_retry_wait_secs: 60,
        session_log_days: 7,
        protected: Vec::new(),
    };
    let c = OktaConnector::new(&config, OktaParts::default()).expect("connector");
    let health = c.health().await.expect("health");
    assert!(health.healthy, "{}", health.detail);
    let permissions = c.check_permissions().await.expect("permissions");
    eprintln!("missing permissions: {:?}", permissions.missing);
}
