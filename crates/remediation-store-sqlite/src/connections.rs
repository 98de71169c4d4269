//! Managed connections (the `connections` table, schema 16): each connection's record as
//! JSON (its sealed secrets are ciphertext the vault made; nothing here can read them) and its
//! revision, plus the tenant's `connection_revisions` counter. Writes go through the writer,
//! each with its audit record; reads run on the read pool.

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::store::{
    ConnectionHealth, ConnectionStore, ManagedConnection, SealedConnection, connection_changed,
    connection_created_record, connection_deleted_record, connection_rewrapped_record, connection_updated_record,
    next_connection_revision,
};
use remediation_core::{Actor, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::store::{decode, encode, prepare, sql};

fn read(conn: &Connection, tenant: &str, id: &str, op: &str) -> Result<Option<ManagedConnection>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT record_json FROM connections WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.query_row(params![tenant, id], |row| row.get(0)).optional())
        .map_err(sql(op))?;
    json.map(|j| serde_json::from_str(&j).map_err(decode(op))).transpose()
}

fn write_row(conn: &Connection, tenant: &str, c: &ManagedConnection, op: &str) -> Result<(), StoreError> {
    let json = serde_json::to_string(c).map_err(encode(op))?;
    conn.prepare_cached(
        "INSERT INTO connections (tenant, id, revision, record_json) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant, id) DO UPDATE SET revision = excluded.revision, record_json = excluded.record_json",
    )
    .and_then(|mut stmt| stmt.execute(params![tenant, c.id, i64::try_from(c.revision).unwrap_or(i64::MAX), json]))
    .map_err(sql(op))?;
    Ok(())
}

/// Moves the tenant's connections revision on.
fn bump(conn: &Connection, tenant: &str, op: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO connection_revisions (tenant, revision) VALUES (?1, 1)
         ON CONFLICT (tenant) DO UPDATE SET revision = revision + 1",
    )
    .and_then(|mut stmt| stmt.execute(params![tenant]))
    .map_err(sql(op))?;
    Ok(())
}

fn audit(ctx: &crate::writer::WriteCtx, record: remediation_core::SettingsRecord, op: &str) -> Result<(), StoreError> {
    ctx.enqueue_audit(prepare(AuditBody::Settings(record), || op.to_owned())?);
    Ok(())
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    fn connection_tenant(&self) -> String {
        self.tenant.clone()
    }

    async fn create_connection(
        &self,
        connection: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError> {
        const OP: &str = "cannot store the connection";
        let stored = ManagedConnection { revision: 1, ..connection.clone() };
        let actor = actor.clone();
        self.write(move |conn, ctx| {
            if read(conn, &ctx.tenant(), &stored.id, OP)?.is_some() {
                return Err(StoreError::ConnectionConflict {
                    message: format!("a connection `{}` exists already; choose another id", stored.id),
                });
            }
            write_row(conn, &ctx.tenant(), &stored, OP)?;
            bump(conn, &ctx.tenant(), OP)?;
            audit(ctx, connection_created_record(&actor, &stored), OP)?;
            Ok(stored.clone())
        })
        .await
    }

    async fn connection(&self, id: &str) -> Result<Option<ManagedConnection>, StoreError> {
        const OP: &str = "cannot read the connection";
        let id = id.to_owned();
        self.blocking(move |s| s.with_conn(|conn| read(conn, &s.tenant, &id, OP))).await
    }

    async fn connections(&self) -> Result<Vec<ManagedConnection>, StoreError> {
        const OP: &str = "cannot list the connections";
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT record_json FROM connections WHERE tenant = ?1 ORDER BY id")
                    .map_err(sql(OP))?;
                let rows = stmt.query_map(params![s.tenant], |row| row.get::<_, String>(0)).map_err(sql(OP))?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row.map_err(sql(OP))?).map_err(decode(OP))?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn update_connection(
        &self,
        id: &str,
        expected_revision: u64,
        new: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError> {
        const OP: &str = "cannot update the connection";
        let (id, new, actor) = (id.to_owned(), new.clone(), actor.clone());
        self.write(move |conn, ctx| {
            let stored =
                read(conn, &ctx.tenant(), &id, OP)?.ok_or_else(|| StoreError::ConnectionNotFound(id.clone()))?;
            let next = next_connection_revision(&stored, expected_revision, &new)?;
            write_row(conn, &ctx.tenant(), &next, OP)?;
            bump(conn, &ctx.tenant(), OP)?;
            audit(ctx, connection_updated_record(&actor, &stored, &next), OP)?;
            Ok(next)
        })
        .await
    }

    async fn delete_connection(
        &self,
        id: &str,
        expected_revision: u64,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const OP: &str = "cannot delete the connection";
        let (id, actor) = (id.to_owned(), actor.clone());
        self.write(move |conn, ctx| {
            let stored =
                read(conn, &ctx.tenant(), &id, OP)?.ok_or_else(|| StoreError::ConnectionNotFound(id.clone()))?;
            if stored.revision != expected_revision {
                return Err(connection_changed(&id, expected_revision, stored.revision));
            }
            conn.prepare_cached("DELETE FROM connections WHERE tenant = ?1 AND id = ?2")
                .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), id]))
                .map_err(sql(OP))?;
            bump(conn, &ctx.tenant(), OP)?;
            audit(ctx, connection_deleted_record(&actor, &stored, at), OP)?;
            Ok(())
        })
        .await
    }

    async fn record_connection_health(&self, id: &str, health: &ConnectionHealth) -> Result<(), StoreError> {
        const OP: &str = "cannot record the connection's health";
        let (id, health) = (id.to_owned(), health.clone());
        self.write(move |conn, ctx| {
            let mut stored =
                read(conn, &ctx.tenant(), &id, OP)?.ok_or_else(|| StoreError::ConnectionNotFound(id.clone()))?;
            stored.health = Some(health.clone());
            write_row(conn, &ctx.tenant(), &stored, OP)
        })
        .await
    }

    async fn connections_revision(&self) -> Result<u64, StoreError> {
        const OP: &str = "cannot read the connections revision";
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let n: Option<i64> = conn
                    .prepare_cached("SELECT revision FROM connection_revisions WHERE tenant = ?1")
                    .and_then(|mut stmt| stmt.query_row(params![s.tenant], |row| row.get(0)).optional())
                    .map_err(sql(OP))?;
                Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
            })
        })
        .await
    }

    async fn all_sealed_connections(&self) -> Result<Vec<SealedConnection>, StoreError> {
        const OP: &str = "cannot list the sealed connections";
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT tenant, record_json FROM connections ORDER BY tenant, id")
                    .map_err(sql(OP))?;
                let rows = stmt
                    .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                    .map_err(sql(OP))?;
                let mut out = Vec::new();
                for row in rows {
                    let (tenant, json) = row.map_err(sql(OP))?;
                    let c: ManagedConnection = serde_json::from_str(&json).map_err(decode(OP))?;
                    if let Some(secrets) = c.secrets {
                        out.push(SealedConnection { tenant, id: c.id, revision: c.revision, secrets });
                    }
                }
                Ok(out)
            })
        })
        .await
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
        let (tenant, id, secrets, actor) = (tenant.to_owned(), id.to_owned(), secrets.clone(), actor.clone());
        self.write(move |conn, ctx| {
            let mut stored = read(conn, &tenant, &id, OP)?.ok_or_else(|| StoreError::ConnectionNotFound(id.clone()))?;
            if stored.revision != expected_revision {
                return Err(connection_changed(&id, expected_revision, stored.revision));
            }
            stored.secrets = Some(secrets.clone());
            stored.revision += 1;
            stored.updated_at = at;
            write_row(conn, &tenant, &stored, OP)?;
            bump(conn, &tenant, OP)?;
            audit(ctx, connection_rewrapped_record(&actor, &tenant, &id, stored.revision, at), OP)?;
            Ok(stored.revision)
        })
        .await
    }
}
