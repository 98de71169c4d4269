//! Tenants (the `tenants` table, schema version 8): each created tenant's record, kept as
//! JSON. A handle for another tenant shares this one's pool and sequencer.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::store::{TenantStore, default_tenant_record};
use remediation_core::{SettingsRecord, Store, StoreError, Tenant, TenantId};

use crate::store::{PostgresStore, clamped_nanos, decode, encode, insert_pending, pg};

fn parse(json: &str, op: &str) -> Result<Tenant, StoreError> {
    serde_json::from_str(json).map_err(decode(op))
}

#[async_trait]
impl TenantStore for PostgresStore {
    fn tenant_id(&self) -> TenantId {
        TenantId::new(self.tenant()).unwrap_or_default()
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let inserted = tx
            .execute(
                "INSERT INTO tenants (name, created_at, record_json) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                &[&tenant.name.as_str(), &clamped_nanos(tenant.created_at), &json],
            )
            .await
            .map_err(pg(OP))?;
        if inserted == 0 {
            return Err(StoreError::TenantConflict(tenant.name.to_string()));
        }
        // The record opens the new tenant's own audit log.
        insert_pending(&tx, tenant.name.as_str(), &AuditBody::Settings(record.clone()), OP).await?;
        self.commit(tx, OP).await
    }

    async fn tenant(&self, name: &TenantId) -> Result<Option<Tenant>, StoreError> {
        const OP: &str = "cannot read the tenant";
        if name.is_default() {
            return Ok(Some(default_tenant_record()));
        }
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT record_json FROM tenants WHERE name = $1").await.map_err(pg(OP))?;
        let row = client.query_opt(&stmt, &[&name.as_str()]).await.map_err(pg(OP))?;
        row.map(|row| parse(row.get(0), OP)).transpose()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        const OP: &str = "cannot list the tenants";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT record_json FROM tenants ORDER BY name COLLATE \"C\"")
            .await
            .map_err(pg(OP))?;
        let mut all = vec![default_tenant_record()];
        for row in client.query(&stmt, &[]).await.map_err(pg(OP))? {
            all.push(parse(row.get(0), OP)?);
        }
        Ok(all)
    }
}
