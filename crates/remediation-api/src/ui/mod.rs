//! The console: server-rendered HTML (no JavaScript) over the JSON API's own handlers, so
//! every read and every button has the API's roles, separation of duties and engine rules.
//!
//! - `GET /` shows a sign-in form taking an API token (`remediate token create`), or, once
//!   signed in, the dashboard ([`dashboard`]): counts, safety switches, connector health, the
//!   audit chain, per-control metrics, two SVG charts and the actions waiting for a decision.
//!   `POST /login` checks the token with the API's own hashed look-up and starts a session;
//!   `POST /logout` ends it.
//! - `/ui/actions` lists every action with filters and paging, `/ui/actions/{id}` shows one
//!   with the buttons its caller's role allows ([`actions`]); `/ui/reports` downloads the
//!   compliance report ([`reports`]).
//! - `/ui/respond` finds a person's accounts and cuts them off everywhere; `/ui/playbooks`
//!   plans a playbook for a person and asks for a run; `/ui/runs` and `/ui/runs/{id}` show the
//!   runs with their approve, reject, resume and roll-back buttons ([`incident`]).
//! - Sessions are an opaque random id in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`,
//!   `Secure` with [`crate::ApiOptions::secure_cookies`] or `X-Forwarded-Proto: https`),
//!   kept in the store ([`remediation_core::SessionStore`]) under the SHA-256 of the id, with
//!   the token's hash; neither the id nor the token is stored, and the token never leaves the
//!   login form. Every replica sharing the store knows every session, so a browser signed in
//!   through one may post to another, and sessions survive a restart. Every request re-checks
//!   the token, so revoking it ends its sessions. Sessions last [`SESSION_TTL`]; each sign-in
//!   prunes the expired ones and keeps at most [`MAX_SESSIONS`].
//! - Every form carries the session's CSRF token (compared in constant time); the sign-in
//!   form a double-submit one. A POST with a missing or wrong token, a foreign `Origin` or
//!   `Referer`, or `Sec-Fetch-Site: cross-site` is refused with 403.
//! - Buttons call the JSON API's handlers; the result comes back as a flash after a 303.
//! - Templates (`ui/*.html`, askama) escape every value they print, the SVG charts' too.
//! - The navigation bar is [`NAV`]: a page group adds one entry there and one `active` key.

mod actions;
mod campaigns;
mod charts;
mod connections;
mod dashboard;
mod incident;
mod reports;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::RngCore as _;
use remediation_core::store::{SessionIdHash, UiSession};
use remediation_core::{Actor, Store};
use secrecy::SecretString;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use time::{Duration, OffsetDateTime};

use crate::ApiState;
use crate::auth::actor_for_hash;
use crate::error::ApiError;

/// The session cookie.
const SESSION_COOKIE: &str = "remediation_session";
/// The sign-in form's double-submit CSRF cookie.
const LOGIN_COOKIE: &str = "remediation_login";
/// How long a session lasts from sign-in.
const SESSION_TTL: Duration = Duration::hours(8);
/// At most this many live sessions; those that expire first are dropped beyond it.
const MAX_SESSIONS: usize = 10_000;
/// Largest form accepted.
const FORM_LIMIT: usize = 16 * 1024;
/// The page loads nothing but its own stylesheet and posts only to itself.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// The page's stylesheet.
const STYLE: &str = include_str!("../../ui/style.css");

/// What the page's handlers share: the API's state, whose runtime's store keeps the sessions.
#[derive(Clone)]
struct Ui {
    api: ApiState,
}

/// A one-time message after a form post.
#[derive(Debug, Clone)]
struct Flash {
    ok: bool,
    text: String,
}

impl Flash {
    fn ok(text: impl Into<String>) -> Self {
        Self { ok: true, text: text.into() }
    }

    fn error(text: impl Into<String>) -> Self {
        Self { ok: false, text: text.into() }
    }

    /// The CSS class.
    fn class(&self) -> &'static str {
        if self.ok { "ok" } else { "error" }
    }
}

impl From<Flash> for remediation_core::store::Flash {
    fn from(f: Flash) -> Self {
        Self { ok: f.ok, text: f.text }
    }
}

impl From<remediation_core::store::Flash> for Flash {
    fn from(f: remediation_core::store::Flash) -> Self {
        Self { ok: f.ok, text: f.text }
    }
}

/// A signed-in caller.
struct Signed {
    /// The hash of the session's id, as the store keys it.
    sid: SessionIdHash,
    actor: Actor,
    csrf: String,
    /// The tenant signed in to (empty for the default tenant).
    tenant: String,
}

/// The console's routes, with their own body limit and security headers.
pub(crate) fn router(api: ApiState) -> Router {
    let ui = Ui { api };
    Router::new()
        .route("/", get(dashboard::index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/ui/style.css", get(style))
        .route("/ui/actions", get(actions::list))
        .route("/ui/actions/{id}", get(actions::page))
        .route("/ui/actions/{id}/{button}", post(actions::button))
        .route("/ui/campaigns", get(campaigns::list))
        .route("/ui/campaigns/{name}", get(campaigns::page))
        .route("/ui/controls", get(campaigns::controls))
        .route("/ui/connections", get(connections::page).post(connections::add))
        .route("/ui/connections/{id}/{button}", post(connections::button))
        .route("/ui/respond", get(incident::respond_get).post(incident::respond_post))
        .route("/ui/playbooks", get(incident::playbooks))
        .route("/ui/playbooks/run", post(incident::request_run))
        .route("/ui/runs", get(incident::runs))
        .route("/ui/runs/{id}", get(incident::run))
        .route("/ui/runs/{id}/{button}", post(incident::run_button))
        .route("/ui/reports", get(reports::page))
        .route("/ui/reports/compliance", get(reports::compliance))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(ui)
}

/// A random 256-bit value, hex.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Constant-time equality of two secrets (lengths are not secret).
fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The host part (`host[:port]`) of an absolute URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    rest.split(['/', '?', '#']).next()
}

/// False for a request another site made the browser send: `Sec-Fetch-Site` other than
/// `same-origin`/`none`, or an `Origin` (else `Referer`) naming another host. An `Origin` of
/// `null` (what browsers send under `Referrer-Policy: no-referrer`) counts as absent; the
/// CSRF token and `SameSite=Strict` still stand.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return false;
    }
    let claimed = headers
        .get(header::ORIGIN)
        .filter(|v| v.as_bytes() != b"null")
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().ok());
    let host = headers.get("x-forwarded-host").or_else(|| headers.get(header::HOST)).and_then(|v| v.to_str().ok());
    match claimed {
        None => true,
        Some(url) => match (url.and_then(authority), host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h.trim()),
            _ => false,
        },
    }
}

impl Ui {
    fn now(&self) -> OffsetDateTime {
        self.api.runtime().clock().now()
    }

    fn secure(&self, headers: &HeaderMap) -> bool {
        self.api.inner.options.secure_cookies
            || headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
    }

    /// A `Set-Cookie` value; `None` as value expires the cookie.
    fn set_cookie(&self, headers: &HeaderMap, name: &str, value: Option<&str>, max_age: Duration) -> HeaderValue {
        let secure = if self.secure(headers) { "; Secure" } else { "" };
        let (value, age) = match value {
            Some(v) => (v, max_age.whole_seconds()),
            None => ("", 0),
        };
        let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// The store the sessions live in, shared by every replica.
    fn store(&self) -> &Arc<dyn Store> {
        self.api.runtime().store()
    }

    /// The signed-in caller, if the session cookie names a live session whose token is still
    /// valid. Sessions of revoked tokens are deleted; expired ones are never returned and are
    /// pruned at the next sign-in.
    async fn signed_in(&self, headers: &HeaderMap) -> Result<Option<Signed>, ApiError> {
        let Some(cookie_id) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
        let sid = SessionIdHash::of(cookie_id);
        let Some(session) = self.store().session(&sid, self.now()).await? else { return Ok(None) };
        match actor_for_hash(&self.api, &session.token_hash).await? {
            Some(actor) => {
                // The page's calls count against the principal's rate, as API calls do.
                let clock_now = self.api.runtime().clock().now();
                if let Err(retry_after) = self.api.rate().admit(&actor.name, clock_now) {
                    return Err(ApiError::rate_limited(&actor.name, retry_after));
                }
                let tenant = self.api.runtime().tenant();
                let tenant = if tenant.is_default() { String::new() } else { tenant.to_string() };
                Ok(Some(Signed { sid, actor, csrf: session.csrf, tenant }))
            }
            None => {
                self.store().delete_session(&sid).await?;
                Ok(None)
            }
        }
    }

    /// Starts a session for `token_hash`, after pruning the expired ones and making room under
    /// [`MAX_SESSIONS`]; returns its id (the store keeps only its hash).
    async fn start(&self, token_hash: String, flash: Flash) -> Result<String, ApiError> {
        let now = self.now();
        let sid = random_id();
        self.store().prune_sessions(now, MAX_SESSIONS - 1).await?;
        let session =
            UiSession { token_hash, csrf: random_id(), expires_at: now + SESSION_TTL, flash: Some(flash.into()) };
        self.store().create_session(&SessionIdHash::of(&sid), &session).await?;
        Ok(sid)
    }

    async fn set_flash(&self, sid: &SessionIdHash, flash: Flash) -> Result<(), ApiError> {
        self.store().set_flash(sid, &flash.into()).await?;
        Ok(())
    }

    async fn take_flash(&self, sid: &SessionIdHash) -> Result<Option<Flash>, ApiError> {
        Ok(self.store().take_flash(sid).await?.map(Flash::from))
    }
}

/// Adds the page's security headers to every response.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Renders a template as an HTML response.
fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a console page");
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "internal error")
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    flash: Option<Flash>,
    title: String,
    message: String,
}

/// An error page.
fn message(status: StatusCode, title: &str, text: impl Into<String>) -> Response {
    html(status, &MessagePage { flash: None, title: title.to_owned(), message: text.into() })
}

/// The 403 for a refused form post.
fn forbidden(why: &str) -> Response {
    tracing::info!(why, "refused a console form post");
    message(StatusCode::FORBIDDEN, "Forbidden", why)
}

/// An error from the API layer as a page (with `Retry-After` when rate-limited).
fn error_page(e: &ApiError) -> Response {
    let mut response = message(e.status, "Error", e.message.clone());
    if let Some(secs) = e.details.get("retry_after_secs").and_then(serde_json::Value::as_u64) {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    response
}

/// A 303 to `/`.
fn see_other_home() -> Response {
    see_other("/")
}

/// A 303 to `path`, a path of the console itself (never a caller's URL).
fn see_other(path: &str) -> Response {
    match HeaderValue::from_str(path) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => see_other_home(),
    }
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], STYLE)
        .into_response()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    flash: Option<Flash>,
    csrf: String,
    ttl_hours: i64,
    /// The tenant of the console this page belongs to (empty for the default tenant).
    tenant: String,
}

/// The sign-in form with a fresh double-submit token.
fn login_page(ui: &Ui, headers: &HeaderMap, status: StatusCode, flash: Option<Flash>) -> Response {
    let csrf = random_id();
    let tenant = ui.api.runtime().tenant();
    let tenant = if tenant.is_default() { String::new() } else { tenant.to_string() };
    let page = LoginPage { flash, csrf: csrf.clone(), ttl_hours: SESSION_TTL.whole_hours(), tenant };
    let mut response = html(status, &page);
    let cookie = ui.set_cookie(headers, LOGIN_COOKIE, Some(&csrf), Duration::hours(1));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// The sign-in form.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    token: Option<SecretString>,
    /// The tenant to sign in to (empty: the default tenant).
    #[serde(default)]
    tenant: String,
}

async fn login(AxState(ui): AxState<Ui>, headers: HeaderMap, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    if !same_origin(&headers) {
        return forbidden("the request came from another site");
    }
    let Ok(Form(form)) = form else { return forbidden("the sign-in form is missing its CSRF token") };
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same_secret(c, &form.csrf)) {
        return forbidden("the sign-in form's CSRF token is missing or wrong; reload the page and sign in again");
    }
    let Some(token) = form.token else {
        return login_page(&ui, &headers, StatusCode::UNAUTHORIZED, Some(Flash::error("enter an API token")));
    };
    let hash = remediation_runtime::tokens::hash(&token);
    // The tenant signed in to: its sessions and tokens. A tenant that does not exist reads as
    // a token it does not know, so the form tells nobody which tenants exist.
    let tenant = if form.tenant.trim().is_empty() {
        Ok(remediation_core::TenantId::default())
    } else {
        remediation_core::TenantId::new(form.tenant.trim())
    };
    let runtime = match tenant {
        Ok(tenant) => ui.api.installation().for_tenant(&tenant).await.ok(),
        Err(_) => None,
    };
    let Some(runtime) = runtime else {
        return login_page(&ui, &headers, StatusCode::UNAUTHORIZED, Some(Flash::error("unknown or revoked token")));
    };
    let tenant = runtime.tenant().clone();
    let ui = Ui { api: ui.api.scoped(runtime) };
    let actor = match actor_for_hash(&ui.api, &hash).await {
        Ok(Some(actor)) => actor,
        Ok(None) => {
            return login_page(&ui, &headers, StatusCode::UNAUTHORIZED, Some(Flash::error("unknown or revoked token")));
        }
        Err(e) => return error_page(&e),
    };
    // A new id at every sign-in, so a session id planted before it is worthless.
    if let Some(old) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = ui.store().delete_session(&SessionIdHash::of(old)).await
    {
        return error_page(&e.into());
    }
    let sid = match ui.start(hash, Flash::ok(format!("Signed in as {} ({}).", actor.name, actor.role))).await {
        Ok(sid) => sid,
        Err(e) => return error_page(&e),
    };
    tracing::info!(actor = %actor.name, role = %actor.role, "signed in to the console");
    let mut response = see_other_home();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, ui.set_cookie(&headers, SESSION_COOKIE, Some(&sid), SESSION_TTL));
    h.append(header::SET_COOKIE, ui.set_cookie(&headers, LOGIN_COOKIE, None, Duration::ZERO));
    let tenant_cookie = (!tenant.is_default()).then(|| tenant.to_string());
    h.append(
        header::SET_COOKIE,
        ui.set_cookie(&headers, crate::tenants::TENANT_COOKIE, tenant_cookie.as_deref(), SESSION_TTL),
    );
    response
}

/// Every signed-in form: the CSRF token, and what the buttons of an action send.
#[derive(Deserialize)]
struct PostForm {
    #[serde(default)]
    csrf: String,
    /// A decision's optional note.
    #[serde(default)]
    note: Option<String>,
    /// The reason a release or forced execution requires.
    #[serde(default)]
    reason: Option<String>,
    /// The target's name typed to confirm an irreversible or high-risk change.
    #[serde(default)]
    confirm: Option<String>,
    /// `dashboard` when the form was posted from the dashboard (the 303 returns there).
    #[serde(default)]
    back: Option<String>,
}

/// The checks every signed-in form post passes: same origin, a live session, its CSRF token.
async fn check_post(
    ui: &Ui,
    headers: &HeaderMap,
    form: &Result<Form<PostForm>, FormRejection>,
) -> Result<Signed, Box<Response>> {
    let csrf = form.as_ref().map(|Form(f)| f.csrf.as_str()).unwrap_or_default();
    check_csrf(ui, headers, csrf).await
}

/// The checks of a form of another shape: same origin, a live session, its CSRF token `csrf`.
async fn check_csrf(ui: &Ui, headers: &HeaderMap, csrf: &str) -> Result<Signed, Box<Response>> {
    if !same_origin(headers) {
        return Err(Box::new(forbidden("the request came from another site")));
    }
    let signed = match ui.signed_in(headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Box::new(forbidden("sign in first: the session is missing or expired"))),
        Err(e) => return Err(Box::new(error_page(&e))),
    };
    if same_secret(&signed.csrf, csrf) {
        Ok(signed)
    } else {
        Err(Box::new(forbidden("the form's CSRF token is missing or wrong; reload the page and try again")))
    }
}

async fn logout(AxState(ui): AxState<Ui>, headers: HeaderMap, form: Result<Form<PostForm>, FormRejection>) -> Response {
    let signed = match check_post(&ui, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if let Err(e) = ui.store().delete_session(&signed.sid).await {
        return error_page(&e.into());
    }
    let mut response = see_other_home();
    response.headers_mut().append(header::SET_COOKIE, ui.set_cookie(&headers, SESSION_COOKIE, None, Duration::ZERO));
    response
        .headers_mut()
        .append(header::SET_COOKIE, ui.set_cookie(&headers, crate::tenants::TENANT_COOKIE, None, Duration::ZERO));
    response
}

/// One entry of the navigation bar.
struct NavItem {
    /// What a page names as its `active` entry.
    key: &'static str,
    href: &'static str,
    label: &'static str,
}

/// The navigation bar, in order; sign-out follows it.
const NAV: &[NavItem] = &[
    NavItem { key: "dashboard", href: "/", label: "Dashboard" },
    NavItem { key: "actions", href: "/ui/actions", label: "Actions" },
    NavItem { key: "campaigns", href: "/ui/campaigns", label: "Campaigns" },
    NavItem { key: "controls", href: "/ui/controls", label: "Controls" },
    NavItem { key: "connections", href: "/ui/connections", label: "Connections" },
    NavItem { key: "respond", href: "/ui/respond", label: "Respond" },
    NavItem { key: "runs", href: "/ui/runs", label: "Runs" },
    NavItem { key: "reports", href: "/ui/reports", label: "Reports" },
];

/// What every signed-in page shows around its content: who, the sign-out form's CSRF token
/// and the navigation bar with the page's entry marked.
struct Me {
    name: String,
    role: String,
    csrf: String,
    active: &'static str,
    /// The tenant signed in to (empty for the default tenant).
    tenant: String,
}

impl Me {
    fn new(signed: &Signed, active: &'static str) -> Self {
        Self {
            name: signed.actor.name.clone(),
            role: signed.actor.role.to_string(),
            csrf: signed.csrf.clone(),
            active,
            tenant: signed.tenant.clone(),
        }
    }

    /// The navigation bar.
    fn nav(&self) -> &'static [NavItem] {
        NAV
    }
}

/// A signed-in page's start: the caller (or the sign-in form / an error page to answer
/// instead) and the flash waiting for it.
async fn open_page(ui: &Ui, headers: &HeaderMap) -> Result<(Signed, Option<Flash>), Box<Response>> {
    let signed = match ui.signed_in(headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Box::new(login_page(ui, headers, StatusCode::OK, None))),
        Err(e) => return Err(Box::new(error_page(&e))),
    };
    match ui.take_flash(&signed.sid).await {
        Ok(flash) => Ok((signed, flash)),
        Err(e) => Err(Box::new(error_page(&e))),
    }
}

/// `3m`, `5h 2m`, `2d 4h`.
fn age(d: Duration) -> String {
    let m = d.whole_minutes().max(0);
    match m {
        0 => "just now".to_owned(),
        1..60 => format!("{m}m"),
        60..1440 => format!("{}h {}m", m / 60, m % 60),
        _ => format!("{}d {}h", m / 1440, (m % 1440) / 60),
    }
}

/// `3h ago`, `2d ago`, `just now`: one unit, for lists.
fn ago(d: Duration) -> String {
    let m = d.whole_minutes().max(0);
    match m {
        0 => "just now".to_owned(),
        1..60 => format!("{m}m ago"),
        60..1440 => format!("{}h ago", m / 60),
        _ => format!("{}d ago", m / 1440),
    }
}

/// A duration in seconds, short: `45s`, `12m`, `3.5h`, `2.1d`.
fn short_secs(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3_600.0 {
        format!("{:.0}m", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.1}h", s / 3_600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

/// A limit window, in its largest whole unit: `1h`, `1d`, `90s`.
fn window(secs: u64) -> String {
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A ratio as a percentage, `-` when there is none.
fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

fn show_json(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "(absent)".to_owned(), serde_json::Value::to_string)
}

/// `2026-01-02 03:04:05 UTC`.
fn timestamp(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]
mod tests {
    use super::*;

    #[track_caller]
    fn check_origin(pairs: &[(&str, &str)], expected: bool) {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        assert_eq!(same_origin(&headers), expected, "{pairs:?}");
    }

    #[test]
    fn origins() {
        check_origin(&[], true);
        check_origin(&[("host", "a.example:8080")], true);
        check_origin(&[("host", "a.example:8080"), ("origin", "http://a.example:8080")], true);
        check_origin(&[("host", "a.example:8080"), ("origin", "https://A.example:8080")], true);
        check_origin(&[("host", "a.example:8080"), ("origin", "http://evil.example")], false);
        check_origin(&[("host", "a.example:8080"), ("origin", "null")], true);
        check_origin(&[("host", "a.example"), ("referer", "http://a.example/x?y")], true);
        check_origin(&[("host", "a.example"), ("referer", "http://evil.example/a.example")], false);
        check_origin(&[("origin", "http://a.example")], false);
        check_origin(&[("sec-fetch-site", "cross-site")], false);
        check_origin(&[("sec-fetch-site", "same-site")], false);
        check_origin(&[("sec-fetch-site", "same-origin")], true);
    }

    #[test]
    fn cookies_and_secrets() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; remediation_session=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("remediation_login=def"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("def"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", ""), "an empty token never matches");
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 64);
    }

    #[test]
    fn ages() {
        assert_eq!(age(Duration::seconds(30)), "just now");
        assert_eq!(age(Duration::minutes(5)), "5m");
        assert_eq!(age(Duration::minutes(125)), "2h 5m");
        assert_eq!(age(Duration::hours(50)), "2d 2h");
        assert_eq!(ago(Duration::minutes(200)), "3h ago");
        assert_eq!(ago(Duration::hours(50)), "2d ago");
        assert_eq!(short_secs(90.0), "2m");
        assert_eq!(short_secs(5_400.0), "1.5h");
        assert_eq!(percent(Some(0.5)), "50%");
        assert_eq!(percent(None), "-");
        assert_eq!(window(86_400), "1d");
        assert_eq!(window(7_200), "2h");
        assert_eq!(window(90), "90s");
    }
}
