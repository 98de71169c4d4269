//! TLS against a private slapd whose certificate was signed by a CA made for the test:
//! `ldaps://` and StartTLS bind and read when `ca_file` names that CA, a certificate from any
//! other CA (or the system trust store) is refused with an error saying what to fix, and the
//! server, which refuses a simple bind without TLS, proves the working connections were
//! encrypted.

use std::path::PathBuf;

use remediation_connector_ldap::{Dialect, LdapConfig, LdapConnector};
use remediation_core::{Connector, ConnectorErrorKind};
use remediation_testkit::tls::TestPki;

use crate::server::{Slapd, WRITER_DN, WRITER_PASSWORD};
use crate::{account, block_on, config};

/// The writer's configuration for `url`, with StartTLS and CA file as given.
fn tls_config(server: &Slapd, url: &str, starttls: bool, ca_file: Option<PathBuf>) -> LdapConfig {
    LdapConfig {
        url: url.to_owned(),
        starttls,
        ca_file,
        ..config(server, Dialect::Openldap, WRITER_DN, WRITER_PASSWORD)
    }
}

/// The two TLS ways in: `ldaps://` by IP address, StartTLS over `ldap://` by host name.
fn tls_urls(server: &Slapd) -> [(String, bool); 2] {
    let ldaps = server.ldaps_url.clone().unwrap().replace("localhost", "127.0.0.1");
    [(ldaps, false), (server.url.replace("127.0.0.1", "localhost"), true)]
}

#[test]
fn ldaps_and_starttls_bind_and_read_when_the_configured_ca_signed_the_server() {
    let pki = TestPki::generate("directory").unwrap();
    let Some(server) = Slapd::start_tls(&pki) else { return };
    let ca = server.dir().join("ca.pem");
    block_on(async {
        for (url, starttls) in tls_urls(&server) {
            let c = LdapConnector::from_config(tls_config(&server, &url, starttls, Some(ca.clone()))).unwrap();
            let health = c.health().await.unwrap();
            assert!(health.healthy, "{url} starttls={starttls}: {}", health.detail);
            let snapshot = c.snapshot(&account("alice")).await.unwrap();
            assert_eq!(snapshot.state["pwdAccountLockedTime"], serde_json::Value::Null, "{url}");
        }
        // The same bind without TLS is refused by the server: the connections above were TLS.
        let plain = LdapConnector::from_config(tls_config(&server, &server.url, false, None)).unwrap();
        let e = plain.snapshot(&account("alice")).await.unwrap_err();
        assert!(e.message.contains("confidentialityRequired"), "{e}");
    });
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_an_error_naming_the_fix() {
    let pki = TestPki::generate("directory").unwrap();
    let Some(server) = Slapd::start_tls(&pki) else { return };
    let wrong = TestPki::generate("unrelated").unwrap();
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong_ca = wrong.write(wrong_dir.path()).unwrap().ca;
    block_on(async {
        for (url, starttls) in tls_urls(&server) {
            // Another CA, and the system trust store, which knows neither.
            for ca_file in [Some(wrong_ca.clone()), None] {
                let c = LdapConnector::from_config(tls_config(&server, &url, starttls, ca_file.clone())).unwrap();
                let e = c.snapshot(&account("alice")).await.unwrap_err();
                assert_eq!(e.kind, ConnectorErrorKind::Permanent, "{url} {ca_file:?}: {e}");
                assert!(e.message.contains("TLS handshake failed") && e.message.contains("ca_file"), "{e}");
                assert!(e.message.contains("UnknownIssuer") || e.message.contains("unknown issuer"), "{e}");
                assert!(!e.message.contains(WRITER_PASSWORD), "{e}");
            }
        }
    });
}

#[test]
fn a_ca_file_that_cannot_be_used_fails_when_the_connector_is_built() {
    let Some(server) = Slapd::start() else { return };
    let missing = server.dir().join("no-such-ca.pem");
    let e = LdapConnector::from_config(tls_config(&server, "ldaps://127.0.0.1:1", false, Some(missing))).unwrap_err();
    let chain = format!("{e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
    assert!(chain.contains("cannot set up TLS") && chain.contains("no-such-ca.pem"), "{chain}");
}
