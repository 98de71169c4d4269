//! Conformance case for tenants: a handle of one tenant never sees or changes another's rows.

use remediation_core::store::CampaignProgress;
use remediation_core::{
    Actor, AuditFilter, BeginOutcome, PageRequest, PrincipalKind, Role, SafetyState, SettingsRecord, State, StoreError,
    Tenant, TenantId,
};
use serde_json::json;
use time::Duration;

use super::{Subject, change, create, pending, sequence_all};
use crate::{fixed_time, slot, transition};

fn record(event: &str) -> SettingsRecord {
    SettingsRecord::by_actor(
        event,
        &Actor::new("local:root", Role::Admin),
        fixed_time(),
        "conformance".to_owned(),
        serde_json::Value::Null,
        json!({}),
    )
}

fn tenant(name: &str) -> Tenant {
    Tenant {
        name: TenantId::new(name).expect("name"),
        created_at: fixed_time(),
        created_by: "local:root".to_owned(),
        description: String::new(),
    }
}

async fn events(store: &dyn remediation_core::Store) -> Vec<String> {
    let page = store.audit_page(&AuditFilter::default(), None, 1000).await.expect("audit page");
    page.iter()
        .map(|r| match &r.body {
            remediation_core::AuditBody::Settings(s) => s.setting_event.clone(),
            other => other.action_id().map(|id| id.to_string()).unwrap_or_default(),
        })
        .collect()
}

/// Tenants are created once (the default one always exists) and listed; a handle of one
/// tenant sees none of another's actions, audit records, safety state, limit windows,
/// principals, tokens, campaigns or named leases, cannot change them, and has its own audit
/// chain starting at 1 with the `tenant_created` record.
pub async fn tenants(subject: Subject) {
    let a = subject.store;
    let acme = TenantId::new("acme").expect("name");
    a.create_tenant(&tenant("acme"), &record("tenant_created")).await.expect("create");
    assert!(matches!(
        a.create_tenant(&tenant("acme"), &record("tenant_created")).await,
        Err(StoreError::TenantConflict(_))
    ));
    assert!(matches!(
        a.create_tenant(&tenant("default"), &record("tenant_created")).await,
        Err(StoreError::TenantConflict(_))
    ));
    let names: Vec<String> = a.tenants().await.expect("tenants").into_iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["default", "acme"]);
    assert!(a.tenant(&acme).await.expect("tenant").is_some());
    assert!(a.tenant(&TenantId::new("other").expect("name")).await.expect("tenant").is_none());
    let b = a.for_tenant(&acme);
    assert_eq!(b.tenant_id(), acme);
    assert_eq!(a.tenant_id(), TenantId::default());
    assert_eq!(b.for_tenant(&TenantId::default()).tenant_id(), TenantId::default());

    // Actions.
    let t0 = fixed_time();
    let mine = pending(1, t0);
    create(a.as_ref(), &mine).await;
    assert!(matches!(b.get(mine.action.id).await, Err(StoreError::NotFound(_))), "B cannot read A's action");
    assert!(b.list(&Default::default(), &PageRequest::first(10)).await.expect("list").items.is_empty());
    let handle = a.get(mine.action.id).await.expect("get").action.handle.expect("handle");
    assert_eq!(b.action_by_handle(handle).await.expect("by handle"), None);
    let approve = change(&mine, State::PendingApproval, State::Approved, "approve", t0 + Duration::seconds(1));
    assert!(b.apply(&approve).await.is_err(), "B cannot change A's action");
    assert_eq!(a.get(mine.action.id).await.expect("get").action.state, State::PendingApproval);
    assert!(b.transitions(mine.action.id).await.map(|t| t.is_empty()).unwrap_or(true));
    let theirs = pending(2, t0);
    create(b.as_ref(), &theirs).await;
    assert!(matches!(a.get(theirs.action.id).await, Err(StoreError::NotFound(_))), "A cannot read B's action");

    // Audit: each tenant its own chain.
    sequence_all(a.as_ref()).await;
    sequence_all(b.as_ref()).await;
    let b_events = events(b.as_ref()).await;
    assert_eq!(b_events, ["tenant_created".to_owned(), theirs.action.id.to_string()], "B's log: its own records");
    let a_events = events(a.as_ref()).await;
    assert_eq!(a_events, [mine.action.id.to_string()], "A's log: its own records");
    let seqs: Vec<u64> =
        b.audit_page(&AuditFilter::default(), None, 10).await.expect("page").iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2], "B's chain starts at 1");
    assert!(a.verify_audit().await.expect("verify").is_intact());
    let report = b.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 2);

    // Safety state.
    let on = SafetyState { kill_switch: true, ..SafetyState::default() };
    a.update_safety_state(&SafetyState::default(), &on, &record("kill_switch_on")).await.expect("kill switch");
    assert!(a.safety_state().await.expect("state").kill_switch);
    assert!(!b.safety_state().await.expect("state").kill_switch, "A's kill switch is not B's");

    // Limit windows.
    let mut run = pending(3, t0);
    run.action.state = State::Approved;
    run.approval_expires_at = None;
    a.create_action(&run, &transition(run.action.id, None, State::Approved, "suggest", t0)).await.expect("create");
    let at = t0 + Duration::minutes(1);
    let begin = change(&run, State::Approved, State::Executing, "begin_execution", at);
    let started = a.begin_execution(&begin, &[slot("global", 1, 3600)], true).await.expect("begin");
    assert!(matches!(started, BeginOutcome::Started(_)));
    let full = a.check_limits(&[slot("global", 1, 3600)], at).await.expect("check");
    assert_eq!(full.map(|f| f.slot.key), Some("global".to_owned()), "A's window is full, under its own key");
    assert_eq!(b.check_limits(&[slot("global", 1, 3600)], at).await.expect("check"), None, "B's window is empty");
    let a_slots = a.slots_since(t0).await.expect("slots");
    assert_eq!(a_slots.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["global"]);
    assert!(b.slots_since(t0).await.expect("slots").is_empty());

    // Principals and tokens.
    let root = Actor::new("local:root", Role::Admin);
    a.create_principal("alice", PrincipalKind::Person, Role::Approver, &root, t0).await.expect("principal");
    assert!(b.principal("alice").await.expect("principal").is_none(), "B does not see A's principal");
    assert!(b.list_principals().await.expect("principals").is_empty());
    a.create_token("alice", "laptop", &"a".repeat(64), t0 + Duration::days(1), &root, t0).await.expect("token");
    assert!(a.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup").is_some());
    assert_eq!(b.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup"), None, "A's token is not B's");
    assert!(b.list_tokens().await.expect("tokens").is_empty());
    // An operator's token reaches another tenant only where its principal holds a role.
    assert!(
        a.set_token_tenants("laptop", std::slice::from_ref(&acme), &root, t0).await.is_err(),
        "alice holds no role in acme yet"
    );
    assert_eq!(b.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup"), None);
    // The same person in B: a role of its own there.
    let there = b.create_principal("alice", PrincipalKind::Person, Role::Viewer, &root, t0).await.expect("principal");
    assert_eq!(there.role, Some(Role::Viewer));
    assert_eq!(a.principal("alice").await.expect("principal").and_then(|p| p.role), Some(Role::Approver));
    assert!(a.set_token_tenants("laptop", std::slice::from_ref(&acme), &root, t0).await.expect("set tenants"));
    assert!(!a.set_token_tenants("nope", std::slice::from_ref(&acme), &root, t0).await.expect("no such token"));
    let reached = b.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup").expect("reaches acme");
    assert_eq!((reached.principal.as_str(), reached.role), ("alice", Role::Viewer), "with its role there");
    let home = a.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup").expect("home");
    assert_eq!(home.role, Role::Approver);
    let listed = a.list_tokens().await.expect("tokens");
    assert_eq!(listed.iter().map(|t| t.tenants.clone()).collect::<Vec<_>>(), [vec!["acme".to_owned()]]);
    let third = a.for_tenant(&TenantId::new("beta").expect("name"));
    assert_eq!(third.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup"), None, "not a listed tenant");
    assert!(b.revoke_principal("alice", &root, "left acme", t0).await.expect("revoke"));
    let still = a.principal("alice").await.expect("principal").expect("alice in A");
    assert!(still.revoked_at.is_none(), "leaving B does not revoke A's principal");
    assert!(a.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup").is_some(), "A's token still works");
    assert_eq!(b.credential_by_hash(&"a".repeat(64), t0).await.expect("lookup"), None, "but no longer in B");

    // Campaigns.
    let campaign = super::campaigns::campaign("q4", 1);
    a.create_campaign(&campaign, &[json!({})]).await.expect("campaign");
    assert!(b.campaign("q4").await.expect("campaign").is_none());
    assert!(b.campaigns().await.expect("campaigns").is_empty());
    let progress =
        CampaignProgress { cursor: 1, outcomes: Default::default(), reasons: Vec::new(), finished_at: None, at: t0 };
    assert!(b.record_campaign_progress("q4", &progress).await.is_err(), "B cannot move A's campaign");

    // Named leases.
    let lease = remediation_core::LeaseRequest { holder: "a".to_owned(), ttl: std::time::Duration::from_secs(60) };
    assert!(a.acquire_lease("relay", &lease).await.expect("acquire").is_some());
    let other = remediation_core::LeaseRequest { holder: "b".to_owned(), ttl: std::time::Duration::from_secs(60) };
    assert!(
        b.acquire_lease("relay", &other).await.expect("acquire").is_some(),
        "B's lease of the same name is its own"
    );
}
