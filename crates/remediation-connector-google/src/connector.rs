//! [`GoogleConnector`]: the [`Connector`] implementation over the Directory API.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use remediation_core::{
    Account, AccountKey, Action, ActionKind, CanonicalTarget, Capability, Connector, ConnectorError,
    ConnectorErrorKind, Grant, Health, KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange,
    Reversibility, Snapshot, Target, Verification, check_person_key, require_capability,
};
use serde_json::{Value, json};

use remediation_connector_http::{HttpClient, JwtBearer, RetryPolicy, ThrottleSignal, TokenOptions};
use remediation_core::{Clock, SystemClock, refuse_protected};

use crate::api::{self, ApiRequest, ApiResponse};
use crate::config::{GoogleConfig, SCOPES, load_key};
use crate::error::{GoogleError, from_response};
use crate::state::{self, ACCOUNT, GROUP_MEMBERSHIP};

/// Every (kind, grant type) the connector supports.
pub fn capabilities() -> Vec<Capability> {
    let cap = |kind, grant_type: &str, reversibility, observable| Capability {
        kind,
        grant_type: grant_type.to_owned(),
        reversibility,
        observable,
    };
    vec![
        cap(KindName::Revoke, GROUP_MEMBERSHIP, Reversibility::Reversible, true),
        cap(KindName::Suspend, ACCOUNT, Reversibility::Reversible, true),
        cap(KindName::RevokeSessions, ACCOUNT, Reversibility::Irreversible, false),
        cap(KindName::ForcePasswordReset, ACCOUNT, Reversibility::Reversible, true),
    ]
}

/// What the connector protects besides what the provider says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Protection {
    /// Lower-cased emails of protected users and groups (always includes the delegated admin).
    pub(crate) identities: HashSet<String>,
    /// Whether super administrators are protected.
    pub(crate) admins: bool,
}

impl Protection {
    fn covers(&self, name: &str) -> bool {
        self.identities.contains(&name.to_lowercase())
    }

    /// Whether any name the provider returned for one object (its id, primary email and
    /// aliases) is protected: the caller's spelling of the target does not matter.
    fn covers_any<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        names.into_iter().any(|n| self.covers(n))
    }
}

/// Every name Google returned for a user or group: its immutable `id`, its primary email
/// (`primaryEmail` for users, `email` for groups and members) and its aliases.
fn names(object: &Value) -> Vec<&str> {
    let mut out: Vec<&str> =
        ["id", "primaryEmail", "email"].iter().filter_map(|k| object.get(*k).and_then(Value::as_str)).collect();
    for list in ["aliases", "nonEditableAliases"] {
        if let Some(a) = object.get(list).and_then(Value::as_array) {
            out.extend(a.iter().filter_map(Value::as_str));
        }
    }
    out
}

/// The immutable `id` Google returned for an object, when it did.
fn object_id(object: &Value) -> Option<String> {
    object.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// A Google Workspace connector. See the crate documentation for its capabilities.
pub struct GoogleConnector {
    id: String,
    admin: String,
    client: HttpClient,
    protection: Protection,
    /// Idempotency keys of sign-outs done by this process: a sign-out leaves nothing to read
    /// back, so this is how a repeated `execute` knows it is done.
    signed_out: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for GoogleConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleConnector")
            .field("id", &self.id)
            .field("admin", &self.admin)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl GoogleConnector {
    /// A connector named `id` from `config`: reads the key file, and signs and caches
    /// tokens on the system clock.
    pub fn new(id: impl Into<String>, config: &GoogleConfig) -> Result<Self, GoogleError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let auth = Self::token_source(config, Arc::clone(&clock))?;
        let client = HttpClient::builder(config.api_base.clone())
            .allow_insecure_http(config.allow_insecure_http)
            .auth(Arc::new(auth))
            .retry(RetryPolicy::new(ThrottleSignal::Google))
            .clock(clock)
            .build()
            .map_err(|source| GoogleError::Client { source })?;
        Self::with_client(id, config, client)
    }

    /// The token source `config` describes: a JWT-bearer grant for the key file's service
    /// account, impersonating `config.admin`, for [`SCOPES`]. For embedders who build their
    /// own [`HttpClient`] (a custom sleeper, clock or timeouts) and pass it to
    /// [`GoogleConnector::with_client`].
    pub fn token_source(config: &GoogleConfig, clock: Arc<dyn Clock>) -> Result<JwtBearer, GoogleError> {
        if config.admin.trim().is_empty() {
            return Err(GoogleError::Config("`admin` must name the administrator to act as".to_owned()));
        }
        let key = load_key(&config.credentials_file)?;
        JwtBearer::service_account(
            &key,
            config.token_url.as_deref(),
            Some(config.admin.clone()),
            &SCOPES,
            clock,
            TokenOptions { allow_insecure_http: config.allow_insecure_http, ..TokenOptions::default() },
        )
        .map_err(|source| GoogleError::InvalidKey { path: config.credentials_file.clone(), source })
    }

    /// A connector named `id` over `client`, which must point at the Directory API base and
    /// carry the service account's token source.
    pub fn with_client(id: impl Into<String>, config: &GoogleConfig, client: HttpClient) -> Result<Self, GoogleError> {
        let admin = config.admin.clone();
        let mut identities: HashSet<String> = config.protected.iter().map(|p| p.to_lowercase()).collect();
        identities.insert(admin.to_lowercase());
        Ok(Self {
            id: id.into(),
            admin,
            client,
            protection: Protection { identities, admins: config.protect_admins },
            signed_out: Mutex::new(HashSet::new()),
        })
    }

    async fn send(&self, request: ApiRequest) -> Result<ApiResponse, ConnectorError> {
        tracing::debug!(connector = %self.id, method = %request.method, path = %request.path, "directory request");
        let resp = self.client.send_raw(request.into_request()).await?;
        let body = if resp.body().is_empty() { Value::Null } else { resp.json::<Value>().unwrap_or(Value::Null) };
        Ok(ApiResponse { status: resp.status().as_u16(), body, request_id: resp.request_id().map(str::to_owned) })
    }

    /// Sends a write and turns a non-success into an error; returns the request id.
    async fn write(&self, request: ApiRequest, what: &str) -> Result<Option<String>, ConnectorError> {
        let resp = self.send(request).await?;
        if resp.is_success() { Ok(resp.request_id) } else { Err(from_response(&resp, what)) }
    }

    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        require_capability(&capabilities(), "the Google Workspace connector", action)
    }

    async fn read(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        match target.grant_type.as_str() {
            ACCOUNT => {
                let user = &target.identity;
                let resp = self.send(api::get_user(user)).await?;
                if !resp.is_success() {
                    return Err(from_response(&resp, &format!("read Google user {user}")));
                }
                let state = state::account(user, &resp.body);
                let is_admin = state.get("admin").and_then(Value::as_bool).unwrap_or(false);
                // The API accepts a primary email, an alias or the numeric id as the user key;
                // protection compares every name the user has, and limits key on its id.
                let protected = self.protection.covers(user)
                    || self.protection.covers_any(names(&resp.body))
                    || (self.protection.admins && is_admin);
                let canonical = object_id(&resp.body).map(CanonicalTarget::identity);
                Ok(Snapshot { canonical, protected, state })
            }
            GROUP_MEMBERSHIP => {
                let member = &target.identity;
                let group = target.resource.as_deref().ok_or_else(|| {
                    ConnectorError::invalid_target("a group_membership target needs the group's email as its resource")
                })?;
                let resp = self.send(api::get_member(group, member)).await?;
                let (state, member_names) = match resp.status {
                    200..=299 => (
                        state::membership(group, member, Some(&resp.body)),
                        names(&resp.body).into_iter().map(str::to_owned).collect::<Vec<_>>(),
                    ),
                    404 => {
                        // Not a member, or no such group: only the group read tells which.
                        let g = self.send(api::get_group(group)).await?;
                        if !g.is_success() {
                            return Err(from_response(&g, &format!("read Google group {group}")));
                        }
                        (state::membership(group, member, None), Vec::new())
                    }
                    _ => return Err(from_response(&resp, &format!("read membership of {member} in {group}"))),
                };
                // A user member is read as a user too, member or not: its id is the canonical id
                // (members.get stops answering once the member is removed), and its aliases
                // are names a protected entry may use. A group or outside address is no user.
                let u = self.send(api::get_user(member)).await?;
                let (user_names, user_id) = match u.status {
                    200..=299 => {
                        (names(&u.body).into_iter().map(str::to_owned).collect::<Vec<_>>(), object_id(&u.body))
                    }
                    404 => (Vec::new(), None),
                    _ => return Err(from_response(&u, &format!("read Google user {member}"))),
                };
                // The member key may be an alias or an id: every name Google returned for the
                // member is compared.
                let protected = self.protection.covers(member)
                    || self.protection.covers_any(member_names.iter().chain(&user_names).map(String::as_str))
                    || self.protection.covers(group);
                let canonical = user_id.map(CanonicalTarget::identity);
                Ok(Snapshot { canonical, protected, state })
            }
            other => {
                Err(ConnectorError::unsupported(format!("the Google Workspace connector has no grant type {other}")))
            }
        }
    }

    fn applied(ids: Vec<Option<String>>) -> Outcome {
        Outcome { status: OutcomeStatus::Applied, request_ids: ids.into_iter().flatten().collect() }
    }

    fn already() -> Outcome {
        Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() }
    }

    fn sign_out_done(&self, key: &str) -> bool {
        self.signed_out.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }
}

const USER: &str = "https://www.googleapis.com/auth/admin.directory.user";
const USER_SECURITY: &str = "https://www.googleapis.com/auth/admin.directory.user.security";
const MEMBER: &str = "https://www.googleapis.com/auth/admin.directory.group.member";
const GROUP_READ: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";
/// The impersonated user must be an administrator whose role covers the calls.
const ADMIN_ROLE: &str = "administrator role of the impersonated `admin`";

/// Every Directory API call the connector makes and the OAuth scope (delegated domain-wide to
/// the service account) it needs; the impersonated admin's role must allow each call too.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("GET /users/{admin}", ADMIN_ROLE),
    PermissionNeed::read(ACCOUNT, "GET /users/{userKey}", USER),
    PermissionNeed::execute(KindName::Suspend, ACCOUNT, "PATCH /users/{userKey}", USER),
    PermissionNeed::rollback(KindName::Suspend, ACCOUNT, "PATCH /users/{userKey}", USER),
    PermissionNeed::execute(KindName::ForcePasswordReset, ACCOUNT, "PATCH /users/{userKey}", USER),
    PermissionNeed::rollback(KindName::ForcePasswordReset, ACCOUNT, "PATCH /users/{userKey}", USER),
    PermissionNeed::execute(KindName::RevokeSessions, ACCOUNT, "POST /users/{userKey}/signOut", USER_SECURITY),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /users/{userKey}", USER),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /groups/{groupKey}/members/{memberKey}", MEMBER),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /groups/{groupKey}", GROUP_READ),
    PermissionNeed::execute(
        KindName::Revoke,
        GROUP_MEMBERSHIP,
        "DELETE /groups/{groupKey}/members/{memberKey}",
        MEMBER,
    ),
    PermissionNeed::rollback(KindName::Revoke, GROUP_MEMBERSHIP, "POST /groups/{groupKey}/members", MEMBER),
];

#[async_trait]
impl Connector for GoogleConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        let resp = self.send(api::get_user(&self.admin)).await?;
        if resp.is_success() {
            Ok(Health { healthy: true, detail: format!("Directory API answers; acting as {}", self.admin) })
        } else {
            let e = from_response(&resp, &format!("read the delegated admin {}", self.admin));
            Ok(Health { healthy: false, detail: e.to_string() })
        }
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// Google refuses a token for the whole scope list when one scope is not delegated, so a
    /// token means every scope is granted. The impersonated admin is read next: 403 means it
    /// is no administrator; `isAdmin` (super administrator) holds every privilege; a delegated
    /// admin's role privileges cannot be read with these scopes and stay unknown.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let admin = match self.send(api::get_user(&self.admin)).await {
            Ok(resp) if resp.is_success() => match resp.body["isAdmin"].as_bool() {
                Some(true) => Ok(Grant::Granted),
                _ => Err(format!(
                    "{} is a delegated administrator, whose role privileges cannot be read; a write its role lacks is refused",
                    self.admin
                )),
            },
            Ok(resp) if resp.status == 403 => Ok(Grant::Missing),
            Ok(resp) => return Err(from_response(&resp, &format!("read the delegated admin {}", self.admin))),
            Err(e) if e.kind == ConnectorErrorKind::Unauthenticated && e.message.contains("unauthorized_client") => {
                let p = Permissions::judge(PERMISSION_MAP, |need| match need.permission {
                    ADMIN_ROLE => Grant::Unknown,
                    _ => Grant::Missing,
                });
                return Ok(p.because("without a token the admin cannot be read"));
            }
            Err(e) => return Err(e),
        };
        let p = Permissions::judge(PERMISSION_MAP, |need| match (need.permission, &admin) {
            (ADMIN_ROLE, Ok(grant)) => *grant,
            (ADMIN_ROLE, Err(_)) => Grant::Unknown,
            _ => Grant::Granted,
        });
        Ok(match admin {
            Err(reason) => p.because(reason),
            Ok(_) => p,
        })
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.read(target).await
    }

    /// `users.get` with the key (Google answers a primary email, an alias or the numeric id
    /// there), then keeps the user only when its `primaryEmail` or one of its `aliases` (both
    /// set by the domain's admins) equals the key, case-insensitively, or, for a link, its id
    /// does: never `recoveryEmail` or another address the user sets. The connector lists no
    /// user's groups, so they are not reported; sessions are not counted.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        let value = key.value();
        check_person_key(value).map_err(ConnectorError::invalid_target)?;
        let resp = self.send(api::get_user(value)).await?;
        match resp.status {
            200..=299 => {}
            404 => return Ok(None),
            _ => return Err(from_response(&resp, &format!("read Google user {value}"))),
        }
        let user = &resp.body;
        let Some(id) = object_id(user).filter(|id| !id.is_empty()) else {
            return Err(ConnectorError::permanent(format!("Google answered a read of user {value} without an id")));
        };
        let primary = user["primaryEmail"].as_str().unwrap_or_default();
        let is = |name: &str| !name.is_empty() && name.eq_ignore_ascii_case(value);
        let aliases = user["aliases"].as_array().into_iter().flatten().filter_map(Value::as_str);
        let matched_by = if matches!(key, AccountKey::Link(_)) && id == value {
            "id"
        } else if is(primary) {
            "primary_email"
        } else if aliases.clone().any(is) {
            "alias"
        } else {
            return Ok(None);
        };
        let is_admin = user["isAdmin"].as_bool().unwrap_or(false);
        let name = &user["name"];
        let display_name = name["fullName"].as_str().map(str::to_owned).or_else(|| {
            match (name["givenName"].as_str(), name["familyName"].as_str()) {
                (Some(given), Some(family)) => Some(format!("{given} {family}")),
                _ => None,
            }
        });
        Ok(Some(Account {
            protected: self.protection.covers_any(names(user)) || (self.protection.admins && is_admin),
            login: primary.to_owned(),
            matched_by: matched_by.to_owned(),
            status: Some(if user["suspended"].as_bool().unwrap_or(false) { "suspended" } else { "active" }.to_owned()),
            display_name,
            groups: None,
            sessions: None,
            id,
        }))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        let (state, description) = state::expected_after(&action.kind, &before.state)?;
        Ok(PlannedChange {
            expected_after: Snapshot { canonical: before.canonical.clone(), protected: before.protected, state },
            description,
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        let target = &action.target;
        if matches!(action.kind, ActionKind::RevokeSessions) && self.sign_out_done(&action.idempotency_key) {
            return Ok(Self::already());
        }
        let live = self.read(target).await?;
        refuse_protected(target, &live)?;
        let user = target.identity.as_str();
        match &action.kind {
            ActionKind::Revoke => {
                if !state::flag(&live.state, "present")? {
                    return Ok(Self::already());
                }
                let group = target.resource.as_deref().unwrap_or_default();
                let resp = self.send(api::delete_member(group, user)).await?;
                match resp.status {
                    200..=299 => Ok(Self::applied(vec![resp.request_id])),
                    404 => Ok(Self::already()),
                    _ => Err(from_response(&resp, &format!("remove {user} from {group}"))),
                }
            }
            ActionKind::Suspend => {
                if state::flag(&live.state, "suspended")? {
                    return Ok(Self::already());
                }
                let id =
                    self.write(api::patch_user(user, json!({"suspended": true})), &format!("suspend {user}")).await?;
                Ok(Self::applied(vec![id]))
            }
            ActionKind::ForcePasswordReset => {
                if state::flag(&live.state, "change_password_at_next_login")? {
                    return Ok(Self::already());
                }
                let body = json!({"changePasswordAtNextLogin": true});
                let id = self.write(api::patch_user(user, body), &format!("require a new password for {user}")).await?;
                Ok(Self::applied(vec![id]))
            }
            ActionKind::RevokeSessions => {
                let id = self.write(api::sign_out(user), &format!("sign {user} out")).await?;
                self.signed_out.lock().unwrap_or_else(|p| p.into_inner()).insert(action.idempotency_key.clone());
                Ok(Self::applied(vec![id]))
            }
            other => {
                Err(ConnectorError::unsupported(format!("{other} is not supported by the Google Workspace connector")))
            }
        }
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.capability(action)?;
        let observed = self.read(&action.target).await?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let cap = self.capability(action)?;
        if cap.reversibility == Reversibility::Irreversible {
            return Err(ConnectorError::permanent(format!("{} cannot be undone in Google Workspace", action.kind)));
        }
        let target = &action.target;
        let live = self.read(target).await?;
        if live.state == before.state {
            return Ok(Self::already());
        }
        let user = target.identity.as_str();
        let want = &before.state;
        let id = match &action.kind {
            ActionKind::Revoke => {
                let group = target.resource.as_deref().unwrap_or_default();
                let role = want.get("role").and_then(Value::as_str).unwrap_or("MEMBER");
                let delivery = want.get("delivery_settings").and_then(Value::as_str);
                let what = format!("restore {user} in {group}");
                if !state::flag(want, "present")? {
                    self.write(api::delete_member(group, user), &what).await?
                } else if state::flag(&live.state, "present")? {
                    self.write(api::patch_member(group, user, role, delivery), &what).await?
                } else {
                    let email = want.get("email").and_then(Value::as_str).unwrap_or(user);
                    self.write(api::insert_member(group, email, role, delivery), &what).await?
                }
            }
            ActionKind::Suspend => {
                let body = json!({"suspended": state::flag(want, "suspended")?});
                self.write(api::patch_user(user, body), &format!("restore suspension of {user}")).await?
            }
            ActionKind::ForcePasswordReset => {
                let body = json!({"changePasswordAtNextLogin": state::flag(want, "change_password_at_next_login")?});
                self.write(api::patch_user(user, body), &format!("restore the password flag of {user}")).await?
            }
            other => {
                return Err(ConnectorError::unsupported(format!(
                    "{other} is not supported by the Google Workspace connector"
                )));
            }
        };
        Ok(Self::applied(vec![id]))
    }
}
