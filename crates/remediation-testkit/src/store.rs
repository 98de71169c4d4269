//! [`InMemoryStore`]: a faithful in-memory [`Store`] for engine tests.
//!
//! It keeps the contract a real store keeps, so tests that pass against it say something:
//! every change is a compare-and-set on the action's state, detail fields merge with
//! [`DetailUpdate::merge_into`] (the rule every store shares), audit entries are sealed into
//! a hash chain with [`remediation_audit::seal`], listing is keyset-paged on (creation time,
//! id), and limit slots are counted with the exact window rule of `remediation-limiter` (an
//! execution at `at` is admitted when fewer than `limit` slots lie in `(at - window, at]`).
//! One mutex stands in for the store transaction, so every method is serializable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use remediation_audit::ChainVerifier;
use remediation_core::store::{
    Campaign, CampaignProgress, CampaignStore, ConnectionHealth, ConnectionStore, Flash, ManagedConnection,
    SealedConnection, SessionIdHash, UiSession,
};
use remediation_core::{
    Action, ActionDetail, ActionFilter, ActionId, ActionLeases, ActionStore, Actor, ApiToken, AuditArchive, AuditBody,
    AuditFilter, AuditLog, AuditRecord, BeginOutcome, ChainHead, ChainReport, Clock, Credential, LeafHash, Lease,
    LeaseRequest, LeaseStore, LimitReached, LimitStore, Page, PageRequest, PendingChange, PendingStatus, Principal,
    PrincipalKind, PrincipalStore, Role, SafetyState, SafetyStore, SequencingBacklog, SessionStore, SettingsRecord,
    SlotRequest, State, StateChange, StoreError, StoredPublicKey, StoredTreeHead, TransitionRecord,
};
use remediation_core::{DeliveryStore, Fence, MarkAdvance, ParkedRecord, ReplayOutcome, Settlement, SinkMark};
use remediation_limiter::Window;
use time::OffsetDateTime;

/// An in-memory [`remediation_core::Store`]. Cheap to create; share it behind an `Arc`.
///
/// Leases are judged by the store's clock: the system clock, or the one given to
/// [`InMemoryStore::with_clock`].
#[derive(Debug)]
pub struct InMemoryStore {
    inner: Arc<Mutex<Inner>>,
    clock: StoreClock,
    /// The tenant this handle reads and writes.
    tenant: remediation_core::TenantId,
    /// What every tenant's handle shares: each tenant's data and the tenants created.
    shared: Arc<Shared>,
}

/// The tenants of one in-memory store.
#[derive(Debug, Default)]
struct Shared {
    /// Each tenant's data, once a handle for it was made.
    data: Mutex<BTreeMap<remediation_core::TenantId, Arc<Mutex<Inner>>>>,
    /// The tenants created (not the default one), by name.
    created: Mutex<BTreeMap<remediation_core::TenantId, remediation_core::Tenant>>,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::with_store_clock(StoreClock::default())
    }
}

/// The clock leases are judged by.
#[derive(Clone, Default)]
pub(crate) struct StoreClock(Option<Arc<dyn Clock>>);

impl StoreClock {
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.0.as_ref().map_or_else(OffsetDateTime::now_utc, |c| c.now())
    }
}

impl std::fmt::Debug for StoreClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "StoreClock(injected)" } else { "StoreClock(system)" })
    }
}

/// The lease state of one action or name: the last epoch granted, and the lease if held.
#[derive(Debug, Default, Clone)]
pub(crate) struct LeaseSlot {
    pub(crate) epoch: u64,
    pub(crate) held: Option<Lease>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// List order: (creation time, id), as every store lists.
    pub(crate) order: BTreeSet<(OffsetDateTime, ActionId)>,
    pub(crate) actions: HashMap<ActionId, ActionDetail>,
    /// Every transition of every action, in the order they were written.
    pub(crate) transitions: Vec<TransitionRecord>,
    /// The sealed audit chain.
    pub(crate) log: Vec<AuditRecord>,
    /// The leaf hash of each record of `log`, computed when it was sealed.
    pub(crate) leaves: Vec<LeafHash>,
    /// Signed tree heads, in the order stored.
    heads: Vec<StoredTreeHead>,
    /// Published keys, in the order published.
    keys: Vec<StoredPublicKey>,
    /// The last archived record (`seq`, `hash`): the chain resumes after it.
    archived: Option<(u64, String)>,
    /// Reserved slots per limit key, in reservation order, each with the action holding it
    /// (`None` for one reserved directly by a test).
    pub(crate) slots: BTreeMap<String, Vec<(OffsetDateTime, Option<ActionId>)>>,
    /// Safety switches and facts.
    pub(crate) safety: SafetyState,
    /// Every change to them, in order.
    pub(crate) settings_records: Vec<SettingsRecord>,
    pub(crate) principals: BTreeMap<String, Principal>,
    /// Tokens by name, with their hash.
    pub(crate) tokens: BTreeMap<String, (ApiToken, String)>,
    pub(crate) pending: Vec<PendingChange>,
    /// Leases on actions.
    pub(crate) action_leases: HashMap<ActionId, LeaseSlot>,
    /// Named leases of single-leader jobs.
    pub(crate) named_leases: BTreeMap<String, LeaseSlot>,
    /// The approval page's sessions, by the hash of their id.
    pub(crate) sessions: HashMap<SessionIdHash, UiSession>,
    /// While set ([`InMemoryStore::hold_sequencing`]), entries wait in `unsealed` until
    /// [`AuditLog::sequence_pending`], as between the passes of a background sequencer.
    hold: bool,
    /// Entries written but not sequenced, with when they were written.
    pub(crate) unsealed: Vec<(AuditBody, OffsetDateTime)>,
    /// How long each entry sealed by `sequence_pending` had waited, until taken.
    lags: Vec<std::time::Duration>,
    /// The store's clock, by which waits are measured.
    pub(crate) clock: StoreClock,
    /// Each sink's delivery mark, by name.
    pub(crate) marks: BTreeMap<String, SinkMark>,
    /// Records sinks refused, by (sink, seq).
    pub(crate) parked: BTreeMap<(String, u64), ParkedRecord>,
    /// The last handle given to an action.
    pub(crate) last_handle: u64,
    /// Campaigns by name, with their entries.
    pub(crate) campaigns: BTreeMap<String, (Campaign, Vec<serde_json::Value>)>,
    /// Managed connections by (tenant, id).
    pub(crate) connections: BTreeMap<(String, String), ManagedConnection>,
    /// Each tenant's connections revision.
    pub(crate) connection_revisions: BTreeMap<String, u64>,
    /// Documents by (collection, id).
    pub(crate) documents: BTreeMap<(String, String), remediation_core::Document>,
}

/// What the in-memory store reports as a backend failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InMemoryError(String);

pub(crate) fn backend(message: String) -> StoreError {
    StoreError::Backend { message: message.clone(), source: Box::new(InMemoryError(message)) }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that judges leases by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::with_store_clock(StoreClock(Some(clock)))
    }

    fn with_store_clock(clock: StoreClock) -> Self {
        let inner = Arc::new(Mutex::new(Inner { clock: clock.clone(), ..Inner::default() }));
        let shared = Arc::new(Shared::default());
        let tenant = remediation_core::TenantId::default_tenant();
        shared.data.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant.clone(), inner.clone());
        Self { inner, clock, tenant, shared }
    }

    /// This store's handle for `tenant`: its own data, the same clock and tenants.
    pub fn scoped(&self, tenant: &remediation_core::TenantId) -> Self {
        let inner = self
            .shared
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Inner { clock: self.clock.clone(), ..Inner::default() })))
            .clone();
        Self { inner, clock: self.clock.clone(), tenant: tenant.clone(), shared: self.shared.clone() }
    }

    /// From now on (`true`), audit entries are written but not sequenced until
    /// [`AuditLog::sequence_pending`] seals them, as in a store whose sequencer runs in the
    /// background; reads see sequenced records only. `false` seals as it writes again (what
    /// waits still waits for `sequence_pending`).
    pub fn hold_sequencing(&self, hold: bool) {
        self.lock().hold = hold;
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `detail` into the store as it is, without a transition or audit record: for tests
    /// that start from a state the engine would take several steps to reach. Replaces an
    /// action with the same id.
    pub fn seed(&self, detail: ActionDetail) {
        let mut inner = self.lock();
        let id = detail.action.id;
        if let Some(old) = inner.actions.insert(id, detail.clone()) {
            inner.order.remove(&(old.action.created_at, id));
        }
        inner.order.insert((detail.action.created_at, id));
    }

    /// The detail of `id`, if it exists (a synchronous [`ActionStore::get`]).
    pub fn detail(&self, id: ActionId) -> Option<ActionDetail> {
        self.lock().actions.get(&id).cloned()
    }

    /// Every transition of every action, in the order they were written.
    pub fn audit(&self) -> Vec<TransitionRecord> {
        self.lock().transitions.clone()
    }

    /// The instants of the slots reserved under `key`, in reservation order.
    pub fn reservations(&self, key: &str) -> Vec<OffsetDateTime> {
        self.lock().slots.get(key).map(|v| v.iter().map(|(t, _)| *t).collect()).unwrap_or_default()
    }

    /// Reserves a slot under `key` at `at` directly, as if an execution had taken it.
    pub fn reserve(&self, key: &str, at: OffsetDateTime) {
        self.lock().slots.entry(key.to_owned()).or_default().push((at, None));
    }

    /// Every change to the safety state, in order (the settings part of the audit trail).
    pub fn settings_records(&self) -> Vec<SettingsRecord> {
        self.lock().settings_records.clone()
    }

    /// Replaces the audit record with `seq` as it is, without resealing: for tests that check
    /// verification finds tampering.
    pub fn tamper_audit(&self, seq: u64, edit: impl FnOnce(&mut AuditRecord)) {
        let mut inner = self.lock();
        if let Some(r) = inner.log.iter_mut().find(|r| r.seq == seq) {
            edit(r);
        }
    }
}

impl Inner {
    /// Slots under `slot.key` inside the window ending (inclusively) at `at`.
    fn used(&self, slot: &SlotRequest, at: OffsetDateTime) -> u32 {
        let start = Window::of(slot).start(at);
        let n = self.slots.get(&slot.key).map_or(0, |v| v.iter().filter(|(t, _)| *t > start && *t <= at).count());
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn first_full(&self, slots: &[SlotRequest], at: OffsetDateTime) -> Option<LimitReached> {
        slots.iter().find_map(|slot| {
            let used = self.used(slot, at);
            (!Window::of(slot).admits(used)).then(|| LimitReached::new(slot.clone(), used, self.aging(slot, at, used)))
        })
    }

    /// The time of the slot inside the window that must age out for it to admit one more.
    fn aging(&self, slot: &SlotRequest, at: OffsetDateTime, used: u32) -> Option<OffsetDateTime> {
        let k = usize::try_from(LimitReached::aging_index(slot, used)?).ok()?;
        let start = Window::of(slot).start(at);
        let mut inside: Vec<OffsetDateTime> = self
            .slots
            .get(&slot.key)
            .map(|v| v.iter().map(|(t, _)| *t).filter(|t| *t > start && *t <= at).collect())
            .unwrap_or_default();
        inside.sort();
        inside.get(k).copied()
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
        if let Some(fence) = change.fence {
            let current = self.action_leases.get(&id).map_or(0, |l| l.epoch);
            if current != fence {
                return Err(StoreError::StaleLease { id, fence, current });
            }
        }
        Ok(())
    }

    /// The lease step of a written change: grant the requested lease, or end the current one
    /// when the action leaves `executing` and `rolling_back`.
    fn lease_step(&mut self, change: &StateChange, now: OffsetDateTime) {
        let slot = self.action_leases.entry(change.record.action_id).or_default();
        if let Some(request) = &change.lease {
            let lease = Lease::granted(request, slot.epoch, now);
            slot.epoch = lease.epoch;
            slot.held = Some(lease);
        } else if !leased_state(change.record.to) {
            slot.held = None;
        }
    }

    /// Seals `body` onto the chain's head and appends it; while sequencing is held, leaves it
    /// waiting instead.
    fn append(&mut self, body: AuditBody) -> Result<(), StoreError> {
        if self.hold || !self.unsealed.is_empty() {
            let now = self.clock.now();
            self.unsealed.push((body, now));
            return Ok(());
        }
        self.seal(body)
    }

    /// Seals `body` onto the chain's head and appends it.
    fn seal(&mut self, body: AuditBody) -> Result<(), StoreError> {
        let head = self.log.last().map(|r| ChainHead { seq: r.seq, hash: r.hash.clone() });
        let record = remediation_audit::seal(head.as_ref(), body)
            .map_err(|e| backend(format!("cannot seal the audit record: {e}")))?;
        let leaf = remediation_audit::merkle::record_leaf_hash(&record)
            .map_err(|e| backend(format!("cannot hash the audit record into the log: {e}")))?;
        self.leaves.push(leaf.0);
        self.log.push(record);
        Ok(())
    }

    /// Applies a checked change: state, timestamps, detail fields, transition, audit entry.
    fn write(&mut self, change: &StateChange) -> Result<Action, StoreError> {
        let record = &change.record;
        let id = record.action_id;
        let detail = self.actions.get(&id).cloned().ok_or(StoreError::NotFound(id))?;
        let detail = change.applied_to(detail);
        let action = detail.action.clone();
        self.actions.insert(id, detail);
        if record.from == Some(State::Executing) && record.to == State::Approved {
            // A requeue: nothing was written, so the action's slots go back to the windows.
            for held in self.slots.values_mut() {
                held.retain(|(_, holder)| *holder != Some(id));
            }
        }
        self.transitions.push(record.clone());
        self.append(AuditBody::Transition(record.clone()))?;
        Ok(action)
    }

    fn settings(&mut self, record: SettingsRecord) -> Result<(), StoreError> {
        self.settings_records.push(record.clone());
        self.append(AuditBody::Settings(record))
    }

    /// Appends a principal, token or pending-change record (not a safety-state change).
    fn noted(&mut self, record: SettingsRecord) -> Result<(), StoreError> {
        self.append(AuditBody::Settings(record))
    }

    fn live_principal(&self, name: &str) -> Result<Principal, StoreError> {
        match self.principals.get(name) {
            Some(p) if p.revoked_at.is_none() => Ok(p.clone()),
            Some(_) => Err(backend(format!("principal `{name}` is revoked"))),
            None => Err(backend(format!("no principal `{name}`"))),
        }
    }
}

/// The audit record of a principal, token or pending change step.
fn note(event: &str, actor: &Actor, at: OffsetDateTime, comment: String, value: serde_json::Value) -> SettingsRecord {
    SettingsRecord {
        setting_event: event.to_owned(),
        actor: actor.name.clone(),
        credential: actor.credential.clone(),
        at,
        comment: Some(comment),
        previous: serde_json::Value::Null,
        value,
        action_id: None,
    }
}

#[async_trait]
impl ActionStore for InMemoryStore {
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<Option<u64>, StoreError> {
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
        inner.append(AuditBody::Transition(record.clone()))?;
        inner.last_handle += 1;
        let mut detail = detail.clone();
        detail.action.handle = Some(inner.last_handle);
        inner.actions.insert(id, detail.clone());
        inner.order.insert((detail.action.created_at, id));
        inner.transitions.push(record.clone());
        Ok(detail.action.handle)
    }

    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError> {
        self.detail(id).ok_or(StoreError::NotFound(id))
    }

    async fn action_by_handle(&self, handle: u64) -> Result<Option<ActionId>, StoreError> {
        Ok(self.lock().actions.values().find(|d| d.action.handle == Some(handle)).map(|d| d.action.id))
    }

    async fn list(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, StoreError> {
        let inner = self.lock();
        let start = match page.after {
            None => None,
            Some(after) => match inner.actions.get(&after) {
                Some(d) => Some((d.action.created_at, after)),
                // An unknown cursor yields nothing.
                None => return Ok(Page { items: Vec::new(), next: None }),
            },
        };
        let after = start.map_or(Bound::Unbounded, Bound::Excluded);
        let mut items: Vec<Action> = inner
            .order
            .range((after, Bound::Unbounded))
            .filter_map(|(_, id)| inner.actions.get(id))
            .map(|d| &d.action)
            .filter(|a| filter.matches(a))
            .take(page.limit.saturating_add(1))
            .cloned()
            .collect();
        let next = if items.len() > page.limit {
            items.truncate(page.limit);
            items.last().map(|a| a.id)
        } else {
            None
        };
        Ok(Page { items, next })
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
        let action = inner.write(change)?;
        inner.lease_step(change, self.clock.now());
        Ok(action)
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
            inner.slots.entry(slot.key.clone()).or_default().push((at, Some(change.record.action_id)));
        }
        let action = inner.write(change)?;
        inner.lease_step(change, self.clock.now());
        Ok(BeginOutcome::Started(action))
    }

    async fn claimable(
        &self,
        now: OffsetDateTime,
        connector: Option<String>,
        limit: usize,
    ) -> Result<Vec<ActionDetail>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .order
            .iter()
            .filter_map(|(_, id)| inner.actions.get(id))
            .filter(|d| d.action.state == State::Approved)
            .filter(|d| connector.as_ref().is_none_or(|c| &d.action.connector == c))
            .filter(|d| d.not_before.is_none_or(|t| t <= now))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn count_by_state(&self) -> Result<std::collections::BTreeMap<State, u64>, StoreError> {
        let inner = self.lock();
        let mut counts = std::collections::BTreeMap::new();
        for d in inner.actions.values() {
            *counts.entry(d.action.state).or_insert(0) += 1;
        }
        Ok(counts)
    }

    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<ActionDetail>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<(OffsetDateTime, ActionId)> =
            inner.actions.values().filter_map(|d| d.due_at().filter(|t| *t < now).map(|t| (t, d.action.id))).collect();
        due.sort();
        Ok(due.into_iter().take(limit).filter_map(|(_, id)| inner.actions.get(&id).cloned()).collect())
    }
}

/// The states an action holds a lease in.
fn leased_state(state: remediation_core::State) -> bool {
    matches!(state, remediation_core::State::Executing | remediation_core::State::RollingBack)
}

/// Renews `lease` in `slot` when it is still the held one and live at `now`.
fn renew_in(
    slot: Option<&mut LeaseSlot>,
    lease: &Lease,
    ttl: std::time::Duration,
    now: OffsetDateTime,
) -> Option<Lease> {
    let held = slot?.held.as_mut()?;
    if held.holder != lease.holder || held.epoch != lease.epoch || !held.is_live(now) {
        return None;
    }
    held.expires_at = remediation_core::store::expiry(now, ttl);
    Some(held.clone())
}

#[async_trait]
impl ActionLeases for InMemoryStore {
    async fn lease(&self, id: ActionId) -> Result<Option<Lease>, StoreError> {
        let inner = self.lock();
        if !inner.actions.contains_key(&id) {
            return Err(StoreError::NotFound(id));
        }
        Ok(inner.action_leases.get(&id).and_then(|l| l.held.clone()))
    }

    async fn renew_lease(&self, id: ActionId, lease: &Lease, ttl: std::time::Duration) -> Result<Lease, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        renew_in(inner.action_leases.get_mut(&id), lease, ttl, now)
            .ok_or_else(|| StoreError::LeaseLost { what: format!("action {id}") })
    }

    async fn take_over_expired(
        &self,
        request: &LeaseRequest,
        limit: usize,
    ) -> Result<Vec<(ActionDetail, Lease)>, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let mut expired: Vec<(OffsetDateTime, ActionId)> = inner
            .actions
            .values()
            .filter(|d| leased_state(d.action.state))
            .filter_map(|d| {
                let held = inner.action_leases.get(&d.action.id).and_then(|l| l.held.as_ref());
                match held {
                    Some(l) if l.is_live(now) => None,
                    Some(l) => Some((l.expires_at, d.action.id)),
                    None => Some((OffsetDateTime::UNIX_EPOCH, d.action.id)),
                }
            })
            .collect();
        expired.sort();
        let mut taken = Vec::new();
        for (_, id) in expired.into_iter().take(limit) {
            let slot = inner.action_leases.entry(id).or_default();
            let lease = Lease::granted(request, slot.epoch, now);
            slot.epoch = lease.epoch;
            slot.held = Some(lease.clone());
            if let Some(detail) = inner.actions.get(&id) {
                taken.push((detail.clone(), lease));
            }
        }
        Ok(taken)
    }
}

#[async_trait]
impl LeaseStore for InMemoryStore {
    async fn acquire_lease(&self, name: &str, request: &LeaseRequest) -> Result<Option<Lease>, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let slot = inner.named_leases.entry(name.to_owned()).or_default();
        if slot.held.as_ref().is_some_and(|l| l.is_live(now) && l.holder != request.holder) {
            return Ok(None);
        }
        let lease = Lease::granted(request, slot.epoch, now);
        slot.epoch = lease.epoch;
        slot.held = Some(lease.clone());
        Ok(Some(lease))
    }

    async fn renew_named_lease(
        &self,
        name: &str,
        lease: &Lease,
        ttl: std::time::Duration,
    ) -> Result<Lease, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        renew_in(inner.named_leases.get_mut(name), lease, ttl, now)
            .ok_or_else(|| StoreError::LeaseLost { what: format!("lease `{name}`") })
    }

    async fn release_lease(&self, name: &str, lease: &Lease) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(slot) = inner.named_leases.get_mut(name)
            && slot.held.as_ref().is_some_and(|l| l.holder == lease.holder && l.epoch == lease.epoch)
        {
            slot.held = None;
        }
        Ok(())
    }
}

impl Inner {
    /// Refuses a write fenced by a named lease that is no longer the stored, live one.
    fn check_fence(&self, fence: Option<&Fence>, now: OffsetDateTime) -> Result<(), StoreError> {
        let Some(fence) = fence else { return Ok(()) };
        let held = self.named_leases.get(&fence.name).and_then(|slot| slot.held.as_ref());
        match held {
            Some(l) if l.holder == fence.holder && l.epoch == fence.epoch && l.is_live(now) => Ok(()),
            _ => Err(StoreError::LeaseLost { what: format!("lease `{}`", fence.name) }),
        }
    }
}

#[async_trait]
impl DeliveryStore for InMemoryStore {
    async fn register_sink(&self, sink: &str, start: u64, at: OffsetDateTime) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mark = inner.marks.entry(sink.to_owned()).or_insert_with(|| SinkMark {
            sink: sink.to_owned(),
            delivered_through: start,
            updated_at: at,
        });
        Ok(mark.delivered_through)
    }

    async fn sink_marks(&self) -> Result<Vec<SinkMark>, StoreError> {
        Ok(self.lock().marks.values().cloned().collect())
    }

    async fn advance_sink(&self, advance: &MarkAdvance) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.check_fence(advance.fence.as_ref(), now)?;
        let found = inner.marks.get(&advance.sink).map(|m| m.delivered_through);
        if found != Some(advance.from) {
            return Err(StoreError::DeliveryConflict {
                sink: advance.sink.clone(),
                expected: advance.from,
                found: found.unwrap_or(0),
            });
        }
        if advance.to <= advance.from || advance.parked.iter().any(|(seq, _)| *seq <= advance.from || *seq > advance.to)
        {
            return Err(backend(format!(
                "sink `{}`: a mark moves forward from {} and parks only records it passes",
                advance.sink, advance.from
            )));
        }
        for (seq, reason) in &advance.parked {
            let record = ParkedRecord {
                sink: advance.sink.clone(),
                seq: *seq,
                reason: reason.clone(),
                parked_at: advance.at,
                replay: false,
            };
            inner.parked.insert((advance.sink.clone(), *seq), record);
        }
        inner.marks.insert(
            advance.sink.clone(),
            SinkMark { sink: advance.sink.clone(), delivered_through: advance.to, updated_at: advance.at },
        );
        Ok(())
    }

    async fn parked(&self, sink: Option<String>) -> Result<Vec<ParkedRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner.parked.values().filter(|p| sink.as_ref().is_none_or(|s| &p.sink == s)).cloned().collect())
    }

    async fn request_replay(&self, sink: &str, seqs: Option<Vec<u64>>) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut marked = 0;
        for parked in inner.parked.values_mut().filter(|p| p.sink == sink) {
            if seqs.as_ref().is_none_or(|seqs| seqs.contains(&parked.seq)) {
                parked.replay = true;
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn settle_parked(&self, settlement: &Settlement) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.check_fence(settlement.fence.as_ref(), now)?;
        let key = (settlement.sink.clone(), settlement.seq);
        match &settlement.outcome {
            ReplayOutcome::Delivered => {
                inner.parked.remove(&key);
            }
            ReplayOutcome::RefusedAgain(reason) => {
                if let Some(parked) = inner.parked.get_mut(&key) {
                    parked.reason.clone_from(reason);
                    parked.parked_at = settlement.at;
                    parked.replay = false;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AuditLog for InMemoryStore {
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .log
            .iter()
            .filter(|r| after_seq.is_none_or(|a| r.seq > a))
            .filter(|r| filter.since.is_none_or(|s| r.body.at() >= s))
            .filter(|r| filter.action.is_none_or(|a| r.body.action_id() == Some(a)))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        let inner = self.lock();
        let mut verifier = match &inner.archived {
            Some((seq, hash)) => ChainVerifier::resuming(*seq, hash.clone()),
            None => ChainVerifier::new(),
        };
        for r in &inner.log {
            verifier.push(r);
        }
        Ok(verifier.finish())
    }

    async fn adopt_audit_chain(&self) -> Result<ChainReport, StoreError> {
        Err(StoreError::Unsupported { what: "audit checkpoints" })
    }

    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
        self.lock().settings(record.clone())
    }

    async fn audit_size(&self) -> Result<u64, StoreError> {
        Ok(self.lock().leaves.len() as u64)
    }

    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<LeafHash>, StoreError> {
        let inner = self.lock();
        let size = inner.leaves.len() as u64;
        match (usize::try_from(start), usize::try_from(end)) {
            (Ok(s), Ok(e)) if start <= end && end <= size => Ok(inner.leaves[s..e].to_vec()),
            _ => Err(StoreError::AuditLogConflict {
                message: format!("leaves {start}..{end} were asked for, but the log has {size} leaves"),
            }),
        }
    }

    async fn store_tree_head(&self, head: &StoredTreeHead, previous_size: Option<u64>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let latest = inner.heads.iter().map(|h| h.tree_size).max();
        if latest != previous_size {
            return Err(StoreError::AuditLogConflict {
                message: format!(
                    "the latest stored head is of {latest:?} records, not {previous_size:?}: another signer stored one meanwhile"
                ),
            });
        }
        if latest.is_some_and(|l| head.tree_size < l) || head.tree_size > inner.leaves.len() as u64 {
            return Err(StoreError::AuditLogConflict {
                message: format!("a tree head of {} records does not fit the log", head.tree_size),
            });
        }
        inner.heads.push(head.clone());
        Ok(())
    }

    async fn latest_tree_head(&self) -> Result<Option<StoredTreeHead>, StoreError> {
        // The largest, and of those the last stored.
        let inner = self.lock();
        let max = inner.heads.iter().map(|h| h.tree_size).max();
        Ok(inner.heads.iter().rev().find(|h| Some(h.tree_size) == max).cloned())
    }

    async fn tree_head_at(&self, tree_size: u64) -> Result<Option<StoredTreeHead>, StoreError> {
        Ok(self.lock().heads.iter().rev().find(|h| h.tree_size == tree_size).cloned())
    }

    async fn publish_key(&self, key: &StoredPublicKey) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match inner.keys.iter().find(|k| k.key_id == key.key_id) {
            Some(k) if k.public_key == key.public_key => Ok(()),
            Some(_) => Err(StoreError::AuditLogConflict {
                message: format!("another public key is already published under the id {}", key.key_id),
            }),
            None => {
                inner.keys.push(key.clone());
                Ok(())
            }
        }
    }

    async fn published_keys(&self) -> Result<Vec<StoredPublicKey>, StoreError> {
        Ok(self.lock().keys.clone())
    }

    async fn archive_audit(&self, archive: &AuditArchive) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let conflict = |message: String| StoreError::AuditLogConflict { message };
        let stored = inner.log.iter().find(|r| r.seq == archive.through_seq).map(|r| r.hash.clone());
        if stored.as_deref() != Some(archive.last_hash.as_str()) {
            return Err(conflict(format!("record {} is not stored with the archive's last hash", archive.through_seq)));
        }
        if inner.log.last().is_none_or(|r| r.seq <= archive.through_seq) {
            return Err(conflict("the newest audit record is never archived".to_owned()));
        }
        if !inner.heads.iter().any(|h| h.tree_size >= archive.through_seq) {
            return Err(conflict(format!("no stored signed tree head covers record {}", archive.through_seq)));
        }
        let before = inner.log.len();
        inner.log.retain(|r| r.seq > archive.through_seq);
        inner.archived = Some((archive.through_seq, archive.last_hash.clone()));
        Ok((before - inner.log.len()) as u64)
    }

    /// Every change is sealed as it is written, unless sequencing is held
    /// ([`InMemoryStore::hold_sequencing`]): then this seals what waits.
    async fn sequence_pending(&self) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let now = inner.clock.now();
        let waiting = std::mem::take(&mut inner.unsealed);
        let n = waiting.len() as u64;
        for (body, written) in waiting {
            inner.seal(body)?;
            inner.lags.push((now - written).try_into().unwrap_or_default());
        }
        Ok(n)
    }

    async fn unsequenced(&self) -> Result<u64, StoreError> {
        Ok(self.lock().unsealed.len() as u64)
    }

    async fn sequencing_backlog(&self) -> Result<SequencingBacklog, StoreError> {
        let inner = self.lock();
        let now = inner.clock.now();
        Ok(SequencingBacklog {
            entries: inner.unsealed.len() as u64,
            oldest_age: inner.unsealed.first().map(|(_, written)| (now - *written).try_into().unwrap_or_default()),
        })
    }

    fn take_sequencing_lags(&self) -> Vec<std::time::Duration> {
        std::mem::take(&mut self.lock().lags)
    }
}

#[async_trait]
impl SafetyStore for InMemoryStore {
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
        inner.settings(record.clone())?;
        inner.safety = new.clone();
        Ok(())
    }
}

#[async_trait]
impl LimitStore for InMemoryStore {
    async fn check_limits(
        &self,
        slots: &[SlotRequest],
        at: OffsetDateTime,
    ) -> Result<Option<LimitReached>, StoreError> {
        Ok(self.lock().first_full(slots, at))
    }

    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let inner = self.lock();
        let mut all: Vec<(String, OffsetDateTime)> = inner
            .slots
            .iter()
            .flat_map(|(k, ts)| ts.iter().filter(|(t, _)| *t >= since).map(move |(t, _)| (k.clone(), *t)))
            .collect();
        all.sort_by_key(|(_, t)| *t);
        Ok(all)
    }
}

#[async_trait]
impl CampaignStore for InMemoryStore {
    async fn create_campaign(&self, campaign: &Campaign, entries: &[serde_json::Value]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.campaigns.contains_key(&campaign.name) {
            return Err(StoreError::CampaignConflict {
                message: format!("a campaign named `{}` exists already", campaign.name),
            });
        }
        inner.campaigns.insert(campaign.name.clone(), (campaign.clone(), entries.to_vec()));
        Ok(())
    }

    async fn campaign(&self, name: &str) -> Result<Option<Campaign>, StoreError> {
        Ok(self.lock().campaigns.get(name).map(|(c, _)| c.clone()))
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let mut all: Vec<Campaign> = self.lock().campaigns.values().map(|(c, _)| c.clone()).collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.name.cmp(&b.name)));
        Ok(all)
    }

    async fn campaign_entries(
        &self,
        name: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
        let inner = self.lock();
        let (_, entries) = inner.campaigns.get(name).ok_or_else(|| StoreError::CampaignNotFound(name.to_owned()))?;
        Ok((from..)
            .zip(entries.iter().skip(usize::try_from(from).unwrap_or(usize::MAX)).take(limit).cloned())
            .collect())
    }

    async fn record_campaign_progress(&self, name: &str, progress: &CampaignProgress) -> Result<Campaign, StoreError> {
        let mut inner = self.lock();
        let (stored, _) = inner.campaigns.get_mut(name).ok_or_else(|| StoreError::CampaignNotFound(name.to_owned()))?;
        let next = remediation_core::store::advance_campaign(stored, progress)?;
        *stored = next.clone();
        Ok(next)
    }
}

#[async_trait]
impl SessionStore for InMemoryStore {
    async fn create_session(&self, id: &SessionIdHash, session: &UiSession) -> Result<(), StoreError> {
        self.lock().sessions.insert(id.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id: &SessionIdHash, now: OffsetDateTime) -> Result<Option<UiSession>, StoreError> {
        Ok(self.lock().sessions.get(id).filter(|s| now < s.expires_at).cloned())
    }

    async fn set_flash(&self, id: &SessionIdHash, flash: &Flash) -> Result<bool, StoreError> {
        Ok(self.lock().sessions.get_mut(id).map(|s| s.flash = Some(flash.clone())).is_some())
    }

    async fn take_flash(&self, id: &SessionIdHash) -> Result<Option<Flash>, StoreError> {
        Ok(self.lock().sessions.get_mut(id).and_then(|s| s.flash.take()))
    }

    async fn delete_session(&self, id: &SessionIdHash) -> Result<bool, StoreError> {
        Ok(self.lock().sessions.remove(id).is_some())
    }

    async fn prune_sessions(&self, now: OffsetDateTime, keep: usize) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| now < s.expires_at);
        if inner.sessions.len() > keep {
            // The ones that expire first go, as the other stores order them (ties by id hash).
            let mut by_expiry: Vec<(OffsetDateTime, SessionIdHash)> =
                inner.sessions.iter().map(|(k, s)| (s.expires_at, k.clone())).collect();
            by_expiry.sort();
            let excess = inner.sessions.len() - keep;
            for (_, id) in by_expiry.into_iter().take(excess) {
                inner.sessions.remove(&id);
            }
        }
        Ok(u64::try_from(before - inner.sessions.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl PrincipalStore for InMemoryStore {
    async fn create_principal(
        &self,
        name: &str,
        kind: PrincipalKind,
        role: Role,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError> {
        let mut inner = self.lock();
        if role == Role::System {
            return Err(backend("the system role is never granted".to_owned()));
        }
        if inner.principals.contains_key(name) {
            return Err(backend(format!("principal `{name}` exists")));
        }
        let p = Principal { name: name.to_owned(), kind, role: Some(role), created_at: at, revoked_at: None };
        let value = serde_json::json!({"principal": name, "kind": kind, "role": role});
        inner.noted(note("principal_created", actor, at, format!("principal `{name}`"), value))?;
        inner.principals.insert(name.to_owned(), p.clone());
        Ok(p)
    }

    async fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        Ok(self.lock().principals.get(name).cloned())
    }

    async fn list_principals(&self) -> Result<Vec<Principal>, StoreError> {
        Ok(self.lock().principals.values().cloned().collect())
    }

    async fn set_principal_role(
        &self,
        name: &str,
        expected: Role,
        role: Role,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError> {
        let mut inner = self.lock();
        let p = inner.live_principal(name)?;
        if role == Role::System || p.role != Some(expected) {
            return Err(backend(format!("the role of `{name}` is not {expected}")));
        }
        let value = serde_json::json!({"principal": name, "role": role});
        inner.noted(note("principal_role_changed", actor, at, comment.to_owned(), value))?;
        let p = Principal { role: Some(role), ..p };
        inner.principals.insert(name.to_owned(), p.clone());
        Ok(p)
    }

    async fn revoke_principal(
        &self,
        name: &str,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.live_principal(name).is_err() {
            return Ok(false);
        }
        inner.noted(note(
            "principal_revoked",
            actor,
            at,
            comment.to_owned(),
            serde_json::json!({"principal": name}),
        ))?;
        if let Some(p) = inner.principals.get_mut(name) {
            p.revoked_at = Some(at);
        }
        for (t, _) in inner.tokens.values_mut() {
            if t.principal == name && t.revoked_at.is_none() {
                t.revoked_at = Some(at);
            }
        }
        Ok(true)
    }

    async fn create_token(
        &self,
        principal: &str,
        name: &str,
        token_hash: &str,
        expires_at: OffsetDateTime,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<ApiToken, StoreError> {
        let mut inner = self.lock();
        inner.live_principal(principal)?;
        if let Some((t, _)) = inner.tokens.get(name)
            && (t.principal != principal || (t.revoked_at.is_none() && t.expires_at > at))
        {
            return Err(backend(format!("a token `{name}` exists")));
        }
        let token = ApiToken {
            name: name.to_owned(),
            principal: principal.to_owned(),
            created_at: at,
            expires_at,
            revoked_at: None,
            tenants: Vec::new(),
        };
        let value = serde_json::json!({"principal": principal, "token": name});
        inner.noted(note("token_created", actor, at, format!("API token `{name}` of `{principal}`"), value))?;
        inner.tokens.insert(name.to_owned(), (token.clone(), token_hash.to_owned()));
        Ok(token)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        Ok(self.lock().tokens.values().map(|(t, _)| t.clone()).collect())
    }

    async fn revoke_token(&self, name: &str, actor: &Actor, at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let owner = match inner.tokens.get(name) {
            Some((t, _)) if t.revoked_at.is_none() => t.principal.clone(),
            _ => return Ok(false),
        };
        let value = serde_json::json!({"principal": owner, "token": name});
        inner.noted(note("token_revoked", actor, at, format!("API token `{name}` of `{owner}`"), value))?;
        if let Some((t, _)) = inner.tokens.get_mut(name) {
            t.revoked_at = Some(at);
        }
        Ok(true)
    }

    async fn credential_by_hash(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Credential>, StoreError> {
        let live = |inner: &Inner| {
            inner
                .tokens
                .values()
                .find(|(t, h)| h == token_hash && t.revoked_at.is_none() && t.expires_at > now)
                .map(|(t, _)| t.clone())
        };
        let here = live(&self.lock());
        // A token of another tenant that reaches this one: the principal's role here.
        let token = match here {
            Some(t) => Some(t),
            None => {
                let others: Vec<(remediation_core::TenantId, Arc<Mutex<Inner>>)> = self
                    .shared
                    .data
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .filter(|(t, _)| **t != self.tenant)
                    .map(|(t, i)| (t.clone(), i.clone()))
                    .collect();
                others.iter().find_map(|(_, inner)| {
                    live(&inner.lock().unwrap_or_else(PoisonError::into_inner))
                        .filter(|t| t.tenants.iter().any(|n| n == self.tenant.as_str()))
                })
            }
        };
        let inner = self.lock();
        Ok(token.and_then(|t| {
            let p = inner.principals.get(&t.principal).filter(|p| p.revoked_at.is_none())?;
            Some(Credential { token: t.name.clone(), principal: p.name.clone(), role: p.role? })
        }))
    }

    async fn set_token_tenants(
        &self,
        name: &str,
        tenants: &[remediation_core::TenantId],
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let owner = match self.lock().tokens.get(name) {
            Some((t, _)) if t.revoked_at.is_none() => t.principal.clone(),
            _ => return Ok(false),
        };
        let mut names: Vec<String> = tenants.iter().filter(|t| **t != self.tenant).map(ToString::to_string).collect();
        names.sort();
        names.dedup();
        for tenant in tenants.iter().filter(|t| **t != self.tenant) {
            let there = self.scoped(tenant);
            let held = there.lock().principals.get(&owner).is_some_and(|p| p.role.is_some());
            if !held {
                return Err(backend(format!("principal `{owner}` holds no role in tenant `{tenant}`")));
            }
        }
        let mut inner = self.lock();
        let value = serde_json::json!({"principal": owner, "token": name, "tenants": names});
        inner.noted(note("token_tenants_set", actor, at, format!("API token `{name}` of `{owner}`"), value))?;
        if let Some((t, _)) = inner.tokens.get_mut(name) {
            t.tenants = names;
        }
        Ok(true)
    }

    async fn propose_change(&self, change: &PendingChange, proposer: &Actor) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.pending.iter().any(|c| c.id == change.id) {
            return Err(backend(format!("pending change {} exists", change.id)));
        }
        let value = serde_json::json!({"pending_change": change.id, "status": change.status});
        inner.noted(note("change_proposed", proposer, change.proposed_at, change.summary.clone(), value))?;
        inner.pending.push(change.clone());
        Ok(())
    }

    async fn pending_change(&self, id: &str) -> Result<Option<PendingChange>, StoreError> {
        Ok(self.lock().pending.iter().find(|c| c.id == id).cloned())
    }

    async fn pending_changes(&self, status: Option<PendingStatus>) -> Result<Vec<PendingChange>, StoreError> {
        let mut all: Vec<PendingChange> =
            self.lock().pending.iter().filter(|c| status.is_none_or(|s| c.status == s)).cloned().collect();
        all.sort_by(|a, b| (a.proposed_at, &a.id).cmp(&(b.proposed_at, &b.id)));
        Ok(all)
    }

    async fn overdue_changes(&self, now: OffsetDateTime) -> Result<Vec<PendingChange>, StoreError> {
        let mut all = self.pending_changes(Some(PendingStatus::Pending)).await?;
        all.retain(|c| c.expires_at <= now);
        Ok(all)
    }

    async fn close_change(
        &self,
        id: &str,
        to: PendingStatus,
        actor: &Actor,
        note_text: Option<String>,
        at: OffsetDateTime,
    ) -> Result<PendingChange, StoreError> {
        let mut inner = self.lock();
        let Some(current) = inner.pending.iter().find(|c| c.id == id).cloned() else {
            return Err(backend(format!("no pending change {id}")));
        };
        if current.status != PendingStatus::Pending {
            return Err(backend(format!("pending change {id} is {}", current.status)));
        }
        let closed = PendingChange {
            status: to,
            decided_by: Some(actor.name.clone()),
            decided_credential: actor.credential.clone(),
            decided_at: Some(at),
            note: note_text,
            ..current
        };
        let value = serde_json::json!({"pending_change": id, "status": to});
        inner.noted(note(to.event(), actor, at, closed.summary.clone(), value))?;
        if let Some(c) = inner.pending.iter_mut().find(|c| c.id == id) {
            *c = closed.clone();
        }
        Ok(closed)
    }
}

#[async_trait]
impl remediation_core::TenantStore for InMemoryStore {
    fn tenant_id(&self) -> remediation_core::TenantId {
        self.tenant.clone()
    }

    fn for_tenant(&self, tenant: &remediation_core::TenantId) -> Arc<dyn remediation_core::Store> {
        Arc::new(self.scoped(tenant))
    }

    async fn create_tenant(
        &self,
        tenant: &remediation_core::Tenant,
        record: &SettingsRecord,
    ) -> Result<(), StoreError> {
        if tenant.name.is_default() {
            return Err(StoreError::TenantConflict(tenant.name.to_string()));
        }
        {
            let mut created = self.shared.created.lock().unwrap_or_else(PoisonError::into_inner);
            if created.contains_key(&tenant.name) {
                return Err(StoreError::TenantConflict(tenant.name.to_string()));
            }
            created.insert(tenant.name.clone(), tenant.clone());
        }
        // The record opens the new tenant's own audit log.
        let store = self.scoped(&tenant.name);
        store.lock().append(AuditBody::Settings(record.clone()))?;
        Ok(())
    }

    async fn tenant(&self, name: &remediation_core::TenantId) -> Result<Option<remediation_core::Tenant>, StoreError> {
        if name.is_default() {
            return Ok(Some(remediation_core::store::default_tenant_record()));
        }
        Ok(self.shared.created.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned())
    }

    async fn tenants(&self) -> Result<Vec<remediation_core::Tenant>, StoreError> {
        let mut all = vec![remediation_core::store::default_tenant_record()];
        all.extend(self.shared.created.lock().unwrap_or_else(PoisonError::into_inner).values().cloned());
        Ok(all)
    }
}

impl Inner {
    fn bump_connections(&mut self, tenant: &str) {
        *self.connection_revisions.entry(tenant.to_owned()).or_default() += 1;
    }

    fn stored_connection(&self, tenant: &str, id: &str) -> Result<ManagedConnection, StoreError> {
        self.connections
            .get(&(tenant.to_owned(), id.to_owned()))
            .cloned()
            .ok_or_else(|| StoreError::ConnectionNotFound(id.to_owned()))
    }
}

impl InMemoryStore {
    /// Puts `connection` into the store under another `tenant`, as a second tenant's handle
    /// would, without an audit record: for tests of tenant isolation.
    pub fn seed_connection(&self, tenant: &str, connection: ManagedConnection) {
        let mut inner = self.lock();
        inner.connections.insert((tenant.to_owned(), connection.id.clone()), connection);
        inner.bump_connections(tenant);
    }
}

#[async_trait]
impl ConnectionStore for InMemoryStore {
    fn connection_tenant(&self) -> String {
        self.tenant.to_string()
    }

    async fn create_connection(
        &self,
        connection: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError> {
        let mut inner = self.lock();
        let key = (self.tenant.to_string(), connection.id.clone());
        if inner.connections.contains_key(&key) {
            return Err(StoreError::ConnectionConflict {
                message: format!("a connection `{}` exists already; choose another id", connection.id),
            });
        }
        let stored = ManagedConnection { revision: 1, ..connection.clone() };
        inner.noted(remediation_core::store::connection_created_record(actor, &stored))?;
        inner.connections.insert(key, stored.clone());
        inner.bump_connections(self.tenant.as_str());
        Ok(stored)
    }

    async fn connection(&self, id: &str) -> Result<Option<ManagedConnection>, StoreError> {
        Ok(self.lock().connections.get(&(self.tenant.to_string(), id.to_owned())).cloned())
    }

    async fn connections(&self) -> Result<Vec<ManagedConnection>, StoreError> {
        Ok(self
            .lock()
            .connections
            .iter()
            .filter(|((t, _), _)| t == self.tenant.as_str())
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn update_connection(
        &self,
        id: &str,
        expected_revision: u64,
        new: &ManagedConnection,
        actor: &Actor,
    ) -> Result<ManagedConnection, StoreError> {
        let mut inner = self.lock();
        let stored = inner.stored_connection(self.tenant.as_str(), id)?;
        let next = remediation_core::store::next_connection_revision(&stored, expected_revision, new)?;
        inner.noted(remediation_core::store::connection_updated_record(actor, &stored, &next))?;
        inner.connections.insert((self.tenant.to_string(), id.to_owned()), next.clone());
        inner.bump_connections(self.tenant.as_str());
        Ok(next)
    }

    async fn delete_connection(
        &self,
        id: &str,
        expected_revision: u64,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let stored = inner.stored_connection(self.tenant.as_str(), id)?;
        if stored.revision != expected_revision {
            return Err(remediation_core::store::connection_changed(id, expected_revision, stored.revision));
        }
        inner.noted(remediation_core::store::connection_deleted_record(actor, &stored, at))?;
        inner.connections.remove(&(self.tenant.to_string(), id.to_owned()));
        inner.bump_connections(self.tenant.as_str());
        Ok(())
    }

    async fn record_connection_health(&self, id: &str, health: &ConnectionHealth) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut stored = inner.stored_connection(self.tenant.as_str(), id)?;
        stored.health = Some(health.clone());
        inner.connections.insert((self.tenant.to_string(), id.to_owned()), stored);
        Ok(())
    }

    async fn connections_revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().connection_revisions.get(self.tenant.as_str()).copied().unwrap_or(0))
    }

    async fn all_sealed_connections(&self) -> Result<Vec<SealedConnection>, StoreError> {
        // Every tenant's, as the key rotation needs them.
        let all: Vec<Arc<Mutex<Inner>>> =
            self.shared.data.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        let mut out = Vec::new();
        for inner in all {
            let inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
            out.extend(inner.connections.iter().filter_map(|((tenant, id), c)| {
                c.secrets.clone().map(|secrets| SealedConnection {
                    tenant: tenant.clone(),
                    id: id.clone(),
                    revision: c.revision,
                    secrets,
                })
            }));
        }
        Ok(out)
    }

    async fn replace_sealed(
        &self,
        tenant: &str,
        id: &str,
        expected_revision: u64,
        secrets: &serde_json::Value,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let owner = remediation_core::TenantId::new(tenant).map_err(|e| backend(e.to_string()))?;
        let handle = self.scoped(&owner);
        let mut inner = handle.lock();
        let mut stored = inner.stored_connection(tenant, id)?;
        if stored.revision != expected_revision {
            return Err(remediation_core::store::connection_changed(id, expected_revision, stored.revision));
        }
        stored.secrets = Some(secrets.clone());
        stored.revision += 1;
        stored.updated_at = at;
        let revision = stored.revision;
        inner.noted(remediation_core::store::connection_rewrapped_record(actor, tenant, id, revision, at))?;
        inner.connections.insert((tenant.to_owned(), id.to_owned()), stored);
        inner.bump_connections(tenant);
        Ok(revision)
    }
}

#[async_trait]
impl remediation_core::DocumentStore for InMemoryStore {
    async fn put_document(
        &self,
        write: &remediation_core::DocumentWrite,
    ) -> Result<remediation_core::Document, StoreError> {
        let mut inner = self.lock();
        let key = (write.collection.clone(), write.id.clone());
        let found = inner.documents.get(&key).map_or(0, |d| d.revision);
        if found != write.expected_revision {
            return Err(remediation_core::store::document_changed(write, found));
        }
        if let Some(note) = &write.note {
            inner.noted(note.clone())?;
        }
        let stored = remediation_core::Document {
            collection: write.collection.clone(),
            id: write.id.clone(),
            revision: found + 1,
            body: write.body.clone(),
            updated_by: write.actor.clone(),
            updated_at: write.at,
        };
        inner.documents.insert(key, stored.clone());
        Ok(stored)
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<remediation_core::Document>, StoreError> {
        Ok(self.lock().documents.get(&(collection.to_owned(), id.to_owned())).cloned())
    }

    async fn documents(&self, collection: &str) -> Result<Vec<remediation_core::Document>, StoreError> {
        Ok(self.lock().documents.values().filter(|d| d.collection == collection).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use remediation_core::{DetailUpdate, State, TransitionRecord};
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
            limit: None,
        }
    }

    fn change(action: &Action, from: State, to: State, update: DetailUpdate) -> StateChange {
        StateChange::new(record(action, Some(from), to), update)
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn passes_the_store_conformance_suite() {
        crate::store_conformance::run(|| async {
            let clock = Arc::new(remediation_core::ManualClock::new(crate::fixed_time()));
            let store = std::sync::Arc::new(InMemoryStore::with_clock(clock.clone()));
            let seeder = std::sync::Arc::clone(&store);
            let tamperer = std::sync::Arc::clone(&store);
            crate::store_conformance::Subject {
                store,
                seed: Some(Box::new(move |details| {
                    for d in details {
                        seeder.seed(d.clone());
                    }
                })),
                tamper: Some(Box::new(move |seq| {
                    tamperer.tamper_audit(seq, |r| {
                        if let Some(t) = r.body.transition_mut() {
                            t.actor = "local:mallory".to_owned();
                        }
                    });
                })),
                clock: Some(clock),
            }
        })
        .await;
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
                matches!(out, BeginOutcome::LimitReached(LimitReached { ref slot, used: 1, .. }) if slot.key == "identity:alice")
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
