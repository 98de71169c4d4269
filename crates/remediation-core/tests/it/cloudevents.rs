//! Every engine event in its CloudEvents 1.0 envelope: its `type`, its `subject` when it is
//! about an action, the record's own time, its hash as `id` and its `seq` as `auditseq`.

use remediation_core::{AuditRecord, CloudEvent, DEFAULT_EVENT_SOURCE, EngineEvent, SettingsRecord, State};
use remediation_testkit::{action_id, fixed_time, transition};

#[test]
fn each_event_has_its_cloudevents_type_subject_time_and_id() {
    let at = fixed_time();
    let id = action_id(7);
    let note = |event: &str, action: Option<remediation_core::ActionId>| SettingsRecord {
        setting_event: event.to_owned(),
        actor: "admin".to_owned(),
        credential: None,
        at: at + time::Duration::minutes(5),
        comment: Some("c".to_owned()),
        previous: serde_json::Value::Null,
        value: serde_json::json!({}),
        action_id: action,
    };
    let cases: Vec<(remediation_core::AuditBody, &str, bool)> = vec![
        (
            transition(id, Some(State::Executing), State::Completed, "complete", at).into(),
            "dev.remediation.action.completed",
            true,
        ),
        (transition(id, Some(State::Approved), State::Held, "hold", at).into(), "dev.remediation.action.held", true),
        (note("breaker_tripped", Some(id)).into(), "dev.remediation.breaker.tripped", true),
        (note("breaker_tripped", None).into(), "dev.remediation.breaker.tripped", false),
        (note("kill_switch_on", None).into(), "dev.remediation.safety.changed", false),
        (note("rollback_refused", Some(id)).into(), "dev.remediation.rollback.refused", true),
    ];
    for (seq, (body, kind, about_action)) in (1u64..).zip(cases) {
        let time = body.at();
        // The envelope takes the record as sealed; the hashes here only need to differ.
        let record = AuditRecord { seq, body, prev_hash: "0".repeat(64), hash: format!("{seq:064x}") };
        let envelope = CloudEvent::from_record(&record, DEFAULT_EVENT_SOURCE);
        assert_eq!(envelope.event_type, kind);
        assert_eq!(envelope.subject, about_action.then(|| id.to_string()), "{kind}");
        assert_eq!(envelope.time, time, "{kind}");
        assert_eq!(envelope.id, record.hash.to_string(), "{kind}");
        assert_eq!(envelope.auditseq, Some(record.seq), "{kind}");
        assert_eq!(envelope.data, EngineEvent::from_audit(&record.body));
        let json = serde_json::to_value(&envelope).expect("json");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], kind);
        assert_eq!(json["source"], DEFAULT_EVENT_SOURCE);
        assert_eq!(serde_json::from_value::<CloudEvent>(json).expect("round trip"), envelope);
    }
}
