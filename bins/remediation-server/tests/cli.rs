//! The server binary's command line on its own: help, and refusing to start without a data
//! directory or with an address it cannot listen on. (Being an integration test of this
//! package, it also makes `cargo test --workspace` build the binary the end-to-end tests run.)

use std::process::Command;

fn server() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_remediation-server"));
    c.env_remove("REMEDIATION_CONFIG").env_remove("REMEDIATION_DATA_DIR");
    c
}

#[test]
fn help_names_every_option() {
    let out = server().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for option in ["--config", "--data-dir", "--listen"] {
        assert!(text.contains(option), "--help lacks {option}:\n{text}");
    }
}

#[test]
fn a_missing_data_directory_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let out = server().arg("--data-dir").arg(&missing).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("remediate init"), "{err}");
}
