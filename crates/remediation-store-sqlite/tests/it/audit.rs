//! The audit table is append-only, and tampering with the file is found by `verify_audit`.

use std::path::Path;

use remediation_audit::{AuditRecord, BreakKind};
use remediation_core::{State, Store};
use remediation_store_sqlite::SqliteStore;

use crate::support::{change, count, create, raw, t, temp_store};

/// A store file with an audit chain of five records.
async fn five_records() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let (dir, path, store) = temp_store();
    create(&store, 1, State::PendingApproval, t(0)).await;
    create(&store, 2, State::PendingApproval, t(1)).await;
    store.apply(&change(1, State::PendingApproval, State::Approved, "approve", t(2))).await.expect("approve");
    store.apply(&change(2, State::PendingApproval, State::Rejected, "reject", t(3))).await.expect("reject");
    store.apply(&change(1, State::Approved, State::Cancelled, "cancel", t(4))).await.expect("cancel");
    assert_eq!(count(&path, "audit"), 5);
    (dir, path, store)
}

#[track_caller]
fn assert_refused(result: rusqlite::Result<usize>, message: &str) {
    let err = result.expect_err("refused by a trigger");
    assert!(err.to_string().contains(message), "{err}");
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_or_deleted() {
    let (_dir, path, _store) = five_records().await;
    let conn = raw(&path);
    assert_refused(conn.execute("UPDATE audit SET hash = 'x' WHERE seq = 2", []), "audit records are append-only");
    assert_refused(
        conn.execute("UPDATE audit SET record_json = replace(record_json, 'approve', 'reject')", []),
        "audit records are append-only",
    );
    assert_refused(conn.execute("DELETE FROM audit WHERE seq = 5", []), "audit records are append-only");
    assert_refused(conn.execute("DELETE FROM audit", []), "audit records are append-only");
    // Appending anything that does not extend the chain is refused too.
    assert_refused(
        conn.execute("INSERT INTO audit SELECT 7, action_id, at, record_json, hash, hash FROM audit WHERE seq = 5", []),
        "audit records must extend the chain",
    );
    assert_refused(
        conn.execute(
            "INSERT INTO audit SELECT 6, action_id, at, record_json, prev_hash, hash FROM audit WHERE seq = 5",
            [],
        ),
        "audit records must extend the chain",
    );
    assert_eq!(count(&path, "audit"), 5);
}

/// Simulates an attacker with write access to the file: drops the triggers, runs `sql`, and
/// checks the first break `verify_audit` reports as `(position, seq, problem)`.
#[track_caller]
fn check(path: &Path, store: &SqliteStore, sql: &str, expected: Option<(u64, u64, BreakKind)>) {
    let conn = raw(path);
    conn.execute_batch(&format!(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; DROP TRIGGER audit_extends_chain; {sql}"
    ))
    .expect("tamper");
    let report = store.verify_audit().expect("verify");
    let found = report.first_break.clone().map(|b| {
        let problem = match b.problem {
            // The reason quotes a parser message; the kind is what matters here.
            BreakKind::Unreadable { .. } => BreakKind::Unreadable { reason: String::new() },
            other => other,
        };
        (b.position, b.seq, problem)
    });
    assert_eq!(found, expected, "{report}");
}

/// Runs [`check`] on a fresh five-record store.
#[track_caller]
fn check_fresh(sql: &str, expected: Option<(u64, u64, BreakKind)>) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (_dir, path, store) = rt.block_on(five_records());
    check(&path, &store, sql, expected);
}

fn unreadable() -> BreakKind {
    BreakKind::Unreadable { reason: String::new() }
}

#[test]
fn intact_store_verifies() {
    check_fresh("", None);
}

#[test]
fn edited_record_json() {
    check_fresh(
        "UPDATE audit SET record_json = json_set(record_json, '$.actor', 'local:mallory') WHERE seq = 3",
        Some((3, 3, BreakKind::HashMismatch)),
    );
    check_fresh(
        "UPDATE audit SET record_json = replace(record_json, '\"event\":\"reject\"', '\"event\":\"approve\"') WHERE seq = 4",
        Some((4, 4, BreakKind::HashMismatch)),
    );
}

#[test]
fn deleted_row() {
    check_fresh("DELETE FROM audit WHERE seq = 3", Some((3, 4, BreakKind::SeqGap { expected: 3, found: 4 })));
    check_fresh("DELETE FROM audit WHERE seq = 1", Some((1, 2, BreakKind::SeqGap { expected: 1, found: 2 })));
}

#[test]
fn swapped_rows() {
    // Every column but the key moves, so the rows look consistent on their own.
    check_fresh(
        "CREATE TEMP TABLE moved AS SELECT * FROM audit WHERE seq IN (2, 3);
         UPDATE audit SET
            action_id = (SELECT action_id FROM moved WHERE moved.seq = 5 - audit.seq),
            at = (SELECT at FROM moved WHERE moved.seq = 5 - audit.seq),
            record_json = (SELECT record_json FROM moved WHERE moved.seq = 5 - audit.seq),
            prev_hash = (SELECT prev_hash FROM moved WHERE moved.seq = 5 - audit.seq),
            hash = (SELECT hash FROM moved WHERE moved.seq = 5 - audit.seq)
         WHERE seq IN (2, 3);",
        Some((2, 3, BreakKind::SeqGap { expected: 2, found: 3 })),
    );
    // Only the JSON moves.
    check_fresh(
        "CREATE TEMP TABLE moved AS SELECT * FROM audit WHERE seq IN (3, 4);
         UPDATE audit SET record_json = (SELECT record_json FROM moved WHERE moved.seq = 7 - audit.seq)
         WHERE seq IN (3, 4);",
        Some((3, 4, BreakKind::SeqGap { expected: 3, found: 4 })),
    );
}

#[test]
fn edited_columns() {
    check_fresh(
        &format!("UPDATE audit SET hash = '{}' WHERE seq = 2", "0".repeat(64)),
        Some((2, 2, BreakKind::StoredColumnMismatch { column: "hash".to_owned() })),
    );
    check_fresh(
        "UPDATE audit SET at = at + 1 WHERE seq = 5",
        Some((5, 5, BreakKind::StoredColumnMismatch { column: "at".to_owned() })),
    );
    check_fresh(
        "UPDATE audit SET action_id = 'x' WHERE seq = 1",
        Some((1, 1, BreakKind::StoredColumnMismatch { column: "action_id".to_owned() })),
    );
}

#[test]
fn unreadable_rows() {
    check_fresh("UPDATE audit SET record_json = '{' WHERE seq = 4", Some((4, 4, unreadable())));
    check_fresh(
        "UPDATE audit SET record_json = json_set(record_json, '$.extra', 1) WHERE seq = 2",
        Some((2, 2, unreadable())),
    );
}

#[tokio::test]
async fn edited_and_rehashed_record_is_caught_by_the_next_link() {
    let (_dir, path, store) = five_records().await;
    let conn = raw(&path);
    let json: String = conn.query_row("SELECT record_json FROM audit WHERE seq = 3", [], |r| r.get(0)).expect("row");
    let mut record = AuditRecord::from_json(&json).expect("record");
    record.body.actor = "local:mallory".to_owned();
    record.hash = record.compute_hash().expect("hash");
    let sql = format!(
        "UPDATE audit SET record_json = '{}', hash = '{}' WHERE seq = 3",
        record.to_canonical_json().expect("json"),
        record.hash
    );
    check(&path, &store, &sql, Some((4, 4, BreakKind::PrevHashMismatch)));
}

#[tokio::test]
async fn unreadable_rows_fail_audit_records_but_not_verify() {
    let (_dir, path, store) = five_records().await;
    check(&path, &store, "UPDATE audit SET record_json = 'garbage' WHERE seq = 2", Some((2, 2, unreadable())));
    let err = store.audit_records(None).expect_err("unreadable");
    assert_eq!(
        err.to_string(),
        "store failure: audit record 2 cannot be read: it was edited or corrupted; run `remediate audit verify`"
    );
}
