//! Signed requests to S3, EC2, RDS, CloudFront, IAM, STS and Secrets Manager: SigV4 (`aws-sigv4`) over reqwest, bounded
//! retries of throttling and transient failures with an injectable sleeper, the signing time
//! from the injectable clock, and AWS's XML errors mapped onto [`ConnectorErrorKind`] with
//! the provider's code, message and request id.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use remediation_connector_http::Sleeper;
use remediation_core::{Clock, ConnectorError, ConnectorErrorKind};
use secrecy::ExposeSecret;

use crate::credentials::AwsCredentials;
use crate::xml::Element;

/// An AWS service the connector calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    S3,
    Ec2,
    Rds,
    CloudFront,
    Iam,
    Sts,
    SecretsManager,
}

impl Service {
    /// The SigV4 signing name.
    fn signing_name(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Ec2 => "ec2",
            Self::Rds => "rds",
            Self::CloudFront => "cloudfront",
            Self::Iam => "iam",
            Self::Sts => "sts",
            Self::SecretsManager => "secretsmanager",
        }
    }

    /// Whether the service is global, signed for `us-east-1` whatever the region.
    fn global(self) -> bool {
        matches!(self, Self::CloudFront | Self::Iam)
    }
}

/// One request, built from validated parts only. Its `Debug` leaves the body out: a
/// Secrets Manager request carries a credential.
#[derive(Clone)]
pub(crate) struct AwsRequest {
    pub(crate) op: &'static str,
    pub(crate) service: Service,
    pub(crate) method: reqwest::Method,
    pub(crate) url: url::Url,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl std::fmt::Debug for AwsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsRequest")
            .field("op", &self.op)
            .field("service", &self.service)
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .finish_non_exhaustive()
    }
}

/// A successful answer. Its `Debug` leaves the body out: `CreateAccessKey` answers with a
/// secret.
#[derive(Clone)]
pub(crate) struct AwsResponse {
    pub(crate) body: Vec<u8>,
    pub(crate) request_id: Option<String>,
}

impl std::fmt::Debug for AwsResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsResponse")
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl AwsResponse {
    /// The body as an XML tree.
    pub(crate) fn xml(&self) -> Result<Element, ConnectorError> {
        Element::parse(&self.body)
    }
}

/// A failed request: the mapped error and AWS's error code, when it sent one.
#[derive(Debug, Clone)]
pub(crate) struct AwsFailure {
    pub(crate) error: ConnectorError,
    pub(crate) code: Option<String>,
}

/// Sends signed requests. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) credentials: AwsCredentials,
    pub(crate) region: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sleeper: Arc<dyn Sleeper>,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
}

/// Largest answer read (4 MiB): far above any answer to the calls made here.
const MAX_BODY: usize = 4 * 1024 * 1024;

impl Transport {
    /// Sends `req`, retrying throttling and transient failures; a non-2xx answer is an error.
    pub(crate) async fn send(&self, req: &AwsRequest) -> Result<AwsResponse, ConnectorError> {
        self.send_or(req).await.map_err(|f| f.error)
    }

    /// As [`Transport::send`], keeping AWS's error code for callers that take some codes as
    /// answers (`NoSuchWebsiteConfiguration`: no website).
    pub(crate) async fn send_or(&self, req: &AwsRequest) -> Result<AwsResponse, AwsFailure> {
        self.send_signed_by(req, &self.credentials).await
    }

    /// As [`Transport::send_or`], signed with `credentials` instead of the connector's own (a
    /// new access key proving that it works).
    pub(crate) async fn send_signed_by(
        &self,
        req: &AwsRequest,
        credentials: &AwsCredentials,
    ) -> Result<AwsResponse, AwsFailure> {
        let mut attempt = 1;
        loop {
            match self.attempt(req, credentials).await {
                Ok(r) => return Ok(r),
                Err(f) => {
                    let retryable =
                        matches!(f.error.kind, ConnectorErrorKind::Throttled { .. } | ConnectorErrorKind::Transient);
                    if !retryable || attempt >= self.attempts {
                        return Err(f);
                    }
                    let wait = match f.error.kind {
                        ConnectorErrorKind::Throttled { retry_after: Some(d) } => d,
                        _ => self.backoff.saturating_mul(1 << (attempt - 1).min(10)),
                    };
                    tracing::debug!(op = req.op, attempt, ?wait, code = ?f.code, "AWS request retried");
                    self.sleeper.sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The SigV4 headers for `req`, signed at the clock's time.
    fn signature(
        &self,
        req: &AwsRequest,
        credentials: &AwsCredentials,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        let failed = |what: &str| ConnectorError::permanent(format!("{}: cannot sign the request: {what}", req.op));
        let creds = aws_credential_types::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.expose_secret().to_owned(),
            credentials.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
            None,
            "remediation-config",
        );
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        if req.service == Service::S3 {
            // S3 signs the path as sent and wants the payload hash in `x-amz-content-sha256`.
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let region = if req.service.global() { "us-east-1" } else { self.region.as_str() };
        let now: SystemTime = self.clock.now().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(req.service.signing_name())
            .time(now)
            .settings(settings)
            .build()
            .map_err(|_| failed("incomplete signing parameters"))?
            .into();
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let signable = SignableRequest::new(
            req.method.as_str(),
            req.url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&req.body),
        )
        .map_err(|_| failed("the URL cannot be signed"))?;
        // The signer traces the canonical request, session token included: keep it quiet.
        let output =
            tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || sign(signable, &params))
                .map_err(|_| failed("signing failed"))?;
        let (instructions, _signature) = output.into_parts();
        let (headers, _params) = instructions.into_parts();
        Ok(headers.into_iter().map(|h| (h.name().to_owned(), h.value().to_owned())).collect())
    }

    async fn attempt(&self, req: &AwsRequest, credentials: &AwsCredentials) -> Result<AwsResponse, AwsFailure> {
        let plain = |error: ConnectorError| AwsFailure { error, code: None };
        let mut builder = self.http.request(req.method.clone(), req.url.clone());
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        for (k, v) in self.signature(req, credentials).map_err(plain)? {
            builder = builder.header(k, v);
        }
        let response = builder.body(req.body.clone()).send().await.map_err(|e| {
            let what = if e.is_timeout() { "timed out" } else { "could not be sent" };
            plain(ConnectorError::new(ConnectorErrorKind::Transient, format!("{}: the request {what}", req.op)))
        })?;
        let status = response.status();
        let header_id = ["x-amz-request-id", "x-amzn-requestid"]
            .iter()
            .find_map(|h| response.headers().get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned));
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_limited(response, req.op).await.map_err(plain)?;
        let xml = if body.is_empty() { None } else { Element::parse(&body).ok() };
        let body_id = xml.as_ref().and_then(|x| {
            ["RequestId", "RequestID", "requestId"].iter().find_map(|n| x.find(n)).map(|e| e.text.trim().to_owned())
        });
        let request_id = header_id.or(body_id).filter(|s| !s.is_empty());
        if status.is_success() {
            return Ok(AwsResponse { body, request_id });
        }
        // The JSON protocols (Secrets Manager) answer `{"__type": "...#Code", "message": "..."}`.
        let json: Option<serde_json::Value> = if xml.is_none() { serde_json::from_slice(&body).ok() } else { None };
        let json_code = json.as_ref().and_then(|j| j["__type"].as_str()).map(|t| {
            let code = t.rsplit_once('#').map_or(t, |(_, c)| c);
            code.split(':').next().unwrap_or(code).trim().to_owned()
        });
        let json_message = json
            .as_ref()
            .and_then(|j| j["message"].as_str().or_else(|| j["Message"].as_str()))
            .map(|m| m.trim().to_owned());
        let code = xml.as_ref().and_then(|x| x.find("Code")).map(|c| c.text.trim().to_owned()).or(json_code);
        let message = xml.as_ref().and_then(|x| x.find("Message")).map(|m| m.text.trim().to_owned()).or(json_message);
        let kind = classify(status.as_u16(), code.as_deref(), retry_after);
        let text = match (&code, &message) {
            (Some(c), Some(m)) if !m.is_empty() => format!("{}: {c}: {m}", req.op),
            (Some(c), _) => format!("{}: {c} (HTTP {})", req.op, status.as_u16()),
            _ => format!("{}: HTTP {}", req.op, status.as_u16()),
        };
        let mut error = ConnectorError::new(kind, text);
        if let Some(id) = request_id {
            error = error.with_request_id(id);
        }
        Err(AwsFailure { error, code })
    }
}

async fn read_limited(mut response: reqwest::Response, op: &str) -> Result<Vec<u8>, ConnectorError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ConnectorError::permanent(format!("{op}: the answer is larger than {MAX_BODY} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(_) => {
                return Err(ConnectorError::new(
                    ConnectorErrorKind::Transient,
                    format!("{op}: the answer could not be read"),
                ));
            }
        }
    }
}

/// The class of an AWS error answer, from its HTTP status and error code.
///
/// Throttling codes (any service) are `Throttled`, keeping `Retry-After` when sent; access
/// codes `Forbidden`; signature and token codes `Unauthenticated`; the not-found codes of
/// the calls made here `NotFound`; a state that forbids the change now (`InvalidDBInstanceState`,
/// `OperationAborted`) `Conflict`; 5xx `Transient`; the rest by status.
pub fn classify(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> ConnectorErrorKind {
    const THROTTLING: [&str; 7] = [
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
    ];
    const FORBIDDEN: [&str; 4] =
        ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled"];
    const UNAUTHENTICATED: [&str; 7] = [
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "AuthFailure",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    ];
    const NOT_FOUND: [&str; 9] = [
        "NoSuchEntity",
        "ResourceNotFoundException",
        "NoSuchBucket",
        "InvalidGroup.NotFound",
        "InvalidGroupId.Malformed",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "NoSuchDistribution",
        "InvalidPermission.NotFound",
    ];
    const CONFLICT: [&str; 8] = [
        "InvalidDBInstanceState",
        "InvalidDBInstanceStateFault",
        "OperationAborted",
        "InvalidPermission.Duplicate",
        // IAM: the user already has two access keys.
        "LimitExceeded",
        "EntityTemporarilyUnmodifiable",
        // Secrets Manager: a secret of that name exists, or is scheduled for deletion.
        "ResourceExistsException",
        "InvalidRequestException",
    ];
    match code {
        Some(c) if THROTTLING.contains(&c) => ConnectorErrorKind::Throttled { retry_after },
        Some(c) if FORBIDDEN.contains(&c) => ConnectorErrorKind::Forbidden,
        Some(c) if UNAUTHENTICATED.contains(&c) => ConnectorErrorKind::Unauthenticated,
        Some(c) if NOT_FOUND.contains(&c) => ConnectorErrorKind::NotFound,
        Some(c) if CONFLICT.contains(&c) => ConnectorErrorKind::Conflict,
        Some("InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable") => {
            ConnectorErrorKind::Transient
        }
        _ => match status {
            429 => ConnectorErrorKind::Throttled { retry_after },
            401 => ConnectorErrorKind::Unauthenticated,
            403 => ConnectorErrorKind::Forbidden,
            404 => ConnectorErrorKind::NotFound,
            409 => ConnectorErrorKind::Conflict,
            500..=599 => ConnectorErrorKind::Transient,
            _ => ConnectorErrorKind::Permanent,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests stop at the unexpected
mod tests {
    use super::*;

    #[track_caller]
    fn check(status: u16, code: Option<&str>, expected: ConnectorErrorKind) {
        assert_eq!(classify(status, code, Some(Duration::from_secs(3))), expected, "{status} {code:?}");
    }

    #[test]
    fn error_codes() {
        use ConnectorErrorKind::*;
        let throttled = Throttled { retry_after: Some(Duration::from_secs(3)) };
        check(400, Some("Throttling"), throttled.clone());
        check(503, Some("SlowDown"), throttled.clone());
        check(503, Some("RequestLimitExceeded"), throttled);
        check(403, Some("AccessDenied"), Forbidden);
        check(403, Some("UnauthorizedOperation"), Forbidden);
        check(403, Some("SignatureDoesNotMatch"), Unauthenticated);
        check(404, Some("NoSuchBucket"), NotFound);
        check(400, Some("InvalidGroup.NotFound"), NotFound);
        check(404, Some("DBInstanceNotFound"), NotFound);
        check(400, Some("InvalidDBInstanceState"), Conflict);
        check(409, Some("OperationAborted"), Conflict);
        check(500, Some("InternalError"), Transient);
        check(502, None, Transient);
        check(400, Some("InvalidParameterValue"), Permanent);
        check(404, None, NotFound);
        check(404, Some("NoSuchEntity"), NotFound);
        check(400, Some("ResourceNotFoundException"), NotFound);
        check(409, Some("LimitExceeded"), Conflict);
        check(400, Some("InvalidRequestException"), Conflict);
        check(403, Some("InvalidClientTokenId"), Unauthenticated);
    }
}
