//! Errors of assembling the engine.

use std::path::PathBuf;

/// Why an engine could not be assembled, or a runtime step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// No tenant of this name exists.
    #[error("no tenant named `{tenant}`; `remediate tenants list` shows them")]
    UnknownTenant {
        /// The name asked for.
        tenant: String,
    },
    /// The configuration file sets a control override to `auto` that has not earned it and
    /// gives no `promotion_override_reason`.
    #[error(
        "[policy.controls.\"{control}\"] sets mode = \"auto\" but the control has not earned it: {record}; \
         start it in \"manual\" until it has, or give the admin's reason as `promotion_override_reason` \
         under [policy.controls.\"{control}\"] (see \"Earning auto mode\" in the README)"
    )]
    UnearnedAuto {
        /// The control.
        control: String,
        /// Its record, in plain words.
        record: String,
    },
    /// The configuration file cannot be used.
    #[error(transparent)]
    Config(#[from] Box<remediation_config::ConfigError>),
    /// The data directory does not exist.
    #[error("data directory {} does not exist; run `remediate init` first", dir.display())]
    DataDirMissing {
        /// The directory.
        dir: PathBuf,
    },
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}", dir.display())]
    DataDirCreate {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A private file of the data directory cannot be created or written.
    #[error("cannot write {} (owner-only, mode 0600)", path.display())]
    PrivateFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The store cannot be opened.
    #[error("cannot open the store in {}", dir.display())]
    StoreOpen {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: Box<remediation_store_sqlite::StoreSqliteError>,
    },
    /// `[store]` cannot be used (the loader reports it with its line; this is for callers
    /// that build a [`remediation_config::Config`] themselves).
    #[error("invalid configuration key `{key}`: {message}")]
    StoreSettings {
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The password of a PostgreSQL store cannot be read.
    #[error("cannot read the store's password from the {source_name}")]
    StorePassword {
        /// Where it was to come from (`environment variable X`, `file Y`).
        source_name: String,
        /// What failed.
        #[source]
        source: remediation_config::PasswordError,
    },
    /// The configuration names a PostgreSQL store and this build does not include one.
    #[error(
        "the configuration names a PostgreSQL store ({url}), but this build of remediation does not include PostgreSQL support; use a build with it, or the SQLite store (remove [store])"
    )]
    PostgresNotBuilt {
        /// The store's URL, without any password.
        url: String,
    },
    /// The PostgreSQL store could not be migrated or connected (the reason says which, and
    /// what to do).
    #[error("PostgreSQL store {url}")]
    Postgres {
        /// The store's URL, without any password.
        url: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// [`crate::Runtime::build`] was not given the store the configuration names (a
    /// PostgreSQL store is opened asynchronously, with [`crate::store::open`], first).
    #[error("the store {url} must be opened with remediation_runtime::store::open and passed in RuntimeOptions::store")]
    StoreNotOpened {
        /// The store's URL, without any password.
        url: String,
    },
    /// The store's schema is newer than this build knows.
    #[error(
        "{store}: database schema version {found} is newer than this build supports ({supported}); upgrade this binary"
    )]
    SchemaTooNew {
        /// The store, without any password.
        store: String,
        /// The version found.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A store task stopped before answering.
    #[error("a store task stopped before answering: {message}")]
    StoreTask {
        /// What happened to it.
        message: String,
    },
    /// A configured connector's `scope` table cannot be read.
    #[error("connector `{id}`: {message}")]
    ConnectorScope {
        /// The connector.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A managed connection could not be read, stored or changed (conflict, changed
    /// meanwhile, not found, or a store failure).
    #[error(transparent)]
    Connection(remediation_core::StoreError),
    /// The master key cannot be read, or a connection's secrets cannot be sealed or opened.
    #[error(transparent)]
    Vault {
        /// What the vault said (a wrong master key names the key ids).
        source: remediation_vault::VaultError,
    },
    /// A connection's sealed secrets are not in the vault's format.
    #[error("the sealed secrets of connection `{id}` cannot be read: {why}")]
    SealedFormat {
        /// The connection.
        id: String,
        /// What is wrong (never the content).
        why: String,
    },
    /// `keys rotate` was asked of a master key kept in an environment variable, which this
    /// process cannot rewrite.
    #[error(
        "the master key comes from the environment variable `{var}`, which `keys rotate` cannot rewrite. \
         Rotate it by hand: generate a key (`openssl rand -base64 32`), set `{var}` to `NEW,OLD` for every \
         process (servers and CLI) and restart them, run `remediate keys rotate --rewrap-only`, then set \
         `{var}` to `NEW` alone and restart again"
    )]
    RotateEnvKey {
        /// The variable.
        var: String,
    },
    /// A managed connection's id is not well formed.
    #[error("{why}")]
    ConnectionId {
        /// What is wrong.
        why: String,
    },
    /// The store failed while reading the settings.
    #[error("cannot read the safety settings from the store")]
    Store(#[source] remediation_core::StoreError),
    /// The policy settings kept in the store cannot be read by this build.
    #[error("the policy settings kept in the store cannot be read by this version")]
    SettingsUnreadable(#[source] serde_json::Error),
    /// The policy settings are invalid.
    #[error("invalid policy settings")]
    Settings(#[source] remediation_gates::SettingsError),
    /// A configured connector cannot be built.
    #[error("cannot set up connector `{id}` (type {kind})")]
    Connector {
        /// The connector id.
        id: String,
        /// Its `type`.
        kind: &'static str,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A configured connector's type is not in the catalog (unknown, or left out of this
    /// build by a disabled `connector-*` feature).
    #[error("connector `{id}` has type {kind}, which this build does not include (it knows {known})")]
    UnknownConnectorType {
        /// The connector id.
        id: String,
        /// Its `type`.
        kind: String,
        /// The types this build knows, comma-separated.
        known: String,
    },
    /// A sink of `[[events.sinks]]` or `[[events.audit_sinks]]` cannot be built.
    #[error("cannot set up sink number {index} of [[{list}]]")]
    Events {
        /// `events.sinks` or `events.audit_sinks`.
        list: &'static str,
        /// 1-based position in the list.
        index: usize,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Two sinks share a name, or a name is not plain.
    #[error("event sink `{name}`: {why}")]
    SinkName {
        /// The sink's full name (`events/<name>`, `audit/<name>`).
        name: String,
        /// What is wrong.
        why: String,
    },
}

/// `e` and its causes, joined with `: `, for a report that carries errors as text.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
