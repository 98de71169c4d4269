//! Commands on many actions at once: `approve`, `reject`, `cancel`, `execute` and `release`
//! with several ids or a filter. What will be done is printed first (as Terraform prints its
//! plan), confirmed on a terminal (`--yes` skips the question, and is required off a
//! terminal), then one outcome per action is printed; some failed and some did not is a normal
//! result with its own exit code, 7.

use std::io::IsTerminal as _;

use remediation_core::{Action, ActionId, State};
use serde_json::json;

use crate::Selection;
use crate::app::Ctx;
use crate::backend::Step;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, clean, errln, outln};

/// What is done to each selected action.
#[derive(Debug, Clone)]
pub(crate) enum Bulk {
    /// A lifecycle step, with its audit note.
    Step(Step, Option<String>),
    /// An execution (or a dry run of one).
    Execute {
        /// Write nothing.
        dry_run: bool,
    },
}

impl Bulk {
    fn verb(&self) -> &'static str {
        match self {
            Self::Step(Step::Approve, _) => "approve",
            Self::Step(Step::Reject, _) => "reject",
            Self::Step(Step::Cancel, _) => "cancel",
            Self::Step(Step::Promote, _) => "promote",
            Self::Step(Step::Release, _) => "release",
            Self::Execute { dry_run: true } => "dry-run",
            Self::Execute { dry_run: false } => "execute",
        }
    }

    /// The states the command applies to, when the filter names none.
    fn applies_to(&self) -> &'static [State] {
        match self {
            Self::Step(Step::Approve | Step::Reject, _) => &[State::PendingApproval, State::RollbackRequested],
            Self::Step(Step::Cancel, _) => &[State::Suggested, State::PendingApproval, State::Approved, State::Held],
            Self::Step(Step::Promote, _) => &[State::Suggested],
            Self::Step(Step::Release, _) => &[State::Held],
            Self::Execute { .. } => &[State::Approved],
        }
    }
}

impl Selection {
    /// The one id, when exactly one was given and no filter: the command acts as it always did.
    pub(crate) fn single(&self) -> Option<ActionId> {
        match self.ids.as_slice() {
            [id] if self.state.is_none()
                && self.control.is_none()
                && self.connector.is_none()
                && self.campaign.is_none() =>
            {
                Some(*id)
            }
            _ => None,
        }
    }

    fn is_filter(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `a` passes the filter (`--state`, else the states `bulk` applies to).
    fn admits(&self, a: &Action, bulk: &Bulk) -> bool {
        let state_ok = match self.state {
            Some(s) => a.state == s,
            None => bulk.applies_to().contains(&a.state),
        };
        state_ok
            && self.control.as_ref().is_none_or(|c| a.control_id.as_ref() == Some(c))
            && self.connector.as_ref().is_none_or(|c| &a.connector == c)
            && self.campaign.as_ref().is_none_or(|c| a.campaign.as_ref() == Some(c))
    }
}

/// One row of the outcome table.
struct Done {
    id: ActionId,
    ok: bool,
    outcome: String,
    detail: String,
    code: u8,
}

impl Ctx {
    /// Acts on every action `sel` names (see the module documentation).
    pub(crate) async fn many(&self, sel: &Selection, bulk: Bulk) -> Result<u8, Failure> {
        let verb = bulk.verb();
        let chosen: Vec<Action> = if sel.is_filter() {
            let mut all = Vec::new();
            for state in sel.state.map_or_else(|| bulk.applies_to().to_vec(), |s| vec![s]) {
                let filter = remediation_core::ActionFilter {
                    state: Some(state),
                    control: sel.control.clone(),
                    connector: sel.connector.clone(),
                    campaign: sel.campaign.clone(),
                    ..remediation_core::ActionFilter::default()
                };
                all.extend(self.backend.list(&filter).await?);
            }
            all.retain(|a| sel.admits(a, &bulk));
            all.sort_by_key(|a| (a.created_at, a.id));
            all
        } else {
            let mut seen = std::collections::BTreeSet::new();
            let mut out = Vec::new();
            for id in &sel.ids {
                if seen.insert(*id) {
                    out.push(self.backend.view(*id).await.map_err(|f| f.about_action(*id, verb))?.detail.action);
                }
            }
            out
        };
        if chosen.is_empty() {
            if self.format == Format::Json {
                outln!("{}", output::json(&json!({"selected": 0, "items": []})))?;
            } else {
                outln!("No actions match; nothing to {verb}.")?;
            }
            return Ok(0);
        }
        if self.format == Format::Table {
            outln!("remediate will {verb} {} action(s):", chosen.len())?;
            let rows: Vec<Vec<String>> = chosen
                .iter()
                .map(|a| {
                    vec![
                        format!("  {}", a.id),
                        a.state.to_string(),
                        a.kind.to_string(),
                        clean(&a.target.to_string()),
                        clean(&a.connector),
                        clean(a.control_id.as_deref().unwrap_or("-")),
                    ]
                })
                .collect();
            outln!("{}", laid_out(&["  ID", "STATE", "KIND", "TARGET", "CONNECTOR", "CONTROL"], &rows).trim_end())?;
            outln!("Plan: {} to {verb}.", chosen.len())?;
        }
        if !sel.yes {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::new(
                    ExitCode::Usage,
                    anyhow::anyhow!(
                        "{verb} would act on {} actions; add --yes to confirm without a terminal",
                        chosen.len()
                    ),
                ));
            }
            errln!("Do you want to {verb} these {} actions? Only 'yes' will be accepted:", chosen.len());
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if answer.trim() != "yes" {
                errln!("{verb} cancelled: nothing was done.");
                return Ok(ExitCode::Refused.code());
            }
        }
        let mut done = Vec::with_capacity(chosen.len());
        for a in &chosen {
            done.push(self.one(a.id, &bulk).await);
        }
        let failed = done.iter().filter(|d| !d.ok).count();
        match self.format {
            Format::Json => {
                let items: Vec<_> = done
                    .iter()
                    .map(|d| json!({"id": d.id, "ok": d.ok, "outcome": d.outcome, "detail": d.detail, "exit_code": d.code}))
                    .collect();
                outln!(
                    "{}",
                    output::json(
                        &json!({"selected": done.len(), "done": done.len() - failed, "failed": failed, "items": items})
                    )
                )?;
            }
            Format::Table => {
                let rows: Vec<Vec<String>> =
                    done.iter().map(|d| vec![d.id.to_string(), d.outcome.clone(), clean(&d.detail)]).collect();
                outln!("{}", laid_out(&["ID", "OUTCOME", "DETAIL"], &rows).trim_end())?;
                outln!("{} of {} done, {failed} not.", done.len() - failed, done.len())?;
            }
        }
        Ok(if failed == 0 { 0 } else { PARTIAL })
    }

    async fn one(&self, id: ActionId, bulk: &Bulk) -> Done {
        let verb = bulk.verb();
        match bulk {
            Bulk::Step(step, note) => match self.backend.step(*step, id, &self.actor, note.clone()).await {
                Ok((a, _)) => {
                    // Approving a requested rollback ran it; a failed restore is no success.
                    let ok = a.state != State::Failed;
                    Done { id, ok, outcome: a.state.to_string(), detail: String::new(), code: if ok { 0 } else { 5 } }
                }
                Err(f) => {
                    let f = f.about_action(id, verb);
                    Done { id, ok: false, outcome: "refused".to_owned(), detail: f.to_string(), code: f.code() }
                }
            },
            Bulk::Execute { dry_run } => match self.backend.execute(id, &self.actor, *dry_run).await {
                Ok(outcome) => {
                    let v = &outcome.view;
                    let ok = matches!(v.outcome.as_str(), "completed" | "dry_run");
                    let detail = v.error.clone().unwrap_or_default();
                    Done { id, ok, outcome: v.outcome.clone(), detail, code: if ok { 0 } else { 3 } }
                }
                Err(f) => {
                    let f = f.about_action(id, verb);
                    Done { id, ok: false, outcome: "refused".to_owned(), detail: f.to_string(), code: f.code() }
                }
            },
        }
    }
}

/// `rows` under `headers`, fitted to the terminal (ids and states whole), or whole when
/// standard output is not one (a script reads every reason in full).
fn laid_out(headers: &[&str], rows: &[Vec<String>]) -> String {
    let keep: Vec<bool> = (0..headers.len()).map(|i| i < 2).collect();
    let mut table = output::StreamedTable::with_layout(headers, output::Terminal::of_stdout().layout(&keep), None);
    let mut out = table.rows(rows);
    out.push_str(&table.end());
    out
}

/// The exit code of a command on many actions of which some were not done.
pub(crate) const PARTIAL: u8 = 7;
