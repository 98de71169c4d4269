//! The README's capability matrix, generated from each connector crate's `capabilities()`
//! so the documentation cannot drift from what the connectors declare.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use remediation_core::{Capability, KindName, Reversibility};

/// The markers the table is written between in `README.md`.
const START: &str = "<!-- capability-matrix:start -->";
const END: &str = "<!-- capability-matrix:end -->";

/// The matrix's column heading of `kind`; the columns are every kind, in [`KindName::ALL`]'s
/// order, so a new kind cannot be left out of the table.
fn heading(kind: KindName) -> &'static str {
    match kind {
        KindName::Revoke => "Revoke",
        KindName::Reduce => "Reduce",
        KindName::Suspend => "Suspend",
        KindName::RevokeSessions => "Revoke sessions",
        KindName::ForcePasswordReset => "Force password reset",
        KindName::Notify => "Notify",
        KindName::Enforce => "Enforce",
        KindName::Rotate => "Rotate",
    }
}

/// One connector: its name, its `type` in the configuration, and its capabilities
/// (`None` when they come from its configuration).
struct Row {
    name: &'static str,
    config_type: &'static str,
    capabilities: Option<Vec<Capability>>,
}

/// One row per connector type of the catalog, in its order.
fn rows() -> Vec<Row> {
    remediation_runtime::Catalog::builtin()
        .factories()
        .iter()
        .map(|f| Row { name: f.title(), config_type: f.type_name(), capabilities: f.capabilities() })
        .collect()
}

/// One cell: the grant types supporting `kind`, each marked with its reversibility.
fn cell(capabilities: &[Capability], kind: KindName) -> String {
    let grant_types: Vec<String> = capabilities
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| {
            let marker = match c.reversibility {
                Reversibility::Reversible => "",
                Reversibility::Lossy => " †",
                Reversibility::Irreversible => " ‡",
            };
            format!("`{}`{marker}", c.grant_type)
        })
        .collect();
    if grant_types.is_empty() { "—".to_owned() } else { grant_types.join(", ") }
}

/// The Markdown table and its legend.
pub(crate) fn table() -> String {
    let mut out = String::new();
    out.push_str("| Connector (`type`) |");
    for title in KindName::ALL.map(heading) {
        out.push_str(&format!(" {title} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(KindName::ALL.len()));
    out.push('\n');
    for row in rows() {
        out.push_str(&format!("| {} (`{}`) |", row.name, row.config_type));
        for kind in KindName::ALL {
            let text = match &row.capabilities {
                Some(caps) => cell(caps, kind),
                None => "as configured".to_owned(),
            };
            out.push_str(&format!(" {text} |"));
        }
        out.push('\n');
    }
    out.push_str(
        "\nEach cell lists the grant types a connector supports for that kind. Unmarked: reversible \
         (rollback restores the exact before-state); † lossy (rollback loses a detail, or can only \
         offer the access back as an invitation the person must accept); ‡ irreversible (cannot be undone). Lossy and irreversible actions never run \
         in auto mode. The webhook connector supports every kind, for the grant types and with the \
         reversibility its configuration declares.\n",
    );
    out
}

fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("README.md")
}

/// `text` with the part between the markers replaced by `table`.
fn splice(text: &str, table: &str) -> anyhow::Result<String> {
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        bail!("README.md lacks the `{START}` and `{END}` markers");
    };
    if end < start {
        bail!("README.md has `{END}` before `{START}`");
    }
    let before = &text[..start + START.len()];
    let after = &text[end..];
    Ok(format!("{before}\n{table}{after}"))
}

/// Writes the matrix into `README.md`, or with `check` only reports whether it is stale.
/// Returns true when the committed README was stale and `check` was set.
pub(crate) fn update_readme(check: bool) -> anyhow::Result<bool> {
    let path = readme_path();
    let current = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let wanted = splice(&current, &table())?;
    if wanted == current {
        return Ok(false);
    }
    if check {
        return Ok(true);
    }
    std::fs::write(&path, wanted).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote README.md (capability matrix)");
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let text = format!("intro\n{START}\nold table\n{END}\noutro\n");
        let out = splice(&text, "new\n").expect("splice");
        assert_eq!(out, format!("intro\n{START}\nnew\n{END}\noutro\n"));
        assert_eq!(splice(&out, "new\n").expect("splice again"), out, "splicing is idempotent");
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn cells_mark_lossy_and_irreversible_grant_types() {
        let cap = |kind, grant_type: &str, reversibility| Capability {
            kind,
            grant_type: grant_type.to_owned(),
            reversibility,
            observable: true,
        };
        let caps = [
            cap(KindName::Revoke, "group", Reversibility::Reversible),
            cap(KindName::Revoke, "app", Reversibility::Lossy),
            cap(KindName::RevokeSessions, "account", Reversibility::Irreversible),
        ];
        assert_eq!(cell(&caps, KindName::Revoke), "`group`, `app` †");
        assert_eq!(cell(&caps, KindName::RevokeSessions), "`account` ‡");
        assert_eq!(cell(&caps, KindName::Suspend), "—");
    }

    #[test]
    fn every_connector_with_fixed_capabilities_declares_some() {
        for row in rows() {
            if let Some(caps) = row.capabilities {
                assert!(!caps.is_empty(), "{} declares no capability", row.name);
            }
        }
    }
}
