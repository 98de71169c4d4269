//! Finding intake: a scanner's finding becomes a suggestion by the mode policy, at most once
//! per (control, target). Targets compare by the provider's canonical id when the actions
//! carry one, so a finding that names an account by another name (an alias, a login instead
//! of an id) finds the action already taken on it.
//!
//! - An open action (suggested, pending approval, approved, held, executing, rolling back)
//!   for the same control and target is returned ([`Intake::Existing`]): a periodic scanner
//!   never creates the same action twice.
//! - When the latest action for the pair completed, the finding is a claim to check, never a
//!   reason to undo anything: the target is read again. When the fix still holds (the same
//!   change would change nothing), the completed action is returned ([`Intake::FixHolds`]).
//!   Only when the grant is really back is the `RemediationDidNotHold` event emitted; then,
//!   with the policy setting `redo_fixes_that_did_not_hold` on, a fresh action is suggested
//!   through the mode policy and gates ([`Intake::Redone`]), else the completed action is
//!   returned ([`Intake::DidNotHold`]) for a person to decide.
//! - Anything else (no action yet, or the last one rolled back, failed, was rejected,
//!   cancelled or expired) creates a new action ([`Intake::Created`]).
//!
//! Without a `connector`, [`crate::select_connector`] chooses one.

use remediation_core::{Action, ActionFilter, Actor, Finding, FixCheck, State, Suggestion};
use remediation_runtime::Runtime;

use crate::{ServiceError, select_connector};

/// What intake did with a finding.
#[derive(Debug, Clone)]
pub enum Intake {
    /// An action for the same control and target is already open; nothing new was suggested.
    Existing(Action),
    /// The last action for the pair completed and its fix still holds.
    FixHolds(Action),
    /// The last action's fix did not hold and redoing is off: a person decides.
    DidNotHold(Action),
    /// A new action was suggested.
    Created(Suggestion),
    /// The last fix did not hold and a fresh action was suggested.
    Redone(Suggestion),
}

impl Intake {
    /// The wire name of the outcome (`existing`, `fix_holds`, `did_not_hold`, `created`,
    /// `redone`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Existing(_) => "existing",
            Self::FixHolds(_) => "fix_holds",
            Self::DidNotHold(_) => "did_not_hold",
            Self::Created(_) => "created",
            Self::Redone(_) => "redone",
        }
    }
}

fn is_open(s: State) -> bool {
    matches!(
        s,
        State::Suggested
            | State::PendingApproval
            | State::Approved
            | State::Held
            | State::Executing
            | State::RollingBack
    )
}

/// Takes in one finding for `actor` (see the module docs). Callers that may run it
/// concurrently in one process serialise calls, so a finding posted twice at once creates
/// one action.
pub async fn intake(runtime: &Runtime, actor: &Actor, finding: &Finding) -> Result<Intake, ServiceError> {
    let active = runtime.active().await?;
    let engine = active.engine;
    let connector = match &finding.connector {
        Some(c) => c.clone(),
        None => select_connector(runtime.connectors(), finding.suggested_kind.name(), &finding.target).await?,
    };
    // The store filters by control, so intake reads only this control's actions.
    let candidates: Vec<Action> = engine
        .list(&ActionFilter { control: Some(finding.control_id.clone()), ..ActionFilter::default() })
        .await?
        .into_iter()
        .filter(|a| a.control_id.as_deref() == Some(finding.control_id.as_str()) && a.state != State::DryRun)
        .collect();
    // Another name for the same target is the same target: when an earlier action of this
    // connector carries the provider's canonical id, the finding's target is resolved too (a
    // read; a target that cannot be read is left to `suggest` to report).
    let canonical =
        if candidates.iter().any(|a| a.connector == connector && a.canonical.is_some() && a.target != finding.target) {
            match engine.connectors().find(|c| c.id() == connector) {
                Some(c) => c.snapshot(&finding.target).await.ok().and_then(|s| s.canonical),
                None => None,
            }
        } else {
            None
        };
    let mut same: Vec<Action> = candidates
        .into_iter()
        .filter(|a| a.same_target(&finding.target, canonical.as_ref().filter(|_| a.connector == connector)))
        .collect();
    if let Some(open) = same.iter().find(|a| is_open(a.state)) {
        return Ok(Intake::Existing(open.clone()));
    }
    let mut request = finding.to_request(&connector, false);
    if let Some(last) = same.pop().filter(|a| a.state == State::Completed) {
        // A finding is a claim, not a fact: the provider is read again, and only a grant that
        // is really back counts. Nothing is ever rolled back on a finding's word.
        let live = match engine.fix_holds(last.id).await? {
            FixCheck::Holds => return Ok(Intake::FixHolds(last)),
            FixCheck::Undone { live } => live,
        };
        engine.record_did_not_hold(last.id, &finding.control_id, &finding.target, actor).await?;
        tracing::warn!(action_id = %last.id, control_id = %finding.control_id, live = %live.state, "remediation did not hold");
        if !active.settings.redo_fixes_that_did_not_hold {
            return Ok(Intake::DidNotHold(last));
        }
        request.reason = format!("{} (again: action {} did not hold)", request.reason, last.id);
        return Ok(Intake::Redone(engine.suggest(request, actor).await?));
    }
    Ok(Intake::Created(engine.suggest(request, actor).await?))
}
