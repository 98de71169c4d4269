//! Where a command runs: against the local data directory ([`Local`]) or a running
//! `remediation-server` ([`Remote`]). One [`Backend`] serves every command, so each command
//! is written once and prints the same tables, JSON and exit codes either way. Request and
//! response bodies are `remediation_api::types`, so the wire format has one definition.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use remediation_api::types::{
    ActionQuery, ActionReply, ActionView, AuditQuery, ConnectorView, ConsistencyQuery, CreateAction, ExecuteBody,
    InclusionQuery, KillSwitchBody, KillSwitchView, LimitsView, NoteBody, OutcomeView, Page, PendingQuery,
    PendingReply, ReasonBody, SettingsPatch, SettingsView, SuggestionView,
};
use remediation_api::types::{FindingReply, FindingsQuery, FindingsReply};
use remediation_audit::{
    AuditKey, AuditRecord, AuditVerification, ConsistencyBundle, InclusionBundle, LogSigningKey, PublicKeySet,
    SignedTreeHead,
};
use remediation_config::Config;
use remediation_core::{
    Action, ActionFilter, ActionId, Actor, Engine, ExecuteOutcome, Finding, Plan, RollbackOutcome, State, Store,
};
use remediation_limiter::Usage;
use remediation_runtime::access::Outcome as Change;
use remediation_runtime::{Runtime, RuntimeOptions};
use remediation_service::scanner::{DocumentFormat, ReadOptions, read_findings_value};
use remediation_service::{Intake, SuggestRequest};
use remediation_store_sqlite::PendingChange;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::events::EventLog;
use crate::exit::ExitCode;
use crate::failure::{Failure, runtime_failure};
use crate::output::{clean, errln};
use remediation_runtime::EVENTS_FILE;
use remediation_runtime::relay::{RelayError, RelaySink};

/// The environment variable holding the bearer token for `--server`.
pub(crate) const TOKEN_ENV: &str = "REMEDIATION_TOKEN";

/// Where commands run.
#[derive(Debug)]
pub(crate) enum Backend {
    /// The engine over the local data directory.
    Local(Box<Local>),
    /// A `remediation-server` over HTTP.
    Remote(Remote),
}

/// The engine assembled over a local data directory.
pub(crate) struct Local {
    /// The data directory.
    pub(crate) dir: PathBuf,
    /// The engine.
    pub(crate) engine: Arc<Engine>,
    /// The store (audit verification and export).
    pub(crate) store: Arc<dyn Store>,
    /// Where the settings in force come from: `config` (seed) or `store` (changed with
    /// `settings set`).
    pub(crate) settings_source: &'static str,
    /// The runtime of the tenant the command acts in: principals, tokens and changes that
    /// wait for a second admin.
    pub(crate) runtime: Arc<Runtime>,
    /// The installation's runtime (the default tenant's), from which every tenant's is found.
    pub(crate) installation: Arc<Runtime>,
    /// Where the tree head signing key lives (`[audit] signing_key`), if one is configured.
    pub(crate) signing_key_path: Option<PathBuf>,
    /// How long audit records are kept before they may be archived (`[audit] retention_days`).
    pub(crate) retention_days: u32,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local").field("dir", &self.dir).field("settings_source", &self.settings_source).finish()
    }
}

/// A state-changing step on one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
    /// Cancel.
    Cancel,
    /// Promote advisory guidance to a request for approval.
    Promote,
    /// Return a held action to approved.
    Release,
}

impl Step {
    fn path(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
            Self::Promote => "promote",
            Self::Release => "release",
        }
    }
}

/// What an execution or rollback came to, from either backend.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The outcome in the API's shape.
    pub(crate) view: OutcomeView,
    /// The plan changes as JSON (structured locally, strings from a server).
    pub(crate) changes: Value,
    /// True for a rollback (a failure prints differently).
    pub(crate) rollback: bool,
}

impl Outcome {
    fn empty(outcome: &str) -> OutcomeView {
        OutcomeView::named(outcome)
    }

    /// A local execution outcome; `rollback_expires_at` is a completed change's rollback
    /// deadline (none when it cannot be rolled back).
    pub(crate) fn from_execute(outcome: ExecuteOutcome, rollback_expires_at: Option<time::OffsetDateTime>) -> Self {
        let mut changes = Value::Null;
        let view = match outcome {
            ExecuteOutcome::Completed { action, after } => OutcomeView {
                action: Some(action),
                after: Some(after),
                rollback_expires_at,
                ..Self::empty("completed")
            },
            ExecuteOutcome::Failed { action, error } => {
                OutcomeView { action: Some(action), error: Some(error), ..Self::empty("failed") }
            }
            ExecuteOutcome::Held { action, limit } => {
                OutcomeView { action: Some(action), limit: Some(limit), ..Self::empty("held") }
            }
            ExecuteOutcome::HeldByBreaker { action } => {
                OutcomeView { action: Some(action), breaker: true, ..Self::empty("held") }
            }
            ExecuteOutcome::PlanChanged { action, changes: c } => {
                changes = json!(c);
                OutcomeView {
                    action: Some(action),
                    changes: c.iter().map(ToString::to_string).collect(),
                    ..Self::empty("plan_changed")
                }
            }
            ExecuteOutcome::Requeued { action, not_before } => {
                OutcomeView { action: Some(action), not_before: Some(not_before), ..Self::empty("requeued") }
            }
            ExecuteOutcome::DryRun { plan, decision, limit } => {
                OutcomeView { plan: Some(plan), decision: Some(decision), limit, ..Self::empty("dry_run") }
            }
        };
        Self { view, changes, rollback: false }
    }

    /// A local rollback outcome.
    pub(crate) fn from_rollback(outcome: RollbackOutcome) -> Self {
        let view = match outcome {
            RollbackOutcome::RolledBack { action } => {
                OutcomeView { action: Some(action), ..Self::empty("rolled_back") }
            }
            RollbackOutcome::RestoredPendingAcceptance { action } => {
                OutcomeView { action: Some(action), ..Self::empty("restored_pending_acceptance") }
            }
            RollbackOutcome::Failed { action, error } => {
                OutcomeView { action: Some(action), error: Some(error), ..Self::empty("failed") }
            }
            RollbackOutcome::Requested { action } => {
                OutcomeView { action: Some(action), ..Self::empty("rollback_requested") }
            }
        };
        Self { view, changes: Value::Null, rollback: true }
    }

    fn remote(view: OutcomeView, rollback: bool) -> Self {
        let changes = json!(view.changes);
        Self { view, changes, rollback }
    }
}

impl Local {
    /// Builds the engine from a loaded configuration; `key` seals the audit checkpoint.
    ///
    /// The configuration file seeds the policy settings; once they have been changed with
    /// `settings set` or `controls set`, the copy in the store is authoritative.
    ///
    /// `signing` is the tree head signing key read from `signing_key_path` (`[audit]
    /// signing_key`), if one is configured.
    pub(crate) async fn build(
        config: &Config,
        dir: &Path,
        key: Option<AuditKey>,
        signing: Option<LogSigningKey>,
        tenant: &remediation_core::TenantId,
        config_file: Option<&Path>,
    ) -> Result<Self, Failure> {
        let mut options = RuntimeOptions {
            // No server delivers to this file: archiving does not wait for it.
            sinks: vec![
                RelaySink::events(
                    "events-jsonl",
                    Arc::new(EventLog::new(dir.join(EVENTS_FILE))),
                    remediation_core::DeliverFrom::Now,
                )
                .archive_does_not_wait(),
            ],
            signing_key: signing.map(Arc::new),
            config_file: config_file.map(Path::to_path_buf),
            ..RuntimeOptions::default()
        };
        if let Ok(point) = std::env::var("REMEDIATION_FAILPOINT") {
            options.failpoints = Some(failpoint_hook(point));
        }
        if !dir.is_dir() {
            return Err(runtime_failure(remediation_runtime::RuntimeError::DataDirMissing { dir: dir.to_owned() }));
        }
        // The store `[store]` names; the CLI never migrates a shared store by itself (SQLite
        // is migrated whenever it is opened).
        let target = remediation_runtime::store::target(config).map_err(runtime_failure)?;
        let opened =
            remediation_runtime::store::open(&target, dir, key, Default::default()).await.map_err(runtime_failure)?;
        options.store = Some(opened);
        // The key went with the store, which keeps the checkpoint.
        let installation = Arc::new(Runtime::build(config, dir, None, options).map_err(runtime_failure)?);
        let runtime = installation.for_tenant(tenant).await.map_err(runtime_failure)?;
        // Before this command writes, so the events it causes are not skipped by a sink seen
        // for the first time.
        match runtime.relay().register().await {
            Ok(()) | Err(RelayError::Store(remediation_core::StoreError::Unsupported { .. })) => {}
            Err(e) => errln!("warning: cannot register the event sinks: {}", remediation_core::error_chain(&e)),
        }
        // A config file may not seed a control in auto it has not earned (README, "Earning
        // auto mode"); every command refuses, as the server refuses to start.
        runtime.check_seeded_promotions().await.map_err(runtime_failure)?;
        let active = runtime.active().await.map_err(runtime_failure)?;
        let store = runtime.store().clone();
        Ok(Self {
            dir: dir.to_owned(),
            engine: active.engine,
            store,
            settings_source: active.source.as_str(),
            runtime,
            installation,
            signing_key_path: config.audit.signing_key_path(dir),
            retention_days: config.audit.retention_days,
        })
    }
}

/// Says that an action an interrupted worker left behind was settled before this command.
fn print_recovered(r: &remediation_core::Recovery) {
    errln!("recovered {}: {} -> {}: {}", r.id, r.from, r.to, clean(&r.note));
}

/// The hook behind `REMEDIATION_FAILPOINT=name`: at that failpoint the process announces it on
/// standard error and stops, waiting to be killed (crash tests send SIGKILL). With
/// `REMEDIATION_FAILPOINT=name:resume-on-stdin` it waits for a line on standard input instead,
/// then carries on (tests freeze and resume it meanwhile).
fn failpoint_hook(point: String) -> remediation_core::FailpointHook {
    let (point, resume) = match point.split_once(':') {
        Some((point, "resume-on-stdin")) => (point.to_owned(), true),
        _ => (point, false),
    };
    Arc::new(move |name: &'static str| {
        if name != point {
            return;
        }
        if resume {
            errln!("failpoint {name} reached; waiting for a line on standard input");
            let mut line = String::new();
            // End of input or an unreadable stdin resumes too: nothing else would.
            let _ = std::io::stdin().read_line(&mut line);
            errln!("failpoint {name} passed");
            return;
        }
        errln!("failpoint {name} reached; waiting to be killed");
        loop {
            std::thread::park();
        }
    })
}

/// A `remediation-server` and the bearer token to call it with. The token is only ever put
/// in the `Authorization` header: never in `Debug`, errors or output.
pub(crate) struct Remote {
    base: String,
    /// The tenant whose routes are called (`None`: the default tenant's, `/v1/…`).
    tenant: Option<String>,
    token: SecretString,
    client: reqwest::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("base", &self.base).field("token", &"[redacted]").finish()
    }
}

fn usage(message: String) -> Failure {
    Failure::new(ExitCode::Usage, anyhow::anyhow!(message))
}

impl Remote {
    /// A client for the server at `url` (http or https), authenticating with `token`.
    pub(crate) fn new(url: &str, token: Option<SecretString>) -> Result<Self, Failure> {
        // The URL is not echoed back: whatever it holds stays out of messages.
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| usage(format!("--server is not a URL such as http://127.0.0.1:8080 ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(usage("--server must be an http:// or https:// URL with a host".to_owned()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(usage(format!("--server must not carry credentials; put the token in {TOKEN_ENV}")));
        }
        let token = token.filter(|t| !t.expose_secret().trim().is_empty()).ok_or_else(|| {
            usage(format!(
                "--server {} needs a bearer token in the {TOKEN_ENV} environment variable (an administrator creates one with `remediate token create`)",
                parsed.as_str().trim_end_matches('/')
            ))
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("remediate/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { base: parsed.as_str().trim_end_matches('/').to_owned(), tenant: None, token, client })
    }

    /// This client calling `tenant`'s routes (`/v1/tenants/TENANT/…`).
    pub(crate) fn for_tenant(mut self, tenant: &remediation_core::TenantId) -> Self {
        self.tenant = (!tenant.is_default()).then(|| tenant.to_string());
        self
    }

    /// Sends one request; the status and the body as JSON (`null` when empty).
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&(dyn erased::Query + Sync)>,
        body: Option<&B>,
    ) -> Result<(u16, Value), Failure> {
        let url = match (&self.tenant, path.strip_prefix("/v1/")) {
            (Some(tenant), Some(rest)) => format!("{}/v1/tenants/{tenant}/{rest}", self.base),
            _ => format!("{}{path}", self.base),
        };
        let mut request = self
            .client
            .request(method, &url)
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {}", self.token.expose_secret()));
        if let Some(q) = query {
            request = q.apply(request);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok((status, value))
    }

    fn unreachable(&self, e: reqwest::Error) -> Failure {
        let what = if e.is_timeout() { "no answer in time from" } else { "cannot reach" };
        Failure::new(
            ExitCode::Internal,
            anyhow::Error::new(e.without_url()).context(format!("{what} the server at {}", self.base)),
        )
    }

    /// A request whose success body is `T`; errors map to the CLI's exit codes.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&(dyn erased::Query + Sync)>,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        let (status, value) = self.send(method, path, query, body).await?;
        if !(200..300).contains(&status) {
            return Err(api_failure(status, &value));
        }
        decode(value, path)
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call::<(), T>(reqwest::Method::GET, path, None, None).await
    }

    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        self.call(reqwest::Method::POST, path, None, Some(body)).await
    }

    /// A POST whose answer is `T` for 200, 207 (partly done) and 502 (every step failed at the
    /// provider) alike; any other status, or a 502 without such a body, is a failure.
    pub(crate) async fn post_multi<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        let (status, value) = self.send(reqwest::Method::POST, path, None, Some(body)).await?;
        match status {
            200 | 207 => decode(value, path),
            502 => match serde_json::from_value::<T>(value.clone()) {
                Ok(t) => Ok(t),
                Err(_) => Err(api_failure(status, &value)),
            },
            _ => Err(api_failure(status, &value)),
        }
    }

    /// A request answered 200 with `T`, or 202 with a change that waits for a second admin.
    async fn maybe_pending<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<Change<T>, Failure> {
        let (status, value) = self.send(method, path, None, Some(body)).await?;
        match status {
            202 => Ok(Change::Pending(Box::new(decode::<PendingReply>(value, path)?.pending_change))),
            200..300 => Ok(Change::Applied(decode(value, path)?)),
            _ => Err(api_failure(status, &value)),
        }
    }

    /// An execution or rollback: a 502 with the action in its details is a failed outcome
    /// (exit 5, printed like the local one), not a transport error.
    async fn outcome<B: Serialize>(&self, path: &str, body: &B, rollback: bool) -> Result<Outcome, Failure> {
        let (status, value) = self.send(reqwest::Method::POST, path, None, Some(body)).await?;
        if status == 502 {
            let detail = &value["error"];
            if let Some(action) = detail["details"].get("action").cloned() {
                let action: Action = decode(action, path)?;
                let message = detail["message"].as_str().unwrap_or_default();
                let prefix = if rollback {
                    format!("rollback of {} failed: ", action.id)
                } else {
                    format!("action {} failed: ", action.id)
                };
                let error = message.strip_prefix(&prefix).unwrap_or(message).to_owned();
                let view = OutcomeView { action: Some(action), error: Some(error), ..Outcome::empty("failed") };
                return Ok(Outcome { view, changes: Value::Null, rollback });
            }
        }
        if !(200..300).contains(&status) {
            return Err(api_failure(status, &value));
        }
        Ok(Outcome::remote(decode(value, path)?, rollback))
    }
}

/// Query strings without making the request methods generic over them.
mod erased {
    /// Something that can be added to a request as its query string.
    pub(crate) trait Query {
        /// Adds it.
        fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
    }

    impl<T: serde::Serialize> Query for T {
        fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
            request.query(self)
        }
    }
}

fn decode<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| {
        Failure::new(
            ExitCode::Internal,
            anyhow::anyhow!("the server's answer to {path} is not what this client expects: {e}"),
        )
    })
}

/// Maps an error response (`{"error":{"code","message","details"}}`) to the exit code the
/// local command would have returned for the same refusal.
pub(crate) fn api_failure(status: u16, body: &Value) -> Failure {
    let error = &body["error"];
    let code = error["code"].as_str().unwrap_or_default();
    let details = &error["details"];
    let message = error["message"].as_str().map_or_else(|| format!("the server answered HTTP {status}"), str::to_owned);
    let exit = match (status, code) {
        (401, _) | (_, "unauthenticated") => {
            return Failure::new(ExitCode::Refused, anyhow::anyhow!("{message} (check the token in {TOKEN_ENV})"));
        }
        (409, _) if details["rule"] == "audit_log" => ExitCode::AuditBroken,
        (403, _) | (_, "forbidden") | (409, _) | (_, "conflict") | (429, _) => ExitCode::Refused,
        (404, _) | (_, "not_found") => ExitCode::NotFound,
        (502, _) | (_, "provider_failure") => ExitCode::Provider,
        // The engine's refusals that the API reports as invalid requests are safety refusals
        // (3) locally, and an unknown connector is "not found" (4).
        (400, _) if details.get("rule").is_some() || details["field"] == "kind" => ExitCode::Refused,
        (400, _) if details["field"] == "connector" && details.get("connector").is_some() => ExitCode::NotFound,
        (400 | 405 | 413 | 415 | 422, _) => ExitCode::Usage,
        _ => ExitCode::Internal,
    };
    // A refusal because of the action's state (not the caller's role) names it, so the
    // command can say what to do next as the local one does.
    let state = match details.get("role") {
        None => details["current_state"].as_str().and_then(|s| s.parse::<State>().ok()),
        Some(_) => None,
    };
    Failure::new(exit, anyhow::anyhow!(message)).in_state(state)
}

/// `s` percent-encoded as one path segment, so an id typed by a person cannot change the path.
pub(crate) fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn id_path(id: ActionId, what: &str) -> String {
    if what.is_empty() { format!("/v1/actions/{id}") } else { format!("/v1/actions/{id}/{what}") }
}

impl Backend {
    /// The local engine, for commands that only exist locally.
    pub(crate) fn local(&self, command: &str) -> Result<&Local, Failure> {
        match self {
            Self::Local(l) => Ok(l),
            Self::Remote(_) => Err(only_local(command)),
        }
    }

    /// Expires actions not approved in time (the server's worker does it there).
    pub(crate) async fn expire_stale(&self) -> Result<Vec<Action>, Failure> {
        match self {
            Self::Local(l) => Ok(l.engine.expire_stale().await?),
            Self::Remote(_) => Ok(Vec::new()),
        }
    }

    /// Suggests an action.
    pub(crate) async fn suggest(&self, request: SuggestRequest, actor: &Actor) -> Result<SuggestionView, Failure> {
        match self {
            Self::Local(l) => {
                let s = remediation_service::suggest(&l.runtime, actor, request).await?;
                let guidance =
                    (s.action.state == State::Suggested).then(|| remediation_core::guidance(&s.action, Some(&s.plan)));
                Ok(SuggestionView { action: s.action, plan: s.plan, decision: s.decision, guidance, intake: None })
            }
            Self::Remote(r) => {
                let body = CreateAction {
                    connector: request.connector,
                    kind: request.kind,
                    target: request.target,
                    reason: request.reason,
                    control_id: request.control_id,
                    finding_id: request.finding_id,
                    dry_run: request.dry_run,
                };
                r.post("/v1/actions", &body).await
            }
        }
    }

    /// Takes in a finding through the one intake use case (locally, or the server's). The
    /// answer is a suggestion, or `{"action", "intake"}` for an action already open or
    /// completed.
    pub(crate) async fn intake(&self, finding: &Finding, actor: &Actor) -> Result<Value, Failure> {
        match self {
            Self::Local(l) => {
                let outcome = remediation_service::intake(&l.runtime, actor, finding).await?;
                let intake = outcome.label().to_owned();
                Ok(match outcome {
                    Intake::Existing(action) | Intake::FixHolds(action) | Intake::DidNotHold(action) => {
                        json!(FindingReply { action, intake })
                    }
                    Intake::Created(s) | Intake::Redone(s) => {
                        let guidance = (s.action.state == State::Suggested)
                            .then(|| remediation_core::guidance(&s.action, Some(&s.plan)));
                        json!(SuggestionView {
                            action: s.action,
                            plan: s.plan,
                            decision: s.decision,
                            guidance,
                            intake: Some(intake),
                        })
                    }
                })
            }
            Self::Remote(r) => r.post("/v1/findings", finding).await,
        }
    }

    /// Takes in every entry of a scanner's document through the one intake use case (locally,
    /// or the server's `POST /v1/findings`), each entry answering for itself.
    pub(crate) async fn intake_document(
        &self,
        document: Value,
        declared: Option<DocumentFormat>,
        connector: Option<String>,
        actor: &Actor,
    ) -> Result<FindingsReply, Failure> {
        match self {
            Self::Local(l) => {
                let doc = read_findings_value(document, declared, &ReadOptions::default()).map_err(|e| {
                    Failure::new(ExitCode::Usage, anyhow::Error::new(e).context("not a findings document"))
                })?;
                let format = doc.format;
                let entries = remediation_service::intake_document(&l.runtime, actor, doc, connector.as_deref()).await;
                Ok(FindingsReply::new(format, entries))
            }
            Self::Remote(r) => {
                let query = FindingsQuery { format: declared.map(|f| f.as_str().to_owned()), connector };
                r.call(reqwest::Method::POST, "/v1/findings", Some(&query), Some(&document)).await
            }
        }
    }

    /// Creates campaign `new` from `document` and takes it in to its end: locally with
    /// `progress` after each entry until `stop()` says so; remotely in one request.
    pub(crate) async fn campaign_import(
        &self,
        new: remediation_service::NewCampaign,
        document: Value,
        declared: Option<DocumentFormat>,
        actor: &Actor,
        progress: impl FnMut(&remediation_core::store::Campaign, &remediation_service::EntryDone),
        stop: impl Fn() -> bool,
    ) -> Result<remediation_service::CampaignStatus, Failure> {
        match self {
            Self::Local(l) => {
                let doc = read_findings_value(document, declared, &ReadOptions::default()).map_err(|e| {
                    Failure::new(ExitCode::Usage, anyhow::Error::new(e).context("not a findings document"))
                })?;
                let campaign = remediation_service::create_campaign(&l.runtime, actor, new, doc).await?;
                self.campaign_resume(&campaign.name, actor, progress, stop).await
            }
            Self::Remote(r) => {
                let body = remediation_api::campaigns::CampaignBody {
                    name: new.name,
                    format: declared.map(|f| f.as_str().to_owned()),
                    connector: new.connector,
                    findings: document,
                };
                r.post("/v1/campaigns", &body).await
            }
        }
    }

    /// Takes campaign `name` in from where it stopped, as [`Self::campaign_import`] does.
    pub(crate) async fn campaign_resume(
        &self,
        name: &str,
        actor: &Actor,
        progress: impl FnMut(&remediation_core::store::Campaign, &remediation_service::EntryDone),
        stop: impl Fn() -> bool,
    ) -> Result<remediation_service::CampaignStatus, Failure> {
        match self {
            Self::Local(l) => {
                remediation_service::run_campaign(&l.runtime, actor, name, progress, stop).await?;
                Ok(remediation_service::campaign_status(&l.runtime, name).await?)
            }
            Self::Remote(r) => r.post(&format!("/v1/campaigns/{}/resume", path_segment(name)), &()).await,
        }
    }

    /// Where campaign `name` stands.
    pub(crate) async fn campaign_status(&self, name: &str) -> Result<remediation_service::CampaignStatus, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::campaign_status(&l.runtime, name).await?),
            Self::Remote(r) => r.get(&format!("/v1/campaigns/{}", path_segment(name))).await,
        }
    }

    /// Every campaign, newest first.
    pub(crate) async fn campaigns(&self) -> Result<Vec<remediation_core::store::Campaign>, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::campaigns(&l.runtime).await?),
            Self::Remote(r) => {
                let list: remediation_api::campaigns::CampaignList = r.get("/v1/campaigns").await?;
                Ok(list.items)
            }
        }
    }

    /// One page of at most `limit` actions (in one state) after the action `after`, oldest
    /// first, and the cursor of the next page: the store's keyset page locally, the server's
    /// page remotely.
    pub(crate) async fn list_page(
        &self,
        filter: &ActionFilter,
        after: Option<ActionId>,
        limit: usize,
    ) -> Result<(Vec<Action>, Option<ActionId>), Failure> {
        match self {
            Self::Local(l) => {
                let page = l.engine.list_page(filter, &remediation_core::PageRequest { after, limit }).await?;
                Ok((page.items, page.next))
            }
            Self::Remote(r) => {
                let q = ActionQuery {
                    state: filter.state,
                    connector: filter.connector.clone(),
                    identity: filter.identity.clone(),
                    control: filter.control.clone(),
                    campaign: filter.campaign.clone(),
                    limit: Some(limit),
                    cursor: after.map(|a| a.to_string()),
                };
                let page: Page<Action> = r.call::<(), _>(reqwest::Method::GET, "/v1/actions", Some(&q), None).await?;
                let next = match page.next_cursor {
                    Some(c) => Some(c.parse::<ActionId>().map_err(|e| {
                        Failure::new(
                            ExitCode::Internal,
                            anyhow::anyhow!("the server's cursor `{c}` is not an action id: {e}"),
                        )
                    })?),
                    None => None,
                };
                Ok((page.items, next))
            }
        }
    }

    /// Every action (in one state), oldest first.
    pub(crate) async fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, Failure> {
        match self {
            Self::Local(l) => Ok(l.engine.list(filter).await?),
            Self::Remote(r) => {
                let mut all = Vec::new();
                let mut cursor = None;
                loop {
                    let q = ActionQuery {
                        state: filter.state,
                        connector: filter.connector.clone(),
                        identity: filter.identity.clone(),
                        control: filter.control.clone(),
                        campaign: filter.campaign.clone(),
                        limit: Some(500),
                        cursor,
                    };
                    let page: Page<Action> =
                        r.call::<(), _>(reqwest::Method::GET, "/v1/actions", Some(&q), None).await?;
                    all.extend(page.items);
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => return Ok(all),
                    }
                }
            }
        }
    }

    /// The id of the action with handle `handle`: from the store, or from the server (which
    /// takes a handle wherever an id goes).
    pub(crate) async fn action_by_handle(&self, handle: u64) -> Result<ActionId, Failure> {
        let missing = || {
            Failure::new(
                ExitCode::NotFound,
                anyhow::anyhow!("no action #{handle}; `remediate list` shows each action's handle"),
            )
        };
        match self {
            Self::Local(l) => l
                .store
                .action_by_handle(handle)
                .await
                .map_err(|e| Failure::from(remediation_core::EngineError::from(e)))?
                .ok_or_else(missing),
            Self::Remote(r) => {
                let view: ActionView = r.get(&format!("/v1/actions/{handle}")).await?;
                Ok(view.detail.action.id)
            }
        }
    }

    /// One action with its transitions.
    pub(crate) async fn view(&self, id: ActionId) -> Result<ActionView, Failure> {
        match self {
            Self::Local(l) => {
                Ok(ActionView { detail: l.engine.get(id).await?, transitions: l.engine.transitions(id).await? })
            }
            Self::Remote(r) => r.get(&id_path(id, "")).await,
        }
    }

    /// An action's plan.
    pub(crate) async fn plan(&self, id: ActionId) -> Result<Plan, Failure> {
        match self {
            Self::Local(l) => l
                .engine
                .get(id)
                .await?
                .plan
                .ok_or_else(|| Failure::new(ExitCode::NotFound, anyhow::anyhow!("action {id} has no plan"))),
            Self::Remote(r) => r.get(&id_path(id, "plan")).await,
        }
    }

    /// Approves, rejects, cancels, promotes or releases; the action and who acted (for a
    /// server, the token's name as recorded in the transition).
    pub(crate) async fn step(
        &self,
        step: Step,
        id: ActionId,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<(Action, String), Failure> {
        match self {
            Self::Local(l) => {
                let a = match step {
                    // Approving a requested rollback runs it.
                    Step::Approve => {
                        let attempt = remediation_service::approve_or_roll_back(&l.runtime, actor, id, note).await;
                        match attempt.report(print_recovered)? {
                            remediation_service::Approval::Approved(a) => a,
                            remediation_service::Approval::RolledBack(outcome) => outcome.action().clone(),
                        }
                    }
                    Step::Reject => remediation_service::reject(&l.runtime, actor, id, note).await?,
                    Step::Cancel => remediation_service::cancel(&l.runtime, actor, id, note).await?,
                    Step::Promote => remediation_service::promote(&l.runtime, actor, id, note).await?,
                    Step::Release => remediation_service::release(&l.runtime, actor, id, note).await?,
                };
                Ok((a, actor.name.clone()))
            }
            Self::Remote(r) => {
                let path = id_path(id, step.path());
                let (status, value) = r.send(reqwest::Method::POST, &path, None, Some(&NoteBody { note })).await?;
                // An approved rollback whose restore failed: the action, as locally.
                let failed = value["error"]["details"].get("action").filter(|_| status == 502).cloned();
                let a: Action = match failed {
                    Some(action) => decode(action, &path)?,
                    None if (200..300).contains(&status) => decode::<ActionReply>(value, &path)?.action,
                    None => return Err(api_failure(status, &value)),
                };
                let view: ActionView = r.get(&id_path(id, "")).await?;
                // The step's own record: an approved rollback is followed by the system's.
                let who = view
                    .transitions
                    .iter()
                    .rev()
                    .find(|t| t.event == step.path())
                    .or(view.transitions.last())
                    .map(|t| t.actor.clone())
                    .unwrap_or_default();
                Ok((a, who))
            }
        }
    }

    /// Executes (or dry-runs) an approved action.
    pub(crate) async fn execute(&self, id: ActionId, actor: &Actor, dry_run: bool) -> Result<Outcome, Failure> {
        match self {
            Self::Local(l) => {
                let done =
                    remediation_service::execute(&l.runtime, actor, id, dry_run).await.report(print_recovered)?;
                Ok(Outcome::from_execute(done.outcome, done.rollback_expires_at))
            }
            Self::Remote(r) => r.outcome(&id_path(id, "execute"), &ExecuteBody { dry_run }, false).await,
        }
    }

    /// Executes a held action despite its limit.
    pub(crate) async fn force_execute(&self, id: ActionId, actor: &Actor, reason: String) -> Result<Outcome, Failure> {
        match self {
            Self::Local(l) => {
                let done =
                    remediation_service::force_execute(&l.runtime, actor, id, reason).await.report(print_recovered)?;
                Ok(Outcome::from_execute(done.outcome, done.rollback_expires_at))
            }
            Self::Remote(r) => r.outcome(&id_path(id, "force-execute"), &ReasonBody { reason }, false).await,
        }
    }

    /// Rolls back a completed action.
    pub(crate) async fn rollback(&self, id: ActionId, actor: &Actor, note: Option<String>) -> Result<Outcome, Failure> {
        match self {
            Self::Local(l) => {
                let outcome =
                    remediation_service::rollback(&l.runtime, actor, id, note).await.report(print_recovered)?;
                Ok(Outcome::from_rollback(outcome))
            }
            Self::Remote(r) => r.outcome(&id_path(id, "rollback"), &NoteBody { note }, true).await,
        }
    }

    /// Connectors with health and capabilities; with `check`, also their write permissions.
    pub(crate) async fn connectors(&self, check: bool) -> Result<Vec<ConnectorView>, Failure> {
        match self {
            Self::Local(l) => {
                let mut all = Vec::new();
                // Not the engine's connectors: those answer health and permissions from a
                // cache, and an operator asking wants the provider's answer now.
                for c in l.runtime.connectors().await.map_err(remediation_service::ServiceError::from)? {
                    all.push(ConnectorView::of(c.as_ref(), check).await);
                }
                Ok(all)
            }
            Self::Remote(r) => r.get(if check { "/v1/connectors?check=true" } else { "/v1/connectors" }).await,
        }
    }

    /// The policy settings in force, where they come from, and the limits.
    pub(crate) async fn settings(&self) -> Result<SettingsView, Failure> {
        match self {
            Self::Local(l) => {
                let s = remediation_service::settings(&l.runtime).await?;
                Ok(SettingsView { source: s.source.to_owned(), policy: s.policy, limits: s.limits })
            }
            Self::Remote(r) => r.get("/v1/settings").await,
        }
    }

    /// Stores new policy settings (`doc` is the whole, validated document; audited), or, when
    /// they loosen the policy, the change that waits for a second admin.
    pub(crate) async fn save_policy(&self, actor: &Actor, doc: Value, reason: &str) -> Result<Change<()>, Failure> {
        match self {
            Self::Local(l) => Ok(l.runtime.change_settings(actor, doc, reason).await?),
            Self::Remote(r) => {
                let body = SettingsPatch { patch: doc, reason: reason.to_owned() };
                match r.maybe_pending::<_, SettingsView>(reqwest::Method::PATCH, "/v1/settings", &body).await? {
                    Change::Applied(_) => Ok(Change::Applied(())),
                    Change::Pending(c) => Ok(Change::Pending(c)),
                }
            }
        }
    }

    /// Every configured control with its settings, scope and record.
    pub(crate) async fn controls(&self) -> Result<Vec<remediation_api::types::ControlView>, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::controls::controls(&l.runtime).await?),
            Self::Remote(r) => {
                let view: remediation_api::types::ControlsView = r.get("/v1/controls").await?;
                Ok(view.controls)
            }
        }
    }

    /// One configured control with its settings, scope and record.
    pub(crate) async fn control(&self, id: &str) -> Result<remediation_api::types::ControlView, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::controls::control(&l.runtime, id).await?),
            Self::Remote(r) => r.get(&format!("/v1/controls/{}", url_segment(id))).await,
        }
    }

    /// Changes waiting for a second admin (every change with `all`).
    pub(crate) async fn pending_changes(&self, all: bool) -> Result<Vec<PendingChange>, Failure> {
        match self {
            Self::Local(l) => Ok(l.runtime.pending_changes(all).await?),
            Self::Remote(r) => {
                let q = PendingQuery { all };
                r.call::<(), _>(reqwest::Method::GET, "/v1/pending-changes", Some(&q), None).await
            }
        }
    }

    /// Confirms (`confirm`) or withdraws a pending change.
    pub(crate) async fn decide_change(
        &self,
        id: &str,
        confirm: bool,
        actor: &Actor,
        note: Option<String>,
    ) -> Result<PendingChange, Failure> {
        match self {
            Self::Local(l) if confirm => Ok(l.runtime.confirm_change(actor, id, note).await?),
            Self::Local(l) => Ok(l.runtime.cancel_change(actor, id, note).await?),
            Self::Remote(r) => {
                let verb = if confirm { "confirm" } else { "cancel" };
                let id = url_segment(id);
                let reply: PendingReply =
                    r.post(&format!("/v1/pending-changes/{id}/{verb}"), &NoteBody { note }).await?;
                Ok(reply.pending_change)
            }
        }
    }

    /// Whether the tenant's kill switch is on, and whether the installation's is.
    pub(crate) async fn kill_switch(&self) -> Result<(bool, bool), Failure> {
        match self {
            Self::Local(l) => {
                let state = l.runtime.active().await.map_err(runtime_failure)?.engine.safety_state().await?;
                Ok((state.kill_switch, state.installation_kill_switch))
            }
            Self::Remote(r) => {
                let view = r.get::<KillSwitchView>("/v1/kill-switch").await?;
                Ok((view.on, view.installation))
            }
        }
    }

    /// Turns the kill switch on (the actions it cancelled) or off (a change that waits for a
    /// second admin while the switch is on).
    pub(crate) async fn set_kill_switch(
        &self,
        on: bool,
        installation: bool,
        actor: &Actor,
        reason: String,
    ) -> Result<Change<Vec<Action>>, Failure> {
        match self {
            Self::Local(l) if installation => Ok(l.runtime.set_installation_kill_switch(actor, on, &reason).await?),
            Self::Local(l) => Ok(l.runtime.set_kill_switch(actor, on, &reason).await?),
            Self::Remote(r) => {
                let body = KillSwitchBody { on, reason, installation };
                match r.maybe_pending::<_, KillSwitchView>(reqwest::Method::POST, "/v1/kill-switch", &body).await? {
                    Change::Applied(v) => Ok(Change::Applied(v.cancelled)),
                    Change::Pending(c) => Ok(Change::Pending(c)),
                }
            }
        }
    }

    /// Resets the circuit breaker.
    pub(crate) async fn reset_breaker(&self, actor: &Actor, reason: String) -> Result<(), Failure> {
        match self {
            Self::Local(l) => {
                remediation_service::reset_breaker(&l.runtime, actor, reason).await.map(|_| ()).map_err(Into::into)
            }
            Self::Remote(r) => r.post::<_, LimitsView>("/v1/breaker/reset", &ReasonBody { reason }).await.map(|_| ()),
        }
    }

    /// Whether the breaker is tripped, and the usage of every window with executions in it.
    pub(crate) async fn limits(&self) -> Result<(bool, Vec<Usage>), Failure> {
        match self {
            Self::Local(l) => {
                let report = remediation_service::limits(&l.runtime).await?;
                Ok((report.breaker_tripped, report.usage))
            }
            Self::Remote(r) => {
                let v: LimitsView = r.get("/v1/limits").await?;
                Ok((v.breaker_tripped, v.usage))
            }
        }
    }

    /// The remediation metrics of `period`, counted from the audit log.
    pub(crate) async fn metrics_report(
        &self,
        period: remediation_service::metrics::Period,
    ) -> Result<remediation_api::types::MetricsReportView, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::metrics::metrics_report(&l.runtime, period).await?.into()),
            Self::Remote(r) => {
                let q = remediation_api::types::MetricsReportQuery { since: period.since, until: period.until };
                r.call::<(), _>(reqwest::Method::GET, "/v1/reports/metrics", Some(&q), None).await
            }
        }
    }

    /// How each event and audit sink stands.
    pub(crate) async fn events_status(&self) -> Result<remediation_runtime::relay::EventsStatus, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::events(&l.runtime).await?),
            Self::Remote(r) => r.get("/v1/events").await,
        }
    }

    /// Asks for a sink's parked records to be delivered again.
    pub(crate) async fn replay_parked(
        &self,
        sink: &str,
        seqs: Option<Vec<u64>>,
        reason: &str,
        actor: &Actor,
    ) -> Result<u64, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::replay_parked(&l.runtime, actor, sink, seqs, reason).await?),
            Self::Remote(r) => {
                let answer: serde_json::Value =
                    r.post("/v1/events/replay", &json!({"sink": sink, "seqs": seqs, "reason": reason})).await?;
                Ok(answer.get("replay").and_then(serde_json::Value::as_u64).unwrap_or(0))
            }
        }
    }

    /// Verifies the audit chain.
    pub(crate) async fn audit_verify(&self) -> Result<AuditVerification, Failure> {
        match self {
            Self::Local(l) => remediation_service::audit_verify(&l.runtime)
                .await
                .map_err(|e| Failure::from(e).context("cannot read the audit trail".to_owned())),
            Self::Remote(r) => r.get("/v1/audit/verify").await,
        }
    }

    /// The published public keys of the verifiable log.
    pub(crate) async fn audit_keys(&self) -> Result<PublicKeySet, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::published_keys(&l.runtime).await?),
            Self::Remote(r) => r.get("/v1/audit/keys").await,
        }
    }

    /// The latest signed tree head.
    pub(crate) async fn audit_tree_head(&self) -> Result<SignedTreeHead, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::tree_head(&l.runtime).await?),
            Self::Remote(r) => r.get("/v1/audit/tree-head").await,
        }
    }

    /// Inclusion proofs of every record of action `id`.
    pub(crate) async fn audit_prove(&self, id: ActionId, tree_size: Option<u64>) -> Result<InclusionBundle, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::prove_inclusion(
                &l.runtime,
                remediation_service::ProofTarget::Action(id),
                tree_size,
            )
            .await?),
            Self::Remote(r) => {
                let q = InclusionQuery { action_id: Some(id.to_string()), seq: None, tree_size };
                r.call::<(), _>(reqwest::Method::GET, "/v1/audit/proof/inclusion", Some(&q), None).await
            }
        }
    }

    /// The consistency proof from `old_size` to `new_size` (default: the latest head).
    pub(crate) async fn audit_consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyBundle, Failure> {
        match self {
            Self::Local(l) => Ok(remediation_service::prove_consistency(&l.runtime, old_size, new_size).await?),
            Self::Remote(r) => {
                let q = ConsistencyQuery { old_size, new_size };
                r.call::<(), _>(reqwest::Method::GET, "/v1/audit/proof/consistency", Some(&q), None).await
            }
        }
    }

    /// The compliance report of `period` (a server is asked for its JSON form; the CLI renders
    /// CSV and HTML from it, as it does locally).
    pub(crate) async fn compliance_report(
        &self,
        period: remediation_service::report::Period,
    ) -> Result<remediation_service::report::ComplianceReport, Failure> {
        match self {
            Self::Local(l) => remediation_service::report::compliance(&l.runtime, period)
                .await
                .map_err(|e| Failure::from(e).context("cannot make the compliance report".to_owned())),
            Self::Remote(r) => {
                let q = remediation_api::types::ComplianceQuery {
                    from: rfc3339(period.from()),
                    to: rfc3339(period.to()),
                    format: Some(remediation_service::report::ReportFormat::Json),
                };
                r.call::<(), _>(reqwest::Method::GET, "/v1/reports/compliance", Some(&q), None).await
            }
        }
    }

    /// Audit records (at or after `since`), by `seq`.
    pub(crate) async fn audit_records(&self, since: Option<time::OffsetDateTime>) -> Result<Vec<AuditRecord>, Failure> {
        match self {
            Self::Local(l) => {
                let filter = remediation_core::AuditFilter { since, ..remediation_core::AuditFilter::default() };
                let mut all: Vec<AuditRecord> = Vec::new();
                loop {
                    let page = remediation_service::audit_page(&l.runtime, &filter, all.last().map(|r| r.seq), 1000)
                        .await
                        .map_err(|e| Failure::from(e).context("cannot read the audit trail".to_owned()))?;
                    if page.is_empty() {
                        return Ok(all);
                    }
                    all.extend(page);
                }
            }
            Self::Remote(r) => {
                let mut all = Vec::new();
                let mut cursor = None;
                loop {
                    let q = AuditQuery { limit: Some(1000), cursor, ..AuditQuery::default() };
                    let page: Page<AuditRecord> =
                        r.call::<(), _>(reqwest::Method::GET, "/v1/audit", Some(&q), None).await?;
                    all.extend(page.items.into_iter().filter(|rec| since.is_none_or(|s| rec.body.at() >= s)));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => return Ok(all),
                    }
                }
            }
        }
    }
}

/// The refusal for a command that works only on a local data directory.
pub(crate) fn only_local(command: &str) -> Failure {
    usage(format!(
        "`remediate {command}` works only on a local data directory; run it without --server (and without REMEDIATION_SERVER) on the server's machine"
    ))
}

/// `t` in RFC 3339, as the API takes instants.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// `text` as one URL path segment: every byte but unreserved ones percent-encoded, so a
/// name can never add a segment or a query.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "rmt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn the_token_never_shows_in_debug_or_errors() {
        let remote = Remote::new("http://127.0.0.1:9/", Some(SecretString::from(SECRET))).expect("client");
        let backend = Backend::Remote(remote);
        let debug = format!("{backend:?}");
        assert!(!debug.contains(SECRET) && !debug.contains("0123456789abcdef"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
        let failure = api_failure(401, &json!({"error": {"code": "unauthenticated", "message": "invalid token"}}));
        assert!(!failure.to_string().contains(SECRET));
        for url in [format!("http://user:{SECRET}@127.0.0.1/"), format!("ftp://{SECRET}")] {
            let e = Remote::new(&url, Some(SecretString::from(SECRET))).expect_err("refused");
            assert_eq!(e.code(), 2);
            let text = format!("{e} {e:?}");
            assert!(!text.contains(SECRET), "{text}");
        }
    }

    #[test]
    fn a_connection_failure_names_the_server_not_the_token() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let remote = Remote::new("http://127.0.0.1:9", Some(SecretString::from(SECRET))).expect("client");
        let e = rt.block_on(remote.get::<Value>("/v1/connectors")).expect_err("refused");
        assert_eq!(e.code(), 1);
        let text = format!("{e} {e:?}");
        assert!(text.contains("http://127.0.0.1:9"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }

    #[test]
    fn missing_token_is_a_usage_error_that_says_what_to_set() {
        let e = Remote::new("http://127.0.0.1:8080", None).expect_err("no token");
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains(TOKEN_ENV), "{e}");
        let e = Remote::new("not a url", Some(SecretString::from(SECRET))).expect_err("bad url");
        assert_eq!(e.code(), 2);
    }

    #[test]
    fn api_errors_map_to_the_local_exit_codes() {
        let err = |status: u16, code: &str, details: Value| {
            api_failure(status, &json!({"error": {"code": code, "message": "m", "details": details}})).code()
        };
        for (status, code, details, exit) in [
            (400, "invalid_request", json!({"field": "patch"}), 2),
            (400, "invalid_request", json!({"field": "reason", "rule": "audit"}), 3),
            (400, "invalid_request", json!({"field": "kind"}), 3),
            (400, "invalid_request", json!({"field": "connector", "connector": "nope"}), 4),
            (401, "unauthenticated", json!({}), 3),
            (403, "forbidden", json!({"rule": "roles"}), 3),
            (404, "not_found", json!({}), 4),
            (409, "conflict", json!({"current_state": "completed"}), 3),
            (409, "conflict", json!({"rule": "audit_log"}), 6),
            (413, "payload_too_large", json!({}), 2),
            (429, "rate_limited", json!({"retry_after_secs": 5}), 3),
            (500, "internal", json!({}), 1),
            (502, "provider_failure", json!({}), 5),
            (503, "", json!({}), 1),
        ] {
            assert_eq!(err(status, code, details.clone()), exit, "{status} {code} {details}");
        }
        assert_eq!(api_failure(404, &Value::String("plain text".into())).code(), 4);
    }
}
