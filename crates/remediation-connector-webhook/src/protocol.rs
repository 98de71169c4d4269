//! The wire types of the webhook protocol: what the connector sends and what a receiver
//! answers. Their JSON Schemas are `schemas/webhook-request.schema.json` and
//! `schemas/webhook-response.schema.json`.

use remediation_core::{
    Action, ActionId, ActionKind, CanonicalTarget, ConnectorErrorKind, PlannedChange, Snapshot, Target,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version every request carries. It changes only when a receiver written for
/// the old version would misunderstand a request; added fields do not change it.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a request asks the receiver to do; also the last segment of its path
/// (`POST {url}/execute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Is the receiver up, and may this key write? Answer: [`HealthResponse`].
    Health,
    /// Read the target's current state. Answer: [`StateResponse`].
    Snapshot,
    /// Say what the action would change, writing nothing. Answer: [`PlanResponse`].
    Plan,
    /// Apply the action, once per idempotency key. Answer: [`WriteResponse`].
    Execute,
    /// Read the target back after a write. Answer: [`StateResponse`].
    Verify,
    /// Restore the before-state, once per idempotency key. Answer: [`WriteResponse`].
    Rollback,
}

impl Operation {
    /// Every operation, in protocol order.
    pub const ALL: [Operation; 6] =
        [Self::Health, Self::Snapshot, Self::Plan, Self::Execute, Self::Verify, Self::Rollback];

    /// The snake_case name, as in the body's `operation` field and the path.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Snapshot => "snapshot",
            Self::Plan => "plan",
            Self::Execute => "execute",
            Self::Verify => "verify",
            Self::Rollback => "rollback",
        }
    }

    /// Whether the operation changes the receiver's state (and so carries an idempotency key).
    pub fn is_write(self) -> bool {
        matches!(self, Self::Execute | Self::Rollback)
    }
}

/// The state of one target as the receiver reports it; the same shape in requests (`before`,
/// `after`) and answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WireState {
    /// The target's state, normalised by the receiver: no timestamps, ETags or other fields
    /// that change when nothing changed, so that two reads of an unchanged target are equal.
    pub state: Value,
    /// The target must never be changed (a break-glass account). Default `false`.
    #[serde(default)]
    pub protected: bool,
    /// The service's own immutable id of the target, which every other name of it resolves
    /// to; limits and de-duplication key on it. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<CanonicalTarget>,
}

impl From<&Snapshot> for WireState {
    fn from(s: &Snapshot) -> Self {
        Self { state: s.state.clone(), protected: s.protected, canonical: s.canonical.clone() }
    }
}

impl From<WireState> for Snapshot {
    fn from(w: WireState) -> Self {
        Snapshot { canonical: w.canonical, protected: w.protected, state: w.state }
    }
}

/// The planned change sent with `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WirePlan {
    /// The state the target should now be in.
    pub expected_after: WireState,
    /// The plan's one-sentence description.
    pub description: String,
}

impl From<&PlannedChange> for WirePlan {
    fn from(p: &PlannedChange) -> Self {
        Self { expected_after: WireState::from(&p.expected_after), description: p.description.clone() }
    }
}

/// The action a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WireAction {
    /// The action's identifier (a UUIDv7).
    pub id: ActionId,
    /// What to do: `{"type": "revoke"}`, `{"type": "reduce", "to": "read"}`, `{"type":
    /// "suspend"}`, `{"type": "revoke_sessions"}`, `{"type": "force_password_reset"}` or
    /// `{"type": "notify"}`.
    pub kind: ActionKind,
    /// Who asked for it.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// The control it remediates, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_id: Option<String>,
    /// The finding it remediates, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
}

impl From<&Action> for WireAction {
    fn from(a: &Action) -> Self {
        Self {
            id: a.id,
            kind: a.kind.clone(),
            requested_by: a.requested_by.clone(),
            reason: a.reason.clone(),
            control_id: a.control_id.clone(),
            finding_id: a.finding_id.clone(),
        }
    }
}

/// The body of every request. Fields that do not apply to an operation are absent.
/// Receivers must ignore fields they do not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookRequest {
    /// The protocol version: 1.
    pub version: u32,
    /// The operation; equals the last path segment. It is inside the signed body so that a
    /// captured request cannot be replayed to another operation's path.
    pub operation: Operation,
    /// The identifier of the connector that sent the request (its `id` in configuration).
    pub connector: String,
    /// The action (`plan`, `execute`, `verify`, `rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<WireAction>,
    /// The target (every operation but `health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The planned change (`verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<WirePlan>,
    /// The state read before the action (`plan`, `execute`, `rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<WireState>,
    /// The state the action left (`rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<WireState>,
    /// The write's idempotency key (`execute`, `rollback`), equal to the `Idempotency-Key`
    /// header: the action's key for `execute`, the action's key followed by `:rollback` for
    /// `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl WebhookRequest {
    /// A request for `operation` from connector `connector`, every optional field absent.
    pub fn new(operation: Operation, connector: &str) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            operation,
            connector: connector.to_owned(),
            action: None,
            target: None,
            plan: None,
            before: None,
            after: None,
            idempotency_key: None,
        }
    }
}

/// The answer to `health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HealthResponse {
    /// Whether the receiver can carry out actions now.
    pub healthy: bool,
    /// Human-readable detail.
    #[serde(default)]
    pub detail: String,
    /// Operations this key may not perform (`execute`, `rollback`); empty or absent when it
    /// may do everything.
    #[serde(default)]
    pub missing_permissions: Vec<String>,
    /// The receiver's request id, kept in the audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The answer to `snapshot` and `verify`: the target's current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateResponse {
    /// The target's normalised state.
    pub state: Value,
    /// The target must never be changed. Default `false`.
    #[serde(default)]
    pub protected: bool,
    /// The service's own immutable id of the target (see [`WireState::canonical`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<CanonicalTarget>,
    /// The receiver's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The answer to `plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanResponse {
    /// The state the target will be in once the action is executed.
    pub expected_after: WireState,
    /// One plain-language sentence saying what will change, shown to approvers.
    pub description: String,
    /// The receiver's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Whether a write changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    /// The change was made now.
    Applied,
    /// Nothing needed doing: the target was already in that state, or this idempotency key
    /// was already carried out.
    AlreadyInState,
}

/// The answer to `execute` and `rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WriteResponse {
    /// Whether the write changed anything.
    pub status: WriteStatus,
    /// The target's state after the write, when the receiver reports it. Informational:
    /// remediation reads the target back with `verify`, so an `after` of another shape is
    /// ignored rather than failing a write that was made.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub after: Option<WireState>,
    /// The receiver's request id, kept in the audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `Some` when the value has the [`WireState`] shape, `None` otherwise.
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<WireState>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// The class of a failure, which decides what remediation does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The target does not exist (HTTP 404).
    NotFound,
    /// The key may not do this (HTTP 403).
    Forbidden,
    /// The target changed under us (HTTP 409).
    Conflict,
    /// Try again later (HTTP 503, or any 5xx).
    Transient,
    /// Will not work however often it is tried (HTTP 422, or any other 4xx).
    Permanent,
    /// The signature, the timestamp or the key was refused (HTTP 401).
    Unauthenticated,
    /// Slow down (HTTP 429 with `Retry-After`).
    Throttled,
}

impl ErrorKind {
    /// The HTTP status a receiver answers with.
    pub fn status(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Forbidden => 403,
            Self::Conflict => 409,
            Self::Transient => 503,
            Self::Permanent => 422,
            Self::Unauthenticated => 401,
            Self::Throttled => 429,
        }
    }

    /// The connector error class this maps to.
    pub fn connector_kind(self, retry_after_secs: Option<u64>) -> ConnectorErrorKind {
        match self {
            Self::NotFound => ConnectorErrorKind::NotFound,
            Self::Forbidden => ConnectorErrorKind::Forbidden,
            Self::Conflict => ConnectorErrorKind::Conflict,
            Self::Transient => ConnectorErrorKind::Transient,
            Self::Permanent => ConnectorErrorKind::Permanent,
            Self::Unauthenticated => ConnectorErrorKind::Unauthenticated,
            Self::Throttled => {
                ConnectorErrorKind::Throttled { retry_after: retry_after_secs.map(std::time::Duration::from_secs) }
            }
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// The class of failure.
    pub kind: ErrorKind,
    /// The receiver's message, kept in the action's record. Never put secrets here.
    pub message: String,
    /// For `throttled`: how many seconds to wait (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

/// The body of every failure, with the matching HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorDetail,
    /// The receiver's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Any answer a receiver gives, for the JSON Schema: which one depends on the operation
/// (and an error on a non-2xx status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WebhookResponse {
    /// A failure (non-2xx status).
    Error(ErrorResponse),
    /// The answer to `health`.
    Health(HealthResponse),
    /// The answer to `snapshot` and `verify`.
    State(StateResponse),
    /// The answer to `plan`.
    Plan(PlanResponse),
    /// The answer to `execute` and `rollback`.
    Write(WriteResponse),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_answer_parses_whatever_the_shape_of_its_after() {
        #[track_caller]
        fn check(text: &str, after: Option<WireState>) {
            let parsed: WriteResponse = serde_json::from_str(text).expect("parses");
            assert_eq!(parsed.status, WriteStatus::Applied);
            assert_eq!(parsed.after, after);
        }
        let state = WireState { state: serde_json::json!({"granted": false}), protected: false, canonical: None };
        check(r#"{"status": "applied", "after": {"state": {"granted": false}}}"#, Some(state));
        check(r#"{"status": "applied", "after": {"granted": false}}"#, None);
        check(r#"{"status": "applied", "after": null}"#, None);
        check(r#"{"status": "applied", "extra": 1}"#, None);
    }

    #[test]
    fn every_error_kind_has_its_status_and_connector_class() {
        let cases = [
            (ErrorKind::NotFound, 404, ConnectorErrorKind::NotFound),
            (ErrorKind::Forbidden, 403, ConnectorErrorKind::Forbidden),
            (ErrorKind::Conflict, 409, ConnectorErrorKind::Conflict),
            (ErrorKind::Transient, 503, ConnectorErrorKind::Transient),
            (ErrorKind::Permanent, 422, ConnectorErrorKind::Permanent),
            (ErrorKind::Unauthenticated, 401, ConnectorErrorKind::Unauthenticated),
            (
                ErrorKind::Throttled,
                429,
                ConnectorErrorKind::Throttled { retry_after: Some(std::time::Duration::from_secs(7)) },
            ),
        ];
        for (kind, status, class) in cases {
            assert_eq!(kind.status(), status);
            assert_eq!(kind.connector_kind(Some(7)), class);
        }
    }

    #[test]
    fn operations_name_their_paths() {
        let names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names, ["health", "snapshot", "plan", "execute", "verify", "rollback"]);
        for op in Operation::ALL {
            assert_eq!(serde_json::to_value(op).expect("serialises"), serde_json::json!(op.as_str()));
        }
    }
}
