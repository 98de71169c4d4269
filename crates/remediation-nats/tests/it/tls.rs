//! TLS against a private server with a certificate from a CA made for the test.

use remediation_core::EventSink as _;
use remediation_nats::testing::{PrivateNats, PrivateNatsOptions, TestCa};

use crate::{events, events_config, unique};

#[tokio::test]
async fn tls_with_the_private_ca_works_and_anything_else_is_refused_clearly() {
    let Some(server) = PrivateNats::start(PrivateNatsOptions { tls: true, ..Default::default() }) else { return };
    let id = unique();

    // tls:// with the CA that signed the server's certificate.
    let mut config = events_config(&server.url(), &id);
    config.connection.tls_ca_file = Some(server.ca_file());
    let sink = config.build_events().unwrap();
    sink.deliver(&events(&config.tenant, 3)).await.unwrap();

    // nats:// to a server that demands TLS.
    let mut plain = config.clone();
    plain.connection.url = format!("nats://127.0.0.1:{}", server.port());
    plain.connection.tls_ca_file = None;
    let err = plain.build_events().unwrap().ensure_stream().await.expect_err("plain URL");
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot connect to NATS at nats://127.0.0.1:{}", server.port())), "{text}");
    assert!(text.contains("the server requires TLS but the URL is nats://; use a tls:// URL"), "{text}");

    // tls:// trusting another CA.
    let other = TestCa::generate("other");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.pem"), other.ca_pem).unwrap();
    let mut untrusted = config.clone();
    untrusted.connection.tls_ca_file = Some(dir.path().join("other.pem"));
    let err = untrusted.build_events().unwrap().ensure_stream().await.expect_err("untrusted CA");
    let text = err.to_string();
    assert!(text.contains("invalid peer certificate") && text.contains("UnknownIssuer"), "{text}");

    // tls:// with the system's roots, which do not hold the test CA.
    let mut system = config.clone();
    system.connection.tls_ca_file = None;
    let err = system.build_events().unwrap().ensure_stream().await.expect_err("not a public CA");
    assert!(err.to_string().contains("invalid peer certificate"), "{err}");
}
