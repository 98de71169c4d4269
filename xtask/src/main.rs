//! Project automation. `cargo xtask codegen` writes the JSON Schemas of the types that cross
//! a boundary (configuration, actions, plans, audit records, tree heads and proofs, the webhook protocol) and the
//! API's OpenAPI document into `schemas/`, and the connector capability matrix into
//! `README.md`;
//! `cargo xtask codegen --check` fails when the committed files are stale, and so does this
//! crate's test. `cargo xtask bench server` benchmarks `remediation-server` (not part of CI;
//! see [`bench`]); `cargo xtask bench engine` the embedded engine on SQLite (see
//! [`engine_bench`]); `cargo xtask bench events` event delivery by the relay to JetStream (see
//! [`events_bench`]). `cargo xtask api-descriptions reduce|check` maintains the reduced provider
//! API descriptions in `api-descriptions/` (see [`api_descriptions`]).

mod api_descriptions;
mod bench;
mod engine_bench;
mod events_bench;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

mod matrix;
mod replicas_bench;
mod throttle;

/// Every generated file: name and content.
fn generated() -> anyhow::Result<Vec<(&'static str, String)>> {
    fn schema<T: schemars::JsonSchema>() -> anyhow::Result<String> {
        let mut text = serde_json::to_string_pretty(&schemars::schema_for!(T)).context("cannot serialise a schema")?;
        text.push('\n');
        Ok(text)
    }
    Ok(vec![
        ("config.schema.json", {
            // The connector settings come from the catalog's factories: the configuration crate
            // keeps each connector's table opaque.
            let mut text = serde_json::to_string_pretty(&remediation_runtime::Catalog::builtin().config_schema())
                .context("cannot serialise the configuration schema")?;
            text.push('\n');
            text
        }),
        ("action.schema.json", schema::<remediation_core::Action>()?),
        ("action-request.schema.json", schema::<remediation_core::ActionRequest>()?),
        ("plan.schema.json", schema::<remediation_core::Plan>()?),
        ("finding.schema.json", schema::<remediation_core::Finding>()?),
        ("cloudevent.schema.json", schema::<remediation_core::CloudEvent>()?),
        ("events-status.schema.json", schema::<remediation_runtime::relay::EventsStatus>()?),
        ("audit-record.schema.json", schema::<remediation_audit::AuditRecord>()?),
        ("audit-tree-head.schema.json", schema::<remediation_audit::SignedTreeHead>()?),
        ("audit-keys.schema.json", schema::<remediation_audit::PublicKeySet>()?),
        ("audit-inclusion.schema.json", schema::<remediation_audit::InclusionBundle>()?),
        ("audit-consistency.schema.json", schema::<remediation_audit::ConsistencyBundle>()?),
        ("audit-verify.schema.json", schema::<remediation_audit::AuditVerification>()?),
        ("compliance-report.schema.json", schema::<remediation_api::types::ComplianceReport>()?),
        ("openapi.json", {
            let mut text = serde_json::to_string_pretty(&remediation_api::openapi::document())
                .context("cannot serialise the OpenAPI document")?;
            text.push('\n');
            text
        }),
        ("findings-reply.schema.json", schema::<remediation_api::types::FindingsReply>()?),
        ("control.schema.json", schema::<remediation_api::types::ControlView>()?),
        ("webhook-request.schema.json", schema::<remediation_connector_webhook::WebhookRequest>()?),
        ("webhook-response.schema.json", schema::<remediation_connector_webhook::WebhookResponse>()?),
        ("playbook.schema.json", schema::<remediation_service::playbooks::Playbook>()?),
        ("playbook-run.schema.json", schema::<remediation_service::playbooks::Run>()?),
        ("respond-result.schema.json", schema::<remediation_service::incident::RespondResult>()?),
    ])
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("schemas")
}

/// Writes the files, or with `check` lists the stale ones and fails.
fn codegen(check: bool) -> anyhow::Result<()> {
    let dir = schemas_dir();
    let mut stale = Vec::new();
    for (name, content) in generated()? {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == content {
            continue;
        }
        if check {
            stale.push(name);
        } else {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote schemas/{name}");
        }
    }
    if matrix::update_readme(check)? {
        stale.push("README.md (capability matrix)");
    }
    if !stale.is_empty() {
        bail!("generated files are stale: {}; run `cargo xtask codegen` and commit the result", stale.join(", "));
    }
    Ok(())
}

/// mimalloc rather than the system allocator, as an embedding service may choose: the engine
/// allocates and frees many small JSON values per state change from several threads, where
/// glibc's allocator spent a fifth of the worker threads' time consolidating its free lists.
/// The engine benchmark prints which allocator it ran with (README gives both figures).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        ["api-descriptions", rest @ ..] => api_descriptions::run(rest),
        ["bench", "server", rest @ ..] => bench::server(rest),
        ["bench", "engine", rest @ ..] => engine_bench::run(rest),
        ["bench", "throttle", rest @ ..] => throttle::run(rest),
        ["bench", "replicas", rest @ ..] => replicas_bench::run(rest),
        ["bench", "events", rest @ ..] => events_bench::run(rest),
        _ => bail!(
            "usage: cargo xtask codegen [--check] | api-descriptions check | api-descriptions reduce --provider P --full FILE [--commit SHA] | bench server [--only file|memory|seeded]... | bench engine [--actions N] [--seconds S] | bench throttle [--rate N] [--count N] | bench replicas [--actions N] [--limit N] | bench events [--actions N] [--seconds S] [--rounds N] [--rate R] [--poll MS] [--batch N] [--only cost|delay]"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_files_are_fresh() {
        if let Err(e) = super::codegen(true) {
            panic!("{e:#}");
        }
    }
}
