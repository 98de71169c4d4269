//! `tenants create|list` and `settings copy`.

use std::io::IsTerminal as _;

use serde_json::json;

use crate::admin::TenantsCommand;
use crate::app::Ctx;
use crate::backend::Backend;
use crate::exit::ExitCode;
use crate::failure::{Failure, runtime_failure};
use crate::output::{self, Format, clean, errln, outln, table};

fn local_only(what: &str) -> Failure {
    Failure::new(
        ExitCode::Usage,
        anyhow::anyhow!("{what} runs on the data directory (it needs both tenants at once); leave out --server"),
    )
}

impl Ctx {
    /// `tenants create|list`.
    pub(crate) async fn tenants(&self, command: &TenantsCommand) -> Result<u8, Failure> {
        match command {
            TenantsCommand::Create { name, description } => {
                let tenant = match &self.backend {
                    Backend::Local(l) => {
                        remediation_service::tenants::create_tenant(&l.runtime, &self.actor, name, description).await?
                    }
                    Backend::Remote(r) => {
                        let body = remediation_api::types::CreateTenantBody {
                            name: name.clone(),
                            description: description.clone(),
                        };
                        r.post::<_, remediation_core::Tenant>("/v1/tenants", &body).await?
                    }
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(tenant)))?,
                    Format::Table => {
                        outln!("tenant {} created", tenant.name)?;
                        outln!(
                            "next: remediate --tenant {0} principal create NAME --role admin, then remediate --tenant {0} token create NAME",
                            tenant.name
                        )?;
                    }
                }
                Ok(0)
            }
            TenantsCommand::List => {
                let all = match &self.backend {
                    Backend::Local(l) => remediation_service::tenants::tenants(&l.runtime, &self.actor).await?,
                    Backend::Remote(r) => r.get::<Vec<remediation_core::Tenant>>("/v1/tenants").await?,
                };
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"items": all})))?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = all
                            .iter()
                            .map(|t| {
                                vec![
                                    t.name.to_string(),
                                    clean(&t.created_by),
                                    if t.name.is_default() {
                                        "-".to_owned()
                                    } else {
                                        t.created_at
                                            .format(&time::format_description::well_known::Rfc3339)
                                            .unwrap_or_default()
                                    },
                                    clean(&t.description),
                                ]
                            })
                            .collect();
                        outln!("{}", table(&["TENANT", "CREATED BY", "CREATED", "DESCRIPTION"], &rows).trim_end())?;
                    }
                }
                Ok(0)
            }
        }
    }

    /// `settings copy --from A --to B`.
    pub(crate) async fn settings_copy(
        &self,
        from: &remediation_core::TenantId,
        to: &remediation_core::TenantId,
        reason: &str,
        yes: bool,
        dry_run: bool,
    ) -> Result<u8, Failure> {
        let Backend::Local(l) = &self.backend else { return Err(local_only("settings copy")) };
        let from_rt = l.installation.for_tenant(from).await.map_err(runtime_failure)?;
        let to_rt = l.installation.for_tenant(to).await.map_err(runtime_failure)?;
        let (a, b) = (&self.actor, &self.actor);
        let preview = remediation_service::tenants::copy_settings(&from_rt, &to_rt, a, b, reason, false).await?;
        self.print_copy(&preview, dry_run)?;
        if preview.differences.is_empty() || dry_run {
            return Ok(0);
        }
        if !yes {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::new(
                    ExitCode::Usage,
                    anyhow::anyhow!(
                        "settings copy would change {} settings of tenant {to}; add --yes to confirm without a terminal",
                        preview.differences.len()
                    ),
                ));
            }
            errln!("Copy these settings from tenant {from} to tenant {to}? Only 'yes' will be accepted:");
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if answer.trim() != "yes" {
                errln!("settings copy cancelled: nothing was changed.");
                return Ok(ExitCode::Refused.code());
            }
        }
        let done = remediation_service::tenants::copy_settings(&from_rt, &to_rt, a, b, reason, true).await?;
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(done)))?,
            Format::Table => match done.pending_change.as_deref() {
                Some(id) => outln!(
                    "settings copy to tenant {to} loosens the policy: it waits for a second admin of {to} (pending change {id}; `remediate --tenant {to} pending confirm {id}`)"
                )?,
                None => outln!("settings copied from tenant {from} to tenant {to} ({})", done.outcome)?,
            },
        }
        Ok(0)
    }

    fn print_copy(&self, copy: &remediation_service::tenants::SettingsCopy, dry_run: bool) -> Result<(), Failure> {
        if self.format == Format::Json {
            // One document: the preview when nothing else follows, else the outcome.
            if copy.differences.is_empty() || dry_run {
                outln!("{}", output::json(&json!(copy)))?;
            }
            return Ok(());
        }
        if copy.differences.is_empty() {
            outln!("tenants {} and {} have the same settings; nothing to copy", copy.from, copy.to)?;
            return Ok(());
        }
        let cell = |v: &serde_json::Value| clean(&v.to_string());
        let rows: Vec<Vec<String>> =
            copy.differences.iter().map(|d| vec![clean(&d.path), cell(&d.to), cell(&d.from)]).collect();
        let to_head = format!("{} NOW", copy.to.as_str().to_uppercase());
        let from_head = format!("FROM {}", copy.from.as_str().to_uppercase());
        outln!("{}", table(&["SETTING", to_head.as_str(), from_head.as_str()], &rows).trim_end())?;
        outln!("{} settings differ.", copy.differences.len())?;
        Ok(())
    }
}
