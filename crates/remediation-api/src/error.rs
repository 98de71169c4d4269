//! The one error shape of the API, `{"error":{"code","message","details"}}`, and how engine
//! errors, body and query rejections and axum's own responses map onto it.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use remediation_core::{ConnectorErrorKind, EngineError, StoreError, TransitionError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable machine-readable code: `invalid_request`, `no_connector` (400: the request
    /// names no connector and no single healthy one fits; `details.candidates` says why each
    /// was passed over), `unauthenticated`, `forbidden`,
    /// `not_found`, `conflict`, `invalid_target` (422: the provider cannot act on the target as
    /// given), `payload_too_large`, `unsupported_media_type`, `uri_too_long`,
    /// `method_not_allowed`, `request_timeout`, `rate_limited`, `provider_failure` (502: the
    /// provider failed, never the caller's mistake), `internal`.
    pub code: String,
    /// What went wrong and what to do, in plain words.
    pub message: String,
    /// Structured context: the offending `field`, the action's `current_state`, ...
    pub details: Value,
}

/// An error response of the API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (see [`ErrorDetail::code`]).
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// Structured details (`{}` when none).
    pub details: Value,
}

impl ApiError {
    /// An error with empty details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: json!({}) }
    }

    /// Replaces the details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 naming the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message).with_details(json!({"field": field}))
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 429: `principal` made too many calls; `Retry-After` says when to try again.
    pub fn rate_limited(principal: &str, retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{principal} made too many requests; retry after {retry_after_secs} s"),
        )
        .with_details(json!({"retry_after_secs": retry_after_secs}))
    }

    /// 500 with a generic message; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %chain(cause), "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }

    /// The body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.details.get("retry_after_secs").and_then(Value::as_u64)
            && self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

/// The error and its sources, joined with `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = chain(&e);
        match &e {
            EngineError::NotFound(id) | EngineError::Store(StoreError::NotFound(id)) => {
                Self::not_found(message).with_details(json!({"action_id": id}))
            }
            EngineError::UnknownConnector { name, .. } => {
                Self::invalid("connector", message).with_details(json!({"field": "connector", "connector": name}))
            }
            EngineError::Unsupported { .. } => Self::invalid("kind", message),
            EngineError::Refused { rule, .. } => match rule.as_str() {
                "roles" | "separation of duties" | "enablement" => {
                    Self::forbidden(message).with_details(json!({"rule": rule}))
                }
                "audit" | "override" => {
                    Self::invalid("reason", message).with_details(json!({"field": "reason", "rule": rule}))
                }
                "validation" => Self::invalid("target", message).with_details(json!({"field": "target", "rule": rule})),
                _ => Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"rule": rule})),
            },
            EngineError::Transition(TransitionError::Illegal { state, .. }) => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"current_state": state}))
            }
            EngineError::Transition(TransitionError::RoleNotAllowed { state, role, .. }) => {
                Self::forbidden(message).with_details(json!({"current_state": state, "role": role}))
            }
            EngineError::Store(StoreError::StateConflict { actual, .. }) => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"current_state": actual}))
            }
            // Another worker took the action over: this one wrote nothing further.
            EngineError::Store(StoreError::LeaseLost { .. } | StoreError::StaleLease { .. }) => {
                Self::new(StatusCode::CONFLICT, "conflict", message)
            }
            EngineError::Store(StoreError::CampaignConflict { .. }) => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"rule": "campaign"}))
            }
            EngineError::Store(StoreError::ConnectionConflict { .. } | StoreError::ConnectionChanged { .. }) => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"rule": "connection"}))
            }
            EngineError::Store(StoreError::ConnectionNotFound(id)) => {
                Self::not_found(message).with_details(json!({"connection": id}))
            }
            EngineError::Store(StoreError::CampaignNotFound(name)) => {
                Self::not_found(message).with_details(json!({"campaign": name}))
            }
            EngineError::Store(StoreError::TenantConflict(name)) => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"tenant": name}))
            }
            EngineError::Connector { connector, source, .. } => match source.kind {
                // The caller named something the provider does not have, or a target the
                // provider cannot act on as given: the caller's mistake, never the provider's.
                ConnectorErrorKind::NotFound => {
                    Self::not_found(message).with_details(json!({"field": "target", "connector": connector}))
                }
                ConnectorErrorKind::InvalidTarget | ConnectorErrorKind::Unsupported => {
                    Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_target", message)
                        .with_details(json!({"field": "target", "connector": connector}))
                }
                _ => Self::new(StatusCode::BAD_GATEWAY, "provider_failure", message)
                    .with_details(json!({"connector": connector})),
            },
            _ => Self::internal(&e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<remediation_runtime::access::AccessError> for ApiError {
    fn from(e: remediation_runtime::access::AccessError) -> Self {
        use remediation_runtime::access::AccessError as A;
        let message = chain(&e);
        match e {
            A::NotAdmin { role, .. } => {
                Self::forbidden(message).with_details(json!({"required_role": "admin", "role": role}))
            }
            A::SameAdmin { .. } => Self::forbidden(message).with_details(json!({"rule": "two admins"})),
            A::NotFound(_) => Self::not_found(message),
            A::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            A::NotEarned { control, min_successes, min_days, .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({
                    "rule": "earned_auto",
                    "control": control,
                    "min_successes": min_successes,
                    "min_days": min_days,
                }))
            }
            A::Invalid { field, .. } => Self::invalid(field, message),
            A::Engine(e) => e.into(),
            A::Store(e) => e.into(),
            A::Runtime(e) => Self::internal(&e),
            other => Self::internal(&other),
        }
    }
}

/// The API side of the one mapping of use-case errors (table in `remediation_service`).
impl From<remediation_service::ServiceError> for ApiError {
    fn from(e: remediation_service::ServiceError) -> Self {
        use remediation_service::ServiceError as S;
        let message = chain(&e);
        match e {
            S::NoConnector { candidates, .. } => Self::new(StatusCode::BAD_REQUEST, "no_connector", message)
                .with_details(json!({"field": "connector", "candidates": candidates})),
            S::Invalid { field, .. } => Self::invalid(field, message),
            S::Engine(e) => e.into(),
            S::Access(e) => e.into(),
            S::Runtime(e) => e.into(),
            S::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            S::LogIntegrity { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", message).with_details(json!({"rule": "audit_log"}))
            }
            other => Self::internal(&other),
        }
    }
}

impl From<remediation_runtime::RuntimeError> for ApiError {
    fn from(e: remediation_runtime::RuntimeError) -> Self {
        match &e {
            remediation_runtime::RuntimeError::UnknownTenant { tenant } => {
                Self::not_found(e.to_string()).with_details(json!({"tenant": tenant}))
            }
            _ => Self::internal(&e),
        }
    }
}

/// The code for an error status that did not come from a handler (axum's own responses).
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    }
}

/// Middleware: any error response that is not already JSON (axum's 405, a body-limit 413, a
/// panic's 500, ...) is rewritten into the error shape, so clients see one shape everywhere.
pub(crate) async fn uniform_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "no such route; see /openapi.json".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route; see /openapi.json".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the server accepts".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut rewritten = ApiError::new(status, code_for(status), message).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = response.headers().get(&name) {
            rewritten.headers_mut().insert(name, v.clone());
        }
    }
    rewritten
}

/// The 404 for a route that does not exist.
pub(crate) async fn no_route() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json")
}

/// Middleware: a request whose URI (path and query) is longer than
/// [`MAX_URI_BYTES`](crate::routes::MAX_URI_BYTES) is answered 414 `uri_too_long` in the error
/// shape, before any route reads it.
pub(crate) async fn uri_limit(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > crate::routes::MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the URI is {len} bytes; the server reads at most {}", crate::routes::MAX_URI_BYTES),
        )
        .with_details(json!({"max_bytes": crate::routes::MAX_URI_BYTES}))
        .into_response();
    }
    next.run(request).await
}
