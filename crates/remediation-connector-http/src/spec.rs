//! A request described as a plain value: the method, path, query and JSON body a connector
//! builds without I/O, so that unit tests and golden fixtures can compare them exactly, then
//! turned into a [`Request`] when it is sent.

use serde_json::Value;

use crate::{ApiPath, Method, Request};

/// One provider call as a comparable value.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// The path below the API base, built from a template by [`ApiPath::new`].
    pub path: ApiPath,
    /// Query parameters, in order.
    pub query: Vec<(&'static str, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Whether the call may be repeated after a transient failure (see [`Request::new`] for
    /// the default by method).
    pub idempotent: bool,
}

impl RequestSpec {
    /// `method path`, idempotent when the method is (GET, HEAD, PUT, DELETE, OPTIONS).
    pub fn new(method: Method, path: impl Into<ApiPath>) -> Self {
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS);
        Self { method, path: path.into(), query: Vec::new(), body: None, idempotent }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Sets the JSON body.
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Marks a POST or PATCH that changes nothing when repeated as safe to retry.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The shared client's request.
    pub fn into_request(self) -> Request {
        let mut req = Request::new(self.method, self.path);
        for (k, v) in self.query {
            req = req.query(k, v);
        }
        if let Some(body) = self.body {
            req = req.json(body);
        }
        if self.idempotent { req.idempotent() } else { req }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_follows_the_method_unless_marked() {
        assert!(RequestSpec::new(Method::PUT, "/a").idempotent);
        assert!(!RequestSpec::new(Method::POST, "/a").idempotent);
        assert!(RequestSpec::new(Method::PATCH, "/a").idempotent().idempotent);
    }
}
