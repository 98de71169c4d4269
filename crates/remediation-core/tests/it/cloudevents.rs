//! Every engine event in its CloudEvents 1.0 envelope: its `type`, its `subject` when it is
//! about an action, and a transition's own time.

use remediation_core::{CloudEvent, DEFAULT_EVENT_SOURCE, EngineEvent, State, Target};
use remediation_testkit::{action_id, fixed_time, transition};

#[test]
fn each_event_has_its_cloudevents_type_and_subject() {
    let at = fixed_time();
    let now = at + time::Duration::hours(1);
    let id = action_id(7);
    let record = transition(id, Some(State::Executing), State::Completed, "complete", at);
    let target = Target { identity: "alice".into(), resource: None, grant: None, grant_type: "g".into() };
    let cases = [
        (EngineEvent::Transition { record: Box::new(record) }, "dev.remediation.action.completed", true, at),
        (
            EngineEvent::Held { action_id: id, limit: None, reason: "r".into() },
            "dev.remediation.action.held",
            true,
            now,
        ),
        (EngineEvent::BreakerTripped { action_id: id }, "dev.remediation.breaker.tripped", true, now),
        (
            EngineEvent::RemediationDidNotHold { action_id: id, control_id: "c".into(), target },
            "dev.remediation.action.did_not_hold",
            true,
            now,
        ),
        (
            EngineEvent::SafetyChanged { setting_event: "kill_switch_on".into(), actor: "a".into() },
            "dev.remediation.safety.changed",
            false,
            now,
        ),
    ];
    for (event, kind, about_action, time) in cases {
        let envelope = CloudEvent::new(&event, "e-1", DEFAULT_EVENT_SOURCE, now);
        assert_eq!(envelope.event_type, kind);
        assert_eq!(envelope.subject, about_action.then(|| id.to_string()), "{kind}");
        assert_eq!(envelope.time, time, "{kind}");
        let json = serde_json::to_value(&envelope).expect("json");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], kind);
        assert_eq!(serde_json::from_value::<CloudEvent>(json).expect("round trip"), envelope);
    }
}
