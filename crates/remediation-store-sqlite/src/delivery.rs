//! [`DeliveryStore`] on SQLite: each sink's mark in the audit log (`delivery_marks`) and the
//! records it refused for good (`delivery_parked`).
//!
//! Writes go through the writer like every other write, each in its own savepoint of the
//! writer's `IMMEDIATE` transaction: the fence (the named lease's row, judged by the store's
//! clock read inside the transaction), the compare-and-set on the mark and the rows written
//! are all under one write lock, so a relay replaced while it was paused cannot move a mark
//! its successor moved, and a refused request writes nothing. Reads run on the read pool.

use std::collections::BTreeSet;

use async_trait::async_trait;
use remediation_core::{
    DeliveryStore, Fence, MarkAdvance, ParkedRecord, ReplayOutcome, Settlement, SinkMark, StoreError,
};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::lease::StoreClock;
use crate::store::{clamped_nanos, invalid_with, nanos, sql, sql_with};
use crate::{SqliteStore, StoreSqliteError};

/// A stored `seq` or mark (never negative: the tables check it).
fn seq_of(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

/// `seq` as SQLite holds it; `None` beyond `i64::MAX`, where no record can be.
fn stored_seq(seq: u64) -> Option<i64> {
    i64::try_from(seq).ok()
}

fn from_nanos(nanos: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Refuses a write fenced by a named lease that is no longer the stored one (same holder and
/// epoch) or has expired by the store's clock, read now, inside the write transaction.
fn check_fence(conn: &Connection, tenant: &str, fence: Option<&Fence>, clock: &StoreClock) -> Result<(), StoreError> {
    let Some(fence) = fence else { return Ok(()) };
    let lost = || StoreError::LeaseLost { what: format!("lease `{}`", fence.name) };
    let Some(epoch) = stored_seq(fence.epoch) else { return Err(lost()) };
    let now = clamped_nanos(clock.now());
    let held: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM leases
             WHERE tenant = ?1 AND name = ?2 AND holder = ?3 AND epoch = ?4 AND expires_at > ?5",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![tenant, fence.name, fence.holder, epoch, now], |row| row.get(0)).optional()
        })
        .map_err(sql_with(&|| format!("cannot read lease `{}`", fence.name)))?;
    held.map(|_| ()).ok_or_else(lost)
}

/// The stored mark of `sink`, if it is registered.
fn stored_mark(
    conn: &Connection,
    tenant: &str,
    sink: &str,
    op: &dyn Fn() -> String,
) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached("SELECT delivered_through FROM delivery_marks WHERE tenant = ?1 AND sink = ?2")
        .and_then(|mut stmt| stmt.query_row(params![tenant, sink], |row| row.get::<_, i64>(0)).optional())
        .map(|mark| mark.map(seq_of))
        .map_err(sql_with(op))
}

/// Refuses a move that does not go forward within what the store holds, or parks a record
/// outside `from + 1 ..= to`.
fn check_forward(advance: &MarkAdvance) -> Result<(), StoreSqliteError> {
    let passes = |seq: u64| seq > advance.from && seq <= advance.to;
    if advance.to <= advance.from
        || stored_seq(advance.to).is_none()
        || !advance.parked.iter().all(|(seq, _)| passes(*seq))
    {
        return Err(StoreSqliteError::MarkNotForward {
            sink: advance.sink.clone(),
            from: advance.from,
            to: advance.to,
        });
    }
    Ok(())
}

/// `advance_sink` inside the writer's transaction.
fn advance_in(conn: &Connection, tenant: &str, advance: &MarkAdvance, clock: &StoreClock) -> Result<(), StoreError> {
    let op = || format!("cannot move the delivery mark of sink `{}`", advance.sink);
    check_fence(conn, tenant, advance.fence.as_ref(), clock)?;
    let found = stored_mark(conn, tenant, &advance.sink, &op)?;
    if found != Some(advance.from) {
        return Err(StoreError::DeliveryConflict {
            sink: advance.sink.clone(),
            expected: advance.from,
            found: found.unwrap_or(0),
        });
    }
    check_forward(advance).map_err(invalid_with(&op))?;
    let at = nanos(advance.at).map_err(invalid_with(&op))?;
    // Both fit: `from < to <= i64::MAX`, and every parked seq lies between them.
    let (from, to) = (stored_seq(advance.from).unwrap_or(i64::MAX), stored_seq(advance.to).unwrap_or(i64::MAX));
    let moved = conn
        .prepare_cached(
            "UPDATE delivery_marks SET delivered_through = ?1, updated_at = ?2
             WHERE tenant = ?3 AND sink = ?4 AND delivered_through = ?5",
        )
        .and_then(|mut stmt| stmt.execute(params![to, at, tenant, advance.sink, from]))
        .map_err(sql_with(&op))?;
    if moved != 1 {
        // Unreachable under the write lock: the mark was read in this transaction.
        return Err(StoreError::DeliveryConflict { sink: advance.sink.clone(), expected: advance.from, found: 0 });
    }
    for (seq, reason) in &advance.parked {
        conn.prepare_cached(
            "INSERT INTO delivery_parked (tenant, sink, seq, reason, parked_at, replay) VALUES (?1, ?2, ?3, ?4, ?5, 0)
             ON CONFLICT (tenant, sink, seq) DO UPDATE SET reason = ?4, parked_at = ?5, replay = 0",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![tenant, advance.sink, stored_seq(*seq).unwrap_or(i64::MAX), reason, at])
        })
        .map_err(sql_with(&op))?;
    }
    Ok(())
}

/// `settle_parked` inside the writer's transaction.
fn settle_in(conn: &Connection, tenant: &str, settlement: &Settlement, clock: &StoreClock) -> Result<(), StoreError> {
    let op = || format!("cannot settle record {} parked for sink `{}`", settlement.seq, settlement.sink);
    check_fence(conn, tenant, settlement.fence.as_ref(), clock)?;
    // A seq beyond what the store holds was never parked: nothing to settle.
    let Some(seq) = stored_seq(settlement.seq) else { return Ok(()) };
    match &settlement.outcome {
        ReplayOutcome::Delivered => conn
            .prepare_cached("DELETE FROM delivery_parked WHERE tenant = ?1 AND sink = ?2 AND seq = ?3")
            .and_then(|mut stmt| stmt.execute(params![tenant, settlement.sink, seq])),
        ReplayOutcome::RefusedAgain(reason) => {
            let at = nanos(settlement.at).map_err(invalid_with(&op))?;
            conn.prepare_cached(
                "UPDATE delivery_parked SET reason = ?1, parked_at = ?2, replay = 0
                 WHERE tenant = ?3 AND sink = ?4 AND seq = ?5",
            )
            .and_then(|mut stmt| stmt.execute(params![reason, at, tenant, settlement.sink, seq]))
        }
    }
    .map_err(sql_with(&op))?;
    Ok(())
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn register_sink(&self, sink: &str, start: u64, at: OffsetDateTime) -> Result<u64, StoreError> {
        let sink = sink.to_owned();
        let op = {
            let sink = sink.clone();
            move || format!("cannot register sink `{sink}`")
        };
        let mark = stored_seq(start)
            .ok_or_else(|| StoreSqliteError::MarkNotForward { sink: sink.clone(), from: start, to: start })
            .map_err(invalid_with(&op))?;
        let at = nanos(at).map_err(invalid_with(&op))?;
        self.write(move |conn, ctx| {
            // Insert-or-keep and read back under the write lock: every caller gets the one stored mark.
            conn.prepare_cached(
                "INSERT INTO delivery_marks (tenant, sink, delivered_through, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, sink) DO NOTHING",
            )
            .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), sink, mark, at]))
            .map_err(sql_with(&op))?;
            stored_mark(conn, &ctx.tenant(), &sink, &op)?.ok_or_else(|| StoreError::DeliveryConflict {
                sink: sink.clone(),
                expected: seq_of(mark),
                found: 0,
            })
        })
        .await
    }

    async fn sink_marks(&self) -> Result<Vec<SinkMark>, StoreError> {
        const OP: &str = "cannot read the delivery marks";
        self.blocking(|s| {
            s.with_conn(|conn| {
                conn.prepare_cached(
                    "SELECT sink, delivered_through, updated_at FROM delivery_marks WHERE tenant = ?1 ORDER BY sink",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![s.tenant], |row| {
                        Ok(SinkMark {
                            sink: row.get(0)?,
                            delivered_through: seq_of(row.get(1)?),
                            updated_at: from_nanos(row.get(2)?),
                        })
                    })?
                    .collect()
                })
                .map_err(sql(OP))
            })
        })
        .await
    }

    async fn advance_sink(&self, advance: &MarkAdvance) -> Result<(), StoreError> {
        let (advance, clock) = (advance.clone(), self.clock.clone());
        self.write(move |conn, ctx| advance_in(conn, &ctx.tenant(), &advance, &clock)).await
    }

    async fn parked(&self, sink: Option<String>) -> Result<Vec<ParkedRecord>, StoreError> {
        const OP: &str = "cannot read the parked records";
        self.blocking(move |s| {
            s.with_conn(|conn| {
                conn.prepare_cached(
                    "SELECT sink, seq, reason, parked_at, replay FROM delivery_parked
                     WHERE tenant = ?1 AND (?2 IS NULL OR sink = ?2) ORDER BY sink, seq",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![s.tenant, sink], |row| {
                        Ok(ParkedRecord {
                            sink: row.get(0)?,
                            seq: seq_of(row.get(1)?),
                            reason: row.get(2)?,
                            parked_at: from_nanos(row.get(3)?),
                            replay: row.get(4)?,
                        })
                    })?
                    .collect()
                })
                .map_err(sql(OP))
            })
        })
        .await
    }

    async fn request_replay(&self, sink: &str, seqs: Option<Vec<u64>>) -> Result<u64, StoreError> {
        let sink = sink.to_owned();
        // Each parked record counts once, however often its seq is named.
        let seqs: Option<BTreeSet<i64>> = seqs.map(|seqs| seqs.into_iter().filter_map(stored_seq).collect());
        self.write(move |conn, ctx| {
            let op = || format!("cannot ask for the records parked for sink `{sink}` again");
            let marked = match &seqs {
                None => conn
                    .prepare_cached("UPDATE delivery_parked SET replay = 1 WHERE tenant = ?1 AND sink = ?2")
                    .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), sink]))
                    .map_err(sql_with(&op))?,
                Some(seqs) => {
                    let mut marked = 0;
                    for seq in seqs {
                        marked += conn
                            .prepare_cached(
                                "UPDATE delivery_parked SET replay = 1 WHERE tenant = ?1 AND sink = ?2 AND seq = ?3",
                            )
                            .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), sink, seq]))
                            .map_err(sql_with(&op))?;
                    }
                    marked
                }
            };
            Ok(u64::try_from(marked).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn settle_parked(&self, settlement: &Settlement) -> Result<(), StoreError> {
        let (settlement, clock) = (settlement.clone(), self.clock.clone());
        self.write(move |conn, ctx| settle_in(conn, &ctx.tenant(), &settlement, &clock)).await
    }
}
