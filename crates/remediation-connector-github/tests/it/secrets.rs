//! The token never appears in `Debug`, errors, snapshots or outcomes; missing scopes are
//! named; protected targets are refused.

use remediation_connector_github::{GitHubConfig, GitHubConnector, GitHubError};
use remediation_connector_http::SecretSource;
use remediation_core::{ActionKind, Connector, ConnectorErrorKind};
use remediation_testkit::fakes::github::{ADMIN_TOKEN, READ_ONLY_TOKEN};

use crate::{Fixture, action, target};

#[tokio::test]
async fn the_token_appears_nowhere() {
    let f = Fixture::start(100, |s| s.add_collaborator("acme/payments", "octocat", "push")).await;
    let c = f.connector();
    let t = target("repo_collaborator", "octocat", "acme/payments");
    let before = c.snapshot(&t).await.unwrap();
    let out = c.execute(&action(ActionKind::Revoke, t), &before).await.unwrap();
    let err = c.snapshot(&target("repo_collaborator", "nobody", "acme/payments")).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound);
    assert!(err.request_id.is_some(), "GitHub's X-GitHub-Request-Id is kept");
    for text in [format!("{c:?}"), format!("{before:?}"), format!("{out:?}"), format!("{err:?}"), err.to_string()] {
        assert!(!text.contains(ADMIN_TOKEN), "{text}");
    }
    let log = serde_json::to_string(&f.fake.log().all()).unwrap();
    assert!(!log.contains(ADMIN_TOKEN), "the request log masks the token");
}

#[tokio::test]
async fn missing_scopes_are_named() {
    let f = Fixture::start(100, |s| {
        s.add_token("ghp_onlyRepoScope0123456789abcdefABCDEFgh", "bot2", Some(&["repo"]), true);
    })
    .await;
    f.fake.faults().allow_token("ghp_onlyRepoScope0123456789abcdefABCDEFgh");
    let c = f.connector_with("ghp_onlyRepoScope0123456789abcdefABCDEFgh");
    assert_eq!(c.check_permissions().await.unwrap().missing, ["read:org", "admin:org"]);
    assert!(f.connector().check_permissions().await.unwrap().all_granted());
    // A fine-grained token sends no X-OAuth-Scopes: its permissions are unknown, not granted.
    f.fake.state().tokens.get_mut(READ_ONLY_TOKEN).unwrap().scopes = None;
    let p = f.connector_with(READ_ONLY_TOKEN).check_permissions().await.unwrap();
    assert!(p.can_write() && !p.all_granted(), "{p:?}");
    assert_eq!(p.unknown, ["repo", "read:org", "admin:org"], "{p:?}");
}

#[tokio::test]
async fn protected_targets_are_refused_before_any_write() {
    let f = Fixture::start(100, |s| s.add_collaborator("acme/infrastructure", "octocat", "admin")).await;
    let c = f.connector();
    let t = target("repo_collaborator", "octocat", "acme/infrastructure");
    let before = c.snapshot(&t).await.unwrap();
    assert!(before.protected);
    let err = c.execute(&action(ActionKind::Revoke, t), &before).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Forbidden);
    assert!(f.fake.log().all().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn a_user_protected_by_numeric_id_is_protected_under_every_spelling_of_its_login() {
    let f = Fixture::start(100, |s| s.add_org_member("acme", "Root-Admin", "admin")).await;
    let t = |login: &str| target("org_member", login, "acme");
    let id = f.connector().snapshot(&t("root-admin")).await.unwrap().canonical.unwrap().identity;
    let mut config = f.config(ADMIN_TOKEN);
    config.protected = vec![id.clone()];
    let client = GitHubConnector::client_builder(&config).unwrap().build().unwrap();
    let c = GitHubConnector::with_client("github", &config, client);
    for login in ["root-admin", "ROOT-ADMIN", "Root-Admin"] {
        let s = c.snapshot(&t(login)).await.unwrap();
        assert!(s.protected, "{login}");
        assert_eq!(s.canonical.unwrap().identity, id, "{login}");
    }
    // A direct call to execute is refused as well, before any write.
    let before = c.snapshot(&t("ROOT-ADMIN")).await.unwrap();
    let err = c.execute(&action(ActionKind::Revoke, t("ROOT-ADMIN")), &before).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Forbidden, "{err}");
    assert!(f.fake.log().all().iter().all(|r| r.method == "GET"));
    let other = c.snapshot(&t("octocat-elsewhere")).await;
    assert!(other.is_err() || !other.unwrap().protected);
}

#[test]
fn a_missing_token_file_is_named() {
    let config = GitHubConfig {
        allow_insecure_http: false,
        token: SecretSource::File("/nonexistent/github-token".into()),
        api_base: "https://api.github.com".into(),
        protected: Vec::new(),
        page_size: 100,
    };
    let err = GitHubConnector::new("github", &config).unwrap_err();
    assert!(matches!(err, GitHubError::Token { .. }));
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("/nonexistent/github-token"), "{source}");
}
