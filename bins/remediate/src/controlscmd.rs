//! `remediate controls list` and `remediate controls show ID`: each configured control's
//! settings, the scope and mode of its override, and its track record (manual and auto
//! successes, first success, rollbacks, failed verifications, the latest auto actions) with
//! whether it has earned `auto` and why not. Locally or against a server alike.

use remediation_api::types::ControlView;
use remediation_core::Mode;
use serde_json::json;
use time::OffsetDateTime;

use crate::app::Ctx;
use crate::failure::Failure;
use crate::output::{self, Format, clean, outln};

/// A list as `a,b`, `-` when empty, `(not set)` when absent.
fn names<T: ToString>(list: Option<&Vec<T>>) -> String {
    match list {
        None => "(not set)".to_owned(),
        Some(l) if l.is_empty() => "-".to_owned(),
        Some(l) => l.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
    }
}

fn date(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.date().to_string())
}

fn mode(m: Option<Mode>) -> String {
    m.map_or_else(|| "(kind/default)".to_owned(), |m| m.to_string())
}

/// `went_wrong/judged (rate%)` of the latest auto actions.
fn recent(v: &ControlView) -> String {
    let r = &v.record.recent_auto;
    match r.rate_percent() {
        Some(rate) => format!("{}/{} ({rate:.0}%)", r.went_wrong, r.judged),
        None => "-".to_owned(),
    }
}

/// The latest auto actions in words: how many of the last ones went wrong, against the limit.
fn latest(v: &ControlView) -> String {
    let r = &v.record.recent_auto;
    match r.rate_percent() {
        None => format!("none yet (demoted when over {}% of the last {} go wrong)", r.max_rate_percent, r.window),
        Some(rate) => format!(
            "{} of the last {} rolled back or not verified ({rate:.0}%; demoted over {}%){}",
            r.went_wrong,
            r.judged,
            r.max_rate_percent,
            if r.exceeds { ": over the limit" } else { "" }
        ),
    }
}

fn earned(v: &ControlView) -> String {
    if v.record.earned {
        "yes".to_owned()
    } else if v.mode == Some(Mode::Auto) && v.settings.promotion_override_reason.is_some() {
        "no (overridden)".to_owned()
    } else {
        "no".to_owned()
    }
}

impl Ctx {
    /// `controls list`: one row per configured control.
    pub(crate) async fn controls_list(&self) -> Result<u8, Failure> {
        let views = self.backend.controls().await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(views)))?,
            Format::Table => {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|v| {
                        vec![
                            clean(&v.id),
                            mode(v.mode),
                            clean(&format!(
                                "{} / {} / {}",
                                names(v.scope.kinds.as_ref()),
                                names(v.scope.grant_types.as_ref()),
                                names(v.scope.connectors.as_ref())
                            )),
                            v.settings.never_auto.to_string(),
                            v.settings.disabled.as_deref().map_or_else(|| "-".to_owned(), clean),
                            format!("{:?}", v.settings.status).to_lowercase(),
                            format!("{}/{}", v.record.manual_successes, v.record.auto_successes),
                            date(v.record.first_manual_success),
                            v.record.rollbacks.to_string(),
                            v.record.failed_verifications.to_string(),
                            recent(v),
                            earned(v),
                        ]
                    })
                    .collect();
                output::out!(
                    "{}",
                    output::table(
                        &[
                            "CONTROL",
                            "MODE",
                            "SCOPE (KINDS / GRANT TYPES / CONNECTORS)",
                            "NEVER AUTO",
                            "DISABLED",
                            "STATUS",
                            "OK MANUAL/AUTO",
                            "FIRST OK",
                            "ROLLED BACK",
                            "NOT VERIFIED",
                            "LAST AUTO WRONG",
                            "EARNED AUTO",
                        ],
                        &rows
                    )
                )?;
            }
        }
        Ok(0)
    }

    /// `controls show ID`: one control in full.
    pub(crate) async fn control_show(&self, id: &str) -> Result<u8, Failure> {
        let v = self.backend.control(id).await?;
        if self.format == Format::Json {
            outln!("{}", output::json(&json!(v)))?;
            return Ok(0);
        }
        let r = &v.record;
        let s = &v.settings;
        let mut lines = vec![
            format!("control:              {}", clean(&v.id)),
            format!("mode:                 {}", mode(v.mode)),
            format!("  why:                {}", s.reason.as_deref().map_or_else(|| "-".to_owned(), clean)),
            format!("scope kinds:          {}", names(v.scope.kinds.as_ref())),
            format!("scope grant types:    {}", clean(&names(v.scope.grant_types.as_ref()))),
            format!("scope connectors:     {}", clean(&names(v.scope.connectors.as_ref()))),
            format!("never auto:           {}", s.never_auto),
            format!("disabled:             {}", s.disabled.as_deref().map_or_else(|| "no".to_owned(), clean)),
            format!("status:               {}", format!("{:?}", s.status).to_lowercase()),
            format!(
                "prerequisites:        {}",
                if s.prerequisites.is_empty() { "-".to_owned() } else { clean(&s.prerequisites.join(",")) }
            ),
            String::new(),
            "record (inside the scope):".to_owned(),
            format!("  successful manual:  {}", r.manual_successes),
            format!("  successful auto:    {}", r.auto_successes),
            format!("  first manual:       {}", date(r.first_manual_success)),
            format!("  rolled back:        {}", r.rollbacks),
            format!("  not verified:       {}", r.failed_verifications),
            format!("  latest auto:        {}", latest(&v)),
            format!(
                "earned auto:          {} (needs {} successful manual remediations over {} days, none rolled back)",
                if r.earned { "yes" } else { "no" },
                r.needed.min_successes,
                r.needed.min_days
            ),
        ];
        if let Some(why) = &r.why_not {
            lines.push(format!("  why not:            {}", clean(why)));
        }
        if let Some(reason) = &s.promotion_override_reason {
            lines.push(format!("  admin override:     {}", clean(reason)));
        }
        outln!("{}", lines.join("\n"))?;
        Ok(0)
    }
}
