//! Retries: each provider's throttling signal, bounded attempts, idempotency, request ids.

use std::time::Duration;

use remediation_connector_http::{Request, ThrottleSignal, retry_after};
use remediation_core::ConnectorErrorKind;
use reqwest::header::{HeaderMap, HeaderValue};
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::client;

const DATE: &str = "Thu, 26 Nov 2026 10:00:00 GMT";
const DATE_EPOCH: i64 = 1_795_687_200;

async fn ok_after(server: &MockServer, verb: &str, p: &str, first: ResponseTemplate, times: u64) {
    Mock::given(method(verb))
        .and(path(p))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method(verb))
        .and(path(p))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ok": true}))
                .insert_header("x-okta-request-id", "req-ok"),
        )
        .mount(server)
        .await;
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = datetime!(2026-11-26 10:00:00 UTC);
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("17"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(17)));
    h.insert("retry-after", HeaderValue::from_static("Thu, 26 Nov 2026 10:01:30 GMT"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
    // Compared with the response's Date, not our clock.
    h.insert("date", HeaderValue::from_static("Thu, 26 Nov 2026 10:01:00 GMT"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
    h.insert("retry-after", HeaderValue::from_static("soon"));
    assert_eq!(retry_after(&h, now), None);
    h.insert("retry-after", HeaderValue::from_static("Thu, 26 Nov 2026 09:00:00 GMT"));
    assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
}

#[tokio::test]
async fn okta_429_waits_until_the_reset_measured_from_the_date_header() {
    let server = MockServer::start().await;
    let throttled = ResponseTemplate::new(429)
        .insert_header("date", DATE)
        .insert_header("x-rate-limit-limit", "600")
        .insert_header("x-rate-limit-remaining", "0")
        .insert_header("x-rate-limit-reset", (DATE_EPOCH + 7).to_string().as_str())
        .insert_header("x-okta-request-id", "req-429")
        .set_body_json(serde_json::json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."}));
    ok_after(&server, "GET", "/api/v1/users/u1", throttled, 1).await;
    let (c, sleeper) = client(&format!("{}/api/v1", server.uri()), ThrottleSignal::OktaRateLimitReset, None);
    let r = c.send(Request::get("/users/u1")).await.expect("succeeds after waiting");
    assert_eq!(sleeper.waits(), vec![Duration::from_secs(7)]);
    assert_eq!(r.request_ids(), ["req-429", "req-ok"]);
    assert_eq!(r.attempts(), 2);
}

#[tokio::test]
async fn a_wait_longer_than_the_maximum_is_returned_as_throttled() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "600"))
        .mount(&server)
        .await;
    let (c, sleeper) = client(&server.uri(), ThrottleSignal::RetryAfter, None);
    let e = c.send(Request::get("/users/x")).await.expect_err("too long to wait");
    assert_eq!(e.kind, ConnectorErrorKind::Throttled { retry_after: Some(Duration::from_secs(600)) });
    assert!(sleeper.waits().is_empty());
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
}

#[tokio::test]
async fn throttling_is_retried_within_bounded_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .mount(&server)
        .await;
    let (c, sleeper) = client(&server.uri(), ThrottleSignal::RetryAfter, None);
    let e = c.send(Request::get("/x")).await.expect_err("still throttled");
    assert_eq!(e.kind, ConnectorErrorKind::Throttled { retry_after: Some(Duration::from_secs(2)) });
    assert_eq!(sleeper.waits().len(), 3);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(4));
}

#[tokio::test]
async fn a_5xx_is_retried_for_idempotent_calls_only() {
    let server = MockServer::start().await;
    ok_after(&server, "GET", "/get", ResponseTemplate::new(503), 1).await;
    ok_after(&server, "POST", "/post", ResponseTemplate::new(500), 1).await;
    ok_after(&server, "POST", "/marked", ResponseTemplate::new(502), 1).await;
    let (c, sleeper) = client(&server.uri(), ThrottleSignal::RetryAfter, None);
    c.send(Request::get("/get")).await.expect("GET retried");
    let e = c.send(Request::post("/post")).await.expect_err("POST not retried");
    assert_eq!(e.kind, ConnectorErrorKind::Transient);
    c.send(Request::post("/marked").idempotent()).await.expect("marked POST retried");
    let reqs = server.received_requests().await.unwrap_or_default();
    let count = |p: &str| reqs.iter().filter(|r| r.url.path() == p).count();
    assert_eq!((count("/get"), count("/post"), count("/marked")), (2, 1, 2));
    assert_eq!(sleeper.waits(), vec![Duration::from_millis(500), Duration::from_millis(500)]);
}

#[tokio::test]
async fn a_throttled_post_is_retried_because_it_was_refused() {
    let server = MockServer::start().await;
    ok_after(&server, "POST", "/p", ResponseTemplate::new(429).insert_header("retry-after", "1"), 1).await;
    let (c, _) = client(&server.uri(), ThrottleSignal::RetryAfter, None);
    c.send(Request::post("/p")).await.expect("retried after 429");
}

#[tokio::test]
async fn github_primary_secondary_and_permission_403s() {
    let server = MockServer::start().await;
    let primary = ResponseTemplate::new(403)
        .insert_header("date", DATE)
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", (DATE_EPOCH + 42).to_string().as_str());
    ok_after(&server, "GET", "/primary", primary, 1).await;
    let secondary = ResponseTemplate::new(403)
        .insert_header("x-ratelimit-remaining", "12")
        .set_body_json(serde_json::json!({"message": "You have exceeded a secondary rate limit."}));
    ok_after(&server, "GET", "/secondary", secondary, 1).await;
    ok_after(&server, "GET", "/after", ResponseTemplate::new(429).insert_header("retry-after", "5"), 1).await;
    Mock::given(method("GET"))
        .and(path("/denied"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&server)
        .await;
    let (c, sleeper) = client(&server.uri(), ThrottleSignal::GitHub, None);
    c.send(Request::get("/primary")).await.expect("waits for the reset");
    c.send(Request::get("/secondary")).await.expect("waits a minute");
    c.send(Request::get("/after")).await.expect("honours retry-after");
    let e = c.send(Request::get("/denied")).await.expect_err("a plain 403");
    assert_eq!(e.kind, ConnectorErrorKind::Forbidden);
    assert_eq!(sleeper.waits(), vec![Duration::from_secs(42), Duration::from_secs(60), Duration::from_secs(5)]);
}

#[tokio::test]
async fn google_rate_limit_403_backs_off_but_a_permission_403_does_not() {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(403).set_body_json(serde_json::json!({
        "error": {"code": 403, "message": "Rate Limit Exceeded", "errors": [{"reason": "userRateLimitExceeded", "domain": "usageLimits"}]}
    }));
    ok_after(&server, "PATCH", "/users/a", limited, 2).await;
    ok_after(
        &server,
        "GET",
        "/backend",
        ResponseTemplate::new(503)
            .set_body_json(serde_json::json!({"error": {"errors": [{"reason": "backendError"}]}})),
        1,
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/forbidden"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "error": {"code": 403, "message": "Not Authorized to access this resource/api", "errors": [{"reason": "forbidden"}]}
        })))
        .mount(&server)
        .await;
    let (c, sleeper) = client(&server.uri(), ThrottleSignal::Google, None);
    c.send(Request::patch("/users/a")).await.expect("rate limit refused, so retried");
    c.send(Request::get("/backend")).await.expect("backendError backs off");
    let e = c.send(Request::get("/forbidden")).await.expect_err("permission");
    assert_eq!(e.kind, ConnectorErrorKind::Forbidden);
    assert_eq!(sleeper.waits(), vec![Duration::from_millis(500), Duration::from_secs(1), Duration::from_millis(500)]);
}

#[tokio::test]
async fn errors_keep_the_request_id_and_the_status_class() {
    let server = MockServer::start().await;
    for (p, status) in [("/404", 404), ("/409", 409), ("/412", 412), ("/400", 400), ("/403", 403)] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(status).insert_header("request-id", format!("graph-{status}").as_str()))
            .mount(&server)
            .await;
    }
    let (c, _) = client(&server.uri(), ThrottleSignal::RetryAfter, None);
    let mut seen = Vec::new();
    for p in ["/404", "/409", "/412", "/400", "/403"] {
        let e = c.send(Request::delete(p)).await.expect_err("error status");
        seen.push((e.kind, e.request_id));
    }
    let id = |s: &str| Some(format!("graph-{s}"));
    assert_eq!(
        seen,
        vec![
            (ConnectorErrorKind::NotFound, id("404")),
            (ConnectorErrorKind::Conflict, id("409")),
            (ConnectorErrorKind::Conflict, id("412")),
            (ConnectorErrorKind::Permanent, id("400")),
            (ConnectorErrorKind::Forbidden, id("403")),
        ]
    );
}

#[tokio::test]
async fn links_to_another_origin_are_refused() {
    let (c, _) = client("http://127.0.0.1:9/api/v1", ThrottleSignal::RetryAfter, None);
    let e = c.send(Request::link("https://evil.example/steal")).await.expect_err("other origin");
    assert_eq!(e.kind, ConnectorErrorKind::Permanent);
}

#[tokio::test]
async fn requests_carry_the_user_agent_default_headers_and_a_json_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/apps/0oa1/users"))
        .and(wiremock::matchers::header("user-agent", remediation_connector_http::USER_AGENT))
        .and(wiremock::matchers::header("accept", "application/json"))
        .and(wiremock::matchers::header("content-type", "application/json"))
        .and(wiremock::matchers::body_json(serde_json::json!({"id": "00u1", "scope": "USER"})))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let c = remediation_connector_http::HttpClient::builder(format!("{}/api/v1/", server.uri()))
        .default_header("accept", "application/json")
        .build()
        .expect("client");
    c.send(Request::post("/apps/0oa1/users").json(serde_json::json!({"id": "00u1", "scope": "USER"})))
        .await
        .expect("matched");
    assert!(remediation_connector_http::USER_AGENT.starts_with("remediation/"));
    assert_eq!(remediation_connector_http::ApiPath::new("/users/{}", ["a b/c@d.e"]), "/users/a%20b%2Fc@d.e");
}
