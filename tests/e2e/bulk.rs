//! Commands on many actions at once: several ids or a filter print what will be done, ask for
//! a confirmation (`--yes` off a terminal), act on each, print one outcome per action, and exit
//! 7 when some were done and some not.

use remediation_e2e::Env;
use serde_json::Value;

/// A pending revocation of `who` from `group` for `control`, suggested by `by`; its id.
fn pending(env: &Env, by: &str, who: &str, group: &str, control: &str) -> String {
    let finding = serde_json::json!({
        "id": format!("F-{who}-{group}"),
        "source": "e2e",
        "control_id": control,
        "severity": "high",
        "title": format!("{who} in {group}"),
        "target": {"identity": who, "resource": group, "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"},
        "connector": "sandbox",
    });
    let path = env.dir().join(format!("{who}-{group}.json"));
    std::fs::write(&path, finding.to_string()).expect("write the finding");
    let reply =
        env.expect(by, &["suggest", "--finding", path.to_str().expect("utf-8 path"), "--output", "json"], 0).json();
    reply["action"]["id"].as_str().unwrap_or_else(|| panic!("an action: {reply}")).to_owned()
}

fn state(env: &Env, id: &str) -> String {
    env.expect("local:bob", &["show", id, "--output", "json"], 0).json()["action"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn members(env: &Env, group: &str) -> Vec<String> {
    env.sandbox()["groups"][group]["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn several_ids_are_confirmed_acted_on_and_reported_one_by_one() {
    let env = Env::new();
    env.init_enabled();
    let a = pending(&env, "local:alice", "alice", "engineering", "CIS-1");
    let b = pending(&env, "local:alice", "carol", "engineering", "CIS-1");
    let c = pending(&env, "local:bob", "bob", "engineering", "CIS-2");

    // Off a terminal, several actions need --yes; nothing is done without it.
    let run = env.expect("local:bob", &["approve", &a, &b], 2);
    assert!(run.stderr.contains("add --yes"), "{}", run.stderr);
    assert_eq!(state(&env, &a), "pending_approval");

    // bob may approve alice's two but not his own: the others are done, the table says which
    // was not, and the exit code is 7.
    let run = env.expect("local:bob", &["approve", &a, &b, &c, "--yes"], 7);
    assert!(run.stdout.contains("remediate will approve 3 action(s):"), "{}", run.stdout);
    assert!(run.stdout.contains("Plan: 3 to approve."), "{}", run.stdout);
    assert!(run.stdout.contains("2 of 3 done, 1 not."), "{}", run.stdout);
    let line = run.stdout.lines().find(|l| l.starts_with(&c)).unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("refused") && line.contains("cannot approve"), "{line}");
    assert_eq!([state(&env, &a), state(&env, &b), state(&env, &c)], ["approved", "approved", "pending_approval"]);

    // As JSON: one item per action, with its own exit code.
    let run = env.expect("local:dave", &["approve", &c, &a, "--yes", "--output", "json"], 7);
    let reply: Value = run.json();
    assert_eq!(
        (reply["selected"].as_u64(), reply["done"].as_u64(), reply["failed"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(reply["items"][0]["ok"], true, "{reply}");
    assert_eq!(reply["items"][1]["exit_code"], 3, "approving an approved action is refused: {reply}");

    // An id that does not exist stops the command before anything is done.
    let missing = "01900000-0000-7000-8000-00000000dead";
    env.expect("local:bob", &["cancel", &a, missing, "--yes"], 4);
    assert_eq!(state(&env, &a), "approved");
}

#[test]
fn a_filter_selects_by_state_control_and_connector() {
    let env = Env::new();
    env.init_enabled();
    let a = pending(&env, "local:alice", "alice", "engineering", "CIS-1");
    let b = pending(&env, "local:alice", "carol", "engineering", "CIS-1");
    let c = pending(&env, "local:alice", "bob", "engineering", "CIS-2");

    // Nothing approved yet: nothing to execute.
    let run = env.expect("local:bob", &["execute", "--connector", "sandbox", "--yes"], 0);
    assert!(run.stdout.contains("No actions match; nothing to execute."), "{}", run.stdout);

    // Without --state, approve selects what waits for approval; --control narrows it.
    let run = env.expect("local:bob", &["approve", "--control", "CIS-1", "--yes"], 0);
    assert!(run.stdout.contains("Plan: 2 to approve."), "{}", run.stdout);
    assert_eq!([state(&env, &a), state(&env, &b), state(&env, &c)], ["approved", "approved", "pending_approval"]);

    // Execute every approved action on the sandbox: both revocations are made.
    let run = env.expect("local:bob", &["execute", "--connector", "sandbox", "--yes"], 0);
    assert!(run.stdout.contains("2 of 2 done, 0 not."), "{}", run.stdout);
    let engineering = members(&env, "engineering");
    assert!(!engineering.contains(&"alice".to_owned()) && !engineering.contains(&"carol".to_owned()));
    assert!(engineering.contains(&"bob".to_owned()), "{engineering:?}");

    // An explicit state, and a filter that ids cannot be mixed with.
    let run = env.expect("local:alice", &["cancel", "--state", "pending_approval", "--control", "CIS-2", "--yes"], 0);
    assert!(run.stdout.contains("1 of 1 done"), "{}", run.stdout);
    assert_eq!(state(&env, &c), "cancelled");
    env.expect("local:alice", &["cancel", &a, "--state", "approved"], 2);
    env.expect("local:alice", &["cancel"], 2);
}
