//! Listing filters beyond state, checked against the rule every store applies.

use remediation_core::{ActionFilter, ActionStore, CanonicalTarget, PageRequest, State};
use remediation_testkit::{ActionBuilder, fixed_time, transition};

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_connector_identity_canonical_id_and_control() {
    let Some(db) = TestDb::create("listing_filters_by_connector_identity").await else { return };
    let (_schema, store, _clock) = db.store().await;
    let mut all = Vec::new();
    for n in 0..24u64 {
        let mut detail = ActionBuilder::new()
            .seed(n + 1)
            .connector(if n % 2 == 0 { "okta" } else { "github" })
            .state(if n % 3 == 0 { State::Approved } else { State::PendingApproval })
            .at(fixed_time() + time::Duration::seconds(i64::try_from(n / 4).unwrap()))
            .detail()
            .build();
        detail.action.target.identity = format!("user{}", n % 4);
        detail.action.control_id = (n % 5 == 0).then(|| "mfa".to_owned());
        if n % 4 == 1 {
            detail.action.canonical = Some(CanonicalTarget::identity("00u-canonical"));
        }
        let a = &detail.action;
        store.create_action(&detail, &transition(a.id, None, a.state, "suggest", a.created_at)).await.expect("create");
        all.push(detail.action.clone());
    }
    all.sort_by_key(|a| (a.created_at, a.id));
    let filters = [
        ActionFilter { connector: Some("okta".into()), ..ActionFilter::default() },
        ActionFilter { identity: Some("user2".into()), ..ActionFilter::default() },
        ActionFilter { identity: Some("00u-canonical".into()), ..ActionFilter::default() },
        ActionFilter { control: Some("mfa".into()), ..ActionFilter::default() },
        ActionFilter { state: Some(State::Approved), connector: Some("github".into()), ..ActionFilter::default() },
        ActionFilter { connector: Some("nobody".into()), ..ActionFilter::default() },
    ];
    for filter in filters {
        let expected: Vec<_> = all.iter().filter(|a| filter.matches(a)).map(|a| a.id).collect();
        let mut seen = Vec::new();
        let mut page = PageRequest::first(3);
        loop {
            let got = store.list(&filter, &page).await.expect("list");
            seen.extend(got.items.iter().map(|a| a.id));
            match got.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{filter:?}");
    }
    drop(store);
    db.drop().await;
}

/// Two workers reserving at once take different approved actions; each sees its own again;
/// and once a reservation expires (its worker died) another takes the actions over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_give_replicas_different_actions_until_they_expire() {
    let Some(db) = TestDb::create("reservations_give_replicas_different_actions").await else { return };
    let (_schema, store, _clock) = db.store().await;
    let t0 = fixed_time();
    let mut made = Vec::new();
    for n in 0..10u64 {
        let mut detail = ActionBuilder::new()
            .seed(n + 1)
            .connector("okta")
            .state(State::Approved)
            .at(t0 + time::Duration::seconds(i64::try_from(n).unwrap()))
            .detail()
            .build();
        detail.approval_expires_at = None;
        let a = &detail.action;
        store.create_action(&detail, &transition(a.id, None, a.state, "approve", a.created_at)).await.expect("create");
        made.push(detail.action.id);
    }
    let ids = |v: Vec<remediation_core::ActionDetail>| v.into_iter().map(|d| d.action.id).collect::<Vec<_>>();
    let until = t0 + time::Duration::seconds(30);
    let okta = || Some("okta".to_owned());
    // At once: no action in both answers, and together the ten.
    let (a, b) = tokio::join!(
        store.reserve_claimable(t0, okta(), 5, "worker-a", until),
        store.reserve_claimable(t0, okta(), 5, "worker-b", until)
    );
    let (a, b) = (ids(a.expect("a")), ids(b.expect("b")));
    assert_eq!(a.len() + b.len(), 10, "{a:?} {b:?}");
    assert!(a.iter().all(|id| !b.contains(id)), "{a:?} {b:?}");
    let mut together: Vec<_> = a.iter().chain(&b).copied().collect();
    together.sort_by_key(|id| made.iter().position(|m| m == id));
    assert_eq!(together, made);
    // Each worker sees its own again, oldest first; a third sees nothing while they hold them.
    let again = ids(store.reserve_claimable(t0, okta(), 10, "worker-a", until).await.expect("again"));
    let mut sorted = a.clone();
    sorted.sort_by_key(|id| made.iter().position(|m| m == id));
    assert_eq!(again, sorted);
    assert!(store.reserve_claimable(t0, okta(), 10, "worker-c", until).await.expect("c").is_empty());
    // `claimable` itself is unchanged: every approved action.
    assert_eq!(ids(store.claimable(t0, okta(), 10).await.expect("claimable")), made);
    // Expired: the next reader takes them all.
    let later = until + time::Duration::seconds(1);
    let taken = ids(store
        .reserve_claimable(later, okta(), 10, "worker-c", later + time::Duration::seconds(30))
        .await
        .expect("c"));
    assert_eq!(taken, made);
    drop(store);
    db.drop().await;
}
