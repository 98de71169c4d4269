//! The approval page: server-rendered HTML (no JavaScript) listing the actions waiting for a
//! decision, with their plan diff and timeline, and Approve / Reject forms for approvers.
//!
//! - `GET /` shows a sign-in form taking an API token (`remediate token create`), or, once
//!   signed in, the `pending_approval`, `rollback_requested` and `held` actions. `POST /login` checks the token
//!   with the API's own hashed look-up and starts a session; `POST /logout` ends it.
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
//! - Approve and reject call the JSON API's handlers, so roles, separation of duties and the
//!   engine's rules are the same; the result comes back as a flash after a 303 to `/`.
//! - Templates (`ui/*.html`, askama) escape every value they print.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::RngCore as _;
use remediation_core::store::{SessionIdHash, UiSession};
use remediation_core::{ActionId, Actor, Risk, Role, State, Store, TransitionRecord};
use secrecy::SecretString;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use time::{Duration, OffsetDateTime};

use crate::ApiState;
use crate::auth::{Caller, actor_for_hash};
use crate::error::ApiError;
use crate::extract::{ActionPath, ApiQuery, OptionalJson};
use crate::handlers;
use crate::types::{ActionQuery, ActionView, NoteBody};

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
const STYLE: &str = include_str!("../ui/style.css");

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
}

/// The page's routes, with their own body limit and security headers.
pub(crate) fn router(api: ApiState) -> Router {
    let ui = Ui { api };
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/ui/style.css", get(style))
        .route("/ui/actions/{id}/approve", post(approve))
        .route("/ui/actions/{id}/reject", post(reject))
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
                Ok(Some(Signed { sid, actor, csrf: session.csrf }))
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
            tracing::error!(error = %e, "cannot render the approval page");
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
    tracing::info!(why, "refused an approval-page form post");
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
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response()
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
}

/// The sign-in form with a fresh double-submit token.
fn login_page(ui: &Ui, headers: &HeaderMap, status: StatusCode, flash: Option<Flash>) -> Response {
    let csrf = random_id();
    let mut response = html(status, &LoginPage { flash, csrf: csrf.clone(), ttl_hours: SESSION_TTL.whole_hours() });
    let cookie = ui.set_cookie(headers, LOGIN_COOKIE, Some(&csrf), Duration::hours(1));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// One row of a plan diff.
struct DiffRow {
    path: String,
    before: String,
    after: String,
}

/// One transition of an action.
struct Step {
    at: String,
    from: String,
    to: String,
    actor: String,
    comment: Option<String>,
}

/// One action as the page shows it. Every field is printed escaped.
struct Card {
    id: String,
    state: String,
    kind: String,
    identity: String,
    resource: Option<String>,
    grant_type: String,
    connector: String,
    control: String,
    requester: String,
    reason: String,
    age: String,
    /// Risk level and blast-radius score, as the risk gate scores it.
    risk: String,
    reversibility: String,
    plan: String,
    diff: Vec<DiffRow>,
    timeline: Vec<Step>,
    /// Waiting for approval and the caller may decide.
    decidable: bool,
    /// The caller requested it (and so cannot approve it).
    own: bool,
}

#[derive(Template)]
#[template(path = "actions.html")]
struct ActionsPage {
    flash: Option<Flash>,
    csrf: String,
    name: String,
    role: String,
    can_decide: bool,
    cards: Vec<Card>,
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

fn show_json(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "(absent)".to_owned(), serde_json::Value::to_string)
}

/// `2026-01-02 03:04:05 UTC`.
fn timestamp(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_else(|_| t.to_string())
}

fn step(t: TransitionRecord) -> Step {
    Step {
        at: timestamp(t.at),
        from: t.from.map_or_else(|| "new".to_owned(), |s| s.as_str().to_owned()),
        to: t.to.as_str().to_owned(),
        actor: t.actor,
        comment: t.comment.filter(|c| !c.trim().is_empty()),
    }
}

fn card(view: ActionView, actor: &Actor, now: OffsetDateTime) -> Card {
    let ActionView { detail, transitions } = view;
    let a = detail.action;
    let kind = match serde_json::to_value(&a.kind) {
        Ok(serde_json::Value::Object(mut m)) if m.len() > 1 => {
            m.remove("type");
            format!("{} {}", a.kind.name().as_str(), serde_json::Value::Object(m))
        }
        _ => a.kind.name().as_str().to_owned(),
    };
    let (risk, reversibility, plan, diff) = match &detail.plan {
        Some(p) => (
            {
                let risk = Risk::from_score(remediation_gates::blast_radius(a.kind.name(), p.reversibility));
                format!("{} (blast radius {})", risk.level, risk.score)
            },
            p.reversibility.to_string(),
            p.description.clone(),
            remediation_core::diff::json_diff(&p.before.state, &p.expected_after.state)
                .into_iter()
                .map(|c| DiffRow {
                    path: if c.path.is_empty() { "/".to_owned() } else { c.path },
                    before: show_json(c.left.as_ref()),
                    after: show_json(c.right.as_ref()),
                })
                .collect(),
        ),
        None => ("unknown".to_owned(), "unknown".to_owned(), "No plan recorded.".to_owned(), Vec::new()),
    };
    // For a rollback request, "own" is whoever asked for the rollback: they never approve it.
    let own = if a.state == State::RollbackRequested {
        transitions.iter().rev().find(|t| t.event == "request_rollback").is_some_and(|t| t.actor == actor.name)
    } else {
        a.requested_by == actor.name
    };
    Card {
        id: a.id.to_string(),
        state: a.state.as_str().to_owned(),
        kind,
        identity: a.target.identity,
        resource: a.target.resource,
        grant_type: a.target.grant_type,
        connector: a.connector,
        control: a.control_id.unwrap_or_else(|| "-".to_owned()),
        requester: a.requested_by,
        reason: a.reason,
        age: age(now - a.created_at),
        risk,
        reversibility,
        plan,
        diff,
        timeline: transitions.into_iter().map(step).collect(),
        decidable: matches!(a.state, State::PendingApproval | State::RollbackRequested) && actor.role >= Role::Approver,
        own,
    }
}

/// The actions waiting for a decision, read through the JSON API's handlers (so with its
/// role checks), oldest first.
async fn cards(ui: &Ui, actor: &Actor) -> Result<Vec<Card>, ApiError> {
    let now = ui.now();
    let mut views = Vec::new();
    for state in [State::PendingApproval, State::RollbackRequested, State::Held] {
        let query = ActionQuery { state: Some(state), limit: Some(500), ..ActionQuery::default() };
        let axum::Json(page) =
            handlers::list_actions(AxState(ui.api.clone()), Caller(actor.clone()), ApiQuery(query)).await?;
        for a in page.items {
            let axum::Json(view) =
                handlers::get_action(AxState(ui.api.clone()), Caller(actor.clone()), ActionPath(a.id)).await?;
            views.push(view);
        }
    }
    views.sort_by_key(|v| (v.detail.action.created_at, v.detail.action.id.to_string()));
    Ok(views.into_iter().map(|v| card(v, actor, now)).collect())
}

async fn index(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let signed = match ui.signed_in(&headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return login_page(&ui, &headers, StatusCode::OK, None),
        Err(e) => return error_page(&e),
    };
    let flash = match ui.take_flash(&signed.sid).await {
        Ok(flash) => flash,
        Err(e) => return error_page(&e),
    };
    match cards(&ui, &signed.actor).await {
        Ok(cards) => html(
            StatusCode::OK,
            &ActionsPage {
                flash,
                csrf: signed.csrf,
                name: signed.actor.name.clone(),
                role: signed.actor.role.to_string(),
                can_decide: signed.actor.role >= Role::Approver,
                cards,
            },
        ),
        Err(e) => error_page(&e),
    }
}

/// The sign-in form.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    token: Option<SecretString>,
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
    tracing::info!(actor = %actor.name, role = %actor.role, "signed in to the approval page");
    let mut response = see_other_home();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, ui.set_cookie(&headers, SESSION_COOKIE, Some(&sid), SESSION_TTL));
    h.append(header::SET_COOKIE, ui.set_cookie(&headers, LOGIN_COOKIE, None, Duration::ZERO));
    response
}

/// A form with only the CSRF token, or a decision with its optional note.
#[derive(Deserialize)]
struct PostForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: Option<String>,
}

/// The checks every signed-in form post passes: same origin, a live session, its CSRF token.
async fn check_post(
    ui: &Ui,
    headers: &HeaderMap,
    form: &Result<Form<PostForm>, FormRejection>,
) -> Result<Signed, Box<Response>> {
    if !same_origin(headers) {
        return Err(Box::new(forbidden("the request came from another site")));
    }
    let signed = match ui.signed_in(headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Box::new(forbidden("sign in first: the session is missing or expired"))),
        Err(e) => return Err(Box::new(error_page(&e))),
    };
    match form {
        Ok(Form(f)) if same_secret(&signed.csrf, &f.csrf) => Ok(signed),
        _ => Err(Box::new(forbidden("the form's CSRF token is missing or wrong; reload the page and try again"))),
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
}

/// Approve or reject.
#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Reject,
}

async fn approve(
    AxState(ui): AxState<Ui>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
) -> Response {
    decide(ui, id, headers, form, Decision::Approve).await
}

async fn reject(
    AxState(ui): AxState<Ui>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
) -> Response {
    decide(ui, id, headers, form, Decision::Reject).await
}

/// Runs the JSON API's approve or reject handler for the signed-in caller and flashes what
/// came of it.
async fn decide(
    ui: Ui,
    id: String,
    headers: HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
    decision: Decision,
) -> Response {
    let signed = match check_post(&ui, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let note = form.ok().and_then(|Form(f)| f.note).filter(|n| !n.trim().is_empty());
    let flash = match id.parse::<ActionId>() {
        Err(_) => Flash::error(format!("{id} is not an action id")),
        Ok(id) => {
            let (state, caller, path, body) = (
                AxState(ui.api.clone()),
                Caller(signed.actor.clone()),
                ActionPath(id),
                OptionalJson(NoteBody { note }),
            );
            let result = match decision {
                Decision::Approve => handlers::approve(state, caller, path, body).await,
                Decision::Reject => handlers::reject(state, caller, path, body).await,
            };
            match result {
                Ok(axum::Json(crate::types::ActionReply { action })) => {
                    let verb = match decision {
                        Decision::Approve => "Approved",
                        Decision::Reject => "Rejected",
                    };
                    Flash::ok(format!("{verb} action {id}; it is now {}.", action.state.as_str()))
                }
                Err(e) => Flash::error(e.message),
            }
        }
    };
    match ui.set_flash(&signed.sid, flash).await {
        Ok(()) => see_other_home(),
        Err(e) => error_page(&e),
    }
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
    }
}
