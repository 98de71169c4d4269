//! Who may do what to principals, tokens and the most dangerous settings, for the CLI and the
//! API alike.
//!
//! - Only admins create and revoke principals and tokens, and change roles.
//! - Some changes need two admins: raising a limit (fewer approvals, a longer break-glass
//!   age), switching the default, a kind or a control to `auto` (or dropping `never_auto`),
//!   turning the kill switch off, and changing who is admin. The first admin's request is
//!   stored as a [`PendingChange`] (audited), visible to everyone, and applied only when a
//!   different admin principal confirms it before it expires. Lowering limits, switching to
//!   manual and turning the kill switch on stay immediate: safety never waits.
//! - A confirmation applies the change only if what it was based on is unchanged (the same
//!   settings, the switch still on, the same role); otherwise the change is marked failed and
//!   nothing is applied.

use remediation_core::{Action, ActionId, Actor, EngineError, Mode, Role, StoreError};
use remediation_gates::PolicySettings;
use remediation_store_sqlite::{ApiToken, PendingChange, PendingStatus, Principal, PrincipalKind, StoreSqliteError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::Runtime;

/// How long a token lives unless its creator says otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::days(90);
/// The longest lifetime a token may be given.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::days(366);

/// Why an access or governance request was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The actor is not an admin.
    #[error("{actor} is a {role}; only an admin may {what}")]
    NotAdmin {
        /// Who asked.
        actor: String,
        /// Their role.
        role: Role,
        /// What they asked for.
        what: String,
    },
    /// The admin who proposed a change tried to confirm it.
    #[error("{actor} proposed change {id}; a different admin must confirm it")]
    SameAdmin {
        /// The admin.
        actor: String,
        /// The change.
        id: String,
    },
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (a name taken, a change closed or based
    /// on settings that changed meanwhile).
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is invalid.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A control override was set to `auto` without the record that earns it and without an
    /// admin's `promotion_override_reason`.
    #[error(
        "control {control} has not earned auto: {record} (it needs {min_successes} successful manual remediations \
         over at least {min_days} days with none rolled back); an admin may override this with a \
         `promotion_override_reason` on the control (`--override-earned REASON`), which the audit keeps"
    )]
    NotEarned {
        /// The control.
        control: String,
        /// Its record, in plain words (`3 of 10 successful manual remediations; ...`).
        record: String,
        /// Successful manual remediations needed.
        min_successes: u32,
        /// Days the first must lie in the past.
        min_days: u32,
    },
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The engine could not be assembled.
    #[error(transparent)]
    Runtime(#[from] Box<crate::RuntimeError>),
}

/// What a store's refusal means to a caller, whichever store made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// An unknown principal or pending change.
    NotFound,
    /// A name that breaks the naming rule.
    InvalidName,
    /// A pending change that is no longer pending.
    ChangeClosed,
    /// Anything else that conflicts with the stored state (a name taken, a revoked principal,
    /// a role changed meanwhile).
    Conflict,
}

/// The refusal a store attached to `e`, with its text; `None` for a failure of the store
/// itself. Both stores refuse the same requests with the same variants.
fn refusal_of(e: &StoreError) -> Option<(Refusal, String)> {
    if let Some(r) = StoreSqliteError::refusal_of(e) {
        let kind = match r {
            StoreSqliteError::UnknownPrincipal { .. } | StoreSqliteError::UnknownPendingChange { .. } => {
                Refusal::NotFound
            }
            StoreSqliteError::InvalidName { .. } => Refusal::InvalidName,
            StoreSqliteError::PendingChangeClosed { .. } => Refusal::ChangeClosed,
            StoreSqliteError::TokenExists { .. }
            | StoreSqliteError::TokenNameTaken { .. }
            | StoreSqliteError::PrincipalExists { .. }
            | StoreSqliteError::PrincipalRevoked { .. }
            | StoreSqliteError::RoleChanged { .. } => Refusal::Conflict,
            _ => return None,
        };
        return Some((kind, r.to_string()));
    }
    #[cfg(feature = "postgres")]
    if let Some(r) = remediation_store_postgres::StorePostgresError::refusal_of(e) {
        use remediation_store_postgres::StorePostgresError as Pg;
        let kind = match r {
            Pg::UnknownPrincipal { .. } | Pg::UnknownPendingChange { .. } => Refusal::NotFound,
            Pg::InvalidName { .. } => Refusal::InvalidName,
            Pg::PendingChangeClosed { .. } => Refusal::ChangeClosed,
            Pg::TokenExists { .. }
            | Pg::TokenNameTaken { .. }
            | Pg::PrincipalExists { .. }
            | Pg::PrincipalRevoked { .. }
            | Pg::RoleChanged { .. } => Refusal::Conflict,
            _ => return None,
        };
        return Some((kind, r.to_string()));
    }
    None
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        match refusal_of(&e) {
            None => Self::Store(e),
            Some((Refusal::NotFound, text)) => Self::NotFound(text),
            Some((Refusal::InvalidName, text)) => Self::Invalid { field: "name", message: text },
            Some((Refusal::ChangeClosed | Refusal::Conflict, text)) => Self::Conflict(text),
        }
    }
}

impl From<crate::RuntimeError> for AccessError {
    fn from(e: crate::RuntimeError) -> Self {
        Self::Runtime(Box::new(e))
    }
}

/// Either done at once, or waiting for a second admin.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// Applied.
    Applied(T),
    /// Stored for a second admin's confirmation; nothing changed yet.
    Pending(Box<PendingChange>),
}

/// What a pending change does once confirmed (the `change` of a [`PendingChange`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Proposal {
    /// Replace the policy settings `previous` with `settings`.
    Settings {
        /// The settings the change was based on (`null`: as seeded from the configuration).
        previous: serde_json::Value,
        /// The settings once confirmed.
        settings: serde_json::Value,
        /// What makes it dangerous, in plain words.
        escalations: Vec<String>,
    },
    /// Turn the kill switch off.
    KillSwitchOff,
    /// Turn the installation's kill switch off (kept by the default tenant).
    InstallationKillSwitchOff,
    /// Give `principal` the role `to` (creating it with `kind` when `from` is `None`), or
    /// revoke it when `to` is `None`.
    Role {
        /// The principal.
        principal: String,
        /// Its kind, when it is created.
        kind: Option<PrincipalKind>,
        /// Its role when proposed (`None`: it does not exist yet).
        from: Option<Role>,
        /// Its role once confirmed (`None`: revoked).
        to: Option<Role>,
    },
}

fn require_admin(actor: &Actor, what: &str) -> Result<(), AccessError> {
    if actor.role == Role::Admin {
        Ok(())
    } else {
        Err(AccessError::NotAdmin { actor: actor.name.clone(), role: actor.role, what: what.to_owned() })
    }
}

fn require_reason(reason: &str) -> Result<(), AccessError> {
    if reason.trim().is_empty() {
        Err(AccessError::Invalid { field: "reason", message: "a reason is required; it is kept in the audit".into() })
    } else {
        Ok(())
    }
}

/// Parses a token lifetime: `90d`, `12h`, `30m` (days, hours, minutes), between one minute
/// and [`MAX_TOKEN_LIFETIME`].
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| format!("`{s}` is not a lifetime such as 90d, 12h or 30m"))?;
    let lifetime = match unit {
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        _ => return Err(format!("`{s}` is not a lifetime such as 90d, 12h or 30m")),
    };
    if lifetime < Duration::minutes(1) || lifetime > MAX_TOKEN_LIFETIME {
        return Err(format!("a token lives between 1 minute and {} days", MAX_TOKEN_LIFETIME.whole_days()));
    }
    Ok(lifetime)
}

/// The changes from `old` to `new` that need a second admin, in plain words; empty when the
/// change may apply at once. Loosening is dangerous; tightening never is.
pub fn escalations(old: &PolicySettings, new: &PolicySettings) -> Vec<String> {
    let mut found = Vec::new();
    let to_auto = |was: Option<Mode>, now: Option<Mode>| now == Some(Mode::Auto) && was != Some(Mode::Auto);
    if to_auto(Some(old.default_mode), Some(new.default_mode)) {
        found.push("default_mode switched to auto".to_owned());
    }
    if new.emergency_kinds != old.emergency_kinds {
        let names = |k: &[remediation_core::KindName]| k.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
        found.push(format!(
            "emergency_kinds changed from [{}] to [{}]",
            names(&old.emergency_kinds),
            names(&new.emergency_kinds)
        ));
    }
    if new.min_approvals < old.min_approvals {
        found.push(format!("min_approvals lowered from {} to {}", old.min_approvals, new.min_approvals));
    }
    if new.emergency_access_max_age_days > old.emergency_access_max_age_days {
        found.push(format!(
            "emergency_access_max_age_days raised from {} to {}",
            old.emergency_access_max_age_days, new.emergency_access_max_age_days
        ));
    }
    let (op, np) = (old.auto_promotion, new.auto_promotion);
    if np.min_successes < op.min_successes || np.min_days < op.min_days {
        found.push(format!(
            "auto_promotion lowered from {} successes over {} days to {} over {}",
            op.min_successes, op.min_days, np.min_successes, np.min_days
        ));
    }
    let (od, nd) = (old.auto_demotion, new.auto_demotion);
    if nd.max_rate_percent > od.max_rate_percent || nd.window > od.window {
        found.push(format!(
            "auto_demotion loosened from {}% of {} auto actions to {}% of {}",
            od.max_rate_percent, od.window, nd.max_rate_percent, nd.window
        ));
    }
    // Per kind, the effective values: an override removed falls back to the default, which
    // may be looser than the override was.
    let kinds: std::collections::BTreeSet<_> = old.kinds.keys().chain(new.kinds.keys()).collect();
    for kind in kinds {
        let (was, now) = (old.kinds.get(kind), new.kinds.get(kind));
        let mode_of = |k: Option<&remediation_gates::KindSettings>, s: &PolicySettings| {
            k.and_then(|k| k.mode).unwrap_or(s.default_mode)
        };
        if to_auto(Some(mode_of(was, old)), Some(mode_of(now, new))) && now.and_then(|k| k.mode).is_some() {
            found.push(format!("kind {kind} switched to auto"));
        }
        let before = was.and_then(|w| w.min_approvals).unwrap_or(old.min_approvals);
        let after = now.and_then(|k| k.min_approvals).unwrap_or(new.min_approvals);
        if after < before
            && (was.and_then(|w| w.min_approvals).is_some() || now.and_then(|k| k.min_approvals).is_some())
        {
            found.push(format!("kind {kind} min_approvals lowered from {before} to {after}"));
        }
        if was.and_then(|w| w.mode).is_some_and(|m| m != Mode::Auto)
            && now.and_then(|k| k.mode).is_none()
            && new.default_mode == Mode::Auto
        {
            found.push(format!("kind {kind} falls back to the default mode auto"));
        }
    }
    let controls: std::collections::BTreeSet<_> = old.controls.keys().chain(new.controls.keys()).collect();
    for id in controls {
        let (was, now) = (old.controls.get(id), new.controls.get(id));
        if to_auto(was.and_then(|w| w.mode), now.and_then(|c| c.mode)) {
            found.push(format!("control {id} switched to auto"));
        } else if let (Some(w), Some(n)) = (was, now)
            && n.mode == Some(Mode::Auto)
            && crate::earned::widens(w, n)
        {
            found.push(format!("control {id} in auto widened its scope"));
        }
        if was.is_some_and(|w| w.never_auto) && !now.is_some_and(|c| c.never_auto) {
            found.push(format!("control {id} no longer never_auto"));
        }
    }
    found
}

impl Runtime {
    fn now(&self) -> OffsetDateTime {
        self.clock().now()
    }

    async fn propose(
        &self,
        actor: &Actor,
        proposal: &Proposal,
        summary: String,
        reason: &str,
    ) -> Result<PendingChange, AccessError> {
        let now = self.now();
        let change = PendingChange {
            id: ActionId::new_at(now).to_string(),
            status: PendingStatus::Pending,
            summary,
            change: serde_json::to_value(proposal)
                .map_err(|e| AccessError::Invalid { field: "change", message: e.to_string() })?,
            reason: reason.to_owned(),
            proposed_by: actor.name.clone(),
            proposed_credential: actor.credential.clone(),
            proposed_at: now,
            expires_at: now + self.confirmation_window(),
            decided_by: None,
            decided_credential: None,
            decided_at: None,
            note: None,
        };
        self.store().propose_change(&change, actor).await?;
        Ok(change)
    }

    /// Every principal (admin).
    pub async fn principals(&self, actor: &Actor) -> Result<Vec<Principal>, AccessError> {
        require_admin(actor, "list principals")?;
        Ok(self.store().list_principals().await?)
    }

    /// Creates principal `name` holding `role` (admin). An admin principal is a change of who
    /// is admin: it waits for a second admin.
    pub async fn create_principal(
        &self,
        actor: &Actor,
        name: &str,
        kind: PrincipalKind,
        role: Role,
        reason: &str,
    ) -> Result<Outcome<Principal>, AccessError> {
        require_admin(actor, "create principals")?;
        remediation_store_sqlite::check_name(name)
            .map_err(|e| AccessError::Invalid { field: "name", message: e.to_string() })?;
        if role == Role::System {
            return Err(AccessError::Invalid { field: "role", message: "the system role is never granted".into() });
        }
        if self.store().principal(name).await?.is_some() {
            return Err(AccessError::Conflict(format!("a principal named `{name}` exists")));
        }
        if role == Role::Admin {
            require_reason(reason)?;
            let proposal = Proposal::Role { principal: name.to_owned(), kind: Some(kind), from: None, to: Some(role) };
            let summary = format!("create principal `{name}` ({kind}) as admin");
            return Ok(Outcome::Pending(Box::new(self.propose(actor, &proposal, summary, reason).await?)));
        }
        Ok(Outcome::Applied(self.store().create_principal(name, kind, role, actor, self.now()).await?))
    }

    /// Changes the role of principal `name` (admin). Making someone admin, or an admin
    /// something else, waits for a second admin.
    pub async fn set_role(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        reason: &str,
    ) -> Result<Outcome<Principal>, AccessError> {
        require_admin(actor, "change roles")?;
        require_reason(reason)?;
        if role == Role::System {
            return Err(AccessError::Invalid { field: "role", message: "the system role is never granted".into() });
        }
        let p = self.live_principal(name).await?;
        let from = p.role.ok_or_else(|| AccessError::NotFound(format!("principal `{name}` holds no role here")))?;
        if from == role {
            return Ok(Outcome::Applied(p));
        }
        if from == Role::Admin || role == Role::Admin {
            let proposal = Proposal::Role { principal: name.to_owned(), kind: None, from: Some(from), to: Some(role) };
            let summary = format!("change principal `{name}` from {from} to {role}");
            return Ok(Outcome::Pending(Box::new(self.propose(actor, &proposal, summary, reason).await?)));
        }
        Ok(Outcome::Applied(self.store().set_principal_role(name, from, role, actor, reason, self.now()).await?))
    }

    /// Revokes principal `name` and all its tokens (admin). Revoking an admin waits for a
    /// second admin (revoke its tokens for an immediate stop).
    pub async fn revoke_principal(&self, actor: &Actor, name: &str, reason: &str) -> Result<Outcome<()>, AccessError> {
        require_admin(actor, "revoke principals")?;
        require_reason(reason)?;
        let p = self.live_principal(name).await?;
        if p.role == Some(Role::Admin) {
            let proposal = Proposal::Role { principal: name.to_owned(), kind: None, from: p.role, to: None };
            let summary = format!("revoke admin principal `{name}`");
            return Ok(Outcome::Pending(Box::new(self.propose(actor, &proposal, summary, reason).await?)));
        }
        self.store().revoke_principal(name, actor, reason, self.now()).await?;
        Ok(Outcome::Applied(()))
    }

    async fn live_principal(&self, name: &str) -> Result<Principal, AccessError> {
        match self.store().principal(name).await? {
            Some(p) if p.revoked_at.is_none() => Ok(p),
            Some(_) => Err(AccessError::Conflict(format!("principal `{name}` was revoked"))),
            None => Err(AccessError::NotFound(format!("no principal named `{name}`"))),
        }
    }

    /// Every token, never the secret (admin).
    pub async fn tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>, AccessError> {
        require_admin(actor, "list tokens")?;
        Ok(self.store().list_tokens().await?)
    }

    /// Creates token `name` for principal `principal`, living `lifetime` (admin). Returns the
    /// token, to be shown once; the store keeps only its hash.
    pub async fn create_token(
        &self,
        actor: &Actor,
        principal: &str,
        name: &str,
        lifetime: Duration,
    ) -> Result<(ApiToken, SecretString), AccessError> {
        require_admin(actor, "create tokens")?;
        if lifetime < Duration::minutes(1) || lifetime > MAX_TOKEN_LIFETIME {
            return Err(AccessError::Invalid {
                field: "expires",
                message: format!("a token lives between 1 minute and {} days", MAX_TOKEN_LIFETIME.whole_days()),
            });
        }
        let token = crate::tokens::generate();
        let now = self.now();
        let t = self
            .store()
            .create_token(principal, name, &crate::tokens::hash(&token), now + lifetime, actor, now)
            .await?;
        Ok((t, token))
    }

    /// [`Runtime::create_token`], reaching `tenants` too (an operator's token: in each, the
    /// principal's role there, which it must hold). When the tenants are refused, the token
    /// just made is revoked again and the refusal returned.
    pub async fn create_token_in(
        &self,
        actor: &Actor,
        principal: &str,
        name: &str,
        lifetime: Duration,
        tenants: &[remediation_core::TenantId],
    ) -> Result<(ApiToken, SecretString), AccessError> {
        let (mut token, secret) = self.create_token(actor, principal, name, lifetime).await?;
        if tenants.is_empty() {
            return Ok((token, secret));
        }
        let now = self.now();
        if let Err(e) = self.store().set_token_tenants(name, tenants, actor, now).await {
            self.store().revoke_token(name, actor, now).await?;
            return Err(e.into());
        }
        token.tenants = tenants.iter().filter(|t| *t != self.tenant()).map(ToString::to_string).collect();
        token.tenants.sort();
        token.tenants.dedup();
        Ok((token, secret))
    }

    /// Revokes token `name` (admin); immediate, whoever it belongs to.
    pub async fn revoke_token(&self, actor: &Actor, name: &str) -> Result<(), AccessError> {
        require_admin(actor, "revoke tokens")?;
        if self.store().revoke_token(name, actor, self.now()).await? {
            Ok(())
        } else {
            Err(AccessError::NotFound(format!("no live token named `{name}`")))
        }
    }

    /// Replaces the policy settings with `doc` (admin; validated by the caller). Loosening
    /// changes (see [`escalations`]) wait for a second admin; the rest applies at once.
    pub async fn change_settings(
        &self,
        actor: &Actor,
        doc: serde_json::Value,
        reason: &str,
    ) -> Result<Outcome<()>, AccessError> {
        require_admin(actor, "change settings")?;
        require_reason(reason)?;
        let active = self.active().await?;
        let mut new: PolicySettings = serde_json::from_value(doc.clone())
            .map_err(|e| AccessError::Invalid { field: "settings", message: e.to_string() })?;
        let doc = if self.stamp_promotions(&active.settings, &mut new) {
            serde_json::to_value(&new)
                .map_err(|e| AccessError::Invalid { field: "settings", message: e.to_string() })?
        } else {
            doc
        };
        let promotions = self.check_promotions(&active.settings, &new).await?;
        let mut found = escalations(&active.settings, &new);
        found.extend(promotions);
        if found.is_empty() {
            active.engine.update_settings(actor, doc, reason.to_owned()).await?;
            return Ok(Outcome::Applied(()));
        }
        let previous = active.engine.safety_state().await?.settings.unwrap_or(serde_json::Value::Null);
        let summary = format!("change settings: {}", found.join("; "));
        let proposal = Proposal::Settings { previous, settings: doc, escalations: found };
        Ok(Outcome::Pending(Box::new(self.propose(actor, &proposal, summary, reason).await?)))
    }

    /// Normalises the promotions from `old` to `new`: drops the `promotion_override_reason` of
    /// every control not in `auto` (an old justification must not carry a later promotion) and
    /// stamps `auto_since` on each control switched to `auto`. Returns whether it changed `new`.
    fn stamp_promotions(&self, old: &PolicySettings, new: &mut PolicySettings) -> bool {
        let mut changed = !new.clear_stale_overrides().is_empty();
        let now = self.now();
        for id in crate::earned::promoted(old, new) {
            if let Some(c) = new.controls.get_mut(&id) {
                c.auto_since = Some(now);
                changed = true;
            }
        }
        changed
    }

    /// Checks each control `new` switches to `auto` against its record (read from the store
    /// now, under the stricter of both settings' `auto_promotion`): earned, or overridden by an
    /// admin's `promotion_override_reason`; otherwise [`AccessError::NotEarned`]. Returns one
    /// sentence per promotion, for the change's summary and so the audit.
    pub async fn check_promotions(
        &self,
        old: &PolicySettings,
        new: &PolicySettings,
    ) -> Result<Vec<String>, AccessError> {
        let mut judged = new.clone();
        judged.auto_promotion.min_successes = old.auto_promotion.min_successes.max(new.auto_promotion.min_successes);
        judged.auto_promotion.min_days = old.auto_promotion.min_days.max(new.auto_promotion.min_days);
        let mut notes = Vec::new();
        for id in crate::earned::promoted(old, new) {
            let Some(control) = new.controls.get(&id) else { continue };
            let record =
                crate::earned::control_record(self.store().as_ref(), &id, control, &judged, self.now()).await?;
            match (record.why_not, control.promotion_override_reason.as_deref()) {
                (None, _) => notes.push(format!(
                    "control {id} earned auto: {} successful manual remediations, none rolled back",
                    record.manual_successes
                )),
                (Some(why), Some(reason)) if !reason.trim().is_empty() => notes.push(format!(
                    "control {id} set to auto without the earned record ({why}); admin override: {reason}"
                )),
                (Some(why), _) => {
                    return Err(AccessError::NotEarned {
                        control: id,
                        record: why,
                        min_successes: judged.auto_promotion.min_successes,
                        min_days: judged.auto_promotion.min_days,
                    });
                }
            }
        }
        Ok(notes)
    }

    /// Turns the kill switch on (at once) or off (waits for a second admin while it is on).
    pub async fn set_kill_switch(
        &self,
        actor: &Actor,
        on: bool,
        reason: &str,
    ) -> Result<Outcome<Vec<Action>>, AccessError> {
        require_admin(actor, if on { "turn the kill switch on" } else { "turn the kill switch off" })?;
        require_reason(reason)?;
        let engine = self.active().await?.engine;
        if on || !engine.safety_state().await?.kill_switch {
            return Ok(Outcome::Applied(engine.set_kill_switch(on, actor, reason.to_owned()).await?));
        }
        let change =
            self.propose(actor, &Proposal::KillSwitchOff, "turn the kill switch off".to_owned(), reason).await?;
        Ok(Outcome::Pending(Box::new(change)))
    }

    /// Turns the installation's kill switch on (at once: no execution starts in any tenant, and
    /// every tenant's waiting actions are cancelled) or off (waits for a second admin while it
    /// is on). Only an admin of the default tenant may, on the default tenant's runtime.
    pub async fn set_installation_kill_switch(
        self: &std::sync::Arc<Self>,
        actor: &Actor,
        on: bool,
        reason: &str,
    ) -> Result<Outcome<Vec<Action>>, AccessError> {
        let what =
            if on { "turn the installation's kill switch on" } else { "turn the installation's kill switch off" };
        require_admin(actor, what)?;
        if !self.tenant().is_default() {
            return Err(AccessError::Invalid {
                field: "installation",
                message: format!(
                    "the installation's kill switch is kept by the default tenant, not tenant {}: an admin of the default tenant may {what}",
                    self.tenant()
                ),
            });
        }
        require_reason(reason)?;
        let engine = self.active().await?.engine;
        if on {
            engine.set_installation_kill_switch(true, actor, reason.to_owned()).await?;
            let mut cancelled = Vec::new();
            for runtime in self.tenant_runtimes().await? {
                let engine = runtime.active().await?.engine;
                cancelled.extend(engine.cancel_open_actions(actor, reason).await?);
            }
            return Ok(Outcome::Applied(cancelled));
        }
        if !engine.safety_state().await?.installation_kill_switch {
            engine.set_installation_kill_switch(false, actor, reason.to_owned()).await?;
            return Ok(Outcome::Applied(Vec::new()));
        }
        let change = self
            .propose(
                actor,
                &Proposal::InstallationKillSwitchOff,
                "turn the installation's kill switch off".to_owned(),
                reason,
            )
            .await?;
        Ok(Outcome::Pending(Box::new(change)))
    }

    /// Changes waiting for a second admin (every change with `all`), after expiring overdue ones.
    pub async fn pending_changes(&self, all: bool) -> Result<Vec<PendingChange>, AccessError> {
        self.expire_changes().await?;
        let status = if all { None } else { Some(PendingStatus::Pending) };
        Ok(self.store().pending_changes(status).await?)
    }

    /// Marks every overdue pending change expired (audited as `system`); returns them.
    pub async fn expire_changes(&self) -> Result<Vec<PendingChange>, AccessError> {
        let mut expired = Vec::new();
        for c in self.store().overdue_changes(self.now()).await? {
            match self.store().close_change(&c.id, PendingStatus::Expired, &Actor::system(), None, self.now()).await {
                Ok(c) => expired.push(c),
                // Closed by someone else meanwhile.
                Err(e) if matches!(refusal_of(&e), Some((Refusal::ChangeClosed, _))) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(expired)
    }

    /// Withdraws a pending change (its proposer or any admin).
    pub async fn cancel_change(
        &self,
        actor: &Actor,
        id: &str,
        note: Option<String>,
    ) -> Result<PendingChange, AccessError> {
        require_admin(actor, "cancel pending changes")?;
        self.expire_changes().await?;
        Ok(self.store().close_change(id, PendingStatus::Cancelled, actor, note, self.now()).await?)
    }

    /// Confirms and applies a pending change: an admin principal other than its proposer,
    /// before it expires, and only while what it was based on is unchanged (otherwise it is
    /// marked failed and nothing is applied).
    pub async fn confirm_change(
        &self,
        actor: &Actor,
        id: &str,
        note: Option<String>,
    ) -> Result<PendingChange, AccessError> {
        require_admin(actor, "confirm pending changes")?;
        self.expire_changes().await?;
        let change = self
            .store()
            .pending_change(id)
            .await?
            .ok_or_else(|| AccessError::NotFound(format!("no pending change with id {id}")))?;
        if change.status != PendingStatus::Pending {
            return Err(AccessError::Conflict(format!("change {id} is {}, no longer pending", change.status)));
        }
        if change.proposed_by == actor.name {
            return Err(AccessError::SameAdmin { actor: actor.name.clone(), id: id.to_owned() });
        }
        let proposal: Proposal = serde_json::from_value(change.change.clone())
            .map_err(|e| AccessError::Conflict(format!("change {id} cannot be read by this version: {e}")))?;
        let comment = format!(
            "{} (proposed by {}, confirmed by {}): {}",
            change.summary, change.proposed_by, actor.name, change.reason
        );
        if let Err(e) = self.apply(actor, &proposal, &comment).await {
            let stale = matches!(e, AccessError::Conflict(_) | AccessError::NotEarned { .. });
            if stale {
                let note = Some(format!("not applied: {e}"));
                self.store().close_change(id, PendingStatus::Failed, actor, note, self.now()).await?;
            }
            return Err(e);
        }
        Ok(self.store().close_change(id, PendingStatus::Confirmed, actor, note, self.now()).await?)
    }

    async fn apply(&self, actor: &Actor, proposal: &Proposal, comment: &str) -> Result<(), AccessError> {
        let now = self.now();
        match proposal {
            Proposal::Settings { previous, settings, .. } => {
                let engine = self.active().await?.engine;
                let current = engine.safety_state().await?.settings.unwrap_or(serde_json::Value::Null);
                if &current != previous {
                    return Err(AccessError::Conflict("the settings changed since this change was proposed".into()));
                }
                // The record may have changed since the proposal (a rollback meanwhile).
                let new: PolicySettings = serde_json::from_value(settings.clone())
                    .map_err(|e| AccessError::Conflict(format!("the proposed settings cannot be read: {e}")))?;
                self.check_promotions(&self.active().await?.settings, &new).await?;
                engine.update_settings(actor, settings.clone(), comment.to_owned()).await?;
            }
            Proposal::KillSwitchOff => {
                let engine = self.active().await?.engine;
                if !engine.safety_state().await?.kill_switch {
                    return Err(AccessError::Conflict("the kill switch is already off".into()));
                }
                engine.set_kill_switch(false, actor, comment.to_owned()).await?;
            }
            Proposal::InstallationKillSwitchOff => {
                let engine = self.active().await?.engine;
                if !engine.safety_state().await?.installation_kill_switch {
                    return Err(AccessError::Conflict("the installation's kill switch is already off".into()));
                }
                engine.set_installation_kill_switch(false, actor, comment.to_owned()).await?;
            }
            Proposal::Role { principal, kind, from: None, to: Some(role) } => {
                self.store()
                    .create_principal(principal, kind.unwrap_or(PrincipalKind::Person), *role, actor, now)
                    .await?;
            }
            Proposal::Role { principal, from: Some(from), to: Some(role), .. } => {
                self.store().set_principal_role(principal, *from, *role, actor, comment, now).await?;
            }
            Proposal::Role { principal, from: Some(from), to: None, .. } => {
                let p = self.live_principal(principal).await?;
                if p.role != Some(*from) {
                    return Err(AccessError::Conflict(format!(
                        "principal `{principal}` changed since this change was proposed"
                    )));
                }
                self.store().revoke_principal(principal, actor, comment, now).await?;
            }
            Proposal::Role { from: None, to: None, .. } => {
                return Err(AccessError::Conflict("this change does nothing".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]
mod tests {
    use remediation_core::{Clock as _, KindName};
    use remediation_gates::{ControlSettings, KindSettings};

    use super::*;

    #[track_caller]
    fn check(change: impl FnOnce(&mut PolicySettings), expected: &[&str]) {
        let mut old = PolicySettings { min_approvals: 2, ..PolicySettings::default() };
        old.controls.insert("C-1".into(), ControlSettings { never_auto: true, ..ControlSettings::default() });
        let mut new = old.clone();
        change(&mut new);
        assert_eq!(escalations(&old, &new), expected);
    }

    fn refused(source: impl std::error::Error + Send + Sync + 'static) -> AccessError {
        AccessError::from(StoreError::Backend { message: "refused".into(), source: Box::new(source) })
    }

    #[test]
    fn each_store_refusal_maps_to_the_same_answer() {
        use StoreSqliteError as Sq;
        let kind = |e: AccessError| match e {
            AccessError::NotFound(text) => ("not_found", text),
            AccessError::Invalid { message, .. } => ("invalid", message),
            AccessError::Conflict(text) => ("conflict", text),
            AccessError::Store(e) => ("store", e.to_string()),
            other => ("other", other.to_string()),
        };
        let (k, text) = kind(refused(Sq::UnknownPrincipal { name: "eve".into() }));
        assert_eq!(k, "not_found");
        assert!(text.contains("eve"), "{text}");
        assert_eq!(kind(refused(Sq::PrincipalExists { name: "eve".into() })).0, "conflict");
        assert_eq!(kind(refused(std::io::Error::other("disk"))).0, "store");
        #[cfg(feature = "postgres")]
        {
            use remediation_store_postgres::StorePostgresError as Pg;
            let (k, text) = kind(refused(Pg::UnknownPrincipal { name: "eve".into() }));
            assert_eq!(k, "not_found");
            assert!(text.contains("eve"), "{text}");
            assert_eq!(kind(refused(Pg::UnknownPendingChange { id: "c1".into() })).0, "not_found");
            assert_eq!(kind(refused(Pg::InvalidName { name: "x y".into(), why: "spaces" })).0, "invalid");
            assert_eq!(kind(refused(Pg::TokenNameTaken { name: "t".into(), principal: "p".into() })).0, "conflict");
            assert_eq!(kind(refused(Pg::PrincipalRevoked { name: "p".into() })).0, "conflict");
            assert_eq!(
                kind(refused(Pg::PendingChangeClosed { id: "c1".into(), status: "expired".into() })).0,
                "conflict"
            );
        }
    }

    #[test]
    fn loosening_needs_two_admins_and_tightening_does_not() {
        check(|_| {}, &[]);
        check(|s| s.default_mode = Mode::Auto, &["default_mode switched to auto"]);
        check(|s| s.min_approvals = 1, &["min_approvals lowered from 2 to 1"]);
        check(|s| s.min_approvals = 3, &[]);
        check(|s| s.emergency_access_max_age_days = 90, &["emergency_access_max_age_days raised from 30 to 90"]);
        check(|s| s.emergency_access_max_age_days = 7, &[]);
        // Which kinds a responder runs without a second approver: any change needs two admins.
        check(
            |s| s.emergency_kinds.push(KindName::Suspend),
            &[
                "emergency_kinds changed from [revoke_sessions, force_password_reset] to [revoke_sessions, force_password_reset, suspend]",
            ],
        );
        check(
            |s| s.emergency_kinds.clear(),
            &["emergency_kinds changed from [revoke_sessions, force_password_reset] to []"],
        );
        check(
            |s| {
                s.kinds.insert(
                    KindName::Revoke,
                    KindSettings { mode: Some(Mode::Auto), reason: Some("r".into()), ..KindSettings::default() },
                );
            },
            &["kind revoke switched to auto"],
        );
        check(
            |s| {
                s.kinds.insert(KindName::Revoke, KindSettings { min_approvals: Some(1), ..KindSettings::default() });
            },
            &["kind revoke min_approvals lowered from 2 to 1"],
        );
        check(
            |s| {
                s.kinds.insert(
                    KindName::Revoke,
                    KindSettings { mode: Some(Mode::Manual), reason: Some("r".into()), ..KindSettings::default() },
                );
            },
            &[],
        );
        check(
            |s| s.controls.entry("C-1".into()).or_default().mode = Some(Mode::Auto),
            &["control C-1 switched to auto"],
        );
        check(
            |s| s.controls.entry("C-1".into()).or_default().never_auto = false,
            &["control C-1 no longer never_auto"],
        );
        check(|s| s.controls.entry("C-2".into()).or_default().never_auto = true, &[]);
        // An override in auto that reaches further is a promotion too; narrowing is not.
        let mut auto = PolicySettings::default();
        auto.controls.insert(
            "C-3".into(),
            ControlSettings {
                mode: Some(Mode::Auto),
                reason: Some("r".into()),
                kinds: Some(vec![KindName::Notify]),
                grant_types: Some(vec!["notification".into()]),
                connectors: Some(vec!["sandbox".into(), "okta".into()]),
                ..ControlSettings::default()
            },
        );
        let mut wider = auto.clone();
        wider.controls.entry("C-3".into()).or_default().kinds = Some(vec![KindName::Notify, KindName::Suspend]);
        assert_eq!(escalations(&auto, &wider), ["control C-3 in auto widened its scope"]);
        assert_eq!(crate::earned::promoted(&auto, &wider), ["C-3"]);
        let mut narrower = auto.clone();
        narrower.controls.entry("C-3".into()).or_default().connectors = Some(vec!["sandbox".into()]);
        assert_eq!(escalations(&auto, &narrower), Vec::<String>::new());
        assert_eq!(crate::earned::promoted(&auto, &narrower), Vec::<String>::new());
        check(|s| s.enabled = true, &[]);
        // Removing an override falls back to something looser.
        check(|s| drop(s.controls.remove("C-1")), &["control C-1 no longer never_auto"]);
        let mut strict = PolicySettings { default_mode: Mode::Auto, ..PolicySettings::default() };
        strict.kinds.insert(
            KindName::Revoke,
            KindSettings {
                mode: Some(Mode::Manual),
                reason: Some("r".into()),
                min_approvals: Some(3),
                ..KindSettings::default()
            },
        );
        let mut loose = strict.clone();
        loose.kinds.clear();
        assert_eq!(
            escalations(&strict, &loose),
            ["kind revoke min_approvals lowered from 3 to 1", "kind revoke falls back to the default mode auto"]
        );
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        clock: std::sync::Arc<remediation_core::ManualClock>,
        rt: Runtime,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = std::sync::Arc::new(remediation_core::ManualClock::new(
            OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000),
        ));
        let options = crate::RuntimeOptions { clock: Some(clock.clone()), ..crate::RuntimeOptions::default() };
        let rt = Runtime::build(&remediation_config::Config::default(), dir.path(), None, options).expect("runtime");
        Fixture { _dir: dir, clock, rt }
    }

    fn alice() -> Actor {
        Actor::new("alice", Role::Admin).with_credential("alice-laptop")
    }

    fn bob() -> Actor {
        Actor::new("bob", Role::Admin).with_credential("bob-laptop")
    }

    fn pending<T: std::fmt::Debug>(o: Outcome<T>) -> PendingChange {
        match o {
            Outcome::Pending(c) => *c,
            Outcome::Applied(v) => panic!("applied at once: {v:?}"),
        }
    }

    #[tokio::test]
    async fn turning_the_kill_switch_off_needs_a_second_admin_before_expiry() {
        let f = fixture();
        // On is immediate.
        assert!(matches!(f.rt.set_kill_switch(&alice(), true, "incident").await.expect("on"), Outcome::Applied(_)));
        let switch =
            || async { f.rt.active().await.expect("active").engine.safety_state().await.expect("state").kill_switch };
        // Off waits, visible to everyone.
        let c = pending(f.rt.set_kill_switch(&alice(), false, "incident over").await.expect("off"));
        assert!(switch().await, "nothing changed yet");
        assert_eq!(f.rt.pending_changes(false).await.expect("list").len(), 1);
        // The proposer, even with another token, cannot confirm; a non-admin cannot either.
        let again = Actor::new("alice", Role::Admin).with_credential("alice-phone");
        assert!(matches!(f.rt.confirm_change(&again, &c.id, None).await, Err(AccessError::SameAdmin { .. })));
        let approver = Actor::new("carol", Role::Approver);
        assert!(matches!(f.rt.confirm_change(&approver, &c.id, None).await, Err(AccessError::NotAdmin { .. })));
        // A second admin confirms: applied, and closed once.
        let done = f.rt.confirm_change(&bob(), &c.id, Some("checked".into())).await.expect("confirm");
        assert_eq!((done.status, done.decided_by.as_deref()), (PendingStatus::Confirmed, Some("bob")));
        assert!(!switch().await, "the switch is off");
        assert!(matches!(f.rt.confirm_change(&bob(), &c.id, None).await, Err(AccessError::Conflict(_))));
        // A proposal left alone expires on the clock and can no longer be confirmed.
        f.rt.set_kill_switch(&alice(), true, "again").await.expect("on");
        let c = pending(f.rt.set_kill_switch(&alice(), false, "over").await.expect("off"));
        f.clock.advance(f.rt.confirmation_window());
        assert!(matches!(f.rt.confirm_change(&bob(), &c.id, None).await, Err(AccessError::Conflict(_))));
        assert!(switch().await, "an expired change applies nothing");
        assert_eq!(
            f.rt.store().pending_change(&c.id).await.expect("read").map(|c| c.status),
            Some(PendingStatus::Expired)
        );
        // Every step is in the audit, with principal and token.
        let steps: Vec<(String, String, Option<String>)> =
            f.rt.store()
                .audit_page(&remediation_core::AuditFilter::default(), None, 10_000)
                .await
                .expect("audit")
                .iter()
                .filter_map(|r| match &r.body {
                    remediation_audit::AuditBody::Settings(s) => {
                        Some((s.setting_event.clone(), s.actor.clone(), s.credential.clone()))
                    }
                    remediation_audit::AuditBody::Transition(_) => None,
                })
                .collect();
        let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "kill_switch_on",
                "change_proposed",
                "kill_switch_off",
                "change_confirmed",
                "kill_switch_on",
                "change_proposed",
                "change_expired"
            ]
        );
        assert_eq!(steps[2], ("kill_switch_off".into(), "bob".into(), Some("bob-laptop".into())));
    }

    #[tokio::test]
    async fn a_confirmation_applies_nothing_when_the_settings_changed_meanwhile() {
        let f = fixture();
        let settings = f.rt.active().await.expect("active").settings;
        let mut auto = serde_json::to_value(&settings).expect("json");
        auto["default_mode"] = serde_json::json!("auto");
        let c = pending(f.rt.change_settings(&alice(), auto, "fewer clicks").await.expect("propose"));
        // Tightening is immediate, and makes the proposal stale.
        let mut stricter = serde_json::to_value(&settings).expect("json");
        stricter["min_approvals"] = serde_json::json!(2);
        assert!(matches!(
            f.rt.change_settings(&alice(), stricter, "two approvals").await.expect("apply"),
            Outcome::Applied(())
        ));
        assert!(matches!(f.rt.confirm_change(&bob(), &c.id, None).await, Err(AccessError::Conflict(_))));
        let active = f.rt.active().await.expect("active").settings;
        assert_eq!((active.default_mode, active.min_approvals), (Mode::Manual, 2));
        assert_eq!(
            f.rt.store().pending_change(&c.id).await.expect("read").map(|c| c.status),
            Some(PendingStatus::Failed)
        );
    }

    /// Settings with control C-1 in `mode` over revokes of group memberships on `sandbox`.
    fn with_control(settings: &PolicySettings, mode: Mode, override_reason: Option<&str>) -> serde_json::Value {
        let mut s = settings.clone();
        s.controls.insert(
            "C-1".into(),
            ControlSettings {
                mode: Some(mode),
                reason: Some("reviewed".into()),
                kinds: Some(vec![KindName::Revoke]),
                grant_types: Some(vec!["group_membership".into()]),
                connectors: Some(vec!["sandbox".into()]),
                promotion_override_reason: override_reason.map(str::to_owned),
                ..ControlSettings::default()
            },
        );
        serde_json::to_value(&s).expect("json")
    }

    async fn past(f: &Fixture, seed: u64, mode: Mode, days_ago: i64, ending: remediation_testkit::history::Ending) {
        let at = f.clock.now() - Duration::days(days_ago);
        let p = remediation_testkit::history::Past::new("C-1", seed, mode, at, ending);
        remediation_testkit::history::record(f.rt.store().as_ref(), p).await.expect("record");
    }

    #[tokio::test]
    async fn a_control_is_set_to_auto_only_with_its_record_or_an_admins_audited_override() {
        use remediation_testkit::history::Ending;
        let f = fixture();
        let settings = f.rt.active().await.expect("active").settings;
        // Start manual: immediate.
        let manual = with_control(&settings, Mode::Manual, None);
        assert!(matches!(f.rt.change_settings(&alice(), manual, "start manual").await, Ok(Outcome::Applied(()))));
        let settings = f.rt.active().await.expect("active").settings;
        for seed in 1..=3 {
            past(&f, seed, Mode::Manual, 2, Ending::Completed).await;
        }
        // Auto without the record: refused, saying what the record is.
        let auto = with_control(&settings, Mode::Auto, None);
        let e = f.rt.change_settings(&alice(), auto, "fewer clicks").await.expect_err("refused");
        let text = e.to_string();
        assert!(matches!(e, AccessError::NotEarned { .. }), "{e:?}");
        assert!(text.contains("3 of 10 successful manual remediations; first 2 days ago, 30 needed"), "{text}");
        assert!(f.rt.pending_changes(false).await.expect("list").is_empty(), "nothing proposed");
        // With an admin's override: proposed, confirmed, and the reason is in the audit.
        let auto = with_control(&settings, Mode::Auto, Some("vendor-approved playbook, INC-42"));
        let c = pending(f.rt.change_settings(&alice(), auto, "fewer clicks").await.expect("propose"));
        assert!(c.summary.contains("admin override: vendor-approved playbook, INC-42"), "{}", c.summary);
        f.rt.confirm_change(&bob(), &c.id, None).await.expect("confirm");
        let active = f.rt.active().await.expect("active").settings;
        let control = &active.controls["C-1"];
        assert_eq!(control.mode, Some(Mode::Auto));
        assert_eq!(control.auto_since, Some(f.clock.now()));
        let audit =
            f.rt.store().audit_page(&remediation_core::AuditFilter::default(), None, 10_000).await.expect("audit");
        let changed = audit
            .iter()
            .rev()
            .find_map(|r| match &r.body {
                remediation_audit::AuditBody::Settings(s) if s.setting_event == "settings_changed" => Some(s),
                _ => None,
            })
            .expect("settings record");
        assert!(
            changed.comment.as_deref().unwrap_or_default().contains("admin override: vendor-approved playbook, INC-42"),
            "{changed:?}"
        );
        assert_eq!(
            changed.value["settings"]["controls"]["C-1"]["promotion_override_reason"],
            "vendor-approved playbook, INC-42"
        );
        // Back to manual drops the override, so it cannot carry a later promotion.
        let manual = with_control(&active, Mode::Manual, Some("vendor-approved playbook, INC-42"));
        f.rt.change_settings(&alice(), manual, "back to manual").await.expect("manual");
        let active = f.rt.active().await.expect("active").settings;
        assert_eq!(active.controls["C-1"].promotion_override_reason, None);
    }

    #[tokio::test]
    async fn an_earned_record_is_enough_and_is_judged_again_when_confirmed() {
        use remediation_testkit::history::Ending;
        let f = fixture();
        let settings = f.rt.active().await.expect("active").settings;
        f.rt.change_settings(&alice(), with_control(&settings, Mode::Manual, None), "start").await.expect("manual");
        let settings = f.rt.active().await.expect("active").settings;
        for seed in 1..=10 {
            past(&f, seed, Mode::Manual, 31, Ending::Completed).await;
        }
        let c = pending(
            f.rt.change_settings(&alice(), with_control(&settings, Mode::Auto, None), "earned").await.expect("propose"),
        );
        assert!(c.summary.contains("control C-1 earned auto: 10 successful manual remediations"), "{}", c.summary);
        // A rollback before the second admin confirms: the change no longer applies.
        past(&f, 11, Mode::Manual, 1, Ending::RolledBack).await;
        let e = f.rt.confirm_change(&bob(), &c.id, None).await.expect_err("not earned any more");
        assert!(matches!(e, AccessError::NotEarned { .. }), "{e:?}");
        assert_eq!(f.rt.active().await.expect("active").settings.controls["C-1"].mode, Some(Mode::Manual));
        assert_eq!(
            f.rt.store().pending_change(&c.id).await.expect("read").map(|c| c.status),
            Some(PendingStatus::Failed)
        );
    }

    #[tokio::test]
    async fn settings_from_the_file_may_not_start_a_control_in_auto_it_has_not_earned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = remediation_config::Config::default();
        let auto: PolicySettings =
            serde_json::from_value(with_control(&PolicySettings::default(), Mode::Auto, None)).expect("settings");
        config.policy = auto.clone();
        let rt = Runtime::build(&config, dir.path(), None, crate::RuntimeOptions::default()).expect("runtime");
        let e = rt.check_seeded_promotions().await.expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("[policy.controls.\"C-1\"]") && text.contains("0 of 10"), "{text}");
        // With the admin's reason in the file, it starts.
        config.policy = serde_json::from_value(with_control(&PolicySettings::default(), Mode::Auto, Some("pilot")))
            .expect("settings");
        let rt = Runtime::build(&config, dir.path(), None, crate::RuntimeOptions::default()).expect("runtime");
        rt.check_seeded_promotions().await.expect("overridden");
    }

    #[tokio::test]
    async fn changing_who_is_admin_needs_a_second_admin() {
        let f = fixture();
        let c = pending(
            f.rt.create_principal(&alice(), "mallory", PrincipalKind::Person, Role::Admin, "helps")
                .await
                .expect("propose"),
        );
        assert_eq!(f.rt.store().principal("mallory").await.expect("read"), None, "nothing created yet");
        f.rt.confirm_change(&bob(), &c.id, None).await.expect("confirm");
        assert_eq!(f.rt.store().principal("mallory").await.expect("read").and_then(|p| p.role), Some(Role::Admin));
        // Other roles change at once; demoting or revoking an admin waits.
        let p = f.rt.create_principal(&alice(), "dave", PrincipalKind::Service, Role::Viewer, "").await.expect("dave");
        assert!(matches!(p, Outcome::Applied(_)));
        assert!(matches!(
            f.rt.set_role(&alice(), "dave", Role::Approver, "reviews").await.expect("role"),
            Outcome::Applied(_)
        ));
        pending(f.rt.set_role(&alice(), "mallory", Role::Viewer, "left the team").await.expect("demote"));
        pending(f.rt.revoke_principal(&alice(), "mallory", "left the team").await.expect("revoke"));
        assert_eq!(f.rt.store().principal("mallory").await.expect("read").and_then(|p| p.role), Some(Role::Admin));
        // Only admins manage principals and tokens.
        let approver = Actor::new("local:carol", Role::Approver);
        assert!(matches!(
            f.rt.create_principal(&approver, "eve", PrincipalKind::Person, Role::Viewer, "").await,
            Err(AccessError::NotAdmin { .. })
        ));
        assert!(matches!(
            f.rt.create_token(&approver, "dave", "dave-1", DEFAULT_TOKEN_LIFETIME).await,
            Err(AccessError::NotAdmin { .. })
        ));
        let (t, _) = f.rt.create_token(&alice(), "dave", "dave-1", DEFAULT_TOKEN_LIFETIME).await.expect("token");
        assert_eq!(t.expires_at - t.created_at, Duration::days(90));
        assert!(matches!(f.rt.revoke_token(&approver, "dave-1").await, Err(AccessError::NotAdmin { .. })));
    }

    #[test]
    fn lifetimes_parse_in_days_hours_and_minutes_within_bounds() {
        assert_eq!(parse_lifetime("90d"), Ok(Duration::days(90)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::hours(12)));
        assert_eq!(parse_lifetime("30m"), Ok(Duration::minutes(30)));
        for bad in ["", "d", "0d", "400d", "-1d", "5", "5y", "1.5d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
