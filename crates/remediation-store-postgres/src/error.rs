//! Errors of the PostgreSQL store: why it could not be configured, migrated or connected, and
//! the refusals attached to [`remediation_core::StoreError::Backend`].

use std::path::PathBuf;

use remediation_audit::CheckpointVerdict;
use remediation_core::{ActionId, State};
use time::OffsetDateTime;

/// Why the PostgreSQL store could not be configured, migrated or connected, or why it refused
/// a request.
///
/// Failures of individual store operations reach callers as
/// [`remediation_core::StoreError::Backend`]; the variants here without a PostgreSQL source are
/// the reasons attached to some of those. No variant holds a password, and none prints the
/// connection URL's password (a URL with one is refused).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorePostgresError {
    /// The store URL cannot be parsed.
    #[error(
        "the store URL is not a PostgreSQL connection string ({reason}); expected `postgres://user@host:port/db?sslmode=require`"
    )]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The store URL carries a password, which would then appear wherever the URL is shown.
    #[error(
        "the store URL contains a password; remove it and give the password through an environment variable or a file"
    )]
    PasswordInUrl,
    /// The environment variable that should hold the password is not set.
    #[error("the environment variable {var} that should hold the store's password is not set")]
    PasswordEnv {
        /// The variable.
        var: String,
    },
    /// The file that should hold the password cannot be read.
    #[error("cannot read the store's password file {}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Both an environment variable and a file were named for the password.
    #[error("name either a password environment variable or a password file for the store, not both")]
    TwoPasswordSources,
    /// The TLS client could not be built (the CA file).
    #[error("cannot set up TLS for the store at {target}")]
    Tls {
        /// Host, port and database.
        target: String,
        /// What failed.
        #[source]
        source: remediation_tls::TlsError,
    },
    /// The connection pool could not be built.
    #[error("cannot set up the connection pool for the store at {target}")]
    Pool {
        /// Host, port and database.
        target: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server could not be reached or refused the login.
    #[error("cannot connect to the store at {target}{hint}")]
    Connect {
        /// Host, port and database.
        target: String,
        /// What to do about it, when the server's answer says (empty otherwise).
        hint: &'static str,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database holds no schema of this store yet.
    #[error("the store at {target} has no schema yet; run `remediate migrate` (as the schema's owner role) first")]
    SchemaMissing {
        /// Host, port and database.
        target: String,
    },
    /// The database's schema is older than this build needs.
    #[error(
        "the store at {target} has schema version {found}, older than this build's {supported}; run `remediate migrate` (as the schema's owner role)"
    )]
    SchemaTooOld {
        /// Host, port and database.
        target: String,
        /// The version found.
        found: u32,
        /// The version this build knows.
        supported: u32,
    },
    /// The database's schema was written by a newer build.
    #[error(
        "the store at {target} has schema version {found}, newer than this build supports ({supported}); upgrade remediate"
    )]
    SchemaTooNew {
        /// Host, port and database.
        target: String,
        /// The version found.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A migration failed; the schema stays at the version before it.
    #[error("cannot upgrade the store at {target} to schema version {version}{hint}")]
    Migrate {
        /// Host, port and database.
        target: String,
        /// The version that could not be applied (0: the version table or the grants).
        version: u32,
        /// What to do about it, when the server's answer says (empty otherwise).
        hint: &'static str,
        /// What failed.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The runtime role named for the grants is not a plain role name.
    #[error("invalid runtime role name `{name}`: use lowercase letters, digits and `_`, starting with a letter")]
    InvalidRoleName {
        /// The name, as given (cut to 80 characters).
        name: String,
    },
    /// An API token with this name exists and is not revoked.
    #[error("a token named `{name}` exists; revoke it first or choose another name")]
    TokenExists {
        /// The token name.
        name: String,
    },
    /// The token name was used by another principal.
    #[error("the token name `{name}` belongs to principal `{principal}`; choose another name")]
    TokenNameTaken {
        /// The token name.
        name: String,
        /// The principal it belongs to.
        principal: String,
    },
    /// A principal with this name exists.
    #[error("a principal named `{name}` exists")]
    PrincipalExists {
        /// The principal.
        name: String,
    },
    /// No principal with this name.
    #[error("no principal named `{name}`; create it first with `remediate principal create`")]
    UnknownPrincipal {
        /// The principal.
        name: String,
    },
    /// A token was to reach a tenant where its principal holds no role (or that does not exist).
    #[error(
        "principal `{principal}` holds no role in tenant `{tenant}`; give it one there first (`remediate --tenant {tenant} principal create {principal} --role ...`)"
    )]
    NoRoleInTenant {
        /// The principal.
        principal: String,
        /// The tenant.
        tenant: String,
    },
    /// The principal was revoked.
    #[error("principal `{name}` was revoked")]
    PrincipalRevoked {
        /// The principal.
        name: String,
    },
    /// A principal or token name outside the allowed form.
    #[error("invalid name `{name}`: {why}")]
    InvalidName {
        /// The name, as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The principal's role is not the one the change was based on.
    #[error("principal `{name}` is now {found}, not {expected}; read it again and propose the change afresh")]
    RoleChanged {
        /// The principal.
        name: String,
        /// The role the change expected.
        expected: String,
        /// The role found.
        found: String,
    },
    /// No pending change with this id.
    #[error("no pending change with id {id}")]
    UnknownPendingChange {
        /// The id asked for.
        id: String,
    },
    /// A pending change with this id exists already.
    #[error("a pending change with id {id} exists")]
    PendingChangeExists {
        /// The id.
        id: String,
    },
    /// The pending change was already closed.
    #[error("change {id} is {status}, no longer pending")]
    PendingChangeClosed {
        /// The change.
        id: String,
        /// Its status.
        status: String,
    },
    /// An action with this id exists already.
    #[error("an action with id {id} exists")]
    ActionExists {
        /// The action.
        id: ActionId,
    },
    /// A new action's first transition has a `from` state.
    #[error("the first transition of a new action must have no `from` state, but it has {from}")]
    NotAFirstTransition {
        /// The `from` state given.
        from: State,
    },
    /// A transition names another action than the one it is stored with.
    #[error("the transition is for action {record} but was stored with action {action}")]
    ActionMismatch {
        /// The action being stored.
        action: ActionId,
        /// The action the transition names.
        record: ActionId,
    },
    /// A new action's state differs from where its first transition leads.
    #[error("the new action is {state} but its first transition leads to {to}")]
    InitialStateMismatch {
        /// The action's state.
        state: State,
        /// The transition's `to` state.
        to: State,
    },
    /// The sequencer would extend a chain its checkpoint does not vouch for.
    #[error(
        "the audit chain does not match its checkpoint, so it is not extended ({verdict}); run `remediate audit verify`, and restore the store from a backup if it was tampered with"
    )]
    CheckpointMismatch {
        /// What the checkpoint says about the chain.
        verdict: CheckpointVerdict,
    },
    /// The store keeps a checkpoint sealed with a key, but this process has no key.
    #[error(
        "the audit chain is protected by a checkpoint sealed with a key, but the store was connected without the key; configure `audit.hmac_key_file`"
    )]
    KeyRequired,
    /// The audit head row and the audit table's last record disagree.
    #[error(
        "the audit chain head names record {head} but the chain ends at record {last}, so it is not extended; run `remediate audit verify`"
    )]
    AuditHeadMismatch {
        /// The `seq` the head row names (0: none).
        head: u64,
        /// The `seq` of the chain's last record (0: none).
        last: u64,
    },
    /// Adoption of an existing chain was refused.
    #[error("adoption refused: {reason}")]
    AdoptionRefused {
        /// Why, in plain words.
        reason: String,
    },
    /// A timestamp cannot be stored as integer nanoseconds since 1970.
    #[error("timestamp {at} is outside the range the store can hold (years 1678 to 2261)")]
    TimestampOutOfRange {
        /// The timestamp.
        at: OffsetDateTime,
    },
    /// A delivery mark move that does not go forward from `from` to `to`, parks a record it
    /// does not pass, or names a `seq` beyond what the store can hold (2^63 - 1).
    #[error(
        "sink `{sink}`: a delivery mark moves forward (from {from} to {to}, at most 2^63 - 1) and parks only the records it passes"
    )]
    MarkNotForward {
        /// The sink.
        sink: String,
        /// The mark the move started from.
        from: u64,
        /// The mark it asked for.
        to: u64,
    },
}

impl StorePostgresError {
    /// The reason attached to a [`remediation_core::StoreError::Backend`], when it is one of
    /// this store's refusals (a name taken, an unknown principal, a closed pending change)
    /// rather than a failure of the database; callers map these to "conflict" or "not found".
    pub fn refusal_of(e: &remediation_core::StoreError) -> Option<&StorePostgresError> {
        match e {
            remediation_core::StoreError::Backend { source, .. } => source.downcast_ref::<StorePostgresError>(),
            _ => None,
        }
    }
}

/// What to do about a PostgreSQL failure, for the errors whose SQLSTATE says; empty otherwise.
/// Starts with `: ` so it can follow the description of what failed.
pub(crate) fn hint(e: &tokio_postgres::Error) -> &'static str {
    use tokio_postgres::error::SqlState;
    let Some(code) = e.code() else {
        return if e.is_closed() { ": the connection to the server was closed; check that it runs" } else { "" };
    };
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        ": the role lacks a privilege; run `remediate migrate` as the schema's owner with the runtime role named, so it is granted"
    } else if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        ": the server refused the login; check the user and the password source"
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        ": the database does not exist; create it first"
    } else if *code == SqlState::UNDEFINED_TABLE {
        ": a table is missing; run `remediate migrate`"
    } else if *code == SqlState::TOO_MANY_CONNECTIONS {
        ": the server has no free connection; lower the pool size or raise `max_connections`"
    } else {
        ""
    }
}
