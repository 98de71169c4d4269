//! Conformance case for documents.

use std::sync::Arc;

use remediation_core::{AuditBody, AuditFilter, DocumentWrite, SettingsRecord, Store, StoreError, Tenant, TenantId};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::{Subject, sequence_all};
use crate::{admin, fixed_time};

/// Concurrent writers in the compare-and-set check.
const WRITERS: u64 = 8;

fn note(event: &str, at: OffsetDateTime) -> SettingsRecord {
    SettingsRecord::by_actor(event, &admin(), at, "conformance".to_owned(), serde_json::Value::Null, json!({}))
}

fn put(
    collection: &str,
    id: &str,
    expected_revision: u64,
    body: serde_json::Value,
    event: Option<&str>,
) -> DocumentWrite {
    // Below a second, so a store that drops the fraction is caught.
    let at = fixed_time()
        + Duration::seconds(i64::try_from(expected_revision).unwrap_or(0))
        + Duration::nanoseconds(123_456_789);
    DocumentWrite {
        collection: collection.to_owned(),
        id: id.to_owned(),
        expected_revision,
        body,
        actor: "local:root".to_owned(),
        at,
        note: event.map(|event| note(event, at)),
    }
}

/// The `setting_event` of every sequenced settings record of the handle's tenant, in order.
async fn noted(store: &dyn Store) -> Vec<String> {
    sequence_all(store).await;
    let page = store.audit_page(&AuditFilter::default(), None, 1_000).await.expect("audit page");
    page.iter()
        .filter_map(|r| match &r.body {
            AuditBody::Settings(s) => Some(s.setting_event.clone()),
            _ => None,
        })
        .collect()
}

/// A document is created only when its expected revision is 0 (it gets revision 1; a second
/// create is `DocumentChanged` with `found` 1), read back as written, and changed only by
/// compare-and-set on its revision: a stale revision is `DocumentChanged`, changes neither the
/// body nor the audit log, and of N concurrent writers with the same revision exactly one
/// wins. A write's note is in the audit log after it, and the chain verifies. `documents(c)`
/// lists collection `c` only, by id. Another tenant's handle sees none of them and keeps its
/// own documents under the same collection and id.
pub async fn documents(subject: Subject) {
    let a = subject.store;
    assert!(a.documents("playbook").await.expect("list").is_empty());
    assert_eq!(a.document("playbook", "disable-user").await.expect("read"), None);

    // Create: expected revision 0, stored at 1.
    let first = put("playbook", "disable-user", 0, json!({"steps": ["suspend"], "n": 1}), Some("document_created"));
    let created = a.put_document(&first).await.expect("create");
    assert_eq!(
        (created.collection.as_str(), created.id.as_str(), created.revision, &created.body),
        ("playbook", "disable-user", 1, &first.body),
        "a new document is at revision 1"
    );
    assert_eq!((created.updated_by.as_str(), created.updated_at), ("local:root", first.at));
    assert_eq!(a.document("playbook", "disable-user").await.expect("read"), Some(created.clone()), "read as written");
    match a.put_document(&put("playbook", "disable-user", 0, json!({"again": true}), Some("created_twice"))).await {
        Err(StoreError::DocumentChanged { collection, id, expected: 0, found: 1 }) => {
            assert_eq!((collection.as_str(), id.as_str()), ("playbook", "disable-user"));
        }
        other => panic!("a second create of playbook disable-user must be DocumentChanged found 1, got {other:?}"),
    }
    assert_eq!(
        a.document("playbook", "disable-user").await.expect("read"),
        Some(created.clone()),
        "a refused create writes nothing"
    );
    let events = noted(a.as_ref()).await;
    assert_eq!(events.iter().filter(|e| *e == "document_created").count(), 1, "the create's note: {events:?}");
    assert!(!events.iter().any(|e| e == "created_twice"), "a refused create writes no note: {events:?}");

    // Update: a stale revision changes nothing, not even the audit log.
    let before = a.audit_page(&AuditFilter::default(), None, 1_000).await.expect("audit page").len();
    assert!(matches!(
        a.put_document(&put("playbook", "disable-user", 2, json!({"stale": true}), Some("stale_update"))).await,
        Err(StoreError::DocumentChanged { expected: 2, found: 1, .. })
    ));
    assert_eq!(
        a.document("playbook", "disable-user").await.expect("read"),
        Some(created.clone()),
        "a stale update leaves the body"
    );
    let events = noted(a.as_ref()).await;
    assert!(!events.iter().any(|e| e == "stale_update"), "a stale update writes no note: {events:?}");
    let after = a.audit_page(&AuditFilter::default(), None, 1_000).await.expect("audit page").len();
    assert_eq!(after, before, "a stale update appends no audit record");

    // Update with the stored revision: 2, and its note is in the log.
    let second =
        put("playbook", "disable-user", 1, json!({"steps": ["suspend", "revoke"], "n": 2}), Some("document_updated"));
    let updated = a.put_document(&second).await.expect("update");
    assert_eq!((updated.revision, &updated.body, updated.updated_at), (2, &second.body, second.at));
    assert_eq!(a.document("playbook", "disable-user").await.expect("read"), Some(updated.clone()));
    let events = noted(a.as_ref()).await;
    assert!(events.iter().any(|e| e == "document_updated"), "the update's note is audited: {events:?}");
    assert!(a.verify_audit().await.expect("verify").is_intact(), "the chain verifies with the notes");

    // Of N writers with revision 2, one wins; the losers see revision 3.
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let a = Arc::clone(&a);
            tokio::spawn(async move {
                a.put_document(&put("playbook", "disable-user", 2, json!({"writer": i}), Some("document_raced"))).await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(d) => {
                won += 1;
                assert_eq!(d.revision, 3);
            }
            Err(StoreError::DocumentChanged { expected: 2, found: 3, .. }) => {}
            Err(other) => panic!("a losing writer sees DocumentChanged found 3, got {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer wins");
    let events = noted(a.as_ref()).await;
    assert_eq!(events.iter().filter(|e| *e == "document_raced").count(), 1, "only the winner's note: {events:?}");

    // A write without a note writes no audit record.
    let quiet = a.audit_page(&AuditFilter::default(), None, 1_000).await.expect("audit page").len();
    a.put_document(&put("playbook", "add-mfa", 0, json!({"steps": []}), None)).await.expect("create");
    sequence_all(a.as_ref()).await;
    assert_eq!(a.audit_page(&AuditFilter::default(), None, 1_000).await.expect("audit page").len(), quiet);

    // Listing: one collection, by id.
    a.put_document(&put("playbook", "0-first", 0, json!({}), None)).await.expect("create");
    a.put_document(&put("playbook_run", "disable-user", 0, json!({"step": 0}), None)).await.expect("create");
    a.put_document(&put("identity_link", "alice@example.com", 0, json!({"accounts": []}), None)).await.expect("create");
    let ids: Vec<String> = a.documents("playbook").await.expect("list").into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["0-first", "add-mfa", "disable-user"], "only the collection, by id");
    let runs = a.documents("playbook_run").await.expect("list");
    assert_eq!((runs.len(), runs[0].collection.as_str(), runs[0].revision), (1, "playbook_run", 1));
    assert!(a.documents("nothing").await.expect("list").is_empty());
    assert_eq!(a.document("playbook_run", "add-mfa").await.expect("read"), None, "ids are per collection");

    // Another tenant: none of them, and its own document under the same collection and id.
    let acme = TenantId::new("acme").expect("name");
    let tenant = Tenant {
        name: acme.clone(),
        created_at: fixed_time(),
        created_by: "local:root".to_owned(),
        description: String::new(),
    };
    a.create_tenant(&tenant, &note("tenant_created", fixed_time())).await.expect("create tenant");
    let b = a.for_tenant(&acme);
    for collection in ["playbook", "playbook_run", "identity_link"] {
        assert!(b.documents(collection).await.expect("list").is_empty(), "B lists none of A's {collection} documents");
    }
    assert_eq!(b.document("playbook", "disable-user").await.expect("read"), None, "B cannot read A's document");
    match b.put_document(&put("playbook", "disable-user", 3, json!({"from": "b"}), None)).await {
        Err(StoreError::DocumentChanged { expected: 3, found: 0, .. }) => {}
        other => panic!("B cannot update A's document (found 0 in B), got {other:?}"),
    }
    let theirs = put("playbook", "disable-user", 0, json!({"tenant": "acme"}), Some("acme_document_created"));
    let stored = b.put_document(&theirs).await.expect("B creates its own");
    assert_eq!((stored.revision, &stored.body), (1, &theirs.body));
    assert_eq!(b.document("playbook", "disable-user").await.expect("read"), Some(stored));
    let ids: Vec<String> = b.documents("playbook").await.expect("list").into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["disable-user"]);
    let mine = a.document("playbook", "disable-user").await.expect("read").expect("A's document");
    assert_eq!(mine.revision, 3, "B's write leaves A's document");
    assert_ne!(mine.body, theirs.body);
    let b_events = noted(b.as_ref()).await;
    assert!(b_events.iter().any(|e| e == "acme_document_created"), "B's note is on B's chain: {b_events:?}");
    assert!(!b_events.iter().any(|e| e.starts_with("document_")), "none of A's notes: {b_events:?}");
    let a_events = noted(a.as_ref()).await;
    assert!(!a_events.iter().any(|e| e == "acme_document_created"), "B's note is not on A's chain: {a_events:?}");
    assert!(a.verify_audit().await.expect("verify").is_intact());
    assert!(b.verify_audit().await.expect("verify").is_intact());
}
