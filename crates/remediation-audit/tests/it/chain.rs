//! Chain verification: each way of tampering is reported at the first broken link.

use proptest::prelude::*;
use remediation_audit::AuditRecordExt as _;
use remediation_audit::{
    AuditKey, AuditRecord, Break, BreakKind, ChainReport, ChainVerifier, Checkpoint, CheckpointVerdict, verify_chain,
    verify_chain_with_checkpoint,
};
use remediation_core::hash::GENESIS_HASH;

use crate::support::{body, chain, seal_all};

/// Tampers with a chain of five records and checks the first break found, as
/// `(position, seq, problem)`.
#[track_caller]
fn check(tamper: impl FnOnce(&mut Vec<AuditRecord>), expected: Option<(u64, u64, BreakKind)>) {
    let mut records = chain(5);
    tamper(&mut records);
    let count = records.len() as u64;
    let head = records.last().map(|r| r.hash.clone());
    let report = verify_chain(records);
    let found = report.first_break.clone().map(|b| (b.position, b.seq, b.problem));
    assert_eq!(found, expected, "report: {report}");
    assert_eq!(report.records, count);
    assert_eq!(report.head, head);
}

/// The key of the checkpoint tests.
fn key() -> AuditKey {
    AuditKey::from_hex(&"5a".repeat(32)).expect("key")
}

/// A checkpoint of `records`' last record under `key`.
fn seal_head(key: &AuditKey, records: &[AuditRecord]) -> Checkpoint {
    let last = records.last().expect("records");
    key.seal(last.seq, &last.hash)
}

fn rehash(record: &mut AuditRecord) {
    record.hash = record.compute_hash().expect("hash");
}

#[test]
fn intact_chain() {
    check(|_| {}, None);
}

#[test]
fn edited_field() {
    check(
        |c| c.get_mut(2).expect("record").body.transition_mut().expect("transition").actor = "local:mallory".to_owned(),
        Some((3, 3, BreakKind::HashMismatch)),
    );
    check(
        |c| c[0].body.transition_mut().expect("transition").comment = Some("nothing to see".to_owned()),
        Some((1, 1, BreakKind::HashMismatch)),
    );
    check(
        |c| c[4].body.transition_mut().expect("transition").at += time::Duration::seconds(1),
        Some((5, 5, BreakKind::HashMismatch)),
    );
    check(
        |c| c[1].body.transition_mut().expect("transition").request_ids.push("req-forged".to_owned()),
        Some((2, 2, BreakKind::HashMismatch)),
    );
    check(|c| c[1].body.transition_mut().expect("transition").from = None, Some((2, 2, BreakKind::HashMismatch)));
}

#[test]
fn edited_stored_hash() {
    // The next record still links to the old hash, but the edited record is checked first.
    check(|c| c[1].hash = "ff".repeat(32), Some((2, 2, BreakKind::HashMismatch)));
}

#[test]
fn deleted_record() {
    check(|c| drop(c.remove(2)), Some((3, 4, BreakKind::SeqGap { expected: 3, found: 4 })));
    check(|c| drop(c.remove(0)), Some((1, 2, BreakKind::SeqGap { expected: 1, found: 2 })));
}

#[test]
fn deleted_record_with_later_seqs_renumbered() {
    check(
        |c| {
            c.remove(2);
            for r in &mut c[2..] {
                r.seq -= 1;
            }
        },
        Some((3, 3, BreakKind::PrevHashMismatch)),
    );
}

#[test]
fn truncation_passes_the_chain_alone_but_not_the_checkpoint() {
    // The links of a shortened chain are all fine: only the checkpoint reveals it.
    check(|c| drop(c.pop()), None);
    let key = key();
    let mut records = chain(5);
    let checkpoint = seal_head(&key, &records);
    records.truncate(3);
    let head = records[2].hash.clone();
    let report = verify_chain_with_checkpoint(records, Some(&key), Some(&checkpoint));
    assert_eq!(report.first_break, None);
    assert_eq!(
        report.checkpoint,
        CheckpointVerdict::Mismatch {
            checkpoint_count: 5,
            checkpoint_head: checkpoint.head.clone(),
            actual_count: 3,
            actual_head: Some(head),
        }
    );
    assert!(!report.is_intact());
    assert!(report.to_string().contains("records were cut off the end of the chain"), "{report}");
}

#[test]
fn swapped_records() {
    check(|c| c.swap(1, 2), Some((2, 3, BreakKind::SeqGap { expected: 2, found: 3 })));
    check(
        |c| {
            c.swap(1, 2);
            c[1].seq = 2;
            c[2].seq = 3;
        },
        Some((2, 2, BreakKind::PrevHashMismatch)),
    );
}

#[test]
fn edited_and_rehashed_record_is_caught_by_the_next_link() {
    check(
        |c| {
            c[1].body.transition_mut().expect("transition").actor = "local:mallory".to_owned();
            rehash(&mut c[1]);
        },
        Some((3, 3, BreakKind::PrevHashMismatch)),
    );
    check(
        |c| {
            c[0].body.transition_mut().expect("transition").comment = Some("rewritten".to_owned());
            rehash(&mut c[0]);
        },
        Some((2, 2, BreakKind::PrevHashMismatch)),
    );
}

#[test]
fn inserted_record() {
    check(
        |c| {
            let forged = AuditRecord::seal(Some(&c[1]), body(99)).expect("seal");
            c.insert(2, forged);
        },
        Some((4, 3, BreakKind::SeqGap { expected: 4, found: 3 })),
    );
}

#[test]
fn first_record_must_start_from_genesis() {
    check(
        |c| {
            c[0].prev_hash = "11".repeat(32);
            rehash(&mut c[0]);
        },
        Some((1, 1, BreakKind::PrevHashMismatch)),
    );
}

fn rewrite(c: &mut Vec<AuditRecord>) {
    let mut bodies: Vec<_> = c.iter().map(|r| r.body.clone()).collect();
    bodies[2].transition_mut().expect("transition").actor = "local:mallory".to_owned();
    *c = seal_all(bodies);
}

#[test]
fn full_rewrite_passes_the_chain_alone_but_not_the_checkpoint() {
    // Every hash recomputed: the links are fine, only the checkpoint's head differs.
    check(rewrite, None);
    let key = key();
    let mut records = chain(5);
    let checkpoint = seal_head(&key, &records);
    rewrite(&mut records);
    let head = records[4].hash.clone();
    let report = verify_chain_with_checkpoint(records.clone(), Some(&key), Some(&checkpoint));
    assert_eq!(report.first_break, None);
    assert_eq!(
        report.checkpoint,
        CheckpointVerdict::Mismatch {
            checkpoint_count: 5,
            checkpoint_head: checkpoint.head.clone(),
            actual_count: 5,
            actual_head: Some(head.clone()),
        }
    );
    assert!(report.to_string().contains("the chain was rewritten"), "{report}");
    // Re-sealing the checkpoint for the rewritten chain needs the key: with another key
    // the MAC does not verify.
    let forged = seal_head(&AuditKey::generate(), &records);
    let report = verify_chain_with_checkpoint(records, Some(&key), Some(&forged));
    assert_eq!(report.checkpoint, CheckpointVerdict::BadMac);
    assert!(!report.is_intact());
}

#[test]
fn intact_chain_with_its_checkpoint() {
    let key = key();
    let records = chain(4);
    let checkpoint = seal_head(&key, &records);
    let report = verify_chain_with_checkpoint(records, Some(&key), Some(&checkpoint));
    assert_eq!(report.checkpoint, CheckpointVerdict::Matches);
    assert!(report.is_intact(), "{report}");
    assert!(report.to_string().ends_with("; checkpoint: matches"), "{report}");
    // An empty chain needs no checkpoint; records without one are reported.
    assert_eq!(verify_chain_with_checkpoint(Vec::new(), Some(&key), None).checkpoint, CheckpointVerdict::Matches);
    assert_eq!(verify_chain_with_checkpoint(chain(2), Some(&key), None).checkpoint, CheckpointVerdict::Missing);
    // Without a key nothing is checked.
    assert_eq!(verify_chain_with_checkpoint(chain(2), None, None).checkpoint, CheckpointVerdict::NotConfigured);
}

#[test]
fn checkpoint_verdict_is_independent_of_breaks_in_the_middle() {
    // A record deleted from the middle: the link breaks, but the tail is the one the
    // checkpoint names.
    let key = key();
    let mut records = chain(5);
    let checkpoint = seal_head(&key, &records);
    records.remove(2);
    let report = verify_chain_with_checkpoint(records, Some(&key), Some(&checkpoint));
    assert_eq!(report.first_break.map(|b| b.problem), Some(BreakKind::SeqGap { expected: 3, found: 4 }));
    assert_eq!(report.checkpoint, CheckpointVerdict::Matches);
}

#[test]
fn empty_chain() {
    let report = verify_chain(Vec::new());
    assert_eq!(
        report,
        ChainReport { records: 0, head: None, first_break: None, checkpoint: CheckpointVerdict::NotConfigured }
    );
    assert_eq!(report.to_string(), "audit chain intact: no records; checkpoint: not configured");
}

#[test]
fn seal_links_records() {
    let c = chain(3);
    assert_eq!(c[0].seq, 1);
    assert_eq!(c[0].prev_hash, GENESIS_HASH);
    assert_eq!(c[1].prev_hash, c[0].hash);
    assert_eq!(c[2].seq, 3);
    for r in &c {
        assert_eq!(r.hash, r.compute_hash().expect("hash"));
        assert_eq!(r.hash.len(), 64);
    }
}

#[track_caller]
fn check_message(position: u64, seq: u64, problem: BreakKind, expected: &str) {
    assert_eq!(Break { position, seq, problem }.to_string(), expected);
}

#[test]
fn break_messages() {
    check_message(3, 3, BreakKind::HashMismatch, "record 3 (seq 3) was edited: its hash does not match its content");
    check_message(
        2,
        3,
        BreakKind::SeqGap { expected: 2, found: 3 },
        "record 2 has seq 3 where seq 2 was expected: records were deleted, inserted or reordered",
    );
    check_message(
        4,
        4,
        BreakKind::PrevHashMismatch,
        "record 4 (seq 4) does not follow record 3: its prev_hash is not that record's hash, so a record was deleted, inserted or reordered, or the record before it was edited and its hash recomputed",
    );
    check_message(
        1,
        1,
        BreakKind::PrevHashMismatch,
        "record 1 (seq 1) does not start the chain: its prev_hash is not the genesis hash (64 zeros), so records before it were removed or it was edited",
    );
    check_message(
        2,
        2,
        BreakKind::StoredColumnMismatch { column: "hash".to_owned() },
        "record 2 (seq 2) was edited: the store's `hash` column does not match the record's content",
    );
    check_message(
        5,
        5,
        BreakKind::Unreadable { reason: "its JSON is not valid".to_owned() },
        "record 5 (seq 5) was edited or corrupted: its JSON is not valid",
    );
}

#[test]
fn report_messages() {
    let c = chain(2);
    let head = c[1].hash.clone();
    assert_eq!(
        verify_chain(c.clone()).to_string(),
        format!("audit chain intact: 2 records, head {head}; checkpoint: not configured")
    );
    let mut edited = c;
    edited[0].body.transition_mut().expect("transition").actor = "local:mallory".to_owned();
    assert_eq!(
        verify_chain(edited).to_string(),
        "audit chain broken: record 1 (seq 1) was edited: its hash does not match its content; records from this one on cannot be trusted: compare them with an export or a backup; checkpoint: not configured"
    );
}

#[test]
fn verifier_reports_problems_found_by_the_caller() {
    let c = chain(3);
    let mut v = ChainVerifier::new();
    v.flag(BreakKind::HashMismatch); // nothing pushed yet: ignored
    v.push(&c[0]);
    v.push(&c[1]);
    v.flag(BreakKind::StoredColumnMismatch { column: "at".to_owned() });
    v.push_unreadable(3, c[2].hash.clone(), "garbled".to_owned());
    let report = v.finish();
    assert_eq!(report.records, 3);
    assert_eq!(report.head, Some(c[2].hash.clone()));
    assert_eq!(
        report.first_break,
        Some(Break { position: 2, seq: 2, problem: BreakKind::StoredColumnMismatch { column: "at".to_owned() } })
    );
}

#[test]
fn chain_checks_win_over_caller_checks_at_the_same_record() {
    let mut c = chain(2);
    c[1].body.transition_mut().expect("transition").actor = "local:mallory".to_owned();
    let mut v = ChainVerifier::new();
    v.push(&c[0]);
    v.push(&c[1]);
    v.flag(BreakKind::StoredColumnMismatch { column: "hash".to_owned() });
    assert_eq!(v.first_break().map(|b| b.problem.clone()), Some(BreakKind::HashMismatch));
}

#[test]
fn report_serialises_with_a_kind_tag() {
    let report = ChainReport {
        records: 3,
        head: Some("ab".repeat(32)),
        first_break: Some(Break { position: 2, seq: 3, problem: BreakKind::SeqGap { expected: 2, found: 3 } }),
        checkpoint: CheckpointVerdict::Mismatch {
            checkpoint_count: 4,
            checkpoint_head: "cd".repeat(32),
            actual_count: 3,
            actual_head: Some("ab".repeat(32)),
        },
    };
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["first_break"]["problem"], serde_json::json!({"kind": "seq_gap", "expected": 2, "found": 3}));
    assert_eq!(
        json["checkpoint"],
        serde_json::json!({
            "status": "mismatch",
            "checkpoint_count": 4,
            "checkpoint_head": "cd".repeat(32),
            "actual_count": 3,
            "actual_head": "ab".repeat(32),
        })
    );
    assert_eq!(
        serde_json::to_value(CheckpointVerdict::BadMac).expect("json"),
        serde_json::json!({"status": "bad_mac"})
    );
}

proptest! {
    /// Whatever the chain's length and wherever a record is edited or removed, the first break
    /// is reported at that record.
    #[test]
    fn any_edit_or_removal_is_found_where_it_happened(len in 2usize..24, at in 0usize..24, remove in any::<bool>()) {
        // Removing the last record is a truncation, which only a checkpoint reveals.
        let at = if remove { at % (len - 1) } else { at % len };
        let mut records = chain(len as i64);
        if remove {
            records.remove(at);
        } else {
            records[at].body.transition_mut().expect("transition").comment = Some("edited".to_owned());
        }
        let report = verify_chain(records);
        let first = report.first_break.expect("tampering is detected unless it is a truncation");
        prop_assert_eq!(first.position, at as u64 + 1);
        prop_assert_eq!(first.problem, if remove {
            BreakKind::SeqGap { expected: at as u64 + 1, found: at as u64 + 2 }
        } else {
            BreakKind::HashMismatch
        });
    }
}
