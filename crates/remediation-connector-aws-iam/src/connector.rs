//! [`AwsIamConnector`]: the [`Connector`] implementation over the IAM API, through the AWS SDK.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::config::timeout::TimeoutConfig;
use aws_sdk_iam::config::{BehaviorVersion, Region};
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::RequestId;
use aws_sdk_iam::types::StatusType;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use remediation_core::{
    Action, CanonicalTarget, Capability, Connector, ConnectorError, ConnectorErrorKind, Health, KindName, Outcome,
    OutcomeStatus, PermissionNeed, Permissions, PlannedChange, Reversibility, Snapshot, Target, Verification,
    require_capability,
};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{AwsCredentials, AwsIamConfig, IamCredentials};
use crate::error::AwsIamError;
use crate::grant::{ACCESS_KEY, GROUP_MEMBERSHIP, Grant, GrantState, LOGIN_PROFILE, USER_POLICY};
use crate::provider_error::from_sdk;
use crate::quiet::quiet;
use crate::retry::{Backoff, Sleeper, TokioSleeper, retry};

/// The tag that marks a user as protected: `remediation:protected=true`.
pub const PROTECTED_TAG: &str = "remediation:protected";

/// Every IAM action the connector calls, as named in IAM policies. `iam-policy.json` grants
/// exactly these.
pub const REQUIRED_ACTIONS: [&str; 13] = [
    "iam:GetUser",
    "iam:ListUserTags",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupsForUser",
    "iam:ListAccessKeys",
    "iam:GetLoginProfile",
    "iam:DetachUserPolicy",
    "iam:AttachUserPolicy",
    "iam:RemoveUserFromGroup",
    "iam:AddUserToGroup",
    "iam:UpdateAccessKey",
    "iam:DeleteLoginProfile",
    "iam:CreateLoginProfile",
];

/// Every IAM operation the connector calls and the IAM action that allows it.
/// [`REQUIRED_ACTIONS`] lists the same actions, once each.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("GetUser", "iam:GetUser"),
    PermissionNeed::read(USER_POLICY, "GetUser", "iam:GetUser"),
    PermissionNeed::read(USER_POLICY, "ListUserTags", "iam:ListUserTags"),
    PermissionNeed::read(USER_POLICY, "ListAttachedUserPolicies", "iam:ListAttachedUserPolicies"),
    PermissionNeed::execute(KindName::Revoke, USER_POLICY, "DetachUserPolicy", "iam:DetachUserPolicy"),
    PermissionNeed::rollback(KindName::Revoke, USER_POLICY, "AttachUserPolicy", "iam:AttachUserPolicy"),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GetUser", "iam:GetUser"),
    PermissionNeed::read(GROUP_MEMBERSHIP, "ListUserTags", "iam:ListUserTags"),
    PermissionNeed::read(GROUP_MEMBERSHIP, "ListGroupsForUser", "iam:ListGroupsForUser"),
    PermissionNeed::execute(KindName::Revoke, GROUP_MEMBERSHIP, "RemoveUserFromGroup", "iam:RemoveUserFromGroup"),
    PermissionNeed::rollback(KindName::Revoke, GROUP_MEMBERSHIP, "AddUserToGroup", "iam:AddUserToGroup"),
    PermissionNeed::read(ACCESS_KEY, "GetUser", "iam:GetUser"),
    PermissionNeed::read(ACCESS_KEY, "ListUserTags", "iam:ListUserTags"),
    PermissionNeed::read(ACCESS_KEY, "ListAccessKeys", "iam:ListAccessKeys"),
    PermissionNeed::execute(KindName::Suspend, ACCESS_KEY, "UpdateAccessKey", "iam:UpdateAccessKey"),
    PermissionNeed::rollback(KindName::Suspend, ACCESS_KEY, "UpdateAccessKey", "iam:UpdateAccessKey"),
    PermissionNeed::read(LOGIN_PROFILE, "GetUser", "iam:GetUser"),
    PermissionNeed::read(LOGIN_PROFILE, "ListUserTags", "iam:ListUserTags"),
    PermissionNeed::read(LOGIN_PROFILE, "GetLoginProfile", "iam:GetLoginProfile"),
    PermissionNeed::execute(KindName::Revoke, LOGIN_PROFILE, "DeleteLoginProfile", "iam:DeleteLoginProfile"),
    PermissionNeed::rollback(KindName::Revoke, LOGIN_PROFILE, "CreateLoginProfile", "iam:CreateLoginProfile"),
];

/// A connector for AWS IAM users. See the crate documentation for its capabilities.
///
/// Cheap to clone. Credentials live inside the SDK client and never appear in `Debug`.
#[derive(Clone)]
pub struct AwsIamConnector {
    id: String,
    endpoint: String,
    region: String,
    client: Client,
    protected_users: BTreeSet<String>,
    backoff: Backoff,
    verify: Backoff,
    sleeper: Arc<dyn Sleeper>,
}

impl fmt::Debug for AwsIamConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsIamConnector")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("protected_users", &self.protected_users)
            .finish_non_exhaustive()
    }
}

impl AwsIamConnector {
    /// A connector configured by `config`, with credentials read from the environment (and
    /// the secret file) it names.
    pub fn from_config(config: &AwsIamConfig) -> Result<Self, AwsIamError> {
        Self::new(config, AwsCredentials::from_env(config)?)
    }

    /// A connector configured by `config` that signs with `credentials`. Makes no request.
    pub fn new(config: &AwsIamConfig, credentials: AwsCredentials) -> Result<Self, AwsIamError> {
        config.validate()?;
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut sdk = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials.to_sdk())
            .http_client(http)
            // The connector retries itself, with a bound and an injectable delay, and decides
            // per error code (ConcurrentModification yes, LimitExceeded never).
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder().operation_attempt_timeout(timeout).connect_timeout(timeout).build(),
            );
        if let Some(url) = &config.endpoint_url {
            sdk = sdk.endpoint_url(url.clone());
        }
        let base = Duration::from_millis(config.backoff_ms);
        Ok(Self {
            id: config.id.clone(),
            endpoint: config.endpoint_url.clone().unwrap_or_else(|| "https://iam.amazonaws.com".to_owned()),
            region: config.region.clone(),
            client: Client::from_conf(sdk.build()),
            // IAM user names are unique regardless of case, so `BreakGlass` protects `breakglass`.
            protected_users: config.protected_users.iter().map(|u| u.to_lowercase()).collect(),
            backoff: Backoff { attempts: config.max_attempts, base },
            verify: Backoff { attempts: config.verify_attempts, base },
            sleeper: Arc::new(TokioSleeper),
        })
    }

    /// Uses `sleeper` for the delays between retries and verification reads (the tokio timer
    /// by default); tests pass one that does not sleep.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Sends one IAM request with bounded retries and maps its error.
    async fn call<T, E, F, Fut>(&self, op: &'static str, send: F) -> Result<T, ConnectorError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        retry(self.backoff, &*self.sleeper, || {
            let fut = send();
            async move { quiet(fut).await.map_err(|e| from_sdk(op, &e)) }
        })
        .await
    }

    /// The capability for the action, or `Unsupported` naming what is supported.
    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        require_capability(&capabilities(), "AWS IAM", action)
    }

    /// The user a target names, as IAM stores it. The identity may be the user's name (IAM
    /// answers for it in any case it accepts) or its ARN. Fails with `NotFound` when there is
    /// no such user.
    async fn resolve(&self, identity: &str) -> Result<User, ConnectorError> {
        let (name, arn) = if identity.starts_with("arn:") {
            let name = identity
                .split_once(":user/")
                .and_then(|(_, path)| path.rsplit('/').next())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ConnectorError::permanent(format!("{identity} is not the ARN of an IAM user")))?;
            (name, Some(identity))
        } else {
            (identity, None)
        };
        let out = self.call("GetUser", || self.client.get_user().user_name(name).send()).await?;
        let user = out
            .user()
            .ok_or_else(|| ConnectorError::not_found(format!("IAM answered GetUser for {identity} without a user")))?;
        if arn.is_some_and(|a| !a.eq_ignore_ascii_case(user.arn())) {
            return Err(ConnectorError::not_found(format!("no IAM user has the ARN {identity}")));
        }
        Ok(User { name: user.user_name().to_owned(), id: user.user_id().to_owned(), arn: user.arn().to_owned() })
    }

    /// Whether the user is protected by configuration (its name in any case, its id or its
    /// ARN) or by its tag.
    async fn protected(&self, user: &User) -> Result<bool, ConnectorError> {
        if [&user.name, &user.id, &user.arn].iter().any(|n| self.protected_users.contains(&n.to_lowercase())) {
            return Ok(true);
        }
        let user = user.name.as_str();
        let mut pages = Pager::new("ListUserTags", user);
        loop {
            let page = self
                .call("ListUserTags", || self.client.list_user_tags().user_name(user).set_marker(pages.marker()).send())
                .await?;
            if page.tags().iter().any(|t| t.key() == PROTECTED_TAG && t.value().trim().eq_ignore_ascii_case("true")) {
                return Ok(true);
            }
            if !pages.advance(page.is_truncated(), page.marker())? {
                return Ok(false);
            }
        }
    }

    /// Reads the state of one grant of `user`.
    async fn read_grant(&self, user: &str, grant: Grant<'_>) -> Result<GrantState, ConnectorError> {
        match grant {
            Grant::UserPolicy { policy_arn } => {
                let mut pages = Pager::new("ListAttachedUserPolicies", user);
                loop {
                    let page = self
                        .call("ListAttachedUserPolicies", || {
                            self.client.list_attached_user_policies().user_name(user).set_marker(pages.marker()).send()
                        })
                        .await?;
                    if page.attached_policies().iter().any(|p| p.policy_arn() == Some(policy_arn)) {
                        return Ok(GrantState::Attached(true));
                    }
                    if !pages.advance(page.is_truncated(), page.marker())? {
                        return Ok(GrantState::Attached(false));
                    }
                }
            }
            Grant::GroupMembership { group } => {
                let mut pages = Pager::new("ListGroupsForUser", user);
                loop {
                    let page = self
                        .call("ListGroupsForUser", || {
                            self.client.list_groups_for_user().user_name(user).set_marker(pages.marker()).send()
                        })
                        .await?;
                    if page.groups().iter().any(|g| g.group_name() == group) {
                        return Ok(GrantState::Member(true));
                    }
                    if !pages.advance(page.is_truncated(), page.marker())? {
                        return Ok(GrantState::Member(false));
                    }
                }
            }
            Grant::AccessKey { key_id } => {
                let mut pages = Pager::new("ListAccessKeys", user);
                loop {
                    let page = self
                        .call("ListAccessKeys", || {
                            self.client.list_access_keys().user_name(user).set_marker(pages.marker()).send()
                        })
                        .await?;
                    if let Some(key) = page.access_key_metadata().iter().find(|k| k.access_key_id() == Some(key_id)) {
                        return Ok(GrantState::KeyActive(key.status() == Some(&StatusType::Active)));
                    }
                    if !pages.advance(page.is_truncated(), page.marker())? {
                        return Err(ConnectorError::not_found(format!("IAM user {user} has no access key {key_id}")));
                    }
                }
            }
            Grant::LoginProfile => {
                match self.call("GetLoginProfile", || self.client.get_login_profile().user_name(user).send()).await {
                    Ok(out) => Ok(GrantState::LoginProfile(Some(
                        out.login_profile().is_some_and(|p| p.password_reset_required()),
                    ))),
                    // The user exists (checked first), so NoSuchEntity means no login profile.
                    Err(e) if e.kind == ConnectorErrorKind::NotFound => Ok(GrantState::LoginProfile(None)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Reads the target: its user as IAM stores it, whether the user is protected, and the
    /// state of its grant.
    async fn read(&self, target: &Target) -> Result<(User, bool, GrantState), ConnectorError> {
        let grant = Grant::of(target)?;
        let user = self.resolve(&target.identity).await?;
        let protected = self.protected(&user).await?;
        let state = self.read_grant(&user.name, grant).await?;
        Ok((user, protected, state))
    }

    fn to_snapshot(
        target: &Target,
        grant: Grant<'_>,
        protected: bool,
        canonical: Option<CanonicalTarget>,
        state: GrantState,
    ) -> Snapshot {
        Snapshot { canonical, protected, state: state.to_value(&target.identity, grant) }
    }

    /// Moves the grant to `to`; returns the request id of the write.
    async fn write(&self, user: &str, grant: Grant<'_>, to: GrantState) -> Result<Vec<String>, ConnectorError> {
        let id = |r: Option<&str>| r.map(str::to_owned).into_iter().collect::<Vec<_>>();
        match (grant, to) {
            (Grant::UserPolicy { policy_arn }, GrantState::Attached(false)) => {
                let out = self
                    .call("DetachUserPolicy", || {
                        self.client.detach_user_policy().user_name(user).policy_arn(policy_arn).send()
                    })
                    .await?;
                Ok(id(out.request_id()))
            }
            (Grant::UserPolicy { policy_arn }, GrantState::Attached(true)) => {
                let out = self
                    .call("AttachUserPolicy", || {
                        self.client.attach_user_policy().user_name(user).policy_arn(policy_arn).send()
                    })
                    .await?;
                Ok(id(out.request_id()))
            }
            (Grant::GroupMembership { group }, GrantState::Member(false)) => {
                let out = self
                    .call("RemoveUserFromGroup", || {
                        self.client.remove_user_from_group().user_name(user).group_name(group).send()
                    })
                    .await?;
                Ok(id(out.request_id()))
            }
            (Grant::GroupMembership { group }, GrantState::Member(true)) => {
                let out = self
                    .call("AddUserToGroup", || self.client.add_user_to_group().user_name(user).group_name(group).send())
                    .await?;
                Ok(id(out.request_id()))
            }
            (Grant::AccessKey { key_id }, GrantState::KeyActive(active)) => {
                let status = if active { StatusType::Active } else { StatusType::Inactive };
                let out = self
                    .call("UpdateAccessKey", || {
                        self.client
                            .update_access_key()
                            .user_name(user)
                            .access_key_id(key_id)
                            .status(status.clone())
                            .send()
                    })
                    .await?;
                Ok(id(out.request_id()))
            }
            (Grant::LoginProfile, GrantState::LoginProfile(None)) => {
                let out = self
                    .call("DeleteLoginProfile", || self.client.delete_login_profile().user_name(user).send())
                    .await?;
                Ok(id(out.request_id()))
            }
            (Grant::LoginProfile, GrantState::LoginProfile(Some(_))) => {
                // The old password cannot be restored: a new random one, never logged or
                // stored, that the user must change at first sign-in.
                let password = random_password();
                let out = self
                    .call("CreateLoginProfile", || {
                        self.client
                            .create_login_profile()
                            .user_name(user)
                            .password(password.expose_secret())
                            .password_reset_required(true)
                            .send()
                    })
                    .await?;
                Ok(id(out.request_id()))
            }
            (grant, to) => Err(ConnectorError::permanent(format!("cannot move {grant:?} to {to:?}"))),
        }
    }

    /// Moves the target's grant to `desired` unless it is there already.
    async fn converge(
        &self,
        target: &Target,
        desired: GrantState,
        refuse_protected: bool,
    ) -> Result<Outcome, ConnectorError> {
        let grant = Grant::of(target)?;
        let (user, protected, live) = self.read(target).await?;
        if protected && refuse_protected {
            return Err(ConnectorError::permanent(format!(
                "IAM user {} is protected (configured, or tagged {PROTECTED_TAG}=true)",
                target.identity
            )));
        }
        if live.same_access(desired) {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
        }
        // Writes name the user as IAM stores it: an ARN is no user name.
        let request_ids = match self.write(&user.name, grant, desired).await {
            Ok(ids) => ids,
            // A retried write can find its own earlier attempt applied: DetachUserPolicy then
            // answers NoSuchEntity, CreateLoginProfile EntityAlreadyExists. Read back before
            // calling it a failure.
            Err(e)
                if matches!(
                    e.kind,
                    ConnectorErrorKind::NotFound | ConnectorErrorKind::Conflict | ConnectorErrorKind::Transient
                ) =>
            {
                match self.read_grant(&user.name, grant).await {
                    Ok(now) if now.same_access(desired) => e.request_id.into_iter().collect(),
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        tracing::info!(connector = %self.id, target = %target, to = ?desired, "IAM change applied");
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids })
    }
}

/// Pages read at most from one IAM listing (100 items each by default, so 10,000 items): a
/// user with more, or a service that keeps answering "truncated", fails the read instead of
/// looping without end.
pub(crate) const MAX_PAGES: u32 = 100;

/// Follows the `Marker` pagination of one IAM listing, at most [`MAX_PAGES`] pages.
struct Pager {
    operation: &'static str,
    user: String,
    read: u32,
    max: u32,
    marker: Option<String>,
}

impl Pager {
    fn new(operation: &'static str, user: &str) -> Self {
        Self::with_max(operation, user, MAX_PAGES)
    }

    fn with_max(operation: &'static str, user: &str, max: u32) -> Self {
        Self { operation, user: user.to_owned(), read: 0, max, marker: None }
    }

    /// The marker to ask the next page with (`None` for the first).
    fn marker(&self) -> Option<String> {
        self.marker.clone()
    }

    /// Records a page just read: `Ok(true)` when another page follows, `Ok(false)` at the
    /// end, an error when the cap is reached with pages left (a decision on a partial
    /// listing could be wrong).
    fn advance(&mut self, truncated: bool, marker: Option<&str>) -> Result<bool, ConnectorError> {
        self.read += 1;
        let Some(next) = marker.filter(|_| truncated) else { return Ok(false) };
        if self.read >= self.max {
            return Err(ConnectorError::permanent(format!(
                "IAM {} for user {} has more than {} pages; refusing to decide on a partial listing",
                self.operation, self.user, self.max
            )));
        }
        self.marker = Some(next.to_owned());
        Ok(true)
    }
}

/// An IAM user as IAM stores it.
#[derive(Debug, Clone)]
struct User {
    /// The stored name, which every later call uses.
    name: String,
    /// The immutable user id (`AIDA…`): the canonical id.
    id: String,
    /// The user's ARN.
    arn: String,
}

/// A random console password that meets any IAM password policy of up to 32 characters: at
/// least one upper-case letter, lower-case letter, digit and symbol.
fn random_password() -> SecretString {
    use rand::Rng;
    use rand::seq::{IndexedRandom, SliceRandom};
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!@#$%^&*()_+-=[]{}|";
    let mut rng = rand::rng();
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut chars: Vec<u8> =
        [UPPER, LOWER, DIGIT, SYMBOL].iter().filter_map(|set| set.choose(&mut rng).copied()).collect();
    while chars.len() < 32 {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    SecretString::from(chars.into_iter().map(char::from).collect::<String>())
}

/// Every (kind, grant type) the connector supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    vec![
        Capability::new(KindName::Revoke, USER_POLICY, Reversibility::Reversible),
        Capability::new(KindName::Revoke, GROUP_MEMBERSHIP, Reversibility::Reversible),
        Capability::new(KindName::Suspend, ACCESS_KEY, Reversibility::Reversible),
        // The password cannot be restored; rollback creates a new random one.
        Capability::new(KindName::Revoke, LOGIN_PROFILE, Reversibility::Lossy),
    ]
}

#[async_trait]
impl Connector for AwsIamConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        // GetUser without a name describes the caller. With role credentials IAM answers
        // ValidationError: still a signed, authenticated answer, so the endpoint is healthy.
        let result = self.call("GetUser", || self.client.get_user().send()).await;
        Ok(match result {
            Ok(out) => Health {
                healthy: true,
                detail: format!(
                    "IAM at {} answers; signed in as {}",
                    self.endpoint,
                    out.user().map_or("an unnamed principal", |u| u.arn())
                ),
            },
            Err(e)
                if matches!(
                    e.kind,
                    ConnectorErrorKind::Unauthenticated
                        | ConnectorErrorKind::Transient
                        | ConnectorErrorKind::Throttled { .. }
                ) =>
            {
                Health { healthy: false, detail: e.to_string() }
            }
            Err(e) => Health { healthy: true, detail: format!("IAM at {} answers ({e})", self.endpoint) },
        })
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        // IAM can only answer this through iam:SimulatePrincipalPolicy, which the
        // least-privilege policy does not grant; a missing permission shows as a Forbidden
        // error from the call that needs it.
        Ok(Permissions::unknown(
            PERMISSION_MAP,
            "IAM tells a principal its permissions only through iam:SimulatePrincipalPolicy, which the connector's policy does not grant",
        ))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let grant = Grant::of(target)?;
        let (user, protected, state) = self.read(target).await?;
        // The user id survives renames and every spelling of the name resolves to it.
        Ok(Self::to_snapshot(target, grant, protected, Some(CanonicalTarget::identity(user.id)), state))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        let target = &action.target;
        let grant = Grant::of(target)?;
        let after = GrantState::removed(grant);
        let user = &target.identity;
        let description = match grant {
            Grant::UserPolicy { policy_arn } => format!("Detach policy {policy_arn} from IAM user {user}."),
            Grant::GroupMembership { group } => format!("Remove IAM user {user} from group {group}."),
            Grant::AccessKey { key_id } => format!("Set access key {key_id} of IAM user {user} to Inactive."),
            Grant::LoginProfile => format!(
                "Delete the console login profile of IAM user {user}. Lossy: rollback creates a login profile \
                 with a new random password (never logged or stored) that must be reset at first sign-in."
            ),
        };
        let expected_after = Self::to_snapshot(target, grant, before.protected, before.canonical.clone(), after);
        Ok(PlannedChange { expected_after, description })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        let grant = Grant::of(&action.target)?;
        self.converge(&action.target, GrantState::removed(grant), true).await
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.capability(action)?;
        let mut attempt = 1;
        loop {
            let observed = self.snapshot(&action.target).await?;
            let matches = observed == planned.expected_after;
            if matches || attempt >= self.verify.attempts {
                return Ok(Verification { observed, matches });
            }
            // IAM is eventually consistent: a change can take a moment to show.
            self.sleeper.sleep(self.verify.delay(attempt)).await;
            attempt += 1;
        }
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        let grant = Grant::of(&action.target)?;
        let desired = GrantState::from_value(grant, &before.state)?;
        self.converge(&action.target, desired, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_every_class() {
        for _ in 0..50 {
            let p = random_password();
            let p = p.expose_secret();
            assert_eq!(p.len(), 32);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| !c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn markers_only_follow_truncated_pages() {
        let mut p = Pager::new("ListGroupsForUser", "alice");
        assert_eq!(p.marker(), None);
        assert!(p.advance(true, Some("m1")).expect("more"));
        assert_eq!(p.marker().as_deref(), Some("m1"));
        assert!(!p.advance(false, Some("m2")).expect("end"));
        assert!(!Pager::new("ListGroupsForUser", "alice").advance(true, None).expect("no marker, no page"));
    }

    #[test]
    fn a_listing_that_never_ends_stops_at_the_cap() {
        // A service answering "truncated" with the same marker forever.
        let mut p = Pager::with_max("ListAccessKeys", "alice", 3);
        let mut reads = 0;
        let err = loop {
            reads += 1;
            match p.advance(true, Some("again")) {
                Ok(true) => {}
                Ok(false) => panic!("the listing ended"),
                Err(e) => break e,
            }
            assert!(reads < 10, "no cap");
        };
        assert_eq!(reads, 3);
        assert_eq!(err.kind, ConnectorErrorKind::Permanent);
        assert_eq!(
            err.message,
            "IAM ListAccessKeys for user alice has more than 3 pages; refusing to decide on a partial listing"
        );
        assert_eq!(MAX_PAGES, 100);
        // Exactly the cap of pages, the last one final, is a complete listing.
        let mut p = Pager::with_max("ListAccessKeys", "alice", 3);
        assert!(p.advance(true, Some("m1")).expect("page 2"));
        assert!(p.advance(true, Some("m2")).expect("page 3"));
        assert!(!p.advance(false, None).expect("complete"));
    }
}
