//! The grant types the connector acts on, and the normalised state it keeps for each.

use remediation_core::{ConnectorError, Target};
use serde_json::{Value, json};

/// Grant type of a managed policy attached to a user; resource = the policy ARN.
pub const USER_POLICY: &str = "user_policy";
/// Grant type of a user's membership in a group; resource = the group name.
pub const GROUP_MEMBERSHIP: &str = "group_membership";
/// Grant type of one of the user's access keys; resource = the access key id.
pub const ACCESS_KEY: &str = "access_key";
/// Grant type of the user's console password (login profile); no resource.
pub const LOGIN_PROFILE: &str = "login_profile";

/// A target's grant, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant<'a> {
    /// A managed policy attached to the user.
    UserPolicy { policy_arn: &'a str },
    /// Membership in a group.
    GroupMembership { group: &'a str },
    /// An access key of the user.
    AccessKey { key_id: &'a str },
    /// The user's login profile.
    LoginProfile,
}

impl<'a> Grant<'a> {
    /// Parses the target's grant type and resource. The caller has already checked that the
    /// (kind, grant type) is declared, so an unknown grant type cannot reach here in practice.
    pub(crate) fn of(target: &'a Target) -> Result<Self, ConnectorError> {
        let resource = |what: &str| {
            target.resource.as_deref().filter(|r| !r.trim().is_empty()).ok_or_else(|| {
                ConnectorError::invalid_target(format!(
                    "a `{}` target needs the {what} as its resource",
                    target.grant_type
                ))
            })
        };
        match target.grant_type.as_str() {
            USER_POLICY => Ok(Self::UserPolicy { policy_arn: resource("policy ARN")? }),
            GROUP_MEMBERSHIP => Ok(Self::GroupMembership { group: resource("group name")? }),
            ACCESS_KEY => Ok(Self::AccessKey { key_id: resource("access key id")? }),
            LOGIN_PROFILE => Ok(Self::LoginProfile),
            other => Err(ConnectorError::unsupported(format!("AWS IAM has no `{other}` grant type"))),
        }
    }
}

/// The part of a user's state that one grant is about, normalised: no dates, no ids that
/// change when a grant is re-created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantState {
    /// Whether the policy is attached.
    Attached(bool),
    /// Whether the user is a member of the group.
    Member(bool),
    /// Whether the access key is active.
    KeyActive(bool),
    /// The login profile, if there is one: whether it requires a password reset.
    LoginProfile(Option<bool>),
}

impl GrantState {
    /// The state as snapshot JSON for `user` and `grant`.
    pub(crate) fn to_value(self, user: &str, grant: Grant<'_>) -> Value {
        match (self, grant) {
            (Self::Attached(attached), Grant::UserPolicy { policy_arn }) => {
                json!({ "user": user, "policy_arn": policy_arn, "attached": attached })
            }
            (Self::Member(member), Grant::GroupMembership { group }) => {
                json!({ "user": user, "group": group, "member": member })
            }
            (Self::KeyActive(active), Grant::AccessKey { key_id }) => {
                json!({ "user": user, "access_key_id": key_id, "status": if active { "Active" } else { "Inactive" } })
            }
            (Self::LoginProfile(profile), _) => json!({
                "user": user,
                "login_profile": profile.map(|reset| json!({ "password_reset_required": reset })),
            }),
            // The connector only pairs a state with the grant it was read for.
            (state, _) => json!({ "user": user, "unexpected": format!("{state:?}") }),
        }
    }

    /// Reads the state back from snapshot JSON written by [`to_value`](Self::to_value).
    pub(crate) fn from_value(grant: Grant<'_>, value: &Value) -> Result<Self, ConnectorError> {
        let bad = || ConnectorError::permanent(format!("the recorded state {value} is not an AWS IAM {grant:?} state"));
        match grant {
            Grant::UserPolicy { .. } => value["attached"].as_bool().map(Self::Attached).ok_or_else(bad),
            Grant::GroupMembership { .. } => value["member"].as_bool().map(Self::Member).ok_or_else(bad),
            Grant::AccessKey { .. } => match value["status"].as_str() {
                Some("Active") => Ok(Self::KeyActive(true)),
                Some("Inactive") => Ok(Self::KeyActive(false)),
                _ => Err(bad()),
            },
            Grant::LoginProfile => match &value["login_profile"] {
                Value::Null if value.get("login_profile").is_some() => Ok(Self::LoginProfile(None)),
                Value::Object(o) => o
                    .get("password_reset_required")
                    .and_then(Value::as_bool)
                    .map(|r| Self::LoginProfile(Some(r)))
                    .ok_or_else(bad),
                _ => Err(bad()),
            },
        }
    }

    /// The state a revoke or suspend leaves behind.
    pub(crate) fn removed(grant: Grant<'_>) -> Self {
        match grant {
            Grant::UserPolicy { .. } => Self::Attached(false),
            Grant::GroupMembership { .. } => Self::Member(false),
            Grant::AccessKey { .. } => Self::KeyActive(false),
            Grant::LoginProfile => Self::LoginProfile(None),
        }
    }

    /// Whether two states grant the same access. A re-created login profile always requires
    /// a password reset, so the reset flag does not count.
    pub(crate) fn same_access(self, other: Self) -> bool {
        match (self, other) {
            (Self::LoginProfile(a), Self::LoginProfile(b)) => a.is_some() == b.is_some(),
            (a, b) => a == b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn round_trip(grant: Grant<'_>, state: GrantState) {
        let value = state.to_value("alice", grant);
        assert_eq!(GrantState::from_value(grant, &value).ok(), Some(state), "{value}");
    }

    #[test]
    fn states_survive_their_json() {
        let policy = Grant::UserPolicy { policy_arn: "arn:aws:iam::aws:policy/ReadOnlyAccess" };
        round_trip(policy, GrantState::Attached(true));
        round_trip(policy, GrantState::Attached(false));
        let group = Grant::GroupMembership { group: "admins" };
        round_trip(group, GrantState::Member(true));
        round_trip(group, GrantState::Member(false));
        let key = Grant::AccessKey { key_id: "AKIAEXAMPLE" };
        round_trip(key, GrantState::KeyActive(true));
        round_trip(key, GrantState::KeyActive(false));
        round_trip(Grant::LoginProfile, GrantState::LoginProfile(None));
        round_trip(Grant::LoginProfile, GrantState::LoginProfile(Some(true)));
        round_trip(Grant::LoginProfile, GrantState::LoginProfile(Some(false)));
    }

    #[test]
    fn foreign_state_is_refused() {
        let value = serde_json::json!({ "user": "alice", "member": true });
        assert!(GrantState::from_value(Grant::LoginProfile, &value).is_err());
        assert!(GrantState::from_value(Grant::UserPolicy { policy_arn: "x" }, &value).is_err());
    }

    #[test]
    fn targets_need_their_resource() {
        let target = |grant_type: &str, resource: Option<&str>| Target {
            identity: "alice".into(),
            resource: resource.map(Into::into),
            grant: None,
            grant_type: grant_type.into(),
        };
        for grant_type in [USER_POLICY, GROUP_MEMBERSHIP, ACCESS_KEY] {
            let t = target(grant_type, None);
            assert!(Grant::of(&t).is_err(), "{grant_type} without a resource");
        }
        assert_eq!(Grant::of(&target(LOGIN_PROFILE, None)).ok(), Some(Grant::LoginProfile));
        assert_eq!(
            Grant::of(&target(GROUP_MEMBERSHIP, Some("admins"))).ok(),
            Some(Grant::GroupMembership { group: "admins" })
        );
    }
}
