//! [`TenantStore`]: the tenants of an installation, and a handle for each.

use std::sync::Arc;

use async_trait::async_trait;

use super::{SettingsRecord, Store, StoreError};
use crate::{Tenant, TenantId};

/// The tenants of one store. Every other concern of a handle is scoped to the handle's tenant
/// ([`TenantStore::tenant_id`]); a handle for another tenant shares the same connections.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// The tenant this handle reads and writes (default: the default tenant, for a store
    /// that has only it).
    fn tenant_id(&self) -> TenantId {
        TenantId::default()
    }

    /// A handle on the same store scoped to `tenant` (created or not: reading a tenant that was
    /// never created finds nothing; callers check [`TenantStore::tenant`] first).
    fn for_tenant(&self, tenant: &TenantId) -> Arc<dyn Store>;

    /// Records a new tenant, and `record` (a `tenant_created` settings record) in the new
    /// tenant's own audit log, in one step. [`StoreError::TenantConflict`] when it exists
    /// (the default tenant always does).
    async fn create_tenant(&self, tenant: &Tenant, record: &SettingsRecord) -> Result<(), StoreError>;

    /// The tenant named `name`, if it exists (the default tenant always does).
    async fn tenant(&self, name: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Every tenant, the default one first, then by name.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
}

/// The default tenant as listed by a store that never recorded it.
pub fn default_tenant_record() -> Tenant {
    Tenant {
        name: TenantId::default_tenant(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        created_by: "system".to_owned(),
        description: "the installation's first tenant".to_owned(),
    }
}
