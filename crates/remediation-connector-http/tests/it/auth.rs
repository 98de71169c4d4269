//! Token sources: one refresh-and-retry on 401, caching until shortly before expiry, and
//! the JWTs we sign.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use remediation_connector_http::{
    ClientAuth, ClientCredentials, JwtBearer, JwtKey, Request, ServiceAccountKey, ThrottleSignal, TokenOptions,
    TokenSource,
};
use remediation_core::{ConnectorErrorKind, ManualClock};
use secrecy::{ExposeSecret, SecretString};
use time::macros::datetime;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{PRIVATE_KEY, PUBLIC_KEY, client, ssws};

fn token(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"access_token": value, "token_type": "Bearer", "expires_in": 3600}))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_static_token_gets_one_401_and_no_retry() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let (c, _) = client(&server.uri(), ThrottleSignal::OktaRateLimitReset, Some(ssws("static-token-1")));
    let e = c.send(Request::get("/users/me")).await.expect_err("401");
    assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated);
    let reqs = server.received_requests().await.unwrap_or_default();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].headers.get("authorization").and_then(|v| v.to_str().ok()), Some("SSWS static-token-1"));
}

fn secret_source(server: &MockServer, clock: Arc<ManualClock>) -> Arc<dyn TokenSource> {
    Arc::new(
        ClientCredentials::new(
            &format!("{}/oauth2/v1/token", server.uri()),
            "client-1",
            ClientAuth::Secret(SecretString::from("client-secret-value")),
            &["okta.users.manage"],
            clock,
            TokenOptions::default(),
        )
        .expect("source"),
    )
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth2/v1/token"))
        .respond_with(token("first"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/oauth2/v1/token")).respond_with(token("second")).mount(&server).await;
    Mock::given(path("/api/x"))
        .and(header("authorization", "Bearer first"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/api/x"))
        .and(header("authorization", "Bearer second"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let (c, _) = client(&server.uri(), ThrottleSignal::RetryAfter, Some(secret_source(&server, clock)));
    c.send(Request::post("/api/x")).await.expect("refreshed and retried, even a POST");
    let reqs = server.received_requests().await.unwrap_or_default();
    let paths: Vec<&str> = reqs.iter().map(|r| r.url.path()).collect();
    assert_eq!(paths, ["/oauth2/v1/token", "/api/x", "/oauth2/v1/token", "/api/x"]);
    let form = &reqs[0].body;
    assert_eq!(form_field(form, "grant_type").as_deref(), Some("client_credentials"));
    assert_eq!(form_field(form, "client_id").as_deref(), Some("client-1"));
    assert_eq!(form_field(form, "scope").as_deref(), Some("okta.users.manage"));
}

#[tokio::test]
async fn a_refresh_that_does_not_help_is_unauthenticated_after_one_retry() {
    let server = MockServer::start().await;
    Mock::given(path("/token")).respond_with(token("t")).mount(&server).await;
    Mock::given(path("/api")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let source = Arc::new(
        ClientCredentials::new(
            &format!("{}/token", server.uri()),
            "c",
            ClientAuth::Secret(SecretString::from("s3cret")),
            &[],
            clock,
            TokenOptions::default(),
        )
        .expect("source"),
    );
    let (c, _) = client(&server.uri(), ThrottleSignal::RetryAfter, Some(source));
    let e = c.send(Request::get("/api")).await.expect_err("still 401");
    assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated);
    let reqs = server.received_requests().await.unwrap_or_default();
    assert_eq!(reqs.iter().filter(|r| r.url.path() == "/api").count(), 2);
    assert_eq!(reqs.iter().filter(|r| r.url.path() == "/token").count(), 2);
}

#[tokio::test]
async fn tokens_are_cached_until_shortly_before_expiry() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth2/v1/token")).respond_with(token("cached")).mount(&server).await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let source = secret_source(&server, Arc::clone(&clock));
    let a = source.authorization().await.expect("token");
    clock.advance(time::Duration::seconds(3000));
    let b = source.authorization().await.expect("cached");
    assert_eq!(a.expose_secret(), "Bearer cached");
    assert_eq!(b.expose_secret(), "Bearer cached");
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
    clock.advance(time::Duration::seconds(550)); // 50 s before expiry: inside the margin
    source.authorization().await.expect("refreshed");
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(2));
}

#[tokio::test]
async fn a_refused_client_is_unauthenticated_with_the_endpoint_message() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth2/v1/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client", "error_description": "The client secret supplied for a confidential client is invalid."
        })))
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let e = secret_source(&server, clock).authorization().await.expect_err("refused");
    assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated);
    assert!(e.message.contains("invalid_client"), "{e}");
    assert!(!e.to_string().contains("client-secret-value"));
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

fn decode(jwt: &str, aud: &str) -> (jsonwebtoken::Header, Claims) {
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.validate_exp = false;
    let data = jsonwebtoken::decode::<Claims>(jwt, &key, &v).expect("valid signature");
    (data.header, data.claims)
}

#[tokio::test]
async fn private_key_jwt_sends_a_signed_client_assertion() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth2/v1/token"))
        .and(body_string_contains(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
        ))
        .respond_with(token("pkjwt"))
        .mount(&server)
        .await;
    let url = format!("{}/oauth2/v1/token", server.uri());
    let key = JwtKey::from_rsa_pem(&SecretString::from(PRIVATE_KEY), Some("kid-1".to_owned())).expect("key");
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let source = ClientCredentials::new(
        &url,
        "0oa-client",
        ClientAuth::PrivateKeyJwt(key),
        &["okta.users.manage", "okta.groups.manage"],
        clock,
        TokenOptions::default(),
    )
    .expect("source");
    assert_eq!(source.authorization().await.expect("token").expose_secret(), "Bearer pkjwt");
    let reqs = server.received_requests().await.unwrap_or_default();
    let body = &reqs[0].body;
    assert_eq!(form_field(body, "scope").as_deref(), Some("okta.users.manage okta.groups.manage"));
    assert!(form_field(body, "client_secret").is_none());
    let (header, claims) = decode(&form_field(body, "client_assertion").expect("assertion"), &url);
    assert_eq!(header.kid.as_deref(), Some("kid-1"));
    assert_eq!(
        (claims.iss.as_str(), claims.sub.as_str(), claims.aud.as_str()),
        ("0oa-client", "0oa-client", url.as_str())
    );
    assert_eq!(claims.exp - claims.iat, 300);
    assert!(claims.jti.is_some_and(|j| !j.is_empty()));
}

#[tokio::test]
async fn the_jwt_bearer_grant_signs_as_a_service_account() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .and(body_string_contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"))
        .respond_with(token("ya29"))
        .mount(&server)
        .await;
    let url = format!("{}/token", server.uri());
    let file = serde_json::json!({
        "type": "service_account", "client_email": "robot@project.iam.gserviceaccount.com",
        "private_key_id": "abc123", "private_key": PRIVATE_KEY, "token_uri": "https://oauth2.googleapis.com/token"
    });
    let account = ServiceAccountKey::from_json(&SecretString::from(file.to_string())).expect("key file");
    assert!(!format!("{account:?}").contains("PRIVATE KEY"));
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let options = TokenOptions { assertion_lifetime: std::time::Duration::from_secs(7200), ..TokenOptions::default() };
    let source = JwtBearer::service_account(
        &account,
        Some(&url),
        Some("admin@example.com".to_owned()),
        &["https://www.googleapis.com/auth/admin.directory.user"],
        clock,
        options,
    )
    .expect("source");
    assert_eq!(source.authorization().await.expect("token").expose_secret(), "Bearer ya29");
    let reqs = server.received_requests().await.unwrap_or_default();
    let (header, claims) = decode(&form_field(&reqs[0].body, "assertion").expect("assertion"), &url);
    assert_eq!(header.kid.as_deref(), Some("abc123"));
    assert_eq!(claims.iss, "robot@project.iam.gserviceaccount.com");
    assert_eq!(claims.sub, "admin@example.com");
    assert_eq!(claims.scope.as_deref(), Some("https://www.googleapis.com/auth/admin.directory.user"));
    assert_eq!(claims.iat, datetime!(2026-11-26 10:00:00 UTC).unix_timestamp());
    assert_eq!(claims.exp - claims.iat, 3600, "capped at an hour");
}

#[test]
fn a_bad_key_is_an_error_that_does_not_quote_it() {
    let bad = SecretString::from("-----BEGIN PRIVATE KEY-----\nnot-a-key-material-xyz\n-----END PRIVATE KEY-----");
    let e = JwtKey::from_rsa_pem(&bad, None).expect_err("invalid");
    assert!(!format!("{e} {e:?}").contains("not-a-key-material-xyz"));
}
