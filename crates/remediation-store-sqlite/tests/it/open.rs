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
    assert_eq!((mode.as_str(), version), ("wal", 1));
    drop(store);
    // Opening again migrates nothing and keeps the version.
    SqliteStore::open(&path).expect("reopen");
    let version: i64 = raw(&path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version, 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("r.db");
    drop(SqliteStore::open(&path).expect("open"));
    raw(&path).pragma_update(None, "user_version", 7).expect("pragma");
    let err = SqliteStore::open(&path).expect_err("refused");
    assert!(matches!(err, StoreSqliteError::SchemaTooNew { found: 7, supported: 1, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: database schema version 7 is newer than this build supports (1); upgrade remediate",
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
