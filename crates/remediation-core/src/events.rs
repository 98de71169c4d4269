//! Events: what the engine tells people and systems about. Every event is an audit record
//! (each transition, a held action, the circuit breaker, a switch or setting, a refusal, a fix
//! that did not hold) seen through [`EngineEvent::from_audit`]: the audit log, written in the
//! same transaction as every change, is the outbox, and a relay delivers it to each
//! [`EventSink`] in `seq` order, at least once, from a high-water mark per sink
//! ([`crate::DeliveryStore`]). So an event is never lost between a commit and its delivery, and
//! a sink that is down only builds a backlog.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ActionId, AuditBody, AuditRecord, LimitReached, State, Target, TransitionRecord};

/// The `setting_event` of the audit note written when a finding shows that a completed
/// action's fix did not hold.
pub const DID_NOT_HOLD_EVENT: &str = "remediation_did_not_hold";

/// The tenant of an installation that has one.
pub const DEFAULT_TENANT: &str = "default";

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
        /// The action whose execution tripped it (absent from records written before it was
        /// kept).
        action_id: Option<ActionId>,
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
    /// A safety switch or setting, a principal or a token changed.
    SafetyChanged {
        /// What changed (`kill_switch_on`, `breaker_reset`, `settings_changed`, ...).
        setting_event: String,
        /// Who changed it.
        actor: String,
    },
    /// The engine refused an attempt (an approval by the requester, an execution while the
    /// kill switch is on, ...); the attempt is audited all the same.
    Refused {
        /// What was refused (`approval_refused`, `execution_refused`, ...).
        setting_event: String,
        /// Who tried.
        actor: String,
        /// The action, when the attempt was about one.
        action_id: Option<ActionId>,
        /// Why it was refused.
        reason: Option<String>,
    },
}

/// The CloudEvents specification version every envelope names.
pub const CLOUDEVENTS_SPEC_VERSION: &str = "1.0";

/// The `source` of the default tenant's events.
pub const DEFAULT_EVENT_SOURCE: &str = "/remediation/default";

/// The prefix of every CloudEvents `type` this engine emits.
pub const EVENT_TYPE_PREFIX: &str = "dev.remediation";

impl EngineEvent {
    /// The event an audit record reports; every record reports one:
    ///
    /// | record | event |
    /// |---|---|
    /// | a transition to `held` | [`EngineEvent::Held`] (with the full window, when a limit held it) |
    /// | any other transition | [`EngineEvent::Transition`] |
    /// | `breaker_tripped` | [`EngineEvent::BreakerTripped`] |
    /// | [`DID_NOT_HOLD_EVENT`] | [`EngineEvent::RemediationDidNotHold`] |
    /// | `*_refused` | [`EngineEvent::Refused`] |
    /// | any other installation-wide change | [`EngineEvent::SafetyChanged`] |
    pub fn from_audit(body: &AuditBody) -> Self {
        match body {
            AuditBody::Transition(t) if t.to == State::Held => EngineEvent::Held {
                action_id: t.action_id,
                limit: t.limit.clone(),
                reason: t.comment.clone().unwrap_or_default(),
            },
            AuditBody::Transition(t) => EngineEvent::Transition { record: Box::new(t.clone()) },
            AuditBody::Settings(s) => match s.setting_event.as_str() {
                DID_NOT_HOLD_EVENT => did_not_hold(s).unwrap_or_else(|| safety_changed(s)),
                "breaker_tripped" => EngineEvent::BreakerTripped { action_id: s.action_id },
                e if e.ends_with("_refused") => EngineEvent::Refused {
                    setting_event: s.setting_event.clone(),
                    actor: s.actor.clone(),
                    // Refusal notes name their action in `value` (`{"action_id", "state"}`).
                    action_id: s
                        .action_id
                        .or_else(|| s.value.get("action_id").and_then(|v| serde_json::from_value(v.clone()).ok())),
                    reason: s.comment.clone(),
                },
                _ => safety_changed(s),
            },
        }
    }

    /// The CloudEvents `type`: `dev.remediation.action.<state>` for a transition (the state it
    /// moved to, as `dev.remediation.action.completed`), `dev.remediation.action.held`,
    /// `dev.remediation.breaker.tripped`, `dev.remediation.action.did_not_hold`,
    /// `dev.remediation.<what>.refused` (`approval`, `execution`, ...) and
    /// `dev.remediation.safety.changed`.
    pub fn cloudevents_type(&self) -> String {
        match self {
            EngineEvent::Transition { record } => format!("{EVENT_TYPE_PREFIX}.action.{}", record.to),
            EngineEvent::Held { .. } => format!("{EVENT_TYPE_PREFIX}.action.held"),
            EngineEvent::BreakerTripped { .. } => format!("{EVENT_TYPE_PREFIX}.breaker.tripped"),
            EngineEvent::RemediationDidNotHold { .. } => format!("{EVENT_TYPE_PREFIX}.action.did_not_hold"),
            EngineEvent::SafetyChanged { .. } => format!("{EVENT_TYPE_PREFIX}.safety.changed"),
            EngineEvent::Refused { setting_event, .. } => {
                let what = setting_event.strip_suffix("_refused").unwrap_or(setting_event);
                format!("{EVENT_TYPE_PREFIX}.{what}.refused")
            }
        }
    }

    /// The action the event is about, if it is about one (the CloudEvents `subject`).
    pub fn action_id(&self) -> Option<ActionId> {
        match self {
            EngineEvent::Transition { record } => Some(record.action_id),
            EngineEvent::Held { action_id, .. } | EngineEvent::RemediationDidNotHold { action_id, .. } => {
                Some(*action_id)
            }
            EngineEvent::BreakerTripped { action_id } | EngineEvent::Refused { action_id, .. } => *action_id,
            EngineEvent::SafetyChanged { .. } => None,
        }
    }
}

fn safety_changed(s: &crate::SettingsRecord) -> EngineEvent {
    EngineEvent::SafetyChanged { setting_event: s.setting_event.clone(), actor: s.actor.clone() }
}

/// The did-not-hold note's event: its `value` is `{"control_id", "target"}` and it names the
/// action.
fn did_not_hold(s: &crate::SettingsRecord) -> Option<EngineEvent> {
    let control_id = s.value.get("control_id")?.as_str()?.to_owned();
    let target = serde_json::from_value(s.value.get("target")?.clone()).ok()?;
    Some(EngineEvent::RemediationDidNotHold { action_id: s.action_id?, control_id, target })
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
    /// The `seq` of the audit record the event reports (a CloudEvents extension attribute).
    /// Every audit record is an event, so one source's events carry consecutive `auditseq`s
    /// in order; a gap means the sink parked the events in between (`remediate events
    /// status` lists them), never that one was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditseq: Option<u64>,
    /// The event itself, tagged by its own `type` (`transition`, `held`, ...).
    pub data: EngineEvent,
}

impl CloudEvent {
    /// The event `record` reports ([`EngineEvent::from_audit`]) in an envelope from `source`:
    /// `id` is the record's `hash` (unique, and the same however often the record is
    /// delivered), `time` the record's own, and `auditseq` its `seq`, so a receiver sees the
    /// order and any gap.
    pub fn from_record(record: &AuditRecord, source: &str) -> Self {
        let event = EngineEvent::from_audit(&record.body);
        Self {
            specversion: CLOUDEVENTS_SPEC_VERSION.to_owned(),
            id: record.hash.to_string(),
            source: source.to_owned(),
            event_type: event.cloudevents_type(),
            subject: event.action_id().map(|id| id.to_string()),
            time: record.body.at(),
            datacontenttype: "application/json".to_owned(),
            auditseq: Some(record.seq),
            data: event,
        }
    }

    /// The `source` of `tenant`'s events: `/remediation/<tenant>`.
    pub fn source_of(tenant: &str) -> String {
        format!("/remediation/{tenant}")
    }
}

/// Where a sink's mark starts when the sink is first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliverFrom {
    /// After the last record sequenced when the sink is registered: only what happens from
    /// then on (the default for event sinks).
    #[default]
    Now,
    /// From the first record still in the log (the default for audit sinks: the whole trail).
    Beginning,
}

/// Why a sink did not take an event or record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// It may succeed later (connection error, timeout, 5xx, 408, 429, no acknowledgement):
    /// the relay retries with backoff, without limit in time, and the mark waits.
    #[error("{reason}")]
    Transient {
        /// What went wrong, in plain words; never a secret.
        reason: String,
        /// How long the receiver asked to be left alone, when it said.
        retry_after: Option<Duration>,
    },
    /// It will never succeed as it stands (a 4xx other than 408 and 429, an event the
    /// receiver cannot parse): the relay parks it for this sink, with the reason, and goes on.
    #[error("{reason}")]
    Permanent {
        /// What the receiver said, in plain words; never a secret.
        reason: String,
    },
}

impl DeliveryError {
    /// A transient failure without a `Retry-After`.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient { reason: reason.into(), retry_after: None }
    }

    /// A permanent refusal.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent { reason: reason.into() }
    }
}

/// A batch that was not delivered whole: the first `delivered` items were (acknowledged), the
/// next one failed with `error`, and those after it were not tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{delivered} delivered, then: {error}")]
pub struct Undelivered {
    /// How many items, from the start of the batch, were delivered.
    pub delivered: usize,
    /// Why the next one was not.
    pub error: DeliveryError,
}

/// Where events go: a structured log, a signed webhook, a JetStream stream, an embedder's own.
///
/// The relay hands a sink the events of consecutive audit records, in `seq` order (so in order
/// per action), and moves the sink's mark past those it acknowledged; an event can be handed
/// over more than once (after a crash between the acknowledgement and the mark), always with
/// the same `id`. A sink returns only once each event it reports delivered is durable at the
/// receiver.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Delivers `events` in order: `Ok` when every one was acknowledged, else how many were and
    /// why the next one was not.
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered>;
}
