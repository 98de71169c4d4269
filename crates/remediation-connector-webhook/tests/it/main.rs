//! Integration tests of the webhook connector against the testkit's fake receiver: both
//! conformance parts, golden requests per operation, signature and replay checks, config
//! validation and secret hygiene.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod config;
mod conformance;
mod engine;
mod golden;
mod secrets;
mod signing;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use remediation_connector_http::{RecordingSleeper, RetryPolicy, SecretString, ThrottleSignal};
use remediation_connector_webhook::{GrantTypeConfig, WebhookConfig, WebhookConnector, WebhookOptions};
use remediation_core::{Clock, KindName, Reversibility, SystemClock, Target};
use remediation_testkit::fakes::webhook::WebhookFake;

/// The signing secret the fake accepts for everything.
pub(crate) const SECRET: &str = "whsec-test-6c1f0a9e-full-access";
/// A secret the fake accepts for reads only.
pub(crate) const READ_ONLY_SECRET: &str = "whsec-test-2b7d44e1-read-only";

/// A configuration declaring every kind, over four grant types.
pub(crate) fn config(url: &str) -> WebhookConfig {
    let entry = |name: &str, kinds: &[KindName], reversibility| GrantTypeConfig {
        name: name.to_owned(),
        kinds: kinds.to_vec(),
        reversibility,
    };
    WebhookConfig {
        allow_insecure_http: false,
        id: "hooks".to_owned(),
        url: url.to_owned(),
        secret_env: Some("REMEDIATION_TEST_WEBHOOK_SECRET_UNSET".to_owned()),
        secret_file: None,
        secret_sealed: None,
        timeout_secs: 5,
        grant_types: vec![
            entry("app_role", &[KindName::Revoke, KindName::Reduce], Reversibility::Reversible),
            entry("license", &[KindName::Revoke], Reversibility::Lossy),
            entry("account", &[KindName::Suspend], Reversibility::Reversible),
            entry("account", &[KindName::RevokeSessions, KindName::ForcePasswordReset], Reversibility::Irreversible),
            entry("notification", &[KindName::Notify], Reversibility::Irreversible),
        ],
    }
}

/// A connector for `fake` signing with `secret` on `clock`, retrying without sleeping.
pub(crate) fn connector(
    fake: &WebhookFake,
    secret: &str,
    clock: Arc<dyn Clock>,
) -> (Arc<WebhookConnector>, RecordingSleeper) {
    let sleeper = RecordingSleeper::new();
    let options = WebhookOptions {
        clock,
        sleeper: Arc::new(sleeper.clone()),
        retry: RetryPolicy::new(ThrottleSignal::RetryAfter),
    };
    let c = WebhookConnector::new(&config(&fake.url()), SecretString::from(secret.to_owned()), options)
        .expect("the test config is valid");
    (Arc::new(c), sleeper)
}

/// A fake receiver on the system clock, accepting [`SECRET`] and, for reads, [`READ_ONLY_SECRET`].
pub(crate) async fn fake() -> WebhookFake {
    let fake = WebhookFake::start(SECRET, Arc::new(SystemClock)).await.expect("the fake starts");
    fake.allow_read_only_key(READ_ONLY_SECRET);
    fake
}

/// A fresh identity, known to `fake`.
pub(crate) fn fresh_identity(fake: &WebhookFake) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let identity = format!("user-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    fake.add_identity(&identity);
    identity
}

pub(crate) fn target(grant_type: &str, identity: &str, resource: Option<&str>) -> Target {
    Target {
        identity: identity.to_owned(),
        resource: resource.map(str::to_owned),
        grant: None,
        grant_type: grant_type.to_owned(),
    }
}
