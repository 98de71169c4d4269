//! The transfer contract (`remediate store copy`): a PostgreSQL store exports and imports an
//! installation with its audit log intact, as the runtime role.

use remediation_testkit::InMemoryStore;
use remediation_testkit::store_transfer::round_trip;

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_round_trips_into_and_out_of_postgres() {
    let Some(db) = TestDb::create("an_installation_round_trips_into_and_out_of_postgres").await else {
        return;
    };
    // Into PostgreSQL from another store, then from PostgreSQL into another PostgreSQL store
    // (its unsequenced entries too, which the in-memory store cannot import): every section,
    // paged, the audit records byte for byte.
    let (_, into, _) = db.store().await;
    round_trip(&InMemoryStore::new(), &into, 12).await;
    let (_, from, _) = db.store().await;
    let (_, to, _) = db.store().await;
    round_trip(&from, &to, 12).await;
    db.drop().await;
}
