//! Maps AWS IAM errors to [`ConnectorError`]s: the class decides what the engine does next,
//! and AWS's own code, message and request id are kept.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::RequestId;
use remediation_core::{ConnectorError, ConnectorErrorKind};

/// Classifies an IAM error by its code (`NoSuchEntity`, `Throttling`) and, when the code is
/// unknown or missing, by the HTTP status.
pub fn classify(code: Option<&str>, status: Option<u16>) -> ConnectorErrorKind {
    use ConnectorErrorKind::*;
    match code {
        Some("NoSuchEntity") => return NotFound,
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess") => {
            return Forbidden;
        }
        Some(
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "InvalidAccessKeyId"
            | "AuthFailure",
        ) => return Unauthenticated,
        Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException") => {
            return Throttled { retry_after: None };
        }
        Some(
            "ServiceFailure"
            | "ServiceUnavailable"
            | "ConcurrentModification"
            | "InternalFailure"
            | "InternalError"
            | "RequestTimeout",
        ) => return Transient,
        // The entity is being changed by IAM itself (a user being deleted): retrying at once
        // does not help, and the provider says not to.
        Some("EntityTemporarilyUnmodifiable" | "EntityAlreadyExists" | "DeleteConflict") => return Conflict,
        Some(
            "LimitExceeded"
            | "InvalidInput"
            | "ValidationError"
            | "PasswordPolicyViolation"
            | "PolicyNotAttachable"
            | "MalformedPolicyDocument"
            | "UnmodifiableEntity",
        ) => return Permanent,
        _ => {}
    }
    match status {
        Some(401) => Unauthenticated,
        Some(403) => Forbidden,
        Some(404) => NotFound,
        Some(409) => Conflict,
        Some(429) => Throttled { retry_after: None },
        Some(500..=599) => Transient,
        _ => Permanent,
    }
}

/// Whether a failure of this class is worth another attempt now.
pub(crate) fn retryable(kind: &ConnectorErrorKind) -> bool {
    matches!(kind, ConnectorErrorKind::Transient | ConnectorErrorKind::Throttled { .. })
}

/// Converts an SDK error from operation `op` (`GetUser`) into a [`ConnectorError`].
pub(crate) fn from_sdk<E>(op: &str, err: &SdkError<E, aws_sdk_iam::config::http::HttpResponse>) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let request_id = err.request_id().or_else(|| RequestId::request_id(err.meta())).map(str::to_owned);
    let built = match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = err.code();
            let kind = classify(code, Some(status));
            let message = match (code, err.message()) {
                (Some(c), Some(m)) => format!("IAM {op}: {c}: {m}"),
                (Some(c), None) => format!("IAM {op}: {c} (HTTP {status})"),
                (None, Some(m)) => format!("IAM {op}: HTTP {status}: {m}"),
                (None, None) => format!("IAM {op}: HTTP {status}"),
            };
            ConnectorError::new(kind, message)
        }
        SdkError::TimeoutError(_) => {
            ConnectorError::new(ConnectorErrorKind::Transient, format!("IAM {op}: the request timed out"))
        }
        SdkError::DispatchFailure(f) => {
            let what = if f.is_timeout() {
                "timed out"
            } else if f.is_io() {
                "could not reach the endpoint"
            } else {
                "could not be sent"
            };
            ConnectorError::new(ConnectorErrorKind::Transient, format!("IAM {op}: the request {what}: {}", chain(err)))
        }
        SdkError::ResponseError(_) => ConnectorError::new(
            ConnectorErrorKind::Transient,
            format!("IAM {op}: the response could not be read: {}", chain(err)),
        ),
        // Construction failures are ours (missing input, no credentials): retrying cannot help.
        _ => ConnectorError::permanent(format!("IAM {op}: the request could not be built: {}", chain(err))),
    };
    match request_id {
        Some(id) => built.with_request_id(id),
        None => built,
    }
}

/// The error's source chain, one line. SDK errors carry no credentials in their messages.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectorErrorKind::*;

    #[track_caller]
    fn check(code: Option<&str>, status: Option<u16>, expected: ConnectorErrorKind) {
        assert_eq!(classify(code, status), expected, "code {code:?}, status {status:?}");
    }

    #[test]
    fn codes_decide_the_class() {
        let throttled = Throttled { retry_after: None };
        let cases: &[(&str, u16, ConnectorErrorKind)] = &[
            ("NoSuchEntity", 404, NotFound),
            ("AccessDenied", 403, Forbidden),
            ("InvalidClientTokenId", 403, Unauthenticated),
            ("SignatureDoesNotMatch", 403, Unauthenticated),
            ("ExpiredToken", 403, Unauthenticated),
            ("Throttling", 400, throttled.clone()),
            ("ServiceFailure", 500, Transient),
            ("ServiceUnavailable", 503, Transient),
            ("ConcurrentModification", 409, Transient),
            ("LimitExceeded", 409, Permanent),
            ("EntityTemporarilyUnmodifiable", 409, Conflict),
            ("EntityAlreadyExists", 409, Conflict),
            ("InvalidInput", 400, Permanent),
            ("ValidationError", 400, Permanent),
        ];
        for (code, status, expected) in cases {
            check(Some(code), Some(*status), expected.clone());
        }
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status() {
        check(Some("SomethingNew"), Some(403), Forbidden);
        check(None, Some(401), Unauthenticated);
        check(None, Some(404), NotFound);
        check(None, Some(429), Throttled { retry_after: None });
        check(None, Some(502), Transient);
        check(Some("SomethingNew"), Some(400), Permanent);
        check(None, None, Permanent);
    }

    #[test]
    fn never_retried_codes_are_not_retryable() {
        for code in ["LimitExceeded", "NoSuchEntity", "EntityTemporarilyUnmodifiable", "AccessDenied"] {
            assert!(!retryable(&classify(Some(code), Some(409))), "{code} must not be retried");
        }
        for code in ["Throttling", "ServiceFailure", "ServiceUnavailable", "ConcurrentModification"] {
            assert!(retryable(&classify(Some(code), Some(500))), "{code} should be retried");
        }
    }
}
