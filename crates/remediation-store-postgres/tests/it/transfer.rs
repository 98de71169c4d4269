//! The transfer contract (`remediate store copy`): a PostgreSQL store exports and imports an
//! installation with its audit log intact, as the runtime role.

use remediation_core::AuditLog as _;
use remediation_core::store::transfer::copy_installation;
use remediation_testkit::InMemoryStore;
use remediation_testkit::store_transfer::{archived_source_is_refused, assert_same, populate, round_trip};

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_round_trips_into_and_out_of_postgres() {
    let Some(db) = TestDb::create("an_installation_round_trips_into_and_out_of_postgres").await else {
        return;
    };
    // Into PostgreSQL from another store: every section, paged, the audit records byte for
    // byte, and a second copy into it refused.
    let (_, into, _) = db.store().await;
    round_trip(&InMemoryStore::new(), &into, 12).await;

    // Out of PostgreSQL into another PostgreSQL store, with sequenced records and entries
    // still waiting for the sequencer (which the in-memory store cannot import).
    let (_, from, from_clock) = db.store().await;
    let (_, to, to_clock) = db.store().await;
    let hash = populate(&from, 12).await;
    // The populated sequencer lease (an hour long) expires; then this store seals the log.
    from_clock.advance(time::Duration::hours(2));
    let sealed = from.sequence_pending().await.expect("sequence");
    assert!(sealed > 0);
    populate_more(&from).await;
    let waiting = from.unsequenced().await.expect("unsequenced");
    assert!(waiting > 0, "entries wait for the sequencer");
    let report = copy_installation(&from, &to, 7, &mut |_| {}).await.expect("copy");
    assert_eq!(report.target_audit.records, sealed);
    assert_same(&from, &to, &hash, true).await;
    assert_eq!(to.unsequenced().await.expect("unsequenced"), waiting);

    // The target's sequencer seals the copied entries onto the copied chain, from the head
    // the import set, once the copied lease expires.
    to_clock.advance(time::Duration::hours(3));
    assert_eq!(to.sequence_pending().await.expect("sequence"), waiting);
    let after = to.verify_audit().await.expect("verify");
    assert!(after.is_intact(), "{after}");
    assert_eq!(after.records, sealed + waiting);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_source_with_archived_records_is_refused_before_anything_is_written() {
    let Some(db) = TestDb::create("a_postgres_source_with_archived_records_is_refused").await else {
        return;
    };
    let (_, from, _) = db.store().await;
    let (_, to, _) = db.store().await;
    archived_source_is_refused(&from, &to).await;
    drop((from, to));
    db.drop().await;
}

/// One more audited change that stays unsequenced.
async fn populate_more(store: &remediation_store_postgres::PostgresStore) {
    let note = remediation_core::SettingsRecord {
        setting_event: "written_after_sequencing".to_owned(),
        actor: "local:admin".to_owned(),
        credential: None,
        at: remediation_testkit::fixed_time(),
        comment: None,
        previous: serde_json::Value::Null,
        value: serde_json::Value::Null,
        action_id: None,
    };
    store.append_note(&note).await.expect("note");
}
