//! The compliance report's use case: reads the period's audit records through the store's
//! audit log, looks up each action for its kind, and runs the same verification as
//! `audit verify`.

use std::collections::{BTreeMap, BTreeSet};

use remediation_core::{ActionId, AuditBody, AuditFilter, AuditRecord, SettingsRecord, State, TransitionRecord};
use remediation_runtime::Runtime;

use super::{
    ActionOutcome, ApprovalEvidence, AuditStatus, ComplianceReport, OutcomeCount, Override, Period, PeriodHead,
    Refusal, RollbackEntry, SettingsChange, SignedHeadSummary,
};
use crate::ServiceError;

/// Records read per page.
const PAGE: usize = 1000;

/// The states that count as an action's outcome in section 1.
const OUTCOMES: [State; 8] = [
    State::Completed,
    State::Failed,
    State::RolledBack,
    State::Rejected,
    State::Cancelled,
    State::Expired,
    State::Held,
    State::DryRun,
];

/// The compliance report of `period`, from the sequenced audit log (what a command or another
/// process left unsequenced is not in it; the verification says how many such entries wait).
pub async fn compliance(runtime: &Runtime, period: Period) -> Result<ComplianceReport, ServiceError> {
    let generated_at = runtime.clock().now();
    let (records, first_after) = read_period(runtime, period).await?;
    let mut actions = Actions::default();
    for r in &records {
        if let Some(id) = r.body.action_id() {
            actions.learn(runtime, id).await?;
        }
    }

    let mut outcomes = Vec::new();
    let mut approvals = Vec::new();
    let mut rollbacks: BTreeMap<ActionId, RollbackEntry> = BTreeMap::new();
    let mut refusals = Vec::new();
    let mut overrides = Vec::new();
    let mut settings_changes = Vec::new();
    let mut min_approvals: Option<u64> = None;

    for r in &records {
        match &r.body {
            AuditBody::Transition(t) => {
                let (kind, control) = actions.describe(t);
                if OUTCOMES.contains(&t.to) && t.from != Some(t.to) {
                    outcomes.push(ActionOutcome {
                        seq: r.seq,
                        at: t.at,
                        action_id: t.action_id,
                        control: control.clone(),
                        kind: kind.clone(),
                        outcome: t.to.as_str().to_owned(),
                        actor: t.actor.clone(),
                        comment: t.comment.clone(),
                    });
                }
                match (t.event.as_str(), t.from) {
                    ("approve", Some(State::PendingApproval)) => {
                        let approver = t.decided_by.clone().unwrap_or_else(|| t.actor.clone());
                        let distinct = distinct_approvers(runtime, t.action_id, r.seq).await?;
                        approvals.push(ApprovalEvidence {
                            seq: r.seq,
                            at: t.at,
                            action_id: t.action_id,
                            control,
                            kind,
                            // The engine compares principals by name (`same_principal`), and so does the report.
                            separate: t.initiated_by != approver,
                            requester: t.initiated_by.clone(),
                            approver,
                            distinct_approvers: distinct,
                            min_approvals,
                            quorum_reached: t.to == State::Approved,
                        });
                    }
                    ("force_execute", _) => overrides.push(Override {
                        seq: r.seq,
                        at: t.at,
                        event: t.event.clone(),
                        actor: t.actor.clone(),
                        reason: t.comment.clone(),
                        action_id: Some(t.action_id),
                    }),
                    _ => {}
                }
                rollback_step(&mut rollbacks, r.seq, t, actions.describe(t));
            }
            AuditBody::Settings(s) => {
                if let Some(min) = recorded_min_approvals(s) {
                    min_approvals = Some(min);
                }
                if s.setting_event.ends_with("_refused") {
                    refusals.push(Refusal {
                        seq: r.seq,
                        at: s.at,
                        event: s.setting_event.clone(),
                        actor: s.actor.clone(),
                        reason: s.comment.clone(),
                        action_id: s.action_id,
                    });
                } else if s.setting_event.contains("override") || s.setting_event.starts_with("force") {
                    overrides.push(Override {
                        seq: r.seq,
                        at: s.at,
                        event: s.setting_event.clone(),
                        actor: s.actor.clone(),
                        reason: s.comment.clone(),
                        action_id: s.action_id,
                    });
                } else {
                    settings_changes.push(SettingsChange {
                        seq: r.seq,
                        at: s.at,
                        event: s.setting_event.clone(),
                        actor: s.actor.clone(),
                        reason: s.comment.clone(),
                        before: s.previous.clone(),
                        after: s.value.clone(),
                    });
                }
            }
        }
    }

    let mut counts: BTreeMap<(Option<String>, String, String), u64> = BTreeMap::new();
    for o in &outcomes {
        *counts.entry((o.control.clone(), o.kind.clone(), o.outcome.clone())).or_default() += 1;
    }
    let actions_by_outcome = counts
        .into_iter()
        .map(|((control, kind, outcome), count)| OutcomeCount { control, kind, outcome, count })
        .collect();
    let mut rollbacks: Vec<RollbackEntry> = rollbacks.into_values().collect();
    rollbacks.sort_by_key(|r| r.seq);

    Ok(ComplianceReport {
        from: period.from(),
        to: period.to(),
        generated_at,
        records: records.len() as u64,
        actions: actions_by_outcome,
        outcomes,
        approvals,
        rollbacks,
        refusals,
        overrides,
        settings_changes,
        audit: audit_status(runtime, first_after).await?,
    })
}

/// The records inside `period`, by `seq`, and the `seq` of the first record at or after its
/// end (`None` when none is).
async fn read_period(runtime: &Runtime, period: Period) -> Result<(Vec<AuditRecord>, Option<u64>), ServiceError> {
    let filter = AuditFilter { since: Some(period.from()), ..AuditFilter::default() };
    let mut inside = Vec::new();
    let mut first_after: Option<u64> = None;
    let mut cursor = None;
    loop {
        let page = runtime.store().audit_page(&filter, cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.seq);
        for r in page {
            if period.contains(r.body.at()) {
                inside.push(r);
            } else if r.body.at() >= period.to() && first_after.is_none() {
                first_after = Some(r.seq);
            }
        }
    }
    Ok((inside, first_after))
}

/// Kinds and controls of the actions named in the period, looked up once each in the store
/// (transition records carry the control but not the kind).
#[derive(Default)]
struct Actions {
    known: BTreeMap<ActionId, (String, Option<String>)>,
}

impl Actions {
    async fn learn(&mut self, runtime: &Runtime, id: ActionId) -> Result<(), ServiceError> {
        if self.known.contains_key(&id) {
            return Ok(());
        }
        // An action no longer stored still has its records: its kind is then `unknown`, and
        // its control comes from the records. Any other failure to read is an error.
        let found = match runtime.store().get(id).await {
            Ok(detail) => (detail.action.kind.name().as_str().to_owned(), detail.action.control_id),
            Err(remediation_core::StoreError::NotFound(_)) => ("unknown".to_owned(), None),
            Err(e) => return Err(e.into()),
        };
        self.known.insert(id, found);
        Ok(())
    }

    /// The kind and control of the action `t` is about.
    fn describe(&self, t: &TransitionRecord) -> (String, Option<String>) {
        let (kind, control) = self.known.get(&t.action_id).cloned().unwrap_or_else(|| ("unknown".to_owned(), None));
        (kind, t.control_id.clone().or(control))
    }
}

/// How many distinct principals approved the plan of `id` up to the record `through_seq`
/// (approvals before a changed plan are void and not counted), from the action's audit records.
async fn distinct_approvers(runtime: &Runtime, id: ActionId, through_seq: u64) -> Result<u64, ServiceError> {
    let filter = AuditFilter { action: Some(id), ..AuditFilter::default() };
    let mut approvers: BTreeSet<String> = BTreeSet::new();
    let mut cursor = None;
    'pages: loop {
        let page = runtime.store().audit_page(&filter, cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.seq);
        for r in &page {
            if r.seq > through_seq {
                break 'pages;
            }
            let Some(t) = r.body.transition() else { continue };
            match (t.event.as_str(), t.from) {
                ("approve", Some(State::PendingApproval)) => {
                    approvers.insert(t.decided_by.clone().unwrap_or_else(|| t.actor.clone()));
                }
                ("plan_changed", _) => approvers.clear(),
                _ => {}
            }
        }
    }
    Ok(approvers.len() as u64)
}

/// The policy's minimum number of approvals, when a settings record carries it.
fn recorded_min_approvals(s: &SettingsRecord) -> Option<u64> {
    s.value
        .get("settings")
        .and_then(|v| v.get("min_approvals"))
        .or_else(|| s.value.get("min_approvals"))
        .and_then(serde_json::Value::as_u64)
}

/// Folds one transition into the rollback of its action, when it is a rollback step.
fn rollback_step(
    rollbacks: &mut BTreeMap<ActionId, RollbackEntry>,
    seq: u64,
    t: &TransitionRecord,
    (kind, control): (String, Option<String>),
) {
    let opening =
        matches!(t.event.as_str(), "request_rollback") || (t.event == "rollback" && t.from == Some(State::Completed));
    let step = matches!(
        (t.event.as_str(), t.from),
        ("request_rollback", _)
            | ("rollback", _)
            | ("rollback_succeeded", _)
            | ("rollback_failed", _)
            | ("approve", Some(State::RollbackRequested))
            | ("reject", Some(State::RollbackRequested))
    );
    if !step {
        return;
    }
    let entry = rollbacks.entry(t.action_id).or_insert_with(|| RollbackEntry {
        seq,
        at: t.at,
        action_id: t.action_id,
        control,
        kind,
        requested_by: t.actor.clone(),
        approved_by: None,
        outcome: String::new(),
        reason: t.comment.clone(),
    });
    if opening && entry.seq != seq && entry.outcome != "requested" {
        // A second rollback of the same action (after a rejected request): it replaces the first.
        entry.seq = seq;
        entry.at = t.at;
        entry.requested_by = t.actor.clone();
        entry.approved_by = None;
        entry.reason = t.comment.clone();
    }
    entry.outcome = match (t.event.as_str(), t.from) {
        ("request_rollback", _) => "requested",
        ("approve", _) => {
            entry.approved_by = Some(t.decided_by.clone().unwrap_or_else(|| t.actor.clone()));
            "rolling_back"
        }
        ("reject", _) => "rejected",
        ("rollback", _) => "rolling_back",
        ("rollback_succeeded", _) => "rolled_back",
        _ => "failed",
    }
    .to_owned();
}

/// Section 7: `audit verify` over the whole chain, the head at the end of the period (the
/// record before `first_after`, or the log's last), and the latest signed tree head.
async fn audit_status(runtime: &Runtime, first_after: Option<u64>) -> Result<AuditStatus, ServiceError> {
    let verification = crate::audit_verify(runtime).await?;
    let chain = &verification.chain;
    let problem = match (&chain.first_break, chain.checkpoint.is_ok(), verification.tree_head.is_ok()) {
        (Some(b), _, _) => Some(b.to_string()),
        (None, false, _) => Some(chain.checkpoint.to_string()),
        (None, true, false) => Some(verification.tree_head.to_string()),
        (None, true, true) => None,
    };
    let head_seq = match first_after {
        Some(seq) => seq.saturating_sub(1),
        None => runtime.store().audit_size().await?,
    };
    let head = if head_seq == 0 {
        None
    } else {
        let page = runtime.store().audit_page(&AuditFilter::default(), Some(head_seq - 1), 1).await?;
        let hash = page.into_iter().find(|r| r.seq == head_seq).map(|r| r.hash.to_string());
        Some(PeriodHead { seq: head_seq, hash })
    };
    let signed_tree_head = runtime.store().latest_tree_head().await?.map(|h| SignedHeadSummary {
        covers_period: h.tree_size >= head_seq,
        tree_size: h.tree_size,
        root_hash: h.root_hash.to_string(),
        timestamp: h.timestamp,
        key_id: h.key_id,
    });
    Ok(AuditStatus {
        scope: "whole_chain".to_owned(),
        chain_verified: verification.is_intact(),
        records_checked: chain.records,
        problem,
        checkpoint: chain.checkpoint.to_string(),
        tree_head_verdict: verification.tree_head.to_string(),
        head,
        signed_tree_head,
    })
}
