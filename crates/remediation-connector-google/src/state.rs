//! The normalised snapshots of Google Workspace targets, and the after-state each action
//! expects. Volatile fields (`etag`, `lastLoginTime`, ids of the resource) are left out so
//! two reads of an unchanged target hash the same.
//!
//! - `account` (identity = user key: primary email, alias or id):
//!   `{"user", "suspended", "change_password_at_next_login", "admin"}`.
//! - `group_membership` (identity = member key, resource = group key):
//!   `{"group", "member", "present": true, "email", "role", "delivery_settings", "type"}`
//!   or, when the identity is not a direct member, `{"group", "member", "present": false}`.

use remediation_core::{ActionKind, ConnectorError};
use serde_json::{Map, Value, json};

/// Grant type of a direct membership in a Google group.
pub(crate) const GROUP_MEMBERSHIP: &str = "group_membership";
/// Grant type of a user account.
pub(crate) const ACCOUNT: &str = "account";

/// The `account` state from a `users.get` answer.
pub(crate) fn account(identity: &str, user: &Value) -> Value {
    let flag = |name: &str| user.get(name).and_then(Value::as_bool).unwrap_or(false);
    json!({
        "user": identity,
        "suspended": flag("suspended"),
        "change_password_at_next_login": flag("changePasswordAtNextLogin"),
        "admin": flag("isAdmin"),
    })
}

/// The `group_membership` state from a `members.get` answer, or `None` for "not a member".
pub(crate) fn membership(group: &str, identity: &str, member: Option<&Value>) -> Value {
    match member {
        None => json!({"group": group, "member": identity, "present": false}),
        Some(m) => {
            let text =
                |name: &str| m.get(name).and_then(Value::as_str).map_or(Value::Null, |s| Value::String(s.to_owned()));
            json!({
                "group": group,
                "member": identity,
                "present": true,
                "email": text("email"),
                "role": text("role"),
                "delivery_settings": text("delivery_settings"),
                "type": text("type"),
            })
        }
    }
}

/// A field of a snapshot state, or a permanent error naming what is missing: a snapshot that
/// lacks it was not made by this connector.
pub(crate) fn field<'a>(state: &'a Value, name: &str) -> Result<&'a Value, ConnectorError> {
    state.get(name).ok_or_else(|| {
        ConnectorError::permanent(format!(
            "the snapshot has no `{name}`: it was not made by the Google Workspace connector"
        ))
    })
}

/// A boolean field of a snapshot state.
pub(crate) fn flag(state: &Value, name: &str) -> Result<bool, ConnectorError> {
    field(state, name)?
        .as_bool()
        .ok_or_else(|| ConnectorError::permanent(format!("the snapshot's `{name}` is not true or false")))
}

fn with(state: &Value, name: &str, value: Value) -> Result<Value, ConnectorError> {
    let mut map: Map<String, Value> =
        state.as_object().cloned().ok_or_else(|| ConnectorError::permanent("the snapshot is not a JSON object"))?;
    field(state, name)?;
    map.insert(name.to_owned(), value);
    Ok(Value::Object(map))
}

/// The state `kind` leaves behind, given `before`, and a sentence saying what changes. Only
/// called for declared capabilities.
pub(crate) fn expected_after(kind: &ActionKind, before: &Value) -> Result<(Value, String), ConnectorError> {
    match kind {
        ActionKind::Revoke => {
            let group = field(before, "group")?.as_str().unwrap_or_default();
            let member = field(before, "member")?.as_str().unwrap_or_default();
            let role = before.get("role").and_then(Value::as_str).unwrap_or("MEMBER");
            Ok((
                membership(group, member, None),
                format!(
                    "Remove {member} ({role}) from Google group {group}; rollback adds it back with the same role and delivery settings."
                ),
            ))
        }
        ActionKind::Suspend => {
            let user = field(before, "user")?.as_str().unwrap_or_default();
            Ok((with(before, "suspended", Value::Bool(true))?, format!("Suspend Google Workspace user {user}.")))
        }
        ActionKind::ForcePasswordReset => {
            let user = field(before, "user")?.as_str().unwrap_or_default();
            Ok((
                with(before, "change_password_at_next_login", Value::Bool(true))?,
                format!("Require Google Workspace user {user} to change their password at next sign-in."),
            ))
        }
        ActionKind::RevokeSessions => {
            let user = field(before, "user")?.as_str().unwrap_or_default();
            // Google exposes no session state to read back: the snapshot stays as it is.
            Ok((
                before.clone(),
                format!(
                    "Sign Google Workspace user {user} out of every web and device session (cannot be undone, not observable)."
                ),
            ))
        }
        other => {
            Err(ConnectorError::unsupported(format!("{other} is not supported by the Google Workspace connector")))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn account_keeps_only_stable_fields() {
        let user = json!({"kind": "admin#directory#user", "id": "1234", "etag": "\"x\"", "primaryEmail": "alice@example.com",
            "suspended": false, "changePasswordAtNextLogin": true, "isAdmin": false, "lastLoginTime": "2025-01-01T00:00:00.000Z"});
        assert_eq!(
            account("alice@example.com", &user),
            json!({"user": "alice@example.com", "suspended": false, "change_password_at_next_login": true, "admin": false})
        );
    }

    #[test]
    fn membership_present_and_absent() {
        let m = json!({"kind": "admin#directory#member", "etag": "\"e\"", "id": "99", "email": "alice@example.com",
            "role": "MANAGER", "type": "USER", "status": "ACTIVE", "delivery_settings": "DIGEST"});
        assert_eq!(
            membership("eng@example.com", "alice@example.com", Some(&m)),
            json!({"group": "eng@example.com", "member": "alice@example.com", "present": true, "email": "alice@example.com",
                "role": "MANAGER", "delivery_settings": "DIGEST", "type": "USER"})
        );
        assert_eq!(
            membership("eng@example.com", "alice@example.com", None),
            json!({"group": "eng@example.com", "member": "alice@example.com", "present": false})
        );
    }

    #[test]
    fn after_states() {
        let acc = json!({"user": "a", "suspended": false, "change_password_at_next_login": false, "admin": false});
        assert_eq!(expected_after(&ActionKind::Suspend, &acc).unwrap().0["suspended"], json!(true));
        assert_eq!(
            expected_after(&ActionKind::ForcePasswordReset, &acc).unwrap().0["change_password_at_next_login"],
            json!(true)
        );
        assert_eq!(expected_after(&ActionKind::RevokeSessions, &acc).unwrap().0, acc);
        let m = membership("g", "a", Some(&json!({"email": "a", "role": "MEMBER"})));
        assert_eq!(
            expected_after(&ActionKind::Revoke, &m).unwrap().0,
            json!({"group": "g", "member": "a", "present": false})
        );
        assert!(expected_after(&ActionKind::Suspend, &json!({"x": 1})).is_err());
    }
}
