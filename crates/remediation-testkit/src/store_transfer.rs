//! [`InstallationExport`] and [`InstallationImport`] for the [`InMemoryStore`], and
//! [`round_trip`], which every store's transfer is checked with: an installation with every
//! kind of row, copied out and back in, reads the same afterwards.

use std::collections::BTreeMap;

use async_trait::async_trait;
use remediation_audit::AuditRecordExt as _;
use remediation_core::store::transfer::{
    ExportPage, ExportedAction, ExportedAuditRecord, ExportedCredential, ExportedNamedLease, ExportedParkedRecord,
    ExportedPendingAudit, ExportedPendingChange, ExportedPrincipal, ExportedSinkMark, ExportedSlot, InstallationExport,
    InstallationImport, LeaseColumns, Section, SectionItems, TransferStore, copy_installation,
};
use remediation_core::{
    Action, ActionFilter, Actor, ApiToken, AuditBody, AuditFilter, AuditRecord, BeginOutcome, DetailUpdate, Lease,
    LeaseRequest, MarkAdvance, PageRequest, PendingChange, PendingStatus, Principal, PrincipalKind, Role, SafetyState,
    SettingsRecord, State, StateChange, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

use crate::store::{InMemoryStore, LeaseSlot, backend};
use crate::{ActionBuilder, fixed_time, slot, snap, transition};

/// The tenant of every row of the in-memory store.
const TENANT: &str = "default";

fn offset(after: Option<String>) -> usize {
    after.and_then(|a| a.parse().ok()).unwrap_or(0)
}

/// The page of `all` starting at `start`, and the next cursor.
fn slice<T: Clone>(all: Vec<T>, start: usize, limit: usize) -> (Vec<T>, Option<String>) {
    let end = start.saturating_add(limit).min(all.len());
    let items = all.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < all.len()).then(|| end.to_string());
    (items, next)
}

fn columns(slot: Option<&LeaseSlot>) -> LeaseColumns {
    slot.map_or_else(LeaseColumns::default, |s| LeaseColumns {
        holder: s.held.as_ref().map(|l| l.holder.clone()),
        epoch: s.epoch,
        expires_at: s.held.as_ref().map(|l| l.expires_at),
    })
}

fn slot_of(columns: &LeaseColumns) -> LeaseSlot {
    let held = match (&columns.holder, columns.expires_at) {
        (Some(holder), Some(expires_at)) => Some(Lease { holder: holder.clone(), epoch: columns.epoch, expires_at }),
        _ => None,
    };
    LeaseSlot { epoch: columns.epoch, held }
}

#[async_trait]
impl InstallationExport for InMemoryStore {
    async fn export_counts(&self) -> Result<BTreeMap<Section, u64>, StoreError> {
        let inner = self.lock();
        let n = |len: usize| u64::try_from(len).unwrap_or(u64::MAX);
        Ok(BTreeMap::from([
            (Section::Principals, n(inner.principals.len())),
            (Section::Credentials, n(inner.tokens.len())),
            (Section::PendingChanges, n(inner.pending.len())),
            (Section::Safety, u64::from(inner.safety != SafetyState::default())),
            (Section::Actions, n(inner.actions.len())),
            (Section::LimitSlots, n(inner.slots.values().map(Vec::len).sum())),
            (Section::NamedLeases, n(inner.named_leases.len())),
            (Section::Audit, n(inner.log.len())),
            (Section::PendingAudit, n(inner.unsealed.len())),
            (Section::DeliveryMarks, n(inner.marks.len())),
            (Section::ParkedRecords, n(inner.parked.len())),
            (Section::Checkpoint, 0),
        ]))
    }

    async fn export_page(
        &self,
        section: Section,
        after: Option<String>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        let inner = self.lock();
        let start = offset(after);
        let (items, next) = match section {
            Section::Principals => {
                let all: Vec<ExportedPrincipal> = inner
                    .principals
                    .values()
                    .map(|p| ExportedPrincipal {
                        name: p.name.clone(),
                        kind: p.kind,
                        created_at: p.created_at,
                        revoked_at: p.revoked_at,
                        roles: p.role.map(|r| BTreeMap::from([(TENANT.to_owned(), r)])).unwrap_or_default(),
                    })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::Principals(v), next)
            }
            Section::Credentials => {
                let all: Vec<ExportedCredential> = inner
                    .tokens
                    .values()
                    .map(|(t, hash)| ExportedCredential {
                        tenant: TENANT.to_owned(),
                        name: t.name.clone(),
                        principal: t.principal.clone(),
                        token_hash: hash.clone(),
                        created_at: t.created_at,
                        expires_at: t.expires_at,
                        revoked_at: t.revoked_at,
                    })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::Credentials(v), next)
            }
            Section::PendingChanges => {
                let all = inner
                    .pending
                    .iter()
                    .map(|c| ExportedPendingChange { tenant: TENANT.to_owned(), change: c.clone() })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::PendingChanges(v), next)
            }
            Section::Safety => {
                (SectionItems::Safety(Some(inner.safety.clone()).filter(|s| *s != SafetyState::default())), None)
            }
            Section::Actions => {
                let ids: Vec<_> = inner.order.iter().map(|(_, id)| *id).collect();
                let (ids, next) = slice(ids, start, limit);
                let v = ids
                    .into_iter()
                    .filter_map(|id| {
                        let detail = inner.actions.get(&id)?.clone();
                        Some(ExportedAction {
                            tenant: TENANT.to_owned(),
                            detail,
                            lease: columns(inner.action_leases.get(&id)),
                            legacy_transitions: Vec::new(),
                        })
                    })
                    .collect();
                (SectionItems::Actions(v), next)
            }
            Section::LimitSlots => {
                let all: Vec<ExportedSlot> = inner
                    .slots
                    .iter()
                    .flat_map(|(key, held)| {
                        held.iter().map(|(at, action_id)| ExportedSlot {
                            key: key.clone(),
                            at: *at,
                            action_id: *action_id,
                        })
                    })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::LimitSlots(v), next)
            }
            Section::NamedLeases => {
                let all = inner
                    .named_leases
                    .iter()
                    .map(|(name, slot)| ExportedNamedLease {
                        tenant: TENANT.to_owned(),
                        name: name.clone(),
                        lease: columns(Some(slot)),
                    })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::NamedLeases(v), next)
            }
            Section::Audit => {
                let (records, next) = slice(inner.log.clone(), start, limit);
                let mut v = Vec::with_capacity(records.len());
                for r in records {
                    let json = r
                        .to_canonical_json()
                        .map_err(|e| backend(format!("cannot export audit record {}: {e}", r.seq)))?;
                    v.push(ExportedAuditRecord { tenant: TENANT.to_owned(), seq: r.seq, json });
                }
                (SectionItems::Audit(v), next)
            }
            Section::PendingAudit => {
                let all = inner
                    .unsealed
                    .iter()
                    .map(|(body, _)| ExportedPendingAudit { tenant: TENANT.to_owned(), body: body.clone() })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::PendingAudit(v), next)
            }
            Section::DeliveryMarks => {
                let all = inner
                    .marks
                    .values()
                    .map(|mark| ExportedSinkMark { tenant: TENANT.to_owned(), mark: mark.clone() })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::DeliveryMarks(v), next)
            }
            Section::ParkedRecords => {
                let all = inner
                    .parked
                    .values()
                    .map(|record| ExportedParkedRecord { tenant: TENANT.to_owned(), record: record.clone() })
                    .collect();
                let (v, next) = slice(all, start, limit);
                (SectionItems::ParkedRecords(v), next)
            }
            Section::Checkpoint => (SectionItems::Checkpoint(None), None),
        };
        Ok(ExportPage { items, next })
    }
}

#[async_trait]
impl InstallationImport for InMemoryStore {
    async fn occupied(&self) -> Result<Option<Section>, StoreError> {
        let inner = self.lock();
        let occupied = [
            (Section::Principals, !inner.principals.is_empty()),
            (Section::Credentials, !inner.tokens.is_empty()),
            (Section::PendingChanges, !inner.pending.is_empty()),
            (Section::Safety, inner.safety != SafetyState::default()),
            (Section::Actions, !inner.actions.is_empty()),
            (Section::LimitSlots, inner.slots.values().any(|v| !v.is_empty())),
            (Section::NamedLeases, !inner.named_leases.is_empty()),
            (Section::Audit, !inner.log.is_empty()),
            (Section::DeliveryMarks, !inner.marks.is_empty()),
            (Section::ParkedRecords, !inner.parked.is_empty()),
        ];
        Ok(occupied.into_iter().find(|(_, o)| *o).map(|(s, _)| s))
    }

    async fn import_page(&self, items: &SectionItems) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match items {
            SectionItems::Principals(v) => {
                for p in v {
                    let principal = Principal {
                        name: p.name.clone(),
                        kind: p.kind,
                        role: p.roles.get(TENANT).copied(),
                        created_at: p.created_at,
                        revoked_at: p.revoked_at,
                    };
                    inner.principals.insert(p.name.clone(), principal);
                }
            }
            SectionItems::Credentials(v) => {
                for c in v {
                    let token = ApiToken {
                        name: c.name.clone(),
                        principal: c.principal.clone(),
                        created_at: c.created_at,
                        expires_at: c.expires_at,
                        revoked_at: c.revoked_at,
                        tenants: Vec::new(),
                    };
                    inner.tokens.insert(c.name.clone(), (token, c.token_hash.clone()));
                }
            }
            SectionItems::PendingChanges(v) => inner.pending.extend(v.iter().map(|p| p.change.clone())),
            SectionItems::Safety(state) => {
                if let Some(state) = state {
                    inner.safety = state.clone();
                }
            }
            SectionItems::Actions(v) => {
                for a in v {
                    let id = a.detail.action.id;
                    inner.order.insert((a.detail.action.created_at, id));
                    inner.actions.insert(id, a.detail.clone());
                    inner.transitions.extend(a.legacy_transitions.iter().cloned());
                    inner.action_leases.insert(id, slot_of(&a.lease));
                }
            }
            SectionItems::LimitSlots(v) => {
                for s in v {
                    inner.slots.entry(s.key.clone()).or_default().push((s.at, s.action_id));
                }
            }
            SectionItems::NamedLeases(v) => {
                for l in v {
                    inner.named_leases.insert(l.name.clone(), slot_of(&l.lease));
                }
            }
            SectionItems::Audit(v) => {
                for r in v {
                    let record = AuditRecord::from_json(&r.json)
                        .map_err(|e| backend(format!("audit record {} cannot be read: {e}", r.seq)))?;
                    let expected = inner.log.last().map_or(1, |l| l.seq + 1);
                    let prev = inner.log.last().map_or(remediation_core::hash::GENESIS_HASH, |l| l.hash.as_str());
                    if record.seq != expected || record.prev_hash != prev {
                        return Err(backend(format!("audit record {} does not extend the chain", r.seq)));
                    }
                    if let AuditBody::Transition(t) = &record.body {
                        inner.transitions.push(t.clone());
                    }
                    // The record's leaf in the verifiable log, as sealing computes it.
                    inner.leaves.push(remediation_audit::merkle::leaf_hash(r.json.as_bytes()).0);
                    inner.log.push(record);
                }
            }
            SectionItems::PendingAudit(v) => {
                let now = inner.clock.now();
                for e in v {
                    if let AuditBody::Transition(t) = &e.body {
                        inner.transitions.push(t.clone());
                    }
                    inner.unsealed.push((e.body.clone(), now));
                }
            }
            SectionItems::DeliveryMarks(v) => {
                for m in v {
                    inner.marks.insert(m.mark.sink.clone(), m.mark.clone());
                }
            }
            SectionItems::ParkedRecords(v) => {
                for p in v {
                    if !inner.marks.contains_key(&p.record.sink) {
                        return Err(backend(format!(
                            "a parked record names sink `{}`, which has no mark",
                            p.record.sink
                        )));
                    }
                    inner.parked.insert((p.record.sink.clone(), p.record.seq), p.record.clone());
                }
            }
            SectionItems::Checkpoint(None) => {}
            SectionItems::Checkpoint(Some(_)) => return Err(StoreError::Unsupported { what: "audit checkpoints" }),
            other => return Err(backend(format!("cannot import {}", other.section()))),
        }
        Ok(())
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Fills `store` through its ordinary methods with one of everything a copy must carry:
/// principals (one revoked) with token credentials, a pending change, a changed safety state,
/// `actions` actions spread over pending, approved, executing under a lease with a limit slot,
/// and completed, a named lease, a note, and two sinks' delivery marks with parked records (one
/// asked for again). Returns the hash of a live token.
pub async fn populate(store: &dyn Store, actions: u64) -> String {
    let t0 = fixed_time();
    let admin = Actor::new("local:root", Role::Admin);
    store.create_principal("alice", PrincipalKind::Person, Role::Approver, &admin, t0).await.expect("principal");
    store.create_principal("ci", PrincipalKind::Service, Role::Requester, &admin, t0).await.expect("principal");
    let live = "ab".repeat(32);
    let year = t0 + Duration::days(365);
    store.create_token("alice", "alice-laptop", &live, year, &admin, t0).await.expect("token");
    store.create_token("ci", "ci-token", &"cd".repeat(32), year, &admin, t0).await.expect("token");
    store.revoke_principal("ci", &admin, "the pipeline moved", t0 + Duration::minutes(1)).await.expect("revoke");
    let change = PendingChange {
        id: "01900000-0000-7000-8000-00000000c0de".to_owned(),
        status: PendingStatus::Pending,
        summary: "make alice admin".to_owned(),
        change: serde_json::json!({"role": {"principal": "alice", "to": "admin"}}),
        reason: "on call".to_owned(),
        proposed_by: "local:root".to_owned(),
        proposed_credential: None,
        proposed_at: t0,
        expires_at: t0 + Duration::days(1),
        decided_by: None,
        decided_credential: None,
        decided_at: None,
        note: None,
    };
    store.propose_change(&change, &admin).await.expect("propose");
    let before = store.safety_state().await.expect("safety");
    let after = SafetyState { breaker_tripped: true, ..before.clone() };
    let record = SettingsRecord {
        setting_event: "breaker_tripped".to_owned(),
        actor: "system".to_owned(),
        credential: None,
        at: t0 + Duration::minutes(2),
        comment: Some("global limit".to_owned()),
        previous: serde_json::to_value(&before).expect("json"),
        value: serde_json::to_value(&after).expect("json"),
        action_id: None,
    };
    store.update_safety_state(&before, &after, &record).await.expect("safety");
    let lease = LeaseRequest { holder: "worker-1".to_owned(), ttl: std::time::Duration::from_secs(3600) };
    for n in 0..actions {
        let at = t0 + Duration::seconds(i64::try_from(n).unwrap_or(0));
        let mut detail = ActionBuilder::new().seed(n + 1).state(State::PendingApproval).at(at).detail().build();
        detail.approval_expires_at = Some(at + Duration::days(7));
        let id = detail.action.id;
        store
            .create_action(&detail, &transition(id, None, State::PendingApproval, "suggest", at))
            .await
            .expect("create");
        if n % 4 == 0 {
            continue;
        }
        let approve =
            transition(id, Some(State::PendingApproval), State::Approved, "approve", at + Duration::minutes(1));
        store.apply(&StateChange::new(approve, DetailUpdate::default())).await.expect("approve");
        if n % 4 == 1 {
            continue;
        }
        let mut begin = StateChange::new(
            transition(id, Some(State::Approved), State::Executing, "begin_execution", at + Duration::minutes(2)),
            DetailUpdate { before: Some(snap(serde_json::json!({"member": true}))), ..DetailUpdate::default() },
        );
        begin.lease = Some(lease.clone());
        let out = store.begin_execution(&begin, &[slot("connector:sandbox", 1_000_000, 3600)], true).await;
        assert!(matches!(out, Ok(BeginOutcome::Started(_))), "{out:?}");
        if n % 4 == 2 {
            continue;
        }
        let epoch = store.lease(id).await.expect("lease").map(|l| l.epoch);
        let mut done = StateChange::new(
            transition(id, Some(State::Executing), State::Completed, "complete", at + Duration::minutes(3)),
            DetailUpdate { after: Some(snap(serde_json::json!({"member": false}))), ..DetailUpdate::default() },
        );
        done.fence = epoch;
        store.apply(&done).await.expect("complete");
    }
    let job = LeaseRequest { holder: "sequencer-1".to_owned(), ttl: std::time::Duration::from_secs(3600) };
    assert!(store.acquire_lease("audit-sequencer", &job).await.expect("named lease").is_some());
    let note = SettingsRecord {
        setting_event: "execution_refused".to_owned(),
        actor: "local:bob".to_owned(),
        credential: None,
        at: t0 + Duration::minutes(5),
        comment: Some("kill switch".to_owned()),
        previous: serde_json::Value::Null,
        value: serde_json::Value::Null,
        action_id: None,
    };
    store.append_note(&note).await.expect("note");
    // Two sinks part way through the log, one with parked records (one asked for again).
    let at = t0 + Duration::minutes(6);
    store.register_sink("audit/file", 0, at).await.expect("register");
    store.register_sink("events/siem", 0, at).await.expect("register");
    // More parked records than a page of the copy holds.
    let refused = (2..=10).map(|seq| (seq, format!("HTTP 400: record {seq} has an unknown field"))).collect();
    let advance = MarkAdvance { sink: "events/siem".to_owned(), from: 0, to: 12, parked: refused, at, fence: None };
    store.advance_sink(&advance).await.expect("advance");
    assert_eq!(store.request_replay("events/siem", Some(vec![3])).await.expect("replay"), 1);
    live
}

/// Every action, page by page.
async fn all_actions(store: &dyn Store) -> Vec<Action> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = store.list(&ActionFilter::default(), &page).await.expect("list");
        out.extend(got.items);
        match got.next {
            Some(after) => page = PageRequest { after: Some(after), ..page },
            None => return out,
        }
    }
}

/// Every audit record, page by page.
async fn all_records(store: &dyn Store) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::new();
    loop {
        let page = store.audit_page(&AuditFilter::default(), out.last().map(|r| r.seq), 1000).await.expect("audit");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Asserts that `to` reads exactly as `from` through every store method: actions (detail,
/// transitions, lease), principals, tokens and the credential behind `token_hash`, pending
/// changes, safety state, limit slots, the named lease, delivery marks and parked records, and
/// the audit log (every record equal, and the same verification). `deep` also compares every action's detail one by one.
pub async fn assert_same(from: &dyn Store, to: &dyn Store, token_hash: &str, deep: bool) {
    let actions = all_actions(from).await;
    assert_eq!(actions, all_actions(to).await, "the same actions, in the same order");
    let step = if deep { 1 } else { (actions.len() / 50).max(1) };
    for a in actions.iter().step_by(step) {
        assert_eq!(from.get(a.id).await.expect("get"), to.get(a.id).await.expect("get"), "detail of {}", a.id);
        assert_eq!(from.transitions(a.id).await.expect("t"), to.transitions(a.id).await.expect("t"), "transitions");
        assert_eq!(from.lease(a.id).await.expect("lease"), to.lease(a.id).await.expect("lease"), "lease of {}", a.id);
    }
    assert_eq!(from.count_by_state().await.expect("counts"), to.count_by_state().await.expect("counts"));
    assert_eq!(from.list_principals().await.expect("p"), to.list_principals().await.expect("p"));
    assert_eq!(from.list_tokens().await.expect("t"), to.list_tokens().await.expect("t"));
    let now = fixed_time() + Duration::days(1);
    let credential = to.credential_by_hash(token_hash, now).await.expect("credential");
    assert!(credential.is_some(), "the token still authenticates after the copy");
    assert_eq!(from.credential_by_hash(token_hash, now).await.expect("credential"), credential);
    assert_eq!(from.pending_changes(None).await.expect("pc"), to.pending_changes(None).await.expect("pc"));
    assert_eq!(from.safety_state().await.expect("s"), to.safety_state().await.expect("s"));
    let epoch = OffsetDateTime::UNIX_EPOCH;
    let mut slots = (from.slots_since(epoch).await.expect("slots"), to.slots_since(epoch).await.expect("slots"));
    slots.0.sort();
    slots.1.sort();
    assert_eq!(slots.0, slots.1, "the same limit slots");
    let rival = LeaseRequest { holder: "rival".to_owned(), ttl: std::time::Duration::from_secs(60) };
    assert_eq!(
        to.acquire_lease("audit-sequencer", &rival).await.expect("named"),
        None,
        "the named lease is still held"
    );
    assert_eq!(from.sink_marks().await.expect("marks"), to.sink_marks().await.expect("marks"), "the same marks");
    assert_eq!(from.parked(None).await.expect("parked"), to.parked(None).await.expect("parked"), "the same parked");
    assert_eq!(all_records(from).await, all_records(to).await, "the same audit records");
    let (a, b) = (from.verify_audit().await.expect("verify"), to.verify_audit().await.expect("verify"));
    assert!(b.is_intact(), "{b}");
    assert_eq!((a.records, a.head), (b.records, b.head));
}

/// Copies a populated `from` into the empty `to` with [`copy_installation`] (small pages, so
/// paging is exercised) and checks the result with [`assert_same`]; then checks that a second
/// copy into the now occupied `to` is refused.
pub async fn round_trip(from: &dyn TransferStore, to: &dyn TransferStore, actions: u64) {
    let hash = populate(from, actions).await;
    let old_head = sign_log(from).await;
    let mut pages = 0u64;
    let report = copy_installation(from, to, 7, &mut |_| pages += 1).await.expect("copy");
    assert!(pages > 1, "the copy went page by page");
    assert_eq!(report.copied.get(&Section::Actions).copied(), Some(actions));
    assert_eq!(report.copied.get(&Section::DeliveryMarks).copied(), Some(2));
    assert_eq!(report.copied.get(&Section::ParkedRecords).copied(), Some(9));
    assert_eq!(report.source_audit.head, report.target_audit.head);
    assert_same(from, to, &hash, true).await;
    assert_same_log(from, to, &old_head).await;
    let again = copy_installation(from, to, 7, &mut |_| {}).await;
    assert!(matches!(again, Err(remediation_core::store::transfer::CopyError::TargetNotEmpty { .. })), "{again:?}");
}

/// Signs `store`'s sequenced log as a log with one key rotation: key 1 signs a head over the
/// first half, key 2 (published beside it) the whole log, extending it. Returns the first head.
pub async fn sign_log(store: &dyn Store) -> remediation_audit::SignedTreeHead {
    use remediation_audit::LogSigningKey;
    use remediation_audit::merkle::{ConsistencyProof, MerkleHash, root};
    let size = store.audit_size().await.expect("size");
    assert!(size >= 2, "a log to sign");
    let leaves: Vec<MerkleHash> =
        store.leaf_hashes(0, size).await.expect("leaves").into_iter().map(MerkleHash).collect();
    let (one, two) = (LogSigningKey::from_seed(&[41; 32]), LogSigningKey::from_seed(&[42; 32]));
    let t0 = fixed_time();
    store.publish_key(&one.published().to_stored(t0)).await.expect("publish");
    let half = size / 2;
    let first =
        one.sign_next(None, half, root(&leaves[..usize::try_from(half).expect("half")]), &[], t0).expect("sign");
    store.store_tree_head(&first.clone().into(), None).await.expect("store the head");
    store.publish_key(&two.published().to_stored(t0 + Duration::seconds(1))).await.expect("publish");
    let proof = ConsistencyProof::generate(&leaves, half, size).expect("consistency").path;
    let second = two.sign_next(Some(&first), size, root(&leaves), &proof, t0 + Duration::seconds(1)).expect("sign");
    store.store_tree_head(&second.into(), Some(half)).await.expect("store the head");
    first
}

/// The target of a copy answers for the verifiable log as the source does: the same keys, the
/// same latest head, whose root the target's leaves give; and `old_head`, signed before a key
/// rotation, verifies under the target's keys.
pub async fn assert_same_log(from: &dyn Store, to: &dyn Store, old_head: &remediation_audit::SignedTreeHead) {
    use remediation_audit::merkle::{MerkleHash, root};
    use remediation_audit::{PublicKeySet, SignedTreeHead};
    let keys = to.published_keys().await.expect("keys");
    assert_eq!(from.published_keys().await.expect("keys"), keys, "every published key");
    let latest = to.latest_tree_head().await.expect("latest").expect("the latest head was copied");
    assert_eq!(from.latest_tree_head().await.expect("latest"), Some(latest.clone()), "the same latest head");
    let mut set = PublicKeySet::default();
    for key in keys {
        set.publish(key.into());
    }
    let latest = SignedTreeHead::try_from(latest).expect("a head");
    set.verify(&latest).expect("the latest head verifies on the target");
    set.verify(old_head).expect("a head signed before the rotation still verifies");
    let leaves: Vec<MerkleHash> =
        to.leaf_hashes(0, latest.head.tree_size).await.expect("leaves").into_iter().map(MerkleHash).collect();
    assert_eq!(root(&leaves), latest.head.root_hash, "the target's leaves give the head's root");
}

/// A source whose oldest records were archived is refused before anything is written, with
/// the error naming the archive.
pub async fn archived_source_is_refused(from: &dyn TransferStore, to: &dyn TransferStore) {
    use remediation_core::store::transfer::CopyError;
    for seed in 0..4 {
        let detail =
            ActionBuilder::new().seed(700 + seed).state(State::PendingApproval).at(fixed_time()).detail().build();
        let a = &detail.action;
        from.create_action(&detail, &transition(a.id, None, a.state, "suggest", a.created_at)).await.expect("create");
    }
    from.sequence_pending().await.expect("sequence");
    sign_log(from).await;
    let records = all_records(from).await;
    let last = &records[1];
    let head = from.latest_tree_head().await.expect("latest").expect("a head");
    let archive = remediation_core::AuditArchive {
        through_seq: last.seq,
        last_hash: last.hash.clone(),
        tree_size: head.tree_size,
        root_hash: head.root_hash,
        file_sha256: "0".repeat(64),
        archived_at: fixed_time(),
    };
    assert_eq!(from.archive_audit(&archive).await.expect("archive"), 2);
    let refused = copy_installation(from, to, 7, &mut |_| {}).await;
    match &refused {
        Err(e @ CopyError::ArchivedRecords { through_seq: 2 }) => {
            assert!(e.to_string().contains("records 1 to 2 were moved to archive files"), "{e}");
        }
        other => panic!("expected ArchivedRecords, got {other:?}"),
    }
    assert_eq!(to.occupied().await.expect("occupied"), None, "nothing was written");
    assert!(to.published_keys().await.expect("keys").is_empty(), "not even a key");
}

#[cfg(test)]
mod tests {
    use super::*;
    use remediation_core::AuditLog as _;

    #[tokio::test]
    async fn the_in_memory_store_round_trips() {
        round_trip(&InMemoryStore::new(), &InMemoryStore::new(), 10).await;
    }

    #[tokio::test]
    async fn an_in_memory_store_with_archived_records_is_refused() {
        archived_source_is_refused(&InMemoryStore::new(), &InMemoryStore::new()).await;
    }

    #[tokio::test]
    async fn entries_waiting_for_the_sequencer_are_copied_and_sealed_on_the_target() {
        let (from, to) = (InMemoryStore::new(), InMemoryStore::new());
        populate(&from, 3).await;
        from.hold_sequencing(true);
        populate_more_of(&from).await;
        let waiting = from.unsequenced().await.expect("unsequenced");
        assert!(waiting > 0);
        copy_installation(&from, &to, 7, &mut |_| {}).await.expect("copy");
        assert_eq!(to.unsequenced().await.expect("unsequenced"), waiting);
        assert_eq!(to.sequence_pending().await.expect("sequence"), waiting);
        assert!(to.verify_audit().await.expect("verify").is_intact());
    }

    /// One more audited note.
    async fn populate_more_of(store: &InMemoryStore) {
        let note = SettingsRecord {
            setting_event: "written_while_held".to_owned(),
            actor: "local:admin".to_owned(),
            credential: None,
            at: fixed_time(),
            comment: None,
            previous: serde_json::Value::Null,
            value: serde_json::Value::Null,
            action_id: None,
        };
        store.append_note(&note).await.expect("note");
    }

    /// A source that a writer extends while the copy reads it (once its last section was read).
    struct Busy(InMemoryStore);

    #[async_trait]
    impl remediation_core::AuditLog for Busy {
        async fn audit_page(
            &self,
            filter: &AuditFilter,
            after_seq: Option<u64>,
            limit: usize,
        ) -> Result<Vec<AuditRecord>, StoreError> {
            self.0.audit_page(filter, after_seq, limit).await
        }
        async fn verify_audit(&self) -> Result<remediation_core::ChainReport, StoreError> {
            self.0.verify_audit().await
        }
        async fn adopt_audit_chain(&self) -> Result<remediation_core::ChainReport, StoreError> {
            self.0.adopt_audit_chain().await
        }
        async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
            self.0.append_note(record).await
        }
        async fn audit_size(&self) -> Result<u64, StoreError> {
            self.0.audit_size().await
        }
        async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<remediation_core::LeafHash>, StoreError> {
            self.0.leaf_hashes(start, end).await
        }
        async fn store_tree_head(
            &self,
            head: &remediation_core::StoredTreeHead,
            previous_size: Option<u64>,
        ) -> Result<(), StoreError> {
            self.0.store_tree_head(head, previous_size).await
        }
        async fn latest_tree_head(&self) -> Result<Option<remediation_core::StoredTreeHead>, StoreError> {
            self.0.latest_tree_head().await
        }
        async fn tree_head_at(&self, tree_size: u64) -> Result<Option<remediation_core::StoredTreeHead>, StoreError> {
            self.0.tree_head_at(tree_size).await
        }
        async fn publish_key(&self, key: &remediation_core::StoredPublicKey) -> Result<(), StoreError> {
            self.0.publish_key(key).await
        }
        async fn published_keys(&self) -> Result<Vec<remediation_core::StoredPublicKey>, StoreError> {
            self.0.published_keys().await
        }
        async fn archive_audit(&self, archive: &remediation_core::AuditArchive) -> Result<u64, StoreError> {
            self.0.archive_audit(archive).await
        }
        async fn sequencing_backlog(&self) -> Result<remediation_core::SequencingBacklog, StoreError> {
            self.0.sequencing_backlog().await
        }
        fn take_sequencing_lags(&self) -> Vec<std::time::Duration> {
            self.0.take_sequencing_lags()
        }
        async fn sequence_pending(&self) -> Result<u64, StoreError> {
            self.0.sequence_pending().await
        }
        async fn unsequenced(&self) -> Result<u64, StoreError> {
            self.0.unsequenced().await
        }
        async fn stop_sequencing(&self) -> Result<(), StoreError> {
            self.0.stop_sequencing().await
        }
    }

    #[async_trait]
    impl InstallationExport for Busy {
        async fn export_counts(&self) -> Result<BTreeMap<Section, u64>, StoreError> {
            self.0.export_counts().await
        }
        async fn export_page(
            &self,
            section: Section,
            after: Option<String>,
            limit: usize,
        ) -> Result<ExportPage, StoreError> {
            let page = self.0.export_page(section, after, limit).await?;
            if section == Section::Checkpoint {
                let note = SettingsRecord {
                    setting_event: "written_during_the_copy".to_owned(),
                    actor: "system".to_owned(),
                    credential: None,
                    at: fixed_time(),
                    comment: None,
                    previous: serde_json::Value::Null,
                    value: serde_json::Value::Null,
                    action_id: None,
                };
                self.0.append_note(&note).await?;
            }
            Ok(page)
        }
    }

    #[tokio::test]
    async fn a_source_written_to_during_the_copy_fails_it() {
        let busy = Busy(InMemoryStore::new());
        populate(&busy.0, 3).await;
        let err = copy_installation(&busy, &InMemoryStore::new(), 5, &mut |_| {}).await.expect_err("changed");
        assert!(matches!(err, remediation_core::store::transfer::CopyError::SourceChanged { .. }), "{err}");
        assert!(err.to_string().contains("stop every server"), "{err}");
    }
}
