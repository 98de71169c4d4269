//! Tenants over HTTP.
//!
//! `/v1/tenants/{tenant}/…` serves every route of `/v1/…` for that tenant, and `/v1/…` keeps
//! meaning the default tenant. A request for a tenant is answered by that tenant's own router:
//! the same routes, with a state whose runtime is the tenant's, so every handler reads and
//! writes that tenant's store only and authenticates the caller against that tenant's tokens.
//! The routers are built on first use and kept.
//!
//! A caller without a token is told so (401) whatever the tenant; a token that is not valid in
//! the tenant named, or a tenant that does not exist, is 404: a caller learns nothing about
//! the tenants it cannot reach, not even whether they exist.
//!
//! The console does the same by the `remediation_tenant` cookie set at sign-in.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use remediation_core::TenantId;
use remediation_runtime::RuntimeError;
use tower::ServiceExt as _;

use crate::ApiState;
use crate::error::ApiError;

/// The name of the console's cookie naming the tenant signed in to.
pub(crate) const TENANT_COOKIE: &str = "remediation_tenant";

/// Each tenant's routers, once built.
#[derive(Default)]
pub(crate) struct TenantRouters {
    api: Mutex<HashMap<TenantId, Router>>,
    ui: Mutex<HashMap<TenantId, Router>>,
}

/// The answer for a tenant the caller cannot reach.
fn unreachable_tenant(tenant: &str) -> Response {
    ApiError::not_found(format!("no tenant named `{tenant}` that this token reaches")).into_response()
}

/// The SHA-256 of the request's bearer token, if it has one.
fn token_hash(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return None;
    }
    Some(remediation_runtime::tokens::hash(&secrecy::SecretString::from(token.to_owned())))
}

/// The runtime of `tenant` if the token whose hash is `hash` is valid in it; `Ok(None)` when the
/// tenant does not exist or the token does not reach it.
async fn reach(
    state: &ApiState,
    tenant: &TenantId,
    hash: &str,
) -> Result<Option<std::sync::Arc<remediation_runtime::Runtime>>, ApiError> {
    let runtime = match state.installation().for_tenant(tenant).await {
        Ok(runtime) => runtime,
        Err(RuntimeError::UnknownTenant { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let now = runtime.clock().now();
    let known = runtime.store().credential_by_hash(hash, now).await?;
    Ok(known.filter(|c| c.role != remediation_core::Role::System).map(|_| runtime))
}

/// `/v1/tenants/{tenant}/{rest}`: the request, as `/v1/{rest}`, to the tenant's router.
pub(crate) async fn dispatch(State(state): State<ApiState>, mut req: Request) -> Response {
    // A tenant's own router has this route too; it reaches no further tenant.
    if !state.runtime().tenant().is_default() {
        return ApiError::not_found("no such route").into_response();
    }
    let path = req.uri().path().to_owned();
    let Some((name, rest)) = path.strip_prefix("/v1/tenants/").and_then(|p| p.split_once('/')) else {
        return ApiError::not_found("no such route").into_response();
    };
    let Some(hash) = token_hash(req.headers()) else {
        return ApiError::unauthenticated(
            "send `Authorization: Bearer TOKEN` (create one with `remediate token create`)",
        )
        .into_response();
    };
    let Ok(tenant) = TenantId::new(name) else { return unreachable_tenant(name) };
    let runtime = match reach(&state, &tenant, &hash).await {
        Ok(Some(runtime)) => runtime,
        Ok(None) => return unreachable_tenant(tenant.as_str()),
        Err(e) => return e.into_response(),
    };
    let router = {
        let mut routers = state.inner.tenants.api.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        routers.entry(tenant).or_insert_with(|| crate::api_router(state.scoped(runtime))).clone()
    };
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    match format!("/v1/{rest}{query}").parse::<Uri>() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return ApiError::not_found("no such route").into_response(),
    }
    match router.oneshot(fresh(req)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// `req` without what this router's match left in it (its path parameters): the tenant's
/// router matches the path afresh.
fn fresh(mut req: Request) -> Request {
    *req.extensions_mut() = axum::http::Extensions::new();
    req
}

/// The tenant a console request is for: its `remediation_tenant` cookie, if it names one.
fn cookie_tenant(headers: &HeaderMap) -> Option<TenantId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == TENANT_COOKIE)
        .and_then(|(_, value)| TenantId::new(value).ok())
}

/// The console, served for the tenant its cookie names (signed in there): another tenant's
/// console is that tenant's own router, whose sessions live in that tenant's store. A layer
/// on the console's routes.
pub(crate) async fn ui_dispatch(State(state): State<ApiState>, req: Request, next: axum::middleware::Next) -> Response {
    // A tenant's own console serves itself.
    if !state.runtime().tenant().is_default() {
        return next.run(req).await;
    }
    let Some(tenant) = cookie_tenant(req.headers()).filter(|t| !t.is_default()) else {
        return next.run(req).await;
    };
    match ui_router(&state, &tenant).await {
        Some(router) => match router.oneshot(fresh(req)).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        // A cookie for a tenant that is gone: the default console, which asks to sign in.
        None => next.run(req).await,
    }
}

/// `tenant`'s console router, built on first use; `None` when the tenant does not exist.
async fn ui_router(state: &ApiState, tenant: &TenantId) -> Option<Router> {
    if let Some(found) = state.inner.tenants.ui.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(tenant) {
        return Some(found.clone());
    }
    let runtime = state.installation().for_tenant(tenant).await.ok()?;
    let router = crate::ui::router(state.scoped(runtime));
    let mut routers = state.inner.tenants.ui.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    Some(routers.entry(tenant.clone()).or_insert(router).clone())
}
