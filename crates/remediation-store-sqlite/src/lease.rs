//! Leases on actions (columns of the `actions` row) and named leases of single-leader jobs
//! (the `leases` table), judged by the store's clock.
//!
//! An action's lease is `lease_holder`, `lease_epoch` and `lease_expires_at` on its row. The
//! state changes of [`SqliteStore`] check the fence and take the lease step inside their own
//! IMMEDIATE transaction ([`check_fence`], [`lease_step`]); renewal and takeover are one
//! IMMEDIATE transaction each, so two processes never both hold or take over one action.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::store::expiry;
use remediation_core::{
    ActionDetail, ActionId, ActionLeases, Clock, Lease, LeaseRequest, LeaseStore, State, StateChange, StoreError,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::store::{clamped_nanos, decode, sql, sql_with};

/// The clock leases are judged by: the one given to [`SqliteStore::with_clock`], else the
/// system clock.
#[derive(Clone, Default)]
pub(crate) struct StoreClock(Option<Arc<dyn Clock>>);

impl StoreClock {
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.0.as_ref().map_or_else(OffsetDateTime::now_utc, |c| c.now())
    }
}

impl std::fmt::Debug for StoreClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "StoreClock(injected)" } else { "StoreClock(system)" })
    }
}

impl SqliteStore {
    /// This store, judging lease expiry by `clock` instead of the system clock (tests inject a
    /// manual clock; every process sharing a file should use the same time source).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = StoreClock(Some(clock));
        self
    }
}

fn leased(state: State) -> bool {
    matches!(state, State::Executing | State::RollingBack)
}

fn to_epoch(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

fn from_epoch(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

fn from_nanos(nanos: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Refuses `change` with [`StoreError::StaleLease`] when it carries a fence that is not the
/// action's stored epoch. Runs in the change's transaction, after the state compare.
pub(crate) fn check_fence(conn: &Connection, tenant: &str, change: &StateChange) -> Result<(), StoreError> {
    let Some(fence) = change.fence else { return Ok(()) };
    let id = change.record.action_id;
    let current: i64 = conn
        .prepare_cached("SELECT lease_epoch FROM actions WHERE id = ?1 AND tenant = ?2")
        .and_then(|mut stmt| stmt.query_row(params![id.to_string(), tenant], |row| row.get(0)))
        .map_err(sql_with(&|| format!("cannot read the lease of action {id}")))?;
    let current = to_epoch(current);
    if current != fence {
        return Err(StoreError::StaleLease { id, fence, current });
    }
    Ok(())
}

/// The lease step of a written change, in its transaction: grant the requested lease (next
/// epoch, expiring `ttl` after `now`), or end the current one when the action leaves
/// `executing` and `rolling_back` (the epoch stays).
pub(crate) fn lease_step(
    conn: &Connection,
    tenant: &str,
    change: &StateChange,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let id = change.record.action_id;
    let op = || format!("cannot record the lease of action {id}");
    if let Some(request) = &change.lease {
        let expires = clamped_nanos(expiry(now, request.ttl));
        conn.prepare_cached(
            "UPDATE actions SET lease_holder = ?1, lease_epoch = lease_epoch + 1, lease_expires_at = ?2
             WHERE id = ?3 AND tenant = ?4",
        )
        .and_then(|mut stmt| stmt.execute(params![request.holder, expires, id.to_string(), tenant]))
        .map_err(sql_with(&op))?;
    } else if !leased(change.record.to) {
        conn.prepare_cached(
            "UPDATE actions SET lease_holder = NULL, lease_expires_at = NULL WHERE id = ?1 AND tenant = ?2",
        )
        .and_then(|mut stmt| stmt.execute(params![id.to_string(), tenant]))
        .map_err(sql_with(&op))?;
    }
    Ok(())
}

/// The stored lease of a row: `None` when nobody holds one.
fn read_lease(conn: &Connection, table_sql: &str, key: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<Option<Lease>> {
    conn.prepare_cached(table_sql)?
        .query_row(key, |row| {
            let holder: Option<String> = row.get(0)?;
            let epoch: i64 = row.get(1)?;
            let expires: Option<i64> = row.get(2)?;
            Ok(holder.zip(expires).map(|(holder, e)| Lease {
                holder,
                epoch: to_epoch(epoch),
                expires_at: from_nanos(e),
            }))
        })
        .optional()
        .map(Option::flatten)
}

const ACTION_LEASE: &str =
    "SELECT lease_holder, lease_epoch, lease_expires_at FROM actions WHERE id = ?1 AND tenant = ?2";
const NAMED_LEASE: &str = "SELECT holder, epoch, expires_at FROM leases WHERE name = ?1 AND tenant = ?2";

/// Where a lease is kept: an action's lease columns, or a named lease's row.
enum Held<'a> {
    Action(ActionId),
    Named(&'a str),
}

impl Held<'_> {
    /// What the lease is of, for messages.
    fn what(&self) -> String {
        match self {
            Self::Action(id) => format!("action {id}"),
            Self::Named(name) => format!("lease `{name}`"),
        }
    }
}

/// Extends `lease` to `ttl` after `now`, in one statement, only while it is still the
/// holder's, of the same epoch, and live; otherwise [`StoreError::LeaseLost`]. The one renewal
/// of action leases and named leases.
fn renew(
    conn: &Connection,
    tenant: &str,
    held: &Held<'_>,
    lease: &Lease,
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<Lease, StoreError> {
    let (update, key) = match held {
        Held::Action(id) => (
            "UPDATE actions SET lease_expires_at = ?1
             WHERE id = ?2 AND tenant = ?3 AND lease_holder = ?4 AND lease_epoch = ?5 AND lease_expires_at > ?6",
            id.to_string(),
        ),
        Held::Named(name) => (
            "UPDATE leases SET expires_at = ?1
             WHERE name = ?2 AND tenant = ?3 AND holder = ?4 AND epoch = ?5 AND expires_at > ?6",
            (*name).to_owned(),
        ),
    };
    let expires = expiry(now, ttl);
    let changed = conn
        .prepare_cached(update)
        .and_then(|mut stmt| {
            stmt.execute(params![
                clamped_nanos(expires),
                key,
                tenant,
                lease.holder,
                from_epoch(lease.epoch),
                clamped_nanos(now)
            ])
        })
        .map_err(sql_with(&|| format!("cannot renew the lease of {}", held.what())))?;
    if changed == 0 {
        return Err(StoreError::LeaseLost { what: held.what() });
    }
    Ok(Lease { expires_at: expires, ..lease.clone() })
}

#[async_trait]
impl ActionLeases for SqliteStore {
    async fn lease(&self, id: ActionId) -> Result<Option<Lease>, StoreError> {
        self.blocking(move |s| {
            let op = || format!("cannot read the lease of action {id}");
            s.with_conn(|conn| {
                let exists: Option<i64> = conn
                    .query_row(
                        "SELECT 1 FROM actions WHERE id = ?1 AND tenant = ?2",
                        params![id.to_string(), s.tenant],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql_with(&op))?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(id));
                }
                read_lease(conn, ACTION_LEASE, &[&id.to_string(), &s.tenant]).map_err(sql_with(&op))
            })
        })
        .await
    }

    async fn renew_lease(&self, id: ActionId, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let now = self.clock.now();
        let lease = lease.clone();
        self.blocking(move |s| s.with_conn(|conn| renew(conn, &s.tenant, &Held::Action(id), &lease, now, ttl))).await
    }

    async fn take_over_expired(
        &self,
        request: &LeaseRequest,
        limit: usize,
    ) -> Result<Vec<(ActionDetail, Lease)>, StoreError> {
        const OP: &str = "cannot take over actions whose lease expired";
        let now = self.clock.now();
        let now_nanos = clamped_nanos(now);
        let expires = expiry(now, request.ttl);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let request = request.clone();
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(OP))?;
                let rows: Vec<(String, i64, String)> = tx
                    .prepare_cached(
                        "SELECT id, lease_epoch, detail_json FROM actions
                     WHERE tenant = ?1 AND state IN ('executing', 'rolling_back')
                       AND (lease_expires_at IS NULL OR lease_expires_at <= ?2)
                     ORDER BY COALESCE(lease_expires_at, 0), created_at, id LIMIT ?3",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_map(params![s.tenant, now_nanos, limit], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })?
                        .collect()
                    })
                    .map_err(sql(OP))?;
                let mut taken = Vec::with_capacity(rows.len());
                for (id, epoch, json) in rows {
                    let lease =
                        Lease { holder: request.holder.clone(), epoch: to_epoch(epoch) + 1, expires_at: expires };
                    tx.prepare_cached(
                        "UPDATE actions SET lease_holder = ?1, lease_epoch = ?2, lease_expires_at = ?3
                     WHERE id = ?4 AND tenant = ?5",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            lease.holder,
                            from_epoch(lease.epoch),
                            clamped_nanos(expires),
                            id,
                            s.tenant
                        ])
                    })
                    .map_err(sql(OP))?;
                    let detail: ActionDetail = serde_json::from_str(&json).map_err(decode(OP))?;
                    taken.push((detail, lease));
                }
                tx.commit().map_err(sql(OP))?;
                Ok(taken)
            })
        })
        .await
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(&self, name: &str, request: &LeaseRequest) -> Result<Option<Lease>, StoreError> {
        let now = self.clock.now();
        let (name, request) = (name.to_owned(), request.clone());
        self.blocking(move |s| {
            let op = || format!("cannot acquire lease `{name}`");
            s.with_conn(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
                let epoch: Option<i64> = tx
                    .prepare_cached("SELECT epoch FROM leases WHERE name = ?1 AND tenant = ?2")
                    .and_then(|mut stmt| stmt.query_row(params![name, s.tenant], |row| row.get(0)).optional())
                    .map_err(sql_with(&op))?;
                let held = read_lease(&tx, NAMED_LEASE, &[&name, &s.tenant]).map_err(sql_with(&op))?;
                if held.is_some_and(|l| l.is_live(now) && l.holder != request.holder) {
                    return Ok(None);
                }
                let lease = Lease::granted(&request, epoch.map_or(0, to_epoch), now);
                tx.prepare_cached(
                    "INSERT INTO leases (tenant, name, holder, epoch, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, name) DO UPDATE SET holder = ?3, epoch = ?4, expires_at = ?5",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        s.tenant,
                        name,
                        lease.holder,
                        from_epoch(lease.epoch),
                        clamped_nanos(lease.expires_at)
                    ])
                })
                .map_err(sql_with(&op))?;
                tx.commit().map_err(sql_with(&op))?;
                Ok(Some(lease))
            })
        })
        .await
    }

    async fn renew_named_lease(&self, name: &str, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let now = self.clock.now();
        let (name, lease) = (name.to_owned(), lease.clone());
        self.blocking(move |s| s.with_conn(|conn| renew(conn, &s.tenant, &Held::Named(&name), &lease, now, ttl))).await
    }

    async fn release_lease(&self, name: &str, lease: &Lease) -> Result<(), StoreError> {
        let (name, lease) = (name.to_owned(), lease.clone());
        self.blocking(move |s| {
            let op = || format!("cannot release lease `{name}`");
            s.with_conn(|conn| {
                conn.prepare_cached(
                    "UPDATE leases SET holder = NULL, expires_at = NULL
                 WHERE name = ?1 AND tenant = ?2 AND holder = ?3 AND epoch = ?4",
                )
                .and_then(|mut stmt| stmt.execute(params![name, s.tenant, lease.holder, from_epoch(lease.epoch)]))
                .map_err(sql_with(&op))?;
                Ok(())
            })
        })
        .await
    }
}
