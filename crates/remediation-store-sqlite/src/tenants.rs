//! Tenants (the `tenants` table, schema version 16): each created tenant's record, kept as
//! JSON. A handle for another tenant shares this one's writer and read pool.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::store::{TenantStore, default_tenant_record};
use remediation_core::{SettingsRecord, Store, StoreError, Tenant, TenantId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::store::{clamped_nanos, decode, encode, prepare, sql};

fn read(conn: &Connection, name: &str, op: &str) -> Result<Option<Tenant>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT record_json FROM tenants WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row(params![name], |row| row.get(0)).optional())
        .map_err(sql(op))?;
    json.map(|j| serde_json::from_str(&j).map_err(decode(op))).transpose()
}

impl SqliteStore {
    /// This store's handle for `tenant`.
    pub fn scoped(&self, tenant: &TenantId) -> SqliteStore {
        let mut handle = self.clone();
        handle.tenant = tenant.to_string();
        handle
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    fn tenant_id(&self) -> TenantId {
        TenantId::new(&self.tenant).unwrap_or_default()
    }

    fn for_tenant(&self, tenant: &TenantId) -> Arc<dyn Store> {
        Arc::new(self.scoped(tenant))
    }

    async fn create_tenant(&self, tenant: &Tenant, record: &SettingsRecord) -> Result<(), StoreError> {
        const OP: &str = "cannot create the tenant";
        if tenant.name.is_default() {
            return Err(StoreError::TenantConflict(tenant.name.to_string()));
        }
        let json = serde_json::to_string(tenant).map_err(encode(OP))?;
        let entry = prepare(AuditBody::Settings(record.clone()), || OP.to_owned())?;
        let (name, created_at) = (tenant.name.to_string(), clamped_nanos(tenant.created_at));
        // Written through the new tenant's handle, so the record opens its own audit log.
        self.scoped(&tenant.name)
            .write(move |conn, ctx| {
                if read(conn, &name, OP)?.is_some() {
                    return Err(StoreError::TenantConflict(name.clone()));
                }
                conn.prepare_cached("INSERT INTO tenants (name, created_at, record_json) VALUES (?1, ?2, ?3)")
                    .and_then(|mut stmt| stmt.execute(params![name, created_at, json]))
                    .map_err(sql(OP))?;
                ctx.enqueue_audit(entry.clone());
                Ok(())
            })
            .await
    }

    async fn tenant(&self, name: &TenantId) -> Result<Option<Tenant>, StoreError> {
        const OP: &str = "cannot read the tenant";
        if name.is_default() {
            return Ok(Some(default_tenant_record()));
        }
        let name = name.to_string();
        self.blocking(move |s| s.with_conn(|conn| read(conn, &name, OP))).await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        const OP: &str = "cannot list the tenants";
        let mut all = vec![default_tenant_record()];
        let created = self
            .blocking(|s| {
                s.with_conn(|conn| {
                    let mut stmt = conn.prepare("SELECT record_json FROM tenants ORDER BY name").map_err(sql(OP))?;
                    let rows = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(sql(OP))?;
                    let mut out = Vec::new();
                    for row in rows {
                        out.push(serde_json::from_str::<Tenant>(&row.map_err(sql(OP))?).map_err(decode(OP))?);
                    }
                    Ok(out)
                })
            })
            .await?;
        all.extend(created);
        Ok(all)
    }
}
