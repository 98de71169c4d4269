//! Several processes (here: threads, each with its own `SqliteStore::open` of the same file)
//! starting executions at once never exceed a window's limit.

use std::sync::{Arc, Barrier};

use remediation_core::store::prelude::*;
use remediation_core::{BeginOutcome, SlotRequest, State};
use remediation_store_sqlite::SqliteStore;
use time::Duration;

use crate::support::{change, count, create, key, raw, t, temp_keyed_store};

const ACTIONS: u32 = 50;
const THREADS: u32 = 4;
const LIMIT: u32 = 20;

#[test]
fn four_handles_admit_exactly_the_limit() {
    // With the audit key, so the checkpoint is kept in step by every handle.
    let (_dir, path, setup) = temp_keyed_store();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for n in 0..ACTIONS {
        rt.block_on(create(&setup, n, State::Approved, t(0)));
    }
    drop(setup);

    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = SqliteStore::open_with(&path, Some(key())).expect("open");
                let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                let slots = [SlotRequest { key: "connector:sandbox".to_owned(), limit: LIMIT, window_secs: 3600 }];
                barrier.wait();
                let mut admitted = 0;
                for n in (thread..ACTIONS).step_by(THREADS as usize) {
                    let at = t(1) + Duration::milliseconds(i64::from(n));
                    let begin = change(n, State::Approved, State::Executing, "begin_execution", at);
                    match rt.block_on(store.begin_execution(&begin, &slots, true)).expect("begin") {
                        BeginOutcome::Started(_) => admitted += 1,
                        BeginOutcome::LimitReached(limit) => assert_eq!(limit.used, LIMIT),
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: u32 = handles.into_iter().map(|h| h.join().expect("thread")).sum();

    assert_eq!(admitted, LIMIT);
    assert_eq!(count(&path, "limit_slots"), i64::from(LIMIT));
    let executing: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM actions WHERE state = 'executing'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(executing, i64::from(LIMIT));
    // No window of an hour, ending at any recorded slot, holds more than the limit.
    let conn = raw(&path);
    let mut stmt = conn.prepare("SELECT at FROM limit_slots").expect("prepare");
    let ats: Vec<i64> = stmt.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect();
    let hour = 3_600_000_000_000_i64;
    for end in &ats {
        assert!(ats.iter().filter(|at| **at > end - hour && **at <= *end).count() <= LIMIT as usize);
    }
    let store = SqliteStore::open_with(&path, Some(key())).expect("open");
    let report = store.verify_audit().expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checkpoint, remediation_audit::CheckpointVerdict::Matches);
    assert_eq!(report.records, u64::from(ACTIONS + LIMIT));
}

#[test]
fn four_handles_can_create_the_same_fresh_file_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fresh.db");
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let store = SqliteStore::open(&path).expect("open");
                let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                rt.block_on(create(&store, thread, State::PendingApproval, t(0)));
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let version: i64 = raw(&path).pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version, i64::from(remediation_store_sqlite::SCHEMA_VERSION));
    let store = SqliteStore::open(&path).expect("open");
    let report = store.verify_audit().expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, u64::from(THREADS));
}

/// Many reads at once share the pool's few connections: they wait for one to be free rather
/// than opening (and closing) a connection each, which cost more than the read itself.
#[test]
fn many_reads_at_once_share_at_most_four_connections() {
    let (_dir, _path, store) = crate::support::temp_store();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    rt.block_on(create(&store, 1, State::Approved, t(0)));
    let id = crate::support::id(1);
    rt.block_on(async {
        let reads: Vec<_> = (0..256)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get(id).await.map(|d| d.action.id) })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.expect("join").expect("read"), id);
        }
    });
    let opened = store.read_connections_opened();
    assert!((1..=4).contains(&opened), "{opened} read connections were opened for 256 reads");
}
