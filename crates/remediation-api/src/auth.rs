//! Bearer-token authentication: the token's SHA-256 is looked up in the store; the caller
//! acts as the token's principal, with the principal's role, and the token's name is recorded
//! beside it. Expired and revoked tokens, and tokens of revoked principals, authenticate
//! nobody. Each principal's calls are then rate-limited.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use remediation_core::{Actor, Role};
use secrecy::SecretString;

use crate::ApiState;
use crate::error::ApiError;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl Caller {
    /// Like [`Caller::require`], and a refusal is recorded in the audit as `event` about
    /// `about` (every refused attempt to suggest, execute or roll back leaves a record).
    pub(crate) async fn require_audited(
        &self,
        state: &ApiState,
        role: Role,
        event: &str,
        about: serde_json::Value,
    ) -> Result<&Actor, ApiError> {
        match self.require(role) {
            Ok(actor) => Ok(actor),
            Err(e) => {
                let engine = state.runtime().active().await?.engine;
                engine.record_refusal(event, &self.0, about, &e.message).await?;
                Err(e)
            }
        }
    }

    /// Refuses (403) a caller below `role`.
    pub fn require(&self, role: Role) -> Result<&Actor, ApiError> {
        if self.0.role >= role {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(format!(
                "{} is a {}; this needs the {role} role or higher",
                self.0.name, self.0.role
            ))
            .with_details(serde_json::json!({"required_role": role, "role": self.0.role})))
        }
    }
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::unauthenticated(message)
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthenticated(
                "send `Authorization: Bearer TOKEN` (create one with `remediate token create`)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .map(|t| SecretString::from(t.to_owned()))
            .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer TOKEN`"))?;
        let hash = remediation_runtime::tokens::hash(&token);
        let Some(actor) = actor_for_hash(state, &hash).await? else {
            return Err(unauthenticated("unknown, expired or revoked token"));
        };
        let now = state.runtime().clock().now();
        if let Err(retry_after) = state.rate().admit(&actor.name, now) {
            tracing::info!(actor = %actor.name, retry_after, "rate limited");
            return Err(ApiError::rate_limited(&actor.name, retry_after));
        }
        Ok(Self(actor))
    }
}

/// The token of an `Authorization` value: the `Bearer` scheme, whose name is
/// case-insensitive (RFC 9110, section 11.1), then the token; `None` for another scheme or no
/// token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The principal of the token whose SHA-256 is `hash`, with the token's name as its
/// credential; `None` for an unknown, expired or revoked token or a revoked principal (and
/// for the engine's own `system` role, which no principal may hold). The approval page
/// authenticates its sessions with this same look-up.
pub(crate) async fn actor_for_hash(state: &ApiState, hash: &str) -> Result<Option<Actor>, ApiError> {
    let now = state.runtime().clock().now();
    match state.runtime().store().credential_by_hash(hash, now).await.map_err(ApiError::from)? {
        Some(c) if c.role != Role::System => {
            tracing::debug!(actor = %c.principal, token = %c.token, role = %c.role, "authenticated");
            Ok(Some(c.actor()))
        }
        _ => {
            tracing::info!("refused an unknown or revoked token");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_scheme_name_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR  t0k "] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value}");
        }
        for value in ["Basic dTpw", "Bearer", "Bearer ", "Bearert0k", "t0k"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }
}
