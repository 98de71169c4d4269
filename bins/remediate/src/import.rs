//! `remediate import FILE|-` and `remediate campaign list|show|resume`: many findings at once (a
//! JSON array, JSON Lines, or a scanner's document) taken in as a named campaign, each as
//! `suggest --finding` takes one (deduplicated by control and canonical target), with a
//! progress bar on a terminal and a summary at the end.
//!
//! The campaign and all its entries are stored before the first is taken in, and progress is
//! recorded every 100 entries: interrupted (Ctrl-C stops after the entry under way; a kill
//! stops anywhere), `remediate campaign resume NAME` goes on from there and creates nothing
//! twice.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use remediation_core::store::{Campaign, check_campaign_name};
use remediation_service::scanner::{self, DocumentFormat};
use remediation_service::{CampaignStatus, EntryDone, NewCampaign};
use serde_json::json;

use crate::app::Ctx;
use crate::bulk::PARTIAL;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, clean, errln, outln};
use crate::when::age;

/// The text of `path`, or of standard input when it is `-`.
pub(crate) fn read_input(path: &Path) -> Result<String, Failure> {
    let usage = |e: String| Failure::new(ExitCode::Usage, anyhow::anyhow!(e));
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| usage(format!("cannot read standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn check_name(name: &str) -> Result<(), Failure> {
    check_campaign_name(name).map_err(|e| Failure::new(ExitCode::Usage, anyhow::anyhow!(e)))
}

/// A progress bar on standard error when it is a terminal; nothing otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total: u64, done: u64) -> Self {
        let on = std::io::stderr().is_terminal() && total > 1;
        let bar = on.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_position(done);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Self { bar }
    }

    fn step(&self, campaign: &Campaign, done: &EntryDone) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(campaign.name.clone());
            bar.set_position(done.index + 1);
            bar.set_message(done.outcome);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A campaign's run on this terminal: its progress bar, made at the first entry, and Ctrl-C,
/// which stops it after the entry under way (its progress is recorded first).
struct Run {
    progress: std::cell::RefCell<Option<Progress>>,
    stop: Arc<AtomicBool>,
}

impl Run {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let set = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                set.store(true, Ordering::SeqCst);
            }
        });
        Self { progress: std::cell::RefCell::new(None), stop }
    }

    fn step(&self, campaign: &Campaign, done: &EntryDone) {
        self.progress
            .borrow_mut()
            .get_or_insert_with(|| Progress::new(campaign.total, campaign.cursor))
            .step(campaign, done);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn finish(&self) {
        if let Some(p) = self.progress.borrow().as_ref() {
            p.finish();
        }
    }
}

/// The plain-language name of an intake outcome.
fn label(l: &str) -> &str {
    match l {
        "created" => "created",
        "existing" => "already open",
        "unsupported" => "unsupported",
        "failed" => "refused",
        "invalid" => "invalid",
        "nothing_to_do" => "nothing to do",
        "fix_holds" => "fix holds",
        "did_not_hold" => "did not hold",
        "redone" => "redone",
        other => other,
    }
}

impl Ctx {
    /// `import`.
    pub(crate) async fn import(
        &self,
        file: &Path,
        declared: Option<DocumentFormat>,
        connector: Option<String>,
        campaign: Option<String>,
    ) -> Result<u8, Failure> {
        if let Some(name) = &campaign {
            check_name(name)?;
        }
        let text = read_input(file)?;
        let not_findings =
            |e: scanner::ReadError| Failure::new(ExitCode::Usage, anyhow::Error::new(e).context("not findings"));
        let value = scanner::parse_stream(&text).map_err(not_findings)?;
        drop(text);
        let new = NewCampaign { name: campaign, source: file.display().to_string(), connector };
        let run = Run::start();
        let status = self
            .backend
            .campaign_import(new, value, declared, &self.actor, |c, d| run.step(c, d), || run.stopped())
            .await;
        run.finish();
        self.campaign_summary(&status?)
    }

    /// `campaign resume NAME`.
    pub(crate) async fn campaign_resume(&self, name: &str) -> Result<u8, Failure> {
        check_name(name)?;
        let run = Run::start();
        let status = self.backend.campaign_resume(name, &self.actor, |c, d| run.step(c, d), || run.stopped()).await;
        run.finish();
        self.campaign_summary(&status?)
    }

    /// The summary after an import or a resume; the exit code: 0 when nothing was refused or
    /// invalid, 7 when some were, 3 when all were; 130 when interrupted.
    fn campaign_summary(&self, status: &CampaignStatus) -> Result<u8, Failure> {
        let c = &status.campaign;
        let broken = c.outcomes.get("failed").copied().unwrap_or(0) + c.outcomes.get("invalid").copied().unwrap_or(0);
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(status)))?,
            Format::Table => {
                let rows: Vec<Vec<String>> =
                    c.outcomes.iter().map(|(l, n)| vec![label(l).to_owned(), n.to_string()]).collect();
                if !rows.is_empty() {
                    outln!("{}", output::table(&["OUTCOME", "FINDINGS"], &rows).trim_end())?;
                }
                outln!(
                    "Campaign {}: {} of {} finding(s) taken in ({}).",
                    c.name,
                    c.cursor,
                    c.total,
                    c.format.as_deref().unwrap_or("empty")
                )?;
                if !c.reasons.is_empty() {
                    outln!("Why not taken (most frequent first):")?;
                    let rows: Vec<Vec<String>> = c
                        .reasons
                        .iter()
                        .map(|r| vec![r.count.to_string(), label(&r.outcome).to_owned(), clean(&r.reason)])
                        .collect();
                    outln!("{}", output::table(&["COUNT", "OUTCOME", "REASON"], &rows).trim_end())?;
                }
                if !c.is_finished() {
                    outln!("Interrupted. Go on with: remediate campaign resume {}", c.name)?;
                } else {
                    outln!("Next: remediate campaign show {}   (or: remediate list --campaign {})", c.name, c.name)?;
                }
            }
        }
        if !c.is_finished() {
            return Ok(ExitCode::Interrupted.code());
        }
        Ok(match broken {
            0 => 0,
            n if n == c.total => ExitCode::Refused.code(),
            _ => PARTIAL,
        })
    }

    /// `campaign show NAME`.
    pub(crate) async fn campaign_show(&self, name: &str) -> Result<u8, Failure> {
        check_name(name)?;
        let s = self.backend.campaign_status(name).await?;
        if self.format == Format::Json {
            outln!("{}", output::json(&json!(s)))?;
            return Ok(0);
        }
        let c = &s.campaign;
        outln!("Campaign {} (from {}, by {}, {} ago)", c.name, c.source, c.created_by, age(c.created_at, s.as_of))?;
        let import = if c.is_finished() {
            format!("done: {} of {} finding(s)", c.cursor, c.total)
        } else {
            format!(
                "{} of {} finding(s) taken in; interrupted: remediate campaign resume {}",
                c.cursor, c.total, c.name
            )
        };
        outln!("Import:     {import}")?;
        if let Some(rate) = s.import_per_sec {
            outln!("            {rate:.0} finding(s)/s")?;
        }
        let outcomes: Vec<String> = c.outcomes.iter().map(|(l, n)| format!("{n} {}", label(l))).collect();
        if !outcomes.is_empty() {
            outln!("Outcomes:   {}", outcomes.join(", "))?;
        }
        let states: Vec<String> = s.states.iter().map(|(st, n)| format!("{n} {st}")).collect();
        outln!(
            "Actions:    {} created, {} open{}",
            s.actions,
            s.open,
            if states.is_empty() { String::new() } else { format!(" ({})", states.join(", ")) }
        )?;
        outln!(
            "Throughput: {} finished in the last hour{}",
            s.finished_last_hour,
            match s.eta_secs {
                Some(secs) => format!(
                    "; about {} left at that pace",
                    age(s.as_of, s.as_of + time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)))
                ),
                None if s.open > 0 => "; no estimate until some finish".to_owned(),
                None => String::new(),
            }
        )?;
        if s.waits.is_empty() {
            outln!("Waiting:    nothing held by a limit or backing off")?;
        } else {
            outln!("Waiting:")?;
            let rows: Vec<Vec<String>> = s
                .waits
                .iter()
                .map(|w| {
                    vec![
                        w.handle.map_or_else(|| w.id.to_string(), |h| format!("#{h}")),
                        w.cause.clone(),
                        clean(&w.detail),
                        w.until.map_or_else(
                            || "unknown".to_owned(),
                            |t| if t > s.as_of { format!("in {}", age(s.as_of, t)) } else { "now".to_owned() },
                        ),
                    ]
                })
                .collect();
            outln!("{}", output::table(&["ACTION", "CAUSE", "DETAIL", "GOES ON"], &rows).trim_end())?;
        }
        Ok(0)
    }

    /// `campaign list`.
    pub(crate) async fn campaign_list(&self) -> Result<u8, Failure> {
        let all = self.backend.campaigns().await?;
        if self.format == Format::Json {
            outln!("{}", output::json(&json!(all)))?;
            return Ok(0);
        }
        if all.is_empty() {
            outln!("No campaigns yet. Start one with: remediate import FINDINGS.json --campaign NAME")?;
            return Ok(0);
        }
        let now = time::OffsetDateTime::now_utc();
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|c| {
                let created = c.outcomes.get("created").copied().unwrap_or(0);
                vec![
                    c.name.clone(),
                    format!("{}/{}", c.cursor, c.total),
                    created.to_string(),
                    if c.is_finished() { "done".to_owned() } else { "interrupted".to_owned() },
                    clean(&c.created_by),
                    age(c.created_at, now),
                ]
            })
            .collect();
        outln!("{}", output::table(&["NAME", "TAKEN IN", "CREATED", "IMPORT", "BY", "AGE"], &rows).trim_end())?;
        errln!("`remediate campaign show NAME` for one campaign's progress.");
        Ok(0)
    }
}
