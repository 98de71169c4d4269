//! The keyed audit checkpoint through the real binary: `init` creates a private key file,
//! `audit verify` catches a cut-off tail and a rewritten chain made through a raw SQLite
//! connection, an export re-verifies with the independent Python checker, and the key never
//! appears in any output.

use remediation_audit::AuditRecordExt as _;
use std::path::Path;
use std::process::Command;

use remediation_audit::AuditRecord;
use remediation_e2e::{Env, Run};
use serde_json::Value;

use crate::REVOKE_ALICE_ADMINS;

/// The key file `init` writes, and the line naming it in the configuration.
const KEY_FILE: &str = "audit.key";

/// The key as written in the data directory's key file.
fn key_hex(env: &Env) -> String {
    std::fs::read_to_string(env.dir().join(KEY_FILE)).expect("audit.key").trim().to_owned()
}

/// Runs a command, asserts its exit code, and that neither the key nor its bytes in any
/// usual spelling appear in what it printed.
#[track_caller]
fn run(env: &Env, actor: &str, args: &[&str], code: i32) -> Run {
    let run = env.expect(actor, args, code);
    assert_no_key(env, &format!("{}{}", run.stdout, run.stderr));
    run
}

#[track_caller]
fn assert_no_key(env: &Env, text: &str) {
    let key = key_hex(env);
    for spelling in [key.clone(), key.to_uppercase(), key[..16].to_owned()] {
        assert!(!text.contains(&spelling), "the audit key appears in the output:\n{text}");
    }
}

/// `init` (enabled), then one action through its whole lifecycle: six audit records.
fn lifecycle(env: &Env) {
    run(env, "local:alice", &["init"], 0);
    env.enable();
    // One approver rolls back alone here, so the trail is exactly six records.
    env.edit_config(|t| format!("{t}\n[policy.kinds.revoke]\nrollback_requires_approval = false\n"));
    let suggested = run(env, "local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    run(env, "local:bob", &["approve", &id], 0);
    run(env, "local:bob", &["execute", &id], 0);
    run(env, "local:bob", &["rollback", &id], 0);
}

fn verify_json(env: &Env, code: i32) -> Value {
    run(env, "local:bob", &["audit", "verify", "--output", "json"], code).json()
}

/// A connection to the store that bypasses remediate, as an attacker with the file would.
fn raw(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.dir().join("remediation.db")).expect("open the store file")
}

#[test]
fn init_creates_a_private_key_file_named_in_the_config() {
    let env = Env::new();
    let init = env.expect("local:alice", &["init"], 0);
    let path = env.dir().join(KEY_FILE);
    let text = std::fs::read_to_string(&path).expect("audit.key written");
    assert_eq!(text.len(), 65, "64 hex characters and a newline");
    assert!(text.trim_end().chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the owner may read the key");
    }
    let config = std::fs::read_to_string(env.dir().join("remediation.toml")).expect("config");
    assert!(config.contains("[audit]\nhmac_key_file = \"audit.key\""), "{config}");
    assert!(init.stdout.contains("audit.key"), "init says where the key is: {}", init.stdout);
    assert_no_key(&env, &format!("{}{}{config}", init.stdout, init.stderr));

    // A second init --force keeps the key: the store's checkpoint is sealed with it.
    run(&env, "local:alice", &["init", "--force"], 0);
    assert_eq!(std::fs::read_to_string(&path).expect("audit.key"), text);
    // Two installations never share a key.
    let other = Env::new();
    other.expect("local:alice", &["init"], 0);
    assert_ne!(key_hex(&other), key_hex(&env));
}

#[cfg(unix)]
#[test]
fn every_file_init_and_a_lifecycle_leave_in_the_data_dir_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    lifecycle(&env);
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(env.dir()).expect("list the data directory") {
        let path = entry.expect("entry").path();
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is readable by others", path.display());
        seen.push(path.file_name().expect("name").to_string_lossy().into_owned());
    }
    for expected in ["remediation.toml", "remediation.db", "audit.key", "sandbox.json", "events.jsonl"] {
        assert!(seen.iter().any(|s| s == expected), "{expected} missing from {seen:?}");
    }
}

#[test]
fn verify_passes_after_a_lifecycle() {
    let env = Env::new();
    lifecycle(&env);
    let report = verify_json(&env, 0);
    assert_eq!(report["records"], 6);
    assert_eq!(report["checkpoint"]["status"], "matches", "{report}");
    let table = run(&env, "local:bob", &["audit", "verify"], 0);
    assert!(table.stdout.contains("audit chain intact: 6 records"), "{}", table.stdout);
    assert!(table.stdout.contains("checkpoint: matches"), "{}", table.stdout);
    // The checkpoint row names the last record.
    let (count, head): (i64, String) = raw(&env)
        .query_row("SELECT count, head FROM audit_checkpoints WHERE tenant = 'default'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("checkpoint row");
    assert_eq!((count, Some(head.as_str())), (6, report["head"].as_str()));
}

#[test]
fn a_cut_off_tail_is_detected() {
    let env = Env::new();
    lifecycle(&env);
    raw(&env)
        .execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq > 4;")
        .expect("cut off the last two records");
    let table = run(&env, "local:bob", &["audit", "verify"], 6);
    assert!(table.stdout.contains("AUDIT CHAIN BROKEN"), "{}", table.stdout);
    assert!(table.stdout.contains("records were cut off the end of the chain"), "{}", table.stdout);
    let report = verify_json(&env, 6);
    assert!(report["first_break"].is_null(), "the remaining links are fine: {report}");
    assert_eq!(report["checkpoint"]["status"], "mismatch");
    assert_eq!(
        (report["checkpoint"]["checkpoint_count"].as_u64(), report["checkpoint"]["actual_count"].as_u64()),
        (Some(6), Some(4))
    );
    // The next state change is refused rather than sealing a new checkpoint over the gap.
    let refused = run(&env, "local:alice", REVOKE_ALICE_ADMINS, 1);
    assert!(refused.stderr.contains("does not match its checkpoint"), "{}", refused.stderr);
    assert_eq!(verify_json(&env, 6)["records"], 4, "nothing was appended");
}

#[test]
fn a_complete_rewrite_with_recomputed_hashes_is_detected() {
    let env = Env::new();
    lifecycle(&env);
    let conn = raw(&env);
    let records: Vec<AuditRecord> = {
        let mut stmt = conn.prepare("SELECT record_json FROM audit ORDER BY seq").expect("prepare");
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("query");
        rows.map(|json| AuditRecord::from_json(&json.expect("row")).expect("record")).collect()
    };
    // Re-seal every record, the approval credited to someone else: every link and hash is valid.
    let mut rewritten: Vec<AuditRecord> = Vec::new();
    for record in records {
        let mut body = record.body;
        if let Some(t) = body.transition_mut().filter(|t| t.event == "approve") {
            t.actor = "local:mallory".to_owned();
        }
        let sealed = AuditRecord::seal(rewritten.last(), body).expect("seal");
        rewritten.push(sealed);
    }
    conn.execute_batch("DROP TRIGGER audit_no_update").expect("drop trigger");
    for r in &rewritten {
        conn.execute(
            "UPDATE audit SET record_json = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![
                r.to_canonical_json().expect("json"),
                r.prev_hash,
                r.hash,
                i64::try_from(r.seq).expect("seq")
            ],
        )
        .expect("rewrite");
    }
    let table = run(&env, "local:bob", &["audit", "verify"], 6);
    assert!(table.stdout.contains("the chain was rewritten"), "{}", table.stdout);
    let report = verify_json(&env, 6);
    assert!(report["first_break"].is_null(), "{report}");
    assert_eq!(report["checkpoint"]["status"], "mismatch");
    assert_eq!(report["checkpoint"]["actual_head"].as_str(), rewritten.last().map(|r| r.hash.as_str()));

    // Forging the checkpoint too needs the key: without it the MAC is wrong.
    conn.execute(
        "UPDATE audit_checkpoints SET head = ?1, mac = ?2",
        rusqlite::params![rewritten[5].hash, "0".repeat(64)],
    )
    .expect("forge");
    let forged = run(&env, "local:bob", &["audit", "verify"], 6);
    assert!(forged.stdout.contains("checkpoint: bad MAC"), "{}", forged.stdout);
    // And deleting it is noticed as well.
    conn.execute("DELETE FROM audit_checkpoints", []).expect("delete");
    assert_eq!(verify_json(&env, 6)["checkpoint"]["status"], "missing");
}

fn checker(python: &Path, export: &Path) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_audit.py");
    let out = Command::new(python).arg(script).arg(export).output().expect("run verify_audit.py");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn an_export_re_verifies_independently_and_never_holds_the_key() {
    let env = Env::new();
    lifecycle(&env);
    let export = run(&env, "local:bob", &["audit", "export"], 0);
    assert_eq!(export.stdout.lines().count(), 6);
    assert_no_key(&env, &export.stdout);
    let file = env.dir().join("export.jsonl");
    std::fs::write(&file, &export.stdout).expect("write the export");

    let Some(python) = crate::python("the independent check") else {
        return;
    };
    let ok = checker(&python, &file);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let head = verify_json(&env, 0)["head"].as_str().expect("head").to_owned();
    assert!(ok.stdout.contains(&format!("ok: 6 records verified, head {head}")), "{}", ok.stdout);

    // Edit one line: the checker names it.
    let edited: Vec<String> = export
        .stdout
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i != 2 {
                return l.to_owned();
            }
            let mut record: Value = serde_json::from_str(l).expect("JSON line");
            record["actor"] = Value::from("local:mallory");
            record.to_string()
        })
        .collect();
    std::fs::write(&file, edited.join("\n") + "\n").expect("write the edited export");
    let broken = checker(&python, &file);
    assert_eq!(broken.code, 1, "{}{}", broken.stdout, broken.stderr);
    assert!(broken.stderr.contains("line 3: hash does not match the content"), "{}", broken.stderr);
}

#[test]
fn a_missing_or_malformed_key_file_is_a_configuration_error() {
    let env = Env::new();
    run(&env, "local:alice", &["init"], 0);
    let key = env.dir().join(KEY_FILE);
    let saved = std::fs::read_to_string(&key).expect("audit.key");

    std::fs::remove_file(&key).expect("remove the key");
    let missing = env.expect("local:bob", &["audit", "verify"], 2);
    assert!(missing.stderr.contains("audit.hmac_key_file"), "{}", missing.stderr);
    assert!(missing.stderr.contains(&key.display().to_string()), "{}", missing.stderr);
    assert!(missing.stderr.contains("remediation.toml"), "{}", missing.stderr);
    env.expect("local:alice", &["list"], 2);

    std::fs::write(&key, &saved[..40]).expect("truncate the key");
    let short = env.expect("local:bob", &["audit", "verify"], 2);
    assert!(short.stderr.contains("audit.hmac_key_file"), "{}", short.stderr);
    assert!(short.stderr.contains("64 hex characters"), "{}", short.stderr);
    assert!(!short.stderr.contains(&saved[..16]), "the error never quotes the file: {}", short.stderr);

    std::fs::write(&key, &saved).expect("restore the key");
    run(&env, "local:bob", &["audit", "verify"], 0);
}

#[test]
fn a_different_key_reports_a_bad_mac() {
    let env = Env::new();
    lifecycle(&env);
    let other = Env::new();
    other.expect("local:alice", &["init"], 0);
    std::fs::copy(other.dir().join(KEY_FILE), env.dir().join(KEY_FILE)).expect("swap the key");
    let report = verify_json(&env, 6);
    assert_eq!(report["checkpoint"]["status"], "bad_mac", "{report}");
}
