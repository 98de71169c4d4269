//! Targets, the normalised snapshot states read from Graph, and the pure rules saying what each
//! action does to a state. `plan` applies [`transform`] to the before-snapshot; `execute` and
//! `rollback` compare the live state with the same rules, so what is planned is what is done.

use remediation_core::{ActionKind, ConnectorError, Target};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The grant types this connector understands.
pub mod grant_type {
    /// A user's account (`suspend`, `revoke_sessions`).
    pub const ACCOUNT: &str = "account";
    /// Membership of a security or Microsoft 365 group.
    pub const GROUP_MEMBERSHIP: &str = "group_membership";
    /// A Microsoft Entra directory role assignment.
    pub const DIRECTORY_ROLE: &str = "directory_role";
    /// An app role assigned to a user, group or service principal.
    pub const APP_ROLE_ASSIGNMENT: &str = "app_role_assignment";
    /// Every grant type, for messages.
    pub const ALL: [&str; 4] = [ACCOUNT, GROUP_MEMBERSHIP, DIRECTORY_ROLE, APP_ROLE_ASSIGNMENT];
}

/// The directory scope a role assignment applies to when the target names none: the tenant.
pub const TENANT_SCOPE: &str = "/";

/// The app role id Graph uses for "default access" when an application defines no roles.
pub const DEFAULT_APP_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// What a target refers to in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject<'a> {
    /// The user's account.
    Account { user: &'a str },
    /// `user`'s direct membership of `group`.
    Membership { user: &'a str, group: &'a str },
    /// The assignment of `role` to `principal` at `scope`.
    DirectoryRole { principal: &'a str, role: &'a str, scope: &'a str },
    /// The assignment of `app_role` of the resource service principal `resource` to `principal`.
    AppRole { principal: &'a str, resource: &'a str, app_role: &'a str },
}

impl<'a> Subject<'a> {
    /// Resolves a target. Unknown grant types are `Unsupported`; a missing resource is
    /// `Permanent`. Identifiers are checked to be safe in a URL path and an OData literal.
    pub(crate) fn of(target: &'a Target) -> Result<Self, ConnectorError> {
        let resource = |what: &str| {
            target.resource.as_deref().ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "a `{}` target names the {what} in `resource`, and this one has none",
                    target.grant_type
                ))
            })
        };
        let subject = match target.grant_type.as_str() {
            grant_type::ACCOUNT => Self::Account { user: &target.identity },
            grant_type::GROUP_MEMBERSHIP => Self::Membership { user: &target.identity, group: resource("group id")? },
            grant_type::DIRECTORY_ROLE => Self::DirectoryRole {
                principal: &target.identity,
                role: resource("role definition id")?,
                scope: target.grant.as_deref().unwrap_or(TENANT_SCOPE),
            },
            grant_type::APP_ROLE_ASSIGNMENT => Self::AppRole {
                principal: &target.identity,
                resource: resource("resource service principal id")?,
                app_role: target.grant.as_deref().unwrap_or(DEFAULT_APP_ROLE),
            },
            other => {
                return Err(ConnectorError::unsupported(format!(
                    "Entra ID has no grant type `{other}` (grant types: {})",
                    grant_type::ALL.join(", ")
                )));
            }
        };
        for id in subject.ids() {
            check_id(id)?;
        }
        if let Self::DirectoryRole { scope, .. } = subject
            && (!scope.starts_with('/') || scope.contains(['\'', '?', '#', '&']))
        {
            return Err(ConnectorError::permanent(format!(
                "directory scope `{scope}` is not a directory scope id (`/`, `/administrativeUnits/<id>`, `/<object id>`)"
            )));
        }
        Ok(subject)
    }

    /// The identifiers that go into URL paths and filters.
    fn ids(&self) -> Vec<&'a str> {
        match *self {
            Self::Account { user } => vec![user],
            Self::Membership { user, group } => vec![user, group],
            Self::DirectoryRole { principal, role, .. } => vec![principal, role],
            Self::AppRole { principal, resource, app_role } => vec![principal, resource, app_role],
        }
    }

    /// The principal (user, group, service principal) the target is about.
    pub(crate) fn principal(&self) -> &'a str {
        match *self {
            Self::Account { user } | Self::Membership { user, .. } => user,
            Self::DirectoryRole { principal, .. } | Self::AppRole { principal, .. } => principal,
        }
    }
}

/// Graph object ids are GUIDs; user ids may also be a user principal name. Anything that could
/// break out of a URL path segment or an OData string literal is refused before a request.
fn check_id(id: &str) -> Result<(), ConnectorError> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::permanent(format!("`{id}` is not a Graph object id or user principal name")))
    }
}

/// Normalised state of a user's account. `onPremisesSyncEnabled` null (a cloud user) reads as
/// false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountState {
    pub(crate) user: String,
    pub(crate) user_principal_name: String,
    pub(crate) account_enabled: bool,
    pub(crate) on_premises_sync_enabled: bool,
    /// When the user's sessions became valid from: the current value, or, in a planned
    /// after-state of `revoke_sessions`, a bound the provider will stamp past.
    pub(crate) sign_in_sessions_valid_from: SessionsValidFrom,
}

/// `signInSessionsValidFromDateTime` as read, or as a plan expects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum SessionsValidFrom {
    /// The value Graph returned (RFC 3339), or null when it has none.
    Observed(Option<String>),
    /// Expected after a revocation: Graph stamps the revocation time, which no plan can know,
    /// so the plan names the value it must move past.
    LaterThan {
        /// The before-state's value.
        later_than: Option<String>,
    },
}

impl SessionsValidFrom {
    /// The observed timestamp, parsed.
    pub(crate) fn observed(&self) -> Option<OffsetDateTime> {
        match self {
            Self::Observed(Some(s)) => OffsetDateTime::parse(s, &Rfc3339).ok(),
            _ => None,
        }
    }

    /// Whether this observed value satisfies `expected` (equal, or past its bound).
    pub(crate) fn satisfies(&self, expected: &Self) -> bool {
        match expected {
            Self::Observed(_) => self == expected,
            Self::LaterThan { later_than } => sessions_moved(later_than.as_deref(), self.observed()),
        }
    }
}

/// Whether sessions were revoked after `before`: the observed value is later than it (or
/// exists where it did not).
pub(crate) fn sessions_moved(before: Option<&str>, now: Option<OffsetDateTime>) -> bool {
    match (before.and_then(|b| OffsetDateTime::parse(b, &Rfc3339).ok()), now) {
        (Some(b), Some(n)) => n > b,
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

/// Normalised state of a direct group membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembershipState {
    pub(crate) user: String,
    pub(crate) group: String,
    /// The group's membership follows a rule (`groupTypes` contains `DynamicMembership`).
    pub(crate) dynamic: bool,
    pub(crate) member: bool,
}

/// Normalised state of a directory role assignment. The assignment's own id is left out: an
/// undo creates a new assignment with a new id, and the grant is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectoryRoleState {
    pub(crate) principal: String,
    pub(crate) role_definition: String,
    pub(crate) directory_scope: String,
    pub(crate) assigned: bool,
    /// When the active assignment ends (`endDateTime` of its schedule instance), for a
    /// time-bound assignment (PIM or an expiring one); absent for a permanent one. An undo
    /// cannot recreate the schedule, so it is refused for such an assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ends: Option<String>,
}

/// Normalised state of an app role assignment, without the assignment's id (see
/// [`DirectoryRoleState`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppRoleState {
    pub(crate) principal: String,
    pub(crate) resource: String,
    pub(crate) app_role: String,
    pub(crate) assigned: bool,
}

/// The normalised state of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    Account(AccountState),
    Membership(MembershipState),
    DirectoryRole(DirectoryRoleState),
    AppRole(AppRoleState),
}

impl State {
    /// The JSON kept in a snapshot.
    pub(crate) fn to_value(&self) -> Value {
        let value = match self {
            Self::Account(s) => serde_json::to_value(s),
            Self::Membership(s) => serde_json::to_value(s),
            Self::DirectoryRole(s) => serde_json::to_value(s),
            Self::AppRole(s) => serde_json::to_value(s),
        };
        // Plain structs of strings and booleans always serialise.
        value.unwrap_or(Value::Null)
    }

    /// Reads a snapshot's JSON back, checking its shape and that it names `subject`.
    pub(crate) fn parse(subject: Subject<'_>, value: &Value) -> Result<Self, ConnectorError> {
        fn typed<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, ConnectorError> {
            T::deserialize(value).map_err(|e| {
                ConnectorError::permanent(format!(
                    "the snapshot was not taken by the Entra ID connector for this kind of target: {e}"
                ))
            })
        }
        let (state, same) = match subject {
            Subject::Account { user } => {
                let s: AccountState = typed(value)?;
                let same = s.user.eq_ignore_ascii_case(user) || s.user_principal_name.eq_ignore_ascii_case(user);
                (Self::Account(s), same)
            }
            Subject::Membership { user, group } => {
                let s: MembershipState = typed(value)?;
                let same = s.user == user && s.group == group;
                (Self::Membership(s), same)
            }
            Subject::DirectoryRole { principal, role, scope } => {
                let s: DirectoryRoleState = typed(value)?;
                let same = s.principal == principal && s.role_definition == role && s.directory_scope == scope;
                (Self::DirectoryRole(s), same)
            }
            Subject::AppRole { principal, resource, app_role } => {
                let s: AppRoleState = typed(value)?;
                let same = s.principal == principal && s.resource == resource && s.app_role == app_role;
                (Self::AppRole(s), same)
            }
        };
        if same {
            Ok(state)
        } else {
            Err(ConnectorError::permanent(format!("the snapshot {value} is for another target")))
        }
    }

    /// Whether an observed state satisfies an expected one: equal, except that a
    /// `revoke_sessions` plan accepts any revocation time past its bound.
    pub(crate) fn satisfies(&self, expected: &Self) -> bool {
        match (self, expected) {
            (Self::Account(o), Self::Account(e)) => {
                let strip = |s: &AccountState| AccountState {
                    sign_in_sessions_valid_from: SessionsValidFrom::Observed(None),
                    ..s.clone()
                };
                strip(o) == strip(e) && o.sign_in_sessions_valid_from.satisfies(&e.sign_in_sessions_valid_from)
            }
            _ => self == expected,
        }
    }
}

/// The state `kind` leads to from `before`; an error when the change cannot be made at all.
pub(crate) fn transform(kind: &ActionKind, before: &State) -> Result<State, ConnectorError> {
    match (kind, before) {
        (ActionKind::Suspend, State::Account(s)) => {
            Ok(State::Account(AccountState { account_enabled: false, ..s.clone() }))
        }
        (ActionKind::RevokeSessions, State::Account(s)) => {
            let bound = match &s.sign_in_sessions_valid_from {
                SessionsValidFrom::Observed(v) => v.clone(),
                SessionsValidFrom::LaterThan { later_than } => later_than.clone(),
            };
            Ok(State::Account(AccountState {
                sign_in_sessions_valid_from: SessionsValidFrom::LaterThan { later_than: bound },
                ..s.clone()
            }))
        }
        (ActionKind::Revoke, State::Membership(s)) => {
            if s.dynamic && s.member {
                return Err(dynamic_group(&s.group));
            }
            Ok(State::Membership(MembershipState { member: false, ..s.clone() }))
        }
        (ActionKind::Revoke, State::DirectoryRole(s)) => {
            Ok(State::DirectoryRole(DirectoryRoleState { assigned: false, ends: None, ..s.clone() }))
        }
        (ActionKind::Revoke, State::AppRole(s)) => Ok(State::AppRole(AppRoleState { assigned: false, ..s.clone() })),
        (kind, _) => Err(ConnectorError::unsupported(format!("Entra ID cannot {} this target", kind.name()))),
    }
}

/// The refusal for a rule-based group.
pub(crate) fn dynamic_group(group: &str) -> ConnectorError {
    ConnectorError::permanent(format!(
        "group {group} has dynamic membership (groupTypes contains DynamicMembership): its members follow its \
         membership rule and cannot be removed one by one; change the rule or the user's attributes instead"
    ))
}

/// One sentence for the plan.
pub(crate) fn describe(kind: &ActionKind, before: &State, after: &State) -> String {
    if before == after {
        return "nothing to change: the target is already in the requested state".to_owned();
    }
    match after {
        State::Account(a) if matches!(kind, ActionKind::Suspend) => {
            let mut d = format!("disable sign-in for {} (accountEnabled true -> false)", a.user_principal_name);
            if a.on_premises_sync_enabled {
                d.push_str(
                    "; WARNING: this user is synchronised from on-premises Active Directory, and the next sync \
                     cycle may enable the account again unless it is also disabled on-premises",
                );
            }
            d
        }
        State::Account(a) => format!(
            "revoke every refresh token and session cookie of {} (signInSessionsValidFromDateTime moves to now); \
             cannot be undone",
            a.user_principal_name
        ),
        State::Membership(m) => format!("remove user {} from group {}", m.user, m.group),
        State::DirectoryRole(r) => match before {
            State::DirectoryRole(DirectoryRoleState { ends: Some(end), .. }) => format!(
                "remove directory role {} from {} at scope {}; WARNING: the assignment is time-bound (ends {end}) \
                 and an undo cannot restore its schedule: a rollback would recreate it as permanent, so rollback \
                 is refused for it",
                r.role_definition, r.principal, r.directory_scope
            ),
            _ => format!(
                "remove directory role {} from {} at scope {} (an undo creates a new assignment)",
                r.role_definition, r.principal, r.directory_scope
            ),
        },
        State::AppRole(r) => format!(
            "remove app role {} of resource {} from {} (an undo creates a new assignment)",
            r.app_role, r.resource, r.principal
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn account(valid_from: Option<&str>) -> State {
        State::Account(AccountState {
            user: "u1".into(),
            user_principal_name: "u1@contoso.com".into(),
            account_enabled: true,
            on_premises_sync_enabled: false,
            sign_in_sessions_valid_from: SessionsValidFrom::Observed(valid_from.map(Into::into)),
        })
    }

    #[test]
    fn account_state_serialises_flat() {
        let v = account(Some("2026-01-01T00:00:00Z")).to_value();
        assert_eq!(
            v,
            json!({"user": "u1", "user_principal_name": "u1@contoso.com", "account_enabled": true,
                   "on_premises_sync_enabled": false, "sign_in_sessions_valid_from": "2026-01-01T00:00:00Z"})
        );
        let t = Target { identity: "u1".into(), resource: None, grant: None, grant_type: "account".into() };
        assert_eq!(State::parse(Subject::of(&t).unwrap(), &v).unwrap(), account(Some("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn revoke_sessions_expects_a_later_timestamp() {
        let before = account(Some("2026-01-01T00:00:00Z"));
        let after = transform(&ActionKind::RevokeSessions, &before).unwrap();
        assert_eq!(after.to_value()["sign_in_sessions_valid_from"], json!({"later_than": "2026-01-01T00:00:00Z"}));
        assert!(!before.satisfies(&after));
        assert!(account(Some("2026-01-01T00:00:01Z")).satisfies(&after));
        assert!(!account(Some("2025-12-31T00:00:00Z")).satisfies(&after));
        assert!(account(Some("2026-01-01T00:00:00Z")).satisfies(&before));
        // No timestamp before: any timestamp afterwards counts.
        assert!(
            account(Some("2020-01-01T00:00:00Z"))
                .satisfies(&transform(&ActionKind::RevokeSessions, &account(None)).unwrap())
        );
    }

    #[test]
    fn dynamic_groups_refuse_removal() {
        let s = State::Membership(MembershipState { user: "u".into(), group: "g".into(), dynamic: true, member: true });
        let e = transform(&ActionKind::Revoke, &s).unwrap_err();
        assert_eq!(e.kind, remediation_core::ConnectorErrorKind::Permanent);
        assert!(e.message.contains("DynamicMembership"), "{}", e.message);
    }

    #[test]
    fn ids_that_break_urls_are_refused() {
        for bad in ["a/b", "x' or 1 eq 1", "", "a?b", "a b"] {
            let t = Target { identity: bad.into(), resource: None, grant: None, grant_type: "account".into() };
            assert!(Subject::of(&t).is_err(), "{bad}");
        }
        let t =
            Target { identity: "alice@contoso.com".into(), resource: None, grant: None, grant_type: "account".into() };
        assert!(Subject::of(&t).is_ok());
    }

    #[test]
    fn synced_users_get_a_warning() {
        let State::Account(mut a) = account(None) else { unreachable!() };
        a.on_premises_sync_enabled = true;
        let before = State::Account(a);
        let after = transform(&ActionKind::Suspend, &before).unwrap();
        assert!(describe(&ActionKind::Suspend, &before, &after).contains("WARNING"));
    }
}
