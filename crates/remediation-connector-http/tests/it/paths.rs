//! No identifier changes the route of a request: dot segments are refused before anything is
//! sent, and every other string stays inside its own segment of the URL actually sent.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use remediation_connector_http::{ApiPath, PathError, Request, ThrottleSignal};
use remediation_core::ConnectorErrorKind;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::client;

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    server
}

/// `%XX`-decodes a path segment as the server sees it.
fn decode(segment: &str) -> Vec<u8> {
    let b = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(byte) = u8::from_str_radix(&segment[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[tokio::test]
async fn a_dot_identifier_never_reaches_the_server() {
    let server = server().await;
    let (c, _) = client(&format!("{}/api/v1", server.uri()), ThrottleSignal::RetryAfter, None);
    // The attack: "remove member `..` from 00gADMINS" used to send DELETE /groups/00gADMINS/.
    for user in ["..", ".", "%2E%2E", "%2e%2E", ".%2E", "%252e%252e", "../00gOTHER", ""] {
        let e = c
            .send(Request::delete(ApiPath::new("/groups/{}/users/{}", ["00gADMINS", user])))
            .await
            .expect_err("refused");
        assert_eq!(e.kind, ConnectorErrorKind::Permanent, "{user:?}: {e}");
    }
    let sent = server.received_requests().await.unwrap_or_default();
    assert!(
        sent.is_empty(),
        "requests reached the server: {:?}",
        sent.iter().map(|r| r.url.path()).collect::<Vec<_>>()
    );

    // An ordinary identifier is sent, to exactly the template's route.
    c.send(Request::delete(ApiPath::new("/groups/{}/users/{}", ["00gADMINS", "alice@example.com"])))
        .await
        .expect("sent");
    let sent = server.received_requests().await.unwrap_or_default();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method.as_str(), "DELETE");
    assert_eq!(sent[0].url.path(), "/api/v1/groups/00gADMINS/users/alice@example.com");
}

#[test]
fn the_refusal_names_the_identifier_and_the_template() {
    let p = ApiPath::new("/groups/{}/users/{}", ["00g1", "%2e%2e"]);
    let Some(e @ PathError::DotSegment { .. }) = p.error() else { panic!("accepted: {p:?}") };
    let text = e.to_string();
    assert!(text.contains("\"%2e%2e\"") && text.contains("/groups/{}/users/{}"), "{text}");
}

/// Strings made mostly of what could move a path: dots, slashes, backslashes, percent signs
/// and hex digits, plus arbitrary Unicode.
fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[./\\\\%2eE5cCfF0a]{0,10}", "(\\.|%2[eE]|%25|/|\\\\|[a-z]){0,6}"]
}

#[test]
fn no_identifier_changes_the_route() {
    // One server and runtime for every case; each case checks only the requests it added.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let server = rt.block_on(server());
    let (c, _) = client(&format!("{}/api/v1", server.uri()), ThrottleSignal::RetryAfter, None);
    let mut runner = TestRunner::new(ProptestConfig { cases: 512, ..ProptestConfig::default() });
    let result = runner.run(&(identifier(), identifier()), |(group, user)| {
        rt.block_on(async {
            let before = server.received_requests().await.unwrap_or_default().len();
            let result = c.send(Request::delete(ApiPath::new("/groups/{}/users/{}", [&group, &user]))).await;
            let sent = server.received_requests().await.unwrap_or_default().split_off(before);
            match result {
                Ok(_) => {
                    prop_assert_eq!(sent.len(), 1);
                    prop_assert_eq!(sent[0].method.as_str(), "DELETE");
                    let segments: Vec<&str> = sent[0].url.path_segments().expect("a path").collect();
                    prop_assert_eq!(segments.len(), 6, "{}", sent[0].url.path());
                    prop_assert_eq!(&segments[..3], &["api", "v1", "groups"][..]);
                    prop_assert_eq!(segments[4], "users");
                    prop_assert_eq!(decode(segments[3]), group.as_bytes());
                    prop_assert_eq!(decode(segments[5]), user.as_bytes());
                }
                Err(e) => {
                    prop_assert!(sent.is_empty(), "refused yet sent: {}", e);
                    // Only what is, or decodes to, something that could climb or drop a
                    // segment is refused.
                    let suspicious = |s: &str| s.is_empty() || s.contains('.') || s.contains('%');
                    prop_assert!(suspicious(&group) || suspicious(&user), "refused {:?} / {:?}: {}", group, user, e);
                }
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
