//! The `remediation.toml` configuration file shared by the remediation binaries: its types
//! (each with a JSON Schema) and a loader whose errors name the file, the line and the key.
//!
//! ```
//! let config: remediation_config::Config = toml::from_str(&remediation_config::initial_config("local:alice"))?;
//! assert!(!config.policy.enabled, "remediation starts disabled");
//! # Ok::<(), toml::de::Error>(())
//! ```

mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use remediation_audit::AuditKey;
use remediation_core::Role;
use remediation_core::factory::{BuildError, ConnectorFactory};
use remediation_core::store::ConnectionScope;
use remediation_gates::PolicySettings;
use remediation_limiter::Limits;
use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
pub use store::{
    DEFAULT_POOL_SIZE, DEFAULT_POSTGRES_PORT, DEFAULT_SQLITE_FILE, PasswordError, PasswordSource, PostgresTarget,
    PostgresTls, SslMode, StoreKind, StoreSettings, StoreSettingsError, StoreTarget,
};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store and connector files live; relative paths are relative to this file.
    /// Ignored when `--data-dir` is given.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Safety settings: enablement, modes, approvals, rollback windows.
    #[serde(default)]
    pub policy: PolicySettings,
    /// Blast-radius limits.
    #[serde(default)]
    pub limits: Limits,
    /// Roles of local actors.
    #[serde(default)]
    pub actors: ActorSettings,
    /// The connectors this installation may use.
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
    /// The audit trail's tamper-evident checkpoint.
    #[serde(default)]
    pub audit: AuditSettings,
    /// The HTTP server (`remediation-server`).
    #[serde(default)]
    pub server: ServerSettings,
    /// How approved actions are executed: leases shared by every worker and process, and
    /// how many executions the server's worker runs at once.
    #[serde(default)]
    pub execution: ExecutionConfig,
    /// Where the store lives: absent, the SQLite file `remediation.db` in the data
    /// directory; a PostgreSQL database for several servers.
    #[serde(default, skip_serializing_if = "StoreSettings::is_default")]
    pub store: StoreSettings,
    /// The master key that seals the secrets of managed connections: `master_key_env` or
    /// `master_key_file` (relative to the data directory), each holding one base64 key or a
    /// keyring (one key per line; comma-separated in a variable), current first. Absent:
    /// `master.key` in the data directory, created the first time a connection with secrets
    /// is added. Keep a copy away from the store's backups.
    #[serde(default, skip_serializing_if = "is_default_vault")]
    pub vault: remediation_vault::MasterKeySource,
    /// Where engine events (transitions, held actions, breaker trips, fixes that did not
    /// hold) are sent, besides the data directory's `events.jsonl`.
    #[cfg(feature = "notify")]
    #[serde(default)]
    pub events: EventSettings,
    /// Findings taken in other than by `POST /v1/findings`: from a JetStream durable consumer.
    #[cfg(feature = "nats")]
    #[serde(default, skip_serializing_if = "FindingsSettings::is_default")]
    pub findings: FindingsSettings,
}

/// Where the server takes findings in besides its API.
#[cfg(feature = "nats")]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FindingsSettings {
    /// A JetStream durable consumer on `remediation.findings.>`: each message one finding
    /// (the JSON `POST /v1/findings` takes), acknowledged once its suggestion (or the
    /// deduplication decision) is committed; malformed or refused findings go to the
    /// dead-letter subject with the reason.
    pub nats: Option<NatsFindings>,
}

#[cfg(feature = "nats")]
impl FindingsSettings {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// The NATS findings consumer and the principal it acts as.
#[cfg(feature = "nats")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsFindings {
    /// The service principal suggestions are made as (it must hold the `requester` role or
    /// higher; `remediate principal create … --kind service`). Revoking it stops the intake:
    /// messages wait, then reach the dead-letter subject.
    pub principal: String,
    /// The consumer.
    #[serde(flatten)]
    pub consumer: remediation_nats::FindingsConsumerConfig,
}

/// Event delivery: where events and the audit trail go, each sink from its own high-water mark
/// in the audit log (the outbox), at least once and in order.
#[cfg(feature = "notify")]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EventSettings {
    /// The event sinks, in `[[events.sinks]]` tables tagged by `type` (`log`, `webhook`).
    pub sinks: Vec<remediation_notify::EventSinkConfig>,
    /// The audit sinks, in `[[events.audit_sinks]]` tables tagged by `type` (`file`,
    /// `webhook`): the audit records themselves, in `seq` order.
    pub audit_sinks: Vec<remediation_notify::AuditSinkConfig>,
    /// How the relay paces itself.
    pub relay: RelaySettings,
}

/// How the relay that delivers events paces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    /// Most records handed to a sink at once (default 1024, 1 to 10000).
    pub batch: usize,
    /// Milliseconds a caught-up sink waits before looking for new records (default 5; each look
    /// is one indexed read of the log).
    pub poll_interval_ms: u64,
    /// Longest wait between two attempts at a failing sink, in seconds (default 30).
    pub max_backoff_secs: u64,
    /// How long the relay lease of the replica that delivers lasts unless renewed, in seconds
    /// (default 15): the longest a replica's death stops delivery before another takes over.
    pub lease_ttl_secs: u64,
    /// How many steps below the server's priority the relay's thread runs (a Linux `nice`
    /// increment, 0 to 19; default 10): delivery is background work, so a busy engine keeps
    /// its CPU for its commits and the relay delivers with what is left (under a load the
    /// machine cannot carry, the backlog grows, then drains). 0 runs the relay alongside the
    /// engine.
    pub nice: u8,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self { batch: 1024, poll_interval_ms: 5, max_backoff_secs: 30, lease_ttl_secs: 15, nice: 10 }
    }
}

/// The HTTP server: where it listens, how often its worker runs, how large a body may be, and
/// how long and how many clients it serves at once (so slow clients cannot hold it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on (default `127.0.0.1:8080`).
    pub listen: String,
    /// Seconds between two runs of the background worker, which executes approved actions and
    /// expires stale approvals (default 5).
    pub worker_interval_secs: u64,
    /// Largest request body accepted, in bytes (default 262144, 256 KiB).
    pub body_limit_bytes: usize,
    /// Largest body of `POST /v1/campaigns` and `POST /v1/findings`, which take many findings
    /// at once, in bytes (default 33554432, 32 MiB; never less than `body_limit_bytes`).
    pub import_body_limit_bytes: usize,
    /// Seconds a shutdown waits for in-flight work before it exits anyway (default 30).
    pub shutdown_grace_secs: u64,
    /// Log format on standard error: `compact` (default) or `json`.
    pub log_format: LogFormat,
    /// Milliseconds a client has to send a request's complete header, from the moment the
    /// connection is ready to read one; a client that trickles it is disconnected
    /// (default 10000, at least 1).
    pub header_read_timeout_ms: u64,
    /// Seconds from a request's header to its response, the body read included; a request
    /// past it gets a 408 (default 120, at least 1). An execution or rollback it answers early
    /// still runs to its recorded end; only its answer is lost (`remediate show` tells it).
    pub request_timeout_secs: u64,
    /// Connections served at once (default 512, at least 1). Keep it below the process's
    /// descriptor limit (`ulimit -n`) minus what the store and connectors hold open: further
    /// connections wait in the listen backlog, costing no descriptor, until one closes.
    pub max_connections: usize,
    /// Calls each principal may make per window; more are answered 429 with `Retry-After`.
    pub rate_limit: RateLimitSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            worker_interval_secs: 5,
            body_limit_bytes: 256 * 1024,
            import_body_limit_bytes: 32 * 1024 * 1024,
            shutdown_grace_secs: 30,
            log_format: LogFormat::Compact,
            header_read_timeout_ms: 10_000,
            request_timeout_secs: 120,
            max_connections: 512,
            rate_limit: RateLimitSettings::default(),
        }
    }
}

/// Execution: every worker (the server's, each `remediate execute`) holds a lease on the
/// action it executes or rolls back, renewed while the provider call is in flight; another
/// worker takes the action over only once the lease has expired. The server's worker runs up
/// to `concurrency` executions at once, capped per connector by `connector_concurrency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// Seconds a lease lasts unless renewed (default 30, at least 1). After a crash, the
    /// action waits this long before recovery may take it over; a worker that cannot renew
    /// within it stops before any further provider write.
    #[schemars(range(min = 1))]
    pub lease_ttl_secs: u64,
    /// Executions in flight at once, over every connector (default 32, at least 1).
    #[schemars(range(min = 1))]
    pub concurrency: u32,
    /// Optional caps per connector id (`connector_concurrency = { okta = 8 }`): never more
    /// than this many executions on that connector at once (each at least 1).
    pub connector_concurrency: std::collections::BTreeMap<String, u32>,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self { lease_ttl_secs: 30, concurrency: 32, connector_concurrency: std::collections::BTreeMap::new() }
    }
}

impl ExecutionConfig {
    /// How long a lease lasts.
    pub fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_ttl_secs)
    }
}

/// The per-principal request rate of the server: at most `requests` calls in any window of
/// `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Calls allowed inside any window (default 600).
    pub requests: u32,
    /// Window length in seconds (default 60).
    pub window_secs: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { requests: 600, window_secs: 60 }
    }
}

/// How the server writes its log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Compact,
    /// One JSON object per line.
    Json,
}

/// The audit trail's checkpoint: the chain head kept beside the chain, sealed with a secret
/// HMAC key, so that records cut off the end of the chain and a chain rewritten from the start
/// are detected by `remediate audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// File holding the checkpoint key: 64 hex characters (32 random bytes), readable only by
    /// the owner. Relative paths are relative to the data directory. `remediate init` creates
    /// `audit.key` and names it here. An absolute path keeps the key outside the data
    /// directory: put it where whoever can write the store cannot read it (another owner, a
    /// secrets mount), since a writer who also holds the key can forge a checkpoint. Without it no checkpoint is kept: the chain still reveals
    /// edited, deleted and reordered records, but not records cut off its end or a rewritten
    /// chain. Never put the key itself in this file.
    pub hmac_key_file: Option<PathBuf>,
    /// File holding the Ed25519 key that signs tree heads of the verifiable audit log
    /// (`remediation-audit-ed25519-signing-key-v1` and the 32-byte seed in hex), readable only by
    /// the owner: a file other users may read or write is refused. Relative paths are relative
    /// to the data directory. `remediate init` creates `audit-signing.key` and names it here;
    /// `remediate audit rotate-key` replaces it with a new key and keeps the old public key
    /// published. Signed tree heads let anyone holding the public keys (`remediate audit key`)
    /// check inclusion and consistency proofs without any secret, so a truncated, rewritten or
    /// forked log is detected by auditors. Without it no tree head is signed.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// How many days audit records are kept before `remediate audit archive` may move them to
    /// an archive file (default 2557, seven years; never below 365). Nothing is ever deleted
    /// without a written, verified archive.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { hmac_key_file: None, signing_key: None, retention_days: default_retention_days() }
    }
}

/// Seven years of days (with two leap days).
fn default_retention_days() -> u32 {
    AuditSettings::DEFAULT_RETENTION_DAYS
}

impl AuditSettings {
    /// The dotted configuration key of [`AuditSettings::hmac_key_file`], as errors name it.
    pub const KEY_FILE_KEY: &'static str = "audit.hmac_key_file";

    /// The default of [`AuditSettings::retention_days`]: seven years.
    pub const DEFAULT_RETENTION_DAYS: u32 = 7 * 365 + 2;
    /// The least [`AuditSettings::retention_days`] accepted: one year.
    pub const MIN_RETENTION_DAYS: u32 = 365;

    /// The dotted configuration key of [`AuditSettings::signing_key`], as errors name it.
    pub const SIGNING_KEY_KEY: &'static str = "audit.signing_key";

    /// The path of the signing key file named by `signing_key`, relative to `data_dir`.
    pub fn signing_key_path(&self, data_dir: &Path) -> Option<PathBuf> {
        self.signing_key.as_ref().map(|file| data_dir.join(file))
    }

    /// Reads the tree head signing key named by `signing_key` (relative to `data_dir`);
    /// `None` when no file is configured. A file that is missing, readable or writable by
    /// other users, or not a key file is a configuration error naming the file and
    /// `audit.signing_key`; no error quotes the key.
    pub fn load_signing_key(
        &self,
        config_path: &Path,
        data_dir: &Path,
    ) -> Result<Option<remediation_audit::LogSigningKey>, ConfigError> {
        let Some(path) = self.signing_key_path(data_dir) else {
            return Ok(None);
        };
        remediation_audit::LogSigningKey::read_file(&path).map(Some).map_err(|e| ConfigError {
            path: config_path.to_owned(),
            line: None,
            key: Some(Self::SIGNING_KEY_KEY.to_owned()),
            message: format!(
                "{}; restore the signing key file from your backup, or name the right file (tree heads cannot be signed without it)",
                remediation_core::error_chain(&e)
            ),
        })
    }

    /// Reads the checkpoint key named by `hmac_key_file` (relative to `data_dir`); `None`
    /// when no file is configured. `config_path` is the configuration file, for errors.
    ///
    /// A file that is missing, unreadable, or not exactly 64 hex characters (surrounding
    /// whitespace aside) is a configuration error naming the file and `audit.hmac_key_file`.
    /// The key goes straight into secret memory; no error or log quotes it.
    pub fn load_key(&self, config_path: &Path, data_dir: &Path) -> Result<Option<AuditKey>, ConfigError> {
        let Some(file) = &self.hmac_key_file else {
            return Ok(None);
        };
        let path = data_dir.join(file);
        let err = |message: String| ConfigError {
            path: config_path.to_owned(),
            line: None,
            key: Some(Self::KEY_FILE_KEY.to_owned()),
            message,
        };
        let text = std::fs::read_to_string(&path).map(SecretString::from).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "restore the key file from your backup (without it the audit checkpoint cannot be checked or kept), or point the key at the right file"
            } else {
                "check the file's permissions"
            };
            err(format!("cannot read the audit key file {} ({e}); {hint}", path.display()))
        })?;
        let key = AuditKey::from_hex(text.expose_secret()).map_err(|_| {
            err(format!(
                "the audit key file {} does not hold a key: expected 64 hex characters (32 bytes), as `remediate init` writes",
                path.display()
            ))
        })?;
        Ok(Some(key))
    }
}

/// Roles of local actors (`local:$USER` or `--actor`), and how long a change waiting for a
/// second admin stays open.
///
/// Local actors are self-asserted: whoever can run `remediate` on the data directory can name
/// any actor with `--actor`. The server's principals and their roles live in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ActorSettings {
    /// Role of an actor not listed in `roles` (default `requester`).
    pub default_role: Role,
    /// Role per actor name.
    pub roles: BTreeMap<String, Role>,
    /// Seconds a change that needs a second admin (loosening settings, kill switch off,
    /// changing who is admin) waits for confirmation before it expires (default 86400, 24 h).
    pub confirmation_window_secs: u64,
}

impl Default for ActorSettings {
    fn default() -> Self {
        Self { default_role: Role::Requester, roles: BTreeMap::new(), confirmation_window_secs: 86_400 }
    }
}

impl ActorSettings {
    /// The role of `name`. `system` is never granted to a person.
    pub fn role_of(&self, name: &str) -> Role {
        match self.roles.get(name).copied().unwrap_or(self.default_role) {
            Role::System => Role::Viewer,
            role => role,
        }
    }
}

/// One configured connector: its `type`, its `id`, the keys every connector shares, and the
/// provider's own settings, kept as written. The connector catalog of the binaries knows each
/// type's settings: [`Config::load_with`] checks them through it, and the catalog builds the
/// connector from them. A type this build does not include is an unknown `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectorConfig {
    /// The connector type (`sandbox`, `okta`, `aws_iam`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Connector id used in actions.
    pub id: String,
    /// Seconds the engine reuses a good health and permission check of this connector instead
    /// of asking the provider again (default 60; 0 asks on every suggestion and execution).
    /// Failed checks are never reused; `remediate connectors check` always asks.
    #[serde(default = "default_check_ttl_secs")]
    pub check_ttl_secs: u64,
    /// The tenant whose connector this is (default: the default tenant). A tenant's engine
    /// sees only its own connectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub tenant: Option<remediation_core::TenantId>,
    /// The provider's settings, as documented on its connector crate's config type.
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
}

fn default_check_ttl_secs() -> u64 {
    60
}

/// The key of a connector's selection scope (see [`ConnectorConfig::scope`]).
pub const SCOPE_KEY: &str = "scope";

fn is_default_vault(source: &remediation_vault::MasterKeySource) -> bool {
    *source == remediation_vault::MasterKeySource::default()
}

impl ConnectorConfig {
    /// A connector of `type_name` named `id` with `settings` (the table's other keys) and the
    /// default check TTL.
    pub fn new(type_name: impl Into<String>, id: impl Into<String>, settings: toml::Table) -> Self {
        Self {
            type_name: type_name.into(),
            id: id.into(),
            check_ttl_secs: default_check_ttl_secs(),
            tenant: None,
            settings,
        }
    }

    /// The built-in sandbox connector `id` on directory file `path` (relative to the data
    /// directory).
    pub fn sandbox(id: impl Into<String>, path: impl AsRef<Path>) -> Self {
        let mut settings = toml::Table::new();
        settings.insert("path".to_owned(), toml::Value::String(path.as_ref().display().to_string()));
        Self::new("sandbox", id, settings)
    }

    /// The connector id actions name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `type` as written in the file.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// How long a good health and permission check is reused.
    pub fn check_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.check_ttl_secs)
    }

    /// The targets this connector is meant for, from its `scope` table (`scope = { domains =
    /// [...], accounts = [...] }`): among several healthy connectors that can do an action, one
    /// whose scope names the target's email domain or AWS account is chosen. Absent: empty,
    /// matching everything. A `scope` that is not a table is a setting of the connector's own
    /// (Entra's token scope is a string) and is left to it.
    pub fn scope(&self) -> Result<ConnectionScope, String> {
        match self.settings.get(SCOPE_KEY) {
            Some(value @ toml::Value::Table(_)) => {
                value.clone().try_into().map_err(|e: toml::de::Error| format!("`scope`: {}", e.message()))
            }
            _ => Ok(ConnectionScope::default()),
        }
    }

    /// The settings a connector factory reads: the table without `type`, `check_ttl_secs`
    /// and a `scope` table, with `id`.
    pub fn factory_settings(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("id".to_owned(), serde_json::Value::String(self.id.clone()));
        for (key, value) in &self.settings {
            if key == SCOPE_KEY && value.is_table() {
                continue;
            }
            // A TOML value always has a JSON form (a datetime becomes its text).
            let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
            map.insert(key.clone(), value);
        }
        serde_json::Value::Object(map)
    }
}

/// A configuration file that cannot be used.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key, when known.
    pub key: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration in {}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, " key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks `path`, leaving each connector's own settings unchecked (no catalog
    /// is at hand); [`Config::load_with`] checks them too.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &[])
    }

    /// Reads and checks `path`, each connector's settings through the factory of its type in
    /// `catalog`. With an empty `catalog`, connector settings are not checked.
    pub fn load_with(path: &Path, catalog: &[&dyn ConnectorFactory]) -> Result<Self, ConfigError> {
        let err = |line, key, message: String| ConfigError { path: path.to_owned(), line, key, message };
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "run `remediate init` to create it, or pass --config / --data-dir"
            } else {
                "check the file's permissions"
            };
            err(None, None, format!("cannot read the file ({e}); {hint}"))
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            let (line, key) = e.span().map(|s| locate(&text, s.start)).unwrap_or((None, None));
            err(line, key, e.message().to_owned())
        })?;
        config.policy.validate().map_err(|e| {
            let key = e.key().map_or_else(|| "policy".to_owned(), |k| format!("policy.{k}"));
            err(table_line(&text, &key), Some(key), e.to_string())
        })?;
        if config.audit.retention_days < AuditSettings::MIN_RETENTION_DAYS {
            let key = "audit.retention_days".to_owned();
            let line = text.lines().position(|l| l.trim_start().starts_with("retention_days")).map(|i| i + 1);
            return Err(err(
                line.or_else(|| table_line(&text, &key)),
                Some(key),
                format!(
                    "must be at least {} (one year): audit records are kept at least that long",
                    AuditSettings::MIN_RETENTION_DAYS
                ),
            ));
        }
        if config.execution.lease_ttl_secs == 0 {
            let key = "execution.lease_ttl_secs".to_owned();
            let line = text.lines().position(|l| l.trim_start().starts_with("lease_ttl_secs")).map(|i| i + 1);
            return Err(err(
                line.or_else(|| table_line(&text, &key)),
                Some(key),
                "must be at least 1 (seconds a lease on an executing action lasts unless renewed)".to_owned(),
            ));
        }
        config.store.target().map_err(|e| err(store_key_line(&text, &e.key), Some(e.key.clone()), e.message))?;
        let mut seen = std::collections::BTreeSet::new();
        for c in &config.connectors {
            let id = c.id();
            if !seen.insert(id.to_owned()) {
                return Err(err(None, Some("connectors".to_owned()), format!("connector id `{id}` is used twice")));
            }
        }
        let execution =
            |message: String| err(table_line(&text, "execution.concurrency"), Some("execution".to_owned()), message);
        if config.execution.concurrency == 0 {
            return Err(execution("`concurrency` must be at least 1".to_owned()));
        }
        for (name, cap) in &config.execution.connector_concurrency {
            if *cap == 0 {
                return Err(execution(format!("`connector_concurrency.{name}` must be at least 1")));
            }
            if !seen.contains(name) {
                return Err(execution(format!(
                    "`connector_concurrency` names `{name}`, which is not a configured connector (configured: {})",
                    seen.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        if !catalog.is_empty() {
            for (index, c) in config.connectors.iter().enumerate() {
                check_connector(&text, index, c, catalog)
                    .map_err(|(line, key, message)| err(line, Some(key), message))?;
            }
        }
        Ok(config)
    }
}

/// Checks connector `index` (`c`) of the file `text` through its factory in `catalog`; an error
/// names the line and dotted key at fault.
fn check_connector(
    text: &str,
    index: usize,
    c: &ConnectorConfig,
    catalog: &[&dyn ConnectorFactory],
) -> Result<(), (Option<usize>, String, String)> {
    let Some(factory) = catalog.iter().find(|f| f.type_name() == c.type_name) else {
        let known: Vec<&str> = catalog.iter().map(|f| f.type_name()).collect();
        return Err((
            key_line(text, index, &["type".to_owned()]),
            "connectors.type".to_owned(),
            format!(
                "unknown variant `{}`, expected one of {} (the connector types of this build; one left out by a \
                 disabled `connector-*` feature is unknown too)",
                c.type_name,
                known.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    if let Err(message) = c.scope() {
        return Err((key_line(text, index, &[SCOPE_KEY.to_owned()]), "connectors.scope".to_owned(), message));
    }
    match factory.check(&c.factory_settings()) {
        Ok(()) => Ok(()),
        Err(BuildError::Settings { mut key, message }) => {
            // An unknown key is named in the message; the path may stop at its table.
            if let Some(unknown) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next())
                && key.last().map(String::as_str) != Some(unknown)
            {
                key.push(unknown.to_owned());
            }
            let dotted = std::iter::once("connectors".to_owned()).chain(key.iter().cloned()).collect::<Vec<_>>();
            Err((key_line(text, index, &key), dotted.join("."), message))
        }
        Err(e) => Err((key_line(text, index, &[]), "connectors".to_owned(), e.to_string())),
    }
}

/// The 1-based line of `key` (a path of keys and array indices) inside connector `index` of
/// `text`; the deepest part of the path that the file spells, else the connector's table.
fn key_line(text: &str, index: usize, key: &[String]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let connectors = doc.get_ref().get("connectors")?;
    let DeValue::Array(all) = connectors.get_ref() else { return None };
    let entry = all.get(index)?;
    let mut span = entry.span();
    let mut value = entry;
    for part in key {
        let next = match value.get_ref() {
            DeValue::Table(table) => table.iter().find(|(k, _)| k.get_ref().as_ref() == part.as_str()).map(|(k, v)| {
                span = k.span();
                v
            }),
            DeValue::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)).inspect(|v| span = v.span()),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => break,
        }
    }
    Some(text.get(..span.start)?.matches('\n').count() + 1)
}

/// The 1-based line of byte `offset` in `text`, and the dotted key written on that line
/// (prefixed with the table header above it), if the line is a `key = value` line.
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    // A header may carry a comment after it: `[[connectors]]   # the Okta org`.
    let header = |l: &str| {
        let l = l.split_once('#').map_or(l, |(h, _)| h).trim();
        l.trim_matches(|c| c == '[' || c == ']').trim().to_owned()
    };
    if line.trim_start().starts_with('[') {
        // The error is about a table header itself (an unknown table, or a table whose
        // contents are wrong as a whole): name that table, not the one above it.
        return (Some(line_no), Some(header(line.trim())).filter(|h| !h.is_empty()));
    }
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(header)
        .filter(|t| !t.is_empty());
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_owned()).filter(|k| !k.is_empty());
    let full = match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    };
    (Some(line_no), full)
}

/// The 1-based line of the table header that holds dotted `key` (`policy.controls."X".kinds`
/// is held by `[policy.controls."X"]` or `[policy.controls.X]`), when the file has one.
fn table_line(text: &str, key: &str) -> Option<usize> {
    let parts = |dotted: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        for ch in dotted.chars() {
            match ch {
                '"' => quoted = !quoted,
                '.' if !quoted => out.push(std::mem::take(&mut current).trim().to_owned()),
                c => current.push(c),
            }
        }
        out.push(current.trim().to_owned());
        out
    };
    let wanted = parts(key);
    let table = &wanted[..wanted.len().saturating_sub(1)];
    text.lines()
        .position(|line| {
            let line = line.split_once('#').map_or(line, |(h, _)| h).trim();
            line.starts_with('[')
                && !line.starts_with("[[")
                && parts(line.trim_start_matches('[').trim_end_matches(']')).as_slice() == table
        })
        .map(|i| i + 1)
}

/// The 1-based line of `key` (`store.sslmode`) inside the `[store]` table of `text`, else of
/// the table's header.
fn store_key_line(text: &str, key: &str) -> Option<usize> {
    let name = key.strip_prefix("store.").unwrap_or(key);
    let mut in_store = false;
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(l, _)| l).trim();
        if line.starts_with('[') {
            in_store = line == "[store]";
            if in_store {
                header = Some(i + 1);
            }
            continue;
        }
        if in_store && line.split_once('=').is_some_and(|(k, _)| k.trim().trim_matches('"') == name) {
            return Some(i + 1);
        }
    }
    header
}

/// The commented configuration `init` writes, making `admin` (the local actor who runs it,
/// `local:$USER`) the admin and every other local actor a requester.
pub fn initial_config(admin: &str) -> String {
    // One TOML basic string on one line: quotes, backslashes and control characters are
    // escaped, so no user name can end the key or add a line.
    let mut quoted = String::from("\"");
    for c in admin.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    INITIAL_CONFIG.replace("{ADMIN}", &quoted)
}

const INITIAL_CONFIG: &str = r#"# remediation configuration.
#
# Remediation is DISABLED until you enable it deliberately. While disabled, actions can be
# suggested, approved and dry-run, but nothing is ever written to a provider.
# To enable it: review the modes and limits below, then set `enabled = true` under [policy].

[policy]
enabled = false
# advisory (guidance only) | manual (needs approval) | auto (approved by the system when every gate passes)
default_mode = "manual"
# approvals needed before an action may execute
min_approvals = 1
# how long after completion an action can be rolled back (seconds; 60 to 2592000)
rollback_window_secs = 86400
# a control override may be set to auto only after this many successful manual remediations,
# the first at least min_days ago, none rolled back; it drops back to manual when more than
# max_rate_percent of its last `window` auto actions were rolled back or failed verification
# auto_promotion = { min_successes = 10, min_days = 30 }
# auto_demotion = { window = 20, max_rate_percent = 10 }
# kinds a responder (role `responder`, or an admin) runs at once on an exposed person's
# accounts with `remediate respond`, without a second approver; changing it needs two admins
# emergency_kinds = ["revoke_sessions", "force_password_reset"]

# Per-kind overrides; every mode override needs a reason. Example:
# [policy.kinds.revoke]
# mode = "auto"
# reason = "group revocations are reversible and low risk"
# rollback_requires_approval = true   # a person's rollback waits for a second approver (default: every kind but notify)

# Per-control overrides. A control's mode applies only to the kinds, grant types and
# connectors it names (all three required with `mode`); to any other action tagged with the
# control it can only lower the mode. Start a control in manual: auto must be earned (see
# auto_promotion; `remediate controls show ID` prints the record), or an admin states why not
# in `promotion_override_reason`, else neither the CLI nor the server starts. Examples:
# [policy.controls."CIS-1.2"]
# never_auto = true
# [policy.controls."notify-stale-owner"]
# mode = "manual"
# reason = "start manual; promote once it has earned auto"
# kinds = ["notify"]
# grant_types = ["notification"]
# connectors = ["sandbox"]

# Blast-radius limits: at most `max` executions in any window of `window_secs`.
[limits]
per_connector = { max = 50, window_secs = 3600 }
per_identity = { max = 5, window_secs = 86400 }
per_resource = { max = 10, window_secs = 3600 }
global = { max = 200, window_secs = 3600 }

# Roles of local actors (local:$USER, or --actor NAME): viewer, requester, responder, approver, admin.
# Local actors are SELF-ASSERTED: whoever can run `remediate` on this data directory can name
# any actor with --actor, so these roles keep honest people apart, not attackers; the server
# authenticates principals with tokens. The requester of an action can never approve it,
# whatever their role. List your approvers here, e.g.
#   "local:bob" = "approver"
# Loosening settings, turning the kill switch off and changing who is admin wait until a
# second admin confirms (`remediate pending confirm ID`) within confirmation_window_secs.
[actors]
default_role = "requester"
confirmation_window_secs = 86400

[actors.roles]
{ADMIN} = "admin"

# The audit trail's checkpoint key (relative to the data directory, or an absolute path). It
# seals the chain head so that records cut off the end and a rewritten chain are detected by
# `remediate audit verify`. Keep the file private (mode 0600) and back it up with the store:
# without it the checkpoint cannot be checked. Better still, move it out of the data directory
# to where the store's writers cannot read it, and name it here by its absolute path
# (hmac_key_file = "/etc/remediation/audit.key"). Never paste the key itself into this file.
#
# The signing key of the verifiable log: an Ed25519 key (mode 0600) that signs tree heads, so
# auditors holding the public keys (`remediate audit key`) can check inclusion and
# consistency proofs without any secret. `remediate audit rotate-key` replaces it; old public
# keys stay published. Back it up; move it out of the data directory like the checkpoint key.
# Audit records are kept `retention_days` (default 2557, seven years; never below 365) before
# `remediate audit archive --before DATE --out FILE` may move older ones to a verifiable archive.
[audit]
hmac_key_file = "audit.key"
signing_key = "audit-signing.key"
# retention_days = 2557

# The HTTP server (`remediation-server`); the defaults are shown. Its callers are principals
# (`remediate principal create NAME --role ROLE`) using tokens made with
# `remediate token create --principal NAME --name TOKEN-NAME` (they expire after 90 days).
# [server]
# listen = "127.0.0.1:8080"
# worker_interval_secs = 5      # how often approved actions are executed and approvals expired
# body_limit_bytes = 262144
# import_body_limit_bytes = 33554432   # POST /v1/campaigns and /v1/findings: many findings at once
# shutdown_grace_secs = 30
# log_format = "compact"        # or "json"
# header_read_timeout_ms = 10000  # a client trickling its request header is disconnected after this
# request_timeout_secs = 120    # header to response, body included; past it the answer is 408
# max_connections = 512         # keep below `ulimit -n`; more wait in the listen backlog
# rate_limit = { requests = 600, window_secs = 60 }   # per principal; more get 429

# Execution. Any number of processes (`remediate execute`, servers) may share this data
# directory: each holds a lease on the action it is executing, renewed while the provider call
# runs, and recovery takes an action over only once its lease has expired. The server's worker
# takes work round-robin across connectors, so one connector's backlog never starves another.
# The defaults are shown.
# [execution]
# lease_ttl_secs = 30                     # how long a crashed worker's action waits before recovery (at least 1)
# concurrency = 32                        # executions in flight at once, over all connectors
# connector_concurrency = { sandbox = 8 } # optional caps per connector id

# The store. Without this table it is the SQLite file remediation.db in the data directory,
# which any number of processes on this host may share. Several servers on several hosts share
# a PostgreSQL database instead (see "Running several servers" in the README); create its
# schema with `remediate migrate`, move an installation with `remediate store copy`.
# [store]
# url = "postgres://remediation_app@db.example.com:5432/remediation"  # never a password here
# password_env = "REMEDIATION_DB_PASSWORD"   # or password_file = "/run/secrets/remediation-db"
# sslmode = "verify-full"                    # the default; "disable" only for a server on this host
# root_certificates = "/etc/remediation/db-ca.pem"   # default: the system's trust store
# pool_size = 16                             # connections per process
# migrate_user = "remediation_owner"         # the schema's owner, used by `remediate migrate` only
# migrate_password_env = "REMEDIATION_DB_OWNER_PASSWORD"

# The built-in sandbox connector: a directory in a JSON file, for trying things safely.
[[connectors]]
type = "sandbox"
id = "sandbox"
path = "sandbox.json"
"#;

#[cfg(test)]
mod tests {

    #[test]
    fn a_scope_table_is_the_selection_scope_and_other_scopes_stay_the_connectors() {
        let table: toml::Table =
            toml::from_str("path = \"d.json\"\nscope = { domains = [\"example.com\"], accounts = [\"123456789012\"] }")
                .expect("toml");
        let c = ConnectorConfig::new("sandbox", "s", table);
        let scope = c.scope().expect("scope");
        assert_eq!(
            (scope.domains.as_slice(), scope.accounts.as_slice()),
            (&["example.com".to_owned()][..], &["123456789012".to_owned()][..])
        );
        assert!(c.factory_settings().get("scope").is_none(), "the factory never sees the selection scope");
        let own: toml::Table = toml::from_str("scope = \"https://graph.microsoft.com/.default\"").expect("toml");
        let entra = ConnectorConfig::new("entra", "e", own);
        assert!(entra.scope().expect("none").is_empty());
        assert_eq!(
            entra.factory_settings()["scope"],
            "https://graph.microsoft.com/.default",
            "a string scope is the connector's"
        );
        let bad: toml::Table = toml::from_str("scope = { domain = \"typo\" }").expect("toml");
        assert!(ConnectorConfig::new("sandbox", "s", bad).scope().is_err());
    }
    use super::*;

    #[track_caller]
    fn check_err(text: &str, line: usize, key: &str, fragment: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.toml");
        std::fs::write(&path, text).expect("write");
        let e = Config::load(&path).expect_err("must fail");
        assert_eq!(e.line, Some(line), "{e}");
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert!(e.to_string().contains(fragment), "{e}");
        assert!(e.to_string().contains("remediation.toml"), "{e}");
    }

    #[test]
    fn errors_name_line_and_key() {
        check_err("[policy]\nenabled = true\nenabeld = true\n", 3, "policy.enabeld", "unknown field");
        check_err("[policy]\nenabled = \"yes\"\n", 2, "policy.enabled", "invalid type");
        check_err("[limits]\nglobal = { max = -1, window_secs = 1 }\n", 2, "limits.global", "");
        check_err("[actors]\ndefault_role = \"root\"\n", 2, "actors.default_role", "unknown variant");
        check_err("[actors]\ndefault_role = \"admin\"\n[polcy]\nenabled = true\n", 3, "polcy", "unknown field");
    }

    #[test]
    fn a_control_override_without_its_scope_names_the_table_line_and_the_missing_key() {
        let scoped = "[policy]\nenabled = true\n\n[policy.controls.\"notify-stale-owner\"]\nmode = \"auto\"\n\
                      reason = \"only sends a notification\"\n";
        check_err(
            scoped,
            4,
            "policy.controls.\"notify-stale-owner\".kinds",
            "must name the `kinds`, `grant_types` and `connectors`",
        );
        check_err(
            &format!("{scoped}kinds = [\"notify\"]\ngrant_types = [\"notification\"]\n"),
            4,
            "policy.controls.\"notify-stale-owner\".connectors",
            "has no `connectors`",
        );
        // A bare (unquoted) control id in the header is found too.
        check_err(
            "[policy.controls.C1]  # the first\nmode = \"manual\"\nreason = \"r\"\nkinds = []\n",
            1,
            "policy.controls.\"C1\".grant_types",
            "has no `grant_types`",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.toml");
        let full =
            format!("{scoped}kinds = [\"notify\"]\ngrant_types = [\"notification\"]\nconnectors = [\"sandbox\"]\n");
        std::fs::write(&path, full).expect("write");
        let c = Config::load(&path).expect("a scoped override is valid");
        assert_eq!(c.policy.controls["notify-stale-owner"].kinds, Some(vec![remediation_core::KindName::Notify]));
    }

    #[test]
    fn a_line_under_a_bare_bracket_names_no_empty_table() {
        // Found by the bounded fuzz pass: `[` then a line with no `=`.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.toml");
        std::fs::write(&path, "[\n\u{ae}\n").expect("write");
        let e = Config::load(&path).expect_err("must fail");
        assert_ne!(e.key.as_deref(), Some(""), "{e}");
    }

    #[test]
    fn a_header_comment_is_not_part_of_the_key() {
        check_err(
            "[[connectors]]   # the sandbox\ntype = \"sandbox\"\npath = \"x\"\n",
            1,
            "connectors",
            "missing field `id`",
        );
        // A key of the table that is wrong is named on its own line.
        check_err(
            "[[connectors]]   # the sandbox\ntype = \"sandbox\"\nid = 1\npath = \"x\"\n",
            3,
            "connectors.id",
            "expected a string",
        );
    }

    #[test]
    fn a_bare_bracket_names_no_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.toml");
        std::fs::write(&path, "[").expect("write");
        let e = Config::load(&path).expect_err("must fail");
        assert_eq!((e.line, e.key.as_deref()), (Some(1), None), "{e}");
    }

    #[test]
    fn initial_config_parses_and_is_disabled() {
        let c: Config = toml::from_str(&initial_config("local:alice")).expect("parse");
        assert!(!c.policy.enabled);
        assert_eq!(c.connectors.len(), 1);
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn initial_config_makes_its_user_admin_and_everyone_else_a_requester() {
        let c: Config = toml::from_str(&initial_config("local:alice")).expect("parse");
        assert_eq!(c.actors.role_of("local:alice"), Role::Admin);
        assert_eq!(c.actors.role_of("local:bob"), Role::Requester);
        assert_eq!(c.actors.confirmation_window_secs, 86_400);
        // A user name cannot add configuration: it is escaped as one TOML string.
        let hostile = "local:x\" = \"viewer\"\n[policy]\nenabled = true\n#";
        let c: Config = toml::from_str(&initial_config(hostile)).expect("parse");
        assert_eq!(c.actors.role_of(hostile), Role::Admin);
        assert!(!c.policy.enabled, "still disabled");
        assert_eq!(c.actors.roles.len(), 1);
    }

    #[test]
    fn initial_config_names_the_audit_key_file() {
        let c: Config = toml::from_str(&initial_config("local:alice")).expect("parse");
        assert_eq!(c.audit.hmac_key_file.as_deref(), Some(Path::new("audit.key")));
        assert_eq!(c.audit.signing_key.as_deref(), Some(Path::new("audit-signing.key")));
        assert_eq!(c.audit.retention_days, 2557, "seven years by default");
        check_err("[audit]\nretention_days = 364\n", 2, "audit.retention_days", "at least 365");
        check_err("[audit]\nhmac_key = \"abc\"\n", 2, "audit.hmac_key", "unknown field");
    }

    #[track_caller]
    fn check_key(content: Option<&str>, fragment: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(content) = content {
            std::fs::write(dir.path().join("audit.key"), content).expect("write");
        }
        let settings = AuditSettings { hmac_key_file: Some("audit.key".into()), ..AuditSettings::default() };
        let config = dir.path().join("remediation.toml");
        let e = settings.load_key(&config, dir.path()).expect_err("must fail");
        let text = e.to_string();
        assert_eq!(e.key.as_deref(), Some("audit.hmac_key_file"), "{text}");
        assert!(text.contains("remediation.toml"), "{text}");
        assert!(text.contains(&dir.path().join("audit.key").display().to_string()), "{text}");
        assert!(text.contains(fragment), "{text}");
        if let Some(content) = content.filter(|c| c.len() > 4) {
            assert!(!text.contains(content.trim()), "the error must not quote the file: {text}");
        }
    }

    #[test]
    fn audit_key_errors_name_the_file_and_the_key() {
        check_key(None, "cannot read the audit key file");
        check_key(Some(""), "expected 64 hex characters");
        check_key(Some(&"ab".repeat(31)), "expected 64 hex characters");
        check_key(Some(&format!("{}zz", "ab".repeat(31))), "expected 64 hex characters");
        check_key(Some(&"ab".repeat(33)), "expected 64 hex characters");
    }

    #[cfg(unix)]
    #[test]
    fn a_signing_key_readable_by_others_is_refused_and_errors_never_quote_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = remediation_audit::LogSigningKey::generate();
        let path = dir.path().join("audit-signing.key");
        key.write_new_file(&path).expect("write");
        let settings = AuditSettings { signing_key: Some("audit-signing.key".into()), ..AuditSettings::default() };
        let config = dir.path().join("remediation.toml");
        let loaded = settings.load_signing_key(&config, dir.path()).expect("load").expect("a key");
        assert_eq!(loaded.key_id(), key.key_id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = settings.load_signing_key(&config, dir.path()).expect_err("group-readable");
        assert_eq!(e.key.as_deref(), Some("audit.signing_key"));
        assert!(e.message.contains("chmod 600"), "{}", e.message);
        let seed = key.to_file_text();
        let seed = seed.lines().nth(1).expect("seed line");
        assert!(!format!("{e} {e:?}").contains(seed));
        std::fs::remove_file(&path).expect("remove");
        let e = settings.load_signing_key(&config, dir.path()).expect_err("missing");
        assert!(e.message.contains("audit-signing.key"), "{}", e.message);
        let none = AuditSettings::default().load_signing_key(&config, dir.path()).expect("none configured");
        assert!(none.is_none());
    }

    #[test]
    fn audit_key_loads_relative_to_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hex = "0f".repeat(32);
        std::fs::write(dir.path().join("audit.key"), format!("{hex}\n")).expect("write");
        let config = dir.path().join("remediation.toml");
        let settings = AuditSettings { hmac_key_file: Some("audit.key".into()), ..AuditSettings::default() };
        let key = settings.load_key(&config, dir.path()).expect("load").expect("configured");
        assert_eq!(key.to_hex().expose_secret(), hex);
        assert_eq!(
            format!("{settings:?} {key:?}"),
            "AuditSettings { hmac_key_file: Some(\"audit.key\"), signing_key: None, retention_days: 2557 } AuditKey(<redacted>)"
        );
        assert!(AuditSettings::default().load_key(&config, dir.path()).expect("none").is_none());
    }

    #[test]
    fn an_absolute_audit_key_path_is_read_outside_the_data_dir() {
        let data = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let hex = "a5".repeat(32);
        let path = elsewhere.path().join("audit.key");
        std::fs::write(&path, format!("{hex}\n")).expect("write");
        // A key of the same name in the data directory must not be the one read.
        std::fs::write(data.path().join("audit.key"), "5a".repeat(32)).expect("write");
        let settings = AuditSettings { hmac_key_file: Some(path), ..AuditSettings::default() };
        let key = settings.load_key(&data.path().join("remediation.toml"), data.path()).expect("load").expect("set");
        assert_eq!(key.to_hex().expose_secret(), hex);
    }

    #[test]
    fn server_limits_parse_with_defaults() {
        let c: Config = toml::from_str("[server]\nlisten = \"127.0.0.1:0\"\n").expect("parse");
        assert_eq!(
            (c.server.header_read_timeout_ms, c.server.request_timeout_secs, c.server.max_connections),
            (10_000, 120, 512)
        );
        let c: Config =
            toml::from_str("[server]\nheader_read_timeout_ms = 200\nrequest_timeout_secs = 5\nmax_connections = 8\n")
                .expect("parse");
        assert_eq!(
            (c.server.header_read_timeout_ms, c.server.request_timeout_secs, c.server.max_connections),
            (200, 5, 8)
        );
        check_err("[server]\nheader_timeout = 5\n", 2, "server.header_timeout", "unknown field");
    }

    #[test]
    fn execution_lease_ttl_defaults_to_30_and_must_be_positive() {
        let c: Config = toml::from_str("").expect("empty");
        assert_eq!(c.execution.lease_ttl(), std::time::Duration::from_secs(30));
        let c: Config = toml::from_str("[execution]\nlease_ttl_secs = 2\n").expect("set");
        assert_eq!(c.execution.lease_ttl_secs, 2);
        check_err(
            "[policy]\nenabled = false\n\n[execution]\nlease_ttl_secs = 0\n",
            5,
            "execution.lease_ttl_secs",
            "at least 1",
        );
        check_err("[execution]\nlease_secs = 3\n", 2, "execution.lease_secs", "unknown field");
    }

    #[test]
    fn execution_defaults_and_caps() {
        let c: Config = toml::from_str("").expect("parse");
        assert_eq!((c.execution.concurrency, c.execution.lease_ttl_secs), (32, 30));
        assert!(c.execution.connector_concurrency.is_empty());
        let sandbox = "[[connectors]]\ntype = \"sandbox\"\nid = \"sandbox\"\npath = \"s.json\"\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.toml");
        let text = format!("[execution]\nconcurrency = 4\nconnector_concurrency = {{ sandbox = 2 }}\n{sandbox}");
        std::fs::write(&path, text).expect("write");
        let c = Config::load(&path).expect("load");
        assert_eq!(c.execution.connector_concurrency.get("sandbox"), Some(&2));
        check_err(&format!("[execution]\nconcurrency = 0\n{sandbox}"), 1, "execution", "at least 1");
        check_err(
            &format!("[execution]\nconnector_concurrency = {{ okta = 8 }}\n{sandbox}"),
            1,
            "execution",
            "`okta`, which is not a configured connector (configured: sandbox)",
        );
    }

    #[test]
    fn missing_file_says_to_run_init() {
        let e = Config::load(Path::new("/nonexistent/remediation.toml")).expect_err("missing");
        assert!(e.to_string().contains("remediate init"), "{e}");
    }
}
