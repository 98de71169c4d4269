//! Access keys: `rotate` (create a key, hand it over in Secrets Manager, prove it signs as
//! its user, deactivate the old one) with its undo, and `revoke` (delete a key that is already
//! inactive: the follow-up of a rotation).
//!
//! A key's state: `{"user", "key_id", "status": "Active"|"Inactive"|"deleted", "other_key":
//! null | {"key_id", "status", "handed_over"}, "secret": {"name", "version"}}`. `other_key` is
//! the user's second key (IAM allows two), `handed_over` whether the secret's current value
//! holds it, `secret.version` the secret's `AWSCURRENT` version (`null`: no secret). A plan
//! cannot know the new key's id nor the secret's new version: it says `null` there, and
//! [`rotation_matches`] accepts any id and version in their place.

use remediation_core::{
    Action, ActionKind, CanonicalTarget, ConnectorError, ConnectorErrorKind, FollowUp, Outcome, OutcomeStatus,
    PlannedChange, Settled, Snapshot, Target,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::connector::AwsConnector;
use crate::credentials::AwsCredentials;
use crate::iam::{self, AccessKey};
use crate::target::{IAM_ACCESS_KEY, secret_name};

/// The failpoint between `CreateAccessKey` and the storing of its secret: a crash there
/// leaves a key nobody holds, which recovery deletes.
pub const AFTER_CREATE_ACCESS_KEY: &str = "aws_rotate_after_create_access_key";

/// How long before the execution began a key may have been created and still count as the
/// one that execution created (clock skew between AWS and this host).
const CREATED_SKEW: time::Duration = time::Duration::minutes(5);

/// Longest wait between two asks whether a new key works.
const MAX_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn text<'a>(state: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(state, |v, k| v.get(*k)).and_then(Value::as_str)
}

fn invalid_state(what: &str) -> ConnectorError {
    ConnectorError::permanent(format!("the recorded state of the access key has no {what}"))
}

/// The state a rotation leads to from `before`: the old key inactive, a new one active and
/// handed over, the secret at a new version (`null`s: not known before).
pub(crate) fn rotated(before: &Value) -> Value {
    let mut after = before.clone();
    after["status"] = json!("Inactive");
    after["other_key"] = json!({"key_id": null, "status": "Active", "handed_over": true});
    after["secret"]["version"] = Value::Null;
    after
}

/// Whether `observed` is the state `expected` (a plan's after-state) describes: equal once the
/// new key's id and the secret's new version, which the plan leaves `null`, are taken as
/// given, provided they are there.
pub(crate) fn rotation_matches(expected: &Value, observed: &Value) -> bool {
    let mut seen = observed.clone();
    for path in [["other_key", "key_id"], ["secret", "version"]] {
        let planned = path.iter().try_fold(expected, |v, k| v.get(*k));
        if planned == Some(&Value::Null) {
            if text(observed, &path).is_none() {
                return false;
            }
            seen[path[0]][path[1]] = Value::Null;
        }
    }
    &seen == expected
}

/// The Secrets Manager idempotency token of the version storing `key` for `action`: 64
/// hexadecimal digits, the same for every retry of the same write.
fn token(action: &Action, key: &str) -> String {
    let digest = Sha256::new().chain_update(action.idempotency_key.as_bytes()).chain_update(b"\0").chain_update(key);
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl AwsConnector {
    /// Reads `user`'s key `key`, or, without one, the user's oldest key (the one a scanner
    /// means when it names only the user; a tie goes to the key the secret does not hold, so
    /// the selection stays on the old key after a rotation). A user named by `arn` must have
    /// exactly that ARN: a finding from another account is not about this account's namesake.
    pub(crate) async fn read_access_key(
        &self,
        user: &str,
        arn: Option<&str>,
        key: Option<&str>,
    ) -> Result<Snapshot, ConnectorError> {
        let (t, e) = (&self.transport, &self.endpoints);
        let u = iam::get_user(t, e, user).await?;
        if let Some(arn) = arn
            && arn != u.arn
        {
            return Err(ConnectorError::not_found(format!(
                "no IAM user has the ARN {arn} in this account (user {} is {})",
                u.name, u.arn
            )));
        }
        let keys = iam::list_keys(t, e, &u.name).await?;
        if keys.len() > 2 {
            return Err(ConnectorError::permanent(format!(
                "IAM lists {} access keys for {}; it allows two",
                keys.len(),
                u.name
            )));
        }
        let name = secret_name(&self.rotation.secret_name, &u.name)?;
        let version = iam::current_version(t, e, &name).await?;
        // Which key the secret holds matters only when there is a key besides the one named.
        let besides = keys.iter().any(|k| key != Some(k.id.as_str())) && (key.is_some() || keys.len() > 1);
        let held = if besides && version.is_some() { iam::held_key_id(t, e, &name).await? } else { None };
        let key_id = match key {
            Some(k) => k.to_owned(),
            None => {
                let mut sorted: Vec<&AccessKey> = keys.iter().collect();
                sorted.sort_by_key(|k| (k.created, held.as_deref() == Some(k.id.as_str()), k.id.clone()));
                sorted
                    .first()
                    .map(|k| k.id.clone())
                    .ok_or_else(|| ConnectorError::not_found(format!("IAM user {} has no access key", u.name)))?
            }
        };
        let status = keys.iter().find(|k| k.id == key_id).map_or("deleted", |k| k.status.as_str());
        let other_key = keys.iter().find(|k| k.id != key_id).map_or(
            Value::Null,
            |k| json!({"key_id": k.id, "status": k.status, "handed_over": held.as_deref() == Some(k.id.as_str())}),
        );
        let protected = self.is_protected(&[&u.name, &u.arn, &u.id]);
        let owner = if u.id.is_empty() { u.arn.clone() } else { u.id.clone() };
        Ok(Snapshot {
            protected,
            canonical: Some(CanonicalTarget::with_resource(owner, key_id.clone())),
            state: json!({
                "user": u.name,
                "key_id": key_id,
                "status": status,
                "other_key": other_key,
                "secret": {"name": name, "version": version},
            }),
        })
    }

    /// The plan of a rotation or a deletion, refused when the key is not in a state it can
    /// take.
    pub(crate) fn plan_access_key(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        let s = &before.state;
        let user = text(s, &["user"]).ok_or_else(|| invalid_state("user"))?;
        let key = text(s, &["key_id"]).ok_or_else(|| invalid_state("key id"))?;
        let status = text(s, &["status"]).unwrap_or("deleted");
        let secret = text(s, &["secret", "name"]).ok_or_else(|| invalid_state("secret name"))?;
        let conflict = |m: String| ConnectorError::new(ConnectorErrorKind::Conflict, m);
        if key == self.transport.credentials.access_key_id {
            return Err(conflict(format!(
                "access key {key} of {user} is the one this connector signs with: changing it would cut the \
                 connector off half-way; rotate it by hand, or give the connector other credentials"
            )));
        }
        let (after, description) = match action.kind {
            ActionKind::Rotate => {
                if status != "Active" {
                    return Err(conflict(format!(
                        "access key {key} of {user} is {status}: there is nothing to rotate"
                    )));
                }
                if let Some(other) = text(s, &["other_key", "key_id"]) {
                    return Err(conflict(format!(
                        "{user} already has a second access key ({other}); IAM allows two, so a rotation needs that \
                         slot free: delete {other}, or rotate it first"
                    )));
                }
                let created = if s["secret"]["version"].is_null() { "created" } else { "a new version" };
                (
                    rotated(s),
                    format!(
                        "Rotate access key {key} of IAM user {user}: create a new key (CreateAccessKey), hand it over \
                         in Secrets Manager secret {secret} ({created}), prove it signs as {user} \
                         (sts:GetCallerIdentity), then deactivate {key} (UpdateAccessKey Inactive, confirmed by \
                         ListAccessKeys). {key} stays, inactive, until the rollback window closes; a follow-up \
                         action then deletes it (DeleteAccessKey). A rollback reactivates {key}, puts the secret \
                         back as it was and deletes the new key."
                    ),
                )
            }
            ActionKind::Revoke => {
                if status == "Active" {
                    return Err(conflict(format!(
                        "access key {key} of {user} is active; a key is deleted only once it is inactive: suspend \
                         or rotate it first"
                    )));
                }
                let mut after = s.clone();
                after["status"] = json!("deleted");
                (
                    after,
                    format!(
                        "Delete access key {key} of IAM user {user} (DeleteAccessKey); it is {status} now. \
                         Irreversible: a deleted key cannot be restored, only replaced."
                    ),
                )
            }
            _ => return Err(ConnectorError::unsupported(format!("AWS cannot plan {} on an access key", action.kind))),
        };
        Ok(PlannedChange { expected_after: Snapshot { state: after, ..before.clone() }, description })
    }

    /// Rotates or deletes, answering only once the result reads back.
    pub(crate) async fn execute_access_key(&self, action: &Action, live: Snapshot) -> Result<Outcome, ConnectorError> {
        let planned = self.plan_access_key(action, &live);
        match action.kind {
            ActionKind::Rotate => {
                if let Err(e) = planned {
                    // Done already (a retry after the old key was deactivated)?
                    if text(&live.state, &["status"]) == Some("Inactive")
                        && live.state["other_key"]["handed_over"] == json!(true)
                        && text(&live.state, &["other_key", "status"]) == Some("Active")
                    {
                        return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
                    }
                    return Err(e);
                }
                self.rotate(action, &live.state).await
            }
            _ => {
                if text(&live.state, &["status"]) == Some("deleted") {
                    return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
                }
                let planned = planned?;
                let (user, key) = user_and_key(&live.state)?;
                let ids = iam::delete_key(&self.transport, &self.endpoints, user, key).await?;
                self.read_back(&action.target, &planned.expected_after.state, ids, false).await
            }
        }
    }

    async fn rotate(&self, action: &Action, live: &Value) -> Result<Outcome, ConnectorError> {
        let (t, e) = (&self.transport, &self.endpoints);
        let (user, old) = user_and_key(live)?;
        let name = text(live, &["secret", "name"]).ok_or_else(|| invalid_state("secret name"))?;
        let previous = text(live, &["secret", "version"]);
        let arn = iam::get_user(t, e, user).await?.arn;
        let (new, created_id) = iam::create_key(t, e, user).await?;
        let mut ids: Vec<String> = created_id.into_iter().collect();
        self.failpoint(AFTER_CREATE_ACCESS_KEY);
        let kms = self.rotation.kms_key_id.as_deref();
        let version =
            match iam::store_key(t, e, name, previous.is_some(), &new, &token(action, &new.access_key_id), kms).await {
                Ok((version, stored)) => {
                    ids.extend(stored);
                    version
                }
                Err(error) => return Err(self.take_back(user, &new.access_key_id, name, previous, None, error).await),
            };
        if let Err(error) = self.prove(&new, &arn, user).await {
            return Err(self.take_back(user, &new.access_key_id, name, previous, Some(&version), error).await);
        }
        match iam::set_key_status(t, e, user, old, false).await {
            Ok(done) => ids.extend(done),
            Err(error) => {
                return Err(self.take_back(user, &new.access_key_id, name, previous, Some(&version), error).await);
            }
        }
        let expected = rotated(live);
        let now = self.read(&action.target).await?;
        if !rotation_matches(&expected, &now.state)
            || text(&now.state, &["other_key", "key_id"]) != Some(&new.access_key_id)
        {
            let mut e = ConnectorError::permanent(format!(
                "{}: AWS accepted the rotation but reads back {} instead of the old key inactive and {} active and \
                 handed over",
                action.target, now.state, new.access_key_id
            ));
            if let Some(id) = ids.pop() {
                e = e.with_request_id(id);
            }
            return Err(e);
        }
        tracing::info!(connector = %self.id, target = %action.target, new_key = %new.access_key_id, "access key rotated");
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids: ids })
    }

    /// Asks STS, signing with `new`, who it is, until the key works or the attempts run out;
    /// an emulator answers unknown keys with a default identity, so only the user's own ARN
    /// proves the key.
    async fn prove(&self, new: &AwsCredentials, arn: &str, user: &str) -> Result<(), ConnectorError> {
        let mut wait = self.transport.backoff;
        for attempt in 1..=self.rotation.check_attempts {
            match iam::caller_arn(&self.transport, &self.endpoints, new).await {
                Ok(signed_as) if signed_as == arn => return Ok(()),
                Ok(signed_as) => {
                    return Err(ConnectorError::permanent(format!(
                        "the new key of {user} signs as {signed_as}, not as {arn}"
                    )));
                }
                // A new key takes a few seconds to be known everywhere.
                Err(f)
                    if f.error.kind == ConnectorErrorKind::Unauthenticated
                        && attempt < self.rotation.check_attempts =>
                {
                    self.transport.sleeper.sleep(wait).await;
                    wait = (wait * 2).min(MAX_CHECK_WAIT);
                }
                Err(f) => {
                    return Err(ConnectorError::new(
                        f.error.kind.clone(),
                        format!("the new key of {user} could not be proved to work: {}", f.error),
                    ));
                }
            }
        }
        Err(ConnectorError::permanent(format!("the new key of {user} never worked")))
    }

    /// Undoes a rotation that failed half-way: the secret as it was, the new key deleted. The
    /// error says what failed and whether the undo held.
    async fn take_back(
        &self,
        user: &str,
        new: &str,
        name: &str,
        previous: Option<&str>,
        stored: Option<&str>,
        error: ConnectorError,
    ) -> ConnectorError {
        let (t, e) = (&self.transport, &self.endpoints);
        let mut left = Vec::new();
        if let Some(current) = stored
            && let Err(undo) = iam::restore_secret(t, e, name, previous, current).await
        {
            left.push(format!("secret {name} could not be put back ({undo}); its current version holds {new}"));
        }
        if let Err(undo) = iam::delete_key(t, e, user, new).await {
            left.push(format!("the new key {new} could not be deleted ({undo}); delete it by hand"));
        }
        let outcome = if left.is_empty() {
            format!("the new key {new} was deleted again and nothing else changed")
        } else {
            left.join("; ")
        };
        // Permanent: the provider was written to and written back, so this is no "nothing was
        // written" throttle the engine could requeue.
        let kind = match &error.kind {
            ConnectorErrorKind::Throttled { .. } | ConnectorErrorKind::Transient => ConnectorErrorKind::Permanent,
            other => other.clone(),
        };
        ConnectorError::new(kind, format!("rotation of {user}'s key failed: {error}; {outcome}"))
    }

    /// Undoes a rotation: the old key active again, the secret as it was, the new key deleted.
    pub(crate) async fn rollback_access_key(
        &self,
        action: &Action,
        before: &Snapshot,
        after: &Snapshot,
    ) -> Result<Outcome, ConnectorError> {
        if action.kind != ActionKind::Rotate {
            return Err(ConnectorError::permanent(format!("{} of an access key cannot be undone", action.kind)));
        }
        let (t, e) = (&self.transport, &self.endpoints);
        let live = self.read(&action.target).await?;
        if live.state == before.state {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
        }
        let (user, old) = user_and_key(&before.state)?;
        if text(&live.state, &["status"]) == Some("deleted") {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Conflict,
                format!("access key {old} of {user} was deleted: there is nothing left to reactivate"),
            ));
        }
        if live.state != after.state {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Conflict,
                format!(
                    "{} changed since the action ran (now {}, after the action {}); restoring could undo someone \
                     else's change",
                    action.target, live.state, after.state
                ),
            ));
        }
        let new = text(&after.state, &["other_key", "key_id"]).ok_or_else(|| invalid_state("new key"))?;
        let name = text(&after.state, &["secret", "name"]).ok_or_else(|| invalid_state("secret name"))?;
        let previous = text(&before.state, &["secret", "version"]);
        let current = text(&after.state, &["secret", "version"]);
        // The old key works again before the new one goes away.
        let mut ids = iam::set_key_status(t, e, user, old, true).await?;
        if let Some(current) = current
            && previous != Some(current)
        {
            ids.extend(iam::restore_secret(t, e, name, previous, current).await?);
        }
        ids.extend(iam::delete_key(t, e, user, new).await?);
        self.read_back(&action.target, &before.state, ids, false).await
    }

    /// Reads the target back and answers `Applied` when it shows `desired`.
    async fn read_back(
        &self,
        target: &Target,
        desired: &Value,
        mut ids: Vec<String>,
        rotation: bool,
    ) -> Result<Outcome, ConnectorError> {
        let now = self.read(target).await?;
        let ok = if rotation { rotation_matches(desired, &now.state) } else { &now.state == desired };
        if !ok {
            let mut e = ConnectorError::permanent(format!(
                "{target}: AWS accepted the change but reads back {} instead of {desired}",
                now.state
            ));
            if let Some(id) = ids.pop() {
                e = e.with_request_id(id);
            }
            return Err(e);
        }
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids: ids })
    }

    /// The deletion of the old key, once a rotation's window has closed.
    pub(crate) fn access_key_follow_up(action: &Action, after: &Snapshot) -> Option<FollowUp> {
        if action.kind != ActionKind::Rotate {
            return None;
        }
        let (user, old) = user_and_key(&after.state).ok()?;
        let new = text(&after.state, &["other_key", "key_id"]).unwrap_or("the new key");
        Some(FollowUp {
            kind: ActionKind::Revoke,
            target: Target {
                identity: user.to_owned(),
                resource: None,
                grant: Some(old.to_owned()),
                grant_type: IAM_ACCESS_KEY.to_owned(),
            },
            reason: format!("delete access key {old} of {user}: rotated to {new} by action {}", action.id),
        })
    }

    /// After a crash inside a rotation: a key created by this execution and never confirmed
    /// (the old key still active) is deleted, and the secret put back, so the target shows the
    /// before-state and the engine can run the rotation again.
    pub(crate) async fn settle_access_key(
        &self,
        action: &Action,
        before: &Snapshot,
        live: &Snapshot,
    ) -> Result<Option<Settled>, ConnectorError> {
        if action.kind != ActionKind::Rotate
            || !before.state["other_key"].is_null()
            || text(&live.state, &["status"]) != Some("Active")
            || live.state["key_id"] != before.state["key_id"]
        {
            return Ok(None);
        }
        let Some(new) = text(&live.state, &["other_key", "key_id"]) else { return Ok(None) };
        let (t, e) = (&self.transport, &self.endpoints);
        let (user, _) = user_and_key(&live.state)?;
        // Only a key created since this execution began can be its own.
        let keys = iam::list_keys(t, e, user).await?;
        let created = keys.iter().find(|k| k.id == new).and_then(|k| k.created);
        if created.is_none_or(|c| c < action.updated_at - CREATED_SKEW) {
            return Ok(None);
        }
        let name = text(&live.state, &["secret", "name"]).ok_or_else(|| invalid_state("secret name"))?;
        let previous = text(&before.state, &["secret", "version"]);
        let current = text(&live.state, &["secret", "version"]);
        let mut ids = Vec::new();
        let mut note =
            format!("deleted access key {new} of {user}, created before the interruption and never confirmed");
        if let Some(current) = current
            && previous != Some(current)
        {
            ids.extend(iam::restore_secret(t, e, name, previous, current).await?);
            note.push_str(&format!("; secret {name} put back as it was"));
        }
        ids.extend(iam::delete_key(t, e, user, new).await?);
        Ok(Some(Settled { note, request_ids: ids }))
    }
}

fn user_and_key(state: &Value) -> Result<(&str, &str), ConnectorError> {
    Ok((
        text(state, &["user"]).ok_or_else(|| invalid_state("user"))?,
        text(state, &["key_id"]).ok_or_else(|| invalid_state("key id"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn before() -> Value {
        json!({"user": "alice", "key_id": "AKIAOLD0000000000", "status": "Active", "other_key": null,
               "secret": {"name": "remediation/iam/alice", "version": "v1"}})
    }

    #[test]
    fn a_rotation_matches_any_new_key_and_version_but_nothing_else() {
        let expected = rotated(&before());
        let mut seen = expected.clone();
        seen["other_key"]["key_id"] = json!("AKIANEW0000000000");
        seen["secret"]["version"] = json!("v2");
        assert!(rotation_matches(&expected, &seen));
        assert!(!rotation_matches(&expected, &expected), "a new key and a new version must be there");
        let mut not_handed = seen.clone();
        not_handed["other_key"]["handed_over"] = json!(false);
        assert!(!rotation_matches(&expected, &not_handed));
        let mut still_active = seen.clone();
        still_active["status"] = json!("Active");
        assert!(!rotation_matches(&expected, &still_active));
        let mut other_secret = seen;
        other_secret["secret"]["name"] = json!("elsewhere");
        assert!(!rotation_matches(&expected, &other_secret));
    }

    #[test]
    fn tokens_are_stable_per_action_and_key() {
        let mut a = remediation_testkit::ActionBuilder::new().kind(ActionKind::Rotate).build();
        let t1 = token(&a, "AKIA1");
        assert_eq!(t1.len(), 64);
        assert_eq!(t1, token(&a, "AKIA1"));
        assert_ne!(t1, token(&a, "AKIA2"));
        a.idempotency_key.push('x');
        assert_ne!(t1, token(&a, "AKIA1"));
    }
}
