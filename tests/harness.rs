//! Harness for end-to-end tests: finds the `remediate` binary and runs it in a throw-away
//! data directory.

use std::path::{Path, PathBuf};

/// The README's code examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
use std::process::Command;

/// Where the `remediate` binary is: `$REMEDIATE_BIN`, else next to the test executable's
/// `deps` directory (cargo builds it there when the workspace's tests are built).
pub fn remediate_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REMEDIATE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let bin = profile_dir.join(format!("remediate{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the remediate binary is not built at {}; run `cargo test --workspace` (which builds it) or `cargo build -p remediate` first, or set REMEDIATE_BIN",
        bin.display()
    );
    bin
}

/// Where the `remediation-server` binary is: `$REMEDIATION_SERVER_BIN`, else beside the
/// `remediate` binary.
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REMEDIATION_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let bin = profile_dir.join(format!("remediation-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the remediation-server binary is not built at {}; run `cargo test --workspace` (which builds it) or `cargo build -p remediation-server` first, or set REMEDIATION_SERVER_BIN",
        bin.display()
    );
    bin
}

/// `[execution] lease_ttl_secs` of an enabled test installation ([`Env::enable`]).
pub const LEASE_TTL_SECS: u64 = 1;

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        payload(self.document())
    }

    /// Standard output as the JSON document it is, `schema_version` included.
    pub fn document(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// What an `--output json` document says, without its envelope: the list of a list document
/// (`{"items": [...], "schema_version": 1}`), the other documents without `schema_version`.
/// Panics unless the document is an object carrying version 1 (read documents of a format of
/// their own, such as signed tree heads and proof bundles, with [`Run::document`]).
pub fn payload(document: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(mut map) = document else {
        panic!("an --output json document is an object: {document}")
    };
    let version = map.remove("schema_version");
    assert_eq!(version, Some(serde_json::json!(1)), "the document's schema version: {map:?}");
    if map.len() == 1
        && let Some(items) = map.get("items").filter(|i| i.is_array())
    {
        return items.clone();
    }
    serde_json::Value::Object(map)
}

/// A data directory and the actor commands run as.
#[derive(Debug)]
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A fresh, empty data directory (not yet initialised).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}")) }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The command `remediate --data-dir DIR --actor ACTOR ARGS...`, with the environment every
    /// test runs it in (a fixed `$USER`, no configuration, data directory or server from the
    /// caller's environment).
    pub fn command(&self, actor: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(remediate_bin());
        cmd.arg("--data-dir")
            .arg(self.dir())
            .args(["--actor", actor])
            .args(args)
            // `init` makes `local:$USER` the admin: a fixed user keeps every test's roles the same.
            .env("USER", "e2e-runner")
            .env_remove("REMEDIATION_CONFIG")
            .env_remove("REMEDIATION_DATA_DIR")
            .env_remove("REMEDIATION_SERVER")
            .env_remove("REMEDIATION_TOKEN");
        cmd
    }

    /// Runs `remediate --data-dir DIR --actor ACTOR ARGS...`.
    pub fn run_as(&self, actor: &str, args: &[&str]) -> Run {
        let out = self.command(actor, args).output().unwrap_or_else(|e| panic!("cannot run remediate: {e}"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `remediate --data-dir DIR --actor ACTOR ARGS...` with `input` on standard input.
    pub fn run_with_stdin(&self, actor: &str, args: &[&str], input: &str) -> Run {
        use std::io::Write as _;
        let mut child = self
            .command(actor, args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run remediate: {e}"));
        let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        let input = input.to_owned();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("cannot run remediate: {e}"));
        let _ = writer.join();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Has `local:admin2` confirm the newest change waiting for a second admin.
    pub fn confirm_pending(&self) {
        let pending = self.expect("local:admin2", &["pending", "list", "--output", "json"], 0).json();
        let id = pending.as_array().and_then(|a| a.last()).and_then(|c| c["id"].as_str()).map(str::to_owned);
        let id = id.unwrap_or_else(|| panic!("no pending change: {pending}"));
        self.expect("local:admin2", &["pending", "confirm", &id], 0);
    }

    /// Runs as `local:alice`, asserts the exit code, returns the run.
    #[track_caller]
    pub fn expect(&self, actor: &str, args: &[&str], code: i32) -> Run {
        let run = self.run_as(actor, args);
        assert_eq!(run.code, code, "remediate {args:?} as {actor}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        run
    }

    /// The sandbox directory file, parsed.
    pub fn sandbox(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.dir().join("sandbox.json")).unwrap_or_else(|e| panic!("sandbox.json: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("sandbox.json is not JSON: {e}"))
    }

    /// Replaces the sandbox directory file with `dir` (simulating a change made by hand in
    /// the provider).
    pub fn write_sandbox(&self, dir: &serde_json::Value) {
        let text = serde_json::to_string_pretty(dir).unwrap_or_else(|e| panic!("sandbox JSON: {e}"));
        std::fs::write(self.dir().join("sandbox.json"), text).unwrap_or_else(|e| panic!("sandbox.json: {e}"));
    }

    /// Rewrites the configuration file through `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.dir().join("remediation.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("remediation.toml: {e}"));
        std::fs::write(&path, edit(text)).unwrap_or_else(|e| panic!("remediation.toml: {e}"));
    }

    /// `init`, then [`Env::enable`].
    pub fn init_enabled(&self) {
        self.expect("local:alice", &["init"], 0);
        self.enable();
    }

    /// Enables remediation and names alice requester, bob and dave approvers (dave is the
    /// second approver rollbacks wait for), and `local:admin` and `local:admin2` admins.
    /// Leases last one second, so that a killed process's action is recovered quickly.
    pub fn enable(&self) {
        self.edit_config(|t| {
            let t = t.replace("enabled = false", "enabled = true").replace(
                "[actors.roles]\n",
                "[actors.roles]\n\"local:alice\" = \"requester\"\n\"local:bob\" = \"approver\"\n\"local:dave\" = \"approver\"\n\"local:admin\" = \"admin\"\n\"local:admin2\" = \"admin\"\n",
            );
            format!("{t}\n[execution]\nlease_ttl_secs = {LEASE_TTL_SECS}\n")
        });
    }
}
