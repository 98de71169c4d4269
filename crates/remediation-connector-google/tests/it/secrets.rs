//! The service account's private key never leaves secret memory: not in `Debug`, errors,
//! logs, snapshots or outcomes, nor in what the provider receives beyond the signed
//! assertion.

use remediation_connector_google::{GoogleConfig, GoogleConnector, GoogleError};
use remediation_core::{ActionKind, Connector};
use remediation_testkit::fakes::google::TEST_PRIVATE_KEY;

use crate::{Fixture, account, action};

fn key_body() -> String {
    TEST_PRIVATE_KEY.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("")
}

fn leaks(text: &str) -> bool {
    text.contains(TEST_PRIVATE_KEY) || TEST_PRIVATE_KEY.lines().filter(|l| l.len() > 20).any(|l| text.contains(l))
}

#[tokio::test]
async fn the_private_key_appears_nowhere() {
    let f = Fixture::start(|_| {}).await;
    let c = f.connector();
    assert!(!leaks(&format!("{c:?}")));
    let user = f.fresh_user("secret");
    let before = c.snapshot(&account(&user)).await.unwrap();
    let a = action(ActionKind::Suspend, account(&user));
    let out = c.execute(&a, &before).await.unwrap();
    let err = c.snapshot(&account("nobody@example.com")).await.unwrap_err();
    for text in [format!("{before:?}"), format!("{out:?}"), format!("{err:?}"), err.to_string()] {
        assert!(!leaks(&text), "{text}");
    }
    // What the provider received: the assertion is masked in the log, and nothing else
    // carries the key.
    let log = serde_json::to_string(&f.fake.log().all()).unwrap();
    assert!(!leaks(&log));
    assert!(!log.contains(&key_body()[..40]));
}

#[test]
fn a_broken_key_file_is_named_but_not_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.json");
    // A key file whose private key is not PEM: the error must not echo it.
    let bad = serde_json::json!({"type": "service_account", "client_email": "sa@x.iam.gserviceaccount.com",
        "private_key_id": "k", "private_key": "NOT-A-PEM-but-secret-material-0123456789", "token_uri": "http://127.0.0.1:1/token"});
    std::fs::write(&path, bad.to_string()).unwrap();
    let config = GoogleConfig {
        allow_insecure_http: false,
        credentials_file: path,
        admin: "admin@example.com".into(),
        api_base: "http://127.0.0.1:1/admin/directory/v1".into(),
        token_url: None,
        protected: Vec::new(),
        protect_admins: true,
    };
    let err = GoogleConnector::new("google", &config).unwrap_err();
    let mut chain = format!("{err} | {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(" | {s}"));
        source = s.source();
    }
    assert!(matches!(err, GoogleError::InvalidKey { .. }), "{chain}");
    assert!(chain.contains("sa.json"), "{chain}");
    assert!(!chain.contains("secret-material"), "{chain}");
}

#[tokio::test]
async fn check_permissions_names_what_is_missing() {
    let f = Fixture::start(|s| {
        s.add_user("helpdesk@example.com", remediation_testkit::fakes::google::AdminRole::None);
    })
    .await;
    assert!(f.connector().check_permissions().await.unwrap().all_granted());
    // The impersonated user is no administrator.
    let missing = f.connector_as("helpdesk@example.com").check_permissions().await.unwrap().missing;
    assert_eq!(missing, ["administrator role of the impersonated `admin`"]);
    // A scope was not delegated: Google refuses the token for the whole list.
    let sa = remediation_testkit::fakes::google::TEST_CLIENT_EMAIL;
    f.fake
        .state()
        .service_accounts
        .get_mut(sa)
        .unwrap()
        .delegated_scopes
        .remove(remediation_testkit::fakes::google::SCOPE_USER_SECURITY);
    let missing = f.connector().check_permissions().await.unwrap().missing;
    assert_eq!(missing.len(), 4, "{missing:?}");
    assert!(missing.iter().all(|m| m.starts_with("https://www.googleapis.com/auth/")), "{missing:?}");
}

#[tokio::test]
async fn a_delegated_admin_leaves_its_role_unknown() {
    let f = Fixture::start(|s| {
        s.add_user("reader@example.com", remediation_testkit::fakes::google::AdminRole::ReadOnly);
    })
    .await;
    let p = f.connector_as("reader@example.com").check_permissions().await.unwrap();
    assert_eq!(p.unknown, ["administrator role of the impersonated `admin`"], "{p:?}");
    assert!(p.missing.is_empty() && !p.all_granted() && p.unknown_reason.is_some(), "{p:?}");
}
