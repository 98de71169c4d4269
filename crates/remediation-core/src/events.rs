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
