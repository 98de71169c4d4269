//! Campaigns: many findings taken in as one named piece of work, resumable after a crash.
//!
//! - [`create_campaign`] stores the campaign with every entry of its document before anything
//!   is taken in, so what is left to do never lives only in a process that may be killed.
//! - [`run_campaign`] takes the entries in order from the stored cursor, each as
//!   [`crate::intake`] takes a finding (de-duplicated by control and canonical target), and
//!   records its progress after every [`BATCH`] entries. An action an entry creates gets the
//!   id derived from the campaign and the entry ([`ActionId::for_campaign_entry`]), so an entry
//!   taken in again after a crash (or by two processes at once) finds its action instead of
//!   creating a second one, and is counted as `created` once.
//! - [`campaign_status`] reads the campaign's actions: counts per state, throughput, an
//!   estimate of the time left, and what waits (held by a limit until its window frees up, or
//!   backing off after a provider's throttling).

use std::collections::BTreeMap;

use remediation_core::store::{Campaign, CampaignProgress, CampaignReason, check_campaign_name};
use remediation_core::{
    Action, ActionFilter, ActionId, Actor, CampaignEntry, EngineError, Finding, PageRequest, Role, State, StoreError,
};
use remediation_runtime::Runtime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ServiceError;
use crate::intake::{EntryIntake, intake_entry};
use crate::scanner::{EntryOutcome, ScannerDocument, ScannerEntry};

/// Entries taken in between two progress records.
pub const BATCH: u64 = 100;

/// The failpoint after a batch was taken in and before its progress is recorded: a process
/// that dies there leaves the most to take in again (crash tests).
pub const BEFORE_PROGRESS: &str = "campaign_before_progress";

/// Reasons kept in a campaign's record.
const KEPT_REASONS: usize = 20;

/// At most this many waiting actions are read in full for [`campaign_status`].
const WAITS_READ: usize = 50;

/// One entry as a campaign keeps it (`flatten` rules out `deny_unknown_fields`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finding_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    control_id: Option<String>,
    #[serde(flatten)]
    outcome: StoredOutcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum StoredOutcome {
    Finding { finding: Box<Finding> },
    NothingToDo { reason: String },
    Unsupported { reason: String },
    Invalid { reason: String },
}

impl From<ScannerEntry> for StoredEntry {
    fn from(e: ScannerEntry) -> Self {
        let outcome = match e.outcome {
            EntryOutcome::Finding(finding) => StoredOutcome::Finding { finding },
            EntryOutcome::NothingToDo { reason } => StoredOutcome::NothingToDo { reason },
            EntryOutcome::Unsupported { reason } => StoredOutcome::Unsupported { reason },
            EntryOutcome::Invalid { reason } => StoredOutcome::Invalid { reason },
        };
        Self { finding_id: e.finding_id, control_id: e.control_id, outcome }
    }
}

/// What to create a campaign from.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    /// Its name; `None` names it `import-YYYYMMDD-HHMMSS-xxxx` after the current time (with
    /// four random hex digits).
    pub name: Option<String>,
    /// Where the findings came from (a file name, `-`, `api`).
    pub source: String,
    /// The connector every entry is sent to, replacing the one it names.
    pub connector: Option<String>,
}

fn require_requester(actor: &Actor) -> Result<(), ServiceError> {
    if actor.role >= Role::Requester {
        return Ok(());
    }
    Err(ServiceError::Engine(EngineError::Refused {
        rule: "roles".to_owned(),
        reason: format!("{} is a {}; a campaign needs the requester role or higher", actor.name, actor.role),
    }))
}

fn campaign_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::CampaignNotFound(name) => {
            ServiceError::NotFound { what: format!("no campaign named `{name}`; `remediate campaign list` shows them") }
        }
        e => e.into(),
    }
}

/// Stores a new campaign with every entry of `document` (requester or higher). Nothing is
/// taken in yet: [`run_campaign`] does that.
pub async fn create_campaign(
    runtime: &Runtime,
    actor: &Actor,
    new: NewCampaign,
    document: ScannerDocument,
) -> Result<Campaign, ServiceError> {
    require_requester(actor)?;
    let now = runtime.clock().now();
    let name = match new.name {
        Some(name) => name,
        None => {
            // Two imports in one second must not collide: a short random suffix.
            let format = time::macros::format_description!("import-[year][month][day]-[hour][minute][second]");
            let stamp = now.format(&format).unwrap_or_else(|_| "import".to_owned());
            let suffix = &ActionId::new_at(now).to_string()[24..28];
            format!("{stamp}-{suffix}")
        }
    };
    check_campaign_name(&name).map_err(|message| ServiceError::Invalid { field: "name", message })?;
    let entries: Vec<serde_json::Value> = document
        .entries
        .into_iter()
        .map(|e| serde_json::to_value(StoredEntry::from(e)))
        .collect::<Result<_, _>>()
        .map_err(|e| ServiceError::Invalid { field: "findings", message: format!("cannot keep an entry: {e}") })?;
    let campaign = Campaign {
        name,
        created_by: actor.name.clone(),
        created_at: now,
        source: new.source,
        format: document.format.map(|f| f.as_str().to_owned()),
        connector: new.connector,
        total: entries.len() as u64,
        cursor: 0,
        outcomes: BTreeMap::new(),
        reasons: Vec::new(),
        finished_at: None,
        updated_at: now,
    };
    runtime.store().create_campaign(&campaign, &entries).await?;
    tracing::info!(campaign = %campaign.name, entries = campaign.total, actor = %actor.name, "campaign created");
    Ok(campaign)
}

/// Every campaign, newest first.
pub async fn campaigns(runtime: &Runtime) -> Result<Vec<Campaign>, ServiceError> {
    Ok(runtime.store().campaigns().await?)
}

/// One entry taken in by [`run_campaign`], for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDone {
    /// The entry's index.
    pub index: u64,
    /// Its outcome's name (as [`EntryIntake::label`]; `created` for an entry whose action an
    /// interrupted run already created).
    pub outcome: &'static str,
}

/// The outcome counts and reasons of a campaign as it runs.
struct Tally {
    outcomes: BTreeMap<String, u64>,
    reasons: BTreeMap<(String, String), u64>,
}

impl Tally {
    fn of(c: &Campaign) -> Self {
        let reasons = c.reasons.iter().map(|r| ((r.outcome.clone(), r.reason.clone()), r.count)).collect();
        Self { outcomes: c.outcomes.clone(), reasons }
    }

    fn add(&mut self, outcome: &str, reason: Option<String>) {
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
        if let Some(r) = reason {
            *self.reasons.entry((outcome.to_owned(), r)).or_default() += 1;
        }
    }

    fn progress(&self, cursor: u64, total: u64, at: OffsetDateTime) -> CampaignProgress {
        let mut reasons: Vec<CampaignReason> = self
            .reasons
            .iter()
            .map(|((outcome, reason), count)| CampaignReason {
                outcome: outcome.clone(),
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.outcome.cmp(&b.outcome)));
        reasons.truncate(KEPT_REASONS);
        CampaignProgress {
            cursor,
            outcomes: self.outcomes.clone(),
            reasons,
            finished_at: (cursor >= total).then_some(at),
            at,
        }
    }
}

/// Takes in campaign `name`'s entries from where it stopped (its creator, or an admin), calling
/// `progress` after each, until the last or until `stop()` says so (checked between entries:
/// the progress made is recorded first). Returns the campaign as recorded. A finished campaign
/// is returned as it is.
pub async fn run_campaign(
    runtime: &Runtime,
    actor: &Actor,
    name: &str,
    mut progress: impl FnMut(&Campaign, &EntryDone),
    stop: impl Fn() -> bool,
) -> Result<Campaign, ServiceError> {
    require_requester(actor)?;
    let store = runtime.store();
    let mut campaign =
        store.campaign(name).await?.ok_or_else(|| campaign_error(StoreError::CampaignNotFound(name.to_owned())))?;
    // The actions are suggested in the name of whoever takes the entries in: only the
    // campaign's creator (or an admin) does, so nobody else's name ends up on them.
    if actor.name != campaign.created_by && actor.role < Role::Admin {
        return Err(ServiceError::Engine(EngineError::Refused {
            rule: "roles".to_owned(),
            reason: format!(
                "campaign {} was created by {}; only they or an admin may take it in",
                campaign.name, campaign.created_by
            ),
        }));
    }
    let mut tally = Tally::of(&campaign);
    let mut cursor = campaign.cursor;
    while cursor < campaign.total && !stop() {
        let batch = store.campaign_entries(name, cursor, BATCH as usize).await.map_err(campaign_error)?;
        if batch.is_empty() {
            break;
        }
        for (index, value) in batch {
            if stop() {
                break;
            }
            let (outcome, reason) = take_entry(runtime, actor, &campaign, index, value).await;
            tally.add(outcome, reason);
            cursor = index + 1;
            progress(&campaign, &EntryDone { index, outcome });
        }
        runtime.failpoint(BEFORE_PROGRESS);
        campaign = store
            .record_campaign_progress(name, &tally.progress(cursor, campaign.total, runtime.clock().now()))
            .await
            .map_err(campaign_error)?;
    }
    Ok(campaign)
}

/// Takes in one stored entry: its outcome's name and, when it was not taken, why.
async fn take_entry(
    runtime: &Runtime,
    actor: &Actor,
    campaign: &Campaign,
    index: u64,
    value: serde_json::Value,
) -> (&'static str, Option<String>) {
    let entry: StoredEntry = match serde_json::from_value(value) {
        Ok(e) => e,
        Err(e) => return ("invalid", Some(format!("the stored entry cannot be read by this version: {e}"))),
    };
    let mut finding = match entry.outcome {
        StoredOutcome::Finding { finding } => finding,
        StoredOutcome::NothingToDo { reason } => return ("nothing_to_do", Some(reason)),
        StoredOutcome::Unsupported { reason } => return ("unsupported", Some(reason)),
        StoredOutcome::Invalid { reason } => return ("invalid", Some(reason)),
    };
    if let Some(c) = &campaign.connector {
        finding.connector = Some(c.clone());
    }
    let entry = CampaignEntry { campaign: campaign.name.clone(), index, created_at: campaign.created_at };
    // Taken in before an interruption: its action exists under the derived id.
    let id = ActionId::for_campaign_entry(&entry);
    if runtime.store().get(id).await.is_ok() {
        return ("created", None);
    }
    match intake_entry(runtime, actor, &finding, Some(&entry)).await {
        Ok(i) => (EntryIntake::Taken(Box::new(i)).label(), None),
        // Another process took the same entry in meanwhile.
        Err(_) if runtime.store().get(id).await.is_ok() => ("created", None),
        Err(e) => ("failed", Some(remediation_core::error_chain(&e))),
    }
}

/// An action that waits, and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignWait {
    /// The action.
    pub id: ActionId,
    /// Its handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// `limit` (held: a blast-radius window is full) or `backoff` (approved, waiting after a
    /// provider's throttling or a retryable failure).
    pub cause: String,
    /// The limit's key, or the last error.
    pub detail: String,
    /// When it may go on: the window frees up, or the back-off ends (unknown for a window
    /// whose oldest slot could not be read).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub until: Option<OffsetDateTime>,
}

/// Where a campaign stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignStatus {
    /// The campaign's record: its import's progress and outcomes.
    pub campaign: Campaign,
    /// The campaign's actions by state.
    pub states: BTreeMap<String, u64>,
    /// How many actions it created.
    pub actions: u64,
    /// Of them, how many are still open (waiting for a decision, approved, held, executing,
    /// rolling back).
    pub open: u64,
    /// Entries taken in per second while the import ran (unknown before the first batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_per_sec: Option<f64>,
    /// Actions that reached an end state in the last hour.
    pub finished_last_hour: u64,
    /// Seconds until every open action ends at the last hour's pace (unknown without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
    /// Waiting actions (at most 50 read), soonest first.
    pub waits: Vec<CampaignWait>,
    /// When this was read.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub as_of: OffsetDateTime,
}

fn is_open(s: State) -> bool {
    matches!(
        s,
        State::Suggested
            | State::PendingApproval
            | State::Approved
            | State::Held
            | State::Executing
            | State::RollbackRequested
            | State::RollingBack
    )
}

/// Where campaign `name` stands (any role that may read actions).
pub async fn campaign_status(runtime: &Runtime, name: &str) -> Result<CampaignStatus, ServiceError> {
    let store = runtime.store();
    let campaign =
        store.campaign(name).await?.ok_or_else(|| campaign_error(StoreError::CampaignNotFound(name.to_owned())))?;
    let now = runtime.clock().now();
    let filter = ActionFilter { campaign: Some(name.to_owned()), ..ActionFilter::default() };
    let mut actions: Vec<Action> = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = store.list(&filter, &page).await?;
        actions.extend(got.items);
        match got.next {
            Some(after) => page = PageRequest { after: Some(after), limit: 500 },
            None => break,
        }
    }
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    for a in &actions {
        *states.entry(a.state.as_str().to_owned()).or_default() += 1;
    }
    let open = actions.iter().filter(|a| is_open(a.state)).count() as u64;
    let finished_last_hour = actions
        .iter()
        .filter(|a| !is_open(a.state) && a.updated_at > now - time::Duration::HOUR && a.updated_at <= now)
        .count() as u64;
    let eta_secs = (finished_last_hour > 0 && open > 0).then(|| open * 3_600 / finished_last_hour);
    let import_per_sec = (campaign.cursor > 0)
        .then(|| (campaign.updated_at - campaign.created_at).as_seconds_f64())
        .filter(|secs| *secs > 0.0)
        .map(|secs| campaign.cursor as f64 / secs);
    let mut waits = Vec::new();
    let waiting = actions.iter().filter(|a| matches!(a.state, State::Held | State::Approved)).take(WAITS_READ);
    for a in waiting {
        if a.state == State::Held {
            let limit = store.transitions(a.id).await?.into_iter().rev().find_map(|t| t.limit);
            let (detail, until) = limit.map_or_else(|| ("held".to_owned(), None), |l| (l.slot.key.clone(), l.frees_at));
            waits.push(CampaignWait { id: a.id, handle: a.handle, cause: "limit".to_owned(), detail, until });
        } else {
            let d = store.get(a.id).await?;
            if let Some(until) = d.not_before.filter(|t| *t > now) {
                let detail = d.last_error.unwrap_or_else(|| "retrying later".to_owned());
                waits.push(CampaignWait {
                    id: a.id,
                    handle: a.handle,
                    cause: "backoff".to_owned(),
                    detail,
                    until: Some(until),
                });
            }
        }
    }
    waits.sort_by_key(|w| (w.until.is_none(), w.until));
    Ok(CampaignStatus {
        campaign,
        states,
        actions: actions.len() as u64,
        open,
        import_per_sec,
        finished_last_hour,
        eta_secs,
        waits,
        as_of: now,
    })
}
