//! Tenants: creating and listing them (admins of the default tenant, the installation's own),
//! and copying one tenant's policy settings to another after showing the difference (admins
//! of both), the "try it in the test tenant first" path.

use std::collections::BTreeMap;
use std::sync::Arc;

use remediation_core::{Actor, Role, SettingsRecord, Tenant, TenantId};
use remediation_runtime::Runtime;
use remediation_runtime::access::Outcome;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ServiceError;

fn require_installation_admin(runtime: &Runtime, actor: &Actor, what: &str) -> Result<(), ServiceError> {
    if !runtime.tenant().is_default() {
        return Err(ServiceError::Invalid {
            field: "tenant",
            message: format!(
                "tenants are managed from the default tenant, not tenant {}: an admin of the default tenant may {what}",
                runtime.tenant()
            ),
        });
    }
    if actor.role != Role::Admin {
        return Err(ServiceError::Access(remediation_runtime::access::AccessError::NotAdmin {
            actor: actor.name.clone(),
            role: actor.role,
            what: format!("{what} (an admin of the default tenant may)"),
        }));
    }
    Ok(())
}

/// Creates tenant `name` (an admin of the default tenant, on its runtime). Its audit log opens
/// with the `tenant_created` record, and the default tenant's log notes it too.
pub async fn create_tenant(
    runtime: &Arc<Runtime>,
    actor: &Actor,
    name: &TenantId,
    description: &str,
) -> Result<Tenant, ServiceError> {
    require_installation_admin(runtime, actor, "create tenants")?;
    let now = runtime.clock().now();
    let tenant = Tenant {
        name: name.clone(),
        created_at: now,
        created_by: actor.name.clone(),
        description: description.to_owned(),
    };
    let value = serde_json::to_value(&tenant).unwrap_or(Value::Null);
    let record = SettingsRecord::by_actor(
        "tenant_created",
        actor,
        now,
        format!("tenant {name} created"),
        Value::Null,
        value.clone(),
    );
    runtime.store().create_tenant(&tenant, &record).await?;
    runtime.store().append_note(&record).await?;
    Ok(tenant)
}

/// Every tenant, the default one first (an admin of the default tenant).
pub async fn tenants(runtime: &Arc<Runtime>, actor: &Actor) -> Result<Vec<Tenant>, ServiceError> {
    require_installation_admin(runtime, actor, "list the tenants")?;
    Ok(runtime.store().tenants().await?)
}

/// One difference between two settings documents: a JSON pointer and its value on each side
/// (`null` where it is absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingDifference {
    /// Where (`/controls/iam-1/mode`).
    pub path: String,
    /// In the tenant copied to, now.
    pub to: Value,
    /// In the tenant copied from: what it becomes.
    pub from: Value,
}

/// What [`copy_settings`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingsCopy {
    /// The tenant copied from.
    pub from: TenantId,
    /// The tenant copied to.
    pub to: TenantId,
    /// Every difference, by path.
    pub differences: Vec<SettingDifference>,
    /// `unchanged` (nothing differs), `preview` (not applied), `applied`, or `pending` (a
    /// loosening change that waits for a second admin of the tenant copied to).
    pub outcome: String,
    /// The pending change's id, when `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<String>,
}

/// Leaf values of `doc` by JSON pointer.
fn leaves(doc: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match doc {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                leaves(v, format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        other => {
            out.insert(if path.is_empty() { "/".to_owned() } else { path }, other.clone());
        }
    }
}

/// The differences between `to` and `from`, by path.
pub fn differences(to: &Value, from: &Value) -> Vec<SettingDifference> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(to, String::new(), &mut a);
    leaves(from, String::new(), &mut b);
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let (x, y) = (a.get(p).cloned().unwrap_or(Value::Null), b.get(p).cloned().unwrap_or(Value::Null));
            (x != y).then(|| SettingDifference { path: p.clone(), to: x, from: y })
        })
        .collect()
}

/// Copies the policy settings of `from` (modes, kind and control overrides, approvals,
/// windows: the whole settings document) to `to`. `from_actor` must be an admin of `from` and
/// `to_actor` of `to`. With `apply` false it only reports the differences. Applied, it is a
/// settings change of `to` like any other (loosening ones wait for a second admin there; a
/// control set to `auto` must have earned it in `to`), and both tenants' logs record it
/// (`settings_copied_to` in `from`).
pub async fn copy_settings(
    from: &Arc<Runtime>,
    to: &Arc<Runtime>,
    from_actor: &Actor,
    to_actor: &Actor,
    reason: &str,
    apply: bool,
) -> Result<SettingsCopy, ServiceError> {
    for (runtime, actor) in [(from, from_actor), (to, to_actor)] {
        if actor.role != Role::Admin {
            return Err(ServiceError::Access(remediation_runtime::access::AccessError::NotAdmin {
                actor: actor.name.clone(),
                role: actor.role,
                what: format!("copy settings (needs admin in tenant {})", runtime.tenant()),
            }));
        }
    }
    if from.tenant() == to.tenant() {
        return Err(ServiceError::Invalid {
            field: "to",
            message: "copy settings between two different tenants".into(),
        });
    }
    let source = serde_json::to_value(&from.active().await?.settings).unwrap_or(Value::Null);
    let target = serde_json::to_value(&to.active().await?.settings).unwrap_or(Value::Null);
    let found = differences(&target, &source);
    let mut copy = SettingsCopy {
        from: from.tenant().clone(),
        to: to.tenant().clone(),
        differences: found,
        outcome: "preview".to_owned(),
        pending_change: None,
    };
    if copy.differences.is_empty() {
        copy.outcome = "unchanged".to_owned();
        return Ok(copy);
    }
    if !apply {
        return Ok(copy);
    }
    let why = format!("copied from tenant {}: {reason}", from.tenant());
    match to.change_settings(to_actor, source, &why).await? {
        Outcome::Applied(()) => copy.outcome = "applied".to_owned(),
        Outcome::Pending(change) => {
            copy.outcome = "pending".to_owned();
            copy.pending_change = Some(change.id.clone());
        }
    }
    let now = from.clock().now();
    let note = SettingsRecord::by_actor(
        "settings_copied_to",
        from_actor,
        now,
        format!("settings copied to tenant {} ({}): {reason}", to.tenant(), copy.outcome),
        Value::Null,
        json!({"to": to.tenant(), "outcome": copy.outcome, "differences": copy.differences.len()}),
    );
    from.store().append_note(&note).await?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_leaf_paths_with_both_values() {
        let to = json!({"enabled": false, "controls": {"a/b": {"mode": "manual"}}, "kinds": {}});
        let from =
            json!({"enabled": true, "controls": {"a/b": {"mode": "auto"}, "c": {"mode": "manual"}}, "kinds": {}});
        let d = differences(&to, &from);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/controls/a~1b/mode", "/controls/c/mode", "/enabled"]);
        assert_eq!(d[0].to, json!("manual"));
        assert_eq!(d[0].from, json!("auto"));
        assert_eq!(d[1].to, Value::Null);
        assert!(differences(&to, &to).is_empty());
    }
}
