//! [`ActionStore`]: actions, their transitions and compare-and-set state changes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ActionDetail, BeginOutcome, SlotRequest, StateChange, StoreError, TransitionRecord};
use crate::{Action, ActionId, State};

/// Which actions to list. Every field narrows the list; the default lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionFilter {
    /// Only actions in this state (answered by an index on (state, created, id)).
    pub state: Option<State>,
    /// Only actions on this connector.
    pub connector: Option<String>,
    /// Only actions on this identity: as the action's target spells it, or the provider's
    /// canonical id of it.
    pub identity: Option<String>,
    /// Only actions for this control.
    pub control: Option<String>,
    /// Only actions created by this campaign.
    pub campaign: Option<String>,
}

impl ActionFilter {
    /// Whether `action` passes the filter (the rule every store applies).
    pub fn matches(&self, action: &Action) -> bool {
        self.state.is_none_or(|s| action.state == s)
            && self.connector.as_ref().is_none_or(|c| &action.connector == c)
            && self.identity.as_ref().is_none_or(|i| {
                &action.target.identity == i || action.canonical.as_ref().is_some_and(|c| &c.identity == i)
            })
            && self.control.as_ref().is_none_or(|c| action.control_id.as_ref() == Some(c))
            && self.campaign.as_ref().is_none_or(|c| action.campaign.as_ref() == Some(c))
    }
}

/// One page to read: the items strictly after `after` in list order (creation time, then
/// id), at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The last action of the previous page (its id is the cursor); `None` for the first page.
    /// A cursor naming no action yields an empty page.
    pub after: Option<ActionId>,
    /// The most items to return; 0 returns none.
    pub limit: usize,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` when this page is the last.
    pub next: Option<ActionId>,
}

/// Actions, their transitions and their state changes.
///
/// Every write is one serializable transaction that also writes the transition row and the
/// audit entry of the change (see [`super::AuditLog`]): either all of it is stored or none.
#[async_trait]
pub trait ActionStore: Send + Sync {
    /// Stores a new action with its first transition and audit entry, atomically. Fails when
    /// an action with the same id exists, when `record.from` is not `None`, or when `record`
    /// does not describe `detail`'s action and state. Returns the handle the store gave the
    /// action (see [`ActionStore::action_by_handle`]).
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<Option<u64>, StoreError>;

    /// Reads an action with everything recorded about it (one committed snapshot).
    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError>;

    /// The id of the action whose [`crate::Action::handle`] is `handle`, if any. Stores give
    /// each action they create the next handle of the installation (1, 2, ...), in the same
    /// step that stores it, and never give one twice.
    async fn action_by_handle(&self, handle: u64) -> Result<Option<ActionId>, StoreError>;

    /// One page of the actions passing `filter`, ordered by (creation time, id), done by the
    /// store: keyset paging on an index, never the whole table. `next` is set when more
    /// items may follow.
    async fn list(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, StoreError>;

    /// Every transition of one action, oldest first.
    async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError>;

    /// Applies a state change in one serializable step: compare the action's state with
    /// `change.record.from`, update it (merging [`super::DetailUpdate`]), write the transition
    /// row and the audit entry. A concurrent `apply` on the same action that loses the race
    /// sees [`StoreError::StateConflict`] and writes nothing.
    ///
    /// A change from `executing` back to `approved` (a requeue: nothing was written to the
    /// provider) also releases every limit slot the action holds, in the same step, so the
    /// windows admit another execution in its place.
    async fn apply(&self, change: &StateChange) -> Result<Action, StoreError>;

    /// In one serializable step: the compare of [`ActionStore::apply`], then when every window
    /// in `slots` has room at `change.record.at` (or `enforce` is false) reserves one slot in
    /// each and applies `change`. Two concurrent calls never both take a window's last slot:
    /// with limit L, of N > L concurrent calls exactly L start.
    async fn begin_execution(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError>;

    /// Actions whose due time ([`ActionDetail::due_at`]: approval deadline, rollback
    /// request window) is before `now`, earliest due first, at most `limit`; answered by an
    /// index on the stored due time. The caller re-checks each one and acts through
    /// [`ActionStore::apply`], so a stale answer costs a `StateConflict`, never a wrong write.
    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<ActionDetail>, StoreError>;

    /// `approved` actions that may be claimed for execution at `now` (no
    /// [`ActionDetail::not_before`], or one at or before `now`), on `connector` when given,
    /// oldest first (creation time, then id), at most `limit`; answered by the state index,
    /// never by listing every action. The caller claims each one through
    /// [`ActionStore::begin_execution`], so a stale answer costs a `StateConflict`.
    async fn claimable(
        &self,
        now: OffsetDateTime,
        connector: Option<String>,
        limit: usize,
    ) -> Result<Vec<ActionDetail>, StoreError>;

    /// [`ActionStore::claimable`] for a worker among several sharing the store: also reserves
    /// what it returns for `holder` until `until`, and skips the actions another holder's
    /// unexpired reservation covers, so replicas do not all re-check the same actions at the
    /// provider only for all but one to lose the claim. A reservation is advice to other
    /// workers, never a lock: [`ActionStore::begin_execution`] still decides, and an expired
    /// reservation (its worker died) is taken by the next reader. The default, for stores whose
    /// writers share one host, reserves nothing and answers [`ActionStore::claimable`].
    async fn reserve_claimable(
        &self,
        now: OffsetDateTime,
        connector: Option<String>,
        limit: usize,
        holder: &str,
        until: OffsetDateTime,
    ) -> Result<Vec<ActionDetail>, StoreError> {
        let _ = (holder, until);
        self.claimable(now, connector, limit).await
    }

    /// How many actions are in each state, from one committed snapshot; states without
    /// actions are left out. Answered from the state index without decoding any action (what
    /// `GET /metrics` reports on every scrape, so it must not read the actions themselves).
    async fn count_by_state(&self) -> Result<BTreeMap<State, u64>, StoreError>;
}
