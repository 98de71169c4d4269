//! A control's track record, read from the store, and whether its override has earned `auto`.
//!
//! Good practice starts a control in `manual` and promotes it once people have approved enough
//! of its fixes without regret. The record of a control override counts the actions tagged
//! with the control *inside the override's scope* (its `kinds`, `grant_types` and
//! `connectors`, see [`ControlSettings::covers`]):
//!
//! - a **manual success** is an action a person approved (`pending_approval` to `approved`)
//!   that then completed (`executing` to `completed`); an **auto success** is one the system
//!   approved at suggestion;
//! - a **rollback** is an action whose change was rolled back (or a rollback began);
//! - a **failed verification** is an execution that failed because the change was not
//!   observed afterwards.
//!
//! The override has earned `auto` ([`AutoPromotion`]) with at least `min_successes` manual
//! successes, the first at least `min_days` days ago, and no rollback. The latest
//! [`AutoDemotion::window`] executed auto actions (suggested since the override last became
//! `auto`) are judged for automatic demotion.
//!
//! Everything comes from the store, so the record survives restarts and counts every process's
//! work. Cost of [`control_record`]: one keyset-paged listing of the control's actions (the
//! store filters by control) plus one read of the transitions of each executed action in
//! scope, about 80 ms per thousand such actions on the embedded store (release build), so
//! under a second at 10 000; it runs when a promotion is proposed or confirmed and when a
//! record is shown. [`recent_auto`], run whenever an auto action finishes, reads the
//! transitions of at most `auto_demotion.window` actions.

use std::collections::VecDeque;

use remediation_core::{Action, ActionFilter, Mode, PageRequest, State, Store, StoreError, TransitionRecord};
use remediation_gates::{AutoDemotion, AutoPromotion, ControlSettings, PolicySettings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The prefix of the comment the engine writes when a change is not verified after it was
/// applied (`remediation_core::Engine`, execution).
pub const NOT_VERIFIED: &str = "not verified";

/// How many actions one listing page reads.
const PAGE: usize = 500;

/// What one action came to, read from its transitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Approved by the system at suggestion (auto mode).
    pub auto: bool,
    /// Approved by a person (it waited in `pending_approval`).
    pub approved_by_person: bool,
    /// When it first completed, if it did.
    pub succeeded_at: Option<OffsetDateTime>,
    /// Its execution ended (completed or failed).
    pub executed: bool,
    /// A rollback of it began.
    pub rolled_back: bool,
    /// Its execution failed because the change was not verified.
    pub failed_verification: bool,
}

impl Outcome {
    /// Reads the outcome from an action's transitions (oldest first).
    pub fn of(transitions: &[TransitionRecord]) -> Self {
        let mut o = Self::default();
        for t in transitions {
            match (t.from, t.to) {
                (None, State::Approved) => o.auto = true,
                (Some(State::PendingApproval), State::Approved) => o.approved_by_person = true,
                (Some(State::Executing), State::Completed) => {
                    o.executed = true;
                    o.succeeded_at.get_or_insert(t.at);
                }
                (Some(State::Executing), State::Failed) => {
                    o.executed = true;
                    if t.comment.as_deref().is_some_and(|c| c.starts_with(NOT_VERIFIED)) {
                        o.failed_verification = true;
                    }
                }
                (_, State::RollingBack) => o.rolled_back = true,
                _ => {}
            }
        }
        o
    }
}

/// The latest auto actions of an override, judged for automatic demotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecentAuto {
    /// How many of the latest executed auto actions are judged (`auto_demotion.window`).
    pub window: u32,
    /// How many there were (at most `window`).
    pub judged: u32,
    /// How many of them were rolled back or failed verification.
    pub went_wrong: u32,
    /// The share that may go wrong, in percent (`auto_demotion.max_rate_percent`).
    pub max_rate_percent: u32,
    /// Whether `went_wrong` over `judged` exceeds `max_rate_percent`: an override in `auto`
    /// is demoted.
    pub exceeds: bool,
}

impl RecentAuto {
    /// `went_wrong` over `judged`, in percent; `None` when nothing was judged.
    pub fn rate_percent(&self) -> Option<f64> {
        (self.judged > 0).then(|| f64::from(self.went_wrong) * 100.0 / f64::from(self.judged))
    }
}

/// A control override's record and whether it has earned `auto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControlRecord {
    /// Completed actions in scope that a person approved.
    pub manual_successes: u64,
    /// Completed actions in scope that the system approved (they do not count toward `auto`).
    pub auto_successes: u64,
    /// When the first manual success completed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub first_manual_success: Option<OffsetDateTime>,
    /// Actions in scope rolled back (or whose rollback began).
    pub rollbacks: u64,
    /// Executions in scope that failed because the change was not verified.
    pub failed_verifications: u64,
    /// The latest auto actions, as automatic demotion judges them.
    pub recent_auto: RecentAuto,
    /// What earning `auto` takes (`[policy] auto_promotion`).
    pub needed: AutoPromotion,
    /// Whether the record earns `auto`.
    pub earned: bool,
    /// Why not, in plain words (`3 of 10 successful manual remediations; first 2 days ago,
    /// 30 needed`); `None` when earned.
    pub why_not: Option<String>,
}

/// Folds actions (oldest first) and their outcomes into a [`ControlRecord`].
#[derive(Debug, Clone)]
pub struct RecordFold {
    control: ControlSettings,
    promotion: AutoPromotion,
    demotion: AutoDemotion,
    now: OffsetDateTime,
    manual_successes: u64,
    auto_successes: u64,
    first: Option<OffsetDateTime>,
    rollbacks: u64,
    failed_verifications: u64,
    recent: VecDeque<bool>,
}

impl RecordFold {
    /// An empty fold for `control` under `policy`'s thresholds, judged at `now`.
    pub fn new(policy: &PolicySettings, control: &ControlSettings, now: OffsetDateTime) -> Self {
        Self {
            control: control.clone(),
            promotion: policy.auto_promotion,
            demotion: policy.auto_demotion,
            now,
            manual_successes: 0,
            auto_successes: 0,
            first: None,
            rollbacks: 0,
            failed_verifications: 0,
            recent: VecDeque::new(),
        }
    }

    /// Whether `action` counts at all (inside the override's scope) and its outcome is
    /// worth reading (it reached execution).
    pub fn wants(&self, action: &Action) -> bool {
        self.control.covers(action)
            && matches!(
                action.state,
                State::Completed | State::RollbackRequested | State::RollingBack | State::RolledBack | State::Failed
            )
    }

    /// Adds one action (in creation order) and what it came to.
    pub fn add(&mut self, action: &Action, outcome: &Outcome) {
        if !self.control.covers(action) {
            return;
        }
        if let Some(at) = outcome.succeeded_at {
            if outcome.auto {
                self.auto_successes += 1;
            } else if outcome.approved_by_person {
                self.manual_successes += 1;
                self.first = Some(self.first.map_or(at, |f| f.min(at)));
            }
        }
        if outcome.rolled_back {
            self.rollbacks += 1;
        }
        if outcome.failed_verification {
            self.failed_verifications += 1;
        }
        let since = self.control.auto_since.is_none_or(|s| action.created_at >= s);
        if outcome.auto && outcome.executed && since {
            self.recent.push_back(outcome.rolled_back || outcome.failed_verification);
            if self.recent.len() > self.demotion.window as usize {
                self.recent.pop_front();
            }
        }
    }

    /// The record.
    pub fn finish(self) -> ControlRecord {
        let p = self.promotion;
        let judged = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        let went_wrong = u32::try_from(self.recent.iter().filter(|b| **b).count()).unwrap_or(u32::MAX);
        let exceeds =
            judged > 0 && u64::from(went_wrong) * 100 > u64::from(self.demotion.max_rate_percent) * u64::from(judged);
        let recent_auto = RecentAuto {
            window: self.demotion.window,
            judged,
            went_wrong,
            max_rate_percent: self.demotion.max_rate_percent,
            exceeds,
        };
        let enough = self.manual_successes >= u64::from(p.min_successes);
        let long_enough = self.first.is_some_and(|f| f <= self.now - time::Duration::days(i64::from(p.min_days)));
        let earned = enough && long_enough && self.rollbacks == 0;
        let why_not = (!earned).then(|| {
            let mut parts =
                vec![format!("{} of {} successful manual remediations", self.manual_successes, p.min_successes)];
            match self.first {
                Some(f) if !long_enough => {
                    parts.push(format!("first {} days ago, {} needed", (self.now - f).whole_days(), p.min_days));
                }
                None if p.min_days > 0 => parts.push(format!("the first must be at least {} days old", p.min_days)),
                _ => {}
            }
            if self.rollbacks > 0 {
                parts.push(format!("{} rolled back, none allowed", self.rollbacks));
            }
            parts.join("; ")
        });
        ControlRecord {
            manual_successes: self.manual_successes,
            auto_successes: self.auto_successes,
            first_manual_success: self.first,
            rollbacks: self.rollbacks,
            failed_verifications: self.failed_verifications,
            recent_auto,
            needed: p,
            earned,
            why_not,
        }
    }
}

/// The record of control `id` with override `control`, under `policy`'s thresholds, at `now`,
/// read from `store`.
pub async fn control_record(
    store: &dyn Store,
    id: &str,
    control: &ControlSettings,
    policy: &PolicySettings,
    now: OffsetDateTime,
) -> Result<ControlRecord, StoreError> {
    let mut fold = RecordFold::new(policy, control, now);
    let filter = ActionFilter { control: Some(id.to_owned()), ..ActionFilter::default() };
    let mut page = PageRequest::first(PAGE);
    loop {
        let listed = store.list(&filter, &page).await?;
        for action in &listed.items {
            if fold.wants(action) {
                let outcome = Outcome::of(&store.transitions(action.id).await?);
                fold.add(action, &outcome);
            }
        }
        match listed.next {
            Some(next) => page = PageRequest { after: Some(next), limit: PAGE },
            None => return Ok(fold.finish()),
        }
    }
}

/// Only the latest auto actions of control `id` with override `control`, as automatic
/// demotion judges them ([`ControlRecord::recent_auto`], the same numbers), for the check
/// made each time an auto action finishes: it lists the control's actions but reads the
/// transitions of at most `auto_demotion.window` of them.
pub async fn recent_auto(
    store: &dyn Store,
    id: &str,
    control: &ControlSettings,
    policy: &PolicySettings,
) -> Result<RecentAuto, StoreError> {
    let window = policy.auto_demotion.window as usize;
    let mut latest: VecDeque<Action> = VecDeque::with_capacity(window + 1);
    let filter = ActionFilter { control: Some(id.to_owned()), ..ActionFilter::default() };
    let mut page = PageRequest::first(PAGE);
    // Any time: only the judged window is folded, and it ignores the clock.
    let mut fold = RecordFold::new(policy, control, OffsetDateTime::UNIX_EPOCH);
    loop {
        let listed = store.list(&filter, &page).await?;
        for action in listed.items {
            let since = control.auto_since.is_none_or(|s| action.created_at >= s);
            if action.mode == Mode::Auto && since && fold.wants(&action) {
                latest.push_back(action);
                if latest.len() > window {
                    latest.pop_front();
                }
            }
        }
        match listed.next {
            Some(next) => page = PageRequest { after: Some(next), limit: PAGE },
            None => break,
        }
    }
    for action in &latest {
        fold.add(action, &Outcome::of(&store.transitions(action.id).await?));
    }
    Ok(fold.finish().recent_auto)
}

/// The controls whose override switches to `auto` from `old` to `new`, or stays in `auto`
/// while its scope grows (a kind, grant type or connector added): either way it reaches
/// actions its record may not cover.
pub fn promoted(old: &PolicySettings, new: &PolicySettings) -> Vec<String> {
    new.controls
        .iter()
        .filter(|(id, c)| {
            c.mode == Some(Mode::Auto)
                && match old.controls.get(*id).filter(|o| o.mode == Some(Mode::Auto)) {
                    None => true,
                    Some(o) => widens(o, c),
                }
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// Whether `new`'s scope names a kind, grant type or connector that `old`'s does not.
pub fn widens(old: &ControlSettings, new: &ControlSettings) -> bool {
    fn grows<T: PartialEq>(old: Option<&Vec<T>>, new: Option<&Vec<T>>) -> bool {
        new.unwrap_or(&Vec::new()).iter().any(|n| !old.is_some_and(|o| o.contains(n)))
    }
    grows(old.kinds.as_ref(), new.kinds.as_ref())
        || grows(old.grant_types.as_ref(), new.grant_types.as_ref())
        || grows(old.connectors.as_ref(), new.connectors.as_ref())
}

#[cfg(test)]
mod tests;
