//! Crash recovery through the real binary: stop `remediate` at each failpoint, kill it with
//! SIGKILL, and check that two `recover` processes running at once end each action where the
//! crash rule says (once the dead worker's lease has expired), that the sandbox shows the change
//! applied exactly once, and that the audit chain still verifies. A worker frozen past its lease
//! and taken over changes nothing when it wakes; two workers execute side by side.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remediation_e2e::{Env, remediate_bin};

use crate::{REVOKE_ALICE_ADMINS, admins, events, writes};

/// How long a test waits for a dead or frozen worker's lease to expire and its action to be
/// settled.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);

/// A `remediate ARGS` process run as `actor` with `REMEDIATION_FAILPOINT=failpoint`, stopped at
/// that failpoint (its standard input and the rest of its standard error are kept).
pub(crate) struct Parked {
    pub(crate) child: Child,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Drop for Parked {
    /// A test that failed half-way leaves no process behind, frozen or not.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `remediate ARGS` as `actor` with `REMEDIATION_FAILPOINT=failpoint` and waits until
/// it reports the failpoint (`name` or `name:resume-on-stdin`).
#[allow(clippy::zombie_processes, reason = "the caller (or `Parked`'s drop) waits for the child it is handed")]
pub(crate) fn park_at(env: &Env, actor: &str, failpoint: &str, args: &[&str]) -> Parked {
    let mut child = Command::new(remediate_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--actor", actor])
        .args(args)
        .env("REMEDIATION_FAILPOINT", failpoint)
        // As `Env::run_as` sets it: a configuration may name it (moto takes any key id).
        .env("USER", "e2e-runner")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn remediate");
    let point = failpoint.split(':').next().unwrap_or_default();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr line") == 0 {
            let status = child.wait().expect("wait");
            panic!("remediate never reached failpoint {point}; it exited {status} with stderr:\n{}", seen.join(""));
        }
        if line.contains(&format!("failpoint {point} reached")) {
            return Parked { child, stderr };
        }
        seen.push(line);
    }
}

/// Runs `remediate ARGS` as `actor` with `REMEDIATION_FAILPOINT=point`, waits until it reports
/// the failpoint, then kills it with SIGKILL.
pub(crate) fn kill_at(env: &Env, actor: &str, point: &str, args: &[&str]) {
    let mut parked = park_at(env, actor, point, args);
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no cleanup runs.
    parked.child.kill().expect("SIGKILL");
    parked.child.wait().expect("wait");
}

/// Sends `signal` (`STOP`, `CONT`) to `child`.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().expect("kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Runs two `remediate recover` processes at once, again and again until action `id` has left
/// `left_in` (the dead worker's lease must expire first; until then recovery leaves it alone
/// and says so). Returns every recovery they reported, from both.
fn recover_with_two_workers(env: &Env, id: &str, left_in: &str) -> Vec<serde_json::Value> {
    let started = Instant::now();
    let mut all = Vec::new();
    while state(env, id) == left_in {
        assert!(started.elapsed() < SETTLE_DEADLINE, "action {id} still {left_in} after {SETTLE_DEADLINE:?}");
        let runs = std::thread::scope(|s| {
            let a = s.spawn(|| env.run_as("local:bob", &["recover", "--output", "json"]));
            let b = s.spawn(|| env.run_as("local:dave", &["recover", "--output", "json"]));
            [a.join().expect("recover"), b.join().expect("recover")]
        });
        for run in runs {
            assert_eq!(run.code, 0, "recover exits 0 even while a live worker holds the action: {}", run.stderr);
            all.extend(run.json().as_array().cloned().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    all
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

    let recovered = recover_with_two_workers(&env, &id, case.left_in);
    assert_eq!(recovered.len(), 1, "settled once by one of the two workers: {recovered:?}");
    assert_eq!(recovered[0]["to"], case.ends, "{recovered:?}");
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
    // No explicit `recover`: the next command that executes reconciles before it acts, once
    // the dead worker's lease has expired; until then it leaves the action to that worker.
    let env = Env::new();
    let id = approved_action(&env);
    kill_at(&env, "local:bob", "after_provider_write", &["execute", &id]);
    let started = Instant::now();
    let mut recovered = 0;
    let mut said = String::new();
    while state(&env, &id) == "executing" {
        assert!(started.elapsed() < SETTLE_DEADLINE, "still executing after {SETTLE_DEADLINE:?}");
        // Refused either way: the action is executing, or already completed by recovery.
        let run = env.expect("local:bob", &["execute", &id], 3);
        recovered += run.stderr.matches(&format!("recovered {id}: executing -> completed")).count();
        said.push_str(&run.stderr);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(recovered, 1, "the execute that found the lease expired recovered it:\n{said}");
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
    let recovered = recover_with_two_workers(&env, &id, "executing");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["to"], "failed", "{recovered:?}");
    assert_eq!(writes(&env), 1, "the idempotency key kept the change from being applied twice");
    env.expect("local:bob", &["audit", "verify"], 0);
}

/// Everything a worker could change: the action as shown (state and transitions), the
/// provider (the sandbox file, its write log included) and the audit trail.
fn observable(env: &Env, id: &str) -> (serde_json::Value, serde_json::Value, String) {
    let show = env.expect("local:bob", &["show", id, "--output", "json"], 0).json();
    (show, env.sandbox(), env.expect("local:bob", &["audit", "export"], 0).stdout)
}

#[test]
fn a_worker_frozen_past_its_lease_changes_nothing_when_it_wakes() {
    let env = Env::new();
    let id = approved_action(&env);
    // Worker 1 moves the action to executing under its lease, then is frozen with SIGSTOP
    // before its provider write.
    let mut frozen =
        park_at(&env, "local:bob", "after_begin_execution:resume-on-stdin", &["execute", &id, "--output", "json"]);
    signal(&frozen.child, "STOP");
    // Worker 2 takes the action over once the lease has expired and settles it by the crash
    // rule: the provider still shows the before-state, so it executes it (once).
    let recovered = recover_with_two_workers(&env, &id, "executing");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["to"], "completed", "{recovered:?}");
    assert_eq!(writes(&env), 1);
    let before = observable(&env, &id);

    // Worker 1 wakes and carries on: its lease is gone, so it stops before any provider write
    // and records nothing.
    signal(&frozen.child, "CONT");
    frozen.child.stdin.take().expect("stdin").write_all(b"\n").expect("resume");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut frozen.stderr, &mut rest).expect("stderr");
    let status = frozen.child.wait().expect("wait");
    assert_eq!(status.code(), Some(3), "refused: the action was taken over\n{rest}");
    assert!(rest.contains("lease") && rest.contains("was lost"), "{rest}");
    assert_eq!(observable(&env, &id), before, "the woken worker changed nothing");
    assert_eq!(writes(&env), 1, "and wrote nothing to the provider");
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
}

#[test]
fn two_workers_execute_different_actions_at_once() {
    let env = Env::new();
    env.init_enabled();
    // Long leases: the parked worker below must keep its action however slow the machine is.
    env.edit_config(|t| t.replace("lease_ttl_secs = 1\n", "lease_ttl_secs = 60\n"));
    let suggest = |resource: &str| {
        let mut args = REVOKE_ALICE_ADMINS.to_vec();
        let at = args.iter().position(|a| *a == "admins").expect("resource");
        args[at] = resource;
        let id = env.expect("local:alice", &args, 0).json()["action"]["id"].as_str().expect("id").to_owned();
        env.expect("local:bob", &["approve", &id], 0);
        id
    };
    let (first, second) = (suggest("admins"), suggest("engineering"));
    // Worker 1 stops in the middle of its execution, holding its lease.
    let mut parked = park_at(&env, "local:bob", "after_begin_execution:resume-on-stdin", &["execute", &first]);
    // Recovery leaves the live worker's action alone, and says so.
    let recover = env.expect("local:bob", &["recover", "--output", "json"], 0);
    assert_eq!(recover.json(), serde_json::json!([]));
    assert!(recover.stderr.contains(&format!("{first} (executing) is leased to worker")), "{}", recover.stderr);
    // Worker 2 executes another action meanwhile: nothing waits for worker 1.
    let done = env.expect("local:dave", &["execute", &second, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    assert_eq!(state(&env, &first), "executing");
    // Worker 1 carries on and completes its own.
    parked.child.stdin.take().expect("stdin").write_all(b"\n").expect("resume");
    let status = parked.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert_eq!(state(&env, &first), "completed");
    assert_eq!(writes(&env), 2, "each action applied exactly once");
    env.expect("local:bob", &["audit", "verify"], 0);
}
