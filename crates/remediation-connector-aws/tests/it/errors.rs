//! Error answers against a scripted server: throttling is retried after the `Retry-After`
//! AWS sent (through the injectable sleeper, so nothing sleeps), and errors keep AWS's code,
//! message and request id.

use std::sync::Arc;
use std::time::Duration;

use remediation_connector_aws::{AwsConfig, AwsConnector, AwsCredentials};
use remediation_connector_http::RecordingSleeper;
use remediation_core::{Connector, ConnectorErrorKind, Target};
use secrecy::SecretString;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::block_on;

const SSE_S3: &str = r#"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"#;

fn connector(url: &str, sleeper: Arc<RecordingSleeper>, attempts: u32) -> AwsConnector {
    let mut config = AwsConfig::new("us-east-1", "AK", "SK");
    config.endpoint_url = Some(url.to_owned());
    config.max_attempts = attempts;
    AwsConnector::new(&config, AwsCredentials::new("AKIAX", SecretString::from("errors-secret")))
        .unwrap()
        .with_sleeper(sleeper)
}

fn bucket() -> Target {
    Target { identity: "my-bucket".into(), resource: None, grant: None, grant_type: "s3_bucket".into() }
}

fn slow_down() -> ResponseTemplate {
    ResponseTemplate::new(503).insert_header("retry-after", "2").set_body_string(
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>REQ-SLOW</RequestId></Error>",
    )
}

async fn no_public_access_block(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/my-bucket"))
        .and(query_param("publicAccessBlock", ""))
        .respond_with(
            ResponseTemplate::new(404).set_body_string(
                "<Error><Code>NoSuchPublicAccessBlockConfiguration</Code><Message>none</Message></Error>",
            ),
        )
        .mount(server)
        .await;
}

#[test]
fn throttling_is_retried_after_the_wait_aws_asks_for() {
    block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/my-bucket"))
            .and(query_param("encryption", ""))
            .respond_with(slow_down())
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/my-bucket"))
            .and(query_param("encryption", ""))
            .respond_with(ResponseTemplate::new(200).set_body_string(SSE_S3))
            .with_priority(2)
            .mount(&server)
            .await;
        no_public_access_block(&server).await;
        let sleeper = Arc::new(RecordingSleeper::new());
        let c = connector(&server.uri(), Arc::clone(&sleeper), 3);
        let s = c.snapshot(&bucket()).await.unwrap();
        assert_eq!(s.state["default_encryption"][0]["sse_algorithm"], "AES256");
        assert_eq!(s.state["public_access_block"], serde_json::Value::Null);
        assert_eq!(sleeper.waits(), vec![Duration::from_secs(2), Duration::from_secs(2)]);
        // Every request was signed for S3.
        for r in server.received_requests().await.unwrap() {
            let auth = r.headers.get("authorization").unwrap().to_str().unwrap().to_owned();
            assert!(
                auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAX/") && auth.contains("/us-east-1/s3/aws4_request"),
                "{auth}"
            );
            assert!(r.headers.get("x-amz-content-sha256").is_some());
            assert!(r.headers.get("x-amz-security-token").is_none());
        }
    });
}

#[test]
fn exhausted_throttling_and_access_denied_keep_aws_details() {
    block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/my-bucket"))
            .and(query_param("encryption", ""))
            .respond_with(slow_down())
            .mount(&server)
            .await;
        let sleeper = Arc::new(RecordingSleeper::new());
        let e = connector(&server.uri(), Arc::clone(&sleeper), 2).snapshot(&bucket()).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Throttled { retry_after: Some(Duration::from_secs(2)) });
        assert_eq!(e.request_id.as_deref(), Some("REQ-SLOW"));
        assert!(e.message.contains("SlowDown: Please reduce"), "{e}");
        assert_eq!(sleeper.waits().len(), 1);

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(403)
                    .insert_header("x-amz-request-id", "REQ-DENIED")
                    .set_body_string("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"),
            )
            .mount(&server)
            .await;
        let sleeper = Arc::new(RecordingSleeper::new());
        let e = connector(&server.uri(), Arc::clone(&sleeper), 3).snapshot(&bucket()).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Forbidden);
        assert_eq!(e.request_id.as_deref(), Some("REQ-DENIED"));
        assert!(sleeper.waits().is_empty(), "a permission error is not retried");
        assert!(!e.to_string().contains("errors-secret"));
    });
}
