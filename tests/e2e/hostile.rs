//! Hostile and broken inputs through the real binary: bad configuration files, a read-only data
//! directory, a full disk (under the store, under the provider, and under standard output), a
//! corrupted store, a malformed sandbox file, and identifiers made of quotes, control
//! characters, escapes, bidirectional text and 10 kB of text.
//!
//! The contract checked every time: the documented exit code, one error line that says what
//! failed, never a panic, and nothing half-written: once the cause is fixed, the next run
//! works, `audit verify` passes and every action is where the lifecycle says.
//!
//! Some conditions need privileges (mounting a small or read-only file system) or devices
//! (`/dev/full`); without them the test prints why it skips.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use remediation_e2e::{Env, Run, remediate_bin};
use serde_json::{Value, json};

use crate::{REVOKE_ALICE_ADMINS, writes};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A suggestion that needs nothing but a working store and sandbox: notify bob, as alice.
const SUGGEST_NOTIFY_BOB: &[&str] = &[
    "--actor",
    "local:alice",
    "suggest",
    "--connector",
    "sandbox",
    "--kind",
    "notify",
    "--identity",
    "bob",
    "--grant-type",
    "notification",
    "--reason=x",
];

/// Runs `remediate --data-dir DIR ARGS...` with `stdout` as standard output. Unlike
/// [`Env::run_as`] it adds no `--actor`, so tests can pass `--actor=TEXT` with any text.
fn run_with(env: &Env, args: &[&str], stdout: Stdio) -> Run {
    let out = Command::new(remediate_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(args)
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run remediate: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `remediate --data-dir DIR ARGS...` and asserts the exit code.
#[track_caller]
fn expect_raw(env: &Env, args: &[&str], code: i32) -> Run {
    let run = run_with(env, args, Stdio::piped());
    assert_eq!(run.code, code, "remediate {args:?}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    run
}

/// A failed run: `code`, exactly one line on standard error, starting `error: ` and containing
/// every fragment, and no panic. `what` names the case in failure messages.
#[track_caller]
fn check_failure(what: &str, run: &Run, code: i32, fragments: &[&str]) {
    let context = format!("{what}: exit {}\nstdout:\n{}\nstderr:\n{}", run.code, run.stdout, run.stderr);
    assert_eq!(run.code, code, "{context}");
    assert!(!run.stderr.contains("panicked"), "{context}");
    assert_eq!(run.stderr.lines().count(), 1, "one error line expected: {context}");
    assert!(run.stderr.starts_with("error: "), "{context}");
    for fragment in fragments {
        assert!(run.stderr.contains(fragment), "stderr lacks {fragment:?}: {context}");
    }
}

/// Characters that break a line or a table row, or change how a terminal shows the rest of
/// it: control characters other than the newline ending a line, line and paragraph
/// separators, and bidirectional formatting characters.
fn is_raw_control(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{61c}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[track_caller]
fn assert_printable(what: &str, text: &str) {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| is_raw_control(*c)) {
        panic!("{what} holds the raw character {c:?} at byte {i}:\n{}", text.escape_debug());
    }
}

/// Everything a failed command must leave as it was: the actions, the audit trail's length
/// and head, and the sandbox file's bytes.
#[derive(Debug, PartialEq)]
struct Observed {
    actions: Value,
    audit_records: u64,
    audit_head: Value,
    sandbox: Vec<u8>,
}

fn observe(env: &Env) -> Observed {
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
    Observed {
        actions: env.expect("local:bob", &["list", "--output", "json"], 0).json(),
        audit_records: verify["records"].as_u64().unwrap_or_default(),
        audit_head: verify["head"].clone(),
        sandbox: fs::read(sandbox_path(env)).unwrap_or_else(|e| panic!("sandbox.json: {e}")),
    }
}

fn sandbox_path(env: &Env) -> PathBuf {
    env.dir().join("sandbox.json")
}

fn state_of(env: &Env, id: &str) -> String {
    env.expect("local:bob", &["show", id, "--output", "json"], 0).json()["action"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `init`, enable, suggest alice's removal from admins as alice and approve it as bob.
fn approved_action(env: &Env) -> String {
    env.init_enabled();
    let s = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    id
}

/// A file system mounted for one test, unmounted when dropped. Declare it after the
/// [`Env`] whose directory it covers, so that it is dropped first.
struct Mount {
    point: PathBuf,
}

impl Mount {
    /// `mount ARGS POINT`, or why it cannot be done here (no privilege, no `mount`).
    fn new(args: &[&str], point: &Path) -> Result<Self, String> {
        let out =
            Command::new("mount").args(args).arg(point).output().map_err(|e| format!("cannot run `mount`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`mount {} {}` failed: {}",
                args.join(" "),
                point.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { point: point.to_owned() })
    }

    /// A tmpfs of `size` (as `mount -o size=` takes it) over `point`.
    fn tmpfs(point: &Path, size: &str) -> Result<Self, String> {
        Self::new(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], point)
    }

    /// `point` bound onto itself read-only: stops root too, unlike permission bits.
    fn read_only(point: &Path) -> Result<Self, String> {
        let bind = Self::new(&["--bind", &point.display().to_string()], point)?;
        // On failure `bind` is dropped, which unmounts it.
        Self::new(&["-o", "remount,bind,ro"], point).map(|remount| {
            std::mem::forget(remount);
            bind
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.point).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Busy: detach it now, the kernel finishes when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
    }
}

/// Fills the file system holding `dir` with `dir/filler` until writes fail, then gives back
/// `headroom` bytes. Returns the filler's path.
fn fill(dir: &Path, headroom: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).expect("create the filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    let len = file.metadata().expect("filler metadata").len();
    file.set_len(len.saturating_sub(headroom)).expect("shrink the filler");
    file.sync_all().expect("sync the filler");
    path
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/// A configuration file and the error it must produce.
struct ConfigCase {
    name: &'static str,
    /// The file's content; `None` for no file at all.
    text: Option<&'static [u8]>,
    /// `line N` in the message, when the error has a position.
    line: Option<usize>,
    /// ``key `K` `` in the message, when the error has a key.
    key: Option<&'static str>,
    fragment: &'static str,
}

#[test]
fn configuration_errors_exit_2_with_file_line_and_key() {
    let cases = [
        ConfigCase {
            name: "unknown top-level key",
            text: Some(b"enabeld = true\n"),
            line: Some(1),
            key: Some("enabeld"),
            fragment: "unknown field `enabeld`",
        },
        ConfigCase {
            name: "unknown key in a table",
            text: Some(b"[policy]\nenabled = true\nmin_aprovals = 2\n"),
            line: Some(3),
            key: Some("policy.min_aprovals"),
            fragment: "unknown field `min_aprovals`",
        },
        ConfigCase {
            name: "unknown key in an inline table",
            text: Some(b"[limits]\nglobal = { max = 5, window_secs = 60, burst = 2 }\n"),
            line: Some(2),
            key: Some("limits.global"),
            fragment: "unknown field `burst`",
        },
        ConfigCase {
            name: "unknown table",
            text: Some(b"[policy]\nenabled = true\n\n[polcy]\nenabled = true\n"),
            line: Some(4),
            key: None,
            fragment: "unknown field `polcy`",
        },
        ConfigCase {
            name: "string for a boolean",
            text: Some(b"[policy]\nenabled = \"yes\"\n"),
            line: Some(2),
            key: Some("policy.enabled"),
            fragment: "invalid type",
        },
        ConfigCase {
            name: "string for an integer",
            text: Some(b"[policy]\nmin_approvals = \"two\"\n"),
            line: Some(2),
            key: Some("policy.min_approvals"),
            fragment: "invalid type",
        },
        ConfigCase {
            name: "integer for a path",
            text: Some(b"data_dir = 5\n"),
            line: Some(1),
            key: Some("data_dir"),
            fragment: "invalid type",
        },
        ConfigCase {
            name: "negative limit",
            text: Some(b"[limits]\nper_identity = { max = -1, window_secs = 60 }\n"),
            line: Some(2),
            key: Some("limits.per_identity"),
            fragment: "",
        },
        ConfigCase {
            name: "unknown enum value",
            text: Some(b"[policy]\ndefault_mode = \"yolo\"\n"),
            line: Some(2),
            key: Some("policy.default_mode"),
            fragment: "unknown variant `yolo`",
        },
        ConfigCase {
            name: "unknown connector type",
            text: Some(b"[[connectors]]\ntype = \"vault\"\nid = \"vault\"\n"),
            line: Some(2),
            key: Some("connectors.type"),
            fragment: "unknown variant `vault`",
        },
        // A connector's table is checked by its factory: the unknown key is named on its line.
        ConfigCase {
            name: "unknown key in an array of tables",
            text: Some(
                b"[actors]\ndefault_role = \"approver\"\n\n[[connectors]]\ntype = \"sandbox\"\nid = \"s\"\npath = \"s.json\"\nextra = 1\n",
            ),
            line: Some(8),
            key: Some("connectors.extra"),
            fragment: "unknown field `extra`",
        },
        ConfigCase {
            name: "unclosed table header",
            text: Some(b"[policy\nenabled = true\n"),
            line: Some(1),
            key: None,
            fragment: "",
        },
        ConfigCase {
            name: "value missing",
            text: Some(b"[policy]\nenabled = true\nmin_approvals =\n"),
            line: Some(3),
            key: Some("policy.min_approvals"),
            fragment: "",
        },
        ConfigCase {
            name: "unterminated string",
            text: Some(b"[policy]\ndefault_mode = \"manual\n"),
            line: Some(2),
            key: Some("policy.default_mode"),
            fragment: "",
        },
        ConfigCase {
            name: "duplicate key",
            text: Some(b"[policy]\nenabled = true\nenabled = false\n"),
            line: Some(3),
            key: Some("policy.enabled"),
            fragment: "duplicate key",
        },
        ConfigCase {
            name: "not UTF-8",
            text: Some(b"[policy]\nenabled = true # \xff\xfe\n"),
            line: None,
            key: None,
            fragment: "cannot read the file",
        },
        ConfigCase {
            name: "policy out of range",
            text: Some(b"[policy]\nrollback_window_secs = 1\n"),
            line: None,
            key: Some("policy"),
            fragment: "rollback window",
        },
        ConfigCase { name: "missing file", text: None, line: None, key: None, fragment: "remediate init" },
    ];
    let env = Env::new();
    env.init_enabled();
    let config = env.dir().join("remediation.toml");
    let good = fs::read(&config).expect("config");
    for case in &cases {
        match case.text {
            Some(text) => fs::write(&config, text).expect("write config"),
            None => fs::remove_file(&config).expect("remove config"),
        }
        for args in [
            &["list"][..],
            &["--actor", "local:alice", "suggest", "--connector", "sandbox", "--kind", "notify", "--reason=x"],
        ] {
            let run = expect_raw(&env, args, 2);
            let mut fragments = vec![config.to_str().expect("utf-8 path"), case.fragment];
            let line = case.line.map(|l| format!("line {l}"));
            let key = case.key.map(|k| format!("key `{k}`"));
            fragments.extend(line.as_deref());
            fragments.extend(key.as_deref());
            let context = format!("case `{}`, {args:?}", case.name);
            check_failure(&context, &run, 2, &fragments);
            if case.line.is_none() {
                assert!(!run.stderr.contains(" line "), "{context}: no line expected: {}", run.stderr);
            }
        }
    }
    // An explicit --config that does not exist, and one that is a directory.
    let missing = env.dir().join("nope.toml");
    let run = expect_raw(&env, &["--config", missing.to_str().expect("utf-8"), "list"], 2);
    check_failure("missing --config", &run, 2, &["nope.toml", "remediate init"]);
    let run = expect_raw(&env, &["--config", env.dir().to_str().expect("utf-8"), "list"], 2);
    check_failure("--config is a directory", &run, 2, &["cannot read the file"]);

    // Fixed: everything works again.
    fs::write(&config, good).expect("restore config");
    env.expect("local:alice", REVOKE_ALICE_ADMINS, 0);
    env.expect("local:bob", &["audit", "verify"], 0);
}

// ---------------------------------------------------------------------------------------------
// The data directory: read-only, full, corrupted.

/// Permission bits that make the data directory and its files read-only, restored when dropped.
struct ReadOnlyBits {
    dir: PathBuf,
}

impl ReadOnlyBits {
    fn set(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            // Owner-only, as the CLI keeps the data directory: a key file others may read is
            // refused for that reason alone.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod 0400");
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).expect("chmod 0500");
        Self { dir: dir.to_owned() }
    }
}

impl Drop for ReadOnlyBits {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600));
        }
    }
}

/// True when a file can be created in `dir`.
fn can_write_in(dir: &Path) -> bool {
    let probe = dir.join(".write-probe");
    let ok = fs::write(&probe, b"probe").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

/// Keeps the data directory read-only until dropped, by one means or the other.
struct ReadOnly {
    _bits: Option<ReadOnlyBits>,
    _mount: Option<Mount>,
}

/// Makes `dir` read-only with permission bits, or, where they do not stop this process (root),
/// with a read-only bind mount. `Err` says why neither works.
fn make_read_only(dir: &Path) -> Result<ReadOnly, String> {
    let bits = ReadOnlyBits::set(dir);
    if !can_write_in(dir) {
        return Ok(ReadOnly { _bits: Some(bits), _mount: None });
    }
    drop(bits);
    let mount = Mount::read_only(dir)
        .map_err(|e| format!("writing succeeds despite read-only permission bits (running as root?), and {e}"))?;
    if can_write_in(dir) {
        return Err("the read-only bind mount still accepts writes".to_owned());
    }
    Ok(ReadOnly { _bits: None, _mount: Some(mount) })
}

#[test]
fn read_only_data_directory_fails_cleanly_and_recovers() {
    let env = Env::new();
    let id = approved_action(&env);
    let before = observe(&env);
    let read_only = match make_read_only(env.dir()) {
        Ok(r) => r,
        Err(reason) => {
            eprintln!("SKIPPED read_only_data_directory_fails_cleanly_and_recovers: {reason}");
            return;
        }
    };
    let commands: [&[&str]; 6] = [
        &["list"],
        &["audit", "verify"],
        SUGGEST_NOTIFY_BOB,
        &["--actor", "local:bob", "execute", &id],
        &["--actor", "local:alice", "cancel", &id],
        &["--actor", "local:bob", "recover"],
    ];
    for args in commands {
        let run = expect_raw(&env, args, 1);
        check_failure(&format!("{args:?}"), &run, 1, &["cannot open the store", "remediation.db"]);
    }
    drop(read_only);

    assert_eq!(observe(&env), before, "a failed command changed something");
    assert_eq!(state_of(&env, &id), "approved");
    let done = env.expect("local:bob", &["execute", &id, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    assert_eq!(writes(&env), 1);
    env.expect("local:bob", &["audit", "verify"], 0);
}

#[test]
fn full_disk_under_the_store_fails_cleanly_and_recovers() {
    let env = Env::new();
    let _tmpfs = match Mount::tmpfs(env.dir(), "4m") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("SKIPPED full_disk_under_the_store_fails_cleanly_and_recovers: {reason}");
            return;
        }
    };
    let id = approved_action(&env);
    let before = observe(&env);
    // Room for SQLite's shared-memory index (32 KiB), not for the write-ahead log's frames.
    let filler = fill(env.dir(), 40 * 1024);

    let suggest = [
        "--actor",
        "local:alice",
        "suggest",
        "--connector",
        "sandbox",
        "--kind",
        "revoke",
        "--identity",
        "bob",
        "--resource",
        "admins",
        "--grant-type",
        "group_membership",
        "--reason=disk full",
    ];
    for args in [&suggest[..], &["--actor", "local:bob", "execute", &id], &["--actor", "local:alice", "cancel", &id]] {
        let run = expect_raw(&env, args, 1);
        check_failure(&format!("{args:?}"), &run, 1, &["disk"]);
    }

    fs::remove_file(filler).expect("free the space");
    assert_eq!(observe(&env), before, "a failed command changed something");
    assert_eq!(state_of(&env, &id), "approved");
    let done = env.expect("local:bob", &["execute", &id, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    expect_raw(&env, &suggest, 0);
    env.expect("local:bob", &["audit", "verify"], 0);
    assert_eq!(writes(&env), 1);
    // Every event line written meanwhile is whole.
    if let Ok(events) = fs::read_to_string(env.dir().join("events.jsonl")) {
        for line in events.lines() {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("torn event line ({e}): {line}"));
        }
    }
}

#[test]
fn full_disk_under_the_provider_fails_the_action_and_keeps_its_directory() {
    let env = Env::new();
    env.init_enabled();
    let provider = tempfile::tempdir().expect("tempdir");
    let _tmpfs = match Mount::tmpfs(provider.path(), "256k") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("SKIPPED full_disk_under_the_provider_fails_the_action_and_keeps_its_directory: {reason}");
            return;
        }
    };
    let sandbox = provider.path().join("sandbox.json");
    fs::copy(sandbox_path(&env), &sandbox).expect("move the sandbox");
    env.edit_config(|t| t.replace("path = \"sandbox.json\"", &format!("path = {:?}", sandbox.display().to_string())));
    let s = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    let original = fs::read(&sandbox).expect("sandbox");
    let filler = fill(provider.path(), 0);

    // The store records the start, the provider cannot write, the action fails (5).
    let run = env.run_as("local:bob", &["execute", &id, "--output", "json"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["outcome"], "failed", "{out}");
    let error = out["error"].as_str().unwrap_or_default();
    assert!(error.contains("No space left on device"), "{error}");
    assert!(error.contains("free some space"), "the hint says what to do: {error}");
    assert_eq!(fs::read(&sandbox).expect("sandbox"), original, "the provider's file is untouched");
    let mut names: Vec<String> = fs::read_dir(provider.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    names.sort();
    assert_eq!(names, ["filler", "sandbox.json", "sandbox.json.lock"], "no temporary file is left behind");
    assert_eq!(state_of(&env, &id), "failed");
    env.expect("local:bob", &["audit", "verify"], 0);

    fs::remove_file(filler).expect("free the space");
    // Nothing was changed, so there is nothing to roll back: refused (3).
    let rollback = env.expect("local:bob", &["rollback", &id], 3);
    check_failure("rollback", &rollback, 3, &["nothing to roll back"]);
    // A new suggestion for the same change goes through.
    let s = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let again = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &again], 0);
    let done = env.expect("local:bob", &["execute", &again, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    let dir: Value = serde_json::from_slice(&fs::read(&sandbox).expect("sandbox")).expect("json");
    assert_eq!(dir["writes"].as_array().map(Vec::len), Some(1));
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
}

#[test]
fn full_standard_output_is_exit_1_not_a_panic() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPED full_standard_output_is_exit_1_not_a_panic: no /dev/full on this system");
        return;
    }
    let env = Env::new();
    let id = approved_action(&env);
    let full = || Stdio::from(fs::OpenOptions::new().write(true).open("/dev/full").expect("open /dev/full"));
    let notify_json = [SUGGEST_NOTIFY_BOB, &["--output", "json"]].concat();
    let commands: [&[&str]; 9] = [
        &["list"],
        &["list", "--output", "json"],
        &["show", &id],
        &["show", &id, "--output", "json"],
        &["connectors"],
        &["audit", "verify"],
        &["audit", "export"],
        SUGGEST_NOTIFY_BOB,
        &notify_json,
    ];
    for args in commands {
        let run = run_with(&env, args, full());
        check_failure(&format!("{args:?}"), &run, 1, &["cannot write to standard output", "No space left on device"]);
    }
    let run = expect_raw(&env, &["audit", "export", "--out", "/dev/full"], 1);
    check_failure("export --out", &run, 1, &["cannot write /dev/full", "No space left on device"]);
    // A suggestion whose report could not be printed was still recorded (check with `list`).
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    env.expect("local:bob", &["audit", "verify"], 0);
}

#[test]
fn corrupted_store_fails_cleanly_and_recovers() {
    let env = Env::new();
    let id = approved_action(&env);
    let before = observe(&env);
    let db = env.dir().join("remediation.db");
    let good = fs::read(&db).expect("db");
    let mut bad = good.clone();
    bad[..16].copy_from_slice(b"not a database!\0");
    fs::write(&db, &bad).expect("corrupt the header");

    let commands: [&[&str]; 8] = [
        &["list"],
        &["show", &id],
        &["audit", "verify"],
        &["audit", "export"],
        SUGGEST_NOTIFY_BOB,
        &["--actor", "local:bob", "execute", &id],
        &["--actor", "local:alice", "cancel", &id],
        &["--actor", "local:bob", "recover"],
    ];
    for args in commands {
        let run = expect_raw(&env, args, 1);
        check_failure(&format!("{args:?}"), &run, 1, &["remediation.db", "is not a remediate database"]);
        assert_eq!(fs::read(&db).expect("db"), bad, "{args:?} wrote to the corrupted store");
    }
    assert_eq!(writes(&env), 0, "nothing reached the provider");

    fs::write(&db, &good).expect("restore the store");
    assert_eq!(observe(&env), before);
    let done = env.expect("local:bob", &["execute", &id, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    env.expect("local:bob", &["audit", "verify"], 0);
}

/// A sandbox file whose one application profile (free-form JSON) nests `depth` arrays deep.
fn deeply_nested(depth: usize) -> Vec<u8> {
    let profile = format!("{{\"x\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    format!(
        r#"{{"grants": [{{"identity": "bob", "resource": "crm", "grant_type": "app_assignment", "level": "user", "profile": {profile}}}]}}"#
    )
    .into_bytes()
}

#[test]
fn malformed_sandbox_file_is_a_provider_failure_and_is_left_alone() {
    let env = Env::new();
    let id = approved_action(&env);
    let original = fs::read(sandbox_path(&env)).expect("sandbox");
    let truncated = original[..original.len() / 2].to_vec();
    let cases: [(&str, Vec<u8>, &str); 8] = [
        ("trailing comma", br#"{"users": {},}"#.to_vec(), "line 1, column 14"),
        ("truncated by a torn write", truncated, "EOF while parsing"),
        ("wrong type", br#"{"users": []}"#.to_vec(), "invalid type"),
        ("unknown section", br#"{"userz": {}}"#.to_vec(), "unknown field `userz`"),
        ("not UTF-8", b"{\"users\": {\"\xff\xfe\": {}}}".to_vec(), "line 1"),
        ("empty", Vec::new(), "EOF while parsing"),
        ("not an object", b"[1, 2, 3]".to_vec(), "invalid type"),
        ("deeply nested", deeply_nested(10_000), "recursion limit"),
    ];
    let before = observe(&env);
    for (name, bytes, fragment) in &cases {
        fs::write(sandbox_path(&env), bytes).expect("write sandbox");
        let suggest = env.run_as(
            "local:alice",
            &[
                "suggest",
                "--connector",
                "sandbox",
                "--kind",
                "suspend",
                "--identity",
                "bob",
                "--grant-type",
                "account",
                "--reason",
                "x",
            ],
        );
        let context = format!("case `{name}`");
        check_failure(&format!("{context}: suggest"), &suggest, 5, &["sandbox.json", "is not valid", fragment]);
        let execute = env.run_as("local:bob", &["execute", &id]);
        check_failure(&format!("{context}: execute"), &execute, 5, &["sandbox.json", "is not valid", fragment]);
        // Still readable as a listing; health says what is wrong.
        let connectors = env.expect("local:bob", &["connectors", "--output", "json"], 0).json();
        assert!(connectors.to_string().contains("is not valid"), "{context}: {connectors}");
        assert_eq!(&fs::read(sandbox_path(&env)).expect("sandbox"), bytes, "{context}: the file was rewritten");
    }
    fs::write(sandbox_path(&env), &original).expect("restore sandbox");
    assert_eq!(observe(&env), before, "a failed command changed something");
    assert_eq!(state_of(&env, &id), "approved");
    let done = env.expect("local:bob", &["execute", &id, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    assert_eq!(writes(&env), 1);
    env.expect("local:bob", &["audit", "verify"], 0);
}

// ---------------------------------------------------------------------------------------------
// Hostile identifiers.

/// One hostile identifier. `target()` names a user and (with a prefix) a group in the
/// sandbox; `text` is the same without NUL (which no command-line argument can hold), used as
/// reason, note, control, finding id and approver name. Identifiers with control characters
/// are refused by validation (no provider has one, and they could split a header, a filter or
/// a log line), so the target drops them while every free-text field keeps them.
struct Hostile {
    name: &'static str,
    identity: String,
    /// Pass the target as separate flags instead of `--target` JSON.
    flags: bool,
}

impl Hostile {
    fn text(&self) -> String {
        self.identity.replace('\0', "")
    }

    /// The identity as a target can hold it: without control characters.
    fn target(&self) -> String {
        self.identity.chars().filter(|c| !c.is_control()).collect()
    }

    /// Whether validation refuses the identifier as given.
    fn refused(&self) -> bool {
        self.identity.chars().any(char::is_control)
    }

    fn group(&self) -> String {
        format!("grp {}", self.target())
    }
}

fn hostile_cases() -> Vec<Hostile> {
    let case = |name, identity: &str, flags| Hostile { name, identity: identity.to_owned(), flags };
    let long: String = "ab\"c\\d\ne\tf\u{1b}[1mé👩\u{200d}💻\u{202e}".chars().cycle().take(10_240).collect();
    vec![
        case("quotes and backslashes", r#"o'brien "the" \admin\ `x` $(id)"#, false),
        case("newline, tab, carriage return", "two\nlines\tand\rback", false),
        case("forged log line", "bob\nerror: audit chain broken\r\n[ok] ", true),
        case("ANSI escapes", "\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7} \u{1b}[2J", false),
        case("DEL and C1 controls", "del\u{7f} nel\u{85} csi\u{9b}31m", false),
        case("right-to-left override", "\u{202e}nimda\u{202c} עברית العربية \u{2067}iso\u{2069}", true),
        case("emoji and combining marks", "👩\u{200d}💻🔥 e\u{301}\u{301}\u{301} Z\u{335}\u{31b}", false),
        case("separators and invisibles", "a\u{2028}b\u{2029}c\u{200b}d\u{feff}", false),
        case("NUL", "nul\0byte", false),
        case("10 kB", &long, false),
    ]
}

#[test]
fn hostile_identifiers_flow_through_unchanged() {
    let env = Env::new();
    env.init_enabled();
    // The approvers below are named with the hostile text: any unlisted actor approves here.
    env.edit_config(|t| t.replace("default_role = \"requester\"", "default_role = \"approver\""));
    let cases = hostile_cases();
    assert!(cases.iter().any(|c| c.target().len() >= 10_240));
    assert!(cases.iter().any(Hostile::refused) && cases.iter().any(|c| !c.refused()));

    // The sandbox holds a user and a group per identifier, the user a member of the group.
    let mut dir = env.sandbox();
    for c in &cases {
        dir["users"][&c.target()] = json!({"display_name": c.text(), "status": "active", "sessions": []});
        dir["groups"][c.group()] = json!({"members": ["alice", c.target()]});
    }
    fs::write(sandbox_path(&env), serde_json::to_vec_pretty(&dir).expect("json")).expect("write sandbox");

    let mut ids = Vec::new();
    let mut stderr = String::new();
    for c in &cases {
        let context = format!("case `{}`", c.name);
        if c.refused() {
            // As given, the identifier is refused before the connector reads anything.
            let raw = json!({"identity": c.identity, "resource": c.group(), "grant_type": "group_membership"});
            let raw = raw.to_string();
            let run = env.run_as(
                "local:alice",
                &["suggest", "--connector", "sandbox", "--kind", "revoke", "--target", &raw, "--reason", "x"],
            );
            check_failure(&format!("{context}: raw identity"), &run, 3, &["validation", "control character"]);
            assert_printable(&format!("{context}: stderr"), &run.stderr);
        }
        let (identity, group, text) = (c.target(), c.group(), c.text());
        let identity = identity.as_str();
        let target = json!({"identity": identity, "resource": group, "grant_type": "group_membership"}).to_string();
        let mut args = vec!["--actor", "local:alice", "suggest", "--connector", "sandbox", "--kind", "revoke"];
        let (identity_flag, resource_flag) = (format!("--identity={identity}"), format!("--resource={group}"));
        if c.flags {
            args.extend([identity_flag.as_str(), resource_flag.as_str(), "--grant-type", "group_membership"]);
        } else {
            args.extend(["--target", target.as_str()]);
        }
        let (reason, control, finding) =
            (format!("--reason={text}"), format!("--control={text}"), format!("--finding-id={text}"));
        args.extend([reason.as_str(), control.as_str(), finding.as_str(), "--output", "json"]);
        let run = expect_raw(&env, &args, 0);
        stderr.push_str(&run.stderr);
        let s = run.json();
        let action = &s["action"];
        assert_eq!(action["target"]["identity"], identity, "{context}");
        assert_eq!(action["target"]["resource"], group.as_str(), "{context}");
        assert_eq!(action["reason"], text.as_str(), "{context}");
        assert_eq!(action["control_id"], text.as_str(), "{context}");
        assert_eq!(action["finding_id"], text.as_str(), "{context}");
        let id = action["id"].as_str().expect("id").to_owned();

        // The approver's name and note are the hostile text too.
        let (actor, note) = (format!("--actor={text}"), format!("--note={text}"));
        let approved = expect_raw(&env, &[actor.as_str(), "approve", &id, note.as_str()], 0);
        stderr.push_str(&approved.stderr);
        assert_printable(&format!("{context}: approve output"), &approved.stdout);
        let done = env.expect("local:bob", &["execute", &id, "--output", "json"], 0);
        stderr.push_str(&done.stderr);
        assert_eq!(done.json()["outcome"], "completed", "{context}");
        ids.push(id);
    }

    // The sandbox's write log and membership hold the identifiers byte for byte.
    let dir = env.sandbox();
    let logged: Vec<&Value> = dir["writes"].as_array().expect("writes").iter().map(|w| &w["target"]).collect();
    for (c, target) in cases.iter().zip(&logged) {
        assert_eq!(target["identity"], c.target().as_str(), "case `{}`", c.name);
        assert_eq!(target["resource"], c.group().as_str(), "case `{}`", c.name);
        let members = &dir["groups"][c.group()]["members"];
        assert_eq!(members, &json!(["alice"]), "case `{}`", c.name);
    }

    // The store: `show` and `list` as JSON give everything back unchanged.
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    for (c, id) in cases.iter().zip(&ids) {
        let context = format!("case `{}`", c.name);
        let listed = list.as_array().expect("list").iter().find(|a| a["id"] == id.as_str()).expect("listed");
        assert_eq!(listed["target"]["identity"], c.target().as_str(), "{context}");
        let show = env.expect("local:bob", &["show", id, "--output", "json"], 0).json();
        assert_eq!(show["action"]["target"]["identity"], c.target().as_str(), "{context}");
        assert_eq!(show["action"]["reason"], c.text().as_str(), "{context}");
        let transitions = show["transitions"].as_array().expect("transitions");
        let suggest = &transitions[0];
        assert!(
            suggest["comment"].as_str().is_some_and(|comment| comment.starts_with(&c.text())),
            "{context}: the reason starts the suggestion's comment: {suggest}"
        );
        let approve = &transitions[1];
        assert_eq!(approve["actor"], c.text().as_str(), "{context}");
        assert_eq!(approve["comment"], c.text().as_str(), "{context}");

        // The table forms stay one line per field and per row, with nothing raw in them.
        let table = env.expect("local:bob", &["show", id], 0);
        assert_printable(&format!("{context}: show"), &table.stdout);
        for label in ["action ", "target ", "reason ", "control "] {
            let n = table.stdout.lines().filter(|l| l.starts_with(label)).count();
            assert_eq!(n, 1, "{context}: `{label}` lines in:\n{}", table.stdout);
        }
        let rows = table.stdout.lines().skip_while(|l| !l.starts_with("AT ")).count();
        assert_eq!(rows, transitions.len() + 1, "{context}: transition table:\n{}", table.stdout);
    }
    let table = env.expect("local:bob", &["list"], 0);
    assert_printable("list", &table.stdout);
    assert_eq!(table.stdout.lines().count(), cases.len() + 1, "one line per action plus the header:\n{}", table.stdout);

    // The audit trail: the export holds the text exactly, in canonical JSON, one record a line.
    let export = env.expect("local:bob", &["audit", "export"], 0);
    let records: Vec<Value> =
        export.stdout.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON record")).collect();
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
    assert_eq!(verify["records"].as_u64(), Some(records.len() as u64));
    for (c, id) in cases.iter().zip(&ids) {
        let context = format!("case `{}`", c.name);
        let text = c.text();
        let mine: Vec<(&str, &Value)> =
            export.stdout.lines().zip(&records).filter(|(_, r)| r["action_id"] == id.as_str()).collect();
        let (line, first) = mine.first().expect("records of the action");
        assert_eq!(first["event"], "suggest", "{context}");
        assert_eq!(first["control_id"], text.as_str(), "{context}");
        assert_eq!(first["finding_id"], text.as_str(), "{context}");
        // Byte for byte: the canonical JSON string of the text is in the line as written.
        let encoded = serde_json::to_string(&text).expect("json string");
        assert!(line.contains(&encoded), "{context}: {encoded} not in {line}");
        let (_, approve) = mine.iter().find(|(_, r)| r["event"] == "approve").expect("approve record");
        assert_eq!(approve["actor"], text.as_str(), "{context}");
        assert_eq!(approve["comment"], text.as_str(), "{context}");
    }

    // Rolled back with a hostile note, every user is a member again.
    for (c, id) in cases.iter().zip(&ids) {
        let note = format!("--note={}", c.text());
        let run = expect_raw(&env, &["--actor", "local:bob", "rollback", id, note.as_str()], 3);
        assert_printable(&format!("case `{}`: rollback request", c.name), &run.stdout);
        stderr.push_str(&run.stderr);
        let run = expect_raw(&env, &["--actor", "local:dave", "approve", id, note.as_str()], 0);
        assert_printable(&format!("case `{}`: rollback", c.name), &run.stdout);
        stderr.push_str(&run.stderr);
    }
    let dir = env.sandbox();
    for c in &cases {
        let members = &dir["groups"][c.group()]["members"];
        assert!(members.as_array().expect("members").contains(&json!(c.target())), "case `{}`", c.name);
    }
    env.expect("local:bob", &["audit", "verify"], 0);
    assert_printable("stderr", &stderr);
}

#[test]
fn hostile_text_in_errors_stays_on_one_line() {
    let env = Env::new();
    env.init_enabled();
    for c in hostile_cases() {
        // An unknown user: the error names it, escaped, on one line; one with a control
        // character is refused by validation before any lookup.
        let target =
            json!({"identity": c.identity, "resource": "admins", "grant_type": "group_membership"}).to_string();
        let run = env.run_as(
            "local:alice",
            &["suggest", "--connector", "sandbox", "--kind", "revoke", "--target", &target, "--reason", "x"],
        );
        let code = if c.refused() { 3 } else { 4 };
        check_failure(&format!("case `{}`: unknown user", c.name), &run, code, &[]);
        assert_printable(&format!("case `{}`: stderr", c.name), &run.stderr);
        // A target that is not valid JSON around the hostile text: a usage error.
        let broken = format!("{{\"identity\": {}", json!(c.identity));
        let run = env.run_as(
            "local:alice",
            &["suggest", "--connector", "sandbox", "--kind", "revoke", "--target", &broken, "--reason", "x"],
        );
        check_failure(&format!("case `{}`: broken --target", c.name), &run, 2, &["--target"]);
        assert_printable(&format!("case `{}`: stderr", c.name), &run.stderr);
    }
    env.expect("local:bob", &["audit", "verify"], 0);
}
