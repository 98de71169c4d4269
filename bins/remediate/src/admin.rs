//! Administration commands: settings, controls, kill switch, circuit breaker, limits, held
//! actions, plans and emergency-access verification.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use remediation_core::{ActionId, State};
use remediation_gates::{ControlSettings, ControlStatus, PolicySettings};
use serde_json::{Value, json};

use remediation_runtime::access::Outcome as Change;
use remediation_store_sqlite::{PendingChange, Principal, PrincipalKind};

use crate::app::Ctx;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, clean, outln};

/// `settings` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Show the policy settings in force and where they come from.
    Show,
    /// Change one setting (admin; audited). KEY is a dotted path such as `enabled`,
    /// `default_mode` or `kinds.revoke`; VALUE is JSON (a bare word is taken as a string).
    Set {
        /// Dotted path into the policy settings.
        key: String,
        /// New value, as JSON.
        value: String,
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
        /// Set every control this change switches to auto although it has not earned it, as
        /// an admin's decision; the reason is kept with the control and in the audit.
        #[arg(long, value_name = "REASON")]
        override_earned: Option<String>,
    },
    /// Copy one tenant's policy settings (modes, kind and control overrides, approvals,
    /// windows) to another, after showing every difference: try a change in a test tenant,
    /// then copy it to production. Admin of both (on the data directory). A loosening copy
    /// waits for a second admin of the tenant copied to; a control in auto must have earned
    /// it there. Both tenants' audit logs record it.
    Copy {
        /// The tenant copied from.
        #[arg(long, value_parser = crate::parse_tenant)]
        from: remediation_core::TenantId,
        /// The tenant copied to.
        #[arg(long, value_parser = crate::parse_tenant)]
        to: remediation_core::TenantId,
        /// Why (kept in both audit logs).
        #[arg(long)]
        reason: String,
        /// Apply without asking (required off a terminal); without it, the differences are
        /// shown and a terminal asks.
        #[arg(long)]
        yes: bool,
        /// Only show the differences.
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
    },
}

/// `tenants` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantsCommand {
    /// Create a tenant (an admin of the default tenant). Then give it principals, tokens and
    /// connectors with `--tenant NAME`.
    Create {
        /// Its name: 1 to 40 lowercase letters, digits and `-`.
        #[arg(value_parser = crate::parse_tenant)]
        name: remediation_core::TenantId,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the tenants (an admin of the default tenant).
    List,
}

/// `controls` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ControlsCommand {
    /// List configured controls: mode, scope, and record (successes manual/auto, first
    /// success, rollbacks, failed verifications, the latest auto actions, earned auto).
    List,
    /// Show one control: its settings, the scope and mode of its override, and its record,
    /// with whether it has earned auto and why not.
    Show {
        /// Control id.
        id: String,
    },
    /// Change one control (admin; audited).
    Set(Box<ControlSetArgs>),
}

/// Arguments of `controls set`.
#[derive(Debug, Args)]
pub(crate) struct ControlSetArgs {
    /// Control id.
    pub(crate) id: String,
    /// Mode for the control's actions. It applies as set only to
    /// the kinds, grant types and connectors named (required with --mode); to other actions
    /// tagged with the control it can only lower the mode.
    #[arg(long, value_parser = crate::one_of(["advisory", "manual", "auto"], parse_word::<remediation_core::Mode>))]
    pub(crate) mode: Option<remediation_core::Mode>,
    /// Action kinds the mode applies to (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = crate::one_of(remediation_core::KindName::ALL.map(remediation_core::KindName::as_str), parse_word::<remediation_core::KindName>))]
    pub(crate) kinds: Option<Vec<remediation_core::KindName>>,
    /// Grant types the mode applies to (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) grant_types: Option<Vec<String>>,
    /// Connector ids the mode applies to (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) connectors: Option<Vec<String>>,
    /// The control's actions always need approval.
    #[arg(long)]
    pub(crate) never_auto: Option<bool>,
    /// Disable the control; its actions are refused. The value is the reason shown.
    #[arg(long, conflicts_with = "enable")]
    pub(crate) disable: Option<String>,
    /// Enable a disabled control.
    #[arg(long)]
    pub(crate) enable: bool,
    /// Record whether the control currently passes.
    #[arg(long, value_parser = crate::one_of(["unknown", "passing", "failing"], parse_word::<ControlStatus>))]
    pub(crate) status: Option<ControlStatus>,
    /// Controls that must pass first (comma-separated; empty to clear).
    #[arg(long, value_delimiter = ',')]
    pub(crate) prerequisites: Option<Vec<String>>,
    /// Why (kept in the audit; also the override reason for --mode).
    #[arg(long)]
    pub(crate) reason: String,
    /// With --mode auto: set auto although the control has not earned it (10 successful
    /// manual remediations over 30 days, none rolled back, by default), as an admin's
    /// decision; the reason is kept with the control and in the audit.
    #[arg(long, value_name = "REASON")]
    pub(crate) override_earned: Option<String>,
}

/// Gives every control that `doc` switches to auto (from `before`) the admin's
/// `promotion_override_reason` `why`: auto without the earned record, audited.
fn override_promotions(before: &PolicySettings, doc: &mut Value, why: &str) {
    let Some(controls) = doc.get_mut("controls").and_then(Value::as_object_mut) else { return };
    for (id, c) in controls.iter_mut() {
        let was_auto = before.controls.get(id).and_then(|c| c.mode) == Some(remediation_core::Mode::Auto);
        if c.get("mode").and_then(Value::as_str) == Some("auto") && !was_auto {
            c["promotion_override_reason"] = Value::String(why.to_owned());
        }
    }
}

/// `kill-switch` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KillSwitchCommand {
    /// Stop everything: no execution starts; waiting actions are cancelled (admin).
    On {
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
        /// The installation's kill switch: every tenant stops, whatever its own switch says
        /// (an admin of the default tenant).
        #[arg(long)]
        installation: bool,
    },
    /// Allow executions again; nothing resumes by itself (admin).
    Off {
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
        /// The installation's kill switch (an admin of the default tenant; a second admin
        /// confirms).
        #[arg(long)]
        installation: bool,
    },
    /// Show whether the kill switch is on.
    Status,
}

/// `breaker` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BreakerCommand {
    /// Reset a tripped circuit breaker (admin); held actions stay held until released.
    Reset {
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
    },
    /// Show whether the breaker is tripped.
    Status,
}

/// `limits` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LimitsCommand {
    /// Usage of every blast-radius window with executions in it.
    Status,
}

/// `held` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum HeldCommand {
    /// Actions held by a limit or the breaker, with why.
    List,
}

/// `emergency-access` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum EmergencyCommand {
    /// Record that break-glass access was verified to work now (admin).
    Verify {
        /// How it was verified (kept in the audit).
        #[arg(long)]
        note: String,
    },
    /// When it was last verified, and whether that is recent enough.
    Status,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token for a principal and print it once (it cannot be shown again).
    Create {
        /// The principal whose credential it is (see `remediate principal list`).
        #[arg(long)]
        principal: String,
        /// The token's name (lowercase letters, digits, `.`, `_`, `-`, `@`), recorded in the
        /// audit beside the principal. Never reused for another principal.
        #[arg(long)]
        name: String,
        /// How long it lives: e.g. 90d (the default), 12h, 30m; at most 366d.
        #[arg(long, value_parser = remediation_runtime::access::parse_lifetime)]
        expires: Option<time::Duration>,
        /// Other tenants the token reaches too (comma-separated), an operator's token: in each
        /// it acts with the principal's role there, which it must hold.
        #[arg(long, value_delimiter = ',', value_parser = crate::parse_tenant)]
        tenants: Vec<remediation_core::TenantId>,
    },
    /// List tokens (names, principals, dates, other tenants; never the tokens).
    List,
    /// Revoke a token by name (at once).
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `principal` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PrincipalCommand {
    /// Create a principal holding a role (an admin waits for a second admin).
    Create {
        /// Its name (lowercase letters, digits, `.`, `_`, `-`, `@`), recorded as the actor.
        name: String,
        /// Its role.
        #[arg(long, value_parser = crate::one_of(ROLES, parse_word::<remediation_core::Role>))]
        role: remediation_core::Role,
        /// Whether it is a person or a service.
        #[arg(long, value_parser = crate::one_of(["person", "service"], parse_word::<PrincipalKind>), default_value = "person")]
        kind: PrincipalKind,
        /// Why (kept in the audit; required for an admin).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List principals and their roles.
    List,
    /// Change a principal's role (to or from admin waits for a second admin).
    SetRole {
        /// The principal.
        name: String,
        /// The new role.
        #[arg(value_parser = crate::one_of(ROLES, parse_word::<remediation_core::Role>))]
        role: remediation_core::Role,
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
    },
    /// Revoke a principal and every token of it (an admin waits for a second admin; revoke
    /// its tokens to stop it at once).
    Revoke {
        /// The principal.
        name: String,
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
    },
}

/// `pending` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PendingCommand {
    /// Changes waiting for a second admin.
    List {
        /// Also those confirmed, cancelled, expired or failed.
        #[arg(long)]
        all: bool,
    },
    /// Confirm and apply a change proposed by another admin.
    Confirm {
        /// The change's id.
        id: String,
        /// Note kept in the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Withdraw a pending change.
    Cancel {
        /// The change's id.
        id: String,
        /// Note kept in the audit.
        #[arg(long)]
        note: Option<String>,
    },
}

fn ts(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl Ctx {
    /// `token create|list|revoke` (local admins only).
    pub(crate) async fn token(&self, command: &TokenCommand) -> Result<u8, Failure> {
        use secrecy::ExposeSecret as _;
        let runtime = &self.backend.local("token")?.runtime;
        match command {
            TokenCommand::Create { principal, name, expires, tenants } => {
                let lifetime = expires.unwrap_or(remediation_runtime::access::DEFAULT_TOKEN_LIFETIME);
                let (t, token) = runtime.create_token_in(&self.actor, principal, name, lifetime, tenants).await?;
                match self.format {
                    Format::Json => outln!(
                        "{}",
                        output::json(&json!({"name": t.name, "principal": t.principal,
                                              "expires_at": ts(t.expires_at), "token": token.expose_secret()}))
                    )?,
                    Format::Table => {
                        outln!("{}", token.expose_secret())?;
                        output::errln!(
                            "token `{}` of `{}` created, valid until {}; it is shown only this once: keep it secret",
                            clean(&t.name),
                            clean(&t.principal),
                            ts(t.expires_at)
                        );
                    }
                }
                Ok(0)
            }
            TokenCommand::List => {
                let tokens = runtime.tokens(&self.actor).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(tokens)))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = tokens
                            .iter()
                            .map(|t| {
                                vec![
                                    clean(&t.name),
                                    clean(&t.principal),
                                    ts(t.created_at),
                                    ts(t.expires_at),
                                    t.revoked_at.map_or_else(|| "-".to_owned(), ts),
                                    if t.tenants.is_empty() { "-".to_owned() } else { t.tenants.join(",") },
                                ]
                            })
                            .collect();
                        output::out!(
                            "{}",
                            output::table(
                                &["NAME", "PRINCIPAL", "CREATED", "EXPIRES", "REVOKED", "OTHER TENANTS"],
                                &rows
                            )
                        )?;
                    }
                }
                Ok(0)
            }
            TokenCommand::Revoke { name } => {
                runtime.revoke_token(&self.actor, name).await?;
                outln!("token `{}` revoked", clean(name))?;
                Ok(0)
            }
        }
    }

    /// `principal create|list|set-role|revoke` (local admins only).
    pub(crate) async fn principal(&self, command: &PrincipalCommand) -> Result<u8, Failure> {
        let runtime = &self.backend.local("principal")?.runtime;
        match command {
            PrincipalCommand::Create { name, role, kind, reason } => {
                match runtime.create_principal(&self.actor, name, *kind, *role, reason).await? {
                    Change::Applied(p) => self.print_principal("created", &p)?,
                    Change::Pending(c) => self.print_pending(&c)?,
                }
            }
            PrincipalCommand::List => {
                let all = runtime.principals(&self.actor).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(all)))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = all
                            .iter()
                            .map(|p| {
                                vec![
                                    clean(&p.name),
                                    p.kind.to_string(),
                                    p.role.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                                    ts(p.created_at),
                                    p.revoked_at.map_or_else(|| "-".to_owned(), ts),
                                ]
                            })
                            .collect();
                        output::out!("{}", output::table(&["NAME", "KIND", "ROLE", "CREATED", "REVOKED"], &rows))?;
                    }
                }
            }
            PrincipalCommand::SetRole { name, role, reason } => {
                match runtime.set_role(&self.actor, name, *role, reason).await? {
                    Change::Applied(p) => self.print_principal("changed", &p)?,
                    Change::Pending(c) => self.print_pending(&c)?,
                }
            }
            PrincipalCommand::Revoke { name, reason } => {
                match runtime.revoke_principal(&self.actor, name, reason).await? {
                    Change::Applied(()) => outln!("principal `{}` and its tokens revoked", clean(name))?,
                    Change::Pending(c) => self.print_pending(&c)?,
                }
            }
        }
        Ok(0)
    }

    fn print_principal(&self, verb: &str, p: &Principal) -> Result<(), Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(p)))?,
            Format::Table => outln!(
                "principal `{}` ({}) {verb}: {}",
                clean(&p.name),
                p.kind,
                p.role.map_or_else(|| "no role".to_owned(), |r| r.to_string())
            )?,
        }
        Ok(())
    }

    /// Prints a change that waits for a second admin.
    pub(crate) fn print_pending(&self, c: &PendingChange) -> Result<(), Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!({"pending_change": c})))?,
            Format::Table => {
                outln!("waiting for a second admin: {}", clean(&c.summary))?;
                outln!(
                    "  another admin confirms it before {} with: remediate pending confirm {}",
                    ts(c.expires_at),
                    clean(&c.id)
                )?;
            }
        }
        Ok(())
    }

    /// `pending list|confirm|cancel`.
    pub(crate) async fn pending(&self, command: &PendingCommand) -> Result<u8, Failure> {
        match command {
            PendingCommand::List { all } => {
                let changes = self.backend.pending_changes(*all).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(changes)))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = changes
                            .iter()
                            .map(|c| {
                                vec![
                                    clean(&c.id),
                                    c.status.to_string(),
                                    clean(&c.proposed_by),
                                    ts(c.expires_at),
                                    clean(&c.summary),
                                ]
                            })
                            .collect();
                        output::out!(
                            "{}",
                            output::table(&["ID", "STATUS", "PROPOSED BY", "EXPIRES", "CHANGE"], &rows)
                        )?;
                    }
                }
            }
            PendingCommand::Confirm { id, note } | PendingCommand::Cancel { id, note } => {
                let confirm = matches!(command, PendingCommand::Confirm { .. });
                let c = self.backend.decide_change(id, confirm, &self.actor, note.clone()).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"pending_change": c})))?,
                    Format::Table => outln!(
                        "change {} {}: {}",
                        clean(&c.id),
                        if confirm { "confirmed and applied" } else { "cancelled" },
                        clean(&c.summary)
                    )?,
                }
            }
        }
        Ok(0)
    }

    pub(crate) async fn settings(&self, command: &SettingsCommand) -> Result<u8, Failure> {
        match command {
            SettingsCommand::Show => {
                let view = self.backend.settings().await?;
                outln!("{}", output::json(&json!(view)))?;
                Ok(0)
            }
            SettingsCommand::Set { key, value, reason, override_earned } => {
                let policy = self.backend.settings().await?.policy;
                let mut doc = serde_json::to_value(&policy).context("cannot serialise the settings")?;
                let parsed: Value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
                set_path(&mut doc, key, parsed)?;
                if let Some(why) = override_earned {
                    override_promotions(&policy, &mut doc, why);
                }
                let (settings, change) = self.save_policy(doc, reason, key).await?;
                if let Change::Pending(c) = change {
                    self.print_pending(&c)?;
                    return Ok(0);
                }
                outln!(
                    "settings changed: {key} = {}",
                    clean(&lookup(&serde_json::to_value(&settings).unwrap_or_default(), key))
                )?;
                Ok(0)
            }
            SettingsCommand::Copy { from, to, reason, yes, dry_run } => {
                self.settings_copy(from, to, reason, *yes, *dry_run).await
            }
        }
    }

    /// Validates `doc` as policy settings and stores it (audited), or, when it loosens the
    /// policy, stores the change for a second admin.
    async fn save_policy(&self, doc: Value, reason: &str, what: &str) -> Result<(PolicySettings, Change<()>), Failure> {
        let settings: PolicySettings = serde_json::from_value(doc.clone())
            .map_err(|e| Failure::new(ExitCode::Usage, anyhow::anyhow!("invalid value for `{what}`: {e}")))?;
        settings.validate().map_err(|e| {
            Failure::new(ExitCode::Usage, anyhow::anyhow!("invalid settings after changing `{what}`: {e}"))
        })?;
        let change = self.backend.save_policy(&self.actor, doc, reason).await?;
        Ok((settings, change))
    }

    pub(crate) async fn controls(&self, command: &ControlsCommand) -> Result<u8, Failure> {
        match command {
            ControlsCommand::List => self.controls_list().await,
            ControlsCommand::Show { id } => self.control_show(id).await,
            ControlsCommand::Set(args) => self.control_set(args).await,
        }
    }

    async fn control_set(&self, args: &ControlSetArgs) -> Result<u8, Failure> {
        let mut policy = self.backend.settings().await?.policy;
        let before = policy.clone();
        let c: &mut ControlSettings = policy.controls.entry(args.id.clone()).or_default();
        if let Some(mode) = args.mode {
            c.mode = Some(mode);
            c.reason = Some(args.reason.clone());
        }
        if let Some(kinds) = &args.kinds {
            c.kinds = Some(kinds.clone());
        }
        let names = |v: &Vec<String>| v.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>();
        if let Some(g) = &args.grant_types {
            c.grant_types = Some(names(g));
        }
        if let Some(n) = &args.connectors {
            c.connectors = Some(names(n));
        }
        if let Some(n) = args.never_auto {
            c.never_auto = n;
        }
        if let Some(why) = &args.disable {
            c.disabled = Some(why.clone());
        }
        if args.enable {
            c.disabled = None;
        }
        if let Some(s) = args.status {
            c.status = s;
        }
        if let Some(p) = &args.prerequisites {
            c.prerequisites = p.iter().filter(|s| !s.is_empty()).cloned().collect();
        }
        let mut doc = serde_json::to_value(&policy).context("cannot serialise the settings")?;
        if let Some(why) = &args.override_earned {
            override_promotions(&before, &mut doc, why);
        }
        let (_, change) = self.save_policy(doc, &args.reason, &format!("controls.{}", args.id)).await?;
        match change {
            Change::Pending(c) => self.print_pending(&c)?,
            Change::Applied(()) => outln!("control {} updated", clean(&args.id))?,
        }
        Ok(0)
    }

    pub(crate) async fn kill_switch(&self, command: &KillSwitchCommand) -> Result<u8, Failure> {
        let (on, reason, installation) = match command {
            KillSwitchCommand::On { reason, installation } => (true, reason, *installation),
            KillSwitchCommand::Off { reason, installation } => (false, reason, *installation),
            KillSwitchCommand::Status => {
                let (on, installation) = self.backend.kill_switch().await?;
                outln!(
                    "{}",
                    if self.format == Format::Json {
                        output::json(&json!({"kill_switch": on, "installation_kill_switch": installation}))
                    } else {
                        let word = |b: bool| if b { "ON" } else { "off" };
                        format!("kill switch {}; installation kill switch {}", word(on), word(installation))
                    }
                )?;
                return Ok(0);
            }
        };
        let cancelled = match self.backend.set_kill_switch(on, installation, &self.actor, reason.clone()).await? {
            Change::Applied(cancelled) => cancelled,
            Change::Pending(c) => {
                self.print_pending(&c)?;
                return Ok(0);
            }
        };
        match self.format {
            Format::Json => outln!("{}", output::json(&json!({"kill_switch": on, "cancelled": cancelled})))?,
            Format::Table if on => {
                outln!("kill switch ON: no execution starts; {} waiting actions cancelled", cancelled.len())?;
                for a in &cancelled {
                    outln!("  cancelled {} {}", a.id, clean(&a.target.to_string()))?;
                }
            }
            Format::Table => outln!("kill switch off: executions may start again; nothing resumes by itself")?,
        }
        Ok(0)
    }

    pub(crate) async fn breaker(&self, command: &BreakerCommand) -> Result<u8, Failure> {
        match command {
            BreakerCommand::Reset { reason } => {
                self.backend.reset_breaker(&self.actor, reason.clone()).await?;
                outln!("circuit breaker reset; held actions stay held until an admin releases them (`held list`)")?;
            }
            BreakerCommand::Status => {
                let (tripped, _) = self.backend.limits().await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"breaker_tripped": tripped})))?,
                    Format::Table => outln!("circuit breaker {}", if tripped { "TRIPPED" } else { "closed" })?,
                }
            }
        }
        Ok(0)
    }

    pub(crate) async fn limits_status(&self) -> Result<u8, Failure> {
        let (tripped, usage) = self.backend.limits().await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!({"breaker_tripped": tripped, "usage": usage})))?,
            Format::Table => {
                let rows: Vec<Vec<String>> = usage
                    .iter()
                    .map(|u| {
                        vec![u.key.clone(), u.used.to_string(), u.limit.to_string(), format!("{}s", u.window_secs)]
                    })
                    .collect();
                output::out!("{}", output::table(&["KEY", "USED", "LIMIT", "WINDOW"], &rows))?;
                if tripped {
                    outln!("circuit breaker TRIPPED: all execution paused until `breaker reset`")?;
                }
            }
        }
        Ok(0)
    }

    pub(crate) async fn held_list(&self) -> Result<u8, Failure> {
        let held = self
            .backend
            .list(&remediation_core::ActionFilter {
                state: Some(State::Held),
                ..remediation_core::ActionFilter::default()
            })
            .await?;
        let mut rows = Vec::new();
        let mut docs = Vec::new();
        for a in held {
            let why = self
                .backend
                .view(a.id)
                .await?
                .transitions
                .into_iter()
                .rev()
                .find(|t| t.to == State::Held)
                .and_then(|t| t.comment)
                .unwrap_or_default();
            rows.push(vec![a.id.to_string(), a.kind.to_string(), a.target.to_string(), why.clone()]);
            docs.push(json!({"action": a, "reason": why}));
        }
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(docs)))?,
            Format::Table => output::out!("{}", output::table(&["ID", "KIND", "TARGET", "WHY HELD"], &rows))?,
        }
        Ok(0)
    }

    pub(crate) async fn plan(&self, id: ActionId) -> Result<u8, Failure> {
        let plan = &self.backend.plan(id).await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(plan)))?,
            Format::Table => {
                outln!("{}", clean(&plan.description))?;
                outln!("reversibility  {}", plan.reversibility)?;
                outln!("plan hash      {}", plan.plan_hash)?;
                outln!("before         {}", clean(&plan.before.state.to_string()))?;
                outln!("expected after {}", clean(&plan.expected_after.state.to_string()))?;
                for c in remediation_core::diff::json_diff(&plan.before.state, &plan.expected_after.state) {
                    outln!("  change       {}", clean(&c.to_string()))?;
                }
            }
        }
        Ok(0)
    }

    pub(crate) async fn emergency(&self, command: &EmergencyCommand) -> Result<u8, Failure> {
        let local = self.backend.local("emergency-access")?;
        let verify = match command {
            EmergencyCommand::Verify { note } => Some(note.clone()),
            EmergencyCommand::Status => None,
        };
        let state = remediation_service::emergency_access(&local.runtime, &self.actor, verify).await?;
        let fresh = state.fresh;
        match self.format {
            Format::Json => outln!(
                "{}",
                output::json(&json!({
                    "verified_at": state.verified_at.map(|t| t.to_string()),
                    "note": state.note,
                    "max_age_days": state.max_age_days,
                    "fresh": fresh,
                }))
            )?,
            Format::Table => match state.verified_at {
                Some(at) => outln!(
                    "emergency access verified at {at} ({}); {}",
                    clean(state.note.as_deref().unwrap_or("")),
                    if fresh { "recent enough" } else { "STALE: auto actions need approval until verified again" }
                )?,
                None => outln!(
                    "emergency access never verified: auto actions need approval until `emergency-access verify --note ...`"
                )?,
            },
        }
        Ok(0)
    }
}

/// The roles a principal may hold (the engine's own `system` is not one).
const ROLES: [&str; 5] = ["viewer", "requester", "responder", "approver", "admin"];

/// Parses a snake_case word into a serde enum (`auto`, `passing`, ...).
fn parse_word<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|e| e.to_string())
}

/// Sets `key` (dotted) in `doc` to `value`, creating objects on the way.
fn set_path(doc: &mut Value, key: &str, value: Value) -> Result<(), Failure> {
    let mut cur = doc;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!("`{key}` is not a dotted settings path such as `kinds.revoke`"),
        ));
    }
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = cur else {
            return Err(Failure::new(
                ExitCode::Usage,
                anyhow::anyhow!("`{}` is not a table in the settings", parts[..i].join(".")),
            ));
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        cur = map.entry((*part).to_owned()).or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    Ok(())
}

fn lookup(doc: &Value, key: &str) -> String {
    key.split('.').try_fold(doc, |v, k| v.get(k)).map_or_else(|| "(unset)".to_owned(), Value::to_string)
}
