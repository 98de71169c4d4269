//! Controls earn auto mode, through the real binary: `controls show` prints a control's record,
//! switching it to auto without that record is refused, an admin's override is accepted and
//! audited, and a configuration file cannot seed an unearned auto.

use remediation_e2e::Env;

use crate::REVOKE_ALICE_ADMINS;

const ADMIN: &str = "local:admin";
const C: &str = "mfa-admins";

/// Enabled, with control mfa-admins in manual over sandbox group-membership revokes.
fn env() -> Env {
    let env = Env::new();
    env.init_enabled();
    let scope = ["--kinds", "revoke", "--grant-types", "group_membership", "--connectors", "sandbox"];
    let mut args = vec!["controls", "set", C, "--mode", "manual"];
    args.extend(scope);
    args.extend(["--reason", "start manual"]);
    env.expect(ADMIN, &args, 0);
    env
}

/// One revoke of alice from admins, tagged with the control, approved and executed.
fn one_manual_success(env: &Env) {
    let mut args = REVOKE_ALICE_ADMINS.to_vec();
    args.extend(["--control", C]);
    let s = env.expect("local:alice", &args, 0).json();
    assert_eq!(s["action"]["state"], "pending_approval", "{s}");
    let id = s["action"]["id"].as_str().expect("id").to_owned();
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
}

#[test]
fn controls_show_prints_the_record_and_auto_must_be_earned_or_overridden() {
    let env = env();
    one_manual_success(&env);
    let show = env.expect("local:bob", &["controls", "show", C], 0);
    for needle in [
        "control:              mfa-admins",
        "mode:                 manual",
        "scope connectors:     sandbox",
        "successful manual:  1",
        "earned auto:          no",
        "why not:            1 of 10 successful manual remediations; first 0 days ago, 30 needed",
    ] {
        assert!(show.stdout.contains(needle), "{needle}:\n{}", show.stdout);
    }
    let json = env.expect("local:bob", &["controls", "show", C, "--output", "json"], 0).json();
    assert_eq!(
        (json["record"]["manual_successes"].as_u64(), json["record"]["earned"].as_bool()),
        (Some(1), Some(false))
    );
    let list = env.expect("local:bob", &["controls", "list"], 0);
    assert!(list.stdout.contains("EARNED AUTO") && list.stdout.contains(C), "{}", list.stdout);
    env.expect("local:bob", &["controls", "show", "C-404"], 4);

    // Auto without the record: refused (3), with the record in the message.
    for args in [
        vec!["controls", "set", C, "--mode", "auto", "--reason", "fewer clicks"],
        vec!["settings", "set", "controls.mfa-admins.mode", "auto", "--reason", "fewer clicks"],
    ] {
        let refused = env.expect(ADMIN, &args, 3);
        assert!(
            refused.stderr.contains("control mfa-admins has not earned auto: 1 of 10 successful manual remediations"),
            "{}",
            refused.stderr
        );
    }
    let pending = env.expect(ADMIN, &["pending", "list", "--output", "json"], 0).json();
    assert_eq!(pending.as_array().map(Vec::len), Some(0), "nothing proposed: {pending}");

    // An admin's override: proposed, confirmed by a second admin, and audited.
    let reason = "pilot approved by the CISO, CHG-1234";
    env.expect(
        ADMIN,
        &["controls", "set", C, "--mode", "auto", "--reason", "fewer clicks", "--override-earned", reason],
        0,
    );
    env.confirm_pending();
    let show = env.expect("local:bob", &["controls", "show", C], 0);
    assert!(show.stdout.contains("mode:                 auto"), "{}", show.stdout);
    assert!(show.stdout.contains(&format!("admin override:     {reason}")), "{}", show.stdout);
    let export = env.expect("local:bob", &["audit", "export"], 0);
    let changed = export.stdout.lines().rfind(|l| l.contains("settings_changed")).expect("settings record");
    assert!(changed.contains(&format!("admin override: {reason}")), "{changed}");
    assert!(changed.contains("\"promotion_override_reason\":\"pilot approved by the CISO, CHG-1234\""), "{changed}");
    env.expect("local:bob", &["audit", "verify"], 0);
}

#[test]
fn a_configuration_file_cannot_seed_an_unearned_auto() {
    let env = Env::new();
    env.init_enabled();
    let control = format!(
        "\n[policy.controls.\"{C}\"]\nmode = \"auto\"\nreason = \"low risk\"\nkinds = [\"revoke\"]\n\
         grant_types = [\"group_membership\"]\nconnectors = [\"sandbox\"]\n"
    );
    env.edit_config(|t| t.replace("[actors.roles]\n", &format!("{control}\n[actors.roles]\n")));
    let refused = env.expect("local:bob", &["list"], 3);
    assert!(
        refused
            .stderr
            .contains("[policy.controls.\"mfa-admins\"] sets mode = \"auto\" but the control has not earned it")
            && refused.stderr.contains("0 of 10 successful manual remediations"),
        "{}",
        refused.stderr
    );
    // The server refuses to start alike.
    let out = std::process::Command::new(remediation_e2e::server_bin())
        .arg("--data-dir")
        .arg(env.dir())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("REMEDIATION_CONFIG")
        .env_remove("REMEDIATION_DATA_DIR")
        .output()
        .expect("run the server");
    assert!(!out.status.success(), "the server refuses to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the control has not earned it: 0 of 10"), "{stderr}");
    // With the admin's reason in the file, it starts.
    env.edit_config(|t| {
        t.replace("reason = \"low risk\"\n", "reason = \"low risk\"\npromotion_override_reason = \"pilot\"\n")
    });
    env.expect("local:bob", &["list"], 0);
    let show = env.expect("local:bob", &["controls", "show", C], 0);
    assert!(show.stdout.contains("admin override:     pilot"), "{}", show.stdout);
}
