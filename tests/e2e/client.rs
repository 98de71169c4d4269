//! `remediate --server`: the CLI as a client of the real `remediation-server`. The same
//! session runs once against a local data directory and once against a server (each with its
//! own fresh data directory); every step must print the same thing and exit with the same
//! code, up to action ids, timestamps and hashes.

use std::process::Command;

use remediation_e2e::{Env, Run, remediate_bin};

use super::server::{Server, token};

/// Runs `remediate --server URL ARGS...` with `token` in `REMEDIATION_TOKEN` (none when
/// `None`), from an empty directory, so nothing local can be used by mistake.
pub(crate) fn run_remote(url: &str, token: Option<&str>, args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().expect("cwd");
    let mut cmd = Command::new(remediate_bin());
    cmd.current_dir(cwd.path())
        .args(["--server", url])
        .args(args)
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .env_remove("REMEDIATION_SERVER")
        .env_remove("REMEDIATION_TOKEN");
    if let Some(t) = token {
        cmd.env("REMEDIATION_TOKEN", t);
    }
    let out = cmd.output().expect("run remediate");
    assert!(std::fs::read_dir(cwd.path()).expect("cwd").next().is_none(), "a client wrote to its working directory");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Replaces what differs between two runs of the same session: the session's action id,
/// other UUIDs, RFC 3339 timestamps and 64-hex digests; runs of spaces become one (table
/// columns are as wide as their timestamps). The size and key of the latest signed tree head
/// differ too: each installation has its own key, and the server signs at most once a second
/// where the CLI signs after every command.
fn normalise(text: &str, ids: &[&str]) -> String {
    normalise_fields(text, ids)
        .lines()
        .map(|line| {
            let masked = ["tree head: matches (", "\"key_id\": ", "\"tree_size\": "]
                .iter()
                .find_map(|field| line.split_once(field).map(|(before, _)| format!("{before}{field}<MASKED>")));
            let line = masked.unwrap_or_else(|| line.to_owned());
            // The one hint that differs on purpose: against a server, its worker executes an
            // approved action (`a_session_against_the_server...` checks each side's words).
            if let Some(id) = line
                .strip_prefix("Next: remediate execute ")
                .and_then(|rest| rest.strip_suffix(" (add --dry-run to check first)"))
                .or_else(|| {
                    line.strip_prefix("Next: the server's worker executes it; follow it with `remediate show ")
                        .and_then(|rest| rest.strip_suffix('`'))
                })
            {
                return format!("Next: <EXECUTE {id}>");
            }
            // `list`'s last column, the age (`42s`, `5m`), differs by when each side ran.
            match line.rsplit_once(' ') {
                Some((rest, age))
                    if age
                        .strip_suffix(['s', 'm', 'h', 'd'])
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
                {
                    format!("{rest} <AGE>")
                }
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

fn normalise_fields(text: &str, ids: &[&str]) -> String {
    let mut text = text.to_owned();
    for (n, id) in ids.iter().enumerate().filter(|(_, id)| !id.is_empty()) {
        text = text.replace(id, &format!("<ID{n}>"));
    }
    let b = text.as_bytes();
    let (mut out, mut i) = (String::with_capacity(text.len()), 0);
    let hex = |c: u8| c.is_ascii_hexdigit();
    let digit = |at: usize| b.get(at).is_some_and(u8::is_ascii_digit);
    while i < b.len() {
        // 2026-01-01T00:00:00[.fraction](Z|+hh:mm)
        if (0..4).all(|k| digit(i + k)) && b.get(i + 4) == Some(&b'-') && b.get(i + 10) == Some(&b'T') {
            let mut j = i + 11;
            while j < b.len() && (b[j].is_ascii_digit() || b":.Z+-".contains(&b[j])) {
                j += 1;
            }
            out.push_str("<TS>");
            i = j;
            continue;
        }
        let run = b[i..].iter().take_while(|c| hex(**c) || **c == b'-').count();
        let at_word_start = i == 0 || !(hex(b[i - 1]) || b[i - 1] == b'-');
        if at_word_start && run == 36 && [8, 13, 18, 23].iter().all(|k| b[i + k] == b'-') {
            out.push_str("<UUID>");
            i += 36;
            continue;
        }
        let hexrun = b[i..].iter().take_while(|c| hex(**c)).count();
        if at_word_start && hexrun == 64 {
            out.push_str("<HASH>");
            i += 64;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or_default();
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
        i += c.len_utf8().max(1);
    }
    out
}

/// `text` without the `"credential": "..."` members of JSON objects: the server records the
/// token a principal used, a local actor has none.
fn without_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        // Pretty JSON: the member is a line of its own.
        if line.trim_start().starts_with("\"credential\":") {
            continue;
        }
        // Compact JSON (audit export): `"credential":"NAME",` inside the line; names hold no quote.
        let mut rest = line;
        while let Some(at) = rest.find("\"credential\":\"") {
            out.push_str(&rest[..at]);
            let value = &rest[at + "\"credential\":\"".len()..];
            let end = value.find('"').map_or(value.len(), |e| e + 1);
            rest = value[end..].strip_prefix(',').unwrap_or(&value[end..]);
        }
        out.push_str(rest);
    }
    out
}

/// A fresh data directory with remediation enabled; alice requests, bob approves, carol
/// administers (names the server's tokens carry too, so actor names match).
fn env_with_admin() -> Env {
    let env = Env::new();
    env.init_enabled();
    env.edit_config(|t| {
        let t = t.replace(
            "[actors.roles]\n",
            "[actors.roles]\n\"alice\" = \"requester\"\n\"bob\" = \"approver\"\n\"carol\" = \"admin\"\n\"dave\" = \"admin\"\n\"vera\" = \"viewer\"\n",
        );
        // The worker never runs during the session: the client executes, as the CLI does.
        format!("{t}\n[server]\nworker_interval_secs = 3600\n")
    });
    env
}

/// The local side of a comparison: the same tokens as the server's data directory holds, so
/// both audit trails record the same token creations.
fn local_env() -> Env {
    let env = env_with_admin();
    for (name, role) in
        [("alice", "requester"), ("bob", "approver"), ("carol", "admin"), ("dave", "admin"), ("vera", "viewer")]
    {
        token(&env, name, role);
    }
    env
}

pub(crate) struct Remote {
    env: Env,
    server: Server,
    url: String,
    tokens: Vec<(&'static str, String)>,
}

impl Remote {
    pub(crate) fn start() -> Self {
        let env = env_with_admin();
        let tokens = vec![
            ("alice", token(&env, "alice", "requester")),
            ("bob", token(&env, "bob", "approver")),
            ("carol", token(&env, "carol", "admin")),
            ("dave", token(&env, "dave", "admin")),
            ("vera", token(&env, "vera", "viewer")),
        ];
        let server = Server::start(&env);
        let url = format!("http://{}", server.addr);
        Self { env, server, url, tokens }
    }

    fn token(&self, actor: &str) -> &str {
        self.tokens.iter().find(|(a, _)| *a == actor).map(|(_, t)| t.as_str()).expect("a token for the actor")
    }

    pub(crate) fn run(&self, actor: &str, args: &[&str]) -> Run {
        run_remote(&self.url, Some(self.token(actor)), args)
    }
}

/// The main tests' suggestion, without their `--output json`: tables are what is compared.
const SUGGEST: &[&str] = crate::REVOKE_ALICE_ADMINS.split_at(crate::REVOKE_ALICE_ADMINS.len() - 2).0;

#[test]
fn a_session_against_the_server_prints_and_exits_exactly_as_locally() {
    let local = local_env();
    let remote = Remote::start();

    // Suggest first: it names the action the rest of the session works on.
    let l = local.run_as("alice", SUGGEST);
    let r = remote.run("alice", SUGGEST);
    assert_eq!((l.code, r.code), (0, 0), "local:\n{l:?}\nremote:\n{r:?}");
    let first_word = |run: &Run| run.stdout.split_whitespace().next().unwrap_or_default().to_owned();
    let (lid, rid) = (first_word(&l), first_word(&r));
    assert_eq!(normalise(&l.stdout, &[&lid]), normalise(&r.stdout, &[&rid]));

    let missing = "00000000-0000-7000-8000-000000000000";
    // (actor, arguments with ID for the session's action, expected exit code)
    let session: &[(&str, &[&str], i32)] = &[
        ("alice", &["approve", "ID"], 3), // separation of duties
        ("bob", &["execute", "ID"], 3),   // not approved yet: illegal in the lifecycle
        ("bob", &["promote", "ID"], 3),   // not advisory guidance
        ("vera", &["approve", "ID"], 3),  // a viewer approves nothing
        ("bob", &["show", "ID"], 0),
        ("bob", &["approve", "ID", "--note", "checked with the owner"], 0),
        ("bob", &["plan", "ID"], 0),
        ("bob", &["plan", "ID", "--output", "json"], 0),
        ("bob", &["execute", "ID", "--dry-run"], 0),
        ("bob", &["execute", "ID", "--dry-run", "--output", "json"], 0),
        ("bob", &["execute", "ID"], 0),
        ("bob", &["execute", "ID"], 3), // already completed
        ("bob", &["show", "ID"], 0),
        ("bob", &["show", "ID", "--output", "json"], 0),
        ("bob", &["list"], 0),
        ("bob", &["list", "--state", "completed", "--output", "json"], 0),
        ("bob", &["list", "--limit", "1", "--output", "json"], 0),
        // No connector named and none can: refused alike, listing the candidates.
        (
            "alice",
            &["suggest", "--kind", "revoke", "--identity", "alice", "--grant-type", "mainframe_racf", "--reason", "x"],
            2,
        ),
        ("bob", &["show", missing], 4),
        ("bob", &["connectors"], 0),
        ("bob", &["connectors", "--output", "json"], 0),
        ("bob", &["limits", "status"], 0),
        ("bob", &["held", "list"], 0),
        ("bob", &["rollback", "ID", "--note", "undo"], 3), // waits for a second approver
        ("bob", &["show", "ID"], 0),
        ("bob", &["approve", "ID"], 3), // bob asked for this rollback
        ("carol", &["approve", "ID", "--note", "confirmed"], 0),
        ("bob", &["rollback", "ID"], 3),
        ("bob", &["show", "ID"], 0),
        ("bob", &["reject", "ID"], 3),
        ("alice", &["cancel", "ID", "--note", "too late"], 3),
        ("carol", &["release", "ID"], 3),
        ("carol", &["force-execute", "ID", "--reason", "not held"], 3),
        ("carol", &["settings", "show"], 0),
        ("carol", &["settings", "set", "rollback_window_secs", "7200", "--reason", "review"], 0),
        ("carol", &["settings", "set", "nonsense", "1", "--reason", "typo"], 2),
        ("carol", &["controls", "set", "mfa", "--never-auto", "true", "--reason", "policy"], 0),
        ("carol", &["controls", "list"], 0),
        ("bob", &["controls", "show", "mfa"], 0),
        ("bob", &["controls", "show", "nope"], 4),
        ("carol", &["settings", "show"], 0),
        ("carol", &["kill-switch", "on", "--reason", "drill"], 0),
        ("bob", &["kill-switch", "status"], 0),
        // Off waits for a second admin: the proposer cannot confirm, another admin does.
        ("carol", &["kill-switch", "off", "--reason", "drill over"], 0),
        ("bob", &["pending", "list"], 0),
        ("carol", &["pending", "confirm", "CHANGE"], 3),
        ("bob", &["pending", "confirm", "CHANGE"], 3),
        ("dave", &["pending", "confirm", "CHANGE", "--note", "drill is over"], 0),
        ("bob", &["kill-switch", "status"], 0),
        ("bob", &["pending", "list", "--all"], 0),
        ("carol", &["breaker", "reset", "--reason", "drill"], 0),
        ("bob", &["breaker", "status", "--output", "json"], 0),
        ("bob", &["audit", "verify"], 0),
        ("bob", &["audit", "verify", "--output", "json"], 0),
        ("bob", &["audit", "export"], 0),
    ];
    // The newest change waiting for a second admin, on each side.
    let change = |run: Run| run.json().as_array().and_then(|a| a.last()).map(|c| c["id"].to_string().replace('"', ""));
    for (actor, args, code) in session {
        let (lchange, rchange) = if args.contains(&"CHANGE") {
            let list = ["pending", "list", "--output", "json"];
            (
                change(local.run_as("bob", &list)).unwrap_or_default(),
                change(remote.run("bob", &list)).unwrap_or_default(),
            )
        } else {
            (String::new(), String::new())
        };
        let with = |id: &str, change: &str| {
            args.iter()
                .map(|a| match *a {
                    "ID" => id.to_owned(),
                    "CHANGE" => change.to_owned(),
                    a => a.to_owned(),
                })
                .collect()
        };
        let (largs, rargs): (Vec<String>, Vec<String>) = (with(&lid, &lchange), with(&rid, &rchange));
        let l = local.run_as(actor, &largs.iter().map(String::as_str).collect::<Vec<_>>());
        let r = remote.run(actor, &rargs.iter().map(String::as_str).collect::<Vec<_>>());
        let context = format!("`{}` as {actor}\nlocal: {l:?}\nremote: {r:?}", args.join(" "));
        assert_eq!(l.code, *code, "{context}");
        assert_eq!(r.code, *code, "{context}");
        if args.contains(&"mainframe_racf") {
            assert!(l.stderr.contains("sandbox: no capability"), "{context}");
            assert!(r.stderr.contains("sandbox: no capability"), "{context}");
        }
        // An approval's hint fits where it ran: locally one executes, a server's worker does.
        if l.stdout.contains(" approved (approved by ") {
            assert!(l.stdout.contains("Next: remediate execute "), "{context}");
            assert!(r.stdout.contains("Next: the server's worker executes it"), "{context}");
        }
        assert_eq!(
            normalise(&without_credentials(&l.stdout), &[&lid]),
            normalise(&without_credentials(&r.stdout), &[&rid]),
            "{context}"
        );
        for (_, t) in &remote.tokens {
            assert!(!r.stdout.contains(t.as_str()) && !r.stderr.contains(t.as_str()), "a token in the output");
        }
    }
    let log = remote.server.log();
    assert!(remote.tokens.iter().all(|(_, t)| !log.contains(t.as_str())), "a token in the server log");
}

/// Prepares the provider before a step: `fault:NAME` sets a sandbox fault switch,
/// `session:USER` signs the user in once more (a change made outside the engine).
fn prepare(env: &Env, what: &str) {
    let mut dir = env.sandbox();
    match what.split_once(':') {
        Some(("fault", name)) => dir["faults"][name] = serde_json::Value::Bool(true),
        Some(("session", user)) => {
            dir["users"][user]["sessions"].as_array_mut().expect("sessions").push("s-new".into());
        }
        _ => panic!("unknown preparation {what}"),
    }
    env.write_sandbox(&dir);
}

#[test]
fn provider_failures_plan_changes_and_a_broken_chain_exit_alike() {
    let local = local_env();
    let remote = Remote::start();
    let mut ids: Vec<(String, String)> = Vec::new();
    let suspend_carol: &[&str] = &[
        "suggest",
        "--connector",
        "sandbox",
        "--kind",
        "suspend",
        "--identity",
        "carol",
        "--grant-type",
        "account",
        "--reason",
        "compromised",
    ];
    let mut revoke_engineering = SUGGEST.to_vec();
    revoke_engineering[8] = "engineering";
    // (actor, arguments: ID0/ID1 for the session's actions, preparation, exit code)
    let session: &[(&str, &[&str], Option<&str>, i32)] = &[
        ("alice", suspend_carol, None, 0),
        ("bob", &["approve", "ID0"], None, 0),
        ("bob", &["execute", "ID0"], Some("session:carol"), 3), // plan changed
        ("bob", &["show", "ID0"], None, 0),
        ("bob", &["approve", "ID0"], None, 0),
        ("bob", &["execute", "ID0", "--output", "json"], None, 0),
        ("bob", &["rollback", "ID0"], Some("fault:fail_rollback"), 3),
        ("carol", &["approve", "ID0"], None, 5),
        ("carol", &revoke_engineering, None, 0),
        ("bob", &["approve", "ID1"], None, 0),
        ("bob", &["execute", "ID1"], Some("fault:fail_after_write"), 5),
        ("bob", &["list"], None, 0),
    ];
    for (actor, args, set_fault, code) in session {
        if let Some(what) = set_fault {
            prepare(&local, what);
            prepare(&remote.env, what);
        }
        let pick = |n: usize| ids.get(n).cloned().unwrap_or_default();
        let with = |local_side: bool| -> Vec<String> {
            args.iter()
                .map(|a| match *a {
                    "ID0" | "ID1" => {
                        let (l, r) = pick(usize::from(*a == "ID1"));
                        if local_side { l } else { r }
                    }
                    other => other.to_owned(),
                })
                .collect()
        };
        let (largs, rargs) = (with(true), with(false));
        let l = local.run_as(actor, &largs.iter().map(String::as_str).collect::<Vec<_>>());
        let r = remote.run(actor, &rargs.iter().map(String::as_str).collect::<Vec<_>>());
        let context = format!("`{}` as {actor}\nlocal: {l:?}\nremote: {r:?}", args.join(" "));
        assert_eq!((l.code, r.code), (*code, *code), "{context}");
        if args[0] == "suggest" {
            let first_word = |run: &Run| run.stdout.split_whitespace().next().unwrap_or_default().to_owned();
            ids.push((first_word(&l), first_word(&r)));
        }
        let lids: Vec<&str> = ids.iter().map(|(l, _)| l.as_str()).collect();
        let rids: Vec<&str> = ids.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(normalise(&l.stdout, &lids), normalise(&r.stdout, &rids), "{context}");
    }
    // Cut the last records off both chains: `audit verify` exits 6 either way.
    for env in [&local, &remote.env] {
        rusqlite::Connection::open(env.dir().join("remediation.db"))
            .expect("store")
            .execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq > 4;")
            .expect("cut off the tail");
    }
    for args in [&["audit", "verify"][..], &["audit", "verify", "--output", "json"]] {
        let (l, r) = (local.run_as("bob", args), remote.run("bob", args));
        assert_eq!((l.code, r.code), (6, 6), "{args:?}\nlocal: {l:?}\nremote: {r:?}");
        assert_eq!(normalise(&l.stdout, &[]), normalise(&r.stdout, &[]));
    }
}

#[test]
fn a_finding_file_goes_through_the_servers_intake_once() {
    let remote = Remote::start();
    let finding = serde_json::json!({
        "id": "f-1",
        "source": "scanner",
        "control_id": "least-privilege",
        "severity": "high",
        "title": "standing admin access",
        "connector": "sandbox",
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"},
    });
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("finding.json");
    std::fs::write(&path, finding.to_string()).expect("finding");
    let path = path.to_str().expect("utf-8 path");
    let first = remote.run("alice", &["suggest", "--finding", path, "--output", "json"]);
    assert_eq!(first.code, 0, "{first:?}");
    let first = first.json();
    assert_eq!(first["intake"], "created", "{first}");
    let again = remote.run("alice", &["suggest", "--finding", path]);
    assert_eq!(again.code, 0, "{again:?}");
    let id = first["action"]["id"].as_str().expect("id");
    assert!(again.stdout.starts_with(id) && again.stdout.contains("already open"), "{}", again.stdout);
    let list = remote.run("bob", &["list", "--output", "json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

#[test]
fn wrong_or_missing_tokens_and_a_server_that_is_down_say_so() {
    let remote = Remote::start();
    let wrong = "rmt_0000000000000000000000000000000000000000000000000000000000000000";
    let run = run_remote(&remote.url, Some(wrong), &["list"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("REMEDIATION_TOKEN"), "{}", run.stderr);
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong), "the token is echoed");

    let run = run_remote(&remote.url, None, &["list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("REMEDIATION_TOKEN") && run.stderr.contains(&remote.url), "{}", run.stderr);

    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let down = format!("http://127.0.0.1:{port}");
    let run = run_remote(&down, Some(remote.token("bob")), &["list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&format!("cannot reach the server at {down}")), "{}", run.stderr);
    assert!(!run.stderr.contains(remote.token("bob")), "the token is echoed");

    // Commands that only make sense on the server's own data directory.
    for args in [
        &["init"][..],
        &["demo"],
        &["recover"],
        &["token", "create", "--principal", "x", "--name", "x"],
        &["principal", "list"],
        &["emergency-access", "status"],
    ] {
        let run = remote.run("carol", args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains("works only on a local data directory"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_scanners_document_gets_the_same_answer_from_the_server_as_locally() {
    let local = local_env();
    let remote = Remote::start();
    let path = format!("{}/fixtures/findings/prowler-ocsf.json", env!("CARGO_MANIFEST_DIR"));
    let args = ["suggest", "--finding", path.as_str(), "--output", "json"];
    let l = local.run_as("alice", &args);
    let r = remote.run("alice", &args);
    // No connector `aws` in either: the mapped findings are refused one by one (exit 3).
    assert_eq!((l.code, r.code), (3, 3), "local:\n{l:?}\nremote:\n{r:?}");
    assert_eq!(l.json(), r.json());
    assert_eq!(l.json()["entries"][4]["intake"], "failed");
    assert_eq!(l.json()["entries"][6]["intake"], "unsupported");
    let args = ["suggest", "--finding", path.as_str(), "--finding-format", "asff"];
    let (l, r) = (local.run_as("alice", &args), remote.run("alice", &args));
    assert_eq!((l.code, r.code), (2, 2), "local:\n{l:?}\nremote:\n{r:?}");
    assert!(r.stderr.contains("declared asff but is prowler-ocsf"), "{}", r.stderr);
}
