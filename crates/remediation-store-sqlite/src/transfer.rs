//! [`InstallationExport`] and [`InstallationImport`] for the SQLite store: every table read
//! in `rowid` pages (`seq` for the audit log), and written back one page per IMMEDIATE
//! transaction. Audit records are inserted with the exact `record_json` text the source
//! stored; the insert trigger still refuses any record that does not extend the chain.

use std::collections::BTreeMap;

use async_trait::async_trait;
use remediation_audit::{AuditBody, AuditRecord, AuditRecordExt as _};
use remediation_core::store::transfer::{
    ExportPage, ExportedAction, ExportedAuditRecord, ExportedCheckpoint, ExportedCredential, ExportedNamedLease,
    ExportedParkedRecord, ExportedPendingAudit, ExportedPendingChange, ExportedPrincipal, ExportedSinkMark,
    ExportedSlot, InstallationExport, InstallationImport, LeaseColumns, Section, SectionItems,
};
use remediation_core::{
    ActionDetail, ActionId, ParkedRecord, PendingChange, PrincipalKind, Role, SafetyState, SinkMark, StoreError,
    TransitionRecord,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::store::{clamped_nanos, decode, sql};

/// Tables whose rows make up each section (a section is occupied when any holds a row).
fn tables(section: Section) -> &'static [&'static str] {
    match section {
        Section::Principals => &["principals", "principal_roles"],
        Section::Credentials => &["credentials"],
        Section::PendingChanges => &["pending_changes"],
        Section::Safety => &["safety_states"],
        Section::Actions => &["actions", "transitions"],
        Section::LimitSlots => &["limit_slots"],
        Section::NamedLeases => &["leases"],
        Section::Audit => &["audit", "audit_head"],
        Section::PendingAudit => &["audit_pending"],
        Section::DeliveryMarks => &["delivery_marks"],
        Section::ParkedRecords => &["delivery_parked"],
        Section::Checkpoint => &["audit_checkpoints"],
    }
}

fn time_of(nanos: i64, op: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|source| StoreError::Backend {
        message: format!("{op}: a stored time is impossible"),
        source: Box::new(source),
    })
}

fn epoch_of(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

fn cursor_of(after: Option<String>) -> i64 {
    after.and_then(|a| a.parse().ok()).unwrap_or(i64::MIN)
}

fn backend(message: String) -> StoreError {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Refused(String);
    StoreError::Backend { message: message.clone(), source: Box::new(Refused(message)) }
}

/// Reads up to `limit` rows of `query` (whose first column is the rowid cursor, the second
/// `?1` bound to `after`, the limit `?2`) through `row`, and the next cursor.
fn page<T>(
    conn: &Connection,
    query: &str,
    after: i64,
    limit: usize,
    op: &str,
    mut row: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<(Vec<T>, Option<String>), StoreError> {
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(query).map_err(sql(op))?;
    let mut rows = stmt.query(params![after, limit_sql]).map_err(sql(op))?;
    let mut items = Vec::new();
    let mut last = None;
    while let Some(r) = rows.next().map_err(sql(op))? {
        last = Some(r.get::<_, i64>(0).map_err(sql(op))?);
        items.push(row(r)?);
    }
    let next = if items.len() == limit { last.map(|l| l.to_string()) } else { None };
    Ok((items, next))
}

impl SqliteStore {
    fn export_counts_now(&self) -> Result<BTreeMap<Section, u64>, StoreError> {
        const OP: &str = "cannot count the store's rows";
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(OP))?;
            let mut counts = BTreeMap::new();
            for section in Section::ALL {
                let table = tables(section)[0];
                let n: i64 =
                    tx.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(sql(OP))?;
                counts.insert(section, u64::try_from(n).unwrap_or(0));
            }
            tx.finish().map_err(sql(OP))?;
            Ok(counts)
        })
    }

    fn occupied_now(&self) -> Result<Option<Section>, StoreError> {
        const OP: &str = "cannot check whether the store is empty";
        self.with_conn(|conn| {
            for section in Section::ALL {
                for table in tables(section) {
                    let any: Option<i64> = conn
                        .query_row(&format!("SELECT 1 FROM {table} LIMIT 1"), [], |r| r.get(0))
                        .optional()
                        .map_err(sql(OP))?;
                    if any.is_some() {
                        return Ok(Some(section));
                    }
                }
            }
            Ok(None)
        })
    }

    fn export_page_now(&self, section: Section, after: Option<String>, limit: usize) -> Result<ExportPage, StoreError> {
        let op = format!("cannot read the {section} to copy them");
        let op = op.as_str();
        let after = cursor_of(after);
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(sql(op))?;
            let (items, next) = match section {
                Section::Principals => {
                    let (mut found, next) = page(
                        &tx,
                        "SELECT rowid, name, kind, created_at, revoked_at FROM principals WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            Ok(ExportedPrincipal {
                                name: r.get(1).map_err(sql(op))?,
                                kind: PrincipalKind::parse(&r.get::<_, String>(2).map_err(sql(op))?),
                                created_at: time_of(r.get(3).map_err(sql(op))?, op)?,
                                revoked_at: r.get::<_, Option<i64>>(4).map_err(sql(op))?.map(|n| time_of(n, op)).transpose()?,
                                roles: BTreeMap::new(),
                            })
                        },
                    )?;
                    let mut stmt = tx.prepare_cached("SELECT tenant, role FROM principal_roles WHERE principal = ?1").map_err(sql(op))?;
                    for p in &mut found {
                        let rows = stmt
                            .query_map(params![p.name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                            .map_err(sql(op))?;
                        for row in rows {
                            let (tenant, role) = row.map_err(sql(op))?;
                            let role: Role =
                                serde_json::from_value(serde_json::Value::String(role)).map_err(decode(op))?;
                            p.roles.insert(tenant, role);
                        }
                    }
                    (SectionItems::Principals(found), next)
                }
                Section::Credentials => {
                    let (found, next) = page(
                        &tx,
                        "SELECT rowid, tenant, name, principal, token_hash, created_at, expires_at, revoked_at FROM credentials
                         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            Ok(ExportedCredential {
                                tenant: r.get(1).map_err(sql(op))?,
                                name: r.get(2).map_err(sql(op))?,
                                principal: r.get(3).map_err(sql(op))?,
                                token_hash: r.get(4).map_err(sql(op))?,
                                created_at: time_of(r.get(5).map_err(sql(op))?, op)?,
                                expires_at: time_of(r.get(6).map_err(sql(op))?, op)?,
                                revoked_at: r.get::<_, Option<i64>>(7).map_err(sql(op))?.map(|n| time_of(n, op)).transpose()?,
                            })
                        },
                    )?;
                    (SectionItems::Credentials(found), next)
                }
                Section::PendingChanges => {
                    let (found, next) = page(
                        &tx,
                        "SELECT rowid, tenant, change_json FROM pending_changes WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            let change: PendingChange =
                                serde_json::from_str(&r.get::<_, String>(2).map_err(sql(op))?).map_err(decode(op))?;
                            Ok(ExportedPendingChange { tenant: r.get(1).map_err(sql(op))?, change })
                        },
                    )?;
                    (SectionItems::PendingChanges(found), next)
                }
                Section::Safety => {
                    let json: Option<String> = tx
                        .query_row("SELECT state_json FROM safety_states WHERE tenant = 'default'", [], |r| r.get(0))
                        .optional()
                        .map_err(sql(op))?;
                    let state: Option<SafetyState> =
                        json.map(|j| serde_json::from_str(&j)).transpose().map_err(decode(op))?;
                    (SectionItems::Safety(state), None)
                }
                Section::Actions => {
                    let (mut found, next) = page(
                        &tx,
                        "SELECT rowid, tenant, detail_json, lease_holder, lease_epoch, lease_expires_at FROM actions
                         WHERE tenant = 'default' AND rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            let detail: ActionDetail =
                                serde_json::from_str(&r.get::<_, String>(2).map_err(sql(op))?).map_err(decode(op))?;
                            Ok(ExportedAction {
                                tenant: r.get(1).map_err(sql(op))?,
                                detail,
                                lease: LeaseColumns {
                                    holder: r.get(3).map_err(sql(op))?,
                                    epoch: epoch_of(r.get(4).map_err(sql(op))?),
                                    expires_at: r
                                        .get::<_, Option<i64>>(5)
                                        .map_err(sql(op))?
                                        .map(|n| time_of(n, op))
                                        .transpose()?,
                                },
                                legacy_transitions: Vec::new(),
                            })
                        },
                    )?;
                    let mut stmt = tx
                        .prepare_cached("SELECT record_json FROM transitions WHERE action_id = ?1 ORDER BY seq")
                        .map_err(sql(op))?;
                    for a in &mut found {
                        let rows = stmt
                            .query_map(params![a.detail.action.id.to_string()], |r| r.get::<_, String>(0))
                            .map_err(sql(op))?;
                        for row in rows {
                            let t: TransitionRecord = serde_json::from_str(&row.map_err(sql(op))?).map_err(decode(op))?;
                            a.legacy_transitions.push(t);
                        }
                    }
                    (SectionItems::Actions(found), next)
                }
                Section::LimitSlots => {
                    let (found, next) = page(
                        &tx,
                        "SELECT rowid, key, at, action_id FROM limit_slots WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            let id: String = r.get(3).map_err(sql(op))?;
                            let action_id = id.parse::<ActionId>().map_err(|e| StoreError::Backend {
                                message: format!("{op}: a slot names an impossible action id"),
                                source: Box::new(e),
                            })?;
                            Ok(ExportedSlot {
                                key: r.get(1).map_err(sql(op))?,
                                at: time_of(r.get(2).map_err(sql(op))?, op)?,
                                action_id: Some(action_id),
                            })
                        },
                    )?;
                    (SectionItems::LimitSlots(found), next)
                }
                Section::NamedLeases => {
                    let (found, next) = page(
                        &tx,
                        "SELECT rowid, tenant, name, holder, epoch, expires_at FROM leases WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            Ok(ExportedNamedLease {
                                tenant: r.get(1).map_err(sql(op))?,
                                name: r.get(2).map_err(sql(op))?,
                                lease: LeaseColumns {
                                    holder: r.get(3).map_err(sql(op))?,
                                    epoch: epoch_of(r.get(4).map_err(sql(op))?),
                                    expires_at: r
                                        .get::<_, Option<i64>>(5)
                                        .map_err(sql(op))?
                                        .map(|n| time_of(n, op))
                                        .transpose()?,
                                },
                            })
                        },
                    )?;
                    (SectionItems::NamedLeases(found), next)
                }
                Section::Audit => {
                    let (found, next) = page(
                        &tx,
                        "SELECT seq, tenant, record_json FROM audit WHERE tenant = 'default' AND seq > ?1 ORDER BY seq LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            Ok(ExportedAuditRecord {
                                seq: epoch_of(r.get(0).map_err(sql(op))?),
                                tenant: r.get(1).map_err(sql(op))?,
                                json: r.get(2).map_err(sql(op))?,
                            })
                        },
                    )?;
                    (SectionItems::Audit(found), next)
                }
                Section::PendingAudit => {
                    let (found, next) = page(
                        &tx,
                        "SELECT id, tenant, body_json FROM audit_pending WHERE id > ?1 ORDER BY id LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            let body: AuditBody =
                                serde_json::from_str(&r.get::<_, String>(2).map_err(sql(op))?).map_err(decode(op))?;
                            Ok(ExportedPendingAudit { tenant: r.get(1).map_err(sql(op))?, body })
                        },
                    )?;
                    (SectionItems::PendingAudit(found), next)
                }
                Section::DeliveryMarks => {
                    let (found, next) = page(
                        &tx,
                        "SELECT rowid, tenant, sink, delivered_through, updated_at FROM delivery_marks
                         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            Ok(ExportedSinkMark {
                                tenant: r.get(1).map_err(sql(op))?,
                                mark: SinkMark {
                                    sink: r.get(2).map_err(sql(op))?,
                                    delivered_through: epoch_of(r.get(3).map_err(sql(op))?),
                                    updated_at: time_of(r.get(4).map_err(sql(op))?, op)?,
                                },
                            })
                        },
                    )?;
                    (SectionItems::DeliveryMarks(found), next)
                }
                Section::ParkedRecords => {
                    let (found, next) = page(
                        &tx,
                        "SELECT rowid, tenant, sink, seq, reason, parked_at, replay FROM delivery_parked
                         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                        after,
                        limit,
                        op,
                        |r| {
                            Ok(ExportedParkedRecord {
                                tenant: r.get(1).map_err(sql(op))?,
                                record: ParkedRecord {
                                    sink: r.get(2).map_err(sql(op))?,
                                    seq: epoch_of(r.get(3).map_err(sql(op))?),
                                    reason: r.get(4).map_err(sql(op))?,
                                    parked_at: time_of(r.get(5).map_err(sql(op))?, op)?,
                                    replay: r.get(6).map_err(sql(op))?,
                                },
                            })
                        },
                    )?;
                    (SectionItems::ParkedRecords(found), next)
                }
                Section::Checkpoint => {
                    let checkpoint = tx
                        .query_row("SELECT count, head, mac FROM audit_checkpoints WHERE tenant = 'default'", [], |r| {
                            Ok(ExportedCheckpoint {
                                count: epoch_of(r.get(0)?),
                                head: r.get(1)?,
                                mac: r.get(2)?,
                            })
                        })
                        .optional()
                        .map_err(sql(op))?;
                    (SectionItems::Checkpoint(checkpoint), None)
                }
            };
            tx.finish().map_err(sql(op))?;
            Ok(ExportPage { items, next })
        })
    }

    fn import_page_now(&self, items: &SectionItems) -> Result<(), StoreError> {
        let op = format!("cannot write the copied {}", items.section());
        let op = op.as_str();
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(op))?;
            match items {
                SectionItems::Principals(found) => {
                    for p in found {
                        tx.execute(
                            "INSERT INTO principals (name, kind, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4)",
                            params![p.name, p.kind.as_str(), clamped_nanos(p.created_at), p.revoked_at.map(clamped_nanos)],
                        )
                        .map_err(sql(op))?;
                        for (tenant, role) in &p.roles {
                            tx.execute(
                                "INSERT INTO principal_roles (tenant, principal, role) VALUES (?1, ?2, ?3)",
                                params![tenant, p.name, role.to_string()],
                            )
                            .map_err(sql(op))?;
                        }
                    }
                }
                SectionItems::Credentials(found) => {
                    for c in found {
                        tx.execute(
                            "INSERT INTO credentials (tenant, name, principal, token_hash, created_at, expires_at, revoked_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            params![
                                c.tenant,
                                c.name,
                                c.principal,
                                c.token_hash,
                                clamped_nanos(c.created_at),
                                clamped_nanos(c.expires_at),
                                c.revoked_at.map(clamped_nanos)
                            ],
                        )
                        .map_err(sql(op))?;
                    }
                }
                SectionItems::PendingChanges(found) => {
                    for p in found {
                        let c = &p.change;
                        let json = serde_json::to_string(c).map_err(decode(op))?;
                        tx.execute(
                            "INSERT INTO pending_changes (id, tenant, status, proposed_at, expires_at, change_json)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                c.id,
                                p.tenant,
                                c.status.as_str(),
                                clamped_nanos(c.proposed_at),
                                clamped_nanos(c.expires_at),
                                json
                            ],
                        )
                        .map_err(sql(op))?;
                    }
                }
                SectionItems::Safety(state) => {
                    if let Some(state) = state {
                        let json = serde_json::to_string(state).map_err(decode(op))?;
                        tx.execute("INSERT INTO safety_states (tenant, state_json) VALUES ('default', ?1)", params![json])
                            .map_err(sql(op))?;
                    }
                }
                SectionItems::Actions(found) => {
                    for a in found {
                        // An action exported by a version without handles gets the next one.
                        let mut d = a.detail.clone();
                        if d.action.handle.is_none() {
                            let next: i64 = tx
                                .query_row("SELECT COALESCE(MAX(handle), 0) + 1 FROM actions", [], |row| row.get(0))
                                .map_err(sql(op))?;
                            d.action.handle = u64::try_from(next).ok();
                        }
                        let d = &d;
                        let json = serde_json::to_string(d).map_err(decode(op))?;
                        tx.execute(
                            "INSERT INTO actions (id, tenant, state, connector, requested_by, created_at, updated_at, detail_json,
                                                  due_at, not_before, lease_holder, lease_epoch, lease_expires_at, handle)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                            params![
                                d.action.id.to_string(),
                                a.tenant,
                                d.action.state.as_str(),
                                d.action.connector,
                                d.action.requested_by,
                                clamped_nanos(d.action.created_at),
                                clamped_nanos(d.action.updated_at),
                                json,
                                d.due_at().map(clamped_nanos),
                                d.not_before.map(clamped_nanos),
                                a.lease.holder,
                                i64::try_from(a.lease.epoch).unwrap_or(i64::MAX),
                                a.lease.expires_at.map(clamped_nanos),
                                d.action.handle.and_then(|h| i64::try_from(h).ok())
                            ],
                        )
                        .map_err(sql(op))?;
                        for t in &a.legacy_transitions {
                            let json = serde_json::to_string(t).map_err(decode(op))?;
                            tx.execute(
                                "INSERT INTO transitions (action_id, record_json) VALUES (?1, ?2)",
                                params![d.action.id.to_string(), json],
                            )
                            .map_err(sql(op))?;
                        }
                    }
                }
                SectionItems::LimitSlots(found) => {
                    for s in found {
                        let Some(action) = s.action_id else {
                            return Err(backend(format!(
                                "{op}: a slot under `{}` is held by no action, which this store cannot keep",
                                s.key
                            )));
                        };
                        tx.execute(
                            "INSERT INTO limit_slots (key, at, action_id) VALUES (?1, ?2, ?3)",
                            params![s.key, clamped_nanos(s.at), action.to_string()],
                        )
                        .map_err(sql(op))?;
                    }
                }
                SectionItems::NamedLeases(found) => {
                    for l in found {
                        tx.execute(
                            "INSERT INTO leases (tenant, name, holder, epoch, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![
                                l.tenant,
                                l.name,
                                l.lease.holder,
                                i64::try_from(l.lease.epoch).unwrap_or(i64::MAX),
                                l.lease.expires_at.map(clamped_nanos)
                            ],
                        )
                        .map_err(sql(op))?;
                    }
                }
                SectionItems::Audit(found) => {
                    for r in found {
                        let record = AuditRecord::from_json(&r.json).map_err(|source| StoreError::Backend {
                            message: format!("{op}: audit record {} cannot be read", r.seq),
                            source: Box::new(source),
                        })?;
                        if record.seq != r.seq {
                            return Err(backend(format!(
                                "{op}: the record exported as seq {} says seq {}",
                                r.seq, record.seq
                            )));
                        }
                        let action_id = record.body.action_id().map(|id| id.to_string()).unwrap_or_default();
                        tx.execute(
                            "INSERT INTO audit (seq, action_id, at, record_json, prev_hash, hash, tenant)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            params![
                                i64::try_from(r.seq).unwrap_or(i64::MAX),
                                action_id,
                                clamped_nanos(record.body.at()),
                                r.json,
                                record.prev_hash,
                                record.hash,
                                r.tenant
                            ],
                        )
                        .map_err(sql(op))?;
                        // The record's leaf in the verifiable log, as the sequencer writes it.
                        crate::log::insert_leaf(&tx, &r.tenant, i64::try_from(r.seq).unwrap_or(i64::MAX), &r.json)
                            .map_err(sql(op))?;
                    }
                }
                SectionItems::PendingAudit(found) => {
                    for p in found {
                        let json = serde_json::to_string(&p.body).map_err(decode(op))?;
                        tx.execute("INSERT INTO audit_pending (tenant, body_json) VALUES (?1, ?2)", params![p.tenant, json])
                            .map_err(sql(op))?;
                    }
                }
                SectionItems::DeliveryMarks(found) => {
                    for m in found {
                        tx.execute(
                            "INSERT INTO delivery_marks (tenant, sink, delivered_through, updated_at) VALUES (?1, ?2, ?3, ?4)",
                            params![
                                m.tenant,
                                m.mark.sink,
                                i64::try_from(m.mark.delivered_through).unwrap_or(i64::MAX),
                                clamped_nanos(m.mark.updated_at)
                            ],
                        )
                        .map_err(sql(op))?;
                    }
                }
                SectionItems::ParkedRecords(found) => {
                    for p in found {
                        let r = &p.record;
                        tx.execute(
                            "INSERT INTO delivery_parked (tenant, sink, seq, reason, parked_at, replay)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                p.tenant,
                                r.sink,
                                i64::try_from(r.seq).unwrap_or(i64::MAX),
                                r.reason,
                                clamped_nanos(r.parked_at),
                                r.replay
                            ],
                        )
                        .map_err(sql(op))?;
                    }
                }
                SectionItems::Checkpoint(checkpoint) => {
                    if let Some(c) = checkpoint {
                        tx.execute(
                            "INSERT INTO audit_checkpoints (tenant, count, head, mac) VALUES ('default', ?1, ?2, ?3)",
                            params![i64::try_from(c.count).unwrap_or(i64::MAX), c.head, c.mac],
                        )
                        .map_err(sql(op))?;
                    }
                }
                other => return Err(backend(format!("{op}: this store does not know the section {}", other.section()))),
            }
            tx.commit().map_err(sql(op))
        })
    }

    fn finish_import_now(&self) -> Result<(), StoreError> {
        const OP: &str = "cannot complete the copy";
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql(OP))?;
            tx.execute(
                "INSERT INTO audit_head (tenant, seq, hash)
                 SELECT a.tenant, a.seq, a.hash FROM audit a
                 WHERE a.seq = (SELECT MAX(b.seq) FROM audit b WHERE b.tenant = a.tenant)
                 ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                [],
            )
            .map_err(sql(OP))?;
            tx.commit().map_err(sql(OP))
        })
    }
}

#[async_trait]
impl InstallationExport for SqliteStore {
    async fn export_counts(&self) -> Result<BTreeMap<Section, u64>, StoreError> {
        self.blocking(SqliteStore::export_counts_now).await
    }

    async fn export_page(
        &self,
        section: Section,
        after: Option<String>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        self.blocking(move |s| s.export_page_now(section, after, limit)).await
    }
}

#[async_trait]
impl InstallationImport for SqliteStore {
    async fn occupied(&self) -> Result<Option<Section>, StoreError> {
        self.blocking(SqliteStore::occupied_now).await
    }

    async fn import_page(&self, items: &SectionItems) -> Result<(), StoreError> {
        let items = items.clone();
        self.blocking(move |s| s.import_page_now(&items)).await
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        self.blocking(SqliteStore::finish_import_now).await
    }
}
