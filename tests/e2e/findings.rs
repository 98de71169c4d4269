//! `suggest --finding` with scanners' documents: every entry is reported with what became of
//! it, and the exit code says whether any entry failed.

use remediation_e2e::Env;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/findings/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn labels(reply: &serde_json::Value) -> Vec<String> {
    let entries = reply["entries"].as_array().unwrap_or_else(|| panic!("no entries: {reply}"));
    entries.iter().map(|e| e["intake"].as_str().unwrap_or("?").to_owned()).collect()
}

#[test]
fn a_prowler_document_is_reported_entry_by_entry() {
    let env = Env::new();
    env.init_enabled();
    let prowler = fixture("prowler-ocsf.json");
    // This installation has only the sandbox connector, no `aws`: the four mapped findings
    // reach intake and are refused one by one (exit 3); the others never reach it.
    let run = env.expect("local:alice", &["suggest", "--finding", &prowler, "--output", "json"], 3);
    let reply = run.json();
    assert_eq!(reply["format"], "prowler-ocsf");
    assert_eq!(
        labels(&reply),
        ["failed", "failed", "failed", "failed", "unsupported", "nothing_to_do", "unsupported", "nothing_to_do"]
    );
    assert_eq!(reply["entries"][2]["control_id"], "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22");
    assert!(reply["entries"][0]["reason"].as_str().unwrap_or_default().contains("`aws`"), "{reply}");
    // As a table, one line per entry.
    let run = env.expect("local:alice", &["suggest", "--finding", &prowler], 3);
    assert!(
        run.stdout.contains("#4 iam_rotate_access_key_90_days unsupported: `iam_rotate_access_key_90_days`: the rotate kind is not available yet"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("#5 s3_bucket_kms_encryption nothing_to_do: Prowler reports"), "{}", run.stdout);
    // A dry run plans each finding and writes nothing; the sandbox cannot enforce on a bucket.
    let run = env.expect(
        "local:alice",
        &["suggest", "--finding", &prowler, "--dry-run", "--connector", "sandbox", "--output", "json"],
        3,
    );
    let reply = run.json();
    assert_eq!(labels(&reply)[..4], ["failed", "failed", "failed", "failed"]);
    assert!(reply["entries"][0]["reason"].as_str().unwrap_or_default().contains("sandbox"), "{reply}");
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[test]
fn documents_are_refused_as_usage_errors_with_the_reason() {
    let env = Env::new();
    env.init_enabled();
    let prowler = fixture("prowler-ocsf.json");
    let run = env.expect("local:alice", &["suggest", "--finding", &prowler, "--finding-format", "asff"], 2);
    assert!(run.stderr.contains("declared asff but is prowler-ocsf"), "{}", run.stderr);
    let run = env.expect("local:alice", &["suggest", "--finding", &prowler, "--kind", "revoke"], 2);
    assert!(run.stderr.contains("only --connector, --dry-run and --finding-format"), "{}", run.stderr);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("mixed.json");
    std::fs::write(&path, r#"[{"class_uid": 2004}, {"SchemaVersion": "2018-10-08", "ProductArn": "x"}]"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = env.expect("local:alice", &["suggest", "--finding", path.to_str().unwrap_or_default()], 2);
    assert!(run.stderr.contains("one document holds one format"), "{}", run.stderr);
    // The Security Hub fixture, as a table: unsupported controls are named.
    let run = env.expect("local:alice", &["suggest", "--finding", &fixture("securityhub-asff.json")], 3);
    assert!(run.stdout.contains("#4 EC2.19 unsupported"), "{}", run.stdout);
    assert!(run.stdout.contains("#5 S3.17 nothing_to_do"), "{}", run.stdout);
}
