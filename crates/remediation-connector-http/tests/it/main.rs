//! Integration tests of the shared HTTP connector pieces against wiremock servers.

mod auth;
mod paging;
mod paths;
mod retry;
mod secrets;
mod signing;
mod transport;

use std::sync::Arc;

use remediation_connector_http::{HttpClient, RecordingSleeper, RetryPolicy, StaticToken, ThrottleSignal, TokenSource};
use secrecy::SecretString;

/// The test RSA key pair shared with the testkit's fakes.
pub(crate) const PRIVATE_KEY: &str = include_str!("../../../remediation-testkit/keys/test-rsa-private.pem");
pub(crate) const PUBLIC_KEY: &str = include_str!("../../../remediation-testkit/keys/test-rsa-public.pem");

/// A client of `base` with `signal`, a recording sleeper and an optional token source.
pub(crate) fn client(
    base: &str,
    signal: ThrottleSignal,
    auth: Option<Arc<dyn TokenSource>>,
) -> (HttpClient, RecordingSleeper) {
    let sleeper = RecordingSleeper::new();
    let mut b = HttpClient::builder(base).retry(RetryPolicy::new(signal)).sleeper(Arc::new(sleeper.clone()));
    if let Some(a) = auth {
        b = b.auth(a);
    }
    (b.build().expect("client builds"), sleeper)
}

pub(crate) fn ssws(token: &str) -> Arc<dyn TokenSource> {
    Arc::new(StaticToken::ssws(SecretString::from(token.to_owned())))
}
