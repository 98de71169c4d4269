//! Identifier rules every target obeys, whatever its connector: no identifier may change the
//! structure of a provider request (a URL path, a filter, a DN), so values that only make sense
//! as structure are refused before any connector sees them.

use crate::Target;

/// Why a target's identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// A required identifier, or an optional one that was given, is empty.
    #[error("the target's {field} is empty; give the provider's identifier")]
    Empty {
        /// `identity`, `resource`, `grant` or `grant_type`.
        field: &'static str,
    },
    /// The value is `.` or `..`, decodes to one (`%2E%2E`, `.%2e`, `%252e%252e`), or holds one
    /// between `/` or `\` separators: in a URL path it would climb to another route.
    #[error(
        "the target's {field} {value:?} is or contains a dot segment (`.` or `..`, possibly percent-encoded), which would change the provider request's path; no provider identifier has that form"
    )]
    DotSegment {
        /// The field.
        field: &'static str,
        /// The value as given.
        value: String,
    },
    /// The value holds a control character (a newline, a NUL), which no provider identifier
    /// has and which could split a header, a log line or a filter.
    #[error("the target's {field} contains the control character U+{code:04X}; no provider identifier has one")]
    Control {
        /// The field.
        field: &'static str,
        /// The character's code point.
        code: u32,
    },
}

impl Target {
    /// Checks every identifier of the target: `identity` and `grant_type` are not empty, and
    /// no field (when present) is empty, a dot segment in any encoding, or holds a control
    /// character.
    pub fn validate(&self) -> Result<(), IdentifierError> {
        check("identity", &self.identity)?;
        check("grant_type", &self.grant_type)?;
        if let Some(resource) = &self.resource {
            check("resource", resource)?;
        }
        if let Some(grant) = &self.grant {
            check("grant", grant)?;
        }
        Ok(())
    }
}

fn check(field: &'static str, value: &str) -> Result<(), IdentifierError> {
    if value.is_empty() {
        return Err(IdentifierError::Empty { field });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(IdentifierError::Control { field, code: u32::from(c) });
    }
    if has_dot_segment(value) {
        return Err(IdentifierError::DotSegment { field, value: value.to_owned() });
    }
    Ok(())
}

/// Whether `value`, or any percent-decoding of it (a server or proxy may decode more than
/// once), is a dot segment (`.`, `..`) or holds one between `/` or `\` separators.
pub fn has_dot_segment(value: &str) -> bool {
    let mut current = value.to_owned();
    // Each decoding shortens the text; the bound only caps the work on hostile input.
    for _ in 0..8 {
        if current.split(['/', '\\']).any(|part| part == "." || part == "..") {
            return true;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    // Still decoding after eight rounds: no real identifier looks like that.
    true
}

/// Decodes `%XX` escapes; bytes that do not form UTF-8 are replaced, which can only make a
/// value look less like a dot segment, never more (a dot is ASCII).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(identity: &str, resource: Option<&str>, grant: Option<&str>) -> Target {
        Target {
            identity: identity.to_owned(),
            resource: resource.map(str::to_owned),
            grant: grant.map(str::to_owned),
            grant_type: "group_membership".to_owned(),
        }
    }

    #[track_caller]
    fn refused(t: Target, field: &str) {
        let e = t.validate().expect_err("refused");
        let named = match &e {
            IdentifierError::Empty { field } => *field,
            IdentifierError::DotSegment { field, .. } => *field,
            IdentifierError::Control { field, .. } => *field,
        };
        assert_eq!(named, field, "{e}");
    }

    #[test]
    fn dot_segments_are_refused_in_every_field_and_encoding() {
        for v in [".", "..", "%2E", "%2e", "%2E%2E", "%2e%2E", ".%2E", "%2e.", "%252e%252e", "../x", "a/../b", "..\\x"]
        {
            refused(target(v, Some("00gADMINS"), None), "identity");
            refused(target("00u1", Some(v), None), "resource");
            refused(target("00u1", Some("00g1"), Some(v)), "grant");
        }
    }

    #[test]
    fn control_characters_and_empty_values_are_refused() {
        refused(target("alice\n", None, None), "identity");
        refused(target("alice", Some("g\u{0}"), None), "resource");
        refused(target("alice", None, Some("\u{7f}")), "grant");
        refused(target("", None, None), "identity");
        refused(target("alice", Some(""), None), "resource");
        let e = target("alice\r\nx", None, None).validate().expect_err("refused");
        assert_eq!(
            e.to_string(),
            "the target's identity contains the control character U+000D; no provider identifier has one"
        );
    }

    #[test]
    fn ordinary_identifiers_pass() {
        for v in [
            "00u1abc",
            "alice@example.com",
            "...",
            "a..b",
            ".hidden",
            "octo-org/hello-world",
            "uid=alice,ou=people,dc=example,dc=org",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "100%",
            "Zoë",
        ] {
            target(v, Some(v), Some(v)).validate().expect(v);
        }
    }
}
