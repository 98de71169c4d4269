//! The webhook connector's configuration: where the receiver is, where the signing secret
//! comes from, and what the receiver can do.

use std::path::PathBuf;

use remediation_connector_http::{SecretSource, SecretString};
use remediation_core::{Capability, KindName, Reversibility};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::WebhookError;

/// The default whole-request timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// One webhook connector: a service of yours that carries out actions itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The connector's identifier, as actions name it (`hr-system`).
    pub id: String,
    /// The receiver's base URL; operations are `POST {url}/snapshot`, `{url}/execute`, ...
    /// Use `https` outside a private network.
    pub url: String,
    /// Environment variable holding the HMAC signing secret. Exactly one of `secret_env`
    /// and `secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// File holding the HMAC signing secret (surrounding whitespace is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// The managed connection's sealed secret that holds the HMAC signing secret (only in a
    /// connection created with `remediate connections add`); instead of `secret_env` and
    /// `secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sealed: Option<String>,
    /// Whole-request timeout per attempt, in seconds (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// What the receiver can do: each entry a grant type, the kinds it supports for it and
    /// how well they can be undone. The connector declares exactly these capabilities and
    /// refuses anything else before sending a request.
    pub grant_types: Vec<GrantTypeConfig>,
    /// Accept an `http://` URL on a host other than loopback. Credentials and every answer
    /// then cross the network unencrypted, so a warning is logged; leave it off (the default)
    /// unless the network path is trusted.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// A grant type the receiver handles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantTypeConfig {
    /// The grant type, in the receiver's vocabulary (`badge_access`, `vpn_account`).
    pub name: String,
    /// The kinds the receiver carries out for it.
    pub kinds: Vec<KindName>,
    /// How well these kinds can be undone by the receiver's `rollback`. `revoke_sessions`,
    /// `force_password_reset` and `notify` must be `irreversible`; list them in their own
    /// entry when the other kinds are reversible.
    pub reversibility: Reversibility,
}

/// Kinds no service can undo.
const NEVER_UNDONE: [KindName; 3] = [KindName::RevokeSessions, KindName::ForcePasswordReset, KindName::Notify];

impl WebhookConfig {
    /// Reads the signing secret from the named variable or file. Errors name the variable or
    /// file, never the value.
    pub fn load_secret(&self) -> Result<SecretString, WebhookError> {
        let source = match (&self.secret_env, &self.secret_file, &self.secret_sealed) {
            (Some(var), None, None) => SecretSource::Env(var.clone()),
            (None, Some(path), None) => SecretSource::File(path.clone()),
            (None, None, Some(name)) => SecretSource::Sealed(name.clone()),
            _ => return Err(WebhookError::SecretSource { id: self.id.clone() }),
        };
        source.load().map_err(|source| WebhookError::Secret { id: self.id.clone(), source })
    }

    /// The capabilities the configuration declares, after checking it: a non-empty id, at
    /// least one grant type, no empty entry, no (kind, grant type) twice, and the kinds that
    /// cannot be undone declared irreversible. Every capability is observable: a receiver
    /// answers `verify`.
    pub fn capabilities(&self) -> Result<Vec<Capability>, WebhookError> {
        let id = || self.id.clone();
        if self.id.trim().is_empty() {
            return Err(WebhookError::EmptyId);
        }
        if self.timeout_secs == 0 {
            return Err(WebhookError::Timeout { id: id() });
        }
        if self.grant_types.is_empty() {
            return Err(WebhookError::GrantTypes { id: id(), reason: "`grant_types` is empty".to_owned() });
        }
        let mut caps: Vec<Capability> = Vec::new();
        for entry in &self.grant_types {
            if entry.name.trim().is_empty() {
                return Err(WebhookError::GrantTypes {
                    id: id(),
                    reason: "a grant type has an empty `name`".to_owned(),
                });
            }
            if entry.kinds.is_empty() {
                return Err(WebhookError::GrantTypes {
                    id: id(),
                    reason: format!("grant type `{}` lists no `kinds`", entry.name),
                });
            }
            for kind in &entry.kinds {
                if caps.iter().any(|c| c.kind == *kind && c.grant_type == entry.name) {
                    return Err(WebhookError::Duplicate { id: id(), kind: *kind, grant_type: entry.name.clone() });
                }
                if NEVER_UNDONE.contains(kind) && entry.reversibility != Reversibility::Irreversible {
                    return Err(WebhookError::NotUndoable { id: id(), kind: *kind, grant_type: entry.name.clone() });
                }
                caps.push(Capability {
                    kind: *kind,
                    grant_type: entry.name.clone(),
                    reversibility: entry.reversibility,
                    observable: true,
                });
            }
        }
        Ok(caps)
    }
}
