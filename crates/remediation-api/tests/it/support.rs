//! A throw-away installation (sandbox connector, remediation enabled), tokens for every role
//! and a helper that sends one request through the router.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use remediation_api::{ApiOptions, ApiState, router};
use remediation_config::{Config, ConnectorConfig};
use remediation_core::PrincipalKind;
use remediation_core::{CloudEvent, DeliverFrom, EngineEvent, EventSink, Role, Undelivered};
use remediation_runtime::{Runtime, RuntimeOptions};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Records every event the relay delivers to it.
#[derive(Default)]
pub(crate) struct Recorder(pub(crate) Mutex<Vec<EngineEvent>>);

#[async_trait::async_trait]
impl EventSink for Recorder {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        self.0.lock().unwrap().extend(events.iter().map(|e| e.data.clone()));
        Ok(())
    }
}

/// One installation.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) state: ApiState,
    pub(crate) app: Router,
    pub(crate) events: Arc<Recorder>,
    /// (name, token) per role, and a second approver.
    pub(crate) tokens: Vec<(String, String)>,
    /// The audit checkpoint key, a secret that must never be shown.
    pub(crate) audit_key_hex: String,
}

pub(crate) fn config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.policy.enabled = true;
    config.connectors = vec![ConnectorConfig::sandbox("sandbox", "sandbox.json")];
    tweak(&mut config);
    config
}

impl Env {
    pub(crate) fn new() -> Self {
        Self::with(|_| {})
    }

    pub(crate) fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::build(tweak, None, None)
    }

    /// An installation whose engine reads time from `clock`.
    pub(crate) fn with_clock(clock: Arc<remediation_core::ManualClock>) -> Self {
        Self::build(|_| {}, Some(clock), None)
    }

    /// An installation on `store`, whose engine reads time from `clock`.
    pub(crate) fn with_store(
        store: Arc<dyn remediation_core::Store>,
        clock: Arc<remediation_core::ManualClock>,
    ) -> Self {
        Self::build(|_| {}, Some(clock), Some(store))
    }

    /// An installation configured by `tweak`, on `clock`, with `options` for the API.
    pub(crate) fn with_options(
        tweak: impl FnOnce(&mut Config),
        clock: Arc<remediation_core::ManualClock>,
        options: ApiOptions,
    ) -> Self {
        let mut env = Self::build(tweak, Some(clock), None);
        env.state = ApiState::new(env.state.runtime().clone(), options);
        env.app = router(env.state.clone());
        env
    }

    /// An installation whose engine calls `hook` at each failpoint.
    pub(crate) fn with_failpoints(tweak: impl FnOnce(&mut Config), hook: remediation_core::FailpointHook) -> Self {
        Self::build_with(tweak, None, None, Some(hook))
    }

    /// Every event delivered so far: the relay delivers what waits first.
    pub(crate) async fn recorded(&self) -> Vec<EngineEvent> {
        self.state.runtime().relay().flush(std::time::Duration::from_secs(10)).await.unwrap();
        self.events.0.lock().unwrap().clone()
    }

    fn build(
        tweak: impl FnOnce(&mut Config),
        clock: Option<Arc<remediation_core::ManualClock>>,
        store: Option<Arc<dyn remediation_core::Store>>,
    ) -> Self {
        Self::build_with(tweak, clock, store, None)
    }

    fn build_with(
        tweak: impl FnOnce(&mut Config),
        clock: Option<Arc<remediation_core::ManualClock>>,
        store: Option<Arc<dyn remediation_core::Store>>,
        failpoints: Option<remediation_core::FailpointHook>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        remediation_connector_sandbox::write_sample(dir.path().join("sandbox.json")).unwrap();
        let config = config(tweak);
        let events = Arc::new(Recorder::default());
        let options = RuntimeOptions {
            sinks: vec![remediation_runtime::relay::RelaySink::events(
                "recorder",
                events.clone(),
                DeliverFrom::Beginning,
            )],
            failpoints,
            clock: clock.map(|c| c as Arc<dyn remediation_core::Clock>),
            signing_key: Some(Arc::new(remediation_audit::LogSigningKey::from_seed(&[9; 32]))),
            store,
            ..RuntimeOptions::default()
        };
        let key = remediation_audit::AuditKey::generate();
        let audit_key_hex = key.to_hex().expose_secret().to_owned();
        let runtime = Runtime::build(&config, dir.path(), Some(key), options).unwrap();
        let mut tokens = Vec::new();
        // One principal per role, each holding one token of the same name.
        for (name, role) in [
            ("viewer", Role::Viewer),
            ("requester", Role::Requester),
            ("approver", Role::Approver),
            ("admin", Role::Admin),
            ("approver2", Role::Approver),
            ("admin2", Role::Admin),
        ] {
            let now = runtime.clock().now();
            let test = remediation_core::Actor::new("local:test", Role::Admin);
            run_store(runtime.store().create_principal(name, PrincipalKind::Person, role, &test, now)).unwrap();
            tokens.push((name.to_owned(), add_token(&runtime, name, name)));
        }
        let state = ApiState::new(Arc::new(runtime), ApiOptions { body_limit_bytes: 4096, ..ApiOptions::default() });
        let app = router(state.clone());
        Self { dir, state, app, events, tokens, audit_key_hex }
    }

    /// Gives principal `principal` another token named `name`; callable as `name` afterwards.
    pub(crate) fn add_token(&mut self, principal: &str, name: &str) {
        let token = add_token(self.state.runtime(), principal, name);
        self.tokens.push((name.to_owned(), token));
    }

    /// Creates tenant `name` with one principal per role (named `{name}-{role}`, holding one
    /// token of that name) and a sandbox connector `{name}-sandbox` of its own.
    pub(crate) async fn add_tenant(&mut self, name: &str) -> Arc<Runtime> {
        let admin = remediation_core::Actor::new("local:test", Role::Admin);
        let tenant = remediation_core::TenantId::new(name).unwrap();
        remediation_service::tenants::create_tenant(self.state.runtime(), &admin, &tenant, "tests").await.unwrap();
        let runtime = self.state.installation().for_tenant(&tenant).await.unwrap();
        for role in [Role::Viewer, Role::Requester, Role::Approver, Role::Admin] {
            let principal = format!("{name}-{role}");
            let now = runtime.clock().now();
            runtime.store().create_principal(&principal, PrincipalKind::Person, role, &admin, now).await.unwrap();
            let token = add_token(&runtime, &principal, &principal);
            self.tokens.push((principal, token));
        }
        runtime
    }

    pub(crate) fn token(&self, name: &str) -> &str {
        &self.tokens.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Sends one request as `who` (a token name, or None); the body is JSON when given.
    pub(crate) async fn call(
        &self,
        who: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = who.map(|w| if w == "bad" { "rmt_not-a-token".to_owned() } else { self.token(w).to_owned() });
        self.raw(token.as_deref(), method, path, body.map(|b| ("application/json", b.to_string()))).await
    }

    pub(crate) async fn raw(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method.clone()).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some((ct, b)) => req.header("content-type", ct).body(Body::from(b)).unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let media = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        // Every answer is held to the committed OpenAPI document.
        crate::contract::check(&method, path, status, media.as_deref(), &value);
        (status, value)
    }

    /// Has admin `proposer` propose switching the default mode to auto; the pending change's id.
    pub(crate) async fn propose_auto(&self, proposer: &str) -> String {
        let patch = json!({"patch": {"default_mode": "auto"}, "reason": "fewer clicks"});
        let (status, body) = self.call(Some(proposer), Method::PATCH, "/v1/settings", Some(patch)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["pending_change"]["id"].as_str().unwrap().to_owned()
    }

    /// A new action on alice's membership of `group` suggested by `who`; returns its id.
    pub(crate) async fn suggest(&self, who: &str, group: &str) -> String {
        let (status, body) = self.call(Some(who), Method::POST, "/v1/actions", Some(revoke(group))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["action"]["id"].as_str().unwrap().to_owned()
    }
}

/// A new 90-day token `name` of `principal`; the token itself.
pub(crate) fn add_token(runtime: &Runtime, principal: &str, name: &str) -> String {
    let token = remediation_runtime::tokens::generate();
    let now = runtime.clock().now();
    let test = remediation_core::Actor::new("local:test", Role::Admin);
    let hash = remediation_runtime::tokens::hash(&token);
    run_store(runtime.store().create_token(principal, name, &hash, now + time::Duration::days(90), &test, now))
        .unwrap();
    token.expose_secret().to_owned()
}

pub(crate) fn revoke(group: &str) -> Value {
    json!({
        "connector": "sandbox",
        "kind": {"type": "revoke"},
        "target": {"identity": "alice", "resource": group, "grant_type": "group_membership"},
        "reason": "standing admin access"
    })
}

/// Asserts the error shape and returns the code.
#[track_caller]
pub(crate) fn error_code(body: &Value) -> String {
    let e = &body["error"];
    assert!(e["message"].is_string() && e["details"].is_object(), "not the error shape: {body}");
    e["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {body}")).to_owned()
}

/// Runs a store call to completion from setup code that is not async. The embedded store does
/// its reads on blocking threads and its writes on its writer thread, so the call needs a
/// runtime of its own: it runs on a scoped thread, which also works inside `#[tokio::test]`.
pub(crate) fn run_store<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(f))
            .join()
            .expect("the store call panicked")
    })
}
