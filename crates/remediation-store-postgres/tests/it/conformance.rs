//! The store conformance suite, as the runtime role, each case on a fresh schema.

use std::sync::Arc;
use std::time::Instant;

use remediation_core::ActionDetail;
use remediation_testkit::store_conformance::{self, Subject};

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_passes_the_conformance_suite_as_the_runtime_role() {
    let Some(db) = TestDb::create("the_store_passes_the_conformance_suite_as_the_runtime_role").await else {
        return;
    };
    let started = Instant::now();
    let db = Arc::new(db);
    store_conformance::run(|| {
        let db = Arc::clone(&db);
        async move {
            let (schema, store, clock) = db.store().await;
            let seeder = store.clone();
            let seed = Box::new(move |details: &[ActionDetail]| {
                let store = seeder.clone();
                let details = details.to_vec();
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async move { store.seed_actions(&details).await })
                })
                .expect("seed");
            });
            // Edits record `seq` behind the store's back: only a superuser, with the triggers
            // switched off for its session, can.
            let (tamper_db, tamper_schema) = (Arc::clone(&db), schema.clone());
            let tamper = Box::new(move |seq: u64| {
                let (db, schema) = (Arc::clone(&tamper_db), tamper_schema.clone());
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async move {
                        let su = db.superuser(&schema).await;
                        su.batch_execute("SET session_replication_role = replica").await.expect("replica");
                        let seq = i64::try_from(seq).expect("seq");
                        let n = su
                            .execute(
                                "UPDATE audit SET record_json = replace(record_json, '\"reject\"', '\"approve\"') WHERE seq = $1",
                                &[&seq],
                            )
                            .await
                            .expect("tamper");
                        assert_eq!(n, 1);
                    })
                });
            });
            Subject { store: Arc::new(store), seed: Some(seed), tamper: Some(tamper), clock: Some(clock) }
        }
    })
    .await;
    println!("store conformance on PostgreSQL: {:.2} s in all", started.elapsed().as_secs_f64());
    if let Ok(db) = Arc::try_unwrap(db) {
        db.drop().await;
    }
}

/// The managed connections case alone, as the runtime role (which the migration granted the
/// new tables to).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn managed_connections_as_the_runtime_role() {
    let Some(db) = TestDb::create("managed_connections_as_the_runtime_role").await else {
        return;
    };
    let (_schema, store, _clock) = db.store().await;
    store_conformance::connections(Subject::new(Arc::new(store))).await;
}

/// The documents case alone, as the runtime role (which the migration granted the new table
/// to).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn documents_as_the_runtime_role() {
    let Some(db) = TestDb::create("documents_as_the_runtime_role").await else {
        return;
    };
    let (_schema, store, _clock) = db.store().await;
    store_conformance::documents(Subject::new(Arc::new(store))).await;
    db.drop().await;
}
