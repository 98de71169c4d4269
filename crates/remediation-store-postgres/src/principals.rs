//! Principals with a role per tenant, their API tokens (hashes only), and the changes that wait
//! for a second admin; every write one transaction with its audit entry.

use async_trait::async_trait;
use remediation_audit::AuditBody;
use remediation_core::{
    Actor, ApiToken, Credential, PendingChange, PendingStatus, Principal, PrincipalKind, PrincipalStore, Role,
    SettingsRecord, StoreError,
};
use time::OffsetDateTime;

use crate::StorePostgresError;
use crate::store::{PostgresStore, clamped_nanos, decode, encode, from_nanos, insert_pending, invalid, nanos, pg};

/// Checks a new principal or token name by the rule every store applies.
fn check_name(name: &str) -> Result<(), StorePostgresError> {
    remediation_core::store::check_principal_name(name)
        .map_err(|why| StorePostgresError::InvalidName { name: name.chars().take(80).collect(), why })
}

fn role_of(s: &str, op: &str) -> Result<Role, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(decode(op))
}

fn principal_of(row: &tokio_postgres::Row, op: &str) -> Result<Principal, StoreError> {
    Ok(Principal {
        name: row.get(0),
        kind: PrincipalKind::parse(row.get::<_, &str>(1)),
        role: row.get::<_, Option<&str>>(2).map(|r| role_of(r, op)).transpose()?,
        created_at: from_nanos(row.get(3)),
        revoked_at: row.get::<_, Option<i64>>(4).map(from_nanos),
    })
}

const PRINCIPAL: &str = "SELECT p.name, p.kind, r.role, p.created_at, p.revoked_at FROM principals p
     JOIN principal_roles r ON r.principal = p.name AND r.tenant = $1 WHERE p.name = $2";

async fn load_principal(
    client: &impl deadpool_postgres::GenericClient,
    tenant: &str,
    name: &str,
    lock: bool,
    op: &str,
) -> Result<Option<Principal>, StoreError> {
    let sql = if lock { format!("{PRINCIPAL} FOR UPDATE OF p") } else { PRINCIPAL.to_owned() };
    let stmt = client.prepare_cached(&sql).await.map_err(pg(op))?;
    client.query_opt(&stmt, &[&tenant, &name]).await.map_err(pg(op))?.map(|row| principal_of(&row, op)).transpose()
}

/// The principal `name`, locked, which must exist and not be revoked.
async fn live_principal(
    client: &impl deadpool_postgres::GenericClient,
    tenant: &str,
    name: &str,
    op: &str,
) -> Result<Principal, StoreError> {
    match load_principal(client, tenant, name, true, op).await? {
        None => Err(invalid(op)(StorePostgresError::UnknownPrincipal { name: name.to_owned() })),
        Some(p) if p.revoked_at.is_some() => {
            Err(invalid(op)(StorePostgresError::PrincipalRevoked { name: name.to_owned() }))
        }
        Some(p) => Ok(p),
    }
}

#[async_trait]
impl PrincipalStore for PostgresStore {
    async fn create_principal(
        &self,
        name: &str,
        kind: PrincipalKind,
        role: Role,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError> {
        let op = format!("cannot create the principal `{name}`");
        check_name(name).map_err(invalid(&op))?;
        if role == Role::System {
            return Err(invalid(&op)(StorePostgresError::InvalidName {
                name: name.to_owned(),
                why: "the system role is never granted",
            }));
        }
        let at_nanos = nanos(at).map_err(invalid(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        tx.execute(
            "INSERT INTO principals (name, kind, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&name, &kind.as_str(), &at_nanos],
        )
        .await
        .map_err(pg(&op))?;
        // A principal of another tenant (the same person working in several) gets a role here,
        // keeping its kind; a revoked one, or one already here, is never created again.
        let row = tx
            .query_one("SELECT kind, created_at, revoked_at FROM principals WHERE name = $1 FOR UPDATE", &[&name])
            .await
            .map_err(pg(&op))?;
        let (kind, created_at) = (PrincipalKind::parse(row.get(0)), from_nanos(row.get(1)));
        let here = load_principal(&tx, self.tenant(), name, false, &op).await?.is_some();
        if row.get::<_, Option<i64>>(2).is_some() || here {
            return Err(invalid(&op)(StorePostgresError::PrincipalExists { name: name.to_owned() }));
        }
        tx.execute(
            "INSERT INTO principal_roles (tenant, principal, role) VALUES ($1, $2, $3)",
            &[&self.tenant(), &name, &role.to_string()],
        )
        .await
        .map_err(pg(&op))?;
        let r = SettingsRecord::principal_created(actor, at, name, kind, role);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(Principal { name: name.to_owned(), kind, role: Some(role), created_at, revoked_at: None })
    }

    async fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let client = self.client().await?;
        load_principal(&client, self.tenant(), name, false, "cannot read a principal").await
    }

    async fn list_principals(&self) -> Result<Vec<Principal>, StoreError> {
        const OP: &str = "cannot list the principals";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT p.name, p.kind, r.role, p.created_at, p.revoked_at FROM principals p
                 JOIN principal_roles r ON r.principal = p.name AND r.tenant = $1 ORDER BY p.name",
                &[&self.tenant()],
            )
            .await
            .map_err(pg(OP))?;
        rows.iter().map(|row| principal_of(row, OP)).collect()
    }

    async fn set_principal_role(
        &self,
        name: &str,
        expected: Role,
        role: Role,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError> {
        let op = format!("cannot change the role of principal `{name}`");
        if role == Role::System {
            return Err(invalid(&op)(StorePostgresError::InvalidName {
                name: name.to_owned(),
                why: "the system role is never granted",
            }));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let p = live_principal(&tx, self.tenant(), name, &op).await?;
        if p.role != Some(expected) {
            let found = p.role.map_or_else(|| "without a role".to_owned(), |r| r.to_string());
            return Err(invalid(&op)(StorePostgresError::RoleChanged {
                name: name.to_owned(),
                expected: expected.to_string(),
                found,
            }));
        }
        tx.execute(
            "UPDATE principal_roles SET role = $3 WHERE tenant = $1 AND principal = $2",
            &[&self.tenant(), &name, &role.to_string()],
        )
        .await
        .map_err(pg(&op))?;
        let r = SettingsRecord::principal_role_changed(actor, at, name, expected, role, comment);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(Principal { role: Some(role), ..p })
    }

    async fn revoke_principal(
        &self,
        name: &str,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = format!("cannot revoke the principal `{name}`");
        let at_nanos = nanos(at).map_err(invalid(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        match load_principal(&tx, self.tenant(), name, true, &op).await? {
            Some(p) if p.revoked_at.is_none() => {}
            _ => return Ok(false),
        }
        // One who holds a role in another tenant only leaves this one; else revoked for good.
        let elsewhere: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM principal_roles WHERE principal = $1 AND tenant <> $2)",
                &[&name, &self.tenant()],
            )
            .await
            .map_err(pg(&op))?
            .get(0);
        if elsewhere {
            tx.execute("DELETE FROM principal_roles WHERE principal = $1 AND tenant = $2", &[&name, &self.tenant()])
                .await
                .map_err(pg(&op))?;
        } else {
            tx.execute(
                "UPDATE principals SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                &[&name, &at_nanos],
            )
            .await
            .map_err(pg(&op))?;
        }
        let tokens = tx
            .execute(
                "UPDATE credentials SET revoked_at = $3 WHERE principal = $1 AND tenant = $2 AND revoked_at IS NULL",
                &[&name, &self.tenant(), &at_nanos],
            )
            .await
            .map_err(pg(&op))?;
        let r = SettingsRecord::principal_revoked(actor, at, name, tokens, comment);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(true)
    }

    async fn create_token(
        &self,
        principal: &str,
        name: &str,
        token_hash: &str,
        expires_at: OffsetDateTime,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<ApiToken, StoreError> {
        let op = format!("cannot create the token `{name}`");
        check_name(name).map_err(invalid(&op))?;
        let at_nanos = nanos(at).map_err(invalid(&op))?;
        let expires_nanos = nanos(expires_at).map_err(invalid(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        live_principal(&tx, self.tenant(), principal, &op).await?;
        let existing = tx
            .query_opt(
                "SELECT principal, expires_at, revoked_at FROM credentials WHERE tenant = $1 AND name = $2 FOR UPDATE",
                &[&self.tenant(), &name],
            )
            .await
            .map_err(pg(&op))?;
        if let Some(row) = existing {
            let owner: String = row.get(0);
            let expires: i64 = row.get(1);
            let revoked: Option<i64> = row.get(2);
            if owner != principal {
                return Err(invalid(&op)(StorePostgresError::TokenNameTaken {
                    name: name.to_owned(),
                    principal: owner,
                }));
            }
            if revoked.is_none() && expires > at_nanos {
                return Err(invalid(&op)(StorePostgresError::TokenExists { name: name.to_owned() }));
            }
            tx.execute("DELETE FROM credentials WHERE tenant = $1 AND name = $2", &[&self.tenant(), &name])
                .await
                .map_err(pg(&op))?;
        }
        tx.execute(
            "INSERT INTO credentials (tenant, name, principal, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&self.tenant(), &name, &principal, &token_hash, &at_nanos, &expires_nanos],
        )
        .await
        .map_err(pg(&op))?;
        let r = SettingsRecord::token_created(actor, at, principal, name, expires_at);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(ApiToken {
            name: name.to_owned(),
            principal: principal.to_owned(),
            created_at: at,
            expires_at,
            revoked_at: None,
            tenants: Vec::new(),
        })
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        const OP: &str = "cannot list the tokens";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, principal, created_at, expires_at, revoked_at, also_tenants FROM credentials
                 WHERE tenant = $1 ORDER BY name",
                &[&self.tenant()],
            )
            .await
            .map_err(pg(OP))?;
        Ok(rows
            .iter()
            .map(|row| ApiToken {
                name: row.get(0),
                principal: row.get(1),
                created_at: from_nanos(row.get(2)),
                expires_at: from_nanos(row.get(3)),
                revoked_at: row.get::<_, Option<i64>>(4).map(from_nanos),
                tenants: row.get(5),
            })
            .collect())
    }

    async fn set_token_tenants(
        &self,
        name: &str,
        tenants: &[remediation_core::TenantId],
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = format!("cannot set the tenants of token `{name}`");
        let mut names: Vec<String> =
            tenants.iter().filter(|t| t.as_str() != self.tenant()).map(ToString::to_string).collect();
        names.sort();
        names.dedup();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let owner = tx
            .query_opt(
                "SELECT principal FROM credentials WHERE tenant = $1 AND name = $2 AND revoked_at IS NULL FOR UPDATE",
                &[&self.tenant(), &name],
            )
            .await
            .map_err(pg(&op))?;
        let Some(owner) = owner.map(|row| row.get::<_, String>(0)) else {
            return Ok(false);
        };
        for tenant in &names {
            let held: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM principal_roles WHERE tenant = $1 AND principal = $2)",
                    &[tenant, &owner],
                )
                .await
                .map_err(pg(&op))?
                .get(0);
            if !held {
                return Err(invalid(&op)(StorePostgresError::NoRoleInTenant {
                    principal: owner,
                    tenant: tenant.clone(),
                }));
            }
        }
        tx.execute(
            "UPDATE credentials SET also_tenants = $3 WHERE tenant = $1 AND name = $2",
            &[&self.tenant(), &name, &names],
        )
        .await
        .map_err(pg(&op))?;
        let r = SettingsRecord::by_actor(
            "token_tenants_set",
            actor,
            at,
            format!("API token `{name}` of `{owner}` reaches tenants {}", names.join(", ")),
            serde_json::Value::Null,
            serde_json::json!({"principal": owner, "token": name, "tenants": names}),
        );
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(true)
    }

    async fn revoke_token(&self, name: &str, actor: &Actor, at: OffsetDateTime) -> Result<bool, StoreError> {
        let op = format!("cannot revoke the token `{name}`");
        let at_nanos = nanos(at).map_err(invalid(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let owner = tx
            .query_opt(
                "UPDATE credentials SET revoked_at = $3 WHERE tenant = $1 AND name = $2 AND revoked_at IS NULL
                 RETURNING principal",
                &[&self.tenant(), &name, &at_nanos],
            )
            .await
            .map_err(pg(&op))?;
        let Some(owner) = owner.map(|row| row.get::<_, String>(0)) else {
            return Ok(false);
        };
        let r = SettingsRecord::token_revoked(actor, at, &owner, name);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(true)
    }

    async fn credential_by_hash(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Credential>, StoreError> {
        const OP: &str = "cannot look up a token";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT c.name, c.principal, r.role FROM credentials c
                 JOIN principals p ON p.name = c.principal
                 JOIN principal_roles r ON r.principal = c.principal AND r.tenant = $1
                 WHERE c.token_hash = $2 AND c.revoked_at IS NULL AND c.expires_at > $3
                   AND p.revoked_at IS NULL AND (c.tenant = $1 OR $1 = ANY (c.also_tenants))",
            )
            .await
            .map_err(pg(OP))?;
        let row = client.query_opt(&stmt, &[&self.tenant(), &token_hash, &clamped_nanos(now)]).await.map_err(pg(OP))?;
        row.map(|row| Ok(Credential { token: row.get(0), principal: row.get(1), role: role_of(row.get(2), OP)? }))
            .transpose()
    }

    async fn propose_change(&self, change: &PendingChange, proposer: &Actor) -> Result<(), StoreError> {
        let op = format!("cannot record the proposed change {}", change.id);
        let proposed = nanos(change.proposed_at).map_err(invalid(&op))?;
        let expires = nanos(change.expires_at).map_err(invalid(&op))?;
        let json = serde_json::to_string(change).map_err(encode(&op))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let inserted = tx
            .execute(
                "INSERT INTO pending_changes (id, tenant, status, proposed_at, expires_at, change_json)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &[&change.id, &self.tenant(), &change.status.as_str(), &proposed, &expires, &json],
            )
            .await
            .map_err(pg(&op))?;
        if inserted == 0 {
            return Err(invalid(&op)(StorePostgresError::PendingChangeExists { id: change.id.clone() }));
        }
        let r = change.audit_record(proposer, change.proposed_at, serde_json::Value::Null);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await
    }

    async fn pending_change(&self, id: &str) -> Result<Option<PendingChange>, StoreError> {
        let op = format!("cannot read the pending change {id}");
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT change_json FROM pending_changes WHERE tenant = $1 AND id = $2", &[&self.tenant(), &id])
            .await
            .map_err(pg(&op))?;
        row.map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(&op))).transpose()
    }

    async fn pending_changes(&self, status: Option<PendingStatus>) -> Result<Vec<PendingChange>, StoreError> {
        const OP: &str = "cannot list the pending changes";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT change_json FROM pending_changes WHERE tenant = $1 AND ($2::text IS NULL OR status = $2)
                 ORDER BY proposed_at, id",
                &[&self.tenant(), &status.map(PendingStatus::as_str)],
            )
            .await
            .map_err(pg(OP))?;
        rows.iter().map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(OP))).collect()
    }

    async fn overdue_changes(&self, now: OffsetDateTime) -> Result<Vec<PendingChange>, StoreError> {
        const OP: &str = "cannot list the overdue pending changes";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT change_json FROM pending_changes WHERE tenant = $1 AND status = 'pending' AND expires_at <= $2
                 ORDER BY proposed_at, id",
                &[&self.tenant(), &clamped_nanos(now)],
            )
            .await
            .map_err(pg(OP))?;
        rows.iter().map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(OP))).collect()
    }

    async fn close_change(
        &self,
        id: &str,
        to: PendingStatus,
        actor: &Actor,
        note: Option<String>,
        at: OffsetDateTime,
    ) -> Result<PendingChange, StoreError> {
        let op = format!("cannot record that change {id} is {to}");
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(&op))?;
        let row = tx
            .query_opt(
                "SELECT change_json FROM pending_changes WHERE tenant = $1 AND id = $2 FOR UPDATE",
                &[&self.tenant(), &id],
            )
            .await
            .map_err(pg(&op))?;
        let Some(row) = row else {
            return Err(invalid(&op)(StorePostgresError::UnknownPendingChange { id: id.chars().take(80).collect() }));
        };
        let current: PendingChange = serde_json::from_str(row.get::<_, &str>(0)).map_err(decode(&op))?;
        if current.status != PendingStatus::Pending {
            return Err(invalid(&op)(StorePostgresError::PendingChangeClosed {
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
        let json = serde_json::to_string(&closed).map_err(encode(&op))?;
        tx.execute(
            "UPDATE pending_changes SET status = $3, change_json = $4 WHERE tenant = $1 AND id = $2",
            &[&self.tenant(), &id, &to.as_str(), &json],
        )
        .await
        .map_err(pg(&op))?;
        let previous = serde_json::json!({"pending_change": id, "status": PendingStatus::Pending});
        let r = closed.audit_record(actor, at, previous);
        insert_pending(&tx, self.tenant(), &AuditBody::Settings(r), &op).await?;
        self.commit(tx, &op).await?;
        Ok(closed)
    }
}
