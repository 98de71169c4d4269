//! Errors raised while opening the SQLite store, and the plain-words hints for SQLite failures.

use std::path::PathBuf;

use remediation_audit::CheckpointVerdict;
use remediation_core::{ActionId, State};
use rusqlite::ErrorCode;
use time::OffsetDateTime;

/// Why the SQLite store could not be opened, or refused a request.
///
/// Failures of individual store operations reach callers as
/// [`remediation_core::StoreError::Backend`]; the variants here without a SQLite source are
/// the reasons attached to some of those.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreSqliteError {
    /// The store's writer thread is gone (it panicked, or the store is shutting down), so the
    /// request was not written.
    #[error("the store's writer has stopped; nothing was written; restart the process")]
    WriterStopped,
    /// The writer thread could not be started.
    #[error("cannot start the writer thread for {path}")]
    WriterThread {
        /// The database path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// An API token with this name exists and is not revoked.
    #[error("a token named `{name}` exists; revoke it first or choose another name")]
    TokenExists {
        /// The token name.
        name: String,
    },
    /// The token name was used by another principal; names are never reused for someone else,
    /// so the audit never confuses two people.
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
    /// No principal with this name, or it has no role in this tenant.
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
    /// The principal was revoked; it holds no credentials any more.
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
    /// The principal's role is not the one the change was based on (someone changed it).
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
    /// The pending change was already confirmed, cancelled, expired or failed.
    #[error("change {id} is {status}, no longer pending")]
    PendingChangeClosed {
        /// The change.
        id: String,
        /// Its status.
        status: String,
    },
    /// The directory that should hold the database file does not exist.
    #[error("cannot open the store at {path}: directory {dir} does not exist; create it or choose another path")]
    DirectoryMissing {
        /// The database path asked for.
        path: PathBuf,
        /// Its missing parent directory.
        dir: PathBuf,
    },
    /// The file exists but is not an SQLite database, or is corrupt.
    #[error(
        "{path} is not a remediate database (the file is corrupt or is another kind of file); move it aside or choose another path"
    )]
    NotADatabase {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer build with a schema this build does not know.
    #[error(
        "{path}: database schema version {found} is newer than this build supports ({supported}); upgrade remediate"
    )]
    SchemaTooNew {
        /// The database path.
        path: PathBuf,
        /// The schema version found (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open the store at {path}: {step} failed{hint}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// What was being done (`opening the file`, `setting journal_mode=WAL`, ...).
        step: &'static str,
        /// What to do about it, when SQLite's error says (empty otherwise).
        hint: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A schema migration failed; the database stays at the version before it.
    #[error("cannot upgrade the store at {path} to schema version {version}{hint}")]
    Migrate {
        /// The database path.
        path: PathBuf,
        /// The schema version that could not be applied.
        version: i64,
        /// What to do about it, when SQLite's error says (empty otherwise).
        hint: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
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
    /// An audit record would extend a chain that its checkpoint does not vouch for: appending
    /// would seal a new checkpoint over tampered records, so nothing is written.
    #[error(
        "the audit chain does not match its checkpoint, so it is not extended ({verdict}); run `remediate audit verify`, and restore the store from a backup if it was tampered with"
    )]
    CheckpointMismatch {
        /// What the checkpoint says about the chain.
        verdict: CheckpointVerdict,
    },
    /// The store keeps a checkpoint sealed with a key, but was opened without a key, so it
    /// could not keep the checkpoint up to date.
    #[error(
        "the audit chain is protected by a checkpoint sealed with a key, but the store was opened without the key; configure it (`audit.hmac_key_file` in remediation.toml, or `SqliteStore::open_with`)"
    )]
    KeyRequired,
    /// The audit head row and the audit table's last record disagree: records were removed,
    /// added or rewritten outside the store.
    #[error(
        "the audit chain head names record {head} but the chain ends at record {last}, so it is not extended; run `remediate audit verify`, and restore the store from a backup if it was tampered with"
    )]
    AuditHeadMismatch {
        /// The `seq` the head row names (0: none).
        head: u64,
        /// The `seq` of the chain's last record (0: none).
        last: u64,
    },
    /// [`crate::SqliteStore::adopt_audit_chain`] refused to seal a checkpoint.
    #[error("adoption refused: {reason}")]
    AdoptionRefused {
        /// Why, in plain words.
        reason: String,
    },
    /// A row of the verifiable log (a leaf hash, a tree head, a published key) cannot be read
    /// back as written.
    #[error("{what} cannot be read; run `remediate audit verify`")]
    Unreadable {
        /// Which row.
        what: String,
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

impl StoreSqliteError {
    /// The reason attached to a [`remediation_core::StoreError::Backend`], when it is one of
    /// this store's refusals (a name taken, an unknown principal, a closed pending change)
    /// rather than a failure of the database; callers map these to "conflict" or "not found".
    pub fn refusal_of(e: &remediation_core::StoreError) -> Option<&StoreSqliteError> {
        match e {
            remediation_core::StoreError::Backend { source, .. } => source.downcast_ref::<StoreSqliteError>(),
            _ => None,
        }
    }
}

/// What to do about a SQLite failure, for the errors where SQLite's code says; empty otherwise.
/// Starts with `: ` so it can follow the description of what failed.
pub(crate) fn hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => {
            ": the database is read-only; check the permissions of the file, of its directory and of its -wal and -shm files"
        }
        Some(ErrorCode::DiskFull) => ": the disk is full; free some space and retry",
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            ": the database file is corrupt; restore it from a backup"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            ": another process kept the database locked for more than 5 seconds; retry, and look for a stuck process"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::hint;

    #[track_caller]
    fn check(code: std::ffi::c_int, expected: &str) {
        let e = rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
        assert!(hint(&e).contains(expected), "{:?} should contain {expected:?}", hint(&e));
    }

    #[test]
    fn hints_say_what_to_do() {
        check(ffi::SQLITE_READONLY, "check the permissions");
        check(ffi::SQLITE_FULL, "free some space");
        check(ffi::SQLITE_CORRUPT, "restore it from a backup");
        check(ffi::SQLITE_NOTADB, "restore it from a backup");
        check(ffi::SQLITE_BUSY, "look for a stuck process");
        check(ffi::SQLITE_LOCKED, "look for a stuck process");
        assert_eq!(hint(&rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_CONSTRAINT), None)), "");
    }
}
