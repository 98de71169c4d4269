//! Incident response over HTTP: the respond endpoint's status table (first match wins), and a
//! playbook run requested, approved by another principal and rolled back.

use axum::http::{Method, StatusCode};
use remediation_core::{PrincipalKind, Role};
use serde_json::{Value, json};

use crate::support::{Env, run_store};

/// `env` with a principal `responder` holding the responder role and a token of that name.
fn with_responder(mut env: Env) -> Env {
    let runtime = env.state.runtime().clone();
    let now = runtime.clock().now();
    let test = remediation_core::Actor::new("local:test", Role::Admin);
    run_store(runtime.store().create_principal("responder", PrincipalKind::Person, Role::Responder, &test, now))
        .expect("principal");
    env.add_token("responder", "responder");
    env
}

fn respond_body(actions: &[&str]) -> Value {
    json!({"actions": actions, "reason": "credentials leaked", "finding": "F-9"})
}

async fn respond(env: &Env, who: &str, identity: &str, actions: &[&str]) -> (StatusCode, Value) {
    env.call(Some(who), Method::POST, &format!("/v1/identities/{identity}/respond"), Some(respond_body(actions))).await
}

fn sandbox(env: &Env) -> remediation_connector_sandbox::Directory {
    remediation_connector_sandbox::load(&env.dir.path().join("sandbox.json")).expect("sandbox")
}

#[tokio::test]
async fn the_respond_status_table_holds_first_match_first() {
    let env = with_responder(Env::new());
    // 403 while a kill switch is on, whatever else is wrong with the request.
    let (status, body) =
        env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": true, "reason": "drill"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = respond(&env, "responder", "nobody@example.com", &["no_such_action"]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["rule"], "enablement", "{body}");
    let (status, _) =
        env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": false, "reason": "over"}))).await;
    assert!(status.is_success() || status == StatusCode::ACCEPTED, "{status}");
    let (_, pending) = env.call(Some("viewer"), Method::GET, "/v1/pending-changes", None).await;
    if let Some(change) = pending.as_array().and_then(|a| a.first()) {
        let id = change["id"].as_str().expect("id");
        let (status, body) =
            env.call(Some("admin2"), Method::POST, &format!("/v1/pending-changes/{id}/confirm"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // 400: an unknown action, before the person is looked up.
    let (status, body) = respond(&env, "responder", "nobody@example.com", &["no_such_action"]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // 404: no connection knows the person.
    let (status, body) = respond(&env, "responder", "nobody@example.com", &["revoke_sessions"]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // 200: every applicable step completed.
    let (status, body) =
        respond(&env, "responder", "bob@example.com", &["revoke_sessions", "force_password_reset"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["steps"].as_array().expect("steps").iter().all(|s| s["status"] == "completed"), "{body}");
    assert!(sandbox(&env).users["bob"].sessions.is_empty());
    // 207: one step waits for approval (suspend is not an emergency kind).
    let (status, body) = respond(&env, "responder", "alice@example.com", &["revoke_sessions", "suspend"]).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    let statuses: Vec<&str> =
        body["steps"].as_array().expect("steps").iter().filter_map(|s| s["status"].as_str()).collect();
    assert_eq!(statuses, ["completed", "pending_approval"], "{body}");
    // 502: every applicable step failed at the provider.
    let path = env.dir.path().join("sandbox.json");
    let mut dir = remediation_connector_sandbox::load(&path).expect("load");
    dir.faults.drift_before_execute = true;
    remediation_connector_sandbox::save(&path, &dir).expect("save");
    let (status, body) = respond(&env, "responder", "carol@example.com", &["force_password_reset"]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["steps"][0]["status"], "failed", "{body}");

    // Roles: an approver ranks above a responder but holds no emergency right; a requester
    // neither.
    for who in ["requester", "approver"] {
        let (status, body) = respond(&env, who, "alice@example.com", &["revoke_sessions"]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
    }
    // Every attempt is in the audit log, whatever came of it.
    let (_, log) = env.call(Some("viewer"), Method::GET, "/v1/audit?limit=1000", None).await;
    let text = log.to_string();
    let attempts =
        text.matches("\"incident_response\"").count() + text.matches("\"incident_response_refused\"").count();
    assert_eq!(attempts, 8, "every attempt is recorded: {text}");
}

#[tokio::test]
async fn remediation_disabled_is_403() {
    let env = with_responder(Env::with(|c| c.policy.enabled = false));
    let (status, body) = respond(&env, "responder", "alice@example.com", &["revoke_sessions"]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn a_person_is_shown_across_connections_and_hostile_names_are_refused() {
    let env = Env::new();
    let (status, body) = env.call(Some("viewer"), Method::GET, "/v1/identities/alice@example.com", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accounts"][0]["account"]["id"], "alice", "{body}");
    // An admin links a person to an account explicitly; others may not.
    let link = json!({"connector": "sandbox", "account": "bob", "reason": "HR record"});
    let (status, body) =
        env.call(Some("approver"), Method::POST, "/v1/identities/robert@corp.example/links", Some(link.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) =
        env.call(Some("admin"), Method::POST, "/v1/identities/robert@corp.example/links", Some(link)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = env.call(Some("viewer"), Method::GET, "/v1/identities/robert@corp.example", None).await;
    assert_eq!(
        (body["accounts"][0]["account"]["id"].as_str(), body["accounts"][0]["account"]["matched_by"].as_str()),
        (Some("bob"), Some("link")),
        "{body}"
    );
    for hostile in ["..", "alice%2F..%2Fbob", "a%22%20or%20%221"] {
        let (status, body) = env.call(Some("viewer"), Method::GET, &format!("/v1/identities/{hostile}"), None).await;
        assert!(matches!(status.as_u16(), 400 | 404), "{hostile}: {status} {body}");
    }
}

#[tokio::test]
async fn a_playbook_run_is_approved_once_by_another_principal_and_rolled_back_by_two() {
    let env = Env::new();
    let (status, plan) = env
        .call(
            Some("requester"),
            Method::POST,
            "/v1/playbooks/compromised-account/plan",
            Some(json!({"identity": "alice@example.com", "reason": "takeover"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let hash = plan["plan_hash"].as_str().expect("hash").to_owned();
    let (status, run) = env
        .call(
            Some("requester"),
            Method::POST,
            "/v1/playbooks/compromised-account/runs",
            Some(json!({"identity": "alice@example.com", "reason": "takeover", "plan_hash": hash})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["id"].as_str().expect("id").to_owned();
    assert_eq!(run["state"], "pending_approval");

    // A stale plan hash is refused; the right one runs the whole playbook.
    let (status, body) = env
        .call(Some("approver"), Method::POST, &format!("/v1/runs/{id}/approve"), Some(json!({"plan_hash": "00"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, done) = env
        .call(Some("approver"), Method::POST, &format!("/v1/runs/{id}/approve"), Some(json!({"plan_hash": hash})))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(sandbox(&env).users["alice"].status, remediation_connector_sandbox::UserStatus::Suspended);

    let (_, listed) = env.call(Some("viewer"), Method::GET, "/v1/runs", None).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let (_, actions) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions?campaign={id}"), None).await;
    assert_eq!(actions["items"].as_array().map(Vec::len), Some(5), "{actions}");

    let rollback = |who: &'static str| {
        let path = format!("/v1/runs/{id}/rollback");
        let env = &env;
        async move { env.call(Some(who), Method::POST, &path, Some(json!({"reason": "false alarm"}))).await }
    };
    let (status, asked) = rollback("approver").await;
    assert_eq!((status, asked["state"].as_str()), (StatusCode::OK, Some("rollback_requested")), "{asked}");
    let (status, body) = rollback("approver").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the one who asked cannot approve it: {body}");
    let (status, undone) = rollback("approver2").await;
    assert_eq!((status, undone["state"].as_str()), (StatusCode::OK, Some("rolled_back")), "{undone}");
    assert_eq!(sandbox(&env).users["alice"].status, remediation_connector_sandbox::UserStatus::Active);
}
