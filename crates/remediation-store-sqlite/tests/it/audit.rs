//! The audit table is append-only, and tampering with the file is found by `verify_audit`:
//! edited, deleted and reordered records by the chain, a cut-off tail, a rewritten chain and
//! a forged or deleted checkpoint by the keyed checkpoint.

use remediation_audit::AuditRecordExt as _;
use std::path::Path;

use remediation_audit::{AuditKey, AuditRecord, BreakKind, Checkpoint, CheckpointVerdict};
use remediation_core::store::prelude::*;
use remediation_core::{State, StoreError};
use remediation_store_sqlite::{SqliteStore, StoreSqliteError};

use crate::support::{change, count, create, key, raw, t, temp_keyed_store, temp_store};

/// Five records of two actions on `store`.
async fn write_five(store: &SqliteStore) {
    create(store, 1, State::PendingApproval, t(0)).await;
    create(store, 2, State::PendingApproval, t(1)).await;
    store.apply(&change(1, State::PendingApproval, State::Approved, "approve", t(2))).await.expect("approve");
    store.apply(&change(2, State::PendingApproval, State::Rejected, "reject", t(3))).await.expect("reject");
    store.apply(&change(1, State::Approved, State::Cancelled, "cancel", t(4))).await.expect("cancel");
}

/// A store file, opened with the test key, with an audit chain of five records.
async fn five_records() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let (dir, path, store) = temp_keyed_store();
    write_five(&store).await;
    assert_eq!(count(&path, "audit"), 5);
    (dir, path, store)
}

/// The records as stored.
fn stored(path: &Path) -> Vec<AuditRecord> {
    let conn = raw(path);
    let mut stmt = conn.prepare("SELECT record_json FROM audit ORDER BY seq").expect("prepare");
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("query");
    rows.map(|json| AuditRecord::from_json(&json.expect("row")).expect("record")).collect()
}

/// The stored checkpoint row.
fn stored_checkpoint(path: &Path) -> Option<Checkpoint> {
    raw(path)
        .query_row("SELECT count, head, mac FROM audit_checkpoints", [], |r| {
            Ok(Checkpoint {
                count: u64::try_from(r.get::<_, i64>(0)?).expect("count"),
                head: r.get(1)?,
                mac: r.get(2)?,
            })
        })
        .ok()
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
        conn.execute(
            "INSERT INTO audit SELECT tenant, 7, action_id, at, record_json, hash, hash FROM audit WHERE seq = 5",
            [],
        ),
        "audit records must extend the chain",
    );
    assert_refused(
        conn.execute(
            "INSERT INTO audit SELECT tenant, 6, action_id, at, record_json, prev_hash, hash FROM audit WHERE seq = 5",
            [],
        ),
        "audit records must extend the chain",
    );
    assert_eq!(count(&path, "audit"), 5);
    // Another tenant's chain does not extend this one: it starts at 1 on its own.
    assert_refused(
        conn.execute(
            "INSERT INTO audit SELECT 'acme', 6, action_id, at, record_json, hash, hash FROM audit WHERE seq = 5",
            [],
        ),
        "audit records must extend the chain",
    );
    // The checkpoint table holds one row per tenant.
    assert_refused(
        conn.execute("INSERT INTO audit_checkpoints (tenant, count, head, mac) VALUES ('default', 1, 'x', 'y')", []),
        "UNIQUE constraint failed",
    );
}

/// Simulates an attacker with write access to the file: drops the triggers, runs `sql`, and
/// checks the first break `verify_audit` reports as `(position, seq, problem)`, and the
/// checkpoint verdict.
#[track_caller]
fn check(
    path: &Path,
    store: &SqliteStore,
    sql: &str,
    expected: Option<(u64, u64, BreakKind)>,
    checkpoint: CheckpointVerdict,
) {
    let conn = raw(path);
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;
         DROP TRIGGER IF EXISTS audit_extends_chain; {sql}"
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
    assert_eq!(report.checkpoint, checkpoint, "{report}");
    assert_eq!(report.is_intact(), expected.is_none() && checkpoint == CheckpointVerdict::Matches, "{report}");
}

/// Runs [`check`] on a fresh five-record store opened with the key.
#[track_caller]
fn check_fresh(sql: &str, expected: Option<(u64, u64, BreakKind)>, checkpoint: CheckpointVerdict) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (_dir, path, store) = rt.block_on(five_records());
    check(&path, &store, sql, expected, checkpoint);
}

fn unreadable() -> BreakKind {
    BreakKind::Unreadable { reason: String::new() }
}

/// A state change the store accepts after [`write_five`] (the store checks the current state,
/// not the lifecycle): one more audit record.
fn note() -> remediation_core::StateChange {
    change(2, State::Rejected, State::Rejected, "note", t(9))
}

/// Asserts that appending to `store` is refused with `reason` and writes nothing.
async fn assert_append_refused(path: &Path, store: &SqliteStore, reason: &str) {
    let audit = count(path, "audit");
    let before = stored_checkpoint(path);
    let err = store.apply(&note()).await.expect_err("append refused");
    let chain = std::iter::successors(std::error::Error::source(&err), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains(reason), "{err}: {chain}");
    assert_eq!(count(path, "audit"), audit, "nothing appended");
    assert_eq!(stored_checkpoint(path), before, "the checkpoint is not resealed over the tampered chain");
}

#[tokio::test]
async fn intact_keyed_store_verifies_and_keeps_its_checkpoint() {
    let (_dir, path, store) = five_records().await;
    let records = stored(&path);
    let checkpoint = stored_checkpoint(&path).expect("checkpoint written");
    assert_eq!((checkpoint.count, checkpoint.head.as_str()), (5, records[4].hash.as_str()));
    assert_eq!(checkpoint, key().seal(5, &records[4].hash), "mac = HMAC(key, context, count, head)");
    let report = store.verify_audit().expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checkpoint, CheckpointVerdict::Matches);
    assert!(report.to_string().ends_with("; checkpoint: matches"), "{report}");
    // Reopening with the key changes nothing.
    drop(store);
    let store = SqliteStore::open_with(&path, Some(key())).expect("reopen");
    assert!(store.verify_audit().expect("verify").is_intact());
    store.apply(&note()).await.expect("append");
    assert_eq!(stored_checkpoint(&path).map(|c| c.count), Some(6));
    assert!(store.verify_audit().expect("verify").is_intact());
}

#[tokio::test]
async fn a_store_without_a_key_keeps_no_checkpoint() {
    let (_dir, path, store) = temp_store();
    write_five(&store).await;
    assert_eq!(count(&path, "audit_checkpoints"), 0);
    let report = store.verify_audit().expect("verify");
    assert_eq!(report.checkpoint, CheckpointVerdict::NotConfigured);
    assert!(report.is_intact(), "{report}");
    assert!(report.to_string().ends_with("; checkpoint: not configured"), "{report}");
}

#[test]
fn edited_record() {
    check_fresh(
        "UPDATE audit SET record_json = json_set(record_json, '$.actor', 'local:mallory') WHERE seq = 3",
        Some((3, 3, BreakKind::HashMismatch)),
        CheckpointVerdict::Matches,
    );
    check_fresh(
        "UPDATE audit SET record_json = replace(record_json, '\"event\":\"reject\"', '\"event\":\"approve\"') WHERE seq = 4",
        Some((4, 4, BreakKind::HashMismatch)),
        CheckpointVerdict::Matches,
    );
}

#[test]
fn edited_last_record() {
    // The last record is the one the checkpoint names: edited, its hash no longer matches.
    check_fresh(
        "UPDATE audit SET record_json = json_set(record_json, '$.comment', 'nothing to see') WHERE seq = 5",
        Some((5, 5, BreakKind::HashMismatch)),
        CheckpointVerdict::Matches,
    );
}

#[test]
fn deleted_record() {
    check_fresh(
        "DELETE FROM audit WHERE seq = 3",
        Some((3, 4, BreakKind::SeqGap { expected: 3, found: 4 })),
        CheckpointVerdict::Matches,
    );
    check_fresh(
        "DELETE FROM audit WHERE seq = 1",
        Some((1, 2, BreakKind::SeqGap { expected: 1, found: 2 })),
        CheckpointVerdict::Matches,
    );
}

#[test]
fn reordered_records() {
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
        CheckpointVerdict::Matches,
    );
    // Only the JSON moves.
    check_fresh(
        "CREATE TEMP TABLE moved AS SELECT * FROM audit WHERE seq IN (3, 4);
         UPDATE audit SET record_json = (SELECT record_json FROM moved WHERE moved.seq = 7 - audit.seq)
         WHERE seq IN (3, 4);",
        Some((3, 4, BreakKind::SeqGap { expected: 3, found: 4 })),
        CheckpointVerdict::Matches,
    );
}

#[test]
fn edited_columns() {
    check_fresh(
        &format!("UPDATE audit SET hash = '{}' WHERE seq = 2", "0".repeat(64)),
        Some((2, 2, BreakKind::StoredColumnMismatch { column: "hash".to_owned() })),
        CheckpointVerdict::Matches,
    );
    check_fresh(
        "UPDATE audit SET at = at + 1 WHERE seq = 5",
        Some((5, 5, BreakKind::StoredColumnMismatch { column: "at".to_owned() })),
        CheckpointVerdict::Matches,
    );
    check_fresh(
        "UPDATE audit SET action_id = 'x' WHERE seq = 1",
        Some((1, 1, BreakKind::StoredColumnMismatch { column: "action_id".to_owned() })),
        CheckpointVerdict::Matches,
    );
}

#[test]
fn unreadable_rows() {
    check_fresh(
        "UPDATE audit SET record_json = '{' WHERE seq = 4",
        Some((4, 4, unreadable())),
        CheckpointVerdict::Matches,
    );
    check_fresh(
        "UPDATE audit SET record_json = json_set(record_json, '$.extra', 1) WHERE seq = 2",
        Some((2, 2, unreadable())),
        CheckpointVerdict::Matches,
    );
}

#[tokio::test]
async fn edited_and_rehashed_record_is_caught_by_the_next_link() {
    let (_dir, path, store) = five_records().await;
    let mut record = stored(&path).remove(2);
    record.body.transition_mut().expect("transition").actor = "local:mallory".to_owned();
    record.hash = record.compute_hash().expect("hash");
    let sql = format!(
        "UPDATE audit SET record_json = '{}', hash = '{}' WHERE seq = 3",
        record.to_canonical_json().expect("json"),
        record.hash
    );
    check(&path, &store, &sql, Some((4, 4, BreakKind::PrevHashMismatch)), CheckpointVerdict::Matches);
}

#[tokio::test]
async fn cut_off_tail() {
    let (_dir, path, store) = five_records().await;
    let records = stored(&path);
    // The remaining chain is perfectly linked: only the checkpoint knows it was longer.
    check(
        &path,
        &store,
        "DELETE FROM audit WHERE seq > 3",
        None,
        CheckpointVerdict::Mismatch {
            checkpoint_count: 5,
            checkpoint_head: records[4].hash.clone(),
            actual_count: 3,
            actual_head: Some(records[2].hash.clone()),
        },
    );
    let report = store.verify_audit().expect("verify");
    assert!(report.to_string().contains("records were cut off the end of the chain"), "{report}");
    // The next state change does not seal a checkpoint over the shortened chain.
    assert_append_refused(&path, &store, "the audit chain does not match its checkpoint").await;
    // Nor does a process opening the file afresh.
    drop(store);
    let store = SqliteStore::open_with(&path, Some(key())).expect("reopen");
    assert!(!store.verify_audit().expect("verify").is_intact());
    assert_append_refused(&path, &store, "records were cut off the end of the chain").await;
}

#[tokio::test]
async fn every_record_deleted() {
    let (_dir, path, store) = five_records().await;
    let head = stored(&path)[4].hash.clone();
    check(
        &path,
        &store,
        "DELETE FROM audit",
        None,
        CheckpointVerdict::Mismatch { checkpoint_count: 5, checkpoint_head: head, actual_count: 0, actual_head: None },
    );
}

#[tokio::test]
async fn complete_rewrite_with_recomputed_hashes() {
    let (_dir, path, store) = five_records().await;
    let original = stored(&path);
    // Re-seal every record, one of them with changed content: every link and hash is valid.
    let mut rewritten: Vec<AuditRecord> = Vec::new();
    for record in &original {
        let mut body = record.body.clone();
        if record.seq == 3 {
            body.transition_mut().expect("transition").actor = "local:mallory".to_owned();
        }
        let sealed = AuditRecord::seal(rewritten.last(), body).expect("seal");
        rewritten.push(sealed);
    }
    let conn = raw(&path);
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
    check(
        &path,
        &store,
        "",
        None,
        CheckpointVerdict::Mismatch {
            checkpoint_count: 5,
            checkpoint_head: original[4].hash.clone(),
            actual_count: 5,
            actual_head: Some(rewritten[4].hash.clone()),
        },
    );
    assert!(store.verify_audit().expect("verify").to_string().contains("the chain was rewritten"));
    assert_append_refused(&path, &store, "the chain was rewritten").await;
}

#[tokio::test]
async fn forged_checkpoint_row() {
    let (_dir, path, store) = five_records().await;
    let records = stored(&path);
    // The tail is cut off and the checkpoint rewritten to match, without the key: with a
    // guessed MAC, and sealed with another key.
    let forged = AuditKey::generate().seal(3, &records[2].hash);
    for mac in ["0".repeat(64), forged.mac.clone()] {
        let sql = format!(
            "DELETE FROM audit WHERE seq > 3; UPDATE audit_checkpoints SET count = 3, head = '{}', mac = '{mac}'",
            records[2].hash
        );
        check(&path, &store, &sql, None, CheckpointVerdict::BadMac);
    }
    assert!(store.verify_audit().expect("verify").to_string().contains("forged"));
    assert_append_refused(&path, &store, "checkpoint: bad MAC").await;
}

#[tokio::test]
async fn deleted_checkpoint_row() {
    let (_dir, path, store) = five_records().await;
    check(&path, &store, "DELETE FROM audit_checkpoints", None, CheckpointVerdict::Missing);
    assert_append_refused(&path, &store, "checkpoint: missing").await;
    // Opening with the key never re-creates it by itself.
    drop(store);
    let store = SqliteStore::open_with(&path, Some(key())).expect("reopen");
    assert_eq!(store.verify_audit().expect("verify").checkpoint, CheckpointVerdict::Missing);
    assert_eq!(count(&path, "audit_checkpoints"), 0);
}

#[tokio::test]
async fn another_key_reports_a_bad_mac() {
    let (_dir, path, store) = five_records().await;
    drop(store);
    let store = SqliteStore::open_with(&path, Some(AuditKey::generate())).expect("open");
    assert_eq!(store.verify_audit().expect("verify").checkpoint, CheckpointVerdict::BadMac);
    assert_append_refused(&path, &store, "checkpoint: bad MAC").await;
}

#[tokio::test]
async fn a_handle_without_the_key_cannot_extend_a_keyed_chain() {
    let (_dir, path, store) = five_records().await;
    drop(store);
    let keyless = SqliteStore::open(&path).expect("open");
    assert_eq!(keyless.verify_audit().expect("verify").checkpoint, CheckpointVerdict::NotConfigured);
    let err = keyless.apply(&note()).await.expect_err("refused");
    let source = std::error::Error::source(&err).expect("source");
    assert!(source.downcast_ref::<StoreSqliteError>().is_some_and(|e| matches!(e, StoreSqliteError::KeyRequired)));
    assert!(source.to_string().contains("audit.hmac_key_file"), "{source}");
    assert_eq!(count(&path, "audit"), 5);
    let keyed = SqliteStore::open_with(&path, Some(key())).expect("open");
    assert!(keyed.verify_audit().expect("verify").is_intact());
}

#[tokio::test]
async fn adoption_seals_a_verified_chain_once() {
    let (_dir, path, store) = temp_store();
    write_five(&store).await;
    drop(store);
    let store = SqliteStore::open_with(&path, Some(key())).expect("open");
    // A chain written without a key is not adopted by opening alone.
    assert_eq!(store.verify_audit().expect("verify").checkpoint, CheckpointVerdict::Missing);
    assert_append_refused(&path, &store, "checkpoint: missing").await;
    let report = store.adopt_audit_chain().expect("adopt");
    assert!(report.is_intact(), "{report}");
    assert_eq!(stored_checkpoint(&path), Some(key().seal(5, &stored(&path)[4].hash)));
    // Adopting again writes nothing; appends now keep the checkpoint.
    assert_eq!(store.adopt_audit_chain().expect("adopt again"), report);
    create(&store, 3, State::PendingApproval, t(10)).await;
    assert_eq!(stored_checkpoint(&path).map(|c| c.count), Some(6));
    assert!(store.verify_audit().expect("verify").is_intact());
}

#[track_caller]
fn assert_adoption_refused(result: Result<remediation_audit::ChainReport, StoreError>, reason: &str) {
    let err = result.expect_err("adoption refused");
    let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(source.contains(reason), "{err}: {source}");
}

#[tokio::test]
async fn adoption_is_refused_for_a_broken_chain_an_existing_checkpoint_or_no_key() {
    // A broken chain.
    let (_dir, path, store) = temp_store();
    write_five(&store).await;
    drop(store);
    raw(&path).execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2").expect("tamper");
    let store = SqliteStore::open_with(&path, Some(key())).expect("open");
    assert_adoption_refused(store.adopt_audit_chain(), "the chain does not verify");
    assert_eq!(count(&path, "audit_checkpoints"), 0);

    // A checkpoint that does not match (a cut-off tail) is never replaced.
    let (_dir, path, store) = five_records().await;
    raw(&path).execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 5").expect("tamper");
    assert_adoption_refused(store.adopt_audit_chain(), "adoption never replaces one");
    assert_eq!(stored_checkpoint(&path).map(|c| c.count), Some(5));

    // No key.
    let (_dir, _path, store) = temp_store();
    assert_adoption_refused(store.adopt_audit_chain(), "without an audit key");
}

#[tokio::test]
async fn unreadable_rows_fail_audit_records_but_not_verify() {
    let (_dir, path, store) = five_records().await;
    check(
        &path,
        &store,
        "UPDATE audit SET record_json = 'garbage' WHERE seq = 2",
        Some((2, 2, unreadable())),
        CheckpointVerdict::Matches,
    );
    let err = store.audit_records(None).expect_err("unreadable");
    assert_eq!(
        err.to_string(),
        "store failure: audit record 2 cannot be read: it was edited or corrupted; run `remediate audit verify`"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_debug_or_errors() {
    let (_dir, path, store) = five_records().await;
    let debug = format!("{store:?}");
    assert!(debug.contains("AuditKey(<redacted>)"), "{debug}");
    assert!(!debug.contains(crate::support::KEY_HEX), "{debug}");
    raw(&path).execute_batch("DELETE FROM audit_checkpoints").expect("tamper");
    let d = crate::support::detail(9, State::PendingApproval, t(9));
    let r = crate::support::record(9, None, State::PendingApproval, "suggest", t(9));
    let err = store.create_action(&d, &r).await.expect_err("refused");
    let text = format!("{err:?} {err}");
    assert!(!text.contains(crate::support::KEY_HEX), "{text}");
}
