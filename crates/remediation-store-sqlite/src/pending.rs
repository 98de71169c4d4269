//! Changes that wait for a second admin: proposed, then confirmed, cancelled, expired or
//! failed, each step one audit record in the same transaction as the status change.

use remediation_audit::AuditBody;
use remediation_core::{Actor, PendingChange, PendingStatus, StoreError};
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::StoreSqliteError;
use crate::store::{SqliteStore, append_audit, clamped_nanos, decode, decode_with, invalid_with, nanos, sql, sql_with};

impl SqliteStore {
    /// Stores `change` (status `pending`) and audits it (`change_proposed` by its proposer) in
    /// the same transaction.
    pub fn propose_change(&self, change: &PendingChange, proposer: &Actor) -> Result<(), StoreError> {
        let op = || format!("cannot record the proposed change {}", change.id);
        let proposed = nanos(change.proposed_at).map_err(invalid_with(&op))?;
        let expires = nanos(change.expires_at).map_err(invalid_with(&op))?;
        let json = serde_json::to_string(change).map_err(decode_with(&op))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            tx.execute(
                "INSERT INTO pending_changes (id, tenant, status, proposed_at, expires_at, change_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![change.id, self.tenant, change.status.as_str(), proposed, expires, json],
            )
            .map_err(sql_with(&op))?;
            let r = change.audit_record(proposer, change.proposed_at, serde_json::Value::Null);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))
        })
    }

    /// The pending change `id`, whatever its status.
    pub fn pending_change(&self, id: &str) -> Result<Option<PendingChange>, StoreError> {
        let op = format!("cannot read the pending change {id}");
        self.with_conn(|conn| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT change_json FROM pending_changes WHERE tenant = ?1 AND id = ?2",
                    params![self.tenant, id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql(&op))?;
            json.map(|j| serde_json::from_str(&j).map_err(decode(&op))).transpose()
        })
    }

    /// Every change with `status` (every change when `None`), oldest first.
    pub fn pending_changes(&self, status: Option<PendingStatus>) -> Result<Vec<PendingChange>, StoreError> {
        const OP: &str = "cannot list the pending changes";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT change_json FROM pending_changes WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2)
                     ORDER BY proposed_at, id",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![self.tenant, status.map(PendingStatus::as_str)], |row| row.get::<_, String>(0))
                .map_err(sql(OP))?;
            let mut all = Vec::new();
            for json in rows {
                all.push(serde_json::from_str(&json.map_err(sql(OP))?).map_err(decode(OP))?);
            }
            Ok(all)
        })
    }

    /// Pending changes whose `expires_at` is at or before `now`, oldest first.
    pub fn overdue_changes(&self, now: OffsetDateTime) -> Result<Vec<PendingChange>, StoreError> {
        let now = clamped_nanos(now);
        Ok(self
            .pending_changes(Some(PendingStatus::Pending))?
            .into_iter()
            .filter(|c| clamped_nanos(c.expires_at) <= now)
            .collect())
    }

    /// Closes the pending change `id` with status `to` (confirmed, cancelled, expired or
    /// failed) as `actor`, with `note`, audited (`change_<to>`) in the same transaction.
    /// Compare-and-set: a change that is no longer pending is refused, so two admins cannot
    /// both close it.
    pub fn close_change(
        &self,
        id: &str,
        to: PendingStatus,
        actor: &Actor,
        note: Option<String>,
        at: OffsetDateTime,
    ) -> Result<PendingChange, StoreError> {
        let op = || format!("cannot record that change {id} is {to}");
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            let json: Option<String> = tx
                .query_row(
                    "SELECT change_json FROM pending_changes WHERE tenant = ?1 AND id = ?2",
                    params![self.tenant, id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_with(&op))?;
            let Some(json) = json else {
                return Err(invalid_with(&op)(StoreSqliteError::UnknownPendingChange { id: id.chars().take(80).collect() }));
            };
            let current: PendingChange = serde_json::from_str(&json).map_err(decode_with(&op))?;
            if current.status != PendingStatus::Pending {
                return Err(invalid_with(&op)(StoreSqliteError::PendingChangeClosed {
                    id: id.to_owned(),
                    status: current.status.to_string(),
                }));
            }
            let closed = PendingChange {
                status: to,
                decided_by: Some(actor.name.clone()),
                decided_credential: actor.credential.clone(),
                decided_at: Some(at),
                note,
                ..current
            };
            let json = serde_json::to_string(&closed).map_err(decode_with(&op))?;
            tx.execute(
                "UPDATE pending_changes SET status = ?3, change_json = ?4 WHERE tenant = ?1 AND id = ?2 AND status = 'pending'",
                params![self.tenant, id, to.as_str(), json],
            )
            .map_err(sql_with(&op))?;
            let previous = serde_json::json!({"pending_change": id, "status": PendingStatus::Pending});
            let r = closed.audit_record(actor, at, previous);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(closed)
        })
    }
}

#[async_trait::async_trait]
impl remediation_core::PrincipalStore for SqliteStore {
    async fn create_principal(
        &self,
        name: &str,
        kind: remediation_core::PrincipalKind,
        role: remediation_core::Role,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<remediation_core::Principal, StoreError> {
        let name = name.to_owned();
        let actor = actor.clone();
        self.blocking(move |s| s.create_principal(&name, kind, role, &actor, at)).await
    }

    async fn principal(&self, name: &str) -> Result<Option<remediation_core::Principal>, StoreError> {
        let name = name.to_owned();
        self.blocking(move |s| s.principal(&name)).await
    }

    async fn list_principals(&self) -> Result<Vec<remediation_core::Principal>, StoreError> {
        self.blocking(move |s| s.list_principals()).await
    }

    async fn set_principal_role(
        &self,
        name: &str,
        expected: remediation_core::Role,
        role: remediation_core::Role,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<remediation_core::Principal, StoreError> {
        let name = name.to_owned();
        let actor = actor.clone();
        let comment = comment.to_owned();
        self.blocking(move |s| s.set_principal_role(&name, expected, role, &actor, &comment, at)).await
    }

    async fn revoke_principal(
        &self,
        name: &str,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let name = name.to_owned();
        let actor = actor.clone();
        let comment = comment.to_owned();
        self.blocking(move |s| s.revoke_principal(&name, &actor, &comment, at)).await
    }

    async fn create_token(
        &self,
        principal: &str,
        name: &str,
        token_hash: &str,
        expires_at: OffsetDateTime,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<remediation_core::ApiToken, StoreError> {
        let principal = principal.to_owned();
        let name = name.to_owned();
        let token_hash = token_hash.to_owned();
        let actor = actor.clone();
        self.blocking(move |s| s.create_token(&principal, &name, &token_hash, expires_at, &actor, at)).await
    }

    async fn list_tokens(&self) -> Result<Vec<remediation_core::ApiToken>, StoreError> {
        self.blocking(move |s| s.list_tokens()).await
    }

    async fn revoke_token(&self, name: &str, actor: &Actor, at: OffsetDateTime) -> Result<bool, StoreError> {
        let name = name.to_owned();
        let actor = actor.clone();
        self.blocking(move |s| s.revoke_token(&name, &actor, at)).await
    }

    async fn set_token_tenants(
        &self,
        name: &str,
        tenants: &[remediation_core::TenantId],
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (name, tenants, actor) = (name.to_owned(), tenants.to_vec(), actor.clone());
        self.blocking(move |s| s.set_token_tenants(&name, &tenants, &actor, at)).await
    }

    async fn credential_by_hash(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<remediation_core::Credential>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.blocking(move |s| s.credential_by_hash(&token_hash, now)).await
    }

    async fn propose_change(&self, change: &PendingChange, proposer: &Actor) -> Result<(), StoreError> {
        let change = change.clone();
        let proposer = proposer.clone();
        self.blocking(move |s| s.propose_change(&change, &proposer)).await
    }

    async fn pending_change(&self, id: &str) -> Result<Option<PendingChange>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |s| s.pending_change(&id)).await
    }

    async fn pending_changes(&self, status: Option<PendingStatus>) -> Result<Vec<PendingChange>, StoreError> {
        self.blocking(move |s| s.pending_changes(status)).await
    }

    async fn overdue_changes(&self, now: OffsetDateTime) -> Result<Vec<PendingChange>, StoreError> {
        self.blocking(move |s| s.overdue_changes(now)).await
    }

    async fn close_change(
        &self,
        id: &str,
        to: PendingStatus,
        actor: &Actor,
        note: Option<String>,
        at: OffsetDateTime,
    ) -> Result<PendingChange, StoreError> {
        let id = id.to_owned();
        let actor = actor.clone();
        self.blocking(move |s| s.close_change(&id, to, &actor, note, at)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]
mod tests {
    use remediation_core::Role;

    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + secs)
    }

    fn change(id: &str, expires: i64) -> PendingChange {
        PendingChange {
            id: id.to_owned(),
            status: PendingStatus::Pending,
            summary: "turn the kill switch off".to_owned(),
            change: serde_json::json!({"type": "kill_switch_off"}),
            reason: "incident over".to_owned(),
            proposed_by: "alice".to_owned(),
            proposed_credential: Some("alice-laptop".to_owned()),
            proposed_at: at(0),
            expires_at: at(expires),
            decided_by: None,
            decided_credential: None,
            decided_at: None,
            note: None,
        }
    }

    #[test]
    fn a_pending_change_is_closed_once_and_every_step_is_audited() {
        let store = SqliteStore::open_in_memory().expect("store");
        let alice = Actor::new("alice", Role::Admin).with_credential("alice-laptop");
        let bob = Actor::new("bob", Role::Admin).with_credential("bob-laptop");
        store.propose_change(&change("c1", 100), &alice).expect("propose");
        store.propose_change(&change("c2", 10), &alice).expect("propose");
        assert_eq!(store.pending_changes(Some(PendingStatus::Pending)).unwrap().len(), 2);
        assert_eq!(store.overdue_changes(at(9)).unwrap().len(), 0);
        assert_eq!(store.overdue_changes(at(10)).unwrap().iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c2"]);
        let closed = store.close_change("c1", PendingStatus::Confirmed, &bob, Some("checked".into()), at(5)).unwrap();
        assert_eq!((closed.status, closed.decided_by.as_deref()), (PendingStatus::Confirmed, Some("bob")));
        // Closed once: a second confirmation or a cancellation is refused.
        let again = store.close_change("c1", PendingStatus::Cancelled, &alice, None, at(6)).unwrap_err();
        assert!(matches!(StoreSqliteError::refusal_of(&again), Some(StoreSqliteError::PendingChangeClosed { .. })));
        let unknown = store.close_change("nope", PendingStatus::Confirmed, &bob, None, at(6)).unwrap_err();
        assert!(matches!(StoreSqliteError::refusal_of(&unknown), Some(StoreSqliteError::UnknownPendingChange { .. })));
        store.close_change("c2", PendingStatus::Expired, &Actor::system(), None, at(11)).expect("expire");
        assert_eq!(store.pending_change("c1").unwrap().map(|c| c.status), Some(PendingStatus::Confirmed));
        assert!(store.pending_changes(Some(PendingStatus::Pending)).unwrap().is_empty());
        let records = store.audit_records(None).unwrap();
        let steps: Vec<(String, String, Option<String>)> = records
            .iter()
            .filter_map(|r| match &r.body {
                AuditBody::Settings(s) => Some((s.setting_event.clone(), s.actor.clone(), s.credential.clone())),
                AuditBody::Transition(_) => None,
            })
            .collect();
        assert_eq!(
            steps,
            [
                ("change_proposed".into(), "alice".into(), Some("alice-laptop".into())),
                ("change_proposed".into(), "alice".into(), Some("alice-laptop".into())),
                ("change_confirmed".into(), "bob".into(), Some("bob-laptop".into())),
                ("change_expired".into(), "system".into(), None),
            ]
        );
        assert!(store.verify_audit().expect("verify").is_intact());
    }
}
