//! Integration tests of the PostgreSQL connector against a real server, in one binary: the
//! semantic conformance suite, hostile names, errors, protection and secrets.
//!
//! They read `REMEDIATION_TEST_PG` (a `key=value` connection string for a superuser, e.g.
//! `host=127.0.0.1 port=5432 user=postgres dbname=test`) and skip, saying so, when it is
//! unset (and fail under `CI=true`). Each test creates its own database and roles with a random suffix and drops them
//! at the end, even when it fails.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod conformance;
mod errors;
mod hostile;
mod least_privilege;
mod tls;

use std::future::Future;
use std::sync::Mutex;

use remediation_connector_postgres::{PostgresConfig, PostgresConnector};
use remediation_core::{Action, ActionKind, Target};
use remediation_testkit::ActionBuilder;
use tokio_postgres::{Client, NoTls};

const ENV: &str = "REMEDIATION_TEST_PG";

/// Runs a future on a fresh multi-threaded runtime (connections run as spawned tasks).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
}

/// A fresh database and a set of fresh roles on the test server, dropped on drop.
struct Pg {
    /// The connection string from the environment (a superuser).
    base: String,
    /// The test's database.
    db: String,
    /// The random suffix every name of this test carries.
    suffix: String,
    roles: Mutex<Vec<String>>,
}

impl Pg {
    /// A fresh database, or `None` (with the reason printed) when no server is configured.
    fn new(test: &str) -> Option<Self> {
        let base = remediation_testkit::real_server::require(
            test,
            ENV,
            "a superuser connection string such as `host=127.0.0.1 port=5432 user=postgres dbname=test`; \
             `eval \"$(.ci/setup-postgres.sh)\"` prints it",
        )?;
        // The shared server's certificate (Debian's snakeoil, if any) is not one the tests can
        // trust; TLS is tested against a private server (`tls`) with a CA of its own.
        let base = if base.contains("sslmode") { base } else { format!("{base} sslmode=disable") };
        let suffix = format!("{:08x}", rand::random::<u32>());
        let db = format!("remediation_it_{suffix}");
        let pg = Self { base, db, suffix, roles: Mutex::new(Vec::new()) };
        let create = format!("CREATE DATABASE {}", ident(&pg.db));
        block_on(async {
            let c = connect(&pg.base).await;
            c.batch_execute(&create).await.unwrap();
        });
        Some(pg)
    }

    /// The connection string for the test database as the superuser.
    fn conninfo(&self) -> String {
        format!("{} dbname={}", self.base, self.db)
    }

    /// The connection string for the test database as `user`.
    fn conninfo_as(&self, user: &str) -> String {
        format!("{} dbname={} user='{}'", self.base, self.db, user.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    /// A superuser connection to the test database.
    async fn admin(&self) -> Client {
        connect(&self.conninfo()).await
    }

    /// A role name unique to this test, remembered for cleanup.
    fn role(&self, base: &str) -> String {
        let name = format!("{base}_{}", self.suffix);
        self.roles.lock().unwrap().push(name.clone());
        name
    }

    /// A connector for the test database as the superuser.
    fn connector(&self) -> PostgresConnector {
        PostgresConnector::from_config(&PostgresConfig::new("pg", self.conninfo())).unwrap()
    }

    /// A connector for the test database as `user`.
    fn connector_as(&self, user: &str) -> PostgresConnector {
        PostgresConnector::from_config(&PostgresConfig::new("pg", self.conninfo_as(user))).unwrap()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let base = self.base.clone();
        let db = self.db.clone();
        let roles = self.roles.lock().map(|r| r.clone()).unwrap_or_default();
        // Drop runs inside a test's runtime or outside any; a thread of its own works in both.
        let done = std::thread::spawn(move || {
            block_on(async move {
                let c = connect(&base).await;
                if let Err(e) = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&db))).await {
                    eprintln!("cleanup: cannot drop database {db}: {e}");
                }
                for role in roles {
                    let sql = format!("DROP ROLE IF EXISTS {}", ident(&role));
                    if let Err(e) = c.batch_execute(&sql).await {
                        eprintln!("cleanup: cannot drop role {role:?}: {e}");
                    }
                }
            });
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup of {} failed", self.db);
        }
    }
}

/// Quotes an identifier for the tests' own setup SQL (independent of the crate's function).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn connect(conninfo: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn target(grant_type: &str, identity: &str, resource: Option<&str>, grant: Option<&str>) -> Target {
    Target {
        identity: identity.into(),
        resource: resource.map(Into::into),
        grant: grant.map(Into::into),
        grant_type: grant_type.into(),
    }
}

fn membership(member: &str, role: &str) -> Target {
    target("role_membership", member, Some(role), None)
}

fn table(role: &str, table: &str, grant: Option<&str>) -> Target {
    target("table_privilege", role, Some(table), grant)
}

fn login(role: &str) -> Target {
    target("login", role, None, None)
}

fn action(kind: ActionKind, target: Target) -> Action {
    ActionBuilder::new().connector("pg").kind(kind).target(target).build()
}

/// Every capability has its statements in the permission map, and the README lists it.
#[test]
fn the_permission_map_covers_every_capability_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "postgres",
        "",
        remediation_connector_postgres::PERMISSION_MAP,
        &remediation_connector_postgres::capabilities(),
        &[],
    );
}
