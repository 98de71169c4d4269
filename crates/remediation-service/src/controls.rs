//! Controls: each configured control's settings, scope and track record
//! ([`remediation_runtime::earned`]) for `remediate controls list|show`, `GET /v1/controls`
//! and the console; and the automatic demotion of a control override from `auto` to `manual`
//! when too many of its latest auto actions went wrong.
//!
//! Demotion runs where auto actions finish: after [`crate::execute`], [`crate::rollback`] and
//! [`crate::approve_rollback`] (the CLI and the API call these) and after each worker tick
//! ([`crate::worker::Worker::tick`]). It re-reads the stored settings and writes through a
//! compare-and-swap ([`remediation_core::Engine::system_settings_change`]), so two replicas
//! judging the same control write one demotion, and a control already back in `manual` is
//! left alone.

use std::collections::BTreeSet;

use remediation_core::{Action, KindName, Mode};
use remediation_gates::{ControlSettings, PolicySettings};
use remediation_runtime::Runtime;
use remediation_runtime::earned::{ControlRecord, control_record, recent_auto};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// The `setting_event` of the settings record a demotion writes (an
/// [`remediation_core::EngineEvent::SafetyChanged`] event with it is delivered to every sink).
pub const DEMOTED_EVENT: &str = "control_demoted";

/// How many times a demotion re-reads the settings after losing a race before it leaves the
/// judgement to the next finished action.
const DEMOTION_ATTEMPTS: usize = 3;

/// What a control override applies to: the kinds, grant types and connectors it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControlScope {
    /// Action kinds (`None`: not set, so the mode only ever lowers).
    pub kinds: Option<Vec<KindName>>,
    /// Grant types.
    pub grant_types: Option<Vec<String>>,
    /// Connector ids.
    pub connectors: Option<Vec<String>>,
}

/// One configured control: its settings, the scope and mode of its override, and its track
/// record (what `remediate controls show` prints and `GET /v1/controls/{id}` returns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControlView {
    /// The control id.
    pub id: String,
    /// The mode of its override (`None`: the kind's mode or the default applies).
    pub mode: Option<Mode>,
    /// What the override applies to.
    pub scope: ControlScope,
    /// The control's settings as stored (`[policy.controls.<id>]`).
    pub settings: ControlSettings,
    /// Its record inside the scope, and whether it has earned `auto`.
    pub record: ControlRecord,
}

/// Every configured control with its record, by id.
pub async fn controls(runtime: &Runtime) -> Result<Vec<ControlView>, ServiceError> {
    let settings = runtime.active().await?.settings;
    let mut views = Vec::with_capacity(settings.controls.len());
    for (id, control) in &settings.controls {
        views.push(view(runtime, &settings, id, control).await?);
    }
    Ok(views)
}

/// One configured control with its record; [`ServiceError::NotFound`] when `id` is not
/// configured.
pub async fn control(runtime: &Runtime, id: &str) -> Result<ControlView, ServiceError> {
    let settings = runtime.active().await?.settings;
    let control = settings
        .controls
        .get(id)
        .ok_or_else(|| ServiceError::NotFound { what: format!("no control `{id}` is configured") })?;
    view(runtime, &settings, id, control).await
}

async fn view(
    runtime: &Runtime,
    settings: &PolicySettings,
    id: &str,
    control: &ControlSettings,
) -> Result<ControlView, ServiceError> {
    let record = control_record(runtime.store().as_ref(), id, control, settings, runtime.clock().now()).await?;
    Ok(ControlView {
        id: id.to_owned(),
        mode: control.mode,
        scope: ControlScope {
            kinds: control.kinds.clone(),
            grant_types: control.grant_types.clone(),
            connectors: control.connectors.clone(),
        },
        settings: control.clone(),
        record,
    })
}

/// A control override the system moved from `auto` back to `manual`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Demotion {
    /// The control.
    pub control: String,
    /// Why, with the numbers (also the settings record's comment).
    pub reason: String,
}

/// Judges the controls of `finished` (actions that just executed or rolled back): each
/// control override in `auto` whose latest auto actions went wrong too often is demoted (see
/// [`demote_if_due`]). Actions that were not auto-approved, or name no control, cost nothing.
pub async fn review_finished(runtime: &Runtime, finished: &[Action]) -> Result<Vec<Demotion>, ServiceError> {
    let controls: BTreeSet<&str> =
        finished.iter().filter(|a| a.mode == Mode::Auto).filter_map(|a| a.control_id.as_deref()).collect();
    let mut demoted = Vec::new();
    for id in controls {
        if let Some(d) = demote_if_due(runtime, id).await? {
            demoted.push(d);
        }
    }
    Ok(demoted)
}

/// Demotes control `id` from `auto` to `manual`, as `system`, when more than
/// `[policy] auto_demotion.max_rate_percent` % of its latest `auto_demotion.window` auto
/// actions (in scope, suggested since it became `auto`) were rolled back or failed
/// verification. The settings record (`control_demoted`) gives the reason and the numbers.
/// Idempotent and race-safe: reads the stored settings afresh and writes only while they are
/// unchanged; `None` when nothing was demoted.
pub async fn demote_if_due(runtime: &Runtime, id: &str) -> Result<Option<Demotion>, ServiceError> {
    for _ in 0..DEMOTION_ATTEMPTS {
        let active = runtime.active().await?;
        // The settings judged are the very document the compare-and-swap expects, so a
        // change stored meanwhile makes the write fail instead of being overwritten.
        let expected = active.engine.safety_state().await?.settings;
        let settings = match &expected {
            Some(doc) => {
                PolicySettings::from_stored(doc.clone())
                    .map_err(remediation_runtime::RuntimeError::SettingsUnreadable)?
                    .0
            }
            // Still the configuration's seed: the compare-and-swap fails if a change is
            // stored before the write.
            None => runtime.active().await?.settings,
        };
        let Some(control) = settings.controls.get(id).filter(|c| c.mode == Some(Mode::Auto)) else {
            return Ok(None);
        };
        let recent = &recent_auto(runtime.store().as_ref(), id, control, &settings).await?;
        if !recent.exceeds {
            return Ok(None);
        }
        let reason = format!(
            "control {id} demoted from auto to manual: {} of its last {} auto actions were rolled back or failed \
             verification ({:.0}%, more than {}%)",
            recent.went_wrong,
            recent.judged,
            recent.rate_percent().unwrap_or_default(),
            recent.max_rate_percent
        );
        let mut new = settings.clone();
        if let Some(c) = new.controls.get_mut(id) {
            c.mode = Some(Mode::Manual);
            c.reason = Some(reason.clone());
            c.promotion_override_reason = None;
            c.auto_since = None;
        }
        let doc = serde_json::to_value(&new).map_err(remediation_runtime::RuntimeError::SettingsUnreadable)?;
        if active.engine.system_settings_change(&expected, doc, DEMOTED_EVENT, reason.clone()).await? {
            tracing::warn!(control = id, "{reason}");
            return Ok(Some(Demotion { control: id.to_owned(), reason }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
