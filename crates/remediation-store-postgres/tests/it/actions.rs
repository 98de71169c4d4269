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
