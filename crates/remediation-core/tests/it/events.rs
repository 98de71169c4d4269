//! The event stream is the audit log: every record is one event, in `seq` order, so a sink
//! sees the same lifecycle as the audit trail, and a held action, the breaker and a fix that
//! did not hold are events because they are audited.

use remediation_core::{
    AuditFilter, AuditLog, CloudEvent, DID_NOT_HOLD_EVENT, EngineEvent, ExecuteOutcome, GLOBAL_LIMIT_KEY, Mode,
    RollbackOutcome, SettingsRecord, SlotRequest, State,
};
use remediation_testkit::{AllowAll, FixedLimits, Harness, NoLimits, RequestBuilder, action_id, approver, requester};

async fn events_of(h: &Harness) -> Vec<CloudEvent> {
    let records = h.store.audit_page(&AuditFilter::default(), None, 10_000).await.expect("audit");
    records.iter().map(|r| CloudEvent::from_record(r, "/remediation/default")).collect()
}

#[tokio::test]
async fn every_audit_record_is_one_event_in_order() {
    let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    let back = h.engine.rollback(s.action.id, &approver("bob"), None).await.expect("rollback");
    assert!(matches!(back, RollbackOutcome::RolledBack { .. }), "{back:?}");
    // A refusal is audited, so it is an event too.
    assert!(h.engine.approve(s.action.id, &requester(), None).await.is_err());

    let audited: Vec<_> = h.store.audit().into_iter().map(|r| (r.from, r.to, r.event)).collect();
    let events = events_of(&h).await;
    let emitted: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EngineEvent::Transition { record } => Some((record.from, record.to, record.event.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(emitted, audited);
    assert_eq!(emitted.len(), 6, "suggest, approve, begin, complete, begin rollback, rolled back: {emitted:?}");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e.auditseq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "consecutive, in order");
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "one id per event");
    let refused = events.last().expect("the refusal");
    assert_eq!(refused.event_type, "dev.remediation.approval.refused");
    assert_eq!(refused.subject, Some(s.action.id.to_string()));
}

#[tokio::test]
async fn a_limit_hold_carries_the_window_and_the_breaker_names_the_action() {
    let global = SlotRequest { key: GLOBAL_LIMIT_KEY.to_owned(), limit: 0, window_secs: 3600 };
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![global.clone()]));
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Held { .. }), "{out:?}");

    let events = events_of(&h).await;
    let held = events.iter().find(|e| e.event_type == "dev.remediation.action.held").expect("held event");
    let EngineEvent::Held { action_id, limit: Some(limit), reason } = &held.data else { panic!("{held:?}") };
    assert_eq!((*action_id, &limit.slot), (s.action.id, &global));
    assert!(reason.contains("blast-radius limit"), "{reason}");
    let tripped = events.iter().find(|e| e.event_type == "dev.remediation.breaker.tripped").expect("breaker event");
    assert_eq!(tripped.data, EngineEvent::BreakerTripped { action_id: Some(s.action.id) });
    assert!(held.auditseq < tripped.auditseq, "held, then the breaker");
}

#[tokio::test]
async fn a_fix_that_did_not_hold_is_audited_and_so_an_event() {
    let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    let target = s.action.target.clone();
    h.engine.record_did_not_hold(s.action.id, "ctl-1", &target, &requester()).await.expect("recorded");

    let last = events_of(&h).await.pop().expect("an event");
    assert_eq!(last.event_type, "dev.remediation.action.did_not_hold");
    assert_eq!(
        last.data,
        EngineEvent::RemediationDidNotHold { action_id: s.action.id, control_id: "ctl-1".to_owned(), target }
    );
    // Only about a completed action.
    let open = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    assert!(h.engine.record_did_not_hold(open.action.id, "ctl-1", &open.action.target, &requester()).await.is_err());
}

#[test]
fn settings_records_map_to_their_events_and_a_malformed_note_stays_an_event() {
    let note = |event: &str, value: serde_json::Value, action: Option<remediation_core::ActionId>| SettingsRecord {
        setting_event: event.to_owned(),
        actor: "admin".to_owned(),
        credential: None,
        at: remediation_testkit::fixed_time(),
        comment: Some("why".to_owned()),
        previous: serde_json::Value::Null,
        value,
        action_id: action,
    };
    let from = |s: SettingsRecord| EngineEvent::from_audit(&s.into());
    assert_eq!(
        from(note("kill_switch_on", serde_json::json!({}), None)),
        EngineEvent::SafetyChanged { setting_event: "kill_switch_on".to_owned(), actor: "admin".to_owned() }
    );
    assert_eq!(
        from(note("execution_refused", serde_json::json!({"action_id": action_id(3), "state": "approved"}), None)),
        EngineEvent::Refused {
            setting_event: "execution_refused".to_owned(),
            actor: "admin".to_owned(),
            action_id: Some(action_id(3)),
            reason: Some("why".to_owned()),
        }
    );
    // A did-not-hold note without its fields is still delivered, as a settings event.
    assert!(matches!(
        from(note(DID_NOT_HOLD_EVENT, serde_json::json!({}), Some(action_id(3)))),
        EngineEvent::SafetyChanged { .. }
    ));
    // A transition to `held` without a window (the breaker held it) is a held event.
    let t = remediation_testkit::transition(
        action_id(4),
        Some(State::Approved),
        State::Held,
        "hold",
        remediation_testkit::fixed_time(),
    );
    assert!(matches!(EngineEvent::from_audit(&t.into()), EngineEvent::Held { limit: None, .. }));
}
