//! The data directory's hygiene: the directory is owner-only and so is every file the runtime
//! and the store create in it; an audit key kept outside it is the one that seals the store.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]

mod catalog;
#[cfg(feature = "connector-okta")]
mod checks;
mod readme;
mod relay;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use remediation_audit::{AuditKey, CheckpointVerdict};
use remediation_config::{Config, ConnectorConfig};
use remediation_runtime::{LoadedConfig, Runtime, RuntimeOptions, files};
use remediation_testkit::{RequestBuilder, requester};
use secrecy::ExposeSecret as _;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A sandbox installation's configuration.
fn config(dir: &Path) -> Config {
    remediation_connector_sandbox::write_sample(dir.join("sandbox.json")).unwrap();
    Config { connectors: vec![ConnectorConfig::sandbox("sandbox", "sandbox.json")], ..Config::default() }
}

/// Suggests one action, so the store writes its audit chain, WAL and checkpoint.
async fn suggest(runtime: &Runtime) {
    let engine = runtime.active().await.unwrap().engine;
    engine.suggest(RequestBuilder::new().build(), &requester()).await.unwrap();
}

#[tokio::test]
async fn the_data_dir_is_owner_only_and_so_are_the_files_in_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested").join("remediation-data");
    files::create_data_dir(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let runtime = Runtime::build(&config(&dir), &dir, Some(AuditKey::generate()), RuntimeOptions::default()).unwrap();
    suggest(&runtime).await;
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(mode(&path), 0o600, "{} is not owner-only", path.display());
    }
    seen.sort();
    for expected in ["remediation.db", "remediation.db-shm", "remediation.db-wal", "sandbox.json"] {
        assert!(seen.iter().any(|s| s == expected), "{expected} missing from {seen:?}");
    }
}

#[test]
fn writing_a_private_file_narrows_a_wider_mode_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("remediation.toml");
    std::fs::write(&path, "old contents that are longer than the new ones\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    files::write_private(&path, b"new\n").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    // An existing store file is left as it is, contents included.
    files::create_private(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
}

#[tokio::test]
async fn an_audit_key_outside_the_data_dir_seals_the_store() {
    let data = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let key = AuditKey::generate();
    let key_path = secrets.path().join("audit.key");
    files::write_private(&key_path, format!("{}\n", key.to_hex().expose_secret()).as_bytes()).unwrap();
    let mut config = config(data.path());
    config.audit.hmac_key_file = Some(key_path.clone());
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains(&key_path.display().to_string()), "{text}");
    files::write_private(&data.path().join("remediation.toml"), text.as_bytes()).unwrap();

    let loaded = LoadedConfig::discover(None, Some(data.path())).unwrap();
    let from_file = loaded.audit_key().unwrap().expect("the configured key");
    assert_eq!(from_file.to_hex().expose_secret(), key.to_hex().expose_secret());
    let runtime = Runtime::build(&loaded.config, &loaded.dir, Some(from_file), RuntimeOptions::default()).unwrap();
    suggest(&runtime).await;
    let report = runtime.store().verify_audit().await.unwrap();
    assert_eq!((report.records, report.checkpoint), (1, CheckpointVerdict::Matches));
    assert!(!data.path().join("audit.key").exists(), "no key was written into the data directory");
    drop(runtime);

    // The checkpoint was sealed with that key: under another one it does not verify.
    let other =
        Runtime::build(&loaded.config, &loaded.dir, Some(AuditKey::generate()), RuntimeOptions::default()).unwrap();
    let report = other.store().verify_audit().await.unwrap();
    assert_ne!(report.checkpoint, CheckpointVerdict::Matches, "{report:?}");
}

/// The runtime's engine always executes under a lease of `[execution] lease_ttl_secs`: a
/// worker that died after moving an action to `executing` leaves it leased, and another
/// runtime on the same data directory does not take it over while the lease is live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_executes_under_leases_of_the_configured_duration() {
    use remediation_core::{State, failpoints};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    files::create_data_dir(&dir).unwrap();
    let mut config = config(&dir);
    config.policy.enabled = true;
    config.execution.lease_ttl_secs = 600;
    let leased = |failpoint: bool| RuntimeOptions {
        failpoints: failpoint.then(|| {
            std::sync::Arc::new(|name: &'static str| {
                assert_ne!(name, failpoints::AFTER_BEGIN_EXECUTION, "simulated crash");
            }) as remediation_core::FailpointHook
        }),
        ..RuntimeOptions::default()
    };
    let dying = Runtime::build(&config, &dir, None, leased(true)).unwrap();
    let survivor = Runtime::build(&config, &dir, None, leased(false)).unwrap();
    let engine = dying.active().await.unwrap().engine;
    let s = engine.suggest(RequestBuilder::new().build(), &requester()).await.unwrap();
    let id = s.action.id;
    engine.approve(id, &remediation_testkit::approver("bob"), None).await.unwrap();
    let died =
        tokio::spawn(async move { engine.execute(id, &remediation_testkit::approver("bob"), false).await }).await;
    assert!(died.unwrap_err().is_panic());
    let lease = survivor.store().lease(id).await.unwrap().expect("the action is leased");
    assert_eq!(lease.epoch, 1);
    let left = lease.expires_at - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::seconds(500), "the configured 600 s, not the default: {left}");
    let recovered = survivor.active().await.unwrap().engine.recover().await.unwrap();
    assert!(recovered.is_empty(), "a live lease is not taken over: {recovered:?}");
    assert_eq!(survivor.store().get(id).await.unwrap().action.state, State::Executing);
}
