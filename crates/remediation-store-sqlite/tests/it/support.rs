//! Builders of actions, transitions and stores for the tests (kept here rather than in the
//! testkit crate, which is written concurrently).

use std::path::{Path, PathBuf};

use remediation_audit::AuditKey;
use remediation_core::store::prelude::*;
use remediation_core::{
    Action, ActionDetail, ActionId, ActionKind, DetailUpdate, Mode, Plan, PlannedChange, Reversibility, Snapshot,
    State, StateChange, Target, TransitionRecord,
};
use remediation_store_sqlite::SqliteStore;
use tempfile::TempDir;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A fixed instant plus `secs` seconds.
pub(crate) fn t(secs: i64) -> OffsetDateTime {
    datetime!(2026-03-01 00:00 UTC) + Duration::seconds(secs)
}

/// A deterministic action id.
pub(crate) fn id(n: u32) -> ActionId {
    ActionId(uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(n)))
}

/// A store on a fresh file in a fresh directory.
pub(crate) fn temp_store() -> (TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("remediation.db");
    let store = SqliteStore::open(&path).expect("open store");
    (dir, path, store)
}

/// The audit key of the tests ([`key`] as hex).
pub(crate) const KEY_HEX: &str = "8f2c4d6e8a0b1c3d5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5";

/// The audit key of the tests.
pub(crate) fn key() -> AuditKey {
    AuditKey::from_hex(KEY_HEX).expect("key")
}

/// A store on a fresh file in a fresh directory, opened with [`key`].
pub(crate) fn temp_keyed_store() -> (TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("remediation.db");
    let store = SqliteStore::open_with(&path, Some(key())).expect("open store");
    (dir, path, store)
}

/// A raw connection to the same file, as an attacker (or a curious admin) would have.
pub(crate) fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    conn.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
    conn
}

/// Rows in `table`.
pub(crate) fn count(path: &Path, table: &str) -> i64 {
    raw(path).query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).expect("count")
}

/// A plan for action `n`.
pub(crate) fn plan(n: u32) -> Plan {
    let target = target(n);
    Plan::new(
        "sandbox",
        &ActionKind::Revoke,
        &target,
        Snapshot::new(serde_json::json!({"member": true, "n": n})),
        PlannedChange {
            expected_after: Snapshot::new(serde_json::json!({"member": false, "n": n})),
            description: format!("remove user{n} from admins"),
        },
        Reversibility::Reversible,
    )
    .expect("plan")
}

fn target(n: u32) -> Target {
    Target {
        identity: format!("user{n}"),
        resource: Some("admins".to_owned()),
        grant: None,
        grant_type: "group_membership".to_owned(),
    }
}

/// Action `n` in `state`, created at `at`, on `connector`.
pub(crate) fn detail_on(n: u32, state: State, at: OffsetDateTime, connector: &str) -> ActionDetail {
    ActionDetail {
        action: Action {
            id: id(n),
            kind: ActionKind::Revoke,
            target: target(n),
            connector: connector.to_owned(),
            control_id: Some("CIS-1.1".to_owned()),
            finding_id: None,
            canonical: None,
            requested_by: "local:alice".to_owned(),
            reason: "stale admin access".to_owned(),
            mode: Mode::Manual,
            idempotency_key: format!("remediation-{}", id(n)),
            state,
            created_at: at,
            updated_at: at,
            handle: None,
            campaign: None,
        },
        plan: Some(plan(n)),
        before: None,
        after: None,
        restored: None,
        pending_acceptance: false,
        rollback_expires_at: None,
        last_error: None,
        approval_expires_at: None,
        not_before: None,
        attempts: 0,
        held_lease: None,
        follows: None,
    }
}

/// Action `n` in `state` on the sandbox connector, created at `at`.
pub(crate) fn detail(n: u32, state: State, at: OffsetDateTime) -> ActionDetail {
    detail_on(n, state, at, "sandbox")
}

/// A transition of action `n`.
pub(crate) fn record(n: u32, from: Option<State>, to: State, event: &str, at: OffsetDateTime) -> TransitionRecord {
    TransitionRecord {
        action_id: id(n),
        from,
        to,
        event: event.to_owned(),
        actor: "local:bob".to_owned(),
        credential: None,
        initiated_by: "local:alice".to_owned(),
        decided_by: None,
        at,
        comment: None,
        connector: "sandbox".to_owned(),
        control_id: Some("CIS-1.1".to_owned()),
        finding_id: None,
        before_hash: None,
        after_hash: None,
        plan_hash: Some(plan(n).plan_hash),
        request_ids: Vec::new(),
        rollback_expires_at: None,
        before_state: None,
        after_state: None,
        limit: None,
    }
}

/// A state change of action `n` with no detail update.
pub(crate) fn change(n: u32, from: State, to: State, event: &str, at: OffsetDateTime) -> StateChange {
    StateChange::new(record(n, Some(from), to, event, at), DetailUpdate::default())
}

/// Creates action `n` in `state` at `at`; returns its detail.
pub(crate) async fn create(store: &SqliteStore, n: u32, state: State, at: OffsetDateTime) -> ActionDetail {
    let d = detail(n, state, at);
    store.create_action(&d, &record(n, None, state, "suggest", at)).await.expect("create");
    d
}

/// SQL that takes a current file back to how version 15 left it (before tenants, managed
/// connections and documents): one audit
/// chain keyed by `seq`, one safety state row, one checkpoint row. Prefix of every downgrade.
pub(crate) const UNDO_TENANTS: &str = "
    DROP TABLE documents;
    DROP TABLE connection_revisions;
    DROP TABLE connections;
    DROP TABLE tenants;
    ALTER TABLE credentials DROP COLUMN also_tenants;
    CREATE TABLE safety_state (id INTEGER PRIMARY KEY CHECK (id = 1), state_json TEXT NOT NULL) STRICT;
    INSERT INTO safety_state (id, state_json) SELECT 1, state_json FROM safety_states WHERE tenant = 'default';
    DROP TABLE safety_states;
    CREATE TABLE audit_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, head TEXT NOT NULL, mac TEXT NOT NULL) STRICT;
    INSERT INTO audit_checkpoint (id, count, head, mac) SELECT 1, count, head, mac FROM audit_checkpoints WHERE tenant = 'default';
    DROP TABLE audit_checkpoints;
    CREATE TABLE audit_v15 (seq INTEGER PRIMARY KEY, action_id TEXT NOT NULL, at INTEGER NOT NULL, record_json TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL, tenant TEXT NOT NULL DEFAULT 'default') STRICT;
    INSERT INTO audit_v15 SELECT seq, action_id, at, record_json, prev_hash, hash, tenant FROM audit ORDER BY seq;
    DROP TABLE audit;
    ALTER TABLE audit_v15 RENAME TO audit;
    CREATE INDEX audit_by_at ON audit (at);
    CREATE INDEX audit_by_action ON audit (action_id, seq);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_archives WHERE tenant = OLD.tenant), 0)
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: only records in a registered archive are removed'); END;
    CREATE TRIGGER audit_extends_chain BEFORE INSERT ON audit
    WHEN NEW.seq IS NOT COALESCE((SELECT MAX(seq) FROM audit), 0) + 1
      OR NEW.prev_hash IS NOT COALESCE((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1),
             '0000000000000000000000000000000000000000000000000000000000000000')
    BEGIN SELECT RAISE(ABORT, 'audit records must extend the chain: seq must follow the last record and prev_hash must be its hash'); END;
";
