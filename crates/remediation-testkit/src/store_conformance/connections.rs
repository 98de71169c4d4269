//! Conformance case for managed connections.

use std::sync::Arc;

use remediation_core::store::{ConnectionHealth, ConnectionScope, ManagedConnection};
use remediation_core::{AuditFilter, StoreError};
use serde_json::json;
use time::Duration;

use super::Subject;
use crate::{admin, fixed_time};

/// Concurrent updaters in the compare-and-set check.
const UPDATERS: u64 = 8;

/// A connection as the conformance case stores it, with a recognisable sealed blob.
pub fn managed_connection(id: &str) -> ManagedConnection {
    ManagedConnection {
        id: id.to_owned(),
        type_name: "scim".to_owned(),
        settings: json!({"base_url": "https://scim.example.com", "token": {"sealed": "token"}}),
        secrets: Some(json!({"version": 1, "kid": "0badc0de", "ciphertext": "SEALED-CONFORMANCE-BLOB"})),
        secret_names: vec!["token".to_owned()],
        scope: ConnectionScope { domains: vec!["example.com".to_owned()], accounts: Vec::new() },
        enabled: true,
        revision: 7,
        created_by: "local:root".to_owned(),
        created_at: fixed_time(),
        updated_at: fixed_time(),
        health: None,
    }
}

/// A connection is created at revision 1 (a second of its id is `ConnectionConflict`), read
/// back as stored, changed only by compare-and-set on its revision (of N concurrent updaters
/// with the same revision exactly one wins; a stale revision is `ConnectionChanged` and writes
/// nothing), its health recorded without moving either revision, rewrapped by compare-and-set
/// across tenants, and deleted by compare-and-set. The tenant's connections revision moves
/// with every change. Every change is audited (created, updated, disabled, enabled, rewrapped,
/// deleted), and no audit record holds the sealed blob.
pub async fn connections(subject: Subject) {
    let store = subject.store;
    let actor = admin();
    let tenant = store.connection_tenant();
    let r0 = store.connections_revision().await.expect("revision");
    assert!(store.connections().await.expect("list").is_empty());

    let created = store.create_connection(&managed_connection("scim-eu"), &actor).await.expect("create");
    assert_eq!(created.revision, 1, "a new connection is at revision 1");
    assert_eq!(store.connection("scim-eu").await.expect("read"), Some(created.clone()));
    let r1 = store.connections_revision().await.expect("revision");
    assert_ne!(r1, r0, "a create moves the connections revision");
    match store.create_connection(&managed_connection("scim-eu"), &actor).await {
        Err(StoreError::ConnectionConflict { .. }) => {}
        other => panic!("a second connection scim-eu must be refused, got {other:?}"),
    }
    assert_eq!(store.connections_revision().await.expect("revision"), r1, "a refused create changes nothing");
    store.create_connection(&managed_connection("okta-us"), &actor).await.expect("create");
    let ids: Vec<String> = store.connections().await.expect("list").into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["okta-us", "scim-eu"], "listed by id");
    assert_eq!(store.connection("nope").await.expect("read"), None);

    // Compare-and-set: of N updaters with revision 1, one wins.
    let tasks: Vec<_> = (0..UPDATERS)
        .map(|i| {
            let (store, actor) = (Arc::clone(&store), actor.clone());
            tokio::spawn(async move {
                let mut new = managed_connection("scim-eu");
                new.settings = json!({"base_url": format!("https://scim{i}.example.com")});
                new.updated_at = fixed_time() + Duration::seconds(1);
                store.update_connection("scim-eu", 1, &new, &actor).await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(c) => {
                won += 1;
                assert_eq!(c.revision, 2);
            }
            Err(StoreError::ConnectionChanged { expected: 1, found: 2, .. }) => {}
            Err(other) => panic!("a losing updater sees ConnectionChanged, got {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one updater wins");
    let stored = store.connection("scim-eu").await.expect("read").expect("stored");
    assert_eq!((stored.revision, stored.created_by.as_str(), stored.created_at), (2, "local:root", fixed_time()));
    let r2 = store.connections_revision().await.expect("revision");
    assert_ne!(r2, r1, "an update moves the connections revision");
    assert!(matches!(
        store.update_connection("missing", 1, &managed_connection("missing"), &actor).await,
        Err(StoreError::ConnectionNotFound(_))
    ));

    // Health moves neither revision.
    let health = ConnectionHealth {
        checked_at: fixed_time() + Duration::seconds(2),
        healthy: false,
        detail: "401 from the provider".to_owned(),
        missing_permissions: vec!["users:write".to_owned()],
    };
    store.record_connection_health("scim-eu", &health).await.expect("health");
    let checked = store.connection("scim-eu").await.expect("read").expect("stored");
    assert_eq!((checked.revision, checked.health.as_ref()), (2, Some(&health)));
    assert_eq!(store.connections_revision().await.expect("revision"), r2, "health does not move the revision");

    // Disable, enable: compare-and-set, audited as such; the health is kept.
    let mut off = checked.clone();
    off.enabled = false;
    off.health = None;
    let off = store.update_connection("scim-eu", 2, &off, &actor).await.expect("disable");
    assert_eq!((off.revision, off.enabled, off.health.as_ref()), (3, false, Some(&health)));
    let mut on = off.clone();
    on.enabled = true;
    store.update_connection("scim-eu", 3, &on, &actor).await.expect("enable");

    // Rotation: every sealed connection, then compare-and-set on the revision.
    let sealed = store.all_sealed_connections().await.expect("sealed");
    let eu = sealed.iter().find(|s| s.id == "scim-eu").expect("scim-eu has secrets");
    assert_eq!((eu.tenant.as_str(), eu.revision), (tenant.as_str(), 4));
    let rewrapped = json!({"version": 1, "kid": "c0ffee00", "ciphertext": "SEALED-CONFORMANCE-BLOB"});
    let before = store.connections_revision().await.expect("revision");
    assert!(matches!(
        store.replace_sealed(&tenant, "scim-eu", 3, &rewrapped, &actor, fixed_time()).await,
        Err(StoreError::ConnectionChanged { expected: 3, found: 4, .. })
    ));
    let revision = store.replace_sealed(&tenant, "scim-eu", 4, &rewrapped, &actor, fixed_time()).await.expect("rewrap");
    assert_eq!(revision, 5);
    let after = store.connection("scim-eu").await.expect("read").expect("stored");
    assert_eq!((after.revision, after.secrets.as_ref()), (5, Some(&rewrapped)));
    assert_ne!(store.connections_revision().await.expect("revision"), before, "a rewrap moves the revision");

    // Delete: compare-and-set.
    assert!(matches!(
        store.delete_connection("scim-eu", 4, &actor, fixed_time()).await,
        Err(StoreError::ConnectionChanged { .. })
    ));
    assert!(store.connection("scim-eu").await.expect("read").is_some(), "a refused delete deletes nothing");
    let before = store.connections_revision().await.expect("revision");
    store.delete_connection("scim-eu", 5, &actor, fixed_time()).await.expect("delete");
    assert_eq!(store.connection("scim-eu").await.expect("read"), None);
    assert_ne!(store.connections_revision().await.expect("revision"), before, "a delete moves the revision");

    store.sequence_pending().await.expect("sequence");
    let records = store.audit_page(&AuditFilter::default(), None, 1_000).await.expect("audit");
    let text = serde_json::to_string(&records).expect("json");
    for event in [
        "connection_created",
        "connection_updated",
        "connection_disabled",
        "connection_enabled",
        "connection_secrets_rewrapped",
        "connection_deleted",
    ] {
        assert!(text.contains(&format!("\"{event}\"")), "{event} is audited");
    }
    assert!(!text.contains("SEALED-CONFORMANCE-BLOB"), "no audit record holds the sealed secrets");
    assert!(store.verify_audit().await.expect("verify").is_intact());
}
