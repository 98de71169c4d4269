//! Principals and their tokens: separation of duties and quorum count people, not tokens;
//! tokens expire; each principal is rate-limited; dangerous settings wait for a second admin;
//! a persisting refusal is recorded once.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use remediation_api::{ApiOptions, RateLimit};
use remediation_core::ManualClock;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::{Env, error_code};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()))
}

/// The settings records of the audit as (event, actor, credential).
async fn settings_events(env: &Env) -> Vec<(String, String, Option<String>)> {
    let (_, page) = env.call(Some("viewer"), Method::GET, "/v1/audit?limit=1000", None).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["setting_event"].is_string() && r["actor"] != "local:test")
        .map(|r| {
            (
                r["setting_event"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
                r["credential"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_tokens_of_one_person_are_one_principal() {
    let mut env = Env::with(|c| c.policy.min_approvals = 2);
    env.add_token("approver", "approver-second");
    // The requester's second token cannot approve the requester's own action.
    let id = env.suggest("approver", "admins").await;
    let approve = format!("/v1/actions/{id}/approve");
    let (status, body) = env.call(Some("approver-second"), Method::POST, &approve, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["rule"], "separation of duties");
    // Two tokens of one approver are one approval towards the quorum.
    let id = env.suggest("requester", "engineering").await;
    let approve = format!("/v1/actions/{id}/approve");
    let (status, body) = env.call(Some("approver"), Method::POST, &approve, None).await;
    assert_eq!((status, body["action"]["state"].as_str()), (StatusCode::OK, Some("pending_approval")), "{body}");
    let (status, body) = env.call(Some("approver-second"), Method::POST, &approve, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["rule"], "separation of duties");
    let (status, body) = env.call(Some("approver2"), Method::POST, &approve, None).await;
    assert_eq!((status, body["action"]["state"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
    // The audit names the principal and, beside it, the token used.
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    let approvals: Vec<(&str, &str)> = view["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["event"] == "approve")
        .map(|t| (t["actor"].as_str().unwrap(), t["credential"].as_str().unwrap()))
        .collect();
    assert_eq!(approvals, [("approver", "approver"), ("approver2", "approver2")]);
}

#[tokio::test]
async fn tokens_expire() {
    let clock = clock();
    let env = Env::with_clock(clock.clone());
    let (status, _) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(status, StatusCode::OK);
    clock.advance(time::Duration::days(90));
    let (status, body) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
}

#[tokio::test]
async fn each_principal_is_rate_limited_with_retry_after() {
    let clock = clock();
    let limit = RateLimit { requests: 3, window: time::Duration::seconds(60) };
    let env = Env::with_options(|_| {}, clock.clone(), ApiOptions { rate_limit: limit, ..ApiOptions::default() });
    let call = |who: &str| {
        let req = Request::builder()
            .uri("/v1/kill-switch")
            .header("authorization", format!("Bearer {}", env.token(who)))
            .body(Body::empty())
            .unwrap();
        env.app.clone().oneshot(req)
    };
    for _ in 0..3 {
        assert_eq!(call("viewer").await.unwrap().status(), StatusCode::OK);
    }
    clock.advance(time::Duration::seconds(20));
    let refused = call("viewer").await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "40");
    let body: Value =
        serde_json::from_slice(&http_body_util::BodyExt::collect(refused.into_body()).await.unwrap().to_bytes())
            .unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    crate::contract::check(&Method::GET, "/v1/kill-switch", StatusCode::TOO_MANY_REQUESTS, None, &body);
    // Another principal is not slowed down; the first may call again once the window moved.
    assert_eq!(call("admin").await.unwrap().status(), StatusCode::OK);
    clock.advance(time::Duration::seconds(40));
    assert_eq!(call("viewer").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn loosening_settings_waits_for_a_second_admin_and_tightening_does_not() {
    let env = Env::new();
    let patch = |p: Value| Some(json!({"patch": p, "reason": "review"}));
    // Tightening: at once.
    let (status, body) =
        env.call(Some("admin"), Method::PATCH, "/v1/settings", patch(json!({"min_approvals": 2}))).await;
    assert_eq!((status, body["policy"]["min_approvals"].as_u64()), (StatusCode::OK, Some(2)), "{body}");
    // Loosening: waits, changes nothing, and is visible to every role.
    let loosen = patch(json!({"min_approvals": 1, "kinds": {"revoke": {"mode": "auto", "reason": "reversible"}}}));
    let (status, body) = env.call(Some("admin"), Method::PATCH, "/v1/settings", loosen).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let change = body["pending_change"].clone();
    assert_eq!((change["status"].as_str(), change["proposed_by"].as_str()), (Some("pending"), Some("admin")));
    let summary = change["summary"].as_str().unwrap();
    assert!(summary.contains("min_approvals lowered from 2 to 1") && summary.contains("kind revoke switched to auto"));
    let (_, settings) = env.call(Some("admin"), Method::GET, "/v1/settings", None).await;
    assert_eq!(settings["policy"]["min_approvals"], 2, "nothing applied yet");
    let (_, listed) = env.call(Some("viewer"), Method::GET, "/v1/pending-changes", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // The proposer cannot confirm; a second admin can.
    let confirm = format!("/v1/pending-changes/{}/confirm", change["id"].as_str().unwrap());
    let (status, body) = env.call(Some("admin"), Method::POST, &confirm, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["rule"], "two admins");
    let (status, body) = env.call(Some("admin2"), Method::POST, &confirm, Some(json!({"note": "ok"}))).await;
    assert_eq!((status, body["pending_change"]["status"].as_str()), (StatusCode::OK, Some("confirmed")), "{body}");
    let (_, settings) = env.call(Some("admin"), Method::GET, "/v1/settings", None).await;
    assert_eq!(
        (settings["policy"]["min_approvals"].as_u64(), settings["policy"]["kinds"]["revoke"]["mode"].as_str()),
        (Some(1), Some("auto"))
    );
    let (status, _) = env.call(Some("admin2"), Method::POST, &confirm, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "confirmed once");
    // The kill switch: on at once, off only with a second admin.
    let (status, _) =
        env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": true, "reason": "incident"}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": false, "reason": "over"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, on) = env.call(Some("viewer"), Method::GET, "/v1/kill-switch", None).await;
    assert_eq!(on["on"], true);
    let cancel = format!("/v1/pending-changes/{}/cancel", body["pending_change"]["id"].as_str().unwrap());
    let (status, body) = env.call(Some("admin"), Method::POST, &cancel, None).await;
    assert_eq!((status, body["pending_change"]["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{body}");
    // Every step is audited with the principal and its token.
    let events = settings_events(&env).await;
    let wanted = [
        ("settings_changed", "admin"),
        ("change_proposed", "admin"),
        ("settings_changed", "admin2"),
        ("change_confirmed", "admin2"),
        ("kill_switch_on", "admin"),
        ("change_proposed", "admin"),
        ("change_cancelled", "admin"),
    ];
    let got: Vec<(&str, &str)> = events.iter().map(|(e, a, _)| (e.as_str(), a.as_str())).collect();
    assert_eq!(got, wanted);
    assert!(events.iter().all(|(_, a, c)| c.as_deref() == Some(a.as_str())), "{events:?}");
}

#[tokio::test]
async fn a_refusal_that_persists_is_recorded_once_not_at_every_tick() {
    let clock = clock();
    let env = Env::with_options(|c| c.policy.enabled = false, clock.clone(), ApiOptions::default());
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    for _ in 0..4 {
        let report = remediation_api::worker::tick(&env.state).await.unwrap();
        assert_eq!(report.executed, 0, "{report:?}");
    }
    let refusals =
        |events: &[(String, String, Option<String>)]| events.iter().filter(|e| e.0 == "execution_refused").count();
    assert_eq!(refusals(&settings_events(&env).await), 1);
    // Later, with nothing changed, the worker asks again, and the same refusal is not
    // recorded a second time.
    clock.advance(remediation_api::worker::RETRY_REFUSED_AFTER);
    for _ in 0..3 {
        remediation_api::worker::tick(&env.state).await.unwrap();
    }
    assert_eq!(refusals(&settings_events(&env).await), 1);
    // Once the reason is gone, the worker goes ahead.
    let enable = Some(json!({"patch": {"enabled": true}, "reason": "reviewed"}));
    let (status, body) = env.call(Some("admin"), Method::PATCH, "/v1/settings", enable).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(remediation_api::worker::tick(&env.state).await.unwrap().executed, 1);
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "completed");
}
