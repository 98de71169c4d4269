//! Request paths built from a fixed template and identifiers, every identifier encoded by one
//! encoder, so that no identifier can change which route a request reaches.
//!
//! An identifier such as `..` survives percent-encoding as `%2E%2E`, which URL parsers (the
//! `url` crate among them, as RFC 3986 asks) normalise back to a dot segment: `DELETE
//! /groups/{gid}/users/..` becomes `DELETE /groups/{gid}/`, another route. So dot segments,
//! in any encoding, are refused rather than escaped, and the client compares the URL it is
//! about to send with the template before sending.

use std::fmt;

use remediation_core::ConnectorError;
use remediation_core::identifier::has_dot_segment;

/// Why a path could not be built from its template and values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The template's `{}` placeholders and the values given differ in number (a bug in the
    /// connector, reported rather than panicking).
    #[error("path template {template} has {placeholders} placeholders but {given} values were given")]
    Arity {
        /// The template.
        template: &'static str,
        /// `{}` placeholders in the template.
        placeholders: usize,
        /// Values given.
        given: usize,
    },
    /// The template does not start with `/`, has an empty segment, or a placeholder that is
    /// not a whole segment.
    #[error("path template {template} is malformed: {reason}")]
    Template {
        /// The template.
        template: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An identifier is empty, so the path would lose a segment.
    #[error("an empty identifier cannot fill a segment of {template}")]
    Empty {
        /// The template.
        template: &'static str,
    },
    /// An identifier is `.` or `..`, or decodes to one (`%2E%2E`, `.%2e`, `%252e%252e`), or
    /// holds one between slashes; URL normalisation or the provider would turn it into a move
    /// up the path, to another route.
    #[error("identifier {value:?} is or contains a dot segment and would change the route of {template}")]
    DotSegment {
        /// The template.
        template: &'static str,
        /// The identifier as given.
        value: String,
    },
}

impl From<PathError> for ConnectorError {
    fn from(e: PathError) -> Self {
        ConnectorError::permanent(e.to_string())
    }
}

/// A request path below a provider's base URL: a fixed template whose `{}` segments are filled
/// with identifiers, each percent-encoded by the crate's one segment encoder. Build one with [`ApiPath::new`]; a path whose
/// values were refused keeps the [`PathError`] and fails when sent, before any request (as a
/// request with an invalid header does), so building requests stays infallible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    template: &'static str,
    rendered: Result<String, PathError>,
}

impl ApiPath {
    /// `template` (`/groups/{}/users/{}`) with each `{}` segment replaced, in order, by one of
    /// `values`, percent-encoded. Empty values, dot segments in any encoding, a wrong number of
    /// values and a malformed template are refused (see [`ApiPath::error`]).
    pub fn new<I, S>(template: &'static str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let rendered = render(template, values);
        Self { template, rendered }
    }

    /// A path without placeholders (`/users`, `/ServiceProviderConfig`).
    pub fn fixed(template: &'static str) -> Self {
        Self::new(template, std::iter::empty::<&str>())
    }

    /// The template the path was built from.
    pub fn template(&self) -> &'static str {
        self.template
    }

    /// The encoded path, or why it could not be built.
    pub fn as_result(&self) -> Result<&str, &PathError> {
        self.rendered.as_deref()
    }

    /// The encoded path (`/groups/00g1/users/alice@example.com`), or `None` when refused.
    pub fn as_str(&self) -> Option<&str> {
        self.rendered.as_deref().ok()
    }

    /// Why the path was refused, if it was.
    pub fn error(&self) -> Option<&PathError> {
        self.rendered.as_ref().err()
    }

    /// How many segments the path has, which is the template's number whatever the values.
    pub fn segment_count(&self) -> usize {
        self.template.split('/').count() - 1
    }
}

impl fmt::Display for ApiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rendered {
            Ok(path) => f.write_str(path),
            Err(_) => write!(f, "{} (refused)", self.template),
        }
    }
}

impl PartialEq<str> for ApiPath {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for ApiPath {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl From<&'static str> for ApiPath {
    fn from(template: &'static str) -> Self {
        Self::fixed(template)
    }
}

fn render<I, S>(template: &'static str, values: I) -> Result<String, PathError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let values: Vec<S> = values.into_iter().collect();
    let Some(rest) = template.strip_prefix('/') else {
        return Err(PathError::Template { template, reason: "it does not start with `/`" });
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let literal_ok = |p: &&str| *p == "{}" || !(p.is_empty() || p.contains(['{', '}', '?', '#', '%']) || is_dot(p));
    if !parts.iter().all(literal_ok) {
        return Err(PathError::Template {
            template,
            reason: "a segment is empty, a dot segment, or a placeholder that is not the whole segment",
        });
    }
    let placeholders = parts.iter().filter(|p| **p == "{}").count();
    if placeholders != values.len() {
        return Err(PathError::Arity { template, placeholders, given: values.len() });
    }
    let mut out = String::with_capacity(template.len() + 16 * values.len());
    let mut values = values.iter();
    for part in parts {
        out.push('/');
        if part == "{}" {
            // Counted above, so a value is always there.
            let Some(value) = values.next() else { break };
            let value = value.as_ref();
            check_value(template, value)?;
            out.push_str(&encode_segment(value));
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// Refuses values that would drop a segment or climb one, in any number of percent-encodings.
fn check_value(template: &'static str, value: &str) -> Result<(), PathError> {
    if value.is_empty() {
        return Err(PathError::Empty { template });
    }
    if has_dot_segment(value) {
        return Err(PathError::DotSegment { template, value: value.to_owned() });
    }
    Ok(())
}

fn is_dot(part: &str) -> bool {
    part == "." || part == ".."
}

/// The one encoder of path segments: everything but RFC 3986 unreserved characters, `@` and
/// `:` is percent-encoded, so a `/`, `?`, `#` or `%` in an identifier stays inside its segment.
/// Dot segments are not this function's concern: [`ApiPath`] refuses them before encoding.
pub(crate) fn encode_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks that `url`, as it is about to be sent, still has the path `path` was rendered to
/// below `base`: same text and the template's number of segments. URL normalisation (dot
/// segments, backslashes) would otherwise send the request to another route.
pub(crate) fn check_sent(base: &url::Url, path: &ApiPath, url: &url::Url) -> Result<(), ConnectorError> {
    let rendered = path.as_result().map_err(|e| ConnectorError::from(e.clone()))?;
    let base_path = base.path().trim_end_matches('/');
    let expected = format!("{base_path}{rendered}");
    let base_segments = base_path.split('/').count() - 1;
    let sent_segments = url.path_segments().map_or(0, Iterator::count);
    if url.path() != expected || sent_segments != base_segments + path.segment_count() {
        return Err(ConnectorError::permanent(format!(
            "refusing to send: the request for {} would go to {} instead of {expected}",
            path.template(),
            url.path()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(template: &'static str, values: &[&str], expected: &str) {
        let p = ApiPath::new(template, values.iter().copied());
        assert_eq!(p.as_result(), Ok(expected));
    }

    #[track_caller]
    fn dot(value: &str) {
        let p = ApiPath::new("/groups/{}/users/{}", ["00g1", value]);
        assert!(matches!(p.error(), Some(PathError::DotSegment { .. })), "{value:?} was accepted: {p:?}");
    }

    #[test]
    fn values_are_encoded_into_their_segment() {
        ok("/users/{}", &["a/b?c#d%e f"], "/users/a%2Fb%3Fc%23d%25e%20f");
        ok("/users/{}", &["alice@example.com"], "/users/alice@example.com");
        ok("/users/{}", &["..."], "/users/...");
        ok("/users/{}", &["a..b"], "/users/a..b");
        ok("/groups/{}/members/{}/$ref", &["g", "u"], "/groups/g/members/u/$ref");
        ok("/users", &[], "/users");
    }

    #[test]
    fn dot_segments_are_refused_in_every_encoding() {
        for v in [
            ".",
            "..",
            "%2E",
            "%2e",
            "%2E%2E",
            "%2e%2e",
            "%2E%2e",
            ".%2E",
            "%2e.",
            "%252e%252e",
            "../admin",
            "a/../b",
            "..\\x",
            "%2e%2e%2fadmin",
            "%25252e%25252e",
        ] {
            dot(v);
        }
    }

    #[test]
    fn empty_values_and_bad_templates_are_refused() {
        assert_eq!(ApiPath::new("/users/{}", [""]).error(), Some(&PathError::Empty { template: "/users/{}" }));
        assert!(matches!(ApiPath::new("/users/{}", ["a", "b"]).error(), Some(PathError::Arity { .. })));
        assert!(matches!(ApiPath::new("users/{}", ["a"]).error(), Some(PathError::Template { .. })));
        assert!(matches!(ApiPath::new("/users/x{}", ["a"]).error(), Some(PathError::Template { .. })));
        assert!(matches!(ApiPath::new("/users//{}", ["a"]).error(), Some(PathError::Template { .. })));
        assert!(matches!(ApiPath::fixed("/users/../groups").error(), Some(PathError::Template { .. })));
    }

    #[test]
    fn the_sent_url_is_compared_with_the_template() {
        let base = url::Url::parse("https://example.okta.com/api/v1").expect("valid");
        let path = ApiPath::new("/groups/{}/users/{}", ["00g1", "00u1"]);
        let good = url::Url::parse("https://example.okta.com/api/v1/groups/00g1/users/00u1").expect("valid");
        check_sent(&base, &path, &good).expect("valid");
        // What the url crate makes of the old encoding of `..`: the user segment is gone.
        let normalised = url::Url::parse("https://example.okta.com/api/v1/groups/00g1/users/%2E%2E").expect("valid");
        assert_eq!(normalised.path(), "/api/v1/groups/00g1/");
        let forged = ApiPath { template: "/groups/{}/users/{}", rendered: Ok("/groups/00g1/users/%2E%2E".to_owned()) };
        let err = check_sent(&base, &forged, &normalised).expect_err("refused");
        assert!(err.message.contains("refusing to send"), "{err}");
    }
}
