//! [`PostgresStore`]: the pool, and the action, limit, safety and audit traits on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Transaction};
use remediation_audit::{
    AuditBody, AuditKey, AuditRecord, AuditRecordExt as _, BreakKind, ChainReport, ChainVerifier, CheckpointVerdict,
};
use remediation_core::store::expiry;
use remediation_core::{
    Action, ActionDetail, ActionFilter, ActionId, ActionStore, AuditFilter, AuditLog, BeginOutcome, Lease,
    LimitReached, LimitStore, Page, PageRequest, SafetyState, SafetyStore, SettingsRecord, SlotRequest, State,
    StateChange, StoreError, TransitionRecord,
};
use remediation_limiter::Window;
use time::OffsetDateTime;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use crate::config::PostgresConfig;
use crate::error::hint;
use crate::schema::{check_version, read_version};
use crate::{StorePostgresError, tls};

/// The tenant every row belongs to until tenancy arrives; queries already filter on it.
pub(crate) const DEFAULT_TENANT: &str = "default";

/// Audit records read per round trip while verifying.
const VERIFY_PAGE: i64 = 10_000;

/// The shared [`remediation_core::Store`] on PostgreSQL (see the crate documentation).
///
/// The handle is cheap to clone; the pool and the background sequencer stop when the last
/// clone is dropped. `Debug` shows where it connects, never the password.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
    /// The tenant this handle reads and writes.
    pub(crate) tenant: Arc<str>,
}

/// What the clones of one store share.
pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) config: PostgresConfig,
    /// Seals the audit checkpoint.
    pub(crate) key: Option<Arc<AuditKey>>,
    /// This process's name as a lease holder (the sequencer's).
    pub(crate) holder: String,
    /// The sequencer lease this process holds for each tenant's chain; locked for the whole of
    /// a pass, so one process runs one pass at a time.
    pub(crate) sequencer: tokio::sync::Mutex<std::collections::BTreeMap<String, Lease>>,
    /// The background sequencer, aborted when the store is dropped.
    pub(crate) background: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Transactions committed (and single-statement writes), for benchmarks.
    pub(crate) commits: AtomicU64,
    /// How long each entry this process sealed had waited (nanoseconds, the server's clock),
    /// until taken by [`PostgresStore::take_sequencing_lags`]; at most [`LAG_SAMPLES`].
    pub(crate) lags: std::sync::Mutex<Vec<u64>>,
}

/// Sequencing lags kept at most until they are taken.
pub(crate) const LAG_SAMPLES: usize = 1_000_000;

impl Drop for Inner {
    fn drop(&mut self) {
        let handle = self.background.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(handle) = handle {
            handle.abort();
        }
        // Give the sequencer lease up, so another replica takes over now rather than at its
        // expiry; best effort (a process that exits or dies leaves it to expire).
        let held = std::mem::take(self.sequencer.get_mut());
        if let (false, Ok(runtime)) = (held.is_empty(), tokio::runtime::Handle::try_current()) {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                if let Ok(client) = pool.get().await {
                    for (tenant, lease) in held {
                        let _ = crate::lease::release(&client, &tenant, crate::SEQUENCER_LEASE, &lease).await;
                    }
                }
            });
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("config", &self.inner.config)
            .field("tenant", &self.tenant)
            .field("holder", &self.inner.holder)
            .field("key", &self.inner.key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects (see [`crate::connect`]): builds the pool, refuses a schema that is not this
    /// build's, and starts the background sequencer when the configuration names an interval.
    pub async fn connect(config: &PostgresConfig, key: Option<AuditKey>) -> Result<Self, StorePostgresError> {
        let target = config.target();
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let pg = config.connection_config();
        let home = tokio::runtime::Handle::current();
        let manager = match tls(config)? {
            Some(tls) => Manager::from_connect(pg, HomeConnect { home, tls }, manager_config),
            None => Manager::from_connect(pg, HomeConnect { home, tls: tokio_postgres::NoTls }, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StorePostgresError::Pool { target: target.clone(), source: Box::new(e) })?;
        let client = pool.get().await.map_err(|e| connect_error(&target, e))?;
        let found = read_version(&client).await.map_err(|source| StorePostgresError::Connect {
            target: target.clone(),
            hint: hint(&source),
            source: Box::new(source),
        })?;
        check_version(config, found)?;
        drop(client);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        let holder = format!("{host}:{}:{}", std::process::id(), uuid::Uuid::now_v7());
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config: config.clone(),
                key: key.map(Arc::new),
                holder,
                sequencer: tokio::sync::Mutex::new(std::collections::BTreeMap::new()),
                background: std::sync::Mutex::new(None),
                commits: AtomicU64::new(0),
                lags: std::sync::Mutex::new(Vec::new()),
            }),
            tenant: Arc::from(DEFAULT_TENANT),
        };
        if let Some(interval) = config.sequencer_interval {
            store.start_sequencer(interval);
        }
        Ok(store)
    }

    /// How many write transactions this handle's store committed since it connected (for
    /// benchmarks: commits per action).
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// How long each entry this process's sequencer sealed since the last call had waited
    /// between its write and its sealing (by the server's clock), in sealing order; for the
    /// sequencing-lag metric and benchmarks.
    pub fn take_sequencing_lags(&self) -> Vec<Duration> {
        let mut lags = self.inner.lags.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *lags).into_iter().map(Duration::from_nanos).collect()
    }

    /// How long the oldest entry not yet sequenced has waited (by the server's clock); `None`
    /// when nothing waits. One read on the pending index.
    pub async fn sequencing_lag(&self) -> Result<Option<Duration>, StoreError> {
        const OP: &str = "cannot read the sequencing lag";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint - written_at FROM audit_pending
                 WHERE tenant = $1 ORDER BY id LIMIT 1",
            )
            .await
            .map_err(pg(OP))?;
        let row = client.query_opt(&stmt, &[&self.tenant()]).await.map_err(pg(OP))?;
        Ok(row.map(|row| Duration::from_nanos(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))))
    }

    /// This store's name as a lease holder (its sequencer's).
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    pub(crate) fn tenant(&self) -> &str {
        &self.tenant
    }

    /// This store's handle for `tenant` (sharing the pool and the sequencer).
    pub fn scoped(&self, tenant: &remediation_core::TenantId) -> PostgresStore {
        PostgresStore { inner: self.inner.clone(), tenant: Arc::from(tenant.as_str()) }
    }

    pub(crate) fn key(&self) -> Option<&AuditKey> {
        self.inner.key.as_deref()
    }

    /// The store's clock, by which leases are judged.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.config.now()
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(|e| {
            let text = match &e {
                PoolError::Backend(source) => hint(source),
                _ => "",
            };
            StoreError::Backend {
                message: format!("cannot get a connection to the store at {}{text}", self.inner.config.target()),
                source: Box::new(e),
            }
        })
    }

    /// Commits `tx`, counting it.
    pub(crate) async fn commit(&self, tx: Transaction<'_>, op: &str) -> Result<(), StoreError> {
        tx.commit().await.map_err(pg(op))?;
        self.inner.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts one single-statement write (its own transaction).
    pub(crate) fn count_commit(&self) {
        self.inner.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores `details` as they are, in one transaction (multi-row inserts), without
    /// transitions or audit records: a batched path for tests and benchmarks that need many
    /// actions. Not for production data: the audit trail does not know these actions.
    pub async fn seed_actions(&self, details: &[ActionDetail]) -> Result<(), StoreError> {
        const OP: &str = "cannot seed actions";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO actions (id, tenant, state, connector, requested_by, identity, canonical_identity,
                    control_id, created_at, updated_at, due_at, not_before, detail_json)
                 SELECT id, $1, state, connector, requested_by, identity, canonical_identity, control_id, created_at,
                    updated_at, due_at, not_before, detail_json
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[])
                    AS t(id, state, connector, requested_by, identity, canonical_identity, control_id, created_at,
                         updated_at, due_at, not_before, detail_json)",
            )
            .await
            .map_err(pg(OP))?;
        for chunk in details.chunks(5_000) {
            let rows: Vec<ActionColumns> = chunk.iter().map(ActionColumns::of).collect::<Result<_, _>>()?;
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            let states: Vec<&str> = rows.iter().map(|r| r.state).collect();
            let connectors: Vec<&str> = rows.iter().map(|r| r.connector).collect();
            let requested: Vec<&str> = rows.iter().map(|r| r.requested_by).collect();
            let identities: Vec<&str> = rows.iter().map(|r| r.identity).collect();
            let canonical: Vec<Option<&str>> = rows.iter().map(|r| r.canonical_identity).collect();
            let controls: Vec<Option<&str>> = rows.iter().map(|r| r.control_id).collect();
            let created: Vec<i64> = rows.iter().map(|r| r.created_at).collect();
            let updated: Vec<i64> = rows.iter().map(|r| r.updated_at).collect();
            let due: Vec<Option<i64>> = rows.iter().map(|r| r.due_at).collect();
            let not_before: Vec<Option<i64>> = rows.iter().map(|r| r.not_before).collect();
            let json: Vec<&str> = rows.iter().map(|r| r.detail_json.as_str()).collect();
            tx.execute(
                &stmt,
                &[
                    &self.tenant(),
                    &ids,
                    &states,
                    &connectors,
                    &requested,
                    &identities,
                    &canonical,
                    &controls,
                    &created,
                    &updated,
                    &due,
                    &not_before,
                    &json,
                ],
            )
            .await
            .map_err(pg(OP))?;
        }
        self.commit(tx, OP).await
    }

    /// Every sequenced audit record, by `seq` (read page by page).
    pub async fn audit_records(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let mut all: Vec<AuditRecord> = Vec::new();
        loop {
            let page = self.audit_page(&AuditFilter::default(), all.last().map(|r| r.seq), 1000).await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }
}

/// A connection failure while connecting, with the server's hint.
fn connect_error(target: &str, e: PoolError) -> StorePostgresError {
    let text = match &e {
        PoolError::Backend(source) => hint(source),
        _ => "",
    };
    StorePostgresError::Connect { target: target.to_owned(), hint: text, source: Box::new(e) }
}

/// The indexed columns of an action, as stored.
struct ActionColumns<'a> {
    id: String,
    state: &'static str,
    connector: &'a str,
    requested_by: &'a str,
    identity: &'a str,
    canonical_identity: Option<&'a str>,
    control_id: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
    due_at: Option<i64>,
    not_before: Option<i64>,
    handle: Option<i64>,
    campaign: Option<&'a str>,
    detail_json: String,
}

impl<'a> ActionColumns<'a> {
    fn of(detail: &'a ActionDetail) -> Result<Self, StoreError> {
        let a = &detail.action;
        let op = || format!("cannot store action {}", a.id);
        Ok(Self {
            id: a.id.to_string(),
            state: a.state.as_str(),
            connector: &a.connector,
            requested_by: &a.requested_by,
            identity: &a.target.identity,
            canonical_identity: a.canonical.as_ref().map(|c| c.identity.as_str()),
            control_id: a.control_id.as_deref(),
            created_at: nanos(a.created_at).map_err(invalid(op()))?,
            updated_at: nanos(a.updated_at).map_err(invalid(op()))?,
            due_at: detail.due_at().map(clamped_nanos),
            not_before: detail.not_before.map(clamped_nanos),
            handle: a.handle.and_then(|h| i64::try_from(h).ok()),
            campaign: a.campaign.as_deref(),
            detail_json: serde_json::to_string(detail).map_err(encode(op()))?,
        })
    }
}

/// An action's row, locked for the change.
struct Locked {
    detail: ActionDetail,
    epoch: i64,
    holder: Option<String>,
    expires_at: Option<i64>,
}

/// Locks the action's row and checks it is in the state `record` starts from.
async fn lock_expected(tx: &Transaction<'_>, tenant: &str, record: &TransitionRecord) -> Result<Locked, StoreError> {
    let id = record.action_id;
    let op = format!("cannot read action {id}");
    let stmt = tx
        .prepare_cached(
            "SELECT detail_json, lease_epoch, lease_holder, lease_expires_at FROM actions
             WHERE id = $1 AND tenant = $2 FOR UPDATE",
        )
        .await
        .map_err(pg(&op))?;
    let row =
        tx.query_opt(&stmt, &[&id.to_string(), &tenant]).await.map_err(pg(&op))?.ok_or(StoreError::NotFound(id))?;
    let detail: ActionDetail = serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(&op))?;
    if Some(detail.action.state) != record.from {
        return Err(StoreError::StateConflict {
            id,
            expected: record.from.map_or("new", |s| s.as_str()).to_owned(),
            actual: detail.action.state,
        });
    }
    Ok(Locked { detail, epoch: row.get(1), holder: row.get(2), expires_at: row.get(3) })
}

/// Refuses `change` with [`StoreError::StaleLease`] when its fence is not the stored epoch.
fn check_fence(locked: &Locked, change: &StateChange) -> Result<(), StoreError> {
    let Some(fence) = change.fence else { return Ok(()) };
    let current = u64::try_from(locked.epoch).unwrap_or(0);
    if current != fence {
        return Err(StoreError::StaleLease { id: change.record.action_id, fence, current });
    }
    Ok(())
}

fn leased(state: State) -> bool {
    matches!(state, State::Executing | State::RollingBack)
}

/// Writes the merged action, its lease step and (for a requeue) the release of its slots,
/// and inserts its audit entry into `audit_pending`, all in `tx`.
async fn write_change(
    tx: &Transaction<'_>,
    tenant: &str,
    locked: Locked,
    change: &StateChange,
    now: OffsetDateTime,
) -> Result<Action, StoreError> {
    let record = &change.record;
    let op = change_op(change);
    let id = record.action_id.to_string();
    let detail = change.applied_to(locked.detail);
    let updated_at = nanos(record.at).map_err(invalid(op()))?;
    let due_at = detail.due_at().map(clamped_nanos);
    let not_before = detail.not_before.map(clamped_nanos);
    let detail_json = serde_json::to_string(&detail).map_err(encode(op()))?;
    let (holder, epoch, expires) = match &change.lease {
        Some(request) => (
            Some(request.holder.clone()),
            locked.epoch.saturating_add(1),
            Some(clamped_nanos(expiry(now, request.ttl))),
        ),
        None if !leased(record.to) => (None, locked.epoch, None),
        None => (locked.holder, locked.epoch, locked.expires_at),
    };
    let stmt = tx
        .prepare_cached(
            "UPDATE actions SET state = $1, updated_at = $2, detail_json = $3, due_at = $4, not_before = $5,
                lease_holder = $6, lease_epoch = $7, lease_expires_at = $8
             WHERE id = $9 AND tenant = $10",
        )
        .await
        .map_err(pg(op()))?;
    tx.execute(
        &stmt,
        &[
            &record.to.as_str(),
            &updated_at,
            &detail_json,
            &due_at,
            &not_before,
            &holder,
            &epoch,
            &expires,
            &id,
            &tenant,
        ],
    )
    .await
    .map_err(pg(op()))?;
    if record.from == Some(State::Executing) && record.to == State::Approved {
        // A requeue: nothing was written, so the action's slots go back to the windows.
        let stmt = tx.prepare_cached("DELETE FROM limit_slots WHERE action_id = $1").await.map_err(pg(op()))?;
        tx.execute(&stmt, &[&id]).await.map_err(pg(op()))?;
    }
    insert_pending(tx, tenant, &AuditBody::Transition(record.clone()), &op()).await?;
    Ok(detail.action)
}

/// Writes `body` to `audit_pending` in the caller's transaction: the sequencer seals it later.
/// The chain head is not read.
pub(crate) async fn insert_pending(
    tx: &Transaction<'_>,
    tenant: &str,
    body: &AuditBody,
    op: &str,
) -> Result<(), StoreError> {
    let action_id = body.action_id().map(|id| id.to_string()).unwrap_or_default();
    let json = serde_json::to_string(body).map_err(encode(op))?;
    let stmt = tx
        .prepare_cached("INSERT INTO audit_pending (tenant, action_id, body_json) VALUES ($1, $2, $3)")
        .await
        .map_err(pg(op))?;
    tx.execute(&stmt, &[&tenant, &action_id, &json]).await.map_err(pg(op))?;
    Ok(())
}

/// Slots recorded for `slot.key` after the start of the window ending at `at`.
/// The time of the slot inside `slot`'s window (ending at `at`, holding `used`) that must age
/// out for the window to admit one more ([`LimitReached::aging_index`]), if the store holds it.
async fn aging_slot(
    client: &impl deadpool_postgres::GenericClient,
    slot: &SlotRequest,
    at: OffsetDateTime,
    used: u32,
    op: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let Some(k) = LimitReached::aging_index(slot, used) else { return Ok(None) };
    let window = Window::of(slot);
    let (Some(start), Ok(end)) = (
        at.checked_sub(window.length).and_then(|_| i64::try_from(window.start(at).unix_timestamp_nanos()).ok()),
        i64::try_from(at.unix_timestamp_nanos()),
    ) else {
        return Ok(None);
    };
    let stmt = client
        .prepare_cached(
            "SELECT at FROM limit_slots WHERE key = $1 AND at > $2 AND at <= $3 ORDER BY at LIMIT 1 OFFSET $4",
        )
        .await
        .map_err(pg(op))?;
    let row = client.query_opt(&stmt, &[&slot.key, &start, &end, &i64::from(k)]).await.map_err(pg(op))?;
    Ok(row.and_then(|r| OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.get::<_, i64>(0))).ok()))
}

async fn count_used(
    client: &impl deadpool_postgres::GenericClient,
    slot: &SlotRequest,
    at: OffsetDateTime,
    op: &str,
) -> Result<u32, StoreError> {
    let window = Window::of(slot);
    // `None`: the window reaches back before anything the store can hold, so every slot counts.
    let start = at.checked_sub(window.length).and_then(|_| i64::try_from(window.start(at).unix_timestamp_nanos()).ok());
    let used: i64 = match start {
        Some(start) => {
            let stmt = client
                .prepare_cached("SELECT count(*) FROM limit_slots WHERE key = $1 AND at > $2")
                .await
                .map_err(pg(op))?;
            client.query_one(&stmt, &[&slot.key, &start]).await.map_err(pg(op))?.get(0)
        }
        None => {
            let stmt =
                client.prepare_cached("SELECT count(*) FROM limit_slots WHERE key = $1").await.map_err(pg(op))?;
            client.query_one(&stmt, &[&slot.key]).await.map_err(pg(op))?.get(0)
        }
    };
    Ok(u32::try_from(used).unwrap_or(u32::MAX))
}

/// Appends `clause` to `sql`, its `?` naming `value` as the next parameter.
fn bind<'a>(sql: &mut String, params: &mut Vec<&'a (dyn ToSql + Sync)>, clause: &str, value: &'a (dyn ToSql + Sync)) {
    params.push(value);
    sql.push_str(&clause.replace('?', &format!("${}", params.len())));
}

/// Only the action out of a stored detail (its plan and snapshots are skipped unparsed).
#[derive(serde::Deserialize)]
struct OnlyAction {
    action: Action,
}

fn details(rows: &[tokio_postgres::Row], op: &str) -> Result<Vec<ActionDetail>, StoreError> {
    rows.iter().map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(op))).collect()
}

#[async_trait]
impl ActionStore for PostgresStore {
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<Option<u64>, StoreError> {
        let action = &detail.action;
        let op = format!("cannot create action {}", action.id);
        if let Some(from) = record.from {
            return Err(invalid(&op)(StorePostgresError::NotAFirstTransition { from }));
        }
        if record.action_id != action.id {
            return Err(invalid(&op)(StorePostgresError::ActionMismatch {
                action: action.id,
                record: record.action_id,
            }));
        }
        if record.to != action.state {
            return Err(invalid(&op)(StorePostgresError::InitialStateMismatch { state: action.state, to: record.to }));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        // One sequence for every replica: a handle is never given twice (a failed insert
        // leaves a gap, never a repeat).
        let handle: i64 = tx.query_one("SELECT nextval('action_handles')", &[]).await.map_err(pg(&op))?.get(0);
        let mut detail = detail.clone();
        detail.action.handle = u64::try_from(handle).ok();
        let c = ActionColumns::of(&detail)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO actions (id, tenant, state, connector, requested_by, identity, canonical_identity,
                    control_id, created_at, updated_at, due_at, not_before, detail_json, handle, campaign)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (id) DO NOTHING",
            )
            .await
            .map_err(pg(&op))?;
        let inserted = tx
            .execute(
                &stmt,
                &[
                    &c.id,
                    &self.tenant(),
                    &c.state,
                    &c.connector,
                    &c.requested_by,
                    &c.identity,
                    &c.canonical_identity,
                    &c.control_id,
                    &c.created_at,
                    &c.updated_at,
                    &c.due_at,
                    &c.not_before,
                    &c.detail_json,
                    &c.handle,
                    &c.campaign,
                ],
            )
            .await
            .map_err(pg(&op))?;
        if inserted == 0 {
            return Err(invalid(&op)(StorePostgresError::ActionExists { id: action.id }));
        }
        insert_pending(&tx, self.tenant(), &AuditBody::Transition(record.clone()), &op).await?;
        self.commit(tx, &op).await?;
        Ok(detail.action.handle)
    }

    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError> {
        let op = format!("cannot read action {id}");
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT detail_json FROM actions WHERE id = $1 AND tenant = $2")
            .await
            .map_err(pg(&op))?;
        let row = client
            .query_opt(&stmt, &[&id.to_string(), &self.tenant()])
            .await
            .map_err(pg(&op))?
            .ok_or(StoreError::NotFound(id))?;
        serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(&op))
    }

    async fn action_by_handle(&self, handle: u64) -> Result<Option<ActionId>, StoreError> {
        const OP: &str = "cannot look up an action by its handle";
        let Ok(handle) = i64::try_from(handle) else { return Ok(None) };
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("SELECT id FROM actions WHERE tenant = $1 AND handle = $2").await.map_err(pg(OP))?;
        let Some(row) = client.query_opt(&stmt, &[&self.tenant(), &handle]).await.map_err(pg(OP))? else {
            return Ok(None);
        };
        let id: &str = row.get(0);
        id.parse::<ActionId>().map(Some).map_err(|e| StoreError::Backend {
            message: format!("{OP}: stored id {id} is not an action id"),
            source: Box::new(e),
        })
    }

    async fn list(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, StoreError> {
        const OP: &str = "cannot list actions";
        let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let (after_at, after_id) = match page.after {
            None => (i64::MIN, String::new()),
            Some(after) => {
                let stmt = client
                    .prepare_cached("SELECT created_at FROM actions WHERE id = $1 AND tenant = $2")
                    .await
                    .map_err(pg(OP))?;
                match client.query_opt(&stmt, &[&after.to_string(), &self.tenant()]).await.map_err(pg(OP))? {
                    Some(row) => (row.get::<_, i64>(0), after.to_string()),
                    // An unknown cursor yields nothing.
                    None => return Ok(Page { items: Vec::new(), next: None }),
                }
            }
        };
        // Only the filters given enter the statement (one prepared statement per combination
        // and connection): with `$n IS NULL OR ...` terms the planner's generic plan misjudges
        // how many rows match and sorts every row after the cursor instead of walking the
        // index. The state filter is an equality on the state index; without it the creation
        // index serves the keyset; the other filters are checked on the rows the keyset reads.
        let state = filter.state.map(|s| s.as_str());
        let tenant = self.tenant();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &after_at, &after_id];
        let mut sql = String::from("SELECT detail_json FROM actions WHERE tenant = $1 AND (created_at, id) > ($2, $3)");
        if let Some(state) = &state {
            bind(&mut sql, &mut params, " AND state = ?", state);
        }
        if let Some(connector) = &filter.connector {
            bind(&mut sql, &mut params, " AND connector = ?", connector);
        }
        if let Some(identity) = &filter.identity {
            bind(&mut sql, &mut params, " AND (identity = ? OR canonical_identity = ?)", identity);
        }
        if let Some(control) = &filter.control {
            bind(&mut sql, &mut params, " AND control_id = ?", control);
        }
        if let Some(campaign) = &filter.campaign {
            bind(&mut sql, &mut params, " AND campaign = ?", campaign);
        }
        bind(&mut sql, &mut params, " ORDER BY created_at, id LIMIT ?", &limit);
        let stmt = client.prepare_cached(&sql).await.map_err(pg(OP))?;
        let rows = client.query(&stmt, &params).await.map_err(pg(OP))?;
        let mut items: Vec<Action> = rows
            .iter()
            .map(|row| serde_json::from_str::<OnlyAction>(row.get::<_, &str>(0)).map(|o| o.action).map_err(decode(OP)))
            .collect::<Result<_, _>>()?;
        let next = if items.len() > page.limit {
            items.truncate(page.limit);
            items.last().map(|a| a.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError> {
        let op = format!("cannot read the transitions of action {id}");
        let mut client = self.client().await?;
        // One snapshot: a sequencer pass moving entries from pending to sealed is seen whole.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg(&op))?;
        let id_text = id.to_string();
        let exists = tx
            .query_opt("SELECT 1 FROM actions WHERE id = $1 AND tenant = $2", &[&id_text, &self.tenant()])
            .await
            .map_err(pg(&op))?;
        if exists.is_none() {
            return Err(StoreError::NotFound(id));
        }
        let mut records = Vec::new();
        let stmt = tx
            .prepare_cached("SELECT seq, record_json FROM audit WHERE action_id = $1 AND tenant = $2 ORDER BY seq")
            .await
            .map_err(pg(&op))?;
        for row in tx.query(&stmt, &[&id_text, &self.tenant()]).await.map_err(pg(&op))? {
            let seq: i64 = row.get(0);
            let record = AuditRecord::from_json(row.get::<_, &str>(1)).map_err(|source| StoreError::Backend {
                message: format!(
                    "{op}: audit record {seq} cannot be read: it was edited or corrupted; run `remediate audit verify`"
                ),
                source: Box::new(source),
            })?;
            if let AuditBody::Transition(t) = record.body {
                records.push(t);
            }
        }
        // Entries written but not sequenced yet follow, in the order they were written.
        let stmt = tx
            .prepare_cached("SELECT body_json FROM audit_pending WHERE action_id = $1 AND tenant = $2 ORDER BY id")
            .await
            .map_err(pg(&op))?;
        for row in tx.query(&stmt, &[&id_text, &self.tenant()]).await.map_err(pg(&op))? {
            if let AuditBody::Transition(t) = serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(&op))? {
                records.push(t);
            }
        }
        tx.commit().await.map_err(pg(&op))?;
        Ok(records)
    }

    async fn apply(&self, change: &StateChange) -> Result<Action, StoreError> {
        let op = change_op(change)();
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let locked = lock_expected(&tx, self.tenant(), &change.record).await?;
        check_fence(&locked, change)?;
        let action = write_change(&tx, self.tenant(), locked, change, now).await?;
        self.commit(tx, &op).await?;
        Ok(action)
    }

    async fn begin_execution(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError> {
        let op = change_op(change)();
        let now = self.now();
        let at = change.record.at;
        let at_nanos = nanos(at).map_err(invalid(&op))?;
        let id = change.record.action_id.to_string();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let locked = lock_expected(&tx, self.tenant(), &change.record).await?;
        check_fence(&locked, change)?;
        // The action's own writes first: a full window rolls them back, and the limit keys'
        // locks below are then held only for the counts, the slot inserts and the commit.
        let action = write_change(&tx, self.tenant(), locked, change, now).await?;
        // The tenant's own windows: its keys as stored.
        let asked = slots;
        let scoped = remediation_core::store::tenant_slots(self.tenant(), slots);
        let slots = scoped.as_slice();
        // One lock per limit key, in key order (after the action's row lock, as every caller
        // takes them), held to the end of the transaction: the counts below see every slot
        // committed by a start that held the key before, and no start counts concurrently.
        let keys: BTreeSet<&str> = slots.iter().map(|s| s.key.as_str()).collect();
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended('remediation-limit:' || $1, 0))")
            .await
            .map_err(pg(&op))?;
        for key in keys {
            tx.execute(&lock, &[&key]).await.map_err(pg(&op))?;
        }
        for (slot, asked) in slots.iter().zip(asked) {
            let used = count_used(&tx, slot, at, &op).await?;
            if enforce && !Window::of(slot).admits(used) {
                let aging = aging_slot(&tx, slot, at, used, &op).await?;
                // Nothing is kept.
                tx.rollback().await.map_err(pg(&op))?;
                return Ok(BeginOutcome::LimitReached(LimitReached::new(asked.clone(), used, aging)));
            }
        }
        if !slots.is_empty() {
            let keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO limit_slots (key, at, action_id) SELECT key, $2, $3 FROM unnest($1::text[]) AS t(key)",
                )
                .await
                .map_err(pg(&op))?;
            tx.execute(&stmt, &[&keys, &at_nanos, &id]).await.map_err(pg(&op))?;
        }
        self.commit(tx, &op).await?;
        Ok(BeginOutcome::Started(action))
    }

    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<ActionDetail>, StoreError> {
        const OP: &str = "cannot read the actions that are due";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT detail_json FROM actions
                 WHERE tenant = $1 AND due_at IS NOT NULL AND due_at < $2 ORDER BY due_at LIMIT $3",
            )
            .await
            .map_err(pg(OP))?;
        let rows = client.query(&stmt, &[&self.tenant(), &clamped_nanos(now), &limit]).await.map_err(pg(OP))?;
        details(&rows, OP)
    }

    async fn claimable(
        &self,
        now: OffsetDateTime,
        connector: Option<String>,
        limit: usize,
    ) -> Result<Vec<ActionDetail>, StoreError> {
        const OP: &str = "cannot read the approved actions to execute";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // SKIP LOCKED: rows another replica is claiming at this moment (its begin_execution
        // holds them) are left out rather than waited for.
        let tenant = self.tenant();
        let now = clamped_nanos(now);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &now];
        let mut sql = String::from(
            "SELECT detail_json FROM actions
             WHERE tenant = $1 AND state = 'approved' AND (not_before IS NULL OR not_before <= $2)",
        );
        if let Some(connector) = &connector {
            bind(&mut sql, &mut params, " AND connector = ?", connector);
        }
        bind(&mut sql, &mut params, " ORDER BY created_at, id LIMIT ? FOR UPDATE SKIP LOCKED", &limit);
        let stmt = client.prepare_cached(&sql).await.map_err(pg(OP))?;
        let rows = client.query(&stmt, &params).await.map_err(pg(OP))?;
        details(&rows, OP)
    }

    /// One statement: the oldest claimable rows not reserved by another holder (or whose
    /// reservation expired), picked `FOR UPDATE SKIP LOCKED` so two replicas reserving at once
    /// never pick the same row nor wait on each other, and marked `claimed_by`/`claimed_until`.
    async fn reserve_claimable(
        &self,
        now: OffsetDateTime,
        connector: Option<String>,
        limit: usize,
        holder: &str,
        until: OffsetDateTime,
    ) -> Result<Vec<ActionDetail>, StoreError> {
        const OP: &str = "cannot reserve the approved actions to execute";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let tenant = self.tenant();
        let (now, until) = (clamped_nanos(now), clamped_nanos(until));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &now, &holder, &until];
        let mut sql = String::from(
            "WITH picked AS (
                 SELECT id FROM actions
                 WHERE tenant = $1 AND state = 'approved' AND (not_before IS NULL OR not_before <= $2)
                   AND (claimed_until IS NULL OR claimed_until <= $2 OR claimed_by = $3)",
        );
        if let Some(connector) = &connector {
            bind(&mut sql, &mut params, " AND connector = ?", connector);
        }
        bind(&mut sql, &mut params, " ORDER BY created_at, id LIMIT ? FOR UPDATE SKIP LOCKED)", &limit);
        sql.push_str(
            " UPDATE actions a SET claimed_by = $3, claimed_until = $4 FROM picked WHERE a.id = picked.id
              RETURNING a.detail_json, a.created_at, a.id",
        );
        let stmt = client.prepare_cached(&sql).await.map_err(pg(OP))?;
        let mut rows = client.query(&stmt, &params).await.map_err(pg(OP))?;
        // RETURNING keeps no order: oldest first, as `claimable`.
        rows.sort_by(|a, b| (a.get::<_, i64>(1), a.get::<_, &str>(2)).cmp(&(b.get::<_, i64>(1), b.get::<_, &str>(2))));
        details(&rows, OP)
    }

    async fn count_by_state(&self) -> Result<BTreeMap<State, u64>, StoreError> {
        const OP: &str = "cannot count the actions by state";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT state, count(*) FROM actions WHERE tenant = $1 GROUP BY state")
            .await
            .map_err(pg(OP))?;
        let mut counts = BTreeMap::new();
        for row in client.query(&stmt, &[&self.tenant()]).await.map_err(pg(OP))? {
            let state: State =
                row.get::<_, &str>(0).parse().map_err(|e: remediation_core::lifecycle::UnknownState| {
                    StoreError::Backend {
                        message: format!("{OP}: the actions table holds an unknown state"),
                        source: Box::new(e),
                    }
                })?;
            counts.insert(state, u64::try_from(row.get::<_, i64>(1)).unwrap_or(0));
        }
        Ok(counts)
    }
}

#[async_trait]
impl LimitStore for PostgresStore {
    async fn check_limits(
        &self,
        slots: &[SlotRequest],
        at: OffsetDateTime,
    ) -> Result<Option<LimitReached>, StoreError> {
        const OP: &str = "cannot check the blast-radius limits";
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg(OP))?;
        let scoped = remediation_core::store::tenant_slots(self.tenant(), slots);
        for (slot, asked) in scoped.iter().zip(slots) {
            let used = count_used(&tx, slot, at, OP).await?;
            if !Window::of(slot).admits(used) {
                let aging = aging_slot(&tx, slot, at, used, OP).await?;
                return Ok(Some(LimitReached::new(asked.clone(), used, aging)));
            }
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(None)
    }

    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        const OP: &str = "cannot read the limit slots";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT key, at FROM limit_slots WHERE at >= $1 ORDER BY at, key")
            .await
            .map_err(pg(OP))?;
        let mut out = Vec::new();
        for row in client.query(&stmt, &[&clamped_nanos(since)]).await.map_err(pg(OP))? {
            let stored = row.get::<_, String>(0);
            if let Some(key) = remediation_core::store::tenant_limit_key_of(self.tenant(), &stored) {
                out.push((key.to_owned(), from_nanos(row.get(1))));
            }
        }
        Ok(out)
    }
}

/// The stored safety state; the default when none was ever written.
async fn read_safety(
    client: &impl deadpool_postgres::GenericClient,
    tenant: &str,
    lock: bool,
    op: &str,
) -> Result<SafetyState, StoreError> {
    let sql = if lock {
        "SELECT state_json FROM safety_state WHERE tenant = $1 FOR UPDATE"
    } else {
        "SELECT state_json FROM safety_state WHERE tenant = $1"
    };
    let stmt = client.prepare_cached(sql).await.map_err(pg(op))?;
    match client.query_opt(&stmt, &[&tenant]).await.map_err(pg(op))? {
        None => Ok(SafetyState::default()),
        Some(row) => serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(op)),
    }
}

#[async_trait]
impl SafetyStore for PostgresStore {
    async fn safety_state(&self) -> Result<SafetyState, StoreError> {
        let client = self.client().await?;
        read_safety(&client, self.tenant(), false, "cannot read the safety state").await
    }

    async fn update_safety_state(
        &self,
        expected: &SafetyState,
        new: &SafetyState,
        record: &SettingsRecord,
    ) -> Result<(), StoreError> {
        let op = format!("cannot record {}", record.setting_event);
        let json = serde_json::to_string(new).map_err(encode(&op))?;
        let default = serde_json::to_string(&SafetyState::default()).map_err(encode(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        // The row exists from the first change on, so the compare below always holds its lock.
        tx.execute(
            "INSERT INTO safety_state (tenant, state_json) VALUES ($1, $2) ON CONFLICT (tenant) DO NOTHING",
            &[&self.tenant(), &default],
        )
        .await
        .map_err(pg(&op))?;
        if &read_safety(&tx, self.tenant(), true, &op).await? != expected {
            return Err(StoreError::SafetyConflict);
        }
        tx.execute("UPDATE safety_state SET state_json = $2 WHERE tenant = $1", &[&self.tenant(), &json])
            .await
            .map_err(pg(&op))?;
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(record.clone()), &op).await?;
        self.commit(tx, &op).await
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn audit_size(&self) -> Result<u64, StoreError> {
        self.log_size().await
    }

    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<remediation_core::LeafHash>, StoreError> {
        self.log_leaves(start, end).await
    }

    async fn store_tree_head(
        &self,
        head: &remediation_core::StoredTreeHead,
        previous_size: Option<u64>,
    ) -> Result<(), StoreError> {
        self.log_store_head(head, previous_size).await
    }

    async fn latest_tree_head(&self) -> Result<Option<remediation_core::StoredTreeHead>, StoreError> {
        self.log_head(None).await
    }

    async fn tree_head_at(&self, tree_size: u64) -> Result<Option<remediation_core::StoredTreeHead>, StoreError> {
        self.log_head(Some(tree_size)).await
    }

    async fn publish_key(&self, key: &remediation_core::StoredPublicKey) -> Result<(), StoreError> {
        self.log_publish(key).await
    }

    async fn published_keys(&self) -> Result<Vec<remediation_core::StoredPublicKey>, StoreError> {
        self.log_keys().await
    }

    async fn archive_audit(&self, archive: &remediation_core::AuditArchive) -> Result<u64, StoreError> {
        self.log_archive(archive).await
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        const OP: &str = "cannot read the audit records";
        let since = filter.since.map(clamped_nanos);
        let after = after_seq.map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // Only the filters given enter the statement, so each plan walks an index in `seq`
        // order: (`tenant`, `seq`), or (`action_id`, `seq`) for one action's records.
        let action = filter.action.map(|a| a.to_string());
        let tenant = self.tenant();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &after];
        let mut sql = String::from("SELECT seq, record_json FROM audit WHERE tenant = $1 AND seq > $2");
        if let Some(action) = &action {
            bind(&mut sql, &mut params, " AND action_id = ?", action);
        }
        if let Some(since) = &since {
            bind(&mut sql, &mut params, " AND at >= ?", since);
        }
        bind(&mut sql, &mut params, " ORDER BY seq LIMIT ?", &limit);
        let stmt = client.prepare_cached(&sql).await.map_err(pg(OP))?;
        let rows = client.query(&stmt, &params).await.map_err(pg(OP))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                AuditRecord::from_json(row.get::<_, &str>(1)).map_err(|source| StoreError::Backend {
                    message: format!(
                        "audit record {seq} cannot be read: it was edited or corrupted; run `remediate audit verify`"
                    ),
                    source: Box::new(source),
                })
            })
            .collect()
    }

    async fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        const OP: &str = "cannot read the audit records to verify them";
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg(OP))?;
        let report = verify_in(&tx, self.tenant(), self.key(), OP).await?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(report)
    }

    async fn adopt_audit_chain(&self) -> Result<ChainReport, StoreError> {
        const OP: &str = "cannot adopt the audit chain";
        let refused = |reason: String| StoreError::Backend {
            message: OP.to_owned(),
            source: Box::new(StorePostgresError::AdoptionRefused { reason }),
        };
        let Some(key) = self.key() else {
            return Err(refused("the store was connected without an audit key".to_owned()));
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        crate::sequencer::lock_chain(&tx, self.tenant(), OP).await?;
        let report = verify_in(&tx, self.tenant(), Some(key), OP).await?;
        match (&report.first_break, &report.checkpoint) {
            (Some(_), _) => return Err(refused(format!("the chain does not verify: {report}"))),
            (None, CheckpointVerdict::Matches) => return Ok(report),
            (None, CheckpointVerdict::Missing) => {}
            (None, other) => {
                return Err(refused(format!("a checkpoint exists and adoption never replaces one ({other})")));
            }
        }
        if let Some(head) = &report.head {
            crate::sequencer::write_checkpoint(&tx, self.tenant(), &key.seal(report.records, head), OP).await?;
        }
        self.commit(tx, OP).await?;
        Ok(ChainReport { checkpoint: CheckpointVerdict::Matches, ..report })
    }

    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
        let op = format!("cannot record {}", record.setting_event);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(record.clone()), &op).await?;
        self.commit(tx, &op).await
    }

    async fn sequence_pending(&self) -> Result<u64, StoreError> {
        PostgresStore::sequence_pending(self).await
    }

    async fn stop_sequencing(&self) -> Result<(), StoreError> {
        let handle = self.inner.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(handle) = handle {
            handle.abort();
        }
        self.release_sequencer().await
    }

    async fn unsequenced(&self) -> Result<u64, StoreError> {
        const OP: &str = "cannot count the unsequenced audit entries";
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("SELECT count(*) FROM audit_pending WHERE tenant = $1").await.map_err(pg(OP))?;
        let n: i64 = client.query_one(&stmt, &[&self.tenant()]).await.map_err(pg(OP))?.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn sequencing_backlog(&self) -> Result<remediation_core::SequencingBacklog, StoreError> {
        const OP: &str = "cannot read the sequencing backlog";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT count(*), (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint - min(written_at)
                 FROM audit_pending WHERE tenant = $1",
            )
            .await
            .map_err(pg(OP))?;
        let row = client.query_one(&stmt, &[&self.tenant()]).await.map_err(pg(OP))?;
        Ok(remediation_core::SequencingBacklog {
            entries: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            oldest_age: row.get::<_, Option<i64>>(1).map(|n| Duration::from_nanos(u64::try_from(n).unwrap_or(0))),
        })
    }

    fn take_sequencing_lags(&self) -> Vec<Duration> {
        PostgresStore::take_sequencing_lags(self)
    }
}

/// Verifies every audit row of `tenant` and the checkpoint, inside the caller's transaction.
async fn verify_in(
    tx: &Transaction<'_>,
    tenant: &str,
    key: Option<&AuditKey>,
    op: &str,
) -> Result<ChainReport, StoreError> {
    // After an archive, the chain resumes from its last record.
    let mut verifier = match crate::log::archived_in(tx, tenant, op).await? {
        Some((seq, hash)) => ChainVerifier::resuming(seq, hash),
        None => ChainVerifier::new(),
    };
    let stmt = tx
        .prepare_cached(
            "SELECT seq, action_id, at, record_json, prev_hash, hash FROM audit
             WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .await
        .map_err(pg(op))?;
    let mut after = i64::MIN;
    loop {
        let rows = tx.query(&stmt, &[&tenant, &after, &VERIFY_PAGE]).await.map_err(pg(op))?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        for row in &rows {
            verify_row(row, &mut verifier);
        }
    }
    let stored = match key {
        Some(_) => crate::sequencer::read_checkpoint(tx, tenant, op).await?,
        None => None,
    };
    Ok(verifier.finish_with_checkpoint(key, stored.as_ref()))
}

/// Feeds one stored row to `verifier`: the chain checks first, then the columns against the JSON.
fn verify_row(row: &tokio_postgres::Row, verifier: &mut ChainVerifier) {
    let seq = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    let action_id: &str = row.get(1);
    let at: i64 = row.get(2);
    let prev_hash: &str = row.get(4);
    let hash: String = row.get(5);
    let record = match AuditRecord::from_json(row.get::<_, &str>(3)) {
        Ok(record) => record,
        Err(e) => {
            let reason = format!("its JSON is not a valid audit record ({})", remediation_core::error_chain(&e));
            verifier.push_unreadable(seq, hash, reason);
            return;
        }
    };
    verifier.push(&record);
    let columns = [
        ("seq", record.seq == seq),
        ("action_id", record.body.action_id().map(|id| id.to_string()).unwrap_or_default() == action_id),
        ("at", nanos(record.body.at()).ok() == Some(at)),
        ("prev_hash", record.prev_hash == prev_hash),
        ("hash", record.hash == hash),
    ];
    if let Some((column, _)) = columns.into_iter().find(|(_, same)| !same) {
        verifier.flag(BreakKind::StoredColumnMismatch { column: column.to_owned() });
    }
}

/// `at` as integer nanoseconds since 1970, as the store keeps timestamps it compares.
pub(crate) fn nanos(at: OffsetDateTime) -> Result<i64, StorePostgresError> {
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| StorePostgresError::TimestampOutOfRange { at })
}

/// `at` in nanoseconds, clamped into the range the store can hold (for filters).
pub(crate) fn clamped_nanos(at: OffsetDateTime) -> i64 {
    let n = at.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The instant `nanos` after 1970.
pub(crate) fn from_nanos(nanos: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn pg(operation: impl fmt::Display) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
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

pub(crate) fn invalid(operation: impl fmt::Display) -> impl FnOnce(StorePostgresError) -> StoreError {
    move |source| StoreError::Backend { message: operation.to_string(), source: Box::new(source) }
}

pub(crate) fn audit(operation: impl fmt::Display) -> impl FnOnce(remediation_audit::AuditError) -> StoreError {
    move |source| StoreError::Backend { message: operation.to_string(), source: Box::new(source) }
}

fn change_op(change: &StateChange) -> impl Fn() -> String {
    let (id, to) = (change.record.action_id, change.record.to);
    move || format!("cannot record the transition of action {id} to {to}")
}

/// Opens each pooled connection on the runtime the store was opened on, and drives it there.
///
/// A connection's socket and its driving task belong to the runtime that opened it. The
/// server uses the store from more than one runtime (its worker and its event relay run
/// their own, the relay below the server's priority), and the pool hands any connection to
/// any caller: without this, a connection the relay opened would be driven at the relay's
/// priority when the engine borrows it, and would die with the relay's runtime.
struct HomeConnect<T> {
    home: tokio::runtime::Handle,
    tls: T,
}

impl<T> deadpool_postgres::Connect for HomeConnect<T>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
                > + Send
                + '_,
        >,
    > {
        let (config, tls) = (pg_config.clone(), self.tls.clone());
        let open = move || async move {
            let (client, connection) = config.connect(tls).await?;
            let driver = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(target: "remediation::store", error = %e, "a pooled PostgreSQL connection ended");
                }
            });
            Ok((client, driver))
        };
        let (home, fallback) = (self.home.clone(), open.clone());
        Box::pin(async move {
            match home.spawn(open()).await {
                Ok(opened) => opened,
                // The store's runtime is shutting down: open it here rather than fail.
                Err(_) => fallback().await,
            }
        })
    }
}
