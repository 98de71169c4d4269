//! Incident response through the real binaries: a person across connections, `respond` with
//! its exit codes locally and with `--server`, and a playbook run approved once, then rolled
//! back by two principals.

use remediation_e2e::Env;
use serde_json::Value;

use crate::server::Server;

/// An enabled installation where `local:rita` is a responder.
fn installation() -> Env {
    let env = Env::new();
    env.init_enabled();
    env.edit_config(|t| t.replace("[actors.roles]\n", "[actors.roles]\n\"local:rita\" = \"responder\"\n"));
    env
}

fn user(env: &Env, name: &str) -> Value {
    env.sandbox()["users"][name].clone()
}

#[test]
fn identities_show_lists_each_connections_view() {
    let env = installation();
    let run = env.expect("local:alice", &["identities", "show", "alice@example.com"], 0);
    assert!(
        run.stdout.contains("sandbox") && run.stdout.contains("alice") && run.stdout.contains("admins"),
        "{}",
        run.stdout
    );
    let json = env.expect("local:alice", &["--output", "json", "identities", "show", "ALICE@example.com"], 0).json();
    assert_eq!(json["accounts"][0]["account"]["id"], "alice", "{json}");
    assert_eq!(json["accounts"][0]["account"]["sessions"], 2, "{json}");
    env.expect("local:alice", &["identities", "show", "nobody@example.com"], 4);
    // An explicit link (admin, audited) names an account no verified key matches.
    env.expect(
        "local:alice",
        &["identities", "link", "ally@corp.example", "--connector", "sandbox", "--account", "alice", "--reason", "x"],
        3,
    );
    env.expect(
        "local:admin",
        &["identities", "link", "ally@corp.example", "--connector", "sandbox", "--account", "nobody", "--reason", "x"],
        4,
    );
    env.expect(
        "local:admin",
        &[
            "identities",
            "link",
            "ally@corp.example",
            "--connector",
            "sandbox",
            "--account",
            "alice",
            "--reason",
            "HR record",
        ],
        0,
    );
    let linked = env.expect("local:alice", &["--output", "json", "identities", "show", "ally@corp.example"], 0).json();
    assert_eq!(linked["accounts"][0]["account"]["id"], "alice", "{linked}");
    assert_eq!(linked["accounts"][0]["account"]["matched_by"], "link", "{linked}");
    env.expect(
        "local:admin",
        &["identities", "link", "ally@corp.example", "--connector", "sandbox", "--remove", "--reason", "left"],
        0,
    );
    env.expect("local:alice", &["identities", "show", "ally@corp.example"], 4);
    let export = env.expect("local:alice", &["audit", "export"], 0);
    assert!(export.stdout.contains("identity_linked") && export.stdout.contains("identity_unlinked"));
    let run = env.expect("local:alice", &["identities", "show", "../etc/passwd"], 2);
    assert!(run.stderr.contains("not a person's email or login"), "{}", run.stderr);
}

#[test]
fn respond_exits_by_the_outcome_and_records_the_responder() {
    let env = installation();
    // A requester may not respond (3); nothing is written.
    env.expect("local:alice", &["respond", "alice@example.com", "--revoke-sessions", "--reason", "leak"], 3);
    assert_eq!(user(&env, "alice")["sessions"].as_array().map(Vec::len), Some(2));
    // The emergency kinds complete at once (0).
    let run = env.expect(
        "local:rita",
        &[
            "respond",
            "alice@example.com",
            "--revoke-sessions",
            "--force-password-reset",
            "--reason",
            "token on a paste site",
        ],
        0,
    );
    assert!(
        run.stdout.contains("completed") && run.stdout.contains("every applicable step completed"),
        "{}",
        run.stdout
    );
    let alice = user(&env, "alice");
    assert_eq!(alice["sessions"].as_array().map(Vec::len), Some(0));
    assert_eq!(alice["password_must_change"], true);
    // Suspend waits for approval: partly done (7).
    let json = env
        .expect(
            "local:rita",
            &["--output", "json", "respond", "bob@example.com", "--revoke-sessions", "--suspend", "--reason", "leak"],
            7,
        )
        .json();
    assert_eq!(json["steps"][1]["status"], "pending_approval", "{json}");
    // Unknown person (4); no action named (2); kill switch on (3).
    env.expect("local:rita", &["respond", "nobody@example.com", "--revoke-sessions", "--reason", "leak"], 4);
    env.expect("local:rita", &["respond", "carol@example.com", "--reason", "leak"], 2);
    env.expect("local:admin", &["kill-switch", "on", "--reason", "drill"], 0);
    env.expect("local:rita", &["respond", "carol@example.com", "--revoke-sessions", "--reason", "leak"], 3);

    // The audit export holds the emergency records with the responder's name.
    let export = env.expect("local:alice", &["audit", "export"], 0);
    assert!(export.stdout.contains("\"event\":\"emergency\""), "{}", export.stdout);
    assert!(export.stdout.contains("emergency response by local:rita"), "{}", export.stdout);
    assert!(export.stdout.matches("incident_response").count() >= 5, "every attempt is recorded");
    env.expect("local:alice", &["audit", "verify"], 0);
}

#[test]
fn respond_with_server_maps_207_to_exit_7() {
    let env = installation();
    let token = crate::server::token(&env, "rita", "responder");
    let server = Server::start(&env);
    let url = format!("http://{}", server.addr);
    let out = env
        .command("local:alice", &["respond", "alice@example.com", "--revoke-sessions", "--suspend", "--reason", "leak"])
        .args(["--server", &url])
        .env("REMEDIATION_TOKEN", &token)
        .output()
        .expect("remediate");
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending_approval"));
    let out = env
        .command("local:alice", &["respond", "nobody@example.com", "--revoke-sessions", "--reason", "leak"])
        .args(["--server", &url])
        .env("REMEDIATION_TOKEN", &token)
        .output()
        .expect("remediate");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_playbook_is_planned_approved_once_run_and_rolled_back() {
    let env = installation();
    let plan = env
        .expect(
            "local:alice",
            &["--output", "json", "playbook", "plan", "compromised-account", "--identity", "alice@example.com"],
            0,
        )
        .json();
    let hash = plan["plan_hash"].as_str().expect("hash").to_owned();
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(5), "{plan}");
    let table =
        env.expect("local:alice", &["playbook", "plan", "compromised-account", "--identity", "alice@example.com"], 0);
    assert!(
        table.stdout.contains(&hash) && table.stdout.contains("/status"),
        "the plan shows each diff: {}",
        table.stdout
    );

    let run = env
        .expect(
            "local:alice",
            &[
                "--output",
                "json",
                "playbook",
                "run",
                "compromised-account",
                "--identity",
                "alice@example.com",
                "--reason",
                "takeover",
                "--plan-hash",
                &hash,
            ],
            0,
        )
        .json();
    let id = run["id"].as_str().expect("id").to_owned();
    assert_eq!(user(&env, "alice")["status"], "active", "nothing ran before approval");
    // The requester cannot approve; an approver can, and the run completes.
    env.expect("local:alice", &["playbook", "approve", &id], 3);
    let done = env.expect("local:bob", &["playbook", "approve", &id, "--plan-hash", &hash], 0);
    assert!(done.stdout.contains("completed"), "{}", done.stdout);
    assert_eq!(user(&env, "alice")["status"], "suspended");
    let runs = env.expect("local:alice", &["playbook", "runs"], 0);
    assert!(runs.stdout.contains(&id) && runs.stdout.contains("completed"), "{}", runs.stdout);
    let listed = env.expect("local:alice", &["--output", "json", "list", "--campaign", &id], 0).json();
    assert_eq!(
        listed.as_array().map(Vec::len).or_else(|| listed["items"].as_array().map(Vec::len)),
        Some(5),
        "{listed}"
    );

    // Rolled back by two principals: the suspension and the membership come back.
    env.expect("local:bob", &["playbook", "rollback", &id, "--reason", "false alarm"], 0);
    env.expect("local:bob", &["playbook", "rollback", &id, "--reason", "false alarm"], 3);
    let undone = env.expect("local:dave", &["playbook", "rollback", &id, "--reason", "confirmed"], 0);
    assert!(undone.stdout.contains("rolled_back") && undone.stdout.contains("not undoable"), "{}", undone.stdout);
    assert_eq!(user(&env, "alice")["status"], "active");
    env.expect("local:alice", &["audit", "verify"], 0);
}
