//! Targets resolved against the directory, their normalised states, and the pure rules that
//! say what each action kind does to a state.
//!
//! Plan, execute and rollback share these rules: `plan` applies [`transform`] to the
//! before-snapshot, `execute` applies it to the live state and [`write`]s the result, and
//! `rollback` writes [`restore`] of the before-snapshot. So what is planned is what is done.

use std::collections::BTreeMap;
use std::path::Path;

use remediation_core::{Action, ActionKind, ConnectorError, Target};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::directory::{Directory, Grant, GrantType, Notification, RepoLevel, UserStatus};
use crate::grant_type;

/// What a target refers to in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject<'a> {
    /// `user`'s membership of `group`.
    Membership { user: &'a str, group: &'a str },
    /// A grant of `resource` to `identity` in [`Directory::grants`].
    Grant { grant_type: GrantType, identity: &'a str, resource: &'a str },
    /// `user`'s account; with `notifications`, the notifications sent to them (the `notification`
    /// grant type), kept out of the plain account state so a notification is never drift.
    Account { user: &'a str, notifications: bool },
    /// The settings of the resource `name` (the `resource_setting` grant type).
    Resource { name: &'a str },
}

impl<'a> Subject<'a> {
    /// Resolves a target's grant type and fields. Unknown grant types are
    /// [`Unsupported`](remediation_core::ConnectorErrorKind::Unsupported).
    pub(crate) fn of(target: &'a Target) -> Result<Self, ConnectorError> {
        let resource = |what: &str| {
            target.resource.as_deref().ok_or_else(|| {
                ConnectorError::invalid_target(format!(
                    "a `{}` target names the {what} in `resource`, and this one has none",
                    target.grant_type
                ))
            })
        };
        let identity = target.identity.as_str();
        match target.grant_type.as_str() {
            grant_type::GROUP_MEMBERSHIP => Ok(Self::Membership { user: identity, group: resource("group")? }),
            grant_type::REPO_PERMISSION => {
                Ok(Self::Grant { grant_type: GrantType::RepoPermission, identity, resource: resource("repository")? })
            }
            grant_type::APP_ASSIGNMENT => {
                Ok(Self::Grant { grant_type: GrantType::AppAssignment, identity, resource: resource("application")? })
            }
            grant_type::ACCOUNT => Ok(Self::Account { user: identity, notifications: false }),
            grant_type::NOTIFICATION => Ok(Self::Account { user: identity, notifications: true }),
            grant_type::RESOURCE_SETTING => Ok(Self::Resource { name: identity }),
            other => Err(ConnectorError::unsupported(format!(
                "the sandbox has no grant type `{other}` (grant types: {})",
                grant_type::ALL.join(", ")
            ))),
        }
    }

    /// The user the subject belongs to; `None` for a resource.
    fn user(&self) -> Option<&'a str> {
        match *self {
            Self::Membership { user, .. } | Self::Account { user, .. } => Some(user),
            Self::Grant { identity, .. } => Some(identity),
            Self::Resource { .. } => None,
        }
    }
}

/// Normalised state of a group membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembershipState {
    user: String,
    group: String,
    member: bool,
}

/// Normalised state of a repository permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepoState {
    identity: String,
    resource: String,
    level: Option<String>,
}

/// Normalised state of an application assignment. `level` and `profile` are null when not
/// assigned; an assignment without a profile shows `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppState {
    identity: String,
    resource: String,
    assigned: bool,
    level: Option<String>,
    profile: Option<Map<String, Value>>,
}

/// Normalised state of an account. Shared by every account kind, because a snapshot is taken
/// of a target, not of an action; `notifications` (the `notification` grant type only) counts
/// the notifications sent to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountState {
    user: String,
    status: UserStatus,
    sessions: Vec<String>,
    password_must_change: bool,
    /// Only for the `notification` grant type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notifications: Option<usize>,
}

/// Normalised state of a resource: all its settings, so a rollback of an `enforce` restores the
/// exact previous configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceState {
    resource: String,
    settings: BTreeMap<String, String>,
}

/// The normalised state of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    Membership(MembershipState),
    Repo(RepoState),
    App(AppState),
    Account(AccountState),
    Resource(ResourceState),
}

impl State {
    /// The JSON kept in a [`Snapshot`](remediation_core::Snapshot).
    pub(crate) fn to_value(&self) -> Value {
        let value = match self {
            Self::Membership(s) => serde_json::to_value(s),
            Self::Repo(s) => serde_json::to_value(s),
            Self::App(s) => serde_json::to_value(s),
            Self::Account(s) => serde_json::to_value(s),
            Self::Resource(s) => serde_json::to_value(s),
        };
        // These are plain structs of strings, booleans and maps with string keys, which
        // always serialise.
        value.unwrap_or(Value::Null)
    }

    /// Reads a snapshot's JSON back, checking that it has the shape of `subject`'s state and
    /// names the same target.
    pub(crate) fn parse(subject: Subject<'_>, value: &Value) -> Result<Self, ConnectorError> {
        fn typed<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, ConnectorError> {
            T::deserialize(value).map_err(|e| {
                ConnectorError::permanent(format!(
                    "the snapshot was not taken by the sandbox connector for this kind of target: {e}"
                ))
            })
        }
        let (state, same) = match subject {
            Subject::Membership { user, group } => {
                let s: MembershipState = typed(value)?;
                let same = s.user == user && s.group == group;
                (Self::Membership(s), same)
            }
            Subject::Grant { grant_type: GrantType::RepoPermission, identity, resource } => {
                let s: RepoState = typed(value)?;
                let same = s.identity == identity && s.resource == resource;
                (Self::Repo(s), same)
            }
            Subject::Grant { grant_type: GrantType::AppAssignment, identity, resource } => {
                let s: AppState = typed(value)?;
                let same = s.identity == identity && s.resource == resource;
                (Self::App(s), same)
            }
            Subject::Account { user, .. } => {
                let s: AccountState = typed(value)?;
                let same = s.user == user;
                (Self::Account(s), same)
            }
            Subject::Resource { name } => {
                let s: ResourceState = typed(value)?;
                let same = s.resource == name;
                (Self::Resource(s), same)
            }
        };
        if same {
            Ok(state)
        } else {
            Err(ConnectorError::permanent(format!("the snapshot {value} is for another target")))
        }
    }
}

/// Reads the state of `subject`, and whether it is protected. Unknown users, groups and
/// resources are `NotFound`; a missing membership or grant is a state, not an error.
pub(crate) fn read(dir: &Directory, subject: Subject<'_>, path: &Path) -> Result<(State, bool), ConnectorError> {
    let Some(name) = subject.user() else {
        let Subject::Resource { name } = subject else { unreachable_subject()? };
        let Some(resource) = dir.resources.get(name) else {
            return Err(ConnectorError::not_found(format!(
                "no resource `{name}` in sandbox directory {}",
                path.display()
            )));
        };
        let state = ResourceState { resource: name.to_owned(), settings: resource.settings.clone() };
        return Ok((State::Resource(state), resource.protected));
    };
    let Some(user) = dir.users.get(name) else {
        return Err(ConnectorError::not_found(format!("no user `{name}` in sandbox directory {}", path.display())));
    };
    match subject {
        Subject::Membership { user: name, group } => {
            let Some(g) = dir.groups.get(group) else {
                return Err(ConnectorError::not_found(format!(
                    "no group `{group}` in sandbox directory {}",
                    path.display()
                )));
            };
            let state = MembershipState {
                user: name.to_owned(),
                group: group.to_owned(),
                member: g.members.iter().any(|m| m == name),
            };
            Ok((State::Membership(state), user.protected || g.protected))
        }
        Subject::Grant { grant_type, identity, resource } => {
            if !resource_known(dir, grant_type, resource) {
                let what = match grant_type {
                    GrantType::RepoPermission => "repository",
                    GrantType::AppAssignment => "application",
                };
                return Err(ConnectorError::not_found(format!(
                    "no {what} `{resource}` in sandbox directory {}",
                    path.display()
                )));
            }
            let grant = find_grant(dir, grant_type, identity, resource);
            let state = match grant_type {
                GrantType::RepoPermission => State::Repo(RepoState {
                    identity: identity.to_owned(),
                    resource: resource.to_owned(),
                    level: grant.map(|g| g.level.clone()),
                }),
                GrantType::AppAssignment => State::App(AppState {
                    identity: identity.to_owned(),
                    resource: resource.to_owned(),
                    assigned: grant.is_some(),
                    level: grant.map(|g| g.level.clone()),
                    profile: grant.map(|g| g.profile.clone().unwrap_or_default()),
                }),
            };
            Ok((state, user.protected))
        }
        Subject::Account { user: name, notifications } => {
            let state = AccountState {
                user: name.to_owned(),
                status: user.status,
                sessions: user.sessions.clone(),
                password_must_change: user.password_must_change,
                notifications: notifications.then(|| dir.notifications.iter().filter(|n| n.to == name).count()),
            };
            Ok((State::Account(state), user.protected))
        }
        Subject::Resource { .. } => unreachable_subject(),
    }
}

/// A subject whose user was asked for and that has none: only [`Subject::Resource`], which
/// [`read`] handles first.
fn unreachable_subject<T>() -> Result<T, ConnectorError> {
    Err(ConnectorError::permanent("a resource has no user"))
}

/// A repository or application exists when a grant names it, or when this connector's write
/// log does: so a resource whose last grant was revoked stays addressable for verify and
/// rollback.
fn resource_known(dir: &Directory, grant_type: GrantType, resource: &str) -> bool {
    dir.grants.iter().any(|g| g.grant_type == grant_type && g.resource == resource)
        || dir
            .writes
            .iter()
            .any(|w| w.target.grant_type == grant_type.as_str() && w.target.resource.as_deref() == Some(resource))
}

fn find_grant<'d>(dir: &'d Directory, grant_type: GrantType, identity: &str, resource: &str) -> Option<&'d Grant> {
    dir.grants.iter().find(|g| g.grant_type == grant_type && g.identity == identity && g.resource == resource)
}

/// When a rule runs: `plan` refuses a reduction that would not lower anything, while
/// `execute` treats "already at that level" as done, so that re-execution is idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Plan,
    Execute,
}

/// The state `kind` turns `state` into. Pure.
pub(crate) fn transform(kind: &ActionKind, state: &State, phase: Phase) -> Result<State, ConnectorError> {
    let mut next = state.clone();
    match (kind, &mut next) {
        (ActionKind::Revoke, State::Membership(s)) => s.member = false,
        (ActionKind::Revoke, State::Repo(s)) => s.level = None,
        (ActionKind::Reduce { to }, State::Repo(s)) => {
            let target: RepoLevel = to.parse().map_err(|e| ConnectorError::permanent(format!("{e}")))?;
            let Some(current) = &s.level else {
                return Err(ConnectorError::permanent(format!(
                    "not a reduction: {} has no permission on repository {}, so there is nothing to reduce",
                    s.identity, s.resource
                )));
            };
            let current_level: RepoLevel = current.parse().map_err(|e| {
                ConnectorError::permanent(format!(
                    "the grant of {} on {} in the file has an {e}",
                    s.identity, s.resource
                ))
            })?;
            let done = phase == Phase::Execute && target == current_level;
            if target >= current_level && !done {
                return Err(ConnectorError::permanent(format!(
                    "not a reduction: {} has `{current}` on repository {}, and `{to}` is not lower",
                    s.identity, s.resource
                )));
            }
            s.level = Some(target.as_str().to_owned());
        }
        (ActionKind::Revoke, State::App(s)) => {
            s.assigned = false;
            s.level = None;
            s.profile = None;
        }
        (ActionKind::Suspend, State::Account(s)) => s.status = UserStatus::Suspended,
        (ActionKind::RevokeSessions, State::Account(s)) => s.sessions.clear(),
        (ActionKind::ForcePasswordReset, State::Account(s)) => s.password_must_change = true,
        (ActionKind::Notify, State::Account(s)) => s.notifications = Some(s.notifications.unwrap_or(0) + 1),
        // The value is resolved (`default` replaced by the directory's) before this rule runs.
        (ActionKind::Enforce { setting, value }, State::Resource(s)) => {
            s.settings.insert(setting.clone(), value.clone());
        }
        (kind, _) => {
            return Err(ConnectorError::unsupported(format!("the sandbox cannot {kind} this kind of target")));
        }
    }
    Ok(next)
}

/// The state a rollback of `kind` writes: `current` with the field the action changed put back
/// as it was in `before`. Other fields stay as they are now, so that a rollback never undoes
/// someone else's change. An application assignment is re-created with an empty profile: the
/// profile is lost (the capability says `lossy`).
pub(crate) fn restore(kind: &ActionKind, current: &State, before: &State) -> Result<State, ConnectorError> {
    let mut next = current.clone();
    match (kind, &mut next, before) {
        (ActionKind::Revoke, State::Membership(s), State::Membership(b)) => s.member = b.member,
        (ActionKind::Revoke | ActionKind::Reduce { .. }, State::Repo(s), State::Repo(b)) => {
            s.level.clone_from(&b.level)
        }
        (ActionKind::Revoke, State::App(s), State::App(b)) => {
            if !b.assigned {
                s.assigned = false;
                s.level = None;
                s.profile = None;
            } else {
                if !s.assigned {
                    s.profile = Some(Map::new());
                }
                s.assigned = true;
                s.level.clone_from(&b.level);
            }
        }
        (ActionKind::Suspend, State::Account(s), State::Account(b)) => s.status = b.status,
        (ActionKind::Enforce { setting, .. }, State::Resource(s), State::Resource(b)) => {
            match b.settings.get(setting) {
                Some(previous) => {
                    s.settings.insert(setting.clone(), previous.clone());
                }
                None => {
                    s.settings.remove(setting);
                }
            }
        }
        (kind, _, _) => {
            return Err(ConnectorError::unsupported(format!(
                "a sandbox `{kind}` of this kind of target cannot be undone"
            )));
        }
    }
    Ok(next)
}

/// Makes the directory show `desired` for `subject`, given that it shows `current` now.
/// A rise in the notification count appends notifications from `action`.
pub(crate) fn write(dir: &mut Directory, subject: Subject<'_>, current: &State, desired: &State, action: &Action) {
    match (subject, desired) {
        (Subject::Membership { user, group }, State::Membership(d)) => {
            if let Some(g) = dir.groups.get_mut(group) {
                let is_member = g.members.iter().any(|m| m == user);
                if d.member && !is_member {
                    g.members.push(user.to_owned());
                } else if !d.member {
                    g.members.retain(|m| m != user);
                }
            }
        }
        (Subject::Grant { grant_type, identity, resource }, State::Repo(RepoState { level, .. }))
        | (Subject::Grant { grant_type, identity, resource }, State::App(AppState { level, .. })) => {
            let profile = match desired {
                State::App(d) => d.profile.clone(),
                _ => None,
            };
            let matches = |g: &Grant| g.grant_type == grant_type && g.identity == identity && g.resource == resource;
            match level {
                None => dir.grants.retain(|g| !matches(g)),
                Some(level) => {
                    let mut found = false;
                    for g in dir.grants.iter_mut().filter(|g| matches(g)) {
                        found = true;
                        g.level.clone_from(level);
                        if profile.is_some() && profile != g.profile {
                            g.profile.clone_from(&profile);
                        }
                    }
                    if !found {
                        dir.grants.push(Grant {
                            identity: identity.to_owned(),
                            resource: resource.to_owned(),
                            grant_type,
                            level: level.clone(),
                            profile,
                        });
                    }
                }
            }
        }
        (Subject::Account { user, .. }, State::Account(d)) => {
            if let Some(u) = dir.users.get_mut(user) {
                u.status = d.status;
                u.sessions.clone_from(&d.sessions);
                u.password_must_change = d.password_must_change;
            }
            let now = match current {
                State::Account(c) => c.notifications.unwrap_or(0),
                _ => d.notifications.unwrap_or(0),
            };
            for _ in now..d.notifications.unwrap_or(0) {
                dir.notifications.push(Notification {
                    to: user.to_owned(),
                    message: action.reason.clone(),
                    idempotency_key: action.idempotency_key.clone(),
                });
            }
        }
        (Subject::Resource { name }, State::Resource(d)) => {
            if let Some(r) = dir.resources.get_mut(name) {
                r.settings.clone_from(&d.settings);
            }
        }
        // `read` and `parse` only build the state that matches the subject.
        _ => {}
    }
}

/// The user that drift adds to groups and grants.
pub(crate) const DRIFT_USER: &str = "drift-user";
/// The session that drift opens on accounts.
pub(crate) const DRIFT_SESSION: &str = "drift-session";
/// The setting that drift adds to resources.
pub(crate) const DRIFT_SETTING: &str = "drift_setting";

/// Changes `subject` in a way unrelated to `kind`, as someone else might between plan and
/// execute: a new member of the group, a new grant on the resource for `drift-user`, or a new
/// session on the account (a flipped `password_must_change` when the action ends sessions,
/// so that the drift survives the action).
pub(crate) fn drift(dir: &mut Directory, subject: Subject<'_>, kind: &ActionKind) {
    match subject {
        Subject::Membership { group, .. } => {
            if let Some(g) = dir.groups.get_mut(group)
                && !g.members.iter().any(|m| m == DRIFT_USER)
            {
                g.members.push(DRIFT_USER.to_owned());
            }
        }
        Subject::Grant { grant_type, resource, .. } => {
            if find_grant(dir, grant_type, DRIFT_USER, resource).is_none() {
                let level = match grant_type {
                    GrantType::RepoPermission => RepoLevel::Pull.as_str(),
                    GrantType::AppAssignment => "user",
                };
                dir.grants.push(Grant {
                    identity: DRIFT_USER.to_owned(),
                    resource: resource.to_owned(),
                    grant_type,
                    level: level.to_owned(),
                    profile: None,
                });
            }
        }
        Subject::Resource { name } => {
            if let Some(r) = dir.resources.get_mut(name) {
                r.settings.insert(DRIFT_SETTING.to_owned(), "drifted".to_owned());
            }
        }
        Subject::Account { user, .. } => {
            if let Some(u) = dir.users.get_mut(user) {
                if matches!(kind, ActionKind::RevokeSessions) {
                    u.password_must_change = !u.password_must_change;
                } else {
                    u.sessions.push(DRIFT_SESSION.to_owned());
                }
            }
        }
    }
}

/// One sentence saying what `kind` changes from `before` to `after`.
pub(crate) fn describe(kind: &ActionKind, before: &State, after: &State) -> String {
    let unchanged = before == after;
    match (kind, before) {
        (_, State::Membership(s)) if unchanged => {
            format!("{} is not a member of group {}, so nothing will change.", s.user, s.group)
        }
        (_, State::Membership(s)) => format!("Remove {} from group {}.", s.user, s.group),
        (ActionKind::Reduce { to }, State::Repo(s)) => format!(
            "Reduce {}'s permission on repository {} from {} to {to}.",
            s.identity,
            s.resource,
            s.level.as_deref().unwrap_or("none")
        ),
        (_, State::Repo(RepoState { identity, resource, level: None })) => {
            format!("{identity} has no permission on repository {resource}, so nothing will change.")
        }
        (_, State::Repo(RepoState { identity, resource, level: Some(level) })) => {
            format!("Remove {identity}'s {level} permission on repository {resource}.")
        }
        (_, State::App(s)) if !s.assigned => {
            format!("{} is not assigned to application {}, so nothing will change.", s.identity, s.resource)
        }
        (_, State::App(s)) => {
            let profile = s.profile.as_ref().map(|p| Value::Object(p.clone()).to_string()).unwrap_or_default();
            format!(
                "Remove {}'s assignment to application {}; a rollback re-adds the assignment with an empty \
                 profile, so its profile {profile} would be lost.",
                s.identity, s.resource
            )
        }
        (ActionKind::Suspend, State::Account(s)) if unchanged => {
            format!("{}'s account is already suspended, so nothing will change.", s.user)
        }
        (ActionKind::Suspend, State::Account(s)) => format!("Suspend {}'s account.", s.user),
        (ActionKind::RevokeSessions, State::Account(s)) if unchanged => {
            format!("{} has no open sessions, so nothing will change.", s.user)
        }
        (ActionKind::RevokeSessions, State::Account(s)) => {
            format!("End {}'s {} open session(s); this cannot be undone.", s.user, s.sessions.len())
        }
        (ActionKind::ForcePasswordReset, State::Account(s)) if unchanged => {
            format!("{} must already change password at next sign-in, so nothing will change.", s.user)
        }
        (ActionKind::ForcePasswordReset, State::Account(s)) => {
            format!("Require {} to choose a new password at next sign-in; this cannot be undone.", s.user)
        }
        (_, State::Account(s)) => format!("Send {} a notification.", s.user),
        (ActionKind::Enforce { setting, value }, State::Resource(s)) if unchanged => {
            format!("`{setting}` of {} is already `{value}`, so nothing will change.", s.resource)
        }
        (ActionKind::Enforce { setting, value }, State::Resource(s)) => match s.settings.get(setting) {
            Some(previous) => format!(
                "Set `{setting}` of {} from `{previous}` to `{value}`; a rollback sets `{previous}` again.",
                s.resource
            ),
            None => {
                format!("Set `{setting}` of {}, unset until now, to `{value}`; a rollback unsets it again.", s.resource)
            }
        },
        (_, State::Resource(s)) => format!("Change {}.", s.resource),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn account(status: UserStatus, sessions: &[&str], pmc: bool, notifications: usize) -> State {
        State::Account(AccountState {
            user: "alice".into(),
            status,
            sessions: sessions.iter().map(|s| (*s).to_owned()).collect(),
            password_must_change: pmc,
            notifications: Some(notifications),
        })
    }

    fn repo(level: Option<&str>) -> State {
        State::Repo(RepoState { identity: "alice".into(), resource: "r".into(), level: level.map(str::to_owned) })
    }

    #[track_caller]
    fn check(kind: ActionKind, before: State, phase: Phase, expected: Result<State, &str>) {
        let got = transform(&kind, &before, phase);
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected),
            (Err(got), Err(fragment)) => assert!(got.message.contains(fragment), "{got}"),
            (got, expected) => panic!("{kind}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn transforms() {
        use ActionKind::*;
        use Phase::*;
        use UserStatus::*;
        let reduce = |to: &str| Reduce { to: to.into() };
        check(Suspend, account(Active, &["s"], false, 0), Plan, Ok(account(Suspended, &["s"], false, 0)));
        check(RevokeSessions, account(Active, &["s", "t"], false, 0), Plan, Ok(account(Active, &[], false, 0)));
        check(ForcePasswordReset, account(Active, &[], false, 0), Plan, Ok(account(Active, &[], true, 0)));
        check(Notify, account(Active, &[], false, 2), Plan, Ok(account(Active, &[], false, 3)));
        check(Revoke, repo(Some("admin")), Plan, Ok(repo(None)));
        check(Revoke, repo(None), Plan, Ok(repo(None)));
        check(reduce("pull"), repo(Some("admin")), Plan, Ok(repo(Some("pull"))));
        check(reduce("maintain"), repo(Some("admin")), Execute, Ok(repo(Some("maintain"))));
        check(reduce("admin"), repo(Some("admin")), Plan, Err("not a reduction"));
        check(reduce("admin"), repo(Some("admin")), Execute, Ok(repo(Some("admin"))));
        check(reduce("admin"), repo(Some("push")), Plan, Err("not a reduction"));
        check(reduce("admin"), repo(Some("push")), Execute, Err("not a reduction"));
        check(reduce("pull"), repo(None), Plan, Err("nothing to reduce"));
        check(reduce("read"), repo(Some("admin")), Plan, Err("unknown repository permission level `read`"));
        check(reduce("pull"), repo(Some("owner")), Plan, Err("unknown repository permission level `owner`"));
        check(Suspend, repo(Some("admin")), Plan, Err("cannot suspend"));
    }

    #[test]
    fn restore_puts_back_only_the_changed_field() {
        let before = account(UserStatus::Active, &["s"], false, 0);
        let now = account(UserStatus::Suspended, &["s", "new"], true, 1);
        let restored = restore(&ActionKind::Suspend, &now, &before).unwrap();
        assert_eq!(restored, account(UserStatus::Active, &["s", "new"], true, 1));
        assert!(restore(&ActionKind::RevokeSessions, &now, &before).is_err());
    }

    #[test]
    fn parse_refuses_another_targets_snapshot() {
        let subject = Subject::Account { user: "bob", notifications: true };
        let err = State::parse(subject, &account(UserStatus::Active, &[], false, 0).to_value()).unwrap_err();
        assert!(err.message.contains("another target"), "{err}");
        let err = State::parse(subject, &serde_json::json!({"user": "bob"})).unwrap_err();
        assert!(err.message.contains("not taken by the sandbox"), "{err}");
    }
}
