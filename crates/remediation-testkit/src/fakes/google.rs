//! A stateful fake of the Google Workspace Admin SDK Directory API and of Google's OAuth
//! token endpoint for service accounts with domain-wide delegation.
//!
//! [`GoogleState`] is the provider: users (with an admin role), groups and their members,
//! issued access tokens. [`GoogleState::handle`] answers one request the way Google does:
//! the same paths, status codes, error bodies (`{"error": {"code", "message", "errors":
//! [{"message", "domain", "reason"}]}}`) and `pageToken`/`nextPageToken` pagination.
//! [`GoogleFake`] serves it on loopback behind the shared [`Faults`] switchboard, whose
//! throttled answer is Google's 403 `userRateLimitExceeded` and whose 503 is a
//! `backendError`.
//!
//! The token endpoint ([`GoogleState::token`]) checks the JWT-bearer assertion as Google
//! does: `alg` RS256, `kid` naming a registered key, `iss` the service account, `aud` the
//! token URL, `sub` an existing, unsuspended user, `scope` within the scopes delegated to
//! the service account, `exp` after now and at most one hour after `iat`. Each refusal is a
//! 400 with Google's `{"error", "error_description"}` body.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{FakeServer, Faults, Provider, RequestLog, empty_response, json_response, url_pairs};

/// The access-token lifetime the fake grants, in seconds, as Google does.
pub const TOKEN_LIFETIME_SECS: i64 = 3600;

/// An administrator role of a fake user, deciding what the user may do when impersonated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    /// Not an administrator: every Directory request acting as this user is refused.
    None,
    /// May read users and groups but change nothing.
    ReadOnly,
    /// A super administrator (`isAdmin: true`).
    Super,
}

/// A user in the fake directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// Immutable id.
    pub id: String,
    /// Primary email.
    pub primary_email: String,
    /// Other emails of the user; the API accepts each as the user key.
    pub aliases: Vec<String>,
    /// Suspended.
    pub suspended: bool,
    /// Must change the password at next sign-in.
    pub change_password_at_next_login: bool,
    /// Administrator role.
    pub role: AdminRole,
    /// How many times `signOut` ran for the user.
    pub sign_outs: u32,
    /// `recoveryEmail`: an address the user may set themselves; never a user key.
    pub recovery_email: Option<String>,
}

/// A member of a fake group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMember {
    /// Member email.
    pub email: String,
    /// `OWNER`, `MANAGER` or `MEMBER`.
    pub role: String,
    /// `ALL_MAIL`, `DAILY`, `DIGEST`, `DISABLED` or `NONE`.
    pub delivery_settings: String,
    /// `USER` or `GROUP`.
    pub kind: String,
}

/// A group in the fake directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeGroup {
    /// Immutable id.
    pub id: String,
    /// Group email.
    pub email: String,
    /// Members by lower-cased email, in order.
    pub members: BTreeMap<String, FakeMember>,
}

/// A service account allowed to use domain-wide delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeServiceAccount {
    /// The account's email (the JWT `iss`).
    pub client_email: String,
    /// The id of its key (the JWT header `kid`).
    pub key_id: String,
    /// The scopes delegated to it in the Admin console.
    pub delegated_scopes: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Token {
    subject: String,
    scopes: BTreeSet<String>,
    expires_at: i64,
}

/// The fake's answer: status, headers and JSON body (`None` for an empty body).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self { status, headers: Vec::new(), body: Some(body) }
    }

    fn empty() -> Self {
        Self { status: 204, headers: Vec::new(), body: None }
    }
}

/// Google's error body.
pub fn error_body(code: u16, message: &str, reason: &str) -> Value {
    json!({"error": {"code": code, "message": message, "errors": [
        {"message": message, "domain": if reason == "userRateLimitExceeded" { "usageLimits" } else { "global" }, "reason": reason}
    ]}})
}

fn error(code: u16, message: &str, reason: &str) -> Reply {
    Reply::json(code, error_body(code, message, reason))
}

fn token_error(error: &str, description: &str) -> Reply {
    Reply::json(400, json!({"error": error, "error_description": description}))
}

/// Scope needed to read users.
pub const SCOPE_USER: &str = "https://www.googleapis.com/auth/admin.directory.user";
/// Scope needed to sign users out.
pub const SCOPE_USER_SECURITY: &str = "https://www.googleapis.com/auth/admin.directory.user.security";
/// Scope needed to change group members.
pub const SCOPE_GROUP_MEMBER: &str = "https://www.googleapis.com/auth/admin.directory.group.member";
/// Scope needed to read groups.
pub const SCOPE_GROUP_READONLY: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

/// The whole fake provider.
#[derive(Debug, Clone, Default)]
pub struct GoogleState {
    /// Users by lower-cased primary email.
    pub users: BTreeMap<String, FakeUser>,
    /// Groups by lower-cased email.
    pub groups: BTreeMap<String, FakeGroup>,
    /// Service accounts by client email.
    pub service_accounts: BTreeMap<String, FakeServiceAccount>,
    /// The token URL assertions must name as `aud`.
    pub token_url: String,
    /// Tokens issued so far.
    pub tokens_issued: u32,
    tokens: HashMap<String, Token>,
    next_id: u64,
}

impl GoogleState {
    /// An empty directory whose token endpoint is `token_url`.
    pub fn new(token_url: impl Into<String>) -> Self {
        Self { token_url: token_url.into(), ..Self::default() }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("1{:020}", self.next_id)
    }

    /// Adds a user.
    pub fn add_user(&mut self, email: &str, role: AdminRole) -> &mut FakeUser {
        let id = self.id();
        let user = FakeUser {
            id,
            primary_email: email.to_owned(),
            aliases: Vec::new(),
            suspended: false,
            change_password_at_next_login: false,
            role,
            sign_outs: 0,
            recovery_email: None,
        };
        self.users.entry(email.to_lowercase()).or_insert(user)
    }

    /// Adds a group.
    pub fn add_group(&mut self, email: &str) -> &mut FakeGroup {
        let id = self.id();
        self.groups.entry(email.to_lowercase()).or_insert(FakeGroup {
            id,
            email: email.to_owned(),
            members: BTreeMap::new(),
        })
    }

    /// Adds `email` to `group` (created if needed) with a role and delivery settings.
    pub fn add_member(&mut self, group: &str, email: &str, role: &str, delivery: &str) {
        let kind = if self.groups.contains_key(&email.to_lowercase()) { "GROUP" } else { "USER" };
        let member = FakeMember {
            email: email.to_owned(),
            role: role.to_owned(),
            delivery_settings: delivery.to_owned(),
            kind: kind.to_owned(),
        };
        self.add_group(group).members.insert(email.to_lowercase(), member);
    }

    /// Registers a service account with its key id and delegated scopes.
    pub fn add_service_account(&mut self, client_email: &str, key_id: &str, scopes: &[&str]) {
        self.service_accounts.insert(
            client_email.to_owned(),
            FakeServiceAccount {
                client_email: client_email.to_owned(),
                key_id: key_id.to_owned(),
                delegated_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
    }

    /// A user by primary email or alias (any case) or id.
    pub fn user(&self, key: &str) -> Option<&FakeUser> {
        self.users.get(&key.to_lowercase()).or_else(|| {
            self.users.values().find(|u| u.id == key || u.aliases.iter().any(|a| a.eq_ignore_ascii_case(key)))
        })
    }

    fn user_mut(&mut self, key: &str) -> Option<&mut FakeUser> {
        let email = self.user(key)?.primary_email.to_lowercase();
        self.users.get_mut(&email)
    }

    /// A group by email (any case) or id.
    pub fn group(&self, key: &str) -> Option<&FakeGroup> {
        self.groups.get(&key.to_lowercase()).or_else(|| self.groups.values().find(|g| g.id == key))
    }

    fn group_mut(&mut self, key: &str) -> Option<&mut FakeGroup> {
        let email = self.group(key)?.email.to_lowercase();
        self.groups.get_mut(&email)
    }

    /// Makes every issued access token expire, as if an hour had passed.
    pub fn expire_tokens(&mut self) {
        for t in self.tokens.values_mut() {
            t.expires_at = i64::MIN;
        }
    }

    /// Answers the token endpoint: `form` is the decoded form body, `now` the Unix time.
    /// `signature_ok` says whether the assertion's RS256 signature verifies with the
    /// registered public key (checked by the HTTP layer, which holds the key).
    pub fn token(&mut self, form: &BTreeMap<String, String>, now: i64, signature_ok: bool) -> Reply {
        if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            return token_error("unsupported_grant_type", "Invalid grant_type: ");
        }
        let Some(assertion) = form.get("assertion") else {
            return token_error("invalid_request", "Missing required parameter: assertion");
        };
        let Some((header, claims)) = decode_jwt(assertion) else {
            return token_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            );
        };
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let int = |k: &str| claims.get(k).and_then(Value::as_i64);
        if text(&header, "alg").as_deref() != Some("RS256") {
            return token_error("invalid_grant", "Invalid JWT Signature.");
        }
        let Some(account) = text(&claims, "iss").and_then(|iss| self.service_accounts.get(&iss).cloned()) else {
            return token_error("invalid_grant", "Invalid grant: account not found");
        };
        if text(&header, "kid").as_deref() != Some(account.key_id.as_str()) || !signature_ok {
            return token_error("invalid_grant", "Invalid JWT Signature.");
        }
        if text(&claims, "aud").as_deref() != Some(self.token_url.as_str()) {
            return token_error("invalid_grant", "Invalid JWT: Failed audience check.");
        }
        match (int("iat"), int("exp")) {
            (Some(iat), Some(exp)) if exp > now && iat <= now + 60 && exp - iat <= TOKEN_LIFETIME_SECS && exp > iat => {
            }
            _ => {
                return token_error(
                    "invalid_grant",
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
                );
            }
        }
        let scopes: BTreeSet<String> =
            text(&claims, "scope").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        if scopes.is_empty() || !scopes.is_subset(&account.delegated_scopes) {
            return token_error(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
            );
        }
        let Some(subject) = text(&claims, "sub") else {
            return token_error("invalid_grant", "Invalid email or User ID");
        };
        match self.user(&subject) {
            Some(u) if !u.suspended => {}
            _ => return token_error("invalid_grant", "Invalid email or User ID"),
        }
        self.tokens_issued += 1;
        let token = format!("ya29.fake-{}-{}", self.tokens_issued, self.next_id);
        self.tokens.insert(token.clone(), Token { subject, scopes, expires_at: now + TOKEN_LIFETIME_SECS });
        Reply::json(200, json!({"access_token": token, "expires_in": TOKEN_LIFETIME_SECS, "token_type": "Bearer"}))
    }

    /// Answers one Directory API request. `path` is below the API base
    /// (`/users/alice@example.com`), percent-decoded per segment by the caller;
    /// `authorization` is the header's value; `now` the Unix time.
    pub fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        authorization: Option<&str>,
        body: Option<&Value>,
        now: i64,
    ) -> Reply {
        let token = authorization.and_then(|h| h.strip_prefix("Bearer ")).and_then(|t| self.tokens.get(t)).cloned();
        let Some(token) = token.filter(|t| t.expires_at > now) else {
            return Reply::json(401, unauthenticated_body());
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let write = method != "GET";
        let scope = match segments.as_slice() {
            ["users", _, "signOut"] => SCOPE_USER_SECURITY,
            ["users", ..] => SCOPE_USER,
            ["groups", _] if !write => SCOPE_GROUP_READONLY,
            ["groups", _, "members", ..] => SCOPE_GROUP_MEMBER,
            _ => return error(404, "Not Found", "notFound"),
        };
        let scope_ok = token.scopes.contains(scope)
            || (scope == SCOPE_GROUP_READONLY && token.scopes.contains(SCOPE_GROUP_MEMBER));
        if !scope_ok {
            return error(403, "Request had insufficient authentication scopes.", "insufficientPermissions");
        }
        let role = self.user(&token.subject).map_or(AdminRole::None, |u| u.role);
        if role == AdminRole::None || (write && role == AdminRole::ReadOnly) {
            return error(403, "Not Authorized to access this resource/api", "forbidden");
        }
        match (method, segments.as_slice()) {
            ("GET", ["users", key]) => match self.user(key) {
                Some(u) => Reply::json(200, user_json(u)),
                None => error(404, "Resource Not Found: userKey", "notFound"),
            },
            ("PATCH" | "PUT", ["users", key]) => self.patch_user(key, body),
            ("POST", ["users", key, "signOut"]) => match self.user_mut(key) {
                Some(u) => {
                    u.sign_outs += 1;
                    Reply::empty()
                }
                None => error(404, "Resource Not Found: userKey", "notFound"),
            },
            ("GET", ["groups", key]) => match self.group(key) {
                Some(g) => Reply::json(
                    200,
                    json!({"kind": "admin#directory#group", "id": g.id, "email": g.email,
                    "directMembersCount": g.members.len().to_string(), "etag": etag(g.members.len() as u64)}),
                ),
                None => error(404, "Resource Not Found: groupKey", "notFound"),
            },
            ("GET", ["groups", key, "members"]) => self.list_members(key, query),
            ("POST", ["groups", key, "members"]) => self.insert_member(key, body),
            (m, ["groups", key, "members", member]) => self.member(m, key, member, body),
            _ => error(404, "Not Found", "notFound"),
        }
    }

    fn patch_user(&mut self, key: &str, body: Option<&Value>) -> Reply {
        let Some(patch) = body.and_then(Value::as_object) else {
            return error(400, "Invalid Input", "invalid");
        };
        let Some(user) = self.user_mut(key) else {
            return error(404, "Resource Not Found: userKey", "notFound");
        };
        for (k, v) in patch {
            match (k.as_str(), v.as_bool()) {
                ("suspended", Some(b)) => user.suspended = b,
                ("changePasswordAtNextLogin", Some(b)) => user.change_password_at_next_login = b,
                _ => return error(400, &format!("Invalid Input: {k}"), "invalid"),
            }
        }
        Reply::json(200, user_json(user))
    }

    fn list_members(&self, key: &str, query: &[(String, String)]) -> Reply {
        let Some(group) = self.group(key) else {
            return error(404, "Resource Not Found: groupKey", "notFound");
        };
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let max = q("maxResults").and_then(|v| v.parse::<usize>().ok()).unwrap_or(200).clamp(1, 200);
        let start =
            q("pageToken").and_then(|v| v.strip_prefix("page-")).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let all: Vec<&FakeMember> = group.members.values().collect();
        let page: Vec<Value> = all.iter().skip(start).take(max).map(|m| member_json(m)).collect();
        let mut out = json!({"kind": "admin#directory#members", "etag": etag(all.len() as u64), "members": page});
        if start + max < all.len() {
            out["nextPageToken"] = json!(format!("page-{}", start + max));
        }
        Reply::json(200, out)
    }

    fn insert_member(&mut self, key: &str, body: Option<&Value>) -> Reply {
        let Some(email) = body.and_then(|b| b.get("email")).and_then(Value::as_str).map(str::to_owned) else {
            return error(400, "Missing required field: member", "required");
        };
        let role = body.and_then(|b| b.get("role")).and_then(Value::as_str).unwrap_or("MEMBER").to_owned();
        let delivery =
            body.and_then(|b| b.get("delivery_settings")).and_then(Value::as_str).unwrap_or("ALL_MAIL").to_owned();
        if !["OWNER", "MANAGER", "MEMBER"].contains(&role.as_str()) {
            return error(400, "Invalid Input: role", "invalid");
        }
        let is_group = self.group(&email).is_some();
        if self.user(&email).is_none() && !is_group {
            return error(404, "Resource Not Found: memberKey", "notFound");
        }
        let Some(group) = self.group_mut(key) else {
            return error(404, "Resource Not Found: groupKey", "notFound");
        };
        if group.members.contains_key(&email.to_lowercase()) {
            return error(409, "Member already exists.", "duplicate");
        }
        let m = FakeMember {
            email: email.clone(),
            role,
            delivery_settings: delivery,
            kind: (if is_group { "GROUP" } else { "USER" }).to_owned(),
        };
        let out = member_json(&m);
        group.members.insert(email.to_lowercase(), m);
        Reply::json(200, out)
    }

    fn member(&mut self, method: &str, key: &str, member: &str, body: Option<&Value>) -> Reply {
        let member_email =
            self.user(member).map(|u| u.primary_email.to_lowercase()).unwrap_or_else(|| member.to_lowercase());
        let Some(group) = self.group_mut(key) else {
            return error(404, "Resource Not Found: groupKey", "notFound");
        };
        let Some(m) = group.members.get_mut(&member_email) else {
            return error(404, "Resource Not Found: memberKey", "notFound");
        };
        match method {
            "GET" => Reply::json(200, member_json(m)),
            "DELETE" => {
                group.members.remove(&member_email);
                Reply::empty()
            }
            "PATCH" | "PUT" => {
                if let Some(r) = body.and_then(|b| b.get("role")).and_then(Value::as_str) {
                    m.role = r.to_owned();
                }
                if let Some(d) = body.and_then(|b| b.get("delivery_settings")).and_then(Value::as_str) {
                    m.delivery_settings = d.to_owned();
                }
                Reply::json(200, member_json(m))
            }
            _ => error(405, "Method Not Allowed", "httpMethodNotAllowed"),
        }
    }
}

fn etag(n: u64) -> String {
    format!("\"fake-etag-{n}\"")
}

fn user_json(u: &FakeUser) -> Value {
    let mut v = json!({
        "kind": "admin#directory#user",
        "id": u.id,
        "etag": etag(u64::from(u.sign_outs) + u64::from(u.suspended) * 2 + u64::from(u.change_password_at_next_login) * 4),
        "primaryEmail": u.primary_email,
        "name": {"givenName": u.primary_email.split('@').next().unwrap_or_default(), "familyName": "Fake"},
        "isAdmin": u.role == AdminRole::Super,
        "isDelegatedAdmin": u.role == AdminRole::ReadOnly,
        "suspended": u.suspended,
        "changePasswordAtNextLogin": u.change_password_at_next_login,
        "lastLoginTime": "2025-01-01T00:00:00.000Z",
        "orgUnitPath": "/",
    });
    if !u.aliases.is_empty() {
        v["aliases"] = json!(u.aliases);
    }
    if let Some(r) = &u.recovery_email {
        v["recoveryEmail"] = json!(r);
    }
    v
}

fn member_json(m: &FakeMember) -> Value {
    json!({
        "kind": "admin#directory#member",
        "etag": etag(m.email.len() as u64),
        "id": format!("id-{}", m.email),
        "email": m.email,
        "role": m.role,
        "type": m.kind,
        "status": "ACTIVE",
        "delivery_settings": m.delivery_settings,
    })
}

/// Splits a compact JWS into its decoded header and claims; `None` when it is not one.
pub fn decode_jwt(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || s.is_empty() {
        return None;
    }
    let decode = |p: &str| -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok() };
    Some((decode(h)?, decode(c)?))
}

/// The test service account's RSA private key (PKCS#8 PEM). A throwaway key made for the
/// fakes: it signs nothing anywhere else.
pub const TEST_PRIVATE_KEY: &str = include_str!("google_test_key.pem");

/// The public half of [`TEST_PRIVATE_KEY`], with which the fake checks assertions.
pub const TEST_PUBLIC_KEY: &str = include_str!("google_test_key.pub.pem");

/// The test service account's email.
pub const TEST_CLIENT_EMAIL: &str = "remediation@fake-project.iam.gserviceaccount.com";

/// The test service account key's id.
pub const TEST_KEY_ID: &str = "fake-key-1";

/// Where the Directory API lives below the fake's base URL, as on Google.
pub const API_PREFIX: &str = "/admin/directory/v1";

/// How the fake answers injected faults: Google's bodies and statuses.
#[derive(Debug, Clone, Copy)]
pub struct GoogleProvider;

impl Provider for GoogleProvider {
    fn throttled(&self) -> Response {
        let body = error_body(
            403,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
            "userRateLimitExceeded",
        );
        json_response(StatusCode::FORBIDDEN, &[], &body)
    }

    fn server_error(&self, status: StatusCode) -> Response {
        let reason = if status == StatusCode::SERVICE_UNAVAILABLE { "backendError" } else { "internalError" };
        json_response(status, &[], &error_body(status.as_u16(), "Backend Error", reason))
    }

    fn unauthorized(&self) -> Response {
        json_response(StatusCode::UNAUTHORIZED, &[], &unauthenticated_body())
    }

    fn is_public(&self, path: &str) -> bool {
        path == "/token"
    }
}

/// A running fake Google: the token endpoint at `/token` and the Directory API under
/// [`API_PREFIX`], sharing one [`GoogleState`].
pub struct GoogleFake {
    server: FakeServer,
    state: Arc<Mutex<GoogleState>>,
}

impl std::fmt::Debug for GoogleFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleFake").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<GoogleState>>,
    faults: Faults,
}

impl GoogleFake {
    /// Starts a fake on loopback with the test service account registered (delegated every
    /// Directory scope), after `seed` has added users and groups.
    pub async fn start(seed: impl FnOnce(&mut GoogleState)) -> std::io::Result<Self> {
        let mut state = GoogleState::new(String::new());
        state.add_service_account(
            TEST_CLIENT_EMAIL,
            TEST_KEY_ID,
            &[SCOPE_USER, SCOPE_USER_SECURITY, SCOPE_GROUP_MEMBER, SCOPE_GROUP_READONLY],
        );
        seed(&mut state);
        let state = Arc::new(Mutex::new(state));
        let faults = Faults::new();
        let shared = Shared { state: Arc::clone(&state), faults: faults.clone() };
        let router = Router::new()
            .route("/token", post(token_endpoint))
            .route(&format!("{API_PREFIX}/{{*rest}}"), any(directory))
            .with_state(shared);
        let server = FakeServer::start_with(router, GoogleProvider, faults, RequestLog::new()).await?;
        // The token URL is the JWT audience, known once the server listens.
        state.lock().unwrap_or_else(PoisonError::into_inner).token_url = format!("{}/token", server.base_url());
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The Directory API base URL to configure.
    pub fn api_base(&self) -> String {
        format!("{}{API_PREFIX}", self.server.base_url())
    }

    /// The token URL to configure.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.server.base_url())
    }

    /// A service-account key file's JSON for the test account, for `credentials_file`.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": TEST_KEY_ID,
            "private_key": TEST_PRIVATE_KEY,
            "client_email": TEST_CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": self.token_url(),
        })
        .to_string()
    }

    /// The provider's state, to seed and inspect.
    pub fn state(&self) -> MutexGuard<'_, GoogleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault switchboard.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// The request log.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn unauthenticated_body() -> Value {
    json!({"error": {"code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                    "location": "Authorization", "locationType": "header"}],
        "status": "UNAUTHENTICATED"}})
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers: Vec<(&str, String)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    match r.body {
        Some(b) => json_response(status, &headers, &b),
        None => empty_response(status, &headers),
    }
}

fn signature_ok(assertion: &str) -> bool {
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(assertion, &key, &validation).is_ok()
}

async fn token_endpoint(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let form: BTreeMap<String, String> = url_pairs(&String::from_utf8_lossy(&body)).into_iter().collect();
    let sig = form.get("assertion").is_some_and(|a| signature_ok(a));
    let r = shared.state.lock().unwrap_or_else(PoisonError::into_inner).token(&form, now(), sig);
    if let Some(token) = r.body.as_ref().and_then(|b| b.get("access_token")).and_then(Value::as_str) {
        shared.faults.allow_token(token);
    }
    reply(r)
}

async fn directory(State(shared): State<Shared>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let raw = parts.uri.path().strip_prefix(API_PREFIX).unwrap_or("");
    let path: Vec<String> = raw.split('/').map(decode_segment).collect();
    let query = parts.uri.query().map(url_pairs).unwrap_or_default();
    let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Option<Value> = if bytes.is_empty() { None } else { serde_json::from_slice(&bytes).ok() };
    if !bytes.is_empty() && body.is_none() {
        return reply(error(400, "Invalid JSON payload received.", "parseError"));
    }
    let r = shared.state.lock().unwrap_or_else(PoisonError::into_inner).handle(
        parts.method.as_str(),
        &path.join("/"),
        &query,
        auth.as_deref(),
        body.as_ref(),
        now(),
    );
    reply(r)
}

fn decode_segment(s: &str) -> String {
    // `url_pairs` decodes `+` as a space, which a path does not: protect it first.
    url_pairs(&format!("x={}", s.replace('+', "%2B"))).pop().map(|(_, v)| v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const TOKEN_URL: &str = "http://127.0.0.1/token";
    const SA: &str = "sa@project.iam.gserviceaccount.com";
    const NOW: i64 = 1_700_000_000;

    fn jwt(claims: Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"}).to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{h}.{c}.c2ln")
    }

    fn claims() -> Value {
        json!({"iss": SA, "sub": "admin@example.com", "scope": format!("{SCOPE_USER} {SCOPE_GROUP_MEMBER}"),
               "aud": TOKEN_URL, "iat": NOW, "exp": NOW + 3600})
    }

    fn state() -> GoogleState {
        let mut s = GoogleState::new(TOKEN_URL);
        s.add_service_account(SA, "key-1", &[SCOPE_USER, SCOPE_GROUP_MEMBER, SCOPE_USER_SECURITY]);
        s.add_user("admin@example.com", AdminRole::Super);
        s.add_user("alice@example.com", AdminRole::None);
        s.add_member("eng@example.com", "alice@example.com", "MANAGER", "DIGEST");
        s
    }

    fn form(assertion: &str) -> BTreeMap<String, String> {
        [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn token(s: &mut GoogleState) -> String {
        let r = s.token(&form(&jwt(claims())), NOW, true);
        assert_eq!(r.status, 200, "{:?}", r.body);
        format!("Bearer {}", r.body.unwrap()["access_token"].as_str().unwrap())
    }

    #[track_caller]
    fn refused(mut change: impl FnMut(&mut Value), error: &str) {
        let mut s = state();
        let mut c = claims();
        change(&mut c);
        let r = s.token(&form(&jwt(c)), NOW, true);
        assert_eq!(r.status, 400);
        assert_eq!(r.body.unwrap()["error"], json!(error));
    }

    #[test]
    fn the_token_endpoint_checks_every_claim() {
        refused(|c| c["iss"] = json!("other@x"), "invalid_grant");
        refused(|c| c["aud"] = json!("https://elsewhere/token"), "invalid_grant");
        refused(|c| c["exp"] = json!(NOW + 3601), "invalid_grant");
        refused(|c| c["exp"] = json!(NOW - 1), "invalid_grant");
        refused(|c| c["scope"] = json!(SCOPE_GROUP_READONLY), "unauthorized_client");
        refused(|c| c["sub"] = json!("nobody@example.com"), "invalid_grant");
        let mut s = state();
        assert_eq!(s.token(&form(&jwt(claims())), NOW, false).status, 400);
        assert_eq!(s.token(&form("not-a-jwt"), NOW, true).status, 400);
    }

    #[test]
    fn directory_requests_need_a_live_token_and_an_admin() {
        let mut s = state();
        let auth = token(&mut s);
        let r = s.handle("GET", "/users/alice@example.com", &[], Some(&auth), None, NOW);
        assert_eq!(r.status, 200);
        assert_eq!(s.handle("GET", "/users/alice@example.com", &[], None, None, NOW).status, 401);
        assert_eq!(s.handle("GET", "/users/alice@example.com", &[], Some(&auth), None, NOW + 3600).status, 401);
        s.users.get_mut("admin@example.com").unwrap().role = AdminRole::ReadOnly;
        assert_eq!(s.handle("GET", "/users/alice@example.com", &[], Some(&auth), None, NOW).status, 200);
        let r = s.handle("PATCH", "/users/alice@example.com", &[], Some(&auth), Some(&json!({"suspended": true})), NOW);
        assert_eq!(r.status, 403);
        assert_eq!(r.body.unwrap()["error"]["errors"][0]["reason"], json!("forbidden"));
        // signOut needs the security scope, which this token lacks.
        s.users.get_mut("admin@example.com").unwrap().role = AdminRole::Super;
        let r = s.handle("POST", "/users/alice@example.com/signOut", &[], Some(&auth), None, NOW);
        assert_eq!(r.body.unwrap()["error"]["errors"][0]["reason"], json!("insufficientPermissions"));
    }

    #[test]
    fn members_round_trip() {
        let mut s = state();
        let auth = token(&mut s);
        let path = "/groups/eng@example.com/members/alice@example.com";
        let r = s.handle("GET", path, &[], Some(&auth), None, NOW);
        assert_eq!(r.body.unwrap()["role"], json!("MANAGER"));
        assert_eq!(s.handle("DELETE", path, &[], Some(&auth), None, NOW).status, 204);
        let r = s.handle("GET", path, &[], Some(&auth), None, NOW);
        assert_eq!(
            (r.status, r.body.unwrap()["error"]["message"].clone()),
            (404, json!("Resource Not Found: memberKey"))
        );
        let body = json!({"email": "alice@example.com", "role": "MANAGER", "delivery_settings": "DIGEST"});
        let r = s.handle("POST", "/groups/eng@example.com/members", &[], Some(&auth), Some(&body), NOW);
        assert_eq!(r.status, 200);
        let r = s.handle("POST", "/groups/eng@example.com/members", &[], Some(&auth), Some(&body), NOW);
        assert_eq!(r.status, 409);
    }

    #[test]
    fn member_lists_are_paged() {
        let mut s = state();
        for i in 0..5 {
            let email = format!("u{i}@example.com");
            s.add_user(&email, AdminRole::None);
            s.add_member("big@example.com", &email, "MEMBER", "ALL_MAIL");
        }
        let auth = token(&mut s);
        let mut seen = 0;
        let mut query = vec![("maxResults".to_owned(), "2".to_owned())];
        loop {
            let r = s.handle("GET", "/groups/big@example.com/members", &query, Some(&auth), None, NOW);
            let body = r.body.unwrap();
            seen += body["members"].as_array().unwrap().len();
            let Some(next) = body.get("nextPageToken").and_then(Value::as_str) else { break };
            query = vec![("maxResults".to_owned(), "2".to_owned()), ("pageToken".to_owned(), next.to_owned())];
        }
        assert_eq!(seen, 5);
    }
}
