//! The committed test vectors in `tests/vectors/` (see its README): the chain must be
//! reproduced byte for byte, and the canonical body and hash written out below must hold.
//!
//! To create the files once (never to update them: they are a contract), run
//! `REMEDIATION_WRITE_VECTORS=1 cargo test -p remediation-audit --test it vectors`.

use remediation_audit::AuditRecordExt as _;
use std::path::PathBuf;

use remediation_audit::{AuditRecord, read_jsonl, verify_chain, write_jsonl};
use remediation_core::hash::sha256_hex;
use remediation_core::{ActionId, State, TransitionRecord};
use time::macros::datetime;

/// The canonical body (record without `hash`) of the first vector record, written out.
const FIRST_BODY: &str = r#"{"action_id":"0194f3a0-7c00-7000-8000-00000000c0de","actor":"local:alice","after_hash":null,"at":"2026-01-02T03:04:05Z","before_hash":"1111111111111111111111111111111111111111111111111111111111111111","comment":"stale admin access","connector":"sandbox","control_id":"CIS-1.1","decided_by":null,"event":"suggest","finding_id":"F-42","from":null,"initiated_by":"local:alice","plan_hash":"2222222222222222222222222222222222222222222222222222222222222222","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","request_ids":[],"rollback_expires_at":null,"seq":1,"to":"pending_approval"}"#;

/// SHA-256 of [`FIRST_BODY`]: the first vector record's `hash`.
const FIRST_HASH: &str = "626c97c5c1c80310ad1f3f1663b913bd7e1ba62bb40994ec4a0867f28c62bb08";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("vectors")
}

/// The three records of `chain.jsonl`, built from fixed values.
fn vector_chain() -> Vec<AuditRecord> {
    let action_id = ActionId("0194f3a0-7c00-7000-8000-00000000c0de".parse().expect("uuid"));
    let base = TransitionRecord {
        action_id,
        from: None,
        to: State::PendingApproval,
        event: "suggest".to_owned(),
        actor: "local:alice".to_owned(),
        credential: None,
        initiated_by: "local:alice".to_owned(),
        decided_by: None,
        at: datetime!(2026-01-02 03:04:05 UTC),
        comment: Some("stale admin access".to_owned()),
        connector: "sandbox".to_owned(),
        control_id: Some("CIS-1.1".to_owned()),
        finding_id: Some("F-42".to_owned()),
        before_hash: Some("1".repeat(64)),
        after_hash: None,
        plan_hash: Some("2".repeat(64)),
        request_ids: Vec::new(),
        rollback_expires_at: None,
        before_state: None,
        after_state: None,
        limit: None,
    };
    let approve = TransitionRecord {
        from: Some(State::PendingApproval),
        to: State::Approved,
        event: "approve".to_owned(),
        actor: "local:bob".to_owned(),
        decided_by: Some("local:bob".to_owned()),
        at: datetime!(2026-01-02 04:00:00.25 UTC),
        comment: Some("approved after review with \"ops\" \u{2014} ticket SEC-1".to_owned()),
        ..base.clone()
    };
    let execute = TransitionRecord {
        from: Some(State::Approved),
        to: State::Executing,
        event: "begin_execution".to_owned(),
        actor: "system".to_owned(),
        decided_by: None,
        at: datetime!(2026-01-02 05:30:00 UTC),
        comment: None,
        after_hash: Some("3".repeat(64)),
        request_ids: vec!["req-1".to_owned(), "req-2".to_owned()],
        rollback_expires_at: Some(datetime!(2026-01-09 05:30:00 UTC)),
        ..base.clone()
    };
    let first = AuditRecord::seal(None, base).expect("seal");
    let second = AuditRecord::seal(Some(&first), approve).expect("seal");
    let third = AuditRecord::seal(Some(&second), execute).expect("seal");
    vec![first, second, third]
}

fn vector_jsonl() -> String {
    let mut out = Vec::new();
    write_jsonl(vector_chain(), &mut out).expect("write");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn chain_vector_is_reproduced() {
    let path = vectors_dir().join("chain.jsonl");
    if std::env::var_os("REMEDIATION_WRITE_VECTORS").is_some() {
        std::fs::write(&path, vector_jsonl()).expect("write chain.jsonl");
        std::fs::write(vectors_dir().join("first-body.json"), vector_chain()[0].canonical_body().expect("body"))
            .expect("write first-body.json");
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; see the module docs", path.display()));
    assert_eq!(vector_jsonl(), committed, "the hash rule or the record format changed");
    let records = read_jsonl(committed.as_bytes()).expect("read");
    let report = verify_chain(records);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 3);
}

#[test]
fn first_body_vector_holds() {
    assert_eq!(sha256_hex(FIRST_BODY.as_bytes()), FIRST_HASH);
    let first = &vector_chain()[0];
    assert_eq!(first.canonical_body().expect("body"), FIRST_BODY);
    assert_eq!(first.hash, FIRST_HASH);
    let committed = std::fs::read_to_string(vectors_dir().join("first-body.json")).expect("first-body.json");
    assert_eq!(committed, FIRST_BODY);
}

#[test]
fn records_carrying_states_verify_and_leave_the_vectors_unchanged() {
    // A completion record that carries the before- and after-state themselves.
    let mut chain = vector_chain();
    let mut done = chain[2].body.transition().expect("a transition").clone();
    done.event = "execution_succeeded".to_owned();
    done.from = Some(State::Executing);
    done.to = State::Completed;
    done.before_state = Some(remediation_core::Snapshot::new(serde_json::json!({"member": true})));
    done.after_state = Some(remediation_core::Snapshot::new(serde_json::json!({"member": false})));
    let sealed = AuditRecord::seal(chain.last(), done).expect("seal");
    let line = sealed.to_canonical_json().expect("canonical");
    assert!(line.contains(r#""after_state":{"protected":false,"state":{"member":false}}"#), "{line}");
    assert!(line.contains(r#""before_state":{"protected":false,"state":{"member":true}}"#), "{line}");
    assert_eq!(AuditRecord::from_json(&line).expect("strict parse"), sealed);
    chain.push(sealed);
    assert!(verify_chain(chain).is_intact());
    // Records without states serialise without the keys: the committed vectors still hold.
    assert!(!vector_jsonl().contains("_state"));
    assert_eq!(sha256_hex(FIRST_BODY.as_bytes()), FIRST_HASH);
}

#[test]
fn sealing_a_prepared_body_reproduces_the_vectors() {
    let committed = std::fs::read_to_string(vectors_dir().join("chain.jsonl")).expect("chain.jsonl");
    let mut head = None;
    let mut lines = committed.lines();
    for expected in vector_chain() {
        let prepared = remediation_audit::PreparedBody::new(expected.body.clone()).expect("prepare");
        let (record, json) = remediation_audit::seal_prepared(head.as_ref(), prepared).expect("seal");
        assert_eq!(record, expected);
        assert_eq!(json, expected.to_canonical_json().expect("canonical"));
        assert_eq!(Some(json.as_str()), lines.next());
        head = Some(record.head());
    }
    // A body with nested objects, arrays and escapes: the same bytes as the ordinary path.
    let mut done = vector_chain()[2].body.transition().expect("a transition").clone();
    done.before_state = Some(remediation_core::Snapshot::new(serde_json::json!({"z": [1, 2.5], "a": "\u{e9}\n"})));
    let expected = AuditRecord::seal(vector_chain().last(), done.clone()).expect("seal");
    let prepared = remediation_audit::PreparedBody::new(done).expect("prepare");
    let (record, json) = remediation_audit::seal_prepared(head.as_ref(), prepared).expect("seal");
    assert_eq!(record, expected);
    assert_eq!(json, expected.to_canonical_json().expect("canonical"));
}
