//! [`LimitStore`]: blast-radius windows, read without reserving.
//!
//! Slots are reserved only by [`super::ActionStore::begin_execution`], in the transaction that
//! starts the execution.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{LimitReached, SlotRequest, StoreError};

/// Reads of the limit slots.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// The first full window among `slots` at `at`, without reserving anything (dry runs),
    /// in one read snapshot. Each window costs one count on an index on (key, time), the same
    /// however many slots are stored.
    async fn check_limits(&self, slots: &[SlotRequest], at: OffsetDateTime)
    -> Result<Option<LimitReached>, StoreError>;

    /// Every limit slot reserved at or after `since`, as (key, instant), oldest first.
    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError>;
}

/// What separates a tenant's name from a limit key in the stored key.
const TENANT_SEPARATOR: char = '\u{1f}';

/// The key under which `tenant`'s limit window `key` is stored, so no window is shared between
/// tenants: the key itself for the default tenant (as stored before there were tenants), else
/// the tenant's name, U+001F and the key. A U+001F inside `key` is replaced, so no key of one
/// tenant can read as another's.
pub fn tenant_limit_key(tenant: &str, key: &str) -> String {
    let key = key.replace(TENANT_SEPARATOR, "\u{fffd}");
    if tenant == crate::TenantId::DEFAULT { key } else { format!("{tenant}{TENANT_SEPARATOR}{key}") }
}

/// The limit key a stored key names when it is `tenant`'s; `None` when it is another tenant's.
pub fn tenant_limit_key_of<'a>(tenant: &str, stored: &'a str) -> Option<&'a str> {
    match stored.split_once(TENANT_SEPARATOR) {
        None => (tenant == crate::TenantId::DEFAULT).then_some(stored),
        Some((owner, key)) => (owner == tenant).then_some(key),
    }
}

/// `slots` with their keys as `tenant` stores them ([`tenant_limit_key`]).
pub fn tenant_slots(tenant: &str, slots: &[super::SlotRequest]) -> Vec<super::SlotRequest> {
    slots.iter().map(|s| super::SlotRequest { key: tenant_limit_key(tenant, &s.key), ..s.clone() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_keys_never_meet() {
        assert_eq!(tenant_limit_key("default", "global"), "global");
        let a = tenant_limit_key("a", "global");
        assert_ne!(a, "global");
        assert_eq!(tenant_limit_key_of("a", &a), Some("global"));
        assert_eq!(tenant_limit_key_of("b", &a), None);
        assert_eq!(tenant_limit_key_of("default", &a), None);
        assert_eq!(tenant_limit_key_of("a", "global"), None);
        // A key crafted to look like another tenant's stays the default tenant's own.
        let crafted = tenant_limit_key("default", "a\u{1f}global");
        assert_eq!(tenant_limit_key_of("a", &crafted), None);
        assert_eq!(tenant_limit_key_of("default", &crafted), Some(crafted.as_str()));
    }
}
