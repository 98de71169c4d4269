//! Managed connections end to end over a runtime on a temporary data directory: secrets at
//! rest, a copied store, wrong keys, rotation under a running runtime, blobs moved between
//! connections, read-only configuration connectors.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use remediation_config::{Config, ConnectorConfig};
use remediation_core::factory::Factory;
use remediation_core::store::ConnectionScope;
use remediation_core::{Actor, AuditFilter, Role};
use remediation_runtime::connections::{RotationEvent, Vault, rotate_master_key};
use remediation_runtime::{Catalog, Runtime, RuntimeOptions};
use remediation_testkit::FakeConnector;
use secrecy::{ExposeSecret as _, SecretString};

use super::*;

const SECRET: &str = "S3CRET-never-shown-7c1f";

/// The secrets the test connector was built with, in build order.
static BUILT_WITH: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// The test connector's settings: where its token is (`{ "sealed": "token" }`).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoConfig {
    /// The token's reference.
    token: serde_json::Value,
}

/// A connector that reads its token through a sealed reference when built, and records it.
static ECHO: Factory<EchoConfig> = Factory::named("secret_echo", "Secret echo", None, |id, config, _context| {
    let name = config.token.get("sealed").and_then(serde_json::Value::as_str).ok_or("token is not { sealed = .. }")?;
    let token = remediation_core::secret_source::sealed(name)?;
    BUILT_WITH.lock().map_err(|_| "poisoned")?.push((id.to_owned(), token.expose_secret().to_owned()));
    Ok(Arc::new(FakeConnector::new(id)))
});

fn admin() -> Actor {
    Actor::new("local:root", Role::Admin)
}

fn config() -> Config {
    Config { connectors: vec![ConnectorConfig::sandbox("sandbox", "directory.json")], ..Config::default() }
}

fn runtime(dir: &Path, config: &Config) -> Runtime {
    let options = RuntimeOptions {
        catalog: Some(Catalog::builtin().with(&ECHO)),
        config_file: Some(dir.join("remediation.toml")),
        ..RuntimeOptions::default()
    };
    Runtime::build(config, dir, None, options).expect("runtime")
}

fn echo(id: &str, secret: &str) -> NewConnection {
    NewConnection {
        id: id.to_owned(),
        type_name: "secret_echo".to_owned(),
        settings: serde_json::json!({"token": {"sealed": "token"}}),
        secrets: BTreeMap::from([("token".to_owned(), SecretString::from(secret.to_owned()))]),
        scope: ConnectionScope::default(),
    }
}

fn last_built(id: &str) -> Option<String> {
    BUILT_WITH.lock().expect("lock").iter().rev().find(|(c, _)| c == id).map(|(_, s)| s.clone())
}

/// Every byte of the store's files, as someone holding a copy of them would read them.
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["remediation.db", "remediation.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn audit_text(runtime: &Runtime) -> String {
    let records = runtime.store().audit_page(&AuditFilter::default(), None, 10_000).await.expect("audit");
    serde_json::to_string(&records).expect("json")
}

#[tokio::test]
async fn secrets_are_ciphertext_at_rest_and_never_shown() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime(dir.path(), &config());
    let view = add_connection(&rt, &admin(), echo("echo-eu", SECRET)).await.expect("add");
    assert_eq!((view.source.as_str(), view.secret_names.as_slice()), ("managed", &["token".to_owned()][..]));
    assert_eq!(last_built("echo-eu").as_deref(), Some(SECRET), "built with the secret, opened from the store");

    // The default master key file was created owner-only.
    let key = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).expect("key file").permissions().mode() & 0o777, 0o600);
    }
    let bytes = store_bytes(dir.path());
    assert!(contains(&bytes, "echo-eu"), "the row is there");
    assert!(!contains(&bytes, SECRET), "the secret's bytes are not in the store's files");

    // Never in a view, its Debug, the listing, the audit log.
    let all = connections(&rt).await.expect("list");
    let shown = format!("{all:?} {}", serde_json::to_string(&all).expect("json"));
    assert!(shown.contains("echo-eu") && !shown.contains(SECRET), "{shown}");
    let audit = audit_text(&rt).await;
    assert!(audit.contains("connection_created") && !audit.contains(SECRET), "{audit}");
    assert!(!audit.contains("ciphertext") && !audit.contains("wrapped_key"), "nor the sealed blob: {audit}");
    let stored = rt.store().connection("echo-eu").await.expect("read").expect("stored");
    assert!(!format!("{stored:?}").contains(SECRET));
}

#[tokio::test]
async fn a_copied_store_without_the_master_key_reveals_nothing_and_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime(dir.path(), &config());
    add_connection(&rt, &admin(), echo("echo-copy", SECRET)).await.expect("add");
    drop(rt);
    let copy = tempfile::tempdir().expect("copy");
    for name in ["remediation.db", "remediation.db-wal", "remediation.db-shm"] {
        if dir.path().join(name).exists() {
            std::fs::copy(dir.path().join(name), copy.path().join(name)).expect("copy");
        }
    }
    assert!(!contains(&store_bytes(copy.path()), SECRET));

    // No key at all: the connection is left out, with why; the others still work.
    let rt = runtime(copy.path(), &config());
    let failures = rt.connection_failures().await.expect("failures");
    let failure = failures.iter().find(|f| f.id == "echo-copy").expect("reported");
    assert!(failure.error.contains("master key") && failure.error.contains("master.key"), "{}", failure.error);
    assert!(!failure.error.contains(SECRET));
    assert!(rt.connectors().await.expect("connectors").iter().any(|c| c.id() == "sandbox"), "the others are built");
    let view = connection(&rt, "echo-copy").await.expect("show");
    assert!(view.error.as_deref().is_some_and(|e| e.contains("master key")), "{view:?}");

    // Another key: refused by its id.
    let other = remediation_vault::MasterKey::generate();
    std::fs::write(copy.path().join("master.key"), other.to_base64().expose_secret()).expect("write key");
    let rt = runtime(copy.path(), &config());
    let failures = rt.connection_failures().await.expect("failures");
    let error = &failures.iter().find(|f| f.id == "echo-copy").expect("reported").error;
    assert!(error.contains("sealed under master key") && error.contains(other.kid()), "{error}");
}

#[tokio::test]
async fn rotation_keeps_a_running_runtime_using_the_connection() {
    let dir = tempfile::tempdir().expect("dir");
    let server = runtime(dir.path(), &config());
    add_connection(&server, &admin(), echo("echo-rot", SECRET)).await.expect("add");
    let old = server.vault().keyring().expect("keyring").current().kid().to_owned();
    assert_eq!(last_built("echo-rot").as_deref(), Some(SECRET));
    BUILT_WITH.lock().expect("lock").retain(|(c, _)| c != "echo-rot");

    // Another process (the CLI) rotates, with its own vault over the same key file.
    let cli = Vault::from_config(&config(), dir.path());
    let mut events = Vec::new();
    let summary =
        rotate_master_key(server.store().as_ref(), &cli, &admin(), server.clock().now(), &mut |e| events.push(e))
            .await
            .expect("rotate");
    assert_eq!((summary.rewrapped, summary.failed.len(), summary.old_keys_dropped), (1, 0, true));
    assert!(matches!(events.first(), Some(RotationEvent::KeyringWritten { .. })), "{events:?}");
    assert_ne!(summary.current_kid, old);
    let text = std::fs::read_to_string(dir.path().join("master.key")).expect("key file");
    assert_eq!(text.lines().count(), 1, "the old key is gone from the file");

    // The running runtime still holds only the old key in memory: it meets the new key id,
    // reads the key file again, and builds the connection with the same secret.
    let connectors = server.connectors().await.expect("connectors");
    assert!(connectors.iter().any(|c| c.id() == "echo-rot"), "{:?}", server.connection_failures().await);
    assert_eq!(last_built("echo-rot").as_deref(), Some(SECRET), "rebuilt after the rewrap, same secret");
    assert_eq!(server.vault().keyring().expect("keyring").current().kid(), summary.current_kid);
    let audit = audit_text(&server).await;
    assert!(audit.contains("connection_secrets_rewrapped") && !audit.contains(SECRET));
}

#[tokio::test]
async fn a_sealed_blob_moved_to_another_connection_does_not_open_there() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime(dir.path(), &config());
    add_connection(&rt, &admin(), echo("echo-a", SECRET)).await.expect("add a");
    add_connection(&rt, &admin(), echo("echo-b", "another-secret")).await.expect("add b");
    let a = rt.store().connection("echo-a").await.expect("read").expect("a");
    let b = rt.store().connection("echo-b").await.expect("read").expect("b");
    let tenant = rt.store().connection_tenant();
    let blob = a.secrets.clone().expect("a has secrets");
    rt.store().replace_sealed(&tenant, "echo-b", b.revision, &blob, &admin(), rt.clock().now()).await.expect("swap");
    let failures = rt.connection_failures().await.expect("failures");
    let error = &failures.iter().find(|f| f.id == "echo-b").expect("b is left out").error;
    assert!(error.contains("fail") && error.contains("echo-b"), "{error}");
    assert!(!error.contains(SECRET));
    let ids: Vec<String> = rt.connectors().await.expect("connectors").iter().map(|c| c.id().to_owned()).collect();
    assert!(ids.contains(&"echo-a".to_owned()) && !ids.contains(&"echo-b".to_owned()), "{ids:?}");
}

#[tokio::test]
async fn configuration_connectors_are_read_only_and_their_ids_taken() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime(dir.path(), &config());
    let taken = add_connection(&rt, &admin(), echo("sandbox", SECRET)).await.expect_err("taken");
    assert!(taken.to_string().contains("configuration file"), "{taken}");
    for result in [
        set_connection_enabled(&rt, &admin(), "sandbox", false).await.map(drop),
        remove_connection(&rt, &admin(), "sandbox").await,
        update_connection(&rt, &admin(), "sandbox", ConnectionChange::default()).await.map(drop),
    ] {
        let e = result.expect_err("read-only").to_string();
        assert!(e.contains("remediation.toml") && e.contains("sandbox"), "{e}");
    }
    let viewer = Actor::new("local:eve", Role::Viewer);
    assert!(add_connection(&rt, &viewer, echo("echo-v", SECRET)).await.is_err(), "admins only");
    let list = connections(&rt).await.expect("list");
    assert_eq!(list.iter().map(|c| (c.id.as_str(), c.source.as_str())).collect::<Vec<_>>(), [("sandbox", "config")]);
}

#[tokio::test]
async fn disabling_removes_the_connector_and_enabling_brings_it_back() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime(dir.path(), &config());
    add_connection(&rt, &admin(), echo("echo-d", SECRET)).await.expect("add");
    let has = |ids: Vec<Arc<dyn remediation_core::Connector>>| ids.iter().any(|c| c.id() == "echo-d");
    assert!(has(rt.connectors().await.expect("connectors")));
    let off = set_connection_enabled(&rt, &admin(), "echo-d", false).await.expect("disable");
    assert!(!off.enabled);
    assert!(!has(rt.connectors().await.expect("connectors")), "a disabled connection is not built");
    set_connection_enabled(&rt, &admin(), "echo-d", true).await.expect("enable");
    assert!(has(rt.connectors().await.expect("connectors")));
    let test = test_connection(&rt, &admin(), "echo-d").await.expect("test");
    assert!(test.healthy, "{test:?}");
    let view = connection(&rt, "echo-d").await.expect("show");
    assert_eq!(view.healthy, Some(true), "the test's outcome is recorded");
    remove_connection(&rt, &admin(), "echo-d").await.expect("remove");
    assert!(!has(rt.connectors().await.expect("connectors")));
    let audit = audit_text(&rt).await;
    for event in ["connection_disabled", "connection_enabled", "connection_deleted"] {
        assert!(audit.contains(event), "{event}");
    }
}

#[tokio::test]
async fn a_managed_connection_cannot_read_the_servers_files_or_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime(dir.path(), &config());
    for settings in [
        serde_json::json!({"token": {"file": "/etc/passwd"}}),
        serde_json::json!({"token": {"env": "REMEDIATION_TOKEN"}}),
        serde_json::json!({"token": {"sealed": "token"}, "password_file": "/etc/shadow"}),
    ] {
        let new = NewConnection { settings: settings.clone(), ..echo("echo-outside", SECRET) };
        let e = add_connection(&rt, &admin(), new).await.expect_err("refused").to_string();
        assert!(e.contains("sealed"), "{settings}: {e}");
    }
}
