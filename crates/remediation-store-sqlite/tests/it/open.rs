//! Opening: fresh files are configured and migrated; bad files get errors naming the path.

use remediation_store_sqlite::{SqliteStore, StoreSqliteError};

use crate::support::raw;

#[test]
fn a_fresh_file_is_in_wal_mode_at_the_current_schema_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("r.db");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.path(), path);
    let conn = raw(&path);
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("pragma");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!((mode.as_str(), version), ("wal", i64::from(remediation_store_sqlite::SCHEMA_VERSION)));
    drop(store);
    // Opening again migrates nothing and keeps the version.
    SqliteStore::open(&path).expect("reopen");
    let version: i64 = raw(&path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version, i64::from(remediation_store_sqlite::SCHEMA_VERSION));
}

#[tokio::test]
async fn a_version_1_store_is_migrated_and_keeps_its_chain() {
    let (_dir, path, store) = crate::support::temp_store();
    crate::support::create(&store, 1, remediation_core::State::PendingApproval, crate::support::t(0)).await;
    drop(store);
    // Back to how version 1 left the file.
    raw(&path)
        .execute_batch(
            &[crate::support::UNDO_TENANTS, "DROP TABLE campaign_entries; DROP TABLE campaigns; DROP INDEX actions_by_handle; ALTER TABLE actions DROP COLUMN handle; DROP TABLE delivery_parked; DROP TABLE delivery_marks; DROP TABLE ui_sessions; DROP TRIGGER audit_no_delete; CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END; DROP TABLE audit_archives; DROP TABLE audit_leaves; DROP TABLE audit_tree_heads; DROP TABLE audit_keys;
             DROP TRIGGER limit_slots_counted; DROP TRIGGER limit_slots_uncounted; DROP TABLE limit_cursors; DROP TABLE limit_totals;
             DROP INDEX limit_slots_by_action; ALTER TABLE actions DROP COLUMN not_before;
             DROP INDEX audit_by_action; DROP TABLE leases; ALTER TABLE actions DROP COLUMN lease_holder;
             ALTER TABLE actions DROP COLUMN lease_epoch; ALTER TABLE actions DROP COLUMN lease_expires_at;
             DROP TABLE audit_head; DROP TABLE audit_pending; DROP INDEX actions_by_due;
             ALTER TABLE actions DROP COLUMN due_at; ALTER TABLE audit DROP COLUMN tenant;
             DROP INDEX actions_by_state; CREATE INDEX actions_by_state ON actions (tenant, state, created_at);
             DROP TABLE pending_changes; DROP TABLE credentials; DROP TABLE principal_roles; DROP TABLE principals;
             DROP TABLE safety_state; DROP TABLE audit_checkpoint; PRAGMA user_version = 1"].concat(),
        )
        .expect("downgrade");
    let store = SqliteStore::open_with(&path, Some(crate::support::key())).expect("open");
    let version: i64 = raw(&path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version, i64::from(remediation_store_sqlite::SCHEMA_VERSION));
    let report = store.verify_audit().expect("verify");
    assert_eq!(report.first_break, None);
    // Its records predate checkpoints: reported until adopted.
    assert_eq!(report.checkpoint, remediation_audit::CheckpointVerdict::Missing);
    assert!(store.adopt_audit_chain().expect("adopt").is_intact());
}

#[tokio::test]
async fn a_version_7_store_keeps_each_transition_once_and_loses_none() {
    use remediation_core::State;
    use remediation_core::store::prelude::*;

    use crate::support::{change, count, create, id, record, t};

    let (_dir, path, store) = crate::support::temp_store();
    create(&store, 1, State::PendingApproval, t(10)).await;
    store.apply(&change(1, State::PendingApproval, State::Approved, "approve", t(20))).await.expect("approve");
    create(&store, 2, State::PendingApproval, t(30)).await;
    let expected = store.transitions(id(1)).await.expect("transitions");
    assert_eq!(count(&path, "transitions"), 0, "new transitions are kept only in the audit");
    drop(store);
    // Back to version 7, which wrote every transition twice: in `transitions` and in `audit`.
    // One more row, older than the rest, has no audit record.
    let orphan = record(1, None, State::Suggested, "imported", t(0));
    let orphan_json = serde_json::to_string(&orphan).expect("json");
    let conn = raw(&path);
    conn.execute_batch(
        &[crate::support::UNDO_TENANTS, "DROP TABLE campaign_entries; DROP TABLE campaigns; DROP INDEX actions_by_handle; ALTER TABLE actions DROP COLUMN handle; DROP TABLE delivery_parked; DROP TABLE delivery_marks; DROP TABLE ui_sessions; DROP TRIGGER audit_no_delete; CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END; DROP TABLE audit_archives; DROP TABLE audit_leaves; DROP TABLE audit_tree_heads; DROP TABLE audit_keys;
         DROP TRIGGER limit_slots_counted; DROP TRIGGER limit_slots_uncounted;
         DROP TABLE limit_cursors; DROP TABLE limit_totals;
         DROP INDEX limit_slots_by_action; ALTER TABLE actions DROP COLUMN not_before;
         DROP INDEX audit_by_action;
         INSERT INTO transitions (action_id, record_json)
             SELECT action_id, json_remove(record_json, '$.seq', '$.prev_hash', '$.hash') FROM audit ORDER BY seq;
         PRAGMA user_version = 7"].concat(),
    )
    .expect("downgrade");
    conn.execute("INSERT INTO transitions (action_id, record_json) VALUES (?1, ?2)", [id(1).to_string(), orphan_json])
        .expect("orphan");
    assert_eq!(count(&path, "transitions"), 4);
    drop(conn);

    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(count(&path, "transitions"), 1, "only the row without an audit record is left");
    let mut all = vec![orphan];
    all.extend(expected);
    assert_eq!(store.transitions(id(1)).await.expect("transitions"), all);
    assert_eq!(store.transitions(id(2)).await.expect("transitions").len(), 1);
    assert!(store.verify_audit().expect("verify").is_intact());
}

#[tokio::test]
async fn a_version_9_store_gets_the_leaf_hash_of_every_record_it_holds() {
    use remediation_audit::merkle::record_leaf_hash;
    use remediation_core::State;
    use remediation_core::store::prelude::*;

    use crate::support::{change, create, t};

    let (_dir, path, store) = crate::support::temp_store();
    create(&store, 1, State::PendingApproval, t(10)).await;
    store.apply(&change(1, State::PendingApproval, State::Approved, "approve", t(20))).await.expect("approve");
    create(&store, 2, State::PendingApproval, t(30)).await;
    drop(store);
    raw(&path)
        .execute_batch(
            &[crate::support::UNDO_TENANTS, "DROP TABLE campaign_entries; DROP TABLE campaigns; DROP INDEX actions_by_handle; ALTER TABLE actions DROP COLUMN handle; DROP TABLE delivery_parked; DROP TABLE delivery_marks; DROP TABLE ui_sessions; DROP TRIGGER audit_no_delete; CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END; DROP TABLE audit_archives; DROP TABLE audit_leaves; DROP TABLE audit_tree_heads; DROP TABLE audit_keys; DROP TRIGGER limit_slots_counted; DROP TRIGGER limit_slots_uncounted; DROP TABLE limit_cursors; DROP TABLE limit_totals; PRAGMA user_version = 9"].concat(),
        )
        .expect("downgrade");
    let store = SqliteStore::open(&path).expect("open");
    let records = store.audit_records(None).expect("records");
    assert_eq!(store.audit_size().await.expect("size"), 3);
    let leaves = store.leaf_hashes(0, 3).await.expect("leaves");
    let expected: Vec<[u8; 32]> = records.iter().map(|r| record_leaf_hash(r).expect("leaf").0).collect();
    assert_eq!(leaves, expected, "the migration computed the leaf hash of each stored record");
    // And the sequencer goes on from there.
    create(&store, 3, State::PendingApproval, t(40)).await;
    let records = store.audit_records(None).expect("records");
    assert_eq!(store.leaf_hashes(3, 4).await.expect("leaf"), vec![record_leaf_hash(&records[3]).expect("leaf").0]);
}

#[test]
fn the_log_tables_are_insert_only() {
    let (_dir, path, store) = crate::support::temp_store();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(crate::support::create(&store, 1, remediation_core::State::PendingApproval, crate::support::t(0)));
    drop(store);
    let conn = raw(&path);
    conn.execute_batch(
        "INSERT INTO audit_tree_heads (tenant, tree_size, root_hash, timestamp, key_id, signature)
             VALUES ('default', 1, 'r', '2026-01-01T00:00:00Z', 'k', 's');
         INSERT INTO audit_keys (tenant, key_id, algorithm, public_key, published_at) VALUES ('default', 'k', 'ed25519', 'p', 0);",
    )
    .expect("inserts are allowed");
    for statement in [
        "UPDATE audit_leaves SET hash = zeroblob(32)",
        "DELETE FROM audit_leaves",
        "INSERT INTO audit_leaves (tenant, leaf_index, hash) VALUES ('default', 5, zeroblob(32))",
        "UPDATE audit_tree_heads SET tree_size = 0",
        "DELETE FROM audit_tree_heads",
        "INSERT INTO audit_tree_heads (tenant, tree_size, root_hash, timestamp, key_id, signature)
             VALUES ('default', 0, 'r', '2026-01-01T00:00:00Z', 'k', 's')",
        "UPDATE audit_keys SET public_key = 'q'",
        "DELETE FROM audit_keys",
    ] {
        let e = conn.execute_batch(statement).expect_err(statement);
        let text = e.to_string();
        assert!(
            ["append-only", "never", "must extend the log"].iter().any(|w| text.contains(w)),
            "{statement}: {text}"
        );
    }
}

#[test]
fn only_records_a_registered_archive_holds_can_be_removed() {
    let (_dir, path, store) = crate::support::temp_store();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for n in 1..=3 {
        rt.block_on(crate::support::create(&store, n, remediation_core::State::PendingApproval, crate::support::t(0)));
    }
    drop(store);
    let conn = raw(&path);
    let refused = conn.execute_batch("DELETE FROM audit WHERE seq = 1").expect_err("no archive yet");
    assert!(refused.to_string().contains("only records in a registered archive"), "{refused}");
    conn.execute_batch(
        "INSERT INTO audit_archives (tenant, through_seq, last_hash, tree_size, root_hash, file_sha256, archived_at)
         VALUES ('default', 1, 'h', 3, 'r', 'f', 0)",
    )
    .expect("register");
    conn.execute_batch("DELETE FROM audit WHERE seq = 1").expect("an archived record may go");
    for statement in
        ["DELETE FROM audit WHERE seq = 2", "UPDATE audit_archives SET through_seq = 3", "DELETE FROM audit_archives"]
    {
        let e = conn.execute_batch(statement).expect_err(statement);
        assert!(
            e.to_string().contains("only records in a registered archive") || e.to_string().contains("never"),
            "{e}"
        );
    }
    assert_eq!(crate::support::count(&path, "audit"), 2);
    assert_eq!(crate::support::count(&path, "audit_leaves"), 3, "the leaves stay");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("r.db");
    drop(SqliteStore::open(&path).expect("open"));
    let (supported, newer) =
        (i64::from(remediation_store_sqlite::SCHEMA_VERSION), i64::from(remediation_store_sqlite::SCHEMA_VERSION) + 1);
    raw(&path).pragma_update(None, "user_version", newer).expect("pragma");
    let err = SqliteStore::open(&path).expect_err("refused");
    assert!(
        matches!(err, StoreSqliteError::SchemaTooNew { found, supported: s, .. } if found == newer && s == supported),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: database schema version {newer} is newer than this build supports ({supported}); upgrade remediate",
            path.display()
        )
    );
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).expect("write");
    let err = SqliteStore::open(&path).expect_err("refused");
    assert!(matches!(err, StoreSqliteError::NotADatabase { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a remediate database (the file is corrupt or is another kind of file); move it aside or choose another path",
            path.display()
        )
    );
}

#[test]
fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dir");
    let path = missing.join("r.db");
    let err = SqliteStore::open(&path).expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot open the store at {}: directory {} does not exist; create it or choose another path",
            path.display(),
            missing.display()
        )
    );
    assert!(!missing.exists(), "the directory is not created");
}

#[test]
fn in_memory_stores_are_private() {
    let a = SqliteStore::open_in_memory().expect("open");
    let b = SqliteStore::open_in_memory().expect("open");
    assert_eq!(a.path(), std::path::Path::new(":memory:"));
    assert!(a.verify_audit().expect("verify").is_intact());
    assert_eq!(b.audit_records(None).expect("audit"), Vec::new());
}

#[tokio::test]
async fn a_version_14_store_gives_its_actions_handles_in_creation_order() {
    use remediation_core::State;
    use remediation_core::store::prelude::*;

    use crate::support::{create, id, t};

    let (_dir, path, store) = crate::support::temp_store();
    // Stored out of creation order: handles follow creation time, not insertion.
    create(&store, 2, State::PendingApproval, t(30)).await;
    create(&store, 1, State::PendingApproval, t(10)).await;
    drop(store);
    raw(&path)
        .execute_batch(
            &[
                crate::support::UNDO_TENANTS,
                "DROP TABLE campaign_entries; DROP TABLE campaigns; DROP INDEX actions_by_handle;
             ALTER TABLE actions DROP COLUMN handle;
             UPDATE actions SET detail_json = json_remove(detail_json, '$.action.handle');
             PRAGMA user_version = 14",
            ]
            .concat(),
        )
        .expect("downgrade");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.get(id(1)).await.expect("get").action.handle, Some(1));
    assert_eq!(store.get(id(2)).await.expect("get").action.handle, Some(2));
    assert_eq!(store.action_by_handle(2).await.expect("by handle"), Some(id(2)));
    create(&store, 3, State::PendingApproval, t(5)).await;
    assert_eq!(store.get(id(3)).await.expect("get").action.handle, Some(3), "new ones continue after the largest");
}

/// A version 15 store (before managed connections) gains the connections tables, empty.
#[tokio::test]
async fn a_version_16_store_gains_the_connections_tables() {
    use remediation_core::store::prelude::*;

    let (_dir, path, store) = crate::support::temp_store();
    drop(store);
    raw(&path)
        .execute_batch(
            "DROP TABLE documents; DROP TABLE connection_revisions; DROP TABLE connections; PRAGMA user_version = 16",
        )
        .expect("downgrade");
    let store = SqliteStore::open(&path).expect("open");
    assert!(store.connections().await.expect("connections").is_empty());
    assert_eq!(store.connections_revision().await.expect("revision"), 0);
    let created = remediation_testkit::store_conformance::managed_connection("after-upgrade");
    store.create_connection(&created, &remediation_testkit::admin()).await.expect("create");
    assert_eq!(store.connections_revision().await.expect("revision"), 1);
}

/// A version 17 store (before documents) gains the documents table, empty.
#[tokio::test]
async fn a_version_17_store_gains_the_documents_table() {
    use remediation_core::store::prelude::*;

    let (_dir, path, store) = crate::support::temp_store();
    drop(store);
    raw(&path).execute_batch("DROP TABLE documents; PRAGMA user_version = 17").expect("downgrade");
    let store = SqliteStore::open(&path).expect("open");
    assert!(store.documents("playbook").await.expect("documents").is_empty());
    let write = remediation_core::DocumentWrite {
        collection: "playbook".to_owned(),
        id: "after-upgrade".to_owned(),
        expected_revision: 0,
        body: serde_json::json!({"steps": []}),
        actor: "local:root".to_owned(),
        at: remediation_testkit::fixed_time(),
        note: None,
    };
    assert_eq!(store.put_document(&write).await.expect("put").revision, 1);
}
