//! The writer: one thread owning the write connection, committing queued state changes in
//! groups.
//!
//! Callers send a request (a closure over the connection) and wait for its answer. The thread
//! takes the first request, then every request already queued (up to [`MAX_BATCH`]), and runs
//! them in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, so a request that
//! fails (a compare-and-set conflict, a refused limit) rolls back only its own writes. The
//! audit sequencer runs once at the end of the group, then one `COMMIT` (one fsync) makes the
//! whole group durable, and only then is each request answered. When the group as a whole
//! cannot commit (the sequencer refuses, the disk fails), it is rolled back and each request is
//! run again alone, so each gets its own answer. `SQLITE_BUSY` (another process holds the write
//! lock past the busy timeout) retries the whole group until the same budget is spent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use remediation_audit::{AuditKey, PreparedBody};
use remediation_core::StoreError;
use rusqlite::{Connection, ErrorCode};

use crate::StoreSqliteError;
use crate::store::{BUSY_TIMEOUT, sequence_audit, sql};

/// The most requests committed in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// What a request needs besides the connection.
#[derive(Debug)]
pub(crate) struct WriteCtx {
    /// The tenant of the request running now: every row it writes belongs to it (each
    /// request carries the tenant of the store handle that made it).
    current: Mutex<String>,
    /// Seals the audit checkpoint.
    pub(crate) key: Option<Arc<AuditKey>>,
    /// The audit entries of the open group's kept requests, in order, with their tenant: the
    /// writer is the sequencer, so they stay in memory until it seals them at the end of the
    /// group (in the same transaction, each onto its tenant's chain), instead of a round trip
    /// through `audit_pending`.
    pending: Mutex<Vec<(String, PreparedBody)>>,
}

impl WriteCtx {
    /// A context sealing the checkpoints with `key`.
    pub(crate) fn new(key: Option<Arc<AuditKey>>) -> WriteCtx {
        WriteCtx { current: Mutex::new(String::new()), key, pending: Mutex::new(Vec::new()) }
    }

    /// The tenant every row of the running request belongs to.
    pub(crate) fn tenant(&self) -> String {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn enter(&self, tenant: &str) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if *current != tenant {
            tenant.clone_into(&mut current);
        }
    }

    /// Queues `body` (prepared by the caller, off this thread) to be sealed onto the running
    /// request's tenant's chain at the end of the group, with the request's other writes.
    pub(crate) fn enqueue_audit(&self, body: PreparedBody) {
        let tenant = self.tenant();
        self.pending().push((tenant, body));
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(String, PreparedBody)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The audit key, if any.
    pub(crate) fn key(&self) -> Option<&AuditKey> {
        self.key.as_deref()
    }
}

/// Counters of the writer, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Write transactions committed by the writer.
    pub commits: u64,
    /// Requests answered after running inside one of those transactions (kept or rolled back).
    pub requests: u64,
    /// Time the writer spent running groups, from `BEGIN` to the answers, in nanoseconds.
    pub busy_nanos: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    requests: AtomicU64,
    busy_nanos: AtomicU64,
}

impl Counters {
    fn record(&self, requests: u64, started: Instant) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(spent, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            commits: self.commits.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            busy_nanos: self.busy_nanos.load(Ordering::Relaxed),
        }
    }
}

/// Where an answer goes: an async waiter's oneshot or a blocked thread's channel.
pub(crate) type Reply<R> = Box<dyn FnOnce(Result<R, StoreError>) + Send>;

/// A queued request, type-erased.
trait Job: Send {
    /// The tenant of the store handle that made the request.
    fn tenant(&self) -> &str;
    /// Runs the request inside the open savepoint; `true` when its writes are to be kept.
    fn run(&mut self, conn: &Connection, ctx: &WriteCtx) -> bool;
    /// Sends the result of the last run.
    fn answer(self: Box<Self>);
    /// Sends `error` instead (the transaction that held the last run did not commit).
    fn fail(self: Box<Self>, error: StoreError);
}

struct Request<R, F> {
    tenant: String,
    work: F,
    result: Option<Result<R, StoreError>>,
    reply: Reply<R>,
}

impl<R, F> Job for Request<R, F>
where
    R: Send,
    F: FnMut(&Connection, &WriteCtx) -> Result<R, StoreError> + Send,
{
    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn run(&mut self, conn: &Connection, ctx: &WriteCtx) -> bool {
        let result = (self.work)(conn, ctx);
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn answer(self: Box<Self>) {
        let result = self.result.unwrap_or_else(|| Err(stopped()));
        (self.reply)(result);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        (self.reply)(Err(error));
    }
}

/// How requests reach the connection.
#[derive(Debug)]
enum Mode {
    /// A dedicated thread owns the connection and commits requests in groups.
    Thread { tx: Mutex<Option<Sender<Box<dyn Job>>>>, thread: Option<JoinHandle<()>> },
    /// The caller's (blocking) thread runs each request alone under a lock: for an in-memory
    /// database, which no second connection can open.
    Inline { conn: Mutex<Connection>, ctx: WriteCtx },
}

/// The handle to the writer; dropping it lets the thread finish the queue and stop.
#[derive(Debug)]
pub(crate) struct Writer {
    mode: Mode,
    counters: Arc<Counters>,
}

/// The error of a request whose writer is gone.
pub(crate) fn stopped() -> StoreError {
    StoreError::Backend {
        message: "cannot write to the store".to_owned(),
        source: Box::new(StoreSqliteError::WriterStopped),
    }
}

impl Writer {
    /// Starts the thread owning `conn`.
    pub(crate) fn start(conn: Connection, ctx: WriteCtx) -> Result<Writer, std::io::Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || run(&conn, &ctx, &rx, &thread_counters))?;
        Ok(Writer { mode: Mode::Thread { tx: Mutex::new(Some(tx)), thread: Some(thread) }, counters })
    }

    /// A writer without a thread, running each request on the caller's thread.
    pub(crate) fn inline(conn: Connection, ctx: WriteCtx) -> Writer {
        Writer { mode: Mode::Inline { conn: Mutex::new(conn), ctx }, counters: Arc::new(Counters::default()) }
    }

    /// Whether [`Writer::submit`] runs the request on the calling thread (so it must be a
    /// blocking thread).
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.mode, Mode::Inline { .. })
    }

    /// The writer's counters so far.
    pub(crate) fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }

    /// Runs `f` on the inline connection; `None` for a threaded writer (whose connection only
    /// its thread touches).
    pub(crate) fn with_inline<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> Option<T> {
        match &self.mode {
            Mode::Inline { conn, .. } => Some(f(&mut conn.lock().unwrap_or_else(PoisonError::into_inner))),
            Mode::Thread { .. } => None,
        }
    }

    /// Queues `work` (a request of `tenant`'s store handle) for the next group; `reply` receives its result after the group commits.
    pub(crate) fn submit<R, F>(&self, tenant: String, work: F, reply: Reply<R>)
    where
        R: Send + 'static,
        F: FnMut(&Connection, &WriteCtx) -> Result<R, StoreError> + Send + 'static,
    {
        let job: Box<dyn Job> = Box::new(Request { tenant, work, result: None, reply });
        match &self.mode {
            Mode::Thread { tx, .. } => {
                let guard = tx.lock().unwrap_or_else(PoisonError::into_inner);
                let unsent = match guard.as_ref() {
                    Some(tx) => tx.send(job).err().map(|e| e.0),
                    None => Some(job),
                };
                if let Some(job) = unsent {
                    job.fail(stopped());
                }
            }
            Mode::Inline { conn, ctx } => {
                let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                let started = Instant::now();
                commit_group(&conn, ctx, vec![job], &self.counters);
                self.counters.record(1, started);
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Mode::Thread { tx, thread } = &mut self.mode {
            // Closing the channel ends the thread once the queue is done; waiting for it means
            // the file is closed when the store is dropped.
            drop(tx.get_mut().unwrap_or_else(PoisonError::into_inner).take());
            if let Some(thread) = thread.take()
                && thread.thread().id() != std::thread::current().id()
            {
                let _ = thread.join();
            }
        }
    }
}

/// The writer thread: groups, commits, answers, until every sender is gone.
fn run(conn: &Connection, ctx: &WriteCtx, rx: &Receiver<Box<dyn Job>>, counters: &Counters) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let n = group.len() as u64;
        commit_group(conn, ctx, group, counters);
        counters.record(n, started);
    }
}

/// Commits `group` in one transaction, or each request alone when the group cannot commit.
fn commit_group(conn: &Connection, ctx: &WriteCtx, mut group: Vec<Box<dyn Job>>, counters: &Counters) {
    let error = match attempt(conn, ctx, &mut group) {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            group.into_iter().for_each(Job::answer);
            return;
        }
        Err(error) => error,
    };
    if group.len() == 1 {
        if let Some(job) = group.pop() {
            job.fail(error);
        }
        return;
    }
    for job in group {
        let mut one = [job];
        let result = attempt(conn, ctx, &mut one);
        let [job] = one;
        match result {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                job.answer();
            }
            Err(error) => job.fail(error),
        }
    }
}

/// Runs the group in one transaction, retrying it while another process holds the write lock.
fn attempt(conn: &Connection, ctx: &WriteCtx, group: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match attempt_once(conn, ctx, group) {
            Err(e) if is_busy(&e) && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            result => return result,
        }
    }
}

fn attempt_once(conn: &Connection, ctx: &WriteCtx, group: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    const OP: &str = "cannot commit the queued changes";
    ctx.pending().clear();
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql(OP))?;
    let result = (|| {
        for job in group.iter_mut() {
            let mark = ctx.pending().len();
            exec(conn, "SAVEPOINT request").map_err(sql(OP))?;
            ctx.enter(job.tenant());
            if job.run(conn, ctx) {
                exec(conn, "RELEASE request").map_err(sql(OP))?;
            } else {
                // The request's audit entries go with its other writes.
                ctx.pending().truncate(mark);
                exec(conn, "ROLLBACK TO request").map_err(sql(OP))?;
                exec(conn, "RELEASE request").map_err(sql(OP))?;
            }
        }
        // Each tenant's entries onto its own chain, in the order they were queued.
        // The default tenant's chain is always visited: entries an older version left in
        // `audit_pending` are sealed by the first group after an upgrade.
        let mut by_tenant: BTreeMap<String, Vec<PreparedBody>> =
            BTreeMap::from([(crate::store::DEFAULT_TENANT.to_owned(), Vec::new())]);
        for (tenant, body) in std::mem::take(&mut *ctx.pending()) {
            by_tenant.entry(tenant).or_default().push(body);
        }
        for (tenant, bodies) in by_tenant {
            sequence_audit(conn, &tenant, ctx.key(), bodies, &|| OP.to_owned())?;
        }
        conn.execute_batch("COMMIT").map_err(sql(OP))
    })();
    if result.is_err() && !conn.is_autocommit() {
        // Nothing of the group is kept; the caller answers or retries.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// Runs one statement kept prepared: the savepoint statements run twice per request, and
/// `execute_batch` would parse them each time.
fn exec(conn: &Connection, statement: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(statement)?.execute([]).map(|_| ())
}

/// Whether `e` is SQLite's "database is locked" by another connection.
fn is_busy(e: &StoreError) -> bool {
    match e {
        StoreError::Backend { source, .. } => source
            .downcast_ref::<rusqlite::Error>()
            .is_some_and(|e| e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)),
        _ => false,
    }
}
