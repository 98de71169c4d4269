//! Two `remediate` processes on one data directory at once: one approving, one executing,
//! a hundred actions. The store must stay consistent and the chain valid.

use std::collections::BTreeSet;

use remediation_e2e::Env;

use crate::writes;

#[test]
fn one_process_approves_while_another_executes() {
    const N: usize = 100;
    let env = Env::new();
    env.init_enabled();
    // Room for a hundred executions, and a hundred members to remove.
    env.edit_config(|t| {
        t.replace("per_connector = { max = 50,", "per_connector = { max = 1000,")
            .replace("per_resource = { max = 10,", "per_resource = { max = 1000,")
            // carol executes: an approver, listed as every approver is.
            .replace("[actors.roles]\n", "[actors.roles]\n\"local:carol\" = \"approver\"\n")
    });
    let mut dir = env.sandbox();
    for i in 0..N {
        let user = format!("user{i:03}");
        dir["users"][&user] = serde_json::json!({"display_name": user, "status": "active", "sessions": [], "password_must_change": false, "protected": false});
        dir["groups"]["engineering"]["members"].as_array_mut().expect("members").push(user.into());
    }
    env.write_sandbox(&dir);

    let ids: Vec<String> = (0..N)
        .map(|i| {
            let user = format!("user{i:03}");
            let args = [
                "suggest",
                "--connector",
                "sandbox",
                "--kind",
                "revoke",
                "--identity",
                &user,
                "--resource",
                "engineering",
                "--grant-type",
                "group_membership",
                "--reason",
                "bulk cleanup",
                "--output",
                "json",
            ];
            env.expect("local:alice", &args, 0).json()["action"]["id"].as_str().expect("id").to_owned()
        })
        .collect();

    std::thread::scope(|s| {
        s.spawn(|| {
            for id in &ids {
                env.expect("local:bob", &["approve", id], 0);
            }
        });
        s.spawn(|| {
            let mut done = BTreeSet::new();
            let mut rounds = 0;
            while done.len() < N {
                rounds += 1;
                assert!(rounds < 10 * N, "executor made no progress");
                for id in &ids {
                    if done.contains(id) {
                        continue;
                    }
                    let run = env.run_as("local:carol", &["execute", id, "--output", "json"]);
                    match run.code {
                        0 => {
                            done.insert(id.clone());
                        }
                        // Not approved yet: refused by the lifecycle; try again later.
                        3 => {}
                        other => panic!("execute {id} exited {other}: {}{}", run.stdout, run.stderr),
                    }
                }
            }
        });
    });

    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    let states: BTreeSet<String> =
        list.as_array().expect("list").iter().filter_map(|a| a["state"].as_str().map(str::to_owned)).collect();
    assert_eq!(states, BTreeSet::from(["completed".to_owned()]));
    assert_eq!(writes(&env), N, "each action applied exactly once");
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
    // Suggest, approve, begin, complete per action, and each execution the lifecycle refused
    // (not approved yet), which the audit records too.
    let export = env.expect("local:bob", &["audit", "export"], 0).stdout;
    let refused = export.lines().filter(|l| l.contains("\"execution_refused\"")).count() as u64;
    assert_eq!(
        verify["records"].as_u64(),
        Some(4 * N as u64 + refused),
        "suggest, approve, begin, complete per action"
    );
}
