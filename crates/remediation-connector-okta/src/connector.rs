//! The Okta connector: reads users, group memberships, app assignments and System Log
//! sign-ins, and changes them through the management API.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_connector_http::{
    ApiPath, ClientAuth, ClientCredentials, HttpClient, JwtKey, PageStyle, ProviderError, Request, RetryPolicy,
    Sleeper, StaticToken, StatusCode, ThrottleSignal, TokenOptions, TokenSource, TokioSleeper,
};
use remediation_core::{
    Account, AccountKey, Action, ActionKind, CanonicalTarget, Capability, Clock, Connector, ConnectorError,
    ConnectorErrorKind, Grant, Health, KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange,
    Reversibility, Snapshot, SystemClock, Target, Verification, check_person_key, find_capability, refuse_protected,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{OktaAuth, OktaConfig, OktaError};

/// Grant type of a user's membership of a group (`resource` = group id).
pub const GROUP_MEMBERSHIP: &str = "group_membership";
/// Grant type of a user's assignment to an app (`resource` = app id).
pub const APP_ASSIGNMENT: &str = "app_assignment";
/// Grant type of the user account itself (suspend, sessions, password).
pub const ACCOUNT: &str = "account";

/// Injectable time and waiting, for tests.
#[derive(Clone)]
pub struct OktaParts {
    /// Reads time (token expiry, System Log window).
    pub clock: Arc<dyn Clock>,
    /// Waits out rate limits.
    pub sleeper: Arc<dyn Sleeper>,
}

impl Default for OktaParts {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), sleeper: Arc::new(TokioSleeper) }
    }
}

/// A connector to one Okta org.
pub struct OktaConnector {
    id: String,
    org: String,
    client: HttpClient,
    max_pages: usize,
    log_days: u32,
    clock: Arc<dyn Clock>,
    /// The OAuth scopes the service app asks for; `None` for an API token (SSWS), whose
    /// creator's admin role decides what it may do.
    scopes: Option<Vec<String>>,
    /// Lower-cased ids and logins of users no action may touch.
    protected: HashSet<String>,
}

/// A user as Okta returned it: what every later request and comparison uses.
struct OktaUser {
    /// The immutable `00u…` id: the canonical id, and the only key the sessions, lifecycle,
    /// group and app paths document.
    id: String,
    /// `profile.login`.
    login: Option<String>,
    /// `status`.
    status: String,
}

impl fmt::Debug for OktaConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaConnector")
            .field("id", &self.id)
            .field("org", &self.org)
            .field("client", &self.client)
            .field("protected", &self.protected)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GroupState {
    user: String,
    group: String,
    member: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AppState {
    user: String,
    app: String,
    assigned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AccountState {
    user: String,
    status: String,
    signed_in_since_last_clear: bool,
}

/// Reads an Okta error body: `errorCode`, `errorSummary`, `errorId`, `errorCauses`.
pub fn parse_okta_error(_status: StatusCode, body: &[u8]) -> Option<ProviderError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let summary = v.get("errorSummary")?.as_str()?;
    let mut message = summary.to_owned();
    let causes: Vec<&str> = v
        .get("errorCauses")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(|c| c.get("errorSummary").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    if !causes.is_empty() {
        message = format!("{message}: {}", causes.join("; "));
    }
    let code = v.get("errorCode").and_then(Value::as_str).unwrap_or("");
    let id = v.get("errorId").and_then(Value::as_str);
    let message = match id {
        Some(id) => format!("{code} {message} (errorId {id})"),
        None => format!("{code} {message}"),
    };
    Some(ProviderError::message(message.trim()))
}

fn state<T: for<'de> Deserialize<'de>>(snapshot: &Snapshot) -> Result<T, ConnectorError> {
    serde_json::from_value(snapshot.state.clone())
        .map_err(|e| ConnectorError::permanent(format!("the snapshot is not an Okta snapshot of this target: {e}")))
}

fn to_snapshot<T: Serialize>(s: &T) -> Snapshot {
    Snapshot::new(serde_json::to_value(s).unwrap_or(Value::Null))
}

fn resource(target: &Target, what: &str) -> Result<String, ConnectorError> {
    target.resource.clone().ok_or_else(|| {
        ConnectorError::invalid_target(format!("a {} target needs resource = the {what} id", target.grant_type))
    })
}

/// What a kind does to a snapshot, or why it cannot. The user stays who it was: protection
/// and the canonical id carry over from `before`.
fn expected(kind: &ActionKind, target: &Target, before: &Snapshot) -> Result<(Snapshot, String), ConnectorError> {
    let (after, description) = expected_state(kind, target, before)?;
    Ok((Snapshot { protected: before.protected, canonical: before.canonical.clone(), ..after }, description))
}

/// The state half of [`expected`].
fn expected_state(kind: &ActionKind, target: &Target, before: &Snapshot) -> Result<(Snapshot, String), ConnectorError> {
    let user = &target.identity;
    match (kind, target.grant_type.as_str()) {
        (ActionKind::Revoke, GROUP_MEMBERSHIP) => {
            let s: GroupState = state(before)?;
            if !s.member {
                return Ok((before.clone(), format!("{user} is not a member of group {}; nothing to do.", s.group)));
            }
            if let Some(t) = s.group_type.as_deref().filter(|t| *t != "OKTA_GROUP") {
                return Err(ConnectorError::permanent(format!(
                    "group {} is of type {t}: its members are managed by its source, not through Okta",
                    s.group
                )));
            }
            let group = s.group.clone();
            let after = GroupState { member: false, group_type: None, ..s };
            Ok((to_snapshot(&after), format!("Remove {user} from Okta group {group} (undo: add back).")))
        }
        (ActionKind::Revoke, APP_ASSIGNMENT) => {
            let s: AppState = state(before)?;
            if !s.assigned {
                return Ok((before.clone(), format!("{user} is not assigned to app {}; nothing to do.", s.app)));
            }
            if s.scope.as_deref() == Some("GROUP") {
                return Err(ConnectorError::permanent(format!(
                    "{user} is assigned to app {} through a group; revoke that group membership instead",
                    s.app
                )));
            }
            let app = s.app.clone();
            let after = AppState { assigned: false, scope: None, profile: None, ..s };
            Ok((
                to_snapshot(&after),
                format!(
                    "Unassign {user} from Okta app {app} without e-mail. Lossy: Okta drops the app profile and \
                     credentials; undo re-assigns with the snapshotted profile but not the credentials."
                ),
            ))
        }
        (ActionKind::Suspend, ACCOUNT) => {
            let s: AccountState = state(before)?;
            match s.status.as_str() {
                "SUSPENDED" => Ok((before.clone(), format!("{user} is already suspended; nothing to do."))),
                "ACTIVE" => {
                    let after = AccountState { status: "SUSPENDED".to_owned(), ..s };
                    Ok((to_snapshot(&after), format!("Suspend Okta user {user} (undo: unsuspend).")))
                }
                other => Err(ConnectorError::permanent(format!("Okta suspends only ACTIVE users; {user} is {other}"))),
            }
        }
        (ActionKind::RevokeSessions, ACCOUNT) => {
            let s: AccountState = state(before)?;
            if !s.signed_in_since_last_clear {
                return Ok((
                    before.clone(),
                    format!("{user} has not signed in since their sessions were last cleared; nothing to do."),
                ));
            }
            let after = AccountState { signed_in_since_last_clear: false, ..s };
            Ok((
                to_snapshot(&after),
                format!("End every Okta session of {user} and revoke their OAuth tokens; this cannot be undone."),
            ))
        }
        (ActionKind::ForcePasswordReset, ACCOUNT) => {
            let s: AccountState = state(before)?;
            match s.status.as_str() {
                "PASSWORD_EXPIRED" => {
                    Ok((before.clone(), format!("{user}'s password is already expired; nothing to do.")))
                }
                "ACTIVE" => {
                    let after = AccountState { status: "PASSWORD_EXPIRED".to_owned(), ..s };
                    Ok((
                        to_snapshot(&after),
                        format!(
                            "Expire {user}'s Okta password; they must set a new one at next sign-in. This cannot be undone."
                        ),
                    ))
                }
                other => Err(ConnectorError::permanent(format!(
                    "Okta expires passwords of ACTIVE users only; {user} is {other}"
                ))),
            }
        }
        _ => Err(ConnectorError::unsupported(format!("Okta cannot {} a {}", kind.name(), target.grant_type))),
    }
}

impl OktaConnector {
    /// A connector for `config`, reading its secret from the environment or a file.
    pub fn new(config: &OktaConfig, parts: OktaParts) -> Result<Self, OktaError> {
        let org = config.org_url.trim_end_matches('/').to_owned();
        if !(org.starts_with("https://") || org.starts_with("http://")) {
            return Err(OktaError::Config { field: "org_url", reason: format!("{org:?} is not an http(s) URL") });
        }
        if config.page_size == 0 || config.max_pages == 0 {
            return Err(OktaError::Config {
                field: "page_size",
                reason: "page_size and max_pages must be positive".to_owned(),
            });
        }
        let setup = |source| OktaError::Setup { id: config.id.clone(), source };
        let auth: Arc<dyn TokenSource> = match &config.auth {
            OktaAuth::Ssws { token } => Arc::new(StaticToken::ssws(token.load().map_err(setup)?)),
            OktaAuth::PrivateKeyJwt { client_id, key_id, private_key, scopes } => {
                let key = JwtKey::from_rsa_pem(&private_key.load().map_err(setup)?, key_id.clone()).map_err(setup)?;
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                Arc::new(
                    ClientCredentials::new(
                        &format!("{org}/oauth2/v1/token"),
                        client_id.clone(),
                        ClientAuth::PrivateKeyJwt(key),
                        &scopes,
                        Arc::clone(&parts.clock),
                        TokenOptions { allow_insecure_http: config.allow_insecure_http, ..TokenOptions::default() },
                    )
                    .map_err(setup)?,
                )
            }
        };
        let retry = RetryPolicy::new(ThrottleSignal::OktaRateLimitReset)
            .with_max_wait(Duration::from_secs(config.max_retry_wait_secs));
        let client = HttpClient::builder(format!("{org}/api/v1"))
            .allow_insecure_http(config.allow_insecure_http)
            .auth(auth)
            .retry(retry)
            .sleeper(parts.sleeper)
            .clock(Arc::clone(&parts.clock))
            .error_parser(Arc::new(parse_okta_error))
            .request_timeout(Duration::from_secs(config.request_timeout_secs))
            .default_header("accept", "application/json")
            .build()
            .map_err(setup)?;
        Ok(Self {
            id: config.id.clone(),
            org,
            client,
            max_pages: usize::try_from(config.max_pages).unwrap_or(usize::MAX),
            log_days: config.session_log_days,
            clock: parts.clock,
            scopes: match &config.auth {
                OktaAuth::Ssws { .. } => None,
                OktaAuth::PrivateKeyJwt { scopes, .. } => Some(scopes.clone()),
            },
            // Logins are case-insensitive at Okta; ids are compared the same way, harmlessly.
            protected: config.protected.iter().map(|p| p.trim().to_lowercase()).collect(),
        })
    }

    fn require(&self, action: &Action) -> Result<Capability, ConnectorError> {
        find_capability(&self.capabilities(), action.kind.name(), &action.target).ok_or_else(|| {
            ConnectorError::unsupported(format!(
                "the Okta connector cannot {} a {}",
                action.kind.name(),
                action.target.grant_type
            ))
        })
    }

    /// Resolves the target's identity (an id, a login or a login shortname: only this read
    /// accepts all three) to the user Okta stores.
    async fn resolve(&self, identity: &str) -> Result<(OktaUser, Vec<String>), ConnectorError> {
        let r = self.client.send(Request::get(ApiPath::new("/users/{}", [identity]))).await?;
        let ids = r.request_ids().to_vec();
        let v: Value = r.json()?;
        let id = v["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ConnectorError::permanent(format!("Okta answered a read of user {identity} without an id")))?
            .to_owned();
        let login = v["profile"]["login"].as_str().map(str::to_owned);
        let status = v["status"].as_str().unwrap_or("UNKNOWN").to_owned();
        Ok((OktaUser { id, login, status }, ids))
    }

    /// The ids of every group `okta_id` belongs to (listUserGroups, following `Link` pages);
    /// `None` when there are more than `max_pages` pages, as a partial list would hide some.
    async fn groups_of(&self, okta_id: &str) -> Result<Option<Vec<String>>, ConnectorError> {
        let first = Request::get(ApiPath::new("/users/{}/groups", [okta_id]));
        let pages = self.client.pages(first, PageStyle::Link, self.max_pages, |_| false).await?;
        if pages.truncated {
            tracing::warn!(
                connector = %self.id,
                user = okta_id,
                max_pages = self.max_pages,
                "the user's groups span more pages than max_pages; reporting them as unknown"
            );
            return Ok(None);
        }
        Ok(Some(pages.items.iter().filter_map(|g| g["id"].as_str()).map(str::to_owned).collect()))
    }

    /// Whether `protected` names the user, by id or login.
    fn is_protected(&self, user: &OktaUser) -> bool {
        std::iter::once(&user.id).chain(&user.login).any(|n| self.protected.contains(&n.to_lowercase()))
    }

    /// Reads `target`; returns the snapshot, the resolved `00u…` id and the request ids of
    /// the reads.
    async fn read(&self, target: &Target) -> Result<(Snapshot, String, Vec<String>), ConnectorError> {
        if !matches!(target.grant_type.as_str(), GROUP_MEMBERSHIP | APP_ASSIGNMENT | ACCOUNT) {
            return Err(ConnectorError::unsupported(format!(
                "the Okta connector has no grant type {}",
                target.grant_type
            )));
        }
        let (okta_user, mut ids) = self.resolve(&target.identity).await?;
        let (state, more) = self.read_state(target, &okta_user).await?;
        ids.extend(more);
        let canonical = CanonicalTarget { identity: okta_user.id.clone(), resource: target.resource.clone() };
        let snapshot = Snapshot { protected: self.is_protected(&okta_user), canonical: Some(canonical), ..state };
        Ok((snapshot, okta_user.id, ids))
    }

    /// Reads the state of `target`, whose user is `okta_user`, addressing the user by id.
    async fn read_state(
        &self,
        target: &Target,
        okta_user: &OktaUser,
    ) -> Result<(Snapshot, Vec<String>), ConnectorError> {
        let user = target.identity.as_str();
        let okta_id = okta_user.id.as_str();
        match target.grant_type.as_str() {
            GROUP_MEMBERSHIP => {
                let group = resource(target, "group")?;
                // Okta's management API description (listUserGroups, `GET /api/v1/users/{id}/groups`
                // in okta-management-openapi-spec `dist/current/management-minimal.yaml`) declares no
                // query parameters for this call, so none is sent; a `Link: rel="next"` header is
                // still followed should the org page the answer.
                let first = Request::get(ApiPath::new("/users/{}/groups", [okta_id]));
                let pages =
                    self.client.pages(first, PageStyle::Link, self.max_pages, |g| g["id"] == group.as_str()).await?;
                let found = pages.items.last().filter(|g| g["id"] == group.as_str());
                if found.is_none() && pages.truncated {
                    return Err(ConnectorError::permanent(format!(
                        "{user} belongs to more than {} pages of groups; raise max_pages to search further",
                        self.max_pages
                    )));
                }
                let s = GroupState {
                    user: user.to_owned(),
                    group,
                    member: found.is_some(),
                    group_type: found.and_then(|g| g["type"].as_str()).map(str::to_owned),
                };
                Ok((to_snapshot(&s), pages.request_ids))
            }
            APP_ASSIGNMENT => {
                let app = resource(target, "app")?;
                let r = self
                    .client
                    .send_raw(Request::get(ApiPath::new("/apps/{}/users/{}", [app.as_str(), okta_id])))
                    .await?;
                let ids = r.request_ids().to_vec();
                let s = if r.status().is_success() {
                    let v: Value = r.json()?;
                    AppState {
                        user: user.to_owned(),
                        app,
                        assigned: true,
                        scope: v["scope"].as_str().map(str::to_owned),
                        profile: Some(v.get("profile").cloned().unwrap_or_else(|| json!({}))),
                    }
                } else if r.status() == StatusCode::NOT_FOUND {
                    // The user exists (it was just resolved): not assigned.
                    AppState { user: user.to_owned(), app, assigned: false, scope: None, profile: None }
                } else {
                    return Err(self.client.error_for(&r));
                };
                Ok((to_snapshot(&s), ids))
            }
            ACCOUNT => {
                let (signed_in, ids) = self.signed_in_since_last_clear(okta_id).await?;
                let s = AccountState {
                    user: user.to_owned(),
                    status: okta_user.status.clone(),
                    signed_in_since_last_clear: signed_in,
                };
                Ok((to_snapshot(&s), ids))
            }
            other => Err(ConnectorError::unsupported(format!("the Okta connector has no grant type {other}"))),
        }
    }

    /// Whether the System Log's latest session event for the user is a sign-in (rather than
    /// a sign-out or an admin clearing their sessions).
    async fn signed_in_since_last_clear(&self, okta_id: &str) -> Result<(bool, Vec<String>), ConnectorError> {
        let since = self.clock.now() - time::Duration::days(i64::from(self.log_days));
        let since = since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let filter = format!(
            "(eventType eq \"user.session.start\" and actor.id eq \"{okta_id}\") or \
             (eventType eq \"user.session.end\" and actor.id eq \"{okta_id}\") or \
             (eventType eq \"user.session.clear\" and target.id eq \"{okta_id}\")"
        );
        let r = self
            .client
            .send(
                Request::get("/logs")
                    .query("since", since)
                    .query("filter", filter)
                    .query("sortOrder", "DESCENDING")
                    .query("limit", "1"),
            )
            .await?;
        let events: Vec<Value> = r.json()?;
        let latest = events.first().and_then(|e| e["eventType"].as_str());
        Ok((latest == Some("user.session.start"), r.request_ids().to_vec()))
    }

    /// An API token acts with its creator's admin roles: reads pass for a read-only admin,
    /// so the roles themselves are checked. `None` when they cannot be read.
    /// What the API token's admin roles say about the `*.manage` permissions: granted for
    /// SUPER_ADMIN or ORG_ADMIN, unknown for a custom role (its permission set is not read) or
    /// when the roles cannot be read, missing otherwise.
    async fn admin_role_grant(&self) -> Result<(Grant, Option<String>), ConnectorError> {
        let me: Value = self.client.send(Request::get("/users/me")).await?.json()?;
        let Some(id) = me["id"].as_str() else {
            return Ok((Grant::Unknown, Some("Okta did not name the API token's user".to_owned())));
        };
        let roles = match self.client.send(Request::get(ApiPath::new("/users/{}/roles", [id]))).await {
            Ok(r) => r.json::<Vec<Value>>()?,
            Err(e) if e.kind == ConnectorErrorKind::Forbidden => {
                return Ok((Grant::Unknown, Some("the API token may not read its own admin roles".to_owned())));
            }
            Err(e) => return Err(e),
        };
        let types: Vec<&str> = roles.iter().filter_map(|r| r["type"].as_str()).collect();
        if types.iter().any(|t| matches!(*t, "SUPER_ADMIN" | "ORG_ADMIN")) {
            return Ok((Grant::Granted, None));
        }
        if types.contains(&"CUSTOM") {
            return Ok((
                Grant::Unknown,
                Some("the API token holds a custom admin role, whose permissions are not read".to_owned()),
            ));
        }
        Ok((Grant::Missing, None))
    }

    /// Writes `action` on the user whose `00u…` id is `okta_id`: these paths document the id,
    /// not a login.
    async fn write(&self, action: &Action, okta_id: &str) -> Result<Vec<String>, ConnectorError> {
        let t = &action.target;
        let user = okta_id;
        let req = match (&action.kind, t.grant_type.as_str()) {
            (ActionKind::Revoke, GROUP_MEMBERSHIP) => {
                Request::delete(ApiPath::new("/groups/{}/users/{}", [resource(t, "group")?.as_str(), user]))
            }
            (ActionKind::Revoke, APP_ASSIGNMENT) => {
                Request::delete(ApiPath::new("/apps/{}/users/{}", [resource(t, "app")?.as_str(), user]))
                    .query("sendEmail", "false")
            }
            // Suspending twice fails (the user is no longer ACTIVE), so a lost response must not
            // be answered by sending it again.
            (ActionKind::Suspend, ACCOUNT) => Request::post(ApiPath::new("/users/{}/lifecycle/suspend", [user])),
            (ActionKind::RevokeSessions, ACCOUNT) => {
                Request::delete(ApiPath::new("/users/{}/sessions", [user])).query("oauthTokens", "true")
            }
            // Expiring an expired password changes nothing: safe to repeat.
            (ActionKind::ForcePasswordReset, ACCOUNT) => {
                Request::post(ApiPath::new("/users/{}/lifecycle/expire_password", [user])).idempotent()
            }
            _ => {
                return Err(ConnectorError::unsupported(format!(
                    "Okta cannot {} a {}",
                    action.kind.name(),
                    t.grant_type
                )));
            }
        };
        let r = self.client.send(req).await?;
        Ok(r.request_ids().to_vec())
    }
}

/// Every (kind, grant type) the connector supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    let cap = Capability::new;
    vec![
        cap(KindName::Revoke, GROUP_MEMBERSHIP, Reversibility::Reversible),
        cap(KindName::Revoke, APP_ASSIGNMENT, Reversibility::Lossy),
        cap(KindName::Suspend, ACCOUNT, Reversibility::Reversible),
        cap(KindName::RevokeSessions, ACCOUNT, Reversibility::Irreversible),
        cap(KindName::ForcePasswordReset, ACCOUNT, Reversibility::Irreversible),
    ]
}

/// Every Okta call the connector makes and the OAuth scope it needs (for an API token, the
/// token's admin role: SUPER_ADMIN or ORG_ADMIN may call them all).
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("GET /users", USERS_READ).or(&[USERS_MANAGE]),
    PermissionNeed::check("GET /groups", "okta.groups.read").or(&[GROUPS_MANAGE]),
    PermissionNeed::check("GET /apps", "okta.apps.read").or(&[APPS_MANAGE]),
    PermissionNeed::check("GET /logs", LOGS_READ),
    PermissionNeed::read(ACCOUNT, "GET /users/{id}", USERS_READ).or(&[USERS_MANAGE]),
    PermissionNeed::read(ACCOUNT, "GET /logs", LOGS_READ),
    // Finding a person's account lists its groups.
    PermissionNeed::read(ACCOUNT, "GET /users/{id}/groups", USERS_READ).or(&[USERS_MANAGE]),
    PermissionNeed::execute(KindName::Suspend, ACCOUNT, "POST /users/{id}/lifecycle/suspend", USERS_MANAGE),
    PermissionNeed::rollback(KindName::Suspend, ACCOUNT, "POST /users/{id}/lifecycle/unsuspend", USERS_MANAGE),
    PermissionNeed::execute(KindName::RevokeSessions, ACCOUNT, "DELETE /users/{id}/sessions", USERS_MANAGE),
    PermissionNeed::execute(
        KindName::ForcePasswordReset,
        ACCOUNT,
        "POST /users/{id}/lifecycle/expire_password",
        USERS_MANAGE,
    ),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /users/{id}", USERS_READ).or(&[USERS_MANAGE]),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /users/{id}/groups", USERS_READ).or(&[USERS_MANAGE]),
    PermissionNeed::execute(KindName::Revoke, GROUP_MEMBERSHIP, "DELETE /groups/{id}/users/{id}", GROUPS_MANAGE),
    PermissionNeed::rollback(KindName::Revoke, GROUP_MEMBERSHIP, "PUT /groups/{id}/users/{id}", GROUPS_MANAGE),
    PermissionNeed::read(APP_ASSIGNMENT, "GET /users/{id}", USERS_READ).or(&[USERS_MANAGE]),
    PermissionNeed::read(APP_ASSIGNMENT, "GET /apps/{id}/users/{id}", "okta.apps.read").or(&[APPS_MANAGE]),
    PermissionNeed::execute(KindName::Revoke, APP_ASSIGNMENT, "DELETE /apps/{id}/users/{id}", APPS_MANAGE),
    PermissionNeed::rollback(KindName::Revoke, APP_ASSIGNMENT, "POST /apps/{id}/users", APPS_MANAGE),
];

const USERS_READ: &str = "okta.users.read";
const USERS_MANAGE: &str = "okta.users.manage";
const GROUPS_MANAGE: &str = "okta.groups.manage";
const APPS_MANAGE: &str = "okta.apps.manage";
const LOGS_READ: &str = "okta.logs.read";

#[async_trait]
impl Connector for OktaConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        // The detail names the call so an operator can replay it (and see which permission or
        // endpoint is at fault) rather than guess from a bare status.
        match self.client.send(Request::get("/users").query("limit", "1")).await {
            Ok(_) => Ok(Health { healthy: true, detail: format!("Okta org {} answers", self.org) }),
            Err(e) => Ok(Health {
                healthy: false,
                detail: format!("Okta org {}: GET /api/v1/users?limit=1 failed: {e}", self.org),
            }),
        }
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// Each `*.read` permission is judged by a one-item listing (403: missing). A `*.manage`
    /// one is missing with its listing; otherwise a service app holds it when it asked for the
    /// scope (Okta issues no token for a scope it does not grant), and an API token when its
    /// admin role is SUPER_ADMIN or ORG_ADMIN.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let mut refused = Vec::new();
        for (path, family) in
            [("/users", "okta.users"), ("/groups", "okta.groups"), ("/apps", "okta.apps"), ("/logs", "okta.logs")]
        {
            match self.client.send(Request::get(path).query("limit", "1")).await {
                Ok(_) => {}
                Err(e) if e.kind == ConnectorErrorKind::Forbidden => refused.push(family),
                Err(e) => return Err(e),
            }
        }
        let (manage, reason) = match &self.scopes {
            Some(_) => (Grant::Granted, None),
            None => self.admin_role_grant().await?,
        };
        let p = Permissions::judge(PERMISSION_MAP, |need| {
            let family = need.permission.rsplit_once('.').map_or(need.permission, |(f, _)| f);
            if refused.contains(&family) {
                return Grant::Missing;
            }
            match (need.permission.ends_with(".manage"), &self.scopes) {
                (false, _) => Grant::Granted,
                (true, Some(scopes)) if scopes.iter().any(|s| s == need.permission) => Grant::Granted,
                (true, Some(_)) => Grant::Missing,
                (true, None) => manage,
            }
        });
        Ok(match reason {
            Some(r) => p.because(r),
            None => p,
        })
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.read(target).await.map(|(s, _, _)| s)
    }

    /// `GET /users/{key}` (Okta answers an id, a login or a login's short name there), then
    /// keeps the user only when its `profile.login` equals the key (case-insensitively) or,
    /// for a link, its id does: never `profile.email` or `secondEmail`, which the user may
    /// set, nor a short name that would match `alice@` of any domain. Groups are the ids
    /// listUserGroups answers; sessions cannot be counted through the API.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        let value = key.value();
        check_person_key(value).map_err(ConnectorError::invalid_target)?;
        let user: Value = match self.client.send(Request::get(ApiPath::new("/users/{}", [value]))).await {
            Ok(r) => r.json()?,
            Err(e) if e.kind == ConnectorErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(id) = user["id"].as_str().filter(|id| !id.is_empty()) else {
            return Err(ConnectorError::permanent(format!("Okta answered a read of user {value} without an id")));
        };
        let login = user["profile"]["login"].as_str().unwrap_or_default();
        let matched_by = match key {
            AccountKey::Link(_) if id == value => "id",
            _ if !login.is_empty() && login.eq_ignore_ascii_case(value) => "login",
            _ => return Ok(None),
        };
        let okta_user = OktaUser {
            id: id.to_owned(),
            login: Some(login.to_owned()),
            status: user["status"].as_str().unwrap_or("UNKNOWN").to_owned(),
        };
        let profile = &user["profile"];
        let display_name = profile["displayName"].as_str().map(str::to_owned).or_else(|| {
            match (profile["firstName"].as_str(), profile["lastName"].as_str()) {
                (Some(first), Some(last)) => Some(format!("{first} {last}")),
                _ => None,
            }
        });
        Ok(Some(Account {
            groups: self.groups_of(id).await?,
            protected: self.is_protected(&okta_user),
            id: okta_user.id,
            login: login.to_owned(),
            matched_by: matched_by.to_owned(),
            status: Some(okta_user.status),
            display_name,
            sessions: None,
        }))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.require(action)?;
        let (expected_after, description) = expected(&action.kind, &action.target, before)?;
        Ok(PlannedChange { expected_after, description })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.require(action)?;
        let (current, okta_id, mut request_ids) = self.read(&action.target).await?;
        refuse_protected(&action.target, &current)?;
        let (after, _) = expected(&action.kind, &action.target, &current)?;
        if after == current {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids });
        }
        request_ids.extend(self.write(action, &okta_id).await?);
        tracing::info!(connector = %self.id, kind = %action.kind.name(), target = %action.target, "okta change applied");
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids })
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.require(action)?;
        let observed = self.snapshot(&action.target).await?;
        Ok(Verification { matches: observed == planned.expected_after, observed })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let cap = self.require(action)?;
        if cap.reversibility == Reversibility::Irreversible {
            return Err(ConnectorError::permanent(format!("{} on Okta cannot be undone", action.kind.name())));
        }
        let t = &action.target;
        let (current, okta_id, mut request_ids) = self.read(t).await?;
        if &current == before {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids });
        }
        let user = okta_id.as_str();
        let req = match (&action.kind, t.grant_type.as_str()) {
            (ActionKind::Revoke, GROUP_MEMBERSHIP) => {
                Request::put(ApiPath::new("/groups/{}/users/{}", [resource(t, "group")?.as_str(), user]))
            }
            (ActionKind::Revoke, APP_ASSIGNMENT) => {
                let s: AppState = state(before)?;
                if !s.assigned {
                    return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids });
                }
                // Credentials are never restored: they were not (and must not be) snapshotted.
                let body = json!({ "id": okta_id, "scope": "USER", "profile": s.profile.unwrap_or_else(|| json!({})) });
                Request::post(ApiPath::new("/apps/{}/users", [resource(t, "app")?])).json(body).idempotent()
            }
            (ActionKind::Suspend, ACCOUNT) => {
                let s: AccountState = state(&current)?;
                if s.status != "SUSPENDED" {
                    return Err(ConnectorError::new(
                        ConnectorErrorKind::Conflict,
                        format!("{} is {}, not SUSPENDED; unsuspending would not restore it", t.identity, s.status),
                    ));
                }
                Request::post(ApiPath::new("/users/{}/lifecycle/unsuspend", [user]))
            }
            _ => {
                return Err(ConnectorError::unsupported(format!(
                    "Okta cannot undo {} on a {}",
                    action.kind.name(),
                    t.grant_type
                )));
            }
        };
        let r = self.client.send(req).await?;
        request_ids.extend(r.request_ids().iter().cloned());
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids })
    }
}
