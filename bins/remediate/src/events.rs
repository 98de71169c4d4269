//! The command-line installation's own event sink, `events.jsonl` in the data directory. A
//! leaf over `output`.

use std::path::PathBuf;

use remediation_audit::JsonlFileSink;
use remediation_core::{CloudEvent, EngineEvent, EventSink, Undelivered};

use crate::output::{self, clean};

/// Appends every event, as a CloudEvents envelope, to `<data dir>/events.jsonl` (rotated at
/// 64 MiB, three files kept), and says on standard error when one needs an admin (a held
/// action, the breaker). Delivered by the relay at the end of each command, like every sink.
#[derive(Debug)]
pub(crate) struct EventLog {
    file: JsonlFileSink,
}

impl EventLog {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { file: JsonlFileSink::new(path, 64 * 1024 * 1024, 3) }
    }
}

#[async_trait::async_trait]
impl EventSink for EventLog {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        EventSink::deliver(&self.file, events).await?;
        for event in events {
            match &event.data {
                EngineEvent::Held { action_id, reason, .. } => {
                    output::errln!("admin notification: action {action_id} is held: {}", clean(reason));
                }
                EngineEvent::BreakerTripped { .. } => {
                    output::errln!(
                        "admin notification: the circuit breaker tripped: execution is paused until an admin runs `remediate breaker reset`"
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}
