//! Provider behaviour: error mapping over real HTTP (a canned IAM endpoint and moto),
//! protection, idempotency, and verification that waits out eventual consistency.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use remediation_connector_aws_iam::{
    ACCESS_KEY, AwsCredentials, AwsIamConnector, GROUP_MEMBERSHIP, LOGIN_PROFILE, PROTECTED_TAG, Sleeper, USER_POLICY,
};
use remediation_core::{
    Action, ActionId, ActionKind, Connector, ConnectorErrorKind, Mode, OutcomeStatus, Snapshot, State, Target,
};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::block_on;
use crate::moto::{self, fresh};

/// Records requested delays instead of sleeping.
#[derive(Debug, Default)]
struct NoSleep(Mutex<Vec<Duration>>);

#[async_trait]
impl Sleeper for NoSleep {
    async fn sleep(&self, duration: Duration) {
        self.0.lock().unwrap().push(duration);
    }
}

fn target(grant_type: &str, user: &str, resource: Option<&str>) -> Target {
    Target { identity: user.into(), resource: resource.map(Into::into), grant: None, grant_type: grant_type.into() }
}

fn action(kind: ActionKind, target: Target) -> Action {
    let at = OffsetDateTime::now_utc();
    Action {
        id: ActionId::new_at(at),
        kind,
        target,
        connector: "aws-iam".into(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:test".into(),
        reason: "test".into(),
        mode: Mode::Manual,
        idempotency_key: fresh("key"),
        state: State::Executing,
        created_at: at,
        updated_at: at,
        handle: None,
        campaign: None,
    }
}

/// An HTTP endpoint that answers every request with one canned IAM error; counts requests.
struct Canned {
    url: String,
    served: Arc<AtomicUsize>,
}

fn canned(status: u16, code: &str, message: &str) -> Canned {
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>req-{code}</RequestId></ErrorResponse>"
    );
    let request_id = format!("req-{code}");
    scripted(move |_| (status, request_id.clone(), body.clone()))
}

/// An HTTP endpoint that answers each request with `respond(form body)`: status, request id,
/// XML body. Counts requests.
fn scripted(respond: impl Fn(&str) -> (u16, String, String) + Send + 'static) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            counter.fetch_add(1, Ordering::SeqCst);
            let (status, request_id, xml) = respond(&String::from_utf8_lossy(&body));
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nx-amzn-RequestId: {request_id}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Canned { url, served }
}

fn canned_connector(url: &str, sleeper: Arc<NoSleep>) -> AwsIamConnector {
    let creds = AwsCredentials::new("AKIACANNED", SecretString::from("canned-secret-value"));
    moto::connector(url, "aws-iam", creds, &[]).with_sleeper(sleeper)
}

#[track_caller]
fn check_error(status: u16, code: &str, expected: ConnectorErrorKind, attempts: usize) {
    let server = canned(status, code, &format!("message for {code}"));
    let sleeper = Arc::new(NoSleep::default());
    let connector = canned_connector(&server.url, Arc::clone(&sleeper));
    let err = block_on(connector.snapshot(&target(LOGIN_PROFILE, "alice", None))).unwrap_err();
    assert_eq!(err.kind, expected, "{code}: {err}");
    assert!(err.message.contains(code) && err.message.contains(&format!("message for {code}")), "{err}");
    assert_eq!(err.request_id.as_deref(), Some(format!("req-{code}").as_str()), "{code}");
    assert_eq!(server.served.load(Ordering::SeqCst), attempts, "{code}: requests sent");
    assert_eq!(sleeper.0.lock().unwrap().len(), attempts - 1, "{code}: waits between attempts");
}

#[test]
fn errors_map_by_code_and_only_transient_ones_are_retried() {
    use ConnectorErrorKind::*;
    let throttled = Throttled { retry_after: None };
    check_error(404, "NoSuchEntity", NotFound, 1);
    check_error(403, "AccessDenied", Forbidden, 1);
    check_error(403, "InvalidClientTokenId", Unauthenticated, 1);
    check_error(403, "SignatureDoesNotMatch", Unauthenticated, 1);
    check_error(400, "ExpiredToken", Unauthenticated, 1);
    check_error(400, "Throttling", throttled, 3);
    check_error(500, "ServiceFailure", Transient, 3);
    check_error(503, "ServiceUnavailable", Transient, 3);
    check_error(409, "ConcurrentModification", Transient, 3);
    check_error(409, "LimitExceeded", Permanent, 1);
    check_error(409, "EntityTemporarilyUnmodifiable", Conflict, 1);
}

#[test]
fn unsupported_pairs_fail_before_any_request() {
    let server = canned(500, "ServiceFailure", "should not be asked");
    let connector = canned_connector(&server.url, Arc::new(NoSleep::default()));
    let placeholder = Snapshot::new(serde_json::json!({}));
    for (kind, grant_type) in [
        (ActionKind::Suspend, USER_POLICY),
        (ActionKind::RevokeSessions, LOGIN_PROFILE),
        (ActionKind::Revoke, ACCESS_KEY),
        (ActionKind::Revoke, "role_policy"),
    ] {
        let a = action(kind, target(grant_type, "alice", Some("x")));
        for result in [
            block_on(connector.plan(&a, &placeholder)).map(|_| ()),
            block_on(connector.execute(&a, &placeholder)).map(|_| ()),
            block_on(connector.rollback(&a, &placeholder, &placeholder)).map(|_| ()),
        ] {
            assert_eq!(result.unwrap_err().kind, ConnectorErrorKind::Unsupported);
        }
    }
    assert_eq!(server.served.load(Ordering::SeqCst), 0);
}

#[test]
fn missing_users_are_not_found_with_aws_message_and_request_id() {
    let Some(url) = moto::url("missing_users_are_not_found_with_aws_message_and_request_id") else { return };
    let connector = moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[]);
    let user = fresh("ghost");
    let err = block_on(connector.snapshot(&target(GROUP_MEMBERSHIP, &user, Some("g")))).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound, "{err}");
    assert!(err.message.contains("NoSuchEntity") && err.message.contains(&user), "{err}");
    assert!(err.request_id.is_some(), "{err:?}");
}

#[test]
fn protection_comes_from_the_tag_or_the_config() {
    let Some(url) = moto::url("protection_comes_from_the_tag_or_the_config") else { return };
    let iam = moto::admin(&url);
    let tagged = fresh("tagged");
    let listed = fresh("listed");
    let plain = fresh("plain");
    block_on(async {
        iam.create_user()
            .user_name(&tagged)
            .tags(aws_sdk_iam::types::Tag::builder().key(PROTECTED_TAG).value("true").build().unwrap())
            .send()
            .await
            .unwrap();
        moto::user(&iam, &listed).await;
        moto::user(&iam, &plain).await;
    });
    let connector = moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[&listed]);
    for (user, protected) in [(&tagged, true), (&listed, true), (&plain, false)] {
        let snap = block_on(connector.snapshot(&target(LOGIN_PROFILE, user, None))).unwrap();
        assert_eq!(snap.protected, protected, "{user}");
    }
    let a = action(ActionKind::Revoke, target(LOGIN_PROFILE, &tagged, None));
    let before = block_on(connector.snapshot(&a.target)).unwrap();
    let err = block_on(connector.execute(&a, &before)).unwrap_err();
    assert!(err.message.contains("protected"), "{err}");
}

#[test]
fn protection_ignores_the_case_of_the_name_and_follows_the_arn() {
    let Some(url) = moto::url("protection_ignores_the_case_of_the_name_and_follows_the_arn") else { return };
    let iam = moto::admin(&url);
    let user = fresh("breakglass");
    let (arn, id) = block_on(async {
        moto::user(&iam, &user).await;
        let out = iam.get_user().user_name(&user).send().await.unwrap();
        let u = out.user().unwrap();
        (u.arn().to_owned(), u.user_id().to_owned())
    });
    // IAM user names are unique regardless of case: `BreakGlass-…` names `breakglass-…`.
    let listed = user.replacen("breakglass", "BreakGlass", 1);
    let connector = moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[&listed]);
    for identity in [&user, &arn] {
        let snap = block_on(connector.snapshot(&target(LOGIN_PROFILE, identity, None))).unwrap();
        assert!(snap.protected, "{identity} is not protected");
        assert_eq!(snap.canonical.map(|c| c.identity), Some(id.clone()), "{identity}");
        let a = action(ActionKind::Revoke, target(LOGIN_PROFILE, identity, None));
        let err = block_on(connector.execute(&a, &snap_of(&connector, &a))).unwrap_err();
        assert!(err.message.contains("protected"), "{err}");
    }
    // The user's id and ARN protect it too, when configured instead of the name.
    for listed in [&id, &arn] {
        let connector = moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[listed]);
        assert!(block_on(connector.snapshot(&target(LOGIN_PROFILE, &user, None))).unwrap().protected, "{listed}");
    }
    // An ARN of another account that ends in the same name is not this user.
    let foreign = arn.replace("123456789012", "210987654321");
    let err = block_on(connector.snapshot(&target(LOGIN_PROFILE, &foreign, None))).unwrap_err();
    assert_eq!(err.kind, remediation_core::ConnectorErrorKind::NotFound, "{err}");
}

fn snap_of(connector: &AwsIamConnector, a: &Action) -> remediation_core::Snapshot {
    block_on(connector.snapshot(&a.target)).unwrap()
}

#[test]
fn a_revoke_that_is_already_done_writes_nothing() {
    let Some(url) = moto::url("a_revoke_that_is_already_done_writes_nothing") else { return };
    let iam = moto::admin(&url);
    let user = fresh("idle");
    let arn = block_on(async {
        moto::user(&iam, &user).await;
        moto::policy(&iam, &fresh("never-attached")).await
    });
    let connector = moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[]);
    for t in [
        target(USER_POLICY, &user, Some(&arn)),
        target(GROUP_MEMBERSHIP, &user, Some("no-group")),
        target(LOGIN_PROFILE, &user, None),
    ] {
        let a = action(ActionKind::Revoke, t);
        let before = block_on(connector.snapshot(&a.target)).unwrap();
        let planned = block_on(connector.plan(&a, &before)).unwrap();
        assert_eq!(planned.expected_after, before, "{}", a.target);
        let outcome = block_on(connector.execute(&a, &before)).unwrap();
        assert_eq!(outcome.status, OutcomeStatus::AlreadyInState, "{}", a.target);
    }
}

#[test]
fn execute_returns_the_request_id_and_verify_retries_before_giving_up() {
    let Some(url) = moto::url("execute_returns_the_request_id_and_verify_retries_before_giving_up") else { return };
    let iam = moto::admin(&url);
    let user = fresh("keyed");
    let (key_id, _) = block_on(async {
        moto::user(&iam, &user).await;
        moto::access_key(&iam, &user).await
    });
    let sleeper = Arc::new(NoSleep::default());
    let connector =
        moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[]).with_sleeper(Arc::clone(&sleeper) as _);
    let a = action(ActionKind::Suspend, target(ACCESS_KEY, &user, Some(&key_id)));
    let before = block_on(connector.snapshot(&a.target)).unwrap();
    assert_eq!(before.state["status"], "Active");
    let mut planned = block_on(connector.plan(&a, &before)).unwrap();
    let outcome = block_on(connector.execute(&a, &before)).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(outcome.request_ids.len(), 1, "{outcome:?}");
    let verified = block_on(connector.verify(&a, &planned)).unwrap();
    assert!(verified.matches, "{}", verified.observed.state);
    assert!(sleeper.0.lock().unwrap().is_empty(), "a visible change needs no wait");

    // A change that never shows: five reads, four waits with doubling delays, then a mismatch.
    planned.expected_after.state["status"] = "Deleted".into();
    let verified = block_on(connector.verify(&a, &planned)).unwrap();
    assert!(!verified.matches);
    assert_eq!(verified.observed.state["status"], "Inactive");
    let waits = sleeper.0.lock().unwrap().clone();
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, vec![20, 40, 80, 160]);
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn trace_logs_never_show_the_secret_or_the_session_token() {
    const SECRET: &str = "trace-secret-access-key-value";
    const TOKEN: &str = "trace-session-token-value";
    let server = canned(403, "AccessDenied", "not allowed");
    let creds =
        AwsCredentials::new("AKIATRACE", SecretString::from(SECRET)).with_session_token(SecretString::from(TOKEN));
    let connector = moto::connector(&server.url, "aws-iam", creds, &[]);
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let err = tracing::subscriber::with_default(subscriber, || {
        block_on(connector.snapshot(&target(LOGIN_PROFILE, "alice", None))).unwrap_err()
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("AccessDenied") || text.contains("try_attempt"), "the SDK logged nothing: {text}");
    assert!(!text.contains(SECRET) && !text.contains(TOKEN), "a credential leaked into the logs");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
}

/// One IAM query response: `<{action}Response><{action}Result>{result}</...>`.
fn ok(action: &str, result: &str) -> (u16, String, String) {
    (
        200,
        format!("req-{action}"),
        format!(
            "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>req-{action}</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

fn group(name: &str) -> String {
    format!(
        "<member><Path>/</Path><GroupName>{name}</GroupName><GroupId>G{name}</GroupId>\
         <Arn>arn:aws:iam::123456789012:group/{name}</Arn><CreateDate>2020-01-01T00:00:00Z</CreateDate></member>"
    )
}

#[test]
fn snapshots_follow_every_page() {
    let server = scripted(|body| {
        let action = body.split('&').find_map(|p| p.strip_prefix("Action=")).unwrap_or("").to_owned();
        let marker = body.split('&').find_map(|p| p.strip_prefix("Marker="));
        match (action.as_str(), marker) {
            ("GetUser", _) => ok(
                "GetUser",
                "<User><Path>/</Path><UserName>alice</UserName><UserId>AIDAX</UserId>\
                 <Arn>arn:aws:iam::123456789012:user/alice</Arn><CreateDate>2020-01-01T00:00:00Z</CreateDate></User>",
            ),
            ("ListUserTags", None) => ok(
                "ListUserTags",
                "<Tags><member><Key>team</Key><Value>ops</Value></member></Tags>\
                 <IsTruncated>true</IsTruncated><Marker>t1</Marker>",
            ),
            ("ListUserTags", Some("t1")) => ok(
                "ListUserTags",
                "<Tags><member><Key>remediation:protected</Key><Value>true</Value></member></Tags>\
                 <IsTruncated>false</IsTruncated>",
            ),
            ("ListGroupsForUser", None) => ok(
                "ListGroupsForUser",
                &format!(
                    "<Groups>{}{}</Groups><IsTruncated>true</IsTruncated><Marker>g1</Marker>",
                    group("a"),
                    group("b")
                ),
            ),
            ("ListGroupsForUser", Some("g1")) => ok(
                "ListGroupsForUser",
                &format!("<Groups>{}</Groups><IsTruncated>false</IsTruncated>", group("admins")),
            ),
            other => (
                400,
                "req-x".into(),
                format!(
                    "<ErrorResponse><Error><Code>InvalidInput</Code><Message>unexpected {other:?}</Message></Error></ErrorResponse>"
                ),
            ),
        }
    });
    let connector = canned_connector(&server.url, Arc::new(NoSleep::default()));
    let snap = block_on(connector.snapshot(&target(GROUP_MEMBERSHIP, "alice", Some("admins")))).unwrap();
    assert!(snap.protected, "the protecting tag is on the second page");
    assert_eq!(snap.state, serde_json::json!({ "user": "alice", "group": "admins", "member": true }));
    assert_eq!(server.served.load(Ordering::SeqCst), 5);
    let snap = block_on(connector.snapshot(&target(GROUP_MEMBERSHIP, "alice", Some("nope")))).unwrap();
    assert_eq!(snap.state["member"], false);
}

#[test]
fn health_tells_a_signed_answer_from_bad_credentials_and_outages() {
    for (status, code, healthy) in [
        (403, "AccessDenied", true),
        (400, "ValidationError", true),
        (403, "InvalidClientTokenId", false),
        (503, "ServiceUnavailable", false),
    ] {
        let server = canned(status, code, "canned");
        let connector = canned_connector(&server.url, Arc::new(NoSleep::default()));
        let health = block_on(connector.health()).unwrap();
        assert_eq!(health.healthy, healthy, "{code}: {}", health.detail);
        assert!(health.detail.contains(code), "{code}: {}", health.detail);
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let connector = canned_connector(&format!("http://127.0.0.1:{port}"), Arc::new(NoSleep::default()));
    let health = block_on(connector.health()).unwrap();
    assert!(!health.healthy, "{}", health.detail);
}

#[test]
fn moto_is_healthy_and_permissions_need_no_request() {
    let Some(url) = moto::url("moto_is_healthy_and_permissions_need_no_request") else { return };
    let connector = moto::connector(&url, "aws-iam", moto::dummy_credentials(), &[]);
    let health = block_on(connector.health()).unwrap();
    assert!(health.healthy, "{}", health.detail);
    let p = block_on(connector.check_permissions()).unwrap();
    // IAM offers the connector no way to ask: unknown, which does not refuse writes.
    assert!(p.can_write() && !p.all_granted() && p.granted.is_empty(), "{p:?}");
}

#[test]
fn a_write_whose_first_attempt_landed_counts_as_applied() {
    // DetachUserPolicy fails with ServiceFailure after detaching; the retry finds nothing to
    // detach (NoSuchEntity). The connector reads back and reports the change applied.
    let detached = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&detached);
    let arn = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    let server = scripted(move |body| {
        let action = body.split('&').find_map(|p| p.strip_prefix("Action=")).unwrap_or("").to_owned();
        let error = |status: u16, code: &str| {
            (
                status,
                format!("req-{code}"),
                format!(
                    "<ErrorResponse><Error><Code>{code}</Code><Message>{code} here</Message></Error><RequestId>req-{code}</RequestId></ErrorResponse>"
                ),
            )
        };
        match action.as_str() {
            "GetUser" => ok(
                "GetUser",
                "<User><Path>/</Path><UserName>alice</UserName><UserId>AIDAX</UserId>\
                 <Arn>arn:aws:iam::123456789012:user/alice</Arn><CreateDate>2020-01-01T00:00:00Z</CreateDate></User>",
            ),
            "ListUserTags" => ok("ListUserTags", "<Tags></Tags><IsTruncated>false</IsTruncated>"),
            "ListAttachedUserPolicies" if seen.load(Ordering::SeqCst) == 0 => ok(
                "ListAttachedUserPolicies",
                "<AttachedPolicies><member><PolicyName>ReadOnlyAccess</PolicyName>\
                 <PolicyArn>arn:aws:iam::aws:policy/ReadOnlyAccess</PolicyArn></member></AttachedPolicies>\
                 <IsTruncated>false</IsTruncated>",
            ),
            "ListAttachedUserPolicies" => {
                ok("ListAttachedUserPolicies", "<AttachedPolicies></AttachedPolicies><IsTruncated>false</IsTruncated>")
            }
            "DetachUserPolicy" if seen.fetch_add(1, Ordering::SeqCst) == 0 => error(500, "ServiceFailure"),
            "DetachUserPolicy" => error(404, "NoSuchEntity"),
            other => error(400, &format!("Unexpected{other}")),
        }
    });
    let connector = canned_connector(&server.url, Arc::new(NoSleep::default()));
    let a = action(ActionKind::Revoke, target(USER_POLICY, "alice", Some(arn)));
    let before = block_on(connector.snapshot(&a.target)).unwrap();
    assert_eq!(before.state["attached"], true);
    let outcome = block_on(connector.execute(&a, &before)).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(outcome.request_ids, vec!["req-NoSuchEntity".to_owned()]);
    assert_eq!(detached.load(Ordering::SeqCst), 2);
}
