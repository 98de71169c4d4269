//! Finding intake, `POST /v1/findings`: an adapter over `remediation_service::intake`
//! (deduplication by control and canonical target, fixes that did not hold, connector
//! auto-selection). Statuses: an action already open, or a completed one read again
//! (`fix_holds`, `did_not_hold`), is 200; a new suggestion 201 (`created`, `redone`), or 202
//! when a gate dropped it to manual; no single healthy connector for a finding naming none
//! is 400 listing the candidates.
//!
//! A scanner's document (Prowler OCSF, Security Hub ASFF, OCSF, an array of findings) goes
//! through `remediation_service::intake_document` instead and is answered 200 with one outcome
//! per entry; a document that is not recognised is 400 saying why.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::{Finding, Role};
use remediation_service::Intake;
use remediation_service::scanner::{DocumentFormat, ReadOptions, is_document, read_findings_value};
use serde_json::{Value, json};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, chain};
use crate::extract::{ApiJson, ApiQuery, from_value};
use crate::handlers::{reply, suggestion_status, suggestion_view};
use crate::types::{FindingReply, FindingsQuery, FindingsReply};

pub(crate) async fn intake(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<FindingsQuery>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let declared = match query.format.as_deref() {
        None => None,
        Some(name) => Some(DocumentFormat::from_name(name).ok_or_else(|| {
            ApiError::invalid(
                "format",
                format!(
                    "unknown format `{name}`; expected one of {}",
                    DocumentFormat::ALL.map(DocumentFormat::as_str).join(", ")
                ),
            )
        })?),
    };
    if !is_document(&body) && declared.is_none_or(|d| d == DocumentFormat::Finding) {
        let mut finding: Finding = from_value(body)?;
        if let Some(c) = query.connector {
            finding.connector = Some(c);
        }
        return one(state, caller, finding).await;
    }
    let doc = read_findings_value(body, declared, &ReadOptions::default())
        .map_err(|e| ApiError::invalid("body", chain(&e)))?;
    let about = json!({"document": doc.format.map(DocumentFormat::as_str), "entries": doc.entries.len()});
    let actor = caller.require_audited(&state, Role::Requester, "suggestion_refused", about).await?;
    let format = doc.format;
    let _serial = state.inner.intake.lock().await;
    let entries = remediation_service::intake_document(state.runtime(), actor, doc, query.connector.as_deref()).await;
    Ok(reply(StatusCode::OK, &FindingsReply::new(format, entries)))
}

async fn one(state: ApiState, caller: Caller, finding: Finding) -> Result<Response, ApiError> {
    let about = json!({"finding_id": finding.id, "control_id": finding.control_id, "target": finding.target});
    let actor = caller.require_audited(&state, Role::Requester, "suggestion_refused", about).await?;
    let _serial = state.inner.intake.lock().await;
    let outcome = remediation_service::intake(state.runtime(), actor, &finding).await?;
    let label = outcome.label();
    Ok(match outcome {
        Intake::Existing(action) | Intake::FixHolds(action) | Intake::DidNotHold(action) => {
            reply(StatusCode::OK, &FindingReply { action, intake: label.to_owned() })
        }
        Intake::Created(s) | Intake::Redone(s) => reply(suggestion_status(&s), &suggestion_view(s, Some(label))),
    })
}
