//! The event stream: every audited transition is also emitted, in order, so a webhook
//! receiver sees the same lifecycle as the audit trail.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use remediation_core::{EngineEvent, EventSink, ExecuteOutcome, Mode, RollbackOutcome};
use remediation_testkit::{AllowAll, Harness, NoLimits, RequestBuilder, approver, requester};

#[derive(Default)]
struct Recorder(Mutex<Vec<EngineEvent>>);

#[async_trait]
impl EventSink for Recorder {
    async fn emit(&self, event: &EngineEvent) {
        self.0.lock().expect("lock").push(event.clone());
    }
}

#[tokio::test]
async fn every_audited_transition_is_emitted_in_order() {
    let mut h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
    let recorder = Arc::new(Recorder::default());
    h.engine = h.engine.with_events(recorder.clone());

    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    let back = h.engine.rollback(s.action.id, &approver("bob"), None).await.expect("rollback");
    assert!(matches!(back, RollbackOutcome::RolledBack { .. }), "{back:?}");

    let audited: Vec<_> = h.store.audit().into_iter().map(|r| (r.from, r.to, r.event)).collect();
    let emitted: Vec<_> = recorder
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Transition { record } => Some((record.from, record.to, record.event.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(emitted, audited);
    assert_eq!(emitted.len(), 6, "suggest, approve, begin, complete, begin rollback, rolled back: {emitted:?}");
}
