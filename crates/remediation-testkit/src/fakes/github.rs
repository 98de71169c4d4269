//! A stateful fake of the GitHub REST API: users, organisations with members, invitations
//! and teams, repositories with direct collaborators and invitations, and tokens with scopes.
//!
//! [`GitHubState::handle`] answers one request as GitHub does: the same paths and status
//! codes (204 for an updated collaborator, 201 with an invitation for a new one, `pending`
//! memberships for invitations), a repository permission that is the highest of the direct
//! grant, the user's teams, the organisation's base permission and ownership, `{"message", "documentation_url"}` error bodies, `Link`
//! pagination with `per_page` (default 30, at most 100), and on every answer
//! `X-GitHub-Request-Id`, the `x-ratelimit-*` headers and, for classic tokens,
//! `X-OAuth-Scopes`. [`GitHubFake`] serves it on loopback behind the shared [`Faults`]
//! switchboard; a throttled answer is GitHub's primary rate limit (403 with
//! `x-ratelimit-remaining: 0` and `x-ratelimit-reset`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::any;
use serde_json::{Value, json};

use super::{Caller, FakeServer, Faults, Provider, RequestLog, empty_response, json_response, url_pairs};

/// Repository permissions from least to most, as the collaborator `PUT` spells them.
pub const LEVELS: [&str; 5] = ["pull", "triage", "push", "maintain", "admin"];

/// The hourly rate limit the fake reports.
pub const RATE_LIMIT: u32 = 5000;

/// A token the fake accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeToken {
    /// The account the token belongs to.
    pub login: String,
    /// Classic scopes, sent back in `X-OAuth-Scopes`; `None` for a fine-grained token.
    pub scopes: Option<Vec<String>>,
    /// Whether the account may change memberships and collaborators.
    pub write: bool,
}

/// A team.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeTeam {
    /// Members by lower-cased login: (role `member`|`maintainer`, state `active`|`pending`).
    pub members: BTreeMap<String, (String, String)>,
    /// The team's repositories by lower-cased `owner/repo`: the permission it grants.
    pub repos: BTreeMap<String, String>,
}

/// An organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeOrg {
    /// Members by lower-cased login: role `admin`, `member` or `billing_manager`.
    pub members: BTreeMap<String, String>,
    /// Pending invitations by lower-cased login: the role offered.
    pub invitations: BTreeMap<String, String>,
    /// Teams by slug.
    pub teams: BTreeMap<String, FakeTeam>,
    /// The base permission every member has on every repository of the organisation
    /// (`pull`, `push` or `admin`); `None` for GitHub's `none`.
    pub base_permission: Option<String>,
}

/// A repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeRepo {
    /// Direct collaborators by lower-cased login: their permission (`pull` ... `admin`).
    pub collaborators: BTreeMap<String, String>,
    /// Pending invitations by lower-cased login: the permission offered.
    pub invitations: BTreeMap<String, String>,
}

/// The fake's answer: status, headers and JSON body (`None` for an empty body).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<Value>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, headers: Vec::new(), body: Some(body) }
}

fn no_content() -> Reply {
    Reply { status: 204, headers: Vec::new(), body: None }
}

/// GitHub's error body.
pub fn error_body(message: &str) -> Value {
    json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
}

fn not_found() -> Reply {
    reply(404, error_body("Not Found"))
}

fn invalid(field: &str) -> Reply {
    reply(
        422,
        json!({"message": "Validation Failed", "errors": [{"resource": "Membership", "field": field, "code": "invalid",
            "message": format!("{field} is not valid")}], "documentation_url": "https://docs.github.com/rest"}),
    )
}

/// The `role_name` GitHub answers for a permission (`read`/`write` for `pull`/`push`).
pub fn role_name(permission: &str) -> &str {
    match permission {
        "pull" => "read",
        "push" => "write",
        other => other,
    }
}

/// The `permissions` hash for `permission`: every level up to it (all false for `none`).
fn permission_flags(permission: &str) -> Value {
    let has = |level: usize| LEVELS.iter().position(|l| *l == permission).is_some_and(|rank| rank >= level);
    json!({"pull": has(0), "triage": has(1), "push": has(2), "maintain": has(3), "admin": has(4)})
}

/// The whole fake provider.
#[derive(Debug, Clone, Default)]
pub struct GitHubState {
    /// Accounts by lower-cased login: the login as spelled.
    pub users: BTreeMap<String, String>,
    /// Organisations by lower-cased login.
    pub orgs: BTreeMap<String, FakeOrg>,
    /// Repositories by lower-cased `owner/repo`.
    pub repos: BTreeMap<String, FakeRepo>,
    /// Tokens the fake knows (the shared switchboard must accept them too).
    pub tokens: BTreeMap<String, FakeToken>,
    /// Core requests left in the current window.
    pub rate_remaining: u32,
    requests: u64,
}

impl GitHubState {
    /// An empty GitHub with a full rate-limit window.
    pub fn new() -> Self {
        Self { rate_remaining: RATE_LIMIT, ..Self::default() }
    }

    /// Adds an account.
    pub fn add_user(&mut self, login: &str) {
        self.users.insert(login.to_lowercase(), login.to_owned());
    }

    /// Adds `login` (created if needed) to `org` with `role`.
    pub fn add_org_member(&mut self, org: &str, login: &str, role: &str) {
        self.add_user(login);
        self.orgs.entry(org.to_lowercase()).or_default().members.insert(login.to_lowercase(), role.to_owned());
    }

    /// Adds `login` to `org/slug` with `role`, active (and to the organisation as a member).
    pub fn add_team_member(&mut self, org: &str, slug: &str, login: &str, role: &str) {
        let org_key = org.to_lowercase();
        if !self.orgs.get(&org_key).is_some_and(|o| o.members.contains_key(&login.to_lowercase())) {
            self.add_org_member(org, login, "member");
        }
        let team = self.orgs.entry(org_key).or_default().teams.entry(slug.to_lowercase()).or_default();
        team.members.insert(login.to_lowercase(), (role.to_owned(), "active".to_owned()));
    }

    /// Adds a team without members.
    pub fn add_team(&mut self, org: &str, slug: &str) {
        self.orgs.entry(org.to_lowercase()).or_default().teams.entry(slug.to_lowercase()).or_default();
    }

    /// Adds `login` (created if needed) as a direct collaborator on `owner/repo`.
    pub fn add_collaborator(&mut self, repo: &str, login: &str, permission: &str) {
        self.add_user(login);
        self.repos
            .entry(repo.to_lowercase())
            .or_default()
            .collaborators
            .insert(login.to_lowercase(), permission.to_owned());
    }

    /// Invites `login` (created if needed) to `owner/repo` with `permission`, pending.
    pub fn invite_collaborator(&mut self, repo: &str, login: &str, permission: &str) {
        self.add_user(login);
        self.repos
            .entry(repo.to_lowercase())
            .or_default()
            .invitations
            .insert(login.to_lowercase(), permission.to_owned());
    }

    /// Grants the team `org/slug` (created if needed) `permission` on `owner/repo`.
    pub fn add_team_repo(&mut self, org: &str, slug: &str, repo: &str, permission: &str) {
        self.repos.entry(repo.to_lowercase()).or_default();
        let team = self.orgs.entry(org.to_lowercase()).or_default().teams.entry(slug.to_lowercase()).or_default();
        team.repos.insert(repo.to_lowercase(), permission.to_owned());
    }

    /// Sets the organisation's base repository permission (`None`: GitHub's `none`).
    pub fn set_base_permission(&mut self, org: &str, permission: Option<&str>) {
        self.orgs.entry(org.to_lowercase()).or_default().base_permission = permission.map(str::to_owned);
    }

    /// `login` accepts their invitation to `owner/repo`: they become a direct collaborator with
    /// the permission offered. False when there was none.
    pub fn accept_repo_invitation(&mut self, repo: &str, login: &str) -> bool {
        let Some(r) = self.repos.get_mut(&repo.to_lowercase()) else { return false };
        let Some(p) = r.invitations.remove(&login.to_lowercase()) else { return false };
        r.collaborators.insert(login.to_lowercase(), p);
        true
    }

    /// `login` accepts their invitation to `org`: they become an active member with the role
    /// offered. False when there was none.
    pub fn accept_org_invitation(&mut self, org: &str, login: &str) -> bool {
        let Some(o) = self.orgs.get_mut(&org.to_lowercase()) else { return false };
        let Some(role) = o.invitations.remove(&login.to_lowercase()) else { return false };
        o.members.insert(login.to_lowercase(), role);
        true
    }

    /// The highest permission `login` has on the repository `key`, with where it comes from:
    /// "Get repository permissions for a user"
    /// (https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user)
    /// and "List repository collaborators" (`role_name` is "the highest role assigned to the
    /// collaborator after considering all sources of grants, including: repo, teams,
    /// organization, and enterprise"). Sources: the direct grant, each team the user is an
    /// active member of, the organisation's base permission for members, and ownership
    /// ("organization owners have admin access to every repository").
    pub fn effective_permission(&self, key: &str, login: &str) -> Option<String> {
        let (key, login) = (key.to_lowercase(), login.to_lowercase());
        let mut grants: Vec<String> = Vec::new();
        if let Some(p) = self.repos.get(&key).and_then(|r| r.collaborators.get(&login)) {
            grants.push(p.clone());
        }
        if let Some(org) = key.split_once('/').and_then(|(o, _)| self.orgs.get(o)) {
            match org.members.get(&login).map(String::as_str) {
                Some("admin") => grants.push("admin".to_owned()),
                Some(_) => grants.extend(org.base_permission.clone()),
                None => {}
            }
            for team in org.teams.values() {
                if team.members.get(&login).is_some_and(|(_, state)| state == "active") {
                    grants.extend(team.repos.get(&key).cloned());
                }
            }
        }
        grants.into_iter().max_by_key(|p| LEVELS.iter().position(|l| l == p))
    }

    /// Invites `login` (created if needed) to `org` with `role`, pending.
    pub fn invite_org_member(&mut self, org: &str, login: &str, role: &str) {
        self.add_user(login);
        self.orgs.entry(org.to_lowercase()).or_default().invitations.insert(login.to_lowercase(), role.to_owned());
    }

    /// Registers a token for `login`.
    pub fn add_token(&mut self, token: &str, login: &str, scopes: Option<&[&str]>, write: bool) {
        self.add_user(login);
        let scopes = scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect());
        self.tokens.insert(token.to_owned(), FakeToken { login: login.to_owned(), scopes, write });
    }

    /// The login GitHub stores for `key` (logins are case-insensitive).
    fn login(&self, key: &str) -> String {
        self.users.get(&key.to_lowercase()).cloned().unwrap_or_else(|| key.to_owned())
    }

    fn user_json(&self, key: &str) -> Value {
        let login = self.login(key);
        json!({"login": login, "id": user_id(&login), "type": "User", "site_admin": false,
               "url": format!("https://api.github.com/users/{login}")})
    }

    /// Answers one request. `path` is percent-decoded; `query` decoded pairs; `token` the
    /// bearer credential the switchboard accepted; `origin` (`http://127.0.0.1:port`) builds
    /// `Link` URLs.
    pub fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        token: Option<&str>,
        body: Option<&Value>,
        origin: &str,
    ) -> Reply {
        self.requests += 1;
        self.rate_remaining = self.rate_remaining.saturating_sub(1);
        let caller = token.and_then(|t| self.tokens.get(t)).cloned();
        let mut r = match &caller {
            None => reply(
                401,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
            ),
            Some(c) => self.route(method, path, query, c, body, origin),
        };
        r.headers.extend([
            ("x-github-request-id".to_owned(), format!("FAKE:{:04X}:{:06X}", self.requests % 0xFFFF, self.requests)),
            ("x-ratelimit-limit".to_owned(), RATE_LIMIT.to_string()),
            ("x-ratelimit-remaining".to_owned(), self.rate_remaining.to_string()),
            ("x-ratelimit-used".to_owned(), (RATE_LIMIT - self.rate_remaining).to_string()),
            ("x-ratelimit-reset".to_owned(), (time::OffsetDateTime::now_utc().unix_timestamp() + 3600).to_string()),
            ("x-ratelimit-resource".to_owned(), "core".to_owned()),
        ]);
        if let Some(scopes) = caller.and_then(|c| c.scopes) {
            r.headers.push(("x-oauth-scopes".to_owned(), scopes.join(", ")));
        }
        r
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        caller: &FakeToken,
        body: Option<&Value>,
        origin: &str,
    ) -> Reply {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let write = !matches!(method, "GET" | "HEAD");
        if write && !caller.write {
            let message = if segs.first() == Some(&"repos") {
                "Must have admin rights to Repository."
            } else {
                "You must be an admin to update this organization membership."
            };
            return reply(403, error_body(message));
        }
        let body_str = |k: &str| body.and_then(|b| b.get(k)).and_then(Value::as_str).map(str::to_owned);
        match (method, segs.as_slice()) {
            ("GET", ["user"]) => reply(200, self.user_json(&caller.login)),
            ("GET", ["rate_limit"]) => {
                let core = json!({"limit": RATE_LIMIT, "remaining": self.rate_remaining, "used": RATE_LIMIT - self.rate_remaining, "reset": 0});
                reply(200, json!({"resources": {"core": core}, "rate": core}))
            }
            ("GET", ["users", u]) => {
                if self.users.contains_key(&u.to_lowercase()) {
                    reply(200, self.user_json(u))
                } else {
                    not_found()
                }
            }
            (_, ["repos", owner, name, rest @ ..]) => {
                let key = format!("{owner}/{name}").to_lowercase();
                if !self.repos.contains_key(&key) {
                    return not_found();
                }
                self.repo(method, &key, rest, query, body_str("permission"), origin, path)
            }
            (_, ["orgs", org, rest @ ..]) => {
                let key = org.to_lowercase();
                if !self.orgs.contains_key(&key) {
                    return not_found();
                }
                match (method, rest) {
                    ("GET", ["repos"]) => {
                        let items = self.org_repos(&key).into_iter().map(|r| json!({"full_name": r})).collect();
                        page(items, query, origin, path)
                    }
                    ("GET", ["outside_collaborators"]) => {
                        let items = self.outside_collaborators(&key).iter().map(|l| self.user_json(l)).collect();
                        page(items, query, origin, path)
                    }
                    ("DELETE", ["outside_collaborators", u]) => self.remove_outside_collaborator(&key, u),
                    _ => self.org(method, &key, rest, body_str("role")),
                }
            }
            _ => not_found(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repo(
        &mut self,
        method: &str,
        key: &str,
        rest: &[&str],
        query: &[(String, String)],
        permission: Option<String>,
        origin: &str,
        path: &str,
    ) -> Reply {
        let users = self.users.clone();
        let Some(repo) = self.repos.get(key).cloned() else { return not_found() };
        match (method, rest) {
            // "List repository collaborators"
            // (https://docs.github.com/en/rest/collaborators/collaborators#list-repository-collaborators):
            // `affiliation=direct` lists the direct collaborators, the default `all` also
            // everyone with access through a team, the base permission or ownership. "The
            // permissions hash returned in the response contains the base role permissions of
            // the collaborator" (their own grant), while "the role_name is the highest role
            // assigned to the collaborator after considering all sources of grants".
            ("GET", ["collaborators"]) => {
                let direct = query.iter().any(|(k, v)| k == "affiliation" && v == "direct");
                let mut logins: Vec<String> = repo.collaborators.keys().cloned().collect();
                if !direct {
                    logins.extend(users.keys().filter(|l| self.effective_permission(key, l).is_some()).cloned());
                    logins.sort();
                    logins.dedup();
                }
                let items: Vec<Value> = logins
                    .iter()
                    .map(|l| {
                        let effective = self.effective_permission(key, l).unwrap_or_default();
                        let own = repo.collaborators.get(l).unwrap_or(&effective);
                        let mut u = self.user_json(l);
                        u["permissions"] = permission_flags(own);
                        u["role_name"] = json!(role_name(&effective));
                        u
                    })
                    .collect();
                page(items, query, origin, path)
            }
            // "List repository teams" (https://docs.github.com/en/rest/repos/repos#list-repository-teams):
            // the teams with access to the repository, each with the `permission` it grants.
            ("GET", ["teams"]) => {
                let org = key.split_once('/').map_or(key, |(o, _)| o);
                let items: Vec<Value> = self
                    .orgs
                    .get(org)
                    .map(|o| {
                        o.teams
                            .iter()
                            .filter_map(|(slug, t)| {
                                let p = t.repos.get(key)?;
                                Some(json!({"slug": slug, "name": slug, "permission": p,
                                            "organization": {"login": org}}))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                page(items, query, origin, path)
            }
            ("GET", ["invitations"]) => {
                let items: Vec<Value> = repo
                    .invitations
                    .iter()
                    .map(|(l, p)| {
                        json!({"id": invitation_id(key, l), "repository": {"full_name": key}, "invitee": self.user_json(l),
                               "permissions": role_name(p), "created_at": "2025-01-01T00:00:00Z"})
                    })
                    .collect();
                page(items, query, origin, path)
            }
            ("GET", ["collaborators", u]) => {
                if repo.collaborators.contains_key(&u.to_lowercase()) {
                    no_content()
                } else {
                    not_found()
                }
            }
            ("GET", ["collaborators", u, "permission"]) => {
                if !users.contains_key(&u.to_lowercase()) {
                    return not_found();
                }
                // "Get repository permissions for a user": `permission` is the legacy
                // admin/write/read/none (maintain reads write, triage read); `role_name` and the
                // user's `permissions` hash are the highest role from every source.
                let p = self.effective_permission(key, u);
                let legacy = match p.as_deref() {
                    Some("admin") => "admin",
                    Some("push" | "maintain") => "write",
                    Some(_) => "read",
                    None => "none",
                };
                let mut user = self.user_json(u);
                user["permissions"] = permission_flags(p.as_deref().unwrap_or("none"));
                reply(
                    200,
                    json!({"permission": legacy, "role_name": p.as_deref().map(role_name).unwrap_or(""), "user": user}),
                )
            }
            ("PUT", ["collaborators", u]) => {
                let login = u.to_lowercase();
                if !users.contains_key(&login) {
                    return not_found();
                }
                let p = permission.unwrap_or_else(|| "push".to_owned());
                if !LEVELS.contains(&p.as_str()) {
                    return invalid("permission");
                }
                // "Add a repository collaborator"
                // (https://docs.github.com/en/rest/collaborators/collaborators#add-a-repository-collaborator):
                // for someone already a collaborator the permission is updated, 204 without a
                // body; anyone else is sent an invitation, 201 with the invitation object, and
                // has no access until they accept it.
                let Some(repo) = self.repos.get_mut(key) else { return not_found() };
                if let Some(existing) = repo.collaborators.get_mut(&login) {
                    *existing = p;
                    return no_content();
                }
                repo.invitations.insert(login.clone(), p.clone());
                reply(
                    201,
                    json!({"id": invitation_id(key, &login), "repository": {"full_name": key}, "invitee": self.user_json(&login),
                           "permissions": role_name(&p), "created_at": "2025-01-01T00:00:00Z"}),
                )
            }
            ("DELETE", ["collaborators", u]) => {
                if let Some(repo) = self.repos.get_mut(key) {
                    repo.collaborators.remove(&u.to_lowercase());
                }
                no_content()
            }
            // "Delete a repository invitation"
            // (https://docs.github.com/en/rest/collaborators/invitations#delete-a-repository-invitation):
            // `DELETE /repos/{owner}/{repo}/invitations/{invitation_id}` cancels the pending
            // invitation, 204. Removing a collaborator does not touch invitations.
            ("DELETE", ["invitations", id]) => {
                let Some(repo) = self.repos.get_mut(key) else { return not_found() };
                let Some(login) = repo.invitations.keys().find(|l| invitation_id(key, l).to_string() == *id).cloned()
                else {
                    return not_found();
                };
                repo.invitations.remove(&login);
                no_content()
            }
            _ => not_found(),
        }
    }

    /// The organisation's repositories (`org/name`), in name order.
    fn org_repos(&self, org: &str) -> Vec<String> {
        self.repos.keys().filter(|r| r.split_once('/').is_some_and(|(o, _)| o == org)).cloned().collect()
    }

    /// "List outside collaborators for an organization"
    /// (https://docs.github.com/en/rest/orgs/outside-collaborators#list-outside-collaborators-for-an-organization):
    /// collaborators on at least one of the organisation's repositories who are not members.
    /// Pending invitees are not listed.
    fn outside_collaborators(&self, org: &str) -> Vec<String> {
        let members = self.orgs.get(org).map(|o| o.members.clone()).unwrap_or_default();
        let mut out: Vec<String> = self
            .org_repos(org)
            .iter()
            .flat_map(|r| self.repos[r].collaborators.keys().cloned())
            .filter(|l| !members.contains_key(l))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// "Remove outside collaborator from an organization"
    /// (https://docs.github.com/en/rest/orgs/outside-collaborators#remove-outside-collaborator-from-an-organization):
    /// removes the user from every repository of the organisation, 204; 422 for a member.
    fn remove_outside_collaborator(&mut self, org: &str, login: &str) -> Reply {
        let login = login.to_lowercase();
        if self.orgs.get(org).is_some_and(|o| o.members.contains_key(&login)) {
            return reply(
                422,
                error_body("You cannot specify an organization member to remove as an outside collaborator."),
            );
        }
        for r in self.org_repos(org) {
            if let Some(repo) = self.repos.get_mut(&r) {
                repo.collaborators.remove(&login);
            }
        }
        no_content()
    }

    fn org(&mut self, method: &str, key: &str, rest: &[&str], role: Option<String>) -> Reply {
        let users = self.users.clone();
        let Some(org) = self.orgs.get(key).cloned() else { return not_found() };
        let membership = |state: &str, role: &str, login: &str| {
            json!({"url": format!("https://api.github.com/orgs/{key}/memberships/{login}"), "state": state, "role": role,
                   "organization": {"login": key}, "user": {"login": users.get(login).cloned().unwrap_or_default()}})
        };
        match (method, rest) {
            // "Get an organization" (https://docs.github.com/en/rest/orgs/orgs#get-an-organization):
            // `default_repository_permission` is `read`, `write`, `admin` or `none`.
            ("GET", []) => {
                let base = org.base_permission.as_deref().map_or("none", role_name);
                reply(200, json!({"login": key, "default_repository_permission": base}))
            }
            ("GET", ["members", u]) => {
                if org.members.contains_key(&u.to_lowercase()) {
                    no_content()
                } else {
                    not_found()
                }
            }
            // "Remove an organization member" (https://docs.github.com/en/rest/orgs/members#remove-an-organization-member)
            // acts on members only: a pending invitation is left as it is.
            ("DELETE", ["members", u]) => {
                let login = u.to_lowercase();
                let Some(o) = self.orgs.get_mut(key) else { return not_found() };
                if o.members.remove(&login).is_none() {
                    return not_found();
                }
                for team in o.teams.values_mut() {
                    team.members.remove(&login);
                }
                no_content()
            }
            // "Remove organization membership for a user"
            // (https://docs.github.com/en/rest/orgs/members#remove-organization-membership-for-a-user):
            // removes an active member from the organisation, or cancels a pending invitation, 204.
            ("DELETE", ["memberships", u]) => {
                let login = u.to_lowercase();
                let Some(o) = self.orgs.get_mut(key) else { return not_found() };
                if o.members.remove(&login).is_some() {
                    for team in o.teams.values_mut() {
                        team.members.remove(&login);
                    }
                } else if o.invitations.remove(&login).is_none() {
                    return not_found();
                }
                no_content()
            }
            ("GET", ["memberships", u]) => {
                let login = u.to_lowercase();
                match (org.members.get(&login), org.invitations.get(&login)) {
                    (Some(r), _) => reply(200, membership("active", r, &login)),
                    (None, Some(r)) => reply(200, membership("pending", r, &login)),
                    _ => not_found(),
                }
            }
            ("PUT", ["memberships", u]) => {
                let login = u.to_lowercase();
                if !users.contains_key(&login) {
                    return not_found();
                }
                let r = role.unwrap_or_else(|| "member".to_owned());
                // GitHub's REST reference, "Set organization membership for a user"
                // (https://docs.github.com/en/rest/orgs/members#set-organization-membership-for-a-user):
                // `role` is an enum of `admin` and `member` only. `billing_manager`, which the
                // membership read does return, is managed by other calls and answered 422 here.
                if r != "admin" && r != "member" {
                    return invalid("role");
                }
                // Same page: a member's role is changed and stays `active`; anyone else is
                // invited, "the membership status will be `pending` until they accept the
                // invitation".
                let Some(o) = self.orgs.get_mut(key) else { return not_found() };
                if let Some(existing) = o.members.get_mut(&login) {
                    *existing = r.clone();
                    return reply(200, membership("active", &r, &login));
                }
                o.invitations.insert(login.clone(), r.clone());
                reply(200, membership("pending", &r, &login))
            }
            ("GET", ["teams", slug]) => {
                if org.teams.contains_key(&slug.to_lowercase()) {
                    reply(200, json!({"slug": slug, "name": slug, "organization": {"login": key}}))
                } else {
                    not_found()
                }
            }
            (_, ["teams", slug, "memberships", u]) => {
                let (slug, login) = (slug.to_lowercase(), u.to_lowercase());
                let Some(team) = org.teams.get(&slug) else { return not_found() };
                let url = format!("https://api.github.com/orgs/{key}/teams/{slug}/memberships/{login}");
                match method {
                    "GET" => match team.members.get(&login) {
                        // GitHub's REST reference, "Get team membership for a user"
                        // (https://docs.github.com/en/rest/teams/members#get-team-membership-for-a-user):
                        // "The `role` for organization owners is set to `maintainer`", whatever
                        // role the owner was given on the team.
                        Some((_, s)) if org.members.get(&login).is_some_and(|r| r == "admin") => {
                            reply(200, json!({"url": url, "role": "maintainer", "state": s}))
                        }
                        Some((r, s)) => reply(200, json!({"url": url, "role": r, "state": s})),
                        None => not_found(),
                    },
                    "PUT" => {
                        if !users.contains_key(&login) {
                            return not_found();
                        }
                        let r = role.unwrap_or_else(|| "member".to_owned());
                        if r != "member" && r != "maintainer" {
                            return invalid("role");
                        }
                        let state = if org.members.contains_key(&login) { "active" } else { "pending" };
                        let Some(t) = self.orgs.get_mut(key).and_then(|o| o.teams.get_mut(&slug)) else {
                            return not_found();
                        };
                        t.members.insert(login, (r.clone(), state.to_owned()));
                        reply(200, json!({"url": url, "role": r, "state": state}))
                    }
                    "DELETE" => {
                        let Some(t) = self.orgs.get_mut(key).and_then(|o| o.teams.get_mut(&slug)) else {
                            return not_found();
                        };
                        if t.members.remove(&login).is_some() { no_content() } else { not_found() }
                    }
                    _ => not_found(),
                }
            }
            _ => not_found(),
        }
    }
}

/// One page of `items` per `per_page` (default 30, at most 100) and `page` (1-based), with
/// GitHub's `Link` header.
fn page(items: Vec<Value>, query: &[(String, String)], origin: &str, path: &str) -> Reply {
    let q = |k: &str| query.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.parse::<usize>().ok());
    let per_page = q("per_page").unwrap_or(30).clamp(1, 100);
    let page = q("page").unwrap_or(1).max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut r = reply(200, Value::Array(slice));
    let link_to = |p: usize| {
        let mut pairs: Vec<String> =
            query.iter().filter(|(k, _)| k != "page").map(|(k, v)| format!("{k}={v}")).collect();
        pairs.push(format!("page={p}"));
        format!("{origin}{path}?{}", pairs.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
        links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    }
    if !links.is_empty() {
        r.headers.push(("link".to_owned(), links.join(", ")));
    }
    r
}

/// How the fake answers injected faults: GitHub's primary rate limit, its error bodies.
#[derive(Debug, Clone, Copy)]
pub struct GitHubProvider;

impl Provider for GitHubProvider {
    fn throttled(&self) -> Response {
        let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 30;
        let headers = [
            ("x-ratelimit-limit", RATE_LIMIT.to_string()),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-used", RATE_LIMIT.to_string()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
            ("x-github-request-id", "FAKE:THROTTLED".to_owned()),
        ];
        let body = json!({"message": "API rate limit exceeded for user ID 1.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"});
        json_response(StatusCode::FORBIDDEN, &headers, &body)
    }

    fn server_error(&self, status: StatusCode) -> Response {
        json_response(status, &[("x-github-request-id", "FAKE:ERROR".to_owned())], &error_body("Server Error"))
    }

    fn unauthorized(&self) -> Response {
        let body =
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"});
        json_response(StatusCode::UNAUTHORIZED, &[("x-github-request-id", "FAKE:AUTH".to_owned())], &body)
    }
}

/// The token of the fake's writing account, with scopes `repo, admin:org`.
pub const ADMIN_TOKEN: &str = "ghp_fakeAdminToken0123456789abcdefABCDEF";

/// A token of an account that may read but not write, with scope `read:org`.
pub const READ_ONLY_TOKEN: &str = "ghp_fakeReadOnlyToken0123456789abcdefAB";

/// A running fake GitHub sharing one [`GitHubState`].
pub struct GitHubFake {
    server: FakeServer,
    state: Arc<Mutex<GitHubState>>,
}

impl std::fmt::Debug for GitHubFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubFake").field("server", &self.server).finish_non_exhaustive()
    }
}

impl GitHubFake {
    /// Starts a fake on loopback with [`ADMIN_TOKEN`] (account `remediation-bot`, may write)
    /// and [`READ_ONLY_TOKEN`] (account `auditor`, may not), after `seed` ran.
    pub async fn start(seed: impl FnOnce(&mut GitHubState)) -> std::io::Result<Self> {
        let mut state = GitHubState::new();
        state.add_token(ADMIN_TOKEN, "remediation-bot", Some(&["repo", "admin:org"]), true);
        state.add_token(READ_ONLY_TOKEN, "auditor", Some(&["read:org"]), false);
        seed(&mut state);
        let faults = Faults::new();
        for token in state.tokens.keys() {
            faults.allow_token(token);
        }
        let state = Arc::new(Mutex::new(state));
        let router = Router::new().fallback(any(handler)).with_state(Arc::clone(&state));
        let server = FakeServer::start_with(router, GitHubProvider, faults, RequestLog::new()).await?;
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:<port>`: the API base URL to configure.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The provider's state, to seed and inspect.
    pub fn state(&self) -> MutexGuard<'_, GitHubState> {
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

async fn handler(State(state): State<Arc<Mutex<GitHubState>>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let token = parts.extensions.get::<Caller>().map(|c| c.0.clone());
    let origin =
        parts.headers.get("host").and_then(|h| h.to_str().ok()).map(|h| format!("http://{h}")).unwrap_or_default();
    let path: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .map(|s| url_pairs(&format!("x={}", s.replace('+', "%2B"))).pop().map(|(_, v)| v).unwrap_or_default())
        .collect();
    let query = parts.uri.query().map(url_pairs).unwrap_or_default();
    let body: Option<Value> = if bytes.is_empty() { None } else { serde_json::from_slice(&bytes).ok() };
    if !bytes.is_empty() && body.is_none() {
        return json_response(StatusCode::BAD_REQUEST, &[], &error_body("Problems parsing JSON"));
    }
    let r = state.lock().unwrap_or_else(PoisonError::into_inner).handle(
        parts.method.as_str(),
        &path.join("/"),
        &query,
        token.as_deref(),
        body.as_ref(),
        &origin,
    );
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers: Vec<(&str, String)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    match r.body {
        Some(b) => json_response(status, &headers, &b),
        None => empty_response(status, &headers),
    }
}

/// A stable invitation id per repository and login, as GitHub keeps an invitation's id for
/// its lifetime whatever else is invited or cancelled.
fn invitation_id(repo: &str, login: &str) -> u64 {
    user_id(&format!("{repo}#{login}"))
}

/// A stable numeric id per login (FNV-1a of the lower-cased login): distinct users get
/// distinct ids, and every spelling of one login the same.
fn user_id(login: &str) -> u64 {
    login.to_lowercase().bytes().fold(0x811c_9dc5_u64, |h, b| ((h ^ u64::from(b)) * 0x0100_0193) & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn state() -> GitHubState {
        let mut s = GitHubState::new();
        s.add_token(ADMIN_TOKEN, "bot", Some(&["repo", "admin:org"]), true);
        s.add_token(READ_ONLY_TOKEN, "auditor", None, false);
        s.add_collaborator("acme/payments", "octocat", "push");
        s.add_org_member("acme", "octocat", "admin");
        s.add_team_member("acme", "platform", "octocat", "maintainer");
        s
    }

    fn call(s: &mut GitHubState, method: &str, path: &str, body: Option<Value>) -> Reply {
        s.handle(method, path, &[], Some(ADMIN_TOKEN), body.as_ref(), "http://h")
    }

    #[test]
    fn collaborators_update_with_204_and_invite_with_201() {
        let mut s = state();
        let r = call(&mut s, "PUT", "/repos/acme/payments/collaborators/octocat", Some(json!({"permission": "pull"})));
        assert_eq!(r.status, 204);
        assert_eq!(s.repos["acme/payments"].collaborators["octocat"], "pull");
        assert_eq!(call(&mut s, "DELETE", "/repos/acme/payments/collaborators/octocat", None).status, 204);
        let r = call(&mut s, "PUT", "/repos/acme/payments/collaborators/octocat", Some(json!({"permission": "push"})));
        assert_eq!(r.status, 201);
        assert_eq!(r.body.unwrap()["permissions"], json!("write"));
        assert!(s.repos["acme/payments"].collaborators.is_empty());
        assert_eq!(call(&mut s, "PUT", "/repos/acme/payments/collaborators/nobody", None).status, 404);
    }

    #[test]
    fn org_and_team_memberships() {
        let mut s = state();
        let r = call(&mut s, "GET", "/orgs/acme/memberships/octocat", None);
        assert_eq!(r.body.unwrap()["role"], json!("admin"));
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/members/octocat", None).status, 204);
        assert_eq!(call(&mut s, "GET", "/orgs/acme/teams/platform/memberships/octocat", None).status, 404);
        let r = call(&mut s, "PUT", "/orgs/acme/memberships/octocat", Some(json!({"role": "admin"})));
        assert_eq!(r.body.unwrap()["state"], json!("pending"));
        let r = call(&mut s, "PUT", "/orgs/acme/memberships/octocat", Some(json!({"role": "owner"})));
        assert_eq!(r.status, 422);
    }

    #[test]
    fn invitations_are_cancelled_only_by_their_documented_calls() {
        let mut s = state();
        s.invite_collaborator("acme/payments", "newbie", "push");
        s.invite_collaborator("acme/payments", "other", "pull");
        s.invite_org_member("acme", "newbie", "member");
        // Removing a collaborator or an organisation member leaves an invitation pending.
        assert_eq!(call(&mut s, "DELETE", "/repos/acme/payments/collaborators/newbie", None).status, 204);
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/members/newbie", None).status, 404);
        assert!(s.repos["acme/payments"].invitations.contains_key("newbie"));
        assert_eq!(call(&mut s, "GET", "/orgs/acme/memberships/newbie", None).body.unwrap()["state"], "pending");
        // An invitation id is stable: cancelling another invitation does not renumber it.
        let list = call(&mut s, "GET", "/repos/acme/payments/invitations", None).body.unwrap();
        let id_of = |list: &Value, login: &str| {
            list.as_array().unwrap().iter().find(|i| i["invitee"]["login"] == login).unwrap()["id"].clone()
        };
        let (newbie, other) = (id_of(&list, "newbie"), id_of(&list, "other"));
        assert_eq!(call(&mut s, "DELETE", &format!("/repos/acme/payments/invitations/{other}"), None).status, 204);
        let list = call(&mut s, "GET", "/repos/acme/payments/invitations", None).body.unwrap();
        assert_eq!(id_of(&list, "newbie"), newbie);
        assert_eq!(call(&mut s, "DELETE", &format!("/repos/acme/payments/invitations/{newbie}"), None).status, 204);
        assert!(s.repos["acme/payments"].invitations.is_empty());
        assert_eq!(call(&mut s, "DELETE", &format!("/repos/acme/payments/invitations/{newbie}"), None).status, 404);
        // The membership call cancels an organisation invitation, and removes an active member.
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/memberships/newbie", None).status, 204);
        assert_eq!(call(&mut s, "GET", "/orgs/acme/memberships/newbie", None).status, 404);
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/memberships/newbie", None).status, 404);
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/memberships/octocat", None).status, 204);
        assert!(!s.orgs["acme"].members.contains_key("octocat"));
        assert!(!s.orgs["acme"].teams["platform"].members.contains_key("octocat"));
    }

    #[test]
    fn outside_collaborators_are_listed_and_removed_from_every_repository() {
        let mut s = state();
        s.add_collaborator("acme/payments", "contractor", "push");
        s.add_collaborator("acme/billing", "contractor", "pull");
        s.add_collaborator("other/tool", "contractor", "admin");
        let r = call(&mut s, "GET", "/orgs/acme/outside_collaborators", None);
        assert_eq!(r.body.unwrap(), json!([s.user_json("contractor")]), "octocat is a member, not outside");
        let r = call(&mut s, "GET", "/orgs/acme/repos", None);
        assert_eq!(r.body.unwrap(), json!([{"full_name": "acme/billing"}, {"full_name": "acme/payments"}]));
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/outside_collaborators/octocat", None).status, 422);
        assert_eq!(call(&mut s, "DELETE", "/orgs/acme/outside_collaborators/contractor", None).status, 204);
        assert!(!s.repos["acme/payments"].collaborators.contains_key("contractor"));
        assert!(!s.repos["acme/billing"].collaborators.contains_key("contractor"));
        assert_eq!(s.repos["other/tool"].collaborators["contractor"], "admin", "another organisation's repository");
        assert_eq!(s.repos["acme/payments"].collaborators["octocat"], "push");
    }

    #[test]
    fn role_name_is_the_highest_role_from_every_source() {
        let mut s = state();
        s.add_collaborator("acme/payments", "dev", "pull");
        s.add_team_member("acme", "platform", "dev", "member");
        s.add_team_repo("acme", "platform", "acme/payments", "admin");
        let q = vec![("affiliation".to_owned(), "direct".to_owned())];
        let r = s.handle("GET", "/repos/acme/payments/collaborators", &q, Some(ADMIN_TOKEN), None, "http://h");
        let list = r.body.unwrap();
        let dev = list.as_array().unwrap().iter().find(|u| u["login"] == "dev").unwrap().clone();
        assert_eq!(dev["role_name"], json!("admin"), "the highest role, through the team");
        assert_eq!(dev["permissions"]["push"], json!(false), "the direct grant is pull");
        let r = call(&mut s, "GET", "/repos/acme/payments/collaborators/dev/permission", None).body.unwrap();
        assert_eq!((r["permission"].clone(), r["role_name"].clone()), (json!("admin"), json!("admin")));
        let r = call(&mut s, "GET", "/repos/acme/payments/teams", None).body.unwrap();
        assert_eq!(r[0]["slug"], json!("platform"));
        assert_eq!(r[0]["permission"], json!("admin"));
        // The base permission reaches members only; owners have admin everywhere.
        s.set_base_permission("acme", Some("push"));
        s.add_org_member("acme", "plain", "member");
        s.add_user("stranger");
        let role = |s: &mut GitHubState, u: &str| {
            call(s, "GET", &format!("/repos/acme/payments/collaborators/{u}/permission"), None).body.unwrap()["role_name"]
                .clone()
        };
        assert_eq!(role(&mut s, "plain"), json!("write"));
        assert_eq!(role(&mut s, "octocat"), json!("admin"), "an owner");
        assert_eq!(role(&mut s, "stranger"), json!(""));
        assert_eq!(call(&mut s, "GET", "/orgs/acme", None).body.unwrap()["default_repository_permission"], "write");
        // Without affiliation=direct, access through a team or the base permission is listed too.
        let all = call(&mut s, "GET", "/repos/acme/payments/collaborators", None).body.unwrap();
        assert!(all.as_array().unwrap().iter().any(|u| u["login"] == "plain"));
    }

    #[test]
    fn invitations_wait_for_acceptance() {
        let mut s = state();
        assert_eq!(call(&mut s, "DELETE", "/repos/acme/payments/collaborators/octocat", None).status, 204);
        let r = call(&mut s, "PUT", "/repos/acme/payments/collaborators/octocat", Some(json!({"permission": "push"})));
        assert_eq!(r.status, 201);
        assert_eq!(s.effective_permission("acme/payments", "octocat").as_deref(), Some("admin"), "still an owner");
        assert!(s.accept_repo_invitation("acme/payments", "octocat"));
        assert_eq!(s.repos["acme/payments"].collaborators["octocat"], "push");
        s.add_user("newbie");
        let r = call(&mut s, "PUT", "/orgs/acme/memberships/newbie", Some(json!({"role": "member"})));
        assert_eq!(r.body.unwrap()["state"], json!("pending"));
        assert!(s.accept_org_invitation("acme", "newbie"));
        assert_eq!(call(&mut s, "GET", "/orgs/acme/memberships/newbie", None).body.unwrap()["state"], "active");
    }

    #[test]
    fn billing_managers_are_read_but_cannot_be_set_through_the_membership_call() {
        let mut s = state();
        s.add_org_member("acme", "biller", "billing_manager");
        let r = call(&mut s, "GET", "/orgs/acme/memberships/biller", None);
        assert_eq!(r.body.unwrap()["role"], json!("billing_manager"));
        let r = call(&mut s, "PUT", "/orgs/acme/memberships/biller", Some(json!({"role": "billing_manager"})));
        assert_eq!(r.status, 422);
        assert_eq!(s.orgs["acme"].members["biller"], "billing_manager");
    }

    #[test]
    fn an_owner_is_reported_as_a_team_maintainer_whatever_the_team_role() {
        let mut s = state();
        s.add_team_member("acme", "platform", "owner", "member");
        s.add_org_member("acme", "owner", "admin");
        s.add_team_member("acme", "platform", "plain", "member");
        let r = call(&mut s, "GET", "/orgs/acme/teams/platform/memberships/owner", None);
        assert_eq!(r.body.unwrap()["role"], json!("maintainer"));
        let r = call(&mut s, "GET", "/orgs/acme/teams/platform/memberships/plain", None);
        assert_eq!(r.body.unwrap()["role"], json!("member"));
    }

    #[test]
    fn read_only_tokens_and_headers() {
        let mut s = state();
        let r = s.handle("DELETE", "/repos/acme/payments/collaborators/octocat", &[], Some(READ_ONLY_TOKEN), None, "");
        assert_eq!(r.status, 403);
        assert_eq!(r.body.unwrap()["message"], json!("Must have admin rights to Repository."));
        assert!(!r.headers.iter().any(|(k, _)| k == "x-oauth-scopes"), "fine-grained tokens send no scopes");
        let r = call(&mut s, "GET", "/user", None);
        let header = |n: &str| r.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(header("x-oauth-scopes").as_deref(), Some("repo, admin:org"));
        assert!(header("x-github-request-id").is_some());
        assert!(header("x-ratelimit-remaining").is_some());
        assert_eq!(s.handle("GET", "/user", &[], Some("wrong"), None, "").status, 401);
    }

    #[test]
    fn listings_are_paged_with_link_headers() {
        let mut s = state();
        for i in 0..4 {
            s.add_collaborator("acme/payments", &format!("u{i}"), "pull");
        }
        let q = vec![("affiliation".to_owned(), "direct".to_owned()), ("per_page".to_owned(), "2".to_owned())];
        let r = s.handle("GET", "/repos/acme/payments/collaborators", &q, Some(ADMIN_TOKEN), None, "http://h");
        assert_eq!(r.body.as_ref().unwrap().as_array().unwrap().len(), 2);
        let link = r.headers.iter().find(|(k, _)| k == "link").unwrap().1.clone();
        assert!(
            link.contains(
                "<http://h/repos/acme/payments/collaborators?affiliation=direct&per_page=2&page=2>; rel=\"next\""
            ),
            "{link}"
        );
        assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    }
}
