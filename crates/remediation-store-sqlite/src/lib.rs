//! The embedded default [`remediation_core::Store`]: one SQLite database file (bundled
//! SQLite, WAL mode), shared safely by several processes.
//!
//! - Every state change is one `IMMEDIATE` transaction: the action's row, its transition and
//!   its audit record are written together or not at all, and the compare of the current state
//!   with `record.from` happens under the write lock.
//! - The audit table is append-only: SQLite triggers abort any `UPDATE` or `DELETE` on it, and
//!   any `INSERT` that does not extend the chain. Records are sealed with
//!   [`remediation_audit::AuditRecord::seal`]; [`SqliteStore::verify_audit`] re-checks them.
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
//! # Schema (version 5)
//!
//! | table | columns |
//! |---|---|
//! | `actions` | `id` (PK), `tenant` (`'default'`), `state`, `connector`, `requested_by`, `created_at`, `updated_at` (unix ns), `detail_json` (the [`remediation_core::ActionDetail`]) |
//! | `transitions` | `seq` (autoincrement), `action_id`, `record_json` (the [`remediation_core::TransitionRecord`]) |
//! | `audit` | `seq` (PK, the record's `seq`), `action_id`, `at` (unix ns), `record_json` (canonical JSON of the [`remediation_audit::AuditRecord`]), `prev_hash`, `hash` |
//! | `limit_slots` | `key`, `at` (unix ns), `action_id`; indexed on (`key`, `at`) |
//! | `safety_state` (version 3) | one row (`id` = 1): `state_json` (the [`remediation_core::SafetyState`]) |
//! | `principals` (version 5) | `name` (PK), `kind` (`person` / `service`), `created_at`, `revoked_at` (unix ns) |
//! | `principal_roles` (version 5) | (`tenant`, `principal`) (PK), `role` |
//! | `credentials` (version 5; `api_tokens` before) | (`tenant`, `name`) (PK), `principal`, `token_hash` (hex SHA-256, unique), `created_at`, `expires_at`, `revoked_at` (unix ns) |
//! | `pending_changes` (version 5) | `id` (PK), `tenant`, `status`, `proposed_at`, `expires_at` (unix ns), `change_json` (the [`PendingChange`]) |
//! | `audit_checkpoint` (version 2) | one row (`id` = 1): `count` (the last record's `seq`), `head` (its `hash`), `mac` (hex HMAC-SHA256 of `remediation-audit-checkpoint-v1\n{count}\n{head}`) |
//!
//! The JSON columns are authoritative; the other columns duplicate what filters, indexes and
//! checks need.
//!
//! # Example
//!
//! ```
//! use remediation_core::{ActionFilter, Store};
//! use remediation_store_sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let key = remediation_audit::AuditKey::generate();
//! let store = SqliteStore::open_with(dir.path().join("remediation.db"), Some(key))?;
//! assert!(store.list(&ActionFilter::default()).await?.is_empty());
//! let report = store.verify_audit()?;
//! assert!(report.is_intact());
//! assert_eq!(report.checkpoint, remediation_audit::CheckpointVerdict::Matches);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod pending;
mod principals;
mod schema;
mod store;

pub use error::StoreSqliteError;
pub use pending::{PendingChange, PendingStatus};
pub use principals::{ApiToken, Credential, Principal, PrincipalKind, check_name};
pub use remediation_audit::AuditKey;
pub use store::SqliteStore;
