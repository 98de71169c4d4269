//! Shared infrastructure for stateful fake providers built with axum: a server on
//! `127.0.0.1:0`, a [`Faults`] switchboard every fake obeys, and a [`RequestLog`] of what
//! was asked (secrets masked), used for request counts and golden fixtures.
//!
//! A fake is an axum [`Router`] with the provider's routes and state, plus a [`Provider`]
//! saying how that provider answers a throttled, failed or unauthenticated request.
//! [`FakeServer::start`] wraps the router in a layer that records every request, then
//! applies the pending faults and the token check before the fake's own handlers run.
//! [`Faults::limit_rate`] adds a provider-style rate limit: a budget of requests per
//! wall-clock second, refused above it with the provider's own 429 ([`Provider::rate_limited`]).

// Provider fakes: one module each.
pub mod entra;
pub mod github;
pub mod google;
pub mod okta;
pub mod scim;
pub mod webhook;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api_description::ApiDescription;

/// How one provider answers the faults the switchboard injects, and where its credentials
/// are.
pub trait Provider: Send + Sync + 'static {
    /// A throttled response carrying the provider's own signal (Okta's `X-Rate-Limit-Reset`,
    /// Graph's `Retry-After`, GitHub's `x-ratelimit-*`, Google's 403 `rateLimitExceeded`).
    fn throttled(&self) -> Response;

    /// A server error with `status` and the provider's error body.
    fn server_error(&self, status: StatusCode) -> Response;

    /// The provider's 401 response.
    fn unauthorized(&self) -> Response;

    /// The credential a request carries (the token after the scheme), if any.
    fn credential(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get("authorization")?.to_str().ok()?;
        value.split_once(' ').map(|(_, token)| token.trim().to_owned())
    }

    /// The answer to a request over a [`RateLimit`]: `limit` requests are allowed per
    /// second and the budget refills at `reset` (the next whole second). By default the
    /// provider's [`Provider::throttled`] answer; fakes override it to name `reset` in the
    /// provider's own headers (`X-Rate-Limit-Reset`, `Retry-After`).
    fn rate_limited(&self, limit: u32, reset: SystemTime) -> Response {
        let _ = (limit, reset);
        self.throttled()
    }

    /// Paths that need no credential and take no faults (token endpoints).
    fn is_public(&self, path: &str) -> bool {
        let _ = path;
        false
    }
}

/// The credential an authenticated request carried, put in the request's extensions for
/// handlers that give tokens different rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// A provider-style rate limit: at most `per_second` requests in each wall-clock second
/// (a fixed window aligned on whole seconds, like the epoch-second reset times providers
/// announce), the rest refused with the provider's throttling answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per second.
    pub per_second: u32,
    /// Count only writes (every method but `GET` and `HEAD`); reads always pass.
    pub writes_only: bool,
}

/// The current window of a [`RateLimit`].
#[derive(Debug)]
struct RateWindow {
    limit: RateLimit,
    /// The Unix second the window covers.
    second: u64,
    /// Requests admitted in it.
    used: u32,
}

impl RateWindow {
    /// Admits a request at `now`, or returns the time the budget refills.
    fn admit(&mut self, now: SystemTime) -> Result<(), SystemTime> {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since_epoch.as_secs();
        if second != self.second {
            self.second = second;
            self.used = 0;
        }
        if self.used < self.limit.per_second {
            self.used += 1;
            return Ok(());
        }
        Err(UNIX_EPOCH + Duration::from_secs(second + 1))
    }
}

#[derive(Debug, Default)]
struct FaultState {
    throttle: u32,
    failures: VecDeque<(Option<Method>, StatusCode)>,
    latency: Duration,
    reject_auth: u32,
    accepted: HashSet<String>,
    revoked: HashSet<String>,
    issued: u64,
    rate: Option<RateWindow>,
    rate_limited: u64,
    description: Option<Arc<ApiDescription>>,
    violations: Vec<String>,
    /// `(path, query)` of the next-page links the fake handed out.
    links: HashSet<(String, Vec<(String, String)>)>,
}

/// The fault switchboard shared by all fakes. Cheap to clone; clones share state.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<FaultState>>);

impl Faults {
    /// A switchboard with nothing pending and no token accepted.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next `n` authenticated requests are answered as throttled, with the provider's
    /// own signal.
    pub fn throttle_next(&self, n: u32) {
        self.state().throttle += n;
    }

    /// Limits authenticated requests to `limit` per wall-clock second from now on, or lifts
    /// the limit with `None`. Requests above it get the provider's
    /// [`Provider::rate_limited`] answer.
    pub fn limit_rate(&self, limit: Option<RateLimit>) {
        self.state().rate = limit.map(|limit| RateWindow { limit, second: 0, used: 0 });
    }

    /// How many requests the rate limit has refused so far.
    pub fn rate_limited(&self) -> u64 {
        self.state().rate_limited
    }

    /// Checks every request but the public ones (token endpoints) against the provider's
    /// API description from now on (`None`: no longer). A request the description does not
    /// define, or with a value it does not accept, is answered 400 naming the violation and
    /// listed in [`Faults::violations`]; the fake's handlers never see it.
    pub fn describe(&self, description: Option<ApiDescription>) {
        self.state().description = description.map(Arc::new);
    }

    /// Every violation of the attached description so far, `METHOD /path: what` each.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// The violations of `request` against the attached description, recorded; `None` when
    /// there is no description or the request conforms.
    fn violation(&self, request: &RecordedRequest) -> Option<String> {
        let description = self.state().description.clone()?;
        let followed = self.state().links.contains(&(request.path.clone(), request.query.clone()));
        let message = if followed {
            // A next-page link the provider handed out: its query (a cursor such as Okta's
            // `after`) is the provider's choice, not the client's.
            let mut own = request.clone();
            own.query.clear();
            description.validate(&own).err()?.to_string()
        } else {
            description.validate(request).err()?.to_string()
        };
        let message = format!("{} {}: {message}", request.method, request.path);
        self.state().violations.push(message.clone());
        Some(message)
    }

    /// Whether a description is attached.
    fn described(&self) -> bool {
        self.state().description.is_some()
    }

    /// Remembers the next-page links of a response: `Link: <url>; rel="next"` (Okta,
    /// GitHub) and `@odata.nextLink` in a JSON body (Graph).
    fn remember_links(&self, headers: &HeaderMap, body: &[u8]) {
        let mut urls = Vec::new();
        for value in headers.get_all("link").iter().filter_map(|v| v.to_str().ok()) {
            for part in value.split(',') {
                let Some((url, params)) = part.trim().strip_prefix('<').and_then(|p| p.split_once('>')) else {
                    continue;
                };
                if params.contains("rel=\"next\"") {
                    urls.push(url.to_owned());
                }
            }
        }
        if let Ok(json) = serde_json::from_slice::<Value>(body)
            && let Some(next) = json.get("@odata.nextLink").and_then(Value::as_str)
        {
            urls.push(next.to_owned());
        }
        for url in urls {
            let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
            let path_and_query = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
            let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
            self.state().links.insert((path.to_owned(), url_pairs(query)));
        }
    }

    /// The next `n` authenticated requests fail with `status` (500, 503).
    pub fn fail_next(&self, n: u32, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.state().failures.extend((0..n).map(|_| (None, status)));
    }

    /// The next `n` authenticated requests with `method` fail with `status`; other methods
    /// pass.
    pub fn fail_next_for(&self, method: Method, n: u32, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.state().failures.extend((0..n).map(|_| (Some(method.clone()), status)));
    }

    /// Every request waits `d` before it is answered.
    pub fn set_latency(&self, d: Duration) {
        self.state().latency = d;
    }

    /// Every token accepted so far expires: requests carrying one get 401. Tokens issued
    /// afterwards work. Static tokens stay refused until [`Faults::reset`].
    pub fn expire_tokens(&self) {
        let mut s = self.state();
        let current: Vec<String> = s.accepted.iter().cloned().collect();
        s.revoked.extend(current);
    }

    /// The next `n` authenticated requests get 401 whatever their token.
    pub fn reject_auth_next(&self, n: u32) {
        self.state().reject_auth += n;
    }

    /// Accepts `token` (a static API token).
    pub fn allow_token(&self, token: &str) {
        let mut s = self.state();
        s.revoked.remove(token);
        s.accepted.insert(token.to_owned());
    }

    /// Mints and accepts a fresh access token; for fake token endpoints.
    pub fn issue_token(&self) -> String {
        let mut s = self.state();
        s.issued += 1;
        let token = format!("fake-access-token-{}-{}", s.issued, uuid::Uuid::new_v4().simple());
        s.accepted.insert(token.clone());
        token
    }

    /// How many tokens were minted by [`Faults::issue_token`].
    pub fn tokens_issued(&self) -> u64 {
        self.state().issued
    }

    /// Whether `token` is accepted now.
    pub fn accepts(&self, token: &str) -> bool {
        let s = self.state();
        s.accepted.contains(token) && !s.revoked.contains(token)
    }

    /// Clears every pending fault and revocation; accepted tokens stay accepted, and so does
    /// an attached description ([`Faults::describe`]).
    pub fn reset(&self) {
        let mut s = self.state();
        s.throttle = 0;
        s.failures.clear();
        s.latency = Duration::ZERO;
        s.reject_auth = 0;
        s.revoked.clear();
        s.rate = None;
        s.rate_limited = 0;
    }

    /// The fault due for an authenticated request with `method`, consuming it.
    fn take(&self, method: &Method, credential: Option<&str>) -> Option<Fault> {
        let mut s = self.state();
        if s.reject_auth > 0 {
            s.reject_auth -= 1;
            return Some(Fault::Unauthorized);
        }
        let valid = credential.is_some_and(|c| s.accepted.contains(c) && !s.revoked.contains(c));
        if !valid {
            return Some(Fault::Unauthorized);
        }
        if s.throttle > 0 {
            s.throttle -= 1;
            return Some(Fault::Throttled);
        }
        let write = !matches!(*method, Method::GET | Method::HEAD);
        let refused = s
            .rate
            .as_mut()
            .filter(|w| write || !w.limit.writes_only)
            .and_then(|w| w.admit(SystemTime::now()).err().map(|reset| (w.limit.per_second, reset)));
        if let Some((limit, reset)) = refused {
            s.rate_limited += 1;
            return Some(Fault::RateLimited { limit, reset });
        }
        let due = s.failures.iter().position(|(m, _)| m.as_ref().is_none_or(|m| m == method));
        if let Some(i) = due {
            let (_, status) = s.failures.remove(i)?;
            return Some(Fault::Failed(status));
        }
        None
    }

    fn latency(&self) -> Duration {
        self.state().latency
    }
}

enum Fault {
    Unauthorized,
    Throttled,
    RateLimited { limit: u32, reset: SystemTime },
    Failed(StatusCode),
}

/// One request as the fake saw it, secrets masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Query parameters in order, decoded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    /// Headers by lower-case name; credentials masked as `<scheme> ***`.
    pub headers: BTreeMap<String, String>,
    /// The body: JSON as JSON, a form as an object of fields (secret fields masked), other
    /// bodies as a string; `None` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The status the fake answered.
    #[serde(default, skip_serializing)]
    pub status: u16,
}

/// Every request a fake served, in order. Cheap to clone; clones share the log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many requests were served (use it for `Subject::requests_served`).
    pub fn count(&self) -> u64 {
        self.entries().len() as u64
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.entries().clone()
    }

    /// The requests after the first `mark` (a value [`RequestLog::count`] returned earlier).
    pub fn since(&self, mark: u64) -> Vec<RecordedRequest> {
        let entries = self.entries();
        let from = usize::try_from(mark).unwrap_or(usize::MAX).min(entries.len());
        entries[from..].to_vec()
    }

    /// Forgets every request.
    pub fn clear(&self) {
        self.entries().clear();
    }

    fn push(&self, r: RecordedRequest) {
        self.entries().push(r);
    }
}

/// Header names whose values are credentials.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// Body fields (form or JSON, at any depth) whose values are secrets.
const SECRET_FIELDS: &[&str] =
    &["client_secret", "client_assertion", "assertion", "password", "secret", "private_key", "access_token", "token"];

/// Masks a credential header value, keeping its scheme: `SSWS 00ab...` -> `SSWS ***`.
pub fn mask_credential(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} ***"),
        None => "***".to_owned(),
    }
}

/// Replaces every secret field's value in `v` with `"***"`.
pub fn mask_fields(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, field) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.to_ascii_lowercase().as_str()) {
                    *field = Value::String("***".to_owned());
                } else {
                    mask_fields(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_fields),
        _ => {}
    }
}

fn record(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &[u8]) -> RecordedRequest {
    let query = uri.query().map(url_pairs).unwrap_or_default();
    let mut recorded_headers = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str().to_ascii_lowercase();
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let value = if SECRET_HEADERS.contains(&name.as_str()) { mask_credential(&value) } else { value };
        recorded_headers.insert(name, value);
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = if body.is_empty() {
        None
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields: serde_json::Map<String, Value> =
            url_pairs(&String::from_utf8_lossy(body)).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        Some(Value::Object(fields))
    } else {
        Some(serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())))
    };
    let body = body.map(|mut b| {
        mask_fields(&mut b);
        b
    });
    RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        headers: recorded_headers,
        body,
        status: 0,
    }
}

/// Decodes `a=1&b=x%20y` (also `+` as space).
pub fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space, as in a query).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone)]
struct Layer {
    provider: Arc<dyn Provider>,
    faults: Faults,
    log: RequestLog,
}

async fn instrument(State(layer): State<Layer>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    let mut recorded = record(&parts.method, &parts.uri, &parts.headers, &bytes);
    let latency = layer.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let public = layer.provider.is_public(parts.uri.path());
    if !public && let Some(message) = layer.faults.violation(&recorded) {
        let response = json_response(
            StatusCode::BAD_REQUEST,
            &[],
            &serde_json::json!({ "error": "not in the provider's API description", "violation": message }),
        );
        recorded.status = response.status().as_u16();
        layer.log.push(recorded);
        return response;
    }
    let credential = layer.provider.credential(&parts.headers);
    let fault = if public { None } else { layer.faults.take(&parts.method, credential.as_deref()) };
    let response = match fault {
        Some(Fault::Unauthorized) => layer.provider.unauthorized(),
        Some(Fault::Throttled) => layer.provider.throttled(),
        Some(Fault::RateLimited { limit, reset }) => layer.provider.rate_limited(limit, reset),
        Some(Fault::Failed(status)) => layer.provider.server_error(status),
        None => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            if let Some(c) = credential {
                request.extensions_mut().insert(Caller(c));
            }
            next.run(request).await
        }
    };
    recorded.status = response.status().as_u16();
    let response = if layer.faults.described() {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
        layer.faults.remember_links(&parts.headers, &bytes);
        Response::from_parts(parts, Body::from(bytes))
    } else {
        response
    };
    layer.log.push(recorded);
    response
}

/// A 2048-bit RSA private key (PKCS#8 PEM) for tests: client assertions and service-account
/// JWTs. It protects nothing.
pub const TEST_RSA_PRIVATE_KEY: &str = include_str!("../../keys/test-rsa-private.pem");

/// The public half of [`TEST_RSA_PRIVATE_KEY`], with which fakes verify signatures.
pub const TEST_RSA_PUBLIC_KEY: &str = include_str!("../../keys/test-rsa-public.pem");

/// A fake provider listening on `127.0.0.1`, stopped when dropped.
pub struct FakeServer {
    base_url: String,
    faults: Faults,
    log: RequestLog,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Serves `router` behind the recording and fault layer for `provider`, with a fresh
    /// switchboard and log.
    pub async fn start(router: Router, provider: impl Provider) -> io::Result<Self> {
        Self::start_with(router, provider, Faults::new(), RequestLog::new()).await
    }

    /// As [`FakeServer::start`], sharing `faults` and `log` with the caller (the fake's
    /// handlers use the same switchboard to mint tokens).
    pub async fn start_with(
        router: Router,
        provider: impl Provider,
        faults: Faults,
        log: RequestLog,
    ) -> io::Result<Self> {
        let layer = Layer { provider: Arc::new(provider), faults: faults.clone(), log: log.clone() };
        let router = router.layer(axum::middleware::from_fn_with_state(layer, instrument));
        let (base_url, task) = spawn(router).await?;
        Ok(Self { base_url, faults, log, task })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The switchboard.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The request log.
    pub fn log(&self) -> &RequestLog {
        &self.log
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `127.0.0.1:0`; returns its base URL (`http://127.0.0.1:<port>`) and
/// the server task.
pub async fn spawn(router: Router) -> io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}"), task))
}

/// A JSON response with `status` and extra headers.
pub fn json_response(status: StatusCode, headers: &[(&str, String)], body: &Value) -> Response {
    let mut builder = Response::builder().status(status).header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// An empty response with `status` and extra headers.
pub fn empty_response(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Body::empty()).unwrap_or_else(|_| Response::new(Body::empty()))
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};

    use super::*;

    struct Plain;

    impl Provider for Plain {
        fn throttled(&self) -> Response {
            empty_response(StatusCode::TOO_MANY_REQUESTS, &[("retry-after", "1".to_owned())])
        }

        fn server_error(&self, status: StatusCode) -> Response {
            empty_response(status, &[])
        }

        fn unauthorized(&self) -> Response {
            empty_response(StatusCode::UNAUTHORIZED, &[])
        }

        fn is_public(&self, path: &str) -> bool {
            path == "/token"
        }
    }

    async fn send(base: &str, method: &str, path: &str, token: &str, body: Option<&str>) -> u16 {
        use std::io::{Read, Write};
        let addr = base.trim_start_matches("http://").to_owned();
        let body = body.unwrap_or("").to_owned();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.write_all(req.as_bytes()).expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
        })
        .await
        .expect("join")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_description_attached_an_undefined_request_is_refused_and_listed() {
        let router = Router::new()
            .route("/x", get(|| async { "ok" }).post(|| async { "ok" }))
            .route("/token", post(|| async { "t" }));
        let server = FakeServer::start(router, Plain).await.expect("start");
        let (base, f) = (server.base_url().to_owned(), server.faults().clone());
        f.allow_token("t");
        let description = serde_json::json!({
            "openapi": "3.0.3",
            "paths": {"/x": {"get": {
                "parameters": [{"name": "a", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": ""}}
            }}}
        });
        f.describe(Some(ApiDescription::parse(&description.to_string()).expect("description")));
        assert_eq!(send(&base, "GET", "/x?a=1", "t", None).await, 200);
        assert_eq!(send(&base, "GET", "/x?b=1", "t", None).await, 400, "an undefined query parameter");
        assert_eq!(send(&base, "POST", "/x", "t", None).await, 400, "an undefined method");
        assert_eq!(send(&base, "POST", "/token", "", Some("grant_type=x")).await, 200, "public paths are not checked");
        let v = f.violations();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("GET /x?b=1") || v[0].contains("query parameter b is not defined"), "{v:?}");
        assert!(v[1].contains("defines only GET"), "{v:?}");
        let statuses: Vec<u16> = server.log().all().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 400, 400, 200], "refused requests are recorded");
        f.describe(None);
        assert_eq!(send(&base, "POST", "/x", "t", None).await, 200);
    }

    #[test]
    fn the_rate_window_admits_its_budget_each_second_and_names_the_refill() {
        let mut w = RateWindow { limit: RateLimit { per_second: 2, writes_only: true }, second: 0, used: 0 };
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(w.admit(at(1_000_100)), Ok(()));
        assert_eq!(w.admit(at(1_000_200)), Ok(()));
        assert_eq!(w.admit(at(1_000_999)), Err(at(1_001_000)), "the third in the same second waits for the next");
        assert_eq!(w.admit(at(1_001_000)), Ok(()), "a new second has a fresh budget");
        assert_eq!(w.admit(at(1_003_500)), Ok(()));
        assert_eq!(w.admit(at(1_003_600)), Ok(()));
        assert_eq!(w.admit(at(1_003_700)), Err(at(1_004_000)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_rate_limit_refuses_writes_with_the_providers_answer_and_lets_reads_pass() {
        let router = Router::new().route("/x", get(|| async { "ok" }).post(|| async { "ok" }));
        let server = FakeServer::start(router, Plain).await.expect("start");
        let (base, f) = (server.base_url().to_owned(), server.faults().clone());
        f.allow_token("t");
        f.limit_rate(Some(RateLimit { per_second: 0, writes_only: true }));
        assert_eq!(send(&base, "POST", "/x", "t", None).await, 429);
        assert_eq!(send(&base, "GET", "/x", "t", None).await, 200, "reads are not counted");
        assert_eq!(f.rate_limited(), 1);
        f.limit_rate(None);
        assert_eq!(send(&base, "POST", "/x", "t", None).await, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn faults_apply_in_order_and_the_log_masks_secrets() {
        let router = Router::new()
            .route("/x", get(|| async { "ok" }).post(|| async { "ok" }))
            .route("/token", post(|| async { "t" }));
        let server = FakeServer::start(router, Plain).await.expect("start");
        let (base, f) = (server.base_url().to_owned(), server.faults().clone());
        f.allow_token("good-token");
        assert_eq!(send(&base, "GET", "/x", "bad-token", None).await, 401);
        assert_eq!(send(&base, "GET", "/x", "good-token", None).await, 200);
        f.throttle_next(1);
        f.fail_next_for(Method::POST, 1, 503);
        assert_eq!(send(&base, "GET", "/x", "good-token", None).await, 429);
        assert_eq!(send(&base, "GET", "/x", "good-token", None).await, 200, "the failure waits for a POST");
        assert_eq!(send(&base, "POST", "/x", "good-token", None).await, 503);
        f.expire_tokens();
        assert_eq!(send(&base, "GET", "/x", "good-token", None).await, 401);
        let fresh = f.issue_token();
        assert_eq!(send(&base, "GET", "/x", &fresh, None).await, 200);
        f.reject_auth_next(1);
        assert_eq!(send(&base, "GET", "/x", &fresh, None).await, 401);
        assert_eq!(send(&base, "POST", "/token", "", Some("client_secret=hunter2&grant_type=x")).await, 200);
        f.reset();
        assert_eq!(send(&base, "GET", "/x?a=1&b=two%20words", "good-token", None).await, 200);

        let log = server.log().all();
        assert_eq!(server.log().count(), 10);
        let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [401, 200, 429, 200, 503, 401, 200, 401, 200, 200]);
        let text = serde_json::to_string(&log).expect("json");
        for secret in ["good-token", "bad-token", "hunter2", fresh.as_str()] {
            assert!(!text.contains(secret), "{secret} leaked into the log: {text}");
        }
        assert_eq!(log[0].headers.get("authorization").map(String::as_str), Some("Bearer ***"));
        assert_eq!(log[8].body, Some(serde_json::json!({"client_secret": "***", "grant_type": "x"})));
        assert_eq!(log[9].query, [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "two words".to_owned())]);
    }
}
