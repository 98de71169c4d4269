//! `GET /v1/controls`, `GET /v1/controls/{id}`, and the earned-auto rule through
//! `PATCH /v1/settings`.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::Env;

fn env() -> Env {
    Env::with(|c| {
        c.policy.controls.insert(
            "C1".to_owned(),
            serde_json::from_value(json!({
                "mode": "manual", "reason": "start manual",
                "kinds": ["revoke"], "grant_types": ["group_membership"], "connectors": ["sandbox"]
            }))
            .unwrap(),
        );
    })
}

#[tokio::test]
async fn viewers_read_each_control_with_its_record() {
    let env = env();
    let (s, b) = env.call(Some("viewer"), Method::GET, "/v1/controls", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let c = &b["controls"][0];
    assert_eq!((c["id"].as_str(), c["mode"].as_str()), (Some("C1"), Some("manual")), "{b}");
    assert_eq!(c["scope"]["connectors"], json!(["sandbox"]));
    assert_eq!((c["record"]["manual_successes"].as_u64(), c["record"]["earned"].as_bool()), (Some(0), Some(false)));
    let (s, one) = env.call(Some("viewer"), Method::GET, "/v1/controls/C1", None).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(&one, c);
    let (s, b) = env.call(Some("viewer"), Method::GET, "/v1/controls/C404", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
}

#[tokio::test]
async fn a_control_goes_to_auto_only_with_its_record_or_an_override() {
    let env = env();
    let auto = |extra: serde_json::Value| {
        let mut c = json!({"mode": "auto", "reason": "fewer clicks"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        json!({"patch": {"controls": {"C1": c}}, "reason": "promote"})
    };
    let (s, b) = env.call(Some("admin"), Method::PATCH, "/v1/settings", Some(auto(json!({})))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["details"]["rule"], "earned_auto", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("0 of 10 successful manual remediations"), "{b}");
    let (s, b) = env
        .call(Some("admin"), Method::PATCH, "/v1/settings", Some(auto(json!({"promotion_override_reason": "pilot"}))))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert!(b["pending_change"]["summary"].as_str().unwrap().contains("admin override: pilot"), "{b}");
}
