//! `remediate migrate` and `remediate store copy`: the store's schema, and moving an
//! installation to another store. Both work on the store itself, without building the engine
//! or any connector.

use std::path::{Path, PathBuf};

use remediation_config::{PasswordSource, StoreTarget};
use remediation_core::store::transfer::{CopyError, CopyProgress, copy_installation};
use remediation_runtime::LoadedConfig;
use remediation_runtime::store::{self, OpenOptions};
use serde_json::json;

use crate::exit::ExitCode;
use crate::failure::{Failure, runtime_failure};
use crate::output::{self, Format, errln, outln};
use crate::{Cli, StoreCommand};

fn loaded(cli: &Cli) -> Result<LoadedConfig, Failure> {
    let loaded = LoadedConfig::discover(cli.config.as_deref(), cli.data_dir.as_deref()).map_err(runtime_failure)?;
    if !loaded.dir.is_dir() {
        return Err(runtime_failure(remediation_runtime::RuntimeError::DataDirMissing { dir: loaded.dir.clone() }));
    }
    Ok(loaded)
}

/// `remediate migrate`: brings the configured store's schema to this build's version.
pub(crate) async fn migrate(cli: &Cli) -> Result<u8, Failure> {
    let loaded = loaded(cli)?;
    let target = store::target(&loaded.config).map_err(runtime_failure)?;
    let report = store::migrate(&target, &loaded.dir).await.map_err(runtime_failure)?;
    match cli.output {
        Format::Json => outln!("{}", output::json(&json!(report)))?,
        Format::Table => match report.from {
            Some(from) if from == report.to => outln!("{}: schema {} is current", report.store, report.to)?,
            Some(from) => outln!("{}: schema {from} -> {}", report.store, report.to)?,
            None => outln!("{}: created at schema {}", report.store, report.to)?,
        },
    }
    if let (Format::Table, Some(role)) = (cli.output, &report.granted) {
        outln!("granted the runtime role {role} its privileges")?;
    }
    Ok(0)
}

/// A store named on the command line: `sqlite:PATH` (relative to the working directory) or a
/// PostgreSQL URL, its password from the named variable.
fn parse_store(url: &str, password_env: Option<&str>, flag: &str) -> Result<StoreTarget, Failure> {
    let target = StoreTarget::parse_url(url, password_env.map(|v| PasswordSource::Env(v.to_owned())))
        .map_err(|e| Failure::new(ExitCode::Usage, anyhow::anyhow!("{flag} {url}: {}", e.message)))?;
    Ok(match target {
        StoreTarget::Sqlite { path } if path.is_relative() => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            StoreTarget::Sqlite { path: cwd.join(path) }
        }
        other => other,
    })
}

/// `remediate store ...`.
pub(crate) async fn run(cli: &Cli, command: &StoreCommand) -> Result<u8, Failure> {
    let StoreCommand::Copy { from, to, from_password_env, to_password_env, page_size } = command;
    let loaded = loaded(cli)?;
    let source = parse_store(from, from_password_env.as_deref(), "--from")?;
    let target = match to {
        Some(url) => parse_store(url, to_password_env.as_deref(), "--to")?,
        None => store::target(&loaded.config).map_err(runtime_failure)?,
    };
    let (source_name, target_name) = (source.describe(&loaded.dir), target.describe(&loaded.dir));
    if let (StoreTarget::Sqlite { path: a }, StoreTarget::Sqlite { path: b }) = (&source, &target)
        && same_file(&loaded.dir.join(a), &loaded.dir.join(b))
    {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow::anyhow!("--from and --to name the same store {source_name}"),
        ));
    }
    if let StoreTarget::Sqlite { path } = &source
        && !loaded.dir.join(path).is_file()
    {
        return Err(Failure::new(ExitCode::Usage, anyhow::anyhow!("--from {source_name}: no such file")));
    }
    // One key for both: the checkpoint is carried over as the source sealed it, and verified
    // on both sides with the installation's key.
    let key = loaded.audit_key().map_err(runtime_failure)?;
    let key_again = loaded.audit_key().map_err(runtime_failure)?;
    let from_store = store::open_transfer(&source, &loaded.dir, key, OpenOptions::default())
        .await
        .map_err(|e| runtime_failure(e).context(format!("opening --from {source_name}")))?;
    let to_store = store::open_transfer(
        &target,
        &loaded.dir,
        key_again,
        OpenOptions { migrate: true, background_sequencer: false },
    )
    .await
    .map_err(|e| runtime_failure(e).context(format!("opening the target {target_name}")))?;
    errln!("copying {source_name} to {target_name}");
    let mut last = None;
    let mut progress = |p: CopyProgress| {
        // A line when a section ends, and about every twentieth of a large one.
        let step = (p.total / 20).max(1);
        if p.done == p.total || last.is_none_or(|(s, d)| s != p.section || p.done / step != d / step) {
            errln!("  {}: {}/{}", p.section, p.done, p.total);
        }
        last = Some((p.section, p.done));
    };
    let report = match copy_installation(from_store.as_ref(), to_store.as_ref(), *page_size, &mut progress).await {
        Ok(report) => report,
        Err(e) => {
            let code = match &e {
                CopyError::SourceTampered { .. } => ExitCode::AuditBroken,
                CopyError::TargetNotEmpty { .. } | CopyError::ArchivedRecords { .. } => ExitCode::Refused,
                _ => ExitCode::Internal,
            };
            return Err(Failure::new(code, e).context(format!("copying {source_name} to {target_name}")));
        }
    };
    let copied: serde_json::Map<String, serde_json::Value> =
        report.copied.iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect();
    match cli.output {
        Format::Json => outln!(
            "{}",
            output::json(&json!({
                "from": source_name,
                "to": target_name,
                "copied": copied,
                "audit": report.target_audit,
            }))
        )?,
        Format::Table => {
            outln!("copied {source_name} to {target_name}")?;
            for (section, n) in &report.copied {
                outln!("  {section}: {n}")?;
            }
            outln!(
                "  audit log verified on the target: {} records, head {}; {}",
                report.target_audit.records,
                report.target_audit.head.as_deref().unwrap_or("(empty)"),
                report.target_audit.checkpoint
            )?;
        }
    }
    Ok(0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
