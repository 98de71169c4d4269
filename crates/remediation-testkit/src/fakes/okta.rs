//! A stateful fake Okta org: users with lifecycle states, groups, app assignments, a System
//! Log of session events, `Link` pagination, Okta's error bodies (`errorCode`,
//! `errorSummary`, `errorId`), `X-Rate-Limit-*` and `X-Okta-Request-Id` headers, API tokens
//! (`SSWS`) and a `/oauth2/v1/token` endpoint that verifies `private_key_jwt` assertions.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Form, Json, Router};
use serde_json::{Value, json};

use super::{Caller, FakeServer, Faults, Provider, RequestLog, empty_response, json_response};

/// The RSA public key that verifies client assertions signed with
/// [`super::TEST_RSA_PRIVATE_KEY`].
const PUBLIC_KEY: &str = super::TEST_RSA_PUBLIC_KEY;

/// A user in the fake org.
#[derive(Debug, Clone)]
struct User {
    login: String,
    status: String,
    /// `profile.email`, which the user may change; the login when unset.
    email: Option<String>,
}

#[derive(Debug, Clone)]
struct Group {
    kind: String,
    members: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Event {
    event_type: String,
    actor: String,
    target: Option<String>,
    seq: u64,
}

#[derive(Debug, Default)]
struct Org {
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    apps: BTreeMap<String, BTreeMap<String, Value>>,
    events: Vec<Event>,
    read_only: HashSet<String>,
    max_page: Option<usize>,
    client_id: Option<String>,
    seq: u64,
}

/// The fake org's state, shared by its handlers and the test that seeds it.
#[derive(Debug, Clone, Default)]
pub struct OktaOrg {
    org: Arc<Mutex<Org>>,
    faults: Faults,
    requests: Arc<AtomicU64>,
}

/// A running fake Okta org.
#[derive(Debug)]
pub struct FakeOkta {
    server: FakeServer,
    org: OktaOrg,
}

impl FakeOkta {
    /// Starts an empty org on `127.0.0.1`.
    pub async fn start() -> std::io::Result<Self> {
        let org = OktaOrg::default();
        let log = RequestLog::new();
        let server = FakeServer::start_with(router(org.clone()), OktaProvider, org.faults.clone(), log).await?;
        Ok(Self { server, org })
    }

    /// `http://127.0.0.1:<port>`: the org URL (the API is under `/api/v1`).
    pub fn org_url(&self) -> &str {
        self.server.base_url()
    }

    /// The fault switchboard.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// The request log.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// The org's state.
    pub fn org(&self) -> &OktaOrg {
        &self.org
    }
}

impl OktaOrg {
    fn lock(&self) -> MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Accepts `token` as an API token with full rights.
    pub fn add_api_token(&self, token: &str) {
        self.faults.allow_token(token);
    }

    /// Accepts `token` as an API token of a read-only admin: writes get 403 E0000006.
    pub fn add_read_only_token(&self, token: &str) {
        self.faults.allow_token(token);
        self.lock().read_only.insert(token.to_owned());
    }

    /// Registers a service app whose client assertions are signed with the test RSA key.
    pub fn add_service_app(&self, client_id: &str) {
        self.lock().client_id = Some(client_id.to_owned());
    }

    /// Adds a user with `status` (`ACTIVE`, `SUSPENDED`, ...).
    pub fn add_user(&self, id: &str, status: &str) {
        self.lock()
            .users
            .insert(id.to_owned(), User { login: format!("{id}@example.com"), status: status.to_owned(), email: None });
    }

    /// Changes the login of user `id` (by default `{id}@example.com`).
    pub fn set_login(&self, id: &str, login: &str) {
        if let Some(u) = self.lock().users.get_mut(id) {
            u.login = login.to_owned();
        }
    }

    /// Sets the `profile.email` of user `id` (by default its login): a field the user may
    /// change themselves, which Okta does not resolve in `GET /users/{idOrLogin}`.
    pub fn set_email(&self, id: &str, email: &str) {
        if let Some(u) = self.lock().users.get_mut(id) {
            u.email = Some(email.to_owned());
        }
    }

    /// Adds an `OKTA_GROUP` (or another `kind`, such as `APP_GROUP`).
    pub fn add_group(&self, id: &str, kind: &str) {
        self.lock().groups.insert(id.to_owned(), Group { kind: kind.to_owned(), members: BTreeSet::new() });
    }

    /// Makes `user` a member of `group`.
    pub fn add_member(&self, group: &str, user: &str) {
        if let Some(g) = self.lock().groups.get_mut(group) {
            g.members.insert(user.to_owned());
        }
    }

    /// Adds an app.
    pub fn add_app(&self, id: &str) {
        self.lock().apps.entry(id.to_owned()).or_default();
    }

    /// Assigns `user` to `app` directly, with an app `profile` and a credential user name.
    pub fn assign(&self, app: &str, user: &str, profile: Value) {
        let app_user = app_user(user, "USER", profile, Some(&format!("{user}@example.com")));
        self.lock().apps.entry(app.to_owned()).or_default().insert(user.to_owned(), app_user);
    }

    /// Records that `user` signed in (a `user.session.start` event).
    pub fn sign_in(&self, user: &str) {
        push_event(&mut self.lock(), "user.session.start", user, None);
    }

    /// Caps every listing page at `n` items, whatever `limit` asks (listUserGroups, which takes
    /// no `limit`, pages at `n` too).
    pub fn set_max_page_size(&self, n: usize) {
        self.lock().max_page = Some(n);
    }

    /// The user's status.
    pub fn status(&self, user: &str) -> Option<String> {
        self.lock().users.get(user).map(|u| u.status.clone())
    }

    /// Whether `group` exists.
    pub fn group_exists(&self, group: &str) -> bool {
        self.lock().groups.contains_key(group)
    }

    /// Whether `user` is in `group`.
    pub fn is_member(&self, group: &str, user: &str) -> bool {
        self.lock().groups.get(group).is_some_and(|g| g.members.contains(user))
    }

    /// The app user of `user` in `app`, if assigned.
    pub fn assignment(&self, app: &str, user: &str) -> Option<Value> {
        self.lock().apps.get(app).and_then(|a| a.get(user).cloned())
    }
}

fn push_event(org: &mut Org, event_type: &str, actor: &str, target: Option<&str>) {
    org.seq += 1;
    let seq = org.seq;
    org.events.push(Event {
        event_type: event_type.to_owned(),
        actor: actor.to_owned(),
        target: target.map(str::to_owned),
        seq,
    });
}

fn app_user(user: &str, scope: &str, profile: Value, user_name: Option<&str>) -> Value {
    let mut v = json!({
        "id": user,
        "scope": scope,
        "status": "PROVISIONED",
        "syncState": "DISABLED",
        "profile": profile,
        "_links": {"user": {"href": format!("/api/v1/users/{user}")}},
    });
    if let Some(n) = user_name {
        v["credentials"] = json!({"userName": n});
    }
    v
}

/// Okta's error body.
fn okta_error(status: StatusCode, code: &str, summary: &str, causes: &[&str]) -> Response {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", uuid::Uuid::new_v4().simple()),
        "errorCauses": causes,
    });
    json_response(status, &[], &body)
}

fn not_found(what: &str, kind: &str) -> Response {
    okta_error(StatusCode::NOT_FOUND, "E0000007", &format!("Not found: Resource not found: {what} ({kind})"), &[])
}

fn forbidden() -> Response {
    okta_error(StatusCode::FORBIDDEN, "E0000006", "You do not have permission to perform the requested action", &[])
}

fn http_date(t: std::time::SystemTime) -> String {
    httpdate_fmt(t)
}

/// An HTTP date without another dependency: RFC 7231 IMF-fixdate.
fn httpdate_fmt(t: std::time::SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    dt.format(&fmt).unwrap_or_default()
}

/// How the fake Okta answers injected faults.
#[derive(Debug, Clone, Copy)]
pub struct OktaProvider;

/// Okta's 429: `E0000047` with `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining: 0` and
/// `X-Rate-Limit-Reset` (the Unix second the budget refills), beside `Date`.
fn rate_limit_exceeded(limit: u32, reset: i64) -> Response {
    let mut r = okta_error(
        StatusCode::TOO_MANY_REQUESTS,
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
        &[],
    );
    for (k, v) in [
        ("date", http_date(std::time::SystemTime::now())),
        ("x-rate-limit-limit", limit.to_string()),
        ("x-rate-limit-remaining", "0".to_owned()),
        ("x-rate-limit-reset", reset.to_string()),
    ] {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

impl Provider for OktaProvider {
    fn throttled(&self) -> Response {
        let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 3;
        rate_limit_exceeded(600, reset)
    }

    fn rate_limited(&self, limit: u32, reset: std::time::SystemTime) -> Response {
        rate_limit_exceeded(limit, time::OffsetDateTime::from(reset).unix_timestamp())
    }

    fn server_error(&self, status: StatusCode) -> Response {
        okta_error(status, "E0000009", "Internal Server Error", &[])
    }

    fn unauthorized(&self) -> Response {
        okta_error(StatusCode::UNAUTHORIZED, "E0000011", "Invalid token provided", &[])
    }

    fn is_public(&self, path: &str) -> bool {
        path == "/oauth2/v1/token"
    }
}

type Q = Query<BTreeMap<String, String>>;

fn router(org: OktaOrg) -> Router {
    Router::new()
        .route("/oauth2/v1/token", post(token))
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/users/{user}", get(get_user))
        .route("/api/v1/users/{user}/groups", get(user_groups))
        .route("/api/v1/users/{user}/roles", get(user_roles))
        .route("/api/v1/users/{user}/lifecycle/{op}", post(lifecycle))
        .route("/api/v1/users/{user}/sessions", delete(clear_sessions))
        .route("/api/v1/groups", get(list_groups))
        // Okta's deleteGroup; the trailing-slash form is what a member path reaches once an
        // identifier of `..` is normalised away, so tests can tell that it was not sent.
        .route("/api/v1/groups/{group}", delete(delete_group))
        .route("/api/v1/groups/{group}/", delete(delete_group))
        .route("/api/v1/groups/{group}/users/{user}", delete(remove_member).put(add_member))
        .route("/api/v1/apps", get(list_apps))
        .route("/api/v1/apps/{app}/users", post(assign_user))
        .route("/api/v1/apps/{app}/users/{user}", get(get_app_user).delete(unassign_user))
        .route("/api/v1/logs", get(logs))
        .layer(axum::middleware::from_fn_with_state(org.clone(), okta_headers))
        .with_state(org)
}

/// Adds `X-Okta-Request-Id`, `Date` and `X-Rate-Limit-*` to every answer, and refuses
/// writes by read-only tokens.
async fn okta_headers(
    State(org): State<OktaOrg>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let write = request.method() != Method::GET && request.uri().path().starts_with("/api/");
    let read_only = request.extensions().get::<Caller>().is_some_and(|c| org.lock().read_only.contains(&c.0));
    let mut response = if write && read_only { forbidden() } else { next.run(request).await };
    let n = org.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let now = std::time::SystemTime::now();
    let reset = time::OffsetDateTime::from(now).unix_timestamp() + 60;
    let h = response.headers_mut();
    for (k, v) in [
        ("x-okta-request-id", format!("fake-okta-{n}")),
        ("x-rate-limit-limit", "600".to_owned()),
        ("x-rate-limit-remaining", "599".to_owned()),
        ("x-rate-limit-reset", reset.to_string()),
        ("date", http_date(now)),
    ] {
        if let (false, Ok(v)) = (h.contains_key(k), v.parse()) {
            h.insert(k, v);
        }
    }
    response
}

async fn token(State(org): State<OktaOrg>, Form(form): Form<BTreeMap<String, String>>) -> Response {
    let invalid = |desc: &str| {
        json_response(StatusCode::UNAUTHORIZED, &[], &json!({"error": "invalid_client", "error_description": desc}))
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &[],
            &json!({"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported."}),
        );
    }
    let Some(client_id) = org.lock().client_id.clone() else { return invalid("No service app is registered.") };
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return invalid("client_assertion_type is required.");
    }
    let Some(assertion) = form.get("client_assertion") else { return invalid("client_assertion is required.") };
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()) else {
        return invalid("The fake has no public key.");
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[client_id.as_str()]);
    validation.set_audience(&["/oauth2/v1/token"]);
    validation.validate_aud = false;
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(d) => d.claims,
        Err(e) => return invalid(&format!("The client_assertion signature is invalid: {e}")),
    };
    let aud_ok = claims["aud"].as_str().is_some_and(|a| a.ends_with("/oauth2/v1/token"));
    if claims["sub"] != client_id.as_str() || !aud_ok || claims["jti"].as_str().is_none_or(str::is_empty) {
        return invalid("The client_assertion claims are invalid.");
    }
    let access = org.faults.issue_token();
    json_response(
        StatusCode::OK,
        &[],
        &json!({"token_type": "Bearer", "expires_in": 3600, "access_token": access, "scope": form.get("scope").cloned().unwrap_or_default()}),
    )
}

fn user_json(id: &str, u: &User) -> Value {
    json!({
        "id": id,
        "status": u.status,
        "profile": {"login": u.login, "email": u.email.as_deref().unwrap_or(&u.login)},
        "_links": {"self": {"href": format!("/api/v1/users/{id}")}},
    })
}

/// Resolves an id, a login (any case) or a login shortname, as only `GET /users/{idOrLogin}`
/// does at Okta.
fn resolve_user<'a>(org: &'a Org, key: &str) -> Option<(&'a String, &'a User)> {
    org.users.get_key_value(key).or_else(|| {
        org.users.iter().find(|(_, u)| {
            u.login.eq_ignore_ascii_case(key)
                || u.login.split_once('@').is_some_and(|(short, _)| short.eq_ignore_ascii_case(key))
        })
    })
}

/// A user by id: the sessions, lifecycle, group and app paths document the id and answer
/// 404 for a login.
fn find_user<'a>(org: &'a Org, key: &str) -> Option<(&'a String, &'a User)> {
    org.users.get_key_value(key)
}

async fn list_users(State(org): State<OktaOrg>) -> Response {
    let o = org.lock();
    let users: Vec<Value> = o.users.iter().take(1).map(|(id, u)| user_json(id, u)).collect();
    json_response(StatusCode::OK, &[], &Value::Array(users))
}

async fn list_groups(State(org): State<OktaOrg>) -> Response {
    let o = org.lock();
    let groups: Vec<Value> = o.groups.iter().take(1).map(|(id, g)| json!({"id": id, "type": g.kind})).collect();
    json_response(StatusCode::OK, &[], &Value::Array(groups))
}

async fn list_apps(State(org): State<OktaOrg>) -> Response {
    let o = org.lock();
    let apps: Vec<Value> = o.apps.keys().take(1).map(|id| json!({"id": id, "status": "ACTIVE"})).collect();
    json_response(StatusCode::OK, &[], &Value::Array(apps))
}

/// The admin user an API token acts as.
const ADMIN: &str = "00uadmin";

async fn get_user(State(org): State<OktaOrg>, Path(user): Path<String>, caller: Option<Extension<Caller>>) -> Response {
    if user == "me" {
        let read_only = caller.is_some_and(|c| org.lock().read_only.contains(&c.0.0));
        let login = if read_only { "auditor@example.com" } else { "admin@example.com" };
        let id = if read_only { format!("{ADMIN}-ro") } else { ADMIN.to_owned() };
        return json_response(
            StatusCode::OK,
            &[],
            &user_json(&id, &User { login: login.to_owned(), status: "ACTIVE".to_owned(), email: None }),
        );
    }
    let o = org.lock();
    match resolve_user(&o, &user) {
        Some((id, u)) => json_response(StatusCode::OK, &[], &user_json(id, u)),
        None => not_found(&user, "User"),
    }
}

async fn user_groups(
    State(org): State<OktaOrg>,
    Path(user): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let o = org.lock();
    // Okta's management API description (listUserGroups in okta-management-openapi-spec
    // `dist/current/management-minimal.yaml`) defines no query parameters for this call, so a
    // client sending `limit` relies on something undocumented: refuse it as a validation error.
    if q.contains_key("limit") {
        return okta_error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: limit",
            &["limit: listUserGroups takes no query parameters"],
        );
    }
    let Some((id, _)) = find_user(&o, &user) else { return not_found(&user, "User") };
    // The org pages the answer on its own terms (set_max_page_size), following with `after`.
    let limit = o.max_page.unwrap_or(10_000).max(1);
    let after = q.get("after");
    let groups: Vec<(&String, &Group)> = o
        .groups
        .iter()
        .filter(|(_, g)| g.members.contains(id))
        .filter(|(gid, _)| after.is_none_or(|a| gid.as_str() > a.as_str()))
        .collect();
    let page: Vec<Value> = groups
        .iter()
        .take(limit)
        .map(|(gid, g)| json!({"id": gid, "type": g.kind, "profile": {"name": gid}}))
        .collect();
    let mut links = Vec::new();
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("http://{host}/api/v1/users/{user}/groups");
    links.push(format!("<{base}>; rel=\"self\""));
    if let (true, Some((last, _))) = (groups.len() > limit, groups.get(limit - 1)) {
        links.push(format!("<{base}?after={last}>; rel=\"next\""));
    }
    let mut r = json_response(StatusCode::OK, &[], &Value::Array(page));
    for l in links {
        if let Ok(v) = l.parse() {
            r.headers_mut().append("link", v);
        }
    }
    r
}

async fn user_roles(Path(user): Path<String>) -> Response {
    let role = match user.as_str() {
        ADMIN => "SUPER_ADMIN",
        u if u == format!("{ADMIN}-ro") => "READ_ONLY_ADMIN",
        _ => return json_response(StatusCode::OK, &[], &json!([])),
    };
    json_response(
        StatusCode::OK,
        &[],
        &json!([{"id": format!("ra-{role}"), "label": role, "type": role, "status": "ACTIVE", "assignmentType": "USER"}]),
    )
}

async fn lifecycle(State(org): State<OktaOrg>, Path((user, op)): Path<(String, String)>) -> Response {
    let mut o = org.lock();
    let Some(id) = find_user(&o, &user).map(|(id, _)| id.clone()) else { return not_found(&user, "User") };
    let Some(u) = o.users.get_mut(&id) else { return not_found(&user, "User") };
    let invalid =
        |summary: &str| okta_error(StatusCode::BAD_REQUEST, "E0000001", "Api validation failed: user", &[summary]);
    match op.as_str() {
        "suspend" if u.status == "ACTIVE" => u.status = "SUSPENDED".to_owned(),
        "suspend" => return invalid("Cannot suspend a user that is not active"),
        "unsuspend" if u.status == "SUSPENDED" => u.status = "ACTIVE".to_owned(),
        "unsuspend" => return invalid("Cannot unsuspend a user that is not suspended"),
        "expire_password" if matches!(u.status.as_str(), "ACTIVE" | "PASSWORD_EXPIRED") => {
            u.status = "PASSWORD_EXPIRED".to_owned();
            let u = u.clone();
            return json_response(StatusCode::OK, &[], &user_json(&id, &u));
        }
        "expire_password" => {
            return okta_error(
                StatusCode::FORBIDDEN,
                "E0000038",
                "This operation is not allowed in the user's current status.",
                &[],
            );
        }
        _ => return not_found(&op, "Lifecycle operation"),
    }
    json_response(StatusCode::OK, &[], &json!({}))
}

async fn clear_sessions(State(org): State<OktaOrg>, Path(user): Path<String>) -> Response {
    let mut o = org.lock();
    let Some(id) = find_user(&o, &user).map(|(id, _)| id.clone()) else { return not_found(&user, "User") };
    push_event(&mut o, "user.session.clear", "admin", Some(&id));
    empty_response(StatusCode::NO_CONTENT, &[])
}

async fn delete_group(State(org): State<OktaOrg>, Path(group): Path<String>) -> Response {
    match org.lock().groups.remove(&group) {
        Some(_) => empty_response(StatusCode::NO_CONTENT, &[]),
        None => not_found(&group, "UserGroup"),
    }
}

async fn remove_member(State(org): State<OktaOrg>, Path((group, user)): Path<(String, String)>) -> Response {
    let mut o = org.lock();
    let Some(id) = find_user(&o, &user).map(|(id, _)| id.clone()) else { return not_found(&user, "User") };
    let Some(g) = o.groups.get_mut(&group) else { return not_found(&group, "UserGroup") };
    if g.kind != "OKTA_GROUP" {
        return okta_error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
            &[],
        );
    }
    g.members.remove(&id);
    empty_response(StatusCode::NO_CONTENT, &[])
}

async fn add_member(State(org): State<OktaOrg>, Path((group, user)): Path<(String, String)>) -> Response {
    let mut o = org.lock();
    let Some(id) = find_user(&o, &user).map(|(id, _)| id.clone()) else { return not_found(&user, "User") };
    let Some(g) = o.groups.get_mut(&group) else { return not_found(&group, "UserGroup") };
    g.members.insert(id);
    empty_response(StatusCode::NO_CONTENT, &[])
}

async fn get_app_user(State(org): State<OktaOrg>, Path((app, user)): Path<(String, String)>) -> Response {
    let o = org.lock();
    let Some(a) = o.apps.get(&app) else { return not_found(&app, "Application") };
    let id = find_user(&o, &user).map_or(user.clone(), |(id, _)| id.clone());
    match a.get(&id) {
        Some(v) => json_response(StatusCode::OK, &[], v),
        None => not_found(&user, "AppUser"),
    }
}

async fn unassign_user(State(org): State<OktaOrg>, Path((app, user)): Path<(String, String)>, Query(q): Q) -> Response {
    let mut o = org.lock();
    let id = find_user(&o, &user).map_or(user.clone(), |(id, _)| id.clone());
    let Some(a) = o.apps.get_mut(&app) else { return not_found(&app, "Application") };
    if q.get("sendEmail").map(String::as_str) != Some("false") {
        // Real Okta would e-mail the user; the fake refuses so tests notice a missing flag.
        return okta_error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: sendEmail",
            &["tests must send sendEmail=false"],
        );
    }
    match a.remove(&id) {
        Some(_) => empty_response(StatusCode::NO_CONTENT, &[]),
        None => not_found(&user, "AppUser"),
    }
}

async fn assign_user(State(org): State<OktaOrg>, Path(app): Path<String>, Json(body): Json<Value>) -> Response {
    let mut o = org.lock();
    let Some(user) = body["id"].as_str().map(str::to_owned) else {
        return okta_error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: id",
            &["id: The field cannot be left blank"],
        );
    };
    if find_user(&o, &user).is_none() {
        return not_found(&user, "User");
    }
    let Some(a) = o.apps.get_mut(&app) else { return not_found(&app, "Application") };
    let scope = body["scope"].as_str().unwrap_or("USER").to_owned();
    let profile = body.get("profile").cloned().unwrap_or_else(|| json!({}));
    let user_name = body.pointer("/credentials/userName").and_then(Value::as_str).map(str::to_owned);
    let v = app_user(&user, &scope, profile, user_name.as_deref());
    a.insert(user, v.clone());
    json_response(StatusCode::OK, &[], &v)
}

/// `GET /logs`: understands filters naming event types with `actor.id` / `target.id`
/// equalities, `sortOrder` and `limit`.
async fn logs(State(org): State<OktaOrg>, Query(q): Q) -> Response {
    let o = org.lock();
    let filter = q.get("filter").cloned().unwrap_or_default();
    let clauses: Vec<(String, String, String)> = filter
        .split(" or ")
        .filter_map(|c| {
            let c = c.trim().trim_start_matches('(').trim_end_matches(')');
            let quoted: Vec<&str> = c.split('"').skip(1).step_by(2).collect();
            let field = if c.contains("target.id") { "target" } else { "actor" };
            Some((quoted.first()?.to_string(), field.to_owned(), quoted.get(1)?.to_string()))
        })
        .collect();
    let mut events: Vec<&Event> = o
        .events
        .iter()
        .filter(|e| {
            clauses.is_empty()
                || clauses.iter().any(|(t, field, id)| {
                    e.event_type == *t
                        && match field.as_str() {
                            "target" => e.target.as_deref() == Some(id.as_str()),
                            _ => e.actor == *id,
                        }
                })
        })
        .collect();
    if q.get("sortOrder").map(String::as_str) == Some("DESCENDING") {
        events.sort_by_key(|e| std::cmp::Reverse(e.seq));
    }
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100);
    let out: Vec<Value> = events
        .into_iter()
        .take(limit)
        .map(|e| {
            let target: Vec<Value> = e.target.iter().map(|t| json!({"id": t, "type": "User"})).collect();
            json!({"uuid": format!("evt-{}", e.seq), "eventType": e.event_type, "actor": {"id": e.actor, "type": "User"}, "target": target})
        })
        .collect();
    json_response(StatusCode::OK, &[], &Value::Array(out))
}
