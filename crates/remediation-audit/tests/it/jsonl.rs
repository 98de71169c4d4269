//! JSONL export: round trip, strict parsing, and errors that name the line.

use remediation_audit::AuditRecordExt as _;
use std::error::Error as _;

use remediation_audit::{AuditError, AuditRecord, read_jsonl, verify_chain, write_jsonl};

use crate::support::chain;

fn export(records: &[AuditRecord]) -> String {
    let mut out = Vec::new();
    let written = write_jsonl(records, &mut out).expect("write");
    assert_eq!(written, records.len() as u64);
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn round_trip() {
    let records = chain(4);
    let text = export(&records);
    assert!(text.ends_with('\n'));
    for (line, record) in text.lines().zip(&records) {
        assert_eq!(line, record.to_canonical_json().expect("canonical"));
    }
    let back = read_jsonl(text.as_bytes()).expect("read");
    assert_eq!(back, records);
    assert!(verify_chain(back).is_intact());
}

#[test]
fn owned_records_can_be_written_too() {
    let records = chain(2);
    let mut out = Vec::new();
    assert_eq!(write_jsonl(records.clone(), &mut out).expect("write"), 2);
    assert_eq!(String::from_utf8(out).expect("utf-8"), export(&records));
}

#[test]
fn blank_lines_whitespace_and_key_order_are_free() {
    let records = chain(2);
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            // Pretty-printed (spaces after colons, indentation) but on one line, keys sorted
            // differently from the canonical order.
            let value = serde_json::to_value(r).expect("json");
            serde_json::to_string_pretty(&value).expect("json").replace('\n', "")
        })
        .collect();
    let text = format!("\n{}\n   \n{}\n\n", lines[0], lines[1]);
    assert_eq!(read_jsonl(text.as_bytes()).expect("read"), records);
}

/// Replaces line `line` (1-based) of a three-record export and checks the error.
#[track_caller]
fn check_rejected(line: usize, edit: impl FnOnce(&mut serde_json::Value) -> Option<String>, expected: &str) {
    let records = chain(3);
    let mut lines: Vec<String> = export(&records).lines().map(str::to_owned).collect();
    let mut value: serde_json::Value = serde_json::from_str(&lines[line - 1]).expect("json");
    lines[line - 1] = edit(&mut value).unwrap_or_else(|| value.to_string());
    let text = lines.join("\n");
    let err = read_jsonl(text.as_bytes()).expect_err("rejected");
    assert!(matches!(err, AuditError::Line { line: l, .. } if l == line as u64), "{err:?}");
    assert_eq!(err.to_string(), format!("line {line} of the audit export is not a valid audit record"));
    let inner = err.source().expect("source").to_string();
    assert!(inner.contains(expected), "{inner:?} should contain {expected:?}");
}

#[test]
fn rejected_lines_are_named() {
    check_rejected(2, |_| Some("not json".to_owned()), "not a JSON audit record");
    check_rejected(3, |_| Some("[1, 2]".to_owned()), "not a JSON audit record");
    check_rejected(
        1,
        |v| {
            v.as_object_mut().expect("object").remove("to");
            None
        },
        "not a JSON audit record",
    );
    check_rejected(
        2,
        |v| {
            v["extra"] = serde_json::json!(1);
            None
        },
        "field `extra` is not part of an audit record",
    );
    check_rejected(
        3,
        |v| {
            v["at"] = serde_json::json!("2026-01-02T03:06:05+00:00");
            None
        },
        "field `at` is missing or not written the way remediate writes it",
    );
    check_rejected(
        1,
        |v| {
            v.as_object_mut().expect("object").remove("comment");
            None
        },
        "field `comment` is missing or not written the way remediate writes it",
    );
}

#[test]
fn from_json_is_the_inverse_of_to_canonical_json() {
    for record in chain(3) {
        assert_eq!(AuditRecord::from_json(&record.to_canonical_json().expect("json")).expect("parse"), record);
    }
}

/// `from_json` takes a record that writes back byte for byte without comparing it field by
/// field; that holds only while serde_json's value of a record is written in the canonical
/// form (sorted keys, as without serde_json's `preserve_order`). Every committed record does.
#[test]
fn a_stored_record_is_its_json_value_as_serde_json_writes_it() {
    let text = [include_str!("../vectors/chain.jsonl"), include_str!("../vectors/log/records.jsonl")].concat();
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record = remediation_core::AuditRecord::from_json(line).expect("valid");
        let value = serde_json::to_value(&record).expect("valid");
        assert_eq!(serde_json::to_string(&value).expect("valid"), record.to_canonical_json().expect("valid"));
        assert_eq!(record.to_canonical_json().expect("valid"), line, "the vectors are canonical");
        checked += 1;
    }
    assert!(checked >= 8, "{checked} records checked");
}

/// The same record with whitespace or another key order is read the slow way, to the same
/// record; with a field added it is refused.
#[test]
fn a_record_that_is_not_canonical_text_is_still_read_strictly() {
    let line = include_str!("../vectors/chain.jsonl").lines().next().expect("valid");
    let record = remediation_core::AuditRecord::from_json(line).expect("valid");
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(line).expect("valid")).expect("valid");
    assert_eq!(remediation_core::AuditRecord::from_json(&pretty).expect("valid"), record);
    let mut extra: serde_json::Value = serde_json::from_str(line).expect("valid");
    extra["zzz_extra"] = serde_json::json!("x");
    let err =
        remediation_core::AuditRecord::from_json(&serde_json::to_string(&extra).expect("valid")).expect_err("refused");
    assert!(err.to_string().contains("zzz_extra"), "{err}");
}
