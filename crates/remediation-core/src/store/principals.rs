//! [`PrincipalStore`]: principals, their API tokens and the changes that wait for a second
//! admin.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;
use crate::{Actor, Role};

/// Checks a new principal or token name: 1 to 64 characters, lowercase ASCII letters, digits
/// and `.`, `_`, `-`, `@`, starting with a letter or digit; never `system`. Lowercase only, so
/// `Alice` and `alice` cannot be two principals; no `:`, so no server principal can take a
/// local actor's name (`local:alice`). The rule every store applies; `Err` says what is wrong.
pub fn check_principal_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("a name has 1 to 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("a name starts with a lowercase letter or a digit");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@')) {
        return Err("a name holds only lowercase letters, digits, `.`, `_`, `-` and `@`");
    }
    if name == "system" {
        return Err("`system` is the engine's own name");
    }
    Ok(())
}

/// What a principal is. Both authenticate the same way; the kind tells reviewers whether an
/// approval came from a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person.
    Person,
    /// A service or script.
    Service,
}

impl PrincipalKind {
    /// The snake_case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Service => "service",
        }
    }

    /// Reads the stored name; anything but `service` is a person.
    pub fn parse(s: &str) -> Self {
        if s == "service" { Self::Service } else { Self::Person }
    }
}

impl std::fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A principal as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Principal {
    /// The name, recorded as the actor of everything the principal does.
    pub name: String,
    /// Person or service.
    pub kind: PrincipalKind,
    /// The role in this tenant; `None` when it holds none here.
    pub role: Option<Role>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// An API token as the store knows it: never the token itself, only its name and owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiToken {
    /// The token's name, recorded in the audit beside the principal.
    pub name: String,
    /// The principal whose credential it is.
    pub principal: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// When it stops authenticating.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The other tenants this token authenticates in (an operator's token), besides its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

/// What a live token authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The token's name.
    pub token: String,
    /// Its principal.
    pub principal: String,
    /// The principal's role in this tenant.
    pub role: Role,
}

impl Credential {
    /// The actor this credential authenticates: the principal, with the token recorded beside it.
    pub fn actor(&self) -> Actor {
        Actor::new(self.principal.clone(), self.role).with_credential(self.token.clone())
    }
}

/// Where a pending change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    /// Waiting for a second admin.
    Pending,
    /// Confirmed by a second admin and applied.
    Confirmed,
    /// Withdrawn.
    Cancelled,
    /// Not confirmed in time.
    Expired,
    /// Confirmed, but what it was based on had changed meanwhile; nothing was applied.
    Failed,
}

impl PendingStatus {
    /// The snake_case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// The audit event of a change entering this status.
    pub fn event(self) -> &'static str {
        match self {
            Self::Pending => "change_proposed",
            Self::Confirmed => "change_confirmed",
            Self::Cancelled => "change_cancelled",
            Self::Expired => "change_expired",
            Self::Failed => "change_failed",
        }
    }
}

impl std::fmt::Display for PendingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change that needs a second admin's confirmation. The store keeps `change` as opaque
/// JSON; the caller knows its shape and how to apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingChange {
    /// Its id (UUIDv7).
    pub id: String,
    /// Where it stands.
    pub status: PendingStatus,
    /// What it does, in plain words.
    pub summary: String,
    /// What it does, for the code that applies it.
    pub change: serde_json::Value,
    /// Why the proposer wants it.
    pub reason: String,
    /// The admin principal who proposed it.
    pub proposed_by: String,
    /// The credential the proposer used, if any.
    pub proposed_credential: Option<String>,
    /// When it was proposed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub proposed_at: OffsetDateTime,
    /// When it expires unless confirmed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub expires_at: OffsetDateTime,
    /// Who confirmed, cancelled or failed it (`system` for an expiry).
    pub decided_by: Option<String>,
    /// The credential the decider used, if any.
    pub decided_credential: Option<String>,
    /// When it was decided.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub decided_at: Option<OffsetDateTime>,
    /// The decider's note.
    pub note: Option<String>,
}

impl PendingChange {
    /// The audit record of this change reaching its current status, made by `actor`: the
    /// summary with the reason (or, once closed, the note), and the change itself.
    pub fn audit_record(
        &self,
        actor: &Actor,
        at: OffsetDateTime,
        previous: serde_json::Value,
    ) -> super::SettingsRecord {
        let comment = match &self.note {
            Some(note) if self.status != PendingStatus::Pending => format!("{}: {note}", self.summary),
            _ => format!("{}: {}", self.summary, self.reason),
        };
        super::SettingsRecord::by_actor(
            self.status.event(),
            actor,
            at,
            comment,
            previous,
            serde_json::json!({
                "pending_change": self.id,
                "status": self.status,
                "proposed_by": self.proposed_by,
                "change": self.change,
            }),
        )
    }
}

/// Principals (people and services) with a role per tenant, their API tokens (kept as
/// SHA-256 hashes only), and changes waiting for a second admin.
///
/// Every write is one serializable transaction together with its audit record (a settings
/// record naming the actor; never a token or its hash). Who may call which method is the
/// caller's rule.
#[async_trait]
pub trait PrincipalStore: Send + Sync {
    /// Creates principal `name` of `kind` holding `role`, audited (`principal_created`). A
    /// name is never reused, even after the principal was revoked.
    async fn create_principal(
        &self,
        name: &str,
        kind: PrincipalKind,
        role: Role,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError>;

    /// The principal `name`, if it exists.
    async fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError>;

    /// Every principal, by name.
    async fn list_principals(&self) -> Result<Vec<Principal>, StoreError>;

    /// Compare-and-set of a principal's role: moves it from `expected` to `role`, audited
    /// (`principal_role_changed`); refused when the role is no longer `expected`.
    async fn set_principal_role(
        &self,
        name: &str,
        expected: Role,
        role: Role,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError>;

    /// Revokes a principal and every token it holds, audited; `false` when it was already
    /// revoked.
    async fn revoke_principal(
        &self,
        name: &str,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Stores a token of `principal` by its hash, expiring at `expires_at`, audited
    /// (`token_created`; the hash is never recorded).
    #[allow(clippy::too_many_arguments, reason = "mirrors the audited fields one to one")]
    async fn create_token(
        &self,
        principal: &str,
        name: &str,
        token_hash: &str,
        expires_at: OffsetDateTime,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<ApiToken, StoreError>;

    /// Every token, by name, never with its hash.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes the token `name`, audited; `false` when there is no live token of that name.
    async fn revoke_token(&self, name: &str, actor: &Actor, at: OffsetDateTime) -> Result<bool, StoreError>;

    /// Lets the live token `name` of this tenant authenticate in `tenants` too (an operator's
    /// token for several tenants), replacing the list it had: in each, as its principal with
    /// the principal's role there, so the principal must hold one in each (refused otherwise,
    /// nothing written). Audited (`token_tenants_set`) in this tenant. `false` when there is no
    /// live token of that name.
    async fn set_token_tenants(
        &self,
        name: &str,
        tenants: &[crate::TenantId],
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// What the token with SHA-256 `token_hash` authenticates as at `now`: `None` when it is
    /// unknown, revoked, expired, or its principal is revoked or holds no role (one indexed
    /// read).
    async fn credential_by_hash(&self, token_hash: &str, now: OffsetDateTime)
    -> Result<Option<Credential>, StoreError>;

    /// Stores `change` (status `pending`), audited (`change_proposed` by `proposer`).
    async fn propose_change(&self, change: &PendingChange, proposer: &Actor) -> Result<(), StoreError>;

    /// The pending change `id`, whatever its status.
    async fn pending_change(&self, id: &str) -> Result<Option<PendingChange>, StoreError>;

    /// Every change with `status` (every change when `None`), oldest first.
    async fn pending_changes(&self, status: Option<PendingStatus>) -> Result<Vec<PendingChange>, StoreError>;

    /// Pending changes whose `expires_at` is at or before `now`, oldest first.
    async fn overdue_changes(&self, now: OffsetDateTime) -> Result<Vec<PendingChange>, StoreError>;

    /// Compare-and-set: closes the pending change `id` with status `to` (confirmed, cancelled,
    /// expired or failed), audited (`change_<to>`); a change no longer pending is refused, so
    /// two admins cannot both close it.
    async fn close_change(
        &self,
        id: &str,
        to: PendingStatus,
        actor: &Actor,
        note: Option<String>,
        at: OffsetDateTime,
    ) -> Result<PendingChange, StoreError>;
}
