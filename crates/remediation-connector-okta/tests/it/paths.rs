//! No identifier turns a membership removal into another request: `..` as the user once made
//! "remove .. from 00gADMINS" send `DELETE /groups/00gADMINS/`, Okta's group deletion.

use std::sync::Arc;

use remediation_core::{
    ActionKind, ActionRequest, Actor, Connector, Engine, EngineError, EngineParts, ManualClock, Mode, Role,
};
use remediation_testkit::{ActionBuilder, AllowAll, InMemoryStore, NoLimits, TargetBuilder, fixed_time, snap};
use serde_json::json;

use crate::support::{Auth, TOKEN, connector, fake, seed};

fn membership(user: &str, group: &str) -> remediation_core::Target {
    TargetBuilder::new().identity(user).resource(group).grant_type("group_membership").build()
}

#[tokio::test]
async fn a_dot_identity_cannot_delete_the_group() {
    let fake = fake().await;
    seed(&fake, "00u1", "00gADMINS", "0oa1");
    let built = connector(&fake, Auth::Ssws, None);
    let engine = Engine::new(EngineParts {
        store: Arc::new(InMemoryStore::new()),
        connectors: vec![Arc::clone(&built.connector) as _],
        clock: Arc::new(ManualClock::new(fixed_time())),
        policy: Arc::new(AllowAll::new(Mode::Auto)),
        limits: Arc::new(NoLimits),
    });
    let requester = Actor::new("local:alice", Role::Requester);
    let mark = fake.log().count();

    for user in ["..", ".", "%2E%2E", "%2e%2E", ".%2E", "%252e%252e"] {
        // Through the engine: refused by validation before the connector is asked anything.
        let request = ActionRequest {
            connector: "okta-test".to_owned(),
            kind: ActionKind::Revoke,
            target: membership(user, "00gADMINS"),
            reason: "remove a member".to_owned(),
            control_id: None,
            finding_id: None,
            dry_run: false,
            campaign: None,
        };
        match engine.suggest(request, &requester).await {
            Err(EngineError::Refused { rule, reason }) => {
                assert_eq!(rule, "validation", "{user:?}: {reason}");
                assert!(reason.contains("dot segment"), "{reason}");
            }
            other => panic!("{user:?} was not refused: {other:?}"),
        }

        // Straight to the connector, as an embedder could: its paths refuse it too.
        let action = ActionBuilder::new()
            .connector("okta-test")
            .kind(ActionKind::Revoke)
            .target(membership(user, "00gADMINS"))
            .build();
        let before = snap(json!({"user": user, "group": "00gADMINS", "member": true, "group_type": "OKTA_GROUP"}));
        built.connector.snapshot(&action.target).await.expect_err("no snapshot of a dot segment");
        built.connector.execute(&action, &before).await.expect_err("no write to a dot segment");
    }

    // Nothing reached the org, and the group and its member are still there.
    let sent = fake.log().since(mark);
    assert!(sent.is_empty(), "requests reached the fake: {:?}", sent.iter().map(|r| &r.path).collect::<Vec<_>>());
    assert!(fake.org().group_exists("00gADMINS"));
    assert!(fake.org().is_member("00gADMINS", "00u1"));
}

#[tokio::test]
async fn a_removal_sends_exactly_the_member_route() {
    let fake = fake().await;
    seed(&fake, "00u1", "00gADMINS", "0oa1");
    let built = connector(&fake, Auth::Ssws, None);
    let action = ActionBuilder::new()
        .connector("okta-test")
        .kind(ActionKind::Revoke)
        .target(membership("00u1", "00gADMINS"))
        .build();
    let before = built.connector.snapshot(&action.target).await.expect("snapshot");
    let mark = fake.log().count();
    built.connector.execute(&action, &before).await.expect("removed");
    let writes: Vec<_> =
        fake.log().since(mark).into_iter().filter(|r| r.method != "GET").map(|r| (r.method, r.path)).collect();
    assert_eq!(writes, [("DELETE".to_owned(), "/api/v1/groups/00gADMINS/users/00u1".to_owned())]);
    assert!(fake.org().group_exists("00gADMINS"));
    assert!(!fake.org().is_member("00gADMINS", "00u1"));
}

/// The fake's group deletion is real, so the "group still exists" check above can fail: the
/// URL the old encoding produced deletes the group.
#[tokio::test]
async fn the_normalised_url_would_have_deleted_the_group() {
    let fake = fake().await;
    // This request is not one Okta's description defines (that is the point): let it through.
    fake.faults().describe(None);
    seed(&fake, "00u1", "00gADMINS", "0oa1");
    let normalised = url::Url::parse(&format!("{}/api/v1/groups/00gADMINS/users/%2E%2E", fake.org_url())).expect("url");
    assert_eq!(normalised.path(), "/api/v1/groups/00gADMINS/");
    let status = reqwest::Client::new()
        .delete(normalised)
        .header("authorization", format!("SSWS {TOKEN}"))
        .send()
        .await
        .expect("sent")
        .status();
    assert_eq!(status.as_u16(), 204);
    assert!(!fake.org().group_exists("00gADMINS"));
}
