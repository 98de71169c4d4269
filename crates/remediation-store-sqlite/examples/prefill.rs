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
use remediation_core::{ActionDetail, ActionId, State, TransitionRecord};
use remediation_store_sqlite::SqliteStore;
use remediation_testkit::builders::{ActionBuilder, DetailBuilder, TargetBuilder, plan_for, snap, transition};
use time::{Duration, OffsetDateTime};

/// Creations in flight at once, so the writer commits them in groups.
const IN_FLIGHT: usize = 256;

fn action(n: u32, now: OffsetDateTime) -> Result<(ActionDetail, TransitionRecord), Box<dyn std::error::Error>> {
    let state = if n.is_multiple_of(10) { State::PendingApproval } else { State::Completed };
    let at = now - Duration::seconds(i64::from(n));
    let action = ActionBuilder::new()
        .id(ActionId(uuid::Uuid::now_v7()))
        .target(TargetBuilder::new().identity(&format!("user{n}")).build())
        .control_id("CIS-1.1")
        .reason("stale admin access")
        .state(state)
        .at(at)
        .build();
    let plan =
        plan_for(&action, snap(serde_json::json!({"member": true})), snap(serde_json::json!({"member": false})))?;
    let record = TransitionRecord {
        plan_hash: Some(plan.plan_hash.clone()),
        ..transition(action.id, None, state, "suggest", at)
    };
    let mut detail = DetailBuilder::new(action).plan(plan).build();
    if state == State::PendingApproval {
        detail.approval_expires_at = Some(now + Duration::days(30));
    }
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
