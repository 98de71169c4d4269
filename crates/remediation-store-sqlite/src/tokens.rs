//! API bearer tokens kept as SHA-256 hashes: create, list, revoke, look up.

use remediation_audit::AuditBody;
use remediation_core::{Role, SettingsRecord, StoreError};
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::StoreSqliteError;
use crate::store::{SqliteStore, append_audit, decode, invalid, nanos, sql};

/// The audit record of a token change: its name and role, never the token or its hash.
fn token_record(event: &str, actor: &str, at: OffsetDateTime, name: &str, role: Option<Role>) -> SettingsRecord {
    let value = serde_json::json!({"token": name, "role": role.map(|r| r.to_string())});
    SettingsRecord {
        setting_event: event.to_owned(),
        actor: actor.to_owned(),
        at,
        comment: Some(format!("API token `{name}`")),
        previous: serde_json::Value::Null,
        value,
    }
}

/// An API token as the store knows it: never the token itself, only its name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The name; the server records it as the actor.
    pub name: String,
    /// The role it grants.
    pub role: Role,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

impl SqliteStore {
    /// Stores a new token `name` with `role`, keeping only `token_hash` (the hex SHA-256 of
    /// the token), and audits it (`token_created` by `actor`, naming the token and its role) in
    /// the same transaction. A revoked token of the same name is replaced; a live one is an
    /// error.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        actor: &str,
        at: OffsetDateTime,
    ) -> Result<ApiToken, StoreError> {
        let op = || format!("cannot create the token `{name}`");
        let at_nanos = nanos(at).map_err(invalid(op()))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            let live: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM api_tokens WHERE tenant = ?1 AND name = ?2",
                    params![self.tenant, name],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql(op()))?;
            match live {
                Some(None) => return Err(invalid(op())(StoreSqliteError::TokenExists { name: name.to_owned() })),
                Some(Some(_)) => {
                    tx.execute("DELETE FROM api_tokens WHERE tenant = ?1 AND name = ?2", params![self.tenant, name])
                        .map_err(sql(op()))?;
                }
                None => {}
            }
            tx.execute(
                "INSERT INTO api_tokens (tenant, name, role, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![self.tenant, name, role.to_string(), token_hash, at_nanos],
            )
            .map_err(sql(op()))?;
            let record = token_record("token_created", actor, at, name, Some(role));
            append_audit(&tx, self.key.as_ref(), &AuditBody::Settings(record), &op)?;
            tx.commit().map_err(sql(op()))?;
            Ok(ApiToken { name: name.to_owned(), role, created_at: at, revoked_at: None })
        })
    }

    /// Every token, live and revoked, by name.
    pub fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        const OP: &str = "cannot list the tokens";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT name, role, created_at, revoked_at FROM api_tokens WHERE tenant = ?1 ORDER BY name")
                .map_err(sql(OP))?;
            let rows = stmt.query_map(params![self.tenant], row_parts).map_err(sql(OP))?;
            let mut tokens = Vec::new();
            for row in rows {
                tokens.push(token(row.map_err(sql(OP))?, OP)?);
            }
            Ok(tokens)
        })
    }

    /// Revokes the live token `name` and audits it (`token_revoked` by `actor`) in the same
    /// transaction; `false` (and nothing written) when there is none.
    pub fn revoke_token(&self, name: &str, actor: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        let op = || format!("cannot revoke the token `{name}`");
        let at_nanos = nanos(at).map_err(invalid(op()))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op()))?;
            let n = tx
                .execute(
                    "UPDATE api_tokens SET revoked_at = ?3 WHERE tenant = ?1 AND name = ?2 AND revoked_at IS NULL",
                    params![self.tenant, name, at_nanos],
                )
                .map_err(sql(op()))?;
            if n == 0 {
                return Ok(false);
            }
            let record = token_record("token_revoked", actor, at, name, None);
            append_audit(&tx, self.key.as_ref(), &AuditBody::Settings(record), &op)?;
            tx.commit().map_err(sql(op()))?;
            Ok(true)
        })
    }

    /// The live token whose hash is `token_hash`, if any.
    pub fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        const OP: &str = "cannot look up a token";
        self.with_conn(|conn| {
            let parts = conn
                .query_row(
                    "SELECT name, role, created_at, revoked_at FROM api_tokens
                     WHERE tenant = ?1 AND token_hash = ?2 AND revoked_at IS NULL",
                    params![self.tenant, token_hash],
                    row_parts,
                )
                .optional()
                .map_err(sql(OP))?;
            parts.map(|p| token(p, OP)).transpose()
        })
    }
}

type Parts = (String, String, i64, Option<i64>);

fn row_parts(row: &rusqlite::Row<'_>) -> rusqlite::Result<Parts> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn token((name, role, created, revoked): Parts, op: &str) -> Result<ApiToken, StoreError> {
    let role: Role = serde_json::from_value(serde_json::Value::String(role)).map_err(decode(op))?;
    let time = |n: i64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Ok(ApiToken { name, role, created_at: time(created), revoked_at: revoked.map(time) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_looked_up_by_hash_listed_and_revoked() {
        let store = SqliteStore::open_in_memory().expect("store");
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000);
        let t = store.create_token("alice", Role::Approver, "aa11", "local:root", at).expect("create");
        assert_eq!(t.role, Role::Approver);
        assert!(store.create_token("alice", Role::Admin, "bb22", "local:root", at).is_err(), "a live name is unique");
        assert_eq!(store.token_by_hash("aa11").expect("lookup").map(|t| t.name), Some("alice".to_owned()));
        assert_eq!(store.token_by_hash("zz").expect("lookup"), None);
        assert!(store.revoke_token("alice", "local:root", at).expect("revoke"));
        assert!(!store.revoke_token("alice", "local:root", at).expect("revoke again"));
        assert_eq!(store.token_by_hash("aa11").expect("lookup"), None, "revoked tokens do not authenticate");
        let listed = store.list_tokens().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at, Some(at));
        store.create_token("alice", Role::Viewer, "cc33", "local:root", at).expect("a revoked name can be reused");
        assert_eq!(store.token_by_hash("cc33").expect("lookup").map(|t| t.role), Some(Role::Viewer));
        // Every change is audited, naming the token but never its hash.
        let records = store.audit_records(None).expect("audit");
        let events: Vec<String> = records
            .iter()
            .filter_map(|r| match &r.body {
                AuditBody::Settings(s) => Some(s.setting_event.clone()),
                AuditBody::Transition(_) => None,
            })
            .collect();
        assert_eq!(events, ["token_created", "token_revoked", "token_created"]);
        let text = format!("{records:?}");
        assert!(!text.contains("aa11") && !text.contains("cc33"), "{text}");
        assert!(store.verify_audit().expect("verify").is_intact());
    }
}
