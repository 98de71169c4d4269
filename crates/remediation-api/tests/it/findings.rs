//! Finding intake: suggestion by the mode policy, de-duplication by (control, target),
//! connector choice, and fixes that did not hold.

use axum::http::{Method, StatusCode};
use remediation_core::EngineEvent;
use serde_json::{Value, json};

use std::sync::Arc;

use crate::support::Env;

fn finding(id: &str, connector: Option<&str>, grant_type: &str) -> Value {
    let mut f = json!({"id": id, "source": "scanner", "control_id": "CIS-1.2", "severity": "high",
        "title": "alice is a standing admin",
        "target": {"identity": "alice", "resource": "admins", "grant_type": grant_type},
        "suggested_kind": {"type": "revoke"}});
    if let Some(c) = connector {
        f["connector"] = json!(c);
    }
    f
}

#[tokio::test]
async fn a_finding_becomes_one_action_however_often_it_arrives() {
    let env = Env::new();
    let (s, first) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-1", None, "group_membership"))).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["intake"], "created");
    assert_eq!(first["action"]["connector"], "sandbox", "chosen by capability");
    assert_eq!(first["action"]["finding_id"], "F-1");
    let (s, again) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-2", None, "group_membership"))).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["intake"], "existing");
    assert_eq!(again["action"]["id"], first["action"]["id"]);
    let (_, all) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_finding_naming_the_target_by_another_name_finds_the_action_taken() {
    let env = Env::new();
    let path = env.dir.path().join("sandbox.json");
    let mut dir = remediation_connector_sandbox::load(&path).unwrap();
    dir.users.get_mut("alice").unwrap().aliases = vec!["alice.smith@example.com".into()];
    remediation_connector_sandbox::save(&path, &dir).unwrap();
    let (s, first) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-1", None, "group_membership"))).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["action"]["canonical"]["identity"], "alice");
    // Another scanner reports the same grant under alice's alias.
    let mut alias = finding("F-2", None, "group_membership");
    alias["target"]["identity"] = json!("alice.smith@example.com");
    let (s, again) = env.call(Some("requester"), Method::POST, "/v1/findings", Some(alias)).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["intake"], "existing");
    assert_eq!(again["action"]["id"], first["action"]["id"]);
    // Listing by identity finds the action whichever name it is asked by.
    let mut direct = crate::support::revoke("engineering");
    direct["target"]["identity"] = json!("alice.smith@example.com");
    let (s, by_alias) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(direct)).await;
    assert!(s.is_success(), "{by_alias}");
    let (_, listed) = env.call(Some("viewer"), Method::GET, "/v1/actions?identity=alice", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    // Someone else in the same group is another target.
    let mut bob = finding("F-3", None, "group_membership");
    bob["target"]["identity"] = json!("bob");
    let (s, other) = env.call(Some("requester"), Method::POST, "/v1/findings", Some(bob)).await;
    assert!(s.is_success(), "{other}");
    assert_eq!(other["intake"], "created", "{other}");
}

#[tokio::test]
async fn no_connector_supports_it_is_400() {
    let env = Env::new();
    let (s, b) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-1", None, "mainframe_racf"))).await;
    assert_no_connector_fits(s, &b);
}

/// The refusal when no connector is named and none fits: every configured connector is
/// listed with why it was passed over.
#[track_caller]
fn assert_no_connector_fits(s: StatusCode, b: &Value) {
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(crate::support::error_code(b), "no_connector");
    assert_eq!(b["error"]["details"]["field"], "connector");
    assert_eq!(
        b["error"]["details"]["candidates"],
        json!([{"connector": "sandbox", "reason": "no_capability"}]),
        "{b}"
    );
    assert!(b["error"]["message"].as_str().unwrap().contains("sandbox: no capability"), "{b}");
}

/// A request to revoke alice's grant of `grant_type` on `admins` that names no connector.
fn without_connector(grant_type: &str) -> Value {
    let mut body = crate::support::revoke("admins");
    body.as_object_mut().unwrap().remove("connector");
    body["target"]["grant_type"] = json!(grant_type);
    body
}

#[tokio::test]
async fn a_suggestion_naming_no_connector_goes_to_the_capable_one() {
    let env = Env::new();
    let (s, b) =
        env.call(Some("requester"), Method::POST, "/v1/actions", Some(without_connector("group_membership"))).await;
    assert!(s.is_success(), "{b}");
    assert_eq!(b["action"]["connector"], "sandbox", "chosen by capability: {b}");
}

#[tokio::test]
async fn a_suggestion_no_connector_can_carry_out_is_400_listing_the_candidates() {
    let env = Env::new();
    let (s, b) =
        env.call(Some("requester"), Method::POST, "/v1/actions", Some(without_connector("mainframe_racf"))).await;
    assert_no_connector_fits(s, &b);
    let (_, all) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(all["items"], json!([]), "nothing is stored when no connector is chosen");
}

async fn complete(env: &Env) -> String {
    let (_, first) = env
        .call(
            Some("requester"),
            Method::POST,
            "/v1/findings",
            Some(finding("F-1", Some("sandbox"), "group_membership")),
        )
        .await;
    let id = first["action"]["id"].as_str().unwrap().to_owned();
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    let (s, b) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    id
}

async fn did_not_hold(env: &Env) -> usize {
    env.recorded().await.iter().filter(|e| matches!(e, EngineEvent::RemediationDidNotHold { .. })).count()
}

/// Someone puts alice back into admins: the fix did not hold.
fn readd_alice(env: &Env) {
    let path = env.dir.path().join("sandbox.json");
    let mut dir: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    dir["groups"]["admins"]["members"].as_array_mut().unwrap().push(json!("alice"));
    std::fs::write(&path, dir.to_string()).unwrap();
}

fn alice_is_admin(env: &Env) -> bool {
    let path = env.dir.path().join("sandbox.json");
    let dir: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    dir["groups"]["admins"]["members"].as_array().unwrap().iter().any(|m| m == "alice")
}

#[tokio::test]
async fn a_repeated_finding_never_rolls_back_a_fix_that_holds() {
    // The attack: with redo on, a requester posts a false finding for a completed revoke.
    let env = Env::with(|c| c.policy.redo_fixes_that_did_not_hold = true);
    let id = complete(&env).await;
    assert!(!alice_is_admin(&env));
    let (s, b) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-2", None, "group_membership"))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["intake"].as_str(), b["action"]["id"].as_str()), (Some("fix_holds"), Some(id.as_str())));
    assert!(!alice_is_admin(&env), "the revoke stays in place");
    let (_, a) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(a["action"]["state"], "completed", "{a}");
    assert_eq!(did_not_hold(&env).await, 0, "nothing came back, so nothing is reported");
    let (_, all) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "no fresh action either");
}

#[tokio::test]
async fn a_fix_that_did_not_hold_is_reported_and_left_to_people_by_default() {
    let env = Env::new();
    let id = complete(&env).await;
    readd_alice(&env);
    let (s, b) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-2", None, "group_membership"))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["intake"].as_str(), b["action"]["id"].as_str()), (Some("did_not_hold"), Some(id.as_str())));
    assert_eq!(did_not_hold(&env).await, 1);
}

#[tokio::test]
async fn with_the_setting_on_a_fix_that_did_not_hold_is_redone() {
    let env = Env::with(|c| c.policy.redo_fixes_that_did_not_hold = true);
    let id = complete(&env).await;
    readd_alice(&env);
    let (s, b) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(finding("F-2", None, "group_membership"))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["intake"], "redone");
    assert_ne!(b["action"]["id"].as_str(), Some(id.as_str()));
    assert!(b["action"]["reason"].as_str().unwrap().contains(&id), "{b}");
    assert_eq!(did_not_hold(&env).await, 1);
    // The old action is not rolled back; the fresh one goes through approval.
    let (_, a) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(a["action"]["state"], "completed", "{a}");
    assert_eq!(b["action"]["state"], "pending_approval", "{b}");
}

/// An installation taking request bodies of up to 1 MiB, for scanners' documents.
fn env_for_documents() -> Env {
    let clock = Arc::new(remediation_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    Env::with_options(
        |_| {},
        clock,
        remediation_api::ApiOptions { body_limit_bytes: 1 << 20, ..remediation_api::ApiOptions::default() },
    )
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/findings/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_prowler_document_is_answered_entry_by_entry() {
    let env = env_for_documents();
    // This installation has no `aws` connector: the mapped findings reach intake, which refuses
    // each of them alone, and the rest are reported without reaching it.
    let (s, body) = env.call(Some("requester"), Method::POST, "/v1/findings", Some(fixture("prowler-ocsf.json"))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["format"], "prowler-ocsf");
    let entries = body["entries"].as_array().unwrap();
    let labels: Vec<&str> = entries.iter().map(|e| e["intake"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        ["failed", "failed", "failed", "failed", "failed", "nothing_to_do", "unsupported", "nothing_to_do"]
    );
    assert_eq!(entries[0]["control_id"], "s3_bucket_default_encryption");
    assert!(entries[0]["reason"].as_str().unwrap().contains("aws"), "{}", entries[0]);
    assert!(entries[0]["error_code"].is_string(), "{}", entries[0]);
    // The key-age finding is a rotation now, refused here for want of an `aws` connector.
    assert_eq!(entries[4]["control_id"], "iam_rotate_access_key_90_days");
    assert!(entries[4]["reason"].as_str().unwrap().contains("aws"), "{}", entries[4]);
    assert_eq!(entries[6]["control_id"], "accessanalyzer_enabled");
    assert!(entries[6]["reason"].as_str().unwrap().contains("not in the mapping table"), "{}", entries[6]);
    // Through a connector that cannot enforce on buckets: still refused one by one.
    let (s, body) = env
        .call(Some("requester"), Method::POST, "/v1/findings?connector=sandbox", Some(fixture("prowler-ocsf.json")))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["entries"][2]["intake"], "failed", "{body}");
    let (_, all) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn documents_that_are_not_findings_are_refused_with_the_reason() {
    let env = env_for_documents();
    let post = |path: &'static str, body: Value| {
        let env = &env;
        async move { env.call(Some("requester"), Method::POST, path, Some(body)).await }
    };
    let (s, body) = post("/v1/findings", json!({"Findings": [{"class_uid": 2004}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "body");
    assert!(body["error"]["message"].as_str().unwrap().contains("holds ASFF findings"), "{body}");
    let (s, body) = post("/v1/findings?format=asff", fixture("prowler-ocsf.json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("declared asff but is prowler-ocsf"), "{body}");
    let (s, body) = post("/v1/findings?format=csv", fixture("prowler-ocsf.json")).await;
    assert_eq!((s, body["error"]["details"]["field"].clone()), (StatusCode::BAD_REQUEST, json!("format")), "{body}");
    // One finding in the project's format keeps its errors: the field is named.
    let mut bad = finding("F-1", None, "group_membership");
    bad.as_object_mut().unwrap().remove("control_id");
    let (s, body) = post("/v1/findings", bad).await;
    assert_eq!(
        (s, body["error"]["details"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("control_id")),
        "{body}"
    );
    // An array of the project's findings is a document: each is taken in.
    let (s, body) = post("/v1/findings", json!([finding("F-1", None, "group_membership")])).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!((body["format"].clone(), body["entries"][0]["intake"].clone()), (json!("finding"), json!("created")));
    assert_eq!(body["entries"][0]["action"]["connector"], "sandbox");
}

#[tokio::test]
async fn an_asff_document_reports_unsupported_controls_by_id() {
    let env = env_for_documents();
    let (s, body) =
        env.call(Some("requester"), Method::POST, "/v1/findings", Some(fixture("securityhub-asff.json"))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["format"], "asff");
    let e = &body["entries"];
    assert_eq!((e[3]["control_id"].clone(), e[3]["intake"].clone()), (json!("IAM.3"), json!("failed")));
    assert_eq!((e[4]["control_id"].clone(), e[4]["intake"].clone()), (json!("EC2.19"), json!("unsupported")));
    assert_eq!((e[5]["control_id"].clone(), e[5]["intake"].clone()), (json!("S3.17"), json!("nothing_to_do")));
    assert_eq!(e[7]["intake"], "unsupported");
}
