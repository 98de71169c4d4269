//! [`SessionStore`]: the signed-in browsers of the approval page, kept in the store so every
//! server replica sharing it knows them.
//!
//! A session is found by the SHA-256 of its id ([`SessionIdHash`]), never by the id itself:
//! whoever reads the store's tables cannot present a stored value as a session cookie. The
//! token a session was started with is kept as its hash too, as credentials are.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;

/// The SHA-256 of a session id, as 64 lowercase hex characters: the only form of the id a
/// store ever receives. Made only by hashing the id, so a store cannot be handed the id itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionIdHash(String);

impl SessionIdHash {
    /// The hash of the session id `id` (the value of the browser's cookie).
    pub fn of(id: &str) -> Self {
        Self(crate::hash::sha256_hex(id.as_bytes()))
    }

    /// The hash as hex, as stores keep it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionIdHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A one-time message shown on the next page after a form post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flash {
    /// Success (`true`) or failure.
    pub ok: bool,
    /// The message.
    pub text: String,
}

/// One signed-in browser, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    /// The SHA-256 (hex) of the API token signed in with; never the token.
    pub token_hash: String,
    /// The session's CSRF token, compared with every form's.
    pub csrf: String,
    /// When the session ends; it is not returned at or after this instant.
    pub expires_at: OffsetDateTime,
    /// The message the next page shows, once.
    pub flash: Option<Flash>,
}

/// The approval page's sessions. Every write is its own serializable step.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session under `id`; replaces a session stored under the same hash (ids are
    /// 256 random bits, so that only happens when a caller reuses one).
    async fn create_session(&self, id: &SessionIdHash, session: &UiSession) -> Result<(), StoreError>;

    /// The session stored under `id`, if it is live at `now` (`now < expires_at`); `None`
    /// for an unknown or expired one.
    async fn session(&self, id: &SessionIdHash, now: OffsetDateTime) -> Result<Option<UiSession>, StoreError>;

    /// Replaces the session's flash; `false` (nothing written) when there is no such session.
    async fn set_flash(&self, id: &SessionIdHash, flash: &Flash) -> Result<bool, StoreError>;

    /// Reads and clears the session's flash in one step, so it is shown once even when two
    /// replicas render the session's pages at once; `None` when there is none (or no session).
    async fn take_flash(&self, id: &SessionIdHash) -> Result<Option<Flash>, StoreError>;

    /// Deletes the session; `false` when there was none.
    async fn delete_session(&self, id: &SessionIdHash) -> Result<bool, StoreError>;

    /// Deletes every session expired at `now`, then, while more than `keep` remain, those
    /// that expire first, so the table stays bounded whatever signs in. Returns how many
    /// were deleted.
    async fn prune_sessions(&self, now: OffsetDateTime, keep: usize) -> Result<u64, StoreError>;
}
