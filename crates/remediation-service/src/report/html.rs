//! The compliance report as one self-contained HTML page: inline CSS with print styles, no
//! script and no external resource, every section present (an empty one says "None in this
//! period"), every string from the log HTML-escaped.

use std::fmt::Write as _;

use super::{ComplianceReport, rfc3339};

/// The heading of each section, in order; each appears in the page exactly once.
pub const SECTION_HEADINGS: [&str; 7] = [
    "1. Actions by control, kind and outcome",
    "2. Approvals and separation of duties",
    "3. Rollbacks",
    "4. Refused attempts",
    "5. Force-executions and overrides",
    "6. Kill switch and settings changes",
    "7. Audit status",
];

const NONE: &str = "None in this period";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#111}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #999}\
table{border-collapse:collapse;width:100%;font-size:.85rem}\
th,td{border:1px solid #bbb;padding:.25rem .4rem;text-align:left;vertical-align:top}\
th{background:#eee}td.num{text-align:right}code{font-size:.8rem;word-break:break-all}\
.none{font-style:italic;color:#555}.bad{color:#a00;font-weight:bold}.good{color:#060;font-weight:bold}\
@media print{body{margin:0;font-size:10pt}h2{page-break-after:avoid}tr{page-break-inside:avoid}\
th{background:#eee;-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/// Escapes `s` for HTML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table with `headers` and `rows` (each cell escaped here), or "None in this period".
fn table(out: &mut String, headers: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        let _ = writeln!(out, "<p class=\"none\">{NONE}</p>");
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            let _ = write!(out, "<td>{}</td>", escape(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn opt(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "—".to_owned())
}

/// The report as an HTML page.
pub fn to_html(report: &ComplianceReport) -> String {
    let (from, to) = (rfc3339(report.from), rfc3339(report.to));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>Compliance report {} to {}</title><style>{STYLE}</style></head><body>\n\
<h1>Compliance report</h1>\n<p>Period: from <strong>{}</strong> (included) to <strong>{}</strong> (excluded). \
Generated {}. {} audit records in the period.</p>\n",
        escape(&from),
        escape(&to),
        escape(&from),
        escape(&to),
        escape(&rfc3339(report.generated_at)),
        report.records
    );

    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[0]);
    table(
        &mut out,
        &["Control", "Kind", "Outcome", "Count"],
        report
            .actions
            .iter()
            .map(|c| vec![opt(c.control.as_ref()), c.kind.clone(), c.outcome.clone(), c.count.to_string()])
            .collect(),
    );

    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[1]);
    table(
        &mut out,
        &[
            "Seq",
            "When",
            "Action",
            "Control",
            "Kind",
            "Requester",
            "Approver",
            "Requester ≠ approver",
            "Distinct approvers",
            "Policy minimum",
            "Quorum",
        ],
        report
            .approvals
            .iter()
            .map(|a| {
                vec![
                    a.seq.to_string(),
                    rfc3339(a.at),
                    a.action_id.to_string(),
                    opt(a.control.as_ref()),
                    a.kind.clone(),
                    a.requester.clone(),
                    a.approver.clone(),
                    if a.separate { "yes" } else { "NO" }.to_owned(),
                    a.distinct_approvers.to_string(),
                    a.min_approvals.map_or_else(|| "not recorded".to_owned(), |m| m.to_string()),
                    if a.quorum_reached { "reached" } else { "not yet" }.to_owned(),
                ]
            })
            .collect(),
    );

    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[2]);
    table(
        &mut out,
        &["Seq", "When", "Action", "Control", "Kind", "Asked by", "Approved by", "Outcome", "Reason"],
        report
            .rollbacks
            .iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    rfc3339(r.at),
                    r.action_id.to_string(),
                    opt(r.control.as_ref()),
                    r.kind.clone(),
                    r.requested_by.clone(),
                    opt(r.approved_by.as_ref()),
                    r.outcome.clone(),
                    opt(r.reason.as_ref()),
                ]
            })
            .collect(),
    );

    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[3]);
    table(
        &mut out,
        &["Seq", "When", "What", "Actor", "Action", "Reason"],
        report
            .refusals
            .iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    rfc3339(r.at),
                    r.event.clone(),
                    r.actor.clone(),
                    r.action_id.map_or_else(|| "—".to_owned(), |id| id.to_string()),
                    opt(r.reason.as_ref()),
                ]
            })
            .collect(),
    );

    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[4]);
    table(
        &mut out,
        &["Seq", "When", "What", "Actor", "Action", "Reason"],
        report
            .overrides
            .iter()
            .map(|o| {
                vec![
                    o.seq.to_string(),
                    rfc3339(o.at),
                    o.event.clone(),
                    o.actor.clone(),
                    o.action_id.map_or_else(|| "—".to_owned(), |id| id.to_string()),
                    opt(o.reason.as_ref()),
                ]
            })
            .collect(),
    );

    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[5]);
    table(
        &mut out,
        &["Seq", "When", "What", "Actor", "Reason", "Before", "After"],
        report
            .settings_changes
            .iter()
            .map(|c| {
                vec![
                    c.seq.to_string(),
                    rfc3339(c.at),
                    c.event.clone(),
                    c.actor.clone(),
                    opt(c.reason.as_ref()),
                    c.before.to_string(),
                    c.after.to_string(),
                ]
            })
            .collect(),
    );

    let a = &report.audit;
    let _ = writeln!(out, "<h2>{}</h2>", SECTION_HEADINGS[6]);
    let verdict = if a.chain_verified {
        "<span class=\"good\">Chain verified</span>"
    } else {
        "<span class=\"bad\">Chain NOT verified</span>"
    };
    let _ = writeln!(out, "<p>{verdict} (scope: {}; {} records checked).</p>", escape(&a.scope), a.records_checked);
    let mut rows = vec![
        vec!["Problem".to_owned(), opt(a.problem.as_ref())],
        vec!["Checkpoint".to_owned(), a.checkpoint.clone()],
        vec!["Signed tree head verdict".to_owned(), a.tree_head_verdict.clone()],
    ];
    match &a.head {
        Some(h) => rows.push(vec![
            "Head at the end of the period".to_owned(),
            format!("seq {}, hash {}", h.seq, h.hash.as_deref().unwrap_or("(archived)")),
        ]),
        None => rows.push(vec!["Head at the end of the period".to_owned(), "the log was empty".to_owned()]),
    }
    match &a.signed_tree_head {
        Some(h) => rows.push(vec![
            "Signed tree head".to_owned(),
            format!(
                "{} records, root {}, signed {} with key {}{}",
                h.tree_size,
                h.root_hash,
                rfc3339(h.timestamp),
                h.key_id,
                if h.covers_period { "; covers the period" } else { "; does not cover the whole period yet" }
            ),
        ]),
        None => rows.push(vec!["Signed tree head".to_owned(), "none".to_owned()]),
    }
    table(&mut out, &["Check", "Result"], rows);
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn every_special_character_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
