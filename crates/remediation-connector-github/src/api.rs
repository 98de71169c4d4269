//! The requests this connector sends, built as plain values: method, path, query, body.
//! Building one performs no I/O, so each is unit-tested and matched by the golden fixtures.

use remediation_connector_http::{ApiPath, Method, RequestSpec};
use serde_json::json;

/// A GitHub call as a plain value. Every write here is a PUT or DELETE: safe to repeat.
pub(crate) type ApiRequest = RequestSpec;

/// `owner/repo` split into its two segments (each then encoded by [`ApiPath`]).
fn repo_parts(repo: &str) -> Option<(&str, &str)> {
    let (owner, name) = repo.split_once('/')?;
    if owner.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some((owner, name))
}

/// `org/team-slug` split into its two segments (each then encoded by [`ApiPath`]).
fn team_parts(team: &str) -> Option<(&str, &str)> {
    let (org, slug) = team.split_once('/')?;
    if org.is_empty() || slug.is_empty() || slug.contains('/') {
        return None;
    }
    Some((org, slug))
}

/// `template` (under `/repos/{o}/{r}`) filled with the repository's two parts and `login`.
fn repo_path(repo: &str, template: &'static str, login: Option<&str>) -> Option<ApiPath> {
    let (owner, name) = repo_parts(repo)?;
    Some(ApiPath::new(template, [owner, name].into_iter().chain(login)))
}

/// `template` (under `/orgs/{org}/teams/{slug}`) filled with the team's two parts and `login`.
fn team_path(team: &str, template: &'static str, login: Option<&str>) -> Option<ApiPath> {
    let (org, slug) = team_parts(team)?;
    Some(ApiPath::new(template, [org, slug].into_iter().chain(login)))
}

/// `GET /user`: the token's own account, with `X-OAuth-Scopes` for classic tokens.
pub(crate) fn get_authenticated_user() -> ApiRequest {
    RequestSpec::new(Method::GET, "/user")
}

/// `GET /rate_limit`: does not count against the rate limit.
pub(crate) fn rate_limit() -> ApiRequest {
    RequestSpec::new(Method::GET, "/rate_limit")
}

/// `GET /users/{u}`.
pub(crate) fn get_user(login: &str) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/users/{}", [login]))
}

/// `GET /repos/{o}/{r}/collaborators?affiliation=direct&per_page=n`: direct grants only.
pub(crate) fn list_direct_collaborators(repo: &str, per_page: u32) -> Option<ApiRequest> {
    Some(
        RequestSpec::new(Method::GET, repo_path(repo, "/repos/{}/{}/collaborators", None)?)
            .query("affiliation", "direct")
            .query("per_page", per_page.to_string()),
    )
}

/// `GET /repos/{o}/{r}/collaborators/{u}/permission`: the user's highest permission from
/// every source ("Get repository permissions for a user").
pub(crate) fn get_collaborator_permission(repo: &str, login: &str) -> Option<ApiRequest> {
    Some(RequestSpec::new(Method::GET, repo_path(repo, "/repos/{}/{}/collaborators/{}/permission", Some(login))?))
}

/// `GET /repos/{o}/{r}/teams?per_page=n`: the teams with access and the permission each
/// grants ("List repository teams").
pub(crate) fn list_repo_teams(repo: &str, per_page: u32) -> Option<ApiRequest> {
    Some(
        RequestSpec::new(Method::GET, repo_path(repo, "/repos/{}/{}/teams", None)?)
            .query("per_page", per_page.to_string()),
    )
}

/// `GET /orgs/{org}`: its `default_repository_permission` ("Get an organization").
pub(crate) fn get_org(org: &str) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/orgs/{}", [org]))
}

/// `GET /repos/{o}/{r}/invitations?per_page=n`: pending invitations.
pub(crate) fn list_invitations(repo: &str, per_page: u32) -> Option<ApiRequest> {
    Some(
        RequestSpec::new(Method::GET, repo_path(repo, "/repos/{}/{}/invitations", None)?)
            .query("per_page", per_page.to_string()),
    )
}

/// `PUT /repos/{o}/{r}/collaborators/{u}` `{"permission"}`.
pub(crate) fn put_collaborator(repo: &str, login: &str, permission: &str) -> Option<ApiRequest> {
    Some(
        RequestSpec::new(Method::PUT, repo_path(repo, "/repos/{}/{}/collaborators/{}", Some(login))?)
            .body(json!({"permission": permission})),
    )
}

/// `DELETE /repos/{o}/{r}/collaborators/{u}`.
pub(crate) fn delete_collaborator(repo: &str, login: &str) -> Option<ApiRequest> {
    Some(RequestSpec::new(Method::DELETE, repo_path(repo, "/repos/{}/{}/collaborators/{}", Some(login))?))
}

/// `DELETE /repos/{o}/{r}/invitations/{id}`: cancels a pending repository invitation.
pub(crate) fn delete_invitation(repo: &str, id: u64) -> Option<ApiRequest> {
    let id = id.to_string();
    Some(RequestSpec::new(Method::DELETE, repo_path(repo, "/repos/{}/{}/invitations/{}", Some(id.as_str()))?))
}

/// `GET /orgs/{org}/memberships/{u}`.
pub(crate) fn get_org_membership(org: &str, login: &str) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/orgs/{}/memberships/{}", [org, login]))
}

/// `PUT /orgs/{org}/memberships/{u}` `{"role"}`: sets the role, or invites.
pub(crate) fn put_org_membership(org: &str, login: &str, role: &str) -> ApiRequest {
    RequestSpec::new(Method::PUT, ApiPath::new("/orgs/{}/memberships/{}", [org, login])).body(json!({"role": role}))
}

/// `DELETE /orgs/{org}/members/{u}`: removes the member from the organisation and its teams.
pub(crate) fn delete_org_member(org: &str, login: &str) -> ApiRequest {
    RequestSpec::new(Method::DELETE, ApiPath::new("/orgs/{}/members/{}", [org, login]))
}

/// `DELETE /orgs/{org}/memberships/{u}`: for a pending invitee, cancels the invitation
/// (`DELETE /orgs/{org}/members/{u}` acts on members only).
pub(crate) fn delete_org_membership(org: &str, login: &str) -> ApiRequest {
    RequestSpec::new(Method::DELETE, ApiPath::new("/orgs/{}/memberships/{}", [org, login]))
}

/// `GET /orgs/{org}/outside_collaborators?per_page=n`: collaborators who are not members.
pub(crate) fn list_outside_collaborators(org: &str, per_page: u32) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/orgs/{}/outside_collaborators", [org]))
        .query("per_page", per_page.to_string())
}

/// `GET /orgs/{org}/repos?per_page=n`: the organisation's repositories.
pub(crate) fn list_org_repos(org: &str, per_page: u32) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/orgs/{}/repos", [org])).query("per_page", per_page.to_string())
}

/// `DELETE /orgs/{org}/outside_collaborators/{u}`: removes the user from every repository
/// of the organisation.
pub(crate) fn delete_outside_collaborator(org: &str, login: &str) -> ApiRequest {
    RequestSpec::new(Method::DELETE, ApiPath::new("/orgs/{}/outside_collaborators/{}", [org, login]))
}

/// `GET /orgs/{org}/teams/{slug}`.
pub(crate) fn get_team(team: &str) -> Option<ApiRequest> {
    Some(RequestSpec::new(Method::GET, team_path(team, "/orgs/{}/teams/{}", None)?))
}

/// `GET /orgs/{org}/teams/{slug}/memberships/{u}`.
pub(crate) fn get_team_membership(team: &str, login: &str) -> Option<ApiRequest> {
    Some(RequestSpec::new(Method::GET, team_path(team, "/orgs/{}/teams/{}/memberships/{}", Some(login))?))
}

/// `PUT /orgs/{org}/teams/{slug}/memberships/{u}` `{"role"}`.
pub(crate) fn put_team_membership(team: &str, login: &str, role: &str) -> Option<ApiRequest> {
    Some(
        RequestSpec::new(Method::PUT, team_path(team, "/orgs/{}/teams/{}/memberships/{}", Some(login))?)
            .body(json!({"role": role})),
    )
}

/// `DELETE /orgs/{org}/teams/{slug}/memberships/{u}`.
pub(crate) fn delete_team_membership(team: &str, login: &str) -> Option<ApiRequest> {
    Some(RequestSpec::new(Method::DELETE, team_path(team, "/orgs/{}/teams/{}/memberships/{}", Some(login))?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(req: ApiRequest, method: Method, path: &str, query: &[(&str, &str)], body: Option<serde_json::Value>) {
        assert_eq!(req.method, method);
        assert_eq!(req.path, path);
        let q: Vec<(&str, &str)> = req.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(q, query);
        assert_eq!(req.body, body);
    }

    #[test]
    fn requests_match_the_reference() {
        check(
            list_direct_collaborators("acme/payments", 100).unwrap(),
            Method::GET,
            "/repos/acme/payments/collaborators",
            &[("affiliation", "direct"), ("per_page", "100")],
            None,
        );
        check(
            put_collaborator("acme/payments", "octocat", "pull").unwrap(),
            Method::PUT,
            "/repos/acme/payments/collaborators/octocat",
            &[],
            Some(json!({"permission": "pull"})),
        );
        check(
            delete_collaborator("acme/payments", "octocat").unwrap(),
            Method::DELETE,
            "/repos/acme/payments/collaborators/octocat",
            &[],
            None,
        );
        check(
            put_org_membership("acme", "octocat", "member"),
            Method::PUT,
            "/orgs/acme/memberships/octocat",
            &[],
            Some(json!({"role": "member"})),
        );
        check(delete_org_member("acme", "octocat"), Method::DELETE, "/orgs/acme/members/octocat", &[], None);
        check(
            delete_outside_collaborator("acme", "octocat"),
            Method::DELETE,
            "/orgs/acme/outside_collaborators/octocat",
            &[],
            None,
        );
        check(list_org_repos("acme", 100), Method::GET, "/orgs/acme/repos", &[("per_page", "100")], None);
        check(
            list_outside_collaborators("acme", 100),
            Method::GET,
            "/orgs/acme/outside_collaborators",
            &[("per_page", "100")],
            None,
        );
        check(delete_org_membership("acme", "octocat"), Method::DELETE, "/orgs/acme/memberships/octocat", &[], None);
        check(
            delete_invitation("acme/payments", 42).unwrap(),
            Method::DELETE,
            "/repos/acme/payments/invitations/42",
            &[],
            None,
        );
        check(
            put_team_membership("acme/platform", "octocat", "maintainer").unwrap(),
            Method::PUT,
            "/orgs/acme/teams/platform/memberships/octocat",
            &[],
            Some(json!({"role": "maintainer"})),
        );
        check(get_authenticated_user(), Method::GET, "/user", &[], None);
        check(
            get_collaborator_permission("acme/payments", "octocat").unwrap(),
            Method::GET,
            "/repos/acme/payments/collaborators/octocat/permission",
            &[],
            None,
        );
        check(
            list_repo_teams("acme/payments", 100).unwrap(),
            Method::GET,
            "/repos/acme/payments/teams",
            &[("per_page", "100")],
            None,
        );
        check(get_org("acme"), Method::GET, "/orgs/acme", &[], None);
    }

    #[test]
    fn malformed_resources_build_no_request() {
        assert!(list_direct_collaborators("acme", 100).is_none());
        assert!(list_direct_collaborators("acme/a/b", 100).is_none());
        assert!(list_direct_collaborators("/payments", 100).is_none());
        assert!(get_team("acme").is_none());
        check(get_user("x/orgs"), Method::GET, "/users/x%2Forgs", &[], None);
        // A login that climbs out of its segment is refused, not encoded.
        assert!(get_user("../orgs").path.error().is_some());
        assert!(delete_collaborator("acme/..", "alice").is_some_and(|r| r.path.error().is_some()));
    }
}
