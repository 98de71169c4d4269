//! The endpoint handlers: each checks the caller's role, calls the engine and converts the
//! result into the API's JSON.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use remediation_core::{
    Action, ActionFilter, ActionId, Actor, ExecuteOutcome, PageRequest, Role, RollbackOutcome, State, Suggestion,
};
use remediation_gates::PolicySettings;
use serde_json::{Value, json};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ActionPath, ApiJson, ApiQuery, OptionalJson};
use crate::types as t;
use crate::types::{
    ActionQuery, ActionReply, ActionView, AuditQuery, ConnectorQuery, ConnectorView, CreateAction, ExecuteBody,
    HealthView, KillSwitchBody, KillSwitchView, LimitsView, NoteBody, OutcomeView, Page, PendingQuery, PendingReply,
    ReasonBody, SettingsPatch, SettingsView, SuggestionView,
};
use remediation_runtime::access::Outcome;

/// A JSON response with a status.
pub(crate) fn reply<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}

/// True when a gate turned the requested mode into manual (an outcome worth a 202).
fn dropped_to_manual(s: &Suggestion) -> bool {
    s.decision.mode == remediation_core::Mode::Auto && s.decision.effective_mode() == remediation_core::Mode::Manual
}

/// The view of a stored suggestion.
pub(crate) fn suggestion_view(s: Suggestion, intake: Option<&str>) -> SuggestionView {
    let guidance = (s.action.state == State::Suggested).then(|| remediation_core::guidance(&s.action, Some(&s.plan)));
    SuggestionView { action: s.action, plan: s.plan, decision: s.decision, guidance, intake: intake.map(str::to_owned) }
}

/// The status of a stored suggestion: 201, or 202 when a gate dropped it to manual.
pub(crate) fn suggestion_status(s: &Suggestion) -> StatusCode {
    if dropped_to_manual(s) { StatusCode::ACCEPTED } else { StatusCode::CREATED }
}

pub(crate) async fn create_action(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateAction>,
) -> Result<Response, ApiError> {
    let about = json!({"connector": body.connector, "kind": body.kind, "target": body.target});
    let actor = caller.require_audited(&state, Role::Requester, "suggestion_refused", about).await?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "a reason is required; it is kept in the audit"));
    }
    let s = remediation_service::suggest(state.runtime(), actor, body.into_request()).await?;
    let status = suggestion_status(&s);
    Ok(reply(status, &suggestion_view(s, None)))
}

/// The store's filter and page for an `ActionQuery`; 400 for a bad limit or cursor.
pub(crate) fn action_page(q: &ActionQuery) -> Result<(ActionFilter, PageRequest), ApiError> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 500"));
    }
    let after = match &q.cursor {
        Some(c) => Some(c.parse::<ActionId>().map_err(|_| ApiError::invalid("cursor", "invalid cursor"))?),
        None => None,
    };
    let filter = ActionFilter {
        state: q.state,
        connector: q.connector.clone(),
        identity: q.identity.clone(),
        control: q.control.clone(),
        campaign: q.campaign.clone(),
    };
    Ok((filter, PageRequest { after, limit }))
}

/// The wire page of a store page: the cursor is the last item's id, as before.
pub(crate) fn wire_page(page: remediation_core::Page<Action>) -> Page<Action> {
    Page { items: page.items, next_cursor: page.next.map(|id| id.to_string()) }
}

pub(crate) async fn list_actions(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ActionQuery>,
) -> Result<Json<Page<Action>>, ApiError> {
    caller.require(Role::Viewer)?;
    let engine = state.runtime().active().await?.engine;
    let (filter, page) = action_page(&q)?;
    Ok(Json(wire_page(engine.list_page(&filter, &page).await?)))
}

pub(crate) async fn get_action(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
) -> Result<Json<ActionView>, ApiError> {
    caller.require(Role::Viewer)?;
    let engine = state.runtime().active().await?.engine;
    let detail = engine.get(id).await?;
    let transitions = engine.transitions(id).await?;
    Ok(Json(ActionView { detail, transitions }))
}

pub(crate) async fn get_plan(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
) -> Result<Json<remediation_core::Plan>, ApiError> {
    caller.require(Role::Viewer)?;
    let engine = state.runtime().active().await?.engine;
    engine.get(id).await?.plan.map(Json).ok_or_else(|| ApiError::not_found(format!("action {id} has no plan")))
}

/// Approves an action; on a `rollback_requested` action, approves the rollback and runs it
/// (200 with the action, 502 when the restore failed).
pub(crate) async fn approve(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<ActionReply>, ApiError> {
    // The engine judges roles and separation of duties for approvals, so a refused approval
    // is refused, and audited, exactly as it is locally.
    let actor = caller.require(Role::Viewer)?.clone();
    let work = state.clone();
    let approval = to_completion(async move {
        let attempt = remediation_service::approve_or_roll_back(work.runtime(), &actor, id, body.note).await;
        Ok(attempt.report(log_recovered)?)
    })
    .await?;
    match approval {
        remediation_service::Approval::Approved(action) => Ok(Json(ActionReply { action })),
        remediation_service::Approval::RolledBack(outcome) => match outcome {
            RollbackOutcome::Failed { action, error } => Err(rollback_failure(&action, &error)),
            other => Ok(Json(ActionReply { action: other.action().clone() })),
        },
    }
}

pub(crate) async fn reject(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<ActionReply>, ApiError> {
    let actor = caller.require(Role::Approver)?;
    Ok(Json(ActionReply { action: remediation_service::reject(state.runtime(), actor, id, body.note).await? }))
}

pub(crate) async fn cancel(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<ActionReply>, ApiError> {
    let actor = caller.require(Role::Requester)?;
    Ok(Json(ActionReply { action: remediation_service::cancel(state.runtime(), actor, id, body.note).await? }))
}

pub(crate) async fn release(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<ActionReply>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(ActionReply { action: remediation_service::release(state.runtime(), actor, id, body.note).await? }))
}

/// Turns advisory guidance (`suggested`) into a request for approval; the engine's lifecycle
/// decides which roles may.
pub(crate) async fn promote(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<ActionReply>, ApiError> {
    // Promotion is an admin's (the lifecycle table): refuse others before anything about the
    // action is revealed.
    let actor = caller.require(Role::Admin)?;
    Ok(Json(ActionReply { action: remediation_service::promote(state.runtime(), actor, id, body.note).await? }))
}

/// Logs an action an execution or rollback settled first (its worker died).
fn log_recovered(r: &remediation_core::Recovery) {
    tracing::warn!(action_id = %r.id, from = %r.from, to = %r.to, note = %r.note, "recovered an interrupted action");
}

/// The response for an execution outcome: 200 done, 202 held, requeued or back to approval, 502 when
/// the provider failed. `rollback_expires_at` is the completed action's rollback deadline
/// (none for an irreversible change).
pub(crate) fn execute_response(outcome: ExecuteOutcome, rollback_expires_at: Option<time::OffsetDateTime>) -> Response {
    let empty = OutcomeView::named("");
    match outcome {
        ExecuteOutcome::Completed { action, after } => reply(
            StatusCode::OK,
            &OutcomeView {
                outcome: "completed".into(),
                action: Some(action),
                after: Some(after),
                rollback_expires_at,
                ..empty
            },
        ),
        ExecuteOutcome::Failed { action, error } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "provider_failure", format!("action {} failed: {error}", action.id))
                .with_details(json!({"action": action}))
                .into_response()
        }
        ExecuteOutcome::Held { action, limit } => reply(
            StatusCode::ACCEPTED,
            &OutcomeView { outcome: "held".into(), action: Some(action), limit: Some(limit), ..empty },
        ),
        ExecuteOutcome::HeldByBreaker { action } => reply(
            StatusCode::ACCEPTED,
            &OutcomeView { outcome: "held".into(), action: Some(action), breaker: true, ..empty },
        ),
        ExecuteOutcome::PlanChanged { action, changes } => reply(
            StatusCode::ACCEPTED,
            &OutcomeView {
                outcome: "plan_changed".into(),
                action: Some(action),
                changes: changes.iter().map(ToString::to_string).collect(),
                ..empty
            },
        ),
        ExecuteOutcome::Requeued { action, not_before } => reply(
            StatusCode::ACCEPTED,
            &OutcomeView { outcome: "requeued".into(), action: Some(action), not_before: Some(not_before), ..empty },
        ),
        ExecuteOutcome::DryRun { plan, decision, limit } => reply(
            StatusCode::OK,
            &OutcomeView { outcome: "dry_run".into(), plan: Some(plan), decision: Some(decision), limit, ..empty },
        ),
    }
}

/// Runs an execution (`remediation_service::execute` or `force_execute`); returns the response, with the rollback deadline of a completed change.
pub(crate) async fn run_execution(
    state: &ApiState,
    id: ActionId,
    actor: &Actor,
    force_reason: Option<String>,
) -> Result<Response, ApiError> {
    let (state, actor) = (state.clone(), actor.clone());
    to_completion(async move {
        let runtime = state.runtime();
        let done = match force_reason {
            Some(reason) => remediation_service::force_execute(runtime, &actor, id, reason).await,
            None => remediation_service::execute(runtime, &actor, id, false).await,
        }
        .report(log_recovered)?;
        Ok(execute_response(done.outcome, done.rollback_expires_at))
    })
    .await
}

/// Runs work that may write to a provider (an execution, a rollback) on a task of its own and
/// waits for it. A request that is dropped (the client hangs up, or the request timeout answers
/// 408) then only loses its answer: the work still runs to its recorded end under its lease,
/// instead of stopping between the provider write and the record of it.
pub(crate) async fn to_completion<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
{
    tokio::spawn(work).await.map_err(|e| ApiError::internal(&e))?
}

pub(crate) async fn execute(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<ExecuteBody>,
) -> Result<Response, ApiError> {
    if body.dry_run {
        let actor = caller.require(Role::Requester)?;
        let dry = remediation_service::execute(state.runtime(), actor, id, true).await.result?;
        return Ok(execute_response(dry.outcome, None));
    }
    let about = json!({"action_id": id});
    let actor = caller.require_audited(&state, Role::Approver, "execution_refused", about).await?;
    run_execution(&state, id, actor, None).await
}

pub(crate) async fn force_execute(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Response, ApiError> {
    let about = json!({"action_id": id});
    let actor = caller.require_audited(&state, Role::Admin, "execution_refused", about).await?;
    run_execution(&state, id, actor, Some(body.reason)).await
}

pub(crate) async fn rollback(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ActionPath(id): ActionPath,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response, ApiError> {
    let about = json!({"action_id": id});
    let actor = caller.require_audited(&state, Role::Approver, "rollback_refused", about).await?;
    Ok(rollback_response(run_rollback(&state, id, actor, body.note).await?))
}

/// Rolls back `id` on a task of its own (see [`to_completion`]).
async fn run_rollback(
    state: &ApiState,
    id: ActionId,
    actor: &Actor,
    note: Option<String>,
) -> Result<RollbackOutcome, ApiError> {
    let (state, actor) = (state.clone(), actor.clone());
    to_completion(async move {
        Ok(remediation_service::rollback(state.runtime(), &actor, id, note).await.report(log_recovered)?)
    })
    .await
}

/// 200 rolled back (`restored_pending_acceptance` when the access was offered back as an
/// invitation the person must accept), 202 waiting for a different principal's approval, 502 when the restore
/// failed.
pub(crate) fn rollback_response(outcome: RollbackOutcome) -> Response {
    match outcome {
        RollbackOutcome::RolledBack { action } => {
            reply(StatusCode::OK, &OutcomeView { action: Some(action), ..OutcomeView::named("rolled_back") })
        }
        RollbackOutcome::RestoredPendingAcceptance { action } => reply(
            StatusCode::OK,
            &OutcomeView { action: Some(action), ..OutcomeView::named("restored_pending_acceptance") },
        ),
        RollbackOutcome::Requested { action } => reply(
            StatusCode::ACCEPTED,
            &OutcomeView { action: Some(action), ..OutcomeView::named("rollback_requested") },
        ),
        RollbackOutcome::Failed { action, error } => rollback_failure(&action, &error).into_response(),
    }
}

/// 502 naming the action whose restore failed (the action is in `details`).
fn rollback_failure(action: &Action, error: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "provider_failure", format!("rollback of {} failed: {error}", action.id))
        .with_details(json!({"action": action}))
}

pub(crate) async fn audit(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<remediation_audit::AuditRecord>>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 1000"));
    }
    let after = match &q.cursor {
        Some(c) => Some(c.parse::<u64>().map_err(|_| ApiError::invalid("cursor", "invalid cursor"))?),
        None => None,
    };
    let action_id = match &q.action_id {
        Some(a) => Some(a.parse::<ActionId>().map_err(|_| ApiError::invalid("action_id", "not an action id"))?),
        None => None,
    };
    // `from_seq` and the cursor both bound the page from below; the store reads by `seq`.
    let after_seq = match (after, q.from_seq) {
        (Some(a), Some(f)) => Some(a.max(f.saturating_sub(1))),
        (Some(a), None) => Some(a),
        (None, Some(f)) => f.checked_sub(1),
        (None, None) => None,
    };
    let filter = remediation_core::AuditFilter { action: action_id, since: None };
    let mut items = remediation_service::audit_page(state.runtime(), &filter, after_seq, limit + 1).await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}

pub(crate) async fn audit_verify(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<remediation_audit::AuditVerification>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::audit_verify(state.runtime()).await?))
}

/// `GET /v1/reports/compliance`: the compliance report of a period, as JSON, CSV or HTML.
pub(crate) async fn compliance_report(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<t::ComplianceQuery>,
) -> Result<Response, ApiError> {
    use remediation_service::report::{self, Period, ReportFormat};
    caller.require(Role::Viewer)?;
    let bound = |field: &'static str, value: &str| {
        report::parse_bound(value).ok_or_else(|| {
            ApiError::invalid(field, format!("`{value}` is not an RFC 3339 timestamp or a date (2026-12-01)"))
        })
    };
    let period = Period::new(bound("from", &q.from)?, bound("to", &q.to)?)?;
    let format = q.format.unwrap_or_default();
    let built = report::compliance(state.runtime(), period).await?;
    Ok(match format {
        ReportFormat::Json => reply(StatusCode::OK, &built),
        ReportFormat::Csv => ([(header::CONTENT_TYPE, format.media_type())], report::to_csv(&built)).into_response(),
        ReportFormat::Html => ([(header::CONTENT_TYPE, format.media_type())], report::to_html(&built)).into_response(),
    })
}

pub(crate) async fn audit_tree_head(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<crate::types::TreeHeadView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::tree_head(state.runtime()).await?))
}

pub(crate) async fn audit_keys(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<crate::types::PublicKeysView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::published_keys(state.runtime()).await?))
}

pub(crate) async fn audit_inclusion(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<crate::types::InclusionQuery>,
) -> Result<Json<crate::types::InclusionView>, ApiError> {
    use remediation_service::ProofTarget;
    caller.require(Role::Viewer)?;
    let target = match (&q.action_id, q.seq) {
        (Some(a), None) => {
            ProofTarget::Action(a.parse::<ActionId>().map_err(|_| ApiError::invalid("action_id", "not an action id"))?)
        }
        (None, Some(seq)) if seq > 0 => ProofTarget::Seq(seq),
        (None, Some(_)) => return Err(ApiError::invalid("seq", "seq starts at 1")),
        _ => return Err(ApiError::invalid("action_id", "give exactly one of action_id and seq")),
    };
    Ok(Json(remediation_service::prove_inclusion(state.runtime(), target, q.tree_size).await?))
}

pub(crate) async fn audit_consistency(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<crate::types::ConsistencyQuery>,
) -> Result<Json<crate::types::ConsistencyView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::prove_consistency(state.runtime(), q.old_size, q.new_size).await?))
}

async fn settings_view(state: &ApiState) -> Result<SettingsView, ApiError> {
    let s = remediation_service::settings(state.runtime()).await?;
    Ok(SettingsView { source: s.source.to_owned(), policy: s.policy, limits: s.limits })
}

pub(crate) async fn get_settings(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<SettingsView>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(settings_view(&state).await?))
}

/// `GET /v1/controls`: every configured control with its record (viewer).
pub(crate) async fn controls(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<t::ControlsView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(t::ControlsView { controls: remediation_service::controls::controls(state.runtime()).await? }))
}

/// `GET /v1/controls/{id}`: one configured control with its record (viewer).
pub(crate) async fn control(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<t::ControlView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::controls::control(state.runtime(), &id).await?))
}

/// RFC 7396 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// `PATCH /v1/settings`: 200 with the settings in force, or 202 with the pending change when
/// the patch loosens them (a second admin must confirm).
pub(crate) async fn patch_settings(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<SettingsPatch>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Admin)?;
    if !body.patch.is_object() {
        return Err(ApiError::invalid("patch", "the patch must be a JSON object of the settings to change"));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "a reason is required; it is kept in the audit"));
    }
    let active = state.runtime().active().await?;
    let mut doc = serde_json::to_value(&active.settings).map_err(|e| ApiError::internal(&e))?;
    merge(&mut doc, &body.patch);
    let settings: PolicySettings = serde_path_to_error::deserialize(doc.clone()).map_err(|e| {
        let field = format!("patch.{}", e.path());
        ApiError::invalid(&field, format!("invalid settings at `{field}`: {}", e.inner()))
    })?;
    settings.validate().map_err(|e| ApiError::invalid("patch", format!("invalid settings: {e}")))?;
    match state.runtime().change_settings(actor, doc, &body.reason).await? {
        Outcome::Applied(()) => Ok(reply(StatusCode::OK, &settings_view(&state).await?)),
        Outcome::Pending(c) => Ok(reply(StatusCode::ACCEPTED, &PendingReply { pending_change: *c })),
    }
}

pub(crate) async fn limits(AxState(state): AxState<ApiState>, caller: Caller) -> Result<Json<LimitsView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(limits_view(remediation_service::limits(state.runtime()).await?)))
}

/// The remediation metrics of the period the query names, folded from the audit log.
pub(crate) async fn report_metrics(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<t::MetricsReportQuery>,
) -> Result<Json<t::MetricsReportView>, ApiError> {
    caller.require(Role::Viewer)?;
    let period = remediation_service::metrics::Period { since: q.since, until: q.until };
    Ok(Json(remediation_service::metrics::metrics_report(state.runtime(), period).await?.into()))
}

pub(crate) async fn events_status(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<t::EventsStatus>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::events(state.runtime()).await?))
}

pub(crate) async fn replay_events(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<t::ReplayBody>,
) -> Result<Json<t::ReplayView>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let replay =
        remediation_service::replay_parked(state.runtime(), actor, &body.sink, body.seqs, &body.reason).await?;
    Ok(Json(t::ReplayView { sink: body.sink, replay }))
}

pub(crate) async fn breaker_reset(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<LimitsView>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(limits_view(remediation_service::reset_breaker(state.runtime(), actor, body.reason).await?)))
}

fn limits_view(r: remediation_service::LimitsReport) -> LimitsView {
    LimitsView { breaker_tripped: r.breaker_tripped, usage: r.usage, limits: r.limits }
}

/// `POST /v1/kill-switch`: on at once (200); off waits for a second admin (202 with the
/// pending change) while the switch is on.
pub(crate) async fn kill_switch(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<KillSwitchBody>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let outcome = if body.installation {
        state.runtime().set_installation_kill_switch(actor, body.on, &body.reason).await?
    } else {
        state.runtime().set_kill_switch(actor, body.on, &body.reason).await?
    };
    let state_now = state.runtime().active().await?.engine.safety_state().await?;
    match outcome {
        Outcome::Applied(cancelled) => Ok(reply(
            StatusCode::OK,
            &KillSwitchView { on: body.on, installation: state_now.installation_kill_switch, cancelled },
        )),
        Outcome::Pending(c) => Ok(reply(StatusCode::ACCEPTED, &PendingReply { pending_change: *c })),
    }
}

/// `GET /v1/pending-changes`: changes waiting for a second admin, visible to every role.
pub(crate) async fn pending_changes(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PendingQuery>,
) -> Result<Json<Vec<remediation_core::PendingChange>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.runtime().pending_changes(q.all).await?))
}

/// `POST /v1/pending-changes/{id}/confirm`: an admin other than the proposer applies it.
pub(crate) async fn confirm_change(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<PendingReply>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let pending_change = state.runtime().confirm_change(actor, &id, body.note).await?;
    Ok(Json(PendingReply { pending_change }))
}

/// `POST /v1/pending-changes/{id}/cancel`: an admin withdraws it.
pub(crate) async fn cancel_change(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Json<PendingReply>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let pending_change = state.runtime().cancel_change(actor, &id, body.note).await?;
    Ok(Json(PendingReply { pending_change }))
}

/// `GET /v1/kill-switch`: whether the switch is on (`cancelled` is always empty).
pub(crate) async fn kill_switch_status(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<KillSwitchView>, ApiError> {
    caller.require(Role::Viewer)?;
    let now = state.runtime().active().await?.engine.safety_state().await?;
    Ok(Json(KillSwitchView { on: now.kill_switch, installation: now.installation_kill_switch, cancelled: Vec::new() }))
}

pub(crate) async fn connectors(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConnectorQuery>,
) -> Result<Json<Vec<ConnectorView>>, ApiError> {
    // A check makes live provider calls with the connectors' credentials: admins only.
    caller.require(if q.check { Role::Admin } else { Role::Viewer })?;
    let mut all = Vec::new();
    let connectors = state.runtime().connectors().await.map_err(remediation_service::ServiceError::from)?;
    for c in connectors {
        all.push(ConnectorView::of(c.as_ref(), q.check).await);
    }
    Ok(Json(all))
}

pub(crate) async fn healthz() -> Json<HealthView> {
    Json(HealthView { status: "ok".to_owned() })
}

pub(crate) async fn readyz(AxState(state): AxState<ApiState>) -> Response {
    if state.is_shutting_down() {
        return reply(StatusCode::SERVICE_UNAVAILABLE, &HealthView { status: "shutting down".to_owned() });
    }
    match state.runtime().store().safety_state().await {
        Ok(_) => reply(StatusCode::OK, &HealthView { status: "ok".to_owned() }),
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), "store not ready");
            reply(StatusCode::SERVICE_UNAVAILABLE, &HealthView { status: "store unavailable".to_owned() })
        }
    }
}

pub(crate) async fn metrics(AxState(state): AxState<ApiState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let store = state.runtime().store();
    let counts = store.count_by_state().await?;
    let backlog = store.sequencing_backlog().await?;
    state.metrics().record_sequencing(&backlog, &store.take_sequencing_lags());
    let events = remediation_service::events(state.runtime()).await?;
    state.metrics().record_events(&events, &state.runtime().relay().take_counters());
    state.metrics().record_log(state.runtime()).await?;
    let text = state.metrics().render(&counts)?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

pub(crate) async fn openapi_json() -> Response {
    reply(StatusCode::OK, &crate::openapi::document())
}

/// `GET /v1/tenants`: every tenant (an admin of the default tenant).
pub(crate) async fn tenants(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<remediation_core::Tenant>>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(remediation_service::tenants::tenants(state.runtime(), actor).await?))
}

/// `POST /v1/tenants`: creates a tenant (an admin of the default tenant).
pub(crate) async fn create_tenant(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<crate::types::CreateTenantBody>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let tenant =
        remediation_service::tenants::create_tenant(state.runtime(), actor, &body.name, &body.description).await?;
    Ok(reply(StatusCode::CREATED, &tenant))
}

#[cfg(test)]
mod tests {
    //! The request-independence of provider-writing work.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::to_completion;

    #[tokio::test]
    async fn work_goes_on_when_the_request_waiting_for_it_is_dropped() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (finished_tx, finished_rx) = tokio::sync::oneshot::channel::<()>();
        let recorded = Arc::new(AtomicBool::new(false));
        let seen = recorded.clone();
        let request = tokio::spawn(to_completion(async move {
            // The provider write is in flight until `release`.
            let _ = released.await;
            seen.store(true, Ordering::SeqCst);
            let _ = finished_tx.send(());
            Ok(())
        }));
        // The client hangs up (or the request timeout fires) while the write is in flight.
        tokio::task::yield_now().await;
        request.abort();
        let _ = request.await;
        release.send(()).expect("the work is still waiting");
        finished_rx.await.expect("the work ran to its end");
        assert!(recorded.load(Ordering::SeqCst), "the outcome was recorded although nobody waited for it");
    }
}
