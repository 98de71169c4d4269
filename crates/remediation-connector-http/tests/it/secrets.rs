//! Secrets never appear in `Debug`, errors or logs.

use std::io;
use std::sync::{Arc, Mutex};

use remediation_connector_http::{ClientAuth, ClientCredentials, JwtKey, Request, ThrottleSignal, TokenOptions};
use remediation_core::SystemClock;
use secrecy::SecretString;
use tracing::instrument::WithSubscriber;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{PRIVATE_KEY, client, ssws};

#[derive(Clone, Default)]
pub(crate) struct Buf(pub(crate) Arc<Mutex<Vec<u8>>>);

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_stay_out_of_debug_errors_and_logs() {
    const TOKEN: &str = "ssws-token-do-not-leak";
    const SECRET: &str = "client-secret-do-not-leak";
    let server = MockServer::start().await;
    Mock::given(path("/oauth2/v1/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"access_token": "access-do-not-leak", "expires_in": 60})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/users/x")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    let logs = Buf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();

    let mut seen = Vec::new();
    async {
        let (c, _) = client(&format!("{}/api/v1", server.uri()), ThrottleSignal::OktaRateLimitReset, Some(ssws(TOKEN)));
        seen.push(format!("{c:?}"));
        let e = c.send(Request::get("/users/x")).await.expect_err("401");
        seen.push(format!("{e} {e:?}"));

        let secret_source = ClientCredentials::new(
            &format!("{}/oauth2/v1/token", server.uri()),
            "client",
            ClientAuth::Secret(SecretString::from(SECRET)),
            &[],
            Arc::new(SystemClock),
            TokenOptions::default(),
        )
        .expect("source");
        seen.push(format!("{secret_source:?}"));
        let (c, _) =
            client(&format!("{}/api/v1", server.uri()), ThrottleSignal::RetryAfter, Some(Arc::new(secret_source)));
        seen.push(format!("{c:?}"));
        let e = c.send(Request::get("/users/x")).await.expect_err("401");
        seen.push(format!("{e} {e:?}"));

        let key = JwtKey::from_rsa_pem(&SecretString::from(PRIVATE_KEY), None).expect("key");
        seen.push(format!("{key:?} {:?}", ClientAuth::PrivateKeyJwt(key.clone())));
    }
    .with_subscriber(subscriber)
    .await;
    let logged = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    assert!(logged.contains("401"), "the test should have logged the exchange: {logged}");
    seen.push(logged);
    let key_body = PRIVATE_KEY.lines().nth(1).expect("key line");
    for s in &seen {
        for secret in [TOKEN, SECRET, "access-do-not-leak", key_body] {
            assert!(!s.contains(secret), "secret leaked: {s}");
        }
    }
}
