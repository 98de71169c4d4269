//! What goes over the wire: bounded response bodies, no cleartext to remote hosts unless
//! allowed, and `Content-Length: 0` on body-less writes.

use std::sync::Arc;

use remediation_connector_http::{
    ApiPath, ClientAuth, ClientCredentials, DEFAULT_MAX_RESPONSE_BYTES, HttpClient, HttpError, Request, TokenOptions,
};
use remediation_core::{ConnectorErrorKind, SystemClock};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::secrets::Buf;

/// A one-connection HTTP server on loopback that answers `response` and hands back the raw
/// bytes of the request it read.
async fn raw_server(response: Vec<u8>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(&response).await.expect("write");
        socket.shutdown().await.ok();
        request
    });
    (format!("http://{addr}"), task)
}

const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn body_less_writes_send_content_length_zero() {
    for (method, request) in [
        ("POST", Request::post(ApiPath::new("/users/{}/revokeSignInSessions", ["u1"]))),
        ("PUT", Request::put(ApiPath::new("/groups/{}/users/{}", ["g1", "u1"]))),
        ("PATCH", Request::patch(ApiPath::new("/users/{}", ["u1"]))),
    ] {
        let (base, server) = raw_server(NO_CONTENT.to_vec()).await;
        let c = HttpClient::builder(base).build().expect("client");
        c.send(request).await.expect("sent");
        let wire = String::from_utf8(server.await.expect("server")).expect("ascii").to_ascii_lowercase();
        assert!(wire.starts_with(&format!("{} ", method.to_ascii_lowercase())), "{wire}");
        assert!(wire.contains("\r\ncontent-length: 0\r\n"), "{method} without Content-Length: {wire}");
        assert!(!wire.contains("transfer-encoding"), "{wire}");
    }
}

#[tokio::test]
async fn a_body_past_the_limit_is_refused_with_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'a'; 1025]))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path("/fits"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'a'; 1024]))
        .mount(&server)
        .await;
    let c = HttpClient::builder(server.uri()).max_response_bytes(1024).build().expect("client");
    let e = c.send(Request::get("/big")).await.expect_err("too big");
    assert_eq!(e.kind, ConnectorErrorKind::Permanent);
    assert!(e.message.contains("1024-byte limit"), "{e}");
    assert_eq!(c.send(Request::get("/fits")).await.expect("fits").body().len(), 1024);
}

#[tokio::test]
async fn a_chunked_body_is_counted_while_it_is_read() {
    // No Content-Length announces the size: the limit must hold while reading.
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n400\r\n".to_vec();
    chunked.extend_from_slice(&[b'a'; 1024]);
    chunked.extend_from_slice(b"\r\n1\r\nb\r\n0\r\n\r\n");
    let (base, server) = raw_server(chunked).await;
    let c = HttpClient::builder(base).max_response_bytes(1024).build().expect("client");
    let e = c.send(Request::get("/stream")).await.expect_err("too big");
    assert!(e.message.contains("exceeds the 1024-byte limit"), "{e}");
    server.await.expect("server");
}

#[tokio::test]
async fn the_default_limit_is_sixteen_mebibytes() {
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 16 * 1024 * 1024);
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'a'; DEFAULT_MAX_RESPONSE_BYTES + 1]))
        .mount(&server)
        .await;
    let c = HttpClient::builder(server.uri()).build().expect("client");
    let e = c.send(Request::get("/users")).await.expect_err("too big");
    assert!(e.message.contains(&format!("{DEFAULT_MAX_RESPONSE_BYTES}-byte limit")), "{e}");
}

#[test]
fn cleartext_http_is_refused_unless_loopback_or_allowed() {
    for remote in ["http://example.okta.com/api/v1", "http://10.0.0.8/scim/v2", "http://127.0.0.1.example.com/"] {
        let e = HttpClient::builder(remote).build().expect_err("cleartext to a remote host");
        assert!(matches!(e, HttpError::InsecureUrl { .. }), "{remote}: {e}");
        assert!(e.to_string().contains("allow_insecure_http"), "{e}");
    }
    for local in ["http://127.0.0.1:8080/api", "http://localhost:1/", "http://[::1]:9/x", "https://example.okta.com/"] {
        HttpClient::builder(local).build().expect(local);
    }

    let logs = Buf::default();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(logs.clone()).finish();
    tracing::subscriber::with_default(subscriber, || {
        HttpClient::builder("http://example.okta.com/api/v1?token=x")
            .allow_insecure_http(true)
            .build()
            .expect("allowed")
    });
    let logged = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logged.contains("WARN") && logged.contains("allow_insecure_http"), "{logged}");
    assert!(logged.contains("http://example.okta.com/api/v1") && !logged.contains("token=x"), "{logged}");
}

#[test]
fn cleartext_token_endpoints_are_refused_too() {
    let make = |url: &str, allow: bool| {
        ClientCredentials::new(
            url,
            "client",
            ClientAuth::Secret(SecretString::from("s")),
            &["scope"],
            Arc::new(SystemClock),
            TokenOptions { allow_insecure_http: allow, ..TokenOptions::default() },
        )
    };
    assert!(matches!(make("http://login.example.com/token", false), Err(HttpError::InsecureUrl { .. })));
    make("http://login.example.com/token", true).expect("allowed");
    make("http://127.0.0.1:1/token", false).expect("loopback");
}
