//! [`DeliveryStore`] on PostgreSQL: each sink's mark in the audit log (`delivery_marks`) and
//! the records it refused for good (`delivery_parked`), shared by every replica.
//!
//! A fenced write is one transaction that first locks the named lease's row (`FOR SHARE`: a
//! grant, renewal or release of that lease waits for it, other fenced writes do not) and
//! judges it by the store's clock, the clock leases are granted by; the mark moves by
//! compare-and-set on its stored value (`UPDATE … WHERE delivered_through = from`), and the
//! parked rows are written in the same transaction, so a refused move writes nothing.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use remediation_core::{
    DeliveryStore, Fence, MarkAdvance, ParkedRecord, ReplayOutcome, Settlement, SinkMark, StoreError,
};
use time::OffsetDateTime;

use crate::StorePostgresError;
use crate::store::{PostgresStore, clamped_nanos, from_nanos, invalid, nanos, pg};

/// A stored `seq` or mark (never negative: the tables check it).
fn seq_of(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

/// `seq` as PostgreSQL holds it; `None` beyond `i64::MAX`, where no record can be.
fn stored_seq(seq: u64) -> Option<i64> {
    i64::try_from(seq).ok()
}

/// Whether `advance` goes forward within what the store holds and parks only records in
/// `from + 1 ..= to`.
fn goes_forward(advance: &MarkAdvance) -> bool {
    advance.to > advance.from
        && stored_seq(advance.to).is_some()
        && advance.parked.iter().all(|(seq, _)| *seq > advance.from && *seq <= advance.to)
}

fn not_forward(advance: &MarkAdvance) -> StorePostgresError {
    StorePostgresError::MarkNotForward { sink: advance.sink.clone(), from: advance.from, to: advance.to }
}

impl PostgresStore {
    /// Refuses a write fenced by a named lease that is no longer the stored one (same holder
    /// and epoch) or has expired by the store's clock. Locks the lease's row for the rest of
    /// `tx`, so the lease cannot change hands before the write commits.
    async fn check_fence(&self, tx: &Transaction<'_>, fence: Option<&Fence>, op: &str) -> Result<(), StoreError> {
        let Some(fence) = fence else { return Ok(()) };
        let stmt = tx
            .prepare_cached("SELECT holder, epoch, expires_at FROM leases WHERE tenant = $1 AND name = $2 FOR SHARE")
            .await
            .map_err(pg(op))?;
        let row = tx.query_opt(&stmt, &[&self.tenant(), &fence.name]).await.map_err(pg(op))?;
        let now = clamped_nanos(self.now());
        let holds = row.is_some_and(|row| {
            row.get::<_, Option<&str>>(0) == Some(fence.holder.as_str())
                && u64::try_from(row.get::<_, i64>(1)).ok() == Some(fence.epoch)
                && row.get::<_, Option<i64>>(2).is_some_and(|expires| expires > now)
        });
        if holds { Ok(()) } else { Err(StoreError::LeaseLost { what: format!("lease `{}`", fence.name) }) }
    }

    /// The stored mark of `sink`, if it is registered.
    async fn stored_mark(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        sink: &str,
        op: &str,
    ) -> Result<Option<u64>, StoreError> {
        let stmt = client
            .prepare_cached("SELECT delivered_through FROM delivery_marks WHERE tenant = $1 AND sink = $2")
            .await
            .map_err(pg(op))?;
        let row = client.query_opt(&stmt, &[&self.tenant(), &sink]).await.map_err(pg(op))?;
        Ok(row.map(|row| seq_of(row.get(0))))
    }
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn register_sink(&self, sink: &str, start: u64, at: OffsetDateTime) -> Result<u64, StoreError> {
        let op = format!("cannot register sink `{sink}`");
        let mark = stored_seq(start).ok_or_else(|| {
            invalid(&op)(StorePostgresError::MarkNotForward { sink: sink.to_owned(), from: start, to: start })
        })?;
        let at = nanos(at).map_err(invalid(&op))?;
        let client = self.client().await?;
        // Two statements, not one: a concurrent registration's row, committed while the insert
        // waited on it, is seen by the second statement's snapshot, not by the first's.
        let stmt = client
            .prepare_cached(
                "INSERT INTO delivery_marks (tenant, sink, delivered_through, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, sink) DO NOTHING",
            )
            .await
            .map_err(pg(&op))?;
        if client.execute(&stmt, &[&self.tenant(), &sink, &mark, &at]).await.map_err(pg(&op))? > 0 {
            self.count_commit();
        }
        self.stored_mark(&client, sink, &op).await?.ok_or_else(|| StoreError::DeliveryConflict {
            sink: sink.to_owned(),
            expected: start,
            found: 0,
        })
    }

    async fn sink_marks(&self) -> Result<Vec<SinkMark>, StoreError> {
        const OP: &str = "cannot read the delivery marks";
        let client = self.client().await?;
        // Byte order of the names, as every store lists them, whatever the database's collation.
        let stmt = client
            .prepare_cached(
                "SELECT sink, delivered_through, updated_at FROM delivery_marks
                 WHERE tenant = $1 ORDER BY sink COLLATE \"C\"",
            )
            .await
            .map_err(pg(OP))?;
        let rows = client.query(&stmt, &[&self.tenant()]).await.map_err(pg(OP))?;
        Ok(rows
            .iter()
            .map(|row| SinkMark {
                sink: row.get(0),
                delivered_through: seq_of(row.get(1)),
                updated_at: from_nanos(row.get(2)),
            })
            .collect())
    }

    async fn advance_sink(&self, advance: &MarkAdvance) -> Result<(), StoreError> {
        let op = format!("cannot move the delivery mark of sink `{}`", advance.sink);
        let conflict = |found: Option<u64>| StoreError::DeliveryConflict {
            sink: advance.sink.clone(),
            expected: advance.from,
            found: found.unwrap_or(0),
        };
        let at = nanos(advance.at).map_err(invalid(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        self.check_fence(&tx, advance.fence.as_ref(), &op).await?;
        if !goes_forward(advance) {
            let found = self.stored_mark(&tx, &advance.sink, &op).await?;
            return Err(if found == Some(advance.from) { invalid(&op)(not_forward(advance)) } else { conflict(found) });
        }
        // Both fit: `from < to <= i64::MAX`.
        let (from, to) = (stored_seq(advance.from).unwrap_or(i64::MAX), stored_seq(advance.to).unwrap_or(i64::MAX));
        let stmt = tx
            .prepare_cached(
                "UPDATE delivery_marks SET delivered_through = $1, updated_at = $2
                 WHERE tenant = $3 AND sink = $4 AND delivered_through = $5",
            )
            .await
            .map_err(pg(&op))?;
        if tx.execute(&stmt, &[&to, &at, &self.tenant(), &advance.sink, &from]).await.map_err(pg(&op))? == 0 {
            // Moved by another relay (or never registered): the committed mark says which.
            let found = self.stored_mark(&tx, &advance.sink, &op).await?;
            return Err(conflict(found));
        }
        if !advance.parked.is_empty() {
            // One row per seq (the last reason given wins), in one statement.
            let parked: BTreeMap<i64, &str> = advance
                .parked
                .iter()
                .map(|(seq, reason)| (stored_seq(*seq).unwrap_or(i64::MAX), reason.as_str()))
                .collect();
            let (seqs, reasons): (Vec<i64>, Vec<&str>) = parked.into_iter().unzip();
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO delivery_parked (tenant, sink, seq, reason, parked_at, replay)
                     SELECT $1, $2, p.seq, p.reason, $5, false FROM unnest($3::bigint[], $4::text[]) AS p (seq, reason)
                     ON CONFLICT (tenant, sink, seq)
                     DO UPDATE SET reason = excluded.reason, parked_at = excluded.parked_at, replay = false",
                )
                .await
                .map_err(pg(&op))?;
            tx.execute(&stmt, &[&self.tenant(), &advance.sink, &seqs, &reasons, &at]).await.map_err(pg(&op))?;
        }
        self.commit(tx, &op).await
    }

    async fn parked(&self, sink: Option<String>) -> Result<Vec<ParkedRecord>, StoreError> {
        const OP: &str = "cannot read the parked records";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT sink, seq, reason, parked_at, replay FROM delivery_parked
                 WHERE tenant = $1 AND ($2::text IS NULL OR sink = $2) ORDER BY sink COLLATE \"C\", seq",
            )
            .await
            .map_err(pg(OP))?;
        let rows = client.query(&stmt, &[&self.tenant(), &sink]).await.map_err(pg(OP))?;
        Ok(rows
            .iter()
            .map(|row| ParkedRecord {
                sink: row.get(0),
                seq: seq_of(row.get(1)),
                reason: row.get(2),
                parked_at: from_nanos(row.get(3)),
                replay: row.get(4),
            })
            .collect())
    }

    async fn request_replay(&self, sink: &str, seqs: Option<Vec<u64>>) -> Result<u64, StoreError> {
        let op = format!("cannot ask for the records parked for sink `{sink}` again");
        // A seq beyond what the store holds was never parked.
        let seqs: Option<Vec<i64>> = seqs.map(|seqs| seqs.into_iter().filter_map(stored_seq).collect());
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE delivery_parked SET replay = true
                 WHERE tenant = $1 AND sink = $2 AND ($3::bigint[] IS NULL OR seq = ANY ($3))",
            )
            .await
            .map_err(pg(&op))?;
        let marked = client.execute(&stmt, &[&self.tenant(), &sink, &seqs]).await.map_err(pg(&op))?;
        self.count_commit();
        Ok(marked)
    }

    async fn settle_parked(&self, settlement: &Settlement) -> Result<(), StoreError> {
        let op = format!("cannot settle record {} parked for sink `{}`", settlement.seq, settlement.sink);
        let at = nanos(settlement.at).map_err(invalid(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        self.check_fence(&tx, settlement.fence.as_ref(), &op).await?;
        // A seq beyond what the store holds was never parked: nothing to settle.
        let Some(seq) = stored_seq(settlement.seq) else { return Ok(()) };
        match &settlement.outcome {
            ReplayOutcome::Delivered => {
                let stmt = tx
                    .prepare_cached("DELETE FROM delivery_parked WHERE tenant = $1 AND sink = $2 AND seq = $3")
                    .await
                    .map_err(pg(&op))?;
                tx.execute(&stmt, &[&self.tenant(), &settlement.sink, &seq]).await.map_err(pg(&op))?;
            }
            ReplayOutcome::RefusedAgain(reason) => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE delivery_parked SET reason = $1, parked_at = $2, replay = false
                         WHERE tenant = $3 AND sink = $4 AND seq = $5",
                    )
                    .await
                    .map_err(pg(&op))?;
                tx.execute(&stmt, &[reason, &at, &self.tenant(), &settlement.sink, &seq]).await.map_err(pg(&op))?;
            }
        }
        self.commit(tx, &op).await
    }
}
