//! The authorisation matrix: every entry of the route table x every role, no token and a bad
//! token.

use axum::http::Method;
use remediation_api::routes::{ROUTES, RequestBody, Route};
use remediation_core::Role;
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

/// The roles of the callers after the first two (no token, a bad token).
const ROLES: [Role; 4] = [Role::Viewer, Role::Requester, Role::Approver, Role::Admin];

/// Expectations per caller for an endpoint whose least role is `least`.
fn by_role(least: Role) -> [E; 6] {
    let mut e = [U, U, F, F, F, F];
    for (slot, role) in e.iter_mut().skip(2).zip(ROLES) {
        if role >= least {
            *slot = A;
        }
    }
    e
}

struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    expect: [E; 6],
}

/// A body for each route that takes one (a note for the optional ones).
fn body_for(route: &Route) -> Option<Value> {
    let sample = match route.operation_id {
        "create_action" => crate::support::revoke("engineering"),
        "execute_action" => json!({"dry_run": false}),
        "force_execute_action" | "reset_breaker" => json!({"reason": "matrix"}),
        "intake_finding" => {
            json!({"id": "F-1", "source": "scanner", "control_id": "C-1", "severity": "high", "title": "t",
                        "target": {"identity": "bob", "resource": "admins", "grant_type": "group_membership"},
                        "suggested_kind": {"type": "revoke"}})
        }
        "patch_settings" => json!({"patch": {"min_approvals": 1}, "reason": "matrix"}),
        "create_campaign" => json!({"name": "matrix", "findings": []}),
        "set_kill_switch" => json!({"on": false, "reason": "matrix"}),
        "create_connection" => json!({"id": "matrix", "type": "sandbox", "settings": {"path": "matrix.json"}}),
        "update_connection" => json!({"scope": {"domains": ["example.com"]}}),
        "replay_parked_events" => json!({"sink": "events/none", "reason": "matrix"}),
        "link_identity" => json!({"connector": "sandbox", "account": "alice", "reason": "matrix"}),
        "respond_to_identity" => json!({"actions": ["revoke_sessions"], "reason": "matrix"}),
        "save_playbook" => json!({"name": "matrix", "version": 1, "steps": [{"action": "revoke_sessions"}]}),
        "plan_playbook" | "start_playbook_run" => json!({"identity": "alice@example.com", "reason": "matrix"}),
        "rollback_run" => json!({"reason": "matrix"}),
        "create_tenant" => json!({"name": "matrix"}),
        op => match route.request {
            RequestBody::None => return None,
            RequestBody::Optional(_) => json!({"note": "matrix"}),
            RequestBody::Required(_) => panic!("{op} takes a body: give the matrix a sample of it"),
        },
    };
    Some(sample)
}

/// One row per entry of the route table, by its least role, and the variants whose role
/// depends on the request.
fn rows() -> Vec<Row> {
    let mut rows: Vec<Row> = ROUTES
        .iter()
        .map(|route| {
            let expect = match (route.operation_id, route.role) {
                // Only the requester (its own action) or an admin cancels.
                ("cancel_action", _) => [U, U, F, A, F, A],
                // Only a responder (not in this matrix) or an admin responds; an approver
                // ranks above a responder but holds no emergency right.
                ("respond_to_identity", _) => [U, U, F, F, F, A],
                (_, None) => [A; 6],
                (_, Some(role)) => by_role(role),
            };
            Row { method: route.method.method(), path: route.path.to_owned(), body: body_for(route), expect }
        })
        .collect();
    let variant = |method: Method, path: &str, body: Option<Value>, least: Role| {
        let template = path.split('?').next().unwrap();
        assert!(
            ROUTES.iter().any(|r| r.method.method() == method && r.path == template),
            "{method} {template} is not in the route table"
        );
        Row { method, path: path.to_owned(), body, expect: by_role(least) }
    };
    // A dry run needs only the requester role.
    rows.push(variant(Method::POST, "/v1/actions/{id}/execute", Some(json!({"dry_run": true})), Role::Requester));
    // A check makes live provider calls: admins only.
    rows.push(variant(Method::GET, "/v1/connectors?check=true", None, Role::Admin));
    rows.push(variant(Method::GET, "/v1/pending-changes?all=true", None, Role::Viewer));
    rows
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
        // A pending change proposed by `admin2`, which `admin` may confirm or cancel.
        let param = if row.path.starts_with("/v1/pending-changes/") { &change } else { &id };
        let path = row.path.replace("{id}", param);
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
