//! The action and everything it names: its kind, its target, its mode and its identifiers.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::lifecycle::State;
use crate::snapshot::CanonicalTarget;

/// Identifier of an action: a UUIDv7, so identifiers sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ActionId(pub Uuid);

impl ActionId {
    /// A new UUIDv7 identifier for the given creation time.
    pub fn new_at(at: OffsetDateTime) -> Self {
        let nanos = at.unix_timestamp_nanos();
        let secs = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
        let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, subsec);
        Self(Uuid::new_v7(ts))
    }

    /// The id of the action that follows this one ([`crate::Connector::follow_up`]): a UUIDv7
    /// with this id's timestamp and the rest derived from this id, so the follow-up of an
    /// action is one id, and scheduling it twice (a recovery after a crash) finds it.
    pub fn follow_up(self) -> Self {
        use sha2::{Digest, Sha256};
        let mine = self.0.as_bytes();
        let digest = Sha256::new().chain_update(b"remediation follow-up\0").chain_update(mine).finalize();
        let mut bytes = [0u8; 16];
        // The 48-bit timestamp stays; version 7 and the RFC 9562 variant are set again.
        bytes[..6].copy_from_slice(&mine[..6]);
        bytes[6..].copy_from_slice(&digest[..10]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        Self(Uuid::from_bytes(bytes))
    }

    /// The id of the action entry `entry.index` of campaign `entry.campaign` asks for: a
    /// UUIDv7 with the campaign's creation time and the rest derived from the campaign's name
    /// and the entry's index. One entry can never create two actions: an import resumed after
    /// a crash, or run twice at once, finds the action the entry already created.
    pub fn for_campaign_entry(entry: &CampaignEntry) -> Self {
        use sha2::{Digest, Sha256};
        let stamp = Self::new_at(entry.created_at);
        let digest = Sha256::new()
            .chain_update(b"remediation campaign entry\0")
            .chain_update(entry.campaign.as_bytes())
            .chain_update(b"\0")
            .chain_update(entry.index.to_be_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&stamp.0.as_bytes()[..6]);
        bytes[6..].copy_from_slice(&digest[..10]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        Self(Uuid::from_bytes(bytes))
    }
}

/// The action handle `text` names (`#1234` or `1234`: see [`Action::handle`]), if it names
/// one; anything else (a UUID, `0`, signs, spaces) is `None`.
pub fn parse_handle(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('#').unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// The campaign entry an action request comes from (set by a campaign's import only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignEntry {
    /// The campaign's name.
    pub campaign: String,
    /// The entry's index in the campaign's document, from 0.
    pub index: u64,
    /// When the campaign was created (the derived id's timestamp).
    pub created_at: OffsetDateTime,
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ActionId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What an action does to its target. Unknown fields are refused, the unit variants' too
/// (`{"type": "revoke", "to": "read"}` is an error, not a revoke).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionKind {
    /// Remove a grant (group membership, role assignment, app assignment, ...).
    Revoke,
    /// Lower a grant to a smaller permission level.
    Reduce {
        /// The permission level the grant is reduced to (provider vocabulary, e.g. `pull`).
        to: String,
    },
    /// Suspend or disable an account or a key.
    Suspend,
    /// End the identity's sign-in sessions.
    RevokeSessions,
    /// Require a new password at next sign-in.
    ForcePasswordReset,
    /// Tell someone; changes nothing in the provider.
    Notify,
    /// Set one setting of a resource to a compliant value (a bucket's default encryption, a
    /// database's backup retention). The before-state keeps the whole previous configuration,
    /// and a rollback restores it exactly.
    Enforce {
        /// The setting, in the connector's vocabulary (`s3_default_encryption`, ...).
        setting: String,
        /// The compliant value, in the connector's vocabulary; `default` asks for the value
        /// the connector's configuration names for this setting (the plan shows which).
        value: String,
    },
    /// Replace a credential: create a new one, hand it over, deactivate the old one, and
    /// delete the old one by a follow-up action once the rollback window has closed. A
    /// rollback reactivates the old credential while it still exists and retires the new one.
    Rotate,
}

impl ActionKind {
    /// Why this kind's parameters cannot be right, before any connector sees them: an
    /// `enforce` whose setting is not a snake_case name, or whose value is empty, longer than
    /// 2,048 characters or holds a control character.
    pub fn invalid(&self) -> Option<String> {
        let Self::Enforce { setting, value } = self else { return None };
        let name_ok = !setting.is_empty()
            && setting.len() <= 64
            && setting.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Some(format!(
                "`{}` is not a setting name (lowercase letters, digits and `_`)",
                setting.escape_debug()
            ));
        }
        if value.is_empty() || value.chars().count() > 2_048 || value.chars().any(char::is_control) {
            return Some(format!(
                "the value of `{setting}` must be 1 to 2,048 characters without control characters; `default` takes the connector's"
            ));
        }
        None
    }

    /// The kind's name without parameters, as used in settings, limits and capabilities.
    pub fn name(&self) -> KindName {
        match self {
            Self::Revoke => KindName::Revoke,
            Self::Reduce { .. } => KindName::Reduce,
            Self::Suspend => KindName::Suspend,
            Self::RevokeSessions => KindName::RevokeSessions,
            Self::ForcePasswordReset => KindName::ForcePasswordReset,
            Self::Notify => KindName::Notify,
            Self::Enforce { .. } => KindName::Enforce,
            Self::Rotate => KindName::Rotate,
        }
    }
}

impl<'de> Deserialize<'de> for ActionKind {
    /// Like the derived deserialiser, but strict for every variant: serde ignores the unknown
    /// fields of an internally tagged unit variant even under `deny_unknown_fields`, so the
    /// kinds are read as struct variants and mapped back.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
        enum Strict {
            Revoke {},
            Reduce { to: String },
            Suspend {},
            RevokeSessions {},
            ForcePasswordReset {},
            Notify {},
            Enforce { setting: String, value: String },
            Rotate {},
        }
        Ok(match Strict::deserialize(deserializer)? {
            Strict::Revoke {} => Self::Revoke,
            Strict::Reduce { to } => Self::Reduce { to },
            Strict::Suspend {} => Self::Suspend,
            Strict::RevokeSessions {} => Self::RevokeSessions,
            Strict::ForcePasswordReset {} => Self::ForcePasswordReset,
            Strict::Notify {} => Self::Notify,
            Strict::Enforce { setting, value } => Self::Enforce { setting, value },
            Strict::Rotate {} => Self::Rotate,
        })
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reduce { to } => write!(f, "reduce(to={to})"),
            Self::Enforce { setting, value } => write!(f, "enforce({setting}={value})"),
            other => f.write_str(other.name().as_str()),
        }
    }
}

/// The kind of an action without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    /// [`ActionKind::Revoke`].
    Revoke,
    /// [`ActionKind::Reduce`].
    Reduce,
    /// [`ActionKind::Suspend`].
    Suspend,
    /// [`ActionKind::RevokeSessions`].
    RevokeSessions,
    /// [`ActionKind::ForcePasswordReset`].
    ForcePasswordReset,
    /// [`ActionKind::Notify`].
    Notify,
    /// [`ActionKind::Enforce`].
    Enforce,
    /// [`ActionKind::Rotate`].
    Rotate,
}

impl KindName {
    /// Every kind, in a stable order.
    pub const ALL: [KindName; 8] = [
        Self::Revoke,
        Self::Reduce,
        Self::Suspend,
        Self::RevokeSessions,
        Self::ForcePasswordReset,
        Self::Notify,
        Self::Enforce,
        Self::Rotate,
    ];

    /// The snake_case name used in config files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Reduce => "reduce",
            Self::Suspend => "suspend",
            Self::RevokeSessions => "revoke_sessions",
            Self::ForcePasswordReset => "force_password_reset",
            Self::Notify => "notify",
            Self::Enforce => "enforce",
            Self::Rotate => "rotate",
        }
    }
}

impl fmt::Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action acts on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The identity (user, service account, role, key owner) in the provider's own identifier.
    pub identity: String,
    /// The resource the grant is on (group, repository, application, table), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The grant itself (membership id, role name, permission), when it differs from `resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The grant type in the connector's vocabulary (`group_membership`, `account`, `session`, ...).
    pub grant_type: String,
}

impl Action {
    /// The identity as limits and de-duplication count it: the canonical id when the provider
    /// resolved one, else the caller's spelling.
    pub fn limit_identity(&self) -> &str {
        self.canonical.as_ref().map_or(self.target.identity.as_str(), |c| c.identity.as_str())
    }

    /// The resource as limits count it: the canonical id when the provider resolved one, else
    /// the caller's spelling.
    pub fn limit_resource(&self) -> Option<&str> {
        match &self.canonical {
            Some(CanonicalTarget { resource: Some(r), .. }) => Some(r.as_str()),
            _ => self.target.resource.as_deref(),
        }
    }

    /// Whether this action acts on the same grant as `target` would, where `canonical` is the
    /// provider's id of `target` when it was resolved: the same spelling, or the same canonical
    /// identity with the same grant type and grant, and the same resource (by canonical id when
    /// both have one, else as spelled).
    pub fn same_target(&self, target: &Target, canonical: Option<&CanonicalTarget>) -> bool {
        if &self.target == target {
            return true;
        }
        let (Some(mine), Some(theirs)) = (&self.canonical, canonical) else {
            return false;
        };
        let resource = match (&mine.resource, &theirs.resource) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.target.resource == target.resource,
            _ => false,
        };
        mine.identity == theirs.identity
            && resource
            && self.target.grant_type == target.grant_type
            && self.target.grant == target.grant
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.grant_type, self.identity)?;
        if let Some(r) = &self.resource {
            write!(f, "@{r}")?;
        }
        if let Some(g) = &self.grant {
            write!(f, "#{g}")?;
        }
        Ok(())
    }
}

/// How much human involvement an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Guidance only; the action never executes.
    Advisory,
    /// Executes after approval.
    Manual,
    /// Approved by the system when every gate passes.
    Auto,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Advisory => "advisory",
            Self::Manual => "manual",
            Self::Auto => "auto",
        })
    }
}

/// A request to change one thing in one provider, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Action {
    /// UUIDv7 identifier.
    pub id: ActionId,
    /// What the action does.
    pub kind: ActionKind,
    /// What it does it to.
    pub target: Target,
    /// Identifier of the connector that carries it out.
    pub connector: String,
    /// The control this action remediates, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_id: Option<String>,
    /// The finding that led to this action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
    /// The provider's canonical id of the target, recorded from the plan's before-state when
    /// the action was suggested; limits and de-duplication key on it when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<CanonicalTarget>,
    /// Who asked for it.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// The mode resolved at suggestion time.
    pub mode: Mode,
    /// Key the connector uses so that a retried execution applies the change once.
    pub idempotency_key: String,
    /// Current lifecycle state.
    pub state: State,
    /// When the action was suggested.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// When the state last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
    /// The installation's short number for the action (shown as `#1234`), given by the store
    /// when it stores the action and never reused; `None` until then. Accepted wherever an id
    /// is, because UUIDv7 ids made minutes apart share their first characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// The campaign (a named import of many findings) that created the action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

/// The caller's description of a new action, before the engine has checked anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Connector identifier.
    pub connector: String,
    /// What to do.
    pub kind: ActionKind,
    /// What to do it to.
    pub target: Target,
    /// Why (shown to approvers and kept in the audit).
    pub reason: String,
    /// Control being remediated.
    #[serde(default)]
    pub control_id: Option<String>,
    /// Finding being remediated.
    #[serde(default)]
    pub finding_id: Option<String>,
    /// Run every check and produce the plan, but write nothing to the provider.
    #[serde(default)]
    pub dry_run: bool,
    /// The campaign entry this action is for (set by a campaign's import, never by callers
    /// of the API): the action gets [`ActionId::for_campaign_entry`] and the campaign's name.
    #[serde(default, skip)]
    #[schemars(skip)]
    pub campaign: Option<CampaignEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_digits_with_an_optional_hash() {
        assert_eq!(parse_handle("#1234"), Some(1234));
        assert_eq!(parse_handle("7"), Some(7));
        for not in [
            "",
            "#",
            "0",
            "#0",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1a",
            "##1",
            "12345678901234567890",
            "0196f1c2-0000-7000-8000-000000000000",
        ] {
            assert_eq!(parse_handle(not), None, "{not:?}");
        }
    }

    #[test]
    fn a_campaign_entry_id_is_one_uuidv7_per_entry() {
        let at = time::macros::datetime!(2026-12-07 08:00 UTC);
        let entry = |campaign: &str, index| CampaignEntry { campaign: campaign.to_owned(), index, created_at: at };
        let a = ActionId::for_campaign_entry(&entry("q4", 7));
        assert_eq!(a, ActionId::for_campaign_entry(&entry("q4", 7)), "derived, not drawn");
        assert_ne!(a, ActionId::for_campaign_entry(&entry("q4", 8)));
        assert_ne!(a, ActionId::for_campaign_entry(&entry("q5", 7)));
        assert_ne!(ActionId::for_campaign_entry(&entry("q4", 17)), ActionId::for_campaign_entry(&entry("q41", 7)));
        assert_eq!(a.0.get_version_num(), 7);
        assert_eq!(a.0.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.0.get_timestamp(), ActionId::new_at(at).0.get_timestamp());
    }

    #[test]
    fn a_follow_up_id_is_one_uuidv7_per_action_beside_it_in_time() {
        let at = time::macros::datetime!(2026-12-07 08:00 UTC);
        let a = ActionId::new_at(at);
        let b = ActionId::new_at(at);
        let f = a.follow_up();
        assert_eq!(f, a.follow_up(), "derived, not drawn");
        assert_ne!(f, b.follow_up());
        assert_ne!(f, a);
        assert_eq!(f.0.get_version_num(), 7);
        assert_eq!(f.0.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(f.0.get_timestamp(), a.0.get_timestamp(), "sorts with the action it follows");
        assert_ne!(f.follow_up(), f);
    }

    #[test]
    fn kinds_refuse_unknown_fields_and_read_back_what_they_write() {
        let all = [
            ActionKind::Revoke,
            ActionKind::Reduce { to: "read".into() },
            ActionKind::Suspend,
            ActionKind::RevokeSessions,
            ActionKind::ForcePasswordReset,
            ActionKind::Notify,
            ActionKind::Enforce { setting: "s3_public_access_block".into(), value: "all".into() },
            ActionKind::Rotate,
        ];
        assert_eq!(all.len(), KindName::ALL.len(), "every kind is checked");
        for kind in all {
            let mut value = serde_json::to_value(&kind).expect("a kind serialises");
            assert_eq!(serde_json::from_value::<ActionKind>(value.clone()).ok(), Some(kind.clone()));
            value["extra"] = serde_json::json!(1);
            let e = serde_json::from_value::<ActionKind>(value).expect_err("an unknown field is refused").to_string();
            assert!(e.contains("unknown field `extra`"), "{kind}: {e}");
        }
        let e = serde_json::from_value::<ActionKind>(serde_json::json!({"type": "revoke", "to": "read"}));
        assert!(e.is_err(), "a revoke with a level is not a revoke");
        assert!(serde_json::from_value::<ActionKind>(serde_json::json!({"type": "reduce"})).is_err());
        assert!(
            serde_json::from_value::<ActionKind>(serde_json::json!({"type": "enforce", "setting": "x"})).is_err(),
            "an enforce names its value"
        );
        let kind = ActionKind::Enforce { setting: "rds_backup_retention_days".into(), value: "7".into() };
        assert_eq!(kind.to_string(), "enforce(rds_backup_retention_days=7)");
        assert_eq!(kind.name().as_str(), "enforce");
        assert_eq!(kind.invalid(), None);
        for (setting, value) in [("", "x"), ("S3", "x"), ("a/b", "x"), ("a", ""), ("a", "x\ny")] {
            let kind = ActionKind::Enforce { setting: setting.into(), value: value.into() };
            assert!(kind.invalid().is_some(), "{setting:?}={value:?} is refused");
        }
        assert_eq!(ActionKind::Revoke.invalid(), None);
    }

    fn target(identity: &str, resource: Option<&str>) -> Target {
        Target {
            identity: identity.to_owned(),
            resource: resource.map(str::to_owned),
            grant: None,
            grant_type: "group_membership".to_owned(),
        }
    }

    fn action(t: Target, canonical: Option<CanonicalTarget>) -> Action {
        let at = OffsetDateTime::UNIX_EPOCH;
        Action {
            id: ActionId::new_at(at),
            kind: ActionKind::Revoke,
            target: t,
            connector: "c".to_owned(),
            control_id: None,
            finding_id: None,
            canonical,
            requested_by: "r".to_owned(),
            reason: "r".to_owned(),
            mode: Mode::Manual,
            idempotency_key: "k".to_owned(),
            state: State::PendingApproval,
            created_at: at,
            updated_at: at,
            handle: None,
            campaign: None,
        }
    }

    #[track_caller]
    fn check(
        mine: (&str, Option<&str>, Option<CanonicalTarget>),
        theirs: (&str, Option<&str>, Option<CanonicalTarget>),
        same: bool,
    ) {
        let a = action(target(mine.0, mine.1), mine.2);
        assert_eq!(a.same_target(&target(theirs.0, theirs.1), theirs.2.as_ref()), same);
    }

    #[test]
    fn targets_compare_by_canonical_id_when_both_have_one() {
        let id = |i: &str| Some(CanonicalTarget::identity(i));
        let with = |i: &str, r: &str| Some(CanonicalTarget::with_resource(i, r));
        // The same spelling needs no id.
        check(("alice", Some("admins"), None), ("alice", Some("admins"), None), true);
        // Another name of the same user in the same group.
        check(("alice", Some("admins"), id("u1")), ("alice@x", Some("admins"), id("u1")), true);
        // Without a canonical resource the resources must be spelled alike: another group is
        // another grant even for the same user.
        check(("alice", Some("admins"), id("u1")), ("alice@x", Some("ops"), id("u1")), false);
        check(("alice", Some("admins"), with("u1", "g1")), ("alice@x", Some("Admins"), with("u1", "g1")), true);
        check(("alice", Some("admins"), with("u1", "g1")), ("alice", Some("ops"), with("u1", "g2")), false);
        // Another user, or an unresolved name, is another target.
        check(("alice", Some("admins"), id("u1")), ("bob", Some("admins"), id("u2")), false);
        check(("alice", Some("admins"), id("u1")), ("alice@x", Some("admins"), None), false);
    }
}
