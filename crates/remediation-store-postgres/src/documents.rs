//! [`DocumentStore`] for [`PostgresStore`].

use async_trait::async_trait;
use remediation_core::{Document, DocumentStore, DocumentWrite, StoreError};

use crate::PostgresStore;

#[async_trait]
impl DocumentStore for PostgresStore {
    async fn put_document(&self, _write: &DocumentWrite) -> Result<Document, StoreError> {
        Err(StoreError::Unsupported { what: "documents (not yet)" })
    }

    async fn document(&self, _collection: &str, _id: &str) -> Result<Option<Document>, StoreError> {
        Err(StoreError::Unsupported { what: "documents (not yet)" })
    }

    async fn documents(&self, _collection: &str) -> Result<Vec<Document>, StoreError> {
        Err(StoreError::Unsupported { what: "documents (not yet)" })
    }
}
