//! Fuzzing canonicalisation and parsing: records sealed from arbitrary text round-trip through
//! canonical JSON and JSONL and verify; arbitrary or damaged exports never make the reader
//! panic, and a damaged export never verifies as anything but a prefix of the original.
//!
//! 256 cases per property by default; `PROPTEST_CASES=2000 cargo test -p remediation-audit fuzz`
//! runs a longer pass (CI does).

use proptest::prelude::*;
use remediation_audit::AuditRecordExt as _;
use remediation_audit::{AuditRecord, BreakKind, read_jsonl, verify_chain, write_jsonl};
use remediation_core::{ActionId, State, TransitionRecord};
use time::{OffsetDateTime, UtcOffset};

use crate::support::seal_all;

/// Text as hostile as it gets: arbitrary Unicode (control characters, escapes, lone
/// combining marks), plus a few hand-picked nasties and, rarely, a long string.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any::<String>(),
        2 => prop::sample::select(vec![
            "", "\"", "\\", "\\\"", "\n", "\r\n", "\t", "\u{0}", "\u{1b}[31mred\u{1b}[0m", "\u{7f}\u{85}\u{9b}",
            "\u{202e}evil\u{202c}", "\u{2028}\u{2029}", "\u{feff}", "e\u{301}\u{301}", "👩‍💻", "\u{10ffff}",
            "\u{fffd}", "</script>", "{\"hash\":\"0\"}",
        ])
        .prop_map(str::to_owned),
        1 => (any::<String>(), 1usize..400).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn state() -> impl Strategy<Value = State> {
    prop::sample::select(State::ALL.to_vec())
}

/// An instant between the years 1 and 9998 in any whole-minute offset (RFC 3339 has no
/// seconds in offsets), with any nanoseconds.
fn instant() -> impl Strategy<Value = OffsetDateTime> {
    (-62_000_000_000i64..253_000_000_000, 0u32..1_000_000_000, -1439i32..=1439).prop_map(|(secs, nanos, minutes)| {
        let utc = OffsetDateTime::from_unix_timestamp(secs).expect("in range");
        let utc = utc.replace_nanosecond(nanos).expect("valid nanoseconds");
        utc.to_offset(UtcOffset::from_whole_seconds(minutes * 60).expect("valid offset"))
    })
}

prop_compose! {
    fn body()(
        id in any::<u128>(),
        from in prop::option::of(state()),
        to in state(),
        (event, actor, initiated_by, connector) in (text(), text(), text(), text()),
        (decided_by, comment, control_id, finding_id) in (
            prop::option::of(text()), prop::option::of(text()), prop::option::of(text()), prop::option::of(text()),
        ),
        (before_hash, after_hash, plan_hash) in (
            prop::option::of(text()), prop::option::of(text()), prop::option::of(text()),
        ),
        request_ids in prop::collection::vec(text(), 0..4),
        at in instant(),
        rollback_expires_at in prop::option::of(instant()),
        credential in prop::option::of(text()),
    ) -> TransitionRecord {
        TransitionRecord {
            action_id: ActionId(uuid::Uuid::from_u128(id)),
            from,
            to,
            event,
            actor,
            credential,
            initiated_by,
            decided_by,
            at,
            comment,
            connector,
            control_id,
            finding_id,
            before_hash,
            after_hash,
            plan_hash,
            request_ids,
            rollback_expires_at,
            before_state: None,
            after_state: None,
            limit: None,
        }
    }
}

fn export(records: &[AuditRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    write_jsonl(records, &mut out).expect("write to memory");
    out
}

/// A byte-level change to an export.
#[derive(Debug, Clone)]
enum Damage {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Replace(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Insert(at, b)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Damage::Delete(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    if bytes.is_empty() {
        return;
    }
    match *damage {
        Damage::Replace(at, b) => {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        Damage::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
        Damage::Delete(at, n) => {
            let i = at % bytes.len();
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

proptest! {
    /// Sealing arbitrary text, then canonical JSON, then parsing gives the record back; the
    /// canonical form is one line; the JSONL export reads back equal; the chain verifies.
    #[test]
    fn fuzz_sealed_records_round_trip_and_verify(bodies in prop::collection::vec(body(), 1..6)) {
        let records = seal_all(bodies);
        for record in &records {
            let json = record.to_canonical_json().expect("canonical JSON");
            prop_assert!(!json.contains('\n') && !json.contains('\r'), "a record spans lines: {}", json);
            prop_assert_eq!(&AuditRecord::from_json(&json).expect("parse"), record);
            prop_assert_eq!(record.compute_hash().expect("hash"), record.hash.clone());
        }
        let bytes = export(&records);
        prop_assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), records.len());
        let back = read_jsonl(bytes.as_slice()).expect("read the export");
        prop_assert_eq!(&back, &records);
        let report = verify_chain(back);
        prop_assert!(report.is_intact(), "{}", report);
        prop_assert_eq!(report.records, records.len() as u64);
        prop_assert_eq!(report.head.as_ref(), records.last().map(|r| &r.hash));
    }

    /// Changing any record's comment to other text is found at that record.
    #[test]
    fn fuzz_edited_text_is_found(bodies in prop::collection::vec(body(), 1..6), at in any::<usize>(), new in text()) {
        let mut records = seal_all(bodies);
        let at = at % records.len();
        prop_assume!(records[at].body.transition_mut().expect("transition").comment.as_deref() != Some(new.as_str()));
        records[at].body.transition_mut().expect("transition").comment = Some(new);
        let first = verify_chain(records).first_break.expect("the edit is found");
        prop_assert_eq!(first.position, at as u64 + 1);
        prop_assert_eq!(first.problem, BreakKind::HashMismatch);
    }

    /// Arbitrary bytes: an error or records, never a panic, and verification of whatever was
    /// read does not panic either.
    #[test]
    fn fuzz_read_jsonl_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(records) = read_jsonl(bytes.as_slice()) {
            let _ = verify_chain(records).to_string();
        }
    }

    /// A damaged export is refused, or reads back as records that fail verification, or as
    /// an unchanged prefix of the original (a truncation, which only a checkpoint reveals).
    #[test]
    fn fuzz_damaged_export_never_verifies_as_something_else(
        bodies in prop::collection::vec(body(), 1..5),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let records = seal_all(bodies);
        let mut bytes = export(&records);
        for d in &damages {
            apply(&mut bytes, d);
        }
        if let Ok(back) = read_jsonl(bytes.as_slice()) {
            let report = verify_chain(back.clone());
            if report.is_intact() {
                prop_assert!(back.len() <= records.len());
                prop_assert_eq!(&back[..], &records[..back.len()]);
            }
        }
    }
}
