//! A stateful fake SCIM 2.0 service provider (RFC 7643, RFC 7644) under `/scim/v2`:
//! `/ServiceProviderConfig`, `/Users` and `/Groups` with GET (filtered, paged listings),
//! and PATCH (PatchOp `replace active`, `add members`, `remove members[value eq "..."]`).
//!
//! - Versions: every resource has a counter version, sent as `ETag: W/"<n>"` and
//!   `meta.version`; a PATCH whose `If-Match` names another version gets 412.
//! - Tokens: static bearer tokens, [`WRITE_TOKEN`] (read and write) and [`READ_TOKEN`]
//!   (read only: writes get 403), accepted through the shared [`Faults`] switchboard.
//! - Wire: SCIM error bodies (`status` as a string, `scimType`, `detail`), `x-request-id` on
//!   every answer, `startIndex` (1-based) / `count` / `totalResults` paging with pages of at
//!   most [`Directory::max_page`], and 429 with `Retry-After` when throttled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Caller, FakeServer, Faults, Provider, RequestLog, json_response};

/// The token that may read and write.
pub const WRITE_TOKEN: &str = "fake-scim-write-token-7f3a9c";
/// The token that may only read.
pub const READ_TOKEN: &str = "fake-scim-read-token-2b81e4";
/// User bjensen (RFC 7643's example id).
pub const BJENSEN: &str = "2819c223-7f76-453a-919d-413861904646";
/// User jsmith.
pub const JSMITH: &str = "902c246b-6245-4190-8e05-00816be7344a";
/// A break-glass user.
pub const BREAK_GLASS: &str = "b4ea0000-5c13-4000-8000-00000000b4ea";
/// Group "Tour Guides" (RFC 7643's example id), with bjensen and jsmith.
pub const TOUR_GUIDES: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

const SCIM_JSON: &str = "application/scim+json";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A user resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `userName`.
    pub user_name: String,
    /// `active`.
    pub active: bool,
    /// Version counter.
    pub version: u64,
    /// `emails` values: contact addresses, never matched by a `userName` filter.
    pub emails: Vec<String>,
}

/// A group resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// `displayName`.
    pub display_name: String,
    /// Member user ids, in order.
    pub members: Vec<String>,
    /// The `type` each member was added with (`"User"` for [`Directory::add_group`]'s), as
    /// the service returns it; a member added without one has none.
    pub member_types: BTreeMap<String, String>,
    /// Version counter.
    pub version: u64,
}

/// The fake service's state.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Users by id.
    pub users: BTreeMap<String, User>,
    /// Groups by id, listed in insertion order of their ids' sort.
    pub groups: BTreeMap<String, Group>,
    /// The largest page served, whatever `count` asks.
    pub max_page: usize,
    /// Whether `/ServiceProviderConfig` says PATCH is supported.
    pub patch_supported: bool,
    /// Whether `GET /Groups` accepts a filter on members (many services do not: they answer
    /// 400 `invalidFilter`).
    pub member_filter: bool,
    /// The next PATCH finds its resource changed by another client since it was read (its
    /// version moves on before `If-Match` is checked).
    pub concurrent_change: bool,
}

impl Directory {
    /// Adds an active user at version 1.
    pub fn add_user(&mut self, id: &str, user_name: &str) {
        self.users.insert(
            id.to_owned(),
            User { user_name: user_name.to_owned(), active: true, version: 1, emails: Vec::new() },
        );
    }

    /// Adds a group with `members` at version 1.
    pub fn add_group(&mut self, id: &str, display_name: &str, members: &[&str]) {
        self.groups.insert(
            id.to_owned(),
            Group {
                display_name: display_name.to_owned(),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                member_types: members.iter().map(|m| ((*m).to_owned(), "User".to_owned())).collect(),
                version: 1,
            },
        );
    }
}

/// The example directory: bjensen, jsmith and a break-glass user; group Tour Guides with
/// bjensen and jsmith; pages of at most 50.
pub fn sample_directory() -> Directory {
    let mut d = Directory { max_page: 50, patch_supported: true, member_filter: true, ..Directory::default() };
    d.add_user(BJENSEN, "bjensen@example.com");
    d.add_user(JSMITH, "jsmith@example.com");
    d.add_user(BREAK_GLASS, "breakglass@example.com");
    d.add_group(TOUR_GUIDES, "Tour Guides", &[BJENSEN, JSMITH]);
    d
}

/// The fake SCIM server.
pub struct ScimFake {
    server: FakeServer,
    directory: Arc<Mutex<Directory>>,
}

impl std::fmt::Debug for ScimFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimFake").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Shared {
    directory: Arc<Mutex<Directory>>,
    base: Arc<Mutex<String>>,
}

impl Shared {
    fn dir(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

struct Scim;

impl Provider for Scim {
    fn throttled(&self) -> Response {
        scim_error(StatusCode::TOO_MANY_REQUESTS, None, "Too many requests", &[("retry-after", "3".into())])
    }

    fn server_error(&self, status: StatusCode) -> Response {
        scim_error(status, None, "The service is temporarily unavailable", &[])
    }

    fn unauthorized(&self) -> Response {
        scim_error(
            StatusCode::UNAUTHORIZED,
            None,
            "Authorization failure. The authorization header is invalid or missing.",
            &[],
        )
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn scim_json(status: StatusCode, headers: &[(&str, String)], body: &Value) -> Response {
    let mut all = vec![("x-request-id", request_id())];
    all.extend(headers.iter().cloned());
    let mut r = json_response(status, &all, body);
    if let Ok(v) = axum::http::HeaderValue::from_str(SCIM_JSON) {
        r.headers_mut().insert("content-type", v);
    }
    r
}

fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str, headers: &[(&str, String)]) -> Response {
    let mut body = json!({"schemas": [ERROR], "status": status.as_u16().to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim_json(status, headers, &body)
}

fn not_found(kind: &str, id: &str) -> Response {
    scim_error(StatusCode::NOT_FOUND, None, &format!("{kind} {id} not found"), &[])
}

fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

fn user_json(base: &str, id: &str, u: &User) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id,
        "userName": u.user_name,
        "active": u.active,
        "emails": u.emails.iter().map(|e| json!({"value": e, "type": "work"})).collect::<Vec<_>>(),
        "meta": {"resourceType": "User", "version": etag(u.version), "location": format!("{base}/scim/v2/Users/{id}"),
                 "lastModified": "2026-01-01T00:00:00Z"},
    })
}

fn group_json(base: &str, id: &str, g: &Group, with_members: bool) -> Value {
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": id,
        "displayName": g.display_name,
        "meta": {"resourceType": "Group", "version": etag(g.version), "location": format!("{base}/scim/v2/Groups/{id}")},
    });
    if with_members {
        v["members"] = g
            .members
            .iter()
            .map(|m| {
                let mut member = json!({"value": m, "$ref": format!("{base}/scim/v2/Users/{m}")});
                if let Some(t) = g.member_types.get(m) {
                    member["type"] = json!(t);
                }
                member
            })
            .collect();
    }
    v
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Whether `attributes` (if given) asks for `name`.
fn wants(q: &[(String, String)], name: &str) -> bool {
    param(q, "attributes").is_none_or(|a| a.split(',').any(|x| x.trim().eq_ignore_ascii_case(name)))
}

fn write_allowed(caller: Option<&Caller>) -> bool {
    caller.is_some_and(|c| c.0 == WRITE_TOKEN)
}

impl ScimFake {
    /// Starts the fake with `directory`, accepting [`WRITE_TOKEN`] and [`READ_TOKEN`].
    pub async fn start(directory: Directory) -> std::io::Result<Self> {
        let faults = Faults::new();
        faults.allow_token(WRITE_TOKEN);
        faults.allow_token(READ_TOKEN);
        let shared = Shared { directory: Arc::new(Mutex::new(directory)), base: Arc::new(Mutex::new(String::new())) };
        let scim = Router::new()
            .route("/ServiceProviderConfig", get(service_provider_config))
            .route("/Users", get(list_users))
            .route("/Users/{id}", get(get_user).patch(patch_user))
            .route("/Groups", get(list_groups))
            .route("/Groups/{id}", get(get_group).patch(patch_group));
        let router = Router::new().nest("/scim/v2", scim).with_state(shared.clone());
        let server = FakeServer::start_with(router, Scim, faults, RequestLog::new()).await?;
        *shared.base.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = server.base_url().to_owned();
        Ok(Self { server, directory: shared.directory })
    }

    /// `http://127.0.0.1:<port>/scim/v2`: the SCIM base URL.
    pub fn base_url(&self) -> String {
        format!("{}/scim/v2", self.server.base_url())
    }

    /// The shared fault switchboard.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// The request log.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// The directory's state, to read or change.
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn service_provider_config(State(s): State<Shared>) -> Response {
    let patch = s.dir().patch_supported;
    scim_json(
        StatusCode::OK,
        &[],
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": patch},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 200},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": true},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token",
                                       "description": "Authentication scheme using the OAuth Bearer Token Standard"}],
        }),
    )
}

/// A ListResponse page of `items` per `startIndex` (1-based) and `count`.
fn list(s: &Shared, q: &[(String, String)], items: Vec<Value>) -> Response {
    let max = s.dir().max_page.max(1);
    let count = param(q, "count").and_then(|c| c.parse::<usize>().ok()).unwrap_or(max).min(max);
    let start = param(q, "startIndex").and_then(|c| c.parse::<usize>().ok()).unwrap_or(1).max(1);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start - 1).take(count).collect();
    scim_json(
        StatusCode::OK,
        &[],
        &json!({"schemas": [LIST], "totalResults": total, "startIndex": start, "itemsPerPage": page.len(),
                "Resources": page}),
    )
}

/// Parses `<attr> eq "<value>"` and `members[value eq "<value>"]`.
fn parse_filter(filter: &str) -> Option<(String, String)> {
    let f = filter.trim();
    if let Some(rest) = f.strip_prefix("members[value eq ") {
        let v = rest.strip_suffix(']')?.trim().trim_matches('"');
        return Some(("members.value".into(), v.to_owned()));
    }
    let (attr, rest) = f.split_once(" eq ")?;
    Some((attr.trim().to_owned(), rest.trim().trim_matches('"').to_owned()))
}

fn invalid_filter(filter: &str) -> Response {
    scim_error(StatusCode::BAD_REQUEST, Some("invalidFilter"), &format!("The filter '{filter}' is not supported"), &[])
}

async fn list_users(State(s): State<Shared>, Query(q): Params) -> Response {
    let filter = match param(&q, "filter") {
        Some(f) => match parse_filter(f) {
            Some(pair) if pair.0 == "userName" => Some(pair.1),
            _ => return invalid_filter(f),
        },
        None => None,
    };
    let base = s.base();
    let items: Vec<Value> = s
        .dir()
        .users
        .iter()
        .filter(|(_, u)| filter.as_deref().is_none_or(|n| u.user_name.eq_ignore_ascii_case(n)))
        .map(|(id, u)| user_json(&base, id, u))
        .collect();
    list(&s, &q, items)
}

async fn get_user(State(s): State<Shared>, Path(id): Path<String>, Query(q): Params) -> Response {
    let base = s.base();
    let Some(u) = s.dir().users.get(&id).cloned() else {
        return not_found("User", &id);
    };
    let mut body = user_json(&base, &id, &u);
    if let Some(obj) = body.as_object_mut() {
        obj.retain(|k, _| k == "id" || k == "schemas" || wants(&q, k));
    }
    scim_json(StatusCode::OK, &[("etag", etag(u.version))], &body)
}

async fn list_groups(State(s): State<Shared>, Query(q): Params) -> Response {
    let filter = match param(&q, "filter") {
        Some(f) => match parse_filter(f) {
            Some(pair) if pair.0 == "members.value" && !s.dir().member_filter => return invalid_filter(f),
            Some(pair) if pair.0 == "members.value" || pair.0 == "displayName" || pair.0 == "id" => Some(pair),
            _ => return invalid_filter(f),
        },
        None => None,
    };
    let base = s.base();
    let with_members = wants(&q, "members");
    let items: Vec<Value> = s
        .dir()
        .groups
        .iter()
        .filter(|(id, g)| match &filter {
            Some((attr, v)) if attr == "members.value" => g.members.contains(v),
            Some((attr, v)) if attr == "displayName" => &g.display_name == v,
            Some((_, v)) => *id == v,
            None => true,
        })
        .map(|(id, g)| group_json(&base, id, g, with_members))
        .collect();
    list(&s, &q, items)
}

async fn get_group(State(s): State<Shared>, Path(id): Path<String>, Query(q): Params) -> Response {
    let base = s.base();
    let Some(g) = s.dir().groups.get(&id).cloned() else {
        return not_found("Group", &id);
    };
    scim_json(StatusCode::OK, &[("etag", etag(g.version))], &group_json(&base, &id, &g, wants(&q, "members")))
}

/// The PatchOp operations in `body`, or the error response.
fn operations(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, Box<Response>> {
    let media = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !(media.starts_with(SCIM_JSON) || media.starts_with("application/json")) {
        let refusal =
            scim_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, "Content-Type must be application/scim+json", &[]);
        return Err(Box::new(refusal));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        Box::new(scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "Request is unparsable", &[]))
    })?;
    let schema_ok = v.get("schemas").and_then(Value::as_array).is_some_and(|s| s.iter().any(|x| x == PATCH_OP));
    let ops = v.get("Operations").and_then(Value::as_array).cloned();
    match ops {
        Some(ops) if schema_ok && !ops.is_empty() => Ok(ops),
        _ => Err(Box::new(scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "Request is not a PatchOp", &[]))),
    }
}

/// Refuses a write without the write token, or whose `If-Match` names another version.
fn precondition(caller: Option<&Caller>, headers: &HeaderMap, version: u64) -> Option<Response> {
    if !write_allowed(caller) {
        return Some(scim_error(StatusCode::FORBIDDEN, None, "The token is not allowed to modify resources", &[]));
    }
    let if_match = headers.get("if-match").and_then(|v| v.to_str().ok())?;
    let matches = if_match.split(',').any(|t| t.trim() == "*" || t.trim() == etag(version));
    (!matches).then(|| {
        scim_error(StatusCode::PRECONDITION_FAILED, None, "Failed to update. Resource changed on the server.", &[])
    })
}

async fn patch_user(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller.map(|c| c.0);
    let base = s.base();
    let mut dir = s.dir();
    let mut concurrent = std::mem::take(&mut dir.concurrent_change);
    let Some(u) = dir.users.get_mut(&id) else {
        return not_found("User", &id);
    };
    if std::mem::take(&mut concurrent) {
        u.version += 1;
    }
    if let Some(refused) = precondition(caller.as_ref(), &headers, u.version) {
        return refused;
    }
    let ops = match operations(&headers, &body) {
        Ok(ops) => ops,
        Err(r) => return *r,
    };
    let mut next = u.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str);
        match (kind.as_str(), path, op.get("value")) {
            ("replace" | "add", Some("active"), Some(Value::Bool(b))) => next.active = *b,
            ("replace" | "add", None, Some(Value::Object(m))) if m.get("active").is_some_and(Value::is_boolean) => {
                next.active = m.get("active").and_then(Value::as_bool).unwrap_or(next.active);
            }
            _ => {
                return scim_error(StatusCode::BAD_REQUEST, Some("invalidPath"), "The operation is not supported", &[]);
            }
        }
    }
    if next != *u {
        next.version += 1;
        *u = next;
    }
    let u = u.clone();
    scim_json(StatusCode::OK, &[("etag", etag(u.version))], &user_json(&base, &id, &u))
}

async fn patch_group(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller.map(|c| c.0);
    let base = s.base();
    let mut dir = s.dir();
    let known: Vec<String> = dir.users.keys().cloned().collect();
    let mut concurrent = std::mem::take(&mut dir.concurrent_change);
    let Some(g) = dir.groups.get_mut(&id) else {
        return not_found("Group", &id);
    };
    if std::mem::take(&mut concurrent) {
        g.version += 1;
    }
    if let Some(refused) = precondition(caller.as_ref(), &headers, g.version) {
        return refused;
    }
    let ops = match operations(&headers, &body) {
        Ok(ops) => ops,
        Err(r) => return *r,
    };
    let mut next = g.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        match kind.as_str() {
            "remove" => {
                let Some(("members.value", user)) = parse_filter(path).as_ref().map(|(a, v)| (a.as_str(), v.clone()))
                else {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidPath"),
                        &format!("Unsupported path {path}"),
                        &[],
                    );
                };
                if !next.members.contains(&user) {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("noTarget"),
                        &format!("No member {user} in group"),
                        &[],
                    );
                }
                next.members.retain(|m| m != &user);
                next.member_types.remove(&user);
            }
            "add" if path == "members" => {
                // The member keeps the `type` it is added with (RFC 7643 section 4.2), or none.
                let values: Vec<(String, Option<String>)> = op
                    .get("value")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| {
                                let value = m.get("value").and_then(Value::as_str)?;
                                Some((value.to_owned(), m.get("type").and_then(Value::as_str).map(str::to_owned)))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for (v, kind) in values {
                    if !known.contains(&v) {
                        return scim_error(
                            StatusCode::BAD_REQUEST,
                            Some("invalidValue"),
                            &format!("User {v} does not exist"),
                            &[],
                        );
                    }
                    if !next.members.contains(&v) {
                        match kind {
                            Some(t) => next.member_types.insert(v.clone(), t),
                            None => next.member_types.remove(&v),
                        };
                        next.members.push(v);
                    }
                }
            }
            _ => {
                return scim_error(StatusCode::BAD_REQUEST, Some("invalidPath"), "The operation is not supported", &[]);
            }
        }
    }
    if next != *g {
        next.version += 1;
        *g = next;
    }
    let g = g.clone();
    scim_json(StatusCode::OK, &[("etag", etag(g.version))], &group_json(&base, &id, &g, true))
}
