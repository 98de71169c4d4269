//! [`InMemoryStore`]: a faithful in-memory [`Store`] for engine tests.
//!
//! It keeps the contract a real store keeps, so tests that pass against it say something:
//! every change is a compare-and-set on the action's state, detail fields merge the way
//! [`DetailUpdate`] documents, and limit slots are counted with the exact window rule of
//! `remediation-limiter` (an execution at `at` is admitted when fewer than `limit` slots lie in
//! `(at - window, at]`). One mutex stands in for the store transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use remediation_core::{
    Action, ActionDetail, ActionFilter, ActionId, BeginOutcome, DetailUpdate, LimitReached, SafetyState,
    SettingsRecord, SlotRequest, StateChange, Store, StoreError, TransitionRecord,
};
use remediation_limiter::Window;
use time::OffsetDateTime;

/// An in-memory [`Store`]. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Insertion order, so `list` returns oldest first.
    order: Vec<ActionId>,
    actions: HashMap<ActionId, ActionDetail>,
    /// Every transition of every action, in the order they were written (the audit trail).
    transitions: Vec<TransitionRecord>,
    /// Reserved slots per limit key, in reservation order.
    slots: BTreeMap<String, Vec<OffsetDateTime>>,
    /// Safety switches and facts.
    safety: SafetyState,
    /// Every change to them, in order.
    settings_records: Vec<SettingsRecord>,
}

/// What the in-memory store reports as a backend failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InMemoryError(String);

fn backend(message: String) -> StoreError {
    StoreError::Backend { message: message.clone(), source: Box::new(InMemoryError(message)) }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `detail` into the store as it is, without a transition or audit record: for tests
    /// that start from a state the engine would take several steps to reach. Replaces an
    /// action with the same id.
    pub fn seed(&self, detail: ActionDetail) {
        let mut inner = self.lock();
        let id = detail.action.id;
        if inner.actions.insert(id, detail).is_none() {
            inner.order.push(id);
        }
    }

    /// The detail of `id`, if it exists (a synchronous [`Store::get`]).
    pub fn detail(&self, id: ActionId) -> Option<ActionDetail> {
        self.lock().actions.get(&id).cloned()
    }

    /// Every transition of every action, in the order they were written.
    pub fn audit(&self) -> Vec<TransitionRecord> {
        self.lock().transitions.clone()
    }

    /// The instants of the slots reserved under `key`, in reservation order.
    pub fn reservations(&self, key: &str) -> Vec<OffsetDateTime> {
        self.lock().slots.get(key).cloned().unwrap_or_default()
    }

    /// Reserves a slot under `key` at `at` directly, as if an execution had taken it.
    pub fn reserve(&self, key: &str, at: OffsetDateTime) {
        self.lock().slots.entry(key.to_owned()).or_default().push(at);
    }
}

impl Inner {
    /// Slots under `slot.key` inside the window ending (inclusively) at `at`.
    fn used(&self, slot: &SlotRequest, at: OffsetDateTime) -> u32 {
        let start = Window::of(slot).start(at);
        let n = self.slots.get(&slot.key).map_or(0, |v| v.iter().filter(|t| **t > start && **t <= at).count());
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn first_full(&self, slots: &[SlotRequest], at: OffsetDateTime) -> Option<LimitReached> {
        slots.iter().find_map(|slot| {
            let used = self.used(slot, at);
            (!Window::of(slot).admits(used)).then(|| LimitReached { slot: slot.clone(), used })
        })
    }

    /// The compare-and-set half of a state change: fails unless the action is in `from`.
    fn check(&self, change: &StateChange) -> Result<(), StoreError> {
        let record = &change.record;
        let id = record.action_id;
        let detail = self.actions.get(&id).ok_or(StoreError::NotFound(id))?;
        let actual = detail.action.state;
        if record.from != Some(actual) {
            return Err(StoreError::StateConflict {
                id,
                expected: record.from.map_or_else(|| "(new)".to_owned(), |s| s.to_string()),
                actual,
            });
        }
        Ok(())
    }

    /// Applies a checked change: state, timestamps, detail fields, transition.
    fn write(&mut self, change: &StateChange) -> Result<Action, StoreError> {
        let record = &change.record;
        let id = record.action_id;
        let detail = self.actions.get_mut(&id).ok_or(StoreError::NotFound(id))?;
        detail.action.state = record.to;
        detail.action.updated_at = record.at;
        let DetailUpdate { plan, before, after, restored, pending_acceptance, rollback_expires_at, last_error } =
            change.update.clone();
        if let Some(plan) = plan {
            detail.plan = Some(plan);
        }
        if let Some(before) = before {
            detail.before = Some(before);
        }
        if let Some(after) = after {
            detail.after = Some(after);
        }
        if let Some(restored) = restored {
            detail.restored = Some(restored);
        }
        if let Some(pending) = pending_acceptance {
            detail.pending_acceptance = pending;
        }
        if let Some(until) = rollback_expires_at {
            detail.rollback_expires_at = Some(until);
        }
        if let Some(error) = last_error {
            detail.last_error = error;
        }
        let action = detail.action.clone();
        self.transitions.push(record.clone());
        Ok(action)
    }
}

#[async_trait]
impl Store for InMemoryStore {
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<(), StoreError> {
        let id = detail.action.id;
        if record.action_id != id || record.from.is_some() || record.to != detail.action.state {
            return Err(backend(format!(
                "the first transition of action {id} must be from (new) to {}, got {} from {:?} to {}",
                detail.action.state, record.action_id, record.from, record.to
            )));
        }
        let mut inner = self.lock();
        if inner.actions.contains_key(&id) {
            return Err(backend(format!("action {id} already exists")));
        }
        inner.actions.insert(id, detail.clone());
        inner.order.push(id);
        inner.transitions.push(record.clone());
        Ok(())
    }

    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError> {
        self.detail(id).ok_or(StoreError::NotFound(id))
    }

    async fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .order
            .iter()
            .filter_map(|id| inner.actions.get(id))
            .map(|d| &d.action)
            .filter(|a| filter.state.is_none_or(|s| a.state == s))
            .filter(|a| filter.connector.as_ref().is_none_or(|c| &a.connector == c))
            .cloned()
            .collect())
    }

    async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError> {
        let inner = self.lock();
        if !inner.actions.contains_key(&id) {
            return Err(StoreError::NotFound(id));
        }
        Ok(inner.transitions.iter().filter(|t| t.action_id == id).cloned().collect())
    }

    async fn apply(&self, change: &StateChange) -> Result<Action, StoreError> {
        let mut inner = self.lock();
        inner.check(change)?;
        inner.write(change)
    }

    async fn begin_execution(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError> {
        let mut inner = self.lock();
        inner.check(change)?;
        let at = change.record.at;
        if enforce && let Some(full) = inner.first_full(slots, at) {
            return Ok(BeginOutcome::LimitReached(full));
        }
        for slot in slots {
            inner.slots.entry(slot.key.clone()).or_default().push(at);
        }
        Ok(BeginOutcome::Started(inner.write(change)?))
    }

    async fn check_limits(
        &self,
        slots: &[SlotRequest],
        at: OffsetDateTime,
    ) -> Result<Option<LimitReached>, StoreError> {
        Ok(self.lock().first_full(slots, at))
    }

    async fn safety_state(&self) -> Result<SafetyState, StoreError> {
        Ok(self.lock().safety.clone())
    }

    async fn update_safety_state(
        &self,
        expected: &SafetyState,
        new: &SafetyState,
        record: &SettingsRecord,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if &inner.safety != expected {
            return Err(StoreError::SafetyConflict);
        }
        inner.safety = new.clone();
        inner.settings_records.push(record.clone());
        Ok(())
    }

    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
        self.lock().settings_records.push(record.clone());
        Ok(())
    }

    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let inner = self.lock();
        let mut all: Vec<(String, OffsetDateTime)> = inner
            .slots
            .iter()
            .flat_map(|(k, ts)| ts.iter().filter(|t| **t >= since).map(move |t| (k.clone(), *t)))
            .collect();
        all.sort_by_key(|(_, t)| *t);
        Ok(all)
    }
}

impl InMemoryStore {
    /// Every change to the safety state, in order (the settings part of the audit trail).
    pub fn settings_records(&self) -> Vec<SettingsRecord> {
        self.lock().settings_records.clone()
    }
}

#[cfg(test)]
mod tests {
    use remediation_core::{State, TransitionRecord};
    use time::Duration;

    use super::*;
    use crate::{ActionBuilder, fixed_time, slot, snap};

    fn record(action: &Action, from: Option<State>, to: State) -> TransitionRecord {
        TransitionRecord {
            action_id: action.id,
            from,
            to,
            event: "test".to_owned(),
            actor: "system".to_owned(),
            credential: None,
            initiated_by: action.requested_by.clone(),
            decided_by: None,
            at: fixed_time(),
            comment: None,
            connector: action.connector.clone(),
            control_id: None,
            finding_id: None,
            before_hash: None,
            after_hash: None,
            plan_hash: None,
            request_ids: Vec::new(),
            rollback_expires_at: None,
            before_state: None,
            after_state: None,
        }
    }

    fn change(action: &Action, from: State, to: State, update: DetailUpdate) -> StateChange {
        StateChange { record: record(action, Some(from), to), update }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn apply_is_a_compare_and_set_and_merges_details() {
        block_on(async {
            let store = InMemoryStore::new();
            let detail = ActionBuilder::new().detail().last_error("old").build();
            let action = detail.action.clone();
            store.create_action(&detail, &record(&action, None, State::PendingApproval)).await.expect("create");
            // A second create of the same id fails.
            assert!(store.create_action(&detail, &record(&action, None, State::PendingApproval)).await.is_err());

            let err = store
                .apply(&change(&action, State::Approved, State::Executing, DetailUpdate::default()))
                .await
                .expect_err("wrong from");
            assert!(
                matches!(err, StoreError::StateConflict { actual: State::PendingApproval, ref expected, .. } if expected == "approved")
            );

            let update = DetailUpdate { before: Some(snap(serde_json::json!({"a": 1}))), ..DetailUpdate::default() };
            let a = store.apply(&change(&action, State::PendingApproval, State::Approved, update)).await.expect("ok");
            assert_eq!(a.state, State::Approved);
            let d = store.detail(action.id).expect("detail");
            assert_eq!(d.before, Some(snap(serde_json::json!({"a": 1}))));
            assert_eq!(d.last_error.as_deref(), Some("old"), "None leaves a field alone");

            let clear = DetailUpdate { last_error: Some(None), ..DetailUpdate::default() };
            store.apply(&change(&action, State::Approved, State::Held, clear)).await.expect("ok");
            let d = store.detail(action.id).expect("detail");
            assert_eq!(d.last_error, None, "Some(None) clears");
            assert_eq!(d.before, Some(snap(serde_json::json!({"a": 1}))));
            let events: Vec<Option<State>> =
                store.transitions(action.id).await.expect("transitions").iter().map(|t| t.from).collect();
            assert_eq!(events, [None, Some(State::PendingApproval), Some(State::Approved)]);
        });
    }

    #[track_caller]
    fn check_window(reserved_offsets_secs: &[i64], at_offset_secs: i64, expected_used: Option<u32>) {
        let store = InMemoryStore::new();
        let s = slot("global", 2, 3600);
        for o in reserved_offsets_secs {
            store.reserve("global", fixed_time() + Duration::seconds(*o));
        }
        let got =
            block_on(store.check_limits(std::slice::from_ref(&s), fixed_time() + Duration::seconds(at_offset_secs)))
                .expect("check");
        assert_eq!(got.map(|l| l.used), expected_used);
    }

    #[test]
    fn window_rule_is_half_open() {
        check_window(&[], 0, None);
        check_window(&[0], 0, None);
        check_window(&[0, 1], 1, Some(2));
        check_window(&[0, 1], 3599, Some(2));
        // The slot at 0 leaves the window (at - 3600, at] exactly at 3600.
        check_window(&[0, 1], 3600, None);
        check_window(&[0, 1], 3601, None);
        check_window(&[0, 0, 0], 3599, Some(3));
        // Slots after `at` are outside the window.
        check_window(&[10, 20], 5, None);
    }

    #[test]
    fn begin_execution_reserves_only_when_every_window_has_room() {
        block_on(async {
            let store = InMemoryStore::new();
            let detail = ActionBuilder::new().state(State::Approved).detail().build();
            let action = detail.action.clone();
            store.seed(detail);
            let slots = [slot("global", 5, 60), slot("identity:alice", 1, 60)];
            store.reserve("identity:alice", fixed_time());
            let c = change(&action, State::Approved, State::Executing, DetailUpdate::default());
            let out = store.begin_execution(&c, &slots, true).await.expect("begin");
            assert!(
                matches!(out, BeginOutcome::LimitReached(LimitReached { ref slot, used: 1 }) if slot.key == "identity:alice")
            );
            assert!(store.reservations("global").is_empty(), "nothing reserved when a window is full");
            assert_eq!(store.detail(action.id).expect("detail").action.state, State::Approved);

            let out = store.begin_execution(&c, &slots, false).await.expect("forced");
            assert!(matches!(out, BeginOutcome::Started(ref a) if a.state == State::Executing));
            assert_eq!(store.reservations("global").len(), 1);
            assert_eq!(store.reservations("identity:alice").len(), 2);

            // The compare-and-set comes first: nothing is reserved for a stale change.
            assert!(matches!(store.begin_execution(&c, &slots, false).await, Err(StoreError::StateConflict { .. })));
            assert_eq!(store.reservations("global").len(), 1);
        });
    }
}
