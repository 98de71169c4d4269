//! Gate and mode-resolution tests over hand-built contexts.

use remediation_core::{
    Action, ActionKind, Capability, GateContext, Health, KindName, Mode, Permissions, Plan, PlannedChange,
    Reversibility, SafetyPolicy, Snapshot, Stage, Target,
};
use serde_json::json;

use crate::{ControlSettings, KindSettings, Pipeline, PolicySettings, SettingsError};

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
        }
    }
}

/// Runs the standard pipeline and returns (resolved mode, effective mode, failures as `gate:refuse|approve`).
fn run(case: Case) -> (Mode, Mode, Vec<String>) {
    let action = action(case.kind, case.control);
    let before = Snapshot { protected: case.protected, state: json!({"member": true}) };
    let after = if case.no_op {
        before.clone()
    } else {
        Snapshot { protected: case.protected, state: json!({"member": false}) }
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
    .expect("plan");
    let capability = Capability {
        kind: action.kind.name(),
        grant_type: "group_membership".into(),
        reversibility: case.reversibility,
        observable: case.observable,
    };
    let health = Health { healthy: case.healthy, detail: "down".into() };
    let permissions = Permissions { missing: case.missing };
    let ctx = GateContext {
        stage: case.stage,
        action: &action,
        capability: &capability,
        plan: &plan,
        health: &health,
        permissions: &permissions,
        now: time::macros::datetime!(2026-01-01 00:00 UTC),
        dry_run: false,
    };
    let pipeline = Pipeline::standard(case.settings).expect("valid settings");
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
        ControlSettings { mode: Some(Mode::Advisory), reason: Some("noisy".into()), ..ControlSettings::default() },
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
fn settings_parse_from_toml_and_reject_unknown_keys() {
    let s: PolicySettings =
        toml::from_str("enabled = true\ndefault_mode = \"auto\"\n[kinds.suspend]\nmode = \"manual\"\nreason = \"r\"\n")
            .expect("parse");
    assert!(s.enabled);
    assert_eq!(s.kinds[&KindName::Suspend].mode, Some(Mode::Manual));
    assert!(toml::from_str::<PolicySettings>("enabeld = true").is_err());
}
