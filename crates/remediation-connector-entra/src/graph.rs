//! Microsoft Graph v1.0 wire formats: the paths, queries and bodies this connector sends, and
//! the response shapes it reads. Pure: no I/O, so every request is testable on its own.

use remediation_connector_http::ApiPath;
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest page Graph serves for directory objects.
pub(crate) const PAGE_SIZE: &str = "999";

/// The user properties a snapshot reads (`accountEnabled` is returned only when selected).
pub(crate) const USER_SELECT: &str =
    "id,userPrincipalName,accountEnabled,signInSessionsValidFromDateTime,onPremisesSyncEnabled";

/// `GET /users/{id}` with the properties a snapshot needs.
pub(crate) fn user(id: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/users/{}", [id]), vec![("$select", USER_SELECT.to_owned())])
}

/// The user properties finding an account reads.
pub(crate) const LOOKUP_SELECT: &str = "id,userPrincipalName,accountEnabled,displayName";

/// `GET /users/{id | userPrincipalName}` with the properties finding an account needs.
pub(crate) fn user_lookup(key: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/users/{}", [key]), vec![("$select", LOOKUP_SELECT.to_owned())])
}

/// `GET /users/{id}/memberOf`, first page: the groups, directory roles and administrative
/// units the user is a direct member of, by id and type.
pub(crate) fn member_of(id: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/users/{}/memberOf", [id]), vec![("$select", "id".to_owned()), ("$top", PAGE_SIZE.to_owned())])
}

/// A user as `GET /users/{id}` returns it with [`LOOKUP_SELECT`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookedUpUser {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) account_enabled: Option<bool>,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
}

/// `PATCH /users/{id}` body.
pub(crate) fn account_enabled(enabled: bool) -> Value {
    json!({ "accountEnabled": enabled })
}

/// `POST /users/{id}/revokeSignInSessions` (no body).
pub(crate) fn revoke_sessions(id: &str) -> ApiPath {
    ApiPath::new("/users/{}/revokeSignInSessions", [id])
}

/// `GET /directoryObjects/{id}`: whether a principal of any type exists.
pub(crate) fn directory_object(id: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/directoryObjects/{}", [id]), vec![("$select", "id".to_owned())])
}

/// `GET /groups/{id}` with what decides whether members can be edited.
pub(crate) fn group(id: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/groups/{}", [id]), vec![("$select", "id,displayName,groupTypes".to_owned())])
}

/// `GET /groups/{id}/members`, first page.
pub(crate) fn group_members(id: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/groups/{}/members", [id]), vec![("$select", "id".to_owned()), ("$top", PAGE_SIZE.to_owned())])
}

/// `DELETE /groups/{gid}/members/{uid}/$ref`.
pub(crate) fn remove_member(group: &str, user: &str) -> ApiPath {
    ApiPath::new("/groups/{}/members/{}/$ref", [group, user])
}

/// `POST /groups/{gid}/members/$ref` and its body, which names the member by its URL under
/// the configured Graph base (so sovereign clouds name their own host).
pub(crate) fn add_member(graph_base: &str, group: &str, user: &str) -> (ApiPath, Value) {
    (
        ApiPath::new("/groups/{}/members/$ref", [group]),
        json!({ "@odata.id": format!("{}/directoryObjects/{user}", graph_base.trim_end_matches('/')) }),
    )
}

/// `GET /roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'`.
pub(crate) fn role_assignments(principal: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (
        ApiPath::fixed("/roleManagement/directory/roleAssignments"),
        vec![("$filter", format!("principalId eq '{principal}'")), ("$top", PAGE_SIZE.to_owned())],
    )
}

/// `GET /roleManagement/directory/roleAssignmentScheduleInstances?$filter=principalId eq '{id}'`:
/// the active assignments with their start and end, which tell a time-bound assignment (PIM
/// or expiring) from a permanent one. Microsoft Graph v1.0, "List
/// roleAssignmentScheduleInstances"; `RoleManagement.Read.Directory` or broader.
pub(crate) fn role_assignment_schedule_instances(principal: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (
        ApiPath::fixed("/roleManagement/directory/roleAssignmentScheduleInstances"),
        vec![("$filter", format!("principalId eq '{principal}'"))],
    )
}

/// `DELETE /roleManagement/directory/roleAssignments/{id}`.
pub(crate) fn role_assignment(id: &str) -> ApiPath {
    ApiPath::new("/roleManagement/directory/roleAssignments/{}", [id])
}

/// `POST /roleManagement/directory/roleAssignments` body.
pub(crate) fn new_role_assignment(principal: &str, role: &str, scope: &str) -> (ApiPath, Value) {
    (
        ApiPath::fixed("/roleManagement/directory/roleAssignments"),
        json!({
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
            "roleDefinitionId": role,
            "principalId": principal,
            "directoryScopeId": scope,
        }),
    )
}

/// `GET /users/{id}/appRoleAssignments?$filter=resourceId eq {guid}`.
///
/// Without `$top`: with both `$filter` and `$top` Graph may answer a single page of at most
/// `$top` items and no `@odata.nextLink`, which would read as a complete listing. Without it
/// Graph pages by its default size and links every next page.
pub(crate) fn app_role_assignments(principal: &str, resource: &str) -> (ApiPath, Vec<(&'static str, String)>) {
    (ApiPath::new("/users/{}/appRoleAssignments", [principal]), vec![("$filter", format!("resourceId eq {resource}"))])
}

/// `DELETE /servicePrincipals/{resource}/appRoleAssignedTo/{id}`.
pub(crate) fn app_role_assigned_to(resource: &str, id: &str) -> ApiPath {
    ApiPath::new("/servicePrincipals/{}/appRoleAssignedTo/{}", [resource, id])
}

/// `POST /servicePrincipals/{resource}/appRoleAssignedTo` body.
pub(crate) fn new_app_role_assignment(principal: &str, resource: &str, app_role: &str) -> (ApiPath, Value) {
    (
        ApiPath::new("/servicePrincipals/{}/appRoleAssignedTo", [resource]),
        json!({ "principalId": principal, "resourceId": resource, "appRoleId": app_role }),
    )
}

/// A user as `GET /users/{id}` returns it with [`USER_SELECT`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) account_enabled: Option<bool>,
    #[serde(default)]
    pub(crate) sign_in_sessions_valid_from_date_time: Option<String>,
    #[serde(default)]
    pub(crate) on_premises_sync_enabled: Option<bool>,
}

/// A group, with what decides whether its members can be edited.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    /// The group's object id, when Graph returned it.
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) group_types: Vec<String>,
}

impl Group {
    /// Whether membership follows a rule.
    pub(crate) fn dynamic(&self) -> bool {
        self.group_types.iter().any(|t| t.eq_ignore_ascii_case("DynamicMembership"))
    }
}

/// A `unifiedRoleAssignment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleAssignment {
    pub(crate) id: String,
    pub(crate) role_definition_id: String,
    #[serde(default)]
    pub(crate) principal_id: String,
    #[serde(default = "tenant_scope")]
    pub(crate) directory_scope_id: String,
}

fn tenant_scope() -> String {
    crate::state::TENANT_SCOPE.to_owned()
}

/// A `unifiedRoleAssignmentScheduleInstance`: an active assignment and when it ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleAssignmentScheduleInstance {
    #[serde(default)]
    pub(crate) role_definition_id: String,
    #[serde(default)]
    pub(crate) principal_id: String,
    #[serde(default = "tenant_scope")]
    pub(crate) directory_scope_id: String,
    /// `null` for a permanent assignment.
    #[serde(default)]
    pub(crate) end_date_time: Option<String>,
}

/// An `appRoleAssignment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppRoleAssignment {
    pub(crate) id: String,
    pub(crate) app_role_id: String,
    pub(crate) resource_id: String,
    #[serde(default)]
    pub(crate) principal_id: String,
}

/// A Graph error body: `{"error": {"code", "message", "innerError": {"request-id", "date"}}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// The `error` member of [`ErrorBody`].
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default, rename = "innerError")]
    pub(crate) inner_error: Option<InnerError>,
}

/// The `innerError` member, which carries the request id.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InnerError {
    #[serde(default, rename = "request-id")]
    pub(crate) request_id: Option<String>,
}

/// Parses a Graph error body into "code: message" and the request id it names.
pub(crate) fn parse_error(body: &[u8]) -> Option<(String, Option<String>)> {
    let e: ErrorBody = serde_json::from_slice(body).ok()?;
    let text = match (e.error.code.is_empty(), e.error.message.is_empty()) {
        (false, false) => format!("{}: {}", e.error.code, e.error.message),
        (false, true) => e.error.code,
        (true, _) => e.error.message,
    };
    Some((text, e.error.inner_error.and_then(|i| i.request_id)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn error_bodies_keep_code_message_and_request_id() {
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist.",
            "innerError":{"date":"2026-01-01T00:00:00","request-id":"r-1","client-request-id":"r-1"}}}"#;
        let (msg, id) = parse_error(body).unwrap();
        assert_eq!(msg, "Request_ResourceNotFound: Resource 'x' does not exist.");
        assert_eq!(id.as_deref(), Some("r-1"));
        assert!(parse_error(b"<html>").is_none());
    }

    #[test]
    fn add_member_names_the_member_under_the_configured_base() {
        let (path, body) = add_member("https://graph.microsoft.us/v1.0/", "g", "u");
        assert_eq!(path, "/groups/g/members/$ref");
        assert_eq!(body, json!({"@odata.id": "https://graph.microsoft.us/v1.0/directoryObjects/u"}));
    }

    #[test]
    fn dynamic_groups_are_recognised() {
        let g: Group = serde_json::from_value(json!({"groupTypes": ["Unified", "DynamicMembership"]})).unwrap();
        assert!(g.dynamic());
        let g: Group = serde_json::from_value(json!({"groupTypes": []})).unwrap();
        assert!(!g.dynamic());
    }
}
