//! End-to-end tests of the `remediate` binary: whole lifecycles on the embedded default
//! (SQLite store and the sandbox connector), checking the sandbox file, the audit trail and
//! the exit codes a script would see.

mod audit;
mod bulk;
mod campaigns;
mod cli;
mod client;
mod concurrency;
mod connections;
mod connectors;
mod console;
mod controls;
mod crash;
mod events;
mod findings;
mod hostile;
mod import;
mod incident;
mod log;
mod metrics;
mod postgres;
mod posture;
mod replicas;
mod report;
mod rotation;
mod safety;
mod server;
mod store;
mod tenants;
mod ui;

use remediation_e2e::Env;
use serde_json::Value;

const REVOKE_ALICE_ADMINS: &[&str] = &[
    "suggest",
    "--connector",
    "sandbox",
    "--kind",
    "revoke",
    "--identity",
    "alice",
    "--resource",
    "admins",
    "--grant-type",
    "group_membership",
    "--reason",
    "standing admin access not needed",
    "--output",
    "json",
];

fn admins(env: &Env) -> Vec<String> {
    env.sandbox()["groups"]["admins"]["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn writes(env: &Env) -> usize {
    env.sandbox()["writes"].as_array().map_or(0, Vec::len)
}

fn events(env: &Env, id: &str) -> Vec<String> {
    let show = env.expect("local:bob", &["show", id, "--output", "json"], 0).json();
    show["transitions"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| format!("{}->{}", t["from"].as_str().unwrap_or("new"), t["to"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn full_lifecycle_through_the_binary() {
    let env = Env::new();
    let init = env.expect("local:alice", &["init"], 0);
    assert!(init.stdout.contains("DISABLED"), "{}", init.stdout);
    let config = std::fs::read_to_string(env.dir().join("remediation.toml")).expect("config written");
    assert!(config.contains("enabled = false"), "init must leave remediation disabled");
    // The user who ran init is the admin; every other local actor is a requester.
    assert!(config.contains("\"local:e2e-runner\" = \"admin\"") && config.contains("default_role = \"requester\""));
    assert!(init.stdout.contains("local:e2e-runner is admin"), "{}", init.stdout);
    env.enable();

    assert!(admins(&env).contains(&"alice".to_owned()), "sample directory has alice in admins");
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    assert_eq!(suggested["action"]["state"], "pending_approval");
    assert_eq!(suggested["plan"]["plan_hash"].as_str().map(str::len), Some(64));
    assert!(admins(&env).contains(&"alice".to_owned()), "suggest writes nothing");
    // An actor not listed in [actors] is a requester: it approves nothing.
    env.expect("local:nobody", &["approve", &id], 3);

    // The requester cannot approve their own action: refused by a rule.
    let own = env.expect("local:alice", &["approve", &id], 3);
    assert!(own.stderr.contains("cannot approve"), "{}", own.stderr);
    // Executing before approval is illegal in the lifecycle: refused.
    env.expect("local:bob", &["execute", &id], 3);

    let approved = env.expect("local:bob", &["approve", &id, "--note", "ok", "--output", "json"], 0).json();
    assert_eq!(approved["state"], "approved");

    // A dry run checks everything and writes nothing.
    let dry = env.expect("local:bob", &["execute", &id, "--dry-run", "--output", "json"], 0).json();
    assert_eq!(dry["outcome"], "dry_run");
    assert_eq!(writes(&env), 0);

    let executed = env.expect("local:bob", &["execute", &id, "--output", "json"], 0).json();
    assert_eq!(executed["outcome"], "completed");
    assert!(!admins(&env).contains(&"alice".to_owned()), "alice removed from admins");
    assert_eq!(writes(&env), 1, "applied exactly once");
    // Executing again is illegal: the action is completed.
    env.expect("local:bob", &["execute", &id], 3);
    assert_eq!(writes(&env), 1);

    env.expect("local:bob", &["audit", "verify"], 0);

    // Giving access back waits for a second approver: bob's rollback is a request (exit 3).
    let requested = env.expect("local:bob", &["rollback", &id, "--output", "json"], 3).json();
    assert_eq!(requested["outcome"], "rollback_requested");
    assert!(!admins(&env).contains(&"alice".to_owned()), "nothing restored on one approver's say");
    let waiting = env.expect("local:bob", &["rollback", &id], 3);
    assert!(waiting.stderr.contains("requested this rollback"), "{}", waiting.stderr);
    let own = env.expect("local:bob", &["approve", &id], 3);
    assert!(own.stderr.contains("requested this rollback"), "{}", own.stderr);
    assert_eq!(writes(&env), 1);
    let rolled = env.expect("local:dave", &["approve", &id, "--output", "json"], 0).json();
    assert_eq!(rolled["state"], "rolled_back");
    assert!(admins(&env).contains(&"alice".to_owned()), "alice restored");
    assert_eq!(writes(&env), 2);

    assert_eq!(
        events(&env, &id),
        [
            "new->pending_approval",
            "pending_approval->approved",
            "approved->executing",
            "executing->completed",
            "completed->rollback_requested",
            "rollback_requested->rolling_back",
            "rolling_back->rolled_back"
        ]
    );
    // Seven transitions and six refused attempts: an unlisted actor (a requester) approving,
    // alice approving her own action, two executions by bob, and bob asking for and then
    // approving his own rollback.
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert_eq!(verify["records"], 13);
    assert!(verify["first_break"].is_null());

    let export = env.expect("local:bob", &["audit", "export"], 0);
    let lines: Vec<Value> = export.stdout.lines().map(|l| serde_json::from_str(l).expect("JSONL")).collect();
    assert_eq!(lines.len(), 13);
    assert_eq!(lines[0]["prev_hash"], "0".repeat(64));
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "each record links to the previous one");
    }
    let refusals: Vec<(&str, &str)> =
        lines.iter().filter_map(|l| Some((l["setting_event"].as_str()?, l["actor"].as_str()?))).collect();
    assert_eq!(
        refusals,
        [
            ("approval_refused", "local:nobody"),
            ("approval_refused", "local:alice"),
            ("execution_refused", "local:bob"),
            ("execution_refused", "local:bob"),
            ("rollback_refused", "local:bob"),
            ("approval_refused", "local:bob")
        ]
    );
    assert_eq!(lines[12]["to"], "rolled_back");
    // The rollback was asked for by one principal and approved by another.
    let requested = lines.iter().find(|l| l["to"] == "rollback_requested").expect("rollback request");
    let approved = lines.iter().find(|l| l["from"] == "rollback_requested").expect("rollback approval");
    assert_eq!((requested["actor"].as_str(), approved["decided_by"].as_str()), (Some("local:bob"), Some("local:dave")));
    // What changed is readable from the audit alone.
    let done = lines.iter().find(|l| l["event"] == "execution_succeeded").expect("completion record");
    assert_eq!(done["before_state"]["state"]["member"], true, "{done}");
    assert_eq!(done["after_state"]["state"]["member"], false, "{done}");

    // `show` keeps the execution's after-state and shows the restore beside it.
    let show = env.expect("local:bob", &["show", &id], 0);
    let field = |label: &str| {
        let line = show.stdout.lines().find(|l| l.starts_with(label));
        line.unwrap_or_else(|| panic!("no {label}: {}", show.stdout))[label.len()..].trim().to_owned()
    };
    assert_ne!(field("after "), field("before "), "the after-state is the execution's: {}", show.stdout);
    assert_eq!(field("restored "), field("before "), "the restore is shown beside it: {}", show.stdout);
    assert!(!show.stdout.contains("rollback   until"), "no window after a rollback: {}", show.stdout);

    // Table output for people.
    let list = env.expect("local:bob", &["list"], 0);
    assert!(list.stdout.starts_with("#  ") && list.stdout.contains("ID"), "{}", list.stdout);
    assert!(list.stdout.contains("rolled_back"), "{}", list.stdout);
}

#[test]
fn an_irreversible_action_refuses_a_rollback_and_advertises_none() {
    let env = Env::new();
    env.init_enabled();
    let s = env
        .expect(
            "local:alice",
            &[
                "suggest",
                "--connector",
                "sandbox",
                "--kind",
                "revoke_sessions",
                "--identity",
                "alice",
                "--grant-type",
                "account",
                "--reason",
                "token leaked",
                "--output",
                "json",
            ],
            0,
        )
        .json();
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    let done = env.expect("local:bob", &["execute", &id], 0);
    assert!(!done.stdout.contains("Next: remediate rollback"), "{}", done.stdout);
    assert!(done.stdout.contains("cannot be undone"), "{}", done.stdout);
    let json = env.expect("local:bob", &["show", &id, "--output", "json"], 0).json();
    assert!(json["rollback_expires_at"].is_null(), "{json}");
    let show = env.expect("local:bob", &["show", &id], 0);
    assert!(!show.stdout.contains("until"), "no rollback deadline: {}", show.stdout);
    assert!(show.stdout.contains("cannot be undone"), "{}", show.stdout);
    for who in ["local:bob", "local:dave"] {
        let refused = env.expect(who, &["rollback", &id], 3);
        assert!(refused.stderr.contains("cannot be undone"), "{}", refused.stderr);
    }
    assert_eq!(events(&env, &id).last().map(String::as_str), Some("executing->completed"), "still completed");
}

#[test]
fn execution_is_refused_while_remediation_is_disabled() {
    let env = Env::new();
    env.expect("local:alice", &["init"], 0);
    env.edit_config(|t| t.replace("[actors.roles]\n", "[actors.roles]\n\"local:bob\" = \"approver\"\n"));
    let s = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    let refused = env.expect("local:bob", &["execute", &id], 3);
    assert!(refused.stderr.contains("disabled"), "{}", refused.stderr);
    assert!(refused.stderr.contains("enabled = true"), "the error says how to enable: {}", refused.stderr);
    assert_eq!(writes(&env), 0);
    // The refusal is in the audit trail, with who asked and why it was refused.
    let export = env.expect("local:bob", &["audit", "export"], 0);
    let refusal = export.stdout.lines().find(|l| l.contains("execution_refused")).expect("refusal audited");
    assert!(refusal.contains("local:bob") && refusal.contains("disabled"), "{refusal}");
    // A dry run is still allowed while disabled.
    env.expect("local:bob", &["execute", &id, "--dry-run"], 0);
}

#[test]
fn refusals_and_not_found_have_their_exit_codes() {
    let env = Env::new();
    env.init_enabled();
    // Unknown action id: 4.
    let missing = env.expect("local:bob", &["show", "01900000-0000-7000-8000-000000000000"], 4);
    assert!(missing.stderr.contains("no action"), "{}", missing.stderr);
    // Unknown connector: 4.
    let mut args = REVOKE_ALICE_ADMINS.to_vec();
    args[2] = "okta-prod";
    env.expect("local:alice", &args, 4);
    // Unknown user in the provider: 4.
    let mut args = REVOKE_ALICE_ADMINS.to_vec();
    args[6] = "nobody";
    env.expect("local:alice", &args, 4);
    // Protected (break-glass) account: refused by the validation gate, 3.
    let protected = env.expect(
        "local:alice",
        &[
            "suggest",
            "--connector",
            "sandbox",
            "--kind",
            "suspend",
            "--identity",
            "breakglass",
            "--grant-type",
            "account",
            "--reason",
            "x",
        ],
        3,
    );
    assert!(protected.stderr.contains("protected"), "{}", protected.stderr);
    // Unsupported kind for the grant type: 3, before touching the provider.
    env.expect(
        "local:alice",
        &[
            "suggest",
            "--connector",
            "sandbox",
            "--kind",
            "suspend",
            "--identity",
            "alice",
            "--grant-type",
            "group_membership",
            "--reason",
            "x",
        ],
        3,
    );
    // Bad usage: 2.
    env.expect("local:alice", &["suggest", "--connector", "sandbox"], 2);
    env.expect("local:alice", &["show", "not-a-uuid"], 2);
}

#[test]
fn a_suggestion_without_a_connector_goes_to_the_capable_one_or_lists_the_candidates() {
    let env = Env::new();
    env.init_enabled();
    let args = |grant_type| {
        ["suggest", "--kind", "revoke", "--identity", "alice", "--resource", "admins", "--grant-type", grant_type]
            .into_iter()
            .chain(["--reason", "standing admin", "--output", "json"])
            .collect::<Vec<_>>()
    };
    let chosen = env.expect("local:alice", &args("group_membership"), 0).json();
    assert_eq!(chosen["action"]["connector"], "sandbox", "{chosen}");
    // No configured connector can do it: usage (2), each candidate named with its reason.
    let refused = env.expect("local:alice", &args("mainframe_racf"), 2);
    assert!(refused.stderr.contains("sandbox: no capability"), "{}", refused.stderr);
    assert!(refused.stderr.contains("no single healthy connector"), "{}", refused.stderr);
}

#[test]
fn list_pages_through_every_action_and_stops_at_the_limit() {
    let env = Env::new();
    env.init_enabled();
    let mut dry_run = REVOKE_ALICE_ADMINS.to_vec();
    dry_run.push("--dry-run");
    let ids: Vec<String> = (0..3)
        .map(|_| env.expect("local:alice", &dry_run, 0).json()["action"]["id"].as_str().expect("id").to_owned())
        .collect();
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list", "--output", "json"];
        all.extend_from_slice(args);
        let list = env.expect("local:bob", &all, 0).json();
        list.as_array().expect("array").iter().map(|a| a["id"].as_str().expect("id").to_owned()).collect()
    };
    assert_eq!(listed(&[]), ids, "every action, oldest first");
    assert_eq!(listed(&["--limit", "2"]), ids[..2], "the oldest two");
    let table = env.expect("local:bob", &["list", "--limit", "1"], 0);
    assert_eq!(table.stdout.lines().count(), 2, "a header and one row:\n{}", table.stdout);
    env.expect("local:bob", &["list", "--limit", "0"], 2);
}

#[test]
fn configuration_errors_name_file_line_and_key() {
    let env = Env::new();
    env.expect("local:alice", &["init"], 0);
    env.edit_config(|t| t.replace("min_approvals = 1", "min_approvals = 1\nenabeld = true"));
    let text = std::fs::read_to_string(env.dir().join("remediation.toml")).expect("config");
    let line = text.lines().position(|l| l.starts_with("enabeld")).expect("typo line") + 1;
    let run = env.expect("local:alice", &["list"], 2);
    assert!(run.stderr.contains("remediation.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("policy.enabeld"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("line {line}")), "{}", run.stderr);
    // No data directory at all: says to run init.
    let empty = Env::new();
    let run = empty.expect("local:alice", &["list"], 2);
    assert!(run.stderr.contains("remediate init"), "{}", run.stderr);
}

#[test]
fn demo_runs_end_to_end() {
    let env = Env::new();
    let run = env.expect("local:alice", &["demo", "--output", "json"], 0);
    let v = run.json();
    let steps: Vec<&str> = v["steps"].as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["suggest", "approve", "execute", "rollback_request", "rollback", "audit_verify"]);
    let data_dir = v["data_dir"].as_str().expect("data dir");
    let _ = std::fs::remove_dir_all(data_dir);
}

/// The Python interpreter `REMEDIATION_TEST_PYTHON` names, else `python3` if it is on PATH,
/// for the independent checker `what`; `None` (after printing why) when neither, a failure
/// under `CI=true`.
fn python(what: &str) -> Option<std::path::PathBuf> {
    const VAR: &str = "REMEDIATION_TEST_PYTHON";
    let named = std::env::var(VAR).ok().filter(|v| !v.trim().is_empty());
    let on_path = || {
        let found = std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
        found.then(|| "python3".to_owned())
    };
    let found = named.or_else(on_path);
    remediation_testkit::real_server::require_value(
        what,
        VAR,
        found.as_deref(),
        "a Python 3 interpreter; `.ci/setup-python.sh` prints the line",
    )
    .map(std::path::PathBuf::from)
}
