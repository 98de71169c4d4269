//! The JSON types of the API (request bodies, query strings, responses). Only this crate
//! knows the wire format; handlers convert to and from core types explicitly.

use std::collections::BTreeMap;

use remediation_audit::AuditRecord;
use remediation_core::{
    Action, ActionDetail, ActionKind, Guidance, LimitReached, Plan, PolicyDecision, Role, Snapshot, State, Target,
    TransitionRecord,
};
use remediation_limiter::{Limits, Usage};
use remediation_service::SuggestRequest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `POST /v1/actions`: ask for a remediation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAction {
    /// The connector to act through. Without it the one healthy configured connector whose
    /// capabilities cover `kind` and the target's `grant_type` is chosen; none or several is
    /// 400 `no_connector`, listing every connector and why it was passed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// What to do.
    pub kind: ActionKind,
    /// To what.
    pub target: Target,
    /// Why (kept in the audit); not blank.
    #[schemars(length(min = 1), pattern(r"\S"))]
    pub reason: String,
    /// The control being remediated.
    #[serde(default)]
    pub control_id: Option<String>,
    /// The finding being remediated.
    #[serde(default)]
    pub finding_id: Option<String>,
    /// Plan only: the action is stored as `dry_run` and never executes.
    #[serde(default)]
    pub dry_run: bool,
}

impl CreateAction {
    /// The request of the suggest use case.
    pub fn into_request(self) -> SuggestRequest {
        SuggestRequest {
            connector: self.connector,
            kind: self.kind,
            target: self.target,
            reason: self.reason,
            control_id: self.control_id,
            finding_id: self.finding_id,
            dry_run: self.dry_run,
        }
    }
}

/// A stored suggestion: the action, its plan, every gate's verdict, and guidance when the
/// action is advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuggestionView {
    /// The action.
    pub action: Action,
    /// Its plan.
    pub plan: Plan,
    /// Gate verdicts, mode and risk.
    pub decision: PolicyDecision,
    /// What to do by hand (advisory actions only).
    pub guidance: Option<Guidance>,
    /// For findings: `created` (a new action), `existing` (an open action for the same
    /// control and target), `fix_holds` (the completed fix is still in place, read again),
    /// `did_not_hold` (the grant is back), `redone` (a fresh action for a grant that came back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake: Option<String>,
}

/// `GET /v1/actions` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionQuery {
    /// Only actions in this state.
    pub state: Option<State>,
    /// Only actions on this connector.
    pub connector: Option<String>,
    /// Only actions on this identity (as the action's target spells it, or its canonical id).
    pub identity: Option<String>,
    /// Only actions for this control.
    pub control: Option<String>,
    /// Only actions created by this campaign.
    pub campaign: Option<String>,
    /// Page size (default 50, at most 500).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/actions/{id}`: the action (`.action`, as in every answer about one action), its
/// plan, snapshots and transitions, in one flat object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionView {
    /// Everything recorded about the action: `action`, `plan`, `before`, `after`,
    /// `restored`, `rollback_expires_at`, `last_error`.
    #[serde(flatten)]
    pub detail: ActionDetail,
    /// Its transitions, oldest first.
    pub transitions: Vec<TransitionRecord>,
}

/// The answer of approve, reject, cancel, release and promote: the action as it is now, at
/// `.action` like in every answer about one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionReply {
    /// The action.
    pub action: Action,
}

/// `POST /v1/findings` with 200: an action that already answers the finding, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FindingReply {
    /// The open action (`existing`), or the completed one that was read again (`fix_holds`,
    /// `did_not_hold`).
    pub action: Action,
    /// `existing`, `fix_holds` or `did_not_hold`.
    pub intake: String,
}

/// `POST /v1/findings` body: one finding in this project's format, or a scanner's document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FindingsBody {
    /// One finding in this project's format, answered as a suggestion or a [`FindingReply`].
    Finding(Box<remediation_core::Finding>),
    /// A scanner's document, answered 200 with a [`FindingsReply`]: Prowler `json-ocsf` (an
    /// array of OCSF Detection Findings), AWS Security Hub ASFF (`{"Findings": [...]}`, an array
    /// or one finding), OCSF 1.x Detection or Security Findings, or an array of this project's
    /// findings. README "Cloud posture → Findings from scanners" has the formats and the
    /// mapping of checks to actions.
    Document(serde_json::Value),
}

/// `POST /v1/findings` query (both optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// The document's format, checked against what it is: `finding`, `prowler-ocsf`, `asff`
    /// or `ocsf`.
    pub format: Option<String>,
    /// Act through this connector instead of the one the entries name (`aws` for scanner
    /// findings).
    pub connector: Option<String>,
}

/// `POST /v1/findings` with 200: an action that already answers one finding, or what became of
/// each entry of a scanner's document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FindingIntakeReply {
    /// What became of each entry of a document.
    Document(FindingsReply),
    /// One finding in this project's format.
    One(Box<FindingReply>),
}

/// What became of each entry of a scanner's document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingsReply {
    /// The format read: `finding`, `prowler-ocsf`, `asff` or `ocsf` (absent for an empty array).
    pub format: Option<String>,
    /// One per entry, in the document's order.
    pub entries: Vec<FindingEntryReply>,
}

/// One entry of a scanner's document after intake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingEntryReply {
    /// Its position in the document, from 0.
    pub index: usize,
    /// The scanner's finding id, when the entry has one.
    pub finding_id: Option<String>,
    /// The check or control id, when the entry has one.
    pub control_id: Option<String>,
    /// `created` or `redone` (a new action), `existing`, `fix_holds` or `did_not_hold` (as for
    /// one finding), `unsupported` (a failing check the mapping does not turn into an action),
    /// `nothing_to_do` (a pass, a manual check, a suppressed finding), `invalid` (a missing
    /// field, or a resource that cannot be named exactly) or `failed` (intake refused it).
    pub intake: String,
    /// Why, for `unsupported`, `nothing_to_do`, `invalid` and `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `failed`: the error code the same finding posted alone gets (`no_connector`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The new action, or the one that already answers the finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl FindingsReply {
    /// The reply for the entries of a document of `format`, taken in.
    pub fn new(
        format: Option<remediation_service::scanner::DocumentFormat>,
        entries: Vec<remediation_service::DocumentEntry>,
    ) -> Self {
        use remediation_service::scanner::EntryOutcome;
        use remediation_service::{EntryIntake, Intake};
        let entries = entries
            .into_iter()
            .map(|e| {
                let intake = e.result.label().to_owned();
                let (reason, error_code, action) = match e.result {
                    EntryIntake::Taken(taken) => match *taken {
                        Intake::Created(s) | Intake::Redone(s) => (None, None, Some(s.action)),
                        Intake::Existing(a) | Intake::FixHolds(a) | Intake::DidNotHold(a) => (None, None, Some(a)),
                    },
                    EntryIntake::Failed(err) => {
                        let api = crate::ApiError::from(err);
                        (Some(api.message), Some(api.code.to_owned()), None)
                    }
                    EntryIntake::NotTaken(
                        EntryOutcome::NothingToDo { reason }
                        | EntryOutcome::Unsupported { reason }
                        | EntryOutcome::Invalid { reason },
                    ) => (Some(reason), None, None),
                    other => (Some(format!("not taken in ({})", other.label())), None, None),
                };
                FindingEntryReply {
                    index: e.index,
                    finding_id: e.finding_id,
                    control_id: e.control_id,
                    intake,
                    reason,
                    error_code,
                    action,
                }
            })
            .collect();
        Self { format: format.map(|f| f.as_str().to_owned()), entries }
    }
}

/// An optional note for approve, reject, cancel, rollback and release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// Kept in the audit.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/actions/{id}/execute` body (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// Check everything, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A mandatory reason (force-execute, breaker reset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (kept in the audit); not blank.
    #[schemars(length(min = 1), pattern(r"\S"))]
    pub reason: String,
}

/// `POST /v1/events/replay` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The sink, as `GET /v1/events` names it (`events/siem`, `audit/file`).
    #[schemars(length(min = 1))]
    pub sink: String,
    /// Only these parked records (by audit `seq`); all of the sink's when absent.
    #[serde(default)]
    pub seqs: Option<Vec<u64>>,
    /// Why (kept in the audit); not blank.
    #[schemars(length(min = 1), pattern(r"\S"))]
    pub reason: String,
}

/// `POST /v1/events/replay` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayView {
    /// The sink.
    pub sink: String,
    /// How many of its parked records will be delivered again, before new ones.
    pub replay: u64,
}

pub use remediation_runtime::relay::EventsStatus;

/// `POST /v1/kill-switch` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchBody {
    /// On: nothing executes and waiting actions are cancelled. Off: nothing resumes by itself.
    pub on: bool,
    /// The installation's kill switch (every tenant; an admin of the default tenant, on the
    /// default tenant's routes) instead of this tenant's.
    #[serde(default)]
    pub installation: bool,
    /// Why (kept in the audit); not blank.
    #[schemars(length(min = 1), pattern(r"\S"))]
    pub reason: String,
}

/// `POST /v1/kill-switch` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KillSwitchView {
    /// The switch now (this tenant's, or the installation's when that was asked for).
    pub on: bool,
    /// Whether the installation's kill switch is on (it stops every tenant, whatever their own).
    #[serde(default)]
    pub installation: bool,
    /// The actions it cancelled.
    pub cancelled: Vec<Action>,
}

/// What an execution, force-execution or rollback came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OutcomeView {
    /// `completed`, `failed`, `held`, `plan_changed`, `requeued` (the provider throttled the
    /// write, or failed transiently, with nothing written: back in `approved` until
    /// `not_before`, its limit slots released), `dry_run`, `rolled_back`,
    /// `restored_pending_acceptance` (rolled back, but the provider offered the access back as
    /// an invitation: the person has it again only once they accept) or `rollback_requested`
    /// (the rollback waits for a different principal's approval).
    pub outcome: String,
    /// The action as it is now (absent for a dry run).
    pub action: Option<Action>,
    /// The state read back after the change.
    pub after: Option<Snapshot>,
    /// For a completed change: until when it can be rolled back. Absent when it cannot be
    /// (an irreversible change).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub rollback_expires_at: Option<time::OffsetDateTime>,
    /// The window that held the action.
    pub limit: Option<LimitReached>,
    /// True when the circuit breaker held it.
    #[serde(default)]
    pub breaker: bool,
    /// The plan (dry run).
    pub plan: Option<Plan>,
    /// Gate verdicts (dry run).
    pub decision: Option<PolicyDecision>,
    /// What differs from the approved plan (plan_changed).
    pub changes: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// For a requeued action: not executed again before this time.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub not_before: Option<time::OffsetDateTime>,
}

impl OutcomeView {
    /// An outcome named `outcome` with nothing else filled in.
    pub fn named(outcome: &str) -> Self {
        Self {
            outcome: outcome.to_owned(),
            action: None,
            after: None,
            rollback_expires_at: None,
            limit: None,
            breaker: false,
            plan: None,
            decision: None,
            changes: Vec::new(),
            error: None,
            not_before: None,
        }
    }
}

/// `GET /v1/audit` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records of this action.
    pub action_id: Option<String>,
    /// Only records with `seq` at or after this.
    pub from_seq: Option<u64>,
    /// Page size (default 100, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/reports/compliance` query: the period `[from, to)` and the format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// The first instant of the period (included): an RFC 3339 timestamp or a date
    /// (`2026-12-01`, midnight UTC).
    pub from: String,
    /// The first instant after the period (excluded), written like `from`.
    pub to: String,
    /// `json` (default, a [`ComplianceReport`]), `csv` (`text/csv`) or `html` (`text/html`).
    pub format: Option<ReportFormat>,
}

pub use remediation_service::report::{ComplianceReport, ReportFormat};

/// `GET /v1/audit` items.
pub type AuditPage = Page<AuditRecord>;

/// `GET /v1/audit/verify` response: the chain and its checkpoint (flat, as before) and
/// `tree_head`, the latest signed tree head against the log.
pub type AuditVerifyView = remediation_audit::AuditVerification;

/// `GET /v1/audit/tree-head` response: the latest signed tree head.
pub type TreeHeadView = remediation_audit::SignedTreeHead;

/// `GET /v1/audit/keys` response: every public key that signed a tree head, oldest first.
pub type PublicKeysView = remediation_audit::PublicKeySet;

/// `GET /v1/audit/proof/inclusion` query: one of `action_id` and `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// Prove every record of this action.
    pub action_id: Option<String>,
    /// Prove the record with this `seq`.
    #[schemars(range(min = 1))]
    pub seq: Option<u64>,
    /// The size of the tree to prove inclusion in (a head the auditor holds); default: the
    /// latest signed head's.
    #[schemars(range(min = 1))]
    pub tree_size: Option<u64>,
}

/// `GET /v1/audit/proof/inclusion` response: each record with its proof, and the signed head
/// of that size when the log holds one.
pub type InclusionView = remediation_audit::InclusionBundle;

/// `GET /v1/audit/proof/consistency` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The size of the tree head the auditor holds.
    #[schemars(range(min = 1))]
    pub old_size: u64,
    /// Prove against the signed head of this size; default: the latest.
    #[schemars(range(min = 1))]
    pub new_size: Option<u64>,
}

/// `GET /v1/audit/proof/consistency` response.
pub type ConsistencyView = remediation_audit::ConsistencyBundle;

/// `GET /v1/settings` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SettingsView {
    /// `config` (the seed) or `store` (changed since).
    pub source: String,
    /// The policy settings in force.
    pub policy: remediation_gates::PolicySettings,
    /// The blast-radius limits.
    pub limits: Limits,
}

/// `GET /v1/controls` response: every configured control with its settings, scope and track
/// record, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControlsView {
    /// The controls.
    pub controls: Vec<ControlView>,
}

/// `GET /v1/controls/{id}` response (and each item of [`ControlsView`]): the service's
/// [`remediation_service::controls::ControlView`], whose record says whether the control's
/// override has earned `auto` and why not.
pub use remediation_service::controls::ControlView;

/// `PATCH /v1/settings` body: a JSON merge patch (RFC 7396) applied to the policy settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// The fields to change, e.g. `{"enabled": true}`; `null` removes a map entry.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub patch: serde_json::Value,
    /// Why (kept in the audit); not blank.
    #[schemars(length(min = 1), pattern(r"\S"))]
    pub reason: String,
}

/// `GET /v1/limits` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LimitsView {
    /// Whether the circuit breaker is tripped.
    pub breaker_tripped: bool,
    /// Usage of every window with executions in it.
    pub usage: Vec<Usage>,
    /// The limits.
    pub limits: Limits,
}

/// One connector with its capabilities and health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectorView {
    /// Connector id.
    pub id: String,
    /// `ok`, or why not.
    pub health: String,
    /// True when healthy.
    pub healthy: bool,
    /// What it can do.
    pub capabilities: Vec<remediation_core::Capability>,
    /// Its permissions, judged, when they were checked (`?check=true`, `remediate connectors
    /// check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionsView>,
}

/// The outcome of a connector's permission check: each permission its calls need, judged
/// granted, missing or unknown (the credentials cannot be inspected; never counted as granted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PermissionsView {
    /// Each needed permission in exactly one of `granted`, `missing` and `unknown` (all empty
    /// when the check failed), and why the unknown ones cannot be judged.
    #[serde(flatten)]
    pub judged: remediation_core::Permissions,
    /// Every provider call the connector makes, the permission it needs and its verdict.
    #[serde(default)]
    pub calls: Vec<PermissionCallView>,
    /// Why the check itself failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One provider call and the permission it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PermissionCallView {
    /// What the call is for (`read directory_role`, `execute revoke directory_role`, `check`).
    pub used_for: String,
    /// The call, as the provider names it (`GET /directoryObjects/{id}`).
    pub call: String,
    /// The least privileged permission it needs, in the provider's terms.
    pub permission: String,
    /// Broader permissions that also grant it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_granted_by: Vec<String>,
    /// The check's verdict on the permission; `None` when the check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<remediation_core::Grant>,
}

impl PermissionsView {
    /// The view of `map` judged as `checked` says, or of the failed check `error`.
    fn of(map: &[remediation_core::PermissionNeed], checked: Result<remediation_core::Permissions, String>) -> Self {
        let status = |p: &str, perms: &remediation_core::Permissions| {
            use remediation_core::Grant;
            let has = |list: &[String]| list.iter().any(|x| x == p);
            if has(&perms.granted) {
                Some(Grant::Granted)
            } else if has(&perms.missing) {
                Some(Grant::Missing)
            } else if has(&perms.unknown) {
                Some(Grant::Unknown)
            } else {
                None
            }
        };
        let calls = |perms: Option<&remediation_core::Permissions>| {
            map.iter()
                .map(|n| PermissionCallView {
                    used_for: n.purpose(),
                    call: n.call.to_owned(),
                    permission: n.permission.to_owned(),
                    also_granted_by: n.also_granted_by.iter().map(|b| (*b).to_owned()).collect(),
                    status: perms.and_then(|p| status(n.permission, p)),
                })
                .collect()
        };
        match checked {
            Ok(p) => Self { calls: calls(Some(&p)), judged: p, error: None },
            Err(error) => {
                Self { judged: remediation_core::Permissions::default(), calls: calls(None), error: Some(error) }
            }
        }
    }

    /// True only when every needed permission is known to be granted.
    pub fn all_granted(&self) -> bool {
        self.error.is_none() && self.judged.all_granted()
    }
}

impl ConnectorView {
    /// Reads `connector`'s health (and, with `check`, its permissions) into one view; the
    /// CLI and the API both report connectors through this.
    pub async fn of(connector: &dyn remediation_core::Connector, check: bool) -> Self {
        let (healthy, health) = match connector.health().await {
            Ok(h) if h.healthy => (true, "ok".to_owned()),
            Ok(h) => (false, h.detail),
            Err(e) => (false, crate::error::chain(&e)),
        };
        let permissions = match check {
            false => None,
            true => Some(PermissionsView::of(
                connector.permission_map(),
                connector.check_permissions().await.map_err(|e| crate::error::chain(&e)),
            )),
        };
        Self { id: connector.id().to_owned(), health, healthy, capabilities: connector.capabilities(), permissions }
    }

    /// True when the connector is healthy and, if checked, lacks no needed permission. A
    /// permission the check cannot judge is shown as unknown but does not make it unready.
    pub fn ready(&self) -> bool {
        self.healthy && self.permissions.as_ref().is_none_or(|p| p.judged.missing.is_empty() && p.error.is_none())
    }
}

/// Query of `GET /v1/connectors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorQuery {
    /// Also check each connector's write permissions (one harmless provider read each).
    #[serde(default)]
    pub check: bool,
}

/// `/healthz` and `/readyz` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HealthView {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// Who a token belongs to (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenView {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// `GET /v1/pending-changes` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// Every change, also those confirmed, cancelled, expired or failed (default: only those
    /// waiting).
    #[serde(default)]
    pub all: bool,
}

/// A change that waits for a second admin (`202` from `PATCH /v1/settings` and
/// `POST /v1/kill-switch`; the result of confirming or cancelling one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingReply {
    /// The change.
    pub pending_change: remediation_core::PendingChange,
}

/// `GET /v1/reports/metrics` query: the period, as RFC 3339 timestamps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsReportQuery {
    /// Start of the period (inclusive); the log's beginning when absent.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    /// End of the period (exclusive); unbounded when absent.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub until: Option<OffsetDateTime>,
}

/// `GET /v1/reports/metrics` response: the remediation metrics of a period, per control, kind
/// and connector, counted from the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsReportView {
    /// Start of the period (inclusive), when bounded.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    /// End of the period (exclusive), when bounded.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub until: Option<OffsetDateTime>,
    /// One row per (control, kind, connector) with anything in the period.
    pub rows: Vec<MetricsRowView>,
}

/// One group of [`MetricsReportView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsRowView {
    /// The control id when configured, `other` when not, `none` for actions without one.
    pub control: String,
    /// The action kind (`unknown` for an action the store no longer holds).
    pub kind: String,
    /// The connector id.
    pub connector: String,
    /// Actions reaching each outcome: `completed` (by an execution), `failed` (an execution
    /// or a rollback failed), `rolled_back`, `rejected`, `cancelled`, `expired`.
    pub outcomes: BTreeMap<String, u64>,
    /// Executions by outcome: `completed`, `failed`, `requeued`, `held`, `plan_changed`.
    pub executions: BTreeMap<String, u64>,
    /// Rollbacks by outcome: `rolled_back`, `failed`, `requested`.
    pub rollbacks: BTreeMap<String, u64>,
    /// Executions that failed because the change was not verified after it was applied.
    pub failed_verifications: u64,
    /// Completed over completed plus failed executions; null when there were none.
    pub success_rate: Option<f64>,
    /// Rolled-back actions over completed executions; null when none completed.
    pub rollback_rate: Option<f64>,
    /// How many completions have a time to remediation.
    pub ttr_count: u64,
    /// Median time to remediation (suggestion to completion), in seconds.
    pub ttr_p50_secs: Option<f64>,
    /// 90th percentile of the time to remediation, in seconds.
    pub ttr_p90_secs: Option<f64>,
}

impl From<remediation_service::metrics::MetricsReport> for MetricsReportView {
    fn from(r: remediation_service::metrics::MetricsReport) -> Self {
        let counts = |m: &BTreeMap<&'static str, u64>| m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        let rows = r
            .rows
            .into_iter()
            .map(|row| MetricsRowView {
                outcomes: counts(&row.stats.outcomes),
                executions: counts(&row.stats.executions),
                rollbacks: counts(&row.stats.rollbacks),
                failed_verifications: row.stats.failed_verifications,
                success_rate: row.success_rate,
                rollback_rate: row.rollback_rate,
                ttr_count: row.stats.time_to_remediation.count,
                ttr_p50_secs: row.ttr_p50_secs,
                ttr_p90_secs: row.ttr_p90_secs,
                control: row.key.control,
                kind: row.key.kind,
                connector: row.key.connector,
            })
            .collect();
        Self { since: r.since, until: r.until, rows }
    }
}

/// `POST /v1/tenants` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// The new tenant's name.
    pub name: remediation_core::TenantId,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}
