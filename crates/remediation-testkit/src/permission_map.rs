//! Checks that keep a connector's permission map honest: every call its golden fixtures
//! record has an entry, every capability has its calls, and the README lists the map.
//!
//! A connector's tests call [`uncovered_calls`], [`capabilities_without_calls`] and
//! [`readme_drift`] and assert each is empty, so a call added without a permission entry,
//! or an entry the README does not show, fails the build.

use std::path::Path;

use remediation_core::{ANY_GRANT_TYPE, Capability, PermissionNeed, Reversibility, Step, permission_table};
use serde_json::Value;

/// Whether `call` (`METHOD /a/{x}/b`, `{…}` matching one path segment) covers `method path`.
pub fn call_matches(call: &str, method: &str, path: &str) -> bool {
    let Some((call_method, call_path)) = call.split_once(' ') else {
        return false;
    };
    if !call_method.eq_ignore_ascii_case(method) {
        return false;
    }
    let want: Vec<&str> = call_path.trim_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_matches('/').split('/').collect();
    want.len() == got.len()
        && want.iter().zip(&got).all(|(w, g)| (w.starts_with('{') && w.ends_with('}') && !g.is_empty()) || w == g)
}

/// Every `METHOD path` recorded in the golden fixtures (`*.json`) of `dir` that no entry of
/// `map` covers. `prefix` is removed from each path first (`/v1.0`, `/api/v1`); `exempt`
/// lists calls that need no permission of the connector's credentials (token requests).
pub fn uncovered_calls(dir: impl AsRef<Path>, prefix: &str, map: &[PermissionNeed], exempt: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.as_ref())
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
        let requests: Value =
            std::fs::read_to_string(file).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        for r in requests.as_array().into_iter().flatten() {
            let method = r["method"].as_str().unwrap_or_default();
            let full = r["path"].as_str().unwrap_or_default();
            let path = full.strip_prefix(prefix).unwrap_or(full);
            let covered =
                map.iter().map(|n| n.call).chain(exempt.iter().copied()).any(|c| call_matches(c, method, path));
            let name = format!("{method} {path} ({})", file.file_name().unwrap_or_default().to_string_lossy());
            if !covered && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// Each capability the map does not describe: its grant type is never read, its kind never
/// executed, or (unless irreversible) never rolled back.
pub fn capabilities_without_calls(capabilities: &[Capability], map: &[PermissionNeed]) -> Vec<String> {
    let has = |step: Step, c: &Capability| {
        map.iter().any(|n| {
            n.step == step
                && (n.grant_type == c.grant_type || n.grant_type == ANY_GRANT_TYPE)
                && (step == Step::Read || n.kind.is_none_or(|k| k == c.kind))
        })
    };
    let mut out = Vec::new();
    for c in capabilities {
        for step in [Step::Read, Step::Execute, Step::Rollback] {
            let needed = match step {
                Step::Read => c.observable,
                Step::Rollback => c.reversibility != Reversibility::Irreversible,
                _ => true,
            };
            if needed && !has(step, c) {
                out.push(format!("{step} of {} {}", c.kind, c.grant_type));
            }
        }
    }
    out
}

/// `None` when the README at `readme` holds `map`'s table ([`permission_table`]) between
/// `<!-- permissions:{name} -->` and `<!-- /permissions:{name} -->`; otherwise what to write
/// there.
pub fn readme_drift(readme: impl AsRef<Path>, name: &str, map: &[PermissionNeed]) -> Option<String> {
    let text = std::fs::read_to_string(readme.as_ref()).unwrap_or_default();
    let (open, close) = (format!("<!-- permissions:{name} -->\n"), format!("<!-- /permissions:{name} -->"));
    let table = permission_table(map);
    let found = text.split_once(&open).and_then(|(_, rest)| rest.split_once(&close)).map(|(inside, _)| inside == table);
    match found {
        Some(true) => None,
        _ => Some(format!("{open}{table}{close}")),
    }
}

/// Asserts every check of this module for one connector: the calls its golden fixtures record
/// (under `tests/golden`, paths without `prefix`, `exempt` calls aside) have entries, its
/// capabilities have their calls, and the README's `name` section lists the map.
#[track_caller]
pub fn assert_map_is_complete(
    manifest_dir: &str,
    name: &str,
    prefix: &str,
    map: &[PermissionNeed],
    capabilities: &[Capability],
    exempt: &[&str],
) {
    let golden = Path::new(manifest_dir).join("tests/golden");
    if golden.is_dir() {
        let uncovered = uncovered_calls(&golden, prefix, map, exempt);
        assert!(uncovered.is_empty(), "calls without a permission entry: {uncovered:#?}");
    }
    let missing = capabilities_without_calls(capabilities, map);
    assert!(missing.is_empty(), "capabilities without calls in the permission map: {missing:#?}");
    let readme = Path::new(manifest_dir).join("../../README.md");
    if let Some(block) = readme_drift(&readme, name, map) {
        panic!("README.md's `{name}` permissions differ from the permission map; write:\n{block}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_one_segment() {
        assert!(call_matches("GET /users/{id}", "GET", "/users/a11ce"));
        assert!(call_matches("DELETE /groups/{id}/members/{id}/$ref", "DELETE", "/groups/g/members/u/$ref"));
        assert!(!call_matches("GET /users/{id}", "GET", "/users/a11ce/appRoleAssignments"));
        assert!(!call_matches("GET /users/{id}", "PATCH", "/users/a11ce"));
        assert!(!call_matches("GET /users/{id}", "GET", "/users/"));
    }
}
