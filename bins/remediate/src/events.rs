//! The command-line installation's event sink. A leaf over `output`.

use std::path::PathBuf;

use remediation_core::{EngineEvent, EventSink};

use crate::output::{self, clean};

/// Appends every engine event as one JSON line to `<data dir>/events.jsonl`: the admin
/// notification outbox of the command-line installation. Delivery is best effort.
#[derive(Debug)]
pub(crate) struct EventLog {
    pub(crate) path: PathBuf,
}

#[async_trait::async_trait]
impl EventSink for EventLog {
    async fn emit(&self, event: &EngineEvent) {
        use std::io::Write as _;
        let Ok(line) = serde_json::to_string(event) else { return };
        let file = remediation_runtime::files::private_options().create(true).append(true).open(&self.path);
        if let Ok(mut f) = file {
            let _ = writeln!(f, "{line}");
        }
        if matches!(event, EngineEvent::Held { .. } | EngineEvent::BreakerTripped { .. }) {
            output::errln!("admin notification: {}", clean(&line));
        }
    }
}
