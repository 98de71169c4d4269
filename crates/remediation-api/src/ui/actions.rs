//! The action pages: the list (`/ui/actions`, every state, filtered, sorted and paged), one
//! action (`/ui/actions/{id}`: plan diff, gates, risk, timeline, approvals, outcome, request
//! ids, rollback window) and its buttons (approve, reject, release, force-execute, rollback),
//! each a call of the JSON API's handler for the signed-in caller.
//!
//! An irreversible or high-risk change asks for the target's name to be typed before any
//! button that leads to a provider write (everything but reject): a post whose `confirm`
//! field does not match is refused with a flash, and nothing is called.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use remediation_core::{
    Action, ActionId, Actor, KindName, Reversibility, Risk, RiskLevel, Role, State, TransitionRecord,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{
    Flash, Me, PostForm, Signed, Ui, age, ago, check_post, error_page, html, open_page, see_other, show_json, timestamp,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ActionPath, ApiJson, ApiQuery, OptionalJson};
use crate::handlers;
use crate::types::{ActionQuery, ActionReply, ActionView, NoteBody, ReasonBody};

/// How many actions one read of the API's list takes while scanning.
const SCAN_PAGE: usize = 500;
/// Rows per list page unless the query says otherwise, and the most it may say.
const DEFAULT_ROWS: usize = 50;
const MAX_ROWS: usize = 200;

/// One row of a plan diff.
pub(super) struct DiffRow {
    pub(super) path: String,
    pub(super) before: String,
    pub(super) after: String,
}

impl DiffRow {
    /// The rows of every difference from `before` to `after`, in a stable order.
    pub(super) fn between(before: &serde_json::Value, after: &serde_json::Value) -> Vec<Self> {
        remediation_core::diff::json_diff(before, after)
            .into_iter()
            .map(|c| Self {
                path: if c.path.is_empty() { "/".to_owned() } else { c.path },
                before: show_json(c.left.as_ref()),
                after: show_json(c.right.as_ref()),
            })
            .collect()
    }
}

/// One transition of an action.
pub(super) struct Step {
    pub(super) at: String,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) event: String,
    pub(super) actor: String,
    pub(super) comment: Option<String>,
    pub(super) request_ids: Vec<String>,
}

/// The risk of a planned change, as the risk gate scores it (kind, reversibility, reach).
fn risk_of(a: &Action, plan: &remediation_core::Plan) -> Risk {
    Risk::from_score(remediation_gates::blast_radius_reaching(a.kind.name(), plan.reversibility, plan.reach))
}

/// `low`, `medium`, `high`: the CSS class suffix and the word shown.
fn level(r: &Risk) -> &'static str {
    match r.level {
        RiskLevel::Low => "low",
        RiskLevel::Medium => "medium",
        RiskLevel::High => "high",
    }
}

/// Whether a change needs the target's name typed before a button that writes to the
/// provider: it cannot be undone, or it scores high.
fn needs_confirmation(reversibility: Option<Reversibility>, risk: Option<&Risk>) -> bool {
    reversibility == Some(Reversibility::Irreversible) || risk.is_some_and(|r| r.level >= RiskLevel::High)
}

/// `revoke`, or `reduce {"to":"read"}` for a kind with parameters.
fn kind_text(a: &Action) -> String {
    match serde_json::to_value(&a.kind) {
        Ok(serde_json::Value::Object(mut m)) if m.len() > 1 => {
            m.remove("type");
            format!("{} {}", a.kind.name().as_str(), serde_json::Value::Object(m))
        }
        _ => a.kind.name().as_str().to_owned(),
    }
}

fn step(t: TransitionRecord) -> Step {
    Step {
        at: timestamp(t.at),
        from: t.from.map_or_else(|| "new".to_owned(), |s| s.as_str().to_owned()),
        to: t.to.as_str().to_owned(),
        event: t.event,
        actor: t.actor,
        comment: t.comment.filter(|c| !c.trim().is_empty()),
        request_ids: t.request_ids,
    }
}

/// One action as the pages show it. Every field is printed escaped.
pub(super) struct Card {
    pub(super) id: String,
    pub(super) state: String,
    pub(super) kind: String,
    pub(super) identity: String,
    pub(super) resource: Option<String>,
    pub(super) grant_type: String,
    pub(super) connector: String,
    pub(super) control: String,
    pub(super) requester: String,
    pub(super) reason: String,
    pub(super) age: String,
    /// Risk level and blast-radius score, as the risk gate scores it.
    pub(super) risk: String,
    /// `low`, `medium`, `high` or `unknown`, for the colour.
    pub(super) risk_level: &'static str,
    pub(super) reversibility: String,
    pub(super) plan: String,
    pub(super) diff: Vec<DiffRow>,
    pub(super) timeline: Vec<Step>,
    /// Waiting for approval and the caller may decide.
    pub(super) decidable: bool,
    /// The caller requested it (and so cannot approve it).
    pub(super) own: bool,
    /// Buttons that write to the provider ask for the target's name first.
    pub(super) confirm: bool,
}

/// The card of an action, for `actor`.
pub(super) fn card(view: ActionView, actor: &Actor, now: OffsetDateTime) -> Card {
    let ActionView { detail, transitions } = view;
    let a = detail.action;
    let kind = kind_text(&a);
    let risk = detail.plan.as_ref().map(|p| risk_of(&a, p));
    let confirm = needs_confirmation(detail.plan.as_ref().map(|p| p.reversibility), risk.as_ref());
    let (reversibility, plan, diff) = match &detail.plan {
        Some(p) => (
            p.reversibility.to_string(),
            p.description.clone(),
            DiffRow::between(&p.before.state, &p.expected_after.state),
        ),
        None => ("unknown".to_owned(), "No plan recorded.".to_owned(), Vec::new()),
    };
    // For a rollback request, "own" is whoever asked for the rollback: they never approve it.
    let own = if a.state == State::RollbackRequested {
        transitions.iter().rev().find(|t| t.event == "request_rollback").is_some_and(|t| t.actor == actor.name)
    } else {
        a.requested_by == actor.name
    };
    Card {
        id: a.id.to_string(),
        state: a.state.as_str().to_owned(),
        kind,
        identity: a.target.identity,
        resource: a.target.resource,
        grant_type: a.target.grant_type,
        connector: a.connector,
        control: a.control_id.unwrap_or_else(|| "-".to_owned()),
        requester: a.requested_by,
        reason: a.reason,
        age: age(now - a.created_at),
        risk: risk
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |r| format!("{} (blast radius {})", level(r), r.score)),
        risk_level: risk.as_ref().map_or("unknown", level),
        reversibility,
        plan,
        diff,
        timeline: transitions.into_iter().map(step).collect(),
        decidable: matches!(a.state, State::PendingApproval | State::RollbackRequested) && actor.role >= Role::Approver,
        own,
        confirm,
    }
}

/// Every action passing `query`'s filter, oldest first, read page by page through the API's
/// list handler (so with its role check).
pub(super) async fn scan(ui: &Ui, actor: &Actor, query: &ActionQuery) -> Result<Vec<Action>, ApiError> {
    let mut all = Vec::new();
    let mut cursor = query.cursor.clone();
    loop {
        let q = ActionQuery { limit: Some(SCAN_PAGE), cursor, ..query.clone() };
        let axum::Json(page) =
            handlers::list_actions(AxState(ui.api.clone()), Caller(actor.clone()), ApiQuery(q)).await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// The actions waiting for a decision (pending approval, rollback requested, held), read
/// through the JSON API's handlers, oldest first.
pub(super) async fn waiting(ui: &Ui, actor: &Actor) -> Result<Vec<Card>, ApiError> {
    let now = ui.now();
    let mut views = Vec::new();
    for state in [State::PendingApproval, State::RollbackRequested, State::Held] {
        let query = ActionQuery { state: Some(state), ..ActionQuery::default() };
        for a in scan(ui, actor, &query).await? {
            views.push(view(ui, actor, a.id).await?);
        }
    }
    views.sort_by_key(|v| (v.detail.action.created_at, v.detail.action.id.to_string()));
    Ok(views.into_iter().map(|v| card(v, actor, now)).collect())
}

/// One action with its transitions, through the API's handler.
async fn view(ui: &Ui, actor: &Actor, id: ActionId) -> Result<ActionView, ApiError> {
    let axum::Json(view) = handlers::get_action(AxState(ui.api.clone()), Caller(actor.clone()), ActionPath(id)).await?;
    Ok(view)
}

/// The list's query string: filters, sort, cursor and page size. Empty fields mean "any".
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    control: Option<String>,
    #[serde(default)]
    connector: Option<String>,
    /// Only the actions a campaign created.
    #[serde(default)]
    campaign: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// An action id prefix, a handle (`#12`), or part of the target identity.
    #[serde(default)]
    q: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    #[serde(default)]
    sort: Option<String>,
    /// The last action of the previous page.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// A filter value, `None` when empty.
fn given(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Percent-encodes a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The list's query after parsing: what the store filters, what the page filters, the order.
struct Listing {
    api: ActionQuery,
    kind: Option<KindName>,
    search: Option<String>,
    newest_first: bool,
    after: Option<ActionId>,
    rows: usize,
}

impl ListQuery {
    fn parse(&self) -> Result<Listing, String> {
        let state = match given(self.state.as_ref()) {
            Some(s) => Some(s.parse::<State>().map_err(|e| e.to_string())?),
            None => None,
        };
        let kind = match given(self.kind.as_ref()) {
            Some(k) => {
                Some(KindName::ALL.into_iter().find(|n| n.as_str() == k).ok_or_else(|| format!("unknown kind `{k}`"))?)
            }
            None => None,
        };
        let newest_first = match given(self.sort.as_ref()) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => return Err(format!("unknown sort `{other}`; use asc or desc")),
        };
        let after = match given(self.after.as_ref()) {
            Some(a) => Some(a.parse::<ActionId>().map_err(|_| "invalid cursor".to_owned())?),
            None => None,
        };
        let rows = match given(self.limit.as_ref()) {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_ROWS).contains(n))
                .ok_or_else(|| format!("limit must be between 1 and {MAX_ROWS}"))?,
            None => DEFAULT_ROWS,
        };
        let api = ActionQuery {
            state,
            connector: given(self.connector.as_ref()).map(str::to_owned),
            control: given(self.control.as_ref()).map(str::to_owned),
            campaign: given(self.campaign.as_ref()).map(str::to_owned),
            ..ActionQuery::default()
        };
        Ok(Listing { api, kind, search: given(self.q.as_ref()).map(str::to_lowercase), newest_first, after, rows })
    }

    /// This query's string with `after` replaced.
    fn with_after(&self, after: &str) -> String {
        let mut pairs = Vec::new();
        for (k, v) in [
            ("state", &self.state),
            ("control", &self.control),
            ("connector", &self.connector),
            ("campaign", &self.campaign),
            ("kind", &self.kind),
            ("q", &self.q),
            ("sort", &self.sort),
            ("limit", &self.limit),
        ] {
            if let Some(v) = given(v.as_ref()) {
                pairs.push(format!("{k}={}", encode(v)));
            }
        }
        pairs.push(format!("after={}", encode(after)));
        pairs.join("&")
    }
}

impl Listing {
    /// The filters the store does not answer: the kind, and the search box (an id prefix or
    /// part of the identity, case-insensitive).
    fn keeps(&self, a: &Action) -> bool {
        self.kind.is_none_or(|k| a.kind.name() == k)
            && self.search.as_ref().is_none_or(|q| {
                a.id.to_string().starts_with(q.as_str())
                    || a.target.identity.to_lowercase().contains(q.as_str())
                    || remediation_core::parse_handle(q).is_some_and(|h| a.handle == Some(h))
            })
    }
}

/// One row of the list.
struct Row {
    id: String,
    short: String,
    state: String,
    kind: String,
    identity: String,
    resource: Option<String>,
    connector: String,
    control: String,
    requester: String,
    created: String,
    ago: String,
    risk_level: &'static str,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    flash: Option<Flash>,
    me: Me,
    states: Vec<&'static str>,
    kinds: Vec<&'static str>,
    connectors: Vec<String>,
    query: ListQuery,
    rows: Vec<Row>,
    next: Option<String>,
    error: Option<String>,
}

impl ListPage {
    /// Whether `option` is the value `field` of the query holds (for `selected`).
    fn is(&self, field: &str, option: &str) -> bool {
        let v = match field {
            "state" => &self.query.state,
            "kind" => &self.query.kind,
            "connector" => &self.query.connector,
            "sort" => &self.query.sort,
            _ => &None,
        };
        given(v.as_ref()) == Some(option)
    }

    fn text(&self, field: &str) -> String {
        let v = match field {
            "control" => &self.query.control,
            "q" => &self.query.q,
            _ => &None,
        };
        v.clone().unwrap_or_default()
    }
}

/// One page of the listing: up to `rows` actions after the cursor, and whether more follow.
async fn list_rows(ui: &Ui, actor: &Actor, l: &Listing) -> Result<(Vec<Action>, bool), ApiError> {
    if l.newest_first {
        // The store pages oldest first only: read the filtered list, then walk it backwards.
        let mut all = scan(ui, actor, &l.api).await?;
        all.retain(|a| l.keeps(a));
        all.reverse();
        let start = match l.after {
            // A cursor that no longer passes the filter (its state changed): ids sort by
            // creation time, so the page goes on with the older ones.
            Some(after) => match all.iter().position(|a| a.id == after) {
                Some(i) => i + 1,
                None => all.iter().position(|a| a.id < after).unwrap_or(all.len()),
            },
            None => 0,
        };
        let mut page: Vec<Action> = all.into_iter().skip(start).take(l.rows + 1).collect();
        let more = page.len() > l.rows;
        page.truncate(l.rows);
        return Ok((page, more));
    }
    let mut found = Vec::new();
    let mut cursor = l.after.map(|a| a.to_string());
    loop {
        let q = ActionQuery { limit: Some(SCAN_PAGE), cursor, ..l.api.clone() };
        let axum::Json(page) =
            handlers::list_actions(AxState(ui.api.clone()), Caller(actor.clone()), ApiQuery(q)).await?;
        found.extend(page.items.into_iter().filter(|a| l.keeps(a)));
        if found.len() > l.rows {
            found.truncate(l.rows);
            return Ok((found, true));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((found, false)),
        }
    }
}

/// `GET /ui/actions`.
pub(super) async fn list(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let connectors = match handlers::connectors(
        AxState(ui.api.clone()),
        Caller(signed.actor.clone()),
        ApiQuery(crate::types::ConnectorQuery::default()),
    )
    .await
    {
        Ok(axum::Json(all)) => all.into_iter().map(|c| c.id).collect(),
        Err(e) => return error_page(&e),
    };
    let mut page = ListPage {
        flash,
        me: Me::new(&signed, "actions"),
        states: State::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: KindName::ALL.iter().map(|k| k.as_str()).collect(),
        connectors,
        query: query.clone(),
        rows: Vec::new(),
        next: None,
        error: None,
    };
    let listing = match query.parse() {
        Ok(l) => l,
        Err(why) => {
            page.error = Some(why);
            return html(StatusCode::BAD_REQUEST, &page);
        }
    };
    let (actions, more) = match list_rows(&ui, &signed.actor, &listing).await {
        Ok(found) => found,
        Err(e) => return error_page(&e),
    };
    let now = ui.now();
    for a in actions {
        // The risk needs the plan: one read per row shown, through the API's handler.
        let plan = handlers::get_plan(AxState(ui.api.clone()), Caller(signed.actor.clone()), ActionPath(a.id)).await;
        let risk_level = plan.ok().map_or("unknown", |axum::Json(p)| level(&risk_of(&a, &p)));
        let id = a.id.to_string();
        page.rows.push(Row {
            // The handle when the store gave one (UUIDv7 prefixes of nearby actions look alike).
            short: a.handle.map_or_else(|| id.chars().take(8).collect(), |h| format!("#{h}")),
            id,
            state: a.state.as_str().to_owned(),
            kind: kind_text(&a),
            identity: a.target.identity,
            resource: a.target.resource,
            connector: a.connector,
            control: a.control_id.unwrap_or_else(|| "-".to_owned()),
            requester: a.requested_by,
            created: timestamp(a.created_at),
            ago: ago(now - a.created_at),
            risk_level,
        });
    }
    if more && let Some(last) = page.rows.last() {
        page.next = Some(query.with_after(&last.id));
    }
    html(StatusCode::OK, &page)
}

/// A gate that required approval, as recorded when the action was suggested.
struct Gate {
    name: String,
    reason: String,
}

/// The gates the suggestion's record names (`...; gate NAME requires approval: REASON`);
/// passing gates are not recorded.
fn recorded_gates(suggest_comment: &str) -> Vec<Gate> {
    suggest_comment
        .split("; gate ")
        .skip(1)
        .filter_map(|part| {
            part.split_once(" requires approval: ").or_else(|| part.split_once(" answered by the decision above: "))
        })
        .map(|(name, reason)| Gate { name: name.to_owned(), reason: reason.to_owned() })
        .collect()
}

/// An approval (or rejection) recorded on the action.
struct Decided {
    at: String,
    actor: String,
    event: String,
    note: Option<String>,
}

/// A provider request id and the step that made it.
struct RequestId {
    event: String,
    id: String,
}

#[derive(Template)]
#[template(path = "action.html")]
struct ActionPage {
    flash: Option<Flash>,
    me: Me,
    c: Card,
    mode: String,
    finding: Option<String>,
    created: String,
    updated: String,
    approval_expires: Option<String>,
    rollback_window: String,
    last_error: Option<String>,
    plan_hash: Option<String>,
    reach: Option<u32>,
    gates: Vec<Gate>,
    decisions: Vec<Decided>,
    request_ids: Vec<RequestId>,
    outcome: Option<Vec<DiffRow>>,
    restored: bool,
    pending_acceptance: bool,
    attempts: u32,
    is_admin: bool,
    can_roll_back: bool,
}

/// `GET /ui/actions/{id}`.
pub(super) async fn page(AxState(ui): AxState<Ui>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Ok(id) = id.parse::<ActionId>() else {
        return super::message(StatusCode::NOT_FOUND, "Not found", format!("{id} is not an action id"));
    };
    let view = match view(&ui, &signed.actor, id).await {
        Ok(v) => v,
        Err(e) => return error_page(&e),
    };
    let now = ui.now();
    let d = &view.detail;
    let a = &d.action;
    let gates = view
        .transitions
        .iter()
        // The record that created the action: `suggest`, or `emergency` / `run_step` for one
        // a decision made beforehand approved.
        .find(|t| t.from.is_none())
        .and_then(|t| t.comment.as_deref())
        .map(recorded_gates)
        .unwrap_or_default();
    let decisions = view
        .transitions
        .iter()
        .filter(|t| t.decided_by.is_some() || matches!(t.event.as_str(), "approve" | "reject"))
        .map(|t| Decided {
            at: timestamp(t.at),
            actor: t.decided_by.clone().unwrap_or_else(|| t.actor.clone()),
            event: t.event.clone(),
            note: t.comment.clone().filter(|c| !c.trim().is_empty()),
        })
        .collect();
    let request_ids = view
        .transitions
        .iter()
        .flat_map(|t| t.request_ids.iter().map(|r| RequestId { event: t.event.clone(), id: r.clone() }))
        .collect();
    let (rollback_window, rollback_open) = match d.rollback_expires_at {
        Some(until) if until > now => (format!("open until {} (in {})", timestamp(until), age(until - now)), true),
        Some(until) => (format!("closed at {}", timestamp(until)), false),
        None if d.plan.as_ref().is_some_and(|p| p.reversibility == Reversibility::Irreversible) => {
            ("none: the change cannot be undone".to_owned(), false)
        }
        None => ("not open: nothing was executed yet".to_owned(), false),
    };
    let outcome = match (&d.before, &d.after) {
        (Some(before), Some(after)) => Some(DiffRow::between(&before.state, &after.state)),
        _ => None,
    };
    let role = signed.actor.role;
    // The engine decides; the button shows where a rollback can be asked for.
    let can_roll_back =
        role >= Role::Approver && ((a.state == State::Completed && rollback_open) || a.state == State::Failed);
    let page = ActionPage {
        flash,
        me: Me::new(&signed, "actions"),
        mode: a.mode.to_string(),
        finding: a.finding_id.clone(),
        created: format!("{} ({})", timestamp(a.created_at), ago(now - a.created_at)),
        updated: format!("{} ({})", timestamp(a.updated_at), ago(now - a.updated_at)),
        approval_expires: d.approval_expires_at.filter(|_| a.state == State::PendingApproval).map(timestamp),
        rollback_window,
        last_error: d.last_error.clone(),
        plan_hash: d.plan.as_ref().map(|p| p.plan_hash.to_string()),
        reach: d.plan.as_ref().and_then(|p| p.reach),
        gates,
        decisions,
        request_ids,
        outcome,
        restored: d.restored.is_some(),
        pending_acceptance: d.pending_acceptance,
        attempts: d.attempts,
        is_admin: role >= Role::Admin,
        can_roll_back,
        c: card(view, &signed.actor, now),
    };
    html(StatusCode::OK, &page)
}

/// A button of the action page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Button {
    Approve,
    Reject,
    Release,
    ForceExecute,
    Rollback,
}

impl Button {
    fn done(self) -> &'static str {
        match self {
            Self::Approve => "Approved",
            Self::Reject => "Rejected",
            Self::Release => "Released",
            Self::ForceExecute => "Force-executed",
            Self::Rollback => "Rolled back",
        }
    }

    /// The verb, as a sentence names it.
    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Release => "release",
            Self::ForceExecute => "force-execute",
            Self::Rollback => "roll back",
        }
    }

    /// Every button but reject can lead to a write at the provider.
    fn writes(self) -> bool {
        self != Self::Reject
    }

    /// Release and force-execute override a limit or the breaker: a reason is required.
    fn needs_reason(self) -> bool {
        matches!(self, Self::Release | Self::ForceExecute)
    }
}

/// `POST /ui/actions/{id}/{button}`: `approve`, `reject`, `release`, `force-execute` or
/// `rollback`; any other button is 404.
pub(super) async fn button(
    AxState(ui): AxState<Ui>,
    Path((id, button)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
) -> Response {
    let button = match button.as_str() {
        "approve" => Button::Approve,
        "reject" => Button::Reject,
        "release" => Button::Release,
        "force-execute" => Button::ForceExecute,
        "rollback" => Button::Rollback,
        _ => return super::message(StatusCode::NOT_FOUND, "Not found", "no such button"),
    };
    press(ui, id, headers, form, button).await
}

/// A non-empty trimmed field.
fn filled(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The flash for a handler's response (the execution and rollback handlers answer with a
/// response of their own: an outcome, or an error body for a provider failure).
async fn flash_of(id: ActionId, button: Button, response: Response) -> Flash {
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status.is_success() {
        let outcome = v["outcome"].as_str().unwrap_or("done").replace('_', " ");
        let state = v["action"]["state"].as_str().unwrap_or("unchanged");
        Flash::ok(format!("{} action {id}: {outcome}; it is now {state}.", button.done()))
    } else {
        Flash::error(v["error"]["message"].as_str().unwrap_or("the request failed").to_owned())
    }
}

/// Runs `button`'s handler for the signed-in caller after the form's checks; flashes what
/// came of it and returns to the action's page (or the dashboard it was posted from).
async fn press(
    ui: Ui,
    id: String,
    headers: HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
    button: Button,
) -> Response {
    let signed = match check_post(&ui, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Ok(Form(form)) = form else { return super::forbidden("the form is missing") };
    let Ok(id) = id.parse::<ActionId>() else {
        return done(&ui, &signed, Flash::error(format!("{id} is not an action id")), "/ui/actions").await;
    };
    let back = if form.back.as_deref() == Some("dashboard") { "/".to_owned() } else { format!("/ui/actions/{id}") };
    let flash = run(&ui, &signed, id, form, button).await;
    done(&ui, &signed, flash, &back).await
}

/// Sets the flash and answers with a 303 to `back`.
async fn done(ui: &Ui, signed: &Signed, flash: Flash, back: &str) -> Response {
    match ui.set_flash(&signed.sid, flash).await {
        Ok(()) => see_other(back),
        Err(e) => error_page(&e),
    }
}

/// The checks of the console itself (a reason, the typed confirmation), then the handler.
async fn run(ui: &Ui, signed: &Signed, id: ActionId, form: PostForm, button: Button) -> Flash {
    let reason = filled(form.reason);
    if button.needs_reason() && reason.is_none() {
        return Flash::error(format!(
            "Not done: to {} this action, give a reason; it is kept in the audit.",
            button.verb()
        ));
    }
    if button.writes() {
        // Read as the caller: a caller who may not read the action learns nothing here.
        let view = match view(ui, &signed.actor, id).await {
            Ok(v) => v,
            Err(e) => return Flash::error(e.message),
        };
        let a = &view.detail.action;
        let plan = view.detail.plan.as_ref();
        let risk = plan.map(|p| risk_of(a, p));
        if needs_confirmation(plan.map(|p| p.reversibility), risk.as_ref())
            && filled(form.confirm).as_deref() != Some(a.target.identity.as_str())
        {
            return Flash::error(format!(
                "Not done: this change is irreversible or high-risk; type the target's name, {}, to confirm.",
                a.target.identity
            ));
        }
    }
    let note = filled(form.note);
    let (state, caller, path) = (AxState(ui.api.clone()), Caller(signed.actor.clone()), ActionPath(id));
    let replied = |r: Result<axum::Json<ActionReply>, ApiError>| match r {
        Ok(axum::Json(ActionReply { action })) => {
            Flash::ok(format!("{} action {id}; it is now {}.", button.done(), action.state.as_str()))
        }
        Err(e) => Flash::error(e.message),
    };
    match button {
        Button::Approve => replied(handlers::approve(state, caller, path, OptionalJson(NoteBody { note })).await),
        Button::Reject => replied(handlers::reject(state, caller, path, OptionalJson(NoteBody { note })).await),
        Button::Release => {
            replied(handlers::release(state, caller, path, OptionalJson(NoteBody { note: reason })).await)
        }
        Button::ForceExecute => {
            let body = ApiJson(ReasonBody { reason: reason.unwrap_or_default() });
            match handlers::force_execute(state, caller, path, body).await {
                Ok(response) => flash_of(id, button, response).await,
                Err(e) => Flash::error(e.message),
            }
        }
        Button::Rollback => match handlers::rollback(state, caller, path, OptionalJson(NoteBody { note })).await {
            Ok(response) => flash_of(id, button, response).await,
            Err(e) => Flash::error(e.message),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_come_from_the_suggestion_record() {
        let gates = recorded_gates(
            "standing access; gate reversibility requires approval: lossy; gate hours requires approval: outside business hours",
        );
        let named: Vec<(&str, &str)> = gates.iter().map(|g| (g.name.as_str(), g.reason.as_str())).collect();
        assert_eq!(named, [("reversibility", "lossy"), ("hours", "outside business hours")]);
        assert!(recorded_gates("just a reason").is_empty());
    }

    #[test]
    fn confirmation_is_for_irreversible_or_high_risk_changes() {
        let high = Risk::from_score(4);
        let low = Risk::from_score(1);
        assert!(needs_confirmation(Some(Reversibility::Irreversible), Some(&low)));
        assert!(needs_confirmation(Some(Reversibility::Reversible), Some(&high)));
        assert!(!needs_confirmation(Some(Reversibility::Lossy), Some(&Risk::from_score(3))));
        assert!(!needs_confirmation(None, None));
    }

    #[test]
    fn the_next_page_link_keeps_the_filters() {
        let q = ListQuery {
            state: Some("completed".into()),
            q: Some("a b&c".into()),
            control: Some(String::new()),
            ..ListQuery::default()
        };
        assert_eq!(q.with_after("x"), "state=completed&q=a%20b%26c&after=x");
        assert!(ListQuery { sort: Some("sideways".into()), ..ListQuery::default() }.parse().is_err());
        assert!(ListQuery { limit: Some("0".into()), ..ListQuery::default() }.parse().is_err());
        assert!(ListQuery { kind: Some("revoke".into()), ..ListQuery::default() }.parse().is_ok());
    }
}
