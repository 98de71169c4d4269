//! The approval page's sessions on disk: only the hash of a session id is stored, sessions
//! outlive the process, and a version 12 file gains the table.

use remediation_core::SessionStore as _;
use remediation_core::store::{Flash, SessionIdHash, UiSession};
use remediation_store_sqlite::SqliteStore;

use crate::support::{raw, t, temp_store};

/// As the page makes them: 256 random bits, hex.
const RAW_ID: &str = "4f1c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0d5";

fn session() -> UiSession {
    UiSession {
        token_hash: "ab".repeat(32),
        csrf: "csrf-token".to_owned(),
        expires_at: t(3600),
        flash: Some(Flash { ok: true, text: "Signed in".to_owned() }),
    }
}

/// Every value of every row of `ui_sessions`, as text.
fn stored_values(path: &std::path::Path) -> Vec<String> {
    let conn = raw(path);
    let mut stmt = conn
        .prepare("SELECT tenant, id_hash, token_hash, csrf, CAST(expires_at AS TEXT), COALESCE(flash_json, '') FROM ui_sessions")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((0..6).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>()))
        .expect("query");
    rows.flat_map(|r| r.expect("row").expect("values")).collect()
}

#[tokio::test]
async fn the_raw_session_id_is_stored_nowhere() {
    let (_dir, path, store) = temp_store();
    let id = SessionIdHash::of(RAW_ID);
    store.create_session(&id, &session()).await.expect("create");
    let values = stored_values(&path);
    assert!(values.iter().any(|v| v == id.as_str()), "the row is keyed by the id's hash: {values:?}");
    assert!(values.iter().all(|v| !v.contains(RAW_ID)), "the raw id appears nowhere: {values:?}");
    // Nor anywhere else in the file (the WAL is checkpointed into it on close).
    drop(store);
    let bytes = std::fs::read(&path).expect("read");
    assert!(!bytes.windows(RAW_ID.len()).any(|w| w == RAW_ID.as_bytes()), "the raw id is not in the file");
}

#[tokio::test]
async fn a_session_survives_reopening() {
    let (_dir, path, store) = temp_store();
    let id = SessionIdHash::of(RAW_ID);
    store.create_session(&id, &session()).await.expect("create");
    drop(store);
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.session(&id, t(0)).await.expect("get"), Some(session()));
}

#[tokio::test]
async fn a_version_12_store_gains_the_sessions_table() {
    let (_dir, path, store) = temp_store();
    drop(store);
    raw(&path)
        .execute_batch(
            &[crate::support::UNDO_TENANTS, "DROP TABLE campaign_entries; DROP TABLE campaigns; DROP INDEX actions_by_handle; ALTER TABLE actions DROP COLUMN handle; DROP TABLE delivery_parked; DROP TABLE delivery_marks; DROP TABLE ui_sessions; PRAGMA user_version = 12"].concat(),
        )
        .expect("downgrade");
    let store = SqliteStore::open(&path).expect("open");
    let version: i64 = raw(&path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version, i64::from(remediation_store_sqlite::SCHEMA_VERSION));
    let id = SessionIdHash::of(RAW_ID);
    store.create_session(&id, &session()).await.expect("create");
    assert!(store.session(&id, t(0)).await.expect("get").is_some());
}
