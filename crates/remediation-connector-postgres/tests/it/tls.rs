//! TLS against a private PostgreSQL (`initdb` on a free port, from the binaries named by
//! `REMEDIATION_TEST_PG_BIN`) whose certificate was signed by a CA made for the test, and
//! whose `pg_hba.conf` accepts only TLS connections with a SCRAM password. The shared server
//! other tests use is never reconfigured.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remediation_connector_postgres::{PostgresConfig, PostgresConnector};
use remediation_core::{Connector, ConnectorErrorKind};
use remediation_testkit::tls::TestPki;
use tempfile::TempDir;

use crate::block_on;

const PASSWORD: &str = "pg-tls-Secret-9931";

/// A private server; stopped when dropped.
struct PrivatePg {
    dir: TempDir,
    child: Child,
    port: u16,
}

/// The (uid, gid) to run the server as: ours, or the `postgres` account's when we are root
/// (PostgreSQL refuses to run as root).
fn server_user() -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").ok()?;
    if me.uid() != 0 {
        return Some((me.uid(), me.gid()));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))?
    })
}

impl PrivatePg {
    /// Starts a TLS-only server with `pki`'s certificate, or `None` after printing why not.
    fn start(pki: &TestPki) -> Option<Self> {
        let bin = remediation_testkit::real_server::require(
            "the PostgreSQL TLS test",
            "REMEDIATION_TEST_PG_BIN",
            "the directory holding initdb and postgres; `.ci/setup-postgres.sh` prints it",
        )?;
        let bin = PathBuf::from(bin);
        let (uid, gid) =
            server_user().expect("running as root, but there is no `postgres` account to run the server as");
        let dir = tempfile::tempdir().unwrap();
        let files = pki.write(dir.path()).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        for path in [dir.path(), &files.ca, &files.cert, &files.key, &pwfile] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let out = Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "scram-sha-256", "--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        // TLS only: a connection without it is rejected before any password is asked for.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all ::1/128 scram-sha-256\n\
             hostnossl all all 0.0.0.0/0 reject\n\
             hostnossl all all ::/0 reject\n",
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "ssl=on"])
            .arg("-k")
            .arg(dir.path())
            .arg("-c")
            .arg(format!("ssl_cert_file={}", files.cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", files.key.display()))
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Self { dir, child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Listening is not enough: a server still starting up answers 57P03.
        let ready = || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && Command::new(bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .status()
                    .is_ok_and(|s| s.success())
        };
        while !ready() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("postgres exited with {status} before it listened on port {port}");
            }
            assert!(Instant::now() < deadline, "postgres was not ready on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A connector for `host` with `sslmode` (none: the default) and `ca_file`.
    fn connector(&self, host: &str, sslmode: Option<&str>, ca_file: Option<&Path>) -> PostgresConnector {
        let mode = sslmode.map(|m| format!(" sslmode={m}")).unwrap_or_default();
        let password = self.dir.path().join("client-password");
        std::fs::write(&password, PASSWORD).unwrap();
        let config = PostgresConfig {
            password_file: Some(password),
            ca_file: ca_file.map(Path::to_path_buf),
            connect_timeout_secs: 5,
            ..PostgresConfig::new(
                "pg-tls",
                format!("host={host} port={} user=postgres dbname=postgres{mode}", self.port),
            )
        };
        PostgresConnector::from_config(&config).unwrap()
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_with_the_configured_ca_connects_and_the_server_refuses_plaintext() {
    let pki = TestPki::generate("database").unwrap();
    let Some(server) = PrivatePg::start(&pki) else { return };
    let ca = server.ca();
    block_on(async {
        for (host, mode) in [("localhost", Some("require")), ("127.0.0.1", Some("require")), ("localhost", None)] {
            let health = server.connector(host, mode, Some(&ca)).health().await.unwrap();
            assert!(health.healthy, "{host} sslmode={mode:?}: {}", health.detail);
            assert!(health.detail.starts_with("PostgreSQL"), "{}", health.detail);
        }
        // Without TLS the server refuses the connection: the ones above were encrypted.
        let plain = server.connector("localhost", Some("disable"), None).health().await.unwrap();
        assert!(!plain.healthy);
        assert!(plain.detail.contains("no encryption") || plain.detail.contains("pg_hba.conf"), "{}", plain.detail);
    });
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_an_error_naming_the_fix() {
    let pki = TestPki::generate("database").unwrap();
    let Some(server) = PrivatePg::start(&pki) else { return };
    let wrong = TestPki::generate("unrelated").unwrap();
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong_ca = wrong.write(wrong_dir.path()).unwrap().ca;
    block_on(async {
        // Another CA, and the system trust store, which knows neither; `prefer` does not fall
        // back to an unchecked connection.
        for (ca, mode) in [(Some(wrong_ca.as_path()), Some("require")), (None, Some("require")), (None, None)] {
            let connector = server.connector("localhost", mode, ca);
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
