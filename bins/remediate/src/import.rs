//! `remediate import FILE|-`: many findings at once (a JSON array, JSON Lines, or a scanner's
//! document), each taken in as `suggest --finding` takes one (deduplicated by control and
//! canonical target), with progress on a terminal and a summary at the end.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use remediation_api::types::FindingsReply;
use remediation_service::scanner::{self, DocumentFormat, ReadOptions};
use serde_json::json;

use crate::app::Ctx;
use crate::backend::Backend;
use crate::bulk::PARTIAL;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, clean, errln, outln};

/// How often the progress line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);

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

impl Ctx {
    /// `import`.
    pub(crate) async fn import(
        &self,
        file: &Path,
        declared: Option<DocumentFormat>,
        connector: Option<String>,
    ) -> Result<u8, Failure> {
        let text = read_input(file)?;
        let not_findings =
            |e: scanner::ReadError| Failure::new(ExitCode::Usage, anyhow::Error::new(e).context("not findings"));
        let value = scanner::parse_stream(&text).map_err(not_findings)?;
        drop(text);
        let reply = match &self.backend {
            Backend::Local(l) => {
                let doc =
                    scanner::read_findings_value(value, declared, &ReadOptions::default()).map_err(not_findings)?;
                let format = doc.format;
                let mut progress = Progress::new(doc.entries.len());
                let entries = remediation_service::intake_document_with_progress(
                    &l.runtime,
                    &self.actor,
                    doc,
                    connector.as_deref(),
                    |done, total, entry| progress.step(done, total, entry.result.label()),
                )
                .await;
                progress.finish();
                FindingsReply::new(format, entries)
            }
            Backend::Remote(_) => self.backend.intake_document(value, declared, connector, &self.actor).await?,
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut reasons: BTreeMap<(&str, String), usize> = BTreeMap::new();
        for e in &reply.entries {
            *counts.entry(e.intake.as_str()).or_default() += 1;
            if matches!(e.intake.as_str(), "failed" | "invalid" | "unsupported")
                && let Some(r) = &e.reason
            {
                *reasons.entry((e.intake.as_str(), r.clone())).or_default() += 1;
            }
        }
        let total = reply.entries.len();
        let broken = counts.get("failed").copied().unwrap_or(0) + counts.get("invalid").copied().unwrap_or(0);
        match self.format {
            Format::Json => outln!("{}", output::json(&json!({"summary": counts, "reply": reply})))?,
            Format::Table => {
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
                let rows: Vec<Vec<String>> =
                    counts.iter().map(|(l, n)| vec![label(l).to_owned(), n.to_string()]).collect();
                outln!("{}", output::table(&["OUTCOME", "FINDINGS"], &rows).trim_end())?;
                outln!("{total} finding(s) read ({}).", reply.format.as_deref().unwrap_or("empty"))?;
                if !reasons.is_empty() {
                    let mut by_count: Vec<_> = reasons.into_iter().collect();
                    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    outln!("Why not taken (most frequent first):")?;
                    let rows: Vec<Vec<String>> = by_count
                        .iter()
                        .take(20)
                        .map(|((l, r), n)| vec![n.to_string(), label(l).to_owned(), clean(r)])
                        .collect();
                    outln!("{}", output::table(&["COUNT", "OUTCOME", "REASON"], &rows).trim_end())?;
                    if by_count.len() > 20 {
                        outln!("... and {} other reason(s): see --output json", by_count.len() - 20)?;
                    }
                }
            }
        }
        Ok(match broken {
            0 => 0,
            n if n == total => ExitCode::Refused.code(),
            _ => PARTIAL,
        })
    }
}

/// A progress line on standard error, when it is a terminal: `importing 120/10000 (1%):
/// 100 created, 20 already open`.
struct Progress {
    on: bool,
    last: Option<Instant>,
    started: Instant,
    counts: BTreeMap<&'static str, usize>,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            on: std::io::stderr().is_terminal() && total > 1,
            last: None,
            started: Instant::now(),
            counts: BTreeMap::new(),
        }
    }

    fn step(&mut self, done: usize, total: usize, label: &'static str) {
        *self.counts.entry(label).or_default() += 1;
        if !self.on || (done < total && self.last.is_some_and(|t| t.elapsed() < REDRAW)) {
            return;
        }
        self.last = Some(Instant::now());
        let per_sec = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let left = (total - done) as f64 / per_sec.max(0.001);
        let counts: Vec<String> = self.counts.iter().map(|(l, n)| format!("{n} {l}")).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2Kimporting {done}/{total} ({}%), {per_sec:.0}/s, about {left:.0}s left: {}",
            done * 100 / total.max(1),
            counts.join(", ")
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.on && self.last.is_some() {
            errln!();
        }
    }
}
