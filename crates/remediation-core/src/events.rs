//! Events the engine emits for notification: every transition, held actions (an admin must
//! look), the circuit breaker and the kill switch. Delivery is best effort and happens after
//! the store has committed; the audit trail, not the event stream, is the record.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ActionId, LimitReached, Target, TransitionRecord};

/// Something worth telling people or systems about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EngineEvent {
    /// An action changed state.
    Transition {
        /// The transition as audited.
        record: Box<TransitionRecord>,
    },
    /// An action was held by a limit or the circuit breaker: an admin must force or release it.
    Held {
        /// The action.
        action_id: ActionId,
        /// The full window, when a limit held it.
        limit: Option<LimitReached>,
        /// Why, in plain words.
        reason: String,
    },
    /// The global limit was reached: all execution pauses until an admin resets the breaker.
    BreakerTripped {
        /// The action whose execution tripped it.
        action_id: ActionId,
    },
    /// A finding arrived again for a (control, target) whose action had completed: the fix
    /// did not hold (someone or something undid it).
    RemediationDidNotHold {
        /// The completed action whose change did not hold.
        action_id: ActionId,
        /// The control the finding is about.
        control_id: String,
        /// What the finding is about.
        target: Target,
    },
    /// A safety switch or setting changed.
    SafetyChanged {
        /// What changed (`kill_switch_on`, `breaker_reset`, ...).
        setting_event: String,
        /// Who changed it.
        actor: String,
    },
}

/// The CloudEvents specification version every envelope names.
pub const CLOUDEVENTS_SPEC_VERSION: &str = "1.0";

/// The `source` of the default tenant's events.
pub const DEFAULT_EVENT_SOURCE: &str = "/remediation/default";

/// The prefix of every CloudEvents `type` this engine emits.
pub const EVENT_TYPE_PREFIX: &str = "dev.remediation";

impl EngineEvent {
    /// The CloudEvents `type`: `dev.remediation.action.<state>` for a transition (the state it
    /// moved to, as `dev.remediation.action.completed`), `dev.remediation.action.held`,
    /// `dev.remediation.breaker.tripped`, `dev.remediation.action.did_not_hold` and
    /// `dev.remediation.safety.changed`.
    pub fn cloudevents_type(&self) -> String {
        match self {
            EngineEvent::Transition { record } => format!("{EVENT_TYPE_PREFIX}.action.{}", record.to),
            EngineEvent::Held { .. } => format!("{EVENT_TYPE_PREFIX}.action.held"),
            EngineEvent::BreakerTripped { .. } => format!("{EVENT_TYPE_PREFIX}.breaker.tripped"),
            EngineEvent::RemediationDidNotHold { .. } => format!("{EVENT_TYPE_PREFIX}.action.did_not_hold"),
            EngineEvent::SafetyChanged { .. } => format!("{EVENT_TYPE_PREFIX}.safety.changed"),
        }
    }

    /// The action the event is about, if it is about one (the CloudEvents `subject`).
    pub fn action_id(&self) -> Option<ActionId> {
        match self {
            EngineEvent::Transition { record } => Some(record.action_id),
            EngineEvent::Held { action_id, .. }
            | EngineEvent::BreakerTripped { action_id }
            | EngineEvent::RemediationDidNotHold { action_id, .. } => Some(*action_id),
            EngineEvent::SafetyChanged { .. } => None,
        }
    }
}

/// An engine event in a CloudEvents 1.0 envelope, JSON structured mode
/// (`application/cloudevents+json`): what the event sinks send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudEvent {
    /// The CloudEvents version: always `1.0`.
    pub specversion: String,
    /// The event's id: unique per event and the same on every retry of its delivery, so a
    /// receiver deduplicates on (`source`, `id`).
    pub id: String,
    /// Where it comes from: `/remediation/<tenant>` ([`DEFAULT_EVENT_SOURCE`]).
    pub source: String,
    /// What happened ([`EngineEvent::cloudevents_type`]).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The action it is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When it happened (a transition's own time), UTC, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub time: time::OffsetDateTime,
    /// The media type of `data`: always `application/json`.
    pub datacontenttype: String,
    /// The event itself, tagged by its own `type` (`transition`, `held`, ...).
    pub data: EngineEvent,
}

impl CloudEvent {
    /// `event` in an envelope with `id` and `source`; `time` is the transition's own time for
    /// a transition, else `now`.
    pub fn new(
        event: &EngineEvent,
        id: impl Into<String>,
        source: impl Into<String>,
        now: time::OffsetDateTime,
    ) -> Self {
        let time = match event {
            EngineEvent::Transition { record } => record.at,
            _ => now,
        };
        Self {
            specversion: CLOUDEVENTS_SPEC_VERSION.to_owned(),
            id: id.into(),
            source: source.into(),
            event_type: event.cloudevents_type(),
            subject: event.action_id().map(|id| id.to_string()),
            time,
            datacontenttype: "application/json".to_owned(),
            data: event.clone(),
        }
    }
}

/// Where events go. Implementations must not fail the engine: they log and drop on error.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Delivers one event.
    async fn emit(&self, event: &EngineEvent);
}

/// A sink that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

#[async_trait]
impl EventSink for NoEvents {
    async fn emit(&self, _event: &EngineEvent) {}
}
