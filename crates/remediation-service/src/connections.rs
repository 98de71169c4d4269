//! Managing connections: the configuration file's connectors (read-only at run time) and the
//! tenant's managed connections, created, changed, tested, disabled and removed at run time by
//! an admin. Secrets are write-only: they are sealed with the vault as they arrive and never
//! returned, only their names ([`ConnectionView::secret_names`]).

use std::collections::BTreeMap;

use remediation_core::store::{ConnectionHealth, ConnectionScope, ManagedConnection};
use remediation_core::{Actor, Capability, EngineError, Role, StoreError};
use remediation_runtime::Runtime;
use remediation_runtime::access::AccessError;
use remediation_runtime::connections::{ConnectorSource, build_managed, check_new_id};
use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ServiceError;

/// One connection as `connections list|show` and `GET /v1/connections` show it. Never holds
/// a secret or the sealed secrets; only their names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionView {
    /// Its id, as actions name it.
    pub id: String,
    /// The connector type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `config` (a `[[connectors]]` table of the configuration file, read-only here) or
    /// `managed` (kept in the store).
    pub source: String,
    /// Whether it is in use (a configuration file's connector always is).
    pub enabled: bool,
    /// The last check's verdict, when one was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// When it was last checked.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub last_check: Option<OffsetDateTime>,
    /// What the last check said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Permissions the last check found missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_permissions: Vec<String>,
    /// What it can do (empty when it is not built: disabled, or it failed to build).
    pub capabilities: Vec<Capability>,
    /// The targets it is meant for.
    #[serde(default)]
    pub scope: ConnectionScope,
    /// The names of its sealed secrets (never their values).
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// Its settings without secrets (managed connections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// Its revision, to send back with a change (managed connections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Who created it (managed connections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Why it is not in use though enabled: it could not be built (a wrong master key, settings
    /// that do not fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A new managed connection.
pub struct NewConnection {
    /// Its id.
    pub id: String,
    /// The connector type.
    pub type_name: String,
    /// Its settings, without `id` and `type`; secrets referenced as `{ "sealed": "name" }`.
    pub settings: serde_json::Value,
    /// Its secrets by name, sealed before they are stored.
    pub secrets: BTreeMap<String, SecretString>,
    /// The targets it is meant for.
    pub scope: ConnectionScope,
}

/// A change to a managed connection; what is `None` stays.
#[derive(Default)]
pub struct ConnectionChange {
    /// New settings.
    pub settings: Option<serde_json::Value>,
    /// New secrets: they replace every secret the connection had.
    pub secrets: Option<BTreeMap<String, SecretString>>,
    /// A new scope.
    pub scope: Option<ConnectionScope>,
    /// The revision the change is based on; `None`: the one read now.
    pub expected_revision: Option<u64>,
}

/// What `connections test` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionTest {
    /// The connection.
    pub id: String,
    /// Whether the provider answered as healthy.
    pub healthy: bool,
    /// What the health check said.
    pub detail: String,
    /// Permissions the connector needs and lacks.
    pub missing_permissions: Vec<String>,
    /// Permissions the check cannot judge.
    pub unknown_permissions: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub checked_at: OffsetDateTime,
}

fn require_admin(actor: &Actor, what: &str) -> Result<(), ServiceError> {
    if actor.role == Role::Admin {
        return Ok(());
    }
    Err(ServiceError::Access(AccessError::NotAdmin {
        actor: actor.name.clone(),
        role: actor.role,
        what: what.to_owned(),
    }))
}

fn store_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::ConnectionNotFound(id) => {
            ServiceError::NotFound { what: format!("no connection `{id}`; `remediate connections list` shows them") }
        }
        other => ServiceError::Engine(EngineError::Store(other)),
    }
}

fn runtime_error(e: remediation_runtime::RuntimeError) -> ServiceError {
    match e {
        remediation_runtime::RuntimeError::Connection(e) => store_error(e),
        other => ServiceError::Runtime(other),
    }
}

/// Refuses a change to a configuration file's connector, naming the file.
fn read_only(runtime: &Runtime, id: &str) -> Result<(), ServiceError> {
    if runtime.config_connector_ids().iter().any(|c| c == id) {
        let file =
            runtime.config_file().map_or_else(|| "the configuration file".to_owned(), |f| f.display().to_string());
        return Err(ServiceError::Engine(EngineError::Refused {
            rule: "connection_read_only".to_owned(),
            reason: format!(
                "connector `{id}` is defined in {file}: edit its `[[connectors]]` table there and restart; only \
                 managed connections (`remediate connections add`) change at run time"
            ),
        }));
    }
    Ok(())
}

/// Every connection: the configuration file's connectors, then the tenant's managed
/// connections (disabled ones and those that failed to build included), by id.
pub async fn connections(runtime: &Runtime) -> Result<Vec<ConnectionView>, ServiceError> {
    let entries = runtime.connector_entries().await?;
    let failures = runtime.connection_failures().await?;
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.source == ConnectorSource::Config) {
        out.push(ConnectionView {
            id: e.connector.id().to_owned(),
            type_name: e.type_name.clone(),
            source: ConnectorSource::Config.as_str().to_owned(),
            enabled: true,
            healthy: None,
            last_check: None,
            detail: None,
            missing_permissions: Vec::new(),
            capabilities: e.connector.capabilities(),
            scope: e.scope.clone(),
            secret_names: Vec::new(),
            settings: None,
            revision: None,
            created_by: None,
            error: None,
        });
    }
    for c in runtime.store().connections().await.map_err(store_error)? {
        let built = entries.iter().find(|e| e.source == ConnectorSource::Managed && e.connector.id() == c.id);
        let error = failures.iter().find(|f| f.id == c.id).map(|f| f.error.clone());
        out.push(managed_view(c, built.map(|e| e.connector.capabilities()).unwrap_or_default(), error));
    }
    Ok(out)
}

fn managed_view(c: ManagedConnection, capabilities: Vec<Capability>, error: Option<String>) -> ConnectionView {
    let health = c.health.clone();
    ConnectionView {
        id: c.id,
        type_name: c.type_name,
        source: ConnectorSource::Managed.as_str().to_owned(),
        enabled: c.enabled,
        healthy: health.as_ref().map(|h| h.healthy),
        last_check: health.as_ref().map(|h| h.checked_at),
        detail: health.as_ref().map(|h| h.detail.clone()),
        missing_permissions: health.map(|h| h.missing_permissions).unwrap_or_default(),
        capabilities,
        scope: c.scope,
        secret_names: c.secret_names,
        settings: Some(c.settings),
        revision: Some(c.revision),
        created_by: Some(c.created_by),
        error,
    }
}

/// The connection `id`.
pub async fn connection(runtime: &Runtime, id: &str) -> Result<ConnectionView, ServiceError> {
    connections(runtime).await?.into_iter().find(|c| c.id == id).ok_or_else(|| ServiceError::NotFound {
        what: format!("no connection `{id}`; `remediate connections list` shows them"),
    })
}

/// Checks `settings` of a `type_name` connection `id` by building it with `secrets` readable
/// (nothing is contacted: factories build without calling the provider).
fn check_build(
    runtime: &Runtime,
    type_name: &str,
    id: &str,
    settings: &serde_json::Value,
    secrets: &BTreeMap<String, SecretString>,
) -> Result<(), ServiceError> {
    if !settings.is_object() {
        return Err(ServiceError::Invalid { field: "settings", message: "settings are a JSON object".to_owned() });
    }
    remediation_core::secret_source::with_sealed(secrets, || {
        runtime.catalog().build_settings(type_name, id, settings, runtime.build_context())
    })
    .map(drop)
    .map_err(|e| ServiceError::Invalid { field: "settings", message: chain(&e) })
}

fn chain(e: &dyn std::error::Error) -> String {
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

/// Keys that name a file or variable of the process that are not secrets (a CA bundle, AWS's
/// access key id variable) and so may appear in a managed connection's settings.
const OUTSIDE_ALLOWED: &[&str] = &["ca_file", "access_key_id_env"];

/// Refuses settings that read a secret from the server's environment or files (`{"env": ..}`,
/// `{"file": ..}`, `*_env`, `*_file` keys): a managed connection's secrets are sealed, and an
/// admin over the API must not make the server send one of its own files or variables to a
/// provider URL of their choosing.
fn check_sealed_only(settings: &serde_json::Value, path: &str) -> Result<(), ServiceError> {
    match settings {
        serde_json::Value::Object(map) => {
            if map.len() == 1 && (map.contains_key("env") || map.contains_key("file")) {
                return Err(ServiceError::Invalid {
                    field: "settings",
                    message: format!(
                        "`{path}` reads a secret from the server's environment or files; a managed connection's \
                         secrets are sealed: give it with --secret NAME=@FILE and write {{\"sealed\": \"NAME\"}}"
                    ),
                });
            }
            for (key, value) in map {
                let outside =
                    (key.ends_with("_env") || key.ends_with("_file")) && !OUTSIDE_ALLOWED.contains(&key.as_str());
                if outside && !value.is_null() {
                    return Err(ServiceError::Invalid {
                        field: "settings",
                        message: format!(
                            "`{key}` reads a secret from the server's environment or files; a managed connection's \
                             secrets are sealed: use `{}_sealed` with --secret",
                            key.trim_end_matches("_env").trim_end_matches("_file")
                        ),
                    });
                }
                check_sealed_only(value, &if path.is_empty() { key.clone() } else { format!("{path}.{key}") })?;
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| check_sealed_only(v, path)),
        _ => Ok(()),
    }
}

fn check_secret_names(secrets: &BTreeMap<String, SecretString>) -> Result<(), ServiceError> {
    for name in secrets.keys() {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(ServiceError::Invalid {
                field: "secrets",
                message: format!(
                    "secret name `{}` may hold only 1 to 64 letters, digits, `-`, `_` and `.`",
                    name.escape_debug()
                ),
            });
        }
    }
    Ok(())
}

/// Creates a managed connection (admin only): its id must be free in the store and in the
/// configuration file, its settings must build with its secrets, and its secrets are sealed
/// with the vault (creating the default master key file on first use) before they are stored.
pub async fn add_connection(
    runtime: &Runtime,
    actor: &Actor,
    new: NewConnection,
) -> Result<ConnectionView, ServiceError> {
    require_admin(actor, "add a connection")?;
    let config_file = runtime.config_file().map(std::path::Path::to_path_buf).unwrap_or_default();
    check_new_id(&runtime.config_connector_ids(), &new.id, &config_file).map_err(|e| match e {
        remediation_runtime::RuntimeError::ConnectionId { why } => ServiceError::Invalid { field: "id", message: why },
        other => runtime_error(other),
    })?;
    check_secret_names(&new.secrets)?;
    check_sealed_only(&new.settings, "")?;
    check_build(runtime, &new.type_name, &new.id, &new.settings, &new.secrets)?;
    let tenant = runtime.store().connection_tenant();
    let sealed =
        if new.secrets.is_empty() { None } else { Some(runtime.vault().seal(&tenant, &new.id, &new.secrets)?) };
    let now = runtime.clock().now();
    let connection = ManagedConnection {
        id: new.id,
        type_name: new.type_name,
        settings: new.settings,
        secrets: sealed,
        secret_names: new.secrets.keys().cloned().collect(),
        scope: new.scope,
        enabled: true,
        revision: 1,
        created_by: actor.name.clone(),
        created_at: now,
        updated_at: now,
        health: None,
    };
    let stored = runtime.store().create_connection(&connection, actor).await.map_err(store_error)?;
    connection_after(runtime, stored).await
}

/// The view of `stored` once the runtime has rebuilt its connectors.
async fn connection_after(runtime: &Runtime, stored: ManagedConnection) -> Result<ConnectionView, ServiceError> {
    let id = stored.id.clone();
    match connection(runtime, &id).await {
        Ok(view) => Ok(view),
        Err(ServiceError::NotFound { .. }) => Ok(managed_view(stored, Vec::new(), None)),
        Err(e) => Err(e),
    }
}

async fn stored(runtime: &Runtime, id: &str) -> Result<ManagedConnection, ServiceError> {
    read_only(runtime, id)?;
    runtime
        .store()
        .connection(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| store_error(StoreError::ConnectionNotFound(id.to_owned())))
}

/// Changes a managed connection (admin only): new settings, secrets (replacing all of them)
/// or scope, compare-and-set on its revision. A configuration file's connector is refused,
/// naming the file. The changed connection must still build.
pub async fn update_connection(
    runtime: &Runtime,
    actor: &Actor,
    id: &str,
    change: ConnectionChange,
) -> Result<ConnectionView, ServiceError> {
    require_admin(actor, "change a connection")?;
    let old = stored(runtime, id).await?;
    let mut new = old.clone();
    if let Some(settings) = change.settings {
        check_sealed_only(&settings, "")?;
        new.settings = settings;
    }
    if let Some(scope) = change.scope {
        new.scope = scope;
    }
    let tenant = runtime.store().connection_tenant();
    if let Some(secrets) = &change.secrets {
        check_secret_names(secrets)?;
        check_build(runtime, &new.type_name, id, &new.settings, secrets)?;
        new.secret_names = secrets.keys().cloned().collect();
        new.secrets = if secrets.is_empty() { None } else { Some(runtime.vault().seal(&tenant, id, secrets)?) };
    } else {
        // Opens the stored secrets only for this trial build, as the runtime does.
        build_managed(runtime.catalog(), runtime.vault(), &tenant, &new, runtime.build_context())
            .map_err(|e| ServiceError::Invalid { field: "settings", message: chain(&e) })?;
    }
    new.updated_at = runtime.clock().now();
    let expected = change.expected_revision.unwrap_or(old.revision);
    let stored = runtime.store().update_connection(id, expected, &new, actor).await.map_err(store_error)?;
    connection_after(runtime, stored).await
}

/// Disables (`false`) or enables a managed connection (admin only): a disabled connection is
/// not built, not used and never selected. A configuration file's connector is refused.
pub async fn set_connection_enabled(
    runtime: &Runtime,
    actor: &Actor,
    id: &str,
    enabled: bool,
) -> Result<ConnectionView, ServiceError> {
    require_admin(actor, if enabled { "enable a connection" } else { "disable a connection" })?;
    let old = stored(runtime, id).await?;
    if old.enabled == enabled {
        return connection_after(runtime, old).await;
    }
    let new = ManagedConnection { enabled, updated_at: runtime.clock().now(), ..old.clone() };
    let stored = runtime.store().update_connection(id, old.revision, &new, actor).await.map_err(store_error)?;
    connection_after(runtime, stored).await
}

/// Removes a managed connection (admin only); a configuration file's connector is refused.
pub async fn remove_connection(runtime: &Runtime, actor: &Actor, id: &str) -> Result<(), ServiceError> {
    require_admin(actor, "remove a connection")?;
    let old = stored(runtime, id).await?;
    runtime.store().delete_connection(id, old.revision, actor, runtime.clock().now()).await.map_err(store_error)
}

/// Runs the health and permission checks of connection `id` now (admin only: they reach the
/// provider with its credentials) and, for a managed connection, records the outcome. A
/// managed connection that cannot be built is recorded unhealthy with why.
pub async fn test_connection(runtime: &Runtime, actor: &Actor, id: &str) -> Result<ConnectionTest, ServiceError> {
    require_admin(actor, "test a connection")?;
    let entries = runtime.connector_entries().await?;
    let checked_at = runtime.clock().now();
    let test = match entries.iter().find(|e| e.connector.id() == id) {
        Some(entry) => {
            let c = &entry.connector;
            let (healthy, detail) = match c.health().await {
                Ok(h) => (h.healthy, h.detail),
                Err(e) => (false, chain(&e)),
            };
            let (missing, unknown, perm_error) = match c.check_permissions().await {
                Ok(p) => (p.missing, p.unknown, None),
                Err(e) => (Vec::new(), Vec::new(), Some(chain(&e))),
            };
            let detail = match perm_error {
                Some(e) => format!("{detail}; permission check failed: {e}"),
                None => detail,
            };
            ConnectionTest {
                id: id.to_owned(),
                healthy,
                detail,
                missing_permissions: missing,
                unknown_permissions: unknown,
                checked_at,
            }
        }
        None => {
            let stored =
                runtime.store().connection(id).await.map_err(store_error)?.ok_or_else(|| ServiceError::NotFound {
                    what: format!("no connection `{id}`; `remediate connections list` shows them"),
                })?;
            let detail = if stored.enabled {
                let failures = runtime.connection_failures().await?;
                failures
                    .into_iter()
                    .find(|f| f.id == id)
                    .map_or_else(|| "not built".to_owned(), |f| format!("cannot be built: {}", f.error))
            } else {
                "disabled: enable it to test it".to_owned()
            };
            ConnectionTest {
                id: id.to_owned(),
                healthy: false,
                detail,
                missing_permissions: Vec::new(),
                unknown_permissions: Vec::new(),
                checked_at,
            }
        }
    };
    if runtime.store().connection(id).await.map_err(store_error)?.is_some() {
        let health = ConnectionHealth {
            checked_at,
            healthy: test.healthy,
            detail: test.detail.clone(),
            missing_permissions: test.missing_permissions.clone(),
        };
        runtime.store().record_connection_health(id, &health).await.map_err(store_error)?;
    }
    Ok(test)
}

#[cfg(test)]
#[path = "connections_tests.rs"]
mod tests;
