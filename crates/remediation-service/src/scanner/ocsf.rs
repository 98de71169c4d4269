//! OCSF 1.x findings, Prowler's `json-ocsf` among them.
//!
//! Detection Finding (`class_uid` 2004) keeps its finding in `finding_info`; the older Security
//! Finding (2001) in `finding`. The check is `metadata.event_code` (OCSF: "the Event ID, Code,
//! or Name that the product uses to primarily identify the event"), or else the analytic that
//! generated the finding (`finding_info.analytic.uid`, a recommended attribute; Prowler 5 sets
//! both to the check id); when both are there they must agree. The source is `prowler` for
//! Prowler, else `metadata.product.name`. Prowler's `status_code` (`FAIL`, `PASS`, `MANUAL`)
//! decides whether there is anything to do; for other products a `status_id` of Suppressed (3),
//! Resolved (4) or Archived (5), or a `status_code` of `PASS` or `MANUAL`, means nothing to do.
//! Only Prowler's checks are in the mapping table; another product's checks are unsupported.

use remediation_core::Severity;
use serde_json::Value;

use super::mapping::Scanner;
use super::{EntryOutcome, Failing, Resource, ScannerEntry, str_at};

pub(super) fn read(item: &Value) -> ScannerEntry {
    let class = item.get("class_uid").and_then(Value::as_u64);
    let info_key = match class {
        Some(2004) => "finding_info",
        Some(2001) => "finding",
        _ => {
            return entry(
                None,
                None,
                EntryOutcome::Unsupported {
                    reason: format!(
                        "OCSF class_uid {} is not a finding class read here (2004 Detection Finding, 2001 Security Finding)",
                        item.get("class_uid").map_or_else(|| "?".to_owned(), Value::to_string)
                    ),
                },
            );
        }
    };
    let finding_id = str_at(item, &[info_key, "uid"]).map(str::to_owned);
    let code = str_at(item, &["metadata", "event_code"]);
    let analytic = str_at(item, &[info_key, "analytic", "uid"]);
    let check = code.or(analytic).map(str::to_owned);
    if let (Some(code), Some(analytic)) = (code, analytic)
        && code != analytic
    {
        let reason = format!(
            "OCSF finding `{}` names two checks, `metadata.event_code` `{code}` and `{info_key}.analytic.uid` `{analytic}`; which one is meant is not guessed",
            finding_id.as_deref().unwrap_or("?")
        );
        return entry(finding_id, check, invalid(reason));
    }
    let outcome = outcome(item, info_key, finding_id.as_deref(), check.as_deref());
    entry(finding_id, check, outcome)
}

fn entry(finding_id: Option<String>, control_id: Option<String>, outcome: EntryOutcome) -> ScannerEntry {
    ScannerEntry { index: 0, finding_id, control_id, outcome }
}

fn invalid(reason: impl Into<String>) -> EntryOutcome {
    EntryOutcome::Invalid { reason: reason.into() }
}

fn outcome(item: &Value, info_key: &str, id: Option<&str>, check: Option<&str>) -> EntryOutcome {
    let Some(id) = id else {
        return invalid(format!("the OCSF finding has no `{info_key}.uid`"));
    };
    let Some(product) = str_at(item, &["metadata", "product", "name"]) else {
        return invalid(format!("OCSF finding `{id}` names no product (`metadata.product.name`)"));
    };
    let prowler = product == "Prowler";
    let Some(check) = check else {
        return invalid(format!(
            "{product} finding `{id}` names no check (`metadata.event_code` or `{info_key}.analytic.uid`)"
        ));
    };
    let status_code = str_at(item, &["status_code"]);
    if prowler {
        match status_code {
            Some("FAIL") => {}
            Some("PASS") => return nothing(format!("Prowler reports `{check}` as PASS")),
            Some("MANUAL") => {
                return nothing(format!("Prowler reports `{check}` as MANUAL: a person checks it, nothing is changed"));
            }
            Some(other) => {
                return invalid(format!(
                    "Prowler finding `{id}` ({check}) has status_code `{other}`, not FAIL, PASS or MANUAL"
                ));
            }
            None => return invalid(format!("Prowler finding `{id}` ({check}) has no `status_code`")),
        }
    } else if let Some(code @ ("PASS" | "MANUAL")) = status_code {
        return nothing(format!("{product} reports `{check}` as {code}"));
    }
    match item.get("status_id").and_then(Value::as_u64) {
        Some(3) => return nothing(format!("{product} finding `{id}` ({check}) is suppressed")),
        Some(4) => return nothing(format!("{product} finding `{id}` ({check}) is resolved")),
        Some(5) => return nothing(format!("{product} finding `{id}` ({check}) is archived")),
        _ => {}
    }
    if !prowler {
        return EntryOutcome::Unsupported {
            reason: format!(
                "check `{check}` of product `{product}`: the mapping table covers Prowler and AWS Security Hub checks only"
            ),
        };
    }
    let severity = match item.get("severity_id").and_then(Value::as_u64) {
        Some(1 | 2) => Severity::Low,
        Some(3) => Severity::Medium,
        Some(4) => Severity::High,
        Some(5 | 6) => Severity::Critical,
        other => {
            return invalid(format!(
                "{product} finding `{id}` ({check}) has severity_id {}, which is not Informational to Fatal (1-6)",
                other.map_or_else(|| "missing".to_owned(), |n| n.to_string())
            ));
        }
    };
    let Some(title) = str_at(item, &[info_key, "title"]).or_else(|| str_at(item, &["message"])) else {
        return invalid(format!("{product} finding `{id}` ({check}) has no `{info_key}.title` or `message`"));
    };
    let description = str_at(item, &["status_detail"])
        .or_else(|| str_at(item, &["message"]))
        .or_else(|| str_at(item, &[info_key, "desc"]))
        .map(str::to_owned);
    let resources = match item.get("resources") {
        Some(Value::Array(list)) => {
            let mut out = Vec::new();
            for r in list {
                let Some(uid) = str_at(r, &["uid"]) else {
                    return invalid(format!("{product} finding `{id}` ({check}) has a resource without `uid`"));
                };
                out.push(Resource { kind: str_at(r, &["type"]), uid });
            }
            out
        }
        None => Vec::new(),
        Some(_) => return invalid(format!("{product} finding `{id}` ({check}): `resources` is not an array")),
    };
    Failing {
        scanner: Scanner::Prowler,
        source: Scanner::Prowler.source().to_owned(),
        id: id.to_owned(),
        check: check.to_owned(),
        severity,
        title: title.to_owned(),
        description,
        resources,
    }
    .into_outcome()
}

fn nothing(reason: String) -> EntryOutcome {
    EntryOutcome::NothingToDo { reason }
}
