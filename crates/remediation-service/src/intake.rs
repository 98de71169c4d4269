//! Finding intake: a scanner's finding becomes a suggestion by the mode policy, at most once
//! per (control, target). Targets compare by the provider's canonical id when the actions
//! carry one, so a finding that names an account by another name (an alias, a login instead
//! of an id) finds the action already taken on it.
//!
//! - An open action (suggested, pending approval, approved, held, executing, rolling back)
//!   for the same control and target is returned ([`Intake::Existing`]): a periodic scanner
//!   never creates the same action twice.
//! - When the latest action for the pair completed, the finding is a claim to check, never a
//!   reason to undo anything: the target is read again. When the fix still holds (the same
//!   change would change nothing), the completed action is returned ([`Intake::FixHolds`]).
//!   Only when the grant is really back is the `RemediationDidNotHold` event emitted; then,
//!   with the policy setting `redo_fixes_that_did_not_hold` on, a fresh action is suggested
//!   through the mode policy and gates ([`Intake::Redone`]), else the completed action is
//!   returned ([`Intake::DidNotHold`]) for a person to decide.
//! - Anything else (no action yet, or the last one rolled back, failed, was rejected,
//!   cancelled or expired) creates a new action ([`Intake::Created`]).
//!
//! Without a `connector`, [`crate::select_connector`] chooses one.

use remediation_core::{Action, ActionFilter, Actor, CampaignEntry, Finding, FixCheck, State, Suggestion};
use remediation_runtime::Runtime;

use crate::scanner::{EntryOutcome, ScannerDocument};
use crate::{ServiceError, select_connector};

/// What intake did with a finding.
#[derive(Debug, Clone)]
pub enum Intake {
    /// An action for the same control and target is already open; nothing new was suggested.
    Existing(Action),
    /// The last action for the pair completed and its fix still holds.
    FixHolds(Action),
    /// The last action's fix did not hold and redoing is off: a person decides.
    DidNotHold(Action),
    /// A new action was suggested.
    Created(Suggestion),
    /// The last fix did not hold and a fresh action was suggested.
    Redone(Suggestion),
}

impl Intake {
    /// The wire name of the outcome (`existing`, `fix_holds`, `did_not_hold`, `created`,
    /// `redone`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Existing(_) => "existing",
            Self::FixHolds(_) => "fix_holds",
            Self::DidNotHold(_) => "did_not_hold",
            Self::Created(_) => "created",
            Self::Redone(_) => "redone",
        }
    }
}

fn is_open(s: State) -> bool {
    matches!(
        s,
        State::Suggested
            | State::PendingApproval
            | State::Approved
            | State::Held
            | State::Executing
            | State::RollingBack
    )
}

/// Takes in one finding for `actor` (see the module docs). Callers that may run it
/// concurrently in one process serialise calls, so a finding posted twice at once creates
/// one action.
pub async fn intake(runtime: &Runtime, actor: &Actor, finding: &Finding) -> Result<Intake, ServiceError> {
    intake_entry(runtime, actor, finding, None).await
}

/// [`intake`] for entry `entry` of a campaign: an action it creates gets the id derived from
/// the entry ([`remediation_core::ActionId::for_campaign_entry`]) and the campaign's name.
pub async fn intake_entry(
    runtime: &Runtime,
    actor: &Actor,
    finding: &Finding,
    entry: Option<&CampaignEntry>,
) -> Result<Intake, ServiceError> {
    let active = runtime.active().await?;
    let engine = active.engine;
    let connector = match &finding.connector {
        Some(c) => c.clone(),
        None => {
            select_connector(&runtime.connector_entries().await?, finding.suggested_kind.name(), &finding.target)
                .await?
        }
    };
    // The store filters by control, so intake reads only this control's actions.
    let candidates: Vec<Action> = engine
        .list(&ActionFilter { control: Some(finding.control_id.clone()), ..ActionFilter::default() })
        .await?
        .into_iter()
        .filter(|a| a.control_id.as_deref() == Some(finding.control_id.as_str()) && a.state != State::DryRun)
        .collect();
    // Another name for the same target is the same target: when an earlier action of this
    // connector carries the provider's canonical id, the finding's target is resolved too (a
    // read; a target that cannot be read is left to `suggest` to report).
    let canonical =
        if candidates.iter().any(|a| a.connector == connector && a.canonical.is_some() && a.target != finding.target) {
            match engine.connectors().find(|c| c.id() == connector) {
                Some(c) => c.snapshot(&finding.target).await.ok().and_then(|s| s.canonical),
                None => None,
            }
        } else {
            None
        };
    let mut same: Vec<Action> = candidates
        .into_iter()
        .filter(|a| a.same_target(&finding.target, canonical.as_ref().filter(|_| a.connector == connector)))
        .collect();
    if let Some(open) = same.iter().find(|a| is_open(a.state)) {
        return Ok(Intake::Existing(open.clone()));
    }
    let mut request = finding.to_request(&connector, false);
    request.campaign = entry.cloned();
    if let Some(last) = same.pop().filter(|a| a.state == State::Completed) {
        // A finding is a claim, not a fact: the provider is read again, and only a grant that
        // is really back counts. Nothing is ever rolled back on a finding's word.
        let live = match engine.fix_holds(last.id).await? {
            FixCheck::Holds => return Ok(Intake::FixHolds(last)),
            FixCheck::Undone { live } => live,
        };
        engine.record_did_not_hold(last.id, &finding.control_id, &finding.target, actor).await?;
        tracing::warn!(action_id = %last.id, control_id = %finding.control_id, live = %live.state, "remediation did not hold");
        if !active.settings.redo_fixes_that_did_not_hold {
            return Ok(Intake::DidNotHold(last));
        }
        request.reason = format!("{} (again: action {} did not hold)", request.reason, last.id);
        return Ok(Intake::Redone(engine.suggest(request, actor).await?));
    }
    Ok(Intake::Created(engine.suggest(request, actor).await?))
}

/// What became of one entry of a scanner document taken in by [`intake_document`].
#[derive(Debug)]
#[non_exhaustive]
pub enum EntryIntake {
    /// The entry's finding went through [`intake`].
    Taken(Box<Intake>),
    /// Intake refused or failed for this entry (no such connector, a safety rule, a store
    /// error); the other entries are still taken in.
    Failed(ServiceError),
    /// The entry asks for nothing, or for something not supported, or is malformed; it never
    /// reached intake.
    NotTaken(EntryOutcome),
}

impl EntryIntake {
    /// The outcome's wire name: [`Intake::label`], `failed`, or [`EntryOutcome::label`].
    pub fn label(&self) -> &'static str {
        match self {
            Self::Taken(i) => i.label(),
            Self::Failed(_) => "failed",
            Self::NotTaken(o) => o.label(),
        }
    }
}

/// One entry of a scanner document after intake.
#[derive(Debug)]
pub struct DocumentEntry {
    /// Its position in the document, from 0.
    pub index: usize,
    /// The scanner's finding id, when the entry has one.
    pub finding_id: Option<String>,
    /// The check or control id, when the entry has one.
    pub control_id: Option<String>,
    /// What became of it.
    pub result: EntryIntake,
}

/// Takes in every finding of a scanner document read by [`crate::scanner::read_findings`], in
/// order, as [`intake`] does one (so a document naming the same control and target twice
/// opens one action). `connector`, when given, replaces the connector the entries name.
/// Partial failure is data: each entry reports its own outcome. Callers serialise calls as
/// for [`intake`].
pub async fn intake_document(
    runtime: &Runtime,
    actor: &Actor,
    document: ScannerDocument,
    connector: Option<&str>,
) -> Vec<DocumentEntry> {
    intake_document_with_progress(runtime, actor, document, connector, |_, _, _| {}).await
}

/// As [`intake_document`], calling `progress(done, total, entry)` after each entry (a long
/// import shows how far it got).
pub async fn intake_document_with_progress(
    runtime: &Runtime,
    actor: &Actor,
    document: ScannerDocument,
    connector: Option<&str>,
    mut progress: impl FnMut(usize, usize, &DocumentEntry),
) -> Vec<DocumentEntry> {
    let total = document.entries.len();
    let mut out = Vec::with_capacity(total);
    for entry in document.entries {
        let result = match entry.outcome {
            EntryOutcome::Finding(mut finding) => {
                if let Some(c) = connector {
                    finding.connector = Some(c.to_owned());
                }
                match intake(runtime, actor, &finding).await {
                    Ok(i) => EntryIntake::Taken(Box::new(i)),
                    Err(e) => EntryIntake::Failed(e),
                }
            }
            other => EntryIntake::NotTaken(other),
        };
        out.push(DocumentEntry {
            index: entry.index,
            finding_id: entry.finding_id,
            control_id: entry.control_id,
            result,
        });
        if let Some(last) = out.last() {
            progress(out.len(), total, last);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may unwrap")]

    use std::sync::Arc;

    use remediation_config::Config;
    use remediation_core::factory::Factory;
    use remediation_core::{ActionKind, Capability, KindName, Reversibility, Target};
    use remediation_runtime::{Catalog, RuntimeOptions};
    use remediation_testkit::{FakeConnector, requester};
    use serde_json::json;

    use super::*;
    use crate::scanner::{ReadOptions, read_findings};

    /// The AWS posture connector's contract, as a fake: enforce on buckets and DB instances,
    /// revoke on security group ingress, holding the fixtures' resources.
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct FakeAwsConfig {}

    fn target(identity: &str, grant: Option<&str>, grant_type: &str) -> Target {
        Target {
            identity: identity.to_owned(),
            resource: None,
            grant: grant.map(str::to_owned),
            grant_type: grant_type.to_owned(),
        }
    }

    const DB_ARN: &str = "arn:aws:rds:eu-west-1:123456789012:db:orders-prod";
    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

    static FAKE_AWS: Factory<FakeAwsConfig> = Factory::named("fake_aws", "Fake AWS", None, |id, _config, _context| {
        let cap = Capability::new;
        Ok(Arc::new(
            FakeConnector::new(id)
                .with_capabilities(vec![
                    cap(KindName::Enforce, "s3_bucket", Reversibility::Reversible),
                    cap(KindName::Enforce, "db_instance", Reversibility::Reversible),
                    cap(KindName::Revoke, "security_group_ingress", Reversibility::Reversible),
                    cap(KindName::Rotate, "iam_access_key", Reversibility::Reversible),
                ])
                .with_target(
                    target("amzn-s3-demo-bucket", None, "s3_bucket"),
                    json!({"s3_default_encryption": "none", "s3_public_access_block": "none"}),
                )
                .with_target(target(DB_ARN, None, "db_instance"), json!({"rds_backup_retention_days": "0"}))
                .with_target(target(ALICE, None, "iam_access_key"), json!({"key": "AKIAOLD", "status": "Active"}))
                .with_target(
                    target("sg-0123456789abcdef0", Some("tcp:22-22"), "security_group_ingress"),
                    json!({"granted": true}),
                ),
        ))
    });

    fn runtime(dir: &std::path::Path) -> Runtime {
        let catalog = Catalog::builtin().with(&FAKE_AWS);
        let path = dir.join("remediation.toml");
        std::fs::write(&path, "[[connectors]]\ntype = \"fake_aws\"\nid = \"aws\"\n").unwrap();
        let config = Config::load_with(&path, catalog.factories()).unwrap();
        let options = RuntimeOptions { catalog: Some(catalog), ..RuntimeOptions::default() };
        Runtime::build(&config, dir, None, options).unwrap()
    }

    /// Every entry's label and, for those taken in, the planned action's (control, kind,
    /// identity, grant).
    async fn take(
        runtime: &Runtime,
        text: &str,
    ) -> Vec<(String, Option<(String, ActionKind, String, Option<String>)>)> {
        let doc = read_findings(text, None, &ReadOptions::default()).unwrap();
        let entries = intake_document(runtime, &requester(), doc, None).await;
        entries
            .into_iter()
            .map(|e| {
                let action = match &e.result {
                    EntryIntake::Taken(taken) => match taken.as_ref() {
                        Intake::Created(s) | Intake::Redone(s) => Some(s.action.clone()),
                        Intake::Existing(a) | Intake::FixHolds(a) | Intake::DidNotHold(a) => Some(a.clone()),
                    },
                    EntryIntake::Failed(err) => panic!("entry {} failed: {err}", e.index),
                    EntryIntake::NotTaken(_) => None,
                };
                if let Some(a) = &action {
                    assert_eq!(a.connector, "aws");
                    assert_eq!(a.finding_id, e.finding_id);
                }
                let summary =
                    action.map(|a| (a.control_id.unwrap_or_default(), a.kind, a.target.identity, a.target.grant));
                (e.result.label().to_owned(), summary)
            })
            .collect()
    }

    fn enforce(setting: &str, value: &str) -> ActionKind {
        ActionKind::Enforce { setting: setting.to_owned(), value: value.to_owned() }
    }

    #[tokio::test]
    async fn every_fixture_reaches_a_planned_action_through_intake_once() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(dir.path());
        let prowler = include_str!("../../../tests/fixtures/findings/prowler-ocsf.json");
        let bucket = || "amzn-s3-demo-bucket".to_owned();
        let some =
            |c: &str, k: ActionKind, id: String, g: Option<&str>| Some((c.to_owned(), k, id, g.map(str::to_owned)));
        let expected_prowler = vec![
            (
                "created".to_owned(),
                some("s3_bucket_default_encryption", enforce("s3_default_encryption", "default"), bucket(), None),
            ),
            (
                "created".to_owned(),
                some("s3_bucket_level_public_access_block", enforce("s3_public_access_block", "all"), bucket(), None),
            ),
            (
                "created".to_owned(),
                some(
                    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",
                    ActionKind::Revoke,
                    "sg-0123456789abcdef0".to_owned(),
                    Some("tcp:22-22"),
                ),
            ),
            (
                "created".to_owned(),
                some(
                    "rds_instance_backup_enabled",
                    enforce("rds_backup_retention_days", "default"),
                    DB_ARN.to_owned(),
                    None,
                ),
            ),
            ("created".to_owned(), some("iam_rotate_access_key_90_days", ActionKind::Rotate, ALICE.to_owned(), None)),
            ("nothing_to_do".to_owned(), None),
            ("unsupported".to_owned(), None),
            ("nothing_to_do".to_owned(), None),
        ];
        assert_eq!(take(&runtime, prowler).await, expected_prowler);
        // The same scan again opens nothing new.
        let again: Vec<String> = take(&runtime, prowler).await.into_iter().map(|(l, _)| l).collect();
        assert_eq!(&again[..5], ["existing"; 5]);

        let asff = include_str!("../../../tests/fixtures/findings/securityhub-asff.json");
        let got = take(&runtime, asff).await;
        let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["created", "created", "created", "created", "unsupported", "nothing_to_do", "created", "unsupported"]
        );
        assert_eq!(got[3].1, some("IAM.3", ActionKind::Rotate, ALICE.to_owned(), None));
        assert_eq!(got[0].1, some("S3.8", enforce("s3_public_access_block", "all"), bucket(), None));
        assert_eq!(got[1].1, some("EC2.13", ActionKind::Revoke, "sg-0123456789abcdef0".to_owned(), Some("tcp:22-22")));
        assert_eq!(got[2].1, some("RDS.11", enforce("rds_backup_retention_days", "default"), DB_ARN.to_owned(), None));
        assert_eq!(got[6].1, some("S3.4", enforce("s3_default_encryption", "default"), bucket(), None));

        let ocsf = include_str!("../../../tests/fixtures/findings/ocsf-detection.json");
        let labels: Vec<String> = take(&runtime, ocsf).await.into_iter().map(|(l, _)| l).collect();
        assert_eq!(labels, ["unsupported", "nothing_to_do", "unsupported"]);
    }

    #[tokio::test]
    async fn an_entry_intake_refuses_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(dir.path());
        let prowler = include_str!("../../../tests/fixtures/findings/prowler-ocsf.json");
        let doc = read_findings(prowler, None, &ReadOptions::default()).unwrap();
        let entries = intake_document(&runtime, &requester(), doc, Some("nowhere")).await;
        let labels: Vec<&str> = entries.iter().map(|e| e.result.label()).collect();
        assert_eq!(
            labels,
            ["failed", "failed", "failed", "failed", "failed", "nothing_to_do", "unsupported", "nothing_to_do"]
        );
        let EntryIntake::Failed(e) = &entries[0].result else { panic!() };
        assert!(remediation_core::error_chain(e).contains("nowhere"), "{e}");
    }
}
