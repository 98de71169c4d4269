//! The one decision every test that needs a real server makes (PostgreSQL, slapd, moto,
//! Chromium, Python): run against what its variable names, skip with a printed reason on a
//! developer's machine, or fail under CI, where a missing variable means a broken setup
//! script and a test that would otherwise pass without having run.
//!
//! ```
//! use remediation_testkit::real_server::{Decision, decide};
//!
//! let hint = "run .ci/setup-slapd.sh";
//! assert_eq!(decide("REMEDIATION_TEST_SLAPD", Some("/usr/sbin/slapd"), None, hint), Decision::Use("/usr/sbin/slapd".into()));
//! assert!(matches!(decide("REMEDIATION_TEST_SLAPD", None, None, hint), Decision::Skip(_)));
//! assert!(matches!(decide("REMEDIATION_TEST_SLAPD", None, Some("true"), hint), Decision::Fail(_)));
//! ```

/// What a test that needs a real server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run against this value (an address, a connection string, a program).
    Use(String),
    /// Skip the test after printing this reason (outside CI only).
    Skip(String),
    /// Fail the test with this message: CI must provide every real server.
    Fail(String),
}

/// Whether the `CI` variable's value says the tests run under CI (`true` or `1`, as CI
/// services set it).
pub fn is_ci(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Decides from the values alone (no process environment, so it can be tested with `CI` set
/// and unset): `value` is what `var` holds (an empty value counts as unset), `ci` what `CI`
/// holds, `hint` how to provide the server.
pub fn decide(var: &str, value: Option<&str>, ci: Option<&str>, hint: &str) -> Decision {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Decision::Use(v.to_owned()),
        None if is_ci(ci) => Decision::Fail(format!(
            "{var} is not set but CI is: a test that needs a real server must run under CI ({hint})"
        )),
        None => Decision::Skip(format!("{var} is not set ({hint})")),
    }
}

/// Reads `var` and `CI` from the environment and acts on [`decide`]: the value to use, or
/// `None` after printing why `test` skips.
///
/// # Panics
///
/// Under CI when `var` is unset: the test fails rather than passing without having run.
pub fn require(test: &str, var: &str, hint: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    require_value(test, var, value.as_deref(), hint)
}

/// Like [`require`] for a value the caller found itself (such as a program discovered on
/// `PATH` when `var` is unset); `CI` still comes from the environment.
///
/// # Panics
///
/// Under CI when `value` is `None`.
pub fn require_value(test: &str, var: &str, value: Option<&str>, hint: &str) -> Option<String> {
    let ci = std::env::var("CI").ok();
    match decide(var, value, ci.as_deref(), hint) {
        Decision::Use(v) => Some(v),
        Decision::Skip(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
        Decision::Fail(message) => panic!("{test}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(value: Option<&str>, ci: Option<&str>, expected: &str) {
        let got = match decide("REMEDIATION_TEST_X", value, ci, "run .ci/setup-x.sh") {
            Decision::Use(v) => format!("use {v}"),
            Decision::Skip(r) => format!("skip: {r}"),
            Decision::Fail(m) => format!("fail: {m}"),
        };
        assert!(got.starts_with(expected), "{value:?} with CI={ci:?}: {got}");
    }

    #[test]
    fn a_missing_server_skips_locally_and_fails_under_ci() {
        check(Some("host=127.0.0.1"), None, "use host=127.0.0.1");
        check(Some("host=127.0.0.1"), Some("true"), "use host=127.0.0.1");
        check(Some(" /usr/sbin/slapd \n"), Some("true"), "use /usr/sbin/slapd");
        check(None, None, "skip: REMEDIATION_TEST_X is not set (run .ci/setup-x.sh)");
        check(Some(""), None, "skip:");
        check(Some("  "), Some("false"), "skip:");
        check(None, Some("false"), "skip:");
        check(None, Some("0"), "skip:");
        check(None, Some(""), "skip:");
        check(None, Some("true"), "fail: REMEDIATION_TEST_X is not set but CI is");
        check(None, Some("TRUE"), "fail:");
        check(None, Some("1"), "fail:");
        check(Some(""), Some("true"), "fail:");
    }
}
