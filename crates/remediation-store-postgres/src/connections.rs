//! Managed connections (the `connections` table, schema 8): each connection's record as JSON
//! (its sealed secrets only as the vault's ciphertext) and its revision, plus the tenant's
//! `connection_revisions` counter. Every change reads the row `FOR UPDATE`, compares the
//! revision, writes the row, moves the counter and queues its audit record in one transaction.

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::store::{
    ConnectionHealth, ConnectionStore, ManagedConnection, SealedConnection, connection_changed,
    connection_created_record, connection_deleted_record, connection_rewrapped_record, connection_updated_record,
    next_connection_revision,
};
use remediation_core::{Actor, StoreError};
use time::OffsetDateTime;
use tokio_postgres::Transaction;

use crate::store::{PostgresStore, decode, encode, insert_pending, pg};

fn parse(json: &str, op: &str) -> Result<ManagedConnection, StoreError> {
    serde_json::from_str(json).map_err(decode(op))
}

async fn locked(tx: &Transaction<'_>, tenant: &str, id: &str, op: &str) -> Result<ManagedConnection, StoreError> {
    let row = tx
        .query_opt("SELECT record_json FROM connections WHERE tenant = $1 AND id = $2 FOR UPDATE", &[&tenant, &id])
        .await
        .map_err(pg(op))?
        .ok_or_else(|| StoreError::ConnectionNotFound(id.to_owned()))?;
    parse(row.get::<_, &str>(0), op)
}

async fn write_row(tx: &Transaction<'_>, tenant: &str, c: &ManagedConnection, op: &str) -> Result<(), StoreError> {
    let json = serde_json::to_string(c).map_err(encode(op))?;
    tx.execute(
        "UPDATE connections SET revision = $3, record_json = $4 WHERE tenant = $1 AND id = $2",
        &[&tenant, &c.id, &i64::try_from(c.revision).unwrap_or(i64::MAX), &json],
    )
    .await
    .map_err(pg(op))?;
    Ok(())
}

async fn bump(tx: &Transaction<'_>, tenant: &str, op: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO connection_revisions (tenant, revision) VALUES ($1, 1)
         ON CONFLICT (tenant) DO UPDATE SET revision = connection_revisions.revision + 1",
        &[&tenant],
    )
    .await
    .map_err(pg(op))?;
    Ok(())
}

#[async_trait]
impl ConnectionStore for PostgresStore {
    fn connection_tenant(&self) -> String {
        self.tenant().to_owned()
    }

    async fn create_connection(
        &self,
        connection: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError> {
        const OP: &str = "cannot store the connection";
        let stored = ManagedConnection { revision: 1, ..connection.clone() };
        let json = serde_json::to_string(&stored).map_err(encode(OP))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let inserted = tx
            .execute(
                "INSERT INTO connections (tenant, id, revision, record_json) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (tenant, id) DO NOTHING",
                &[&self.tenant(), &stored.id, &json],
            )
            .await
            .map_err(pg(OP))?;
        if inserted == 0 {
            return Err(StoreError::ConnectionConflict {
                message: format!("a connection `{}` exists already; choose another id", stored.id),
            });
        }
        bump(&tx, self.tenant(), OP).await?;
        let record = AuditBody::Settings(connection_created_record(actor, &stored));
        insert_pending(&tx, self.tenant(), &record, OP).await?;
        self.commit(tx, OP).await?;
        Ok(stored)
    }

    async fn connection(&self, id: &str) -> Result<Option<ManagedConnection>, StoreError> {
        const OP: &str = "cannot read the connection";
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT record_json FROM connections WHERE tenant = $1 AND id = $2", &[&self.tenant(), &id])
            .await
            .map_err(pg(OP))?;
        row.map(|row| parse(row.get::<_, &str>(0), OP)).transpose()
    }

    async fn connections(&self) -> Result<Vec<ManagedConnection>, StoreError> {
        const OP: &str = "cannot list the connections";
        let client = self.client().await?;
        let rows = client
            .query("SELECT record_json FROM connections WHERE tenant = $1 ORDER BY id", &[&self.tenant()])
            .await
            .map_err(pg(OP))?;
        rows.iter().map(|row| parse(row.get::<_, &str>(0), OP)).collect()
    }

    async fn update_connection(
        &self,
        id: &str,
        expected_revision: u64,
        new: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError> {
        const OP: &str = "cannot update the connection";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let stored = locked(&tx, self.tenant(), id, OP).await?;
        let next = next_connection_revision(&stored, expected_revision, new)?;
        write_row(&tx, self.tenant(), &next, OP).await?;
        bump(&tx, self.tenant(), OP).await?;
        let record = AuditBody::Settings(connection_updated_record(actor, &stored, &next));
        insert_pending(&tx, self.tenant(), &record, OP).await?;
        self.commit(tx, OP).await?;
        Ok(next)
    }

    async fn delete_connection(
        &self,
        id: &str,
        expected_revision: u64,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const OP: &str = "cannot delete the connection";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let stored = locked(&tx, self.tenant(), id, OP).await?;
        if stored.revision != expected_revision {
            return Err(connection_changed(id, expected_revision, stored.revision));
        }
        tx.execute("DELETE FROM connections WHERE tenant = $1 AND id = $2", &[&self.tenant(), &id])
            .await
            .map_err(pg(OP))?;
        bump(&tx, self.tenant(), OP).await?;
        let record = AuditBody::Settings(connection_deleted_record(actor, &stored, at));
        insert_pending(&tx, self.tenant(), &record, OP).await?;
        self.commit(tx, OP).await
    }

    async fn record_connection_health(&self, id: &str, health: &ConnectionHealth) -> Result<(), StoreError> {
        const OP: &str = "cannot record the connection's health";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let mut stored = locked(&tx, self.tenant(), id, OP).await?;
        stored.health = Some(health.clone());
        write_row(&tx, self.tenant(), &stored, OP).await?;
        self.commit(tx, OP).await
    }

    async fn connections_revision(&self) -> Result<u64, StoreError> {
        const OP: &str = "cannot read the connections revision";
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT revision FROM connection_revisions WHERE tenant = $1", &[&self.tenant()])
            .await
            .map_err(pg(OP))?;
        Ok(row.and_then(|r| u64::try_from(r.get::<_, i64>(0)).ok()).unwrap_or(0))
    }

    async fn all_sealed_connections(&self) -> Result<Vec<SealedConnection>, StoreError> {
        const OP: &str = "cannot list the sealed connections";
        let client = self.client().await?;
        let rows = client
            .query("SELECT tenant, record_json FROM connections ORDER BY tenant, id", &[])
            .await
            .map_err(pg(OP))?;
        let mut out = Vec::new();
        for row in rows {
            let c = parse(row.get::<_, &str>(1), OP)?;
            if let Some(secrets) = c.secrets {
                out.push(SealedConnection { tenant: row.get(0), id: c.id, revision: c.revision, secrets });
            }
        }
        Ok(out)
    }

    async fn replace_sealed(
        &self,
        tenant: &str,
        id: &str,
        expected_revision: u64,
        secrets: &serde_json::Value,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        const OP: &str = "cannot replace the connection's sealed secrets";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let mut stored = locked(&tx, tenant, id, OP).await?;
        if stored.revision != expected_revision {
            return Err(connection_changed(id, expected_revision, stored.revision));
        }
        stored.secrets = Some(secrets.clone());
        stored.revision += 1;
        stored.updated_at = at;
        write_row(&tx, tenant, &stored, OP).await?;
        bump(&tx, tenant, OP).await?;
        let record = AuditBody::Settings(connection_rewrapped_record(actor, tenant, id, stored.revision, at));
        insert_pending(&tx, self.tenant(), &record, OP).await?;
        self.commit(tx, OP).await?;
        Ok(stored.revision)
    }
}
