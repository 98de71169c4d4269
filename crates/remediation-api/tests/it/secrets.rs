//! No token or secret appears in any log line or response of a full run.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::Method;
use serde_json::json;

use crate::support::Env;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_token_or_secret_in_logs_or_responses() {
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(capture.clone()).json().finish();
    // Global, so every thread's log lines are captured (other tests' too: more to check).
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let env = Env::new();
    let mut responses = Vec::new();
    let id = env.suggest("requester", "admins").await;
    for (who, method, path, body) in [
        (Some("approver"), Method::POST, format!("/v1/actions/{id}/approve"), None),
        (Some("approver"), Method::POST, format!("/v1/actions/{id}/execute"), None),
        (Some("viewer"), Method::GET, format!("/v1/actions/{id}"), None),
        (Some("admin"), Method::GET, "/v1/settings".to_owned(), None),
        (Some("viewer"), Method::GET, "/v1/audit".to_owned(), None),
        (Some("viewer"), Method::GET, "/metrics".to_owned(), None),
        (Some("bad"), Method::GET, "/v1/actions".to_owned(), None),
        (Some("viewer"), Method::POST, "/v1/kill-switch".to_owned(), Some(json!({"on": true, "reason": "x"}))),
        (Some("approver"), Method::POST, format!("/v1/actions/{id}/rollback"), None),
    ] {
        let (status, body) = env.call(who, method, &path, body).await;
        responses.push(format!("{status} {body}"));
    }
    // A managed connection's secrets are write-only: sealed, never echoed, never logged.
    const CONNECTION_SECRET: &str = "connection-secret-never-echoed-4f1e";
    let created = json!({"id": "sbx-api", "type": "sandbox", "settings": {"path": "api.json"},
                         "secrets": {"token": CONNECTION_SECRET}, "scope": {"domains": ["example.com"]}});
    let (status, body) = env.call(Some("admin"), Method::POST, "/v1/connections", Some(created.clone())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["secret_names"], json!(["token"]), "{body}");
    responses.push(format!("{status} {body}"));
    let (status, body) = env.call(Some("requester"), Method::POST, "/v1/connections", Some(created)).await;
    assert_eq!(status, 403, "admins only: {body}");
    let patch = json!({"secrets": {"token": format!("{CONNECTION_SECRET}-2")}});
    for (who, method, path, body) in [
        (Some("viewer"), Method::GET, "/v1/connections".to_owned(), None),
        (Some("viewer"), Method::GET, "/v1/connections/sbx-api".to_owned(), None),
        (Some("admin"), Method::PATCH, "/v1/connections/sbx-api".to_owned(), Some(patch)),
        (Some("admin"), Method::POST, "/v1/connections/sbx-api/test".to_owned(), None),
        (Some("admin"), Method::POST, "/v1/connections/sbx-api/disable".to_owned(), None),
        (Some("admin"), Method::POST, "/v1/connections/sbx-api/enable".to_owned(), None),
        (Some("viewer"), Method::GET, "/v1/audit".to_owned(), None),
        (Some("admin"), Method::DELETE, "/v1/connections/sbx-api".to_owned(), None),
    ] {
        let (status, body) = env.call(who, method, &path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        responses.push(format!("{status} {body}"));
    }
    let (status, body) = env.call(Some("admin"), Method::POST, "/v1/connections/sandbox/disable", None).await;
    assert_eq!(status, 409, "the configuration's connector is read-only: {body}");
    // The approval page: a failed and a good sign-in, an approval through a form.
    let id2 = env.suggest("requester", "engineering").await;
    let mut browser = crate::ui::Browser::new(env.app.clone());
    let csrf = browser.get().await.csrf();
    responses.push(browser.post("/login", &[("csrf", &csrf), ("token", "rmt_not-a-token")]).await.body);
    let page = browser.sign_in(env.token("approver")).await;
    browser.post(&format!("/ui/actions/{id2}/approve"), &[("csrf", &page.csrf())]).await;
    responses.push(page.body);
    responses.push(browser.get().await.body);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("/v1/actions"), "the trace layer logged nothing: {logs}");
    let everything = format!("{logs}\n{}", responses.join("\n"));
    for (name, token) in &env.tokens {
        assert!(!everything.contains(token.as_str()), "token {name} leaked");
        assert!(!everything.contains(&token[4..20]), "part of token {name} leaked");
        let hash = remediation_runtime::tokens::hash(&secrecy::SecretString::from(token.clone()));
        assert!(!everything.contains(&hash), "hash of token {name} leaked");
    }
    assert!(!everything.contains("rmt_not-a-token"), "a presented bad token leaked");
    assert!(!everything.contains(CONNECTION_SECRET), "a connection's secret leaked");
    assert!(!everything.contains(&env.audit_key_hex), "the audit key leaked");
}
