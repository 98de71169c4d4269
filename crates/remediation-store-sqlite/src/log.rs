//! The verifiable log in SQLite: leaf hashes (`audit_leaves`), signed tree heads
//! (`audit_tree_heads`) and published keys (`audit_keys`), all insert-only (schema version 10).

use remediation_audit::AuditRecordExt as _;
use remediation_audit::merkle::{leaf_hash, record_leaf_hash};
use remediation_core::{AuditArchive, AuditRecord, LeafHash, StoreError, StoredPublicKey, StoredTreeHead};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{SqliteStore, clamped_nanos, sql};

/// Computes the leaf hash of every record already stored, for the migration that adds
/// `audit_leaves` (in its transaction). A record whose JSON no longer parses gets the leaf hash
/// of its bytes as stored: `audit verify` reports the record, and the tree covers what is there.
pub(crate) fn backfill_leaves(conn: &Connection) -> rusqlite::Result<()> {
    let mut read = conn.prepare("SELECT tenant, seq, record_json FROM audit ORDER BY seq")?;
    let mut insert = conn.prepare("INSERT INTO audit_leaves (tenant, leaf_index, hash) VALUES (?1, ?2, ?3)")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let (tenant, seq, json): (String, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let leaf = AuditRecord::from_json(&json)
            .ok()
            .and_then(|record| record_leaf_hash(&record).ok())
            .unwrap_or_else(|| leaf_hash(json.as_bytes()));
        insert.execute(params![tenant, seq - 1, leaf.0.as_slice()])?;
    }
    Ok(())
}

/// Stores the leaf hash of the record with `seq` whose canonical JSON is `json`, in the
/// sequencer's transaction. The table's insert trigger refuses a leaf that does not follow the
/// last one.
pub(crate) fn insert_leaf(conn: &Connection, tenant: &str, seq: i64, json: &str) -> rusqlite::Result<()> {
    let leaf = leaf_hash(json.as_bytes());
    conn.prepare_cached("INSERT INTO audit_leaves (tenant, leaf_index, hash) VALUES (?1, ?2, ?3)")?
        .execute(params![tenant, seq - 1, leaf.0.as_slice()])
        .map(|_| ())
}

/// How many leaves the log of `tenant` has.
fn size_in(conn: &Connection, tenant: &str) -> rusqlite::Result<u64> {
    let size: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM audit_leaves WHERE tenant = ?1")?
        .query_row(params![tenant], |row| row.get(0))?;
    Ok(u64::try_from(size).unwrap_or(0))
}

fn conflict(message: String) -> StoreError {
    StoreError::AuditLogConflict { message }
}

fn unreadable(what: String) -> StoreError {
    StoreError::Backend {
        message: format!("{what}: the row was edited or corrupted"),
        source: Box::new(crate::StoreSqliteError::Unreadable { what }),
    }
}

const HEAD_COLUMNS: &str = "tree_size, root_hash, timestamp, key_id, signature";

/// A row of `audit_tree_heads` (the columns of [`HEAD_COLUMNS`]).
fn head_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn to_head(row: (i64, String, String, String, String)) -> Result<StoredTreeHead, StoreError> {
    let (tree_size, root_hash, timestamp, key_id, signature) = row;
    let timestamp = OffsetDateTime::parse(&timestamp, &Rfc3339)
        .map_err(|_| unreadable(format!("the tree head of {tree_size} records has an unreadable timestamp")))?;
    let tree_size =
        u64::try_from(tree_size).map_err(|_| unreadable(format!("a tree head has a negative size ({tree_size})")))?;
    Ok(StoredTreeHead { tree_size, root_hash, timestamp, key_id, signature })
}

fn latest_in(conn: &Connection, tenant: &str) -> Result<Option<StoredTreeHead>, StoreError> {
    const OP: &str = "cannot read the latest signed tree head";
    conn.prepare_cached(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_tree_heads WHERE tenant = ?1 ORDER BY tree_size DESC, id DESC LIMIT 1"
    ))
    .and_then(|mut stmt| stmt.query_row(params![tenant], head_row).optional())
    .map_err(sql(OP))?
    .map(to_head)
    .transpose()
}

impl SqliteStore {
    /// [`remediation_core::AuditLog::audit_size`], on the calling (blocking) thread.
    pub(crate) fn audit_size_now(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| size_in(conn, &self.tenant).map_err(sql("cannot read the size of the audit log")))
    }

    /// [`remediation_core::AuditLog::leaf_hashes`], on the calling (blocking) thread.
    pub(crate) fn leaf_hashes_now(&self, start: u64, end: u64) -> Result<Vec<LeafHash>, StoreError> {
        const OP: &str = "cannot read the audit log's leaf hashes";
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            let size = size_in(&tx, &self.tenant).map_err(sql(OP))?;
            if start > end || end > size {
                return Err(conflict(format!("leaves {start}..{end} were asked for, but the log has {size} leaves")));
            }
            let mut leaves = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT leaf_index, hash FROM audit_leaves
                         WHERE tenant = ?1 AND leaf_index >= ?2 AND leaf_index < ?3 ORDER BY leaf_index",
                    )
                    .map_err(sql(OP))?;
                let (from, to) = (i64::try_from(start).unwrap_or(i64::MAX), i64::try_from(end).unwrap_or(i64::MAX));
                let mut rows = stmt.query(params![self.tenant, from, to]).map_err(sql(OP))?;
                let mut expected = from;
                while let Some(row) = rows.next().map_err(sql(OP))? {
                    let index: i64 = row.get(0).map_err(sql(OP))?;
                    let bytes: Vec<u8> = row.get(1).map_err(sql(OP))?;
                    let hash = LeafHash::try_from(bytes.as_slice())
                        .ok()
                        .filter(|_| index == expected)
                        .ok_or_else(|| unreadable(format!("leaf {expected} of the audit log")))?;
                    leaves.push(hash);
                    expected += 1;
                }
                if expected != to {
                    return Err(unreadable(format!("leaf {expected} of the audit log")));
                }
            }
            tx.finish().map_err(sql(OP))?;
            Ok(leaves)
        })
    }

    /// [`remediation_core::AuditLog::latest_tree_head`], on the calling (blocking) thread.
    pub(crate) fn latest_tree_head_now(&self) -> Result<Option<StoredTreeHead>, StoreError> {
        self.with_conn(|conn| latest_in(conn, &self.tenant))
    }

    /// [`remediation_core::AuditLog::tree_head_at`], on the calling (blocking) thread.
    pub(crate) fn tree_head_at_now(&self, tree_size: u64) -> Result<Option<StoredTreeHead>, StoreError> {
        const OP: &str = "cannot read a signed tree head";
        let size = i64::try_from(tree_size).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {HEAD_COLUMNS} FROM audit_tree_heads WHERE tenant = ?1 AND tree_size = ?2 ORDER BY id DESC LIMIT 1"
            ))
            .and_then(|mut stmt| stmt.query_row(params![self.tenant, size], head_row).optional())
            .map_err(sql(OP))?
            .map(to_head)
            .transpose()
        })
    }

    /// [`remediation_core::AuditLog::published_keys`], on the calling (blocking) thread.
    pub(crate) fn published_keys_now(&self) -> Result<Vec<StoredPublicKey>, StoreError> {
        const OP: &str = "cannot read the published keys";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key_id, algorithm, public_key, published_at FROM audit_keys WHERE tenant = ?1 ORDER BY rowid",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![self.tenant], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
                })
                .map_err(sql(OP))?;
            let mut keys = Vec::new();
            for row in rows {
                let (key_id, algorithm, public_key, at) = row.map_err(sql(OP))?;
                let published_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at))
                    .map_err(|_| unreadable(format!("published key {key_id} has an unreadable time")))?;
                keys.push(StoredPublicKey { key_id, algorithm, public_key, published_at });
            }
            Ok(keys)
        })
    }
}

/// Appends `head` in the writer's transaction (see
/// [`remediation_core::AuditLog::store_tree_head`]).
pub(crate) fn store_tree_head_in(
    conn: &Connection,
    tenant: &str,
    head: &StoredTreeHead,
    previous_size: Option<u64>,
) -> Result<(), StoreError> {
    const OP: &str = "cannot store the signed tree head";
    let latest = latest_in(conn, tenant)?.map(|h| h.tree_size);
    if latest != previous_size {
        return Err(conflict(format!(
            "the tree head of {} records was signed after the head of {} records, but the latest stored head is now of {} records: another signer stored one meanwhile",
            head.tree_size,
            previous_size.map_or_else(|| "no".to_owned(), |s| s.to_string()),
            latest.map_or_else(|| "no".to_owned(), |s| s.to_string()),
        )));
    }
    if latest.is_some_and(|l| head.tree_size < l) {
        return Err(conflict(format!(
            "a tree head of {} records would shrink the log below the latest head's size",
            head.tree_size
        )));
    }
    let size = size_in(conn, tenant).map_err(sql(OP))?;
    if head.tree_size > size {
        return Err(conflict(format!("a tree head of {} records, but the log has {size}", head.tree_size)));
    }
    let timestamp = head.timestamp.format(&Rfc3339).map_err(|e| StoreError::Backend {
        message: format!("{OP}: its timestamp cannot be written in RFC 3339"),
        source: Box::new(e),
    })?;
    let tree_size = i64::try_from(head.tree_size).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO audit_tree_heads (tenant, tree_size, root_hash, timestamp, key_id, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![tenant, tree_size, head.root_hash, timestamp, head.key_id, head.signature])
    })
    .map_err(sql(OP))?;
    Ok(())
}

/// Publishes `key` in the writer's transaction (see
/// [`remediation_core::AuditLog::publish_key`]).
pub(crate) fn publish_key_in(conn: &Connection, tenant: &str, key: &StoredPublicKey) -> Result<(), StoreError> {
    const OP: &str = "cannot publish the key";
    let existing: Option<String> = conn
        .prepare_cached("SELECT public_key FROM audit_keys WHERE tenant = ?1 AND key_id = ?2")
        .and_then(|mut stmt| stmt.query_row(params![tenant, key.key_id], |row| row.get(0)).optional())
        .map_err(sql(OP))?;
    match existing {
        Some(public) if public == key.public_key => Ok(()),
        Some(_) => Err(conflict(format!("another public key is already published under the id {}", key.key_id))),
        None => conn
            .prepare_cached(
                "INSERT INTO audit_keys (tenant, key_id, algorithm, public_key, published_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    tenant,
                    key.key_id,
                    key.algorithm,
                    key.public_key,
                    clamped_nanos(key.published_at)
                ])
            })
            .map(|_| ())
            .map_err(sql(OP)),
    }
}

/// The last archived record of `tenant` (its `seq` and `hash`), if any archive was registered.
pub(crate) fn archived_in(conn: &Connection, tenant: &str) -> rusqlite::Result<Option<(u64, String)>> {
    conn.prepare_cached(
        "SELECT through_seq, last_hash FROM audit_archives WHERE tenant = ?1 ORDER BY through_seq DESC LIMIT 1",
    )?
    .query_row(params![tenant], |row| Ok((u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0), row.get(1)?)))
    .optional()
}

/// Registers `archive` and removes the records it holds, in the writer's transaction (see
/// [`remediation_core::AuditLog::archive_audit`]).
pub(crate) fn archive_in(conn: &Connection, tenant: &str, archive: &AuditArchive) -> Result<u64, StoreError> {
    const OP: &str = "cannot archive audit records";
    let through = i64::try_from(archive.through_seq).unwrap_or(i64::MAX);
    let stored: Option<String> = conn
        .prepare_cached("SELECT hash FROM audit WHERE tenant = ?1 AND seq = ?2")
        .and_then(|mut stmt| stmt.query_row(params![tenant, through], |row| row.get(0)).optional())
        .map_err(sql(OP))?;
    if stored.as_deref() != Some(archive.last_hash.as_str()) {
        return Err(conflict(format!(
            "record {} is not stored with the archive's last hash: the log changed since the archive was written",
            archive.through_seq
        )));
    }
    let newest: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM audit WHERE tenant = ?1")
        .and_then(|mut stmt| stmt.query_row(params![tenant], |row| row.get(0)))
        .map_err(sql(OP))?;
    if through >= newest {
        return Err(conflict("the newest audit record is never archived".to_owned()));
    }
    let covered = latest_in(conn, tenant)?.is_some_and(|h| h.tree_size >= archive.through_seq);
    if !covered {
        return Err(conflict(format!("no stored signed tree head covers record {}", archive.through_seq)));
    }
    conn.prepare_cached(
        "INSERT INTO audit_archives (tenant, through_seq, last_hash, tree_size, root_hash, file_sha256, archived_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant,
            through,
            archive.last_hash,
            i64::try_from(archive.tree_size).unwrap_or(i64::MAX),
            archive.root_hash,
            archive.file_sha256,
            clamped_nanos(archive.archived_at)
        ])
    })
    .map_err(sql(OP))?;
    let removed = conn
        .prepare_cached("DELETE FROM audit WHERE tenant = ?1 AND seq <= ?2")
        .and_then(|mut stmt| stmt.execute(params![tenant, through]))
        .map_err(sql(OP))?;
    Ok(removed as u64)
}
