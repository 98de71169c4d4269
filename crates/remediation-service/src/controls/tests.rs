//! Automatic demotion and the control views, over a real store filled with past actions.

use std::sync::Arc;

use remediation_audit::AuditBody;
use remediation_core::{Actor, AuditFilter, EngineEvent, KindName, ManualClock, Role};
use remediation_runtime::RuntimeOptions;
use remediation_testkit::history::{Ending, Past, record};
use time::{Duration, OffsetDateTime};

use super::*;

const C: &str = "C-1";

struct Fixture {
    _dir: tempfile::TempDir,
    rt: Runtime,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000)));
    let options = RuntimeOptions { clock: Some(clock), ..RuntimeOptions::default() };
    let rt = Runtime::build(&remediation_config::Config::default(), dir.path(), None, options).expect("runtime");
    let mut settings = rt.active().await.expect("active").settings;
    settings.controls.insert(
        C.into(),
        ControlSettings {
            mode: Some(Mode::Auto),
            reason: Some("earned".into()),
            kinds: Some(vec![KindName::Revoke]),
            grant_types: Some(vec!["group_membership".into()]),
            connectors: Some(vec!["sandbox".into()]),
            ..ControlSettings::default()
        },
    );
    let admin = Actor::new("local:root", Role::Admin);
    let engine = rt.active().await.expect("active").engine;
    engine.update_settings(&admin, serde_json::to_value(&settings).expect("json"), "seed".into()).await.expect("store");
    Fixture { _dir: dir, rt }
}

/// Records 20 auto actions of C-1, the first `bad` of them rolled back; returns the last.
async fn twenty_auto(f: &Fixture, bad: u64) -> Action {
    let now = f.rt.clock().now();
    let mut last = None;
    for i in 0..20u64 {
        let ending = if i < bad { Ending::RolledBack } else { Ending::Completed };
        let at = now - Duration::hours(30) + Duration::hours(i64::try_from(i).unwrap_or(0));
        let id = record(f.rt.store().as_ref(), Past::new(C, i + 1, Mode::Auto, at, ending)).await.expect("record");
        last = Some(id);
    }
    f.rt.store().get(last.expect("one")).await.expect("get").action
}

fn demotions(f: &[remediation_core::AuditRecord]) -> Vec<remediation_core::SettingsRecord> {
    f.iter()
        .filter_map(|r| match &r.body {
            AuditBody::Settings(s) if s.setting_event == DEMOTED_EVENT => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_auto_control_whose_actions_go_wrong_too_often_drops_to_manual_by_itself() {
    let f = fixture().await;
    let last = twenty_auto(&f, 3).await;
    let demoted = review_finished(&f.rt, std::slice::from_ref(&last)).await.expect("review");
    assert_eq!(demoted.len(), 1, "{demoted:?}");
    let reason = &demoted[0].reason;
    assert!(reason.contains("3 of its last 20 auto actions") && reason.contains("15%, more than 10%"), "{reason}");
    let control = &f.rt.active().await.expect("active").settings.controls[C];
    assert_eq!(control.mode, Some(Mode::Manual));
    assert_eq!(control.reason.as_deref(), Some(reason.as_str()));
    // Audited as `system`, and an event for the sinks.
    let audit = f.rt.store().audit_page(&AuditFilter::default(), None, 10_000).await.expect("audit");
    let records = demotions(&audit);
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].actor.as_str(), records[0].comment.as_deref()), ("system", Some(reason.as_str())));
    assert_eq!(records[0].value["settings"]["controls"][C]["mode"], "manual");
    let event = audit
        .iter()
        .map(|r| EngineEvent::from_audit(&r.body))
        .find(|e| matches!(e, EngineEvent::SafetyChanged { setting_event, .. } if setting_event == DEMOTED_EVENT));
    assert_eq!(event, Some(EngineEvent::SafetyChanged { setting_event: DEMOTED_EVENT.into(), actor: "system".into() }));
    // Idempotent: judged again (another replica, the next finished action), nothing more.
    assert_eq!(review_finished(&f.rt, &[last]).await.expect("again"), []);
    let audit = f.rt.store().audit_page(&AuditFilter::default(), None, 10_000).await.expect("audit");
    assert_eq!(demotions(&audit).len(), 1);
}

#[tokio::test]
async fn an_auto_control_under_the_threshold_stays_auto() {
    let f = fixture().await;
    let last = twenty_auto(&f, 2).await;
    assert_eq!(review_finished(&f.rt, &[last]).await.expect("review"), []);
    assert_eq!(f.rt.active().await.expect("active").settings.controls[C].mode, Some(Mode::Auto));
    let view = control(&f.rt, C).await.expect("view");
    assert_eq!(
        (view.record.recent_auto.judged, view.record.recent_auto.went_wrong, view.record.auto_successes),
        (20, 2, 20)
    );
}

#[tokio::test]
async fn a_demotion_loses_to_a_settings_change_made_meanwhile() {
    let f = fixture().await;
    twenty_auto(&f, 3).await;
    let active = f.rt.active().await.expect("active");
    // What a replica read before another wrote: the compare-and-swap refuses the stale base.
    let stale = Some(serde_json::json!({"enabled": false}));
    let wrote = active
        .engine
        .system_settings_change(&stale, serde_json::json!({}), DEMOTED_EVENT, "stale".into())
        .await
        .expect("cas");
    assert!(!wrote);
    assert_eq!(f.rt.active().await.expect("active").settings.controls[C].mode, Some(Mode::Auto));
}

#[tokio::test]
async fn the_views_list_every_configured_control_and_refuse_an_unknown_one() {
    let f = fixture().await;
    let all = controls(&f.rt).await.expect("list");
    assert_eq!(all.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [C]);
    assert_eq!(all[0].scope.connectors.as_deref(), Some(&["sandbox".to_owned()][..]));
    assert!(matches!(control(&f.rt, "C-404").await, Err(ServiceError::NotFound { .. })));
}

/// A sandbox installation with C-1 in auto (from the configuration, with an admin's override)
/// and 20 past auto actions of C-1, the last three rolled back; the clock is the system's, as
/// the sandbox and the leases read it.
async fn sandbox_with_a_bad_auto_record() -> (tempfile::TempDir, Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    remediation_connector_sandbox::write_sample(dir.path().join("sandbox.json")).expect("sandbox");
    let mut config = remediation_config::Config {
        connectors: vec![remediation_config::ConnectorConfig::sandbox("sandbox", "sandbox.json")],
        ..remediation_config::Config::default()
    };
    config.policy.enabled = true;
    config.policy.controls.insert(
        C.into(),
        ControlSettings {
            mode: Some(Mode::Auto),
            reason: Some("pilot".into()),
            kinds: Some(vec![KindName::Revoke]),
            grant_types: Some(vec!["group_membership".into()]),
            connectors: Some(vec!["sandbox".into()]),
            promotion_override_reason: Some("pilot".into()),
            ..ControlSettings::default()
        },
    );
    let rt = Runtime::build(&config, dir.path(), None, RuntimeOptions::default()).expect("runtime");
    let engine = rt.active().await.expect("active").engine;
    engine.verify_emergency_access(&Actor::new("local:root", Role::Admin), "checked".into()).await.expect("verify");
    let now = rt.clock().now();
    for i in 0..20u64 {
        let ending = if i >= 17 { Ending::RolledBack } else { Ending::Completed };
        let at = now - Duration::hours(30) + Duration::hours(i64::try_from(i).unwrap_or(0));
        record(rt.store().as_ref(), Past::new(C, i + 1, Mode::Auto, at, ending)).await.expect("record");
    }
    (dir, rt)
}

/// An auto-approved revoke of alice from admins, tagged with C-1.
async fn auto_action(rt: &Runtime) -> remediation_core::ActionId {
    let request = remediation_testkit::RequestBuilder::new().control_id(C).build();
    let engine = rt.active().await.expect("active").engine;
    let s = engine.suggest(request, &remediation_testkit::requester()).await.expect("suggest");
    assert_eq!(s.action.state, remediation_core::State::Approved, "auto-approved: {:?}", s.decision);
    s.action.id
}

#[tokio::test]
async fn an_execution_through_the_service_judges_its_control() {
    let (_dir, rt) = sandbox_with_a_bad_auto_record().await;
    let id = auto_action(&rt).await;
    crate::execute(&rt, &remediation_testkit::approver("bob"), id, false).await.result.expect("execute");
    assert_eq!(rt.active().await.expect("active").settings.controls[C].mode, Some(Mode::Manual));
}

#[tokio::test]
async fn an_execution_by_the_worker_judges_its_control() {
    struct Quiet;
    impl crate::worker::WorkerHooks for Quiet {}
    let (_dir, rt) = sandbox_with_a_bad_auto_record().await;
    auto_action(&rt).await;
    let worker = crate::worker::Worker::new(crate::worker::WorkerConfig::default());
    let report = worker.tick(&rt, &Quiet).await.expect("tick");
    assert_eq!((report.executed, report.finished_auto.len()), (1, 1));
    let settings = rt.active().await.expect("active").settings;
    assert_eq!(settings.controls[C].mode, Some(Mode::Manual));
    assert_eq!(settings.controls[C].promotion_override_reason, None, "the override goes with the demotion");
}
