//! Serving a router on a TCP listener so that slow or numerous clients cannot hold the server:
//! a deadline for each request header, a deadline for each request, and a cap on the
//! connections served at once.
//!
//! `axum::serve` has none of the three: a client sending one header byte every few seconds
//! keeps its connection (and a descriptor) forever, and enough of them exhaust the descriptor
//! limit so that even `/healthz` stops answering. Here hyper's HTTP/1 connection builder gets a
//! header-read timeout, a middleware answers 408 (in the API's error shape) to a request that
//! takes too long, and the accept loop takes a slot of a semaphore before it accepts, so a
//! connection over the cap waits in the kernel's listen backlog, costing no descriptor, until
//! one in service closes.
//!
//! ```no_run
//! use remediation_api::serve::{ServeOptions, serve};
//!
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app, ServeOptions::default(), std::future::pending()).await
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::ApiError;

/// Limits of [`serve`]; see `[server]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Time a client has to send a complete request header once the connection is ready to
    /// read one; past it the connection is closed.
    pub header_read_timeout: Duration,
    /// Time from a request's header to its response, the body read included; past it the
    /// answer is 408 `request_timeout`.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_connections: 512,
        }
    }
}

/// Serves `app` on `listener` under `options` until `shutdown` completes, then stops
/// accepting and waits for the connections in service to finish their requests (the caller
/// bounds that wait with its grace period).
///
/// Returns only an error of the listener itself that is not about one connection.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = with_request_timeout(app, options.request_timeout);
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout.max(Duration::from_millis(1)));
    tokio::pin!(shutdown);
    loop {
        // The slot is taken before `accept`, so the connection over the cap is never accepted
        // (and holds no descriptor) until one in service ends.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: wait a little rather than spin; the
                    // connections in service keep running meanwhile.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Header timeouts, resets and malformed requests end here; none is the
                // server's failure.
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// `app` with every request bounded by `limit`, answered 408 in the API's error shape past it.
pub fn with_request_timeout(app: Router, limit: Duration) -> Router {
    app.layer(axum::middleware::from_fn_with_state(limit.max(Duration::from_millis(1)), time_limit))
}

async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than the server allows ({} ms)", limit.as_millis()),
        )
        .into_response(),
    }
}

/// Errors of one connection (it was reset before it was accepted), as opposed to the
/// listener's.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}
