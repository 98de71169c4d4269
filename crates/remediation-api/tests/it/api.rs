//! API behaviour: the lifecycle, status codes, the error shape, pagination, settings, limits,
//! the worker, metrics and the OpenAPI document.

use axum::http::{Method, StatusCode};
use std::sync::Arc;

use remediation_core::failpoints;
use serde_json::json;

use crate::support::{Env, error_code, revoke};

#[tokio::test]
async fn a_whole_lifecycle_over_http() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let (s, a) = env
        .call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), Some(json!({"note": "ok"})))
        .await;
    assert_eq!((s, a["action"]["state"].as_str()), (StatusCode::OK, Some("approved")), "{a}");
    let (s, dry) = env
        .call(Some("requester"), Method::POST, &format!("/v1/actions/{id}/execute"), Some(json!({"dry_run": true})))
        .await;
    assert_eq!((s, dry["outcome"].as_str()), (StatusCode::OK, Some("dry_run")), "{dry}");
    let (s, done) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    assert_eq!((s, done["outcome"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
    assert!(done["rollback_expires_at"].is_string(), "a reversible change says until when: {done}");
    let (s, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(view["action"]["state"], "completed");
    assert!(view["before"].is_object() && view["after"].is_object(), "{view}");
    let events: Vec<&str> =
        view["transitions"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"approve") && events.contains(&"begin_execution"), "{events:?}");
    let (s, plan) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}/plan"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(plan["plan_hash"].is_string(), "{plan}");
    // Giving access back waits for a second principal: 202 with the waiting action.
    let (s, rb) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!((s, rb["outcome"].as_str()), (StatusCode::ACCEPTED, Some("rollback_requested")), "{rb}");
    assert_eq!(rb["action"]["state"], "rollback_requested", "{rb}");
    let (s, e) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    assert_eq!((s, e["error"]["details"]["rule"].as_str()), (StatusCode::FORBIDDEN, Some("separation of duties")));
    let (s, a) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    assert_eq!((s, a["action"]["state"].as_str()), (StatusCode::OK, Some("rolled_back")), "{a}");
    // The execution's after-state is kept; the restore is shown beside it.
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["after"], done["after"], "{view}");
    assert_eq!(view["restored"], view["before"], "{view}");
    assert_ne!(view["after"], view["restored"], "{view}");
    // Illegal now: 409 naming the current state.
    let (s, e) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(error_code(&e), "conflict");
    assert_eq!(e["error"]["details"]["current_state"], "rolled_back");
    let (s, report) = env.call(Some("viewer"), Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(report["checkpoint"]["status"], "matches", "{report}");
}

#[tokio::test]
async fn an_irreversible_action_refuses_a_rollback_with_409_and_stays_completed() {
    let env = Env::new();
    let body = json!({"connector": "sandbox", "kind": {"type": "revoke_sessions"},
        "target": {"identity": "alice", "grant_type": "account"}, "reason": "token leaked"});
    let (s, created) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
    assert!(s == StatusCode::CREATED || s == StatusCode::ACCEPTED, "{created}");
    let id = created["action"]["id"].as_str().unwrap().to_owned();
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let (s, done) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    assert_eq!((s, done["outcome"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
    assert!(done.get("rollback_expires_at").is_none(), "no rollback is advertised: {done}");
    for who in ["approver2", "admin"] {
        let (s, e) = env.call(Some(who), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert_eq!(e["error"]["details"]["rule"], "reversibility", "{e}");
    }
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "completed", "{view}");
    assert!(view["rollback_expires_at"].is_null(), "{view}");
    assert_eq!(view["transitions"].as_array().unwrap().len(), 4, "nothing recorded: {view}");
}

#[tokio::test]
async fn a_rollback_request_is_approved_or_rejected_through_the_api() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    // A requester may not ask for a rollback at all.
    let (s, _) = env.call(Some("requester"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // Rejected: the change stays, and the action is completed again.
    let (s, a) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/reject"), None).await;
    assert_eq!((s, a["action"]["state"].as_str()), (StatusCode::OK, Some("completed")), "{a}");
    // Asked again, and approved by another principal through POST rollback.
    let (s, _) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, e) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!((s, e["error"]["details"]["rule"].as_str()), (StatusCode::FORBIDDEN, Some("separation of duties")));
    let (s, rb) = env.call(Some("admin"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!((s, rb["outcome"].as_str()), (StatusCode::OK, Some("rolled_back")), "{rb}");
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    let events: Vec<&str> =
        view["transitions"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "suggest",
            "approve",
            "begin_execution",
            "execution_succeeded",
            "request_rollback",
            "reject",
            "request_rollback",
            "approve",
            "rollback_succeeded"
        ]
    );
}

#[tokio::test]
async fn errors_have_one_shape_everywhere() {
    let env = Env::new();
    let t = env.token("admin").to_owned();
    type Case<'a> = (Method, &'a str, Option<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (Method::GET, "/v1/nowhere", None, 404, "not_found"),
        (Method::DELETE, "/v1/actions", None, 405, "method_not_allowed"),
        (Method::POST, "/v1/actions", Some(("application/json", "{not json".into())), 400, "invalid_request"),
        (
            Method::POST,
            "/v1/actions",
            Some(("text/plain", revoke("admins").to_string())),
            415,
            "unsupported_media_type",
        ),
        (Method::POST, "/v1/actions", None, 400, "invalid_request"),
        (Method::POST, "/v1/actions", Some(("application/json", "x".repeat(10_000))), 413, "payload_too_large"),
        (Method::GET, "/v1/actions/not-a-uuid", None, 400, "invalid_request"),
        (Method::GET, "/v1/actions/0190f6d4-0000-7000-8000-000000000000", None, 404, "not_found"),
        (Method::GET, "/v1/actions?bogus=1", None, 400, "invalid_request"),
        (Method::GET, "/v1/actions?limit=0", None, 400, "invalid_request"),
    ];
    for (method, path, body, status, code) in cases {
        let (s, b) = env.raw(Some(&t), method.clone(), path, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {b}");
        assert_eq!(error_code(&b), code, "{method} {path}: {b}");
    }
    // Unknown and missing fields are named.
    let mut body = revoke("admins");
    body["colour"] = json!("blue");
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/actions", Some(body)).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["details"]["field"], "colour", "{b}");
    let mut body = revoke("admins");
    body["target"].as_object_mut().unwrap().remove("grant_type");
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/actions", Some(body)).await;
    assert_eq!(s, 400);
    assert!(b["error"]["details"]["field"].as_str().unwrap().contains("target"), "{b}");
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": true}))).await;
    assert_eq!((s.as_u16(), b["error"]["details"]["field"].as_str()), (400, Some("reason")), "{b}");
    // A connector that is not configured: 400 naming it.
    let mut body = revoke("admins");
    body["connector"] = json!("okta");
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/actions", Some(body)).await;
    assert_eq!((s.as_u16(), b["error"]["details"]["field"].as_str()), (400, Some("connector")), "{b}");
}

#[tokio::test]
async fn remediation_disabled_is_403() {
    let env = Env::with(|c| c.policy.enabled = false);
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let (s, b) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["details"]["rule"], "enablement");
}

#[tokio::test]
async fn lists_filter_and_page_with_a_cursor() {
    let env = Env::new();
    for g in ["admins", "engineering"] {
        env.suggest("requester", g).await;
    }
    let body = json!({"connector": "sandbox", "kind": {"type": "revoke"}, "control_id": "C-9",
        "target": {"identity": "bob", "resource": "admins", "grant_type": "group_membership"}, "reason": "r"});
    env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
    let (_, p1) = env.call(Some("viewer"), Method::GET, "/v1/actions?limit=2", None).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions?limit=2&cursor={cursor}"), None).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let (_, bob) = env.call(Some("viewer"), Method::GET, "/v1/actions?identity=bob", None).await;
    assert_eq!(bob["items"].as_array().unwrap().len(), 1);
    let (_, c9) = env
        .call(Some("viewer"), Method::GET, "/v1/actions?control=C-9&state=pending_approval&connector=sandbox", None)
        .await;
    assert_eq!(c9["items"].as_array().unwrap().len(), 1);
    // The audit pages too, and filters by action.
    let (_, a1) = env.call(Some("viewer"), Method::GET, "/v1/audit?limit=2", None).await;
    assert_eq!(a1["items"][0]["seq"], 1);
    let c = a1["next_cursor"].as_str().unwrap().to_owned();
    let (_, a2) = env.call(Some("viewer"), Method::GET, &format!("/v1/audit?limit=2&cursor={c}"), None).await;
    assert_eq!(a2["items"][0]["seq"], 3);
    let id = bob["items"][0]["id"].as_str().unwrap();
    let (_, mine) = env.call(Some("viewer"), Method::GET, &format!("/v1/audit?action_id={id}"), None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, all) = env.call(Some("viewer"), Method::GET, "/v1/audit", None).await;
    let last = all["items"].as_array().unwrap().len();
    let (_, from) = env.call(Some("viewer"), Method::GET, &format!("/v1/audit?from_seq={last}"), None).await;
    assert_eq!(from["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn settings_patches_take_effect_at_once() {
    let env = Env::with(|c| c.policy.enabled = false);
    let (s, v) = env.call(Some("admin"), Method::GET, "/v1/settings", None).await;
    assert_eq!(
        (s.as_u16(), v["source"].as_str(), v["policy"]["enabled"].as_bool()),
        (200, Some("config"), Some(false))
    );
    let (s, v) = env
        .call(
            Some("admin"),
            Method::PATCH,
            "/v1/settings",
            Some(json!({"patch": {"enabled": true}, "reason": "go live"})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["source"].as_str(), v["policy"]["enabled"].as_bool()),
        (200, Some("store"), Some(true)),
        "{v}"
    );
    let (s, v) = env
        .call(
            Some("admin"),
            Method::PATCH,
            "/v1/settings",
            Some(json!({"patch": {"min_approvals": "two"}, "reason": "x"})),
        )
        .await;
    assert_eq!((s.as_u16(), v["error"]["details"]["field"].as_str()), (400, Some("patch.min_approvals")), "{v}");
    // The engine now enforces the new settings: execution is allowed.
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let (s, b) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn a_held_action_is_202_and_an_admin_forces_or_releases_it() {
    let env = Env::with(|c| c.limits.per_connector.max = 1);
    let mut ids = Vec::new();
    for g in ["admins", "engineering"] {
        let id = env.suggest("requester", g).await;
        env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
        ids.push(id);
    }
    let (s, _) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{}/execute", ids[0]), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, held) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{}/execute", ids[1]), None).await;
    assert_eq!((s, held["outcome"].as_str()), (StatusCode::ACCEPTED, Some("held")), "{held}");
    assert_eq!(held["action"]["state"], "held");
    let (_, limits) = env.call(Some("viewer"), Method::GET, "/v1/limits", None).await;
    assert!(limits["usage"].as_array().unwrap().iter().any(|u| u["key"] == "connector:sandbox"), "{limits}");
    let (s, forced) = env
        .call(
            Some("admin"),
            Method::POST,
            &format!("/v1/actions/{}/force-execute", ids[1]),
            Some(json!({"reason": "incident"})),
        )
        .await;
    assert_eq!((s, forced["outcome"].as_str()), (StatusCode::OK, Some("completed")), "{forced}");
}

#[tokio::test]
async fn the_worker_executes_approved_actions() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let report = remediation_api::worker::tick(&env.state).await.unwrap();
    assert_eq!(report.executed, 1, "{report:?}");
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "completed");
    let executor = view["transitions"].as_array().unwrap().iter().find(|t| t["event"] == "begin_execution").unwrap();
    assert_eq!(executor["actor"], "system");
    // Shutting down: nothing new is claimed.
    let id = env.suggest("requester", "engineering").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    env.state.begin_shutdown();
    assert_eq!(remediation_api::worker::tick(&env.state).await.unwrap().executed, 0);
    let (s, _) = env.call(None, Method::GET, "/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// Another server on the same data directory died right after moving an action to
/// `executing`: while its lease is live, the worker leaves that action alone (recovers
/// nothing) and executes the other approved ones beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_leaves_an_action_a_live_worker_holds() {
    use remediation_core::{ActionId, Actor, FailpointHook, Role, failpoints};
    let env = Env::new();
    let held = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{held}/approve"), None).await;
    let dies: FailpointHook =
        Arc::new(|name: &'static str| assert_ne!(name, failpoints::AFTER_BEGIN_EXECUTION, "simulated crash"));
    let options = remediation_runtime::RuntimeOptions { failpoints: Some(dies), ..Default::default() };
    let key = remediation_audit::AuditKey::from_hex(&env.audit_key_hex).unwrap();
    let other =
        remediation_runtime::Runtime::build(&crate::support::config(|_| {}), env.dir.path(), Some(key), options)
            .unwrap();
    let id: ActionId = held.parse().unwrap();
    let died = tokio::spawn(async move {
        let engine = other.active().await.unwrap().engine;
        engine.execute(id, &Actor::new("local:other", Role::Approver), false).await
    })
    .await;
    assert!(died.unwrap_err().is_panic());
    let free = env.suggest("requester", "engineering").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{free}/approve"), None).await;
    let report = remediation_api::worker::tick(&env.state).await.unwrap();
    assert_eq!((report.recovered, report.executed), (0, 1), "{report:?}");
    for (id, expected) in [(held, "executing"), (free, "completed")] {
        let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
        assert_eq!(view["action"]["state"], expected, "{view}");
    }
}

/// The sandbox writes made so far.
fn sandbox_writes(env: &Env) -> usize {
    let text = std::fs::read_to_string(env.dir.path().join("sandbox.json")).unwrap();
    let dir: serde_json::Value = serde_json::from_str(&text).unwrap();
    dir["writes"].as_array().map_or(0, Vec::len)
}

fn audit_events(env: &Env, event: &str) -> usize {
    let records = crate::support::run_store(env.state.runtime().store().audit_page(
        &remediation_core::AuditFilter::default(),
        None,
        100_000,
    ))
    .unwrap();
    records.iter().filter(|r| r.body.event() == event).count()
}

#[tokio::test]
async fn turning_remediation_off_stops_the_worker_batch_before_its_next_write() {
    const N: usize = 20;
    // An admin turns remediation off while the worker's batch is under way: right after the
    // batch's first write completes (from another thread, as another request would).
    let runtime_slot: Arc<std::sync::OnceLock<Arc<remediation_runtime::Runtime>>> = Arc::default();
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook: remediation_core::FailpointHook = {
        let (slot, armed) = (runtime_slot.clone(), armed.clone());
        Arc::new(move |name: &'static str| {
            if name != failpoints::AFTER_PROVIDER_WRITE || !armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let runtime = slot.get().expect("the runtime").clone();
            crate::support::run_store(async move {
                let active = runtime.active().await.unwrap();
                let mut doc = serde_json::to_value(&active.settings).unwrap();
                doc["enabled"] = json!(false);
                let admin = remediation_core::Actor::new("admin", remediation_core::Role::Admin);
                active.engine.update_settings(&admin, doc, "incident: stop everything".into()).await.unwrap();
            });
        })
    };
    let mut env = Env::with_failpoints(|c| c.limits.per_identity.max = 100, hook);
    let _ = runtime_slot.set(env.state.runtime().clone());
    // One execution at a time, so "the batch's next write" is well defined: with several in
    // flight, those past their claim are stopped by the engine's own look before the write.
    let options = remediation_api::ApiOptions {
        execution: remediation_api::WorkerConfig { concurrency: 1, ..remediation_api::WorkerConfig::default() },
        ..remediation_api::ApiOptions::default()
    };
    env.state = remediation_api::ApiState::new(env.state.runtime().clone(), options);
    // alice is a member of N groups; one approved revoke per membership.
    let path = env.dir.path().join("sandbox.json");
    let mut dir: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for n in 0..N {
        dir["groups"][format!("team-{n}")] = json!({"members": ["alice"], "protected": false});
    }
    std::fs::write(&path, dir.to_string()).unwrap();
    let mut ids = Vec::new();
    for n in 0..N {
        let body = revoke(&format!("team-{n}"));
        let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["action"]["id"].as_str().unwrap().to_owned();
        env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
        ids.push(id);
    }
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = sandbox_writes(&env);
    let report = remediation_api::worker::tick(&env.state).await.unwrap();
    assert_eq!(report.executed, 1, "{report:?}");
    assert_eq!(sandbox_writes(&env) - before, 1, "no write after the change");
    assert_eq!(audit_events(&env, "execution_refused"), N - 1, "each refused action is audited");
    // Later ticks leave the refused actions alone and audit nothing more.
    for _ in 0..5 {
        let report = remediation_api::worker::tick(&env.state).await.unwrap();
        assert_eq!((report.executed, report.left_alone), (0, N - 1), "{report:?}");
    }
    assert_eq!(audit_events(&env, "execution_refused"), N - 1, "a refusal is audited once");
    assert_eq!(sandbox_writes(&env) - before, 1);
    // Something changes: remediation is on again, and the actions run.
    let (s, b) = env
        .call(
            Some("admin"),
            Method::PATCH,
            "/v1/settings",
            Some(json!({"patch": {"enabled": true}, "reason": "incident over"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let report = remediation_api::worker::tick(&env.state).await.unwrap();
    assert_eq!((report.executed, report.left_alone), (N - 1, 0), "{report:?}");
    assert_eq!(sandbox_writes(&env) - before, N);
}

#[tokio::test]
async fn the_worker_expires_stale_approvals() {
    let clock = std::sync::Arc::new(remediation_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    let env = Env::with_clock(clock.clone());
    let id = env.suggest("requester", "admins").await;
    assert_eq!(remediation_api::worker::tick(&env.state).await.unwrap().expired, 0);
    clock.advance(time::Duration::days(8));
    assert_eq!(remediation_api::worker::tick(&env.state).await.unwrap().expired, 1);
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "expired");
}

#[tokio::test]
async fn the_worker_closes_rollback_requests_whose_window_ended() {
    let clock = std::sync::Arc::new(remediation_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    let env = Env::with_clock(clock.clone());
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let (s, b) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    clock.advance(time::Duration::hours(24));
    assert_eq!(remediation_api::worker::tick(&env.state).await.unwrap().expired, 0, "the last instant is open");
    clock.advance(time::Duration::seconds(1));
    assert_eq!(remediation_api::worker::tick(&env.state).await.unwrap().expired, 1);
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "completed", "the change stays: {view}");
    // Too late now, whoever approves.
    let (s, e) = env.call(Some("admin"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!((s, e["error"]["details"]["rule"].as_str()), (StatusCode::CONFLICT, Some("rollback window")), "{e}");
}

#[tokio::test]
async fn kill_switch_cancels_waiting_actions() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let (s, b) =
        env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": true, "reason": "incident"}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["cancelled"][0]["id"].as_str(), Some(id.as_str()));
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/breaker/reset", Some(json!({"reason": "ok"}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn while_the_kill_switch_is_on_no_new_action_is_created() {
    let env = Env::new();
    let (s, b) =
        env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": true, "reason": "incident"}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(revoke("admins"))).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::FORBIDDEN, "forbidden"), "{b}");
    assert!(b["error"]["message"].as_str().unwrap_or_default().contains("no new action is created"), "{b}");
    let finding = json!({"id": "F-9", "source": "scanner", "control_id": "C-1", "severity": "high", "title": "t",
        "target": {"identity": "bob", "resource": "admins", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"}});
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (_, all) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert!(all["items"].as_array().unwrap().is_empty(), "{all}");
    assert_eq!(audit_events(&env, "suggestion_refused"), 2, "both refusals are audited");
    // A dry run still plans, and writes nothing.
    let mut dry = revoke("admins");
    dry["dry_run"] = json!(true);
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(dry)).await;
    assert!(s.is_success(), "{s} {b}");
    assert_eq!(b["action"]["state"], "dry_run", "{b}");
}

#[tokio::test]
async fn every_attempt_refused_by_role_leaves_an_audit_record() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let attempts = [
        ("viewer", Method::POST, "/v1/actions".to_owned(), Some(revoke("engineering")), "suggestion_refused"),
        ("requester", Method::POST, format!("/v1/actions/{id}/approve"), None, "approval_refused"),
        ("viewer", Method::POST, format!("/v1/actions/{id}/approve"), None, "approval_refused"),
        ("requester", Method::POST, format!("/v1/actions/{id}/execute"), None, "execution_refused"),
        (
            "approver",
            Method::POST,
            format!("/v1/actions/{id}/force-execute"),
            Some(json!({"reason": "now"})),
            "execution_refused",
        ),
        ("requester", Method::POST, format!("/v1/actions/{id}/rollback"), None, "rollback_refused"),
    ];
    for (who, method, path, body, event) in attempts {
        let before = audit_events(&env, event);
        let (s, b) = env.call(Some(who), method, &path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path} as {who}: {b}");
        assert_eq!(audit_events(&env, event), before + 1, "{path} as {who} is audited as {event}");
    }
    let records =
        env.state.runtime().store().audit_page(&remediation_core::AuditFilter::default(), None, 100_000).await.unwrap();
    let last = records.last().unwrap();
    assert_eq!((last.body.actor(), last.body.event()), ("requester", "rollback_refused"));
}

#[tokio::test]
async fn metrics_connectors_and_openapi() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    let (s, text) = env.call(Some("viewer"), Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap();
    for needle in [
        "remediation_actions{state=\"completed\"} 1",
        "remediation_held_actions 0",
        // Counted from the audit log, labelled by control, kind and connector.
        "remediation_executions_total{outcome=\"completed\",control=\"none\",kind=\"revoke\",connector=\"sandbox\"} 1",
        "remediation_execution_duration_seconds_count{control=\"none\",kind=\"revoke\",connector=\"sandbox\"} 1",
        "remediation_time_to_remediation_seconds_count{control=\"none\",kind=\"revoke\",connector=\"sandbox\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let (_, connectors) = env.call(Some("viewer"), Method::GET, "/v1/connectors", None).await;
    assert_eq!(connectors[0]["id"], "sandbox");
    assert_eq!(connectors[0]["healthy"], true);
    let (s, doc) = env.call(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/actions/{id}/approve"]["post"].is_object());
    assert!(doc["components"]["schemas"]["CreateAction"].is_object(), "{}", doc["components"]["schemas"]);
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

/// The lines of the families folded from the audit log, without their help texts.
fn folded_lines(text: &str) -> Vec<String> {
    let families = [
        "remediation_action_outcomes_total",
        "remediation_executions_total",
        "remediation_rollbacks_total",
        "remediation_failed_verifications_total",
        "remediation_execution_duration_seconds",
        "remediation_time_to_remediation_seconds",
        "remediation_success_rate",
        "remediation_rollback_rate",
    ];
    text.lines().filter(|l| families.iter().any(|f| l.starts_with(f))).map(str::to_owned).collect()
}

#[tokio::test]
async fn remediation_metrics_survive_a_restart_and_count_executions_outside_the_server() {
    let mut env = Env::with(|c| {
        c.policy.controls.insert(
            "C1".to_owned(),
            serde_json::from_value(
                json!({"mode": "manual", "reason": "r", "kinds": [], "grant_types": [], "connectors": []}),
            )
            .unwrap(),
        );
    });
    let runtime = env.state.runtime().clone();
    let operator = remediation_core::Actor::new("local:operator", remediation_core::Role::Approver);
    // Three executions through the server, one through the service layer as `remediate
    // execute` runs it (no server involved), one with an unconfigured control, one cancelled.
    let mut ids = Vec::new();
    let requests = [
        ("alice", "admins", Some("C1")),
        ("alice", "engineering", Some("C1")),
        ("bob", "admins", None),
        ("carol", "engineering", Some("C9")),
    ];
    for (identity, group, control) in requests {
        let mut body = revoke(group);
        body["target"]["identity"] = json!(identity);
        if let Some(c) = control {
            body["control_id"] = json!(c);
        }
        let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        ids.push(b["action"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..3] {
        let (s, b) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    for id in &ids[..2] {
        let (s, b) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let local: remediation_core::ActionId = ids[2].parse().unwrap();
    remediation_service::execute(&runtime, &operator, local, false).await.result.unwrap();
    let (s, b) = env.call(Some("requester"), Method::POST, &format!("/v1/actions/{}/cancel", ids[3]), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, before) = env.call(Some("viewer"), Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let before = folded_lines(before.as_str().unwrap());
    for needle in [
        "remediation_executions_total{outcome=\"completed\",control=\"C1\",kind=\"revoke\",connector=\"sandbox\"} 2",
        "remediation_executions_total{outcome=\"completed\",control=\"none\",kind=\"revoke\",connector=\"sandbox\"} 1",
        "remediation_action_outcomes_total{outcome=\"cancelled\",control=\"other\",kind=\"revoke\",connector=\"sandbox\"} 1",
        "remediation_time_to_remediation_seconds_count{control=\"C1\",kind=\"revoke\",connector=\"sandbox\"} 2",
        "remediation_success_rate{control=\"C1\",kind=\"revoke\",connector=\"sandbox\"} 1.0",
        "remediation_rollback_rate{control=\"C1\",kind=\"revoke\",connector=\"sandbox\"} 0.0",
    ] {
        assert!(before.iter().any(|l| l == needle), "{needle} missing from:\n{}", before.join("\n"));
    }
    // A new server over the same store: its metrics start empty and are folded again from
    // the log at the first scrape.
    env.state = remediation_api::ApiState::new(runtime.clone(), remediation_api::ApiOptions::default());
    env.app = remediation_api::router(env.state.clone());
    let (s, after) = env.call(Some("viewer"), Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(folded_lines(after.as_str().unwrap()), before);
    // And a second scrape advances from where the first stopped, counting nothing twice.
    let (_, again) = env.call(Some("viewer"), Method::GET, "/metrics", None).await;
    assert_eq!(folded_lines(again.as_str().unwrap()), before);
    // The same numbers as a report of a period.
    let (s, report) = env.call(Some("viewer"), Method::GET, "/v1/reports/metrics", None).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let c1 = report["rows"].as_array().unwrap().iter().find(|r| r["control"] == "C1").unwrap();
    assert_eq!((c1["executions"]["completed"].as_u64(), c1["success_rate"].as_f64()), (Some(2), Some(1.0)), "{report}");
    assert_eq!((c1["ttr_count"].as_u64(), c1["rollback_rate"].as_f64()), (Some(2), Some(0.0)), "{report}");
    let (s, later) =
        env.call(Some("viewer"), Method::GET, "/v1/reports/metrics?since=2999-01-01T00:00:00Z", None).await;
    assert_eq!((s, later["rows"].clone()), (StatusCode::OK, json!([])), "{later}");
    let (s, _) = env.call(None, Method::GET, "/v1/reports/metrics", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_verifiable_log_over_http() {
    let clock = Arc::new(remediation_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    let env = Env::with_clock(clock.clone());
    // Nothing signed yet: 404, and the key set is empty.
    let (s, e) = env.call(Some("viewer"), Method::GET, "/v1/audit/tree-head", None).await;
    assert_eq!((s, error_code(&e).as_str()), (StatusCode::NOT_FOUND, "not_found"), "{e}");
    let (s, keys) = env.call(Some("viewer"), Method::GET, "/v1/audit/keys", None).await;
    assert_eq!((s, keys["keys"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{keys}");

    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    remediation_api::worker::sign(&env.state).await;
    let (s, head) = env.call(Some("viewer"), Method::GET, "/v1/audit/tree-head", None).await;
    assert_eq!(s, StatusCode::OK, "{head}");
    let size = head["tree_size"].as_u64().expect("size");
    assert!(size >= 2, "{head}");
    let (_, keys) = env.call(Some("viewer"), Method::GET, "/v1/audit/keys", None).await;
    assert_eq!(keys["keys"][0]["key_id"], head["key_id"]);

    // Debounced: the log grows, but within a second of the last head nothing is signed …
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    remediation_api::worker::sign(&env.state).await;
    let (_, same) = env.call(Some("viewer"), Method::GET, "/v1/audit/tree-head", None).await;
    assert_eq!(same, head);
    // … and a second later it is.
    clock.advance(time::Duration::seconds(1));
    remediation_api::worker::sign(&env.state).await;
    let (_, newer) = env.call(Some("viewer"), Method::GET, "/v1/audit/tree-head", None).await;
    let new_size = newer["tree_size"].as_u64().expect("size");
    assert!(new_size > size, "{newer}");

    // Inclusion by action and by seq, each verifying against the signed head.
    let keys: remediation_audit::PublicKeySet = serde_json::from_value(keys).expect("keys");
    let signed: remediation_audit::SignedTreeHead = serde_json::from_value(newer.clone()).expect("head");
    keys.verify(&signed).expect("the head verifies");
    let (s, bundle) =
        env.call(Some("viewer"), Method::GET, &format!("/v1/audit/proof/inclusion?action_id={id}"), None).await;
    assert_eq!(s, StatusCode::OK, "{bundle}");
    let bundle: remediation_audit::InclusionBundle = serde_json::from_value(bundle).expect("bundle");
    assert_eq!(bundle.tree_head.as_ref(), Some(&signed));
    assert!(bundle.proofs.len() >= 3);
    for p in &bundle.proofs {
        assert_eq!(remediation_audit::merkle::record_leaf_hash(&p.record).expect("leaf"), p.proof.leaf_hash);
        p.proof.verify(&signed.head.root_hash).expect("inclusion verifies");
    }
    let (s, one) =
        env.call(Some("viewer"), Method::GET, &format!("/v1/audit/proof/inclusion?seq=1&tree_size={size}"), None).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!((one["tree_size"].as_u64(), one["proofs"].as_array().map(Vec::len)), (Some(size), Some(1)));
    assert_eq!(one["tree_head"], head, "the head of that size is returned with it");

    // Consistency from the first head to the latest.
    let (s, c) =
        env.call(Some("viewer"), Method::GET, &format!("/v1/audit/proof/consistency?old_size={size}"), None).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let c: remediation_audit::ConsistencyBundle = serde_json::from_value(c).expect("bundle");
    let old: remediation_audit::SignedTreeHead = serde_json::from_value(head).expect("head");
    assert_eq!(c.old_head.as_ref(), Some(&old));
    remediation_audit::verify_extends(&keys, &old, &c.tree_head, &c.proof.path).expect("extends");

    // Refusals.
    for (path, status, field) in [
        ("/v1/audit/proof/inclusion", StatusCode::BAD_REQUEST, "action_id"),
        (&*format!("/v1/audit/proof/inclusion?action_id={id}&seq=1"), StatusCode::BAD_REQUEST, "action_id"),
        ("/v1/audit/proof/inclusion?seq=0", StatusCode::BAD_REQUEST, "seq"),
        (&*format!("/v1/audit/proof/inclusion?seq=1&tree_size={}", new_size + 1), StatusCode::BAD_REQUEST, "tree_size"),
        ("/v1/audit/proof/consistency?old_size=0", StatusCode::BAD_REQUEST, "old_size"),
    ] {
        let (s, e) = env.call(Some("viewer"), Method::GET, path, None).await;
        assert_eq!((s, e["error"]["details"]["field"].as_str()), (status, Some(field)), "{path}: {e}");
    }
    let (s, e) = env
        .call(Some("viewer"), Method::GET, &format!("/v1/audit/proof/consistency?old_size={}", new_size + 1), None)
        .await;
    assert_eq!((s, e["error"]["details"]["rule"].as_str()), (StatusCode::CONFLICT, Some("audit_log")), "{e}");
    let (s, e) =
        env.call(Some("viewer"), Method::GET, "/v1/audit/proof/consistency?old_size=1&new_size=999", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, e) = env
        .call(
            Some("viewer"),
            Method::GET,
            "/v1/audit/proof/inclusion?action_id=01900000-0000-7000-8000-0000000000ff",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, v) = env.call(Some("viewer"), Method::GET, "/v1/audit/verify", None).await;
    assert_eq!((s, v["tree_head"]["status"].as_str()), (StatusCode::OK, Some("matches")), "{v}");
    assert_eq!(v["checkpoint"]["status"], "matches", "the chain's report stays flat: {v}");
}

#[tokio::test]
async fn entries_not_yet_sequenced_are_reported_by_verify_and_measured_by_metrics() {
    use remediation_core::AuditLog as _;
    let clock = Arc::new(remediation_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    let store = Arc::new(remediation_testkit::InMemoryStore::with_clock(clock.clone()));
    let env = Env::with_store(store.clone(), clock.clone());
    let scrape = || async {
        let (s, text) = env.call(Some("viewer"), Method::GET, "/metrics", None).await;
        assert_eq!(s, StatusCode::OK);
        text.as_str().unwrap().to_owned()
    };
    let check = |text: &str, needles: &[&str]| {
        for needle in needles {
            assert!(text.lines().any(|l| l == *needle), "{needle} missing from:\n{text}");
        }
    };
    // Nothing waits.
    let (s, v) = env.call(Some("viewer"), Method::GET, "/v1/audit/verify", None).await;
    assert_eq!((s, &v["unsequenced"]), (StatusCode::OK, &json!(0)), "{v}");
    check(
        &scrape().await,
        &[
            "remediation_audit_unsequenced_entries 0",
            "remediation_audit_oldest_unsequenced_seconds 0.0",
            "remediation_audit_sequencing_lag_seconds_count 0",
        ],
    );

    // Entries written while the sequencer has not run: counted, not failed.
    store.hold_sequencing(true);
    env.suggest("requester", "admins").await;
    let early = store.unsequenced().await.unwrap();
    assert!(early > 0);
    clock.advance(time::Duration::seconds(3));
    env.suggest("requester", "engineering").await;
    let waiting = store.unsequenced().await.unwrap();
    clock.advance(time::Duration::milliseconds(1500));
    let (s, v) = env.call(Some("viewer"), Method::GET, "/v1/audit/verify", None).await;
    assert_eq!((s, &v["unsequenced"]), (StatusCode::OK, &json!(waiting)), "{v}");
    assert!(v["first_break"].is_null(), "waiting entries break nothing: {v}");
    check(
        &scrape().await,
        &[
            &format!("remediation_audit_unsequenced_entries {waiting}"),
            "remediation_audit_oldest_unsequenced_seconds 4.5",
            "remediation_audit_sequencing_lag_seconds_count 0",
        ],
    );

    // The sequencer seals them: each entry's wait goes into the histogram once.
    assert_eq!(store.sequence_pending().await.unwrap(), waiting);
    let text = scrape().await;
    check(
        &text,
        &[
            "remediation_audit_unsequenced_entries 0",
            "remediation_audit_oldest_unsequenced_seconds 0.0",
            &format!("remediation_audit_sequencing_lag_seconds_count {waiting}"),
            "remediation_audit_sequencing_lag_seconds_bucket{le=\"1.0\"} 0",
            &format!("remediation_audit_sequencing_lag_seconds_bucket{{le=\"2.0\"}} {}", waiting - early),
            &format!("remediation_audit_sequencing_lag_seconds_bucket{{le=\"5.0\"}} {waiting}"),
        ],
    );
    check(&scrape().await, &[&format!("remediation_audit_sequencing_lag_seconds_count {waiting}")]);
    let (_, v) = env.call(Some("viewer"), Method::GET, "/v1/audit/verify", None).await;
    assert_eq!(v["unsequenced"], 0, "{v}");
}

#[tokio::test]
async fn an_action_is_reached_by_its_handle_as_by_its_id() {
    let env = Env::new();
    let first = env.suggest("requester", "admins").await;
    let second = env.suggest("requester", "engineering").await;
    let (s, view) = env.call(Some("viewer"), Method::GET, "/v1/actions/2", None).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["action"]["id"], second.as_str());
    assert_eq!(view["action"]["handle"], 2);
    let (s, a) = env.call(Some("approver"), Method::POST, "/v1/actions/%231/approve", None).await;
    assert_eq!(s, StatusCode::OK, "`#1`, percent-encoded: {a}");
    assert_eq!(a["action"]["id"], first.as_str());
    let (s, e) = env.call(Some("viewer"), Method::GET, "/v1/actions/3", None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{e}");
    let (s, e) = env.call(Some("viewer"), Method::GET, "/v1/actions/0", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = env.call(None, Method::GET, "/v1/actions/1", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "no answer about a handle before authentication");
}

#[tokio::test]
async fn many_findings_at_once_may_be_larger_than_any_other_body() {
    // The test server takes bodies of at most 4096 bytes, imports of up to 32 MiB.
    let env = Env::new();
    let findings: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            json!({"id": format!("F-{i}"), "source": "t", "control_id": "CIS-1", "severity": "high",
                   "title": "a finding with a title long enough to make the body large", "connector": "sandbox",
                   "target": {"identity": "alice", "resource": "engineering", "grant_type": "group_membership"},
                   "suggested_kind": {"type": "revoke"}})
        })
        .collect();
    let body = json!({"name": "big", "findings": findings});
    assert!(body.to_string().len() > 4096);
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/campaigns", Some(body.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["campaign"]["outcomes"], json!({"created": 1, "existing": 39}), "{b}");
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/findings", Some(body["findings"].clone())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/campaigns", Some(body)).await;
    assert_eq!((s, b["error"]["details"]["rule"].as_str()), (StatusCode::CONFLICT, Some("campaign")), "{b}");
    let (s, b) = env.call(Some("viewer"), Method::POST, "/v1/campaigns/big/resume", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // Only its creator or an admin takes a campaign in: nobody lends their name to another's.
    let (s, b) = env.call(Some("approver"), Method::POST, "/v1/campaigns/big/resume", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["error"]["message"].as_str().is_some_and(|m| m.contains("created by")), "{b}");
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/campaigns/big/resume", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/campaigns/big/resume", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = env.call(Some("viewer"), Method::GET, "/v1/campaigns/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
}
