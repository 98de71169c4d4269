//! Requests as Okta's management API description defines them, and failures that say which
//! call failed.

use remediation_connector_okta::GROUP_MEMBERSHIP;
use remediation_core::{Connector, Target};

use crate::support::{Auth, connector, fake, seed};

fn membership(user: &str, group: &str) -> Target {
    Target {
        identity: user.to_owned(),
        resource: Some(group.to_owned()),
        grant: None,
        grant_type: GROUP_MEMBERSHIP.to_owned(),
    }
}

/// listUserGroups declares no query parameters; the fake refuses `limit` on it, so a
/// connector sending one cannot read a membership at all.
#[tokio::test]
async fn the_users_groups_are_read_without_a_limit_and_pages_are_still_followed() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    for g in ["00g2", "00g3", "00g4"] {
        fake.org().add_group(g, "OKTA_GROUP");
        fake.org().add_member(g, "00u1");
    }
    // The org pages on its own: one group per page, the target on the last one.
    fake.org().set_max_page_size(1);
    let built = connector(&fake, Auth::Ssws, None);
    let mark = fake.log().count();
    let snapshot = built.connector.snapshot(&membership("00u1", "00g4")).await.expect("snapshot");
    assert_eq!(snapshot.state["member"], true, "{snapshot:?}");
    let reads: Vec<_> = fake.log().since(mark).into_iter().filter(|r| r.path == "/api/v1/users/00u1/groups").collect();
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert!(reads.iter().all(|r| r.query.iter().all(|(k, _)| k != "limit")), "{reads:?}");
    assert!(reads.iter().all(|r| r.status == 200), "{reads:?}");
}

#[tokio::test]
async fn an_unhealthy_org_is_reported_with_the_call_that_failed() {
    let fake = fake().await;
    let built = connector(&fake, Auth::Ssws, None);
    // More failures than the client retries.
    fake.faults().fail_next(20, 500);
    let h = built.connector.health().await.expect("health answers");
    assert!(!h.healthy, "{h:?}");
    assert!(h.detail.contains("GET /api/v1/users?limit=1"), "{h:?}");
    assert!(h.detail.contains("500"), "{h:?}");
}
