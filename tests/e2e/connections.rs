//! `remediate connections` and `remediate keys rotate` through the real binary: a managed
//! sandbox connection with a secret is added, listed, shown, tested, disabled, enabled,
//! updated and used, the master key rotated; no output in any format, no file of the store
//! and no audit record holds the secret.

use remediation_e2e::{Env, Run};

const SECRET: &str = "managed-secret-that-must-never-be-printed-91c2";
const NEW_SECRET: &str = "second-secret-that-must-never-be-printed-55ad";

fn all_output(runs: &[Run]) -> String {
    runs.iter().map(|r| format!("{}\n{}\n", r.stdout, r.stderr)).collect()
}

fn store_bytes(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["remediation.db", "remediation.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.dir().join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_managed_connection_is_added_used_and_rotated_without_its_secret_ever_shown() {
    let env = Env::new();
    env.init_enabled();
    let secret_file = env.dir().join("token.txt");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file");
    let secret_arg = format!("token=@{}", secret_file.display());
    std::fs::copy(env.dir().join("sandbox.json"), env.dir().join("managed-directory.json")).expect("directory");
    let add = [
        "connections",
        "add",
        "--type",
        "sandbox",
        "--id",
        "sbx-managed",
        "--settings",
        r#"{"path": "managed-directory.json"}"#,
        "--secret",
        &secret_arg,
        "--scope-domain",
        "example.com",
    ];
    let mut runs = Vec::new();

    // Admins only; a secret is never taken on the command line, and not echoed when offered.
    runs.push(env.expect("local:alice", &add, 3));
    let inline = env.expect(
        "local:admin",
        &[
            "connections",
            "add",
            "--type",
            "sandbox",
            "--id",
            "x",
            "--settings",
            "{}",
            "--secret",
            &format!("token={SECRET}"),
        ],
        2,
    );
    assert!(inline.stderr.contains("never taken on the command line"), "{}", inline.stderr);
    runs.push(inline);

    let added = env.expect("local:admin", &add, 0);
    assert!(added.stderr.contains("master key") && added.stderr.contains("Back it up"), "{}", added.stderr);
    runs.push(added);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.dir().join("master.key")).expect("master.key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the master key file is owner-only");
    }
    assert!(!holds(&store_bytes(&env), SECRET), "the secret is not in the store's files");

    // Listed beside the configuration's connector, in a table and in JSON.
    let table = env.expect("local:alice", &["connections", "list"], 0);
    let row = table.stdout.lines().find(|l| l.starts_with("sbx-managed")).expect("a row").to_owned();
    assert!(row.contains("sandbox") && row.contains("managed") && row.contains("yes"), "{row}");
    assert!(table.stdout.lines().any(|l| l.starts_with("sandbox") && l.contains("config")), "{}", table.stdout);
    runs.push(table);
    let list = env.expect("local:alice", &["--output", "json", "connections", "list"], 0);
    let listed = list.json();
    let managed = listed.as_array().expect("items").iter().find(|c| c["id"] == "sbx-managed").expect("managed").clone();
    assert_eq!(
        (managed["source"].as_str(), managed["secret_names"].clone()),
        (Some("managed"), serde_json::json!(["token"]))
    );
    assert_eq!(managed["scope"]["domains"], serde_json::json!(["example.com"]));
    runs.push(list);
    runs.push(env.expect("local:alice", &["connections", "show", "sbx-managed"], 0));
    let show = env.expect("local:alice", &["--output", "json", "connections", "show", "sbx-managed"], 0);
    assert_eq!(show.json()["id"], "sbx-managed");
    runs.push(show);

    // Tested now, the outcome recorded.
    runs.push(env.expect("local:admin", &["connections", "test", "sbx-managed"], 0));
    let shown = env.expect("local:alice", &["--output", "json", "connections", "show", "sbx-managed"], 0).json();
    assert_eq!(shown["healthy"], true, "{shown}");

    // Used by actions like a configured connector.
    let suggested = env.expect(
        "local:alice",
        &[
            "--output",
            "json",
            "suggest",
            "--connector",
            "sbx-managed",
            "--kind",
            "revoke",
            "--identity",
            "alice",
            "--resource",
            "admins",
            "--grant-type",
            "group_membership",
            "--reason",
            "test",
        ],
        0,
    );
    runs.push(suggested);

    // The configuration file's connector is read-only here.
    let read_only = env.expect("local:admin", &["connections", "disable", "sandbox"], 3);
    assert!(read_only.stderr.contains("remediation.toml"), "{}", read_only.stderr);
    runs.push(read_only);

    // Disabled, it is not a connector any more; enabled, it is back.
    runs.push(env.expect("local:admin", &["connections", "disable", "sbx-managed"], 0));
    let connectors = env.expect("local:alice", &["--output", "json", "connectors"], 0).json();
    assert!(connectors.as_array().expect("items").iter().all(|c| c["id"] != "sbx-managed"), "{connectors}");
    runs.push(env.expect("local:admin", &["connections", "enable", "sbx-managed"], 0));

    // A new secret through standard input.
    let updated =
        env.run_with_stdin("local:admin", &["connections", "update", "sbx-managed", "--secret", "token=-"], NEW_SECRET);
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    runs.push(updated);

    // The master key rotates; the connection stays usable.
    let rotated = env.expect("local:admin", &["keys", "rotate"], 0);
    assert!(
        rotated.stdout.contains("1 rewrapped") && rotated.stdout.contains("old keys dropped"),
        "{}",
        rotated.stdout
    );
    runs.push(rotated);
    let key_text = std::fs::read_to_string(env.dir().join("master.key")).expect("master.key");
    assert_eq!(key_text.lines().count(), 1);
    runs.push(env.expect("local:admin", &["connections", "test", "sbx-managed"], 0));
    runs.push(env.expect("local:alice", &["--output", "json", "connections", "list"], 0));

    // Removed after confirmation.
    runs.push(env.expect("local:admin", &["connections", "rm", "sbx-managed"], 2));
    runs.push(env.expect("local:admin", &["connections", "rm", "sbx-managed", "--yes"], 0));

    let audit = env.expect("local:admin", &["audit", "export"], 0);
    for event in [
        "connection_created",
        "connection_disabled",
        "connection_enabled",
        "connection_updated",
        "connection_secrets_rewrapped",
        "connection_deleted",
    ] {
        assert!(audit.stdout.contains(event), "{event} is in the audit export");
    }
    runs.push(audit);

    let everything = all_output(&runs);
    for secret in [SECRET, NEW_SECRET] {
        assert!(!everything.contains(secret), "a secret was printed:\n{everything}");
        assert!(!holds(&store_bytes(&env), secret), "a secret is in the store's files");
    }
    let events = std::fs::read_to_string(env.dir().join("events.jsonl")).unwrap_or_default();
    assert!(!events.contains(SECRET) && !events.contains(NEW_SECRET), "{events}");
}
