//! Incident response over HTTP: a person's accounts (`GET /v1/identities/{identity}`), explicit
//! links (`POST /v1/identities/{identity}/links`), one call that cuts them off everywhere
//! (`POST /v1/identities/{identity}/respond`), and playbooks with their runs. Adapters over
//! `remediation_service::incident` and `remediation_service::playbooks`.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::Role;
use remediation_service::incident::{IdentityView, Links, RespondOutcome, RespondRequest};
use remediation_service::playbooks::{Playbook, PlaybookEntry, Run, RunPlan};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, OptionalJson};
use crate::handlers::reply;

/// `POST /v1/identities/{identity}/links`: link the person to an account of one connection,
/// or remove the link (`account` absent).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The connection.
    pub connector: String,
    /// The account in it (the provider's id or login); absent: remove the link.
    #[serde(default)]
    pub account: Option<String>,
    /// Why (kept in the audit).
    pub reason: String,
}

/// `POST /v1/playbooks/{name}/plan` and `POST /v1/playbooks/{name}/runs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The person (a verified email or login).
    pub identity: String,
    /// Why (kept with every step's action).
    pub reason: String,
    /// For a run: the plan hash that was looked at; refused when the plan differs now.
    #[serde(default)]
    pub plan_hash: Option<String>,
}

/// `POST /v1/runs/{id}/approve`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunApprovalBody {
    /// The plan hash approved; refused when the run's plan differs.
    #[serde(default)]
    pub plan_hash: Option<String>,
    /// A note for the audit.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/runs/{id}/rollback`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRollbackBody {
    /// Why (kept in the audit).
    pub reason: String,
}

/// `GET /v1/playbooks`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookList {
    /// Every playbook in force, with where it comes from.
    pub items: Vec<PlaybookEntry>,
}

/// `GET /v1/runs`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunList {
    /// Every run, newest first.
    pub items: Vec<Run>,
}

pub(crate) async fn identity(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(identity): Path<String>,
) -> Result<Json<IdentityView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::incident::identity(state.runtime(), &identity).await?))
}

pub(crate) async fn link(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(identity): Path<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Json<Links>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(
        remediation_service::incident::link_account(
            state.runtime(),
            actor,
            &identity,
            &body.connector,
            body.account.as_deref(),
            &body.reason,
        )
        .await?,
    ))
}

pub(crate) async fn respond(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(identity): Path<String>,
    ApiJson(body): ApiJson<RespondRequest>,
) -> Result<Response, ApiError> {
    // A caller without the role is refused here, and that attempt is recorded too.
    let about = serde_json::json!({ "identity": identity, "actions": body.actions, "finding": body.finding });
    let actor = caller.require_audited(&state, Role::Responder, "incident_response_refused", about).await?;
    let result = remediation_service::incident::respond(state.runtime(), actor, &identity, &body).await?;
    let status = match result.outcome {
        RespondOutcome::Completed => StatusCode::OK,
        RespondOutcome::Failed => StatusCode::BAD_GATEWAY,
        RespondOutcome::Partial => StatusCode::MULTI_STATUS,
    };
    Ok(reply(status, &result))
}

pub(crate) async fn list_playbooks(
    AxState(state): AxState<ApiState>,
    caller: Caller,
) -> Result<Json<PlaybookList>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(PlaybookList { items: remediation_service::playbooks::playbooks(state.runtime()).await? }))
}

pub(crate) async fn show_playbook(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PlaybookEntry>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::playbooks::playbook(state.runtime(), &name).await?))
}

pub(crate) async fn save_playbook(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<Playbook>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let saved = remediation_service::playbooks::save_playbook(state.runtime(), actor, body).await?;
    Ok(reply(StatusCode::CREATED, &saved))
}

pub(crate) async fn plan(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<Json<RunPlan>, ApiError> {
    let actor = caller.require(Role::Requester)?;
    Ok(Json(
        remediation_service::playbooks::plan_playbook(state.runtime(), actor, &name, &body.identity, &body.reason)
            .await?,
    ))
}

pub(crate) async fn start_run(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Requester)?;
    let run = remediation_service::playbooks::start_run(
        state.runtime(),
        actor,
        &name,
        &body.identity,
        &body.reason,
        body.plan_hash.as_deref(),
    )
    .await?;
    Ok(reply(StatusCode::CREATED, &run))
}

pub(crate) async fn list_runs(AxState(state): AxState<ApiState>, caller: Caller) -> Result<Json<RunList>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(RunList { items: remediation_service::playbooks::runs(state.runtime()).await? }))
}

pub(crate) async fn show_run(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::playbooks::run(state.runtime(), &id).await?))
}

pub(crate) async fn approve_run(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RunApprovalBody>,
) -> Result<Json<Run>, ApiError> {
    let actor = caller.require(Role::Approver)?;
    Ok(Json(
        remediation_service::playbooks::approve_run(
            state.runtime(),
            actor,
            &id,
            body.plan_hash.as_deref(),
            body.note.as_deref(),
        )
        .await?,
    ))
}

pub(crate) async fn reject_run(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RunApprovalBody>,
) -> Result<Json<Run>, ApiError> {
    let actor = caller.require(Role::Approver)?;
    Ok(Json(remediation_service::playbooks::reject_run(state.runtime(), actor, &id, body.note.as_deref()).await?))
}

pub(crate) async fn resume_run(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let actor = caller.require(Role::Approver)?;
    Ok(Json(remediation_service::playbooks::resume_run(state.runtime(), actor, &id).await?))
}

pub(crate) async fn rollback_run(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RunRollbackBody>,
) -> Result<Json<Run>, ApiError> {
    let actor = caller.require(Role::Approver)?;
    Ok(Json(remediation_service::playbooks::rollback_run(state.runtime(), actor, &id, &body.reason).await?))
}
