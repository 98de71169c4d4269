//! The embedded default [`remediation_core::Store`]: one SQLite database file (bundled
//! SQLite, WAL mode), shared safely by several processes.
//!
//! - State changes are committed by one writer thread in groups: every request queued when a
//!   group starts shares one `IMMEDIATE` transaction and one fsync, each inside its own
//!   savepoint, so the action's row and its audit record (which holds the transition, stored
//!   once) are written together
//!   or not at all, a failing request (a state conflict, a full limit window) rolls back only
//!   itself, and the compare of the current state with `record.from` happens under the write
//!   lock. Reads run on a small pool of connections on blocking threads; nothing touches SQLite
//!   on an async worker thread.
//! - The audit log is written in two steps. A state change queues its entry with the writer
//!   (in memory) without reading the chain head; the sequencer, run once at the end of the
//!   group's write transaction, seals the queued entries in order onto the head kept in
//!   `audit_head` ([`remediation_audit::seal`]), inserts them into `audit` and moves the head.
//!   Entries an older version left in `audit_pending` are sealed first and deleted from it. `audit` is insert-only: SQLite triggers abort any
//!   `UPDATE` or `DELETE` on it, and any `INSERT` that does not extend the chain.
//!   [`SqliteStore::verify_audit`] re-checks it.
//! - With an [`AuditKey`] ([`SqliteStore::open_with`]), the chain head is kept in a
//!   checkpoint outside the chained table, sealed with HMAC-SHA256 under the key and rewritten
//!   in the same transaction as every append, so a cut-off tail, a chain rewritten with
//!   recomputed hashes and a forged or deleted checkpoint are detected too. An append is
//!   refused when the checkpoint does not vouch for the chain's last record, so tampering is
//!   never sealed over. Existing records are adopted only explicitly
//!   ([`SqliteStore::adopt_audit_chain`]).
//! - Blast-radius slots are counted and reserved in the same transaction that starts the
//!   execution, with the rule of [`remediation_limiter::Window`], on integer nanosecond
//!   timestamps, so several processes never admit more than a window's limit.
//! - The schema is migrated on open, versioned by `PRAGMA user_version`.
//!
//! - Listing is keyset-paged on (`created_at`, `id`) with `LIMIT`, on the state index when
//!   filtered by state; `due_at` (the approval deadline or rollback request window) is indexed
//!   for [`remediation_core::ActionStore::due`]; a window's slot count is the key's total less the rows before the window's start, which a per-key cursor counts incrementally, so admission costs the same however many slots are stored.
//!   [`remediation_core::ActionStore::claimable`] walks the state index and skips approved
//!   rows whose `not_before` has not come. A move from `executing` back to `approved` (a
//!   requeue) deletes the action's `limit_slots` rows in the same transaction.
//!   Statements are prepared once per connection (`prepare_cached`).
//!
//! # Schema (version 15)
//!
//! | table | columns |
//! |---|---|
//! | `actions` | `id` (PK), `tenant` (`'default'`), `state`, `connector`, `requested_by`, `created_at`, `updated_at`, `due_at` (version 6; unix ns), `not_before` (version 9; unix ns, a requeued action's earliest next claim), `handle` (version 15; the action's short number, unique in the file), `detail_json` (the [`remediation_core::ActionDetail`]); indexed on (`tenant`, `created_at`, `id`), (`tenant`, `state`, `created_at`, `id`), (`tenant`, `due_at`) |
//! | `transitions` | `seq` (autoincrement), `action_id`, `record_json` (the [`remediation_core::TransitionRecord`]): since version 8 written no more, holding only rows from before it that have no audit record; an action's transitions are read from `audit` |
//! | `audit` | `seq` (PK, the record's `seq`), `action_id`, `at` (unix ns), `record_json` (canonical JSON of the [`remediation_audit::AuditRecord`]), `prev_hash`, `hash`, `tenant` (version 6); indexed on (`action_id`, `seq`) (version 8) |
//! | `audit_pending` (version 6) | `id` (autoincrement), `tenant`, `body_json` (the [`remediation_audit::AuditBody`]): entries not yet sequenced, written only by older versions |
//! | `audit_head` (version 6) | `tenant` (PK), `seq`, `hash`: the chain head |
//! | `limit_slots` | `key`, `at` (unix ns), `action_id`; indexed on (`key`, `at`), (`action_id`) (version 9) |
//! | `limit_totals` (version 10) | `key` (PK), `total`: the key's slot rows, kept by triggers on `limit_slots` |
//! | `limit_cursors` (version 10) | (`key`, `window_ns`) (PK), `cursor` (unix ns), `aged`: the key's slot rows at or before `cursor`, kept by the same triggers; a window's usage is `total - aged` once the cursor is moved to its start |
//! | `safety_state` (version 3) | one row (`id` = 1): `state_json` (the [`remediation_core::SafetyState`]) |
//! | `principals` (version 5) | `name` (PK), `kind` (`person` / `service`), `created_at`, `revoked_at` (unix ns) |
//! | `principal_roles` (version 5) | (`tenant`, `principal`) (PK), `role` |
//! | `credentials` (version 5; `api_tokens` before) | (`tenant`, `name`) (PK), `principal`, `token_hash` (hex SHA-256, unique), `created_at`, `expires_at`, `revoked_at` (unix ns) |
//! | `pending_changes` (version 5) | `id` (PK), `tenant`, `status`, `proposed_at`, `expires_at` (unix ns), `change_json` (the [`PendingChange`]) |
//! | `audit_leaves` (version 11) | (`tenant`, `leaf_index`) (PK), `hash` (32 bytes): the leaf hash of the record with `seq` = `leaf_index` + 1, written by the sequencer with the record and kept when it is archived; insert-only, each leaf following the last |
//! | `audit_tree_heads` (version 11) | `id` (autoincrement), `tenant`, `tree_size`, `root_hash`, `timestamp` (RFC 3339), `key_id`, `signature`: signed tree heads, insert-only, never smaller than the last |
//! | `audit_keys` (version 11) | (`tenant`, `key_id`) (PK), `algorithm`, `public_key`, `published_at` (unix ns): every key that signed a head, insert-only |
//! | `audit_archives` (version 12) | `id` (autoincrement), `tenant`, `through_seq`, `last_hash`, `tree_size`, `root_hash`, `file_sha256`, `archived_at` (unix ns): each written and verified archive of the oldest records, insert-only; `audit`'s delete trigger lets exactly the records up to the largest `through_seq` be removed |
//! | `ui_sessions` (version 13) | (`tenant`, `id_hash`) (PK; hex SHA-256 of the session id, never the id), `token_hash`, `csrf`, `expires_at` (unix ns), `flash_json`: the approval page's sessions; indexed on (`tenant`, `expires_at`) |
//! | `delivery_marks` (version 14) | (`tenant`, `sink`) (PK), `delivered_through` (the last `seq` the sink acknowledged or parked), `updated_at` (unix ns): each event and audit sink's position in the audit log, the outbox |
//! | `campaigns` (version 15) | (`tenant`, `name`) (PK), `created_at` (unix ns), `record_json`: each campaign (a named import) and how far it got |
//! | `connections` (version 16) | (`tenant`, `id`) (PK), `revision`, `record_json` (the [`remediation_core::store::ManagedConnection`]; its secrets only as the vault's ciphertext): managed connections |
//! | `connection_revisions` (version 16) | `tenant` (PK), `revision`: grows with every change of a tenant's connections |
//! | `documents` (version 18) | (`tenant`, `collection`, `id`) (PK), `revision` (the compare-and-set token, from 1), `body` (JSON), `updated_by`, `updated_at` (RFC 3339): the [`remediation_core::Document`]s of each tenant |
//! | `campaign_entries` (version 15) | (`tenant`, `campaign`, `idx`) (PK; the campaign references `campaigns`), `entry_json`: a campaign's entries, in order |
//! | `delivery_parked` (version 14) | (`tenant`, `sink`, `seq`) (PK; the sink references `delivery_marks`), `reason`, `parked_at` (unix ns), `replay` (0 / 1): the records a sink refused for good, until replayed |
//! | `audit_checkpoint` (version 2) | one row (`id` = 1): `count` (the last record's `seq`), `head` (its `hash`), `mac` (hex HMAC-SHA256 of `remediation-audit-checkpoint-v1\n{count}\n{head}`) |
//!
//! The JSON columns are authoritative; the other columns duplicate what filters, indexes and
//! checks need.
//!
//! # Example
//!
//! ```
//! use remediation_core::{ActionFilter, PageRequest};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let key = remediation_audit::AuditKey::generate();
//! let store = remediation_store_sqlite::open_store(dir.path().join("remediation.db"), Some(key))?;
//! assert!(store.list(&ActionFilter::default(), &PageRequest::first(50)).await?.items.is_empty());
//! let report = store.verify_audit().await?;
//! assert!(report.is_intact());
//! assert_eq!(report.checkpoint, remediation_audit::CheckpointVerdict::Matches);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod campaigns;
mod connections;
mod delivery;
mod documents;
mod error;
mod lease;
mod log;
mod pending;
mod principals;
mod schema;
mod sessions;
mod store;
mod tenants;
mod transfer;
mod writer;

use std::path::Path;
use std::sync::Arc;

pub use error::StoreSqliteError;
pub use principals::check_name;
pub use remediation_audit::AuditKey;
use remediation_core::Store;
/// Moved to core with the store traits; re-exported for existing users.
pub use remediation_core::{ApiToken, Credential, PendingChange, PendingStatus, Principal, PrincipalKind};
pub use store::SqliteStore;
pub use writer::WriterStats;

/// Opens (creating if needed) the embedded store at `path`, with an optional key sealing the
/// audit checkpoint, migrated to this build's schema: the way the runtime and the CLI obtain
/// it, as the `Arc<dyn Store>` everything holds.
pub fn open_store(path: impl AsRef<Path>, key: Option<AuditKey>) -> Result<Arc<dyn Store>, StoreSqliteError> {
    Ok(Arc::new(SqliteStore::open_with(path, key)?))
}

/// [`open_store`] for `remediate store copy`: the same store, with its export and import
/// ([`remediation_core::store::transfer`]).
pub fn open_transfer_store(
    path: impl AsRef<Path>,
    key: Option<AuditKey>,
) -> Result<Arc<dyn remediation_core::store::transfer::TransferStore>, StoreSqliteError> {
    Ok(Arc::new(SqliteStore::open_with(path, key)?))
}

/// The schema version this build migrates to (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 18;

/// The schema version of the database at `path`, without opening it as a store (nothing is
/// created or migrated): `None` when the file does not exist or holds no schema yet.
pub fn schema_version(path: impl AsRef<Path>) -> Result<Option<u32>, StoreSqliteError> {
    schema::read_version(path.as_ref())
}

/// What [`migrate`] did: the schema version before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found (`None`: a new database).
    pub from: Option<u32>,
    /// The version now, [`SCHEMA_VERSION`].
    pub to: u32,
}

/// Creates or migrates the database at `path` to [`SCHEMA_VERSION`] (each migration in its own
/// transaction, applied once even when several processes migrate at once). Refuses a schema
/// newer than this build knows, naming both versions.
pub fn migrate(path: impl AsRef<Path>) -> Result<MigrationReport, StoreSqliteError> {
    let path = path.as_ref();
    let from = schema_version(path)?;
    drop(SqliteStore::open(path)?);
    Ok(MigrationReport { from, to: SCHEMA_VERSION })
}

/// The embedded store opened for a benchmark or a test that looks behind the [`Store`]
/// trait: the store as everyone holds it, plus its writer's counters and the batched seeding
/// path. Production code opens the store with [`open_store`].
#[derive(Clone)]
pub struct Instrumented {
    inner: SqliteStore,
}

impl std::fmt::Debug for Instrumented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented").field("path", &self.inner.path()).finish_non_exhaustive()
    }
}

impl Instrumented {
    /// Opens (creating if needed) the store at `path`, without an audit key.
    pub fn open(path: impl AsRef<Path>) -> Result<Instrumented, StoreSqliteError> {
        Ok(Instrumented { inner: SqliteStore::open(path)? })
    }

    /// The store, as the engine holds it.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.inner.clone())
    }

    /// The writer's counters so far: commits, requests answered, time busy.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer_stats()
    }

    /// Stores `details` as they are, in one transaction, without transitions or audit records
    /// (see `SqliteStore::seed_actions`): history for benchmarks to skip over.
    pub fn seed_actions(&self, details: &[remediation_core::ActionDetail]) -> Result<(), remediation_core::StoreError> {
        self.inner.seed_actions(details)
    }
}
