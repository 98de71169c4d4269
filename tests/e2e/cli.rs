//! The command line's own surface as a person meets it: `list`'s columns, colour and width,
//! help with examples and possible values, shell completions and the man page, the instants
//! `--since` accepts, and refusals that say what to do next.

use std::path::Path;
use std::process::{Command, Stdio};

use remediation_e2e::{Env, Run, remediate_bin};
use serde_json::Value;

use crate::REVOKE_ALICE_ADMINS;

/// Runs `remediate --data-dir DIR --actor ACTOR ARGS...` with `vars` set (and `NO_COLOR`,
/// `COLUMNS` removed unless given), standard output a pipe.
fn run_env(env: &Env, actor: &str, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(remediate_bin());
    cmd.arg("--data-dir").arg(env.dir()).args(["--actor", actor]).args(args);
    clean_env(&mut cmd, vars);
    let out = cmd.output().expect("run remediate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn clean_env(cmd: &mut Command, vars: &[(&str, &str)]) {
    cmd.env("USER", "e2e-runner");
    for v in
        ["REMEDIATION_CONFIG", "REMEDIATION_DATA_DIR", "REMEDIATION_SERVER", "REMEDIATION_TOKEN", "NO_COLOR", "COLUMNS"]
    {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
}

/// Runs `remediate --data-dir DIR ARGS...` on a pseudo-terminal (util-linux `script`), its
/// terminal `columns` wide; `None` (with the reason printed) where `script` is missing.
fn run_pty(env: &Env, args: &[&str], columns: u16, vars: &[(&str, &str)]) -> Option<Run> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED the terminal part: util-linux `script` is not installed");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = format!("stty cols {columns} rows 50; {}", quote(remediate_bin().to_str().expect("utf-8 path")));
    for a in ["--data-dir", env.dir().to_str().expect("utf-8 path")].iter().chain(args) {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).stdin(Stdio::null());
    clean_env(&mut cmd, vars);
    let out = cmd.output().expect("run script");
    Some(Run {
        code: out.status.code().unwrap_or(-1),
        // The terminal turns each line break into CR LF.
        stdout: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `text` without its ANSI escape sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A suggestion of a notification to `identity`, a user added to the sandbox first.
fn suggest_notify(env: &Env, identity: &str) -> Value {
    let mut dir = env.sandbox();
    dir["users"][identity] = serde_json::json!({"display_name": "Long", "status": "active"});
    env.write_sandbox(&dir);
    let args = [
        "suggest",
        "--connector",
        "sandbox",
        "--kind",
        "notify",
        "--identity",
        identity,
        "--grant-type",
        "notification",
        "--reason=x",
        "--output",
        "json",
    ];
    env.expect("local:alice", &args, 0).json()
}

/// The cells of `line`, split at runs of two or more spaces.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[test]
fn list_shows_the_risk_the_engine_judged_and_a_relative_age() {
    let env = Env::new();
    env.init_enabled();
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id");
    let risk = &suggested["decision"]["risk"];
    let expected_risk = format!("{} ({})", risk["level"].as_str().expect("level"), risk["score"]);

    let table = env.expect("local:bob", &["list"], 0).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(cells(lines[0]), ["#", "ID", "STATE", "RISK", "KIND", "TARGET", "CONNECTOR", "REQUESTED BY", "AGE"]);
    let row = cells(lines[1]);
    assert_eq!(row[0], "#1", "the first action's handle:\n{table}");
    assert_eq!(row[1], id, "{table}");
    assert_eq!(row[2], "pending_approval", "{table}");
    assert_eq!(row[3], expected_risk, "the risk the gates judged at suggestion:\n{table}");
    let age = row[8];
    let (number, unit) = age.split_at(age.len() - 1);
    assert!(number.parse::<u64>().is_ok() && ["s", "m"].contains(&unit), "age `{age}` in\n{table}");
    assert!(!table.contains("T0") && !table.contains("T1") && !table.contains("T2"), "no timestamps:\n{table}");

    // JSON keeps RFC 3339 timestamps and has no display columns.
    let json = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    let first = &json[0];
    for field in ["created_at", "updated_at"] {
        let t = first[field].as_str().expect(field);
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).expect("RFC 3339");
    }
    assert!(first.get("age").is_none() && first.get("risk").is_none(), "{first}");
}

#[test]
fn a_handle_is_accepted_wherever_an_id_is() {
    let env = Env::new();
    env.init_enabled();
    let first = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = first["action"]["id"].as_str().expect("id").to_owned();
    assert_eq!(first["action"]["handle"], 1, "{first}");
    let shown = env.expect("local:bob", &["show", "#1", "--output", "json"], 0).json();
    assert_eq!(shown["action"]["id"], id.as_str());
    env.expect("local:bob", &["plan", "1"], 0);
    let approved = env.expect("local:bob", &["approve", "#1", "--output", "json"], 0).json();
    assert_eq!(approved["state"], "approved", "{approved}");
    let run = env.expect("local:bob", &["show", "#2"], 4);
    assert!(run.stderr.contains("no action #2"), "{}", run.stderr);
    let run = env.expect("local:bob", &["show", "#x"], 2);
    assert!(run.stderr.contains("handle (`#1234` or `1234`)"), "{}", run.stderr);
    // Two handles and an id in one bulk command.
    env.expect("local:alice", &crate::safety::revoke_carol_engineering(&[]), 0);
    let run = env.expect("local:alice", &["cancel", "#1", "2", "--yes", "--output", "json"], 0).json();
    assert_eq!(run["items"].as_array().map(Vec::len), Some(2), "{run}");
}

#[test]
fn an_empty_list_says_so_and_json_is_an_empty_array() {
    let env = Env::new();
    env.init_enabled();
    assert_eq!(env.expect("local:bob", &["list"], 0).stdout, "No actions found.\n");
    assert_eq!(env.expect("local:bob", &["list", "--state", "completed"], 0).stdout, "No actions found.\n");
    assert_eq!(
        env.expect("local:bob", &["list", "--output", "json"], 0).stdout,
        "{\n  \"items\": [],\n  \"schema_version\": 1\n}\n"
    );
}

#[test]
fn piped_list_is_neither_coloured_nor_cut() {
    let env = Env::new();
    env.init_enabled();
    let long = format!("someone-{}", "x".repeat(150));
    suggest_notify(&env, &long);
    env.expect("local:alice", REVOKE_ALICE_ADMINS, 0);
    for vars in [&[][..], &[("COLUMNS", "60")], &[("NO_COLOR", "1")]] {
        let run = run_env(&env, "local:bob", &["list"], vars);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(!run.stdout.contains('\u{1b}'), "{vars:?}: ANSI escapes in piped output:\n{}", run.stdout);
        assert!(run.stdout.contains(&long), "{vars:?}: the long target is cut:\n{}", run.stdout);
        assert!(!run.stdout.contains('…'), "{vars:?}:\n{}", run.stdout);
    }
}

#[test]
fn on_a_terminal_list_is_coloured_and_fits_unless_no_color() {
    let env = Env::new();
    env.init_enabled();
    let long = format!("someone-{}", "x".repeat(150));
    let notify = suggest_notify(&env, &long);
    let id = notify["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:alice", REVOKE_ALICE_ADMINS, 0);
    let Some(run) = run_pty(&env, &["--actor", "local:bob", "list"], 100, &[]) else {
        return;
    };
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("\u{1b}[33mpending_approval\u{1b}[0m"), "the state in yellow:\n{:?}", run.stdout);
    let plain = strip_ansi(&run.stdout);
    for line in plain.lines() {
        assert!(line.chars().count() <= 100, "wider than the terminal: {line}");
    }
    let row = plain.lines().find(|l| l.contains(&id)).expect("the notification's row");
    assert!(row.contains('…') && !row.contains(&long), "the long target is cut: {row}");
    assert!(row.starts_with(&format!("#1  {id}  pending_approval")), "handle, id and state whole: {row}");

    for no_color in ["1", "yes"] {
        let run = run_pty(&env, &["--actor", "local:bob", "list"], 100, &[("NO_COLOR", no_color)]).expect("script");
        assert_eq!(run.code, 0, "{run:?}");
        assert!(!run.stdout.contains('\u{1b}'), "NO_COLOR={no_color}: ANSI escapes:\n{:?}", run.stdout);
        assert!(run.stdout.contains('…'), "still fitted to the terminal:\n{}", run.stdout);
    }
    // An empty NO_COLOR does not count (no-color.org).
    let run = run_pty(&env, &["--actor", "local:bob", "list"], 100, &[("NO_COLOR", "")]).expect("script");
    assert!(run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
}

/// The subcommands named in the `Commands:` section of `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| l.len() > 2 && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect()
}

fn help(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = Command::new(remediate_bin()).args(&args).env("COLUMNS", "200").output().expect("run remediate");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_subcommand_help_has_an_example_and_names_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let mut todo: Vec<Vec<String>> = subcommands(&help(&[])).into_iter().map(|c| vec![c]).collect();
    assert!(todo.len() > 20, "{todo:?}");
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let text = help(&path);
        seen += 1;
        assert!(text.contains("Examples:\n  remediate "), "`{}` --help has no example:\n{text}", path.join(" "));
        for word in text.split(|c: char| c.is_whitespace() || "`()[],;\"'".contains(c)) {
            let word = word.trim_end_matches(['.', ':']);
            let repo_file =
                (word.starts_with("schemas/") || word.starts_with("tests/")) && Path::new(word).extension().is_some();
            if repo_file {
                assert!(root.join(word).is_file(), "`{}` --help names {word}, which does not exist", path.join(" "));
            }
        }
        for sub in subcommands(&text) {
            todo.push([path.clone(), vec![sub]].concat());
        }
    }
    assert!(seen > 60, "only {seen} subcommands walked");
}

#[test]
fn enum_flags_list_their_possible_values() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["list"], &["suggested", "pending_approval", "completed", "dry_run"]),
        (&["suggest"], &["revoke", "suspend", "revoke_sessions", "rotate", "finding", "prowler-ocsf", "asff", "ocsf"]),
        (&["controls", "set"], &["advisory", "manual", "auto", "unknown", "passing", "failing"]),
        (&["principal", "create"], &["viewer", "requester", "approver", "admin", "person", "service"]),
        (&["completions"], &["bash", "zsh", "fish", "powershell", "elvish"]),
        (&["list"], &["table", "json"]),
    ];
    for (path, values) in cases {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        let text = help(&path);
        assert!(text.contains("[possible values: ") || text.contains("Possible values:"), "{path:?}:\n{text}");
        for v in *values {
            let listed = [format!(" {v},"), format!(" {v}]"), format!("- {v}:")];
            assert!(listed.iter().any(|l| text.contains(l.as_str())), "{path:?} lacks {v}:\n{text}");
        }
    }
    // A value outside the list is a usage error that names the valid ones.
    let env = Env::new();
    env.init_enabled();
    let run = env.expect("local:bob", &["list", "--state", "done"], 2);
    assert!(run.stderr.contains("pending_approval"), "{}", run.stderr);
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef remediate"),
        ("fish", "complete -c remediate"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[remediate]"),
    ] {
        let out = Command::new(remediate_bin()).args(["completions", shell]).output().expect("run");
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell} script lacks `{marker}`");
        assert!(script.contains("force-execute"), "{shell}: the subcommands");
        // PowerShell's and Elvish's scripts complete subcommands and flags only.
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(script.contains("pending_approval"), "{shell}: the values of --state");
        }
    }
    let bad = Command::new(remediate_bin()).args(["completions", "tcsh"]).output().expect("run");
    assert_eq!(bad.status.code(), Some(2));

    let out = Command::new(remediate_bin()).arg("man").output().expect("run");
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH remediate 1"), "{page}");
    assert!(page.contains("force\\-execute") && page.contains("Exit codes"), "{page}");
}

#[test]
fn since_takes_a_date_a_timestamp_or_an_age() {
    let env = Env::new();
    env.init_enabled();
    env.expect("local:alice", REVOKE_ALICE_ADMINS, 0);
    let records = |since: &str| {
        let run = env.expect("local:bob", &["audit", "export", "--since", since], 0);
        run.stdout.lines().count()
    };
    let all = records("2000-01-01");
    assert!(all > 0);
    let today = time::OffsetDateTime::now_utc().date();
    assert_eq!(records(&today.to_string()), all, "today's date takes the whole day");
    assert_eq!(records("1d"), all);
    assert_eq!(records("2000-01-01T00:00:00Z"), all);
    assert_eq!(records(&(today + time::Duration::days(2)).to_string()), 0);
    assert_eq!(records("2999-01-01T00:00:00+02:00"), 0);
    for bad in ["yesterday", "2026-13-01", "7y", "-3d"] {
        let run = env.expect("local:bob", &["audit", "export", &format!("--since={bad}")], 2);
        assert!(
            run.stderr.contains("is not an instant: give a date (2026-12-01, midnight UTC), an RFC 3339 timestamp"),
            "{bad}: {}",
            run.stderr
        );
    }
}

/// Each refusal because of an action's state says where it stands and the command to run.
#[test]
fn refusals_say_what_to_do_next() {
    let env = Env::new();
    env.init_enabled();
    let suggested = env.expect("local:alice", REVOKE_ALICE_ADMINS, 0).json();
    let id = suggested["action"]["id"].as_str().expect("id");
    let check = |actor: &str, args: &[&str], expected: String| {
        let run = env.expect(actor, args, 3);
        assert_eq!(run.stderr.trim_end(), format!("error: {expected}"), "{args:?}");
    };
    check(
        "local:bob",
        &["execute", id],
        format!(
            "cannot execute action {id}: it is waiting for approval (pending_approval); approve it first: remediate approve {id}"
        ),
    );
    check(
        "local:admin",
        &["release", id],
        format!(
            "cannot release action {id}: it is waiting for approval (pending_approval); approve it first: remediate approve {id}"
        ),
    );
    env.expect("local:bob", &["approve", id], 0);
    check(
        "local:dave",
        &["approve", id],
        format!(
            "cannot approve action {id}: it is approved and not yet executed (approved); it needs no further approval; execute it: remediate execute {id}"
        ),
    );
    env.expect("local:bob", &["execute", id], 0);
    check(
        "local:bob",
        &["execute", id],
        format!(
            "cannot execute action {id}: it is completed: the change is in place (completed); to undo the change: remediate rollback {id}"
        ),
    );
    check(
        "local:alice",
        &["cancel", id],
        format!(
            "cannot cancel action {id}: it is completed: the change is in place (completed); to undo the change: remediate rollback {id}"
        ),
    );
    // JSON output does not change the error, which goes to standard error either way.
    let run = env.expect("local:bob", &["execute", id, "--output", "json"], 3);
    assert!(run.stdout.is_empty() && run.stderr.contains("remediate rollback"), "{run:?}");
}

/// Against a server the refusal reads the same: the API's `current_state` names the state.
#[test]
fn refusals_through_the_server_say_what_to_do_next() {
    let remote = crate::client::Remote::start();
    let suggest = &REVOKE_ALICE_ADMINS[..REVOKE_ALICE_ADMINS.len() - 2];
    let run = remote.run("alice", suggest);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.stdout.split_whitespace().next().expect("id").to_owned();
    let run = remote.run("bob", &["execute", &id]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: cannot execute action {id}: it is waiting for approval (pending_approval); approve it first: remediate approve {id}"
        )
    );
    // A refusal because of the role is left as the server said it.
    let run = remote.run("vera", &["approve", &id]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(!run.stderr.contains("cannot approve action") && run.stderr.contains("viewer"), "{}", run.stderr);
}
