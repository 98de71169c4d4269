//! The dashboard (`/` once signed in): actions by state, the safety switches (circuit breaker,
//! kill switch, limit windows in use), connector health, the audit chain's verification, the
//! store-derived metrics per control, two charts of the last 30 days, and the actions waiting
//! for a decision with their Approve / Reject forms.
//!
//! The safety tile also counts the settings and kill-switch changes waiting for a second admin
//! (`remediate pending list` shows them).
//!
//! Everything is read through the JSON API's handlers, as the caller: the counts and charts
//! from the action list (every action, page by page), the rest from the limits, kill-switch,
//! connectors, audit-verify and metrics-report handlers.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use remediation_core::{Action, Role, State};
use time::{Date, Duration};

use super::actions::{Card, scan, waiting};
use super::charts::{self, Chart, DayOutcomes, DayTtr, OUTCOMES};
use super::{Flash, Me, Ui, error_page, html, open_page, percent, short_secs, window};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::handlers;
use crate::types::{ActionQuery, ConnectorQuery, MetricsReportQuery, PendingQuery};

/// How many days the charts cover, today included.
const CHART_DAYS: i64 = 30;

/// Actions in one state.
struct Count {
    state: &'static str,
    n: u64,
}

/// One connector's health.
struct Health {
    id: String,
    health: String,
    healthy: bool,
}

/// One row of the metrics table.
struct MetricRow {
    control: String,
    kind: String,
    connector: String,
    completed: u64,
    failed: u64,
    rolled_back: u64,
    success: String,
    rollback: String,
    p50: String,
    p90: String,
}

/// The audit chain as checked now.
struct Audit {
    intact: bool,
    records: u64,
    head: String,
    summary: String,
    tree_head: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    flash: Option<Flash>,
    me: Me,
    can_decide: bool,
    total: u64,
    counts: Vec<Count>,
    held: u64,
    breaker_tripped: bool,
    kill_switch: bool,
    /// Settings and kill-switch changes waiting for a second admin.
    pending_changes: usize,
    /// Limit windows with executions in them: `key: used/limit per window`.
    usage: Vec<String>,
    connectors: Vec<Health>,
    audit: Audit,
    metrics: Vec<MetricRow>,
    outcomes: Chart,
    ttr: Chart,
    cards: Vec<Card>,
}

impl DashboardPage {
    /// The charts, in the page's order.
    fn charts(&self) -> [&Chart; 2] {
        [&self.outcomes, &self.ttr]
    }
}

/// The charts' days, oldest first, ending today (UTC).
fn chart_days(today: Date) -> Vec<Date> {
    (0..CHART_DAYS).rev().filter_map(|back| today.checked_sub(Duration::days(back))).collect()
}

/// Outcomes reached per day (an action counts on the day it reached its present outcome),
/// and the time to remediation of the actions completed each day.
fn chart_data(actions: &[Action], days: &[Date]) -> (Vec<DayOutcomes>, Vec<DayTtr>) {
    let index: BTreeMap<Date, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut outcomes: Vec<DayOutcomes> =
        days.iter().map(|d| DayOutcomes { day: *d, counts: [0; OUTCOMES.len()] }).collect();
    let mut ttr: Vec<(DayTtr, f64)> =
        days.iter().map(|d| (DayTtr { day: *d, samples: Vec::new(), slowest: None }, 0.0)).collect();
    for a in actions {
        let day = a.updated_at.to_offset(time::UtcOffset::UTC).date();
        let Some(&i) = index.get(&day) else { continue };
        if let Some(k) = OUTCOMES.iter().position(|s| *s == a.state)
            && let Some(slot) = outcomes.get_mut(i).and_then(|d| d.counts.get_mut(k))
        {
            *slot += 1;
        }
        // `updated_at` of a completed action is when it completed.
        if a.state == State::Completed
            && let Some((d, worst)) = ttr.get_mut(i)
        {
            let secs = (a.updated_at - a.created_at).as_seconds_f64().max(0.0);
            d.samples.push(secs);
            if d.slowest.is_none() || secs > *worst {
                *worst = secs;
                d.slowest = Some(a.target.identity.clone());
            }
        }
    }
    (outcomes, ttr.into_iter().map(|(d, _)| d).collect())
}

/// Everything on the dashboard, read as `signed`'s caller.
async fn gather(ui: &Ui, signed: &super::Signed, flash: Option<Flash>) -> Result<DashboardPage, ApiError> {
    let actor = &signed.actor;
    let (api, caller) = (|| AxState(ui.api.clone()), || Caller(actor.clone()));
    let all = scan(ui, actor, &ActionQuery::default()).await?;
    let mut by_state: BTreeMap<State, u64> = BTreeMap::new();
    for a in &all {
        *by_state.entry(a.state).or_default() += 1;
    }
    let counts =
        State::ALL.iter().filter_map(|s| by_state.get(s).map(|n| Count { state: s.as_str(), n: *n })).collect();
    let (outcome_days, ttr_days) = chart_data(&all, &chart_days(ui.now().to_offset(time::UtcOffset::UTC).date()));

    let axum::Json(limits) = handlers::limits(api(), caller()).await?;
    let axum::Json(kill) = handlers::kill_switch_status(api(), caller()).await?;
    let axum::Json(pending) = handlers::pending_changes(api(), caller(), ApiQuery(PendingQuery::default())).await?;
    let axum::Json(connectors) = handlers::connectors(api(), caller(), ApiQuery(ConnectorQuery::default())).await?;
    let axum::Json(verified) = handlers::audit_verify(api(), caller()).await?;
    let axum::Json(report) = handlers::report_metrics(api(), caller(), ApiQuery(MetricsReportQuery::default())).await?;
    let count = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    let metrics = report
        .rows
        .into_iter()
        .map(|r| MetricRow {
            completed: count(&r.executions, "completed"),
            failed: count(&r.executions, "failed"),
            rolled_back: count(&r.outcomes, "rolled_back"),
            success: percent(r.success_rate),
            rollback: percent(r.rollback_rate),
            p50: r.ttr_p50_secs.map_or_else(|| "-".to_owned(), short_secs),
            p90: r.ttr_p90_secs.map_or_else(|| "-".to_owned(), short_secs),
            control: r.control,
            kind: r.kind,
            connector: r.connector,
        })
        .collect();
    let audit = Audit {
        intact: verified.is_intact(),
        records: verified.chain.records,
        head: verified.chain.head.as_ref().map_or_else(|| "(empty)".to_owned(), ToString::to_string),
        summary: verified.chain.to_string(),
        tree_head: verified.tree_head.to_string(),
    };
    Ok(DashboardPage {
        flash,
        me: Me::new(signed, "dashboard"),
        can_decide: actor.role >= Role::Approver,
        total: all.len() as u64,
        counts,
        held: by_state.get(&State::Held).copied().unwrap_or(0),
        breaker_tripped: limits.breaker_tripped,
        kill_switch: kill.on,
        pending_changes: pending.len(),
        usage: limits
            .usage
            .iter()
            .map(|u| format!("{}: {}/{} per {}", u.key, u.used, u.limit, window(u.window_secs)))
            .collect(),
        connectors: connectors.into_iter().map(|c| Health { id: c.id, health: c.health, healthy: c.healthy }).collect(),
        audit,
        metrics,
        outcomes: charts::outcomes(&outcome_days),
        ttr: charts::time_to_remediation(&ttr_days),
        cards: waiting(ui, actor).await?,
    })
}

/// `GET /`: the sign-in form, or the dashboard.
pub(super) async fn index(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match gather(&ui, &signed, flash).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(e) => error_page(&e),
    }
}
