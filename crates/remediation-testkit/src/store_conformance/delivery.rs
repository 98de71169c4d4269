//! The delivery cases of the store conformance suite: each sink's mark in the audit log and
//! its parked records ([`remediation_core::DeliveryStore`]), the relay's lease fencing them,
//! and the record fields the outbox's events carry.

use std::collections::BTreeSet;
use std::sync::Arc;

use remediation_core::{
    AuditBody, AuditFilter, Fence, Lease, LimitReached, MarkAdvance, ParkedRecord, ReplayOutcome, SettingsRecord,
    Settlement, SinkMark, State, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

use super::{Subject, TASKS, TTL, change, create, lease_clock, pending, sequence_all, worker};
use crate::{fixed_time, slot};

const SIEM: &str = "events/siem";
const FILE: &str = "audit/file";
/// The relay's named lease in the fencing case.
const RELAY: &str = "event-relay";

fn advance(
    sink: &str,
    (from, to): (u64, u64),
    parked: &[(u64, &str)],
    at: OffsetDateTime,
    fence: Option<Fence>,
) -> MarkAdvance {
    MarkAdvance {
        sink: sink.to_owned(),
        from,
        to,
        parked: parked.iter().map(|(seq, reason)| (*seq, (*reason).to_owned())).collect(),
        at,
        fence,
    }
}

fn parked(sink: &str, seq: u64, reason: &str, parked_at: OffsetDateTime, replay: bool) -> ParkedRecord {
    ParkedRecord { sink: sink.to_owned(), seq, reason: reason.to_owned(), parked_at, replay }
}

fn mark(sink: &str, delivered_through: u64, updated_at: OffsetDateTime) -> SinkMark {
    SinkMark { sink: sink.to_owned(), delivered_through, updated_at }
}

fn fence(lease: &Lease) -> Fence {
    Fence { name: RELAY.to_owned(), holder: lease.holder.clone(), epoch: lease.epoch }
}

fn settlement(sink: &str, seq: u64, outcome: ReplayOutcome, at: OffsetDateTime, fence: Option<Fence>) -> Settlement {
    Settlement { sink: sink.to_owned(), seq, outcome, at, fence }
}

/// Everything the store keeps of delivery: every mark and every parked record.
async fn delivery_state(store: &dyn Store) -> (Vec<SinkMark>, Vec<ParkedRecord>) {
    (store.sink_marks().await.expect("marks"), store.parked(None).await.expect("parked"))
}

/// Registration returns the stored mark (of concurrent registrations too); a mark moves only
/// from the stored value, only forward, parking the records it names in the same step.
pub async fn delivery_marks(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    assert!(store.sink_marks().await.expect("marks").is_empty(), "a new store has no sinks");
    assert_eq!(store.register_sink(SIEM, 5, t0).await.expect("register"), 5, "registered at its start");
    assert_eq!(
        store.register_sink(SIEM, 9, t0 + Duration::minutes(1)).await.expect("register"),
        5,
        "registering again returns the stored mark"
    );
    assert_eq!(store.sink_marks().await.expect("marks"), [mark(SIEM, 5, t0)], "and changes nothing");

    // Of concurrent registrations with different starts, one stores its start; all get it.
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.register_sink(FILE, 100 + n, t0).await.expect("register") })
        })
        .collect();
    let mut got = BTreeSet::new();
    for t in tasks {
        got.insert(t.await.expect("task"));
    }
    assert_eq!(got.len(), 1, "every registration gets the one stored mark: {got:?}");
    let file_mark = got.pop_first().unwrap_or_default();
    assert!((100..100 + TASKS).contains(&file_mark), "one of the starts given: {file_mark}");
    assert_eq!(
        store.sink_marks().await.expect("marks"),
        [mark(FILE, file_mark, t0), mark(SIEM, 5, t0)],
        "one mark per sink, by name"
    );

    let t1 = t0 + Duration::minutes(1);
    store.advance_sink(&advance(SIEM, (5, 8), &[], t1, None)).await.expect("moves from the stored mark");
    assert_eq!(store.sink_marks().await.expect("marks")[1], mark(SIEM, 8, t1));
    let before = delivery_state(store.as_ref()).await;

    // A relay that read an older mark is refused, with the mark it would have to read.
    let t2 = t0 + Duration::minutes(2);
    let stale = store.advance_sink(&advance(SIEM, (5, 12), &[(6, "HTTP 400")], t2, None)).await;
    assert!(
        matches!(stale, Err(StoreError::DeliveryConflict { ref sink, expected: 5, found: 8 }) if sink == SIEM),
        "{stale:?}"
    );
    let unknown = store.advance_sink(&advance("events/nobody", (0, 3), &[], t2, None)).await;
    assert!(matches!(unknown, Err(StoreError::DeliveryConflict { .. })), "an unregistered sink: {unknown:?}");
    // A mark never goes back or stays, and parks only what it passes.
    for (to, parks) in [(8, &[][..]), (7, &[][..]), (10, &[(8, "already delivered")][..]), (10, &[(11, "ahead")][..])] {
        let refused = store.advance_sink(&advance(SIEM, (8, to), parks, t2, None)).await;
        assert!(
            matches!(refused, Err(ref e) if !matches!(e, StoreError::DeliveryConflict { .. } | StoreError::LeaseLost { .. })),
            "8 to {to} parking {parks:?}: {refused:?}"
        );
    }
    assert_eq!(delivery_state(store.as_ref()).await, before, "the refused moves wrote nothing");

    // One move parks several records.
    let t3 = t0 + Duration::minutes(3);
    let parks = [(9, "HTTP 400: unknown field"), (12, "HTTP 413: too large"), (15, "HTTP 422")];
    store.advance_sink(&advance(SIEM, (8, 15), &parks, t3, None)).await.expect("moves and parks");
    let siem_parked: Vec<ParkedRecord> = parks.iter().map(|(seq, why)| parked(SIEM, *seq, why, t3, false)).collect();
    assert_eq!(store.parked(Some(SIEM.to_owned())).await.expect("parked"), siem_parked);
    assert_eq!(store.sink_marks().await.expect("marks")[1], mark(SIEM, 15, t3));
    let file_parks = [(file_mark + 1, "disk full")];
    store.advance_sink(&advance(FILE, (file_mark, file_mark + 2), &file_parks, t3, None)).await.expect("moves");

    let mut all = vec![parked(FILE, file_mark + 1, "disk full", t3, false)];
    all.extend(siem_parked);
    assert_eq!(store.parked(None).await.expect("parked"), all, "every sink's, by sink and seq");
    assert_eq!(store.parked(Some(FILE.to_owned())).await.expect("parked"), all[..1]);
    assert!(store.parked(Some("events/nobody".to_owned())).await.expect("parked").is_empty());
}

/// A fenced move or settlement happens only while the named lease is the stored one (holder
/// and epoch) and live by the store's clock; otherwise `LeaseLost` and nothing is written.
pub async fn delivery_fencing(subject: Subject) {
    let clock = lease_clock(&subject);
    let store = subject.store;
    let at = fixed_time();
    store.register_sink(SIEM, 0, at).await.expect("register");
    let a = store.acquire_lease(RELAY, &worker("relay-a")).await.expect("acquire").expect("free");
    store.advance_sink(&advance(SIEM, (0, 3), &[(2, "HTTP 400")], at, Some(fence(&a)))).await.expect("held: moves");
    let parked_2 = |outcome| settlement(SIEM, 2, outcome, at, Some(fence(&a)));
    let state = delivery_state(store.as_ref()).await;

    let lost = |what: &str, result: Result<(), StoreError>| {
        assert!(matches!(result, Err(StoreError::LeaseLost { .. })), "{what}: {result:?}");
    };
    let other_holder = Some(Fence { holder: "relay-b".to_owned(), ..fence(&a) });
    lost("another holder", store.advance_sink(&advance(SIEM, (3, 5), &[(4, "x")], at, other_holder)).await);
    let other_epoch = Some(Fence { epoch: a.epoch + 1, ..fence(&a) });
    lost("another epoch", store.advance_sink(&advance(SIEM, (3, 5), &[(4, "x")], at, other_epoch)).await);
    let no_lease = Some(Fence { name: "no-such-lease".to_owned(), ..fence(&a) });
    lost("a lease never granted", store.advance_sink(&advance(SIEM, (3, 5), &[], at, no_lease)).await);
    assert_eq!(delivery_state(store.as_ref()).await, state, "nothing was written");

    // Released: the holder's fence no longer holds.
    store.release_lease(RELAY, &a).await.expect("release");
    lost("released", store.advance_sink(&advance(SIEM, (3, 5), &[(4, "x")], at, Some(fence(&a)))).await);
    lost("released", store.settle_parked(&parked_2(ReplayOutcome::Delivered)).await);
    assert_eq!(delivery_state(store.as_ref()).await, state, "nothing was written");

    // Granted again: the fence of the earlier grant is stale.
    let a2 = store.acquire_lease(RELAY, &worker("relay-a")).await.expect("acquire").expect("free");
    lost("the earlier grant", store.advance_sink(&advance(SIEM, (3, 5), &[], at, Some(fence(&a)))).await);
    assert_eq!(delivery_state(store.as_ref()).await, state, "nothing was written");

    // Live until its expiry by the store's clock, not at it.
    clock.advance(Duration::try_from(TTL).unwrap_or(Duration::ZERO) - Duration::nanoseconds(1));
    store.advance_sink(&advance(SIEM, (3, 5), &[], at, Some(fence(&a2)))).await.expect("live until its expiry");
    let state = delivery_state(store.as_ref()).await;
    clock.advance(Duration::nanoseconds(1));
    lost("expired", store.advance_sink(&advance(SIEM, (5, 7), &[(6, "x")], at, Some(fence(&a2)))).await);
    let settle_a2 = settlement(SIEM, 2, ReplayOutcome::RefusedAgain("again".to_owned()), at, Some(fence(&a2)));
    lost("expired", store.settle_parked(&settle_a2).await);
    assert_eq!(delivery_state(store.as_ref()).await, state, "nothing was written");

    // Taken over by another holder: only the new holder's fence holds.
    let b = store.acquire_lease(RELAY, &worker("relay-b")).await.expect("acquire").expect("expired");
    lost("taken over", store.advance_sink(&advance(SIEM, (5, 7), &[], at, Some(fence(&a2)))).await);
    assert_eq!(delivery_state(store.as_ref()).await, state, "nothing was written");
    store.advance_sink(&advance(SIEM, (5, 7), &[(6, "HTTP 400")], at, Some(fence(&b)))).await.expect("the new holder");
    let settle_b = settlement(SIEM, 2, ReplayOutcome::Delivered, at, Some(fence(&b)));
    store.settle_parked(&settle_b).await.expect("the new holder settles");
    assert_eq!(
        delivery_state(store.as_ref()).await,
        (vec![mark(SIEM, 7, at)], vec![parked(SIEM, 6, "HTTP 400", at, false)]),
        "the new holder's writes"
    );
}

/// Replay requests mark parked records (of some seqs or all) and count them; a settlement
/// removes a delivered record, or keeps a refused one with the new reason and no request.
pub async fn parked_replay(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    for sink in [SIEM, FILE] {
        store.register_sink(sink, 0, t0).await.expect("register");
    }
    let parks = [(2, "r2"), (4, "r4"), (6, "r6"), (8, "r8")];
    store.advance_sink(&advance(SIEM, (0, 10), &parks, t0, None)).await.expect("park");
    store.advance_sink(&advance(FILE, (0, 3), &[(1, "r1")], t0, None)).await.expect("park");
    let marks = store.sink_marks().await.expect("marks");
    let replays = |sink: &str| {
        let (store, sink) = (Arc::clone(&store), sink.to_owned());
        async move { store.parked(Some(sink)).await.expect("parked").iter().map(|p| (p.seq, p.replay)).collect::<Vec<_>>() }
    };

    assert_eq!(
        store.request_replay(SIEM, Some(vec![4, 8, 9, 4])).await.expect("replay"),
        2,
        "9 is not parked; 4 counts once"
    );
    assert_eq!(replays(SIEM).await, [(2, false), (4, true), (6, false), (8, true)]);
    assert_eq!(store.request_replay(SIEM, None).await.expect("replay"), 4, "all of the sink's");
    assert_eq!(replays(SIEM).await, [(2, true), (4, true), (6, true), (8, true)]);
    assert_eq!(replays(FILE).await, [(1, false)], "another sink's stay");
    assert_eq!(store.request_replay("events/nobody", None).await.expect("replay"), 0);
    assert_eq!(store.request_replay(FILE, Some(Vec::new())).await.expect("replay"), 0, "no seqs: none");

    let t1 = t0 + Duration::minutes(5);
    store.settle_parked(&settlement(SIEM, 4, ReplayOutcome::Delivered, t1, None)).await.expect("delivered");
    let again = ReplayOutcome::RefusedAgain("HTTP 400 again".to_owned());
    store.settle_parked(&settlement(SIEM, 6, again.clone(), t1, None)).await.expect("refused again");
    // Settling what is not parked does nothing.
    store.settle_parked(&settlement(SIEM, 4, ReplayOutcome::Delivered, t1, None)).await.expect("settled already");
    store.settle_parked(&settlement(SIEM, 5, again.clone(), t1, None)).await.expect("never parked");
    store.settle_parked(&settlement("events/nobody", 2, again, t1, None)).await.expect("unknown sink");
    assert_eq!(
        store.parked(None).await.expect("parked"),
        [
            parked(FILE, 1, "r1", t0, false),
            parked(SIEM, 2, "r2", t0, true),
            parked(SIEM, 6, "HTTP 400 again", t1, false),
            parked(SIEM, 8, "r8", t0, true),
        ]
    );
    assert_eq!(store.sink_marks().await.expect("marks"), marks, "settling moves no mark");
}

/// The fields events carry on their audit records (the full window of a held action, the
/// action behind an installation-wide change) come back as written, and the chain verifies.
pub async fn outbox_record_fields(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    let detail = pending(21, t0);
    let id = detail.action.id;
    create(store.as_ref(), &detail).await;
    store
        .apply(&change(&detail, State::PendingApproval, State::Approved, "approve", t0 + Duration::minutes(1)))
        .await
        .expect("approve");
    let mut held = change(&detail, State::Approved, State::Held, "held", t0 + Duration::minutes(2));
    held.record.limit = Some(LimitReached { slot: slot("connector:sandbox", 3, 3600), used: 3, frees_at: None });
    store.apply(&held).await.expect("held");
    let note = SettingsRecord {
        setting_event: "breaker_tripped".to_owned(),
        actor: "system".to_owned(),
        credential: None,
        at: t0 + Duration::minutes(3),
        comment: Some("three failures in a row".to_owned()),
        previous: serde_json::json!({"breaker": "closed"}),
        value: serde_json::json!({"breaker": "open"}),
        action_id: Some(id),
    };
    store.append_note(&note).await.expect("note");
    sequence_all(store.as_ref()).await;

    let records = store.audit_page(&AuditFilter::default(), None, 100).await.expect("records");
    let bodies: Vec<&AuditBody> = records.iter().map(|r| &r.body).collect();
    assert!(bodies.contains(&&AuditBody::Transition(held.record.clone())), "the held record with its window");
    assert!(bodies.contains(&&AuditBody::Settings(note.clone())), "the note with its action");
    assert_eq!(store.transitions(id).await.expect("transitions").last(), Some(&held.record));
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 4);
}
