//! The authorisation matrix: every endpoint x every role, no token and a bad token.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{Env, error_code};

/// What a caller may expect: allowed (any status but 401/403), forbidden (403) or
/// unauthenticated (401).
#[derive(Debug, Clone, Copy, PartialEq)]
enum E {
    A,
    F,
    U,
}
use E::{A, F, U};

/// Callers in matrix order.
const CALLERS: [Option<&str>; 6] =
    [None, Some("bad"), Some("viewer"), Some("requester"), Some("approver"), Some("admin")];

/// Expectations per caller for an endpoint whose least role is `min` (0 viewer .. 3 admin).
fn by_role(min: usize) -> [E; 6] {
    let mut e = [U, U, F, F, F, F];
    for (i, slot) in e.iter_mut().enumerate().skip(2) {
        if i - 2 >= min {
            *slot = A;
        }
    }
    e
}

struct Row {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    expect: [E; 6],
}

fn rows() -> Vec<Row> {
    let public = [A; 6];
    let r =
        |method: Method, path: &'static str, body: Option<Value>, expect: [E; 6]| Row { method, path, body, expect };
    let note = Some(json!({"note": "matrix"}));
    vec![
        r(Method::POST, "/v1/actions", Some(crate::support::revoke("engineering")), by_role(1)),
        r(Method::GET, "/v1/actions", None, by_role(0)),
        r(Method::GET, "/v1/actions/{id}", None, by_role(0)),
        r(Method::GET, "/v1/actions/{id}/plan", None, by_role(0)),
        // The action was requested by `requester`, who never approves it.
        r(Method::POST, "/v1/actions/{id}/approve", note.clone(), by_role(2)),
        r(Method::POST, "/v1/actions/{id}/reject", note.clone(), by_role(2)),
        r(Method::POST, "/v1/actions/{id}/execute", Some(json!({"dry_run": false})), by_role(2)),
        r(Method::POST, "/v1/actions/{id}/execute", Some(json!({"dry_run": true})), by_role(1)),
        r(Method::POST, "/v1/actions/{id}/rollback", note.clone(), by_role(2)),
        // Only the requester (its own action) or an admin cancels.
        r(Method::POST, "/v1/actions/{id}/cancel", note.clone(), [U, U, F, A, F, A]),
        r(Method::POST, "/v1/actions/{id}/force-execute", Some(json!({"reason": "matrix"})), by_role(3)),
        r(Method::POST, "/v1/actions/{id}/release", note.clone(), by_role(3)),
        // Promotion (advisory to approval) is an admin's; the engine answers 409 for an action
        // that is not advisory, which is past the role check.
        r(Method::POST, "/v1/actions/{id}/promote", note, by_role(3)),
        r(
            Method::POST,
            "/v1/findings",
            Some(json!({"id": "F-1", "source": "scanner", "control_id": "C-1", "severity": "high", "title": "t",
                        "target": {"identity": "bob", "resource": "admins", "grant_type": "group_membership"},
                        "suggested_kind": {"type": "revoke"}})),
            by_role(1),
        ),
        r(Method::GET, "/v1/audit", None, by_role(0)),
        r(Method::GET, "/v1/audit/verify", None, by_role(0)),
        r(Method::GET, "/v1/settings", None, by_role(3)),
        r(Method::PATCH, "/v1/settings", Some(json!({"patch": {"min_approvals": 1}, "reason": "matrix"})), by_role(3)),
        r(Method::GET, "/v1/limits", None, by_role(0)),
        r(Method::POST, "/v1/breaker/reset", Some(json!({"reason": "matrix"})), by_role(3)),
        r(Method::POST, "/v1/kill-switch", Some(json!({"on": false, "reason": "matrix"})), by_role(3)),
        r(Method::GET, "/v1/kill-switch", None, by_role(0)),
        r(Method::GET, "/v1/connectors", None, by_role(0)),
        // A check makes live provider calls: admins only.
        r(Method::GET, "/v1/connectors?check=true", None, by_role(3)),
        r(Method::GET, "/v1/pending-changes", None, by_role(0)),
        r(Method::GET, "/v1/pending-changes?all=true", None, by_role(0)),
        // A pending change proposed by `admin2`; `admin` may confirm or cancel it.
        r(Method::POST, "/v1/pending-changes/{change}/confirm", Some(json!({"note": "matrix"})), by_role(3)),
        r(Method::POST, "/v1/pending-changes/{change}/cancel", Some(json!({"note": "matrix"})), by_role(3)),
        r(Method::GET, "/metrics", None, by_role(0)),
        r(Method::GET, "/healthz", None, public),
        r(Method::GET, "/readyz", None, public),
        r(Method::GET, "/openapi.json", None, public),
    ]
}

#[tokio::test]
async fn every_endpoint_by_every_role() {
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in rows() {
        // A fresh installation per row, with one action requested by `requester`.
        let env = Env::new();
        let id = env.suggest("requester", "admins").await;
        let change = env.propose_auto("admin2").await;
        let path = row.path.replace("{id}", &id).replace("{change}", &change);
        for (who, want) in CALLERS.iter().zip(row.expect) {
            cells += 1;
            let (status, body) = env.call(*who, row.method.clone(), &path, row.body.clone()).await;
            let got = match status.as_u16() {
                401 => U,
                403 => F,
                _ => A,
            };
            if status.is_client_error() || status.is_server_error() {
                error_code(&body);
            }
            if got != want {
                failures.push(format!("{} {} as {:?}: want {want:?}, got {status} {body}", row.method, row.path, who));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cells} cells wrong:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_requester_never_approves_its_own_action() {
    let env = Env::new();
    // An approver who requested the action may not approve it: 403, separation of duties.
    let id = env.suggest("approver", "admins").await;
    let (status, body) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["details"]["rule"], "separation of duties");
    let (status, _) = env.call(Some("approver2"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn revoked_tokens_stop_working() {
    let env = Env::new();
    let (status, _) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(status, 200);
    let test = remediation_core::Actor::new("local:test", remediation_core::Role::Admin);
    assert!(env.state.runtime().store().revoke_token("viewer", &test, time::OffsetDateTime::now_utc()).await.unwrap());
    let (status, body) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_code(&body), "unauthenticated");
}
