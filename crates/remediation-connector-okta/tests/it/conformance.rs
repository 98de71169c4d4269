//! The semantic and HTTP protocol conformance suites, with an API token and with a service
//! app, plus secret hygiene.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use remediation_connector_okta::{ACCOUNT, APP_ASSIGNMENT, GROUP_MEMBERSHIP};
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, HttpSubject, Subject};
use remediation_testkit::fakes::okta::FakeOkta;
use remediation_testkit::fakes::{Faults, RequestLog};

use crate::support::{
    Auth, BREAKGLASS_ID, BREAKGLASS_LOGIN, Built, READ_ONLY_TOKEN, TOKEN, connector, fake, seed, seed_breakglass,
};

struct OktaSubject {
    fake: FakeOkta,
    built: Built,
    auth: Auth,
    next: AtomicU32,
}

impl OktaSubject {
    async fn new(auth: Auth) -> Self {
        let fake = fake().await;
        let built = connector(&fake, auth, None);
        Self { fake, built, auth, next: AtomicU32::new(0) }
    }

    /// Fresh ids: user, group, app.
    fn fresh(&self) -> (String, String, String) {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let ids = (format!("00u{n:04}"), format!("00g{n:04}"), format!("0oa{n:04}"));
        seed(&self.fake, &ids.0, &ids.1, &ids.2);
        ids
    }

    fn group_case(&self) -> Case {
        let (u, g, _) = self.fresh();
        let target = Target { identity: u, resource: Some(g), grant: None, grant_type: GROUP_MEMBERSHIP.to_owned() };
        Case::new("revoke group membership", ActionKind::Revoke, target)
    }

    fn account(&self, name: &str, kind: ActionKind) -> Case {
        let (u, _, _) = self.fresh();
        Case::new(name, kind, Target { identity: u, resource: None, grant: None, grant_type: ACCOUNT.to_owned() })
    }
}

#[async_trait]
impl Subject for OktaSubject {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.built.connector) as _
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", self.built.connector)
    }

    fn secrets(&self) -> Vec<String> {
        let key = include_str!("../../../remediation-testkit/keys/test-rsa-private.pem");
        let mut s: Vec<String> = key.lines().filter(|l| !l.starts_with("-----")).take(3).map(str::to_owned).collect();
        s.push(TOKEN.to_owned());
        s.push(READ_ONLY_TOKEN.to_owned());
        s
    }

    async fn cases(&self) -> Vec<Case> {
        let (u, _, a) = self.fresh();
        vec![
            self.group_case(),
            Case::new(
                "revoke app assignment",
                ActionKind::Revoke,
                Target { identity: u, resource: Some(a), grant: None, grant_type: APP_ASSIGNMENT.to_owned() },
            ),
            self.account("suspend", ActionKind::Suspend),
            self.account("revoke sessions", ActionKind::RevokeSessions),
            self.account("force password reset", ActionKind::ForcePasswordReset),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        let resource = match grant_type {
            GROUP_MEMBERSHIP => Some("00g0000".to_owned()),
            APP_ASSIGNMENT => Some("0oa0000".to_owned()),
            _ => None,
        };
        Target { identity: "00u-no-such-user".to_owned(), resource, grant: None, grant_type: grant_type.to_owned() }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let read_only = connector(&self.fake, Auth::ReadOnly, None);
        let case = self.group_case();
        // Keep the temp dir alive with the connector: the token was read at construction.
        Some((Arc::clone(&read_only.connector) as _, case))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        seed_breakglass(&self.fake);
        let account = |identity: &str| Target {
            identity: identity.to_owned(),
            resource: None,
            grant: None,
            grant_type: ACCOUNT.to_owned(),
        };
        let membership = |identity: &str| Target {
            resource: Some("00gadmins".to_owned()),
            grant_type: GROUP_MEMBERSHIP.to_owned(),
            ..account(identity)
        };
        vec![
            AliasCase::new("login", ActionKind::Suspend, account(BREAKGLASS_ID), account(BREAKGLASS_LOGIN)),
            AliasCase::new("login shortname", ActionKind::Suspend, account(BREAKGLASS_ID), account("breakglass")),
            AliasCase::new(
                "login in another case, in a group",
                ActionKind::Revoke,
                membership(BREAKGLASS_ID),
                membership("BreakGlass@Example.com"),
            ),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        Some(self.fake.log().count())
    }
}

#[async_trait]
impl HttpSubject for OktaSubject {
    fn faults(&self) -> &Faults {
        self.fake.faults()
    }

    fn log(&self) -> &RequestLog {
        self.fake.log()
    }

    fn refreshes_tokens(&self) -> bool {
        self.auth == Auth::PrivateKeyJwt
    }

    async fn idempotent_case(&self) -> Case {
        self.group_case()
    }

    async fn non_idempotent_case(&self) -> Option<Case> {
        Some(self.account("suspend", ActionKind::Suspend))
    }

    async fn paged_case(&self) -> Case {
        // Five groups, two per page: the target group is on page three.
        let (u, _, _) = self.fresh();
        let mut last = String::new();
        for i in 0..5 {
            last = format!("00g{u}-{i}");
            self.fake.org().add_group(&last, "OKTA_GROUP");
            self.fake.org().add_member(&last, &u);
        }
        self.fake.org().set_max_page_size(2);
        Case::new(
            "revoke group membership on page three",
            ActionKind::Revoke,
            Target { identity: u, resource: Some(last), grant: None, grant_type: GROUP_MEMBERSHIP.to_owned() },
        )
    }
}

#[tokio::test]
async fn semantic_with_an_api_token() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    conformance::semantic(&subject).await;
    assert_eq!(subject.fake.faults().violations(), Vec::<String>::new(), "requests Okta's description does not allow");
}

#[tokio::test]
async fn semantic_with_a_service_app() {
    let subject = OktaSubject::new(Auth::PrivateKeyJwt).await;
    conformance::semantic(&subject).await;
    assert!(subject.fake.faults().tokens_issued() >= 1);
    assert_eq!(subject.fake.faults().violations(), Vec::<String>::new(), "requests Okta's description does not allow");
}

#[tokio::test]
async fn http_protocol_with_an_api_token() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    conformance::http_protocol(&subject).await;
    assert!(!subject.built.sleeper.waits().is_empty(), "throttling was waited out through the sleeper");
}

#[tokio::test]
async fn http_protocol_with_a_service_app() {
    conformance::http_protocol(&OktaSubject::new(Auth::PrivateKeyJwt).await).await;
}

#[tokio::test]
async fn outcomes_carry_okta_request_ids_and_errors_keep_them() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    let c = subject.connector();
    let case = subject.group_case();
    let action =
        remediation_testkit::ActionBuilder::new().connector(c.id()).kind(case.kind).target(case.target.clone()).build();
    let before = c.snapshot(&case.target).await.expect("snapshot");
    let out = c.execute(&action, &before).await.expect("execute");
    assert!(out.request_ids.iter().all(|r| r.starts_with("fake-okta-")) && out.request_ids.len() >= 2, "{out:?}");
    let e = c.snapshot(&subject.missing(ACCOUNT)).await.expect_err("missing user");
    assert_eq!(e.kind, ConnectorErrorKind::NotFound);
    assert!(e.message.contains("E0000007") && e.message.contains("errorId"), "{e}");
    assert!(e.request_id.as_deref().is_some_and(|r| r.starts_with("fake-okta-")));
}

#[tokio::test]
async fn only_active_users_are_suspended_and_app_groups_are_refused() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    let c = subject.connector();
    let case = subject.account("suspend", ActionKind::Suspend);
    let org = subject.fake.org();
    org.add_user(&case.target.identity, "STAGED");
    let action =
        remediation_testkit::ActionBuilder::new().connector(c.id()).kind(case.kind).target(case.target.clone()).build();
    let before = c.snapshot(&case.target).await.expect("snapshot");
    let e = c.plan(&action, &before).await.expect_err("STAGED cannot be suspended");
    assert_eq!(e.kind, ConnectorErrorKind::Permanent);
    assert!(e.message.contains("ACTIVE"), "{e}");

    let (u, _, _) = subject.fresh();
    org.add_group("00g-ad", "APP_GROUP");
    org.add_member("00g-ad", &u);
    let target = Target {
        identity: u,
        resource: Some("00g-ad".to_owned()),
        grant: None,
        grant_type: GROUP_MEMBERSHIP.to_owned(),
    };
    let action = remediation_testkit::ActionBuilder::new()
        .connector(c.id())
        .kind(ActionKind::Revoke)
        .target(target.clone())
        .build();
    let before = c.snapshot(&target).await.expect("snapshot");
    let e = c.plan(&action, &before).await.expect_err("APP_GROUP");
    assert!(e.message.contains("APP_GROUP"), "{e}");
}

#[tokio::test]
async fn check_permissions_reports_nothing_missing_for_a_full_token() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    let p = subject.connector().check_permissions().await.expect("permissions");
    assert!(p.all_granted(), "{p:?}");
    let h = subject.connector().health().await.expect("health");
    assert!(h.healthy, "{h:?}");
}

#[tokio::test]
async fn a_read_only_api_token_is_reported_before_any_write() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    let read_only = connector(&subject.fake, Auth::ReadOnly, None);
    let p = read_only.connector.check_permissions().await.expect("permissions");
    assert_eq!(p.missing, ["okta.users.manage", "okta.groups.manage", "okta.apps.manage"], "{p:?}");
    assert!(p.granted.contains(&"okta.users.read".to_owned()), "{p:?}");
}

#[tokio::test]
async fn a_long_rate_limit_is_reported_not_waited() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    let c = subject.connector();
    let case = subject.group_case();
    // The fake's throttled answers reset three seconds later; a policy accepting one second
    // must report the wait instead of sleeping through it.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = crate::support::config(&subject.fake, Auth::Ssws, &dir);
    cfg.max_retry_wait_secs = 1;
    let strict = remediation_connector_okta::OktaConnector::new(
        &cfg,
        remediation_connector_okta::OktaParts {
            clock: Arc::new(remediation_core::SystemClock),
            sleeper: Arc::new(remediation_connector_http::RecordingSleeper::new()),
        },
    )
    .expect("connector");
    subject.fake.faults().throttle_next(1);
    let e = strict.snapshot(&case.target).await.expect_err("throttled");
    assert!(matches!(e.kind, ConnectorErrorKind::Throttled { retry_after: Some(_) }), "{e}");
    assert!(e.message.contains("E0000047"), "{e}");
    drop(c);
}

#[tokio::test]
async fn a_write_over_the_rate_limit_waits_for_the_reset_okta_names_then_reports_throttled() {
    let subject = OktaSubject::new(Auth::Ssws).await;
    let c = subject.connector();
    let case = subject.group_case();
    let action = remediation_testkit::ActionBuilder::new()
        .kind(ActionKind::Revoke)
        .target(case.target.clone())
        .connector("okta-test")
        .build();
    let before = c.snapshot(&case.target).await.expect("snapshot");
    // No write is allowed in any second: reads pass, every write attempt gets Okta's 429.
    subject.fake.faults().limit_rate(Some(remediation_testkit::fakes::RateLimit { per_second: 0, writes_only: true }));
    let e = c.execute(&action, &before).await.expect_err("every write is refused");
    assert!(matches!(e.kind, ConnectorErrorKind::Throttled { retry_after: Some(_) }), "{e}");
    assert!(e.message.contains("E0000047"), "{e}");
    assert_eq!(subject.fake.faults().rate_limited(), 4, "four attempts, the policy's bound");
    let waits = subject.built.sleeper.waits();
    assert_eq!(waits.len(), 3, "{waits:?}");
    // X-Rate-Limit-Reset names the next second; Date has whole seconds: at most 1 s each.
    assert!(waits.iter().all(|w| *w <= std::time::Duration::from_secs(1)), "{waits:?}");
    assert!(subject.fake.org().is_member(case.target.resource.as_deref().unwrap_or_default(), &case.target.identity));
}

#[tokio::test]
async fn a_user_named_by_login_is_read_and_written_by_its_id() {
    let fake = fake().await;
    seed(&fake, "00u9", "00g9", "0oa9");
    fake.org().set_login("00u9", "pat@example.com");
    let built = connector(&fake, Auth::Ssws, None);
    let c = &built.connector;
    let account = |identity: &str| Target {
        identity: identity.to_owned(),
        resource: None,
        grant: None,
        grant_type: ACCOUNT.to_owned(),
    };
    let cases = [
        (
            ActionKind::Revoke,
            Target {
                resource: Some("00g9".to_owned()),
                grant_type: GROUP_MEMBERSHIP.to_owned(),
                ..account("pat@example.com")
            },
        ),
        (ActionKind::Suspend, account("pat")),
        (ActionKind::RevokeSessions, account("PAT@example.com")),
    ];
    for (kind, target) in cases {
        let action =
            remediation_testkit::ActionBuilder::new().connector(c.id()).kind(kind).target(target.clone()).build();
        let before = c.snapshot(&target).await.expect("ok");
        assert_eq!(before.canonical.as_ref().map(|c| c.identity.as_str()), Some("00u9"), "{target}");
        let mark = fake.log().count();
        let out = c.execute(&action, &before).await.expect("ok");
        assert_eq!(out.status, remediation_core::OutcomeStatus::Applied, "{target}");
        // Only the user read accepts a login; every other path names the id.
        for r in fake.log().since(mark) {
            if r.method == "GET"
                && r.path.starts_with("/api/v1/users/")
                && !r.path["/api/v1/users/".len()..].contains('/')
            {
                continue;
            }
            assert!(!r.path.to_lowercase().contains("pat"), "{} {} names the login", r.method, r.path);
        }
    }
}

#[tokio::test]
async fn a_protected_user_is_refused_under_every_name() {
    let fake = fake().await;
    seed_breakglass(&fake);
    let built = connector(&fake, Auth::Ssws, None);
    let c = &built.connector;
    for identity in [BREAKGLASS_ID, BREAKGLASS_LOGIN, "breakglass", "BREAKGLASS@example.com"] {
        let target =
            Target { identity: identity.to_owned(), resource: None, grant: None, grant_type: ACCOUNT.to_owned() };
        let before = c.snapshot(&target).await.expect("ok");
        assert!(before.protected, "{identity}");
        let action = remediation_testkit::ActionBuilder::new()
            .connector(c.id())
            .kind(ActionKind::Suspend)
            .target(target)
            .build();
        let mark = fake.log().count();
        let e = c.execute(&action, &before).await.expect_err("refused");
        assert_eq!(e.kind, ConnectorErrorKind::Forbidden, "{identity}: {e}");
        assert!(fake.log().since(mark).iter().all(|r| r.method == "GET"), "{identity}: a write was sent");
    }
}
