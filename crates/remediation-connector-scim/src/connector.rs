//! [`ScimConnector`]: the [`Connector`] implementation over a SCIM 2.0 service.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_http::{
    ApiPath, HttpClient, HttpClientBuilder, PageStyle, ProviderError, Request, Response, RetryPolicy, StaticToken,
    ThrottleSignal,
};
use remediation_core::{
    Account, AccountKey, Action, ActionKind, CanonicalTarget, Capability, Connector, ConnectorError,
    ConnectorErrorKind, Grant, Health, KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange,
    Reversibility, Snapshot, Target, Verification, check_person_key, require_capability,
};
use serde_json::Value;

use crate::config::ScimConfig;
use crate::error::ScimError;
use crate::state::{self, AccountState, MembershipState, State, Subject, grant_type, usable_id};
use crate::wire::{self, Group, SCIM_JSON, ServiceProviderConfig, User};

/// Most pages read from one listing.
const MAX_PAGES: usize = 100;

/// A connector for one SCIM 2.0 service provider. See the crate documentation for its
/// capabilities and configuration.
#[derive(Clone)]
pub struct ScimConnector {
    id: String,
    base_url: String,
    protected: BTreeSet<String>,
    page_size: u64,
    client: HttpClient,
}

impl std::fmt::Debug for ScimConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimConnector")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A live read: the normalised state, the ETag a write must send, and the request ids.
struct Live {
    state: State,
    etag: Option<String>,
    request_ids: Vec<String>,
    /// The user as the service returned it: its resource `id` and `userName`.
    user_id: String,
    user_name: String,
}

impl ScimConnector {
    /// A connector for `config`, reading its token now. Makes no request.
    pub fn new(config: &ScimConfig) -> Result<Self, ScimError> {
        Self::with_http(config, |b| b)
    }

    /// Like [`new`](Self::new), with `customize` applied to the HTTP client (a retry policy,
    /// a sleeper that does not sleep in tests).
    pub fn with_http(
        config: &ScimConfig,
        customize: impl FnOnce(HttpClientBuilder) -> HttpClientBuilder,
    ) -> Result<Self, ScimError> {
        let token = config.token.load()?;
        let builder = HttpClient::builder(config.base_url.clone())
            .allow_insecure_http(config.allow_insecure_http)
            .auth(Arc::new(StaticToken::bearer(token)))
            .default_header("accept", SCIM_JSON)
            .retry(RetryPolicy::new(ThrottleSignal::RetryAfter))
            .error_parser(Arc::new(|_status, body: &[u8]| wire::parse_error(body).map(ProviderError::message)));
        let client = customize(builder).build()?;
        Ok(Self {
            id: config.id.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            protected: config.protected.iter().cloned().collect(),
            page_size: config.page_size.clamp(1, 1000),
            client,
        })
    }

    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        require_capability(&capabilities(), "SCIM", action)
    }

    /// Whether the target is protected: by its spelling, by the user's resource `id` as the
    /// service returned it, or by its `userName` (case-insensitive, as RFC 7643 defines it).
    fn is_protected(&self, subject: Subject<'_>, live: &Live) -> bool {
        let user = |name: &str| self.protected.contains(name);
        let by_user_name = self.protected.iter().any(|p| p.eq_ignore_ascii_case(&live.user_name));
        let named = user(subject.user()) || user(&live.user_id) || (!live.user_name.is_empty() && by_user_name);
        match subject {
            Subject::Account { .. } => named,
            Subject::Membership { group, .. } => named || self.protected.contains(group),
        }
    }

    /// Reads the user a target names: by resource `id`, or, when no user has that id, by
    /// `userName` (a filtered listing), then by the id found. Returns the user and its ETag.
    async fn user(
        &self,
        identity: &str,
        attributes: &str,
        request_ids: &mut Vec<String>,
    ) -> Result<(User, Option<String>), ConnectorError> {
        let by_id = match self.get(ApiPath::new("/Users/{}", [identity]), attributes).await {
            Ok(r) => r,
            Err(e) if e.kind == ConnectorErrorKind::NotFound => {
                // `Subject::of` refused quotes and backslashes: the literal needs no escaping.
                let r = self
                    .client
                    .send(
                        Request::get("/Users")
                            .query("filter", format!("userName eq \"{identity}\""))
                            .query("attributes", "id"),
                    )
                    .await?;
                request_ids.extend(r.request_id().map(str::to_owned));
                let list: Value = r.json()?;
                let ids: Vec<&str> = list
                    .get("Resources")
                    .and_then(Value::as_array)
                    .map(|rs| rs.iter().filter_map(|u| u.get("id").and_then(Value::as_str)).collect())
                    .unwrap_or_default();
                let [id] = ids.as_slice() else {
                    return Err(e);
                };
                usable_id(id)?;
                self.get(ApiPath::new("/Users/{}", [*id]), attributes).await?
            }
            Err(e) => return Err(e),
        };
        request_ids.extend(by_id.request_id().map(str::to_owned));
        let user: User = by_id.json()?;
        let etag = etag(&by_id).or_else(|| user.meta.version.clone());
        Ok((user, etag))
    }

    async fn get(&self, path: ApiPath, attributes: &str) -> Result<Response, ConnectorError> {
        self.client.send(Request::get(path).query("attributes", attributes)).await
    }

    /// Reads the live state of `subject` and the ETag of the resource a write would change.
    async fn read(&self, subject: Subject<'_>) -> Result<Live, ConnectorError> {
        let mut request_ids = Vec::new();
        match subject {
            Subject::Account { user } => {
                let (u, etag) = self.user(user, wire::USER_ATTRIBUTES, &mut request_ids).await?;
                let (user_id, user_name) = (u.id.clone(), u.user_name.clone());
                let state = State::Account(AccountState { user: u.id, user_name: u.user_name, active: u.active });
                Ok(Live { state, etag, request_ids, user_id, user_name })
            }
            Subject::Membership { user, group } => {
                // Group membership is by the user's resource id, whatever the target called it.
                let (u, _) = self.user(user, "id,userName", &mut request_ids).await?;
                let (user_id, user_name) = (u.id, u.user_name);
                let user = user_id.as_str();
                let r = self.get(ApiPath::new("/Groups/{}", [group]), wire::GROUP_ATTRIBUTES).await?;
                request_ids.extend(r.request_id().map(str::to_owned));
                let g: Group = r.json()?;
                let group_name = g.display_name;
                let etag = etag(&r).or(g.meta.version);
                let member = match self.member_by_filter(user, group, &mut request_ids).await {
                    Err(e) if e.kind == ConnectorErrorKind::Permanent && e.message.contains("invalidFilter") => {
                        // The service cannot filter groups by member: read this group's members.
                        tracing::debug!(connector = %self.id, "member filter unsupported; reading the group's members");
                        let r = self.get(ApiPath::new("/Groups/{}", [group]), "id,members").await?;
                        request_ids.extend(r.request_id().map(str::to_owned));
                        let g: Value = r.json()?;
                        g.get("members")
                            .and_then(Value::as_array)
                            .is_some_and(|ms| ms.iter().any(|m| m.get("value").and_then(Value::as_str) == Some(user)))
                    }
                    other => other?,
                };
                let state = State::Membership(MembershipState {
                    user: user.to_owned(),
                    user_name: user_name.clone(),
                    group: group.to_owned(),
                    group_name,
                    member,
                });
                Ok(Live { state, etag, request_ids, user_id, user_name })
            }
        }
    }

    /// Whether `user` is in `group`, from the groups the user is in (filtered and paged: a
    /// group's own member list can be huge).
    async fn member_by_filter(
        &self,
        user: &str,
        group: &str,
        request_ids: &mut Vec<String>,
    ) -> Result<bool, ConnectorError> {
        let first = Request::get("/Groups")
            .query("filter", format!("members[value eq \"{user}\"]"))
            .query("attributes", "id")
            .query("startIndex", "1")
            .query("count", self.page_size.to_string());
        let is_group = |v: &Value| v.get("id").and_then(Value::as_str) == Some(group);
        let pages =
            self.client.pages(first, PageStyle::Scim { count: self.page_size }, MAX_PAGES, |v| is_group(v)).await?;
        request_ids.extend(pages.request_ids);
        let member = pages.items.iter().any(is_group);
        if !member && pages.truncated {
            return Err(ConnectorError::permanent(format!(
                "the user's groups fill more than {MAX_PAGES} pages; refusing to decide on a partial read"
            )));
        }
        Ok(member)
    }

    /// The resource ids of the users whose `userName` equals `user_name` exactly
    /// (case-insensitively, as RFC 7643 defines the attribute), by a filtered listing: the
    /// service's own matching is not trusted to be exact.
    async fn users_named(&self, user_name: &str) -> Result<Vec<String>, ConnectorError> {
        let r = self
            .client
            .send(
                Request::get("/Users")
                    .query("filter", format!("userName eq {}", filter_literal(user_name)))
                    .query("attributes", "id,userName"),
            )
            .await?;
        let list: Value = r.json()?;
        Ok(list
            .get("Resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|u| u.get("userName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(user_name)))
            .filter_map(|u| u.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The ids of the groups `user` (a resource id) is a member of, by the member filter;
    /// `None` when the service cannot filter groups by member or they fill more than
    /// [`MAX_PAGES`] pages.
    async fn groups_of(&self, user: &str) -> Result<Option<Vec<String>>, ConnectorError> {
        let first = Request::get("/Groups")
            .query("filter", format!("members[value eq {}]", filter_literal(user)))
            .query("attributes", "id")
            .query("startIndex", "1")
            .query("count", self.page_size.to_string());
        let pages =
            match self.client.pages(first, PageStyle::Scim { count: self.page_size }, MAX_PAGES, |_| false).await {
                Ok(p) => p,
                Err(e) if e.kind == ConnectorErrorKind::Permanent && e.message.contains("invalidFilter") => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
        if pages.truncated {
            return Ok(None);
        }
        Ok(Some(pages.items.iter().filter_map(|g| g.get("id").and_then(Value::as_str).map(str::to_owned)).collect()))
    }

    async fn snapshot_of(&self, subject: Subject<'_>) -> Result<(Snapshot, Live), ConnectorError> {
        let live = self.read(subject).await?;
        let canonical = CanonicalTarget {
            identity: live.user_id.clone(),
            resource: match subject {
                Subject::Membership { group, .. } => Some(group.to_owned()),
                Subject::Account { .. } => None,
            },
        };
        let protected = self.is_protected(subject, &live);
        Ok((Snapshot { canonical: Some(canonical), protected, state: live.state.to_value() }, live))
    }

    /// PATCHes `path` with `body`, sending `If-Match` when the resource has an ETag. A 412
    /// (the resource changed since it was read) is a `Conflict`.
    async fn patch(&self, path: ApiPath, body: Value, etag: Option<&str>) -> Result<Vec<String>, ConnectorError> {
        // Repeating the same PatchOp is safe: with an ETag a repeat after success is refused
        // with 412, and without one the operation sets or removes the same value again.
        let mut req = Request::patch(path).header("content-type", SCIM_JSON).json(body).idempotent();
        if let Some(tag) = etag {
            req = req.header("if-match", tag);
        }
        let r = self.client.send(req).await?;
        Ok(r.request_ids().to_vec())
    }
}

/// `value` as a SCIM filter string literal (RFC 7644 section 3.4.2.2: a JSON string), quoted
/// with its backslashes and quotes escaped, so it cannot end the literal.
fn filter_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn etag(r: &Response) -> Option<String> {
    r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn done(status: OutcomeStatus, request_ids: Vec<String>) -> Outcome {
    Outcome { status, request_ids }
}

fn capability(kind: KindName, grant_type: &str) -> Capability {
    Capability { kind, grant_type: grant_type.to_owned(), reversibility: Reversibility::Reversible, observable: true }
}

/// Every (kind, grant type) the connector supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    vec![capability(KindName::Suspend, grant_type::ACCOUNT), capability(KindName::Revoke, grant_type::GROUP_MEMBERSHIP)]
}

/// The service's support for PATCH, which every write uses.
const PATCH_SUPPORTED: &str = "PATCH support (`patch.supported` in /ServiceProviderConfig)";
const READ_USERS: &str = "read Users";
const READ_GROUPS: &str = "read Groups";
const WRITE_USERS: &str = "modify Users";
const WRITE_GROUPS: &str = "modify Groups";

/// Every SCIM call the connector makes and what it needs from the service and the token (RFC
/// 7644 leaves a token's rights to each service, so they are named by resource type).
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("GET /ServiceProviderConfig", PATCH_SUPPORTED),
    PermissionNeed::read(grant_type::ACCOUNT, "GET /Users/{id}", READ_USERS),
    // Finding a person's account: by userName, then the groups the user is in.
    PermissionNeed::read(grant_type::ACCOUNT, "GET /Users", READ_USERS),
    PermissionNeed::execute(KindName::Suspend, grant_type::ACCOUNT, "PATCH /Users/{id}", WRITE_USERS),
    PermissionNeed::rollback(KindName::Suspend, grant_type::ACCOUNT, "PATCH /Users/{id}", WRITE_USERS),
    PermissionNeed::read(grant_type::ACCOUNT, "GET /Groups", READ_GROUPS),
    PermissionNeed::read(grant_type::GROUP_MEMBERSHIP, "GET /Users/{id}", READ_USERS),
    PermissionNeed::read(grant_type::GROUP_MEMBERSHIP, "GET /Groups/{id}", READ_GROUPS),
    PermissionNeed::read(grant_type::GROUP_MEMBERSHIP, "GET /Groups", READ_GROUPS),
    PermissionNeed::execute(KindName::Revoke, grant_type::GROUP_MEMBERSHIP, "PATCH /Groups/{id}", WRITE_GROUPS),
    PermissionNeed::rollback(KindName::Revoke, grant_type::GROUP_MEMBERSHIP, "PATCH /Groups/{id}", WRITE_GROUPS),
];

#[async_trait]
impl Connector for ScimConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        Ok(match self.client.send(Request::get("/ServiceProviderConfig")).await {
            Ok(r) => match r.json::<ServiceProviderConfig>() {
                Ok(c) => Health {
                    healthy: true,
                    detail: format!(
                        "SCIM service at {}: patch {}, etag {}, filter {}",
                        self.base_url, c.patch.supported, c.etag.supported, c.filter.supported
                    ),
                },
                Err(e) => Health { healthy: false, detail: e.to_string() },
            },
            Err(e) => Health { healthy: false, detail: e.to_string() },
        })
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// A bearer token says nothing about its rights, so those are unknown; what the service
    /// supports (PATCH) is read from `/ServiceProviderConfig` without writing.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let c: ServiceProviderConfig = self.client.send(Request::get("/ServiceProviderConfig")).await?.json()?;
        Ok(Permissions::judge(PERMISSION_MAP, |need| match (need.permission, c.patch.supported) {
            (PATCH_SUPPORTED, true) => Grant::Granted,
            (PATCH_SUPPORTED, false) => Grant::Missing,
            _ => Grant::Unknown,
        })
        .because("a SCIM bearer token carries no description of its rights; a refused call shows them"))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let subject = Subject::of(target)?;
        Ok(self.snapshot_of(subject).await?.0)
    }

    /// A person is found by `userName` only (`GET /Users?filter=userName eq "…"`, the value
    /// quoted and escaped), and only when exactly one listed user's `userName` equals the key
    /// (case-insensitively); a link is read as a resource id first (`GET /Users/{id}`), then
    /// as a `userName`. The user found is read back by id and its `userName` compared again.
    /// Never `emails`. Groups are the ids the member filter lists.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        let value = key.value();
        check_person_key(value).map_err(ConnectorError::invalid_target)?;
        let by_id = match key {
            AccountKey::Link(_) => {
                match self.get(ApiPath::new("/Users/{}", [value]), "id,userName,active,displayName").await {
                    Ok(r) => Some(r.json::<Value>()?),
                    Err(e) if e.kind == ConnectorErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                }
            }
            AccountKey::Person(_) => None,
        };
        let (user, matched_by) = match by_id {
            Some(user) if user.get("id").and_then(Value::as_str) == Some(value) => (user, "id"),
            _ => {
                let ids = self.users_named(value).await?;
                let id = match ids.as_slice() {
                    [] => return Ok(None),
                    [id] => id,
                    _ => {
                        return Err(ConnectorError::permanent(format!(
                            "{} SCIM users have the userName {value}; refusing to choose one",
                            ids.len()
                        )));
                    }
                };
                usable_id(id)?;
                let user =
                    match self.get(ApiPath::new("/Users/{}", [id.as_str()]), "id,userName,active,displayName").await {
                        Ok(r) => r.json::<Value>()?,
                        Err(e) if e.kind == ConnectorErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(e),
                    };
                let same = user.get("userName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(value));
                if !same || user.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                    return Ok(None);
                }
                (user, "login")
            }
        };
        let text = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(id), Some(user_name)) = (text("id"), text("userName")) else {
            return Err(ConnectorError::permanent(format!(
                "the SCIM service answered a read of {value} without an id or userName"
            )));
        };
        let active = user.get("active").and_then(Value::as_bool).unwrap_or(true);
        let protected = self.protected.contains(value)
            || self.protected.contains(&id)
            || self.protected.iter().any(|p| p.eq_ignore_ascii_case(&user_name));
        Ok(Some(Account {
            groups: self.groups_of(&id).await?,
            id,
            login: user_name,
            matched_by: matched_by.to_owned(),
            status: Some(if active { "active" } else { "inactive" }.to_owned()),
            display_name: text("displayName"),
            sessions: None,
            protected,
        }))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        let subject = Subject::of(&action.target)?;
        let before_state = State::parse(subject, &before.state)?;
        let after = state::transform(&action.kind, &before_state)?;
        Ok(PlannedChange {
            description: state::describe(&before_state, &after),
            expected_after: Snapshot {
                canonical: before.canonical.clone(),
                protected: before.protected,
                state: after.to_value(),
            },
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        // The live state decides what to write, so a re-execution after a crash is a no-op.
        self.capability(action)?;
        let subject = Subject::of(&action.target)?;
        let live = self.read(subject).await?;
        let mut ids = live.request_ids;
        let etag = live.etag.as_deref();
        match (&action.kind, &live.state) {
            (ActionKind::Suspend, State::Account(s)) => {
                if !s.active {
                    return Ok(done(OutcomeStatus::AlreadyInState, ids));
                }
                ids.extend(
                    self.patch(ApiPath::new("/Users/{}", [s.user.as_str()]), wire::set_active(false), etag).await?,
                );
            }
            (ActionKind::Revoke, State::Membership(m)) => {
                if !m.member {
                    return Ok(done(OutcomeStatus::AlreadyInState, ids));
                }
                ids.extend(
                    self.patch(ApiPath::new("/Groups/{}", [m.group.as_str()]), wire::remove_member(&m.user), etag)
                        .await?,
                );
            }
            (kind, _) => return Err(ConnectorError::unsupported(format!("SCIM cannot {} this target", kind.name()))),
        }
        Ok(done(OutcomeStatus::Applied, ids))
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        let subject = Subject::of(&action.target)?;
        let (observed, _) = self.snapshot_of(subject).await?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        let subject = Subject::of(&action.target)?;
        let wanted = State::parse(subject, &before.state)?;
        let live = self.read(subject).await?;
        let mut ids = live.request_ids;
        let restored = match (&wanted, &live.state) {
            // Only the field the action changed is put back: a renamed user or group is still
            // restored (or already restored) by its id.
            (State::Account(w), State::Account(l)) => w.active == l.active,
            (State::Membership(w), State::Membership(l)) => w.member == l.member,
            (w, l) => w == l,
        };
        if restored {
            return Ok(done(OutcomeStatus::AlreadyInState, ids));
        }
        let etag = live.etag.as_deref();
        match (&wanted, &live.state) {
            (State::Account(w), State::Account(l)) if w.active != l.active => {
                ids.extend(
                    self.patch(ApiPath::new("/Users/{}", [w.user.as_str()]), wire::set_active(w.active), etag).await?,
                );
            }
            (State::Membership(w), State::Membership(l)) if w.member && !l.member => {
                ids.extend(
                    self.patch(ApiPath::new("/Groups/{}", [w.group.as_str()]), wire::add_member(&w.user), etag).await?,
                );
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
        }
        Ok(done(OutcomeStatus::Applied, ids))
    }
}

#[cfg(test)]
mod tests {
    use super::filter_literal;

    #[test]
    fn filter_literals_cannot_end_early() {
        assert_eq!(filter_literal("bjensen@example.com"), r#""bjensen@example.com""#);
        assert_eq!(filter_literal(r#"x" or userName pr or ""#), r#""x\" or userName pr or \"""#);
        assert_eq!(filter_literal(r"a\"), r#""a\\""#);
    }
}
