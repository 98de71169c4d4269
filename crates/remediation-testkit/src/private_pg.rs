//! A private PostgreSQL server for TLS tests: `initdb` on a free port, from the binaries named
//! by `REMEDIATION_TEST_PG_BIN` (`.ci/setup-postgres.sh` prints it), with a certificate signed
//! by a [`TestPki`] made for the test, and a `pg_hba.conf` that accepts only TLS connections
//! with a SCRAM password. The shared server other tests use is never reconfigured.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::tls::TestPki;

/// A private server; stopped when dropped.
pub struct PrivatePg {
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
    /// Starts a TLS-only server with `pki`'s certificate whose superuser `postgres` has
    /// `password`, or `None` after printing why not (outside CI; under CI a missing
    /// `REMEDIATION_TEST_PG_BIN` fails).
    ///
    /// # Panics
    ///
    /// When the server cannot be set up or does not start within 30 s.
    #[allow(clippy::unwrap_used, clippy::expect_used, reason = "a test helper fails loudly")]
    pub fn start(pki: &TestPki, password: &str) -> Option<Self> {
        let bin = crate::real_server::require(
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
        std::fs::write(&pwfile, format!("{password}\n")).unwrap();
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

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding its files (`ca.pem`, the data directory); gone when it stops.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
