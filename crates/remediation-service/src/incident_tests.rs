//! Incident response over a runtime on the sandbox: finding a person, responding, and
//! playbook runs with approval, re-approval, limits, compensation and rollback.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use remediation_config::{Config, ConnectorConfig};
use remediation_connector_sandbox::{Directory, load, save, write_sample};
use remediation_core::{
    ActionFilter, ActionKind, ActionRequest, Actor, AuditBody, AuditFilter, EngineError, KindName, Preapproval, Role,
    State, Target,
};
use remediation_runtime::{Runtime, RuntimeOptions};
use remediation_testkit::InMemoryStore;

use super::*;
use crate::playbooks::{self, RunState, StepState};

fn rita() -> Actor {
    Actor::new("local:rita", Role::Responder)
}
fn ann() -> Actor {
    Actor::new("local:ann", Role::Requester)
}
fn ben() -> Actor {
    Actor::new("local:ben", Role::Approver)
}
fn root() -> Actor {
    Actor::new("local:root", Role::Admin)
}

struct World {
    _dir: tempfile::TempDir,
    sandbox: PathBuf,
    rt: Runtime,
}

impl World {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let sandbox = dir.path().join("directory.json");
        write_sample(&sandbox).expect("sample");
        let mut config =
            Config { connectors: vec![ConnectorConfig::sandbox("sandbox", &sandbox)], ..Config::default() };
        config.policy.enabled = true;
        edit(&mut config);
        let options = RuntimeOptions { store: Some(Arc::new(InMemoryStore::new())), ..RuntimeOptions::default() };
        let rt = Runtime::build(&config, dir.path(), None, options).expect("runtime");
        Self { _dir: dir, sandbox, rt }
    }

    fn dir(&self) -> Directory {
        load(&self.sandbox).expect("load")
    }

    fn edit(&self, f: impl FnOnce(&mut Directory)) {
        let mut d = self.dir();
        f(&mut d);
        save(&self.sandbox, &d).expect("save");
    }

    fn alice(&self) -> remediation_connector_sandbox::User {
        self.dir().users["alice"].clone()
    }

    async fn transitions(&self) -> Vec<remediation_core::TransitionRecord> {
        let records = self.rt.store().audit_page(&AuditFilter::default(), None, 10_000).await.expect("audit");
        records
            .into_iter()
            .filter_map(|r| match r.body {
                AuditBody::Transition(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    async fn notes(&self, event: &str) -> Vec<remediation_core::SettingsRecord> {
        let records = self.rt.store().audit_page(&AuditFilter::default(), None, 10_000).await.expect("audit");
        records
            .into_iter()
            .filter_map(|r| match r.body {
                AuditBody::Settings(s) if s.setting_event == event => Some(s),
                _ => None,
            })
            .collect()
    }
}

fn request(actions: &[&str]) -> RespondRequest {
    RespondRequest {
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        reason: "credentials found on a paste site".into(),
        finding: Some("F-leak-1".into()),
    }
}

fn is_member(d: &Directory, group: &str, user: &str) -> bool {
    d.groups[group].members.iter().any(|m| m == user)
}

#[tokio::test]
async fn a_person_is_found_by_verified_email_with_the_connectors_view() {
    let w = World::new();
    let view = identity(&w.rt, "Alice@Example.com").await.expect("identity");
    assert_eq!(view.accounts.len(), 1, "{view:?}");
    let found = &view.accounts[0];
    assert_eq!((found.connector.as_str(), found.account.id.as_str()), ("sandbox", "alice"));
    assert_eq!(found.account.sessions, Some(2));
    assert!(found.account.groups.as_ref().is_some_and(|g| g.contains(&"admins".to_owned())), "{found:?}");
    assert!(found.can.contains(&KindName::RevokeSessions) && found.can.contains(&KindName::Suspend));

    let nobody = identity(&w.rt, "nobody@example.com").await.expect("identity");
    assert!(nobody.accounts.is_empty() && nobody.not_found == ["sandbox"], "{nobody:?}");
    for hostile in ["../alice", "alice@example.com\" or \"1", ".."] {
        assert!(matches!(identity(&w.rt, hostile).await, Err(ServiceError::Invalid { field: "identity", .. })));
    }
}

#[tokio::test]
async fn emergency_kinds_run_at_once_recorded_with_the_responder_and_others_wait_for_approval() {
    let w = World::new();
    let result =
        respond(&w.rt, &rita(), "alice@example.com", &request(&["revoke_sessions", "force_password_reset", "suspend"]))
            .await
            .expect("respond");
    let outcome: Vec<(KindName, StepStatus)> = result.steps.iter().map(|s| (s.action, s.status)).collect();
    assert_eq!(
        outcome,
        [
            (KindName::RevokeSessions, StepStatus::Completed),
            (KindName::ForcePasswordReset, StepStatus::Completed),
            (KindName::Suspend, StepStatus::PendingApproval),
        ]
    );
    assert_eq!(result.outcome, RespondOutcome::Partial, "a step waiting for approval is an outcome of a 207");
    let alice = w.alice();
    assert!(alice.sessions.is_empty() && alice.password_must_change, "{alice:?}");
    assert_eq!(alice.status, remediation_connector_sandbox::UserStatus::Active, "suspend waits for approval");

    // Each emergency action is recorded as one, decided by the responder, with the reason.
    let emergency: Vec<_> = w.transitions().await.into_iter().filter(|t| t.event == "emergency").collect();
    assert_eq!(emergency.len(), 2);
    for t in &emergency {
        assert_eq!((t.decided_by.as_deref(), t.actor.as_str()), (Some("local:rita"), "local:rita"));
        assert!(t.comment.as_deref().is_some_and(|c| c.contains("emergency response by local:rita")), "{t:?}");
        assert_eq!(t.to, State::Approved);
    }
    // And the attempt itself, whatever came of it.
    let notes = w.notes("incident_response").await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].value["outcome"], "partial");

    let only_emergency =
        respond(&w.rt, &rita(), "bob@example.com", &request(&["revoke_sessions"])).await.expect("respond");
    assert_eq!(only_emergency.outcome, RespondOutcome::Completed);
}

#[tokio::test]
async fn refusals_come_in_the_documented_order_and_are_recorded() {
    let w = World::new();
    // Not a responder: the role is refused.
    for actor in [ann(), ben()] {
        let e = respond(&w.rt, &actor, "alice@example.com", &request(&["revoke_sessions"])).await.expect_err("role");
        assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "roles"), "{e}");
    }
    // Unknown action, then an unknown person.
    let e = respond(&w.rt, &rita(), "alice@example.com", &request(&["delete_everything"])).await.expect_err("kind");
    assert!(matches!(e, ServiceError::Invalid { field: "actions", .. }), "{e}");
    let e = respond(&w.rt, &rita(), "nobody@example.com", &request(&["revoke_sessions"])).await.expect_err("nobody");
    assert!(matches!(e, ServiceError::NotFound { .. }), "{e}");
    // The kill switch wins over everything after the role.
    w.rt.active()
        .await
        .expect("active")
        .engine
        .set_kill_switch(true, &root(), "incident drill".into())
        .await
        .expect("on");
    let e = respond(&w.rt, &rita(), "nobody@example.com", &request(&["delete_everything"])).await.expect_err("off");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "enablement"), "{e}");
    assert_eq!(w.notes("incident_response").await.len(), 5, "every attempt is recorded");
    assert!(w.alice().sessions.len() == 2, "nothing was written");

    // Remediation disabled is refused the same way.
    let off = World::with(|c| c.policy.enabled = false);
    let e = respond(&off.rt, &rita(), "alice@example.com", &request(&["revoke_sessions"])).await.expect_err("disabled");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "enablement"), "{e}");
}

#[tokio::test]
async fn a_protected_account_is_refused_and_a_connection_that_cannot_is_not_applicable() {
    let w = World::new();
    let result =
        respond(&w.rt, &rita(), "breakglass@example.com", &request(&["revoke_sessions"])).await.expect("respond");
    assert_eq!(result.steps.len(), 1);
    assert_eq!(result.steps[0].status, StepStatus::Refused, "{result:?}");
    assert_eq!(result.outcome, RespondOutcome::Partial);
}

#[tokio::test]
async fn without_emergency_kinds_nothing_runs_unapproved() {
    let w = World::with(|c| c.policy.emergency_kinds.clear());
    let result = respond(&w.rt, &rita(), "alice@example.com", &request(&["revoke_sessions"])).await.expect("respond");
    assert_eq!(result.steps[0].status, StepStatus::PendingApproval);
    assert_eq!(w.alice().sessions.len(), 2);
    // Nor does the engine take an emergency for a kind the policy does not list.
    let engine = w.rt.active().await.expect("active").engine;
    let req = ActionRequest {
        connector: "sandbox".into(),
        kind: ActionKind::RevokeSessions,
        target: Target { identity: "bob".into(), resource: None, grant: None, grant_type: "account".into() },
        reason: "r".into(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: None,
    };
    let e = engine.suggest_preapproved(req.clone(), &rita(), &Preapproval::Emergency).await.expect_err("not listed");
    assert!(matches!(&e, EngineError::Refused { rule, .. } if rule == "emergency"), "{e}");
    // Nor from a requester, whatever the policy.
    let e = engine.suggest_preapproved(req, &ann(), &Preapproval::Emergency).await.expect_err("role");
    assert!(matches!(&e, EngineError::Refused { rule, .. } if rule == "roles"), "{e}");
}

async fn started(w: &World, name: &str) -> playbooks::Run {
    let plan =
        playbooks::plan_playbook(&w.rt, &ann(), name, "alice@example.com", "account takeover").await.expect("plan");
    playbooks::start_run(&w.rt, &ann(), name, "alice@example.com", "account takeover", Some(&plan.plan_hash))
        .await
        .expect("start")
}

fn states(run: &playbooks::Run) -> Vec<(String, StepState)> {
    run.steps.iter().map(|s| (format!("{}", s.kind), s.state)).collect()
}

#[tokio::test]
async fn compromised_account_runs_end_to_end_after_one_approval() {
    let w = World::new();
    let plan = playbooks::plan_playbook(&w.rt, &ann(), "compromised-account", "alice@example.com", "takeover")
        .await
        .expect("plan");
    let kinds: Vec<String> = plan.steps.iter().map(|s| format!("{} {}", s.kind, s.target)).collect();
    assert_eq!(plan.steps.len(), 5, "{kinds:?}");
    assert!(plan.steps.iter().all(|s| s.state == StepState::Planned), "{kinds:?}");
    // The password reset is planned from the state the session revocation leaves.
    let (first, second) = (plan.steps[0].plan.as_ref().expect("plan"), plan.steps[1].plan.as_ref().expect("plan"));
    assert_eq!(second.before, first.expected_after);

    let run = started(&w, "compromised-account").await;
    assert_eq!(run.state, RunState::PendingApproval);
    assert_eq!(w.alice().sessions.len(), 2, "nothing runs before approval");
    let e = playbooks::approve_run(&w.rt, &ann(), &run.id, None, None).await.expect_err("a requester");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "roles"));
    let own =
        playbooks::start_run(&w.rt, &ben(), "offboard-leaver", "bob@example.com", "leaves", None).await.expect("own");
    let e = playbooks::approve_run(&w.rt, &ben(), &own.id, None, None).await.expect_err("own run");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "separation of duties"));
    let e = playbooks::approve_run(&w.rt, &ben(), &run.id, Some("0000"), None).await.expect_err("other plan");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "plan binding"));

    let done = playbooks::approve_run(&w.rt, &ben(), &run.id, Some(&run.plan_hash), None).await.expect("approve");
    assert_eq!(done.state, RunState::Completed, "{:#?}", done.report);
    assert!(done.steps.iter().all(|s| s.state == StepState::Completed), "{:?}", states(&done));
    let d = w.dir();
    let alice = &d.users["alice"];
    assert!(alice.sessions.is_empty() && alice.password_must_change);
    assert_eq!(alice.status, remediation_connector_sandbox::UserStatus::Suspended);
    assert!(!is_member(&d, "admins", "alice") && is_member(&d, "engineering", "alice"), "only privileged groups");
    assert_eq!(d.notifications.len(), 1);

    // Every step is an action of its own, linked to the run, approved by the run's approver.
    let engine = w.rt.active().await.expect("active").engine;
    let actions =
        engine.list(&ActionFilter { campaign: Some(run.id.clone()), ..ActionFilter::default() }).await.expect("list");
    assert_eq!(actions.len(), 5);
    assert!(actions.iter().all(|a| a.state == State::Completed && a.requested_by == "local:ann"));
    let steps: Vec<_> = w.transitions().await.into_iter().filter(|t| t.event == "run_step").collect();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|t| t.decided_by.as_deref() == Some("local:ben")));
    assert!(!w.notes("playbook_run_completed").await.is_empty());
}

#[tokio::test]
async fn a_failed_step_stops_the_run_and_compensates_in_reverse() {
    let w = World::new();
    let run = started(&w, "compromised-account").await;
    // Between approval's plan and the run, `admins` becomes protected: step 4 is refused.
    w.edit(|d| d.groups.get_mut("admins").expect("admins").protected = true);
    let done = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(done.state, RunState::Compensated, "{:#?}", done.report);
    assert_eq!(
        done.steps.iter().map(|s| s.state).collect::<Vec<_>>(),
        [StepState::NotUndoable, StepState::NotUndoable, StepState::RolledBack, StepState::Failed, StepState::Planned],
        "{:#?}",
        done.report
    );
    let alice = w.alice();
    assert_eq!(alice.status, remediation_connector_sandbox::UserStatus::Active, "the suspension was undone");
    assert!(alice.sessions.is_empty(), "ended sessions stay ended");
}

#[tokio::test]
async fn a_rollback_that_fails_leaves_the_run_needing_attention() {
    let w = World::new();
    let run = started(&w, "compromised-account").await;
    w.edit(|d| {
        d.groups.get_mut("admins").expect("admins").protected = true;
        d.faults.fail_rollback = true;
    });
    let done = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(done.state, RunState::FailedNeedsAttention, "{:#?}", done.report);
    assert_eq!(done.steps[2].state, StepState::RollbackFailed);
}

#[tokio::test]
async fn a_step_whose_plan_changed_pauses_the_run_for_a_new_approval() {
    let w = World::new();
    let run = started(&w, "compromised-account").await;
    // Alice signs in again after the plan was approved: the session step plans another change.
    w.edit(|d| d.users.get_mut("alice").expect("alice").sessions.push("s-alice-3".into()));
    let paused = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(paused.state, RunState::PendingApproval, "{:#?}", paused.report);
    assert!(paused.approvals.is_empty() && paused.plan_hash != run.plan_hash && paused.replans == 1);
    assert_eq!(w.alice().sessions.len(), 3, "nothing ran on the changed plan");
    let e = playbooks::approve_run(&w.rt, &ben(), &run.id, Some(&run.plan_hash), None).await.expect_err("old hash");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "plan binding"));
    let done = playbooks::approve_run(&w.rt, &ben(), &run.id, Some(&paused.plan_hash), None).await.expect("again");
    assert_eq!(done.state, RunState::Completed, "{:#?}", done.report);
    assert!(w.alice().sessions.is_empty());
}

#[tokio::test]
async fn a_step_held_by_a_limit_pauses_the_run_until_it_is_released() {
    let w = World::with(|c| c.limits.per_identity.max = 3);
    let run = started(&w, "compromised-account").await;
    let paused = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(paused.state, RunState::Paused, "{:#?}", paused.report);
    assert_eq!(paused.steps[3].state, StepState::Held, "{:?}", states(&paused));
    assert!(playbooks::resume_runs(&w.rt).await.expect("tick").is_empty(), "still held");
    // An admin forces the held step; the next tick goes on without compensating.
    let held = paused.steps[3].action_id.expect("action");
    crate::force_execute(&w.rt, &root(), held, "takeover in progress".into()).await.result.expect("force");
    let moved = playbooks::resume_runs(&w.rt).await.expect("tick");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].state, RunState::Completed, "{:#?}", moved[0].report);
}

#[tokio::test]
async fn a_completed_run_is_rolled_back_by_two_principals_in_reverse() {
    let w = World::new();
    let run = started(&w, "compromised-account").await;
    playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    let asked = playbooks::rollback_run(&w.rt, &ben(), &run.id, "false alarm").await.expect("ask");
    assert_eq!(asked.state, RunState::RollbackRequested);
    let e = playbooks::rollback_run(&w.rt, &ben(), &run.id, "false alarm").await.expect_err("same principal");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "separation of duties"));
    let done = playbooks::rollback_run(&w.rt, &root(), &run.id, "confirmed false alarm").await.expect("rollback");
    assert_eq!(done.state, RunState::RolledBack, "{:#?}", done.report);
    let d = w.dir();
    assert_eq!(d.users["alice"].status, remediation_connector_sandbox::UserStatus::Active);
    assert!(is_member(&d, "admins", "alice"), "the membership is back");
    assert!(d.users["alice"].sessions.is_empty(), "ended sessions are not undoable");
    assert_eq!(done.steps[0].state, StepState::NotUndoable);
}

#[tokio::test]
async fn playbooks_come_from_files_and_the_store_by_version() {
    let w = World::new();
    let names: Vec<String> =
        playbooks::playbooks(&w.rt).await.expect("list").into_iter().map(|e| e.playbook.name).collect();
    assert_eq!(names, ["compromised-account", "offboard-leaver"]);
    let dir: &Path = w.rt.dir();
    std::fs::create_dir_all(dir.join("playbooks")).expect("dir");
    std::fs::write(
        dir.join("playbooks/compromised-account.toml"),
        "name = \"compromised-account\"\nversion = 2\n[[steps]]\naction = \"revoke_sessions\"\n",
    )
    .expect("write");
    let entry = playbooks::playbook(&w.rt, "compromised-account").await.expect("show");
    assert_eq!((entry.playbook.version, entry.playbook.steps.len()), (2, 1));
    assert!(entry.source.starts_with("file "), "{}", entry.source);
    std::fs::write(dir.join("playbooks/bad.toml"), "name = \"bad\"\nversion = 1\nsteps = []\n").expect("write");
    let e = playbooks::playbooks(&w.rt).await.expect_err("a bad file is named");
    assert!(e.to_string().contains("bad.toml"), "{e}");
    std::fs::remove_file(dir.join("playbooks/bad.toml")).expect("rm");

    let mut newer = entry.playbook.clone();
    newer.version = 2;
    let e = playbooks::save_playbook(&w.rt, &root(), newer.clone()).await.expect_err("not higher");
    assert!(matches!(e, ServiceError::Invalid { field: "version", .. }));
    newer.version = 3;
    let e = playbooks::save_playbook(&w.rt, &ben(), newer.clone()).await.expect_err("admins only");
    assert!(matches!(e, ServiceError::Access(_)));
    playbooks::save_playbook(&w.rt, &root(), newer).await.expect("save");
    let entry = playbooks::playbook(&w.rt, "compromised-account").await.expect("show");
    assert_eq!((entry.playbook.version, entry.source.as_str()), (3, "store"));
}

/// A connector type whose connectors can only revoke group memberships.
static REVOKE_ONLY: remediation_core::factory::Factory<RevokeOnly> =
    remediation_core::factory::Factory::named("revoke_only", "Revoke only", None, |id, _config, _context| {
        Ok(Arc::new(remediation_testkit::FakeConnector::new(id).with_capabilities(vec![
            remediation_core::Capability::new(
                KindName::Revoke,
                "group_membership",
                remediation_core::Reversibility::Reversible,
            ),
        ])))
    });

/// Its settings: none.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RevokeOnly {}

#[tokio::test]
async fn no_connection_that_can_do_any_requested_action_is_an_invalid_request() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = Config {
        connectors: vec![ConnectorConfig::new("revoke_only", "groups-only", toml::Table::new())],
        ..Config::default()
    };
    config.policy.enabled = true;
    let options = RuntimeOptions {
        store: Some(Arc::new(InMemoryStore::new())),
        catalog: Some(remediation_runtime::Catalog::builtin().with(&REVOKE_ONLY)),
        ..RuntimeOptions::default()
    };
    let rt = Runtime::build(&config, dir.path(), None, options).expect("runtime");
    let e =
        respond(&rt, &rita(), "alice@example.com", &request(&["revoke_sessions", "suspend"])).await.expect_err("400");
    assert!(
        matches!(&e, ServiceError::Invalid { field: "actions", message } if message.contains("no connection can")),
        "{e}"
    );
}

#[tokio::test]
async fn a_connection_that_cannot_be_asked_keeps_the_response_from_being_called_complete() {
    let w = World::with(|c| c.connectors.push(ConnectorConfig::sandbox("sandbox-eu", "sandbox-eu.json")));
    std::fs::write(w.rt.dir().join("sandbox-eu.json"), "{ not json").expect("write");
    let result = respond(&w.rt, &rita(), "alice@example.com", &request(&["revoke_sessions"])).await.expect("respond");
    assert_eq!(result.steps.len(), 1);
    assert_eq!(result.steps[0].status, StepStatus::Completed);
    assert_eq!(result.lookup_failures.len(), 1, "{result:?}");
    assert_eq!(result.lookup_failures[0].connector, "sandbox-eu");
    assert_eq!(result.outcome, RespondOutcome::Partial, "alice may still have access in sandbox-eu");
}

#[tokio::test]
async fn a_change_already_in_place_is_done_not_refused() {
    let w = World::new();
    // Carol has no open session: nothing to end, and nothing refused.
    let result = respond(&w.rt, &rita(), "carol@example.com", &request(&["revoke_sessions"])).await.expect("respond");
    assert_eq!(result.steps[0].status, StepStatus::Completed, "{result:?}");
    assert!(result.steps[0].action_id.is_none(), "no action was needed");
    assert_eq!(result.outcome, RespondOutcome::Completed);
    // A playbook plans around it: the session step is skipped, the rest runs.
    let plan =
        playbooks::plan_playbook(&w.rt, &ann(), "offboard-leaver", "carol@example.com", "leaves").await.expect("plan");
    assert_eq!(plan.steps[0].state, StepState::Skipped, "{:?}", plan.steps[0]);
    assert!(plan.steps[0].message.as_deref().is_some_and(|m| m.contains("already")));
    let run =
        playbooks::start_run(&w.rt, &ann(), "offboard-leaver", "carol@example.com", "leaves", None).await.expect("run");
    let done = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(done.state, RunState::Completed, "{:#?}", done.report);
    assert_eq!(w.dir().users["carol"].status, remediation_connector_sandbox::UserStatus::Suspended);
}

#[tokio::test]
async fn a_run_left_running_by_a_stopped_process_is_resumed_without_repeating_a_step() {
    let w = World::with(|c| c.limits.per_identity.max = 3);
    let run = started(&w, "compromised-account").await;
    let paused = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(paused.state, RunState::Paused);
    // As a process that claimed the run and stopped before writing anything more leaves it.
    let doc = w.rt.store().document(playbooks::RUNS, &run.id).await.expect("read").expect("stored");
    let mut body = doc.body.clone();
    body["state"] = serde_json::json!("running");
    w.rt.store()
        .put_document(&remediation_core::DocumentWrite {
            collection: playbooks::RUNS.to_owned(),
            id: run.id.clone(),
            expected_revision: doc.revision,
            body,
            actor: "system".into(),
            at: w.rt.clock().now(),
            note: None,
        })
        .await
        .expect("write");
    let held = paused.steps[3].action_id.expect("action");
    crate::force_execute(&w.rt, &root(), held, "contain".into()).await.result.expect("force");
    let e = playbooks::resume_run(&w.rt, &ann(), &run.id).await.expect_err("a requester");
    assert!(matches!(&e, ServiceError::Engine(EngineError::Refused { rule, .. }) if rule == "roles"), "{e}");
    let done = playbooks::resume_run(&w.rt, &ben(), &run.id).await.expect("resume");
    assert_eq!(done.state, RunState::Completed, "{:#?}", done.report);
    let engine = w.rt.active().await.expect("active").engine;
    let actions =
        engine.list(&ActionFilter { campaign: Some(run.id.clone()), ..ActionFilter::default() }).await.expect("list");
    assert_eq!(actions.len(), 5, "no step ran twice");
}

#[tokio::test]
async fn a_run_step_is_bound_to_its_approved_change_even_where_its_kind_runs_in_auto() {
    let w = World::with(|c| {
        c.policy.kinds.insert(
            KindName::Suspend,
            remediation_gates::KindSettings {
                mode: Some(remediation_core::Mode::Auto),
                reason: Some("suspensions are reversible".into()),
                ..remediation_gates::KindSettings::default()
            },
        );
    });
    let engine = w.rt.active().await.expect("active").engine;
    engine.verify_emergency_access(&root(), "break-glass tested".into()).await.expect("verify");
    let suspend = |who: &str| ActionRequest {
        connector: "sandbox".into(),
        kind: ActionKind::Suspend,
        target: Target { identity: who.into(), resource: None, grant: None, grant_type: "account".into() },
        reason: "r".into(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: None,
    };
    // Auto mode approves a plain suggestion of this kind by itself...
    let plain = engine.suggest(suspend("carol"), &ann()).await.expect("suggest");
    assert_eq!(plain.action.state, State::Approved, "suspend runs in auto here");
    // ...but a run step whose change is not the approved one is refused all the same.
    let step = Preapproval::RunStep {
        run: "run-x".into(),
        step: 1,
        approvers: vec!["local:ben".into()],
        change_hash: "0".repeat(64),
        reach: Some(99),
    };
    let e = engine.suggest_preapproved(suspend("bob"), &ann(), &step).await.expect_err("another change");
    assert!(matches!(&e, EngineError::Refused { rule, .. } if rule == remediation_core::PLAN_BINDING_RULE), "{e}");
}
