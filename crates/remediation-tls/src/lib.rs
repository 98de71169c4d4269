//! TLS client settings for the connectors that speak TLS outside HTTP (LDAP's `ldaps://` and
//! StartTLS, PostgreSQL): one rustls configuration over ring, the crypto stack reqwest already
//! brings, that verifies the server's certificate and name against either the system's trust
//! store or a CA file named in the connector's configuration. There is no switch to skip
//! verification: a server with a private CA is trusted by naming that CA.
//!
//! ```no_run
//! use std::path::Path;
//!
//! // Trust only the CA that signed the directory's certificate.
//! let config = remediation_tls::client_config(Some(Path::new("/etc/remediation/ldap-ca.pem")))?;
//! // Or the system's trust store.
//! let system = remediation_tls::client_config(None)?;
//! # let _ = (config, system);
//! # Ok::<(), remediation_tls::TlsError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};

/// Why a TLS client configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file cannot be read.
    #[error("cannot read the CA file {}", path.display())]
    CaFileRead {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("the CA file {} holds no usable PEM certificate ({reason}); expected `-----BEGIN CERTIFICATE-----` blocks", path.display())]
    CaFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The system's trust store holds no certificate (none installed, or none readable).
    #[error("the system trust store holds no usable certificate{}; install the CA certificates or set a CA file", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NoSystemRoots {
        /// What the loader reported, if anything.
        detail: Option<String>,
    },
    /// rustls refused the protocol settings (not expected with ring's defaults).
    #[error("cannot set up TLS")]
    Setup(#[source] rustls::Error),
}

/// A client configuration verifying servers against the certificates in the PEM file
/// `ca_file`, or the system's trust store when `None`. ALPN is left empty (LDAP and
/// PostgreSQL negotiate none).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::CaFileRead { path: path.to_owned(), source })?;
    let invalid = |reason: String| TlsError::CaFileInvalid { path: path.to_owned(), reason };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate found".to_owned()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // Certificates the platform ships but rustls cannot parse are skipped, as browsers do.
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let detail = loaded.errors.first().map(ToString::to_string);
        return Err(TlsError::NoSystemRoots { detail });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = client_config(Some(&missing)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileRead { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileInvalid { .. }), "{e:?}");
        assert!(e.to_string().contains("empty.pem") && e.to_string().contains("BEGIN CERTIFICATE"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let e = client_config(Some(&garbage)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileInvalid { .. }), "{e:?}");
    }
}
