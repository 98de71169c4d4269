//! Checks of the binary's own surface: help text documents the exit codes, usage errors exit 2.
//! (Whole lifecycles are driven from the workspace's `tests/` package.)

use std::process::Command;

fn remediate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_remediate")).args(args).output().expect("run remediate")
}

#[test]
fn help_documents_every_exit_code() {
    let out = remediate(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for code in ["0  success", "2  usage", "3  refused", "4  not found", "5  provider failure", "6  audit chain broken"]
    {
        assert!(help.contains(code), "help lacks `{code}`:\n{help}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(remediate(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(remediate(&["suggest", "--kind", "explode"]).status.code(), Some(2));
}
