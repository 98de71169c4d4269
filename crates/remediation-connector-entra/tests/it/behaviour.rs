//! Entra-specific behaviour: dynamic groups, synchronised users, protected accounts,
//! permission checks, paging, throttling figures and certificate mistakes.

use remediation_connector_entra::Credential;
use remediation_connector_http::SecretSource;
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, OutcomeStatus};
use remediation_testkit::fakes::entra::{self, ALICE, DAVE, DYNAMIC_GROUP};

use crate::{Fixture, account, action, app_role, directory_role, membership};

#[tokio::test]
async fn dynamic_groups_are_refused_before_any_write() {
    let f = Fixture::start().await;
    let c = f.connector();
    let target = membership(ALICE, DYNAMIC_GROUP);
    let before = c.snapshot(&target).await.unwrap();
    assert_eq!(before.state["dynamic"], true);
    let a = action(ActionKind::Revoke, target);
    let e = c.plan(&a, &before).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Permanent);
    assert!(e.message.contains("dynamic membership"), "{e}");
    let mark = f.fake.log().count();
    let e = c.execute(&a, &before).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Permanent);
    assert!(f.fake.log().since(mark).iter().all(|r| r.method == "GET"), "execute wrote to a dynamic group");
    assert!(f.fake.tenant().groups[DYNAMIC_GROUP].members.contains(&ALICE.to_owned()));
}

#[tokio::test]
async fn suspending_a_synchronised_user_warns_in_the_plan() {
    let f = Fixture::start().await;
    let c = f.connector();
    let before = c.snapshot(&account(DAVE)).await.unwrap();
    assert_eq!(before.state["on_premises_sync_enabled"], true);
    let plan = c.plan(&action(ActionKind::Suspend, account(DAVE)), &before).await.unwrap();
    assert!(plan.description.contains("on-premises"), "{}", plan.description);
    let plain = c.snapshot(&account(ALICE)).await.unwrap();
    let plan = c.plan(&action(ActionKind::Suspend, account(ALICE)), &plain).await.unwrap();
    assert!(!plan.description.contains("WARNING"), "{}", plan.description);
}

#[tokio::test]
async fn break_glass_accounts_are_protected() {
    let f = Fixture::start().await;
    let s = f.connector().snapshot(&account(entra::BREAK_GLASS)).await.unwrap();
    assert!(s.protected);
    assert!(!f.connector().snapshot(&account(ALICE)).await.unwrap().protected);
}

#[tokio::test]
async fn check_permissions_names_what_the_token_lacks() {
    let f = Fixture::start().await;
    let full = f.connector().check_permissions().await.unwrap();
    assert!(full.all_granted(), "{full:?}");
    let missing = f.connector_for(&f.reader_config()).check_permissions().await.unwrap().missing;
    for p in [
        "User.EnableDisableAccount.All",
        "User.RevokeSessions.All",
        "GroupMember.ReadWrite.All",
        "RoleManagement.ReadWrite.Directory",
        "AppRoleAssignment.ReadWrite.All",
    ] {
        assert!(missing.contains(&p.to_owned()), "{p} not in {missing:?}");
    }
}

/// Graph answers the directory-role snapshot's `GET /directoryObjects/{id}` only with
/// Directory.Read.All: a token without it is reported missing it, and the snapshot the check
/// warned about is indeed refused.
#[tokio::test]
async fn a_token_without_directory_read_all_is_missing_it() {
    let f = Fixture::start().await;
    let roles: Vec<String> =
        entra::WRITE_ROLES.iter().filter(|r| **r != "Directory.Read.All").map(|r| (*r).to_owned()).collect();
    f.fake.tenant().clients.get_mut(entra::CLIENT_ID).unwrap().roles = roles;
    let c = f.connector();
    let p = c.check_permissions().await.unwrap();
    assert_eq!(p.missing, ["Directory.Read.All"], "{p:?}");
    assert!(!p.can_write());
    let e = c.snapshot(&directory_role(ALICE)).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Forbidden, "{e}");
}

#[tokio::test]
async fn revoking_sessions_again_after_they_moved_is_already_in_state() {
    let f = Fixture::start().await;
    let c = f.connector();
    let before = c.snapshot(&account(ALICE)).await.unwrap();
    let a = action(ActionKind::RevokeSessions, account(ALICE));
    let plan = c.plan(&a, &before).await.unwrap();
    assert_eq!(plan.expected_after.state["sign_in_sessions_valid_from"]["later_than"], "2026-01-01T00:00:00Z");
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert!(c.verify(&a, &plan).await.unwrap().matches);
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
    let e = c.rollback(&a, &before, &before).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Unsupported);
}

#[tokio::test]
async fn a_long_retry_after_is_returned_as_throttled() {
    let f = Fixture::start().await;
    let c = remediation_connector_entra::EntraConnector::with_http(
        &f.secret_config(),
        std::sync::Arc::new(remediation_core::SystemClock),
        |b| {
            b.sleeper(std::sync::Arc::new(remediation_connector_http::RecordingSleeper::new())).retry(
                remediation_connector_http::RetryPolicy::new(remediation_connector_http::ThrottleSignal::RetryAfter)
                    .with_max_wait(std::time::Duration::from_secs(1)),
            )
        },
    )
    .unwrap();
    c.check_permissions().await.unwrap();
    f.fake.faults().throttle_next(10);
    let e = c.snapshot(&account(ALICE)).await.unwrap_err();
    assert!(matches!(e.kind, ConnectorErrorKind::Throttled { retry_after: Some(_) }), "{e}");
    assert!(e.request_id.is_some(), "the request id is kept: {e:?}");
}

#[tokio::test]
async fn a_wrong_thumbprint_is_refused_by_the_token_endpoint() {
    let f = Fixture::start().await;
    let config = f.config(
        entra::CLIENT_ID,
        Credential::Certificate {
            private_key: SecretSource::File(f.file("key.pem")),
            thumbprint: "84E05C1D98BCE3A5421D225B140B36E86A3D5534".into(),
        },
    );
    let e = f.connector_for(&config).snapshot(&account(ALICE)).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated, "{e}");
    assert!(e.message.contains("AADSTS700027"), "{e}");
}

#[tokio::test]
async fn a_break_glass_account_protected_by_upn_is_protected_under_its_object_id() {
    let f = Fixture::start().await;
    let mut config = f.secret_config();
    config.protected = vec!["BREAKGLASS@contoso.example".into()];
    let c = f.connector_for(&config);
    for identity in [entra::BREAK_GLASS, "breakglass@contoso.example"] {
        let s = c.snapshot(&account(identity)).await.unwrap();
        assert!(s.protected, "{identity}");
        assert_eq!(s.canonical.unwrap().identity, entra::BREAK_GLASS, "{identity}");
    }
    assert!(!c.snapshot(&account(ALICE)).await.unwrap().protected);
}

#[tokio::test]
async fn users_named_by_upn_resolve_to_their_object_id() {
    let f = Fixture::start().await;
    let c = f.connector();
    // A break-glass account stays protected when named by its UPN.
    assert!(c.snapshot(&account("breakglass@contoso.example")).await.unwrap().protected);
    let target = membership("alice@contoso.example", entra::ENGINEERING);
    let before = c.snapshot(&target).await.unwrap();
    assert_eq!(before.state["member"], true);
    let a = action(ActionKind::Revoke, target.clone());
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert!(!f.fake.tenant().groups[entra::ENGINEERING].members.contains(&ALICE.to_owned()));
    let after = c.snapshot(&target).await.unwrap();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(c.snapshot(&target).await.unwrap(), before);
    let by_upn = c.snapshot(&account("alice@contoso.example")).await.unwrap();
    let plan = c.plan(&action(ActionKind::Suspend, account("alice@contoso.example")), &by_upn).await.unwrap();
    assert_eq!(plan.expected_after.state["account_enabled"], false);
}

#[tokio::test]
async fn health_answers_through_graph() {
    let f = Fixture::start().await;
    let h = f.connector().health().await.unwrap();
    assert!(h.healthy, "{}", h.detail);
    f.fake.faults().reject_auth_next(10);
    let h = f.connector().health().await.unwrap();
    assert!(!h.healthy);
}

#[tokio::test]
async fn verify_waits_out_replication_delay() {
    let f = Fixture::start().await;
    let c = f.connector();
    let target = crate::directory_role(ALICE);
    let before = c.snapshot(&target).await.unwrap();
    let a = action(ActionKind::Revoke, target);
    let plan = c.plan(&a, &before).await.unwrap();
    // A read of an assigned role is three requests (principal, assignments, schedule
    // instances). Execute's own read uses three; the six after it, verify's first two
    // read-backs, still show the assignment, as a lagging replica would.
    f.fake.lag_reads(9);
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    let v = c.verify(&a, &plan).await.unwrap();
    assert!(v.matches, "{}", v.observed.state);
    assert_eq!(f.sleeper.waits().len(), 2, "two read-backs saw the old state: {:?}", f.sleeper.waits());
    // A change that never shows is reported after five reads, not waited on for ever.
    let a2 = action(ActionKind::Suspend, account(ALICE));
    let before2 = c.snapshot(&account(ALICE)).await.unwrap();
    let plan2 = c.plan(&a2, &before2).await.unwrap();
    let v = c.verify(&a2, &plan2).await.unwrap();
    assert!(!v.matches);
    assert_eq!(f.sleeper.waits().len(), 2 + 4);
}

/// Graph answers a body-less POST without `Content-Length` with 411; the fake does too, so
/// the session revocation passing through it proves the connector declares the empty body.
#[tokio::test]
async fn session_revocation_declares_its_empty_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let f = Fixture::start().await;
    // Without Content-Length: the fake answers as Graph does.
    f.fake.faults().allow_token("raw-test-token");
    let addr = f.fake.base_url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let raw = format!(
        "POST /v1.0/users/{ALICE}/revokeSignInSessions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer raw-test-token\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");

    // The connector's revocation goes through, with Content-Length: 0 on the wire.
    let c = f.connector();
    let a = action(ActionKind::RevokeSessions, account(ALICE));
    let before = c.snapshot(&a.target).await.unwrap();
    let mark = f.fake.log().count();
    let outcome = c.execute(&a, &before).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let posts: Vec<_> = f.fake.log().since(mark).into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].headers.get("content-length").map(String::as_str), Some("0"));
    assert_eq!(posts[0].status, 200);
}

#[tokio::test]
async fn an_app_role_assignment_past_the_first_page_is_found_and_revoked() {
    // 150 assignments on the resource, pages of at most 100: the one to revoke is on page
    // two. Graph cuts a `$filter` + `$top` listing of app role assignments to one page with
    // no next link, so a reader asking with `$top` would see "not assigned".
    let f = Fixture::start().await;
    {
        let mut t = f.fake.tenant();
        t.app_role_assignments.retain(|a| a.principal_id != ALICE);
        for i in 0..150 {
            t.app_role_assignments.push(entra::AppRoleAssignment {
                id: format!("filler-{i:04}"),
                principal_id: ALICE.into(),
                resource_id: entra::RESOURCE_SP.into(),
                app_role_id: format!("f0000000-0000-4000-8000-{i:012}"),
            });
        }
        t.app_role_assignments.push(entra::AppRoleAssignment {
            id: entra::APP_ROLE_ASSIGNMENT_ALICE.into(),
            principal_id: ALICE.into(),
            resource_id: entra::RESOURCE_SP.into(),
            app_role_id: entra::APP_ROLE.into(),
        });
    }
    let c = f.connector();
    let target = app_role(ALICE);
    let before = c.snapshot(&target).await.unwrap();
    assert_eq!(before.state["assigned"], true, "the assignment on page two was not seen");
    let a = action(ActionKind::Revoke, target);
    let plan = c.plan(&a, &before).await.unwrap();
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert!(c.verify(&a, &plan).await.unwrap().matches);
    assert!(!f.fake.tenant().app_role_assignments.iter().any(|a| a.id == entra::APP_ROLE_ASSIGNMENT_ALICE));
}

#[tokio::test]
async fn a_time_bound_directory_role_is_never_rolled_back_as_permanent() {
    let f = Fixture::start().await;
    f.fake.tenant().role_assignment_ends.insert(entra::ROLE_ASSIGNMENT_ALICE.into(), "2026-02-01T00:00:00Z".into());
    let c = f.connector();
    let target = directory_role(ALICE);
    let before = c.snapshot(&target).await.unwrap();
    assert_eq!(before.state["assigned"], true);
    assert_eq!(before.state["ends"], "2026-02-01T00:00:00Z");
    let a = action(ActionKind::Revoke, target);
    let plan = c.plan(&a, &before).await.unwrap();
    assert!(plan.description.contains("time-bound (ends 2026-02-01T00:00:00Z)"), "{}", plan.description);
    assert!(plan.description.contains("rollback is refused"), "{}", plan.description);
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert!(c.verify(&a, &plan).await.unwrap().matches);
    let mark = f.fake.log().count();
    let e = c.rollback(&a, &before, &plan.expected_after).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Unsupported);
    assert!(e.message.contains("permanent"), "{e}");
    assert!(f.fake.log().since(mark).iter().all(|r| r.method == "GET"), "rollback wrote a permanent assignment");
    assert!(!f.fake.tenant().role_assignments.iter().any(|r| r.principal_id == ALICE));
}

#[tokio::test]
async fn a_permanent_directory_role_still_rolls_back() {
    let f = Fixture::start().await;
    let c = f.connector();
    let target = directory_role(ALICE);
    let before = c.snapshot(&target).await.unwrap();
    assert!(before.state.get("ends").is_none(), "{}", before.state);
    let a = action(ActionKind::Revoke, target);
    let plan = c.plan(&a, &before).await.unwrap();
    assert!(!plan.description.contains("WARNING"), "{}", plan.description);
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(c.rollback(&a, &before, &plan.expected_after).await.unwrap().status, OutcomeStatus::Applied);
    assert!(f.fake.tenant().role_assignments.iter().any(|r| r.principal_id == ALICE));
}
