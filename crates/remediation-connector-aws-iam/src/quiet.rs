//! Keeps session tokens out of logs: the SigV4 signer traces the canonical request, and the
//! SDK's orchestrator traces the outgoing request, both with the `x-amz-security-token`
//! header in clear. Every SDK call runs under a dispatcher that forwards to the caller's
//! subscriber but drops those events.

use std::future::Future;

use tracing::instrument::{WithDispatch, WithSubscriber};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber, span};

/// Wraps the current dispatcher and drops events that may print a signed request.
struct WithoutSigningTrace {
    inner: Dispatch,
}

fn is_signing(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    target.starts_with("aws_sigv4")
        || (target.starts_with("aws_smithy")
            && ["request", "canonical_request"].iter().any(|f| meta.fields().field(f).is_some()))
}

impl Subscriber for WithoutSigningTrace {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_signing(meta) { Interest::sometimes() } else { self.inner.register_callsite(meta) }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        !is_signing(meta) && self.inner.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        None
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        self.inner.new_span(attrs)
    }

    fn record(&self, id: &span::Id, values: &span::Record<'_>) {
        self.inner.record(id, values);
    }

    fn record_follows_from(&self, id: &span::Id, follows: &span::Id) {
        self.inner.record_follows_from(id, follows);
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        !is_signing(event.metadata())
    }

    fn event(&self, event: &Event<'_>) {
        if !is_signing(event.metadata()) {
            self.inner.event(event);
        }
    }

    fn enter(&self, id: &span::Id) {
        self.inner.enter(id);
    }

    fn exit(&self, id: &span::Id) {
        self.inner.exit(id);
    }

    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: span::Id) -> bool {
        self.inner.try_close(id)
    }
}

/// Runs `fut` under the current subscriber minus the signer's trace events.
pub(crate) fn quiet<F: Future>(fut: F) -> WithDispatch<F> {
    let inner = tracing::dispatcher::get_default(Dispatch::clone);
    fut.with_subscriber(Dispatch::new(WithoutSigningTrace { inner }))
}
