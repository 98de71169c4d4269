//! Campaigns over HTTP: `POST /v1/campaigns` takes many findings at once as a named campaign,
//! `GET /v1/campaigns` lists them, `GET /v1/campaigns/{id}` says where one stands and
//! `POST /v1/campaigns/{id}/resume` takes in what an interrupted import left. Adapters over
//! `remediation_service`'s campaign use cases; intake is serialised with `POST /v1/findings`.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::Role;
use remediation_core::store::Campaign;
use remediation_service::scanner::{DocumentFormat, ReadOptions, read_findings_value};
use remediation_service::{CampaignStatus, NewCampaign};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, chain};
use crate::extract::ApiJson;
use crate::handlers::reply;

/// `POST /v1/campaigns`: the findings and what to call them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// The campaign's name (letters, digits, `-`, `_`, `.`; at most 64); default
    /// `import-YYYYMMDD-HHMMSS`.
    #[serde(default)]
    pub name: Option<String>,
    /// The document's format (`finding`, `prowler-ocsf`, `asff`, `ocsf`); default: recognised.
    #[serde(default)]
    pub format: Option<String>,
    /// The connector every entry is sent to, replacing the one it names.
    #[serde(default)]
    pub connector: Option<String>,
    /// The findings: an array of findings, or a scanner's document.
    pub findings: Value,
}

/// `GET /v1/campaigns`: every campaign, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CampaignList {
    /// The campaigns.
    pub items: Vec<Campaign>,
}

fn format_of(name: Option<&str>) -> Result<Option<DocumentFormat>, ApiError> {
    name.map(|n| {
        DocumentFormat::from_name(n).ok_or_else(|| {
            ApiError::invalid(
                "format",
                format!(
                    "unknown format `{n}`; expected one of {}",
                    DocumentFormat::ALL.map(DocumentFormat::as_str).join(", ")
                ),
            )
        })
    })
    .transpose()
}

/// Takes campaign `name` in to its end and answers where it stands.
async fn run(state: &ApiState, actor: &remediation_core::Actor, name: &str) -> Result<CampaignStatus, ApiError> {
    let _serial = state.inner.intake.lock().await;
    remediation_service::run_campaign(state.runtime(), actor, name, |_, _| {}, || false).await?;
    Ok(remediation_service::campaign_status(state.runtime(), name).await?)
}

pub(crate) async fn create(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Response, ApiError> {
    let declared = format_of(body.format.as_deref())?;
    let doc = read_findings_value(body.findings, declared, &ReadOptions::default())
        .map_err(|e| ApiError::invalid("findings", chain(&e)))?;
    let about = json!({"campaign": body.name, "entries": doc.entries.len()});
    let actor = caller.require_audited(&state, Role::Requester, "suggestion_refused", about).await?;
    let new = NewCampaign { name: body.name, source: "api".to_owned(), connector: body.connector };
    let campaign = remediation_service::create_campaign(state.runtime(), actor, new, doc).await?;
    let status = run(&state, actor, &campaign.name).await?;
    Ok(reply(StatusCode::CREATED, &status))
}

pub(crate) async fn list(AxState(state): AxState<ApiState>, caller: Caller) -> Result<Json<CampaignList>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(CampaignList { items: remediation_service::campaigns(state.runtime()).await? }))
}

pub(crate) async fn show(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<CampaignStatus>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::campaign_status(state.runtime(), &name).await?))
}

pub(crate) async fn resume(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<CampaignStatus>, ApiError> {
    let actor =
        caller.require_audited(&state, Role::Requester, "suggestion_refused", json!({"campaign": name})).await?;
    Ok(Json(run(&state, actor, &name).await?))
}
