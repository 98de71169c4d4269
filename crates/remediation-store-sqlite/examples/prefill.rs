//! Fills a store with many actions through the `ActionStore` trait (each with its first
//! transition and audit record), for measuring commands against a large store:
//!
//! ```text
//! cargo run --release -p remediation-store-sqlite --example prefill -- DATA/remediation.db 100000
//! ```
//!
//! Nine in ten actions are completed, the rest wait for approval until well after now, so
//! commands that expire stale actions find nothing due.

use std::sync::Arc;

use remediation_core::store::prelude::*;
use remediation_core::{
    Action, ActionDetail, ActionId, ActionKind, Mode, Plan, PlannedChange, Reversibility, Snapshot, State, Target,
    TransitionRecord,
};
use remediation_store_sqlite::SqliteStore;
use time::{Duration, OffsetDateTime};

/// Creations in flight at once, so the writer commits them in groups.
const IN_FLIGHT: usize = 256;

fn action(n: u32, now: OffsetDateTime) -> Result<(ActionDetail, TransitionRecord), Box<dyn std::error::Error>> {
    let id = ActionId(uuid::Uuid::now_v7());
    let state = if n % 10 == 0 { State::PendingApproval } else { State::Completed };
    let target = Target {
        identity: format!("user{n}"),
        resource: Some("admins".to_owned()),
        grant: None,
        grant_type: "group_membership".to_owned(),
    };
    let plan = Plan::new(
        "sandbox",
        &ActionKind::Revoke,
        &target,
        Snapshot::new(serde_json::json!({"member": true})),
        PlannedChange {
            expected_after: Snapshot::new(serde_json::json!({"member": false})),
            description: format!("remove user{n} from admins"),
        },
        Reversibility::Reversible,
    )?;
    let at = now - Duration::seconds(i64::from(n));
    let record = TransitionRecord {
        action_id: id,
        from: None,
        to: state,
        event: "suggest".to_owned(),
        actor: "local:alice".to_owned(),
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
        plan_hash: Some(plan.plan_hash.clone()),
        request_ids: Vec::new(),
        rollback_expires_at: None,
        before_state: None,
        after_state: None,
    };
    let detail = ActionDetail {
        action: Action {
            id,
            kind: ActionKind::Revoke,
            target,
            connector: "sandbox".to_owned(),
            control_id: Some("CIS-1.1".to_owned()),
            finding_id: None,
            canonical: None,
            requested_by: "local:alice".to_owned(),
            reason: "stale admin access".to_owned(),
            mode: Mode::Manual,
            idempotency_key: format!("remediation-{id}"),
            state,
            created_at: at,
            updated_at: at,
        },
        plan: Some(plan),
        before: None,
        after: None,
        restored: None,
        pending_acceptance: false,
        rollback_expires_at: None,
        last_error: None,
        approval_expires_at: (state == State::PendingApproval).then(|| now + Duration::days(30)),
        held_lease: None,
    };
    Ok((detail, record))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: prefill STORE_FILE COUNT".into());
    };
    let count: u32 = count.parse()?;
    let store = Arc::new(SqliteStore::open(&path)?);
    let now = OffsetDateTime::now_utc();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        if tasks.len() >= IN_FLIGHT
            && let Some(done) = tasks.join_next().await
        {
            done??;
        }
        let (detail, record) = action(n, now)?;
        let store = store.clone();
        tasks.spawn(async move { store.create_action(&detail, &record).await });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    println!("{count} actions in {path}");
    Ok(())
}
