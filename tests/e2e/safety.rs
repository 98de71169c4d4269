//! Safety rules through the real binary: modes and controls, gates, the kill switch,
//! blast-radius limits and the circuit breaker, plans bound to approvals, drift, findings.
//! Each test states the rule it proves.

use remediation_e2e::Env;
use serde_json::Value;

use crate::{REVOKE_ALICE_ADMINS, admins, writes};

const ROOT: &str = "local:root";

/// Enabled, alice requester, bob approver, root admin.
fn env() -> Env {
    let env = Env::new();
    env.init_enabled();
    env.edit_config(|t| t.replace("[actors.roles]\n", "[actors.roles]\n\"local:root\" = \"admin\"\n"));
    env
}

fn suggest(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["suggest", "--connector", "sandbox", "--output", "json"];
    all.extend_from_slice(args);
    env.expect("local:alice", &all, 0).json()
}

fn revoke(env: &Env, user: &str, group: &str) -> String {
    let s = suggest(
        env,
        &[
            "--kind",
            "revoke",
            "--identity",
            user,
            "--resource",
            group,
            "--grant-type",
            "group_membership",
            "--reason",
            "r",
        ],
    );
    s["action"]["id"].as_str().expect("id").to_owned()
}

/// The arguments of a suggestion to revoke carol's engineering membership, plus `extra`.
pub(crate) fn revoke_carol_engineering<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "suggest",
        "--connector",
        "sandbox",
        "--kind",
        "revoke",
        "--identity",
        "carol",
        "--resource",
        "engineering",
        "--grant-type",
        "group_membership",
        "--reason",
        "r",
    ];
    args.extend_from_slice(extra);
    args
}

fn approved(env: &Env, user: &str, group: &str) -> String {
    let id = revoke(env, user, group);
    env.expect("local:bob", &["approve", &id], 0);
    id
}

fn state(env: &Env, id: &str) -> String {
    env.expect("local:bob", &["show", id, "--output", "json"], 0).json()["action"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Changes a setting as root; a loosening change is confirmed by a second admin.
fn set(env: &Env, key: &str, value: &str) {
    let run = env.expect(ROOT, &["settings", "set", key, value, "--reason", "test"], 0);
    if run.stdout.contains("waiting for a second admin") {
        env.confirm_pending();
    }
}

fn last_transition(env: &Env, id: &str) -> Value {
    let show = env.expect("local:bob", &["show", id, "--output", "json"], 0).json();
    show["transitions"].as_array().and_then(|t| t.last().cloned()).unwrap_or_default()
}

#[test]
fn kill_switch_cancels_waiting_actions_and_nothing_resumes() {
    let env = env();
    let waiting = approved(&env, "alice", "admins");
    let pending = revoke(&env, "bob", "admins");
    // Only an admin may pull it.
    env.expect("local:bob", &["kill-switch", "on", "--reason", "x"], 3);
    let on = env.expect(ROOT, &["kill-switch", "on", "--reason", "incident 7", "--output", "json"], 0).json();
    assert_eq!(on["cancelled"].as_array().map(Vec::len), Some(2), "{on}");
    for id in [&waiting, &pending] {
        let t = last_transition(&env, id);
        assert_eq!(
            (t["to"].as_str(), t["actor"].as_str(), t["event"].as_str()),
            (Some("cancelled"), Some(ROOT), Some("kill_switch"))
        );
    }
    // While on, no new action is created: the refusal is clear and audited.
    let refused = env.expect("local:alice", &revoke_carol_engineering(&[]), 3);
    assert!(refused.stderr.contains("kill switch") && refused.stderr.contains("no new action"), "{}", refused.stderr);
    let audit = env.expect("local:bob", &["audit", "export"], 0).stdout;
    let refusal = audit.lines().find(|l| l.contains("suggestion_refused")).expect("the refusal is audited");
    assert!(refusal.contains("local:alice") && refusal.contains("carol"), "{refusal}");
    // Advisory guidance still works.
    set(&env, "default_mode", "advisory");
    let guidance = revoke(&env, "carol", "engineering");
    assert_eq!(state(&env, &guidance), "suggested");
    set(&env, "default_mode", "manual");
    // Off waits for a second admin: root cannot confirm its own change, and until another
    // admin does, the switch stays on.
    let off = env.expect(ROOT, &["kill-switch", "off", "--reason", "resolved", "--output", "json"], 0).json();
    let change = off["pending_change"]["id"].as_str().expect("a pending change").to_owned();
    env.expect(ROOT, &["pending", "confirm", &change], 3);
    let status = env.expect("local:bob", &["kill-switch", "status"], 0);
    assert!(status.stdout.to_lowercase().contains("kill switch on"), "{}", status.stdout);
    env.expect("local:admin2", &["pending", "confirm", &change, "--note", "checked"], 0);
    assert_eq!(state(&env, &waiting), "cancelled", "off: nothing resumes by itself");
    assert_eq!(writes(&env), 0);
    // An action approved while the switch is off is cancelled when it goes on again, and the
    // cancelled action cannot be executed.
    let fresh = approved(&env, "carol", "engineering");
    env.expect(ROOT, &["kill-switch", "on", "--reason", "incident 7 again"], 0);
    assert_eq!(state(&env, &fresh), "cancelled");
    env.expect("local:bob", &["execute", &fresh], 3);
    let off = env.expect(ROOT, &["kill-switch", "off", "--reason", "resolved", "--output", "json"], 0).json();
    let change = off["pending_change"]["id"].as_str().expect("a pending change").to_owned();
    env.expect("local:admin2", &["pending", "confirm", &change], 0);
    let fresh = approved(&env, "carol", "engineering");
    env.expect("local:bob", &["execute", &fresh], 0);
    let verify = env.expect("local:bob", &["audit", "verify"], 0);
    assert!(verify.stdout.contains("intact"), "{}", verify.stdout);
}

#[test]
fn a_full_identity_window_holds_until_an_admin_forces_it() {
    let env = env();
    env.edit_config(|t| t.replace("per_identity = { max = 5,", "per_identity = { max = 1,"));
    let first = approved(&env, "alice", "admins");
    let second = approved(&env, "alice", "engineering");
    env.expect("local:bob", &["execute", &first], 0);
    let held = env.expect("local:bob", &["execute", &second, "--output", "json"], 3).json();
    assert_eq!(held["outcome"], "held");
    assert_eq!(held["limit"]["slot"]["key"], "identity:sandbox:alice");
    // The window frees a day after the first execution took its slot, and the hold says so.
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap_or_default(), &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{v}: {e}"))
    };
    let shown = env.expect("local:bob", &["show", &first, "--output", "json"], 0).json();
    let began = shown["transitions"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["to"] == "executing"))
        .map(|t| parse(&t["at"]))
        .expect("an executing transition");
    assert_eq!(parse(&held["limit"]["frees_at"]) - began, time::Duration::days(1), "{held}");
    // Released before then, it is held again at once, and says until when.
    env.expect(ROOT, &["release", &second], 0);
    let again = env.expect("local:bob", &["execute", &second], 3);
    let said = format!("{}{}", again.stdout, again.stderr);
    assert!(said.contains("the window frees at ") && said.contains("held again"), "{said}");
    assert!(std::fs::read_to_string(env.dir().join("events.jsonl")).expect("events").contains("\"type\":\"held\""));
    let list = env.expect("local:bob", &["held", "list", "--output", "json"], 0).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    // A dry run checks limits without consuming them.
    let status = env.expect("local:bob", &["limits", "status", "--output", "json"], 0).json();
    let used = |s: &Value, key: &str| {
        s["usage"].as_array().and_then(|u| u.iter().find(|x| x["key"] == key)).map(|x| x["used"].clone())
    };
    assert_eq!(used(&status, "identity:sandbox:alice"), Some(1.into()));
    // Force needs an admin and a reason; it counts against the window.
    env.expect("local:bob", &["force-execute", &second, "--reason", "approved by CISO"], 3);
    env.expect(ROOT, &["force-execute", &second, "--reason", "approved by CISO"], 0);
    assert_eq!(state(&env, &second), "completed");
    let t = env.expect("local:bob", &["show", &second, "--output", "json"], 0).json();
    let force = t["transitions"].as_array().and_then(|ts| ts.iter().find(|x| x["event"] == "force_execute").cloned());
    assert_eq!(force.and_then(|f| f["comment"].as_str().map(str::to_owned)).as_deref(), Some("approved by CISO"));
    let status = env.expect("local:bob", &["limits", "status", "--output", "json"], 0).json();
    assert_eq!(used(&status, "identity:sandbox:alice"), Some(2.into()));
}

#[test]
fn the_global_breaker_pauses_everything_until_reset() {
    let env = env();
    env.edit_config(|t| t.replace("global = { max = 200,", "global = { max = 1,"));
    let first = approved(&env, "alice", "admins");
    let second = approved(&env, "bob", "admins");
    let third = approved(&env, "carol", "engineering");
    env.expect("local:bob", &["execute", &first], 0);
    env.expect("local:bob", &["execute", &second], 3);
    let status = env.expect("local:bob", &["breaker", "status", "--output", "json"], 0).json();
    assert_eq!(status["breaker_tripped"], true);
    let held = env.expect("local:bob", &["execute", &third, "--output", "json"], 3).json();
    assert_eq!(held["breaker"], true);
    env.expect("local:bob", &["breaker", "reset", "--reason", "x"], 3);
    env.expect(ROOT, &["breaker", "reset", "--reason", "reviewed"], 0);
    assert_eq!(state(&env, &third), "held", "nothing resumes by itself");
    env.expect(ROOT, &["release", &third], 0);
    assert_eq!(state(&env, &third), "approved");
    env.expect("local:bob", &["audit", "verify"], 0);
}

#[test]
fn advisory_mode_gives_guidance_and_never_executes() {
    let env = env();
    set(&env, "default_mode", "advisory");
    let s =
        suggest(&env, &["--kind", "suspend", "--identity", "carol", "--grant-type", "account", "--reason", "dormant"]);
    assert_eq!(s["action"]["state"], "suggested");
    for field in ["issue", "why_it_matters", "recommended_actions", "manual_steps"] {
        assert!(!s["guidance"][field].is_null(), "guidance lacks {field}: {}", s["guidance"]);
    }
    let id = s["action"]["id"].as_str().expect("id");
    env.expect("local:bob", &["execute", id], 3);
    let settings = env.expect("local:bob", &["settings", "show"], 0).json();
    assert_eq!(settings["source"], "store");
}

#[test]
fn auto_mode_needs_every_gate() {
    let env = env();
    set(&env, "default_mode", "auto");
    // Emergency access never verified: auto drops to manual and says why.
    let s = suggest(
        &env,
        &[
            "--kind",
            "revoke",
            "--identity",
            "alice",
            "--resource",
            "admins",
            "--grant-type",
            "group_membership",
            "--reason",
            "r",
        ],
    );
    assert_eq!(s["action"]["state"], "pending_approval");
    let failed: Vec<&str> = s["decision"]["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .filter(|g| g["passed"] == false)
        .filter_map(|g| g["gate"].as_str())
        .collect();
    assert_eq!(failed, ["emergency_access"]);
    env.expect(ROOT, &["emergency-access", "verify", "--note", "signed in with breakglass"], 0);
    let s = suggest(
        &env,
        &[
            "--kind",
            "revoke",
            "--identity",
            "bob",
            "--resource",
            "admins",
            "--grant-type",
            "group_membership",
            "--reason",
            "r",
        ],
    );
    assert_eq!(s["action"]["state"], "approved", "{s}");
    assert_eq!(s["decision"]["risk"]["level"], "low");
    // Irreversible: never auto, high risk.
    let s = suggest(
        &env,
        &["--kind", "revoke_sessions", "--identity", "alice", "--grant-type", "account", "--reason", "r"],
    );
    assert_eq!(s["action"]["state"], "pending_approval");
    assert_eq!(s["decision"]["risk"]["level"], "high");
    // A never_auto control, a failing prerequisite, a disabled control.
    env.expect(ROOT, &["controls", "set", "C-NA", "--never-auto", "true", "--reason", "sensitive"], 0);
    env.expect(ROOT, &["controls", "set", "C-DEP", "--prerequisites", "C-BASE", "--reason", "order"], 0);
    env.expect(ROOT, &["controls", "set", "C-OFF", "--disable", "false positives", "--reason", "triage"], 0);
    let with_control = |c: &str| {
        suggest(
            &env,
            &[
                "--kind",
                "revoke",
                "--identity",
                "carol",
                "--resource",
                "engineering",
                "--grant-type",
                "group_membership",
                "--reason",
                "r",
                "--control",
                c,
            ],
        )
    };
    assert_eq!(with_control("C-NA")["action"]["state"], "pending_approval");
    assert_eq!(with_control("C-DEP")["action"]["state"], "pending_approval");
    env.expect(ROOT, &["controls", "set", "C-BASE", "--status", "passing", "--reason", "fixed"], 0);
    assert_eq!(with_control("C-DEP")["action"]["state"], "approved");
    let off = env.expect("local:alice", &revoke_carol_engineering(&["--control", "C-OFF"]), 3);
    assert!(off.stderr.contains("false positives"), "{}", off.stderr);
    let list = env.expect("local:bob", &["controls", "list"], 0);
    assert!(list.stdout.contains("C-OFF"), "{}", list.stdout);
    // Every settings change is in the audit chain.
    let export = env.expect("local:bob", &["audit", "export"], 0);
    assert!(export.stdout.lines().filter(|l| l.contains("settings_changed")).count() >= 5, "{}", export.stdout);
    env.expect("local:bob", &["audit", "verify"], 0);
}

#[test]
fn invalid_settings_are_refused_with_the_key() {
    let env = env();
    let run = env.expect(ROOT, &["settings", "set", "kinds.revoke", "{\"mode\":\"auto\"}", "--reason", "x"], 2);
    assert!(run.stderr.contains("reason"), "{}", run.stderr);
    let run = env.expect(ROOT, &["settings", "set", "enabeld", "true", "--reason", "x"], 2);
    assert!(run.stderr.contains("enabeld"), "{}", run.stderr);
    env.expect("local:bob", &["settings", "set", "enabled", "false", "--reason", "x"], 3);
}

#[test]
fn a_changed_plan_voids_approvals_and_show_displays_the_diff() {
    let env = env();
    let s = suggest(&env, &["--kind", "suspend", "--identity", "carol", "--grant-type", "account", "--reason", "r"]);
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    // Someone signs carol in between approval and execution: a new session.
    let mut dir = env.sandbox();
    dir["users"]["carol"]["sessions"].as_array_mut().expect("sessions").push("s-new".into());
    env.write_sandbox(&dir);
    let out = env.expect("local:bob", &["execute", &id, "--output", "json"], 3).json();
    assert_eq!(out["outcome"], "plan_changed");
    assert_eq!(state(&env, &id), "pending_approval");
    let show = env.expect("local:bob", &["show", &id], 0);
    assert!(show.stdout.contains("s-new"), "show displays the diff:\n{}", show.stdout);
    // The earlier approval no longer counts.
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    assert_eq!(writes(&env), 1);
}

#[test]
fn rollback_refuses_when_the_target_drifted() {
    let env = env();
    let id = approved(&env, "alice", "admins");
    env.expect("local:bob", &["execute", &id], 0);
    // Someone re-adds alice by hand.
    let mut dir = env.sandbox();
    dir["groups"]["admins"]["members"].as_array_mut().expect("members").push("alice".into());
    env.write_sandbox(&dir);
    let run = env.expect("local:bob", &["rollback", &id], 3);
    assert!(run.stderr.contains("changed since execution"), "{}", run.stderr);
    assert!(admins(&env).contains(&"alice".to_owned()));
    assert_eq!(state(&env, &id), "completed");
}

#[test]
fn a_finding_becomes_a_suggestion() {
    let env = env();
    let finding = env.dir().join("finding.json");
    std::fs::write(
        &finding,
        r#"{"id": "F-9", "source": "scanner", "control_id": "CIS-1.2", "severity": "high",
            "title": "alice holds standing admin", "connector": "sandbox",
            "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
            "suggested_kind": {"type": "revoke"}}"#,
    )
    .expect("write");
    let s = env
        .expect("local:alice", &["suggest", "--finding", finding.to_str().expect("utf8"), "--output", "json"], 0)
        .json();
    assert_eq!(s["action"]["finding_id"], "F-9");
    assert_eq!(s["action"]["control_id"], "CIS-1.2");
    assert_eq!(s["action"]["state"], "pending_approval");
    // Flags that say what to do are never silently dropped: `--setting` on a revoke is refused.
    let path = finding.to_str().expect("utf8");
    let run = env.expect("local:alice", &["suggest", "--finding", path, "--setting", "x", "--value", "y"], 2);
    assert!(run.stderr.contains("--kind enforce"), "{}", run.stderr);
    std::fs::write(&finding, "{\"id\": 1}").expect("write");
    let bad = env.expect("local:alice", &["suggest", "--finding", finding.to_str().expect("utf8")], 2);
    assert!(bad.stderr.contains("finding"), "{}", bad.stderr);
}

#[test]
fn the_same_finding_twice_locally_is_one_action() {
    let env = env();
    let finding = env.dir().join("finding.json");
    // No connector: intake picks the one healthy connector that can revoke a group membership.
    std::fs::write(
        &finding,
        r#"{"id": "F-9", "source": "scanner", "control_id": "CIS-1.2", "severity": "high",
            "title": "alice holds standing admin",
            "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
            "suggested_kind": {"type": "revoke"}}"#,
    )
    .expect("write");
    let path = finding.to_str().expect("utf8");
    let first = env.expect("local:alice", &["suggest", "--finding", path, "--output", "json"], 0).json();
    assert_eq!(first["intake"], "created", "{first}");
    assert_eq!(first["action"]["connector"], "sandbox", "{first}");
    let again = env.expect("local:alice", &["suggest", "--finding", path, "--output", "json"], 0).json();
    assert_eq!(again["intake"], "existing", "{again}");
    assert_eq!(again["action"]["id"], first["action"]["id"], "{again}");
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    // A grant type no connector supports is refused with exit 2, naming each candidate.
    std::fs::write(
        &finding,
        r#"{"id": "F-10", "source": "scanner", "control_id": "CIS-1.3", "severity": "high", "title": "t",
            "target": {"identity": "alice", "grant_type": "mainframe_racf"}, "suggested_kind": {"type": "revoke"}}"#,
    )
    .expect("write");
    let refused = env.expect("local:alice", &["suggest", "--finding", path], 2);
    assert!(refused.stderr.contains("sandbox: no capability"), "{}", refused.stderr);
}

#[test]
fn plan_and_dry_run_write_nothing() {
    let env = env();
    let id = approved(&env, "alice", "admins");
    let plan = env.expect("local:bob", &["plan", &id, "--output", "json"], 0).json();
    assert_eq!(plan["plan_hash"].as_str().map(str::len), Some(64));
    set(&env, "dry_run_connectors", "[\"sandbox\"]");
    let out = env.expect("local:bob", &["execute", &id, "--output", "json"], 0).json();
    assert_eq!(out["outcome"], "dry_run", "a connector in dry-run mode writes nothing");
    assert_eq!(writes(&env), 0);
    assert_eq!(state(&env, &id), "approved");
    let _ = REVOKE_ALICE_ADMINS;
}

#[test]
fn a_notification_is_not_drift_for_an_account_action() {
    let env = env();
    let s = suggest(&env, &["--kind", "suspend", "--identity", "carol", "--grant-type", "account", "--reason", "r"]);
    let suspend = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &suspend], 0);
    env.expect("local:bob", &["execute", &suspend], 0);
    let n =
        suggest(&env, &["--kind", "notify", "--identity", "carol", "--grant-type", "notification", "--reason", "told"]);
    let notify = n["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &notify], 0);
    env.expect("local:bob", &["execute", &notify], 0);
    assert_eq!(env.sandbox()["notifications"].as_array().map(Vec::len), Some(1));
    env.expect("local:bob", &["rollback", &suspend], 3);
    assert_eq!(env.sandbox()["users"]["carol"]["status"], "suspended", "waits for a second approver");
    env.expect("local:dave", &["approve", &suspend], 0);
    assert_eq!(env.sandbox()["users"]["carol"]["status"], "active");
}

#[test]
fn a_wide_suspension_scores_four_and_needs_a_human() {
    let env = env();
    set(&env, "default_mode", "auto");
    env.expect(ROOT, &["emergency-access", "verify", "--note", "signed in with breakglass"], 0);
    let suspend = |user: &str| {
        suggest(&env, &["--kind", "suspend", "--identity", user, "--grant-type", "account", "--reason", "offboarded"])
    };
    // carol holds one group and one repository: a reversible suspension runs in auto.
    let narrow = suspend("carol");
    assert_eq!(
        (narrow["action"]["state"].as_str(), narrow["decision"]["risk"]["score"].as_u64()),
        (Some("approved"), Some(2))
    );
    // bob (two groups, two grants) is given ten more groups: the same change reaches 14.
    let mut dir = env.sandbox();
    for n in 0..10 {
        dir["groups"][format!("team-{n}")] = serde_json::json!({"members": ["bob"], "protected": false});
    }
    env.write_sandbox(&dir);
    let wide = suspend("bob");
    assert_eq!(wide["action"]["state"], "pending_approval", "{wide}");
    assert_eq!(wide["decision"]["risk"]["score"], 4, "{wide}");
    assert_eq!(wide["plan"]["reach"], 14, "{wide}");
    let gate = wide["decision"]["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gate"] == "reversibility").cloned())
        .unwrap_or_default();
    assert_eq!(gate["passed"], false, "{gate}");
    assert!(gate["reason"].as_str().unwrap_or_default().contains("reaches 14"), "{gate}");
    // It cannot run before a human approves it.
    env.expect("local:bob", &["execute", wide["action"]["id"].as_str().unwrap_or_default()], 3);
    assert_eq!(writes(&env), 0);
}

#[test]
fn a_control_set_to_auto_for_notifications_cannot_carry_a_suspension() {
    let env = env();
    env.expect(ROOT, &["emergency-access", "verify", "--note", "signed in with breakglass"], 0);
    // Without naming what it is for, the override is refused.
    let bare = env.expect(
        ROOT,
        &["controls", "set", "notify-stale-owner", "--mode", "auto", "--reason", "only sends a notification"],
        2,
    );
    assert!(bare.stderr.contains("kinds"), "{}", bare.stderr);
    env.expect(
        ROOT,
        &[
            "controls",
            "set",
            "notify-stale-owner",
            "--mode",
            "auto",
            "--kinds",
            "notify",
            "--grant-types",
            "notification",
            "--connectors",
            "sandbox",
            "--reason",
            "only sends a notification",
            "--override-earned",
            "a notification changes no access",
        ],
        0,
    );
    // Switching to auto waits for a second admin.
    env.confirm_pending();
    // A requester tags a suspension with that control: it waits for a human.
    let s = suggest(
        &env,
        &[
            "--kind",
            "suspend",
            "--identity",
            "bob",
            "--grant-type",
            "account",
            "--control",
            "notify-stale-owner",
            "--reason",
            "stale owner",
        ],
    );
    assert_eq!(
        (s["action"]["state"].as_str(), s["decision"]["mode"].as_str()),
        (Some("pending_approval"), Some("manual"))
    );
    // The notification it was set up for gets its mode (a sandbox notification cannot be
    // read back or undone, so its own gates still ask for a human).
    let n = suggest(
        &env,
        &[
            "--kind",
            "notify",
            "--identity",
            "bob",
            "--grant-type",
            "notification",
            "--control",
            "notify-stale-owner",
            "--reason",
            "stale owner",
        ],
    );
    assert_eq!(n["decision"]["mode"], "auto", "{n}");
}

#[test]
fn an_enforce_needs_a_well_formed_setting_and_value_and_a_connector_that_can() {
    let env = env();
    let base = ["suggest", "--connector", "sandbox", "--identity", "bucket-1", "--grant-type", "s3_bucket"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra, &["--reason", "r"]].concat()
    }
    // The command line's own checks: enforce needs both, and they belong to enforce only.
    let run = env.expect("local:alice", &with(&base, &["--kind", "enforce", "--setting", "s3_public_access_block"]), 2);
    assert!(run.stderr.contains("--value"), "{}", run.stderr);
    let run = env.expect(
        "local:alice",
        &with(&base, &["--kind", "revoke", "--setting", "s3_public_access_block", "--value", "all"]),
        2,
    );
    assert!(run.stderr.contains("--kind enforce"), "{}", run.stderr);
    // The engine's: a setting that is not a name is refused before the connector sees it.
    let run =
        env.expect("local:alice", &with(&base, &["--kind", "enforce", "--setting", "../acl", "--value", "all"]), 3);
    assert!(run.stderr.contains("not a setting name"), "{}", run.stderr);
    // The sandbox enforces nothing: refused as unsupported, naming what it supports.
    let run = env.expect(
        "local:alice",
        &with(&base, &["--kind", "enforce", "--setting", "s3_public_access_block", "--value", "all"]),
        3,
    );
    assert!(run.stderr.contains("cannot enforce"), "{}", run.stderr);
}

#[test]
fn an_enforce_runs_its_lifecycle_on_the_sandbox_and_a_drifted_setting_is_not_rolled_back() {
    let env = env();
    let enforce = |setting: &str| {
        let args = ["--kind", "enforce", "--setting", setting, "--value", "default", "--identity", "reports"];
        let s = suggest(&env, &[&args[..], &["--grant-type", "resource_setting", "--reason", "r"]].concat());
        s["action"]["id"].as_str().expect("id").to_owned()
    };
    let setting = |env: &Env, name: &str| env.sandbox()["resources"]["reports"]["settings"][name].clone();
    let id = enforce("default_encryption");
    let shown = env.expect("local:bob", &["show", &id, "--output", "json"], 0).json();
    let plan = shown["plan"].to_string();
    assert!(plan.contains("from `none` to `kms:alias/reports`"), "the plan names the configured value: {shown}");
    assert_eq!(shown["plan"]["reach"], 1, "the site the bucket serves: {shown}");
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    assert_eq!(state(&env, &id), "completed");
    assert_eq!(setting(&env, "default_encryption"), "kms:alias/reports");
    // Restoring an insecure setting waits for a second person, then restores it exactly.
    env.expect("local:bob", &["rollback", &id], 3);
    assert_eq!(setting(&env, "default_encryption"), "kms:alias/reports");
    env.expect(ROOT, &["approve", &id], 0);
    assert_eq!(state(&env, &id), "rolled_back");
    assert_eq!(setting(&env, "default_encryption"), "none");

    // Someone changes the setting by hand after the fix: the rollback refuses.
    let id = enforce("public_access_block");
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    let mut dir = env.sandbox();
    dir["resources"]["reports"]["settings"]["public_access_block"] = "partial".into();
    env.write_sandbox(&dir);
    let run = env.expect("local:bob", &["rollback", &id], 3);
    assert!(run.stderr.contains("changed since execution"), "{}", run.stderr);
    assert_eq!(setting(&env, "public_access_block"), "partial");
    assert_eq!(state(&env, &id), "completed");
}
