//! [`EntraConnector`]: the [`Connector`] implementation over Microsoft Graph v1.0.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_http::{
    ApiPath, ClientAuth, ClientCredentials, HttpClient, HttpClientBuilder, JwtKey, PageStyle, ProviderError, Request,
    Response, RetryPolicy, Sleeper, ThrottleSignal, TokenOptions, TokenSource, TokioSleeper,
};
use remediation_core::{
    Account, AccountKey, Action, ActionKind, CanonicalTarget, Capability, Clock, Connector, ConnectorError,
    ConnectorErrorKind, Health, KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange,
    Reversibility, Snapshot, SystemClock, Target, Verification, check_person_key, require_capability,
};
use serde_json::Value;

use crate::config::{Credential, EntraConfig, x5t};
use crate::error::EntraError;
use crate::graph::{
    self, AppRoleAssignment, Group, LookedUpUser, RoleAssignment, RoleAssignmentScheduleInstance, User,
};
use crate::permissions;
use crate::state::{
    self, AccountState, AppRoleState, DirectoryRoleState, MembershipState, SessionsValidFrom, State, Subject,
    grant_type,
};

/// Most pages read from one listing (999 items each).
const MAX_PAGES: usize = 50;

/// Reads `verify` makes before it calls a difference real: Graph replicates writes with a
/// delay, so a read right after a write may still show the old state.
const VERIFY_READS: u32 = 5;

/// The wait between those reads.
const VERIFY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// A connector for one Microsoft Entra ID tenant. See the crate documentation for its
/// capabilities and configuration.
///
/// Cheap to clone; the token cache is shared between clones.
#[derive(Clone)]
pub struct EntraConnector {
    id: String,
    graph_url: String,
    protected: BTreeSet<String>,
    client: HttpClient,
    token: Arc<dyn TokenSource>,
    sleeper: Arc<dyn Sleeper>,
}

impl std::fmt::Debug for EntraConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraConnector")
            .field("id", &self.id)
            .field("graph_url", &self.graph_url)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What a live read found besides the normalised state: the ids an undo or a removal needs.
struct Live {
    state: State,
    /// The principal's object id as Graph resolved it (the target may name a user by UPN).
    object_id: String,
    /// The user's principal name as Graph returned it, when the principal is a user that
    /// was read.
    upn: Option<String>,
    /// The group's object id as Graph returned it, for memberships.
    group_id: Option<String>,
    /// The role or app role assignment's id, when assigned.
    assignment: Option<String>,
    request_ids: Vec<String>,
}

impl EntraConnector {
    /// A connector for `config`, reading its credential now. Makes no request.
    pub fn new(config: &EntraConfig) -> Result<Self, EntraError> {
        Self::with_http(config, Arc::new(SystemClock), |b| b)
    }

    /// Like [`new`](Self::new), with `clock` for token expiry and `customize` applied to the
    /// Graph client (a retry policy, a sleeper that does not sleep in tests).
    pub fn with_http(
        config: &EntraConfig,
        clock: Arc<dyn Clock>,
        customize: impl FnOnce(HttpClientBuilder) -> HttpClientBuilder,
    ) -> Result<Self, EntraError> {
        let token_url = config.token_url();
        let auth = match &config.credential {
            Credential::ClientSecret { secret } => ClientAuth::Secret(secret.load()?),
            Credential::Certificate { private_key, thumbprint } => {
                let x5t = x5t(thumbprint).ok_or_else(|| EntraError::Thumbprint { thumbprint: thumbprint.clone() })?;
                ClientAuth::PrivateKeyJwt(JwtKey::from_rsa_pem(&private_key.load()?, None)?.with_x5t(x5t))
            }
        };
        let scope = config.scope();
        let token: Arc<dyn TokenSource> = Arc::new(ClientCredentials::new(
            &token_url,
            config.client_id.clone(),
            auth,
            &[scope.as_str()],
            Arc::clone(&clock),
            TokenOptions { allow_insecure_http: config.allow_insecure_http, ..TokenOptions::default() },
        )?);
        let builder = HttpClient::builder(config.graph_url.clone())
            .allow_insecure_http(config.allow_insecure_http)
            .auth(Arc::clone(&token))
            .clock(clock)
            .default_header("accept", "application/json")
            .retry(RetryPolicy::new(ThrottleSignal::RetryAfter))
            .error_parser(Arc::new(|_status, body: &[u8]| {
                graph::parse_error(body).map(|(message, _)| ProviderError::message(message))
            }));
        let client = customize(builder).build()?;
        Ok(Self {
            id: config.id.clone(),
            graph_url: config.graph_url.trim_end_matches('/').to_owned(),
            protected: config.protected.iter().map(|p| p.to_ascii_lowercase()).collect(),
            client,
            token,
            sleeper: Arc::new(TokioSleeper),
        })
    }

    /// Waits between the read-backs of `verify` through `sleeper` (the tokio timer by
    /// default); tests pass one that does not sleep.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The capability for the action, or `Unsupported` naming what is supported. Makes no
    /// request.
    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        require_capability(&capabilities(), "Entra ID", action)
    }

    /// Whether the target names a protected principal or group, by the identity it gives or
    /// by what Graph resolved it to: the object id and the user principal name, so neither a
    /// UPN gets around a protected object id nor an object id around a protected UPN.
    fn is_protected(&self, subject: Subject<'_>, live: &Live) -> bool {
        let named = |id: &str| self.protected.contains(&id.to_ascii_lowercase());
        let group = match subject {
            Subject::Membership { group, .. } => named(group) || live.group_id.as_deref().is_some_and(named),
            _ => false,
        };
        group || named(subject.principal()) || named(&live.object_id) || live.upn.as_deref().is_some_and(named)
    }

    async fn get(&self, path: ApiPath, query: Vec<(&'static str, String)>) -> Result<Response, ConnectorError> {
        let mut req = Request::get(path);
        for (k, v) in query {
            req = req.query(k, v);
        }
        self.client.send(req).await
    }

    /// Every item of an OData listing, following `@odata.nextLink`.
    async fn list(
        &self,
        path: ApiPath,
        query: Vec<(&'static str, String)>,
        request_ids: &mut Vec<String>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut req = Request::get(path);
        for (k, v) in query {
            req = req.query(k, v);
        }
        let pages = self.client.pages(req, PageStyle::OData, MAX_PAGES, |_| false).await?;
        request_ids.extend(pages.request_ids);
        if pages.truncated {
            return Err(ConnectorError::permanent(format!(
                "listing has more than {MAX_PAGES} pages; refusing to decide on a partial read"
            )));
        }
        Ok(pages.items)
    }

    /// When the active assignment of `role` at `scope` to `principal` ends: `None` when any
    /// schedule instance of it is permanent (or Graph lists none), else the latest end.
    async fn assignment_end(
        &self,
        principal: &str,
        role: &str,
        scope: &str,
        request_ids: &mut Vec<String>,
    ) -> Result<Option<String>, ConnectorError> {
        let (path, query) = graph::role_assignment_schedule_instances(principal);
        let items = self.list(path, query, request_ids).await?;
        let mut ends: Option<String> = None;
        for i in items.into_iter().filter_map(|v| serde_json::from_value::<RoleAssignmentScheduleInstance>(v).ok()) {
            let same = i.role_definition_id.eq_ignore_ascii_case(role)
                && i.directory_scope_id == scope
                && (i.principal_id.is_empty() || i.principal_id.eq_ignore_ascii_case(principal));
            if !same {
                continue;
            }
            match i.end_date_time {
                None => return Ok(None),
                // RFC 3339 UTC timestamps from Graph order as text.
                Some(end) => ends = Some(ends.map_or(end.clone(), |e| e.max(end))),
            }
        }
        Ok(ends)
    }

    /// Reads the live state of `subject`.
    async fn read(&self, subject: Subject<'_>) -> Result<Live, ConnectorError> {
        let mut request_ids = Vec::new();
        let mut note = |r: &Response| request_ids.extend(r.request_id().map(str::to_owned));
        match subject {
            Subject::Account { user } => {
                let (path, query) = graph::user(user);
                let r = self.get(path, query).await?;
                note(&r);
                let u: User = r.json()?;
                let object_id = u.id.clone();
                let upn = u.user_principal_name.clone();
                let state = State::Account(AccountState {
                    user: u.id,
                    user_principal_name: u.user_principal_name.unwrap_or_default(),
                    account_enabled: u.account_enabled.unwrap_or(true),
                    on_premises_sync_enabled: u.on_premises_sync_enabled.unwrap_or(false),
                    sign_in_sessions_valid_from: SessionsValidFrom::Observed(u.sign_in_sessions_valid_from_date_time),
                });
                Ok(Live { state, object_id, upn, group_id: None, assignment: None, request_ids })
            }
            Subject::Membership { user, group } => {
                let (path, query) = graph::user(user);
                let r = self.get(path, query).await?;
                note(&r);
                let u = r.json::<User>()?;
                let (object_id, upn) = (u.id, u.user_principal_name);
                let (path, query) = graph::group(group);
                let r = self.get(path, query).await?;
                note(&r);
                let g: Group = r.json()?;
                let (path, query) = graph::group_members(group);
                let members = self.list(path, query, &mut request_ids).await?;
                let member = members.iter().any(|m| id_of(m).is_some_and(|id| id.eq_ignore_ascii_case(&object_id)));
                let state = State::Membership(MembershipState {
                    user: user.to_owned(),
                    group: group.to_owned(),
                    dynamic: g.dynamic(),
                    member,
                });
                let group_id = g.id.clone();
                Ok(Live { state, object_id, upn, group_id, assignment: None, request_ids })
            }
            Subject::DirectoryRole { principal, role, scope } => {
                let (path, query) = graph::directory_object(principal);
                let r = self.get(path, query).await?;
                note(&r);
                let object: Value = r.json()?;
                let object_id = object["id"].as_str().unwrap_or(principal).to_owned();
                let (path, query) = graph::role_assignments(principal);
                let items = self.list(path, query, &mut request_ids).await?;
                let found =
                    items.into_iter().filter_map(|v| serde_json::from_value::<RoleAssignment>(v).ok()).find(|a| {
                        a.role_definition_id.eq_ignore_ascii_case(role)
                            && a.directory_scope_id == scope
                            && (a.principal_id.is_empty() || a.principal_id.eq_ignore_ascii_case(principal))
                    });
                // A time-bound assignment looks like any other in roleAssignments; only its
                // schedule instance says when it ends. Read only when there is one to undo.
                let ends = match found {
                    Some(_) => self.assignment_end(principal, role, scope, &mut request_ids).await?,
                    None => None,
                };
                let state = State::DirectoryRole(DirectoryRoleState {
                    principal: principal.to_owned(),
                    role_definition: role.to_owned(),
                    directory_scope: scope.to_owned(),
                    assigned: found.is_some(),
                    ends,
                });
                let assignment = found.map(|a| a.id);
                Ok(Live { state, object_id, upn: None, group_id: None, assignment, request_ids })
            }
            Subject::AppRole { principal, resource, app_role } => {
                let (path, query) = graph::app_role_assignments(principal, resource);
                let items = self.list(path, query, &mut request_ids).await?;
                let found =
                    items.into_iter().filter_map(|v| serde_json::from_value::<AppRoleAssignment>(v).ok()).find(|a| {
                        a.app_role_id.eq_ignore_ascii_case(app_role)
                            && a.resource_id.eq_ignore_ascii_case(resource)
                            && (a.principal_id.is_empty() || a.principal_id.eq_ignore_ascii_case(principal))
                    });
                let state = State::AppRole(AppRoleState {
                    principal: principal.to_owned(),
                    resource: resource.to_owned(),
                    app_role: app_role.to_owned(),
                    assigned: found.is_some(),
                });
                let assignment = found.map(|a| a.id);
                Ok(Live { state, object_id: principal.to_owned(), upn: None, group_id: None, assignment, request_ids })
            }
        }
    }

    async fn snapshot_of(&self, subject: Subject<'_>) -> Result<(Snapshot, Live), ConnectorError> {
        let live = self.read(subject).await?;
        // Object ids are immutable and every other name (a UPN) resolves to them.
        let canonical = CanonicalTarget {
            identity: live.object_id.to_ascii_lowercase(),
            resource: live.group_id.as_ref().map(|g| g.to_ascii_lowercase()),
        };
        let snapshot = Snapshot {
            canonical: Some(canonical),
            protected: self.is_protected(subject, &live),
            state: live.state.to_value(),
        };
        Ok((snapshot, live))
    }

    /// Sends a write and returns its request ids.
    async fn write(&self, req: Request) -> Result<Vec<String>, ConnectorError> {
        let r = self.client.send(req).await?;
        Ok(r.request_ids().to_vec())
    }

    /// Sends a removal; a 404 means someone removed it first, which is the state we want.
    async fn remove(&self, path: ApiPath) -> Result<Outcome, ConnectorError> {
        let r = self.client.send_raw(Request::delete(path)).await?;
        let ids = r.request_ids().to_vec();
        if r.status().is_success() {
            Ok(Outcome { status: OutcomeStatus::Applied, request_ids: ids })
        } else if r.status().as_u16() == 404 {
            Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: ids })
        } else {
            Err(self.client.error_for(&r))
        }
    }

    /// The raw access token, for reading its `roles` claim.
    async fn access_token(&self) -> Result<String, ConnectorError> {
        use secrecy::ExposeSecret as _;
        let header = self.token.authorization().await?;
        let value = header.expose_secret();
        Ok(value.split_once(' ').map_or(value, |(_, t)| t).to_owned())
    }
}

fn id_of(v: &Value) -> Option<&str> {
    v.get("id").and_then(Value::as_str)
}

fn applied(request_ids: Vec<String>) -> Outcome {
    Outcome { status: OutcomeStatus::Applied, request_ids }
}

fn already(request_ids: Vec<String>) -> Outcome {
    Outcome { status: OutcomeStatus::AlreadyInState, request_ids }
}

/// Every (kind, grant type) the connector supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    use Reversibility::*;
    vec![
        // An undo creates a new assignment with a new id; the grant itself is restored.
        Capability::new(KindName::Revoke, grant_type::DIRECTORY_ROLE, Reversible),
        Capability::new(KindName::Revoke, grant_type::GROUP_MEMBERSHIP, Reversible),
        Capability::new(KindName::Revoke, grant_type::APP_ROLE_ASSIGNMENT, Reversible),
        Capability::new(KindName::Suspend, grant_type::ACCOUNT, Reversible),
        Capability::new(KindName::RevokeSessions, grant_type::ACCOUNT, Irreversible),
    ]
}

#[async_trait]
impl Connector for EntraConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        let probe = Request::get("/users").query("$top", "1").query("$select", "id");
        Ok(match self.client.send(probe).await {
            Ok(_) => Health { healthy: true, detail: format!("Microsoft Graph at {} answers", self.graph_url) },
            Err(e) => Health { healthy: false, detail: e.to_string() },
        })
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        permissions::PERMISSION_MAP
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        Ok(permissions::judge(&self.access_token().await?))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let subject = Subject::of(target)?;
        Ok(self.snapshot_of(subject).await?.0)
    }

    /// `GET /users/{key}` (Graph answers an object id or a userPrincipalName there), then
    /// keeps the user only when its userPrincipalName equals the key (case-insensitively) or,
    /// for a link, its object id does: never `mail` or `otherMails`, which need not be the
    /// organisation's. Groups are the ids of the groups `GET /users/{id}/memberOf` lists
    /// (directory roles and administrative units left out); sessions are not counted.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        let value = key.value();
        check_person_key(value).map_err(ConnectorError::invalid_target)?;
        let (path, query) = graph::user_lookup(value);
        let user: LookedUpUser = match self.get(path, query).await {
            Ok(r) => r.json()?,
            Err(e) if e.kind == ConnectorErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let upn = user.user_principal_name.unwrap_or_default();
        let matched_by = match key {
            AccountKey::Link(_) if user.id.eq_ignore_ascii_case(value) => "id",
            _ if !upn.is_empty() && upn.eq_ignore_ascii_case(value) => "user_principal_name",
            _ => return Ok(None),
        };
        let id = user.id.to_ascii_lowercase();
        let mut request_ids = Vec::new();
        let (path, query) = graph::member_of(&id);
        let groups = self
            .list(path, query, &mut request_ids)
            .await?
            .iter()
            .filter(|o| o["@odata.type"].as_str() == Some("#microsoft.graph.group"))
            .filter_map(id_of)
            .map(str::to_ascii_lowercase)
            .collect();
        let named = |n: &str| self.protected.contains(&n.to_ascii_lowercase());
        Ok(Some(Account {
            protected: named(&id) || named(&upn),
            id,
            login: upn,
            matched_by: matched_by.to_owned(),
            status: user.account_enabled.map(|e| if e { "enabled" } else { "disabled" }.to_owned()),
            display_name: user.display_name,
            groups: Some(groups),
            sessions: None,
        }))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        let subject = Subject::of(&action.target)?;
        let before_state = State::parse(subject, &before.state)?;
        let after = state::transform(&action.kind, &before_state)?;
        Ok(PlannedChange {
            description: state::describe(&action.kind, &before_state, &after),
            expected_after: Snapshot {
                canonical: before.canonical.clone(),
                protected: before.protected,
                state: after.to_value(),
            },
        })
    }

    async fn execute(&self, action: &Action, before: &Snapshot) -> Result<Outcome, ConnectorError> {
        // The live state decides what to write, so a re-execution after a crash is a no-op.
        self.capability(action)?;
        let subject = Subject::of(&action.target)?;
        let live = self.read(subject).await?;
        let ids = live.request_ids;
        match (&action.kind, &live.state) {
            (ActionKind::Suspend, State::Account(s)) => {
                if !s.account_enabled {
                    return Ok(already(ids));
                }
                let req = Request::patch(graph::user(&s.user).0).json(graph::account_enabled(false)).idempotent();
                Ok(applied(self.write(req).await?))
            }
            (ActionKind::RevokeSessions, State::Account(s)) => {
                let before_state = State::parse(subject, &before.state)?;
                let State::Account(b) = before_state else {
                    return Err(ConnectorError::permanent("the before-snapshot is not an account state"));
                };
                let bound = match &b.sign_in_sessions_valid_from {
                    SessionsValidFrom::Observed(v) | SessionsValidFrom::LaterThan { later_than: v } => v.clone(),
                };
                if state::sessions_moved(bound.as_deref(), s.sign_in_sessions_valid_from.observed()) {
                    return Ok(already(ids));
                }
                // Revoking twice is harmless: it moves the timestamp again.
                let req = Request::post(graph::revoke_sessions(&s.user)).idempotent();
                Ok(applied(self.write(req).await?))
            }
            (ActionKind::Revoke, State::Membership(m)) => {
                if !m.member {
                    return Ok(already(ids));
                }
                if m.dynamic {
                    return Err(state::dynamic_group(&m.group));
                }
                self.remove(graph::remove_member(&m.group, &live.object_id)).await
            }
            (ActionKind::Revoke, State::DirectoryRole(_)) | (ActionKind::Revoke, State::AppRole(_)) => {
                let Some(assignment) = live.assignment else {
                    return Ok(already(ids));
                };
                let path = match (&live.state, subject) {
                    (State::AppRole(_), Subject::AppRole { resource, .. }) => {
                        graph::app_role_assigned_to(resource, &assignment)
                    }
                    _ => graph::role_assignment(&assignment),
                };
                self.remove(path).await
            }
            (kind, _) => Err(ConnectorError::unsupported(format!("Entra ID cannot {} this target", kind.name()))),
        }
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        let subject = Subject::of(&action.target)?;
        let expected = State::parse(subject, &planned.expected_after.state)?;
        let mut reads = 1;
        loop {
            let (observed, live) = self.snapshot_of(subject).await?;
            let matches = observed.protected == planned.expected_after.protected && live.state.satisfies(&expected);
            if matches || reads >= VERIFY_READS {
                return Ok(Verification { observed, matches });
            }
            tracing::debug!(connector = %self.id, target = %action.target, reads, "read-back differs; Graph may lag");
            self.sleeper.sleep(VERIFY_INTERVAL).await;
            reads += 1;
        }
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let cap = self.capability(action)?;
        if cap.reversibility == Reversibility::Irreversible {
            return Err(ConnectorError::unsupported(format!(
                "`{}` on a `{}` grant cannot be undone",
                cap.kind, cap.grant_type
            )));
        }
        let subject = Subject::of(&action.target)?;
        let wanted = State::parse(subject, &before.state)?;
        let live = self.read(subject).await?;
        let ids = live.request_ids;
        let done = match (&wanted, &live.state) {
            // Only the field the action changed is put back; a session revocation since is
            // not the suspension's to undo.
            (State::Account(w), State::Account(l)) => w.account_enabled == l.account_enabled,
            // Assigned again since (with whatever schedule) is the grant restored.
            (State::DirectoryRole(w), State::DirectoryRole(l)) => w.assigned == l.assigned,
            (w, l) => w == l,
        };
        if done {
            return Ok(already(ids));
        }
        let req = match (&wanted, &live.state) {
            (State::Account(w), State::Account(_)) => {
                Request::patch(graph::user(&w.user).0).json(graph::account_enabled(w.account_enabled)).idempotent()
            }
            (State::Membership(w), State::Membership(_)) if w.member => {
                let (path, body) = graph::add_member(&self.graph_url, &w.group, &live.object_id);
                Request::post(path).json(body)
            }
            (State::DirectoryRole(w), State::DirectoryRole(_)) if w.assigned && w.ends.is_some() => {
                // Recreating it would make a time-bound grant permanent: more access than
                // before the revocation, which an undo must never give.
                return Err(ConnectorError::unsupported(format!(
                    "directory role {} of {} was time-bound (ended {}); an undo cannot restore its schedule and \
                     would recreate it as permanent, so it is not rolled back: assign it again with its schedule",
                    w.role_definition,
                    w.principal,
                    w.ends.as_deref().unwrap_or_default()
                )));
            }
            (State::DirectoryRole(w), State::DirectoryRole(_)) if w.assigned => {
                let (path, body) = graph::new_role_assignment(&w.principal, &w.role_definition, &w.directory_scope);
                Request::post(path).json(body)
            }
            (State::AppRole(w), State::AppRole(_)) if w.assigned => {
                let (path, body) = graph::new_app_role_assignment(&w.principal, &w.resource, &w.app_role);
                Request::post(path).json(body)
            }
            _ => {
                return Err(ConnectorError::new(
                    ConnectorErrorKind::Conflict,
                    format!(
                        "the target is in {} and the before-state {} is not one this connector restores",
                        live.state.to_value(),
                        wanted.to_value()
                    ),
                ));
            }
        };
        Ok(applied(self.write(req).await?))
    }
}
