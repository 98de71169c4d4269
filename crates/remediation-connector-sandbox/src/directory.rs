//! The sandbox directory as it is stored on disk: users, groups, grants, and the connector's own logs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use remediation_core::{KindName, Target};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The whole sandbox directory: the content of the JSON file.
///
/// Every section is optional in the file and defaults to empty; unknown fields are refused so
/// that a typo is reported instead of silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// Users by identifier (the `identity` of a target).
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// Groups by name (the `resource` of a `group_membership` target).
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// Repository permissions and application assignments.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Notifications sent by `notify` actions, oldest first.
    #[serde(default)]
    pub notifications: Vec<Notification>,
    /// Append-only log of every write the connector applied, oldest first.
    #[serde(default)]
    pub writes: Vec<WriteEntry>,
    /// One-shot faults the next write will suffer (for tests and demos).
    #[serde(default)]
    pub faults: Faults,
    /// Resources whose settings `enforce` sets, by name (the `identity` of a
    /// `resource_setting` target).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Resource>,
    /// The compliant value of each setting: what `enforce` sets when its value is `default`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub setting_defaults: BTreeMap<String, String>,
}

/// A resource with settings (a bucket, a database) that `enforce` acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Its settings, by name.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// What depends on it (a website it serves, a replica): an `enforce` reaches each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependants: Vec<String>,
    /// A protected resource: every target naming it is reported as protected.
    #[serde(default)]
    pub protected: bool,
}

/// A user account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name shown to people.
    #[serde(default)]
    pub display_name: String,
    /// Whether the account can sign in.
    #[serde(default)]
    pub status: UserStatus,
    /// Identifiers of the account's open sign-in sessions.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// The user must choose a new password at next sign-in.
    #[serde(default)]
    pub password_must_change: bool,
    /// A protected account (break-glass): every target naming it is reported as protected.
    #[serde(default)]
    pub protected: bool,
    /// Other names of the account (case-insensitive). A target may name the user by any of
    /// them; the sandbox acts on, and reports as its canonical id, the user's key in `users`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The account's primary email, as the directory's admins assign it (never one the account
    /// holder sets). A person is found by it (case-insensitive); a target does not name the
    /// user by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Whether an account can sign in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// The account can sign in.
    #[default]
    Active,
    /// The account is suspended and cannot sign in.
    Suspended,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        })
    }
}

/// A group and its members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Identifiers of the members.
    #[serde(default)]
    pub members: Vec<String>,
    /// A protected group: every membership in it is reported as protected.
    #[serde(default)]
    pub protected: bool,
}

/// The kinds of grant kept in [`Directory::grants`]. Group memberships live in
/// [`Directory::groups`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// A permission on a repository; `level` is one of [`RepoLevel`].
    RepoPermission,
    /// An assignment to an application; `level` is the application role and `profile` its
    /// attributes.
    AppAssignment,
}

impl GrantType {
    /// The grant type's name, as used in [`Target::grant_type`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RepoPermission => crate::grant_type::REPO_PERMISSION,
            Self::AppAssignment => crate::grant_type::APP_ASSIGNMENT,
        }
    }
}

/// A grant of a resource to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Who holds the grant.
    pub identity: String,
    /// The repository or application.
    pub resource: String,
    /// What kind of grant this is.
    pub grant_type: GrantType,
    /// The permission level (`pull` ... `admin` for repositories, a role for applications).
    pub level: String,
    /// Application assignment attributes (`app_assignment` only). A rollback cannot restore
    /// them: it re-adds the assignment with an empty profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A notification sent by a `notify` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// The identity told.
    pub to: String,
    /// The action's reason.
    pub message: String,
    /// The action's idempotency key.
    pub idempotency_key: String,
}

/// Whether a write applied an action or undid it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteOp {
    /// `execute` applied the action.
    Execute,
    /// `rollback` restored the before-state.
    Rollback,
}

/// One entry of the append-only write log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteEntry {
    /// The action's idempotency key; at most one entry per (key, op).
    pub idempotency_key: String,
    /// Whether this applied or undid the action.
    pub op: WriteOp,
    /// The action's kind.
    pub kind: KindName,
    /// The action's target.
    pub target: Target,
    /// When the write happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
}

/// One-shot faults, each reset to `false` in the file once it has fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next `execute` that changes something applies and saves its change, then fails
    /// with a transient error.
    pub fail_after_write: bool,
    /// The next `execute` first changes its target in a way unrelated to the action.
    pub drift_before_execute: bool,
    /// The next `rollback` fails with a permanent error and writes nothing.
    pub fail_rollback: bool,
}

/// Repository permission levels, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepoLevel {
    /// Read.
    Pull,
    /// Read and manage issues.
    Triage,
    /// Read and write.
    Push,
    /// Write and manage the repository without destructive rights.
    Maintain,
    /// Everything.
    Admin,
}

impl RepoLevel {
    /// Every level, from least to most powerful.
    pub const ALL: [RepoLevel; 5] = [Self::Pull, Self::Triage, Self::Push, Self::Maintain, Self::Admin];

    /// The level's name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Triage => "triage",
            Self::Push => "push",
            Self::Maintain => "maintain",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for RepoLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`RepoLevel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown repository permission level `{0}` (levels: pull, triage, push, maintain, admin)")]
pub struct UnknownLevel(pub String);

impl FromStr for RepoLevel {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// A small directory to try things on: four users (one of them the protected `breakglass`
/// account), each with the email `<key>@example.com`, the groups `admins` and `engineering`, repository permissions, an application
/// assignment with a profile, and the bucket `reports` (unencrypted, public, serving the site
/// `reports-site`) with the compliant values of its two settings.
pub fn sample() -> Directory {
    fn user(key: &str, name: &str, sessions: &[&str], protected: bool) -> User {
        User {
            email: Some(format!("{key}@example.com")),
            display_name: name.to_owned(),
            status: UserStatus::Active,
            sessions: sessions.iter().map(|s| (*s).to_owned()).collect(),
            password_must_change: false,
            protected,
            aliases: Vec::new(),
        }
    }
    fn grant(identity: &str, resource: &str, grant_type: GrantType, level: &str) -> Grant {
        Grant {
            identity: identity.to_owned(),
            resource: resource.to_owned(),
            grant_type,
            level: level.to_owned(),
            profile: None,
        }
    }
    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }
    let mut crm = grant("alice", "crm", GrantType::AppAssignment, "user");
    crm.profile = Some(serde_json::Map::from_iter([
        ("title".to_owned(), serde_json::Value::from("Sales")),
        ("region".to_owned(), serde_json::Value::from("EMEA")),
    ]));
    Directory {
        users: BTreeMap::from([
            ("alice".to_owned(), user("alice", "Alice", &["s-alice-1", "s-alice-2"], false)),
            ("bob".to_owned(), user("bob", "Bob", &["s-bob-1"], false)),
            ("carol".to_owned(), user("carol", "Carol", &[], false)),
            ("breakglass".to_owned(), user("breakglass", "Break-glass administrator", &[], true)),
        ]),
        groups: BTreeMap::from([
            ("admins".to_owned(), Group { members: members(&["alice", "bob", "breakglass"]), protected: false }),
            ("engineering".to_owned(), Group { members: members(&["alice", "bob", "carol"]), protected: false }),
        ]),
        grants: vec![
            grant("alice", "repo-payments", GrantType::RepoPermission, "admin"),
            grant("bob", "repo-payments", GrantType::RepoPermission, "push"),
            grant("carol", "repo-website", GrantType::RepoPermission, "maintain"),
            crm,
            grant("bob", "crm", GrantType::AppAssignment, "admin"),
        ],
        notifications: Vec::new(),
        writes: Vec::new(),
        faults: Faults::default(),
        resources: BTreeMap::from([(
            "reports".to_owned(),
            Resource {
                settings: BTreeMap::from([
                    ("default_encryption".to_owned(), "none".to_owned()),
                    ("public_access_block".to_owned(), "off".to_owned()),
                ]),
                dependants: vec!["reports-site".to_owned()],
                protected: false,
            },
        )]),
        setting_defaults: BTreeMap::from([
            ("default_encryption".to_owned(), "kms:alias/reports".to_owned()),
            ("public_access_block".to_owned(), "all".to_owned()),
        ]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_round_trip() {
        assert!(RepoLevel::Pull < RepoLevel::Triage);
        assert!(RepoLevel::Maintain < RepoLevel::Admin);
        for level in RepoLevel::ALL {
            assert_eq!(level.as_str().parse::<RepoLevel>(), Ok(level));
        }
        assert_eq!("owner".parse::<RepoLevel>(), Err(UnknownLevel("owner".into())));
    }

    #[test]
    fn minimal_file_parses_with_defaults() {
        let dir: Directory = serde_json::from_str(r#"{"users": {"x": {}}}"#).unwrap();
        assert_eq!(dir.users["x"].status, UserStatus::Active);
        assert_eq!(dir.faults, Faults::default());
        assert!(dir.groups.is_empty() && dir.writes.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        for json in [
            r#"{"userz": {}}"#,
            r#"{"users": {"x": {"stauts": "active"}}}"#,
            r#"{"faults": {"fail_always": true}}"#,
            r#"{"grants": [{"identity": "a", "resource": "r", "grant_type": "team", "level": "x"}]}"#,
        ] {
            assert!(serde_json::from_str::<Directory>(json).is_err(), "{json} should be refused");
        }
    }

    #[test]
    fn sample_round_trips_and_has_a_schema() {
        let sample = sample();
        let text = serde_json::to_string(&sample).unwrap();
        assert_eq!(serde_json::from_str::<Directory>(&text).unwrap(), sample);
        let schema = serde_json::to_value(schemars::schema_for!(Directory)).unwrap();
        assert!(schema["properties"]["faults"].is_object(), "{schema}");
    }
}
