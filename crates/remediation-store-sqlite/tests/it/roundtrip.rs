//! What is written can be read back, identical, after the store is closed and reopened.

use std::error::Error as _;

use remediation_core::store::prelude::*;
use remediation_core::{
    ActionFilter, BeginOutcome, DetailUpdate, PageRequest, Snapshot, State, StateChange, StoreError,
};
use remediation_store_sqlite::SqliteStore;

use crate::support::{change, count, create, detail, detail_on, id, record, t, temp_store};

#[tokio::test]
async fn everything_survives_reopening() {
    let (_dir, path, store) = temp_store();
    let created = create(&store, 1, State::PendingApproval, t(0)).await;
    let mut approve = change(1, State::PendingApproval, State::Approved, "approve", t(10));
    approve.record.decided_by = Some("local:bob".to_owned());
    approve.record.comment = Some("looks right".to_owned());
    let approved = store.apply(&approve).await.expect("approve");
    assert_eq!(approved.state, State::Approved);
    assert_eq!(approved.updated_at, t(10));
    assert_eq!(approved.created_at, created.action.created_at);

    let before = Snapshot::new(serde_json::json!({"member": true}));
    let begin = StateChange {
        update: DetailUpdate { before: Some(before.clone()), last_error: Some(None), ..DetailUpdate::default() },
        ..change(1, State::Approved, State::Executing, "begin_execution", t(20))
    };
    let slots = [remediation_core::SlotRequest { key: "global".to_owned(), limit: 10, window_secs: 3600 }];
    assert!(matches!(store.begin_execution(&begin, &slots, true).await.expect("begin"), BeginOutcome::Started(_)));

    let after = Snapshot::new(serde_json::json!({"member": false}));
    let mut done = StateChange {
        update: DetailUpdate {
            after: Some(after.clone()),
            rollback_expires_at: Some(t(86_400)),
            ..DetailUpdate::default()
        },
        ..change(1, State::Executing, State::Completed, "execution_succeeded", t(30))
    };
    done.record.request_ids = vec!["req-1".to_owned()];
    done.record.rollback_expires_at = Some(t(86_400));
    store.apply(&done).await.expect("complete");
    create(&store, 2, State::Suggested, t(5)).await;

    let got = store.get(id(1)).await.expect("get");
    assert_eq!(got.action.state, State::Completed);
    assert_eq!(got.action.updated_at, t(30));
    assert_eq!(got.plan, created.plan);
    assert_eq!(got.before, Some(before));
    assert_eq!(got.after, Some(after));
    assert_eq!(got.rollback_expires_at, Some(t(86_400)));
    assert_eq!(got.last_error, None);

    let details = (store.get(id(1)).await.expect("get"), store.get(id(2)).await.expect("get"));
    let list = store.list(&ActionFilter::default(), &PageRequest::first(1000)).await.expect("list").items;
    let transitions = store.transitions(id(1)).await.expect("transitions");
    assert_eq!(
        transitions,
        vec![record(1, None, State::PendingApproval, "suggest", t(0)), approve.record, begin.record, done.record]
    );
    let audit = store.audit_records(None).expect("audit");
    assert_eq!(audit.len(), 5);
    assert_eq!(audit.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(audit.iter().filter_map(|r| r.body.transition().cloned()).take(4).collect::<Vec<_>>(), transitions);
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!((store.get(id(1)).await.expect("get"), store.get(id(2)).await.expect("get")), details);
    assert_eq!(store.list(&ActionFilter::default(), &PageRequest::first(1000)).await.expect("list").items, list);
    assert_eq!(store.transitions(id(1)).await.expect("transitions"), transitions);
    assert_eq!(store.audit_records(None).expect("audit"), audit);
    let report = store.verify_audit().expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 5);
    assert_eq!(report.head, Some(audit[4].hash.clone()));
    assert_eq!(count(&path, "limit_slots"), 1);
}

#[tokio::test]
async fn audit_records_since() {
    let store = SqliteStore::open_in_memory().expect("open");
    create(&store, 1, State::PendingApproval, t(0)).await;
    store.apply(&change(1, State::PendingApproval, State::Approved, "approve", t(10))).await.expect("approve");
    store.apply(&change(1, State::Approved, State::Cancelled, "cancel", t(20))).await.expect("cancel");
    let seqs = |records: Vec<remediation_audit::AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.audit_records(Some(t(10))).expect("audit")), [2, 3]);
    assert_eq!(seqs(store.audit_records(Some(t(11))).expect("audit")), [3]);
    assert_eq!(seqs(store.audit_records(Some(t(21))).expect("audit")), Vec::<u64>::new());
    assert_eq!(seqs(store.audit_records(None).expect("audit")), [1, 2, 3]);
}

#[tokio::test]
async fn last_error_is_set_kept_and_cleared() {
    let store = SqliteStore::open_in_memory().expect("open");
    create(&store, 1, State::Executing, t(0)).await;
    let fail = StateChange {
        update: DetailUpdate { last_error: Some(Some("provider refused".to_owned())), ..DetailUpdate::default() },
        ..change(1, State::Executing, State::Failed, "execution_failed", t(1))
    };
    store.apply(&fail).await.expect("fail");
    assert_eq!(store.get(id(1)).await.expect("get").last_error.as_deref(), Some("provider refused"));
    store.apply(&change(1, State::Failed, State::RollingBack, "rollback", t(2))).await.expect("rollback");
    assert_eq!(store.get(id(1)).await.expect("get").last_error.as_deref(), Some("provider refused"));
    let clear = StateChange {
        update: DetailUpdate { last_error: Some(None), ..DetailUpdate::default() },
        ..change(1, State::RollingBack, State::RolledBack, "rollback_succeeded", t(3))
    };
    store.apply(&clear).await.expect("clear");
    assert_eq!(store.get(id(1)).await.expect("get").last_error, None);
}

#[tokio::test]
async fn list_orders_by_creation_and_filters() {
    let store = SqliteStore::open_in_memory().expect("open");
    let rows = [
        (1, State::PendingApproval, 30, "okta"),
        (2, State::Approved, 10, "sandbox"),
        (3, State::PendingApproval, 20, "sandbox"),
        (4, State::Suggested, 0, "okta"),
    ];
    for (n, state, at, connector) in rows {
        let d = detail_on(n, state, t(at), connector);
        let mut r = record(n, None, state, "suggest", t(at));
        r.connector = connector.to_owned();
        store.create_action(&d, &r).await.expect("create");
    }
    #[track_caller]
    fn ids(actions: Vec<remediation_core::Action>) -> Vec<remediation_core::ActionId> {
        actions.into_iter().map(|a| a.id).collect()
    }
    let list = |state: Option<State>, connector: Option<&str>| {
        let filter = ActionFilter { state, connector: connector.map(str::to_owned), ..ActionFilter::default() };
        let store = &store;
        async move { ids(store.list(&filter, &PageRequest::first(1000)).await.expect("list").items) }
    };
    assert_eq!(list(None, None).await, [id(4), id(2), id(3), id(1)]);
    assert_eq!(list(Some(State::PendingApproval), None).await, [id(3), id(1)]);
    assert_eq!(list(None, Some("okta")).await, [id(4), id(1)]);
    assert_eq!(list(Some(State::PendingApproval), Some("sandbox")).await, [id(3)]);
    assert_eq!(list(Some(State::Completed), None).await, []);
}

#[tokio::test]
async fn unknown_action_is_not_found() {
    let store = SqliteStore::open_in_memory().expect("open");
    assert!(matches!(store.get(id(9)).await, Err(StoreError::NotFound(i)) if i == id(9)));
    assert!(matches!(store.transitions(id(9)).await, Err(StoreError::NotFound(_))));
    let err = store.apply(&change(9, State::Approved, State::Executing, "begin_execution", t(0))).await;
    assert!(matches!(err, Err(StoreError::NotFound(_))));
    assert!(store.verify_audit().expect("verify").records == 0);
}

#[tokio::test]
async fn state_conflict_writes_nothing() {
    let (_dir, path, store) = temp_store();
    let created = create(&store, 1, State::PendingApproval, t(0)).await;
    let audit_before = count(&path, "audit");
    let stale = StateChange {
        update: DetailUpdate { last_error: Some(Some("x".to_owned())), ..DetailUpdate::default() },
        ..change(1, State::Approved, State::Executing, "begin_execution", t(1))
    };
    let err = store.apply(&stale).await.expect_err("conflict");
    match &err {
        StoreError::StateConflict { id: i, expected, actual } => {
            assert_eq!((*i, expected.as_str(), *actual), (id(1), "approved", State::PendingApproval));
        }
        other => panic!("expected a state conflict, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("action {} is pending_approval, not approved: another process changed it; read it again", id(1))
    );
    let slots = [remediation_core::SlotRequest { key: "global".to_owned(), limit: 10, window_secs: 60 }];
    assert!(matches!(store.begin_execution(&stale, &slots, true).await, Err(StoreError::StateConflict { .. })));
    assert_eq!(count(&path, "audit"), audit_before);
    assert_eq!(count(&path, "limit_slots"), 0);
    let mut expected = created;
    expected.action.handle = Some(1);
    assert_eq!(store.get(id(1)).await.expect("get"), expected, "nothing changed but the handle the store gave");
}

#[tokio::test]
async fn bad_first_records_are_refused_and_write_nothing() {
    let (_dir, path, store) = temp_store();
    create(&store, 1, State::PendingApproval, t(0)).await;

    #[track_caller]
    fn check(result: Result<Option<u64>, StoreError>, message: &str, reason: &str) {
        let err = result.expect_err("refused");
        assert_eq!(err.to_string(), format!("store failure: {message}"));
        let source = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(source.contains(reason), "{source:?} should contain {reason:?}");
    }
    let d = detail(1, State::PendingApproval, t(0));
    check(
        store.create_action(&d, &record(1, None, State::PendingApproval, "suggest", t(0))).await,
        &format!("cannot create action {}: an action with this id already exists", id(1)),
        "UNIQUE constraint failed",
    );
    let d = detail(2, State::PendingApproval, t(0));
    check(
        store.create_action(&d, &record(2, Some(State::Suggested), State::PendingApproval, "suggest", t(0))).await,
        &format!("cannot create action {}", id(2)),
        "must have no `from` state, but it has suggested",
    );
    check(
        store.create_action(&d, &record(3, None, State::PendingApproval, "suggest", t(0))).await,
        &format!("cannot create action {}", id(2)),
        "the transition is for action",
    );
    check(
        store.create_action(&d, &record(2, None, State::Approved, "suggest", t(0))).await,
        &format!("cannot create action {}", id(2)),
        "the new action is pending_approval but its first transition leads to approved",
    );
    assert_eq!(count(&path, "actions"), 1);
    assert_eq!(count(&path, "audit"), 1);
}

#[tokio::test]
async fn a_requested_rollback_and_the_restored_state_survive_reopening() {
    let (_dir, path, store) = temp_store();
    create(&store, 1, State::Completed, t(0)).await;
    let request = change(1, State::Completed, State::RollbackRequested, "request_rollback", t(10));
    assert_eq!(store.apply(&request).await.expect("request").state, State::RollbackRequested);
    let filter = ActionFilter { state: Some(State::RollbackRequested), ..ActionFilter::default() };
    assert_eq!(store.list(&filter, &PageRequest::first(1000)).await.expect("list").items.len(), 1);
    store.apply(&change(1, State::RollbackRequested, State::RollingBack, "approve", t(20))).await.expect("approve");
    let restored = Snapshot::new(serde_json::json!({"member": true}));
    let done = StateChange {
        update: DetailUpdate { restored: Some(restored.clone()), ..DetailUpdate::default() },
        ..change(1, State::RollingBack, State::RolledBack, "rollback_succeeded", t(30))
    };
    store.apply(&done).await.expect("restored");
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    let got = store.get(id(1)).await.expect("get");
    assert_eq!(got.action.state, State::RolledBack);
    assert_eq!(got.restored, Some(restored));
    assert_eq!(got.after, None, "a restore never overwrites the execution's after-state");
    let events: Vec<String> = store.transitions(id(1)).await.expect("t").into_iter().map(|r| r.event).collect();
    assert_eq!(events, ["suggest", "request_rollback", "approve", "rollback_succeeded"]);
}

#[tokio::test]
async fn a_detail_stored_before_restores_were_kept_apart_still_reads() {
    let (_dir, path, store) = temp_store();
    create(&store, 1, State::Completed, t(0)).await;
    drop(store);
    // Rows written by earlier versions have no `restored` key at all.
    let conn = crate::support::raw(&path);
    let json: String =
        conn.query_row("SELECT detail_json FROM actions", [], |r| r.get(0)).expect("read the stored detail");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("json");
    value.as_object_mut().expect("object").remove("restored").expect("the field is written today");
    conn.execute("UPDATE actions SET detail_json = ?1", [value.to_string()]).expect("rewrite");
    drop(conn);
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.get(id(1)).await.expect("old row reads").restored, None);
}
