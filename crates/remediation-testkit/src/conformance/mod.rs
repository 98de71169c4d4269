//! The semantic connector conformance suite: one call per connector proves that it keeps the
//! [`Connector`] contract the engine relies on.
//!
//! A connector crate implements [`Subject`] for its test setup (a fake provider or a real
//! server seeded with fresh data) and calls [`semantic`] from one test. The suite checks:
//!
//! - **honest capabilities**: every (kind, grant type) the connector does not declare fails with
//!   [`ConnectorErrorKind::Unsupported`] before any provider request (when the subject can
//!   count requests), and every declared capability has a case;
//! - **the round trip**, per case: `snapshot -> plan -> execute -> verify` reaches the planned
//!   after-state (for observable irreversible capabilities, which may stamp a provider-chosen
//!   value such as a revocation time, `verify` alone decides); executing again with the same before-state answers
//!   [`OutcomeStatus::AlreadyInState`]; rollback restores the before-state exactly for
//!   reversible capabilities and changes the target back for lossy ones;
//! - **error mapping**: a target that does not exist is [`ConnectorErrorKind::NotFound`], and
//!   a connector without write permission fails with [`ConnectorErrorKind::Forbidden`], each
//!   keeping the provider's message;
//! - **protected aliases**: for each [`AliasCase`], the protected target and its alias (another
//!   name the provider resolves to the same object) both read as protected with the same
//!   [canonical id](remediation_core::Snapshot::canonical), and an engine running the standard
//!   gates refuses to suggest an action on the alias;
//! - **secrets**: no configured secret appears in the connector's `Debug`, in any error,
//!   snapshot or outcome, in the log output captured while the suite runs, or in the audit
//!   trail of an engine run over the first case.
//!
//! Every check runs; the suite panics once at the end listing each failure, so a connector
//! author sees everything that is wrong in one run.
//!
//! Connectors over HTTP also pass [`http_protocol`]: throttling, retries, token refresh and
//! pagination against a fake provider (see [`HttpSubject`]).

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::{
    Action, ActionId, ActionKind, Actor, Capability, Connector, ConnectorError, ConnectorErrorKind, Engine,
    EngineError, EngineParts, ExecuteOutcome, KindName, ManualClock, Mode, OutcomeStatus, Reversibility, Role,
    RollbackOutcome, Snapshot, Target,
};
use remediation_gates::{Pipeline, PolicySettings};
use tracing::instrument::WithSubscriber;

use crate::{ActionBuilder, AllowAll, InMemoryStore, NoLimits, RequestBuilder, fixed_time};

mod http;

pub use http::{HttpSubject, http_protocol};

/// One action the suite carries out: a declared capability on a target where it applies now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Short name used in failure messages.
    pub name: String,
    /// The action kind (with its parameter, for `reduce`).
    pub kind: ActionKind,
    /// A target that exists and on which `kind` would change something.
    pub target: Target,
}

impl Case {
    /// A case named `name`.
    pub fn new(name: impl Into<String>, kind: ActionKind, target: Target) -> Self {
        Self { name: name.into(), kind, target }
    }
}

/// A protected target and another name for the same object at the provider (an alias, a
/// differently spelled DN, a login instead of an id). Protection must follow the object, not
/// the spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasCase {
    /// Short name used in failure messages.
    pub name: String,
    /// A kind the connector supports on both targets.
    pub kind: ActionKind,
    /// The target as the connector's protected setting names it.
    pub protected: Target,
    /// The same object under another name; must differ from `protected`.
    pub alias: Target,
}

impl AliasCase {
    /// A case named `name`.
    pub fn new(name: impl Into<String>, kind: ActionKind, protected: Target, alias: Target) -> Self {
        Self { name: name.into(), kind, protected, alias }
    }
}

/// A connector under test together with the provider it talks to.
///
/// Cases must be independent: each acts on its own target, so running them in sequence does
/// not make a later one start from a changed state.
#[async_trait]
pub trait Subject: Send + Sync {
    /// The connector, configured with credentials that may read and write.
    fn connector(&self) -> Arc<dyn Connector>;

    /// The connector's `Debug` output (`format!("{connector:?}")` of the concrete type).
    fn debug_repr(&self) -> String;

    /// Every secret the connector was configured with (tokens, passwords, private keys).
    fn secrets(&self) -> Vec<String>;

    /// At least one case per declared capability, each on a fresh target.
    async fn cases(&self) -> Vec<Case>;

    /// A target of `grant_type` whose identity does not exist at the provider.
    fn missing(&self, grant_type: &str) -> Target;

    /// A connector whose credentials may read but not write, and a case it would apply; `None`
    /// when the provider cannot express such credentials.
    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)>;

    /// Protected targets named under another name the provider accepts for them; at least one.
    /// The subject's connector must be configured to protect each `protected` target. The
    /// suite fails while this is empty.
    async fn protected_aliases(&self) -> Vec<AliasCase> {
        Vec::new()
    }

    /// How many requests the provider has served so far, when the subject can count them.
    fn requests_served(&self) -> Option<u64>;

    /// For eventually consistent providers: how long to wait between read-backs. The suite
    /// reads up to ten times before it calls a difference a failure.
    fn settle(&self) -> Duration {
        Duration::ZERO
    }
}

/// Failures collected by one run.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) failures: Vec<String>,
}

impl Report {
    pub(crate) fn fail(&mut self, msg: impl Into<String>) {
        self.failures.push(msg.into());
    }

    pub(crate) fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(msg());
        }
    }
}

/// Runs the semantic conformance suite against `subject`; panics listing every failed check.
pub async fn semantic(subject: &dyn Subject) {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let mut report = Report::default();
    let mut seen = Vec::new();
    run(subject, &mut report, &mut seen).with_subscriber(subscriber).await;
    seen.push(logs.contents());
    check_secrets(subject, &seen, &mut report);
    if !report.failures.is_empty() {
        let mut msg = format!("connector conformance: {} check(s) failed\n", report.failures.len());
        for f in &report.failures {
            let _ = writeln!(msg, "  - {f}");
        }
        panic!("{msg}");
    }
}

async fn run(subject: &dyn Subject, report: &mut Report, seen: &mut Vec<String>) {
    let connector = subject.connector();
    let caps = connector.capabilities();
    report.check(!caps.is_empty(), || "the connector declares no capability".to_owned());
    let cases = subject.cases().await;
    for cap in &caps {
        let covered = cases.iter().any(|c| c.kind.name() == cap.kind && c.target.grant_type == cap.grant_type);
        report.check(covered, || format!("capability ({}, {}) has no case", cap.kind, cap.grant_type));
    }
    unsupported(subject, &connector, &caps, &cases, report, seen).await;
    for case in &cases {
        round_trip(subject, &connector, &caps, case, report, seen).await;
    }
    not_found(subject, &connector, &caps, report, seen).await;
    forbidden(subject, report, seen).await;
    protected_aliases(subject, &connector, report, seen).await;
    if let Some(first) = cases.first() {
        engine_audit(subject, &connector, first, report, seen).await;
    }
}

/// Every undeclared (kind, grant type) is refused as `Unsupported` without a request.
async fn unsupported(
    subject: &dyn Subject,
    connector: &Arc<dyn Connector>,
    caps: &[Capability],
    cases: &[Case],
    report: &mut Report,
    seen: &mut Vec<String>,
) {
    let mut grant_types: Vec<&str> = caps.iter().map(|c| c.grant_type.as_str()).collect();
    grant_types.push("no_such_grant_type");
    grant_types.dedup();
    for grant_type in grant_types {
        let target = cases
            .iter()
            .find(|c| c.target.grant_type == grant_type)
            .map(|c| c.target.clone())
            .unwrap_or_else(|| Target { grant_type: grant_type.to_owned(), ..subject.missing(grant_type) });
        for kind in all_kinds() {
            if caps.iter().any(|c| c.kind == kind.name() && c.grant_type == grant_type) {
                continue;
            }
            let action = action_for(connector.id(), kind.clone(), target.clone());
            let before = subject.requests_served();
            let placeholder = Snapshot::new(serde_json::json!({}));
            let planned = connector.plan(&action, &placeholder).await;
            let executed = connector.execute(&action, &placeholder).await;
            let after = subject.requests_served();
            for (what, result) in [("plan", planned.map(|_| ())), ("execute", executed.map(|_| ()))] {
                match result {
                    Err(e) if e.kind == ConnectorErrorKind::Unsupported => seen.push(e.to_string()),
                    Err(e) => {
                        report.fail(format!(
                            "{what} of undeclared ({}, {grant_type}): expected unsupported, got {e}",
                            kind.name()
                        ));
                        seen.push(format!("{e:?}"));
                    }
                    Ok(()) => report.fail(format!("{what} of undeclared ({}, {grant_type}) succeeded", kind.name())),
                }
            }
            if let (Some(b), Some(a)) = (before, after) {
                report.check(a == b, || {
                    format!(
                        "undeclared ({}, {grant_type}) made {} provider request(s) before failing",
                        kind.name(),
                        a - b
                    )
                });
            }
        }
    }
}

/// snapshot -> plan -> execute -> verify -> execute again -> rollback.
async fn round_trip(
    subject: &dyn Subject,
    connector: &Arc<dyn Connector>,
    caps: &[Capability],
    case: &Case,
    report: &mut Report,
    seen: &mut Vec<String>,
) {
    let name = &case.name;
    let Some(cap) = caps.iter().find(|c| c.kind == case.kind.name() && c.grant_type == case.target.grant_type) else {
        report.fail(format!("{name}: ({}, {}) is not a declared capability", case.kind.name(), case.target.grant_type));
        return;
    };
    let action = action_for(connector.id(), case.kind.clone(), case.target.clone());
    macro_rules! step {
        ($what:literal, $call:expr) => {
            match $call.await {
                Ok(v) => {
                    seen.push(format!("{v:?}"));
                    v
                }
                Err(e) => {
                    seen.push(format!("{e:?}"));
                    report.fail(format!("{name}: {} failed: {e}", $what));
                    return;
                }
            }
        };
    }
    let before = step!("snapshot", connector.snapshot(&case.target));
    report.check(!before.protected, || format!("{name}: the case's target is protected"));
    let planned = step!("plan", connector.plan(&action, &before));
    // A change the provider does not expose (a Google sign-out) cannot show in the plan; the
    // capability says so by being unobservable.
    report.check(planned.expected_after != before || !cap.observable, || format!("{name}: the plan changes nothing"));
    report.check(!planned.description.trim().is_empty(), || format!("{name}: the plan has no description"));
    let outcome = step!("execute", connector.execute(&action, &before));
    report.check(outcome.status == OutcomeStatus::Applied, || {
        format!("{name}: first execute answered {:?}, expected applied", outcome.status)
    });
    let after = match settled(subject, connector, &case.target, &planned.expected_after).await {
        Ok(s) => s,
        Err(e) => {
            report.fail(format!("{name}: snapshot after execute failed: {e}"));
            return;
        }
    };
    // An irreversible change may stamp a value no plan can know (the time sessions were
    // revoked), and a rotation creates a credential whose id no plan can know; for those the
    // connector's own `verify` judges the after-state, and the capability must be observable
    // for it to do so.
    let stamped = cap.observable
        && (cap.reversibility == Reversibility::Irreversible || action.kind == remediation_core::ActionKind::Rotate);
    if !stamped {
        report.check(after == planned.expected_after, || {
            format!(
                "{name}: state after execute {} differs from the plan {}",
                after.state, planned.expected_after.state
            )
        });
    }
    if cap.observable {
        let verification = step!("verify", connector.verify(&action, &planned));
        report.check(verification.matches, || {
            format!("{name}: verify does not match after execute (observed {})", verification.observed.state)
        });
    }
    let again = step!("second execute", connector.execute(&action, &before));
    report.check(again.status == OutcomeStatus::AlreadyInState, || {
        format!("{name}: executing twice answered {:?}, expected already_in_state", again.status)
    });
    if cap.reversibility == Reversibility::Irreversible {
        return;
    }
    let undone = step!("rollback", connector.rollback(&action, &before, &after));
    // Only a lossy capability may restore access as an invitation the person must accept.
    let pending = undone.status == OutcomeStatus::PendingAcceptance && cap.reversibility == Reversibility::Lossy;
    report.check(undone.status == OutcomeStatus::Applied || pending, || {
        format!("{name}: rollback answered {:?}, expected applied", undone.status)
    });
    if pending {
        let expected = connector.pending_acceptance_state(&action, &before, &after);
        match connector.snapshot(&case.target).await {
            Ok(now) => report.check(expected.as_ref() == Some(&now), || {
                format!(
                    "{name}: a rollback pending acceptance left {}, not the invitation the connector names ({:?})",
                    now.state,
                    expected.map(|e| e.state)
                )
            }),
            Err(e) => report.fail(format!("{name}: snapshot after rollback failed: {e}")),
        }
        return;
    }
    match cap.reversibility {
        Reversibility::Reversible => match settled(subject, connector, &case.target, &before).await {
            Ok(restored) => report.check(restored == before, || {
                format!("{name}: rollback left {} instead of the before-state {}", restored.state, before.state)
            }),
            Err(e) => report.fail(format!("{name}: snapshot after rollback failed: {e}")),
        },
        _ => match connector.snapshot(&case.target).await {
            Ok(restored) => report.check(restored != after, || format!("{name}: lossy rollback changed nothing")),
            Err(e) => report.fail(format!("{name}: snapshot after rollback failed: {e}")),
        },
    }
}

/// Reads `target` until it equals `expected` or the subject's settle budget runs out.
async fn settled(
    subject: &dyn Subject,
    connector: &Arc<dyn Connector>,
    target: &Target,
    expected: &Snapshot,
) -> Result<Snapshot, ConnectorError> {
    let mut last = connector.snapshot(target).await?;
    if subject.settle().is_zero() {
        return Ok(last);
    }
    for _ in 0..10 {
        if &last == expected {
            break;
        }
        tokio::time::sleep(subject.settle()).await;
        last = connector.snapshot(target).await?;
    }
    Ok(last)
}

/// A target whose identity does not exist is `NotFound`, with the provider's message.
async fn not_found(
    subject: &dyn Subject,
    connector: &Arc<dyn Connector>,
    caps: &[Capability],
    report: &mut Report,
    seen: &mut Vec<String>,
) {
    let mut grant_types: Vec<&str> = caps.iter().map(|c| c.grant_type.as_str()).collect();
    grant_types.sort_unstable();
    grant_types.dedup();
    for grant_type in grant_types {
        let target = subject.missing(grant_type);
        match connector.snapshot(&target).await {
            Err(e) => {
                seen.push(format!("{e:?}"));
                report.check(e.kind == ConnectorErrorKind::NotFound, || {
                    format!("snapshot of missing {target}: expected not found, got {e}")
                });
                report.check(!e.message.trim().is_empty(), || format!("not-found error for {target} has no message"));
            }
            Ok(s) => report.fail(format!("snapshot of missing {target} succeeded with {}", s.state)),
        }
    }
}

/// Credentials without write permission fail the write with `Forbidden`, message kept.
async fn forbidden(subject: &dyn Subject, report: &mut Report, seen: &mut Vec<String>) {
    let Some((connector, case)) = subject.forbidden().await else {
        return;
    };
    let action = action_for(connector.id(), case.kind.clone(), case.target.clone());
    let before = match connector.snapshot(&case.target).await {
        Ok(s) => s,
        Err(e) if e.kind == ConnectorErrorKind::Forbidden => {
            seen.push(format!("{e:?}"));
            report.check(!e.message.trim().is_empty(), || "forbidden error has no message".to_owned());
            return;
        }
        Err(e) => {
            report.fail(format!("{}: snapshot with read-only credentials failed: {e}", case.name));
            return;
        }
    };
    match connector.execute(&action, &before).await {
        Err(e) => {
            seen.push(format!("{e:?}"));
            report.check(e.kind == ConnectorErrorKind::Forbidden, || {
                format!("{}: write without permission: expected forbidden, got {e}", case.name)
            });
            report.check(!e.message.trim().is_empty(), || "forbidden error has no message".to_owned());
        }
        Ok(o) => report.fail(format!("{}: write without permission succeeded ({:?})", case.name, o.status)),
    }
}

/// Every alias of a protected target is protected too, under the same canonical id, and the
/// engine refuses to suggest an action on it.
async fn protected_aliases(
    subject: &dyn Subject,
    connector: &Arc<dyn Connector>,
    report: &mut Report,
    seen: &mut Vec<String>,
) {
    let cases = subject.protected_aliases().await;
    report.check(!cases.is_empty(), || "no protected alias case: protection by another name is untested".to_owned());
    let settings = PolicySettings { enabled: true, ..PolicySettings::default() };
    let policy = match Pipeline::standard(settings) {
        Ok(p) => p,
        Err(e) => {
            report.fail(format!("the standard gates do not build: {e}"));
            return;
        }
    };
    let engine = Engine::new(EngineParts {
        store: Arc::new(InMemoryStore::new()),
        connectors: vec![Arc::clone(connector)],
        clock: Arc::new(ManualClock::new(fixed_time())),
        policy: Arc::new(policy),
        limits: Arc::new(NoLimits),
    });
    let requester = Actor::new("conformance-requester", Role::Requester);
    for case in &cases {
        let name = &case.name;
        report.check(case.alias != case.protected, || format!("{name}: the alias is the protected target itself"));
        let mut canonical = Vec::new();
        for (what, target) in [("protected target", &case.protected), ("alias", &case.alias)] {
            match connector.snapshot(target).await {
                Ok(s) => {
                    seen.push(format!("{s:?}"));
                    report.check(s.protected, || format!("{name}: the {what} {target} does not read as protected"));
                    report.check(s.canonical.is_some(), || format!("{name}: the {what} {target} has no canonical id"));
                    canonical.push(s.canonical);
                }
                Err(e) => {
                    seen.push(format!("{e:?}"));
                    report.fail(format!("{name}: snapshot of the {what} {target} failed: {e}"));
                }
            }
        }
        if let [a, b] = canonical.as_slice() {
            report.check(a == b, || format!("{name}: the alias resolves to {b:?}, the protected target to {a:?}"));
        }
        let request = RequestBuilder::new()
            .connector(connector.id())
            .kind(case.kind.clone())
            .target(case.alias.clone())
            .reason("conformance suite: alias of a protected target")
            .build();
        match engine.suggest(request, &requester).await {
            Err(EngineError::Refused { rule, reason }) => {
                seen.push(reason.clone());
                report.check(rule == "validation" && reason.contains("protected"), || {
                    format!("{name}: refused by {rule}, but not as protected: {reason}")
                });
            }
            // A connector may refuse a protected target itself, before the gates see a plan.
            Err(EngineError::Connector { source, .. }) if source.message.contains("protected") => {
                seen.push(source.message.clone());
            }
            Err(e) => report.fail(format!("{name}: suggesting on the alias failed instead of being refused: {e}")),
            Ok(s) => report.fail(format!(
                "{name}: an action on the alias {} of protected {} was accepted ({})",
                case.alias, case.protected, s.action.state
            )),
        }
    }
}

/// Runs `case` through an engine in auto mode, rolls it back, and keeps the audit trail for
/// the secret check.
async fn engine_audit(
    subject: &dyn Subject,
    connector: &Arc<dyn Connector>,
    case: &Case,
    report: &mut Report,
    seen: &mut Vec<String>,
) {
    let store = Arc::new(InMemoryStore::new());
    let engine = Engine::new(EngineParts {
        store: Arc::clone(&store) as _,
        connectors: vec![Arc::clone(connector)],
        clock: Arc::new(ManualClock::new(fixed_time())),
        policy: Arc::new(AllowAll::new(Mode::Manual)),
        limits: Arc::new(NoLimits),
    });
    let requester = Actor::new("conformance-requester", Role::Requester);
    let approver = Actor::new("conformance-approver", Role::Approver);
    // The round trip already ran this case and rolled it back; a fresh snapshot proves the
    // target is usable again before the engine acts on it.
    if subject.settle() > Duration::ZERO {
        let _ = connector.snapshot(&case.target).await;
    }
    let request = RequestBuilder::new()
        .connector(connector.id())
        .kind(case.kind.clone())
        .target(case.target.clone())
        .reason("conformance suite")
        .build();
    let result = async {
        let s = engine.suggest(request, &requester).await?;
        engine.approve(s.action.id, &approver, None).await?;
        let out = engine.execute(s.action.id, &approver, false).await?;
        let rolled = match &out {
            ExecuteOutcome::Completed { .. } => {
                let cap = remediation_core::find_capability(&connector.capabilities(), case.kind.name(), &case.target);
                match cap.map(|c| c.reversibility) {
                    Some(Reversibility::Irreversible) | None => None,
                    Some(_) => Some(engine.rollback(s.action.id, &approver, None).await?),
                }
            }
            _ => None,
        };
        Ok::<_, remediation_core::EngineError>((out, rolled))
    }
    .await;
    match result {
        Ok((out, rolled)) => {
            report.check(matches!(out, ExecuteOutcome::Completed { .. }), || {
                format!("{}: engine execution ended {out:?}", case.name)
            });
            if let Some(r) = rolled {
                // Only a lossy capability may end with the access offered back as an invitation.
                let lossy =
                    remediation_core::find_capability(&connector.capabilities(), case.kind.name(), &case.target)
                        .is_some_and(|c| c.reversibility == Reversibility::Lossy);
                let pending = lossy && matches!(r, RollbackOutcome::RestoredPendingAcceptance { .. });
                report.check(pending || matches!(r, RollbackOutcome::RolledBack { .. }), || {
                    format!("{}: engine rollback ended {r:?}", case.name)
                });
            }
        }
        Err(e) => report.fail(format!("{}: engine run failed: {e}", case.name)),
    }
    for record in store.audit() {
        seen.push(serde_json::to_string(&record).unwrap_or_default());
    }
}

fn check_secrets(subject: &dyn Subject, seen: &[String], report: &mut Report) {
    let debug = subject.debug_repr();
    for secret in subject.secrets() {
        if secret.len() < 4 {
            report.fail("a configured secret is shorter than 4 characters; the leak check needs a distinctive one");
            continue;
        }
        report.check(!debug.contains(&secret), || "the connector's Debug output contains a secret".to_owned());
        if let Some(hit) = seen.iter().find(|s| s.contains(&secret)) {
            let shown: String = hit.chars().take(200).collect();
            report.fail(format!("a secret leaked into an error, snapshot, log line or audit record: {shown}…"));
        }
    }
}

fn all_kinds() -> Vec<ActionKind> {
    vec![
        ActionKind::Revoke,
        ActionKind::Reduce { to: "read".to_owned() },
        ActionKind::Suspend,
        ActionKind::RevokeSessions,
        ActionKind::ForcePasswordReset,
        ActionKind::Notify,
    ]
}

/// A fresh action: its own identifier and idempotency key, so a connector that remembers keys
/// never mistakes one case for another, in this run or an earlier one against the same server.
pub(crate) fn action_for(connector: &str, kind: ActionKind, target: Target) -> Action {
    let id = ActionId::new_at(time::OffsetDateTime::now_utc());
    ActionBuilder::new().id(id).connector(connector).kind(kind).target(target).build()
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Debug, Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn contents(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Kinds by name, for subjects that build cases from capabilities. `enforce` asks for the
/// setting `enforced` at `compliant`: a subject whose connector enforces real settings builds
/// its enforce cases itself.
pub fn kind_for(name: KindName) -> ActionKind {
    match name {
        KindName::Revoke => ActionKind::Revoke,
        KindName::Reduce => ActionKind::Reduce { to: "read".to_owned() },
        KindName::Suspend => ActionKind::Suspend,
        KindName::RevokeSessions => ActionKind::RevokeSessions,
        KindName::ForcePasswordReset => ActionKind::ForcePasswordReset,
        KindName::Notify => ActionKind::Notify,
        KindName::Enforce => ActionKind::Enforce { setting: "enforced".to_owned(), value: "compliant".to_owned() },
        KindName::Rotate => ActionKind::Rotate,
    }
}
