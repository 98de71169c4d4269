//! The requests this connector sends, built as plain values, and the seam to the HTTP client.
//!
//! Everything here is pure: building a request performs no I/O, so the exact method, path,
//! query and body of every call are unit-tested and compared with the golden fixtures.

use remediation_connector_http::{ApiPath, Method, RequestSpec};
use serde_json::{Value, json};

/// A Directory API call as a plain value, relative to the configured API base URL. A POST to
/// `signOut` and a PATCH setting absolute values change nothing when repeated, so their
/// builders mark them idempotent and they are retried.
pub(crate) type ApiRequest = RequestSpec;

/// A response as the connector sees it: status, JSON body (`null` when empty), request id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiResponse {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The parsed body; `Value::Null` for an empty one.
    pub(crate) body: Value,
    /// The provider's request id, when it sent one.
    pub(crate) request_id: Option<String>,
}

impl ApiResponse {
    /// True for a 2xx status.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `users.get` with the full projection (`suspended`, `changePasswordAtNextLogin`, `isAdmin`).
pub(crate) fn get_user(user: &str) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/users/{}", [user])).query("projection", "full")
}

/// `users.patch` with a partial user resource.
pub(crate) fn patch_user(user: &str, body: Value) -> ApiRequest {
    RequestSpec::new(Method::PATCH, ApiPath::new("/users/{}", [user])).body(body).idempotent()
}

/// `users.signOut`: ends every web and device session; the body must be empty.
pub(crate) fn sign_out(user: &str) -> ApiRequest {
    RequestSpec::new(Method::POST, ApiPath::new("/users/{}/signOut", [user])).idempotent()
}

/// `groups.get`.
pub(crate) fn get_group(group: &str) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/groups/{}", [group]))
}

/// `members.get`.
pub(crate) fn get_member(group: &str, member: &str) -> ApiRequest {
    RequestSpec::new(Method::GET, ApiPath::new("/groups/{}/members/{}", [group, member]))
}

/// `members.delete`.
pub(crate) fn delete_member(group: &str, member: &str) -> ApiRequest {
    RequestSpec::new(Method::DELETE, ApiPath::new("/groups/{}/members/{}", [group, member]))
}

/// `members.insert` with the role and delivery settings the member had.
pub(crate) fn insert_member(group: &str, email: &str, role: &str, delivery: Option<&str>) -> ApiRequest {
    let mut body = json!({"email": email, "role": role});
    if let (Some(d), Some(map)) = (delivery, body.as_object_mut()) {
        map.insert("delivery_settings".to_owned(), Value::String(d.to_owned()));
    }
    RequestSpec::new(Method::POST, ApiPath::new("/groups/{}/members", [group])).body(body)
}

/// `members.patch`: restores role and delivery settings of a member that is still there.
pub(crate) fn patch_member(group: &str, member: &str, role: &str, delivery: Option<&str>) -> ApiRequest {
    let mut body = json!({"role": role});
    if let (Some(d), Some(map)) = (delivery, body.as_object_mut()) {
        map.insert("delivery_settings".to_owned(), Value::String(d.to_owned()));
    }
    RequestSpec::new(Method::PATCH, ApiPath::new("/groups/{}/members/{}", [group, member])).body(body).idempotent()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(req: ApiRequest, method: Method, path: &str, query: &[(&str, &str)], body: Option<Value>) {
        assert_eq!(req.method, method);
        assert_eq!(req.path, path);
        let q: Vec<(&str, &str)> = req.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(q, query);
        assert_eq!(req.body, body);
    }

    #[test]
    fn requests_match_the_reference() {
        check(get_user("alice@example.com"), Method::GET, "/users/alice@example.com", &[("projection", "full")], None);
        check(
            patch_user("alice@example.com", json!({"suspended": true})),
            Method::PATCH,
            "/users/alice@example.com",
            &[],
            Some(json!({"suspended": true})),
        );
        check(sign_out("alice@example.com"), Method::POST, "/users/alice@example.com/signOut", &[], None);
        check(
            get_member("eng@example.com", "alice@example.com"),
            Method::GET,
            "/groups/eng@example.com/members/alice@example.com",
            &[],
            None,
        );
        check(
            delete_member("eng@example.com", "alice@example.com"),
            Method::DELETE,
            "/groups/eng@example.com/members/alice@example.com",
            &[],
            None,
        );
        check(
            insert_member("eng@example.com", "alice@example.com", "MANAGER", Some("DIGEST")),
            Method::POST,
            "/groups/eng@example.com/members",
            &[],
            Some(json!({"email": "alice@example.com", "role": "MANAGER", "delivery_settings": "DIGEST"})),
        );
        check(
            insert_member("eng@example.com", "alice@example.com", "MEMBER", None),
            Method::POST,
            "/groups/eng@example.com/members",
            &[],
            Some(json!({"email": "alice@example.com", "role": "MEMBER"})),
        );
    }

    #[test]
    fn identifiers_cannot_change_the_path() {
        check(get_user("x/groups?y"), Method::GET, "/users/x%2Fgroups%3Fy", &[("projection", "full")], None);
        // Dot segments are refused rather than encoded: `%2E%2E` is normalised back to `..`.
        assert!(get_user("../groups/x").path.error().is_some());
        assert!(delete_member("eng@example.com", "..").path.error().is_some());
    }
}
