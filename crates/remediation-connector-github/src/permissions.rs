//! The GitHub calls the connector makes and the classic token scope each needs, judged
//! against the `X-OAuth-Scopes` header GitHub sends for a classic token.

use remediation_core::KindName::{Reduce, Revoke};
use remediation_core::{PermissionNeed, Permissions};

use crate::state::{ORG_MEMBER, ORG_ROLE, OUTSIDE_COLLABORATOR, REPO_COLLABORATOR, TEAM_MEMBER};

/// A call on public data: any token (or none) may make it.
pub(crate) const PUBLIC: &str = "none (public data)";
const REPO: &str = "repo";
const ADMIN_ORG: &str = "admin:org";
const READ_ORG: &str = "read:org";
const READ_ORG_BROADER: &[&str] = &["write:org", ADMIN_ORG];

/// Every GitHub call the connector makes and the classic token scope it needs. A
/// fine-grained token needs the matching permissions instead: repository Administration
/// (collaborators, invitations) and organization Members (memberships, teams, outside
/// collaborators), read for reads and write for writes.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("GET /user", PUBLIC),
    PermissionNeed::check("GET /rate_limit", PUBLIC),
    PermissionNeed::read(REPO_COLLABORATOR, "GET /repos/{owner}/{repo}/collaborators", REPO),
    PermissionNeed::read(REPO_COLLABORATOR, "GET /repos/{owner}/{repo}/invitations", REPO),
    PermissionNeed::read(REPO_COLLABORATOR, "GET /repos/{owner}/{repo}/collaborators/{login}/permission", REPO),
    PermissionNeed::read(REPO_COLLABORATOR, "GET /users/{login}", PUBLIC),
    PermissionNeed::execute(Revoke, REPO_COLLABORATOR, "DELETE /repos/{owner}/{repo}/collaborators/{login}", REPO),
    PermissionNeed::execute(Revoke, REPO_COLLABORATOR, "DELETE /repos/{owner}/{repo}/invitations/{id}", REPO),
    PermissionNeed::rollback(Revoke, REPO_COLLABORATOR, "PUT /repos/{owner}/{repo}/collaborators/{login}", REPO),
    PermissionNeed::execute(Reduce, REPO_COLLABORATOR, "PUT /repos/{owner}/{repo}/collaborators/{login}", REPO),
    PermissionNeed::execute(Revoke, REPO_COLLABORATOR, "GET /orgs/{org}/memberships/{login}", READ_ORG)
        .or(READ_ORG_BROADER),
    // The organisation's base permission is among the details GitHub shows only to an owner.
    PermissionNeed::execute(Revoke, REPO_COLLABORATOR, "GET /orgs/{org}", ADMIN_ORG),
    PermissionNeed::execute(Revoke, REPO_COLLABORATOR, "GET /repos/{owner}/{repo}/teams", REPO),
    PermissionNeed::execute(
        Revoke,
        REPO_COLLABORATOR,
        "GET /orgs/{org}/teams/{team_slug}/memberships/{login}",
        READ_ORG,
    )
    .or(READ_ORG_BROADER),
    PermissionNeed::execute(Reduce, REPO_COLLABORATOR, "GET /orgs/{org}/memberships/{login}", READ_ORG)
        .or(READ_ORG_BROADER),
    // The organisation's base permission is among the details GitHub shows only to an owner.
    PermissionNeed::execute(Reduce, REPO_COLLABORATOR, "GET /orgs/{org}", ADMIN_ORG),
    PermissionNeed::execute(Reduce, REPO_COLLABORATOR, "GET /repos/{owner}/{repo}/teams", REPO),
    PermissionNeed::execute(
        Reduce,
        REPO_COLLABORATOR,
        "GET /orgs/{org}/teams/{team_slug}/memberships/{login}",
        READ_ORG,
    )
    .or(READ_ORG_BROADER),
    PermissionNeed::rollback(Reduce, REPO_COLLABORATOR, "PUT /repos/{owner}/{repo}/collaborators/{login}", REPO),
    PermissionNeed::read(ORG_MEMBER, "GET /orgs/{org}/memberships/{login}", READ_ORG).or(READ_ORG_BROADER),
    PermissionNeed::read(ORG_MEMBER, "GET /users/{login}", PUBLIC),
    PermissionNeed::execute(Revoke, ORG_MEMBER, "DELETE /orgs/{org}/members/{login}", ADMIN_ORG),
    PermissionNeed::execute(Revoke, ORG_MEMBER, "DELETE /orgs/{org}/memberships/{login}", ADMIN_ORG),
    PermissionNeed::rollback(Revoke, ORG_MEMBER, "PUT /orgs/{org}/memberships/{login}", ADMIN_ORG),
    PermissionNeed::read(ORG_ROLE, "GET /orgs/{org}/memberships/{login}", READ_ORG).or(READ_ORG_BROADER),
    PermissionNeed::read(ORG_ROLE, "GET /users/{login}", PUBLIC),
    PermissionNeed::execute(Reduce, ORG_ROLE, "PUT /orgs/{org}/memberships/{login}", ADMIN_ORG),
    PermissionNeed::rollback(Reduce, ORG_ROLE, "PUT /orgs/{org}/memberships/{login}", ADMIN_ORG),
    PermissionNeed::read(TEAM_MEMBER, "GET /orgs/{org}/teams/{team_slug}/memberships/{login}", READ_ORG)
        .or(READ_ORG_BROADER),
    PermissionNeed::read(TEAM_MEMBER, "GET /orgs/{org}/teams/{team_slug}", READ_ORG).or(READ_ORG_BROADER),
    PermissionNeed::read(TEAM_MEMBER, "GET /orgs/{org}/memberships/{login}", READ_ORG).or(READ_ORG_BROADER),
    PermissionNeed::read(TEAM_MEMBER, "GET /users/{login}", PUBLIC),
    PermissionNeed::execute(Revoke, TEAM_MEMBER, "DELETE /orgs/{org}/teams/{team_slug}/memberships/{login}", ADMIN_ORG),
    PermissionNeed::rollback(Revoke, TEAM_MEMBER, "PUT /orgs/{org}/teams/{team_slug}/memberships/{login}", ADMIN_ORG),
    PermissionNeed::read(OUTSIDE_COLLABORATOR, "GET /orgs/{org}/outside_collaborators", READ_ORG).or(READ_ORG_BROADER),
    PermissionNeed::read(OUTSIDE_COLLABORATOR, "GET /orgs/{org}/repos", REPO),
    PermissionNeed::read(OUTSIDE_COLLABORATOR, "GET /repos/{owner}/{repo}/collaborators", REPO),
    PermissionNeed::read(OUTSIDE_COLLABORATOR, "GET /repos/{owner}/{repo}/invitations", REPO),
    PermissionNeed::read(OUTSIDE_COLLABORATOR, "GET /users/{login}", PUBLIC),
    PermissionNeed::execute(
        Revoke,
        OUTSIDE_COLLABORATOR,
        "DELETE /orgs/{org}/outside_collaborators/{login}",
        ADMIN_ORG,
    ),
    PermissionNeed::rollback(Revoke, OUTSIDE_COLLABORATOR, "PUT /repos/{owner}/{repo}/collaborators/{login}", REPO),
];

/// Judges [`PERMISSION_MAP`] against the classic scopes a token holds (`X-OAuth-Scopes`), or,
/// for a token that names none (fine-grained, GitHub App), leaves all but public calls unknown.
pub(crate) fn judge(scopes: Option<&str>) -> Permissions {
    let public = |p: &PermissionNeed| p.permission == PUBLIC;
    match scopes {
        Some(scopes) => {
            let mut held: Vec<String> = scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            held.push(PUBLIC.to_owned());
            Permissions::held(PERMISSION_MAP, &held)
        }
        None => Permissions::judge(PERMISSION_MAP, |p| match public(p) {
            true => remediation_core::Grant::Granted,
            false => remediation_core::Grant::Unknown,
        })
        .because("the token names no classic scopes (a fine-grained or GitHub App token); its permissions show only when a call is refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_scopes_are_judged_and_other_tokens_are_unknown() {
        let p = judge(Some("repo, read:org"));
        assert_eq!(p.missing, ["admin:org"]);
        assert!(p.granted.contains(&"read:org".to_owned()));
        let p = judge(None);
        assert_eq!(p.unknown, ["repo", "read:org", "admin:org"]);
        assert!(p.unknown_reason.is_some() && !p.all_granted() && p.can_write());
    }
}
