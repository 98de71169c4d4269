//! A private certificate authority for TLS tests: a CA, a server certificate it signed for
//! `localhost` and `127.0.0.1`, and the files a test server (slapd, PostgreSQL) reads. Each
//! call makes a new CA, so a second one is the "wrong CA" a client must refuse.
//!
//! ```
//! use remediation_testkit::tls::TestPki;
//!
//! let pki = TestPki::generate("example").unwrap();
//! assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(pki.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
//! assert_ne!(pki.ca_pem, TestPki::generate("example").unwrap().ca_pem, "each call is a new CA");
//! ```

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate it signed, in PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA's certificate.
    pub ca_pem: String,
    /// The server's certificate (for `localhost` and `127.0.0.1`).
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

/// Where [`TestPki::write`] put the files.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `server.pem`.
    pub cert: PathBuf,
    /// `server.key`, mode 0600 (PostgreSQL refuses a key others can read).
    pub key: PathBuf,
}

impl TestPki {
    /// A new CA named `name` and a server certificate for `localhost` and `127.0.0.1`.
    pub fn generate(name: &str) -> Result<Self, rcgen::Error> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        server.distinguished_name.push(DnType::CommonName, "localhost");
        let key = KeyPair::generate()?;
        let cert = server.signed_by(&key, &ca)?;
        Ok(Self { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        let files = PkiFiles { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") };
        std::fs::write(&files.ca, &self.ca_pem)?;
        std::fs::write(&files.cert, &self.cert_pem)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&files.key)?, self.key_pem.as_bytes())?;
        Ok(files)
    }
}
