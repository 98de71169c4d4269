//! Our own verifiable-log vectors in `tests/vectors/log/` (see its README): records, their leaf
//! hashes and roots, proofs and heads signed with the RFC 8032 TEST 1 key. They are rebuilt
//! here from the committed records and must match byte for byte; then the standalone Python
//! checker `tests/verify_log.py` (repository root) must accept them and refuse tampered copies.
//!
//! To create the files once (never to update them: they are a contract), run
//! `REMEDIATION_WRITE_VECTORS=1 cargo test -p remediation-audit --test it log_vectors`.

use std::path::{Path, PathBuf};
use std::process::Command;

use remediation_audit::merkle::{self, MerkleHash, record_leaf_hash};
use remediation_audit::{
    AuditRecord, AuditRecordExt as _, ConsistencyProof, InclusionProof, LogSigningKey, PublicKeySet, SignedTreeHead,
    read_jsonl, verify_chain, write_jsonl,
};
use serde::Serialize;
use serde_json::json;
use time::macros::datetime;

use crate::support::{body, seal_all};
use crate::tree_head::{RFC8032_TEST1_SECRET, seed};

fn log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("vectors").join("log")
}

fn signer() -> LogSigningKey {
    LogSigningKey::from_seed(&seed(RFC8032_TEST1_SECRET))
}

fn pretty<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("json");
    text.push('\n');
    text
}

/// The committed records (created once from `support::body`).
fn records() -> Vec<AuditRecord> {
    let path = log_dir().join("records.jsonl");
    if std::env::var_os("REMEDIATION_WRITE_VECTORS").is_some() && !path.exists() {
        std::fs::create_dir_all(log_dir()).expect("mkdir");
        let mut out = Vec::new();
        write_jsonl(seal_all((0..7).map(body)), &mut out).expect("jsonl");
        std::fs::write(&path, out).expect("write records.jsonl");
    }
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    read_jsonl(text.as_slice()).expect("records")
}

struct Vectors {
    files: Vec<(&'static str, String)>,
    root_7: MerkleHash,
}

/// Every derived file, from the records.
fn derive() -> Vectors {
    let records = records();
    assert_eq!(records.len(), 7);
    assert!(verify_chain(records.clone()).is_intact());
    let leaves: Vec<MerkleHash> = records.iter().map(|r| record_leaf_hash(r).expect("leaf")).collect();
    let roots: Vec<MerkleHash> = (0..=leaves.len()).map(|n| merkle::root(&leaves[..n])).collect();
    let signer = signer();
    let mut keys = PublicKeySet::default();
    keys.publish(signer.published());
    let head_3 = signer.sign_next(None, 3, roots[3], &[], datetime!(2026-01-02 06:00:00 UTC)).expect("head 3");
    let consistency = ConsistencyProof::generate(&leaves, 3, 7).expect("prove");
    let head_7 = signer
        .sign_next(Some(&head_3), 7, roots[7], &consistency.path, datetime!(2026-01-02 07:00:00.5 UTC))
        .expect("head 7");
    let inclusion = |index, size| pretty(&InclusionProof::generate(&leaves, index, size).expect("prove"));
    let record_5 = {
        let mut text = serde_json::to_string_pretty(&records[4]).expect("json");
        text.push('\n');
        text
    };
    Vectors {
        files: vec![
            ("tree.json", pretty(&json!({ "leaf_hashes": leaves, "roots_by_size": roots }))),
            ("keys.json", pretty(&keys)),
            ("head-3.json", pretty(&head_3)),
            ("head-7.json", pretty(&head_7)),
            ("inclusion-0-in-7.json", inclusion(0, 7)),
            ("inclusion-4-in-7.json", inclusion(4, 7)),
            ("inclusion-6-in-7.json", inclusion(6, 7)),
            ("inclusion-2-in-3.json", inclusion(2, 3)),
            ("consistency-3-to-7.json", pretty(&consistency)),
            ("record-5.json", record_5),
        ],
        root_7: roots[7],
    }
}

#[test]
fn log_vectors_are_reproduced() {
    let vectors = derive();
    let dir = log_dir();
    for (name, content) in &vectors.files {
        let path = dir.join(name);
        if std::env::var_os("REMEDIATION_WRITE_VECTORS").is_some() {
            std::fs::write(&path, content).expect("write vector");
        }
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert_eq!(&committed, content, "{name}: the leaf, tree or tree head rule changed");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    assert!(readme.contains(&vectors.root_7.to_hex()), "the README names the root of the 7 records");
}

#[test]
fn log_vectors_verify_in_rust() {
    let read = |name: &str| std::fs::read_to_string(log_dir().join(name)).expect("vector");
    let keys: PublicKeySet = serde_json::from_str(&read("keys.json")).expect("keys");
    let head_3: SignedTreeHead = serde_json::from_str(&read("head-3.json")).expect("head");
    let head_7: SignedTreeHead = serde_json::from_str(&read("head-7.json")).expect("head");
    keys.verify(&head_3).expect("head 3");
    keys.verify(&head_7).expect("head 7");
    let proof: ConsistencyProof = serde_json::from_str(&read("consistency-3-to-7.json")).expect("proof");
    remediation_audit::verify_extends(&keys, &head_3, &head_7, &proof.path).expect("consistent");
    for (name, head) in [
        ("inclusion-0-in-7.json", &head_7),
        ("inclusion-4-in-7.json", &head_7),
        ("inclusion-6-in-7.json", &head_7),
        ("inclusion-2-in-3.json", &head_3),
    ] {
        let proof: InclusionProof = serde_json::from_str(&read(name)).expect("proof");
        proof.verify(&head.head.root_hash).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let record = AuditRecord::from_json(&read("record-5.json")).expect("record");
    let proof: InclusionProof = serde_json::from_str(&read("inclusion-4-in-7.json")).expect("proof");
    assert_eq!(record_leaf_hash(&record).expect("leaf"), proof.leaf_hash);
}

/// The Python interpreter `REMEDIATION_TEST_PYTHON` names, else `python3` if it is on PATH;
/// `None` (after printing why) when neither; a failure under `CI=true`, where
/// `.ci/setup-python.sh` must have provided one.
fn python() -> Option<PathBuf> {
    const VAR: &str = "REMEDIATION_TEST_PYTHON";
    let named = std::env::var(VAR).ok().filter(|v| !v.trim().is_empty());
    let on_path = || {
        let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
        found.then(|| "python3".to_owned())
    };
    match named.or_else(on_path) {
        Some(python) => Some(PathBuf::from(python.trim())),
        None if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") => {
            panic!("{VAR} is not set and python3 is not on PATH, but CI is: `.ci/setup-python.sh` prints the line")
        }
        None => {
            eprintln!("skipping the independent Python check: {VAR} is not set and python3 is not on PATH");
            None
        }
    }
}

/// Runs `tests/verify_log.py` with `args`; its exit code and output.
fn checker(python: &Path, args: &[&Path]) -> (i32, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/verify_log.py");
    let out = Command::new(python).arg(script).args(args).output().expect("run verify_log.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_python_checker_accepts_the_vectors_and_refuses_tampered_copies() {
    let Some(python) = python() else { return };
    let dir = log_dir();
    let v = |name: &str| dir.join(name);
    let ok = |args: &[&Path]| {
        let (code, text) = checker(&python, args);
        assert_eq!(code, 0, "{args:?}: {text}");
        assert!(text.starts_with("ok: "), "{text}");
    };
    let fails = |args: &[&Path], why: &str| {
        let (code, text) = checker(&python, args);
        assert_eq!(code, 1, "{args:?} should fail ({why}): {text}");
        assert!(text.contains(why), "{args:?}: expected `{why}` in: {text}");
    };
    let command = |name: &'static str| PathBuf::from(name);

    ok(&[&command("selftest")]);
    ok(&[
        &command("ct-vectors"),
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ct/transparency-dev-merkle"),
    ]);
    ok(&[&command("head"), &v("keys.json"), &v("head-7.json")]);
    ok(&[&command("inclusion"), &v("keys.json"), &v("head-7.json"), &v("inclusion-4-in-7.json"), &v("record-5.json")]);
    ok(&[&command("inclusion"), &v("keys.json"), &v("head-3.json"), &v("inclusion-2-in-3.json")]);
    ok(&[
        &command("consistency"),
        &v("keys.json"),
        &v("head-3.json"),
        &v("head-7.json"),
        &v("consistency-3-to-7.json"),
    ]);

    let tmp = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, value: &serde_json::Value| {
        let path = tmp.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write");
        path
    };
    let load = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(v(name)).expect("read")).expect("json")
    };

    // A flipped signature byte, a changed size, an unknown key.
    let mut head = load("head-7.json");
    let mut sig = hex::decode(head["signature"].as_str().expect("sig")).expect("hex");
    sig[10] ^= 0x04;
    head["signature"] = hex::encode(sig).into();
    fails(&[&command("head"), &v("keys.json"), &write("flipped.json", &head)], "does not verify");
    let mut head = load("head-7.json");
    head["tree_size"] = 8.into();
    fails(&[&command("head"), &v("keys.json"), &write("size.json", &head)], "does not verify");
    let stranger = LogSigningKey::generate();
    let others =
        write("others.json", &serde_json::to_value(PublicKeySet { keys: vec![stranger.published()] }).expect("json"));
    fails(&[&command("head"), &others, &v("head-7.json")], "not in the key set");

    // The proof of leaf 0 does not prove record 5, even when it claims to be for leaf 4; a
    // changed path hash proves nothing.
    fails(
        &[&command("inclusion"), &v("keys.json"), &v("head-7.json"), &v("inclusion-0-in-7.json"), &v("record-5.json")],
        "but the proof is for leaf 0",
    );
    let mut proof = load("inclusion-0-in-7.json");
    proof["leaf_index"] = 4.into();
    fails(
        &[&command("inclusion"), &v("keys.json"), &v("head-7.json"), &write("leaf0.json", &proof), &v("record-5.json")],
        "not the record that was logged",
    );
    let mut proof = load("inclusion-4-in-7.json");
    proof["path"][1] = MerkleHash([7; 32]).to_hex().into();
    fails(
        &[&command("inclusion"), &v("keys.json"), &v("head-7.json"), &write("path.json", &proof)],
        "does not lead to the root",
    );
    let mut record = load("record-5.json");
    record["actor"] = "local:mallory".into();
    fails(
        &[
            &command("inclusion"),
            &v("keys.json"),
            &v("head-7.json"),
            &v("inclusion-4-in-7.json"),
            &write("record.json", &record),
        ],
        "not the record that was logged",
    );

    // A head over a rewritten log (record 2 changed, chain recomputed), genuinely signed,
    // with the proof computed over the rewritten log: not consistent with head 3.
    let mut bodies: Vec<_> = (0..7).map(body).collect();
    bodies[1].actor = "local:mallory".to_owned();
    let rewritten: Vec<MerkleHash> = seal_all(bodies).iter().map(|r| record_leaf_hash(r).expect("leaf")).collect();
    let rewritten_head =
        signer().sign_next(None, 7, merkle::root(&rewritten), &[], datetime!(2026-01-02 08:00:00 UTC)).expect("sign");
    let rewritten_proof = ConsistencyProof::generate(&rewritten, 3, 7).expect("prove");
    fails(
        &[
            &command("consistency"),
            &v("keys.json"),
            &v("head-3.json"),
            &write("rewritten-head.json", &serde_json::to_value(&rewritten_head).expect("json")),
            &write("rewritten-proof.json", &serde_json::to_value(&rewritten_proof).expect("json")),
        ],
        "does not extend the old tree",
    );
    // Truncated: the new head is older than the old one.
    let truncated = json!({ "old_size": 7, "new_size": 3, "path": [] });
    fails(
        &[
            &command("consistency"),
            &v("keys.json"),
            &v("head-7.json"),
            &v("head-3.json"),
            &write("truncated.json", &truncated),
        ],
        "truncated",
    );
}
