//! The Graph calls the connector makes and the application permission each needs, and the
//! judgement of an access token's `roles` claim against them.

use base64::Engine as _;
use remediation_core::KindName::{Revoke, RevokeSessions, Suspend};
use remediation_core::{PermissionNeed, Permissions};
use serde_json::Value;

use crate::state::grant_type::{ACCOUNT, APP_ROLE_ASSIGNMENT, DIRECTORY_ROLE, GROUP_MEMBERSHIP};

/// Every Graph call the connector makes and the application permission each needs: the
/// least privileged one Microsoft Graph's page for the operation lists, then the higher
/// privileged ones that include it.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("GET /users", USER_READ).or(USER_READ_BROADER),
    PermissionNeed::read(ACCOUNT, "GET /users/{id}", USER_READ).or(USER_READ_BROADER),
    // Finding a person's account lists the groups the user is a direct member of.
    PermissionNeed::read(ACCOUNT, "GET /users/{id}/memberOf", "Directory.Read.All").or(&["Directory.ReadWrite.All"]),
    PermissionNeed::execute(Suspend, ACCOUNT, "PATCH /users/{id}", "User.EnableDisableAccount.All").or(USER_WRITE),
    PermissionNeed::rollback(Suspend, ACCOUNT, "PATCH /users/{id}", "User.EnableDisableAccount.All").or(USER_WRITE),
    PermissionNeed::execute(
        RevokeSessions,
        ACCOUNT,
        "POST /users/{id}/revokeSignInSessions",
        "User.RevokeSessions.All",
    )
    .or(USER_WRITE),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /users/{id}", USER_READ).or(USER_READ_BROADER),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /groups/{id}", MEMBER_READ).or(MEMBER_READ_BROADER),
    PermissionNeed::read(GROUP_MEMBERSHIP, "GET /groups/{id}/members", MEMBER_READ).or(MEMBER_READ_BROADER),
    PermissionNeed::execute(Revoke, GROUP_MEMBERSHIP, "DELETE /groups/{id}/members/{id}/$ref", MEMBER_WRITE)
        .or(MEMBER_WRITE_BROADER),
    PermissionNeed::rollback(Revoke, GROUP_MEMBERSHIP, "POST /groups/{id}/members/$ref", MEMBER_WRITE)
        .or(MEMBER_WRITE_BROADER),
    PermissionNeed::read(DIRECTORY_ROLE, "GET /directoryObjects/{id}", "Directory.Read.All")
        .or(&["Directory.ReadWrite.All"]),
    PermissionNeed::read(
        DIRECTORY_ROLE,
        "GET /roleManagement/directory/roleAssignments",
        "RoleManagement.Read.Directory",
    )
    .or(&["RoleManagement.Read.All", "Directory.Read.All", ROLE_WRITE, "Directory.ReadWrite.All"]),
    PermissionNeed::read(
        DIRECTORY_ROLE,
        "GET /roleManagement/directory/roleAssignmentScheduleInstances",
        "RoleAssignmentSchedule.Read.Directory",
    )
    .or(&[
        "RoleAssignmentSchedule.ReadWrite.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.Read.Directory",
        ROLE_WRITE,
    ]),
    PermissionNeed::execute(
        Revoke,
        DIRECTORY_ROLE,
        "DELETE /roleManagement/directory/roleAssignments/{id}",
        ROLE_WRITE,
    ),
    PermissionNeed::rollback(Revoke, DIRECTORY_ROLE, "POST /roleManagement/directory/roleAssignments", ROLE_WRITE),
    PermissionNeed::read(APP_ROLE_ASSIGNMENT, "GET /users/{id}/appRoleAssignments", "Directory.Read.All")
        .or(&[APP_ROLE_WRITE, "Directory.ReadWrite.All"]),
    PermissionNeed::execute(
        Revoke,
        APP_ROLE_ASSIGNMENT,
        "DELETE /servicePrincipals/{id}/appRoleAssignedTo/{id}",
        APP_ROLE_WRITE,
    ),
    PermissionNeed::rollback(
        Revoke,
        APP_ROLE_ASSIGNMENT,
        "POST /servicePrincipals/{id}/appRoleAssignedTo",
        APP_ROLE_WRITE,
    ),
];

const USER_READ: &str = "User.Read.All";
const USER_READ_BROADER: &[&str] = &["User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
const MEMBER_READ: &str = "GroupMember.Read.All";
const MEMBER_READ_BROADER: &[&str] = &[
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const MEMBER_WRITE: &str = "GroupMember.ReadWrite.All";
const MEMBER_WRITE_BROADER: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
const ROLE_WRITE: &str = "RoleManagement.ReadWrite.Directory";
const APP_ROLE_WRITE: &str = "AppRoleAssignment.ReadWrite.All";

/// Judges [`PERMISSION_MAP`] against an access token: a readable JWT's `roles` claim names
/// what was granted; any other token is unknown, never granted.
pub(crate) fn judge(token: &str) -> Permissions {
    match roles(token) {
        Some(roles) => Permissions::held(PERMISSION_MAP, &roles),
        None => Permissions::unknown(
            PERMISSION_MAP,
            "the access token is not a readable JWT, so the application permissions it carries cannot be read",
        ),
    }
}

/// The `roles` claim of an access token, or `None` when the token is not a readable JWT.
/// The signature is not checked: Graph does that; this only reads what was granted.
fn roles(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn token(claims: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", enc(r#"{"alg":"RS256","typ":"JWT"}"#), enc(claims))
    }

    #[test]
    fn roles_are_read_from_the_payload() {
        let t = token(r#"{"aud":"https://graph.microsoft.com","roles":["User.Read.All","GroupMember.ReadWrite.All"]}"#);
        assert_eq!(roles(&t).unwrap(), vec!["User.Read.All", "GroupMember.ReadWrite.All"]);
        assert_eq!(roles(&token(r#"{"aud":"x"}"#)).unwrap(), Vec::<String>::new());
        assert!(roles("opaque-token").is_none());
    }

    #[test]
    fn a_token_lacking_directory_read_all_is_missing_it() {
        let t = token(
            r#"{"roles":["User.Read.All","User.EnableDisableAccount.All","User.RevokeSessions.All","GroupMember.ReadWrite.All","RoleManagement.ReadWrite.Directory","AppRoleAssignment.ReadWrite.All"]}"#,
        );
        let p = judge(&t);
        assert_eq!(p.missing, ["Directory.Read.All"], "{p:?}");
        assert!(p.unknown.is_empty());
        assert!(p.granted.contains(&"RoleManagement.Read.Directory".to_owned()), "broader roles count: {p:?}");
    }

    #[test]
    fn an_opaque_token_is_unknown_not_ok() {
        let p = judge("opaque-token");
        assert!(p.granted.is_empty() && p.missing.is_empty(), "{p:?}");
        assert!(p.unknown.contains(&"Directory.Read.All".to_owned()), "{p:?}");
        assert!(p.unknown_reason.is_some());
        assert!(!p.all_granted());
    }

    #[test]
    fn the_write_permissions_and_directory_read_all_grant_everything() {
        let all = [
            "User.Read.All",
            "Directory.Read.All",
            "User.EnableDisableAccount.All",
            "User.RevokeSessions.All",
            "GroupMember.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
            "AppRoleAssignment.ReadWrite.All",
        ];
        assert!(judge(&token(&serde_json::json!({ "roles": all }).to_string())).all_granted());
        assert!(judge(&token(r#"{"roles":["Directory.ReadWrite.All","RoleManagement.ReadWrite.Directory","AppRoleAssignment.ReadWrite.All"]}"#)).all_granted());
    }
}
