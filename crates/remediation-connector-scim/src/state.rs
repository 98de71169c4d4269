//! Targets, the normalised snapshot states read from a SCIM service, and the pure rules saying
//! what each action does to a state. ETags and `meta` are volatile and never part of a state.

use remediation_core::{ActionKind, ConnectorError, Target};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The grant types this connector understands.
pub mod grant_type {
    /// A user's account (`active`).
    pub const ACCOUNT: &str = "account";
    /// A user's membership of a group.
    pub const GROUP_MEMBERSHIP: &str = "group_membership";
    /// Every grant type, for messages.
    pub const ALL: [&str; 2] = [ACCOUNT, GROUP_MEMBERSHIP];
}

/// What a target refers to at the service provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject<'a> {
    /// The user resource.
    Account { user: &'a str },
    /// `user`'s membership of `group`.
    Membership { user: &'a str, group: &'a str },
}

impl<'a> Subject<'a> {
    /// Resolves a target. Unknown grant types are `Unsupported`; a missing group or an id
    /// that is not safe in a path or a filter literal is `Permanent`.
    pub(crate) fn of(target: &'a Target) -> Result<Self, ConnectorError> {
        let subject = match target.grant_type.as_str() {
            grant_type::ACCOUNT => Self::Account { user: &target.identity },
            grant_type::GROUP_MEMBERSHIP => Self::Membership {
                user: &target.identity,
                group: target.resource.as_deref().ok_or_else(|| {
                    ConnectorError::permanent(
                        "a `group_membership` target names the group id in `resource`, and this one has none",
                    )
                })?,
            },
            other => {
                return Err(ConnectorError::unsupported(format!(
                    "SCIM has no grant type `{other}` (grant types: {})",
                    grant_type::ALL.join(", ")
                )));
            }
        };
        let ids = match subject {
            Self::Account { user } => vec![user],
            Self::Membership { user, group } => vec![user, group],
        };
        for id in ids {
            usable_id(id)?;
        }
        Ok(subject)
    }

    /// The user the target names (a resource id, or a `userName` the connector resolves).
    pub(crate) fn user(self) -> &'a str {
        match self {
            Self::Account { user } | Self::Membership { user, .. } => user,
        }
    }
}

/// Refuses an id that could leave a path segment or break the quoted filter value
/// `members[value eq "<id>"]`: SCIM ids are opaque strings, from the caller or the service.
pub(crate) fn usable_id(id: &str) -> Result<(), ConnectorError> {
    if id.is_empty()
        || id.len() > 512
        || id.chars().any(|c| c.is_control() || matches!(c, '"' | '\\' | '/' | '?' | '#'))
    {
        return Err(ConnectorError::permanent(format!("`{id}` is not a usable SCIM resource id")));
    }
    Ok(())
}

/// Normalised state of a user resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountState {
    pub(crate) user: String,
    pub(crate) user_name: String,
    pub(crate) active: bool,
}

/// Normalised state of a group membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembershipState {
    pub(crate) user: String,
    /// The user's `userName`, so a target naming the user by it is recognised as this user.
    #[serde(default)]
    pub(crate) user_name: String,
    pub(crate) group: String,
    /// The group's `displayName`, so a plan names the group as people know it.
    #[serde(default)]
    pub(crate) group_name: String,
    pub(crate) member: bool,
}

/// The normalised state of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    Account(AccountState),
    Membership(MembershipState),
}

impl State {
    /// The JSON kept in a snapshot.
    pub(crate) fn to_value(&self) -> Value {
        let value = match self {
            Self::Account(s) => serde_json::to_value(s),
            Self::Membership(s) => serde_json::to_value(s),
        };
        // Plain structs of strings and booleans always serialise.
        value.unwrap_or(Value::Null)
    }

    /// Reads a snapshot's JSON back, checking its shape and that it names `subject`.
    /// A state is this target's when it names the target's user by id, or by the `userName`
    /// the service returned for it (a target may call the user either way).
    pub(crate) fn parse(subject: Subject<'_>, value: &Value) -> Result<Self, ConnectorError> {
        let shape = |e: serde_json::Error| {
            ConnectorError::permanent(format!(
                "the snapshot was not taken by the SCIM connector for this kind of target: {e}"
            ))
        };
        let (state, same) = match subject {
            Subject::Account { user } => {
                let s = AccountState::deserialize(value).map_err(shape)?;
                let same = s.user == user || (!s.user_name.is_empty() && s.user_name.eq_ignore_ascii_case(user));
                (Self::Account(s), same)
            }
            Subject::Membership { user, group } => {
                let s = MembershipState::deserialize(value).map_err(shape)?;
                let same = (s.user == user || (!s.user_name.is_empty() && s.user_name.eq_ignore_ascii_case(user)))
                    && s.group == group;
                (Self::Membership(s), same)
            }
        };
        if same {
            Ok(state)
        } else {
            Err(ConnectorError::permanent(format!("the snapshot {value} is for another target")))
        }
    }
}

/// The state `kind` leads to from `before`.
pub(crate) fn transform(kind: &ActionKind, before: &State) -> Result<State, ConnectorError> {
    match (kind, before) {
        (ActionKind::Suspend, State::Account(s)) => Ok(State::Account(AccountState { active: false, ..s.clone() })),
        (ActionKind::Revoke, State::Membership(s)) => {
            Ok(State::Membership(MembershipState { member: false, ..s.clone() }))
        }
        (kind, _) => Err(ConnectorError::unsupported(format!("SCIM cannot {} this target", kind.name()))),
    }
}

/// One sentence for the plan.
pub(crate) fn describe(before: &State, after: &State) -> String {
    if before == after {
        return "nothing to change: the target is already in the requested state".to_owned();
    }
    match after {
        State::Account(a) => format!("deactivate SCIM user {}: active true -> false", named(&a.user_name, &a.user)),
        State::Membership(m) => {
            format!("remove SCIM user {} from group {}", named(&m.user_name, &m.user), named(&m.group_name, &m.group))
        }
    }
}

/// `name (id)`, or the id alone when the service returned no name.
fn named(name: &str, id: &str) -> String {
    if name.is_empty() { id.to_owned() } else { format!("{name} ({id})") }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn target(grant_type: &str, identity: &str, resource: Option<&str>) -> Target {
        Target {
            identity: identity.into(),
            resource: resource.map(Into::into),
            grant: None,
            grant_type: grant_type.into(),
        }
    }

    #[test]
    fn states_round_trip_and_name_their_target() {
        let t = target("group_membership", "u1", Some("g1"));
        let s = State::Membership(MembershipState {
            user: "u1".into(),
            user_name: "u1@example.com".into(),
            group: "g1".into(),
            group_name: "Tour Guides".into(),
            member: true,
        });
        let v = s.to_value();
        assert_eq!(
            v,
            json!({"user": "u1", "user_name": "u1@example.com", "group": "g1", "group_name": "Tour Guides", "member": true})
        );
        assert_eq!(State::parse(Subject::of(&t).unwrap(), &v).unwrap(), s);
        // The same user by userName, in any case; anyone else is another target.
        let by_name = target("group_membership", "U1@example.com", Some("g1"));
        assert_eq!(State::parse(Subject::of(&by_name).unwrap(), &v).unwrap(), s);
        let other = target("group_membership", "u2", Some("g1"));
        assert!(State::parse(Subject::of(&other).unwrap(), &v).is_err());
    }

    #[test]
    fn transform_changes_one_field() {
        let s = State::Account(AccountState { user: "u".into(), user_name: "bjensen".into(), active: true });
        let after = transform(&ActionKind::Suspend, &s).unwrap();
        assert_eq!(after.to_value()["active"], json!(false));
        assert!(transform(&ActionKind::RevokeSessions, &s).is_err());
        assert!(describe(&s, &after).contains("deactivate"));
    }

    #[test]
    fn a_membership_plan_names_the_user_and_the_group() {
        let membership = |user_name: &str, group_name: &str| {
            State::Membership(MembershipState {
                user: "2819c223".into(),
                user_name: user_name.into(),
                group: "e9e30dba".into(),
                group_name: group_name.into(),
                member: true,
            })
        };
        let s = membership("bjensen@example.com", "Tour Guides");
        let after = transform(&ActionKind::Revoke, &s).unwrap();
        assert_eq!(
            describe(&s, &after),
            "remove SCIM user bjensen@example.com (2819c223) from group Tour Guides (e9e30dba)"
        );
        // A service that returns no names still gets an unambiguous plan.
        let bare = membership("", "");
        let after = transform(&ActionKind::Revoke, &bare).unwrap();
        assert_eq!(describe(&bare, &after), "remove SCIM user 2819c223 from group e9e30dba");
    }

    #[test]
    fn ids_that_break_filters_are_refused() {
        assert!(Subject::of(&target("group_membership", "u\" or \"1", Some("g"))).is_err());
        assert!(Subject::of(&target("account", "../Groups", None)).is_err());
        assert_eq!(
            Subject::of(&target("session", "u", None)).unwrap_err().kind,
            remediation_core::ConnectorErrorKind::Unsupported
        );
    }
}
