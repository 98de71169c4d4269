//! What a notification says: the Slack message and the generic webhook body, built from the
//! action alone.

use remediation_core::Action;
use serde_json::{Value, json};

use crate::http::cut;

/// Escapes the three characters Slack's `mrkdwn` gives meaning to, so user text cannot ping
/// `<!channel>` or forge a link.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The plain-language subject: "`alice` in `admins`" or "`alice`".
fn subject(action: &Action) -> String {
    let t = &action.target;
    match &t.resource {
        Some(r) => format!("{} in {}", t.identity, r),
        None => t.identity.clone(),
    }
}

/// One line saying what was found and what is asked: the plain-text fallback of a Slack
/// message and the `text` of a webhook body.
pub(crate) fn headline(action: &Action) -> String {
    format!(
        "Remediation notice about {}: {} Please review this access. Action {} requested by {}.",
        subject(action),
        sentence(&action.reason),
        action.id,
        action.requested_by
    )
}

fn sentence(reason: &str) -> String {
    let reason = cut(reason.trim(), 1000);
    if reason.ends_with(['.', '!', '?']) { reason } else { format!("{reason}.") }
}

/// The Slack incoming-webhook payload: `text` (the fallback shown in notifications) and
/// Block Kit `blocks` (a header, the finding, the facts as fields, the ask, the action id).
pub(crate) fn slack(action: &Action) -> Value {
    let t = &action.target;
    let mut fields = vec![field("Identity", &t.identity)];
    if let Some(r) = &t.resource {
        fields.push(field("Resource", r));
    }
    if let Some(g) = &t.grant {
        fields.push(field("Grant", g));
    }
    if let Some(c) = &action.control_id {
        fields.push(field("Control", c));
    }
    if let Some(f) = &action.finding_id {
        fields.push(field("Finding", f));
    }
    fields.push(field("Requested by", &action.requested_by));
    json!({
        "text": esc(&headline(action)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&format!("Remediation notice: {}", subject(action)), 140)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Found:* {}", esc(&cut(action.reason.trim(), 2800)))}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!(
                "*Asked:* please review this access and confirm it or have it removed. Reply to {} or act on action `{}`.",
                esc(&action.requested_by), action.id
            )}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("action {} · {}", action.id, esc(&t.grant_type))}]}
        ]
    })
}

fn field(name: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", esc(&cut(value, 1900)))})
}

/// The generic webhook body: `{action, target, reason, idempotency_key, text}`.
pub(crate) fn webhook(action: &Action) -> Value {
    json!({
        "action": {
            "id": action.id,
            "kind": action.kind,
            "connector": action.connector,
            "control_id": action.control_id,
            "finding_id": action.finding_id,
            "requested_by": action.requested_by,
        },
        "target": action.target,
        "reason": action.reason,
        "idempotency_key": action.idempotency_key,
        "text": headline(action),
    })
}
