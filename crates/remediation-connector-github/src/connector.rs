//! [`GitHubConnector`]: the [`Connector`] implementation over the GitHub REST API.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_http::{
    HttpClient, HttpClientBuilder, PageStyle, Response, RetryPolicy, StaticToken, ThrottleSignal,
};
use remediation_core::{
    Account, AccountKey, Action, ActionKind, CanonicalTarget, Capability, Connector, ConnectorError, Health, KindName,
    Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange, Reversibility, Snapshot, Target, Verification,
    check_person_key, refuse_protected, require_capability,
};
use serde_json::{Map, Value};

use crate::api::{self, ApiRequest};
use crate::config::{API_VERSION, GitHubConfig};
use crate::error::{GitHubError, parse_error};
use crate::permissions;
use crate::state::{self, ORG_MEMBER, ORG_ROLE, OUTSIDE_COLLABORATOR, OtherGrant, REPO_COLLABORATOR, TEAM_MEMBER};

/// The most pages of a listing the connector reads before giving up (100 x 100 items).
const MAX_PAGES: usize = 100;

/// Every (kind, grant type) the connector supports.
pub fn capabilities() -> Vec<Capability> {
    let cap = Capability::new;
    vec![
        cap(KindName::Revoke, REPO_COLLABORATOR, Reversibility::Lossy),
        cap(KindName::Reduce, REPO_COLLABORATOR, Reversibility::Reversible),
        cap(KindName::Revoke, ORG_MEMBER, Reversibility::Lossy),
        cap(KindName::Reduce, ORG_ROLE, Reversibility::Reversible),
        cap(KindName::Revoke, TEAM_MEMBER, Reversibility::Reversible),
        cap(KindName::Revoke, OUTSIDE_COLLABORATOR, Reversibility::Lossy),
    ]
}

/// A GitHub connector. See the crate documentation for its capabilities.
pub struct GitHubConnector {
    id: String,
    client: HttpClient,
    protected: HashSet<String>,
    page_size: u32,
}

impl std::fmt::Debug for GitHubConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubConnector").field("id", &self.id).field("client", &self.client).finish_non_exhaustive()
    }
}

fn login_is(item: &Value, pointer: &str, login: &str) -> bool {
    item.pointer(pointer).and_then(Value::as_str).is_some_and(|l| l.eq_ignore_ascii_case(login))
}

impl GitHubConnector {
    /// A connector named `id` from `config`, reading its token now.
    pub fn new(id: impl Into<String>, config: &GitHubConfig) -> Result<Self, GitHubError> {
        let client = Self::client_builder(config)?.build().map_err(|source| GitHubError::Client { source })?;
        Ok(Self::with_client(id, config, client))
    }

    /// The HTTP client `config` describes: its base URL, the bearer token, the headers GitHub
    /// asks for (`Accept: application/vnd.github+json`, `X-GitHub-Api-Version`), GitHub's
    /// rate-limit signals and error body. For embedders who set their own sleeper, clock
    /// or timeouts before building it and passing it to [`GitHubConnector::with_client`].
    pub fn client_builder(config: &GitHubConfig) -> Result<HttpClientBuilder, GitHubError> {
        let token = config.token()?;
        Ok(HttpClient::builder(config.api_base.clone())
            .allow_insecure_http(config.allow_insecure_http)
            .auth(Arc::new(StaticToken::bearer(token)))
            .retry(RetryPolicy::new(ThrottleSignal::GitHub))
            .error_parser(Arc::new(parse_error))
            .default_header("Accept", "application/vnd.github+json")
            .default_header("X-GitHub-Api-Version", API_VERSION))
    }

    /// A connector named `id` over `client` (see [`GitHubConnector::client_builder`]).
    pub fn with_client(id: impl Into<String>, config: &GitHubConfig, client: HttpClient) -> Self {
        Self {
            id: id.into(),
            client,
            protected: config.protected.iter().map(|p| p.to_lowercase()).collect(),
            page_size: config.page_size.clamp(1, 100),
        }
    }

    async fn send(&self, request: ApiRequest) -> Result<Response, ConnectorError> {
        tracing::debug!(connector = %self.id, method = %request.method, path = %request.path, "github request");
        self.client.send_raw(request.into_request()).await
    }

    async fn write(&self, request: ApiRequest) -> Result<Response, ConnectorError> {
        let resp = self.send(request).await?;
        if resp.status().is_success() { Ok(resp) } else { Err(self.client.error_for(&resp)) }
    }

    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        require_capability(&capabilities(), "the GitHub connector", action)
    }

    fn resource(target: &Target, what: &str) -> Result<String, ConnectorError> {
        target.resource.clone().ok_or_else(|| {
            ConnectorError::invalid_target(format!("a {} target needs {what} as its resource", target.grant_type))
        })
    }

    fn malformed(target: &Target, what: &str) -> ConnectorError {
        ConnectorError::invalid_target(format!("{target}: the resource must be {what}"))
    }

    /// Fails with GitHub's `NotFound` when `login` is no GitHub account.
    /// The user's current login and numeric id, as GitHub returns them for `login` (in any
    /// case).
    async fn resolve(&self, login: &str) -> Result<(String, u64), ConnectorError> {
        let resp = self.send(api::get_user(login)).await?;
        if !resp.status().is_success() {
            return Err(self.client.error_for(&resp));
        }
        let user: Value = resp.json()?;
        let id = user.get("id").and_then(Value::as_u64).ok_or_else(|| {
            ConnectorError::permanent(format!("GitHub answered a read of user {login} without a numeric id"))
        })?;
        let current = user.get("login").and_then(Value::as_str).unwrap_or(login).to_owned();
        Ok((current, id))
    }

    /// The snapshot: the grant's state, and the user resolved to its numeric id, which is the
    /// canonical id and, with the login GitHub returns, what protection compares.
    async fn snapshot_resolved(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let mut snapshot = self.read(target).await?;
        let (login, id) = self.resolve(&target.identity).await?;
        let id = id.to_string();
        snapshot.protected |= self.protected.contains(&login.to_lowercase()) || self.protected.contains(&id);
        snapshot.canonical = Some(CanonicalTarget::identity(id));
        Ok(snapshot)
    }

    async fn user_exists(&self, login: &str) -> Result<(), ConnectorError> {
        let resp = self.send(api::get_user(login)).await?;
        if resp.status().is_success() { Ok(()) } else { Err(self.client.error_for(&resp)) }
    }

    async fn find(
        &self,
        first: ApiRequest,
        pointer: &'static str,
        login: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let pages = self
            .client
            .pages(first.into_request(), PageStyle::Link, MAX_PAGES, |item| login_is(item, pointer, login))
            .await?;
        let found = pages.items.into_iter().find(|item| login_is(item, pointer, login));
        if found.is_none() && pages.truncated {
            return Err(ConnectorError::permanent(format!(
                "{login} was not in the first {MAX_PAGES} pages of the listing; the connector stops there"
            )));
        }
        Ok(found)
    }

    /// For each repository of `org`: the permission `login` holds directly when GitHub lists
    /// them as an outside collaborator, and the permission of a pending invitation otherwise
    /// (what a rollback leaves, so it is observable).
    async fn outside_access(
        &self,
        org: &str,
        login: &str,
    ) -> Result<(Map<String, Value>, Map<String, Value>), ConnectorError> {
        let (mut repos, mut invitations) = (Map::new(), Map::new());
        let listed = self.find(api::list_outside_collaborators(org, self.page_size), "/login", login).await?.is_some();
        let first = api::list_org_repos(org, self.page_size).into_request();
        let pages = self.client.pages(first, PageStyle::Link, MAX_PAGES, |_| false).await?;
        if pages.truncated {
            return Err(ConnectorError::permanent(format!(
                "{org} has more than {MAX_PAGES} pages of repositories; the connector stops there"
            )));
        }
        for repo in pages.items.iter().filter_map(|r| r.get("full_name").and_then(Value::as_str)) {
            let malformed = || ConnectorError::permanent(format!("GitHub listed a repository named {repo:?}"));
            if listed {
                let list = api::list_direct_collaborators(repo, self.page_size).ok_or_else(malformed)?;
                if let Some(p) = self.find(list, "/login", login).await?.and_then(|c| state::direct_permission(&c)) {
                    repos.insert(repo.to_owned(), Value::String(p));
                    continue;
                }
            }
            let list = api::list_invitations(repo, self.page_size).ok_or_else(malformed)?;
            let invitation = self.find(list, "/invitee/login", login).await?;
            if let Some(p) =
                invitation.and_then(|i| i.get("permissions").and_then(Value::as_str).map(state::permission_name))
            {
                invitations.insert(repo.to_owned(), Value::String(p));
            }
        }
        Ok((repos, invitations))
    }

    /// The user's highest permission on `repo` from every source, from "Get repository
    /// permissions for a user" (`None` when they have none; GitHub answers 404 for a user who
    /// is no collaborator of a private repository).
    async fn effective(&self, repo: &str, login: &str) -> Result<Option<String>, ConnectorError> {
        let get = api::get_collaborator_permission(repo, login)
            .ok_or_else(|| ConnectorError::permanent(format!("{repo}: the resource must be owner/repo")))?;
        let resp = self.send(get).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(state::effective_permission(&resp.json::<Value>()?)),
            404 => Ok(None),
            _ => Err(self.client.error_for(&resp)),
        }
    }

    /// The highest grant `login` holds on `repo` besides the direct one, and what gives it:
    /// a team the user is an active member of ("List repository teams", each with the
    /// `permission` it grants, then "Get team membership for a user"), ownership of the
    /// organisation (owners are admins of every repository), or the organisation's base
    /// permission for a member (`default_repository_permission` of "Get an organization").
    /// A repository owned by a user has none of these.
    async fn other_grant(&self, repo: &str, login: &str) -> Result<Option<OtherGrant>, ConnectorError> {
        let malformed = || ConnectorError::permanent(format!("{repo}: the resource must be owner/repo"));
        let org = repo.split_once('/').map(|(o, _)| o).ok_or_else(malformed)?;
        let resp = self.send(api::get_org_membership(org, login)).await?;
        let membership = match resp.status().as_u16() {
            200..=299 => Some(resp.json::<Value>()?),
            404 => None,
            _ => return Err(self.client.error_for(&resp)),
        };
        let active = membership.as_ref().filter(|m| m.get("state").and_then(Value::as_str) == Some("active"));
        let mut best = None;
        match active.and_then(|m| m.get("role")).and_then(Value::as_str) {
            Some("admin") => {
                best =
                    Some(OtherGrant { permission: "admin".to_owned(), via: format!("owning the organisation {org}") });
            }
            Some(_) => {
                let resp = self.send(api::get_org(org)).await?;
                if !resp.status().is_success() {
                    return Err(self.client.error_for(&resp));
                }
                let base = resp.json::<Value>()?;
                if let Some(p) = base
                    .get("default_repository_permission")
                    .and_then(Value::as_str)
                    .filter(|p| *p != "none")
                    .map(state::permission_name)
                {
                    best = Some(OtherGrant { permission: p, via: format!("the base permission of {org}") });
                }
            }
            None => {}
        }
        if membership.is_none() {
            return Ok(best);
        }
        let list = api::list_repo_teams(repo, self.page_size).ok_or_else(malformed)?;
        let pages = self.client.pages(list.into_request(), PageStyle::Link, MAX_PAGES, |_| false).await?;
        if pages.truncated {
            return Err(ConnectorError::permanent(format!(
                "{repo} has more than {MAX_PAGES} pages of teams; the connector stops there"
            )));
        }
        let mut teams: Vec<(String, String)> = pages
            .items
            .iter()
            .filter_map(|t| {
                let slug = t.get("slug").and_then(Value::as_str)?;
                let permission = t.get("permission").and_then(Value::as_str)?;
                Some((slug.to_owned(), state::permission_name(permission)))
            })
            .collect();
        // Highest first: the first team the user is an active member of is the one to name.
        teams.sort_by_key(|(_, p)| std::cmp::Reverse(state::rank(p)));
        for (slug, permission) in teams {
            if best.as_ref().is_some_and(|b| state::rank(&b.permission) >= state::rank(&permission)) {
                break;
            }
            let team = format!("{org}/{slug}");
            let get = api::get_team_membership(&team, login).ok_or_else(malformed)?;
            let resp = self.send(get).await?;
            match resp.status().as_u16() {
                200..=299 if resp.json::<Value>()?.get("state").and_then(Value::as_str) == Some("active") => {
                    best = OtherGrant::max(best, Some(OtherGrant { permission, via: format!("the team {team}") }));
                }
                200..=299 | 404 => {}
                _ => return Err(self.client.error_for(&resp)),
            }
        }
        Ok(best)
    }

    /// For a `repo_collaborator`, the grant besides the direct one (see [`Self::other_grant`]).
    async fn other_for(&self, target: &Target) -> Result<Option<OtherGrant>, ConnectorError> {
        if target.grant_type != REPO_COLLABORATOR {
            return Ok(None);
        }
        let repo = Self::resource(target, "the repository as owner/repo")?;
        self.other_grant(&repo, &target.identity).await
    }

    fn is_protected(&self, target: &Target) -> bool {
        let mut names = vec![target.identity.to_lowercase()];
        if let Some(r) = &target.resource {
            let r = r.to_lowercase();
            if let Some((org, _)) = r.split_once('/') {
                names.push(org.to_owned());
            }
            names.push(r);
        }
        names.iter().any(|n| self.protected.contains(n))
    }

    async fn read(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let login = target.identity.as_str();
        let state = match target.grant_type.as_str() {
            REPO_COLLABORATOR => {
                let repo = Self::resource(target, "the repository as owner/repo")?;
                let list = api::list_direct_collaborators(&repo, self.page_size)
                    .ok_or_else(|| Self::malformed(target, "owner/repo"))?;
                let permission = self.find(list, "/login", login).await?.and_then(|c| state::direct_permission(&c));
                let invitation = match permission {
                    Some(_) => None,
                    None => {
                        let list = api::list_invitations(&repo, self.page_size)
                            .ok_or_else(|| Self::malformed(target, "owner/repo"))?;
                        let inv = self.find(list, "/invitee/login", login).await?;
                        inv.and_then(|i| i.get("permissions").and_then(Value::as_str).map(state::permission_name))
                    }
                };
                if permission.is_none() && invitation.is_none() {
                    self.user_exists(login).await?;
                }
                let effective = self.effective(&repo, login).await?;
                state::collaborator(&repo, login, permission, invitation, effective)
            }
            ORG_MEMBER | ORG_ROLE => {
                let org = Self::resource(target, "the organisation")?;
                let resp = self.send(api::get_org_membership(&org, login)).await?;
                match resp.status().as_u16() {
                    200..=299 => state::org_membership(&org, login, Some(&resp.json::<Value>()?)),
                    404 if target.grant_type == ORG_MEMBER => {
                        self.user_exists(login).await?;
                        state::org_membership(&org, login, None)
                    }
                    _ => return Err(self.client.error_for(&resp)),
                }
            }
            TEAM_MEMBER => {
                let team = Self::resource(target, "the team as org/team-slug")?;
                let get =
                    api::get_team_membership(&team, login).ok_or_else(|| Self::malformed(target, "org/team-slug"))?;
                let resp = self.send(get).await?;
                match resp.status().as_u16() {
                    200..=299 => state::team_membership(&team, login, Some(&resp.json::<Value>()?)),
                    404 => {
                        self.user_exists(login).await?;
                        let get = api::get_team(&team).ok_or_else(|| Self::malformed(target, "org/team-slug"))?;
                        let t = self.send(get).await?;
                        if !t.status().is_success() {
                            return Err(self.client.error_for(&t));
                        }
                        state::team_membership(&team, login, None)
                    }
                    _ => return Err(self.client.error_for(&resp)),
                }
            }
            OUTSIDE_COLLABORATOR => {
                let org = Self::resource(target, "the organisation")?;
                let (repos, invitations) = self.outside_access(&org, login).await?;
                if repos.is_empty() && invitations.is_empty() {
                    self.user_exists(login).await?;
                }
                state::outside_collaborator(&org, login, repos, invitations)
            }
            other => {
                return Err(ConnectorError::unsupported(format!("the GitHub connector has no grant type {other}")));
            }
        };
        Ok(Snapshot { canonical: None, protected: self.is_protected(target), state })
    }

    /// Refuses a team membership whose role GitHub does not report: an organisation owner's
    /// team role reads `maintainer` whatever it is ("Get team membership for a user"), so
    /// neither removing it (its rollback would restore a guess) nor writing `maintainer` back
    /// for an owner is done. Reads the organisation membership only for a `maintainer`.
    async fn refuse_owner_team_role(&self, team: &str, login: &str, role: Option<&str>) -> Result<(), ConnectorError> {
        if role != Some("maintainer") {
            return Ok(());
        }
        let org = team.split_once('/').map_or(team, |(org, _)| org);
        let resp = self.send(api::get_org_membership(org, login)).await?;
        let owner = match resp.status().as_u16() {
            200..=299 => resp.json::<Value>()?.get("role").and_then(Value::as_str) == Some("admin"),
            404 => false,
            _ => return Err(self.client.error_for(&resp)),
        };
        if owner {
            return Err(ConnectorError::permanent(format!(
                "{login} owns the organisation {org}, and GitHub reports every owner's team role as maintainer: \
                 the real role on {team} cannot be read, so the connector will not remove it or write it back"
            )));
        }
        Ok(())
    }

    fn outcome(status: OutcomeStatus, resp: Option<&Response>) -> Outcome {
        Outcome { status, request_ids: resp.map(|r| r.request_ids().to_vec()).unwrap_or_default() }
    }

    fn already() -> Outcome {
        Self::outcome(OutcomeStatus::AlreadyInState, None)
    }

    /// Sends a DELETE; a 404 means the grant is already gone.
    async fn delete(&self, request: ApiRequest) -> Result<Outcome, ConnectorError> {
        let resp = self.send(request).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(Self::outcome(OutcomeStatus::Applied, Some(&resp))),
            404 => Ok(Self::already()),
            _ => Err(self.client.error_for(&resp)),
        }
    }
}

impl GitHubConnector {
    /// Invites the user again to each repository the before-state lists, with its
    /// permission, unless they already have it there (directly or by a pending invitation).
    async fn restore_outside_collaborator(&self, target: &Target, want: &Value) -> Result<Outcome, ConnectorError> {
        let login = target.identity.as_str();
        let repos = state::field(want, "repositories")?
            .as_object()
            .ok_or_else(|| ConnectorError::permanent("the before-state's repositories are not an object"))?;
        let (mut request_ids, mut wrote, mut invited) = (Vec::new(), false, false);
        for (repo, permission) in repos {
            let permission = permission
                .as_str()
                .ok_or_else(|| ConnectorError::permanent(format!("the before-state has no permission on {repo}")))?;
            let now = self
                .read(&Target {
                    resource: Some(repo.clone()),
                    grant_type: REPO_COLLABORATOR.to_owned(),
                    ..target.clone()
                })
                .await?;
            if state::text(&now.state, "permission")?.as_deref() == Some(permission) {
                continue;
            }
            if state::text(&now.state, "invitation")?.as_deref() == Some(permission) {
                invited = true;
                continue;
            }
            let req =
                api::put_collaborator(repo, login, permission).ok_or_else(|| Self::malformed(target, "owner/repo"))?;
            let resp = self.write(req).await?;
            request_ids.extend(resp.request_ids().iter().cloned());
            invited |= resp.status().as_u16() == 201;
            wrote = true;
        }
        let status = match (invited, wrote) {
            (true, _) => OutcomeStatus::PendingAcceptance,
            (false, true) => OutcomeStatus::Applied,
            (false, false) => OutcomeStatus::AlreadyInState,
        };
        Ok(Outcome { status, request_ids })
    }
}

fn needs(v: Option<String>, what: &str) -> Result<String, ConnectorError> {
    v.ok_or_else(|| ConnectorError::permanent(format!("the before-state has no {what} to restore")))
}

#[async_trait]
impl Connector for GitHubConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        let resp = self.send(api::rate_limit()).await?;
        if resp.status().is_success() {
            let left = resp
                .json::<Value>()
                .ok()
                .and_then(|b| b.pointer("/resources/core/remaining").and_then(Value::as_u64))
                .map(|n| format!("; {n} core requests left this hour"))
                .unwrap_or_default();
            Ok(Health { healthy: true, detail: format!("GitHub API answers{left}") })
        } else {
            Ok(Health { healthy: false, detail: self.client.error_for(&resp).to_string() })
        }
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        permissions::PERMISSION_MAP
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let resp = self.send(api::get_authenticated_user()).await?;
        if !resp.status().is_success() {
            return Err(self.client.error_for(&resp));
        }
        // Classic tokens list their scopes; fine-grained and app tokens send no header.
        Ok(permissions::judge(resp.headers().get("x-oauth-scopes").and_then(|v| v.to_str().ok())))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.snapshot_resolved(target).await
    }

    /// A person cannot be found on GitHub: the only emails it shows are ones the account
    /// holder sets, so anyone could claim the victim's. A link names the login; it is read
    /// with `GET /users/{login}` and kept when the login GitHub returns equals it
    /// (case-insensitively). The account's id is that login, which every GitHub target
    /// names; status, groups and sessions are not reported.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        let value = key.value();
        check_person_key(value).map_err(ConnectorError::invalid_target)?;
        if let AccountKey::Person(_) = key {
            return Err(ConnectorError::unsupported(
                "GitHub shows only emails the account holder sets, so a person cannot be found by one; \
                 link the person's GitHub login explicitly",
            ));
        }
        let resp = self.send(api::get_user(value)).await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.client.error_for(&resp));
        }
        let user: Value = resp.json()?;
        let login = user.get("login").and_then(Value::as_str).unwrap_or_default();
        if !login.eq_ignore_ascii_case(value) {
            return Ok(None);
        }
        let id = user.get("id").and_then(Value::as_u64).map(|id| id.to_string());
        let protected =
            self.protected.contains(&login.to_lowercase()) || id.as_ref().is_some_and(|id| self.protected.contains(id));
        Ok(Some(Account {
            id: login.to_owned(),
            login: login.to_owned(),
            matched_by: "login".to_owned(),
            status: None,
            display_name: user.get("name").and_then(Value::as_str).map(str::to_owned),
            groups: None,
            sessions: None,
            protected,
        }))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        let other = self.other_for(&action.target).await?;
        let (state, description) =
            state::expected_after(&action.kind, &action.target.grant_type, &before.state, other.as_ref())?;
        if action.target.grant_type == TEAM_MEMBER {
            let team = Self::resource(&action.target, "the team as org/team-slug")?;
            let role = state::text(&before.state, "role")?;
            self.refuse_owner_team_role(&team, &action.target.identity, role.as_deref()).await?;
        }
        Ok(PlannedChange {
            expected_after: Snapshot { canonical: before.canonical.clone(), protected: before.protected, state },
            description,
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        let target = &action.target;
        // Resolved, as the snapshot is: a user protected by numeric id is refused here too.
        let live = self.snapshot_resolved(target).await?;
        refuse_protected(target, &live)?;
        let login = target.identity.as_str();
        let resource = target.resource.clone().unwrap_or_default();
        let s = &live.state;
        match (&action.kind, target.grant_type.as_str()) {
            (ActionKind::Revoke, REPO_COLLABORATOR) => {
                if state::text(s, "permission")?.is_some() {
                    let req = api::delete_collaborator(&resource, login)
                        .ok_or_else(|| Self::malformed(target, "owner/repo"))?;
                    return self.delete(req).await;
                }
                if state::text(s, "invitation")?.is_none() {
                    return Ok(Self::already());
                }
                // A pending invitation is access waiting to be accepted: it is cancelled by its
                // id, which the snapshot does not keep, so it is looked up again.
                let list = api::list_invitations(&resource, self.page_size)
                    .ok_or_else(|| Self::malformed(target, "owner/repo"))?;
                let Some(id) = self.find(list, "/invitee/login", login).await?.and_then(|i| i.get("id")?.as_u64())
                else {
                    return Ok(Self::already());
                };
                let req = api::delete_invitation(&resource, id).ok_or_else(|| Self::malformed(target, "owner/repo"))?;
                self.delete(req).await
            }
            (ActionKind::Reduce { to }, REPO_COLLABORATOR) => {
                // Judged again on the live state: a team grant may have appeared since the plan.
                let other = self.other_grant(&resource, login).await?;
                state::expected_after(&action.kind, REPO_COLLABORATOR, s, other.as_ref())?;
                if state::text(s, "permission")?.as_deref() == Some(to.as_str()) {
                    return Ok(Self::already());
                }
                let req =
                    api::put_collaborator(&resource, login, to).ok_or_else(|| Self::malformed(target, "owner/repo"))?;
                let resp = self.write(req).await?;
                Ok(Self::outcome(OutcomeStatus::Applied, Some(&resp)))
            }
            (ActionKind::Revoke, ORG_MEMBER) => {
                if state::text(s, "membership")?.is_none() {
                    return Ok(Self::already());
                }
                // Checked again on the live state: a billing manager's removal cannot be undone.
                state::expected_after(&action.kind, ORG_MEMBER, s, None)?;
                if state::text(s, "membership")?.as_deref() == Some("pending") {
                    // Only the membership call cancels an invitation; the member call ignores it.
                    return self.delete(api::delete_org_membership(&resource, login)).await;
                }
                self.delete(api::delete_org_member(&resource, login)).await
            }
            (ActionKind::Reduce { to }, ORG_ROLE) => {
                state::expected_after(&action.kind, ORG_ROLE, s, None)?;
                if state::text(s, "role")?.as_deref() == Some(to.as_str()) {
                    return Ok(Self::already());
                }
                let resp = self.write(api::put_org_membership(&resource, login, to)).await?;
                Ok(Self::outcome(OutcomeStatus::Applied, Some(&resp)))
            }
            (ActionKind::Revoke, TEAM_MEMBER) => {
                if state::text(s, "state")?.is_none() {
                    return Ok(Self::already());
                }
                // Checked again on the live state: the user may have become an owner since the plan.
                self.refuse_owner_team_role(&resource, login, state::text(s, "role")?.as_deref()).await?;
                let req = api::delete_team_membership(&resource, login)
                    .ok_or_else(|| Self::malformed(target, "org/team-slug"))?;
                self.delete(req).await
            }
            (ActionKind::Revoke, OUTSIDE_COLLABORATOR) => {
                let Some(repos) = state::field(s, "repositories")?.as_object().filter(|m| !m.is_empty()) else {
                    return Ok(Self::already());
                };
                // The call removes every repository at once: one protected repository keeps
                // the whole removal from being sent.
                if let Some(repo) = repos.keys().find(|r| self.protected.contains(&r.to_lowercase())) {
                    return Err(ConnectorError::permanent(format!(
                        "{login} is a collaborator on the protected repository {repo}, which removing the \
                         outside collaborator from {resource} would also change; revoke the other repositories \
                         one by one"
                    )));
                }
                self.delete(api::delete_outside_collaborator(&resource, login)).await
            }
            (kind, gt) => {
                Err(ConnectorError::unsupported(format!("the GitHub connector cannot {} a {gt}", kind.name())))
            }
        }
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.capability(action)?;
        let observed = self.snapshot_resolved(&action.target).await?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        let target = &action.target;
        let live = self.read(target).await?;
        if live.state == before.state {
            return Ok(Self::already());
        }
        let login = target.identity.as_str();
        let resource = target.resource.clone().unwrap_or_default();
        let (want, now) = (&before.state, &live.state);
        if (&action.kind, target.grant_type.as_str()) == (&ActionKind::Revoke, OUTSIDE_COLLABORATOR) {
            return self.restore_outside_collaborator(target, want).await;
        }
        let request = match (&action.kind, target.grant_type.as_str()) {
            (ActionKind::Revoke | ActionKind::Reduce { .. }, REPO_COLLABORATOR) => {
                // A cancelled invitation is restored by inviting again with the same permission.
                let permission = needs(
                    state::text(want, "permission")?.or(state::text(want, "invitation")?),
                    "repository permission or invitation",
                )?;
                if state::text(now, "invitation")?.as_deref() == Some(permission.as_str()) {
                    // Already re-invited with the same permission: all a rollback can do is
                    // done, and the access still waits for the user to accept.
                    return Ok(Self::outcome(OutcomeStatus::PendingAcceptance, None));
                }
                api::put_collaborator(&resource, login, &permission)
                    .ok_or_else(|| Self::malformed(target, "owner/repo"))?
            }
            (ActionKind::Revoke, ORG_MEMBER) | (ActionKind::Reduce { .. }, ORG_ROLE) => {
                let role = needs(state::text(want, "role")?, "organisation role")?;
                // Never sent: GitHub answers 422 to any other role.
                state::settable_org_role(login, &resource, &role, "so it cannot be written back")?;
                if action.kind.name() == KindName::Revoke && state::text(now, "role")?.as_deref() == Some(role.as_str())
                {
                    match state::text(now, "membership")?.as_deref() {
                        Some("pending") => return Ok(Self::outcome(OutcomeStatus::PendingAcceptance, None)),
                        Some(_) => return Ok(Self::already()),
                        None => {}
                    }
                }
                api::put_org_membership(&resource, login, &role)
            }
            (ActionKind::Revoke, TEAM_MEMBER) => {
                let role = needs(state::text(want, "role")?, "team role")?;
                self.refuse_owner_team_role(&resource, login, Some(role.as_str())).await?;
                api::put_team_membership(&resource, login, &role)
                    .ok_or_else(|| Self::malformed(target, "org/team-slug"))?
            }
            (kind, gt) => {
                return Err(ConnectorError::unsupported(format!("the GitHub connector cannot {} a {gt}", kind.name())));
            }
        };
        let is_membership = target.grant_type == ORG_MEMBER || target.grant_type == ORG_ROLE;
        let resp = self.write(request).await?;
        // "Add a repository collaborator" answers 201 with an invitation for anyone not yet a
        // collaborator; "Set organization membership for a user" answers `"state": "pending"`
        // for anyone not yet a member. Either way the access returns only once they accept.
        let invited = resp.status().as_u16() == 201
            || (is_membership
                && resp.json::<Value>().ok().and_then(|m| m.get("state")?.as_str().map(str::to_owned)).as_deref()
                    == Some("pending"));
        if invited {
            tracing::warn!(connector = %self.id, %target, "rollback sent an invitation; access returns when it is accepted");
            return Ok(Self::outcome(OutcomeStatus::PendingAcceptance, Some(&resp)));
        }
        Ok(Self::outcome(OutcomeStatus::Applied, Some(&resp)))
    }

    fn pending_acceptance_state(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Option<Snapshot> {
        let state = state::pending_after(&action.kind, &action.target.grant_type, &before.state, &after.state)?;
        Some(Snapshot { state, ..before.clone() })
    }
}
