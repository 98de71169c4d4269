//! Incident response: a person's accounts across every connected directory
//! ([`identity`]), explicit links of a person to an account ([`link_account`]), and one call
//! that cuts an exposed person off everywhere ([`respond`]).
//!
//! A person is found in a connection only by a key the organisation controls (each
//! connector's [`remediation_core::Connector::find_account`]), or by a link an admin recorded;
//! every action then names the account by the provider's canonical id.

use std::collections::BTreeMap;

use remediation_core::{
    Account, AccountKey, ActionKind, ActionRequest, Actor, Connector, EngineError, ExecuteOutcome, KindName,
    Preapproval, Role, SettingsRecord, State, check_person_key,
};
use remediation_runtime::Runtime;
use remediation_runtime::access::AccessError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// The document collection of explicit links.
pub const LINKS: &str = "identity_link";

/// The kinds a response may ask for: those that act on a whole account.
pub const RESPOND_KINDS: [KindName; 4] =
    [KindName::RevokeSessions, KindName::ForcePasswordReset, KindName::Suspend, KindName::Notify];

/// One account found for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FoundAccount {
    /// The connection it was found in.
    pub connector: String,
    /// That connection's type (`okta`, `entra`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The account, by the provider's canonical id, with the connector's view of it.
    pub account: Account,
    /// The account-level kinds this connection can carry out on it.
    pub can: Vec<KindName>,
}

/// A connection that could not say whether it knows the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LookupProblem {
    /// The connection.
    pub connector: String,
    /// `unsupported` (it cannot look people up) or `failed` (the provider failed).
    pub outcome: String,
    /// Why, in plain words.
    pub message: String,
}

/// A person's accounts across the tenant's connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdentityView {
    /// The person, as asked for.
    pub identity: String,
    /// Every account found, by connection.
    pub accounts: Vec<FoundAccount>,
    /// Connections that found nothing.
    pub not_found: Vec<String>,
    /// Connections that could not look, and why.
    pub problems: Vec<LookupProblem>,
}

/// An explicit link of a person to an account in one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The connection.
    pub connector: String,
    /// The account in it (the provider's id or login).
    pub account: String,
}

/// The links of one person, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// Every link, one per connection at most.
    pub links: Vec<Link>,
}

fn person_key(identity: &str) -> Result<String, ServiceError> {
    check_person_key(identity).map_err(|message| ServiceError::Invalid { field: "identity", message })?;
    Ok(identity.to_lowercase())
}

/// The explicit links of `identity`.
pub async fn links(runtime: &Runtime, identity: &str) -> Result<Links, ServiceError> {
    let key = person_key(identity)?;
    match runtime.store().document(LINKS, &key).await? {
        Some(doc) => serde_json::from_value(doc.body).map_err(|e| ServiceError::Invalid {
            field: "identity",
            message: format!("the stored links of {identity} cannot be read: {e}"),
        }),
        None => Ok(Links::default()),
    }
}

/// Links `identity` to `account` in `connector` (an admin), replacing an earlier link in that
/// connection, or removes the link when `account` is `None`. Audited as `identity_linked` or
/// `identity_unlinked`. The account must exist: the connector resolves it first.
pub async fn link_account(
    runtime: &Runtime,
    actor: &Actor,
    identity: &str,
    connector: &str,
    account: Option<&str>,
    reason: &str,
) -> Result<Links, ServiceError> {
    if actor.role != Role::Admin {
        return Err(ServiceError::Access(AccessError::NotAdmin {
            actor: actor.name.clone(),
            role: actor.role,
            what: "link a person to an account".to_owned(),
        }));
    }
    if reason.trim().is_empty() {
        return Err(ServiceError::Invalid {
            field: "reason",
            message: "a reason is required; it is kept in the audit".into(),
        });
    }
    let key = person_key(identity)?;
    let entries = runtime.connector_entries().await?;
    let Some(entry) = entries.iter().find(|e| e.connector.id() == connector) else {
        return Err(ServiceError::NotFound { what: format!("no connection `{connector}`") });
    };
    if let Some(account) = account {
        check_person_key(account).map_err(|message| ServiceError::Invalid { field: "account", message })?;
        match entry.connector.find_account(&AccountKey::Link(account.to_owned())).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(ServiceError::NotFound { what: format!("`{connector}` has no account `{account}`") });
            }
            Err(e) => {
                return Err(ServiceError::Engine(EngineError::Connector {
                    connector: connector.to_owned(),
                    operation: "find the account",
                    source: e,
                }));
            }
        }
    }
    let store = runtime.store();
    let existing = store.document(LINKS, &key).await?;
    let mut links: Links = match &existing {
        Some(doc) => serde_json::from_value(doc.body.clone()).unwrap_or_default(),
        None => Links::default(),
    };
    let previous = links.links.iter().find(|l| l.connector == connector).map(|l| l.account.clone());
    links.links.retain(|l| l.connector != connector);
    if let Some(account) = account {
        links.links.push(Link { connector: connector.to_owned(), account: account.to_owned() });
        links.links.sort_by(|a, b| a.connector.cmp(&b.connector));
    }
    let at = runtime.clock().now();
    let note = SettingsRecord {
        setting_event: if account.is_some() { "identity_linked" } else { "identity_unlinked" }.to_owned(),
        actor: actor.name.clone(),
        credential: actor.credential.clone(),
        at,
        comment: Some(reason.to_owned()),
        previous: serde_json::json!({ "identity": key, "connector": connector, "account": previous }),
        value: serde_json::json!({ "identity": key, "connector": connector, "account": account }),
        action_id: None,
    };
    let body =
        serde_json::to_value(&links).map_err(|e| ServiceError::Invalid { field: "links", message: e.to_string() })?;
    store
        .put_document(&remediation_core::DocumentWrite {
            collection: LINKS.to_owned(),
            id: key,
            expected_revision: existing.map_or(0, |d| d.revision),
            body,
            actor: actor.name.clone(),
            at,
            note: Some(note),
        })
        .await?;
    Ok(links)
}

/// Finds `identity`'s accounts in every connection of the tenant: by the connection's
/// explicit link when there is one, else by the person's key (see
/// [`remediation_core::Connector::find_account`]). Reads only (any role).
pub async fn identity(runtime: &Runtime, identity: &str) -> Result<IdentityView, ServiceError> {
    person_key(identity)?;
    let links = links(runtime, identity).await?;
    let entries = runtime.connector_entries().await?;
    let mut view = IdentityView {
        identity: identity.to_owned(),
        accounts: Vec::new(),
        not_found: Vec::new(),
        problems: Vec::new(),
    };
    for entry in &entries {
        let connector = &entry.connector;
        let id = connector.id().to_owned();
        let key = match links.links.iter().find(|l| l.connector == id) {
            Some(link) => AccountKey::Link(link.account.clone()),
            None => AccountKey::Person(identity.to_owned()),
        };
        match connector.find_account(&key).await {
            Ok(Some(mut account)) => {
                if matches!(key, AccountKey::Link(_)) {
                    "link".clone_into(&mut account.matched_by);
                }
                let can = account_kinds(connector.as_ref());
                view.accounts.push(FoundAccount { connector: id, type_name: entry.type_name.clone(), account, can });
            }
            Ok(None) => view.not_found.push(id),
            Err(e) if e.kind == remediation_core::ConnectorErrorKind::Unsupported => {
                view.problems.push(LookupProblem { connector: id, outcome: "unsupported".into(), message: e.message });
            }
            Err(e) => {
                view.problems.push(LookupProblem { connector: id, outcome: "failed".into(), message: e.to_string() })
            }
        }
    }
    Ok(view)
}

/// The account-level kinds `connector` can carry out.
fn account_kinds(connector: &dyn Connector) -> Vec<KindName> {
    let caps = connector.capabilities();
    RESPOND_KINDS
        .into_iter()
        .filter(|k| caps.iter().any(|c| c.kind == *k && c.grant_type == grant_type_for(*k)))
        .collect()
}

/// The grant type a respond kind acts on: the account, or its notifications for `notify`.
fn grant_type_for(kind: KindName) -> &'static str {
    if kind == KindName::Notify { "notification" } else { remediation_core::ACCOUNT_GRANT_TYPE }
}

/// The target a respond kind acts on: the account, or its notifications for `notify`.
fn target_for(kind: KindName, account: &Account) -> remediation_core::Target {
    remediation_core::Target { grant_type: grant_type_for(kind).to_owned(), ..account.target() }
}

/// A request to cut a person off everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondRequest {
    /// The kinds to run on every account of the person, in order (`revoke_sessions`,
    /// `force_password_reset`, `suspend`, `notify`).
    pub actions: Vec<String>,
    /// Why (kept in the audit with the responder's name).
    pub reason: String,
    /// The finding that prompted it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

/// What became of one (connection, action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Done and read back (or already so).
    Completed,
    /// The provider failed, or the change was not observed.
    Failed,
    /// A safety rule refused it (a protected account, a gate).
    Refused,
    /// A blast-radius limit or the circuit breaker holds it; an admin releases it.
    Held,
    /// Not an emergency kind: it waits for approval as usual.
    PendingApproval,
    /// Guidance only (advisory mode) or a dry run: nothing was written.
    NotExecuted,
    /// The connection cannot do this action (Entra has no password reset).
    NotApplicable,
}

impl StepStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::Held => "held",
            Self::PendingApproval => "pending_approval",
            Self::NotExecuted => "not_executed",
            Self::NotApplicable => "not_applicable",
        }
    }
}

/// One (connection, action) of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RespondStep {
    /// The connection.
    pub connector: String,
    /// The account acted on (the provider's id).
    pub account: String,
    /// The kind.
    pub action: KindName,
    /// What became of it.
    pub status: StepStatus,
    /// The action created, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<remediation_core::ActionId>,
    /// Its short handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// Why, when it did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The overall outcome of a response (the HTTP status and CLI exit code follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RespondOutcome {
    /// Every applicable step completed (HTTP 200, exit 0).
    Completed,
    /// Every applicable step failed at the provider (HTTP 502, exit 5).
    Failed,
    /// Anything else: some completed, some held, refused or waiting (HTTP 207, exit 7).
    Partial,
}

/// The answer to a response: every (connection, action) with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RespondResult {
    /// The person.
    pub identity: String,
    /// The overall outcome.
    pub outcome: RespondOutcome,
    /// Every (connection, action), in the order run.
    pub steps: Vec<RespondStep>,
    /// Connections that could not say whether they know the person (the provider failed):
    /// the person may still have access there, so the outcome is never `completed` with one.
    #[serde(default)]
    pub lookup_failures: Vec<LookupProblem>,
}

/// Parses the kinds of a response: each must be a respond kind (400 otherwise), without
/// repeats, and at least one.
pub fn parse_respond_kinds(names: &[String]) -> Result<Vec<KindName>, ServiceError> {
    if names.is_empty() {
        return Err(ServiceError::Invalid { field: "actions", message: "name at least one action to run".into() });
    }
    let mut kinds = Vec::new();
    for name in names {
        let kind = RESPOND_KINDS.into_iter().find(|k| k.as_str() == name).ok_or_else(|| ServiceError::Invalid {
            field: "actions",
            message: format!(
                "`{}` is not an action a response runs (one of: {})",
                name.escape_debug(),
                RESPOND_KINDS.map(KindName::as_str).join(", ")
            ),
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// Cuts `identity` off everywhere: for every connection that knows the person and every
/// requested kind it can carry out, an action through the engine (validation, gates, limits
/// as always). Kinds of `[policy] emergency_kinds` run at once, the responder recorded as the
/// decider; other kinds wait for approval. A (connection, kind) the connection cannot do is
/// `not_applicable`. Needs the `responder` role or an admin.
///
/// Refused before anything is looked up: remediation disabled or a kill switch on (403 /
/// exit 3); an unknown kind, or no connection that can do any of them (400 / exit 2). No
/// connection knows the person: [`ServiceError::NotFound`] (404 / exit 4).
pub async fn respond(
    runtime: &Runtime,
    actor: &Actor,
    identity_key: &str,
    request: &RespondRequest,
) -> Result<RespondResult, ServiceError> {
    let result = respond_unaudited(runtime, actor, identity_key, request).await;
    // Every attempt is recorded, whatever came of it; each action has its own records too.
    let value = match &result {
        Ok(r) => serde_json::json!({
            "identity": identity_key,
            "actions": request.actions,
            "finding": request.finding,
            "outcome": r.outcome,
            "steps": r.steps.iter().map(|s| serde_json::json!({
                "connector": s.connector, "account": s.account, "action": s.action,
                "status": s.status, "action_id": s.action_id,
            })).collect::<Vec<_>>(),
        }),
        Err(e) => serde_json::json!({
            "identity": identity_key,
            "actions": request.actions,
            "finding": request.finding,
            "refused": e.to_string(),
        }),
    };
    let note = SettingsRecord {
        setting_event: "incident_response".to_owned(),
        actor: actor.name.clone(),
        credential: actor.credential.clone(),
        at: runtime.clock().now(),
        comment: Some(request.reason.clone()),
        previous: serde_json::Value::Null,
        value,
        action_id: None,
    };
    runtime.store().append_note(&note).await?;
    result
}

async fn respond_unaudited(
    runtime: &Runtime,
    actor: &Actor,
    identity_key: &str,
    request: &RespondRequest,
) -> Result<RespondResult, ServiceError> {
    if actor.role != Role::Responder && actor.role != Role::Admin {
        return Err(ServiceError::Engine(EngineError::Refused {
            rule: "roles".into(),
            reason: format!("{} is a {}; responding needs the responder or admin role", actor.name, actor.role),
        }));
    }
    let active = runtime.active().await?;
    let safety = active.engine.safety_state().await?;
    if !active.settings.enabled {
        return Err(refused_enablement("remediation is disabled (`[policy] enabled = false`); nothing is written"));
    }
    if let Some(why) = safety.kill_switch_refusal() {
        return Err(refused_enablement(why));
    }
    let kinds = parse_respond_kinds(&request.actions)?;
    if request.reason.trim().is_empty() {
        return Err(ServiceError::Invalid {
            field: "reason",
            message: "a reason is required; it is kept in the audit".into(),
        });
    }
    let entries = runtime.connector_entries().await?;
    let any_capable = entries.iter().any(|e| account_kinds(e.connector.as_ref()).iter().any(|k| kinds.contains(k)));
    if !any_capable {
        return Err(ServiceError::Invalid {
            field: "actions",
            message: format!("no connection can {}", kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")),
        });
    }
    let view = identity(runtime, identity_key).await?;
    if view.accounts.is_empty() {
        let mut what = format!("no connection knows {identity_key}");
        if !view.problems.is_empty() {
            let problems: Vec<String> =
                view.problems.iter().map(|p| format!("{}: {}", p.connector, p.message)).collect();
            what.push_str(&format!(" ({})", problems.join("; ")));
        }
        return Err(ServiceError::NotFound { what });
    }
    let engine = &active.engine;
    let mut steps = Vec::new();
    for kind in &kinds {
        for found in &view.accounts {
            let mut step = RespondStep {
                connector: found.connector.clone(),
                account: found.account.id.clone(),
                action: *kind,
                status: StepStatus::NotApplicable,
                action_id: None,
                handle: None,
                message: None,
            };
            if !found.can.contains(kind) {
                step.message = Some(format!("{} cannot {kind}", found.connector));
                steps.push(step);
                continue;
            }
            let action_kind = match kind {
                KindName::RevokeSessions => ActionKind::RevokeSessions,
                KindName::ForcePasswordReset => ActionKind::ForcePasswordReset,
                KindName::Suspend => ActionKind::Suspend,
                _ => ActionKind::Notify,
            };
            let engine_request = ActionRequest {
                connector: found.connector.clone(),
                kind: action_kind,
                target: target_for(*kind, &found.account),
                reason: request.reason.clone(),
                control_id: None,
                finding_id: request.finding.clone(),
                dry_run: false,
                campaign: None,
            };
            // A target already as asked (no session left to end) needs no action.
            if let Ok((plan, decision)) = engine.plan_request(&engine_request, actor, None).await
                && already_so(&plan, &decision)
            {
                step.status = StepStatus::Completed;
                step.message = Some("already in the requested state; nothing to do".into());
                steps.push(step);
                continue;
            }
            // The settings in force say which kinds are emergencies; the engine checks again.
            let suggestion = if active.settings.emergency_kinds.contains(kind) {
                engine.suggest_preapproved(engine_request, actor, &Preapproval::Emergency).await
            } else {
                engine.suggest(engine_request, actor).await
            };
            match suggestion {
                Err(e) => {
                    step.status = if matches!(e, EngineError::Connector { .. }) {
                        StepStatus::Failed
                    } else {
                        StepStatus::Refused
                    };
                    step.message = Some(e.to_string());
                }
                Ok(s) => {
                    step.action_id = Some(s.action.id);
                    step.handle = s.action.handle;
                    match s.action.state {
                        State::Approved => {
                            let (status, message) = run_now(runtime, s.action.id).await;
                            step.status = status;
                            step.message = message;
                        }
                        State::PendingApproval => {
                            step.status = StepStatus::PendingApproval;
                            step.message = Some(format!("{kind} is not an emergency kind: it waits for approval"));
                        }
                        other => {
                            step.status = StepStatus::NotExecuted;
                            step.message = Some(format!("stored as {other}: nothing was written"));
                        }
                    }
                }
            }
            steps.push(step);
        }
    }
    let applicable: Vec<&RespondStep> = steps.iter().filter(|s| s.status != StepStatus::NotApplicable).collect();
    let lookup_failures: Vec<LookupProblem> = view.problems.into_iter().filter(|p| p.outcome == "failed").collect();
    let outcome = if !applicable.is_empty()
        && lookup_failures.is_empty()
        && applicable.iter().all(|s| s.status == StepStatus::Completed)
    {
        RespondOutcome::Completed
    } else if !applicable.is_empty() && applicable.iter().all(|s| s.status == StepStatus::Failed) {
        RespondOutcome::Failed
    } else {
        RespondOutcome::Partial
    };
    Ok(RespondResult { identity: identity_key.to_owned(), outcome, steps, lookup_failures })
}

/// Whether `plan` changes nothing and the gates refused it for that alone: the target is
/// already as asked (no sessions left to end, a password already to be changed). A change the
/// connector cannot read back always looks like nothing, and is not refused for it.
pub(crate) fn already_so(plan: &remediation_core::Plan, decision: &remediation_core::PolicyDecision) -> bool {
    let mut refusals = decision.gates.iter().filter(|g| !g.passed && g.blocking);
    let only_validation = refusals.next().is_some_and(|g| g.gate == "validation") && refusals.next().is_none();
    // A protected target is reported refused, whatever state it is in.
    plan.is_no_op() && !plan.before.protected && only_validation
}

fn refused_enablement(why: &str) -> ServiceError {
    ServiceError::Engine(EngineError::Refused { rule: "enablement".into(), reason: why.to_owned() })
}

/// Executes an approved action now, as the engine does for auto-approved ones, and says what
/// became of it.
async fn run_now(runtime: &Runtime, id: remediation_core::ActionId) -> (StepStatus, Option<String>) {
    let attempt = crate::execute(runtime, &Actor::system(), id, false).await;
    match attempt.result {
        Ok(executed) => match executed.outcome {
            ExecuteOutcome::Completed { .. } => (StepStatus::Completed, None),
            ExecuteOutcome::Failed { error, .. } => (StepStatus::Failed, Some(error)),
            ExecuteOutcome::Held { limit, .. } => (
                StepStatus::Held,
                Some(format!(
                    "blast-radius limit `{}` reached ({} of {}); an admin may release or force it",
                    limit.slot.key, limit.used, limit.slot.limit
                )),
            ),
            ExecuteOutcome::HeldByBreaker { .. } => {
                (StepStatus::Held, Some("the circuit breaker is tripped; an admin resets it".into()))
            }
            ExecuteOutcome::PlanChanged { .. } => (
                StepStatus::PendingApproval,
                Some("the account changed meanwhile; the action waits for approval".into()),
            ),
            ExecuteOutcome::Requeued { not_before, .. } => {
                (StepStatus::Held, Some(format!("the provider asked to wait; retried after {not_before}")))
            }
            ExecuteOutcome::DryRun { .. } => (StepStatus::NotExecuted, Some("a dry run: nothing was written".into())),
        },
        Err(e) => {
            // A server's worker may have claimed the approved action first: what it came to
            // is the step's outcome.
            let state = match runtime.active().await {
                Ok(active) => active.engine.get(id).await.ok().map(|d| d.action.state),
                Err(_) => None,
            };
            match state {
                Some(State::Completed) => (StepStatus::Completed, None),
                Some(State::Executing) => (StepStatus::Held, Some("executing by the worker".into())),
                Some(State::Failed) => (StepStatus::Failed, Some(e.to_string())),
                _ if matches!(e, ServiceError::Engine(EngineError::Connector { .. })) => {
                    (StepStatus::Failed, Some(e.to_string()))
                }
                _ => (StepStatus::Refused, Some(e.to_string())),
            }
        }
    }
}

/// Counts of each step status, for summaries.
pub fn tally(steps: &[RespondStep]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for s in steps {
        *counts.entry(s.status.as_str()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
#[path = "incident_tests.rs"]
mod tests;
