//! [`SqliteStore`]: opening the database and implementing [`Store`] on it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use remediation_audit::{
    AuditBody, AuditKey, AuditRecord, BreakKind, ChainReport, ChainVerifier, Checkpoint, CheckpointVerdict,
};
use remediation_core::{
    Action, ActionDetail, ActionFilter, ActionId, BeginOutcome, LimitReached, SafetyState, SettingsRecord, SlotRequest,
    StateChange, Store, StoreError, TransitionRecord,
};
use remediation_limiter::Window;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::StoreSqliteError;
use crate::error::hint;
use crate::schema::{migrate, open_error};

/// The tenant every row belongs to until tenancy arrives; queries already filter on it.
const DEFAULT_TENANT: &str = "default";

/// How long a call waits for another process's write transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// The embedded default [`Store`]: one SQLite database file in WAL mode.
///
/// Several processes may open the same file: every state change is one `IMMEDIATE`
/// transaction (the write lock is taken before anything is read), and a call waits up to
/// 5 seconds for another process's transaction to finish.
///
/// The [`Store`] methods are `async` but do their work synchronously under a mutex. SQLite is
/// a local file and each call is a handful of short statements, so blocking the executor
/// briefly costs less than handing every call to a blocking thread pool, and the mutex
/// serialises the calls of one handle as SQLite requires of a connection anyway.
///
/// # The audit checkpoint
///
/// Opened with an [`AuditKey`] ([`SqliteStore::open_with`]), the store keeps the chain head
/// in the `audit_checkpoint` table, sealed with the key (see
/// [`remediation_audit::Checkpoint`]), and rewrites it in the same transaction as every
/// audit append. Before appending it checks that the checkpoint is genuine and names the
/// chain's last record; if not, the state change is refused, so a truncated or rewritten chain
/// is never sealed over. Opened without a key, the store writes no checkpoint, and refuses to
/// append to a chain that has one (it could not keep it up to date).
///
/// Opening never creates a checkpoint for records that already exist: a store whose chain
/// predates checkpoints (or was kept without a key) is adopted explicitly with
/// [`SqliteStore::adopt_audit_chain`]. Adopting automatically on open would let anyone who can
/// delete the checkpoint row have a shortened chain sealed again by the next process.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    pub(crate) tenant: String,
    /// Seals the audit checkpoint; `Debug` prints it redacted.
    pub(crate) key: Option<AuditKey>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date,
    /// without an audit key: no checkpoint is kept or checked.
    ///
    /// The parent directory must exist. Fails with a clear error when the file is not a
    /// database, or was written by a newer build.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreSqliteError> {
        Self::open_with(path, None)
    }

    /// [`SqliteStore::open`] with an optional key that seals the audit checkpoint (see
    /// "The audit checkpoint" above). Opening writes nothing to the audit tables.
    pub fn open_with(path: impl AsRef<Path>, key: Option<AuditKey>) -> Result<SqliteStore, StoreSqliteError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(StoreSqliteError::DirectoryMissing { dir: dir.to_owned(), path });
        }
        let conn = Connection::open(&path).map_err(|e| open_error(&path, "opening the file", e))?;
        Self::setup(conn, path, key)
    }

    /// A private in-memory database, for tests and demos; gone when the store is dropped.
    pub fn open_in_memory() -> Result<SqliteStore, StoreSqliteError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| open_error(&path, "opening the file", e))?;
        Self::setup(conn, path, None)
    }

    fn setup(mut conn: Connection, path: PathBuf, key: Option<AuditKey>) -> Result<SqliteStore, StoreSqliteError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error(&path, "setting busy_timeout", e))?;
        // The first statement that reads the file: a file that is not a database fails here.
        // Switching a fresh file to WAL needs an exclusive lock, and SQLite may answer BUSY
        // without consulting the busy handler while another process does the same; retry
        // within the same overall budget as the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(e)
                    if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(open_error(&path, "setting journal_mode=WAL", e)),
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_error(&path, "setting synchronous=FULL", e))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| open_error(&path, "setting foreign_keys=ON", e))?;
        migrate(&mut conn, &path)?;
        Ok(SqliteStore { conn: Mutex::new(conn), path, tenant: DEFAULT_TENANT.to_owned(), key })
    }

    /// The database path (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every audit record, ordered by `seq`; with `since`, only those whose `at` is at or
    /// after it.
    ///
    /// Fails when a stored record cannot be parsed; [`Self::verify_audit`] reports that
    /// as a broken chain instead.
    pub fn audit_records(&self, since: Option<OffsetDateTime>) -> Result<Vec<AuditRecord>, StoreError> {
        const OP: &str = "cannot read the audit records";
        let since = since.map(clamped_nanos);
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT seq, record_json FROM audit WHERE ?1 IS NULL OR at >= ?1 ORDER BY seq")
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![since], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                .map_err(sql(OP))?;
            let mut records = Vec::new();
            for row in rows {
                let (seq, json) = row.map_err(sql(OP))?;
                let record = AuditRecord::from_json(&json).map_err(|source| StoreError::Backend {
                    message: format!(
                        "audit record {seq} cannot be read: it was edited or corrupted; run `remediate audit verify`"
                    ),
                    source: Box::new(source),
                })?;
                records.push(record);
            }
            Ok(records)
        })
    }

    /// Verifies the whole audit chain as stored: reads every row in `seq` order, checks the
    /// chain with [`remediation_audit::ChainVerifier`], checks that each row's `seq`,
    /// `action_id`, `at`, `prev_hash` and `hash` columns agree with its JSON, and, with a key,
    /// compares the last record with the checkpoint and checks the checkpoint's MAC
    /// ([`ChainReport::checkpoint`]; `not configured` without a key).
    ///
    /// A tampered chain is reported in the [`ChainReport`], not as an error.
    pub fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        const OP: &str = "cannot read the audit records to verify them";
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            let report = verify_in(&tx, self.key.as_ref(), OP)?;
            tx.finish().map_err(sql(OP))?;
            Ok(report)
        })
    }

    /// The adoption step: seals a first checkpoint over the chain as it stands, for a store
    /// whose records predate checkpoints or were written without a key.
    ///
    /// Adoption trusts the existing chain, so it only happens when the chain verifies on its
    /// own (every link and hash), and never replaces a checkpoint: when one exists and matches,
    /// nothing is written; when one exists and does not match, adoption is refused. Run it
    /// only on a store you have reason to trust (compare `audit verify` and an earlier
    /// export first): records cut off the end before adoption cannot be detected afterwards.
    /// Returns the report of the adopted chain.
    pub fn adopt_audit_chain(&self) -> Result<ChainReport, StoreError> {
        const OP: &str = "cannot adopt the audit chain";
        let refused = |reason: String| StoreError::Backend {
            message: OP.to_owned(),
            source: Box::new(StoreSqliteError::AdoptionRefused { reason }),
        };
        let Some(key) = self.key.as_ref() else {
            return Err(refused("the store was opened without an audit key".to_owned()));
        };
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(OP))?;
            let report = verify_in(&tx, Some(key), OP)?;
            match (&report.first_break, &report.checkpoint) {
                (Some(_), _) => return Err(refused(format!("the chain does not verify: {report}"))),
                (None, CheckpointVerdict::Matches) => return Ok(report),
                (None, CheckpointVerdict::Missing) => {}
                (None, other) => {
                    return Err(refused(format!("a checkpoint exists and adoption never replaces one ({other})")));
                }
            }
            if let Some(head) = &report.head {
                write_checkpoint(&tx, &key.seal(report.records, head), &|| OP.to_owned())?;
            }
            tx.commit().map_err(sql(OP))?;
            Ok(ChainReport { checkpoint: CheckpointVerdict::Matches, ..report })
        })
    }

    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while the lock was held left no transaction open (rusqlite rolls back on
        // drop), so the connection is still usable.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    /// `apply` in one IMMEDIATE transaction.
    fn apply_now(&self, change: &StateChange) -> Result<Action, StoreError> {
        let op = change_op(change);
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            let detail = load_expected(&tx, &self.tenant, &change.record)?;
            let action = write_change(&tx, &self.tenant, self.key.as_ref(), detail, change, &op)?;
            tx.commit().map_err(sql(op()))?;
            Ok(action)
        })
    }

    /// `begin_execution` in one IMMEDIATE transaction: the counts and the writes see the same
    /// data, because no other process can write between them.
    fn begin_now(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError> {
        let op = change_op(change);
        let id = change.record.action_id;
        let at = change.record.at;
        let at_nanos = nanos(at).map_err(invalid(op()))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            let detail = load_expected(&tx, &self.tenant, &change.record)?;
            for slot in slots {
                let used = count_used(&tx, slot, at).map_err(sql(op()))?;
                if enforce && !Window::of(slot).admits(used) {
                    // Dropping the transaction rolls it back; nothing was written yet.
                    return Ok(BeginOutcome::LimitReached(LimitReached { slot: slot.clone(), used }));
                }
            }
            for slot in slots {
                tx.execute(
                    "INSERT INTO limit_slots (key, at, action_id) VALUES (?1, ?2, ?3)",
                    params![slot.key, at_nanos, id.to_string()],
                )
                .map_err(sql(op()))?;
            }
            let action = write_change(&tx, &self.tenant, self.key.as_ref(), detail, change, &op)?;
            tx.commit().map_err(sql(op()))?;
            Ok(BeginOutcome::Started(action))
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<(), StoreError> {
        let action = &detail.action;
        let op = || format!("cannot create action {}", action.id);
        if let Some(from) = record.from {
            return Err(invalid(op())(StoreSqliteError::NotAFirstTransition { from }));
        }
        if record.action_id != action.id {
            return Err(invalid(op())(StoreSqliteError::ActionMismatch {
                action: action.id,
                record: record.action_id,
            }));
        }
        if record.to != action.state {
            return Err(invalid(op())(StoreSqliteError::InitialStateMismatch { state: action.state, to: record.to }));
        }
        let created_at = nanos(action.created_at).map_err(invalid(op()))?;
        let updated_at = nanos(action.updated_at).map_err(invalid(op()))?;
        let detail_json = serde_json::to_string(detail).map_err(encode(op()))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            tx.execute(
                "INSERT INTO actions (id, tenant, state, connector, requested_by, created_at, updated_at, detail_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    action.id.to_string(),
                    self.tenant,
                    action.state.as_str(),
                    action.connector,
                    action.requested_by,
                    created_at,
                    updated_at,
                    detail_json
                ],
            )
            .map_err(|e| {
                if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
                    sql(format!("{}: an action with this id already exists", op()))(e)
                } else {
                    sql(op())(e)
                }
            })?;
            insert_transition(&tx, record, &op)?;
            append_audit(&tx, self.key.as_ref(), &AuditBody::Transition(record.clone()), &op)?;
            tx.commit().map_err(sql(op()))
        })
    }

    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError> {
        self.with_conn(|conn| load(conn, &self.tenant, id, &|| format!("cannot read action {id}")))
    }

    async fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, StoreError> {
        const OP: &str = "cannot list actions";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT detail_json FROM actions
                     WHERE tenant = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR connector = ?3)
                     ORDER BY created_at, id",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![self.tenant, filter.state.map(|s| s.as_str()), filter.connector], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(sql(OP))?;
            let mut actions = Vec::new();
            for row in rows {
                let detail: ActionDetail = serde_json::from_str(&row.map_err(sql(OP))?).map_err(decode(OP))?;
                actions.push(detail.action);
            }
            Ok(actions)
        })
    }

    async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError> {
        let op = || format!("cannot read the transitions of action {id}");
        self.with_conn(|conn| {
            // One read transaction, so the existence check and the rows agree.
            let tx = conn.transaction().map_err(sql(op()))?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM actions WHERE id = ?1 AND tenant = ?2",
                    params![id.to_string(), self.tenant],
                    |_| Ok(()),
                )
                .optional()
                .map_err(sql(op()))?;
            if exists.is_none() {
                return Err(StoreError::NotFound(id));
            }
            let mut records = Vec::new();
            {
                let mut stmt = tx
                    .prepare("SELECT record_json FROM transitions WHERE action_id = ?1 ORDER BY seq")
                    .map_err(sql(op()))?;
                let rows = stmt.query_map(params![id.to_string()], |row| row.get::<_, String>(0)).map_err(sql(op()))?;
                for row in rows {
                    records.push(serde_json::from_str(&row.map_err(sql(op()))?).map_err(decode(op()))?);
                }
            }
            tx.finish().map_err(sql(op()))?;
            Ok(records)
        })
    }

    async fn apply(&self, change: &StateChange) -> Result<Action, StoreError> {
        self.apply_now(change)
    }

    async fn begin_execution(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError> {
        self.begin_now(change, slots, enforce)
    }

    async fn check_limits(
        &self,
        slots: &[SlotRequest],
        at: OffsetDateTime,
    ) -> Result<Option<LimitReached>, StoreError> {
        const OP: &str = "cannot check the blast-radius limits";
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            for slot in slots {
                let used = count_used(&tx, slot, at).map_err(sql(OP))?;
                if !Window::of(slot).admits(used) {
                    return Ok(Some(LimitReached { slot: slot.clone(), used }));
                }
            }
            tx.finish().map_err(sql(OP))?;
            Ok(None)
        })
    }

    async fn safety_state(&self) -> Result<SafetyState, StoreError> {
        const OP: &str = "cannot read the safety state";
        self.with_conn(|conn| read_safety(conn, OP))
    }

    async fn update_safety_state(
        &self,
        expected: &SafetyState,
        new: &SafetyState,
        record: &SettingsRecord,
    ) -> Result<(), StoreError> {
        let op = || format!("cannot record {}", record.setting_event);
        let json = serde_json::to_string(new).map_err(encode(op()))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            if &read_safety(&tx, "cannot read the safety state")? != expected {
                return Err(StoreError::SafetyConflict);
            }
            tx.execute(
                "INSERT INTO safety_state (id, state_json) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET state_json = excluded.state_json",
                params![json],
            )
            .map_err(sql(op()))?;
            append_audit(&tx, self.key.as_ref(), &AuditBody::Settings(record.clone()), &op)?;
            tx.commit().map_err(sql(op()))
        })
    }

    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
        let op = || format!("cannot record {}", record.setting_event);
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            append_audit(&tx, self.key.as_ref(), &AuditBody::Settings(record.clone()), &op)?;
            tx.commit().map_err(sql(op()))
        })
    }

    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        const OP: &str = "cannot read the limit slots";
        let since = clamped_nanos(since);
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare("SELECT key, at FROM limit_slots WHERE at >= ?1 ORDER BY at, rowid").map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![since], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
                .map_err(sql(OP))?;
            let mut out = Vec::new();
            for row in rows {
                let (key, at) = row.map_err(sql(OP))?;
                let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at)).map_err(|source| {
                    StoreError::Backend {
                        message: format!("{OP}: a slot has an impossible time"),
                        source: Box::new(source),
                    }
                })?;
                out.push((key, at));
            }
            Ok(out)
        })
    }
}

/// The stored safety state; the default when none was ever written.
fn read_safety(conn: &Connection, op: &'static str) -> Result<SafetyState, StoreError> {
    let json: Option<String> = conn
        .query_row("SELECT state_json FROM safety_state WHERE id = 1", [], |row| row.get(0))
        .optional()
        .map_err(sql(op))?;
    match json {
        None => Ok(SafetyState::default()),
        Some(json) => serde_json::from_str(&json).map_err(decode(op)),
    }
}

/// One row of the audit table as stored.
struct AuditRow {
    seq: i64,
    action_id: String,
    at: i64,
    record_json: String,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    /// Feeds the row to `verifier`: the chain checks first, then the columns against the JSON.
    fn verify(self, verifier: &mut ChainVerifier) {
        let seq = u64::try_from(self.seq).unwrap_or(0);
        let record = match AuditRecord::from_json(&self.record_json) {
            Ok(record) => record,
            Err(e) => {
                let reason = format!("its JSON is not a valid audit record ({})", error_chain(&e));
                verifier.push_unreadable(seq, self.hash, reason);
                return;
            }
        };
        verifier.push(&record);
        let columns = [
            ("seq", record.seq == seq),
            ("action_id", record.body.action_id().map(|id| id.to_string()).unwrap_or_default() == self.action_id),
            ("at", nanos(record.body.at()).ok() == Some(self.at)),
            ("prev_hash", record.prev_hash == self.prev_hash),
            ("hash", record.hash == self.hash),
        ];
        if let Some((column, _)) = columns.into_iter().find(|(_, same)| !same) {
            verifier.flag(BreakKind::StoredColumnMismatch { column: column.to_owned() });
        }
    }
}

/// Reads an action and checks it is in the state `record` starts from.
fn load_expected(conn: &Connection, tenant: &str, record: &TransitionRecord) -> Result<ActionDetail, StoreError> {
    let id = record.action_id;
    let detail = load(conn, tenant, id, &|| format!("cannot read action {id}"))?;
    if Some(detail.action.state) != record.from {
        return Err(StoreError::StateConflict {
            id,
            expected: record.from.map_or("new", |s| s.as_str()).to_owned(),
            actual: detail.action.state,
        });
    }
    Ok(detail)
}

fn load(conn: &Connection, tenant: &str, id: ActionId, op: &dyn Fn() -> String) -> Result<ActionDetail, StoreError> {
    let json = conn
        .query_row(
            "SELECT detail_json FROM actions WHERE id = ?1 AND tenant = ?2",
            params![id.to_string(), tenant],
            |row| row.get::<_, String>(0),
        )
        .optional()
        .map_err(sql(op()))?
        .ok_or(StoreError::NotFound(id))?;
    serde_json::from_str(&json).map_err(decode(op()))
}

/// Merges the update into the action, writes it, and appends the transition and its audit
/// record.
fn write_change(
    conn: &Connection,
    tenant: &str,
    key: Option<&AuditKey>,
    mut detail: ActionDetail,
    change: &StateChange,
    op: &dyn Fn() -> String,
) -> Result<Action, StoreError> {
    let StateChange { record, update } = change;
    if let Some(plan) = &update.plan {
        detail.plan = Some(plan.clone());
    }
    if let Some(before) = &update.before {
        detail.before = Some(before.clone());
    }
    if let Some(after) = &update.after {
        detail.after = Some(after.clone());
    }
    if let Some(restored) = &update.restored {
        detail.restored = Some(restored.clone());
    }
    if let Some(pending) = update.pending_acceptance {
        detail.pending_acceptance = pending;
    }
    if let Some(until) = update.rollback_expires_at {
        detail.rollback_expires_at = Some(until);
    }
    if let Some(last_error) = &update.last_error {
        detail.last_error = last_error.clone();
    }
    detail.action.state = record.to;
    detail.action.updated_at = record.at;
    let updated_at = nanos(record.at).map_err(invalid(op()))?;
    let detail_json = serde_json::to_string(&detail).map_err(encode(op()))?;
    conn.execute(
        "UPDATE actions SET state = ?1, updated_at = ?2, detail_json = ?3 WHERE id = ?4 AND tenant = ?5",
        params![record.to.as_str(), updated_at, detail_json, record.action_id.to_string(), tenant],
    )
    .map_err(sql(op()))?;
    insert_transition(conn, record, op)?;
    append_audit(conn, key, &AuditBody::Transition(record.clone()), op)?;
    Ok(detail.action)
}

fn insert_transition(conn: &Connection, record: &TransitionRecord, op: &dyn Fn() -> String) -> Result<(), StoreError> {
    let json = serde_json::to_string(record).map_err(encode(op()))?;
    conn.execute(
        "INSERT INTO transitions (action_id, record_json) VALUES (?1, ?2)",
        params![record.action_id.to_string(), json],
    )
    .map_err(sql(op()))?;
    Ok(())
}

/// Seals `body` against the last audit row (read inside the caller's transaction), appends
/// it and, with a key, seals the checkpoint over it.
///
/// With a key the checkpoint must first vouch for the last row (genuine MAC, same `seq` and
/// `hash`), so a truncated or rewritten chain is never sealed over; without a key there must
/// be no checkpoint, which this process could not keep up to date.
pub(crate) fn append_audit(
    conn: &Connection,
    key: Option<&AuditKey>,
    body: &AuditBody,
    op: &dyn Fn() -> String,
) -> Result<(), StoreError> {
    let last = conn
        .query_row("SELECT seq, record_json FROM audit ORDER BY seq DESC LIMIT 1", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()
        .map_err(sql(op()))?;
    let prev = match last {
        None => None,
        Some((seq, json)) => Some(AuditRecord::from_json(&json).map_err(|source| StoreError::Backend {
            message: format!(
                "{}: the last audit record ({seq}) cannot be read, so the chain cannot be extended; run `remediate audit verify`",
                op()
            ),
            source: Box::new(source),
        })?),
    };
    let stored = read_checkpoint(conn).map_err(sql(op()))?;
    match key {
        None if stored.is_some() => return Err(invalid(op())(StoreSqliteError::KeyRequired)),
        None => {}
        Some(key) => {
            let verdict =
                CheckpointVerdict::judge(Some(key), stored.as_ref(), prev.as_ref().map(|p| (p.seq, p.hash.as_str())));
            if verdict != CheckpointVerdict::Matches {
                return Err(invalid(op())(StoreSqliteError::CheckpointMismatch { verdict }));
            }
        }
    }
    let record = AuditRecord::seal(prev.as_ref(), body.clone()).map_err(audit(op()))?;
    let json = record.to_canonical_json().map_err(audit(op()))?;
    let seq = i64::try_from(record.seq).map_err(|source| StoreError::Backend {
        message: format!("{}: the audit chain is full", op()),
        source: Box::new(source),
    })?;
    let at = nanos(body.at()).map_err(invalid(op()))?;
    let action_id = body.action_id().map(|id| id.to_string()).unwrap_or_default();
    conn.execute(
        "INSERT INTO audit (seq, action_id, at, record_json, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![seq, action_id, at, json, record.prev_hash, record.hash],
    )
    .map_err(sql(op()))?;
    if let Some(key) = key {
        write_checkpoint(conn, &key.seal(record.seq, &record.hash), op)?;
    }
    Ok(())
}

/// The stored checkpoint, if any. A negative `count` (which this crate never writes) is read
/// as `u64::MAX`, whose MAC then fails to verify.
fn read_checkpoint(conn: &Connection) -> Result<Option<Checkpoint>, rusqlite::Error> {
    conn.query_row("SELECT count, head, mac FROM audit_checkpoint WHERE id = 1", [], |row| {
        Ok(Checkpoint {
            count: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(u64::MAX),
            head: row.get(1)?,
            mac: row.get(2)?,
        })
    })
    .optional()
}

/// Inserts or replaces the one checkpoint row.
fn write_checkpoint(conn: &Connection, checkpoint: &Checkpoint, op: &dyn Fn() -> String) -> Result<(), StoreError> {
    let count = i64::try_from(checkpoint.count).map_err(|source| StoreError::Backend {
        message: format!("{}: the audit chain is full", op()),
        source: Box::new(source),
    })?;
    conn.execute(
        "INSERT INTO audit_checkpoint (id, count, head, mac) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET count = excluded.count, head = excluded.head, mac = excluded.mac",
        params![count, checkpoint.head, checkpoint.mac],
    )
    .map_err(sql(op()))?;
    Ok(())
}

/// Verifies every audit row and the checkpoint, inside the caller's transaction.
fn verify_in(conn: &Connection, key: Option<&AuditKey>, op: &'static str) -> Result<ChainReport, StoreError> {
    let mut verifier = ChainVerifier::new();
    let mut stmt = conn
        .prepare("SELECT seq, action_id, at, record_json, prev_hash, hash FROM audit ORDER BY seq")
        .map_err(sql(op))?;
    let mut rows = stmt.query([]).map_err(sql(op))?;
    while let Some(row) = rows.next().map_err(sql(op))? {
        let row = AuditRow {
            seq: row.get(0).map_err(sql(op))?,
            action_id: row.get(1).map_err(sql(op))?,
            at: row.get(2).map_err(sql(op))?,
            record_json: row.get(3).map_err(sql(op))?,
            prev_hash: row.get(4).map_err(sql(op))?,
            hash: row.get(5).map_err(sql(op))?,
        };
        row.verify(&mut verifier);
    }
    let stored = match key {
        Some(_) => read_checkpoint(conn).map_err(sql(op))?,
        None => None,
    };
    Ok(verifier.finish_with_checkpoint(key, stored.as_ref()))
}

/// Slots recorded for `slot.key` after the start of the window ending at `at`
/// ([`Window::start`], exclusive).
fn count_used(conn: &Connection, slot: &SlotRequest, at: OffsetDateTime) -> Result<u32, rusqlite::Error> {
    let window = Window::of(slot);
    // `None`: the window reaches back before anything the store can hold, so every slot of the
    // key counts. (`Window::start` would overflow for windows longer than the calendar.)
    let start = at.checked_sub(window.length).and_then(|_| i64::try_from(window.start(at).unix_timestamp_nanos()).ok());
    let used: i64 = conn.query_row(
        "SELECT COUNT(*) FROM limit_slots WHERE key = ?1 AND (?2 IS NULL OR at > ?2)",
        params![slot.key, start],
        |row| row.get(0),
    )?;
    Ok(u32::try_from(used).unwrap_or(u32::MAX))
}

/// `at` as integer nanoseconds since 1970, as the store keeps timestamps it compares.
pub(crate) fn nanos(at: OffsetDateTime) -> Result<i64, StoreSqliteError> {
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| StoreSqliteError::TimestampOutOfRange { at })
}

/// `at` in nanoseconds, clamped into the range the store can hold (for filters).
pub(crate) fn clamped_nanos(at: OffsetDateTime) -> i64 {
    let n = at.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// `e`'s message followed by its sources, for reports that are data rather than errors.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(crate) fn sql(operation: impl fmt::Display) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Backend { message: format!("{operation}{}", hint(&source)), source: Box::new(source) }
}

pub(crate) fn decode(operation: impl fmt::Display) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Backend {
        message: format!("{operation}: the stored JSON does not match this build's types"),
        source: Box::new(source),
    }
}

fn encode(operation: impl fmt::Display) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Backend {
        message: format!("{operation}: cannot write it as JSON"),
        source: Box::new(source),
    }
}

fn change_op(change: &StateChange) -> impl Fn() -> String {
    let (id, to) = (change.record.action_id, change.record.to);
    move || format!("cannot record the transition of action {id} to {to}")
}

pub(crate) fn invalid(operation: impl fmt::Display) -> impl FnOnce(StoreSqliteError) -> StoreError {
    move |source| StoreError::Backend { message: operation.to_string(), source: Box::new(source) }
}

fn audit(operation: impl fmt::Display) -> impl FnOnce(remediation_audit::AuditError) -> StoreError {
    move |source| StoreError::Backend { message: operation.to_string(), source: Box::new(source) }
}
