//! [`SqliteStore`]: opening the database and implementing [`Store`] on it.

use remediation_audit::AuditRecordExt as _;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use remediation_audit::{
    AuditBody, AuditKey, AuditRecord, BreakKind, ChainHead, ChainReport, ChainVerifier, Checkpoint, CheckpointVerdict,
    PreparedBody, judge_checkpoint,
};
use remediation_core::{
    Action, ActionDetail, ActionFilter, ActionId, ActionStore, AuditArchive, AuditFilter, AuditLog, BeginOutcome,
    LeafHash, LimitReached, LimitStore, Page, PageRequest, SafetyState, SafetyStore, SettingsRecord, SlotRequest,
    State, StateChange, StoreError, StoredPublicKey, StoredTreeHead, TransitionRecord,
};
use remediation_limiter::Window;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::StoreSqliteError;
use crate::error::hint;
use crate::schema::{migrate, open_error};
use crate::writer::{Reply, WriteCtx, Writer, WriterStats, stopped};

/// The tenant every row belongs to until tenancy arrives; queries already filter on it.
pub(crate) const DEFAULT_TENANT: &str = "default";

/// How long a call waits for another process's write transaction before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// The embedded default [`Store`]: one SQLite database file in WAL mode.
///
/// Several processes may open the same file: every state change is one `IMMEDIATE`
/// transaction (the write lock is taken before anything is read), and a call waits up to
/// 5 seconds for another process's transaction to finish.
///
/// No [`Store`] method touches SQLite on an async worker thread. State changes, safety
/// updates and notes go to one writer thread owning the write connection, which commits every
/// request queued at the time in one transaction (one fsync), each request in its own
/// savepoint so one failure rolls back only itself, and runs the audit sequencer once per
/// group. Reads, and the principal and pending-change calls, run on blocking threads
/// (`tokio::task::spawn_blocking`) on a small pool of connections (WAL readers see the last
/// commit). An in-memory store has a single connection, used under a lock on a blocking
/// thread, one request per transaction.
///
/// The handle is cheap to clone; the writer stops when the last clone is dropped.
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
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    pub(crate) tenant: String,
    /// The clock leases are judged by.
    pub(crate) clock: crate::lease::StoreClock,
}

/// What the clones of one store share.
#[derive(Debug)]
struct Inner {
    writer: Writer,
    /// The read connections (none for an in-memory store): at most [`READERS`] open, idle
    /// ones kept with their prepared statements; a read finding none idle and the pool full
    /// waits on `reader_freed` instead of opening one more.
    readers: Mutex<Readers>,
    /// Signalled whenever a read connection goes back to the pool (or is closed).
    reader_freed: std::sync::Condvar,
    path: PathBuf,
    /// Seals the audit checkpoint; `Debug` prints it redacted.
    key: Option<Arc<AuditKey>>,
}

/// Read connections open at most: reads beyond them wait for one to be free, since opening a
/// connection (file, pragmas, an empty statement cache) costs several reads.
const READERS: usize = 4;

/// The read pool's state.
#[derive(Debug, Default)]
struct Readers {
    /// Connections open and not in use.
    idle: Vec<Connection>,
    /// Connections open, in use or idle.
    open: usize,
    /// Connections opened since the store was opened.
    opened: usize,
}

/// Statements each connection keeps prepared.
const STATEMENT_CACHE: usize = 64;

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
        Self::setup(conn, path, key, false)
    }

    /// A private in-memory database, for tests and demos; gone when the store is dropped.
    pub fn open_in_memory() -> Result<SqliteStore, StoreSqliteError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| open_error(&path, "opening the file", e))?;
        Self::setup(conn, path, None, true)
    }

    fn setup(
        mut conn: Connection,
        path: PathBuf,
        key: Option<AuditKey>,
        memory: bool,
    ) -> Result<SqliteStore, StoreSqliteError> {
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
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let key = key.map(Arc::new);
        let ctx = WriteCtx::new(key.clone());
        let writer = if memory {
            Writer::inline(conn, ctx)
        } else {
            Writer::start(conn, ctx).map_err(|e| StoreSqliteError::WriterThread { path: path.clone(), source: e })?
        };
        let inner = Inner {
            writer,
            readers: Mutex::new(Readers::default()),
            reader_freed: std::sync::Condvar::new(),
            path,
            key,
        };
        Ok(SqliteStore {
            inner: Arc::new(inner),
            tenant: DEFAULT_TENANT.to_owned(),
            clock: crate::lease::StoreClock::default(),
        })
    }

    /// A read connection to the file, configured as the writer's.
    fn open_reader(&self) -> Result<Connection, StoreError> {
        const OP: &str = "cannot open a read connection";
        let conn = Connection::open(&self.inner.path).map_err(sql(OP))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(OP))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql(OP))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql(OP))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// The audit key, if the store was opened with one.
    pub(crate) fn key(&self) -> Option<&AuditKey> {
        self.inner.key.as_deref()
    }

    /// How many read connections the store has opened since it was opened (never more than
    /// four at once; reused while they stay open). For tests and benchmarks.
    pub fn read_connections_opened(&self) -> usize {
        self.inner.readers.lock().unwrap_or_else(PoisonError::into_inner).opened
    }

    /// The writer's counters since the store was opened: how many transactions it committed,
    /// how many requests they held, and how long it was busy. For tests and benchmarks.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// Runs `work` on the writer (see the type's documentation) and waits for its answer,
    /// which comes after the transaction holding it committed.
    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&Connection, &WriteCtx) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply: Reply<R> = Box::new(move |result| {
            // The caller may have stopped waiting; the change is committed either way.
            let _ = tx.send(result);
        });
        if self.inner.writer.is_inline() {
            let this = self.clone();
            let tenant = this.tenant.clone();
            tokio::task::spawn_blocking(move || this.inner.writer.submit(tenant, work, reply))
                .await
                .map_err(|_| stopped())?;
        } else {
            self.inner.writer.submit(self.tenant.clone(), work, reply);
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Runs the synchronous `f` on a blocking thread, with a clone of this handle.
    pub(crate) async fn blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&SqliteStore) -> Result<R, StoreError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this)).await.map_err(|e| StoreError::Backend {
            message: "a store call stopped before answering".to_owned(),
            source: Box::new(e),
        })?
    }

    /// The database path (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every audit record, ordered by `seq`; with `since`, only those whose `at` is at or
    /// after it (read page by page).
    ///
    /// Fails when a stored record cannot be parsed; [`Self::verify_audit`] reports that
    /// as a broken chain instead.
    pub fn audit_records(&self, since: Option<OffsetDateTime>) -> Result<Vec<AuditRecord>, StoreError> {
        let filter = AuditFilter { since, ..AuditFilter::default() };
        let mut all: Vec<AuditRecord> = Vec::new();
        loop {
            let page = self.audit_page_now(&filter, all.last().map(|r| r.seq), 1000)?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// One page of sequenced audit records (see [`AuditLog::audit_page`]).
    fn audit_page_now(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        const OP: &str = "cannot read the audit records";
        let since = filter.since.map(clamped_nanos);
        let after = after_seq.map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX));
        let action = filter.action.map(|a| a.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, record_json FROM audit
                     WHERE seq > ?1 AND tenant = ?2 AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR action_id = ?4)
                     ORDER BY seq LIMIT ?5",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![after, self.tenant, since, action, limit], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })
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
            let report = verify_in(&tx, &self.tenant, self.key(), OP)?;
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
        let Some(key) = self.key() else {
            return Err(refused("the store was opened without an audit key".to_owned()));
        };
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(OP))?;
            let report = verify_in(&tx, &self.tenant, Some(key), OP)?;
            match (&report.first_break, &report.checkpoint) {
                (Some(_), _) => return Err(refused(format!("the chain does not verify: {report}"))),
                (None, CheckpointVerdict::Matches) => return Ok(report),
                (None, CheckpointVerdict::Missing) => {}
                (None, other) => {
                    return Err(refused(format!("a checkpoint exists and adoption never replaces one ({other})")));
                }
            }
            if let Some(head) = &report.head {
                write_checkpoint(&tx, &self.tenant, &key.seal(report.records, head), &|| OP.to_owned())?;
            }
            tx.commit().map_err(sql(OP))?;
            Ok(ChainReport { checkpoint: CheckpointVerdict::Matches, ..report })
        })
    }

    /// Stores `details` as they are, in one transaction, without transitions or audit
    /// records: a batched path for tests and benchmarks that need many actions (100,000
    /// single-action transactions would each wait for the disk). Not for production data:
    /// the audit trail does not know these actions.
    pub fn seed_actions(&self, details: &[ActionDetail]) -> Result<(), StoreError> {
        const OP: &str = "cannot seed actions";
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(OP))?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO actions (id, tenant, state, connector, requested_by, created_at, updated_at, detail_json, due_at, not_before, handle)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(sql(OP))?;
                let mut handle: i64 = tx
                    .query_row("SELECT COALESCE(MAX(handle), 0) FROM actions", [], |row| row.get(0))
                    .map_err(sql(OP))?;
                for detail in details {
                    handle += 1;
                    let mut detail = detail.clone();
                    detail.action.handle = u64::try_from(handle).ok();
                    let detail = &detail;
                    let a = &detail.action;
                    let json = serde_json::to_string(detail).map_err(encode(OP))?;
                    stmt.execute(params![
                        a.id.to_string(),
                        self.tenant,
                        a.state.as_str(),
                        a.connector,
                        a.requested_by,
                        clamped_nanos(a.created_at),
                        clamped_nanos(a.updated_at),
                        json,
                        detail.due_at().map(clamped_nanos),
                        detail.not_before.map(clamped_nanos),
                        handle
                    ])
                    .map_err(sql(OP))?;
                }
            }
            tx.commit().map_err(sql(OP))
        })
    }

    /// Runs `f` on a connection of the read pool (the one connection of an in-memory store),
    /// on the calling thread: callers on the async runtime go through [`Self::blocking`].
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // In memory: the one connection, under the writer's lock. A panic while the lock was
        // held left no transaction open (rusqlite rolls back on drop).
        let mut f = Some(f);
        if let Some(result) = self.inner.writer.with_inline(|conn| f.take().map(|f| f(conn))) {
            return result.unwrap_or_else(|| Err(stopped()));
        }
        let Some(f) = f else { return Err(stopped()) };
        let mut conn = self.take_reader()?;
        let result = f(&mut conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.is_autocommit() {
            pool.idle.push(conn);
        } else {
            // Left inside a transaction: closed (rolled back), not reused.
            pool.open = pool.open.saturating_sub(1);
        }
        drop(pool);
        self.inner.reader_freed.notify_one();
        result
    }

    /// An idle read connection, else a new one while fewer than [`READERS`] are open, else
    /// the next one given back (waiting on the calling, blocking, thread).
    fn take_reader(&self) -> Result<Connection, StoreError> {
        let mut pool = self.inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < READERS {
                pool.open += 1;
                pool.opened += 1;
                drop(pool);
                return self.open_reader().inspect_err(|_| {
                    let mut pool = self.inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
                    pool.open = pool.open.saturating_sub(1);
                    drop(pool);
                    self.inner.reader_freed.notify_one();
                });
            }
            pool = self.inner.reader_freed.wait(pool).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// `apply` inside the writer's transaction.
///
/// `now` is the store's clock when the change was submitted: it dates a lease the change grants.
fn apply_in(
    conn: &Connection,
    ctx: &WriteCtx,
    change: &StateChange,
    entry: &PreparedBody,
    now: OffsetDateTime,
) -> Result<Action, StoreError> {
    let op = change_op(change);
    let detail = load_expected(conn, &ctx.tenant(), &change.record)?;
    crate::lease::check_fence(conn, &ctx.tenant(), change)?;
    let action = write_change(conn, ctx, detail, change, entry, &op)?;
    crate::lease::lease_step(conn, &ctx.tenant(), change, now)?;
    Ok(action)
}

/// `begin_execution` inside the writer's transaction: the counts and the writes see the same
/// data, because no other process can write between them.
fn begin_in(
    conn: &Connection,
    ctx: &WriteCtx,
    change: &StateChange,
    entry: &PreparedBody,
    slots: &[SlotRequest],
    enforce: bool,
    now: OffsetDateTime,
) -> Result<BeginOutcome, StoreError> {
    let op = change_op(change);
    let id = change.record.action_id;
    let at = change.record.at;
    let at_nanos = nanos(at).map_err(invalid_with(&op))?;
    let detail = load_expected(conn, &ctx.tenant(), &change.record)?;
    crate::lease::check_fence(conn, &ctx.tenant(), change)?;
    // The tenant's own windows: its keys as stored.
    let scoped = remediation_core::store::tenant_slots(&ctx.tenant(), slots);
    for (slot, asked) in scoped.iter().zip(slots) {
        let used = count_used(conn, slot, at, true).map_err(sql_with(&op))?;
        if enforce && !Window::of(slot).admits(used) {
            // Nothing was written yet.
            let aging = aging_slot(conn, slot, at, used).map_err(sql_with(&op))?;
            return Ok(BeginOutcome::LimitReached(LimitReached::new(asked.clone(), used, aging)));
        }
    }
    for slot in &scoped {
        conn.prepare_cached("INSERT INTO limit_slots (key, at, action_id) VALUES (?1, ?2, ?3)")
            .and_then(|mut stmt| stmt.execute(params![slot.key, at_nanos, id.to_string()]))
            .map_err(sql_with(&op))?;
    }
    let action = write_change(conn, ctx, detail, change, entry, &op)?;
    crate::lease::lease_step(conn, &ctx.tenant(), change, now)?;
    Ok(BeginOutcome::Started(action))
}

/// `create_action` inside the writer's transaction.
fn create_in(
    conn: &Connection,
    ctx: &WriteCtx,
    detail: &ActionDetail,
    entry: &PreparedBody,
) -> Result<Option<u64>, StoreError> {
    let action = &detail.action;
    let op = || format!("cannot create action {}", action.id);
    let created_at = nanos(action.created_at).map_err(invalid_with(&op))?;
    let updated_at = nanos(action.updated_at).map_err(invalid_with(&op))?;
    let due_at = detail.due_at().map(clamped_nanos);
    // The writer is the only one: the next handle after the largest cannot be taken meanwhile.
    let handle: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(handle), 0) + 1 FROM actions")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(sql_with(&op))?;
    let mut detail = detail.clone();
    detail.action.handle = u64::try_from(handle).ok();
    let detail_json = serde_json::to_string(&detail).map_err(encode_with(&op))?;
    conn.prepare_cached(
        "INSERT INTO actions (id, tenant, state, connector, requested_by, created_at, updated_at, detail_json, due_at, handle)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            action.id.to_string(),
            ctx.tenant(),
            action.state.as_str(),
            action.connector,
            action.requested_by,
            created_at,
            updated_at,
            detail_json,
            due_at,
            handle
        ])
    })
    .map_err(|e| {
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
            sql(format!("{}: an action with this id already exists", op()))(e)
        } else {
            sql_with(&op)(e)
        }
    })?;
    ctx.enqueue_audit(entry.clone());
    Ok(u64::try_from(handle).ok())
}

#[async_trait]
impl ActionStore for SqliteStore {
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<Option<u64>, StoreError> {
        let action = &detail.action;
        let op = || format!("cannot create action {}", action.id);
        if let Some(from) = record.from {
            return Err(invalid_with(&op)(StoreSqliteError::NotAFirstTransition { from }));
        }
        if record.action_id != action.id {
            return Err(invalid_with(&op)(StoreSqliteError::ActionMismatch {
                action: action.id,
                record: record.action_id,
            }));
        }
        if record.to != action.state {
            return Err(invalid_with(&op)(StoreSqliteError::InitialStateMismatch {
                state: action.state,
                to: record.to,
            }));
        }
        let entry = prepare(AuditBody::Transition(record.clone()), op)?;
        let detail = detail.clone();
        self.write(move |conn, ctx| create_in(conn, ctx, &detail, &entry)).await
    }

    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError> {
        self.blocking(move |s| s.with_conn(|conn| load(conn, &s.tenant, id, &|| format!("cannot read action {id}"))))
            .await
    }

    async fn action_by_handle(&self, handle: u64) -> Result<Option<ActionId>, StoreError> {
        const OP: &str = "cannot look up an action by its handle";
        let Ok(handle) = i64::try_from(handle) else { return Ok(None) };
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let id: Option<String> = conn
                    .prepare_cached("SELECT id FROM actions WHERE tenant = ?1 AND handle = ?2")
                    .and_then(|mut stmt| stmt.query_row(params![s.tenant, handle], |row| row.get(0)).optional())
                    .map_err(sql(OP))?;
                id.map(|id| {
                    id.parse::<ActionId>().map_err(|e| StoreError::Backend {
                        message: format!("{OP}: stored id {id} is not an action id"),
                        source: Box::new(e),
                    })
                })
                .transpose()
            })
        })
        .await
    }

    async fn list(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, StoreError> {
        let (filter, page) = (filter.clone(), *page);
        self.blocking(move |s| s.list_now(&filter, &page)).await
    }

    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<ActionDetail>, StoreError> {
        self.blocking(move |s| s.due_now(now, limit)).await
    }

    async fn claimable(
        &self,
        now: OffsetDateTime,
        connector: Option<String>,
        limit: usize,
    ) -> Result<Vec<ActionDetail>, StoreError> {
        self.blocking(move |s| s.claimable_now(now, connector.as_deref(), limit)).await
    }

    async fn count_by_state(&self) -> Result<std::collections::BTreeMap<State, u64>, StoreError> {
        self.blocking(SqliteStore::state_counts).await
    }

    async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError> {
        self.blocking(move |s| s.transitions_now(id)).await
    }

    async fn apply(&self, change: &StateChange) -> Result<Action, StoreError> {
        let change = change.clone();
        let now = self.clock.now();
        let entry = prepare(AuditBody::Transition(change.record.clone()), change_op(&change))?;
        self.write(move |conn, ctx| apply_in(conn, ctx, &change, &entry, now)).await
    }

    async fn begin_execution(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError> {
        let (change, slots) = (change.clone(), slots.to_vec());
        let now = self.clock.now();
        let entry = prepare(AuditBody::Transition(change.record.clone()), change_op(&change))?;
        self.write(move |conn, ctx| begin_in(conn, ctx, &change, &entry, &slots, enforce, now)).await
    }
}

#[async_trait]
impl LimitStore for SqliteStore {
    async fn check_limits(
        &self,
        slots: &[SlotRequest],
        at: OffsetDateTime,
    ) -> Result<Option<LimitReached>, StoreError> {
        let slots = slots.to_vec();
        self.blocking(move |s| s.check_limits_now(&slots, at)).await
    }

    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        self.blocking(move |s| s.slots_since_now(since)).await
    }
}

#[async_trait]
impl SafetyStore for SqliteStore {
    async fn safety_state(&self) -> Result<SafetyState, StoreError> {
        const OP: &str = "cannot read the safety state";
        self.blocking(|s| s.with_conn(|conn| read_safety(conn, &s.tenant, OP))).await
    }

    async fn update_safety_state(
        &self,
        expected: &SafetyState,
        new: &SafetyState,
        record: &SettingsRecord,
    ) -> Result<(), StoreError> {
        let op = || format!("cannot record {}", record.setting_event);
        let json = serde_json::to_string(new).map_err(encode_with(&op))?;
        let entry = prepare(AuditBody::Settings(record.clone()), op)?;
        let (expected, record) = (expected.clone(), record.clone());
        self.write(move |conn, ctx| {
            let op = || format!("cannot record {}", record.setting_event);
            if read_safety(conn, &ctx.tenant(), "cannot read the safety state")? != expected {
                return Err(StoreError::SafetyConflict);
            }
            conn.prepare_cached(
                "INSERT INTO safety_states (tenant, state_json) VALUES (?1, ?2)
                 ON CONFLICT (tenant) DO UPDATE SET state_json = excluded.state_json",
            )
            .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), json]))
            .map_err(sql_with(&op))?;
            ctx.enqueue_audit(entry.clone());
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let filter = filter.clone();
        self.blocking(move |s| s.audit_page_now(&filter, after_seq, limit)).await
    }

    async fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        self.blocking(SqliteStore::verify_audit).await
    }

    async fn adopt_audit_chain(&self) -> Result<ChainReport, StoreError> {
        self.blocking(SqliteStore::adopt_audit_chain).await
    }

    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
        let entry = prepare(AuditBody::Settings(record.clone()), || format!("cannot record {}", record.setting_event))?;
        self.write(move |_conn, ctx| {
            ctx.enqueue_audit(entry.clone());
            Ok(())
        })
        .await
    }

    async fn audit_size(&self) -> Result<u64, StoreError> {
        self.blocking(SqliteStore::audit_size_now).await
    }

    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<LeafHash>, StoreError> {
        self.blocking(move |s| s.leaf_hashes_now(start, end)).await
    }

    async fn store_tree_head(&self, head: &StoredTreeHead, previous_size: Option<u64>) -> Result<(), StoreError> {
        let head = head.clone();
        self.write(move |conn, ctx| crate::log::store_tree_head_in(conn, &ctx.tenant(), &head, previous_size)).await
    }

    async fn latest_tree_head(&self) -> Result<Option<StoredTreeHead>, StoreError> {
        self.blocking(SqliteStore::latest_tree_head_now).await
    }

    async fn tree_head_at(&self, tree_size: u64) -> Result<Option<StoredTreeHead>, StoreError> {
        self.blocking(move |s| s.tree_head_at_now(tree_size)).await
    }

    async fn publish_key(&self, key: &StoredPublicKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn, ctx| crate::log::publish_key_in(conn, &ctx.tenant(), &key)).await
    }

    async fn published_keys(&self) -> Result<Vec<StoredPublicKey>, StoreError> {
        self.blocking(SqliteStore::published_keys_now).await
    }

    async fn archive_audit(&self, archive: &AuditArchive) -> Result<u64, StoreError> {
        let archive = archive.clone();
        self.write(move |conn, ctx| crate::log::archive_in(conn, &ctx.tenant(), &archive)).await
    }

    /// The writer sequences every group in its own transaction: nothing is left pending.
    async fn sequence_pending(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn unsequenced(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

impl SqliteStore {
    /// Actions due at `now` (see [`ActionStore::due`]), on the due-time index.
    fn due_now(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<ActionDetail>, StoreError> {
        const OP: &str = "cannot read the actions that are due";
        let now = clamped_nanos(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT detail_json FROM actions
                     WHERE tenant = ?1 AND due_at IS NOT NULL AND due_at < ?2
                     ORDER BY due_at LIMIT ?3",
                )
                .map_err(sql(OP))?;
            let rows =
                stmt.query_map(params![self.tenant, now, limit], |row| row.get::<_, String>(0)).map_err(sql(OP))?;
            let mut due = Vec::new();
            for row in rows {
                due.push(serde_json::from_str(&row.map_err(sql(OP))?).map_err(decode(OP))?);
            }
            Ok(due)
        })
    }

    /// How many actions are in each state (see [`ActionStore::count_by_state`]): a count per
    /// state on the state index (`tenant`, `state`, ...), no action decoded.
    fn state_counts(&self) -> Result<std::collections::BTreeMap<State, u64>, StoreError> {
        const OP: &str = "cannot count the actions by state";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT state, COUNT(*) FROM actions WHERE tenant = ?1 GROUP BY state")
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![self.tenant], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
                .map_err(sql(OP))?;
            let mut counts = std::collections::BTreeMap::new();
            for row in rows {
                let (state, n) = row.map_err(sql(OP))?;
                let state: State =
                    state.parse().map_err(|e: remediation_core::lifecycle::UnknownState| StoreError::Backend {
                        message: format!("{OP}: the actions table holds an unknown state"),
                        source: Box::new(e),
                    })?;
                counts.insert(state, u64::try_from(n).unwrap_or(0));
            }
            Ok(counts)
        })
    }

    /// Approved actions claimable at `now` (see [`ActionStore::claimable`]), on the state
    /// index (`tenant`, `state`, `created_at`, `id`).
    fn claimable_now(
        &self,
        now: OffsetDateTime,
        connector: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionDetail>, StoreError> {
        const OP: &str = "cannot read the approved actions to execute";
        let now = clamped_nanos(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT detail_json FROM actions INDEXED BY actions_by_state
                     WHERE tenant = ?1 AND state = 'approved' AND (not_before IS NULL OR not_before <= ?2)
                       AND (?3 IS NULL OR connector = ?3)
                     ORDER BY created_at, id LIMIT ?4",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![self.tenant, now, connector, limit], |row| row.get::<_, String>(0))
                .map_err(sql(OP))?;
            let mut found = Vec::new();
            for row in rows {
                found.push(serde_json::from_str(&row.map_err(sql(OP))?).map_err(decode(OP))?);
            }
            Ok(found)
        })
    }

    /// The transitions of action `id`, oldest first.
    fn transitions_now(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError> {
        let op = || format!("cannot read the transitions of action {id}");
        self.with_conn(|conn| {
            // One read transaction, so the existence check and the rows agree.
            let tx = conn.transaction().map_err(sql_with(&op))?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM actions WHERE id = ?1 AND tenant = ?2",
                    params![id.to_string(), self.tenant],
                    |_| Ok(()),
                )
                .optional()
                .map_err(sql_with(&op))?;
            if exists.is_none() {
                return Err(StoreError::NotFound(id));
            }
            // Rows kept in `transitions` by the version 8 migration (written before it, with no
            // audit record to match), then the audit records of the action.
            let mut records: Vec<TransitionRecord> = Vec::new();
            {
                let mut stmt = tx
                    .prepare_cached("SELECT record_json FROM transitions WHERE action_id = ?1 ORDER BY seq")
                    .map_err(sql_with(&op))?;
                let rows = stmt.query_map(params![id.to_string()], |row| row.get::<_, String>(0)).map_err(sql_with(&op))?;
                for row in rows {
                    records.push(serde_json::from_str(&row.map_err(sql_with(&op))?).map_err(decode_with(&op))?);
                }
            }
            let legacy = !records.is_empty();
            {
                let mut stmt = tx
                    .prepare_cached("SELECT seq, record_json FROM audit WHERE action_id = ?1 AND tenant = ?2 ORDER BY seq")
                    .map_err(sql_with(&op))?;
                let rows = stmt
                    .query_map(params![id.to_string(), self.tenant], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                    })
                    .map_err(sql_with(&op))?;
                for row in rows {
                    let (seq, json) = row.map_err(sql_with(&op))?;
                    let record = AuditRecord::from_json(&json).map_err(|source| StoreError::Backend {
                        message: format!(
                            "{}: audit record {seq} cannot be read: it was edited or corrupted; run `remediate audit verify`",
                            op()
                        ),
                        source: Box::new(source),
                    })?;
                    if let AuditBody::Transition(t) = record.body {
                        records.push(t);
                    }
                }
            }
            if legacy {
                records.sort_by_key(|r| r.at);
            }
            tx.finish().map_err(sql_with(&op))?;
            Ok(records)
        })
    }

    /// The first of `slots` whose window is full at `at`, in one snapshot.
    fn check_limits_now(&self, slots: &[SlotRequest], at: OffsetDateTime) -> Result<Option<LimitReached>, StoreError> {
        const OP: &str = "cannot check the blast-radius limits";
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            let scoped = remediation_core::store::tenant_slots(&self.tenant, slots);
            for (slot, asked) in scoped.iter().zip(slots) {
                let used = count_used(&tx, slot, at, false).map_err(sql(OP))?;
                if !Window::of(slot).admits(used) {
                    let aging = aging_slot(&tx, slot, at, used).map_err(sql(OP))?;
                    return Ok(Some(LimitReached::new(asked.clone(), used, aging)));
                }
            }
            tx.finish().map_err(sql(OP))?;
            Ok(None)
        })
    }
}

impl SqliteStore {
    /// Keyset paging on (created_at, id): the state filter runs on the state index, every
    /// other listing on the creation index; both stop after `limit + 1` rows.
    fn list_now(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, StoreError> {
        const OP: &str = "cannot list actions";
        let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let state = filter.state.map(|s| s.as_str());
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            let (after_at, after_id) = match page.after {
                None => (i64::MIN, String::new()),
                Some(after) => {
                    let at: Option<i64> = tx
                        .prepare_cached("SELECT created_at FROM actions WHERE id = ?1 AND tenant = ?2")
                        .and_then(|mut stmt| {
                            stmt.query_row(params![after.to_string(), self.tenant], |row| row.get(0)).optional()
                        })
                        .map_err(sql(OP))?;
                    match at {
                        Some(at) => (at, after.to_string()),
                        // An unknown cursor yields nothing.
                        None => return Ok(Page { items: Vec::new(), next: None }),
                    }
                }
            };
            // The filters beyond state read the stored JSON; the keyset and LIMIT bound the rows read.
            let rest = "AND (?4 IS NULL OR connector = ?4)
                 AND (?5 IS NULL OR json_extract(detail_json, '$.action.target.identity') = ?5
                      OR json_extract(detail_json, '$.action.canonical.identity') = ?5)
                 AND (?6 IS NULL OR json_extract(detail_json, '$.action.control_id') = ?6)
                 AND (?9 IS NULL OR json_extract(detail_json, '$.action.campaign') = ?9)
                 ORDER BY created_at, id LIMIT ?7";
            let query = if state.is_some() {
                format!(
                    "SELECT json_extract(detail_json, '$.action') FROM actions INDEXED BY actions_by_state
                     WHERE tenant = ?1 AND state = ?8 AND (created_at, id) > (?2, ?3) {rest}"
                )
            } else {
                format!(
                    "SELECT json_extract(detail_json, '$.action') FROM actions INDEXED BY actions_by_created
                     WHERE tenant = ?1 AND ?8 IS NULL AND (created_at, id) > (?2, ?3) {rest}"
                )
            };
            let mut items: Vec<Action> = Vec::new();
            {
                let mut stmt = tx.prepare_cached(&query).map_err(sql(OP))?;
                let rows = stmt
                    .query_map(
                        params![
                            self.tenant,
                            after_at,
                            after_id,
                            filter.connector,
                            filter.identity,
                            filter.control,
                            limit,
                            state,
                            filter.campaign
                        ],
                        |row| row.get::<_, String>(0),
                    )
                    .map_err(sql(OP))?;
                // Only the action is read out of each row's JSON (not its plan and snapshots).
                for row in rows {
                    items.push(serde_json::from_str(&row.map_err(sql(OP))?).map_err(decode(OP))?);
                }
            }
            tx.finish().map_err(sql(OP))?;
            let next = if items.len() > page.limit {
                items.truncate(page.limit);
                items.last().map(|a| a.id)
            } else {
                None
            };
            Ok(Page { items, next })
        })
    }

    fn slots_since_now(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
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
                let Some(key) = remediation_core::store::tenant_limit_key_of(&self.tenant, &key) else {
                    continue;
                };
                let key = key.to_owned();
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
fn read_safety(conn: &Connection, tenant: &str, op: &'static str) -> Result<SafetyState, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT state_json FROM safety_states WHERE tenant = ?1")
        .and_then(|mut stmt| stmt.query_row(params![tenant], |row| row.get(0)).optional())
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
                let reason = format!("its JSON is not a valid audit record ({})", remediation_core::error_chain(&e));
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
        .prepare_cached("SELECT detail_json FROM actions WHERE id = ?1 AND tenant = ?2")
        .and_then(|mut stmt| stmt.query_row(params![id.to_string(), tenant], |row| row.get::<_, String>(0)).optional())
        .map_err(sql_with(&op))?
        .ok_or(StoreError::NotFound(id))?;
    serde_json::from_str(&json).map_err(decode_with(&op))
}

/// Merges the update into the action, writes it, and appends the transition and its audit
/// entry (sequenced by the writer at the end of the group).
fn write_change(
    conn: &Connection,
    ctx: &WriteCtx,
    detail: ActionDetail,
    change: &StateChange,
    entry: &PreparedBody,
    op: &dyn Fn() -> String,
) -> Result<Action, StoreError> {
    let record = &change.record;
    let detail = change.applied_to(detail);
    let updated_at = nanos(record.at).map_err(invalid_with(&op))?;
    let due_at = detail.due_at().map(clamped_nanos);
    let not_before = detail.not_before.map(clamped_nanos);
    let detail_json = serde_json::to_string(&detail).map_err(encode_with(&op))?;
    let id = record.action_id.to_string();
    let tenant = &ctx.tenant();
    conn.prepare_cached(
        "UPDATE actions SET state = ?1, updated_at = ?2, detail_json = ?3, due_at = ?6, not_before = ?7
         WHERE id = ?4 AND tenant = ?5",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![record.to.as_str(), updated_at, detail_json, id, tenant, due_at, not_before])
    })
    .map_err(sql_with(&op))?;
    if record.from == Some(State::Executing) && record.to == State::Approved {
        // A requeue: nothing was written, so the action's slots go back to the windows.
        conn.prepare_cached("DELETE FROM limit_slots WHERE action_id = ?1")
            .and_then(|mut stmt| stmt.execute(params![id]))
            .map_err(sql_with(&op))?;
    }
    // The transition is stored once: in its audit record ([`SqliteStore::transitions`] reads it there).
    ctx.enqueue_audit(entry.clone());
    Ok(detail.action)
}

/// Writes `body` to the audit log in the caller's transaction: [`sequence_audit`] with it
/// alone, so every committed change of this store is sequenced.
pub(crate) fn append_audit(
    conn: &Connection,
    tenant: &str,
    key: Option<&AuditKey>,
    body: &AuditBody,
    op: &dyn Fn() -> String,
) -> Result<(), StoreError> {
    sequence_audit(conn, tenant, key, vec![prepare(body.clone(), op)?], op)
}

/// `body` with its canonical members written, ready for the sequencer.
pub(crate) fn prepare(body: AuditBody, op: impl Fn() -> String) -> Result<PreparedBody, StoreError> {
    PreparedBody::new(body).map_err(audit_with(&op))
}

/// The sequencer: seals every entry an older version left unsequenced in `audit_pending`
/// (oldest first), then `bodies` in order, onto the chain head kept in `audit_head`
/// ([`remediation_audit::seal`]), inserts the records into the insert-only `audit` table,
/// deletes the pending entries it sequenced, moves the head and, with a key, seals the
/// checkpoint over the new head. Runs inside the caller's write transaction.
///
/// With a key the checkpoint must first vouch for the head (genuine MAC, same `seq` and
/// `hash`), so a truncated or rewritten chain is never sealed over; without a key there must
/// be no checkpoint, which this process could not keep up to date. The `audit` table's insert
/// trigger still refuses any record that does not extend its last row, so a head row that
/// disagrees with the table stops sequencing too.
pub(crate) fn sequence_audit(
    conn: &Connection,
    tenant: &str,
    key: Option<&AuditKey>,
    bodies: Vec<PreparedBody>,
    op: &dyn Fn() -> String,
) -> Result<(), StoreError> {
    let mut head: Option<ChainHead> = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE tenant = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![tenant], |row| {
                Ok(ChainHead { seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0), hash: row.get(1)? })
            })
            .optional()
        })
        .map_err(sql_with(&op))?;
    let pending: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare_cached("SELECT id, body_json FROM audit_pending WHERE tenant = ?1 ORDER BY id")
            .map_err(sql_with(&op))?;
        let rows = stmt.query_map(params![tenant], |row| Ok((row.get(0)?, row.get(1)?))).map_err(sql_with(&op))?;
        rows.collect::<Result<_, _>>().map_err(sql_with(&op))?
    };
    let last_pending = pending.last().map(|(id, _)| *id);
    if last_pending.is_none() && bodies.is_empty() {
        return Ok(());
    }
    // The chain's last row, by its columns on the primary key (no JSON is parsed): the
    // checkpoint must vouch for it, and the head row must name it.
    let last: Option<ChainHead> = conn
        .prepare_cached("SELECT seq, hash FROM audit WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row(params![tenant], |row| {
                Ok(ChainHead { seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0), hash: row.get(1)? })
            })
            .optional()
        })
        .map_err(sql_with(&op))?;
    let stored = read_checkpoint(conn, tenant).map_err(sql_with(&op))?;
    match key {
        None if stored.is_some() => return Err(invalid_with(&op)(StoreSqliteError::KeyRequired)),
        None => {}
        Some(key) => {
            let verdict = judge_checkpoint(Some(key), stored.as_ref(), last.as_ref().map(|h| (h.seq, h.hash.as_str())));
            if verdict != CheckpointVerdict::Matches {
                return Err(invalid_with(&op)(StoreSqliteError::CheckpointMismatch { verdict }));
            }
        }
    }
    if head != last {
        return Err(invalid_with(&op)(StoreSqliteError::AuditHeadMismatch {
            head: head.map(|h| h.seq).unwrap_or(0),
            last: last.map(|h| h.seq).unwrap_or(0),
        }));
    }
    let mut left = Vec::with_capacity(pending.len());
    for (_, body_json) in &pending {
        let body: AuditBody = serde_json::from_str(body_json).map_err(decode_with(&op))?;
        left.push(prepare(body, op)?);
    }
    for body in left.into_iter().chain(bodies) {
        let (record, json) = remediation_audit::seal_prepared(head.as_ref(), body).map_err(audit_with(&op))?;
        let seq = i64::try_from(record.seq).map_err(|source| StoreError::Backend {
            message: format!("{}: the audit chain is full", op()),
            source: Box::new(source),
        })?;
        let at = nanos(record.body.at()).map_err(invalid_with(&op))?;
        let action_id = record.body.action_id().map(|id| id.to_string()).unwrap_or_default();
        conn.prepare_cached(
            "INSERT INTO audit (seq, action_id, at, record_json, prev_hash, hash, tenant)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut stmt| stmt.execute(params![seq, action_id, at, json, record.prev_hash, record.hash, tenant]))
        .map_err(sql_with(&op))?;
        crate::log::insert_leaf(conn, tenant, seq, &json).map_err(sql_with(&op))?;
        head = Some(ChainHead { seq: record.seq, hash: record.hash });
    }
    if let Some(last_id) = last_pending {
        conn.prepare_cached("DELETE FROM audit_pending WHERE tenant = ?1 AND id <= ?2")
            .and_then(|mut stmt| stmt.execute(params![tenant, last_id]))
            .map_err(sql_with(&op))?;
    }
    if let Some(head) = &head {
        let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
        conn.prepare_cached(
            "INSERT INTO audit_head (tenant, seq, hash) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .and_then(|mut stmt| stmt.execute(params![tenant, seq, head.hash]))
        .map_err(sql_with(&op))?;
        if let Some(key) = key {
            write_checkpoint(conn, tenant, &key.seal(head.seq, &head.hash), op)?;
        }
    }
    Ok(())
}

/// The stored checkpoint, if any. A negative `count` (which this crate never writes) is read
/// as `u64::MAX`, whose MAC then fails to verify.
fn read_checkpoint(conn: &Connection, tenant: &str) -> Result<Option<Checkpoint>, rusqlite::Error> {
    conn.prepare_cached("SELECT count, head, mac FROM audit_checkpoints WHERE tenant = ?1")?
        .query_row(params![tenant], |row| {
            Ok(Checkpoint {
                count: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(u64::MAX),
                head: row.get(1)?,
                mac: row.get(2)?,
            })
        })
        .optional()
}

/// Inserts or replaces the one checkpoint row.
fn write_checkpoint(
    conn: &Connection,
    tenant: &str,
    checkpoint: &Checkpoint,
    op: &dyn Fn() -> String,
) -> Result<(), StoreError> {
    let count = i64::try_from(checkpoint.count).map_err(|source| StoreError::Backend {
        message: format!("{}: the audit chain is full", op()),
        source: Box::new(source),
    })?;
    conn.prepare_cached(
        "INSERT INTO audit_checkpoints (tenant, count, head, mac) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant) DO UPDATE SET count = excluded.count, head = excluded.head, mac = excluded.mac",
    )
    .and_then(|mut stmt| stmt.execute(params![tenant, count, checkpoint.head, checkpoint.mac]))
    .map_err(sql_with(&op))?;
    Ok(())
}

/// Verifies every audit row and the checkpoint, inside the caller's transaction.
fn verify_in(
    conn: &Connection,
    tenant: &str,
    key: Option<&AuditKey>,
    op: &'static str,
) -> Result<ChainReport, StoreError> {
    // After an archive, the chain resumes from its last record.
    let mut verifier = match crate::log::archived_in(conn, tenant).map_err(sql(op))? {
        Some((seq, hash)) => ChainVerifier::resuming(seq, hash),
        None => ChainVerifier::new(),
    };
    let mut stmt = conn
        .prepare("SELECT seq, action_id, at, record_json, prev_hash, hash FROM audit WHERE tenant = ?1 ORDER BY seq")
        .map_err(sql(op))?;
    let mut rows = stmt.query(params![tenant]).map_err(sql(op))?;
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
        Some(_) => read_checkpoint(conn, tenant).map_err(sql(op))?,
        None => None,
    };
    Ok(verifier.finish_with_checkpoint(key, stored.as_ref()))
}

/// Slots recorded for `slot.key` after the start of the window ending at `at`
/// ([`Window::start`], exclusive): the key's total less the rows at or before the start, which
/// the key's cursor for this window length counts (schema version 10). The cursor moves from
/// where the last check left it to this window's start, counting only the rows in between,
/// so a check costs the same however many slots the key holds. With `keep`, the moved cursor
/// is stored (inside a write transaction); a read-only check leaves it where it was.
/// The time of the slot inside `slot`'s window (ending at `at`, holding `used`) that must age
/// out for the window to admit one more ([`LimitReached::aging_index`]), if the store holds it.
fn aging_slot(
    conn: &Connection,
    slot: &SlotRequest,
    at: OffsetDateTime,
    used: u32,
) -> Result<Option<OffsetDateTime>, rusqlite::Error> {
    let Some(k) = LimitReached::aging_index(slot, used) else { return Ok(None) };
    let window = Window::of(slot);
    let (Some(start), Ok(end)) = (
        at.checked_sub(window.length).and_then(|_| i64::try_from(window.start(at).unix_timestamp_nanos()).ok()),
        i64::try_from(at.unix_timestamp_nanos()),
    ) else {
        return Ok(None);
    };
    let nanos: Option<i64> = conn
        .prepare_cached(
            "SELECT at FROM limit_slots WHERE key = ?1 AND at > ?2 AND at <= ?3 ORDER BY at LIMIT 1 OFFSET ?4",
        )?
        .query_row(params![slot.key, start, end, i64::from(k)], |row| row.get(0))
        .optional()?;
    Ok(nanos.and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok()))
}

fn count_used(conn: &Connection, slot: &SlotRequest, at: OffsetDateTime, keep: bool) -> Result<u32, rusqlite::Error> {
    let window = Window::of(slot);
    let total: i64 = conn
        .prepare_cached("SELECT total FROM limit_totals WHERE key = ?1")?
        .query_row(params![slot.key], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    // `None`: the window reaches back before anything the store can hold, so every slot of the
    // key counts. (`Window::start` would overflow for windows longer than the calendar.)
    let start = at.checked_sub(window.length).and_then(|_| i64::try_from(window.start(at).unix_timestamp_nanos()).ok());
    let Some(start) = start else {
        return Ok(u32::try_from(total).unwrap_or(u32::MAX));
    };
    let window_ns = i64::try_from(window.length.whole_nanoseconds()).unwrap_or(i64::MAX);
    let cursor: Option<(i64, i64)> = conn
        .prepare_cached("SELECT cursor, aged FROM limit_cursors WHERE key = ?1 AND window_ns = ?2")?
        .query_row(params![slot.key, window_ns], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let between = |low: i64, high: i64| -> Result<i64, rusqlite::Error> {
        conn.prepare_cached("SELECT COUNT(*) FROM limit_slots WHERE key = ?1 AND at > ?2 AND at <= ?3")?
            .query_row(params![slot.key, low, high], |row| row.get(0))
    };
    let aged = match cursor {
        // The first check of this key and window length counts the rows before its start once.
        None => conn
            .prepare_cached("SELECT COUNT(*) FROM limit_slots WHERE key = ?1 AND at <= ?2")?
            .query_row(params![slot.key, start], |row| row.get(0))?,
        Some((cursor, aged)) if start >= cursor => aged + between(cursor, start)?,
        Some((cursor, aged)) => aged - between(start, cursor)?,
    };
    if keep && cursor.map(|(c, _)| c) != Some(start) {
        conn.prepare_cached(
            "INSERT INTO limit_cursors (key, window_ns, cursor, aged) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key, window_ns) DO UPDATE SET cursor = excluded.cursor, aged = excluded.aged",
        )?
        .execute(params![slot.key, window_ns, start, aged])?;
    }
    Ok(u32::try_from((total - aged).max(0)).unwrap_or(u32::MAX))
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

/// [`sql`] with the operation described only when the call fails: `op` formats nothing on the
/// way of a successful statement (the writer runs several per state change).
pub(crate) fn sql_with<F: Fn() -> String + ?Sized>(op: &F) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |source| sql(op())(source)
}

/// [`decode`], formatting the operation only on failure.
pub(crate) fn decode_with<F: Fn() -> String + ?Sized>(op: &F) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |source| decode(op())(source)
}

/// [`encode`], formatting the operation only on failure.
pub(crate) fn encode_with<F: Fn() -> String + ?Sized>(op: &F) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |source| encode(op())(source)
}

/// [`invalid`], formatting the operation only on failure.
pub(crate) fn invalid_with<F: Fn() -> String + ?Sized>(op: &F) -> impl FnOnce(StoreSqliteError) -> StoreError + '_ {
    move |source| invalid(op())(source)
}

/// [`audit`], formatting the operation only on failure.
fn audit_with<F: Fn() -> String + ?Sized>(op: &F) -> impl FnOnce(remediation_audit::AuditError) -> StoreError + '_ {
    move |source| audit(op())(source)
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

pub(crate) fn encode(operation: impl fmt::Display) -> impl FnOnce(serde_json::Error) -> StoreError {
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

#[cfg(test)]
mod limit_count_tests {
    use super::*;

    /// A fresh in-memory database at the current schema.
    fn db() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        for migration in crate::schema::MIGRATIONS {
            conn.execute_batch(migration).expect("migrate");
        }
        // The slots here name no stored action.
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("pragma");
        conn
    }

    fn insert(conn: &Connection, key: &str, at: i64) {
        conn.execute(
            "INSERT INTO limit_slots (key, at, action_id) VALUES (?1, ?2, ?3)",
            params![key, at, format!("a{at}")],
        )
        .expect("insert");
    }

    fn at_secs(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).expect("time")
    }

    fn naive(conn: &Connection, key: &str, at: OffsetDateTime, window_secs: i64) -> u32 {
        let start = nanos(at - time::Duration::seconds(window_secs)).expect("nanos");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM limit_slots WHERE key = ?1 AND at > ?2", params![key, start], |r| r.get(0))
            .expect("count");
        u32::try_from(n).expect("count")
    }

    /// Inserts, deletes and checks at times that go forwards and (like clocks of several
    /// processes) sometimes backwards, on two keys and two window lengths: the counted usage
    /// is always the naive count of the rows inside the window.
    #[test]
    fn the_counters_agree_with_counting_the_rows() {
        let conn = db();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut now: i64 = 0;
        for step in 0..4_000 {
            now += i64::try_from(next(5)).expect("small") - 1;
            let key = if next(3) == 0 { "connector:b" } else { "connector:a" };
            match next(10) {
                0..=4 => {
                    insert(&conn, key, nanos(at_secs(now - i64::try_from(next(3)).expect("small"))).expect("nanos"))
                }
                5 => {
                    conn.execute(
                        "DELETE FROM limit_slots WHERE rowid = (SELECT rowid FROM limit_slots WHERE key = ?1 ORDER BY random() LIMIT 1)",
                        params![key],
                    )
                    .expect("delete");
                }
                _ => {
                    let window = if next(2) == 0 { 30 } else { 200 };
                    let slot = remediation_testkit::slot(key, 1_000_000, u64::try_from(window).expect("positive"));
                    let keep = next(4) != 0;
                    let used = count_used(&conn, &slot, at_secs(now), keep).expect("count");
                    assert_eq!(
                        used,
                        naive(&conn, key, at_secs(now), window),
                        "step {step}, key {key}, window {window}"
                    );
                }
            }
        }
    }

    /// SQLite virtual-machine instructions one admission check runs, once the key's cursor
    /// has caught up.
    fn instructions_per_check(rows: i64) -> u64 {
        let mut conn = db();
        let slot = remediation_testkit::slot("connector:a", u32::MAX, 3_600);
        let tx = conn.unchecked_transaction().expect("tx");
        for i in 0..rows {
            insert(&tx, "connector:a", nanos(at_secs(0)).expect("nanos") + i);
        }
        tx.commit().expect("commit");
        // The first check of a key and window counts the rows before the window once.
        count_used(&conn, &slot, at_secs(10), true).expect("count");
        let steps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&steps);
        conn.progress_handler(
            1,
            Some(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }),
        )
        .expect("progress handler");
        insert(&conn, "connector:a", nanos(at_secs(11)).expect("nanos"));
        let used = count_used(&conn, &slot, at_secs(12), true).expect("count");
        conn.progress_handler(1, None::<fn() -> bool>).expect("progress handler");
        assert_eq!(i64::from(used), rows + 1);
        steps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Admission must cost the same however many slots a key holds inside its window (a long
    /// campaign leaves tens of thousands): counting them row by row, as a plain `COUNT(*)`
    /// over the window does, fails this.
    #[test]
    fn a_check_costs_the_same_with_a_thousand_or_fifty_thousand_slots() {
        let small = instructions_per_check(1_000);
        let large = instructions_per_check(50_000);
        assert!(large <= small + small / 2, "{small} instructions with 1,000 slots, {large} with 50,000");
    }
}

#[cfg(test)]
mod limit_count_migration_tests {
    use super::*;

    /// Slots stored before version 10 are counted by its totals from the start.
    #[test]
    fn the_migration_counts_the_slots_already_stored() {
        let conn = Connection::open_in_memory().expect("open");
        let (before, last) = crate::schema::MIGRATIONS.split_at(9);
        for migration in before {
            conn.execute_batch(migration).expect("migrate");
        }
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("pragma");
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        for i in 0..25_i64 {
            conn.execute(
                "INSERT INTO limit_slots (key, at, action_id) VALUES ('connector:a', ?1, 'a')",
                params![nanos(at).expect("nanos") + i * 1_000_000_000],
            )
            .expect("insert");
        }
        conn.execute_batch(last[0]).expect("migrate to 10");
        let slot = remediation_testkit::slot("connector:a", 100, 10);
        // Window (at + 14 s, at + 24 s]: the slots at 15..=24 s.
        let used = count_used(&conn, &slot, at + time::Duration::seconds(24), true).expect("count");
        assert_eq!(used, 10);
    }
}
