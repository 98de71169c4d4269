//! Crash recovery through the real binary: stop `remediate` at each failpoint, kill it with
//! SIGKILL, and check that `recover` ends each action where the crash rule says, that the
//! sandbox shows the change applied exactly once, and that the audit chain still verifies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use remediation_e2e::{Env, remediate_bin};

use crate::{REVOKE_ALICE_ADMINS, admins, events, writes};

/// Runs `remediate ARGS` as `actor` with `REMEDIATION_FAILPOINT=point`, waits until it reports
/// the failpoint, then kills it with SIGKILL.
fn kill_at(env: &Env, actor: &str, point: &str, args: &[&str]) {
    let mut child = Command::new(remediate_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--actor", actor])
        .args(args)
        .env("REMEDIATION_FAILPOINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn remediate");
    let stderr = child.stderr.take().expect("stderr");
    let mut reached = false;
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        if line.contains(&format!("failpoint {point} reached")) {
            reached = true;
            break;
        }
        seen.push(line);
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no cleanup runs.
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(reached, "remediate never reached failpoint {point}; it exited {status} with stderr:\n{}", seen.join("\n"));
}

fn state(env: &Env, id: &str) -> String {
    env.expect("local:bob", &["show", id, "--output", "json"], 0).json()["action"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn approved_action(env: &Env) -> String {
    env.init_enabled();
    let s = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    id
}

struct Case {
    point: &'static str,
    rollback: bool,
    left_in: &'static str,
    /// Writes in the sandbox's write log right after the kill.
    writes_at_kill: usize,
    /// Whether alice is still in admins right after the kill.
    member_at_kill: bool,
    ends: &'static str,
    /// Writes after recovery: each change applied exactly once.
    writes_after: usize,
    member_after: bool,
}

#[track_caller]
fn check(case: Case) {
    let env = Env::new();
    let id = approved_action(&env);
    if case.rollback {
        env.expect("local:bob", &["execute", &id], 0);
        // bob asks; the rollback runs when another approver approves it.
        env.expect("local:bob", &["rollback", &id], 3);
        kill_at(&env, "local:dave", case.point, &["approve", &id]);
    } else {
        kill_at(&env, "local:bob", case.point, &["execute", &id]);
    }
    assert_eq!(state(&env, &id), case.left_in, "state after the kill at {}", case.point);
    assert_eq!(writes(&env), case.writes_at_kill, "writes after the kill at {}", case.point);
    assert_eq!(admins(&env).contains(&"alice".to_owned()), case.member_at_kill, "membership after the kill");
    // The chain is intact even though the process died mid-action.
    env.expect("local:bob", &["audit", "verify"], 0);

    let recovered = env.expect("local:bob", &["recover", "--output", "json"], 0).json();
    assert_eq!(recovered.as_array().map(Vec::len), Some(1), "{recovered}");
    assert_eq!(recovered[0]["to"], case.ends, "{recovered}");
    assert_eq!(state(&env, &id), case.ends);
    assert_eq!(writes(&env), case.writes_after, "each change applied exactly once ({})", case.point);
    assert_eq!(admins(&env).contains(&"alice".to_owned()), case.member_after);
    // Nothing left to recover, and running recovery again changes nothing.
    assert_eq!(env.expect("local:bob", &["recover", "--output", "json"], 0).json(), serde_json::json!([]));
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
    let history = events(&env, &id);
    assert_eq!(verify["records"].as_u64(), Some(history.len() as u64), "one audit record per transition: {history:?}");
}

#[test]
fn killed_after_persisting_executing_is_executed_again_once() {
    check(Case {
        point: "after_begin_execution",
        rollback: false,
        left_in: "executing",
        writes_at_kill: 0,
        member_at_kill: true,
        ends: "completed",
        writes_after: 1,
        member_after: false,
    });
}

#[test]
fn killed_after_the_provider_write_is_completed_without_writing_again() {
    check(Case {
        point: "after_provider_write",
        rollback: false,
        left_in: "executing",
        writes_at_kill: 1,
        member_at_kill: false,
        ends: "completed",
        writes_after: 1,
        member_after: false,
    });
}

#[test]
fn killed_before_completed_is_completed_without_writing_again() {
    check(Case {
        point: "before_completed",
        rollback: false,
        left_in: "executing",
        writes_at_kill: 1,
        member_at_kill: false,
        ends: "completed",
        writes_after: 1,
        member_after: false,
    });
}

#[test]
fn killed_after_persisting_rolling_back_is_restored_once() {
    check(Case {
        point: "after_begin_rollback",
        rollback: true,
        left_in: "rolling_back",
        writes_at_kill: 1,
        member_at_kill: false,
        ends: "rolled_back",
        writes_after: 2,
        member_after: true,
    });
}

#[test]
fn killed_after_the_restore_write_is_rolled_back_without_writing_again() {
    check(Case {
        point: "after_rollback_write",
        rollback: true,
        left_in: "rolling_back",
        writes_at_kill: 2,
        member_at_kill: true,
        ends: "rolled_back",
        writes_after: 2,
        member_after: true,
    });
}

#[test]
fn the_next_execute_recovers_first() {
    // No explicit `recover`: the next command that executes reconciles before it acts.
    let env = Env::new();
    let id = approved_action(&env);
    kill_at(&env, "local:bob", "after_provider_write", &["execute", &id]);
    env.expect("local:bob", &["execute", &id], 3); // already completed by recovery
    assert_eq!(state(&env, &id), "completed");
    assert_eq!(writes(&env), 1);
}

#[test]
fn a_change_that_drifted_while_down_needs_attention() {
    // Killed after the write; meanwhile someone re-adds alice by hand, so the live state is
    // the before-state again but the write log already holds the key: re-executing with the
    // same key writes nothing, verification fails, and the action needs attention.
    let env = Env::new();
    let id = approved_action(&env);
    kill_at(&env, "local:bob", "after_provider_write", &["execute", &id]);
    let mut dir = env.sandbox();
    dir["groups"]["admins"]["members"].as_array_mut().expect("members").push("alice".into());
    env.write_sandbox(&dir);
    let recovered = env.expect("local:bob", &["recover", "--output", "json"], 0).json();
    assert_eq!(recovered[0]["to"], "failed", "{recovered}");
    assert_eq!(writes(&env), 1, "the idempotency key kept the change from being applied twice");
    env.expect("local:bob", &["audit", "verify"], 0);
}
