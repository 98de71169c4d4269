//! The LDAP connector: group membership revocation and account suspension, for OpenLDAP
//! (ppolicy) and Active Directory.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{Mod, ldap_escape};
use remediation_core::{
    Action, ActionKind, CanonicalTarget, Capability, Connector, ConnectorError, ConnectorErrorKind, Health, KindName,
    Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange, Reversibility, Snapshot, Target, Verification,
};
use remediation_tls::rustls::ClientConfig;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{Dialect, LdapConfig};
use crate::dn::NormalDn;
use crate::error::{LdapConnectorError, from_result};
use crate::session::{Session, one};

/// The value OpenLDAP's ppolicy reads as "locked until an administrator unlocks".
pub const LOCKED_FOREVER: &str = "000001010000Z";

const READ: &str = "read and search under base_dn";
const WRITE_MEMBERS: &str = "write the group's member attribute (member, uniqueMember or memberUid)";
const WRITE_DISABLE: &str = "write userAccountControl (Active Directory) or pwdAccountLockedTime (OpenLDAP ppolicy)";

/// Every LDAP operation the connector performs and the access right (an ACL in OpenLDAP, a
/// permission in Active Directory) the bind DN needs for it.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("search base_dn (scope base)", READ),
    PermissionNeed::read(grant_type::GROUP_MEMBERSHIP, "search the user and the group", READ),
    PermissionNeed::execute(
        KindName::Revoke,
        grant_type::GROUP_MEMBERSHIP,
        "modify {group}: delete member",
        WRITE_MEMBERS,
    ),
    PermissionNeed::rollback(
        KindName::Revoke,
        grant_type::GROUP_MEMBERSHIP,
        "modify {group}: add member",
        WRITE_MEMBERS,
    ),
    PermissionNeed::read(grant_type::ACCOUNT, "search the user", READ),
    PermissionNeed::execute(
        KindName::Suspend,
        grant_type::ACCOUNT,
        "modify {user}: replace the disable attribute",
        WRITE_DISABLE,
    ),
    PermissionNeed::rollback(
        KindName::Suspend,
        grant_type::ACCOUNT,
        "modify {user}: restore the disable attribute",
        WRITE_DISABLE,
    ),
];

/// The ACCOUNTDISABLE bit of Active Directory's `userAccountControl`.
pub const ACCOUNTDISABLE: i64 = 0x2;

/// The grant types this connector understands, as written in [`Target::grant_type`].
pub mod grant_type {
    /// Membership of a group: identity = user DN, resource = group DN.
    pub const GROUP_MEMBERSHIP: &str = "group_membership";
    /// The account itself: identity = user DN.
    pub const ACCOUNT: &str = "account";
}

/// How many times a transient failure (busy, unavailable, connection lost) is tried in all.
const ATTEMPTS: u32 = 3;

/// Runs `$op` up to [`ATTEMPTS`] times while it fails transiently, waiting a little longer each time.
macro_rules! retrying {
    ($self:ident, $op:expr) => {{
        let mut attempt = 1;
        loop {
            match $op.await {
                Err(e) if e.kind == ConnectorErrorKind::Transient && attempt < ATTEMPTS => {
                    tracing::debug!(connector = %$self.config.id, attempt, error = %e, "transient LDAP failure, retrying");
                    tokio::time::sleep($self.backoff * attempt).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}

/// A connector for one LDAP directory.
///
/// Each call opens its own connection and binds; nothing is cached between calls, so a
/// changed password or a restarted server needs no special handling.
#[derive(Debug)]
pub struct LdapConnector {
    config: LdapConfig,
    password: SecretString,
    base: NormalDn,
    protected_dns: Vec<NormalDn>,
    protected_groups: Vec<NormalDn>,
    backoff: Duration,
    /// The TLS client for `ldaps://` and StartTLS, built once so a bad CA file fails at start.
    tls: Option<Arc<ClientConfig>>,
}

/// The group attribute that lists members, detected from the group's object classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum MemberAttribute {
    /// `groupOfNames` (and Active Directory's `group`): values are member DNs.
    #[serde(rename = "member")]
    Member,
    /// `groupOfUniqueNames`: values are member DNs.
    #[serde(rename = "uniqueMember")]
    UniqueMember,
    /// `posixGroup`: values are the members' `uid`.
    #[serde(rename = "memberUid")]
    MemberUid,
}

impl MemberAttribute {
    fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::UniqueMember => "uniqueMember",
            Self::MemberUid => "memberUid",
        }
    }
}

/// Snapshot state of a `group_membership` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Membership {
    user: String,
    group: String,
    attribute: MemberAttribute,
    /// The value that names the user in `attribute`: its DN, or its `uid` for `memberUid`.
    value: String,
    member: bool,
}

/// Snapshot state of an `account` target on OpenLDAP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenLdapAccount {
    user: String,
    #[serde(rename = "pwdAccountLockedTime")]
    locked_time: Option<String>,
}

/// Snapshot state of an `account` target on Active Directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdAccount {
    user: String,
    #[serde(rename = "userAccountControl")]
    uac: i64,
}

/// What a supported action acts on.
enum Grant<'a> {
    Membership { user: &'a str, group: &'a str },
    Account { user: &'a str },
}

impl LdapConnector {
    /// Builds the connector, reading the bind password from where `config` says.
    pub fn from_config(config: LdapConfig) -> Result<Self, LdapConnectorError> {
        let password = config.bind_password()?;
        Self::with_password(config, password)
    }

    /// Builds the connector with a password the caller already holds (an embedder's vault).
    pub fn with_password(config: LdapConfig, password: SecretString) -> Result<Self, LdapConnectorError> {
        config.validate()?;
        let parse = |dn: &str, what: &str| {
            NormalDn::parse(dn).ok_or_else(|| LdapConnectorError::Invalid {
                connector: config.id.clone(),
                reason: format!("{what} {dn:?} is not a DN"),
            })
        };
        let base = parse(&config.base_dn, "base_dn")?;
        let protected_dns = config.protected_dns.iter().map(|d| parse(d, "protected DN")).collect::<Result<_, _>>()?;
        let protected_groups =
            config.protected_groups.iter().map(|d| parse(d, "protected group")).collect::<Result<_, _>>()?;
        let tls = config
            .uses_tls()
            .then(|| remediation_tls::client_config(config.ca_file.as_deref()))
            .transpose()
            .map_err(|source| LdapConnectorError::Tls { connector: config.id.clone(), source })?;
        Ok(Self { password, base, protected_dns, protected_groups, backoff: Duration::from_millis(200), tls, config })
    }

    /// The configuration the connector was built from.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    async fn session(&self) -> Result<Session, ConnectorError> {
        let page_size = i32::try_from(self.config.page_size).unwrap_or(i32::MAX);
        Session::open(
            &self.config.url,
            self.tls.as_ref(),
            self.config.starttls,
            &self.config.bind_dn,
            &self.password,
            Duration::from_secs(self.config.timeout_secs),
            page_size,
        )
        .await
    }

    /// The grant an action acts on, or `Unsupported` before any request.
    fn grant<'a>(&self, kind: Option<&ActionKind>, target: &'a Target) -> Result<Grant<'a>, ConnectorError> {
        let supported = matches!(
            (kind.map(ActionKind::name), target.grant_type.as_str()),
            (None | Some(KindName::Revoke), grant_type::GROUP_MEMBERSHIP)
                | (None | Some(KindName::Suspend), grant_type::ACCOUNT)
        );
        if !supported {
            let what = kind.map(|k| k.name().to_string()).unwrap_or_else(|| "a snapshot".to_owned());
            return Err(ConnectorError::unsupported(format!(
                "LDAP connector {} does not support {what} on grant type {:?}",
                self.config.id, target.grant_type
            )));
        }
        self.check_scope(&target.identity, "identity")?;
        if target.grant_type == grant_type::GROUP_MEMBERSHIP {
            let Some(group) = target.resource.as_deref() else {
                return Err(ConnectorError::permanent(
                    "a group_membership target needs resource = the group's DN".to_owned(),
                ));
            };
            self.check_scope(group, "resource")?;
            Ok(Grant::Membership { user: &target.identity, group })
        } else {
            Ok(Grant::Account { user: &target.identity })
        }
    }

    /// Refuses DNs that do not parse or lie outside `base_dn`.
    fn check_scope(&self, dn: &str, what: &str) -> Result<NormalDn, ConnectorError> {
        let parsed = NormalDn::parse(dn).ok_or_else(|| {
            ConnectorError::invalid_target(format!("target {what} {dn:?} is not a distinguished name"))
        })?;
        if !parsed.is_within(&self.base) {
            return Err(ConnectorError::invalid_target(format!(
                "target {what} {dn} is outside the connector's base DN {}",
                self.config.base_dn
            )));
        }
        Ok(parsed)
    }

    /// The entry's DN as the server returns it, normalised: the target's canonical id. A
    /// target may spell a DN any way the server accepts (`userid=` for `uid=`, an OID, other
    /// case or spacing); the server answers with the DN it stores.
    async fn canonical_dn(&self, session: &mut Session, dn: &str) -> Result<(String, NormalDn), ConnectorError> {
        let entry = session.read(dn, &["1.1"]).await?;
        let normal = NormalDn::parse(&entry.dn).ok_or_else(|| {
            ConnectorError::permanent(format!(
                "the server answered a read of {dn} with {:?}, which is not a DN",
                entry.dn
            ))
        })?;
        Ok((entry.dn, normal))
    }

    /// Whether the user (or the group) is protected, by name or by membership of a protected
    /// group. `user` and `group` are the DNs the server returned, so every spelling of a
    /// protected entry is caught.
    async fn is_protected(
        &self,
        session: &mut Session,
        user: &(String, NormalDn),
        uid: Option<&str>,
        group: Option<&NormalDn>,
    ) -> Result<bool, ConnectorError> {
        if self.protected_dns.contains(&user.1) || group.is_some_and(|g| self.protected_dns.contains(g)) {
            return Ok(true);
        }
        if group.is_some_and(|g| self.protected_groups.contains(g)) {
            return Ok(true);
        }
        if self.protected_groups.is_empty() {
            return Ok(false);
        }
        let groups = self.groups_of(session, &user.0, uid).await?;
        Ok(groups.iter().filter_map(|g| NormalDn::parse(g)).any(|g| self.protected_groups.contains(&g)))
    }

    /// Every group under `base_dn` that lists the user, by DN or by `uid`, read in pages.
    async fn groups_of(
        &self,
        session: &mut Session,
        user: &str,
        uid: Option<&str>,
    ) -> Result<Vec<String>, ConnectorError> {
        let dn = ldap_escape(user);
        let mut filter = format!("(|(member={dn})(uniqueMember={dn})");
        if let Some(uid) = uid {
            filter.push_str(&format!("(memberUid={})", ldap_escape(uid)));
        }
        filter.push(')');
        session.search_dns(&self.config.base_dn, &filter).await
    }

    /// Which attribute of `group` lists members, and the value that names `user` in it.
    /// Returns the user's `uid` too, which protection checks need.
    async fn member_value(
        &self,
        session: &mut Session,
        user: &str,
        group: &str,
    ) -> Result<(MemberAttribute, String, Option<String>), ConnectorError> {
        let entry = session.read(user, &["uid"]).await?;
        let uid = entry.attrs.get("uid").and_then(|v| v.first()).cloned();
        let group_entry = session.read(group, &["objectClass"]).await?;
        let classes: Vec<String> = group_entry
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("objectClass"))
            .flat_map(|(_, v)| v.iter().map(|c| c.to_ascii_lowercase()))
            .collect();
        let has = |c: &str| classes.iter().any(|x| x == c);
        let attribute = if has("groupofnames") || has("group") {
            MemberAttribute::Member
        } else if has("groupofuniquenames") {
            MemberAttribute::UniqueMember
        } else if has("posixgroup") {
            MemberAttribute::MemberUid
        } else {
            return Err(ConnectorError::permanent(format!(
                "{group} is not a group this connector understands: its object classes are {}; expected \
                 groupOfNames, groupOfUniqueNames, posixGroup or group",
                classes.join(", ")
            )));
        };
        let value = match attribute {
            MemberAttribute::MemberUid => uid.clone().ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "{group} is a posixGroup, which lists members by uid, but {user} has no uid attribute"
                ))
            })?,
            _ => user.to_owned(),
        };
        Ok((attribute, value, uid))
    }

    /// Reads a membership's live state, and the user's `uid`.
    async fn membership(
        &self,
        session: &mut Session,
        user: &str,
        group: &str,
    ) -> Result<(Membership, Option<String>), ConnectorError> {
        let (attribute, value, uid) = self.member_value(session, user, group).await?;
        let filter = format!("({}={})", attribute.name(), ldap_escape(value.as_str()));
        let member = session.matches(group, &filter).await?;
        Ok((Membership { user: user.to_owned(), group: group.to_owned(), attribute, value, member }, uid))
    }

    async fn openldap_account(&self, session: &mut Session, user: &str) -> Result<OpenLdapAccount, ConnectorError> {
        let entry = session.read(user, &["pwdAccountLockedTime"]).await?;
        let locked_time = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("pwdAccountLockedTime"))
            .and_then(|(_, v)| v.first().cloned());
        Ok(OpenLdapAccount { user: user.to_owned(), locked_time })
    }

    async fn ad_account(&self, session: &mut Session, user: &str) -> Result<AdAccount, ConnectorError> {
        let entry = session.read(user, &["userAccountControl"]).await?;
        let raw = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("userAccountControl"))
            .and_then(|(_, v)| v.first().cloned())
            .ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "{user} has no userAccountControl attribute (or it is not readable): is the dialect \
                     active_directory right for this server?"
                ))
            })?;
        let uac = raw
            .trim()
            .parse::<i64>()
            .map_err(|_| ConnectorError::permanent(format!("{user} has a userAccountControl that is not a number")))?;
        Ok(AdAccount { user: user.to_owned(), uac })
    }

    /// Binds and reads `base_dn`: what health and permission checks rest on.
    async fn probe(&self) -> Result<(), ConnectorError> {
        let mut session = self.session().await?;
        let read = session.read(&self.config.base_dn, &["1.1"]).await;
        session.close().await;
        read.map(|_| ())
    }

    async fn snapshot_once(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let grant = self.grant(None, target)?;
        let mut session = self.session().await?;
        let result = async {
            match grant {
                Grant::Membership { user, group } => {
                    let (state, uid) = self.membership(&mut session, user, group).await?;
                    let user_dn = self.canonical_dn(&mut session, user).await?;
                    let (_, group_dn) = self.canonical_dn(&mut session, group).await?;
                    let protected = self.is_protected(&mut session, &user_dn, uid.as_deref(), Some(&group_dn)).await?;
                    let canonical = CanonicalTarget::with_resource(user_dn.1.to_string(), group_dn.to_string());
                    Ok(Snapshot { protected, canonical: Some(canonical), state: to_value(&state)? })
                }
                Grant::Account { user } => {
                    let state = match self.config.dialect {
                        Dialect::Openldap => to_value(&self.openldap_account(&mut session, user).await?)?,
                        Dialect::ActiveDirectory => to_value(&self.ad_account(&mut session, user).await?)?,
                    };
                    // The uid matters only to find posixGroup memberships of protected groups.
                    let uid = if self.protected_groups.is_empty() {
                        None
                    } else {
                        session.read(user, &["uid"]).await?.attrs.get("uid").and_then(|v| v.first()).cloned()
                    };
                    let user_dn = self.canonical_dn(&mut session, user).await?;
                    let protected = self.is_protected(&mut session, &user_dn, uid.as_deref(), None).await?;
                    let canonical = CanonicalTarget::identity(user_dn.1.to_string());
                    Ok(Snapshot { protected, canonical: Some(canonical), state })
                }
            }
        }
        .await;
        session.close().await;
        result
    }

    async fn execute_once(&self, action: &Action) -> Result<Outcome, ConnectorError> {
        let grant = self.grant(Some(&action.kind), &action.target)?;
        let mut session = self.session().await?;
        let result = match grant {
            Grant::Membership { user, group } => self.remove_member(&mut session, user, group).await,
            Grant::Account { user } => match self.config.dialect {
                Dialect::Openldap => self.lock(&mut session, user).await,
                Dialect::ActiveDirectory => self.disable(&mut session, user).await,
            },
        };
        session.close().await;
        result
    }

    async fn remove_member(&self, session: &mut Session, user: &str, group: &str) -> Result<Outcome, ConnectorError> {
        // No membership check first: the server's answer to the delete says whether the value
        // was there (16 when it was not), which also holds when someone else races us.
        let (attribute, value, _) = self.member_value(session, user, group).await?;
        let attr = attribute.name();
        let res = session.modify(group, vec![Mod::Delete(attr, one(&value))]).await?;
        match res.rc {
            0 => Ok(outcome(OutcomeStatus::Applied)),
            // Someone else removed it between our read and our write.
            16 => Ok(outcome(OutcomeStatus::AlreadyInState)),
            65 => Err(ConnectorError::permanent(format!(
                "cannot remove {user} from {group}: it is the group's last {attr}, and the schema requires at \
                 least one (objectClassViolation, LDAP result 65{}); add another member or delete the group instead",
                if res.text.is_empty() { String::new() } else { format!(": {}", res.text) }
            ))),
            _ => Err(from_result(&format!("remove {user} from {group}"), &res)),
        }
    }

    async fn lock(&self, session: &mut Session, user: &str) -> Result<Outcome, ConnectorError> {
        let current = self.openldap_account(session, user).await?;
        if current.locked_time.as_deref() == Some(LOCKED_FOREVER) {
            return Ok(outcome(OutcomeStatus::AlreadyInState));
        }
        let res = session.modify(user, vec![Mod::Replace("pwdAccountLockedTime", one(LOCKED_FOREVER))]).await?;
        match res.rc {
            0 => Ok(outcome(OutcomeStatus::Applied)),
            _ => Err(from_result(&format!("lock {user}"), &res)),
        }
    }

    async fn disable(&self, session: &mut Session, user: &str) -> Result<Outcome, ConnectorError> {
        let current = self.ad_account(session, user).await?;
        if current.uac & ACCOUNTDISABLE != 0 {
            return Ok(outcome(OutcomeStatus::AlreadyInState));
        }
        let new = current.uac | ACCOUNTDISABLE;
        match self.swap_uac(session, user, current.uac, new).await? {
            Swap::Done => Ok(outcome(OutcomeStatus::Applied)),
            Swap::Changed(now) if now & ACCOUNTDISABLE != 0 => Ok(outcome(OutcomeStatus::AlreadyInState)),
            Swap::Changed(now) => Err(conflict(user, now)),
        }
    }

    /// Replaces `userAccountControl` `old` with `new` in one modify (delete the old value, add
    /// the new), so a concurrent change makes the delete fail with 16 instead of being overwritten.
    async fn swap_uac(&self, session: &mut Session, user: &str, old: i64, new: i64) -> Result<Swap, ConnectorError> {
        let (old, new) = (old.to_string(), new.to_string());
        let res = session
            .modify(user, vec![Mod::Delete("userAccountControl", one(&old)), Mod::Add("userAccountControl", one(&new))])
            .await?;
        match res.rc {
            0 => Ok(Swap::Done),
            16 => Ok(Swap::Changed(self.ad_account(session, user).await?.uac)),
            _ => Err(from_result(&format!("set userAccountControl of {user}"), &res)),
        }
    }

    async fn rollback_once(&self, action: &Action, before: &Snapshot) -> Result<Outcome, ConnectorError> {
        let grant = self.grant(Some(&action.kind), &action.target)?;
        let mut session = self.session().await?;
        let result = async {
            match grant {
                Grant::Membership { .. } => {
                    let before: Membership = from_state(before)?;
                    if !before.member {
                        return Ok(outcome(OutcomeStatus::AlreadyInState));
                    }
                    let attr = before.attribute.name();
                    let res = session.modify(&before.group, vec![Mod::Add(attr, one(&before.value))]).await?;
                    match res.rc {
                        0 => Ok(outcome(OutcomeStatus::Applied)),
                        20 => Ok(outcome(OutcomeStatus::AlreadyInState)),
                        _ => Err(from_result(&format!("add {} back to {}", before.user, before.group), &res)),
                    }
                }
                Grant::Account { user } => match self.config.dialect {
                    Dialect::Openldap => {
                        let before: OpenLdapAccount = from_state(before)?;
                        let now = self.openldap_account(&mut session, user).await?;
                        if now.locked_time == before.locked_time {
                            return Ok(outcome(OutcomeStatus::AlreadyInState));
                        }
                        let mods = match &before.locked_time {
                            None => vec![Mod::Delete("pwdAccountLockedTime", Default::default())],
                            Some(v) => vec![Mod::Replace("pwdAccountLockedTime", one(v))],
                        };
                        let res = session.modify(user, mods).await?;
                        match res.rc {
                            0 => Ok(outcome(OutcomeStatus::Applied)),
                            16 if before.locked_time.is_none() => Ok(outcome(OutcomeStatus::AlreadyInState)),
                            _ => Err(from_result(&format!("unlock {user}"), &res)),
                        }
                    }
                    Dialect::ActiveDirectory => {
                        let before: AdAccount = from_state(before)?;
                        let now = self.ad_account(&mut session, user).await?;
                        if now.uac == before.uac {
                            return Ok(outcome(OutcomeStatus::AlreadyInState));
                        }
                        match self.swap_uac(&mut session, user, now.uac, before.uac).await? {
                            Swap::Done => Ok(outcome(OutcomeStatus::Applied)),
                            Swap::Changed(v) if v == before.uac => Ok(outcome(OutcomeStatus::AlreadyInState)),
                            Swap::Changed(v) => Err(conflict(user, v)),
                        }
                    }
                },
            }
        }
        .await;
        session.close().await;
        result
    }
}

/// The result of an optimistic `userAccountControl` swap.
enum Swap {
    Done,
    /// The value was no longer the expected one; this is what it is now.
    Changed(i64),
}

fn conflict(user: &str, now: i64) -> ConnectorError {
    ConnectorError::new(
        ConnectorErrorKind::Conflict,
        format!("userAccountControl of {user} changed while we wrote it (now {now}); re-plan"),
    )
}

fn outcome(status: OutcomeStatus) -> Outcome {
    Outcome { status, request_ids: Vec::new() }
}

fn to_value<T: Serialize>(state: &T) -> Result<serde_json::Value, ConnectorError> {
    serde_json::to_value(state).map_err(|e| ConnectorError::permanent(format!("cannot serialise a snapshot: {e}")))
}

fn from_state<T: for<'de> Deserialize<'de>>(snapshot: &Snapshot) -> Result<T, ConnectorError> {
    serde_json::from_value(snapshot.state.clone()).map_err(|e| {
        ConnectorError::permanent(format!("the snapshot is not one this LDAP connector made for this target: {e}"))
    })
}

/// Every (kind, grant type) the connector supports, in both dialects.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    vec![
        Capability {
            kind: KindName::Revoke,
            grant_type: grant_type::GROUP_MEMBERSHIP.to_owned(),
            reversibility: Reversibility::Reversible,
            observable: true,
        },
        Capability {
            kind: KindName::Suspend,
            grant_type: grant_type::ACCOUNT.to_owned(),
            reversibility: Reversibility::Reversible,
            observable: true,
        },
    ]
}

#[async_trait]
impl Connector for LdapConnector {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        Ok(match retrying!(self, self.probe()) {
            Ok(_) => Health {
                healthy: true,
                detail: format!(
                    "bound to {} as {}; {} is readable",
                    self.config.url, self.config.bind_dn, self.config.base_dn
                ),
            },
            Err(e) => Health { healthy: false, detail: e.to_string() },
        })
    }

    /// LDAP has no portable way to ask for effective write rights, so this proves only that
    /// the credentials bind and can read `base_dn`; a missing write right shows as
    /// `Forbidden` (result 50) when an action executes.
    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// Reading the base entry shows the read right; LDAP offers no portable way to ask what
    /// a bind DN may write, so the write rights are unknown until a write is refused.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        retrying!(self, self.probe())?;
        Ok(Permissions::judge(PERMISSION_MAP, |need| match need.permission {
            READ => remediation_core::Grant::Granted,
            _ => remediation_core::Grant::Unknown,
        })
        .because("LDAP has no portable way to ask what the bind DN may write; a refused write (result 50) shows it"))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        retrying!(self, self.snapshot_once(target))
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        match self.grant(Some(&action.kind), &action.target)? {
            Grant::Membership { user, group } => {
                let state: Membership = from_state(before)?;
                let description = if state.member {
                    format!("remove {user} from {group} (delete {}: {})", state.attribute.name(), state.value)
                } else {
                    format!("no change: {user} is not a member of {group}")
                };
                let after = Membership { member: false, ..state };
                Ok(PlannedChange {
                    expected_after: Snapshot {
                        canonical: before.canonical.clone(),
                        protected: before.protected,
                        state: to_value(&after)?,
                    },
                    description,
                })
            }
            Grant::Account { user } => match self.config.dialect {
                Dialect::Openldap => {
                    let state: OpenLdapAccount = from_state(before)?;
                    let description = if state.locked_time.as_deref() == Some(LOCKED_FOREVER) {
                        format!("no change: {user} is already locked")
                    } else {
                        format!(
                            "lock {user}: set pwdAccountLockedTime to {LOCKED_FOREVER} (locked until an administrator \
                             unlocks; was {})",
                            state.locked_time.as_deref().unwrap_or("unset")
                        )
                    };
                    let after = OpenLdapAccount { locked_time: Some(LOCKED_FOREVER.to_owned()), ..state };
                    Ok(PlannedChange {
                        expected_after: Snapshot {
                            canonical: before.canonical.clone(),
                            protected: before.protected,
                            state: to_value(&after)?,
                        },
                        description,
                    })
                }
                Dialect::ActiveDirectory => {
                    let state: AdAccount = from_state(before)?;
                    let new = state.uac | ACCOUNTDISABLE;
                    let description = if new == state.uac {
                        format!("no change: {user} is already disabled")
                    } else {
                        format!("disable {user}: userAccountControl {} -> {new} (ACCOUNTDISABLE)", state.uac)
                    };
                    let after = AdAccount { uac: new, ..state };
                    Ok(PlannedChange {
                        expected_after: Snapshot {
                            canonical: before.canonical.clone(),
                            protected: before.protected,
                            state: to_value(&after)?,
                        },
                        description,
                    })
                }
            },
        }
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        let outcome = retrying!(self, self.execute_once(action))?;
        tracing::info!(connector = %self.config.id, target = %action.target, kind = %action.kind, status = ?outcome.status, "LDAP write");
        Ok(outcome)
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.grant(Some(&action.kind), &action.target)?;
        let observed = self.snapshot(&action.target).await?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let outcome = retrying!(self, self.rollback_once(action, before))?;
        tracing::info!(connector = %self.config.id, target = %action.target, kind = %action.kind, status = ?outcome.status, "LDAP rollback");
        Ok(outcome)
    }
}
