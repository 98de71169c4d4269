//! The API keeps the promises of its published contract: the route table, the committed
//! OpenAPI document and the schemas in `schemas/` say exactly what the server accepts and
//! answers. (Every response of every test is also checked against the document; see
//! `contract`.)

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use remediation_api::routes::ROUTES;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::contract::{self, DOCUMENT};
use crate::support::{Env, error_code, revoke};

#[test]
fn the_committed_document_is_the_route_table() {
    assert!(
        remediation_api::openapi::document() == *DOCUMENT,
        "schemas/openapi.json is stale: run `cargo run -p xtask -- codegen`"
    );
    let (mut operations, mut twins) = (0, 0);
    for (path, item) in DOCUMENT["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            // A tenant's twin of a route: the same answers, and 404 for a tenant out of reach.
            let (template, twin) = match path.strip_prefix("/v1/tenants/{tenant}/") {
                Some(rest) => (format!("/v1/{rest}"), true),
                None => (path.clone(), false),
            };
            let route = ROUTES
                .iter()
                .find(|r| r.path == template && r.method.as_str() == method)
                .unwrap_or_else(|| panic!("{method} {path} is documented but not in the route table"));
            let documented: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
            let mut answers: Vec<String> = route.answers().iter().map(|a| a.status.to_string()).collect();
            if twin {
                twins += 1;
                assert!(route.role.is_some(), "{method} {path}: only authenticated routes have a tenant's twin");
                if !answers.contains(&"404".to_owned()) {
                    answers.push("404".to_owned());
                    answers.sort();
                }
                assert_eq!(operation["operationId"], format!("{}_in_tenant", route.operation_id));
            } else {
                operations += 1;
                assert_eq!(operation["operationId"], route.operation_id);
            }
            assert_eq!(documented, answers.iter().collect::<Vec<_>>(), "{method} {path}");
        }
    }
    assert_eq!(operations, ROUTES.len());
    assert_eq!(twins, ROUTES.iter().filter(|r| r.role.is_some() && r.path.starts_with("/v1/")).count());
}

/// The schema the document gives `name` inside `operation` (a JSON pointer below it).
fn schema_at(path: &str, method: &str, pointer: &str) -> Value {
    DOCUMENT["paths"][path][method].pointer(pointer).unwrap_or_else(|| panic!("{method} {path} {pointer}")).clone()
}

fn valid(schema: &Value, instance: &Value) -> bool {
    let mut errors = Vec::new();
    contract::validate(&DOCUMENT, schema, instance, "", &mut errors);
    errors.is_empty()
}

#[tokio::test]
async fn the_schemas_accept_exactly_what_the_server_accepts() {
    let env = Env::new();
    env.suggest("requester", "admins").await;
    // Page sizes: the query schema and the server agree on the bounds.
    let query = schema_at("/v1/actions", "get", "/parameters/0/schema");
    for (limit, accepted) in [(0, false), (1, true), (500, true), (501, false)] {
        let (s, b) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions?limit={limit}"), None).await;
        assert_eq!(s.is_success(), accepted, "limit={limit}: {b}");
        assert_eq!(valid(&query, &json!({"limit": limit})), accepted, "the schema on limit={limit}");
    }
    let query = schema_at("/v1/audit", "get", "/parameters/0/schema");
    for (limit, accepted) in [(0, false), (1, true), (1000, true), (1001, false)] {
        let (s, b) = env.call(Some("viewer"), Method::GET, &format!("/v1/audit?limit={limit}"), None).await;
        assert_eq!(s.is_success(), accepted, "limit={limit}: {b}");
        assert_eq!(valid(&query, &json!({"limit": limit})), accepted, "the schema on audit limit={limit}");
    }
    // Reasons: blank ones are refused by both.
    let create = schema_at("/v1/actions", "post", "/requestBody/content/application~1json/schema");
    for (reason, accepted) in [("", false), ("   ", false), ("standing access", true)] {
        let mut body = revoke("engineering");
        body["reason"] = json!(reason);
        assert_eq!(valid(&create, &body), accepted, "the schema on reason {reason:?}");
        let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
        assert_eq!(s.is_success(), accepted, "reason {reason:?}: {b}");
        if !accepted {
            assert_eq!(b["error"]["details"]["field"], "reason", "{b}");
        }
    }
    let reset = schema_at("/v1/breaker/reset", "post", "/requestBody/content/application~1json/schema");
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/breaker/reset", Some(json!({"reason": " "}))).await;
    assert_eq!((s, valid(&reset, &json!({"reason": " "}))), (StatusCode::BAD_REQUEST, false), "{b}");
    let kill = schema_at("/v1/kill-switch", "post", "/requestBody/content/application~1json/schema");
    let body = json!({"on": true, "reason": ""});
    let (s, b) = env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(body.clone())).await;
    assert_eq!((s, valid(&kill, &body)), (StatusCode::BAD_REQUEST, false), "{b}");
    let settings = schema_at("/v1/settings", "patch", "/requestBody/content/application~1json/schema");
    let body = json!({"patch": [1], "reason": "a list is not a patch"});
    let (s, b) = env.call(Some("admin"), Method::PATCH, "/v1/settings", Some(body.clone())).await;
    assert_eq!((s, valid(&settings, &body)), (StatusCode::BAD_REQUEST, false), "{b}");
}

#[tokio::test]
async fn unknown_fields_inside_kind_are_refused_like_everywhere_else() {
    let env = Env::new();
    let create = schema_at("/v1/actions", "post", "/requestBody/content/application~1json/schema");
    for kind in [json!({"type": "revoke", "to": "read"}), json!({"type": "reduce", "to": "read", "colour": "blue"})] {
        let mut body = revoke("admins");
        body["kind"] = kind.clone();
        assert!(!valid(&create, &body), "the schema takes {kind}");
        let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{kind}: {b}");
        assert!(b["error"]["details"]["field"].as_str().unwrap().starts_with("kind"), "{b}");
    }
    let finding = json!({"id": "F-1", "source": "scanner", "control_id": "C-1", "severity": "high", "title": "t",
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
        "suggested_kind": {"type": "suspend", "until": "never"}});
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, list) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(list["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn a_target_the_provider_cannot_act_on_is_the_callers_mistake() {
    let env = Env::new();
    // A group the provider does not have: 404, not a provider failure.
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(revoke("no-such-group"))).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::NOT_FOUND, "not_found"), "{b}");
    assert_eq!(b["error"]["details"]["field"], "target", "{b}");
    let mut body = revoke("admins");
    body["target"]["identity"] = json!("nobody");
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    // A membership without its group: 422, the target is not one the provider can act on.
    let mut body = revoke("admins");
    body["target"].as_object_mut().unwrap().remove("resource");
    let (s, b) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_target"), "{b}");
    let (_, list) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(list["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn a_uri_too_long_is_414_in_the_error_shape() {
    let env = Env::new();
    let cursor = "x".repeat(remediation_api::routes::MAX_URI_BYTES);
    let (s, b) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions?cursor={cursor}"), None).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::URI_TOO_LONG, "uri_too_long"), "{b}");
    // Just under the limit is read (and this cursor is refused for what it is).
    let cursor = "x".repeat(remediation_api::routes::MAX_URI_BYTES - "/v1/actions?cursor=".len());
    let (s, b) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions?cursor={cursor}"), None).await;
    assert_eq!((s, b["error"]["details"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("cursor")), "{b}");
}

#[tokio::test]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let env = Env::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let req = Request::builder()
            .uri("/v1/kill-switch")
            .header("authorization", format!("{scheme} {}", env.token("viewer")))
            .body(Body::empty())
            .unwrap();
        let res = env.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        contract::check(&Method::GET, "/v1/kill-switch", status, Some("application/json"), &body);
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
}

#[tokio::test]
async fn audit_records_validate_against_their_published_schema() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(json!({"on": true, "reason": "drill"}))).await;
    // A refusal is recorded too.
    env.call(Some("viewer"), Method::POST, "/v1/actions", Some(revoke("engineering"))).await;
    let (s, page) = env.call(Some("viewer"), Method::GET, "/v1/audit", None).await;
    assert_eq!(s, StatusCode::OK);
    let records = page["items"].as_array().unwrap();
    let kinds: std::collections::BTreeSet<bool> = records.iter().map(|r| r.get("action_id").is_some()).collect();
    assert_eq!(kinds.len(), 2, "transitions and settings records both: {records:?}");
    let schema = contract::load("audit-record.schema.json");
    for record in records {
        contract::assert_valid(&schema, &schema, record, "an audit record");
    }
    // The schema still refuses what is not a record.
    let mut forged = records[0].clone();
    forged["signed_by"] = json!("mallory");
    let mut errors = Vec::new();
    contract::validate(&schema, &schema, &forged, "", &mut errors);
    assert!(!errors.is_empty(), "an unknown field passed");
    let mut unchained = records[0].clone();
    unchained.as_object_mut().unwrap().remove("prev_hash");
    let mut errors = Vec::new();
    contract::validate(&schema, &schema, &unchained, "", &mut errors);
    assert!(!errors.is_empty(), "a record without prev_hash passed");
}

/// The `jq` paths the README's server example reads, e.g. `.action.id`.
fn readme_jq_paths() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let server = readme.split("\n## Server").nth(1).unwrap().split("\n### Approval page").next().unwrap();
    let paths: Vec<String> = server
        .split("jq ")
        .skip(1)
        .map(|rest| rest.trim_start_matches("-r ").split([' ', ')', '\n']).next().unwrap().to_owned())
        .collect();
    assert!(paths.len() >= 2, "the README's server example reads answers with jq: {paths:?}");
    paths
}

#[tokio::test]
async fn the_readme_reads_the_action_where_every_answer_puts_it() {
    let env = Env::new();
    let (_, created) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(revoke("admins"))).await;
    let id = created["action"]["id"].as_str().unwrap().to_owned();
    let (_, approved) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let (_, shown) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    let (_, executed) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    for path in readme_jq_paths() {
        let pointer = path.replace('.', "/");
        for (what, answer) in [("create", &created), ("approve", &approved), ("get", &shown), ("execute", &executed)] {
            let found = answer.pointer(&pointer);
            assert!(found.is_some_and(|v| !v.is_null()), "README's `jq {path}` is null on the {what} answer: {answer}");
        }
    }
    assert_eq!(shown["action"]["state"], "approved");
    assert_eq!(executed["action"]["state"], "completed");
}
