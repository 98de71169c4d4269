//! `remediate report metrics`: executions and rollbacks run by CLI processes (no server) are
//! counted, per control, kind and connector, from the audit log; the period's bounds hold.

use remediation_e2e::Env;
use serde_json::Value;

use crate::REVOKE_ALICE_ADMINS;

/// The report's row for (control, kind, connector); `Value::Null` when absent.
fn row(report: &Value, control: &str) -> Value {
    report["rows"]
        .as_array()
        .and_then(|rows| {
            rows.iter().find(|r| r["control"] == control && r["kind"] == "revoke" && r["connector"] == "sandbox")
        })
        .cloned()
        .unwrap_or(Value::Null)
}

fn report(env: &Env, bounds: &[&str]) -> Value {
    let mut args = vec!["report", "metrics", "--output", "json"];
    args.extend_from_slice(bounds);
    env.expect("local:bob", &args, 0).json()
}

#[test]
fn cli_executions_are_counted_by_report_metrics_within_the_period() {
    let env = Env::new();
    env.init_enabled();
    // Executed and rolled back, by CLI processes only.
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    // Giving access back is requested by one approver and run on a second one's approval.
    env.expect("local:bob", &["rollback", &id, "--note", "not needed after all"], 3);
    env.expect("local:dave", &["approve", &id], 0);
    // Cancelled, under a control that is not configured: counted as `other`.
    let mut other: Vec<&str> = REVOKE_ALICE_ADMINS.to_vec();
    other.splice(8..9, ["engineering"]);
    other.extend(["--control", "not-configured"]);
    let cancelled = env.expect("local:alice", &other, 0).json();
    let cancelled = cancelled["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:alice", &["cancel", &cancelled], 0);

    let all = report(&env, &[]);
    let none = row(&all, "none");
    assert_eq!(none["executions"]["completed"], 1, "{all}");
    assert_eq!(none["outcomes"]["completed"], 1, "{all}");
    assert_eq!(none["outcomes"]["rolled_back"], 1, "{all}");
    assert_eq!(none["rollbacks"]["rolled_back"], 1, "{all}");
    assert_eq!(none["rollbacks"]["requested"], 1, "{all}");
    assert_eq!(none["success_rate"], 1.0, "{all}");
    assert_eq!(none["rollback_rate"], 1.0, "{all}");
    assert!(none["ttr_p50_secs"].as_f64().is_some_and(|s| s >= 0.0), "{all}");
    assert_eq!(none["ttr_count"], 1, "{all}");
    let other = row(&all, "other");
    assert_eq!(other["outcomes"]["cancelled"], 1, "{all}");
    assert_eq!((other["success_rate"].clone(), other["rollback_rate"].clone()), (Value::Null, Value::Null), "{all}");

    // The period: everything happened in the last hour, nothing before 2000 nor after 2999.
    assert_eq!(report(&env, &["--since", "1h", "--until", "2999-01-01"])["rows"], all["rows"]);
    assert_eq!(report(&env, &["--until", "2000-01-01"])["rows"], serde_json::json!([]));
    assert_eq!(report(&env, &["--since", "2999-01-01T00:00:00Z"])["rows"], serde_json::json!([]));
    // `--until` is exclusive: an end at the log's first record leaves it out.
    let first = env.expect("local:bob", &["show", &id, "--output", "json"], 0).json();
    let created = first["transitions"][0]["at"].as_str().expect("at").to_owned();
    let before_first = report(&env, &["--until", &created]);
    assert_eq!(before_first["rows"], serde_json::json!([]), "{before_first}");
    let from_first = report(&env, &["--since", &created]);
    assert_eq!(from_first["rows"], all["rows"]);

    // The table a person reads.
    let table = env.expect("local:bob", &["report", "metrics"], 0).stdout;
    for needle in ["CONTROL", "SUCCESS", "ROLLBACK RATE", "TTR P50", "none", "other", "100.0%"] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }
    // An instant that is not one is refused with the forms it takes.
    let bad = env.expect("local:bob", &["report", "metrics", "--since", "yesterday"], 2);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
}

#[test]
fn a_server_started_after_cli_executions_reports_the_same_numbers() {
    let env = Env::new();
    env.init_enabled();
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    let local = report(&env, &[]);
    assert_eq!(row(&local, "none")["executions"]["completed"], 1, "{local}");
    let viewer = crate::server::token(&env, "vera", "viewer");
    let server = crate::server::Server::start(&env);
    let url = format!("http://{}", server.addr);
    let remote = crate::client::run_remote(&url, Some(&viewer), &["report", "metrics", "--output", "json"]);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    assert_eq!(remote.json()["rows"], local["rows"]);
    let bounded = crate::client::run_remote(
        &url,
        Some(&viewer),
        &["report", "metrics", "--until", "2000-01-01", "--output", "json"],
    );
    assert_eq!(bounded.json()["rows"], serde_json::json!([]), "{}", bounded.stderr);
}
