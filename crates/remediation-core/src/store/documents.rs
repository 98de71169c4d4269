//! [`DocumentStore`]: small named JSON documents of the handle's tenant, kept by collection
//! with compare-and-set on a revision: playbooks written through the API (one document per
//! playbook, the revision its version), playbook runs (one per run, every step's progress
//! written with compare-and-set so two workers never run a step twice), and the explicit links
//! of a person to their accounts.
//!
//! Core does not know a document's shape; the use case that owns a collection does. Every
//! write may carry its audit note ([`SettingsRecord`]), written in the same transaction as the
//! document, or neither is.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{SettingsRecord, StoreError};

/// Longest collection name and document id.
pub const MAX_DOCUMENT_ID: usize = 128;

/// Checks a collection name or document id: 1 to [`MAX_DOCUMENT_ID`] characters, ASCII
/// letters, digits, `-`, `_`, `.`, `@` and `+`, starting with a letter or digit.
pub fn check_document_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+');
    if id.is_empty() || id.len() > MAX_DOCUMENT_ID {
        return Err(format!("a document id has 1 to {MAX_DOCUMENT_ID} characters"));
    }
    if !id.chars().all(ok_char) || !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "document id `{}` may hold only letters, digits, `-`, `_`, `.`, `@` and `+`, and starts with a letter or digit",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Its collection (`playbook`, `playbook_run`, `identity_link`).
    pub collection: String,
    /// Its id, unique in the collection and tenant.
    pub id: String,
    /// 1 when created, one more with every write: the compare-and-set token.
    pub revision: u64,
    /// The document.
    pub body: serde_json::Value,
    /// Who wrote this revision.
    pub updated_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// One write of [`DocumentStore::put_document`].
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentWrite {
    /// The collection.
    pub collection: String,
    /// The document's id.
    pub id: String,
    /// The revision the writer read: 0 when the document must not exist yet.
    pub expected_revision: u64,
    /// The new body.
    pub body: serde_json::Value,
    /// Who writes it.
    pub actor: String,
    /// When.
    pub at: OffsetDateTime,
    /// The audit note written in the same transaction, if any.
    pub note: Option<SettingsRecord>,
}

/// Documents of the handle's tenant. Every write is its own serializable step.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Writes a document when its stored revision is `write.expected_revision` (0: it does not
    /// exist), storing revision `expected_revision + 1`, and appends `write.note` to the audit
    /// log in the same transaction. [`StoreError::DocumentChanged`] when the revision differs;
    /// nothing is written then.
    async fn put_document(&self, write: &DocumentWrite) -> Result<Document, StoreError>;

    /// The document, if it exists.
    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError>;

    /// Every document of the collection, by id.
    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError>;
}

/// The error [`DocumentStore::put_document`] gives when `found` is not `write`'s expectation.
pub fn document_changed(write: &DocumentWrite, found: u64) -> StoreError {
    StoreError::DocumentChanged {
        collection: write.collection.clone(),
        id: write.id.clone(),
        expected: write.expected_revision,
        found,
    }
}
