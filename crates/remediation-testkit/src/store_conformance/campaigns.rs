//! Conformance cases for short handles and campaigns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use remediation_core::store::{Campaign, CampaignProgress, CampaignReason};
use remediation_core::{ActionFilter, PageRequest, State, StoreError};
use serde_json::json;
use time::Duration;

use super::{Subject, create, pending};
use crate::{ActionBuilder, fixed_time};

/// Concurrent creators in the handle case.
const CREATORS: u64 = 16;

/// Every stored action gets a handle, 1, 2, ... in the order stored, never twice, also when
/// N tasks create actions at once; `action_by_handle` finds each and nothing else; `get` and
/// `list` return it. The campaign filter lists exactly a campaign's actions.
pub async fn handles_and_campaign_filter(subject: Subject) {
    let store = subject.store;
    let t0 = fixed_time();
    let first = pending(1, t0);
    let given = store
        .create_action(&first, &crate::transition(first.action.id, None, first.action.state, "suggest", t0))
        .await
        .expect("create_action");
    assert_eq!(given, Some(1), "create_action answers the handle it gave");
    let stored = store.get(first.action.id).await.expect("get");
    assert_eq!(stored.action.handle, Some(1), "the first action stored is #1");
    let tasks: Vec<_> = (0..CREATORS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut d = ActionBuilder::new()
                    .seed(100 + i)
                    .state(State::PendingApproval)
                    .at(t0 + Duration::seconds(1))
                    .detail()
                    .build();
                if i % 2 == 0 {
                    d.action.campaign = Some("q4".to_owned());
                }
                create(store.as_ref(), &d).await;
                d.action.id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task"));
    }
    let mut handles = BTreeSet::new();
    for id in &ids {
        let d = store.get(*id).await.expect("get");
        let h = d.action.handle.expect("every stored action has a handle");
        assert!(handles.insert(h), "handle {h} given twice");
        assert_eq!(store.action_by_handle(h).await.expect("by handle"), Some(*id));
    }
    assert_eq!(handles, (2..=CREATORS + 1).collect::<BTreeSet<_>>(), "1..=N+1 without gaps or repeats");
    assert_eq!(store.action_by_handle(CREATORS + 2).await.expect("by handle"), None);
    assert_eq!(store.action_by_handle(0).await.expect("by handle"), None);
    assert_eq!(store.action_by_handle(u64::MAX).await.expect("by handle"), None);

    let all = store.list(&ActionFilter::default(), &PageRequest::first(100)).await.expect("list");
    assert!(all.items.iter().all(|a| a.handle.is_some()), "list returns handles");
    let q4 = ActionFilter { campaign: Some("q4".to_owned()), ..ActionFilter::default() };
    let got = store.list(&q4, &PageRequest::first(100)).await.expect("list");
    assert_eq!(got.items.len(), usize::try_from(CREATORS / 2).expect("small"), "exactly the campaign's actions");
    assert!(got.items.iter().all(|a| a.campaign.as_deref() == Some("q4")));
    let none = ActionFilter { campaign: Some("q5".to_owned()), ..ActionFilter::default() };
    assert!(store.list(&none, &PageRequest::first(100)).await.expect("list").items.is_empty());

    // A state change keeps the handle and the campaign.
    let approved = store
        .apply(&super::change(&first, State::PendingApproval, State::Approved, "approve", t0 + Duration::seconds(2)))
        .await
        .expect("approve");
    assert_eq!(approved.handle, Some(1));
    assert_eq!(store.get(first.action.id).await.expect("get").action.handle, Some(1));
}

pub(crate) fn campaign(name: &str, total: u64) -> Campaign {
    Campaign {
        name: name.to_owned(),
        created_by: "local:alice".to_owned(),
        created_at: fixed_time(),
        source: "findings.json".to_owned(),
        format: Some("own".to_owned()),
        connector: None,
        total,
        cursor: 0,
        outcomes: BTreeMap::new(),
        reasons: Vec::new(),
        finished_at: None,
        updated_at: fixed_time(),
    }
}

fn progress(cursor: u64, created: u64) -> CampaignProgress {
    CampaignProgress {
        cursor,
        outcomes: BTreeMap::from([("created".to_owned(), created)]),
        reasons: vec![CampaignReason { outcome: "unsupported".to_owned(), reason: "no mapping".to_owned(), count: 1 }],
        finished_at: None,
        at: fixed_time() + Duration::seconds(i64::try_from(cursor).expect("small")),
    }
}

/// A campaign is stored with its entries, which read back in order by range; a second one of
/// the same name is refused; progress moves only forward and never beyond the end; of N
/// concurrent recorders of progress, the stored cursor ends at the largest.
pub async fn campaigns(subject: Subject) {
    let store = subject.store;
    let entries: Vec<serde_json::Value> = (0..2_500).map(|i| json!({"i": i, "text": "é<\"'>"})).collect();
    store.create_campaign(&campaign("q4", 2_500), &entries).await.expect("create");
    match store.create_campaign(&campaign("q4", 1), &entries[..1]).await {
        Err(StoreError::CampaignConflict { .. }) => {}
        other => panic!("a second campaign named q4 must be refused, got {other:?}"),
    }
    let stored = store.campaign("q4").await.expect("read").expect("stored");
    assert_eq!(stored, campaign("q4", 2_500));
    assert_eq!(store.campaign("nope").await.expect("read"), None);
    let page = store.campaign_entries("q4", 2_000, 1_000).await.expect("entries");
    assert_eq!(page.len(), 500, "the last 500");
    assert_eq!(page[0], (2_000, json!({"i": 2_000, "text": "é<\"'>"})));
    assert_eq!(page[499].0, 2_499);
    assert_eq!(store.campaign_entries("q4", 0, 3).await.expect("entries").len(), 3);
    assert!(store.campaign_entries("q4", 2_500, 10).await.expect("entries").is_empty());
    assert!(matches!(store.campaign_entries("nope", 0, 1).await, Err(StoreError::CampaignNotFound(_))));

    let after = store.record_campaign_progress("q4", &progress(100, 90)).await.expect("progress");
    assert_eq!((after.cursor, after.outcomes.get("created").copied()), (100, Some(90)));
    assert_eq!(after.reasons.len(), 1);
    assert!(matches!(
        store.record_campaign_progress("q4", &progress(50, 40)).await,
        Err(StoreError::CampaignConflict { .. })
    ));
    assert!(matches!(
        store.record_campaign_progress("q4", &progress(2_501, 40)).await,
        Err(StoreError::CampaignConflict { .. })
    ));
    assert!(matches!(
        store.record_campaign_progress("nope", &progress(1, 1)).await,
        Err(StoreError::CampaignNotFound(_))
    ));
    assert_eq!(store.campaign("q4").await.expect("read").expect("stored").cursor, 100, "refusals wrote nothing");

    let tasks: Vec<_> = (1..=8_u64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_campaign_progress("q4", &progress(100 + i * 10, i)).await })
        })
        .collect();
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) | Err(StoreError::CampaignConflict { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(store.campaign("q4").await.expect("read").expect("stored").cursor, 180, "the largest wins");

    let mut done = progress(2_500, 2_400);
    done.finished_at = Some(fixed_time() + Duration::hours(1));
    let finished = store.record_campaign_progress("q4", &done).await.expect("finish");
    assert!(finished.is_finished());
    assert_eq!(finished.finished_at, done.finished_at);

    store
        .create_campaign(&Campaign { created_at: fixed_time() + Duration::days(1), ..campaign("q5", 0) }, &[])
        .await
        .expect("empty");
    let names: Vec<String> = store.campaigns().await.expect("list").into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["q5", "q4"], "newest first");
}
