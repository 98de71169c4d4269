//! `remediate connections ...` (managed connections: connectors created at run time, their
//! secrets sealed in the store) and `remediate keys rotate` (the master key that seals them).
//! Local data directory only. Secrets are read from files, standard input or environment
//! variables, never from the command line, and never printed.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _};

use clap::Subcommand;
use remediation_core::store::ConnectionScope;
use remediation_runtime::connections::{RotationEvent, rewrap_all, rotate_master_key};
use remediation_service::connections::{ConnectionChange, ConnectionView, NewConnection};
use secrecy::SecretString;
use serde_json::json;

use crate::app::Ctx;
use crate::exit::ExitCode;
use crate::failure::{Failure, runtime_failure};
use crate::output::{self, Format, clean, errln, out, outln};

/// `remediate connections ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConnectionsCommand {
    /// Every connection: the configuration file's (read-only) and the managed ones, with
    /// type, source, whether enabled and healthy, the last check and capabilities.
    List,
    /// One connection: settings (without secrets), secret names, scope, last check.
    Show {
        /// The connection's id.
        id: String,
    },
    /// Create a managed connection (admin). Secrets are never taken on the command line:
    /// `--secret NAME=@FILE`, `--secret NAME=-` (standard input) or `--secret-env NAME=VAR`;
    /// the settings reference them as `{"sealed": "NAME"}`.
    Add {
        /// The connector type (`okta`, `scim`, `sandbox`, ...).
        #[arg(long = "type")]
        type_name: String,
        /// The connection's id, as actions name it.
        #[arg(long)]
        id: String,
        /// The connector's settings as a JSON object, or `@FILE`; without `id` and `type`.
        #[arg(long)]
        settings: String,
        /// A secret: `NAME=@FILE` or `NAME=-` (standard input).
        #[arg(long = "secret", value_name = "NAME=@FILE|NAME=-")]
        secrets: Vec<String>,
        /// A secret read from an environment variable: `NAME=VAR`.
        #[arg(long = "secret-env", value_name = "NAME=VAR")]
        secret_envs: Vec<String>,
        /// An email domain the connection manages (repeatable).
        #[arg(long = "scope-domain")]
        domains: Vec<String>,
        /// An AWS account id the connection manages (repeatable).
        #[arg(long = "scope-account")]
        accounts: Vec<String>,
    },
    /// Change a managed connection (admin): new settings, new secrets (they replace all of
    /// its secrets) or a new scope.
    Update {
        /// The connection's id.
        id: String,
        /// New settings (a JSON object, or `@FILE`).
        #[arg(long)]
        settings: Option<String>,
        /// A secret: `NAME=@FILE` or `NAME=-` (standard input).
        #[arg(long = "secret", value_name = "NAME=@FILE|NAME=-")]
        secrets: Vec<String>,
        /// A secret read from an environment variable: `NAME=VAR`.
        #[arg(long = "secret-env", value_name = "NAME=VAR")]
        secret_envs: Vec<String>,
        /// An email domain the connection manages (repeatable; replaces the scope).
        #[arg(long = "scope-domain")]
        domains: Vec<String>,
        /// An AWS account id the connection manages (repeatable; replaces the scope).
        #[arg(long = "scope-account")]
        accounts: Vec<String>,
    },
    /// Run a connection's health and permission checks now and record them (admin).
    Test {
        /// The connection's id.
        id: String,
    },
    /// Stop using a managed connection (admin): not built, never selected.
    Disable {
        /// The connection's id.
        id: String,
    },
    /// Use a disabled managed connection again (admin).
    Enable {
        /// The connection's id.
        id: String,
    },
    /// Remove a managed connection and its sealed secrets (admin); asks on a terminal.
    Rm {
        /// The connection's id.
        id: String,
        /// Do not ask (required off a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// `remediate keys ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Rotate the master key that seals the secrets of managed connections (admin): a new key
    /// is written first in the key file, every connection of every tenant is rewrapped under
    /// it, then the old key is dropped. Connections stay usable throughout.
    Rotate {
        /// Only rewrap every connection under the current (first) key, for a master key kept
        /// in an environment variable set to `NEW,OLD`.
        #[arg(long)]
        rewrap_only: bool,
    },
}

fn usage(message: String) -> Failure {
    Failure::new(ExitCode::Usage, anyhow::anyhow!(message))
}

/// The settings JSON, given inline or as `@FILE`.
fn settings(text: &str) -> Result<serde_json::Value, Failure> {
    let text = match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read the settings file {path}: {e}")))?
        }
        None => text.to_owned(),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("--settings is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(usage("--settings is a JSON object".to_owned()));
    }
    Ok(value)
}

/// The secrets named by `--secret` and `--secret-env`; a value written on the command line is
/// refused without being echoed.
fn secrets(files: &[String], envs: &[String]) -> Result<BTreeMap<String, SecretString>, Failure> {
    let mut out = BTreeMap::new();
    let mut stdin_used = false;
    for spec in files {
        let Some((name, source)) = spec.split_once('=') else {
            return Err(usage("--secret takes NAME=@FILE or NAME=- (standard input)".to_owned()));
        };
        let value = if source == "-" {
            if stdin_used {
                return Err(usage("only one secret can be read from standard input".to_owned()));
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| usage(format!("cannot read secret `{name}` from standard input: {e}")))?;
            text
        } else if let Some(path) = source.strip_prefix('@') {
            std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read secret `{name}` from {path}: {e}")))?
        } else {
            return Err(usage(format!(
                "a secret is never taken on the command line (it would stay in the shell's history and the process \
                 list): use --secret {name}=@FILE, --secret {name}=- (standard input) or --secret-env {name}=VAR"
            )));
        };
        out.insert(name.to_owned(), trimmed(name, &value)?);
    }
    for spec in envs {
        let Some((name, var)) = spec.split_once('=') else {
            return Err(usage("--secret-env takes NAME=VAR".to_owned()));
        };
        let value = std::env::var(var).map_err(|_| usage(format!("environment variable {var} is not set")))?;
        out.insert(name.to_owned(), trimmed(name, &value)?);
    }
    Ok(out)
}

fn trimmed(name: &str, value: &str) -> Result<SecretString, Failure> {
    let value = value.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(usage(format!("secret `{name}` is empty")));
    }
    Ok(SecretString::from(value.to_owned()))
}

fn scope(domains: &[String], accounts: &[String]) -> ConnectionScope {
    ConnectionScope { domains: domains.to_vec(), accounts: accounts.to_vec() }
}

fn when(at: Option<time::OffsetDateTime>) -> String {
    at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()).unwrap_or_else(|| "-".to_owned())
}

fn healthy(v: &ConnectionView) -> String {
    match (v.healthy, &v.error) {
        (_, Some(_)) => "error".to_owned(),
        (Some(true), None) => "yes".to_owned(),
        (Some(false), None) => "no".to_owned(),
        (None, None) => "-".to_owned(),
    }
}

fn capabilities(v: &ConnectionView) -> String {
    if v.capabilities.is_empty() {
        return "-".to_owned();
    }
    v.capabilities.iter().map(|c| format!("{} {}", c.kind, c.grant_type)).collect::<Vec<_>>().join("; ")
}

impl Ctx {
    /// `remediate connections ...`.
    pub(crate) async fn connections(&self, command: &crate::connectionscmd::ConnectionsCommand) -> Result<u8, Failure> {
        let local = self.backend.local("connections")?;
        let rt = &local.runtime;
        match command {
            ConnectionsCommand::List => {
                let all = remediation_service::connections::connections(rt).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(all)))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = all
                            .iter()
                            .map(|c| {
                                vec![
                                    clean(&c.id),
                                    clean(&c.type_name),
                                    c.source.clone(),
                                    if c.enabled { "yes" } else { "no" }.to_owned(),
                                    healthy(c),
                                    when(c.last_check),
                                    capabilities(c),
                                ]
                            })
                            .collect();
                        let headers = ["ID", "TYPE", "SOURCE", "ENABLED", "HEALTHY", "LAST CHECK", "CAPABILITIES"];
                        out!("{}", output::table(&headers, &rows))?;
                        for c in all.iter().filter(|c| c.error.is_some()) {
                            errln!("{}: not in use: {}", clean(&c.id), clean(c.error.as_deref().unwrap_or_default()));
                        }
                    }
                }
                Ok(0)
            }
            ConnectionsCommand::Show { id } => {
                let view = remediation_service::connections::connection(rt, id).await?;
                self.print_connection(&view)?;
                Ok(0)
            }
            ConnectionsCommand::Add { type_name, id, settings: s, secrets: files, secret_envs, domains, accounts } => {
                let new = NewConnection {
                    id: id.clone(),
                    type_name: type_name.clone(),
                    settings: settings(s)?,
                    secrets: secrets(files, secret_envs)?,
                    scope: scope(domains, accounts),
                };
                let view = remediation_service::connections::add_connection(rt, &self.actor, new).await?;
                if self.format == Format::Table {
                    outln!("added connection {} ({})", clean(&view.id), clean(&view.type_name))?;
                }
                self.print_connection(&view)?;
                Ok(0)
            }
            ConnectionsCommand::Update { id, settings: s, secrets: files, secret_envs, domains, accounts } => {
                let given = secrets(files, secret_envs)?;
                let change = ConnectionChange {
                    settings: s.as_deref().map(settings).transpose()?,
                    secrets: (!given.is_empty()).then_some(given),
                    scope: (!domains.is_empty() || !accounts.is_empty()).then(|| scope(domains, accounts)),
                    expected_revision: None,
                };
                let view = remediation_service::connections::update_connection(rt, &self.actor, id, change).await?;
                self.print_connection(&view)?;
                Ok(0)
            }
            ConnectionsCommand::Test { id } => {
                let test = remediation_service::connections::test_connection(rt, &self.actor, id).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(test)))?,
                    Format::Table => {
                        outln!(
                            "{}: {} ({})",
                            clean(&test.id),
                            if test.healthy { "healthy" } else { "unhealthy" },
                            clean(&test.detail)
                        )?;
                        for p in &test.missing_permissions {
                            outln!("  missing permission: {}", clean(p))?;
                        }
                        for p in &test.unknown_permissions {
                            outln!("  cannot judge: {}", clean(p))?;
                        }
                    }
                }
                Ok(if test.healthy && test.missing_permissions.is_empty() { 0 } else { ExitCode::Provider.code() })
            }
            ConnectionsCommand::Disable { id } | ConnectionsCommand::Enable { id } => {
                let enabled = matches!(command, ConnectionsCommand::Enable { .. });
                let view =
                    remediation_service::connections::set_connection_enabled(rt, &self.actor, id, enabled).await?;
                self.print_connection(&view)?;
                Ok(0)
            }
            ConnectionsCommand::Rm { id, yes } => {
                if !yes {
                    if !std::io::stdin().is_terminal() {
                        return Err(usage(format!(
                            "removing connection {id} deletes its sealed secrets; add --yes to confirm without a terminal"
                        )));
                    }
                    errln!("Remove connection {id} and its sealed secrets? Only 'yes' will be accepted:");
                    let mut answer = String::new();
                    let _ = std::io::stdin().read_line(&mut answer);
                    if answer.trim() != "yes" {
                        errln!("nothing was removed.");
                        return Ok(ExitCode::Refused.code());
                    }
                }
                remediation_service::connections::remove_connection(rt, &self.actor, id).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"removed": id})))?,
                    Format::Table => outln!("removed connection {}", clean(id))?,
                }
                Ok(0)
            }
        }
    }

    fn print_connection(&self, v: &ConnectionView) -> Result<(), Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(v)))?,
            Format::Table => {
                let scope = |l: &[String]| if l.is_empty() { "-".to_owned() } else { clean(&l.join(", ")) };
                let mut rows = vec![
                    vec!["id".to_owned(), clean(&v.id)],
                    vec!["type".to_owned(), clean(&v.type_name)],
                    vec!["source".to_owned(), v.source.clone()],
                    vec!["enabled".to_owned(), if v.enabled { "yes" } else { "no" }.to_owned()],
                    vec!["healthy".to_owned(), healthy(v)],
                    vec!["last check".to_owned(), when(v.last_check)],
                    vec!["scope domains".to_owned(), scope(&v.scope.domains)],
                    vec!["scope accounts".to_owned(), scope(&v.scope.accounts)],
                    vec!["secrets".to_owned(), scope(&v.secret_names)],
                    vec!["capabilities".to_owned(), capabilities(v)],
                ];
                if let Some(d) = &v.detail {
                    rows.push(vec!["detail".to_owned(), clean(d)]);
                }
                if !v.missing_permissions.is_empty() {
                    rows.push(vec!["missing permissions".to_owned(), clean(&v.missing_permissions.join(", "))]);
                }
                if let Some(s) = &v.settings {
                    rows.push(vec!["settings".to_owned(), clean(&s.to_string())]);
                }
                if let Some(r) = v.revision {
                    rows.push(vec!["revision".to_owned(), r.to_string()]);
                }
                if let Some(e) = &v.error {
                    rows.push(vec!["error".to_owned(), clean(e)]);
                }
                out!("{}", output::table(&["FIELD", "VALUE"], &rows))?;
            }
        }
        Ok(())
    }

    /// `remediate keys rotate [--rewrap-only]` (admin).
    pub(crate) async fn keys(&self, command: &KeysCommand) -> Result<u8, Failure> {
        let local = self.backend.local("keys")?;
        let rt = &local.runtime;
        if self.actor.role != remediation_core::Role::Admin {
            return Err(Failure::new(
                ExitCode::Refused,
                anyhow::anyhow!("{} is a {}; rotating the master key needs an admin", self.actor.name, self.actor.role),
            ));
        }
        let KeysCommand::Rotate { rewrap_only } = command;
        let json = self.format == Format::Json;
        let mut progress = |e: RotationEvent| {
            if json {
                return;
            }
            match e {
                RotationEvent::KeyringWritten { new_kid, old_kids } => {
                    errln!("wrote the new master key {new_kid} first in the key file (old: {})", old_kids.join(", "));
                }
                RotationEvent::Rewrapped { tenant, id } => errln!("rewrapped {tenant}/{id}"),
                RotationEvent::AlreadyCurrent { tenant, id } => errln!("{tenant}/{id}: already under the current key"),
                RotationEvent::Failed { tenant, id, error } => errln!("{tenant}/{id}: FAILED: {error}"),
                RotationEvent::OldKeysDropped => errln!("dropped the old keys from the key file"),
                _ => {}
            }
        };
        let now = rt.clock().now();
        let summary = if *rewrap_only {
            let ring = rt.vault().reload().map_err(runtime_failure)?;
            rewrap_all(rt.store().as_ref(), &ring, &self.actor, now, &mut progress).await.map_err(runtime_failure)?
        } else {
            rotate_master_key(rt.store().as_ref(), rt.vault(), &self.actor, now, &mut progress)
                .await
                .map_err(runtime_failure)?
        };
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(summary)))?,
            Format::Table => {
                outln!(
                    "current master key {}: {} rewrapped, {} already current, {} failed{}",
                    summary.current_kid,
                    summary.rewrapped,
                    summary.already_current,
                    summary.failed.len(),
                    if summary.old_keys_dropped { "; old keys dropped" } else { "" }
                )?;
                if !summary.failed.is_empty() && !rewrap_only {
                    outln!("the old keys stay in the key file until every connection is rewrapped; run it again")?;
                }
                if summary.old_keys_dropped || *rewrap_only {
                    outln!("back up the new key now, away from the store's backups")?;
                }
            }
        }
        Ok(if summary.failed.is_empty() { 0 } else { ExitCode::Internal.code() })
    }
}
