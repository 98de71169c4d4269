//! Managed connections in the runtime: the vault that seals and opens their secrets with the
//! master keyring, building them through the catalog inside
//! [`remediation_core::secret_source::with_sealed`], and rotating the master key.
//!
//! Decryption happens only when a connection is built: the opened secrets live for the
//! duration of the factory's `build` and are dropped with it. A connection that cannot be
//! built (a wrong master key, settings that no longer fit) is left out and reported; the
//! others are built.
//!
//! **Rotation.** [`rotate_master_key`] writes the key file with a new key first and the old
//! ones after it (a keyring: the first seals, every one opens), rewraps every connection's
//! data key in every tenant under the new key (compare-and-set on the revision, retried when
//! a connection changed meanwhile), then writes the file with the new key alone. A process
//! that meets a key id it does not hold re-reads the key file once before failing
//! ([`Vault::open`]), so every connection stays usable throughout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use remediation_config::Config;
use remediation_core::factory::BuildContext;
use remediation_core::store::{ConnectionScope, ManagedConnection, SealedConnection};
use remediation_core::{Actor, Connector, Store, StoreError};
use remediation_vault::{Keyring, MasterKey, MasterKeySource, SealedSecrets};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{Catalog, RuntimeError, files};

/// File name of the master key inside the data directory, when `[vault]` names none.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Where a connector comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorSource {
    /// A `[[connectors]]` table of the configuration file (read-only at run time).
    Config,
    /// A managed connection, kept in the store.
    Managed,
}

impl ConnectorSource {
    /// `config` or `managed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Managed => "managed",
        }
    }
}

/// A built connector with where it comes from and its scope: what connector selection and
/// the listing of connections read.
#[derive(Clone)]
pub struct ConnectorEntry {
    /// The connector, without the engine's cache of checks.
    pub connector: Arc<dyn Connector>,
    /// Where it comes from.
    pub source: ConnectorSource,
    /// Its connector type.
    pub type_name: String,
    /// The targets it is meant for.
    pub scope: ConnectionScope,
}

impl std::fmt::Debug for ConnectorEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorEntry")
            .field("id", &self.connector.id())
            .field("source", &self.source)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A managed connection left out because it could not be built, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionFailure {
    /// The connection.
    pub id: String,
    /// Its type.
    pub type_name: String,
    /// Why, with its causes (never a secret).
    pub error: String,
}

/// The master keyring, read from the key file or variable `[vault]` names (default:
/// [`MASTER_KEY_FILE`] in the data directory), kept in memory and re-read once when a sealed
/// blob names a key it does not hold.
pub struct Vault {
    source: MasterKeySource,
    /// The file, when the key is kept in one (the default).
    file: Option<PathBuf>,
    /// Whether the file is the default one, which is created when first needed.
    default_file: bool,
    keyring: Mutex<Option<Arc<Keyring>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Vault {
    /// The vault `[vault]` of `config` describes, with relative file paths from `dir`.
    pub fn from_config(config: &Config, dir: &Path) -> Self {
        let mut source = config.vault.clone();
        let default_file = source.master_key_env.is_none() && source.master_key_file.is_none();
        if default_file {
            source.master_key_file = Some(PathBuf::from(MASTER_KEY_FILE));
        }
        if let Some(file) = &source.master_key_file {
            source.master_key_file = Some(dir.join(file));
        }
        Self { file: source.master_key_file.clone(), source, default_file, keyring: Mutex::new(None) }
    }

    /// The key file, when the master key is kept in one (else it is an environment variable).
    pub fn key_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The environment variable of the master key, when it is kept in one.
    pub fn key_env(&self) -> Option<&str> {
        self.source.master_key_env.as_deref()
    }

    /// The keyring, read once.
    pub fn keyring(&self) -> Result<Arc<Keyring>, RuntimeError> {
        if let Some(ring) = self.keyring.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(ring);
        }
        self.reload()
    }

    /// Reads the keyring again (after a rotation wrote the key file).
    pub fn reload(&self) -> Result<Arc<Keyring>, RuntimeError> {
        let ring = Arc::new(Keyring::load(&self.source).map_err(|source| RuntimeError::Vault { source })?);
        *self.keyring.lock().unwrap_or_else(PoisonError::into_inner) = Some(ring.clone());
        Ok(ring)
    }

    /// The keyring to seal new secrets with; the default key file is created (0600, a fresh
    /// key) when it does not exist yet, with a warning on standard error to back it up.
    pub fn keyring_for_sealing(&self) -> Result<Arc<Keyring>, RuntimeError> {
        if let Some(file) = self.file.as_deref().filter(|f| self.default_file && !f.exists()) {
            let key = MasterKey::generate();
            let mut text = key.to_base64().expose_secret().to_owned();
            text.push('\n');
            write_key_file(file, &text)?;
            eprintln!(
                "created the master key {} (id {}): it seals the secrets of managed connections. Back it up now, \
                 to a secrets manager or offline, never alongside the store's backups: without it no connection's \
                 secrets can be read, and with them anyone holding a store backup could read them.",
                file.display(),
                key.kid()
            );
        }
        self.keyring()
    }

    /// Seals `secrets` of connection `id` of `tenant` under the current key, as the JSON a
    /// store keeps.
    pub fn seal(
        &self,
        tenant: &str,
        id: &str,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<serde_json::Value, RuntimeError> {
        let ring = self.keyring_for_sealing()?;
        let sealed = ring.seal(tenant, id, secrets).map_err(|source| RuntimeError::Vault { source })?;
        serde_json::to_value(&sealed).map_err(|e| RuntimeError::SealedFormat { id: id.to_owned(), why: e.to_string() })
    }

    /// Opens the sealed secrets `sealed` (a store's JSON) of connection `id` of `tenant`. When
    /// the keyring lacks the key they name, the key file is read again once (a rotation may
    /// have replaced it) before failing with [`remediation_vault::VaultError::WrongMasterKey`].
    pub fn open(
        &self,
        tenant: &str,
        id: &str,
        sealed: &serde_json::Value,
    ) -> Result<BTreeMap<String, SecretString>, RuntimeError> {
        let sealed: SealedSecrets = serde_json::from_value(sealed.clone())
            .map_err(|_| RuntimeError::SealedFormat { id: id.to_owned(), why: "not the vault's format".to_owned() })?;
        let ring = self.keyring()?;
        let ring = if ring.get(sealed.kid()).is_none() { self.reload()? } else { ring };
        ring.open(tenant, id, &sealed).map_err(|source| RuntimeError::Vault { source })
    }
}

/// Writes the key file atomically: a temporary file (0600) beside it, synced, renamed over it.
pub fn write_key_file(path: &Path, text: &str) -> Result<(), RuntimeError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    files::write_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path).map_err(|source| RuntimeError::PrivateFile { path: path.to_owned(), source })?;
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        // The rename is durable once the directory is synced; a failure leaves the old name.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Builds managed connection `c` of `tenant` through `catalog`: its secrets opened with the
/// vault and readable through `{ sealed = "name" }` only during the factory's build.
pub fn build_managed(
    catalog: &Catalog,
    vault: &Vault,
    tenant: &str,
    c: &ManagedConnection,
    context: &BuildContext,
) -> Result<Arc<dyn Connector>, RuntimeError> {
    let secrets = match &c.secrets {
        Some(sealed) => vault.open(tenant, &c.id, sealed)?,
        None => BTreeMap::new(),
    };
    remediation_core::secret_source::with_sealed(&secrets, || {
        catalog.build_settings(&c.type_name, &c.id, &c.settings, context)
    })
}

/// One step of a rotation, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationEvent {
    /// The key file now holds the new key first, the old ones after it.
    KeyringWritten {
        /// The new key's id.
        new_kid: String,
        /// The old keys' ids.
        old_kids: Vec<String>,
    },
    /// A connection's data key is wrapped under the new key.
    Rewrapped {
        /// The tenant.
        tenant: String,
        /// The connection.
        id: String,
    },
    /// A connection was already under the current key.
    AlreadyCurrent {
        /// The tenant.
        tenant: String,
        /// The connection.
        id: String,
    },
    /// A connection could not be rewrapped.
    Failed {
        /// The tenant.
        tenant: String,
        /// The connection.
        id: String,
        /// Why.
        error: String,
    },
    /// The key file now holds the new key alone.
    OldKeysDropped,
}

/// What a rotation or rewrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotationSummary {
    /// The key that seals now.
    pub current_kid: String,
    /// Connections rewrapped under it.
    pub rewrapped: u64,
    /// Connections already under it.
    pub already_current: u64,
    /// Connections that could not be rewrapped (the old keys stay in the file then).
    pub failed: Vec<ConnectionFailure>,
    /// Whether the old keys were dropped from the key file.
    pub old_keys_dropped: bool,
}

/// How often a connection changed meanwhile is read again and retried.
const RETRIES: usize = 5;

/// Rewraps the data key of every sealed connection in every tenant under the keyring's
/// current key, compare-and-set on each revision (a connection changed meanwhile is read again
/// and retried).
pub async fn rewrap_all(
    store: &dyn Store,
    ring: &Keyring,
    actor: &Actor,
    at: time::OffsetDateTime,
    progress: &mut dyn FnMut(RotationEvent),
) -> Result<RotationSummary, RuntimeError> {
    let mut summary = RotationSummary { current_kid: ring.current().kid().to_owned(), ..RotationSummary::default() };
    for first in store.all_sealed_connections().await.map_err(RuntimeError::Store)? {
        let (tenant, id) = (first.tenant.clone(), first.id.clone());
        let mut entry = Some(first);
        let mut outcome = Err("changed on every attempt".to_owned());
        for _ in 0..RETRIES {
            let Some(sealed) = entry.take() else { break };
            match rewrap_one(store, ring, &sealed, actor, at).await {
                Ok(done) => {
                    outcome = Ok(done);
                    break;
                }
                Err(RuntimeError::Connection(StoreError::ConnectionChanged { .. })) => {
                    let again = store.all_sealed_connections().await.map_err(RuntimeError::Store)?;
                    entry = again.into_iter().find(|s| s.tenant == tenant && s.id == id);
                    if entry.is_none() {
                        // Deleted, or its secrets removed, meanwhile: nothing to rewrap.
                        outcome = Ok(false);
                        break;
                    }
                }
                Err(e) => {
                    outcome = Err(crate::error::chain(&e));
                    break;
                }
            }
        }
        match outcome {
            Ok(true) => {
                summary.rewrapped += 1;
                progress(RotationEvent::Rewrapped { tenant, id });
            }
            Ok(false) => {
                summary.already_current += 1;
                progress(RotationEvent::AlreadyCurrent { tenant, id });
            }
            Err(error) => {
                progress(RotationEvent::Failed { tenant: tenant.clone(), id: id.clone(), error: error.clone() });
                summary.failed.push(ConnectionFailure {
                    id: format!("{tenant}/{id}"),
                    type_name: String::new(),
                    error,
                });
            }
        }
    }
    Ok(summary)
}

/// `Ok(true)` when rewrapped, `Ok(false)` when already under the current key.
async fn rewrap_one(
    store: &dyn Store,
    ring: &Keyring,
    sealed: &SealedConnection,
    actor: &Actor,
    at: time::OffsetDateTime,
) -> Result<bool, RuntimeError> {
    let blob: SealedSecrets = serde_json::from_value(sealed.secrets.clone())
        .map_err(|_| RuntimeError::SealedFormat { id: sealed.id.clone(), why: "not the vault's format".to_owned() })?;
    if blob.kid() == ring.current().kid() {
        return Ok(false);
    }
    let rewrapped = ring.rewrap(&sealed.tenant, &sealed.id, &blob).map_err(|source| RuntimeError::Vault { source })?;
    let json = serde_json::to_value(&rewrapped)
        .map_err(|e| RuntimeError::SealedFormat { id: sealed.id.clone(), why: e.to_string() })?;
    // Through the connection's own tenant's handle, so the record lands in that tenant's log.
    let tenant = remediation_core::TenantId::new(&sealed.tenant)
        .map_err(|e| RuntimeError::SealedFormat { id: sealed.id.clone(), why: e.to_string() })?;
    store
        .for_tenant(&tenant)
        .replace_sealed(&sealed.tenant, &sealed.id, sealed.revision, &json, actor, at)
        .await
        .map_err(RuntimeError::Store)?;
    Ok(true)
}

/// Rotates the master key kept in the vault's file: writes the new key first and the old ones
/// after it, rewraps every connection in every tenant, then drops the old keys from the file
/// (only when every connection was rewrapped). Refused for a master key kept in an environment
/// variable ([`RuntimeError::RotateEnvKey`]).
pub async fn rotate_master_key(
    store: &dyn Store,
    vault: &Vault,
    actor: &Actor,
    at: time::OffsetDateTime,
    progress: &mut dyn FnMut(RotationEvent),
) -> Result<RotationSummary, RuntimeError> {
    let Some(file) = vault.key_file().map(Path::to_path_buf) else {
        return Err(RuntimeError::RotateEnvKey { var: vault.key_env().unwrap_or_default().to_owned() });
    };
    let old = vault.keyring_for_sealing()?;
    let new = MasterKey::generate();
    let new_kid = new.kid().to_owned();
    let old_kids: Vec<String> = old.kids().into_iter().map(str::to_owned).collect();
    let ring = old.rotated(new);
    write_key_file(&file, ring.to_text().expose_secret())?;
    progress(RotationEvent::KeyringWritten { new_kid, old_kids });
    let ring = vault.reload()?;
    let mut summary = rewrap_all(store, &ring, actor, at, progress).await?;
    if summary.failed.is_empty() {
        write_key_file(&file, ring.current_only().to_text().expose_secret())?;
        vault.reload()?;
        summary.old_keys_dropped = true;
        progress(RotationEvent::OldKeysDropped);
    }
    Ok(summary)
}

/// Why `id` cannot be a new managed connection's id: not well formed, or a connector of the
/// configuration file has it.
pub fn check_new_id(config_ids: &[String], id: &str, config_file: &Path) -> Result<(), RuntimeError> {
    remediation_core::store::check_connection_id(id).map_err(|why| RuntimeError::ConnectionId { why })?;
    if config_ids.iter().any(|c| c == id) {
        return Err(RuntimeError::Connection(StoreError::ConnectionConflict {
            message: format!(
                "connector `{id}` is defined in the configuration file {}; choose another id",
                config_file.display()
            ),
        }));
    }
    Ok(())
}
