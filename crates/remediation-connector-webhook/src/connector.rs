//! The connector: checks each action against the declared capabilities, then sends it to the
//! receiver as one signed request through the shared HTTP client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_connector_http::{
    ApiPath, ErrorParser, HeaderName, HeaderValue, HttpClient, Method, ProviderError, RequestSigner, RetryPolicy,
    Sleeper, StatusCode, ThrottleSignal, TokioSleeper,
};
use remediation_core::{
    Action, Capability, Clock, Connector, ConnectorError, ConnectorErrorKind, Grant, Health, Outcome, OutcomeStatus,
    PermissionNeed, Permissions, PlannedChange, Reversibility, Snapshot, Step, SystemClock, Target, Verification,
};
use remediation_notify::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::protocol::{
    ErrorResponse, HealthResponse, Operation, PlanResponse, StateResponse, WebhookRequest, WireAction, WirePlan,
    WireState, WriteResponse, WriteStatus,
};
use crate::{WebhookConfig, WebhookError};

/// The header carrying a write's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// The suffix that makes a rollback's idempotency key: `<action key>:rollback`.
pub const ROLLBACK_KEY_SUFFIX: &str = ":rollback";

/// What a connector needs besides its configuration and secret; the defaults suit
/// production, tests inject a manual clock and a sleeper that does not sleep.
#[derive(Clone)]
pub struct WebhookOptions {
    /// The clock that timestamps signatures (default: the system clock).
    pub clock: Arc<dyn Clock>,
    /// What waits between attempts (default: the tokio timer).
    pub sleeper: Arc<dyn Sleeper>,
    /// Retries (default: 4 attempts, `Retry-After` honoured up to 120 s).
    pub retry: RetryPolicy,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            retry: RetryPolicy::new(ThrottleSignal::RetryAfter),
        }
    }
}

impl fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookOptions").field("sleeper", &self.sleeper).field("retry", &self.retry).finish()
    }
}

/// Signs every attempt: `X-Remediation-Timestamp` and `X-Remediation-Signature` over
/// `<timestamp>.<body>`, with [`remediation_notify::sign`].
struct HmacSigner {
    secret: SecretString,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for HmacSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSigner").field("secret", &"[redacted]").finish()
    }
}

impl RequestSigner for HmacSigner {
    fn sign(
        &self,
        _method: &Method,
        _url: &url::Url,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ConnectorError> {
        let timestamp = self.clock.now().unix_timestamp();
        let signature = sign(&self.secret, timestamp, body);
        let invalid = || ConnectorError::permanent("the request signature is not a valid header value");
        Ok(vec![
            (
                HeaderName::try_from(TIMESTAMP_HEADER).map_err(|_| invalid())?,
                HeaderValue::try_from(timestamp.to_string()).map_err(|_| invalid())?,
            ),
            (
                HeaderName::try_from(SIGNATURE_HEADER).map_err(|_| invalid())?,
                HeaderValue::try_from(signature).map_err(|_| invalid())?,
            ),
        ])
    }
}

/// Reads the protocol's error body: `{"error": {"kind", "message", "retry_after_secs"}}`.
/// The body's kind wins over the status; a body that does not parse keeps the status's class.
struct WireErrors;

impl ErrorParser for WireErrors {
    fn parse(&self, _status: StatusCode, body: &[u8]) -> Option<ProviderError> {
        let parsed: ErrorResponse = serde_json::from_slice(body).ok()?;
        let kind = parsed.error.kind.connector_kind(parsed.error.retry_after_secs);
        Some(ProviderError::message(parsed.error.message).with_kind(kind))
    }
}

/// A connector that forwards every action to your own service, signed. See the crate
/// documentation for the protocol.
pub struct WebhookConnector {
    id: String,
    url: String,
    client: HttpClient,
    capabilities: Vec<Capability>,
}

impl fmt::Debug for WebhookConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConnector")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("capabilities", &self.capabilities.len())
            .finish_non_exhaustive()
    }
}

impl WebhookConnector {
    /// Builds the connector from `config`, reading its secret from the named variable or
    /// file, with the default [`WebhookOptions`].
    pub fn from_config(config: &WebhookConfig) -> Result<Self, WebhookError> {
        let secret = config.load_secret()?;
        Self::new(config, secret, WebhookOptions::default())
    }

    /// Builds the connector from `config` with `secret` and `options`.
    pub fn new(config: &WebhookConfig, secret: SecretString, options: WebhookOptions) -> Result<Self, WebhookError> {
        let capabilities = config.capabilities()?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = HttpClient::builder(config.url.clone())
            .allow_insecure_http(config.allow_insecure_http)
            .retry(options.retry)
            .sleeper(options.sleeper)
            .clock(Arc::clone(&options.clock))
            .error_parser(Arc::new(WireErrors))
            .signer(Arc::new(HmacSigner { secret, clock: options.clock }))
            .request_timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .default_header("accept", "application/json")
            .build()
            .map_err(|source| WebhookError::Client { id: config.id.clone(), source })?;
        Ok(Self { id: config.id.clone(), url: config.url.clone(), client, capabilities })
    }

    /// The receiver's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn supported(&self, action: &Action) -> Result<Capability, ConnectorError> {
        remediation_core::find_capability(&self.capabilities, action.kind.name(), &action.target).ok_or_else(|| {
            let declared: Vec<String> =
                self.capabilities.iter().map(|c| format!("{}/{}", c.kind, c.grant_type)).collect();
            ConnectorError::unsupported(format!(
                "webhook connector `{}` does not support {} for grant type `{}`; supported: {}",
                self.id,
                action.kind.name(),
                action.target.grant_type,
                declared.join(", ")
            ))
        })
    }

    fn known_grant_type(&self, target: &Target) -> Result<(), ConnectorError> {
        if self.capabilities.iter().any(|c| c.grant_type == target.grant_type) {
            return Ok(());
        }
        let mut names: Vec<&str> = Vec::new();
        for c in &self.capabilities {
            if !names.contains(&c.grant_type.as_str()) {
                names.push(&c.grant_type);
            }
        }
        Err(ConnectorError::unsupported(format!(
            "webhook connector `{}` declares no capability for grant type `{}`; grant types: {}",
            self.id,
            target.grant_type,
            names.join(", ")
        )))
    }

    fn request(&self, operation: Operation) -> WebhookRequest {
        WebhookRequest::new(operation, &self.id)
    }

    fn action_request(&self, operation: Operation, action: &Action) -> WebhookRequest {
        WebhookRequest {
            action: Some(WireAction::from(action)),
            target: Some(action.target.clone()),
            ..self.request(operation)
        }
    }

    /// Sends `body` to `{url}/{operation}` and parses the answer as `T`; returns it with the
    /// request ids of every attempt and the body's own.
    async fn call<T: DeserializeOwned + HasRequestId>(
        &self,
        body: &WebhookRequest,
    ) -> Result<(T, Vec<String>), ConnectorError> {
        let json = serde_json::to_value(body).map_err(|e| {
            ConnectorError::permanent(format!("cannot serialise the {} request: {e}", body.operation.as_str()))
        })?;
        // Every operation is safe to repeat: reads change nothing, and writes carry an
        // idempotency key the receiver must honour.
        let mut request = remediation_connector_http::Request::post(ApiPath::new("/{}", [body.operation.as_str()]))
            .json(json)
            .idempotent();
        if let Some(key) = &body.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        let response = self.client.send_raw(request).await?;
        if !response.status().is_success() {
            let mut err = self.client.error_for(&response);
            let parsed = serde_json::from_slice::<ErrorResponse>(response.body()).ok();
            if err.request_id.is_none() {
                err.request_id = parsed.as_ref().and_then(|p| p.request_id.clone());
            }
            // A 404 without the protocol's error body comes from a server that has no such
            // endpoint (a wrong `url`), not from a receiver saying the target does not exist.
            if response.status() == StatusCode::NOT_FOUND && parsed.is_none() {
                err.kind = ConnectorErrorKind::Permanent;
                err.message = format!(
                    "the server has no `/{}` endpoint under the configured url (HTTP 404 without a protocol error body)",
                    body.operation.as_str()
                );
            }
            return Err(err);
        }
        let answer: T = response.json()?;
        let mut ids = response.request_ids().to_vec();
        if let Some(id) = answer.request_id()
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_owned());
        }
        Ok((answer, ids))
    }

    async fn write(&self, body: WebhookRequest) -> Result<Outcome, ConnectorError> {
        let (answer, request_ids) = self.call::<WriteResponse>(&body).await?;
        let status = match answer.status {
            WriteStatus::Applied => OutcomeStatus::Applied,
            WriteStatus::AlreadyInState => OutcomeStatus::AlreadyInState,
        };
        Ok(Outcome { status, request_ids })
    }
}

/// An answer that may carry the receiver's request id.
trait HasRequestId {
    fn request_id(&self) -> Option<&str>;
}

macro_rules! has_request_id {
    ($($t:ty),*) => {$(
        impl HasRequestId for $t {
            fn request_id(&self) -> Option<&str> {
                self.request_id.as_deref()
            }
        }
    )*};
}

has_request_id!(HealthResponse, StateResponse, PlanResponse, WriteResponse);

/// Every operation the connector posts (to the configured URL followed by `/{operation}`) and
/// the name the receiving service uses for the right to perform it in `missing_permissions`.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("POST /health", "health"),
    PermissionNeed::any(Step::Read, "POST /snapshot", "snapshot"),
    PermissionNeed::any(Step::Read, "POST /plan", "plan"),
    PermissionNeed::any(Step::Read, "POST /verify", "verify"),
    PermissionNeed::any(Step::Execute, "POST /execute", "execute"),
    PermissionNeed::any(Step::Rollback, "POST /rollback", "rollback"),
];

#[async_trait]
impl Connector for WebhookConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        self.capabilities.clone()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        match self.call::<HealthResponse>(&self.request(Operation::Health)).await {
            Ok((answer, _)) => Ok(Health { healthy: answer.healthy, detail: answer.detail }),
            Err(e) if matches!(e.kind, ConnectorErrorKind::Transient | ConnectorErrorKind::Throttled { .. }) => {
                Ok(Health { healthy: false, detail: e.to_string() })
            }
            Err(e) => Err(e),
        }
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// The receiving service names the operations this key may not perform in its `health`
    /// answer; the others it allows. A name outside the map is reported missing as it is.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let (answer, _) = self.call::<HealthResponse>(&self.request(Operation::Health)).await?;
        let refused = |p: &str| answer.missing_permissions.iter().any(|m| m == p);
        let mut p = Permissions::judge(PERMISSION_MAP, |need| match refused(need.permission) {
            true => Grant::Missing,
            false => Grant::Granted,
        });
        let extra =
            answer.missing_permissions.iter().filter(|m| !PERMISSION_MAP.iter().any(|n| n.permission == m.as_str()));
        p.missing.extend(extra.cloned());
        Ok(p)
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.known_grant_type(target)?;
        let body = WebhookRequest { target: Some(target.clone()), ..self.request(Operation::Snapshot) };
        let (answer, _) = self.call::<StateResponse>(&body).await?;
        Ok(Snapshot { canonical: answer.canonical, protected: answer.protected, state: answer.state })
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.supported(action)?;
        let body =
            WebhookRequest { before: Some(WireState::from(before)), ..self.action_request(Operation::Plan, action) };
        let (answer, _) = self.call::<PlanResponse>(&body).await?;
        let mut expected_after: Snapshot = answer.expected_after.into();
        // The target stays the object it is: a service that leaves the id out of the planned
        // state keeps the one it declared for the before-state.
        if expected_after.canonical.is_none() {
            expected_after.canonical = before.canonical.clone();
        }
        Ok(PlannedChange { expected_after, description: answer.description })
    }

    async fn execute(&self, action: &Action, before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.supported(action)?;
        self.write(WebhookRequest {
            before: Some(WireState::from(before)),
            idempotency_key: Some(action.idempotency_key.clone()),
            ..self.action_request(Operation::Execute, action)
        })
        .await
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.supported(action)?;
        let body =
            WebhookRequest { plan: Some(WirePlan::from(planned)), ..self.action_request(Operation::Verify, action) };
        let (answer, _) = self.call::<StateResponse>(&body).await?;
        let observed = Snapshot { canonical: answer.canonical, protected: answer.protected, state: answer.state };
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let capability = self.supported(action)?;
        if capability.reversibility == Reversibility::Irreversible {
            return Err(ConnectorError::unsupported(format!(
                "webhook connector `{}` declares {} for grant type `{}` irreversible; it cannot be rolled back",
                self.id,
                action.kind.name(),
                action.target.grant_type
            )));
        }
        self.write(WebhookRequest {
            before: Some(WireState::from(before)),
            after: Some(WireState::from(after)),
            idempotency_key: Some(format!("{}{ROLLBACK_KEY_SUFFIX}", action.idempotency_key)),
            ..self.action_request(Operation::Rollback, action)
        })
        .await
    }
}
