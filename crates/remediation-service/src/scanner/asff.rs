//! AWS Security Finding Format, as Security Hub returns it (GetFindings) and takes it in
//! (BatchImportFindings).
//!
//! Security Hub's own control findings (`ProductArn` `...:product/aws/securityhub`) are keyed by
//! `Compliance.SecurityControlId`; with consolidated control findings off, by the control id of
//! the AWS Foundational Security Best Practices standard (`GeneratorId`
//! `aws-foundational-security-best-practices/v/1.0.0/S3.8`, or `ProductFields.ControlId` with
//! that standard's `StandardsArn`), whose ids are the security control ids. Another standard's
//! own numbering (CIS `1.4`, ...) is not a security control id and is reported as unsupported.
//! Prowler's ASFF output (`ProductArn` `...:product/prowler/prowler`, `GeneratorId`
//! `prowler-CHECK`) is keyed by the Prowler check id. Only `Compliance.Status` `FAILED` asks for
//! a change; an archived record or a resolved or suppressed workflow is nothing to do.

use remediation_core::Severity;
use serde_json::Value;

use super::mapping::Scanner;
use super::{EntryOutcome, Failing, Resource, ScannerEntry, str_at};

const FSBP: &str = "aws-foundational-security-best-practices/v/";

pub(super) fn read(item: &Value) -> ScannerEntry {
    let id = str_at(item, &["Id"]).map(str::to_owned);
    let product = str_at(item, &["ProductArn"]).unwrap_or_default();
    let scanner = if product.ends_with(":product/aws/securityhub") {
        Some(Scanner::SecurityHub)
    } else if product.ends_with(":product/prowler/prowler") {
        Some(Scanner::Prowler)
    } else {
        None
    };
    let check = match scanner {
        Some(Scanner::SecurityHub) => control_id(item),
        Some(Scanner::Prowler) => {
            str_at(item, &["GeneratorId"]).and_then(|g| g.strip_prefix("prowler-")).map(str::to_owned)
        }
        _ => None,
    };
    let outcome = outcome(item, scanner, product, id.as_deref(), check.as_deref());
    ScannerEntry { index: 0, finding_id: id, control_id: check, outcome }
}

/// The security control id of a Security Hub control finding (module docs).
fn control_id(item: &Value) -> Option<String> {
    if let Some(id) = str_at(item, &["Compliance", "SecurityControlId"]) {
        return Some(id.to_owned());
    }
    if let Some(generator) = str_at(item, &["GeneratorId"])
        && let Some((_, rest)) = generator.split_once(FSBP)
        && let Some((_version, control)) = rest.split_once('/')
        && !control.is_empty()
    {
        return Some(control.to_owned());
    }
    let standard = str_at(item, &["ProductFields", "StandardsArn"])
        .or_else(|| str_at(item, &["ProductFields", "StandardsGuideArn"]))
        .unwrap_or_default();
    if standard.contains(FSBP) {
        return str_at(item, &["ProductFields", "ControlId"]).map(str::to_owned);
    }
    None
}

fn invalid(reason: impl Into<String>) -> EntryOutcome {
    EntryOutcome::Invalid { reason: reason.into() }
}

fn outcome(
    item: &Value,
    scanner: Option<Scanner>,
    product: &str,
    id: Option<&str>,
    check: Option<&str>,
) -> EntryOutcome {
    let Some(id) = id else {
        return invalid("the ASFF finding has no `Id`");
    };
    let Some(scanner) = scanner else {
        return EntryOutcome::Unsupported {
            reason: format!(
                "finding `{id}` comes from product `{}`; the mapping table covers Security Hub controls and Prowler checks only",
                if product.is_empty() { "(no ProductArn)" } else { product }
            ),
        };
    };
    let Some(check) = check else {
        return EntryOutcome::Unsupported {
            reason: match scanner {
                Scanner::Prowler => format!("Prowler finding `{id}` has no `GeneratorId` of the form `prowler-CHECK`"),
                _ => format!(
                    "finding `{id}` has no Security Hub control id: no `Compliance.SecurityControlId`, and its standard's own control id (`{}`) is not one",
                    str_at(item, &["GeneratorId"]).unwrap_or("no GeneratorId")
                ),
            },
        };
    };
    if str_at(item, &["RecordState"]) == Some("ARCHIVED") {
        return EntryOutcome::NothingToDo { reason: format!("finding `{id}` ({check}) is archived") };
    }
    if let Some(w @ ("RESOLVED" | "SUPPRESSED")) = str_at(item, &["Workflow", "Status"]) {
        return EntryOutcome::NothingToDo { reason: format!("finding `{id}` ({check}) is {}", w.to_lowercase()) };
    }
    match str_at(item, &["Compliance", "Status"]) {
        Some("FAILED") => {}
        Some(s @ ("PASSED" | "WARNING" | "NOT_AVAILABLE")) => {
            return EntryOutcome::NothingToDo { reason: format!("`{check}` is {s} for finding `{id}`") };
        }
        Some(other) => {
            return invalid(format!(
                "finding `{id}` ({check}) has Compliance.Status `{other}`, not PASSED, WARNING, FAILED or NOT_AVAILABLE"
            ));
        }
        None => return invalid(format!("finding `{id}` ({check}) has no `Compliance.Status`")),
    }
    // Prowler's ASFF writes its severity in lowercase; ASFF documents uppercase labels.
    let label = str_at(item, &["Severity", "Label"]).map(str::to_ascii_uppercase);
    let severity = match label.as_deref() {
        Some("INFORMATIONAL" | "LOW") => Severity::Low,
        Some("MEDIUM") => Severity::Medium,
        Some("HIGH") => Severity::High,
        Some("CRITICAL") => Severity::Critical,
        Some(other) => return invalid(format!("finding `{id}` ({check}) has Severity.Label `{other}`")),
        // Before Label, ASFF had Normalized (0-100); its documented ranges.
        None => match item.pointer("/Severity/Normalized").and_then(Value::as_u64) {
            Some(0..=39) => Severity::Low,
            Some(40..=69) => Severity::Medium,
            Some(70..=89) => Severity::High,
            Some(90..=100) => Severity::Critical,
            _ => return invalid(format!("finding `{id}` ({check}) has no `Severity.Label`")),
        },
    };
    let Some(title) = str_at(item, &["Title"]) else {
        return invalid(format!("finding `{id}` ({check}) has no `Title`"));
    };
    let resources = match item.get("Resources") {
        Some(Value::Array(list)) => {
            let mut out = Vec::new();
            for r in list {
                let Some(uid) = str_at(r, &["Id"]) else {
                    return invalid(format!("finding `{id}` ({check}) has a resource without `Id`"));
                };
                let Some(kind) = str_at(r, &["Type"]) else {
                    return invalid(format!("finding `{id}` ({check}) has a resource without `Type`"));
                };
                out.push(Resource { kind: Some(kind), uid });
            }
            out
        }
        _ => return invalid(format!("finding `{id}` ({check}) has no `Resources` array")),
    };
    Failing {
        scanner,
        source: scanner.source().to_owned(),
        id: id.to_owned(),
        check: check.to_owned(),
        severity,
        title: title.to_owned(),
        description: str_at(item, &["Description"]).map(str::to_owned),
        resources,
    }
    .into_outcome()
}
