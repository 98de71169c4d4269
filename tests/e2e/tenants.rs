//! Tenants through the real binaries: a second tenant with its own connector, actions,
//! settings, tokens, kill switch and audit log; the CLI's `--tenant`, the server's
//! `/v1/tenants/{tenant}/` routes, the installation's kill switch and `settings copy`.

use remediation_e2e::Env;
use serde_json::Value;

use crate::server::{Server, request};

/// An installation with tenant `acme` and its own sandbox directory and connector.
fn two_tenants() -> Env {
    let env = Env::new();
    env.init_enabled();
    env.expect("local:admin", &["tenants", "create", "acme", "--description", "the test tenant"], 0);
    std::fs::copy(env.dir().join("sandbox.json"), env.dir().join("sandbox-acme.json")).expect("copy the sandbox");
    env.edit_config(|t| {
        format!(
            "{t}\n[server]\nworker_interval_secs = 1\n\n[[connectors]]\ntype = \"sandbox\"\nid = \"sandbox-acme\"\ntenant = \"acme\"\npath = \"sandbox-acme.json\"\n"
        )
    });
    env
}

fn members(env: &Env, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(env.dir().join(file)).expect("sandbox file");
    let dir: Value = serde_json::from_str(&text).expect("sandbox JSON");
    dir["groups"]["admins"]["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn revoke(connector: &str) -> Vec<String> {
    [
        "suggest",
        "--connector",
        connector,
        "--kind",
        "revoke",
        "--identity",
        "alice",
        "--resource",
        "admins",
        "--grant-type",
        "group_membership",
        "--reason",
        "left the team",
        "--output",
        "json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn with_tenant(tenant: &str, args: &[String]) -> Vec<String> {
    let mut all = vec!["--tenant".to_owned(), tenant.to_owned()];
    all.extend(args.iter().cloned());
    all
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_tenant_acts_on_its_own_directory_only() {
    let env = two_tenants();
    let tenants = env.expect("local:admin", &["tenants", "list", "--output", "json"], 0).json();
    let names: Vec<&str> = tenants.as_array().expect("a list").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["default", "acme"]);
    // A name that could change a path or a URL is refused before anything is done.
    env.expect("local:admin", &["tenants", "create", "../etc"], 2);
    env.expect("local:admin", &["tenants", "create", "acme"], 3);
    env.expect("local:admin", &["--tenant", "nope", "list"], 4);
    // A requester cannot create tenants.
    env.expect("local:alice", &["tenants", "create", "other"], 3);

    // acme's connector is acme's: the default tenant's is unknown there, and the other way round.
    let refused = env.expect("local:alice", &strs(&with_tenant("acme", &revoke("sandbox"))), 4);
    assert!(refused.stderr.contains("no connector named `sandbox`"), "{}", refused.stderr);
    env.expect("local:alice", &strs(&revoke("sandbox-acme")), 4);

    let suggested = env.expect("local:alice", &strs(&with_tenant("acme", &revoke("sandbox-acme"))), 0).json();
    let id = suggested["action"]["id"].as_str().expect("id").to_owned();
    let default_list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    assert_eq!(default_list.as_array().map(Vec::len), Some(0), "the default tenant sees none of acme's");
    env.expect("local:bob", &["show", &id], 4);
    env.expect("local:bob", &["--tenant", "acme", "approve", &id], 0);
    let done = env.expect("local:bob", &["--tenant", "acme", "execute", &id, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed");
    assert!(!members(&env, "sandbox-acme.json").contains(&"alice".to_owned()), "acme's directory changed");
    assert!(members(&env, "sandbox.json").contains(&"alice".to_owned()), "the default tenant's did not");

    // Each tenant's audit log is its own and verifies on its own.
    let acme = env.expect("local:bob", &["--tenant", "acme", "audit", "export", "--output", "json"], 0).stdout;
    assert!(acme.contains(&id), "acme's log records its action");
    let default = env.expect("local:bob", &["audit", "export", "--output", "json"], 0).stdout;
    assert!(!default.contains(&id), "the default tenant's log does not");
    env.expect("local:bob", &["--tenant", "acme", "audit", "verify"], 0);
    env.expect("local:bob", &["audit", "verify"], 0);

    // A tenant's kill switch stops that tenant only.
    env.expect("local:admin", &["--tenant", "acme", "kill-switch", "on", "--reason", "drill"], 0);
    env.expect("local:alice", &strs(&with_tenant("acme", &revoke("sandbox-acme"))), 3);
    let other = env.expect("local:alice", &strs(&revoke("sandbox")), 0).json();
    assert_eq!(other["action"]["state"], "pending_approval", "the default tenant goes on");
}

#[test]
fn the_installation_kill_switch_stops_every_tenant() {
    let env = two_tenants();
    let waiting = env.expect("local:alice", &strs(&with_tenant("acme", &revoke("sandbox-acme"))), 0).json();
    let id = waiting["action"]["id"].as_str().expect("id").to_owned();
    let refused =
        env.expect("local:admin", &["--tenant", "acme", "kill-switch", "on", "--installation", "--reason", "x"], 2);
    assert!(refused.stderr.contains("kept by the default tenant"), "{}", refused.stderr);
    let on = env.expect(
        "local:admin",
        &["kill-switch", "on", "--installation", "--reason", "incident", "--output", "json"],
        0,
    );
    assert!(on.stdout.contains(&id), "acme's waiting action was cancelled: {}", on.stdout);
    let status = env.expect("local:bob", &["--tenant", "acme", "kill-switch", "status", "--output", "json"], 0).json();
    assert_eq!(
        (status["kill_switch"].as_bool(), status["installation_kill_switch"].as_bool()),
        (Some(false), Some(true))
    );
    let blocked = env.expect("local:alice", &strs(&with_tenant("acme", &revoke("sandbox-acme"))), 3);
    assert!(blocked.stderr.contains("installation's kill switch"), "{}", blocked.stderr);
    // Turning it off waits for a second admin of the default tenant.
    let off = env.expect("local:admin", &["kill-switch", "off", "--installation", "--reason", "over"], 0);
    assert!(off.stdout.contains("waiting for a second admin"), "{}", off.stdout);
    env.confirm_pending();
    env.expect("local:alice", &strs(&with_tenant("acme", &revoke("sandbox-acme"))), 0);
}

#[test]
fn settings_are_tried_in_one_tenant_and_copied_to_another() {
    let env = two_tenants();
    env.expect("local:admin", &["--tenant", "acme", "settings", "set", "min_approvals", "2", "--reason", "try it"], 0);
    let preview = env.expect(
        "local:admin",
        &[
            "settings",
            "copy",
            "--from",
            "acme",
            "--to",
            "default",
            "--reason",
            "tried",
            "--dry-run",
            "--output",
            "json",
        ],
        0,
    );
    let preview = preview.json();
    assert_eq!(preview["outcome"], "preview");
    let paths: Vec<&str> =
        preview["differences"].as_array().expect("differences").iter().filter_map(|d| d["path"].as_str()).collect();
    assert_eq!(paths, ["/min_approvals"]);
    // Off a terminal, applying needs --yes.
    env.expect("local:admin", &["settings", "copy", "--from", "acme", "--to", "default", "--reason", "tried"], 2);
    let done = env.expect(
        "local:admin",
        &["settings", "copy", "--from", "acme", "--to", "default", "--reason", "tried", "--yes", "--output", "json"],
        0,
    );
    assert_eq!(done.json()["outcome"], "applied");
    let shown = env.expect("local:admin", &["settings", "show", "--output", "json"], 0).json();
    assert_eq!(shown["policy"]["min_approvals"], 2);
    // Both logs record it.
    let to = env.expect("local:bob", &["audit", "export", "--output", "json"], 0).stdout;
    assert!(to.contains("copied from tenant acme"), "the default tenant's log records the copy");
    let from = env.expect("local:bob", &["--tenant", "acme", "audit", "export", "--output", "json"], 0).stdout;
    assert!(from.contains("settings_copied_to"), "acme's log records it too");
    // A requester copies nothing.
    env.expect("local:alice", &["settings", "copy", "--from", "acme", "--to", "default", "--reason", "x", "--yes"], 3);
}

#[test]
fn the_server_serves_each_tenant_to_its_own_tokens() {
    let env = two_tenants();
    env.expect(
        "local:admin",
        &["--tenant", "acme", "principal", "create", "carol", "--role", "requester", "--reason", "e2e"],
        0,
    );
    let carol = env.expect(
        "local:admin",
        &["--tenant", "acme", "token", "create", "--principal", "carol", "--name", "carol"],
        0,
    );
    let carol = carol.stdout.trim().to_owned();
    let viewer = crate::server::token(&env, "vic", "viewer");
    let server = Server::start(&env);
    let url = format!("http://{}", server.addr);
    // carol suggests in acme through the CLI's --server --tenant.
    let mut cmd = env.command("local:alice", &strs(&with_tenant("acme", &revoke("sandbox-acme"))));
    let out = cmd.args(["--server", &url]).env("REMEDIATION_TOKEN", &carol).output().expect("remediate");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // carol's token is unknown to the default tenant, the default tenant's to acme.
    let (status, _) = request(&server.addr, "GET", "/v1/actions", Some(&carol), None).expect("request");
    assert_eq!(status, 401);
    let (status, body) =
        request(&server.addr, "GET", "/v1/tenants/acme/actions", Some(&viewer), None).expect("request");
    assert_eq!(status, 404, "{body}");
    let (status, body) = request(&server.addr, "GET", "/v1/tenants/acme/actions", Some(&carol), None).expect("request");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    let (status, body) = request(&server.addr, "GET", "/v1/actions", Some(&viewer), None).expect("request");
    assert_eq!((status, body["items"].as_array().map(Vec::len)), (200, Some(0)));
}
