//! Assembles a remediation [`Engine`] from the configuration file and the data directory, so
//! the CLI (`remediate`) and the server (`remediation-server`) build it the same way: the
//! store opened with its audit key, the policy settings (from the store once changed, else the
//! configuration), `Pipeline::standard`, the configured connectors and an event sink.
//!
//! The data directory is owner-only: [`files::create_data_dir`] makes it 0700 and every file
//! the runtime creates in it is 0600.
//!
//! A long-running process calls [`Runtime::active`] before each unit of work: when the policy
//! settings kept in the store changed (by `PATCH /v1/settings` or `remediate settings set`),
//! the engine is rebuilt with them.
//!
//! ```
//! use remediation_runtime::{Runtime, RuntimeOptions};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let config: remediation_config::Config = toml_free_config();
//! let runtime = Runtime::build(&config, dir.path(), None, RuntimeOptions::default())?;
//! let active = runtime.active().await?;
//! assert_eq!(active.source, remediation_runtime::SettingsSource::Config);
//! assert!(!active.settings.enabled, "remediation starts disabled");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # fn toml_free_config() -> remediation_config::Config { remediation_config::Config::default() }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod access;
pub mod catalog;
pub mod connections;
pub mod earned;
mod error;
pub mod files;
pub mod relay;
pub mod store;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use remediation_audit::AuditKey;
use remediation_config::Config;
use remediation_core::factory::BuildContext;
use remediation_core::store::prelude::*;
use remediation_core::{CachedChecks, Clock, Connector, Engine, EngineParts, FailpointHook, SystemClock, TenantId};
use remediation_gates::{Pipeline, PolicySettings};
use remediation_limiter::Limits;

pub use catalog::Catalog;
pub use error::RuntimeError;

/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "remediation.db";
/// File name of the event log (admin notifications) inside the data directory.
pub const EVENTS_FILE: &str = "events.jsonl";
/// File name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "remediation.toml";
/// File name of the audit checkpoint key that `init` and `demo` create in the data directory.
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// File name of the tree head signing key that `init` creates in the data directory.
pub const SIGNING_KEY_FILE: &str = "audit-signing.key";
/// The data directory used when neither `--data-dir` nor the configuration names one.
pub const DEFAULT_DATA_DIR: &str = "remediation-data";

/// A configuration file found and loaded, with the data directory it designates.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// The file it was read from.
    pub path: PathBuf,
    /// The data directory.
    pub dir: PathBuf,
}

impl LoadedConfig {
    /// The default discovery both binaries share: with `config`, that file, and the data
    /// directory `data_dir`, else the file's `data_dir` (relative to the file), else
    /// `remediation-data`; without `config`, `remediation.toml` inside the data directory.
    pub fn discover(config: Option<&Path>, data_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        let fallback = || data_dir.map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), Path::to_path_buf);
        match config {
            Some(path) => {
                let config = Config::load_with(path, Catalog::builtin().factories()).map_err(Box::new)?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let dir = data_dir
                    .map(Path::to_path_buf)
                    .or_else(|| config.data_dir.as_ref().map(|d| base.join(d)))
                    .unwrap_or_else(fallback);
                Ok(Self { config, path: path.to_owned(), dir })
            }
            None => {
                let dir = fallback();
                let path = dir.join(CONFIG_FILE);
                Ok(Self {
                    config: Config::load_with(&path, Catalog::builtin().factories()).map_err(Box::new)?,
                    path,
                    dir,
                })
            }
        }
    }

    /// The audit checkpoint key named by the configuration, if any. A missing data directory
    /// yields `None`, so that [`Runtime::build`] reports it (and says to run `init`).
    pub fn audit_key(&self) -> Result<Option<AuditKey>, RuntimeError> {
        if !self.dir.is_dir() {
            return Ok(None);
        }
        Ok(self.config.audit.load_key(&self.path, &self.dir).map_err(Box::new)?)
    }
}

impl LoadedConfig {
    /// The tree head signing key named by the configuration (`[audit] signing_key`), if any.
    /// A missing data directory yields `None`, so that [`Runtime::build`] reports it.
    pub fn signing_key(&self) -> Result<Option<remediation_audit::LogSigningKey>, RuntimeError> {
        if !self.dir.is_dir() {
            return Ok(None);
        }
        Ok(self.config.audit.load_signing_key(&self.path, &self.dir).map_err(Box::new)?)
    }
}

/// Where the policy settings in force come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsSource {
    /// The configuration file (the seed; nothing was changed since).
    Config,
    /// The store (changed with `settings set` or `PATCH /v1/settings`).
    Store,
}

impl SettingsSource {
    /// `config` or `store`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Store => "store",
        }
    }
}

/// Optional parts of a [`Runtime`].
#[derive(Clone, Default)]
pub struct RuntimeOptions {
    /// Event and audit sinks of the caller's own, delivered to by the relay besides those of
    /// `[events]` (such as the command line's `events.jsonl`).
    pub sinks: Vec<relay::RelaySink>,
    /// How the relay paces itself; `None`: `[events.relay]` of the configuration.
    pub relay: Option<relay::RelayOptions>,
    /// A hook called at the engine's named failpoints (crash tests).
    pub failpoints: Option<FailpointHook>,
    /// The clock (default: the system clock).
    pub clock: Option<Arc<dyn Clock>>,
    /// The connector types (default: [`Catalog::builtin`]).
    pub catalog: Option<Catalog>,
    /// How long the leases last under which the engine executes and rolls back (see
    /// [`remediation_core::Engine::with_leases`]); they are held by a worker id unique to this
    /// runtime, and recovery takes over only actions whose lease expired, so any number of
    /// processes may execute on one data directory. `None` (the default): `[execution]
    /// lease_ttl_secs` of the configuration.
    pub lease_ttl: Option<std::time::Duration>,
    /// The configuration file the binary loaded, named in errors about its connectors (which
    /// are read-only at run time).
    pub config_file: Option<PathBuf>,
    /// The store, opened already with [`store::open`] (as the binaries do, so a PostgreSQL
    /// store can be connected asynchronously). `None`: the SQLite store `[store]` names (by
    /// default `remediation.db` in the data directory), opened here.
    pub store: Option<Arc<dyn Store>>,
    /// The key that signs tree heads of the verifiable audit log (`[audit] signing_key`);
    /// `None`: no head is signed.
    pub signing_key: Option<Arc<remediation_audit::LogSigningKey>>,
}

/// The engine in force, with the settings it was built from.
#[derive(Clone)]
pub struct Active {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The policy settings it enforces.
    pub settings: PolicySettings,
    /// Where they come from.
    pub source: SettingsSource,
}

/// The parts an engine is assembled from.
#[derive(Clone)]
struct Parts {
    store: Arc<dyn Store>,
    /// The configuration file's connectors as built, for operator checks that must reach the
    /// provider now.
    connectors: Vec<connections::ConnectorEntry>,
    /// The same connectors with their health and permission checks cached, for the engine.
    checked: Vec<Arc<dyn Connector>>,
    /// The connector types, which build managed connections too.
    catalog: Catalog,
    /// What a factory may use.
    context: BuildContext,
    /// The master keyring that opens managed connections' secrets.
    vault: Arc<connections::Vault>,
    /// The configuration file, when the binary named it (for errors about its connectors).
    config_file: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    seed: PolicySettings,
    failpoints: Option<FailpointHook>,
    confirmation_window: time::Duration,
    lease: remediation_core::LeaseRequest,
}

/// The tenant's enabled managed connections as built at one connections revision.
#[derive(Default)]
struct ManagedSet {
    /// Each built connection: its id and revision, the uncached entry, the cached connector.
    built: Vec<(String, u64, connections::ConnectorEntry, Arc<dyn Connector>)>,
    /// The enabled connections left out, and why.
    failures: Vec<connections::ConnectionFailure>,
}

/// What the active engine was built from, and it.
struct Current {
    /// The settings document (`None`: the seed).
    settings: Option<serde_json::Value>,
    /// The connections revision (`None`: not read yet).
    revision: Option<u64>,
    /// The managed connections built at that revision.
    managed: Arc<ManagedSet>,
    /// The engine.
    active: Active,
}

impl Parts {
    /// Builds the enabled managed connections of the tenant, reusing those of `previous` whose
    /// revision is unchanged; one that cannot be built is left out and reported.
    async fn load_managed(&self, previous: &ManagedSet) -> Result<ManagedSet, RuntimeError> {
        let stored = self.store.connections().await.map_err(RuntimeError::Connection)?;
        let tenant = self.store.connection_tenant();
        let mut set = ManagedSet::default();
        for c in stored.into_iter().filter(|c| c.enabled) {
            if self.connectors.iter().any(|e| e.connector.id() == c.id) {
                set.failures.push(connections::ConnectionFailure {
                    id: c.id.clone(),
                    type_name: c.type_name.clone(),
                    error: format!("the configuration file defines a connector `{}` too; it is used instead", c.id),
                });
                continue;
            }
            if let Some(reused) = previous.built.iter().find(|b| b.0 == c.id && b.1 == c.revision) {
                set.built.push(reused.clone());
                continue;
            }
            match connections::build_managed(&self.catalog, &self.vault, &tenant, &c, &self.context) {
                Ok(connector) => {
                    let ttl = time::Duration::seconds(60);
                    let checked = Arc::new(CachedChecks::new(connector.clone(), self.clock.clone(), ttl));
                    let entry = connections::ConnectorEntry {
                        connector,
                        source: connections::ConnectorSource::Managed,
                        type_name: c.type_name.clone(),
                        scope: c.scope.clone(),
                    };
                    set.built.push((c.id.clone(), c.revision, entry, checked));
                }
                Err(e) => set.failures.push(connections::ConnectionFailure {
                    id: c.id.clone(),
                    type_name: c.type_name.clone(),
                    error: error::chain(&e),
                }),
            }
        }
        Ok(set)
    }

    fn assemble(&self, stored: Option<serde_json::Value>, managed: &ManagedSet) -> Result<Active, RuntimeError> {
        let (settings, source) = match stored {
            // Settings stored by an earlier version are migrated as they are read (a control
            // override without a scope becomes lower-only); the next change stores them so.
            Some(v) => {
                (PolicySettings::from_stored(v).map_err(RuntimeError::SettingsUnreadable)?.0, SettingsSource::Store)
            }
            None => (self.seed.clone(), SettingsSource::Config),
        };
        let policy = Pipeline::standard(settings.clone()).map_err(RuntimeError::Settings)?;
        let mut engine = Engine::new(EngineParts {
            store: self.store.clone(),
            connectors: self.checked.iter().cloned().chain(managed.built.iter().map(|b| b.3.clone())).collect(),
            clock: self.clock.clone(),
            policy: Arc::new(policy),
            limits: Arc::new(self.limits.clone()),
        });
        if let Some(hook) = &self.failpoints {
            engine = engine.with_failpoints(hook.clone());
        }
        engine = engine.with_leases(self.lease.clone());
        Ok(Active { engine: Arc::new(engine), settings, source })
    }
}

/// A connector of the configuration, built, with the tenant it belongs to.
struct OwnedConnector {
    tenant: TenantId,
    entry: connections::ConnectorEntry,
    checked: Arc<dyn Connector>,
}

/// The connectors of `tenant`: as built, and with their checks cached.
#[allow(clippy::type_complexity, reason = "two parallel lists, as the parts keep them")]
fn owned_by(
    owned: &[OwnedConnector],
    tenant: &TenantId,
) -> (Vec<connections::ConnectorEntry>, Vec<Arc<dyn Connector>>) {
    owned.iter().filter(|o| &o.tenant == tenant).map(|o| (o.entry.clone(), o.checked.clone())).unzip()
}

/// What the runtimes of one installation's tenants share.
struct Family {
    /// The configuration the installation's runtime was built from.
    config: Config,
    /// Every connector of the configuration, built once.
    connectors: Vec<OwnedConnector>,
    /// The runtimes of the tenants other than the default one, once asked for.
    members: Mutex<std::collections::BTreeMap<TenantId, Arc<Runtime>>>,
    /// The default tenant's runtime, once it was asked for another tenant.
    base: Mutex<std::sync::Weak<Runtime>>,
}

/// An assembled engine and its parts, for one data directory.
pub struct Runtime {
    dir: PathBuf,
    parts: Parts,
    /// The tenant whose engine this is.
    tenant: TenantId,
    /// What the runtimes of the installation's tenants share.
    family: Arc<Family>,
    /// The tree head signing key, replaced in place by a key rotation (the installation's
    /// one key, shared by every tenant's runtime).
    signer: Arc<Mutex<Option<Arc<remediation_audit::LogSigningKey>>>>,
    /// The hashes of the audit log's complete aligned subtrees, read once and extended as
    /// the log grows, so signing a head and proving a record cost O(log n), not a read of
    /// every leaf.
    subtrees: tokio::sync::Mutex<remediation_audit::SubtreeCache>,
    /// What the active engine was built from (settings, connections) and it.
    current: Mutex<Current>,
    /// Delivers the audit log to every event and audit sink.
    relay: Arc<relay::Relay>,
}

/// A lease holder id unique to this runtime: the process id and the instant it was built.
fn worker_id() -> String {
    format!("pid{}@{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos())
}

impl Runtime {
    /// Builds the engine for `config` on the data directory `dir`; `key` seals the audit
    /// checkpoint of the store opened here (unused when [`RuntimeOptions::store`] brings one).
    ///
    /// The configuration seeds the policy settings; once they have been changed, the copy in
    /// the store is authoritative (see [`Runtime::active`]). Call [`Runtime::active`] for the
    /// engine: it reads which settings are in force.
    pub fn build(
        config: &Config,
        dir: &Path,
        key: Option<AuditKey>,
        options: RuntimeOptions,
    ) -> Result<Self, RuntimeError> {
        if !dir.is_dir() {
            return Err(RuntimeError::DataDirMissing { dir: dir.to_owned() });
        }
        let store = match options.store {
            Some(store) => store,
            None => match store::target(config)? {
                // Created before SQLite sees it, so it and its -wal and -shm files are owner-only.
                remediation_config::StoreTarget::Sqlite { path } => {
                    let store: Arc<dyn Store> = store::open_sqlite(dir, &path, key)?;
                    store
                }
                remediation_config::StoreTarget::Postgres(pg) => {
                    return Err(RuntimeError::StoreNotOpened { url: pg.url() });
                }
            },
        };
        let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let context =
            BuildContext { data_dir: dir.to_owned(), clock: clock.clone(), failpoints: options.failpoints.clone() };
        let catalog = options.catalog.unwrap_or_default();
        let built = catalog.build_all(&config.connectors, &context)?;
        let owned: Vec<OwnedConnector> = built
            .into_iter()
            .zip(&config.connectors)
            .map(|(connector, c)| {
                let ttl = time::Duration::try_from(c.check_ttl()).unwrap_or(time::Duration::MAX);
                let checked = Arc::new(CachedChecks::new(connector.clone(), clock.clone(), ttl)) as Arc<dyn Connector>;
                let entry = connections::ConnectorEntry {
                    connector,
                    source: connections::ConnectorSource::Config,
                    type_name: c.type_name().to_owned(),
                    scope: c
                        .scope()
                        .map_err(|message| RuntimeError::ConnectorScope { id: c.id().to_owned(), message })?,
                };
                Ok(OwnedConnector { tenant: c.tenant.clone().unwrap_or_default(), entry, checked })
            })
            .collect::<Result<_, RuntimeError>>()?;
        let tenant = store.tenant_id();
        let (connectors, checked) = owned_by(&owned, &tenant);
        let parts = Parts {
            store,
            connectors,
            checked,
            catalog,
            context,
            vault: Arc::new(connections::Vault::from_config(config, dir)),
            config_file: options.config_file,
            clock,
            limits: config.limits.clone(),
            seed: config.policy.clone(),
            failpoints: options.failpoints,
            lease: remediation_core::LeaseRequest {
                holder: worker_id(),
                ttl: options.lease_ttl.unwrap_or_else(|| config.execution.lease_ttl()),
            },
            confirmation_window: time::Duration::seconds(
                i64::try_from(config.actors.confirmation_window_secs).unwrap_or(i64::MAX).max(60),
            ),
        };
        let managed = Arc::new(ManagedSet::default());
        let active = parts.assemble(None, &managed)?;
        let mut sinks = options.sinks;
        sinks.extend(sinks_from_config(config, dir)?);
        check_sink_names(&sinks)?;
        let relay_options = options.relay.unwrap_or_else(|| relay_options(config));
        let mut relay = relay::Relay::new(parts.store.clone(), sinks, parts.clock.clone(), parts.lease.holder.clone())
            .with_options(relay_options);
        if let Some(hook) = &parts.failpoints {
            relay = relay.with_failpoints(hook.clone());
        }
        let family = Arc::new(Family {
            config: config.clone(),
            connectors: owned,
            members: Mutex::new(std::collections::BTreeMap::new()),
            base: Mutex::new(std::sync::Weak::new()),
        });
        Ok(Self {
            relay: Arc::new(relay),
            dir: dir.to_owned(),
            parts,
            tenant,
            family,
            signer: Arc::new(Mutex::new(options.signing_key)),
            subtrees: tokio::sync::Mutex::new(remediation_audit::SubtreeCache::new()),
            current: Mutex::new(Current { settings: None, revision: None, managed, active }),
        })
    }

    /// The tenant whose engine this runtime assembles.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The runtime of `tenant`, sharing this one's store, connectors of the configuration
    /// (those whose `tenant` is it), clock, signing key and options, with its own engine,
    /// settings and relay; built on first use and kept. [`RuntimeError::UnknownTenant`] when
    /// the tenant was never created. Call it on the installation's runtime (the one
    /// [`Runtime::build`] made); another tenant's runtime answers for itself and, once the
    /// installation's runtime was asked for any tenant, for the others too.
    pub async fn for_tenant(self: &Arc<Self>, tenant: &TenantId) -> Result<Arc<Runtime>, RuntimeError> {
        if self.family.members.lock().unwrap_or_else(PoisonError::into_inner).is_empty() && self.tenant.is_default() {
            *self.family.base.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(self);
        }
        if tenant == &self.tenant {
            return Ok(self.clone());
        }
        if tenant.is_default() {
            let base = self.family.base.lock().unwrap_or_else(PoisonError::into_inner).upgrade();
            return base.ok_or_else(|| RuntimeError::UnknownTenant { tenant: tenant.to_string() });
        }
        if let Some(found) = self.family.members.lock().unwrap_or_else(PoisonError::into_inner).get(tenant) {
            return Ok(found.clone());
        }
        if self.parts.store.tenant(tenant).await.map_err(RuntimeError::Store)?.is_none() {
            return Err(RuntimeError::UnknownTenant { tenant: tenant.to_string() });
        }
        let built = Arc::new(self.sibling(tenant)?);
        let mut members = self.family.members.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(members.entry(tenant.clone()).or_insert(built).clone())
    }

    /// The runtime of every tenant of the installation, the default one first (for the jobs a
    /// server runs for all of them: the worker, the relay, signing tree heads).
    pub async fn tenant_runtimes(self: &Arc<Self>) -> Result<Vec<Arc<Runtime>>, RuntimeError> {
        let mut out = Vec::new();
        for tenant in self.parts.store.tenants().await.map_err(RuntimeError::Store)? {
            match self.for_tenant(&tenant.name).await {
                Ok(runtime) => out.push(runtime),
                // Created since the list was read by another process, or gone: next time.
                Err(RuntimeError::UnknownTenant { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A runtime like this one for `tenant`.
    fn sibling(&self, tenant: &TenantId) -> Result<Runtime, RuntimeError> {
        let (connectors, checked) = owned_by(&self.family.connectors, tenant);
        let parts = Parts { store: self.parts.store.for_tenant(tenant), connectors, checked, ..self.parts.clone() };
        let managed = Arc::new(ManagedSet::default());
        let active = parts.assemble(None, &managed)?;
        let sinks = sinks_from_config(&self.family.config, &self.dir)?;
        let mut relay = relay::Relay::new(parts.store.clone(), sinks, parts.clock.clone(), parts.lease.holder.clone())
            .with_options(relay_options(&self.family.config));
        if let Some(hook) = &parts.failpoints {
            relay = relay.with_failpoints(hook.clone());
        }
        Ok(Runtime {
            dir: self.dir.clone(),
            parts,
            tenant: tenant.clone(),
            family: self.family.clone(),
            signer: self.signer.clone(),
            subtrees: tokio::sync::Mutex::new(remediation_audit::SubtreeCache::new()),
            current: Mutex::new(Current { settings: None, revision: None, managed, active }),
            relay: Arc::new(relay),
        })
    }

    /// The engine in force: rebuilt when the policy settings kept in the store differ from
    /// those the current engine was built with, or when the tenant's managed connections
    /// changed (their revision moved): two cheap store reads.
    pub async fn active(&self) -> Result<Active, RuntimeError> {
        let state = self.parts.store.safety_state().await.map_err(RuntimeError::Store)?;
        let revision = self.parts.store.connections_revision().await.map_err(RuntimeError::Connection)?;
        let (same_settings, same_revision, previous) = {
            let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            (current.settings == state.settings, current.revision == Some(revision), current.managed.clone())
        };
        if same_settings && same_revision {
            return Ok(self.current.lock().unwrap_or_else(PoisonError::into_inner).active.clone());
        }
        let managed =
            if same_revision { previous } else { Arc::new(self.parts.load_managed(previous.as_ref()).await?) };
        let active = self.parts.assemble(state.settings.clone(), &managed)?;
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *current = Current { settings: state.settings, revision: Some(revision), managed, active: active.clone() };
        Ok(active)
    }

    /// Refuses policy settings seeded from the configuration file (nothing changed them in
    /// the store yet) that set a control override to `auto` without the record that earns it
    /// (see [`earned`]) and without a `promotion_override_reason`: both binaries call this at
    /// start, so a file cannot bypass the rule that settings changes enforce. Settings kept in
    /// the store were judged when they were changed, and are not judged again here.
    pub async fn check_seeded_promotions(&self) -> Result<(), RuntimeError> {
        let active = self.active().await?;
        if active.source != SettingsSource::Config {
            return Ok(());
        }
        for (id, control) in &active.settings.controls {
            let overridden = control.promotion_override_reason.as_deref().is_some_and(|r| !r.trim().is_empty());
            if control.mode != Some(remediation_core::Mode::Auto) || overridden {
                continue;
            }
            let record =
                earned::control_record(self.store().as_ref(), id, control, &active.settings, self.clock().now())
                    .await
                    .map_err(RuntimeError::Store)?;
            if let Some(why) = record.why_not {
                return Err(RuntimeError::UnearnedAuto { control: id.clone(), record: why });
            }
        }
        Ok(())
    }

    /// How long a change waiting for a second admin stays open (`[actors]
    /// confirmation_window_secs`, at least a minute).
    pub fn confirmation_window(&self) -> time::Duration {
        self.parts.confirmation_window
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store, every concern of it (the embedded SQLite store of the data directory).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.parts.store
    }

    /// Every connector in force, the configuration file's and the tenant's enabled managed
    /// connections (brought up to date first), without the engine's cache of health and
    /// permission checks: what an operator's explicit check (`remediate connectors check`)
    /// calls, so it always reaches the provider.
    pub async fn connectors(&self) -> Result<Vec<Arc<dyn Connector>>, RuntimeError> {
        Ok(self.connector_entries().await?.into_iter().map(|e| e.connector).collect())
    }

    /// As [`Runtime::connectors`], each with where it comes from and its scope (what
    /// connector selection reads).
    pub async fn connector_entries(&self) -> Result<Vec<connections::ConnectorEntry>, RuntimeError> {
        self.active().await?;
        let managed = self.current.lock().unwrap_or_else(PoisonError::into_inner).managed.clone();
        Ok(self.parts.connectors.iter().cloned().chain(managed.built.iter().map(|b| b.2.clone())).collect())
    }

    /// The enabled managed connections that could not be built, and why (brought up to date
    /// first).
    pub async fn connection_failures(&self) -> Result<Vec<connections::ConnectionFailure>, RuntimeError> {
        self.active().await?;
        Ok(self.current.lock().unwrap_or_else(PoisonError::into_inner).managed.failures.clone())
    }

    /// The ids of the configuration file's connectors (read-only at run time).
    pub fn config_connector_ids(&self) -> Vec<String> {
        self.parts.connectors.iter().map(|e| e.connector.id().to_owned()).collect()
    }

    /// The configuration file, when the binary named it ([`RuntimeOptions::config_file`]).
    pub fn config_file(&self) -> Option<&Path> {
        self.parts.config_file.as_deref()
    }

    /// The master keyring of managed connections' secrets.
    pub fn vault(&self) -> &Arc<connections::Vault> {
        &self.parts.vault
    }

    /// The connector types.
    pub fn catalog(&self) -> &Catalog {
        &self.parts.catalog
    }

    /// What a connector factory may use (the data directory, the clock).
    pub fn build_context(&self) -> &BuildContext {
        &self.parts.context
    }

    /// The blast-radius limits in force.
    pub fn limits(&self) -> &Limits {
        &self.parts.limits
    }

    /// The relay that delivers the audit log to every event and audit sink: the server runs
    /// it ([`relay::Relay::run`]); the command line flushes it at the end of each command.
    pub fn relay(&self) -> &Arc<relay::Relay> {
        &self.relay
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.parts.clock
    }

    /// Calls the failpoint hook (crash tests) at the use case's failpoint `name`, when one is
    /// set ([`RuntimeOptions::failpoints`]).
    pub fn failpoint(&self, name: &'static str) {
        if let Some(hook) = &self.parts.failpoints {
            hook(name);
        }
    }

    /// The key that signs tree heads of the audit log, if one is configured.
    pub fn signing_key(&self) -> Option<Arc<remediation_audit::LogSigningKey>> {
        self.signer.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The audit log's subtree cache (see [`remediation_audit::SubtreeCache`]); its owner
    /// extends it from the store and clears it when the log is found shorter than it.
    pub fn subtree_cache(&self) -> &tokio::sync::Mutex<remediation_audit::SubtreeCache> {
        &self.subtrees
    }

    /// Replaces the tree head signing key (after a rotation wrote the new key file).
    pub fn set_signing_key(&self, key: Arc<remediation_audit::LogSigningKey>) {
        *self.signer.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    /// The lease this runtime's engine takes on the actions it executes or rolls back (its
    /// worker id and duration).
    pub fn lease(&self) -> &remediation_core::LeaseRequest {
        &self.parts.lease
    }
}

/// The relay sinks `[events]` of `config` names: `events/<name>` for each of `sinks`,
/// `audit/<name>` for each of `audit_sinks` (relative file paths from `dir`).
#[allow(unused_variables)]
pub fn sinks_from_config(config: &Config, dir: &Path) -> Result<Vec<relay::RelaySink>, RuntimeError> {
    #[allow(unused_mut)]
    let mut sinks = Vec::new();
    #[cfg(feature = "connector-notify")]
    {
        for (i, sink) in config.events.sinks.iter().enumerate() {
            let built = sink.build().map_err(|e| RuntimeError::Events {
                list: "events.sinks",
                index: i + 1,
                source: Box::new(e),
            })?;
            sinks.push(relay::RelaySink::events(sink.name(), built, sink.deliver_from()));
        }
        for (i, sink) in config.events.audit_sinks.iter().enumerate() {
            let built = sink.build(dir).map_err(|e| RuntimeError::Events {
                list: "events.audit_sinks",
                index: i + 1,
                source: Box::new(e),
            })?;
            sinks.push(relay::RelaySink::audit(sink.name(), built, sink.deliver_from()));
        }
    }
    Ok(sinks)
}

/// Refuses two sinks of one name (their marks would be one), and names that are not plain.
fn check_sink_names(sinks: &[relay::RelaySink]) -> Result<(), RuntimeError> {
    let mut seen = std::collections::BTreeSet::new();
    for sink in sinks {
        let plain = sink.name.split_once('/').is_some_and(|(_, n)| {
            !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if !plain {
            return Err(RuntimeError::SinkName {
                name: sink.name.clone(),
                why: "a sink name is 1 to 64 letters, digits, `-`, `_` or `.`".to_owned(),
            });
        }
        if !seen.insert(sink.name.clone()) {
            return Err(RuntimeError::SinkName {
                name: sink.name.clone(),
                why: "two sinks have this name; give each its own `name`".to_owned(),
            });
        }
    }
    Ok(())
}

#[allow(unused_variables)]
fn relay_options(config: &Config) -> relay::RelayOptions {
    #[allow(unused_mut)]
    let mut options = relay::RelayOptions::default();
    #[cfg(feature = "connector-notify")]
    {
        let r = &config.events.relay;
        options.batch = r.batch.clamp(1, 10_000);
        options.poll = std::time::Duration::from_millis(r.poll_interval_ms.clamp(1, 60_000));
        options.backoff_max = std::time::Duration::from_secs(r.max_backoff_secs.clamp(1, 3_600));
        options.lease_ttl = std::time::Duration::from_secs(r.lease_ttl_secs.clamp(1, 3_600));
        options.nice = r.nice.min(19);
    }
    options
}

#[cfg(test)]
mod tests {
    use remediation_core::{Actor, KindName, Mode, Role};

    use super::*;

    #[tokio::test]
    async fn settings_stored_by_an_earlier_version_are_migrated_when_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::build(&Config::default(), dir.path(), None, RuntimeOptions::default()).expect("build");
        let admin = Actor::new("local:root", Role::Admin);
        // Written before control overrides had a scope: it lent auto to every kind.
        let legacy = serde_json::json!({
            "enabled": true,
            "default_mode": "manual",
            "controls": {"notify-stale-owner": {"mode": "auto", "reason": "only sends a notification"}}
        });
        let engine = runtime.active().await.expect("active").engine;
        engine.update_settings(&admin, legacy, "as stored by an earlier version".into()).await.expect("store");
        let active = runtime.active().await.expect("legacy settings still load");
        assert_eq!(active.source, SettingsSource::Store);
        let control = &active.settings.controls["notify-stale-owner"];
        assert_eq!(control.mode, Some(Mode::Auto));
        assert_eq!((control.kinds.as_deref(), control.grant_types.as_deref()), (Some(&[][..]), Some(&[][..])));
        // Lower-only now: a suspension tagged with the control keeps the kind's mode.
        let suspend: remediation_core::Action = serde_json::from_value(serde_json::json!({
            "id": "01900000-0000-7000-8000-000000000000",
            "kind": {"type": "suspend"},
            "target": {"identity": "bob", "grant_type": "account"},
            "connector": "sandbox", "requested_by": "token:req", "reason": "r", "mode": "manual",
            "control_id": "notify-stale-owner",
            "idempotency_key": "k", "state": "pending_approval",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .expect("action");
        assert_eq!(suspend.kind.name(), KindName::Suspend);
        assert_eq!(active.settings.mode_for(&suspend), Mode::Manual);
    }
}
