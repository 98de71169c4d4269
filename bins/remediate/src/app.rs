//! Wiring and the subcommands: builds the engine from the configuration and runs one command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use remediation_core::{
    Action, ActionFilter, ActionId, ActionKind, ActionRequest, Actor, Engine, EngineError, ExecuteOutcome, Finding,
    KindName, RollbackOutcome, Target,
};
use remediation_gates::PolicySettings;
use remediation_limiter::Limits;

use crate::admin::{EventLog, HeldCommand, LimitsCommand};
use remediation_audit::AuditKey;
use remediation_store_sqlite::SqliteStore;
use secrecy::ExposeSecret as _;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::output::{self, Format, clean, errln, out, outln};
use crate::{AuditCommand, Cli, Command, SuggestArgs};
use remediation_config::Config;
use remediation_runtime::{ExecutorLock, LoadedConfig, Runtime, RuntimeError, RuntimeOptions};

pub(crate) use remediation_runtime::{AUDIT_KEY_FILE, CONFIG_FILE, EVENTS_FILE, STORE_FILE};

/// A failed command: the error chain and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// A failure with an explicit exit code.
    pub(crate) fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self { code, error: error.into() }
    }

    /// The process exit code.
    pub(crate) fn code(&self) -> u8 {
        self.code
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", clean(&format!("{:#}", self.error)))
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = if e.is_not_found() {
            4
        } else {
            match &e {
                EngineError::Refused { .. } | EngineError::Transition(_) | EngineError::Unsupported { .. } => 3,
                EngineError::Connector { .. } => 5,
                _ => 1,
            }
        };
        Self::new(code, e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::new(1, e)
    }
}

/// Runs one command and returns its exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Init { force } => init(&cli, *force),
        Command::Demo => crate::demo::run(cli.output).await,
        _ => {
            let ctx = Ctx::open(&cli).await?;
            ctx.dispatch(&cli.command).await
        }
    }
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("remediation-data"))
}

fn init(cli: &Cli, force: bool) -> Result<u8, Failure> {
    let dir = data_dir(cli);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
        .map_err(|e| Failure::new(1, e))?;
    let config_path = cli.config.clone().unwrap_or_else(|| dir.join(CONFIG_FILE));
    if config_path.exists() && !force {
        return Err(Failure::new(
            3,
            anyhow::anyhow!("{} already exists; pass --force to overwrite it", config_path.display()),
        ));
    }
    std::fs::write(&config_path, remediation_config::initial_config())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let sandbox = dir.join("sandbox.json");
    if force || !sandbox.exists() {
        remediation_connector_sandbox::write_sample(&sandbox)
            .with_context(|| format!("cannot write the sample sandbox directory {}", sandbox.display()))?;
    }
    let key_path = dir.join(AUDIT_KEY_FILE);
    let key = if key_path.exists() {
        // Kept, never replaced: the store's checkpoint is sealed with it.
        let settings = remediation_config::AuditSettings { hmac_key_file: Some(AUDIT_KEY_FILE.into()) };
        settings.load_key(&config_path, &dir).map_err(|e| Failure::new(2, e))?.ok_or_else(|| usage("no audit key"))?
    } else {
        create_audit_key(&key_path)?
    };
    let store = SqliteStore::open_with(dir.join(STORE_FILE), Some(key)).with_context(|| "cannot create the store")?;
    // An existing store (init --force) whose records predate the key is adopted here, the
    // one deliberate moment for it, and only if its chain verifies.
    if let Err(e) = store.adopt_audit_chain() {
        errln!("warning: {}; run `remediate audit verify`", clean(&format!("{:#}", anyhow::Error::new(e))));
    }
    outln!("Initialised {}", dir.display())?;
    outln!(
        "  config:  {}  (remediation is DISABLED: set `enabled = true` under [policy] to allow executions)",
        config_path.display()
    )?;
    outln!("  sandbox: {}", sandbox.display())?;
    outln!("  store:   {}", dir.join(STORE_FILE).display())?;
    outln!("  audit key: {}  (private, mode 0600: back it up with the store)", key_path.display())?;
    outln!(
        "Next: remediate --data-dir {} suggest --connector sandbox --kind revoke --identity alice --resource admins --grant-type group_membership --reason \"...\"",
        dir.display()
    )?;
    Ok(0)
}

/// Creates a new random audit checkpoint key at `path` (which must not exist), readable and
/// writable by the owner only, as 64 hex characters and a newline. Never prints the key.
pub(crate) fn create_audit_key(path: &Path) -> Result<AuditKey, Failure> {
    use std::io::Write as _;
    let key = AuditKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(key.to_hex().expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    };
    write().with_context(|| format!("cannot create the audit key file {}", path.display()))?;
    Ok(key)
}

/// Everything a command needs.
pub(crate) struct Ctx {
    pub(crate) dir: PathBuf,
    pub(crate) engine: Arc<Engine>,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) actor: Actor,
    pub(crate) format: Format,
    /// The policy settings in force.
    pub(crate) policy: PolicySettings,
    /// Where they come from: `config` (seed) or `store` (changed with `settings set`).
    pub(crate) settings_source: &'static str,
    /// The blast-radius limits in force.
    pub(crate) limits: Limits,
}

impl Ctx {
    async fn open(cli: &Cli) -> Result<Self, Failure> {
        let loaded = LoadedConfig::discover(cli.config.as_deref(), cli.data_dir.as_deref()).map_err(runtime_failure)?;
        let actor_name = cli.actor.clone().unwrap_or_else(|| {
            format!(
                "local:{}",
                std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
            )
        });
        let actor = Actor::new(actor_name.clone(), loaded.config.actors.role_of(&actor_name));
        // A missing data directory is reported by `build`, which says to run `init`.
        let key = loaded.audit_key().map_err(runtime_failure)?;
        let ctx = Self::build(loaded.config, &loaded.dir, key, actor, cli.output).await.map_err(|f| {
            Failure::new(f.code, f.error.context(format!("using configuration {}", loaded.path.display())))
        })?;
        Ok(ctx)
    }

    /// Builds the engine from a loaded configuration; `key` seals the audit checkpoint.
    ///
    /// The configuration file seeds the policy settings; once they have been changed with
    /// `settings set` or `controls set`, the copy in the store is authoritative.
    pub(crate) async fn build(
        config: Config,
        dir: &Path,
        key: Option<AuditKey>,
        actor: Actor,
        format: Format,
    ) -> Result<Self, Failure> {
        let limits = config.limits.clone();
        let mut options = RuntimeOptions {
            events: Some(Arc::new(EventLog { path: dir.join(EVENTS_FILE) })),
            ..RuntimeOptions::default()
        };
        if let Ok(point) = std::env::var("REMEDIATION_FAILPOINT") {
            options.failpoints = Some(failpoint_hook(point));
        }
        let runtime = Runtime::build(&config, dir, key, options).map_err(runtime_failure)?;
        let active = runtime.active().await.map_err(runtime_failure)?;
        let (engine, settings, settings_source) = (active.engine, active.settings, active.source.as_str());
        let store = runtime.store().clone();
        Ok(Self { dir: dir.to_owned(), engine, store, actor, format, policy: settings, settings_source, limits })
    }

    async fn dispatch(&self, command: &Command) -> Result<u8, Failure> {
        for a in self.engine.expire_stale().await? {
            errln!("expired {}: not approved in time", a.id);
        }
        match command {
            Command::Suggest(args) => self.suggest(args).await,
            Command::List { state } => self.list(*state).await,
            Command::Show { id } => self.show(*id).await,
            Command::Approve { id, note } => {
                let a = self.engine.approve(*id, &self.actor, note.clone()).await?;
                self.changed(&a, "approved by", &next_step(&a))
            }
            Command::Reject { id, note } => {
                let a = self.engine.reject(*id, &self.actor, note.clone()).await?;
                self.changed(&a, "rejected by", "")
            }
            Command::Cancel { id, note } => {
                let a = self.engine.cancel(*id, &self.actor, note.clone()).await?;
                self.changed(&a, "cancelled by", "")
            }
            Command::Promote { id } => {
                let a = self.engine.promote(*id, &self.actor, None).await?;
                self.changed(&a, "promoted by", &next_step(&a))
            }
            Command::Release { id } => {
                let a = self.engine.release(*id, &self.actor, None).await?;
                self.changed(&a, "released by", &next_step(&a))
            }
            Command::Execute { id, dry_run: true } => {
                let outcome = self.engine.execute(*id, &self.actor, true).await?;
                self.print_execute(outcome)
            }
            Command::Execute { id, dry_run: false } => {
                let _lock = self.executor_lock().await?;
                let outcome = self.engine.execute(*id, &self.actor, false).await?;
                self.print_execute(outcome)
            }
            Command::ForceExecute { id, reason } => {
                let _lock = self.executor_lock().await?;
                let outcome = self.engine.force_execute(*id, &self.actor, reason.clone()).await?;
                self.print_execute(outcome)
            }
            Command::Rollback { id, note } => {
                let _lock = self.executor_lock().await?;
                let outcome = self.engine.rollback(*id, &self.actor, note.clone()).await?;
                self.print_rollback(outcome)
            }
            Command::Recover => {
                let _lock = self.executor_lock_only()?;
                let recovered = self.engine.recover().await?;
                match self.format {
                    Format::Json => {
                        outln!("{}", output::json(&json!(recovered.iter().map(recovery_json).collect::<Vec<_>>())))?
                    }
                    Format::Table if recovered.is_empty() => outln!("nothing to recover")?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = recovered
                            .iter()
                            .map(|r| vec![r.id.to_string(), r.from.to_string(), r.to.to_string(), r.note.clone()])
                            .collect();
                        out!("{}", output::table(&["ID", "WAS", "NOW", "WHAT HAPPENED"], &rows))?;
                    }
                }
                Ok(0)
            }
            Command::Connectors => self.connectors().await,
            Command::Plan { id } => self.plan(*id).await,
            Command::Settings { command } => self.settings(command).await,
            Command::Controls { command } => self.controls(command).await,
            Command::KillSwitch { command } => self.kill_switch(command).await,
            Command::Breaker { command } => self.breaker(command).await,
            Command::Limits { command: LimitsCommand::Status } => self.limits_status().await,
            Command::Held { command: HeldCommand::List } => self.held_list().await,
            Command::EmergencyAccess { command } => self.emergency(command).await,
            Command::Audit { command: AuditCommand::Verify } => self.audit_verify(),
            Command::Audit { command: AuditCommand::Export { since, out } } => {
                self.audit_export(*since, out.as_deref())
            }
            Command::Token { command } => self.token(command),
            Command::Init { .. } | Command::Demo => Ok(0),
        }
    }

    /// Takes the data directory's exclusive executor lock (waiting for another process that
    /// holds it), so only one process writes to providers at a time and every action found
    /// `executing` or `rolling_back` while holding it was left so by an interrupted process.
    fn executor_lock_only(&self) -> Result<ExecutorLock, Failure> {
        if let Some(lock) = ExecutorLock::try_acquire(&self.dir).map_err(runtime_failure)? {
            return Ok(lock);
        }
        errln!("waiting for another remediate process to finish executing in {}", self.dir.display());
        ExecutorLock::acquire(&self.dir).map_err(runtime_failure)
    }

    /// Takes the executor lock, then reconciles actions an interrupted process left behind.
    async fn executor_lock(&self) -> Result<ExecutorLock, Failure> {
        let lock = self.executor_lock_only()?;
        for r in self.engine.recover().await? {
            errln!("recovered {}: {} -> {}: {}", r.id, r.from, r.to, clean(&r.note));
        }
        Ok(lock)
    }

    /// `suggest`.
    pub(crate) async fn suggest(&self, args: &SuggestArgs) -> Result<u8, Failure> {
        let finding: Option<Finding> = match &args.finding {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::new(2, anyhow::anyhow!("cannot read the finding {}: {e}", path.display())))?;
                Some(serde_json::from_str(&text).map_err(|e| {
                    Failure::new(
                        2,
                        anyhow::anyhow!(
                            "{} is not a valid finding (line {}, column {}): {e}; see schemas/finding.schema.json",
                            path.display(),
                            e.line(),
                            e.column()
                        ),
                    )
                })?)
            }
            None => None,
        };
        let explicit_target = args.target.is_some() || args.identity.is_some();
        let target = match (&args.target, &finding) {
            (Some(json), _) => serde_json::from_str::<Target>(json).map_err(|e| {
                Failure::new(2, anyhow::anyhow!("--target is not a valid target ({e}); expected JSON like {{\"identity\":\"alice\",\"resource\":\"admins\",\"grant_type\":\"group_membership\"}}"))
            })?,
            (None, Some(f)) if !explicit_target => f.target.clone(),
            (None, _) => Target {
                identity: args.identity.clone().ok_or_else(|| usage("give --target JSON, or --identity with --grant-type"))?,
                resource: args.resource.clone(),
                grant: args.grant.clone(),
                grant_type: args.grant_type.clone().ok_or_else(|| usage("--grant-type is required with --identity"))?,
            },
        };
        let kind = match (args.kind, &args.to, &finding) {
            (None, None, Some(f)) => f.suggested_kind.clone(),
            (None, _, _) => return Err(usage("--kind is required (or a --finding that suggests one)")),
            (Some(KindName::Reduce), Some(to), _) => ActionKind::Reduce { to: to.clone() },
            (Some(KindName::Reduce), None, _) => return Err(usage("--kind reduce needs --to LEVEL")),
            (_, Some(_), _) => return Err(usage("--to is only used with --kind reduce")),
            (Some(KindName::Revoke), None, _) => ActionKind::Revoke,
            (Some(KindName::Suspend), None, _) => ActionKind::Suspend,
            (Some(KindName::RevokeSessions), None, _) => ActionKind::RevokeSessions,
            (Some(KindName::ForcePasswordReset), None, _) => ActionKind::ForcePasswordReset,
            (Some(KindName::Notify), None, _) => ActionKind::Notify,
        };
        let connector = args
            .connector
            .clone()
            .or_else(|| finding.as_ref().and_then(|f| f.connector.clone()))
            .ok_or_else(|| usage("--connector is required (the finding names none)"))?;
        let mut request = match &finding {
            Some(f) => f.to_request(&connector, args.dry_run),
            None => ActionRequest {
                connector,
                kind: kind.clone(),
                target: target.clone(),
                reason: String::new(),
                control_id: None,
                finding_id: None,
                dry_run: args.dry_run,
            },
        };
        request.kind = kind;
        request.target = target;
        if let Some(reason) = &args.reason {
            request.reason = reason.clone();
        }
        if args.control.is_some() {
            request.control_id = args.control.clone();
        }
        if args.finding_id.is_some() {
            request.finding_id = args.finding_id.clone();
        }
        let s = self.engine.suggest(request, &self.actor).await?;
        match self.format {
            Format::Json => {
                let guidance = (s.action.state == remediation_core::State::Suggested)
                    .then(|| remediation_core::guidance(&s.action, Some(&s.plan)));
                outln!(
                    "{}",
                    output::json(
                        &json!({"action": s.action, "plan": s.plan, "decision": s.decision, "guidance": guidance})
                    )
                )?
            }
            Format::Table => {
                outln!("{} {}", s.action.id, s.action.state)?;
                outln!("  plan:   {}", clean(&s.plan.description))?;
                outln!("  mode:   {} ({})", s.action.mode, s.plan.reversibility)?;
                outln!("  risk:   {} (blast-radius score {})", s.decision.risk.level, s.decision.risk.score)?;
                outln!("  hash:   {}", s.plan.plan_hash)?;
                for g in &s.decision.gates {
                    let verdict = if g.passed {
                        "pass"
                    } else if g.blocking {
                        "REFUSE"
                    } else {
                        "needs approval"
                    };
                    outln!("  gate {:<14} {verdict}: {}", g.gate, clean(&g.reason))?;
                }
                if s.action.state == remediation_core::State::Suggested {
                    let g = remediation_core::guidance(&s.action, Some(&s.plan));
                    outln!("Guidance (advisory: this action never executes by itself)")?;
                    outln!("  issue:           {}", clean(&g.issue))?;
                    outln!("  why it matters:  {}", clean(&g.why_it_matters))?;
                    for r in &g.recommended_actions {
                        outln!("  recommended:     {}", clean(r))?;
                    }
                    for (i, step) in g.manual_steps.iter().enumerate() {
                        outln!("  manual step {}:   {}", i + 1, clean(step))?;
                    }
                }
                let next = next_step(&s.action);
                if !next.is_empty() {
                    outln!("Next: {next}")?;
                }
            }
        }
        Ok(0)
    }

    async fn list(&self, state: Option<remediation_core::State>) -> Result<u8, Failure> {
        let actions = self.engine.list(&ActionFilter { state, ..ActionFilter::default() }).await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(actions)))?,
            Format::Table => {
                let rows: Vec<Vec<String>> = actions
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.to_string(),
                            a.state.to_string(),
                            a.kind.to_string(),
                            a.target.to_string(),
                            a.connector.clone(),
                            a.requested_by.clone(),
                            ts(a.updated_at),
                        ]
                    })
                    .collect();
                out!(
                    "{}",
                    output::table(&["ID", "STATE", "KIND", "TARGET", "CONNECTOR", "REQUESTED BY", "UPDATED"], &rows)
                )?;
            }
        }
        Ok(0)
    }

    async fn show(&self, id: ActionId) -> Result<u8, Failure> {
        let d = self.engine.get(id).await?;
        let transitions = self.engine.transitions(id).await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!({"detail": d, "transitions": transitions})))?,
            Format::Table => {
                let a = &d.action;
                outln!("action     {}", a.id)?;
                outln!("state      {}", a.state)?;
                outln!("kind       {}", a.kind)?;
                outln!("target     {}", clean(&a.target.to_string()))?;
                outln!("connector  {}", clean(&a.connector))?;
                outln!("mode       {}", a.mode)?;
                outln!("requested  {} at {}", clean(&a.requested_by), ts(a.created_at))?;
                outln!("reason     {}", clean(&a.reason))?;
                if let Some(c) = &a.control_id {
                    outln!("control    {}", clean(c))?;
                }
                if let Some(p) = &d.plan {
                    outln!("plan       {} [{}] hash {}", clean(&p.description), p.reversibility, p.plan_hash)?;
                    for c in remediation_core::diff::json_diff(&p.before.state, &p.expected_after.state) {
                        outln!("  change   {}", clean(&c.to_string()))?;
                    }
                }
                if let Some(b) = &d.before {
                    outln!("before     {}", clean(&b.state.to_string()))?;
                }
                if let Some(af) = &d.after {
                    outln!("after      {}", clean(&af.state.to_string()))?;
                }
                if let Some(until) = d.rollback_expires_at {
                    outln!("rollback   until {}", ts(until))?;
                }
                if let Some(e) = &d.last_error {
                    outln!("error      {}", clean(e))?;
                }
                outln!()?;
                let rows: Vec<Vec<String>> = transitions
                    .iter()
                    .map(|t| {
                        vec![
                            ts(t.at),
                            t.from.map_or_else(|| "(new)".to_owned(), |s| s.to_string()),
                            t.to.to_string(),
                            t.event.clone(),
                            t.actor.clone(),
                            t.comment.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                out!("{}", output::table(&["AT", "FROM", "TO", "EVENT", "ACTOR", "COMMENT"], &rows))?;
                // Plan changes void approvals: show what changed in full, not cut to a cell.
                for t in transitions.iter().filter(|t| t.event == remediation_core::Event::PlanChanged.as_str()) {
                    outln!("\nplan changed at {} (approvals void):", ts(t.at))?;
                    let comment = t.comment.as_deref().unwrap_or_default();
                    let changes = comment.split_once(": ").map_or(comment, |(_, c)| c);
                    for change in changes.split("; ") {
                        outln!("  {}", clean(change))?;
                    }
                }
            }
        }
        Ok(0)
    }

    fn changed(&self, a: &Action, verb: &str, next: &str) -> Result<u8, Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(a)))?,
            Format::Table => {
                outln!("{} {} ({verb} {})", a.id, a.state, clean(&self.actor.name))?;
                if !next.is_empty() {
                    outln!("Next: {next}")?;
                }
            }
        }
        Ok(0)
    }

    /// Prints an execution outcome and returns its exit code.
    pub(crate) fn print_execute(&self, outcome: ExecuteOutcome) -> Result<u8, Failure> {
        let (code, value, text) = match &outcome {
            ExecuteOutcome::Completed { action, after } => (
                0,
                json!({"outcome": "completed", "action": action, "after": after}),
                format!(
                    "{} completed; after-state {}\nNext: remediate rollback {} (inside the rollback window)",
                    action.id,
                    clean(&after.state.to_string()),
                    action.id
                ),
            ),
            ExecuteOutcome::Failed { action, error } => (
                5,
                json!({"outcome": "failed", "action": action, "error": error}),
                format!("{} failed: {}", action.id, clean(error)),
            ),
            ExecuteOutcome::Held { action, limit } => (
                3,
                json!({"outcome": "held", "action": action, "limit": limit}),
                format!(
                    "{} held: limit `{}` reached ({} of {} in {}s); an admin may `force-execute --reason` or `release` it",
                    action.id,
                    clean(&limit.slot.key),
                    limit.used,
                    limit.slot.limit,
                    limit.slot.window_secs
                ),
            ),
            ExecuteOutcome::HeldByBreaker { action } => (
                3,
                json!({"outcome": "held", "action": action, "breaker": true}),
                format!(
                    "{} held: the circuit breaker is tripped; an admin runs `remediate breaker reset --reason ...`, then `release` it",
                    action.id
                ),
            ),
            ExecuteOutcome::PlanChanged { action, changes } => (
                3,
                json!({"outcome": "plan_changed", "action": action, "changes": changes}),
                format!(
                    "{} is {}: the live state differs from the approved plan, so approvals are void:\n{}",
                    action.id,
                    action.state,
                    changes.iter().map(|c| format!("  {}", clean(&c.to_string()))).collect::<Vec<_>>().join("\n")
                ),
            ),
            ExecuteOutcome::DryRun { plan, decision, limit } => (
                0,
                json!({"outcome": "dry_run", "plan": plan, "decision": decision, "limit": limit}),
                format!(
                    "dry run, nothing written: {} (plan hash {}){}",
                    clean(&plan.description),
                    plan.plan_hash,
                    limit
                        .as_ref()
                        .map(|l| format!("; would be held by limit `{}`", clean(&l.slot.key)))
                        .unwrap_or_default()
                ),
            ),
        };
        match self.format {
            Format::Json => outln!("{}", output::json(&value))?,
            Format::Table => outln!("{text}")?,
        }
        Ok(code)
    }

    /// Prints a rollback outcome and returns its exit code.
    pub(crate) fn print_rollback(&self, outcome: RollbackOutcome) -> Result<u8, Failure> {
        let (code, value, text) = match &outcome {
            RollbackOutcome::RolledBack { action } => (
                0,
                json!({"outcome": "rolled_back", "action": action}),
                format!("{} rolled back; before-state restored and verified", action.id),
            ),
            RollbackOutcome::Failed { action, error } => (
                5,
                json!({"outcome": "failed", "action": action, "error": error}),
                format!("{} {}: {}", action.id, action.state, clean(error)),
            ),
        };
        match self.format {
            Format::Json => outln!("{}", output::json(&value))?,
            Format::Table => outln!("{text}")?,
        }
        Ok(code)
    }

    async fn connectors(&self) -> Result<u8, Failure> {
        let mut all = Vec::new();
        for c in self.engine.connectors() {
            let health = c.health().await;
            all.push(json!({
                "id": c.id(),
                "health": health.as_ref().map_err(ToString::to_string),
                "capabilities": c.capabilities(),
            }));
        }
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(all)))?,
            Format::Table => {
                let mut rows = Vec::new();
                for c in self.engine.connectors() {
                    for cap in c.capabilities() {
                        rows.push(vec![
                            c.id().to_owned(),
                            cap.kind.to_string(),
                            cap.grant_type.clone(),
                            cap.reversibility.to_string(),
                            cap.observable.to_string(),
                        ]);
                    }
                }
                out!("{}", output::table(&["CONNECTOR", "KIND", "GRANT TYPE", "REVERSIBILITY", "OBSERVABLE"], &rows))?;
            }
        }
        Ok(0)
    }

    /// `audit verify`: exit 0 when intact, 6 when a link is broken or the checkpoint does not
    /// match the chain (a cut-off tail, a rewritten chain, a forged or deleted checkpoint).
    pub(crate) fn audit_verify(&self) -> Result<u8, Failure> {
        let report = self.store.verify_audit().context("cannot read the audit trail")?;
        let ok = report.is_intact();
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(report)))?,
            Format::Table => {
                match &report.first_break {
                    None if ok => outln!(
                        "audit chain intact: {} records, head {}",
                        report.records,
                        report.head.as_deref().unwrap_or("(empty)")
                    )?,
                    None => outln!("AUDIT CHAIN BROKEN after checking {} records", report.records)?,
                    Some(b) => outln!("AUDIT CHAIN BROKEN after checking {} records: {b}", report.records)?,
                }
                outln!("{}", report.checkpoint)?;
            }
        }
        Ok(if ok { 0 } else { 6 })
    }

    fn audit_export(&self, since: Option<time::OffsetDateTime>, out: Option<&Path>) -> Result<u8, Failure> {
        let records = self.store.audit_records(since).context("cannot read the audit trail")?;
        let count = records.len();
        match out {
            Some(path) => {
                let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                let mut w = std::io::BufWriter::new(file);
                remediation_audit::write_jsonl(&records, &mut w)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                std::io::Write::flush(&mut w).with_context(|| format!("cannot write {}", path.display()))?;
                errln!("exported {count} audit records to {}", path.display());
            }
            None => {
                let stdout = std::io::stdout();
                let mut lock = stdout.lock();
                remediation_audit::write_jsonl(&records, &mut lock).context("cannot write to standard output")?;
            }
        }
        Ok(0)
    }
}

/// Maps a failure to assemble the engine to its exit code: configuration problems are 2.
pub(crate) fn runtime_failure(e: RuntimeError) -> Failure {
    let code = match &e {
        RuntimeError::Config(_) | RuntimeError::DataDirMissing { .. } | RuntimeError::Settings(_) => 2,
        _ => 1,
    };
    Failure::new(code, e)
}

/// The hook behind `REMEDIATION_FAILPOINT=name`: at that failpoint the process announces it on
/// standard error and stops, waiting to be killed (crash tests send SIGKILL).
fn failpoint_hook(point: String) -> remediation_core::FailpointHook {
    Arc::new(move |name: &'static str| {
        if name == point {
            errln!("failpoint {name} reached; waiting to be killed");
            loop {
                std::thread::park();
            }
        }
    })
}

fn recovery_json(r: &remediation_core::Recovery) -> serde_json::Value {
    json!({"id": r.id, "from": r.from, "to": r.to, "note": r.note})
}

fn usage(msg: &str) -> Failure {
    Failure::new(2, anyhow::anyhow!("{msg}"))
}

fn ts(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The command to run next for an action in its current state.
pub(crate) fn next_step(a: &Action) -> String {
    use remediation_core::State as S;
    match a.state {
        S::PendingApproval => format!("another approver runs `remediate approve {}`", a.id),
        S::Approved => format!("remediate execute {} (add --dry-run to check first)", a.id),
        S::Suggested => format!("advisory only; an admin may `remediate promote {}`", a.id),
        S::DryRun => "nothing was written; suggest again without --dry-run to act".to_owned(),
        _ => String::new(),
    }
}
