//! The writer commits queued state changes together: fewer transactions than requests, and a
//! request that fails rolls back only itself.

use remediation_core::store::prelude::*;
use remediation_core::{State, StoreError};

use crate::support::{change, count, create, raw, t, temp_keyed_store};

const N: u32 = 20;

/// Applies every change of `changes` concurrently while another connection holds the write
/// lock, so they queue behind it; returns each result and how many transactions committed them.
async fn queued_applies(
    store: &remediation_store_sqlite::SqliteStore,
    path: &std::path::Path,
    changes: Vec<remediation_core::StateChange>,
) -> (Vec<Result<remediation_core::Action, StoreError>>, u64) {
    let lock = raw(path);
    lock.execute_batch("BEGIN IMMEDIATE").expect("hold the write lock");
    let before = store.writer_stats().commits;
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move { store.apply(&c).await })
        })
        .collect();
    // Every spawned task runs up to its first await (the request is queued) before this task
    // runs again.
    tokio::task::yield_now().await;
    lock.execute_batch("COMMIT").expect("release the write lock");
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    (results, store.writer_stats().commits - before)
}

#[tokio::test]
async fn concurrent_applies_share_transactions() {
    let (_dir, path, store) = temp_keyed_store();
    for n in 0..N {
        create(&store, n, State::Suggested, t(0)).await;
    }
    let changes = (0..N).map(|n| change(n, State::Suggested, State::Approved, "approve", t(1))).collect();
    let (results, commits) = queued_applies(&store, &path, changes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(commits < u64::from(N), "{N} applies took {commits} transactions");
    let approved: i64 =
        raw(&path).query_row("SELECT COUNT(*) FROM actions WHERE state = 'approved'", [], |r| r.get(0)).expect("count");
    assert_eq!(approved, i64::from(N));
    // Each change with its audit record (holding the transition); the chain and checkpoint hold.
    assert_eq!(count(&path, "audit"), i64::from(2 * N));
    assert_eq!(count(&path, "audit_pending"), 0);
    assert!(AuditLog::verify_audit(&store).await.expect("verify").is_intact());
}

#[tokio::test]
async fn a_failing_request_rolls_back_only_itself() {
    let (_dir, path, store) = temp_keyed_store();
    for n in 0..N {
        create(&store, n, State::Suggested, t(0)).await;
    }
    // Action 7 is asked to move from a state it is not in.
    let changes = (0..N)
        .map(|n| {
            let from = if n == 7 { State::Approved } else { State::Suggested };
            change(n, from, State::Approved, "approve", t(1))
        })
        .collect();
    let (results, commits) = queued_applies(&store, &path, changes).await;
    assert!(commits < u64::from(N), "{N} applies took {commits} transactions");
    for (n, result) in (0..N).zip(&results) {
        if n == 7 {
            assert!(matches!(result, Err(StoreError::StateConflict { .. })), "{result:?}");
        } else {
            assert!(result.is_ok(), "action {n}: {result:?}");
        }
    }
    let approved: i64 =
        raw(&path).query_row("SELECT COUNT(*) FROM actions WHERE state = 'approved'", [], |r| r.get(0)).expect("count");
    assert_eq!(approved, i64::from(N - 1));
    assert_eq!(count(&path, "audit"), i64::from(2 * N - 1));
    assert!(AuditLog::verify_audit(&store).await.expect("verify").is_intact());
}

#[tokio::test]
async fn a_request_failing_after_its_audit_entry_drops_the_entry_too() {
    let (_dir, path, store) = temp_keyed_store();
    for n in 0..N {
        create(&store, n, State::Suggested, t(0)).await;
    }
    // Action 7's change fails on its last write (clearing the lease), after its audit entry
    // was queued for the sequencer.
    raw(&path)
        .execute_batch(&format!(
            "CREATE TRIGGER refuse_7 BEFORE UPDATE OF lease_holder ON actions WHEN OLD.id = '{}'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            crate::support::id(7)
        ))
        .expect("create the trigger");
    let changes = (0..N).map(|n| change(n, State::Suggested, State::Approved, "approve", t(1))).collect();
    let (results, commits) = queued_applies(&store, &path, changes).await;
    assert!(commits < u64::from(N), "{N} applies took {commits} transactions");
    for (n, result) in (0..N).zip(&results) {
        assert_eq!(result.is_ok(), n != 7, "action {n}: {result:?}");
    }
    assert_eq!(count(&path, "audit"), i64::from(2 * N - 1));
    let audited_7: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM audit WHERE action_id = ?1", [crate::support::id(7).to_string()], |r| r.get(0))
        .expect("count");
    assert_eq!(audited_7, 1, "only action 7's creation is audited");
    assert!(AuditLog::verify_audit(&store).await.expect("verify").is_intact());
}

#[tokio::test]
async fn entries_an_older_version_left_pending_are_sealed_first() {
    let (_dir, path, store) = temp_keyed_store();
    create(&store, 0, State::Suggested, t(0)).await;
    create(&store, 1, State::Suggested, t(0)).await;
    // An older version queued action 1's approval in `audit_pending`.
    let left = remediation_core::AuditBody::Transition(crate::support::record(
        1,
        Some(State::Suggested),
        State::Approved,
        "approve",
        t(1),
    ));
    raw(&path)
        .execute(
            "INSERT INTO audit_pending (tenant, body_json) VALUES ('default', ?1)",
            [serde_json::to_string(&left).expect("json")],
        )
        .expect("insert the pending entry");
    store.apply(&change(0, State::Suggested, State::Approved, "approve", t(2))).await.expect("apply");
    assert_eq!(count(&path, "audit_pending"), 0);
    let order: Vec<String> = {
        let conn = raw(&path);
        let mut stmt = conn.prepare("SELECT action_id FROM audit WHERE seq > 2 ORDER BY seq").expect("prepare");
        stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    assert_eq!(order, [crate::support::id(1).to_string(), crate::support::id(0).to_string()]);
    assert!(AuditLog::verify_audit(&store).await.expect("verify").is_intact());
}
