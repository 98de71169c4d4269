//! `suggest --finding` with scanners' documents: every entry is reported with what became of
//! it, and the exit code says whether any entry failed.

use remediation_e2e::Env;

use crate::posture::{aws_env, fixture, labels, moto};

#[test]
fn a_prowler_document_is_reported_entry_by_entry() {
    let env = Env::new();
    env.init_enabled();
    let prowler = fixture("prowler-ocsf.json");
    // This installation has only the sandbox connector, no `aws`: the five mapped findings
    // reach intake and are refused one by one (exit 3); the others never reach it.
    let run = env.expect("local:alice", &["suggest", "--finding", &prowler, "--output", "json"], 3);
    let reply = run.json();
    assert_eq!(reply["format"], "prowler-ocsf");
    assert_eq!(
        labels(&reply),
        ["failed", "failed", "failed", "failed", "failed", "nothing_to_do", "unsupported", "nothing_to_do"]
    );
    assert_eq!(reply["entries"][2]["control_id"], "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22");
    assert!(reply["entries"][0]["reason"].as_str().unwrap_or_default().contains("`aws`"), "{reply}");
    // As a table, one line per entry.
    let run = env.expect("local:alice", &["suggest", "--finding", &prowler], 3);
    assert!(run.stdout.contains("#4 iam_rotate_access_key_90_days failed:"), "{}", run.stdout);
    assert!(run.stdout.contains("#6 accessanalyzer_enabled unsupported:"), "{}", run.stdout);
    assert!(run.stdout.contains("#5 s3_bucket_kms_encryption nothing_to_do: Prowler reports"), "{}", run.stdout);
    // A dry run plans each finding and writes nothing; the sandbox cannot enforce on a bucket.
    let run = env.expect(
        "local:alice",
        &["suggest", "--finding", &prowler, "--dry-run", "--connector", "sandbox", "--output", "json"],
        3,
    );
    let reply = run.json();
    assert_eq!(labels(&reply)[..5], ["failed", "failed", "failed", "failed", "failed"]);
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

/// A Prowler finding about a real bucket (on moto) becomes an action through intake; approved
/// and executed, it blocks public access on the bucket; its rollback waits for a second person,
/// then removes the configuration the bucket did not have; the same scan again is deduplicated.
#[test]
fn a_prowler_finding_blocks_public_access_on_a_moto_bucket_and_rolls_back() {
    let test = "a_prowler_finding_blocks_public_access_on_a_moto_bucket_and_rolls_back";
    let Some(url) = remediation_testkit::real_server::require(test, "REMEDIATION_TEST_MOTO", "run .ci/setup-moto.sh")
    else {
        return;
    };
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("moto test setup").as_nanos();
    let bucket = format!("e2e-posture-{:x}", nanos & 0xffff_ffff_ffff);
    assert_eq!(moto(&addr, "PUT", &format!("/{bucket}"), "s3").0, 200, "create bucket {bucket}");
    let block = || moto(&addr, "GET", &format!("/{bucket}?publicAccessBlock"), "s3");
    assert_eq!(block().0, 404, "no public access block yet: {}", block().1);

    // The fixture's public-access-block finding, about this bucket.
    let text = std::fs::read_to_string(fixture("prowler-ocsf.json")).expect("moto test setup");
    let entries: serde_json::Value = serde_json::from_str(&text).expect("moto test setup");
    let mut entry = entries
        .as_array()
        .expect("moto test setup")
        .iter()
        .find(|e| e["metadata"]["event_code"] == "s3_bucket_level_public_access_block")
        .expect("moto test setup")
        .clone();
    entry["resources"][0]["uid"] = format!("arn:aws:s3:::{bucket}").into();
    entry["resources"][0]["name"] = bucket.clone().into();
    entry["finding_info"]["uid"] = format!("prowler-aws-s3_bucket_level_public_access_block-{bucket}").into();
    let doc = std::env::temp_dir().join(format!("{bucket}.ocsf.json"));
    std::fs::write(&doc, serde_json::Value::Array(vec![entry]).to_string()).expect("moto test setup");

    let env = aws_env(&url, "");
    let doc = doc.display().to_string();
    let reply = env.expect("local:alice", &["suggest", "--finding", &doc, "--output", "json"], 0).json();
    assert_eq!(labels(&reply), ["created"], "{reply}");
    let id = reply["entries"][0]["action"]["id"].as_str().unwrap_or_else(|| panic!("an action: {reply}")).to_owned();
    let shown = env.expect("local:bob", &["show", &id, "--output", "json"], 0).json();
    assert_eq!(shown["action"]["kind"]["setting"], "s3_public_access_block", "{shown}");
    assert_eq!(shown["action"]["target"]["identity"], bucket.as_str(), "{shown}");

    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    let (status, body) = block();
    assert_eq!(status, 200, "{body}");
    for flag in ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"] {
        assert!(body.contains(&format!("<{flag}>true</{flag}>")), "{flag} on: {body}");
    }
    // The same scan again: the open action is the answer.
    let again = env.expect("local:alice", &["suggest", "--finding", &doc, "--output", "json"], 0).json();
    assert_ne!(labels(&again), ["created"], "{again}");

    // Undoing a fix waits for a second person, then restores "none configured".
    env.expect("local:bob", &["rollback", &id], 3);
    assert_eq!(block().0, 200);
    env.expect("local:root", &["approve", &id], 0);
    let state = env.expect("local:bob", &["show", &id, "--output", "json"], 0).json()["action"]["state"].clone();
    assert_eq!(state, "rolled_back");
    assert_eq!(block().0, 404, "the bucket has no public access block again: {}", block().1);
    let _ = std::fs::remove_file(&doc);
}
