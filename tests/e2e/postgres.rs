//! The PostgreSQL store through the real binaries, against the server named by
//! `REMEDIATION_TEST_PG` (skipped with a printed reason without it, failing under `CI=true`):
//! `remediate store copy` moves an installation from SQLite into a fresh database, after which
//! `list`, `show` and `audit verify` read the same there; a server refuses an un-migrated
//! database unless `--migrate`, and after `remediate migrate` serves suggest, approve and
//! execute with its background sequencer sealing the trail. Each test uses a database and
//! two roles of its own (the schema's owner, and a runtime role that owns nothing), dropped
//! at the end.

use std::process::Command;
use std::time::{Duration, Instant};

use remediation_e2e::{Env, server_bin};
use serde_json::json;

use crate::server::{Server, token};
use crate::store::{installation, json};

const VAR: &str = "REMEDIATION_TEST_PG";

/// A fresh database owned by a fresh owner role, with a runtime role that owns nothing.
pub(crate) struct Db {
    /// The superuser connection string (key=value form).
    admin: String,
    name: String,
    host: String,
    port: String,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    pub(crate) fn create(test: &str) -> Option<Db> {
        let admin = remediation_testkit::real_server::require(test, VAR, "run .ci/setup-postgres.sh")?;
        let field = |key: &str, default: &str| {
            admin.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}="))).unwrap_or(default).to_owned()
        };
        let (host, port) = (field("host", "127.0.0.1"), field("port", "5432"));
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("rpe_{}_{nanos}", std::process::id());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let db = Db { admin, name, host, port, runtime };
        db.superuser(&[
            &format!("CREATE ROLE {}_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE", db.name),
            &format!("CREATE ROLE {}_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE", db.name),
            &format!("CREATE DATABASE {} OWNER {}_owner", db.name, db.name),
        ]);
        Some(db)
    }

    /// Runs `statements` as the superuser, in this database when `here`, else in the admin's.
    pub(crate) fn run(&self, here: bool, statements: &[&str]) -> Vec<i64> {
        let conn = if here { format!("{} dbname={}", self.admin, self.name) } else { self.admin.clone() };
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.expect("connect");
            let driver = tokio::spawn(connection);
            let mut counts = Vec::new();
            for s in statements {
                if s.starts_with("SELECT") {
                    counts.push(client.query_one(*s, &[]).await.expect(s).get::<_, i64>(0));
                } else {
                    client.batch_execute(s).await.expect(s);
                }
            }
            drop(client);
            let _ = driver.await;
            counts
        })
    }

    /// The rows of `query` (two text columns) in this database, as the superuser.
    pub(crate) fn pairs(&self, query: &str) -> Vec<(String, String)> {
        let conn = format!("{} dbname={}", self.admin, self.name);
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.expect("connect");
            let driver = tokio::spawn(connection);
            let rows = client.query(query, &[]).await.expect(query);
            drop(client);
            let _ = driver.await;
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect()
        })
    }

    fn superuser(&self, statements: &[&str]) {
        self.run(false, statements);
    }

    /// A URL of this database as `role` (`owner` or `app`).
    pub(crate) fn url(&self, role: &str) -> String {
        format!("postgres://{}_{role}@{}:{}/{}?sslmode=disable", self.name, self.host, self.port, self.name)
    }

    /// The `[store]` table: the runtime role, migrations as the owner.
    pub(crate) fn store_table(&self) -> String {
        format!(
            "\n[store]\nurl = \"{}\"\nmigrate_user = \"{}_owner\"\n",
            self.url("app").replace("?sslmode=disable", ""),
            self.name
        ) + "sslmode = \"disable\"\n"
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // One statement per call: DROP DATABASE cannot run inside the implicit transaction of
        // a multi-statement query. Best effort: a failed drop must not hide the test's result.
        let name = self.name.clone();
        let conn = self.admin.clone();
        let _ = self.runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            for sql in [
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                format!("DROP ROLE IF EXISTS {name}_owner"),
                format!("DROP ROLE IF EXISTS {name}_app"),
            ] {
                client.batch_execute(&sql).await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        });
    }
}

#[test]
fn store_copy_moves_a_sqlite_installation_into_postgres() {
    let Some(db) = Db::create("store_copy_moves_a_sqlite_installation_into_postgres") else { return };
    let env = Env::new();
    let (id, _token) = installation(&env);
    let before = (json(&env, &["list"]), json(&env, &["show", &id]), json(&env, &["audit", "verify"]));
    let from = format!("sqlite:{}", env.dir().join("remediation.db").display());
    let run = env.expect("local:admin", &["store", "copy", "--from", &from, "--to", &db.url("owner")], 0);
    assert!(run.stdout.contains("audit log verified on the target"), "{}\n{}", run.stdout, run.stderr);

    // The installation runs on PostgreSQL as the runtime role, once `migrate` granted it.
    env.edit_config(|t| format!("{t}{}", db.store_table()));
    let refused = env.run_as("local:bob", &["list"]);
    assert_ne!(refused.code, 0, "the runtime role holds no privilege yet");
    assert!(refused.stderr.contains("remediate migrate"), "{}", refused.stderr);
    let migrated = env.expect("local:admin", &["migrate"], 0);
    assert!(migrated.stdout.contains(&db.name), "{}", migrated.stdout);
    assert!(migrated.stdout.contains(&format!("granted the runtime role {}_app", db.name)), "{}", migrated.stdout);
    std::fs::rename(env.dir().join("remediation.db"), env.dir().join("moved-away.db")).expect("move");
    let after = (json(&env, &["list"]), json(&env, &["show", &id]), json(&env, &["audit", "verify"]));
    assert_eq!(before, after, "list, show and audit verify read the same on PostgreSQL");
    assert_eq!(after.2["checkpoint"]["status"], "matches", "{}", after.2);
    assert!(!env.dir().join("remediation.db").exists(), "nothing fell back to the default file");
    // A second copy into the now occupied database is refused.
    std::fs::rename(env.dir().join("moved-away.db"), env.dir().join("remediation.db")).expect("move back");
    env.expect("local:admin", &["store", "copy", "--from", &from, "--to", &db.url("owner")], 3);
}

#[test]
fn a_server_on_postgres_serves_suggest_approve_execute_and_seals_the_trail() {
    let Some(db) = Db::create("a_server_on_postgres_serves_suggest_approve_execute_and_seals_the_trail") else {
        return;
    };
    let env = Env::new();
    env.init_enabled();
    env.edit_config(|t| format!("{t}\n[server]\nworker_interval_secs = 1\n{}", db.store_table()));
    // Not migrated: the server refuses to start and says what to do.
    let out = Command::new(server_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .output()
        .expect("run the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("remediate migrate") && stderr.contains(&db.name), "{stderr}");

    let migrated = env.expect("local:admin", &["--output", "json", "migrate"], 0).json();
    assert_eq!(migrated["from"], serde_json::Value::Null, "{migrated}");
    assert_eq!(migrated["granted"], format!("{}_app", db.name), "{migrated}");
    let requester = token(&env, "alice-svc", "requester");
    let approver = token(&env, "bob-svc", "approver");
    let server = Server::start(&env);
    let body = json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing access",
                      "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"}});
    let (status, created) = server.call("POST", "/v1/actions", Some(&requester), Some(&body));
    assert_eq!(status, 201, "{created}");
    let id = created["action"]["id"].as_str().expect("id").to_owned();
    let (status, view) = server.call("POST", &format!("/v1/actions/{id}/approve"), Some(&approver), None);
    assert_eq!((status, view["action"]["state"].as_str()), (200, Some("approved")), "{view}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, view) = server.call("GET", &format!("/v1/actions/{id}"), Some(&requester), None);
        if view["action"]["state"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "not executed in time: {view}\nlog:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server's background sequencer seals everything the server and the CLI wrote.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending = db.run(true, &["SELECT COUNT(*) FROM audit_pending"])[0];
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} entries still unsequenced\nlog:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let sealed = db.run(true, &["SELECT COUNT(*) FROM audit"])[0];
    let verify = json(&env, &["audit", "verify"]);
    assert_eq!(verify["first_break"], serde_json::Value::Null, "{verify}");
    assert_eq!(verify["records"].as_i64(), Some(sealed), "{verify}");
    let trail = db.run(true, &[&format!("SELECT COUNT(*) FROM audit WHERE action_id = '{id}'")])[0];
    assert!(trail >= 4, "suggest, approve, begin and complete are sealed: {trail}");
    // A graceful stop hands the sequencer lease on: no replica would wait for it to expire.
    let leader = "SELECT COUNT(*) FROM leases WHERE name = 'audit-sequencer' AND holder IS NOT NULL";
    assert_eq!(db.run(true, &[leader])[0], 1, "the server led the sequencing");
    let mut server = server;
    server.sigterm();
    assert_eq!(server.wait_exit().0, Some(0), "{}", server.log());
    assert_eq!(db.run(true, &[leader])[0], 0, "the lease was given up at shutdown\n{}", server.log());
    drop(server);

    // A schema newer than the build's is refused by the server, even with --migrate, and by
    // the CLI, naming both versions.
    db.run(true, &["INSERT INTO schema_migrations (version, description) VALUES (99, 'from a newer release')"]);
    let out = Command::new(server_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--listen", "127.0.0.1:0", "--migrate"])
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .output()
        .expect("run the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("99") && stderr.contains("newer"), "{stderr}");
    let run = env.run_as("local:bob", &["list"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("schema version 99, newer than this build supports ("), "{}", run.stderr);
}
