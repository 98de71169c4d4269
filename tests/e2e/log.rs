//! The verifiable audit log through the real binary: `init` creates the signing key, every
//! command that grows the log leaves a signed tree head, `audit key`, `tree-head`, `prove` and
//! `consistency` print what the independent `tests/verify_log.py` checks, keys rotate without
//! orphaning old heads, and an auditor holding an old head catches a truncated, rewritten or
//! forked log — also where the HMAC checkpoint is not configured, or its key is not held.

use std::path::{Path, PathBuf};
use std::process::Command;

use remediation_audit::{AuditRecord, AuditRecordExt as _, PublicKeySet, SignedTreeHead};
use remediation_e2e::{Env, Run};
use serde_json::Value;

use crate::REVOKE_ALICE_ADMINS;

/// The signing key file `init` writes.
const SIGNING_KEY: &str = "audit-signing.key";

/// `init` (enabled), without the HMAC checkpoint when `checkpoint` is false: the log's own
/// proofs must stand without it.
fn installation(checkpoint: bool) -> Env {
    let env = Env::new();
    env.expect("local:alice", &["init"], 0);
    env.enable();
    env.edit_config(|t| {
        let t = if checkpoint { t } else { t.replace("hmac_key_file = \"audit.key\"\n", "") };
        format!("{t}\n[policy.kinds.revoke]\nrollback_requires_approval = false\n")
    });
    env
}

/// One action through suggest, approve, execute and rollback: six records. Returns its id.
fn lifecycle(env: &Env) -> String {
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    env.expect("local:bob", &["rollback", &id], 0);
    id
}

/// One action suggested and rejected: two records.
fn rejected(env: &Env) -> String {
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["reject", &id, "--note", "not now"], 0);
    id
}

fn json_of(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    env.expect("local:bob", &all, 0).document()
}

/// Writes `value` into a file of the auditor's own directory.
fn keep(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write");
    path
}

fn head_of(env: &Env) -> Value {
    json_of(env, &["audit", "tree-head"])
}

/// Runs `tests/verify_log.py` with `args`.
fn verifier(python: &Path, args: &[&Path]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_log.py");
    let out = Command::new(python).arg(script).args(args).output().expect("run verify_log.py");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts the verifier accepts (`ok`) or refuses (exit 1, `FAILED`) and returns its output.
#[track_caller]
fn check(python: &Path, command: &str, files: &[&Path], ok: bool) -> String {
    let mut args: Vec<&Path> = vec![Path::new(command)];
    args.extend(files);
    let run = verifier(python, &args);
    let text = format!("{}{}", run.stdout, run.stderr);
    if ok {
        assert_eq!(run.code, 0, "verify_log.py {command} should accept:\n{text}");
    } else {
        assert_eq!(run.code, 1, "verify_log.py {command} should refuse:\n{text}");
        assert!(run.stderr.contains("FAILED"), "{text}");
    }
    text
}

/// The same checks in Rust, through `remediation-audit`: `new` extends `old` by `proof`.
fn extends(keys: &Value, old: &Value, bundle: &Value) -> bool {
    let keys: PublicKeySet = serde_json::from_value(keys.clone()).expect("keys");
    let old: SignedTreeHead = serde_json::from_value(old.clone()).expect("old head");
    let new: SignedTreeHead = serde_json::from_value(bundle["tree_head"].clone()).expect("new head");
    let proof: remediation_audit::ConsistencyProof = serde_json::from_value(bundle["proof"].clone()).expect("proof");
    remediation_audit::verify_extends(&keys, &old, &new, &proof.path).is_ok()
}

#[test]
fn init_writes_a_private_signing_key_and_each_command_leaves_a_signed_head() {
    let env = Env::new();
    env.expect("local:alice", &["init"], 0);
    let path = env.dir().join(SIGNING_KEY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("signing key written").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let config = std::fs::read_to_string(env.dir().join("remediation.toml")).expect("config");
    assert!(config.contains("signing_key = \"audit-signing.key\""), "{config}");
    let saved = std::fs::read(&path).expect("key");
    env.expect("local:alice", &["init", "--force"], 0);
    assert_eq!(std::fs::read(&path).expect("key"), saved, "init --force keeps the key");
    env.enable();
    env.edit_config(|t| format!("{t}\n[policy.kinds.revoke]\nrollback_requires_approval = false\n"));

    let id = lifecycle(&env);
    let head = head_of(&env);
    assert_eq!(head["tree_size"], 6, "every record of the lifecycle is covered: {head}");
    let keys = json_of(&env, &["audit", "key"]);
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(keys["keys"][0]["key_id"], head["key_id"]);
    let seed = String::from_utf8_lossy(&saved).lines().nth(1).expect("seed").to_owned();
    let commands: [&[&str]; 4] =
        [&["audit", "key"], &["audit", "tree-head"], &["audit", "prove", &id], &["audit", "verify"]];
    for args in commands {
        let run = env.expect("local:bob", args, 0);
        assert!(!format!("{}{}", run.stdout, run.stderr).contains(&seed), "the secret key is printed by {args:?}");
    }
    let verify = json_of(&env, &["audit", "verify"]);
    assert_eq!(verify["tree_head"]["status"], "matches", "{verify}");
    assert_eq!(verify["checkpoint"]["status"], "matches", "{verify}");

    // A key file others may read is refused, naming the key to fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = env.expect("local:bob", &["list"], 2);
        assert!(refused.stderr.contains("audit.signing_key"), "{}", refused.stderr);
        assert!(refused.stderr.contains("chmod 600"), "{}", refused.stderr);
    }
}

#[test]
fn proofs_from_the_binary_verify_independently() {
    let env = installation(true);
    let auditor = tempfile::tempdir().expect("auditor dir");
    let first = lifecycle(&env);
    let keys = keep(auditor.path(), "keys.json", &json_of(&env, &["audit", "key"]));
    let old = head_of(&env);
    let old_path = keep(auditor.path(), "head-6.json", &old);
    let prove = json_of(&env, &["audit", "prove", &first]);
    assert_eq!(prove["proofs"].as_array().map(Vec::len), Some(6), "{prove}");
    assert_eq!(prove["tree_head"], old);
    let bundle = keep(auditor.path(), "prove.json", &prove);

    let second = lifecycle(&env);
    let new = head_of(&env);
    assert_eq!(new["tree_size"], 12);
    let consistency = json_of(&env, &["audit", "consistency", "6"]);
    assert_eq!(consistency["old_head"], old, "the log still holds the head of 6 records");
    assert!(extends(
        &serde_json::from_str(&std::fs::read_to_string(&keys).expect("keys")).expect("keys"),
        &old,
        &consistency
    ));
    let consistency_path = keep(auditor.path(), "consistency.json", &consistency);
    // The second action's records, proved in the tree of 12 and, against the old head, refused.
    let later = keep(auditor.path(), "prove-2.json", &json_of(&env, &["audit", "prove", &second]));

    // The table forms say what they hold.
    let table = env.expect("local:bob", &["audit", "prove", &first], 0);
    assert!(table.stdout.contains("tree head: 12 records"), "{}", table.stdout);
    let table = env.expect("local:bob", &["audit", "consistency", "6"], 0);
    assert!(table.stdout.contains("consistency proof from 6 records"), "{}", table.stdout);
    // Asking for sizes the log cannot answer.
    env.expect("local:bob", &["audit", "consistency", "13"], 6);
    env.expect("local:bob", &["audit", "prove", &first, "--tree-size", "13"], 2);
    env.expect("local:bob", &["audit", "prove", "01900000-0000-7000-8000-0000000000ff"], 4);

    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    check(&python, "selftest", &[], true);
    check(&python, "head", &[&keys, &old_path], true);
    let text = check(&python, "inclusion-bundle", &[&keys, &bundle], true);
    assert!(text.contains("6 records are in the log of 6 records"), "{text}");
    check(&python, "inclusion-bundle", &[&keys, &later], true);
    check(&python, "consistency-bundle", &[&keys, &old_path, &consistency_path], true);
    // A proof for the tree of 12 does not verify against the head of 6.
    check(&python, "inclusion-bundle", &[&keys, &later, &old_path], false);
}

#[test]
fn a_rotated_key_names_new_heads_and_old_heads_still_verify() {
    let env = installation(true);
    let auditor = tempfile::tempdir().expect("auditor dir");
    lifecycle(&env);
    let old = head_of(&env);
    let old_path = keep(auditor.path(), "old.json", &old);
    let before = std::fs::read(env.dir().join(SIGNING_KEY)).expect("key");

    let refused = env.expect("local:bob", &["audit", "rotate-key"], 3);
    assert!(refused.stderr.contains("only an admin"), "{}", refused.stderr);
    let rotated = env.expect("local:e2e-runner", &["audit", "rotate-key", "--output", "json"], 0).json();
    assert_eq!(rotated["old"]["key_id"], old["key_id"]);
    assert_ne!(rotated["new"]["key_id"], old["key_id"]);
    let after = std::fs::read(env.dir().join(SIGNING_KEY)).expect("key");
    assert_ne!(after, before, "the key file holds the new key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.dir().join(SIGNING_KEY)).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let leftovers: Vec<String> = std::fs::read_dir(env.dir())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    lifecycle(&env);
    let new = head_of(&env);
    assert_eq!(new["key_id"], rotated["new"]["key_id"], "new heads name the new key");
    let keys_json = json_of(&env, &["audit", "key"]);
    let ids: Vec<&str> =
        keys_json["keys"].as_array().expect("keys").iter().filter_map(|k| k["key_id"].as_str()).collect();
    assert_eq!(ids, [old["key_id"].as_str().expect("id"), rotated["new"]["key_id"].as_str().expect("id")]);
    let consistency = json_of(&env, &["audit", "consistency", &old["tree_size"].to_string()]);
    assert!(extends(&keys_json, &old, &consistency), "a head of the old key is extended by one of the new");
    // The rotation itself is in the log.
    let export = env.expect("local:bob", &["audit", "export"], 0).stdout;
    assert!(export.contains("\"setting_event\":\"audit_key_rotated\""), "{export}");
    assert_eq!(json_of(&env, &["audit", "verify"])["tree_head"]["status"], "matches");

    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    let keys = keep(auditor.path(), "keys.json", &keys_json);
    check(&python, "head", &[&keys, &old_path], true);
    let consistency = keep(auditor.path(), "consistency.json", &consistency);
    check(&python, "consistency-bundle", &[&keys, &old_path, &consistency], true);
    // Without the retired key, the old head cannot be checked.
    let mut current_only = keys_json.clone();
    current_only["keys"].as_array_mut().expect("keys").remove(0);
    let current_only = keep(auditor.path(), "current.json", &current_only);
    check(&python, "head", &[&current_only, &old_path], false);
}

/// A connection to the store that bypasses remediate, as an attacker with the file would.
fn raw(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.dir().join("remediation.db")).expect("open the store file")
}

/// The records as stored.
fn records(conn: &rusqlite::Connection) -> Vec<AuditRecord> {
    let mut stmt = conn.prepare("SELECT record_json FROM audit ORDER BY seq").expect("prepare");
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("query");
    rows.map(|json| AuditRecord::from_json(&json.expect("row")).expect("record")).collect()
}

/// Replaces the whole log with `rewritten`, recomputing every hash, leaf and the chain head,
/// and removes every signed head the log kept: all the evidence the store holds agrees.
fn replace_log(conn: &rusqlite::Connection, rewritten: &[AuditRecord]) {
    conn.execute_batch(
        "DROP TRIGGER audit_no_delete; DROP TRIGGER audit_leaves_no_delete; DROP TRIGGER audit_tree_heads_no_delete;
         DELETE FROM audit; DELETE FROM audit_leaves; DELETE FROM audit_tree_heads;",
    )
    .expect("clear the log");
    for r in rewritten {
        let json = r.to_canonical_json().expect("json");
        let seq = i64::try_from(r.seq).expect("seq");
        let action = r.body.action_id().map(|a| a.to_string()).unwrap_or_default();
        let at = i64::try_from(r.body.at().unix_timestamp_nanos()).expect("at");
        conn.execute(
            "INSERT INTO audit (seq, action_id, at, record_json, prev_hash, hash, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'default')",
            rusqlite::params![seq, action, at, json, r.prev_hash, r.hash],
        )
        .expect("insert");
        let leaf = remediation_audit::merkle::record_leaf_hash(r).expect("leaf");
        conn.execute(
            "INSERT INTO audit_leaves (tenant, leaf_index, hash) VALUES ('default', ?1, ?2)",
            rusqlite::params![seq - 1, leaf.0.as_slice()],
        )
        .expect("leaf");
    }
    let last = rewritten.last().expect("records");
    conn.execute(
        "UPDATE audit_head SET seq = ?1, hash = ?2",
        rusqlite::params![i64::try_from(last.seq).expect("seq"), last.hash],
    )
    .expect("head");
}

#[test]
fn a_truncated_log_fails_the_auditors_consistency_check() {
    let env = installation(false);
    let auditor = tempfile::tempdir().expect("auditor dir");
    lifecycle(&env);
    lifecycle(&env);
    let keys = json_of(&env, &["audit", "key"]);
    let held = head_of(&env);
    assert_eq!(held["tree_size"], 12);

    // Cut the second action off, and every trace of it: records, leaves, heads.
    let conn = raw(&env);
    let kept: Vec<AuditRecord> = records(&conn).into_iter().take(6).collect();
    replace_log(&conn, &kept);
    drop(conn);
    // The next commands grow the log past the size the auditor saw, and sign it afresh.
    rejected(&env);
    rejected(&env);
    rejected(&env);
    rejected(&env);
    let now = head_of(&env);
    assert_eq!(now["tree_size"], 14, "{now}");
    assert_eq!(json_of(&env, &["audit", "verify"])["tree_head"]["status"], "matches", "the store alone sees nothing");

    let bundle = json_of(&env, &["audit", "consistency", "12"]);
    assert!(!extends(&keys, &held, &bundle), "the log does not extend the head the auditor holds");
    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    let keys = keep(auditor.path(), "keys.json", &keys);
    let held = keep(auditor.path(), "held.json", &held);
    let bundle = keep(auditor.path(), "consistency.json", &bundle);
    let text = check(&python, "consistency-bundle", &[&keys, &held, &bundle], false);
    assert!(text.contains("does not extend the old tree"), "{text}");
}

#[test]
fn a_truncation_the_store_still_holds_heads_for_is_refused_and_reported() {
    let env = installation(false);
    lifecycle(&env);
    lifecycle(&env);
    let conn = raw(&env);
    let kept: Vec<AuditRecord> = records(&conn).into_iter().take(6).collect();
    let heads: i64 = conn.query_row("SELECT COUNT(*) FROM audit_tree_heads", [], |r| r.get(0)).expect("heads");
    assert!(heads >= 2);
    // Cut the records and leaves, leave the signed heads.
    conn.execute_batch(
        "DROP TRIGGER audit_no_delete; DROP TRIGGER audit_leaves_no_delete;
         DELETE FROM audit WHERE seq > 6; DELETE FROM audit_leaves WHERE leaf_index >= 6;",
    )
    .expect("truncate");
    conn.execute("UPDATE audit_head SET seq = 6, hash = ?1", [&kept[5].hash]).expect("head");
    drop(conn);
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 6).json();
    assert_eq!(verify["tree_head"]["status"], "truncated", "{verify}");
    assert_eq!(
        (verify["tree_head"]["tree_size"].as_u64(), verify["tree_head"]["log_size"].as_u64()),
        (Some(12), Some(6))
    );
    // The log grows again, but no head is signed over the cut.
    let grown = env.run_as("local:alice", REVOKE_ALICE_ADMINS);
    assert_eq!(grown.code, 0, "{}", grown.stderr);
    assert!(grown.stderr.contains("no tree head signed"), "{}", grown.stderr);
    assert!(grown.stderr.contains("does not extend the latest signed tree head"), "{}", grown.stderr);
    assert_eq!(head_of(&env)["tree_size"], 12, "the latest head is still the honest one");
}

#[test]
fn a_rewrite_with_a_recomputed_chain_fails_the_auditors_proofs() {
    // No HMAC key: only the tree heads the auditor holds can reveal a rewrite.
    let env = installation(false);
    let auditor = tempfile::tempdir().expect("auditor dir");
    let first = lifecycle(&env);
    lifecycle(&env);
    let keys = json_of(&env, &["audit", "key"]);
    let held = head_of(&env);
    assert_eq!(held["tree_size"], 12);

    // Credit the approval to someone else, re-seal the chain from there, recompute every leaf,
    // drop the signed heads: the chain verifies and the store's own heads agree.
    let conn = raw(&env);
    let mut rewritten: Vec<AuditRecord> = Vec::new();
    for record in records(&conn) {
        let mut body = record.body;
        if let Some(t) = body.transition_mut().filter(|t| t.event == "approve" && t.action_id.to_string() == first) {
            t.actor = "local:mallory".to_owned();
        }
        rewritten.push(AuditRecord::seal(rewritten.last(), body).expect("seal"));
    }
    replace_log(&conn, &rewritten);
    drop(conn);
    env.expect("local:bob", &["list"], 0);
    let verify = json_of(&env, &["audit", "verify"]);
    assert_eq!(verify["first_break"], Value::Null, "the chain was recomputed: {verify}");
    assert_eq!(verify["checkpoint"]["status"], "not_configured");
    let now = head_of(&env);
    assert_eq!(now["tree_size"], 12);
    assert_ne!(now["root_hash"], held["root_hash"]);

    let bundle = json_of(&env, &["audit", "consistency", "12"]);
    assert!(!extends(&keys, &held, &bundle));
    // The rewritten record's inclusion proof in the tree of 12, against the head the auditor
    // holds.
    let prove = json_of(&env, &["audit", "prove", &first, "--tree-size", "12"]);
    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    let keys = keep(auditor.path(), "keys.json", &keys);
    let held = keep(auditor.path(), "held.json", &held);
    let bundle = keep(auditor.path(), "consistency.json", &bundle);
    let text = check(&python, "consistency-bundle", &[&keys, &held, &bundle], false);
    assert!(text.contains("equal sizes but different roots"), "{text}");
    let prove = keep(auditor.path(), "prove.json", &prove);
    check(&python, "inclusion-bundle", &[&keys, &prove, &held], false);
}

#[test]
fn a_record_rewritten_under_its_leaf_fails_its_inclusion_proof() {
    let env = installation(false);
    let auditor = tempfile::tempdir().expect("auditor dir");
    let id = lifecycle(&env);
    let keys = json_of(&env, &["audit", "key"]);
    let held = head_of(&env);
    // Edit one record and re-seal the chain, leaving the leaves and heads as they were.
    let conn = raw(&env);
    let mut rewritten: Vec<AuditRecord> = Vec::new();
    for record in records(&conn) {
        let mut body = record.body;
        if let Some(t) = body.transition_mut().filter(|t| t.event == "approve") {
            t.actor = "local:mallory".to_owned();
        }
        rewritten.push(AuditRecord::seal(rewritten.last(), body).expect("seal"));
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
    conn.execute("UPDATE audit_head SET hash = ?1", [&rewritten[5].hash]).expect("head");
    conn.execute("DELETE FROM audit_checkpoints", []).expect("no checkpoint");
    drop(conn);
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 6).json();
    assert_eq!(verify["tree_head"]["status"], "leaf_mismatch", "{verify}");
    assert_eq!(verify["tree_head"]["seq"], 2, "the approval is the second record: {verify}");
    let prove = json_of(&env, &["audit", "prove", &id]);
    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    let keys = keep(auditor.path(), "keys.json", &keys);
    let held = keep(auditor.path(), "held.json", &held);
    let prove = keep(auditor.path(), "prove.json", &prove);
    let text = check(&python, "inclusion-bundle", &[&keys, &prove, &held], false);
    assert!(text.contains("not the record that was logged"), "{text}");
}

/// Copies the installation's files (configuration, keys, store) into a fresh directory.
fn fork(env: &Env) -> Env {
    let other = Env::new();
    for entry in std::fs::read_dir(env.dir()).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, other.dir().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    other
}

#[test]
fn a_forked_log_fails_the_consistency_check_against_the_other_branch() {
    let env = installation(true);
    let auditor = tempfile::tempdir().expect("auditor dir");
    lifecycle(&env);
    let common = head_of(&env);
    let branch = fork(&env);
    // The auditor is shown one branch …
    lifecycle(&env);
    let keys = json_of(&env, &["audit", "key"]);
    let shown = head_of(&env);
    assert_eq!(shown["tree_size"], 12);
    // … while the other, signed with the same key, grows differently.
    rejected(&branch);
    rejected(&branch);
    rejected(&branch);
    let other = head_of(&branch);
    assert_eq!(other["tree_size"], 12);
    assert_eq!(other["key_id"], shown["key_id"]);
    assert_eq!(json_of(&branch, &["audit", "verify"])["tree_head"]["status"], "matches");

    let from_branch = json_of(&branch, &["audit", "consistency", "12"]);
    assert!(!extends(&keys, &shown, &from_branch), "the branches disagree");
    // Both extend what they had in common.
    assert!(extends(&keys, &common, &json_of(&branch, &["audit", "consistency", "6"])));
    assert!(extends(&keys, &common, &json_of(&env, &["audit", "consistency", "6"])));
    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    let keys = keep(auditor.path(), "keys.json", &keys);
    let shown = keep(auditor.path(), "shown.json", &shown);
    let from_branch = keep(auditor.path(), "branch.json", &from_branch);
    check(&python, "consistency-bundle", &[&keys, &shown, &from_branch], false);
}

#[test]
fn the_server_signs_as_the_log_grows_and_the_cli_proves_through_it() {
    let (env, requester, approver) = crate::server::setup();
    let server = crate::server::Server::start(&env);
    let url = format!("http://{}", server.addr);
    let auditor = tempfile::tempdir().expect("auditor dir");
    let body = serde_json::json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing access",
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"}});
    let (status, created) = server.call("POST", "/v1/actions", Some(&requester), Some(&body));
    assert_eq!(status, 201, "{created}");
    let id = created["action"]["id"].as_str().expect("id").to_owned();
    let (status, _) = server.call("POST", &format!("/v1/actions/{id}/approve"), Some(&approver), None);
    assert_eq!(status, 200);
    // The server signs within a second or so of the log growing (and its worker runs the
    // approved action meanwhile): wait for a head covering both records.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let head = loop {
        let (status, head) = server.call("GET", "/v1/audit/tree-head", Some(&approver), None);
        let (_, records) = server.call("GET", "/v1/audit", Some(&approver), None);
        let logged = records["items"].as_array().map_or(0, Vec::len) as u64;
        if status == 200 && head["tree_size"].as_u64() == Some(logged) && logged >= 2 {
            break head;
        }
        assert!(std::time::Instant::now() < deadline, "no head covering the log was signed: {head}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let remote = |args: &[&str]| {
        let run = crate::client::run_remote(&url, Some(&approver), args);
        assert_eq!(run.code, 0, "remediate --server {args:?}\n{}{}", run.stdout, run.stderr);
        run.document()
    };
    assert_eq!(remote(&["audit", "tree-head", "--output", "json"]), head);
    let keys = remote(&["audit", "key", "--output", "json"]);
    let prove = remote(&["audit", "prove", &id, "--tree-size", &head["tree_size"].to_string(), "--output", "json"]);
    assert_eq!(prove["tree_head"], head);
    let only_local = crate::client::run_remote(&url, Some(&approver), &["audit", "rotate-key"]);
    assert_eq!(only_local.code, 2, "{}", only_local.stderr);
    // The log grows again; the next head extends the one held.
    let engineering = serde_json::json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing access",
        "target": {"identity": "alice", "resource": "engineering", "grant_type": "group_membership"}});
    let (status, again) = server.call("POST", "/v1/actions", Some(&requester), Some(&engineering));
    assert_eq!(status, 201, "{again}");
    let held = head["tree_size"].as_u64().expect("size");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.call("GET", "/v1/audit/tree-head", Some(&approver), None).1["tree_size"].as_u64() <= Some(held) {
        assert!(std::time::Instant::now() < deadline, "no newer head was signed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let consistency = remote(&["audit", "consistency", &held.to_string(), "--output", "json"]);
    assert!(extends(&keys, &head, &consistency));
    let Some(python) = crate::python("the independent log verifier") else {
        return;
    };
    let keys = keep(auditor.path(), "keys.json", &keys);
    let head_path = keep(auditor.path(), "head.json", &head);
    check(&python, "head", &[&keys, &head_path], true);
    let prove = keep(auditor.path(), "prove.json", &prove);
    check(&python, "inclusion-bundle", &[&keys, &prove, &head_path], true);
    let consistency = keep(auditor.path(), "consistency.json", &consistency);
    check(&python, "consistency-bundle", &[&keys, &head_path, &consistency], true);
}

#[test]
fn archive_refuses_what_retention_keeps_and_deletes_nothing_without_an_archive() {
    let env = installation(true);
    lifecycle(&env);
    let out = env.dir().join("archive.json");
    let out_arg = out.display().to_string();
    // Recorded today: inside the seven years kept by default.
    let kept =
        env.expect("local:e2e-runner", &["audit", "archive", "--before", "2100-01-01T00:00:00Z", "--out", &out_arg], 2);
    assert!(kept.stderr.contains("kept 2557 days"), "{}", kept.stderr);
    // Nothing that old exists.
    env.expect("local:e2e-runner", &["audit", "archive", "--before", "2001-01-01T00:00:00Z", "--out", &out_arg], 4);
    // Only admins archive.
    env.expect("local:bob", &["audit", "archive", "--before", "2001-01-01T00:00:00Z", "--out", &out_arg], 3);
    assert!(!out.exists(), "no file was written");
    assert_eq!(json_of(&env, &["audit", "verify"])["records"], 6, "nothing was removed");
    // A retention below a year is a configuration error.
    env.edit_config(|t| t.replace("# retention_days = 2557", "retention_days = 30"));
    let short = env.expect("local:bob", &["list"], 2);
    assert!(short.stderr.contains("audit.retention_days"), "{}", short.stderr);
}
