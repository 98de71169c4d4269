//! The approval page's sessions on PostgreSQL: only the hash of a session id is stored, the
//! runtime role may change them, and a version 2 schema gains the table (expand only).

use remediation_core::SessionStore as _;
use remediation_core::store::{Flash, SessionIdHash, UiSession};
use remediation_store_postgres::{MigrateOptions, PostgresConfig, PostgresStore, SCHEMA_VERSION, migrate_with};
use remediation_testkit::fixed_time;

use crate::support::{TestDb, raw};

/// As the page makes them: 256 random bits, hex.
const RAW_ID: &str = "4f1c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0d5";

fn session() -> UiSession {
    UiSession {
        token_hash: "ab".repeat(32),
        csrf: "csrf-token".to_owned(),
        expires_at: fixed_time() + time::Duration::hours(8),
        flash: Some(Flash { ok: true, text: "Signed in".to_owned() }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_session_id_is_stored_nowhere() {
    let Some(db) = TestDb::create("the_raw_session_id_is_stored_nowhere").await else { return };
    let (schema, store, _clock) = db.store().await;
    let id = SessionIdHash::of(RAW_ID);
    store.create_session(&id, &session()).await.expect("create");
    let su = db.superuser(&schema).await;
    let rows: Vec<String> = su
        .query("SELECT ui_sessions::text FROM ui_sessions", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(id.as_str()), "the row is keyed by the id's hash: {rows:?}");
    assert!(!rows[0].contains(RAW_ID), "the raw id appears nowhere: {rows:?}");
    drop(store);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_schema_gains_the_sessions_table_and_its_grants() {
    let Some(db) = TestDb::create("a_version_2_schema_gains_the_sessions_table").await else { return };
    let (schema, _app) = db.migrated().await;
    let owner_conn = db.conn(&db.owner, &schema);
    // Back to how version 2 left the schema (versions 4 to 6 undone too).
    raw(&owner_conn)
        .await
        .batch_execute(
            "DROP TABLE documents; DROP TABLE connection_revisions; DROP TABLE connections; DROP TABLE tenants; ALTER TABLE credentials DROP COLUMN also_tenants; DROP TABLE campaign_entries; DROP TABLE campaigns; ALTER TABLE actions DROP COLUMN handle, DROP COLUMN campaign; DROP SEQUENCE action_handles; DROP TABLE delivery_parked; DROP TABLE delivery_marks;
             DROP FUNCTION audit_archive; DROP TRIGGER audit_no_delete ON audit;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
             DROP FUNCTION audit_delete_archived_only; DROP TABLE audit_archives;
             DROP TABLE ui_sessions;
             ALTER TABLE actions DROP COLUMN claimed_by, DROP COLUMN claimed_until; DELETE FROM schema_migrations WHERE version >= 3",
        )
        .await
        .expect("downgrade");
    let owner = PostgresConfig::from_url(&owner_conn).expect("owner config");
    let report = migrate_with(&owner, &MigrateOptions { runtime_role: Some(db.app.clone()) }).await.expect("migrate");
    assert_eq!((report.from, report.applied.as_slice()), (Some(2), &(3..=SCHEMA_VERSION).collect::<Vec<_>>()[..]));
    let app = PostgresConfig::from_url(&db.conn(&db.app, &schema)).expect("app config").with_sequencer_interval(None);
    let store = PostgresStore::connect(&app, None).await.expect("connect");
    let id = SessionIdHash::of(RAW_ID);
    store.create_session(&id, &session()).await.expect("the runtime role inserts");
    assert!(store.set_flash(&id, &Flash { ok: false, text: "x".to_owned() }).await.expect("and updates"));
    assert_eq!(store.session(&id, fixed_time()).await.expect("reads").map(|s| s.csrf), Some("csrf-token".to_owned()));
    assert!(store.delete_session(&id).await.expect("and deletes"));
    drop(store);
    db.drop().await;
}
