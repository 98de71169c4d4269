//! Campaigns through the real binary: `import --campaign` stores the campaign before taking
//! anything in; Ctrl-C stops it with its progress recorded (exit 130); a SIGKILL in the middle
//! of a 10,000-finding import loses nothing either; `campaign resume` goes on from where it
//! stopped and creates no action twice; `campaign show`, `list --campaign` and bulk commands
//! with `--campaign` see exactly the campaign's actions.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remediation_e2e::Env;
use serde_json::{Value, json};

/// Users the sandbox gets for the campaign, each the target of 100 findings.
const USERS: usize = 100;
/// Findings in the file.
const FINDINGS: usize = 10_000;

fn finding(i: usize) -> Value {
    // Each user's findings follow one another, so every batch of the import creates an action
    // and a kill always loses the record of one.
    let who = format!("u{}", i / (FINDINGS / USERS));
    json!({
        "id": format!("F-{i}"),
        "source": "e2e",
        "control_id": "CIS-1",
        "severity": "high",
        "title": format!("{who} in engineering"),
        "target": {"identity": who, "resource": "engineering", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"},
        "connector": "sandbox",
    })
}

/// An initialised data directory whose sandbox has `USERS` more members of engineering, and
/// the findings file.
fn setup() -> (Env, String) {
    let env = Env::new();
    env.init_enabled();
    let mut sandbox = env.sandbox();
    for i in 0..USERS {
        let name = format!("u{i}");
        sandbox["users"][&name] = json!({
            "display_name": name, "status": "active", "sessions": [], "password_must_change": false, "protected": false,
        });
        sandbox["groups"]["engineering"]["members"].as_array_mut().expect("members").push(json!(name));
    }
    env.write_sandbox(&sandbox);
    let lines: String = (0..FINDINGS).map(|i| finding(i).to_string() + "\n").collect();
    let path = env.dir().join("findings.jsonl");
    std::fs::write(&path, lines).expect("write findings");
    let path = path.to_str().expect("utf-8 path").to_owned();
    (env, path)
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    env.command("local:alice", args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn remediate")
}

/// The campaign's cursor, once it is stored (`None` before).
fn cursor(env: &Env, name: &str) -> Option<u64> {
    let run = env.run_as("local:bob", &["campaign", "show", name, "--output", "json"]);
    (run.code == 0).then(|| run.json()["campaign"]["cursor"].as_u64()).flatten()
}

/// Waits until the campaign's import got past `at` entries, with `child` still running.
fn wait_until_past(env: &Env, child: &mut Child, name: &str, at: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(child.try_wait().expect("try_wait").is_none(), "the import ended before it could be interrupted");
        if let Some(c) = cursor(env, name).filter(|c| *c >= at) {
            return c;
        }
        assert!(Instant::now() < deadline, "the import did not get past {at} entries");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_interrupted_or_killed_import_resumes_where_it_stopped_and_creates_nothing_twice() {
    let (env, path) = setup();

    // Ctrl-C: the entry under way is finished, the progress recorded, exit 130.
    let mut child = spawn(&env, &["import", &path, "--campaign", "q4"]);
    wait_until_past(&env, &mut child, "q4", 300);
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "interrupted: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("remediate campaign resume q4"), "{stdout}");
    let stopped = cursor(&env, "q4").expect("stored");
    assert!((300..FINDINGS as u64).contains(&stopped), "stopped in the middle: {stopped}");

    // Resumed, and killed at the worst moment: a batch taken in, its progress not recorded.
    // The entries are taken in again and each finds the action it created.
    let mut child = env
        .command("local:alice", &["campaign", "resume", "q4"])
        .env("REMEDIATION_FAILPOINT", "campaign_before_progress")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn remediate");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let reached =
        lines.by_ref().map_while(Result::ok).any(|l| l.contains("failpoint campaign_before_progress reached"));
    assert!(reached, "the import reached the failpoint");
    let listed = env.expect("local:bob", &["list", "--campaign", "q4", "--output", "json"], 0).json();
    let made = listed.as_array().map_or(0, Vec::len);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(cursor(&env, "q4"), Some(stopped), "the batch's progress was not recorded");
    assert!(made > 0, "the lost batch created actions");

    // Resumed, then SIGKILL in the middle: nothing after the last recorded batch is lost.
    let mut child = spawn(&env, &["campaign", "resume", "q4"]);
    let seen = wait_until_past(&env, &mut child, "q4", stopped + 1_000);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let killed_at = cursor(&env, "q4").expect("stored");
    assert!(killed_at >= seen && killed_at < FINDINGS as u64, "killed in the middle: {killed_at}");
    let show = env.expect("local:bob", &["campaign", "show", "q4"], 0).stdout;
    assert!(show.contains("interrupted: remediate campaign resume q4"), "{show}");

    // Resumed to the end: every finding taken in once, one action per target.
    let done = env.expect("local:alice", &["campaign", "resume", "q4", "--output", "json"], 0).document();
    assert_eq!(done["schema_version"], 1);
    let c = &done["campaign"];
    assert_eq!(c["cursor"], FINDINGS, "{done}");
    assert_eq!(c["outcomes"], json!({"created": USERS, "existing": FINDINGS - USERS}), "{done}");
    assert_eq!(done["actions"], USERS, "{done}");
    assert_eq!(done["states"], json!({"pending_approval": USERS}), "{done}");
    let all = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    let all = all.as_array().expect("array");
    assert_eq!(all.len(), USERS, "no duplicate action anywhere");
    let targets: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|a| a["target"]["identity"].as_str()).collect();
    assert_eq!(targets.len(), USERS, "one action per target");
    assert!(all.iter().all(|a| a["campaign"] == "q4"), "each carries its campaign");
    let again = env.expect("local:alice", &["campaign", "resume", "q4", "--output", "json"], 0).json();
    assert_eq!(again["campaign"]["outcomes"], c["outcomes"], "a finished campaign is left as it is");

    // The campaign as a filter.
    let listed = env.expect("local:bob", &["list", "--campaign", "q4", "--output", "json"], 0).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(USERS));
    assert_eq!(
        env.expect("local:bob", &["list", "--campaign", "q5", "--output", "json"], 0).json(),
        json!([]),
        "another campaign's filter lists nothing"
    );
    let rejected = env.expect("local:bob", &["reject", "--campaign", "q4", "--yes", "--output", "json"], 0).json();
    assert_eq!(rejected["items"].as_array().map(Vec::len), Some(USERS), "{rejected}");
    let listed = env.expect("local:bob", &["campaign", "list", "--output", "json"], 0).json();
    assert_eq!(listed[0]["name"], "q4");
}

#[test]
fn campaign_names_and_unknown_campaigns_are_refused_plainly() {
    let env = Env::new();
    env.init_enabled();
    let run = env.run_with_stdin("local:alice", &["import", "-", "--campaign", "../etc"], "[]");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("may hold only letters"), "{}", run.stderr);
    let run = env.expect("local:bob", &["campaign", "show", "nope"], 4);
    assert!(run.stderr.contains("no campaign named `nope`"), "{}", run.stderr);
    env.expect("local:alice", &["campaign", "resume", "nope"], 4);
    let run = env.run_with_stdin("local:alice", &["import", "-", "--campaign", "empty"], "[]");
    assert_eq!(run.code, 0, "{run:?}");
    let run = env.run_with_stdin("local:alice", &["import", "-", "--campaign", "empty"], "[]");
    assert_eq!(run.code, 3, "a name in use is refused: {run:?}");
    assert!(run.stderr.contains("exists already"), "{}", run.stderr);
    env.edit_config(|t| t.replace("[actors.roles]\n", "[actors.roles]\n\"local:vera\" = \"viewer\"\n"));
    let run = env.run_with_stdin("local:vera", &["import", "-", "--campaign", "viewer"], "[]");
    assert_eq!(run.code, 3, "a viewer cannot import: {run:?}");
    assert!(run.stderr.contains("requester role"), "{}", run.stderr);
    env.expect("local:vera", &["campaign", "show", "empty"], 0);
}
