//! NATS subjects: the ones this crate publishes to, and the few checks it makes on subjects
//! and subject filters (`*` one token, `>` the rest) from the config.

use remediation_core::EVENT_TYPE_PREFIX;

/// The first tokens of every event subject: `remediation.events.<tenant>.<type>`.
pub const EVENTS_SUBJECT_PREFIX: &str = "remediation.events";
/// The first tokens of every audit subject: `remediation.audit.<tenant>`.
pub const AUDIT_SUBJECT_PREFIX: &str = "remediation.audit";
/// The first tokens of every findings subject the consumer reads by default.
pub const FINDINGS_SUBJECT_PREFIX: &str = "remediation.findings";
/// The first tokens of every dead-letter subject the dead-letter stream holds by default.
pub const DEAD_LETTER_SUBJECT_PREFIX: &str = "remediation.deadletter";

/// Whether `tenant` is one safe subject token: ASCII letters, digits, `_` and `-`, not empty.
pub fn is_valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty() && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The subject an event of `event_type` for `tenant` is published to:
/// `remediation.events.<tenant>.<type without "dev.remediation.">`, or `None` when the type
/// does not make a valid literal subject (an empty token, a space, a wildcard).
pub fn event_subject(tenant: &str, event_type: &str) -> Option<String> {
    let rest = event_type.strip_prefix(EVENT_TYPE_PREFIX).and_then(|r| r.strip_prefix('.')).unwrap_or(event_type);
    let subject = format!("{EVENTS_SUBJECT_PREFIX}.{tenant}.{rest}");
    is_literal_subject(&subject).then_some(subject)
}

/// The subject `tenant`'s audit records are published to: `remediation.audit.<tenant>`.
pub fn audit_subject(tenant: &str) -> String {
    format!("{AUDIT_SUBJECT_PREFIX}.{tenant}")
}

fn valid_token(token: &str) -> bool {
    !token.is_empty() && !token.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Whether `subject` is a subject one can publish to: tokens separated by `.`, none empty,
/// no whitespace, no wildcard.
pub(crate) fn is_literal_subject(subject: &str) -> bool {
    subject.split('.').all(|t| valid_token(t) && t != "*" && t != ">")
}

/// Whether `filter` is a valid subject filter: like a literal subject, but a token may be `*`,
/// and the last one may be `>`.
pub(crate) fn is_valid_filter(filter: &str) -> bool {
    let tokens: Vec<&str> = filter.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| valid_token(t) && (*t != ">" || i + 1 == tokens.len()))
}

/// Whether the filter `filter` matches every subject that `pattern` matches (`pattern` may hold
/// wildcards too: `remediation.events.acme.>` is covered by `remediation.events.>` and by
/// `remediation.*.acme.>`, not by `remediation.events.*.action.*`).
pub(crate) fn covers(filter: &str, pattern: &str) -> bool {
    let f: Vec<&str> = filter.split('.').collect();
    let p: Vec<&str> = pattern.split('.').collect();
    for (i, ft) in f.iter().enumerate() {
        match (*ft, p.get(i).copied()) {
            (">", Some(_)) => return true,
            (_, None) | (_, Some(">")) => return false,
            ("*", Some(_)) => {}
            (a, Some(b)) if a == b => {}
            _ => return false,
        }
    }
    f.len() == p.len()
}

/// Whether some subject matches both filters (so a message published to it would be caught by
/// both).
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    let mut i = 0;
    loop {
        match (a.get(i).copied(), b.get(i).copied()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (None, None) => return true,
            (None, _) | (_, None) => return false,
            (Some(x), Some(y)) if x == "*" || y == "*" || x == y => i += 1,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_tenant(tenant: &str, ok: bool) {
        assert_eq!(is_valid_tenant(tenant), ok, "{tenant:?}");
    }

    #[test]
    fn tenants_are_one_safe_token() {
        check_tenant("default", true);
        check_tenant("acme-corp_2", true);
        check_tenant("", false);
        check_tenant("a.b", false);
        check_tenant("a b", false);
        check_tenant("*", false);
        check_tenant(">", false);
        check_tenant("é", false);
    }

    #[test]
    fn event_subjects_drop_the_type_prefix() {
        assert_eq!(
            event_subject("default", "dev.remediation.action.completed").as_deref(),
            Some("remediation.events.default.action.completed")
        );
        assert_eq!(
            event_subject("t1", "dev.remediation.approval.refused").as_deref(),
            Some("remediation.events.t1.approval.refused")
        );
        assert_eq!(event_subject("t1", "com.example.x").as_deref(), Some("remediation.events.t1.com.example.x"));
        assert_eq!(event_subject("t1", "dev.remediation..x"), None);
        assert_eq!(event_subject("t1", "a b"), None);
        assert_eq!(event_subject("t1", "a.*"), None);
        assert_eq!(audit_subject("t1"), "remediation.audit.t1");
    }

    #[track_caller]
    fn check_covers(filter: &str, pattern: &str, expected: bool) {
        assert_eq!(covers(filter, pattern), expected, "{filter} covers {pattern}");
    }

    #[test]
    fn coverage_of_subjects_and_patterns() {
        check_covers("remediation.events.>", "remediation.events.acme.>", true);
        check_covers("remediation.events.>", "remediation.events.acme.action.completed", true);
        check_covers("remediation.*.acme.>", "remediation.events.acme.>", true);
        check_covers("remediation.events.acme.>", "remediation.events.>", false);
        check_covers("remediation.events.*.action.*", "remediation.events.acme.>", false);
        check_covers("remediation.audit.>", "remediation.audit.acme", true);
        check_covers("remediation.audit.*", "remediation.audit.acme", true);
        check_covers("remediation.audit.acme", "remediation.audit.acme", true);
        check_covers("remediation.audit.acme", "remediation.audit.acme.x", false);
        check_covers("remediation.audit.acme.x", "remediation.audit.acme", false);
        check_covers("remediation.findings.>", "remediation.findings", false);
        check_covers(">", "anything.at.all", true);
    }

    #[test]
    fn overlapping_filters() {
        assert!(overlaps("remediation.findings.>", "remediation.findings.x"));
        assert!(overlaps("remediation.*.x", "remediation.findings.>"));
        assert!(!overlaps("remediation.findings.>", "remediation.deadletter.findings"));
        assert!(!overlaps("remediation.findings.>", "remediation.findings"));
        assert!(overlaps("a.b", "a.b"));
        assert!(!overlaps("a.b", "a.b.c"));
    }

    #[test]
    fn filters_and_literal_subjects() {
        assert!(is_valid_filter("remediation.events.>"));
        assert!(is_valid_filter("remediation.*.x"));
        assert!(!is_valid_filter("remediation.>.x"));
        assert!(!is_valid_filter("remediation..x"));
        assert!(!is_valid_filter(""));
        assert!(is_literal_subject("remediation.deadletter.findings"));
        assert!(!is_literal_subject("remediation.deadletter.*"));
    }
}
