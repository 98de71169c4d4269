//! The HTTP client every connector uses: base URL, timeouts, `User-Agent`, authorization,
//! bounded retries with the provider's throttling signal, request ids and error mapping.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use remediation_core::{Clock, ConnectorError, ConnectorErrorKind, SystemClock};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::paging::{PageStyle, Pages, ScimPage, next_link, next_page_token, odata_next_link};
use crate::path::ApiPath;
use crate::retry::{RetryPolicy, Sleeper, ThrottleSignal, TokioSleeper};
use crate::status::{ErrorParser, NoBody, map_status};
use crate::{HttpError, TokenSource};

/// `User-Agent` of every request: `remediation/<version>`.
pub const USER_AGENT: &str = concat!("remediation/", env!("CARGO_PKG_VERSION"));

/// Response headers that carry a provider's request id, most specific first.
pub const REQUEST_ID_HEADERS: &[&str] = &[
    "x-okta-request-id",
    "x-github-request-id",
    "request-id",
    "client-request-id",
    "x-ms-request-id",
    "x-goog-request-id",
    "x-request-id",
];

/// The provider's request id in `headers`, if it sent one.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_owned))
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// No body.
    Empty,
    /// JSON, sent as `application/json` unless a `Content-Type` header says otherwise
    /// (`application/scim+json`).
    Json(Value),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A path below the base URL, from a template.
    Path(ApiPath),
    /// An absolute URL the provider handed out (a next-page link), on the base URL's origin.
    Link(String),
}

/// One request, relative to the client's base URL.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    target: Target,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
    idempotent: bool,
    invalid_header: Option<String>,
}

impl Request {
    /// A request for `path` below the base URL: an [`ApiPath`], or a fixed `&'static str`
    /// path without identifiers (`/users`). Paths holding identifiers can only be built
    /// through [`ApiPath::new`], so every identifier goes through one encoder.
    ///
    /// GET, HEAD, PUT, DELETE and OPTIONS are idempotent; POST and PATCH are not unless
    /// marked with [`Request::idempotent`].
    pub fn new(method: Method, path: impl Into<ApiPath>) -> Self {
        Self::to(method, Target::Path(path.into()))
    }

    /// `GET url`, a link the provider handed out (a next page). Only links on the base URL's
    /// origin are followed: another origin would receive the token.
    pub fn link(url: impl Into<String>) -> Self {
        Self::to(Method::GET, Target::Link(url.into()))
    }

    fn to(method: Method, target: Target) -> Self {
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS);
        Self {
            method,
            target,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            idempotent,
            invalid_header: None,
        }
    }

    /// `GET target`.
    pub fn get(path: impl Into<ApiPath>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST target` (not idempotent unless marked).
    pub fn post(path: impl Into<ApiPath>) -> Self {
        Self::new(Method::POST, path)
    }

    /// `PUT target`.
    pub fn put(path: impl Into<ApiPath>) -> Self {
        Self::new(Method::PUT, path)
    }

    /// `PATCH target` (not idempotent unless marked).
    pub fn patch(path: impl Into<ApiPath>) -> Self {
        Self::new(Method::PATCH, path)
    }

    /// `DELETE target`.
    pub fn delete(path: impl Into<ApiPath>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a header. An invalid name or value fails the request when sent.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(n), Ok(v)) => self.headers.push((n, v)),
            _ => self.invalid_header = Some(name.to_owned()),
        }
        self
    }

    /// Sends `value` as JSON.
    pub fn json(mut self, value: Value) -> Self {
        self.body = Body::Json(value);
        self
    }

    /// Sends `pairs` as a form.
    pub fn form(mut self, pairs: Vec<(String, String)>) -> Self {
        self.body = Body::Form(pairs);
        self
    }

    /// Marks the request as safe to send twice (a POST whose repetition changes nothing),
    /// so transient failures are retried.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, when the request is not a followed link.
    pub fn path(&self) -> Option<&ApiPath> {
        match &self.target {
            Target::Path(p) => Some(p),
            Target::Link(_) => None,
        }
    }

    /// Whether the request may be retried after a transient failure.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
}

/// A response after retries, with the request ids of every attempt.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    request_ids: Vec<String>,
    attempts: u32,
}

impl Response {
    pub(crate) fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
        request_ids: Vec<String>,
        attempts: u32,
    ) -> Self {
        Self { status, headers, body, request_ids, attempts }
    }

    /// A response made up by a test or a fake (no request was sent).
    pub fn synthetic(status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> Self {
        let request_ids = request_id(&headers).into_iter().collect();
        Self { status, headers, body, request_ids, attempts: 0 }
    }

    /// The final status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The final response's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as `T`; a body that does not parse is a permanent error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let err = ConnectorError::permanent(format!("unexpected response body: {e}"));
            match self.request_id() {
                Some(id) => err.with_request_id(id),
                None => err,
            }
        })
    }

    /// The final response's request id.
    pub fn request_id(&self) -> Option<&str> {
        self.request_ids.last().map(String::as_str)
    }

    /// The request id of every attempt (throttled and failed ones included), in order.
    pub fn request_ids(&self) -> &[String] {
        &self.request_ids
    }

    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The `Link: <...>; rel="next"` URL, if any.
    pub fn next_link(&self) -> Option<String> {
        next_link(&self.headers)
    }
}

/// Builds an [`HttpClient`].
pub struct HttpClientBuilder {
    base_url: String,
    auth: Option<Arc<dyn TokenSource>>,
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    parser: Arc<dyn ErrorParser>,
    connect_timeout: Duration,
    request_timeout: Duration,
    headers: Vec<(String, String)>,
    user_agent: String,
    signer: Option<Arc<dyn RequestSigner>>,
    max_response_bytes: usize,
    allow_insecure_http: bool,
}

/// Largest response body read by default (16 MiB): far above any page a provider serves,
/// low enough that a broken or hostile endpoint cannot exhaust memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Adds headers computed over the exact bytes of one attempt (a request signature) just
/// before it is sent. Called again for every attempt, so each retry is signed afresh and a
/// signature's timestamp stays inside the receiver's replay window however long the
/// throttling waits were.
pub trait RequestSigner: Send + Sync + fmt::Debug {
    /// The headers to add to a `method` request for `url` whose body is `body` (empty when
    /// there is none). An error fails the attempt without sending it.
    fn sign(
        &self,
        method: &Method,
        url: &url::Url,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ConnectorError>;
}

impl HttpClientBuilder {
    /// Sends requests with `auth`'s `Authorization` header.
    pub fn auth(mut self, auth: Arc<dyn TokenSource>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Retries under `policy` (default: [`RetryPolicy::new`] with [`ThrottleSignal::RetryAfter`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Waits through `sleeper` (default [`TokioSleeper`]).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Reads time from `clock` (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reads provider error bodies with `parser` (default: none understood).
    pub fn error_parser(mut self, parser: Arc<dyn ErrorParser>) -> Self {
        self.parser = parser;
        self
    }

    /// Connection timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Whole-request timeout (default 30 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// A header sent with every request (`Accept`, `X-GitHub-Api-Version`).
    pub fn default_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Signs every attempt with `signer` (default: no signature).
    pub fn signer(mut self, signer: Arc<dyn RequestSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Reads at most `bytes` of a response body (default [`DEFAULT_MAX_RESPONSE_BYTES`]); a
    /// longer body fails the request with an error naming the limit.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Accepts an `http://` base URL on a host other than loopback (default: refused, since
    /// the token and every answer would cross the network in clear). A warning is logged
    /// when such a client is built.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Overrides the `User-Agent` (default [`USER_AGENT`]).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        let base = url::Url::parse(&self.base_url)
            .map_err(|e| HttpError::InvalidBaseUrl { url: self.base_url.clone(), reason: e.to_string() })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(HttpError::InvalidBaseUrl { url: self.base_url, reason: "not an http(s) URL".to_owned() });
        }
        check_transport(&base, self.allow_insecure_http)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let n = HeaderName::try_from(name.as_str()).map_err(|_| HttpError::InvalidHeader { name: name.clone() })?;
            let v =
                HeaderValue::try_from(value.as_str()).map_err(|_| HttpError::InvalidHeader { name: name.clone() })?;
            headers.insert(n, v);
        }
        let inner = reqwest::Client::builder()
            .user_agent(self.user_agent)
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| HttpError::Client { source })?;
        Ok(HttpClient {
            inner,
            base,
            auth: self.auth,
            retry: self.retry,
            sleeper: self.sleeper,
            clock: self.clock,
            parser: self.parser,
            signer: self.signer,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

/// Refuses `http://` to anything but loopback unless `allow_insecure` says otherwise, and
/// warns when it does.
pub(crate) fn check_transport(url: &url::Url, allow_insecure: bool) -> Result<(), HttpError> {
    if url.scheme() != "http" || is_loopback(url) {
        return Ok(());
    }
    if !allow_insecure {
        return Err(HttpError::InsecureUrl { url: redacted(url) });
    }
    tracing::warn!(
        url = %redacted(url),
        "allow_insecure_http is set: credentials and provider answers cross the network unencrypted"
    );
    Ok(())
}

/// Whether `url`'s host is a loopback address or `localhost`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// `url` without credentials, query or fragment, fit for an error or a log line.
fn redacted(url: &url::Url) -> String {
    format!("{}://{}{}", url.scheme(), url.host_str().unwrap_or(""), url.path())
}

/// An HTTP client bound to one provider's base URL. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    base: url::Url,
    auth: Option<Arc<dyn TokenSource>>,
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
    parser: Arc<dyn ErrorParser>,
    signer: Option<Arc<dyn RequestSigner>>,
    max_response_bytes: usize,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base.as_str())
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A builder for a client of `base_url` (`https://example.okta.com/api/v1`).
    pub fn builder(base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            base_url: base_url.into(),
            auth: None,
            retry: RetryPolicy::new(ThrottleSignal::RetryAfter),
            sleeper: Arc::new(TokioSleeper),
            clock: Arc::new(SystemClock),
            parser: Arc::new(NoBody),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            headers: Vec::new(),
            user_agent: USER_AGENT.to_owned(),
            signer: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            allow_insecure_http: false,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Sends `req` with retries; a non-success final status is mapped to a
    /// [`ConnectorError`] with the provider's message and request id.
    pub async fn send(&self, req: Request) -> Result<Response, ConnectorError> {
        let response = self.send_raw(req).await?;
        if response.status.is_success() { Ok(response) } else { Err(self.error_for(&response)) }
    }

    /// Sends `req` with retries and returns the final response whatever its status, for
    /// connectors that treat some errors as answers (a 404 on delete: already gone).
    /// Transport failures, exhausted retries on throttling, and a 401 the token refresh did
    /// not cure are still errors.
    pub async fn send_raw(&self, req: Request) -> Result<Response, ConnectorError> {
        crate::send::run(self, req).await
    }

    /// The error for a non-success `response`, as [`HttpClient::send`] maps it.
    pub fn error_for(&self, response: &Response) -> ConnectorError {
        map_status(response.status, &response.headers, &response.body, self.parser.as_ref())
    }

    /// Walks a paginated listing from `first`, reading at most `max_pages` pages and
    /// stopping after the first item for which `stop` answers true.
    pub async fn pages<F>(
        &self,
        first: Request,
        style: PageStyle,
        max_pages: usize,
        mut stop: F,
    ) -> Result<Pages, ConnectorError>
    where
        F: FnMut(&Value) -> bool + Send,
    {
        let mut out = Pages::default();
        let mut next = Some(first);
        while let Some(req) = next.take() {
            if out.pages >= max_pages {
                out.truncated = true;
                break;
            }
            let template = req.clone();
            let response = self.send(req).await?;
            out.pages += 1;
            out.request_ids.extend(response.request_id().map(str::to_owned));
            let body: Value = response.json()?;
            let items = match &style {
                PageStyle::Link => body.as_array().cloned(),
                PageStyle::OData => body.get("value").and_then(Value::as_array).cloned(),
                PageStyle::PageToken { items } => {
                    Some(body.get(*items).and_then(Value::as_array).cloned().unwrap_or_default())
                }
                PageStyle::Scim { .. } => {
                    Some(body.get("Resources").and_then(Value::as_array).cloned().unwrap_or_default())
                }
            }
            .ok_or_else(|| ConnectorError::permanent("listing page is not in the expected shape"))?;
            for item in items {
                let done = stop(&item);
                out.items.push(item);
                if done {
                    return Ok(out);
                }
            }
            next = match &style {
                PageStyle::Link => response.next_link().map(Request::link),
                PageStyle::OData => odata_next_link(&body).map(Request::link),
                PageStyle::PageToken { .. } => next_page_token(&body).map(|t| with_query(template, "pageToken", t)),
                PageStyle::Scim { count } => ScimPage::from_body(&body)
                    .and_then(|p| p.next_start_index())
                    .map(|i| with_query(with_query(template, "startIndex", i.to_string()), "count", count.to_string())),
            };
        }
        Ok(out)
    }

    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            inner: &self.inner,
            base: &self.base,
            auth: self.auth.as_deref(),
            retry: &self.retry,
            sleeper: self.sleeper.as_ref(),
            clock: self.clock.as_ref(),
            parser: self.parser.as_ref(),
            signer: self.signer.as_deref(),
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// Replaces (or adds) query parameter `key`.
fn with_query(mut req: Request, key: &str, value: String) -> Request {
    req.query.retain(|(k, _)| k != key);
    req.query.push((key.to_owned(), value));
    req
}

/// Borrowed pieces of a client, for the send loop.
pub(crate) struct Parts<'a> {
    pub(crate) inner: &'a reqwest::Client,
    pub(crate) base: &'a url::Url,
    pub(crate) auth: Option<&'a dyn TokenSource>,
    pub(crate) retry: &'a RetryPolicy,
    pub(crate) sleeper: &'a dyn Sleeper,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) parser: &'a dyn ErrorParser,
    pub(crate) signer: Option<&'a dyn RequestSigner>,
    pub(crate) max_response_bytes: usize,
}

impl Request {
    /// The absolute URL, refusing links to another origin (they would receive our token)
    /// and paths whose identifiers were refused.
    pub(crate) fn url(&self, base: &url::Url) -> Result<url::Url, ConnectorError> {
        let mut url = match &self.target {
            Target::Link(link) => {
                let u =
                    base.join(link).map_err(|_| ConnectorError::permanent("the provider sent an unparsable link"))?;
                if u.origin() != base.origin() {
                    return Err(ConnectorError::permanent(format!(
                        "refusing to follow a link to another origin ({})",
                        u.origin().ascii_serialization()
                    )));
                }
                u
            }
            Target::Path(path) => {
                let rendered = path.as_result().map_err(|e| ConnectorError::from(e.clone()))?;
                let joined = format!("{}{rendered}", base.as_str().trim_end_matches('/'));
                url::Url::parse(&joined).map_err(|_| ConnectorError::permanent("request path does not form a URL"))?
            }
        };
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Refuses to send `sent` when URL normalisation moved it off the path's template.
    pub(crate) fn check_sent(&self, base: &url::Url, sent: &url::Url) -> Result<(), ConnectorError> {
        match &self.target {
            Target::Path(path) => crate::path::check_sent(base, path, sent),
            Target::Link(_) => Ok(()),
        }
    }

    pub(crate) fn build(
        &self,
        client: &reqwest::Client,
        url: url::Url,
        authorization: Option<&secrecy::SecretString>,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        if let Some(name) = &self.invalid_header {
            return Err(ConnectorError::permanent(format!("invalid request header {name}")));
        }
        let mut b = client.request(self.method.clone(), url);
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        if let Some(auth) = authorization {
            let mut value = HeaderValue::try_from(auth.expose_secret()).map_err(|_| {
                ConnectorError::new(ConnectorErrorKind::Unauthenticated, "credential is not a valid header value")
            })?;
            value.set_sensitive(true);
            b = b.header(AUTHORIZATION, value);
        }
        let has_content_type = self.headers.iter().any(|(n, _)| n == reqwest::header::CONTENT_TYPE);
        b = match &self.body {
            // A POST, PUT or PATCH without a body still declares its length: without
            // `Content-Length` (hyper sends none for an empty body) some providers, Microsoft
            // Graph among them, answer 411 Length Required.
            Body::Empty if matches!(self.method, Method::POST | Method::PUT | Method::PATCH) => {
                b.header(reqwest::header::CONTENT_LENGTH, "0")
            }
            Body::Empty => b,
            Body::Json(v) if has_content_type => b.body(serde_json::to_vec(v).unwrap_or_default()),
            Body::Json(v) => b.json(v),
            Body::Form(pairs) => b.form(pairs),
        };
        Ok(b)
    }
}

/// The request `builder` describes, with `signer`'s headers computed over its final bytes.
pub(crate) fn finish(
    builder: reqwest::RequestBuilder,
    signer: Option<&dyn RequestSigner>,
) -> Result<reqwest::Request, ConnectorError> {
    let mut request = builder
        .build()
        .map_err(|e| ConnectorError::permanent(format!("cannot build the request: {}", describe(&e))))?;
    if let Some(signer) = signer {
        let body = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default();
        let headers = signer.sign(request.method(), request.url(), body)?;
        for (name, value) in headers {
            request.headers_mut().insert(name, value);
        }
    }
    Ok(request)
}

/// A transport error described without its URL's query (which may carry tokens).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "body could not be read"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => format!("{what} ({} {})", u.host_str().unwrap_or(""), u.path()),
        None => what.to_owned(),
    }
}
