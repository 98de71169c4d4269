//! The compliance report over a scripted history in a real (SQLite) runtime.

use std::sync::Arc;

use remediation_config::{Config, ConnectorConfig};
use remediation_core::{ManualClock, RollbackOutcome, Target};
use remediation_runtime::{Runtime, RuntimeOptions};
use remediation_testkit::{RequestBuilder, admin, approver};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

const HOSTILE_CONTROL: &str = "<script>alert(1)</script>";

fn runtime(dir: &std::path::Path, clock: Arc<ManualClock>) -> Runtime {
    remediation_connector_sandbox::write_sample(dir.join("sandbox.json")).expect("sandbox");
    let mut config =
        Config { connectors: vec![ConnectorConfig::sandbox("sandbox", "sandbox.json")], ..Config::default() };
    config.policy.enabled = true;
    let options = RuntimeOptions {
        clock: Some(clock),
        signing_key: Some(Arc::new(remediation_audit::LogSigningKey::from_seed(&[5; 32]))),
        ..RuntimeOptions::default()
    };
    Runtime::build(&config, dir, None, options).expect("build")
}

fn target(resource: &str) -> Target {
    Target {
        identity: "alice".into(),
        resource: Some(resource.into()),
        grant: None,
        grant_type: "group_membership".into(),
    }
}

/// Suggested by dave and rejected by bob (the records of an action outside the period).
async fn suggest_and_reject(runtime: &Runtime, resource: &str) {
    let engine = runtime.active().await.expect("active").engine;
    let request = RequestBuilder::new().target(target(resource)).control_id("OUTSIDE-1").build();
    let s = engine.suggest(request, &approver("dave")).await.expect("suggest");
    engine.reject(s.action.id, &approver("bob"), Some("no".into())).await.expect("reject");
}

/// The period 2026-03-01 (included) to 2026-03-02 (excluded), one action rejected before and
/// one after it; inside: the kill switch on and off, an action dave asks for and tries to
/// approve himself (refused), bob approves, bob executes, carol asks to roll it back and bob
/// approves the rollback. Returns the runtime, the period and the action inside.
async fn scripted(dir: &std::path::Path) -> (Runtime, Period, remediation_core::ActionId) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-02-28 23:00 UTC)));
    let runtime = runtime(dir, clock.clone());
    suggest_and_reject(&runtime, "engineering").await;
    clock.set(datetime!(2026-03-01 09:00 UTC));
    let engine = runtime.active().await.expect("active").engine;
    engine.set_kill_switch(true, &admin(), "incident drill".into()).await.expect("on");
    clock.advance(Duration::minutes(5));
    engine.set_kill_switch(false, &admin(), "drill over".into()).await.expect("off");
    clock.advance(Duration::minutes(5));
    let request = RequestBuilder::new().target(target("admins")).control_id(HOSTILE_CONTROL).build();
    let id = engine.suggest(request, &approver("dave")).await.expect("suggest").action.id;
    engine.approve(id, &approver("dave"), None).await.expect_err("no self-approval");
    clock.advance(Duration::minutes(5));
    engine.approve(id, &approver("bob"), Some("looks right".into())).await.expect("approve");
    clock.advance(Duration::minutes(5));
    engine.execute(id, &approver("bob"), false).await.expect("execute");
    clock.advance(Duration::hours(1));
    let asked = engine.rollback(id, &approver("carol"), Some("broke the build".into())).await.expect("rollback");
    assert!(matches!(asked, RollbackOutcome::Requested { .. }), "{asked:?}");
    clock.advance(Duration::minutes(5));
    engine.approve_rollback(id, &approver("bob"), None).await.expect("approve rollback");
    clock.set(datetime!(2026-03-02 00:00 UTC));
    suggest_and_reject(&runtime, "engineering").await;
    let period = Period::new(datetime!(2026-03-01 00:00 UTC), datetime!(2026-03-02 00:00 UTC)).expect("period");
    (runtime, period, id)
}

#[tokio::test]
async fn the_report_covers_the_period_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, period, id) = scripted(dir.path()).await;
    let report = compliance(&runtime, period).await.expect("report");

    // 1. Outcomes: completed, then rolled back; neither rejection outside the period.
    let outcomes: Vec<(&str, &str)> = report.outcomes.iter().map(|o| (o.outcome.as_str(), o.kind.as_str())).collect();
    assert_eq!(outcomes, [("completed", "revoke"), ("rolled_back", "revoke")], "{:#?}", report.outcomes);
    assert!(report.outcomes.iter().all(|o| o.action_id == id && o.control.as_deref() == Some(HOSTILE_CONTROL)));
    assert_eq!(report.actions.len(), 2);
    assert!(report.actions.iter().all(|c| c.count == 1 && c.kind == "revoke"));

    // 2. One approval of the plan, by someone else than the requester.
    assert_eq!(report.approvals.len(), 1, "{:#?}", report.approvals);
    let a = &report.approvals[0];
    assert_eq!((a.requester.as_str(), a.approver.as_str()), ("local:dave", "local:bob"));
    assert!(a.separate && a.quorum_reached);
    assert_eq!(a.distinct_approvers, 1);

    // 3. The rollback: asked by carol, approved by bob, done.
    assert_eq!(report.rollbacks.len(), 1, "{:#?}", report.rollbacks);
    let r = &report.rollbacks[0];
    assert_eq!(
        (r.requested_by.as_str(), r.approved_by.as_deref(), r.outcome.as_str(), r.reason.as_deref()),
        ("local:carol", Some("local:bob"), "rolled_back", Some("broke the build"))
    );

    // 4. dave's own approval, refused.
    assert_eq!(report.refusals.len(), 1, "{:#?}", report.refusals);
    assert_eq!(
        (report.refusals[0].event.as_str(), report.refusals[0].actor.as_str()),
        ("approval_refused", "local:dave")
    );
    assert!(report.refusals[0].reason.is_some());

    // 5. None.
    assert!(report.overrides.is_empty());

    // 6. The kill switch, on then off, with before and after.
    let changes: Vec<(&str, &str)> =
        report.settings_changes.iter().map(|c| (c.event.as_str(), c.actor.as_str())).collect();
    assert_eq!(changes, [("kill_switch_on", "local:root"), ("kill_switch_off", "local:root")]);
    assert_eq!(report.settings_changes[0].after["kill_switch"], serde_json::json!(true));
    assert_eq!(report.settings_changes[0].before["kill_switch"], serde_json::json!(false));

    // 7. The chain verifies; the head is the last record inside the period.
    let last_inside = report.outcomes.last().expect("an outcome").seq;
    assert!(report.audit.chain_verified, "{:#?}", report.audit);
    assert_eq!(report.audit.scope, "whole_chain");
    assert_eq!(report.audit.head.as_ref().map(|h| h.seq), Some(last_inside));
    assert!(report.audit.head.as_ref().and_then(|h| h.hash.as_ref()).is_some());
    assert_eq!(report.records, last_inside - 2, "two records come before the period");
}

#[tokio::test]
async fn a_period_ending_before_the_history_holds_only_what_came_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, _, _) = scripted(dir.path()).await;
    let before = Period::new(datetime!(2026-02-28 00:00 UTC), datetime!(2026-03-01 00:00 UTC)).expect("period");
    let report = compliance(&runtime, before).await.expect("report");
    let outcomes: Vec<&str> = report.outcomes.iter().map(|o| o.outcome.as_str()).collect();
    assert_eq!(outcomes, ["rejected"]);
    assert_eq!(report.outcomes[0].control.as_deref(), Some("OUTSIDE-1"));
    assert!(report.settings_changes.is_empty() && report.refusals.is_empty() && report.rollbacks.is_empty());
    assert_eq!(report.audit.head.as_ref().map(|h| h.seq), Some(2));
}

#[test]
fn an_empty_period_is_refused() {
    let t: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);
    assert!(Period::new(t, t).is_err());
    assert!(Period::new(t + Duration::days(1), t).is_err());
    let p = Period::new(t, t + Duration::days(1)).expect("a day");
    assert!(p.contains(t) && !p.contains(t + Duration::days(1)) && !p.contains(t - Duration::seconds(1)));
}

#[tokio::test]
async fn html_escapes_what_the_log_holds_and_shows_every_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, period, _) = scripted(dir.path()).await;
    let report = compliance(&runtime, period).await.expect("report");
    let html = to_html(&report);
    assert!(!html.contains(HOSTILE_CONTROL), "the control id reached the page unescaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.to_lowercase().contains("<script"), "no script of any kind");
    for external in ["http://", "https://", "src=", "<link"] {
        assert!(!html.contains(external), "external resource `{external}`");
    }
    assert!(html.contains("@media print"));
    for heading in SECTION_HEADINGS {
        assert_eq!(html.matches(&format!("<h2>{heading}</h2>")).count(), 1, "{heading}");
    }
    // Overrides are empty in this period, and say so.
    let overrides = html.split(SECTION_HEADINGS[4]).nth(1).expect("section 5");
    let overrides = overrides.split("<h2>").next().expect("its body");
    assert!(overrides.contains("None in this period"), "{overrides}");
    assert!(html.contains("Chain verified"));
}

#[tokio::test]
async fn csv_has_one_row_per_event_with_its_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, period, _) = scripted(dir.path()).await;
    let report = compliance(&runtime, period).await.expect("report");
    let csv = to_csv(&report);
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], CSV_COLUMNS.join(","));
    let sections: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().expect("section")).collect();
    assert_eq!(
        sections,
        ["actions", "actions", "approvals", "rollbacks", "refusals", "settings", "settings", "audit"],
        "{csv}"
    );
    assert!(lines.last().expect("audit").contains("chain_verified"));
}
