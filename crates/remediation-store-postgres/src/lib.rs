//! The shared [`remediation_core::Store`] for several server replicas: PostgreSQL over
//! tokio-postgres with a connection pool (deadpool-postgres), TLS that always verifies the
//! server (rustls through `remediation-tls`), the password from an environment variable or a
//! file, and embedded versioned migrations.
//!
//! - **Migrations** run only through [`migrate`], as the role that owns the schema, which also
//!   grants the application's runtime role exactly what it needs ([`MigrateOptions`]): SELECT,
//!   INSERT, UPDATE and DELETE on the mutable tables, SELECT and INSERT on `audit` and the
//!   verifiable log's tables, SELECT on `audit_archives`, EXECUTE on the archive function
//!   `audit_archive`, and nothing owned. [`connect`] never migrates: it refuses a database whose schema is missing, older
//!   or newer than [`SCHEMA_VERSION`], naming both versions.
//! - **State changes** are one transaction each: the action's row is locked (`FOR UPDATE`), its
//!   state compared with `record.from` and its lease epoch with the change's fence, then the
//!   row, the lease and the audit entry are written together. Rows are picked for claims and
//!   takeovers with `FOR UPDATE SKIP LOCKED`, so replicas never wait on, nor take, each
//!   other's rows.
//! - **Limit slots** are counted and reserved under a transaction-scoped advisory lock per
//!   limit key (`pg_advisory_xact_lock`), taken in key order after the action's row lock, so of
//!   N concurrent starts on a window of limit L exactly L start, whichever replica makes them;
//!   counts are ranges on the (`key`, `at`) index.
//! - **The audit log** is written in two steps. A change inserts its entry into `audit_pending`
//!   in its own transaction and never touches the chain head, so writers do not contend. The
//!   **sequencer** ([`PostgresStore::sequence_pending`]; every [`PostgresConfig`]'s
//!   interval in a background task that stops with the store) runs under the named lease
//!   `audit-sequencer` ([`remediation_core::LeaseStore`]): each batch transaction re-checks
//!   the lease's holder, epoch and expiry with the lease row locked, so a leader that lost its
//!   lease seals nothing and a forked log is impossible. It seals pending entries in order onto
//!   the head (`audit_head`) with [`remediation_audit::seal_prepared`], inserts them into
//!   `audit`, deletes them from `audit_pending`, moves the head and, with an
//!   [`remediation_audit::AuditKey`], reseals the HMAC checkpoint. Audit reads see sequenced
//!   records only; [`remediation_core::ActionStore::transitions`] also shows an action's
//!   pending ones. `audit` is insert-only: triggers refuse UPDATE, DELETE and TRUNCATE (for
//!   the owner too) and any INSERT that does not extend the chain, and the runtime role holds
//!   no UPDATE or DELETE privilege on it.
//! - **Retention** ([`remediation_core::AuditLog::archive_audit`], schema version 4): the
//!   delete trigger lets a record go only when a registered archive (`audit_archives`,
//!   insert-only, read-only for the runtime role) holds it. The runtime role removes records
//!   only through `audit_archive(...)`, a `SECURITY DEFINER` function of the owner with a
//!   fixed search path, which checks the archive against the log under the chain lock (the
//!   last archived record stored with the archive's last hash, a newer record staying, a
//!   stored signed head covering it; else SQLSTATE `RMA01`, a
//!   [`remediation_core::StoreError::AuditLogConflict`]), registers it and removes exactly
//!   those records. Leaf hashes stay; verification resumes after the archive.
//! - The sequencing lag (how long an entry waits between its write and its sealing, by the
//!   server's clock) is kept per sealed entry ([`PostgresStore::take_sequencing_lags`]) and
//!   for the oldest waiting one ([`PostgresStore::sequencing_lag`]).
//! - No store call blocks an async thread: every statement goes through tokio-postgres.
//!
//! # Schema (version 7)
//!
//! | table | what |
//! |---|---|
//! | `schema_migrations` | `version`, `description`, `applied_at` |
//! | `actions` | `id`, `tenant`, `state`, `connector`, `requested_by`, `identity`, `canonical_identity`, `control_id`, `campaign` (version 7), `handle` (version 7; the short number, unique), `created_at`, `updated_at`, `due_at`, `not_before`, lease (`lease_holder`, `lease_epoch`, `lease_expires_at`), a worker's reservation (`claimed_by`, `claimed_until`, version 5), `detail_json`; indexed on (`tenant`, `created_at`, `id`), (`tenant`, `state`, `created_at`, `id`), (`tenant`, `due_at`), leased rows by expiry |
//! | `audit` | (`tenant`, `seq`) key, `action_id`, `at`, `record_json` (canonical JSON), `prev_hash`, `hash`; indexed on (`action_id`, `seq`) |
//! | `audit_pending` | `id` (identity), `tenant`, `action_id`, `body_json`, `written_at` (server clock, for the sequencing lag) |
//! | `audit_head`, `audit_checkpoint` | per tenant: the chain head; its HMAC-sealed checkpoint |
//! | `limit_slots` | `key`, `at`, `action_id`; indexed on (`key`, `at`), (`action_id`) (no index on `at` alone: a generic plan would count a key's window on it) |
//! | `safety_state` | per tenant: `state_json` |
//! | `principals`, `principal_roles`, `credentials`, `pending_changes` | as in the embedded store |
//! | `leases` | named leases of single-leader jobs |
//! | `audit_leaves`, `audit_tree_heads`, `audit_keys` (version 2) | the verifiable log: leaf hashes, signed tree heads, published keys; insert-only as `audit` is |
//! | `ui_sessions` (version 3) | (`tenant`, `id_hash`) key (hex SHA-256 of the session id, never the id), `token_hash`, `csrf`, `expires_at`, `flash_json`: the approval page's sessions, shared by every replica; indexed on (`tenant`, `expires_at`); the runtime role may change them |
//! | `audit_archives` (version 4) | `id`, `tenant`, `through_seq`, `last_hash`, `tree_size`, `root_hash`, `file_sha256`, `archived_at`: each archive of the oldest records, insert-only; with the function `audit_archive` |
//! | `delivery_marks` (version 6) | (`tenant`, `sink`) key, `delivered_through` (the last `seq` the sink acknowledged or parked), `updated_at`: each event and audit sink's position in the audit log, the outbox; moved by compare-and-set, fenced by the relay's named lease; the runtime role may change them |
//! | `campaigns` (version 7) | (`tenant`, `name`) key, `created_at`, `record_json`: each campaign (a named import) and how far it got; the runtime role may change them |
//! | `campaign_entries` (version 7) | (`tenant`, `campaign`, `idx`) key (the campaign references `campaigns`), `entry_json`: a campaign's entries, in order; the runtime role may change them |
//! | `connections` (version 8) | (`tenant`, `id`) key, `revision`, `record_json` (its secrets only as the vault's ciphertext): managed connections; the runtime role may change them |
//! | `connection_revisions` (version 8) | `tenant` key, `revision`: grows with every change of a tenant's connections |
//! | `documents` (version 10) | (`tenant`, `collection`, `id`) key, `revision` (the compare-and-set token, from 1), `body` (JSON), `updated_by`, `updated_at` (RFC 3339): the [`remediation_core::Document`]s of each tenant; the runtime role may change them |
//! | `action_handles` (version 7) | a sequence: each new action's short number (`actions.handle`, unique) |
//! | `delivery_parked` (version 6) | (`tenant`, `sink`, `seq`) key (the sink references `delivery_marks`), `reason`, `parked_at`, `replay`: the records a sink refused for good, until replayed; the runtime role may change them |
//!
//! # Example
//!
//! ```no_run
//! use remediation_core::{ActionFilter, PageRequest};
//! use remediation_store_postgres::{MigrateOptions, PostgresConfig, connect, migrate_with};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let owner = PostgresConfig::from_url("postgres://remediation_owner@db.internal/remediation?sslmode=require")?
//!     .with_password(PostgresConfig::load_password(Some("REMEDIATION_OWNER_PASSWORD"), None)?.unwrap_or_default());
//! migrate_with(&owner, &MigrateOptions { runtime_role: Some("remediation_app".into()) }).await?;
//!
//! let app = PostgresConfig::from_url("postgres://remediation_app@db.internal/remediation?sslmode=require")?
//!     .with_password(PostgresConfig::load_password(None, Some("/run/secrets/pg".as_ref()))?.unwrap_or_default());
//! let store = connect(&app, None).await?;
//! assert!(store.list(&ActionFilter::default(), &PageRequest::first(50)).await?.items.is_empty());
//! # Ok(())
//! # }
//! ```

mod campaigns;
mod config;
mod connections;
mod delivery;
mod documents;
mod error;
mod lease;
mod log;
mod principals;
mod schema;
mod sequencer;
mod sessions;
mod store;
mod tenants;
mod transfer;

use std::sync::Arc;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, DEFAULT_SEQUENCER_INTERVAL, DEFAULT_SEQUENCER_TTL, MigrateOptions,
    PostgresConfig,
};
pub use error::StorePostgresError;
use remediation_audit::AuditKey;
use remediation_core::Store;
pub use schema::{MigrationReport, SCHEMA_VERSION};
pub use sequencer::SEQUENCER_LEASE;
pub use store::PostgresStore;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::hint;

/// Applies the migrations the database lacks, as the schema's owner role (the role `config`
/// logs in as), granting nothing: the owner is then also the application's role. See
/// [`migrate_with`] to grant a separate runtime role.
pub async fn migrate(config: &PostgresConfig) -> Result<MigrationReport, StorePostgresError> {
    schema::migrate(config, &MigrateOptions::default()).await
}

/// [`migrate`], then grants `options.runtime_role` what the application needs (SELECT,
/// INSERT, UPDATE, DELETE on the mutable tables; SELECT and INSERT on `audit`; usage of the
/// schema) and nothing more. Idempotent: run it again after every upgrade.
pub async fn migrate_with(
    config: &PostgresConfig,
    options: &MigrateOptions,
) -> Result<MigrationReport, StorePostgresError> {
    schema::migrate(config, options).await
}

/// Connects to the store (a pool of up to the configured size), after checking its schema is
/// this build's, and starts the background sequencer; with `key`, the audit checkpoint is
/// kept and checked. The store is what the runtime and the CLI hold.
pub async fn connect(config: &PostgresConfig, key: Option<AuditKey>) -> Result<Arc<dyn Store>, StorePostgresError> {
    Ok(Arc::new(PostgresStore::connect(config, key).await?))
}

/// The schema version of the database (`None`: it holds no schema of this store).
pub async fn schema_version(config: &PostgresConfig) -> Result<Option<u32>, StorePostgresError> {
    let client = connect_one(config).await?;
    schema::read_version(&client).await.map_err(|source| StorePostgresError::Connect {
        target: config.target(),
        hint: hint(&source),
        source: Box::new(source),
    })
}

/// The TLS connector for `config`: `None` for `sslmode=disable`; otherwise rustls verifying the
/// server against the configured roots (else the system's).
pub(crate) fn tls(config: &PostgresConfig) -> Result<Option<MakeRustlsConnect>, StorePostgresError> {
    if !config.uses_tls() {
        return Ok(None);
    }
    let client = remediation_tls::client_config(config.root_certificates.as_deref())
        .map_err(|source| StorePostgresError::Tls { target: config.target(), source })?;
    Ok(Some(MakeRustlsConnect::new(client.as_ref().clone())))
}

/// One connection outside the pool (migrations, version checks), driven on a task of its own.
pub(crate) async fn connect_one(config: &PostgresConfig) -> Result<Client, StorePostgresError> {
    let pg = config.connection_config();
    let failed = |source: tokio_postgres::Error| StorePostgresError::Connect {
        target: config.target(),
        hint: hint(&source),
        source: Box::new(source),
    };
    match tls(config)? {
        Some(tls) => {
            let (client, connection) = pg.connect(tls).await.map_err(failed)?;
            tokio::spawn(drive(connection));
            Ok(client)
        }
        None => {
            let (client, connection) = pg.connect(tokio_postgres::NoTls).await.map_err(failed)?;
            tokio::spawn(drive(connection));
            Ok(client)
        }
    }
}

/// Drives a connection until it closes; its end is logged, never an error of the caller.
async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL store connection ended");
    }
}
