//! The engine: suggest, approve, execute and roll back actions, with every safety step in
//! the order the design contract gives, and every state change recorded in the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::connector::{Connector, ConnectorErrorKind, find_capability};
use crate::diff::{Change, json_diff};
use crate::error::EngineError;
use crate::lifecycle::{Event, Role, State, initial_state, transition};
use crate::policy::{GateContext, LimitPolicy, PolicyDecision, SafetyPolicy, SafetyState, Stage};
use crate::store::{
    ActionDetail, ActionFilter, BeginOutcome, DetailUpdate, LimitReached, Page, PageRequest, SettingsRecord,
    StateChange, Store, TransitionRecord,
};
use crate::{Action, ActionId, ActionRequest, Mode, OutcomeStatus, Plan, Reversibility, Snapshot};

/// Who is acting, and with which role.
///
/// `name` is the principal (a person or a service): separation of duties and quorum compare
/// it, so one principal holding several credentials still counts once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The principal, as recorded in the audit (`local:alice`, a server principal `alice`).
    pub name: String,
    /// Role, from configuration or the principal's record.
    pub role: Role,
    /// The credential the principal authenticated with (an API token's name), recorded in the
    /// audit beside the principal; `None` for local actors and the engine.
    pub credential: Option<String>,
}

impl Actor {
    /// An actor with a name and a role.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self { name: name.into(), role, credential: None }
    }

    /// The same actor, authenticated with the credential `credential`.
    #[must_use]
    pub fn with_credential(mut self, credential: impl Into<String>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// The engine itself.
    pub fn system() -> Self {
        Self { name: "system".to_owned(), role: Role::System, credential: None }
    }
}

/// What the engine is built from.
pub struct EngineParts {
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// The configured connectors; their ids must be unique.
    pub connectors: Vec<Arc<dyn Connector>>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Gate pipeline and mode resolution.
    pub policy: Arc<dyn SafetyPolicy>,
    /// Blast-radius windows.
    pub limits: Arc<dyn LimitPolicy>,
}

/// The result of [`Engine::suggest`].
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// The stored action.
    pub action: Action,
    /// Its plan.
    pub plan: Plan,
    /// Every gate's verdict and the mode.
    pub decision: PolicyDecision,
}

/// The result of [`Engine::execute`]. Each variant is an outcome, not an error.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecuteOutcome {
    /// Applied and read back.
    Completed {
        /// The action, now `completed`.
        action: Action,
        /// The state read back.
        after: Snapshot,
    },
    /// The provider refused, or the change was not observed.
    Failed {
        /// The action, now `failed`.
        action: Action,
        /// Why.
        error: String,
    },
    /// A blast-radius window is full; an admin must force or release.
    Held {
        /// The action, now `held`.
        action: Action,
        /// The full window.
        limit: LimitReached,
    },
    /// The circuit breaker is tripped: all execution pauses until an admin resets it.
    HeldByBreaker {
        /// The action, now `held`.
        action: Action,
    },
    /// The live state no longer matches the approved plan; approvals are void.
    PlanChanged {
        /// The action, now `pending_approval` (unchanged for a dry run).
        action: Action,
        /// What differs between the approved plan and the new one.
        changes: Vec<Change>,
    },
    /// The provider throttled the write, or failed transiently, and nothing was written: the
    /// action is back in `approved`, its limit slots released, and is not claimed again
    /// before `not_before`.
    Requeued {
        /// The action, now `approved`.
        action: Action,
        /// When it may be executed again.
        not_before: OffsetDateTime,
    },
    /// A dry run: everything was checked and nothing was written.
    DryRun {
        /// The plan that would run.
        plan: Plan,
        /// Every gate's verdict.
        decision: PolicyDecision,
        /// The window that would hold the action, if any.
        limit: Option<LimitReached>,
    },
}

/// The result of [`Engine::fix_holds`].
#[derive(Debug, Clone, PartialEq)]
pub enum FixCheck {
    /// The change is still in place: there is nothing to do again.
    Holds,
    /// The grant is back: the same change would change something again.
    Undone {
        /// The state read now.
        live: Snapshot,
    },
}

/// The result of [`Engine::rollback`].
#[derive(Debug, Clone, PartialEq)]
pub enum RollbackOutcome {
    /// The before-state was restored and read back.
    RolledBack {
        /// The action, now `rolled_back`.
        action: Action,
    },
    /// The provider took the restoring write as an invitation: the action is `rolled_back`,
    /// but the person has the access again only once they accept it (the invitation was read
    /// back, for the same permission or role the before-state held).
    RestoredPendingAcceptance {
        /// The action, now `rolled_back`, its detail marked `pending_acceptance`.
        action: Action,
    },
    /// The restore failed; the action is `failed` and needs attention.
    Failed {
        /// The action, now `failed`.
        action: Action,
        /// Why.
        error: String,
    },
    /// A person asked for the rollback and the kind needs it approved: the action waits in
    /// `rollback_requested` until a different principal approves (or rejects) it.
    Requested {
        /// The action, now `rollback_requested`.
        action: Action,
    },
}

impl RollbackOutcome {
    /// The action as the rollback left it.
    pub fn action(&self) -> &Action {
        match self {
            Self::RolledBack { action }
            | Self::RestoredPendingAcceptance { action }
            | Self::Failed { action, .. }
            | Self::Requested { action } => action,
        }
    }
}

/// What a restore came to (a restore is never merely requested).
enum Restored {
    /// The before-state was restored and read back.
    RolledBack(Action),
    /// The access was offered back as an invitation, read back as pending.
    PendingAcceptance(Action),
    /// The restore failed, and why.
    Failed(Action, String),
}

impl From<Restored> for RollbackOutcome {
    fn from(r: Restored) -> Self {
        match r {
            Restored::RolledBack(action) => Self::RolledBack { action },
            Restored::PendingAcceptance(action) => Self::RestoredPendingAcceptance { action },
            Restored::Failed(action, error) => Self::Failed { action, error },
        }
    }
}

/// Whether `actor` is the principal recorded as `recorded` (an audit `actor` or `requested_by`).
///
/// Separation of duties for rollbacks compares principals through this one function, so the
/// identity it compares can change in one place.
pub(crate) fn same_principal(actor: &Actor, recorded: &str) -> bool {
    actor.name == recorded
}

/// A decision made before an action exists, which lets [`Engine::suggest_preapproved`]
/// store it as `approved` without waiting for an approver. Gates that refuse still refuse,
/// the kind's mode still applies (advisory stays guidance, a forced dry run stays one), and
/// limits are taken at execution as always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preapproval {
    /// An incident responder (the `responder` role or an admin) runs one of the policy's
    /// emergency kinds ([`SafetyPolicy::emergency_kind`]) at once: the responder is recorded
    /// as the decider, with the `emergency` event and their reason.
    Emergency,
    /// A step of a playbook run whose whole plan was approved: `approvers` approved the run,
    /// whose step planned this change ([`crate::Plan::change_hash`]) reaching at most `reach`.
    /// The action is approved only when the live plan still makes that change, reaches no
    /// more, the approvers reach the kind's quorum, and none of them is the requester.
    RunStep {
        /// The run's id.
        run: String,
        /// The step's number in the run, from 1.
        step: u32,
        /// Who approved the run.
        approvers: Vec<String>,
        /// The step's change hash as approved.
        change_hash: crate::hash::HexDigest,
        /// What the approved plan reached (`None`: not counted).
        reach: Option<u32>,
    },
}

/// A new action `id` for `request` by `actor`, before any check: `pending_approval`, manual.
fn draft(request: &ActionRequest, actor: &Actor, id: ActionId, now: OffsetDateTime) -> Action {
    Action {
        id,
        kind: request.kind.clone(),
        target: request.target.clone(),
        connector: request.connector.clone(),
        control_id: request.control_id.clone(),
        finding_id: request.finding_id.clone(),
        canonical: None,
        requested_by: actor.name.clone(),
        reason: request.reason.clone(),
        mode: Mode::Manual,
        idempotency_key: format!("remediation-{id}"),
        state: State::PendingApproval,
        created_at: now,
        updated_at: now,
        handle: None,
        campaign: request.campaign.as_ref().map(|e| e.campaign.clone()),
    }
}

/// The rule name of the refusal [`Engine::suggest_preapproved`] gives when a run step's live
/// plan no longer makes the approved change: the run pauses for re-approval.
pub const PLAN_BINDING_RULE: &str = "plan binding";

/// Fresh reads and a fresh plan for one action.
struct Prepared {
    connector: Arc<dyn Connector>,
    plan: Plan,
    decision: PolicyDecision,
    /// The safety state the gates judged, read after the last provider call of the
    /// preparation: the breaker check and the refusal check before the claim use it too, as
    /// nothing but local work separates them from this read.
    safety: SafetyState,
}

/// The remediation engine. Cheap to share behind an `Arc`; holds no state of its own beyond
/// its parts.
pub struct Engine {
    store: Arc<dyn Store>,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    clock: Arc<dyn Clock>,
    policy: Arc<dyn SafetyPolicy>,
    limits: Arc<dyn LimitPolicy>,
    failpoints: Option<FailpointHook>,
    /// The last refusal recorded per (action, actor), so a repeated identical refusal is not
    /// recorded again (see [`Engine::execute`]).
    refusals: std::sync::Mutex<std::collections::HashMap<(ActionId, String), String>>,
    /// The lease this engine takes on the actions it executes or rolls back; `None`: no
    /// leases (the caller keeps other processes away).
    lease: Option<crate::LeaseRequest>,
}

/// How many expired actions [`Engine::recover`] takes over per store call.
const RECOVER_BATCH: usize = 32;

/// `note` after what a connector did to settle a half-made change, when it did something.
fn with(settled: &Option<String>, note: &str) -> String {
    match settled {
        Some(s) => format!("{s}; {note}"),
        None => note.to_owned(),
    }
}

/// A function the engine calls at each named failpoint (see [`failpoints`]).
pub type FailpointHook = Arc<dyn Fn(&'static str) + Send + Sync>;

/// The names of the engine's failpoints: the moments where a crash is most interesting.
/// Tests install a hook with [`Engine::with_failpoints`] that stops the process at one.
pub mod failpoints {
    /// The action was persisted as `executing`; nothing written to the provider yet.
    pub const AFTER_BEGIN_EXECUTION: &str = "after_begin_execution";
    /// The provider accepted the write; not yet read back.
    pub const AFTER_PROVIDER_WRITE: &str = "after_provider_write";
    /// The change was read back and verified; `completed` not yet persisted.
    pub const BEFORE_COMPLETED: &str = "before_completed";
    /// The action was persisted as `rolling_back`; nothing restored yet.
    pub const AFTER_BEGIN_ROLLBACK: &str = "after_begin_rollback";
    /// The provider accepted the restore; not yet read back or persisted.
    pub const AFTER_ROLLBACK_WRITE: &str = "after_rollback_write";
    /// Every failpoint, in the order an action meets them.
    pub const ALL: [&str; 5] =
        [AFTER_BEGIN_EXECUTION, AFTER_PROVIDER_WRITE, BEFORE_COMPLETED, AFTER_BEGIN_ROLLBACK, AFTER_ROLLBACK_WRITE];
}

/// What [`Engine::recover`] did with one interrupted action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The action.
    pub id: ActionId,
    /// The state it was left in.
    pub from: State,
    /// The state it is in now.
    pub to: State,
    /// What happened, in plain words.
    pub note: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("connectors", &self.connectors.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds an engine. A later connector with the same id as an earlier one replaces it.
    pub fn new(parts: EngineParts) -> Self {
        let connectors = parts.connectors.into_iter().map(|c| (c.id().to_owned(), c)).collect();
        Self {
            store: parts.store,
            connectors,
            clock: parts.clock,
            policy: parts.policy,
            limits: parts.limits,
            failpoints: None,
            refusals: std::sync::Mutex::default(),
            lease: None,
        }
    }

    /// Executes and rolls back under leases taken for `request` (holder id, ttl): the move to
    /// `executing` or `rolling_back` grants one, it is renewed every ttl/3 while the provider
    /// call is in flight and checked before every provider write, every later change is fenced
    /// with its epoch, and [`Engine::recover`] takes over only actions whose lease expired. A
    /// lost lease stops the engine before any further provider write, with
    /// [`crate::StoreError::LeaseLost`] (or `StaleLease` for a change), leaving the action to
    /// whoever took it over. Any number of engines on one store may then run at once.
    pub fn with_leases(mut self, request: crate::LeaseRequest) -> Self {
        self.lease = Some(request);
        self
    }

    /// The leases this engine executes under ([`Engine::with_leases`]), if any.
    pub fn lease_request(&self) -> Option<&crate::LeaseRequest> {
        self.lease.as_ref()
    }

    /// Installs a hook called at each of the engine's [`failpoints`].
    pub fn with_failpoints(mut self, hook: FailpointHook) -> Self {
        self.failpoints = Some(hook);
        self
    }

    /// The configured connectors.
    pub fn connectors(&self) -> impl Iterator<Item = &Arc<dyn Connector>> {
        self.connectors.values()
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads one action with everything recorded about it.
    pub async fn get(&self, id: ActionId) -> Result<ActionDetail, EngineError> {
        self.store.get(id).await.map_err(not_found)
    }

    /// Lists every action passing `filter`, oldest first, reading the store page by page.
    pub async fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, EngineError> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(LIST_PAGE);
        loop {
            let got = self.store.list(filter, &page).await?;
            all.extend(got.items);
            match got.next {
                Some(after) => page.after = Some(after),
                None => return Ok(all),
            }
        }
    }

    /// One page of the actions passing `filter`, oldest first, paged by the store.
    pub async fn list_page(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, EngineError> {
        Ok(self.store.list(filter, page).await?)
    }

    /// Every transition of one action, oldest first.
    pub async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, EngineError> {
        self.store.get(id).await.map_err(not_found)?;
        Ok(self.store.transitions(id).await?)
    }

    /// Validates a request, resolves its mode, runs the gates, plans it and stores it.
    ///
    /// An unsupported (kind, grant type) fails before any provider request. A refusal (a
    /// refusing gate, a role, an unsupported kind, an unknown target) stores no action; it is
    /// recorded in the audit as a `suggestion_refused` settings record naming the actor and
    /// the request.
    pub async fn suggest(&self, request: ActionRequest, actor: &Actor) -> Result<Suggestion, EngineError> {
        self.suggest_audited(request, actor, None).await
    }

    /// Suggests an action a decision made beforehand covers ([`Preapproval`]): an emergency
    /// response, or a step of an approved playbook run. Every check of [`Engine::suggest`]
    /// runs; gates that would only ask for approval are answered by `preapproval`, and the
    /// action is stored `approved` (still `suggested` in advisory mode, `dry_run` when dry
    /// runs are forced), its creation recorded with the event `emergency` or `run_step`, the
    /// decider and the reason. A refusal is recorded as `suggestion_refused`.
    ///
    /// An emergency needs the `responder` role or an admin, and a kind the policy lists as an
    /// emergency kind. A run step needs the approvers to reach the kind's quorum without the
    /// requester, and the live plan to make the approved change (else refused by
    /// [`PLAN_BINDING_RULE`]).
    pub async fn suggest_preapproved(
        &self,
        request: ActionRequest,
        actor: &Actor,
        preapproval: &Preapproval,
    ) -> Result<Suggestion, EngineError> {
        self.suggest_audited(request, actor, Some(preapproval)).await
    }

    /// [`Engine::suggest_unaudited`], recording a refusal as `suggestion_refused`.
    async fn suggest_audited(
        &self,
        request: ActionRequest,
        actor: &Actor,
        preapproval: Option<&Preapproval>,
    ) -> Result<Suggestion, EngineError> {
        let mut summary = serde_json::json!({
            "connector": request.connector,
            "kind": request.kind,
            "target": request.target,
            "control_id": request.control_id,
            "finding_id": request.finding_id,
            "dry_run": request.dry_run,
        });
        match preapproval {
            None => {}
            Some(Preapproval::Emergency) => summary["preapproval"] = serde_json::json!("emergency"),
            Some(Preapproval::RunStep { run, step, .. }) => {
                summary["preapproval"] = serde_json::json!({"run": run, "step": step});
            }
        }
        let result = self.suggest_unaudited(request, actor, preapproval).await;
        if let Err(e) = &result
            && audited_refusal(e)
        {
            self.note("suggestion_refused", actor, e, serde_json::Value::Null, summary).await?;
        }
        result
    }

    /// Plans `request` as [`Engine::suggest`] would, from `before` instead of a fresh read
    /// when given (the state an earlier step of a playbook leaves), and stores nothing. The
    /// gates run as at suggestion and their decision is returned, refusals included: the
    /// caller decides (a change already in place is not an error to a playbook).
    pub async fn plan_request(
        &self,
        request: &ActionRequest,
        actor: &Actor,
        before: Option<Snapshot>,
    ) -> Result<(Plan, PolicyDecision), EngineError> {
        if actor.role < Role::Requester {
            return Err(refused(
                "roles",
                format!("{} is a {}; planning needs the requester role or higher", actor.name, actor.role),
            ));
        }
        if let Some(reason) = request.kind.invalid() {
            return Err(refused("kind", reason));
        }
        let connector = self.connector(&request.connector)?;
        let now = self.clock.now();
        let action = draft(request, actor, ActionId::new_at(now), now);
        let prepared = self.prepare_from(&connector, &action, Stage::Suggest, true, before).await?;
        Ok((prepared.plan, prepared.decision))
    }

    async fn suggest_unaudited(
        &self,
        request: ActionRequest,
        actor: &Actor,
        preapproval: Option<&Preapproval>,
    ) -> Result<Suggestion, EngineError> {
        if actor.role < Role::Requester {
            return Err(refused(
                "roles",
                format!("{} is a {}; suggesting needs the requester role or higher", actor.name, actor.role),
            ));
        }
        match preapproval {
            Some(Preapproval::Emergency) if actor.role != Role::Responder && actor.role != Role::Admin => {
                return Err(refused(
                    "roles",
                    format!(
                        "{} is a {}; an emergency response needs the responder or admin role",
                        actor.name, actor.role
                    ),
                ));
            }
            Some(Preapproval::Emergency)
                if !self.policy.emergency_kind(request.kind.name(), &self.gate_state().await?) =>
            {
                return Err(refused(
                    "emergency",
                    format!(
                        "{} is not an emergency kind (`[policy] emergency_kinds`); it goes to approval as usual",
                        request.kind.name()
                    ),
                ));
            }
            Some(Preapproval::RunStep { approvers, .. }) if approvers.iter().any(|a| a == &actor.name) => {
                return Err(refused(
                    "separation of duties",
                    format!("{} requested this run and cannot be among its approvers", actor.name),
                ));
            }
            _ => {}
        }
        if let Some(reason) = request.kind.invalid() {
            return Err(refused("kind", reason));
        }
        let connector = self.connector(&request.connector)?;
        let now = self.clock.now();
        let id = request.campaign.as_ref().map_or_else(|| ActionId::new_at(now), ActionId::for_campaign_entry);
        let action = draft(&request, actor, id, now);
        let dry_run = request.dry_run || self.policy.forced_dry_run(&action);
        let prepared = self.prepare(&connector, &action, Stage::Suggest, dry_run).await?;
        if let Some(gate) = prepared.decision.refusal() {
            return Err(refused(&gate.gate, gate.reason.clone()));
        }
        let mode = prepared.decision.effective_mode();
        let auto_approved = prepared.decision.mode == Mode::Auto && mode == Mode::Auto;
        let mut state = initial_state(mode, dry_run, auto_approved);
        let mut decided_by = (state == State::Approved).then(|| Actor::system().name);
        let mut event = "suggest";
        // A run step is bound to the change its run approved whatever the mode: an auto
        // approval does not carry a step past a change nobody approved.
        if let Some(Preapproval::RunStep { run, step, change_hash, reach, .. }) = preapproval
            && matches!(state, State::PendingApproval | State::Approved)
        {
            let live = prepared.plan.change_hash()?;
            let wider = match (reach, prepared.plan.reach) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(approved), Some(now)) => now > *approved,
            };
            if change_hash != &live || wider {
                return Err(refused(
                    PLAN_BINDING_RULE,
                    format!(
                        "step {step} of run {run} plans a different change now than the one approved \
                         (approved change {}, live change {}{}); the run waits for a new approval",
                        change_hash.get(..12).unwrap_or(change_hash),
                        live.get(..12).unwrap_or(&live),
                        if wider { ", reaching more than approved" } else { "" }
                    ),
                ));
            }
        }
        if let Some(pre) = preapproval
            && state == State::PendingApproval
        {
            match pre {
                Preapproval::Emergency => {
                    decided_by = Some(actor.name.clone());
                    event = "emergency";
                }
                Preapproval::RunStep { run, step, approvers, .. } => {
                    let probe = Action { canonical: prepared.plan.before.canonical.clone(), ..action.clone() };
                    let needed = self.policy.min_approvals(&probe).max(1) as usize;
                    let distinct: std::collections::BTreeSet<&String> = approvers.iter().collect();
                    if distinct.len() < needed {
                        return Err(refused(
                            "separation of duties",
                            format!(
                                "step {step} of run {run} needs {needed} approvals and the run has {}",
                                distinct.len()
                            ),
                        ));
                    }
                    decided_by = Some(approvers.join(", "));
                    event = "run_step";
                }
            }
            state = State::Approved;
        }
        // The provider's own id for the target, so limits and de-duplication count every
        // alias of one account as that account.
        let canonical = prepared.plan.before.canonical.clone();
        let action = Action { mode, state, canonical, ..action };

        let mut comment = match preapproval {
            Some(Preapproval::Emergency) if event == "emergency" => {
                format!("emergency response by {}: {}", actor.name, action.reason)
            }
            Some(Preapproval::RunStep { run, step, .. }) if event == "run_step" => {
                format!("step {step} of playbook run {run}: {}", action.reason)
            }
            _ => action.reason.clone(),
        };
        for gate in prepared.decision.approvals_required() {
            let verb = if event == "suggest" { "requires approval" } else { "answered by the decision above" };
            comment.push_str(&format!("; gate {} {verb}: {}", gate.gate, gate.reason));
        }
        let mut record = self.record(&action, None, state, event, actor, now);
        record.comment = Some(comment);
        record.plan_hash = Some(prepared.plan.plan_hash.clone());
        record.before_hash = Some(prepared.plan.before.hash()?);
        // Only an auto approval (or a decision made beforehand) is a decision; an auto-mode
        // dry run was never approved.
        record.decided_by = decided_by;
        let detail = ActionDetail {
            action: action.clone(),
            plan: Some(prepared.plan.clone()),
            before: None,
            after: None,
            restored: None,
            pending_acceptance: false,
            rollback_expires_at: None,
            last_error: None,
            approval_expires_at: (state == State::PendingApproval).then(|| now + self.policy.approval_ttl(&action)),
            not_before: None,
            attempts: 0,
            held_lease: None,
            follows: None,
        };
        // The store gives the action its handle as it stores it.
        let mut action = action;
        action.handle = self.store.create_action(&detail, &record).await?;
        Ok(Suggestion { action, plan: prepared.plan, decision: prepared.decision })
    }

    /// Records an approval. The requester cannot approve their own action, nobody approves
    /// twice, and the action moves to `approved` once the policy's minimum is reached.
    ///
    /// On a `rollback_requested` action this approves the rollback instead (see
    /// [`Engine::approve_rollback`]) and returns the action as the rollback left it.
    pub async fn approve(&self, id: ActionId, actor: &Actor, note: Option<String>) -> Result<Action, EngineError> {
        let result = self.approve_unaudited(id, actor, note).await;
        self.note_if_refused(result, "approval_refused", id, actor).await
    }

    async fn approve_unaudited(
        &self,
        id: ActionId,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<Action, EngineError> {
        let detail = self.get(id).await?;
        if detail.action.state == State::RollbackRequested {
            return Ok(self.approve_requested_rollback(detail, actor, note).await?.action().clone());
        }
        let action = &detail.action;
        if actor.name == action.requested_by {
            return Err(refused(
                "separation of duties",
                format!("{} requested this action and cannot approve it; ask another approver", actor.name),
            ));
        }
        let approvers = self.current_approvers(id).await?;
        if approvers.contains(&actor.name) {
            return Err(refused("separation of duties", format!("{} has already approved this plan", actor.name)));
        }
        let needed = self.policy.min_approvals(action).max(1);
        let quorum_reached = approvers.len() + 1 >= needed as usize;
        let plan_hash = detail.plan.as_ref().map(|p| p.plan_hash.clone());
        self.step(&detail, Event::Approve { quorum_reached }, actor, note, DetailUpdate::default(), |r| {
            r.decided_by = Some(actor.name.clone());
            r.plan_hash = plan_hash;
        })
        .await
    }

    /// Rejects an action waiting for approval.
    pub async fn reject(&self, id: ActionId, actor: &Actor, note: Option<String>) -> Result<Action, EngineError> {
        let detail = self.get(id).await?;
        let name = actor.name.clone();
        self.step(&detail, Event::Reject, actor, note, DetailUpdate::default(), |r| r.decided_by = Some(name)).await
    }

    /// Cancels an action that has not started. Only its requester or an admin may.
    pub async fn cancel(&self, id: ActionId, actor: &Actor, note: Option<String>) -> Result<Action, EngineError> {
        let detail = self.get(id).await?;
        if actor.role < Role::Admin && actor.name != detail.action.requested_by {
            return Err(refused(
                "roles",
                format!("only the requester ({}) or an admin may cancel this action", detail.action.requested_by),
            ));
        }
        self.step(&detail, Event::Cancel, actor, note, DetailUpdate::default(), |_| {}).await
    }

    /// Expires every action that has waited for approval longer than the policy allows
    /// (7 days by default), as `system`. Returns the expired actions. An action another
    /// process moved meanwhile is left alone.
    pub async fn expire_stale(&self) -> Result<Vec<Action>, EngineError> {
        let now = self.clock.now();
        let mut expired = Vec::new();
        // Only actions whose stored due time has passed, from the store's due-time index.
        for detail in self.store.due(now, DUE_BATCH).await? {
            let outcome = match detail.action.state {
                State::PendingApproval => {
                    let ttl = self.policy.approval_ttl(&detail.action);
                    if now - detail.action.created_at <= ttl {
                        continue;
                    }
                    let comment = format!("not approved within {} hours", ttl.whole_hours());
                    self.step(&detail, Event::Expire, &Actor::system(), Some(comment), DetailUpdate::default(), |_| {})
                        .await
                }
                State::RollbackRequested => {
                    if detail.rollback_expires_at.is_none_or(|until| now <= until) {
                        continue;
                    }
                    self.close_rollback_request(&detail).await
                }
                _ => continue,
            };
            match outcome {
                Ok(a) => expired.push(a),
                Err(EngineError::Store(crate::StoreError::StateConflict { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Records in the audit log (and so as a `did_not_hold` event) that a finding about
    /// `control_id` and `target` arrived again although action `id` completed and its change is
    /// undone ([`FixCheck::Undone`]). Refused unless `id` is completed.
    pub async fn record_did_not_hold(
        &self,
        id: ActionId,
        control_id: &str,
        target: &crate::Target,
        actor: &Actor,
    ) -> Result<(), EngineError> {
        let detail = self.get(id).await?;
        if detail.action.state != State::Completed {
            return Err(refused("recheck", format!("action {id} is {}, not completed", detail.action.state)));
        }
        let target = serde_json::to_value(target).map_err(crate::hash::CanonicalError)?;
        let record = SettingsRecord {
            setting_event: crate::events::DID_NOT_HOLD_EVENT.to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            at: self.clock.now(),
            comment: Some(format!("a finding about {control_id} arrived again: the change of action {id} was undone")),
            previous: serde_json::Value::Null,
            value: serde_json::json!({ "control_id": control_id, "target": target }),
            action_id: Some(id),
        };
        self.store.append_note(&record).await?;
        Ok(())
    }

    /// Whether the change of completed action `id` still holds, read from the provider now:
    /// the target is read again and the same change planned against it. It holds when the
    /// live state is the recorded after-state or the plan would change nothing; otherwise
    /// the grant is back, and the live state is returned. Reads only; writes nothing.
    pub async fn fix_holds(&self, id: ActionId) -> Result<FixCheck, EngineError> {
        let detail = self.get(id).await?;
        let action = &detail.action;
        if action.state != State::Completed {
            return Err(refused("recheck", format!("action {id} is {}, not completed", action.state)));
        }
        let connector = self.connector(&action.connector)?;
        if find_capability(&connector.capabilities(), action.kind.name(), &action.target).is_none() {
            return Err(refused(
                "recheck",
                format!("connector `{}` no longer supports this change, so it cannot re-read it", action.connector),
            ));
        }
        let live = connector.snapshot(&action.target).await.map_err(conn(&connector, "read the target"))?;
        if detail.after.as_ref() == Some(&live) {
            return Ok(FixCheck::Holds);
        }
        let planned = connector.plan(action, &live).await.map_err(conn(&connector, "plan the change"))?;
        if planned.expected_after == live {
            return Ok(FixCheck::Holds);
        }
        Ok(FixCheck::Undone { live })
    }

    /// Returns a `rollback_requested` action whose window closed to `completed` (system).
    async fn close_rollback_request(&self, detail: &ActionDetail) -> Result<Action, EngineError> {
        let comment = "the rollback window closed before the rollback was approved; the change stays in place";
        self.step(detail, Event::Expire, &Actor::system(), Some(comment.to_owned()), DetailUpdate::default(), |_| {})
            .await
    }

    /// Turns advisory guidance into a request for approval (admin).
    pub async fn promote(&self, id: ActionId, actor: &Actor, note: Option<String>) -> Result<Action, EngineError> {
        let detail = self.get(id).await?;
        if self.gate_state().await?.kill_switch_refusal().is_some() {
            let result = Err(refused(
                "enablement",
                "the kill switch is on; no action becomes executable while it is on (guidance stays guidance)",
            ));
            return self.note_if_refused(result, "promotion_refused", id, actor).await;
        }
        self.step(&detail, Event::Promote, actor, note, DetailUpdate::default(), |_| {}).await
    }

    /// Executes an approved action: re-validate, re-plan and compare the plan hash, reserve
    /// limit slots and record the before-state in one transaction, write, read back.
    ///
    /// With `dry_run`, every check runs, limits are checked but not consumed, and nothing is
    /// written to the provider or the store.
    ///
    /// A refused execution is recorded in the audit (`execution_refused`) once per actor and
    /// reason: the worker retrying the same refused action does not record it again until the
    /// reason changes.
    pub async fn execute(&self, id: ActionId, actor: &Actor, dry_run: bool) -> Result<ExecuteOutcome, EngineError> {
        let result = self.execute_unaudited(id, actor, dry_run).await;
        if dry_run {
            return result;
        }
        self.note_if_refused(result, "execution_refused", id, actor).await
    }

    async fn execute_unaudited(
        &self,
        id: ActionId,
        actor: &Actor,
        dry_run: bool,
    ) -> Result<ExecuteOutcome, EngineError> {
        let detail = self.get(id).await?;
        let action = &detail.action;
        let dry_run = dry_run || self.policy.forced_dry_run(action);
        if dry_run {
            if actor.role < Role::Requester {
                return Err(refused(
                    "roles",
                    format!("{} is a {}; a dry run needs the requester role or higher", actor.name, actor.role),
                ));
            }
            if !matches!(action.state, State::PendingApproval | State::Approved | State::Held | State::Suggested) {
                return Err(
                    crate::TransitionError::Illegal { state: action.state, event: Event::BeginExecution }.into()
                );
            }
        } else {
            transition(action.state, Event::BeginExecution, actor.role)?;
        }
        if !dry_run {
            self.check_follow_up(&detail).await?;
        }
        let connector = self.connector(&action.connector)?;
        let prepared = self.prepare(&connector, action, Stage::Execute, dry_run).await?;
        if let Some(gate) = prepared.decision.refusal() {
            return Err(refused(&gate.gate, gate.reason.clone()));
        }
        let approved_hash = detail.plan.as_ref().map(|p| p.plan_hash.as_str());
        if approved_hash != Some(prepared.plan.plan_hash.as_str()) {
            let changes = plan_changes(detail.plan.as_ref(), &prepared.plan);
            if dry_run {
                return Ok(ExecuteOutcome::PlanChanged { action: action.clone(), changes });
            }
            let comment = format!(
                "live state differs from the approved plan; approvals are void: {}",
                changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            );
            let new_hash = prepared.plan.plan_hash.clone();
            let update = DetailUpdate { plan: Some(prepared.plan), ..DetailUpdate::default() };
            let action = self
                .step(&detail, Event::PlanChanged, &Actor::system(), Some(comment), update, |r| {
                    r.plan_hash = Some(new_hash)
                })
                .await?;
            return Ok(ExecuteOutcome::PlanChanged { action, changes });
        }
        let slots = self.limits.slots_for(action);
        if dry_run {
            let limit = self.store.check_limits(&slots, self.clock.now()).await?;
            return Ok(ExecuteOutcome::DryRun { plan: prepared.plan, decision: prepared.decision, limit });
        }
        if prepared.safety.breaker_tripped {
            let reason = "the circuit breaker is tripped: all execution pauses until an admin runs `breaker reset`; \
                          an admin may also force-execute this action"
                .to_owned();
            let action = self
                .step(&detail, Event::Hold, &Actor::system(), Some(reason.clone()), DetailUpdate::default(), |_| {})
                .await?;
            return Ok(ExecuteOutcome::HeldByBreaker { action });
        }
        self.begin_and_run(&detail, prepared, Event::BeginExecution, actor, None, &slots, true).await
    }

    /// Executes a held action despite its limit (admin, with a reason; audited as an override).
    pub async fn force_execute(
        &self,
        id: ActionId,
        actor: &Actor,
        reason: String,
    ) -> Result<ExecuteOutcome, EngineError> {
        let result = self.force_execute_unaudited(id, actor, reason).await;
        self.note_if_refused(result, "execution_refused", id, actor).await
    }

    async fn force_execute_unaudited(
        &self,
        id: ActionId,
        actor: &Actor,
        reason: String,
    ) -> Result<ExecuteOutcome, EngineError> {
        if reason.trim().is_empty() {
            return Err(refused("override", "force-execute needs a reason; it is kept in the audit"));
        }
        let detail = self.get(id).await?;
        transition(detail.action.state, Event::ForceExecute, actor.role)?;
        let connector = self.connector(&detail.action.connector)?;
        let prepared = self.prepare(&connector, &detail.action, Stage::Execute, false).await?;
        if let Some(gate) = prepared.decision.refusal() {
            return Err(refused(&gate.gate, gate.reason.clone()));
        }
        if detail.plan.as_ref().map(|p| &p.plan_hash) != Some(&prepared.plan.plan_hash) {
            return Err(refused(
                "plan binding",
                "the live state no longer matches the approved plan; cancel this action and suggest it again",
            ));
        }
        let slots = self.limits.slots_for(&detail.action);
        self.begin_and_run(&detail, prepared, Event::ForceExecute, actor, Some(reason), &slots, false).await
    }

    /// Returns a held action to `approved` (admin).
    pub async fn release(&self, id: ActionId, actor: &Actor, note: Option<String>) -> Result<Action, EngineError> {
        let detail = self.get(id).await?;
        self.step(&detail, Event::Release, actor, note, DetailUpdate::default(), |_| {}).await
    }

    /// Restores the before-state of a completed action inside its rollback window (the live
    /// state must equal the recorded after-state), or of a failed action that changed
    /// something.
    ///
    /// A person rolling back a completed action of a kind whose rollback requires approval
    /// only requests it: the action moves to `rollback_requested` and waits for a different
    /// principal ([`RollbackOutcome::Requested`]). Calling this on a `rollback_requested`
    /// action approves that request. The system (automatic rollback, redo of a fix that did
    /// not hold) rolls back without approval. An irreversible change is refused before
    /// anything is read or recorded. A rollback takes no limit slot.
    pub async fn rollback(
        &self,
        id: ActionId,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<RollbackOutcome, EngineError> {
        let result = self.rollback_unaudited(id, actor, note).await;
        self.note_if_refused(result, "rollback_refused", id, actor).await
    }

    async fn rollback_unaudited(
        &self,
        id: ActionId,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<RollbackOutcome, EngineError> {
        let detail = self.get(id).await?;
        if detail.action.state == State::RollbackRequested {
            return self.approve_requested_rollback(detail, actor, note).await;
        }
        let action = &detail.action;
        transition(action.state, Event::Rollback, actor.role)?;
        refuse_irreversible(&detail)?;
        let connector = self.connector(&action.connector)?;
        let (before, live) = self.rollback_preconditions(&detail, &connector).await?;
        let needs_approval = action.state == State::Completed
            && actor.role != Role::System
            && self.policy.rollback_requires_approval(action);
        if needs_approval {
            let comment = Some(note.unwrap_or_else(|| "rollback requested".to_owned()));
            let until = detail.rollback_expires_at;
            let action = self
                .step(&detail, Event::RequestRollback, actor, comment, DetailUpdate::default(), |r| {
                    r.rollback_expires_at = until;
                })
                .await?;
            return Ok(RollbackOutcome::Requested { action });
        }
        self.begin_rollback(detail, Event::Rollback, actor, note, &connector, (before, live)).await
    }

    /// Moves `detail` to `rolling_back` through `event` (a rollback, or the approval of a
    /// rollback request, whose approver is recorded as the decision), recording the undo's
    /// before- and after-state, then restores `before` over `live`.
    async fn begin_rollback(
        &self,
        detail: ActionDetail,
        event: Event,
        actor: &Actor,
        note: Option<String>,
        connector: &Arc<dyn Connector>,
        (before, live): (Snapshot, Snapshot),
    ) -> Result<RollbackOutcome, EngineError> {
        let decided_by = matches!(event, Event::Approve { .. }).then(|| actor.name.clone());
        let (undo_from, undo_to) = (live.clone(), before.clone());
        let action = self
            .step(&detail, event, actor, note, DetailUpdate::default(), |r| {
                // A rollback changes the live state back to the recorded before-state.
                r.before_state = Some(undo_from);
                r.after_state = Some(undo_to);
                if decided_by.is_some() {
                    r.decided_by = decided_by;
                }
            })
            .await?;
        let detail = self.holding(ActionDetail { action, ..detail }).await?;
        self.failpoint(failpoints::AFTER_BEGIN_ROLLBACK);
        Ok(self.restore(&detail, connector, &before, &live).await?.into())
    }

    /// Approves the rollback a person requested (`rollback_requested`), then runs it: the
    /// approver must be a principal other than the one who requested the rollback, and the
    /// window and drift are judged now. A closed window returns the action to `completed`. A
    /// refused approval is recorded in the audit (`approval_refused`).
    pub async fn approve_rollback(
        &self,
        id: ActionId,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<RollbackOutcome, EngineError> {
        let result = match self.get(id).await {
            Ok(detail) => self.approve_requested_rollback(detail, actor, note).await,
            Err(e) => Err(e),
        };
        self.note_if_refused(result, "approval_refused", id, actor).await
    }

    async fn approve_requested_rollback(
        &self,
        detail: ActionDetail,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<RollbackOutcome, EngineError> {
        let approve = Event::Approve { quorum_reached: true };
        transition(detail.action.state, approve, actor.role)?;
        let requester = self.rollback_requester(detail.action.id).await?;
        if same_principal(actor, &requester) {
            return Err(refused(
                "separation of duties",
                format!("{} requested this rollback and cannot approve it; ask another approver", actor.name),
            ));
        }
        refuse_irreversible(&detail)?;
        let connector = self.connector(&detail.action.connector)?;
        if let Some(until) = detail.rollback_expires_at
            && self.clock.now() > until
        {
            self.close_rollback_request(&detail).await?;
        }
        let undo = self.rollback_preconditions(&detail, &connector).await?;
        self.begin_rollback(detail, approve, actor, note, &connector, undo).await
    }

    /// Who asked for the pending rollback of `id`: the actor of its last `request_rollback`.
    async fn rollback_requester(&self, id: ActionId) -> Result<String, EngineError> {
        let transitions = self.store.transitions(id).await?;
        transitions
            .into_iter()
            .rev()
            .find(|t| t.event == Event::RequestRollback.as_str())
            .map(|t| t.actor)
            .ok_or_else(|| refused("rollback", "no rollback request is recorded for this action"))
    }

    /// The checks a rollback must pass when it runs: a before-state exists; for a completed
    /// action the window is open and the live state still equals the recorded after-state;
    /// otherwise something differs from the before-state. Returns the before-state and the
    /// live state.
    async fn rollback_preconditions(
        &self,
        detail: &ActionDetail,
        connector: &Arc<dyn Connector>,
    ) -> Result<(Snapshot, Snapshot), EngineError> {
        let action = &detail.action;
        let Some(before) = detail.before.clone() else {
            return Err(refused(
                "rollback",
                "no before-state was recorded for this action, so there is nothing to restore",
            ));
        };
        let now = self.clock.now();
        if matches!(action.state, State::Completed | State::RollbackRequested)
            && let Some(until) = detail.rollback_expires_at
            && now > until
        {
            return Err(refused(
                "rollback window",
                format!(
                    "the rollback window closed at {until}; the before-state (hash {}) is kept in the audit for a manual restore",
                    before.hash()?
                ),
            ));
        }
        let live = connector.snapshot(&action.target).await.map_err(conn(connector, "read the target"))?;
        if matches!(action.state, State::Completed | State::RollbackRequested) {
            let after = detail.after.as_ref().unwrap_or(&live);
            if &live != after {
                let drift = json_diff(&after.state, &live.state);
                return Err(refused(
                    "drift",
                    format!(
                        "the target changed since execution, so restoring could undo someone else's change: {}",
                        drift.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                    ),
                ));
            }
        } else if live == before {
            return Err(refused("rollback", "the live state already equals the before-state; nothing to roll back"));
        }
        Ok((before, live))
    }

    /// Reconciles every action an interrupted process left `executing` or `rolling_back`,
    /// following the crash rule: the provider's live state decides. For `executing`: equal to
    /// the expected after-state -> `completed`; equal to the recorded before-state -> executed
    /// again with the same idempotency key; anything else -> `failed`, needs attention. For
    /// `rolling_back`: equal to the before-state -> `rolled_back`; equal to the recorded
    /// after-state -> restored again; anything else -> `failed`, needs attention.
    ///
    /// With leases ([`Engine::with_leases`]) it takes over only actions whose lease expired, so
    /// it is safe beside live workers; an action whose lease runs out while it is being
    /// reconciled, and which another worker takes over, is left to that worker (reported
    /// unchanged, with a note) and the pass goes on with the rest. Without, call it only while no other process can be
    /// working on these actions.
    pub async fn recover(&self) -> Result<Vec<Recovery>, EngineError> {
        let mut out = Vec::new();
        if let Some(request) = &self.lease {
            // Only actions whose lease expired, each taken over with a new epoch that fences
            // out the previous holder; one taken over stays leased to us, so the loop ends.
            loop {
                let taken = self.store.take_over_expired(request, RECOVER_BATCH).await?;
                if taken.is_empty() {
                    return Ok(out);
                }
                for (mut detail, lease) in taken {
                    detail.held_lease = Some(lease);
                    let (id, from) = (detail.action.id, detail.action.state);
                    match self.recover_one(detail).await {
                        Ok(recovery) => out.push(recovery),
                        // Our lease ran out while reconciling and another worker took the
                        // action over (the next epoch): it is theirs now, and the other
                        // actions of this batch are still ours to settle.
                        Err(EngineError::Store(
                            crate::StoreError::LeaseLost { .. } | crate::StoreError::StaleLease { .. },
                        )) => {
                            out.push(Recovery {
                                id,
                                from,
                                to: from,
                                note: "left to the worker that took it over while it was being reconciled".to_owned(),
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        for state in [State::Executing, State::RollingBack] {
            for action in self.list(&ActionFilter { state: Some(state), ..ActionFilter::default() }).await? {
                let detail = self.get(action.id).await?;
                out.push(self.recover_one(detail).await?);
            }
        }
        Ok(out)
    }

    async fn recover_one(&self, detail: ActionDetail) -> Result<Recovery, EngineError> {
        let from = detail.action.state;
        let id = detail.action.id;
        let done = |action: Action, note: String| Recovery { id, from, to: action.state, note };
        let connector = self.connector(&detail.action.connector)?;
        let live = match connector.snapshot(&detail.action.target).await {
            Ok(live) => live,
            Err(e) => {
                return Ok(Recovery {
                    id,
                    from,
                    to: from,
                    note: format!("left {from}: cannot read the target to reconcile it ({e}); run recovery again"),
                });
            }
        };
        let (Some(before), Some(plan)) = (detail.before.clone(), detail.plan.clone()) else {
            let error = "interrupted without a recorded before-state or plan; needs attention".to_owned();
            let action = match from {
                State::Executing => match self.fail(&detail, error.clone(), Some(live), Vec::new()).await? {
                    ExecuteOutcome::Failed { action, .. } => action,
                    other => return Err(refused("recovery", format!("unexpected outcome {other:?}"))),
                },
                _ => self.rollback_failed(&detail, error.clone(), Vec::new()).await?,
            };
            return Ok(done(action, error));
        };
        if from == State::Executing {
            return self.recover_execution(detail, &connector, before, plan, live).await;
        }
        if live == before {
            let note = "recovered after an interruption: the provider shows the before-state".to_owned();
            let action = self.rolled_back(&detail, live, Vec::new(), Some(note.clone())).await?;
            return Ok(done(action, note));
        }
        if let Some(after) = &detail.after
            && connector.pending_acceptance_state(&detail.action, &before, after).as_ref() == Some(&live)
        {
            let note = format!(
                "recovered after an interruption: {}",
                pending_note(&detail.action.target.identity, &before, &live)
            );
            let action = self.rolled_back_pending(&detail, live, Vec::new(), note.clone()).await?;
            return Ok(done(action, note));
        }
        if detail.after.as_ref() == Some(&live) {
            let outcome = self.restore(&detail, &connector, &before, &live).await?;
            let (action, note) = match outcome {
                Restored::RolledBack(action) => (action, "rollback re-run after an interruption".to_owned()),
                Restored::PendingAcceptance(action) => (
                    action,
                    "rollback re-run after an interruption; the access waits for the invitation to be accepted"
                        .to_owned(),
                ),
                Restored::Failed(action, error) => (action, error),
            };
            return Ok(done(action, note));
        }
        let error = format!(
            "rollback failed, needs attention: interrupted, and the provider state matches neither the before-state nor the after-state: {}",
            changes_text(&json_diff(&before.state, &live.state))
        );
        let action = self.rollback_failed(&detail, error.clone(), Vec::new()).await?;
        Ok(done(action, error))
    }

    /// The crash rule for an interrupted execution: the expected after-state -> `completed`;
    /// the before-state -> executed again with the same idempotency key; anything the
    /// connector verifies as the change -> `completed`. Anything else is handed once to
    /// [`Connector::settle_interrupted`], which may take back (or finish) the writes of a
    /// change that takes several, and the live state is judged again; what is still neither
    /// fails, needing attention.
    async fn recover_execution(
        &self,
        detail: ActionDetail,
        connector: &Arc<dyn Connector>,
        before: Snapshot,
        plan: Plan,
        mut live: Snapshot,
    ) -> Result<Recovery, EngineError> {
        let (id, from) = (detail.action.id, detail.action.state);
        let mut settled: Option<String> = None;
        let done = |action: Action, note: String, settled: &Option<String>| Recovery {
            id,
            from,
            to: action.state,
            note: with(settled, &note),
        };
        loop {
            if live == plan.expected_after {
                let note = "recovered after an interruption: the provider shows the expected after-state".to_owned();
                let action = self.complete(&detail, live, Vec::new(), Some(with(&settled, &note))).await?;
                return Ok(done(action, note, &settled));
            }
            if live == before {
                let outcome = self.run_write(&detail, connector, &plan).await?;
                let (action, note) = match outcome {
                    ExecuteOutcome::Completed { action, .. } => {
                        (action, "re-executed with the same idempotency key after an interruption".to_owned())
                    }
                    ExecuteOutcome::Failed { action, error } => (action, error),
                    ExecuteOutcome::Requeued { action, not_before } => {
                        let note = format!(
                            "re-executed after an interruption, throttled with nothing written: requeued, not before {not_before}"
                        );
                        (action, note)
                    }
                    other => return Err(refused("recovery", format!("unexpected outcome {other:?}"))),
                };
                return Ok(done(action, note, &settled));
            }
            // A provider may stamp a value no plan can know (the time sessions were revoked,
            // the id of a new credential): the connector's own verification judges whether the
            // change took effect.
            let planned = crate::PlannedChange {
                expected_after: plan.expected_after.clone(),
                description: plan.description.clone(),
            };
            if let Ok(v) = connector.verify(&detail.action, &planned).await
                && v.matches
            {
                let note = "recovered after an interruption: the connector verified the change".to_owned();
                let action = self.complete(&detail, v.observed, Vec::new(), Some(with(&settled, &note))).await?;
                return Ok(done(action, note, &settled));
            }
            if settled.is_some() {
                break;
            }
            // Provider writes, under the lease this recovery took over (renewed while they run).
            match self.leased(&detail, connector.settle_interrupted(&detail.action, &before, &live)).await? {
                Ok(Some(s)) => {
                    let ids = if s.request_ids.is_empty() {
                        String::new()
                    } else {
                        format!(" (request ids {})", s.request_ids.join(", "))
                    };
                    settled = Some(format!("settled a half-made change: {}{ids}", s.note));
                    // The settling writes are provider writes: the trail keeps them even when
                    // the re-execution that follows records only its own.
                    let record = SettingsRecord {
                        setting_event: "interrupted_change_settled".to_owned(),
                        actor: Actor::system().name,
                        credential: None,
                        at: self.clock.now(),
                        comment: settled.clone(),
                        previous: serde_json::json!({"action_id": id, "state": from}),
                        value: serde_json::json!({"action_id": id, "request_ids": s.request_ids}),
                        action_id: Some(id),
                    };
                    match self.store.append_note(&record).await {
                        Ok(()) | Err(crate::StoreError::Unsupported { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    live = match connector.snapshot(&detail.action.target).await {
                        Ok(now) => now,
                        Err(e) => {
                            let error = format!(
                                "interrupted; {}; then the target could not be read again ({e}); needs attention",
                                settled.as_deref().unwrap_or_default()
                            );
                            let ExecuteOutcome::Failed { action, error } =
                                self.fail(&detail, error, None, Vec::new()).await?
                            else {
                                return Err(refused("recovery", "unexpected outcome"));
                            };
                            return Ok(Recovery { id, from, to: action.state, note: error });
                        }
                    };
                }
                Ok(None) => break,
                Err(e) => {
                    settled = Some(format!("the connector could not settle the half-made change ({e})"));
                    break;
                }
            }
        }
        let error = format!(
            "interrupted, and the provider state matches neither the before-state nor the expected after-state; needs attention: {}",
            changes_text(&json_diff(&plan.expected_after.state, &live.state))
        );
        let error = with(&settled, &error);
        let ExecuteOutcome::Failed { action, error } = self.fail(&detail, error, Some(live), Vec::new()).await? else {
            return Err(refused("recovery", "unexpected outcome"));
        };
        Ok(Recovery { id, from, to: action.state, note: error })
    }

    /// Asks the connector to restore `before`, reads the target back, and records the result.
    async fn restore(
        &self,
        detail: &ActionDetail,
        connector: &Arc<dyn Connector>,
        before: &Snapshot,
        live: &Snapshot,
    ) -> Result<Restored, EngineError> {
        let action = &detail.action;
        let lossy = detail.plan.as_ref().is_some_and(|p| p.reversibility == Reversibility::Lossy);
        let result = self.leased(detail, connector.rollback(action, before, live)).await?;
        self.failpoint(failpoints::AFTER_ROLLBACK_WRITE);
        let (restored, request_ids) = match result {
            Ok(outcome) if outcome.status == OutcomeStatus::PendingAcceptance => {
                // The write sent an invitation: the only acceptable read-back is the state the
                // connector says an invitation for the same access leaves.
                let expected = connector.pending_acceptance_state(action, before, live);
                let read = match (connector.snapshot(&action.target).await, expected) {
                    (Ok(now), Some(expected)) if now == expected => {
                        let note = pending_note(&action.target.identity, before, &now);
                        let action = self.rolled_back_pending(detail, now, outcome.request_ids, note).await?;
                        return Ok(Restored::PendingAcceptance(action));
                    }
                    (Ok(now), Some(expected)) => Err(format!(
                        "the invitation the rollback sent is not the one read back: {}",
                        changes_text(&json_diff(&expected.state, &now.state))
                    )),
                    (Ok(_), None) => Err(
                        "the connector answered that the access waits for an invitation to be accepted, but names no state for it"
                            .to_owned(),
                    ),
                    (Err(e), _) => Err(format!("could not read the target back: {e}")),
                };
                (read, outcome.request_ids)
            }
            Ok(outcome) => {
                let read = match connector.snapshot(&action.target).await {
                    Ok(now) if &now == before => Ok((now, None)),
                    // A lossy undo cannot restore every detail: accept a change away from the
                    // after-state and record exactly what could not be restored.
                    Ok(now) if lossy && &now != live => {
                        let lost = changes_text(&json_diff(&before.state, &now.state));
                        Ok((now, Some(format!("lossy rollback: access restored, these details could not be: {lost}"))))
                    }
                    Ok(now) => Err(format!(
                        "before-state not observed after restore: {}",
                        changes_text(&json_diff(&before.state, &now.state))
                    )),
                    Err(e) => Err(format!("could not read the target back: {e}")),
                };
                (read, outcome.request_ids)
            }
            Err(e) => (Err(e.to_string()), Vec::new()),
        };
        match restored {
            Ok((after, note)) => {
                let action = self.rolled_back(detail, after, request_ids, note).await?;
                Ok(Restored::RolledBack(action))
            }
            Err(error) => {
                let error = format!("rollback failed, needs attention: {error}");
                let action = self.rollback_failed(detail, error.clone(), request_ids).await?;
                Ok(Restored::Failed(action, error))
            }
        }
    }

    async fn rolled_back(
        &self,
        detail: &ActionDetail,
        after: Snapshot,
        request_ids: Vec<String>,
        note: Option<String>,
    ) -> Result<Action, EngineError> {
        let after_hash = after.hash()?;
        let before_state = detail.after.clone();
        let after_state = after.clone();
        // The execution's after-state stays as it was; the restore is recorded beside it.
        let update = DetailUpdate { restored: Some(after), last_error: Some(None), ..DetailUpdate::default() };
        let action = self
            .step(detail, Event::RollbackSucceeded, &Actor::system(), note, update, |r| {
                r.after_hash = Some(after_hash);
                r.request_ids = request_ids;
                // A rollback changes the executed after-state back: that is its before, and the
                // state read back now is its after.
                r.before_state = before_state;
                r.after_state = Some(after_state);
            })
            .await?;
        // What was to follow the change no longer may (it would delete the credential the
        // rollback just reactivated). The rollback stands whether or not this store call
        // succeeds: the follow-up's own execution checks again, and cancels it then.
        let _ = self.cancel_follow_up_of(action.id).await;
        Ok(action)
    }

    /// Records a rollback that could only offer the access back as an invitation: the action
    /// is `rolled_back`, its detail says `pending_acceptance`, and `note` (the audit's
    /// comment) says who must accept what.
    async fn rolled_back_pending(
        &self,
        detail: &ActionDetail,
        after: Snapshot,
        request_ids: Vec<String>,
        note: String,
    ) -> Result<Action, EngineError> {
        let after_hash = after.hash()?;
        let before_state = detail.after.clone();
        let after_state = after.clone();
        let update = DetailUpdate {
            restored: Some(after),
            pending_acceptance: Some(true),
            last_error: Some(None),
            ..DetailUpdate::default()
        };
        self.step(detail, Event::RollbackSucceeded, &Actor::system(), Some(note), update, |r| {
            r.after_hash = Some(after_hash);
            r.request_ids = request_ids;
            r.before_state = before_state;
            r.after_state = Some(after_state);
        })
        .await
    }

    async fn rollback_failed(
        &self,
        detail: &ActionDetail,
        error: String,
        request_ids: Vec<String>,
    ) -> Result<Action, EngineError> {
        let update = DetailUpdate { last_error: Some(Some(error.clone())), ..DetailUpdate::default() };
        self.step(detail, Event::RollbackFailed, &Actor::system(), Some(error), update, |r| r.request_ids = request_ids)
            .await
    }

    fn failpoint(&self, name: &'static str) {
        if let Some(hook) = &self.failpoints {
            hook(name);
        }
    }

    fn connector(&self, name: &str) -> Result<Arc<dyn Connector>, EngineError> {
        self.connectors.get(name).cloned().ok_or_else(|| EngineError::UnknownConnector {
            name: name.to_owned(),
            configured: self.connectors.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Checks the capability (before any provider request), then reads health, permissions
    /// and the target, plans, and runs the gates.
    async fn prepare(
        &self,
        connector: &Arc<dyn Connector>,
        action: &Action,
        stage: Stage,
        dry_run: bool,
    ) -> Result<Prepared, EngineError> {
        self.prepare_from(connector, action, stage, dry_run, None).await
    }

    /// [`Engine::prepare`], planning from `before` instead of a fresh read when given.
    async fn prepare_from(
        &self,
        connector: &Arc<dyn Connector>,
        action: &Action,
        stage: Stage,
        dry_run: bool,
        before: Option<Snapshot>,
    ) -> Result<Prepared, EngineError> {
        // Before the connector sees anything: an identifier must not be able to reshape the
        // provider request it ends up in.
        action.target.validate().map_err(|e| refused("validation", e.to_string()))?;
        let caps = connector.capabilities();
        let kind = action.kind.name();
        let Some(capability) = find_capability(&caps, kind, &action.target) else {
            return Err(EngineError::Unsupported {
                connector: action.connector.clone(),
                kind,
                grant_type: action.target.grant_type.clone(),
                supported: caps.iter().map(|c| format!("{}/{}", c.kind, c.grant_type)).collect::<Vec<_>>().join(", "),
            });
        };
        let health = connector.health().await.map_err(conn(connector, "report its health"))?;
        let permissions = connector.check_permissions().await.map_err(conn(connector, "check its permissions"))?;
        let before = match before {
            Some(before) => before,
            None => connector.snapshot(&action.target).await.map_err(conn(connector, "read the target"))?,
        };
        let planned = connector.plan(action, &before).await.map_err(conn(connector, "plan the change"))?;
        let reach = connector.reach(action, &before).await.map_err(conn(connector, "count what the change reaches"))?;
        let plan =
            Plan::new(&action.connector, &action.kind, &action.target, before, planned, capability.reversibility)?
                .with_reach(reach)?;
        let state = self.gate_state().await?;
        let ctx = GateContext {
            stage,
            action,
            capability: &capability,
            plan: &plan,
            health: &health,
            permissions: &permissions,
            now: self.clock.now(),
            dry_run,
            state: &state,
        };
        let decision = self.policy.evaluate(&ctx);
        Ok(Prepared { connector: Arc::clone(connector), plan, decision, safety: state })
    }

    #[allow(clippy::too_many_arguments)]
    async fn begin_and_run(
        &self,
        detail: &ActionDetail,
        prepared: Prepared,
        event: Event,
        actor: &Actor,
        comment: Option<String>,
        slots: &[crate::SlotRequest],
        enforce: bool,
    ) -> Result<ExecuteOutcome, EngineError> {
        let Prepared { connector, plan, decision: _, safety } = prepared;
        let action = &detail.action;
        let to = transition(action.state, event, actor.role)?;
        // The switches and settings as read after the preparation's last provider call (a
        // change made since the engine was built, by another request or process, stops this
        // action before it is claimed); `run_write` reads them once more after the claim.
        if let Some(why) = self.policy.write_refusal(action, &safety) {
            return Err(refused("enablement", why));
        }
        let now = self.clock.now();
        let mut record = self.record(action, Some(action.state), to, event.as_str(), actor, now);
        record.comment = comment;
        record.plan_hash = Some(plan.plan_hash.clone());
        record.before_hash = Some(plan.before.hash()?);
        record.before_state = Some(plan.before.clone());
        if event == Event::ForceExecute {
            record.decided_by = Some(actor.name.clone());
        }
        let mut change = StateChange::new(
            record,
            DetailUpdate { before: Some(plan.before.clone()), last_error: Some(None), ..DetailUpdate::default() },
        );
        change.lease.clone_from(&self.lease);
        let action = match self.store.begin_execution(&change, slots, enforce).await? {
            BeginOutcome::Started(action) => action,
            BeginOutcome::LimitReached(limit) => {
                let comment = format!(
                    "blast-radius limit `{}` reached: {} of {} in {}s; an admin may force-execute or release it",
                    limit.slot.key, limit.used, limit.slot.limit, limit.slot.window_secs
                );
                let action = self
                    .step(detail, Event::Hold, &Actor::system(), Some(comment), DetailUpdate::default(), |r| {
                        r.limit = Some(limit.clone());
                    })
                    .await?;
                if limit.slot.key == GLOBAL_LIMIT_KEY {
                    self.trip_breaker(action.id).await?;
                }
                return Ok(ExecuteOutcome::Held { action, limit });
            }
        };
        let detail = self.holding(ActionDetail { action, before: Some(plan.before.clone()), ..detail.clone() }).await?;
        self.failpoint(failpoints::AFTER_BEGIN_EXECUTION);
        self.run_write(&detail, &connector, &plan).await
    }

    /// Writes the planned change, reads it back, and records `completed` or `failed`.
    async fn run_write(
        &self,
        detail: &ActionDetail,
        connector: &Arc<dyn Connector>,
        plan: &Plan,
    ) -> Result<ExecuteOutcome, EngineError> {
        let action = &detail.action;
        // The last look before the provider write: a switch turned off, remediation disabled
        // or the control disabled since the gates ran stops the write here.
        let state = self.gate_state().await?;
        if let Some(why) = self.policy.write_refusal(action, &state) {
            let error = format!("stopped before any provider write: {why}; nothing was written");
            return self.fail(detail, error, None, Vec::new()).await;
        }
        let planned =
            crate::PlannedChange { expected_after: plan.expected_after.clone(), description: plan.description.clone() };
        let outcome = match self.leased(detail, connector.execute(action, &plan.before)).await? {
            Ok(outcome) => outcome,
            Err(e) => {
                if let Some(wait) = requeue_delay(&e, detail.attempts + 1) {
                    return self.requeue(detail, connector, plan, &e, wait).await;
                }
                return self.fail(detail, format!("provider refused the change: {e}"), None, Vec::new()).await;
            }
        };
        self.failpoint(failpoints::AFTER_PROVIDER_WRITE);
        let verification = match connector.verify(action, &planned).await {
            Ok(v) => v,
            Err(e) => {
                return self
                    .fail(
                        detail,
                        format!("not verified: could not read the target back: {e}"),
                        None,
                        outcome.request_ids,
                    )
                    .await;
            }
        };
        if !verification.matches {
            let error = format!(
                "not verified: the provider does not show the expected state: {}",
                changes_text(&json_diff(&plan.expected_after.state, &verification.observed.state))
            );
            let observed = verification.observed;
            let failed = self.fail(detail, error.clone(), Some(observed.clone()), outcome.request_ids).await?;
            let auto = plan.reversibility == Reversibility::Reversible
                && observed != plan.before
                && self.policy.auto_rollback_on_failed_verification(action);
            let ExecuteOutcome::Failed { action: failed_action, .. } = &failed else { return Ok(failed) };
            if !auto {
                return Ok(failed);
            }
            let failed_detail =
                ActionDetail { action: failed_action.clone(), after: Some(observed.clone()), ..detail.clone() };
            let comment = Some("automatic rollback: the change was not verified".to_owned());
            let rolling = self
                .step(&failed_detail, Event::Rollback, &Actor::system(), comment, DetailUpdate::default(), |_| {})
                .await?;
            let rolling_detail = self.holding(ActionDetail { action: rolling, ..failed_detail }).await?;
            return Ok(match self.restore(&rolling_detail, connector, &plan.before, &observed).await? {
                Restored::RolledBack(action) => {
                    ExecuteOutcome::Failed { action, error: format!("{error}; rolled back automatically") }
                }
                Restored::PendingAcceptance(action) => ExecuteOutcome::Failed {
                    action,
                    error: format!(
                        "{error}; rolled back automatically as an invitation: access waits for {} to accept it",
                        plan.target.identity
                    ),
                },
                Restored::Failed(action, rb) => {
                    ExecuteOutcome::Failed { action, error: format!("{error}; automatic rollback failed: {rb}") }
                }
            });
        }
        self.failpoint(failpoints::BEFORE_COMPLETED);
        let after = verification.observed;
        let action = self.complete(detail, after.clone(), outcome.request_ids, None).await?;
        Ok(ExecuteOutcome::Completed { action, after })
    }

    /// After the provider throttled or failed transiently on `execute`: reads the target back
    /// and, when it still shows the before-state (nothing was written), moves the action back
    /// to `approved` with a not-before time `wait` from now, releasing its limit slots in the
    /// same store change. Fails the action instead when the target changed, cannot be read,
    /// or the attempts reached [`REQUEUE_ATTEMPTS`].
    async fn requeue(
        &self,
        detail: &ActionDetail,
        connector: &Arc<dyn Connector>,
        plan: &Plan,
        error: &crate::ConnectorError,
        wait: std::time::Duration,
    ) -> Result<ExecuteOutcome, EngineError> {
        let attempt = detail.attempts + 1;
        let what = match error.kind {
            ConnectorErrorKind::Throttled { .. } => "provider throttled",
            _ => "provider failed transiently",
        };
        if attempt >= REQUEUE_ATTEMPTS {
            let error = format!(
                "provider refused the change: {error}; gave up after {attempt} of {REQUEUE_ATTEMPTS} attempts \
                 ({what} each time, nothing was written)"
            );
            return self.fail(detail, error, None, Vec::new()).await;
        }
        let live = match connector.snapshot(&detail.action.target).await {
            Ok(live) => live,
            Err(read) => {
                let error = format!(
                    "provider refused the change: {error}; not requeued: cannot read the target back to confirm \
                     nothing was written ({read})"
                );
                return self.fail(detail, error, None, Vec::new()).await;
            }
        };
        if live != plan.before {
            let error = format!(
                "provider refused the change: {error}; not requeued: the target no longer shows the before-state, \
                 so something may have been written: {}",
                changes_text(&json_diff(&plan.before.state, &live.state))
            );
            return self.fail(detail, error, Some(live), Vec::new()).await;
        }
        let not_before = self.clock.now() + wait;
        let comment = format!(
            "requeued: {what}, retry after {}s (attempt {attempt} of {REQUEUE_ATTEMPTS}); nothing was written, \
             limit slots released",
            wait.as_secs()
        );
        let update = DetailUpdate {
            not_before: Some(Some(not_before)),
            attempts: Some(attempt),
            last_error: Some(Some(format!("{what}: {error}"))),
            ..DetailUpdate::default()
        };
        let action = self.step(detail, Event::Requeue, &Actor::system(), Some(comment), update, |_| {}).await?;
        Ok(ExecuteOutcome::Requeued { action, not_before })
    }

    async fn complete(
        &self,
        detail: &ActionDetail,
        after: Snapshot,
        request_ids: Vec<String>,
        note: Option<String>,
    ) -> Result<Action, EngineError> {
        let after_hash = after.hash()?;
        // An irreversible change has no rollback window: nothing may advertise one.
        let until = (!is_irreversible(detail)).then(|| self.clock.now() + self.policy.rollback_window(&detail.action));
        // Scheduled before the completion is recorded: a crash in between leaves the action
        // `executing`, and its recovery finds the follow-up by its derived id instead of
        // losing it.
        let scheduled = self.schedule_follow_up(detail, &after, until.unwrap_or_else(|| self.clock.now())).await?;
        let note = match (note, scheduled) {
            (Some(n), Some(s)) => Some(format!("{n}; {s}")),
            (n, s) => n.or(s),
        };
        let before_state = recorded_before(detail);
        let after_state = after.clone();
        let update = DetailUpdate { after: Some(after), rollback_expires_at: until, ..DetailUpdate::default() };
        self.step(detail, Event::ExecutionSucceeded, &Actor::system(), note, update, |r| {
            r.after_hash = Some(after_hash);
            r.request_ids = request_ids;
            r.rollback_expires_at = until;
            r.before_state = before_state;
            r.after_state = Some(after_state);
        })
        .await
    }

    /// Creates the action the connector asks to follow `detail`'s ([`Connector::follow_up`]),
    /// claimable from `not_before` (the end of the rollback window); a sentence for the
    /// completion's audit record saying what was scheduled, or why nothing could be.
    ///
    /// The follow-up is planned and gated like any suggestion. Its state: `approved` when its
    /// mode is auto, or manual and a person approved the action it follows (whose plan named
    /// it); `pending_approval` when a gate asks for approval or nobody approved that action;
    /// `suggested` in advisory mode. A second call for the same action finds the first one's.
    async fn schedule_follow_up(
        &self,
        detail: &ActionDetail,
        after: &Snapshot,
        not_before: OffsetDateTime,
    ) -> Result<Option<String>, EngineError> {
        let parent = &detail.action;
        let connector = self.connector(&parent.connector)?;
        let Some(follow) = connector.follow_up(parent, after) else { return Ok(None) };
        let id = parent.id.follow_up();
        match self.store.get(id).await {
            Ok(existing) => {
                return Ok(Some(format!("follow-up {id} already scheduled ({})", existing.action.state)));
            }
            Err(crate::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let now = self.clock.now();
        let action = Action {
            id,
            kind: follow.kind,
            target: follow.target,
            connector: parent.connector.clone(),
            control_id: parent.control_id.clone(),
            finding_id: parent.finding_id.clone(),
            canonical: None,
            requested_by: Actor::system().name,
            reason: follow.reason,
            mode: Mode::Manual,
            idempotency_key: format!("remediation-{id}"),
            state: State::PendingApproval,
            created_at: now,
            updated_at: now,
            handle: None,
            campaign: parent.campaign.clone(),
        };
        let what = format!("{} {}", action.kind, action.target);
        let prepared = match self.prepare(&connector, &action, Stage::Suggest, false).await {
            Ok(prepared) => prepared,
            Err(e) => {
                let e = crate::error_chain(&e);
                return Ok(Some(format!("the follow-up ({what}) could not be planned and is not scheduled: {e}")));
            }
        };
        if let Some(gate) = prepared.decision.refusal() {
            return Ok(Some(format!(
                "the follow-up ({what}) is refused by gate {} and not scheduled: {}",
                gate.gate, gate.reason
            )));
        }
        let mode = prepared.decision.effective_mode();
        let asks_approval = prepared.decision.approvals_required().next().is_some();
        let approved_by_person = !self.current_approvers(parent.id).await?.is_empty();
        let state = match mode {
            Mode::Advisory => State::Suggested,
            _ if asks_approval => State::PendingApproval,
            Mode::Auto => State::Approved,
            Mode::Manual if approved_by_person => State::Approved,
            Mode::Manual => State::PendingApproval,
        };
        let canonical = prepared.plan.before.canonical.clone();
        let action = Action { mode, state, canonical, ..action };
        let mut comment = format!(
            "follows {}: {}; not before {not_before} (the end of its rollback window)",
            parent.id, action.reason
        );
        if state == State::Approved {
            comment.push_str(&format!("; approved with the plan of {}", parent.id));
        }
        for gate in prepared.decision.approvals_required() {
            comment.push_str(&format!("; gate {} requires approval: {}", gate.gate, gate.reason));
        }
        let mut record = self.record(&action, None, state, "suggest", &Actor::system(), now);
        record.comment = Some(comment);
        record.plan_hash = Some(prepared.plan.plan_hash.clone());
        record.before_hash = Some(prepared.plan.before.hash()?);
        if state == State::Approved {
            record.decided_by = Some(Actor::system().name);
        }
        let created = ActionDetail {
            action: action.clone(),
            plan: Some(prepared.plan),
            before: None,
            after: None,
            restored: None,
            pending_acceptance: false,
            rollback_expires_at: None,
            last_error: None,
            approval_expires_at: (state == State::PendingApproval)
                .then(|| not_before + self.policy.approval_ttl(&action)),
            not_before: Some(not_before),
            attempts: 0,
            follows: Some(parent.id),
            held_lease: None,
        };
        self.store.create_action(&created, &record).await?;
        Ok(Some(format!("follow-up {id} scheduled ({state}): {what}, not before {not_before}")))
    }

    /// A follow-up ([`ActionDetail::follows`]) runs only once its time has come and while the
    /// action it follows still stands: before its time it is refused; once that action is no
    /// longer `completed` (rolled back, say) it is cancelled, and the refusal says why.
    async fn check_follow_up(&self, detail: &ActionDetail) -> Result<(), EngineError> {
        let Some(parent) = detail.follows else { return Ok(()) };
        let parent = self.get(parent).await?;
        if matches!(parent.action.state, State::RollbackRequested | State::RollingBack) {
            // The rollback may be refused or expire, and the action stand again: wait.
            return Err(refused(
                "follow-up",
                format!(
                    "the action it follows ({}) has a rollback {}; this waits until that is decided",
                    parent.action.id,
                    if parent.action.state == State::RollingBack { "under way" } else { "requested" }
                ),
            ));
        }
        if parent.action.state != State::Completed {
            let why = format!(
                "the action it follows ({}) is {}, not completed; cancelled",
                parent.action.id, parent.action.state
            );
            self.cancel_follow_up(detail, &why).await?;
            return Err(refused("follow-up", why));
        }
        if let Some(at) = detail.not_before
            && at > self.clock.now()
        {
            return Err(refused(
                "schedule",
                format!(
                    "this action follows {} and runs once its rollback window has closed, not before {at}",
                    parent.action.id
                ),
            ));
        }
        Ok(())
    }

    async fn cancel_follow_up(&self, detail: &ActionDetail, why: &str) -> Result<(), EngineError> {
        if !matches!(detail.action.state, State::Suggested | State::PendingApproval | State::Approved | State::Held) {
            return Ok(());
        }
        let result = self
            .step(detail, Event::Cancel, &Actor::system(), Some(why.to_owned()), DetailUpdate::default(), |_| {})
            .await;
        match result {
            // Someone moved it meanwhile: whatever they did decides.
            Ok(_) | Err(EngineError::Store(crate::StoreError::StateConflict { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Cancels the follow-up of `id`, if it has one that has not started: the action it
    /// followed was rolled back.
    async fn cancel_follow_up_of(&self, id: ActionId) -> Result<(), EngineError> {
        let detail = match self.store.get(id.follow_up()).await {
            Ok(d) if d.follows == Some(id) => d,
            Ok(_) | Err(crate::StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.cancel_follow_up(&detail, &format!("the action it follows ({id}) was rolled back")).await
    }

    async fn fail(
        &self,
        detail: &ActionDetail,
        error: String,
        observed: Option<Snapshot>,
        request_ids: Vec<String>,
    ) -> Result<ExecuteOutcome, EngineError> {
        let after_hash = observed.as_ref().map(Snapshot::hash).transpose()?;
        let before_state = recorded_before(detail);
        let after_state = observed.clone();
        let update = DetailUpdate { after: observed, last_error: Some(Some(error.clone())), ..DetailUpdate::default() };
        let action = self
            .step(detail, Event::ExecutionFailed, &Actor::system(), Some(error.clone()), update, |r| {
                r.after_hash = after_hash;
                r.request_ids = request_ids;
                r.before_state = before_state;
                r.after_state = after_state;
            })
            .await?;
        Ok(ExecuteOutcome::Failed { action, error })
    }

    /// Names of the approvers of the current plan (approvals before a plan change are void).
    async fn current_approvers(&self, id: ActionId) -> Result<Vec<String>, EngineError> {
        let mut approvers = Vec::new();
        for t in self.store.transitions(id).await? {
            if t.event == Event::PlanChanged.as_str() {
                approvers.clear();
            } else if t.event == "approve"
                // An approved rollback is not an approval of the plan.
                && t.to != State::RollingBack
                && let Some(who) = t.decided_by
            {
                approvers.push(who);
            }
        }
        Ok(approvers)
    }

    fn record(
        &self,
        action: &Action,
        from: Option<State>,
        to: State,
        event: &str,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> TransitionRecord {
        TransitionRecord {
            action_id: action.id,
            from,
            to,
            event: event.to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            initiated_by: action.requested_by.clone(),
            decided_by: None,
            at,
            comment: None,
            connector: action.connector.clone(),
            control_id: action.control_id.clone(),
            finding_id: action.finding_id.clone(),
            before_hash: None,
            after_hash: None,
            plan_hash: None,
            request_ids: Vec::new(),
            rollback_expires_at: None,
            before_state: None,
            after_state: None,
            limit: None,
        }
    }

    /// Applies one lifecycle event through the store.
    async fn step(
        &self,
        detail: &ActionDetail,
        event: Event,
        actor: &Actor,
        comment: Option<String>,
        update: DetailUpdate,
        fill: impl FnOnce(&mut TransitionRecord),
    ) -> Result<Action, EngineError> {
        let action = &detail.action;
        let to = transition(action.state, event, actor.role)?;
        let mut record = self.record(action, Some(action.state), to, event.as_str(), actor, self.clock.now());
        record.comment = comment;
        fill(&mut record);
        let mut update = update;
        if to == State::PendingApproval
            && action.state != State::PendingApproval
            && update.approval_expires_at.is_none()
        {
            update.approval_expires_at = Some(record.at + self.policy.approval_ttl(action));
        }
        let mut change = StateChange::new(record, update);
        change.fence = detail.held_lease.as_ref().map(|l| l.epoch);
        if matches!(to, State::Executing | State::RollingBack) && to != action.state {
            change.lease.clone_from(&self.lease);
        }
        Ok(self.store.apply(&change).await?)
    }

    /// `detail` with the lease this engine was just granted on it (after a move to `executing`
    /// or `rolling_back`); unchanged when the engine takes no leases.
    async fn holding(&self, mut detail: ActionDetail) -> Result<ActionDetail, EngineError> {
        if let Some(request) = &self.lease {
            let lease = self.store.lease(detail.action.id).await?;
            // Granted in the same transaction as the move, so it is ours; anything else means
            // another process took it over meanwhile.
            match lease {
                Some(l) if l.holder == request.holder => detail.held_lease = Some(l),
                _ => {
                    return Err(crate::StoreError::LeaseLost { what: format!("action {}", detail.action.id) }.into());
                }
            }
        }
        Ok(detail)
    }

    /// Runs the provider call `call` under the lease held on `detail`: renews it first (no
    /// write starts on a lost lease), then every ttl/3 while the call is in flight. When a
    /// renewal fails the call (already sent) is awaited, and `LeaseLost` returned, so the
    /// engine writes and records nothing further; the action is left to whoever takes it over.
    async fn leased<T>(
        &self,
        detail: &ActionDetail,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, EngineError> {
        let (Some(request), Some(held)) = (&self.lease, &detail.held_lease) else {
            return Ok(call.await);
        };
        let id = detail.action.id;
        let mut held = self.store.renew_lease(id, held, request.ttl).await?;
        let period = (request.ttl / 3).max(std::time::Duration::from_millis(10));
        tokio::pin!(call);
        let mut lost = None;
        loop {
            tokio::select! {
                out = &mut call => return lost.map_or(Ok(out), |e: crate::StoreError| Err(e.into())),
                () = tokio::time::sleep(period), if lost.is_none() => {
                    match self.store.renew_lease(id, &held, request.ttl).await {
                        Ok(renewed) => held = renewed,
                        Err(e) => lost = Some(e),
                    }
                }
            }
        }
    }

    /// This tenant's safety switches and facts, with the installation's kill switch (kept in
    /// the default tenant's state) in [`SafetyState::installation_kill_switch`].
    pub async fn safety_state(&self) -> Result<SafetyState, EngineError> {
        self.gate_state().await
    }

    /// The state the gates judge by: this tenant's, and the installation's kill switch.
    async fn gate_state(&self) -> Result<SafetyState, EngineError> {
        let mut state = self.store.safety_state().await?;
        if !self.store.tenant_id().is_default() {
            let installation = self.store.for_tenant(&crate::TenantId::default()).safety_state().await?;
            state.installation_kill_switch = installation.installation_kill_switch;
        }
        Ok(state)
    }

    /// Turns the installation's kill switch on or off (an admin of the default tenant, with a
    /// reason; call it on the default tenant's engine). While on, no execution starts in any
    /// tenant. Open actions are not cancelled here: the caller cancels each tenant's
    /// ([`Engine::cancel_open_actions`]).
    pub async fn set_installation_kill_switch(
        &self,
        on: bool,
        actor: &Actor,
        reason: String,
    ) -> Result<(), EngineError> {
        if !self.store.tenant_id().is_default() {
            return Err(refused("authorization", "the installation's kill switch is kept by the default tenant"));
        }
        let event = if on { "installation_kill_switch_on" } else { "installation_kill_switch_off" };
        self.change_safety(actor, event, reason, |s| s.installation_kill_switch = on).await
    }

    /// Turns the kill switch on or off (admin, with a reason). On: no execution starts, and
    /// every `suggested`, `pending_approval`, `approved` and `held` action is cancelled, each
    /// audited with the admin's name. Off: nothing resumes by itself.
    pub async fn set_kill_switch(&self, on: bool, actor: &Actor, reason: String) -> Result<Vec<Action>, EngineError> {
        let event = if on { "kill_switch_on" } else { "kill_switch_off" };
        self.change_safety(actor, event, reason.clone(), |s| s.kill_switch = on).await?;
        if on { self.cancel_open_actions(actor, &reason).await } else { Ok(Vec::new()) }
    }

    /// Cancels every `suggested`, `pending_approval`, `approved` and `held` action, each
    /// audited with `actor` and `reason` (what a kill switch turned on does).
    pub async fn cancel_open_actions(&self, actor: &Actor, reason: &str) -> Result<Vec<Action>, EngineError> {
        let mut cancelled = Vec::new();
        {
            for state in [State::Suggested, State::PendingApproval, State::Approved, State::Held] {
                let filter = ActionFilter { state: Some(state), ..ActionFilter::default() };
                for action in self.list(&filter).await? {
                    let detail = self.get(action.id).await?;
                    let comment = Some(format!("kill switch: {reason}"));
                    match self.step(&detail, Event::KillSwitch, actor, comment, DetailUpdate::default(), |_| {}).await {
                        Ok(a) => cancelled.push(a),
                        Err(EngineError::Store(crate::StoreError::StateConflict { .. })) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(cancelled)
    }

    /// Resets a tripped circuit breaker (admin, with a reason). Held actions stay held until
    /// released or forced.
    pub async fn reset_breaker(&self, actor: &Actor, reason: String) -> Result<(), EngineError> {
        self.change_safety(actor, "breaker_reset", reason, |s| s.breaker_tripped = false).await
    }

    /// Records that break-glass (emergency) access was verified to work now (admin).
    pub async fn verify_emergency_access(&self, actor: &Actor, note: String) -> Result<(), EngineError> {
        let now = self.clock.now();
        let who = format!("{}: {note}", actor.name);
        self.change_safety(actor, "emergency_access_verified", note, |s| {
            s.emergency_access_verified_at = Some(now);
            s.emergency_access_note = Some(who);
        })
        .await
    }

    /// Replaces the policy settings kept in the store (admin, with a reason). The caller
    /// validates `settings` against the policy's schema; the engine only records them.
    pub async fn update_settings(
        &self,
        actor: &Actor,
        settings: serde_json::Value,
        reason: String,
    ) -> Result<(), EngineError> {
        self.change_safety(actor, "settings_changed", reason, |s| s.settings = Some(settings)).await
    }

    /// Replaces the policy settings as `system`, for a change the engine's rules make by
    /// themselves (a control demoted from `auto`), recorded as a settings record `event` with
    /// `reason`. Compare-and-swap: applies only while the stored settings still equal
    /// `expected`, and returns `false`, writing nothing, when they differ or another writer
    /// changed the safety state meanwhile, so replicas making the same change write it once.
    pub async fn system_settings_change(
        &self,
        expected: &Option<serde_json::Value>,
        settings: serde_json::Value,
        event: &str,
        reason: String,
    ) -> Result<bool, EngineError> {
        let previous = self.store.safety_state().await?;
        if &previous.settings != expected {
            return Ok(false);
        }
        let mut new = previous.clone();
        new.settings = Some(settings);
        let record = SettingsRecord {
            setting_event: event.to_owned(),
            actor: Actor::system().name,
            credential: None,
            at: self.clock.now(),
            comment: Some(reason),
            previous: serde_json::to_value(&previous).map_err(crate::hash::CanonicalError)?,
            value: serde_json::to_value(&new).map_err(crate::hash::CanonicalError)?,
            action_id: None,
        };
        match self.store.update_safety_state(&previous, &new, &record).await {
            Ok(()) => Ok(true),
            Err(crate::StoreError::SafetyConflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a refused attempt in the audit trail as a settings record (stores without
    /// audit notes skip it). `previous` and `value` say what the attempt was about.
    async fn note(
        &self,
        event: &str,
        actor: &Actor,
        error: &EngineError,
        previous: serde_json::Value,
        value: serde_json::Value,
    ) -> Result<(), EngineError> {
        let record = SettingsRecord {
            setting_event: event.to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            at: self.clock.now(),
            comment: Some(error.to_string()),
            previous,
            value,
            action_id: None,
        };
        match self.store.append_note(&record).await {
            Ok(()) | Err(crate::StoreError::Unsupported { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Records an attempt that an adapter refused before it reached the engine (the HTTP API's
    /// role check), as the engine records the refusals it makes itself: `event` is
    /// `suggestion_refused`, `execution_refused`, `rollback_refused`, ...; `about` says what
    /// was attempted (the action's id, or the request).
    pub async fn record_refusal(
        &self,
        event: &str,
        actor: &Actor,
        about: serde_json::Value,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.note(event, actor, &refused("roles", reason), about.clone(), about).await
    }

    /// Passes `result` through; when it is a refusal of an attempt on action `id`, records it
    /// (`event`) first. A person's every attempt is recorded; the system's (the worker's) only
    /// when it differs from the last refusal this engine recorded for that action (another
    /// reason, another state), so a worker retrying a refused action leaves one record.
    async fn note_if_refused<T>(
        &self,
        result: Result<T, EngineError>,
        event: &str,
        id: ActionId,
        actor: &Actor,
    ) -> Result<T, EngineError> {
        let Err(e) = &result else {
            self.refusals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&(id, actor.name.clone()));
            return result;
        };
        if !audited_refusal(e) {
            return result;
        }
        let state = match self.store.get(id).await {
            Ok(d) => Some(d.action.state),
            Err(_) => None,
        };
        let key = (id, actor.name.clone());
        let seen = format!("{event}|{state:?}|{e}");
        if actor.role == Role::System {
            let mut refusals = self.refusals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if refusals.get(&key) == Some(&seen) {
                return result;
            }
            refusals.insert(key, seen);
        }
        let about = serde_json::json!({"action_id": id, "state": state});
        self.note(event, actor, e, about.clone(), about).await?;
        result
    }

    async fn trip_breaker(&self, action_id: ActionId) -> Result<(), EngineError> {
        let reason = format!("global limit reached by action {action_id}");
        let system = Actor::system();
        match self
            .change_safety_as(&system, "breaker_tripped", reason, Some(action_id), |s| s.breaker_tripped = true)
            .await
        {
            Ok(()) | Err(EngineError::Store(crate::StoreError::SafetyConflict)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn change_safety(
        &self,
        actor: &Actor,
        event: &str,
        reason: String,
        change: impl FnOnce(&mut SafetyState),
    ) -> Result<(), EngineError> {
        if actor.role < Role::Admin || actor.role == Role::System {
            return Err(refused(
                "roles",
                format!("{} is a {}; only an admin may {}", actor.name, actor.role, event.replace('_', " ")),
            ));
        }
        if reason.trim().is_empty() {
            return Err(refused("audit", "a reason is required; it is kept in the audit"));
        }
        self.change_safety_as(actor, event, reason, None, change).await
    }

    async fn change_safety_as(
        &self,
        actor: &Actor,
        event: &str,
        reason: String,
        action_id: Option<ActionId>,
        change: impl FnOnce(&mut SafetyState),
    ) -> Result<(), EngineError> {
        let previous = self.store.safety_state().await?;
        let mut new = previous.clone();
        change(&mut new);
        let record = SettingsRecord {
            setting_event: event.to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            at: self.clock.now(),
            comment: Some(reason),
            previous: serde_json::to_value(&previous).map_err(crate::hash::CanonicalError)?,
            value: serde_json::to_value(&new).map_err(crate::hash::CanonicalError)?,
            action_id,
        };
        self.store.update_safety_state(&previous, &new, &record).await?;
        Ok(())
    }
}

/// The limit key whose window is the global circuit breaker.
pub const GLOBAL_LIMIT_KEY: &str = "global";

/// Page size the engine reads listings with.
const LIST_PAGE: usize = 500;

/// Most due actions one [`Engine::expire_stale`] sweep looks at; the next sweep takes the rest.
const DUE_BATCH: usize = 10_000;

/// The before-state recorded for `detail`'s execution, else its plan's.
/// How many executions of one action may end throttled or transiently failed before the engine
/// stops requeueing it and fails it: the fifth such attempt fails the action.
pub const REQUEUE_ATTEMPTS: u32 = 5;

/// The first wait after a transient failure (or a throttle without `retry_after`); it doubles
/// with each further attempt up to [`REQUEUE_BACKOFF_CAP`].
pub const REQUEUE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest wait between attempts the engine chooses itself.
pub const REQUEUE_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_secs(300);

/// How long to wait before `attempt` (1-based) is followed by another, when `error` is one the
/// engine requeues: the provider's `retry_after`, or exponential backoff (1 s, 2 s, 4 s ...,
/// capped). `None` for every other error.
fn requeue_delay(error: &crate::ConnectorError, attempt: u32) -> Option<std::time::Duration> {
    let backoff = || {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        REQUEUE_BACKOFF.saturating_mul(factor).min(REQUEUE_BACKOFF_CAP)
    };
    match error.kind {
        ConnectorErrorKind::Throttled { retry_after: Some(d) } => Some(d),
        ConnectorErrorKind::Throttled { retry_after: None } | ConnectorErrorKind::Transient => Some(backoff()),
        _ => None,
    }
}

fn recorded_before(detail: &ActionDetail) -> Option<Snapshot> {
    detail.before.clone().or_else(|| detail.plan.as_ref().map(|p| p.before.clone()))
}

/// Whether an error is a refusal of the attempt (a rule, a role, the lifecycle, an unknown or
/// unsupported target) that the audit records. A provider or store that fails decided
/// nothing, and changes nothing, so it is reported to the caller only.
fn audited_refusal(e: &EngineError) -> bool {
    match e {
        EngineError::Refused { .. }
        | EngineError::Transition(_)
        | EngineError::Unsupported { .. }
        | EngineError::UnknownConnector { .. }
        | EngineError::NotFound(_) => true,
        EngineError::Connector { source, .. } => {
            matches!(source.kind, crate::ConnectorErrorKind::NotFound | crate::ConnectorErrorKind::Unsupported)
        }
        _ => false,
    }
}

/// True when the action's plan says its change cannot be undone.
fn is_irreversible(detail: &ActionDetail) -> bool {
    detail.plan.as_ref().is_some_and(|p| p.reversibility == Reversibility::Irreversible)
}

/// The audit's words for a rollback that restored access only as an invitation.
fn pending_note(user: &str, before: &Snapshot, now: &Snapshot) -> String {
    format!(
        "rolled back as an invitation: access waits for {user} to accept it (not yet restored: {})",
        changes_text(&json_diff(&before.state, &now.state))
    )
}

/// Refuses a rollback of an irreversible change before anything is read or recorded, so a
/// verified change is never recorded as a failed rollback.
fn refuse_irreversible(detail: &ActionDetail) -> Result<(), EngineError> {
    if is_irreversible(detail) {
        return Err(refused(
            "reversibility",
            format!(
                "{} cannot be undone (the connector declares it irreversible); the action stays {}",
                detail.action.kind, detail.action.state
            ),
        ));
    }
    Ok(())
}

fn refused(rule: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Refused { rule: rule.to_owned(), reason: reason.into() }
}

fn not_found(e: crate::StoreError) -> EngineError {
    match e {
        crate::StoreError::NotFound(id) => EngineError::NotFound(id),
        other => EngineError::Store(other),
    }
}

fn conn(connector: &Arc<dyn Connector>, operation: &'static str) -> impl FnOnce(crate::ConnectorError) -> EngineError {
    let name = connector.id().to_owned();
    move |source| EngineError::Connector { connector: name, operation, source }
}

fn changes_text(changes: &[Change]) -> String {
    changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn plan_changes(old: Option<&Plan>, new: &Plan) -> Vec<Change> {
    let Some(old) = old else {
        return vec![Change { path: "/plan".to_owned(), left: None, right: Some(serde_json::json!(new.plan_hash)) }];
    };
    let mut changes: Vec<Change> = json_diff(&old.before.state, &new.before.state)
        .into_iter()
        .map(|c| Change { path: format!("/before{}", c.path), ..c })
        .collect();
    changes.extend(
        json_diff(&old.expected_after.state, &new.expected_after.state)
            .into_iter()
            .map(|c| Change { path: format!("/expected_after{}", c.path), ..c }),
    );
    if old.before.protected != new.before.protected {
        changes.push(Change {
            path: "/before/protected".to_owned(),
            left: Some(old.before.protected.into()),
            right: Some(new.before.protected.into()),
        });
    }
    if old.before.canonical != new.before.canonical {
        let id = |c: &Option<crate::CanonicalTarget>| c.as_ref().and_then(|c| serde_json::to_value(c).ok());
        changes.push(Change {
            path: "/before/canonical".to_owned(),
            left: id(&old.before.canonical),
            right: id(&new.before.canonical),
        });
    }
    changes
}
