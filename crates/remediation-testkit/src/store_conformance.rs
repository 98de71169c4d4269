//! The store conformance suite: every [`Store`] must pass it.
//!
//! ```ignore
//! remediation_testkit::store_conformance::run(|| async { Subject::new(Arc::new(MyStore::new())) }).await;
//! ```
//!
//! Each case gets a fresh store from the factory. The cases:
//!
//! - [`compare_and_set_race`]: N tasks apply the same transition at once; exactly one wins,
//!   the others see `StateConflict`.
//! - [`lifecycle`]: suggest, approve, begin execution with slots, complete, through the store.
//! - [`audit_chain`]: after many changes and one sequencer pass nothing is unsequenced, the
//!   chain verifies, pages cover it once, and a tampered record (through the subject's hook)
//!   is detected.
//! - [`limit_admission`]: limit L, N > L concurrent `begin_execution` on one key: exactly L
//!   start.
//! - [`paging`]: `PAGING_ACTIONS` actions, listed page by page, with and without a state
//!   filter: each exactly once, in (created_at, id) order.
//! - [`due_times`]: `due(now)` returns exactly the actions whose approval deadline or rollback
//!   request window has passed, earliest first, and forgets them once they move on.
//! - [`lease_takeover_and_fencing`]: a lease granted with the move to `executing` is renewed
//!   while live, cannot be renewed once expired by the store's clock, is taken over with the
//!   next epoch only once expired, and a change fenced with the old epoch is refused.
//! - [`one_begin_wins`]: N workers begin the same action at once: one starts and holds the
//!   lease; N workers take over the same expired action at once: one gets it.
//! - [`named_leases`]: acquire, refuse while held, take over after expiry, release.
//! - [`requeue_and_claim`]: a move from `executing` back to `approved` releases the action's
//!   limit slots and keeps its not-before time and attempts; `claimable(now)` lists approved
//!   actions oldest first, skips those not yet due, filters by connector and honours `limit`.
//! - [`counts_by_state`]: `count_by_state` counts each action once, in its current state.
//! - [`verifiable_log`]: every sequenced record has its leaf hash (`SHA-256(0x00 || record
//!   JSON)`), read by range; the tree head store accepts only a head that follows the latest
//!   (compare-and-set on its size, never shrinking, never beyond the log), one of N concurrent
//!   signers wins, and published keys are kept for good, one public key per id; archiving
//!   removes only records a head covers (never the newest), keeps every leaf, and the chain
//!   verifies from the archive on.
//! - [`ui_sessions`]: a session is found by the hash of its id while live and not at or after
//!   its expiry, never by the stored hash presented as an id; its flash is taken once (of N
//!   concurrent takers, one gets it); deleting ends it; pruning drops the expired ones and then
//!   those that expire first beyond the number kept.
//! - [`delivery_marks`]: registering a sink returns its stored mark (one mark for N concurrent
//!   registrations with different starts); a mark moves only from the stored value (else
//!   `DeliveryConflict` with the mark found) and only forward, parking several records in the
//!   same step; parked records are listed by sink and `seq`, of one sink or of all.
//! - [`delivery_fencing`]: a move or settlement fenced by a named lease happens only while
//!   that lease is the stored one and live by the store's clock; released, re-granted,
//!   expired, or taken over by another holder: `LeaseLost`, and no mark or parked record
//!   changes.
//! - [`parked_replay`]: replay requests for some seqs or all, counted; a delivered replay
//!   removes the parked record, a refused one replaces its reason and clears the request;
//!   settling what is not parked does nothing.
//! - [`outbox_record_fields`]: a transition with `limit` and a note with `action_id` come back
//!   from `audit_page` as written, and the chain verifies.
//! - [`handles_and_campaign_filter`]: every stored action gets the next handle (1, 2, ...),
//!   never one twice even when N tasks create actions at once; `action_by_handle` finds it;
//!   state changes keep it; the campaign filter lists exactly a campaign's actions.
//! - [`campaigns`]: a campaign is stored with its entries (read back by range, in order),
//!   its name is unique, its progress moves only forward and never beyond its end, and of N
//!   concurrent recorders the largest cursor stays.
//! - [`tenants`]: tenants are created once and listed; a handle of one tenant sees none of
//!   another's actions, audit records, safety state, limit windows, principals, tokens,
//!   campaigns or named leases, cannot change them, and has its own audit chain from 1.
//! - [`connections`]: managed connections are created once per id, changed, rewrapped and
//!   deleted only by compare-and-set on their revision (one of N concurrent updaters wins),
//!   their health recorded without moving a revision, the tenant's connections revision moves
//!   with every change, and every change is audited without the sealed secrets.
//! - [`documents`]: a document is created at revision 1 only when expected at 0, changed only
//!   by compare-and-set on its revision (a stale write changes neither the body nor the audit
//!   log; of N concurrent writers one wins), each write's note is audited in the same step and
//!   the chain verifies, a collection is listed alone and by id, and another tenant's handle
//!   sees none of the documents and keeps its own under the same collection and id.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use remediation_core::store::{Flash, SessionIdHash, UiSession};
use remediation_core::{
    ActionDetail, ActionFilter, AuditArchive, AuditFilter, BeginOutcome, Clock, DetailUpdate, LeafHash, LeaseRequest,
    ManualClock, PageRequest, State, StateChange, Store, StoreError, StoredPublicKey, StoredTreeHead,
};
use time::{Duration, OffsetDateTime};

use crate::{ActionBuilder, action_id, fixed_time, slot, transition};

mod campaigns;
mod connections;
mod delivery;
mod documents;
mod tenants;

pub use campaigns::{campaigns, handles_and_campaign_filter};
pub use connections::{connections, managed_connection};
pub use delivery::{delivery_fencing, delivery_marks, outbox_record_fields, parked_replay};
pub use documents::documents;
pub use tenants::tenants;

/// Actions the paging case stores.
pub const PAGING_ACTIONS: u64 = 100_000;

/// Concurrent tasks in the race cases.
const TASKS: u64 = 16;

/// Stores `details` as they are, without transitions or audit records (a batched, test-only
/// path, so the paging case does not write 100,000 transactions).
pub type Seeder = Box<dyn Fn(&[ActionDetail]) + Send + Sync>;

/// Edits the stored audit record with the given `seq` behind the store's back.
pub type Tamper = Box<dyn Fn(u64) + Send + Sync>;

/// One store under test and the hooks a case needs to reach behind it.
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    /// How to seed many actions at once; `None`: through `create_action`, one by one.
    pub seed: Option<Seeder>,
    /// How to tamper with an audit record; `None` skips the tampering check.
    pub tamper: Option<Tamper>,
    /// The clock the store judges leases by (built into the store by the factory); the lease
    /// cases need it and fail without it.
    pub clock: Option<Arc<ManualClock>>,
}

impl Subject {
    /// A subject without hooks.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, seed: None, tamper: None, clock: None }
    }
}

/// Runs every case, each on a fresh store from `make`, and prints how long each took.
pub async fn run<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Subject>,
{
    let cases: [(&str, Case); 22] = [
        ("compare_and_set_race", |s| Box::pin(compare_and_set_race(s))),
        ("lifecycle", |s| Box::pin(lifecycle(s))),
        ("audit_chain", |s| Box::pin(audit_chain(s))),
        ("limit_admission", |s| Box::pin(limit_admission(s))),
        ("paging", |s| Box::pin(paging(s))),
        ("due_times", |s| Box::pin(due_times(s))),
        ("lease_takeover_and_fencing", |s| Box::pin(lease_takeover_and_fencing(s))),
        ("one_begin_wins", |s| Box::pin(one_begin_wins(s))),
        ("named_leases", |s| Box::pin(named_leases(s))),
        ("requeue_and_claim", |s| Box::pin(requeue_and_claim(s))),
        ("counts_by_state", |s| Box::pin(counts_by_state(s))),
        ("verifiable_log", |s| Box::pin(verifiable_log(s))),
        ("ui_sessions", |s| Box::pin(ui_sessions(s))),
        ("delivery_marks", |s| Box::pin(delivery_marks(s))),
        ("delivery_fencing", |s| Box::pin(delivery_fencing(s))),
        ("parked_replay", |s| Box::pin(parked_replay(s))),
        ("outbox_record_fields", |s| Box::pin(outbox_record_fields(s))),
        ("handles_and_campaign_filter", |s| Box::pin(handles_and_campaign_filter(s))),
        ("campaigns", |s| Box::pin(campaigns(s))),
        ("tenants", |s| Box::pin(tenants(s))),
        ("connections", |s| Box::pin(connections(s))),
        ("documents", |s| Box::pin(documents(s))),
    ];
    for (name, case) in cases {
        let started = Instant::now();
        case(make().await).await;
        println!("store conformance: {name} passed in {:.2} s", started.elapsed().as_secs_f64());
    }
}

type Case = fn(Subject) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) fn pending(seed: u64, at: OffsetDateTime) -> ActionDetail {
    let mut detail = ActionBuilder::new().seed(seed).state(State::PendingApproval).at(at).detail().build();
    detail.approval_expires_at = Some(at + Duration::days(7));
    detail
}

pub(crate) async fn create(store: &dyn Store, detail: &ActionDetail) {
    let a = &detail.action;
    store
        .create_action(detail, &transition(a.id, None, a.state, "suggest", a.created_at))
        .await
        .expect("create_action");
}

pub(crate) fn change(detail: &ActionDetail, from: State, to: State, event: &str, at: OffsetDateTime) -> StateChange {
    StateChange::new(transition(detail.action.id, Some(from), to, event, at), DetailUpdate::default())
}

/// Runs the store's sequencer once (a store with several writers seals audit entries in
/// batches, and reads see only sealed ones): afterwards nothing is left unsequenced.
async fn sequence_all(store: &dyn Store) {
    store.sequence_pending().await.expect("sequence the pending audit entries");
    assert_eq!(store.unsequenced().await.expect("unsequenced"), 0, "one pass seals every entry written before it");
}

/// N tasks apply the same transition at once: exactly one wins.
pub async fn compare_and_set_race(subject: Subject) {
    let store = subject.store;
    let detail = pending(1, fixed_time());
    create(store.as_ref(), &detail).await;
    let c = Arc::new(change(&detail, State::PendingApproval, State::Approved, "approve", fixed_time()));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, c) = (Arc::clone(&store), Arc::clone(&c));
            tokio::spawn(async move { store.apply(&c).await })
        })
        .collect();
    let (mut won, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(a) => {
                assert_eq!(a.state, State::Approved);
                won += 1;
            }
            Err(StoreError::StateConflict { actual: State::Approved, .. }) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((won, conflicts), (1, TASKS - 1), "exactly one apply wins");
    let transitions = store.transitions(detail.action.id).await.expect("transitions");
    assert_eq!(transitions.len(), 2, "the creation and the one approval");
}

/// The lifecycle through the store: every step is stored, merged and audited.
pub async fn lifecycle(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    let detail = pending(2, t0);
    create(store.as_ref(), &detail).await;
    let mut expected = detail.clone();
    expected.action.handle = Some(1);
    assert_eq!(store.get(detail.action.id).await.expect("get"), expected, "as created, with the store's handle #1");
    store
        .apply(&change(&detail, State::PendingApproval, State::Approved, "approve", t0 + Duration::minutes(1)))
        .await
        .expect("approve");
    let mut begin = change(&detail, State::Approved, State::Executing, "begin_execution", t0 + Duration::minutes(2));
    begin.update.before = Some(crate::snap(serde_json::json!({"member": true})));
    let out = store.begin_execution(&begin, &[slot("global", 5, 3600)], true).await.expect("begin");
    assert!(matches!(out, BeginOutcome::Started(ref a) if a.state == State::Executing), "{out:?}");
    let mut done = change(&detail, State::Executing, State::Completed, "complete", t0 + Duration::minutes(3));
    done.update.after = Some(crate::snap(serde_json::json!({"member": false})));
    done.update.last_error = Some(None);
    store.apply(&done).await.expect("complete");
    let got = store.get(detail.action.id).await.expect("get");
    assert_eq!(got.action.state, State::Completed);
    assert_eq!(got.before, Some(crate::snap(serde_json::json!({"member": true}))), "kept from begin");
    assert_eq!(got.after, Some(crate::snap(serde_json::json!({"member": false}))));
    assert_eq!(got.due_at(), None, "a completed action is not due");
    let states: Vec<State> = store.transitions(detail.action.id).await.expect("t").iter().map(|t| t.to).collect();
    assert_eq!(states, [State::PendingApproval, State::Approved, State::Executing, State::Completed]);
    sequence_all(store.as_ref()).await;
    let audit =
        store.audit_page(&AuditFilter { action: Some(detail.action.id), since: None }, None, 100).await.expect("audit");
    assert_eq!(audit.len(), 4, "one audit record per transition");
    assert_eq!(store.slots_since(t0).await.expect("slots").len(), 1);
    // A stale change is refused and writes nothing.
    let stale = store.apply(&change(&detail, State::Approved, State::Cancelled, "cancel", t0)).await;
    assert!(matches!(stale, Err(StoreError::StateConflict { actual: State::Completed, .. })), "{stale:?}");
    assert_eq!(store.transitions(detail.action.id).await.expect("t").len(), 4);
}

/// After many changes the chain verifies and pages cover it once; a tampered record is found.
pub async fn audit_chain(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    for n in 0..50 {
        let detail = pending(100 + n, t0 + Duration::seconds(i64::try_from(n).unwrap_or(0)));
        create(store.as_ref(), &detail).await;
        store
            .apply(&change(&detail, State::PendingApproval, State::Rejected, "reject", t0 + Duration::hours(1)))
            .await
            .expect("reject");
    }
    sequence_all(store.as_ref()).await;
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 100);
    let mut seqs = Vec::new();
    let mut after = None;
    loop {
        let page = store.audit_page(&AuditFilter::default(), after, 7).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        seqs.extend(page.iter().map(|r| r.seq));
    }
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>(), "every record once, by seq");
    if let Some(tamper) = subject.tamper {
        tamper(42);
        let report = store.verify_audit().await.expect("verify");
        let broken = report.first_break.clone().expect("the edit is found");
        assert_eq!(broken.seq, 42, "{report}");
    }
}

/// Limit L, N > L concurrent executions on one key: exactly L start.
pub async fn limit_admission(subject: Subject) {
    const LIMIT: u32 = 3;
    let store = subject.store;
    let at = fixed_time() + Duration::minutes(5);
    let mut changes = Vec::new();
    for n in 0..TASKS {
        let mut detail = pending(1000 + n, fixed_time());
        detail.action.state = State::Approved;
        detail.approval_expires_at = None;
        store
            .create_action(&detail, &transition(detail.action.id, None, State::Approved, "suggest", fixed_time()))
            .await
            .expect("create");
        changes.push(change(&detail, State::Approved, State::Executing, "begin_execution", at));
    }
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|c| {
            let store = Arc::clone(&store);
            tokio::spawn(
                async move { store.begin_execution(&c, &[slot("connector:sandbox", LIMIT, 3600)], true).await },
            )
        })
        .collect();
    let (mut started, mut held) = (0, 0);
    for t in tasks {
        match t.await.expect("task").expect("begin") {
            BeginOutcome::Started(_) => started += 1,
            BeginOutcome::LimitReached(full) => {
                assert_eq!(full.used, LIMIT);
                // Every slot was taken at `at`: the window admits one again an hour later.
                assert_eq!(full.frees_at, Some(at + Duration::hours(1)), "{full:?}");
                held += 1;
            }
        }
    }
    assert_eq!((started, held), (u64::from(LIMIT), TASKS - u64::from(LIMIT)), "exactly the limit starts");
    assert_eq!(store.slots_since(fixed_time()).await.expect("slots").len(), LIMIT as usize);
    let window = [slot("connector:sandbox", LIMIT, 3600)];
    let later = store.check_limits(&window, at + Duration::minutes(30)).await.expect("check");
    assert_eq!(later.and_then(|l| l.frees_at), Some(at + Duration::hours(1)));
    // A window of 2 holding 3 admits one once the two oldest have aged out: still at + 1 h.
    let tighter = [slot("connector:sandbox", 2, 3600)];
    let full = store.check_limits(&tighter, at + Duration::minutes(1)).await.expect("check").expect("full");
    assert_eq!((full.used, full.frees_at), (3, Some(at + Duration::hours(1))));
}

/// Every action exactly once, in (created_at, id) order, with and without a state filter.
pub async fn paging(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    // Ten actions share each creation instant, so the id breaks ties; every third is approved.
    let details: Vec<ActionDetail> = (0..PAGING_ACTIONS)
        .map(|n| {
            let at = t0 + Duration::seconds(i64::try_from(n / 10).unwrap_or(0));
            let mut d = pending(n, at);
            if n % 3 == 0 {
                d.action.state = State::Approved;
                d.approval_expires_at = None;
            }
            d
        })
        .collect();
    let started = Instant::now();
    match &subject.seed {
        Some(seed) => seed(&details),
        None => {
            for d in &details {
                create(store.as_ref(), d).await;
            }
        }
    }
    println!("store conformance: seeded {PAGING_ACTIONS} actions in {:.2} s", started.elapsed().as_secs_f64());
    let expect_all: Vec<_> = details.iter().map(|d| d.action.id).collect();
    let expect_approved: Vec<_> =
        details.iter().filter(|d| d.action.state == State::Approved).map(|d| d.action.id).collect();
    for (filter, expected) in [
        (ActionFilter::default(), expect_all),
        (ActionFilter { state: Some(State::Approved), ..ActionFilter::default() }, expect_approved),
    ] {
        let started = Instant::now();
        let mut seen = Vec::with_capacity(expected.len());
        let mut page = PageRequest::first(500);
        loop {
            let got = store.list(&filter, &page).await.expect("list");
            assert!(got.items.len() <= 500);
            assert!(got.items.iter().all(|a| filter.matches(a)));
            seen.extend(got.items.iter().map(|a| a.id));
            match got.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        println!(
            "store conformance: listed {} actions (state {:?}) in {:.2} s",
            seen.len(),
            filter.state,
            started.elapsed().as_secs_f64()
        );
        assert_eq!(seen.len(), expected.len(), "every action once");
        assert!(seen == expected, "in (created_at, id) order");
    }
    // An unknown cursor yields nothing.
    let unknown = PageRequest { after: Some(action_id(u64::MAX)), limit: 10 };
    assert!(store.list(&ActionFilter::default(), &unknown).await.expect("list").items.is_empty());
}

/// `due(now)` returns exactly what is due, earliest first, and forgets what moved on.
pub async fn due_times(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    let early = pending(1, t0);
    let late = pending(2, t0 + Duration::days(1));
    create(store.as_ref(), &late).await;
    create(store.as_ref(), &early).await;
    let mut approved = pending(3, t0);
    approved.action.state = State::Approved;
    approved.approval_expires_at = None;
    create(store.as_ref(), &approved).await;
    let ids = |v: Vec<ActionDetail>| v.into_iter().map(|d| d.action.id).collect::<Vec<_>>();
    let deadline = t0 + Duration::days(7);
    assert!(store.due(deadline, 10).await.expect("due").is_empty(), "the deadline itself is not past");
    assert_eq!(ids(store.due(deadline + Duration::seconds(1), 10).await.expect("due")), [early.action.id]);
    assert_eq!(
        ids(store.due(deadline + Duration::days(2), 10).await.expect("due")),
        [early.action.id, late.action.id],
        "earliest due first"
    );
    assert_eq!(store.due(deadline + Duration::days(2), 1).await.expect("due").len(), 1, "at most limit");
    store.apply(&change(&early, State::PendingApproval, State::Approved, "approve", t0)).await.expect("approve");
    assert_eq!(
        ids(store.due(deadline + Duration::days(2), 10).await.expect("due")),
        [late.action.id],
        "approved: no longer due"
    );
    // A requested rollback is due when its window closes.
    let mut done = pending(4, t0);
    done.action.state = State::Completed;
    done.approval_expires_at = None;
    create(store.as_ref(), &done).await;
    let mut request = change(&done, State::Completed, State::RollbackRequested, "request_rollback", t0);
    request.update.rollback_expires_at = Some(t0 + Duration::hours(1));
    store.apply(&request).await.expect("request rollback");
    assert_eq!(ids(store.due(t0 + Duration::hours(2), 10).await.expect("due")), [done.action.id]);
}

/// The lease ttl of the lease cases.
const TTL: std::time::Duration = std::time::Duration::from_secs(10);

fn worker(name: &str) -> LeaseRequest {
    LeaseRequest { holder: name.to_owned(), ttl: TTL }
}

fn lease_clock(subject: &Subject) -> Arc<ManualClock> {
    Arc::clone(subject.clock.as_ref().expect("the lease cases need the store's clock in the subject"))
}

/// Creates an approved action and returns it with the change that begins its execution.
async fn approved(store: &dyn Store, seed: u64) -> (ActionDetail, StateChange) {
    let t0 = fixed_time();
    let detail = pending(seed, t0);
    create(store, &detail).await;
    store
        .apply(&change(&detail, State::PendingApproval, State::Approved, "approve", t0 + Duration::minutes(1)))
        .await
        .expect("approve");
    let begin = change(&detail, State::Approved, State::Executing, "begin_execution", t0 + Duration::minutes(2));
    (detail, begin)
}

/// Renewal while live, no renewal after expiry, takeover only after expiry with the next
/// epoch, and fencing of the old epoch.
pub async fn lease_takeover_and_fencing(subject: Subject) {
    let clock = lease_clock(&subject);
    let store = subject.store;
    let (detail, mut begin) = approved(store.as_ref(), 11).await;
    let id = detail.action.id;
    begin.lease = Some(worker("a"));
    let out = store.begin_execution(&begin, &[], true).await.expect("begin");
    assert!(matches!(out, BeginOutcome::Started(_)), "{out:?}");
    let first = store.lease(id).await.expect("lease").expect("a lease is held after begin");
    assert_eq!((first.holder.as_str(), first.epoch), ("a", 1));
    assert_eq!(first.expires_at, clock.now() + TTL, "expiry by the store's clock");

    clock.advance(Duration::seconds(5));
    assert!(store.take_over_expired(&worker("b"), 10).await.expect("take over").is_empty(), "a live lease is kept");
    let renewed = store.renew_lease(id, &first, TTL).await.expect("renew while live");
    assert_eq!((renewed.epoch, renewed.expires_at), (1, clock.now() + TTL));

    clock.advance(Duration::seconds(10));
    assert!(
        matches!(store.renew_lease(id, &renewed, TTL).await, Err(StoreError::LeaseLost { .. })),
        "an expired lease cannot be renewed"
    );
    let taken = store.take_over_expired(&worker("b"), 10).await.expect("take over");
    assert_eq!(taken.len(), 1, "the expired action is taken over");
    let (taken_detail, second) = &taken[0];
    assert_eq!((taken_detail.action.id, taken_detail.action.state), (id, State::Executing));
    assert_eq!((second.holder.as_str(), second.epoch), ("b", 2), "a takeover raises the epoch");
    assert!(store.take_over_expired(&worker("c"), 10).await.expect("take over").is_empty(), "b holds it now");
    assert!(matches!(store.renew_lease(id, &renewed, TTL).await, Err(StoreError::LeaseLost { .. })), "a lost it");

    let mut stale = change(&detail, State::Executing, State::Completed, "complete", clock.now());
    stale.fence = Some(first.epoch);
    assert!(
        matches!(store.apply(&stale).await, Err(StoreError::StaleLease { fence: 1, current: 2, .. })),
        "a change fenced with the old epoch is refused"
    );
    assert_eq!(store.get(id).await.expect("get").action.state, State::Executing, "nothing was written");
    let mut done = stale.clone();
    done.fence = Some(second.epoch);
    store.apply(&done).await.expect("the holder's change is applied");
    assert_eq!(store.lease(id).await.expect("lease"), None, "leaving executing ends the lease");
    let states = store.transitions(id).await.expect("t").len();
    assert_eq!(states, 4, "creation, approval, begin, completion: the stale change left no transition");
}

/// Of N workers beginning the same action one starts and holds the lease; of N workers taking
/// over the same expired action one gets it.
pub async fn one_begin_wins(subject: Subject) {
    let clock = lease_clock(&subject);
    let store = subject.store;
    let (detail, begin) = approved(store.as_ref(), 12).await;
    let id = detail.action.id;
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let store = Arc::clone(&store);
            let mut c = begin.clone();
            c.lease = Some(worker(&format!("w{n}")));
            tokio::spawn(async move { (n, store.begin_execution(&c, &[], true).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            (n, Ok(BeginOutcome::Started(_))) => winners.push(n),
            (_, Err(StoreError::StateConflict { .. })) => {}
            (_, other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one worker begins the action");
    let lease = store.lease(id).await.expect("lease").expect("held");
    assert_eq!((lease.holder, lease.epoch), (format!("w{}", winners[0]), 1), "the winner holds the lease");

    clock.advance(Duration::seconds(11));
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_over_expired(&worker(&format!("r{n}")), 10).await })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        taken += t.await.expect("task").expect("take over").len();
    }
    assert_eq!(taken, 1, "exactly one worker takes over the expired action");
    assert_eq!(store.lease(id).await.expect("lease").expect("held").epoch, 2);
}

/// Named leases: one holder at a time, takeover after expiry with the next epoch, release.
pub async fn named_leases(subject: Subject) {
    let clock = lease_clock(&subject);
    let store = subject.store;
    let a = store.acquire_lease("sequencer", &worker("a")).await.expect("acquire").expect("free");
    assert_eq!((a.holder.as_str(), a.epoch, a.expires_at), ("a", 1, clock.now() + TTL));
    assert_eq!(store.acquire_lease("sequencer", &worker("b")).await.expect("acquire"), None, "held by a");
    assert!(store.acquire_lease("relay", &worker("b")).await.expect("acquire").is_some(), "names are independent");
    clock.advance(Duration::seconds(5));
    let a = store.renew_named_lease("sequencer", &a, TTL).await.expect("renew while live");
    clock.advance(Duration::seconds(10));
    assert!(matches!(store.renew_named_lease("sequencer", &a, TTL).await, Err(StoreError::LeaseLost { .. })));
    let b = store.acquire_lease("sequencer", &worker("b")).await.expect("acquire").expect("expired");
    assert_eq!(b.epoch, 2, "a takeover raises the epoch");
    store.release_lease("sequencer", &a).await.expect("a stale release does nothing");
    assert_eq!(store.acquire_lease("sequencer", &worker("c")).await.expect("acquire"), None, "b still holds it");
    store.release_lease("sequencer", &b).await.expect("release");
    let c = store.acquire_lease("sequencer", &worker("c")).await.expect("acquire").expect("released");
    assert_eq!(c.epoch, 3);
}

/// A requeue releases the slots and keeps the not-before time; `claimable` skips what is not
/// yet due, filters by connector, and lists oldest first up to `limit`.
pub async fn requeue_and_claim(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    let ids = |v: Vec<ActionDetail>| v.into_iter().map(|d| d.action.id).collect::<Vec<_>>();
    let mut made = Vec::new();
    for (seed, connector) in [(1, "okta"), (2, "okta"), (3, "github")] {
        let mut detail = ActionBuilder::new()
            .seed(seed)
            .connector(connector)
            .state(State::Approved)
            .at(t0 + Duration::seconds(i64::try_from(seed).unwrap_or(0)))
            .detail()
            .build();
        detail.approval_expires_at = None;
        create(store.as_ref(), &detail).await;
        made.push(detail);
    }
    let (first, second, third) = (made[0].action.id, made[1].action.id, made[2].action.id);
    let mut pending_one = pending(9, t0);
    pending_one.action.connector = "okta".to_owned();
    create(store.as_ref(), &pending_one).await;
    assert_eq!(ids(store.claimable(t0, None, 10).await.expect("claimable")), [first, second, third]);
    assert_eq!(ids(store.claimable(t0, Some("okta".to_owned()), 10).await.expect("claimable")), [first, second]);
    assert_eq!(ids(store.claimable(t0, None, 1).await.expect("claimable")), [first], "at most limit");

    let slots = [slot("connector:okta", 1, 3600)];
    let begin = change(&made[0], State::Approved, State::Executing, "begin_execution", t0);
    assert!(matches!(store.begin_execution(&begin, &slots, true).await.expect("begin"), BeginOutcome::Started(_)));
    assert!(store.check_limits(&slots, t0).await.expect("check").is_some(), "the slot is taken");
    let mut requeue = change(&made[0], State::Executing, State::Approved, "requeue", t0);
    let not_before = t0 + Duration::seconds(30);
    requeue.update.not_before = Some(Some(not_before));
    requeue.update.attempts = Some(1);
    store.apply(&requeue).await.expect("requeue");
    assert!(store.check_limits(&slots, t0).await.expect("check").is_none(), "the requeue released the slot");
    let stored = store.get(first).await.expect("get");
    assert_eq!((stored.not_before, stored.attempts), (Some(not_before), 1));

    assert_eq!(ids(store.claimable(t0, None, 10).await.expect("claimable")), [second, third], "not before its time");
    assert_eq!(
        ids(store.claimable(not_before, None, 10).await.expect("claimable")),
        [first, second, third],
        "claimable at its time, in creation order"
    );
    // A slot of a completed execution stays taken.
    let begin = change(&made[1], State::Approved, State::Executing, "begin_execution", t0);
    assert!(matches!(store.begin_execution(&begin, &slots, true).await.expect("begin"), BeginOutcome::Started(_)));
    store.apply(&change(&made[1], State::Executing, State::Completed, "execution_succeeded", t0)).await.expect("done");
    assert!(store.check_limits(&slots, t0).await.expect("check").is_some(), "a completed execution keeps its slot");
}

/// `count_by_state` counts every action once, in the state it is in now, and leaves out states
/// without actions.
pub async fn counts_by_state(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    assert!(store.count_by_state().await.expect("count").is_empty(), "an empty store counts nothing");
    let mut made = Vec::new();
    for seed in 1..=3 {
        let mut detail = ActionBuilder::new()
            .seed(seed)
            .state(State::Approved)
            .at(t0 + Duration::seconds(i64::try_from(seed).unwrap_or(0)))
            .detail()
            .build();
        detail.approval_expires_at = None;
        create(store.as_ref(), &detail).await;
        made.push(detail);
    }
    create(store.as_ref(), &pending(9, t0)).await;
    let begin = change(&made[0], State::Approved, State::Executing, "begin_execution", t0);
    assert!(matches!(store.begin_execution(&begin, &[], true).await.expect("begin"), BeginOutcome::Started(_)));
    let counts = store.count_by_state().await.expect("count");
    let expected: std::collections::BTreeMap<State, u64> =
        [(State::PendingApproval, 1), (State::Approved, 2), (State::Executing, 1)].into_iter().collect();
    assert_eq!(counts, expected);
}

/// A tree head of `tree_size` leaves over `leaves`, signed with a fixed test key.
fn signed_head(leaves: &[LeafHash], tree_size: u64, at: OffsetDateTime) -> StoredTreeHead {
    use remediation_audit::merkle::{MerkleHash, root};
    let hashes: Vec<MerkleHash> =
        leaves.iter().take(usize::try_from(tree_size).unwrap_or(usize::MAX)).map(|l| MerkleHash(*l)).collect();
    let key = remediation_audit::LogSigningKey::from_seed(&[7; 32]);
    let signed = key.sign_next(None, tree_size, root(&hashes), &[], at).expect("sign");
    signed.into()
}

/// Leaf hashes, tree heads and published keys of the verifiable log.
pub async fn verifiable_log(subject: Subject) {
    use remediation_audit::merkle::record_leaf_hash;
    let store = subject.store;
    let t0 = fixed_time();
    assert_eq!(store.audit_size().await.expect("size"), 0);
    assert!(store.leaf_hashes(0, 0).await.expect("no leaves").is_empty());
    assert!(store.latest_tree_head().await.expect("latest").is_none());
    for n in 0..10 {
        let detail = pending(300 + n, t0 + Duration::seconds(i64::try_from(n).unwrap_or(0)));
        create(store.as_ref(), &detail).await;
        store
            .apply(&change(&detail, State::PendingApproval, State::Rejected, "reject", t0 + Duration::hours(1)))
            .await
            .expect("reject");
    }
    sequence_all(store.as_ref()).await;
    let size = store.audit_size().await.expect("size");
    assert_eq!(size, 20, "one leaf per sequenced record");
    let records = store.audit_page(&AuditFilter::default(), None, 100).await.expect("records");
    let leaves = store.leaf_hashes(0, size).await.expect("leaves");
    let expected: Vec<LeafHash> = records.iter().map(|r| record_leaf_hash(r).expect("leaf").0).collect();
    assert_eq!(leaves, expected, "leaf i is SHA-256(0x00 || canonical JSON of the record with seq i + 1)");
    assert_eq!(store.leaf_hashes(5, 8).await.expect("a range"), expected[5..8].to_vec());
    assert!(store.leaf_hashes(0, size + 1).await.is_err(), "beyond the log");

    // Heads: compare-and-set on the latest size, never shrinking, never beyond the log.
    let first = signed_head(&leaves, 5, t0);
    store.store_tree_head(&first, None).await.expect("the first head");
    let again = store.store_tree_head(&signed_head(&leaves, 6, t0), None).await;
    assert!(matches!(again, Err(StoreError::AuditLogConflict { .. })), "{again:?}");
    let shrink = store.store_tree_head(&signed_head(&leaves, 3, t0), Some(5)).await;
    assert!(matches!(shrink, Err(StoreError::AuditLogConflict { .. })), "{shrink:?}");
    let beyond = StoredTreeHead { tree_size: size + 1, ..signed_head(&leaves, size, t0) };
    let beyond = store.store_tree_head(&beyond, Some(5)).await;
    assert!(matches!(beyond, Err(StoreError::AuditLogConflict { .. })), "{beyond:?}");
    assert_eq!(store.latest_tree_head().await.expect("latest"), Some(first.clone()), "refused heads left no trace");

    // N signers race from the same previous head: exactly one head is stored.
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let store = store.clone();
        let head = signed_head(&leaves, 10 + n % 10, t0 + Duration::seconds(1));
        tasks.push(tokio::spawn(async move { store.store_tree_head(&head, Some(5)).await }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => won.push(()),
            Err(StoreError::AuditLogConflict { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "one signer stores its head; the others see a conflict");
    let latest = store.latest_tree_head().await.expect("latest").expect("a head");
    let last = signed_head(&leaves, size, t0 + Duration::seconds(2));
    store.store_tree_head(&last, Some(latest.tree_size)).await.expect("the next head");
    assert_eq!(store.latest_tree_head().await.expect("latest"), Some(last.clone()));
    assert_eq!(store.tree_head_at(5).await.expect("at 5"), Some(first));
    assert_eq!(store.tree_head_at(size).await.expect("at size"), Some(last.clone()));
    assert_eq!(store.tree_head_at(4).await.expect("at 4"), None);
    // An unchanged log may get a fresh head of the same size.
    let fresh = signed_head(&leaves, size, t0 + Duration::seconds(3));
    store.store_tree_head(&fresh, Some(size)).await.expect("same size");
    assert_eq!(store.latest_tree_head().await.expect("latest"), Some(fresh));

    // Keys: published for good, in order, one public key per id.
    let key = |n: u8| {
        let published = remediation_audit::LogSigningKey::from_seed(&[n; 32]).published();
        StoredPublicKey {
            key_id: published.key_id,
            algorithm: published.algorithm,
            public_key: published.public_key,
            published_at: t0 + Duration::seconds(i64::from(n)),
        }
    };
    store.publish_key(&key(1)).await.expect("publish");
    store.publish_key(&key(2)).await.expect("publish a second");
    store.publish_key(&key(1)).await.expect("publishing again changes nothing");
    let impostor = StoredPublicKey { public_key: key(3).public_key, ..key(1) };
    let refused = store.publish_key(&impostor).await;
    assert!(matches!(refused, Err(StoreError::AuditLogConflict { .. })), "{refused:?}");
    assert_eq!(store.published_keys().await.expect("keys"), vec![key(1), key(2)]);

    // Archiving the oldest records: only those a head covers, never the newest, only with the
    // hash the archive holds; the leaves stay and the chain verifies from the archive on.
    let archive = |through: u64, last_hash: &str| AuditArchive {
        through_seq: through,
        last_hash: last_hash.to_owned(),
        tree_size: size,
        root_hash: fresh_root(&leaves),
        file_sha256: "0".repeat(64),
        archived_at: t0,
    };
    let wrong = store.archive_audit(&archive(10, &records[10].hash)).await;
    assert!(matches!(wrong, Err(StoreError::AuditLogConflict { .. })), "{wrong:?}");
    let newest = store.archive_audit(&archive(size, &records[19].hash)).await;
    assert!(matches!(newest, Err(StoreError::AuditLogConflict { .. })), "{newest:?}");
    assert_eq!(store.audit_page(&AuditFilter::default(), None, 100).await.expect("records").len(), 20);
    assert_eq!(store.archive_audit(&archive(10, &records[9].hash)).await.expect("archived"), 10);
    let left = store.audit_page(&AuditFilter::default(), None, 100).await.expect("records");
    assert_eq!(left.first().map(|r| r.seq), Some(11), "records 1 to 10 are gone");
    assert_eq!(store.leaf_hashes(0, size).await.expect("leaves"), leaves, "every leaf stays");
    let report = store.verify_audit().await.expect("verify");
    assert!(report.first_break.is_none(), "the chain resumes after the archive: {report}");
    let detail = pending(399, t0);
    create(store.as_ref(), &detail).await;
    sequence_all(store.as_ref()).await;
    assert_eq!(store.audit_size().await.expect("size"), size + 1);
    assert!(store.verify_audit().await.expect("verify").first_break.is_none());
}

/// The session of `token` expiring at `expires_at`, with an optional flash.
fn ui_session(token: &str, expires_at: OffsetDateTime, flash: Option<&str>) -> UiSession {
    UiSession {
        token_hash: remediation_core::hash::sha256_hex(token.as_bytes()),
        csrf: format!("csrf-of-{token}"),
        expires_at,
        flash: flash.map(|text| Flash { ok: true, text: text.to_owned() }),
    }
}

/// The approval page's sessions: found by the hash of their id while live, flash taken once,
/// deleted, pruned by expiry and then by number.
pub async fn ui_sessions(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    let (a, b) = (SessionIdHash::of("raw-session-id-a"), SessionIdHash::of("raw-session-id-b"));
    let session_a = ui_session("token-a", t0 + Duration::hours(8), Some("Signed in as alice"));
    store.create_session(&a, &session_a).await.expect("create a");
    store.create_session(&b, &ui_session("token-b", t0 + Duration::hours(1), None)).await.expect("create b");

    assert_eq!(store.session(&a, t0).await.expect("get"), Some(session_a.clone()), "found by the id's hash");
    assert_eq!(
        store.session(&SessionIdHash::of(a.as_str()), t0).await.expect("get"),
        None,
        "the stored hash presented as a session id finds nothing"
    );
    assert_eq!(store.session(&SessionIdHash::of("unknown"), t0).await.expect("get"), None);
    let almost = t0 + Duration::hours(1) - Duration::nanoseconds(1);
    assert!(store.session(&b, almost).await.expect("get").is_some(), "live until its expiry");
    assert_eq!(store.session(&b, t0 + Duration::hours(1)).await.expect("get"), None, "expired at its expiry");

    // The flash is shown once.
    let flash = session_a.flash.clone();
    assert_eq!(store.take_flash(&a).await.expect("take"), flash);
    assert_eq!(store.take_flash(&a).await.expect("take"), None, "taken once");
    assert_eq!(store.session(&a, t0).await.expect("get").and_then(|s| s.flash), None);
    let approved = Flash { ok: true, text: "Approved".to_owned() };
    assert!(store.set_flash(&a, &approved).await.expect("set"));
    assert_eq!(store.session(&a, t0).await.expect("get").and_then(|s| s.flash), Some(approved.clone()));
    let unknown = SessionIdHash::of("unknown");
    assert!(!store.set_flash(&unknown, &approved).await.expect("set"), "no such session");
    assert_eq!(store.take_flash(&unknown).await.expect("take"), None);
    let mut takers = Vec::new();
    for _ in 0..TASKS {
        let (store, a) = (Arc::clone(&store), a.clone());
        takers.push(tokio::spawn(async move { store.take_flash(&a).await.expect("take") }));
    }
    let mut got = Vec::new();
    for t in takers {
        got.extend(t.await.expect("task"));
    }
    assert_eq!(got, vec![approved], "of {TASKS} concurrent takers exactly one gets the flash");

    // A second create under the same hash replaces the session.
    let replaced = ui_session("token-a2", t0 + Duration::hours(8), None);
    store.create_session(&a, &replaced).await.expect("create again");
    assert_eq!(store.session(&a, t0).await.expect("get"), Some(replaced));

    assert!(store.delete_session(&a).await.expect("delete"));
    assert!(!store.delete_session(&a).await.expect("delete"), "already gone");
    assert_eq!(store.session(&a, t0).await.expect("get"), None, "deleted");

    // Pruning: b and e1 have expired by `now`; of e2..e5 the 3 kept are those expiring last.
    let e: Vec<SessionIdHash> = (1..=5).map(|i| SessionIdHash::of(&format!("raw-session-id-e{i}"))).collect();
    for (hours, id) in (1i64..).zip(&e) {
        store.create_session(id, &ui_session("token-e", t0 + Duration::hours(hours), None)).await.expect("create");
    }
    let now = t0 + Duration::minutes(90);
    assert_eq!(store.prune_sessions(now, 3).await.expect("prune"), 3, "b, e1 (expired) and e2 (oldest beyond 3)");
    for (id, kept) in [(&b, false), (&e[0], false), (&e[1], false), (&e[2], true), (&e[3], true), (&e[4], true)] {
        assert_eq!(store.session(id, t0).await.expect("get").is_some(), kept, "{id}");
    }
    assert_eq!(store.prune_sessions(now, 3).await.expect("prune"), 0, "nothing more to prune");
    assert_eq!(store.prune_sessions(now, 0).await.expect("prune"), 3, "keep 0 drops every session");
}

fn fresh_root(leaves: &[LeafHash]) -> String {
    use remediation_audit::merkle::{MerkleHash, root};
    root(&leaves.iter().map(|l| MerkleHash(*l)).collect::<Vec<_>>()).to_hex()
}
