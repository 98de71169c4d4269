//! A fresh database per test, owned by a fresh NOSUPERUSER owner role, used by a fresh
//! NOSUPERUSER runtime role that owns nothing; a fresh schema per store inside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use remediation_core::ManualClock;
use remediation_store_postgres::{MigrateOptions, PostgresConfig, PostgresStore, SCHEMA_VERSION, migrate_with};
use tokio_postgres::{Client, NoTls};

/// The variable naming the superuser connection string of the test server.
pub(crate) const VAR: &str = "REMEDIATION_TEST_PG";

/// One test's database and roles; dropped by [`TestDb::drop`] at the end of the test.
pub(crate) struct TestDb {
    /// The superuser connection string (key=value form), pointing at the `test` database.
    admin: String,
    /// The database.
    pub(crate) name: String,
    /// The schema owner role (runs migrations).
    pub(crate) owner: String,
    /// The runtime role (owns nothing).
    pub(crate) app: String,
    schemas: AtomicU32,
}

/// Connects with `conn` (key=value form), driving the connection on a task.
pub(crate) async fn raw(conn: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

impl TestDb {
    /// Creates the database and the two roles; `None` (after printing why) when no server is
    /// configured outside CI.
    pub(crate) async fn create(test: &str) -> Option<TestDb> {
        let admin = remediation_testkit::real_server::require(test, VAR, "run .ci/setup-postgres.sh")?;
        let name = format!("rps_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let (owner, app) = (format!("{name}_owner"), format!("{name}_app"));
        let su = raw(&admin).await;
        su.batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
             CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;"
        ))
        .await
        .expect("create roles");
        su.batch_execute(&format!("CREATE DATABASE {name} OWNER {owner}")).await.expect("create database");
        Some(TestDb { admin, name, owner, app, schemas: AtomicU32::new(0) })
    }

    /// The connection string of `role` in this database with `schema` first on the search path.
    pub(crate) fn conn(&self, role: &str, schema: &str) -> String {
        format!("{} dbname={} user={role} options='-c search_path={schema}'", self.admin, self.name)
    }

    /// The superuser, in this database, on `schema`.
    pub(crate) async fn superuser(&self, schema: &str) -> Client {
        let su = format!("{} dbname={} options='-c search_path={schema}'", self.admin, self.name);
        raw(&su).await
    }

    /// A fresh, empty schema owned by the owner role (no migration).
    pub(crate) async fn empty_schema(&self) -> String {
        let schema = format!("s{}", self.schemas.fetch_add(1, Ordering::Relaxed));
        let su = self.superuser("public").await;
        su.batch_execute(&format!("CREATE SCHEMA {schema} AUTHORIZATION {}", self.owner)).await.expect("schema");
        schema
    }

    /// A fresh schema migrated by the owner role, granted to the runtime role; returns the
    /// schema and the runtime role's configuration for it (no background sequencer).
    pub(crate) async fn migrated(&self) -> (String, PostgresConfig) {
        let schema = self.empty_schema().await;
        let owner = PostgresConfig::from_url(&self.conn(&self.owner, &schema)).expect("owner config");
        let report =
            migrate_with(&owner, &MigrateOptions { runtime_role: Some(self.app.clone()) }).await.expect("migrate");
        assert_eq!(report.applied, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        let app = PostgresConfig::from_url(&self.conn(&self.app, &schema))
            .expect("app config")
            .with_sequencer_interval(None)
            .with_pool_size(8);
        (schema, app)
    }

    /// A store on a fresh schema, as the runtime role, judging leases by a manual clock.
    pub(crate) async fn store(&self) -> (String, PostgresStore, Arc<ManualClock>) {
        let (schema, app) = self.migrated().await;
        let clock = Arc::new(ManualClock::new(remediation_testkit::fixed_time()));
        let store = PostgresStore::connect(&app.with_clock(clock.clone()), None).await.expect("connect");
        (schema, store, clock)
    }

    /// Drops the database and the roles.
    pub(crate) async fn drop(self) {
        let su = raw(&self.admin).await;
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {}", self.owner),
            format!("DROP ROLE IF EXISTS {}", self.app),
        ] {
            su.batch_execute(&sql).await.expect("drop the test database and roles");
        }
    }
}
