//! Integration tests of the sinks, the notifier and the config, against local HTTP fakes.

mod config;
mod engine;
mod notifier;
mod sinks;

use std::io::Write;
use std::sync::{Arc, Mutex};

use remediation_core::{Action, ActionKind, ManualClock};
use remediation_testkit::{ActionBuilder, TargetBuilder, fixed_time};

/// A `notify` action about `alice` in `admins`, derived from `seed`.
pub(crate) fn notify_action(seed: u64) -> Action {
    ActionBuilder::new()
        .seed(seed)
        .kind(ActionKind::Notify)
        .target(TargetBuilder::new().identity("alice").resource("admins").grant_type("notification").build())
        .connector("slack")
        .control_id("CTRL-7")
        .reason("alice holds admin in admins without an approved ticket")
        .build()
}

/// A clock stopped at the testkit's fixed time.
pub(crate) fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(fixed_time()))
}

/// Log output captured while the returned guard lives (on this thread).
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A local address nothing listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
