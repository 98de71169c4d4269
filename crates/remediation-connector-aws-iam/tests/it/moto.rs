//! A moto server to test against: the shared one named by `REMEDIATION_TEST_MOTO`, or a
//! private one started from `REMEDIATION_TEST_MOTO_SERVER` that enforces IAM policies.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_iam::Client;
use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use rand::Rng;
use remediation_connector_aws_iam::{AwsCredentials, AwsIamConfig, AwsIamConnector};
use secrecy::SecretString;

/// The shared moto server's URL, or `None` after printing why the test skips.
pub(crate) fn url(test: &str) -> Option<String> {
    remediation_testkit::real_server::require(
        test,
        "REMEDIATION_TEST_MOTO",
        "the URL of a moto server; `eval \"$(.ci/setup-moto.sh)\"` starts one and sets it",
    )
}

/// A name no earlier run used: `prefix-` and random hex.
pub(crate) fn fresh(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}

/// An SDK client for seeding, signing with the given key.
pub(crate) fn client(url: &str, access_key_id: &str, secret: &str) -> Client {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(access_key_id, secret, None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// The seeding client for the shared server, which accepts any credentials.
pub(crate) fn admin(url: &str) -> Client {
    client(url, "AKIAMOTOADMIN", "moto-admin-secret")
}

/// A connector for `url` signing with `credentials`, with a short backoff.
pub(crate) fn connector(url: &str, id: &str, credentials: AwsCredentials, protected: &[&str]) -> AwsIamConnector {
    let mut config = AwsIamConfig::new(id, "UNUSED_AK", "UNUSED_SK");
    config.endpoint_url = Some(url.to_owned());
    config.protected_users = protected.iter().map(|s| (*s).to_owned()).collect();
    config.backoff_ms = 20;
    AwsIamConnector::new(&config, credentials).unwrap()
}

/// Dummy credentials with distinctive secrets, for the leak checks.
pub(crate) fn dummy_credentials() -> AwsCredentials {
    AwsCredentials::new("AKIAMOTOCONNECTOR", SecretString::from(fresh("moto-secret-key")))
        .with_session_token(SecretString::from(fresh("moto-session-token")))
}

/// Creates a user.
pub(crate) async fn user(iam: &Client, name: &str) {
    iam.create_user().user_name(name).send().await.unwrap();
}

/// Creates a managed policy and returns its ARN.
pub(crate) async fn policy(iam: &Client, name: &str) -> String {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    let out = iam.create_policy().policy_name(name).policy_document(doc).send().await.unwrap();
    out.policy().and_then(|p| p.arn()).unwrap().to_owned()
}

/// Creates an access key for `user` and returns its id and secret.
pub(crate) async fn access_key(iam: &Client, user: &str) -> (String, String) {
    let out = iam.create_access_key().user_name(user).send().await.unwrap();
    let key = out.access_key().unwrap();
    (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
}

/// A private moto server that enforces IAM policies once seeded; killed on drop.
pub(crate) struct AuthMoto {
    child: Child,
    pub(crate) url: String,
    port: u16,
}

impl AuthMoto {
    /// Starts one from `REMEDIATION_TEST_MOTO_SERVER`, or `None` after printing why not.
    pub(crate) fn start() -> Option<Self> {
        let program = remediation_testkit::real_server::require(
            "the forbidden check",
            "REMEDIATION_TEST_MOTO_SERVER",
            "the moto_server program; `.ci/setup-moto.sh` prints it",
        )?;
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self { child, url: format!("http://127.0.0.1:{port}"), port })
    }

    /// From now on moto checks every request against the caller's IAM policies.
    pub(crate) fn enforce(&self) {
        let body = "0";
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"), "{response}");
    }
}

impl Drop for AuthMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
