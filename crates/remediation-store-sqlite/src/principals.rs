//! Principals (people and services) with a role per tenant, and their API tokens: credentials
//! kept as SHA-256 hashes, each belonging to one principal and expiring.

use remediation_audit::AuditBody;
use remediation_core::{Actor, ApiToken, Credential, Principal, PrincipalKind, Role, SettingsRecord, StoreError};
use rusqlite::{OptionalExtension as _, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::StoreSqliteError;
use crate::store::{SqliteStore, append_audit, invalid, invalid_with, nanos, sql, sql_with};

/// Checks a new principal or token name: 1 to 64 characters, lowercase ASCII letters, digits
/// and `.`, `_`, `-`, `@`, starting with a letter or digit; never `system`. Lowercase only, so
/// `Alice` and `alice` cannot be two principals; no `:`, so no server principal can take a
/// local actor's name (`local:alice`).
pub fn check_name(name: &str) -> Result<(), StoreSqliteError> {
    remediation_core::store::check_principal_name(name)
        .map_err(|why| StoreSqliteError::InvalidName { name: name.chars().take(80).collect(), why })
}

fn time_of(n: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn role_of(s: &str, op: &str) -> Result<Role, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(crate::store::decode(op))
}

impl SqliteStore {
    /// Creates principal `name` of `kind` holding `role` in this tenant, audited
    /// (`principal_created` by `actor`) in the same transaction. A name is never reused, even
    /// after the principal was revoked. A principal of another tenant (the same person working
    /// in several) gets a role in this one, keeping its kind. Who may do this is the caller's
    /// rule.
    pub fn create_principal(
        &self,
        name: &str,
        kind: PrincipalKind,
        role: Role,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError> {
        let op = || format!("cannot create the principal `{name}`");
        check_name(name).map_err(invalid_with(&op))?;
        if role == Role::System {
            return Err(invalid_with(&op)(StoreSqliteError::InvalidName {
                name: name.to_owned(),
                why: "the system role is never granted",
            }));
        }
        let at_nanos = nanos(at).map_err(invalid_with(&op))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            let existing: Option<(String, Option<i64>, i64)> = tx
                .query_row("SELECT kind, revoked_at, created_at FROM principals WHERE name = ?1", params![name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .map_err(sql_with(&op))?;
            let here = load_principal(&tx, &self.tenant, name, &op())?.is_some();
            let (kind, created_at) = match existing {
                // Revoked everywhere, or already here: a name is never reused.
                Some((_, Some(_), _)) => {
                    return Err(invalid_with(&op)(StoreSqliteError::PrincipalExists { name: name.to_owned() }));
                }
                Some(_) if here => {
                    return Err(invalid_with(&op)(StoreSqliteError::PrincipalExists { name: name.to_owned() }));
                }
                Some((kind, None, created)) => (PrincipalKind::parse(&kind), time_of(created)),
                None => {
                    tx.execute(
                        "INSERT INTO principals (name, kind, created_at) VALUES (?1, ?2, ?3)",
                        params![name, kind.as_str(), at_nanos],
                    )
                    .map_err(sql_with(&op))?;
                    (kind, at)
                }
            };
            tx.execute(
                "INSERT INTO principal_roles (tenant, principal, role) VALUES (?1, ?2, ?3)",
                params![self.tenant, name, role.to_string()],
            )
            .map_err(sql_with(&op))?;
            let r = SettingsRecord::principal_created(actor, at, name, kind, role);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(Principal { name: name.to_owned(), kind, role: Some(role), created_at, revoked_at: None })
        })
    }

    /// The principal `name`, if it exists.
    pub fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        const OP: &str = "cannot read a principal";
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            load_principal(&tx, &self.tenant, name, OP)
        })
    }

    /// Every principal, by name.
    pub fn list_principals(&self) -> Result<Vec<Principal>, StoreError> {
        const OP: &str = "cannot list the principals";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT p.name, p.kind, r.role, p.created_at, p.revoked_at FROM principals p
                     JOIN principal_roles r ON r.principal = p.name AND r.tenant = ?1 ORDER BY p.name",
                )
                .map_err(sql(OP))?;
            let rows = stmt.query_map(params![self.tenant], principal_parts).map_err(sql(OP))?;
            let mut all = Vec::new();
            for row in rows {
                all.push(principal_of(row.map_err(sql(OP))?, OP)?);
            }
            Ok(all)
        })
    }

    /// Changes the role of principal `name` from `expected` (compare-and-set: refused when
    /// someone changed it meanwhile) to `role`, audited (`principal_role_changed`) in the
    /// same transaction. Who may do this, and whether a second admin must confirm, is the
    /// caller's rule.
    pub fn set_principal_role(
        &self,
        name: &str,
        expected: Role,
        role: Role,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<Principal, StoreError> {
        let op = || format!("cannot change the role of principal `{name}`");
        if role == Role::System {
            return Err(invalid_with(&op)(StoreSqliteError::InvalidName {
                name: name.to_owned(),
                why: "the system role is never granted",
            }));
        }
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            let p = live_principal(&tx, &self.tenant, name, &op())?;
            if p.role != Some(expected) {
                let found = p.role.map_or_else(|| "without a role".to_owned(), |r| r.to_string());
                return Err(invalid_with(&op)(StoreSqliteError::RoleChanged {
                    name: name.to_owned(),
                    expected: expected.to_string(),
                    found,
                }));
            }
            tx.execute(
                "UPDATE principal_roles SET role = ?3 WHERE tenant = ?1 AND principal = ?2",
                params![self.tenant, name, role.to_string()],
            )
            .map_err(sql_with(&op))?;
            let r = SettingsRecord::principal_role_changed(actor, at, name, expected, role, comment);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(Principal { role: Some(role), ..p })
        })
    }

    /// Revokes principal `name` in this tenant and every live token of it here, audited
    /// (`principal_revoked`) in the same transaction; `false` (and nothing written) when it is
    /// unknown here or already revoked. A principal who holds a role in another tenant only
    /// leaves this one (its role and tokens here go); one who holds none elsewhere is revoked
    /// for good.
    pub fn revoke_principal(
        &self,
        name: &str,
        actor: &Actor,
        comment: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = || format!("cannot revoke the principal `{name}`");
        let at_nanos = nanos(at).map_err(invalid_with(&op))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            match load_principal(&tx, &self.tenant, name, &op())? {
                Some(p) if p.revoked_at.is_none() => {}
                _ => return Ok(false),
            }
            let elsewhere: bool = tx
                .query_row(
                    "SELECT COUNT(*) > 0 FROM principal_roles WHERE principal = ?1 AND tenant <> ?2",
                    params![name, self.tenant],
                    |r| r.get(0),
                )
                .map_err(sql_with(&op))?;
            if elsewhere {
                tx.execute("DELETE FROM principal_roles WHERE principal = ?1 AND tenant = ?2", params![name, self.tenant])
                    .map_err(sql_with(&op))?;
            } else {
                tx.execute(
                    "UPDATE principals SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                    params![name, at_nanos],
                )
                .map_err(sql_with(&op))?;
            }
            let tokens = tx
                .execute(
                    "UPDATE credentials SET revoked_at = ?3 WHERE principal = ?1 AND tenant = ?2 AND revoked_at IS NULL",
                    params![name, self.tenant, at_nanos],
                )
                .map_err(sql_with(&op))?;
            let r =
                SettingsRecord::principal_revoked(actor, at, name, u64::try_from(tokens).unwrap_or(u64::MAX), comment);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(true)
        })
    }

    /// Stores a new token `name` for principal `principal`, keeping only `token_hash` (the hex
    /// SHA-256 of the token), valid until `expires_at`, and audits it (`token_created` by
    /// `actor`, naming the principal and the token, never the hash) in the same transaction.
    ///
    /// A live token of the same name is an error. A revoked or expired one is replaced only
    /// when it belonged to the same principal: a token name never passes to someone else.
    pub fn create_token(
        &self,
        principal: &str,
        name: &str,
        token_hash: &str,
        expires_at: OffsetDateTime,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<ApiToken, StoreError> {
        let op = || format!("cannot create the token `{name}`");
        check_name(name).map_err(invalid_with(&op))?;
        let at_nanos = nanos(at).map_err(invalid_with(&op))?;
        let expires_nanos = nanos(expires_at).map_err(invalid_with(&op))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            live_principal(&tx, &self.tenant, principal, &op())?;
            let existing: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT principal, expires_at, revoked_at FROM credentials WHERE tenant = ?1 AND name = ?2",
                    params![self.tenant, name],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(sql_with(&op))?;
            if let Some((owner, expires, revoked)) = existing {
                if owner != principal {
                    return Err(invalid_with(&op)(StoreSqliteError::TokenNameTaken {
                        name: name.to_owned(),
                        principal: owner,
                    }));
                }
                if revoked.is_none() && expires > at_nanos {
                    return Err(invalid_with(&op)(StoreSqliteError::TokenExists { name: name.to_owned() }));
                }
                tx.execute("DELETE FROM credentials WHERE tenant = ?1 AND name = ?2", params![self.tenant, name])
                    .map_err(sql_with(&op))?;
            }
            tx.execute(
                "INSERT INTO credentials (tenant, name, principal, token_hash, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![self.tenant, name, principal, token_hash, at_nanos, expires_nanos],
            )
            .map_err(sql_with(&op))?;
            let r = SettingsRecord::token_created(actor, at, principal, name, expires_at);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(ApiToken {
                name: name.to_owned(),
                principal: principal.to_owned(),
                created_at: at,
                expires_at,
                revoked_at: None,
                tenants: Vec::new(),
            })
        })
    }

    /// Every token, live, expired and revoked, by name.
    pub fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        const OP: &str = "cannot list the tokens";
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT name, principal, created_at, expires_at, revoked_at, also_tenants FROM credentials
                     WHERE tenant = ?1 ORDER BY name",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![self.tenant], |row| {
                    Ok(ApiToken {
                        name: row.get(0)?,
                        principal: row.get(1)?,
                        created_at: time_of(row.get(2)?),
                        expires_at: time_of(row.get(3)?),
                        revoked_at: row.get::<_, Option<i64>>(4)?.map(time_of),
                        tenants: serde_json::from_str(&row.get::<_, String>(5)?).unwrap_or_default(),
                    })
                })
                .map_err(sql(OP))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql(OP))
        })
    }

    /// Revokes the live token `name` and audits it (`token_revoked` by `actor`) in the same
    /// transaction; `false` (and nothing written) when there is none.
    pub fn revoke_token(&self, name: &str, actor: &Actor, at: OffsetDateTime) -> Result<bool, StoreError> {
        let op = || format!("cannot revoke the token `{name}`");
        let at_nanos = nanos(at).map_err(invalid_with(&op))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            let owner: Option<String> = tx
                .query_row(
                    "UPDATE credentials SET revoked_at = ?3 WHERE tenant = ?1 AND name = ?2 AND revoked_at IS NULL
                     RETURNING principal",
                    params![self.tenant, name, at_nanos],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_with(&op))?;
            let Some(owner) = owner else {
                return Ok(false);
            };
            let r = SettingsRecord::token_revoked(actor, at, &owner, name);
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(true)
        })
    }

    /// Sets the other tenants the live token `name` reaches (see
    /// [`remediation_core::PrincipalStore::set_token_tenants`]).
    pub fn set_token_tenants(
        &self,
        name: &str,
        tenants: &[remediation_core::TenantId],
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = || format!("cannot set the tenants of token `{name}`");
        let mut names: Vec<String> =
            tenants.iter().filter(|t| t.as_str() != self.tenant).map(ToString::to_string).collect();
        names.sort();
        names.dedup();
        let list = serde_json::to_string(&names).map_err(crate::store::encode_with(&op))?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_with(&op))?;
            let owner: Option<String> = tx
                .query_row(
                    "SELECT principal FROM credentials WHERE tenant = ?1 AND name = ?2 AND revoked_at IS NULL",
                    params![self.tenant, name],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_with(&op))?;
            let Some(owner) = owner else { return Ok(false) };
            for tenant in &names {
                let held: bool = tx
                    .query_row(
                        "SELECT COUNT(*) > 0 FROM principal_roles WHERE tenant = ?1 AND principal = ?2",
                        params![tenant, owner],
                        |row| row.get(0),
                    )
                    .map_err(sql_with(&op))?;
                if !held {
                    return Err(invalid_with(&op)(StoreSqliteError::NoRoleInTenant {
                        principal: owner,
                        tenant: tenant.clone(),
                    }));
                }
            }
            tx.execute(
                "UPDATE credentials SET also_tenants = ?3 WHERE tenant = ?1 AND name = ?2",
                params![self.tenant, name, list],
            )
            .map_err(sql_with(&op))?;
            let r = SettingsRecord::by_actor(
                "token_tenants_set",
                actor,
                at,
                format!("API token `{name}` of `{owner}` reaches tenants {}", names.join(", ")),
                serde_json::Value::Null,
                serde_json::json!({"principal": owner, "token": name, "tenants": names}),
            );
            append_audit(&tx, &self.tenant, self.key(), &AuditBody::Settings(r), &op)?;
            tx.commit().map_err(sql_with(&op))?;
            Ok(true)
        })
    }

    /// What the token whose hash is `token_hash` authenticates as at `now`: `None` when it is
    /// unknown, revoked or expired, or its principal is revoked or holds no role here.
    pub fn credential_by_hash(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<Credential>, StoreError> {
        const OP: &str = "cannot look up a token";
        let now = crate::store::clamped_nanos(now);
        self.with_conn(|conn| {
            let parts: Option<(String, String, String)> = conn
                .query_row(
                    "SELECT c.name, c.principal, r.role FROM credentials c
                     JOIN principals p ON p.name = c.principal
                     JOIN principal_roles r ON r.principal = c.principal AND r.tenant = ?1
                     WHERE c.token_hash = ?2 AND c.revoked_at IS NULL AND c.expires_at > ?3
                       AND p.revoked_at IS NULL
                       AND (c.tenant = ?1 OR EXISTS (SELECT 1 FROM json_each(c.also_tenants) WHERE value = ?1))",
                    params![self.tenant, token_hash, now],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(sql(OP))?;
            parts
                .map(|(token, principal, role)| Ok(Credential { token, principal, role: role_of(&role, OP)? }))
                .transpose()
        })
    }
}

type PrincipalParts = (String, String, Option<String>, i64, Option<i64>);

fn principal_parts(row: &rusqlite::Row<'_>) -> rusqlite::Result<PrincipalParts> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn principal_of((name, kind, role, created, revoked): PrincipalParts, op: &str) -> Result<Principal, StoreError> {
    Ok(Principal {
        name,
        kind: PrincipalKind::parse(&kind),
        role: role.map(|r| role_of(&r, op)).transpose()?,
        created_at: time_of(created),
        revoked_at: revoked.map(time_of),
    })
}

fn load_principal(tx: &Transaction<'_>, tenant: &str, name: &str, op: &str) -> Result<Option<Principal>, StoreError> {
    let parts = tx
        .query_row(
            "SELECT p.name, p.kind, r.role, p.created_at, p.revoked_at FROM principals p
             JOIN principal_roles r ON r.principal = p.name AND r.tenant = ?1 WHERE p.name = ?2",
            params![tenant, name],
            principal_parts,
        )
        .optional()
        .map_err(sql(op))?;
    parts.map(|p| principal_of(p, op)).transpose()
}

/// The principal `name`, which must exist and not be revoked.
fn live_principal(tx: &Transaction<'_>, tenant: &str, name: &str, op: &str) -> Result<Principal, StoreError> {
    match load_principal(tx, tenant, name, op)? {
        None => Err(invalid(op)(StoreSqliteError::UnknownPrincipal { name: name.to_owned() })),
        Some(p) if p.revoked_at.is_some() => {
            Err(invalid(op)(StoreSqliteError::PrincipalRevoked { name: name.to_owned() }))
        }
        Some(p) => Ok(p),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + secs)
    }

    fn root() -> Actor {
        Actor::new("local:root", Role::Admin)
    }

    fn events(store: &SqliteStore) -> Vec<String> {
        store
            .audit_records(None)
            .expect("audit")
            .iter()
            .filter_map(|r| match &r.body {
                AuditBody::Settings(s) => Some(s.setting_event.clone()),
                AuditBody::Transition(_) => None,
            })
            .collect()
    }

    #[track_caller]
    fn refusal(e: &StoreError) -> &StoreSqliteError {
        StoreSqliteError::refusal_of(e).unwrap_or_else(|| panic!("not a refusal: {e:?}"))
    }

    #[test]
    fn tokens_are_credentials_of_a_principal_and_expire() {
        let store = SqliteStore::open_in_memory().expect("store");
        let day = time::Duration::days(1);
        store.create_principal("alice", PrincipalKind::Person, Role::Approver, &root(), at(0)).expect("alice");
        store.create_principal("bob", PrincipalKind::Service, Role::Viewer, &root(), at(0)).expect("bob");
        assert!(matches!(
            refusal(&store.create_principal("alice", PrincipalKind::Person, Role::Admin, &root(), at(0)).unwrap_err()),
            StoreSqliteError::PrincipalExists { .. }
        ));
        // Two tokens of one principal authenticate as the same principal, each named.
        store.create_token("alice", "alice-req", "h1", at(0) + day * 90, &root(), at(0)).expect("t1");
        store.create_token("alice", "alice-appr", "h2", at(0) + day * 90, &root(), at(0)).expect("t2");
        let c1 = store.credential_by_hash("h1", at(1)).expect("lookup").expect("live");
        let c2 = store.credential_by_hash("h2", at(1)).expect("lookup").expect("live");
        assert_eq!((c1.principal.as_str(), c1.token.as_str(), c1.role), ("alice", "alice-req", Role::Approver));
        assert_eq!(c1.actor().name, c2.actor().name, "both tokens act as alice");
        assert_eq!(c2.actor().credential.as_deref(), Some("alice-appr"));
        // A token of an unknown principal is refused; so is a live name.
        assert!(matches!(
            refusal(&store.create_token("carol", "c", "h3", at(9), &root(), at(0)).unwrap_err()),
            StoreSqliteError::UnknownPrincipal { .. }
        ));
        assert!(matches!(
            refusal(&store.create_token("alice", "alice-req", "h4", at(9), &root(), at(0)).unwrap_err()),
            StoreSqliteError::TokenExists { .. }
        ));
        // Expiry: the token stops authenticating at its expiry instant.
        assert!(store.credential_by_hash("h1", at(0) + day * 90 - time::Duration::nanoseconds(1)).unwrap().is_some());
        assert_eq!(store.credential_by_hash("h1", at(0) + day * 90).unwrap(), None);
        // A revoked token's name never passes to another principal; its own principal may reuse it.
        assert!(store.revoke_token("alice-req", &root(), at(2)).expect("revoke"));
        assert!(!store.revoke_token("alice-req", &root(), at(2)).expect("revoke again"));
        assert_eq!(store.credential_by_hash("h1", at(3)).unwrap(), None, "revoked tokens do not authenticate");
        assert!(matches!(
            refusal(&store.create_token("bob", "alice-req", "h5", at(0) + day, &root(), at(3)).unwrap_err()),
            StoreSqliteError::TokenNameTaken { principal, .. } if principal == "alice"
        ));
        store.create_token("alice", "alice-req", "h6", at(3) + day, &root(), at(3)).expect("alice reuses her own name");
        // The role lives on the principal: changing it changes what every token grants.
        let err = store.set_principal_role("alice", Role::Viewer, Role::Admin, &root(), "x", at(4)).unwrap_err();
        assert!(matches!(refusal(&err), StoreSqliteError::RoleChanged { .. }), "compare-and-set on the role");
        store
            .set_principal_role("alice", Role::Approver, Role::Requester, &root(), "fewer rights", at(4))
            .expect("role");
        assert_eq!(store.credential_by_hash("h2", at(5)).unwrap().map(|c| c.role), Some(Role::Requester));
        // Revoking the principal revokes every token of it.
        assert!(store.revoke_principal("alice", &root(), "left", at(6)).expect("revoke principal"));
        assert_eq!(store.credential_by_hash("h2", at(7)).unwrap(), None);
        assert!(store.list_tokens().unwrap().iter().filter(|t| t.principal == "alice").all(|t| t.revoked_at.is_some()));
        assert!(matches!(
            refusal(&store.create_token("alice", "alice-new", "h7", at(99), &root(), at(8)).unwrap_err()),
            StoreSqliteError::PrincipalRevoked { .. }
        ));
        assert_eq!(
            events(&store),
            [
                "principal_created",
                "principal_created",
                "token_created",
                "token_created",
                "token_revoked",
                "token_created",
                "principal_role_changed",
                "principal_revoked"
            ]
        );
        // The audit names principals and tokens, never a hash.
        let text = format!("{:?}", store.audit_records(None).unwrap());
        assert!(text.contains("alice-appr") && !text.contains("\"h2\""), "{text}");
        assert!(store.verify_audit().expect("verify").is_intact());
    }

    #[test]
    fn names_are_lowercase_and_cannot_imitate_local_actors_or_the_engine() {
        for good in ["alice", "ci-bot", "alice@example.com", "svc.deploy_2", "7"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "local:alice", "system", "-x", "a b", "a\u{202e}", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_existing_data_directory_upgrades_tokens_into_principals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.db");
        // A version-4 store with one live and one revoked token.
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            for sql in &crate::schema::MIGRATIONS[..4] {
                conn.execute_batch(sql).expect("migrate");
            }
            conn.pragma_update(None, "user_version", 4).expect("version");
            let created = nanos(at(0)).expect("nanos");
            conn.execute(
                "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES ('ops', 'admin', 'h-ops', ?1)",
                params![created],
            )
            .expect("insert");
            conn.execute(
                "INSERT INTO api_tokens (name, role, token_hash, created_at, revoked_at)
                 VALUES ('old', 'viewer', 'h-old', ?1, ?1)",
                params![created],
            )
            .expect("insert");
        }
        let store = SqliteStore::open(&path).expect("upgrade");
        let principals = store.list_principals().expect("principals");
        let roles: Vec<(&str, Option<Role>)> = principals.iter().map(|p| (p.name.as_str(), p.role)).collect();
        assert_eq!(roles, [("old", Some(Role::Viewer)), ("ops", Some(Role::Admin))]);
        let tokens = store.list_tokens().expect("tokens");
        assert_eq!(tokens.len(), 2);
        assert!(
            tokens.iter().all(|t| t.principal == t.name && t.expires_at == t.created_at + time::Duration::days(90))
        );
        // The live token keeps working as its principal, with its role, until it expires.
        let c = store.credential_by_hash("h-ops", at(60)).expect("lookup").expect("live");
        assert_eq!((c.principal.as_str(), c.token.as_str(), c.role), ("ops", "ops", Role::Admin));
        assert_eq!(store.credential_by_hash("h-ops", at(0) + time::Duration::days(90)).unwrap(), None);
        assert_eq!(store.credential_by_hash("h-old", at(60)).unwrap(), None, "revoked stays revoked");
        // The revoked token's name still belongs to its principal.
        store.create_principal("mallory", PrincipalKind::Person, Role::Viewer, &root(), at(61)).expect("mallory");
        let err = store.create_token("mallory", "old", "h-m", at(999), &root(), at(61)).unwrap_err();
        assert!(matches!(refusal(&err), StoreSqliteError::TokenNameTaken { .. }));
    }
}
