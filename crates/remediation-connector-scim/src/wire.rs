//! SCIM 2.0 wire formats (RFC 7643, RFC 7644): the paths, PATCH bodies and response shapes
//! this connector uses. Pure: no I/O.

use serde::Deserialize;
use serde_json::{Value, json};

/// The media type of every SCIM request and response body.
pub(crate) const SCIM_JSON: &str = "application/scim+json";
/// The PATCH request schema.
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The error response schema.
pub(crate) const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Attributes a user snapshot reads.
pub(crate) const USER_ATTRIBUTES: &str = "id,userName,active,meta";
/// Attributes read from a group: its members are listed separately, by filter.
pub(crate) const GROUP_ATTRIBUTES: &str = "id,displayName,meta";

/// A PatchOp body with one operation.
fn patch(op: Value) -> Value {
    json!({ "schemas": [PATCH_OP], "Operations": [op] })
}

/// `PATCH /Users/{id}` setting `active`.
pub(crate) fn set_active(active: bool) -> Value {
    patch(json!({ "op": "replace", "path": "active", "value": active }))
}

/// `PATCH /Groups/{id}` removing one member (RFC 7644 section 3.5.2.2, value filter).
pub(crate) fn remove_member(user: &str) -> Value {
    patch(json!({ "op": "remove", "path": format!("members[value eq \"{user}\"]") }))
}

/// `PATCH /Groups/{id}` adding one member back. The member is a user (targets name users), and
/// RFC 7643 section 4.2 labels such a member `"type": "User"`: without it the re-added member
/// would differ from the one removed.
pub(crate) fn add_member(user: &str) -> Value {
    patch(json!({ "op": "add", "path": "members", "value": [{ "value": user, "type": "User" }] }))
}

/// `meta` of a resource.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Meta {
    /// The resource's version; the same as its `ETag`.
    #[serde(default)]
    pub(crate) version: Option<String>,
}

/// A user resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) user_name: String,
    /// RFC 7643 leaves `active` optional; a service that omits it has no deactivated users.
    #[serde(default = "yes")]
    pub(crate) active: bool,
    #[serde(default)]
    pub(crate) meta: Meta,
}

fn yes() -> bool {
    true
}

/// A group resource, as far as a snapshot and a write need it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    /// The group's name, for plans a person reads; RFC 7643 requires it, some services omit it.
    #[serde(default)]
    pub(crate) display_name: String,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// What the service says it supports (`/ServiceProviderConfig`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceProviderConfig {
    #[serde(default)]
    pub(crate) patch: Supported,
    #[serde(default)]
    pub(crate) etag: Supported,
    #[serde(default)]
    pub(crate) filter: Supported,
}

/// `{"supported": bool}`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct Supported {
    #[serde(default)]
    pub(crate) supported: bool,
}

/// A SCIM error body. `status` is a string by the RFC; some services send a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) schemas: Vec<String>,
    #[serde(default)]
    pub(crate) status: Option<Value>,
    #[serde(default)]
    pub(crate) scim_type: Option<String>,
    #[serde(default)]
    pub(crate) detail: Option<String>,
}

/// Parses a SCIM error body into one message: `scimType: detail`.
pub(crate) fn parse_error(body: &[u8]) -> Option<String> {
    let e: ErrorBody = serde_json::from_slice(body).ok()?;
    if !e.schemas.iter().any(|s| s == ERROR_SCHEMA) && e.detail.is_none() && e.status.is_none() {
        return None;
    }
    let detail = e.detail.unwrap_or_default();
    Some(match e.scim_type {
        Some(t) if !t.is_empty() => format!("{t}: {detail}"),
        _ => detail,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn patch_bodies_follow_rfc_7644() {
        assert_eq!(
            remove_member("2819c223"),
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members[value eq \"2819c223\"]"}]})
        );
        assert_eq!(
            add_member("2819c223"),
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": "2819c223", "type": "User"}]}]})
        );
        assert_eq!(set_active(false)["Operations"][0], json!({"op": "replace", "path": "active", "value": false}));
    }

    #[test]
    fn error_bodies_keep_scim_type_and_detail() {
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"scimType":"mutability",
            "detail":"Attribute 'id' is readOnly","status":"400"}"#;
        assert_eq!(parse_error(body).unwrap(), "mutability: Attribute 'id' is readOnly");
        let numeric = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Resource 2819c223 not found","status":404}"#;
        assert_eq!(parse_error(numeric).unwrap(), "Resource 2819c223 not found");
        assert!(parse_error(b"not json").is_none());
    }

    #[test]
    fn users_without_active_are_active() {
        let u: User = serde_json::from_value(json!({"id": "1", "userName": "b"})).unwrap();
        assert!(u.active);
        assert!(u.meta.version.is_none());
    }
}
