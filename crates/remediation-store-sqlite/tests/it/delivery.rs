//! Delivery marks and parked records on a file: they survive reopening, several handles on
//! one file (as several processes) move a mark once, and a version 13 file gains the tables.

use std::sync::Arc;

use remediation_core::store::prelude::*;
use remediation_core::{MarkAdvance, ReplayOutcome, Settlement, StoreError};
use remediation_store_sqlite::SqliteStore;

use crate::support::{raw, t, temp_store};

fn advance(sink: &str, from: u64, to: u64, parked: &[(u64, &str)]) -> MarkAdvance {
    MarkAdvance {
        sink: sink.to_owned(),
        from,
        to,
        parked: parked.iter().map(|(seq, reason)| (*seq, (*reason).to_owned())).collect(),
        at: t(60),
        fence: None,
    }
}

#[tokio::test]
async fn marks_and_parked_records_survive_reopening() {
    let (_dir, path, store) = temp_store();
    store.register_sink("events/siem", 0, t(0)).await.expect("register");
    store.register_sink("audit/file", 4, t(0)).await.expect("register");
    store.advance_sink(&advance("events/siem", 0, 9, &[(3, "HTTP 400"), (7, "HTTP 422")])).await.expect("advance");
    assert_eq!(store.request_replay("events/siem", Some(vec![7])).await.expect("replay"), 1);
    let settled = Settlement {
        sink: "events/siem".to_owned(),
        seq: 3,
        outcome: ReplayOutcome::RefusedAgain("HTTP 400 again".to_owned()),
        at: t(120),
        fence: None,
    };
    store.settle_parked(&settled).await.expect("settle");
    let (marks, parked) = (store.sink_marks().await.expect("marks"), store.parked(None).await.expect("parked"));
    assert_eq!(marks.len(), 2);
    assert_eq!(parked.len(), 2);
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.sink_marks().await.expect("marks"), marks);
    assert_eq!(store.parked(None).await.expect("parked"), parked);
    assert_eq!(store.register_sink("audit/file", 0, t(180)).await.expect("register"), 4, "kept, not re-registered");
}

/// Each handle has its own writer and connection, as a second process would: one move from a
/// mark wins, the others see the mark it left.
#[test]
fn of_several_handles_on_one_file_one_moves_the_mark() {
    const HANDLES: u64 = 4;
    let (_dir, path, store) = temp_store();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    rt.block_on(store.register_sink("events/siem", 0, t(0))).expect("register");
    let handles: Vec<_> = (0..HANDLES).map(|_| Arc::new(SqliteStore::open(&path).expect("open"))).collect();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (1..=HANDLES)
            .zip(&handles)
            .map(|(to, handle)| {
                let handle = Arc::clone(handle);
                tokio::spawn(
                    async move { (to, handle.advance_sink(&advance("events/siem", 0, to, &[(to, "x")])).await) },
                )
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        results
    });
    let won: Vec<u64> = results.iter().filter(|(_, r)| r.is_ok()).map(|(to, _)| *to).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (_, result) in &results {
        match result {
            Ok(()) => {}
            Err(StoreError::DeliveryConflict { found, .. }) => assert_eq!(*found, won[0]),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let marks = rt.block_on(store.sink_marks()).expect("marks");
    assert_eq!(marks.iter().map(|m| m.delivered_through).collect::<Vec<_>>(), [won[0]]);
    let parked = rt.block_on(store.parked(None)).expect("parked");
    assert_eq!(parked.iter().map(|p| p.seq).collect::<Vec<_>>(), [won[0]], "only the winner's parked record");
}

#[tokio::test]
async fn a_version_13_store_gains_the_delivery_tables() {
    let (_dir, path, store) = temp_store();
    drop(store);
    raw(&path)
        .execute_batch(&[crate::support::UNDO_TENANTS, "DROP TABLE campaign_entries; DROP TABLE campaigns; DROP INDEX actions_by_handle; ALTER TABLE actions DROP COLUMN handle; DROP TABLE delivery_parked; DROP TABLE delivery_marks; PRAGMA user_version = 13"].concat())
        .expect("downgrade");
    let store = SqliteStore::open(&path).expect("open");
    let version: i64 = raw(&path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version, i64::from(remediation_store_sqlite::SCHEMA_VERSION));
    assert_eq!(store.register_sink("events/siem", 2, t(0)).await.expect("register"), 2);
    store.advance_sink(&advance("events/siem", 2, 5, &[(4, "HTTP 400")])).await.expect("advance");
    assert_eq!(store.parked(None).await.expect("parked").len(), 1);
}

/// A parked record belongs to a registered sink: the schema refuses one without its mark.
#[test]
fn a_parked_record_needs_its_sink() {
    let (_dir, path, store) = temp_store();
    drop(store);
    let conn = raw(&path);
    conn.pragma_update(None, "foreign_keys", "ON").expect("pragma");
    let orphan = conn
        .execute("INSERT INTO delivery_parked (sink, seq, reason, parked_at) VALUES ('events/nobody', 1, 'x', 0)", []);
    assert!(orphan.is_err(), "{orphan:?}");
}
