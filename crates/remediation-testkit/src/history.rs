//! Past actions written straight into a store, as the engine would have recorded them: the
//! track record a control's promotion to `auto` (and its demotion) is judged by, laid down in
//! a test without running each action through a connector.

use remediation_core::{Action, ActionId, DetailUpdate, Mode, State, StateChange, Store, StoreError};
use time::OffsetDateTime;

use crate::builders::{ActionBuilder, DetailBuilder, transition};

/// How a past action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Executed and verified (`completed`).
    Completed,
    /// Executed, then rolled back (`rolled_back`).
    RolledBack,
    /// Applied but not verified (`failed`, comment `not verified: ...`).
    NotVerified,
    /// Still waiting for approval.
    Waiting,
}

/// One past action of `control` to record.
#[derive(Debug, Clone)]
pub struct Past {
    /// The action as suggested (its `mode` says whether it was auto-approved); its state and
    /// times are set from the steps.
    pub action: Action,
    /// When it completed (or failed); it was suggested an hour before.
    pub at: OffsetDateTime,
    /// How it ended.
    pub ending: Ending,
}

impl Past {
    /// A revoke of `alice` from group `seed` on `sandbox`, tagged with `control`, in `mode`,
    /// ending as `ending` at `at`.
    pub fn new(control: &str, seed: u64, mode: Mode, at: OffsetDateTime, ending: Ending) -> Self {
        let mut target = crate::builders::default_target();
        target.resource = Some(format!("group-{seed}"));
        let action = ActionBuilder::new().seed(seed).control_id(control).mode(mode).target(target).build();
        Self { action, at, ending }
    }
}

/// Records `past` in `store`: its suggestion (auto-approved by `system` when its mode is
/// `auto`, else an approval by `local:bob`), execution and ending, each a transition with its
/// audit entry. Returns the action's id.
pub async fn record(store: &dyn Store, past: Past) -> Result<ActionId, StoreError> {
    let Past { action, at, ending } = past;
    let start = at - time::Duration::hours(1);
    let auto = action.mode == Mode::Auto;
    let first = if auto { State::Approved } else { State::PendingApproval };
    let action = Action { state: first, created_at: start, updated_at: start, ..action };
    let id = action.id;
    let stamp = |mut t: remediation_core::TransitionRecord| {
        t.control_id = action.control_id.clone();
        t.connector = action.connector.clone();
        t
    };
    let mut created = stamp(transition(id, None, first, "suggest", start));
    if auto {
        created.actor = action.requested_by.clone();
        created.decided_by = Some("system".to_owned());
    }
    store.create_action(&DetailBuilder::new(action.clone()).build(), &created).await?;
    let mut steps: Vec<(State, State, &str, Option<&str>)> = Vec::new();
    if !auto {
        if ending == Ending::Waiting {
            return Ok(id);
        }
        steps.push((State::PendingApproval, State::Approved, "approve", None));
    }
    steps.push((State::Approved, State::Executing, "begin_execution", None));
    match ending {
        Ending::Completed | Ending::RolledBack | Ending::Waiting => {
            steps.push((State::Executing, State::Completed, "execution_succeeded", None));
        }
        Ending::NotVerified => {
            steps.push((State::Executing, State::Failed, "execution_failed", Some("not verified: read back differs")));
        }
    }
    if ending == Ending::RolledBack {
        steps.push((State::Completed, State::RollingBack, "rollback", None));
        steps.push((State::RollingBack, State::RolledBack, "rollback_succeeded", None));
    }
    for (from, to, event, comment) in steps {
        let mut t = stamp(transition(id, Some(from), to, event, at));
        t.comment = comment.map(str::to_owned);
        store.apply(&StateChange::new(t, DetailUpdate::default())).await?;
    }
    Ok(id)
}
