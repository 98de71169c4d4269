//! The normalised snapshots of GitHub targets and the after-state each action expects.
//! Volatile fields (ids, URLs, node ids, timestamps) are left out.
//!
//! - `repo_collaborator` (identity = login, resource = `owner/repo`):
//!   `{"repository", "user", "permission", "invitation"}`: the direct grant's permission
//!   (`pull`, `triage`, `push`, `maintain`, `admin` or a custom role name) and the permission
//!   of a pending invitation, each `null` when absent.
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

/// The repository role of a collaborator list item: `role_name`, else the highest of its
/// `permissions` flags.
pub(crate) fn collaborator_permission(item: &Value) -> Option<String> {
    if let Some(role) = item.get("role_name").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        return Some(permission_name(role));
    }
    let flags = item.get("permissions")?;
    REPO_LEVELS.iter().rev().find(|l| flags.get(**l).and_then(Value::as_bool) == Some(true)).map(|l| (*l).to_owned())
}

fn opt(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::String)
}

/// The `repo_collaborator` state.
pub(crate) fn collaborator(repo: &str, login: &str, permission: Option<String>, invitation: Option<String>) -> Value {
    json!({"repository": repo, "user": login, "permission": opt(permission), "invitation": opt(invitation)})
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

fn rank(level: &str) -> Option<usize> {
    REPO_LEVELS.iter().position(|l| *l == level)
}

/// The state `kind` leaves on a target of `grant_type`, given `before`, and a sentence
/// saying what changes. Only called for declared capabilities.
pub(crate) fn expected_after(
    kind: &ActionKind,
    grant_type: &str,
    before: &Value,
) -> Result<(Value, String), ConnectorError> {
    let user = text(before, "user")?.unwrap_or_default();
    match (kind, grant_type) {
        (ActionKind::Revoke, REPO_COLLABORATOR) => {
            let repo = text(before, "repository")?.unwrap_or_default();
            let after = with(before, &[("permission", Value::Null), ("invitation", Value::Null)])?;
            let description = match (text(before, "permission")?, text(before, "invitation")?) {
                (None, Some(offered)) => format!(
                    "Cancel {user}'s pending {offered} invitation to {repo}; rollback invites them again with the same permission."
                ),
                (level, _) => format!(
                    "Remove {user}'s direct {} access to {repo}; rollback re-invites them (lossy: they must accept the invitation).",
                    level.as_deref().unwrap_or("no")
                ),
            };
            Ok((after, description))
        }
        (ActionKind::Reduce { to }, REPO_COLLABORATOR) => {
            let repo = text(before, "repository")?.unwrap_or_default();
            let Some(current) = text(before, "permission")? else {
                return Err(ConnectorError::permanent(format!("{user} has no direct access to {repo} to reduce")));
            };
            let (Some(from), Some(target)) = (rank(&current), rank(to)) else {
                return Err(ConnectorError::permanent(format!(
                    "cannot compare {current} with {to}: repository permissions are pull, triage, push, maintain, admin"
                )));
            };
            if target > from {
                return Err(ConnectorError::permanent(format!(
                    "reducing {user} from {current} to {to} would raise it"
                )));
            }
            Ok((
                with(before, &[("permission", Value::String(to.clone()))])?,
                format!("Reduce {user}'s permission on {repo} from {current} to {to}."),
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
                    "Remove {user} from the GitHub organisation {org} (and its teams); rollback re-invites them (lossy: team memberships and the acceptance are not restored)."
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
                    "Remove the outside collaborator {user} from every repository of {org} ({names}); rollback re-invites them to each with the same permission (lossy: they must accept the invitations)."
                ),
            ))
        }
        (other, gt) => Err(ConnectorError::unsupported(format!("the GitHub connector cannot {} a {gt}", other.name()))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_normalised_to_the_put_vocabulary() {
        assert_eq!(collaborator_permission(&json!({"role_name": "write"})), Some("push".to_owned()));
        assert_eq!(collaborator_permission(&json!({"role_name": "read"})), Some("pull".to_owned()));
        assert_eq!(
            collaborator_permission(&json!({"role_name": "security-auditor"})),
            Some("security-auditor".to_owned())
        );
        let flags =
            json!({"permissions": {"admin": false, "maintain": true, "push": true, "triage": true, "pull": true}});
        assert_eq!(collaborator_permission(&flags), Some("maintain".to_owned()));
        assert_eq!(collaborator_permission(&json!({})), None);
    }

    #[test]
    fn after_states() {
        let c = collaborator("acme/payments", "octocat", Some("push".into()), None);
        let (after, _) = expected_after(&ActionKind::Revoke, REPO_COLLABORATOR, &c).unwrap();
        assert_eq!(after, collaborator("acme/payments", "octocat", None, None));
        let (after, d) = expected_after(&ActionKind::Reduce { to: "pull".into() }, REPO_COLLABORATOR, &c).unwrap();
        assert_eq!(after["permission"], json!("pull"));
        assert!(d.contains("from push to pull"), "{d}");
        assert!(expected_after(&ActionKind::Reduce { to: "admin".into() }, REPO_COLLABORATOR, &c).is_err());
        assert!(expected_after(&ActionKind::Reduce { to: "read".into() }, REPO_COLLABORATOR, &c).is_err());
        let m = org_membership("acme", "octocat", Some(&json!({"state": "active", "role": "admin", "url": "x"})));
        assert_eq!(m, json!({"org": "acme", "user": "octocat", "membership": "active", "role": "admin"}));
        let (after, _) = expected_after(&ActionKind::Revoke, ORG_MEMBER, &m).unwrap();
        assert_eq!(after, org_membership("acme", "octocat", None));
        let (after, _) = expected_after(&ActionKind::Reduce { to: "member".into() }, ORG_ROLE, &m).unwrap();
        assert_eq!(after["role"], json!("member"));
        assert!(expected_after(&ActionKind::Reduce { to: "admin".into() }, ORG_ROLE, &m).is_err());
        let b = org_membership("acme", "biller", Some(&json!({"state": "active", "role": "billing_manager"})));
        let refused = expected_after(&ActionKind::Reduce { to: "member".into() }, ORG_ROLE, &b).unwrap_err();
        assert!(refused.to_string().contains("would grant a membership"), "{refused}");
        let refused = expected_after(&ActionKind::Revoke, ORG_MEMBER, &b).unwrap_err();
        assert!(refused.to_string().contains("could not be rolled back"), "{refused}");
        let t = team_membership("acme/platform", "octocat", Some(&json!({"state": "active", "role": "maintainer"})));
        let (after, _) = expected_after(&ActionKind::Revoke, TEAM_MEMBER, &t).unwrap();
        assert_eq!(after, team_membership("acme/platform", "octocat", None));
    }
}
