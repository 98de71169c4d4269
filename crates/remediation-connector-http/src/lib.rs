//! What every HTTP connector shares, so each provider crate holds only its own semantics.
//!
//! - [`HttpClient`]: reqwest with rustls, connect and request timeouts, `User-Agent:
//!   remediation/<version>`, a configurable base URL, and no redirects followed;
//! - [`TokenSource`]: the `Authorization` header as a [`secrecy::SecretString`], from a
//!   [`StaticToken`] (`Bearer`, `SSWS`), [`ClientCredentials`] (client secret or an RS256
//!   client assertion) or [`JwtBearer`] (Google service accounts), cached until shortly
//!   before expiry on an injectable [`remediation_core::Clock`]; a 401 invalidates the token
//!   and is retried exactly once;
//! - [`RetryPolicy`] with each provider's [`ThrottleSignal`]: bounded attempts, exponential
//!   backoff, waits longer than [`RetryPolicy::max_wait`] returned as
//!   [`remediation_core::ConnectorErrorKind::Throttled`], an injectable [`Sleeper`];
//!   transient failures are retried only for idempotent requests;
//! - paths: [`ApiPath`] fills a fixed template with identifiers through one encoder and
//!   refuses dot segments in any encoding; the client compares the URL it is about to send
//!   with the template and refuses to send one that normalisation moved elsewhere;
//! - bounded reads: response bodies past [`HttpClientBuilder::max_response_bytes`] (16 MiB by
//!   default) fail with an error naming the limit;
//! - transport: `http://` base and token URLs are refused unless the host is loopback or
//!   `allow_insecure_http` is set; body-less POST, PUT and PATCH send `Content-Length: 0`;
//! - pagination ([`PageStyle`], [`HttpClient::pages`], [`next_link`], [`odata_next_link`],
//!   [`next_page_token`], [`ScimPage`]);
//! - request signing: a [`RequestSigner`] adds headers computed over the exact bytes of
//!   each attempt (signed webhooks), afresh for every retry;
//! - request ids ([`request_id`], [`Response::request_ids`]) and error mapping
//!   ([`map_status`], [`ErrorParser`]) keeping the provider's message.
//!
//! Secrets never appear in `Debug`, logs or errors.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use remediation_connector_http::{ApiPath, HttpClient, Request, RetryPolicy, StaticToken, ThrottleSignal};
//! use secrecy::SecretString;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpClient::builder("https://example.okta.com/api/v1")
//!     .auth(Arc::new(StaticToken::ssws(SecretString::from("00abc-token"))))
//!     .retry(RetryPolicy::new(ThrottleSignal::OktaRateLimitReset))
//!     .build()?;
//! assert!(!format!("{client:?}").contains("00abc-token"));
//! let _req = Request::get(ApiPath::new("/users/{}", ["00u1"])).query("expand", "groups");
//! # Ok(())
//! # }
//! ```

mod auth;
mod client;
mod error;
mod paging;
mod path;
mod retry;
mod secret;
mod send;
mod spec;
mod status;

pub use auth::{
    ClientAuth, ClientCredentials, JwtBearer, JwtKey, ServiceAccountKey, StaticToken, TokenOptions, TokenSource,
};
pub use client::{
    Body, DEFAULT_MAX_RESPONSE_BYTES, HttpClient, HttpClientBuilder, REQUEST_ID_HEADERS, Request, RequestSigner,
    Response, USER_AGENT, request_id,
};
pub use error::HttpError;
pub use paging::{PageStyle, Pages, ScimPage, next_link, next_page_token, odata_next_link, parse_link_next};
pub use path::{ApiPath, PathError};
pub use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
pub use reqwest::{Method, StatusCode};
pub use retry::{
    RecordingSleeper, RetryPolicy, Sleeper, Throttle, ThrottleSignal, TokioSleeper, response_date, retry_after,
};
pub use secrecy::{ExposeSecret, SecretString};
pub use secret::SecretSource;
pub use spec::RequestSpec;
pub use status::{ErrorParser, NoBody, ProviderError, kind_for_status, map_status};
