//! `remediate import`: many findings at once from a file or standard input, as a JSON array,
//! JSON Lines or a scanner's document; deduplicated as `suggest --finding` is; a summary with
//! the reasons of what was not taken; exit 0, 7 (some refused) or 3 (all refused).

use remediation_e2e::Env;
use serde_json::{Value, json};

fn finding(id: &str, who: &str, group: &str, connector: &str) -> Value {
    json!({
        "id": id,
        "source": "e2e",
        "control_id": "CIS-1",
        "severity": "high",
        "title": format!("{who} in {group}"),
        "target": {"identity": who, "resource": group, "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"},
        "connector": connector,
    })
}

fn jsonl(findings: &[Value]) -> String {
    findings.iter().map(Value::to_string).collect::<Vec<_>>().join("\n") + "\n"
}

#[test]
fn json_lines_from_a_file_and_from_standard_input_are_taken_in_once() {
    let env = Env::new();
    env.init_enabled();
    let lines = jsonl(&[
        finding("F-1", "alice", "engineering", "sandbox"),
        finding("F-2", "carol", "engineering", "sandbox"),
        // The same control and target again: the open action is the answer.
        finding("F-3", "alice", "engineering", "sandbox"),
    ]);
    let path = env.dir().join("findings.jsonl");
    std::fs::write(&path, &lines).expect("write findings");
    let path = path.to_str().expect("utf-8 path");
    let run = env.expect("local:alice", &["import", path], 0);
    let row = |label: &str| {
        let line = run.stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{}", run.stdout));
        line.split_whitespace().last().unwrap_or_default().to_owned()
    };
    assert_eq!((row("created"), row("already open")), ("2".to_owned(), "1".to_owned()), "{}", run.stdout);
    assert!(run.stdout.contains(": 3 of 3 finding(s) taken in (finding)."), "{}", run.stdout);
    let reply = env.expect("local:alice", &["import", path, "--output", "json"], 0).document();
    assert_eq!(reply["campaign"]["outcomes"], json!({"existing": 3}), "a second import opens nothing: {reply}");
    assert_eq!(reply["schema_version"], 1, "{reply}");
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    // From standard input, with `-`, for `import` and for `suggest --finding`.
    let more = jsonl(&[finding("F-4", "bob", "engineering", "sandbox")]);
    let run = env.run_with_stdin("local:alice", &["import", "-", "--output", "json"], &more);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["campaign"]["outcomes"], json!({"created": 1}));
    let run = env.run_with_stdin("local:alice", &["suggest", "--finding", "-", "--output", "json"], &lines);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["entries"].as_array().map(Vec::len), Some(3), "JSON Lines are a document: {}", run.stdout);
}

#[test]
fn what_is_refused_is_summarised_by_reason_and_sets_the_exit_code() {
    let env = Env::new();
    env.init_enabled();
    let mixed = jsonl(&[
        finding("F-1", "alice", "engineering", "sandbox"),
        finding("F-2", "carol", "engineering", "nowhere"),
        finding("F-3", "bob", "engineering", "nowhere"),
    ]);
    let run = env.run_with_stdin("local:alice", &["import", "-"], &mixed);
    assert_eq!(run.code, 7, "some refused: {run:?}");
    assert!(run.stdout.contains("Why not taken"), "{}", run.stdout);
    let line = run.stdout.lines().find(|l| l.contains("nowhere")).unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.trim_start().starts_with('2'), "two refused for one reason: {line}");

    // A scanner's document with no `aws` connector here: every mapped finding is refused.
    let prowler = format!("{}/fixtures/findings/prowler-ocsf.json", env!("CARGO_MANIFEST_DIR"));
    let reply = env.expect("local:alice", &["import", &prowler, "--output", "json"], 7).json();
    assert_eq!(reply["campaign"]["outcomes"]["failed"], 5, "{reply}");
    assert_eq!(reply["campaign"]["outcomes"]["unsupported"], 1, "{reply}");
    let only_refused = jsonl(&[finding("F-9", "carol", "engineering", "nowhere")]);
    assert_eq!(env.run_with_stdin("local:alice", &["import", "-"], &only_refused).code, 3);

    // Not findings at all: a usage error naming the line.
    let run = env.run_with_stdin("local:alice", &["import", "-"], "{\"id\": 1}\n{oops\n");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
}

/// Ten thousand findings in one file (many repeats of a few targets, so deduplication is
/// exercised at scale) are each taken in, once. (About 9 s in a debug build here; the time is
/// printed, not asserted: timing belongs in benchmarks.)
#[test]
fn ten_thousand_findings_in_one_file_are_each_taken_in_once() {
    let env = Env::new();
    env.init_enabled();
    let targets = [("alice", "engineering"), ("carol", "engineering"), ("bob", "engineering"), ("alice", "admins")];
    let findings: Vec<Value> = (0..10_000)
        .map(|i| {
            let (who, group) = targets[i % targets.len()];
            finding(&format!("F-{i}"), who, group, "sandbox")
        })
        .collect();
    let path = env.dir().join("many.jsonl");
    std::fs::write(&path, jsonl(&findings)).expect("write findings");
    let started = std::time::Instant::now();
    let reply = env.expect("local:alice", &["import", path.to_str().expect("utf-8"), "--output", "json"], 0).json();
    let took = started.elapsed();
    assert_eq!(reply["campaign"]["outcomes"], json!({"created": 4, "existing": 9_996}), "{}", reply["campaign"]);
    println!("imported 10,000 findings in {took:?}");
}
