//! [`ConnectionStore`]: managed connections, the connectors an admin creates at run time
//! (`remediate connections add`, `POST /v1/connections`) rather than in the configuration file.
//!
//! A connection is kept with its settings (without secrets) and, when it has secrets, the
//! vault's sealed blob ([`ManagedConnection::secrets`]): core never sees a secret, only that
//! opaque JSON and the secrets' names. Every change is compare-and-set on the connection's
//! `revision` and writes its audit record (never a secret, never the sealed blob) in the same
//! transaction. The tenant's [`ConnectionStore::connections_revision`] changes with every
//! create, update, delete or rewrap, so a runtime rebuilds its connectors with one cheap read.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{SettingsRecord, StoreError};
use crate::Actor;

/// Longest connection id.
pub const MAX_CONNECTION_ID: usize = 64;

/// Checks a connection id: 1 to [`MAX_CONNECTION_ID`] characters, ASCII letters, digits, `-`,
/// `_` and `.`, starting with a letter or digit (it appears in URLs, actions and audit
/// records, and is bound into the sealed secrets' associated data).
pub fn check_connection_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if id.is_empty() || id.len() > MAX_CONNECTION_ID {
        return Err(format!("a connection id has 1 to {MAX_CONNECTION_ID} characters"));
    }
    if !id.chars().all(ok_char) || !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "connection id `{}` may hold only letters, digits, `-`, `_` and `.`, and starts with a letter or digit",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// Which targets a connector is meant for, used to choose among several capable connectors:
/// an identity's email domain, an AWS account id. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionScope {
    /// Email domains of the identities it manages (`example.com`, compared without case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// AWS account ids it manages (`123456789012`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
}

impl ConnectionScope {
    /// Whether the scope names nothing (and so matches every target, losing to a scope that
    /// names the target).
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.accounts.is_empty()
    }
}

/// The last health and permission check of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionHealth {
    /// When it was checked.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub checked_at: OffsetDateTime,
    /// Whether the provider answered as healthy.
    pub healthy: bool,
    /// What the check said (never a secret).
    pub detail: String,
    /// Permissions the connector needs and lacks.
    #[serde(default)]
    pub missing_permissions: Vec<String>,
}

/// A connector created at run time and kept in the store, with its secrets sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagedConnection {
    /// Its id, unique in the tenant (see [`check_connection_id`]), as actions name it.
    pub id: String,
    /// The connector type (`okta`, `scim`, ...), a type of the catalog.
    pub type_name: String,
    /// The connector's settings as its factory reads them, without `id`, `type` and without
    /// any secret: secrets are referenced as `{ "sealed": "name" }`.
    pub settings: serde_json::Value,
    /// The vault's sealed secrets (`remediation_vault::SealedSecrets` as JSON; core does not
    /// know its shape), `None` when the connection has no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<serde_json::Value>,
    /// The names of the sealed secrets (never their values).
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// The targets it is meant for, used by connector selection.
    #[serde(default)]
    pub scope: ConnectionScope,
    /// Whether the runtime builds it; a disabled connection is never used nor selected.
    pub enabled: bool,
    /// Grows by one with every change; the compare-and-set token of updates and deletes.
    pub revision: u64,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
    /// The last health and permission check, if any (recorded without changing `revision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ConnectionHealth>,
}

/// A connection's sealed secrets as key rotation sees them, in any tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedConnection {
    /// The tenant the connection belongs to (bound into the sealed secrets).
    pub tenant: String,
    /// The connection.
    pub id: String,
    /// Its revision, for the compare-and-set of [`ConnectionStore::replace_sealed`].
    pub revision: u64,
    /// The sealed secrets (the vault's JSON).
    pub secrets: serde_json::Value,
}

/// Managed connections of the handle's tenant. Every write is its own serializable step; every
/// change of a connection writes its audit record in the same step.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// The tenant this handle's connections belong to: the one bound into their sealed
    /// secrets.
    fn connection_tenant(&self) -> String;

    /// Stores a new connection (its `revision` is stored as 1, whatever it holds) and writes
    /// `connection_created` by `actor`. [`StoreError::ConnectionConflict`] when the id exists.
    async fn create_connection(
        &self,
        connection: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError>;

    /// The connection `id`, if any.
    async fn connection(&self, id: &str) -> Result<Option<ManagedConnection>, StoreError>;

    /// Every connection of the tenant, by id.
    async fn connections(&self) -> Result<Vec<ManagedConnection>, StoreError>;

    /// Replaces connection `id` by `new` (its id, creator and creation time are kept, its
    /// revision becomes `expected_revision + 1`) when its stored revision is
    /// `expected_revision`, else [`StoreError::ConnectionChanged`] and nothing is written;
    /// writes `connection_updated`, `connection_disabled` or `connection_enabled`.
    async fn update_connection(
        &self,
        id: &str,
        expected_revision: u64,
        new: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError>;

    /// Deletes connection `id` when its stored revision is `expected_revision` (else
    /// [`StoreError::ConnectionChanged`]), writing `connection_deleted`.
    async fn delete_connection(
        &self,
        id: &str,
        expected_revision: u64,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Records the last check of connection `id`; neither its revision nor the tenant's
    /// [`ConnectionStore::connections_revision`] changes, and nothing is audited.
    async fn record_connection_health(&self, id: &str, health: &ConnectionHealth) -> Result<(), StoreError>;

    /// A number that changes whenever a connection of the tenant is created, updated, deleted
    /// or rewrapped (0 before any); one cheap read.
    async fn connections_revision(&self) -> Result<u64, StoreError>;

    /// Every connection with sealed secrets, in **every** tenant: what a master key rotation
    /// rewraps.
    async fn all_sealed_connections(&self) -> Result<Vec<SealedConnection>, StoreError>;

    /// Replaces the sealed secrets of connection `id` of `tenant` (a rewrap under a new master
    /// key) when its revision is `expected_revision` (else [`StoreError::ConnectionChanged`]),
    /// bumping it; writes `connection_secrets_rewrapped` (naming the tenant, never the blob)
    /// to this handle's audit log (a rotation calls it on the connection's own tenant's
    /// handle, so the record lands in that tenant's log). Returns the new revision.
    async fn replace_sealed(
        &self,
        tenant: &str,
        id: &str,
        expected_revision: u64,
        secrets: &serde_json::Value,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

/// What an audit record may say about a connection: never its sealed secrets, only their
/// names.
fn audited(c: &ManagedConnection) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "type": c.type_name,
        "settings": c.settings,
        "secret_names": c.secret_names,
        "scope": c.scope,
        "enabled": c.enabled,
        "revision": c.revision,
    })
}

/// `connection_created`: `actor` created `c`.
pub fn created_record(actor: &Actor, c: &ManagedConnection) -> SettingsRecord {
    SettingsRecord::by_actor(
        "connection_created",
        actor,
        c.created_at,
        format!("connection `{}` ({})", c.id, c.type_name),
        serde_json::Value::Null,
        audited(c),
    )
}

/// The record of an update from `old` to `new`: `connection_disabled`, `connection_enabled`
/// when only the switch moved that way, else `connection_updated`.
pub fn updated_record(actor: &Actor, old: &ManagedConnection, new: &ManagedConnection) -> SettingsRecord {
    let event = match (old.enabled, new.enabled) {
        (true, false) => "connection_disabled",
        (false, true) => "connection_enabled",
        _ => "connection_updated",
    };
    SettingsRecord::by_actor(
        event,
        actor,
        new.updated_at,
        format!("connection `{}` ({})", new.id, new.type_name),
        audited(old),
        audited(new),
    )
}

/// `connection_deleted`: `actor` deleted `old`.
pub fn deleted_record(actor: &Actor, old: &ManagedConnection, at: OffsetDateTime) -> SettingsRecord {
    SettingsRecord::by_actor(
        "connection_deleted",
        actor,
        at,
        format!("connection `{}` ({})", old.id, old.type_name),
        audited(old),
        serde_json::Value::Null,
    )
}

/// `connection_secrets_rewrapped`: the data key of connection `id` of `tenant` was wrapped
/// under a new master key (`revision` is the new one).
pub fn rewrapped_record(actor: &Actor, tenant: &str, id: &str, revision: u64, at: OffsetDateTime) -> SettingsRecord {
    SettingsRecord::by_actor(
        "connection_secrets_rewrapped",
        actor,
        at,
        format!("connection `{id}` of tenant `{tenant}`: secrets rewrapped under a new master key"),
        serde_json::Value::Null,
        serde_json::json!({"tenant": tenant, "id": id, "revision": revision}),
    )
}

/// The connection stored by an update of `stored` to `new` (the id, creator and creation time
/// kept, the health kept, the revision bumped), or why not: the rule every store applies.
pub fn next_revision(
    stored: &ManagedConnection,
    expected_revision: u64,
    new: &ManagedConnection,
) -> Result<ManagedConnection, StoreError> {
    if stored.revision != expected_revision {
        return Err(changed(&stored.id, expected_revision, stored.revision));
    }
    Ok(ManagedConnection {
        id: stored.id.clone(),
        created_by: stored.created_by.clone(),
        created_at: stored.created_at,
        revision: stored.revision + 1,
        health: new.health.clone().or_else(|| stored.health.clone()),
        ..new.clone()
    })
}

/// [`StoreError::ConnectionChanged`] for `id`.
pub fn changed(id: &str, expected: u64, found: u64) -> StoreError {
    StoreError::ConnectionChanged { id: id.to_owned(), expected, found }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["okta-prod", "a", "scim_2.eu", &"x".repeat(MAX_CONNECTION_ID)] {
            assert!(check_connection_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "a/b", "a\0b", "é", &"x".repeat(MAX_CONNECTION_ID + 1)] {
            assert!(check_connection_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn audit_records_never_hold_the_sealed_blob() {
        let c = ManagedConnection {
            id: "okta-eu".into(),
            type_name: "okta".into(),
            settings: serde_json::json!({"token": {"sealed": "token"}}),
            secrets: Some(serde_json::json!({"ciphertext": "SEALED-BLOB"})),
            secret_names: vec!["token".into()],
            scope: ConnectionScope::default(),
            enabled: true,
            revision: 1,
            created_by: "local:root".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            health: None,
        };
        let actor = Actor::new("local:root", crate::Role::Admin);
        let mut off = c.clone();
        off.enabled = false;
        for r in
            [created_record(&actor, &c), updated_record(&actor, &c, &off), deleted_record(&actor, &c, c.created_at)]
        {
            let text = serde_json::to_string(&r).expect("json");
            assert!(!text.contains("SEALED-BLOB") && !text.contains("ciphertext"), "{text}");
        }
        assert_eq!(updated_record(&actor, &c, &off).setting_event, "connection_disabled");
        assert_eq!(updated_record(&actor, &off, &c).setting_event, "connection_enabled");
    }
}
