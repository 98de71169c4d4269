//! The compliance report as one CSV file (RFC 4180): one row per event, the report's section
//! in the first column. Cells a spreadsheet would run as a formula are defused.

use std::fmt::Write as _;

use super::{ComplianceReport, rfc3339};

/// The header row, in order.
pub const CSV_COLUMNS: [&str; 15] = [
    "section",
    "seq",
    "at",
    "action_id",
    "control",
    "kind",
    "event",
    "actor",
    "requester",
    "approver",
    "outcome",
    "reason",
    "before",
    "after",
    "detail",
];

/// One row, by column name; absent cells are empty.
#[derive(Default)]
struct Row {
    section: &'static str,
    seq: Option<u64>,
    at: Option<time::OffsetDateTime>,
    action_id: Option<String>,
    control: Option<String>,
    kind: Option<String>,
    event: Option<String>,
    actor: Option<String>,
    requester: Option<String>,
    approver: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    before: Option<String>,
    after: Option<String>,
    detail: Option<String>,
}

impl Row {
    fn cells(self) -> [String; 15] {
        let s = |v: Option<String>| v.unwrap_or_default();
        [
            self.section.to_owned(),
            self.seq.map(|n| n.to_string()).unwrap_or_default(),
            self.at.map(rfc3339).unwrap_or_default(),
            s(self.action_id),
            s(self.control),
            s(self.kind),
            s(self.event),
            s(self.actor),
            s(self.requester),
            s(self.approver),
            s(self.outcome),
            s(self.reason),
            s(self.before),
            s(self.after),
            s(self.detail),
        ]
    }
}

/// The report as CSV: a header, then the rows of sections 1 to 7 in order (section 1 one row
/// per action reaching an outcome; section 7 one row, `audit`). Lines end with CRLF.
pub fn to_csv(report: &ComplianceReport) -> String {
    let mut rows: Vec<Row> = Vec::new();
    for o in &report.outcomes {
        rows.push(Row {
            section: "actions",
            seq: Some(o.seq),
            at: Some(o.at),
            action_id: Some(o.action_id.to_string()),
            control: o.control.clone(),
            kind: Some(o.kind.clone()),
            event: Some(o.outcome.clone()),
            actor: Some(o.actor.clone()),
            outcome: Some(o.outcome.clone()),
            reason: o.comment.clone(),
            ..Row::default()
        });
    }
    for a in &report.approvals {
        rows.push(Row {
            section: "approvals",
            seq: Some(a.seq),
            at: Some(a.at),
            action_id: Some(a.action_id.to_string()),
            control: a.control.clone(),
            kind: Some(a.kind.clone()),
            event: Some("approve".to_owned()),
            actor: Some(a.approver.clone()),
            requester: Some(a.requester.clone()),
            approver: Some(a.approver.clone()),
            outcome: Some(if a.quorum_reached { "quorum_reached" } else { "short_of_quorum" }.to_owned()),
            detail: Some(format!(
                "separate={} distinct_approvers={} min_approvals={}",
                a.separate,
                a.distinct_approvers,
                a.min_approvals.map_or_else(|| "not recorded".to_owned(), |m| m.to_string())
            )),
            ..Row::default()
        });
    }
    for r in &report.rollbacks {
        rows.push(Row {
            section: "rollbacks",
            seq: Some(r.seq),
            at: Some(r.at),
            action_id: Some(r.action_id.to_string()),
            control: r.control.clone(),
            kind: Some(r.kind.clone()),
            event: Some("rollback".to_owned()),
            actor: Some(r.requested_by.clone()),
            requester: Some(r.requested_by.clone()),
            approver: r.approved_by.clone(),
            outcome: Some(r.outcome.clone()),
            reason: r.reason.clone(),
            ..Row::default()
        });
    }
    for r in &report.refusals {
        rows.push(Row {
            section: "refusals",
            seq: Some(r.seq),
            at: Some(r.at),
            action_id: r.action_id.map(|id| id.to_string()),
            event: Some(r.event.clone()),
            actor: Some(r.actor.clone()),
            outcome: Some("refused".to_owned()),
            reason: r.reason.clone(),
            ..Row::default()
        });
    }
    for o in &report.overrides {
        rows.push(Row {
            section: "overrides",
            seq: Some(o.seq),
            at: Some(o.at),
            action_id: o.action_id.map(|id| id.to_string()),
            event: Some(o.event.clone()),
            actor: Some(o.actor.clone()),
            reason: o.reason.clone(),
            ..Row::default()
        });
    }
    for c in &report.settings_changes {
        rows.push(Row {
            section: "settings",
            seq: Some(c.seq),
            at: Some(c.at),
            event: Some(c.event.clone()),
            actor: Some(c.actor.clone()),
            reason: c.reason.clone(),
            before: Some(c.before.to_string()),
            after: Some(c.after.to_string()),
            ..Row::default()
        });
    }
    let a = &report.audit;
    rows.push(Row {
        section: "audit",
        seq: a.head.as_ref().map(|h| h.seq),
        at: Some(report.to),
        event: Some(a.scope.clone()),
        outcome: Some(if a.chain_verified { "chain_verified" } else { "chain_not_verified" }.to_owned()),
        reason: a.problem.clone(),
        after: a.head.as_ref().and_then(|h| h.hash.clone()),
        detail: Some(format!(
            "records_checked={}; {}; {}; signed_tree_head={}",
            a.records_checked,
            a.checkpoint,
            a.tree_head_verdict,
            a.signed_tree_head
                .as_ref()
                .map_or_else(|| "none".to_owned(), |h| format!("{} records, root {}", h.tree_size, h.root_hash))
        )),
        ..Row::default()
    });

    let mut out = String::new();
    line(&mut out, CSV_COLUMNS.iter().map(|c| (*c).to_owned()));
    for row in rows {
        line(&mut out, row.cells());
    }
    out
}

fn line(out: &mut String, cells: impl IntoIterator<Item = String>) {
    let cells: Vec<String> = cells.into_iter().map(|c| cell(&c)).collect();
    let _ = write!(out, "{}\r\n", cells.join(","));
}

/// One cell: a leading `=`, `+`, `-`, `@` (or tab, carriage return) gets a `'` so a
/// spreadsheet shows it as text instead of running it, then RFC 4180 quoting when the cell
/// holds a comma, a quote or a line break.
pub(crate) fn cell(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{raw}") } else { raw.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) { format!("\"{}\"", defused.replace('"', "\"\"")) } else { defused }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[track_caller]
    fn check(raw: &str, expected: &str) {
        assert_eq!(cell(raw), expected, "{raw:?}");
    }

    #[test]
    fn cells_are_quoted_and_defused() {
        check("plain", "plain");
        check("", "");
        check("a,b", "\"a,b\"");
        check("say \"hi\"", "\"say \"\"hi\"\"\"");
        check("two\nlines", "\"two\nlines\"");
        check("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\"");
        check("+1", "'+1");
        check("-2+3", "'-2+3");
        check("@SUM(A1)", "'@SUM(A1)");
        check("\tx", "'\tx");
        check("a=b", "a=b");
    }
}
