//! Blast-radius windows: exactly `limit` executions inside any window, nothing written when a
//! window is full, and the same answers as the limiter's reference sliding log.

use remediation_core::store::prelude::*;
use remediation_core::{BeginOutcome, LimitReached, SlotRequest, State, StateChange};
use remediation_limiter::{SlidingLog, Window};
use remediation_store_sqlite::SqliteStore;
use time::{Duration, OffsetDateTime};

use crate::support::{change, count, create, id, t, temp_store};

fn slot(key: &str, limit: u32, window_secs: u64) -> SlotRequest {
    SlotRequest { key: key.to_owned(), limit, window_secs }
}

fn begin(n: u32, at: OffsetDateTime) -> StateChange {
    change(n, State::Approved, State::Executing, "begin_execution", at)
}

async fn started(store: &SqliteStore, n: u32, at: OffsetDateTime, slots: &[SlotRequest], enforce: bool) -> bool {
    match store.begin_execution(&begin(n, at), slots, enforce).await.expect("begin") {
        BeginOutcome::Started(action) => {
            assert_eq!(action.state, State::Executing);
            true
        }
        BeginOutcome::LimitReached(_) => false,
    }
}

#[tokio::test]
async fn admits_exactly_the_limit_then_again_once_the_window_has_passed() {
    let (_dir, path, store) = temp_store();
    let slots = [slot("connector:sandbox", 3, 60)];
    for n in 1..=6 {
        create(&store, n, State::Approved, t(0)).await;
    }
    assert!(started(&store, 1, t(0), &slots, true).await);
    assert!(started(&store, 2, t(10), &slots, true).await);
    assert!(started(&store, 3, t(20), &slots, true).await);

    let audit = count(&path, "audit");
    let almost = t(60) - Duration::nanoseconds(1);
    let outcome = store.begin_execution(&begin(4, almost), &slots, true).await.expect("begin");
    // It frees when the slot taken at t0 leaves the window: at t0 + 60 s, as below.
    let full = LimitReached { slot: slots[0].clone(), used: 3, frees_at: Some(t(60)) };
    assert_eq!(outcome, BeginOutcome::LimitReached(full));
    // Nothing written: no slot, no transition, no audit record, state unchanged.
    assert_eq!(count(&path, "limit_slots"), 3);
    assert_eq!(count(&path, "audit"), audit);
    assert_eq!(store.get(id(4)).await.expect("get").action.state, State::Approved);

    // At t0 + 60 s the window is (t0, t0 + 60 s]: the slot taken at t0 has left it.
    assert!(started(&store, 4, t(60), &slots, true).await);
    assert!(!started(&store, 5, t(65), &slots, true).await);
    assert!(started(&store, 5, t(70), &slots, true).await);
    assert_eq!(count(&path, "limit_slots"), 5);
    assert!(store.verify_audit().expect("verify").is_intact());
}

#[tokio::test]
async fn enforce_false_records_the_slot_anyway() {
    let (_dir, path, store) = temp_store();
    let slots = [slot("global", 1, 3600)];
    create(&store, 1, State::Approved, t(0)).await;
    create(&store, 2, State::Approved, t(0)).await;
    assert!(started(&store, 1, t(1), &slots, true).await);
    assert!(started(&store, 2, t(2), &slots, false).await);
    assert_eq!(count(&path, "limit_slots"), 2);
    assert_eq!(
        store.check_limits(&slots, t(3)).await.expect("check"),
        // One more fits only once both have aged out: the younger at t2 + 1 h.
        Some(LimitReached { slot: slots[0].clone(), used: 2, frees_at: Some(t(2 + 3600)) })
    );
}

#[tokio::test]
async fn check_limits_counts_without_writing_and_names_the_first_full_window() {
    let (_dir, path, store) = temp_store();
    let slots = [slot("global", 10, 3600), slot("identity:sandbox:user1", 1, 86_400), slot("resource:x", 0, 60)];
    create(&store, 1, State::Approved, t(0)).await;
    assert_eq!(store.check_limits(&slots[..2], t(0)).await.expect("check"), None);
    assert!(started(&store, 1, t(0), &slots[..2], true).await);
    assert_eq!(
        store.check_limits(&slots, t(1)).await.expect("check"),
        Some(LimitReached { slot: slots[1].clone(), used: 1, frees_at: Some(t(86_400)) })
    );
    assert_eq!(
        store.check_limits(&slots[2..], t(1)).await.expect("check"),
        // A limit of 0 never frees.
        Some(LimitReached { slot: slots[2].clone(), used: 0, frees_at: None })
    );
    assert_eq!(store.check_limits(&slots[1..2], t(86_400)).await.expect("check"), None);
    assert_eq!(count(&path, "limit_slots"), 2);
}

#[tokio::test]
async fn a_window_longer_than_the_calendar_counts_everything() {
    let store = SqliteStore::open_in_memory().expect("open");
    let slots = [slot("global", 1, u64::MAX)];
    create(&store, 1, State::Approved, t(0)).await;
    create(&store, 2, State::Approved, t(0)).await;
    assert!(started(&store, 1, t(0), &slots, true).await);
    assert!(!started(&store, 2, t(1_000_000_000), &slots, true).await);
}

/// Admissions by the store match the limiter's reference [`SlidingLog`] for the same
/// instants.
#[tokio::test]
async fn agrees_with_the_reference_sliding_log() {
    let store = SqliteStore::open_in_memory().expect("open");
    let slots = [slot("connector:sandbox", 4, 30)];
    let window = Window::of(&slots[0]);
    let mut log = SlidingLog::default();
    let gaps_ms = [0, 1, 5_000, 0, 9_999, 15_000, 1, 29_999, 1, 0, 30_000, 2, 7_000, 7_000, 7_000, 7_000, 2_000, 100];
    let mut now = t(0);
    for (n, gap) in (1..).zip(gaps_ms) {
        now += Duration::milliseconds(gap);
        create(&store, n, State::Approved, t(0)).await;
        let expected = log.try_record(window, now);
        assert_eq!(started(&store, n, now, &slots, true).await, expected, "action {n} at {now}");
    }
}
