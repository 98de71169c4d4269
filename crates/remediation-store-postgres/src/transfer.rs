//! [`InstallationExport`] and [`InstallationImport`] for the PostgreSQL store: every table read
//! in keyset pages on its key (the cursor is the last row's key as JSON), and written back one
//! page per transaction. Audit records are inserted with the exact `record_json` text the
//! source stored; the insert trigger still refuses any record that does not extend the chain.
//!
//! Import into a store whose background sequencer is off (see
//! [`crate::PostgresConfig::with_sequencer_interval`]): a sequencer sealing the copied pending
//! entries before the copy completes would make the target's log differ from the source's.

use std::collections::BTreeMap;

use async_trait::async_trait;
use remediation_audit::{AuditBody, AuditRecord, AuditRecordExt as _};
use remediation_core::store::transfer::{
    ExportPage, ExportedAction, ExportedAuditRecord, ExportedCheckpoint, ExportedCredential, ExportedNamedLease,
    ExportedParkedRecord, ExportedPendingAudit, ExportedPendingChange, ExportedPrincipal, ExportedSinkMark,
    ExportedSlot, InstallationExport, InstallationImport, LeaseColumns, Section, SectionItems,
};
use remediation_core::{
    ActionDetail, ActionId, ParkedRecord, PendingChange, PrincipalKind, SafetyState, SinkMark, StoreError,
};
use serde_json::{Value, json};

use crate::store::{PostgresStore, clamped_nanos, decode, encode, from_nanos, pg};

/// Tables whose rows make up each section (a section is occupied when any holds a row).
fn tables(section: Section) -> &'static [&'static str] {
    match section {
        Section::Principals => &["principals", "principal_roles"],
        Section::Credentials => &["credentials"],
        Section::PendingChanges => &["pending_changes"],
        Section::Safety => &["safety_state"],
        Section::Actions => &["actions"],
        Section::LimitSlots => &["limit_slots"],
        Section::NamedLeases => &["leases"],
        Section::Audit => &["audit", "audit_head"],
        Section::PendingAudit => &["audit_pending"],
        Section::DeliveryMarks => &["delivery_marks"],
        Section::ParkedRecords => &["delivery_parked"],
        Section::Checkpoint => &["audit_checkpoint"],
    }
}

fn refused(message: String) -> StoreError {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Refused(String);
    StoreError::Backend { message: message.clone(), source: Box::new(Refused(message)) }
}

fn epoch_of(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

fn epoch_to(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

/// The key columns of the cursor `after` (a JSON array), or `None` from the start.
fn cursor(after: Option<String>, op: &str) -> Result<Option<Vec<Value>>, StoreError> {
    after.map(|a| serde_json::from_str::<Vec<Value>>(&a)).transpose().map_err(decode(format!("{op}: the cursor")))
}

fn text(key: &[Value], i: usize) -> String {
    key.get(i).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn int(key: &[Value], i: usize) -> i64 {
    key.get(i).and_then(Value::as_i64).unwrap_or(i64::MIN)
}

/// The next cursor: the last row's key when the page is full.
fn next_of(len: usize, limit: usize, last: Option<Value>) -> Option<String> {
    if len == limit { last.map(|v| v.to_string()) } else { None }
}

fn lease_of(row: &tokio_postgres::Row, holder: usize) -> LeaseColumns {
    LeaseColumns {
        holder: row.get(holder),
        epoch: epoch_of(row.get(holder + 1)),
        expires_at: row.get::<_, Option<i64>>(holder + 2).map(from_nanos),
    }
}

impl PostgresStore {
    async fn export_page_now(
        &self,
        section: Section,
        after: Option<String>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        let op = format!("cannot read the {section} to copy them");
        let op = op.as_str();
        let key = cursor(after, op)?;
        let started = key.is_some();
        let key = key.unwrap_or_default();
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let tenant = self.tenant();
        let mut client = self.client().await?;
        // One snapshot for the page's rows and what they join.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg(op))?;
        let (items, next) = match section {
            Section::Principals => {
                let rows = tx
                    .query(
                        "SELECT name, kind, created_at, revoked_at FROM principals
                         WHERE ($1 = false OR name > $2) ORDER BY name LIMIT $3",
                        &[&started, &text(&key, 0), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let mut found: Vec<ExportedPrincipal> = rows
                    .iter()
                    .map(|r| ExportedPrincipal {
                        name: r.get(0),
                        kind: PrincipalKind::parse(r.get::<_, &str>(1)),
                        created_at: from_nanos(r.get(2)),
                        revoked_at: r.get::<_, Option<i64>>(3).map(from_nanos),
                        roles: BTreeMap::new(),
                    })
                    .collect();
                let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
                let roles = tx
                    .query("SELECT principal, tenant, role FROM principal_roles WHERE principal = ANY($1)", &[&names])
                    .await
                    .map_err(pg(op))?;
                for r in &roles {
                    let role = serde_json::from_value(Value::String(r.get(2))).map_err(decode(op))?;
                    if let Some(p) = found.iter_mut().find(|p| p.name == r.get::<_, &str>(0)) {
                        p.roles.insert(r.get(1), role);
                    }
                }
                let next = next_of(found.len(), limit, found.last().map(|p| json!([p.name])));
                (SectionItems::Principals(found), next)
            }
            Section::Credentials => {
                let rows = tx
                    .query(
                        "SELECT tenant, name, principal, token_hash, created_at, expires_at, revoked_at FROM credentials
                         WHERE ($1 = false OR (tenant, name) > ($2, $3)) ORDER BY tenant, name LIMIT $4",
                        &[&started, &text(&key, 0), &text(&key, 1), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let found: Vec<ExportedCredential> = rows
                    .iter()
                    .map(|r| ExportedCredential {
                        tenant: r.get(0),
                        name: r.get(1),
                        principal: r.get(2),
                        token_hash: r.get(3),
                        created_at: from_nanos(r.get(4)),
                        expires_at: from_nanos(r.get(5)),
                        revoked_at: r.get::<_, Option<i64>>(6).map(from_nanos),
                    })
                    .collect();
                let next = next_of(found.len(), limit, found.last().map(|c| json!([c.tenant, c.name])));
                (SectionItems::Credentials(found), next)
            }
            Section::PendingChanges => {
                let rows = tx
                    .query(
                        "SELECT id, tenant, change_json FROM pending_changes
                         WHERE ($1 = false OR id > $2) ORDER BY id LIMIT $3",
                        &[&started, &text(&key, 0), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let mut found = Vec::with_capacity(rows.len());
                for r in &rows {
                    let change: PendingChange = serde_json::from_str(r.get::<_, &str>(2)).map_err(decode(op))?;
                    found.push(ExportedPendingChange { tenant: r.get(1), change });
                }
                let next = next_of(rows.len(), limit, rows.last().map(|r| json!([r.get::<_, &str>(0)])));
                (SectionItems::PendingChanges(found), next)
            }
            Section::Safety => {
                let row = tx
                    .query_opt("SELECT state_json FROM safety_state WHERE tenant = $1", &[&tenant])
                    .await
                    .map_err(pg(op))?;
                let state: Option<SafetyState> =
                    row.map(|r| serde_json::from_str(r.get::<_, &str>(0))).transpose().map_err(decode(op))?;
                (SectionItems::Safety(state), None)
            }
            Section::Actions => {
                let rows = tx
                    .query(
                        "SELECT id, tenant, detail_json, lease_holder, lease_epoch, lease_expires_at FROM actions
                         WHERE ($1 = false OR id > $2) ORDER BY id LIMIT $3",
                        &[&started, &text(&key, 0), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let mut found = Vec::with_capacity(rows.len());
                for r in &rows {
                    let detail: ActionDetail = serde_json::from_str(r.get::<_, &str>(2)).map_err(decode(op))?;
                    found.push(ExportedAction {
                        tenant: r.get(1),
                        detail,
                        lease: lease_of(r, 3),
                        legacy_transitions: Vec::new(),
                    });
                }
                let next = next_of(rows.len(), limit, rows.last().map(|r| json!([r.get::<_, &str>(0)])));
                (SectionItems::Actions(found), next)
            }
            Section::LimitSlots => {
                let rows = tx
                    .query(
                        "SELECT key, at, action_id FROM limit_slots
                         WHERE ($1 = false OR (key, at, action_id) > ($2, $3, $4))
                         ORDER BY key, at, action_id LIMIT $5",
                        &[&started, &text(&key, 0), &int(&key, 1), &text(&key, 2), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let mut found = Vec::with_capacity(rows.len());
                for r in &rows {
                    let id = r.get::<_, &str>(2).parse::<ActionId>().map_err(|e| StoreError::Backend {
                        message: format!("{op}: a slot names an impossible action id"),
                        source: Box::new(e),
                    })?;
                    found.push(ExportedSlot { key: r.get(0), at: from_nanos(r.get(1)), action_id: Some(id) });
                }
                let next = next_of(
                    rows.len(),
                    limit,
                    rows.last().map(|r| json!([r.get::<_, &str>(0), r.get::<_, i64>(1), r.get::<_, &str>(2)])),
                );
                (SectionItems::LimitSlots(found), next)
            }
            Section::NamedLeases => {
                let rows = tx
                    .query(
                        "SELECT tenant, name, holder, epoch, expires_at FROM leases
                         WHERE ($1 = false OR (tenant, name) > ($2, $3)) ORDER BY tenant, name LIMIT $4",
                        &[&started, &text(&key, 0), &text(&key, 1), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let found: Vec<ExportedNamedLease> = rows
                    .iter()
                    .map(|r| ExportedNamedLease { tenant: r.get(0), name: r.get(1), lease: lease_of(r, 2) })
                    .collect();
                let next = next_of(found.len(), limit, found.last().map(|l| json!([l.tenant, l.name])));
                (SectionItems::NamedLeases(found), next)
            }
            Section::Audit => {
                let rows = tx
                    .query(
                        "SELECT tenant, seq, record_json FROM audit
                         WHERE ($1 = false OR (tenant, seq) > ($2, $3)) ORDER BY tenant, seq LIMIT $4",
                        &[&started, &text(&key, 0), &int(&key, 1), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let found: Vec<ExportedAuditRecord> = rows
                    .iter()
                    .map(|r| ExportedAuditRecord { tenant: r.get(0), seq: epoch_of(r.get(1)), json: r.get(2) })
                    .collect();
                let next =
                    next_of(rows.len(), limit, rows.last().map(|r| json!([r.get::<_, &str>(0), r.get::<_, i64>(1)])));
                (SectionItems::Audit(found), next)
            }
            Section::PendingAudit => {
                let rows = tx
                    .query(
                        "SELECT id, tenant, body_json FROM audit_pending WHERE ($1 = false OR id > $2) ORDER BY id LIMIT $3",
                        &[&started, &int(&key, 0), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let mut found = Vec::with_capacity(rows.len());
                for r in &rows {
                    let body: AuditBody = serde_json::from_str(r.get::<_, &str>(2)).map_err(decode(op))?;
                    found.push(ExportedPendingAudit { tenant: r.get(1), body });
                }
                let next = next_of(rows.len(), limit, rows.last().map(|r| json!([r.get::<_, i64>(0)])));
                (SectionItems::PendingAudit(found), next)
            }
            Section::DeliveryMarks => {
                let rows = tx
                    .query(
                        "SELECT tenant, sink, delivered_through, updated_at FROM delivery_marks
                         WHERE ($1 = false OR (tenant, sink) > ($2, $3)) ORDER BY tenant, sink LIMIT $4",
                        &[&started, &text(&key, 0), &text(&key, 1), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let found: Vec<ExportedSinkMark> = rows
                    .iter()
                    .map(|r| ExportedSinkMark {
                        tenant: r.get(0),
                        mark: SinkMark {
                            sink: r.get(1),
                            delivered_through: epoch_of(r.get(2)),
                            updated_at: from_nanos(r.get(3)),
                        },
                    })
                    .collect();
                let next = next_of(found.len(), limit, found.last().map(|m| json!([m.tenant, m.mark.sink])));
                (SectionItems::DeliveryMarks(found), next)
            }
            Section::ParkedRecords => {
                let rows = tx
                    .query(
                        "SELECT tenant, sink, seq, reason, parked_at, replay FROM delivery_parked
                         WHERE ($1 = false OR (tenant, sink, seq) > ($2, $3, $4)) ORDER BY tenant, sink, seq LIMIT $5",
                        &[&started, &text(&key, 0), &text(&key, 1), &int(&key, 2), &lim],
                    )
                    .await
                    .map_err(pg(op))?;
                let found: Vec<ExportedParkedRecord> = rows
                    .iter()
                    .map(|r| ExportedParkedRecord {
                        tenant: r.get(0),
                        record: ParkedRecord {
                            sink: r.get(1),
                            seq: epoch_of(r.get(2)),
                            reason: r.get(3),
                            parked_at: from_nanos(r.get(4)),
                            replay: r.get(5),
                        },
                    })
                    .collect();
                let next = next_of(
                    found.len(),
                    limit,
                    found.last().map(|p| json!([p.tenant, p.record.sink, epoch_to(p.record.seq)])),
                );
                (SectionItems::ParkedRecords(found), next)
            }
            Section::Checkpoint => {
                let row = tx
                    .query_opt("SELECT count, head, mac FROM audit_checkpoint WHERE tenant = $1", &[&tenant])
                    .await
                    .map_err(pg(op))?;
                let checkpoint =
                    row.map(|r| ExportedCheckpoint { count: epoch_of(r.get(0)), head: r.get(1), mac: r.get(2) });
                (SectionItems::Checkpoint(checkpoint), None)
            }
        };
        tx.commit().await.map_err(pg(op))?;
        Ok(ExportPage { items, next })
    }

    async fn import_page_now(&self, items: &SectionItems) -> Result<(), StoreError> {
        let op = format!("cannot write the copied {}", items.section());
        let op = op.as_str();
        let tenant = self.tenant();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(op))?;
        match items {
            SectionItems::Principals(found) => {
                for p in found {
                    tx.execute(
                        "INSERT INTO principals (name, kind, created_at, revoked_at) VALUES ($1, $2, $3, $4)",
                        &[&p.name, &p.kind.as_str(), &clamped_nanos(p.created_at), &p.revoked_at.map(clamped_nanos)],
                    )
                    .await
                    .map_err(pg(op))?;
                    for (tenant, role) in &p.roles {
                        tx.execute(
                            "INSERT INTO principal_roles (tenant, principal, role) VALUES ($1, $2, $3)",
                            &[tenant, &p.name, &role.to_string()],
                        )
                        .await
                        .map_err(pg(op))?;
                    }
                }
            }
            SectionItems::Credentials(found) => {
                for c in found {
                    tx.execute(
                        "INSERT INTO credentials (tenant, name, principal, token_hash, created_at, expires_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &c.tenant,
                            &c.name,
                            &c.principal,
                            &c.token_hash,
                            &clamped_nanos(c.created_at),
                            &clamped_nanos(c.expires_at),
                            &c.revoked_at.map(clamped_nanos),
                        ],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::PendingChanges(found) => {
                for p in found {
                    let c = &p.change;
                    let json = serde_json::to_string(c).map_err(encode(op))?;
                    tx.execute(
                        "INSERT INTO pending_changes (id, tenant, status, proposed_at, expires_at, change_json)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &c.id,
                            &p.tenant,
                            &c.status.as_str(),
                            &clamped_nanos(c.proposed_at),
                            &clamped_nanos(c.expires_at),
                            &json,
                        ],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::Safety(state) => {
                if let Some(state) = state {
                    let json = serde_json::to_string(state).map_err(encode(op))?;
                    tx.execute("INSERT INTO safety_state (tenant, state_json) VALUES ($1, $2)", &[&tenant, &json])
                        .await
                        .map_err(pg(op))?;
                }
            }
            SectionItems::Actions(found) => {
                for a in found {
                    if !a.legacy_transitions.is_empty() {
                        return Err(refused(format!(
                            "{op}: action {} has transitions kept outside the audit log (written by an old version), \
                             which this store cannot keep; copy it to a SQLite store instead",
                            a.detail.action.id
                        )));
                    }
                    // An action exported by a version without handles gets the next one; the
                    // sequence moves past the largest kept one when the import finishes.
                    let mut d = a.detail.clone();
                    if d.action.handle.is_none() {
                        let next: i64 =
                            tx.query_one("SELECT nextval('action_handles')", &[]).await.map_err(pg(op))?.get(0);
                        d.action.handle = u64::try_from(next).ok();
                    }
                    let d = &d;
                    let x = &d.action;
                    let json = serde_json::to_string(d).map_err(encode(op))?;
                    tx.execute(
                        "INSERT INTO actions (id, tenant, state, connector, requested_by, identity, canonical_identity,
                            control_id, created_at, updated_at, due_at, not_before, lease_holder, lease_epoch,
                            lease_expires_at, detail_json, handle, campaign)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                        &[
                            &x.id.to_string(),
                            &a.tenant,
                            &x.state.as_str(),
                            &x.connector,
                            &x.requested_by,
                            &x.target.identity,
                            &x.canonical.as_ref().map(|c| c.identity.as_str()),
                            &x.control_id.as_deref(),
                            &clamped_nanos(x.created_at),
                            &clamped_nanos(x.updated_at),
                            &d.due_at().map(clamped_nanos),
                            &d.not_before.map(clamped_nanos),
                            &a.lease.holder,
                            &epoch_to(a.lease.epoch),
                            &a.lease.expires_at.map(clamped_nanos),
                            &json,
                            &x.handle.and_then(|h| i64::try_from(h).ok()),
                            &x.campaign.as_deref(),
                        ],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::LimitSlots(found) => {
                for s in found {
                    let Some(action) = s.action_id else {
                        return Err(refused(format!(
                            "{op}: a slot under `{}` is held by no action, which this store cannot keep",
                            s.key
                        )));
                    };
                    tx.execute(
                        "INSERT INTO limit_slots (key, at, action_id) VALUES ($1, $2, $3)",
                        &[&s.key, &clamped_nanos(s.at), &action.to_string()],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::NamedLeases(found) => {
                for l in found {
                    tx.execute(
                        "INSERT INTO leases (tenant, name, holder, epoch, expires_at) VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &l.tenant,
                            &l.name,
                            &l.lease.holder,
                            &epoch_to(l.lease.epoch),
                            &l.lease.expires_at.map(clamped_nanos),
                        ],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::Audit(found) => {
                for r in found {
                    let record = AuditRecord::from_json(&r.json).map_err(|source| StoreError::Backend {
                        message: format!("{op}: audit record {} cannot be read", r.seq),
                        source: Box::new(source),
                    })?;
                    if record.seq != r.seq {
                        return Err(refused(format!(
                            "{op}: the record exported as seq {} says seq {}",
                            r.seq, record.seq
                        )));
                    }
                    let action_id = record.body.action_id().map(|id| id.to_string()).unwrap_or_default();
                    tx.execute(
                        "INSERT INTO audit (tenant, seq, action_id, at, record_json, prev_hash, hash)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &r.tenant,
                            &epoch_to(r.seq),
                            &action_id,
                            &clamped_nanos(record.body.at()),
                            &r.json,
                            &record.prev_hash,
                            &record.hash,
                        ],
                    )
                    .await
                    .map_err(pg(op))?;
                    // The record's leaf in the verifiable log, as the sequencer writes it.
                    let leaf = remediation_audit::merkle::leaf_hash(r.json.as_bytes()).0.to_vec();
                    tx.execute(
                        "INSERT INTO audit_leaves (tenant, leaf_index, hash) VALUES ($1, $2, $3)",
                        &[&r.tenant, &(epoch_to(r.seq) - 1), &leaf],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::PendingAudit(found) => {
                for p in found {
                    let action_id = p.body.action_id().map(|id| id.to_string()).unwrap_or_default();
                    let json = serde_json::to_string(&p.body).map_err(encode(op))?;
                    tx.execute(
                        "INSERT INTO audit_pending (tenant, action_id, body_json) VALUES ($1, $2, $3)",
                        &[&p.tenant, &action_id, &json],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::DeliveryMarks(found) => {
                for m in found {
                    tx.execute(
                        "INSERT INTO delivery_marks (tenant, sink, delivered_through, updated_at) VALUES ($1, $2, $3, $4)",
                        &[&m.tenant, &m.mark.sink, &epoch_to(m.mark.delivered_through), &clamped_nanos(m.mark.updated_at)],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::ParkedRecords(found) => {
                for p in found {
                    let r = &p.record;
                    tx.execute(
                        "INSERT INTO delivery_parked (tenant, sink, seq, reason, parked_at, replay)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&p.tenant, &r.sink, &epoch_to(r.seq), &r.reason, &clamped_nanos(r.parked_at), &r.replay],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            SectionItems::Checkpoint(checkpoint) => {
                if let Some(c) = checkpoint {
                    tx.execute(
                        "INSERT INTO audit_checkpoint (tenant, count, head, mac) VALUES ($1, $2, $3, $4)",
                        &[&tenant, &epoch_to(c.count), &c.head, &c.mac],
                    )
                    .await
                    .map_err(pg(op))?;
                }
            }
            other => return Err(refused(format!("{op}: this store does not know the section {}", other.section()))),
        }
        self.commit(tx, op).await
    }
}

#[async_trait]
impl InstallationExport for PostgresStore {
    async fn export_counts(&self) -> Result<BTreeMap<Section, u64>, StoreError> {
        const OP: &str = "cannot count the store's rows";
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg(OP))?;
        let mut counts = BTreeMap::new();
        for section in Section::ALL {
            let table = tables(section)[0];
            // The safety state and the checkpoint are exported for this store's tenant only.
            let row = if matches!(section, Section::Safety | Section::Checkpoint) {
                tx.query_one(&format!("SELECT COUNT(*) FROM {table} WHERE tenant = $1"), &[&self.tenant()]).await
            } else {
                tx.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).await
            }
            .map_err(pg(OP))?;
            counts.insert(section, epoch_of(row.get(0)));
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(counts)
    }

    async fn export_page(
        &self,
        section: Section,
        after: Option<String>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        self.export_page_now(section, after, limit).await
    }
}

#[async_trait]
impl InstallationImport for PostgresStore {
    async fn occupied(&self) -> Result<Option<Section>, StoreError> {
        const OP: &str = "cannot check whether the store is empty";
        let client = self.client().await?;
        for section in Section::ALL {
            for table in tables(section) {
                let any = client.query_opt(&format!("SELECT 1 FROM {table} LIMIT 1"), &[]).await.map_err(pg(OP))?;
                if any.is_some() {
                    return Ok(Some(section));
                }
            }
        }
        Ok(None)
    }

    async fn import_page(&self, items: &SectionItems) -> Result<(), StoreError> {
        self.import_page_now(items).await
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        const OP: &str = "cannot complete the copy";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        tx.execute(
            "INSERT INTO audit_head (tenant, seq, hash)
             SELECT DISTINCT ON (tenant) tenant, seq, hash FROM audit ORDER BY tenant, seq DESC
             ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            &[],
        )
        .await
        .map_err(pg(OP))?;
        // New actions continue after the largest handle copied.
        tx.execute("SELECT setval('action_handles', COALESCE((SELECT MAX(handle) FROM actions), 0) + 1, false)", &[])
            .await
            .map_err(pg(OP))?;
        self.commit(tx, OP).await
    }
}
