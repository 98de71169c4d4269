//! Test servers (feature `testing`): [`PrivateNats`], a `nats-server` of a test's own (with a
//! token, a user and password, TLS from a CA made for the test, or an operator with a `.creds`
//! file), that can be stopped, killed and restarted on the same port and store; and
//! [`shared_nats`], the address of the machine's shared server (`REMEDIATION_TEST_NATS`).
//!
//! A test that needs a server it cannot have skips with a printed reason on a developer's
//! machine and fails under CI (`CI=true`), where a missing server means a broken setup script.
//!
//! ```no_run
//! use remediation_nats::testing::{PrivateNats, PrivateNatsOptions};
//!
//! let Some(mut server) = PrivateNats::start(PrivateNatsOptions::default()) else { return };
//! let url = server.url(); // nats://127.0.0.1:<port>
//! server.stop();          // SIGTERM: JetStream's store is kept
//! server.restart();       // same port, same store
//! # drop(url);
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test helper fails loudly")]

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tempfile::TempDir;

/// The variable naming the shared server's URL (`.ci/setup-nats.sh` prints it).
pub const SHARED_NATS_VAR: &str = "REMEDIATION_TEST_NATS";
/// The variable naming the `nats-server` program for private servers.
pub const NATS_SERVER_BIN_VAR: &str = "REMEDIATION_TEST_NATS_SERVER_BIN";

fn is_ci(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// What a test that needs `var` does: `Ok(Some(value))` runs, `Ok(None)` skips after printing
/// the reason, `Err` fails (CI without the variable).
fn decide(var: &str, value: Option<&str>, ci: Option<&str>, hint: &str) -> Result<Option<String>, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(v.to_owned())),
        None if is_ci(ci) => {
            Err(format!("{var} is not set but CI is: a test that needs a NATS server must run under CI ({hint})"))
        }
        None => {
            eprintln!("skipping: {var} is not set ({hint})");
            Ok(None)
        }
    }
}

/// The shared server's URL from `REMEDIATION_TEST_NATS` (`nats://127.0.0.1:4222`), or `None`
/// after printing why the test skips.
///
/// # Panics
///
/// Under CI (`CI=true`) when the variable is not set.
pub fn shared_nats() -> Option<String> {
    let value = std::env::var(SHARED_NATS_VAR).ok();
    let ci = std::env::var("CI").ok();
    decide(SHARED_NATS_VAR, value.as_deref(), ci.as_deref(), "run `. .ci/setup-nats.sh` or export it")
        .unwrap_or_else(|message| panic!("{message}"))
}

/// The `nats-server` program: `REMEDIATION_TEST_NATS_SERVER_BIN`, else `nats-server` on `PATH`,
/// else `/usr/sbin/nats-server`; `None` after printing why the test skips.
///
/// # Panics
///
/// Under CI when none is found.
pub fn nats_server_bin() -> Option<PathBuf> {
    let found = std::env::var(NATS_SERVER_BIN_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH")
                .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("nats-server")).find(|p| p.is_file()))
        })
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()));
    let ci = std::env::var("CI").ok();
    let value = found.as_ref().map(|p| p.display().to_string());
    decide(NATS_SERVER_BIN_VAR, value.as_deref(), ci.as_deref(), "install nats-server (apt-get install nats-server)")
        .unwrap_or_else(|message| panic!("{message}"))
        .map(PathBuf::from)
}

/// How a private server lets clients in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrivateAuth {
    /// Anyone.
    #[default]
    None,
    /// Clients presenting this token (`--auth`).
    Token(String),
    /// This user with this password (`--user`, `--pass`).
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// Operator mode (JWTs, a memory resolver) with one account, JetStream enabled, and one
    /// user whose `.creds` file is [`PrivateNats::creds_file`].
    Operator,
}

/// How to start a [`PrivateNats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivateNatsOptions {
    /// Who may connect.
    pub auth: PrivateAuth,
    /// Whether the server requires TLS, with a certificate for `localhost` and `127.0.0.1`
    /// signed by a CA made for this server ([`PrivateNats::ca_file`]).
    pub tls: bool,
    /// How many steps below this process's priority the server runs (`nice -n`; 0 = the same):
    /// a benchmark's broker that should not take the CPU from the process it measures, as a
    /// broker on a host of its own would not.
    pub nice: u8,
}

/// A CA and a server certificate it signed (for `localhost` and `127.0.0.1`), in PEM. Each
/// call makes a new CA, so a second one is an untrusted CA.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA's certificate.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name` and a server certificate it signed.
    pub fn generate(name: &str) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = server.signed_by(&key, &ca).unwrap();
        Self { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// A `nats-server -js` of a test's own on a free port of 127.0.0.1, with its store in a
/// temporary folder. Killed when dropped.
#[derive(Debug)]
pub struct PrivateNats {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    args: Vec<String>,
    tls: bool,
    nice: u8,
    child: Option<Child>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT of `claims` (a JSON object without `iss`, `iat`, `jti`), issued by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let claims = serde_json::json!({
        "jti": format!("J{}{}", now.as_nanos(), subject),
        "iat": now.as_secs(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64(claims.to_string().as_bytes());
    let signature = issuer.sign(format!("{header}.{body}").as_bytes()).unwrap();
    format!("{header}.{body}.{}", b64(&signature))
}

/// Writes the operator-mode configuration and the user's `.creds` file into `dir`; returns the
/// configuration file.
fn write_operator_setup(dir: &Path) -> PathBuf {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    // JetStream needs a system account in operator mode.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"limits": {"subs": -1, "data": -1, "payload": -1, "conn": -1}, "type": "account", "version": 2}),
    );
    let user = nkeys::KeyPair::new_user();
    let operator_jwt =
        jwt(&operator, &operator.public_key(), "test-operator", serde_json::json!({"type": "operator", "version": 2}));
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "test-account",
        serde_json::json!({
            "limits": {
                "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
                "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
            },
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2,
        }),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "test-user",
        serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}),
    );
    let config = dir.join("operator.conf");
    std::fs::write(
        &config,
        format!(
            "operator: {operator_jwt}\nsystem_account: {}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {}: {account_jwt}\n  {}: {system_jwt}\n}}\n",
            system.public_key(),
            account.public_key(),
            system.public_key()
        ),
    )
    .unwrap();
    let seed = user.seed().unwrap();
    std::fs::write(
        dir.join("user.creds"),
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        ),
    )
    .unwrap();
    config
}

impl PrivateNats {
    /// Starts a server, or returns `None` after printing why not (no `nats-server` outside
    /// CI).
    ///
    /// # Panics
    ///
    /// When the server cannot be set up or does not accept connections within 20 s; under CI
    /// when there is no `nats-server`.
    pub fn start(options: PrivateNatsOptions) -> Option<Self> {
        let bin = nats_server_bin()?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = dir.path().join("jetstream");
        let mut args: Vec<String> = vec![
            "-js".into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-sd".into(),
            store.display().to_string(),
            "-l".into(),
            dir.path().join("server.log").display().to_string(),
        ];
        match &options.auth {
            PrivateAuth::None => {}
            PrivateAuth::Token(token) => args.extend(["--auth".into(), token.clone()]),
            PrivateAuth::UserPassword { user, password } => {
                args.extend(["--user".into(), user.clone(), "--pass".into(), password.clone()]);
            }
            PrivateAuth::Operator => {
                let config = write_operator_setup(dir.path());
                args.extend(["-c".into(), config.display().to_string()]);
            }
        }
        if options.tls {
            let ca = TestCa::generate("private-nats");
            std::fs::write(dir.path().join("ca.pem"), &ca.ca_pem).unwrap();
            std::fs::write(dir.path().join("server.pem"), &ca.cert_pem).unwrap();
            std::fs::write(dir.path().join("server.key"), &ca.key_pem).unwrap();
            args.extend([
                "--tls".into(),
                "--tlscert".into(),
                dir.path().join("server.pem").display().to_string(),
                "--tlskey".into(),
                dir.path().join("server.key").display().to_string(),
            ]);
        }
        let mut server = Self { dir, bin, port, args, tls: options.tls, nice: options.nice, child: None };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        // `nice` execs the server, so the child's id stays the server's.
        let mut command = if self.nice > 0 {
            let mut nice = Command::new("nice");
            nice.args(["-n", &self.nice.to_string()]).arg(&self.bin);
            nice
        } else {
            Command::new(&self.bin)
        };
        let child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.accepts() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "nats-server exited with {status} before it listened on port {}: {}",
                    self.port,
                    self.log_tail()
                );
            }
            assert!(Instant::now() < deadline, "nats-server did not listen on port {} within 20 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers a connection with its `INFO` line.
    fn accepts(&self) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `nats://127.0.0.1:<port>`, or `tls://localhost:<port>` for a TLS server (the name its
    /// certificate is for).
    pub fn url(&self) -> String {
        if self.tls { format!("tls://localhost:{}", self.port) } else { format!("nats://127.0.0.1:{}", self.port) }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its folder (the store, the log, the TLS files); removed when it is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The user's `.creds` file of an operator-mode server.
    pub fn creds_file(&self) -> PathBuf {
        self.dir.path().join("user.creds")
    }

    /// The last lines of its log.
    pub fn log(&self) -> String {
        self.log_tail()
    }

    /// Stops it with SIGTERM (a clean shutdown that keeps the store) and waits for it to exit
    /// (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (stopping it first if it runs) on the same port with the same store:
    /// JetStream's streams and messages survive.
    ///
    /// # Panics
    ///
    /// When it does not accept connections within 20 s.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(value: Option<&str>, ci: Option<&str>, expected: &str) {
        let got = match decide("REMEDIATION_TEST_NATS", value, ci, "hint") {
            Ok(Some(v)) => format!("use {v}"),
            Ok(None) => "skip".to_owned(),
            Err(m) => format!("fail: {m}"),
        };
        assert!(got.starts_with(expected), "{value:?} with CI={ci:?}: {got}");
    }

    #[test]
    fn a_missing_server_skips_locally_and_fails_under_ci() {
        check(Some("nats://127.0.0.1:4222"), None, "use nats://127.0.0.1:4222");
        check(Some(" nats://127.0.0.1:4222\n"), Some("true"), "use nats://127.0.0.1:4222");
        check(None, None, "skip");
        check(Some(" "), Some("false"), "skip");
        check(None, Some("true"), "fail: REMEDIATION_TEST_NATS is not set but CI is");
        check(None, Some("1"), "fail:");
    }
}
