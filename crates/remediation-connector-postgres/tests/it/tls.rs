//! TLS against a private PostgreSQL ([`remediation_testkit::private_pg::PrivatePg`]) whose
//! certificate was signed by a CA made for the test, and which accepts only TLS connections
//! with a SCRAM password.

use std::path::Path;

use remediation_connector_postgres::{PostgresConfig, PostgresConnector};
use remediation_core::{Connector, ConnectorErrorKind};
use remediation_testkit::private_pg::PrivatePg;
use remediation_testkit::tls::TestPki;

use crate::block_on;

const PASSWORD: &str = "pg-tls-Secret-9931";

/// A connector to `server` for `host` with `sslmode` (none: the default) and `ca_file`.
fn connector(server: &PrivatePg, host: &str, sslmode: Option<&str>, ca_file: Option<&Path>) -> PostgresConnector {
    let mode = sslmode.map(|m| format!(" sslmode={m}")).unwrap_or_default();
    let password = server.dir().join("client-password");
    std::fs::write(&password, PASSWORD).unwrap();
    let config = PostgresConfig {
        password_file: Some(password),
        ca_file: ca_file.map(Path::to_path_buf),
        connect_timeout_secs: 5,
        ..PostgresConfig::new(
            "pg-tls",
            format!("host={host} port={} user=postgres dbname=postgres{mode}", server.port()),
        )
    };
    PostgresConnector::from_config(&config).unwrap()
}

#[test]
fn tls_with_the_configured_ca_connects_and_the_server_refuses_plaintext() {
    let pki = TestPki::generate("database").unwrap();
    let Some(server) = PrivatePg::start(&pki, PASSWORD) else { return };
    let ca = server.ca();
    block_on(async {
        for (host, mode) in [("localhost", Some("require")), ("127.0.0.1", Some("require")), ("localhost", None)] {
            let health = connector(&server, host, mode, Some(&ca)).health().await.unwrap();
            assert!(health.healthy, "{host} sslmode={mode:?}: {}", health.detail);
            assert!(health.detail.starts_with("PostgreSQL"), "{}", health.detail);
        }
        // Without TLS the server refuses the connection: the ones above were encrypted.
        let plain = connector(&server, "localhost", Some("disable"), None).health().await.unwrap();
        assert!(!plain.healthy);
        assert!(plain.detail.contains("no encryption") || plain.detail.contains("pg_hba.conf"), "{}", plain.detail);
    });
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_an_error_naming_the_fix() {
    let pki = TestPki::generate("database").unwrap();
    let Some(server) = PrivatePg::start(&pki, PASSWORD) else { return };
    let wrong = TestPki::generate("unrelated").unwrap();
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong_ca = wrong.write(wrong_dir.path()).unwrap().ca;
    block_on(async {
        // Another CA, and the system trust store, which knows neither; `prefer` does not fall
        // back to an unchecked connection.
        for (ca, mode) in [(Some(wrong_ca.as_path()), Some("require")), (None, Some("require")), (None, None)] {
            let connector = connector(&server, "localhost", mode, ca);
            let e = connector.check_permissions().await.unwrap_err();
            assert_eq!(e.kind, ConnectorErrorKind::Permanent, "{ca:?} {mode:?}: {e}");
            assert!(e.message.contains("TLS handshake failed") && e.message.contains("ca_file"), "{e}");
            assert!(e.message.contains("UnknownIssuer") || e.message.contains("unknown issuer"), "{e}");
            assert!(!e.message.contains(PASSWORD), "{e}");
        }
    });
}

#[test]
fn a_ca_file_that_cannot_be_used_fails_when_the_connector_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let config =
        PostgresConfig { ca_file: Some(empty), ..PostgresConfig::new("pg", "host=db.invalid sslmode=require") };
    let e = PostgresConnector::from_config(&config).unwrap_err();
    let chain = format!("{e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
    assert!(chain.contains("cannot set up TLS") && chain.contains("empty.pem"), "{chain}");
    // `sslmode=disable` never reads it.
    let config = PostgresConfig {
        ca_file: Some(dir.path().join("absent.pem")),
        ..PostgresConfig::new("pg", "host=db.invalid sslmode=disable")
    };
    PostgresConnector::from_config(&config).unwrap();
}
