//! [`DocumentStore`] for [`SqliteStore`] (the `documents` table, schema 18): each document's
//! body as JSON, its revision (the compare-and-set token), who wrote it and when, keyed by
//! (tenant, collection, id). A write goes through the writer: it compares the stored revision
//! with the expected one, writes the row and queues its audit note in the request's
//! savepoint, so the note is sealed with the document or neither is kept. Reads run on the
//! read pool, always filtered by the handle's tenant.

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::store::document_changed;
use remediation_core::{Document, DocumentStore, DocumentWrite, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::SqliteStore;
use crate::store::{decode, encode, prepare, sql};

/// The columns [`from_row`] reads, in its order.
const COLUMNS: &str = "collection, id, revision, body, updated_by, updated_at";

/// A `documents` row as stored, before its columns are checked.
type RawRow = (String, String, i64, String, String, String);

fn raw_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

/// A stored column this build cannot read: the row was edited behind the store's back.
fn unreadable(what: String) -> StoreError {
    StoreError::Backend {
        message: format!("{what}: the row was edited or corrupted"),
        source: Box::new(crate::StoreSqliteError::Unreadable { what }),
    }
}

fn from_row(row: RawRow, op: &str) -> Result<Document, StoreError> {
    let (collection, id, revision, body, updated_by, updated_at) = row;
    let revision = u64::try_from(revision)
        .map_err(|_| unreadable(format!("{collection} `{id}` has a negative revision ({revision})")))?;
    let updated_at = OffsetDateTime::parse(&updated_at, &Rfc3339)
        .map_err(|_| unreadable(format!("{collection} `{id}` has an unreadable time")))?;
    let body = serde_json::from_str(&body).map_err(decode(op))?;
    Ok(Document { collection, id, revision, body, updated_by, updated_at })
}

/// The stored revision of the document, 0 when there is none.
fn revision(conn: &Connection, tenant: &str, collection: &str, id: &str, op: &str) -> Result<u64, StoreError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT revision FROM documents WHERE tenant = ?1 AND collection = ?2 AND id = ?3")
        .and_then(|mut stmt| stmt.query_row(params![tenant, collection, id], |row| row.get(0)).optional())
        .map_err(sql(op))?;
    match found {
        None => Ok(0),
        Some(n) => {
            u64::try_from(n).map_err(|_| unreadable(format!("{collection} `{id}` has a negative revision ({n})")))
        }
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn put_document(&self, write: &DocumentWrite) -> Result<Document, StoreError> {
        const OP: &str = "cannot store the document";
        let body = serde_json::to_string(&write.body).map_err(encode(OP))?;
        let updated_at = write.at.format(&Rfc3339).map_err(|e| StoreError::Backend {
            message: format!("{OP}: its time cannot be written in RFC 3339"),
            source: Box::new(e),
        })?;
        let write = write.clone();
        self.write(move |conn, ctx| {
            let tenant = ctx.tenant();
            let found = revision(conn, &tenant, &write.collection, &write.id, OP)?;
            if found != write.expected_revision {
                return Err(document_changed(&write, found));
            }
            let stored = Document {
                collection: write.collection.clone(),
                id: write.id.clone(),
                revision: found + 1,
                body: write.body.clone(),
                updated_by: write.actor.clone(),
                updated_at: write.at,
            };
            conn.prepare_cached(
                "INSERT INTO documents (tenant, collection, id, revision, body, updated_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, collection, id) DO UPDATE SET revision = excluded.revision,
                     body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    tenant,
                    stored.collection,
                    stored.id,
                    i64::try_from(stored.revision).unwrap_or(i64::MAX),
                    body,
                    stored.updated_by,
                    updated_at,
                ])
            })
            .map_err(sql(OP))?;
            if let Some(note) = &write.note {
                ctx.enqueue_audit(prepare(AuditBody::Settings(note.clone()), || OP.to_owned())?);
            }
            Ok(stored)
        })
        .await
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        const OP: &str = "cannot read the document";
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let row = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM documents WHERE tenant = ?1 AND collection = ?2 AND id = ?3"
                    ))
                    .and_then(|mut stmt| stmt.query_row(params![s.tenant, collection, id], raw_row).optional())
                    .map_err(sql(OP))?;
                row.map(|row| from_row(row, OP)).transpose()
            })
        })
        .await
    }

    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError> {
        const OP: &str = "cannot list the documents";
        let collection = collection.to_owned();
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM documents WHERE tenant = ?1 AND collection = ?2 ORDER BY id"
                    ))
                    .map_err(sql(OP))?;
                let rows = stmt.query_map(params![s.tenant, collection], raw_row).map_err(sql(OP))?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(from_row(row.map_err(sql(OP))?, OP)?);
                }
                Ok(out)
            })
        })
        .await
    }
}
