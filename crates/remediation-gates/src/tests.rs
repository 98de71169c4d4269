//! Gate and mode-resolution tests over hand-built contexts.

use remediation_core::{
    Action, ActionKind, Capability, GateContext, Health, KindName, Mode, Permissions, Plan, PlannedChange,
    Reversibility, RiskLevel, SafetyPolicy, SafetyState, Snapshot, Stage, Target,
};
use serde_json::json;
use time::macros::datetime;

use crate::{ControlSettings, KindSettings, Pipeline, PolicySettings, SettingsError};

/// A control whose mode override names `kinds`, the `group_membership` grant type and the
/// `sandbox` connector.
fn scoped(kinds: &[KindName]) -> ControlSettings {
    ControlSettings {
        kinds: Some(kinds.to_vec()),
        grant_types: Some(vec!["group_membership".into()]),
        connectors: Some(vec!["sandbox".into()]),
        ..ControlSettings::default()
    }
}

fn action(kind: ActionKind, control: Option<&str>) -> Action {
    let mut a: Action = serde_json::from_value(json!({
        "id": "01900000-0000-7000-8000-000000000000",
        "kind": {"type": "revoke"},
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
        "connector": "sandbox", "requested_by": "local:alice", "reason": "r", "mode": "manual",
        "idempotency_key": "k", "state": "pending_approval",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    }))
    .expect("action");
    a.kind = kind;
    a.control_id = control.map(str::to_owned);
    a
}

struct Case {
    settings: PolicySettings,
    kind: ActionKind,
    control: Option<&'static str>,
    reversibility: Reversibility,
    observable: bool,
    protected: bool,
    healthy: bool,
    missing: Vec<String>,
    no_op: bool,
    stage: Stage,
    state: SafetyState,
    reach: Option<u32>,
    dry_run: bool,
    connector: &'static str,
}

const NOW: time::OffsetDateTime = datetime!(2026-01-31 00:00 UTC);

fn verified() -> SafetyState {
    SafetyState { emergency_access_verified_at: Some(datetime!(2026-01-30 00:00 UTC)), ..SafetyState::default() }
}

impl Default for Case {
    fn default() -> Self {
        Self {
            settings: PolicySettings { enabled: true, default_mode: Mode::Auto, ..PolicySettings::default() },
            kind: ActionKind::Revoke,
            control: None,
            reversibility: Reversibility::Reversible,
            observable: true,
            protected: false,
            healthy: true,
            missing: Vec::new(),
            no_op: false,
            stage: Stage::Suggest,
            state: verified(),
            reach: None,
            dry_run: false,
            connector: "sandbox",
        }
    }
}

/// Runs the standard pipeline and returns (resolved mode, effective mode, failures as `gate:refuse|approve`).
fn run(case: Case) -> (Mode, Mode, Vec<String>) {
    let mut action = action(case.kind, case.control);
    action.connector = case.connector.to_owned();
    let before = Snapshot { protected: case.protected, canonical: None, state: json!({"member": true}) };
    let after = if case.no_op {
        before.clone()
    } else {
        Snapshot { protected: case.protected, canonical: None, state: json!({"member": false}) }
    };
    let target: Target = action.target.clone();
    let plan = Plan::new(
        "sandbox",
        &action.kind,
        &target,
        before,
        PlannedChange { expected_after: after, description: "d".into() },
        case.reversibility,
    )
    .and_then(|p| p.with_reach(case.reach))
    .expect("plan");
    let capability = Capability {
        kind: action.kind.name(),
        grant_type: "group_membership".into(),
        reversibility: case.reversibility,
        observable: case.observable,
    };
    let health = Health { healthy: case.healthy, detail: "down".into() };
    let permissions = Permissions { missing: case.missing.clone(), ..Permissions::default() };
    let ctx = GateContext {
        stage: case.stage,
        action: &action,
        capability: &capability,
        plan: &plan,
        health: &health,
        permissions: &permissions,
        now: NOW,
        dry_run: case.dry_run,
        state: &case.state,
    };
    let pipeline = Pipeline::standard(case.settings.clone()).expect("valid settings");
    let d = pipeline.evaluate(&ctx);
    let failures = d
        .gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| format!("{}:{}", g.gate, if g.blocking { "refuse" } else { "approve" }))
        .collect();
    (d.mode, d.effective_mode(), failures)
}

#[track_caller]
fn check(case: Case, mode: Mode, effective: Mode, failures: &[&str]) {
    let (m, e, f) = run(case);
    assert_eq!((m, e, f.iter().map(String::as_str).collect::<Vec<_>>()), (mode, effective, failures.to_vec()));
}

#[test]
fn everything_passes_stays_auto() {
    check(Case::default(), Mode::Auto, Mode::Auto, &[]);
}

#[test]
fn validation_refuses() {
    check(Case { protected: true, ..Case::default() }, Mode::Auto, Mode::Auto, &["validation:refuse"]);
    check(Case { healthy: false, ..Case::default() }, Mode::Auto, Mode::Auto, &["validation:refuse"]);
    check(Case { missing: vec!["w".into()], ..Case::default() }, Mode::Auto, Mode::Auto, &["validation:refuse"]);
    check(Case { no_op: true, ..Case::default() }, Mode::Auto, Mode::Auto, &["validation:refuse"]);
}

#[test]
fn an_unobservable_change_that_cannot_show_in_the_plan_is_not_refused_as_nothing_to_do() {
    // A Google sign-out: the provider exposes no session state, so the plan never differs.
    check(
        Case { no_op: true, observable: false, ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["observability:approve"],
    );
}

#[test]
fn irreversible_lossy_and_unobservable_drop_auto_to_manual() {
    check(
        Case { reversibility: Reversibility::Irreversible, ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["reversibility:approve"],
    );
    check(
        Case { reversibility: Reversibility::Lossy, ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["reversibility:approve"],
    );
    check(Case { observable: false, ..Case::default() }, Mode::Auto, Mode::Manual, &["observability:approve"]);
}

#[test]
fn disabled_remediation_needs_approval_at_suggest_and_refuses_execution() {
    let off = || PolicySettings { enabled: false, default_mode: Mode::Auto, ..PolicySettings::default() };
    check(Case { settings: off(), ..Case::default() }, Mode::Auto, Mode::Manual, &["enablement:approve"]);
    check(
        Case { settings: off(), stage: Stage::Execute, ..Case::default() },
        Mode::Auto,
        Mode::Auto,
        &["enablement:refuse"],
    );
}

#[test]
fn controls_override_kinds_which_override_the_default() {
    let mut s = PolicySettings { enabled: true, default_mode: Mode::Manual, ..PolicySettings::default() };
    s.kinds.insert(
        KindName::Revoke,
        KindSettings { mode: Some(Mode::Auto), reason: Some("low risk".into()), ..KindSettings::default() },
    );
    s.controls.insert(
        "C-1".into(),
        ControlSettings { mode: Some(Mode::Advisory), reason: Some("noisy".into()), ..scoped(&[KindName::Revoke]) },
    );
    s.controls.insert("C-2".into(), ControlSettings { never_auto: true, ..ControlSettings::default() });
    s.controls
        .insert("C-3".into(), ControlSettings { disabled: Some("under review".into()), ..ControlSettings::default() });
    check(Case { settings: s.clone(), ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
    check(Case { settings: s.clone(), kind: ActionKind::Suspend, ..Case::default() }, Mode::Manual, Mode::Manual, &[]);
    check(Case { settings: s.clone(), control: Some("C-1"), ..Case::default() }, Mode::Advisory, Mode::Advisory, &[]);
    check(
        Case { settings: s.clone(), control: Some("C-2"), ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["enablement:approve"],
    );
    check(
        Case { settings: s, control: Some("C-3"), ..Case::default() },
        Mode::Auto,
        Mode::Auto,
        &["enablement:refuse"],
    );
}

#[test]
fn settings_validation() {
    let mut s = PolicySettings::default();
    s.kinds.insert(KindName::Suspend, KindSettings { mode: Some(Mode::Auto), ..KindSettings::default() });
    assert_eq!(s.validate(), Err(SettingsError::OverrideWithoutReason { scope: "kind suspend".into() }));
    let s = PolicySettings { rollback_window_secs: 10, ..PolicySettings::default() };
    assert!(matches!(s.validate(), Err(SettingsError::RollbackWindowOutOfRange { secs: 10, .. })));
    let s = PolicySettings { rollback_window_secs: 31 * 86_400, ..PolicySettings::default() };
    assert!(s.validate().is_err());
    assert_eq!(PolicySettings::default().validate(), Ok(()));
}

#[test]
fn defaults_are_safe() {
    let s = PolicySettings::default();
    assert!(!s.enabled, "remediation must be disabled until enabled deliberately");
    assert_eq!(s.default_mode, Mode::Manual);
    assert_eq!(s.min_approvals, 1);
    assert_eq!(s.rollback_window_secs, 24 * 3600);
}

#[test]
fn enforce_defaults_to_a_half_hour_rollback_window_and_its_setting_wins() {
    let enforce =
        action(ActionKind::Enforce { setting: "s3_default_encryption".into(), value: "default".into() }, None);
    let revoke = action(ActionKind::Revoke, None);
    let s = PolicySettings::default();
    assert_eq!(s.rollback_window_for(&enforce), time::Duration::minutes(30));
    assert_eq!(s.rollback_window_for(&revoke), time::Duration::hours(24));
    let mut s = PolicySettings { rollback_window_secs: 7_200, ..PolicySettings::default() };
    assert_eq!(s.rollback_window_for(&enforce), time::Duration::minutes(30), "the kind's default beats the global one");
    s.kinds.insert(KindName::Enforce, KindSettings { rollback_window_secs: Some(600), ..KindSettings::default() });
    assert_eq!(s.rollback_window_for(&enforce), time::Duration::minutes(10));
    assert_eq!(s.rollback_window_for(&revoke), time::Duration::hours(2));
    assert!(s.rollback_requires_approval_for(&enforce), "restoring an insecure setting needs a second person");
}

#[test]
fn rotate_keeps_the_old_credential_for_a_week_unless_its_setting_says_otherwise() {
    let rotate = action(ActionKind::Rotate, None);
    let mut s = PolicySettings::default();
    assert_eq!(s.rollback_window_for(&rotate), time::Duration::days(7));
    s.kinds.insert(KindName::Rotate, KindSettings { rollback_window_secs: Some(3_600), ..KindSettings::default() });
    assert_eq!(s.rollback_window_for(&rotate), time::Duration::hours(1));
    assert!(s.rollback_requires_approval_for(&rotate), "reactivating a retired credential needs a second person");
    assert_eq!(crate::risk::blast_radius(KindName::Rotate, remediation_core::Reversibility::Reversible), 1);
}

#[test]
fn settings_parse_from_toml_and_reject_unknown_keys() {
    let s: PolicySettings =
        toml::from_str("enabled = true\ndefault_mode = \"auto\"\n[kinds.suspend]\nmode = \"manual\"\nreason = \"r\"\n")
            .expect("parse");
    assert!(s.enabled);
    assert_eq!(s.kinds[&KindName::Suspend].mode, Some(Mode::Manual));
    assert!(toml::from_str::<PolicySettings>("enabeld = true").is_err());
}

#[test]
fn irreversible_and_high_blast_radius_need_approval() {
    // revoke_sessions is irreversible: score 1 + 3 = 4, high risk.
    check(
        Case { kind: ActionKind::RevokeSessions, reversibility: Reversibility::Irreversible, ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["reversibility:approve"],
    );
    // suspend is reversible: score 2, medium, may run in auto.
    check(Case { kind: ActionKind::Suspend, ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
}

#[test]
fn risk_levels_follow_the_blast_radius() {
    use crate::blast_radius;
    #[track_caller]
    fn risk(kind: KindName, rev: Reversibility, score: u8, level: RiskLevel) {
        let r = remediation_core::Risk::from_score(blast_radius(kind, rev));
        assert_eq!((r.score, r.level), (score, level), "{kind} {rev}");
    }
    risk(KindName::Notify, Reversibility::Reversible, 0, RiskLevel::Low);
    risk(KindName::Revoke, Reversibility::Reversible, 1, RiskLevel::Low);
    risk(KindName::Suspend, Reversibility::Reversible, 2, RiskLevel::Medium);
    risk(KindName::Revoke, Reversibility::Lossy, 3, RiskLevel::Medium);
    risk(KindName::RevokeSessions, Reversibility::Irreversible, 4, RiskLevel::High);
    risk(KindName::Suspend, Reversibility::Irreversible, 5, RiskLevel::High);
}

#[test]
fn failing_prerequisite_drops_auto_to_manual() {
    let mut s = PolicySettings { enabled: true, default_mode: Mode::Auto, ..PolicySettings::default() };
    s.controls
        .insert("C-2".into(), ControlSettings { prerequisites: vec!["C-1".into()], ..ControlSettings::default() });
    check(
        Case { settings: s.clone(), control: Some("C-2"), ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["dependency:approve"],
    );
    s.controls
        .insert("C-1".into(), ControlSettings { status: crate::ControlStatus::Failing, ..ControlSettings::default() });
    check(
        Case { settings: s.clone(), control: Some("C-2"), ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["dependency:approve"],
    );
    s.controls
        .insert("C-1".into(), ControlSettings { status: crate::ControlStatus::Passing, ..ControlSettings::default() });
    check(Case { settings: s, control: Some("C-2"), ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
}

#[test]
fn stale_or_missing_emergency_access_verification_drops_auto_to_manual() {
    check(
        Case { state: SafetyState::default(), ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["emergency_access:approve"],
    );
    let stale =
        SafetyState { emergency_access_verified_at: Some(datetime!(2025-12-31 23:59 UTC)), ..SafetyState::default() };
    check(Case { state: stale, ..Case::default() }, Mode::Auto, Mode::Manual, &["emergency_access:approve"]);
    let exactly_30_days =
        SafetyState { emergency_access_verified_at: Some(datetime!(2026-01-01 00:00 UTC)), ..SafetyState::default() };
    check(Case { state: exactly_30_days, ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
    let mut settings = PolicySettings { enabled: true, default_mode: Mode::Auto, ..PolicySettings::default() };
    settings.emergency_access_max_age_days = 7;
    let week_old =
        SafetyState { emergency_access_verified_at: Some(datetime!(2026-01-23 00:00 UTC)), ..SafetyState::default() };
    check(
        Case { settings, state: week_old, ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["emergency_access:approve"],
    );
}

#[test]
fn kill_switch_refuses_execution_and_new_actions_but_not_guidance_or_dry_runs() {
    let on = || SafetyState { kill_switch: true, ..verified() };
    // A suggestion that could become executable is refused outright.
    check(Case { state: on(), ..Case::default() }, Mode::Auto, Mode::Auto, &["enablement:refuse"]);
    let manual = PolicySettings { enabled: true, default_mode: Mode::Manual, ..PolicySettings::default() };
    check(
        Case { state: on(), settings: manual, ..Case::default() },
        Mode::Manual,
        Mode::Manual,
        &["enablement:refuse"],
    );
    check(
        Case { state: on(), stage: Stage::Execute, ..Case::default() },
        Mode::Auto,
        Mode::Auto,
        &["enablement:refuse"],
    );
    // Advisory guidance and dry runs never write, so they still work.
    let advisory = PolicySettings { enabled: true, default_mode: Mode::Advisory, ..PolicySettings::default() };
    check(
        Case { state: on(), settings: advisory, ..Case::default() },
        Mode::Advisory,
        Mode::Advisory,
        &["enablement:approve"],
    );
    check(Case { state: on(), dry_run: true, ..Case::default() }, Mode::Auto, Mode::Manual, &["enablement:approve"]);
}

#[test]
fn validation_and_enablement_cannot_be_left_out() {
    let p = Pipeline::with_gates(PolicySettings::default(), Vec::new()).expect("pipeline");
    assert_eq!(p.gate_names(), ["validation", "enablement"]);
    let p = Pipeline::with_gates(PolicySettings::default(), vec![Box::new(crate::EnablementGate)]).expect("pipeline");
    assert_eq!(p.gate_names(), ["validation", "enablement"], "no gate runs twice");
}

#[test]
fn forced_dry_runs() {
    let a = action(ActionKind::Revoke, None);
    let s = PolicySettings { dry_run_connectors: vec!["sandbox".into()], ..PolicySettings::default() };
    assert!(s.forced_dry_run(&a));
    let s = PolicySettings { dry_run: true, ..PolicySettings::default() };
    assert!(s.forced_dry_run(&a));
    assert!(!PolicySettings::default().forced_dry_run(&a));
}

#[test]
fn auto_rollback_only_for_configured_low_risk_kinds() {
    let mut s = PolicySettings::default();
    for kind in [KindName::Revoke, KindName::Suspend] {
        s.kinds.insert(kind, KindSettings { auto_rollback_on_failed_verification: true, ..KindSettings::default() });
    }
    let p = Pipeline::standard(s).expect("pipeline");
    assert!(p.auto_rollback_on_failed_verification(&action(ActionKind::Revoke, None)), "revoke: score 1, low risk");
    assert!(!p.auto_rollback_on_failed_verification(&action(ActionKind::Suspend, None)), "suspend: medium risk");
    assert!(!p.auto_rollback_on_failed_verification(&action(ActionKind::Reduce { to: "pull".into() }, None)));
}

#[test]
fn approval_expiry_defaults_to_seven_days_and_must_be_at_least_a_minute() {
    assert_eq!(PolicySettings::default().approval_ttl(), time::Duration::days(7));
    let s = PolicySettings { approval_expiry_secs: 59, ..PolicySettings::default() };
    assert_eq!(s.validate(), Err(SettingsError::ApprovalExpiryTooShort { secs: 59 }));
    assert_eq!(PolicySettings::default().emergency_access_max_age_days, 30);
}

/// The settings an admin wrote for "notify-stale-owner": `notify` runs in auto (it only sends
/// a message); every other kind needs approval.
fn notify_auto_control() -> PolicySettings {
    let mut s = PolicySettings { enabled: true, default_mode: Mode::Manual, ..PolicySettings::default() };
    s.controls.insert(
        "notify-stale-owner".into(),
        ControlSettings {
            mode: Some(Mode::Auto),
            reason: Some("only sends a notification".into()),
            ..scoped(&[KindName::Notify])
        },
    );
    s
}

#[test]
fn a_control_override_cannot_be_borrowed_by_another_kind() {
    // A requester tags a suspension with the auto-mode notify control: it stays manual.
    check(
        Case {
            settings: notify_auto_control(),
            kind: ActionKind::Suspend,
            control: Some("notify-stale-owner"),
            ..Case::default()
        },
        Mode::Manual,
        Mode::Manual,
        &[],
    );
    // The kind the override names gets its mode.
    check(
        Case {
            settings: notify_auto_control(),
            kind: ActionKind::Notify,
            control: Some("notify-stale-owner"),
            ..Case::default()
        },
        Mode::Auto,
        Mode::Auto,
        &[],
    );
    // The same kind through a grant type or connector the override does not name: not borrowed.
    let mut other_connector = notify_auto_control();
    other_connector.controls.get_mut("notify-stale-owner").expect("control").connectors = Some(vec!["okta".into()]);
    check(
        Case {
            settings: other_connector,
            kind: ActionKind::Notify,
            control: Some("notify-stale-owner"),
            ..Case::default()
        },
        Mode::Manual,
        Mode::Manual,
        &[],
    );
    let mut other_grant = notify_auto_control();
    other_grant.controls.get_mut("notify-stale-owner").expect("control").grant_types = Some(vec!["account".into()]);
    check(
        Case {
            settings: other_grant,
            kind: ActionKind::Notify,
            control: Some("notify-stale-owner"),
            ..Case::default()
        },
        Mode::Manual,
        Mode::Manual,
        &[],
    );
}

#[test]
fn a_control_override_lowers_any_kind_but_raises_only_the_kinds_it_names() {
    let mut s = PolicySettings { enabled: true, default_mode: Mode::Auto, ..PolicySettings::default() };
    // Lowers a kind it does not name (suspend: auto by default) to advisory.
    s.controls.insert(
        "C-quiet".into(),
        ControlSettings { mode: Some(Mode::Advisory), reason: Some("noisy".into()), ..scoped(&[]) },
    );
    check(
        Case { settings: s.clone(), kind: ActionKind::Suspend, control: Some("C-quiet"), ..Case::default() },
        Mode::Advisory,
        Mode::Advisory,
        &[],
    );
    // Raises advisory to auto only for the kind it names.
    s.default_mode = Mode::Advisory;
    s.controls.insert(
        "C-loud".into(),
        ControlSettings { mode: Some(Mode::Auto), reason: Some("reviewed".into()), ..scoped(&[KindName::Revoke]) },
    );
    check(
        Case { settings: s.clone(), kind: ActionKind::Revoke, control: Some("C-loud"), ..Case::default() },
        Mode::Auto,
        Mode::Auto,
        &[],
    );
    check(
        Case { settings: s, kind: ActionKind::Suspend, control: Some("C-loud"), ..Case::default() },
        Mode::Advisory,
        Mode::Advisory,
        &[],
    );
}

#[test]
fn a_control_override_must_name_its_scope() {
    for missing in ["kinds", "grant_types", "connectors"] {
        let mut c = ControlSettings { mode: Some(Mode::Auto), reason: Some("r".into()), ..scoped(&[KindName::Notify]) };
        match missing {
            "kinds" => c.kinds = None,
            "grant_types" => c.grant_types = None,
            _ => c.connectors = None,
        }
        let mut s = PolicySettings::default();
        s.controls.insert("X".into(), c);
        let e = s.validate().expect_err("an override without scope is invalid");
        assert_eq!(e, SettingsError::ControlOverrideWithoutScope { control: "X".into(), key: missing });
        assert_eq!(e.key().as_deref(), Some(format!("controls.\"X\".{missing}").as_str()));
        assert!(e.to_string().contains("must name the `kinds`, `grant_types` and `connectors`"), "{e}");
    }
    // Without a mode, no scope is needed (never_auto, disabled and prerequisites only lower).
    let mut s = PolicySettings::default();
    s.controls.insert("Y".into(), ControlSettings { never_auto: true, ..ControlSettings::default() });
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn stored_settings_from_an_earlier_version_migrate_to_lower_only_overrides() {
    let stored = serde_json::json!({
        "enabled": true,
        "default_mode": "manual",
        "controls": {"notify-stale-owner": {"mode": "auto", "reason": "only sends a notification"}}
    });
    let (s, notes) = PolicySettings::from_stored(stored).expect("readable");
    assert_eq!(s.validate(), Ok(()));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("notify-stale-owner") && notes[0].contains("only lowers"), "{notes:?}");
    // The migrated override no longer raises anything, not even the kind it was meant for.
    for kind in [ActionKind::Suspend, ActionKind::Notify] {
        check(
            Case { settings: s.clone(), kind, control: Some("notify-stale-owner"), ..Case::default() },
            Mode::Manual,
            Mode::Manual,
            &[],
        );
    }
    // Settings that already name their scope are left alone.
    let mut current = notify_auto_control();
    assert!(current.migrate().is_empty());
    assert_eq!(current, notify_auto_control());
}

#[test]
fn a_wide_reversible_change_scores_four_and_needs_approval() {
    // A suspension is reversible (score 2); an account holding ten groups and applications
    // reaches far enough to score 4.
    check(Case { kind: ActionKind::Suspend, reach: Some(3), ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
    check(Case { kind: ActionKind::Suspend, reach: Some(9), ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
    check(
        Case { kind: ActionKind::Suspend, reach: Some(10), ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["reversibility:approve"],
    );
    // A revoke of one membership in a group many things depend on.
    check(Case { kind: ActionKind::Revoke, reach: Some(49), ..Case::default() }, Mode::Auto, Mode::Auto, &[]);
    check(
        Case { kind: ActionKind::Revoke, reach: Some(50), ..Case::default() },
        Mode::Auto,
        Mode::Manual,
        &["reversibility:approve"],
    );
    use crate::{blast_radius_reaching, reach_points};
    assert_eq!([0, 3, 4, 9, 10, 49, 50].map(|n| reach_points(Some(n))), [0, 0, 1, 1, 2, 2, 3]);
    assert_eq!(reach_points(None), 0);
    assert_eq!(blast_radius_reaching(KindName::Suspend, Reversibility::Reversible, Some(10)), 4);
}

#[test]
fn the_write_check_reads_the_settings_kept_in_the_store() {
    let pipeline = Pipeline::standard(PolicySettings { enabled: true, ..PolicySettings::default() }).expect("valid");
    let a = action(ActionKind::Revoke, Some("C-9"));
    assert_eq!(pipeline.write_refusal(&a, &verified()), None);
    let disabled = SafetyState { settings: Some(serde_json::json!({"enabled": false})), ..verified() };
    assert!(pipeline.write_refusal(&a, &disabled).is_some_and(|w| w.contains("remediation is disabled")));
    let control_off = SafetyState {
        settings: Some(serde_json::json!({"enabled": true, "controls": {"C-9": {"disabled": "under review"}}})),
        ..verified()
    };
    assert!(pipeline.write_refusal(&a, &control_off).is_some_and(|w| w.contains("control C-9 is disabled")));
    let kill = SafetyState { kill_switch: true, ..verified() };
    assert!(pipeline.write_refusal(&a, &kill).is_some_and(|w| w.contains("kill switch")));
    let unreadable = SafetyState { settings: Some(serde_json::json!({"enabled": "yes"})), ..verified() };
    assert!(pipeline.write_refusal(&a, &unreadable).is_some(), "unreadable settings never let a write through");
}

#[track_caller]
fn check_rollback_approval(settings: &PolicySettings, kind: ActionKind, expected: bool) {
    let p = Pipeline::standard(settings.clone()).expect("pipeline");
    assert_eq!(p.rollback_requires_approval(&action(kind.clone(), None)), expected, "{kind}");
}

#[test]
fn rollbacks_need_a_second_principal_by_default_for_every_kind_that_changes_something() {
    let defaults = PolicySettings::default();
    for kind in [
        ActionKind::Revoke,
        ActionKind::Reduce { to: "pull".into() },
        ActionKind::Suspend,
        ActionKind::RevokeSessions,
        ActionKind::ForcePasswordReset,
    ] {
        check_rollback_approval(&defaults, kind, true);
    }
    check_rollback_approval(&defaults, ActionKind::Notify, false);

    // Per kind, either way; other kinds keep their default.
    let mut s = PolicySettings::default();
    s.kinds
        .insert(KindName::Reduce, KindSettings { rollback_requires_approval: Some(false), ..KindSettings::default() });
    s.kinds
        .insert(KindName::Notify, KindSettings { rollback_requires_approval: Some(true), ..KindSettings::default() });
    check_rollback_approval(&s, ActionKind::Reduce { to: "pull".into() }, false);
    check_rollback_approval(&s, ActionKind::Notify, true);
    check_rollback_approval(&s, ActionKind::Revoke, true);

    // The key reads from a settings document and is left out when unset.
    let s: PolicySettings =
        serde_json::from_value(json!({"kinds": {"suspend": {"rollback_requires_approval": false}}})).expect("parse");
    check_rollback_approval(&s, ActionKind::Suspend, false);
    let written = serde_json::to_value(KindSettings::default()).expect("write");
    assert!(written.get("rollback_requires_approval").is_none(), "{written}");
}
