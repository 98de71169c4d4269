//! Request signing: the signer sees the exact bytes sent and signs every attempt afresh.

use std::sync::{Arc, Mutex};

use remediation_connector_http::{
    HeaderName, HeaderValue, HttpClient, Method, RecordingSleeper, Request, RequestSigner, RetryPolicy, ThrottleSignal,
};
use remediation_core::ConnectorError;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Signs with the attempt number and the body length, and remembers the bodies it saw.
#[derive(Debug, Default)]
struct Counting {
    bodies: Mutex<Vec<Vec<u8>>>,
}

impl RequestSigner for Counting {
    fn sign(&self, _: &Method, url: &url::Url, body: &[u8]) -> Result<Vec<(HeaderName, HeaderValue)>, ConnectorError> {
        let mut bodies = self.bodies.lock().expect("not poisoned");
        bodies.push(body.to_vec());
        let value = format!("{}:{}:{}", bodies.len(), url.path(), body.len());
        Ok(vec![(
            HeaderName::from_static("x-test-signature"),
            HeaderValue::try_from(value).expect("a valid header value"),
        )])
    }
}

#[tokio::test]
async fn every_attempt_is_signed_over_the_bytes_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook/execute"))
        .and(header("x-test-signature", "1:/hook/execute:7"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook/execute"))
        .and(header("x-test-signature", "2:/hook/execute:7"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let signer = Arc::new(Counting::default());
    let client = HttpClient::builder(format!("{}/hook", server.uri()))
        .retry(RetryPolicy::new(ThrottleSignal::RetryAfter))
        .sleeper(Arc::new(RecordingSleeper::new()))
        .signer(signer.clone())
        .build()
        .expect("client builds");
    let response = client
        .send(Request::post("/execute").json(serde_json::json!({"a": 1})).idempotent())
        .await
        .expect("succeeds after the retry");
    assert_eq!(response.attempts(), 2);
    let bodies = signer.bodies.lock().expect("not poisoned").clone();
    assert_eq!(bodies, vec![br#"{"a":1}"#.to_vec(), br#"{"a":1}"#.to_vec()]);
    let received = server.received_requests().await.expect("recording is on");
    assert!(received.iter().all(|r| r.body == br#"{"a":1}"#));
}
