//! The normalised snapshots of GitHub targets and the after-state each action expects.
//! Volatile fields (ids, URLs, node ids, timestamps) are left out.
//!
//! - `repo_collaborator` (identity = login, resource = `owner/repo`):
//!   `{"repository", "user", "permission", "invitation", "effective"}`: the direct grant's
//!   permission (`pull`, `triage`, `push`, `maintain`, `admin`), the permission of a pending
//!   invitation, and the highest permission the user has from every source (direct, teams,
//!   the organisation's base permission, ownership), each `null` when absent. Only the direct
//!   grant is ever written; `effective` is what an action is judged by.
//! - `org_member` (resource = org): `{"org", "user", "membership", "role"}`: membership
//!   `active` or `pending` (invited), role `admin`, `member` or `billing_manager`, both `null`
//!   when absent. A billing manager is refused: the membership call cannot set that role back.
//! - `org_role` (resource = org): `{"org", "user", "membership", "role"}` for a member.
//! - `team_member` (resource = `org/team-slug`): `{"team", "user", "state", "role"}`: state
//!   `active` or `pending`, role `member` or `maintainer`, both `null` when absent. GitHub
//!   reports every organisation owner's team role as `maintainer`; an owner's team membership
//!   is refused, since its real role cannot be read back.
//! - `outside_collaborator` (resource = org): `{"org", "user", "repositories", "invitations"}`:
//!   for a user GitHub lists as an outside collaborator of the organisation, each of its
//!   repositories they are a direct collaborator on (`owner/repo`) with the permission (`{}`
//!   otherwise), and each of its repositories with a pending invitation to them.

use remediation_core::{ActionKind, ConnectorError};
use serde_json::{Map, Value, json};

/// A direct collaborator on a repository.
pub(crate) const REPO_COLLABORATOR: &str = "repo_collaborator";
/// A member of an organisation.
pub(crate) const ORG_MEMBER: &str = "org_member";
/// A member's role in an organisation.
pub(crate) const ORG_ROLE: &str = "org_role";
/// A member of a team.
pub(crate) const TEAM_MEMBER: &str = "team_member";
/// A collaborator on an organisation's repositories who is not a member of it.
pub(crate) const OUTSIDE_COLLABORATOR: &str = "outside_collaborator";

/// The organisation roles `PUT /orgs/{org}/memberships/{u}` accepts. The membership read
/// also answers `billing_manager`, which that call cannot set: a plan that would have to
/// write it back is refused.
pub(crate) const SETTABLE_ORG_ROLES: [&str; 2] = ["admin", "member"];

/// Refuses, with the reason, an organisation role the membership call cannot write back.
pub(crate) fn settable_org_role(user: &str, org: &str, role: &str, why: &str) -> Result<(), ConnectorError> {
    if SETTABLE_ORG_ROLES.contains(&role) {
        return Ok(());
    }
    Err(ConnectorError::permanent(format!(
        "{user} is {role} in {org}: GitHub's membership call sets only admin or member, {why}"
    )))
}

/// Repository permissions from least to most.
pub(crate) const REPO_LEVELS: [&str; 5] = ["pull", "triage", "push", "maintain", "admin"];

/// A repository role as the collaborator `PUT` spells it: GitHub answers `read`/`write` in
/// `role_name` and invitations, but takes `pull`/`push`. Custom roles keep their name.
pub(crate) fn permission_name(role: &str) -> String {
    match role {
        "read" => "pull".to_owned(),
        "write" => "push".to_owned(),
        other => other.to_owned(),
    }
}

/// The direct grant of an item of "List repository collaborators" (`affiliation=direct`):
/// the highest of its `permissions` flags, which GitHub documents as "the base role
/// permissions of the collaborator". Its `role_name` is not the grant: it is "the highest
/// role assigned to the collaborator after considering all sources of grants, including:
/// repo, teams, organization, and enterprise", so a `pull` collaborator who is `admin`
/// through a team reads `admin` there.
pub(crate) fn direct_permission(item: &Value) -> Option<String> {
    let flags = item.get("permissions")?;
    REPO_LEVELS.iter().rev().find(|l| flags.get(**l).and_then(Value::as_bool) == Some(true)).map(|l| (*l).to_owned())
}

/// The effective permission in a "Get repository permissions for a user" answer: `role_name`
/// (the full role, custom roles included), else the legacy `permission` (`admin`, `write`,
/// `read`; `none` and an empty role are no access).
pub(crate) fn effective_permission(answer: &Value) -> Option<String> {
    let text = |k: &str| answer.get(k).and_then(Value::as_str).filter(|r| !r.is_empty() && *r != "none");
    text("role_name").or_else(|| text("permission")).map(permission_name)
}

/// A grant of a repository permission that is not the direct one: its permission, and what
/// gives it, in words ("the team acme/platform").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtherGrant {
    /// The permission, in the collaborator `PUT` vocabulary.
    pub(crate) permission: String,
    /// Where it comes from.
    pub(crate) via: String,
}

impl OtherGrant {
    /// The higher of two grants (the first on a tie, or when a rank is unknown).
    pub(crate) fn max(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if rank(&b.permission) > rank(&a.permission) { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

fn opt(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::String)
}

/// The `repo_collaborator` state.
pub(crate) fn collaborator(
    repo: &str,
    login: &str,
    permission: Option<String>,
    invitation: Option<String>,
    effective: Option<String>,
) -> Value {
    json!({"repository": repo, "user": login, "permission": opt(permission), "invitation": opt(invitation),
           "effective": opt(effective)})
}

/// The `org_member` / `org_role` state from a membership answer (`None`: not a member).
pub(crate) fn org_membership(org: &str, login: &str, membership: Option<&Value>) -> Value {
    let text = |k: &str| opt(membership.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_owned));
    json!({"org": org, "user": login, "membership": text("state"), "role": text("role")})
}

/// The `team_member` state from a team membership answer (`None`: not a member).
pub(crate) fn team_membership(team: &str, login: &str, membership: Option<&Value>) -> Value {
    let text = |k: &str| opt(membership.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_owned));
    json!({"team": team, "user": login, "state": text("state"), "role": text("role")})
}

/// The `outside_collaborator` state: `repositories` and `invitations` map `owner/repo` to
/// the permission held or offered.
pub(crate) fn outside_collaborator(
    org: &str,
    login: &str,
    repositories: Map<String, Value>,
    invitations: Map<String, Value>,
) -> Value {
    json!({"org": org, "user": login, "repositories": repositories, "invitations": invitations})
}

/// A field of a snapshot, or a permanent error: a snapshot without it is not ours.
pub(crate) fn field<'a>(state: &'a Value, name: &str) -> Result<&'a Value, ConnectorError> {
    state.get(name).ok_or_else(|| {
        ConnectorError::permanent(format!("the snapshot has no `{name}`: it was not made by the GitHub connector"))
    })
}

/// A text field of a snapshot that may be `null`.
pub(crate) fn text(state: &Value, name: &str) -> Result<Option<String>, ConnectorError> {
    Ok(field(state, name)?.as_str().map(str::to_owned))
}

fn with(state: &Value, changes: &[(&str, Value)]) -> Result<Value, ConnectorError> {
    let mut map: Map<String, Value> =
        state.as_object().cloned().ok_or_else(|| ConnectorError::permanent("the snapshot is not a JSON object"))?;
    for (k, v) in changes {
        field(state, k)?;
        map.insert((*k).to_owned(), v.clone());
    }
    Ok(Value::Object(map))
}

/// The rank of a repository permission (`None` for a custom role).
pub(crate) fn rank(level: &str) -> Option<usize> {
    REPO_LEVELS.iter().position(|l| *l == level)
}

/// What a plan says before approval about a rollback that can only invite.
const REINVITE: &str = "rollback can only re-invite them: access returns only once they accept the invitation";

/// The state `kind` leaves on a target of `grant_type`, given `before`, and a sentence
/// saying what changes. `other` is, for a `repo_collaborator`, the highest grant the user
/// holds on the repository besides the direct one (it stays after the write). Only called
/// for declared capabilities.
pub(crate) fn expected_after(
    kind: &ActionKind,
    grant_type: &str,
    before: &Value,
    other: Option<&OtherGrant>,
) -> Result<(Value, String), ConnectorError> {
    let user = text(before, "user")?.unwrap_or_default();
    let remaining = other.map(|o| Value::String(o.permission.clone())).unwrap_or(Value::Null);
    match (kind, grant_type) {
        (ActionKind::Revoke, REPO_COLLABORATOR) => {
            let repo = text(before, "repository")?.unwrap_or_default();
            let after =
                with(before, &[("permission", Value::Null), ("invitation", Value::Null), ("effective", remaining)])?;
            let keeps =
                other.map(|o| format!(" They keep {} access through {}.", o.permission, o.via)).unwrap_or_default();
            let description = match (text(before, "permission")?, text(before, "invitation")?) {
                (None, Some(offered)) => format!(
                    "Cancel {user}'s pending {offered} invitation to {repo}; rollback invites them again with the same permission.{keeps}"
                ),
                (level, _) => format!(
                    "Remove {user}'s direct {} access to {repo}; {REINVITE}.{keeps}",
                    level.as_deref().unwrap_or("no")
                ),
            };
            Ok((after, description))
        }
        (ActionKind::Reduce { to }, REPO_COLLABORATOR) => {
            let repo = text(before, "repository")?.unwrap_or_default();
            let Some(target) = rank(to) else {
                return Err(ConnectorError::permanent(format!(
                    "cannot reduce to {to}: repository permissions are pull, triage, push, maintain, admin"
                )));
            };
            // Writing the direct grant cannot take away what a team, the base permission or
            // ownership gives: such a reduce would change nothing the user can do.
            if let Some(o) = other
                && rank(&o.permission).is_none_or(|r| r > target)
            {
                return Err(ConnectorError::permanent(format!(
                    "reducing {user} to {to} on {repo} cannot lower their access: {} grants {}; change that grant instead",
                    o.via, o.permission
                )));
            }
            let Some(current) = text(before, "permission")? else {
                return Err(ConnectorError::permanent(format!("{user} has no direct access to {repo} to reduce")));
            };
            let Some(from) = rank(&current) else {
                return Err(ConnectorError::permanent(format!(
                    "cannot compare {current} with {to}: repository permissions are pull, triage, push, maintain, admin"
                )));
            };
            // The collaborator PUT sets the direct grant to exactly `to`: never sent to raise one.
            if target > from {
                return Err(ConnectorError::permanent(format!(
                    "{user}'s direct permission on {repo} is {current}; setting {to} would raise it"
                )));
            }
            Ok((
                with(before, &[("permission", Value::String(to.clone())), ("effective", Value::String(to.clone()))])?,
                format!("Reduce {user}'s direct permission on {repo} from {current} to {to}."),
            ))
        }
        (ActionKind::Revoke, ORG_MEMBER) => {
            let org = text(before, "org")?.unwrap_or_default();
            if let Some(role) = text(before, "role")? {
                settable_org_role(&user, &org, &role, "so the removal could not be rolled back")?;
            }
            let after = with(before, &[("membership", Value::Null), ("role", Value::Null)])?;
            let description = if text(before, "membership")?.as_deref() == Some("pending") {
                format!(
                    "Cancel {user}'s pending invitation to the GitHub organisation {org}; rollback invites them again with the same role."
                )
            } else {
                format!(
                    "Remove {user} from the GitHub organisation {org} (and its teams); {REINVITE}, and their team memberships are not restored."
                )
            };
            Ok((after, description))
        }
        (ActionKind::Reduce { to }, ORG_ROLE) => {
            let org = text(before, "org")?.unwrap_or_default();
            let current = text(before, "role")?.unwrap_or_default();
            settable_org_role(
                &user,
                &org,
                &current,
                "and setting member would grant a membership rather than reduce access",
            )?;
            if to != "member" {
                return Err(ConnectorError::permanent(format!(
                    "an organisation role can only be reduced to member, not {to}"
                )));
            }
            Ok((
                with(before, &[("role", Value::String(to.clone()))])?,
                format!("Change {user}'s role in {org} from {current} to {to}."),
            ))
        }
        (ActionKind::Revoke, TEAM_MEMBER) => {
            let team = text(before, "team")?.unwrap_or_default();
            let role = text(before, "role")?.unwrap_or_else(|| "member".to_owned());
            Ok((
                with(before, &[("state", Value::Null), ("role", Value::Null)])?,
                format!("Remove {user} ({role}) from the team {team}; rollback adds them back with the same role."),
            ))
        }
        (ActionKind::Revoke, OUTSIDE_COLLABORATOR) => {
            let org = text(before, "org")?.unwrap_or_default();
            let repos: Vec<&String> =
                field(before, "repositories")?.as_object().map(|m| m.keys().collect()).unwrap_or_default();
            let names = repos.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
            Ok((
                with(before, &[("repositories", json!({}))])?,
                format!(
                    "Remove the outside collaborator {user} from every repository of {org} ({names}); rollback can only re-invite them to each with the same permission: access returns only once they accept the invitations."
                ),
            ))
        }
        (other, gt) => Err(ConnectorError::unsupported(format!("the GitHub connector cannot {} a {gt}", other.name()))),
    }
}

/// The state a rollback leaves when its write was taken as an invitation: `after` with the
/// access `before` held offered back, for the same permission or role, and not yet held.
/// `None` for a grant whose rollback never invites.
pub(crate) fn pending_after(kind: &ActionKind, grant_type: &str, before: &Value, after: &Value) -> Option<Value> {
    match (kind, grant_type) {
        (ActionKind::Revoke, REPO_COLLABORATOR) => {
            let offered = text(before, "permission").ok()?.or(text(before, "invitation").ok()?)?;
            with(after, &[("permission", Value::Null), ("invitation", Value::String(offered))]).ok()
        }
        (ActionKind::Revoke, ORG_MEMBER) => {
            let role = text(before, "role").ok()??;
            with(after, &[("membership", json!("pending")), ("role", Value::String(role))]).ok()
        }
        (ActionKind::Revoke, OUTSIDE_COLLABORATOR) => {
            let mut invitations = field(after, "invitations").ok()?.as_object()?.clone();
            for (repo, permission) in field(before, "repositories").ok()?.as_object()? {
                invitations.insert(repo.clone(), permission.clone());
            }
            with(after, &[("invitations", Value::Object(invitations))]).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_grant_is_the_flags_and_the_effective_one_the_role_name() {
        assert_eq!(
            effective_permission(&json!({"role_name": "write", "permission": "write"})),
            Some("push".to_owned())
        );
        assert_eq!(effective_permission(&json!({"role_name": "", "permission": "read"})), Some("pull".to_owned()));
        assert_eq!(
            effective_permission(&json!({"role_name": "security-auditor"})),
            Some("security-auditor".to_owned())
        );
        assert_eq!(effective_permission(&json!({"role_name": "", "permission": "none"})), None);
        let item = json!({"role_name": "admin",
            "permissions": {"admin": false, "maintain": true, "push": true, "triage": true, "pull": true}});
        assert_eq!(direct_permission(&item), Some("maintain".to_owned()), "role_name is not the direct grant");
        assert_eq!(direct_permission(&json!({"role_name": "admin"})), None);
    }

    #[test]
    fn after_states() {
        let c = collaborator("acme/payments", "octocat", Some("push".into()), None, Some("push".into()));
        let (after, d) = expected_after(&ActionKind::Revoke, REPO_COLLABORATOR, &c, None).unwrap();
        assert_eq!(after, collaborator("acme/payments", "octocat", None, None, None));
        assert!(d.contains("can only re-invite"), "{d}");
        let pending = pending_after(&ActionKind::Revoke, REPO_COLLABORATOR, &c, &after).unwrap();
        assert_eq!(pending, collaborator("acme/payments", "octocat", None, Some("push".into()), None));
        let (after, d) =
            expected_after(&ActionKind::Reduce { to: "pull".into() }, REPO_COLLABORATOR, &c, None).unwrap();
        assert_eq!((after["permission"].clone(), after["effective"].clone()), (json!("pull"), json!("pull")));
        assert!(d.contains("from push to pull"), "{d}");
        assert!(expected_after(&ActionKind::Reduce { to: "admin".into() }, REPO_COLLABORATOR, &c, None).is_err());
        assert!(expected_after(&ActionKind::Reduce { to: "read".into() }, REPO_COLLABORATOR, &c, None).is_err());
        // Another grant above the target cannot be lowered by writing the direct one.
        let team = OtherGrant { permission: "admin".into(), via: "the team acme/platform".into() };
        let refused =
            expected_after(&ActionKind::Reduce { to: "pull".into() }, REPO_COLLABORATOR, &c, Some(&team)).unwrap_err();
        assert!(refused.to_string().contains("the team acme/platform grants admin"), "{refused}");
        let (after, d) = expected_after(&ActionKind::Revoke, REPO_COLLABORATOR, &c, Some(&team)).unwrap();
        assert_eq!(after["effective"], json!("admin"));
        assert!(d.contains("keep admin access through the team acme/platform"), "{d}");
        let m = org_membership("acme", "octocat", Some(&json!({"state": "active", "role": "admin", "url": "x"})));
        assert_eq!(m, json!({"org": "acme", "user": "octocat", "membership": "active", "role": "admin"}));
        let (after, _) = expected_after(&ActionKind::Revoke, ORG_MEMBER, &m, None).unwrap();
        assert_eq!(after, org_membership("acme", "octocat", None));
        let (after, _) = expected_after(&ActionKind::Reduce { to: "member".into() }, ORG_ROLE, &m, None).unwrap();
        assert_eq!(after["role"], json!("member"));
        assert!(expected_after(&ActionKind::Reduce { to: "admin".into() }, ORG_ROLE, &m, None).is_err());
        let b = org_membership("acme", "biller", Some(&json!({"state": "active", "role": "billing_manager"})));
        let refused = expected_after(&ActionKind::Reduce { to: "member".into() }, ORG_ROLE, &b, None).unwrap_err();
        assert!(refused.to_string().contains("would grant a membership"), "{refused}");
        let refused = expected_after(&ActionKind::Revoke, ORG_MEMBER, &b, None).unwrap_err();
        assert!(refused.to_string().contains("could not be rolled back"), "{refused}");
        let t = team_membership("acme/platform", "octocat", Some(&json!({"state": "active", "role": "maintainer"})));
        let (after, _) = expected_after(&ActionKind::Revoke, TEAM_MEMBER, &t, None).unwrap();
        assert_eq!(after, team_membership("acme/platform", "octocat", None));
    }
}
