//! The approval page's sessions (the `ui_sessions` table), keyed by the hash of the session
//! id. Writes go through the writer like every other write; reads run on the read pool.

use async_trait::async_trait;
use remediation_core::StoreError;
use remediation_core::store::{Flash, SessionIdHash, SessionStore, UiSession};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::store::{clamped_nanos, decode, encode, sql};

fn from_nanos(nanos: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn flash_json(flash: Option<&Flash>, op: &str) -> Result<Option<String>, StoreError> {
    flash.map(|f| serde_json::to_string(f).map_err(encode(op))).transpose()
}

fn read_flash(json: Option<String>, op: &str) -> Result<Option<Flash>, StoreError> {
    json.map(|j| serde_json::from_str(&j).map_err(decode(op))).transpose()
}

/// The stored flash of a session: `None` when there is no session, `Some(None)` when it has
/// no flash.
fn stored_flash(conn: &Connection, tenant: &str, id: &str, op: &str) -> Result<Option<Option<String>>, StoreError> {
    conn.prepare_cached("SELECT flash_json FROM ui_sessions WHERE tenant = ?1 AND id_hash = ?2")
        .and_then(|mut stmt| stmt.query_row(params![tenant, id], |row| row.get(0)).optional())
        .map_err(sql(op))
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, id: &SessionIdHash, session: &UiSession) -> Result<(), StoreError> {
        const OP: &str = "cannot store the session";
        let flash = flash_json(session.flash.as_ref(), OP)?;
        let (id, session) = (id.as_str().to_owned(), session.clone());
        self.write(move |conn, ctx| {
            conn.prepare_cached(
                "INSERT INTO ui_sessions (tenant, id_hash, token_hash, csrf, expires_at, flash_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, id_hash) DO UPDATE SET token_hash = ?3, csrf = ?4, expires_at = ?5, flash_json = ?6",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    ctx.tenant(),
                    id,
                    session.token_hash,
                    session.csrf,
                    clamped_nanos(session.expires_at),
                    flash
                ])
            })
            .map_err(sql(OP))?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id: &SessionIdHash, now: OffsetDateTime) -> Result<Option<UiSession>, StoreError> {
        const OP: &str = "cannot read the session";
        let id = id.as_str().to_owned();
        let now = clamped_nanos(now);
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let row: Option<(String, String, i64, Option<String>)> = conn
                    .prepare_cached(
                        "SELECT token_hash, csrf, expires_at, flash_json FROM ui_sessions
                         WHERE tenant = ?1 AND id_hash = ?2 AND expires_at > ?3",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![s.tenant, id, now], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                        })
                        .optional()
                    })
                    .map_err(sql(OP))?;
                row.map(|(token_hash, csrf, expires_at, flash)| {
                    Ok(UiSession {
                        token_hash,
                        csrf,
                        expires_at: from_nanos(expires_at),
                        flash: read_flash(flash, OP)?,
                    })
                })
                .transpose()
            })
        })
        .await
    }

    async fn set_flash(&self, id: &SessionIdHash, flash: &Flash) -> Result<bool, StoreError> {
        const OP: &str = "cannot store the session's message";
        let json = flash_json(Some(flash), OP)?;
        let id = id.as_str().to_owned();
        self.write(move |conn, ctx| {
            let changed = conn
                .prepare_cached("UPDATE ui_sessions SET flash_json = ?1 WHERE tenant = ?2 AND id_hash = ?3")
                .and_then(|mut stmt| stmt.execute(params![json, ctx.tenant(), id]))
                .map_err(sql(OP))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn take_flash(&self, id: &SessionIdHash) -> Result<Option<Flash>, StoreError> {
        const OP: &str = "cannot take the session's message";
        let id = id.as_str().to_owned();
        // Read and clear in the writer's transaction: no other write comes between them.
        self.write(move |conn, ctx| {
            let Some(Some(json)) = stored_flash(conn, &ctx.tenant(), &id, OP)? else { return Ok(None) };
            conn.prepare_cached("UPDATE ui_sessions SET flash_json = NULL WHERE tenant = ?1 AND id_hash = ?2")
                .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), id]))
                .map_err(sql(OP))?;
            read_flash(Some(json), OP)
        })
        .await
    }

    async fn delete_session(&self, id: &SessionIdHash) -> Result<bool, StoreError> {
        const OP: &str = "cannot delete the session";
        let id = id.as_str().to_owned();
        self.write(move |conn, ctx| {
            let deleted = conn
                .prepare_cached("DELETE FROM ui_sessions WHERE tenant = ?1 AND id_hash = ?2")
                .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), id]))
                .map_err(sql(OP))?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn prune_sessions(&self, now: OffsetDateTime, keep: usize) -> Result<u64, StoreError> {
        const OP: &str = "cannot prune the sessions";
        let now = clamped_nanos(now);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.write(move |conn, ctx| {
            let expired = conn
                .prepare_cached("DELETE FROM ui_sessions WHERE tenant = ?1 AND expires_at <= ?2")
                .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), now]))
                .map_err(sql(OP))?;
            // Beyond `keep`, those that expire first go (ties by id hash, as every store orders them).
            let beyond = conn
                .prepare_cached(
                    "DELETE FROM ui_sessions WHERE tenant = ?1 AND id_hash IN (
                         SELECT id_hash FROM ui_sessions WHERE tenant = ?1
                         ORDER BY expires_at DESC, id_hash DESC LIMIT -1 OFFSET ?2)",
                )
                .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), keep]))
                .map_err(sql(OP))?;
            Ok(u64::try_from(expired + beyond).unwrap_or(u64::MAX))
        })
        .await
    }
}
