//! No secret (client secret, private key, access token) appears in `Debug`, errors or logs.

use remediation_connector_entra::{Credential, EntraConnector};
use remediation_connector_http::SecretSource;
use remediation_core::{Connector, ConnectorErrorKind};
use remediation_testkit::fakes::entra;

use crate::{Fixture, account};

#[tokio::test]
async fn a_wrong_secret_is_unauthenticated_and_never_quoted() {
    let f = Fixture::start().await;
    std::fs::write(f.file("wrong"), "wrong-secret-value-4242").unwrap();
    let config = f.config(entra::CLIENT_ID, Credential::ClientSecret { secret: SecretSource::File(f.file("wrong")) });
    let c = f.connector_for(&config);
    let debug = format!("{c:?} {config:?}");
    let e = c.snapshot(&account(entra::ALICE)).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated, "{e}");
    assert!(e.message.contains("AADSTS7000215"), "the provider's message is kept: {e}");
    for text in [debug, e.to_string(), format!("{e:?}")] {
        assert!(!text.contains("wrong-secret-value-4242"), "{text}");
    }
}

#[tokio::test]
async fn access_tokens_and_keys_stay_out_of_debug_and_errors() {
    let f = Fixture::start().await;
    let c = f.connector_for(&f.certificate_config());
    c.check_permissions().await.unwrap();
    // The access token (a JWT: its header starts `eyJhbGci` or `eyJ0eXAi`) may show in neither
    // Debug nor errors.
    f.fake.faults().expire_tokens();
    f.fake.faults().reject_auth_next(10);
    let e = c.snapshot(&account(entra::ALICE)).await.unwrap_err();
    let shown = format!("{c:?} {e} {e:?}");
    assert!(!shown.contains("eyJhbGci") && !shown.contains("eyJ0eXAi"), "a JWT leaked: {shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let key_line = entra::CERT_PRIVATE_KEY.lines().nth(1).unwrap();
    assert!(!shown.contains(key_line), "{shown}");
}

#[test]
fn a_missing_secret_file_is_a_config_error_without_the_secret() {
    let config = remediation_connector_entra::EntraConfig {
        allow_insecure_http: false,
        id: "entra".into(),
        tenant_id: entra::TENANT.into(),
        client_id: entra::CLIENT_ID.into(),
        credential: Credential::ClientSecret { secret: SecretSource::File("/nonexistent/secret".into()) },
        login_url: "http://127.0.0.1:9".into(),
        graph_url: "http://127.0.0.1:9/v1.0".into(),
        scope: None,
        protected: vec![],
    };
    let e = EntraConnector::new(&config).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/secret"), "{e}");
}
