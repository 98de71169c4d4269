//! Wiring and the subcommands: builds the engine from the configuration and runs one command.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use remediation_api::types::{ConnectorView, FindingsReply, SuggestionView};
use remediation_core::{Action, ActionId, ActionKind, Actor, Finding, KindName, Target};
use remediation_service::SuggestRequest;
use remediation_service::scanner::{self, DocumentFormat};

use crate::admin::{HeldCommand, LimitsCommand};
use crate::backend::{Backend, Local, Outcome, Remote, Step, TOKEN_ENV, only_local};
use crate::bulk::Bulk;
use secrecy::SecretString;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::exit::ExitCode;
use crate::failure::{Failure, runtime_failure};
use crate::keys::create_audit_key;
use crate::output::{self, Format, clean, errln, out, outln};
use crate::{AuditCommand, Cli, Command, SuggestArgs};
use remediation_runtime::LoadedConfig;

use remediation_runtime::{AUDIT_KEY_FILE, CONFIG_FILE, SIGNING_KEY_FILE, STORE_FILE};

/// Runs one command and returns its exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Init { .. } if cli.server.is_some() => Err(only_local("init")),
        Command::Demo if cli.server.is_some() => Err(only_local("demo")),
        Command::Token { .. } if cli.server.is_some() => Err(only_local("token")),
        Command::Principal { .. } if cli.server.is_some() => Err(only_local("principal")),
        Command::Recover if cli.server.is_some() => Err(only_local("recover")),
        Command::EmergencyAccess { .. } if cli.server.is_some() => Err(only_local("emergency-access")),
        Command::Migrate if cli.server.is_some() => Err(only_local("migrate")),
        Command::Store { .. } if cli.server.is_some() => Err(only_local("store")),
        Command::Connections { .. } if cli.server.is_some() => Err(only_local("connections")),
        Command::Keys { .. } if cli.server.is_some() => Err(only_local("keys")),
        Command::Init { force } => init(&cli, *force).await,
        Command::Migrate => crate::storecmd::migrate(&cli).await,
        Command::Store { command } => crate::storecmd::run(&cli, command).await,
        Command::Demo => crate::demo::run(cli.output).await,
        Command::Completions { shell } => completions(*shell),
        Command::Man => man(),
        _ => {
            let ctx = Ctx::open(&cli).await?;
            let mut command = cli.command;
            ctx.resolve_handles(&mut command).await?;
            let result = ctx.dispatch(&command).await;
            ctx.sequence_pending().await;
            ctx.sign_tree_head().await;
            if !matches!(command, Command::Events { .. }) {
                ctx.flush_events().await;
            }
            result
        }
    }
}

/// `completions SHELL`: the completion script, generated from the command line definition.
fn completions(shell: clap_complete::Shell) -> Result<u8, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::examples::command(), "remediate", &mut script);
    out!("{}", String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// `man`: the manual page in roff.
fn man() -> Result<u8, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(crate::examples::command()).render(&mut page).context("cannot render the manual page")?;
    out!("{}", String::from_utf8_lossy(&page))?;
    Ok(0)
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("remediation-data"))
}

async fn init(cli: &Cli, force: bool) -> Result<u8, Failure> {
    let dir = data_dir(cli);
    // Owner-only: the directory holds the store, token hashes and (by default) the audit key.
    remediation_runtime::files::create_data_dir(&dir).map_err(|e| Failure::new(ExitCode::Internal, e))?;
    let config_path = cli.config.clone().unwrap_or_else(|| dir.join(CONFIG_FILE));
    if config_path.exists() && !force {
        return Err(Failure::new(
            ExitCode::Refused,
            anyhow::anyhow!("{} already exists; pass --force to overwrite it", config_path.display()),
        ));
    }
    remediation_runtime::files::write_private(
        &config_path,
        remediation_config::initial_config(&local_actor(None)).as_bytes(),
    )
    .map_err(anyhow::Error::new)?;
    let sandbox = dir.join("sandbox.json");
    if force || !sandbox.exists() {
        remediation_connector_sandbox::write_sample(&sandbox)
            .with_context(|| format!("cannot write the sample sandbox directory {}", sandbox.display()))?;
    }
    let key_path = dir.join(AUDIT_KEY_FILE);
    let key = if key_path.exists() {
        // Kept, never replaced: the store's checkpoint is sealed with it.
        let settings = remediation_config::AuditSettings {
            hmac_key_file: Some(AUDIT_KEY_FILE.into()),
            ..remediation_config::AuditSettings::default()
        };
        settings
            .load_key(&config_path, &dir)
            .map_err(|e| Failure::new(ExitCode::Usage, e))?
            .ok_or_else(|| usage("no audit key"))?
    } else {
        create_audit_key(&key_path)?
    };
    let signing_path = dir.join(SIGNING_KEY_FILE);
    if !signing_path.exists() {
        // Kept when it exists, as the checkpoint key is: heads signed with it must stay
        // verifiable, and `audit rotate-key` is how a key is replaced.
        remediation_audit::LogSigningKey::generate()
            .write_new_file(&signing_path)
            .with_context(|| format!("cannot create the signing key file {}", signing_path.display()))?;
    }
    remediation_runtime::files::create_private(&dir.join(STORE_FILE)).map_err(anyhow::Error::new)?;
    let store = remediation_store_sqlite::open_store(dir.join(STORE_FILE), Some(key))
        .with_context(|| "cannot create the store")?;
    // An existing store (init --force) whose records predate the key is adopted here, the
    // one deliberate moment for it, and only if its chain verifies.
    if let Err(e) = store.adopt_audit_chain().await {
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
        "  signing key: {}  (private, mode 0600: signs tree heads; `remediate audit key` prints the public key)",
        signing_path.display()
    )?;
    outln!(
        "  actors:  {} is admin; every other local actor is a requester until [actors] says otherwise",
        clean(&local_actor(None))
    )?;
    outln!(
        "Next: remediate --data-dir {} suggest --connector sandbox --kind revoke --identity alice --resource admins --grant-type group_membership --reason \"...\"",
        dir.display()
    )?;
    Ok(0)
}

/// The local actor: `--actor` as given (self-asserted), else `local:$USER`.
pub(crate) fn local_actor(given: Option<&str>) -> String {
    given.map_or_else(
        || {
            format!(
                "local:{}",
                std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
            )
        },
        str::to_owned,
    )
}

/// Everything a command needs: who acts, how to print, and where the command runs.
pub(crate) struct Ctx {
    /// Local data directory or server.
    pub(crate) backend: Backend,
    /// Who acts (locally; a server takes the actor from the token).
    pub(crate) actor: Actor,
    /// Output format.
    pub(crate) format: Format,
}

impl Ctx {
    /// Replaces every handle the command names (parsed into a placeholder by
    /// [`crate::handle::parse_action`]) by the id of its action.
    async fn resolve_handles(&self, command: &mut Command) -> Result<(), Failure> {
        let mut ids: Vec<&mut ActionId> = match command {
            Command::Show { id }
            | Command::Promote { id }
            | Command::ForceExecute { id, .. }
            | Command::Rollback { id, .. }
            | Command::Plan { id }
            | Command::Audit { command: AuditCommand::Prove { id, .. } } => vec![id],
            Command::Approve { sel, .. }
            | Command::Reject { sel, .. }
            | Command::Cancel { sel, .. }
            | Command::Release { sel }
            | Command::Execute { sel, .. } => sel.ids.iter_mut().collect(),
            _ => Vec::new(),
        };
        for id in &mut ids {
            if let Some(handle) = crate::handle::handle_of(**id) {
                **id = self.backend.action_by_handle(handle).await?;
            }
        }
        Ok(())
    }

    /// Whether the command runs against a server (whose worker executes approved actions).
    pub(crate) fn remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    async fn open(cli: &Cli) -> Result<Self, Failure> {
        if let Some(url) = &cli.server {
            if cli.actor.is_some() {
                errln!("note: --actor is ignored with --server: the server records the token's name as the actor");
            }
            let token = std::env::var(TOKEN_ENV).ok().map(SecretString::from);
            let remote = Remote::new(url, token)?.for_tenant(&cli.tenant);
            return Ok(Self { backend: Backend::Remote(remote), actor: Actor::system(), format: cli.output });
        }
        let loaded = LoadedConfig::discover(cli.config.as_deref(), cli.data_dir.as_deref()).map_err(runtime_failure)?;
        let actor_name = local_actor(cli.actor.as_deref());
        let actor = Actor::new(actor_name.clone(), loaded.config.actors.role_of(&actor_name));
        // A missing data directory is reported by `build`, which says to run `init`.
        let key = loaded.audit_key().map_err(runtime_failure)?;
        let signing = loaded.signing_key().map_err(runtime_failure)?;
        let local = Local::build(&loaded.config, &loaded.dir, key, signing, &cli.tenant, Some(&loaded.path))
            .await
            .map_err(|f| f.context(format!("using configuration {}", loaded.path.display())))?;
        Ok(Self { backend: Backend::Local(Box::new(local)), actor, format: cli.output })
    }

    /// Seals the audit entries left unsequenced (a shared store's commands write entries for
    /// a sequencer; when no server runs, the CLI is it). Another process holding the
    /// sequencer lease seals them instead; a failure leaves them for the next command.
    async fn sequence_pending(&self) {
        let Backend::Local(local) = &self.backend else {
            return;
        };
        if let Err(e) = local.store.sequence_pending().await {
            errln!(
                "warning: the audit entries of this command are not sequenced yet ({e}); the next command or a server seals them"
            );
        }
    }

    async fn dispatch(&self, command: &Command) -> Result<u8, Failure> {
        for a in self.backend.expire_stale().await? {
            if a.state == remediation_core::State::Completed {
                errln!("rollback request for {} closed: not approved before its rollback window ended", a.id);
            } else {
                errln!("expired {}: not approved in time", a.id);
            }
        }
        match command {
            Command::Suggest(args) => self.suggest(args).await,
            Command::Import { file, format, connector, campaign } => {
                self.import(file, *format, connector.clone(), campaign.clone()).await
            }
            Command::Campaign(c) => match c {
                crate::CampaignCommand::List => self.campaign_list().await,
                crate::CampaignCommand::Show { name } => self.campaign_show(name).await,
                crate::CampaignCommand::Resume { name } => self.campaign_resume(name).await,
            },
            Command::List { state, limit, campaign } => self.list(*state, campaign.clone(), *limit).await,
            Command::Show { id } => self.show(*id).await,
            Command::Approve { sel, note } => match sel.single() {
                Some(id) => self.step(Step::Approve, id, note.clone(), "approved by").await,
                None => self.many(sel, Bulk::Step(Step::Approve, note.clone())).await,
            },
            Command::Reject { sel, note } => match sel.single() {
                Some(id) => self.step(Step::Reject, id, note.clone(), "rejected by").await,
                None => self.many(sel, Bulk::Step(Step::Reject, note.clone())).await,
            },
            Command::Cancel { sel, note } => match sel.single() {
                Some(id) => self.step(Step::Cancel, id, note.clone(), "cancelled by").await,
                None => self.many(sel, Bulk::Step(Step::Cancel, note.clone())).await,
            },
            Command::Promote { id } => self.step(Step::Promote, *id, None, "promoted by").await,
            Command::Release { sel } => match sel.single() {
                Some(id) => self.step(Step::Release, id, None, "released by").await,
                None => self.many(sel, Bulk::Step(Step::Release, None)).await,
            },
            Command::Execute { sel, dry_run } => match sel.single() {
                Some(id) => {
                    let outcome = self
                        .backend
                        .execute(id, &self.actor, *dry_run)
                        .await
                        .map_err(|f| f.about_action(id, "execute"))?;
                    self.print_outcome(&outcome)
                }
                None => self.many(sel, Bulk::Execute { dry_run: *dry_run }).await,
            },
            Command::ForceExecute { id, reason } => {
                let outcome = self
                    .backend
                    .force_execute(*id, &self.actor, reason.clone())
                    .await
                    .map_err(|f| f.about_action(*id, "force-execute"))?;
                self.print_outcome(&outcome)
            }
            Command::Rollback { id, note } => {
                let outcome = self
                    .backend
                    .rollback(*id, &self.actor, note.clone())
                    .await
                    .map_err(|f| f.about_action(*id, "roll back"))?;
                self.print_outcome(&outcome)
            }
            Command::Recover => {
                let local = self.backend.local("recover")?;
                let remediation_service::Recovered { recovered, still_leased } =
                    remediation_service::recover(&local.runtime).await?;
                // Left to the live worker holding them: a worker that died is taken over
                // once its lease lapses.
                for l in &still_leased {
                    errln!(
                        "{} ({}) is leased to worker {} until {}; left to it (run `remediate recover` again after that if it does not settle)",
                        l.id,
                        l.state,
                        clean(&l.holder),
                        ts(l.expires_at)
                    );
                }
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
            Command::Connectors { command } => self.connectors(command.is_some()).await,
            Command::Connections { command } => self.connections(command).await,
            Command::Keys { command } => self.keys(command).await,
            Command::Identities { command } => self.identities(command).await,
            Command::Respond(args) => self.respond(args).await,
            Command::Playbook { command } => self.playbook(command).await,
            Command::Plan { id } => self.plan(*id).await,
            Command::Settings { command } => self.settings(command).await,
            Command::Tenants { command } => self.tenants(command).await,
            Command::Controls { command } => self.controls(command).await,
            Command::KillSwitch { command } => self.kill_switch(command).await,
            Command::Breaker { command } => self.breaker(command).await,
            Command::Limits { command: LimitsCommand::Status } => self.limits_status().await,
            Command::Held { command: HeldCommand::List } => self.held_list().await,
            Command::Events { command } => self.events(command).await,
            Command::Report { command } => self.report(command).await,
            Command::EmergencyAccess { command } => self.emergency(command).await,
            Command::Audit { command: AuditCommand::Verify } => {
                // What this or an earlier command left pending is sealed before it is verified.
                self.sequence_pending().await;
                self.audit_verify().await
            }
            Command::Audit { command: AuditCommand::Export { since, out } } => {
                self.audit_export(*since, out.as_deref()).await
            }
            Command::Audit { command: AuditCommand::Key } => self.audit_key().await,
            Command::Audit { command: AuditCommand::RotateKey } => self.audit_rotate_key().await,
            Command::Audit { command: AuditCommand::TreeHead } => self.audit_tree_head().await,
            Command::Audit { command: AuditCommand::Archive { before, out } } => self.audit_archive(*before, out).await,
            Command::Audit { command: AuditCommand::Prove { id, tree_size } } => {
                self.audit_prove(*id, *tree_size).await
            }
            Command::Audit { command: AuditCommand::Consistency { old_size, new_size } } => {
                self.audit_consistency(*old_size, *new_size).await
            }
            Command::Token { command } => self.token(command).await,
            Command::Principal { command } => self.principal(command).await,
            Command::Pending { command } => self.pending(command).await,
            Command::Init { .. }
            | Command::Demo
            | Command::Migrate
            | Command::Store { .. }
            | Command::Completions { .. }
            | Command::Man => Ok(0),
        }
    }

    /// Approve, reject, cancel, promote or release, and say who did it.
    async fn step(&self, step: Step, id: ActionId, note: Option<String>, verb: &str) -> Result<u8, Failure> {
        let command = match step {
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::Cancel => "cancel",
            Step::Promote => "promote",
            Step::Release => "release",
        };
        let (a, who) = self.backend.step(step, id, &self.actor, note).await.map_err(|f| f.about_action(id, command))?;
        let next = match step {
            Step::Reject | Step::Cancel => String::new(),
            // Approving a requested rollback ran it; a failed restore needs attention.
            Step::Approve if a.state == remediation_core::State::Failed => {
                format!("the rollback failed and needs attention: see `remediate show {}`", a.id)
            }
            _ => next_step(&a, self.remote()),
        };
        let code = self.changed(&a, &who, verb, &next)?;
        Ok(if step == Step::Approve && a.state == remediation_core::State::Failed { 5 } else { code })
    }

    /// `suggest`.
    pub(crate) async fn suggest(&self, args: &SuggestArgs) -> Result<u8, Failure> {
        let finding: Option<Finding> = match &args.finding {
            Some(path) => {
                let text = crate::import::read_input(path)?;
                // JSON Lines (or values one after another) are an array of findings.
                let value = scanner::parse_stream(&text).ok();
                let declared = args.finding_format;
                if let Some(value) = value
                    && (scanner::is_document(&value) || declared.is_some_and(|d| d != DocumentFormat::Finding))
                {
                    return self.suggest_document(args, value).await;
                }
                Some(serde_json::from_str(&text).map_err(|e| {
                    Failure::new(
                        ExitCode::Usage,
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
        if let Some(f) = &finding {
            let overridden = args.connector.is_some() || args.says_what_to_do() || args.dry_run;
            // A bare finding goes through intake, which never opens a second action for the
            // same control and target and picks the connector when the finding names none.
            if !overridden {
                let answer = self.backend.intake(f, &self.actor).await?;
                return self.print_intake(answer);
            }
        }
        let explicit_target = args.target.is_some() || args.identity.is_some();
        let target = match (&args.target, &finding) {
            (Some(json), _) => serde_json::from_str::<Target>(json).map_err(|e| {
                Failure::new(ExitCode::Usage, anyhow::anyhow!("--target is not a valid target ({e}); expected JSON like {{\"identity\":\"alice\",\"resource\":\"admins\",\"grant_type\":\"group_membership\"}}"))
            })?,
            (None, Some(f)) if !explicit_target => f.target.clone(),
            (None, _) => Target {
                identity: args.identity.clone().ok_or_else(|| usage("give --target JSON, or --identity with --grant-type"))?,
                resource: args.resource.clone(),
                grant: args.grant.clone(),
                grant_type: args.grant_type.clone().ok_or_else(|| usage("--grant-type is required with --identity"))?,
            },
        };
        if args.setting.is_some() && args.kind != Some(KindName::Enforce) {
            return Err(usage("--setting and --value are only used with --kind enforce"));
        }
        let kind = match (args.kind, &args.to, &finding) {
            (Some(KindName::Enforce), None, _) => match (&args.setting, &args.value) {
                (Some(setting), Some(value)) => ActionKind::Enforce { setting: setting.clone(), value: value.clone() },
                _ => return Err(usage("--kind enforce needs --setting NAME and --value VALUE")),
            },
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
            (Some(KindName::Rotate), None, _) => ActionKind::Rotate,
        };
        // Without a connector (neither given nor named by the finding) the suggest use case
        // picks the one healthy connector that can do it, or refuses listing every candidate.
        let connector = args.connector.clone().or_else(|| finding.as_ref().and_then(|f| f.connector.clone()));
        let mut request = match &finding {
            Some(f) => SuggestRequest { connector, ..SuggestRequest::from(f.to_request("", args.dry_run)) },
            None => SuggestRequest {
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
        let s = self.backend.suggest(request, &self.actor).await?;
        self.print_suggestion(&s)
    }

    /// `suggest --finding DOCUMENT`: every entry of a scanner's document, through intake (or
    /// planned as a dry run), one line per entry.
    async fn suggest_document(&self, args: &SuggestArgs, document: serde_json::Value) -> Result<u8, Failure> {
        if args.says_what_to_do() {
            return Err(usage(
                "a scanner's document supplies each finding's kind, target, control and reason; only --connector, --dry-run and --finding-format combine with it",
            ));
        }
        let reply = if args.dry_run {
            self.plan_document(args, document).await?
        } else {
            self.backend.intake_document(document, args.finding_format, args.connector.clone(), &self.actor).await?
        };
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(reply)))?,
            Format::Table => {
                for e in &reply.entries {
                    let what = match (&e.action, &e.reason) {
                        (Some(a), _) => format!("{} {}", a.id, a.state),
                        (None, Some(reason)) => clean(reason),
                        (None, None) => String::new(),
                    };
                    outln!("#{} {} {}: {what}", e.index, e.control_id.as_deref().unwrap_or("-"), e.intake)?;
                }
            }
        }
        let broken = reply.entries.iter().any(|e| e.intake == "failed" || e.intake == "invalid");
        Ok(if broken { ExitCode::Refused.code() } else { 0 })
    }

    /// `--dry-run` with a document: each finding planned as a dry run (nothing written), the
    /// rest reported as read.
    async fn plan_document(&self, args: &SuggestArgs, document: serde_json::Value) -> Result<FindingsReply, Failure> {
        use remediation_api::types::FindingEntryReply;
        use scanner::EntryOutcome;
        let doc = scanner::read_findings_value(document, args.finding_format, &scanner::ReadOptions::default())
            .map_err(|e| Failure::new(ExitCode::Usage, anyhow::Error::new(e).context("not a findings document")))?;
        let mut entries = Vec::with_capacity(doc.entries.len());
        for e in doc.entries {
            let (intake, reason, action) = match e.outcome {
                EntryOutcome::Finding(f) => {
                    let connector = args.connector.clone().or_else(|| f.connector.clone());
                    let request = SuggestRequest { connector, ..SuggestRequest::from(f.to_request("", true)) };
                    match self.backend.suggest(request, &self.actor).await {
                        Ok(s) => ("dry_run", None, Some(s.action)),
                        Err(failure) => ("failed", Some(failure.to_string()), None),
                    }
                }
                EntryOutcome::NothingToDo { reason } => ("nothing_to_do", Some(reason), None),
                EntryOutcome::Unsupported { reason } => ("unsupported", Some(reason), None),
                EntryOutcome::Invalid { reason } => ("invalid", Some(reason), None),
                other => ("invalid", Some(format!("not read ({})", other.label())), None),
            };
            entries.push(FindingEntryReply {
                index: e.index,
                finding_id: e.finding_id,
                control_id: e.control_id,
                intake: intake.to_owned(),
                reason,
                error_code: None,
                action,
            });
        }
        Ok(FindingsReply { format: doc.format.map(|f| f.as_str().to_owned()), entries })
    }

    /// Prints the server's answer to a finding: a new suggestion, or the action already open
    /// for the same control and target.
    fn print_intake(&self, answer: serde_json::Value) -> Result<u8, Failure> {
        if !answer["plan"].is_null() {
            let s: SuggestionView = serde_json::from_value(answer).map_err(|e| {
                Failure::new(ExitCode::Internal, anyhow::anyhow!("the server's suggestion cannot be read: {e}"))
            })?;
            return self.print_suggestion(&s);
        }
        let a: Action = serde_json::from_value(answer["action"].clone()).map_err(|e| {
            Failure::new(ExitCode::Internal, anyhow::anyhow!("the server's answer names no action: {e}"))
        })?;
        let intake = answer["intake"].as_str().unwrap_or_default();
        match self.format {
            Format::Json => outln!("{}", output::json(&answer))?,
            Format::Table if intake == "did_not_hold" => outln!(
                "{} {}: this fix did not hold (the finding is back); decide by hand, see `remediate show {}`",
                a.id,
                a.state,
                a.id
            )?,
            Format::Table => {
                outln!("{} {} (already open for this control and target; nothing new suggested)", a.id, a.state)?
            }
        }
        Ok(0)
    }

    /// Prints a stored suggestion.
    fn print_suggestion(&self, s: &SuggestionView) -> Result<u8, Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(s)))?,
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
                if let Some(g) = &s.guidance {
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
                let next = next_step(&s.action, self.remote());
                if !next.is_empty() {
                    outln!("Next: {next}")?;
                }
            }
        }
        Ok(0)
    }

    /// `list`: pages through the store (or the server), printing each page as it arrives, so
    /// memory stays bounded by one page however many actions are stored.
    async fn list(
        &self,
        state: Option<remediation_core::State>,
        campaign: Option<String>,
        limit: Option<u64>,
    ) -> Result<u8, Failure> {
        let filter = remediation_core::ActionFilter { state, campaign, ..remediation_core::ActionFilter::default() };
        const HEADERS: [&str; 9] = ["#", "ID", "STATE", "RISK", "KIND", "TARGET", "CONNECTOR", "REQUESTED BY", "AGE"];
        /// Ids, states, risks and ages stay whole; the free text is what narrows to fit.
        const KEEP: [bool; 9] = [true, true, true, true, false, false, false, false, true];
        let mut left = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut after = None;
        let terminal = output::Terminal::of_stdout();
        let mut table = output::StreamedTable::with_layout(
            &HEADERS,
            terminal.layout(&KEEP),
            terminal.colour.then_some(list_painter as output::Painter),
        );
        let mut json = output::StreamedJsonArray::default();
        let mut listed = 0_usize;
        let now = time::OffsetDateTime::now_utc();
        loop {
            let (actions, next) = self.backend.list_page(&filter, after, LIST_PAGE.min(left)).await?;
            left = left.saturating_sub(actions.len());
            listed += actions.len();
            match self.format {
                Format::Json => {
                    for a in &actions {
                        out!("{}", json.item(&json!(a)))?;
                    }
                }
                Format::Table if actions.is_empty() => {}
                Format::Table => {
                    let mut rows: Vec<Vec<String>> = Vec::with_capacity(actions.len());
                    for a in &actions {
                        rows.push(vec![
                            a.handle.map_or_else(String::new, |h| format!("#{h}")),
                            a.id.to_string(),
                            a.state.to_string(),
                            self.risk(a).await?,
                            a.kind.to_string(),
                            a.target.to_string(),
                            a.connector.clone(),
                            a.requested_by.clone(),
                            crate::when::age(a.created_at, now),
                        ]);
                    }
                    out!("{}", table.rows(&rows))?;
                }
            }
            match next {
                Some(n) if left > 0 => after = Some(n),
                _ => break,
            }
        }
        match self.format {
            Format::Json => outln!("{}", json.end())?,
            Format::Table if listed == 0 => outln!("No actions found.")?,
            Format::Table => out!("{}", table.end())?,
        }
        Ok(0)
    }

    /// The risk of an action's current plan as the risk gate judges it (level and blast-radius
    /// score: the kind, how well the plan can be undone, and how far it reaches); `-` for an
    /// action without a plan.
    async fn risk(&self, a: &Action) -> Result<String, Failure> {
        let plan = match self.backend.plan(a.id).await {
            Ok(plan) => plan,
            Err(f) if f.code() == ExitCode::NotFound.code() => return Ok("-".to_owned()),
            Err(f) => return Err(f),
        };
        let score = remediation_gates::blast_radius_reaching(a.kind.name(), plan.reversibility, plan.reach);
        let risk = remediation_core::Risk::from_score(score);
        Ok(format!("{} ({})", risk.level, risk.score))
    }

    async fn show(&self, id: ActionId) -> Result<u8, Failure> {
        let view = self.backend.view(id).await?;
        let (d, transitions) = (&view.detail, &view.transitions);
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(view)))?,
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
                // The restore is shown beside the execution's after-state, never in its place.
                if let Some(r) = &d.restored {
                    outln!("restored   {}", clean(&r.state.to_string()))?;
                }
                let irreversible =
                    d.plan.as_ref().is_some_and(|p| p.reversibility == remediation_core::Reversibility::Irreversible);
                if irreversible && d.before.is_some() {
                    outln!("rollback   none: this change cannot be undone")?;
                } else if let Some(until) = d.rollback_expires_at
                    && matches!(
                        a.state,
                        remediation_core::State::Completed | remediation_core::State::RollbackRequested
                    )
                {
                    outln!("rollback   until {}", ts(until))?;
                }
                if let Some(parent) = d.follows {
                    let when = d.not_before.map(ts).unwrap_or_default();
                    outln!("follows    {parent}; runs once its rollback window has closed, not before {when}")?;
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

    fn changed(&self, a: &Action, who: &str, verb: &str, next: &str) -> Result<u8, Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(a)))?,
            Format::Table => {
                outln!("{} {} ({verb} {})", a.id, a.state, clean(who))?;
                if !next.is_empty() {
                    outln!("Next: {next}")?;
                }
            }
        }
        Ok(0)
    }

    /// Prints an execution or rollback outcome and returns its exit code.
    pub(crate) fn print_outcome(&self, outcome: &Outcome) -> Result<u8, Failure> {
        let v = &outcome.view;
        let Some(action) = &v.action else {
            // A dry run: the plan and the gates' verdicts; nothing was written.
            let (Some(plan), Some(decision)) = (&v.plan, &v.decision) else {
                return Err(Failure::new(
                    ExitCode::Internal,
                    anyhow::anyhow!("the outcome `{}` names no action", clean(&v.outcome)),
                ));
            };
            let value = json!({"outcome": "dry_run", "plan": plan, "decision": decision, "limit": v.limit});
            let text = format!(
                "dry run, nothing written: {} (plan hash {}){}",
                clean(&plan.description),
                plan.plan_hash,
                v.limit
                    .as_ref()
                    .map(|l| format!("; would be held by limit `{}`", clean(&l.slot.key)))
                    .unwrap_or_default()
            );
            return self.print_value(0, &value, &text);
        };
        let error = v.error.as_deref().unwrap_or_default();
        let (code, value, text) = match v.outcome.as_str() {
            "completed" => {
                let after = v.after.as_ref().map(|a| a.state.to_string()).unwrap_or_default();
                // Only a change that can be undone advertises a rollback.
                let next = match v.rollback_expires_at {
                    Some(until) => format!("Next: remediate rollback {} (until {})", action.id, ts(until)),
                    None => "this change cannot be undone".to_owned(),
                };
                (
                    0,
                    json!({
                        "outcome": "completed",
                        "action": action,
                        "after": v.after,
                        "rollback_expires_at": v.rollback_expires_at.map(ts),
                    }),
                    format!("{} completed; after-state {}\n{next}", action.id, clean(&after)),
                )
            }
            "rollback_requested" => (
                3,
                json!({"outcome": "rollback_requested", "action": action}),
                format!(
                    "{} rollback_requested: the rollback waits for a different approver\nNext: {}",
                    action.id,
                    next_step(action, self.remote())
                ),
            ),
            "rolled_back" => (
                0,
                json!({"outcome": "rolled_back", "action": action}),
                format!("{} rolled back; before-state restored and verified", action.id),
            ),
            "restored_pending_acceptance" => (
                0,
                json!({"outcome": "restored_pending_acceptance", "action": action}),
                format!(
                    "{} rolled back; access waits for {} to accept the invitation",
                    action.id,
                    clean(&action.target.identity)
                ),
            ),
            "failed" if outcome.rollback => (
                5,
                json!({"outcome": "failed", "action": action, "error": error}),
                format!("{} {}: {}", action.id, action.state, clean(error)),
            ),
            "failed" => (
                5,
                json!({"outcome": "failed", "action": action, "error": error}),
                format!("{} failed: {}", action.id, clean(error)),
            ),
            "held" if v.breaker => (
                3,
                json!({"outcome": "held", "action": action, "breaker": true}),
                format!(
                    "{} held: the circuit breaker is tripped; an admin runs `remediate breaker reset --reason ...`, then `release` it",
                    action.id
                ),
            ),
            "held" => {
                let text = match &v.limit {
                    Some(limit) => format!(
                        "{} held: limit `{}` reached ({} of {} in {}s){}; an admin may `force-execute --reason` or `release` it (a release before then is held again)",
                        action.id,
                        clean(&limit.slot.key),
                        limit.used,
                        limit.slot.limit,
                        limit.slot.window_secs,
                        limit.frees_at.map_or_else(String::new, |at| format!("; the window frees at {}", ts(at)))
                    ),
                    None => format!("{} held; an admin may `force-execute --reason` or `release` it", action.id),
                };
                (3, json!({"outcome": "held", "action": action, "limit": v.limit}), text)
            }
            "plan_changed" => (
                3,
                json!({"outcome": "plan_changed", "action": action, "changes": outcome.changes}),
                format!(
                    "{} is {}: the live state differs from the approved plan, so approvals are void:\n{}",
                    action.id,
                    action.state,
                    v.changes.iter().map(|c| format!("  {}", clean(c))).collect::<Vec<_>>().join("\n")
                ),
            ),
            "requeued" => {
                let after = v.not_before.map_or_else(|| "later".to_owned(), |t| format!("after {}", ts(t)));
                (
                    3,
                    json!({"outcome": "requeued", "action": action, "not_before": v.not_before.map(ts)}),
                    format!(
                        "{} requeued: the provider throttled the change and nothing was written; it is {} again \
                         and is retried {after} (the server's worker retries it, or run `execute` again)",
                        action.id, action.state
                    ),
                )
            }
            other => {
                return Err(Failure::new(
                    ExitCode::Internal,
                    anyhow::anyhow!("unknown outcome `{}` for {}", clean(other), action.id),
                ));
            }
        };
        self.print_value(code, &value, &text)
    }

    /// Prints `value` (JSON) or `text` (table) and returns `code`.
    fn print_value(&self, code: u8, value: &serde_json::Value, text: &str) -> Result<u8, Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(value))?,
            Format::Table => outln!("{text}")?,
        }
        Ok(code)
    }

    async fn connectors(&self, check: bool) -> Result<u8, Failure> {
        let all = self.backend.connectors(check).await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(all)))?,
            Format::Table if check => {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|c| {
                        let permissions = match &c.permissions {
                            Some(p) => output::permissions(p),
                            None => "not checked".to_owned(),
                        };
                        let capabilities = c
                            .capabilities
                            .iter()
                            .map(|cap| format!("{} {} ({})", cap.kind, cap.grant_type, cap.reversibility))
                            .collect::<Vec<_>>()
                            .join("; ");
                        vec![c.id.clone(), c.health.clone(), permissions, capabilities]
                    })
                    .collect();
                out!("{}", output::table(&["CONNECTOR", "HEALTH", "PERMISSIONS", "CAPABILITIES"], &rows))?;
            }
            Format::Table => {
                let mut rows = Vec::new();
                for c in &all {
                    for cap in &c.capabilities {
                        rows.push(vec![
                            c.id.clone(),
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
        Ok(if check && !all.iter().all(ConnectorView::ready) { 5 } else { 0 })
    }

    /// `audit verify`: exit 0 when intact, 6 when a link is broken or the checkpoint does not
    /// match the chain (a cut-off tail, a rewritten chain, a forged or deleted checkpoint).
    pub(crate) async fn audit_verify(&self) -> Result<u8, Failure> {
        let verification = self.backend.audit_verify().await?;
        let ok = verification.is_intact();
        let report = &verification.chain;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(verification)))?,
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
                outln!("{}", verification.tree_head)?;
                if let Some(note) = verification.unsequenced_note() {
                    outln!("{note}")?;
                }
            }
        }
        Ok(if ok { ExitCode::Success } else { ExitCode::AuditBroken }.code())
    }

    /// Signs a tree head over the local log when it grew during the command (see
    /// `remediation_service::sign_tree_head`): what a command wrote is covered by a signed head
    /// before the process exits. A log that does not extend the latest signed head is not
    /// signed over, and said so on standard error.
    async fn sign_tree_head(&self) {
        if let Backend::Local(local) = &self.backend
            && let Err(e) = remediation_service::sign_tree_head(&local.runtime, None).await
        {
            errln!("warning: no tree head signed: {}", clean(&format!("{:#}", anyhow::Error::new(e))));
        }
    }

    /// `audit key`: the published public keys.
    async fn audit_key(&self) -> Result<u8, Failure> {
        let keys = self.backend.audit_keys().await?;
        match self.format {
            Format::Json => outln!("{}", output::artifact_json(&json!(keys)))?,
            Format::Table if keys.keys.is_empty() => {
                outln!("no key published yet: a key is published with the first signed tree head")?
            }
            Format::Table => {
                let rows: Vec<Vec<String>> = keys
                    .keys
                    .iter()
                    .map(|k| vec![k.key_id.clone(), k.algorithm.clone(), k.public_key.clone()])
                    .collect();
                out!("{}", output::table(&["KEY ID", "ALGORITHM", "PUBLIC KEY"], &rows))?;
            }
        }
        Ok(0)
    }

    /// `audit rotate-key`: a new signing key; the old public key stays published.
    async fn audit_rotate_key(&self) -> Result<u8, Failure> {
        let local = self.backend.local("audit rotate-key")?;
        let path = local.signing_key_path.clone().ok_or_else(|| {
            usage("no signing key is configured: name one with `signing_key` under [audit] in remediation.toml (`remediate init` does)")
        })?;
        let rotated = remediation_service::rotate_signing_key(&local.runtime, &self.actor, &path).await?;
        match self.format {
            Format::Json => {
                outln!("{}", output::json(&json!({"old": rotated.old, "new": rotated.new, "tree_head": rotated.head})))?
            }
            Format::Table => {
                if let Some(old) = &rotated.old {
                    outln!("retired key {} (still published: heads it signed keep verifying)", old.key_id)?;
                }
                outln!("new signing key {} written to {} (mode 0600)", rotated.new.key_id, path.display())?;
                if let Some(head) = &rotated.head {
                    outln!("signed tree head of {} records with the new key", head.head.tree_size)?;
                }
            }
        }
        Ok(0)
    }

    /// `audit archive`: older records to a verified archive file, then out of the store.
    async fn audit_archive(&self, before: time::OffsetDateTime, out: &Path) -> Result<u8, Failure> {
        let local = self.backend.local("audit archive")?;
        let retention = time::Duration::days(i64::from(local.retention_days));
        let done = remediation_service::archive_audit(&local.runtime, &self.actor, before, retention, out).await?;
        match self.format {
            Format::Json => outln!(
                "{}",
                output::json(&json!({
                    "file": done.file, "records": done.records, "through_seq": done.through_seq, "tree_size": done.tree_size
                }))
            )?,
            Format::Table => outln!(
                "archived {} records (through seq {}) to {}, proved against the signed tree head of {} records; their leaf hashes stay in the log",
                done.records,
                done.through_seq,
                done.file.display(),
                done.tree_size
            )?,
        }
        Ok(0)
    }

    /// `audit tree-head`: the latest signed tree head.
    async fn audit_tree_head(&self) -> Result<u8, Failure> {
        let head = self.backend.audit_tree_head().await?;
        match self.format {
            Format::Json => outln!("{}", output::artifact_json(&json!(head)))?,
            Format::Table => {
                outln!("tree size: {}", head.head.tree_size)?;
                outln!("root hash: {}", head.head.root_hash)?;
                outln!("timestamp: {}", ts(head.head.timestamp))?;
                outln!("key id:    {}", head.head.key_id)?;
                outln!("signature: {}", head.signature)?;
            }
        }
        Ok(0)
    }

    /// `audit prove ID`: inclusion proofs of the action's records.
    async fn audit_prove(&self, id: ActionId, tree_size: Option<u64>) -> Result<u8, Failure> {
        let bundle = self.backend.audit_prove(id, tree_size).await?;
        match self.format {
            Format::Json => outln!("{}", output::artifact_json(&json!(bundle)))?,
            Format::Table => {
                match &bundle.tree_head {
                    Some(h) => outln!(
                        "tree head: {} records, root {}, key {}",
                        h.head.tree_size,
                        h.head.root_hash,
                        h.head.key_id
                    )?,
                    None => outln!("tree of {} records (no signed head of that size is stored)", bundle.tree_size)?,
                }
                let rows: Vec<Vec<String>> = bundle
                    .proofs
                    .iter()
                    .map(|p| {
                        vec![
                            p.record.seq.to_string(),
                            p.record.body.event().to_owned(),
                            p.proof.leaf_hash.to_hex(),
                            p.proof.path.len().to_string(),
                        ]
                    })
                    .collect();
                out!("{}", output::table(&["SEQ", "EVENT", "LEAF HASH", "PATH HASHES"], &rows))?;
                outln!(
                    "check with: remediate audit prove {id} --output json, then tests/verify_log.py inclusion-bundle"
                )?;
            }
        }
        Ok(0)
    }

    /// `audit consistency OLD_SIZE`: the proof that today's log extends the old one.
    async fn audit_consistency(&self, old_size: u64, new_size: Option<u64>) -> Result<u8, Failure> {
        let bundle = self.backend.audit_consistency(old_size, new_size).await?;
        match self.format {
            Format::Json => outln!("{}", output::artifact_json(&json!(bundle)))?,
            Format::Table => {
                let head = &bundle.tree_head.head;
                outln!("tree head: {} records, root {}, key {}", head.tree_size, head.root_hash, head.key_id)?;
                outln!("consistency proof from {} records: {} hashes", old_size, bundle.proof.path.len())?;
                for h in &bundle.proof.path {
                    outln!("  {h}")?;
                }
                outln!("check it against the head you hold with tests/verify_log.py consistency-bundle")?;
            }
        }
        Ok(0)
    }

    async fn audit_export(&self, since: Option<time::OffsetDateTime>, out: Option<&Path>) -> Result<u8, Failure> {
        let records = self.backend.audit_records(since).await?;
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

fn recovery_json(r: &remediation_core::Recovery) -> serde_json::Value {
    json!({"id": r.id, "from": r.from, "to": r.to, "note": r.note})
}

fn usage(msg: &str) -> Failure {
    Failure::new(ExitCode::Usage, anyhow::anyhow!("{msg}"))
}

/// The colours of `list`: its state and risk columns.
fn list_painter(column: usize, cell: &str) -> anstyle::Style {
    match column {
        2 => output::state_style(cell),
        3 => output::risk_style(cell),
        _ => anstyle::Style::new(),
    }
}

/// Actions read per page by `list`.
const LIST_PAGE: usize = 500;

fn ts(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The command to run next for an action in its current state.
/// What to do next with `a`, in words that fit where the command ran: against a server, whose
/// worker executes approved actions by itself, an approved action needs nothing more.
pub(crate) fn next_step(a: &Action, remote: bool) -> String {
    use remediation_service::NextStep as N;
    match remediation_service::next_step(a) {
        Some(N::Approve(id)) => format!("another approver runs `remediate approve {id}`"),
        Some(N::Execute(id)) if remote => {
            format!("the server's worker executes it; follow it with `remediate show {id}`")
        }
        Some(N::Execute(id)) => format!("remediate execute {id} (add --dry-run to check first)"),
        Some(N::Promote(id)) => format!("advisory only; an admin may `remediate promote {id}`"),
        Some(N::SuggestAgain) => "nothing was written; suggest again without --dry-run to act".to_owned(),
        Some(N::DecideRollback(id)) => format!(
            "another approver runs `remediate approve {id}` to roll it back, or `remediate reject {id}` to keep the change"
        ),
        None => String::new(),
    }
}

impl SuggestArgs {
    /// Whether any flag says what the action is (its kind and parameters, target, reason,
    /// control or finding id), beyond what a `--finding` supplies: a single finding then
    /// takes them as overrides, and a scanner's document refuses them.
    fn says_what_to_do(&self) -> bool {
        self.kind.is_some()
            || self.to.is_some()
            || self.setting.is_some()
            || self.value.is_some()
            || self.target.is_some()
            || self.identity.is_some()
            || self.resource.is_some()
            || self.grant.is_some()
            || self.grant_type.is_some()
            || self.reason.is_some()
            || self.control.is_some()
            || self.finding_id.is_some()
    }
}
