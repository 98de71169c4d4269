//! `remediate demo`: a complete walk-through in a fresh temporary directory, every step printed.

use std::collections::BTreeMap;

use remediation_core::{ActionKind, ActionRequest, Actor, ExecuteOutcome, Mode, Role, RollbackOutcome, Target};

use crate::backend::Local;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::keys::create_audit_key;
use crate::output::{self, Format, outln};
use remediation_config::{ActorSettings, Config, ConnectorConfig};
use remediation_runtime::{AUDIT_KEY_FILE, STORE_FILE};

/// Runs the walk-through and returns the exit code.
pub(crate) async fn run(format: Format) -> Result<u8, Failure> {
    let dir = tempfile::Builder::new()
        .prefix("remediation-demo-")
        .tempdir()
        .map_err(|e| Failure::new(ExitCode::Internal, anyhow::anyhow!("cannot create a temporary directory: {e}")))?
        .keep();
    let sandbox = dir.join("sandbox.json");
    remediation_connector_sandbox::write_sample(&sandbox).map_err(|e| {
        Failure::new(ExitCode::Internal, anyhow::Error::new(e).context("cannot write the sample sandbox"))
    })?;
    let mut config = Config {
        connectors: vec![ConnectorConfig::sandbox("sandbox", "sandbox.json")],
        actors: ActorSettings {
            default_role: Role::Viewer,
            roles: BTreeMap::from([
                ("local:alice".to_owned(), Role::Requester),
                ("local:bob".to_owned(), Role::Approver),
                ("local:carol".to_owned(), Role::Approver),
            ]),
            ..ActorSettings::default()
        },
        ..Config::default()
    };
    config.policy.enabled = true;
    config.policy.default_mode = Mode::Manual;
    // The audit checkpoint is keyed, as after `init`.
    let key = create_audit_key(&dir.join(AUDIT_KEY_FILE))?;
    config.audit.hmac_key_file = Some(AUDIT_KEY_FILE.into());
    remediation_runtime::files::write_private(&dir.join("remediation.toml"), toml_of(&config)?.as_bytes())
        .map_err(|e| Failure::new(ExitCode::Internal, anyhow::anyhow!("cannot write the demo configuration: {e}")))?;

    let alice = Actor::new("local:alice", Role::Requester);
    let bob = Actor::new("local:bob", Role::Approver);
    let carol = Actor::new("local:carol", Role::Approver);
    let ctx = Local::build(&config, &dir, Some(key), None, &remediation_core::TenantId::default(), None).await?;
    let json = format == Format::Json;
    let say = |step: &str| if json { Ok(()) } else { outln!("\n== {step}") };
    let mut steps = Vec::new();
    if !json {
        outln!("Demo data directory: {} (remediation enabled here only)", dir.display())?;
    }

    let target = Target {
        identity: "alice".into(),
        resource: Some("admins".into()),
        grant: None,
        grant_type: "group_membership".into(),
    };
    say("1. local:alice suggests removing alice from the admins group")?;
    let s = ctx
        .engine
        .suggest(
            ActionRequest {
                connector: "sandbox".into(),
                kind: ActionKind::Revoke,
                target: target.clone(),
                reason: "standing admin access is not needed (demo)".into(),
                control_id: Some("DEMO-1".into()),
                finding_id: None,
                dry_run: false,
                campaign: None,
            },
            &alice,
        )
        .await?;
    let id = s.action.id;
    if !json {
        outln!("{id} {} — {}", s.action.state, s.plan.description)?;
        outln!("before: {}", s.plan.before.state)?;
        outln!("expected after: {}", s.plan.expected_after.state)?;
    }
    steps.push(serde_json::json!({"step": "suggest", "action": s.action, "plan": s.plan}));

    say("2. local:alice tries to approve her own request (refused)")?;
    match ctx.engine.approve(id, &alice, None).await {
        Err(e) if !json => outln!("refused as expected: {e}")?,
        Err(_) => {}
        Ok(_) => {
            return Err(Failure::new(
                ExitCode::Internal,
                anyhow::anyhow!("the requester was allowed to approve their own action"),
            ));
        }
    }

    say("3. local:bob approves")?;
    let a = ctx.engine.approve(id, &bob, Some("confirmed with alice's manager".into())).await?;
    if !json {
        outln!("{} {}", a.id, a.state)?;
    }
    steps.push(serde_json::json!({"step": "approve", "action": a}));

    say("4. local:bob executes (re-validates, re-plans, reserves limits, writes, reads back)")?;
    let outcome = ctx.engine.execute(id, &bob, false).await?;
    let ExecuteOutcome::Completed { action, after } = &outcome else {
        return Err(Failure::new(ExitCode::Provider, anyhow::anyhow!("demo execution did not complete: {outcome:?}")));
    };
    if !json {
        outln!("{} {}; after-state {}", action.id, action.state, after.state)?;
    }
    steps.push(serde_json::json!({"step": "execute", "action": action, "after": after}));

    say("5. local:bob asks to roll it back (giving access back needs a second approver)")?;
    let rb = ctx.engine.rollback(id, &bob, Some("demo".into())).await?;
    let RollbackOutcome::Requested { action } = &rb else {
        return Err(Failure::new(
            ExitCode::Provider,
            anyhow::anyhow!("demo rollback did not wait for approval: {rb:?}"),
        ));
    };
    if !json {
        outln!("{} {}", action.id, action.state)?;
    }
    steps.push(serde_json::json!({"step": "rollback_request", "action": action}));

    say("6. local:carol approves the rollback (inside the 24 h window; live state equals the recorded after-state)")?;
    let rb = ctx.engine.approve_rollback(id, &carol, Some("confirmed false positive".into())).await?;
    let RollbackOutcome::RolledBack { action } = &rb else {
        return Err(Failure::new(ExitCode::Provider, anyhow::anyhow!("demo rollback failed: {rb:?}")));
    };
    let restored = ctx.engine.get(id).await?.restored.map(|s| s.state);
    if !json {
        outln!("{} {}; live state {}", action.id, action.state, restored.clone().unwrap_or_default())?;
    }
    steps.push(serde_json::json!({"step": "rollback", "action": action, "live": restored}));

    say("7. Verify the audit trail")?;
    let report = ctx.store.verify_audit().await.map_err(|e| Failure::new(ExitCode::Internal, anyhow::Error::new(e)))?;
    if !json {
        outln!(
            "{} records, chain {}; {}",
            report.records,
            if report.is_intact() { "intact" } else { "BROKEN" },
            report.checkpoint
        )?;
        outln!(
            "\nInspect it yourself:\n  remediate --data-dir {} show {id}\n  remediate --data-dir {} audit export",
            dir.display(),
            dir.display()
        )?;
        outln!("  store: {}", dir.join(STORE_FILE).display())?;
    } else {
        steps.push(serde_json::json!({"step": "audit_verify", "report": report}));
        outln!("{}", output::json(&serde_json::json!({"data_dir": dir, "steps": steps})))?;
    }
    Ok(if report.is_intact() { ExitCode::Success } else { ExitCode::AuditBroken }.code())
}

fn toml_of(config: &Config) -> Result<String, Failure> {
    toml::to_string_pretty(config)
        .map_err(|e| Failure::new(ExitCode::Internal, anyhow::anyhow!("cannot write the demo configuration: {e}")))
}
