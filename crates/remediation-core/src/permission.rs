//! What each provider call a connector makes needs from its credentials, and the check's
//! verdict on each of those permissions: granted, missing, or unknown.
//!
//! Every connector declares one static map ([`Connector::permission_map`](crate::Connector::permission_map)):
//! for each capability (kind and grant type), and for the reads behind snapshots and
//! verification, the provider calls it makes and the permission each needs, in the provider's
//! own terms. `check_permissions` derives its list from that map ([`Permissions::judge`]), so
//! a call added without an entry is neither documented nor checked, and the connectors' tests
//! fail on it. "Cannot tell" is [`Grant::Unknown`], never granted.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::KindName;

/// Which part of a connector's work a provider call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Health and permission checks.
    Check,
    /// Reading a grant type's state (snapshot, plan, verification).
    Read,
    /// Applying a capability.
    Execute,
    /// Undoing a capability.
    Rollback,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Check => "check",
            Self::Read => "read",
            Self::Execute => "execute",
            Self::Rollback => "rollback",
        })
    }
}

/// The grant type of an entry that applies to every grant type the connector is configured
/// with.
pub const ANY_GRANT_TYPE: &str = "(any)";

/// One provider call a connector makes and the permission it needs.
///
/// A call that needs two permissions is two entries. `permission` is the least privileged
/// permission the provider documents for the call; `also_granted_by` lists broader ones that
/// include it (a token holding one of those has what the call needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PermissionNeed {
    /// What the call is for.
    pub step: Step,
    /// The capability's kind, for [`Step::Execute`] and [`Step::Rollback`]; `None` there
    /// means every kind.
    pub kind: Option<KindName>,
    /// The grant type read, written or undone; empty for [`Step::Check`], [`ANY_GRANT_TYPE`]
    /// for a connector whose grant types come from its configuration.
    pub grant_type: &'static str,
    /// The call, as `METHOD /path/{placeholder}` (or the provider's operation name).
    pub call: &'static str,
    /// The least privileged permission the call needs, in provider terms.
    pub permission: &'static str,
    /// Broader permissions that also grant it.
    pub also_granted_by: &'static [&'static str],
}

impl PermissionNeed {
    /// A call the connector's checks make.
    pub const fn check(call: &'static str, permission: &'static str) -> Self {
        Self { step: Step::Check, kind: None, grant_type: "", call, permission, also_granted_by: &[] }
    }

    /// A call that reads the state of `grant_type`.
    pub const fn read(grant_type: &'static str, call: &'static str, permission: &'static str) -> Self {
        Self { step: Step::Read, kind: None, grant_type, call, permission, also_granted_by: &[] }
    }

    /// A call that applies `kind` to `grant_type`.
    pub const fn execute(
        kind: KindName,
        grant_type: &'static str,
        call: &'static str,
        permission: &'static str,
    ) -> Self {
        Self { step: Step::Execute, kind: Some(kind), grant_type, call, permission, also_granted_by: &[] }
    }

    /// A call that undoes `kind` on `grant_type`.
    pub const fn rollback(
        kind: KindName,
        grant_type: &'static str,
        call: &'static str,
        permission: &'static str,
    ) -> Self {
        Self { step: Step::Rollback, kind: Some(kind), grant_type, call, permission, also_granted_by: &[] }
    }

    /// A call that carries out `step` for every kind and every configured grant type.
    pub const fn any(step: Step, call: &'static str, permission: &'static str) -> Self {
        Self { step, kind: None, grant_type: ANY_GRANT_TYPE, call, permission, also_granted_by: &[] }
    }

    /// The broader permissions that also grant this one.
    pub const fn or(mut self, broader: &'static [&'static str]) -> Self {
        self.also_granted_by = broader;
        self
    }

    /// The permission and the broader ones that include it.
    pub fn satisfied_by(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.permission).chain(self.also_granted_by.iter().copied())
    }

    /// What the call is for, as people read it: `read directory_role`, `execute revoke
    /// directory_role`, `check`.
    pub fn purpose(&self) -> String {
        match (self.step, self.kind) {
            (Step::Check, _) => "check".to_owned(),
            (Step::Read, _) => format!("read {}", self.grant_type),
            (step, None) => format!("{step} {}", self.grant_type),
            (step, Some(kind)) => format!("{step} {kind} {}", self.grant_type),
        }
    }
}

/// The check's verdict on one permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// The credentials hold it (or a broader permission that includes it).
    Granted,
    /// The credentials do not hold it: the calls that need it will be refused.
    Missing,
    /// The check cannot tell (opaque token, no introspection, introspection refused).
    Unknown,
}

/// What the connector's credentials are allowed to do, judged against its permission map.
///
/// Each permission the map names appears once, in exactly one of `granted`, `missing` and
/// `unknown`. Only `missing` refuses writes ([`Permissions::can_write`]); `unknown` is
/// reported, never counted as granted ([`Permissions::all_granted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Permissions {
    /// Needed permissions the credentials are known to hold.
    #[serde(default)]
    pub granted: Vec<String>,
    /// Needed permissions the credentials are known to lack, in provider terms.
    pub missing: Vec<String>,
    /// Needed permissions the check cannot judge.
    #[serde(default)]
    pub unknown: Vec<String>,
    /// Why the `unknown` ones cannot be judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
}

impl Permissions {
    /// Judges each permission `map` names, once each in map order: `judge` is asked about the
    /// first entry naming it.
    pub fn judge(map: &[PermissionNeed], mut judge: impl FnMut(&PermissionNeed) -> Grant) -> Self {
        let mut out = Self::default();
        for need in map {
            if out.names().any(|n| n == need.permission) {
                continue;
            }
            let name = need.permission.to_owned();
            match judge(need) {
                Grant::Granted => out.granted.push(name),
                Grant::Missing => out.missing.push(name),
                Grant::Unknown => out.unknown.push(name),
            }
        }
        out
    }

    /// Every permission `map` names, none judged, with the reason.
    pub fn unknown(map: &[PermissionNeed], reason: impl Into<String>) -> Self {
        Self::judge(map, |_| Grant::Unknown).because(reason)
    }

    /// Judges against the permissions the credentials are known to hold: a need is granted
    /// when `held` contains it or a broader permission (compared without case), else missing.
    pub fn held(map: &[PermissionNeed], held: &[String]) -> Self {
        Self::judge(map, |need| match need.satisfied_by().any(|p| held.iter().any(|h| h.eq_ignore_ascii_case(p))) {
            true => Grant::Granted,
            false => Grant::Missing,
        })
    }

    /// Sets why the `unknown` permissions could not be judged (dropped when none is unknown).
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.unknown_reason = (!self.unknown.is_empty()).then(|| reason.into());
        self
    }

    /// True unless a needed permission is known to be missing. Unknown permissions do not
    /// refuse writes: many providers offer no way to ask, and the provider still refuses a
    /// call it does not allow.
    pub fn can_write(&self) -> bool {
        self.missing.is_empty()
    }

    /// True only when every needed permission is known to be granted.
    pub fn all_granted(&self) -> bool {
        self.missing.is_empty() && self.unknown.is_empty()
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.granted.iter().chain(&self.missing).chain(&self.unknown).map(String::as_str)
    }
}

/// The map as a Markdown table (`| Used for | Call | Permission |`), as the README lists it.
pub fn permission_table(map: &[PermissionNeed]) -> String {
    let mut out = String::from("| Used for | Provider call | Permission needed |\n|---|---|---|\n");
    for need in map {
        let mut permission = format!("`{}`", need.permission);
        if !need.also_granted_by.is_empty() {
            let broader: Vec<String> = need.also_granted_by.iter().map(|b| format!("`{b}`")).collect();
            permission.push_str(&format!(" (or {})", broader.join(", ")));
        }
        out.push_str(&format!("| {} | `{}` | {} |\n", need.purpose(), need.call, permission));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &[PermissionNeed] = &[
        PermissionNeed::read("account", "GET /users/{id}", "User.Read.All").or(&["User.ReadWrite.All"]),
        PermissionNeed::execute(KindName::Suspend, "account", "PATCH /users/{id}", "User.EnableDisableAccount.All"),
        PermissionNeed::rollback(KindName::Suspend, "account", "PATCH /users/{id}", "User.EnableDisableAccount.All"),
    ];

    #[test]
    fn each_permission_is_judged_once_and_broader_ones_count() {
        let p = Permissions::held(MAP, &["user.readwrite.all".into()]);
        assert_eq!(p.granted, ["User.Read.All"]);
        assert_eq!(p.missing, ["User.EnableDisableAccount.All"]);
        assert!(p.unknown.is_empty() && p.unknown_reason.is_none());
        assert!(!p.can_write() && !p.all_granted());
    }

    #[test]
    fn unknown_is_never_granted() {
        let p = Permissions::unknown(MAP, "opaque token");
        assert_eq!(p.unknown, ["User.Read.All", "User.EnableDisableAccount.All"]);
        assert_eq!(p.unknown_reason.as_deref(), Some("opaque token"));
        assert!(p.granted.is_empty());
        assert!(p.can_write(), "unknown does not refuse writes");
        assert!(!p.all_granted(), "unknown is not ok");
    }

    #[test]
    fn the_table_names_each_call() {
        let t = permission_table(MAP);
        assert!(t.contains("| read account | `GET /users/{id}` | `User.Read.All` (or `User.ReadWrite.All`) |"), "{t}");
        assert!(t.contains("| rollback suspend account | `PATCH /users/{id}` |"), "{t}");
    }
}
