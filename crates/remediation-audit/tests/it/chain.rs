//! Chain verification: each way of tampering is reported at the first broken link.

use proptest::prelude::*;
use remediation_audit::{AuditRecord, Break, BreakKind, ChainReport, ChainVerifier, verify_chain};
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
        |c| c.get_mut(2).expect("record").body.actor = "local:mallory".to_owned(),
        Some((3, 3, BreakKind::HashMismatch)),
    );
    check(|c| c[0].body.comment = Some("nothing to see".to_owned()), Some((1, 1, BreakKind::HashMismatch)));
    check(|c| c[4].body.at += time::Duration::seconds(1), Some((5, 5, BreakKind::HashMismatch)));
    check(|c| c[1].body.request_ids.push("req-forged".to_owned()), Some((2, 2, BreakKind::HashMismatch)));
    check(|c| c[1].body.from = None, Some((2, 2, BreakKind::HashMismatch)));
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
fn truncation_alone_is_invisible_to_the_chain() {
    // Documented limit: only a checkpoint of head and count reveals this.
    check(|c| drop(c.pop()), None);
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
            c[1].body.actor = "local:mallory".to_owned();
            rehash(&mut c[1]);
        },
        Some((3, 3, BreakKind::PrevHashMismatch)),
    );
    check(
        |c| {
            c[0].body.comment = Some("rewritten".to_owned());
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

#[test]
fn full_rewrite_alone_is_invisible_to_the_chain() {
    // Documented limit: only a checkpoint of the head reveals this.
    check(
        |c| {
            let mut bodies: Vec<_> = c.iter().map(|r| r.body.clone()).collect();
            bodies[2].actor = "local:mallory".to_owned();
            *c = seal_all(bodies);
        },
        None,
    );
}

#[test]
fn empty_chain() {
    let report = verify_chain(Vec::new());
    assert_eq!(report, ChainReport { records: 0, head: None, first_break: None });
    assert_eq!(report.to_string(), "audit chain intact: no records");
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
    assert_eq!(verify_chain(c.clone()).to_string(), format!("audit chain intact: 2 records, head {head}"));
    let mut edited = c;
    edited[0].body.actor = "local:mallory".to_owned();
    assert_eq!(
        verify_chain(edited).to_string(),
        "audit chain broken: record 1 (seq 1) was edited: its hash does not match its content; records from this one on cannot be trusted: compare them with an export or a backup"
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
    c[1].body.actor = "local:mallory".to_owned();
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
    };
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["first_break"]["problem"], serde_json::json!({"kind": "seq_gap", "expected": 2, "found": 3}));
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
            records[at].body.comment = Some("edited".to_owned());
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
