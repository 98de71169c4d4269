//! Event delivery, as operators see it: how each sink stands, and replaying what a sink
//! refused once the receiver is fixed.

use remediation_core::{Actor, EngineError, Role, SettingsRecord};
use remediation_runtime::Runtime;
use remediation_runtime::relay::{EventsStatus, events_status};

use crate::error::ServiceError;

/// How every sink stands: its mark, backlog, oldest undelivered record and parked records.
pub async fn events(runtime: &Runtime) -> Result<EventsStatus, ServiceError> {
    let configured: Vec<String> = runtime.relay().sinks().iter().map(|s| s.name.clone()).collect();
    Ok(events_status(runtime.store().as_ref(), &configured, runtime.clock().now()).await?)
}

/// Asks for the records `sink` parked to be delivered again (those with `seqs`, or all), by an
/// admin with a reason; audited as `events_replay_requested`. Returns how many will be.
pub async fn replay_parked(
    runtime: &Runtime,
    actor: &Actor,
    sink: &str,
    seqs: Option<Vec<u64>>,
    reason: &str,
) -> Result<u64, ServiceError> {
    if actor.role < Role::Admin || actor.role == Role::System {
        return Err(EngineError::Refused {
            rule: "roles".to_owned(),
            reason: format!("{} is a {}; only an admin may replay parked events", actor.name, actor.role),
        }
        .into());
    }
    if reason.trim().is_empty() {
        return Err(ServiceError::Invalid {
            field: "reason",
            message: "a reason is required; it is kept in the audit".to_owned(),
        });
    }
    let store = runtime.store();
    let parked = store.parked(Some(sink.to_owned())).await?;
    if parked.is_empty() {
        return Err(ServiceError::NotFound { what: format!("sink `{sink}` has no parked records") });
    }
    if let Some(missing) = seqs.iter().flatten().find(|s| !parked.iter().any(|p| p.seq == **s)) {
        return Err(ServiceError::NotFound { what: format!("sink `{sink}` has no parked record {missing}") });
    }
    let record = SettingsRecord {
        setting_event: "events_replay_requested".to_owned(),
        actor: actor.name.clone(),
        credential: actor.credential.clone(),
        at: runtime.clock().now(),
        comment: Some(reason.to_owned()),
        previous: serde_json::Value::Null,
        value: serde_json::json!({ "sink": sink, "seqs": seqs }),
        action_id: None,
    };
    store.append_note(&record).await?;
    Ok(store.request_replay(sink, seqs).await?)
}
