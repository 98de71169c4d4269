//! The approval page's sessions (the `ui_sessions` table), keyed by the hash of the session
//! id, shared by every replica. Each call is one statement, except taking the flash: one
//! transaction that locks the row, so two replicas never both show it.

use async_trait::async_trait;
use remediation_core::StoreError;
use remediation_core::store::{Flash, SessionIdHash, SessionStore, UiSession};
use time::OffsetDateTime;

use crate::store::{PostgresStore, clamped_nanos, decode, encode, from_nanos, pg};

fn flash_json(flash: Option<&Flash>, op: &str) -> Result<Option<String>, StoreError> {
    flash.map(|f| serde_json::to_string(f).map_err(encode(op))).transpose()
}

fn read_flash(json: Option<&str>, op: &str) -> Result<Option<Flash>, StoreError> {
    json.map(|j| serde_json::from_str(j).map_err(decode(op))).transpose()
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, id: &SessionIdHash, session: &UiSession) -> Result<(), StoreError> {
        const OP: &str = "cannot store the session";
        let flash = flash_json(session.flash.as_ref(), OP)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO ui_sessions (tenant, id_hash, token_hash, csrf, expires_at, flash_json)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, id_hash) DO UPDATE SET token_hash = $3, csrf = $4, expires_at = $5, flash_json = $6",
            )
            .await
            .map_err(pg(OP))?;
        client
            .execute(
                &stmt,
                &[
                    &self.tenant(),
                    &id.as_str(),
                    &session.token_hash,
                    &session.csrf,
                    &clamped_nanos(session.expires_at),
                    &flash,
                ],
            )
            .await
            .map_err(pg(OP))?;
        self.count_commit();
        Ok(())
    }

    async fn session(&self, id: &SessionIdHash, now: OffsetDateTime) -> Result<Option<UiSession>, StoreError> {
        const OP: &str = "cannot read the session";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT token_hash, csrf, expires_at, flash_json FROM ui_sessions
                 WHERE tenant = $1 AND id_hash = $2 AND expires_at > $3",
            )
            .await
            .map_err(pg(OP))?;
        let row =
            client.query_opt(&stmt, &[&self.tenant(), &id.as_str(), &clamped_nanos(now)]).await.map_err(pg(OP))?;
        row.map(|row| {
            Ok(UiSession {
                token_hash: row.get(0),
                csrf: row.get(1),
                expires_at: from_nanos(row.get(2)),
                flash: read_flash(row.get(3), OP)?,
            })
        })
        .transpose()
    }

    async fn set_flash(&self, id: &SessionIdHash, flash: &Flash) -> Result<bool, StoreError> {
        const OP: &str = "cannot store the session's message";
        let json = flash_json(Some(flash), OP)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("UPDATE ui_sessions SET flash_json = $1 WHERE tenant = $2 AND id_hash = $3")
            .await
            .map_err(pg(OP))?;
        let changed = client.execute(&stmt, &[&json, &self.tenant(), &id.as_str()]).await.map_err(pg(OP))?;
        self.count_commit();
        Ok(changed > 0)
    }

    async fn take_flash(&self, id: &SessionIdHash) -> Result<Option<Flash>, StoreError> {
        const OP: &str = "cannot take the session's message";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        // The row lock makes a second taker wait, then read the cleared flash.
        let stmt = tx
            .prepare_cached("SELECT flash_json FROM ui_sessions WHERE tenant = $1 AND id_hash = $2 FOR UPDATE")
            .await
            .map_err(pg(OP))?;
        let row = tx.query_opt(&stmt, &[&self.tenant(), &id.as_str()]).await.map_err(pg(OP))?;
        let Some(json) = row.and_then(|r| r.get::<_, Option<String>>(0)) else {
            return Ok(None);
        };
        let clear = tx
            .prepare_cached("UPDATE ui_sessions SET flash_json = NULL WHERE tenant = $1 AND id_hash = $2")
            .await
            .map_err(pg(OP))?;
        tx.execute(&clear, &[&self.tenant(), &id.as_str()]).await.map_err(pg(OP))?;
        self.commit(tx, OP).await?;
        read_flash(Some(&json), OP)
    }

    async fn delete_session(&self, id: &SessionIdHash) -> Result<bool, StoreError> {
        const OP: &str = "cannot delete the session";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM ui_sessions WHERE tenant = $1 AND id_hash = $2")
            .await
            .map_err(pg(OP))?;
        let deleted = client.execute(&stmt, &[&self.tenant(), &id.as_str()]).await.map_err(pg(OP))?;
        self.count_commit();
        Ok(deleted > 0)
    }

    async fn prune_sessions(&self, now: OffsetDateTime, keep: usize) -> Result<u64, StoreError> {
        const OP: &str = "cannot prune the sessions";
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // One statement: the expired ones, then beyond `keep` those that expire first (ties by
        // id hash, as every store orders them).
        let stmt = client
            .prepare_cached(
                "DELETE FROM ui_sessions WHERE tenant = $1 AND (expires_at <= $2 OR id_hash IN (
                     SELECT id_hash FROM ui_sessions WHERE tenant = $1 AND expires_at > $2
                     ORDER BY expires_at DESC, id_hash DESC OFFSET $3))",
            )
            .await
            .map_err(pg(OP))?;
        let deleted = client.execute(&stmt, &[&self.tenant(), &clamped_nanos(now), &keep]).await.map_err(pg(OP))?;
        self.count_commit();
        Ok(deleted)
    }
}
