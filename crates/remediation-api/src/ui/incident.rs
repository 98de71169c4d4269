//! The console's incident pages.
//!
//! - `/ui/respond`: a person's accounts across every connection (any role), and for responders
//!   and admins the form that cuts the person off everywhere; the outcome of each
//!   (connection, action) is shown on the page that answers the post.
//! - `/ui/playbooks`: the playbooks in force, and the whole plan of one for a person, with the
//!   button that asks for a run of exactly that plan (its hash is sent back).
//! - `/ui/runs` and `/ui/runs/{id}`: the runs and one run with its steps, approvals and report,
//!   with the buttons the caller's role allows (approve the shown plan, reject, resume, roll
//!   back).
//!
//! Every button calls the service layer, which decides roles, separation of duties and plan
//! binding; a refusal is shown with the service's own words.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use remediation_core::{Actor, KindName, Role};
use remediation_service::incident::{IdentityView, RESPOND_KINDS, RespondOutcome, RespondRequest, RespondResult};
use remediation_service::playbooks::{Run, RunState, RunStep, StepState};
use serde::Deserialize;

use super::actions::DiffRow;
use super::{Flash, Me, Signed, Ui, error_page, html, open_page, see_other, timestamp};
use crate::error::ApiError;

/// `-` for nothing, else the items joined by commas.
fn joined(v: &[String]) -> String {
    if v.is_empty() { "-".to_owned() } else { v.join(", ") }
}

/// A service refusal or failure, in the API's words.
fn not_done(e: remediation_service::ServiceError) -> (StatusCode, Flash) {
    let e = ApiError::from(e);
    (e.status, Flash::error(format!("Not done: {}", e.message)))
}

/// Responders and admins respond.
fn may_respond(actor: &Actor) -> bool {
    matches!(actor.role, Role::Responder | Role::Admin)
}

/// Requesters and above (not the engine itself) plan and ask for runs.
fn may_request(actor: &Actor) -> bool {
    actor.role >= Role::Requester && actor.role != Role::System
}

/// Approvers and admins decide runs.
fn may_decide(actor: &Actor) -> bool {
    actor.role >= Role::Approver && actor.role != Role::System
}

/// One account of the person.
struct AccountRow {
    connector: String,
    type_name: String,
    id: String,
    login: String,
    display_name: String,
    matched_by: String,
    status: String,
    protected: bool,
    groups: String,
    sessions: String,
    can: String,
}

/// A connection that could not look.
struct ProblemRow {
    connector: String,
    outcome: String,
    message: String,
}

/// The person's accounts, as the page shows them.
struct IdentityTable {
    accounts: Vec<AccountRow>,
    not_found: String,
    problems: Vec<ProblemRow>,
}

impl From<IdentityView> for IdentityTable {
    fn from(view: IdentityView) -> Self {
        let accounts = view
            .accounts
            .into_iter()
            .map(|f| AccountRow {
                can: joined(&f.can.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>()),
                connector: f.connector,
                type_name: f.type_name,
                id: f.account.id,
                login: f.account.login,
                display_name: f.account.display_name.unwrap_or_default(),
                matched_by: f.account.matched_by,
                status: f.account.status.unwrap_or_else(|| "-".to_owned()),
                protected: f.account.protected,
                groups: f.account.groups.map_or_else(|| "(not shown)".to_owned(), |g| joined(&g)),
                sessions: f.account.sessions.map_or_else(|| "(not shown)".to_owned(), |n| n.to_string()),
            })
            .collect();
        let problems = view
            .problems
            .into_iter()
            .map(|p| ProblemRow { connector: p.connector, outcome: p.outcome, message: p.message })
            .collect();
        Self { accounts, not_found: joined(&view.not_found), problems }
    }
}

/// One checkbox of the respond form.
struct KindBox {
    name: &'static str,
    checked: bool,
}

/// One (connection, action) of a response.
struct OutcomeRow {
    connector: String,
    account: String,
    action: String,
    status: &'static str,
    action_id: String,
    handle: String,
    message: String,
}

/// What a response came to.
struct Outcome {
    outcome: &'static str,
    words: &'static str,
    rows: Vec<OutcomeRow>,
}

impl From<RespondResult> for Outcome {
    fn from(r: RespondResult) -> Self {
        let (outcome, words) = match r.outcome {
            RespondOutcome::Completed => ("completed", "Every applicable step completed."),
            RespondOutcome::Failed => ("failed", "Every applicable step failed at the provider."),
            RespondOutcome::Partial => (
                "partial",
                "Only part of it is done: some steps were held, refused, failed or wait for approval; see each row.",
            ),
        };
        let rows = r
            .steps
            .into_iter()
            .map(|s| OutcomeRow {
                connector: s.connector,
                account: s.account,
                action: s.action.as_str().to_owned(),
                status: s.status.as_str(),
                action_id: s.action_id.map(|id| id.to_string()).unwrap_or_default(),
                handle: match (s.handle, s.action_id) {
                    (Some(h), _) => format!("#{h}"),
                    (None, Some(id)) => id.to_string(),
                    (None, None) => String::new(),
                },
                message: s.message.unwrap_or_default(),
            })
            .collect();
        Self { outcome, words, rows }
    }
}

#[derive(Template)]
#[template(path = "respond.html")]
struct RespondPage {
    flash: Option<Flash>,
    me: Me,
    /// The person asked for (empty: none yet).
    person: String,
    /// Their accounts, once looked up.
    table: Option<IdentityTable>,
    /// The caller may respond.
    responder: bool,
    /// The caller may ask for playbook runs.
    requester: bool,
    kinds: Vec<KindBox>,
    reason: String,
    finding: String,
    /// The outcome of the response just made.
    result: Option<Outcome>,
    /// The playbooks' names, for the run form.
    playbooks: Vec<String>,
}

/// What the respond form sends (also the look-up's query string).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RespondForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    finding: String,
    #[serde(default)]
    revoke_sessions: Option<String>,
    #[serde(default)]
    force_password_reset: Option<String>,
    #[serde(default)]
    suspend: Option<String>,
    #[serde(default)]
    notify: Option<String>,
}

impl RespondForm {
    /// The kinds ticked, in the order they run.
    fn actions(&self) -> Vec<String> {
        RESPOND_KINDS.into_iter().filter(|k| self.ticked(*k)).map(|k| k.as_str().to_owned()).collect()
    }

    fn ticked(&self, kind: KindName) -> bool {
        let field = match kind {
            KindName::RevokeSessions => &self.revoke_sessions,
            KindName::ForcePasswordReset => &self.force_password_reset,
            KindName::Suspend => &self.suspend,
            KindName::Notify => &self.notify,
            _ => &None,
        };
        field.is_some()
    }
}

/// Renders the respond page for `form.person`, looking the person up when one is given.
async fn respond_page(
    ui: &Ui,
    signed: &Signed,
    mut flash: Option<Flash>,
    mut status: StatusCode,
    form: &RespondForm,
    result: Option<Outcome>,
) -> Response {
    let runtime = ui.api.runtime();
    let person = form.person.trim().to_owned();
    let table = if person.is_empty() {
        None
    } else {
        match remediation_service::incident::identity(runtime, &person).await {
            Ok(view) => Some(IdentityTable::from(view)),
            Err(e) => {
                // A refusal of the post is the page's news; a look-up error only when alone.
                if flash.is_none() {
                    let e = ApiError::from(e);
                    flash = Some(Flash::error(format!("Cannot look {person} up: {}", e.message)));
                    status = e.status;
                }
                None
            }
        }
    };
    let playbooks = match remediation_service::playbooks::playbooks(runtime).await {
        Ok(all) => all.into_iter().map(|e| e.playbook.name).collect(),
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let kinds = RESPOND_KINDS.into_iter().map(|k| KindBox { name: k.as_str(), checked: form.ticked(k) }).collect();
    let page = RespondPage {
        flash,
        me: Me::new(signed, "respond"),
        person,
        table,
        responder: may_respond(&signed.actor),
        requester: may_request(&signed.actor),
        kinds,
        reason: form.reason.clone(),
        finding: form.finding.clone(),
        result,
        playbooks,
    };
    html(status, &page)
}

/// `GET /ui/respond?person=...`.
pub(super) async fn respond_get(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    query: Result<Query<RespondForm>, QueryRejection>,
) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let form = query.map(|Query(q)| q).unwrap_or_default();
    respond_page(&ui, &signed, flash, StatusCode::OK, &form, None).await
}

/// `POST /ui/respond`: cuts the person off everywhere (responder or admin; the service refuses
/// everyone else).
pub(super) async fn respond_post(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    form: Result<Form<RespondForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return super::forbidden("the form is missing its CSRF token") };
    let signed = match super::check_csrf(&ui, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let request = RespondRequest {
        actions: form.actions(),
        reason: form.reason.trim().to_owned(),
        finding: Some(form.finding.trim().to_owned()).filter(|f| !f.is_empty()),
    };
    let person = form.person.trim();
    match remediation_service::incident::respond(ui.api.runtime(), &signed.actor, person, &request).await {
        Ok(result) => {
            let flash = match result.outcome {
                RespondOutcome::Completed => Flash::ok(format!("Responded for {person}: completed.")),
                RespondOutcome::Failed => Flash::error(format!("Responded for {person}: failed.")),
                RespondOutcome::Partial => Flash::error(format!("Responded for {person}: partial.")),
            };
            // The form comes back empty, so a second click does not respond twice.
            let fresh = RespondForm { person: form.person.clone(), ..RespondForm::default() };
            respond_page(&ui, &signed, Some(flash), StatusCode::OK, &fresh, Some(Outcome::from(result))).await
        }
        Err(e) => {
            let (status, flash) = not_done(e);
            respond_page(&ui, &signed, Some(flash), status, &form, None).await
        }
    }
}

/// One step of a plan or a run, as the page shows it.
struct StepRow {
    number: u32,
    connector: String,
    kind: String,
    target: String,
    state: &'static str,
    action_id: String,
    handle: String,
    message: String,
    description: String,
    reversibility: String,
    diff: Vec<DiffRow>,
}

impl From<RunStep> for StepRow {
    fn from(s: RunStep) -> Self {
        let (description, reversibility, diff) = match &s.plan {
            Some(p) => (
                p.description.clone(),
                p.reversibility.to_string(),
                DiffRow::between(&p.before.state, &p.expected_after.state),
            ),
            None => (String::new(), String::new(), Vec::new()),
        };
        Self {
            number: s.number,
            connector: s.connector,
            kind: s.kind.to_string(),
            target: s.target.to_string(),
            state: s.state.as_str(),
            action_id: s.action_id.map(|id| id.to_string()).unwrap_or_default(),
            handle: match (s.handle, s.action_id) {
                (Some(h), _) => format!("#{h}"),
                (None, Some(id)) => id.to_string(),
                (None, None) => String::new(),
            },
            message: s.message.unwrap_or_default(),
            description,
            reversibility,
            diff,
        }
    }
}

/// One playbook in force.
struct PlaybookRow {
    name: String,
    version: u32,
    source: String,
    description: String,
    steps: String,
}

/// A plan shown before a run is asked for.
struct PlanView {
    playbook: String,
    version: u32,
    identity: String,
    plan_hash: String,
    approvals_needed: u32,
    /// At least one step would run.
    runnable: bool,
}

#[derive(Template)]
#[template(path = "playbooks.html")]
struct PlaybooksPage {
    flash: Option<Flash>,
    me: Me,
    playbooks: Vec<PlaybookRow>,
    requester: bool,
    /// The form's values.
    chosen: String,
    person: String,
    reason: String,
    plan: Option<PlanView>,
    /// The plan's steps (none without a plan).
    steps: Vec<StepRow>,
    /// A plan shows every step's diff at once.
    open_diffs: bool,
}

/// The plan form (a query string) and the run button (a post).
#[derive(Debug, Default, Deserialize)]
pub(super) struct PlanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    playbook: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    reason: String,
    /// The plan hash shown, which the run must still have.
    #[serde(default)]
    plan_hash: String,
}

/// Renders the playbooks page, planning `form.playbook` for `form.person` when both are given
/// and the caller may ask for runs.
async fn playbooks_page(
    ui: &Ui,
    signed: &Signed,
    mut flash: Option<Flash>,
    mut status: StatusCode,
    form: &PlanForm,
) -> Response {
    let runtime = ui.api.runtime();
    let all = match remediation_service::playbooks::playbooks(runtime).await {
        Ok(all) => all,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let playbooks = all
        .into_iter()
        .map(|e| PlaybookRow {
            steps: e
                .playbook
                .steps
                .iter()
                .map(|s| {
                    if s.groups.is_empty() {
                        s.action.as_str().to_owned()
                    } else {
                        format!("{} ({})", s.action.as_str(), s.groups.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join(" → "),
            name: e.playbook.name,
            version: e.playbook.version,
            source: e.source,
            description: e.playbook.description,
        })
        .collect();
    let requester = may_request(&signed.actor);
    let (chosen, person, reason) =
        (form.playbook.trim().to_owned(), form.person.trim().to_owned(), form.reason.trim().to_owned());
    let mut plan = None;
    let mut steps = Vec::new();
    if !chosen.is_empty() && !person.is_empty() {
        if !requester {
            if flash.is_none() {
                flash = Some(Flash::error(format!(
                    "{} is a {}; planning a run needs the requester role or higher",
                    signed.actor.name, signed.actor.role
                )));
                status = StatusCode::FORBIDDEN;
            }
        } else {
            match remediation_service::playbooks::plan_playbook(runtime, &signed.actor, &chosen, &person, &reason).await
            {
                Ok(p) => {
                    plan = Some(PlanView {
                        runnable: p.steps.iter().any(|s| s.state == StepState::Planned),
                        playbook: p.playbook,
                        version: p.version,
                        identity: p.identity,
                        plan_hash: p.plan_hash,
                        approvals_needed: p.approvals_needed,
                    });
                    steps = p.steps.into_iter().map(StepRow::from).collect();
                }
                Err(e) => {
                    let (code, f) = not_done(e);
                    if flash.is_none() {
                        flash = Some(f);
                        status = code;
                    }
                }
            }
        }
    }
    let page = PlaybooksPage {
        flash,
        me: Me::new(signed, "runs"),
        playbooks,
        requester,
        chosen,
        person,
        reason,
        plan,
        steps,
        open_diffs: true,
    };
    html(status, &page)
}

/// `GET /ui/playbooks?playbook=...&person=...&reason=...`: the playbooks, and a plan.
pub(super) async fn playbooks(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    query: Result<Query<PlanForm>, QueryRejection>,
) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let form = query.map(|Query(q)| q).unwrap_or_default();
    playbooks_page(&ui, &signed, flash, StatusCode::OK, &form).await
}

/// `POST /ui/playbooks/run`: asks for a run of the plan shown (its hash must still hold).
pub(super) async fn request_run(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    form: Result<Form<PlanForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return super::forbidden("the form is missing its CSRF token") };
    let signed = match super::check_csrf(&ui, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let hash = Some(form.plan_hash.trim()).filter(|h| !h.is_empty());
    let started = remediation_service::playbooks::start_run(
        ui.api.runtime(),
        &signed.actor,
        form.playbook.trim(),
        form.person.trim(),
        form.reason.trim(),
        hash,
    )
    .await;
    match started {
        Ok(run) => {
            let flash = Flash::ok(format!(
                "Run {} of {} for {} requested; it waits for {} approval(s) by someone else.",
                run.id, run.playbook, run.identity, run.approvals_needed
            ));
            if let Err(e) = ui.set_flash(&signed.sid, flash).await {
                return error_page(&e);
            }
            see_other(&run_path(&run.id))
        }
        Err(e) => {
            // The page shows the plan as it is now, under the refusal.
            let (status, flash) = not_done(e);
            playbooks_page(&ui, &signed, Some(flash), status, &form).await
        }
    }
}

/// `/ui/runs/{id}` for an id a run may have, else the list.
fn run_path(id: &str) -> String {
    if remediation_core::store::check_document_id(id).is_ok()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        format!("/ui/runs/{id}")
    } else {
        "/ui/runs".to_owned()
    }
}

/// Steps that ran (whatever became of them after) and steps that run at all.
fn progress(run: &Run) -> (usize, usize) {
    let total = run.steps.iter().filter(|s| s.state != StepState::Skipped).count();
    let done = run
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                StepState::Completed | StepState::NotUndoable | StepState::RolledBack | StepState::RollbackFailed
            )
        })
        .count();
    (done, total)
}

/// One row of the runs list.
struct RunRow {
    id: String,
    playbook: String,
    version: u32,
    identity: String,
    state: &'static str,
    requested_by: String,
    created: String,
    done: usize,
    total: usize,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    flash: Option<Flash>,
    me: Me,
    rows: Vec<RunRow>,
}

/// `GET /ui/runs`.
pub(super) async fn runs(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let all = match remediation_service::playbooks::runs(ui.api.runtime()).await {
        Ok(all) => all,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let rows = all
        .into_iter()
        .map(|r| {
            let (done, total) = progress(&r);
            RunRow {
                state: r.state.as_str(),
                created: timestamp(r.created_at),
                id: r.id,
                playbook: r.playbook,
                version: r.version,
                identity: r.identity,
                requested_by: r.requested_by,
                done,
                total,
            }
        })
        .collect();
    html(StatusCode::OK, &RunsPage { flash, me: Me::new(&signed, "runs"), rows })
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    flash: Option<Flash>,
    me: Me,
    id: String,
    playbook: String,
    version: u32,
    identity: String,
    reason: String,
    requested_by: String,
    created: String,
    state: &'static str,
    plan_hash: String,
    approvals_needed: u32,
    approvals: String,
    approvals_count: usize,
    rollback_requested_by: String,
    done: usize,
    total: usize,
    steps: Vec<StepRow>,
    /// A run folds its steps' diffs away.
    open_diffs: bool,
    report: Vec<String>,
    can_approve: bool,
    can_reject: bool,
    can_resume: bool,
    can_roll_back: bool,
    /// Why the caller sees no approve button on a run waiting for approval.
    approve_note: String,
}

/// `GET /ui/runs/{id}`.
pub(super) async fn run(AxState(ui): AxState<Ui>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let run = match remediation_service::playbooks::run(ui.api.runtime(), &id).await {
        Ok(run) => run,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let actor = &signed.actor;
    let decider = may_decide(actor);
    let pending = run.state == RunState::PendingApproval;
    let own = run.requested_by == actor.name;
    let approved = run.approvals.contains(&actor.name);
    let approve_note = match (pending, decider, own, approved) {
        (false, ..) => String::new(),
        (true, false, ..) => "Approvers and admins approve runs.".to_owned(),
        (true, true, true, _) => "You asked for this run: another approver approves it.".to_owned(),
        (true, true, false, true) => "You approved this plan; it waits for another approver.".to_owned(),
        (true, true, false, false) => String::new(),
    };
    let can_roll_back = decider
        && match run.state {
            RunState::Completed => true,
            RunState::RollbackRequested => run.rollback_requested_by.as_deref() != Some(actor.name.as_str()),
            _ => false,
        };
    let (done, total) = progress(&run);
    let page = RunPage {
        flash,
        me: Me::new(&signed, "runs"),
        can_approve: pending && decider && !own && !approved,
        can_reject: pending && decider,
        can_resume: run.state == RunState::Paused && decider,
        can_roll_back,
        approve_note,
        state: run.state.as_str(),
        created: timestamp(run.created_at),
        approvals_count: run.approvals.len(),
        approvals: joined(&run.approvals),
        rollback_requested_by: run.rollback_requested_by.unwrap_or_default(),
        done,
        total,
        id: run.id,
        playbook: run.playbook,
        version: run.version,
        identity: run.identity,
        reason: run.reason,
        requested_by: run.requested_by,
        plan_hash: run.plan_hash,
        approvals_needed: run.approvals_needed,
        steps: run.steps.into_iter().map(StepRow::from).collect(),
        open_diffs: false,
        report: run.report,
    };
    html(StatusCode::OK, &page)
}

/// What a run's buttons send.
#[derive(Deserialize)]
pub(super) struct RunButtonForm {
    #[serde(default)]
    csrf: String,
    /// The plan hash shown when approving.
    #[serde(default)]
    plan_hash: String,
    #[serde(default)]
    note: String,
    /// A rollback's reason.
    #[serde(default)]
    reason: String,
}

/// `POST /ui/runs/{id}/{button}`: approve, reject, resume or rollback; the service checks the
/// caller's role, separation of duties and the plan hash.
pub(super) async fn run_button(
    AxState(ui): AxState<Ui>,
    Path((id, button)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<RunButtonForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return super::forbidden("the form is missing its CSRF token") };
    let signed = match super::check_csrf(&ui, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let runtime = ui.api.runtime();
    let actor = &signed.actor;
    let note = Some(form.note.trim()).filter(|n| !n.is_empty());
    use remediation_service::playbooks as p;
    let result = match button.as_str() {
        "approve" => {
            // Approving without the shown hash would approve whatever the plan is now.
            let hash = form.plan_hash.trim();
            if hash.is_empty() {
                return super::forbidden("the approval does not name the plan it approves; reload the page");
            }
            p::approve_run(runtime, actor, &id, Some(hash), note).await.map(|r| ("Approved", r))
        }
        "reject" => p::reject_run(runtime, actor, &id, note).await.map(|r| ("Rejected", r)),
        "resume" => p::resume_run(runtime, actor, &id).await.map(|r| ("Resumed", r)),
        "rollback" => p::rollback_run(runtime, actor, &id, form.reason.trim()).await.map(|r| ("Rollback", r)),
        _ => return super::message(StatusCode::NOT_FOUND, "Not found", "no such button"),
    };
    let flash = match result {
        Ok((what, run)) => Flash::ok(format!("{what}: run {} is now {}.", run.id, run.state.as_str())),
        Err(e) => not_done(e).1,
    };
    match ui.set_flash(&signed.sid, flash).await {
        Ok(()) => see_other(&run_path(&id)),
        Err(e) => error_page(&e),
    }
}
