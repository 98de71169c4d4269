//! The audit sequencer: one leader among the replicas, elected by the named lease
//! [`SEQUENCER_LEASE`], seals the pending entries in batches onto the chain head.
//!
//! Each batch is one transaction that first locks the lease row and checks that this process
//! still holds the lease (holder, epoch, not expired by the store's clock): a leader that
//! lost its lease (frozen past its expiry, then taken over) seals nothing. The chain lock (a
//! transaction-scoped advisory lock per tenant) and the head row serialise batches, and the
//! `audit` insert trigger refuses any record that does not extend the last one, so the log
//! cannot fork even if the lease rule were broken.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Transaction};
use remediation_audit::{
    AuditBody, AuditKey, ChainHead, Checkpoint, CheckpointVerdict, PreparedBody, judge_checkpoint,
};
use remediation_core::store::expiry;
use remediation_core::{Lease, LeaseRequest, LeaseStore, StoreError};

use crate::StorePostgresError;
use crate::store::{PostgresStore, audit, clamped_nanos, decode, invalid, nanos, pg};

/// The name of the sequencer's lease.
pub const SEQUENCER_LEASE: &str = "audit-sequencer";

/// Entries sealed per batch transaction.
const BATCH: i64 = 1000;

/// Serialises everything that extends or adopts `tenant`'s chain, to the end of `tx`.
pub(crate) async fn lock_chain(tx: &Transaction<'_>, tenant: &str, op: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('remediation-audit-chain:' || $1, 0))", &[&tenant])
        .await
        .map_err(pg(op))?;
    Ok(())
}

/// The stored checkpoint of `tenant`, if any.
pub(crate) async fn read_checkpoint(
    client: &impl GenericClient,
    tenant: &str,
    op: &str,
) -> Result<Option<Checkpoint>, StoreError> {
    let stmt = client
        .prepare_cached("SELECT count, head, mac FROM audit_checkpoint WHERE tenant = $1")
        .await
        .map_err(pg(op))?;
    Ok(client.query_opt(&stmt, &[&tenant]).await.map_err(pg(op))?.map(|row| Checkpoint {
        // A negative count (never written by this crate) reads as u64::MAX, whose MAC fails.
        count: u64::try_from(row.get::<_, i64>(0)).unwrap_or(u64::MAX),
        head: row.get(1),
        mac: row.get(2),
    }))
}

/// Inserts or replaces `tenant`'s checkpoint.
pub(crate) async fn write_checkpoint(
    tx: &Transaction<'_>,
    tenant: &str,
    checkpoint: &Checkpoint,
    op: &str,
) -> Result<(), StoreError> {
    let count = i64::try_from(checkpoint.count).map_err(|source| StoreError::Backend {
        message: format!("{op}: the audit chain is full"),
        source: Box::new(source),
    })?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit_checkpoint (tenant, count, head, mac) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant) DO UPDATE SET count = excluded.count, head = excluded.head, mac = excluded.mac",
        )
        .await
        .map_err(pg(op))?;
    tx.execute(&stmt, &[&tenant, &count, &checkpoint.head, &checkpoint.mac]).await.map_err(pg(op))?;
    Ok(())
}

async fn read_head(tx: &Transaction<'_>, sql: &str, tenant: &str, op: &str) -> Result<Option<ChainHead>, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg(op))?;
    Ok(tx
        .query_opt(&stmt, &[&tenant])
        .await
        .map_err(pg(op))?
        .map(|row| ChainHead { seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0), hash: row.get(1) }))
}

impl PostgresStore {
    /// One sequencer pass (see [`remediation_core::AuditLog::sequence_pending`]): takes or
    /// renews the sequencer lease, then seals batches until nothing written before the pass is
    /// left. Returns 0 without sealing anything when another process holds the lease.
    pub async fn sequence_pending(&self) -> Result<u64, StoreError> {
        let mut held = self.inner.sequencer.lock().await;
        // An idle pass reads one index entry and writes nothing (no lease renewal either: an
        // idle leader may lose the lease, and whoever has work takes it).
        if !self.has_pending().await? {
            return Ok(0);
        }
        let request = LeaseRequest { holder: self.inner.holder.clone(), ttl: self.inner.config.sequencer_ttl };
        let mut lease = match held.remove(self.tenant()) {
            Some(lease) if lease.is_live(self.now()) => lease,
            _ => match self.acquire_lease(SEQUENCER_LEASE, &request).await? {
                Some(lease) => lease,
                None => return Ok(0),
            },
        };
        let mut total = 0;
        loop {
            // Each batch renews the lease in its own transaction, so a busy leader keeps it
            // with no extra commit.
            let (sealed, renewed) = match self.batch(&lease).await {
                Ok(done) => done,
                Err(StoreError::LeaseLost { .. }) if total == 0 => {
                    // Lost since the last pass: take it again if it is free, else leave it.
                    match self.acquire_lease(SEQUENCER_LEASE, &request).await? {
                        Some(again) => {
                            lease = again;
                            continue;
                        }
                        None => return Ok(0),
                    }
                }
                Err(e @ StoreError::LeaseLost { .. }) => return Err(e),
                Err(e) => {
                    // Still the leader (the refusal is about the log, not the lease).
                    held.insert(self.tenant().to_owned(), lease);
                    return Err(e);
                }
            };
            lease = renewed;
            total += sealed;
            if sealed < BATCH.unsigned_abs() {
                if self.inner.config.release_sequencer_after_pass {
                    self.release_lease(SEQUENCER_LEASE, &lease).await?;
                } else {
                    held.insert(self.tenant().to_owned(), lease);
                }
                return Ok(total);
            }
        }
    }

    /// Gives the sequencer lease up if this process holds it (a graceful shutdown), so another
    /// replica takes over at its next pass instead of after the lease expires. Dropping the
    /// last handle does the same, on a best-effort task.
    pub async fn release_sequencer(&self) -> Result<(), StoreError> {
        let mut held = self.inner.sequencer.lock().await;
        for (tenant, lease) in std::mem::take(&mut *held) {
            let client = self.client().await?;
            crate::lease::release(&client, &tenant, SEQUENCER_LEASE, &lease).await?;
        }
        Ok(())
    }

    /// The tenants with entries waiting to be sequenced.
    async fn tenants_with_pending(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "cannot look for unsequenced audit entries";
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT DISTINCT tenant FROM audit_pending").await.map_err(pg(OP))?;
        Ok(client.query(&stmt, &[]).await.map_err(pg(OP))?.iter().map(|row| row.get(0)).collect())
    }

    /// Whether any entry waits to be sequenced.
    async fn has_pending(&self) -> Result<bool, StoreError> {
        const OP: &str = "cannot look for unsequenced audit entries";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM audit_pending WHERE tenant = $1)")
            .await
            .map_err(pg(OP))?;
        Ok(client.query_one(&stmt, &[&self.tenant()]).await.map_err(pg(OP))?.get(0))
    }

    /// Seals up to one batch of pending entries as the holder of `lease`, in one transaction
    /// that first checks, with the lease row locked, that `lease` is still the stored sequencer
    /// lease and live by the store's clock: otherwise [`StoreError::LeaseLost`] and nothing is
    /// written. Returns how many entries it sealed.
    pub async fn sequence_batch(&self, lease: &Lease) -> Result<u64, StoreError> {
        self.batch(lease).await.map(|(sealed, _)| sealed)
    }

    /// [`Self::sequence_batch`], extending the lease by its ttl in the same transaction;
    /// returns the extended lease too.
    async fn batch(&self, lease: &Lease) -> Result<(u64, Lease), StoreError> {
        const OP: &str = "cannot sequence the audit log";
        let tenant = self.tenant();
        let at = self.now();
        let now = clamped_nanos(at);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let stmt = tx
            .prepare_cached("SELECT holder, epoch, expires_at FROM leases WHERE tenant = $1 AND name = $2 FOR UPDATE")
            .await
            .map_err(pg(OP))?;
        let row = tx.query_opt(&stmt, &[&tenant, &SEQUENCER_LEASE]).await.map_err(pg(OP))?;
        let holds = row.is_some_and(|row| {
            row.get::<_, Option<&str>>(0) == Some(lease.holder.as_str())
                && u64::try_from(row.get::<_, i64>(1)).ok() == Some(lease.epoch)
                && row.get::<_, Option<i64>>(2).is_some_and(|e| e > now)
        });
        if !holds {
            return Err(StoreError::LeaseLost { what: format!("lease `{SEQUENCER_LEASE}`") });
        }
        let renewed = Lease { expires_at: expiry(at, self.inner.config.sequencer_ttl), ..lease.clone() };
        lock_chain(&tx, tenant, OP).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT id, body_json, (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint - written_at
                 FROM audit_pending WHERE tenant = $1 ORDER BY id LIMIT $2",
            )
            .await
            .map_err(pg(OP))?;
        let pending = tx.query(&stmt, &[&tenant, &BATCH]).await.map_err(pg(OP))?;
        if pending.is_empty() {
            tx.rollback().await.map_err(pg(OP))?;
            return Ok((0, lease.clone()));
        }
        let mut head = read_head(&tx, "SELECT seq, hash FROM audit_head WHERE tenant = $1", tenant, OP).await?;
        let last =
            read_head(&tx, "SELECT seq, hash FROM audit WHERE tenant = $1 ORDER BY seq DESC LIMIT 1", tenant, OP)
                .await?;
        self.check_extendable(&tx, last.as_ref(), OP).await?;
        if head != last {
            return Err(invalid(OP)(StorePostgresError::AuditHeadMismatch {
                head: head.map(|h| h.seq).unwrap_or(0),
                last: last.map(|h| h.seq).unwrap_or(0),
            }));
        }
        let mut ids = Vec::with_capacity(pending.len());
        let mut leaves: Vec<Vec<u8>> = Vec::with_capacity(pending.len());
        let (mut seqs, mut actions, mut ats, mut jsons, mut prevs, mut hashes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in &pending {
            ids.push(row.get::<_, i64>(0));
            let body: AuditBody = serde_json::from_str(row.get::<_, &str>(1)).map_err(decode(OP))?;
            let prepared = PreparedBody::new(body).map_err(audit(OP))?;
            let (record, json) = remediation_audit::seal_prepared(head.as_ref(), prepared).map_err(audit(OP))?;
            let seq = i64::try_from(record.seq).map_err(|source| StoreError::Backend {
                message: format!("{OP}: the audit chain is full"),
                source: Box::new(source),
            })?;
            seqs.push(seq);
            actions.push(record.body.action_id().map(|id| id.to_string()).unwrap_or_default());
            ats.push(nanos(record.body.at()).map_err(invalid(OP))?);
            leaves.push(remediation_audit::merkle::leaf_hash(json.as_bytes()).0.to_vec());
            jsons.push(json);
            prevs.push(record.prev_hash);
            head = Some(ChainHead { seq: record.seq, hash: record.hash.clone() });
            hashes.push(record.hash);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO audit (tenant, seq, action_id, at, record_json, prev_hash, hash)
                 SELECT $1, seq, action_id, at, record_json, prev_hash, hash
                 FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
                      WITH ORDINALITY AS t(seq, action_id, at, record_json, prev_hash, hash, n)
                 ORDER BY n",
            )
            .await
            .map_err(pg(OP))?;
        tx.execute(&stmt, &[&tenant, &seqs, &actions, &ats, &jsons, &prevs, &hashes]).await.map_err(pg(OP))?;
        // Each record's leaf in the verifiable log, in the same transaction.
        let stmt = tx
            .prepare_cached(
                "INSERT INTO audit_leaves (tenant, leaf_index, hash)
                 SELECT $1, seq - 1, hash FROM unnest($2::bigint[], $3::bytea[]) WITH ORDINALITY AS t(seq, hash, n)
                 ORDER BY n",
            )
            .await
            .map_err(pg(OP))?;
        tx.execute(&stmt, &[&tenant, &seqs, &leaves]).await.map_err(pg(OP))?;
        let stmt = tx.prepare_cached("DELETE FROM audit_pending WHERE id = ANY($1::bigint[])").await.map_err(pg(OP))?;
        tx.execute(&stmt, &[&ids]).await.map_err(pg(OP))?;
        if let Some(head) = &head {
            let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO audit_head (tenant, seq, hash) VALUES ($1, $2, $3)
                     ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                )
                .await
                .map_err(pg(OP))?;
            tx.execute(&stmt, &[&tenant, &seq, &head.hash]).await.map_err(pg(OP))?;
            if let Some(key) = self.key() {
                write_checkpoint(&tx, tenant, &key.seal(head.seq, &head.hash), OP).await?;
            }
        }
        let stmt = tx
            .prepare_cached("UPDATE leases SET expires_at = $3 WHERE tenant = $1 AND name = $2")
            .await
            .map_err(pg(OP))?;
        tx.execute(&stmt, &[&tenant, &SEQUENCER_LEASE, &clamped_nanos(renewed.expires_at)]).await.map_err(pg(OP))?;
        self.commit(tx, OP).await?;
        let mut lags = self.inner.lags.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = crate::store::LAG_SAMPLES.saturating_sub(lags.len());
        lags.extend(pending.iter().take(room).map(|row| u64::try_from(row.get::<_, i64>(2)).unwrap_or(0)));
        drop(lags);
        Ok((u64::try_from(pending.len()).unwrap_or(0), renewed))
    }

    /// With a key the checkpoint must vouch for the chain's last record, so tampering is never
    /// sealed over; without one there must be no checkpoint, which this process could not keep.
    async fn check_extendable(
        &self,
        tx: &Transaction<'_>,
        last: Option<&ChainHead>,
        op: &str,
    ) -> Result<(), StoreError> {
        let stored = read_checkpoint(tx, self.tenant(), op).await?;
        match self.key() {
            None if stored.is_some() => Err(invalid(op)(StorePostgresError::KeyRequired)),
            None => Ok(()),
            Some(key) => {
                let verdict = judge(key, stored.as_ref(), last);
                if verdict == CheckpointVerdict::Matches {
                    Ok(())
                } else {
                    Err(invalid(op)(StorePostgresError::CheckpointMismatch { verdict }))
                }
            }
        }
    }

    /// Starts the background sequencer: a pass every `interval` while the store lives.
    pub(crate) fn start_sequencer(&self, interval: Duration) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let store = PostgresStore { inner, tenant: std::sync::Arc::from(crate::store::DEFAULT_TENANT) };
                // Every tenant's chain that has entries waiting.
                let tenants = match store.tenants_with_pending().await {
                    Ok(tenants) => tenants,
                    Err(e) => {
                        tracing::warn!(error = %e, "an audit sequencer pass failed; the next pass retries");
                        continue;
                    }
                };
                for tenant in tenants {
                    let store =
                        PostgresStore { inner: store.inner.clone(), tenant: std::sync::Arc::from(tenant.as_str()) };
                    if let Err(e) = store.sequence_pending().await {
                        tracing::warn!(error = %e, tenant, "an audit sequencer pass failed; the next pass retries");
                    }
                }
            }
        });
        let mut slot = self.inner.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(handle);
    }
}

fn judge(key: &AuditKey, stored: Option<&Checkpoint>, last: Option<&ChainHead>) -> CheckpointVerdict {
    judge_checkpoint(Some(key), stored, last.map(|h| (h.seq, h.hash.as_str())))
}
