//! The store used from more than one runtime, as the server uses it (its worker and its event
//! relay run runtimes of their own).

use std::time::Duration;

use remediation_core::AuditLog;
use remediation_store_postgres::PostgresStore;

use crate::support::TestDb;

/// Two reads at once, so the pool opens a second connection when it has one idle.
async fn two_reads(store: &PostgresStore) {
    let (a, b) = tokio::join!(store.audit_size(), store.audit_size());
    a.unwrap();
    b.unwrap();
}

/// A connection the pool opened for a caller on another runtime is driven by the store's own
/// runtime: when that other runtime stops polling (its thread blocks, or it runs at a lower
/// priority), the connection still serves everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_opened_from_another_runtime_serves_after_that_runtime_stops_polling() {
    let Some(db) = TestDb::create("a_connection_opened_from_another_runtime").await else { return };
    let (_, app) = db.migrated().await;
    let store = PostgresStore::connect(&app.with_pool_size(2), None).await.unwrap();
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
    let other = {
        let store = store.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(two_reads(&store));
            opened_tx.send(()).unwrap();
            // The runtime lives on but polls nothing until the test ends.
            let _ = end_rx.recv();
            drop(runtime);
        })
    };
    tokio::task::spawn_blocking(move || opened_rx.recv().unwrap()).await.unwrap();
    for round in 0..10 {
        tokio::time::timeout(Duration::from_secs(10), two_reads(&store))
            .await
            .unwrap_or_else(|_| panic!("round {round}: a pooled connection hangs with the runtime that opened it"));
    }
    end_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || other.join().unwrap()).await.unwrap();
    drop(store);
    db.drop().await;
}
