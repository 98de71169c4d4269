//! Building fake orgs and connectors for the tests.

use std::path::PathBuf;
use std::sync::Arc;

use remediation_connector_http::{RecordingSleeper, SecretSource};
use remediation_connector_okta::{DEFAULT_SCOPES, OktaAuth, OktaConfig, OktaConnector, OktaParts};
use remediation_core::{Clock, ManualClock, SystemClock};
use remediation_testkit::api_description::ApiDescription;
use remediation_testkit::fakes::okta::FakeOkta;
use serde_json::json;

/// The API token the fake accepts with full rights.
pub(crate) const TOKEN: &str = "00fake-okta-api-token-full";
/// An API token of a read-only admin.
pub(crate) const READ_ONLY_TOKEN: &str = "00fake-okta-api-token-readonly";
/// The service app's client id.
pub(crate) const CLIENT_ID: &str = "0oa-remediation-service";

pub(crate) fn key_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../remediation-testkit/keys/test-rsa-private.pem"))
}

/// How the connector authenticates in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    Ssws,
    ReadOnly,
    PrivateKeyJwt,
}

pub(crate) struct Built {
    pub connector: Arc<OktaConnector>,
    pub sleeper: RecordingSleeper,
    pub _dir: tempfile::TempDir,
}

/// The `00u…` id of the break-glass user the test configuration protects.
pub(crate) const BREAKGLASS_ID: &str = "00ubreakglass01";
/// Its login.
pub(crate) const BREAKGLASS_LOGIN: &str = "breakglass@example.com";

/// Adds the protected break-glass user, active and in group `00gadmins`, to `fake`.
pub(crate) fn seed_breakglass(fake: &FakeOkta) {
    let org = fake.org();
    org.add_user(BREAKGLASS_ID, "ACTIVE");
    org.set_login(BREAKGLASS_ID, BREAKGLASS_LOGIN);
    org.add_group("00gadmins", "OKTA_GROUP");
    org.add_member("00gadmins", BREAKGLASS_ID);
}

pub(crate) fn config(fake: &FakeOkta, auth: Auth, dir: &tempfile::TempDir) -> OktaConfig {
    let token_file = |token: &str| {
        let p = dir.path().join(format!("token-{}", token.len()));
        std::fs::write(&p, format!("{token}\n")).expect("write token");
        SecretSource::File(p)
    };
    let auth = match auth {
        Auth::Ssws => OktaAuth::Ssws { token: token_file(TOKEN) },
        Auth::ReadOnly => OktaAuth::Ssws { token: token_file(READ_ONLY_TOKEN) },
        Auth::PrivateKeyJwt => OktaAuth::PrivateKeyJwt {
            client_id: CLIENT_ID.to_owned(),
            key_id: Some("test-key".to_owned()),
            private_key: SecretSource::File(key_path()),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        },
    };
    OktaConfig {
        allow_insecure_http: false,
        id: "okta-test".to_owned(),
        org_url: fake.org_url().to_owned(),
        auth,
        page_size: 200,
        max_pages: 10,
        request_timeout_secs: 10,
        max_retry_wait_secs: 120,
        session_log_days: 90,
        // A login in another case than the one Okta stores: logins compare case-insensitively.
        protected: vec![BREAKGLASS_LOGIN.to_uppercase()],
    }
}

pub(crate) fn connector(fake: &FakeOkta, auth: Auth, clock: Option<Arc<ManualClock>>) -> Built {
    let dir = tempfile::tempdir().expect("tempdir");
    let sleeper = RecordingSleeper::new();
    let clock: Arc<dyn Clock> = match clock {
        Some(c) => c,
        None => Arc::new(SystemClock),
    };
    let parts = OktaParts { clock, sleeper: Arc::new(sleeper.clone()) };
    let connector = OktaConnector::new(&config(fake, auth, &dir), parts).expect("connector builds");
    Built { connector: Arc::new(connector), sleeper, _dir: dir }
}

/// A fake org with the tokens and the service app registered.
pub(crate) async fn fake() -> FakeOkta {
    let fake = FakeOkta::start().await.expect("fake starts");
    // Every request the connector sends must be one Okta's API description defines.
    fake.faults().describe(Some(ApiDescription::okta().expect("description")));
    fake.org().add_api_token(TOKEN);
    fake.org().add_read_only_token(READ_ONLY_TOKEN);
    fake.org().add_service_app(CLIENT_ID);
    fake
}

/// Seeds user `u` (ACTIVE, signed in), group `g` with `u` in it and app `a` with `u`
/// assigned.
pub(crate) fn seed(fake: &FakeOkta, u: &str, g: &str, a: &str) {
    let org = fake.org();
    org.add_user(u, "ACTIVE");
    org.sign_in(u);
    org.add_group(g, "OKTA_GROUP");
    org.add_member(g, u);
    org.add_app(a);
    org.assign(a, u, json!({"role": "editor", "costCenter": "R&D"}));
}
