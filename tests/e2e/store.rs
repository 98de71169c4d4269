//! The store commands through the real binaries: `remediate store copy` moves an installation
//! (sqlite to sqlite) with its audit log byte for byte, after which `list`, `show`, `audit
//! verify` and a server authenticating a copied token work on the copy; a tampered source and
//! an occupied target are refused; `remediate migrate` reports versions; a schema newer than
//! the build is refused by the CLI and the server with both versions named; an unreachable
//! PostgreSQL store is reported clearly.

use std::path::Path;
use std::process::Command;

use remediation_e2e::{Env, Run, server_bin};
use serde_json::Value;

use crate::REVOKE_ALICE_ADMINS;
use crate::server::{Server, token};

/// Every audit row as stored: seq, record text, prev_hash, hash.
fn audit_rows(path: &Path) -> Vec<(i64, String, String, String)> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn.prepare("SELECT seq, record_json, prev_hash, hash FROM audit ORDER BY seq").expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// An installation with actions in several states, a principal with a token, and a trail.
pub(crate) fn installation(env: &Env) -> (String, String) {
    env.init_enabled();
    let mut ids = Vec::new();
    for (identity, resource) in [("alice", "admins"), ("bob", "admins"), ("carol", "admins")] {
        let mut args: Vec<&str> = REVOKE_ALICE_ADMINS.to_vec();
        args[6] = identity;
        args[8] = resource;
        let run = env.run_as("local:alice", &args);
        if run.code == 0 {
            ids.push(run.json()["action"]["id"].as_str().expect("id").to_owned());
        }
    }
    assert!(!ids.is_empty(), "at least one suggestion");
    env.expect("local:bob", &["approve", &ids[0]], 0);
    env.expect("local:bob", &["execute", &ids[0]], 0);
    let token = token(env, "copy-svc", "viewer");
    (ids[0].clone(), token)
}

fn copy(env: &Env, from: &Path, to: &Path, code: i32) -> Run {
    let from = format!("sqlite:{}", from.display());
    let to = format!("sqlite:{}", to.display());
    env.expect("local:admin", &["store", "copy", "--from", &from, "--to", &to, "--page-size", "2"], code)
}

pub(crate) fn json(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    env.expect("local:bob", &all, 0).json()
}

#[test]
fn store_copy_moves_an_installation_with_its_audit_log_intact() {
    let env = Env::new();
    let (id, token) = installation(&env);
    let (original, copied) = (env.dir().join("remediation.db"), env.dir().join("copy.db"));
    let before = (json(&env, &["list"]), json(&env, &["show", &id]), json(&env, &["audit", "verify"]));
    let run = copy(&env, &original, &copied, 0);
    assert!(run.stderr.contains("actions: ") && run.stderr.contains("audit: "), "progress on stderr:\n{}", run.stderr);
    assert!(run.stdout.contains("audit log verified on the target"), "{}", run.stdout);
    assert_eq!(audit_rows(&original), audit_rows(&copied), "the audit log, byte for byte");

    // The installation now runs on the copy.
    env.edit_config(|t| format!("{t}\n[store]\npath = \"copy.db\"\n"));
    std::fs::rename(&original, env.dir().join("moved-away.db")).expect("move the original away");
    let after = (json(&env, &["list"]), json(&env, &["show", &id]), json(&env, &["audit", "verify"]));
    assert_eq!(before, after, "list, show and audit verify read the same on the copy");
    assert_eq!(after.2["checkpoint"]["status"], "matches", "{}", after.2);
    assert!(!env.dir().join("remediation.db").exists(), "nothing fell back to the default file");

    // A copied token still authenticates, on a server running on the copy.
    let server = Server::start(&env);
    let (status, body) = server.call("GET", "/v1/actions", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    drop(server);

    // Copying into the now occupied copy is refused (exit 3), and it is left as it was.
    let rows = audit_rows(&copied);
    let run = copy(&env, &env.dir().join("moved-away.db"), &copied, 3);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(audit_rows(&copied), rows);
}

#[test]
fn a_source_whose_audit_log_does_not_verify_is_not_copied() {
    let env = Env::new();
    installation(&env);
    let original = env.dir().join("remediation.db");
    let conn = rusqlite::Connection::open(&original).expect("open");
    conn.execute_batch("DROP TRIGGER audit_no_update;").expect("drop the trigger");
    let edited = conn
        .execute(
            "UPDATE audit SET record_json = replace(record_json, '\"event\":\"', '\"event\":\"x') WHERE seq = 2",
            [],
        )
        .expect("tamper");
    assert_eq!(edited, 1);
    drop(conn);
    let run = copy(&env, &original, &env.dir().join("copy.db"), 6);
    assert!(run.stderr.contains("does not verify"), "{}", run.stderr);
}

/// Sets the SQLite schema version of `path` as a newer release would leave it.
fn set_user_version(path: &Path, version: u32) {
    rusqlite::Connection::open(path).expect("open").pragma_update(None, "user_version", version).expect("pragma");
}

#[test]
fn migrate_reports_versions_and_a_newer_schema_is_refused_by_cli_and_server() {
    let env = Env::new();
    env.init_enabled();
    let report = json(&env, &["migrate"]);
    let current = report["to"].as_u64().expect("to");
    assert_eq!(report["from"].as_u64(), Some(current), "{report}");
    assert!(report["store"].as_str().is_some_and(|s| s.starts_with("sqlite:")), "{report}");

    // A store file left behind by an older release is brought up to date and says so.
    let old = env.dir().join("old.db");
    rusqlite::Connection::open(&old)
        .expect("create")
        .execute_batch("CREATE TABLE placeholder (x INTEGER);")
        .expect("x");
    env.edit_config(|t| format!("{t}\n[store]\npath = \"new.db\"\n"));
    let created = json(&env, &["migrate"]);
    assert_eq!((created["from"].clone(), created["to"].as_u64()), (Value::Null, Some(current)), "{created}");
    env.edit_config(|t| t.replace("path = \"new.db\"", "path = \"remediation.db\""));

    let newer = current + 1;
    set_user_version(&env.dir().join("remediation.db"), u32::try_from(newer).expect("small"));
    let expect_refusal = |text: &str| {
        assert!(
            text.contains(&format!("schema version {newer}")) && text.contains(&format!("({current})")),
            "both versions named:\n{text}"
        );
    };
    for args in [&["list"][..], &["migrate"][..]] {
        let run = env.run_as("local:bob", args);
        assert_ne!(run.code, 0, "{args:?} refused");
        expect_refusal(&run.stderr);
    }
    let out = Command::new(server_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .output()
        .expect("run the server");
    assert!(!out.status.success(), "the server refuses to start");
    expect_refusal(&String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_unreachable_postgres_store_is_reported_clearly() {
    let env = Env::new();
    env.init_enabled();
    // Port 1 on this host: nothing listens there.
    env.edit_config(|t| format!("{t}\n[store]\nurl = \"postgres://remediation@127.0.0.1:1/test?sslmode=disable\"\n"));
    for args in [&["list"][..], &["migrate"][..]] {
        let run = env.run_as("local:bob", args);
        assert_ne!(run.code, 0, "{args:?}");
        assert!(run.stderr.contains("cannot connect to the store at 127.0.0.1:1/test"), "{}", run.stderr);
        assert!(run.stderr.contains("postgres://remediation@127.0.0.1:1/test"), "{}", run.stderr);
    }
    let out = Command::new(server_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--listen", "127.0.0.1:0", "--migrate"])
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .output()
        .expect("run the server");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to the store at 127.0.0.1:1/test"));
    // An insecure store setting is refused before anything is opened, naming its line.
    env.edit_config(|t| t.replace("127.0.0.1:1/test?sslmode=disable", "db.example.com/test?sslmode=require"));
    let run = env.run_as("local:bob", &["list"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("key `store.url`") && run.stderr.contains("does not verify"), "{}", run.stderr);
}
