//! A stateful fake of Microsoft Entra ID: the Microsoft Graph v1.0 routes the Entra connector
//! uses (under `/v1.0`) and the identity platform's token endpoint
//! (`/{tenant}/oauth2/v2.0/token`), on one loopback server.
//!
//! - Tokens: client credentials with a client secret or a certificate client assertion (RS256,
//!   `x5t` = the certificate's SHA-1 thumbprint, `aud` = the token URL, `iss` = `sub` = the
//!   client id, signature checked with the client's public key). Access tokens are JWTs whose
//!   `roles` claim lists the client's application permissions; each Graph write checks them
//!   and answers 403 `Authorization_RequestDenied` without.
//! - State: users (with `accountEnabled`, `signInSessionsValidFromDateTime`,
//!   `onPremisesSyncEnabled`, `otherMails`; `memberOf` lists their groups and roles), groups (with `groupTypes`; dynamic groups refuse member edits),
//!   directory role assignments and app role assignments. Writes change it, so a read after
//!   an action shows the change; re-created assignments get new ids.
//! - Wire: Graph's status codes and error bodies (`{"error": {"code", "message",
//!   "innerError": {"request-id", "date"}}}`), a `request-id` header on every answer,
//!   `@odata.nextLink` paging with `$top` capped at [`Tenant::max_page`], and 429 with
//!   `Retry-After` when throttled through the shared [`Faults`].
//!
//! `keys/entra-cert-private.pem` (with `entra-cert.pem`, thumbprint [`CERT_THUMBPRINT`]) is a
//! self-signed test certificate that protects nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Caller, FakeServer, Faults, Provider, RequestLog, empty_response, json_response, url_pairs};

/// The tenant id the fake serves.
pub const TENANT: &str = "11111111-2222-4333-8444-555555555555";
/// The client id with every write permission (and a client secret and a certificate).
pub const CLIENT_ID: &str = "c11e0000-0000-4000-8000-00000000c1d0";
/// The client id that may only read.
pub const READER_ID: &str = "c11e0000-0000-4000-8000-0000000000ead";
/// The SHA-1 thumbprint of `keys/entra-cert.pem`.
pub const CERT_THUMBPRINT: &str = "491E3F3E47D82A0378CD57AE1AF6D47A28BFAB37";
/// The test certificate's private key (PKCS#8 PEM).
pub const CERT_PRIVATE_KEY: &str = include_str!("../../keys/entra-cert-private.pem");
const CERT_PUBLIC_KEY: &str = include_str!("../../keys/entra-cert-public.pem");

/// Every application permission the Entra connector needs (its reads and its writes).
pub const WRITE_ROLES: &[&str] = &[
    "User.Read.All",
    "Directory.Read.All",
    "User.EnableDisableAccount.All",
    "User.RevokeSessions.All",
    "GroupMember.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
];

/// Read-only application permissions.
pub const READ_ROLES: &[&str] = &["User.Read.All", "GroupMember.Read.All", "Directory.Read.All"];

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Object id.
    pub id: String,
    /// Sign-in name.
    pub user_principal_name: String,
    /// Whether sign-in is allowed.
    pub account_enabled: bool,
    /// Sessions issued before this time are invalid (RFC 3339).
    pub sessions_valid_from: OffsetDateTime,
    /// Synchronised from on-premises AD.
    pub on_premises_sync_enabled: bool,
    /// `otherMails`: addresses the user may add themselves, never a sign-in name.
    pub other_mails: Vec<String>,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Display name.
    pub display_name: String,
    /// `Unified`, `DynamicMembership`.
    pub group_types: Vec<String>,
    /// Member object ids, in order.
    pub members: Vec<String>,
}

/// A directory role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    /// Assignment id.
    pub id: String,
    /// The principal.
    pub principal_id: String,
    /// The role definition.
    pub role_definition_id: String,
    /// The scope (`/` for the tenant).
    pub directory_scope_id: String,
}

/// An app role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoleAssignment {
    /// Assignment id.
    pub id: String,
    /// The principal.
    pub principal_id: String,
    /// The resource service principal.
    pub resource_id: String,
    /// The app role.
    pub app_role_id: String,
}

/// An app registration allowed to get tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its client secret, if it has one.
    pub secret: Option<String>,
    /// PEM public key and SHA-1 thumbprint (hex) of its certificate, if it has one.
    pub certificate: Option<(String, String)>,
    /// Its application permissions.
    pub roles: Vec<String>,
}

/// The fake tenant's state.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    /// Users by object id.
    pub users: BTreeMap<String, User>,
    /// Groups by object id.
    pub groups: BTreeMap<String, Group>,
    /// Service principal ids.
    pub service_principals: Vec<String>,
    /// Directory role assignments.
    pub role_assignments: Vec<RoleAssignment>,
    /// App role assignments.
    pub app_role_assignments: Vec<AppRoleAssignment>,
    /// End of each time-bound directory role assignment (RFC 3339), by assignment id; the
    /// others are permanent.
    pub role_assignment_ends: BTreeMap<String, String>,
    /// App registrations by client id.
    pub clients: BTreeMap<String, Client>,
    /// The largest page served, whatever `$top` asks (Graph may return fewer than asked).
    pub max_page: usize,
    /// Roles of each access token issued.
    tokens: BTreeMap<String, Vec<String>>,
    /// A frozen copy served to the next reads, as Graph's replicas lag behind a write.
    lagging: Option<(Box<Tenant>, u32)>,
    next_id: u64,
}

impl Tenant {
    /// A fresh unique id with `prefix`.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:012x}", self.next_id)
    }

    /// Adds a cloud-only enabled user whose sessions are valid from 2026-01-01.
    pub fn add_user(&mut self, id: &str, upn: &str) {
        self.users.insert(
            id.to_owned(),
            User {
                id: id.to_owned(),
                user_principal_name: upn.to_owned(),
                account_enabled: true,
                sessions_valid_from: time::macros::datetime!(2026-01-01 00:00 UTC),
                on_premises_sync_enabled: false,
                other_mails: Vec::new(),
            },
        );
    }

    fn user(&self, key: &str) -> Option<&User> {
        self.users.get(key).or_else(|| self.users.values().find(|u| u.user_principal_name.eq_ignore_ascii_case(key)))
    }

    fn exists(&self, id: &str) -> bool {
        self.users.contains_key(id) || self.groups.contains_key(id) || self.service_principals.iter().any(|s| s == id)
    }
}

/// The fake Entra ID server.
pub struct EntraFake {
    server: FakeServer,
    tenant: Arc<Mutex<Tenant>>,
}

impl std::fmt::Debug for EntraFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraFake").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Shared {
    tenant: Arc<Mutex<Tenant>>,
    faults: Faults,
    base: Arc<Mutex<String>>,
}

impl Shared {
    fn tenant(&self) -> MutexGuard<'_, Tenant> {
        self.tenant.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The state a read sees: the live one, or a lagging replica's frozen copy.
    fn view(&self) -> Tenant {
        let mut t = self.tenant();
        if let Some((frozen, left)) = t.lagging.as_mut() {
            let copy = (**frozen).clone();
            *left -= 1;
            if *left == 0 {
                t.lagging = None;
            }
            return copy;
        }
        t.clone()
    }
}

struct Graph;

impl Provider for Graph {
    fn throttled(&self) -> Response {
        graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
            &[("retry-after", "2".into())],
        )
    }

    fn server_error(&self, status: StatusCode) -> Response {
        let code = if status == StatusCode::SERVICE_UNAVAILABLE { "serviceNotAvailable" } else { "generalException" };
        graph_error(status, code, "The service is temporarily unavailable.", &[])
    }

    fn unauthorized(&self) -> Response {
        graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
            &[],
        )
    }

    fn is_public(&self, path: &str) -> bool {
        path.ends_with("/oauth2/v2.0/token")
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn graph_error(status: StatusCode, code: &str, message: &str, extra: &[(&str, String)]) -> Response {
    let id = request_id();
    let date = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    let mut headers = vec![("request-id", id.clone()), ("client-request-id", id.clone())];
    headers.extend(extra.iter().cloned());
    json_response(
        status,
        &headers,
        &json!({"error": {"code": code, "message": message,
                          "innerError": {"date": date, "request-id": id, "client-request-id": id}}}),
    )
}

fn ok_json(status: StatusCode, body: &Value) -> Response {
    json_response(status, &[("request-id", request_id())], body)
}

fn no_content() -> Response {
    empty_response(StatusCode::NO_CONTENT, &[("request-id", request_id())])
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        &[],
    )
}

fn denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
        &[],
    )
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Graph answers a POST that declares no body length (neither `Content-Length` nor
/// `Transfer-Encoding`) with 411 Length Required ("The Content-Length header is missing in the
/// request", Microsoft Graph error responses, learn.microsoft.com/graph/errors); a body-less
/// `POST /users/{id}/revokeSignInSessions` must therefore carry `Content-Length: 0`.
async fn length_required(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = request.headers().contains_key(axum::http::header::CONTENT_LENGTH)
        || request.headers().contains_key(axum::http::header::TRANSFER_ENCODING);
    if request.method() == axum::http::Method::POST && !declared {
        return graph_error(StatusCode::LENGTH_REQUIRED, "LengthRequired", "Length Required", &[]);
    }
    next.run(request).await
}

impl EntraFake {
    /// Starts the fake with `tenant` as its state.
    pub async fn start(tenant: Tenant) -> std::io::Result<Self> {
        let faults = Faults::new();
        let shared = Shared {
            tenant: Arc::new(Mutex::new(tenant)),
            faults: faults.clone(),
            base: Arc::new(Mutex::new(String::new())),
        };
        let graph = Router::new()
            .route("/users", get(list_users))
            .route("/users/{id}", get(get_user).patch(patch_user))
            .route("/users/{id}/revokeSignInSessions", post(revoke_sessions))
            .route("/users/{id}/appRoleAssignments", get(list_user_app_roles))
            .route("/users/{id}/memberOf", get(list_member_of))
            .route("/directoryObjects/{id}", get(get_object))
            .route("/groups/{id}", get(get_group))
            .route("/groups/{id}/members", get(list_members))
            .route("/groups/{id}/members/{uid}/$ref", delete(remove_member))
            .route("/groups/{id}/members/$ref", post(add_member))
            .route("/roleManagement/directory/roleAssignmentScheduleInstances", get(list_role_instances))
            .route("/roleManagement/directory/roleAssignments", get(list_roles).post(add_role))
            .route("/roleManagement/directory/roleAssignments/{id}", delete(remove_role))
            .route("/servicePrincipals/{sp}/appRoleAssignedTo", post(add_app_role))
            .route("/servicePrincipals/{sp}/appRoleAssignedTo/{id}", delete(remove_app_role))
            .layer(axum::middleware::from_fn(length_required));
        let router = Router::new()
            .nest("/v1.0", graph)
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(shared.clone());
        let server = FakeServer::start_with(router, Graph, faults, RequestLog::new()).await?;
        *shared.base.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = server.base_url().to_owned();
        Ok(Self { server, tenant: shared.tenant })
    }

    /// `http://127.0.0.1:<port>`: the login URL.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// `http://127.0.0.1:<port>/v1.0`: the Graph URL.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.server.base_url())
    }

    /// The shared fault switchboard.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// The request log.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// The next `reads` read requests see the tenant as it is now, whatever is written
    /// meanwhile: Graph replicates writes with a delay.
    pub fn lag_reads(&self, reads: u32) {
        let mut t = self.tenant();
        let frozen = Box::new(Tenant { lagging: None, ..t.clone() });
        t.lagging = (reads > 0).then_some((frozen, reads));
    }

    /// The tenant's state, to read or change.
    pub fn tenant(&self) -> MutexGuard<'_, Tenant> {
        self.tenant.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The example tenant the Entra connector's tests and golden fixtures use: users alice, bob,
/// carol, dave (synchronised from on-premises), erin and a break-glass account; group
/// engineering (alice, bob, carol, erin) and a dynamic group (alice); User Administrator
/// assigned to alice and bob; an app role of one resource assigned to alice and bob; the
/// clients [`CLIENT_ID`] (every write permission, secret `fake-entra-client-secret-0001`,
/// the test certificate) and [`READER_ID`] (read only, secret `fake-entra-reader-secret-0002`).
pub fn sample_tenant() -> Tenant {
    let mut t = Tenant { max_page: 100, ..Tenant::default() };
    for (id, upn) in [
        (ALICE, "alice@contoso.example"),
        (BOB, "bob@contoso.example"),
        (CAROL, "carol@contoso.example"),
        (DAVE, "dave@contoso.example"),
        (ERIN, "erin@contoso.example"),
        (BREAK_GLASS, "breakglass@contoso.example"),
    ] {
        t.add_user(id, upn);
    }
    if let Some(d) = t.users.get_mut(DAVE) {
        d.on_premises_sync_enabled = true;
    }
    t.groups.insert(
        ENGINEERING.to_owned(),
        Group {
            display_name: "Engineering".into(),
            group_types: vec![],
            members: vec![ALICE.into(), BOB.into(), CAROL.into(), ERIN.into()],
        },
    );
    t.groups.insert(
        DYNAMIC_GROUP.to_owned(),
        Group {
            display_name: "All staff (dynamic)".into(),
            group_types: vec!["DynamicMembership".into()],
            members: vec![ALICE.into()],
        },
    );
    t.service_principals.push(RESOURCE_SP.to_owned());
    for (id, principal) in [(ROLE_ASSIGNMENT_ALICE, ALICE), ("lAPpYvVpN0KRkAEhdxReEHNTxYF3bURPqQbvnSo_cjo-2", BOB)] {
        t.role_assignments.push(RoleAssignment {
            id: id.into(),
            principal_id: principal.into(),
            role_definition_id: USER_ADMINISTRATOR.into(),
            directory_scope_id: "/".into(),
        });
    }
    for (id, principal) in [(APP_ROLE_ASSIGNMENT_ALICE, ALICE), ("AOoV7AKLzkSyUzUtuOBYOhqcP8aTnPtHpB4NAZuS9N1", BOB)] {
        t.app_role_assignments.push(AppRoleAssignment {
            id: id.into(),
            principal_id: principal.into(),
            resource_id: RESOURCE_SP.into(),
            app_role_id: APP_ROLE.into(),
        });
    }
    t.clients.insert(
        CLIENT_ID.to_owned(),
        Client {
            secret: Some(CLIENT_SECRET.into()),
            certificate: Some((CERT_PUBLIC_KEY.to_owned(), CERT_THUMBPRINT.to_owned())),
            roles: WRITE_ROLES.iter().map(|r| (*r).to_owned()).collect(),
        },
    );
    t.clients.insert(
        READER_ID.to_owned(),
        Client {
            secret: Some(READER_SECRET.into()),
            certificate: None,
            roles: READ_ROLES.iter().map(|r| (*r).to_owned()).collect(),
        },
    );
    t
}

/// The full-permission client's secret in [`sample_tenant`].
pub const CLIENT_SECRET: &str = "fake-entra-client-secret-0001";
/// The read-only client's secret in [`sample_tenant`].
pub const READER_SECRET: &str = "fake-entra-reader-secret-0002";
/// User alice.
pub const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
/// User bob.
pub const BOB: &str = "b0b00000-0000-4000-8000-000000000002";
/// User carol.
pub const CAROL: &str = "ca201000-0000-4000-8000-000000000003";
/// User dave, synchronised from on-premises AD.
pub const DAVE: &str = "da7e0000-0000-4000-8000-000000000004";
/// User erin.
pub const ERIN: &str = "e2170000-0000-4000-8000-000000000005";
/// The break-glass account.
pub const BREAK_GLASS: &str = "b4ea0000-0000-4000-8000-00000000b4ea";
/// Group engineering.
pub const ENGINEERING: &str = "e0000000-0000-4000-8000-0000000000e1";
/// A dynamic group.
pub const DYNAMIC_GROUP: &str = "d0000000-0000-4000-8000-0000000000d1";
/// The User Administrator role definition (its well-known template id).
pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
/// Alice's User Administrator assignment.
pub const ROLE_ASSIGNMENT_ALICE: &str = "lAPpYvVpN0KRkAEhdxReEHNTxYF3bURPqQbvnSo_cjo-1";
/// A resource service principal.
pub const RESOURCE_SP: &str = "5e000000-0000-4000-8000-000000000051";
/// An app role of [`RESOURCE_SP`].
pub const APP_ROLE: &str = "a0000000-0000-4000-8000-0000000000a7";
/// Alice's app role assignment.
pub const APP_ROLE_ASSIGNMENT_ALICE: &str = "AOoV7AKLzkSyUzUtuOBYOhqcP8aTnPtHpB4NAZuS9N0";

fn roles_of(shared: &Shared, caller: Option<&Caller>) -> Vec<String> {
    caller.and_then(|c| shared.tenant().tokens.get(&c.0).cloned()).unwrap_or_default()
}

/// Whether the caller holds `role` or one of `broader`.
fn allowed(shared: &Shared, caller: Option<&Caller>, role: &str, broader: &[&str]) -> bool {
    let roles = roles_of(shared, caller);
    roles.iter().any(|r| r == role || broader.contains(&r.as_str()))
}

fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn user_json(u: &User, select: Option<&str>) -> Value {
    let all = json!({
        "id": u.id,
        "userPrincipalName": u.user_principal_name,
        "accountEnabled": u.account_enabled,
        "signInSessionsValidFromDateTime": iso(u.sessions_valid_from),
        "onPremisesSyncEnabled": if u.on_premises_sync_enabled { Value::Bool(true) } else { Value::Null },
        "displayName": u.user_principal_name.split('@').next().unwrap_or_default(),
        "otherMails": u.other_mails,
    });
    // Like Graph, accountEnabled and the session timestamp only when selected.
    let fields: Vec<&str> = match select {
        Some(s) => s.split(',').map(str::trim).collect(),
        None => vec!["id", "userPrincipalName", "displayName"],
    };
    let mut out = serde_json::Map::new();
    for f in fields {
        if let Some(v) = all.get(f) {
            out.insert(f.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// One page of `items` from `$skiptoken` (an offset), at most `min($top, max_page)` long.
fn page(shared: &Shared, path: &str, q: &[(String, String)], items: Vec<Value>) -> Response {
    let max = shared.tenant().max_page.max(1);
    let top = param(q, "$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(100).clamp(1, 999).min(max);
    let skip = param(q, "$skiptoken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let end = (skip + top).min(items.len());
    let mut body = json!({ "@odata.context": format!("{}/v1.0/$metadata", shared.base()),
                           "value": items.get(skip..end).unwrap_or_default() });
    if end < items.len() {
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter().filter(|(k, _)| k != "$skiptoken") {
            link.append_pair(k, v);
        }
        link.append_pair("$skiptoken", &end.to_string());
        body["@odata.nextLink"] = json!(format!("{}/v1.0{path}?{}", shared.base(), link.finish()));
    }
    ok_json(StatusCode::OK, &body)
}

/// `principalId eq '<id>'` or `resourceId eq <id>`: the value.
fn filter_value<'a>(q: &'a [(String, String)], field: &str) -> Option<&'a str> {
    let f = param(q, "$filter")?;
    let rest = f.strip_prefix(field)?.trim_start().strip_prefix("eq")?.trim();
    Some(rest.trim_matches('\''))
}

async fn list_users(State(s): State<Shared>, Query(q): Params) -> Response {
    let items: Vec<Value> = s.view().users.values().map(|u| user_json(u, param(&q, "$select"))).collect();
    page(&s, "/users", &q, items)
}

async fn get_user(State(s): State<Shared>, Path(id): Path<String>, Query(q): Params) -> Response {
    match s.view().user(&id) {
        Some(u) => ok_json(StatusCode::OK, &user_json(u, param(&q, "$select"))),
        None => not_found(&id),
    }
}

async fn patch_user(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    body: Bytes,
) -> Response {
    let caller = caller.map(|c| c.0);
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Unable to read JSON request payload.", &[]);
    };
    if patch.get("accountEnabled").is_some()
        && !allowed(
            &s,
            caller.as_ref(),
            "User.EnableDisableAccount.All",
            &["User.ReadWrite.All", "Directory.ReadWrite.All"],
        )
    {
        return denied();
    }
    let mut t = s.tenant();
    let Some(key) = t.user(&id).map(|u| u.id.clone()) else {
        return not_found(&id);
    };
    if let Some(u) = t.users.get_mut(&key)
        && let Some(enabled) = patch.get("accountEnabled").and_then(Value::as_bool)
    {
        u.account_enabled = enabled;
    }
    no_content()
}

async fn revoke_sessions(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "User.RevokeSessions.All", &["User.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return denied();
    }
    let mut t = s.tenant();
    let Some(key) = t.user(&id).map(|u| u.id.clone()) else {
        return not_found(&id);
    };
    if let Some(u) = t.users.get_mut(&key) {
        // Whole seconds, as Graph reports them, and always later than before.
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(u.sessions_valid_from);
        u.sessions_valid_from = now.max(u.sessions_valid_from + time::Duration::seconds(1));
    }
    let base = s.base();
    ok_json(StatusCode::OK, &json!({"@odata.context": format!("{base}/v1.0/$metadata#Edm.Boolean"), "value": true}))
}

fn app_role_json(a: &AppRoleAssignment) -> Value {
    json!({"id": a.id, "principalId": a.principal_id, "resourceId": a.resource_id, "appRoleId": a.app_role_id,
           "principalType": "User", "createdDateTime": "2026-01-01T00:00:00Z"})
}

async fn list_user_app_roles(State(s): State<Shared>, Path(id): Path<String>, Query(q): Params) -> Response {
    let items: Vec<Value> = {
        let t = s.view();
        let Some(u) = t.user(&id) else {
            return not_found(&id);
        };
        let resource = filter_value(&q, "resourceId");
        t.app_role_assignments
            .iter()
            .filter(|a| a.principal_id == u.id && resource.is_none_or(|r| r == a.resource_id))
            .map(app_role_json)
            .collect()
    };
    // Graph's paging guidance (https://learn.microsoft.com/graph/paging) warns that some
    // listings do not return `@odata.nextLink` for every query, and app role assignments
    // filtered with `$filter` and sized with `$top` are one: the response holds at most
    // `$top` items and no next link, so a reader cannot tell the listing was cut. Without
    // `$top` the listing pages normally. The fake serves the same quiet cut.
    if param(&q, "$filter").is_some()
        && let Some(top) = param(&q, "$top").and_then(|t| t.parse::<usize>().ok())
    {
        let max = s.tenant().max_page.max(1);
        let cut: Vec<Value> = items.into_iter().take(top.clamp(1, 999).min(max)).collect();
        let body = json!({ "@odata.context": format!("{}/v1.0/$metadata", s.base()), "value": cut });
        return ok_json(StatusCode::OK, &body);
    }
    page(&s, &format!("/users/{id}/appRoleAssignments"), &q, items)
}

/// `GET /directoryObjects/{id}`. Microsoft Graph's "Get directoryObject" page names
/// Directory.Read.All as the least privileged application permission (Directory.ReadWrite.All
/// the higher one); a token without either is refused.
async fn get_object(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "Directory.Read.All", &["Directory.ReadWrite.All"]) {
        return denied();
    }
    if s.view().exists(&id) { ok_json(StatusCode::OK, &json!({"id": id})) } else { not_found(&id) }
}

async fn get_group(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    match s.view().groups.get(&id) {
        Some(g) => {
            ok_json(StatusCode::OK, &json!({"id": id, "displayName": g.display_name, "groupTypes": g.group_types}))
        }
        None => not_found(&id),
    }
}

/// `GET /users/{id}/memberOf`: the groups the user is a direct member of, then the directory
/// roles assigned to them at the tenant scope (as `#microsoft.graph.directoryRole` objects).
async fn list_member_of(State(s): State<Shared>, Path(id): Path<String>, Query(q): Params) -> Response {
    let t = s.view();
    let Some(user) = t.user(&id).map(|u| u.id.clone()) else {
        return not_found(&id);
    };
    let groups = t
        .groups
        .iter()
        .filter(|(_, g)| g.members.contains(&user))
        .map(|(gid, _)| json!({"@odata.type": "#microsoft.graph.group", "id": gid}));
    let roles = t
        .role_assignments
        .iter()
        .filter(|r| r.principal_id == user && r.directory_scope_id == "/")
        .map(|r| json!({"@odata.type": "#microsoft.graph.directoryRole", "id": r.role_definition_id}));
    let items: Vec<Value> = groups.chain(roles).collect();
    page(&s, &format!("/users/{id}/memberOf"), &q, items)
}

async fn list_members(State(s): State<Shared>, Path(id): Path<String>, Query(q): Params) -> Response {
    let items: Vec<Value> = match s.view().groups.get(&id) {
        Some(g) => g.members.iter().map(|m| json!({"@odata.type": "#microsoft.graph.user", "id": m})).collect(),
        None => return not_found(&id),
    };
    page(&s, &format!("/groups/{id}/members"), &q, items)
}

fn dynamic_refusal() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        "Insufficient privileges to complete the write operation. The group has dynamic membership.",
        &[],
    )
}

async fn remove_member(
    State(s): State<Shared>,
    Path((id, uid)): Path<(String, String)>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "GroupMember.ReadWrite.All", &["Group.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return denied();
    }
    let mut t = s.tenant();
    let Some(g) = t.groups.get_mut(&id) else {
        return not_found(&id);
    };
    if g.group_types.iter().any(|x| x == "DynamicMembership") {
        return dynamic_refusal();
    }
    let before = g.members.len();
    g.members.retain(|m| m != &uid);
    if g.members.len() == before { not_found(&uid) } else { no_content() }
}

async fn add_member(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    body: Bytes,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "GroupMember.ReadWrite.All", &["Group.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return denied();
    }
    let reference = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("@odata.id").and_then(Value::as_str).map(str::to_owned));
    let Some(uid) = reference.as_deref().and_then(|r| r.rsplit('/').next()).map(str::to_owned) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid object identifier '@odata.id'.",
            &[],
        );
    };
    let mut t = s.tenant();
    if !t.exists(&uid) {
        return not_found(&uid);
    }
    let Some(g) = t.groups.get_mut(&id) else {
        return not_found(&id);
    };
    if g.group_types.iter().any(|x| x == "DynamicMembership") {
        return dynamic_refusal();
    }
    if g.members.contains(&uid) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
            &[],
        );
    }
    g.members.push(uid);
    no_content()
}

fn role_json(a: &RoleAssignment) -> Value {
    json!({"id": a.id, "principalId": a.principal_id, "roleDefinitionId": a.role_definition_id,
           "directoryScopeId": a.directory_scope_id})
}

async fn list_roles(State(s): State<Shared>, Query(q): Params) -> Response {
    let principal = filter_value(&q, "principalId");
    let items: Vec<Value> = s
        .view()
        .role_assignments
        .iter()
        .filter(|a| principal.is_none_or(|p| p == a.principal_id))
        .map(role_json)
        .collect();
    page(&s, "/roleManagement/directory/roleAssignments", &q, items)
}

/// `GET /roleManagement/directory/roleAssignmentScheduleInstances`: one instance per active
/// assignment, as Microsoft Graph v1.0 documents `unifiedRoleAssignmentScheduleInstance`
/// (https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentscheduleinstances):
/// `assignmentType` `Assigned`, `roleAssignmentOriginId` the assignment's id, and
/// `endDateTime` `null` for a permanent assignment or when a time-bound one ends. Graph lists
/// a time-bound assignment in `roleAssignments` exactly like a permanent one; only here does
/// its end show.
async fn list_role_instances(State(s): State<Shared>, Query(q): Params) -> Response {
    let principal = filter_value(&q, "principalId");
    let items: Vec<Value> = {
        let t = s.view();
        t.role_assignments
            .iter()
            .filter(|a| principal.is_none_or(|p| p == a.principal_id))
            .map(|a| {
                json!({"id": a.id, "principalId": a.principal_id, "roleDefinitionId": a.role_definition_id,
                       "directoryScopeId": a.directory_scope_id, "appScopeId": null,
                       "assignmentType": "Assigned", "memberType": "Direct", "roleAssignmentOriginId": a.id,
                       "startDateTime": "2026-01-01T00:00:00Z",
                       "endDateTime": t.role_assignment_ends.get(&a.id)})
            })
            .collect()
    };
    page(&s, "/roleManagement/directory/roleAssignmentScheduleInstances", &q, items)
}

async fn add_role(State(s): State<Shared>, caller: Option<axum::Extension<Caller>>, body: Bytes) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "RoleManagement.ReadWrite.Directory", &[]) {
        return denied();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Unable to read JSON request payload.", &[]);
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (principal, role, scope) = (field("principalId"), field("roleDefinitionId"), field("directoryScopeId"));
    let mut t = s.tenant();
    if !t.exists(&principal) {
        return not_found(&principal);
    }
    if t.role_assignments
        .iter()
        .any(|a| a.principal_id == principal && a.role_definition_id == role && a.directory_scope_id == scope)
    {
        return graph_error(
            StatusCode::CONFLICT,
            "Request_BadRequest",
            "A conflicting object with one or more of the specified property values is present in the directory.",
            &[],
        );
    }
    let id = t.new_id("roleAssignment-");
    let a = RoleAssignment { id, principal_id: principal, role_definition_id: role, directory_scope_id: scope };
    let body = role_json(&a);
    t.role_assignments.push(a);
    ok_json(StatusCode::CREATED, &body)
}

async fn remove_role(
    State(s): State<Shared>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "RoleManagement.ReadWrite.Directory", &[]) {
        return denied();
    }
    let mut t = s.tenant();
    let before = t.role_assignments.len();
    t.role_assignments.retain(|a| a.id != id);
    if t.role_assignments.len() == before { not_found(&id) } else { no_content() }
}

async fn add_app_role(
    State(s): State<Shared>,
    Path(sp): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    body: Bytes,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "AppRoleAssignment.ReadWrite.All", &[]) {
        return denied();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Unable to read JSON request payload.", &[]);
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (principal, resource, app_role) = (field("principalId"), field("resourceId"), field("appRoleId"));
    let mut t = s.tenant();
    if resource != sp || !t.service_principals.contains(&sp) {
        return not_found(&sp);
    }
    if !t.exists(&principal) {
        return not_found(&principal);
    }
    if t.app_role_assignments
        .iter()
        .any(|a| a.principal_id == principal && a.resource_id == resource && a.app_role_id == app_role)
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Permission being assigned already exists on the object",
            &[],
        );
    }
    let id = t.new_id("appRoleAssignment-");
    let a = AppRoleAssignment { id, principal_id: principal, resource_id: resource, app_role_id: app_role };
    let body = app_role_json(&a);
    t.app_role_assignments.push(a);
    ok_json(StatusCode::CREATED, &body)
}

async fn remove_app_role(
    State(s): State<Shared>,
    Path((sp, id)): Path<(String, String)>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    if !allowed(&s, caller.as_ref(), "AppRoleAssignment.ReadWrite.All", &[]) {
        return denied();
    }
    let mut t = s.tenant();
    let before = t.app_role_assignments.len();
    t.app_role_assignments.retain(|a| !(a.id == id && a.resource_id == sp));
    if t.app_role_assignments.len() == before { not_found(&id) } else { no_content() }
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &[("request-id", request_id())],
        &json!({"error": error, "error_description": description, "error_codes": [7000215],
                "trace_id": request_id(), "correlation_id": request_id()}),
    )
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
}

/// Checks a client assertion against the client's certificate.
fn assertion_ok(token: &str, certificate: &(String, String), client_id: &str, token_url: &str) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("unreadable assertion header: {e}"))?;
    let expected = hex::decode(&certificate.1).map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b));
    if header.x5t.as_deref() != expected.ok().as_deref() {
        return Err("AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.".into());
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(certificate.0.as_bytes()).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[token_url]);
    let data = jsonwebtoken::decode::<AssertionClaims>(token, &key, &validation)
        .map_err(|e| format!("AADSTS700027: Client assertion failed signature validation: {e}"))?;
    if data.claims.iss != client_id || data.claims.sub != client_id || data.claims.aud != token_url {
        return Err("AADSTS700023: Client assertion audience or issuer does not match.".into());
    }
    Ok(())
}

fn access_token(roles: &[String]) -> String {
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "fake"});
    let claims = json!({"aud": "https://graph.microsoft.com", "iss": format!("https://sts.windows.net/{TENANT}/"),
                        "roles": roles, "tid": TENANT, "uti": uuid::Uuid::new_v4().simple().to_string()});
    format!(
        "{}.{}.{}",
        enc(&header),
        enc(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"fake-signature")
    )
}

async fn token(State(s): State<Shared>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url_pairs(&String::from_utf8_lossy(&body)).into_iter().collect();
    let form_ok = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if tenant != TENANT {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    if !form_ok || form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if form.get("scope").is_none_or(|sc| !sc.ends_with("/.default")) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let Some(client) = s.tenant().clients.get(&client_id).cloned() else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory."),
        );
    };
    let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", s.base());
    let verdict = match (form.get("client_secret"), form.get("client_assertion"), &client.certificate) {
        (Some(secret), None, _) if client.secret.as_deref() == Some(secret.as_str()) => Ok(()),
        (Some(_), None, _) => Err("AADSTS7000215: Invalid client secret provided.".to_owned()),
        (None, Some(assertion), Some(cert))
            if form.get("client_assertion_type").map(String::as_str)
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") =>
        {
            assertion_ok(assertion, cert, &client_id, &token_url)
        }
        _ => Err("AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned()),
    };
    if let Err(description) = verdict {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", &description);
    }
    let token = access_token(&client.roles);
    s.tenant().tokens.insert(token.clone(), client.roles.clone());
    s.faults.allow_token(&token);
    ok_json(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}
