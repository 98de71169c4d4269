//! `remediate identities ...`, `remediate respond ...` and `remediate playbook ...`: incident
//! response, locally or with `--server`.

use clap::Subcommand;
use remediation_service::incident::{IdentityView, Links, RespondOutcome, RespondRequest, RespondResult};
use remediation_service::playbooks::{Playbook, PlaybookEntry, Run, RunPlan, RunState};
use serde_json::json;

use crate::app::Ctx;
use crate::backend::{Backend, url_segment};
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, clean, outln, table};

/// `remediate identities ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum IdentitiesCommand {
    /// A person's accounts in every connection (by verified email or login, or an explicit
    /// link), with each connector's view: status, groups, sessions where observable.
    Show {
        /// The person: a verified email or login (`alice@example.com`).
        identity: String,
    },
    /// Link a person to an account of one connection explicitly (admin), where no verified
    /// key matches (a GitHub login), or remove the link with `--remove`.
    Link {
        /// The person.
        identity: String,
        /// The connection.
        #[arg(long)]
        connector: String,
        /// The account in it (the provider's id or login).
        #[arg(long, required_unless_present = "remove", conflicts_with = "remove")]
        account: Option<String>,
        /// Remove the connection's link instead.
        #[arg(long)]
        remove: bool,
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
    },
}

/// `remediate respond ...` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct RespondArgs {
    /// The person: a verified email or login (`alice@example.com`).
    pub(crate) identity: String,
    /// End their sign-in sessions everywhere (an emergency kind by default: runs at once).
    #[arg(long)]
    pub(crate) revoke_sessions: bool,
    /// Make them choose a new password at next sign-in (an emergency kind by default).
    #[arg(long)]
    pub(crate) force_password_reset: bool,
    /// Suspend their accounts (waits for approval unless listed in `emergency_kinds`).
    #[arg(long)]
    pub(crate) suspend: bool,
    /// Record a notification to them where a connection can.
    #[arg(long)]
    pub(crate) notify: bool,
    /// Why (kept in the audit with your name).
    #[arg(long)]
    pub(crate) reason: String,
    /// The finding that prompted it.
    #[arg(long)]
    pub(crate) finding: Option<String>,
}

/// `remediate playbook ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PlaybookCommand {
    /// Every playbook in force: built in, `<data dir>/playbooks/*.toml`, saved ones.
    List,
    /// One playbook's steps.
    Show {
        /// The playbook.
        name: String,
    },
    /// Save a playbook from a TOML file through the store (admin; a higher version).
    Save {
        /// The TOML file.
        file: std::path::PathBuf,
    },
    /// The whole plan of a playbook for a person: every step's change and one plan hash.
    /// Writes nothing.
    Plan {
        /// The playbook.
        name: String,
        /// The person.
        #[arg(long)]
        identity: String,
        /// Why.
        #[arg(long, default_value = "plan")]
        reason: String,
    },
    /// Ask for a run: planned now, it waits for one approval of the whole plan.
    Run {
        /// The playbook.
        name: String,
        /// The person.
        #[arg(long)]
        identity: String,
        /// Why (kept with every step's action).
        #[arg(long)]
        reason: String,
        /// The plan hash you looked at (`playbook plan`); refused when the plan differs now.
        #[arg(long)]
        plan_hash: Option<String>,
    },
    /// Every run, newest first.
    Runs,
    /// One run: its steps, their actions and outcomes, and what happened.
    Status {
        /// The run's id.
        run: String,
    },
    /// Approve a run's whole plan (not its requester); at quorum it runs at once.
    Approve {
        /// The run's id.
        run: String,
        /// The plan hash you approve; refused when the run's plan differs.
        #[arg(long)]
        plan_hash: Option<String>,
        /// A note for the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a run waiting for approval.
    Reject {
        /// The run's id.
        run: String,
        /// A note for the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Continue a paused run whose held step was released or forced, or a run a stopped
    /// process left running (no step runs twice).
    Resume {
        /// The run's id.
        run: String,
    },
    /// Roll back a completed run: the first call asks, a second principal's carries it out
    /// (reversible steps in reverse order; irreversible ones are listed).
    Rollback {
        /// The run's id.
        run: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

impl Ctx {
    /// `remediate identities ...`.
    pub(crate) async fn identities(&self, command: &IdentitiesCommand) -> Result<u8, Failure> {
        match command {
            IdentitiesCommand::Show { identity } => {
                let view: IdentityView = match &self.backend {
                    Backend::Local(l) => remediation_service::incident::identity(&l.runtime, identity).await?,
                    Backend::Remote(r) => r.get(&format!("/v1/identities/{}", url_segment(identity))).await?,
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(view)))?,
                    Format::Table => print_identity(&view)?,
                }
                Ok(if view.accounts.is_empty() { ExitCode::NotFound.code() } else { 0 })
            }
            IdentitiesCommand::Link { identity, connector, account, remove: _, reason } => {
                let links: Links = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::incident::link_account(
                            &l.runtime,
                            &self.actor,
                            identity,
                            connector,
                            account.as_deref(),
                            reason,
                        )
                        .await?
                    }
                    Backend::Remote(r) => {
                        let body = json!({"connector": connector, "account": account, "reason": reason});
                        r.post(&format!("/v1/identities/{}/links", url_segment(identity)), &body).await?
                    }
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(links)))?,
                    Format::Table => {
                        if links.links.is_empty() {
                            outln!("{} has no explicit links", clean(identity))?;
                        }
                        for link in &links.links {
                            outln!("{} -> {} in {}", clean(identity), clean(&link.account), clean(&link.connector))?;
                        }
                    }
                }
                Ok(0)
            }
        }
    }

    /// `remediate respond ...`: exits 0 (every applicable step completed), 5 (every one failed
    /// at the provider), 7 (partly), or as the refusal: 3 (disabled, kill switch, role), 2
    /// (unknown action, nothing can do it), 4 (no connection knows the person).
    pub(crate) async fn respond(&self, args: &RespondArgs) -> Result<u8, Failure> {
        let mut actions = Vec::new();
        for (on, name) in [
            (args.revoke_sessions, "revoke_sessions"),
            (args.force_password_reset, "force_password_reset"),
            (args.suspend, "suspend"),
            (args.notify, "notify"),
        ] {
            if on {
                actions.push(name.to_owned());
            }
        }
        if actions.is_empty() {
            return Err(Failure::new(
                ExitCode::Usage,
                anyhow::anyhow!(
                    "name at least one action: --revoke-sessions, --force-password-reset, --suspend, --notify"
                ),
            ));
        }
        let request = RespondRequest { actions, reason: args.reason.clone(), finding: args.finding.clone() };
        let result: RespondResult = match &self.backend {
            Backend::Local(l) => {
                remediation_service::incident::respond(&l.runtime, &self.actor, &args.identity, &request).await?
            }
            Backend::Remote(r) => {
                r.post_multi(&format!("/v1/identities/{}/respond", url_segment(&args.identity)), &request).await?
            }
        };
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(result)))?,
            Format::Table => {
                let rows: Vec<Vec<String>> = result
                    .steps
                    .iter()
                    .map(|s| {
                        vec![
                            clean(&s.connector),
                            clean(&s.account),
                            s.action.to_string(),
                            s.status.as_str().to_owned(),
                            s.handle.map_or_else(|| "-".to_owned(), |h| format!("#{h}")),
                            clean(s.message.as_deref().unwrap_or("")),
                        ]
                    })
                    .collect();
                outln!(
                    "{}",
                    table(&["CONNECTION", "ACCOUNT", "ACTION", "OUTCOME", "ACTION ID", "DETAIL"], &rows).trim_end()
                )?;
                for p in &result.lookup_failures {
                    outln!(
                        "{} could not be asked ({}): the person may still have access there",
                        clean(&p.connector),
                        clean(&p.message)
                    )?;
                }
                let summary = match result.outcome {
                    RespondOutcome::Completed => "every applicable step completed",
                    RespondOutcome::Failed => "every applicable step failed at the provider",
                    RespondOutcome::Partial => "partly done: see each step",
                };
                outln!("{}: {summary}", clean(&result.identity))?;
            }
        }
        Ok(match result.outcome {
            RespondOutcome::Completed => 0,
            RespondOutcome::Failed => ExitCode::Provider.code(),
            RespondOutcome::Partial => 7,
        })
    }

    /// `remediate playbook ...`.
    pub(crate) async fn playbook(&self, command: &PlaybookCommand) -> Result<u8, Failure> {
        match command {
            PlaybookCommand::List => {
                let all: Vec<PlaybookEntry> = match &self.backend {
                    Backend::Local(l) => remediation_service::playbooks::playbooks(&l.runtime).await?,
                    Backend::Remote(r) => {
                        let list: remediation_api::incident::PlaybookList = r.get("/v1/playbooks").await?;
                        list.items
                    }
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"items": all})))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = all
                            .iter()
                            .map(|e| {
                                vec![
                                    clean(&e.playbook.name),
                                    e.playbook.version.to_string(),
                                    e.playbook.steps.len().to_string(),
                                    clean(&e.source),
                                    clean(&e.playbook.description),
                                ]
                            })
                            .collect();
                        outln!(
                            "{}",
                            table(&["PLAYBOOK", "VERSION", "STEPS", "SOURCE", "DESCRIPTION"], &rows).trim_end()
                        )?;
                    }
                }
                Ok(0)
            }
            PlaybookCommand::Show { name } => {
                let entry: PlaybookEntry = match &self.backend {
                    Backend::Local(l) => remediation_service::playbooks::playbook(&l.runtime, name).await?,
                    Backend::Remote(r) => r.get(&format!("/v1/playbooks/{}", url_segment(name))).await?,
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(entry)))?,
                    Format::Table => {
                        outln!(
                            "{} version {} ({})",
                            clean(&entry.playbook.name),
                            entry.playbook.version,
                            clean(&entry.source)
                        )?;
                        outln!("{}", clean(&entry.playbook.description))?;
                        for (i, step) in entry.playbook.steps.iter().enumerate() {
                            let on = step
                                .connections
                                .as_ref()
                                .map_or_else(|| "every connection that can".to_owned(), |c| c.join(", "));
                            let groups = if step.groups.is_empty() {
                                String::new()
                            } else {
                                format!(" groups {}", step.groups.join(", "))
                            };
                            outln!("  {}. {}{} on {}", i + 1, step.action, clean(&groups), clean(&on))?;
                        }
                    }
                }
                Ok(0)
            }
            PlaybookCommand::Save { file } => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Failure::new(ExitCode::Usage, anyhow::anyhow!("cannot read {}: {e}", file.display()))
                })?;
                let playbook = Playbook::from_toml(&text)
                    .map_err(|e| Failure::new(ExitCode::Usage, anyhow::anyhow!("{}: {e}", file.display())))?;
                let saved: PlaybookEntry = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::save_playbook(&l.runtime, &self.actor, playbook).await?
                    }
                    Backend::Remote(r) => r.post("/v1/playbooks", &playbook).await?,
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(saved)))?,
                    Format::Table => {
                        outln!("playbook {} version {} saved", clean(&saved.playbook.name), saved.playbook.version)?
                    }
                }
                Ok(0)
            }
            PlaybookCommand::Plan { name, identity, reason } => {
                let plan: RunPlan = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::plan_playbook(&l.runtime, &self.actor, name, identity, reason)
                            .await?
                    }
                    Backend::Remote(r) => {
                        let body = json!({"identity": identity, "reason": reason});
                        r.post(&format!("/v1/playbooks/{}/plan", url_segment(name)), &body).await?
                    }
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(plan)))?,
                    Format::Table => {
                        outln!(
                            "playbook {} version {} for {}",
                            clean(&plan.playbook),
                            plan.version,
                            clean(&plan.identity)
                        )?;
                        print_steps(&plan.steps, true)?;
                        outln!("plan hash {}", plan.plan_hash)?;
                        outln!("approvals needed: {}", plan.approvals_needed)?;
                        outln!(
                            "next: remediate playbook run {} --identity {} --reason ... --plan-hash {}",
                            clean(&plan.playbook),
                            clean(&plan.identity),
                            plan.plan_hash
                        )?;
                    }
                }
                Ok(0)
            }
            PlaybookCommand::Run { name, identity, reason, plan_hash } => {
                let run: Run = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::start_run(
                            &l.runtime,
                            &self.actor,
                            name,
                            identity,
                            reason,
                            plan_hash.as_deref(),
                        )
                        .await?
                    }
                    Backend::Remote(r) => {
                        let body = json!({"identity": identity, "reason": reason, "plan_hash": plan_hash});
                        r.post(&format!("/v1/playbooks/{}/runs", url_segment(name)), &body).await?
                    }
                };
                self.print_run(&run)?;
                if self.format == Format::Table {
                    outln!(
                        "next: another approver runs `remediate playbook approve {} --plan-hash {}`",
                        run.id,
                        run.plan_hash
                    )?;
                }
                Ok(0)
            }
            PlaybookCommand::Runs => {
                let runs: Vec<Run> = match &self.backend {
                    Backend::Local(l) => remediation_service::playbooks::runs(&l.runtime).await?,
                    Backend::Remote(r) => {
                        let list: remediation_api::incident::RunList = r.get("/v1/runs").await?;
                        list.items
                    }
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"items": runs})))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = runs
                            .iter()
                            .map(|r| {
                                vec![
                                    r.id.clone(),
                                    clean(&r.playbook),
                                    clean(&r.identity),
                                    r.state.as_str().to_owned(),
                                    clean(&r.requested_by),
                                    r.steps.len().to_string(),
                                ]
                            })
                            .collect();
                        outln!(
                            "{}",
                            table(&["RUN", "PLAYBOOK", "IDENTITY", "STATE", "REQUESTED BY", "STEPS"], &rows).trim_end()
                        )?;
                    }
                }
                Ok(0)
            }
            PlaybookCommand::Status { run } => {
                let run = self.fetch_run(run).await?;
                self.print_run(&run)?;
                Ok(run_exit(&run))
            }
            PlaybookCommand::Approve { run, plan_hash, note } => {
                let run: Run = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::approve_run(
                            &l.runtime,
                            &self.actor,
                            run,
                            plan_hash.as_deref(),
                            note.as_deref(),
                        )
                        .await?
                    }
                    Backend::Remote(r) => {
                        let body = json!({"plan_hash": plan_hash, "note": note});
                        r.post(&format!("/v1/runs/{}/approve", url_segment(run)), &body).await?
                    }
                };
                self.print_run(&run)?;
                Ok(run_exit(&run))
            }
            PlaybookCommand::Reject { run, note } => {
                let run: Run = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::reject_run(&l.runtime, &self.actor, run, note.as_deref())
                            .await?
                    }
                    Backend::Remote(r) => {
                        r.post(&format!("/v1/runs/{}/reject", url_segment(run)), &json!({"note": note})).await?
                    }
                };
                self.print_run(&run)?;
                Ok(0)
            }
            PlaybookCommand::Resume { run } => {
                let run: Run = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::resume_run(&l.runtime, &self.actor, run).await?
                    }
                    Backend::Remote(r) => r.post(&format!("/v1/runs/{}/resume", url_segment(run)), &json!({})).await?,
                };
                self.print_run(&run)?;
                Ok(run_exit(&run))
            }
            PlaybookCommand::Rollback { run, reason } => {
                let run: Run = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::playbooks::rollback_run(&l.runtime, &self.actor, run, reason).await?
                    }
                    Backend::Remote(r) => {
                        r.post(&format!("/v1/runs/{}/rollback", url_segment(run)), &json!({"reason": reason})).await?
                    }
                };
                self.print_run(&run)?;
                Ok(run_exit(&run))
            }
        }
    }

    async fn fetch_run(&self, id: &str) -> Result<Run, Failure> {
        Ok(match &self.backend {
            Backend::Local(l) => remediation_service::playbooks::run(&l.runtime, id).await?,
            Backend::Remote(r) => r.get(&format!("/v1/runs/{}", url_segment(id))).await?,
        })
    }

    fn print_run(&self, run: &Run) -> Result<(), Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(run)))?,
            Format::Table => {
                outln!(
                    "run {} of {} version {} for {}: {}",
                    run.id,
                    clean(&run.playbook),
                    run.version,
                    clean(&run.identity),
                    run.state.as_str()
                )?;
                outln!(
                    "requested by {}; approvals {}/{}{}",
                    clean(&run.requested_by),
                    run.approvals.len(),
                    run.approvals_needed,
                    if run.approvals.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", clean(&run.approvals.join(", ")))
                    }
                )?;
                print_steps(&run.steps, run.state == RunState::PendingApproval)?;
                outln!("plan hash {}", run.plan_hash)?;
                for line in &run.report {
                    outln!("  {}", clean(line))?;
                }
            }
        }
        Ok(())
    }
}

/// A run's exit code: 0 done (or waiting for approval), 3 paused or rolled back on request, 5
/// compensated after a failure, 7 needing attention.
fn run_exit(run: &Run) -> u8 {
    match run.state {
        RunState::Completed | RunState::PendingApproval | RunState::RolledBack | RunState::RollbackRequested => 0,
        RunState::Running | RunState::Paused | RunState::Rejected => ExitCode::Refused.code(),
        RunState::Compensated => ExitCode::Provider.code(),
        RunState::FailedNeedsAttention => 7,
    }
}

fn print_identity(view: &IdentityView) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = view
        .accounts
        .iter()
        .map(|f| {
            let a = &f.account;
            vec![
                clean(&f.connector),
                clean(&f.type_name),
                clean(&a.id),
                clean(&a.login),
                clean(&a.matched_by),
                clean(a.status.as_deref().unwrap_or("-")),
                a.groups.as_ref().map_or_else(|| "-".to_owned(), |g| clean(&g.join(","))),
                a.sessions.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                f.can.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    outln!(
        "{}",
        table(&["CONNECTION", "TYPE", "ACCOUNT", "LOGIN", "MATCHED BY", "STATUS", "GROUPS", "SESSIONS", "CAN"], &rows)
            .trim_end()
    )?;
    if !view.not_found.is_empty() {
        outln!("not found in: {}", clean(&view.not_found.join(", ")))?;
    }
    for p in &view.problems {
        outln!("{} could not look: {} ({})", clean(&p.connector), p.outcome, clean(&p.message))?;
    }
    Ok(())
}

fn print_steps(steps: &[remediation_service::playbooks::RunStep], with_diff: bool) -> Result<(), Failure> {
    for s in steps {
        let handle = s.handle.map_or_else(String::new, |h| format!(" #{h}"));
        let state = s.state.as_str().replace('_', " ");
        outln!(
            "  {:>2}. [{state}]{handle} {} {} on {}",
            s.number,
            clean(&s.connector),
            s.kind,
            clean(&s.target.to_string())
        )?;
        if let Some(m) = &s.message {
            outln!("      {}", clean(m))?;
        }
        if with_diff && let Some(plan) = &s.plan {
            outln!("      {} ({})", clean(&plan.description), plan.reversibility)?;
            for change in remediation_core::diff::json_diff(&plan.before.state, &plan.expected_after.state) {
                outln!("        {}", clean(&change.to_string()))?;
            }
        }
    }
    Ok(())
}
