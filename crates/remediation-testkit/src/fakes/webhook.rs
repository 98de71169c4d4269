//! A stateful receiver of the webhook connector's protocol, written from the protocol's
//! documentation (it reads and answers plain JSON, not the connector's own types, so the two
//! cannot drift apart unnoticed).
//!
//! It checks what a real receiver must check: the HMAC signature over
//! `<timestamp>.<body>` and the replay window (401 otherwise), that the signed body names the
//! operation of the path it was sent to, and that a write's `Idempotency-Key` header equals
//! its body's `idempotency_key`. It keeps a state per target and remembers every idempotency
//! key, so a repeated write answers `already_in_state`.
//!
//! Every target of a known identity exists, starting in
//! `{"granted": true, "level": "admin", "active": true, "sessions": 2,
//! "password_reset_required": false, "notifications": 0}`; each kind changes its own field
//! (`revoke`: `granted` false and `level` null; `reduce`: `level`; `suspend`: `active`;
//! `revoke_sessions`: `sessions` 0; `force_password_reset`: `password_reset_required`;
//! `notify`: one more `notifications`). Rollback restores the request's `before` state when
//! the target is still in its `after` state, and answers 409 otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use remediation_core::Clock;
use remediation_notify::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{FakeServer, Faults, Provider, RequestLog, json_response};

/// The path under the fake's base URL where the receiver listens; the connector's `url` is
/// `{base_url}{WEBHOOK_PATH}`.
pub const WEBHOOK_PATH: &str = "/hooks/remediation";

/// The credential marker the fault switchboard sees for a signed request (the signature
/// itself is checked by the receiver). [`Faults::expire_tokens`] therefore plays "the
/// receiver stopped accepting our key".
pub const SIGNED: &str = "hmac-sha256";

/// The receiver's replay window, as the protocol prescribes.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);

/// What a request was refused for before reaching an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No signature header, or one that matches no key.
    BadSignature,
    /// The timestamp is outside the replay window (or malformed).
    StaleTimestamp,
}

#[derive(Default)]
struct Receiver {
    identities: BTreeSet<String>,
    protected: BTreeSet<String>,
    /// Other names of identities: alias -> identity.
    aliases: BTreeMap<String, String>,
    states: BTreeMap<String, Value>,
    keys: BTreeMap<String, Value>,
    applied: u64,
    next_request: u64,
    rejections: Vec<Rejection>,
}

struct Shared {
    secret: SecretString,
    read_only: Mutex<Vec<SecretString>>,
    clock: Arc<dyn Clock>,
    receiver: Mutex<Receiver>,
}

impl Shared {
    fn receiver(&self) -> MutexGuard<'_, Receiver> {
        self.receiver.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake receiver; stopped when dropped.
pub struct WebhookFake {
    server: FakeServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WebhookFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookFake").field("url", &self.url()).finish_non_exhaustive()
    }
}

struct WebhookProvider;

impl Provider for WebhookProvider {
    fn throttled(&self) -> Response {
        error(StatusCode::TOO_MANY_REQUESTS, &[("retry-after", "1".to_owned())], "throttled", "slow down", Some(1))
    }

    fn server_error(&self, status: StatusCode) -> Response {
        error(status, &[], "transient", "the receiver is having a moment", None)
    }

    fn unauthorized(&self) -> Response {
        error(StatusCode::UNAUTHORIZED, &[], "unauthenticated", "this key is no longer accepted", None)
    }

    fn credential(&self, headers: &HeaderMap) -> Option<String> {
        let signed = headers.contains_key(SIGNATURE_HEADER) && headers.contains_key(TIMESTAMP_HEADER);
        signed.then(|| SIGNED.to_owned())
    }
}

impl WebhookFake {
    /// Starts a receiver that accepts requests signed with `secret`, within
    /// [`REPLAY_WINDOW`] of `clock`.
    pub async fn start(secret: &str, clock: Arc<dyn Clock>) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            secret: SecretString::from(secret.to_owned()),
            read_only: Mutex::new(Vec::new()),
            clock,
            receiver: Mutex::new(Receiver::default()),
        });
        let router =
            Router::new().route(&format!("{WEBHOOK_PATH}/{{operation}}"), post(handle)).with_state(Arc::clone(&shared));
        let faults = Faults::new();
        faults.allow_token(SIGNED);
        let server = FakeServer::start_with(router, WebhookProvider, faults, RequestLog::new()).await?;
        Ok(Self { server, shared })
    }

    /// The URL to configure the connector with: `http://127.0.0.1:<port>/hooks/remediation`.
    pub fn url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.server.base_url())
    }

    /// The fault switchboard.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Every request received, signature headers included.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Makes `identity` known: its targets exist from now on.
    pub fn add_identity(&self, identity: &str) {
        self.shared.receiver().identities.insert(identity.to_owned());
    }

    /// Makes `identity` known and protected (break-glass).
    pub fn protect(&self, identity: &str) {
        let mut r = self.shared.receiver();
        r.identities.insert(identity.to_owned());
        r.protected.insert(identity.to_owned());
    }

    /// Makes `alias` another name of `identity`: the receiver answers for it as for the
    /// identity, and declares the same canonical id.
    pub fn add_alias(&self, alias: &str, identity: &str) {
        self.shared.receiver().aliases.insert(alias.to_owned(), identity.to_owned());
    }

    /// Also accepts requests signed with `secret`, for reads only: writes answer 403.
    pub fn allow_read_only_key(&self, secret: &str) {
        self.shared
            .read_only
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(SecretString::from(secret.to_owned()));
    }

    /// The current state of `target` (the JSON of a `Target`), if it was ever read or written.
    pub fn state_of(&self, target: &Value) -> Option<Value> {
        self.shared.receiver().states.get(&target_key(target)).cloned()
    }

    /// How many writes changed a state.
    pub fn applied(&self) -> u64 {
        self.shared.receiver().applied
    }

    /// Every request refused for its signature or timestamp, in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.receiver().rejections.clone()
    }
}

/// The initial state of every target.
pub fn initial_state() -> Value {
    json!({
        "granted": true,
        "level": "admin",
        "active": true,
        "sessions": 2,
        "password_reset_required": false,
        "notifications": 0,
    })
}

/// The state `kind` (the JSON of an `ActionKind`) leads to from `state`.
pub fn apply(kind: &Value, state: &Value) -> Value {
    let mut next = state.clone();
    match kind.get("type").and_then(Value::as_str) {
        Some("revoke") => {
            next["granted"] = json!(false);
            next["level"] = Value::Null;
        }
        Some("reduce") if state["granted"] == json!(true) => {
            next["level"] = kind.get("to").cloned().unwrap_or(Value::Null);
        }
        Some("suspend") => next["active"] = json!(false),
        Some("revoke_sessions") => next["sessions"] = json!(0),
        Some("force_password_reset") => next["password_reset_required"] = json!(true),
        Some("notify") => next["notifications"] = json!(state["notifications"].as_u64().unwrap_or(0) + 1),
        _ => {}
    }
    next
}

fn target_key(target: &Value) -> String {
    serde_json::to_string(target).unwrap_or_default()
}

fn error(
    status: StatusCode,
    headers: &[(&str, String)],
    kind: &str,
    message: &str,
    retry_after_secs: Option<u64>,
) -> Response {
    let mut body = json!({ "error": { "kind": kind, "message": message } });
    if let Some(secs) = retry_after_secs {
        body["error"]["retry_after_secs"] = json!(secs);
    }
    json_response(status, headers, &body)
}

const WRITES: [&str; 2] = ["execute", "rollback"];
const OPERATIONS: [&str; 6] = ["health", "snapshot", "plan", "execute", "verify", "rollback"];

/// Which key signed the request: `Ok(true)` the full one, `Ok(false)` a read-only one.
fn authenticate(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<bool, Rejection> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
    let now = shared.clock.now();
    let check = |secret: &SecretString| verify_signature(secret, timestamp, body, signature, now, REPLAY_WINDOW);
    match check(&shared.secret) {
        Ok(()) => return Ok(true),
        Err(
            remediation_notify::SignatureError::Stale { .. } | remediation_notify::SignatureError::MalformedTimestamp,
        ) => {
            return Err(Rejection::StaleTimestamp);
        }
        Err(_) => {}
    }
    let read_only = shared.read_only.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if read_only.iter().any(|s| check(s).is_ok()) { Ok(false) } else { Err(Rejection::BadSignature) }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full = match authenticate(&shared, &headers, &body) {
        Ok(full) => full,
        Err(rejection) => {
            shared.receiver().rejections.push(rejection);
            let message = match rejection {
                Rejection::BadSignature => "the signature does not verify",
                Rejection::StaleTimestamp => "the timestamp is outside the replay window",
            };
            return error(StatusCode::UNAUTHORIZED, &[], "unauthenticated", message, None);
        }
    };
    if !OPERATIONS.contains(&operation.as_str()) {
        return error(StatusCode::NOT_FOUND, &[], "permanent", &format!("no operation `{operation}`"), None);
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, &[], "permanent", "the body is not JSON", None);
    };
    if request.get("operation").and_then(Value::as_str) != Some(operation.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            &[],
            "permanent",
            &format!("the signed body is not a `{operation}` request"),
            None,
        );
    }
    if WRITES.contains(&operation.as_str()) {
        let header = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
        let key = request.get("idempotency_key").and_then(Value::as_str);
        if header.is_none() || header != key {
            return error(
                StatusCode::BAD_REQUEST,
                &[],
                "permanent",
                "the Idempotency-Key header does not match the body's idempotency_key",
                None,
            );
        }
        if !full {
            return error(StatusCode::FORBIDDEN, &[], "forbidden", "this key may only read", None);
        }
    }
    let mut r = shared.receiver();
    r.next_request += 1;
    let request_id = format!("whreq-{}", r.next_request);
    let ids = [("x-request-id", request_id.clone())];
    let ok = |mut body: Value| {
        body["request_id"] = json!(request_id);
        json_response(StatusCode::OK, &ids, &body)
    };
    if operation == "health" {
        let missing: Vec<&str> = if full { Vec::new() } else { WRITES.to_vec() };
        return ok(json!({ "healthy": true, "detail": "fake receiver", "missing_permissions": missing }));
    }
    let mut target = request.get("target").cloned().unwrap_or(Value::Null);
    let Some(identity) = target.get("identity").and_then(Value::as_str).map(str::to_owned) else {
        return error(StatusCode::BAD_REQUEST, &[], "permanent", "the request names no target", None);
    };
    // An alias is the identity it names: same state, same protection, same canonical id.
    let identity = r.aliases.get(&identity).cloned().unwrap_or(identity);
    target["identity"] = json!(identity);
    let canonical = json!({ "identity": format!("wh-{identity}") });
    if !r.identities.contains(&identity) {
        return error(StatusCode::NOT_FOUND, &ids, "not_found", &format!("no identity `{identity}`"), None);
    }
    let protected = r.protected.contains(&identity);
    let key = target_key(&target);
    let current = r.states.entry(key.clone()).or_insert_with(initial_state).clone();
    let kind = request.pointer("/action/kind").cloned().unwrap_or(Value::Null);
    match operation.as_str() {
        "snapshot" | "verify" => ok(json!({ "state": current, "protected": protected, "canonical": canonical })),
        "plan" => {
            let after = apply(&kind, &current);
            let what = kind.get("type").and_then(Value::as_str).unwrap_or("change");
            ok(json!({
                "expected_after": { "state": after, "protected": protected, "canonical": canonical },
                "description": format!("{what} for {identity}"),
            }))
        }
        "execute" => {
            let idempotency_key = request["idempotency_key"].as_str().unwrap_or_default().to_owned();
            if r.keys.contains_key(&idempotency_key) {
                return ok(
                    json!({ "status": "already_in_state", "after": { "state": current, "protected": protected, "canonical": canonical } }),
                );
            }
            if protected {
                return error(StatusCode::CONFLICT, &ids, "conflict", "the target is protected", None);
            }
            let after = apply(&kind, &current);
            r.keys.insert(idempotency_key, after.clone());
            let status = if after == current {
                "already_in_state"
            } else {
                r.applied += 1;
                r.states.insert(key, after.clone());
                "applied"
            };
            ok(json!({ "status": status, "after": { "state": after, "protected": protected, "canonical": canonical } }))
        }
        _ => {
            // rollback
            let idempotency_key = request["idempotency_key"].as_str().unwrap_or_default().to_owned();
            let before = request.pointer("/before/state").cloned().unwrap_or(Value::Null);
            let after = request.pointer("/after/state").cloned().unwrap_or(Value::Null);
            if r.keys.contains_key(&idempotency_key) || current == before {
                r.keys.insert(idempotency_key, current.clone());
                return ok(
                    json!({ "status": "already_in_state", "after": { "state": current, "protected": protected, "canonical": canonical } }),
                );
            }
            if current != after {
                return error(StatusCode::CONFLICT, &ids, "conflict", "the target changed since the action ran", None);
            }
            r.keys.insert(idempotency_key, before.clone());
            r.applied += 1;
            r.states.insert(key, before.clone());
            ok(
                json!({ "status": "applied", "after": { "state": before, "protected": protected, "canonical": canonical } }),
            )
        }
    }
}
