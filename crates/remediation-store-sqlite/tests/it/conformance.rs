//! The store conformance suite on a file-backed store, and the query plans that keep the
//! store's reads independent of the table sizes.

use std::sync::Arc;

use remediation_store_sqlite::SqliteStore;
use remediation_testkit::store_conformance::{Subject, run};

use crate::support::{key, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_store_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let next = std::sync::atomic::AtomicU32::new(0);
    run(|| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("store-{n}.db"));
        async move {
            let store = Arc::new(SqliteStore::open_with(&path, Some(key())).expect("open"));
            let seeder = Arc::clone(&store);
            Subject {
                store,
                // One transaction for the 100,000 actions of the paging case.
                seed: Some(Box::new(move |details| seeder.seed_actions(details).expect("seed"))),
                // Behind the store's back, as someone holding the file could.
                tamper: Some(Box::new(move |seq| {
                    raw(&path)
                        .execute_batch(&format!(
                            "DROP TRIGGER audit_no_update;
                             UPDATE audit SET record_json = json_set(record_json, '$.actor', 'local:mallory') WHERE seq = {seq}"
                        ))
                        .expect("tamper");
                })),
            }
        }
    })
    .await;
}

/// The plan SQLite chooses for `sql`, one line per step.
fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
    let rows = stmt.query_map([], |row| row.get::<_, String>(3)).expect("plan");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
}

/// Listing, due-time queries, slot counts and audit pages are index searches, never scans
/// of the table, so their cost does not grow with the rows they skip.
#[test]
fn reads_are_index_searches() {
    let (_dir, path, store) = crate::support::temp_store();
    drop(store);
    let conn = raw(&path);
    let cases = [
        (
            "SELECT detail_json FROM actions INDEXED BY actions_by_state WHERE tenant = 'default' AND state = 'approved' AND (created_at, id) > (0, '') ORDER BY created_at, id LIMIT 501",
            "SEARCH actions USING INDEX actions_by_state (tenant=? AND state=? AND (created_at,id)>(?,?))",
        ),
        (
            "SELECT detail_json FROM actions INDEXED BY actions_by_created WHERE tenant = 'default' AND (created_at, id) > (0, '') ORDER BY created_at, id LIMIT 501",
            "SEARCH actions USING INDEX actions_by_created (tenant=? AND (created_at,id)>(?,?))",
        ),
        (
            "SELECT detail_json FROM actions WHERE tenant = 'default' AND due_at IS NOT NULL AND due_at < 5 ORDER BY due_at LIMIT 10",
            "SEARCH actions USING INDEX actions_by_due (tenant=? AND due_at>? AND due_at<?)",
        ),
        (
            "SELECT COUNT(*) FROM limit_slots WHERE key = 'global' AND at > 5",
            "SEARCH limit_slots USING COVERING INDEX limit_slots_by_key_at (key=? AND at>?)",
        ),
        (
            "SELECT seq, record_json FROM audit WHERE seq > 5 AND tenant = 'default' ORDER BY seq LIMIT 10",
            "SEARCH audit USING INTEGER PRIMARY KEY (rowid>?)",
        ),
    ];
    for (sql, expected) in cases {
        assert_eq!(plan(&conn, sql), expected, "{sql}");
    }
}
