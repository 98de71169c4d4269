//! [`DocumentStore`] for [`PostgresStore`] (the `documents` table, schema 10): each document's
//! body as JSON, its revision (the compare-and-set token), who wrote it and when, keyed by
//! (tenant, collection, id). A write is one transaction: a conditional insert (expected
//! revision 0) or a conditional update (the stored revision is the expected one), then the
//! audit note queued in `audit_pending`. The condition is checked by the statement that writes
//! the row, under its row lock, so of concurrent writers with the same expectation exactly one
//! writes; a writer that finds another revision rolls back, leaving no note.

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::store::document_changed;
use remediation_core::{Document, DocumentStore, DocumentWrite, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::Row;

use crate::store::{PostgresStore, decode, encode, insert_pending, pg};

/// The columns [`from_row`] reads, in its order.
const COLUMNS: &str = "collection, id, revision, body, updated_by, updated_at";

fn from_row(row: &Row, op: &str) -> Result<Document, StoreError> {
    let (collection, id): (String, String) = (row.get(0), row.get(1));
    let revision: i64 = row.get(2);
    let unreadable = |what: String| StoreError::Backend {
        message: format!("{op}: {collection} `{id}` {what}: the row was edited or corrupted"),
        source: what.into(),
    };
    let revision = u64::try_from(revision).map_err(|_| unreadable(format!("has a negative revision ({revision})")))?;
    let updated_at = OffsetDateTime::parse(row.get::<_, &str>(5), &Rfc3339)
        .map_err(|e| unreadable(format!("has an unreadable time ({e})")))?;
    let body = serde_json::from_str(row.get::<_, &str>(3)).map_err(decode(op))?;
    Ok(Document { collection, id, revision, body, updated_by: row.get(4), updated_at })
}

#[async_trait]
impl DocumentStore for PostgresStore {
    async fn put_document(&self, write: &DocumentWrite) -> Result<Document, StoreError> {
        const OP: &str = "cannot store the document";
        let body = serde_json::to_string(&write.body).map_err(encode(OP))?;
        let updated_at = write.at.format(&Rfc3339).map_err(|e| StoreError::Backend {
            message: format!("{OP}: its time cannot be written in RFC 3339"),
            source: Box::new(e),
        })?;
        let stored = Document {
            collection: write.collection.clone(),
            id: write.id.clone(),
            revision: write.expected_revision.saturating_add(1),
            body: write.body.clone(),
            updated_by: write.actor.clone(),
            updated_at: write.at,
        };
        let (expected, next) = (
            i64::try_from(write.expected_revision).unwrap_or(i64::MAX),
            i64::try_from(stored.revision).unwrap_or(i64::MAX),
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let written = if write.expected_revision == 0 {
            tx.execute(
                "INSERT INTO documents (tenant, collection, id, revision, body, updated_by, updated_at)
                 VALUES ($1, $2, $3, 1, $4, $5, $6)
                 ON CONFLICT (tenant, collection, id) DO NOTHING",
                &[&self.tenant(), &write.collection, &write.id, &body, &write.actor, &updated_at],
            )
            .await
            .map_err(pg(OP))?
        } else {
            tx.execute(
                "UPDATE documents SET revision = $5, body = $6, updated_by = $7, updated_at = $8
                 WHERE tenant = $1 AND collection = $2 AND id = $3 AND revision = $4",
                &[&self.tenant(), &write.collection, &write.id, &expected, &next, &body, &write.actor, &updated_at],
            )
            .await
            .map_err(pg(OP))?
        };
        if written == 0 {
            let found = tx
                .query_opt(
                    "SELECT revision FROM documents WHERE tenant = $1 AND collection = $2 AND id = $3",
                    &[&self.tenant(), &write.collection, &write.id],
                )
                .await
                .map_err(pg(OP))?
                .map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
            // Dropping the transaction rolls it back: nothing is written.
            return Err(document_changed(write, found));
        }
        if let Some(note) = &write.note {
            insert_pending(&tx, self.tenant(), &AuditBody::Settings(note.clone()), OP).await?;
        }
        self.commit(tx, OP).await?;
        Ok(stored)
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        const OP: &str = "cannot read the document";
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM documents WHERE tenant = $1 AND collection = $2 AND id = $3"),
                &[&self.tenant(), &collection, &id],
            )
            .await
            .map_err(pg(OP))?;
        row.map(|row| from_row(&row, OP)).transpose()
    }

    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError> {
        const OP: &str = "cannot list the documents";
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM documents WHERE tenant = $1 AND collection = $2 ORDER BY id COLLATE \"C\""
                ),
                &[&self.tenant(), &collection],
            )
            .await
            .map_err(pg(OP))?;
        rows.iter().map(|row| from_row(row, OP)).collect()
    }
}
