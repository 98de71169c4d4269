//! The requests this connector sends, built as plain values, and the seam to the HTTP client.
//!
//! Everything here is pure: building a request performs no I/O, so the exact method, path,
//! query and body of every call are unit-tested and compared with the golden fixtures.

use std::fmt;

use remediation_connector_http::{Method, Request, segment};
use serde_json::{Value, json};

/// An HTTP method the connector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        })
    }
}

/// One Directory API request, relative to the configured API base URL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiRequest {
    /// The method.
    pub(crate) verb: Verb,
    /// The path below the API base, starting with `/`, each segment percent-encoded.
    pub(crate) path: String,
    /// Query parameters, in order.
    pub(crate) query: Vec<(&'static str, String)>,
    /// The JSON body, if any.
    pub(crate) body: Option<Value>,
}

impl ApiRequest {
    fn new(verb: Verb, path: String) -> Self {
        Self { verb, path, query: Vec::new(), body: None }
    }

    fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The shared client's request. A POST to `signOut` and a PATCH setting absolute values
    /// change nothing when repeated, so they are marked idempotent and retried.
    pub(crate) fn into_request(self) -> Request {
        let method = match self.verb {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        };
        let repeatable = matches!(self.verb, Verb::Patch) || self.path.ends_with("/signOut");
        let mut req = Request::new(method, self.path);
        for (k, v) in self.query {
            req = req.query(k, v);
        }
        if let Some(body) = self.body {
            req = req.json(body);
        }
        if repeatable { req.idempotent() } else { req }
    }
}

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
    ApiRequest::new(Verb::Get, format!("/users/{}", segment(user))).query("projection", "full")
}

/// `users.patch` with a partial user resource.
pub(crate) fn patch_user(user: &str, body: Value) -> ApiRequest {
    ApiRequest::new(Verb::Patch, format!("/users/{}", segment(user))).body(body)
}

/// `users.signOut`: ends every web and device session; the body must be empty.
pub(crate) fn sign_out(user: &str) -> ApiRequest {
    ApiRequest::new(Verb::Post, format!("/users/{}/signOut", segment(user)))
}

/// `groups.get`.
pub(crate) fn get_group(group: &str) -> ApiRequest {
    ApiRequest::new(Verb::Get, format!("/groups/{}", segment(group)))
}

/// `members.get`.
pub(crate) fn get_member(group: &str, member: &str) -> ApiRequest {
    ApiRequest::new(Verb::Get, format!("/groups/{}/members/{}", segment(group), segment(member)))
}

/// `members.delete`.
pub(crate) fn delete_member(group: &str, member: &str) -> ApiRequest {
    ApiRequest::new(Verb::Delete, format!("/groups/{}/members/{}", segment(group), segment(member)))
}

/// `members.insert` with the role and delivery settings the member had.
pub(crate) fn insert_member(group: &str, email: &str, role: &str, delivery: Option<&str>) -> ApiRequest {
    let mut body = json!({"email": email, "role": role});
    if let (Some(d), Some(map)) = (delivery, body.as_object_mut()) {
        map.insert("delivery_settings".to_owned(), Value::String(d.to_owned()));
    }
    ApiRequest::new(Verb::Post, format!("/groups/{}/members", segment(group))).body(body)
}

/// `members.patch`: restores role and delivery settings of a member that is still there.
pub(crate) fn patch_member(group: &str, member: &str, role: &str, delivery: Option<&str>) -> ApiRequest {
    let mut body = json!({"role": role});
    if let (Some(d), Some(map)) = (delivery, body.as_object_mut()) {
        map.insert("delivery_settings".to_owned(), Value::String(d.to_owned()));
    }
    ApiRequest::new(Verb::Patch, format!("/groups/{}/members/{}", segment(group), segment(member))).body(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(req: ApiRequest, verb: Verb, path: &str, query: &[(&str, &str)], body: Option<Value>) {
        assert_eq!(req.verb, verb);
        assert_eq!(req.path, path);
        let q: Vec<(&str, &str)> = req.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(q, query);
        assert_eq!(req.body, body);
    }

    #[test]
    fn requests_match_the_reference() {
        check(get_user("alice@example.com"), Verb::Get, "/users/alice@example.com", &[("projection", "full")], None);
        check(
            patch_user("alice@example.com", json!({"suspended": true})),
            Verb::Patch,
            "/users/alice@example.com",
            &[],
            Some(json!({"suspended": true})),
        );
        check(sign_out("alice@example.com"), Verb::Post, "/users/alice@example.com/signOut", &[], None);
        check(
            get_member("eng@example.com", "alice@example.com"),
            Verb::Get,
            "/groups/eng@example.com/members/alice@example.com",
            &[],
            None,
        );
        check(
            delete_member("eng@example.com", "alice@example.com"),
            Verb::Delete,
            "/groups/eng@example.com/members/alice@example.com",
            &[],
            None,
        );
        check(
            insert_member("eng@example.com", "alice@example.com", "MANAGER", Some("DIGEST")),
            Verb::Post,
            "/groups/eng@example.com/members",
            &[],
            Some(json!({"email": "alice@example.com", "role": "MANAGER", "delivery_settings": "DIGEST"})),
        );
        check(
            insert_member("eng@example.com", "alice@example.com", "MEMBER", None),
            Verb::Post,
            "/groups/eng@example.com/members",
            &[],
            Some(json!({"email": "alice@example.com", "role": "MEMBER"})),
        );
    }

    #[test]
    fn identifiers_cannot_change_the_path() {
        check(get_user("../groups/x"), Verb::Get, "/users/..%2Fgroups%2Fx", &[("projection", "full")], None);
    }
}
