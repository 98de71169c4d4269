//! The remediation HTTP API: JSON types, bearer-token roles, the axum [`router`], the
//! background [`worker`], Prometheus [`metrics`] and the [`openapi`] document. Another axum
//! service mounts it with `Router::nest` or `merge`:
//!
//! ```no_run
//! use std::sync::Arc;
//! use remediation_api::{ApiOptions, ApiState, router};
//! use remediation_runtime::{LoadedConfig, Runtime, RuntimeOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let loaded = LoadedConfig::discover(None, None)?;
//! let runtime = Runtime::build(&loaded.config, &loaded.dir, loaded.audit_key()?, RuntimeOptions::default())?;
//! let state = ApiState::new(Arc::new(runtime), ApiOptions::default());
//! let app = axum::Router::new().merge(router(state));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! [`serve::serve`] serves it the way `remediation-server` does: with a header-read timeout,
//! a request timeout and a connection cap, so slow clients cannot hold the server.
//!
//! Every response is JSON; every error is `{"error":{"code","message","details"}}`
//! ([`ErrorBody`]), axum's own rejections included. A token is the credential of one
//! principal, whose role applies: `viewer` reads, `requester` suggests and cancels its own
//! actions, `approver` approves, executes and rolls back, `admin` also forces and releases
//! held actions, changes settings, the breaker and the kill switch, and checks connectors
//! live. Loosening settings and turning the kill switch off wait (`202`, a pending change)
//! until a second admin confirms. Held actions and plans that dropped to manual are `202`
//! outcomes, never errors. Each principal's calls are rate-limited (`429` with `Retry-After`).
//!
//! The router also serves the console at `/` (HTML: dashboard, actions, reports and the
//! approval forms; signed in with an API token, sessions kept in the store, so every replica
//! sharing it serves every signed-in browser and sessions survive a restart; see the README's
//! "Approval page" and "Console"). Set
//! [`ApiOptions::secure_cookies`] when it is served over TLS.

mod auth;
pub mod campaigns;
pub mod connections;
mod error;
mod extract;
mod findings;
mod handlers;
pub mod incident;
pub mod metrics;
#[cfg(feature = "nats")]
pub mod nats;
pub mod openapi;
mod rate;
pub mod routes;
pub mod serve;
mod tenants;
pub mod types;
mod ui;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use remediation_runtime::Runtime;

pub use auth::Caller;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use rate::RateLimit;

/// Options of the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Largest body of the routes that take many findings at once (`POST /v1/campaigns`,
    /// `POST /v1/findings`), in bytes; at least [`ApiOptions::body_limit_bytes`] applies.
    pub import_body_limit_bytes: usize,
    /// Mark the approval page's cookies `Secure` (serve it over TLS). They are also marked
    /// when a request arrives with `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
    /// Calls each principal may make per window; more are answered 429 with `Retry-After`.
    pub rate_limit: RateLimit,
    /// How many executions the worker runs at once, in all and per connector.
    pub execution: remediation_service::worker::WorkerConfig,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            body_limit_bytes: 256 * 1024,
            import_body_limit_bytes: 32 * 1024 * 1024,
            secure_cookies: false,
            rate_limit: RateLimit::default(),
            execution: remediation_service::worker::WorkerConfig::default(),
        }
    }
}

pub use remediation_service::worker::WorkerConfig;

/// What the handlers share: the runtime (engine, store, connectors) of the tenant a request
/// is for, and the installation's metrics, flags, rate limits and worker.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
    /// The runtime of the tenant this state serves (the default tenant's at the top level;
    /// each `/v1/tenants/{tenant}/…` request is served with its tenant's).
    runtime: Arc<Runtime>,
}

struct Inner {
    /// The installation's runtime (the default tenant's).
    base: Arc<Runtime>,
    /// Each other tenant's routers, built on first use.
    tenants: tenants::TenantRouters,
    options: ApiOptions,
    metrics: metrics::Metrics,
    shutting_down: AtomicBool,
    /// Serialises finding intake, so a finding posted twice at once creates one action.
    intake: tokio::sync::Mutex<()>,
    /// Each principal's calls in the current window.
    rate: rate::RateLimiter,
    /// The worker use case, with what it remembers between ticks.
    worker: remediation_service::worker::Worker,
}

impl ApiState {
    /// State over an assembled runtime.
    pub fn new(runtime: Arc<Runtime>, options: ApiOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                base: runtime.clone(),
                tenants: tenants::TenantRouters::default(),
                rate: rate::RateLimiter::new(options.rate_limit),
                worker: remediation_service::worker::Worker::new(options.execution.clone()),
                options,
                metrics: metrics::Metrics::new(),
                shutting_down: AtomicBool::new(false),
                intake: tokio::sync::Mutex::new(()),
            }),
            runtime,
        }
    }

    /// The runtime of the tenant this state serves.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The installation's runtime (the default tenant's), from which every tenant's is found.
    pub fn installation(&self) -> &Arc<Runtime> {
        &self.inner.base
    }

    /// This state serving `runtime`'s tenant, sharing everything else.
    pub(crate) fn scoped(&self, runtime: Arc<Runtime>) -> Self {
        Self { inner: self.inner.clone(), runtime }
    }

    /// The per-principal rate limiter.
    pub(crate) fn rate(&self) -> &rate::RateLimiter {
        &self.inner.rate
    }

    /// The worker use case this server runs.
    pub(crate) fn worker(&self) -> &remediation_service::worker::Worker {
        &self.inner.worker
    }

    /// The metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Marks the service as shutting down: `/readyz` answers 503 and the worker claims
    /// nothing new.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once [`ApiState::begin_shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }
}

/// The API's routes ([`routes::ROUTES`]), with the body limit, the URI length limit, request
/// tracing and the uniform error shape, and the server-rendered console (`/`, `/login`,
/// `/logout`, `/ui/...`).
pub fn router(state: ApiState) -> Router {
    let ui = ui::router(state.clone()).layer(axum::middleware::from_fn_with_state(state.clone(), tenants::ui_dispatch));
    api_router(state).merge(ui)
}

/// The API's routes for the tenant `state` serves.
fn api_router(state: ApiState) -> Router {
    let limit = state.inner.options.body_limit_bytes;
    let import_limit = state.inner.options.import_body_limit_bytes.max(limit);
    let mut api = Router::new();
    for route in routes::ROUTES {
        // Many findings at once may be larger than any other request.
        let limit = if route.imports_findings() { import_limit } else { limit };
        api = api.route(
            route.path,
            route
                .handler()
                .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(limit))
                .layer::<_, std::convert::Infallible>(tower_http::limit::RequestBodyLimitLayer::new(limit)),
        );
    }
    // Every route again under `/v1/tenants/{tenant}/`, for that tenant (see `tenants`).
    api = api.route(
        "/v1/tenants/{tenant}/{*rest}",
        axum::routing::any(tenants::dispatch)
            .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(import_limit))
            .layer::<_, std::convert::Infallible>(tower_http::limit::RequestBodyLimitLayer::new(import_limit)),
    );
    api.fallback(error::no_route)
        .layer(axum::middleware::map_response(error::uniform_errors))
        .layer(axum::middleware::from_fn(error::uri_limit))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}
