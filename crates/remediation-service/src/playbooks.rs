//! Playbooks: named, versioned lists of steps run on one person's accounts across every
//! connection, planned as a whole, approved once, executed step by step through the engine,
//! and compensated (saga) when a step fails.
//!
//! # Where playbooks come from
//!
//! Built in (`compromised-account`, `offboard-leaver`), TOML files under
//! `<data dir>/playbooks/`, and playbooks saved through the API (the store's `playbook`
//! documents, whose revision is their version). A later source replaces an earlier one of the
//! same name only with a higher version; the store wins over files at equal version.
//!
//! # A run
//!
//! [`plan_playbook`] expands every step over the person's accounts (each connection that can
//! do it, every matching group) and plans each change through the engine, from the state the
//! earlier steps leave on the same target; the run's plan hash covers every step's.
//! [`start_run`] stores the run `pending_approval`; [`approve_run`] records approvals (a
//! different principal from the requester, the kinds' quorum) and, once enough, runs it.
//! Each step is an action of its own (linked to the run by [`remediation_core::Action::campaign`],
//! the run's id), created `approved` by the run's approval only while its live plan still has
//! the approved hash ([`Preapproval::RunStep`]); a step whose plan differs pauses the run for
//! a new approval. A step held by a limit pauses the run, which resumes when it is released
//! ([`resume_runs`]). A failed step stops the run and compensates: completed reversible steps
//! are rolled back in reverse order, irreversible ones listed as not undoable; the run ends
//! `compensated` or `failed_needs_attention`. [`rollback_run`] undoes a completed run later
//! (requested by one principal, approved by another).

use std::collections::BTreeMap;
use std::path::Path;

use remediation_core::{
    ActionId, ActionKind, ActionRequest, Actor, CampaignEntry, ConnectorErrorKind, Document, DocumentWrite,
    EngineError, ExecuteOutcome, KindName, Plan, Preapproval, Reversibility, Role, RollbackOutcome, SettingsRecord,
    Snapshot, State, StoreError, Target, find_capability,
};
use remediation_runtime::Runtime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ServiceError;
use crate::incident::{FoundAccount, identity};

/// The document collection of playbooks saved through the API.
pub const PLAYBOOKS: &str = "playbook";
/// The document collection of runs.
pub const RUNS: &str = "playbook_run";

const BUILTIN: [(&str, &str); 2] = [
    ("compromised-account", include_str!("../playbooks/compromised-account.toml")),
    ("offboard-leaver", include_str!("../playbooks/offboard-leaver.toml")),
];

/// A playbook: a named, versioned list of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Its version; a playbook of the same name replaces another only with a higher one.
    pub version: u32,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The steps, run in order.
    pub steps: Vec<PlaybookStep>,
}

/// One step of a playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookStep {
    /// The action kind: `revoke_sessions`, `force_password_reset`, `suspend`, `notify`, or
    /// `revoke` (of group memberships, with `groups`).
    pub action: KindName,
    /// The connections it runs on; absent: every connection that knows the person and can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<String>>,
    /// For `revoke`: the groups to remove the account from, matched without case against the
    /// groups each connection reports (`*`: every group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// What to do where the person has no account, or the connection cannot do the step:
    /// `skip` (default) or `fail` (the plan is refused).
    #[serde(default)]
    pub if_missing: IfMissing,
}

/// What a step does where it does not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfMissing {
    /// Leave it out of the plan (listed as skipped).
    #[default]
    Skip,
    /// Refuse the plan.
    Fail,
}

/// Where a playbook was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookEntry {
    /// The playbook.
    pub playbook: Playbook,
    /// `builtin`, `file` (with the path) or `store`.
    pub source: String,
}

impl Playbook {
    /// Checks the playbook's rules: a valid name, at least one step, groups only on `revoke`
    /// and `revoke` only with groups, only kinds that act on a person's account.
    pub fn validate(&self) -> Result<(), String> {
        remediation_core::store::check_campaign_name(&self.name).map_err(|e| e.replace("campaign", "playbook"))?;
        if self.version == 0 {
            return Err(format!("playbook `{}`: versions start at 1", self.name));
        }
        if self.steps.is_empty() {
            return Err(format!("playbook `{}` has no steps", self.name));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            match step.action {
                KindName::Revoke if step.groups.is_empty() => {
                    return Err(format!("step {n}: `revoke` names the groups to remove the account from in `groups`"));
                }
                KindName::Revoke => {}
                KindName::RevokeSessions | KindName::ForcePasswordReset | KindName::Suspend | KindName::Notify => {
                    if !step.groups.is_empty() {
                        return Err(format!("step {n}: `groups` belongs to `revoke` steps only"));
                    }
                }
                other => return Err(format!("step {n}: a playbook cannot `{other}` (it acts on a person's accounts)")),
            }
            if step.connections.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!("step {n}: `connections` is empty; leave it out to mean every connection"));
            }
        }
        Ok(())
    }

    /// Reads a playbook from TOML and checks it.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let playbook: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        playbook.validate()?;
        Ok(playbook)
    }
}

/// Every playbook in force, by name: built in, then `<data dir>/playbooks/*.toml`, then the
/// store's, a later one replacing an earlier only with a higher version (the store also at an
/// equal one). A file that cannot be read is an error naming it.
pub async fn playbooks(runtime: &Runtime) -> Result<Vec<PlaybookEntry>, ServiceError> {
    let mut all: BTreeMap<String, PlaybookEntry> = BTreeMap::new();
    let mut offer = |entry: PlaybookEntry, at_equal: bool| {
        let replace = all.get(&entry.playbook.name).is_none_or(|e| {
            entry.playbook.version > e.playbook.version || (at_equal && entry.playbook.version == e.playbook.version)
        });
        if replace {
            all.insert(entry.playbook.name.clone(), entry);
        }
    };
    for (name, text) in BUILTIN {
        let playbook = Playbook::from_toml(text).map_err(|message| ServiceError::Invalid {
            field: "playbook",
            message: format!("built-in {name}: {message}"),
        })?;
        offer(PlaybookEntry { playbook, source: "builtin".into() }, false);
    }
    for (path, playbook) in file_playbooks(&runtime.dir().join("playbooks"))? {
        offer(PlaybookEntry { playbook, source: format!("file {}", path.display()) }, false);
    }
    for doc in runtime.store().documents(PLAYBOOKS).await? {
        let playbook: Playbook = serde_json::from_value(doc.body).map_err(|e| ServiceError::Invalid {
            field: "playbook",
            message: format!("stored playbook `{}` cannot be read: {e}", doc.id),
        })?;
        offer(PlaybookEntry { playbook, source: "store".into() }, true);
    }
    Ok(all.into_values().collect())
}

fn file_playbooks(dir: &Path) -> Result<Vec<(std::path::PathBuf, Playbook)>, ServiceError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ServiceError::Invalid {
                field: "playbook",
                message: format!("cannot read {}: {e}", dir.display()),
            });
        }
    };
    let mut paths: Vec<_> =
        read.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| ServiceError::Invalid {
            field: "playbook",
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        let playbook = Playbook::from_toml(&text).map_err(|message| ServiceError::Invalid {
            field: "playbook",
            message: format!("{}: {message}", path.display()),
        })?;
        found.push((path, playbook));
    }
    Ok(found)
}

/// The playbook `name` in force.
pub async fn playbook(runtime: &Runtime, name: &str) -> Result<PlaybookEntry, ServiceError> {
    let all = playbooks(runtime).await?;
    let names: Vec<String> = all.iter().map(|e| e.playbook.name.clone()).collect();
    all.into_iter().find(|e| e.playbook.name == name).ok_or_else(|| ServiceError::NotFound {
        what: format!("no playbook `{}` (playbooks: {})", name.escape_debug(), names.join(", ")),
    })
}

/// Saves `playbook` in the store (an admin); its version must be higher than the one in force.
/// Audited as `playbook_saved`.
pub async fn save_playbook(
    runtime: &Runtime,
    actor: &Actor,
    playbook: Playbook,
) -> Result<PlaybookEntry, ServiceError> {
    if actor.role != Role::Admin {
        return Err(ServiceError::Access(remediation_runtime::access::AccessError::NotAdmin {
            actor: actor.name.clone(),
            role: actor.role,
            what: "save a playbook".to_owned(),
        }));
    }
    playbook.validate().map_err(|message| ServiceError::Invalid { field: "playbook", message })?;
    let current = playbooks(runtime).await?.into_iter().find(|e| e.playbook.name == playbook.name);
    if let Some(current) = &current
        && current.playbook.version >= playbook.version
    {
        return Err(ServiceError::Invalid {
            field: "version",
            message: format!(
                "playbook `{}` is at version {} ({}); save a higher version",
                playbook.name, current.playbook.version, current.source
            ),
        });
    }
    let store = runtime.store();
    let existing = store.document(PLAYBOOKS, &playbook.name).await?;
    let at = runtime.clock().now();
    let body = to_json(&playbook)?;
    let note = SettingsRecord {
        setting_event: "playbook_saved".to_owned(),
        actor: actor.name.clone(),
        credential: actor.credential.clone(),
        at,
        comment: Some(format!("playbook {} version {}", playbook.name, playbook.version)),
        previous: current.as_ref().map_or(serde_json::Value::Null, |c| serde_json::json!(c.playbook)),
        value: body.clone(),
        action_id: None,
    };
    store
        .put_document(&DocumentWrite {
            collection: PLAYBOOKS.to_owned(),
            id: playbook.name.clone(),
            expected_revision: existing.map_or(0, |d| d.revision),
            body,
            actor: actor.name.clone(),
            at,
            note: Some(note),
        })
        .await?;
    Ok(PlaybookEntry { playbook, source: "store".into() })
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(value).map_err(|e| ServiceError::Invalid { field: "body", message: e.to_string() })
}

/// What became of one step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Planned; not run yet.
    Planned,
    /// Left out: the connection has no such account or cannot do it (see the message).
    Skipped,
    /// Its action waits on a limit, the breaker or the provider; the run is paused.
    Held,
    /// Done and read back.
    Completed,
    /// The provider failed, or a safety rule refused it at run time.
    Failed,
    /// Not executed: advisory mode or a forced dry run.
    NotExecuted,
    /// Undone by the run's compensation or rollback.
    RolledBack,
    /// Irreversible: it stays done (ended sessions, expired passwords).
    NotUndoable,
    /// Its rollback failed: it needs attention.
    RollbackFailed,
}

impl StepState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Skipped => "skipped",
            Self::Held => "held",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::NotExecuted => "not_executed",
            Self::RolledBack => "rolled_back",
            Self::NotUndoable => "not_undoable",
            Self::RollbackFailed => "rollback_failed",
        }
    }
}

/// One step of a run: one change on one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunStep {
    /// Its number in the run, from 1.
    pub number: u32,
    /// The playbook step it comes from, from 1.
    pub playbook_step: u32,
    /// The connection.
    pub connector: String,
    /// What it does.
    pub kind: ActionKind,
    /// What it does it to.
    pub target: Target,
    /// The plan (before, expected after, description, hash); absent for a skipped step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// What became of it.
    pub state: StepState,
    /// The action that carries it out, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<ActionId>,
    /// The action's short handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// Why it was skipped, held or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunStep {
    fn reversibility(&self) -> Reversibility {
        self.plan.as_ref().map_or(Reversibility::Irreversible, |p| p.reversibility)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for approval of its plan.
    PendingApproval,
    /// Approved; steps are running.
    Running,
    /// A step is held (a limit, the breaker, the provider asked to wait, the kill switch) or
    /// its plan changed (then it waits for a new approval: `pending_approval`).
    Paused,
    /// Every step done.
    Completed,
    /// A step failed and every completed reversible step was rolled back.
    Compensated,
    /// A step failed and a rollback failed too (or a rollback of the run did): see the steps.
    FailedNeedsAttention,
    /// A rollback of the whole run was asked for and waits for a second principal.
    RollbackRequested,
    /// The whole run was rolled back later.
    RolledBack,
    /// Rejected by an approver.
    Rejected,
}

impl RunState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::FailedNeedsAttention => "failed_needs_attention",
            Self::RollbackRequested => "rollback_requested",
            Self::RolledBack => "rolled_back",
            Self::Rejected => "rejected",
        }
    }
}

/// A run of a playbook for one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Run {
    /// Its id (`run-` and a UUIDv7); its actions carry it as their campaign.
    pub id: String,
    /// The playbook's name.
    pub playbook: String,
    /// The playbook's version.
    pub version: u32,
    /// The person.
    pub identity: String,
    /// Why (kept with every step's action).
    pub reason: String,
    /// Who asked for it.
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// Where it is.
    pub state: RunState,
    /// The hash of the whole plan, which approvals bind to.
    pub plan_hash: String,
    /// Approvals needed.
    pub approvals_needed: u32,
    /// Who approved the current plan.
    #[serde(default)]
    pub approvals: Vec<String>,
    /// How many times the plan was made again (a step's plan changed at run time).
    #[serde(default)]
    pub replans: u32,
    /// Who asked for a rollback of the whole run, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_requested_by: Option<String>,
    /// Every step.
    pub steps: Vec<RunStep>,
    /// What happened, one line per event, oldest first.
    #[serde(default)]
    pub report: Vec<String>,
    /// The document revision (compare-and-set token; not part of the stored body).
    #[serde(default, skip)]
    pub revision: u64,
}

/// A plan of a whole run, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunPlan {
    /// The playbook's name.
    pub playbook: String,
    /// Its version.
    pub version: u32,
    /// The person.
    pub identity: String,
    /// Every step, with its plan or why it is skipped.
    pub steps: Vec<RunStep>,
    /// The hash of the whole plan.
    pub plan_hash: String,
    /// Approvals the run needs.
    pub approvals_needed: u32,
}

fn plan_hash_of(playbook: &str, version: u32, identity: &str, steps: &[RunStep]) -> Result<String, ServiceError> {
    let parts: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "number": s.number,
                "connector": s.connector,
                "kind": s.kind,
                "target": s.target,
                "state": s.state,
                "change_hash": s.plan.as_ref().map(Plan::change_hash).transpose().ok().flatten(),
                "reach": s.plan.as_ref().and_then(|p| p.reach),
            })
        })
        .collect();
    let value = serde_json::json!({ "playbook": playbook, "version": version, "identity": identity, "steps": parts });
    remediation_core::hash::canonical_hash(&value)
        .map_err(|e| ServiceError::Invalid { field: "plan", message: e.to_string() })
}

/// The concrete changes of `step` for one account: the targets it acts on, or why none.
fn targets_of(step: &PlaybookStep, found: &FoundAccount) -> Result<Vec<(ActionKind, Target)>, String> {
    let account = &found.account;
    let kind = match step.action {
        KindName::RevokeSessions => ActionKind::RevokeSessions,
        KindName::ForcePasswordReset => ActionKind::ForcePasswordReset,
        KindName::Suspend => ActionKind::Suspend,
        KindName::Notify => ActionKind::Notify,
        KindName::Revoke => ActionKind::Revoke,
        other => return Err(format!("a playbook cannot {other}")),
    };
    match step.action {
        KindName::Revoke => {
            let Some(groups) = &account.groups else {
                return Err(format!("{} does not show the account's groups", found.connector));
            };
            let every = step.groups.iter().any(|g| g == "*");
            let chosen: Vec<(ActionKind, Target)> = groups
                .iter()
                .filter(|g| every || step.groups.iter().any(|want| want.eq_ignore_ascii_case(g)))
                .map(|g| (ActionKind::Revoke, account.membership(g)))
                .collect();
            if chosen.is_empty() {
                return Err(format!("the account is in none of the groups {}", step.groups.join(", ")));
            }
            Ok(chosen)
        }
        KindName::Notify => {
            let mut target = account.target();
            "notification".clone_into(&mut target.grant_type);
            Ok(vec![(kind, target)])
        }
        _ => Ok(vec![(kind, account.target())]),
    }
}

/// Plans `name` for `identity`: every step over every account of the person, each change
/// planned through the engine from the state the earlier steps leave on its target. Writes
/// nothing. A step marked `if_missing = "fail"` that does not apply anywhere refuses the plan.
pub async fn plan_playbook(
    runtime: &Runtime,
    actor: &Actor,
    name: &str,
    identity_key: &str,
    reason: &str,
) -> Result<RunPlan, ServiceError> {
    let entry = playbook(runtime, name).await?;
    let view = identity(runtime, identity_key).await?;
    if view.accounts.is_empty() {
        return Err(ServiceError::NotFound { what: format!("no connection knows {identity_key}") });
    }
    let active = runtime.active().await?;
    let steps = plan_steps(runtime, actor, &entry.playbook, &view.accounts, reason, &BTreeMap::new()).await?;
    let approvals_needed = approvals_needed(&active.settings, &steps);
    let plan_hash = plan_hash_of(&entry.playbook.name, entry.playbook.version, identity_key, &steps)?;
    Ok(RunPlan {
        playbook: entry.playbook.name,
        version: entry.playbook.version,
        identity: identity_key.to_owned(),
        steps,
        plan_hash,
        approvals_needed,
    })
}

fn approvals_needed(settings: &remediation_gates::PolicySettings, steps: &[RunStep]) -> u32 {
    steps
        .iter()
        .filter(|s| s.state == StepState::Planned)
        .map(|s| settings.kinds.get(&s.kind.name()).and_then(|k| k.min_approvals).unwrap_or(settings.min_approvals))
        .max()
        .unwrap_or(settings.min_approvals)
        .max(1)
}

/// Plans the playbook's steps; `done` holds the steps already carried out (by number), kept
/// as they are, whose after-states the later steps plan from.
async fn plan_steps(
    runtime: &Runtime,
    actor: &Actor,
    playbook: &Playbook,
    accounts: &[FoundAccount],
    reason: &str,
    done: &BTreeMap<u32, RunStep>,
) -> Result<Vec<RunStep>, ServiceError> {
    let engine = runtime.active().await?.engine;
    let entries = runtime.connector_entries().await?;
    // The state each target is left in by the steps planned so far.
    let mut after: std::collections::HashMap<(String, Target), Snapshot> = std::collections::HashMap::new();
    let mut steps = Vec::new();
    let mut number = 0u32;
    for (i, step) in playbook.steps.iter().enumerate() {
        let playbook_step = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut applied = 0usize;
        for found in accounts {
            if step.connections.as_ref().is_some_and(|c| !c.contains(&found.connector)) {
                continue;
            }
            let caps = entries
                .iter()
                .find(|e| e.connector.id() == found.connector)
                .map(|e| e.connector.capabilities())
                .unwrap_or_default();
            let targets = match targets_of(step, found) {
                Ok(t) => t,
                Err(why) => {
                    number += 1;
                    steps.push(skipped(number, playbook_step, found, step, why));
                    continue;
                }
            };
            for (kind, target) in targets {
                number += 1;
                if let Some(kept) = done.get(&number) {
                    if let Some(plan) = &kept.plan {
                        after.insert((kept.connector.clone(), kept.target.clone()), plan.expected_after.clone());
                    }
                    steps.push(kept.clone());
                    applied += 1;
                    continue;
                }
                if find_capability(&caps, kind.name(), &target).is_none() {
                    let why = format!("{} cannot {} a `{}` grant", found.connector, kind.name(), target.grant_type);
                    steps.push(RunStep::new(number, playbook_step, &found.connector, kind, target).skip(why));
                    continue;
                }
                let request = ActionRequest {
                    connector: found.connector.clone(),
                    kind: kind.clone(),
                    target: target.clone(),
                    reason: reason.to_owned(),
                    control_id: None,
                    finding_id: None,
                    dry_run: true,
                    campaign: None,
                };
                let before = after.get(&(found.connector.clone(), target.clone())).cloned();
                let plan = match engine.plan_request(&request, actor, before).await {
                    // Already so (no sessions left to end): nothing to do here.
                    Ok((plan, decision)) if crate::incident::already_so(&plan, &decision) => {
                        after.insert((found.connector.clone(), target.clone()), plan.expected_after.clone());
                        steps.push(
                            RunStep::new(number, playbook_step, &found.connector, kind, target)
                                .skip("already in the requested state; nothing to do"),
                        );
                        applied += 1;
                        continue;
                    }
                    Ok((_, decision)) if decision.refusal().is_some() => {
                        let gate = decision.refusal().map(|g| (g.gate.clone(), g.reason.clone())).unwrap_or_default();
                        return Err(ServiceError::Engine(EngineError::Refused { rule: gate.0, reason: gate.1 }));
                    }
                    Ok((plan, _)) => plan,
                    // The connection cannot make this change from the state the earlier steps
                    // leave (Okta suspends only ACTIVE users, and an expired password is not):
                    // the step does not apply to this account, as `if_missing` says.
                    Err(EngineError::Connector { operation: "plan the change", source, .. })
                        if matches!(source.kind, ConnectorErrorKind::Permanent | ConnectorErrorKind::Unsupported) =>
                    {
                        let why = format!("{} cannot {} here: {}", found.connector, kind.name(), source.message);
                        steps.push(RunStep::new(number, playbook_step, &found.connector, kind, target).skip(why));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                after.insert((found.connector.clone(), target.clone()), plan.expected_after.clone());
                applied += 1;
                steps.push(RunStep {
                    plan: Some(plan),
                    ..RunStep::new(number, playbook_step, &found.connector, kind, target)
                });
            }
        }
        if applied == 0 && step.if_missing == IfMissing::Fail {
            return Err(ServiceError::Invalid {
                field: "playbook",
                message: format!(
                    "step {playbook_step} ({}) applies to no account of the person, and the playbook says it must",
                    step.action
                ),
            });
        }
    }
    Ok(steps)
}

fn skipped(number: u32, playbook_step: u32, found: &FoundAccount, step: &PlaybookStep, why: String) -> RunStep {
    let kind = match step.action {
        KindName::RevokeSessions => ActionKind::RevokeSessions,
        KindName::ForcePasswordReset => ActionKind::ForcePasswordReset,
        KindName::Suspend => ActionKind::Suspend,
        KindName::Revoke => ActionKind::Revoke,
        _ => ActionKind::Notify,
    };
    RunStep::new(number, playbook_step, &found.connector, kind, found.account.target()).skip(why)
}

impl RunStep {
    /// A planned step without its plan yet.
    fn new(number: u32, playbook_step: u32, connector: &str, kind: ActionKind, target: Target) -> Self {
        Self {
            number,
            playbook_step,
            connector: connector.to_owned(),
            kind,
            target,
            plan: None,
            state: StepState::Planned,
            action_id: None,
            handle: None,
            message: None,
        }
    }

    /// The step, left out of the run for `why`.
    fn skip(self, why: impl Into<String>) -> Self {
        Self { state: StepState::Skipped, message: Some(why.into()), ..self }
    }
}

/// Stores a run of `name` for `identity`, planned now and waiting for approval (requester or
/// higher). When `expected_plan_hash` is given, the plan must still have it (what the
/// requester looked at). Audited as `playbook_run_created`.
pub async fn start_run(
    runtime: &Runtime,
    actor: &Actor,
    name: &str,
    identity_key: &str,
    reason: &str,
    expected_plan_hash: Option<&str>,
) -> Result<Run, ServiceError> {
    if actor.role < Role::Requester || actor.role == Role::System {
        return Err(ServiceError::Engine(EngineError::Refused {
            rule: "roles".into(),
            reason: format!(
                "{} is a {}; running a playbook needs the requester role or higher",
                actor.name, actor.role
            ),
        }));
    }
    if reason.trim().is_empty() {
        return Err(ServiceError::Invalid {
            field: "reason",
            message: "a reason is required; it is kept in the audit".into(),
        });
    }
    let plan = plan_playbook(runtime, actor, name, identity_key, reason).await?;
    if let Some(expected) = expected_plan_hash
        && expected != plan.plan_hash
    {
        return Err(ServiceError::Engine(EngineError::Refused {
            rule: "plan binding".into(),
            reason: format!(
                "the plan changed since it was shown (shown {expected}, now {}); plan it again",
                plan.plan_hash
            ),
        }));
    }
    if !plan.steps.iter().any(|s| s.state == StepState::Planned) {
        return Err(ServiceError::Invalid {
            field: "playbook",
            message: format!("no step of `{name}` applies to {identity_key}: nothing would run"),
        });
    }
    let now = runtime.clock().now();
    let id = format!("{}{}", remediation_core::store::RUN_PREFIX, ActionId::new_at(now));
    let run = Run {
        id,
        playbook: plan.playbook,
        version: plan.version,
        identity: plan.identity,
        reason: reason.to_owned(),
        requested_by: actor.name.clone(),
        created_at: now,
        state: RunState::PendingApproval,
        plan_hash: plan.plan_hash,
        approvals_needed: plan.approvals_needed,
        approvals: Vec::new(),
        replans: 0,
        rollback_requested_by: None,
        steps: plan.steps,
        report: vec![format!("{}: requested by {} ({reason})", stamp(now), actor.name)],
        revision: 0,
    };
    save(runtime, actor, run, "playbook_run_created", reason).await
}

/// Every run of the tenant, newest first.
pub async fn runs(runtime: &Runtime) -> Result<Vec<Run>, ServiceError> {
    let mut runs: Vec<Run> =
        runtime.store().documents(RUNS).await?.into_iter().filter_map(|d| from_doc(d).ok()).collect();
    runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(runs)
}

/// The run `id`.
pub async fn run(runtime: &Runtime, id: &str) -> Result<Run, ServiceError> {
    if remediation_core::store::check_document_id(id).is_err() {
        return Err(ServiceError::NotFound { what: format!("no run `{}`", id.escape_debug()) });
    }
    let doc = runtime.store().document(RUNS, id).await?.ok_or_else(|| ServiceError::NotFound {
        what: format!("no run `{id}`; `remediate playbook runs` lists them"),
    })?;
    from_doc(doc)
}

fn from_doc(doc: Document) -> Result<Run, ServiceError> {
    let revision = doc.revision;
    let mut run: Run = serde_json::from_value(doc.body).map_err(|e| ServiceError::Invalid {
        field: "run",
        message: format!("stored run `{}` cannot be read: {e}", doc.id),
    })?;
    run.revision = revision;
    Ok(run)
}

/// Writes `run` with compare-and-set on its revision and an audit note `event`.
async fn save(runtime: &Runtime, actor: &Actor, run: Run, event: &str, comment: &str) -> Result<Run, ServiceError> {
    let at = runtime.clock().now();
    let body = to_json(&run)?;
    let note = SettingsRecord {
        setting_event: event.to_owned(),
        actor: actor.name.clone(),
        credential: actor.credential.clone(),
        at,
        comment: Some(comment.to_owned()),
        previous: serde_json::Value::Null,
        value: serde_json::json!({
            "run": run.id, "playbook": run.playbook, "version": run.version, "identity": run.identity,
            "state": run.state, "plan_hash": run.plan_hash,
        }),
        action_id: None,
    };
    let doc = runtime
        .store()
        .put_document(&DocumentWrite {
            collection: RUNS.to_owned(),
            id: run.id.clone(),
            expected_revision: run.revision,
            body,
            actor: actor.name.clone(),
            at,
            note: Some(note),
        })
        .await
        .map_err(|e| match e {
            StoreError::DocumentChanged { .. } => ServiceError::Engine(EngineError::Refused {
                rule: "concurrency".into(),
                reason: format!("run {} was changed meanwhile (by another approver or worker); read it again", run.id),
            }),
            other => other.into(),
        })?;
    Ok(Run { revision: doc.revision, ..run })
}

/// `at` as RFC 3339 to the second (`2026-12-07T16:08:37Z`).
fn stamp(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn line(runtime: &Runtime, run: &mut Run, text: impl Into<String>) {
    let now = runtime.clock().now();
    run.report.push(format!("{}: {}", stamp(now), text.into()));
}

/// Approves run `id` (approver or admin, not its requester, once each); `plan_hash`, when
/// given, must be the run's. Once the approvals reach the quorum the run starts at once and
/// this returns it as it stopped. Audited as `playbook_run_approved`.
pub async fn approve_run(
    runtime: &Runtime,
    actor: &Actor,
    id: &str,
    plan_hash: Option<&str>,
    note: Option<&str>,
) -> Result<Run, ServiceError> {
    let mut run = run(runtime, id).await?;
    if actor.role < Role::Approver || actor.role == Role::System {
        return Err(refused(
            "roles",
            format!("{} is a {}; approving a run needs the approver role", actor.name, actor.role),
        ));
    }
    if run.state != RunState::PendingApproval {
        return Err(refused("lifecycle", format!("run {id} is {}, not pending_approval", run.state.as_str())));
    }
    if actor.name == run.requested_by {
        return Err(refused(
            "separation of duties",
            format!("{} requested this run and cannot approve it; ask another approver", actor.name),
        ));
    }
    if run.approvals.contains(&actor.name) {
        return Err(refused("separation of duties", format!("{} has already approved this plan", actor.name)));
    }
    if let Some(hash) = plan_hash
        && hash != run.plan_hash
    {
        return Err(refused(
            "plan binding",
            format!("run {id} now has plan {}, not {hash}: look at the new plan and approve that", run.plan_hash),
        ));
    }
    run.approvals.push(actor.name.clone());
    let reached = run.approvals.len() >= run.approvals_needed as usize;
    line(
        runtime,
        &mut run,
        format!("approved by {}{}", actor.name, note.map(|n| format!(" ({n})")).unwrap_or_default()),
    );
    if reached {
        run.state = RunState::Running;
    }
    let run = save(runtime, actor, run, "playbook_run_approved", note.unwrap_or("approved")).await?;
    if reached { advance(runtime, run).await } else { Ok(run) }
}

/// Rejects run `id` while it waits for approval (approver or admin).
pub async fn reject_run(runtime: &Runtime, actor: &Actor, id: &str, note: Option<&str>) -> Result<Run, ServiceError> {
    let mut run = run(runtime, id).await?;
    if actor.role < Role::Approver || actor.role == Role::System {
        return Err(refused(
            "roles",
            format!("{} is a {}; rejecting a run needs the approver role", actor.name, actor.role),
        ));
    }
    if run.state != RunState::PendingApproval {
        return Err(refused("lifecycle", format!("run {id} is {}, not pending_approval", run.state.as_str())));
    }
    run.state = RunState::Rejected;
    line(runtime, &mut run, format!("rejected by {}", actor.name));
    save(runtime, actor, run, "playbook_run_rejected", note.unwrap_or("rejected")).await
}

fn refused(rule: &str, reason: String) -> ServiceError {
    ServiceError::Engine(EngineError::Refused { rule: rule.to_owned(), reason })
}

/// Continues run `id` where it stopped (approver or admin): a paused run whose held step was
/// released (or forced), or a run left `running` by a process that stopped in the middle (each
/// step's action has an id derived from the run and the step, so a step that had started is
/// found, not created again). Paused runs also resume by themselves ([`resume_runs`]).
pub async fn resume_run(runtime: &Runtime, actor: &Actor, id: &str) -> Result<Run, ServiceError> {
    if actor.role < Role::Approver {
        return Err(refused(
            "roles",
            format!("{} is a {}; resuming a run needs the approver role", actor.name, actor.role),
        ));
    }
    let mut run = run(runtime, id).await?;
    if !matches!(run.state, RunState::Paused | RunState::Running) {
        return Err(refused("lifecycle", format!("run {id} is {}, not paused or running", run.state.as_str())));
    }
    run.state = RunState::Running;
    line(runtime, &mut run, format!("resumed by {}", actor.name));
    let run = save(runtime, actor, run, "playbook_run_resumed", "resumed").await?;
    advance(runtime, run).await
}

/// Resumes every paused run whose held step can go on (released, forced, or its wait over),
/// as `system`; what a server's worker calls each tick. Returns the runs it moved.
pub async fn resume_runs(runtime: &Runtime) -> Result<Vec<Run>, ServiceError> {
    let engine = runtime.active().await?.engine;
    let mut moved = Vec::new();
    for mut run in runs(runtime).await? {
        if run.state != RunState::Paused {
            continue;
        }
        let Some(held) = run.steps.iter().find(|s| s.state == StepState::Held) else { continue };
        let Some(action_id) = held.action_id else { continue };
        let held_number = held.number;
        let state = engine.get(action_id).await?.action.state;
        if matches!(state, State::Held | State::Executing) {
            continue;
        }
        run.state = RunState::Running;
        line(runtime, &mut run, format!("step {held_number} is {state}: the run goes on"));
        let Ok(run) = save(runtime, &Actor::system(), run, "playbook_run_resumed", "the held step can go on").await
        else {
            continue;
        };
        moved.push(advance(runtime, run).await?);
    }
    Ok(moved)
}

/// What one step's execution came to.
enum StepEnd {
    Done,
    Paused(String),
    Replan(String),
    Failed(String),
}

/// Runs the run's remaining steps in order, as `system` on the approvers' decision, until it
/// completes, pauses or fails (then compensates). Saves after every step.
async fn advance(runtime: &Runtime, mut run: Run) -> Result<Run, ServiceError> {
    let system = Actor::system();
    let engine = runtime.active().await?.engine;
    let requester = Actor::new(run.requested_by.clone(), Role::Requester);
    let count = run.steps.len();
    for i in 0..count {
        let step = run.steps[i].clone();
        let end = match step.state {
            StepState::Planned => run_step(runtime, &engine, &run, &requester, &step).await,
            StepState::Held => match step.action_id {
                Some(id) => continue_held(runtime, &engine, id).await,
                None => StepEnd::Failed("a held step has no action".into()),
            },
            _ => continue,
        };
        // The step's action and handle, once created.
        let action_id = step.action_id.unwrap_or_else(|| step_action_id(&run, step.number));
        let created = engine.get(action_id).await.ok().map(|d| d.action);
        if let Some(a) = &created {
            run.steps[i].action_id = Some(a.id);
            run.steps[i].handle = a.handle;
        }
        match end {
            StepEnd::Done => {
                let state = created.as_ref().map(|a| a.state);
                run.steps[i].state = match state {
                    Some(State::Completed) => StepState::Completed,
                    _ => StepState::NotExecuted,
                };
                run.steps[i].message = None;
                let text = format!(
                    "step {} {}: {}",
                    step.number,
                    run.steps[i].state.as_str().replace('_', " "),
                    describe(&step)
                );
                line(runtime, &mut run, text);
                run = save(runtime, &system, run, "playbook_run_step", &format!("step {}", step.number)).await?;
            }
            StepEnd::Paused(why) => {
                run.steps[i].state = StepState::Held;
                run.steps[i].message = Some(why.clone());
                run.state = RunState::Paused;
                line(runtime, &mut run, format!("paused at step {}: {why}", step.number));
                return save(runtime, &system, run, "playbook_run_paused", &why).await;
            }
            StepEnd::Replan(why) => {
                return replan(runtime, run, &why).await;
            }
            StepEnd::Failed(why) => {
                run.steps[i].state = StepState::Failed;
                run.steps[i].message = Some(why.clone());
                line(runtime, &mut run, format!("step {} failed: {why}; compensating", step.number));
                run = save(runtime, &system, run, "playbook_run_step_failed", &why).await?;
                return compensate(runtime, run, RunState::Compensated, &format!("step {} failed", step.number)).await;
            }
        }
    }
    run.state = RunState::Completed;
    line(runtime, &mut run, "completed");
    save(runtime, &system, run, "playbook_run_completed", "every step done").await
}

fn describe(step: &RunStep) -> String {
    format!("{} {} on {}", step.connector, step.kind, step.target)
}

/// The campaign-entry index of step `number` at plan attempt `replans` (so a step planned
/// again after a change gets a fresh action id).
fn entry_index(number: u32, replans: u32) -> u64 {
    u64::from(number) * 1_000 + u64::from(replans)
}

/// The id of step `number`'s action at the run's current plan attempt.
fn step_action_id(run: &Run, number: u32) -> ActionId {
    ActionId::for_campaign_entry(&CampaignEntry {
        campaign: run.id.clone(),
        index: entry_index(number, run.replans),
        created_at: run.created_at,
    })
}

async fn run_step(
    runtime: &Runtime,
    engine: &std::sync::Arc<remediation_core::Engine>,
    run: &Run,
    requester: &Actor,
    step: &RunStep,
) -> StepEnd {
    let Some(plan) = &step.plan else { return StepEnd::Failed("the step has no plan".into()) };
    let request = ActionRequest {
        connector: step.connector.clone(),
        kind: step.kind.clone(),
        target: step.target.clone(),
        reason: run.reason.clone(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: Some(CampaignEntry {
            campaign: run.id.clone(),
            index: entry_index(step.number, run.replans),
            created_at: run.created_at,
        }),
    };
    let change_hash = match plan.change_hash() {
        Ok(h) => h,
        Err(e) => return StepEnd::Failed(e.to_string()),
    };
    let preapproval = Preapproval::RunStep {
        run: run.id.clone(),
        step: step.number,
        approvers: run.approvals.clone(),
        change_hash,
        reach: plan.reach,
    };
    let id = step_action_id(run, step.number);
    // A step whose action exists already (a run resumed after a crash) goes on from it.
    let existing = engine.get(id).await.ok();
    let state = match existing {
        Some(detail) => detail.action.state,
        None => match engine.suggest_preapproved(request, requester, &preapproval).await {
            Ok(s) => s.action.state,
            Err(EngineError::Refused { rule, reason }) if rule == remediation_core::PLAN_BINDING_RULE => {
                return StepEnd::Replan(reason);
            }
            Err(EngineError::Refused { rule, reason }) if rule == "enablement" => return StepEnd::Paused(reason),
            Err(e) => return StepEnd::Failed(e.to_string()),
        },
    };
    match state {
        State::Approved => execute_step(runtime, engine, id).await,
        State::Completed => StepEnd::Done,
        State::Suggested | State::DryRun => StepEnd::Done,
        State::Held => StepEnd::Paused("held".into()),
        other => StepEnd::Failed(format!("its action is {other}")),
    }
}

async fn continue_held(runtime: &Runtime, engine: &std::sync::Arc<remediation_core::Engine>, id: ActionId) -> StepEnd {
    match engine.get(id).await {
        Ok(detail) => match detail.action.state {
            State::Approved => execute_step(runtime, engine, id).await,
            State::Completed => StepEnd::Done,
            State::Held | State::Executing => StepEnd::Paused(format!("its action is {}", detail.action.state)),
            other => StepEnd::Failed(format!("its action is {other}")),
        },
        Err(e) => StepEnd::Failed(e.to_string()),
    }
}

async fn execute_step(runtime: &Runtime, engine: &std::sync::Arc<remediation_core::Engine>, id: ActionId) -> StepEnd {
    let attempt = crate::execute(runtime, &Actor::system(), id, false).await;
    match attempt.result {
        Ok(executed) => match executed.outcome {
            ExecuteOutcome::Completed { .. } | ExecuteOutcome::DryRun { .. } => StepEnd::Done,
            ExecuteOutcome::Failed { error, .. } => StepEnd::Failed(error),
            ExecuteOutcome::Held { limit, .. } => StepEnd::Paused(format!(
                "blast-radius limit `{}` reached ({} of {}); the run resumes when an admin releases or forces the step",
                limit.slot.key, limit.used, limit.slot.limit
            )),
            ExecuteOutcome::HeldByBreaker { .. } => {
                StepEnd::Paused("the circuit breaker is tripped; the run resumes after `breaker reset`".into())
            }
            ExecuteOutcome::Requeued { not_before, .. } => {
                StepEnd::Paused(format!("the provider asked to wait; the step is tried again after {not_before}"))
            }
            ExecuteOutcome::PlanChanged { changes, .. } => {
                let _ = engine.cancel(id, &Actor::system(), Some("the run is planned again".into())).await;
                StepEnd::Replan(format!(
                    "the live state differs from the approved plan: {}",
                    changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                ))
            }
        },
        Err(ServiceError::Engine(EngineError::Refused { rule, reason })) if rule == "enablement" => {
            StepEnd::Paused(reason)
        }
        Err(e) => match engine.get(id).await.map(|d| d.action.state) {
            // Someone else (a worker) took the step meanwhile.
            Ok(State::Completed) => StepEnd::Done,
            Ok(State::Executing) => StepEnd::Paused("its action is executing elsewhere".into()),
            _ => StepEnd::Failed(e.to_string()),
        },
    }
}

/// Plans the run's remaining steps again from the live state; the run waits for a new approval.
async fn replan(runtime: &Runtime, mut run: Run, why: &str) -> Result<Run, ServiceError> {
    let system = Actor::system();
    let entry = playbook(runtime, &run.playbook).await?;
    let view = identity(runtime, &run.identity).await?;
    let done: BTreeMap<u32, RunStep> = run
        .steps
        .iter()
        .filter(|s| !matches!(s.state, StepState::Planned | StepState::Held))
        .map(|s| (s.number, s.clone()))
        .collect();
    let requester = Actor::new(run.requested_by.clone(), Role::Requester);
    let steps = plan_steps(runtime, &requester, &entry.playbook, &view.accounts, &run.reason, &done).await?;
    run.steps = steps;
    run.replans += 1;
    run.approvals.clear();
    run.plan_hash = plan_hash_of(&run.playbook, run.version, &run.identity, &run.steps)?;
    run.state = RunState::PendingApproval;
    line(runtime, &mut run, format!("planned again ({why}); waits for a new approval"));
    save(runtime, &system, run, "playbook_run_replanned", why).await
}

/// Rolls back the run's completed steps in reverse order as `system` (the saga's
/// compensation, or a rollback of the whole run), listing irreversible ones as not undoable.
/// The run ends `end` when every reversible step was undone, else `failed_needs_attention`.
async fn compensate(runtime: &Runtime, mut run: Run, end: RunState, why: &str) -> Result<Run, ServiceError> {
    let system = Actor::system();
    let mut all_undone = true;
    for i in (0..run.steps.len()).rev() {
        let step = run.steps[i].clone();
        if step.state != StepState::Completed {
            continue;
        }
        let Some(id) = step.action_id else { continue };
        if step.reversibility() == Reversibility::Irreversible {
            run.steps[i].state = StepState::NotUndoable;
            run.steps[i].message = Some(format!("{} cannot be undone; it stays done", step.kind.name()));
            line(runtime, &mut run, format!("step {} is not undoable: {}", step.number, describe(&step)));
            continue;
        }
        let attempt = crate::rollback(runtime, &system, id, Some(format!("{why}: rolling back run {}", run.id))).await;
        match attempt.result {
            Ok(RollbackOutcome::RolledBack { .. }) => {
                run.steps[i].state = StepState::RolledBack;
                line(runtime, &mut run, format!("step {} rolled back", step.number));
            }
            Ok(RollbackOutcome::RestoredPendingAcceptance { .. }) => {
                run.steps[i].state = StepState::RolledBack;
                run.steps[i].message = Some("restored as an invitation the person must accept".into());
                line(runtime, &mut run, format!("step {} restored as an invitation", step.number));
            }
            Ok(RollbackOutcome::Failed { error, .. }) => {
                all_undone = false;
                run.steps[i].state = StepState::RollbackFailed;
                run.steps[i].message = Some(error.clone());
                line(runtime, &mut run, format!("step {} rollback failed: {error}", step.number));
            }
            Ok(RollbackOutcome::Requested { .. }) => {
                all_undone = false;
                run.steps[i].state = StepState::RollbackFailed;
                run.steps[i].message = Some("its rollback waits for approval".into());
            }
            Err(e) => {
                all_undone = false;
                run.steps[i].state = StepState::RollbackFailed;
                run.steps[i].message = Some(e.to_string());
                line(runtime, &mut run, format!("step {} rollback failed: {e}", step.number));
            }
        }
        run = save(runtime, &system, run, "playbook_run_step_rolled_back", &format!("step {}", step.number)).await?;
    }
    run.state = if all_undone { end } else { RunState::FailedNeedsAttention };
    let text = format!("ended {}", run.state.as_str());
    line(runtime, &mut run, text);
    let event = format!("playbook_run_{}", run.state.as_str());
    save(runtime, &system, run, &event, why).await
}

/// Rolls back a completed run (approver or admin): the first call asks for it
/// (`rollback_requested`), a second principal's call approves it and undoes every completed
/// reversible step in reverse order; irreversible ones are listed as not undoable.
pub async fn rollback_run(runtime: &Runtime, actor: &Actor, id: &str, reason: &str) -> Result<Run, ServiceError> {
    if actor.role < Role::Approver || actor.role == Role::System {
        return Err(refused(
            "roles",
            format!("{} is a {}; rolling back a run needs the approver role", actor.name, actor.role),
        ));
    }
    if reason.trim().is_empty() {
        return Err(ServiceError::Invalid {
            field: "reason",
            message: "a reason is required; it is kept in the audit".into(),
        });
    }
    let mut run = run(runtime, id).await?;
    match run.state {
        RunState::Completed => {
            run.state = RunState::RollbackRequested;
            run.rollback_requested_by = Some(actor.name.clone());
            line(
                runtime,
                &mut run,
                format!("rollback requested by {} ({reason}); waits for a second principal", actor.name),
            );
            save(runtime, actor, run, "playbook_run_rollback_requested", reason).await
        }
        RunState::RollbackRequested => {
            let requested_by = run.rollback_requested_by.clone().unwrap_or_default();
            if requested_by == actor.name {
                return Err(refused(
                    "separation of duties",
                    format!("{} asked for this rollback and cannot approve it; ask another approver", actor.name),
                ));
            }
            line(runtime, &mut run, format!("rollback approved by {} ({reason})", actor.name));
            let run = save(runtime, actor, run, "playbook_run_rollback_approved", reason).await?;
            let why = format!("rollback of the run asked by {requested_by}, approved by {}", actor.name);
            compensate(runtime, run, RunState::RolledBack, &why).await
        }
        other => {
            Err(refused("lifecycle", format!("run {id} is {}; only a completed run is rolled back", other.as_str())))
        }
    }
}
