//! The verifiable log's part of [`remediation_core::AuditLog`]: leaf hashes (written by the
//! sequencer with each record), signed tree heads and published keys, all insert-only; and
//! the archives of the oldest records (retention).

use deadpool_postgres::GenericClient;
use remediation_core::{AuditArchive, LeafHash, StoreError, StoredPublicKey, StoredTreeHead};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{PostgresStore, clamped_nanos, from_nanos, pg};

/// The advisory lock class under which tree heads of one tenant are stored one at a time.
const TREE_HEAD_LOCK: i32 = 0x7265_6d01;

/// The SQLSTATE with which the archive function (`audit_archive`, schema version 4) refuses an
/// archive that does not fit the log.
const ARCHIVE_REFUSED: &str = "RMA01";

fn conflict(message: String) -> StoreError {
    StoreError::AuditLogConflict { message }
}

fn size_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn head_from_row(row: &tokio_postgres::Row) -> Result<StoredTreeHead, StoreError> {
    let timestamp: &str = row.get(2);
    let timestamp = OffsetDateTime::parse(timestamp, &Rfc3339).map_err(|source| StoreError::Backend {
        message: "a stored tree head has an unreadable timestamp".to_owned(),
        source: Box::new(source),
    })?;
    Ok(StoredTreeHead {
        tree_size: size_of(row.get(0)),
        root_hash: row.get(1),
        timestamp,
        key_id: row.get(3),
        signature: row.get(4),
    })
}

impl PostgresStore {
    /// How many leaves the tenant's log has.
    pub(crate) async fn log_size(&self) -> Result<u64, StoreError> {
        const OP: &str = "cannot read the size of the audit log";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT COALESCE(max(leaf_index) + 1, 0) FROM audit_leaves WHERE tenant = $1")
            .await
            .map_err(pg(OP))?;
        let row = client.query_one(&stmt, &[&self.tenant()]).await.map_err(pg(OP))?;
        Ok(size_of(row.get(0)))
    }

    /// Leaves `start..end`, refusing a range beyond the log.
    pub(crate) async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LeafHash>, StoreError> {
        const OP: &str = "cannot read the leaf hashes of the audit log";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT hash FROM audit_leaves WHERE tenant = $1 AND leaf_index >= $2 AND leaf_index < $3
                 ORDER BY leaf_index",
            )
            .await
            .map_err(pg(OP))?;
        let rows = client.query(&stmt, &[&self.tenant(), &to_i64(start), &to_i64(end)]).await.map_err(pg(OP))?;
        let wanted = end.saturating_sub(start);
        if start > end || rows.len() as u64 != wanted {
            return Err(conflict(format!(
                "leaves {start}..{end} were asked for, but the log holds {} of them",
                rows.len()
            )));
        }
        rows.iter()
            .map(|row| {
                let bytes: &[u8] = row.get(0);
                LeafHash::try_from(bytes).map_err(|_| StoreError::Backend {
                    message: format!("{OP}: a stored leaf hash is not 32 bytes"),
                    source: Box::new(std::io::Error::other("bad leaf hash length")),
                })
            })
            .collect()
    }

    /// Stores `head` with compare-and-set on the latest head's size, one signer at a time per
    /// tenant (a transaction-scoped advisory lock).
    pub(crate) async fn log_store_head(
        &self,
        head: &StoredTreeHead,
        previous_size: Option<u64>,
    ) -> Result<(), StoreError> {
        const OP: &str = "cannot store the signed tree head";
        let timestamp = head.timestamp.format(&Rfc3339).map_err(|source| StoreError::Backend {
            message: format!("{OP}: its timestamp cannot be written"),
            source: Box::new(source),
        })?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&TREE_HEAD_LOCK, &self.tenant()])
            .await
            .map_err(pg(OP))?;
        let latest: Option<i64> = tx
            .query_one("SELECT max(tree_size) FROM audit_tree_heads WHERE tenant = $1", &[&self.tenant()])
            .await
            .map_err(pg(OP))?
            .get(0);
        let latest = latest.map(size_of);
        if latest != previous_size {
            return Err(conflict(format!(
                "the latest stored head is of {latest:?} records, not {previous_size:?}: another signer stored one meanwhile"
            )));
        }
        let size: i64 = tx
            .query_one("SELECT COALESCE(max(leaf_index) + 1, 0) FROM audit_leaves WHERE tenant = $1", &[&self.tenant()])
            .await
            .map_err(pg(OP))?
            .get(0);
        if latest.is_some_and(|l| head.tree_size < l) || head.tree_size > size_of(size) {
            return Err(conflict(format!("a tree head of {} records does not fit the log", head.tree_size)));
        }
        tx.execute(
            "INSERT INTO audit_tree_heads (tenant, tree_size, root_hash, timestamp, key_id, signature)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&self.tenant(), &to_i64(head.tree_size), &head.root_hash, &timestamp, &head.key_id, &head.signature],
        )
        .await
        .map_err(pg(OP))?;
        self.commit(tx, OP).await
    }

    /// The head `clause` selects (`ORDER BY ... LIMIT 1`), if any.
    pub(crate) async fn log_head(&self, tree_size: Option<u64>) -> Result<Option<StoredTreeHead>, StoreError> {
        const OP: &str = "cannot read the signed tree heads";
        let client = self.client().await?;
        let rows = match tree_size {
            None => client
                .query(
                    "SELECT tree_size, root_hash, timestamp, key_id, signature FROM audit_tree_heads
                     WHERE tenant = $1 ORDER BY tree_size DESC, id DESC LIMIT 1",
                    &[&self.tenant()],
                )
                .await
                .map_err(pg(OP))?,
            Some(size) => client
                .query(
                    "SELECT tree_size, root_hash, timestamp, key_id, signature FROM audit_tree_heads
                     WHERE tenant = $1 AND tree_size = $2 ORDER BY id DESC LIMIT 1",
                    &[&self.tenant(), &to_i64(size)],
                )
                .await
                .map_err(pg(OP))?,
        };
        rows.first().map(head_from_row).transpose()
    }

    /// Publishes `key` for good; the same key again is a no-op, another under its id a conflict.
    pub(crate) async fn log_publish(&self, key: &StoredPublicKey) -> Result<(), StoreError> {
        const OP: &str = "cannot publish the public key";
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO audit_keys (tenant, key_id, algorithm, public_key, published_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, key_id) DO NOTHING",
                &[&self.tenant(), &key.key_id, &key.algorithm, &key.public_key, &clamped_nanos(key.published_at)],
            )
            .await
            .map_err(pg(OP))?;
        self.count_commit();
        let row = client
            .query_one(
                "SELECT algorithm, public_key FROM audit_keys WHERE tenant = $1 AND key_id = $2",
                &[&self.tenant(), &key.key_id],
            )
            .await
            .map_err(pg(OP))?;
        if row.get::<_, &str>(0) != key.algorithm || row.get::<_, &str>(1) != key.public_key {
            return Err(conflict(format!("another public key is already published under the id {}", key.key_id)));
        }
        Ok(())
    }

    /// Every published key, in the order first published.
    pub(crate) async fn log_keys(&self) -> Result<Vec<StoredPublicKey>, StoreError> {
        const OP: &str = "cannot read the published keys";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key_id, algorithm, public_key, published_at FROM audit_keys WHERE tenant = $1 ORDER BY id",
                &[&self.tenant()],
            )
            .await
            .map_err(pg(OP))?;
        Ok(rows
            .iter()
            .map(|row| StoredPublicKey {
                key_id: row.get(0),
                algorithm: row.get(1),
                public_key: row.get(2),
                published_at: from_nanos(row.get(3)),
            })
            .collect())
    }

    /// Registers `archive` and removes the records it holds, through the owner's
    /// `audit_archive` function (the runtime role holds no DELETE on `audit`), which checks
    /// the archive against the log under the chain lock (see
    /// [`remediation_core::AuditLog::archive_audit`]).
    pub(crate) async fn log_archive(&self, archive: &AuditArchive) -> Result<u64, StoreError> {
        const OP: &str = "cannot archive audit records";
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT audit_archive($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &self.tenant(),
                    &to_i64(archive.through_seq),
                    &archive.last_hash,
                    &to_i64(archive.tree_size),
                    &archive.root_hash,
                    &archive.file_sha256,
                    &clamped_nanos(archive.archived_at),
                ],
            )
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if db.code().code() == ARCHIVE_REFUSED => conflict(db.message().to_owned()),
                _ => pg(OP)(e),
            })?;
        self.count_commit();
        Ok(size_of(row.get(0)))
    }
}

/// The last archived record of `tenant` (its `seq` and `hash`), if any archive was registered.
pub(crate) async fn archived_in(
    client: &impl GenericClient,
    tenant: &str,
    op: &str,
) -> Result<Option<(u64, String)>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT through_seq, last_hash FROM audit_archives WHERE tenant = $1 ORDER BY through_seq DESC LIMIT 1",
        )
        .await
        .map_err(pg(op))?;
    let row = client.query_opt(&stmt, &[&tenant]).await.map_err(pg(op))?;
    Ok(row.map(|row| (size_of(row.get(0)), row.get(1))))
}
