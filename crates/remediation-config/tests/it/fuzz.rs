//! Fuzzing the loader: whatever the file holds, `Config::load` returns a configuration or an
//! error that names the file (and a line inside it, when it gives one); it never panics.
//!
//! 256 cases per property by default; `PROPTEST_CASES=2000 cargo test -p remediation-config fuzz`
//! runs a longer pass (CI does).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use remediation_config::{Config, initial_config};

/// A temporary configuration file for one case.
struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remediation.toml");
        Self { _dir: dir, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Loads `bytes` from a file and checks the outcome's contract.
fn check(scratch: &Scratch, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = scratch.path();
    std::fs::write(path, bytes).expect("write the config file");
    let Err(e) = Config::load(path) else { return Ok(()) };
    let shown = e.to_string();
    prop_assert_eq!(&e.path, path);
    prop_assert!(shown.contains(&path.display().to_string()), "the error does not name the file: {}", shown);
    prop_assert!(!e.message.trim().is_empty(), "the error says nothing: {}", shown);
    if let Some(line) = e.line {
        // A line inside the file (or just past its last line, for an error at the very end).
        let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
        prop_assert!((1..=lines).contains(&line), "line {} is outside the file's {} lines: {}", line, lines, shown);
        prop_assert!(shown.contains(&format!("line {line}")), "{}", shown);
    }
    if let Some(key) = &e.key {
        prop_assert!(!key.trim().is_empty(), "an empty key is named: {}", shown);
    }
    Ok(())
}

/// Keys the configuration has, and a few it does not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "enabled", "default_mode", "min_approvals", "rollback_window_secs", "kinds", "controls",
            "mode", "reason", "never_auto", "per_connector", "per_identity", "per_resource", "global",
            "max", "window_secs", "default_role", "roles", "type", "id", "path", "data_dir",
            "\"local:alice\"", "enabeld",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_.\"]{1,12}",
        1 => any::<String>(),
    ]
}

/// Values of the right and of the wrong types, well and badly written.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "true",
            "false",
            "\"manual\"",
            "\"auto\"",
            "\"advisory\"",
            "\"sandbox\"",
            "\"approver\"",
            "\"admin\"",
            "\"system\"",
            "\"sandbox.json\"",
            "{ max = 5, window_secs = 3600 }",
            "{ max = -1, window_secs = 0 }",
            "{ \"local:bob\" = \"approver\" }",
            "[]",
            "[1, \"a\"]",
            "\"unterminated",
            "{ max = 5",
            "1979-05-27T07:32:00Z",
            "inf",
            "nan",
            "0x1F",
            "1_000",
            "\"\\u00e9\"",
            "\"\\q\"",
            "'''multi\nline'''",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| format!("{s:?}")),
        any::<String>(),
    ]
}

/// Lines that look like TOML, mixed with arbitrary ones.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => prop::sample::select(vec![
            "[policy]", "[limits]", "[actors]", "[[connectors]]", "[policy.kinds.revoke]",
            "[policy.controls.\"CIS-1.2\"]", "[policy.kinds.explode]", "[unknown]", "[[policy]]",
            "[policy", "", "# comment", "   ",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// The file `init` writes with one edit: a deletion, an insertion, or a replacement.
fn mutated_initial() -> impl Strategy<Value = String> {
    let base = initial_config("local:alice");
    let chars = base.chars().count();
    (0..=chars, 0..=chars, any::<String>(), any::<bool>()).prop_map(move |(a, b, insert, keep_range)| {
        let (start, end) = (a.min(b), a.max(b));
        let mut out: String = base.chars().take(start).collect();
        if keep_range {
            out.extend(base.chars().skip(start).take(end - start));
        }
        out.push_str(&insert);
        out.extend(base.chars().skip(end));
        out
    })
}

proptest! {
    #[test]
    fn fuzz_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let scratch = Scratch::new();
        check(&scratch, &bytes)?;
    }

    #[test]
    fn fuzz_arbitrary_text(text in any::<String>()) {
        let scratch = Scratch::new();
        check(&scratch, text.as_bytes())?;
    }

    #[test]
    fn fuzz_toml_like_lines(lines in prop::collection::vec(line(), 0..24)) {
        let scratch = Scratch::new();
        check(&scratch, lines.join("\n").as_bytes())?;
    }

    #[test]
    fn fuzz_edits_of_the_initial_config(text in mutated_initial()) {
        let scratch = Scratch::new();
        check(&scratch, text.as_bytes())?;
    }
}

#[test]
fn the_initial_config_loads() {
    let scratch = Scratch::new();
    std::fs::write(scratch.path(), initial_config("local:alice")).expect("write");
    let config = Config::load(scratch.path()).expect("the file init writes loads");
    assert!(!config.policy.enabled);
}
