//! The record of a control override, computed from a real store filled with past actions.

use std::sync::Arc;

use remediation_core::{ManualClock, Mode};
use remediation_gates::{ControlSettings, PolicySettings};
use remediation_testkit::history::{Ending, Past, record};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::{Runtime, RuntimeOptions};

const C: &str = "C-1";

fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000)
}

/// The override under test: revokes of `group_membership` on `sandbox`.
fn control() -> ControlSettings {
    ControlSettings {
        mode: Some(Mode::Manual),
        reason: Some("start manual".into()),
        kinds: Some(vec![remediation_core::KindName::Revoke]),
        grant_types: Some(vec!["group_membership".into()]),
        connectors: Some(vec!["sandbox".into()]),
        ..ControlSettings::default()
    }
}

/// `n` manual successes, the first `first_days_ago` days ago, one a day after it at most.
fn manual(seed: u64, n: u64, first_days_ago: i64) -> Vec<Past> {
    (0..n)
        .map(|i| {
            let at = now() - Duration::days(first_days_ago) + Duration::hours(i64::try_from(i).unwrap_or(0));
            Past::new(C, seed + i, Mode::Manual, at, Ending::Completed)
        })
        .collect()
}

async fn record_of(pasts: Vec<Past>, control: &ControlSettings) -> ControlRecord {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(now()));
    let options = RuntimeOptions { clock: Some(clock.clone()), ..RuntimeOptions::default() };
    let rt = Runtime::build(&remediation_config::Config::default(), dir.path(), None, options).expect("runtime");
    for p in pasts {
        record(rt.store().as_ref(), p).await.expect("record");
    }
    let policy = PolicySettings::default();
    let record = control_record(rt.store().as_ref(), C, control, &policy, rt.clock().now()).await.expect("record");
    // The cheap check made when an auto action finishes agrees with the full record.
    let recent = recent_auto(rt.store().as_ref(), C, control, &policy).await.expect("recent");
    assert_eq!(recent, record.recent_auto);
    record
}

#[tokio::test]
async fn ten_manual_successes_earn_auto_only_over_thirty_days() {
    let r = record_of(manual(1, 10, 29), &control()).await;
    assert_eq!((r.manual_successes, r.earned), (10, false));
    assert_eq!(r.why_not.as_deref(), Some("10 of 10 successful manual remediations; first 29 days ago, 30 needed"));
    let r = record_of(manual(1, 10, 30), &control()).await;
    assert_eq!((r.manual_successes, r.earned, r.why_not), (10, true, None));
    assert_eq!(r.first_manual_success, Some(now() - Duration::days(30)));
    let r = record_of(manual(1, 3, 2), &control()).await;
    assert_eq!(r.why_not.as_deref(), Some("3 of 10 successful manual remediations; first 2 days ago, 30 needed"));
}

#[tokio::test]
async fn one_rollback_spoils_the_record() {
    let mut pasts = manual(1, 11, 40);
    pasts.push(Past::new(C, 50, Mode::Manual, now() - Duration::days(5), Ending::RolledBack));
    let r = record_of(pasts, &control()).await;
    assert_eq!((r.manual_successes, r.rollbacks, r.earned), (12, 1, false));
    assert!(r.why_not.as_deref().unwrap_or_default().contains("1 rolled back, none allowed"), "{r:?}");
}

#[tokio::test]
async fn auto_successes_and_waiting_actions_do_not_count() {
    let mut pasts = manual(1, 9, 40);
    for i in 0..5 {
        pasts.push(Past::new(C, 20 + i, Mode::Auto, now() - Duration::days(35), Ending::Completed));
    }
    pasts.push(Past::new(C, 30, Mode::Manual, now() - Duration::days(35), Ending::Waiting));
    let r = record_of(pasts, &control()).await;
    assert_eq!((r.manual_successes, r.auto_successes, r.earned), (9, 5, false));
}

#[tokio::test]
async fn actions_outside_the_scope_do_not_count() {
    let mut pasts = manual(1, 9, 40);
    let mut other_connector = Past::new(C, 20, Mode::Manual, now() - Duration::days(40), Ending::Completed);
    other_connector.action.connector = "okta".into();
    let mut other_grant = Past::new(C, 21, Mode::Manual, now() - Duration::days(40), Ending::Completed);
    other_grant.action.target.grant_type = "app_assignment".into();
    let mut other_kind = Past::new(C, 22, Mode::Manual, now() - Duration::days(40), Ending::Completed);
    other_kind.action.kind = remediation_core::ActionKind::Suspend;
    let other_control = Past::new("C-2", 23, Mode::Manual, now() - Duration::days(40), Ending::Completed);
    // A rollback outside the scope does not spoil the record either.
    let mut rolled = Past::new(C, 24, Mode::Manual, now() - Duration::days(3), Ending::RolledBack);
    rolled.action.connector = "okta".into();
    pasts.extend([other_connector, other_grant, other_kind, other_control, rolled]);
    let r = record_of(pasts, &control()).await;
    assert_eq!((r.manual_successes, r.rollbacks, r.earned), (9, 0, false));
    // The tenth in scope earns it.
    let mut pasts = manual(1, 10, 40);
    pasts.push(Past::new("C-2", 23, Mode::Manual, now() - Duration::days(1), Ending::RolledBack));
    assert!(record_of(pasts, &control()).await.earned);
}

#[tokio::test]
async fn the_latest_auto_actions_are_judged_for_demotion() {
    let auto = |seed: u64, ending| Past::new(C, seed, Mode::Auto, now() - Duration::days(1), ending);
    let run = |bad: u64| {
        // 25 auto actions: the first five all went wrong but are older than the window.
        (0..25u64)
            .map(move |i| {
                let ending = if i < 5 + bad {
                    if i % 2 == 0 { Ending::RolledBack } else { Ending::NotVerified }
                } else {
                    Ending::Completed
                };
                let mut p = auto(100 + i, ending);
                p.at += Duration::minutes(i64::try_from(i).unwrap_or(0));
                p
            })
            .collect::<Vec<_>>()
    };
    let r = record_of(run(3), &control()).await;
    assert_eq!((r.recent_auto.judged, r.recent_auto.went_wrong, r.recent_auto.exceeds), (20, 3, true));
    let r = record_of(run(2), &control()).await;
    assert_eq!((r.recent_auto.judged, r.recent_auto.went_wrong, r.recent_auto.exceeds), (20, 2, false));
    // Auto actions suggested before the override last became auto are not judged.
    let since = ControlSettings { auto_since: Some(now()), ..control() };
    let r = record_of(run(3), &since).await;
    assert_eq!((r.recent_auto.judged, r.recent_auto.exceeds), (0, false));
}
