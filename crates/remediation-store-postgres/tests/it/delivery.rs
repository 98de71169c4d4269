//! Delivery marks and parked records on PostgreSQL: they survive reconnecting, two replicas
//! (two pools) move a mark once, and a version 5 schema gains the tables and the runtime
//! role's grants (expand only).

use remediation_core::{DeliveryStore as _, MarkAdvance, ReplayOutcome, Settlement, StoreError};
use remediation_store_postgres::{MigrateOptions, PostgresConfig, PostgresStore, SCHEMA_VERSION, migrate_with};
use remediation_testkit::fixed_time;

use crate::support::{TestDb, raw};

fn advance(sink: &str, from: u64, to: u64, parked: &[(u64, &str)]) -> MarkAdvance {
    MarkAdvance {
        sink: sink.to_owned(),
        from,
        to,
        parked: parked.iter().map(|(seq, reason)| (*seq, (*reason).to_owned())).collect(),
        at: fixed_time(),
        fence: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_and_parked_records_survive_reconnecting() {
    let Some(db) = TestDb::create("marks_and_parked_records_survive_reconnecting").await else { return };
    let (_schema, app) = db.migrated().await;
    let store = PostgresStore::connect(&app, None).await.expect("connect");
    store.register_sink("events/siem", 0, fixed_time()).await.expect("register");
    store.register_sink("audit/file", 4, fixed_time()).await.expect("register");
    store.advance_sink(&advance("events/siem", 0, 9, &[(3, "HTTP 400"), (7, "HTTP 422")])).await.expect("advance");
    assert_eq!(store.request_replay("events/siem", Some(vec![7])).await.expect("replay"), 1);
    let (marks, parked) = (store.sink_marks().await.expect("marks"), store.parked(None).await.expect("parked"));
    assert_eq!((marks.len(), parked.len()), (2, 2));
    drop(store);

    let store = PostgresStore::connect(&app, None).await.expect("reconnect");
    assert_eq!(store.sink_marks().await.expect("marks"), marks);
    assert_eq!(store.parked(None).await.expect("parked"), parked);
    assert_eq!(store.register_sink("audit/file", 0, fixed_time()).await.expect("register"), 4, "kept");
    drop(store);
    db.drop().await;
}

/// Two replicas, each with its own pool, race to move one mark from the same value: one
/// wins, the others see the mark it left, and only the winner's parked records are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_replicas_one_moves_the_mark() {
    const MOVES: u64 = 8;
    let Some(db) = TestDb::create("of_two_replicas_one_moves_the_mark").await else { return };
    let (_schema, app) = db.migrated().await;
    let replicas = [
        PostgresStore::connect(&app, None).await.expect("connect"),
        PostgresStore::connect(&app, None).await.expect("connect"),
    ];
    replicas[0].register_sink("events/siem", 0, fixed_time()).await.expect("register");
    let tasks: Vec<_> = (1..=MOVES)
        .map(|to| {
            let store = replicas[usize::try_from(to % 2).unwrap()].clone();
            tokio::spawn(async move { (to, store.advance_sink(&advance("events/siem", 0, to, &[(to, "x")])).await) })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let won: Vec<u64> = results.iter().filter(|(_, r)| r.is_ok()).map(|(to, _)| *to).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (_, result) in &results {
        match result {
            Ok(()) => {}
            Err(StoreError::DeliveryConflict { found, .. }) => assert_eq!(*found, won[0]),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let parked = replicas[1].parked(None).await.expect("parked");
    assert_eq!(parked.iter().map(|p| p.seq).collect::<Vec<_>>(), [won[0]], "only the winner's parked record");
    drop(replicas);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_schema_gains_the_delivery_tables_and_their_grants() {
    let Some(db) = TestDb::create("a_version_5_schema_gains_the_delivery_tables").await else { return };
    let (schema, _app) = db.migrated().await;
    let owner_conn = db.conn(&db.owner, &schema);
    raw(&owner_conn)
        .await
        .batch_execute(
            "DROP TABLE documents; DROP TABLE connection_revisions; DROP TABLE connections; DROP TABLE tenants; ALTER TABLE credentials DROP COLUMN also_tenants; DROP TABLE campaign_entries; DROP TABLE campaigns; ALTER TABLE actions DROP COLUMN handle, DROP COLUMN campaign; DROP SEQUENCE action_handles; DROP TABLE delivery_parked; DROP TABLE delivery_marks; DELETE FROM schema_migrations WHERE version >= 6",
        )
        .await
        .expect("downgrade");
    let owner = PostgresConfig::from_url(&owner_conn).expect("owner config");
    let report = migrate_with(&owner, &MigrateOptions { runtime_role: Some(db.app.clone()) }).await.expect("migrate");
    assert_eq!((report.from, report.applied.as_slice()), (Some(5), &(6..=SCHEMA_VERSION).collect::<Vec<_>>()[..]));
    let app = PostgresConfig::from_url(&db.conn(&db.app, &schema)).expect("app config").with_sequencer_interval(None);
    let store = PostgresStore::connect(&app, None).await.expect("connect");
    assert_eq!(store.register_sink("events/siem", 0, fixed_time()).await.expect("the runtime role inserts"), 0);
    store.advance_sink(&advance("events/siem", 0, 4, &[(2, "HTTP 400")])).await.expect("and updates");
    assert_eq!(store.request_replay("events/siem", None).await.expect("replay"), 1);
    let delivered = Settlement {
        sink: "events/siem".to_owned(),
        seq: 2,
        outcome: ReplayOutcome::Delivered,
        at: fixed_time(),
        fence: None,
    };
    store.settle_parked(&delivered).await.expect("and deletes");
    assert!(store.parked(None).await.expect("parked").is_empty());
    drop(store);
    db.drop().await;
}
