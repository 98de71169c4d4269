//! A connector that forwards every action to your own service: remediation keeps the
//! approvals, limits, audit and rollback windows; your service (the *receiver*) reads and
//! changes the target, over a small signed JSON protocol.
//!
//! # Configuration
//!
//! ```
//! use remediation_connector_webhook::WebhookConfig;
//!
//! let config: WebhookConfig = toml::from_str(r#"
//!     id = "badge-system"
//!     url = "https://badges.internal.example.com/remediation"
//!     secret_env = "BADGE_WEBHOOK_SECRET"      # or secret_file = "/run/secrets/badge-webhook"
//!     timeout_secs = 10                        # per attempt (default 30)
//!
//!     [[grant_types]]                          # what the receiver can do, and how well undone
//!     name = "badge_access"
//!     kinds = ["revoke", "reduce"]
//!     reversibility = "reversible"
//!
//!     [[grant_types]]
//!     name = "badge_holder"
//!     kinds = ["suspend"]
//!     reversibility = "reversible"
//!
//!     [[grant_types]]
//!     name = "badge_holder"
//!     kinds = ["revoke_sessions", "notify"]    # never undoable: must be "irreversible"
//!     reversibility = "irreversible"
//! "#)?;
//! let caps = config.capabilities()?;
//! assert_eq!(caps.len(), 5);
//! assert!(caps.iter().all(|c| c.observable));
//! // Then: WebhookConnector::from_config(&config)? reads the secret and builds the connector.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Exactly one of `secret_env` and `secret_file` names the signing secret; it is a
//! [`SecretString`](secrecy::SecretString) from there to the signature and appears in no
//! `Debug` output, log line or error. Unknown keys are refused.
//!
//! # Capabilities
//!
//! The connector declares exactly what `grant_types` lists, one capability per (kind, grant
//! type), every one observable (the receiver answers `verify`), and refuses anything else as
//! `Unsupported` before sending a request. For the configuration above:
//!
//! | kind | grant type | reversibility | observable |
//! |---|---|---|---|
//! | revoke | `badge_access` | reversible | yes |
//! | reduce | `badge_access` | reversible | yes |
//! | suspend | `badge_holder` | reversible | yes |
//! | revoke_sessions | `badge_holder` | irreversible | yes |
//! | notify | `badge_holder` | irreversible | yes |
//!
//! Any kind may be declared for any grant type; `revoke_sessions`, `force_password_reset` and
//! `notify` must be declared `irreversible` (no service can undo them), and rollback of an
//! irreversible capability is refused without a request. Declare `lossy` when your rollback
//! restores access but not every detail.
//!
//! # Protocol (version 1)
//!
//! Every operation is `POST {url}/{operation}` with a JSON body, where `operation` is one of
//! `health`, `snapshot`, `plan`, `execute`, `verify`, `rollback`. One path per operation lets
//! a receiver route, log, rate-limit and firewall operations separately (reads apart from
//! writes) with any web framework; the body repeats the operation in its `operation` field
//! because the signature covers the body but not the path, so a receiver that checks the two
//! agree cannot be made to run a captured `snapshot` as an `execute`.
//!
//! ## Headers
//!
//! | header | value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `Accept` | `application/json` |
//! | `X-Remediation-Timestamp` | Unix time of signing, whole seconds, decimal (`1795687200`) |
//! | `X-Remediation-Signature` | `sha256=` + lowercase hex HMAC-SHA256(key = the secret's UTF-8 bytes, message = `<timestamp>` `.` `<raw body>`) |
//! | `Idempotency-Key` | `execute`: the action's idempotency key; `rollback`: that key followed by `:rollback`. Equal to the body's `idempotency_key` |
//! | `User-Agent` | `remediation/<version>` |
//!
//! The signature is the one the notify crate's webhooks use
//! ([`remediation_notify::sign`]; check it with [`remediation_notify::verify_signature`]).
//! Each attempt is signed afresh. A receiver must, before anything else:
//!
//! 1. recompute the HMAC over the timestamp header exactly as sent, a `.`, and the raw body
//!    bytes (before parsing JSON), and compare in constant time;
//! 2. refuse a timestamp more than 300 s from its own clock (the replay window);
//! 3. check that the body's `operation` equals the path's last segment, and for a write that
//!    the `Idempotency-Key` header equals the body's `idempotency_key` (the header is not
//!    signed; the body is);
//!
//! answering `401` with `{"error": {"kind": "unauthenticated", ...}}` when 1 or 2 fails, and
//! `400` with a `permanent` error when 3 does.
//!
//! ## Request body
//!
//! [`WebhookRequest`]: `version` (1), `operation`, `connector` (the connector's id), and as
//! applicable:
//!
//! | field | sent with | content |
//! |---|---|---|
//! | `target` | all but `health` | `{"identity", "resource"?, "grant"?, "grant_type"}` |
//! | `action` | `plan`, `execute`, `verify`, `rollback` | `{"id", "kind", "requested_by", "reason", "control_id"?, "finding_id"?}`; `kind` is `{"type": "revoke"}`, `{"type": "reduce", "to": "read"}`, `{"type": "suspend"}`, `{"type": "revoke_sessions"}`, `{"type": "force_password_reset"}` or `{"type": "notify"}` |
//! | `before` | `plan`, `execute`, `rollback` | the state read before the action, `{"state": {...}, "protected": bool}` |
//! | `after` | `rollback` | the state the action left |
//! | `plan` | `verify` | `{"expected_after": {"state", "protected"}, "description"}` |
//! | `idempotency_key` | `execute`, `rollback` | as the `Idempotency-Key` header |
//!
//! Receivers must ignore fields they do not know; `version` changes only for a change an
//! older receiver would misread.
//!
//! An `execute` request, and what a receiver written in Rust does with it (the types of
//! [`protocol`] deserialise it; any language works the same way):
//!
//! ```
//! use remediation_connector_webhook::protocol::{Operation, WebhookRequest};
//! use remediation_notify::{DEFAULT_TOLERANCE, sign, verify_signature};
//! use secrecy::SecretString;
//! use time::OffsetDateTime;
//!
//! let body = br#"{
//!   "version": 1,
//!   "operation": "execute",
//!   "connector": "badge-system",
//!   "action": {
//!     "id": "019abf9a-6000-7000-8000-000000000001",
//!     "kind": {"type": "revoke"},
//!     "requested_by": "svc:scanner",
//!     "reason": "badge unused for 90 days",
//!     "control_id": "PHYS-7"
//!   },
//!   "target": {"identity": "alice", "resource": "server-room", "grant_type": "badge_access"},
//!   "before": {"state": {"granted": true, "level": "admin"}, "protected": false},
//!   "idempotency_key": "remediation-019abf9a-6000-7000-8000-000000000001"
//! }"#;
//!
//! /// The receiver's checks, in order; `Err` is the status to answer.
//! fn receive(
//!     secret: &SecretString,
//!     path_operation: &str, // the last segment of the request's path
//!     timestamp: &str,      // X-Remediation-Timestamp
//!     signature: &str,      // X-Remediation-Signature
//!     idempotency_key: Option<&str>, // Idempotency-Key
//!     body: &[u8],          // the raw bytes, before any JSON parsing
//!     now: OffsetDateTime,
//! ) -> Result<WebhookRequest, u16> {
//!     verify_signature(secret, timestamp, body, signature, now, DEFAULT_TOLERANCE).map_err(|_| 401u16)?;
//!     let request: WebhookRequest = serde_json::from_slice(body).map_err(|_| 422u16)?;
//!     if request.operation.as_str() != path_operation {
//!         return Err(400); // a signed body replayed to another operation
//!     }
//!     if request.operation.is_write() && request.idempotency_key.as_deref() != idempotency_key {
//!         return Err(400);
//!     }
//!     Ok(request)
//! }
//!
//! let secret = SecretString::from("the shared secret");
//! let now = OffsetDateTime::from_unix_timestamp(1_795_687_200)?;
//! let key = Some("remediation-019abf9a-6000-7000-8000-000000000001");
//! let signature = sign(&secret, 1_795_687_200, body);
//! let request = receive(&secret, "execute", "1795687200", &signature, key, body, now).map_err(|s| format!("{s}"))?;
//! assert_eq!(request.operation, Operation::Execute);
//! assert_eq!(request.target.map(|t| t.identity).as_deref(), Some("alice"));
//! // Replayed to another path, or too late, it is refused:
//! assert_eq!(receive(&secret, "rollback", "1795687200", &signature, key, body, now).err(), Some(400));
//! let late = now + time::Duration::seconds(301);
//! assert_eq!(receive(&secret, "execute", "1795687200", &signature, key, body, late).err(), Some(401));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Answers
//!
//! A `2xx` status with, per operation ([`WebhookResponse`] lists them all):
//!
//! | operation | answer |
//! |---|---|
//! | `health` | `{"healthy": bool, "detail": "...", "missing_permissions": ["execute", ...]}` (the last optional: operations this key may not perform) |
//! | `snapshot`, `verify` | `{"state": {...}, "protected": bool}`: the target's current state, normalised (no timestamps or ETags), so two reads of an unchanged target are equal |
//! | `plan` | `{"expected_after": {"state": {...}, "protected": bool}, "description": "..."}`: what `execute` will leave, written nowhere |
//! | `execute`, `rollback` | `{"status": "applied" \| "already_in_state", "after": {"state", "protected"}}` (`after` optional) |
//!
//! Every answer may carry `"request_id": "..."` (and any answer an `X-Request-Id` header);
//! both are kept in the audit. Unknown fields are ignored.
//!
//! ```
//! # use remediation_connector_webhook::protocol::{WriteResponse, WriteStatus};
//! let answer: WriteResponse = serde_json::from_str(r#"
//!     {"status": "applied", "after": {"state": {"granted": false, "level": null}, "protected": false}, "request_id": "req-8812"}
//! "#)?;
//! assert_eq!(answer.status, WriteStatus::Applied);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! What the receiver promises:
//!
//! - `snapshot` of a target whose identity does not exist answers `404` `not_found`;
//!   `protected: true` marks a target nothing may change (remediation then refuses it);
//! - any state may carry `"canonical": {"identity": "...", "resource": "..."}` (resource
//!   optional): the service's own immutable id of the target. A service that accepts several
//!   names for one account resolves each to that account, declares the same `canonical` id and
//!   the same `protected` for every name; remediation keys its limits on it. A `plan` answer
//!   without it keeps the before-state's;
//! - `plan` and the reads change nothing;
//! - `execute` is idempotent per `Idempotency-Key`: a key seen before answers
//!   `already_in_state` without changing anything, as does an action whose effect is already
//!   there. So remediation retries writes (after a timeout, a 5xx, a 429) with the same key,
//!   and after a crash executes again with the same key;
//! - after `execute`, `verify` answers the state `plan` announced (remediation compares it with
//!   `expected_after`; a difference fails the action as not verified);
//! - `rollback` restores `before` when the target is still in `after`, answers `409`
//!   `conflict` when someone changed it since, and is idempotent per its key too.
//!
//! ## Errors
//!
//! A non-`2xx` status with `{"error": {"kind": "...", "message": "...", "retry_after_secs":
//! n}}` (`retry_after_secs` only for `throttled`). The kind decides what remediation does;
//! the message is kept in the action's record, so it must not contain secrets.
//!
//! | kind | status | remediation |
//! |---|---|---|
//! | `not_found` | 404 | the target does not exist (a 404 without this body means a wrong `url`: permanent) |
//! | `forbidden` | 403 | the key may not do this |
//! | `conflict` | 409 | the target changed under us |
//! | `transient` | 503 (any 5xx) | retried (500, 502, 503, 504), then fails as transient |
//! | `permanent` | 422 (any other 4xx) | fails at once |
//! | `unauthenticated` | 401 | signature, timestamp or key refused; not retried |
//! | `throttled` | 429 with `Retry-After: <seconds>` | waited out and retried |
//!
//! ```
//! # use remediation_connector_webhook::protocol::{ErrorKind, ErrorResponse};
//! let answer: ErrorResponse = serde_json::from_str(r#"
//!     {"error": {"kind": "throttled", "message": "too many badge changes", "retry_after_secs": 30}}
//! "#)?;
//! assert_eq!(answer.error.kind, ErrorKind::Throttled);
//! assert_eq!(answer.error.kind.status(), 429);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! `health` is asked before every suggestion and execution: a receiver that cannot be reached,
//! answers 5xx or throttles is reported unhealthy (and nothing runs); any other failure is an
//! error.
//!
//! ## Timeouts and retries
//!
//! Each attempt times out after `timeout_secs`. Every operation is retried on connection
//! errors, timeouts, `408`, `500`, `502`, `503`, `504` and `429`, up to 4 attempts in all,
//! with exponential backoff from 0.5 s; `Retry-After` is honoured up to 120 s (a longer one fails as throttled with its
//! figure, so the engine can come back later). Writes are retried with the same idempotency
//! key, which is why the receiver must honour it. Redirects are not followed.
//!
//! The JSON Schemas of the request and of the answers are `schemas/webhook-request.schema.json`
//! and `schemas/webhook-response.schema.json`.

mod config;
mod connector;
mod error;
pub mod protocol;

pub use config::{DEFAULT_TIMEOUT_SECS, GrantTypeConfig, WebhookConfig};
pub use connector::{IDEMPOTENCY_KEY_HEADER, PERMISSION_MAP, ROLLBACK_KEY_SUFFIX, WebhookConnector, WebhookOptions};
pub use error::WebhookError;
pub use protocol::{WebhookRequest, WebhookResponse};

/// The catalog's entry for your own service: `type = "webhook"`, settings [`WebhookConfig`]. Its
/// capabilities are the grant types its settings declare.
pub static FACTORY: remediation_core::factory::Factory<WebhookConfig> =
    remediation_core::factory::Factory::new("webhook", "Webhook", None, |_id, config, _context| {
        Ok(std::sync::Arc::new(WebhookConnector::from_config(&config)?))
    });
