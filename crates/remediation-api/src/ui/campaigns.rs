//! Campaign and control pages: `/ui/campaigns` lists the campaigns, `/ui/campaigns/{name}`
//! shows one's progress (refreshing itself every 10 seconds, without scripts, while anything
//! is left to do), and `/ui/controls` shows each configured control with the record that
//! earns it auto mode. Read through the JSON API's handlers, so with its roles.

use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use remediation_service::CampaignStatus;

use super::{Flash, Me, Ui, error_page, html, open_page, timestamp};
use crate::auth::Caller;
use crate::{campaigns, handlers};

/// Seconds between two refreshes of a campaign that is still running.
const REFRESH_SECS: u32 = 10;

/// A progress bar drawn as SVG attributes (the page's CSP allows no inline style).
struct Bar {
    /// Width of the filled part, out of 200.
    filled: u32,
    /// `done/total (pct %)`.
    label: String,
}

impl Bar {
    fn of(done: u64, total: u64) -> Self {
        let pct = (done.min(total) * 100).checked_div(total).map_or(100, |p| u32::try_from(p).unwrap_or(100));
        Self { filled: pct * 2, label: format!("{done}/{total} ({pct} %)") }
    }
}

/// One campaign in the list.
struct CampaignRow {
    name: String,
    source: String,
    by: String,
    created: String,
    bar: Bar,
    created_actions: u64,
    finished: bool,
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    flash: Option<Flash>,
    me: Me,
    rows: Vec<CampaignRow>,
}

/// `GET /ui/campaigns`.
pub(super) async fn list(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let axum::Json(all) = match campaigns::list(AxState(ui.api.clone()), Caller(signed.actor.clone())).await {
        Ok(all) => all,
        Err(e) => return error_page(&e),
    };
    let rows = all
        .items
        .into_iter()
        .map(|c| CampaignRow {
            bar: Bar::of(c.cursor, c.total),
            finished: c.is_finished(),
            created_actions: c.outcomes.get("created").copied().unwrap_or(0),
            created: timestamp(c.created_at),
            name: c.name,
            source: c.source,
            by: c.created_by,
        })
        .collect();
    html(StatusCode::OK, &CampaignsPage { flash, me: Me::new(&signed, "campaigns"), rows })
}

/// One waiting action.
struct WaitRow {
    id: String,
    label: String,
    cause: String,
    detail: String,
    until: String,
}

#[derive(Template)]
#[template(path = "campaign.html")]
struct CampaignPage {
    flash: Option<Flash>,
    me: Me,
    name: String,
    source: String,
    by: String,
    created: String,
    import: Bar,
    finished: bool,
    outcomes: Vec<(String, u64)>,
    states: Vec<(String, u64)>,
    actions: u64,
    open: u64,
    settled: Bar,
    rate: String,
    finished_last_hour: u64,
    eta: String,
    waits: Vec<WaitRow>,
    refresh: Option<u32>,
    as_of: String,
}

fn page_of(s: CampaignStatus, flash: Option<Flash>, me: Me) -> CampaignPage {
    let c = s.campaign;
    let finished = c.is_finished();
    let running = !finished || s.open > 0;
    CampaignPage {
        flash,
        me,
        import: Bar::of(c.cursor, c.total),
        finished,
        outcomes: c.outcomes.into_iter().collect(),
        states: s.states.into_iter().collect(),
        actions: s.actions,
        open: s.open,
        settled: Bar::of(s.actions - s.open, s.actions),
        rate: s.import_per_sec.map_or_else(|| "-".to_owned(), |r| format!("{r:.0} findings/s")),
        finished_last_hour: s.finished_last_hour,
        eta: match s.eta_secs {
            Some(secs) => super::age(time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))),
            None if s.open > 0 => "unknown until some finish".to_owned(),
            None => "nothing left".to_owned(),
        },
        waits: s
            .waits
            .into_iter()
            .map(|w| WaitRow {
                label: w.handle.map_or_else(|| w.id.to_string().chars().take(8).collect(), |h| format!("#{h}")),
                id: w.id.to_string(),
                cause: w.cause,
                detail: w.detail,
                until: w.until.map_or_else(|| "unknown".to_owned(), timestamp),
            })
            .collect(),
        refresh: running.then_some(REFRESH_SECS),
        as_of: timestamp(s.as_of),
        created: timestamp(c.created_at),
        name: c.name,
        source: c.source,
        by: c.created_by,
    }
}

/// `GET /ui/campaigns/{name}`.
pub(super) async fn page(AxState(ui): AxState<Ui>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match campaigns::show(AxState(ui.api.clone()), Caller(signed.actor.clone()), Path(name)).await {
        Ok(axum::Json(s)) => html(StatusCode::OK, &page_of(s, flash, Me::new(&signed, "campaigns"))),
        Err(e) => error_page(&e),
    }
}

/// One control and its record.
struct ControlRow {
    id: String,
    mode: String,
    scope: String,
    manual: u64,
    auto: u64,
    first: String,
    rollbacks: u64,
    failed: u64,
    recent: String,
    earned: bool,
    why_not: String,
}

#[derive(Template)]
#[template(path = "controls.html")]
struct ControlsPage {
    flash: Option<Flash>,
    me: Me,
    rows: Vec<ControlRow>,
}

/// `GET /ui/controls`.
pub(super) async fn controls(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let axum::Json(all) = match handlers::controls(AxState(ui.api.clone()), Caller(signed.actor.clone())).await {
        Ok(all) => all,
        Err(e) => return error_page(&e),
    };
    let list = |v: &Option<Vec<String>>| v.as_ref().map_or_else(|| "-".to_owned(), |v| v.join(", "));
    let rows = all
        .controls
        .into_iter()
        .map(|c| {
            let r = c.record;
            let kinds: Option<Vec<String>> =
                c.settings.kinds.as_ref().map(|k| k.iter().map(|k| k.as_str().to_owned()).collect());
            ControlRow {
                mode: c.mode.map_or_else(|| "(kind's)".to_owned(), |m| m.to_string()),
                scope: format!(
                    "kinds: {}; grant types: {}; connectors: {}",
                    list(&kinds),
                    list(&c.settings.grant_types),
                    list(&c.settings.connectors)
                ),
                manual: r.manual_successes,
                auto: r.auto_successes,
                first: r.first_manual_success.map_or_else(|| "-".to_owned(), timestamp),
                rollbacks: r.rollbacks,
                failed: r.failed_verifications,
                recent: format!(
                    "{} of the last {} auto action(s) went wrong (demoted above {} %)",
                    r.recent_auto.went_wrong, r.recent_auto.judged, r.recent_auto.max_rate_percent
                ),
                earned: r.earned,
                why_not: r.why_not.unwrap_or_default(),
                id: c.id,
            }
        })
        .collect();
    html(StatusCode::OK, &ControlsPage { flash, me: Me::new(&signed, "controls"), rows })
}
