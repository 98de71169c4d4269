//! Leases on actions (columns of the `actions` row) and named leases of single-leader jobs
//! (the `leases` table), judged by the store's clock. Each call is one statement (its own
//! transaction); takeover picks its rows with `FOR UPDATE SKIP LOCKED`, so two recoverers
//! never take the same action and never wait on each other.

use std::time::Duration;

use async_trait::async_trait;
use remediation_core::store::expiry;
use remediation_core::{ActionDetail, ActionId, ActionLeases, Lease, LeaseRequest, LeaseStore, StoreError};

use crate::store::{PostgresStore, clamped_nanos, decode, from_nanos, pg};

fn to_epoch(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

fn from_epoch(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

/// Gives the named lease up when `lease` is still the stored one; does nothing otherwise.
pub(crate) async fn release(
    client: &deadpool_postgres::Object,
    tenant: &str,
    name: &str,
    lease: &Lease,
) -> Result<(), StoreError> {
    let op = format!("cannot release lease `{name}`");
    let stmt = client
        .prepare_cached(
            "UPDATE leases SET holder = NULL, expires_at = NULL
             WHERE name = $1 AND tenant = $2 AND holder = $3 AND epoch = $4",
        )
        .await
        .map_err(pg(&op))?;
    client.execute(&stmt, &[&name, &tenant, &lease.holder, &from_epoch(lease.epoch)]).await.map_err(pg(&op))?;
    Ok(())
}

#[async_trait]
impl ActionLeases for PostgresStore {
    async fn lease(&self, id: ActionId) -> Result<Option<Lease>, StoreError> {
        let op = format!("cannot read the lease of action {id}");
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT lease_holder, lease_epoch, lease_expires_at FROM actions WHERE id = $1 AND tenant = $2",
            )
            .await
            .map_err(pg(&op))?;
        let row = client
            .query_opt(&stmt, &[&id.to_string(), &self.tenant()])
            .await
            .map_err(pg(&op))?
            .ok_or(StoreError::NotFound(id))?;
        let holder: Option<String> = row.get(0);
        let expires: Option<i64> = row.get(2);
        Ok(holder.zip(expires).map(|(holder, e)| Lease {
            holder,
            epoch: to_epoch(row.get(1)),
            expires_at: from_nanos(e),
        }))
    }

    async fn renew_lease(&self, id: ActionId, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let op = format!("cannot renew the lease of action {id}");
        let now = self.now();
        let expires = expiry(now, ttl);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE actions SET lease_expires_at = $1
                 WHERE id = $2 AND tenant = $3 AND lease_holder = $4 AND lease_epoch = $5 AND lease_expires_at > $6",
            )
            .await
            .map_err(pg(&op))?;
        let changed = client
            .execute(
                &stmt,
                &[
                    &clamped_nanos(expires),
                    &id.to_string(),
                    &self.tenant(),
                    &lease.holder,
                    &from_epoch(lease.epoch),
                    &clamped_nanos(now),
                ],
            )
            .await
            .map_err(pg(&op))?;
        if changed == 0 {
            return Err(StoreError::LeaseLost { what: format!("action {id}") });
        }
        self.count_commit();
        Ok(Lease { expires_at: expires, ..lease.clone() })
    }

    async fn take_over_expired(
        &self,
        request: &LeaseRequest,
        limit: usize,
    ) -> Result<Vec<(ActionDetail, Lease)>, StoreError> {
        const OP: &str = "cannot take over actions whose lease expired";
        let now = self.now();
        let expires = expiry(now, request.ttl);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE actions SET lease_holder = $1, lease_epoch = lease_epoch + 1, lease_expires_at = $2
                 WHERE id IN (
                     SELECT id FROM actions
                     WHERE tenant = $3 AND state IN ('executing', 'rolling_back')
                       AND (lease_expires_at IS NULL OR lease_expires_at <= $4)
                     ORDER BY COALESCE(lease_expires_at, 0), created_at, id
                     LIMIT $5
                     FOR UPDATE SKIP LOCKED)
                 RETURNING lease_epoch, detail_json",
            )
            .await
            .map_err(pg(OP))?;
        let rows = client
            .query(&stmt, &[&request.holder, &clamped_nanos(expires), &self.tenant(), &clamped_nanos(now), &limit])
            .await
            .map_err(pg(OP))?;
        if !rows.is_empty() {
            self.count_commit();
        }
        let mut taken = Vec::with_capacity(rows.len());
        for row in rows {
            let detail: ActionDetail = serde_json::from_str(row.get::<_, &str>(1)).map_err(decode(OP))?;
            let lease = Lease { holder: request.holder.clone(), epoch: to_epoch(row.get(0)), expires_at: expires };
            taken.push((detail, lease));
        }
        taken.sort_by_key(|(d, _)| (d.action.created_at, d.action.id));
        Ok(taken)
    }
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn acquire_lease(&self, name: &str, request: &LeaseRequest) -> Result<Option<Lease>, StoreError> {
        let op = format!("cannot acquire lease `{name}`");
        let now = self.now();
        let expires = expiry(now, request.ttl);
        let client = self.client().await?;
        // One statement: the conflict path locks the row, so two acquirers are serialised and
        // the second sees the first's grant.
        let stmt = client
            .prepare_cached(
                "INSERT INTO leases AS l (tenant, name, holder, epoch, expires_at) VALUES ($1, $2, $3, 1, $4)
                 ON CONFLICT (tenant, name) DO UPDATE SET holder = $3, epoch = l.epoch + 1, expires_at = $4
                 WHERE l.holder IS NULL OR l.expires_at IS NULL OR l.expires_at <= $5 OR l.holder = $3
                 RETURNING epoch",
            )
            .await
            .map_err(pg(&op))?;
        let row = client
            .query_opt(&stmt, &[&self.tenant(), &name, &request.holder, &clamped_nanos(expires), &clamped_nanos(now)])
            .await
            .map_err(pg(&op))?;
        Ok(row.map(|row| {
            self.count_commit();
            Lease { holder: request.holder.clone(), epoch: to_epoch(row.get(0)), expires_at: expires }
        }))
    }

    async fn renew_named_lease(&self, name: &str, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let op = format!("cannot renew lease `{name}`");
        let now = self.now();
        let expires = expiry(now, ttl);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE leases SET expires_at = $1
                 WHERE name = $2 AND tenant = $3 AND holder = $4 AND epoch = $5 AND expires_at > $6",
            )
            .await
            .map_err(pg(&op))?;
        let changed = client
            .execute(
                &stmt,
                &[
                    &clamped_nanos(expires),
                    &name,
                    &self.tenant(),
                    &lease.holder,
                    &from_epoch(lease.epoch),
                    &clamped_nanos(now),
                ],
            )
            .await
            .map_err(pg(&op))?;
        if changed == 0 {
            return Err(StoreError::LeaseLost { what: format!("lease `{name}`") });
        }
        self.count_commit();
        Ok(Lease { expires_at: expires, ..lease.clone() })
    }

    async fn release_lease(&self, name: &str, lease: &Lease) -> Result<(), StoreError> {
        let client = self.client().await?;
        release(&client, self.tenant(), name, lease).await
    }
}
