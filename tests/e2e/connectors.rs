//! `remediate connectors check` with real connector types from the configuration: health,
//! permissions and capabilities, exit 5 when one is not ready, and no secret in the output.

use remediation_e2e::Env;

const TOKEN: &str = "scim-token-that-must-never-be-printed";

fn with_scim(env: &Env, token_line: &str) {
    env.edit_config(|c| {
        format!(
            "{c}\n[[connectors]]\ntype = \"scim\"\nid = \"scim-down\"\nbase_url = \"http://127.0.0.1:1/scim/v2\"\n{token_line}\n"
        )
    });
}

#[test]
fn check_reports_each_connector_and_fails_on_an_unreachable_one() {
    let env = Env::new();
    env.init_enabled();
    let token_file = env.dir().join("scim-token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    with_scim(&env, &format!("token = {{ file = {:?} }}", token_file.display().to_string()));

    let run = env.expect("local:alice", &["connectors", "check"], 5);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let sandbox = lines.iter().find(|l| l.starts_with("sandbox")).expect("a sandbox row");
    assert!(sandbox.contains(" ok "), "{}", run.stdout);
    assert!(sandbox.contains("revoke group_membership (reversible)"), "{}", run.stdout);
    let scim = lines.iter().find(|l| l.starts_with("scim-down")).expect("a scim row");
    assert!(scim.contains("suspend account (reversible)"), "{}", run.stdout);
    assert!(!scim.contains(" ok "), "an unreachable provider is not healthy: {}", run.stdout);

    let json = env.expect("local:alice", &["--output", "json", "connectors", "check"], 5).json();
    let scim = json.as_array().expect("array").iter().find(|c| c["id"] == "scim-down").expect("scim").clone();
    assert_eq!(scim["healthy"], false, "{scim}");
    assert!(scim["permissions"].is_object(), "permissions were checked: {scim}");

    // The plain listing does not check permissions and does not fail.
    let listed = env.expect("local:alice", &["--output", "json", "connectors"], 0).json();
    assert!(listed.as_array().expect("array").iter().all(|c| c.get("permissions").is_none()), "{listed}");

    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains(TOKEN), "the token leaked: {out}");
    }
}

#[test]
fn a_connector_whose_secret_is_missing_stops_with_a_message_naming_it() {
    let env = Env::new();
    env.init_enabled();
    with_scim(&env, "token = { env = \"REMEDIATION_TEST_SCIM_TOKEN_THAT_IS_NOT_SET\" }");
    let run = env.expect("local:alice", &["connectors"], 2);
    assert!(run.stderr.contains("scim-down"), "{}", run.stderr);
    assert!(run.stderr.contains("REMEDIATION_TEST_SCIM_TOKEN_THAT_IS_NOT_SET"), "{}", run.stderr);
}
